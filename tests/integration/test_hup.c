/* SPDX-License-Identifier: MIT */
/*
 * SIGHUP re-reads the ini: a valid change applies without dropping the link,
 * a broken ini changes nothing (every error reported with file:line) and the
 * daemon keeps processing, a burst of HUPs folds into few reloads, and a
 * changed blaze_url causes exactly one clean reconnect.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "harness.h"

static void push(struct sim *sim, int n, long *expect) {
  char body[128];
  snprintf(body, sizeof body, "{\"count\":%d,\"text\":\"hup %%d\"}", n);
  json_t *r = h_sim_post(sim, "/_sim/push", body);
  CHECK_INT(h_stat(r, "count"), n);
  json_decref(r);
  *expect += n;
  CHECK(h_sim_wait(sim, "acked", *expect, 30000) == 0);
}

int main(void) {
  char dir[512], ks[600], ini[700], errlog[700], extra[512];
  snprintf(dir, sizeof dir, "%s", h_dir("hup"));
  struct sim sim;
  if (h_keygen(dir, "ed25519", ks, sizeof ks) < 0 || h_sim_start(&sim, dir, ks, NULL) < 0)
    return check_done("integration.hup");
  CHECK(h_config(dir, &sim, ks, "", ini, sizeof ini) == 0);
  struct proc d;
  if (h_daemon_start(&d, dir, "daemon", ini) < 0) {
    h_sim_stop(&sim);
    return check_done("integration.hup");
  }
  snprintf(errlog, sizeof errlog, "%s/daemon.err", dir);
  long expect = 0;
  push(&sim, 50, &expect);

  /* A valid change: applied, same connection. */
  CHECK(h_config(dir, &sim, ks, "log_level = debug\nack_batch = 20\n", ini, sizeof ini) ==
        0);
  h_kill(&d, SIGHUP);
  CHECK(h_wait_count(errlog, "reload: done", 1, 10000) == 0);
  h_sleep_ms(300); /* nothing more comes of one HUP */
  CHECK_INT(h_count(errlog, "reload: done"), 1);
  push(&sim, 50, &expect);

  /* A broken ini: every error with its line, nothing changes. */
  snprintf(extra, sizeof extra, "[blazebot]\nkeystore = %s\nack_batch = 900\nbogus = 1\n",
           ks);
  CHECK(h_write(ini, extra, 0600) == 0);
  h_kill(&d, SIGHUP);
  CHECK(h_wait_count(errlog, "reload: refused", 1, 10000) == 0);
  char needle[800];
  snprintf(needle, sizeof needle, "%s:3:", ini);
  CHECK(h_contains(errlog, needle));
  snprintf(needle, sizeof needle, "%s:4:", ini);
  CHECK(h_contains(errlog, needle));
  CHECK_INT(h_count(errlog, "keeping the running configuration"), 1);
  CHECK_INT(h_count(errlog, "reload: done"), 1);
  push(&sim, 50, &expect);

  /* A burst of 50 HUPs with a valid file: folded into the reload it starts
   * and at most one follow-up, and still one link. */
  CHECK(h_config(dir, &sim, ks, "", ini, sizeof ini) == 0);
  for (int i = 0; i < 50; i++)
    h_kill(&d, SIGHUP);
  CHECK(h_wait_count(errlog, "reload: done", 2, 10000) == 0);
  h_sleep_ms(1000);
  int storm = h_count(errlog, "reload: done") - 1;
  fprintf(stderr, "50 HUPs made %d reload(s)\n", storm);
  CHECK(storm >= 1 && storm <= 2);
  push(&sim, 50, &expect);
  json_t *st = h_sim_stats(&sim);
  CHECK_INT(h_stat(st, "connections"), 1);
  json_decref(st);

  /* blaze_url changes (same server, other spelling): exactly one reconnect. */
  snprintf(extra, sizeof extra, "blaze_url = ws://localhost:%d/\n", sim.port);
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  h_kill(&d, SIGHUP);
  CHECK(h_sim_wait(&sim, "connections", 2, 10000) == 0);
  push(&sim, 50, &expect);
  h_sleep_ms(500);
  st = h_sim_stats(&sim);
  CHECK_INT(h_stat(st, "connections"), 2);
  CHECK_INT(h_stat(st, "list_pending"), 2);
  CHECK_INT(h_stat(st, "handshake_rejects"), 0);
  CHECK_INT(h_stat(st, "auth_failures"), 0);
  CHECK_INT(h_stat(st, "messages"), expect);
  CHECK_INT(h_stat(st, "acked"), expect);
  CHECK_INT(h_stat(st, "acked_twice"), 0);
  json_decref(st);

  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  CHECK_INT(h_count(errlog, "reload: done"), storm + 2);
  CHECK_INT(h_count(errlog, "reload: refused"), 1);
  json_t *ds = h_daemon_stats(dir, "daemon");
  CHECK_INT(h_stat(ds, "processed"), expect);
  CHECK_INT(h_stat(ds, "connects"), 2);
  CHECK_INT(h_stat(ds, "reconnects_settings_changed"), 1); /* the URL's reload */
  CHECK_INT(h_stat(ds, "reconnects_server_closed"), 0);
  /* The valid change, the refused one, the burst's and the URL's. */
  CHECK_INT(h_stat(ds, "reloads"), 3 + storm);
  CHECK_INT(h_stat(ds, "reloads_failed"), 1);
  json_decref(ds);
  h_reap(&d);
  h_sim_stop(&sim);
  return check_done("integration.hup");
}
