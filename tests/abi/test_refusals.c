/* SPDX-License-Identifier: MIT */
/*
 * What an operator sees when a plugin cannot be loaded. For each broken
 * fixture (and each unsafe way of installing a good one) the test makes a
 * fresh folder with a keystore, a plugins/ folder and an ini, runs
 * `blazebot -c ini --check`, and requires exit 1 with the precise cause on
 * stderr as "plugin NAME refused: <reason>". The oldest descriptor the v1
 * promise covers must load (exit 0). A refused plugin also stops a real run,
 * its healthy neighbours still load, and no staged copy is left behind in
 * TMPDIR. Fixture paths come from ABI_FIXTURE_DIR (set by abi.cmake).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

#ifndef ABI_FIXTURE_DIR
#error "ABI_FIXTURE_DIR must name the folder of the fixture plugins"
#endif

struct setup {
  char dir[512];
  char plugins[600];
  char tmp[600];
  char ks[600];
  char ini[700];
  char out[700];
  char err[700];
};

/* Copies src to dst and sets its mode exactly (no umask). Returns 0/-1. */
static int copy_file(const char *src, const char *dst, mode_t mode) {
  int in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    fprintf(stderr, "cannot open %s: %s\n", src, strerror(errno));
    return -1;
  }
  int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int rc = out < 0 ? -1 : 0;
  char buf[65536];
  ssize_t n;
  while (rc == 0 && (n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n)
      rc = -1;
  if (out >= 0 && (fchmod(out, mode) < 0 || close(out) < 0))
    rc = -1;
  close(in);
  return rc;
}

/* A fresh case folder: plugins/ (0755), tmp/ (TMPDIR of the run), keystore. */
static int setup_case(struct setup *s, const char *tag) {
  const char *d = h_dir(tag);
  if (!d)
    return -1;
  snprintf(s->dir, sizeof s->dir, "%s", d);
  snprintf(s->plugins, sizeof s->plugins, "%s/plugins", s->dir);
  snprintf(s->tmp, sizeof s->tmp, "%s/tmp", s->dir);
  if (mkdir(s->plugins, 0755) < 0 || chmod(s->plugins, 0755) < 0 ||
      mkdir(s->tmp, 0700) < 0)
    return -1;
  return h_keygen(s->dir, "ed25519", s->ks, sizeof s->ks);
}

/* Installs fixture abi_NAME.so from the build as plugins/AS with mode. */
static int install(struct setup *s, const char *fixture, const char *as, mode_t mode) {
  char src[1024], dst[1024];
  snprintf(src, sizeof src, "%s/abi_%s.so", ABI_FIXTURE_DIR, fixture);
  snprintf(dst, sizeof dst, "%s/%s", s->plugins, as);
  return copy_file(src, dst, mode);
}

/* Writes the ini: plugin_dir = plugins, then the given [plugin.*] sections. */
static int write_ini(struct setup *s, const char *sections) {
  char extra[3000];
  snprintf(extra, sizeof extra, "plugin_dir = plugins\n%s", sections);
  return h_config(s->dir, NULL, s->ks, extra, s->ini, sizeof s->ini);
}

/* 1 when the staging folder of the run left nothing behind. */
static int tmp_is_empty(const struct setup *s) {
  DIR *dp = opendir(s->tmp);
  if (!dp)
    return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(dp)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
      n++;
  closedir(dp);
  return n == 0;
}

/* Runs `blazebot -c ini --check` (or a real run when check is 0, which
 * must stop at start-up); returns its exit code (-1 on a timeout). */
static int run(struct setup *s, const char *tag, int check) {
  const char *bin = getenv("BLAZEBOT_BIN");
  const char *argv[] = {bin, "-c", s->ini, check ? "--check" : NULL, NULL};
  snprintf(s->out, sizeof s->out, "%s/%s.out", s->dir, tag);
  snprintf(s->err, sizeof s->err, "%s/%s.err", s->dir, tag);
  setenv("TMPDIR", s->tmp, 1);
  int rc = h_run(s->dir, tag, argv, 30000);
  unsetenv("TMPDIR");
  /* In a sanitizer build a report can end the run with exit code 1, which
   * would pass for a refusal: the report itself must be absent. */
  int clean = !h_contains(s->err, "runtime error") && !h_contains(s->err, "Sanitizer");
  if (!clean)
    fprintf(stderr, "%s: sanitizer report in %s\n", tag, s->err);
  CHECK(clean);
  return rc;
}

