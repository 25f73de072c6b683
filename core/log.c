/* SPDX-License-Identifier: MIT */
/*
 * log: see log.h. The level is a relaxed atomic so any thread may read it.
 */
#include "log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_level = LOGL_INFO; /* written by main.c / reload */
static int g_journal = -1;             /* lazily detected, benign race */

static const char *const names[] = {"error", "warn", "info", "debug"};
static const int syslog_prio[] = {3, 4, 6, 7};

void log_set_level(int level) {
  atomic_store_explicit(&g_level, level, memory_order_relaxed);
}

int log_get_level(void) {
  return atomic_load_explicit(&g_level, memory_order_relaxed);
}

int log_level_parse(const char *s, int *out) {
  for (int i = 0; i < 4; i++) {
    if (strcmp(s, names[i]) == 0) {
      *out = i;
      return 0;
    }
  }
  if (strcmp(s, "warning") == 0) {
    *out = LOGL_WARN;
    return 0;
  }
  return -1;
}

void log_vmsg(int level, const char *tag, const char *fmt, va_list ap) {
  if (level > log_get_level())
    return;
  if (level < 0)
    level = 0;
  if (level > 3)
    level = 3;
  if (g_journal < 0)
    g_journal = getenv("JOURNAL_STREAM") != NULL;

  char line[2048];
  size_t n;
  if (g_journal) {
    n = (size_t)snprintf(line, sizeof line, "<%d>%s%s", syslog_prio[level],
                         tag ? tag : "", tag ? ": " : "");
  } else {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ %s %s%s",
                          ts.tv_nsec / 1000000, names[level], tag ? tag : "",
                          tag ? ": " : "");
  }
  if (n < sizeof line) {
    int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
    if (m > 0)
      n += (size_t)m;
  }
  if (n >= sizeof line - 1) {
    n = sizeof line - 5;
    memcpy(line + n, "...", 3);
    n += 3;
  }
  /* Keep one record per line: control characters from remote input are
   * replaced so that a hostile message cannot forge log lines. */
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)line[i];
    if (c < 0x20 && c != '\t')
      line[i] = ' ';
  }
  line[n++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, n);
  (void)w;
}

void log_msg(int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  log_vmsg(level, NULL, fmt, ap);
  va_end(ap);
}
