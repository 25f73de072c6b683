/* SPDX-License-Identifier: MIT */
/*
 * test_archive: the archive plugin through blazebot/testing.h, with every
 * line read back by jansson. Each message becomes one valid JSON object
 * whose fields equal the message's (quotes, backslashes, control characters
 * and non-ASCII survive; invalid UTF-8 becomes U+FFFD) and whose data_base64
 * decodes to the exact payload bytes. Also: the file's mode and close-on-
 * exec flag, a missing/relative path or bad fsync mode refusing the load,
 * the fsync modes' timers (and a failing fsync), RETRY on a full disk
 * (/dev/full) logged once, a partial last line repaired, reopening on a new
 * path at reconfigure and after a rename (log rotation).
 */
#define _XOPEN_SOURCE 700

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <blazebot/testing.h>

#include "check.h"

const struct blazebot_plugin *blazebot_plugin_v1(void);

static char g_dir[400]; /* paths under it fit in 600 bytes */

static void path_in(char *out, size_t n, const char *name) {
  snprintf(out, n, "%s/%s", g_dir, name);
}

/* Decodes base64url without padding; returns the length or -1. */
static long b64url_decode(const char *s, unsigned char *out, size_t cap) {
  static const char al[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  unsigned long acc = 0;
  int bits = 0;
  size_t n = 0;
  for (; *s; s++) {
    const char *p = strchr(al, *s);
    if (!p)
      return -1;
    acc = (acc << 6) | (unsigned long)(p - al);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (n == cap)
        return -1;
      out[n++] = (unsigned char)(acc >> bits);
    }
  }
  return (long)n;
}

/* Reads path's lines as JSON objects into objs (at most max). Returns the
 * number of lines, or -1 when a line is not a JSON object. */
static int read_lines(const char *path, json_t **objs, int max) {
  FILE *f = fopen(path, "r");
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int n = 0;
  if (!f)
    return -1;
  while ((len = getline(&line, &cap, f)) > 0) {
    json_error_t err;
    json_t *o;
    CHECK(line[len - 1] == '\n');
    o = json_loadb(line, (size_t)len, 0, &err);
    if (!o || !json_is_object(o)) {
      fprintf(stderr, "%s: line %d is not a JSON object (%s): %s", path, n + 1, err.text,
              line);
      json_decref(o);
      n = -1;
      break;
    }
    if (n < max)
      objs[n] = o;
    else
      json_decref(o);
    n++;
  }
  free(line);
  fclose(f);
  return n;
}

static void free_lines(json_t **objs, int n) {
  int i;
  for (i = 0; i < n; i++)
    json_decref(objs[i]);
}

static const char *field(json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "(missing)";
}

static int load(struct blazebot_test_host *th, const char *path, const char *fsync_mode) {
  blazebot_test_init(th);
  if (path)
    blazebot_test_set_config(th, "file", path);
  if (fsync_mode)
    blazebot_test_set_config(th, "fsync", fsync_mode);
  return blazebot_test_load(th, blazebot_plugin_v1());
}

/* The fd flags of the process's descriptor open on path, or -1. */
static int fd_flags_of(const char *path) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int flags = -1;
  if (!d)
    return -1;
  while ((e = readdir(d)) != NULL) {
    char link[600], target[600];
    ssize_t n;
    snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
    n = readlink(link, target, sizeof target - 1);
    if (n <= 0)
      continue;
    target[n] = '\0';
    if (strcmp(target, path) == 0)
      flags = fcntl(atoi(e->d_name), F_GETFD);
  }
  closedir(d);
  return flags;
}

