/* SPDX-License-Identifier: MIT */
/*
 * test_codec: gzip frames round-trip through one reused codec, interoperate
 * with plain zlib in both directions, and every malformed frame (not gzip,
 * truncated, bad CRC, trailing bytes, empty) is refused without leaving
 * output behind or breaking the codec. A 100 MiB gzip bomb must stop at the
 * limit without the buffer growing past it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "codec.h"

#define MAX_OUT (4u << 20)

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 11);
}

/* Fills p with JSON-ish text (compressible) or random bytes. */
static void fill(unsigned char *p, size_t n, int random) {
  static const char words[] =
      "{\"message_id\":\"f3815c2a\",\"category\":\"PLAIN_TEXT\"} ";
  for (size_t i = 0; i < n; i++)
    p[i] = random ? (unsigned char)rnd()
                  : (unsigned char)words[(i + i / 97) % (sizeof words - 1)];
}

/* A gzip member made by zlib directly, as another client would. */
static int ref_gzip(const unsigned char *in, size_t n, struct buf *out) {
  z_stream s;
  memset(&s, 0, sizeof s);
  if (deflateInit2(&s, 3, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return -1;
  buf_reset(out);
  if (buf_reserve(out, deflateBound(&s, n)) < 0)
    return -1;
  s.next_in = (Bytef *)in;
  s.avail_in = (uInt)n;
  s.next_out = (Bytef *)out->data;
  s.avail_out = (uInt)(out->cap - 1);
  int rc = deflate(&s, Z_FINISH);
  out->len = s.total_out;
  deflateEnd(&s);
  return rc == Z_STREAM_END ? 0 : -1;
}

/* Inflates with a fresh zlib stream; -1 unless exactly one complete member. */
static int ref_gunzip(const unsigned char *in, size_t n, struct buf *out) {
  z_stream s;
  memset(&s, 0, sizeof s);
  if (inflateInit2(&s, 16 + MAX_WBITS) != Z_OK)
    return -1;
  buf_reset(out);
  s.next_in = (Bytef *)in;
  s.avail_in = (uInt)n;
  int rc;
  do {
    if (buf_reserve(out, 65536) < 0)
      break;
    s.next_out = (Bytef *)out->data + out->len;
    s.avail_out = (uInt)(out->cap - 1 - out->len);
    rc = inflate(&s, Z_NO_FLUSH);
    out->len = s.total_out;
  } while (rc == Z_OK);
  inflateEnd(&s);
  return rc == Z_STREAM_END && s.avail_in == 0 ? 0 : -1;
}

static void test_roundtrip(void) {
  static const size_t sizes[] = {0,    1,    2,     17,      100,     4095,
                                 4096, 4097, 65536, 1 << 20, 3 << 20, MAX_OUT};
  struct codec *c = codec_new(MAX_OUT, 3);
  CHECK(c != NULL);
  unsigned char *src = malloc(MAX_OUT);
  struct buf z = {0}, out = {0};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    for (int random = 0; random < 2; random++) {
      fill(src, sizes[i], random);
      buf_reset(&z);
      buf_reset(&out);
      CHECK_INT(codec_deflate(c, src, sizes[i], &z), CODEC_OK);
      CHECK(z.len >= 20);
      CHECK_INT(codec_inflate(c, z.data, z.len, &out), CODEC_OK);
      CHECK_INT(out.len, sizes[i]);
      CHECK(out.len == sizes[i] && memcmp(out.data, src, sizes[i]) == 0);
      CHECK_INT(out.data[out.len], 0);
    }
  }
  /* Appending: existing contents stay in front of the new output. */
  buf_reset(&out);
  buf_append(&out, "prefix:", 7);
  fill(src, 1000, 0);
  buf_reset(&z);
  CHECK_INT(codec_deflate(c, src, 1000, &z), CODEC_OK);
  CHECK_INT(codec_inflate(c, z.data, z.len, &out), CODEC_OK);
  CHECK_INT(out.len, 1007);
  CHECK(memcmp(out.data, "prefix:", 7) == 0 && memcmp(out.data + 7, src, 1000) == 0);
  /* Deflate appends too. */
  size_t zlen = z.len;
  CHECK_INT(codec_deflate(c, src, 1000, &z), CODEC_OK);
  CHECK_INT(z.len, 2 * zlen);
  CHECK(memcmp(z.data, z.data + zlen, zlen) == 0);

  /* Many frames through one codec, as on a long-lived connection. */
  int bad = 0;
  for (int f = 0; f < 2000; f++) {
    size_t n = rnd() % 20000;
    int random = (int)(rnd() & 1);
    fill(src, n, random);
    buf_reset(&z);
    buf_reset(&out);
    if (codec_deflate(c, src, n, &z) != CODEC_OK ||
        codec_inflate(c, z.data, z.len, &out) != CODEC_OK || out.len != n ||
        memcmp(out.data, src, n) != 0)
      bad++;
  }
  CHECK_INT(bad, 0);
  free(src);
  buf_fini(&z);
  buf_fini(&out);
  codec_free(c);
}

/* 1 when `gzip -dc` turns z into exactly want. */
static int gnu_gunzip_ok(const void *z, size_t zlen, const void *want, size_t n) {
  char path[] = "/tmp/blazebot-codec-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0)
    return 0;
  int ok = write(fd, z, zlen) == (ssize_t)zlen;
  close(fd);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "gzip -dc < %s", path);
  FILE *p = ok ? popen(cmd, "r") : NULL;
  unsigned char *got = malloc(n + 1);
  size_t have = p && got ? fread(got, 1, n + 1, p) : 0;
  ok = p && pclose(p) == 0 && have == n && (n == 0 || memcmp(got, want, n) == 0);
  free(got);
  unlink(path);
  return ok;
}

