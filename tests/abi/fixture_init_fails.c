/* SPDX-License-Identifier: MIT */
/*
 * fixture_init_fails: a plugin whose init refuses to start, as one would
 * when its database is down: it calls host->set_error with the reason and
 * returns -1, and the operator must see that exact reason. With NO_REASON it
 * fails without calling set_error. Its shutdown must never run (init did not
 * succeed), so shutdown aborts.
 */
#include <stdlib.h>

#include <blazebot/plugin.h>

static int failing_init(blazebot_ctx *ctx, const struct blazebot_host *host,
                        void **state) {
  *state = NULL;
#ifndef NO_REASON
  host->set_error(ctx, "database unreachable");
#else
  (void)ctx;
  (void)host;
#endif
  return -1;
}

static int failing_on_message(void *state, const struct blazebot_message *msg) {
  (void)state;
  (void)msg;
  return BLAZEBOT_PASS;
}

static void failing_shutdown(void *state) {
  (void)state;
  abort(); /* never reached: shutdown only follows a successful init */
}

static const struct blazebot_subscription subs[] = {{"*", 0, 0}, {NULL, 0, 0}};

BLAZEBOT_PLUGIN(.name = "failing", .subscriptions = subs, .init = failing_init,
                .on_message = failing_on_message, .shutdown = failing_shutdown);
