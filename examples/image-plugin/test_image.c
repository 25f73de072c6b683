/* SPDX-License-Identifier: MIT */
/*
 * test_image: unit tests of the image plugin without the daemon, through the
 * SDK's fake host (blazebot/testing.h), whose upload service records every
 * upload and answers it as the test scripts. image.c is compiled into this
 * program, so blazebot_plugin_v1() is its descriptor. Run it in this folder
 * (it sends cat.png, a relative path) or give the picture's path:
 *   ./test_image [path/to/cat.png]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blazebot/testing.h>

const struct blazebot_plugin *blazebot_plugin_v1(void);

static int failures, checks;

#define CHECK(cond)                                                                      \
  do {                                                                                   \
    checks++;                                                                            \
    if (!(cond)) {                                                                       \
      failures++;                                                                        \
      printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                             \
    }                                                                                    \
  } while (0)

static const char *cat = "cat.png"; /* 32 x 24 */
static unsigned char cat_bytes[4096];
static size_t cat_len;

/* The number after "key": in json, or -1. */
static long json_num(const char *json, const char *key) {
  char pat[64];
  const char *p;
  snprintf(pat, sizeof pat, "\"%s\":", key);
  p = json ? strstr(json, pat) : NULL;
  return p ? strtol(p + strlen(pat), NULL, 10) : -1;
}

/* The string after "key": in json (at most n - 1 bytes), or "". */
static const char *json_str(const char *json, const char *key, char *out, size_t n) {
  char pat[64];
  const char *p, *end;
  snprintf(pat, sizeof pat, "\"%s\":\"", key);
  out[0] = '\0';
  if (json && (p = strstr(json, pat)) != NULL) {
    p += strlen(pat);
    if ((end = strchr(p, '"')) != NULL && (size_t)(end - p) < n) {
      memcpy(out, p, (size_t)(end - p));
      out[end - p] = '\0';
    }
  }
  return out;
}

/* Upload i's attachment id, "" when it failed or there is none. */
static const char *upload_id(const struct blazebot_test_host *th, size_t i) {
  const struct blazebot_test_upload *u = blazebot_test_upload(th, i);
  return u && u->ok ? u->attachment_id : "";
}

/* The message reply i is tied to, "" when there is no reply i. */
static const char *tied_to(const struct blazebot_test_host *th, size_t i) {
  const struct blazebot_test_sent *s = blazebot_test_reply(th, i);
  return s ? s->tied_to : "";
}

/* The text of reply i, "" when there is none. */
static const char *text_of(const struct blazebot_test_host *th, size_t i) {
  const char *t = blazebot_test_reply_text(th, i);
  return t ? t : "";
}

static int write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  int ok = f && fwrite(data, 1, len, f) == len;
  if (f && fclose(f) != 0)
    ok = 0;
  return ok ? 0 : -1;
}

/* Loads the plugin with file = path and, when key is not NULL, key = value. */
static int load(struct blazebot_test_host *th, const char *path, const char *key,
                const char *value) {
  blazebot_test_init(th);
  if (path)
    blazebot_test_set_config(th, "file", path);
  if (key)
    blazebot_test_set_config(th, key, value);
  return blazebot_test_load(th, blazebot_plugin_v1());
}

static int deliver(struct blazebot_test_host *th, const char *text, char *id) {
  struct blazebot_message *m = blazebot_test_message(th, "PLAIN_TEXT", text);
  if (id)
    snprintf(id, BLAZEBOT_ID_LEN, "%s", m->message_id);
  return blazebot_test_deliver(th, m);
}

/* Reply i is the picture as attachment id (of the given type and size). */
static void check_image(const struct blazebot_test_host *th, size_t i, const char *id,
                        const char *mime, long w, long h, long size) {
  const struct blazebot_test_sent *s = blazebot_test_reply(th, i);
  char got[64];
  CHECK(s != NULL);
  if (!s)
    return;
  CHECK(strcmp(s->category, "PLAIN_IMAGE") == 0);
  CHECK(s->is_reply);
  CHECK(strcmp(json_str(s->data, "attachment_id", got, sizeof got), id) == 0);
  CHECK(strcmp(json_str(s->data, "mime_type", got, sizeof got), mime) == 0);
  CHECK(json_num(s->data, "width") == w);
  CHECK(json_num(s->data, "height") == h);
  CHECK(json_num(s->data, "size") == size);
}

