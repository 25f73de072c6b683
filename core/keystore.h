/* SPDX-License-Identifier: MIT */
/*
 * keystore: the bot's identity file, in all three generations of
 * protocol.md §2 — A: legacy RSA (client_id, session_id, private_key PEM
 * PKCS#1), B: Ed25519 (private_key = base64url 64-byte seed||pub), C: current
 * hex form (app_id, session_id, session_private_key = 32-byte hex seed).
 * The file must not be readable or writable by group or others. Key material
 * never leaves this module except as an EVP_PKEY; it is never logged.
 */
#ifndef BLAZEBOT_KEYSTORE_H
#define BLAZEBOT_KEYSTORE_H

#include <openssl/evp.h>
#include <stddef.h>

#include "util.h"

enum keystore_alg { KEYSTORE_ED25519 = 1, KEYSTORE_RSA = 2 };

struct keystore {
  int alg;                       /* enum keystore_alg */
  char generation;               /* 'A', 'B' or 'C' */
  char user_id[UUID_STR_LEN];    /* app_id or client_id, lowercase */
  char session_id[UUID_STR_LEN]; /* lowercase */
  EVP_PKEY *pkey;                /* private key (owned) */
};

/* Loads and validates path. On error returns -1 with a one-line reason in
 * err (never containing key material), e.g. "keystore ks.json is readable by
 * group or others (mode 0644); run: chmod 600 ks.json". check_mode = 0 skips
 * the permission check (used only by the simulator, which reads the bot's
 * keystore to learn its public key). */
int keystore_load(const char *path, int check_mode, struct keystore **out, char *err,
                  size_t errlen);
void keystore_free(struct keystore *ks);

/* Sets up, once per process, where keys live: OpenSSL's secure heap (left
 * out of core dumps, locked in memory where allowed) and jansson's frees
 * that wipe while a keystore is parsed. keystore_load calls it; call it
 * earlier only to have it happen before threads start. */
void keystore_protect(void);

/* 1 when a and b are the same identity: user, session and key. */
int keystore_equal(const struct keystore *a, const struct keystore *b);

/* A new reference to the public half of the key (caller EVP_PKEY_free). */
EVP_PKEY *keystore_public_key(const struct keystore *ks);

#endif
