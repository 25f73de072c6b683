/* SPDX-License-Identifier: MIT */
/*
 * reloadtest: the plugin the reload tests swap under load. One source, built
 * several ways (compile definitions):
 *   RT_VERSION "v1"/"v2"  the reply is "<prefix><RT_VERSION>: <text>"
 *   RT_NAME               the descriptor name (default "reloadtest")
 *   RT_FAIL_INIT          init refuses, with a reason
 *   RT_ABI_V2             exports blazebot_plugin_v2 only (another ABI major)
 *   RT_NO_ENTRY           exports no entry symbol at all
 * The text "count?" is answered with "<RT_VERSION> count=N": N messages
 * handled, including those the previous generation handed over through
 * save_state/state_get. ini keys: prefix (re-read by reconfigure), tick_ms
 * (a repeating timer that the host must cancel on reload), delay_ms (sleep
 * in every on_message, to test the quiesce deadline).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <blazebot/plugin.h>

#ifndef RT_VERSION
#define RT_VERSION "v1"
#endif
#ifndef RT_NAME
#define RT_NAME "reloadtest"
#endif

struct rt {
  blazebot_ctx *ctx;
  const struct blazebot_host *host;
  char prefix[64];
  uint64_t count;
  uint64_t ticks;
  int64_t delay_ms;
};

static void read_config(struct rt *r) {
  const char *p = r->host->config_get(r->ctx, "prefix");
  snprintf(r->prefix, sizeof r->prefix, "%s", p ? p : "");
  r->host->config_int(r->ctx, "delay_ms", 0, &r->delay_ms);
}

static void on_tick(void *state, void *arg) {
  struct rt *r = state;
  (void)arg;
  r->ticks++;
}

static int rt_init(blazebot_ctx *ctx, const struct blazebot_host *host, void **state) {
  struct rt *r = calloc(1, sizeof *r);
  const void *blob;
  size_t len;
  int64_t tick_ms;
  if (!r) {
    host->set_error(ctx, "out of memory");
    return -1;
  }
  r->ctx = ctx;
  r->host = host;
  read_config(r);
  if (host->state_get(ctx, &blob, &len) == 0 && len == sizeof r->count)
    memcpy(&r->count, blob, sizeof r->count);
#ifdef RT_FAIL_INIT
  free(r);
  host->set_error(ctx, "refusing to start on purpose (test build)");
  return -1;
#endif
  host->config_int(ctx, "tick_ms", 0, &tick_ms);
  if (tick_ms > 0)
    host->timer_add(ctx, (uint32_t)tick_ms, (uint32_t)tick_ms, on_tick, NULL, NULL);
  *state = r;
  return 0;
}

static int rt_on_message(void *state, const struct blazebot_message *msg) {
  struct rt *r = state;
  char out[512];
  int n;
  if (!msg->data_len || strcmp(msg->user_id, r->host->bot_id(r->ctx)) == 0)
    return BLAZEBOT_PASS;
  if (r->delay_ms > 0) {
    struct timespec ts = {(time_t)(r->delay_ms / 1000),
                          (long)(r->delay_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }
  r->count++;
  if (strcmp((const char *)msg->data, "count?") == 0)
    n = snprintf(out, sizeof out, "%s count=%llu", RT_VERSION,
                 (unsigned long long)r->count);
  else
    n = snprintf(out, sizeof out, "%s%s: %.*s", r->prefix, RT_VERSION, (int)msg->data_len,
                 (const char *)msg->data);
  if (n < 0 || (size_t)n >= sizeof out)
    n = (int)sizeof out - 1;
  if (r->host->reply(r->ctx, msg, "PLAIN_TEXT", out, (size_t)n, NULL) < 0)
    return BLAZEBOT_RETRY;
  return BLAZEBOT_PASS;
}

static void rt_shutdown(void *state) {
  free(state);
}

static int rt_reconfigure(void *state) {
  read_config(state);
  return 0;
}

static int rt_save_state(void *state) {
  struct rt *r = state;
  return r->host->state_put(r->ctx, &r->count, sizeof r->count);
}

static const struct blazebot_subscription subs[] = {{"PLAIN_TEXT", 0, 0}, {NULL, 0, 0}};

#if defined(RT_ABI_V2)
static const struct blazebot_plugin desc_v2 = {.size = sizeof(struct blazebot_plugin),
                                               .abi_major = 2,
                                               .abi_minor = 0,
                                               .name = RT_NAME,
                                               .version = RT_VERSION,
                                               .subscriptions = subs,
                                               .init = rt_init,
                                               .on_message = rt_on_message,
                                               .shutdown = rt_shutdown};
BLAZEBOT_EXPORT const struct blazebot_plugin *blazebot_plugin_v2(void);
BLAZEBOT_EXPORT const struct blazebot_plugin *blazebot_plugin_v2(void) {
  return &desc_v2;
}
#elif defined(RT_NO_ENTRY)
const struct blazebot_plugin *rt_unused(void);
const struct blazebot_plugin *rt_unused(void) {
  static const struct blazebot_plugin d = {.size = sizeof d,
                                           .name = RT_NAME,
                                           .subscriptions = subs,
                                           .init = rt_init,
                                           .on_message = rt_on_message,
                                           .shutdown = rt_shutdown};
  return &d;
}
#else
BLAZEBOT_PLUGIN(.name = RT_NAME, .version = RT_VERSION,
                .description = "reload test plugin", .flags = BLAZEBOT_FLAG_UNLOAD_SAFE,
                .subscriptions = subs, .init = rt_init, .on_message = rt_on_message,
                .shutdown = rt_shutdown, .reconfigure = rt_reconfigure,
                .save_state = rt_save_state);
#endif
