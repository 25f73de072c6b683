/* SPDX-License-Identifier: MIT */
/*
 * codec: see codec.h. Inflation writes straight into the caller's buffer,
 * which this file grows itself (not through buf_reserve, whose doubling could
 * overshoot max_out twofold) and never past max_out plus the NUL byte; a
 * 64-byte scratch area tells "exactly max_out" from "more than max_out". The
 * gzip trailer's ISIZE field, clamped to max_out, sizes the first growth so
 * an honest frame is inflated with at most one realloc. Every error restores
 * out->len, so a rejected frame leaves no partial output behind.
 */
#include "codec.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Growth step when the ISIZE hint turns out to be too small. */
#define GROW_MIN 16384
/* Gzip header, stored-block header and trailer around stored data. */
#define CODEC_STORED_OVERHEAD (10 + 5 + 8)
/* Frames up to this size are deflated by a second stream sized for them: a
 * 4 KiB window and 1,024 hash heads. deflateReset clears the hash heads,
 * and with zlib's defaults (memLevel 8: 32,768 heads, 64 KiB) that memset
 * was most of the cost of deflating a small frame: about 65,000
 * instructions, against some 10,000 for deflating a 600-byte message. */
#define SMALL_MAX 16384
#define SMALL_WBITS 12
#define SMALL_MEMLEVEL 3

struct codec {
  z_stream inf;
  z_stream def;
  z_stream def_small; /* for frames up to SMALL_MAX, made on first use */
  size_t max_out;
  size_t store_max; /* frames up to this size go stored */
  int level;
  int inf_ok; /* 1 once inflateInit2 succeeded, so codec_free knows what to end */
  int def_ok;
  int small_ok;
};

