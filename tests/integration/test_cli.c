/* SPDX-License-Identifier: MIT */
/*
 * The command line as an operator meets it: --version, --help, --check on a
 * good setup (0), on a broken ini (1, every error as file:line), on a
 * keystore readable by others (1, with the chmod hint), and a missing file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
    const char *logs[] = {"check-ok.out", "check-ok.err", "check-bad.err",
                          "check-perm.err", "run-perm.err"};
    for (size_t i = 0; i < sizeof logs / sizeof logs[0]; i++) {
      snprintf(path, sizeof path, "%s/%s", dir, logs[i]);
      CHECK(!h_contains(path, secret));
    }
  }
  free(kt);
  return check_done("integration.cli");
}
