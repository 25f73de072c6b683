/* SPDX-License-Identifier: MIT */
/*
 * keygen: see keygen.h. Keystores are built with jansson and written with
 * O_EXCL (or O_TRUNC under --force) and mode 0600, then fchmod'ed in case
 * the file already existed. Secret bytes pass through buffers that are
 * wiped before they are freed (secure-memory BIOs for PEM text). Arguments
 * are parsed by hand rather than with getopt so that repeated calls in one
 * process need no global reset.
 */
#include "keygen.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base64.h"
#include "util.h"

/* Matches "--name VALUE", "--name=VALUE" or "-s VALUE" at argv[*i]. Returns
 * 1 with *val set (advancing *i past a separate value), 0 if argv[*i] is
 * another option, -1 if the value is missing. */
static int opt(int argc, char **argv, int *i, const char *name, const char *shrt,
               const char **val) {
  const char *a = argv[*i];
  size_t n = strlen(name);
  if (strncmp(a, name, n) == 0 && a[n] == '=') {
    *val = a + n + 1;
    return 1;
  }
  if (strcmp(a, name) != 0 && !(shrt && strcmp(a, shrt) == 0))
    return 0;
  if (*i + 1 >= argc)
    return -1;
  *val = argv[++*i];
  return 1;
}

/* Writes len bytes to path with the given mode. excl: refuse to replace an
 * existing file. A file this call created is removed again on failure. */
static int write_file(const char *path, const void *data, size_t len, mode_t mode,
                      int excl) {
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (excl ? O_EXCL : O_TRUNC), mode);
  if (fd < 0) {
    fprintf(stderr, "cannot create %s: %s%s\n", path, strerror(errno),
            errno == EEXIST ? " (use --force to overwrite)" : "");
    return -1;
  }
  const char *p = data;
  size_t off = 0;
  int ok = fchmod(fd, mode) == 0;
  while (ok && off < len) {
    ssize_t w = write(fd, p + off, len - off);
    if (w < 0 && errno == EINTR)
      continue;
    ok = w > 0;
    if (ok)
      off += (size_t)w;
  }
  int e = errno;
  if (close(fd) < 0 && ok) {
    ok = 0;
    e = errno;
  }
  if (!ok) {
    fprintf(stderr, "cannot write %s: %s\n", path, strerror(e));
    if (excl)
      unlink(path);
    return -1;
  }
  return 0;
}

/* Writes the PEM of a private key (PKCS#8, or PKCS#1 "RSA PRIVATE KEY" when
 * traditional is set) into a malloc'd, NUL-terminated string in secure
 * memory; free it with OPENSSL_clear_free(p, strlen(p) + 1). */
static char *key_pem(EVP_PKEY *key, int traditional) {
  BIO *bio = BIO_new(BIO_s_secmem());
  char *out = NULL;
  if (bio &&
      (traditional
           ? PEM_write_bio_PrivateKey_traditional(bio, key, NULL, NULL, 0, NULL, NULL)
           : PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL))) {
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    out = n > 0 ? OPENSSL_malloc((size_t)n + 1) : NULL;
    if (out) {
      memcpy(out, data, (size_t)n);
      out[n] = 0;
    }
  }
  BIO_free(bio);
  return out;
}

static void keygen_usage(FILE *f) {
  fprintf(f,
          "usage: blazebot-sim keygen [--type ed25519|ed25519-legacy|rsa]\n"
          "                           [--user-id UUID] [--session-id UUID] [--force] -o "
          "FILE\n"
          "  ed25519         current keystore (app_id, session_private_key hex)\n"
          "  ed25519-legacy  2020-2023 keystore (client_id, private_key base64url)\n"
          "  rsa             legacy RSA keystore (client_id, private_key PKCS#1 PEM)\n");
}

