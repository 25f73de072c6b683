/* SPDX-License-Identifier: MIT */
/*
 * archive: appends every message the bot receives to a JSON Lines file, one
 * object per line: the ids, category, source, status, timestamps, the
 * payload as data_base64 (base64url without padding, as Blaze sends it) and
 * received_at (when this plugin got it, RFC 3339 UTC). It subscribes to "*"
 * at priority 1000 so it sees each message before any plugin can consume it.
 *
 * ini keys of [plugin.archive]: `file` (required, absolute: the daemon's
 * working folder is not something to rely on; `path` is taken, the daemon
 * reads it as the plugin's .so), `fsync` = `always` (before
 * the message is passed on, so before it is acknowledged), `interval` (the
 * default: at most every `fsync_interval_ms`, default 1000, on a host timer,
 * the fsync itself off the plugin's queue) or `never`.
 *
 * The file is opened O_APPEND|O_CREAT|O_CLOEXEC, mode 0640 (less the umask).
 * Each record is one write(); a failed write is cut back off the file when
 * possible, logged (once per run of failures) and answered with RETRY, since
 * a full disk is usually temporary. The plugin is flagged RETRY_FOREVER, so
 * the host never gives up on a message it could not archive (unless the ini
 * sets max_attempts); a redelivery may then write a record twice, so readers
 * should dedupe by message_id. A file that does not end in
 * a newline (a crash mid-write) gets one before the next record. The file is
 * reopened when a reconfigure changes `file`, and when that path no longer
 * names the open file (checked at most once a second), so rename-style log
 * rotation works without a reload.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <blazebot/plugin.h>

#define SYNC_ALWAYS 0
#define SYNC_INTERVAL 1
#define SYNC_NEVER 2
#define ROTATE_CHECK_NS 1000000000LL /* how often the path is compared with the file */
#define KEEP_BUF_BYTES (1024 * 1024) /* a larger record buffer is freed after use */

struct settings {
  char *path;
  int sync;
  uint32_t interval_ms;
};

struct archive;

/* One fsync on a blocking-work thread. The work reads only fd and writes
 * only err; close_after is set and read on the plugin's queue. */
struct fsync_job {
  int fd;
  int err;
  int close_after; /* the file was replaced meanwhile: done closes fd */
};

struct archive {
  blazebot_ctx *ctx;
  const struct blazebot_host *host;
  struct settings set;
  int fd;
  dev_t dev;
  ino_t ino;
  int need_newline;       /* the file ends in a partial line */
  int dirty;              /* written since the last fsync started */
  int timer_armed;        /* an fsync timer is pending */
  struct fsync_job *job;  /* the fsync in flight, or NULL */
  int64_t next_check_ns;  /* monotonic time of the next rotation check */
  unsigned long failures; /* consecutive failed writes */
  char *buf;
  size_t cap;
};

static void errstr(int err, char *buf, size_t n) {
  if (strerror_r(err, buf, n) != 0)
    snprintf(buf, n, "error %d", err);
}

static int64_t now_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- settings and the file ------------------------------------------------------- */

static int settings_load(struct archive *a, struct settings *s, char *err,
                         size_t errlen) {
  const char *path = a->host->config_get(a->ctx, "file");
  const char *mode = a->host->config_get(a->ctx, "fsync");
  int64_t ms;
  memset(s, 0, sizeof *s);
  if (!path || !path[0]) {
    snprintf(err, errlen, "file is required (the archive's absolute path)");
    return -1;
  }
  if (path[0] != '/') {
    snprintf(err, errlen, "file must be an absolute path, not '%s'", path);
    return -1;
  }
  if (!mode || strcmp(mode, "interval") == 0) {
    s->sync = SYNC_INTERVAL;
  } else if (strcmp(mode, "always") == 0) {
    s->sync = SYNC_ALWAYS;
  } else if (strcmp(mode, "never") == 0) {
    s->sync = SYNC_NEVER;
  } else {
    snprintf(err, errlen, "fsync must be always, interval or never, not '%s'", mode);
    return -1;
  }
  if (a->host->config_int(a->ctx, "fsync_interval_ms", 1000, &ms) != 0 || ms < 1 ||
      ms > 3600000) {
    snprintf(err, errlen, "fsync_interval_ms must be from 1 to 3600000");
    return -1;
  }
  s->interval_ms = (uint32_t)ms;
  if (!(s->path = malloc(strlen(path) + 1))) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  strcpy(s->path, path);
  return 0;
}

