/* SPDX-License-Identifier: MIT */
/*
 * harness: what the integration tests need to run the real daemon against
 * the real simulator on 127.0.0.1 — scratch folders, child processes with
 * their output in files, bounded waits, and a tiny HTTP client for the
 * simulator's control API. Every wait has a deadline; nothing loops forever.
 */
#ifndef BLAZEBOT_TEST_HARNESS_H
#define BLAZEBOT_TEST_HARNESS_H

#include <jansson.h>
#include <sys/types.h>

#include "check.h"

struct proc {
  pid_t pid;
  int exited;
  int status; /* exit code, or 128+signal */
  char out[512];
  char err[512];
};

struct sim {
  struct proc p;
  int port;
  char dir[512];
  char keystore[512];
};

/* A fresh empty folder for this test: $BLAZEBOT_TEST_TMP/name (or /tmp). */
const char *h_dir(const char *name);
int h_write(const char *path, const char *content, int mode);
char *h_read(const char *path);
int h_contains(const char *path, const char *needle);
int h_count(const char *path, const char *needle);

/* Spawns argv (NULL-terminated) with stdout/stderr into files named after
 * tag in dir. Returns 0, or -1 (with the reason on stderr) when the program
 * could not be started: fork failed, the output files could not be made, or
 * exec failed (a missing or non-executable binary). */
int h_spawn(struct proc *p, const char *dir, const char *tag, const char *const argv[]);
/* Waits up to timeout_ms for the process to exit. Returns 0 when it did.
 * A ThreadSanitizer report in the stderr of a process seen exiting here is
 * printed and makes the test exit 1, whatever it checked. */
int h_wait(struct proc *p, int timeout_ms);
void h_kill(struct proc *p, int sig);
/* Kills (SIGKILL) and reaps if still running. */
void h_reap(struct proc *p);

/* Runs a command to completion (timeout) and returns its exit code, or -1. */
int h_run(const char *dir, const char *tag, const char *const argv[], int timeout_ms);

/* The binaries under test: $BLAZEBOT_BIN and $BLAZEBOT_SIM_BIN. */
const char *h_daemon_bin(void);
/* Copies src to dst (then chmod mode). Returns 0, or -1 after saying why. */
int h_copy_file(const char *src, const char *dst, int mode);
/* Caps ASan's quarantine of freed memory (256 MiB by default) at mb for the
 * processes this test starts from now on, so that their RSS still says
 * something about them under the sanitizers. Harmless without ASan. */
void h_asan_quarantine_mb(int mb);
/* The port a daemon logged in errfile as "metrics: serving ... on
 * HOST:PORT" (metrics_listen = ...:0), waiting up to 10 s; 0 if none. */
int h_metrics_port(const char *errfile);
/* The resident set of pid in KiB (VmRSS), or -1. */
long h_rss_kib(pid_t pid);
const char *h_sim_bin(void);

/*
 * Starting what a test tests. h_keygen, h_sim_start and h_daemon_start are
 * macros: a failure is a failed check of the calling test, reported at the
 * caller's line after the reason (the tool's exit status and the end of its
 * stderr), so a test that cannot start the simulator or the daemon fails
 * even when it stops right there. Each returns 0 or -1.
 */

/* Makes a keystore with `blazebot-sim keygen --type type` in dir. */
int h_keygen_(const char *dir, const char *type, char *path_out, size_t cap);
#define h_keygen(dir, type, path_out, cap)                                               \
  h_started_(h_keygen_(dir, type, path_out, cap), "h_keygen: a keystore was made",       \
             __FILE__, __LINE__)

/* Starts the simulator with the bot keystore ks and extra arguments (NULL
 * terminated), waits for its port. */
int h_sim_start_(struct sim *s, const char *dir, const char *ks,
                 const char *const extra[]);
#define h_sim_start(s, dir, ks, extra)                                                   \
  h_started_(h_sim_start_(s, dir, ks, extra), "h_sim_start: the simulator started",      \
             __FILE__, __LINE__)
