/* SPDX-License-Identifier: MIT */
/*
 * blazebot-bench: the benchmark behind the README's Performance section.
 * Not a test (no pass/fail; these machines are shared and noisy): it runs
 * the real daemon against the real simulator on loopback and prints a
 * table, then one JSON object with every figure.
 *
 *   floor_us_per_msg     in this process, the CPU cost of what any Blaze
 *                        client must do per echoed message, on frames shaped
 *                        like the simulator's: inflate the push, parse its
 *                        JSON, build the reply's JSON, deflate it
 *   receive_msgs_per_s   N pending PLAIN_TEXT messages, no plugin: from the
 *                        daemon's start to the last acknowledgement
 *   echo_msgs_per_s      the same with the echo plugin answering each one
 *                        (send_rate_per_min = 0), until every reply arrived
 *                        and every message was acknowledged; for 20,000 and
 *                        100,000 messages
 *   daemon_cpu_us_per_msg, sim_cpu_us_per_msg   user + sys of each process
 *                        over the echo run (a slow simulator shows here)
 *   cpu_over_floor       daemon CPU per echo / floor
 *   latency_*_ms         first push to the reply's arrival, at a steady
 *                        1,000 messages a second (the simulator paces them)
 *   reload_pause_ms      the largest added latency (over the median) of the
 *                        messages pushed around a SIGHUP that swaps the echo
 *                        plugin, at the same steady rate
 *   idle_rss_kib         the daemon connected, echo loaded, nothing to do
 *   idle_anon_kib        the part of it that is the daemon's own (RssAnon):
 *                        the rest is shared library code (libcrypto, libc)
 *
 * The simulator has 1,000 users, each writing in a conversation of their
 * own (replies in one conversation go one at a time, in order).
 *   peak_rss_kib_100k    VmHWM over the 100,000-message echo run
 *
 * Usage: blazebot-bench [--quick] [--floor] [--latency] [--json FILE]
 * (--quick: small counts, to check that it runs; figures meaningless;
 * --floor: only the floor, e.g. under callgrind; --latency: only the
 * steady-rate latency and reload figures; BENCH_LATENCY_DUMP=FILE writes
 * each steady-rate sample as "pushed_us latency_us").
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "buf.h"
#include "codec.h"
#include "harness.h"
#include "util.h"

static double secs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* user + sys CPU seconds of pid; *sys_out (if set) gets the sys part. */
static double cpu_split(pid_t pid, double *sys_out) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  unsigned long ut = 0, st = 0;
  char *p = strrchr(buf, ')');
  if (!p ||
      sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
    return -1;
  if (sys_out)
    *sys_out = (double)st / (double)sysconf(_SC_CLK_TCK);
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double cpu_of(pid_t pid) {
  return cpu_split(pid, NULL);
}

/* A "Key:   N kB" line of /proc/pid/status, in KiB. */
static long status_kib(pid_t pid, const char *key) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  long v = -1;
  size_t kl = strlen(key);
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, key, kl) && line[kl] == ':')
      v = atol(line + kl + 1);
  if (f)
    fclose(f);
  return v;
}

/* ---- the codec floor ---- */

/* A push shaped like the simulator's CREATE_MESSAGE (same members). */
static json_t *sample_push(int i) {
  char text[64], b64[128], b64u[128], mid[40];
  snprintf(text, sizeof text, "message %d", i);
  base64_encode((const unsigned char *)text, strlen(text), 0, b64);
  base64_encode((const unsigned char *)text, strlen(text), 1, b64u);
  snprintf(mid, sizeof mid, "6a8f6e6f-2c5d-4b0f-9c6e-%012d", i);
  json_t *data = json_pack(
      "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:i,s:s,s:s}", "type",
      "message", "representative_id", "", "quote_message_id", "", "conversation_id",
      "0b2f3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d", "user_id",
      "e8e5b807-fa8b-455a-8dfa-b189d28310ff", "session_id",
      "1a2b3c4d-5e6f-4a1b-9c2d-3e4f5a6b7c8d", "message_id", mid, "category", "PLAIN_TEXT",
      "data", b64, "data_base64", b64u, "status", "SENT", "source",
      "LIST_PENDING_MESSAGES", "silent", 0, "expire_in", 0, "created_at",
      "2026-11-29T12:00:00.123456789Z", "updated_at", "2026-11-29T12:00:00.123456789Z");
  return json_pack("{s:s,s:s,s:o}", "id", "3c9e6a1e-8b7d-4c2a-9f1e-0d2c3b4a5f6e",
                   "action", "CREATE_MESSAGE", "data", data);
}

