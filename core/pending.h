/* SPDX-License-Identifier: MIT */
/*
 * pending: the session's table of requests awaiting their id-matched
 * answers. Each entry has the request id, a deadline and its owner's
 * callback; entries are pooled, so a steady stream of requests allocates
 * nothing. An entry may lose its owner (pending_disown) and stay until its
 * answer or deadline, so a late answer is still recognised as one. I/O
 * thread only (owned by the session); callbacks run from the call that
 * ends the entry and may add or end other entries.
 */
#ifndef BLAZEBOT_PENDING_H
#define BLAZEBOT_PENDING_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"

/* The owner's callback: env is the answer (NULL with err < 0). */
typedef void (*pending_fn)(void *ud, const struct envelope *env, int err);

#define PENDING_ID_MAX 64
#define PENDING_BUCKETS 1024

struct pending {
  struct pending *next; /* hash chain or free list */
  char id[PENDING_ID_MAX];
  int64_t deadline;
  pending_fn cb; /* NULL: disowned */
  void *ud;
};

struct pending_table {
  struct pending *buckets[PENDING_BUCKETS];
  struct pending *free_list;
  size_t n;
};

/* Frees the pooled entries; the table must be empty (pending_fail_all). */
void pending_fini(struct pending_table *t);
/* A pooled entry for id (shorter than PENDING_ID_MAX), not yet in the
 * table; NULL when out of memory or id is too long. */
struct pending *pending_new(struct pending_table *t, const char *id);
/* Puts p, made by pending_new, into the table. */
void pending_add(struct pending_table *t, struct pending *p, int64_t deadline,
                 pending_fn cb, void *ud);
/* Gives back an entry taken out of the table, or never added. */
void pending_release(struct pending_table *t, struct pending *p);
/* Ends the entry for id: its callback gets env. 1 when there was one
 * (owned or not), 0 when id matches nothing. */
int pending_answer(struct pending_table *t, const char *id, const struct envelope *env);
/* Ends every entry in the table now: owners get err. Entries the owners
 * add from their callbacks stay. */
void pending_fail_all(struct pending_table *t, int err);
/* Ends the entries whose deadline passed: owners get err. Returns how many
 * owned entries expired; expired(ctx, id) is called for each of them first
 * (for the log). */
size_t pending_expire(struct pending_table *t, int64_t now, int err,
                      void (*expired)(void *ctx, const char *id), void *ctx);
/* Moves every deadline before fresh to fresh. */
void pending_refresh(struct pending_table *t, int64_t fresh);
/* Every entry owned through cb: the owner gets err now, and the entry stays
 * without an owner until its answer or deadline. */
void pending_disown(struct pending_table *t, pending_fn cb, int err);

#endif
