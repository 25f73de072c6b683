/* SPDX-License-Identifier: MIT */
/* buf: see buf.h. Growth doubles, so appends are amortised O(1). */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int buf_reserve(struct buf *b, size_t extra) {
  size_t need = b->len + extra + 1;
  if (need < b->len)
    return -1;
  if (need <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) {
    if (cap > ((size_t)-1) / 2)
      return -1;
    cap *= 2;
  }
  char *p = realloc(b->data, cap);
  if (!p)
    return -1;
  b->data = p;
  b->cap = cap;
  return 0;
}

int buf_append(struct buf *b, const void *p, size_t n) {
  if (buf_reserve(b, n) < 0)
    return -1;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = 0;
  return 0;
}

int buf_appendf(struct buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || buf_reserve(b, (size_t)n) < 0)
    return -1;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

int buf_resize(struct buf *b, size_t n) {
  if (n > b->len) {
    if (buf_reserve(b, n - b->len) < 0)
      return -1;
    memset(b->data + b->len, 0, n - b->len);
  }
  b->len = n;
  if (b->data)
    b->data[n] = 0;
  return 0;
}

void buf_fini(struct buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