/* Opens path for appending. Returns the fd, or -1 with err. */
static int open_file(const char *path, dev_t *dev, ino_t *ino, int *need_newline,
                     char *err, size_t errlen) {
  struct stat st;
  char e[128];
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    errstr(errno, e, sizeof e);
    snprintf(err, errlen, "cannot open %s: %s", path, e);
    return -1;
  }
  *need_newline = 0;
  *dev = 0;
  *ino = 0;
  if (fstat(fd, &st) == 0) {
    *dev = st.st_dev;
    *ino = st.st_ino;
    if (S_ISREG(st.st_mode) && st.st_size > 0) {
      /* The fd is write-only; peek at the last byte through another. */
      int rfd = open(path, O_RDONLY | O_CLOEXEC);
      char last;
      if (rfd >= 0) {
        if (pread(rfd, &last, 1, st.st_size - 1) == 1 && last != '\n')
          *need_newline = 1;
        close(rfd);
      }
    }
  }
  return fd;
}

static void sync_now(struct archive *a, int fd) {
  char e[128];
  if (fsync(fd) != 0) {
    errstr(errno, e, sizeof e);
    a->host->log(a->ctx, BLAZEBOT_LOG_ERROR, "fsync %s: %s", a->set.path, e);
  }
}

/* Stops writing to the current file: syncs it if asked to, and closes it,
 * or leaves that to the fsync in flight on it. */
static void retire_file(struct archive *a) {
  if (a->fd < 0)
    return;
  if (a->dirty && a->set.sync != SYNC_NEVER)
    sync_now(a, a->fd);
  a->dirty = 0;
  if (a->job && a->job->fd == a->fd)
    a->job->close_after = 1;
  else
    close(a->fd);
  a->fd = -1;
}

/* Switches to a freshly opened path. Returns 0, or -1 with err (the old
 * file stays in use). */
static int reopen(struct archive *a, const char *path, char *err, size_t errlen) {
  dev_t dev;
  ino_t ino;
  int nl;
  int fd = open_file(path, &dev, &ino, &nl, err, errlen);
  if (fd < 0)
    return -1;
  retire_file(a);
  a->fd = fd;
  a->dev = dev;
  a->ino = ino;
  a->need_newline = nl;
  return 0;
}

/* Reopens the file when path names another file than the open one (it was
 * renamed away by log rotation, or removed). At most once a second. */
static void check_rotation(struct archive *a) {
  struct stat st;
  char err[256];
  int64_t now = now_ns(CLOCK_MONOTONIC);
  if (now < a->next_check_ns)
    return;
  a->next_check_ns = now + ROTATE_CHECK_NS;
  if (stat(a->set.path, &st) == 0 && st.st_dev == a->dev && st.st_ino == a->ino)
    return;
  if (reopen(a, a->set.path, err, sizeof err) == 0)
    a->host->log(a->ctx, BLAZEBOT_LOG_INFO, "%s was rotated, reopened", a->set.path);
  else
    a->host->log(a->ctx, BLAZEBOT_LOG_WARN, "%s was rotated, %s", a->set.path, err);
}

/* ---- interval fsync -------------------------------------------------------------- */

static void fsync_work(void *arg) {
  struct fsync_job *job = arg;
  job->err = fsync(job->fd) == 0 ? 0 : errno;
}

