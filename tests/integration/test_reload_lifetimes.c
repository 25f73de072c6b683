/* SPDX-License-Identifier: MIT */
/*
 * Lifetimes across reloads. 1,000 SIGHUPs, each a config-only change of the
 * rt plugin (its prefix alternates, so the host calls reconfigure and the
 * plugin re-reads strings borrowed from the new snapshot) with messages in
 * flight. Old snapshots are freed once nothing uses them: the daemon's RSS
 * after 1,000 reloads stays within 1 MiB of its RSS after 10 (more room
 * under the sanitizers, whose allocator caches grow). Then the keystore is
 * replaced in place, same path: a copy of the same identity changes
 * nothing, a new identity is noticed (a reconnect, refused by a simulator
 * that knows only the old key).
 */
#include "reload_util.h"

#define CYCLES 1000

static int write_ini(const char *dir, struct sim *sim, const char *ks,
                     const char *plugdir, int c, char *ini, size_t cap) {
  char extra[1024];
  snprintf(extra, sizeof extra, "plugin_dir = %s\n[plugin.rt]\nprefix = %s\n", plugdir,
           c % 2 ? "odd" : "even");
  return h_config(dir, sim, ks, extra, ini, cap);
}

int main(void) {
  char dir[512], ks[600], ini[700], log[700], plugdir[600];
  snprintf(dir, sizeof dir, "%s", h_dir("reload-lifetimes"));
  snprintf(plugdir, sizeof plugdir, "%s/plugins", dir);
  snprintf(log, sizeof log, "%s/daemon.err", dir);
  CHECK(mkdir(plugdir, 0700) == 0);
  CHECK(rt_install(plugdir, "rt_v1", "rt.so") == 0);
  CHECK(h_keygen(dir, "ed25519", ks, sizeof ks) == 0);
  h_asan_quarantine_mb(4); /* RSS is checked below */
  struct sim sim;
  if (h_sim_start(&sim, dir, ks, NULL) < 0) {
    CHECK(!"simulator started");
    return check_done("integration.reload_lifetimes");
  }
  struct proc d;
  CHECK(write_ini(dir, &sim, ks, plugdir, 0, ini, sizeof ini) == 0);
  if (h_daemon_start(&d, dir, "daemon", ini) < 0) {
    CHECK(!"daemon started");
    h_sim_stop(&sim);
    return check_done("integration.reload_lifetimes");
  }
  CHECK(h_sim_wait(&sim, "connections", 1, 20000) == 0);

  long rss10 = -1, pushed = 0;
  int done = 0;
  for (int c = 1; c <= CYCLES; c++) {
    if (c % 50 == 0) {
      char body[128];
      snprintf(body, sizeof body, "{\"count\":5,\"text\":\"c%d %%d\"}", c);
      json_decref(h_sim_post(&sim, "/_sim/push", body));
      pushed += 5;
    }
    CHECK(write_ini(dir, &sim, ks, plugdir, c, ini, sizeof ini) == 0);
    if (rt_hup(&d, log) < 0) {
      CHECK(!"reload finished");
      break;
    }
    done++;
    if (c == 10)
      rss10 = h_rss_kib(d.pid);
  }
  CHECK(h_sim_wait(&sim, "acked", pushed, 60000) == 0);
  long rss_end = h_rss_kib(d.pid);
  fprintf(stderr, "RSS after 10 reloads %ld KiB, after %d: %ld KiB\n", rss10, done,
          rss_end);
  CHECK_INT(done, CYCLES);
  CHECK(rss10 > 0 && rss_end > 0);
  CHECK(rss_end - rss10 <= RT_LIFETIME_SLACK_KB);
  CHECK_INT(h_count(log, "reload: done in"), CYCLES);
  CHECK_INT(h_count(log, "reconfigured rt"), CYCLES);
  CHECK_INT(h_count(log, "refused"), 0);

  /* The same identity written over the keystore: nothing changes. */
  char *same = h_read(ks);
  CHECK(same != NULL);
  char tmp[700];
  snprintf(tmp, sizeof tmp, "%s.new", ks);
  CHECK(same && h_write(tmp, same, 0600) == 0 && rename(tmp, ks) == 0);
  free(same);
  CHECK(rt_hup(&d, log) == 0);
  CHECK_INT(h_count(log, "keystore changed"), 0);
  json_t *st = h_sim_stats(&sim);
  CHECK_INT(h_stat(st, "connections"), 1);
  json_decref(st);

  /* A new identity under the same path is noticed. */
  char ks2[600];
  CHECK(h_keygen(plugdir, "ed25519", ks2, sizeof ks2) == 0);
  CHECK(rename(ks2, ks) == 0);
  CHECK(rt_hup(&d, log) == 0);
  CHECK_INT(h_count(log, "core: keystore changed"), 1);
  CHECK(h_sim_wait(&sim, "handshake_rejects", 1, 30000) == 0);

  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 60000) == 0);
  CHECK(d.status == 0 || d.status == 2); /* 2: the new identity was refused twice */
  CHECK(h_no_sanitizer_report(dir, "daemon.err"));
  h_reap(&d);
  h_sim_stop(&sim);
  return check_done("integration.reload_lifetimes");
}
