/* SPDX-License-Identifier: MIT */
/*
 * codec: gzip (RFC 1952) in and out of Blaze frames. One codec owns one
 * inflate and one deflate z_stream that are reset, not re-created, between
 * frames (no per-frame allocation). Inflation stops with CODEC_ETOOBIG as
 * soon as the output would pass max_out, so a gzip bomb costs at most
 * max_out bytes. A codec is used by one thread at a time.
 */
#ifndef BLAZEBOT_CODEC_H
#define BLAZEBOT_CODEC_H

#include <stddef.h>

#include "buf.h"

enum {
  CODEC_OK = 0,
  CODEC_EFORMAT = -1, /* not gzip, corrupt, truncated or trailing garbage */
  CODEC_ETOOBIG = -2, /* inflated size would exceed max_out */
  CODEC_ENOMEM = -3,
};

struct codec;

/* level: zlib level for deflate (Blaze clients use 3). NULL on OOM. */
struct codec *codec_new(size_t max_out, int level);
void codec_free(struct codec *c);
void codec_set_max(struct codec *c, size_t max_out);

/* Inflates one complete gzip member from in; the result is appended to out
 * (out->len grows; out is NUL-terminated). Returns a CODEC_* code. */
int codec_inflate(struct codec *c, const void *in, size_t len, struct buf *out);
/* Frames of at most this many bytes are sent stored (uncompressed) inside
 * their gzip member: valid gzip for any reader, at a tenth of the CPU. */
#define CODEC_STORE_MAX 1024
/* Changes that threshold for c (0: compress every frame, as the real Blaze
 * server does, which the simulator imitates). */
void codec_set_store_max(struct codec *c, size_t n);

/* Deflates in as one gzip member appended to out. Returns a CODEC_* code. */
int codec_deflate(struct codec *c, const void *in, size_t len, struct buf *out);
/* Text for a CODEC_* code. */
const char *codec_strerror(int code);

#endif