static void test_interop(void) {
  struct codec *c = codec_new(MAX_OUT, 3);
  unsigned char *src = malloc(300000);
  struct buf z = {0}, out = {0};
  static const size_t sizes[] = {0, 5, 1000, 1023, 1024, 1025, 300000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    fill(src, sizes[i], (int)(i & 1));
    /* zlib writes, the codec reads. */
    CHECK_INT(ref_gzip(src, sizes[i], &z), 0);
    buf_reset(&out);
    CHECK_INT(codec_inflate(c, z.data, z.len, &out), CODEC_OK);
    CHECK(out.len == sizes[i] && memcmp(out.data, src, sizes[i]) == 0);
    /* The codec writes, zlib reads. */
    buf_reset(&z);
    CHECK_INT(codec_deflate(c, src, sizes[i], &z), CODEC_OK);
    CHECK_INT(ref_gunzip((unsigned char *)z.data, z.len, &out), 0);
    CHECK(out.len == sizes[i] && memcmp(out.data, src, sizes[i]) == 0);
    /* A proper gzip header: magic, deflate method. */
    CHECK((unsigned char)z.data[0] == 0x1f && (unsigned char)z.data[1] == 0x8b &&
          z.data[2] == 8);
    /* Small frames are stored: 23 bytes of framing, the data as is. */
    if (sizes[i] <= CODEC_STORE_MAX) {
      CHECK_INT(z.len, sizes[i] + 23);
      CHECK(memcmp(z.data + 15, src, sizes[i]) == 0);
    } else {
      CHECK(z.len < sizes[i] + 23 || (i & 1));
    }
    /* GNU gzip, another implementation than zlib, reads it too. */
    CHECK(gnu_gunzip_ok(z.data, z.len, src, sizes[i]));
  }
  free(src);
  buf_fini(&z);
  buf_fini(&out);
  codec_free(c);
}

/* Inflating bad must fail with want, leave out untouched (prefix "keep") and
 * leave the codec usable. */
static void expect_fail(struct codec *c, const void *bad, size_t n, int want) {
  struct buf out = {0}, z = {0};
  buf_append(&out, "keep", 4);
  CHECK_INT(codec_inflate(c, bad, n, &out), want);
  CHECK_INT(out.len, 4);
  CHECK_STR(out.data, "keep");
  CHECK_INT(codec_deflate(c, "still works", 11, &z), CODEC_OK);
  buf_reset(&out);
  CHECK_INT(codec_inflate(c, z.data, z.len, &out), CODEC_OK);
  CHECK_STR(out.data, "still works");
  buf_fini(&out);
  buf_fini(&z);
}

