/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the simulator's keygen and gen-tls tools: every keystore
 * type they write loads with keystore_load (permission check on) and signs
 * a token that verifies; the TLS files chain to their CA for localhost and
 * 127.0.0.1 as a TLS client would check them; usage errors exit with 2.
 */
#include <ftw.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "check.h"
#include "scratch.h"
#include "keygen.h"
#include "keystore.h"

static char tmpdir[512];

static void make_tmpdir(void) {
  CHECK(scratch_make("keygen", tmpdir, sizeof tmpdir) == 0);
}

static int run(int (*fn)(int, char **), char **argv) {
  int argc = 0;
  while (argv[argc])
    argc++;
  return fn(argc, argv);
}

#define RUN(fn, ...) run(fn, (char *[]){__VA_ARGS__, NULL})

static int mode_of(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

static void check_keystore(const char *path, int generation, int alg, const char *uid) {
  struct keystore *ks = NULL;
  char err[512] = "";
  CHECK_INT(mode_of(path), 0600);
  CHECK_INT(keystore_load(path, 1, &ks, err, sizeof err), 0);
  if (!ks) {
    fprintf(stderr, "  %s\n", err);
    return;
  }
  CHECK_INT(ks->generation, generation);
  CHECK_INT(ks->alg, alg);
  if (uid)
    CHECK_STR(ks->user_id, uid);
  char *tok = NULL;
  struct auth_claims c;
  EVP_PKEY *pub = keystore_public_key(ks);
  CHECK_INT(auth_sign(ks, "GET", "/", "", 0, 60, NULL, &tok), 0);
  CHECK_INT(auth_verify(pub, tok, &c, err, sizeof err), 0);
  CHECK_STR(c.uid, ks->user_id);
  CHECK_STR(c.sid, ks->session_id);
  free(tok);
  EVP_PKEY_free(pub);
  keystore_free(ks);
}

static void test_keygen(void) {
  char c[600], b[600], a[600];
  snprintf(c, sizeof c, "%s/c.json", tmpdir);
  snprintf(b, sizeof b, "%s/b.json", tmpdir);
  snprintf(a, sizeof a, "%s/a.json", tmpdir);

  CHECK_INT(RUN(sim_keygen_main, "keygen", "-o", c), 0);
  check_keystore(c, 'C', KEYSTORE_ED25519, NULL);
  CHECK_INT(RUN(sim_keygen_main, "keygen", "--type", "ed25519-legacy", "--user-id",
                "6A8F6E6F-2C5D-4B0F-9C6E-0C0B2D7F3A11", "--session-id",
                "e8e5b807-fa8b-455a-8dfa-b189d28310ff", "--output", b),
            0);
  check_keystore(b, 'B', KEYSTORE_ED25519, "6a8f6e6f-2c5d-4b0f-9c6e-0c0b2d7f3a11");
  CHECK_INT(RUN(sim_keygen_main, "keygen", "--type=rsa", "-o", a), 0);
  check_keystore(a, 'A', KEYSTORE_RSA, NULL);

  /* An existing identity is not overwritten unless asked. */
  CHECK_INT(RUN(sim_keygen_main, "keygen", "-o", c), 1);
  CHECK_INT(chmod(c, 0644), 0);
  CHECK_INT(
      RUN(sim_keygen_main, "keygen", "--force", "--type", "ed25519-legacy", "-o", c), 0);
  check_keystore(c, 'B', KEYSTORE_ED25519, NULL);

  CHECK_INT(RUN(sim_keygen_main, "keygen"), 2);
  CHECK_INT(RUN(sim_keygen_main, "keygen", "--type", "dsa", "-o", c), 2);
  CHECK_INT(RUN(sim_keygen_main, "keygen", "--user-id", "nope", "-o", c), 2);
  CHECK_INT(RUN(sim_keygen_main, "keygen", "--what", "-o", c), 2);
  CHECK_INT(RUN(sim_keygen_main, "keygen", "-o"), 2);
}

static X509 *read_cert(const char *dir, const char *name) {
  char path[700];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "r");
  X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
  if (f)
    fclose(f);
  return x;
}

