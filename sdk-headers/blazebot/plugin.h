/* SPDX-License-Identifier: MIT */
/*
 * blazebot/plugin.h — the one stable ABI between the blazebot daemon and its
 * plugins. A plugin is a shared object that exports exactly one symbol,
 * blazebot_plugin_v1, made by the BLAZEBOT_PLUGIN() macro. It links nothing
 * from the daemon: every service it needs comes through the host table
 * handed to its init callback.
 *
 * Compatibility promise (ABI major 1):
 *  - The entry symbol's name carries the major version. A plugin built for
 *    major 1 loads on every host with major 1 whose minor is >= the
 *    plugin's minor.
 *  - Every struct that crosses the boundary starts with uint32_t size and
 *    only ever grows at its end. The host copies min(size, its sizeof) into
 *    a zeroed struct, so fields a plugin does not know read as 0/NULL.
 *  - Field types are fixed-width integers, size_t and pointers only.
 *  - Nothing in this header is ever removed or changed; new minors append.
 *
 * Ownership, in one sentence per direction: whatever the host hands a
 * plugin is borrowed for the duration of the call that handed it (copy what
 * you keep); whatever a plugin hands the host is copied by the host before
 * the call returns (the host never frees plugin memory).
 *
 * Threading: the host never runs two callbacks of one plugin instance at the
 * same time (on_message, timers, blocking-work completions, API and send
 * results, reconfigure and save_state are serialised), so a plugin needs no locks for its
 * own state. Different plugins run in parallel on a small pool. Plugin code never runs on
 * the daemon's network thread. Host services may be called from any thread unless a call
 * says otherwise.
 *
 * C99, C++-safe, standard headers only.
 */
#ifndef BLAZEBOT_PLUGIN_H
#define BLAZEBOT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BLAZEBOT_ABI_MAJOR 1
#define BLAZEBOT_ABI_MINOR 1

/* The minor a plugin says it needs (the descriptor's abi_minor, stamped by
 * BLAZEBOT_PLUGIN): by default this header's. A plugin that checks every
 * member newer than minor N with BLAZEBOT_HOST_HAS may define
 * BLAZEBOT_TARGET_MINOR to N before including this header, so hosts of
 * minor N load it too. */
#ifndef BLAZEBOT_TARGET_MINOR
#define BLAZEBOT_TARGET_MINOR BLAZEBOT_ABI_MINOR
#endif

/* ---- return codes of on_message ------------------------------------------- */

/* Done with the message; lower-priority subscribers still get it. */
#define BLAZEBOT_PASS 0
/* Done, and the message is consumed: lower-priority subscribers skip it. */
#define BLAZEBOT_HANDLED 1
/* Not now: deliver it to this plugin again later, with backoff, at most
 * max_attempts times in all (ini key, default 5; 0 = never give up); after
 * that it counts as an error, and the host first writes the message to its
 * dead-letter file when one is set (see docs/operating.md). Other
 * subscribers are not affected. Replies already sent during the attempt stay
 * sent; the next attempt reuses their ids (see reply), so the server keeps
 * one copy of each. */
#define BLAZEBOT_RETRY 2
/* Any negative value is an error: logged and counted, never fatal; the
 * message continues to lower-priority subscribers and is acknowledged. */
#define BLAZEBOT_ERROR (-1)

/* ---- log levels ------------------------------------------------------------- */

#define BLAZEBOT_LOG_ERROR 0
#define BLAZEBOT_LOG_WARN 1
#define BLAZEBOT_LOG_INFO 2
#define BLAZEBOT_LOG_DEBUG 3

/* ---- descriptor flags ------------------------------------------------------- */

/* The plugin keeps no threads, handlers or other references into its code
 * after shutdown returns, so the host may dlclose it on reload. Without this
 * flag an old generation stays mapped (and is counted) after a reload. */
#define BLAZEBOT_FLAG_UNLOAD_SAFE 0x1u
/* The plugin's messages are never given up on: without a max_attempts key
 * in its section, RETRY is repeated (with backoff, up to 30 s apart) until
 * it succeeds, as if max_attempts = 0. For plugins whose job must not be
 * skipped, such as an archive. Hosts older than blazebot 0.2 ignore it (they
 * give up after 5 attempts). */
