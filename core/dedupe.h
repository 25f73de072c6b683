/* SPDX-License-Identifier: MIT */
/*
 * dedupe: a bounded set of recently seen message ids with a state per id, so
 * a redelivered message is not processed twice. Fixed capacity, allocated
 * once; when full the oldest entry that is not in processing is evicted
 * (FIFO ring + open-addressing hash, no allocation per insert). An id in
 * processing is never evicted: if every entry is in processing the set
 * doubles. Used only from the I/O thread.
 */
#ifndef BLAZEBOT_DEDUPE_H
#define BLAZEBOT_DEDUPE_H

#include <stddef.h>

enum dedupe_state {
  DEDUPE_NEW = 0,      /* not seen (returned by dedupe_get only) */
  DEDUPE_INFLIGHT = 1, /* being processed, ack not yet queued */
  DEDUPE_DONE = 2,     /* processed; the ack was queued */
};

struct dedupe;

struct dedupe *dedupe_new(size_t capacity);
void dedupe_free(struct dedupe *d);
/* State of id (a 36-char UUID string; other strings up to 63 bytes work). */
int dedupe_get(const struct dedupe *d, const char *id);
/* Inserts or updates id to state; evicts the oldest entry when full. */
void dedupe_set(struct dedupe *d, const char *id, int state);
size_t dedupe_count(const struct dedupe *d);

#endif
