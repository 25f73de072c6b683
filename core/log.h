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

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
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