/* Fills root with the fields of the chosen generation. */
static int build_keystore(const char *type, const char *uid, const char *sid,
                          json_t *root, char *pub_hex) {
  unsigned char seed[32], pub[32], full[64], rnd[256];
  char text[512];
  size_t n = sizeof pub;
  int rc = -1;
  EVP_PKEY *key = NULL;
  char *pem = NULL;
  pub_hex[0] = 0;
  if (strcmp(type, "rsa") == 0) {
    key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    pem = key ? key_pem(key, 1) : NULL;
    if (!pem || RAND_bytes(rnd, sizeof rnd) != 1)
      goto done;
    base64_encode(rnd, sizeof rnd, 0, text);
    json_object_set_new(root, "pin", json_string("123456"));
    json_object_set_new(root, "client_id", json_string(uid));
    json_object_set_new(root, "session_id", json_string(sid));
    json_object_set_new(root, "pin_token", json_string(text));
    json_object_set_new(root, "private_key", json_string(pem));
    rc = 0;
    goto done;
  }
  if (RAND_bytes(seed, sizeof seed) != 1 ||
      !(key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed)) ||
      EVP_PKEY_get_raw_public_key(key, pub, &n) != 1 || n != 32 ||
      RAND_bytes(rnd, 32) != 1)
    goto done;
  hex_encode(pub, 32, pub_hex);
  if (strcmp(type, "ed25519") == 0) {
    /* The server's public key only matters for PIN and encrypted messages,
     * which the simulator does not use; a random valid point will do. */
    EVP_PKEY *srv = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, rnd, 32);
    unsigned char spub[32];
    size_t sn = sizeof spub;
    int ok = srv && EVP_PKEY_get_raw_public_key(srv, spub, &sn) == 1 && sn == 32;
    EVP_PKEY_free(srv);
    if (!ok)
      goto done;
    json_object_set_new(root, "app_id", json_string(uid));
    json_object_set_new(root, "session_id", json_string(sid));
    hex_encode(spub, 32, text);
    json_object_set_new(root, "server_public_key", json_string(text));
    hex_encode(seed, 32, text);
    json_object_set_new(root, "session_private_key", json_string(text));
  } else {
    json_object_set_new(root, "pin", json_string("123456"));
    json_object_set_new(root, "client_id", json_string(uid));
    json_object_set_new(root, "session_id", json_string(sid));
    base64_encode(rnd, 32, 1, text);
    json_object_set_new(root, "pin_token", json_string(text));
    memcpy(full, seed, 32);
    memcpy(full + 32, pub, 32);
    base64_encode(full, 64, 1, text);
    json_object_set_new(root, "private_key", json_string(text));
  }
  rc = 0;
done:
  if (rc < 0)
    fprintf(stderr, "keygen: key generation failed\n");
  ERR_clear_error();
  EVP_PKEY_free(key);
  if (pem)
    OPENSSL_clear_free(pem, strlen(pem) + 1);
  OPENSSL_cleanse(seed, sizeof seed);
  OPENSSL_cleanse(full, sizeof full);
  OPENSSL_cleanse(text, sizeof text);
  return rc;
}

