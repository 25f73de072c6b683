/* SPDX-License-Identifier: MIT */
/*
 * test_base64: the RFC 4648 vectors in both alphabets, with and without
 * padding; everything that is not base64 (stray characters, whitespace,
 * misplaced or excess padding, impossible lengths) is refused; random binary
 * round-trips through both encodings; and a payload that needs '-' and '_'
 * decodes, as Blaze's data_base64 does.
 */
#include <stdint.h>
#include <string.h>

#include "base64.h"
#include "check.h"

static const struct {
  const char *plain, *std, *url;
} rfc[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

/* Decodes s (NUL-terminated) and returns the length, or -1. */
static long dec(const char *s, unsigned char *out, size_t cap) {
  return base64_decode(s, strlen(s), out, cap);
}

static void test_vectors(void) {
  unsigned char out[64];
  char enc[64];
  for (size_t i = 0; i < sizeof rfc / sizeof rfc[0]; i++) {
    size_t n = strlen(rfc[i].plain);
    CHECK_INT(base64_encoded_len(n, 0), strlen(rfc[i].std));
    CHECK_INT(base64_encoded_len(n, 1), strlen(rfc[i].url));
    CHECK_INT(base64_encode((const unsigned char *)rfc[i].plain, n, 0, enc),
              strlen(rfc[i].std));
    CHECK_STR(enc, rfc[i].std);
    CHECK_INT(base64_encode((const unsigned char *)rfc[i].plain, n, 1, enc),
              strlen(rfc[i].url));
    CHECK_STR(enc, rfc[i].url);
    /* Both spellings decode to the plain text. */
    memset(out, 0, sizeof out);
    CHECK_INT(dec(rfc[i].std, out, sizeof out), n);
    CHECK(memcmp(out, rfc[i].plain, n) == 0);
    memset(out, 0, sizeof out);
    CHECK_INT(dec(rfc[i].url, out, sizeof out), n);
    CHECK(memcmp(out, rfc[i].plain, n) == 0);
    CHECK(base64_decoded_max(strlen(rfc[i].std)) >= n);
    CHECK(base64_decoded_max(strlen(rfc[i].url)) >= n);
  }
  /* Non-zero bits after the last whole byte are ignored (RFC 4648 §3.5
   * permits it; Go's default decoders do the same). */
  CHECK_INT(dec("Zh==", out, sizeof out), 1);
  CHECK_INT(out[0], 'f');
  CHECK_INT(dec("Zm9=", out, sizeof out), 2);
  CHECK(memcmp(out, "fo", 2) == 0);
  /* The protocol.md sample payload. */
  CHECK_INT(dec("YWJj", out, sizeof out), 3);
  CHECK(memcmp(out, "abc", 3) == 0);
}

static void test_alphabets(void) {
  unsigned char out[16];
  /* 0xfb 0xff 0xbf needs both characters 62 and 63. */
  static const unsigned char raw[] = {0xfb, 0xff, 0xbf, 0xfe};
  char enc[16];
  base64_encode(raw, sizeof raw, 0, enc);
  CHECK_STR(enc, "+/+//g==");
  base64_encode(raw, sizeof raw, 1, enc);
  CHECK_STR(enc, "-_-__g");
  const char *forms[] = {"+/+//g==", "+/+//g", "-_-__g",
                         "-_-__g==", "-/+_/g", "+_-/_g=="};
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    memset(out, 0, sizeof out);
    CHECK_INT(dec(forms[i], out, sizeof out), 4);
    CHECK(memcmp(out, raw, 4) == 0);
  }
  /* A realistic url-encoded payload full of '-' and '_'. */
  unsigned char bin[300];
  for (int i = 0; i < 300; i++)
    bin[i] = (unsigned char)(0xf8 + i % 8);
  char url[512];
  size_t ul = base64_encode(bin, sizeof bin, 1, url);
  CHECK(strchr(url, '-') != NULL && strchr(url, '_') != NULL);
  unsigned char back[300];
  CHECK_INT(base64_decode(url, ul, back, sizeof back), 300);
  CHECK(memcmp(back, bin, 300) == 0);
}

