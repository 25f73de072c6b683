/* SPDX-License-Identifier: MIT */
/*
 * fixture_v2: a plugin from the future, built for ABI major 2. By default it
 * exports only blazebot_plugin_v2, as a real major-2 plugin would (the major
 * is part of the symbol name); the loader must recognise that symbol and
 * name the major instead of calling the plugin. With V1_ENTRY the same
 * descriptor (abi_major = 2) is exported under the v1 name, which the loader
 * must refuse by the descriptor's field. Neither is ever initialised.
 */
#include <blazebot/plugin.h>

static int v2_init(blazebot_ctx *ctx, const struct blazebot_host *host, void **state) {
  (void)ctx;
  (void)host;
  (void)state;
  return -1;
}

static int v2_on_message(void *state, const struct blazebot_message *msg) {
  (void)state;
  (void)msg;
  return BLAZEBOT_ERROR;
}

static void v2_shutdown(void *state) {
  (void)state;
}

static const struct blazebot_subscription subs[] = {{"*", 0, 0}, {NULL, 0, 0}};

static const struct blazebot_plugin desc = {
    .size = sizeof(struct blazebot_plugin),
    .abi_major = 2,
    .abi_minor = 0,
    .name = "future",
    .subscriptions = subs,
    .init = v2_init,
    .on_message = v2_on_message,
    .shutdown = v2_shutdown,
};

#ifdef V1_ENTRY
#define ENTRY blazebot_plugin_v1
#else
#define ENTRY blazebot_plugin_v2
#endif

BLAZEBOT_EXPORT const struct blazebot_plugin *ENTRY(void);

BLAZEBOT_EXPORT const struct blazebot_plugin *ENTRY(void) {
  return &desc;
}
