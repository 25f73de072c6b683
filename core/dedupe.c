/* SPDX-License-Identifier: MIT */
/*
 * dedupe: see dedupe.h. Entries live in a ring in insertion order, so the
 * oldest is always at head and eviction is O(1); an open-addressing table
 * (power-of-two size, at least twice the capacity, linear probing) maps keys
 * to ring slots. Deletion uses backward shift, so probe chains never hold
 * tombstones. A UUID is stored as its 128 bits (case-insensitive, as the wire
 * allows either case); any other string as a 128-bit keyed hash of it. Message
 * ids are chosen by senders, so table positions come from SipHash-1-3 under a
 * random per-set key: a peer cannot craft ids that pile up in one chain.
 */
#include "dedupe.h"

#include <openssl/rand.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { KIND_UUID = 1, KIND_HASHED = 2 };

struct key {
  uint64_t hi, lo;
  uint8_t kind;
};

struct entry {
  uint64_t hi, lo;
  uint32_t hash; /* table position hash, kept for backward-shift deletion */
  uint8_t kind;
  uint8_t state;
};

struct dedupe {
  struct entry *ring; /* capacity slots; live ones are head .. head+count-1 */
  uint32_t *table;    /* ring index + 1, or 0 for an empty slot */
  size_t capacity;
  size_t count;
  size_t head;
  size_t mask;      /* table size - 1 */
  uint64_t seed[4]; /* SipHash keys: [0..1] for positions, [2..3] for hashed ids */
};

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                         \
  do {                                                                                   \
    v0 += v1;                                                                            \
    v1 = ROTL(v1, 13);                                                                   \
    v1 ^= v0;                                                                            \
    v0 = ROTL(v0, 32);                                                                   \
    v2 += v3;                                                                            \
    v3 = ROTL(v3, 16);                                                                   \
    v3 ^= v2;                                                                            \
    v0 += v3;                                                                            \
    v3 = ROTL(v3, 21);                                                                   \
    v3 ^= v0;                                                                            \
    v2 += v1;                                                                            \
    v1 = ROTL(v1, 17);                                                                   \
    v1 ^= v2;                                                                            \
    v2 = ROTL(v2, 32);                                                                   \
  } while (0)
#define SIPINIT(k0, k1)                                                                  \
  uint64_t v0 = (k0) ^ 0x736f6d6570736575ULL, v1 = (k1) ^ 0x646f72616e646f6dULL;         \
  uint64_t v2 = (k0) ^ 0x6c7967656e657261ULL, v3 = (k1) ^ 0x7465646279746573ULL
#define SIPBLOCK(m)                                                                      \
  do {                                                                                   \
    v3 ^= (m);                                                                           \
    SIPROUND;                                                                            \
    v0 ^= (m);                                                                           \
  } while (0)
#define SIPFINAL                                                                         \
  do {                                                                                   \
    v2 ^= 0xff;                                                                          \
    SIPROUND;                                                                            \
    SIPROUND;                                                                            \
    SIPROUND;                                                                            \
  } while (0)

/* SipHash-1-3 (the variant Rust's HashMap uses against hash flooding) of
 * in[0..n) under the key k0, k1. */
static uint64_t siphash(uint64_t k0, uint64_t k1, const unsigned char *in, size_t n) {
  SIPINIT(k0, k1);
  size_t full = n & ~(size_t)7;
  for (size_t i = 0; i < full; i += 8) {
    uint64_t m = 0;
    for (int j = 7; j >= 0; j--)
      m = m << 8 | in[i + (size_t)j];
    SIPBLOCK(m);
  }
  uint64_t b = (uint64_t)n << 56;
  for (size_t i = 0; i < (n & 7); i++)
    b |= (uint64_t)in[full + i] << (8 * i);
  SIPBLOCK(b);
  SIPFINAL;
  return v0 ^ v1 ^ v2 ^ v3;
}