static void test_malformed(void) {
  struct codec *c = codec_new(MAX_OUT, 3);
  struct buf z = {0}, tmp = {0};
  unsigned char src[5000];
  fill(src, sizeof src, 0);
  CHECK_INT(codec_deflate(c, src, sizeof src, &z), CODEC_OK);

  expect_fail(c, "", 0, CODEC_EFORMAT);
  expect_fail(c, "{\"id\":\"x\",\"action\":\"LIST_PENDING_MESSAGES\"}", 44,
              CODEC_EFORMAT);
  /* zlib (RFC 1950) and raw deflate are not gzip. */
  uLongf zl = compressBound(sizeof src);
  unsigned char *zlibbed = malloc(zl);
  CHECK_INT(compress(zlibbed, &zl, src, sizeof src), Z_OK);
  expect_fail(c, zlibbed, zl, CODEC_EFORMAT);
  expect_fail(c, zlibbed + 2, zl - 6, CODEC_EFORMAT);
  free(zlibbed);

  /* Every truncation, from the header to the last trailer byte. */
  int wrong = 0;
  for (size_t cut = 0; cut < z.len; cut++) {
    struct buf out = {0};
    if (codec_inflate(c, z.data, cut, &out) != CODEC_EFORMAT || out.len != 0)
      wrong++;
    buf_fini(&out);
  }
  CHECK_INT(wrong, 0);
  expect_fail(c, z.data, z.len - 1, CODEC_EFORMAT);

  /* CRC32 (first trailer word) and ISIZE (second) are both checked. */
  buf_reset(&tmp);
  buf_append(&tmp, z.data, z.len);
  tmp.data[tmp.len - 8] ^= 0x01;
  expect_fail(c, tmp.data, tmp.len, CODEC_EFORMAT);
  buf_reset(&tmp);
  buf_append(&tmp, z.data, z.len);
  tmp.data[tmp.len - 1] ^= 0x40;
  expect_fail(c, tmp.data, tmp.len, CODEC_EFORMAT);
  /* Corrupt compressed body. */
  buf_reset(&tmp);
  buf_append(&tmp, z.data, z.len);
  for (size_t i = 12; i < tmp.len - 8; i += 7)
    tmp.data[i] ^= 0x5a;
  expect_fail(c, tmp.data, tmp.len, CODEC_EFORMAT);
  /* Bad magic. */
  buf_reset(&tmp);
  buf_append(&tmp, z.data, z.len);
  tmp.data[1] = 0;
  expect_fail(c, tmp.data, tmp.len, CODEC_EFORMAT);

  /* Trailing garbage, and a second member, after a valid member. */
  buf_reset(&tmp);
  buf_append(&tmp, z.data, z.len);
  buf_append(&tmp, "x", 1);
  expect_fail(c, tmp.data, tmp.len, CODEC_EFORMAT);
  buf_reset(&tmp);
  buf_append(&tmp, z.data, z.len);
  buf_append(&tmp, z.data, z.len);
  expect_fail(c, tmp.data, tmp.len, CODEC_EFORMAT);

  /* The original is still fine after all of that. */
  struct buf out = {0};
  CHECK_INT(codec_inflate(c, z.data, z.len, &out), CODEC_OK);
  CHECK(out.len == sizeof src && memcmp(out.data, src, sizeof src) == 0);
  buf_fini(&out);
  buf_fini(&z);
  buf_fini(&tmp);
  codec_free(c);
}

/* Random corruption of a valid member never crashes, and a rejected frame
 * leaves no output; an accepted one is intact (only the unchecked header
 * fields MTIME, XFL and OS can change without failing the CRC). */
static void test_mutations(void) {
  struct codec *c = codec_new(1 << 20, 3);
  unsigned char src[3000];
  fill(src, sizeof src, 0);
  struct buf z = {0}, m = {0}, out = {0};
  CHECK_INT(codec_deflate(c, src, sizeof src, &z), CODEC_OK);
  int wrong = 0, ok = 0;
  for (int iter = 0; iter < 20000; iter++) {
    buf_reset(&m);
    buf_append(&m, z.data, z.len);
    int flips = 1 + (int)(rnd() % 3);
    for (int f = 0; f < flips; f++)
      m.data[rnd() % m.len] ^= (char)(1u << (rnd() % 8));
    size_t cut = rnd() % 4 == 0 ? rnd() % m.len : m.len;
    buf_reset(&out);
    int rc = codec_inflate(c, m.data, cut, &out);
    if (rc == CODEC_OK) {
      ok++;
      if (out.len != sizeof src || memcmp(out.data, src, sizeof src) != 0)
        wrong++;
    } else if ((rc != CODEC_EFORMAT && rc != CODEC_ETOOBIG) || out.len != 0) {
      wrong++;
    }
  }
  CHECK_INT(wrong, 0);
  printf("mutations: %d of 20000 corrupted members still inflated (header-only flips)\n",
         ok);
  buf_fini(&z);
  buf_fini(&m);
  buf_fini(&out);
  codec_free(c);
}