/* One plugin section, NAME.so installed from fixture with mode 0644; the
 * check must fail with every needle on stderr. */
static void expect_refusal(const char *tag, const char *fixture, const char *name,
                           const char *const needles[]) {
  struct setup s;
  char file[128], sec[256], line[256];
  CHECK(setup_case(&s, tag) == 0);
  snprintf(file, sizeof file, "%s.so", name);
  CHECK(install(&s, fixture, file, 0644) == 0);
  snprintf(sec, sizeof sec, "[plugin.%s]\n", name);
  CHECK(write_ini(&s, sec) == 0);
  int rc = run(&s, "check", 1);
  CHECK_INT(rc, 1);
  snprintf(line, sizeof line, "plugin %s refused: ", name);
  CHECK_INT(h_count(s.err, line), 1);
  for (int i = 0; needles[i]; i++) {
    if (!h_contains(s.err, needles[i])) {
      fprintf(stderr, "%s: stderr lacks \"%s\"\n", tag, needles[i]);
      CHECK(h_contains(s.err, needles[i]));
    }
  }
  CHECK(!h_contains(s.out, "configuration OK"));
  CHECK(tmp_is_empty(&s));
}

static void case_good(void) {
  struct setup s;
  CHECK(setup_case(&s, "refusals-good") == 0);
  CHECK(install(&s, "good", "good.so", 0644) == 0);
  CHECK(write_ini(&s, "[plugin.good]\n") == 0);
  CHECK_INT(run(&s, "check", 1), 0);
  CHECK(h_contains(s.out, "configuration OK"));
  CHECK(h_contains(s.out, "1 plugin(s) loaded"));
  CHECK(!h_contains(s.err, "refused"));
  CHECK(tmp_is_empty(&s));
}

static void case_smallest(void) {
  struct setup s;
  CHECK(setup_case(&s, "refusals-smallest") == 0);
  CHECK(install(&s, "smallest", "smallest.so", 0644) == 0);
  CHECK(write_ini(&s, "[plugin.smallest]\n") == 0);
  int rc = run(&s, "check", 1);
  CHECK_INT(rc, 0);
  CHECK(h_contains(s.out, "1 plugin(s) loaded"));
  CHECK(h_contains(s.err, "smallest v1 descriptor initialised"));
  CHECK(h_contains(s.err, "plugin smallest loaded: smallest 1.0"));
  CHECK(!h_contains(s.err, "refused"));
  CHECK(tmp_is_empty(&s));
}

/* Two files whose descriptors share the name "twin", and one file under two
 * sections: since plugin API 1.1 the descriptor's name is the plugin's kind
 * and the section names the instance, so all of them load. */
static void case_twins(void) {
  struct setup s;
  CHECK(setup_case(&s, "refusals-twins") == 0);
  CHECK(install(&s, "twin_a", "abi_twin_a.so", 0644) == 0);
  CHECK(install(&s, "twin_b", "abi_twin_b.so", 0644) == 0);
  CHECK(write_ini(&s, "[plugin.twin_a]\npath = abi_twin_a.so\n"
                      "[plugin.twin_b]\npath = abi_twin_b.so\n"
                      "[plugin.twin_c]\npath = abi_twin_a.so\n") == 0);
  CHECK_INT(run(&s, "check", 1), 0);
  CHECK(!h_contains(s.err, "refused"));
  CHECK(h_contains(s.err, "plugin twin_a loaded: twin a"));
  CHECK(h_contains(s.err, "plugin twin_b loaded: twin b"));
  CHECK(h_contains(s.err, "plugin twin_c loaded: twin a"));
  CHECK(tmp_is_empty(&s));
}

/* A text file named like a plugin. */
static void case_not_shared_object(void) {
  struct setup s;
  char path[700];
  CHECK(setup_case(&s, "refusals-notso") == 0);
  snprintf(path, sizeof path, "%s/x.so", s.plugins);
  CHECK(h_write(path, "this is not a shared object\n", 0644) == 0);
  CHECK(write_ini(&s, "[plugin.x]\n") == 0);
  CHECK_INT(run(&s, "check", 1), 1);
  CHECK(h_contains(s.err, "plugin x refused: "));
  CHECK(h_contains(s.err, "x.so: cannot load"));
  CHECK(tmp_is_empty(&s));
}

