/* SPDX-License-Identifier: MIT */
/*
 * keystore: see keystore.h. The generation is detected as protocol.md §2
 * prescribes: session_private_key (C, hex) wins, then a private_key holding
 * an RSA PEM (A), then a private_key in base64 (B). Error messages name the
 * file and the field but never quote a value of a key field, and every
 * buffer that held secret bytes is wiped before it is freed: the file, the
 * decoded keys, and jansson's own copies (its lexer's buffers and the string
 * values), through an allocator that wipes what this thread frees while it
 * parses a keystore. The key itself lives in OpenSSL's secure heap: pages
 * locked in memory (where RLIMIT_MEMLOCK allows) and left out of core dumps
 * (MADV_DONTDUMP).
 */
#include "keystore.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base64.h"
#include "log.h"
#include "util.h"

#define KEYSTORE_MAX_BYTES (64 * 1024)

/* OpenSSL's secure heap: an Ed25519 key takes 32 bytes of it, a 4096-bit
 * RSA key about 2 KiB; the rest is room for a reload's second key. */
#define SECURE_HEAP_BYTES (64 * 1024)
#define SECURE_HEAP_MIN 32

/* Set while this thread loads a keystore: jansson's and OpenSSL's frees
 * (their lexer and decoder buffers, string values, DER copies) wipe the
 * block first. Other threads pay one thread-local test per free. */
static _Thread_local bool wipe_frees;

static void *wiping_malloc(size_t n) {
  return malloc(n);
}

static void wiping_free(void *p) {
  if (p && wipe_frees)
    OPENSSL_cleanse(p, malloc_usable_size(p));
  free(p);
}

static void *crypto_malloc(size_t n, const char *file, int line) {
  (void)file;
  (void)line;
  return malloc(n);
}

static void crypto_free(void *p, const char *file, int line) {
  (void)file;
  (void)line;
  wiping_free(p);
}

/* A realloc that leaves no copy behind in wiping mode. */
static void *crypto_realloc(void *p, size_t n, const char *file, int line) {
  (void)file;
  (void)line;
  if (!p || !wipe_frees)
    return realloc(p, n);
  if (n == 0) {
    wiping_free(p);
    return NULL;
  }
  void *q = malloc(n);
  if (q) {
    size_t old = malloc_usable_size(p);
    memcpy(q, p, old < n ? old : n);
    wiping_free(p);
  }
  return q;
}

static void protect_once(void) {
  /* Plain malloc/free underneath, so a block from either side may be
   * freed by the other: installing them late is harmless for jansson,
   * and OpenSSL refuses them (keeping its own) once it allocated. */
  json_set_alloc_funcs(wiping_malloc, wiping_free);
  int mem = CRYPTO_set_mem_functions(crypto_malloc, crypto_realloc, crypto_free);
  int rc = CRYPTO_secure_malloc_init(SECURE_HEAP_BYTES, SECURE_HEAP_MIN);
  if (rc == 0)
    log_warn("keystore: OpenSSL's secure heap is unavailable; the key may appear in "
             "core dumps");
  else if (rc == 2)
    log_debug("keystore: secure heap not locked in memory (RLIMIT_MEMLOCK); it is "
              "still left out of core dumps");
  if (!mem)
    log_debug("keystore: OpenSSL allocated before keystore_protect; its temporary "
              "copies of the key are freed unwiped");
}

void keystore_protect(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, protect_once);
}

/* Reads the whole file into a NUL-terminated buffer after the type and
 * permission checks, done on the open descriptor so they apply to the
 * file actually read. */
