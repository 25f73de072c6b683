/* SPDX-License-Identifier: MIT */
/*
 * hello: an out-of-tree blazebot plugin, as a third party writes one. It
 * answers text messages that start with "hello" (any case) with
 * "Hello, <the rest>!" and lets every other message pass to the next
 * plugin. It includes only the installed SDK header and libc, and keeps no
 * state beyond the host's table.
 */
#include <stdlib.h>
#include <string.h>

#include <blazebot/plugin.h>

struct hello {
  blazebot_ctx *ctx;
  const struct blazebot_host *host;
};

static int is_space(int c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int hello_init(blazebot_ctx *ctx, const struct blazebot_host *host, void **state) {
  struct hello *h = malloc(sizeof *h);
  if (!h) {
    host->set_error(ctx, "out of memory");
    return -1;
  }
  h->ctx = ctx;
  h->host = host;
  *state = h;
  return 0;
}

static int hello_on_message(void *state, const struct blazebot_message *msg) {
  struct hello *h = state;
  const char *text = (const char *)msg->data, *rest, *end = text + msg->data_len;
  static const char word[] = "hello";
  size_t i, n;
  char *reply;
  int rc;

  for (i = 0; i < 5; i++)
    if (i >= msg->data_len || (text[i] | 0x20) != word[i])
      return BLAZEBOT_PASS;
  rest = text + 5;
  if (rest < end && !is_space((unsigned char)*rest) && *rest != ',')
    return BLAZEBOT_PASS; /* "helloworld" is not a greeting */
  while (rest < end && (is_space((unsigned char)*rest) || *rest == ','))
    rest++;
  while (end > rest && is_space((unsigned char)end[-1]))
    end--;
  if (rest == end) {
    rest = "world";
    end = rest + 5;
  }
  n = (size_t)(end - rest);
  if (!(reply = malloc(n + 9)))
    return BLAZEBOT_RETRY;
  memcpy(reply, "Hello, ", 7);
  memcpy(reply + 7, rest, n);
  reply[7 + n] = '!';
  rc = h->host->reply(h->ctx, msg, "PLAIN_TEXT", reply, n + 8, NULL);
  free(reply);
  return rc == 0 ? BLAZEBOT_HANDLED : BLAZEBOT_RETRY;
}

static void hello_shutdown(void *state) {
  free(state);
}

static const struct blazebot_subscription subs[] = {{"PLAIN_TEXT", 0, 0}, {NULL, 0, 0}};

BLAZEBOT_PLUGIN(.flags = BLAZEBOT_FLAG_UNLOAD_SAFE, .name = "hello", .version = "1.0",
                .description = "Says hello back", .subscriptions = subs,
                .init = hello_init, .on_message = hello_on_message,
                .shutdown = hello_shutdown);