static void test_records(void) {
  static const char nasty[] = "quote\" back\\slash \x01\x1f\n\t\r\b\f end \x7f";
  static const char unicode[] = "日本語 😀 \xE2\x80\xA8";
  struct blazebot_test_host th;
  struct blazebot_message *m;
  unsigned char payload[256], back[300];
  char path[600];
  json_t *o[8];
  struct stat st;
  int n, i;
  path_in(path, sizeof path, "records.jsonl");
  CHECK_INT(load(&th, path, "never"), 0);
  CHECK(th.desc.flags & BLAZEBOT_FLAG_UNLOAD_SAFE);
  {
    int32_t prio = 0;
    CHECK(blazebot_test_subscribes(&th, "SYSTEM_ACCOUNT_SNAPSHOT", &prio));
    CHECK_INT(prio, 1000);
  }
  CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == (0640 & ~022u));
  CHECK(fd_flags_of(path) > 0 && (fd_flags_of(path) & FD_CLOEXEC));

  m = blazebot_test_message(&th, "PLAIN_TEXT", "hello");
  CHECK_INT(blazebot_test_deliver(&th, m), BLAZEBOT_PASS);

  for (i = 0; i < 256; i++)
    payload[i] = (unsigned char)i;
  m = blazebot_test_message_data(&th, "PLAIN_DATA", payload, sizeof payload);
  m->user_id = nasty;
  m->representative_id = unicode;
  m->quote_message_id = "\xff\xfe ok \xC0\xAF \xED\xA0\x80!"; /* all invalid UTF-8 */
  CHECK_INT(blazebot_test_deliver(&th, m), BLAZEBOT_PASS);
  m = blazebot_test_message_data(&th, "PLAIN_TEXT", "", 0);
  CHECK_INT(blazebot_test_deliver(&th, m), BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_reply_count(&th), 0);
  CHECK_INT(th.violations, 0);

  n = read_lines(path, o, 8);
  CHECK_INT(n, 3);
  if (n == 3) {
    CHECK_STR(field(o[0], "message_id"), "11111111-1111-4111-8111-000000000001");
    CHECK_STR(field(o[0], "conversation_id"), BLAZEBOT_TEST_CONVERSATION_ID);
    CHECK_STR(field(o[0], "user_id"), BLAZEBOT_TEST_USER_ID);
    CHECK_STR(field(o[0], "representative_id"), "");
    CHECK_STR(field(o[0], "quote_message_id"), "");
    CHECK_STR(field(o[0], "session_id"), BLAZEBOT_TEST_SESSION_ID);
    CHECK_STR(field(o[0], "category"), "PLAIN_TEXT");
    CHECK_STR(field(o[0], "source"), "CREATE_MESSAGE");
    CHECK_STR(field(o[0], "status"), "SENT");
    CHECK_STR(field(o[0], "created_at"), BLAZEBOT_TEST_CREATED_AT);
    CHECK_STR(field(o[0], "updated_at"), BLAZEBOT_TEST_CREATED_AT);
    CHECK_STR(field(o[0], "data_base64"), "aGVsbG8");
    {
      /* received_at: RFC 3339 UTC with microseconds, within a minute of now. */
      const char *r = field(o[0], "received_at");
      struct tm tm;
      memset(&tm, 0, sizeof tm);
      CHECK_INT(strlen(r), 27);
      CHECK(r[10] == 'T' && r[19] == '.' && r[26] == 'Z');
      CHECK(sscanf(r, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                   &tm.tm_hour, &tm.tm_min, &tm.tm_sec) == 6);
      CHECK(tm.tm_year >= 2024);
    }
    CHECK_STR(field(o[1], "user_id"), nasty);
    CHECK_STR(field(o[1], "representative_id"), unicode);
    CHECK_STR(
        field(o[1], "quote_message_id"),
        "\xEF\xBF\xBD\xEF\xBF\xBD ok \xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD"
        "\xEF\xBF\xBD!");
    CHECK_STR(field(o[1], "category"), "PLAIN_DATA");
    CHECK_INT(b64url_decode(field(o[1], "data_base64"), back, sizeof back), 256);
    CHECK(memcmp(back, payload, 256) == 0);
    CHECK_STR(field(o[2], "data_base64"), "");
    CHECK_INT(json_object_size(o[0]), 13);
  }
  if (n > 0)
    free_lines(o, n < 8 ? n : 8);
  blazebot_test_unload(&th);
  CHECK_INT(fd_flags_of(path), -1); /* closed at shutdown */
}

static void test_bad_config(void) {
  static const struct {
    const char *path, *fsync, *interval, *why;
  } bad[] = {
      {NULL, NULL, NULL, "file is required"},
      {"", NULL, NULL, "file is required"},
      {"archive.jsonl", NULL, NULL, "must be an absolute path"},
      {"/nonexistent-dir/x/archive.jsonl", NULL, NULL, "cannot open"},
      {"/tmp/x.jsonl", "sometimes", NULL, "fsync must be"},
      {"/tmp/x.jsonl", NULL, "0", "fsync_interval_ms"},
      {"/tmp/x.jsonl", NULL, "soon", "fsync_interval_ms"},
  };
  size_t i;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct blazebot_test_host th;
    blazebot_test_init(&th);
    if (bad[i].path)
      blazebot_test_set_config(&th, "file", bad[i].path);
    if (bad[i].fsync)
      blazebot_test_set_config(&th, "fsync", bad[i].fsync);
    if (bad[i].interval)
      blazebot_test_set_config(&th, "fsync_interval_ms", bad[i].interval);
    CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), -1);
    CHECK(strstr(th.error, bad[i].why) != NULL);
    if (!strstr(th.error, bad[i].why))
      fprintf(stderr, "  case %zu: error was: %s\n", i, th.error);
    CHECK_INT(th.violations, 0);
    blazebot_test_unload(&th);
  }
}