static int read_file(const char *path, int check_mode, char **out, size_t *outlen,
                     char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0)
    return error_set(err, errlen, "keystore %s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int e = errno;
    close(fd);
    return error_set(err, errlen, "keystore %s: cannot stat: %s", path, strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return error_set(err, errlen, "keystore %s is not a regular file", path);
  }
  if (check_mode && (st.st_mode & 077)) {
    close(fd);
    return error_set(
        err, errlen,
        "keystore %s is accessible by group or others (mode %04o); run: chmod 600 %s",
        path, (unsigned)(st.st_mode & 07777), path);
  }
  if (st.st_size > KEYSTORE_MAX_BYTES) {
    close(fd);
    return error_set(err, errlen, "keystore %s is too large (over %d bytes)", path,
                     KEYSTORE_MAX_BYTES);
  }
  size_t cap = (size_t)st.st_size + 1, len = 0;
  char *buf = malloc(cap);
  if (!buf) {
    close(fd);
    return error_set(err, errlen, "keystore %s: out of memory", path);
  }
  for (;;) {
    ssize_t r = read(fd, buf + len, cap - len);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      int e = errno;
      OPENSSL_cleanse(buf, cap);
      free(buf);
      close(fd);
      return error_set(err, errlen, "keystore %s: read error: %s", path, strerror(e));
    }
    if (r == 0)
      break;
    len += (size_t)r;
    if (len == cap) {
      /* The file grew since fstat; refuse rather than chase it. */
      OPENSSL_cleanse(buf, cap);
      free(buf);
      close(fd);
      return error_set(err, errlen, "keystore %s changed while being read", path);
    }
  }
  close(fd);
  buf[len] = 0;
  *out = buf;
  *outlen = len;
  return 0;
}

/* Whoever may write to the keystore's folder may replace the keystore
 * (rename over it) and make the bot someone else: worth a warning. A
 * sticky folder (like /tmp) forbids renaming over another user's file. */
static void warn_folder(const char *path) {
  char dir[PATH_MAX];
  const char *slash = strrchr(path, '/');
  if (!slash)
    snprintf(dir, sizeof dir, ".");
  else if (slash == path)
    snprintf(dir, sizeof dir, "/");
  else
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  struct stat st;
  if (stat(dir, &st) == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)) &&
      !(st.st_mode & S_ISVTX))
    log_warn("keystore %s: its folder %s is writable by group or others (mode %04o), "
             "who could replace the keystore; run: chmod go-w %s",
             path, dir, (unsigned)(st.st_mode & 07777), dir);
}

/* The string member name of obj, or NULL with err set. */
static const char *get_string(json_t *obj, const char *path, const char *name, char *err,
                              size_t errlen) {
  json_t *v = json_object_get(obj, name);
  if (!v) {
    error_set(err, errlen, "keystore %s: missing field \"%s\"", path, name);
    return NULL;
  }
  if (!json_is_string(v)) {
    error_set(err, errlen, "keystore %s: field \"%s\" is not a string", path, name);
    return NULL;
  }
  return json_string_value(v);
}

static int get_uuid(json_t *obj, const char *path, const char *name,
                    char out[UUID_STR_LEN], char *err, size_t errlen) {
  const char *s = get_string(obj, path, name, err, errlen);
  if (!s)
    return -1;
  if (!uuid_valid(s))
    return error_set(err, errlen, "keystore %s: field \"%s\" is not a UUID", path, name);
  for (int i = 0; i < UUID_STR_LEN; i++)
    out[i] = (char)tolower((unsigned char)s[i]);
  return 0;
}

/* Makes the Ed25519 key from a seed; if pub is given (the second half of a
 * 64-byte private key), it must be the seed's public key. */
static EVP_PKEY *ed25519_from_seed(const unsigned char seed[32], const unsigned char *pub,
                                   const char *path, const char *field, char *err,
                                   size_t errlen) {
  /* Decoded from PKCS#8 rather than made by EVP_PKEY_new_raw_private_key:
   * OpenSSL 3.0 keeps a raw key in its ordinary heap, a decoded one in its
   * secure heap. RFC 8410's OneAsymmetricKey for Ed25519 is this 16-byte
   * prefix and the 32-byte seed. */
  static const unsigned char prefix[16] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30,
                                           0x05, 0x06, 0x03, 0x2b, 0x65, 0x70,
                                           0x04, 0x22, 0x04, 0x20};
  unsigned char der[48];
  memcpy(der, prefix, sizeof prefix);
  memcpy(der + sizeof prefix, seed, 32);
  const unsigned char *p = der;
  EVP_PKEY *pk = d2i_AutoPrivateKey(NULL, &p, (long)sizeof der);
  OPENSSL_cleanse(der, sizeof der);
  if (pk && EVP_PKEY_get_base_id(pk) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(pk);
    pk = NULL;
  }
  if (!pk) {
    ERR_clear_error();
    error_set(err, errlen, "keystore %s: field \"%s\" is not a usable Ed25519 key", path,
              field);
    return NULL;
  }
  if (pub) {
    unsigned char derived[32];
    size_t n = sizeof derived;
    if (EVP_PKEY_get_raw_public_key(pk, derived, &n) != 1 || n != 32 ||
        CRYPTO_memcmp(derived, pub, 32) != 0) {
      ERR_clear_error();
      EVP_PKEY_free(pk);
      error_set(
          err, errlen,
          "keystore %s: field \"%s\" is inconsistent (its public half does not match its "
          "seed)",
          path, field);
      return NULL;
    }
  }
  return pk;
}

