/* SPDX-License-Identifier: MIT */
/*
 * The "never break a compiled plugin" guard. Every struct of
 * blazebot/plugin.h that crosses the plugin boundary is pinned here, field by
 * field: its type (everywhere) and its offset and size (on the LP64 targets we
 * ship, x86_64 and aarch64), together with every constant a plugin compiles
 * in. A change that moves, retypes or renumbers anything a built plugin relies
 * on fails to compile this file. Adding a field at the end of a struct in a
 * new minor is the one allowed change: it adds pins here, it never edits them.
 * The runtime part checks BLAZEBOT_HOST_HAS against short and sparse host
 * tables and the descriptor the BLAZEBOT_PLUGIN macro fills in.
 */
#include <blazebot/plugin.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

/* ---- constants ------------------------------------------------------------ */

_Static_assert(BLAZEBOT_ABI_MAJOR == 1, "the ABI major is part of the entry symbol");
/* Bumping the minor means new fields were appended: pin them below, then
 * update this line. */
_Static_assert(BLAZEBOT_ABI_MINOR == 1, "new minor: add pins for the new fields");

_Static_assert(BLAZEBOT_PASS == 0, "return code");
_Static_assert(BLAZEBOT_HANDLED == 1, "return code");
_Static_assert(BLAZEBOT_RETRY == 2, "return code");
_Static_assert(BLAZEBOT_ERROR == -1, "return code");

_Static_assert(BLAZEBOT_LOG_ERROR == 0, "log level");
_Static_assert(BLAZEBOT_LOG_WARN == 1, "log level");
_Static_assert(BLAZEBOT_LOG_INFO == 2, "log level");
_Static_assert(BLAZEBOT_LOG_DEBUG == 3, "log level");

_Static_assert(BLAZEBOT_FLAG_UNLOAD_SAFE == 0x1u, "descriptor flag");
_Static_assert(BLAZEBOT_SEND_SILENT == 0x1u, "send flag");
_Static_assert(BLAZEBOT_ID_LEN == 37, "36 characters and a NUL");
/* Minor 1. */
_Static_assert(BLAZEBOT_FLAG_RETRY_FOREVER == 0x2u, "descriptor flag");
_Static_assert(BLAZEBOT_SEND_ACCEPTED == 0, "send result");
_Static_assert(BLAZEBOT_SEND_REFUSED == 1, "send result");
_Static_assert(BLAZEBOT_SEND_GAVE_UP == 2, "send result");
_Static_assert(BLAZEBOT_CLOCK_MONOTONIC == 0, "clock");
_Static_assert(BLAZEBOT_CLOCK_WALL == 1, "clock");
_Static_assert(sizeof BLAZEBOT_ENTRY_SYMBOL == sizeof "blazebot_plugin_v1",
               "entry symbol name");

/* ---- field types (every platform) -------------------------------------------- */

/* 1 when member m of struct s has exactly type t (after lvalue conversion). */
#define HAS_TYPE(s, m, t) _Generic(((struct s *)0)->m, t : 1, default : 0)
#define PIN_TYPE(s, m, t) _Static_assert(HAS_TYPE(s, m, t), #s "." #m " is " #t)

typedef const char *cstr;

PIN_TYPE(blazebot_message, size, uint32_t);
PIN_TYPE(blazebot_message, attempt, uint32_t);
PIN_TYPE(blazebot_message, message_id, cstr);
PIN_TYPE(blazebot_message, conversation_id, cstr);
PIN_TYPE(blazebot_message, user_id, cstr);
PIN_TYPE(blazebot_message, representative_id, cstr);
PIN_TYPE(blazebot_message, quote_message_id, cstr);
PIN_TYPE(blazebot_message, session_id, cstr);
PIN_TYPE(blazebot_message, category, cstr);
PIN_TYPE(blazebot_message, source, cstr);
PIN_TYPE(blazebot_message, status, cstr);
PIN_TYPE(blazebot_message, created_at, cstr);
PIN_TYPE(blazebot_message, updated_at, cstr);
PIN_TYPE(blazebot_message, data, const uint8_t *);
PIN_TYPE(blazebot_message, data_len, size_t);
PIN_TYPE(blazebot_message, raw_json, cstr);
PIN_TYPE(blazebot_message, raw_json_len, size_t);

