/* SPDX-License-Identifier: MIT */
/*
 * Plugins end to end, the way an operator runs them: the real daemon, real
 * plugin files in a plugin_dir, the real simulator on 127.0.0.1. One mode per
 * run (the first argument):
 *   echo       the first-party echo plugin answers 10,000 preloaded texts:
 *              10,000 replies, each in the 1:1 conversation of its sender and
 *              with the original text, every message acked exactly once;
 *   slow       a probe that takes 20 ms per message gets 5,000 messages of
 *              4 KiB: the daemon's memory stays bounded (it holds ~1,024
 *              and leaves the rest with the server or the kernel's socket
 *              queues), each message is processed once, every one is acked,
 *              and acks keep pace with processing;
 *   outoftree  examples/hello-plugin, built out of tree against an
 *              installed SDK, answers "hello world" with "Hello, world!" and
 *              stops the echo plugin below it (HANDLED);
 *   stats      the counters an operator reads after a run (--stats-file)
 *              include each plugin's.
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <blazebot/plugin.h>

#include "check.h"
#include "harness.h"
#include "keystore.h"
#include "util.h"

#if !defined(ECHO_SO) || !defined(ECHO_ABI10_SO) || !defined(PROBE_DIR) ||               \
    !defined(BLAZEBOT_SOURCE_DIR) || !defined(BLAZEBOT_BUILD_DIR) ||                     \
    !defined(BLAZEBOT_CMAKE)
#error "plugins_e2e.cmake sets ECHO_SO, PROBE_DIR and the source, build and cmake paths"
#endif

/* ASan's shadow memory and quarantine, and TSan's shadow memory (several
 * times the application's), make RSS meaningless as a bound. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BUILT_WITH_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define BUILT_WITH_SANITIZER 1
#endif
#endif
#ifndef BUILT_WITH_SANITIZER
#define BUILT_WITH_SANITIZER 0
#endif

#define ECHO_COUNT 10000
#define SLOW_COUNT 5000
#define RSS_LIMIT_KIB (64 * 1024)
#define SLOW_TEXT 4000 /* bytes of text per slow message */
/* Processed but not yet acknowledged (acks leave every 50 ms here). */
#define ACK_LAG_LIMIT 200

struct world {
  char dir[512], ks[600], ini[700], plugins[600];
  char bot[UUID_STR_LEN];
  struct sim sim;
  struct proc d;
};

/* Folder, plugins/ (0755), keystore and bot id. */
static int world_prepare(struct world *w, const char *tag) {
  memset(w, 0, sizeof *w);
  const char *d = h_dir(tag);
  if (!d)
    return -1;
  snprintf(w->dir, sizeof w->dir, "%s", d);
  snprintf(w->plugins, sizeof w->plugins, "%s/plugins", w->dir);
  if (mkdir(w->plugins, 0755) < 0 || chmod(w->plugins, 0755) < 0)
    return -1;
  if (h_keygen(w->dir, "ed25519", w->ks, sizeof w->ks) < 0)
    return -1;
  struct keystore *ks = NULL;
  char err[512];
  if (keystore_load(w->ks, 1, &ks, err, sizeof err) < 0) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  memcpy(w->bot, ks->user_id, sizeof w->bot);
  keystore_free(ks);
  return 0;
}

/* Simulator (with extra arguments) and daemon (with the [plugin.*]
 * sections); waits for the daemon's connection. Kills what started on
 * failure. */
static int world_start(struct world *w, const char *const sim_args[],
                       const char *sections, const char *extra_ini) {
  char extra[4000];
  int ok = h_sim_start(&w->sim, w->dir, w->ks, sim_args) == 0;
  snprintf(extra, sizeof extra, "plugin_dir = plugins\n%s%s", extra_ini, sections);
  ok = ok && h_config(w->dir, &w->sim, w->ks, extra, w->ini, sizeof w->ini) == 0;
  ok = ok && h_daemon_start(&w->d, w->dir, "daemon", w->ini) == 0;
  ok = ok && h_sim_wait(&w->sim, "connections", 1, 30000) == 0;
  if (ok)
    return 0;
  fprintf(stderr, "could not start the daemon and simulator in %s\n", w->dir);
  if (w->d.pid > 0)
    h_reap(&w->d);
  if (w->sim.p.pid > 0)
    h_reap(&w->sim.p);
  return -1;
}

