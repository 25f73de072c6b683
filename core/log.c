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
/* Under journald (JOURNAL_STREAM): detected at the first line, which any
 * thread may write; a relaxed atomic, since every thread finds the same. */
static atomic_int g_journal = -1;

static const char *const names[] = {"error", "warn", "info", "debug"};
static const int syslog_prio[] = {3, 4, 6, 7};

static atomic_int g_format = LOG_FORMAT_TEXT;

void log_set_format(int format) {
  atomic_store_explicit(&g_format, format, memory_order_relaxed);
}

int log_get_format(void) {
  return atomic_load_explicit(&g_format, memory_order_relaxed);
}

int log_format_parse(const char *s, int *out) {
  if (strcmp(s, "text") == 0)
    *out = LOG_FORMAT_TEXT;
  else if (strcmp(s, "json") == 0)
    *out = LOG_FORMAT_JSON;
  else
    return -1;
  return 0;
}

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

/* Appends s to line[*n..cap) as a JSON string body (no quotes), escaping
 * quotes, backslashes and control characters. */
static void json_escape(char *line, size_t *n, size_t cap, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < len && *n + 7 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      line[(*n)++] = '\\';
      line[(*n)++] = (char)c;
    } else if (c < 0x20 || c == 0x7f) {
      memcpy(line + *n, "\\u00", 4);
      line[*n + 4] = hex[c >> 4];
      line[*n + 5] = hex[c & 15];
      *n += 6;
    } else {
      line[(*n)++] = (char)c;
    }
  }
}

static void put(char *line, size_t *n, size_t cap, const char *s) {
  if (*n + 1 >= cap)
    return;
  size_t room = cap - *n - 1, len = strlen(s);
  if (len > room)
    len = room;
  memcpy(line + *n, s, len);
  *n += len;
}

/* Ends and writes one line: text lines get control characters replaced so
 * that a hostile message cannot forge log lines (JSON escapes them). */
static void emit(char *line, size_t n, size_t cap) {
  if (n >= cap - 1) {
    n = cap - 5;
    memcpy(line + n, "...", 3);
    n += 3;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)line[i];
    if (c < 0x20 && c != '\t')
      line[i] = ' ';
  }
  line[n++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, n);
  (void)w;
}

static size_t timestamp(char *out, size_t cap) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
  n += (size_t)snprintf(out + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
  return n;
}

/* The start of a line: the time (or journald's priority) and the level. */
static size_t head(char *line, size_t cap, int level, int json) {
  int journal = atomic_load_explicit(&g_journal, memory_order_relaxed);
  if (journal < 0) {
    journal = getenv("JOURNAL_STREAM") != NULL;
    atomic_store_explicit(&g_journal, journal, memory_order_relaxed);
  }
  size_t n = 0;
  if (json) {
    /* Under journald the priority prefix still comes first (it is not part
     * of the stored message). */
    if (journal)
      n = (size_t)snprintf(line, cap, "<%d>", syslog_prio[level]);
    n += (size_t)snprintf(line + n, cap - n, "{\"time\":\"");
    n += timestamp(line + n, cap - n);
    n += (size_t)snprintf(line + n, cap - n, "\",\"level\":\"%s\"", names[level]);
  } else if (journal) {
    n = (size_t)snprintf(line, cap, "<%d>", syslog_prio[level]);
  } else {
    n = timestamp(line, cap);
    n += (size_t)snprintf(line + n, cap - n, " %s ", names[level]);
  }
  return n;
}

void log_vmsg(int level, const char *tag, const char *fmt, va_list ap) {
  if (level > log_get_level())
    return;
  if (level < 0)
    level = 0;
  if (level > 3)
    level = 3;
  char msg[2048], line[4200];
  int m = vsnprintf(msg, sizeof msg, fmt, ap);
  size_t mlen = m < 0 ? 0 : (size_t)m < sizeof msg ? (size_t)m : sizeof msg - 1;
  int json = log_get_format() == LOG_FORMAT_JSON;
  size_t n = head(line, sizeof line, level, json);
  if (json) {
    put(line, &n, sizeof line, ",\"event\":\"log\"");
    if (tag) {
      put(line, &n, sizeof line, ",\"plugin\":\"");
      json_escape(line, &n, sizeof line, tag, strlen(tag));
      put(line, &n, sizeof line, "\"");
    }
    put(line, &n, sizeof line, ",\"msg\":\"");
    json_escape(line, &n, sizeof line, msg, mlen);
    put(line, &n, sizeof line, "\"}");
  } else {
    if (tag) {
      put(line, &n, sizeof line, tag);
      put(line, &n, sizeof line, ": ");
    }
    size_t room = n + 1 < sizeof line ? sizeof line - n - 1 : 0;
    if (mlen > room)
      mlen = room;
    memcpy(line + n, msg, mlen);
    n += mlen;
  }
  emit(line, n, sizeof line);
}

void log_event(int level, const char *event, ...) {
  if (level > log_get_level())
    return;
  if (level < 0)
    level = 0;
  if (level > 3)
    level = 3;
  char line[4200];
  int json = log_get_format() == LOG_FORMAT_JSON;
  size_t n = head(line, sizeof line, level, json);
  if (json) {
    put(line, &n, sizeof line, ",\"event\":\"");
    json_escape(line, &n, sizeof line, event, strlen(event));
    put(line, &n, sizeof line, "\"");
  } else {
    put(line, &n, sizeof line, event);
  }
  va_list ap;
  va_start(ap, event);
  const char *k;
  while ((k = va_arg(ap, const char *)) != NULL) {
    const char *v = va_arg(ap, const char *);
    if (!v || !*v)
      continue;
    if (json) {
      put(line, &n, sizeof line, ",\"");
      json_escape(line, &n, sizeof line, k, strlen(k));
      put(line, &n, sizeof line, "\":\"");
      json_escape(line, &n, sizeof line, v, strlen(v));
      put(line, &n, sizeof line, "\"");
    } else {
      put(line, &n, sizeof line, " ");
      put(line, &n, sizeof line, k);
      put(line, &n, sizeof line, "=");
      put(line, &n, sizeof line, v);
    }
  }
  va_end(ap);
  if (json)
    put(line, &n, sizeof line, "}");
  emit(line, n, sizeof line);
}

void log_msg(int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  log_vmsg(level, NULL, fmt, ap);
  va_end(ap);
}
