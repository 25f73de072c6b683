/* SPDX-License-Identifier: MIT */
/*
 * jscan: see jscan.h. A recursive-descent validator over the bytes, with
 * the grammar of RFC 8259 and the checks jansson makes (UTF-8 without
 * overlongs or surrogates, \u escapes with paired surrogates and no
 * \u0000 in decoded keys we look at, no control characters in strings).
 * Plain ASCII runs inside strings, most of a frame, are checked eight bytes
 * at a time.
 */
#include "jscan.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct scan {
  const char *p, *end, *start;
};

static void skip_ws(struct scan *s) {
  while (s->p < s->end &&
         (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
    s->p++;
}

static int hex4(const char *p, const char *end, unsigned *out) {
  if (end - p < 4)
    return -1;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      v |= (unsigned)(c - 'A' + 10);
    else
      return -1;
  }
  *out = v;
  return 0;
}

/* Length of the well-formed UTF-8 sequence at p (lead byte >= 0x80), or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end) {
  unsigned c = p[0], min, cp;
  size_t n;
  if ((c & 0xE0) == 0xC0)
    n = 2, min = 0x80, cp = c & 0x1F;
  else if ((c & 0xF0) == 0xE0)
    n = 3, min = 0x800, cp = c & 0x0F;
  else if ((c & 0xF8) == 0xF0)
    n = 4, min = 0x10000, cp = c & 0x07;
  else
    return 0;
  if ((size_t)(end - p) < n)
    return 0;
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}

/* A \u escape at p (pointing at 'u'): validates it, and its low surrogate
 * when it is a high one. Returns the pointer past it, or NULL. *cp gets the
 * code point. */
static const char *unicode_escape(const char *p, const char *end, unsigned *cp) {
  unsigned v;
  if (hex4(p + 1, end, &v) < 0)
    return NULL;
  p += 5;
  if (v >= 0xDC00 && v <= 0xDFFF)
    return NULL; /* a lone low surrogate */
  if (v >= 0xD800 && v <= 0xDBFF) {
    unsigned lo;
    if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, end, &lo) < 0 ||
        lo < 0xDC00 || lo > 0xDFFF)
      return NULL;
    v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
    p += 6;
  }
  *cp = v;
  return p;
}

/* Eight bytes at p hold a byte that is not plain string text: '"', '\\',
 * a control character or a byte >= 0x80. Bit 7 of the first such byte's
 * lane (little-endian: the lowest) is set; borrows may set lanes after it,
 * never before, so the lowest set bit is exact. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static uint64_t special8(const char *p) {
  const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
  uint64_t x;
  memcpy(&x, p, 8);
  uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
  return (((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b) | x) & highs;
}
#endif

/* A string at s->p (its opening quote). */
static int scan_string(struct scan *s, int *escaped) {
  const char *p = s->p + 1, *end = s->end;
  while (p < end) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* Plain runs (most of a frame) eight bytes a step. */
    while (end - p >= 8) {
      uint64_t m = special8(p);
      if (!m) {
        p += 8;
        continue;
      }
      p += (unsigned)__builtin_ctzll(m) / 8;
      break;
    }
#endif
    if (p >= end)
      break;
    unsigned char c = (unsigned char)*p;
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      p++;
      continue;
    }
    if (c == '"') {
      s->p = p + 1;
      return 0;
    }
    if (c == '\\') {
      *escaped = 1;
      if (p + 1 >= end)
        break;
      char e = p[1];
      if (e == 'u') {
        unsigned cp;
        const char *q = unicode_escape(p + 1, end, &cp);
        if (!q || cp == 0)
          break; /* like jansson, no \u0000 */
        p = q;
      } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                 e == 'r' || e == 't') {
        p += 2;
      } else {
        break;
      }
      continue;
    }
    if (c < 0x20)
      break;
    size_t n = utf8_seq((const unsigned char *)p, (const unsigned char *)end);
    if (!n)
      break;
    p += n;
  }
  s->p = p;
  return -1;
}

static int digits(struct scan *s) {
  const char *q = s->p;
  while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
    s->p++;
  return s->p > q ? 0 : -1;
}

static int scan_number(struct scan *s) {
  if (s->p < s->end && *s->p == '-')
    s->p++;
  if (s->p < s->end && *s->p == '0')
    s->p++;
  else if (digits(s) < 0)
    return -1;
  if (s->p < s->end && *s->p == '.') {
    s->p++;
    if (digits(s) < 0)
      return -1;
  }
  if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
    s->p++;
    if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
      s->p++;
    if (digits(s) < 0)
      return -1;
  }
  return 0;
}

static int scan_literal(struct scan *s, const char *word, size_t n) {
  if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
    return -1;
  s->p += n;
  return 0;
}

static int scan_value(struct scan *s, int depth, int *type);

/* An object or array at s->p. For the outermost object, on (if set) gets
 * each member. */
