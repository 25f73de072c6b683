/* SPDX-License-Identifier: MIT */
/*
 * SIGHUP while 20,000 messages flow to a plugin whose build was replaced:
 * every message answered exactly once (by v1 before the swap, by v2 after),
 * every one acknowledged exactly once, one connection throughout, the new
 * build's replies visible after the swap, and the counter v1 saved handed
 * over to v2 (state hand-over).
 */
#include "reload_util.h"

#define N 20000
#define WAVE 500

int main(void) {
  char dir[512], ks[600], ini[700], log[700], plugdir[600], extra[1024];
  snprintf(dir, sizeof dir, "%s", h_dir("reload-swap"));
  snprintf(plugdir, sizeof plugdir, "%s/plugins", dir);
  snprintf(log, sizeof log, "%s/daemon.err", dir);
  CHECK(mkdir(plugdir, 0700) == 0);
  CHECK(rt_install(plugdir, "rt_v1", "rt.so") == 0);
  struct sim sim;
  if (h_keygen(dir, "ed25519", ks, sizeof ks) < 0 || h_sim_start(&sim, dir, ks, NULL) < 0)
    return check_done("integration.reload_swap");
  /* The outbox holds every reply and messages come in waves of 500, so
   * back pressure never sheds and relists (a reconnect of the daemon's own,
   * not the reload's): the one connection is the reload's to keep. */
  snprintf(extra, sizeof extra,
           "plugin_dir = %s\noutbox_capacity = 40000\n[plugin.rt]\ntick_ms = 100\n",
           plugdir);
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  struct proc d;
  if (h_daemon_start(&d, dir, "daemon", ini) < 0) {
    h_sim_stop(&sim);
    return check_done("integration.reload_swap");
  }
  CHECK(h_sim_wait(&sim, "connections", 1, 20000) == 0);

  long long t0 = 0;
  long acked_at_swap = -1;
  for (int b = 0; b < N / WAVE; b++) {
    char body[128];
    snprintf(body, sizeof body, "{\"count\":%d,\"text\":\"swap %d %%d\"}", WAVE, b);
    json_decref(h_sim_post(&sim, "/_sim/push", body));
    if (b == 10) {
      /* A new build, and SIGHUP, with waves still coming. */
      CHECK(rt_install(plugdir, "rt_v2", "rt.so") == 0);
      t0 = rt_ms();
      h_kill(&d, SIGHUP);
    }
    if (b == 12) {
      json_t *st = h_sim_stats(&sim);
      acked_at_swap = h_stat(st, "acked");
      json_decref(st);
    }
    h_sleep_ms(60);
  }
  CHECK(rt_wait_log(log, "reload: done", 1, 30000) == 0);
  CHECK(t0 > 0);
  fprintf(stderr, "reload under load: ended within %lld ms of the HUP\n", rt_ms() - t0);
  CHECK(acked_at_swap > 0 && acked_at_swap < N); /* messages were in flight */
  CHECK(h_sim_wait(&sim, "acked", N, 240000) == 0);
  CHECK_INT(h_count(log, "reload: done"), 1);
  CHECK_INT(h_count(log, "reloaded rt (reloadtest v2, state handed over: 8 bytes)"), 1);

  /* Every message answered exactly once, by v1 or v2. */
  json_t *sent = h_sim_get(&sim, "/_sim/sent");
  CHECK(sent != NULL);
  unsigned char *seen = calloc(N, 1);
  long v1 = 0, v2 = 0, bad = 0;
  size_t i;
  json_t *o;
  json_array_foreach(sent, i, o) {
    const char *t = json_string_value(json_object_get(o, "text"));
    int k;
    int b;
    if (t && sscanf(t, "v1: swap %d %d", &b, &k) == 2 && (k += b * WAVE) >= 0 && k < N) {
      v1++;
      seen[k]++;
    } else if (t && sscanf(t, "v2: swap %d %d", &b, &k) == 2 && (k += b * WAVE) >= 0 &&
               k < N) {
      v2++;
      seen[k]++;
    } else {
      bad++;
    }
  }
  json_decref(sent);
  long once = 0;
  for (int k = 0; k < N; k++)
    once += seen[k] == 1;
  free(seen);
  CHECK_INT(once, N);
  CHECK_INT(v1 + v2, N);
  CHECK_INT(bad, 0);
  /* The messages still queued for rt when the swap came went to v2. */
  CHECK(v1 > 0);
  CHECK(v2 > 0);
  fprintf(stderr, "v1 answered %ld, v2 answered %ld\n", v1, v2);

  /* After the swap only v2 answers, and it inherited v1's counter. */
  long expect = N;
  rt_push(&sim, "after", 10, &expect);
  CHECK_INT(rt_count_replies(&sim, "v2: after"), 10);
  CHECK_INT(rt_count_replies(&sim, "v1: after"), 0);
  json_decref(h_sim_post(&sim, "/_sim/push", "{\"count\":1,\"text\":\"count?\"}"));
  expect++;
  CHECK(h_sim_wait(&sim, "acked", expect, 30000) == 0);
  CHECK_INT(rt_count_replies(&sim, "v2 count=20011"), 1);

  json_t *st = h_sim_stats(&sim);
  CHECK_INT(h_stat(st, "connections"), 1);
  CHECK_INT(h_stat(st, "acked"), expect);
  CHECK_INT(h_stat(st, "acked_twice"), 0);
  CHECK_INT(h_stat(st, "unacked"), 0);
  CHECK_INT(h_stat(st, "created"), expect); /* one reply each, no more */
  json_decref(st);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  json_t *ds = h_daemon_stats(dir, "daemon");
  CHECK_INT(h_stat(ds, "processed"), expect);
  CHECK_INT(h_stat(ds, "duplicates"), 0);
  CHECK_INT(h_stat(ds, "reloads"), 1);
  CHECK_INT(h_stat(ds, "reloads_failed"), 0);
  CHECK_INT(h_stat(ds, "plugins_kept_mapped"), 0); /* unload-safe: unmapped */
  json_decref(ds);
  h_reap(&d);
  h_sim_stop(&sim);
  return check_done("integration.reload_swap");
}
