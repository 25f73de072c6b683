/* SPDX-License-Identifier: MIT */
/*
 * bench_flood: throughput and memory of the real daemon against the real
 * simulator on loopback. Not a test (no pass/fail: these machines are shared
 * and noisy); it prints numbers for the README. Scenarios: N pending
 * messages received, processed and acknowledged with no plugin; the same
 * with the echo plugin answering every one (each ack waits for its reply to
 * be accepted). Usage: bench_flood [N] [PLUGIN_DIR_WITH_echo.so]
 * (defaults: 100000 and the build tree's plugins).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static double secs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Peak resident set (VmHWM) of pid in KiB, and CPU seconds used. */
static void proc_usage(pid_t pid, long *hwm_kib, double *cpu_s) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  *hwm_kib = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0)
      *hwm_kib = atol(line + 6);
  if (f)
    fclose(f);
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  f = fopen(path, "r");
  unsigned long ut = 0, st = 0;
  if (f) {
    /* Fields 14 and 15 (utime, stime) after the ")" of the command name. */
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (p)
      sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    fclose(f);
  }
  *cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void run(const char *name, int n, const char *plugin_dir) {
  char dir[512], ks[600], ini[700], pre[16], extra[1024];
  snprintf(dir, sizeof dir, "%s", h_dir(name));
  if (h_keygen(dir, "ed25519", ks, sizeof ks) < 0) {
    fprintf(stderr, "keygen failed\n");
    return;
  }
  snprintf(pre, sizeof pre, "%d", n);
  const char *args[] = {"--preload", pre, NULL};
  struct sim sim;
  if (h_sim_start(&sim, dir, ks, args) < 0)
    return;
  extra[0] = 0;
  if (plugin_dir)
    snprintf(extra, sizeof extra,
             "plugin_dir = %s\nsend_rate_per_min = 100000\n[plugin.echo]\n", plugin_dir);
  h_config(dir, &sim, ks, extra, ini, sizeof ini);
  struct proc d;
  double t0 = secs();
  h_daemon_start(&d, dir, "daemon", ini);
  int ok = h_sim_wait(&sim, "acked", n, 600000) == 0;
  double t = secs() - t0;
  long hwm;
  double cpu;
  proc_usage(d.pid, &hwm, &cpu);
  h_kill(&d, SIGTERM);
  h_wait(&d, 30000);
  json_t *st = h_sim_stats(&sim);
  printf(
      "%-16s %8d msgs  %6.2f s  %9.0f msg/s  daemon cpu %5.2f s (%5.1f us/msg)  peak RSS "
      "%6.1f MiB  replies %ld%s\n",
      name, n, t, n / t, cpu, cpu * 1e6 / n, hwm / 1024.0, h_stat(st, "created"),
      ok ? "" : "  (INCOMPLETE)");
  fflush(stdout);
  json_decref(st);
  h_reap(&d);
  h_sim_stop(&sim);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 100000;
  const char *plugins = argc > 2 ? argv[2] : BENCH_PLUGINS;
  setenv("BLAZEBOT_BIN", BENCH_DAEMON, 0);
  setenv("BLAZEBOT_SIM_BIN", BENCH_SIM, 0);
  setenv("BLAZEBOT_TEST_TMP", BENCH_TMP, 0);
  printf("blazebot bench_flood: %d pending messages, daemon and simulator on loopback\n",
         n);
  run("bench-ack-only", n, NULL);
  /* Replies are paced under Mixin's quota (send_rate_per_min, at most
   * 100,000 a minute), so the echo run measures the whole pipeline at that
   * pace: keep it to a size that takes seconds, not minutes. */
  if (plugins)
    run("bench-echo", n < 20000 ? n : 20000, plugins);
  return 0;
}
