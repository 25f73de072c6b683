/* SPDX-License-Identifier: MIT */
/*
 * Hostile input on an open link: a non-gzip frame, a text frame, gzip of
 * broken JSON, a gzip bomb, a message with bad base64, a message missing its
 * fields. Each is logged and skipped; the daemon keeps the same connection
 * and processes every good message around them.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "harness.h"

int main(void) {
  char dir[512], ks[600], ini[700], path[700];
  snprintf(dir, sizeof dir, "%s", h_dir("badframes"));
  CHECK(h_keygen(dir, "ed25519", ks, sizeof ks) == 0);
  const char *args[] = {"--preload", "600",         "--fault", "garbage@50",
                        "--fault",   "text@100",    "--fault", "badjson@150",
                        "--fault",   "bomb@200",    "--fault", "badbase64@250",
                        "--fault",   "missing@300", NULL};
  struct sim sim;
  if (h_sim_start(&sim, dir, ks, args) < 0)
    return check_done("integration.badframes");
  CHECK(h_config(dir, &sim, ks, "max_frame_bytes = 1M\n", ini, sizeof ini) == 0);
  struct proc d;
  CHECK(h_daemon_start(&d, dir, "daemon", ini) == 0);
  CHECK(h_sim_wait(&sim, "acked", 600, 60000) == 0);
  json_t *st = h_sim_stats(&sim);
  CHECK(h_stat(st, "faults_fired") >= 6);
  CHECK_INT(h_stat(st, "connections"), 1); /* never dropped the link */
  json_decref(st);
  /* Still alive and still processing. */
  json_t *r = h_sim_post(&sim, "/_sim/push", "{\"count\":10,\"text\":\"after %d\"}");
  json_decref(r);
  CHECK(h_sim_wait(&sim, "acked", 610, 30000) == 0);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  json_t *ds = h_daemon_stats(dir, "daemon");
  CHECK_INT(h_stat(ds, "processed"), 610);
  CHECK(h_stat(ds, "malformed") >= 2);  /* bad base64, missing fields */
  CHECK(h_stat(ds, "bad_frames") >= 3); /* garbage, text, bad JSON */
  CHECK(h_stat(ds, "too_big") >= 1);    /* the bomb */
  json_decref(ds);
  snprintf(path, sizeof path, "%s/daemon.err", dir);
  CHECK(h_contains(path, "skipped"));
  h_reap(&d);
  h_sim_stop(&sim);
  return check_done("integration.badframes");
}
