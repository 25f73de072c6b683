/* SPDX-License-Identifier: MIT */
/* util: see util.h. Randomness comes from OpenSSL's RAND_bytes. */
#include "util.h"

#include <ctype.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t wall_s(void) {
  return (int64_t)time(NULL);
}

static void format_uuid(const unsigned char b[16], char out[UUID_STR_LEN]) {
  static const char hx[] = "0123456789abcdef";
  size_t o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out[o++] = '-';
    out[o++] = hx[b[i] >> 4];
    out[o++] = hx[b[i] & 15];
  }
  out[o] = 0;
}

int uuid_v4(char out[UUID_STR_LEN]) {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1)
    return -1;
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  format_uuid(b, out);
  return 0;
}

int uuid_series_init(struct uuid_series *s) {
  s->n = 0;
  return RAND_bytes(s->base, sizeof s->base) == 1 ? 0 : -1;
}

void uuid_series_next(struct uuid_series *s, char out[UUID_STR_LEN]) {
  unsigned char b[16];
  memcpy(b, s->base, sizeof b);
  uint64_t n = ++s->n;
  for (int i = 0; i < 8; i++)
    b[8 + i] ^= (unsigned char)(n >> (8 * (7 - i)));
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  format_uuid(b, out);
}

int uuid_valid(const char *s) {
  if (!s)
    return 0;
  for (int i = 0; i < 36; i++) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-')
        return 0;
    } else if (!isxdigit((unsigned char)c)) {
      return 0;
    }
  }
  return s[36] == 0;
}

int uuid_unique_conversation(const char *a, const char *b, char out[UUID_STR_LEN]) {
  if (!uuid_valid(a) || !uuid_valid(b))
    return -1;
  char la[UUID_STR_LEN], lb[UUID_STR_LEN];
  for (int i = 0; i < UUID_STR_LEN; i++) {
    la[i] = (char)tolower((unsigned char)a[i]);
    lb[i] = (char)tolower((unsigned char)b[i]);
  }
  const char *lo = la, *hi = lb;
  if (strcmp(la, lb) > 0) {
    lo = lb;
    hi = la;
  }
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int dl = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx)
    return -1;
  int ok = EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
           EVP_DigestUpdate(ctx, lo, 36) == 1 && EVP_DigestUpdate(ctx, hi, 36) == 1 &&
           EVP_DigestFinal_ex(ctx, d, &dl) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok || dl != 16)
    return -1;
  d[6] = (unsigned char)((d[6] & 0x0f) | 0x30);
  d[8] = (unsigned char)((d[8] & 0x3f) | 0x80);
  format_uuid(d, out);
  return 0;
}

/* SHA-1 fetched once: an implicit fetch on every digest (EVP_sha1() in
 * EVP_DigestInit_ex) takes OpenSSL's provider locks each time. Kept for
 * the process's life. */
static EVP_MD *sha1;
static pthread_once_t sha1_once = PTHREAD_ONCE_INIT;
static void sha1_fetch(void) {
  sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
}

int uuid_derive(const char *parent_id, const char *label, uint32_t ordinal,
                char out[UUID_STR_LEN]) {
  if (!parent_id || !uuid_valid(parent_id) || !label || !*label)
    return -1;
  unsigned char ns[16];
  static const char nstext[] = UUID_REPLY_NAMESPACE;
  for (int i = 0, o = 0; i < 36; i++) {
    if (nstext[i] == '-')
      continue;
    if (hex_decode(&nstext[i], 2, &ns[o++], 1) != 1)
      return -1;
    i++;
  }
  char name[UUID_STR_LEN + 1];
  for (int i = 0; i < 36; i++)
    name[i] = (char)tolower((unsigned char)parent_id[i]);
  name[36] = '/';
  char tail[24];
  int tl = snprintf(tail, sizeof tail, "/%u", (unsigned)ordinal);
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int dl = 0;
  pthread_once(&sha1_once, sha1_fetch);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx)
    return -1;
  int ok = EVP_DigestInit_ex(ctx, sha1 ? sha1 : EVP_sha1(), NULL) == 1 &&
           EVP_DigestUpdate(ctx, ns, sizeof ns) == 1 &&
           EVP_DigestUpdate(ctx, name, 37) == 1 &&
           EVP_DigestUpdate(ctx, label, strlen(label)) == 1 &&
           EVP_DigestUpdate(ctx, tail, (size_t)tl) == 1 &&
           EVP_DigestFinal_ex(ctx, d, &dl) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok || dl < 16)
    return -1;
  d[6] = (unsigned char)((d[6] & 0x0f) | 0x50);
  d[8] = (unsigned char)((d[8] & 0x3f) | 0x80);
  format_uuid(d, out);
  return 0;
}

void hex_encode(const unsigned char *in, size_t n, char *out) {
  static const char hx[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hx[in[i] >> 4];
    out[2 * i + 1] = hx[in[i] & 15];
  }
  out[2 * n] = 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int hex_decode(const char *in, size_t inlen, unsigned char *out, size_t outcap) {
  if (inlen % 2 || inlen / 2 > outcap)
    return -1;
  for (size_t i = 0; i < inlen / 2; i++) {
    int h = hexval(in[2 * i]), l = hexval(in[2 * i + 1]);
    if (h < 0 || l < 0)
      return -1;
    out[i] = (unsigned char)(h << 4 | l);
  }
  return (int)(inlen / 2);
}

uint32_t rand_below(uint32_t n) {
  uint32_t r = 0;
  if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
    r = (uint32_t)now_ms() * 2654435761u;
  return n ? r % n : 0;
}

int error_set(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* 1 when the n bytes at s are well-formed UTF-8 (no overlongs, no
 * surrogates, nothing above U+10FFFF), as names and values end up in JSON
 * logs, metrics labels and plugins' strings. */
int utf8_valid(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    size_t len;
    unsigned min;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, min = 0x80, c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, min = 0x800, c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, min = 0x10000, c &= 0x07;
    } else {
      return 0;
    }
    if (n - i < len)
      return 0;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80)
        return 0;
      c = (c << 6) | (s[i + k] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
      return 0;
    i += len;
  }
  return 1;
}