/* A section whose file does not exist. */
static void case_missing_file(void) {
  struct setup s;
  CHECK(setup_case(&s, "refusals-missing") == 0);
  CHECK(write_ini(&s, "[plugin.ghost]\n") == 0);
  CHECK_INT(run(&s, "check", 1), 1);
  CHECK(h_contains(s.err, "plugin ghost refused: cannot open "));
  CHECK(h_contains(s.err, "ghost.so: No such file or directory"));
}

/* A plugin file anyone may rewrite would let them run code as the bot. */
static void case_file_mode(void) {
  struct setup s;
  CHECK(setup_case(&s, "refusals-filemode") == 0);
  CHECK(install(&s, "good", "good.so", 0666) == 0);
  CHECK(write_ini(&s, "[plugin.good]\n") == 0);
  CHECK_INT(run(&s, "check", 1), 1);
  CHECK(h_contains(s.err, "plugin good refused: plugin file "));
  CHECK(h_contains(s.err, "is writable by group or others (mode 0666)"));
  /* Group-writable alone is refused too. */
  char path[700];
  snprintf(path, sizeof path, "%s/good.so", s.plugins);
  CHECK(chmod(path, 0664) == 0);
  CHECK_INT(run(&s, "check-0664", 1), 1);
  CHECK(h_contains(s.err, "is writable by group or others (mode 0664)"));
  /* And the fixed file loads. */
  CHECK(chmod(path, 0644) == 0);
  CHECK_INT(run(&s, "check-0644", 1), 0);
  CHECK(tmp_is_empty(&s));
}

/* A plugin_dir anyone may write to would let them swap plugins. */
static void case_dir_mode(void) {
  struct setup s;
  CHECK(setup_case(&s, "refusals-dirmode") == 0);
  CHECK(install(&s, "good", "good.so", 0644) == 0);
  CHECK(chmod(s.plugins, 0777) == 0);
  CHECK(write_ini(&s, "[plugin.good]\n") == 0);
  CHECK_INT(run(&s, "check", 1), 1);
  char needle[800];
  snprintf(needle, sizeof needle,
           "plugin_dir %s is writable by group or others (mode 0777)", s.plugins);
  CHECK(h_contains(s.err, needle));
  CHECK(!h_contains(s.out, "configuration OK"));
  CHECK(chmod(s.plugins, 0755) == 0);
}

/* path must be a bare file name inside plugin_dir: each of these is refused
 * on its own line, and none is opened. */
static void case_paths(void) {
  struct setup s;
  char sections[1500], real[700];
  CHECK(setup_case(&s, "refusals-paths") == 0);
  CHECK(install(&s, "good", "good.so", 0644) == 0);
  snprintf(real, sizeof real, "%s/good.so", s.plugins);
  snprintf(sections, sizeof sections,
           "[plugin.up]\npath = ../plugins/good.so\n"
           "[plugin.abs]\npath = %s\n"
           "[plugin.sub]\npath = sub/good.so\n"
           "[plugin.dotdot]\npath = ..\n"
           "[plugin.hidden]\npath = .good.so\n",
           real);
  CHECK(write_ini(&s, sections) == 0);
  CHECK_INT(run(&s, "check", 1), 1);
  CHECK_INT(h_count(s.err, "must be a file name inside plugin_dir"), 5);
  CHECK_INT(h_count(s.err, " refused: "), 5);
  const char *names[] = {"up", "abs", "sub", "dotdot", "hidden"};
  for (int i = 0; i < 5; i++) {
    char line[128];
    snprintf(line, sizeof line, "plugin %s refused: ", names[i]);
    CHECK(h_contains(s.err, line));
  }
  /* The message points at the ini line of the offending key. */
  char needle[800];
  snprintf(needle, sizeof needle, "%s:", s.ini);
  CHECK(h_contains(s.err, needle));
  CHECK(h_contains(s.err, "path '../plugins/good.so'"));
}

/* A symbolic link in plugin_dir is refused even when it points at a good
 * plugin: the link could be repointed after the checks. */
