/* SPDX-License-Identifier: MIT */
/*
 * deadletter: see deadletter.h. The file is opened for each record rather
 * than kept open: give-ups are rare, and this way a rotated or removed file
 * is simply created again, and a reload that changes the path needs no
 * hand-over of a descriptor another thread may be writing to.
 */
#include "deadletter.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

struct deadletter {
  pthread_mutex_t mu;
  char *path; /* guarded by mu */
};

struct deadletter *deadletter_new(const char *path) {
  struct deadletter *dl = calloc(1, sizeof *dl);
  if (!dl)
    return NULL;
  pthread_mutex_init(&dl->mu, NULL);
  if (deadletter_set_path(dl, path) < 0) {
    deadletter_free(dl);
    return NULL;
  }
  return dl;
}

void deadletter_free(struct deadletter *dl) {
  if (!dl)
    return;
  free(dl->path);
  pthread_mutex_destroy(&dl->mu);
  free(dl);
}

int deadletter_set_path(struct deadletter *dl, const char *path) {
  char *p = path ? strdup(path) : NULL;
  if (path && !p)
    return -1;
  pthread_mutex_lock(&dl->mu);
  free(dl->path);
  dl->path = p;
  pthread_mutex_unlock(&dl->mu);
  return 0;
}

int deadletter_enabled(struct deadletter *dl) {
  pthread_mutex_lock(&dl->mu);
  int on = dl->path != NULL;
  pthread_mutex_unlock(&dl->mu);
  return on;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int deadletter_write(struct deadletter *dl, const char *plugin, int attempts,
                     const char *error, const char *raw_json, size_t raw_len) {
  json_error_t jerr;
  json_t *msg = json_loadb(raw_json, raw_len, 0, &jerr);
  char stamp[32];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  json_t *rec = json_pack("{s:s,s:s,s:i,s:s,s:o}", "time", stamp, "plugin", plugin,
                          "attempts", attempts, "error", error ? error : "", "message",
                          msg ? msg : json_null());
  char *line = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
  json_decref(rec);
  if (!line) {
    log_error("dead letter: out of memory recording a message of plugin %s", plugin);
    return -1;
  }
  int rc = -1;
  pthread_mutex_lock(&dl->mu);
  if (!dl->path) {
    pthread_mutex_unlock(&dl->mu);
    free(line);
    return -1;
  }
  int fd = open(dl->path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    log_error("dead letter: cannot open %s: %s", dl->path, strerror(errno));
  } else {
    size_t n = strlen(line);
    line[n] = '\n'; /* replaces the NUL: written with its length */
    if (write_all(fd, line, n + 1) < 0 || fsync(fd) < 0)
      log_error("dead letter: cannot write %s: %s", dl->path, strerror(errno));
    else
      rc = 0;
    close(fd);
  }
  pthread_mutex_unlock(&dl->mu);
  free(line);
  return rc;
}

int deadletter_parse(const char *line, struct deadletter_record *out, char *err,
                     size_t errlen) {
  memset(out, 0, sizeof *out);
  json_error_t jerr;
  json_t *rec = json_loads(line, 0, &jerr);
  if (!rec) {
    snprintf(err, errlen, "not JSON: %s", jerr.text);
    return -1;
  }
  const char *plugin = json_string_value(json_object_get(rec, "plugin"));
  json_t *msg = json_object_get(rec, "message");
  if (!plugin || !*plugin || strlen(plugin) >= sizeof out->plugin ||
      !json_is_object(msg)) {
    snprintf(err, errlen, "missing \"plugin\" or \"message\"");
    json_decref(rec);
    return -1;
  }
  snprintf(out->plugin, sizeof out->plugin, "%s", plugin);
  out->attempts = (int)json_integer_value(json_object_get(rec, "attempts"));
  out->message = json_incref(msg);
  json_decref(rec);
  return 0;
}