/* The first command uploads the file under a hold and replies when the
 * upload is done; the next ones reuse the attachment, until the TTL. */
static void test_send(void) {
  struct blazebot_test_host th;
  const struct blazebot_test_upload *u;
  const struct blazebot_test_delivery *d;
  char id[BLAZEBOT_ID_LEN], first[64], line[BLAZEBOT_TEST_LOG_LEN];
  int result = 0;
  CHECK(load(&th, cat, "attachment_ttl_s", "60") == 0);
  snprintf(line, sizeof line, "/image answers with %s (image/png, 32x24, %lu bytes)", cat,
           (unsigned long)cat_len);
  CHECK(blazebot_test_log_contains(&th, line));
  CHECK(deliver(&th, "/image", id) == BLAZEBOT_HANDLED);
  CHECK(blazebot_test_upload_count(&th) == 1);
  u = blazebot_test_upload(&th, 0);
  CHECK(u != NULL);
  if (!u) {
    blazebot_test_unload(&th);
    return;
  }
  CHECK(u->len == cat_len && memcmp(u->data, cat_bytes, cat_len) == 0);
  CHECK(strcmp(u->mime_type, "image/png") == 0);
  CHECK(u->ok);
  snprintf(first, sizeof first, "%s", u->attachment_id);
  CHECK(blazebot_test_reply_count(&th) == 1);
  check_image(&th, 0, first, "image/png", 32, 24, (long)cat_len);
  CHECK(strcmp(tied_to(&th, 0), id) == 0);
  CHECK(blazebot_test_outcome(&th, id, &result) == 1 && result == BLAZEBOT_HANDLED);
  d = blazebot_test_find_delivery(&th, id);
  CHECK(d && d->taken == 1);

  /* Again, with any case and words after it: the same attachment, at once. */
  CHECK(blazebot_test_fire_timers(&th, 59999) == 0);
  CHECK(deliver(&th, "  /IMAGE please ", id) == BLAZEBOT_HANDLED);
  CHECK(blazebot_test_upload_count(&th) == 1);
  check_image(&th, 1, first, "image/png", 32, 24, (long)cat_len);
  d = blazebot_test_find_delivery(&th, id);
  CHECK(d && d->taken == 0);

  /* 60 s later: uploaded anew. */
  CHECK(blazebot_test_fire_timers(&th, 1) == 0);
  CHECK(deliver(&th, "/image", id) == BLAZEBOT_HANDLED);
  CHECK(blazebot_test_upload_count(&th) == 2);
  u = blazebot_test_upload(&th, 1);
  CHECK(u && strcmp(u->attachment_id, first) != 0);
  if (u)
    check_image(&th, 2, u->attachment_id, "image/png", 32, 24, (long)cat_len);
  CHECK(th.violations == 0);
  blazebot_test_unload(&th);
}

/* A failed upload: a short text, HANDLED, nothing cached. */
static void test_failure(void) {
  struct blazebot_test_host th;
  const struct blazebot_test_sent *s;
  char id[BLAZEBOT_ID_LEN];
  int result = 0;
  CHECK(load(&th, cat, NULL, NULL) == 0);
  blazebot_test_upload_script_fail(&th, 403, 403, "the upload was refused", 0);
  CHECK(deliver(&th, "/image", id) == BLAZEBOT_HANDLED);
  s = blazebot_test_reply(&th, 0);
  CHECK(s && strcmp(s->category, "PLAIN_TEXT") == 0 &&
        strcmp(s->data, "Sorry, the image could not be sent.") == 0);
  CHECK(blazebot_test_outcome(&th, id, &result) == 1 && result == BLAZEBOT_HANDLED);
  CHECK(blazebot_test_log_contains(&th, "upload failed: the upload was refused"));
  /* The next command tries again, and succeeds. */
  CHECK(deliver(&th, "/image", id) == BLAZEBOT_HANDLED);
  CHECK(blazebot_test_upload_count(&th) == 2);
  CHECK(upload_id(&th, 1)[0] != '\0');
  check_image(&th, 1, upload_id(&th, 1), "image/png", 32, 24, (long)cat_len);
  /* Too slow: no answer before the deadline, and the configured text. */
  blazebot_test_unload(&th);
  CHECK(load(&th, cat, "failure_text", "No cat today.") == 0);
  blazebot_test_upload_script_ok(&th, NULL, 30000);
  CHECK(deliver(&th, "/image", id) == BLAZEBOT_HANDLED);
  CHECK(blazebot_test_reply_count(&th) == 0);
  CHECK(blazebot_test_fire_timers(&th, BLAZEBOT_TEST_UPLOAD_TIMEOUT_MS) == 1);
  CHECK(strcmp(text_of(&th, 0), "No cat today.") == 0);
  CHECK(th.violations == 0);
  blazebot_test_unload(&th);
}

