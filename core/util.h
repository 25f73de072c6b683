/* SPDX-License-Identifier: MIT */
/*
 * util: clocks, random UUIDs, hex, and the Mixin 1:1 conversation id. All
 * functions are thread-safe. UUIDs are always lowercase canonical strings
 * (36 characters plus NUL) because that is what the wire uses.
 */
#ifndef BLAZEBOT_UTIL_H
#define BLAZEBOT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define UUID_STR_LEN 37 /* 36 characters + NUL */

/* Monotonic milliseconds, for deadlines and intervals. */
int64_t now_ms(void);
/* The monotonic clock in microseconds. */
int64_t now_us(void);
/* Wall-clock Unix seconds, for JWT claims. */
/* The wall clock in milliseconds since 1970-01-01 UTC. */
int64_t wall_ms(void);
int64_t wall_s(void);

/* Fills out with a random (version 4) UUID from OpenSSL's CSPRNG. Returns 0
 * or -1 if the CSPRNG failed. */
int uuid_v4(char out[UUID_STR_LEN]);
/* A series of distinct version-4 UUIDs without a call to the random
 * generator each: base (16 random bytes, from uuid_series_init) with n
 * mixed into its last 8 bytes. For request ids, unique per series; not
 * secrets. */
struct uuid_series {
  unsigned char base[16];
  uint64_t n;
};
int uuid_series_init(struct uuid_series *s);
void uuid_series_next(struct uuid_series *s, char out[UUID_STR_LEN]);
/* 1 if s is a canonical lowercase or uppercase 8-4-4-4-12 UUID string. */
int uuid_valid(const char *s);
/* The 1:1 conversation id of two users (protocol.md §6.3): MD5 of the two
 * lowercase ids concatenated in sorted order, version 3 and RFC 4122 variant
 * bits set. Returns 0, or -1 when either input is not a UUID. */
int uuid_unique_conversation(const char *a, const char *b, char out[UUID_STR_LEN]);

/* A name-based (version 5, SHA-1) UUID for the ordinal-th message sent by
 * plugin `label` while handling the message `parent_id`: the same inputs give
 * the same id in any process, so a reply sent again after a retry or a crash
 * reuses its id and the server keeps one copy. The name hashed under the
 * namespace UUID_REPLY_NAMESPACE is "<parent_id lowercase>/<label>/<ordinal>".
 * Returns 0, or -1 when parent_id is not a UUID or label is empty. */
#define UUID_REPLY_NAMESPACE "6f8a3c1e-2b7d-4e59-9c0a-b1a2e0b0f00d"
int uuid_derive(const char *parent_id, const char *label, uint32_t ordinal,
                char out[UUID_STR_LEN]);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *out);
/* Decodes exactly 2*n hex digits; returns the byte count or -1. */
int hex_decode(const char *in, size_t inlen, unsigned char *out, size_t outcap);

/* Formats a one-line reason into err (errlen bytes; err may be NULL) and
 * returns -1, for loaders that report errors through an err buffer. */
int error_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A uniform random integer in [0, n) (n > 0), for backoff jitter. */
uint32_t rand_below(uint32_t n);

/* 1 when the n bytes at s are well-formed UTF-8 (no overlongs, no
 * surrogates, nothing above U+10FFFF). */
int utf8_valid(const unsigned char *s, size_t n);

#endif
