/* SPDX-License-Identifier: MIT */
/*
 * echo: replies to every PLAIN_TEXT message with the same text, in the same
 * conversation. Built only against the SDK header, like any third-party
 * plugin, and the smallest complete example of one.
 *
 * ini keys of [plugin.echo]: `prefix` (prepended to the reply, default "";
 * the ini parser trims spaces, so write `prefix = "echo: "` to keep one: a
 * pair of surrounding double quotes is removed) and `max_len` (bytes of the incoming text
 * echoed at most, default 4096; longer texts are cut at a UTF-8 character boundary).
 * Empty texts and the bot's own messages are not echoed. The plugin always passes the
 * message on; when the host cannot queue the reply (a full outbox) it asks for the
 * message again later instead.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <blazebot/plugin.h>

#define ECHO_MAX_LEN_LIMIT (64 * 1024) /* far above what Mixin accepts in one text */

struct echo {
  blazebot_ctx *ctx;
  const struct blazebot_host *host;
  char *prefix;
  size_t prefix_len;
  size_t max_len;
  char *buf; /* prefix_len + max_len bytes, reused for every reply */
};

/* The length of the longest prefix of s[0..len) that is at most max bytes
 * and does not end inside a UTF-8 sequence. */
static size_t utf8_cut(const uint8_t *s, size_t len, size_t max) {
  size_t n;
  if (len <= max)
    return len;
  n = max;
  /* s[n] is the first byte left out; step back while it continues a
   * sequence that started before it. At most 3 steps in valid UTF-8. */
  while (n > 0 && max - n < 4 && (s[n] & 0xC0) == 0x80)
    n--;
  return max - n < 4 ? n : max;
}

static void echo_free(struct echo *e) {
  if (e) {
    free(e->prefix);
    free(e->buf);
    free(e);
  }
}

static int echo_init(blazebot_ctx *ctx, const struct blazebot_host *host, void **state) {
  struct echo *e = calloc(1, sizeof *e);
  const char *prefix;
  int64_t max_len;
  if (!e) {
    host->set_error(ctx, "out of memory");
    return -1;
  }
  e->ctx = ctx;
  e->host = host;
  prefix = host->config_get(ctx, "prefix");
  e->prefix_len = prefix ? strlen(prefix) : 0;
  if (e->prefix_len >= 2 && prefix[0] == '"' && prefix[e->prefix_len - 1] == '"') {
    prefix++;
    e->prefix_len -= 2;
  }
  if (host->config_int(ctx, "max_len", 4096, &max_len) != 0 || max_len < 1 ||
      max_len > ECHO_MAX_LEN_LIMIT) {
    host->set_error(ctx, "max_len must be an integer from 1 to %d", ECHO_MAX_LEN_LIMIT);
    echo_free(e);
    return -1;
  }
  e->max_len = (size_t)max_len;
  e->prefix = malloc(e->prefix_len + 1);
  e->buf = malloc(e->prefix_len + e->max_len);
  if (!e->prefix || !e->buf) {
    host->set_error(ctx, "out of memory");
    echo_free(e);
    return -1;
  }
  if (e->prefix_len)
    memcpy(e->prefix, prefix, e->prefix_len);
  e->prefix[e->prefix_len] = '\0';
  memcpy(e->buf, e->prefix, e->prefix_len);
  *state = e;
  return 0;
}

static int echo_on_message(void *state, const struct blazebot_message *msg) {
  struct echo *e = state;
  const char *self = e->host->bot_id(e->ctx);
  size_t n;
  /* Never answer ourselves: a receipt of our own reply would loop. */
  if ((self && strcmp(msg->user_id, self) == 0) ||
      strcmp(msg->source, "ACKNOWLEDGE_MESSAGE_RECEIPT") == 0)
    return BLAZEBOT_PASS;
  n = utf8_cut(msg->data, msg->data_len, e->max_len);
  if (n == 0)
    return BLAZEBOT_PASS;
  memcpy(e->buf + e->prefix_len, msg->data, n);
  if (e->host->reply(e->ctx, msg, "PLAIN_TEXT", e->buf, e->prefix_len + n, NULL) != 0) {
    e->host->log(e->ctx, BLAZEBOT_LOG_WARN, "reply to %s not queued, will retry",
                 msg->message_id);
    return BLAZEBOT_RETRY;
  }
  return BLAZEBOT_PASS;
}

static void echo_shutdown(void *state) {
  echo_free(state);
}

static const struct blazebot_subscription subs[] = {{"PLAIN_TEXT", 0, 0}, {NULL, 0, 0}};

BLAZEBOT_PLUGIN(.flags = BLAZEBOT_FLAG_UNLOAD_SAFE, .name = "echo", .version = "1.0",
                .description = "Replies to every text with the same text",
                .subscriptions = subs, .init = echo_init, .on_message = echo_on_message,
                .shutdown = echo_shutdown);