static void arm_timer(struct archive *a);

static void fsync_done(void *state, void *arg) {
  struct archive *a = state;
  struct fsync_job *job = arg;
  char e[128];
  a->job = NULL;
  if (job->err) {
    errstr(job->err, e, sizeof e);
    a->host->log(a->ctx, BLAZEBOT_LOG_ERROR, "fsync %s: %s", a->set.path, e);
    if (!job->close_after)
      a->dirty = 1; /* try again at the next tick */
  }
  if (job->close_after)
    close(job->fd);
  free(job);
  if (a->dirty)
    arm_timer(a);
}

static void fsync_tick(void *state, void *arg) {
  struct archive *a = state;
  struct fsync_job *job;
  (void)arg;
  a->timer_armed = 0;
  if (!a->dirty || a->job || a->set.sync != SYNC_INTERVAL || a->fd < 0)
    return;
  if (!(job = calloc(1, sizeof *job))) {
    sync_now(a, a->fd);
    a->dirty = 0;
    return;
  }
  job->fd = a->fd;
  a->dirty = 0;
  a->job = job;
  if (a->host->run_blocking(a->ctx, fsync_work, fsync_done, job) != 0) {
    fsync_work(job);
    fsync_done(a, job);
  }
}

static void arm_timer(struct archive *a) {
  if (a->timer_armed || a->job || a->set.sync != SYNC_INTERVAL)
    return;
  if (a->host->timer_add(a->ctx, a->set.interval_ms, 0, fsync_tick, NULL, NULL) == 0)
    a->timer_armed = 1;
  else
    a->host->log(a->ctx, BLAZEBOT_LOG_WARN,
                 "no timer for fsync; will retry next message");
}

/* ---- the record ------------------------------------------------------------------ */

/* Bytes of the valid UTF-8 sequence at s[0..n), or 0 when there is none. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t len, i;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    len = 2;
  else if (c >= 0xE0 && c <= 0xEF)
    len = 3;
  else if (c >= 0xF0 && c <= 0xF4)
    len = 4;
  else
    return 0;
  if (c == 0xE0)
    lo = 0xA0;
  else if (c == 0xED)
    hi = 0x9F; /* no UTF-16 surrogates */
  else if (c == 0xF0)
    lo = 0x90;
  else if (c == 0xF4)
    hi = 0x8F; /* nothing above U+10FFFF */
  if (n < len || s[1] < lo || s[1] > hi)
    return 0;
  for (i = 2; i < len; i++)
    if ((s[i] & 0xC0) != 0x80)
      return 0;
  return len;
}

/* Appends "key":"value" with value escaped as JSON; invalid UTF-8 becomes
 * U+FFFD so the line stays valid JSON. At most 6 bytes per input byte. */
static char *put_str(char *o, const char *key, const char *value, int comma) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *s = (const unsigned char *)value;
  size_t n = strlen(value);
  if (comma)
    *o++ = ',';
  *o++ = '"';
  o = strcpy(o, key) + strlen(key);
  *o++ = '"';
  *o++ = ':';
  *o++ = '"';
  while (n) {
    unsigned char c = *s;
    size_t len;
    if (c == '"' || c == '\\') {
      *o++ = '\\';
      *o++ = (char)c;
      len = 1;
    } else if (c < 0x20) {
      *o++ = '\\';
      switch (c) {
      case '\b':
        *o++ = 'b';
        break;
      case '\f':
        *o++ = 'f';
        break;
      case '\n':
        *o++ = 'n';
        break;
      case '\r':
        *o++ = 'r';
        break;
      case '\t':
        *o++ = 't';
        break;
      default:
        *o++ = 'u';
        *o++ = '0';
        *o++ = '0';
        *o++ = hex[c >> 4];
        *o++ = hex[c & 15];
      }
      len = 1;
    } else if ((len = utf8_len(s, n)) != 0) {
      memcpy(o, s, len);
      o += len;
    } else {
      memcpy(o, "\\ufffd", 6);
      o += 6;
      len = 1;
    }
    s += len;
    n -= len;
  }
  *o++ = '"';
  return o;
}

