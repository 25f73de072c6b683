/* SPDX-License-Identifier: MIT */
/*
 * TLS: wss:// and https:// against the simulator serving a certificate from
 * a test CA made at test time. With ca_file = that CA the daemon connects
 * and acknowledges over both the WebSocket and REST; with another CA (or the
 * system store) the same server is refused and nothing is delivered.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "harness.h"

static int gentls(const char *dir, const char *sub) {
  char out[700];
  snprintf(out, sizeof out, "%s/%s", dir, sub);
  const char *argv[] = {h_sim_bin(), "gen-tls", "--dir", out, NULL};
  return h_run(dir, sub, argv, 60000);
}

int main(void) {
  char dir[512], ks[600], ini[700], extra[2048], cert[700], key[700], path[700];
  snprintf(dir, sizeof dir, "%s", h_dir("tls"));
  if (h_keygen(dir, "ed25519", ks, sizeof ks) < 0)
    return check_done("integration.tls");
  CHECK_INT(gentls(dir, "ca1"), 0);
  CHECK_INT(gentls(dir, "ca2"), 0);
  snprintf(cert, sizeof cert, "%s/ca1/server.pem", dir);
  snprintf(key, sizeof key, "%s/ca1/server.key", dir);
  /* The simulator serves TLS only, control API included, so this test reads
   * its account from the stats file it writes at exit. */
  const char *args[] = {"--preload", "300", "--tls-cert",        cert,
                        "--tls-key", key,   "--exit-when-acked", NULL};
  struct sim sim;
  if (h_sim_start(&sim, dir, ks, args) < 0)
    return check_done("integration.tls");

  /* Trusted: the test CA. REST acks so both wss and https are used. */
  snprintf(extra, sizeof extra,
           "[blazebot]\nkeystore = %s\nblaze_url = wss://localhost:%d/\n"
           "api_url = https://localhost:%d\nca_file = %s/ca1/ca.pem\n"
           "ack_transport = rest\nack_interval_ms = 50\nreconnect_min_ms = 200\n",
           ks, sim.port, sim.port, dir);
  snprintf(ini, sizeof ini, "%s/trusted.ini", dir);
  CHECK(h_write(ini, extra, 0600) == 0);
  struct proc d;
  if (h_daemon_start(&d, dir, "trusted", ini) < 0) {
    h_sim_stop(&sim);
    return check_done("integration.tls");
  }
  CHECK(h_wait(&sim.p, 60000) == 0); /* exits once all 300 are acknowledged */
  CHECK_INT(sim.p.status, 0);
  h_reap(&sim.p);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  h_reap(&d);
  snprintf(path, sizeof path, "%s/sim-stats.json", dir);
  json_t *st = json_load_file(path, 0, NULL);
  CHECK(st != NULL);
  CHECK_INT(h_stat(st, "messages"), 300);
  CHECK_INT(h_stat(st, "acked"), 300);
  CHECK_INT(h_stat(st, "ack_receipts"), 300);
  long rest_requests = h_stat(st, "ack_requests_rest");
  CHECK(rest_requests >= 3); /* 300 ids, at most 100 per request */
  CHECK_INT(h_stat(st, "ack_requests_ws"), 0);
  CHECK_INT(h_stat(st, "connections"), 1);
  CHECK_INT(h_stat(st, "handshake_rejects"), 0);
  CHECK_INT(h_stat(st, "auth_failures"), 0);
  json_decref(st);
  json_t *ds = h_daemon_stats(dir, "trusted");
  CHECK_INT(h_stat(ds, "processed"), 300);
  CHECK_INT(h_stat(ds, "ack_batches"), rest_requests);
  CHECK_INT(h_stat(ds, "connects"), 1); /* (the simulator is gone: no second) */
  json_decref(ds);

  /* Untrusted: a CA that did not sign the server's certificate. */
  const char *args2[] = {"--preload", "5", "--tls-cert", cert, "--tls-key", key, NULL};
  if (h_sim_start(&sim, dir, ks, args2) < 0)
    return check_done("integration.tls");
  snprintf(extra, sizeof extra,
           "[blazebot]\nkeystore = %s\nblaze_url = wss://localhost:%d/\n"
           "api_url = https://localhost:%d\nca_file = %s/ca2/ca.pem\n"
           "reconnect_min_ms = 200\nreconnect_max_ms = 400\n",
           ks, sim.port, sim.port, dir);
  snprintf(ini, sizeof ini, "%s/untrusted.ini", dir);
  CHECK(h_write(ini, extra, 0600) == 0);
  if (h_daemon_start(&d, dir, "untrusted", ini) < 0) {
    h_sim_stop(&sim);
    return check_done("integration.tls");
  }
  h_sleep_ms(3000);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  h_sim_stop(&sim);
  st = json_load_file(path, 0, NULL); /* this simulator's (the start removed the old) */
  CHECK(st != NULL);
  CHECK_INT(h_stat(st, "connections"), 0);       /* no WebSocket session at all */
  CHECK_INT(h_stat(st, "handshake_rejects"), 0); /* nor an HTTP request */
  CHECK_INT(h_stat(st, "pushed"), 0);
  CHECK_INT(h_stat(st, "acked"), 0);
  CHECK_INT(h_stat(st, "unacked"), 5);
  json_decref(st);
  ds = h_daemon_stats(dir, "untrusted");
  CHECK_INT(h_stat(ds, "connects"), 0);
  CHECK(h_stat(ds, "connect_errors") >= 2); /* kept retrying, never trusted it */
  CHECK_INT(h_stat(ds, "processed"), 0);
  json_decref(ds);
  snprintf(path, sizeof path, "%s/untrusted.err", dir);
  CHECK(h_contains(path, "connection attempt failed"));
  h_reap(&d);
  return check_done("integration.tls");
}
