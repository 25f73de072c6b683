/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of keystore: files of all three generations, written here with
 * freshly generated keys, load into the right key and ids; group/other
 * permissions, missing fields, bad encodings, wrong lengths and broken JSON
 * are refused with a message that names the problem and never quotes the
 * key material.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base64.h"
#include "check.h"
#include "scratch.h"
#include "keystore.h"
#include "util.h"

static char tmpdir[512];

static void make_tmpdir(void) {
  CHECK(scratch_make("keystore", tmpdir, sizeof tmpdir) == 0);
}

static void write_text(const char *path, const char *text, mode_t mode) {
  unlink(path);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  CHECK(fd >= 0);
  if (fd < 0)
    return;
  CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
  CHECK(fchmod(fd, mode) == 0);
  close(fd);
}

static void write_json(const char *path, json_t *obj, mode_t mode) {
  char *s = json_dumps(obj, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  write_text(path, s, mode);
  free(s);
  json_decref(obj);
}

static const char uid_upper[] = "6A8F6E6F-2C5D-4B0F-9C6E-0C0B2D7F3A11";
static const char uid_lower[] = "6a8f6e6f-2c5d-4b0f-9c6e-0c0b2d7f3a11";
static const char sid[] = "e8e5b807-fa8b-455a-8dfa-b189d28310ff";

struct ed_key {
  unsigned char seed[32], pub[32];
  char seed_hex[65], full_hex[129], full_b64url[90], full_b64std[90];
};

static void ed_key_new(struct ed_key *k) {
  EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  size_t n = 32;
  CHECK(EVP_PKEY_get_raw_private_key(pk, k->seed, &n) == 1 && n == 32);
  n = 32;
  CHECK(EVP_PKEY_get_raw_public_key(pk, k->pub, &n) == 1 && n == 32);
  EVP_PKEY_free(pk);
  unsigned char full[64];
  memcpy(full, k->seed, 32);
  memcpy(full + 32, k->pub, 32);
  hex_encode(k->seed, 32, k->seed_hex);
  hex_encode(full, 64, k->full_hex);
  base64_encode(full, 64, 1, k->full_b64url);
  base64_encode(full, 64, 0, k->full_b64std);
}

/* 1 if the keystore's public key is the Ed25519 key pub. */
static int has_pub(const struct keystore *ks, const unsigned char pub[32]) {
  EVP_PKEY *p = keystore_public_key(ks);
  unsigned char got[32];
  size_t n = sizeof got;
  int ok = p && EVP_PKEY_get_raw_public_key(p, got, &n) == 1 && n == 32 &&
           memcmp(got, pub, 32) == 0;
  EVP_PKEY_free(p);
  return ok;
}

/* Loads path expecting failure; checks err mentions want and leaks none of
 * the secrets (NULL-terminated list). */
static void expect_fail(const char *path, int check_mode, const char *want,
                        const char *const *secrets) {
  struct keystore *ks = (struct keystore *)1;
  char err[512] = "";
  CHECK_INT(keystore_load(path, check_mode, &ks, err, sizeof err), -1);
  CHECK(ks == NULL);
  if (!strstr(err, want))
    fprintf(stderr, "  err \"%s\" lacks \"%s\"\n", err, want);
  CHECK(strstr(err, want) != NULL);
  CHECK(strstr(err, path) != NULL);
  for (; secrets && *secrets; secrets++) {
    char head[17];
    snprintf(head, sizeof head, "%s", *secrets);
    CHECK(strstr(err, head) == NULL);
  }
}

static json_t *gen_c(const char *seed_hex) {
  return json_pack("{s:s, s:s, s:s, s:s}", "app_id", uid_upper, "session_id", sid,
                   "server_public_key",
                   "0000000000000000000000000000000000000000000000000000000000000000",
                   "session_private_key", seed_hex);
}

static void test_generation_c(void) {
  struct ed_key k;
  ed_key_new(&k);
  char path[600], err[512] = "";
  snprintf(path, sizeof path, "%s/c.json", tmpdir);
  struct keystore *ks = NULL;

  write_json(path, gen_c(k.seed_hex), 0600);
  CHECK_INT(keystore_load(path, 1, &ks, err, sizeof err), 0);
  CHECK(ks != NULL);
  if (ks) {
    CHECK_INT(ks->generation, 'C');
    CHECK_INT(ks->alg, KEYSTORE_ED25519);
    CHECK_STR(ks->user_id, uid_lower);
    CHECK_STR(ks->session_id, sid);
    CHECK(EVP_PKEY_get_base_id(ks->pkey) == EVP_PKEY_ED25519);
    CHECK(has_pub(ks, k.pub));
    keystore_free(ks);
    ks = NULL;
  }

  /* 64 bytes (seed || public key) is tolerated. */
  write_json(path, gen_c(k.full_hex), 0600);
  CHECK_INT(keystore_load(path, 1, &ks, err, sizeof err), 0);
  CHECK(ks && has_pub(ks, k.pub));
  keystore_free(ks);
  ks = NULL;

  const char *secrets[] = {k.seed_hex, k.full_hex, NULL};
  /* ... but only if the halves belong together. */
  struct ed_key k2;
  ed_key_new(&k2);
  char mixed[129];
  memcpy(mixed, k.seed_hex, 64);
  memcpy(mixed + 64, k2.full_hex + 64, 65);
  write_json(path, gen_c(mixed), 0600);
  expect_fail(path, 1, "does not match", secrets);

  /* Permissions: group/other bits refused with the fix; 0600 fine. */
  write_json(path, gen_c(k.seed_hex), 0644);
  expect_fail(path, 1, "accessible by group or others (mode 0644)", secrets);
  char hint[700];
  snprintf(hint, sizeof hint, "run: chmod 600 %s", path);
  expect_fail(path, 1, hint, secrets);
  write_json(path, gen_c(k.seed_hex), 0640);
  expect_fail(path, 1, "(mode 0640)", secrets);
  CHECK_INT(keystore_load(path, 0, &ks, err, sizeof err), 0); /* check_mode off */
  keystore_free(ks);
  ks = NULL;

  /* Bad hex, wrong length. */
  char bad[65];
  memcpy(bad, k.seed_hex, 65);
  bad[10] = 'g';
  write_json(path, gen_c(bad), 0600);
  expect_fail(path, 1, "not valid hex", secrets);
  char shorter[63];
  memcpy(shorter, k.seed_hex, 62);
  shorter[62] = 0;
  write_json(path, gen_c(shorter), 0600);
  expect_fail(path, 1, "wrong length", secrets);

  /* Missing fields are named. */
  json_t *o = gen_c(k.seed_hex);
  json_object_del(o, "session_id");
  write_json(path, o, 0600);
  expect_fail(path, 1, "missing field \"session_id\"", secrets);
  o = gen_c(k.seed_hex);
  json_object_del(o, "app_id");
  write_json(path, o, 0600);
  expect_fail(path, 1, "missing field \"app_id\"", secrets);
  o = gen_c(k.seed_hex);
  json_object_del(o, "session_private_key");
  write_json(path, o, 0600);
  expect_fail(path, 1, "missing field \"session_private_key\"", secrets);
  o = gen_c(k.seed_hex);
  json_object_set_new(o, "app_id", json_string("not-a-uuid"));
  write_json(path, o, 0600);
  expect_fail(path, 1, "\"app_id\" is not a UUID", secrets);
  o = gen_c(k.seed_hex);
  json_object_set_new(o, "session_private_key", json_integer(5));
  write_json(path, o, 0600);
  expect_fail(path, 1, "not a string", secrets);

  /* Broken JSON, including a syntax error right at the key, whose text
   * jansson would otherwise quote. */
  write_text(path, "{\"app_id\": \"x\",\n  \"session_id\" \"y\"}", 0600);
  expect_fail(path, 1, "not valid JSON (line 2", secrets);
  char text[400];
  snprintf(text, sizeof text, "{\"app_id\": \"%s\",\n\"session_private_key\": %s}",
           uid_lower, k.seed_hex);
  write_text(path, text, 0600);
  expect_fail(path, 1, "not valid JSON (line 2", secrets);
  write_text(path, "[1, 2]", 0600);
  expect_fail(path, 1, "not a JSON object", secrets);
  write_text(path, "", 0600);
  expect_fail(path, 1, "not valid JSON", secrets);
  write_text(path, "{\"app_id\": \"a\"}", 0600);
  expect_fail(path, 1, "missing field \"session_private_key\"", secrets);
  unlink(path);

  /* Not there, not a file. */
  expect_fail(path, 1, "cannot open", NULL);
  expect_fail(tmpdir, 1, "not a regular file", NULL);
}

static json_t *gen_b(const char *priv) {
  return json_pack("{s:s, s:s, s:s, s:s, s:s}", "pin", "123456", "client_id", uid_upper,
                   "session_id", sid, "pin_token", "AAAA", "private_key", priv);
}

static void test_generation_b(void) {
  struct ed_key k;
  ed_key_new(&k);
  char path[600], err[512] = "";
  snprintf(path, sizeof path, "%s/b.json", tmpdir);
  struct keystore *ks = NULL;

  write_json(path, gen_b(k.full_b64url), 0600);
  CHECK_INT(keystore_load(path, 1, &ks, err, sizeof err), 0);
  CHECK(ks != NULL);
  if (ks) {
    CHECK_INT(ks->generation, 'B');
    CHECK_INT(ks->alg, KEYSTORE_ED25519);
    CHECK_STR(ks->user_id, uid_lower);
    CHECK_STR(ks->session_id, sid);
    CHECK(has_pub(ks, k.pub));
    keystore_free(ks);
    ks = NULL;
  }
  /* Standard alphabet with padding is tolerated. */
  write_json(path, gen_b(k.full_b64std), 0600);
  CHECK_INT(keystore_load(path, 1, &ks, err, sizeof err), 0);
  CHECK(ks && has_pub(ks, k.pub));
  keystore_free(ks);
  ks = NULL;

  const char *secrets[] = {k.full_b64url, k.full_b64std, k.seed_hex, NULL};
  /* A 32-byte key is the wrong length for this generation. */
  char b32[64];
  base64_encode(k.seed, 32, 1, b32);
  const char *secrets32[] = {b32, k.seed_hex, NULL};
  write_json(path, gen_b(b32), 0600);
  expect_fail(path, 1, "wrong length", secrets32);
  char bad[90];
  snprintf(bad, sizeof bad, "%s", k.full_b64url);
  bad[5] = '*';
  write_json(path, gen_b(bad), 0600);
  expect_fail(path, 1, "valid base64", secrets);
  json_t *o = gen_b(k.full_b64url);
  json_object_del(o, "client_id");
  write_json(path, o, 0600);
  expect_fail(path, 1, "missing field \"client_id\"", secrets);
  unlink(path);
}

static void test_generation_a(void) {
  EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
  BIO *bio = BIO_new(BIO_s_mem());
  CHECK(PEM_write_bio_PrivateKey_traditional(bio, rsa, NULL, NULL, 0, NULL, NULL) == 1);
  char *data;
  long n = BIO_get_mem_data(bio, &data);
  char *pem = strndup(data, (size_t)n);
  BIO_free(bio);
  CHECK(strstr(pem, "-----BEGIN RSA PRIVATE KEY-----") != NULL);

  char path[600], err[512] = "";
  snprintf(path, sizeof path, "%s/a.json", tmpdir);
  struct keystore *ks = NULL;
  write_json(path, gen_b(pem), 0600);
  CHECK_INT(keystore_load(path, 1, &ks, err, sizeof err), 0);
  CHECK(ks != NULL);
  if (ks) {
    CHECK_INT(ks->generation, 'A');
    CHECK_INT(ks->alg, KEYSTORE_RSA);
    CHECK_STR(ks->user_id, uid_lower);
    CHECK(EVP_PKEY_get_base_id(ks->pkey) == EVP_PKEY_RSA);
    EVP_PKEY *pub = keystore_public_key(ks);
    CHECK(pub && EVP_PKEY_eq(pub, rsa) == 1);
    EVP_PKEY_free(pub);
    keystore_free(ks);
    ks = NULL;
  }

  /* A damaged PEM body is refused without quoting it. */
  char *body = strchr(pem, '\n') + 1;
  char line1[40];
  snprintf(line1, sizeof line1, "%s", body);
  body[20] = '!';
  body[21] = '!';
  const char *secrets[] = {line1, NULL};
  write_json(path, gen_b(pem), 0600);
  expect_fail(path, 1, "not a readable", secrets);
  unlink(path);
  free(pem);
  EVP_PKEY_free(rsa);
}

/* Captures what keystore_load logs (warnings) into text. */
static int load_logged(const char *path, struct keystore **ks, char *text, size_t cap) {
  char logpath[600], err[512] = "";
  snprintf(logpath, sizeof logpath, "%s/log.txt", tmpdir);
  int fd = open(logpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
  int saved = dup(2);
  dup2(fd, 2);
  int rc = keystore_load(path, 1, ks, err, sizeof err);
  dup2(saved, 2);
  close(saved);
  ssize_t n = pread(fd, text, cap - 1, 0);
  text[n > 0 ? n : 0] = 0;
  close(fd);
  unlink(logpath);
  return rc;
}

/* Hostile files: huge, truncated, of the wrong type, reached through a
 * symbolic link, in a folder others may write to. */
static void test_hostile(void) {
  struct ed_key k;
  ed_key_new(&k);
  const char *secrets[] = {k.seed_hex, NULL};
  char path[600], sub[600], link_path[700], text[4096];
  snprintf(path, sizeof path, "%s/h.json", tmpdir);

  /* Huge: refused before it is read. */
  size_t big = 1u << 20;
  char *huge = malloc(big + 1);
  CHECK(huge != NULL);
  if (huge) {
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    huge[big] = 0;
    write_text(path, huge, 0600);
    expect_fail(path, 1, "is too large (over 65536 bytes)", NULL);
    free(huge);
  }

  /* Truncated anywhere: never loads, never quotes the key. */
  json_t *obj = gen_c(k.seed_hex);
  char *full = json_dumps(obj, JSON_INDENT(2));
  json_decref(obj);
  size_t n = strlen(full);
  for (size_t cut = 0; cut < n - 1; cut += 7) {
    char *part = strndup(full, cut);
    write_text(path, part, 0600);
    struct keystore *ks = (struct keystore *)1;
    char err[512] = "";
    CHECK_INT(keystore_load(path, 1, &ks, err, sizeof err), -1);
    CHECK(ks == NULL);
    CHECK(strstr(err, "not valid JSON") != NULL);
    char head[17];
    snprintf(head, sizeof head, "%s", k.seed_hex);
    CHECK(strstr(err, head) == NULL);
    free(part);
  }
  free(full);

  /* Not a regular file: a FIFO (opening it must not wait for a writer), a
   * character device, a folder. */
  unlink(path);
  CHECK(mkfifo(path, 0600) == 0);
  expect_fail(path, 1, "is not a regular file", NULL);
  unlink(path);
  expect_fail("/dev/zero", 1, "is not a regular file", NULL);
  expect_fail(tmpdir, 1, "is not a regular file", NULL);

  /* Wrong JSON types at the top. */
  write_text(path, "\"session_private_key\"", 0600);
  expect_fail(path, 1, "not valid JSON (line 1: '[' or '{' expected)", secrets);
  write_text(path, "null", 0600);
  expect_fail(path, 1, "not valid JSON (line 1: '[' or '{' expected)", secrets);

  /* A symbolic link: the checks apply to the file it reaches. */
  write_json(path, gen_c(k.seed_hex), 0644);
  snprintf(link_path, sizeof link_path, "%s/link.json", tmpdir);
  unlink(link_path);
  CHECK(symlink(path, link_path) == 0);
  expect_fail(link_path, 1, "accessible by group or others (mode 0644)", secrets);
  CHECK(chmod(path, 0600) == 0);
  struct keystore *ks = NULL;
  CHECK_INT(load_logged(link_path, &ks, text, sizeof text), 0);
  CHECK(ks && has_pub(ks, k.pub));
  keystore_free(ks);
  CHECK(strstr(text, "writable by group or others") == NULL);
  unlink(link_path);

  /* A folder others may write to: loaded, with a warning naming it. */
  snprintf(sub, sizeof sub, "%s/shared", tmpdir);
  CHECK(mkdir(sub, 0700) == 0);
  CHECK(chmod(sub, 0777) == 0);
  snprintf(link_path, sizeof link_path, "%s/ks.json", sub);
  write_json(link_path, gen_c(k.seed_hex), 0600);
  ks = NULL;
  CHECK_INT(load_logged(link_path, &ks, text, sizeof text), 0);
  CHECK(ks != NULL);
  keystore_free(ks);
  char want[800];
  snprintf(want, sizeof want, "its folder %s is writable by group or others (mode 0777)",
           sub);
  CHECK(strstr(text, want) != NULL);
  /* Sticky, like /tmp: others cannot rename over the file; no warning. */
  CHECK(chmod(sub, 01777) == 0);
  ks = NULL;
  CHECK_INT(load_logged(link_path, &ks, text, sizeof text), 0);
  keystore_free(ks);
  CHECK(strstr(text, "writable") == NULL);
  unlink(link_path);
  rmdir(sub);
  unlink(path);
}

/* The key lives in OpenSSL's secure heap (left out of core dumps). */
static void test_secure_heap(void) {
  struct ed_key k;
  ed_key_new(&k);
  char path[600], err[512] = "";
  snprintf(path, sizeof path, "%s/s.json", tmpdir);
  write_json(path, gen_c(k.seed_hex), 0600);
  struct keystore *ks = NULL;
  CHECK_INT(keystore_load(path, 1, &ks, err, sizeof err), 0);
  CHECK(CRYPTO_secure_malloc_initialized() == 1);
  size_t used = CRYPTO_secure_used();
  CHECK(used >= 32);
  keystore_free(ks);
  CHECK(CRYPTO_secure_used() < used);
  unlink(path);
}

int main(void) {
  make_tmpdir();
  test_generation_c();
  test_generation_b();
  test_generation_a();
  test_hostile();
  test_secure_heap();
  scratch_remove(tmpdir);
  return check_done("keystore");
}