static EVP_PKEY *read_key(const char *dir, const char *name) {
  char path[700];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  CHECK_INT(mode_of(path), 0600);
  FILE *f = fopen(path, "r");
  EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
  if (f)
    fclose(f);
  return k;
}

/* 1 if leaf chains to ca and matches host (or ip when host is NULL). */
static int verifies(X509 *ca, X509 *leaf, const char *host, const char *ip) {
  X509_STORE *store = X509_STORE_new();
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  int ok = X509_STORE_add_cert(store, ca) == 1 &&
           X509_STORE_CTX_init(ctx, store, leaf, NULL) == 1;
  if (ok) {
    X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_purpose(vp, X509_PURPOSE_SSL_SERVER);
    if (host)
      X509_VERIFY_PARAM_set1_host(vp, host, 0);
    if (ip)
      X509_VERIFY_PARAM_set1_ip_asc(vp, ip);
    ok = X509_verify_cert(ctx) == 1;
  }
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return ok;
}

static void test_gentls(void) {
  char dir[600];
  snprintf(dir, sizeof dir, "%s/tls", tmpdir);
  CHECK_INT(RUN(sim_gentls_main, "gen-tls", "--dir", dir), 0);
  X509 *ca = read_cert(dir, "ca.pem"), *srv = read_cert(dir, "server.pem");
  EVP_PKEY *ca_key = read_key(dir, "ca.key"), *srv_key = read_key(dir, "server.key");
  CHECK(ca && srv && ca_key && srv_key);
  if (ca && srv && ca_key && srv_key) {
    CHECK(X509_check_ca(ca) >= 1);
    CHECK(X509_check_ca(srv) == 0);
    CHECK(X509_check_private_key(ca, ca_key) == 1);
    CHECK(X509_check_private_key(srv, srv_key) == 1);
    CHECK(verifies(ca, srv, "localhost", NULL));
    CHECK(verifies(ca, srv, NULL, "127.0.0.1"));
    CHECK(verifies(ca, srv, NULL, "::1"));
    CHECK(!verifies(ca, srv, "example.com", NULL));
    CHECK(!verifies(ca, srv, NULL, "10.0.0.1"));
    /* Valid now, not for a year. */
    CHECK(X509_cmp_current_time(X509_get0_notBefore(srv)) < 0);
    time_t later = time(NULL) + 29 * 24 * 3600, too_late = time(NULL) + 31 * 24 * 3600;
    CHECK(X509_cmp_time(X509_get0_notAfter(srv), &later) > 0);
    CHECK(X509_cmp_time(X509_get0_notAfter(srv), &too_late) < 0);
  }
  X509_free(ca);
  X509_free(srv);
  EVP_PKEY_free(ca_key);
  EVP_PKEY_free(srv_key);

  /* A custom name is added to the SAN (and the defaults stay). */
  snprintf(dir, sizeof dir, "%s/tls2", tmpdir);
  CHECK_INT(RUN(sim_gentls_main, "gen-tls", "--dir", dir, "--cn", "sim.test"), 0);
  ca = read_cert(dir, "ca.pem");
  srv = read_cert(dir, "server.pem");
  CHECK(ca && srv && verifies(ca, srv, "sim.test", NULL) &&
        verifies(ca, srv, "localhost", NULL));
  X509_free(ca);
  X509_free(srv);

  CHECK_INT(RUN(sim_gentls_main, "gen-tls"), 2);
  CHECK_INT(RUN(sim_gentls_main, "gen-tls", "--dir", dir, "--cn", "a,DNS:evil"), 2);
}

int main(void) {
  make_tmpdir();
  test_keygen();
  test_gentls();
  scratch_remove(tmpdir);
  return check_done("keygen");
}