#define BLAZEBOT_FLAG_RETRY_FOREVER 0x2u

/* Opaque per-instance handle: the first argument of every host service. */
typedef struct blazebot_ctx blazebot_ctx;

/* ---- the message view ------------------------------------------------------- */

/* One incoming message, borrowed and read-only, valid only during the
 * on_message call that receives it. Every string is NUL-terminated and never
 * NULL ("" when the server sent none). */
struct blazebot_message {
  uint32_t size;    /* sizeof(struct blazebot_message) of the host */
  uint32_t attempt; /* 1 on the first delivery to this plugin, 2.. after RETRY */
  const char *message_id;
  const char *conversation_id;
  const char *user_id;           /* the sender (see representative_id) */
  const char *representative_id; /* when not "", the real sender */
  const char *quote_message_id;
  const char *session_id; /* the sender's device session */
  const char *category;   /* "PLAIN_TEXT", "SYSTEM_CONVERSATION", ... */
  const char *source;     /* "LIST_PENDING_MESSAGES" or "CREATE_MESSAGE" */
  const char *status;     /* "SENT", "DELIVERED", "READ" */
  const char *created_at; /* RFC 3339 */
  const char *updated_at; /* RFC 3339 */
  const uint8_t *data;    /* the decoded payload (text for PLAIN_TEXT) */
  size_t data_len;        /* data[data_len] is a NUL byte */
  const char *raw_json;   /* the message as the server sent it (JSON) */
  size_t raw_json_len;
};

/* ---- sending ---------------------------------------------------------------- */

/* An outgoing message. The host copies everything during the call. */
struct blazebot_outgoing {
  uint32_t size;               /* sizeof(struct blazebot_outgoing) */
  uint32_t flags;              /* BLAZEBOT_SEND_SILENT */
  const char *conversation_id; /* required */
  const char *recipient_id;    /* optional (NULL) */
  const char *category;        /* required: "PLAIN_TEXT", "PLAIN_POST", "APP_CARD", ... */
  const void *data;            /* payload bytes (JSON for APP_CARD etc.) */
  size_t data_len;
  const char *message_id;        /* optional: NULL = chosen by the host (see send) */
  const char *quote_message_id;  /* optional */
  const char *representative_id; /* optional */
  /* Minor 1. Optional: a hold taken on an incoming message (see hold). The
   * send is tied to that message like a reply inside on_message: its id is
   * derived (unless message_id is set) and the message is acknowledged only
   * after the server accepted this send. */
  struct blazebot_hold *hold;
};

#define BLAZEBOT_SEND_SILENT 0x1u

/* A message id as text: 36 characters and a NUL. */
#define BLAZEBOT_ID_LEN 37

/* Callback types of the host services. */
typedef void (*blazebot_timer_fn)(void *state, void *arg);
typedef void (*blazebot_work_fn)(void *arg);
typedef void (*blazebot_done_fn)(void *state, void *arg);

/* ---- minor 1: results of asynchronous services --------------------------------- */

/* A hold on an incoming message (see hold): opaque. */
typedef struct blazebot_hold blazebot_hold;

/* What became of a message sent with send_result. */
#define BLAZEBOT_SEND_ACCEPTED 0 /* the server stored it (or already had it) */
#define BLAZEBOT_SEND_REFUSED 1  /* the server refused it for good: see code */
#define BLAZEBOT_SEND_GAVE_UP 2  /* never settled: the daemon is stopping */

struct blazebot_send_result {
  uint32_t size;     /* sizeof(struct blazebot_send_result) of the host */
  uint32_t status;   /* BLAZEBOT_SEND_* */
  int32_t code;      /* REFUSED: Mixin's error code, or the HTTP status without one */
  uint32_t reserved; /* 0 */
  const char *message_id; /* the message's id */
};
/* Runs on the plugin's queue; r is borrowed for the call. */
typedef void (*blazebot_send_fn)(void *state, void *arg,
                                 const struct blazebot_send_result *r);