int sim_keygen_main(int argc, char **argv) {
  const char *type = "ed25519", *uid_arg = NULL, *sid_arg = NULL, *out = NULL;
  int force = 0;
  for (int i = 1; i < argc; i++) {
    int r;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      keygen_usage(stdout);
      return 0;
    }
    if (strcmp(argv[i], "--force") == 0) {
      force = 1;
      continue;
    }
    if ((r = opt(argc, argv, &i, "--type", NULL, &type)) ||
        (r = opt(argc, argv, &i, "--user-id", NULL, &uid_arg)) ||
        (r = opt(argc, argv, &i, "--session-id", NULL, &sid_arg)) ||
        (r = opt(argc, argv, &i, "--output", "-o", &out))) {
      if (r < 0) {
        fprintf(stderr, "keygen: %s needs a value\n", argv[i]);
        return 2;
      }
      continue;
    }
    fprintf(stderr, "keygen: unknown argument '%s'\n", argv[i]);
    keygen_usage(stderr);
    return 2;
  }
  if (!out) {
    fprintf(stderr, "keygen: -o FILE is required\n");
    keygen_usage(stderr);
    return 2;
  }
  int gen = strcmp(type, "ed25519") == 0          ? 'C'
            : strcmp(type, "ed25519-legacy") == 0 ? 'B'
            : strcmp(type, "rsa") == 0            ? 'A'
                                                  : 0;
  if (!gen) {
    fprintf(stderr, "keygen: unknown --type '%s'\n", type);
    return 2;
  }
  char uid[UUID_STR_LEN], sid[UUID_STR_LEN];
  const char *given[2] = {uid_arg, sid_arg};
  char *ids[2] = {uid, sid};
  for (int k = 0; k < 2; k++) {
    if (!given[k]) {
      if (uuid_v4(ids[k]) < 0) {
        fprintf(stderr, "keygen: no randomness\n");
        return 1;
      }
      continue;
    }
    if (!uuid_valid(given[k])) {
      fprintf(stderr, "keygen: %s is not a UUID\n", k ? "--session-id" : "--user-id");
      return 2;
    }
    for (int j = 0; j < UUID_STR_LEN; j++)
      ids[k][j] = (char)tolower((unsigned char)given[k][j]);
  }

  json_t *root = json_object();
  char pub_hex[65];
  char *text = NULL;
  int rc = 1;
  if (root && build_keystore(type, uid, sid, root, pub_hex) == 0 &&
      (text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER))) {
    size_t len = strlen(text);
    text[len] = '\n'; /* json_dumps leaves no final newline; the NUL slot holds it */
    if (write_file(out, text, len + 1, 0600, !force) == 0) {
      printf("wrote %s (generation %c) user_id=%s session_id=%s%s%s\n", out, gen, uid,
             sid, pub_hex[0] ? " public_key=" : "", pub_hex);
      rc = 0;
    }
    OPENSSL_cleanse(text, len + 1);
  } else if (!text) {
    fprintf(stderr, "keygen: out of memory\n");
  }
  free(text);
  json_decref(root);
  return rc;
}

static void gentls_usage(FILE *f) {
  fprintf(f,
          "usage: blazebot-sim gen-tls --dir DIR [--cn NAME]\n"
          "  writes DIR/ca.pem, DIR/ca.key, DIR/server.pem, DIR/server.key: a test CA\n"
          "  and a server certificate for localhost, 127.0.0.1, ::1 and NAME\n");
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value) {
  X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
  int ok = ext && X509_add_ext(x, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok ? 0 : -1;
}

/* A certificate for key, signed by issuer/issuer_key (self-signed when
 * issuer is NULL), valid from an hour ago for 30 days. san NULL = a CA. */
static X509 *make_cert(EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const char *cn,
                       const char *san) {
  X509 *x = X509_new();
  BIGNUM *serial = BN_new();
  int ok = x && serial && X509_set_version(x, X509_VERSION_3) == 1 &&
           BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
           BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) &&
           X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
           X509_gmtime_adj(X509_getm_notAfter(x), 30L * 24 * 3600) &&
           X509_set_pubkey(x, key) == 1;
  X509_NAME *name = x ? X509_get_subject_name(x) : NULL;
  ok =
      ok &&
      X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                 (const unsigned char *)"blazebot-sim", -1, -1, 0) == 1 &&
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                 -1, 0) == 1 &&
      X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) == 1;
  if (ok) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    ok = add_ext(x, &ctx, NID_subject_key_identifier, "hash") == 0 &&
         add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") == 0;
    if (ok && !san)
      ok = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") == 0 &&
           add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") == 0;
    else if (ok)
      ok = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
           add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") == 0 &&
           add_ext(x, &ctx, NID_ext_key_usage, "serverAuth") == 0 &&
           add_ext(x, &ctx, NID_subject_alt_name, san) == 0;
    ok = ok && X509_sign(x, issuer_key, EVP_sha256()) > 0;
  }
  BN_free(serial);
  if (!ok) {
    X509_free(x);
    return NULL;
  }
  return x;
}

