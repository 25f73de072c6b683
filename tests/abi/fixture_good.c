/* SPDX-License-Identifier: MIT */
/*
 * fixture_good: a correct, do-nothing plugin named "good". The refusal tests
 * use it wherever the file itself is fine and the fault lies in how it is
 * installed (file or folder permissions, a symbolic link, a path that leaves
 * plugin_dir), and as the healthy neighbour that still loads next to a
 * refused plugin.
 */
#include <blazebot/plugin.h>

static int good_init(blazebot_ctx *ctx, const struct blazebot_host *host, void **state) {
  (void)ctx;
  (void)host;
  *state = NULL;
  return 0;
}

static int good_on_message(void *state, const struct blazebot_message *msg) {
  (void)state;
  (void)msg;
  return BLAZEBOT_PASS;
}

static void good_shutdown(void *state) {
  (void)state;
}

static const struct blazebot_subscription subs[] = {{"PLAIN_TEXT", 0, 0}, {NULL, 0, 0}};

BLAZEBOT_PLUGIN(.flags = BLAZEBOT_FLAG_UNLOAD_SAFE, .name = "good", .version = "1.0",
                .subscriptions = subs, .init = good_init, .on_message = good_on_message,
                .shutdown = good_shutdown);