static void test_limit(void) {
  struct codec *c = codec_new(1000, 3);
  struct buf z = {0}, out = {0};
  unsigned char src[1001];
  fill(src, sizeof src, 1);
  /* Exactly the limit passes; one byte more does not. */
  CHECK_INT(codec_deflate(c, src, 1000, &z), CODEC_OK);
  CHECK_INT(codec_inflate(c, z.data, z.len, &out), CODEC_OK);
  CHECK_INT(out.len, 1000);
  buf_reset(&z);
  buf_reset(&out);
  CHECK_INT(codec_deflate(c, src, 1001, &z), CODEC_OK);
  CHECK_INT(codec_inflate(c, z.data, z.len, &out), CODEC_ETOOBIG);
  CHECK_INT(out.len, 0);
  codec_set_max(c, 1001);
  CHECK_INT(codec_inflate(c, z.data, z.len, &out), CODEC_OK);
  CHECK(out.len == 1001 && memcmp(out.data, src, 1001) == 0);
  /* A limit of 0 admits only empty payloads. */
  codec_set_max(c, 0);
  buf_reset(&out);
  CHECK_INT(codec_inflate(c, z.data, z.len, &out), CODEC_ETOOBIG);
  buf_reset(&z);
  CHECK_INT(codec_deflate(c, "", 0, &z), CODEC_OK);
  CHECK_INT(codec_inflate(c, z.data, z.len, &out), CODEC_OK);
  CHECK_INT(out.len, 0);
  buf_fini(&z);
  buf_fini(&out);
  codec_free(c);
}