/* Generation C: session_private_key is the hex of the 32-byte seed (or of
 * the 64-byte seed||public key). */
static EVP_PKEY *load_hex_seed(const char *hex, const char *path, char *err,
                               size_t errlen) {
  static const char *field = "session_private_key";
  size_t n = strlen(hex);
  if (n != 64 && n != 128) {
    error_set(
        err, errlen,
        "keystore %s: field \"%s\" has the wrong length (%zu hex digits; expected 64 "
        "for a "
        "32-byte Ed25519 seed)",
        path, field, n);
    return NULL;
  }
  unsigned char key[64];
  EVP_PKEY *pk = NULL;
  int got = hex_decode(hex, n, key, sizeof key);
  if (got < 0)
    error_set(err, errlen, "keystore %s: field \"%s\" is not valid hex", path, field);
  else
    pk = ed25519_from_seed(key, got == 64 ? key + 32 : NULL, path, field, err, errlen);
  OPENSSL_cleanse(key, sizeof key);
  return pk;
}

/* Generation B: private_key is base64url (std tolerated, padding optional)
 * of the 64-byte seed||public key. */
static EVP_PKEY *load_b64_key(const char *b64, const char *path, char *err,
                              size_t errlen) {
  static const char *field = "private_key";
  size_t n = strlen(b64);
  if (n > 200) {
    error_set(err, errlen,
              "keystore %s: field \"%s\" has the wrong length (%zu characters)", path,
              field, n);
    return NULL;
  }
  unsigned char key[256];
  EVP_PKEY *pk = NULL;
  long got = base64_decode(b64, n, key, sizeof key);
  if (got < 0)
    error_set(err, errlen,
              "keystore %s: field \"%s\" is neither an RSA PEM key nor valid base64",
              path, field);
  else if (got != 64)
    error_set(
        err, errlen,
        "keystore %s: field \"%s\" has the wrong length (%ld bytes; expected a 64-byte "
        "Ed25519 private key)",
        path, field, got);
  else
    pk = ed25519_from_seed(key, key + 32, path, field, err, errlen);
  OPENSSL_cleanse(key, sizeof key);
  return pk;
}

/* Never prompts on a terminal for the passphrase of an encrypted PEM. */
static int no_passphrase(char *buf, int size, int rwflag, void *u) {
  (void)buf;
  (void)size;
  (void)rwflag;
  (void)u;
  return -1;
}

/* Generation A: private_key is a PKCS#1 "RSA PRIVATE KEY" PEM. */
static EVP_PKEY *load_rsa_pem(const char *pem, const char *path, char *err,
                              size_t errlen) {
  BIO *bio = BIO_new_mem_buf(pem, -1);
  EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
  BIO_free(bio);
  ERR_clear_error();
  if (!pk) {
    error_set(
        err, errlen,
        "keystore %s: field \"private_key\" is not a readable unencrypted RSA PEM key",
        path);
    return NULL;
  }
  if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA || EVP_PKEY_get_bits(pk) < 1024) {
    EVP_PKEY_free(pk);
    error_set(err, errlen,
              "keystore %s: field \"private_key\" is not an RSA key of 1024+ bits", path);
    return NULL;
  }
  /* A damaged key (its modulus no longer p * q, say) still parses, and
   * every token signed with it would then be refused: check it now. */
  EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(pk, NULL);
  int consistent = pc && EVP_PKEY_check(pc) == 1;
  EVP_PKEY_CTX_free(pc);
  ERR_clear_error();
  if (!consistent) {
    EVP_PKEY_free(pk);
    error_set(err, errlen,
              "keystore %s: field \"private_key\" is not a consistent RSA key (its parts "
              "do not match)",
              path);
    return NULL;
  }
  return pk;
}

