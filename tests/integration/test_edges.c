/* SPDX-License-Identifier: MIT */
/*
 * Safer edges of the daemon's own files and signals:
 * - the status file is replaced through a fresh temporary file and a
 *   rename, so symlinks planted at its name or at a guessable temporary
 *   name never redirect the write;
 * - `blazebot --reload` signals only a running blazebot: a stale status
 *   file naming another program's pid leaves that program alone.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

int main(void) {
  char dir[512], ks[600], ini[700], status[700], victim[700], tmp_link[720], extra[1600];
  snprintf(dir, sizeof dir, "%s", h_dir("edges"));
  CHECK(h_keygen(dir, "ed25519", ks, sizeof ks) == 0);
  struct sim sim;
  if (h_sim_start(&sim, dir, ks, NULL) < 0) {
    CHECK(!"simulator started");
    return check_done("integration.edges");
  }

  /* 1. Symlinks at the status file's name and at "<name>.tmp". */
  snprintf(status, sizeof status, "%s/status.json", dir);
  snprintf(victim, sizeof victim, "%s/victim.txt", dir);
  snprintf(tmp_link, sizeof tmp_link, "%s.tmp", status);
  CHECK(h_write(victim, "precious\n", 0644) == 0);
  CHECK(symlink(victim, status) == 0);
  CHECK(symlink(victim, tmp_link) == 0);
  snprintf(extra, sizeof extra, "status_file = %s\n", status);
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  struct proc d;
  CHECK(h_daemon_start(&d, dir, "daemon", ini) == 0);
  CHECK(h_sim_wait(&sim, "connections", 1, 30000) == 0);
  struct stat st;
  int regular = 0;
  for (int i = 0; i < 200 && !regular; i++) {
    regular = lstat(status, &st) == 0 && S_ISREG(st.st_mode);
    if (!regular)
      h_sleep_ms(50);
  }
  CHECK(regular);
  char *v = h_read(victim);
  CHECK(v && strcmp(v, "precious\n") == 0);
  free(v);
  CHECK(h_contains(status, "\"pid\""));

  /* --reload through it works while it names the daemon. */
  const char *reload[] = {h_daemon_bin(), "-c", ini, "--reload", NULL};
  CHECK_INT(h_run(dir, "reload-ok", reload, 60000), 0);

  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  h_reap(&d);

  /* 2. A stale status file naming another program. */
  struct proc other;
  const char *sleeper[] = {"/bin/sleep", "30", NULL};
  CHECK(h_spawn(&other, dir, "sleep", sleeper) == 0);
  char text[200];
  snprintf(text, sizeof text, "{\"pid\":%d,\"reloads\":0}", (int)other.pid);
  unlink(status);
  CHECK(h_write(status, text, 0644) == 0);
  CHECK_INT(h_run(dir, "reload-stale", reload, 60000), 3);
  char err[700];
  snprintf(err, sizeof err, "%s/reload-stale.err", dir);
  CHECK(h_contains(err, "not a running blazebot"));
  h_sleep_ms(100);
  CHECK(h_wait(&other, 0) != 0); /* still running: no SIGHUP reached it */
  h_reap(&other);
  h_sim_stop(&sim);
  return check_done("integration.edges");
}