/* The answer to api_request. */
struct blazebot_api_response {
  uint32_t size;       /* sizeof(struct blazebot_api_response) of the host */
  int32_t http_status; /* 0: no answer (deadline passed, link failed, stopping) */
  int32_t error_code;  /* Mixin's {"error":{"code"}}, else 0 */
  uint32_t reserved;   /* 0 */
  /* The response body, NUL-terminated, "" when none; borrowed for the call.
   * A success is {"data":...}; an error {"error":{...}}. */
  const char *body;
  size_t body_len;
};
/* Runs on the plugin's queue; r is borrowed for the call. */
typedef void (*blazebot_api_fn)(void *state, void *arg,
                                const struct blazebot_api_response *r);

/* What upload ends with. */
struct blazebot_upload_result {
  uint32_t size;             /* sizeof(struct blazebot_upload_result) of the host */
  uint32_t ok;               /* 1: uploaded, attachment_id is set */
  int32_t http_status;       /* failure: of the failing step; 0 no answer */
  int32_t error_code;        /* failure: Mixin's error code of that step, else 0 */
  const char *attachment_id; /* the new attachment, "" on failure; borrowed */
  const char *error;         /* "" on success, else one line: what failed */
};
/* Runs on the plugin's queue; r is borrowed for the call. */
typedef void (*blazebot_upload_fn)(void *state, void *arg,
                                   const struct blazebot_upload_result *r);

/* Clocks of now_ms. */
#define BLAZEBOT_CLOCK_MONOTONIC 0 /* milliseconds since an arbitrary start */
#define BLAZEBOT_CLOCK_WALL 1      /* milliseconds since 1970-01-01 UTC */

/* ---- host services ---------------------------------------------------------- */

/* The table the host hands to init. Valid until shutdown returns. Check
 * `size` (or BLAZEBOT_HOST_HAS) before using a member added after minor 0. */
struct blazebot_host {
  uint32_t size;      /* sizeof(struct blazebot_host) of the host */
  uint32_t abi_minor; /* the host's BLAZEBOT_ABI_MINOR */

  /* Logs one line tagged with the plugin's name. printf-style. */
  void (*log)(blazebot_ctx *ctx, int level, const char *fmt, ...)
#if defined(__GNUC__)
      __attribute__((format(printf, 3, 4)))
#endif
      ;

  /* The raw value of key in this plugin's [plugin.NAME] section, or NULL.
   * Borrowed until shutdown or the next reconfigure, whichever comes first.
   * The host reserves these keys for itself (a plugin may read them but
   * should not give them other meanings): path, enabled, categories,
   * priority, max_attempts. */
  const char *(*config_get)(blazebot_ctx *ctx, const char *key);
  /* Typed getters: *out = the key's value, or def when absent. Return 0, or
   * -1 when the value is present but malformed (logged with file:line). */
  int (*config_int)(blazebot_ctx *ctx, const char *key, int64_t def, int64_t *out);
  int (*config_bool)(blazebot_ctx *ctx, const char *key, int def, int *out);

  /* Replies to msg, the message being handled, in its conversation (to its
   * sender). Only valid inside on_message for that msg, or (minor 1) while
   * the plugin holds msg (see hold): the message is
   * acknowledged only after the server accepted this reply. Copies data,
   * queues, returns at once; the new message id goes to id_out (may be
   * NULL). Returns 0, or -1 (invalid arguments or the outbox is full).
   * The id is derived from the incoming message id, the plugin's name and
   * the send's ordinal within this delivery (a version 5 UUID), so a
   * RETRY attempt, or the same message processed again after a crash, sends
   * under the same ids and the server drops the copies: make the same sends
   * in the same order. */
  int (*reply)(blazebot_ctx *ctx, const struct blazebot_message *msg,
               const char *category, const void *data, size_t len,
               char id_out[BLAZEBOT_ID_LEN]);
  /* Sends any message to any conversation. Inside on_message it is tied to
   * the message being handled like reply, and without a message_id of its
   * own it gets a derived id like reply's (counted in the same sequence);
   * elsewhere it is fire-and-forget with a random id unless one is given
   * (still retried by the host until the server accepts or refuses it). */
  int (*send)(blazebot_ctx *ctx, const struct blazebot_outgoing *m,
              char id_out[BLAZEBOT_ID_LEN]);

