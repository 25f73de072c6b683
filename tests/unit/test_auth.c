/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of auth: the Ed25519 test vector of protocol.md §1.3 byte for
 * byte, tokens from a keystore verified back with their claims, RS512 tokens
 * checked by auth_verify and independently by raw OpenSSL, and the refusals
 * (tampered payload, wrong key, alg that does not match the key).
 */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "base64.h"
#include "check.h"
#include "keystore.h"
#include "util.h"

static const char vec_header[] = "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}";
static const char vec_payload[] =
    "{\"uid\":\"6a8f6e6f-2c5d-4b0f-9c6e-0c0b2d7f3a11\",\"sid\":\"e8e5b807-fa8b-455a-8dfa-"
    "b189d28310ff\",\"iat\":1795833891,\"exp\":1795837491,\"jti\":\"11111111-1111-4111-"
    "8111-"
    "111111111111\",\"sig\":"
    "\"f837ebeb4c2981ad9c64b70d0b0d18724c76c60781b9e4bf7a582510df7ada39"
    "\",\"scp\":\"FULL\"}";
static const char vec_sig[] =
    "RTssRgXcd0euejbR6oFnMTJxFbd-T2nW2a84CAF7ObdL9YcCdZ6bDBAl1vciClSqVd9rL2u4vzW-"
    "6ewyVmAODw";
static const char vec_pub[] =
    "4cb5abf6ad79fbf5abbccafcc269d85cd2651ed4b885b5869f241aedf0a5ba29";
static const char blaze_sig[] =
    "f837ebeb4c2981ad9c64b70d0b0d18724c76c60781b9e4bf7a582510df7ada39";

static EVP_PKEY *vector_key(void) {
  unsigned char seed[32] = {0};
  seed[31] = 1;
  return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
}

static char *b64url(const char *s) {
  size_t n = strlen(s);
  char *out = malloc(base64_encoded_len(n, 1) + 1);
  base64_encode((const unsigned char *)s, n, 1, out);
  return out;
}

/* Replaces the payload part of token with b64url(payload), keeping the
 * header and signature. */
static char *swap_payload(const char *token, const char *payload) {
  const char *d1 = strchr(token, '.'), *d2 = strrchr(token, '.');
  char *p = b64url(payload);
  size_t n = (size_t)(d1 - token) + 1 + strlen(p) + strlen(d2) + 1;
  char *out = malloc(n);
  snprintf(out, n, "%.*s.%s%s", (int)(d1 - token), token, p, d2);
  free(p);
  return out;
}

static void test_vector(void) {
  EVP_PKEY *key = vector_key();
  CHECK(key != NULL);
  unsigned char pub[32];
  size_t n = sizeof pub;
  char hex[65];
  CHECK(EVP_PKEY_get_raw_public_key(key, pub, &n) == 1 && n == 32);
  hex_encode(pub, 32, hex);
  CHECK_STR(hex, vec_pub);

  char *tok = NULL;
  CHECK_INT(auth_sign_raw(key, KEYSTORE_ED25519, vec_header, vec_payload, &tok), 0);
  char *h = b64url(vec_header), *p = b64url(vec_payload);
  char want[1024];
  snprintf(want, sizeof want, "%s.%s.%s", h, p, vec_sig);
  CHECK_STR(tok, want);

  struct auth_claims c;
  char err[256];
  CHECK_INT(auth_verify(key, tok, &c, err, sizeof err), 0);
  CHECK_STR(c.uid, "6a8f6e6f-2c5d-4b0f-9c6e-0c0b2d7f3a11");
  CHECK_STR(c.sid, "e8e5b807-fa8b-455a-8dfa-b189d28310ff");
  CHECK_STR(c.jti, "11111111-1111-4111-8111-111111111111");
  CHECK_STR(c.sig, blaze_sig);
  CHECK_STR(c.scp, "FULL");
  CHECK_STR(c.alg, "EdDSA");
  CHECK_INT(c.iat, 1795833891);
  CHECK_INT(c.exp, 1795837491);

  /* The wrong alg for the key is refused before signing. */
  char *bad = NULL;
  CHECK_INT(auth_sign_raw(key, KEYSTORE_RSA, vec_header, vec_payload, &bad), -1);
  CHECK(bad == NULL);

  free(h);
  free(p);
  free(tok);
  EVP_PKEY_free(key);
}

static void test_request_sig(void) {
  char s[65];
  auth_request_sig("GET", "/", "", 0, s);
  CHECK_STR(s, blaze_sig);
  auth_request_sig("GET", "/", NULL, 0, s);
  CHECK_STR(s, blaze_sig);

  /* Independently: sha256 of the concatenation. */
  const char *body = "{\"a\":1}";
  char want[65];
  unsigned char d[32];
  unsigned int dl = 0;
  const char all[] = "POST/messages?x=1{\"a\":1}";
  CHECK(EVP_Digest(all, strlen(all), d, &dl, EVP_sha256(), NULL) == 1 && dl == 32);
  hex_encode(d, 32, want);
  auth_request_sig("POST", "/messages?x=1", body, strlen(body), s);
  CHECK_STR(s, want);
}