/* CPU microseconds per message for inflate + parse + build + deflate. */
static double floor_us(int iterations, size_t *frame_bytes) {
  enum { FRAMES = 64 };
  struct codec *c = codec_new(4u << 20, 3);
  struct buf frames[FRAMES], in = {0}, out = {0}, z = {0};
  memset(frames, 0, sizeof frames);
  for (int i = 0; i < FRAMES; i++) {
    json_t *p = sample_push(i);
    char *s = json_dumps(p, JSON_COMPACT);
    codec_deflate(c, s, strlen(s), &frames[i]);
    free(s);
    json_decref(p);
  }
  *frame_bytes = frames[0].len;
  struct timespec t0, t1;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
  for (int i = 0; i < iterations; i++) {
    struct buf *f = &frames[i % FRAMES];
    buf_reset(&in);
    if (codec_inflate(c, f->data, f->len, &in) < 0)
      break;
    json_t *root = json_loadb((const char *)in.data, in.len, 0, NULL);
    json_t *d = json_object_get(root, "data");
    json_t *reply = json_pack(
        "{s:s,s:s,s:{s:s,s:s,s:s,s:s}}", "id", "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
        "action", "CREATE_MESSAGE", "params", "conversation_id",
        json_string_value(json_object_get(d, "conversation_id")), "message_id",
        "5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d", "category", "PLAIN_TEXT", "data_base64",
        json_string_value(json_object_get(d, "data_base64")));
    buf_reset(&out);
    size_t need = json_dumpb(reply, NULL, 0, JSON_COMPACT);
    buf_reserve(&out, need);
    out.len = json_dumpb(reply, (char *)out.data, need, JSON_COMPACT);
    buf_reset(&z);
    codec_deflate(c, out.data, out.len, &z);
    json_decref(reply);
    json_decref(root);
  }
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
  for (int i = 0; i < FRAMES; i++)
    buf_fini(&frames[i]);
  buf_fini(&in);
  buf_fini(&out);
  buf_fini(&z);
  codec_free(c);
  double us =
      (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
  return us / iterations;
}

/* ---- runs against the simulator ---- */

struct run {
  double wall_s, daemon_cpu_s, daemon_sys_s, sim_cpu_s;
  long peak_rss_kib, replies;
  int complete;
};

static char plugins_dir[700];

/* Users writing to the bot, each in a conversation of their own: replies
 * keep their order within a conversation (one in flight at a time), so a
 * busy bot has many. */
#define BENCH_USERS "1000"

/* A scratch folder with a keystore and a plugin folder holding echo.so. */
static int prepare(const char *name, char *dir, size_t dcap, char *ks, size_t kcap) {
  snprintf(dir, dcap, "%s", h_dir(name));
  snprintf(plugins_dir, sizeof plugins_dir, "%s/plugins", dir);
  char so[800];
  snprintf(so, sizeof so, "%s/echo.so", plugins_dir);
  if (mkdir(plugins_dir, 0755) < 0 || chmod(plugins_dir, 0755) < 0 ||
      h_copy_file(BENCH_ECHO_SO, so, 0644) < 0)
    return -1;
  return h_keygen_(dir, "ed25519", ks, kcap);
}

static const char *config_extra(int echo) {
  return echo ? "plugin_dir = plugins\nsend_rate_per_min = 0\n[plugin.echo]\n"
              : "send_rate_per_min = 0\n";
}

/* n messages pending before the daemon starts; timed until all acked (and,
 * with echo, all answered). */
static struct run flood(const char *name, int n, int echo) {
  struct run r = {0};
  char dir[512], ks[600], ini[700], pre[16];
  if (prepare(name, dir, sizeof dir, ks, sizeof ks) < 0)
    return r;
  snprintf(pre, sizeof pre, "%d", n);
  const char *args[] = {"--preload",         pre, "--users", BENCH_USERS,
                        "--prebuilt-pushes", NULL};
  struct sim sim;
  if (h_sim_start_(&sim, dir, ks, args) < 0)
    return r;
  h_config(dir, &sim, ks, config_extra(echo), ini, sizeof ini);
  struct proc d;
  double sim0 = cpu_of(sim.p.pid), t0 = secs();
  if (h_daemon_start_(&d, dir, "daemon", ini) < 0) {
    h_sim_stop(&sim);
    return r;
  }
  r.complete = h_sim_wait(&sim, "acked", n, 900000) == 0 &&
               (!echo || h_sim_wait(&sim, "created", n, 60000) == 0);
  r.wall_s = secs() - t0;
  r.daemon_cpu_s = cpu_split(d.pid, &r.daemon_sys_s);
  r.sim_cpu_s = cpu_of(sim.p.pid) - sim0;
  r.peak_rss_kib = status_kib(d.pid, "VmHWM");
  json_t *st = h_sim_stats(&sim);
  r.replies = h_stat(st, "created");
  json_decref(st);
  h_kill(&d, SIGTERM);
  h_wait(&d, 30000);
  h_reap(&d);
  h_sim_stop(&sim);
  return r;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

struct latency {
  double p50_ms, p99_ms, max_ms, reload_pause_ms, reload_max_ms;
  long idle_rss_kib, idle_anon_kib, samples;
};

/* Samples [index, pushed_us, latency_us] with index >= first, in us. */
static size_t samples_from(json_t *lat, long first, uint32_t *out, int64_t *pushed,
                           size_t cap) {
  size_t n = 0, i;
  json_t *e;
  json_array_foreach(json_object_get(lat, "samples"), i, e) {
    if (json_integer_value(json_array_get(e, 0)) < first || n >= cap)
      continue;
    pushed[n] = json_integer_value(json_array_get(e, 1));
    out[n++] = (uint32_t)json_integer_value(json_array_get(e, 2));
  }
  return n;
}

/* Steady pushes at rate/s: latency percentiles, then the same around a
 * reload that swaps the echo plugin. */
static struct latency steady(int count, int rate) {
  struct latency L = {0};
  char dir[512], ks[600], ini[700], body[200];
  if (prepare("bench-latency", dir, sizeof dir, ks, sizeof ks) < 0)
    return L;
  struct sim sim;
  const char *args[] = {"--users", BENCH_USERS, NULL};
  if (h_sim_start_(&sim, dir, ks, args) < 0)
    return L;
  h_config(dir, &sim, ks, config_extra(1), ini, sizeof ini);
  struct proc d;
  if (h_daemon_start_(&d, dir, "daemon", ini) < 0) {
    h_sim_stop(&sim);
    return L;
  }
  h_sim_wait(&sim, "connections", 1, 30000);
  /* warm up, then idle */
  json_decref(h_sim_post(&sim, "/_sim/push", "{\"count\":100,\"text\":\"warm %d\"}"));
  h_sim_wait(&sim, "acked", 100, 30000);
  h_sleep_ms(1500);
  L.idle_rss_kib = status_kib(d.pid, "VmRSS");
  L.idle_anon_kib = status_kib(d.pid, "RssAnon");

  uint32_t *lat = calloc((size_t)count, sizeof *lat);
  int64_t *pushed = calloc((size_t)count, sizeof *pushed);
  snprintf(body, sizeof body, "{\"count\":%d,\"text\":\"#%%n\",\"rate\":%d}", count,
           rate);
  json_decref(h_sim_post(&sim, "/_sim/push", body));
  h_sim_wait(&sim, "acked", 100 + count, 60000 + count * 2000L / rate);
  json_t *lj = h_sim_get(&sim, "/_sim/latency");
  size_t n = samples_from(lj, 0, lat, pushed, (size_t)count);
  json_decref(lj);
  L.samples = (long)n;
  const char *dump = getenv("BENCH_LATENCY_DUMP"); /* "pushed_us latency_us" lines */
  FILE *df = dump ? fopen(dump, "w") : NULL;
  for (size_t i = 0; df && i < n; i++)
    fprintf(df, "%lld %u\n", (long long)pushed[i], lat[i]);
  if (df)
    fclose(df);
  qsort(lat, n, sizeof *lat, cmp_u32);
  if (n) {
    L.p50_ms = lat[n / 2] / 1e3;
    L.p99_ms = lat[(n * 99) / 100] / 1e3;
    L.max_ms = lat[n - 1] / 1e3;
  }

  /* The same rate with a plugin swap in the middle. */
  long first = 100 + count;
  snprintf(body, sizeof body, "{\"count\":%d,\"text\":\"#%%n\",\"rate\":%d}", count,
           rate);
  json_decref(h_sim_post(&sim, "/_sim/push", body));
  h_sleep_ms(count * 500 / rate);
  char so[800], tmp[800];
  snprintf(so, sizeof so, "%s/echo.so", plugins_dir);
  snprintf(tmp, sizeof tmp, "%s/.echo.so.new", plugins_dir);
  h_copy_file(BENCH_ECHO_SO, tmp, 0644);
  rename(tmp, so); /* a new file: the reload swaps the plugin */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t hup_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
  h_kill(&d, SIGHUP);
  h_sim_wait(&sim, "acked", first + count, 60000 + count * 2000L / rate);
  lj = h_sim_get(&sim, "/_sim/latency");
  n = samples_from(lj, first, lat, pushed, (size_t)count);
  json_decref(lj);
  /* messages pushed from 0.5 s before the signal to 2 s after it */
  uint32_t worst = 0;
  for (size_t i = 0; i < n; i++)
    if (pushed[i] >= hup_us - 500000 && pushed[i] <= hup_us + 2000000 && lat[i] > worst)
      worst = lat[i];
  L.reload_max_ms = worst / 1e3;
  L.reload_pause_ms = worst / 1e3 > L.p50_ms ? worst / 1e3 - L.p50_ms : 0;
  free(lat);
  free(pushed);
  h_kill(&d, SIGTERM);
  h_wait(&d, 30000);
  h_reap(&d);
  h_sim_stop(&sim);
  return L;
}

int main(int argc, char **argv) {
  int quick = 0, floor_only = 0, latency_only = 0;
  const char *json_path = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else if (!strcmp(argv[i], "--floor"))
      floor_only = 1;
    else if (!strcmp(argv[i], "--latency"))
      latency_only = 1;
    else if (!strcmp(argv[i], "--json") && i + 1 < argc)
      json_path = argv[++i];
    else {
      fprintf(stderr,
              "usage: blazebot-bench [--quick] [--floor] [--latency] [--json FILE]\n");
      return 2;
    }
  }
  setenv("BLAZEBOT_BIN", BENCH_DAEMON, 0);
  setenv("BLAZEBOT_SIM_BIN", BENCH_SIM, 0);
  setenv("BLAZEBOT_TEST_TMP", BENCH_TMP, 0);
  int n_small = quick ? 200 : 20000, n_big = quick ? 500 : 100000;
  int steady_n = quick ? 300 : 5000;

  size_t frame_bytes = 0;
  double floor = floor_us(quick ? 2000 : 100000, &frame_bytes);
  printf("blazebot-bench%s: daemon and simulator on loopback, %ld CPUs\n",
         quick ? " (quick: figures meaningless)" : "", sysconf(_SC_NPROCESSORS_ONLN));
  printf("%-34s %10.1f us/msg (%zu-byte frames)\n", "floor (inflate+parse+build+deflate)",
         floor, frame_bytes);
  fflush(stdout);
  if (floor_only) /* e.g. under callgrind, to count the floor's instructions */
    return 0;

  if (latency_only) { /* the steady-rate figures alone */
    struct latency L = steady(steady_n, 1000);
    printf("%-34s p50 %.2f ms  p99 %.2f ms  max %.2f ms (%ld samples)\n",
           "latency at 1,000 msg/s", L.p50_ms, L.p99_ms, L.max_ms, L.samples);
    printf("%-34s %.1f ms added (max %.2f ms)\n", "reload (plugin swap) at 1,000 msg/s",
           L.reload_pause_ms, L.reload_max_ms);
    return L.samples == steady_n ? 0 : 1;
  }
  struct run rx = flood("bench-receive", n_big, 0);
  printf("%-34s %10.0f msg/s  daemon %5.1f us/msg  sim %5.1f us/msg%s\n", "receive + ack",
         n_big / rx.wall_s, rx.daemon_cpu_s * 1e6 / n_big, rx.sim_cpu_s * 1e6 / n_big,
         rx.complete ? "" : "  (INCOMPLETE)");
  fflush(stdout);
  struct run e1 = flood("bench-echo", n_small, 1);
  printf("%-34s %10.0f msg/s  daemon %5.1f us/msg  sim %5.1f us/msg%s\n", "echo (small)",
         n_small / e1.wall_s, e1.daemon_cpu_s * 1e6 / n_small,
         e1.sim_cpu_s * 1e6 / n_small, e1.complete ? "" : "  (INCOMPLETE)");
  fflush(stdout);
  struct run e2 = flood("bench-echo-big", n_big, 1);
  printf("%-34s %10.0f msg/s  daemon %5.1f us/msg (sys %.1f)  sim %5.1f us/msg  peak RSS "
         "%ld KiB%s\n",
         "echo (big)", n_big / e2.wall_s, e2.daemon_cpu_s * 1e6 / n_big,
         e2.daemon_sys_s * 1e6 / n_big, e2.sim_cpu_s * 1e6 / n_big, e2.peak_rss_kib,
         e2.complete ? "" : "  (INCOMPLETE)");
  fflush(stdout);
  struct latency L = steady(steady_n, 1000);
  printf("%-34s p50 %.2f ms  p99 %.2f ms  max %.2f ms (%ld samples)\n",
         "latency at 1,000 msg/s", L.p50_ms, L.p99_ms, L.max_ms, L.samples);
  printf("%-34s %.1f ms added (max %.2f ms)\n", "reload (plugin swap) at 1,000 msg/s",
         L.reload_pause_ms, L.reload_max_ms);
  printf("%-34s %ld KiB (own, anonymous: %ld KiB)\n", "idle RSS", L.idle_rss_kib,
         L.idle_anon_kib);

  double echo_cpu_us = e2.daemon_cpu_s * 1e6 / n_big;
  json_t *o = json_pack(
      "{s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:I,s:I,s:I,s:i,s:i,s:b}",
      "echo_msgs_per_s", n_big / e2.wall_s, "echo_msgs_per_s_20k", n_small / e1.wall_s,
      "receive_msgs_per_s", n_big / rx.wall_s, "daemon_cpu_us_per_msg", echo_cpu_us,
      "sim_cpu_us_per_msg", e2.sim_cpu_s * 1e6 / n_big, "daemon_sys_us_per_msg",
      e2.daemon_sys_s * 1e6 / n_big, "receive_daemon_cpu_us_per_msg",
      rx.daemon_cpu_s * 1e6 / n_big, "floor_us_per_msg", floor, "cpu_over_floor",
      floor > 0 ? echo_cpu_us / floor : 0, "latency_p50_ms", L.p50_ms, "latency_p99_ms",
      L.p99_ms, "latency_max_ms", L.max_ms, "reload_pause_ms", L.reload_pause_ms,
      "idle_rss_kib", (json_int_t)L.idle_rss_kib, "idle_anon_kib",
      (json_int_t)L.idle_anon_kib, "peak_rss_kib_100k", (json_int_t)e2.peak_rss_kib,
      "messages_small", n_small, "messages_big", n_big, "complete",
      rx.complete && e1.complete && e2.complete && L.samples == steady_n);
  char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
  printf("%s\n", s);
  if (json_path) {
    FILE *f = fopen(json_path, "w");
    if (f) {
      fprintf(f, "%s\n", s);
      fclose(f);
    }
  }
  int ok = json_is_true(json_object_get(o, "complete"));
  free(s);
  json_decref(o);
  return ok ? 0 : 1;
}
