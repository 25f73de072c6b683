/* SPDX-License-Identifier: MIT */
/*
 * send_rate_per_min, as the server sees it: with the echo plugin and 20
 * pending messages, a limit of 60 a minute lets through the first reply and
 * then one a second (the simulator has at most 4 after 2.5 s); a reload to
 * send_rate_per_min = 0 lifts the limit (a warning says so, with Mixin's
 * quota) and the rest go out at once, each message answered once and
 * acknowledged. Counts, not timings: the bounds hold on a slow machine.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "harness.h"

#ifndef ECHO_SO
#error "plugins_e2e.cmake sets ECHO_SO"
#endif

#define TEST_NAME "integration.rate"
#define N 20

int main(void) {
  char dir[512], ks[600], ini[700], plugins[600], so[700], path[800];
  snprintf(dir, sizeof dir, "%s", h_dir("rate"));
  snprintf(plugins, sizeof plugins, "%s/plugins", dir);
  CHECK(mkdir(plugins, 0755) == 0 && chmod(plugins, 0755) == 0);
  snprintf(so, sizeof so, "%s/echo.so", plugins);
  CHECK(h_copy_file(ECHO_SO, so, 0644) == 0);
  if (h_keygen(dir, "ed25519", ks, sizeof ks) < 0)
    return check_done(TEST_NAME);
  struct sim sim;
  if (h_sim_start(&sim, dir, ks, NULL) < 0)
    return check_done(TEST_NAME);
  CHECK(h_config(dir, &sim, ks,
                 "plugin_dir = plugins\nsend_rate_per_min = 60\n[plugin.echo]\n", ini,
                 sizeof ini) == 0);
  struct proc d;
  if (h_daemon_start(&d, dir, "daemon", ini) < 0) {
    h_sim_stop(&sim);
    return check_done(TEST_NAME);
  }
  CHECK(h_sim_wait(&sim, "connections", 1, 30000) == 0);
  json_decref(h_sim_post(&sim, "/_sim/push", "{\"count\":20,\"text\":\"rate %d\"}"));
  CHECK(h_sim_wait(&sim, "created", 1, 30000) == 0);
  h_sleep_ms(2500);
  json_t *st = h_sim_stats(&sim);
  long created = h_stat(st, "created");
  json_decref(st);
  CHECK(created >= 1);
  CHECK(created <= 4);
  snprintf(path, sizeof path, "%s/daemon.err", dir);
  CHECK(!h_contains(path, "not rate limited"));

  /* Lifted on reload. */
  CHECK(h_config(dir, &sim, ks,
                 "plugin_dir = plugins\nsend_rate_per_min = 0\n[plugin.echo]\n", ini,
                 sizeof ini) == 0);
  h_kill(&d, SIGHUP);
  CHECK(h_sim_wait(&sim, "created", N, 30000) == 0);
  CHECK(h_sim_wait(&sim, "acked", N, 30000) == 0);
  st = h_sim_stats(&sim);
  CHECK_INT(h_stat(st, "created"), N);
  CHECK_INT(h_stat(st, "created_duplicates"), 0);
  json_decref(st);
  CHECK(h_contains(path, "send_rate_per_min = 0: replies are not rate limited; Mixin's "
                         "quota is 100,000 messages a minute"));
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  h_reap(&d);
  CHECK(h_no_sanitizer_report(dir, "daemon.err"));
  h_sim_stop(&sim);
  return check_done(TEST_NAME);
}
