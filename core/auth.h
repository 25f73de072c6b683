/* SPDX-License-Identifier: MIT */
/*
 * auth: Mixin JWTs (protocol.md §1.3). Tokens are signed with EdDSA (Ed25519)
 * or RS512 depending on the keystore, carry uid, sid, iat, exp, jti, sig
 * (lowercase hex sha256 of METHOD + URI + BODY) and scp "FULL". A fresh token
 * (new jti, new iat) is made for every connection attempt and REST call.
 * Verification is here too, for the simulator and the tests.
 */
#ifndef BLAZEBOT_AUTH_H
#define BLAZEBOT_AUTH_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore.h"

/* Signs a token. iat = now (wall clock), exp = iat + ttl_s; jti NULL means a
 * fresh random UUID. *out is a malloc'd NUL-terminated string. Returns 0/-1. */
int auth_sign(const struct keystore *ks, const char *method, const char *uri,
              const void *body, size_t body_len, int64_t ttl_s, const char *jti,
              char **out);

/* Lower level, for the test vector: signs exactly the given header and
 * payload bytes (already JSON) and returns the compact JWS in *out. */
int auth_sign_raw(EVP_PKEY *key, int alg, const char *header_json,
                  const char *payload_json, char **out);

/* Claims of a verified token. Strings are NUL-terminated copies. */
struct auth_claims {
  char uid[64];
  char sid[64];
  char jti[64];
  char sig[65];
  char scp[32];
  char alg[16];
  int64_t iat;
  int64_t exp;
};

/* Verifies the signature of token with pub (Ed25519 or RSA public key; the
 * header's alg must match the key type) and parses the claims. Checks no
 * times or claims; the caller decides. Returns 0 or -1 with a reason in err. */
int auth_verify(EVP_PKEY *pub, const char *token, struct auth_claims *claims, char *err,
                size_t errlen);

/* Lowercase hex sha256 of method + uri + body into out[65]. */
void auth_request_sig(const char *method, const char *uri, const void *body,
                      size_t body_len, char out[65]);

#endif
