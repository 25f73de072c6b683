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
  const char *args[] = {"--preload", "600",         "--fault", "garbage@50",
                        "--fault",   "text@100",    "--fault", "badjson@150",
                        "--fault",   "bomb@200",    "--fault", "badbase64@250",
                        "--fault",   "missing@300", NULL};
  struct sim sim;
  if (h_keygen(dir, "ed25519", ks, sizeof ks) < 0 || h_sim_start(&sim, dir, ks, args) < 0)
    return check_done("integration.badframes");
  CHECK(h_config(dir, &sim, ks, "max_frame_bytes = 1M\n", ini, sizeof ini) == 0);
  struct proc d;
  if (h_daemon_start(&d, dir, "daemon", ini) < 0) {
    h_sim_stop(&sim);
    return check_done("integration.badframes");
  }
  /* The 600 texts, and the message with bad base64: it has an id, so it is
   * stored, and the daemon acknowledges it so that it is not redelivered. */
  CHECK(h_sim_wait(&sim, "acked", 601, 60000) == 0);
  json_t *st = h_sim_stats(&sim);
  CHECK_INT(h_stat(st, "faults_fired"), 6);
  CHECK_INT(h_stat(st, "messages"), 601);
  CHECK_INT(h_stat(st, "connections"), 1); /* never dropped the link */
  CHECK_INT(h_stat(st, "list_pending"), 1);
  json_decref(st);
  /* Still alive and still processing. */
  json_t *r = h_sim_post(&sim, "/_sim/push", "{\"count\":10,\"text\":\"after %d\"}");
  CHECK_INT(h_stat(r, "count"), 10);
  json_decref(r);
  CHECK(h_sim_wait(&sim, "acked", 611, 30000) == 0);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  st = h_sim_stats(&sim);
  CHECK_INT(h_stat(st, "messages"), 611);
  CHECK_INT(h_stat(st, "acked"), 611);
  CHECK_INT(h_stat(st, "unacked"), 0);
  CHECK_INT(h_stat(st, "ack_receipts"), 611);
  CHECK_INT(h_stat(st, "acked_twice"), 0);
  CHECK_INT(h_stat(st, "connections"), 1);
  CHECK_INT(h_stat(st, "bad_frames"), 0); /* the daemon sent nothing broken */
  json_decref(st);
  /* Per message: exactly one poison message (the bad base64), and every
   * stored message acknowledged exactly once. */
  json_t *ms = h_sim_get(&sim, "/_sim/messages");
  CHECK_INT(json_array_size(ms), 611);
  long poison = 0, once = 0;
  size_t i;
  json_t *e;
  json_array_foreach(ms, i, e) {
    poison += json_is_true(json_object_get(e, "poison"));
    once += json_integer_value(json_object_get(e, "ack_count")) == 1;
  }
  CHECK_INT(poison, 1);
  CHECK_INT(once, 611);
  json_decref(ms);
  json_t *ds = h_daemon_stats(dir, "daemon");
  CHECK_INT(h_stat(ds, "processed"), 610);
  CHECK_INT(h_stat(ds, "acked"), 611);
  CHECK_INT(h_stat(ds, "malformed"), 2);  /* bad base64, missing fields */
  CHECK_INT(h_stat(ds, "bad_frames"), 3); /* garbage, text, bad JSON */
  CHECK_INT(h_stat(ds, "too_big"), 1);    /* the bomb */
  CHECK_INT(h_stat(ds, "connects"), 1);
  json_decref(ds);
  snprintf(path, sizeof path, "%s/daemon.err", dir);
  CHECK_INT(h_count(path, "skipped"), 6); /* one line for each of the six */
  CHECK_INT(h_count(path, "acknowledging it so it is not redelivered"), 1);
  h_reap(&d);
  h_sim_stop(&sim);
  return check_done("integration.badframes");
}
