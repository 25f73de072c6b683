/* SPDX-License-Identifier: MIT */
/*
 * log: levelled, line-buffered log lines on stderr, safe to call from any
 * thread. Each line is written with one write(2) so lines from different
 * threads never interleave. Under systemd (JOURNAL_STREAM set) lines carry a
 * "<N>" syslog priority prefix instead of a timestamp, so journald keeps the
 * level. Nothing secret (keys, tokens) is ever passed to these functions.
 */
#ifndef BLAZEBOT_LOG_H
#define BLAZEBOT_LOG_H

#include <stdarg.h>

enum log_level { LOGL_ERROR = 0, LOGL_WARN = 1, LOGL_INFO = 2, LOGL_DEBUG = 3 };

/* Global log settings: written only by main.c before threads start and on
 * reload (an int store; readers tolerate a stale value). */
void log_set_level(int level);
int log_get_level(void);
/* Parses "error", "warn", "info", "debug"; returns 0 or -1. */
int log_level_parse(const char *s, int *out);

/* LOG_FORMAT_TEXT (the default): "TIME LEVEL message"; LOG_FORMAT_JSON:
 * one JSON object per line, {"time","level","event",fields...,"msg"}, for
 * log shippers. Set by main.c before threads start and on reload. */
enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON = 1 };
void log_set_format(int format);
int log_get_format(void);
/* Parses "text", "json"; returns 0 or -1. */
int log_format_parse(const char *s, int *out);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One event with named fields: "event" is a dotted name (message.received),
 * then key, value pairs of strings ended by NULL (a NULL or "" value is
 * left out). Text: "TIME LEVEL EVENT key=value ..."; JSON: the fields as
 * members. Values are never payloads or secrets. */
void log_event(int level, const char *event, ...) __attribute__((sentinel));
/* log_event only when the level is enabled (the arguments are not
 * evaluated otherwise). */
#define log_event_at(level, ...)                                                         \
  do {                                                                                   \
    if (log_get_level() >= (level))                                                      \
      log_event((level), __VA_ARGS__);                                                   \
  } while (0)
void log_vmsg(int level, const char *tag, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define log_error(...) log_msg(LOGL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOGL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOGL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                   \
  do {                                                                                   \
    if (log_get_level() >= LOGL_DEBUG)                                                   \
      log_msg(LOGL_DEBUG, __VA_ARGS__);                                                  \
  } while (0)

#endif
