/* SPDX-License-Identifier: MIT */
/*
 * buf: a growable byte buffer. Buffers are reused across messages (reset
 * keeps the capacity) so the hot path does not allocate per frame. The data
 * is always NUL-terminated one byte past len for convenience.
 */
#ifndef BLAZEBOT_BUF_H
#define BLAZEBOT_BUF_H

#include <stddef.h>

struct buf {
  char *data;
  size_t len;
  size_t cap;
};

/* Ensures room for len + extra + 1 bytes. Returns 0 or -1 (out of memory). */
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_appendf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Sets len to n (growing if needed; new bytes are zero). */
int buf_resize(struct buf *b, size_t n);
static inline void buf_reset(struct buf *b) {
  b->len = 0;
  if (b->data)
    b->data[0] = 0;
}
/* Frees the storage; the struct may be reused after. */
void buf_fini(struct buf *b);

#endif
