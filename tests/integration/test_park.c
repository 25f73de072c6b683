/* SPDX-License-Identifier: MIT */
/*
 * Parked pushes and a dropped link: 4,000 pending messages and a plugin that
 * takes 2 ms for each, so admission stops at 1,024 in processing and the
 * pushes read after that are parked (the socket is still read: replies and
 * acks stay on the WebSocket). The link drops after 3,000 pushes, with
 * pushes still parked: they are discarded, the server lists them again, and
 * every message is still processed once, answered once (derived ids) and
 * acknowledged.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "harness.h"

#ifndef PROBE_DIR
#error "plugins_e2e.cmake sets PROBE_DIR"
#endif

#define TOTAL 4000

int main(void) {
  char dir[512], ks[600], ini[700], plugins[600], so[700], src[700], log[700];
  snprintf(dir, sizeof dir, "%s", h_dir("park"));
  snprintf(plugins, sizeof plugins, "%s/plugins", dir);
  snprintf(so, sizeof so, "%s/probe_a.so", plugins);
  snprintf(src, sizeof src, "%s/probe_a.so", PROBE_DIR);
  CHECK(mkdir(plugins, 0755) == 0 && chmod(plugins, 0755) == 0);
  CHECK(h_copy_file(src, so, 0644) == 0);
  CHECK(h_keygen(dir, "ed25519", ks, sizeof ks) == 0);
  const char *args[] = {"--preload", "4000", "--fault", "drop@3000", NULL};
  struct sim sim;
  if (h_sim_start(&sim, dir, ks, args) < 0) {
    CHECK(!"simulator started");
    return check_done("integration.park");
  }
  CHECK(h_config(dir, &sim, ks,
                 "plugin_dir = plugins\nsend_rate_per_min = 0\nlog_level = info\n"
                 "[plugin.probe_a]\nsleep_ms = 2\nreply = ok\n",
                 ini, sizeof ini) == 0);
  struct proc d;
  if (h_daemon_start(&d, dir, "daemon", ini) < 0) {
    CHECK(!"daemon started");
    h_sim_stop(&sim);
    return check_done("integration.park");
  }
  CHECK(h_sim_wait(&sim, "acked", TOTAL, 120000) == 0);
  CHECK(h_sim_wait(&sim, "created", TOTAL, 60000) == 0);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 60000) == 0);
  CHECK_INT(d.status, 0);
  CHECK(h_no_sanitizer_report(dir, "daemon.err"));

  json_t *st = h_sim_stats(&sim);
  json_t *ds = h_daemon_stats(dir, "daemon");
  fprintf(stderr,
          "%d messages: %ld connection(s), %ld push(es), %ld parked, %ld hold(s), %ld "
          "replies over REST, %ld duplicate(s)\n",
          TOTAL, h_stat(st, "connections"), h_stat(st, "pushed"),
          h_stat(ds, "pushes_parked"), h_stat(ds, "holds"),
          h_stat(ds, "replies_sent_rest"), h_stat(ds, "duplicates"));
  CHECK_INT(h_stat(st, "connections"), 2);
  CHECK(h_stat(st, "pushed") > TOTAL); /* what was parked came again */
  CHECK_INT(h_stat(st, "acked"), TOTAL);
  CHECK_INT(h_stat(st, "created"), TOTAL);
  CHECK_INT(h_stat(ds, "processed"), TOTAL);
  CHECK(h_stat(ds, "holds") >= 1);
  CHECK(h_stat(ds, "pushes_parked") >= 1);
  /* Admission was off, not the socket: no reply needed REST. */
  CHECK_INT(h_stat(ds, "replies_sent_rest"), 0);
  snprintf(log, sizeof log, "%s/daemon.err", dir);
  CHECK(h_count(log, "dropped with the link") >= 1);
  json_decref(st);
  json_decref(ds);
  h_reap(&d);
  h_sim_stop(&sim);
  return check_done("integration.park");
}
