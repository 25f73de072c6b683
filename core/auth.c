/* SPDX-License-Identifier: MIT */
/*
 * auth: see auth.h. A token is b64url(header) "." b64url(payload) "."
 * b64url(signature), unpadded. The payload is written by hand, claims in the
 * order the official SDKs use and without spaces, so a token is byte-for-byte
 * predictable from its inputs (the signature covers exactly those bytes).
 * Verification is strict about the encoding: base64url only, no padding,
 * exactly three parts, and duplicate JSON members are refused.
 */
#include "auth.h"

#include <jansson.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "util.h"

#define AUTH_MAX_TOKEN 16384

static const char hdr_eddsa[] = "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}";
static const char hdr_rs512[] = "{\"alg\":\"RS512\",\"typ\":\"JWT\"}";

/* The enum keystore_alg that a key can sign for, or 0. */
static int key_alg(EVP_PKEY *key) {
  switch (EVP_PKEY_get_base_id(key)) {
  case EVP_PKEY_ED25519:
    return KEYSTORE_ED25519;
  case EVP_PKEY_RSA:
    return KEYSTORE_RSA;
  default:
    return 0;
  }
}

/* Appends b64url(in) at out + *len; out has room (sized by the caller). */
static void put_b64(char *out, size_t *len, const void *in, size_t n) {
  *len += base64_encode(in, n, 1, out + *len);
}

int auth_sign_raw(EVP_PKEY *key, int alg, const char *header_json,
                  const char *payload_json, char **out) {
  *out = NULL;
  if (!key || key_alg(key) != alg)
    return -1;
  size_t hn = strlen(header_json), pn = strlen(payload_json);
  size_t siglen = (size_t)EVP_PKEY_get_size(key);
  size_t cap = base64_encoded_len(hn, 1) + base64_encoded_len(pn, 1) +
               base64_encoded_len(siglen, 1) + 3;
  char *tok = malloc(cap);
  unsigned char *sig = malloc(siglen);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int rc = -1;
  if (!tok || !sig || !ctx)
    goto done;
  size_t len = 0;
  put_b64(tok, &len, header_json, hn);
  tok[len++] = '.';
  put_b64(tok, &len, payload_json, pn);
  /* Ed25519 takes no digest (it hashes internally, one-shot only); RS512 is
   * PKCS#1 v1.5, the default padding of an RSA key, over SHA-512. */
  const EVP_MD *md = alg == KEYSTORE_RSA ? EVP_sha512() : NULL;
  if (EVP_DigestSignInit(ctx, NULL, md, NULL, key) != 1 ||
      EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)tok, len) != 1)
    goto done;
  tok[len++] = '.';
  put_b64(tok, &len, sig, siglen);
  *out = tok;
  tok = NULL;
  rc = 0;
done:
  if (rc < 0)
    ERR_clear_error();
  EVP_MD_CTX_free(ctx);
  free(sig);
  free(tok);
  return rc;
}

/* jti goes into the JSON unescaped, so only plain characters are allowed. */
static int safe_claim(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= 64)
    return 0;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
      return 0;
  }
  return 1;
}

int auth_sign(const struct keystore *ks, const char *method, const char *uri,
              const void *body, size_t body_len, int64_t ttl_s, const char *jti,
              char **out) {
  *out = NULL;
  char fresh[UUID_STR_LEN];
  if (!jti) {
    if (uuid_v4(fresh) < 0)
      return -1;
    jti = fresh;
  }
  if (!ks || ttl_s <= 0 || !safe_claim(jti) || !uuid_valid(ks->user_id) ||
      !uuid_valid(ks->session_id))
    return -1;
  char sig[65];
  auth_request_sig(method, uri, body, body_len, sig);
  if (!sig[0])
    return -1;
  int64_t iat = wall_s();
  char payload[512];
  int n = snprintf(
      payload, sizeof payload,
      "{\"uid\":\"%s\",\"sid\":\"%s\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"%s\","
      "\"sig\":\"%s\",\"scp\":\"FULL\"}",
      ks->user_id, ks->session_id, (long long)iat, (long long)(iat + ttl_s), jti, sig);
  if (n < 0 || (size_t)n >= sizeof payload)
    return -1;
  return auth_sign_raw(ks->pkey, ks->alg, ks->alg == KEYSTORE_RSA ? hdr_rs512 : hdr_eddsa,
                       payload, out);
}

/* Decodes one unpadded base64url part; returns a malloc'd buffer (NUL
 * appended) or NULL. */
static unsigned char *decode_part(const char *s, size_t n, size_t *outlen) {
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          c == '-' || c == '_'))
      return NULL;
  }
  size_t cap = base64_decoded_max(n) + 1;
  unsigned char *out = malloc(cap);
  if (!out)
    return NULL;
  long got = base64_decode(s, n, out, cap - 1);
  if (got < 0) {
    free(out);
    return NULL;
  }
  out[got] = 0;
  *outlen = (size_t)got;
  return out;
}

/* Copies string claim name (missing = ""); -1 if not a string or too long. */
static int claim_str(json_t *obj, const char *name, char *out, size_t cap, char *err,
                     size_t errlen) {
  json_t *v = json_object_get(obj, name);
  out[0] = 0;
  if (!v)
    return 0;
  if (!json_is_string(v))
    return error_set(err, errlen, "claim %s is not a string", name);
  if (json_string_length(v) >= cap ||
      strlen(json_string_value(v)) != json_string_length(v))
    return error_set(err, errlen, "claim %s is too long or contains NUL", name);
  memcpy(out, json_string_value(v), json_string_length(v) + 1);
  return 0;
}