/* The same function for a 16-byte input given as two words. */
static uint64_t siphash128(uint64_t k0, uint64_t k1, uint64_t a, uint64_t b) {
  SIPINIT(k0, k1);
  SIPBLOCK(a);
  SIPBLOCK(b);
  SIPBLOCK((uint64_t)16 << 56);
  SIPFINAL;
  return v0 ^ v1 ^ v2 ^ v3;
}

/* Hex digit values plus one; 0 marks a non-digit (NUL included). */
#define HX(c, v) [c] = (v) + 1
static const unsigned char hexp1[256] = {
    HX('0', 0),  HX('1', 1),  HX('2', 2),  HX('3', 3),  HX('4', 4),  HX('5', 5),
    HX('6', 6),  HX('7', 7),  HX('8', 8),  HX('9', 9),  HX('a', 10), HX('b', 11),
    HX('c', 12), HX('d', 13), HX('e', 14), HX('f', 15), HX('A', 10), HX('B', 11),
    HX('C', 12), HX('D', 13), HX('E', 14), HX('F', 15),
};

/* Parses a canonical 8-4-4-4-12 UUID (either case) into 128 bits in one
 * pass; 0 if s is anything else. Stops at the first mismatch, so it never
 * reads past a shorter string's NUL. */
static int parse_uuid(const char *id, uint64_t *hi, uint64_t *lo) {
  static const unsigned char groups[5] = {8, 4, 4, 4, 12};
  const unsigned char *s = (const unsigned char *)id;
  uint64_t w[2] = {0, 0};
  int nib = 0;
  for (int g = 0; g < 5; g++) {
    if (g > 0 && *s++ != '-')
      return 0;
    for (int i = 0; i < groups[g]; i++, nib++) {
      unsigned v = hexp1[*s++];
      if (!v)
        return 0;
      w[nib >> 4] = w[nib >> 4] << 4 | (v - 1);
    }
  }
  if (*s != 0)
    return 0;
  *hi = w[0];
  *lo = w[1];
  return 1;
}

static void make_key(const struct dedupe *d, const char *id, struct key *k) {
  if (parse_uuid(id, &k->hi, &k->lo)) {
    k->kind = KIND_UUID;
    return;
  }
  size_t n = strlen(id);
  const unsigned char *s = (const unsigned char *)id;
  k->hi = siphash(d->seed[2], d->seed[3], s, n);
  k->lo = siphash(d->seed[3], d->seed[2], s, n);
  k->kind = KIND_HASHED;
}

/* Table position hash; the kind selects the key so that a UUID and a hashed
 * string with equal bits still land apart. */
static uint32_t key_hash(const struct dedupe *d, const struct key *k) {
  uint64_t k1 = d->seed[1] ^ (k->kind == KIND_UUID ? 0 : 0x5bd1e9955bd1e995ULL);
  return (uint32_t)siphash128(d->seed[0], k1, k->hi, k->lo);
}

/* The table slot holding k, or the empty slot where it would go. */
static size_t find_slot(const struct dedupe *d, const struct key *k, uint32_t h) {
  size_t i = h & d->mask;
  for (;;) {
    uint32_t t = d->table[i];
    if (t == 0)
      return i;
    const struct entry *e = &d->ring[t - 1];
    if (e->hash == h && e->lo == k->lo && e->hi == k->hi && e->kind == k->kind)
      return i;
    i = (i + 1) & d->mask;
  }
}

/* Empties table slot i and shifts later members of its probe run back, so
 * every remaining key stays reachable from its home slot without gaps. */
static void table_delete(struct dedupe *d, size_t i) {
  size_t j = i;
  for (;;) {
    j = (j + 1) & d->mask;
    uint32_t t = d->table[j];
    if (t == 0)
      break;
    size_t home = d->ring[t - 1].hash & d->mask;
    /* The entry at j may move to i only if its home is not in (i, j]. */
    int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (!stays) {
      d->table[i] = t;
      i = j;
    }
  }
  d->table[i] = 0;
}

