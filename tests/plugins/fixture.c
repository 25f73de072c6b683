/* SPDX-License-Identifier: MIT */
/*
 * fixture: plugins built wrong on purpose, so the tests can show that
 * BlazebotCheckPlugin.cmake catches each mistake: LEAK exports a second
 * symbol, NO_ENTRY forgets BLAZEBOT_PLUGIN, NEEDS_JANSSON links a library
 * that a first-party plugin must not need. Without any of them it is a
 * correct, do-nothing plugin.
 */
#include <blazebot/plugin.h>

#ifdef NEEDS_JANSSON
#include <jansson.h>
#endif

#ifdef LEAK
int fixture_leaked(void);
int fixture_leaked(void) {
  return 1;
}
#endif

#ifndef NO_ENTRY
static int fixture_init(blazebot_ctx *ctx, const struct blazebot_host *host,
                        void **state) {
#ifdef NEEDS_JANSSON
  json_decref(json_integer(1));
#endif
  *state = 0;
  return 0;
}

static int fixture_on_message(void *state, const struct blazebot_message *msg) {
  return BLAZEBOT_PASS;
}

static void fixture_shutdown(void *state) {}

static const struct blazebot_subscription subs[] = {{NULL, 0, 0}};

BLAZEBOT_PLUGIN(.name = "fixture", .subscriptions = subs, .init = fixture_init,
                .on_message = fixture_on_message, .shutdown = fixture_shutdown);
#else
typedef int fixture_has_no_entry; /* ISO C wants something in a file */
#endif
