/* SPDX-License-Identifier: MIT */
/*
 * The reload plan: a plugin added, its config changed alone (reconfigure:
 * the same instance, new values), removed; an unchanged plugin kept; and a
 * storm of 50 HUPs folded into at most two reloads with a consistent
 * result. One connection throughout.
 */
#include "reload_util.h"

static char dir[512], ini[700], log_path[700], plugdir[600], ks[600];
static struct sim sim;
static long expect;

static void config(const char *plugins) {
  char extra[2048];
  snprintf(extra, sizeof extra, "plugin_dir = %s\n%s", plugdir, plugins);
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
}

static void replies(const char *tag, const char *prefix, long n) {
  char p[128];
  snprintf(p, sizeof p, "%s%s ", prefix, tag);
  CHECK_INT(rt_count_replies(&sim, p), n);
}

int main(void) {
  snprintf(dir, sizeof dir, "%s", h_dir("reload-plan"));
  snprintf(plugdir, sizeof plugdir, "%s/plugins", dir);
  snprintf(log_path, sizeof log_path, "%s/daemon.err", dir);
  CHECK(mkdir(plugdir, 0700) == 0);
  CHECK(rt_install(plugdir, "rt_v1", "rt.so") == 0);
  CHECK(rt_install(plugdir, "rt_other", "other.so") == 0);
  if (h_keygen(dir, "ed25519", ks, sizeof ks) < 0 || h_sim_start(&sim, dir, ks, NULL) < 0)
    return check_done("integration.reload_plan");
  config("[plugin.rt]\n");
  struct proc d;
  if (h_daemon_start(&d, dir, "daemon", ini) < 0) {
    h_sim_stop(&sim);
    return check_done("integration.reload_plan");
  }
  CHECK(h_sim_wait(&sim, "connections", 1, 20000) == 0);
  rt_push(&sim, "a", 10, &expect);
  replies("a", "v1: ", 10);

  /* Added. */
  config("[plugin.rt]\n[plugin.other]\n");
  CHECK(rt_hup(&d, log_path) == 0);
  CHECK_INT(h_count(log_path, "added other (other other)"), 1);
  CHECK_INT(h_count(log_path, "kept rt"), 1);
  rt_push(&sim, "b", 10, &expect);
  replies("b", "v1: ", 10);
  replies("b", "other: ", 10);

  /* Config-only change: reconfigure, same instance (its counter goes on). */
  config("[plugin.rt]\nprefix = P2-\n[plugin.other]\n");
  CHECK(rt_hup(&d, log_path) == 0);
  CHECK_INT(h_count(log_path, "reconfigured rt"), 1);
  CHECK_INT(h_count(log_path, "kept other"), 1);
  rt_push(&sim, "c", 10, &expect);
  json_decref(h_sim_post(&sim, "/_sim/push", "{\"count\":1,\"text\":\"count?\"}"));
  expect++;
  CHECK(h_sim_wait(&sim, "acked", expect, 30000) == 0);
  replies("c", "P2-v1: ", 10);
  CHECK_INT(rt_count_replies(&sim, "v1 count=31"), 1);

  /* Removed. */
  config("[plugin.rt]\nprefix = P2-\n");
  CHECK(rt_hup(&d, log_path) == 0);
  CHECK_INT(h_count(log_path, "removed other"), 1);
  rt_push(&sim, "d", 10, &expect);
  replies("d", "P2-v1: ", 10);
  replies("d", "other: ", 0);

  /* Disabled is removed too, and enabled again is added. */
  config("[plugin.rt]\nprefix = P2-\n[plugin.other]\nenabled = false\n");
  CHECK(rt_hup(&d, log_path) == 0);
  config("[plugin.rt]\nprefix = P2-\n[plugin.other]\nenabled = true\n");
  CHECK(rt_hup(&d, log_path) == 0);
  CHECK_INT(h_count(log_path, "added other"), 2);
  rt_push(&sim, "e", 10, &expect);
  replies("e", "other: ", 10);

  /* A storm of 50 HUPs while a change is pending: at most two reloads. */
  config("[plugin.rt]\nprefix = P3-\n");
  int before = rt_reloads(log_path);
  for (int i = 0; i < 50; i++)
    h_kill(&d, SIGHUP);
  h_sleep_ms(1500);
  int storm = rt_reloads(log_path) - before;
  fprintf(stderr, "50 HUPs made %d reload(s)\n", storm);
  CHECK(storm >= 1 && storm <= 2);
  rt_push(&sim, "f", 10, &expect);
  replies("f", "P3-v1: ", 10);
  replies("f", "other: ", 0);

  json_t *st = h_sim_stats(&sim);
  CHECK_INT(h_stat(st, "connections"), 1);
  CHECK_INT(h_stat(st, "messages"), expect);
  CHECK_INT(h_stat(st, "acked"), expect);
  CHECK_INT(h_stat(st, "acked_twice"), 0);
  json_decref(st);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  json_t *ds = h_daemon_stats(dir, "daemon");
  CHECK_INT(h_stat(ds, "processed"), expect);
  /* added, reconfigured, removed, disabled, enabled, and the storm's */
  CHECK_INT(h_stat(ds, "reloads"), 5 + storm);
  CHECK_INT(h_stat(ds, "reloads_failed"), 0);
  CHECK_INT(h_stat(ds, "plugins_kept_mapped"), 0);
  json_decref(ds);
  h_reap(&d);
  h_sim_stop(&sim);
  return check_done("integration.reload_plan");
}