PIN_TYPE(blazebot_outgoing, size, uint32_t);
PIN_TYPE(blazebot_outgoing, flags, uint32_t);
PIN_TYPE(blazebot_outgoing, conversation_id, cstr);
PIN_TYPE(blazebot_outgoing, recipient_id, cstr);
PIN_TYPE(blazebot_outgoing, category, cstr);
PIN_TYPE(blazebot_outgoing, data, const void *);
PIN_TYPE(blazebot_outgoing, data_len, size_t);
PIN_TYPE(blazebot_outgoing, message_id, cstr);
PIN_TYPE(blazebot_outgoing, quote_message_id, cstr);
PIN_TYPE(blazebot_outgoing, representative_id, cstr);

typedef void (*log_fn)(blazebot_ctx *, int, const char *, ...);
typedef const char *(*config_get_fn)(blazebot_ctx *, const char *);
typedef int (*config_int_fn)(blazebot_ctx *, const char *, int64_t, int64_t *);
typedef int (*config_bool_fn)(blazebot_ctx *, const char *, int, int *);
typedef int (*reply_fn)(blazebot_ctx *, const struct blazebot_message *, const char *,
                        const void *, size_t, char *);
typedef int (*send_fn)(blazebot_ctx *, const struct blazebot_outgoing *, char *);
typedef int (*uuid_fn)(blazebot_ctx *, char *);
typedef int (*unique_conv_fn)(blazebot_ctx *, const char *, const char *, char *);
typedef const char *(*bot_id_fn)(blazebot_ctx *);
typedef int (*timer_add_fn)(blazebot_ctx *, uint32_t, uint32_t, blazebot_timer_fn, void *,
                            uint64_t *);
typedef int (*timer_cancel_fn)(blazebot_ctx *, uint64_t);
typedef int (*run_blocking_fn)(blazebot_ctx *, blazebot_work_fn, blazebot_done_fn,
                               void *);
typedef void (*set_error_fn)(blazebot_ctx *, const char *, ...);
typedef int (*state_put_fn)(blazebot_ctx *, const void *, size_t);
typedef int (*state_get_fn)(blazebot_ctx *, const void **, size_t *);

_Static_assert(_Generic((blazebot_timer_fn)0, void (*)(void *, void *) : 1, default : 0),
               "blazebot_timer_fn");
_Static_assert(_Generic((blazebot_work_fn)0, void (*)(void *) : 1, default : 0),
               "blazebot_work_fn");
_Static_assert(_Generic((blazebot_done_fn)0, void (*)(void *, void *) : 1, default : 0),
               "blazebot_done_fn");

PIN_TYPE(blazebot_host, size, uint32_t);
PIN_TYPE(blazebot_host, abi_minor, uint32_t);
PIN_TYPE(blazebot_host, log, log_fn);
PIN_TYPE(blazebot_host, config_get, config_get_fn);
PIN_TYPE(blazebot_host, config_int, config_int_fn);
PIN_TYPE(blazebot_host, config_bool, config_bool_fn);
PIN_TYPE(blazebot_host, reply, reply_fn);
PIN_TYPE(blazebot_host, send, send_fn);
PIN_TYPE(blazebot_host, uuid, uuid_fn);
PIN_TYPE(blazebot_host, unique_conversation_id, unique_conv_fn);
PIN_TYPE(blazebot_host, bot_id, bot_id_fn);
PIN_TYPE(blazebot_host, timer_add, timer_add_fn);
PIN_TYPE(blazebot_host, timer_cancel, timer_cancel_fn);
PIN_TYPE(blazebot_host, run_blocking, run_blocking_fn);
PIN_TYPE(blazebot_host, set_error, set_error_fn);
PIN_TYPE(blazebot_host, state_put, state_put_fn);
PIN_TYPE(blazebot_host, state_get, state_get_fn);
/* Minor 1. */
typedef int (*api_request_fn)(blazebot_ctx *, const char *, const char *, const void *,
                              size_t, uint32_t, blazebot_api_fn, void *);
typedef int (*send_result_fn)(blazebot_ctx *, const struct blazebot_outgoing *,
                              blazebot_send_fn, void *, char *);
typedef blazebot_hold *(*hold_fn)(blazebot_ctx *, const struct blazebot_message *);
typedef int (*release_fn)(blazebot_ctx *, blazebot_hold *, int);
typedef int64_t (*now_ms_fn)(blazebot_ctx *, int);
typedef int (*timer_at_fn)(blazebot_ctx *, int64_t, blazebot_timer_fn, void *,
                           uint64_t *);
typedef const char *(*name_fn)(blazebot_ctx *);
typedef int (*upload_fn)(blazebot_ctx *, const void *, size_t, const char *, uint32_t,
                         blazebot_upload_fn, void *);
