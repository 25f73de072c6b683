/* SPDX-License-Identifier: MIT */
/*
 * Orderly shutdown with a slow plugin (the probe, 400 ms per message) and a
 * full queue of messages waiting for it:
 *   graceful  one SIGTERM: the call running finishes, the queued messages
 *             are not delivered (nor acknowledged), the plugin's shutdown
 *             runs after its last call, workers are joined before the
 *             plugin is unmapped, exit 0 with no sanitizer report;
 *   forced    a second SIGTERM while the first waits: the daemon exits
 *             within 2 s (the plugin, still in its call, is abandoned and
 *             never shut down under its feet);
 *   fatal     a 401 ERROR frame while the plugin is busy: exit 2, same
 *             order as graceful.
 * The probe reports any call after its shutdown, and a shutdown during a
 * call, on stderr; neither may appear. Nothing unprocessed is acknowledged.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "check.h"
#include "harness.h"

#ifndef PROBE_DIR
#error "plugins_e2e.cmake sets PROBE_DIR"
#endif

static long long ms_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Starts the simulator (40 pending texts) and the daemon with the slow
 * probe; returns once the probe is in its first call. */
static int start(const char *name, struct sim *sim, struct proc *d, char *dir, size_t cap,
                 const char *extra_ini) {
  char ks[600], ini[700], plugins[600], so[700], src[700], extra[2000], log[700];
  snprintf(dir, cap, "%s", h_dir(name));
  snprintf(plugins, sizeof plugins, "%s/plugins", dir);
  snprintf(so, sizeof so, "%s/probe_a.so", plugins);
  snprintf(src, sizeof src, "%s/probe_a.so", PROBE_DIR);
  snprintf(log, sizeof log, "%s/probe.log", dir);
  if (mkdir(plugins, 0755) < 0 || chmod(plugins, 0755) < 0 ||
      h_copy_file(src, so, 0644) < 0 || h_keygen(dir, "ed25519", ks, sizeof ks) < 0)
    return -1;
  const char *args[] = {"--preload", "40", NULL};
  if (h_sim_start(sim, dir, ks, args) < 0)
    return -1;
  snprintf(
      extra, sizeof extra,
      "plugin_dir = plugins\n%s[plugin.probe_a]\nsleep_ms = 400\nreply = ok\nlog = %s\n",
      extra_ini, log);
  if (h_config(dir, sim, ks, extra, ini, sizeof ini) < 0 ||
      h_daemon_start(d, dir, "daemon", ini) < 0) {
    h_sim_stop(sim);
    return -1;
  }
  /* The first message is in the probe once the simulator pushed it. */
  if (h_sim_wait(sim, "pushed", 10, 30000) < 0)
    return -1;
  h_sleep_ms(300);
  return 0;
}

static void common_checks(const char *dir, struct sim *sim) {
  char err[700];
  snprintf(err, sizeof err, "%s/daemon.err", dir);
  CHECK(!h_contains(err, "AFTER_SHUTDOWN"));
  CHECK(!h_contains(err, "SHUTDOWN_DURING_CALL"));
  /* Not everything was processed, and nothing unprocessed was acked: the
   * probe logged every message it finished, one line each. */
  char log[700];
  snprintf(log, sizeof log, "%s/probe.log", dir);
  long calls = h_count(log, "probe_a ");
  json_t *st = h_sim_stats(sim);
  fprintf(stderr, "%s: %ld call(s) finished, %ld acked\n", dir, calls,
          h_stat(st, "acked"));
  CHECK(calls < 40);
  CHECK(h_stat(st, "acked") <= calls);
  json_decref(st);
}

int main(void) {
  char dir[512], log[700], err[700];
  struct sim sim;
  struct proc d;

  /* graceful */
  if (start("shutdown-graceful", &sim, &d, dir, sizeof dir,
            "shutdown_timeout_ms = 1000\n") < 0) {
    CHECK(!"simulator and daemon started");
  } else {
    long long t0 = ms_now();
    h_kill(&d, SIGTERM);
    CHECK(h_wait(&d, 20000) == 0);
    fprintf(stderr, "graceful stop took %lld ms\n", ms_now() - t0);
    CHECK_INT(d.status, 0);
    h_reap(&d);
    common_checks(dir, &sim);
    snprintf(log, sizeof log, "%s/probe.log", dir);
    CHECK_INT(h_count(log, "SHUTDOWN"), 1);
    snprintf(err, sizeof err, "%s/daemon.err", dir);
    CHECK(h_contains(err, "plugin probe_a stopped"));
    CHECK(!h_contains(err, "still busy"));
    CHECK(h_no_sanitizer_report(dir, "daemon.err"));
    h_sim_stop(&sim);
  }

  /* forced */
  if (start("shutdown-forced", &sim, &d, dir, sizeof dir,
            "shutdown_timeout_ms = 30000\n") < 0) {
    CHECK(!"simulator and daemon started");
  } else {
    h_kill(&d, SIGTERM);
    h_sleep_ms(200);
    long long t0 = ms_now();
    h_kill(&d, SIGTERM);
    CHECK(h_wait(&d, 5000) == 0);
    long long took = ms_now() - t0;
    fprintf(stderr, "second SIGTERM to exit: %lld ms\n", took);
    CHECK(took < 2000);
    CHECK_INT(d.status, 0);
    h_reap(&d);
    common_checks(dir, &sim);
    CHECK(h_no_sanitizer_report(dir, "daemon.err"));
    h_sim_stop(&sim);
  }

  /* fatal */
  if (start("shutdown-fatal", &sim, &d, dir, sizeof dir, "shutdown_timeout_ms = 5000\n") <
      0) {
    CHECK(!"simulator and daemon started");
  } else {
    json_t *r = h_sim_post(&sim, "/_sim/fault", "{\"fault\":\"reject401\"}");
    json_decref(r);
    r = h_sim_post(&sim, "/_sim/fault", "{\"fault\":\"error401\"}");
    json_decref(r);
    r = h_sim_post(&sim, "/_sim/push", "{\"count\":1,\"text\":\"wake\"}");
    json_decref(r);
    CHECK(h_wait(&d, 30000) == 0);
    CHECK_INT(d.status, 2);
    h_reap(&d);
    common_checks(dir, &sim);
    snprintf(log, sizeof log, "%s/probe.log", dir);
    CHECK_INT(h_count(log, "SHUTDOWN"), 1);
    CHECK(h_no_sanitizer_report(dir, "daemon.err"));
    h_sim_stop(&sim);
  }
  return check_done("integration.shutdown");
}