/* Commands during an upload wait for it: one upload, every one answered. */
static void test_waiting(void) {
  struct blazebot_test_host th;
  char a[BLAZEBOT_ID_LEN], b[BLAZEBOT_ID_LEN];
  int result = 0;
  CHECK(load(&th, cat, NULL, NULL) == 0);
  blazebot_test_upload_default_ok(&th, 500);
  CHECK(deliver(&th, "/image", a) == BLAZEBOT_HANDLED);
  CHECK(deliver(&th, "/image", b) == BLAZEBOT_HANDLED);
  CHECK(blazebot_test_upload_count(&th) == 1);
  CHECK(blazebot_test_hold_count(&th) == 2);
  CHECK(blazebot_test_reply_count(&th) == 0);
  CHECK(blazebot_test_fire_timers(&th, 500) == 1);
  CHECK(blazebot_test_reply_count(&th) == 2);
  check_image(&th, 0, upload_id(&th, 0), "image/png", 32, 24, (long)cat_len);
  check_image(&th, 1, upload_id(&th, 0), "image/png", 32, 24, (long)cat_len);
  CHECK(strcmp(tied_to(&th, 0), a) == 0);
  CHECK(strcmp(tied_to(&th, 1), b) == 0);
  CHECK(blazebot_test_outcome(&th, b, &result) == 1 && result == BLAZEBOT_HANDLED);

  /* Stopping during an upload: the plugin hears "the daemon is stopping"
   * before its shutdown and says it could not send the picture. */
  blazebot_test_unload(&th);
  CHECK(load(&th, cat, "attachment_ttl_s", "0") == 0);
  CHECK(deliver(&th, "/image", a) == BLAZEBOT_HANDLED);
  blazebot_test_upload_default_ok(&th, 1000);
  CHECK(deliver(&th, "/image", b) == BLAZEBOT_HANDLED); /* ttl 0: uploaded again */
  CHECK(blazebot_test_upload_count(&th) == 2);
  blazebot_test_unload(&th);
  CHECK(blazebot_test_outcome(&th, b, &result) == 1 && result == BLAZEBOT_HANDLED);
  CHECK(blazebot_test_log_contains(&th, "upload failed: the daemon is stopping"));
  CHECK(th.violations == 0);
}

/* Other texts, and the bot's own messages, go on to the next plugin. */
static void test_pass(void) {
  static const char *const texts[] = {"hello",    "/imagex", "",
                                      "x /image", "/imag",   "image"};
  struct blazebot_test_host th;
  struct blazebot_message *m;
  size_t i;
  CHECK(load(&th, cat, NULL, NULL) == 0);
  for (i = 0; i < sizeof texts / sizeof texts[0]; i++)
    CHECK(deliver(&th, texts[i], NULL) == BLAZEBOT_PASS);
  m = blazebot_test_message(&th, "PLAIN_TEXT", "/image");
  m->user_id = BLAZEBOT_TEST_BOT_ID;
  CHECK(blazebot_test_deliver(&th, m) == BLAZEBOT_PASS);
  CHECK(blazebot_test_reply_count(&th) == 0);
  CHECK(blazebot_test_upload_count(&th) == 0);
  blazebot_test_unload(&th);
  /* Another command. */
  CHECK(load(&th, cat, "command", "/cat") == 0);
  CHECK(deliver(&th, "/image", NULL) == BLAZEBOT_PASS);
  CHECK(deliver(&th, "/cat", NULL) == BLAZEBOT_HANDLED);
  CHECK(blazebot_test_reply_count(&th) == 1);
  CHECK(th.violations == 0);
  blazebot_test_unload(&th);
}