static int write_cert(const char *dir, const char *file, X509 *x) {
  char path[4096];
  BIO *bio = BIO_new(BIO_s_mem());
  char *data;
  long n;
  int rc = -1;
  if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) < sizeof path && bio &&
      PEM_write_bio_X509(bio, x) == 1 && (n = BIO_get_mem_data(bio, &data)) > 0)
    rc = write_file(path, data, (size_t)n, 0644, 0);
  BIO_free(bio);
  return rc;
}

static int write_key(const char *dir, const char *file, EVP_PKEY *key) {
  char path[4096];
  char *pem = key_pem(key, 0);
  int rc = -1;
  if (pem && (size_t)snprintf(path, sizeof path, "%s/%s", dir, file) < sizeof path)
    rc = write_file(path, pem, strlen(pem), 0600, 0);
  if (pem)
    OPENSSL_clear_free(pem, strlen(pem) + 1);
  return rc;
}

/* A host name or IP literal that is safe to put into a subjectAltName
 * config string (no commas or colons outside an IP literal). */
static int san_entry(const char *cn, char *out, size_t outlen) {
  unsigned char ip[16];
  if (inet_pton(AF_INET, cn, ip) == 1 || inet_pton(AF_INET6, cn, ip) == 1)
    return snprintf(out, outlen, ",IP:%s", cn) < (int)outlen ? 0 : -1;
  if (!*cn || strlen(cn) > 253)
    return -1;
  for (const char *p = cn; *p; p++) {
    if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
      return -1;
  }
  return snprintf(out, outlen, ",DNS:%s", cn) < (int)outlen ? 0 : -1;
}

int sim_gentls_main(int argc, char **argv) {
  const char *dir = NULL, *cn = "localhost";
  for (int i = 1; i < argc; i++) {
    int r;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      gentls_usage(stdout);
      return 0;
    }
    if ((r = opt(argc, argv, &i, "--dir", NULL, &dir)) ||
        (r = opt(argc, argv, &i, "--cn", NULL, &cn))) {
      if (r < 0) {
        fprintf(stderr, "gen-tls: %s needs a value\n", argv[i]);
        return 2;
      }
      continue;
    }
    fprintf(stderr, "gen-tls: unknown argument '%s'\n", argv[i]);
    gentls_usage(stderr);
    return 2;
  }
  if (!dir) {
    fprintf(stderr, "gen-tls: --dir DIR is required\n");
    gentls_usage(stderr);
    return 2;
  }
  char san[600] = "DNS:localhost,IP:127.0.0.1,IP:::1";
  if (strcmp(cn, "localhost") != 0 && strcmp(cn, "127.0.0.1") != 0 &&
      strcmp(cn, "::1") != 0 &&
      san_entry(cn, san + strlen(san), sizeof san - strlen(san))) {
    fprintf(stderr, "gen-tls: --cn must be a host name or an IP address\n");
    return 2;
  }
  if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
    fprintf(stderr, "gen-tls: cannot create %s: %s\n", dir, strerror(errno));
    return 1;
  }
  EVP_PKEY *ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  EVP_PKEY *srv_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  X509 *ca =
      ca_key ? make_cert(ca_key, NULL, ca_key, "blazebot-sim test CA", NULL) : NULL;
  X509 *srv = ca && srv_key ? make_cert(srv_key, ca, ca_key, cn, san) : NULL;
  int rc = 1;
  if (!srv) {
    fprintf(stderr, "gen-tls: certificate generation failed\n");
  } else if (write_key(dir, "ca.key", ca_key) == 0 &&
             write_cert(dir, "ca.pem", ca) == 0 &&
             write_key(dir, "server.key", srv_key) == 0 &&
             write_cert(dir, "server.pem", srv) == 0) {
    printf("wrote %s/ca.pem, ca.key, server.pem, server.key (CN=%s)\n", dir, cn);
    rc = 0;
  }
  ERR_clear_error();
  X509_free(srv);
  X509_free(ca);
  EVP_PKEY_free(srv_key);
  EVP_PKEY_free(ca_key);
  return rc;
}
