/* SPDX-License-Identifier: MIT */
/*
 * deadletter: where a message goes when a plugin gives up on it (RETRY
 * after max_attempts), before it is acknowledged, so that giving up never
 * loses it. One JSON object per line in the [blazebot] dead_letter_file:
 *   {"time":"2026-11-29T17:30:00Z","plugin":"archive","attempts":5,
 *    "error":"...","message":{...the Blaze message view as received...}}
 * The file is created 0600, appended to with O_APPEND (never through a
 * symlink), and synced before deadletter_write returns. Any thread; writes
 * are serialised by a mutex. `blazebot --replay FILE` reads these lines
 * back with deadletter_parse.
 */
#ifndef BLAZEBOT_DEADLETTER_H
#define BLAZEBOT_DEADLETTER_H

#include <jansson.h>
#include <stddef.h>

struct deadletter;

/* path NULL = no file: deadletter_write then fails (returns -1). */
struct deadletter *deadletter_new(const char *path);
void deadletter_free(struct deadletter *dl);
/* I/O thread (reload): the file from now on. */
int deadletter_set_path(struct deadletter *dl, const char *path);
/* 1 when a file is configured. */
int deadletter_enabled(struct deadletter *dl);

/* Appends one record and syncs it. raw_json is the message view (compact
 * JSON). Returns 0, or -1 with the reason logged (no file configured, or
 * the write failed: the caller must not acknowledge the message). */
int deadletter_write(struct deadletter *dl, const char *plugin, int attempts,
                     const char *error, const char *raw_json, size_t raw_len);

/* One record read back. message is a new reference (json_decref). */
struct deadletter_record {
  char plugin[64];
  int attempts;
  json_t *message;
};

/* Parses one line. Returns 0, or -1 with a reason in err. */
int deadletter_parse(const char *line, struct deadletter_record *out, char *err,
                     size_t errlen);

#endif