static void test_fsync_modes(void) {
  struct blazebot_test_host th;
  char path[600];
  json_t *o[4];
  int n;

  /* interval: the first write arms one timer; it fsyncs off the queue. */
  path_in(path, sizeof path, "interval.jsonl");
  blazebot_test_init(&th);
  blazebot_test_set_config(&th, "file", path);
  blazebot_test_set_config(&th, "fsync_interval_ms", "250");
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  CHECK_INT(blazebot_test_timer_count(&th), 0);
  CHECK_INT(blazebot_test_deliver(&th, blazebot_test_message(&th, "PLAIN_TEXT", "a")),
            BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_timer_count(&th), 1);
  CHECK_INT(blazebot_test_deliver(&th, blazebot_test_message(&th, "PLAIN_TEXT", "b")),
            BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_timer_count(&th), 1); /* at most one fsync per interval */
  CHECK_INT(blazebot_test_fire_timers(&th, 249), 0);
  CHECK_INT(blazebot_test_fire_timers(&th, 1), 1);
  CHECK_INT(blazebot_test_timer_count(&th), 0); /* clean: nothing armed */
  CHECK_INT(blazebot_test_fire_timers(&th, 10000), 0);
  CHECK_INT(blazebot_test_deliver(&th, blazebot_test_message(&th, "PLAIN_TEXT", "c")),
            BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_timer_count(&th), 1);
  CHECK_INT(th.nlog, 0);
  blazebot_test_unload(&th);
  n = read_lines(path, o, 4);
  CHECK_INT(n, 3);
  if (n > 0)
    free_lines(o, n < 4 ? n : 4);

  /* always and never: no timers. */
  path_in(path, sizeof path, "always.jsonl");
  CHECK_INT(load(&th, path, "always"), 0);
  CHECK_INT(blazebot_test_deliver(&th, blazebot_test_message(&th, "PLAIN_TEXT", "a")),
            BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_timer_count(&th), 0);
  blazebot_test_unload(&th);

  /* A failing fsync (/dev/null cannot sync): always asks for redelivery;
   * interval logs it and tries again at the next tick. */
  CHECK_INT(load(&th, "/dev/null", "always"), 0);
  CHECK_INT(blazebot_test_deliver(&th, blazebot_test_message(&th, "PLAIN_TEXT", "a")),
            BLAZEBOT_RETRY);
  CHECK(blazebot_test_log_contains(&th, "fsync /dev/null"));
  blazebot_test_unload(&th);
  CHECK_INT(load(&th, "/dev/null", NULL), 0);
  CHECK_INT(blazebot_test_deliver(&th, blazebot_test_message(&th, "PLAIN_TEXT", "a")),
            BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_fire_timers(&th, 1000), 1);
  CHECK(blazebot_test_log_contains(&th, "fsync /dev/null"));
  CHECK_INT(blazebot_test_timer_count(&th), 1);
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);
}

static void test_write_failure(void) {
  struct blazebot_test_host th;
  size_t i, failed_lines = 0;
  CHECK_INT(load(&th, "/dev/full", NULL), 0);
  CHECK_INT(blazebot_test_deliver(&th, blazebot_test_message(&th, "PLAIN_TEXT", "a")),
            BLAZEBOT_RETRY);
  CHECK_INT(blazebot_test_deliver(&th, blazebot_test_message(&th, "PLAIN_TEXT", "b")),
            BLAZEBOT_RETRY);
  for (i = 0; i < th.nlog; i++)
    failed_lines += strstr(th.log[i], "write to /dev/full failed") != NULL;
  CHECK_INT(failed_lines, 1); /* once per run of failures, not per message */
  CHECK(blazebot_test_log_contains(&th, "No space left"));
  CHECK_INT(blazebot_test_timer_count(&th), 0);
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);
}

static void test_partial_line(void) {
  struct blazebot_test_host th;
  char path[600];
  FILE *f;
  path_in(path, sizeof path, "partial.jsonl");
  f = fopen(path, "w");
  fputs("{\"message_id\":\"torn", f);
  fclose(f);
  CHECK_INT(load(&th, path, "never"), 0);
  CHECK_INT(blazebot_test_deliver(&th, blazebot_test_message(&th, "PLAIN_TEXT", "a")),
            BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_deliver(&th, blazebot_test_message(&th, "PLAIN_TEXT", "b")),
            BLAZEBOT_PASS);
  blazebot_test_unload(&th);
  /* The torn line stays torn, but the records after it are whole lines. */
  f = fopen(path, "r");
  if (f) {
    char line[2048];
    int lines = 0, good = 0;
    while (fgets(line, sizeof line, f)) {
      json_t *j = json_loads(line, 0, NULL);
      lines++;
      good += j != NULL;
      json_decref(j);
    }
    fclose(f);
    CHECK_INT(lines, 3);
    CHECK_INT(good, 2);
  }
}