  /* A fresh random UUID. Returns 0/-1. */
  int (*uuid)(blazebot_ctx *ctx, char out[BLAZEBOT_ID_LEN]);
  /* The 1:1 conversation id of two users (order does not matter). */
  int (*unique_conversation_id)(blazebot_ctx *ctx, const char *user_a, const char *user_b,
                                char out[BLAZEBOT_ID_LEN]);
  /* The bot's own user id (borrowed, valid until shutdown). */
  const char *(*bot_id)(blazebot_ctx *ctx);

  /* Runs fn(state, arg) on this plugin's queue after delay_ms, then every
   * repeat_ms if that is not 0 (resolution about 100 ms). *id_out (may be NULL)
   * identifies it for timer_cancel. The host cancels every timer of an instance before
   * its shutdown. Returns 0/-1. */
  int (*timer_add)(blazebot_ctx *ctx, uint32_t delay_ms, uint32_t repeat_ms,
                   blazebot_timer_fn fn, void *arg, uint64_t *id_out);
  /* Returns 0, or -1 if no such timer (already fired or cancelled). */
  int (*timer_cancel)(blazebot_ctx *ctx, uint64_t id);

  /* Runs work(arg) on a separate thread (so blocking I/O does not hold the
   * plugin's queue), then done(state, arg) on the plugin's queue. done may
   * be NULL. Returns 0/-1. The host waits for outstanding work before the
   * instance's shutdown. */
  int (*run_blocking)(blazebot_ctx *ctx, blazebot_work_fn work, blazebot_done_fn done,
                      void *arg);

  /* Inside init only: a readable reason for a failure, logged by the host. */
  void (*set_error)(blazebot_ctx *ctx, const char *fmt, ...)
#if defined(__GNUC__)
      __attribute__((format(printf, 2, 3)))
#endif
      ;

  /* State hand-over across a reload. Inside save_state only: stores a copy
   * of blob for the next generation. */
  int (*state_put)(blazebot_ctx *ctx, const void *blob, size_t len);
  /* Inside init only: the blob the previous generation saved (borrowed for
   * the init call), or -1 when there is none. */
  int (*state_get)(blazebot_ctx *ctx, const void **blob, size_t *len);

  /* ---- minor 1 (check with BLAZEBOT_HOST_HAS) ---- */