static void test_invalid(void) {
  unsigned char out[64];
  static const char *bad[] = {
      "Z",          /* length % 4 == 1 */
      "Zm9vY",      /* ditto, after full quanta */
      "Zm9vY===",   /* three '=' */
      "Z===",       /* three '=' */
      "====",       /* padding only */
      "==",         /* padding only */
      "=",          /* padding only */
      "Zg=",        /* padding that does not complete the quantum */
      "Zg===",      /* too much padding */
      "Zm8==",      /* too much padding */
      "Zm9v=",      /* padding after a complete quantum */
      "Zm9v====",   /* a whole quantum of padding */
      "Zg==Zg==",   /* padding in the middle */
      "Z=g=",       /* '=' in the middle */
      "Zm=v",       /* '=' in the middle */
      "=Zm9",       /* '=' first */
      "Zm9v\n",     /* whitespace */
      "Zm9v YmFy",  /* whitespace */
      " Zm9v",      /* whitespace */
      "Zm9v\r\n",   /* whitespace */
      "Zm9v.mFy",   /* not in either alphabet */
      "Zm9v*mFy",   /* not in either alphabet */
      "Zm9vYmF!",   /* not in either alphabet */
      "Zm9vYm\"=",  /* not in either alphabet */
      "Zm9v\x80mFy" /* high byte */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    long r = dec(bad[i], out, sizeof out);
    if (r != -1)
      fprintf(stderr, "accepted invalid \"%s\"\n", bad[i]);
    CHECK_INT(r, -1);
  }
  /* An embedded NUL is a bad character, not an end of input. */
  CHECK_INT(base64_decode("Zm9v\0mFy", 8, out, sizeof out), -1);
  /* Every single byte value other than the 64+2 symbols fails in any
   * position of a quantum. */
  int wrong = 0;
  for (int c = 0; c < 256; c++) {
    int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '+' || c == '/' || c == '-' || c == '_';
    for (int pos = 0; pos < 4; pos++) {
      char q[4] = {'Q', 'U', 'J', 'D'};
      q[pos] = (char)c;
      long r = base64_decode(q, 4, out, sizeof out);
      if (c == '=' && pos >= 2)
        continue; /* valid padding shapes, checked elsewhere */
      if ((r == 3) != ok)
        wrong++;
    }
  }
  CHECK_INT(wrong, 0);
  /* Capacity is respected. */
  CHECK_INT(dec("Zm9vYmFy", out, 5), -1);
  CHECK_INT(dec("Zm9vYmFy", out, 6), 6);
  CHECK_INT(dec("", NULL, 0), 0);
}

static uint64_t rng = 88172645463325252ULL;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}

static void test_random(void) {
  unsigned char in[301], out[310];
  char enc[420];
  int wrong = 0;
  for (int round = 0; round < 4000; round++) {
    size_t n = rnd() % 301;
    for (size_t i = 0; i < n; i++)
      in[i] = (unsigned char)rnd();
    for (int url = 0; url < 2; url++) {
      size_t el = base64_encode(in, n, url, enc);
      if (el != base64_encoded_len(n, url) || strlen(enc) != el)
        wrong++;
      if (base64_decoded_max(el) < n)
        wrong++;
      long r = base64_decode(enc, el, out, sizeof out);
      if (r != (long)n || memcmp(out, in, n) != 0)
        wrong++;
      /* Exactly enough room works. */
      if (base64_decode(enc, el, out, n) != (long)n)
        wrong++;
      /* The other padding convention decodes too. */
      char alt[420];
      memcpy(alt, enc, el);
      size_t al = el;
      if (url) {
        while (al % 4)
          alt[al++] = '=';
      } else {
        while (al && alt[al - 1] == '=')
          al--;
      }
      if (base64_decode(alt, al, out, sizeof out) != (long)n || memcmp(out, in, n) != 0)
        wrong++;
    }
  }
  CHECK_INT(wrong, 0);
}

int main(void) {
  test_vectors();
  test_alphabets();
  test_invalid();
  test_random();
  return check_done("base64");
}
