/* SPDX-License-Identifier: MIT */
/*
 * What an operator sees when a plugin cannot be loaded. For each broken
 * fixture (and each unsafe way of installing a good one) the test makes a
 * fresh folder with a keystore, a plugins/ folder and an ini, runs
 * `blazebot -c ini --check`, and requires exit 1 with the precise cause on
 * stderr as "plugin NAME refused: <reason>". The oldest descriptor the v1
 * promise covers must load (exit 0). A refused plugin also stops a real run,
 * its healthy neighbours still load, and no staged copy is left behind in
 * TMPDIR (plugins are copied into memfds; TMPDIR is not even needed, and
 * the staged-file fallback for kernels without memfd_create cleans up too).
 * Hostile files (truncated, another architecture, not a shared object, not
 * ELF at all, symbolic links, a symlinked or world-writable plugin_dir) are
 * refused in one line each, without a crash. Fixture paths come from
 * ABI_FIXTURE_DIR (set by abi.cmake).
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

/* Copies the first len bytes of src to dst (mode 0644), then writes
 * patch[0..plen) at offset at (plen 0: no patch). Returns 0/-1. */
static int copy_patched(const char *src, const char *dst, size_t len, off_t at,
                        const void *patch, size_t plen) {
  if (copy_file(src, dst, 0644) < 0 || truncate(dst, (off_t)len) < 0)
    return -1;
  int fd = open(dst, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  int rc = plen && pwrite(fd, patch, plen, at) != (ssize_t)plen ? -1 : 0;
  close(fd);
  return rc;
}

static off_t file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? st.st_size : -1;
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

/* Writes the ini: plugin_dir = dir, then the given [plugin.*] sections. */
static int write_ini_dir(struct setup *s, const char *dir, const char *sections) {
  char extra[3000];
  snprintf(extra, sizeof extra, "plugin_dir = %s\n%s", dir, sections);
  return h_config(s->dir, NULL, s->ks, extra, s->ini, sizeof s->ini);
}

/* Writes the ini: plugin_dir = plugins, then the given [plugin.*] sections. */
static int write_ini(struct setup *s, const char *sections) {
  return write_ini_dir(s, "plugins", sections);
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
  CHECK(
      h_contains(s.err, "x.so: cannot load: not an ELF file (28 bytes, no ELF header)"));
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
  CHECK(h_contains(s.err, "it is a symbolic link; refusing to follow it"));
  CHECK(tmp_is_empty(&s));
}

/* A plugin_dir that is a symbolic link is refused, even to a good folder:
 * the link could be repointed between a check and a load. */
static void case_dir_symlink(void) {
  struct setup s;
  char link_path[700], needle[900];
  CHECK(setup_case(&s, "refusals-dirlink") == 0);
  CHECK(install(&s, "good", "good.so", 0644) == 0);
  snprintf(link_path, sizeof link_path, "%s/plugins-link", s.dir);
  CHECK(symlink("plugins", link_path) == 0);
  CHECK(write_ini_dir(&s, "plugins-link", "[plugin.good]\n") == 0);
  CHECK_INT(run(&s, "check", 1), 1);
  snprintf(needle, sizeof needle,
           "plugin_dir %s is a symbolic link; refusing to follow it (name the real "
           "directory)",
           link_path);
  CHECK(h_contains(s.err, needle));
  CHECK_INT(h_count(s.err, "is a symbolic link"), 1);
  CHECK(!h_contains(s.out, "configuration OK"));
  /* The real folder loads. */
  CHECK(write_ini(&s, "[plugin.good]\n") == 0);
  CHECK_INT(run(&s, "check-real", 1), 0);
  CHECK(tmp_is_empty(&s));
}

/* Damaged or foreign files, each refused in one precise line before
 * dlopen sees them: cut short, another machine, another ELF class, an
 * executable rather than a shared object, and an empty file. */
static void case_hostile_elf(void) {
  struct setup s;
  char good[1024], path[800];
  CHECK(setup_case(&s, "refusals-hostile") == 0);
  snprintf(good, sizeof good, "%s/abi_good.so", ABI_FIXTURE_DIR);
  off_t size = file_size(good);
  CHECK(size > 4096);

  snprintf(path, sizeof path, "%s/cut.so", s.plugins);
  CHECK(copy_patched(good, path, 1000, 0, NULL, 0) == 0);

  /* e_machine (offset 18, native byte order): another architecture's. */
  unsigned short mach = 0;
  int fd = open(good, O_RDONLY | O_CLOEXEC);
  CHECK(fd >= 0 && pread(fd, &mach, sizeof mach, 18) == (ssize_t)sizeof mach);
  if (fd >= 0)
    close(fd);
  unsigned short other = mach == 183 ? 62 : 183; /* AArch64, or x86-64 */
  snprintf(path, sizeof path, "%s/foreign.so", s.plugins);
  CHECK(copy_patched(good, path, (size_t)size, 18, &other, sizeof other) == 0);

  /* EI_CLASS (offset 4): the other word size. */
  unsigned char cls = sizeof(void *) == 8 ? 1 : 2;
  snprintf(path, sizeof path, "%s/class.so", s.plugins);
  CHECK(copy_patched(good, path, (size_t)size, 4, &cls, 1) == 0);

  /* e_type (offset 16): ET_EXEC. */
  unsigned short exec_type = 2;
  snprintf(path, sizeof path, "%s/exe.so", s.plugins);
  CHECK(copy_patched(good, path, (size_t)size, 16, &exec_type, sizeof exec_type) == 0);

  snprintf(path, sizeof path, "%s/empty.so", s.plugins);
  CHECK(h_write(path, "", 0644) == 0);

  CHECK(write_ini(&s, "[plugin.cut]\n[plugin.foreign]\n[plugin.class]\n[plugin.exe]\n"
                      "[plugin.empty]\n") == 0);
  CHECK_INT(run(&s, "check", 1), 1);
  CHECK_INT(h_count(s.err, " refused: "), 5);
  char needle[900];
  snprintf(needle, sizeof needle,
           "plugin cut refused: %s/cut.so: cannot load: truncated (1000 bytes; its ELF "
           "headers need ",
           s.plugins);
  CHECK(h_contains(s.err, needle));
  snprintf(needle, sizeof needle,
           "plugin foreign refused: %s/foreign.so: cannot load: built for another "
           "architecture (%s; "
           "this daemon runs on %s)",
           s.plugins, other == 183 ? "AArch64" : "x86-64",
           mach == 62    ? "x86-64"
           : mach == 183 ? "AArch64"
                         : "?");
  if (mach == 62 || mach == 183)
    CHECK(h_contains(s.err, needle));
  else
    CHECK(h_contains(s.err, "foreign.so: cannot load: built for another architecture ("));
  CHECK(h_contains(s.err, "plugin class refused: "));
  CHECK(h_contains(
      s.err, sizeof(void *) == 8
                 ? "class.so: cannot load: built for another architecture (32-bit "
                 : "class.so: cannot load: built for another architecture (64-bit "));
  CHECK(h_contains(s.err, "plugin exe refused: "));
  CHECK(h_contains(s.err,
                   "exe.so: cannot load: not a shared object (ELF type: executable)"));
  CHECK(h_contains(s.err, "plugin empty refused: "));
  CHECK(h_contains(s.err,
                   "empty.so: cannot load: not an ELF file (0 bytes, no ELF header)"));
  /* Refused on the headers, before dlopen could say it vaguely. */
  CHECK(!h_contains(s.err, "invalid ELF header"));
  CHECK(!h_contains(s.err, "file too short"));
  CHECK(!h_contains(s.out, "configuration OK"));
  CHECK(tmp_is_empty(&s));
}

/* Not a regular file: a FIFO is refused without blocking on it. */
static void case_fifo(void) {
  struct setup s;
  char path[700];
  CHECK(setup_case(&s, "refusals-fifo") == 0);
  snprintf(path, sizeof path, "%s/pipe.so", s.plugins);
  CHECK(mkfifo(path, 0644) == 0);
  CHECK(write_ini(&s, "[plugin.pipe]\n") == 0);
  CHECK_INT(run(&s, "check", 1), 1);
  CHECK(h_contains(s.err, "plugin pipe refused: "));
  CHECK(h_contains(s.err, "pipe.so is not a regular file"));
}

/* The copy lives in memory: a TMPDIR that does not exist (or is noexec)
 * does not matter. */
static void case_no_tmpdir(void) {
  struct setup s;
  CHECK(setup_case(&s, "refusals-notmp") == 0);
  CHECK(install(&s, "good", "good.so", 0644) == 0);
  CHECK(install(&s, "twin_a", "twin.so", 0644) == 0);
  CHECK(write_ini(&s, "[plugin.good]\n[plugin.t1]\npath = twin.so\n"
                      "[plugin.t2]\npath = twin.so\n") == 0);
  CHECK(rmdir(s.tmp) == 0);
  CHECK_INT(run(&s, "check", 1), 0);
  CHECK(h_contains(s.out, "3 plugin(s) loaded"));
  CHECK(!h_contains(s.err, "staging"));
}

/* Without memfd_create (ENOSYS, faked by an LD_PRELOAD shim) the daemon
 * says so once and stages private files under TMPDIR instead; the copies
 * and their folder are gone when it exits, and refusals are the same. */
static void case_no_memfd(void) {
  struct setup s;
  char shim[1024], asan[1200];
  CHECK(setup_case(&s, "refusals-nomemfd") == 0);
  CHECK(install(&s, "good", "good.so", 0644) == 0);
  CHECK(install(&s, "twin_a", "twin.so", 0644) == 0);
  CHECK(install(&s, "noentry", "noentry.so", 0644) == 0);
  CHECK(write_ini(&s, "[plugin.good]\n[plugin.t1]\npath = twin.so\n"
                      "[plugin.t2]\npath = twin.so\n") == 0);
  snprintf(shim, sizeof shim, "%s/abi_nomemfd.so", ABI_FIXTURE_DIR);
  const char *old = getenv("ASAN_OPTIONS");
  /* The shim comes before the sanitizer runtime in a sanitizer build. */
  snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0", old ? old : "",
           old && old[0] ? ":" : "");
  char *saved = old ? strdup(old) : NULL;
  setenv("ASAN_OPTIONS", asan, 1);
  setenv("LD_PRELOAD", shim, 1);
  CHECK_INT(run(&s, "check", 1), 0);
  CHECK(h_contains(s.out, "3 plugin(s) loaded"));
  CHECK_INT(h_count(s.err, "memfd_create or /proc/self/fd is unavailable"), 1);
  CHECK(tmp_is_empty(&s));
  CHECK(write_ini(&s, "[plugin.noentry]\n") == 0);
  CHECK_INT(run(&s, "check-noentry", 1), 1);
  CHECK(h_contains(s.err, "plugin noentry refused: "));
  CHECK(h_contains(s.err, "no blazebot_plugin_v1 entry symbol"));
  CHECK(tmp_is_empty(&s));
  unsetenv("LD_PRELOAD");
  if (saved)
    setenv("ASAN_OPTIONS", saved, 1);
  else
    unsetenv("ASAN_OPTIONS");
  free(saved);
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
  case_dir_symlink();
  case_hostile_elf();
  case_fifo();
  case_no_tmpdir();
  case_no_memfd();
  case_mixed();
  return check_done("abi.refusals");
}
