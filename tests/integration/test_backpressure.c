/* SPDX-License-Identifier: MIT */
/*
 * Back pressure without shedding: 100,000 pending messages and a plugin that
 * takes 1 ms for each (and replies to each). The daemon holds the socket
 * (TCP flow control) while the plugin is behind, sends acks and replies over
 * REST meanwhile, and lets go when it caught up. Every message is pushed
 * exactly once over one connection (nothing is read and dropped, nothing
 * relisted), processed once, answered once and acknowledged once, and the
 * daemon's RSS stays under 48 MiB all along (more under the sanitizers,
 * whose shadow memory counts too).
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
#ifndef BP_RSS_LIMIT_KB
#define BP_RSS_LIMIT_KB (48 * 1024)
#endif

#define TOTAL 100000

int main(void) {
  char dir[512], ks[600], ini[700], plugins[600], so[700], src[700];
  snprintf(dir, sizeof dir, "%s", h_dir("backpressure"));
  snprintf(plugins, sizeof plugins, "%s/plugins", dir);
  snprintf(so, sizeof so, "%s/probe_a.so", plugins);
  snprintf(src, sizeof src, "%s/probe_a.so", PROBE_DIR);
  CHECK(mkdir(plugins, 0755) == 0 && chmod(plugins, 0755) == 0);
  CHECK(h_copy_file(src, so, 0644) == 0);
  CHECK(h_keygen(dir, "ed25519", ks, sizeof ks) == 0);
  h_asan_quarantine_mb(8); /* RSS is checked below */
  const char *args[] = {"--preload", "100000", "--timeout", "1200", NULL};
  struct sim sim;
  if (h_sim_start(&sim, dir, ks, args) < 0) {
    CHECK(!"simulator started");
    return check_done("integration.backpressure");
  }
  CHECK(h_config(dir, &sim, ks,
                 "plugin_dir = plugins\nsend_rate_per_min = 100000\n"
                 "[plugin.probe_a]\nsleep_ms = 1\nreply = ok\n",
                 ini, sizeof ini) == 0);
  struct proc d;
  if (h_daemon_start(&d, dir, "daemon", ini) < 0) {
    CHECK(!"daemon started");
    h_sim_stop(&sim);
    return check_done("integration.backpressure");
  }
  long peak = 0, acked = 0;
  /* Bounded: 1,000 s at most, sampling RSS every 100 ms. */
  for (int i = 0; i < 10000 && acked < TOTAL; i++) {
    long kb = h_rss_kib(d.pid);
    if (kb > peak)
      peak = kb;
    if (i % 10 == 0) {
      json_t *st = h_sim_stats(&sim);
      acked = h_stat(st, "acked");
      json_decref(st);
    }
    if (h_wait(&d, 0) == 0)
      break;
    h_sleep_ms(100);
  }
  CHECK(h_sim_wait(&sim, "acked", TOTAL, 60000) == 0);
  CHECK(h_sim_wait(&sim, "created", TOTAL, 60000) == 0);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 60000) == 0);
  CHECK_INT(d.status, 0);
  CHECK(h_no_sanitizer_report(dir, "daemon.err"));

  json_t *st = h_sim_stats(&sim);
  json_t *ds = h_daemon_stats(dir, "daemon");
  fprintf(stderr,
          "%d messages: peak RSS %ld KiB; %ld connection(s), %ld push(es), %ld hold(s), "
          "%ld replies over REST, %ld ack batches\n",
          TOTAL, peak, h_stat(st, "connections"), h_stat(st, "pushed"),
          h_stat(ds, "holds"), h_stat(ds, "replies_sent_rest"),
          h_stat(ds, "ack_batches"));
  CHECK_INT(h_stat(st, "connections"), 1);
  CHECK_INT(h_stat(st, "pushed"), TOTAL); /* each message read once */
  CHECK_INT(h_stat(st, "acked"), TOTAL);
  CHECK_INT(h_stat(st, "acked_twice"), 0);
  CHECK_INT(h_stat(st, "created"), TOTAL);
  CHECK_INT(h_stat(ds, "received"), TOTAL);
  CHECK_INT(h_stat(ds, "processed"), TOTAL);
  CHECK_INT(h_stat(ds, "duplicates"), 0);
  CHECK_INT(h_stat(ds, "deferred"), 0);
  CHECK(h_stat(ds, "holds") >= 1); /* back pressure did engage */
  CHECK(peak > 0 && peak < BP_RSS_LIMIT_KB);
  json_decref(st);
  json_decref(ds);
  h_reap(&d);
  h_sim_stop(&sim);
  return check_done("integration.backpressure");
}
