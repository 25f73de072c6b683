/* SPDX-License-Identifier: MIT */
/*
 * fuzz_keystore: the bot's identity file in all three generations. The
 * input is written to a memfd of mode 0600 and loaded by keystore_load
 * (core/keystore.c) with the mode check on. A refusal must say why and
 * must not quote key material (a run of 24 base64 or hex characters of
 * private_key or session_private_key); a keystore that loads has the
 * generation and algorithm its fields call for, lowercase UUIDs, a public
 * half, equals itself and a second load of the same file, and signs a
 * token (core/auth.c) that its public key verifies with the same uid and
 * sid. A loaded RSA key is consistent (EVP_PKEY_check): this fuzzer found
 * that a PEM whose modulus was altered (n is not p * q) loaded and signed
 * tokens its own public key did not verify
 * (corpus/keystore/crash-rsa-inconsistent-key); keystore_load refuses
 * those now. The signing round trip runs for RSA keys of at most 4096 bits,
 * so that one input stays fast.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <string.h>

#include "auth.h"
#include "fuzz.h"
#include "keystore.h"
#include "util.h"

static struct fuzz_file file;
static int ready;

static void cleanup(void) {
  close(file.fd);
}

static int b64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '+' || c == '/' || c == '=' || c == '-' || c == '_';
}

/* err must not hold 24 characters in a row of a key field's value. */
static void no_key_material(const uint8_t *data, size_t size, const char *err) {
  json_t *root = json_loadb((const char *)data, size, 0, NULL);
  static const char *const fields[] = {"private_key", "session_private_key"};
  for (size_t f = 0; f < 2; f++) {
    json_t *v = json_object_get(root, fields[f]);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    for (size_t i = 0, run = 0; s && i < n; i++) {
      run = b64_char(s[i]) ? run + 1 : 0;
      if (run == 24) {
        FUZZ_ASSERT(memmem(err, strlen(err), s + i + 1 - run, run) == NULL);
        run = 0;
      }
    }
  }
  json_decref(root);
}

/* OpenSSL's own check of a key's consistency (RSA: primes, exponents). */
static int consistent(EVP_PKEY *key) {
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
  int ok = ctx && EVP_PKEY_check(ctx) == 1;
  EVP_PKEY_CTX_free(ctx);
  return ok;
}

static void loaded(struct keystore *ks) {
  FUZZ_ASSERT(ks->pkey != NULL);
  if (ks->generation == 'A')
    FUZZ_ASSERT(ks->alg == KEYSTORE_RSA);
  else
    FUZZ_ASSERT((ks->generation == 'B' || ks->generation == 'C') &&
                ks->alg == KEYSTORE_ED25519);
  FUZZ_ASSERT(uuid_valid(ks->user_id) && uuid_valid(ks->session_id));
  FUZZ_ASSERT(!strpbrk(ks->user_id, "ABCDEF") && !strpbrk(ks->session_id, "ABCDEF"));
  FUZZ_ASSERT(keystore_equal(ks, ks) == 1);

  struct keystore *again = NULL;
  char err[512];
  FUZZ_ASSERT(keystore_load(file.path, 1, &again, err, sizeof err) == 0);
  FUZZ_ASSERT(keystore_equal(ks, again) == 1);
  keystore_free(again);

  EVP_PKEY *pub = keystore_public_key(ks);
  FUZZ_ASSERT(pub != NULL);
  if (ks->alg == KEYSTORE_RSA)
    FUZZ_ASSERT(consistent(ks->pkey));
  if (ks->alg == KEYSTORE_ED25519 || EVP_PKEY_get_bits(ks->pkey) <= 4096) {
    char *tok = NULL;
    FUZZ_ASSERT(auth_sign(ks, "GET", "/", "", 0, 60, "fuzz-jti", &tok) == 0);
    struct auth_claims c;
    FUZZ_ASSERT(auth_verify(pub, tok, &c, err, sizeof err) == 0);
    FUZZ_ASSERT(strcmp(c.uid, ks->user_id) == 0 && strcmp(c.sid, ks->session_id) == 0);
    FUZZ_ASSERT(strcmp(c.jti, "fuzz-jti") == 0 && c.exp == c.iat + 60);
    free(tok);
  }
  EVP_PKEY_free(pub);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ready) {
    fuzz_file_open(&file, "fuzz-keystore.json");
    atexit(cleanup);
    ready = 1;
  }
  fuzz_file_write(&file, data, size);
  struct keystore *ks = NULL;
  char err[512];
  if (keystore_load(file.path, 1, &ks, err, sizeof err) < 0) {
    FUZZ_ASSERT(ks == NULL && err[0]);
    no_key_material(data, size, err);
    return 0;
  }
  FUZZ_ASSERT(ks != NULL);
  loaded(ks);
  keystore_free(ks);
  return 0;
}