  /* An authenticated call to the Mixin REST API with the bot's own session:
   * method "GET" or "POST", path the request-target ("/users/<id>", with
   * any query), body the JSON to POST (copied; NULL/0 for none). The host
   * signs a token for exactly this request, runs it off the plugin's queue
   * and calls done(state, arg, response) on the plugin's queue exactly once
   * (unless this returns -1). timeout_ms: the deadline for the whole call,
   * retries included (0 = the daemon's request_timeout_ms). Only GET is
   * retried (on no answer, 429 and 5xx, with backoff). Returns 0/-1. The
   * host waits for outstanding calls before the instance's shutdown. */
  int (*api_request)(blazebot_ctx *ctx, const char *method, const char *path,
                     const void *body, size_t body_len, uint32_t timeout_ms,
                     blazebot_api_fn done, void *arg);
  /* send, plus done(state, arg, result) on the plugin's queue once the
   * server accepted or refused the message, or the host gave up on it.
   * Anywhere send is valid (tied to the message inside on_message or under
   * m->hold). done may be NULL. Returns 0, or -1 (then done never runs). */
  int (*send_result)(blazebot_ctx *ctx, const struct blazebot_outgoing *m,
                     blazebot_send_fn done, void *arg, char id_out[BLAZEBOT_ID_LEN]);
  /* Inside on_message only: takes a hold on msg, so the plugin may finish
   * with it later (after an api_request, say) without blocking its queue.
   * on_message then returns as usual; the message stays with this plugin
   * and unacknowledged until every hold on it is released. Meanwhile msg
   * and its strings stay valid (until the last release), other messages
   * keep flowing to this plugin, and reply(msg) and sends with m->hold
   * are tied to it. Returns NULL on failure. Held messages count towards
   * the daemon's back pressure. The delivery never ends before on_message
   * returned, whenever the holds are released. Sends tied to a held message
   * get derived ids numbered in the order the host receives them: when a
   * RETRY or a redelivery could make them in another order (answers of
   * several api_requests, say), set message_id yourself, from the incoming
   * id and a key of your own (unique_conversation_id-style hashing works). */
  blazebot_hold *(*hold)(blazebot_ctx *ctx, const struct blazebot_message *msg);
  /* Any thread, once per hold: result is what on_message would have
   * returned (PASS, HANDLED, RETRY or an error). When the last hold on a
   * message is released, the delivery ends with the strongest result of
   * on_message's return value and every release, in this order: RETRY,
   * an error, HANDLED, PASS. Returns 0, or -1 for an unknown hold. Holds
   * still taken when the instance is retired (a reload) or shut down are
   * released as RETRY by the host: the message comes again, to the
   * plugin's next generation. */
  int (*release)(blazebot_ctx *ctx, blazebot_hold *hold, int result);
  /* The current time in milliseconds on clock (BLAZEBOT_CLOCK_*); -1 for
   * an unknown clock. */
  int64_t (*now_ms)(blazebot_ctx *ctx, int clock);
  /* Like timer_add, but runs fn(state, arg) once when the wall clock reaches
   * wall_ms (BLAZEBOT_CLOCK_WALL; a time in the past fires at once). The
   * wall clock is read on every check, so setting the system clock moves the
   * timer with it. Cancelled with timer_cancel. Returns 0/-1. */
  int (*timer_at)(blazebot_ctx *ctx, int64_t wall_ms, blazebot_timer_fn fn, void *arg,
                  uint64_t *id_out);
  /* This instance's private folder (mode 0700, created by the host), for
   * state that must survive a restart: <state_dir>/<instance name>. NULL
   * when the daemon has no state_dir. Borrowed until shutdown. */
  const char *(*state_dir)(blazebot_ctx *ctx);
  /* The instance's name: its [plugin.NAME] section. Several instances of
   * one plugin (one .so under several sections) differ by this name; the
   * descriptor's name is the plugin's kind. Borrowed until shutdown. */
  const char *(*instance_name)(blazebot_ctx *ctx);
  /* An attachment from len bytes of data (copied; at most 16 MiB) of type
   * mime_type ("image/png"), made asynchronously: POST /attachments, then
   * the bytes to the upload URL it returned. done(state, arg, result) runs
   * on the plugin's queue exactly once unless this returns -1. Send it as a
   * PLAIN_IMAGE / PLAIN_DATA message whose JSON data names attachment_id,
   * mime_type, size (and width, height, name...). timeout_ms: for both
   * steps together (0 = the daemon's default). Returns 0/-1. */
  int (*upload)(blazebot_ctx *ctx, const void *data, size_t len, const char *mime_type,
                uint32_t timeout_ms, blazebot_upload_fn done, void *arg);
};

/* True when the host table h has member m (for members added after minor 0). */
#define BLAZEBOT_HOST_HAS(h, m)                                                          \
  ((h)->size >= offsetof(struct blazebot_host, m) + sizeof((h)->m) && (h)->m != NULL)

/* ---- subscriptions ---------------------------------------------------------- */

/* One entry of a plugin's static subscription table, terminated by an entry
 * whose category is NULL. category: an exact category ("PLAIN_TEXT"), a
 * prefix ending in '*' ("PLAIN_*", "SYSTEM_*"), or "*" for everything.
 * Higher priority runs first; equal priorities run in ini order. The ini key
 * `categories` overrides the table. */
struct blazebot_subscription {
  const char *category;
  int32_t priority;
  uint32_t flags; /* reserved: 0 (this struct is an array element, so it is frozen) */
};

/* ---- the descriptor ---------------------------------------------------------- */

