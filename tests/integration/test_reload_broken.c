/* SPDX-License-Identifier: MIT */
/*
 * A new build that cannot be used is refused and the old one keeps
 * answering, with the cause in the log: no entry symbol, another ABI major,
 * init fails, not a shared object, file missing. An ini with a syntax error
 * changes nothing. A running call that outlasts reload_timeout_ms abandons
 * that plugin's reload. `blazebot --reload` reports each outcome in its exit
 * code (1 refused, 0 applied), and the link stays up throughout.
 */
#include "reload_util.h"

static char dir[512], ini[700], log_path[700], plugdir[600], ks[600];
static struct sim sim;
static long expect;
static int refusals; /* "reload: plugin rt refused:" lines the log must have */

static int reload_cmd(void) {
  const char *bin = getenv("BLAZEBOT_BIN");
  const char *argv[] = {bin ? bin : "blazebot", "-c", ini, "--reload", NULL};
  return h_run(dir, "reload", argv, 60000);
}

/* The build is refused with why in the log; v1 still answers. */
static void refused(const char *variant, const char *why, const char *tag) {
  if (variant)
    CHECK(rt_install(plugdir, variant, "rt.so") == 0);
  CHECK_INT(reload_cmd(), 1);
  if (!h_contains(log_path, why))
    fprintf(stderr, "log lacks '%s'\n", why);
  CHECK(h_contains(log_path, why));
  /* One refusal, this one: its line and the reload's summary name why. */
  CHECK_INT(h_count(log_path, "reload: plugin rt refused: "), ++refusals);
  CHECK_INT(h_count(log_path, why), 2);
  rt_push(&sim, tag, 10, &expect);
  char prefix[64];
  snprintf(prefix, sizeof prefix, "v1: %s ", tag);
  CHECK_INT(rt_count_replies(&sim, prefix), 10);
}