/* SIGTERM (the daemon must exit 0 within 30 s); returns its stats. */
static json_t *daemon_stop(struct world *w) {
  h_kill(&w->d, SIGTERM);
  CHECK(h_wait(&w->d, 30000) == 0);
  CHECK_INT(w->d.status, 0);
  h_reap(&w->d);
  CHECK(h_no_sanitizer_report(w->dir, "daemon.err"));
  return h_daemon_stats(w->dir, "daemon");
}

/* Every stored message acknowledged exactly once. (Pushed more than once
 * is allowed: under load the daemon may have the server list messages
 * again; what must not repeat is processing and acknowledging.) */
static void check_acked_once(struct world *w, long total) {
  json_t *st = h_sim_stats(&w->sim);
  CHECK_INT(h_stat(st, "messages"), total);
  CHECK_INT(h_stat(st, "acked"), total);
  CHECK_INT(h_stat(st, "unacked"), 0);
  CHECK_INT(h_stat(st, "acked_twice"), 0);
  json_decref(st);
  json_t *ms = h_sim_get(&w->sim, "/_sim/messages");
  CHECK_INT(json_array_size(ms), total);
  long once = 0;
  size_t i;
  json_t *e;
  json_array_foreach(ms, i, e) {
    once += json_integer_value(json_object_get(e, "ack_count")) == 1;
  }
  CHECK_INT(once, total);
  json_decref(ms);
}

/* ---- echo: 10,000 texts ---------------------------------------------------------- */

/* Waits (up to timeout_ms) until all ECHO_COUNT preloaded messages are
 * acknowledged, checking in snapshots taken all along that none was
 * acknowledged before the server accepted its reply. The preload stores
 * "message I" as the I-th message and echo repeats the text, so the reply
 * "message I" answers message I. Returns the last acknowledged count. */
static long wait_acked_after_replies(struct world *w, int timeout_ms) {
  static unsigned char replied[ECHO_COUNT];
  long acked = 0, violations = 0;
  int polls = 0;
  for (int waited = 0; waited < timeout_ms && acked < ECHO_COUNT; polls++) {
    struct h_snapshot snap;
    if (h_snapshot_take(&w->sim, &snap) == 0) {
      size_t i;
      json_t *e;
      memset(replied, 0, sizeof replied);
      json_array_foreach(snap.sent, i, e) {
        const char *text = json_string_value(json_object_get(e, "text"));
        int n = -1;
        if (text && sscanf(text, "message %d", &n) == 1 && n >= 0 && n < ECHO_COUNT)
          replied[n] = 1;
      }
      acked = 0;
      json_array_foreach(snap.messages, i, e) {
        if (!json_is_true(json_object_get(e, "acked")))
          continue;
        acked++;
        if (i >= ECHO_COUNT || !replied[i]) {
          if (violations++ < 5)
            fprintf(stderr,
                    "message %zu (%s) acknowledged before its reply was accepted\n", i,
                    json_string_value(json_object_get(e, "message_id")));
        }
      }
      h_snapshot_free(&snap);
    }
    if (acked < ECHO_COUNT) {
      h_sleep_ms(200);
      waited += 200;
    }
  }
  fprintf(stderr, "echo: %d snapshots of acks and replies\n", polls);
  CHECK(polls > 1);
  CHECK_INT(violations, 0);
  return acked;
}

/* 10,000 messages through the echo plugin built from so: each answered
 * once, with its own text, and acknowledged only after that. */
