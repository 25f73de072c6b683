/* SPDX-License-Identifier: MIT */
/*
 * base64: see base64.h. Decoding is one table lookup per character; the
 * table maps both alphabets (so '+' and '-' are both 62, '/' and '_' both 63)
 * and marks every other byte, '=' included, with 0xFF so four lookups ORed
 * together reveal a bad character with one test. Padding is checked up front:
 * when present it must complete the last quantum exactly. Non-zero bits in
 * the last character are ignored (RFC 4648 §3.5 lets decoders accept them),
 * as Go's default, non-strict decoders do.
 */
#include "base64.h"

#include <limits.h>
#include <stdint.h>

static const unsigned char dec[256] = {
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 62,  255, 62,  255, 63,
    52,  53,  54,  55,  56,  57,  58,  59,  60,  61,  255, 255, 255, 255, 255, 255,
    255, 0,   1,   2,   3,   4,   5,   6,   7,   8,   9,   10,  11,  12,  13,  14,
    15,  16,  17,  18,  19,  20,  21,  22,  23,  24,  25,  255, 255, 255, 255, 63,
    255, 26,  27,  28,  29,  30,  31,  32,  33,  34,  35,  36,  37,  38,  39,  40,
    41,  42,  43,  44,  45,  46,  47,  48,  49,  50,  51,  255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
};

static const char enc_std[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char enc_url[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t base64_encoded_len(size_t n, int url_nopad) {
  if (url_nopad)
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
  return (n + 2) / 3 * 4;
}

long base64_decode(const char *in, size_t len, unsigned char *out, size_t cap) {
  const unsigned char *s = (const unsigned char *)in;
  size_t n = len;

  /* Padding: only at the end, only to complete a 4-character quantum, at
   * most two. "A===" fails later because its third '=' is not in the table. */
  if (n > 0 && s[n - 1] == '=') {
    if (n % 4 != 0)
      return -1;
    n--;
    if (s[n - 1] == '=')
      n--;
  }
  size_t rem = n % 4;
  if (rem == 1)
    return -1; /* one character carries only 6 bits: never a whole byte */
  if (n != len && (n + (4 - rem)) != len)
    return -1; /* padding that does not complete the last quantum exactly */
  size_t outlen = n / 4 * 3 + (rem ? rem - 1 : 0);
  if (outlen > cap || outlen > (size_t)LONG_MAX)
    return -1;

  size_t full = n - rem;
  unsigned char *o = out;
  for (size_t i = 0; i < full; i += 4) {
    unsigned a = dec[s[i]], b = dec[s[i + 1]], c = dec[s[i + 2]], d = dec[s[i + 3]];
    if ((a | b | c | d) & 0x80)
      return -1;
    uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | d;
    o[0] = (unsigned char)(v >> 16);
    o[1] = (unsigned char)(v >> 8);
    o[2] = (unsigned char)v;
    o += 3;
  }
  if (rem) {
    unsigned a = dec[s[full]], b = dec[s[full + 1]];
    unsigned c = rem == 3 ? dec[s[full + 2]] : 0;
    if ((a | b | c) & 0x80)
      return -1;
    uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
    *o++ = (unsigned char)(v >> 16);
    if (rem == 3)
      *o++ = (unsigned char)(v >> 8);
  }
  return (long)outlen;
}

size_t base64_encode(const unsigned char *in, size_t n, int url_nopad, char *out) {
  const char *e = url_nopad ? enc_url : enc_std;
  char *o = out;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    o[0] = e[v >> 18];
    o[1] = e[(v >> 12) & 63];
    o[2] = e[(v >> 6) & 63];
    o[3] = e[v & 63];
    o += 4;
  }
  if (i < n) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)in[i + 1] << 8;
    *o++ = e[v >> 18];
    *o++ = e[(v >> 12) & 63];
    if (i + 1 < n)
      *o++ = e[(v >> 6) & 63];
    else if (!url_nopad)
      *o++ = '=';
    if (!url_nopad)
      *o++ = '=';
  }
  *o = 0;
  return (size_t)(o - out);
}