int main(void) {
  char extra[1024], text[2048];
  snprintf(dir, sizeof dir, "%s", h_dir("reload-broken"));
  snprintf(plugdir, sizeof plugdir, "%s/plugins", dir);
  snprintf(log_path, sizeof log_path, "%s/daemon.err", dir);
  CHECK(mkdir(plugdir, 0700) == 0);
  CHECK(rt_install(plugdir, "rt_v1", "rt.so") == 0);
  if (h_keygen(dir, "ed25519", ks, sizeof ks) < 0 || h_sim_start(&sim, dir, ks, NULL) < 0)
    return check_done("integration.reload_broken");
  snprintf(extra, sizeof extra,
           "plugin_dir = %s\nstatus_file = %s/status.json\n[plugin.rt]\ntick_ms = 100\n",
           plugdir, dir);
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  struct proc d;
  if (h_daemon_start(&d, dir, "daemon", ini) < 0) {
    h_sim_stop(&sim);
    return check_done("integration.reload_broken");
  }
  CHECK(h_sim_wait(&sim, "connections", 1, 20000) == 0);
  rt_push(&sim, "start", 10, &expect);

  refused("rt_noentry", "no blazebot_plugin_v1 entry symbol", "noentry");
  refused("rt_abi2", "built for plugin ABI major 2", "abi2");
  refused("rt_failinit", "init failed (-1): refusing to start on purpose", "failinit");
  snprintf(text, sizeof text, "%s/rt.so", plugdir);
  CHECK(h_write(text, "this is not a shared object\n", 0700) == 0);
  refused(NULL, "rt.so: cannot load:", "notelf");
  unlink(text);
  refused(NULL, "rt.so: No such file or directory", "missing");
  CHECK_INT(h_count(log_path, "the running instance keeps serving"), refusals);

  /* A good build, but the ini has a syntax error: nothing changes. */
  CHECK(rt_install(plugdir, "rt_v2", "rt.so") == 0);
  snprintf(text, sizeof text,
           "[blazebot]\nkeystore = %s\nplugin_dir = %s\n[plugin.rt\ntick_ms = 100\n", ks,
           plugdir);
  CHECK(h_write(ini, text, 0600) == 0);
  /* The helper reads the ini too: it refuses without signalling... */
  CHECK_INT(reload_cmd(), 1);
  CHECK_INT(h_count(log_path, "reload: refused:"), 0);
  /* ...and a plain SIGHUP reaches the daemon, which keeps everything. */
  CHECK(rt_hup(&d, log_path) == 0);
  CHECK(h_contains(log_path, "reload: refused: 1 error(s)"));
  CHECK(h_contains(log_path, "keeping the running configuration"));
  snprintf(text, sizeof text, "%s:4:", ini);
  CHECK(h_contains(log_path, text));
  CHECK_INT(h_count(log_path, "reload: refused:"), 1);
  CHECK_INT(h_count(log_path, "reload: plugin rt refused: "), refusals);
  rt_push(&sim, "syntax", 10, &expect);
  CHECK_INT(rt_count_replies(&sim, "v1: syntax "), 10);

  /* A call that outlasts reload_timeout_ms: that plugin's reload is
   * abandoned and the old instance finishes the call and goes on. */
  char slow[1200];
  snprintf(slow, sizeof slow,
           "plugin_dir = %s\nstatus_file = %s/status.json\nreload_timeout_ms = 300\n"
           "[plugin.rt]\ntick_ms = 100\ndelay_ms = 2000\n",
           plugdir, dir);
  CHECK(rt_install(plugdir, "rt_v1", "rt.so") == 0);
  CHECK(h_config(dir, &sim, ks, slow, ini, sizeof ini) == 0);
  CHECK_INT(reload_cmd(), 0);
  json_decref(h_sim_post(&sim, "/_sim/push", "{\"count\":1,\"text\":\"slow %d\"}"));
  expect++;
  h_sleep_ms(300);
  CHECK(rt_install(plugdir, "rt_v2", "rt.so") == 0);
  CHECK_INT(reload_cmd(), 1);
  CHECK(h_contains(log_path, "did not finish within reload_timeout_ms (300 ms)"));
  CHECK_INT(h_count(log_path, "reload: plugin rt refused: "), ++refusals);
  CHECK(h_sim_wait(&sim, "acked", expect, 30000) == 0);
  CHECK_INT(rt_count_replies(&sim, "v1: slow 0"), 1);
  CHECK_INT(rt_count_replies(&sim, "v2: slow 0"), 0);

  /* Fixed: v2 takes over. */
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  CHECK_INT(reload_cmd(), 0);
  rt_push(&sim, "fixed", 10, &expect);
  CHECK_INT(rt_count_replies(&sim, "v2: fixed "), 10);
  CHECK_INT(rt_count_replies(&sim, "v1: fixed "), 0);

  snprintf(text, sizeof text, "%s/status.json", dir);
  json_t *status = json_load_file(text, 0, NULL);
  CHECK(status != NULL);
  CHECK_INT(h_stat(status, "reloads"), 9);
  CHECK_INT(h_stat(status, "reloads_failed"), 7);
  CHECK(json_is_true(json_object_get(json_object_get(status, "last_reload"), "ok")));
  json_decref(status);

  json_t *st = h_sim_stats(&sim);
  CHECK_INT(h_stat(st, "connections"), 1);
  CHECK_INT(h_stat(st, "messages"), expect);
  CHECK_INT(h_stat(st, "acked"), expect);
  CHECK_INT(h_stat(st, "acked_twice"), 0);
  CHECK_INT(h_stat(st, "created"), expect); /* one reply each, no more */
  json_decref(st);
  CHECK_INT(h_count(log_path, "reload: plugin rt refused: "), 6);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  json_t *ds = h_daemon_stats(dir, "daemon");
  CHECK_INT(h_stat(ds, "processed"), expect);
  CHECK_INT(h_stat(ds, "reloads"), 9);
  CHECK_INT(h_stat(ds, "reloads_failed"), 7);
  CHECK_INT(h_stat(ds, "plugins_kept_mapped"), 0);
  json_decref(ds);
  CHECK(access(text, F_OK) != 0); /* the status file goes with the daemon */
  CHECK_INT(reload_cmd(), 3);     /* and --reload says nobody is there */
  h_reap(&d);
  h_sim_stop(&sim);
  return check_done("integration.reload_broken");
}