PIN_TYPE(blazebot_host, api_request, api_request_fn);
PIN_TYPE(blazebot_host, send_result, send_result_fn);
PIN_TYPE(blazebot_host, hold, hold_fn);
PIN_TYPE(blazebot_host, release, release_fn);
PIN_TYPE(blazebot_host, now_ms, now_ms_fn);
PIN_TYPE(blazebot_host, timer_at, timer_at_fn);
PIN_TYPE(blazebot_host, state_dir, name_fn);
PIN_TYPE(blazebot_host, instance_name, name_fn);
PIN_TYPE(blazebot_host, upload, upload_fn);
PIN_TYPE(blazebot_upload_result, size, uint32_t);
PIN_TYPE(blazebot_upload_result, ok, uint32_t);
PIN_TYPE(blazebot_upload_result, http_status, int32_t);
PIN_TYPE(blazebot_upload_result, error_code, int32_t);
PIN_TYPE(blazebot_upload_result, attachment_id, cstr);
PIN_TYPE(blazebot_upload_result, error, cstr);
PIN_TYPE(blazebot_outgoing, hold, blazebot_hold *);
_Static_assert(_Generic((blazebot_send_fn)0,
                        void (*)(void *, void *, const struct blazebot_send_result *) : 1,
                        default : 0),
               "blazebot_send_fn");
_Static_assert(_Generic((blazebot_api_fn)0,
                        void (*)(void *, void *,
                                 const struct blazebot_api_response *) : 1,
                        default : 0),
               "blazebot_api_fn");
PIN_TYPE(blazebot_send_result, size, uint32_t);
PIN_TYPE(blazebot_send_result, status, uint32_t);
PIN_TYPE(blazebot_send_result, code, int32_t);
PIN_TYPE(blazebot_send_result, reserved, uint32_t);
PIN_TYPE(blazebot_send_result, message_id, cstr);
PIN_TYPE(blazebot_api_response, size, uint32_t);
PIN_TYPE(blazebot_api_response, http_status, int32_t);
PIN_TYPE(blazebot_api_response, error_code, int32_t);
PIN_TYPE(blazebot_api_response, reserved, uint32_t);
PIN_TYPE(blazebot_api_response, body, cstr);
PIN_TYPE(blazebot_api_response, body_len, size_t);

PIN_TYPE(blazebot_subscription, category, cstr);
PIN_TYPE(blazebot_subscription, priority, int32_t);
PIN_TYPE(blazebot_subscription, flags, uint32_t);

typedef int (*init_fn)(blazebot_ctx *, const struct blazebot_host *, void **);
typedef int (*on_message_fn)(void *, const struct blazebot_message *);
typedef void (*shutdown_fn)(void *);
typedef int (*reconfigure_fn)(void *);
typedef int (*save_state_fn)(void *);

PIN_TYPE(blazebot_plugin, size, uint32_t);
PIN_TYPE(blazebot_plugin, abi_major, uint32_t);
PIN_TYPE(blazebot_plugin, abi_minor, uint32_t);
PIN_TYPE(blazebot_plugin, flags, uint32_t);
PIN_TYPE(blazebot_plugin, name, cstr);
PIN_TYPE(blazebot_plugin, version, cstr);
PIN_TYPE(blazebot_plugin, description, cstr);
PIN_TYPE(blazebot_plugin, subscriptions, const struct blazebot_subscription *);
PIN_TYPE(blazebot_plugin, init, init_fn);
PIN_TYPE(blazebot_plugin, on_message, on_message_fn);
PIN_TYPE(blazebot_plugin, shutdown, shutdown_fn);
PIN_TYPE(blazebot_plugin, reconfigure, reconfigure_fn);
PIN_TYPE(blazebot_plugin, save_state, save_state_fn);

/* ---- offsets and sizes (LP64) ----------------------------------------------------- */