/* jansson's messages may quote the offending input ("... near 'xyz'"),
 * which could be key material, so only the part before that is kept. */
static void json_reason(const json_error_t *je, char *out, size_t outlen) {
  snprintf(out, outlen, "%s", je->text);
  char *near = strstr(out, " near ");
  if (near)
    *near = 0;
}

static int parse(const char *path, const char *text, size_t len, struct keystore *ks,
                 char *err, size_t errlen) {
  json_error_t je;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (!root) {
    char why[sizeof je.text];
    json_reason(&je, why, sizeof why);
    return error_set(err, errlen, "keystore %s is not valid JSON (line %d: %s)", path,
                     je.line, why);
  }
  int rc = -1;
  const char *priv;
  if (!json_is_object(root)) {
    error_set(err, errlen, "keystore %s is not a JSON object", path);
  } else if (json_object_get(root, "session_private_key")) {
    ks->generation = 'C';
    ks->alg = KEYSTORE_ED25519;
    if (get_uuid(root, path, "app_id", ks->user_id, err, errlen) == 0 &&
        get_uuid(root, path, "session_id", ks->session_id, err, errlen) == 0 &&
        (priv = get_string(root, path, "session_private_key", err, errlen)) &&
        (ks->pkey = load_hex_seed(priv, path, err, errlen)))
      rc = 0;
  } else if (json_object_get(root, "private_key")) {
    if (get_uuid(root, path, "client_id", ks->user_id, err, errlen) == 0 &&
        get_uuid(root, path, "session_id", ks->session_id, err, errlen) == 0 &&
        (priv = get_string(root, path, "private_key", err, errlen))) {
      if (strstr(priv, "BEGIN RSA PRIVATE KEY")) {
        ks->generation = 'A';
        ks->alg = KEYSTORE_RSA;
        ks->pkey = load_rsa_pem(priv, path, err, errlen);
      } else {
        ks->generation = 'B';
        ks->alg = KEYSTORE_ED25519;
        ks->pkey = load_b64_key(priv, path, err, errlen);
      }
      rc = ks->pkey ? 0 : -1;
    }
  } else {
    error_set(
        err, errlen,
        "keystore %s: missing field \"session_private_key\" (or \"private_key\" of an "
        "older "
        "keystore)",
        path);
  }
  json_decref(root);
  return rc;
}

int keystore_load(const char *path, int check_mode, struct keystore **out, char *err,
                  size_t errlen) {
  *out = NULL;
  char *text = NULL;
  size_t len = 0;
  keystore_protect();
  if (read_file(path, check_mode, &text, &len, err, errlen) < 0)
    return -1;
  if (check_mode)
    warn_folder(path);
  struct keystore *ks = calloc(1, sizeof *ks);
  wipe_frees = true;
  int rc = ks ? parse(path, text, len, ks, err, errlen)
              : error_set(err, errlen, "keystore %s: out of memory", path);
  wipe_frees = false;
  OPENSSL_cleanse(text, len);
  free(text);
  if (rc < 0) {
    keystore_free(ks);
    return -1;
  }
  *out = ks;
  return 0;
}

void keystore_free(struct keystore *ks) {
  if (!ks)
    return;
  EVP_PKEY_free(ks->pkey);
  free(ks);
}

EVP_PKEY *keystore_public_key(const struct keystore *ks) {
  unsigned char *der = NULL;
  int n = i2d_PUBKEY(ks->pkey, &der);
  if (n <= 0) {
    ERR_clear_error();
    return NULL;
  }
  const unsigned char *p = der;
  EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, n);
  OPENSSL_free(der);
  if (!pub)
    ERR_clear_error();
  return pub;
}

int keystore_equal(const struct keystore *a, const struct keystore *b) {
  return a->alg == b->alg && strcmp(a->user_id, b->user_id) == 0 &&
         strcmp(a->session_id, b->session_id) == 0 && EVP_PKEY_eq(a->pkey, b->pkey) == 1;
}