static void test_keystore_tokens(void) {
  struct keystore ks = {.alg = KEYSTORE_ED25519, .generation = 'C'};
  snprintf(ks.user_id, sizeof ks.user_id, "6a8f6e6f-2c5d-4b0f-9c6e-0c0b2d7f3a11");
  snprintf(ks.session_id, sizeof ks.session_id, "e8e5b807-fa8b-455a-8dfa-b189d28310ff");
  ks.pkey = vector_key();
  EVP_PKEY *pub = keystore_public_key(&ks);
  CHECK(pub != NULL);

  char *t1 = NULL, *t2 = NULL;
  int64_t before = wall_s();
  CHECK_INT(auth_sign(&ks, "GET", "/", "", 0, 600, NULL, &t1), 0);
  CHECK_INT(auth_sign(&ks, "GET", "/", NULL, 0, 600, NULL, &t2), 0);
  int64_t after = wall_s();
  CHECK(t1 && t2 && strcmp(t1, t2) != 0);

  /* Exact header bytes. */
  char *h = b64url("{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}");
  CHECK(t1 && strncmp(t1, h, strlen(h)) == 0 && t1[strlen(h)] == '.');
  free(h);

  struct auth_claims c1, c2;
  char err[256] = "";
  CHECK_INT(auth_verify(pub, t1, &c1, err, sizeof err), 0);
  CHECK_INT(auth_verify(pub, t2, &c2, err, sizeof err), 0);
  CHECK_STR(c1.uid, ks.user_id);
  CHECK_STR(c1.sid, ks.session_id);
  CHECK_STR(c1.sig, blaze_sig);
  CHECK_STR(c1.scp, "FULL");
  CHECK_STR(c1.alg, "EdDSA");
  CHECK(uuid_valid(c1.jti) && uuid_valid(c2.jti));
  CHECK(strcmp(c1.jti, c2.jti) != 0);
  CHECK(c1.iat >= before && c1.iat <= after);
  CHECK_INT(c1.exp - c1.iat, 600);

  /* The payload bytes: claim order and no spaces, as the SDKs emit. */
  const char *d1 = strchr(t1, '.'), *d2 = strrchr(t1, '.');
  unsigned char pay[512];
  long pl = base64_decode(d1 + 1, (size_t)(d2 - d1 - 1), pay, sizeof pay - 1);
  CHECK(pl > 0);
  pay[pl > 0 ? pl : 0] = 0;
  char want[512];
  snprintf(want, sizeof want,
           "{\"uid\":\"%s\",\"sid\":\"%s\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"%s\","
           "\"sig\":\"%s\","
           "\"scp\":\"FULL\"}",
           ks.user_id, ks.session_id, (long long)c1.iat, (long long)c1.exp, c1.jti,
           blaze_sig);
  CHECK_STR((char *)pay, want);

  /* A given jti is used as is; a JSON-breaking one is refused. */
  char *t3 = NULL;
  struct auth_claims c3;
  CHECK_INT(auth_sign(&ks, "POST", "/acknowledgements", "[]", 2, 60,
                      "22222222-2222-4222-8222-222222222222", &t3),
            0);
  CHECK_INT(auth_verify(pub, t3, &c3, err, sizeof err), 0);
  CHECK_STR(c3.jti, "22222222-2222-4222-8222-222222222222");
  char *t4 = NULL;
  CHECK_INT(auth_sign(&ks, "GET", "/", "", 0, 60, "a\"b", &t4), -1);
  CHECK(t4 == NULL);
  CHECK_INT(auth_sign(&ks, "GET", "/", "", 0, 0, NULL, &t4), -1);

  /* Tampering with the payload breaks the signature. */
  char *forged = swap_payload(t1, "{\"uid\":\"x\",\"scp\":\"FULL\"}");
  CHECK_INT(auth_verify(pub, forged, &c3, err, sizeof err), -1);
  CHECK(strstr(err, "signature") != NULL);
  free(forged);

  /* So does flipping one signature character. */
  char *flip = strdup(t1);
  char *last = flip + strlen(flip) - 3;
  *last = *last == 'A' ? 'B' : 'A';
  CHECK_INT(auth_verify(pub, flip, NULL, err, sizeof err), -1);
  free(flip);

  /* Another key does not verify it. */
  EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  CHECK_INT(auth_verify(other, t1, &c3, err, sizeof err), -1);
  EVP_PKEY_free(other);

  /* Malformed tokens. */
  CHECK_INT(auth_verify(pub, "abc", &c3, err, sizeof err), -1);
  CHECK_INT(auth_verify(pub, "a.b.c.d", &c3, err, sizeof err), -1);
  CHECK_INT(auth_verify(pub, "", &c3, err, sizeof err), -1);
  char *padded = malloc(strlen(t1) + 2);
  snprintf(padded, strlen(t1) + 2, "%s=", t1);
  CHECK_INT(auth_verify(pub, padded, &c3, err, sizeof err), -1);
  free(padded);

  free(t1);
  free(t2);
  free(t3);
  EVP_PKEY_free(pub);
  EVP_PKEY_free(ks.pkey);
}

