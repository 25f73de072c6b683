/* SPDX-License-Identifier: MIT */
/*
 * fixture_no_on_message: a descriptor without its required on_message
 * callback. The loader must name the missing callback and never call init,
 * which would abort the test if it were called.
 */
#include <stdlib.h>

#include <blazebot/plugin.h>

static int nomsg_init(blazebot_ctx *ctx, const struct blazebot_host *host, void **state) {
  (void)ctx;
  (void)host;
  (void)state;
  abort(); /* never reached: the descriptor is refused before init */
}

static void nomsg_shutdown(void *state) {
  (void)state;
}

static const struct blazebot_subscription subs[] = {{"*", 0, 0}, {NULL, 0, 0}};

BLAZEBOT_PLUGIN(.name = "nomsg", .subscriptions = subs, .init = nomsg_init,
                .shutdown = nomsg_shutdown);