#if defined(__x86_64__) || defined(__aarch64__)
#define PIN_AT(s, m, off)                                                                \
  _Static_assert(offsetof(struct s, m) == (off), #s "." #m " at " #off)
#define PIN_SIZE(s, n) _Static_assert(sizeof(struct s) == (n), "sizeof " #s " is " #n)

PIN_AT(blazebot_message, size, 0);
PIN_AT(blazebot_message, attempt, 4);
PIN_AT(blazebot_message, message_id, 8);
PIN_AT(blazebot_message, conversation_id, 16);
PIN_AT(blazebot_message, user_id, 24);
PIN_AT(blazebot_message, representative_id, 32);
PIN_AT(blazebot_message, quote_message_id, 40);
PIN_AT(blazebot_message, session_id, 48);
PIN_AT(blazebot_message, category, 56);
PIN_AT(blazebot_message, source, 64);
PIN_AT(blazebot_message, status, 72);
PIN_AT(blazebot_message, created_at, 80);
PIN_AT(blazebot_message, updated_at, 88);
PIN_AT(blazebot_message, data, 96);
PIN_AT(blazebot_message, data_len, 104);
PIN_AT(blazebot_message, raw_json, 112);
PIN_AT(blazebot_message, raw_json_len, 120);
PIN_SIZE(blazebot_message, 128);

PIN_AT(blazebot_outgoing, size, 0);
PIN_AT(blazebot_outgoing, flags, 4);
PIN_AT(blazebot_outgoing, conversation_id, 8);
PIN_AT(blazebot_outgoing, recipient_id, 16);
PIN_AT(blazebot_outgoing, category, 24);
PIN_AT(blazebot_outgoing, data, 32);
PIN_AT(blazebot_outgoing, data_len, 40);
PIN_AT(blazebot_outgoing, message_id, 48);
PIN_AT(blazebot_outgoing, quote_message_id, 56);
PIN_AT(blazebot_outgoing, representative_id, 64);
/* Minor 1. */
PIN_AT(blazebot_outgoing, hold, 72);
PIN_SIZE(blazebot_outgoing, 80);

PIN_AT(blazebot_host, size, 0);
PIN_AT(blazebot_host, abi_minor, 4);
PIN_AT(blazebot_host, log, 8);
PIN_AT(blazebot_host, config_get, 16);
PIN_AT(blazebot_host, config_int, 24);
PIN_AT(blazebot_host, config_bool, 32);
PIN_AT(blazebot_host, reply, 40);
PIN_AT(blazebot_host, send, 48);
PIN_AT(blazebot_host, uuid, 56);
PIN_AT(blazebot_host, unique_conversation_id, 64);
PIN_AT(blazebot_host, bot_id, 72);
PIN_AT(blazebot_host, timer_add, 80);
PIN_AT(blazebot_host, timer_cancel, 88);
PIN_AT(blazebot_host, run_blocking, 96);
PIN_AT(blazebot_host, set_error, 104);
PIN_AT(blazebot_host, state_put, 112);
PIN_AT(blazebot_host, state_get, 120);
/* Minor 1. */
PIN_AT(blazebot_host, api_request, 128);
PIN_AT(blazebot_host, send_result, 136);
PIN_AT(blazebot_host, hold, 144);
PIN_AT(blazebot_host, release, 152);
PIN_AT(blazebot_host, now_ms, 160);
PIN_AT(blazebot_host, timer_at, 168);
PIN_AT(blazebot_host, state_dir, 176);
PIN_AT(blazebot_host, instance_name, 184);
PIN_AT(blazebot_host, upload, 192);
PIN_SIZE(blazebot_host, 200);

PIN_AT(blazebot_upload_result, size, 0);
PIN_AT(blazebot_upload_result, ok, 4);
PIN_AT(blazebot_upload_result, http_status, 8);
PIN_AT(blazebot_upload_result, error_code, 12);
PIN_AT(blazebot_upload_result, attachment_id, 16);
PIN_AT(blazebot_upload_result, error, 24);
PIN_SIZE(blazebot_upload_result, 32);

PIN_AT(blazebot_send_result, size, 0);
PIN_AT(blazebot_send_result, status, 4);
PIN_AT(blazebot_send_result, code, 8);
PIN_AT(blazebot_send_result, reserved, 12);
PIN_AT(blazebot_send_result, message_id, 16);
PIN_SIZE(blazebot_send_result, 24);

PIN_AT(blazebot_api_response, size, 0);
PIN_AT(blazebot_api_response, http_status, 4);
PIN_AT(blazebot_api_response, error_code, 8);
PIN_AT(blazebot_api_response, reserved, 12);
PIN_AT(blazebot_api_response, body, 16);
PIN_AT(blazebot_api_response, body_len, 24);
PIN_SIZE(blazebot_api_response, 32);

/* An array element: frozen for good, it can never grow. */
PIN_AT(blazebot_subscription, category, 0);
PIN_AT(blazebot_subscription, priority, 8);
PIN_AT(blazebot_subscription, flags, 12);
PIN_SIZE(blazebot_subscription, 16);

PIN_AT(blazebot_plugin, size, 0);
PIN_AT(blazebot_plugin, abi_major, 4);
PIN_AT(blazebot_plugin, abi_minor, 8);
PIN_AT(blazebot_plugin, flags, 12);
PIN_AT(blazebot_plugin, name, 16);
PIN_AT(blazebot_plugin, version, 24);
PIN_AT(blazebot_plugin, description, 32);
PIN_AT(blazebot_plugin, subscriptions, 40);
PIN_AT(blazebot_plugin, init, 48);
PIN_AT(blazebot_plugin, on_message, 56);
PIN_AT(blazebot_plugin, shutdown, 64);
PIN_AT(blazebot_plugin, reconfigure, 72);
PIN_AT(blazebot_plugin, save_state, 80);
PIN_SIZE(blazebot_plugin, 88);
/* The smallest descriptor a 1.0 plugin may hand over: everything up to and
 * including shutdown (the loader refuses anything shorter). */
_Static_assert(offsetof(struct blazebot_plugin, reconfigure) == 72, "v1.0 minimum");
#endif

/* ---- runtime ------------------------------------------------------------------ */

static int fake_state_put(blazebot_ctx *ctx, const void *blob, size_t len) {
  (void)ctx;
  (void)blob;
  (void)len;
  return 0;
}

static void fake_set_error(blazebot_ctx *ctx, const char *fmt, ...) {
  (void)ctx;
  (void)fmt;
}

static int t_init(blazebot_ctx *ctx, const struct blazebot_host *host, void **state) {
  (void)ctx;
  (void)host;
  *state = NULL;
  return 0;
}

static int t_on_message(void *state, const struct blazebot_message *msg) {
  (void)state;
  (void)msg;
  return BLAZEBOT_PASS;
}

static void t_shutdown(void *state) {
  (void)state;
}

static const struct blazebot_subscription t_subs[] = {{"PLAIN_TEXT", 7, 0}, {NULL, 0, 0}};

/* The macro as an author uses it; this test is its only plugin. */
BLAZEBOT_PLUGIN(.name = "layout", .subscriptions = t_subs, .init = t_init,
                .on_message = t_on_message, .shutdown = t_shutdown);

int main(void) {
  /* BLAZEBOT_HOST_HAS on a full table: members present and set. */
  struct blazebot_host h;
  memset(&h, 0, sizeof h);
  h.size = sizeof h;
  h.state_put = fake_state_put;
  h.set_error = fake_set_error;
  CHECK(BLAZEBOT_HOST_HAS(&h, state_put));
  CHECK(BLAZEBOT_HOST_HAS(&h, set_error));
  /* Present in the table but NULL: not usable. */
  CHECK(!BLAZEBOT_HOST_HAS(&h, state_get));
  CHECK(!BLAZEBOT_HOST_HAS(&h, log));

  /* An older host whose table ends before state_put: the member is absent
   * even though the bytes behind the table happen to hold a pointer. */
  h.size = (uint32_t)offsetof(struct blazebot_host, state_put);
  CHECK(!BLAZEBOT_HOST_HAS(&h, state_put));
  CHECK(BLAZEBOT_HOST_HAS(&h, set_error));
  /* One byte short of the whole member is still absent. */
  h.size = (uint32_t)(offsetof(struct blazebot_host, state_put) + sizeof h.state_put - 1);
  CHECK(!BLAZEBOT_HOST_HAS(&h, state_put));
  h.size = (uint32_t)(offsetof(struct blazebot_host, state_put) + sizeof h.state_put);
  CHECK(BLAZEBOT_HOST_HAS(&h, state_put));
  /* The macro works through a const pointer, as plugins hold the table. */
  const struct blazebot_host *ch = &h;
  CHECK(BLAZEBOT_HOST_HAS(ch, set_error));

  /* What BLAZEBOT_PLUGIN hands the host: size and version filled in,
   * every unnamed field zero. */
  const struct blazebot_plugin *d = blazebot_plugin_v1();
  CHECK(d != NULL);
  if (d) {
    CHECK_INT(d->size, sizeof(struct blazebot_plugin));
    CHECK_INT(d->abi_major, BLAZEBOT_ABI_MAJOR);
    CHECK_INT(d->abi_minor, BLAZEBOT_ABI_MINOR);
    CHECK_INT(d->flags, 0);
    CHECK_STR(d->name, "layout");
    CHECK(d->version == NULL && d->description == NULL);
    CHECK(d->subscriptions == t_subs);
    CHECK(d->init == t_init && d->on_message == t_on_message &&
          d->shutdown == t_shutdown);
    CHECK(d->reconfigure == NULL && d->save_state == NULL);
  }
  CHECK_STR(BLAZEBOT_ENTRY_SYMBOL, "blazebot_plugin_v1");
  return check_done("abi.layout");
}
