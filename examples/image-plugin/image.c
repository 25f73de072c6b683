/* SPDX-License-Identifier: MIT */
/*
 * image: an out-of-tree blazebot plugin that answers a command ("/image")
 * with a picture. At init it reads one PNG or JPEG file named in its ini
 * section and keeps the bytes, its size and its width and height (from the
 * PNG's IHDR chunk or the JPEG's frame header). A command is answered with
 * a PLAIN_IMAGE message: the first time the bytes are uploaded with
 * host->upload (ABI minor 1) under a hold on the message, and the reply goes
 * out when the upload is done; the attachment id is then reused for
 * attachment_ttl_s seconds, so later commands are answered at once. Commands
 * arriving while an upload runs wait for that upload. When it fails, the
 * plugin says so in a short text. It includes only the installed SDK header
 * and libc.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blazebot/plugin.h>

#define IMAGE_MAX_LEN (16u << 20) /* the largest attachment upload takes */
#define DEFAULT_COMMAND "/image"
#define DEFAULT_FAILURE_TEXT "Sorry, the image could not be sent."
#define DEFAULT_TTL_S 86400
#define MAX_TTL_S 2592000 /* 30 days */
#define COMMAND_MAX_LEN 64

/* A command waiting for the upload: the hold keeps msg valid. */
struct waiter {
  struct waiter *next;
  const struct blazebot_message *msg;
  blazebot_hold *hold;
};

struct image {
  blazebot_ctx *ctx;
  const struct blazebot_host *host;
  char *command, *failure_text;
  unsigned char *bytes; /* the file, read once at init */
  size_t len;
  const char *mime_type;
  unsigned long width, height;
  int64_t ttl_ms;         /* how long an attachment id is reused; 0 = never */
  char attachment_id[64]; /* the last upload's, "" when none is cached */
  int64_t uploaded_at;    /* monotonic ms of that upload */
  int uploading;          /* an upload runs: new commands wait for it */
  struct waiter *waiters, **tail;
};

static int is_space(int c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int lower(int c) {
  return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static char *dup_str(const char *s) {
  char *p = malloc(strlen(s) + 1);
  if (p)
    strcpy(p, s);
  return p;
}

/* ---- the picture's format and size ------------------------------------------------ */

static unsigned long be16(const unsigned char *p) {
  return (unsigned long)p[0] << 8 | p[1];
}

static unsigned long be32(const unsigned char *p) {
  return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 |
         (unsigned long)p[2] << 8 | p[3];
}

/* A PNG starts with its signature and the IHDR chunk: length 13, "IHDR",
 * width and height (4 bytes each, big-endian, 1 to 2^31 - 1). */
static int png_size(const unsigned char *p, size_t n, unsigned long *w,
                    unsigned long *h) {
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n < 33 || memcmp(p, sig, 8) != 0 || be32(p + 8) != 13 ||
      memcmp(p + 12, "IHDR", 4) != 0)
    return -1;
  *w = be32(p + 16);
  *h = be32(p + 20);
  return *w && *h && *w <= 0x7fffffff && *h <= 0x7fffffff ? 0 : -1;
}

/* A JPEG is SOI (FF D8) and then segments, each a marker (FF xx) and, for
 * most, a 2-byte length that counts itself. The first frame header (SOF0
 * to SOF15 except DHT C4, JPG C8 and DAC CC) holds precision, height, width. */
static int jpeg_size(const unsigned char *p, size_t n, unsigned long *w,
                     unsigned long *h) {
  size_t i = 2;
  if (n < 4 || p[0] != 0xFF || p[1] != 0xD8)
    return -1;
  while (i < n) {
    unsigned m;
    size_t len;
    if (p[i] != 0xFF)
      return -1;
    while (i < n && p[i] == 0xFF) /* fill bytes */
      i++;
    if (i >= n)
      return -1;
    m = p[i++];
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD8))
      continue; /* no length */
    if (m == 0xD9 || m == 0xDA || i + 2 > n)
      return -1; /* the image ends or its data starts before a frame header */
    len = be16(p + i);
    if (len < 2 || len > n - i)
      return -1;
    if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
      if (len < 7)
        return -1;
      *h = be16(p + i + 3);
      *w = be16(p + i + 5);
      return *w && *h ? 0 : -1;
    }
    i += len;
  }
  return -1;
}

