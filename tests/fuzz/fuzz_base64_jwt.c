/* SPDX-License-Identifier: MIT */
/*
 * fuzz_base64_jwt: core/base64.c and the JWT code of core/auth.c, with the
 * pure helpers of core/util.c they rest on. The first input byte picks a
 * mode, the rest is its input:
 *   0  base64_decode (either alphabet, padding optional); what decodes must
 *      decode the same into a block of exactly its size, fail into one byte
 *      less, and survive an encode -> decode round trip in both alphabets;
 *      any bytes round-trip through both encodings too.
 *   1  auth_verify of the input as a token, with a fixed Ed25519 key and an
 *      RSA key; hex_decode -> hex_encode and the UUID helpers on it.
 *   2  "HEADER\nPAYLOAD" signed by auth_sign_raw with either key, then
 *      verified: a token the code just signed is never refused for its
 *      signature or its encoding, and its claims are NUL-terminated.
 *   3  "METHOD\nURI\nJTI\nBODY" through auth_sign (a keystore of either
 *      key, ttl from the mode byte): it signs exactly when the jti is
 *      plain, and the token verifies to the keystore's ids, the jti, the
 *      request's sig and exp = iat + ttl.
 * The RSA key is generated at start (1024 bits, for speed); the Ed25519 key
 * is fixed.
 */
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <string.h>

#include "auth.h"
#include "base64.h"
#include "fuzz.h"
#include "keystore.h"
#include "util.h"

static struct keystore ed_ks, rsa_ks;
static EVP_PKEY *ed_pub, *rsa_pub;

static void cleanup(void) {
  EVP_PKEY_free(ed_ks.pkey);
  EVP_PKEY_free(rsa_ks.pkey);
  EVP_PKEY_free(ed_pub);
  EVP_PKEY_free(rsa_pub);
}

static void init(void) {
  unsigned char seed[32];
  for (int i = 0; i < 32; i++)
    seed[i] = (unsigned char)(i * 7 + 1);
  ed_ks = (struct keystore){.alg = KEYSTORE_ED25519,
                            .generation = 'C',
                            .user_id = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f1",
                            .session_id = "11223344-5566-4778-8899-aabbccddeeff"};
  ed_ks.pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
  rsa_ks = (struct keystore){.alg = KEYSTORE_RSA,
                             .generation = 'A',
                             .user_id = "22334455-6677-4889-9aab-bccddeeff001",
                             .session_id = "33445566-7788-499a-abbc-cddeeff00112"};
  rsa_ks.pkey = EVP_RSA_gen(1024);
  FUZZ_ASSERT(ed_ks.pkey && rsa_ks.pkey);
  ed_pub = keystore_public_key(&ed_ks);
  rsa_pub = keystore_public_key(&rsa_ks);
  FUZZ_ASSERT(ed_pub && rsa_pub);
  atexit(cleanup);
}

/* ---- 0: base64 ---- */

static void round_trip(const unsigned char *in, size_t n) {
  for (int url = 0; url < 2; url++) {
    size_t elen = base64_encoded_len(n, url);
    char *enc = malloc(elen + 1);
    FUZZ_ASSERT(enc != NULL);
    FUZZ_ASSERT(base64_encode(in, n, url, enc) == elen && enc[elen] == 0);
    FUZZ_ASSERT(strlen(enc) == elen);
    unsigned char *dec = malloc(n ? n : 1);
    FUZZ_ASSERT(dec != NULL);
    FUZZ_ASSERT(base64_decode(enc, elen, dec, n) == (long)n);
    FUZZ_ASSERT(n == 0 || memcmp(dec, in, n) == 0);
    free(dec);
    free(enc);
  }
}

static void mode_base64(const char *in, size_t n) {
  size_t cap = base64_decoded_max(n);
  unsigned char *out = malloc(cap);
  FUZZ_ASSERT(out != NULL);
  long got = base64_decode(in, n, out, cap);
  if (got >= 0) {
    FUZZ_ASSERT((size_t)got <= cap && (size_t)got <= n / 4 * 3 + 2);
    unsigned char *exact = malloc(got ? (size_t)got : 1);
    FUZZ_ASSERT(exact != NULL);
    FUZZ_ASSERT(base64_decode(in, n, exact, (size_t)got) == got);
    FUZZ_ASSERT(got == 0 || memcmp(exact, out, (size_t)got) == 0);
    if (got > 0)
      FUZZ_ASSERT(base64_decode(in, n, exact, (size_t)got - 1) == -1);
    free(exact);
    round_trip(out, (size_t)got);
  }
  free(out);
  round_trip((const unsigned char *)in, n);
}

/* ---- 1: a token as received, hex and UUIDs ---- */

static void check_claims(const struct auth_claims *c) {
  FUZZ_ASSERT(memchr(c->uid, 0, sizeof c->uid) && memchr(c->sid, 0, sizeof c->sid));
  FUZZ_ASSERT(memchr(c->jti, 0, sizeof c->jti) && memchr(c->sig, 0, sizeof c->sig));
  FUZZ_ASSERT(memchr(c->scp, 0, sizeof c->scp) && memchr(c->alg, 0, sizeof c->alg));
}

