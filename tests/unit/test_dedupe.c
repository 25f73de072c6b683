/* SPDX-License-Identifier: MIT */
/*
 * test_dedupe: ids are remembered with their state, re-setting updates in
 * place, a full set forgets exactly its oldest entries, and after 100k
 * random operations (with evictions shifting probe chains) every lookup
 * still agrees with a brute-force FIFO model.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "dedupe.h"

/* A deterministic UUID-shaped id for n (lowercase or uppercase). */
static void id_for(unsigned n, int upper, char out[37]) {
  snprintf(out, 37,
           upper ? "%08X-%04X-4%03X-8%03X-%012llX" : "%08x-%04x-4%03x-8%03x-%012llx",
           n * 2654435761u, n & 0xffff, (n >> 4) & 0xfff, (n >> 8) & 0xfff,
           (unsigned long long)n * 0x9e3779b97ULL & 0xffffffffffffULL);
}

static void test_basic(void) {
  struct dedupe *d = dedupe_new(8);
  CHECK(d != NULL);
  char a[37], b[37];
  id_for(1, 0, a);
  id_for(2, 0, b);
  CHECK_INT(dedupe_count(d), 0);
  CHECK_INT(dedupe_get(d, a), DEDUPE_NEW);
  dedupe_set(d, a, DEDUPE_INFLIGHT);
  CHECK_INT(dedupe_get(d, a), DEDUPE_INFLIGHT);
  CHECK_INT(dedupe_get(d, b), DEDUPE_NEW);
  CHECK_INT(dedupe_count(d), 1);
  dedupe_set(d, a, DEDUPE_DONE);
  CHECK_INT(dedupe_get(d, a), DEDUPE_DONE);
  CHECK_INT(dedupe_count(d), 1); /* re-set does not duplicate */
  dedupe_set(d, b, DEDUPE_INFLIGHT);
  CHECK_INT(dedupe_count(d), 2);
  CHECK_INT(dedupe_get(d, b), DEDUPE_INFLIGHT);
  CHECK_INT(dedupe_get(d, a), DEDUPE_DONE);

  /* The same UUID in uppercase is the same id. */
  char A[37];
  id_for(1, 1, A);
  CHECK(strcmp(a, A) != 0);
  CHECK_INT(dedupe_get(d, A), DEDUPE_DONE);

  /* Non-UUID strings work, and do not collide with UUIDs or each other. */
  dedupe_set(d, "not-a-uuid", DEDUPE_INFLIGHT);
  CHECK_INT(dedupe_get(d, "not-a-uuid"), DEDUPE_INFLIGHT);
  CHECK_INT(dedupe_get(d, "not-a-uuiD"), DEDUPE_NEW);
  CHECK_INT(dedupe_get(d, ""), DEDUPE_NEW);
  dedupe_set(d, "", DEDUPE_DONE);
  CHECK_INT(dedupe_get(d, ""), DEDUPE_DONE);
  char longid[64];
  memset(longid, 'x', 63);
  longid[63] = 0;
  dedupe_set(d, longid, DEDUPE_DONE);
  CHECK_INT(dedupe_get(d, longid), DEDUPE_DONE);
  longid[62] = 'y';
  CHECK_INT(dedupe_get(d, longid), DEDUPE_NEW);
  CHECK_INT(dedupe_count(d), 5);
  dedupe_free(d);

  CHECK(dedupe_new(0) == NULL);
  dedupe_free(NULL);
}