/* A JPEG: the size comes from its frame header (SOF0). */
static void test_jpeg(void) {
  static const unsigned char jpeg[] = {
      0xFF, 0xD8,                                                       /* SOI */
      0xFF, 0xE0, 0x00, 0x10, 'J',  'F',  'I',  'F',  0x00, 0x01, 0x01, /* APP0 */
      0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0xC0, 0x00, /* SOF0 */
      0x0B, 0x08, 0x00, 0x30, 0x00, 0x40, 0x01, 0x01, 0x11, 0x00, 0xFF, 0xD9};
  struct blazebot_test_host th;
  const struct blazebot_test_upload *u;
  const char *dir;
  char path[BLAZEBOT_TEST_PATH_LEN + 16];
  blazebot_test_init(&th);
  dir = blazebot_test_state_dir(&th);
  CHECK(dir != NULL);
  if (!dir)
    return;
  snprintf(path, sizeof path, "%s/photo.jpg", dir);
  CHECK(write_file(path, jpeg, sizeof jpeg) == 0);
  blazebot_test_set_config(&th, "file", path); /* an absolute path */
  CHECK(blazebot_test_load(&th, blazebot_plugin_v1()) == 0);
  CHECK(deliver(&th, "/image", NULL) == BLAZEBOT_HANDLED);
  CHECK(blazebot_test_upload_count(&th) == 1);
  u = blazebot_test_upload(&th, 0);
  CHECK(u && strcmp(u->mime_type, "image/jpeg") == 0 && u->len == sizeof jpeg);
  check_image(&th, 0, upload_id(&th, 0), "image/jpeg", 64, 48, (long)sizeof jpeg);
  blazebot_test_unload(&th);
}

/* init refuses, with a reason, what it cannot send. */
static void refused(const char *file, const char *content, long len, const char *key,
                    const char *value, const char *why) {
  struct blazebot_test_host th;
  char path[BLAZEBOT_TEST_PATH_LEN + 16];
  blazebot_test_init(&th);
  if (content) {
    const char *dir = blazebot_test_state_dir(&th);
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", file);
    file = path;
    f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
      if (len > 0) { /* len bytes: sparse, a byte at the end */
        fseek(f, len - 1, SEEK_SET);
        fputc(0, f);
      } else {
        fputs(content, f);
      }
      fclose(f);
    }
  }
  if (file)
    blazebot_test_set_config(&th, "file", file);
  if (key)
    blazebot_test_set_config(&th, key, value);
  CHECK(blazebot_test_load(&th, blazebot_plugin_v1()) != 0);
  if (!th.has_error || !strstr(th.error, why)) {
    printf("FAIL: the error \"%s\" does not say \"%s\"\n", th.error, why);
    failures++;
  }
  blazebot_test_unload(&th);
}

static void test_refused(void) {
  refused(NULL, NULL, 0, NULL, NULL, "file is missing");
  refused("no-such-cat.png", NULL, 0, NULL, NULL, "file = no-such-cat.png: ");
  refused("cat.txt", "meow", 0, NULL, NULL, "not a PNG or JPEG image");
  refused("empty.png", "", 0, NULL, NULL, "the file is empty");
  refused("huge.png", "", 16L * 1024 * 1024 + 1, NULL, NULL, "larger than 16 MiB");
  refused(cat, NULL, 0, "attachment_ttl_s", "-1", "attachment_ttl_s");
  refused(cat, NULL, 0, "attachment_ttl_s", "soon", "attachment_ttl_s");
  refused(cat, NULL, 0, "command", "two words", "command = two words");
  refused(cat, NULL, 0, "command", "", "command = ");
  refused(cat, NULL, 0, "failure_text", "", "failure_text is empty");
}

int main(int argc, char **argv) {
  FILE *f;
  if (argc > 1)
    cat = argv[1];
  if (!(f = fopen(cat, "rb"))) {
    printf("FAIL: cannot open %s (run in the example's folder, or give its path)\n", cat);
    return 1;
  }
  cat_len = fread(cat_bytes, 1, sizeof cat_bytes, f);
  fclose(f);
  test_send();
  test_failure();
  test_waiting();
  test_pass();
  test_jpeg();
  test_refused();
  printf("test_image: %s (%d checks, %d failed)\n", failures ? "FAILED" : "ok", checks,
         failures);
  return failures != 0;
}