static void mode_token(const char *tok, size_t n) {
  struct auth_claims c;
  char err[256];
  EVP_PKEY *keys[] = {ed_pub, rsa_pub};
  for (int k = 0; k < 2; k++) {
    if (auth_verify(keys[k], tok, &c, err, sizeof err) == 0)
      check_claims(&c);
    else
      FUZZ_ASSERT(err[0]);
  }

  unsigned char *bytes = malloc(n / 2 + 1);
  char *hex = malloc(n + 1);
  FUZZ_ASSERT(bytes && hex);
  int got = hex_decode(tok, n, bytes, n / 2 + 1);
  if (got >= 0) {
    FUZZ_ASSERT((size_t)got * 2 == n);
    hex_encode(bytes, (size_t)got, hex);
    for (size_t i = 0; i < n; i++)
      FUZZ_ASSERT(hex[i] == (tok[i] >= 'A' && tok[i] <= 'F' ? tok[i] + 32 : tok[i]));
  }
  free(bytes);
  free(hex);

  char a[UUID_STR_LEN], b[UUID_STR_LEN];
  if (uuid_valid(tok)) {
    FUZZ_ASSERT(strlen(tok) == 36);
    FUZZ_ASSERT(uuid_derive(tok, "fuzz", 7, a) == 0 && uuid_valid(a));
    FUZZ_ASSERT(uuid_unique_conversation(tok, ed_ks.user_id, a) == 0);
    FUZZ_ASSERT(uuid_unique_conversation(ed_ks.user_id, tok, b) == 0);
    FUZZ_ASSERT(strcmp(a, b) == 0 && uuid_valid(a));
  } else {
    FUZZ_ASSERT(uuid_derive(tok, "fuzz", 7, a) == -1);
    FUZZ_ASSERT(uuid_unique_conversation(tok, ed_ks.user_id, a) == -1);
  }
}

/* ---- 2: sign what the input says, verify it ---- */

static void mode_sign_raw(char *in, int rsa) {
  char *nl = strchr(in, '\n');
  const char *payload = "";
  if (nl) {
    *nl = 0;
    payload = nl + 1;
  }
  const struct keystore *ks = rsa ? &rsa_ks : &ed_ks;
  char *tok = NULL;
  FUZZ_ASSERT(auth_sign_raw(ks->pkey, ks->alg, in, payload, &tok) == 0);
  struct auth_claims c;
  char err[256];
  if (auth_verify(rsa ? rsa_pub : ed_pub, tok, &c, err, sizeof err) == 0) {
    check_claims(&c);
    FUZZ_ASSERT(strcmp(c.alg, rsa ? "RS512" : "EdDSA") == 0);
  } else {
    FUZZ_ASSERT(strcmp(err, "bad token signature") != 0);
    FUZZ_ASSERT(strcmp(err, "token part is not unpadded base64url") != 0);
    FUZZ_ASSERT(strcmp(err, "token is not three dot-separated parts") != 0);
  }
  free(tok);
}

/* ---- 3: auth_sign of a request ---- */

static int plain_jti(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= 64)
    return 0;
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f || *s == '"' || *s == '\\')
      return 0;
  return 1;
}

static void mode_sign(char *in, size_t n, int rsa, int64_t ttl) {
  const char *part[3] = {"", "", ""};
  char *p = in;
  for (int i = 0; i < 3; i++) {
    char *nl = memchr(p, '\n', n - (size_t)(p - in));
    part[i] = p;
    if (!nl) {
      p = in + n;
      break;
    }
    *nl = 0;
    p = nl + 1;
  }
  const char *body = p;
  size_t blen = n - (size_t)(p - in);
  const struct keystore *ks = rsa ? &rsa_ks : &ed_ks;
  char *tok = NULL;
  int rc = auth_sign(ks, part[0], part[1], body, blen, ttl, part[2], &tok);
  FUZZ_ASSERT((rc == 0) == plain_jti(part[2]));
  if (rc < 0)
    return;
  struct auth_claims c;
  char err[256], sig[65];
  FUZZ_ASSERT(auth_verify(rsa ? rsa_pub : ed_pub, tok, &c, err, sizeof err) == 0);
  auth_request_sig(part[0], part[1], body, blen, sig);
  FUZZ_ASSERT(strlen(sig) == 64 && strspn(sig, "0123456789abcdef") == 64);
  FUZZ_ASSERT(strcmp(c.sig, sig) == 0 && strcmp(c.jti, part[2]) == 0);
  FUZZ_ASSERT(strcmp(c.uid, ks->user_id) == 0 && strcmp(c.sid, ks->session_id) == 0);
  FUZZ_ASSERT(strcmp(c.scp, "FULL") == 0 && c.exp - c.iat == ttl);
  free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ed_pub)
    init();
  if (size == 0)
    return 0;
  int mode = data[0] & 3, rsa = data[0] >> 7;
  char *in = fuzz_strndup(data + 1, size - 1);
  size_t n = size - 1;
  switch (mode) {
  case 0:
    mode_base64(in, n);
    break;
  case 1:
    mode_token(in, strlen(in));
    break;
  case 2:
    mode_sign_raw(in, rsa);
    break;
  default:
    mode_sign(in, n, rsa, 1 + (data[0] >> 2 & 31) * 60);
    break;
  }
  free(in);
  return 0;
}