static void echo_run(const char *tag, const char *so) {
  struct world w;
  char dst[700];
  CHECK(world_prepare(&w, tag) == 0);
  snprintf(dst, sizeof dst, "%s/echo.so", w.plugins);
  CHECK(h_copy_file(so, dst, 0644) == 0);
  const char *args[] = {"--preload", "10000", NULL};
  if (world_start(&w, args, "[plugin.echo]\n", "") < 0) {
    CHECK(0);
    return;
  }
  CHECK_INT(wait_acked_after_replies(&w, 300000), ECHO_COUNT);
  /* No wait for the replies: a message is acknowledged only after its reply
   * was accepted, so with every message acknowledged every reply is in. */
  check_acked_once(&w, ECHO_COUNT);
  json_t *st = h_sim_stats(&w.sim);
  CHECK_INT(h_stat(st, "created"), ECHO_COUNT);
  CHECK_INT(h_stat(st, "create_errors"), 0);
  CHECK_INT(h_stat(st, "receipt_acks"), 0); /* never acks receipts of its own replies */
  json_decref(st);

  /* The preload writes "message I" from user I % 3 (round robin) in that
   * user's 1:1 conversation with the bot. */
  json_t *sent = h_sim_get(&w.sim, "/_sim/sent");
  CHECK_INT(json_array_size(sent), ECHO_COUNT);
  static unsigned char seen[ECHO_COUNT];
  char user_of_class[3][UUID_STR_LEN] = {"", "", ""};
  long bad_text = 0, bad_conv = 0, bad_user = 0, dup = 0;
  size_t i;
  json_t *e;
  json_array_foreach(sent, i, e) {
    const char *text = json_string_value(json_object_get(e, "text"));
    const char *conv = json_string_value(json_object_get(e, "conversation_id"));
    const char *rcpt = json_string_value(json_object_get(e, "recipient_id"));
    const char *cat = json_string_value(json_object_get(e, "category"));
    char want[UUID_STR_LEN], again[32];
    int n = -1;
    if (text)
      sscanf(text, "message %d", &n);
    snprintf(again, sizeof again, "message %d", n);
    /* The reply is the original text, byte for byte. */
    if (!text || !conv || !rcpt || !cat || strcmp(cat, "PLAIN_TEXT") || n < 0 ||
        n >= ECHO_COUNT || strcmp(text, again)) {
      bad_text++;
      continue;
    }
    if (seen[n]++)
      dup++;
    if (uuid_unique_conversation(w.bot, rcpt, want) < 0 || strcmp(want, conv))
      bad_conv++;
    char *u = user_of_class[n % 3];
    if (!u[0])
      snprintf(u, UUID_STR_LEN, "%s", rcpt);
    else if (strcmp(u, rcpt))
      bad_user++;
  }
  json_decref(sent);
  long missing = 0;
  for (int n = 0; n < ECHO_COUNT; n++)
    missing += !seen[n];
  CHECK_INT(bad_text, 0);
  CHECK_INT(dup, 0);
  CHECK_INT(missing, 0);
  CHECK_INT(bad_conv, 0);
  CHECK_INT(bad_user, 0);
  /* Three different senders, each answered in their own conversation. */
  CHECK(strcmp(user_of_class[0], user_of_class[1]) &&
        strcmp(user_of_class[1], user_of_class[2]) &&
        strcmp(user_of_class[0], user_of_class[2]));

  json_t *ds = daemon_stop(&w);
  CHECK_INT(h_stat(ds, "processed"), ECHO_COUNT);
  CHECK_INT(h_stat(ds, "replies_accepted"), ECHO_COUNT);
  CHECK_INT(h_stat(ds, "replies_dropped"), 0);
  CHECK(h_plugin_stopped(w.dir, "echo", ECHO_COUNT, 0));
  CHECK(h_plugins_reported(ds, 1));
  CHECK_INT(h_plugin_stat(ds, "echo", "delivered"), ECHO_COUNT);
  CHECK_INT(h_plugin_stat(ds, "echo", "passed"), ECHO_COUNT);
  json_decref(ds);
  h_sim_stop(&w.sim);
}

/* ---- slow: bounded memory and back pressure ------------------------------------------
 */

/* Lines appended to path since *off (the probe writes one per call). */
static long count_new_lines(const char *path, long *off) {
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  long n = 0;
  char buf[65536];
  size_t r;
  fseek(f, *off, SEEK_SET);
  while ((r = fread(buf, 1, sizeof buf, f)) > 0) {
    for (size_t i = 0; i < r; i++)
      n += buf[i] == '\n';
    *off += (long)r;
  }
  fclose(f);
  return n;
}

static int cmp_id(const void *a, const void *b) {
  return strcmp(a, b);
}

/* Checks that the probe log at path holds exactly want calls, one per
 * message: nothing processed twice, even if the link was re-listed. */
static void check_processed_once(const char *path, long want) {
  char *s = h_read(path);
  char(*ids)[UUID_STR_LEN] = calloc((size_t)want + 1, sizeof *ids);
  long n = 0, dup = 0;
  for (char *line = s; line && *line && ids;) {
    char *nl = strchr(line, '\n');
    if (!nl)
      break;
    *nl = 0;
    if (n <= want && sscanf(line, "%*s %36s", ids[n]) == 1)
      n++;
    line = nl + 1;
  }
  if (ids && n <= want) {
    qsort(ids, (size_t)n, sizeof *ids, cmp_id);
    for (long i = 1; i < n; i++)
      dup += strcmp(ids[i - 1], ids[i]) == 0;
  }
  CHECK_INT(n, want);
  CHECK_INT(dup, 0);
  free(ids);
  free(s);
}

