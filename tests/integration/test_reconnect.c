/* SPDX-License-Identifier: MIT */
/*
 * The link fails under the daemon: the server drops the TCP connection
 * mid-stream (twice), and later goes silent (a half-open link that answers
 * no pings). Each time the daemon reconnects with backoff, lists pending
 * messages again, and in the end every message is processed once and acked.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "harness.h"

int main(void) {
  char dir[512], ks[600], ini[700], path[700];
  snprintf(dir, sizeof dir, "%s", h_dir("reconnect"));
  const int n = 6000;
  /* Prebuilt pushes (as the bench uses them) serve only first deliveries:
   * what is listed again after the drop gets fresh frames. */
  const char *args[] = {"--preload", "6000",      "--prebuilt-pushes",
                        "--fault",   "drop@1500", NULL};
  struct sim sim;
  if (h_keygen(dir, "ed25519", ks, sizeof ks) < 0 || h_sim_start(&sim, dir, ks, args) < 0)
    return check_done("integration.reconnect");
  CHECK(
      h_config(
          dir, &sim, ks,
          "ping_interval_ms = 1000\nidle_timeout_ms = 3000\nrequest_timeout_ms = 2000\n",
          ini, sizeof ini) == 0);
  struct proc d;
  if (h_daemon_start(&d, dir, "daemon", ini) < 0) {
    h_sim_stop(&sim);
    return check_done("integration.reconnect");
  }

  /* First drop fires after 1500 pushes; wait for the second connection. */
  CHECK(h_sim_wait(&sim, "connections", 2, 60000) == 0);
  /* Second failure: the server goes silent mid-stream. Only the daemon's
   * own dead-link detection (pings unanswered) can recover from that. */
  json_t *r = h_sim_post(&sim, "/_sim/fault", "{\"fault\":\"silent@500\"}");
  CHECK(r != NULL);
  json_decref(r);
  CHECK(h_sim_wait(&sim, "connections", 3, 60000) == 0);
  CHECK(h_sim_wait(&sim, "acked", n, 120000) == 0);

  /* Live messages after the reconnects flow too. */
  r = h_sim_post(&sim, "/_sim/push", "{\"count\":200,\"text\":\"live %d\"}");
  CHECK(r != NULL);
  json_decref(r);
  CHECK(h_sim_wait(&sim, "acked", n + 200, 60000) == 0);

  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  json_t *st = h_sim_stats(&sim);
  CHECK_INT(h_stat(st, "messages"), n + 200);
  CHECK_INT(h_stat(st, "acked"), n + 200);
  CHECK_INT(h_stat(st, "unacked"), 0);
  CHECK_INT(h_stat(st, "acks_unknown"), 0);
  /* Two failures, so exactly three connections, each listed once. */
  CHECK_INT(h_stat(st, "faults_fired"), 2);
  CHECK_INT(h_stat(st, "connections"), 3);
  CHECK_INT(h_stat(st, "list_pending"), 3);
  CHECK_INT(h_stat(st, "handshake_rejects"), 0);
  CHECK_INT(h_stat(st, "auth_failures"), 0);
  json_decref(st);
  /* Per message: every one acknowledged (a redelivered one may be acked
   * again: that is at-least-once, not a second processing). */
  json_t *ms = h_sim_get(&sim, "/_sim/messages");
  CHECK_INT(json_array_size(ms), n + 200);
  long unacked = 0;
  size_t i;
  json_t *e;
  json_array_foreach(ms, i, e) {
    unacked += json_integer_value(json_object_get(e, "ack_count")) < 1;
  }
  CHECK_INT(unacked, 0);
  json_decref(ms);
  json_t *ds = h_daemon_stats(dir, "daemon");
  CHECK_INT(h_stat(ds, "processed"), n + 200); /* nothing processed twice */
  CHECK_INT(h_stat(ds, "received"), h_stat(ds, "processed") + h_stat(ds, "duplicates"));
  CHECK_INT(h_stat(ds, "connects"), 3);
  CHECK_INT(h_stat(ds, "dead_links"), 1); /* the silent link; the drop is a close */
  /* The reconnects by cause (blazebot_reconnects_total): one each. */
  CHECK_INT(h_stat(ds, "reconnects_server_closed"), 1);
  CHECK_INT(h_stat(ds, "reconnects_dead_link"), 1);
  CHECK_INT(h_stat(ds, "reconnects_connect_error"), 0);
  CHECK_INT(h_stat(ds, "reconnects_auth_rejected"), 0);
  CHECK_INT(h_stat(ds, "reconnects_list_failed"), 0);
  CHECK_INT(h_stat(ds, "reconnects_settings_changed"), 0);
  json_decref(ds);
  snprintf(path, sizeof path, "%s/daemon.err", dir);
  CHECK_INT(h_count(path, "reconnecting in"), 2);
  CHECK_INT(h_count(path, "link is dead"), 1);
  h_reap(&d);
  h_sim_stop(&sim);
  return check_done("integration.reconnect");
}