static void case_symlink(void) {
  struct setup s;
  char target[700], link_path[700], realdir[700];
  CHECK(setup_case(&s, "refusals-symlink") == 0);
  snprintf(realdir, sizeof realdir, "%s/real", s.dir);
  CHECK(mkdir(realdir, 0755) == 0);
  snprintf(target, sizeof target, "%s/good.so", realdir);
  char src[1024];
  snprintf(src, sizeof src, "%s/abi_good.so", ABI_FIXTURE_DIR);
  CHECK(copy_file(src, target, 0644) == 0);
  snprintf(link_path, sizeof link_path, "%s/good.so", s.plugins);
  CHECK(symlink(target, link_path) == 0);
  CHECK(write_ini(&s, "[plugin.good]\n") == 0);
  CHECK_INT(run(&s, "check", 1), 1);
  CHECK(h_contains(s.err, "plugin good refused: "));
  CHECK(h_contains(s.err, "it is a symbolic link"));
  CHECK(tmp_is_empty(&s));
}

/* Several plugins at once: one line per refusal, the good one still loads,
 * and a real run refuses to start rather than run without them. */
static void case_mixed(void) {
  struct setup s;
  CHECK(setup_case(&s, "refusals-mixed") == 0);
  CHECK(install(&s, "good", "good.so", 0644) == 0);
  CHECK(install(&s, "init_fails", "failing.so", 0644) == 0);
  CHECK(install(&s, "noentry", "noentry.so", 0644) == 0);
  CHECK(write_ini(&s, "[plugin.failing]\n[plugin.good]\n[plugin.noentry]\n") == 0);
  CHECK_INT(run(&s, "check", 1), 1);
  CHECK_INT(h_count(s.err, " refused: "), 2);
  CHECK(h_contains(s.err, "plugin failing refused: "));
  CHECK(h_contains(s.err, "plugin noentry refused: "));
  CHECK(h_contains(s.err, "plugin good loaded"));
  CHECK(h_contains(s.err, "database unreachable"));
  CHECK(tmp_is_empty(&s));

  /* The daemon proper: exit 1 before connecting anywhere. */
  CHECK_INT(run(&s, "run", 0), 1);
  CHECK(h_contains(s.err, "2 plugin(s) refused; not starting"));
  CHECK(h_contains(s.err, "database unreachable"));
  CHECK(tmp_is_empty(&s));

  /* enabled = false takes a broken plugin out of the picture. */
  CHECK(write_ini(&s, "[plugin.failing]\nenabled = false\n[plugin.good]\n"
                      "[plugin.noentry]\nenabled = no\n") == 0);
  CHECK_INT(run(&s, "check-disabled", 1), 0);
  CHECK(h_contains(s.out, "1 plugin(s) loaded"));
  CHECK(!h_contains(s.err, "refused"));
}

int main(void) {
  if (!getenv("BLAZEBOT_BIN")) {
    fprintf(stderr, "BLAZEBOT_BIN is not set\n");
    return 1;
  }
  case_good();

  const char *noentry[] = {"no blazebot_plugin_v1 entry symbol", "noentry.so", NULL};
  expect_refusal("refusals-noentry", "noentry", "noentry", noentry);
  const char *v2[] = {"built for plugin ABI major 2; this daemon speaks major 1", NULL};
  expect_refusal("refusals-v2", "v2", "future", v2);
  expect_refusal("refusals-v2-in-v1", "v2_in_v1", "future", v2);
  const char *newer[] = {"built for plugin ABI 1.2, newer than this daemon's 1.1",
                         "upgrade blazebot", NULL};
  expect_refusal("refusals-newer", "newer_minor", "newer", newer);
  const char *tiny[] = {"descriptor too small (16 bytes; ABI 1.0 needs at least", NULL};
  expect_refusal("refusals-tiny", "tiny", "tiny", tiny);
  const char *nulldesc[] = {"blazebot_plugin_v1() returned no descriptor", NULL};
  expect_refusal("refusals-nulldesc", "null_desc", "nulldesc", nulldesc);
  const char *nomsg[] = {"missing required callback on_message", NULL};
  expect_refusal("refusals-nomsg", "no_on_message", "nomsg", nomsg);
  const char *initfail[] = {"init failed (-1): database unreachable", NULL};
  expect_refusal("refusals-initfail", "init_fails", "failing", initfail);
  const char *noreason[] = {"init failed (-1): no reason given", NULL};
  expect_refusal("refusals-noreason", "init_fails_silently", "failing", noreason);

  case_smallest();
  case_twins();
  case_not_shared_object();
  case_missing_file();
  case_file_mode();
  case_dir_mode();
  case_paths();
  case_symlink();
  case_mixed();
  return check_done("abi.refusals");
}