struct blazebot_plugin {
  uint32_t size;           /* sizeof(struct blazebot_plugin): set by BLAZEBOT_PLUGIN */
  uint32_t abi_major;      /* BLAZEBOT_ABI_MAJOR */
  uint32_t abi_minor;      /* BLAZEBOT_ABI_MINOR the plugin was built with */
  uint32_t flags;          /* BLAZEBOT_FLAG_* */
  const char *name;        /* required: the plugin's kind, e.g. "echo". Hosts of
                              minor >= 1 load one plugin under several [plugin.NAME]
                              sections (path = the same .so), each an instance
                              named by its section (instance_name); minor-0 hosts
                              refuse two loaded plugins with one name. */
  const char *version;     /* the plugin's own version, free-form */
  const char *description; /* one line */
  const struct blazebot_subscription *subscriptions; /* required (may be empty) */

  /* Required. Called once per instance, before any other callback (at
   * startup on the main thread, on reload on a worker). *state is handed back to every
   * other callback. Return 0, or negative to refuse loading (call host->set_error first).
   * ctx and host stay valid until shutdown returns. */
  int (*init)(blazebot_ctx *ctx, const struct blazebot_host *host, void **state);
  /* Required. Handles one message; returns BLAZEBOT_PASS, _HANDLED, _RETRY
   * or a negative error. msg is borrowed for the call. */
  int (*on_message)(void *state, const struct blazebot_message *msg);
  /* Required. The last callback: free state. Timers are already cancelled
   * and blocking work has finished. */
  void (*shutdown)(void *state);

  /* Optional. Only the plugin's ini section changed on reload: re-read it
   * with the host's config getters (they now return the new values). Return
   * 0 to accept; negative to ask for a full re-init instead. NULL = re-init. */
  int (*reconfigure)(void *state);
  /* Optional. Before a reload replaces this instance: hand state to the
   * next generation with host->state_put (bytes only, no pointers). */
  int (*save_state)(void *state);
};

/* ---- defining a plugin ---------------------------------------------------------- */

#if defined(__GNUC__)
#define BLAZEBOT_EXPORT __attribute__((visibility("default")))
#else
#define BLAZEBOT_EXPORT
#endif

/* Defines the entry point. Use once per plugin, at file scope, with the
 * descriptor's fields as designated initialisers, followed by a semicolon:
 *
 *   static const struct blazebot_subscription subs[] = {{"PLAIN_TEXT", 0, 0},
 *                                                       {NULL, 0, 0}};
 *   BLAZEBOT_PLUGIN(.name = "echo", .version = "1.0", .subscriptions = subs,
 *                   .init = my_init, .on_message = my_on_message,
 *                   .shutdown = my_shutdown);
 *
 * size, abi_major and abi_minor are filled in; unnamed fields are zero. The
 * header itself is C++-safe; the macro needs C99 designated initialisers (in
 * C++, C++20 with the fields in declaration order). */
#ifdef __cplusplus
#define BLAZEBOT_PLUGIN_LINKAGE extern "C"
#else
#define BLAZEBOT_PLUGIN_LINKAGE
#endif
#define BLAZEBOT_PLUGIN(...)                                                             \
  BLAZEBOT_PLUGIN_LINKAGE BLAZEBOT_EXPORT const struct blazebot_plugin *                 \
  blazebot_plugin_v1(void);                                                              \
  BLAZEBOT_PLUGIN_LINKAGE BLAZEBOT_EXPORT const struct blazebot_plugin *                 \
  blazebot_plugin_v1(void) {                                                             \
    static const struct blazebot_plugin desc_ = {.size = sizeof(struct blazebot_plugin), \
                                                 .abi_major = BLAZEBOT_ABI_MAJOR,        \
                                                 .abi_minor = BLAZEBOT_TARGET_MINOR,     \
                                                 __VA_ARGS__};                           \
    return &desc_;                                                                       \
  }                                                                                      \
  BLAZEBOT_PLUGIN_LINKAGE const struct blazebot_plugin *blazebot_plugin_v1(void)

/* The entry symbol's name, for hosts and tools. */
#define BLAZEBOT_ENTRY_SYMBOL "blazebot_plugin_v1"

#ifdef __cplusplus
}
#endif

#endif