static void test_eviction(void) {
  struct dedupe *d = dedupe_new(1000);
  char id[37];
  for (unsigned i = 0; i < 5000; i++) {
    id_for(i, 0, id);
    dedupe_set(d, id, DEDUPE_INFLIGHT);
    /* Re-setting an entry keeps its place in the eviction order. Ids in
     * processing are never evicted, so (as in the daemon) each finishes
     * before many more arrive: here all but the last 10. */
    if (i >= 10) {
      id_for(i - 10, 0, id);
      dedupe_set(d, id, DEDUPE_DONE);
    }
  }
  CHECK_INT(dedupe_count(d), 1000);
  int wrong = 0;
  for (unsigned i = 0; i < 5000; i++) {
    id_for(i, 0, id);
    int want = i < 4000 ? DEDUPE_NEW : (i < 4990 ? DEDUPE_DONE : DEDUPE_INFLIGHT);
    if (dedupe_get(d, id) != want)
      wrong++;
  }
  CHECK_INT(wrong, 0);

  /* Updating the oldest entry does not save it from eviction next. */
  id_for(4000, 0, id);
  dedupe_set(d, id, DEDUPE_DONE);
  char fresh[37];
  id_for(9999, 0, fresh);
  dedupe_set(d, fresh, DEDUPE_INFLIGHT);
  CHECK_INT(dedupe_get(d, id), DEDUPE_NEW);
  CHECK_INT(dedupe_get(d, fresh), DEDUPE_INFLIGHT);
  id_for(4001, 0, id);
  CHECK(dedupe_get(d, id) != DEDUPE_NEW);
  CHECK_INT(dedupe_count(d), 1000);
  dedupe_free(d);

  /* Capacity 1: always just the last id. */
  d = dedupe_new(1);
  dedupe_set(d, "a", DEDUPE_DONE);
  dedupe_set(d, "b", DEDUPE_INFLIGHT);
  CHECK_INT(dedupe_get(d, "a"), DEDUPE_NEW);
  CHECK_INT(dedupe_get(d, "b"), DEDUPE_INFLIGHT);
  CHECK_INT(dedupe_count(d), 1);
  dedupe_free(d);
}

static uint64_t rng = 0x853c49e6748fea9bULL;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}

/* Brute-force model: a FIFO array of (id number, state). When full, ids in
 * processing at the front move to the back (they are never evicted) and the
 * first finished one goes; if all are in processing the capacity doubles. */
struct model {
  unsigned ids[2048];
  int states[2048];
  size_t n, cap;
};

static int model_find(const struct model *m, unsigned id) {
  for (size_t i = 0; i < m->n; i++)
    if (m->ids[i] == id)
      return (int)i;
  return -1;
}

static void model_set(struct model *m, unsigned id, int state) {
  int i = model_find(m, id);
  if (i >= 0) {
    m->states[i] = state;
    return;
  }
  if (m->n == m->cap) {
    size_t rotated = 0;
    while (m->states[0] == DEDUPE_INFLIGHT && rotated < m->n) {
      unsigned fid = m->ids[0];
      memmove(m->ids, m->ids + 1, (m->n - 1) * sizeof m->ids[0]);
      memmove(m->states, m->states + 1, (m->n - 1) * sizeof m->states[0]);
      m->ids[m->n - 1] = fid;
      m->states[m->n - 1] = DEDUPE_INFLIGHT;
      rotated++;
    }
    if (rotated == m->n) {
      m->cap *= 2;
    } else {
      memmove(m->ids, m->ids + 1, (m->n - 1) * sizeof m->ids[0]);
      memmove(m->states, m->states + 1, (m->n - 1) * sizeof m->states[0]);
      m->n--;
    }
  }
  m->ids[m->n] = id;
  m->states[m->n] = state;
  m->n++;
}

static void make_id(unsigned n, char out[64]) {
  /* A third of the ids are not UUIDs; some UUIDs are written in uppercase. */
  if (n % 3 == 0)
    snprintf(out, 64, "id-%u", n);
  else
    id_for(n, n % 7 == 0, out);
}

static void test_model(void) {
  static const size_t caps[] = {1, 7, 64, 500};
  for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
    struct model m = {.n = 0, .cap = caps[c]};
    struct dedupe *d = dedupe_new(caps[c]);
    unsigned pool = (unsigned)caps[c] * 3 + 5;
    int wrong = 0;
    char id[64];
    for (int op = 0; op < 100000; op++) {
      unsigned n = rnd() % pool;
      make_id(n, id);
      if (rnd() % 2) {
        int state = 1 + (int)(rnd() % 2);
        dedupe_set(d, id, state);
        model_set(&m, n, state);
      } else {
        int i = model_find(&m, n);
        int want = i < 0 ? DEDUPE_NEW : m.states[i];
        if (dedupe_get(d, id) != want)
          wrong++;
      }
      if (dedupe_count(d) != m.n)
        wrong++;
    }
    /* A full sweep at the end. */
    for (unsigned n = 0; n < pool; n++) {
      make_id(n, id);
      int i = model_find(&m, n);
      if (dedupe_get(d, id) != (i < 0 ? DEDUPE_NEW : m.states[i]))
        wrong++;
    }
    CHECK_INT(wrong, 0);
    dedupe_free(d);
  }
}

