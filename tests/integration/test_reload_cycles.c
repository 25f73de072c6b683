/* SPDX-License-Identifier: MIT */
/*
 * 200 reload cycles with messages in flight: each cycle installs the other
 * build (v1 <-> v2, each with a repeating timer the host must cancel), and
 * every fourth adds or removes a second plugin. No crash, no leak (the
 * sanitizer build runs this too), every message answered exactly once, and
 * the daemon's memory stays bounded.
 */
#include "reload_util.h"

#define CYCLES 200
#define PER 20

int main(void) {
  char dir[512], ks[600], ini[700], log[700], plugdir[600], extra[1024];
  snprintf(dir, sizeof dir, "%s", h_dir("reload-cycles"));
  snprintf(plugdir, sizeof plugdir, "%s/plugins", dir);
  snprintf(log, sizeof log, "%s/daemon.err", dir);
  CHECK(mkdir(plugdir, 0700) == 0);
  CHECK(rt_install(plugdir, "rt_v1", "rt.so") == 0);
  CHECK(rt_install(plugdir, "rt_other", "other.so") == 0);
  if (h_keygen(dir, "ed25519", ks, sizeof ks) < 0)
    return check_done("integration.reload_cycles");
  h_asan_quarantine_mb(4); /* RSS is checked below */
  struct sim sim;
  if (h_sim_start(&sim, dir, ks, NULL) < 0)
    return check_done("integration.reload_cycles");
  snprintf(extra, sizeof extra,
           "plugin_dir = %s\noutbox_capacity = 20000\n[plugin.rt]\ntick_ms = 100\n",
           plugdir);
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  struct proc d;
  if (h_daemon_start(&d, dir, "daemon", ini) < 0) {
    h_sim_stop(&sim);
    return check_done("integration.reload_cycles");
  }
  CHECK(h_sim_wait(&sim, "connections", 1, 20000) == 0);

  long rss_early = -1;
  for (int c = 0; c < CYCLES; c++) {
    char body[128];
    snprintf(body, sizeof body, "{\"count\":%d,\"text\":\"cyc %d %%d\"}", PER, c);
    json_decref(h_sim_post(&sim, "/_sim/push", body));
    CHECK(rt_install(plugdir, c % 2 ? "rt_v1" : "rt_v2", "rt.so") == 0);
    if (c % 4 == 0) {
      /* other takes no messages (PLAIN_POST only); it only comes and goes. */
      char more[1200];
      snprintf(more, sizeof more, "%s%s", extra,
               c % 8 == 0 ? "[plugin.other]\npath = other.so\ncategories = PLAIN_POST\n"
                          : "");
      CHECK(h_config(dir, &sim, ks, more, ini, sizeof ini) == 0);
    }
    if (rt_hup(&d, log) < 0) {
      CHECK(!"reload finished");
      break;
    }
    if (c == 49)
      rss_early = h_rss_kib(d.pid);
  }
  long n = (long)CYCLES * PER;
  CHECK(h_sim_wait(&sim, "acked", n, 120000) == 0);
  long rss_late = h_rss_kib(d.pid);
  fprintf(stderr, "RSS after 50 cycles %ld KiB, after %d: %ld KiB\n", rss_early, CYCLES,
          rss_late);
  CHECK(rss_early > 0 && rss_late > 0);
  CHECK(rss_late - rss_early < RT_RSS_SLACK_KB);
  CHECK_INT(h_count(log, "reload: done in"), CYCLES);
  CHECK_INT(h_count(log, "refused"), 0);

  json_t *sent = h_sim_get(&sim, "/_sim/sent");
  unsigned char *seen = calloc((size_t)n, 1);
  long bad = 0;
  size_t i;
  json_t *o;
  json_array_foreach(sent, i, o) {
    const char *t = json_string_value(json_object_get(o, "text"));
    int c, k;
    if (t &&
        (sscanf(t, "v1: cyc %d %d", &c, &k) == 2 ||
         sscanf(t, "v2: cyc %d %d", &c, &k) == 2) &&
        c >= 0 && c < CYCLES && k >= 0 && k < PER)
      seen[c * PER + k]++;
    else
      bad++;
  }
  json_decref(sent);
  long once = 0;
  for (long k = 0; k < n; k++)
    once += seen[k] == 1;
  free(seen);
  CHECK_INT(once, n);
  CHECK_INT(bad, 0);

  json_t *st = h_sim_stats(&sim);
  CHECK_INT(h_stat(st, "connections"), 1);
  CHECK_INT(h_stat(st, "acked"), n);
  CHECK_INT(h_stat(st, "acked_twice"), 0);
  CHECK_INT(h_stat(st, "created"), n); /* other takes no texts: one reply each */
  json_decref(st);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 60000) == 0);
  CHECK_INT(d.status, 0); /* a sanitizer finding makes it non-zero */
  json_t *ds = h_daemon_stats(dir, "daemon");
  CHECK_INT(h_stat(ds, "processed"), n);
  CHECK_INT(h_stat(ds, "reloads"), CYCLES);
  CHECK_INT(h_stat(ds, "plugins_kept_mapped"), 0);
  json_decref(ds);
  h_reap(&d);
  h_sim_stop(&sim);
  return check_done("integration.reload_cycles");
}
