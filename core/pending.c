/* SPDX-License-Identifier: MIT */
/*
 * pending: see pending.h. A hash table of 1,024 chained buckets over the
 * request id (FNV-1a), with a free list of entries.
 */
#include "pending.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned hash_id(const char *id) {
  unsigned h = 2166136261u;
  for (; *id; id++)
    h = (h ^ (unsigned char)*id) * 16777619u;
  return h % PENDING_BUCKETS;
}

void pending_fini(struct pending_table *t) {
  struct pending *p;
  while ((p = t->free_list)) {
    t->free_list = p->next;
    free(p);
  }
}

struct pending *pending_new(struct pending_table *t, const char *id) {
  if (strlen(id) >= PENDING_ID_MAX)
    return NULL;
  struct pending *p = t->free_list;
  if (p)
    t->free_list = p->next;
  else if (!(p = malloc(sizeof *p)))
    return NULL;
  snprintf(p->id, sizeof p->id, "%s", id);
  return p;
}

void pending_add(struct pending_table *t, struct pending *p, int64_t deadline,
                 pending_fn cb, void *ud) {
  p->deadline = deadline;
  p->cb = cb;
  p->ud = ud;
  unsigned h = hash_id(p->id);
  p->next = t->buckets[h];
  t->buckets[h] = p;
  t->n++;
}

void pending_release(struct pending_table *t, struct pending *p) {
  p->next = t->free_list;
  t->free_list = p;
}

/* Takes p out of the table, gives it back, then runs its owner (which may
 * add entries: p is no longer in the way). */
static void end(struct pending_table *t, struct pending **pp, const struct envelope *env,
                int err) {
  struct pending *p = *pp;
  *pp = p->next;
  t->n--;
  pending_fn cb = p->cb;
  void *ud = p->ud;
  pending_release(t, p);
  if (cb)
    cb(ud, env, err);
}

int pending_answer(struct pending_table *t, const char *id, const struct envelope *env) {
  for (struct pending **pp = &t->buckets[hash_id(id)]; *pp; pp = &(*pp)->next) {
    if (strcmp((*pp)->id, id) == 0) {
      end(t, pp, env, 0);
      return 1;
    }
  }
  return 0;
}

void pending_fail_all(struct pending_table *t, int err) {
  /* The entries of now, taken out first: entries the owners add from their
   * callbacks stay in the table. */
  struct pending *all = NULL;
  for (int i = 0; i < PENDING_BUCKETS; i++) {
    while (t->buckets[i]) {
      struct pending *p = t->buckets[i];
      t->buckets[i] = p->next;
      p->next = all;
      all = p;
    }
  }
  t->n = 0;
  while (all) {
    struct pending *p = all;
    all = p->next;
    pending_fn cb = p->cb;
    void *ud = p->ud;
    pending_release(t, p);
    if (cb)
      cb(ud, NULL, err);
  }
}

size_t pending_expire(struct pending_table *t, int64_t now, int err,
                      void (*expired)(void *ctx, const char *id), void *ctx) {
  size_t owned = 0;
  if (!t->n)
    return 0;
  for (int i = 0; i < PENDING_BUCKETS; i++) {
    struct pending **pp = &t->buckets[i];
    while (*pp) {
      struct pending *p = *pp;
      if (p->deadline > now) {
        pp = &p->next;
        continue;
      }
      if (p->cb) {
        owned++;
        if (expired)
          expired(ctx, p->id);
      }
      end(t, pp, NULL, err);
    }
  }
  return owned;
}

void pending_refresh(struct pending_table *t, int64_t fresh) {
  for (int i = 0; i < PENDING_BUCKETS; i++)
    for (struct pending *p = t->buckets[i]; p; p = p->next)
      if (p->deadline < fresh)
        p->deadline = fresh;
}

void pending_disown(struct pending_table *t, pending_fn cb, int err) {
  for (int i = 0; i < PENDING_BUCKETS; i++) {
    for (struct pending *p = t->buckets[i]; p; p = p->next) {
      if (p->cb != cb)
        continue;
      void *ud = p->ud;
      p->cb = NULL;
      p->ud = NULL;
      cb(ud, NULL, err);
    }
  }
}