/* Reads path whole (at most IMAGE_MAX_LEN bytes). Returns 0, or -1 with
 * *why set (errno's text, or "larger than 16 MiB"). */
static int read_file(const char *path, unsigned char **out, size_t *len,
                     const char **why) {
  FILE *f = fopen(path, "rb");
  unsigned char *buf = NULL;
  size_t cap = 0, n = 0;
  if (!f) {
    *why = strerror(errno);
    return -1;
  }
  for (;;) {
    size_t got;
    if (n == cap) {
      size_t next = cap ? 2 * cap : 64 * 1024;
      unsigned char *p;
      if (next > IMAGE_MAX_LEN + 1)
        next = IMAGE_MAX_LEN + 1;
      if (!(p = realloc(buf, next))) {
        *why = "out of memory";
        goto fail;
      }
      buf = p;
      cap = next;
    }
    errno = 0;
    got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (n > IMAGE_MAX_LEN) {
      *why = "larger than 16 MiB";
      goto fail;
    }
    if (got == 0) {
      if (ferror(f)) {
        *why = errno ? strerror(errno) : "read error";
        goto fail;
      }
      break;
    }
  }
  fclose(f);
  *out = buf;
  *len = n;
  return 0;
fail:
  fclose(f);
  free(buf);
  return -1;
}

/* ---- answering ----------------------------------------------------------------------
 */

/* Whether msg is the command: its trimmed text is the command (any case),
 * alone or followed by a space and anything. */
static int is_command(const struct image *im, const struct blazebot_message *msg) {
  const char *t = (const char *)msg->data, *end = t + msg->data_len;
  size_t n = strlen(im->command), i;
  while (t < end && is_space((unsigned char)*t))
    t++;
  while (end > t && is_space((unsigned char)end[-1]))
    end--;
  if ((size_t)(end - t) < n)
    return 0;
  for (i = 0; i < n; i++)
    if (lower((unsigned char)t[i]) != lower((unsigned char)im->command[i]))
      return 0;
  return t + n == end || is_space((unsigned char)t[n]);
}

/* Replies to msg with the picture as attachment id. Returns 0/-1. */
static int reply_image(struct image *im, const struct blazebot_message *msg,
                       const char *id) {
  char json[256];
  int n = snprintf(json, sizeof json,
                   "{\"attachment_id\":\"%s\",\"mime_type\":\"%s\",\"width\":%lu,"
                   "\"height\":%lu,\"size\":%lu}",
                   id, im->mime_type, im->width, im->height, (unsigned long)im->len);
  if (n < 0 || (size_t)n >= sizeof json)
    return -1;
  return im->host->reply(im->ctx, msg, "PLAIN_IMAGE", json, (size_t)n, NULL);
}

static int reply_failure(struct image *im, const struct blazebot_message *msg) {
  return im->host->reply(im->ctx, msg, "PLAIN_TEXT", im->failure_text,
                         strlen(im->failure_text), NULL);
}

/* An attachment id as the server makes them: a UUID, so letters, digits
 * and '-' (nothing to escape in JSON). */
static int valid_id(const char *id) {
  size_t n = 0;
  for (; id[n]; n++)
    if (!(id[n] == '-' || (id[n] >= '0' && id[n] <= '9') ||
          (lower((unsigned char)id[n]) >= 'a' && lower((unsigned char)id[n]) <= 'z')))
      return 0;
  return n > 0 && n < 64;
}