/* 100 MiB of zeros, deflated by streaming a 64 KiB buffer, is about 100 KiB. */
static void test_bomb(void) {
  static unsigned char zeros[65536];
  struct buf z = {0};
  z_stream s;
  memset(&s, 0, sizeof s);
  CHECK_INT(deflateInit2(&s, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  size_t total = (size_t)100 << 20;
  int rc = Z_OK;
  for (size_t fed = 0; rc == Z_OK;) {
    if (s.avail_in == 0 && fed < total) {
      s.next_in = zeros;
      s.avail_in = sizeof zeros;
      fed += sizeof zeros;
    }
    buf_reserve(&z, 65536);
    s.next_out = (Bytef *)z.data + z.len;
    s.avail_out = (uInt)(z.cap - 1 - z.len);
    uInt before = s.avail_out;
    rc = deflate(&s, fed < total ? Z_NO_FLUSH : Z_FINISH);
    z.len += before - s.avail_out;
    if (rc == Z_BUF_ERROR)
      rc = Z_OK;
  }
  CHECK_INT(rc, Z_STREAM_END);
  deflateEnd(&s);
  CHECK(z.len < (1u << 20));

  struct codec *c = codec_new(MAX_OUT, 3);
  struct buf out = {0};
  int64_t t0 = (int64_t)clock();
  CHECK_INT(codec_inflate(c, z.data, z.len, &out), CODEC_ETOOBIG);
  double ms = (double)((int64_t)clock() - t0) * 1000.0 / CLOCKS_PER_SEC;
  CHECK_INT(out.len, 0);
  CHECK(out.cap < (8u << 20));
  printf("bomb: %zu-byte member refused after %.1f ms, buffer capacity %zu\n", z.len, ms,
         out.cap);
  /* The same bomb into a buffer that already holds data. */
  buf_fini(&out);
  buf_append(&out, "abc", 3);
  CHECK_INT(codec_inflate(c, z.data, z.len, &out), CODEC_ETOOBIG);
  CHECK_INT(out.len, 3);
  CHECK(out.cap < (8u << 20) + 3);
  buf_fini(&out);
  buf_fini(&z);
  codec_free(c);
}

/* Realistic frames: MessageView JSON with random ids and base64 payloads. */
static size_t make_frame(char *p, size_t cap, size_t payload) {
  static const char b64[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  char data[4096];
  size_t n = payload < sizeof data ? payload : sizeof data - 1;
  for (size_t i = 0; i < n; i++)
    data[i] = b64[rnd() % 64];
  data[n] = 0;
  int len = snprintf(
      p, cap,
      "{\"id\":\"%08x-1b2c-4d3e-8f40-%012x\",\"action\":\"CREATE_MESSAGE\","
      "\"data\":{\"type\":\"message\",\"representative_id\":\"\","
      "\"quote_message_id\":\"\",\"conversation_id\":\"%08x-aaaa-4bbb-8ccc-"
      "%012x\",\"user_id\":\"%08x-1111-4222-8333-%012x\",\"session_id\":\""
      "%08x-5555-4666-8777-%012x\",\"message_id\":\"%08x-9999-4aaa-8bbb-%012x\","
      "\"category\":\"PLAIN_TEXT\",\"data_base64\":\"%s\",\"status\":\"SENT\","
      "\"source\":\"CREATE_MESSAGE\",\"silent\":false,\"expire_in\":0,"
      "\"created_at\":\"2023-04-28T10:01:32.387507Z\","
      "\"updated_at\":\"2023-04-28T10:01:32.387507Z\"}}",
      rnd(), rnd(), rnd(), rnd(), rnd(), rnd(), rnd(), rnd(), rnd(), rnd(), data);
  return len < 0 ? 0 : (size_t)len;
}

static double seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Prints throughput; asserts only that the data survives. */
static void bench(void) {
  enum { NFRAMES = 2000 };
  struct codec *c = codec_new(MAX_OUT, 3);
  struct buf frames = {0}, z = {0}, out = {0};
  size_t *off = malloc((NFRAMES + 1) * sizeof *off),
         *zoff = malloc((NFRAMES + 1) * sizeof *zoff);
  char tmp[8192];
  for (int i = 0; i < NFRAMES; i++) {
    off[i] = frames.len;
    buf_append(&frames, tmp, make_frame(tmp, sizeof tmp, 50 + rnd() % 1500));
  }
  off[NFRAMES] = frames.len;
  double t0 = seconds();
  for (int i = 0; i < NFRAMES; i++) {
    zoff[i] = z.len;
    codec_deflate(c, frames.data + off[i], off[i + 1] - off[i], &z);
  }
  zoff[NFRAMES] = z.len;
  double t1 = seconds();
  int rounds = 10, bad = 0;
  for (int r = 0; r < rounds; r++) {
    for (int i = 0; i < NFRAMES; i++) {
      buf_reset(&out);
      if (codec_inflate(c, z.data + zoff[i], zoff[i + 1] - zoff[i], &out) != CODEC_OK ||
          out.len != off[i + 1] - off[i])
        bad++;
    }
  }
  double t2 = seconds();
  CHECK_INT(bad, 0);
  double mib = (double)frames.len / (1 << 20);
  printf(
      "bench: %d frames, %.0f B avg -> %.0f B gzip; deflate %.0f MiB/s (%.1f us/frame), "
      "inflate %.0f MiB/s (%.1f us/frame)\n",
      NFRAMES, (double)frames.len / NFRAMES, (double)z.len / NFRAMES, mib / (t1 - t0),
      (t1 - t0) * 1e6 / NFRAMES, mib * rounds / (t2 - t1),
      (t2 - t1) * 1e6 / (NFRAMES * rounds));

  /* One large, highly compressible frame. */
  size_t n = 1 << 20;
  unsigned char *src = malloc(n);
  fill(src, n, 0);
  buf_reset(&z);
  codec_deflate(c, src, n, &z);
  t0 = seconds();
  for (int i = 0; i < 20; i++) {
    buf_reset(&out);
    codec_inflate(c, z.data, z.len, &out);
  }
  t1 = seconds();
  CHECK(out.len == n && memcmp(out.data, src, n) == 0);
  printf("bench: 1 MiB repetitive JSON (%zu B gzip) inflates at %.0f MiB/s\n", z.len,
         20 / (t1 - t0));
  free(src);
  free(off);
  free(zoff);
  buf_fini(&frames);
  buf_fini(&z);
  buf_fini(&out);
  codec_free(c);
}

int main(void) {
  test_roundtrip();
  test_interop();
  test_malformed();
  test_mutations();
  test_limit();
  test_bomb();
  bench();
  CHECK(codec_strerror(CODEC_ETOOBIG)[0] != 0);
  return check_done("codec");
}