static char *put_base64url(char *o, const uint8_t *p, size_t n) {
  static const char b64[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t i;
  for (i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)p[i + 1] << 8;
    if (i + 2 < n)
      v |= p[i + 2];
    *o++ = b64[(v >> 18) & 63];
    *o++ = b64[(v >> 12) & 63];
    if (i + 1 < n)
      *o++ = b64[(v >> 6) & 63];
    if (i + 2 < n)
      *o++ = b64[v & 63];
  }
  return o;
}

/* Formats msg as one line in a->buf. Returns its length, or 0 when out of
 * memory. */
static size_t format_record(struct archive *a, const struct blazebot_message *msg) {
  const char *keys[] = {"message_id",        "conversation_id",  "user_id",
                        "representative_id", "quote_message_id", "session_id",
                        "category",          "source",           "status",
                        "created_at",        "updated_at"};
  const char *vals[] = {msg->message_id,        msg->conversation_id,  msg->user_id,
                        msg->representative_id, msg->quote_message_id, msg->session_id,
                        msg->category,          msg->source,           msg->status,
                        msg->created_at,        msg->updated_at};
  char stamp[64];
  struct timespec ts;
  struct tm tm;
  size_t need = 256 + (msg->data_len + 2) / 3 * 4, i;
  char *o;
  for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
    need += strlen(keys[i]) + 6 + 6 * strlen(vals[i] ? vals[i] : "");
  if (need > a->cap) {
    char *b = realloc(a->buf, need);
    if (!b)
      return 0;
    a->buf = b;
    a->cap = need;
  }
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  i = strftime(stamp, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(stamp + i, sizeof stamp - i, ".%06uZ",
           (unsigned)(ts.tv_nsec / 1000) % 1000000u);

  o = a->buf;
  if (a->need_newline)
    *o++ = '\n';
  *o++ = '{';
  for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
    o = put_str(o, keys[i], vals[i] ? vals[i] : "", i > 0);
  memcpy(o, ",\"data_base64\":\"", 16);
  o = put_base64url(o + 16, msg->data, msg->data_len);
  *o++ = '"';
  o = put_str(o, "received_at", stamp, 1);
  *o++ = '}';
  *o++ = '\n';
  return (size_t)(o - a->buf);
}

/* Writes buf[0..n) whole, or returns an errno value after cutting a partial
 * record back off the file where the file allows it. */
static int write_record(struct archive *a, const char *buf, size_t n) {
  struct stat st;
  off_t before = -1;
  size_t done = 0;
  if (fstat(a->fd, &st) == 0 && S_ISREG(st.st_mode))
    before = st.st_size;
  while (done < n) {
    ssize_t w = write(a->fd, buf + done, n - done);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      int err = w < 0 ? errno : EIO;
      if (done && before >= 0 && ftruncate(a->fd, before) != 0)
        a->need_newline = 1; /* the partial line stays: end it before the next */
      return err;
    }
    done += (size_t)w;
  }
  return 0;
}

/* ---- callbacks ------------------------------------------------------------------- */