/* Prints the cost of the per-message pattern (get, then set when new). */
static void bench(void) {
  size_t cap = 100000;
  unsigned ops = 1000000;
  char(*ids)[37] = malloc((size_t)ops * 37);
  for (unsigned i = 0; i < ops; i++)
    id_for(i, 0, ids[i]);
  struct dedupe *d = dedupe_new(cap);
  clock_t t0 = clock();
  for (unsigned i = 0; i < ops; i++) {
    if (dedupe_get(d, ids[i]) == DEDUPE_NEW) {
      dedupe_set(d, ids[i], DEDUPE_INFLIGHT);
      dedupe_set(d, ids[i], DEDUPE_DONE);
    }
  }
  double sec = (double)(clock() - t0) / CLOCKS_PER_SEC;
  CHECK_INT(dedupe_count(d), cap);
  printf("bench: get+set with eviction at capacity %zu: %.0f ns per id\n", cap,
         sec * 1e9 / ops);
  free(ids);
  dedupe_free(d);
}

/* An id in processing is never evicted: the oldest finished one goes
 * instead, and when every entry is in processing the set grows. */
static void test_inflight_kept(void) {
  struct dedupe *d = dedupe_new(4);
  char id[8][37];
  for (int i = 0; i < 8; i++)
    snprintf(id[i], sizeof id[i], "00000000-0000-4000-8000-%012d", i);
  dedupe_set(d, id[0], DEDUPE_INFLIGHT);
  dedupe_set(d, id[1], DEDUPE_DONE);
  dedupe_set(d, id[2], DEDUPE_INFLIGHT);
  dedupe_set(d, id[3], DEDUPE_DONE);
  dedupe_set(d, id[4], DEDUPE_INFLIGHT); /* full: evicts id1, the oldest done */
  CHECK_INT(dedupe_get(d, id[0]), DEDUPE_INFLIGHT);
  CHECK_INT(dedupe_get(d, id[1]), DEDUPE_NEW);
  CHECK_INT(dedupe_get(d, id[2]), DEDUPE_INFLIGHT);
  CHECK_INT(dedupe_get(d, id[3]), DEDUPE_DONE);
  CHECK_INT(dedupe_get(d, id[4]), DEDUPE_INFLIGHT);
  dedupe_set(d, id[5], DEDUPE_INFLIGHT); /* evicts id3 */
  CHECK_INT(dedupe_get(d, id[3]), DEDUPE_NEW);
  CHECK_INT(dedupe_count(d), 4);
  /* Every entry in processing: the set grows instead of forgetting one. */
  dedupe_set(d, id[6], DEDUPE_INFLIGHT);
  CHECK_INT(dedupe_count(d), 5);
  for (int i = 0; i < 7; i++)
    if (i != 1 && i != 3)
      CHECK_INT(dedupe_get(d, id[i]), DEDUPE_INFLIGHT);
  /* Once finished they are evicted oldest first again. */
  for (int i = 0; i < 7; i++)
    if (i != 1 && i != 3)
      dedupe_set(d, id[i], DEDUPE_DONE);
  dedupe_set(d, id[7], DEDUPE_INFLIGHT);
  CHECK_INT(dedupe_count(d), 6);
  CHECK_INT(dedupe_get(d, id[7]), DEDUPE_INFLIGHT);
  CHECK_INT(dedupe_get(d, id[0]), DEDUPE_DONE);
  dedupe_free(d);
}

int main(void) {
  test_basic();
  test_eviction();
  test_inflight_kept();
  test_model();
  bench();
  return check_done("dedupe");
}