static int scan_container(struct scan *s, int depth, jscan_member_fn on, void *ud,
                          int *stop) {
  int object = *s->p == '{';
  char close = object ? '}' : ']';
  if (depth >= JSCAN_MAX_DEPTH)
    return -1;
  s->p++;
  skip_ws(s);
  if (s->p < s->end && *s->p == close) {
    s->p++;
    return 0;
  }
  for (;;) {
    const char *key = NULL;
    size_t klen = 0;
    int kesc = 0;
    if (object) {
      if (s->p >= s->end || *s->p != '"')
        return -1;
      key = s->p;
      if (scan_string(s, &kesc) < 0)
        return -1;
      klen = (size_t)(s->p - key);
      skip_ws(s);
      if (s->p >= s->end || *s->p != ':')
        return -1;
      s->p++;
      skip_ws(s);
    }
    const char *val = s->p;
    int type;
    if (scan_value(s, depth + 1, &type) < 0)
      return -1;
    if (on && object) {
      int r = on(ud, key, klen, kesc, val, (size_t)(s->p - val), type);
      if (r) {
        *stop = r;
        return 0;
      }
    }
    skip_ws(s);
    if (s->p >= s->end)
      return -1;
    if (*s->p == close) {
      s->p++;
      return 0;
    }
    if (*s->p != ',')
      return -1;
    s->p++;
    skip_ws(s);
  }
}

static int scan_value(struct scan *s, int depth, int *type) {
  if (s->p >= s->end)
    return -1;
  int esc = 0, stop = 0;
  switch (*s->p) {
  case '{':
  case '[':
    *type = *s->p;
    return scan_container(s, depth, NULL, NULL, &stop);
  case '"':
    *type = JSCAN_STRING;
    return scan_string(s, &esc);
  case 't':
    *type = JSCAN_LITERAL;
    return scan_literal(s, "true", 4);
  case 'f':
    *type = JSCAN_LITERAL;
    return scan_literal(s, "false", 5);
  case 'n':
    *type = JSCAN_LITERAL;
    return scan_literal(s, "null", 4);
  default:
    *type = JSCAN_NUMBER;
    return scan_number(s);
  }
}

int jscan_object(const char *text, size_t len, jscan_member_fn on, void *ud,
                 size_t *where) {
  struct scan s = {.p = text, .end = text + len, .start = text};
  int stop = 0;
  skip_ws(&s);
  if (s.p >= s.end || *s.p != '{' || scan_container(&s, 0, on, ud, &stop) < 0)
    goto bad;
  if (stop)
    return stop;
  skip_ws(&s);
  if (s.p != s.end)
    goto bad;
  return 0;
bad:
  if (where)
    *where = (size_t)(s.p - s.start);
  return -1;
}

/* Appends code point cp as UTF-8 at out[*n] (room checked by the caller). */
static void put_utf8(char *out, size_t *n, unsigned cp) {
  if (cp < 0x80) {
    out[(*n)++] = (char)cp;
  } else if (cp < 0x800) {
    out[(*n)++] = (char)(0xC0 | (cp >> 6));
    out[(*n)++] = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out[(*n)++] = (char)(0xE0 | (cp >> 12));
    out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[(*n)++] = (char)(0x80 | (cp & 0x3F));
  } else {
    out[(*n)++] = (char)(0xF0 | (cp >> 18));
    out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[(*n)++] = (char)(0x80 | (cp & 0x3F));
  }
}

long jscan_string(const char *val, size_t vlen, char *out, size_t cap) {
  if (vlen < 2 || val[0] != '"' || val[vlen - 1] != '"' || cap == 0)
    return -1;
  const char *p = val + 1, *end = val + vlen - 1;
  size_t n = 0;
  while (p < end) {
    if (n + 4 >= cap)
      return -1;
    if (*p != '\\') {
      out[n++] = *p++;
      continue;
    }
    if (p + 1 >= end)
      return -1;
    char e = p[1];
    unsigned cp;
    switch (e) {
    case 'u':
      /* already validated by the scan; end excludes the closing quote */
      if (!(p = unicode_escape(p + 1, end, &cp)) || cp == 0)
        return -1;
      put_utf8(out, &n, cp);
      continue;
    case 'b':
      cp = '\b';
      break;
    case 'f':
      cp = '\f';
      break;
    case 'n':
      cp = '\n';
      break;
    case 'r':
      cp = '\r';
      break;
    case 't':
      cp = '\t';
      break;
    default:
      cp = (unsigned char)e; /* '"', '\\', '/' */
      break;
    }
    out[n++] = (char)cp;
    p += 2;
  }
  out[n] = 0;
  return (long)n;
}

int jscan_int(const char *val, size_t vlen, long long *out) {
  char buf[32];
  if (vlen == 0 || vlen >= sizeof buf)
    return -1;
  memcpy(buf, val, vlen);
  buf[vlen] = 0;
  for (size_t i = 0; i < vlen; i++)
    if (!(buf[i] == '-' || (buf[i] >= '0' && buf[i] <= '9')))
      return -1;
  errno = 0;
  char *endp;
  long long v = strtoll(buf, &endp, 10);
  if (errno || *endp || endp == buf)
    return -1;
  *out = v;
  return 0;
}

int jscan_key_is(const char *key, size_t klen, int key_escaped, const char *name) {
  size_t nlen = strlen(name);
  if (!key_escaped)
    return klen == nlen + 2 && memcmp(key + 1, name, nlen) == 0;
  char buf[64];
  long n = jscan_string(key, klen, buf, sizeof buf);
  return n == (long)nlen && memcmp(buf, name, nlen) == 0;
}