static void test_reopen(void) {
  struct blazebot_test_host th;
  char a[600], b[600], rotated[600];
  json_t *o[4];
  int n;
  path_in(a, sizeof a, "first.jsonl");
  path_in(b, sizeof b, "second.jsonl");
  path_in(rotated, sizeof rotated, "second.jsonl.1");
  CHECK_INT(load(&th, a, NULL), 0);
  CHECK_INT(blazebot_test_deliver(&th, blazebot_test_message(&th, "PLAIN_TEXT", "1")),
            BLAZEBOT_PASS);

  /* reconfigure to another path: later records go there, the old is closed. */
  blazebot_test_set_config(&th, "file", b);
  CHECK_INT(blazebot_test_reconfigure(&th), 0);
  CHECK_INT(fd_flags_of(a), -1);
  CHECK_INT(blazebot_test_deliver(&th, blazebot_test_message(&th, "PLAIN_TEXT", "2")),
            BLAZEBOT_PASS);
  /* An invalid new path is refused; writing goes on where it was. */
  blazebot_test_set_config(&th, "file", "relative.jsonl");
  CHECK_INT(blazebot_test_reconfigure(&th), -1);
  blazebot_test_set_config(&th, "file", "/nonexistent-dir/x.jsonl");
  CHECK_INT(blazebot_test_reconfigure(&th), -1);
  blazebot_test_set_config(&th, "file", b);
  CHECK_INT(blazebot_test_deliver(&th, blazebot_test_message(&th, "PLAIN_TEXT", "3")),
            BLAZEBOT_PASS);

  /* Rotation by rename: within a second the file is recreated at path. */
  CHECK_INT(rename(b, rotated), 0);
  {
    struct timespec ts = {1, 100000000};
    nanosleep(&ts, NULL);
  }
  CHECK_INT(blazebot_test_deliver(&th, blazebot_test_message(&th, "PLAIN_TEXT", "4")),
            BLAZEBOT_PASS);
  CHECK(blazebot_test_log_contains(&th, "rotated, reopened"));
  CHECK_INT(blazebot_test_fire_timers(&th, 1000), 1);
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);

  n = read_lines(a, o, 4);
  CHECK_INT(n, 1);
  if (n > 0)
    free_lines(o, n < 4 ? n : 4);
  n = read_lines(rotated, o, 4);
  CHECK_INT(n, 2);
  if (n == 2) {
    CHECK_STR(field(o[0], "data_base64"), "Mg");
    CHECK_STR(field(o[1], "data_base64"), "Mw");
  }
  if (n > 0)
    free_lines(o, n < 4 ? n : 4);
  n = read_lines(b, o, 4);
  CHECK_INT(n, 1);
  if (n == 1)
    CHECK_STR(field(o[0], "data_base64"), "NA");
  if (n > 0)
    free_lines(o, n < 4 ? n : 4);
}

int main(void) {
  const char *tmp = getenv("BLAZEBOT_TEST_TMP");
  char tmpl[400];
  int rc;
  umask(022);
  if (tmp)
    mkdir(tmp, 0755);
  snprintf(tmpl, sizeof tmpl, "%s/archive-XXXXXX", tmp ? tmp : "/tmp");
  if (!mkdtemp(tmpl)) {
    perror(tmpl);
    return 1;
  }
  /* Absolute and free of symlinks: the plugin wants an absolute path and
   * /proc/self/fd shows canonical ones. */
  {
    char real[4096];
    if (!realpath(tmpl, real) || strlen(real) >= sizeof g_dir) {
      perror(tmpl);
      return 1;
    }
    memcpy(g_dir, real, strlen(real) + 1);
  }
  test_records();
  test_bad_config();
  test_fsync_modes();
  test_write_failure();
  test_partial_line();
  test_reopen();
  rc = check_done("plugins.archive");
  if (rc == 0) {
    static const char *const files[] = {"records.jsonl", "interval.jsonl", "always.jsonl",
                                        "partial.jsonl", "first.jsonl",    "second.jsonl",
                                        "second.jsonl.1"};
    size_t i;
    char p[600];
    for (i = 0; i < sizeof files / sizeof files[0]; i++) {
      path_in(p, sizeof p, files[i]);
      unlink(p);
    }
    rmdir(g_dir);
  }
  return rc;
}