struct dedupe *dedupe_new(size_t capacity) {
  /* Ring indices are stored as uint32_t + 1 in a table of 2 * capacity. */
  if (capacity == 0 || capacity > ((size_t)1 << 30))
    return NULL;
  struct dedupe *d = calloc(1, sizeof *d);
  if (!d)
    return NULL;
  size_t size = 16;
  while (size < 2 * capacity)
    size *= 2;
  d->capacity = capacity;
  d->mask = size - 1;
  d->ring = calloc(capacity, sizeof *d->ring);
  d->table = calloc(size, sizeof *d->table);
  if (!d->ring || !d->table ||
      RAND_bytes((unsigned char *)d->seed, (int)sizeof d->seed) != 1) {
    dedupe_free(d);
    return NULL;
  }
  return d;
}

void dedupe_free(struct dedupe *d) {
  if (!d)
    return;
  free(d->ring);
  free(d->table);
  free(d);
}

int dedupe_get(const struct dedupe *d, const char *id) {
  if (!id)
    return DEDUPE_NEW;
  struct key k;
  make_key(d, id, &k);
  uint32_t t = d->table[find_slot(d, &k, key_hash(d, &k))];
  return t ? d->ring[t - 1].state : DEDUPE_NEW;
}

/* Doubles the capacity, keeping every entry in ring order. */
static int grow(struct dedupe *d) {
  size_t ncap = d->capacity * 2, size = (d->mask + 1) * 2;
  if (ncap > ((size_t)1 << 30))
    return -1;
  struct entry *ring = calloc(ncap, sizeof *ring);
  uint32_t *table = calloc(size, sizeof *table);
  if (!ring || !table) {
    free(ring);
    free(table);
    return -1;
  }
  for (size_t i = 0; i < d->count; i++)
    ring[i] = d->ring[(d->head + i) % d->capacity];
  free(d->ring);
  free(d->table);
  d->ring = ring;
  d->table = table;
  d->capacity = ncap;
  d->mask = size - 1;
  d->head = 0;
  for (size_t i = 0; i < d->count; i++) {
    struct key k = {ring[i].hi, ring[i].lo, ring[i].kind};
    d->table[find_slot(d, &k, ring[i].hash)] = (uint32_t)i + 1;
  }
  return 0;
}

void dedupe_set(struct dedupe *d, const char *id, int state) {
  if (!id)
    return;
  struct key k;
  make_key(d, id, &k);
  uint32_t h = key_hash(d, &k);
  size_t slot = find_slot(d, &k, h);
  if (d->table[slot]) {
    d->ring[d->table[slot] - 1].state = (uint8_t)state;
    return;
  }

  size_t r;
  if (d->count == d->capacity) {
    /* An id still in processing is never evicted: forgetting it would let a
     * redelivery run it twice. In a full ring the oldest entry becomes the
     * newest just by moving head past it, so such entries are skipped at no
     * cost; only when every entry is in processing does the set grow. */
    size_t skipped = 0;
    while (d->ring[d->head].state == DEDUPE_INFLIGHT && skipped < d->count) {
      d->head = (d->head + 1) % d->capacity;
      skipped++;
    }
    if (skipped == d->count) {
      if (grow(d) < 0)
        return; /* out of memory: the new id is not remembered */
      slot = find_slot(d, &k, h);
      r = (d->head + d->count) % d->capacity;
      d->count++;
      goto store;
    }
    /* Evict the oldest; its ring slot takes the new entry, which becomes the
     * newest because head moves past it. */
    r = d->head;
    const struct entry *old = &d->ring[r];
    struct key ok = {old->hi, old->lo, old->kind};
    table_delete(d, find_slot(d, &ok, old->hash));
    d->head = (d->head + 1) % d->capacity;
    /* The deletion may have shifted the new key's empty slot. */
    slot = find_slot(d, &k, h);
  } else {
    r = (d->head + d->count) % d->capacity;
    d->count++;
  }
store:;
  struct entry *e = &d->ring[r];
  e->hi = k.hi;
  e->lo = k.lo;
  e->hash = h;
  e->kind = k.kind;
  e->state = (uint8_t)state;
  d->table[slot] = (uint32_t)r + 1;
}

size_t dedupe_count(const struct dedupe *d) {
  return d->count;
}
