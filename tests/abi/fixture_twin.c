/* SPDX-License-Identifier: MIT */
/*
 * fixture_twin: built twice, into two different files, both of whose
 * descriptors are named "twin" (TWIN_VERSION tells the copies apart in the
 * log). Both load under two [plugin.*] sections: the descriptor's name is
 * the plugin's kind, the section names the instance (plugin API 1.1).
 */
#include <blazebot/plugin.h>

#ifndef TWIN_VERSION
#define TWIN_VERSION "a"
#endif

static int twin_init(blazebot_ctx *ctx, const struct blazebot_host *host, void **state) {
  (void)ctx;
  (void)host;
  *state = NULL;
  return 0;
}

static int twin_on_message(void *state, const struct blazebot_message *msg) {
  (void)state;
  (void)msg;
  return BLAZEBOT_PASS;
}

static void twin_shutdown(void *state) {
  (void)state;
}

static const struct blazebot_subscription subs[] = {{"PLAIN_TEXT", 0, 0}, {NULL, 0, 0}};

BLAZEBOT_PLUGIN(.flags = BLAZEBOT_FLAG_UNLOAD_SAFE, .name = "twin",
                .version = TWIN_VERSION, .subscriptions = subs, .init = twin_init,
                .on_message = twin_on_message, .shutdown = twin_shutdown);