static int archive_on_message(void *state, const struct blazebot_message *msg) {
  struct archive *a = state;
  char e[128];
  size_t n;
  int err;

  check_rotation(a);
  if (!(n = format_record(a, msg))) {
    a->host->log(a->ctx, BLAZEBOT_LOG_ERROR, "out of memory formatting %s",
                 msg->message_id);
    return BLAZEBOT_RETRY;
  }
  err = write_record(a, a->buf, n);
  if (a->cap > KEEP_BUF_BYTES) {
    free(a->buf);
    a->buf = NULL;
    a->cap = 0;
  }
  if (err) {
    if (a->failures++ == 0) {
      errstr(err, e, sizeof e);
      a->host->log(a->ctx, BLAZEBOT_LOG_ERROR,
                   "write to %s failed: %s; asking for redelivery (logged once until a "
                   "write succeeds)",
                   a->set.path, e);
    }
    return BLAZEBOT_RETRY;
  }
  if (a->failures) {
    a->host->log(a->ctx, BLAZEBOT_LOG_INFO, "writing to %s again after %lu failures",
                 a->set.path, a->failures);
    a->failures = 0;
  }
  a->need_newline = 0;
  if (a->set.sync == SYNC_ALWAYS) {
    if (fsync(a->fd) != 0) {
      errstr(errno, e, sizeof e);
      a->host->log(a->ctx, BLAZEBOT_LOG_ERROR, "fsync %s: %s; asking for redelivery",
                   a->set.path, e);
      return BLAZEBOT_RETRY;
    }
  } else if (a->set.sync == SYNC_INTERVAL) {
    a->dirty = 1;
    arm_timer(a);
  }
  return BLAZEBOT_PASS;
}

static void archive_free(struct archive *a) {
  if (a->job) {
    /* The host finished the work but did not run its completion. */
    if (a->job->close_after)
      close(a->job->fd);
    free(a->job);
  }
  if (a->fd >= 0) {
    if (a->dirty && a->set.sync != SYNC_NEVER)
      sync_now(a, a->fd);
    close(a->fd);
  }
  free(a->set.path);
  free(a->buf);
  free(a);
}

static int archive_init(blazebot_ctx *ctx, const struct blazebot_host *host,
                        void **state) {
  struct archive *a = calloc(1, sizeof *a);
  char err[512];
  if (!a) {
    host->set_error(ctx, "out of memory");
    return -1;
  }
  a->ctx = ctx;
  a->host = host;
  a->fd = -1;
  if (settings_load(a, &a->set, err, sizeof err) != 0 ||
      (a->fd = open_file(a->set.path, &a->dev, &a->ino, &a->need_newline, err,
                         sizeof err)) < 0) {
    host->set_error(ctx, "%s", err);
    archive_free(a);
    return -1;
  }
  a->next_check_ns = now_ns(CLOCK_MONOTONIC) + ROTATE_CHECK_NS;
  *state = a;
  return 0;
}

static int archive_reconfigure(void *state) {
  struct archive *a = state;
  struct settings s;
  char err[512];
  if (settings_load(a, &s, err, sizeof err) != 0) {
    a->host->log(a->ctx, BLAZEBOT_LOG_ERROR, "new configuration refused: %s", err);
    return -1;
  }
  if (strcmp(s.path, a->set.path) != 0) {
    if (reopen(a, s.path, err, sizeof err) != 0) {
      a->host->log(a->ctx, BLAZEBOT_LOG_ERROR, "new configuration refused: %s", err);
      free(s.path);
      return -1;
    }
  } else if (a->dirty && a->set.sync == SYNC_INTERVAL && s.sync != SYNC_INTERVAL) {
    sync_now(a, a->fd); /* no timer will do it any more */
    a->dirty = 0;
  }
  free(a->set.path);
  a->set = s;
  if (a->dirty)
    arm_timer(a);
  return 0;
}

static void archive_shutdown(void *state) {
  archive_free(state);
}

static const struct blazebot_subscription subs[] = {{"*", 1000, 0}, {NULL, 0, 0}};

BLAZEBOT_PLUGIN(.flags = BLAZEBOT_FLAG_UNLOAD_SAFE | BLAZEBOT_FLAG_RETRY_FOREVER,
                .name = "archive", .version = "1.1",
                .description = "Appends every message to a JSON Lines file",
                .subscriptions = subs, .init = archive_init,
                .on_message = archive_on_message, .shutdown = archive_shutdown,
                .reconfigure = archive_reconfigure);
