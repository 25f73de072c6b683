/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the reload tests: a scratch plugin_dir holding rt.so
 * (a variant of tests/reload/reloadtest.c, swapped in by rename like a
 * package manager does), waits on the daemon's log, and the replies the
 * simulator received.
 */
#ifndef BLAZEBOT_TEST_RELOAD_UTIL_H
#define BLAZEBOT_TEST_RELOAD_UTIL_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

#ifndef RT_DIR
#error RT_DIR must name the folder of the reloadtest variants
#endif

/* Installs RT_DIR/variant.so as plugdir/file (new inode: copy + rename). */
static inline int rt_install(const char *plugdir, const char *variant, const char *file) {
  char src[1024], tmp[1024], dst[1024];
  snprintf(src, sizeof src, "%s/%s.so", RT_DIR, variant);
  snprintf(tmp, sizeof tmp, "%s/.%s.tmp", plugdir, file);
  snprintf(dst, sizeof dst, "%s/%s", plugdir, file);
  FILE *in = fopen(src, "rb"), *out = fopen(tmp, "wb");
  if (!in || !out) {
    if (in)
      fclose(in);
    if (out)
      fclose(out);
    return -1;
  }
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0)
    fwrite(buf, 1, n, out);
  fclose(in);
  fclose(out);
  chmod(tmp, 0700);
  return rename(tmp, dst);
}

static inline long long rt_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until log has at least n lines containing needle. */
static inline int rt_wait_log(const char *log, const char *needle, int n,
                              int timeout_ms) {
  return h_wait_count(log, needle, n, timeout_ms);
}

/* The number of reloads the daemon finished (each ends with one line). */
static inline int rt_reloads(const char *log) {
  return h_count(log, "reload: done") + h_count(log, "reload: refused");
}

/* Sends SIGHUP and waits for the reload it causes to end. */
static inline int rt_hup(struct proc *d, const char *log) {
  int before = rt_reloads(log);
  h_kill(d, SIGHUP);
  long long end = rt_ms() + 30000;
  while (rt_ms() < end) {
    if (rt_reloads(log) > before)
      return 0;
    h_sleep_ms(10);
  }
  fprintf(stderr, "reload did not finish (%s)\n", log);
  return -1;
}

/* Counts the replies whose text starts with prefix. */
static inline long rt_count_replies(struct sim *sim, const char *prefix) {
  json_t *sent = h_sim_get(sim, "/_sim/sent");
  long n = 0;
  size_t i, len = strlen(prefix);
  json_t *o;
  json_array_foreach(sent, i, o) {
    const char *t = json_string_value(json_object_get(o, "text"));
    if (t && strncmp(t, prefix, len) == 0)
      n++;
  }
  json_decref(sent);
  return n;
}

/* Pushes n texts ("tag %d") and waits until all are acknowledged. A message
 * is acknowledged only after the server accepted its reply, so the replies
 * to these are there when this returns: callers count them at once. */
static inline void rt_push(struct sim *sim, const char *tag, int n, long *expect) {
  char body[256];
  snprintf(body, sizeof body, "{\"count\":%d,\"text\":\"%s %%d\"}", n, tag);
  json_t *r = h_sim_post(sim, "/_sim/push", body);
  CHECK_INT(h_stat(r, "count"), n);
  json_decref(r);
  *expect += n;
  CHECK(h_sim_wait(sim, "acked", *expect, 60000) == 0);
}

#endif