static void mode_slow(void) {
  struct world w;
  char src[1024], dst[700], sections[1200], log[700];
  CHECK(world_prepare(&w, "plugins-e2e-slow") == 0);
  snprintf(src, sizeof src, "%s/probe_a.so", PROBE_DIR);
  snprintf(dst, sizeof dst, "%s/probe_a.so", w.plugins);
  CHECK(h_copy_file(src, dst, 0644) == 0);
  snprintf(log, sizeof log, "%s/probe_a.log", w.dir);
  snprintf(sections, sizeof sections,
           "[plugin.probe_a]\ncategories = *\nsleep_ms = 20\nlog = %s\n", log);
  if (world_start(&w, NULL, sections, "") < 0) {
    CHECK(0);
    return;
  }
  long base_rss = h_rss_kib(w.d.pid);
  /* ~4 KiB texts: a held message costs the daemon about four times that
   * (payload, and the raw JSON with the payload base64-encoded twice), so
   * 1,024 held fit well under the RSS limit and 5,000 would not. */
  static char body[SLOW_TEXT + 128];
  int len = snprintf(body, sizeof body, "{\"count\":%d,\"text\":\"slow %%d ", SLOW_COUNT);
  memset(body + len, 'x', SLOW_TEXT);
  snprintf(body + len + SLOW_TEXT, sizeof body - (size_t)len - SLOW_TEXT, "\"}");
  json_t *r = h_sim_post(&w.sim, "/_sim/push", body);
  CHECK_INT(h_stat(r, "count"), SLOW_COUNT);
  json_decref(r);

  /* 5,000 x 20 ms on one plugin instance is at least 100 s of work. Every
   * 100 ms: the daemon's RSS, the simulator's counters, and the calls the
   * probe finished. */
  long max_rss = base_rss, max_lead = 0, max_lag = 0, log_off = 0;
  long processed = 0, acked = 0;
  int n = 0;
  for (; n < 4000 && acked < SLOW_COUNT; n++) {
    long rss = h_rss_kib(w.d.pid);
    if (rss > max_rss)
      max_rss = rss;
    json_t *st = h_sim_stats(&w.sim);
    long pushed = h_stat(st, "pushed");
    acked = h_stat(st, "acked");
    json_decref(st);
    processed += count_new_lines(log, &log_off);
    if (pushed - acked > max_lead)
      max_lead = pushed - acked;
    if (processed - acked > max_lag)
      max_lag = processed - acked;
    h_sleep_ms(100);
  }
  CHECK_INT(acked, SLOW_COUNT);
  json_t *st = h_sim_stats(&w.sim);
  CHECK_INT(h_stat(st, "messages"), SLOW_COUNT);
  CHECK_INT(h_stat(st, "unacked"), 0);
  long connections = h_stat(st, "connections");
  json_decref(st);
  check_processed_once(log, SLOW_COUNT);
  CHECK_INT(h_count(log, "OVERLAP"), 0);
  json_t *ds = daemon_stop(&w);
  CHECK_INT(h_stat(ds, "processed"), SLOW_COUNT);
  CHECK(h_plugin_stopped(w.dir, "probe_a", SLOW_COUNT, 0));
  CHECK(h_plugins_reported(ds, 1));
  CHECK_INT(h_plugin_stat(ds, "probe_a", "delivered"), SLOW_COUNT);
  json_decref(ds);

  int sanitized =
      BUILT_WITH_SANITIZER ||
      (getenv("BLAZEBOT_SANITIZED") && strcmp(getenv("BLAZEBOT_SANITIZED"), "1") == 0);
  printf("slow: %d samples, %ld connection(s); daemon RSS %ld KiB at start, %ld KiB "
         "max%s; pushed ahead of acked by up to %ld, processed ahead of acked by up "
         "to %ld\n",
         n, connections, base_rss, max_rss, sanitized ? " (sanitized: not checked)" : "",
         max_lead, max_lag);
  CHECK(max_rss > 0);
  if (!sanitized) {
    if (max_rss >= RSS_LIMIT_KIB)
      fprintf(stderr, "daemon RSS reached %ld KiB (limit %d)\n", max_rss, RSS_LIMIT_KIB);
    CHECK(max_rss < RSS_LIMIT_KIB);
  }
  /* Processed messages are acknowledged promptly (acks leave every
   * ack_interval_ms = 50 ms), back pressure or not. */
  if (max_lag > ACK_LAG_LIMIT)
    fprintf(stderr,
            "daemon bug: up to %ld processed messages waited for their acknowledgement "
            "(limit %d): acks stall while reading is paused\n",
            max_lag, ACK_LAG_LIMIT);
  CHECK(max_lag <= ACK_LAG_LIMIT);
  h_sim_stop(&w.sim);
}