/* The upload is done: every waiting command gets the picture (or the
 * failure text), and its hold goes: HANDLED, or RETRY when the reply could
 * not be queued (the next attempt finds the id in the cache). */
static void on_uploaded(void *state, void *arg, const struct blazebot_upload_result *r) {
  struct image *im = state;
  struct waiter *w = im->waiters, *next;
  int ok = r->ok && valid_id(r->attachment_id);
  (void)arg;
  im->uploading = 0;
  im->waiters = NULL;
  im->tail = &im->waiters;
  if (ok) {
    im->host->log(im->ctx, BLAZEBOT_LOG_INFO, "uploaded %lu bytes as attachment %s",
                  (unsigned long)im->len, r->attachment_id);
    if (im->ttl_ms > 0) {
      strcpy(im->attachment_id, r->attachment_id);
      im->uploaded_at = im->host->now_ms(im->ctx, BLAZEBOT_CLOCK_MONOTONIC);
    }
  } else {
    im->host->log(im->ctx, BLAZEBOT_LOG_WARN, "upload failed: %s (HTTP %d, error %d)",
                  r->ok ? "an attachment id that is not a UUID" : r->error,
                  (int)r->http_status, (int)r->error_code);
  }
  for (; w; w = next) {
    int rc = ok ? reply_image(im, w->msg, r->attachment_id) : reply_failure(im, w->msg);
    next = w->next;
    if (rc != 0)
      im->host->log(im->ctx, BLAZEBOT_LOG_WARN, "reply to %s not queued, will retry",
                    w->msg->message_id);
    im->host->release(im->ctx, w->hold, rc == 0 ? BLAZEBOT_HANDLED : BLAZEBOT_RETRY);
    free(w);
  }
}

static int image_on_message(void *state, const struct blazebot_message *msg) {
  struct image *im = state;
  const struct blazebot_host *host = im->host;
  const char *self = host->bot_id(im->ctx);
  struct waiter *w;
  int64_t now;

  if ((self && strcmp(msg->user_id, self) == 0) || !is_command(im, msg))
    return BLAZEBOT_PASS;

  now = host->now_ms(im->ctx, BLAZEBOT_CLOCK_MONOTONIC);
  if (im->attachment_id[0] && now - im->uploaded_at < im->ttl_ms) {
    /* Uploaded already: the same attachment again. */
    if (reply_image(im, msg, im->attachment_id) == 0)
      return BLAZEBOT_HANDLED;
    host->log(im->ctx, BLAZEBOT_LOG_WARN, "reply to %s not queued, will retry",
              msg->message_id);
    return BLAZEBOT_RETRY;
  }
  im->attachment_id[0] = '\0';

  /* Wait for an upload, under a hold; start it unless one runs. */
  if (!(w = calloc(1, sizeof *w)) || !(w->hold = host->hold(im->ctx, msg))) {
    free(w);
    host->log(im->ctx, BLAZEBOT_LOG_WARN, "no hold on %s, will retry", msg->message_id);
    return BLAZEBOT_RETRY;
  }
  w->msg = msg;
  if (!im->uploading) {
    if (host->upload(im->ctx, im->bytes, im->len, im->mime_type, 0, on_uploaded, NULL) !=
        0) {
      int rc = reply_failure(im, msg);
      host->log(im->ctx, BLAZEBOT_LOG_WARN, "upload of %lu bytes refused by the host",
                (unsigned long)im->len);
      host->release(im->ctx, w->hold, BLAZEBOT_PASS);
      free(w);
      return rc == 0 ? BLAZEBOT_HANDLED : BLAZEBOT_RETRY;
    }
    im->uploading = 1;
  }
  *im->tail = w;
  im->tail = &w->next;
  return BLAZEBOT_HANDLED;
}

/* ---- lifecycle ------------------------------------------------------------------------
 */

static void image_shutdown(void *state) {
  struct image *im = state;
  struct waiter *w, *next;
  if (!im)
    return;
  /* The host released any hold left (as RETRY): only the memory remains. */
  for (w = im->waiters; w; w = next) {
    next = w->next;
    free(w);
  }
  free(im->command);
  free(im->failure_text);
  free(im->bytes);
  free(im);
}

