/* SPDX-License-Identifier: MIT */
/*
 * SIGTERM in the middle of a flood: the daemon stops reading, finishes what
 * it is processing, flushes the acks and exits 0. Every message it processed
 * is acknowledged (processed == acked, none twice); a second run picks up
 * exactly the rest.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "harness.h"

int main(void) {
  char dir[512], ks[600], ini[700];
  snprintf(dir, sizeof dir, "%s", h_dir("sigterm"));
  const int n = 20000;
  const char *args[] = {"--preload", "20000", NULL};
  struct sim sim;
  if (h_keygen(dir, "ed25519", ks, sizeof ks) < 0 || h_sim_start(&sim, dir, ks, args) < 0)
    return check_done("integration.sigterm");
  CHECK(h_config(dir, &sim, ks, "ack_interval_ms = 1000\n", ini, sizeof ini) == 0);
  struct proc d;
  if (h_daemon_start(&d, dir, "first", ini) < 0) {
    h_sim_stop(&sim);
    return check_done("integration.sigterm");
  }
  CHECK(h_sim_wait(&sim, "pushed", 3000, 60000) == 0);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  json_t *st = h_sim_stats(&sim);
  json_t *ds = h_daemon_stats(dir, "first");
  long processed = h_stat(ds, "processed");
  CHECK(processed > 0);
  CHECK(processed < n); /* it really stopped mid-flood */
  CHECK_INT(h_stat(st, "acked"), processed);
  CHECK_INT(h_stat(st, "ack_receipts"), processed);
  CHECK_INT(h_stat(ds, "acked"), processed);
  CHECK_INT(h_stat(ds, "inflight"), 0);
  CHECK_INT(h_stat(st, "connections"), 1);
  json_decref(st);
  json_decref(ds);

  /* The rest arrives on the next run; nothing is processed twice. */
  if (h_daemon_start(&d, dir, "second", ini) < 0) {
    h_sim_stop(&sim);
    return check_done("integration.sigterm");
  }
  CHECK(h_sim_wait(&sim, "acked", n, 240000) == 0);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  ds = h_daemon_stats(dir, "second");
  CHECK_INT(h_stat(ds, "processed") + processed, n);
  json_decref(ds);
  st = h_sim_stats(&sim);
  CHECK_INT(h_stat(st, "acked"), n);
  CHECK_INT(h_stat(st, "ack_receipts"), n); /* each acknowledged exactly once */
  CHECK_INT(h_stat(st, "acked_twice"), 0);
  CHECK_INT(h_stat(st, "unacked"), 0);
  CHECK_INT(h_stat(st, "connections"), 2); /* one per run */
  CHECK_INT(h_stat(st, "list_pending"), 2);
  json_decref(st);
  h_reap(&d);
  h_sim_stop(&sim);
  return check_done("integration.sigterm");
}