/* ---- outoftree: the example plugin as a third party builds it -------------------------
 */

static int run_cmake(const char *dir, const char *tag, const char *const argv[]) {
  int rc = h_run(dir, tag, argv, 300000);
  if (rc != 0) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s.out", dir, tag);
    char *out = h_read(path);
    snprintf(path, sizeof path, "%s/%s.err", dir, tag);
    char *err = h_read(path);
    fprintf(stderr, "%s failed (%d):\n%s\n%s\n", tag, rc, out ? out : "", err ? err : "");
    free(out);
    free(err);
  }
  return rc;
}

static void mode_outoftree(void) {
  struct world w;
  char prefix[700], build[700], prefix_arg[800], src[800], dst[700];
  CHECK(world_prepare(&w, "plugins-e2e-outoftree") == 0);
  snprintf(prefix, sizeof prefix, "%s/prefix", w.dir);
  snprintf(build, sizeof build, "%s/hello-build", w.dir);
  snprintf(prefix_arg, sizeof prefix_arg, "-DCMAKE_PREFIX_PATH=%s", prefix);
  snprintf(src, sizeof src, "%s/examples/hello-plugin", BLAZEBOT_SOURCE_DIR);

  const char *install[] = {BLAZEBOT_CMAKE, "--install", BLAZEBOT_BUILD_DIR,
                           "--prefix",     prefix,      NULL};
  const char *configure[] = {BLAZEBOT_CMAKE,
                             "-S",
                             src,
                             "-B",
                             build,
                             prefix_arg,
                             "-DBLAZEBOT_WERROR=ON",
                             "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                             NULL};
  const char *compile[] = {BLAZEBOT_CMAKE, "--build", build, NULL};
  if (run_cmake(w.dir, "install", install) != 0 ||
      run_cmake(w.dir, "configure", configure) != 0 ||
      run_cmake(w.dir, "build", compile) != 0) {
    CHECK(0);
    return;
  }
  char hello_so[800];
  snprintf(hello_so, sizeof hello_so, "%s/hello.so", build);
  snprintf(dst, sizeof dst, "%s/hello.so", w.plugins);
  CHECK(h_copy_file(hello_so, dst, 0644) == 0);
  snprintf(dst, sizeof dst, "%s/echo.so", w.plugins);
  CHECK(h_copy_file(ECHO_SO, dst, 0644) == 0);

  /* hello first; echo below it gets whatever hello lets pass. */
  if (world_start(&w, NULL, "[plugin.hello]\n[plugin.echo]\npriority = -1\n", "") < 0) {
    CHECK(0);
    return;
  }
  const char *texts[] = {"hello world", "Hello,   blazebot  ", "goodbye", "helloworld"};
  for (int i = 0; i < 4; i++) {
    char body[256];
    snprintf(body, sizeof body, "{\"text\":\"%s\"}", texts[i]);
    json_t *r = h_sim_post(&w.sim, "/_sim/push", body);
    CHECK_INT(h_stat(r, "count"), 1);
    json_decref(r);
  }
  CHECK(h_sim_wait(&w.sim, "acked", 4, 30000) == 0);
  check_acked_once(&w, 4); /* and the replies are in (acked after them) */

  const char *want[] = {"Hello, world!", "Hello, blazebot!", "goodbye", "helloworld"};
  int found[4] = {0, 0, 0, 0};
  json_t *sent = h_sim_get(&w.sim, "/_sim/sent");
  CHECK_INT(json_array_size(sent), 4);
  size_t i;
  json_t *e;
  json_array_foreach(sent, i, e) {
    const char *text = json_string_value(json_object_get(e, "text"));
    const char *conv = json_string_value(json_object_get(e, "conversation_id"));
    const char *rcpt = json_string_value(json_object_get(e, "recipient_id"));
    char conv_want[UUID_STR_LEN];
    CHECK(rcpt && uuid_unique_conversation(w.bot, rcpt, conv_want) == 0);
    CHECK_STR(conv, conv_want);
    for (int k = 0; k < 4; k++)
      if (text && !strcmp(text, want[k]))
        found[k]++;
  }
  json_decref(sent);
  for (int k = 0; k < 4; k++) {
    if (found[k] != 1)
      fprintf(stderr, "reply \"%s\" seen %d times\n", want[k], found[k]);
    CHECK_INT(found[k], 1);
  }
  json_t *ds = daemon_stop(&w);
  CHECK(h_plugin_stopped(w.dir, "hello", 4, 0));
  CHECK(h_plugin_stopped(w.dir, "echo", 2, 0)); /* greetings stopped at hello */
  CHECK(h_plugins_reported(ds, 2));
  CHECK_INT(h_plugin_stat(ds, "hello", "handled"), 2);
  CHECK_INT(h_plugin_stat(ds, "hello", "passed"), 2);
  CHECK_INT(h_plugin_stat(ds, "echo", "delivered"), 2);
  json_decref(ds);
  snprintf(dst, sizeof dst, "%s/daemon.err", w.dir);
  CHECK(h_contains(dst, "plugin hello loaded: hello 1.0"));
  h_sim_stop(&w.sim);
}

/* ---- stats: per-plugin counters in the exit stats ------------------------------------
 */

static void mode_stats(void) {
  struct world w;
  char dst[700];
  CHECK(world_prepare(&w, "plugins-e2e-stats") == 0);
  snprintf(dst, sizeof dst, "%s/echo.so", w.plugins);
  CHECK(h_copy_file(ECHO_SO, dst, 0644) == 0);
  const char *args[] = {"--preload", "3", NULL};
  if (world_start(&w, args, "[plugin.echo]\n", "") < 0) {
    CHECK(0);
    return;
  }
  CHECK(h_sim_wait(&w.sim, "acked", 3, 30000) == 0);
  json_t *ds = daemon_stop(&w);
  CHECK_INT(h_stat(ds, "processed"), 3);
  json_t *echo = json_object_get(json_object_get(ds, "plugins"), "echo");
  if (!echo)
    fprintf(stderr,
            "daemon bug: the exit stats have no counters for plugin echo: "
            "\"plugins\":%s\n",
            json_object_get(ds, "plugins") ? "{}" : "missing");
  CHECK(echo != NULL);
  CHECK_INT(h_stat(echo, "delivered"), 3);
  CHECK_INT(h_stat(echo, "passed"), 3);
  CHECK_INT(h_stat(echo, "errors"), 0);
  json_decref(ds);
  h_sim_stop(&w.sim);
}

static void mode_echo(void) {
  echo_run("plugins-e2e-echo", ECHO_SO);
}

/* A plugin compiled against plugin.h 1.0 (the frozen copy in tests/abi/v1.0)
 * loads on this host and behaves exactly as before. */
static void mode_abi10(void) {
  void *dl = dlopen(ECHO_ABI10_SO, RTLD_NOW | RTLD_LOCAL);
  CHECK(dl != NULL);
  if (!dl)
    return;
  const struct blazebot_plugin *(*entry)(void) =
      (const struct blazebot_plugin *(*)(void))dlsym(dl, BLAZEBOT_ENTRY_SYMBOL);
  CHECK(entry != NULL);
  if (entry) {
    const struct blazebot_plugin *d = entry();
    CHECK_INT(d->abi_major, 1);
    CHECK_INT(d->abi_minor, 0); /* really built against 1.0 */
    CHECK(d->size <= sizeof(struct blazebot_plugin));
  }
  dlclose(dl);
  CHECK(BLAZEBOT_ABI_MINOR >= 1);
  echo_run("plugins-e2e-abi10", ECHO_ABI10_SO);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  char name[64];
  snprintf(name, sizeof name, "integration.plugins_e2e.%s", mode);
  if (!strcmp(mode, "echo"))
    mode_echo();
  else if (!strcmp(mode, "abi10"))
    mode_abi10();
  else if (!strcmp(mode, "slow"))
    mode_slow();
  else if (!strcmp(mode, "outoftree"))
    mode_outoftree();
  else if (!strcmp(mode, "stats"))
    mode_stats();
  else {
    fprintf(stderr, "usage: %s echo|abi10|slow|outoftree|stats\n", argv[0]);
    return 2;
  }
  return check_done(name);
}