static int image_init(blazebot_ctx *ctx, const struct blazebot_host *host, void **state) {
  struct image *im;
  const char *command, *failure, *file, *why;
  int64_t ttl_s;
  size_t i;

  if (!BLAZEBOT_HOST_HAS(host, upload) || !BLAZEBOT_HOST_HAS(host, hold) ||
      !BLAZEBOT_HOST_HAS(host, release) || !BLAZEBOT_HOST_HAS(host, now_ms)) {
    host->set_error(ctx,
                    "needs a daemon with the upload service (blazebot 0.2, ABI 1.1)");
    return -1;
  }
  command = host->config_get(ctx, "command");
  if (!command)
    command = DEFAULT_COMMAND;
  for (i = 0; command[i] && !is_space((unsigned char)command[i]); i++)
    ;
  if (!command[0] || command[i] || i > COMMAND_MAX_LEN) {
    host->set_error(ctx, "command = %s: one word of 1 to %d characters, like /image",
                    command, COMMAND_MAX_LEN);
    return -1;
  }
  failure = host->config_get(ctx, "failure_text");
  if (!failure)
    failure = DEFAULT_FAILURE_TEXT;
  if (!failure[0]) {
    host->set_error(ctx, "failure_text is empty");
    return -1;
  }
  if (host->config_int(ctx, "attachment_ttl_s", DEFAULT_TTL_S, &ttl_s) != 0 ||
      ttl_s < 0 || ttl_s > MAX_TTL_S) {
    host->set_error(ctx, "attachment_ttl_s: a number of seconds from 0 to %d", MAX_TTL_S);
    return -1;
  }
  file = host->config_get(ctx, "file");
  if (!file || !file[0]) {
    host->set_error(ctx,
                    "file is missing: name the PNG or JPEG to send (file = cat.png)");
    return -1;
  }

  if (!(im = calloc(1, sizeof *im)) || !(im->command = dup_str(command)) ||
      !(im->failure_text = dup_str(failure))) {
    image_shutdown(im);
    host->set_error(ctx, "out of memory");
    return -1;
  }
  im->ctx = ctx;
  im->host = host;
  im->ttl_ms = ttl_s * 1000;
  im->tail = &im->waiters;
  if (read_file(file, &im->bytes, &im->len, &why) != 0) {
    host->set_error(ctx, "file = %s: %s", file, why);
    image_shutdown(im);
    return -1;
  }
  if (im->len == 0) {
    host->set_error(ctx, "file = %s: the file is empty", file);
    image_shutdown(im);
    return -1;
  }
  if (png_size(im->bytes, im->len, &im->width, &im->height) == 0) {
    im->mime_type = "image/png";
  } else if (jpeg_size(im->bytes, im->len, &im->width, &im->height) == 0) {
    im->mime_type = "image/jpeg";
  } else {
    host->set_error(ctx, "file = %s: not a PNG or JPEG image (or no width and height)",
                    file);
    image_shutdown(im);
    return -1;
  }
  host->log(ctx, BLAZEBOT_LOG_INFO, "%s answers with %s (%s, %lux%lu, %lu bytes)",
            im->command, file, im->mime_type, im->width, im->height,
            (unsigned long)im->len);
  *state = im;
  return 0;
}

/* Above commands (priority 100), which may answer unknown commands. */
static const struct blazebot_subscription subs[] = {{"PLAIN_TEXT", 200, 0}, {NULL, 0, 0}};

BLAZEBOT_PLUGIN(.flags = BLAZEBOT_FLAG_UNLOAD_SAFE, .name = "image", .version = "1.0",
                .description = "Answers a command with a picture", .subscriptions = subs,
                .init = image_init, .on_message = image_on_message,
                .shutdown = image_shutdown);