struct codec *codec_new(size_t max_out, int level) {
  struct codec *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->max_out = max_out;
  c->store_max = CODEC_STORE_MAX;
  if (level < Z_DEFAULT_COMPRESSION || level > Z_BEST_COMPRESSION)
    level = Z_DEFAULT_COMPRESSION;
  c->level = level;
  /* 16 + MAX_WBITS selects the gzip wrapper (RFC 1952) in both directions. */
  if (inflateInit2(&c->inf, 16 + MAX_WBITS) != Z_OK)
    goto fail;
  c->inf_ok = 1;
  if (deflateInit2(&c->def, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK)
    goto fail;
  c->def_ok = 1;
  return c;
fail:
  codec_free(c);
  return NULL;
}

void codec_free(struct codec *c) {
  if (!c)
    return;
  if (c->inf_ok)
    inflateEnd(&c->inf);
  if (c->def_ok)
    deflateEnd(&c->def);
  if (c->small_ok)
    deflateEnd(&c->def_small);
  free(c);
}

void codec_set_max(struct codec *c, size_t max_out) {
  c->max_out = max_out;
}

void codec_set_store_max(struct codec *c, size_t n) {
  c->store_max = n;
}

const char *codec_strerror(int code) {
  switch (code) {
  case CODEC_OK:
    return "ok";
  case CODEC_EFORMAT:
    return "not a single valid gzip member";
  case CODEC_ETOOBIG:
    return "inflated frame exceeds the size limit";
  case CODEC_ENOMEM:
    return "out of memory";
  default:
    return "unknown codec error";
  }
}

/* Sets the capacity of b to exactly cap bytes (cap > b->cap). */
static int grow_exact(struct buf *b, size_t cap) {
  char *p = realloc(b->data, cap);
  if (!p)
    return -1;
  b->data = p;
  b->cap = cap;
  return 0;
}

/* Grows b for inflation when used bytes (old contents plus output so far)
 * leave no room for another byte and the NUL: doubling, at least want and
 * GROW_MIN more, never beyond limit. The caller guarantees used + 2 <= limit. */
static int grow_for_inflate(struct buf *b, size_t used, size_t want, size_t limit) {
  size_t target = b->cap > limit / 2 ? limit : b->cap * 2;
  if (target < want)
    target = want;
  if (target < used + GROW_MIN)
    target = used + GROW_MIN < used ? limit : used + GROW_MIN;
  if (target > limit)
    target = limit;
  if (target <= b->cap)
    return 0;
  return grow_exact(b, target);
}

/* Feeds the next piece of in to the stream; z_stream counts in uInt. */
static void feed(z_stream *s, const unsigned char **in, size_t *left) {
  uInt n = *left > UINT_MAX ? UINT_MAX : (uInt)*left;
  s->next_in = (Bytef *)*in;
  s->avail_in = n;
  *in += n;
  *left -= n;
}

int codec_inflate(struct codec *c, const void *in, size_t len, struct buf *out) {
  const size_t base = out->len;
  const unsigned char *src = in;
  size_t left = len;
  unsigned char scratch[64];
  int rc = CODEC_EFORMAT;

  /* A gzip member is at least a 10-byte header, an empty block and the 8-byte
   * trailer; anything shorter cannot be one. */
  if (len < 18)
    return CODEC_EFORMAT;

  /* Capacity ceiling: the old contents, max_out bytes of output, the NUL. */
  size_t limit = base + 1 <= SIZE_MAX - c->max_out ? base + c->max_out + 1 : SIZE_MAX;
  /* ISIZE is the uncompressed size modulo 2^32, little-endian, as the last
   * four bytes. It comes from the peer, so it is only a hint, clamped to the
   * limit and to deflate's best possible ratio (about 1032:1). */
  size_t hint = (size_t)src[len - 4] | (size_t)src[len - 3] << 8 |
                (size_t)src[len - 2] << 16 | (size_t)src[len - 1] << 24;
  if (hint > c->max_out)
    hint = c->max_out;
  if (len < SIZE_MAX / 1032 && hint > len * 1032)
    hint = len * 1032;
  size_t want = hint < limit - base - 1 ? base + hint + 1 : limit;

  if (inflateReset(&c->inf) != Z_OK)
    return CODEC_EFORMAT;
  /* The NUL terminator needs a byte even if max_out is 0. */
  if (buf_reserve(out, 0) < 0)
    return CODEC_ENOMEM;
  z_stream *s = &c->inf;
  feed(s, &src, &left);

  size_t produced = 0;
  for (;;) {
    if (s->avail_in == 0 && left > 0)
      feed(s, &src, &left);

    int probing = produced == c->max_out;
    if (probing) {
      /* The limit is reached: any further byte means the frame is too big. */
      s->next_out = scratch;
      s->avail_out = sizeof scratch;
    } else {
      if (out->cap < base + produced + 2) {
        if (grow_for_inflate(out, base + produced, want, limit) < 0) {
          rc = CODEC_ENOMEM;
          goto fail;
        }
      }
      size_t room = out->cap - 1 - (base + produced);
      size_t allowed = c->max_out - produced;
      if (room > allowed)
        room = allowed;
      if (room > UINT_MAX)
        room = UINT_MAX;
      s->next_out = (Bytef *)out->data + base + produced;
      s->avail_out = (uInt)room;
    }

    uInt before = s->avail_out;
    int zr = inflate(s, Z_NO_FLUSH);
    size_t got = before - s->avail_out;
    if (probing && got > 0) {
      rc = CODEC_ETOOBIG;
      goto fail;
    }
    produced += probing ? 0 : got;

    if (zr == Z_STREAM_END) {
      /* One member only: trailing bytes (a second member or garbage) are not
       * something Blaze sends, so they mark a malformed frame. */
      if (s->avail_in > 0 || left > 0)
        goto fail;
      break;
    }
    if (zr == Z_OK)
      continue;
    /* Every call has output room and, while any is left, input; so
     * Z_BUF_ERROR means the input ended inside the member (truncated). */
    rc = zr == Z_MEM_ERROR ? CODEC_ENOMEM : CODEC_EFORMAT;
    goto fail;
  }

  out->len = base + produced;
  out->data[out->len] = 0;
  return CODEC_OK;

fail:
  out->len = base;
  if (out->data)
    out->data[base] = 0;
  return rc;
}

/* A gzip member of one stored (uncompressed) deflate block, written by
 * hand: RFC 1952's 10-byte header (no name, mtime 0, OS 3 = Unix like
 * zlib's), RFC 1951's stored block (BFINAL, BTYPE 00, LEN, NLEN), the data,
 * then CRC-32 and ISIZE, little-endian. */
static int deflate_stored(const unsigned char *in, size_t len, struct buf *out) {
  if (buf_reserve(out, len + CODEC_STORED_OVERHEAD) < 0)
    return CODEC_ENOMEM;
  unsigned char *p = (unsigned char *)out->data + out->len;
  static const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
  memcpy(p, header, sizeof header);
  p += sizeof header;
  *p++ = 1; /* BFINAL = 1, BTYPE = 00 (stored) */
  p[0] = (unsigned char)(len & 0xff);
  p[1] = (unsigned char)(len >> 8);
  p[2] = (unsigned char)(~len & 0xff);
  p[3] = (unsigned char)((~len >> 8) & 0xff);
  p += 4;
  if (len)
    memcpy(p, in, len);
  p += len;
  uLong crc = crc32(crc32(0L, Z_NULL, 0), in, (uInt)len);
  for (int i = 0; i < 4; i++)
    *p++ = (unsigned char)(crc >> (8 * i));
  for (int i = 0; i < 4; i++)
    *p++ = (unsigned char)((uint32_t)len >> (8 * i));
  out->len += len + CODEC_STORED_OVERHEAD;
  out->data[out->len] = 0;
  return CODEC_OK;
}

int codec_deflate(struct codec *c, const void *in, size_t len, struct buf *out) {
  /* Small frames (most of Blaze: a reply, an ack batch) gain little from
   * compression (a 250-byte reply shrinks by about 13%) and deflate's fixed
   * costs, resetting its hash table and building Huffman codes, are most of
   * their CPU; they go stored. */
  if (c->store_max && len <= c->store_max)
    return deflate_stored(in, len, out);
  const size_t base = out->len;
  const unsigned char *src = in;
  size_t left = len;
  z_stream *s = &c->def;
  if (len <= SMALL_MAX) {
    if (!c->small_ok &&
        deflateInit2(&c->def_small, c->level, Z_DEFLATED, 16 + SMALL_WBITS,
                     SMALL_MEMLEVEL, Z_DEFAULT_STRATEGY) == Z_OK)
      c->small_ok = 1;
    if (c->small_ok) /* else the big stream does it */
      s = &c->def_small;
  }

  if (deflateReset(s) != Z_OK)
    return CODEC_ENOMEM;
  /* deflateBound covers the gzip header and trailer, so this is normally the
   * only reservation; the loop below still copes if it were not enough. */
  uLong bound = deflateBound(s, (uLong)len);
  if (buf_reserve(out, bound) < 0)
    return CODEC_ENOMEM;

  s->next_in = (Bytef *)src;
  s->avail_in = 0;
  size_t produced = 0;
  for (;;) {
    if (s->avail_in == 0 && left > 0)
      feed(s, &src, &left);
    if (out->cap - 1 - (base + produced) == 0) {
      out->len = base + produced;
      if (buf_reserve(out, GROW_MIN) < 0)
        goto nomem;
    }
    size_t room = out->cap - 1 - (base + produced);
    s->next_out = (Bytef *)out->data + base + produced;
    s->avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
    uInt before = s->avail_out;
    int zr = deflate(s, left > 0 ? Z_NO_FLUSH : Z_FINISH);
    produced += before - s->avail_out;
    if (zr == Z_STREAM_END)
      break;
    if (zr != Z_OK && zr != Z_BUF_ERROR)
      goto nomem;
  }
  out->len = base + produced;
  out->data[out->len] = 0;
  return CODEC_OK;

nomem:
  out->len = base;
  if (out->data)
    out->data[base] = 0;
  return CODEC_ENOMEM;
}
