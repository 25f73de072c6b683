/* SPDX-License-Identifier: MIT */
/*
 * fixture_newer_minor: a plugin built against a newer SDK of the same major
 * (abi_minor = BLAZEBOT_ABI_MINOR + 1). It may call host services this
 * daemon does not have, so the loader must refuse it and tell the operator
 * to upgrade the daemon. The descriptor is written out by hand because
 * BLAZEBOT_PLUGIN always stamps the SDK's own minor.
 */
#include <blazebot/plugin.h>

static int newer_init(blazebot_ctx *ctx, const struct blazebot_host *host, void **state) {
  (void)ctx;
  (void)host;
  *state = NULL;
  return 0;
}

static int newer_on_message(void *state, const struct blazebot_message *msg) {
  (void)state;
  (void)msg;
  return BLAZEBOT_PASS;
}

static void newer_shutdown(void *state) {
  (void)state;
}

static const struct blazebot_subscription subs[] = {{"*", 0, 0}, {NULL, 0, 0}};

static const struct blazebot_plugin desc = {
    .size = sizeof(struct blazebot_plugin),
    .abi_major = BLAZEBOT_ABI_MAJOR,
    .abi_minor = BLAZEBOT_ABI_MINOR + 1,
    .name = "newer",
    .subscriptions = subs,
    .init = newer_init,
    .on_message = newer_on_message,
    .shutdown = newer_shutdown,
};

BLAZEBOT_EXPORT const struct blazebot_plugin *blazebot_plugin_v1(void);

BLAZEBOT_EXPORT const struct blazebot_plugin *blazebot_plugin_v1(void) {
  return &desc;
}