/* Checks token's RS512 signature with nothing but OpenSSL. */
static int raw_rs512_verify(EVP_PKEY *pub, const char *token) {
  const char *d2 = strrchr(token, '.');
  unsigned char sig[1024];
  long sl = base64_decode(d2 + 1, strlen(d2 + 1), sig, sizeof sig);
  if (sl <= 0)
    return 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha512(), NULL, pub) == 1 &&
           EVP_DigestVerify(ctx, sig, (size_t)sl, (const unsigned char *)token,
                            (size_t)(d2 - token)) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

static void test_rs512(void) {
  struct keystore ks = {.alg = KEYSTORE_RSA, .generation = 'A'};
  snprintf(ks.user_id, sizeof ks.user_id, "0b4f49dc-8fb2-4539-9a89-fb3c4b2c5a3e");
  snprintf(ks.session_id, sizeof ks.session_id, "6c3c9a3b-55b1-4c9c-8f4a-4f0a0c3b5e11");
  ks.pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
  CHECK(ks.pkey != NULL);
  EVP_PKEY *pub = keystore_public_key(&ks);
  CHECK(pub != NULL);

  char *tok = NULL;
  CHECK_INT(auth_sign(&ks, "GET", "/", "", 0, 3600, NULL, &tok), 0);
  char *h = b64url("{\"alg\":\"RS512\",\"typ\":\"JWT\"}");
  CHECK(tok && strncmp(tok, h, strlen(h)) == 0);
  free(h);
  /* 2048-bit signature: 256 bytes, 342 base64url characters. */
  CHECK_INT(strlen(strrchr(tok, '.') + 1), 342);

  struct auth_claims c;
  char err[256] = "";
  CHECK_INT(auth_verify(pub, tok, &c, err, sizeof err), 0);
  CHECK_STR(c.alg, "RS512");
  CHECK_STR(c.uid, ks.user_id);
  CHECK_STR(c.sig, blaze_sig);
  CHECK(raw_rs512_verify(pub, tok));

  char *forged = swap_payload(tok, "{\"uid\":\"0b4f49dc-8fb2-4539-9a89-fb3c4b2c5a3e\"}");
  CHECK_INT(auth_verify(pub, forged, &c, err, sizeof err), -1);
  CHECK(!raw_rs512_verify(pub, forged));
  free(forged);

  EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
  CHECK_INT(auth_verify(other, tok, &c, err, sizeof err), -1);
  EVP_PKEY_free(other);

  /* alg mismatch both ways: an RS512 token against an Ed25519 key, and an
   * EdDSA token against the RSA key. */
  EVP_PKEY *ed = vector_key();
  CHECK_INT(auth_verify(ed, tok, &c, err, sizeof err), -1);
  CHECK(strstr(err, "does not match") != NULL);
  char *edtok = NULL;
  CHECK_INT(auth_sign_raw(ed, KEYSTORE_ED25519, vec_header, vec_payload, &edtok), 0);
  CHECK_INT(auth_verify(pub, edtok, &c, err, sizeof err), -1);
  CHECK(strstr(err, "does not match") != NULL);
  /* A token claiming RS512 but carrying an Ed25519 signature. */
  char *lie = NULL;
  CHECK_INT(auth_sign_raw(ed, KEYSTORE_ED25519, "{\"alg\":\"RS512\",\"typ\":\"JWT\"}",
                          vec_payload, &lie),
            0);
  CHECK_INT(auth_verify(pub, lie, &c, err, sizeof err), -1);
  CHECK_INT(auth_verify(ed, lie, &c, err, sizeof err), -1);
  /* alg "none" is never accepted. */
  char *none = NULL;
  CHECK_INT(auth_sign_raw(ed, KEYSTORE_ED25519, "{\"alg\":\"none\"}", vec_payload, &none),
            0);
  CHECK_INT(auth_verify(ed, none, &c, err, sizeof err), -1);

  free(none);
  free(lie);
  free(edtok);
  EVP_PKEY_free(ed);
  free(tok);
  EVP_PKEY_free(pub);
  EVP_PKEY_free(ks.pkey);
}

int main(void) {
  test_vector();
  test_request_sig();
  test_keystore_tokens();
  test_rs512();
  return check_done("auth");
}