static int claim_int(json_t *obj, const char *name, int64_t *out, char *err,
                     size_t errlen) {
  json_t *v = json_object_get(obj, name);
  *out = 0;
  if (!v)
    return 0;
  if (!json_is_integer(v))
    return error_set(err, errlen, "claim %s is not an integer", name);
  *out = (int64_t)json_integer_value(v);
  return 0;
}

static int verify_sig(EVP_PKEY *pub, int alg, const char *input, size_t inlen,
                      const unsigned char *sig, size_t siglen) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  const EVP_MD *md = alg == KEYSTORE_RSA ? EVP_sha512() : NULL;
  int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, pub) == 1 &&
           EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)input, inlen) == 1;
  EVP_MD_CTX_free(ctx);
  ERR_clear_error();
  return ok ? 0 : -1;
}

int auth_verify(EVP_PKEY *pub, const char *token, struct auth_claims *claims, char *err,
                size_t errlen) {
  struct auth_claims c;
  memset(&c, 0, sizeof c);
  if (claims)
    memset(claims, 0, sizeof *claims);
  if (!pub || !token)
    return error_set(err, errlen, "no key or no token");
  size_t tn = strnlen(token, AUTH_MAX_TOKEN + 1);
  if (tn > AUTH_MAX_TOKEN)
    return error_set(err, errlen, "token too long");
  const char *d1 = memchr(token, '.', tn);
  const char *d2 = d1 ? memchr(d1 + 1, '.', tn - (size_t)(d1 + 1 - token)) : NULL;
  if (!d2 || memchr(d2 + 1, '.', tn - (size_t)(d2 + 1 - token)))
    return error_set(err, errlen, "token is not three dot-separated parts");

  unsigned char *hdr = NULL, *pay = NULL, *sig = NULL;
  json_t *hj = NULL, *pj = NULL;
  size_t hl, pl, sl;
  int rc = -1;
  json_error_t je;
  hdr = decode_part(token, (size_t)(d1 - token), &hl);
  pay = decode_part(d1 + 1, (size_t)(d2 - d1 - 1), &pl);
  sig = decode_part(d2 + 1, tn - (size_t)(d2 + 1 - token), &sl);
  if (!hdr || !pay || !sig) {
    error_set(err, errlen, "token part is not unpadded base64url");
    goto done;
  }
  hj = json_loadb((const char *)hdr, hl, JSON_REJECT_DUPLICATES, &je);
  if (!json_is_object(hj)) {
    error_set(err, errlen, "token header is not a JSON object");
    goto done;
  }
  json_t *av = json_object_get(hj, "alg");
  const char *alg_s = json_is_string(av) ? json_string_value(av) : "";
  int alg = strcmp(alg_s, "EdDSA") == 0   ? KEYSTORE_ED25519
            : strcmp(alg_s, "RS512") == 0 ? KEYSTORE_RSA
                                          : 0;
  if (!alg) {
    error_set(err, errlen, "unsupported alg in token header");
    goto done;
  }
  if (alg != key_alg(pub)) {
    error_set(err, errlen, "token alg %s does not match the key type", alg_s);
    goto done;
  }
  snprintf(c.alg, sizeof c.alg, "%s", alg_s);
  if (verify_sig(pub, alg, token, (size_t)(d2 - token), sig, sl) < 0) {
    error_set(err, errlen, "bad token signature");
    goto done;
  }
  pj = json_loadb((const char *)pay, pl, JSON_REJECT_DUPLICATES, &je);
  if (!json_is_object(pj)) {
    error_set(err, errlen, "token payload is not a JSON object");
    goto done;
  }
  if (claim_str(pj, "uid", c.uid, sizeof c.uid, err, errlen) < 0 ||
      claim_str(pj, "sid", c.sid, sizeof c.sid, err, errlen) < 0 ||
      claim_str(pj, "jti", c.jti, sizeof c.jti, err, errlen) < 0 ||
      claim_str(pj, "sig", c.sig, sizeof c.sig, err, errlen) < 0 ||
      claim_str(pj, "scp", c.scp, sizeof c.scp, err, errlen) < 0 ||
      claim_int(pj, "iat", &c.iat, err, errlen) < 0 ||
      claim_int(pj, "exp", &c.exp, err, errlen) < 0)
    goto done;
  if (claims)
    *claims = c;
  rc = 0;
done:
  json_decref(hj);
  json_decref(pj);
  free(hdr);
  free(pay);
  free(sig);
  return rc;
}

void auth_request_sig(const char *method, const char *uri, const void *body,
                      size_t body_len, char out[65]) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int dl = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok =
      ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
      EVP_DigestUpdate(ctx, method ? method : "", method ? strlen(method) : 0) == 1 &&
      EVP_DigestUpdate(ctx, uri ? uri : "", uri ? strlen(uri) : 0) == 1 &&
      (!body_len || EVP_DigestUpdate(ctx, body, body_len) == 1) &&
      EVP_DigestFinal_ex(ctx, d, &dl) == 1 && dl == 32;
  EVP_MD_CTX_free(ctx);
  if (!ok) {
    /* Only an allocation failure gets here; an empty sig makes the server
     * refuse the request instead of silently signing something else. */
    ERR_clear_error();
    out[0] = 0;
    return;
  }
  hex_encode(d, 32, out);
}
