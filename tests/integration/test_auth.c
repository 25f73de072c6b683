/* SPDX-License-Identifier: MIT */
/*
 * 401 handling. The server refuses the handshake with 401: the daemon tries
 * once more with a fresh token, then stops with exit code 2 and a message
 * naming the likely causes. The same when a 401 ERROR frame arrives on an
 * open link and the retry is refused too. Tokens are fresh per attempt (the
 * simulator refuses a reused jti).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "harness.h"

int main(void) {
  char dir[512], ks[600], ini[700], path[700];
  struct sim sim;
  struct proc d;

  /* 1. 401 at every handshake: the first attempt and the one retry with a
   * fresh token are refused, then the daemon stops with exit code 2. */
  snprintf(dir, sizeof dir, "%s", h_dir("auth-handshake"));
  const char *a1[] = {"--fault", "reject401", NULL};
  if (h_keygen(dir, "ed25519", ks, sizeof ks) == 0 &&
      h_sim_start(&sim, dir, ks, a1) == 0) {
    CHECK(h_config(dir, &sim, ks, "", ini, sizeof ini) == 0);
    if (h_daemon_start(&d, dir, "daemon", ini) == 0) {
      CHECK(h_wait(&d, 30000) == 0);
      CHECK_INT(d.status, 2);
      h_reap(&d);
    }
    json_t *st = h_sim_stats(&sim);
    CHECK_INT(h_stat(st, "handshake_rejects"), 2); /* the attempt and one retry */
    CHECK_INT(h_stat(st, "auth_failures"), 0); /* refused by the fault, not the token */
    CHECK_INT(h_stat(st, "faults_fired"), 2);
    CHECK_INT(h_stat(st, "connections"), 0);
    CHECK_INT(h_stat(st, "list_pending"), 0);
    json_decref(st);
    json_t *ds = h_daemon_stats(dir, "daemon");
    CHECK_INT(h_stat(ds, "connects"), 0);
    CHECK_INT(h_stat(ds, "connect_errors"), 2);
    CHECK_INT(h_stat(ds, "reconnects_auth_rejected"), 2);
    CHECK_INT(h_stat(ds, "reconnects_connect_error"), 0);
    json_decref(ds);
    snprintf(path, sizeof path, "%s/daemon.err", dir);
    CHECK(h_contains(path, "clock"));
    CHECK(h_contains(path, "revoked"));
    h_sim_stop(&sim);
  }

  /* 2. A 401 ERROR frame on an open link, and the session revoked: the
   * reconnect's handshake is refused, which is the second 401. */
  snprintf(dir, sizeof dir, "%s", h_dir("auth-frame"));
  const char *a2[] = {"--preload", "50", NULL};
  if (h_keygen(dir, "ed25519", ks, sizeof ks) == 0 &&
      h_sim_start(&sim, dir, ks, a2) == 0) {
    CHECK(h_config(dir, &sim, ks, "", ini, sizeof ini) == 0);
    if (h_daemon_start(&d, dir, "daemon", ini) == 0) {
      CHECK(h_sim_wait(&sim, "acked", 50, 30000) == 0);
      json_t *r = h_sim_post(&sim, "/_sim/fault", "{\"fault\":\"reject401\"}");
      CHECK(r != NULL);
      json_decref(r);
      r = h_sim_post(&sim, "/_sim/fault", "{\"fault\":\"error401\"}");
      CHECK(r != NULL);
      json_decref(r);
      r = h_sim_post(&sim, "/_sim/push", "{\"count\":1,\"text\":\"wake\"}");
      CHECK_INT(h_stat(r, "count"), 1);
      json_decref(r);
      CHECK(h_wait(&d, 30000) == 0);
      CHECK_INT(d.status, 2);
      h_reap(&d);
    }
    json_t *st = h_sim_stats(&sim);
    CHECK_INT(h_stat(st, "connections"), 1);
    CHECK_INT(h_stat(st, "handshake_rejects"), 1); /* the reconnect, refused */
    CHECK_INT(h_stat(st, "auth_failures"), 0);
    CHECK_INT(h_stat(st, "faults_fired"), 2); /* the ERROR frame and the refusal */
    CHECK(h_stat(st, "acked") >= 50);
    CHECK_INT(h_stat(st, "acked_twice"), 0);
    json_decref(st);
    json_t *ds = h_daemon_stats(dir, "daemon");
    CHECK_INT(h_stat(ds, "error_frames"), 1);
    CHECK_INT(h_stat(ds, "connects"), 1);
    CHECK_INT(h_stat(ds, "connect_errors"), 1);
    /* the link dropped for the ERROR frame, then the refused handshake */
    CHECK_INT(h_stat(ds, "reconnects_auth_rejected"), 2);
    CHECK_INT(h_stat(ds, "reconnects_server_closed"), 0);
    json_decref(ds);
    snprintf(path, sizeof path, "%s/daemon.err", dir);
    CHECK(h_contains(path, "ERROR frame"));
    h_sim_stop(&sim);
  }

  /* 3. A single 401 is retried and the daemon carries on. */
  snprintf(dir, sizeof dir, "%s", h_dir("auth-once"));
  const char *a3[] = {"--fault", "reject401:1", "--preload", "100", NULL};
  if (h_keygen(dir, "ed25519", ks, sizeof ks) == 0 &&
      h_sim_start(&sim, dir, ks, a3) == 0) {
    CHECK(h_config(dir, &sim, ks, "", ini, sizeof ini) == 0);
    if (h_daemon_start(&d, dir, "daemon", ini) == 0) {
      CHECK(h_sim_wait(&sim, "acked", 100, 30000) == 0);
      h_kill(&d, SIGTERM);
      CHECK(h_wait(&d, 30000) == 0);
      CHECK_INT(d.status, 0);
      h_reap(&d);
    }
    json_t *st = h_sim_stats(&sim);
    CHECK_INT(h_stat(st, "handshake_rejects"), 1);
    CHECK_INT(h_stat(st, "auth_failures"), 0);
    CHECK_INT(h_stat(st, "connections"), 1);
    CHECK_INT(h_stat(st, "acked"), 100);
    CHECK_INT(h_stat(st, "acked_twice"), 0);
    json_decref(st);
    json_t *ds = h_daemon_stats(dir, "daemon");
    CHECK_INT(h_stat(ds, "processed"), 100);
    CHECK_INT(h_stat(ds, "connects"), 1);
    CHECK_INT(h_stat(ds, "connect_errors"), 1);
    CHECK_INT(h_stat(ds, "reconnects_auth_rejected"), 1);
    json_decref(ds);
    h_sim_stop(&sim);
  }
  return check_done("integration.auth");
}
