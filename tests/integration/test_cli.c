/* SPDX-License-Identifier: MIT */
/*
 * The command line as an operator meets it: --version, --help, --check on a
 * good setup (0), on a broken ini (1, every error as file:line), on a
 * keystore readable by others (1, with the chmod hint), and a missing file.
 * --print-config: the effective ini on stdout (0), read back by the daemon
 * from another folder, plugin secrets masked, no keystore or plugin needed;
 * a broken ini (1, the same file:line errors on stderr, nothing on stdout).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

int main(void) {
  char dir[512], ks[600], ini[700], path[1600];
  snprintf(dir, sizeof dir, "%s", h_dir("cli"));
  const char *bin = h_daemon_bin();
  if (h_keygen(dir, "ed25519", ks, sizeof ks) < 0)
    return check_done("integration.cli");

  const char *ver[] = {bin, "--version", NULL};
  CHECK_INT(h_run(dir, "version", ver, 10000), 0);
  snprintf(path, sizeof path, "%s/version.out", dir);
  CHECK(h_contains(path, "blazebot "));
  const char *help[] = {bin, "--help", NULL};
  CHECK_INT(h_run(dir, "help", help, 10000), 0);
  snprintf(path, sizeof path, "%s/help.out", dir);
  CHECK(h_contains(path, "--check"));
  CHECK(h_contains(path, "--print-config"));

  /* A good configuration passes --check. */
  CHECK(h_config(dir, NULL, ks, "", ini, sizeof ini) == 0);
  const char *chk[] = {bin, "-c", ini, "--check", NULL};
  CHECK_INT(h_run(dir, "check-ok", chk, 10000), 0);
  snprintf(path, sizeof path, "%s/check-ok.out", dir);
  CHECK(h_contains(path, "configuration OK"));

  /* A broken ini: every problem reported with its line, exit 1. */
  snprintf(ini, sizeof ini, "%s/bad.ini", dir);
  char text[2048];
  snprintf(text, sizeof text,
           "[blazebot]\n"
           "keystore = %s\n"
           "ack_batch = 500\n"
           "colour = blue\n"
           "this line is broken\n"
           "[elsewhere]\n"
           "log_level = loud\n",
           ks);
  CHECK(h_write(ini, text, 0600) == 0);
  const char *bad[] = {bin, "-c", ini, "--check", NULL};
  CHECK_INT(h_run(dir, "check-bad", bad, 10000), 1);
  snprintf(path, sizeof path, "%s/check-bad.err", dir);
  char needle[1600];
  snprintf(needle, sizeof needle, "%s:3:", ini);
  CHECK(h_contains(path, needle));
  snprintf(needle, sizeof needle, "%s:4:", ini);
  CHECK(h_contains(path, needle));
  snprintf(needle, sizeof needle, "%s:5:", ini);
  CHECK(h_contains(path, needle));
  snprintf(needle, sizeof needle, "%s:6:", ini);
  CHECK(h_contains(path, needle));

  /* --print-config on a good ini: the effective configuration on stdout,
   * nothing on stderr. The plugin is neither loaded nor looked for (there is
   * no plugin_dir folder), and its token is masked. */
  char extra[1200], want[1600];
  snprintf(extra, sizeof extra,
           "plugin_dir = plugins\n"
           "workers = 3\n"
           "[plugin.echo]\n"
           "reply_prefix = you said:\n"
           "api_token = tk-%s\n",
           "9f8e7d6c5b4a");
  CHECK(h_config(dir, NULL, ks, extra, ini, sizeof ini) == 0);
  const char *pc[] = {bin, "--print-config", "-c", ini, NULL};
  CHECK_INT(h_run(dir, "print", pc, 10000), 0);
  char out[700], err[700];
  snprintf(out, sizeof out, "%s/print.out", dir);
  snprintf(err, sizeof err, "%s/print.err", dir);
  snprintf(want, sizeof want, "; effective configuration of %s\n", ini);
  CHECK(h_contains(out, want));
  snprintf(want, sizeof want, "\nkeystore = %s\n", ks);
  CHECK(h_contains(out, want));
  snprintf(want, sizeof want, "\nplugin_dir = %s/plugins\n", dir);
  CHECK(h_contains(out, want));
  CHECK(h_contains(out, "\nworkers = 3\n"));
  CHECK(h_contains(out, "\noutbox_capacity = 10000 ; default\n"));
  CHECK(h_contains(out, "\n[plugin.echo]\nreply_prefix = you said:\n"));
  CHECK(h_contains(out, "\napi_token = ******** ; masked\n"));
  CHECK(h_contains(out, "\npath = echo.so ; default\n"));
  CHECK(!h_contains(out, "9f8e7d6c5b4a"));
  char *errtext = h_read(err);
  CHECK(errtext && !*errtext);
  free(errtext);

  /* The output reads back, from another folder, to the same output. */
  char sub[600], copy[700];
  snprintf(sub, sizeof sub, "%s/elsewhere", dir);
  mkdir(sub, 0700);
  snprintf(copy, sizeof copy, "%s/printed.ini", sub);
  char *printed = h_read(out);
  CHECK(printed && h_write(copy, printed, 0600) == 0);
  const char *pc2[] = {bin, "--print-config", "-c", copy, NULL};
  CHECK_INT(h_run(sub, "print2", pc2, 10000), 0);
  snprintf(path, sizeof path, "%s/print2.out", sub);
  char *printed2 = h_read(path);
  /* Every key line of the first output is in the second, defaults now set. */
  int lines = 0, found = 0;
  for (char *l = printed; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
    size_t n = strcspn(l, "\n");
    if (*l == ';' || !memchr(l, '=', n))
      continue;
    char one[800];
    snprintf(one, sizeof one, "\n%.*s\n", (int)n, l);
    char *mark = strstr(one, " ; default\n");
    if (mark)
      strcpy(mark, "\n");
    lines++;
    found += printed2 && strstr(printed2, one) != NULL;
  }
  CHECK(lines >= 25);
  CHECK_INT(found, lines);
  free(printed);
  free(printed2);
  /* Without plugins, the printed file is a configuration --check accepts. */
  CHECK(h_config(dir, NULL, ks, "status_file = run/status.json\n", ini, sizeof ini) == 0);
  CHECK_INT(h_run(dir, "print-noplug", pc, 10000), 0);
  snprintf(path, sizeof path, "%s/print-noplug.out", dir);
  printed = h_read(path);
  CHECK(printed && h_write(copy, printed, 0600) == 0);
  free(printed);
  const char *chk2[] = {bin, "-c", copy, "--check", NULL};
  CHECK_INT(h_run(sub, "check-printed", chk2, 10000), 0);

  /* The keystore is not read: one that --check refuses still prints. */
  CHECK(chmod(ks, 0644) == 0);
  CHECK_INT(h_run(dir, "print-perm", pc, 10000), 0);
  CHECK(chmod(ks, 0600) == 0);

  /* A broken ini: the same file:line errors as --check, exit 1, no output. */
  snprintf(ini, sizeof ini, "%s/bad.ini", dir);
  const char *pbad[] = {bin, "--print-config", "-c", ini, NULL};
  CHECK_INT(h_run(dir, "print-bad", pbad, 10000), 1);
  snprintf(path, sizeof path, "%s/print-bad.err", dir);
  for (int line = 3; line <= 6; line++) {
    snprintf(needle, sizeof needle, "%s:%d:", ini, line);
    CHECK(h_contains(path, needle));
  }
  CHECK(h_contains(path, "4 problem(s) found"));
  snprintf(path, sizeof path, "%s/print-bad.out", dir);
  char *badout = h_read(path);
  CHECK(badout && !*badout);
  free(badout);
  const char *pmissing[] = {bin, "--print-config", "-c", "/nonexistent/b.ini", NULL};
  CHECK_INT(h_run(dir, "print-missing", pmissing, 10000), 1);
  snprintf(path, sizeof path, "%s/print-missing.err", dir);
  CHECK(h_contains(path, "/nonexistent/b.ini: cannot open"));

  /* Not with another mode; and a stdout that cannot be written is an error. */
  CHECK(h_config(dir, NULL, ks, "", ini, sizeof ini) == 0);
  const char *pboth[] = {bin, "--print-config", "--check", "-c", ini, NULL};
  CHECK_INT(h_run(dir, "print-both", pboth, 10000), 1);
  snprintf(path, sizeof path, "%s/print-both.err", dir);
  CHECK(h_contains(path, "--print-config takes no other option"));
  if (access("/dev/full", W_OK) == 0) {
    const char *pfull[] = {
        "/bin/sh", "-c", "exec \"$0\" --print-config -c \"$1\" >/dev/full",
        bin,       ini,  NULL};
    CHECK_INT(h_run(dir, "print-full", pfull, 10000), 3);
    snprintf(path, sizeof path, "%s/print-full.err", dir);
    CHECK(h_contains(path, "cannot write to stdout"));
  }

  /* A keystore others can read is refused with the fix in the message. */
  CHECK(chmod(ks, 0644) == 0);
  CHECK(h_config(dir, NULL, ks, "", ini, sizeof ini) == 0);
  const char *perm[] = {bin, "-c", ini, "--check", NULL};
  CHECK_INT(h_run(dir, "check-perm", perm, 10000), 1);
  snprintf(path, sizeof path, "%s/check-perm.err", dir);
  CHECK(h_contains(path, "chmod 600"));
  /* The daemon itself refuses to start the same way. */
  const char *run[] = {bin, "-c", ini, NULL};
  CHECK_INT(h_run(dir, "run-perm", run, 10000), 1);
  CHECK(chmod(ks, 0600) == 0);

  /* Missing configuration file. */
  const char *missing[] = {bin, "-c", "/nonexistent/blazebot.ini", "--check", NULL};
  CHECK_INT(h_run(dir, "check-missing", missing, 10000), 1);
  snprintf(path, sizeof path, "%s/check-missing.err", dir);
  CHECK(h_contains(path, "/nonexistent/blazebot.ini"));

  /* No secret ever reaches the output: the private key hex is not in any
   * log written above. */
  char *kt = h_read(ks);
  char *p = kt ? strstr(kt, "\"session_private_key\"") : NULL;
  CHECK(p != NULL); /* the keystore has the key this part looks for */
  if (p)
    p = strchr(p + 21, '"');
  CHECK(p != NULL && strlen(p + 1) > 16);
  if (p && strlen(p + 1) > 16) {
    char secret[20] = {0};
    memcpy(secret, p + 1, 16);
    const char *logs[] = {"check-ok.out",     "check-ok.err",   "check-bad.err",
                          "check-perm.err",   "run-perm.err",   "print.out",
                          "print-noplug.out", "print-perm.out", "print-perm.err"};
    for (size_t i = 0; i < sizeof logs / sizeof logs[0]; i++) {
      snprintf(path, sizeof path, "%s/%s", dir, logs[i]);
      CHECK(!h_contains(path, secret));
    }
  }
  free(kt);
  return check_done("integration.cli");
}