/* GETs /_sim/stats. Caller json_decref. NULL on failure. */
json_t *h_sim_stats(struct sim *s);
long h_stat(json_t *stats, const char *key);
/* POSTs body to path on the simulator; returns the parsed JSON (or NULL). */
json_t *h_sim_post(struct sim *s, const char *path, const char *body);
json_t *h_sim_get(struct sim *s, const char *path);
/* Polls stats until stats[key] >= value or the timeout passes. Returns 0 when reached. */
int h_sim_wait(struct sim *s, const char *key, long value, int timeout_ms);
void h_sim_stop(struct sim *s);

/* Writes dir/blazebot.ini pointing at the simulator (ws://127.0.0.1:port),
 * with the keystore ks and extra ini lines appended to [blazebot]. */
int h_config(const char *dir, struct sim *s, const char *ks, const char *extra,
             char *path_out, size_t cap);
/* Starts the daemon with config path; stats go to dir/stats-TAG.json. Only
 * the start is checked: a daemon that exits at once (a test may want that)
 * is for the test to judge. */
int h_daemon_start_(struct proc *p, const char *dir, const char *tag, const char *config);
#define h_daemon_start(p, dir, tag, config)                                              \
  h_started_(h_daemon_start_(p, dir, tag, config), "h_daemon_start: the daemon started", \
             __FILE__, __LINE__)
/* Reads the daemon's stats file written at exit. */
json_t *h_daemon_stats(const char *dir, const char *tag);

/* 1 when dir/file holds no sanitizer report (ASan, UBSan, LSan, TSan). */
int h_no_sanitizer_report(const char *dir, const char *file);
/* A counter of one plugin in the daemon's exit stats, or -1. */
long h_plugin_stat(json_t *daemon_stats, const char *plugin, const char *key);
/* 1 when the exit stats carry the counters of exactly n plugins. */
int h_plugins_reported(json_t *daemon_stats, size_t n);
/* 1 when dir/daemon.err says "plugin NAME stopped (D delivered, E errors)". */
int h_plugin_stopped(const char *dir, const char *name, long delivered, long errors);

void h_sleep_ms(int ms);

/* Waits until the file holds at least n occurrences of needle. Returns 0,
 * or -1 (saying so on stderr) at the deadline. */
int h_wait_count(const char *path, const char *needle, int n, int timeout_ms);

/*
 * Per-message checks. A snapshot reads which stored messages are
 * acknowledged (GET /_sim/messages) first and the replies the simulator has
 * accepted (GET /_sim/sent) second: a reply accepted before its message was
 * acknowledged is then always in the snapshot, so "acknowledged, and no
 * reply" in a snapshot is a real violation of ack-after-reply, never a race
 * of the two reads.
 */
struct h_snapshot {
  json_t *messages; /* [{message_id, acked, ack_count, push_count, ...}] */
  json_t *sent;     /* [{message_id, quote_message_id, text, ...}] */
};
int h_snapshot_take(struct sim *s, struct h_snapshot *snap);
void h_snapshot_free(struct h_snapshot *snap);

/* The result check of the start macros above (counts in the caller's file). */
static inline int h_started_(int rc, const char *what, const char *file, int line) {
  if (rc == 0)
    check_passes_++;
  else
    check_fail_at(file, line, what);
  return rc == 0 ? 0 : -1;
}

/* One HTTP/1.1 request to 127.0.0.1:port, for tests that need the status,
 * the headers or a raw body: method and target as given, Host with the
 * port, "Connection: close", the extra header lines in headers (each ending
 * in CRLF; may be NULL), Content-Length and len bytes of body. The answer is
 * read until the server closes (10 s at most per read). Returns 0 with resp
 * filled (free it with h_response_free), or -1 (resp->status -1) when no
 * HTTP answer came. */
struct h_response {
  int status;
  char *head; /* status line and headers, NUL-terminated */
  char *body; /* NUL-terminated past len */
  size_t len;
};
int h_http(int port, const char *method, const char *target, const char *headers,
           const void *body, size_t len, struct h_response *resp);
void h_response_free(struct h_response *resp);

#endif
