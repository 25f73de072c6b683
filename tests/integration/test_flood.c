/* SPDX-License-Identifier: MIT */
/*
 * 10,000 pending messages: each delivered, processed once and acknowledged
 * exactly once, over the WebSocket batch action; then the same with REST
 * acknowledgements and each keystore generation (RSA tokens included).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "harness.h"

/* transport: the one acknowledgements must end up on ("websocket" or
 * "rest"); every batch the daemon counts is one the server received on it. */
static void run(const char *name, const char *keytype, const char *extra_ini, int n,
                const char *const sim_extra[], const char *transport) {
  char dir[512], ks[600], ini[700], preload[32];
  snprintf(dir, sizeof dir, "%s", h_dir(name));
  snprintf(preload, sizeof preload, "%d", n);
  const char *args[16];
  int k = 0;
  args[k++] = "--preload";
  args[k++] = preload;
  for (int i = 0; sim_extra && sim_extra[i]; i++)
    args[k++] = sim_extra[i];
  args[k] = NULL;
  struct sim sim;
  if (h_keygen(dir, keytype, ks, sizeof ks) < 0 || h_sim_start(&sim, dir, ks, args) < 0)
    return;
  CHECK(h_config(dir, &sim, ks, extra_ini, ini, sizeof ini) == 0);
  struct proc d;
  if (h_daemon_start(&d, dir, "daemon", ini) < 0) {
    h_sim_stop(&sim);
    return;
  }
  CHECK(h_sim_wait(&sim, "acked", n, 240000) == 0);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  int rest = strcmp(transport, "rest") == 0;
  json_t *st = h_sim_stats(&sim);
  CHECK_INT(h_stat(st, "messages"), n);
  CHECK_INT(h_stat(st, "pushed"), n); /* one connection, each pushed once */
  CHECK_INT(h_stat(st, "acked"), n);
  CHECK_INT(h_stat(st, "unacked"), 0);
  CHECK_INT(h_stat(st, "ack_receipts"), n); /* each exactly once */
  CHECK_INT(h_stat(st, "acked_twice"), 0);
  CHECK_INT(h_stat(st, "acks_unknown"), 0);
  CHECK_INT(h_stat(st, "connections"), 1);
  CHECK_INT(h_stat(st, "list_pending"), 1);
  CHECK_INT(h_stat(st, "auth_failures"), 0);
  CHECK_INT(h_stat(st, "handshake_rejects"), 0);
  CHECK_INT(h_stat(st, rest ? "ack_requests_ws" : "ack_requests_rest"), 0);
  long requests = h_stat(st, rest ? "ack_requests_rest" : "ack_requests_ws");
  CHECK(requests >= (n + 99) / 100); /* at most 100 ids per batch */
  json_decref(st);
  json_t *ds = h_daemon_stats(dir, "daemon");
  CHECK_INT(h_stat(ds, "received"), n);
  CHECK_INT(h_stat(ds, "processed"), n);
  CHECK_INT(h_stat(ds, "duplicates"), 0);
  CHECK_INT(h_stat(ds, "acked"), n);
  CHECK_INT(h_stat(ds, "ack_batches"), requests);
  CHECK_INT(h_stat(ds, "connects"), 1);
  CHECK_INT(h_stat(ds, "connect_errors"), 0);
  CHECK_STR(json_string_value(json_object_get(ds, "ack_transport")), transport);
  json_decref(ds);
  h_reap(&d);
  h_sim_stop(&sim);
}

int main(void) {
  run("flood-ws", "ed25519", "", 10000, NULL, "websocket");
  run("flood-rest", "ed25519", "ack_transport = rest\n", 3000, NULL, "rest");
  run("flood-legacy-ed25519", "ed25519-legacy", "", 2000, NULL, "websocket");
  run("flood-rsa", "rsa", "ack_transport = rest\n", 2000, NULL, "rest");
  /* The server refuses the batch action: acks fall back to REST, say so
   * once, and still every message is acknowledged exactly once. */
  const char *refuse[] = {"--fault", "ack_batch_error", NULL};
  run("flood-fallback", "ed25519", "", 2000, refuse, "rest");
  char path[600];
  const char *base = getenv("BLAZEBOT_TEST_TMP");
  snprintf(path, sizeof path, "%s/flood-fallback/daemon.err",
           base ? base : "/tmp/blazebot-tests");
  CHECK_INT(h_count(path, "acknowledging over REST"), 1);
  return check_done("integration.flood");
}
