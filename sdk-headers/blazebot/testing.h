/* SPDX-License-Identifier: MIT */
/*
 * blazebot/testing.h — a fake host for unit-testing a plugin without the
 * daemon, a network or a Mixin account. struct blazebot_test_host holds a
 * complete struct blazebot_host whose services record what the plugin does:
 * config comes from key/value pairs the test sets, log lines and outgoing
 * messages are kept for inspection, uuids come from a counter, timers run on
 * a fake clock the test advances, blocking work runs inline, and the 1:1
 * conversation id is the real algorithm (MD5, protocol.md §6.3).
 *
 * The fake host also keeps the contract of plugin.h: callbacks of the
 * instance never nest (a run_blocking completion runs after the callback
 * that asked for it), and a service used where plugin.h forbids it (reply
 * outside on_message, set_error outside init, state_put outside save_state,
 * state_get outside init) fails, is logged, and is counted in `violations`.
 *
 * The services of ABI minor 1 are faked too. api_request is answered from
 * answers the test scripts (blazebot_test_api_script) and every call is
 * recorded; every outgoing message gets a result, scripted or accepted
 * (blazebot_test_send_script), which send_result's done receives; every
 * upload is recorded with a copy of its bytes and succeeds with a fresh
 * attachment id unless the test scripts its result
 * (blazebot_test_upload_script_ok, blazebot_test_upload_script_fail); the
 * results arrive after a delay on the fake clock. A delivery records its
 * holds and ends, with the strongest of on_message's value and the
 * releases, when the last hold is released (blazebot_test_outcome); the
 * message handed to on_message is the fake host's own copy, kept until
 * then. now_ms reads the fake clocks (the wall clock starts at
 * BLAZEBOT_TEST_WALL_START and advances with the monotonic one), timer_at
 * runs on the fake wall clock, state_dir is a real temporary folder removed
 * by blazebot_test_unload, and instance_name is the descriptor's name unless
 * the test sets one. blazebot_test_set_abi_minor(th, 0) makes the fake host
 * a minor-0 host, to test a plugin's fallbacks.
 *
 * A test compiles the plugin's source into its own executable (its
 * blazebot_plugin_v1() gives the descriptor) or dlopens the .so:
 *
 *   struct blazebot_test_host th;
 *   blazebot_test_init(&th);
 *   blazebot_test_set_config(&th, "prefix", "> ");
 *   assert(blazebot_test_load(&th, blazebot_plugin_v1()) == 0);
 *   struct blazebot_message *m = blazebot_test_message(&th, "PLAIN_TEXT", "hi");
 *   assert(blazebot_test_deliver(&th, m) == BLAZEBOT_PASS);
 *   assert(strcmp(blazebot_test_reply_text(&th, 0), "> hi") == 0);
 *   blazebot_test_unload(&th);
 *
 * Everything is static (header-only, nothing to link), C99 and C++-safe,
 * standard headers only, plus <sys/stat.h>, <unistd.h> and <dirent.h> on
 * POSIX systems for state_dir's folder. One test host serves one thread.
 * The struct is about 130 KiB: a local variable of main() is fine.
 */
#ifndef BLAZEBOT_TESTING_H
#define BLAZEBOT_TESTING_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

#if defined(__unix__) || defined(__APPLE__)
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#define BLAZEBOT_TEST_POSIX 1
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Capacities; define before including to change them. */
#ifndef BLAZEBOT_TEST_MAX_CONFIG
#define BLAZEBOT_TEST_MAX_CONFIG 64 /* ini keys */
#endif
#ifndef BLAZEBOT_TEST_MAX_SENT
#define BLAZEBOT_TEST_MAX_SENT 64 /* recorded outgoing messages ("outbox") */
#endif
#ifndef BLAZEBOT_TEST_MAX_LOG
#define BLAZEBOT_TEST_MAX_LOG 64 /* kept log lines; later ones are counted */
#endif
#ifndef BLAZEBOT_TEST_LOG_LEN
#define BLAZEBOT_TEST_LOG_LEN 512 /* longer lines are truncated */
#endif
#ifndef BLAZEBOT_TEST_MAX_TIMERS
#define BLAZEBOT_TEST_MAX_TIMERS 32 /* live timers */
#endif
#ifndef BLAZEBOT_TEST_MAX_PENDING
#define BLAZEBOT_TEST_MAX_PENDING 32 /* run_blocking completions not yet run */
#endif
#ifndef BLAZEBOT_TEST_MAX_DELIVERIES
#define BLAZEBOT_TEST_MAX_DELIVERIES 64 /* remembered deliveries, held ones included */
#endif
#ifndef BLAZEBOT_TEST_MAX_API
#define BLAZEBOT_TEST_MAX_API 64 /* recorded api_request calls */
#endif
#ifndef BLAZEBOT_TEST_MAX_SCRIPTS
#define BLAZEBOT_TEST_MAX_SCRIPTS                                                        \
  64 /* waiting API answers; as many send results, and                                   \
        as many upload results */
#endif
#ifndef BLAZEBOT_TEST_MAX_UPLOADS
#define BLAZEBOT_TEST_MAX_UPLOADS 64 /* recorded upload calls */
#endif
#ifndef BLAZEBOT_TEST_PATH_LEN
#define BLAZEBOT_TEST_PATH_LEN 1024 /* state_dir's path */
#endif
/* fire_timers runs at most this many callbacks per call, so a timer that
 * re-adds itself with delay 0 cannot hang a test. */
#define BLAZEBOT_TEST_MAX_FIRES 10000

/* The fixed ids of test messages and of the bot. A test message's id ends
 * in a counter: the first is BLAZEBOT_TEST_MESSAGE_ID_PREFIX "000000000001". */
#define BLAZEBOT_TEST_MESSAGE_ID_PREFIX "11111111-1111-4111-8111-"
#define BLAZEBOT_TEST_CONVERSATION_ID "22222222-2222-4222-8222-222222222222"
#define BLAZEBOT_TEST_USER_ID "33333333-3333-4333-8333-333333333333"
#define BLAZEBOT_TEST_SESSION_ID "44444444-4444-4444-8444-444444444444"
#define BLAZEBOT_TEST_BOT_ID "55555555-5555-4555-8555-555555555555"
#define BLAZEBOT_TEST_CREATED_AT "2024-01-02T03:04:05.678901Z"
/* The wall clock (BLAZEBOT_CLOCK_WALL) at blazebot_test_init, in ms since
 * 1970: 2024-01-02T03:04:05.678Z, the BLAZEBOT_TEST_CREATED_AT of test messages. */
#define BLAZEBOT_TEST_WALL_START 1704164645678LL
/* The deadline of an api_request given timeout_ms 0 (api_timeout_ms), as the
 * daemon's default request_timeout_ms. */
#define BLAZEBOT_TEST_API_TIMEOUT_MS 10000
/* uuid() returns this prefix and a 12-digit hex counter, starting at 1. */
#define BLAZEBOT_TEST_UUID_PREFIX "00000000-0000-4000-8000-"
/* A successful upload without a scripted id gets this prefix and a 12-digit
 * hex counter, starting at 1 (its own counter, not uuid()'s). */
#define BLAZEBOT_TEST_ATTACHMENT_ID_PREFIX "66666666-6666-4666-8666-"
/* The deadline of an upload given timeout_ms 0 (upload_timeout_ms), as the
 * daemon's: twice its default request_timeout_ms. */
#define BLAZEBOT_TEST_UPLOAD_TIMEOUT_MS 20000
/* The largest upload, as the daemon's (plugin.h: at most 16 MiB). */
#define BLAZEBOT_TEST_MAX_UPLOAD_LEN (16u << 20)

/* One message that went through reply or send, in the order they came. */
struct blazebot_test_sent {
  int is_reply;   /* 1: host->reply, 0: host->send */
  uint32_t flags; /* BLAZEBOT_SEND_* of a send */
  char message_id[BLAZEBOT_ID_LEN];
  char category[64];
  char conversation_id[64];
  char recipient_id[64]; /* a reply's: the sender of the message */
  char quote_message_id[64];
  char representative_id[64];
  char *data; /* a copy of the payload with a NUL after data_len bytes */
  size_t data_len;
  /* Since ABI minor 1. */
  uint64_t serial;  /* 1, 2, ... in the order they were made (clear does not reset it) */
  int with_result;  /* made with send_result */
  char tied_to[64]; /* the id of the message it is tied to (a reply, a send inside
                       on_message, or one with m->hold), or "" */
  uint32_t ordinal; /* its place among the sends tied to that delivery: 1, 2, ... */
  int settled;      /* its result came (scripted, or ACCEPTED): status and code */
  uint32_t status;  /* BLAZEBOT_SEND_* */
  int32_t code;     /* REFUSED: the scripted code */
};

struct blazebot_test_timer {
  uint64_t id; /* 0: a free slot */
  uint64_t due_ms;
  uint32_t repeat_ms;
  unsigned gen; /* the instance that added it */
  blazebot_timer_fn fn;
  void *arg;
  int at_wall;     /* timer_at: due when the wall clock reaches wall_ms */
  int64_t wall_ms; /* (then due_ms is unused) */
};

struct blazebot_test_pending {
  unsigned gen;
  blazebot_done_fn fn;
  void *arg;
};

/* One api_request the plugin made, and its answer once delivered. */
struct blazebot_test_api_call {
  uint64_t serial; /* 1, 2, ... in call order (clear does not reset it) */
  char method[8];  /* "GET" or "POST" */
  char *path;      /* a copy */
  char *body;      /* a copy with a NUL after body_len bytes ("" for none) */
  size_t body_len;
  uint32_t timeout_ms; /* as given: 0 = api_timeout_ms */
  uint64_t called_ms;  /* the fake monotonic time of the call */
  int answered;        /* the answer was handed to done: */
  uint64_t answered_ms;
  int32_t http_status;
  int32_t error_code;
};

/* A scripted answer of api_request (internal: see blazebot_test_api_script). */
struct blazebot_test_api_script {
  char method[8]; /* "" = any */
  char *path;     /* NULL = any */
  int32_t http_status, error_code;
  char *body; /* NULL = "" */
  size_t body_len;
  uint32_t delay_ms;
};

/* A scripted send result (internal: see blazebot_test_send_script). */
struct blazebot_test_send_script {
  char message_id[BLAZEBOT_ID_LEN]; /* "" = any */
  uint32_t status;
  int32_t code;
  uint32_t delay_ms;
};

/* One upload the plugin made, and its result once delivered. */
struct blazebot_test_upload {
  uint64_t serial; /* 1, 2, ... in call order (clear does not reset it) */
  char *data;      /* a copy of the bytes, with a NUL after len */
  size_t len;
  char mime_type[128];
  uint32_t timeout_ms; /* as given: 0 = upload_timeout_ms */
  uint64_t called_ms;  /* the fake monotonic time of the call */
  int answered;        /* the result was handed to done: */
  uint64_t answered_ms;
  int ok;
  int32_t http_status; /* 200 when ok */
  int32_t error_code;
  char attachment_id[64]; /* "" on failure */
  char error[128];        /* "" on success */
};

/* A scripted upload result (internal: see blazebot_test_upload_script_ok). */
struct blazebot_test_upload_script {
  int ok;
  int32_t http_status, error_code;
  char attachment_id[64]; /* ok: "" = a fresh one */
  char error[128];        /* failure: "" = a default text */
  uint32_t delay_ms;
};

/* An API answer, a send result or an upload result waiting for its time
 * (internal). */
struct blazebot_test_event {
  int is_api;
  unsigned gen;
  uint64_t due_ms, seq;
  blazebot_api_fn api_fn;
  blazebot_send_fn send_fn;
  void *arg;
  uint64_t serial; /* of the api call or the sent message */
  int32_t http_status, error_code;
  char *body;
  size_t body_len;
  uint32_t status;
  int32_t code;
  char message_id[BLAZEBOT_ID_LEN];
  /* An upload's result (http_status and error_code above). */
  int is_upload;
  blazebot_upload_fn upload_fn;
  int ok;
  char attachment_id[64];
  char error[128];
};

/* One delivery: an on_message call and the holds it took. */
struct blazebot_test_delivery {
  uint64_t serial;     /* 1, 2, ... in delivery order; 0: a free slot */
  char message_id[64]; /* the message's id (at most 63 bytes kept) */
  unsigned gen;        /* the instance it went to */
  int rc;              /* what on_message returned */
  int result;          /* the strongest of rc and the releases so far (RETRY, an error,
                          HANDLED, PASS): the outcome once ended */
  int holds;           /* holds outstanding */
  int taken;           /* holds taken in all */
  int ended;           /* on_message returned and no hold is left */
  int forced;          /* the host released holds as RETRY (reload or unload) */
  uint32_t sends;      /* replies and sends tied to it */
  int in_call;         /* on_message is running */
  struct blazebot_message *view; /* the copy handed to the plugin, freed at the end */
};

/* A hold (internal): the blazebot_hold handed to the plugin points to one. */
struct blazebot_test_hold_rec {
  struct blazebot_test_hold_rec *next;
  size_t delivery; /* index in deliveries */
  unsigned gen;
  int released;
};

/* The fake host. Fields marked "set" may be changed by the test; the rest
 * are read-only records. */
struct blazebot_test_host {
  struct blazebot_host host; /* the table init receives */

  const char *bot_id; /* set: what host->bot_id returns (BLAZEBOT_TEST_BOT_ID) */
  int fail_sends;     /* set: reply and send return -1, as with a full outbox */
  int verbose;        /* set: also print log lines to stderr (or env
                         BLAZEBOT_TEST_VERBOSE=1) */

  /* The loaded instance. */
  int loaded;
  struct blazebot_plugin desc; /* the plugin's descriptor, copied as the host does */
  void *state;
  unsigned gen, next_gen;

  /* Which callback is running, for the contract checks. */
  int in_init, in_save_state;
  unsigned init_gen;
  const struct blazebot_message *current;

  /* What the plugin did. */
  size_t violations; /* services used against plugin.h (each also logged) */
  int has_error;     /* set_error was called */
  char error[BLAZEBOT_TEST_LOG_LEN];
  size_t nsent;
  struct blazebot_test_sent sent[BLAZEBOT_TEST_MAX_SENT];
  size_t nlog, log_dropped;
  int log_level[BLAZEBOT_TEST_MAX_LOG];
  char log[BLAZEBOT_TEST_MAX_LOG][BLAZEBOT_TEST_LOG_LEN];

  /* Services' state. */
  size_t nconfig;
  char *config_key[BLAZEBOT_TEST_MAX_CONFIG];
  char *config_value[BLAZEBOT_TEST_MAX_CONFIG];
  uint64_t uuid_counter, message_counter;
  uint64_t now_ms, timer_counter;
  struct blazebot_test_timer timers[BLAZEBOT_TEST_MAX_TIMERS];
  size_t npending;
  struct blazebot_test_pending pending[BLAZEBOT_TEST_MAX_PENDING];
  void *saved_blob; /* from state_put, for the next generation */
  size_t saved_len;
  int has_saved;
  void *offered_blob; /* what state_get returns during init */
  size_t offered_len;
  int has_offered;

  /* The message built by blazebot_test_message. */
  struct blazebot_message msg;
  char *msg_buf;

  /* ---- since ABI minor 1 ---- */
  int fail_api;            /* set: api_request returns -1 */
  uint32_t api_timeout_ms; /* set: the deadline of an api_request given timeout_ms 0
                              (BLAZEBOT_TEST_API_TIMEOUT_MS; 0 = none) */
  int no_state_dir;        /* set: state_dir returns NULL, as without the daemon's
                              state_dir */
  int64_t wall_offset;     /* the wall clock minus now_ms */
  unsigned cb_gen;         /* the instance a result callback runs for */
  unsigned retiring;       /* the instance being retired (reload) or stopped */
  int stopping;            /* ... by unload: results settle as no answer, GAVE_UP */
  char instance_name[128]; /* "" = the descriptor's name */
  int state_set;           /* state_path was set by the test */
  char state_path[BLAZEBOT_TEST_PATH_LEN]; /* what state_dir returns; "" = not yet */
  char state_root[BLAZEBOT_TEST_PATH_LEN]; /* the temporary folder to remove */
  uint64_t delivery_counter, api_counter, send_counter, event_counter;
  size_t cur_delivery; /* 1 + the index of the delivery on_message runs for */
  struct blazebot_test_delivery deliveries[BLAZEBOT_TEST_MAX_DELIVERIES];
  struct blazebot_test_hold_rec *holds; /* every hold taken, newest first */
  size_t napi;
  struct blazebot_test_api_call api[BLAZEBOT_TEST_MAX_API];
  size_t napi_scripts;
  struct blazebot_test_api_script api_scripts[BLAZEBOT_TEST_MAX_SCRIPTS];
  struct blazebot_test_api_script api_default;
  int api_default_set;
  size_t nsend_scripts;
  struct blazebot_test_send_script send_scripts[BLAZEBOT_TEST_MAX_SCRIPTS];
  struct blazebot_test_send_script send_default;
  struct blazebot_test_event *events; /* results not yet delivered */
  size_t nevents, events_cap;

  /* ---- the upload service (ABI minor 1) ---- */
  int fail_upload;            /* set: upload returns -1 */
  uint32_t upload_timeout_ms; /* set: the deadline of an upload given timeout_ms 0
                                 (BLAZEBOT_TEST_UPLOAD_TIMEOUT_MS; 0 = none) */
  uint64_t upload_counter, attachment_counter;
  size_t nuploads;
  struct blazebot_test_upload uploads[BLAZEBOT_TEST_MAX_UPLOADS];
  size_t nupload_scripts;
  struct blazebot_test_upload_script upload_scripts[BLAZEBOT_TEST_MAX_SCRIPTS];
  struct blazebot_test_upload_script upload_default;
};

/* ---- internals ------------------------------------------------------------------- */

#if defined(__GNUC__)
#define BLAZEBOT_TEST_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define BLAZEBOT_TEST_PRINTF(f, a)
#endif

static inline struct blazebot_test_host *blazebot_test_i_th(blazebot_ctx *ctx) {
  return (struct blazebot_test_host *)(void *)ctx;
}

static inline blazebot_ctx *blazebot_test_i_ctx(struct blazebot_test_host *th) {
  return (blazebot_ctx *)(void *)th;
}

static inline char *blazebot_test_i_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = (char *)malloc(n);
  if (p)
    memcpy(p, s, n);
  return p;
}

static inline void blazebot_test_i_vlog(struct blazebot_test_host *th, int level,
                                        const char *fmt, va_list ap)
    BLAZEBOT_TEST_PRINTF(3, 0);
static inline void blazebot_test_i_vlog(struct blazebot_test_host *th, int level,
                                        const char *fmt, va_list ap) {
  char line[BLAZEBOT_TEST_LOG_LEN];
  const char *env;
  vsnprintf(line, sizeof line, fmt, ap);
  env = getenv("BLAZEBOT_TEST_VERBOSE");
  if (th->verbose || (env && env[0] == '1'))
    fprintf(stderr, "[%s] %d: %s\n", th->desc.name ? th->desc.name : "plugin", level,
            line);
  if (th->nlog == BLAZEBOT_TEST_MAX_LOG) {
    th->log_dropped++;
    return;
  }
  th->log_level[th->nlog] = level;
  memcpy(th->log[th->nlog], line, sizeof line);
  th->nlog++;
}

/* Logs a breach of plugin.h's rules as an error line starting "testing.h:". */
static inline void blazebot_test_i_violation(struct blazebot_test_host *th,
                                             const char *fmt, ...)
    BLAZEBOT_TEST_PRINTF(2, 3);
static inline void blazebot_test_i_violation(struct blazebot_test_host *th,
                                             const char *fmt, ...) {
  static const char tag[] = "testing.h: ";
  char line[BLAZEBOT_TEST_LOG_LEN];
  va_list ap;
  memcpy(line, tag, sizeof tag - 1);
  va_start(ap, fmt);
  vsnprintf(line + sizeof tag - 1, sizeof line - (sizeof tag - 1), fmt, ap);
  va_end(ap);
  th->violations++;
  fprintf(stderr, "contract violation: %s\n", line);
  /* Kept with the plugin's own lines, so a test can look for it. */
  if (th->nlog < BLAZEBOT_TEST_MAX_LOG) {
    th->log_level[th->nlog] = BLAZEBOT_LOG_ERROR;
    memcpy(th->log[th->nlog], line, sizeof line);
    th->nlog++;
  } else {
    th->log_dropped++;
  }
}

/* Copies s into a fixed field of n bytes; -1 if it does not fit. */
static inline int blazebot_test_i_copy(char *dst, size_t n, const char *s) {
  size_t len;
  if (!s) {
    dst[0] = '\0';
    return 0;
  }
  len = strlen(s);
  if (len >= n)
    return -1;
  memcpy(dst, s, len + 1);
  return 0;
}

static inline int blazebot_test_i_lower(int c) {
  return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static inline int blazebot_test_i_strcaseeq(const char *a, const char *b) {
  while (*a && blazebot_test_i_lower((unsigned char)*a) ==
                   blazebot_test_i_lower((unsigned char)*b)) {
    a++;
    b++;
  }
  return *a == '\0' && *b == '\0';
}

/* The instance a service call comes from. */
static inline unsigned blazebot_test_i_gen(const struct blazebot_test_host *th) {
  if (th->in_init)
    return th->init_gen;
  return th->cb_gen ? th->cb_gen : th->gen;
}

/* Whether a call from the current instance must fail because it is being
 * retired or stopped (as the daemon's services do after the swap). */
static inline int blazebot_test_i_retired(const struct blazebot_test_host *th) {
  return th->retiring && blazebot_test_i_gen(th) == th->retiring;
}

/* How strong a result is when a delivery ends: RETRY, an error, HANDLED, PASS. */
static inline int blazebot_test_i_strength(int r) {
  if (r == BLAZEBOT_RETRY)
    return 4;
  if (r < 0)
    return 3;
  return r == BLAZEBOT_HANDLED ? 2 : 1;
}

/* Folds r into d's result (an unknown positive value counts as PASS, as in
 * the daemon; the first error is kept). */
static inline void blazebot_test_i_combine(struct blazebot_test_delivery *d, int r) {
  if (r > 0 && r != BLAZEBOT_HANDLED && r != BLAZEBOT_RETRY)
    r = BLAZEBOT_PASS;
  if (blazebot_test_i_strength(r) > blazebot_test_i_strength(d->result))
    d->result = r;
}

/* Ends d once on_message returned and no hold is left; the view goes. */
static inline void blazebot_test_i_settle_delivery(struct blazebot_test_delivery *d) {
  if (d->ended || d->in_call || d->holds > 0)
    return;
  d->ended = 1;
  free(d->view);
  d->view = NULL;
}

/* A copy of src in one block, as the host's own view of the message (fields
 * a smaller struct lacks read as 0, NULL strings as ""). */
static inline struct blazebot_message *
blazebot_test_i_copy_message(const struct blazebot_message *src) {
  struct blazebot_message m, *v;
  const char **f[11];
  size_t len, i, n;
  char *p;
  memset(&m, 0, sizeof m);
  memcpy(&m, src, src->size && src->size < sizeof m ? src->size : sizeof m);
  f[0] = &m.message_id;
  f[1] = &m.conversation_id;
  f[2] = &m.user_id;
  f[3] = &m.representative_id;
  f[4] = &m.quote_message_id;
  f[5] = &m.session_id;
  f[6] = &m.category;
  f[7] = &m.source;
  f[8] = &m.status;
  f[9] = &m.created_at;
  f[10] = &m.updated_at;
  if (!m.data)
    m.data_len = 0;
  if (!m.raw_json)
    m.raw_json_len = 0;
  len = sizeof m + m.data_len + 1 + m.raw_json_len + 1;
  for (i = 0; i < 11; i++)
    len += (*f[i] ? strlen(*f[i]) : 0) + 1;
  v = (struct blazebot_message *)malloc(len);
  if (!v)
    return NULL;
  p = (char *)(v + 1);
  for (i = 0; i < 11; i++) {
    const char *s = *f[i] ? *f[i] : "";
    n = strlen(s) + 1;
    memcpy(p, s, n);
    *f[i] = p;
    p += n;
  }
  if (m.data_len)
    memcpy(p, m.data, m.data_len);
  p[m.data_len] = '\0';
  m.data = (const uint8_t *)p;
  p += m.data_len + 1;
  if (m.raw_json_len)
    memcpy(p, m.raw_json, m.raw_json_len);
  p[m.raw_json_len] = '\0';
  m.raw_json = p;
  m.size = sizeof m;
  *v = m;
  return v;
}

/* A zeroed slot at the end of the pending results, or NULL (out of memory);
 * the caller fills it and then counts it (nevents++). */
static inline struct blazebot_test_event *
blazebot_test_i_event_slot(struct blazebot_test_host *th) {
  struct blazebot_test_event *e;
  if (th->nevents == th->events_cap) {
    size_t cap = th->events_cap ? 2 * th->events_cap : 16;
    void *p = realloc(th->events, cap * sizeof *th->events);
    if (!p)
      return NULL;
    th->events = (struct blazebot_test_event *)p;
    th->events_cap = cap;
  }
  e = &th->events[th->nevents];
  memset(e, 0, sizeof *e);
  return e;
}

/* The index of the earliest result of instance gen due by limit (any, when
 * all), earliest first and then in the order made; nevents when none. */
static inline size_t blazebot_test_i_next_event(const struct blazebot_test_host *th,
                                                unsigned gen, uint64_t limit, int all) {
  size_t i, best = th->nevents;
  for (i = 0; i < th->nevents; i++) {
    const struct blazebot_test_event *e = &th->events[i];
    if (e->gen != gen || (!all && e->due_ms > limit))
      continue;
    if (best == th->nevents || e->due_ms < th->events[best].due_ms ||
        (e->due_ms == th->events[best].due_ms && e->seq < th->events[best].seq))
      best = i;
  }
  return best;
}

/* The live or released hold h, or NULL when the host never handed it out. */
static inline struct blazebot_test_hold_rec *
blazebot_test_i_find_hold(const struct blazebot_test_host *th, const void *h) {
  struct blazebot_test_hold_rec *r;
  for (r = th->holds; h && r; r = r->next)
    if ((const void *)r == h)
      return r;
  return NULL;
}

/* The delivery whose view is msg and that the plugin still holds, or NULL. */
static inline struct blazebot_test_delivery *
blazebot_test_i_held_view(struct blazebot_test_host *th,
                          const struct blazebot_message *msg) {
  size_t i;
  for (i = 0; msg && i < BLAZEBOT_TEST_MAX_DELIVERIES; i++) {
    struct blazebot_test_delivery *d = &th->deliveries[i];
    if (d->serial && !d->ended && d->holds > 0 && d->view == msg)
      return d;
  }
  return NULL;
}

/* Removes path and what it holds; symbolic links are removed, not followed. */
static inline void blazebot_test_i_rmtree(const char *path, int depth) {
#ifdef BLAZEBOT_TEST_POSIX
  char child[BLAZEBOT_TEST_PATH_LEN + 256];
  int pass;
  if (unlink(path) == 0 || depth > 32)
    return;
  for (pass = 0; pass < 3; pass++) {
    DIR *dir;
    struct dirent *e;
    if (rmdir(path) == 0)
      return;
    if (!(dir = opendir(path)))
      return;
    while ((e = readdir(dir)) != NULL) {
      int n;
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      n = snprintf(child, sizeof child, "%s/%s", path, e->d_name);
      if (n > 0 && (size_t)n < sizeof child)
        blazebot_test_i_rmtree(child, depth + 1);
    }
    closedir(dir);
  }
#else
  (void)path;
  (void)depth;
#endif
}

/* ---- MD5 (RFC 1321), for unique_conversation_id ---------------------------------- */

static inline uint32_t blazebot_test_i_rol(uint32_t x, unsigned c) {
  return (x << c) | (x >> (32 - c));
}

static inline void blazebot_test_i_md5_block(uint32_t h[4], const unsigned char *p) {
  static const uint32_t k[64] = {
      0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
      0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
      0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
      0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
      0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
      0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
      0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
      0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
      0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
      0xeb86d391};
  static const unsigned char r[64] = {7,  12, 17, 22, 7,  12, 17, 22, 7,  12, 17, 22, 7,
                                      12, 17, 22, 5,  9,  14, 20, 5,  9,  14, 20, 5,  9,
                                      14, 20, 5,  9,  14, 20, 4,  11, 16, 23, 4,  11, 16,
                                      23, 4,  11, 16, 23, 4,  11, 16, 23, 6,  10, 15, 21,
                                      6,  10, 15, 21, 6,  10, 15, 21, 6,  10, 15, 21};
  uint32_t w[16], a = h[0], b = h[1], c = h[2], d = h[3];
  unsigned i;
  for (i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
           (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
  for (i = 0; i < 64; i++) {
    uint32_t f, t;
    unsigned g;
    if (i < 16) {
      f = (b & c) | (~b & d);
      g = i;
    } else if (i < 32) {
      f = (d & b) | (~d & c);
      g = (5 * i + 1) % 16;
    } else if (i < 48) {
      f = b ^ c ^ d;
      g = (3 * i + 5) % 16;
    } else {
      f = c ^ (b | ~d);
      g = (7 * i) % 16;
    }
    t = d;
    d = c;
    c = b;
    b = b + blazebot_test_i_rol(a + f + k[i] + w[g], r[i]);
    a = t;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
}

/* out = MD5(data[0..len)). */
static inline void blazebot_test_md5(const void *data, size_t len,
                                     unsigned char out[16]) {
  const unsigned char *p = (const unsigned char *)data;
  uint32_t h[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
  unsigned char tail[128];
  size_t rest = len % 64, n, i;
  uint64_t bits = (uint64_t)len * 8;
  for (i = 0; i + 64 <= len; i += 64)
    blazebot_test_i_md5_block(h, p + i);
  memset(tail, 0, sizeof tail);
  if (rest)
    memcpy(tail, p + len - rest, rest);
  tail[rest] = 0x80;
  n = rest < 56 ? 64 : 128;
  for (i = 0; i < 8; i++)
    tail[n - 8 + i] = (unsigned char)(bits >> (8 * i));
  blazebot_test_i_md5_block(h, tail);
  if (n == 128)
    blazebot_test_i_md5_block(h, tail + 64);
  for (i = 0; i < 16; i++)
    out[i] = (unsigned char)(h[i / 4] >> (8 * (i % 4)));
}

/* The 1:1 conversation id of users a and b (protocol.md §6.3): MD5 of the
 * two lowercase ids concatenated in byte order, with the version (3) and
 * variant bits set, as a lowercase 8-4-4-4-12 string. Returns 0, or -1 when
 * an id is NULL or longer than 64 bytes. */
static inline int blazebot_test_unique_conversation_id(const char *a, const char *b,
                                                       char out[BLAZEBOT_ID_LEN]) {
  char la[65], lb[65], cat[130];
  unsigned char d[16];
  size_t na, nb, i, o = 0;
  static const char hex[] = "0123456789abcdef";
  if (!a || !b || (na = strlen(a)) > 64 || (nb = strlen(b)) > 64)
    return -1;
  for (i = 0; i <= na; i++)
    la[i] = (char)blazebot_test_i_lower((unsigned char)a[i]);
  for (i = 0; i <= nb; i++)
    lb[i] = (char)blazebot_test_i_lower((unsigned char)b[i]);
  if (strcmp(la, lb) <= 0) {
    memcpy(cat, la, na);
    memcpy(cat + na, lb, nb);
  } else {
    memcpy(cat, lb, nb);
    memcpy(cat + nb, la, na);
  }
  blazebot_test_md5(cat, na + nb, d);
  d[6] = (unsigned char)((d[6] & 0x0f) | 0x30);
  d[8] = (unsigned char)((d[8] & 0x3f) | 0x80);
  for (i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out[o++] = '-';
    out[o++] = hex[d[i] >> 4];
    out[o++] = hex[d[i] & 15];
  }
  out[o] = '\0';
  return 0;
}

/* ---- the services ---------------------------------------------------------------- */

static inline void blazebot_test_i_log(blazebot_ctx *ctx, int level, const char *fmt, ...)
    BLAZEBOT_TEST_PRINTF(3, 4);
static inline void blazebot_test_i_log(blazebot_ctx *ctx, int level, const char *fmt,
                                       ...) {
  va_list ap;
  va_start(ap, fmt);
  blazebot_test_i_vlog(blazebot_test_i_th(ctx), level, fmt, ap);
  va_end(ap);
}

static inline const char *blazebot_test_i_config_get(blazebot_ctx *ctx, const char *key) {
  struct blazebot_test_host *th = blazebot_test_i_th(ctx);
  size_t i;
  if (!key)
    return NULL;
  for (i = 0; i < th->nconfig; i++)
    if (strcmp(th->config_key[i], key) == 0)
      return th->config_value[i];
  return NULL;
}

static inline int blazebot_test_i_config_int(blazebot_ctx *ctx, const char *key,
                                             int64_t def, int64_t *out) {
  const char *v = blazebot_test_i_config_get(ctx, key), *p;
  uint64_t acc = 0, limit;
  int neg = 0;
  *out = def;
  if (!v)
    return 0;
  p = v;
  if (*p == '-' || *p == '+')
    neg = *p++ == '-';
  limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  if (*p == '\0')
    goto bad;
  for (; *p; p++) {
    unsigned digit;
    if (*p < '0' || *p > '9')
      goto bad;
    digit = (unsigned)(*p - '0');
    if (acc > (limit - digit) / 10)
      goto bad;
    acc = acc * 10 + digit;
  }
  *out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
  return 0;
bad:
  blazebot_test_i_log(ctx, BLAZEBOT_LOG_ERROR, "test.ini: %s = %s: not an integer", key,
                      v);
  return -1;
}

static inline int blazebot_test_i_config_bool(blazebot_ctx *ctx, const char *key, int def,
                                              int *out) {
  static const char *const yes[] = {"1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off"};
  const char *v = blazebot_test_i_config_get(ctx, key);
  size_t i;
  *out = def;
  if (!v)
    return 0;
  for (i = 0; i < 4; i++) {
    if (blazebot_test_i_strcaseeq(v, yes[i])) {
      *out = 1;
      return 0;
    }
    if (blazebot_test_i_strcaseeq(v, no[i])) {
      *out = 0;
      return 0;
    }
  }
  blazebot_test_i_log(ctx, BLAZEBOT_LOG_ERROR, "test.ini: %s = %s: not a boolean", key,
                      v);
  return -1;
}

static inline int blazebot_test_i_uuid(blazebot_ctx *ctx, char out[BLAZEBOT_ID_LEN]) {
  struct blazebot_test_host *th = blazebot_test_i_th(ctx);
  /* 12 hex digits: the counter wraps after 2^48 ids. */
  snprintf(out, BLAZEBOT_ID_LEN, BLAZEBOT_TEST_UUID_PREFIX "%012llx",
           (unsigned long long)(++th->uuid_counter & 0xFFFFFFFFFFFFull));
  return 0;
}

/* The result of the outgoing message id: the first script naming it, else
 * the first script for any message (both used up), else the default. */
static inline struct blazebot_test_send_script
blazebot_test_i_send_outcome(struct blazebot_test_host *th, const char *id) {
  struct blazebot_test_send_script out = th->send_default;
  size_t i, pick = th->nsend_scripts;
  for (i = 0; i < th->nsend_scripts && pick == th->nsend_scripts; i++)
    if (th->send_scripts[i].message_id[0] &&
        strcmp(th->send_scripts[i].message_id, id) == 0)
      pick = i;
  for (i = 0; i < th->nsend_scripts && pick == th->nsend_scripts; i++)
    if (!th->send_scripts[i].message_id[0])
      pick = i;
  if (pick < th->nsend_scripts) {
    out = th->send_scripts[pick];
    memmove(&th->send_scripts[pick], &th->send_scripts[pick + 1],
            (th->nsend_scripts - pick - 1) * sizeof th->send_scripts[0]);
    th->nsend_scripts--;
  }
  return out;
}

/* Records one outgoing message, tied to delivery tie (or NULL), and queues
 * its result for done (may be NULL). */
static inline int blazebot_test_i_record(struct blazebot_test_host *th, int is_reply,
                                         const struct blazebot_outgoing *m,
                                         struct blazebot_test_delivery *tie,
                                         blazebot_send_fn done, void *arg,
                                         int with_result, char id_out[BLAZEBOT_ID_LEN]) {
  struct blazebot_test_sent *s;
  struct blazebot_test_event *ev;
  struct blazebot_test_send_script r;
  const char *what = is_reply ? "reply" : with_result ? "send_result" : "send";
  if (!m->conversation_id || !m->category || !m->category[0] ||
      (!m->data && m->data_len)) {
    blazebot_test_i_violation(th, "%s: conversation_id, category or data missing", what);
    return -1;
  }
  if (th->fail_sends)
    return -1;
  if (th->nsent == BLAZEBOT_TEST_MAX_SENT) {
    blazebot_test_i_log(blazebot_test_i_ctx(th), BLAZEBOT_LOG_WARN,
                        "testing.h: outbox full (%d messages recorded)",
                        BLAZEBOT_TEST_MAX_SENT);
    return -1;
  }
  s = &th->sent[th->nsent];
  memset(s, 0, sizeof *s);
  s->is_reply = is_reply;
  s->flags = m->flags;
  if (blazebot_test_i_copy(s->category, sizeof s->category, m->category) ||
      blazebot_test_i_copy(s->conversation_id, sizeof s->conversation_id,
                           m->conversation_id) ||
      blazebot_test_i_copy(s->recipient_id, sizeof s->recipient_id, m->recipient_id) ||
      blazebot_test_i_copy(s->quote_message_id, sizeof s->quote_message_id,
                           m->quote_message_id) ||
      blazebot_test_i_copy(s->representative_id, sizeof s->representative_id,
                           m->representative_id) ||
      blazebot_test_i_copy(s->message_id, sizeof s->message_id, m->message_id)) {
    blazebot_test_i_violation(th, "%s: an id or the category is too long", what);
    return -1;
  }
  if (!(ev = blazebot_test_i_event_slot(th)))
    return -1;
  if (!s->message_id[0])
    blazebot_test_i_uuid(blazebot_test_i_ctx(th), s->message_id);
  s->data = (char *)malloc(m->data_len + 1);
  if (!s->data)
    return -1;
  if (m->data_len)
    memcpy(s->data, m->data, m->data_len);
  s->data[m->data_len] = '\0';
  s->data_len = m->data_len;
  s->serial = ++th->send_counter;
  s->with_result = with_result;
  if (tie) {
    s->ordinal = ++tie->sends;
    memcpy(s->tied_to, tie->message_id, sizeof s->tied_to);
  }
  th->nsent++;
  r = blazebot_test_i_send_outcome(th, s->message_id);
  ev->is_api = 0;
  ev->gen = blazebot_test_i_gen(th);
  ev->due_ms = th->now_ms + r.delay_ms;
  ev->seq = ++th->event_counter;
  ev->send_fn = done;
  ev->arg = arg;
  ev->serial = s->serial;
  ev->status = r.status;
  ev->code = r.code;
  memcpy(ev->message_id, s->message_id, BLAZEBOT_ID_LEN);
  th->nevents++;
  if (id_out)
    memcpy(id_out, s->message_id, BLAZEBOT_ID_LEN);
  return 0;
}

static inline int blazebot_test_i_reply(blazebot_ctx *ctx,
                                        const struct blazebot_message *msg,
                                        const char *category, const void *data,
                                        size_t len, char id_out[BLAZEBOT_ID_LEN]) {
  struct blazebot_test_host *th = blazebot_test_i_th(ctx);
  struct blazebot_test_delivery *tie = NULL;
  struct blazebot_outgoing m;
  if (msg && msg == th->current && th->cur_delivery)
    tie = &th->deliveries[th->cur_delivery - 1];
  else
    tie = blazebot_test_i_held_view(th, msg);
  if (!tie) {
    blazebot_test_i_violation(
        th, "reply outside on_message for that message and without a hold on it");
    return -1;
  }
  memset(&m, 0, sizeof m);
  m.size = sizeof m;
  m.conversation_id = msg->conversation_id;
  m.recipient_id = msg->user_id;
  m.category = category;
  m.data = data;
  m.data_len = len;
  return blazebot_test_i_record(th, 1, &m, tie, NULL, NULL, 0, id_out);
}

/* send and send_result: tied to m->hold's message, else to the message
 * on_message handles, if any. */
static inline int blazebot_test_i_send_common(struct blazebot_test_host *th,
                                              const struct blazebot_outgoing *m,
                                              blazebot_send_fn done, void *arg,
                                              int with_result,
                                              char id_out[BLAZEBOT_ID_LEN]) {
  struct blazebot_outgoing copy;
  struct blazebot_test_delivery *tie = NULL;
  size_t have =
      th->host.abi_minor ? sizeof copy : offsetof(struct blazebot_outgoing, hold);
  const char *what = with_result ? "send_result" : "send";
  if (!m || m->size < offsetof(struct blazebot_outgoing, data_len) + sizeof m->data_len) {
    blazebot_test_i_violation(th, "%s: NULL message or size too small", what);
    return -1;
  }
  /* As the host does: min(size, sizeof) into a zeroed struct. */
  memset(&copy, 0, sizeof copy);
  memcpy(&copy, m, m->size < have ? m->size : have);
  if (copy.hold) {
    struct blazebot_test_hold_rec *h = blazebot_test_i_find_hold(th, copy.hold);
    if (!h || h->released) {
      blazebot_test_i_violation(th, "%s: m->hold is %s", what,
                                h ? "already released" : "not a hold of this host");
      return -1;
    }
    tie = &th->deliveries[h->delivery];
  } else if (th->current && th->cur_delivery) {
    tie = &th->deliveries[th->cur_delivery - 1];
  }
  return blazebot_test_i_record(th, 0, &copy, tie, done, arg, with_result, id_out);
}

static inline int blazebot_test_i_send(blazebot_ctx *ctx,
                                       const struct blazebot_outgoing *m,
                                       char id_out[BLAZEBOT_ID_LEN]) {
  return blazebot_test_i_send_common(blazebot_test_i_th(ctx), m, NULL, NULL, 0, id_out);
}

static inline int blazebot_test_i_unique(blazebot_ctx *ctx, const char *a, const char *b,
                                         char out[BLAZEBOT_ID_LEN]) {
  (void)ctx;
  return blazebot_test_unique_conversation_id(a, b, out);
}

static inline const char *blazebot_test_i_bot_id(blazebot_ctx *ctx) {
  return blazebot_test_i_th(ctx)->bot_id;
}

/* A timer of the calling instance: due_ms on the monotonic clock, or (at_wall)
 * when the wall clock reaches wall_ms. */
static inline int blazebot_test_i_timer_new(struct blazebot_test_host *th,
                                            uint64_t due_ms, uint32_t repeat_ms,
                                            int at_wall, int64_t wall_ms,
                                            blazebot_timer_fn fn, void *arg,
                                            uint64_t *id_out) {
  size_t i;
  if (!fn || blazebot_test_i_retired(th))
    return -1;
  for (i = 0; i < BLAZEBOT_TEST_MAX_TIMERS; i++) {
    struct blazebot_test_timer *t = &th->timers[i];
    if (t->id)
      continue;
    t->id = ++th->timer_counter;
    t->due_ms = due_ms;
    t->repeat_ms = repeat_ms;
    t->gen = blazebot_test_i_gen(th);
    t->fn = fn;
    t->arg = arg;
    t->at_wall = at_wall;
    t->wall_ms = wall_ms;
    if (id_out)
      *id_out = t->id;
    return 0;
  }
  blazebot_test_i_log(blazebot_test_i_ctx(th), BLAZEBOT_LOG_WARN,
                      "testing.h: more than %d timers", BLAZEBOT_TEST_MAX_TIMERS);
  return -1;
}

static inline int blazebot_test_i_timer_add(blazebot_ctx *ctx, uint32_t delay_ms,
                                            uint32_t repeat_ms, blazebot_timer_fn fn,
                                            void *arg, uint64_t *id_out) {
  struct blazebot_test_host *th = blazebot_test_i_th(ctx);
  return blazebot_test_i_timer_new(th, th->now_ms + delay_ms, repeat_ms, 0, 0, fn, arg,
                                   id_out);
}

static inline int blazebot_test_i_timer_cancel(blazebot_ctx *ctx, uint64_t id) {
  struct blazebot_test_host *th = blazebot_test_i_th(ctx);
  size_t i;
  for (i = 0; id && i < BLAZEBOT_TEST_MAX_TIMERS; i++) {
    if (th->timers[i].id == id) {
      memset(&th->timers[i], 0, sizeof th->timers[i]);
      return 0;
    }
  }
  return -1;
}

/* Runs work at once; done waits until the current callback has returned. */
static inline int blazebot_test_i_run_blocking(blazebot_ctx *ctx, blazebot_work_fn work,
                                               blazebot_done_fn done, void *arg) {
  struct blazebot_test_host *th = blazebot_test_i_th(ctx);
  if (!work || blazebot_test_i_retired(th))
    return -1;
  if (done && th->npending == BLAZEBOT_TEST_MAX_PENDING) {
    blazebot_test_i_log(ctx, BLAZEBOT_LOG_WARN,
                        "testing.h: more than %d pending completions",
                        BLAZEBOT_TEST_MAX_PENDING);
    return -1;
  }
  work(arg);
  if (done) {
    th->pending[th->npending].gen = blazebot_test_i_gen(th);
    th->pending[th->npending].fn = done;
    th->pending[th->npending].arg = arg;
    th->npending++;
  }
  return 0;
}

/* ---- the services of ABI minor 1 ------------------------------------------------- */

/* Whether script s answers method and path: exact (both named), or loosely. */
static inline int blazebot_test_i_api_match(const struct blazebot_test_api_script *s,
                                            const char *method, const char *path,
                                            int exact) {
  if (exact && (!s->method[0] || !s->path))
    return 0;
  return (!s->method[0] || strcmp(s->method, method) == 0) &&
         (!s->path || strcmp(s->path, path) == 0);
}

static inline int blazebot_test_i_api_request(blazebot_ctx *ctx, const char *method,
                                              const char *path, const void *body,
                                              size_t body_len, uint32_t timeout_ms,
                                              blazebot_api_fn done, void *arg) {
  struct blazebot_test_host *th = blazebot_test_i_th(ctx);
  struct blazebot_test_api_call *c;
  struct blazebot_test_api_script s;
  struct blazebot_test_event *ev;
  uint32_t deadline;
  size_t i, pick;
  int exact;
  if (!method || !path || path[0] != '/' || !done || (!body && body_len) ||
      (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)) {
    blazebot_test_i_violation(th, "api_request: method (GET or POST), path (/...), "
                                  "body or done missing or invalid");
    return -1;
  }
  if (blazebot_test_i_retired(th) || th->fail_api)
    return -1;
  if (th->napi == BLAZEBOT_TEST_MAX_API) {
    blazebot_test_i_log(ctx, BLAZEBOT_LOG_WARN,
                        "testing.h: more than %d api_request calls recorded",
                        BLAZEBOT_TEST_MAX_API);
    return -1;
  }
  if (!(ev = blazebot_test_i_event_slot(th)))
    return -1;
  c = &th->api[th->napi];
  memset(c, 0, sizeof *c);
  c->path = blazebot_test_i_strdup(path);
  c->body = (char *)malloc(body_len + 1);
  if (!c->path || !c->body) {
    free(c->path);
    free(c->body);
    return -1;
  }
  memcpy(c->method, method, strlen(method) + 1);
  if (body_len)
    memcpy(c->body, body, body_len);
  c->body[body_len] = '\0';
  c->body_len = body_len;
  c->timeout_ms = timeout_ms;
  c->serial = ++th->api_counter;
  c->called_ms = th->now_ms;
  th->napi++;

  /* The answer: the first script naming the call, else the first loose one. */
  pick = th->napi_scripts;
  for (exact = 1; exact >= 0 && pick == th->napi_scripts; exact--)
    for (i = 0; i < th->napi_scripts && pick == th->napi_scripts; i++)
      if (blazebot_test_i_api_match(&th->api_scripts[i], method, path, exact))
        pick = i;
  if (pick < th->napi_scripts) {
    s = th->api_scripts[pick];
    memmove(&th->api_scripts[pick], &th->api_scripts[pick + 1],
            (th->napi_scripts - pick - 1) * sizeof th->api_scripts[0]);
    th->napi_scripts--;
    free(s.path);
  } else {
    s = th->api_default;
    s.body = NULL;
    if (th->api_default.body && (s.body = (char *)malloc(s.body_len + 1)) != NULL)
      memcpy(s.body, th->api_default.body, s.body_len + 1);
    if (!th->api_default_set)
      blazebot_test_i_log(ctx, BLAZEBOT_LOG_INFO,
                          "testing.h: %s %s: no scripted answer (http_status 0)", method,
                          path);
  }
  deadline = timeout_ms ? timeout_ms : th->api_timeout_ms;
  if (deadline && s.delay_ms > deadline) {
    /* The answer comes too late: no answer, at the deadline. */
    free(s.body);
    s.body = NULL;
    s.http_status = 0;
    s.error_code = 0;
    s.delay_ms = deadline;
  }
  ev->is_api = 1;
  ev->gen = blazebot_test_i_gen(th);
  ev->due_ms = th->now_ms + s.delay_ms;
  ev->seq = ++th->event_counter;
  ev->api_fn = done;
  ev->arg = arg;
  ev->serial = c->serial;
  ev->http_status = s.http_status;
  ev->error_code = s.error_code;
  ev->body = s.body;
  ev->body_len = s.body ? s.body_len : 0;
  th->nevents++;
  return 0;
}

static inline int blazebot_test_i_send_result(blazebot_ctx *ctx,
                                              const struct blazebot_outgoing *m,
                                              blazebot_send_fn done, void *arg,
                                              char id_out[BLAZEBOT_ID_LEN]) {
  return blazebot_test_i_send_common(blazebot_test_i_th(ctx), m, done, arg, 1, id_out);
}

static inline blazebot_hold *blazebot_test_i_hold(blazebot_ctx *ctx,
                                                  const struct blazebot_message *msg) {
  struct blazebot_test_host *th = blazebot_test_i_th(ctx);
  struct blazebot_test_delivery *d;
  struct blazebot_test_hold_rec *h;
  if (!msg || msg != th->current || !th->cur_delivery) {
    blazebot_test_i_violation(th, "hold outside on_message for that message");
    return NULL;
  }
  d = &th->deliveries[th->cur_delivery - 1];
  h = (struct blazebot_test_hold_rec *)calloc(1, sizeof *h);
  if (!h)
    return NULL;
  h->delivery = th->cur_delivery - 1;
  h->gen = d->gen;
  h->next = th->holds;
  th->holds = h;
  d->holds++;
  d->taken++;
  return (blazebot_hold *)(void *)h;
}

static inline int blazebot_test_i_release(blazebot_ctx *ctx, blazebot_hold *hold,
                                          int result) {
  struct blazebot_test_host *th = blazebot_test_i_th(ctx);
  struct blazebot_test_hold_rec *h = blazebot_test_i_find_hold(th, hold);
  struct blazebot_test_delivery *d;
  if (!h || h->released) {
    blazebot_test_i_violation(th, "release of %s hold",
                              h ? "an already released" : "an unknown");
    return -1;
  }
  d = &th->deliveries[h->delivery];
  h->released = 1;
  d->holds--;
  blazebot_test_i_combine(d, result);
  blazebot_test_i_settle_delivery(d);
  return 0;
}

static inline int64_t blazebot_test_i_now_ms(blazebot_ctx *ctx, int clock) {
  struct blazebot_test_host *th = blazebot_test_i_th(ctx);
  if (clock == BLAZEBOT_CLOCK_MONOTONIC)
    return (int64_t)th->now_ms;
  if (clock == BLAZEBOT_CLOCK_WALL)
    return (int64_t)th->now_ms + th->wall_offset;
  blazebot_test_i_violation(th, "now_ms: unknown clock %d", clock);
  return -1;
}

static inline int blazebot_test_i_timer_at(blazebot_ctx *ctx, int64_t wall_ms,
                                           blazebot_timer_fn fn, void *arg,
                                           uint64_t *id_out) {
  return blazebot_test_i_timer_new(blazebot_test_i_th(ctx), 0, 0, 1, wall_ms, fn, arg,
                                   id_out);
}

/* The instance's folder: the test's, or a new temporary one (mode 0700)
 * holding a folder named after the instance. NULL when there is none. */
static inline const char *blazebot_test_i_make_state_dir(struct blazebot_test_host *th) {
#ifdef BLAZEBOT_TEST_POSIX
  const char *base = getenv("TMPDIR"), *name;
  unsigned i;
  int n;
  if (th->no_state_dir)
    return NULL;
  if (th->state_path[0])
    return th->state_path;
  if (!base || !base[0])
    base = "/tmp";
  name = th->instance_name[0] ? th->instance_name : th->desc.name;
  if (!name || !name[0])
    name = "plugin";
  for (i = 1; i < 10000; i++) {
    char root[BLAZEBOT_TEST_PATH_LEN];
    n = snprintf(root, sizeof root, "%s/blazebot-test-%ld-%u", base, (long)getpid(), i);
    if (n < 0 || (size_t)n >= sizeof root)
      break;
    if (mkdir(root, 0700) != 0) {
      if (errno == EEXIST)
        continue;
      break;
    }
    memcpy(th->state_root, root, (size_t)n + 1);
    n = snprintf(th->state_path, sizeof th->state_path, "%s/%s", root, name);
    if (n > 0 && (size_t)n < sizeof th->state_path && chmod(root, 0700) == 0 &&
        mkdir(th->state_path, 0700) == 0 && chmod(th->state_path, 0700) == 0)
      return th->state_path;
    blazebot_test_i_rmtree(th->state_root, 0);
    th->state_root[0] = '\0';
    break;
  }
  th->state_path[0] = '\0';
  blazebot_test_i_log(blazebot_test_i_ctx(th), BLAZEBOT_LOG_WARN,
                      "testing.h: cannot make a state_dir in %s", base);
  return NULL;
#else
  if (th->no_state_dir || !th->state_path[0])
    return NULL;
  return th->state_path;
#endif
}

static inline const char *blazebot_test_i_state_dir(blazebot_ctx *ctx) {
  return blazebot_test_i_make_state_dir(blazebot_test_i_th(ctx));
}

static inline const char *blazebot_test_i_instance_name(blazebot_ctx *ctx) {
  struct blazebot_test_host *th = blazebot_test_i_th(ctx);
  return th->instance_name[0] ? th->instance_name : th->desc.name;
}

static inline void blazebot_test_i_set_error(blazebot_ctx *ctx, const char *fmt, ...)
    BLAZEBOT_TEST_PRINTF(2, 3);
static inline void blazebot_test_i_set_error(blazebot_ctx *ctx, const char *fmt, ...) {
  struct blazebot_test_host *th = blazebot_test_i_th(ctx);
  va_list ap;
  if (!th->in_init) {
    blazebot_test_i_violation(th, "set_error outside init");
    return;
  }
  va_start(ap, fmt);
  vsnprintf(th->error, sizeof th->error, fmt, ap);
  va_end(ap);
  th->has_error = 1;
}

static inline int blazebot_test_i_state_put(blazebot_ctx *ctx, const void *blob,
                                            size_t len) {
  struct blazebot_test_host *th = blazebot_test_i_th(ctx);
  void *copy;
  if (!th->in_save_state) {
    blazebot_test_i_violation(th, "state_put outside save_state");
    return -1;
  }
  if (!blob && len)
    return -1;
  copy = malloc(len ? len : 1);
  if (!copy)
    return -1;
  if (len)
    memcpy(copy, blob, len);
  free(th->saved_blob);
  th->saved_blob = copy;
  th->saved_len = len;
  th->has_saved = 1;
  return 0;
}

static inline int blazebot_test_i_state_get(blazebot_ctx *ctx, const void **blob,
                                            size_t *len) {
  struct blazebot_test_host *th = blazebot_test_i_th(ctx);
  if (!th->in_init) {
    blazebot_test_i_violation(th, "state_get outside init");
    return -1;
  }
  if (!th->has_offered)
    return -1;
  *blob = th->offered_blob;
  *len = th->offered_len;
  return 0;
}

/* "type/subtype", printable, no spaces, at most 127 bytes (as the daemon). */
static inline int blazebot_test_i_valid_mime(const char *m) {
  const char *slash = m ? strchr(m, '/') : NULL;
  if (!slash || slash == m || !slash[1] || strlen(m) > 127)
    return 0;
  for (; *m; m++)
    if ((unsigned char)*m <= ' ' || (unsigned char)*m >= 0x7f)
      return 0;
  return 1;
}

/* The text of a failed upload that names none: what the daemon says. */
static inline const char *blazebot_test_i_upload_why(int32_t http_status) {
  return http_status ? "POST /attachments failed" : "no answer before the deadline";
}

static inline int blazebot_test_i_upload(blazebot_ctx *ctx, const void *data, size_t len,
                                         const char *mime_type, uint32_t timeout_ms,
                                         blazebot_upload_fn done, void *arg) {
  struct blazebot_test_host *th = blazebot_test_i_th(ctx);
  struct blazebot_test_upload *u;
  struct blazebot_test_upload_script s;
  struct blazebot_test_event *ev;
  uint32_t deadline;
  if (!data || !len || len > BLAZEBOT_TEST_MAX_UPLOAD_LEN || !done ||
      !blazebot_test_i_valid_mime(mime_type) || timeout_ms > 3600000) {
    blazebot_test_i_violation(th, "upload: data (1 byte to 16 MiB), a MIME type like "
                                  "image/png, done or timeout_ms missing or invalid");
    return -1;
  }
  if (blazebot_test_i_retired(th) || th->fail_upload)
    return -1;
  if (th->nuploads == BLAZEBOT_TEST_MAX_UPLOADS) {
    blazebot_test_i_log(ctx, BLAZEBOT_LOG_WARN,
                        "testing.h: more than %d upload calls recorded",
                        BLAZEBOT_TEST_MAX_UPLOADS);
    return -1;
  }
  if (!(ev = blazebot_test_i_event_slot(th)))
    return -1;
  u = &th->uploads[th->nuploads];
  memset(u, 0, sizeof *u);
  if (!(u->data = (char *)malloc(len + 1)))
    return -1;
  memcpy(u->data, data, len);
  u->data[len] = '\0';
  u->len = len;
  memcpy(u->mime_type, mime_type, strlen(mime_type) + 1);
  u->timeout_ms = timeout_ms;
  u->serial = ++th->upload_counter;
  u->called_ms = th->now_ms;
  th->nuploads++;

  /* The result: the oldest script, else the default. */
  if (th->nupload_scripts) {
    s = th->upload_scripts[0];
    memmove(&th->upload_scripts[0], &th->upload_scripts[1],
            (th->nupload_scripts - 1) * sizeof th->upload_scripts[0]);
    th->nupload_scripts--;
  } else {
    s = th->upload_default;
  }
  deadline = timeout_ms ? timeout_ms : th->upload_timeout_ms;
  if (deadline && s.delay_ms > deadline) {
    /* The result comes too late: no answer, at the deadline. */
    memset(&s, 0, sizeof s);
    s.delay_ms = deadline;
  }
  if (s.ok && !s.attachment_id[0])
    snprintf(s.attachment_id, sizeof s.attachment_id,
             BLAZEBOT_TEST_ATTACHMENT_ID_PREFIX "%012llx",
             (unsigned long long)(++th->attachment_counter & 0xFFFFFFFFFFFFull));
  if (!s.ok && !s.error[0])
    snprintf(s.error, sizeof s.error, "%s", blazebot_test_i_upload_why(s.http_status));
  ev->is_upload = 1;
  ev->gen = blazebot_test_i_gen(th);
  ev->due_ms = th->now_ms + s.delay_ms;
  ev->seq = ++th->event_counter;
  ev->upload_fn = done;
  ev->arg = arg;
  ev->serial = u->serial;
  ev->ok = s.ok;
  ev->http_status = s.ok ? 200 : s.http_status;
  ev->error_code = s.ok ? 0 : s.error_code;
  if (s.ok)
    memcpy(ev->attachment_id, s.attachment_id, sizeof ev->attachment_id);
  else
    memcpy(ev->error, s.error, sizeof ev->error);
  th->nevents++;
  return 0;
}

/* Hands the earliest result of instance gen to its callback, with state,
 * and records it. A result of an instance being stopped settles as no answer
 * (http_status 0) or GAVE_UP. Returns 1 when a plugin callback ran. */
static inline int blazebot_test_i_run_event(struct blazebot_test_host *th, size_t idx,
                                            void *state) {
  struct blazebot_test_event e = th->events[idx];
  unsigned saved = th->cb_gen;
  int ran = 0;
  size_t i;
  memmove(&th->events[idx], &th->events[idx + 1],
          (th->nevents - idx - 1) * sizeof th->events[0]);
  th->nevents--;
  if (th->stopping && e.gen == th->retiring) {
    free(e.body);
    e.body = NULL;
    e.http_status = 0;
    e.error_code = 0;
    e.status = BLAZEBOT_SEND_GAVE_UP;
    e.code = 0;
    e.ok = 0;
    e.attachment_id[0] = '\0';
    snprintf(e.error, sizeof e.error, "the daemon is stopping");
  }
  th->cb_gen = e.gen;
  if (e.is_upload) {
    struct blazebot_upload_result r;
    for (i = 0; i < th->nuploads; i++) {
      struct blazebot_test_upload *u = &th->uploads[i];
      if (u->serial == e.serial) {
        u->answered = 1;
        u->answered_ms = th->now_ms;
        u->ok = e.ok;
        u->http_status = e.http_status;
        u->error_code = e.error_code;
        memcpy(u->attachment_id, e.attachment_id, sizeof u->attachment_id);
        memcpy(u->error, e.error, sizeof u->error);
      }
    }
    memset(&r, 0, sizeof r);
    r.size = sizeof r;
    r.ok = (uint32_t)e.ok;
    r.http_status = e.http_status;
    r.error_code = e.error_code;
    r.attachment_id = e.attachment_id;
    r.error = e.error;
    e.upload_fn(state, e.arg, &r);
    ran = 1;
  } else if (e.is_api) {
    struct blazebot_api_response r;
    for (i = 0; i < th->napi; i++) {
      if (th->api[i].serial == e.serial) {
        th->api[i].answered = 1;
        th->api[i].answered_ms = th->now_ms;
        th->api[i].http_status = e.http_status;
        th->api[i].error_code = e.error_code;
      }
    }
    memset(&r, 0, sizeof r);
    r.size = sizeof r;
    r.http_status = e.http_status;
    r.error_code = e.error_code;
    r.body = e.body ? e.body : "";
    r.body_len = e.body ? e.body_len : 0;
    e.api_fn(state, e.arg, &r);
    free(e.body);
    ran = 1;
  } else {
    for (i = 0; i < th->nsent; i++) {
      if (th->sent[i].serial == e.serial) {
        th->sent[i].settled = 1;
        th->sent[i].status = e.status;
        th->sent[i].code = e.code;
      }
    }
    if (e.send_fn) {
      struct blazebot_send_result r;
      memset(&r, 0, sizeof r);
      r.size = sizeof r;
      r.status = e.status;
      r.code = e.code;
      r.message_id = e.message_id;
      e.send_fn(state, e.arg, &r);
      ran = 1;
    }
  }
  th->cb_gen = saved;
  return ran;
}

/* Runs the completions that callbacks of the loaded instance queued, in
 * order (those of other instances are dropped), and the results due by now.
 * Returns how many result callbacks ran. */
static inline int blazebot_test_i_drain_n(struct blazebot_test_host *th) {
  int ran = 0, n = 0;
  while (n < BLAZEBOT_TEST_MAX_FIRES) {
    size_t e;
    if (th->npending) {
      struct blazebot_test_pending p = th->pending[0];
      memmove(&th->pending[0], &th->pending[1],
              (th->npending - 1) * sizeof th->pending[0]);
      th->npending--;
      if (th->loaded && p.gen == th->gen) {
        p.fn(th->state, p.arg);
        n++;
      }
      continue;
    }
    if (!th->loaded)
      break;
    e = blazebot_test_i_next_event(th, th->gen, th->now_ms, 0);
    if (e == th->nevents)
      break;
    ran += blazebot_test_i_run_event(th, e, th->state);
    n++;
  }
  if (n == BLAZEBOT_TEST_MAX_FIRES)
    blazebot_test_i_log(blazebot_test_i_ctx(th), BLAZEBOT_LOG_WARN,
                        "testing.h: %d callbacks in a row: the rest waits",
                        BLAZEBOT_TEST_MAX_FIRES);
  return ran;
}

static inline void blazebot_test_i_drain(struct blazebot_test_host *th) {
  blazebot_test_i_drain_n(th);
}

/* Forgets the timers, completions and pending results of instance gen. */
static inline void blazebot_test_i_forget(struct blazebot_test_host *th, unsigned gen) {
  size_t i, o = 0;
  for (i = 0; i < BLAZEBOT_TEST_MAX_TIMERS; i++)
    if (th->timers[i].id && th->timers[i].gen == gen)
      memset(&th->timers[i], 0, sizeof th->timers[i]);
  for (i = 0; i < th->npending; i++)
    if (th->pending[i].gen != gen)
      th->pending[o++] = th->pending[i];
  th->npending = o;
  for (i = 0, o = 0; i < th->nevents; i++) {
    if (th->events[i].gen != gen)
      th->events[o++] = th->events[i];
    else
      free(th->events[i].body);
  }
  th->nevents = o;
}

/* Retires instance gen (state) as the daemon does before its shutdown: its
 * completions run and its pending results are handed over at once (as
 * scripted on a reload; as no answer, GAVE_UP and a failed upload when
 * stopping), while its timer_add, timer_at, run_blocking, api_request and
 * upload fail; then the holds it still has are released as RETRY and its
 * timers go. */
static inline void blazebot_test_i_retire(struct blazebot_test_host *th, unsigned gen,
                                          void *state, int stopping) {
  struct blazebot_test_hold_rec *h;
  int n = 0;
  th->retiring = gen;
  th->stopping = stopping;
  while (n < BLAZEBOT_TEST_MAX_FIRES) {
    size_t i, e;
    for (i = 0; i < th->npending && th->pending[i].gen != gen; i++)
      ;
    if (i < th->npending) {
      struct blazebot_test_pending p = th->pending[i];
      unsigned saved = th->cb_gen;
      memmove(&th->pending[i], &th->pending[i + 1],
              (th->npending - i - 1) * sizeof th->pending[0]);
      th->npending--;
      th->cb_gen = gen;
      p.fn(state, p.arg);
      th->cb_gen = saved;
      n++;
      continue;
    }
    e = blazebot_test_i_next_event(th, gen, 0, 1);
    if (e == th->nevents)
      break;
    blazebot_test_i_run_event(th, e, state);
    n++;
  }
  for (h = th->holds; h; h = h->next) {
    struct blazebot_test_delivery *d = &th->deliveries[h->delivery];
    if (h->released || h->gen != gen)
      continue;
    h->released = 1;
    d->holds--;
    d->forced = 1;
    blazebot_test_i_combine(d, BLAZEBOT_RETRY);
    blazebot_test_i_settle_delivery(d);
  }
  blazebot_test_i_forget(th, gen);
  th->retiring = 0;
  th->stopping = 0;
}

/* The time timer t is due on the monotonic clock (at once if past). */
static inline uint64_t blazebot_test_i_timer_due(const struct blazebot_test_host *th,
                                                 const struct blazebot_test_timer *t) {
  int64_t d;
  if (!t->at_wall)
    return t->due_ms;
  d = t->wall_ms - th->wall_offset;
  return d < (int64_t)th->now_ms ? th->now_ms : (uint64_t)d;
}

/* Moves the fake clock ms forward in steps: each due timer or result runs at
 * its own time, earliest first (at equal times timers first, in the order
 * added, then results, in the order made). Returns how many timer and
 * result callbacks ran. */
static inline int blazebot_test_i_advance(struct blazebot_test_host *th, uint64_t ms) {
  uint64_t target = th->now_ms + ms;
  int fired = blazebot_test_i_drain_n(th);
  while (th->loaded && fired < BLAZEBOT_TEST_MAX_FIRES) {
    struct blazebot_test_timer *t = NULL;
    uint64_t tdue = 0;
    size_t i, e;
    for (i = 0; i < BLAZEBOT_TEST_MAX_TIMERS; i++) {
      struct blazebot_test_timer *c = &th->timers[i];
      uint64_t due;
      if (!c->id || c->gen != th->gen)
        continue;
      due = blazebot_test_i_timer_due(th, c);
      if (due <= target && (!t || due < tdue || (due == tdue && c->id < t->id))) {
        t = c;
        tdue = due;
      }
    }
    e = blazebot_test_i_next_event(th, th->gen, target, 0);
    if (!t && e == th->nevents)
      break;
    if (t && (e == th->nevents || tdue <= th->events[e].due_ms)) {
      blazebot_timer_fn fn = t->fn;
      void *arg = t->arg;
      if (tdue > th->now_ms)
        th->now_ms = tdue;
      if (t->repeat_ms && !t->at_wall)
        t->due_ms += t->repeat_ms;
      else
        memset(t, 0, sizeof *t);
      fn(th->state, arg);
      fired++;
    } else {
      if (th->events[e].due_ms > th->now_ms)
        th->now_ms = th->events[e].due_ms;
      fired += blazebot_test_i_run_event(th, e, th->state);
    }
    fired += blazebot_test_i_drain_n(th);
  }
  if (th->now_ms < target)
    th->now_ms = target;
  return fired;
}

/* Checks a descriptor as the daemon's loader does and copies it. */
static inline int blazebot_test_i_accept(struct blazebot_test_host *th,
                                         const struct blazebot_plugin *desc,
                                         struct blazebot_plugin *out) {
  const size_t need = offsetof(struct blazebot_plugin, shutdown) + sizeof desc->shutdown;
  memset(out, 0, sizeof *out);
  if (!desc || desc->size < need) {
    blazebot_test_i_violation(th, "descriptor missing or too small");
    return -1;
  }
  memcpy(out, desc, desc->size < sizeof *out ? desc->size : sizeof *out);
  if (out->abi_major != BLAZEBOT_ABI_MAJOR || out->abi_minor > th->host.abi_minor) {
    blazebot_test_i_violation(th, "descriptor ABI %u.%u, host %d.%u",
                              (unsigned)out->abi_major, (unsigned)out->abi_minor,
                              BLAZEBOT_ABI_MAJOR, (unsigned)th->host.abi_minor);
    return -1;
  }
  if (!out->name || !out->name[0] || !out->subscriptions || !out->init ||
      !out->on_message || !out->shutdown) {
    blazebot_test_i_violation(th,
                              "descriptor lacks name, subscriptions, init, on_message "
                              "or shutdown");
    return -1;
  }
  out->size = sizeof *out;
  return 0;
}

/* Calls desc's init as generation gen, offering the saved blob if any.
 * Returns init's result; *state gets the new instance's state. */
static inline int blazebot_test_i_init(struct blazebot_test_host *th,
                                       const struct blazebot_plugin *desc, unsigned gen,
                                       void **state) {
  int rc;
  th->offered_blob = th->saved_blob;
  th->offered_len = th->saved_len;
  th->has_offered = th->has_saved;
  th->saved_blob = NULL;
  th->saved_len = 0;
  th->has_saved = 0;
  th->has_error = 0;
  th->error[0] = '\0';
  *state = NULL;
  th->in_init = 1;
  th->init_gen = gen;
  rc = desc->init(blazebot_test_i_ctx(th), &th->host, state);
  th->in_init = 0;
  free(th->offered_blob);
  th->offered_blob = NULL;
  th->offered_len = 0;
  th->has_offered = 0;
  if (rc != 0 && !th->has_error)
    blazebot_test_i_log(blazebot_test_i_ctx(th), BLAZEBOT_LOG_WARN,
                        "testing.h: init failed without set_error");
  return rc;
}

/* ---- the test's API -------------------------------------------------------------- */

/* Fills th's host table as a host of ABI minor `minor` (0 or 1). */
static inline void blazebot_test_i_fill_host(struct blazebot_test_host *th,
                                             uint32_t minor) {
  memset(&th->host, 0, sizeof th->host);
  th->host.size = sizeof th->host;
  th->host.abi_minor = minor;
  th->host.log = blazebot_test_i_log;
  th->host.config_get = blazebot_test_i_config_get;
  th->host.config_int = blazebot_test_i_config_int;
  th->host.config_bool = blazebot_test_i_config_bool;
  th->host.reply = blazebot_test_i_reply;
  th->host.send = blazebot_test_i_send;
  th->host.uuid = blazebot_test_i_uuid;
  th->host.unique_conversation_id = blazebot_test_i_unique;
  th->host.bot_id = blazebot_test_i_bot_id;
  th->host.timer_add = blazebot_test_i_timer_add;
  th->host.timer_cancel = blazebot_test_i_timer_cancel;
  th->host.run_blocking = blazebot_test_i_run_blocking;
  th->host.set_error = blazebot_test_i_set_error;
  th->host.state_put = blazebot_test_i_state_put;
  th->host.state_get = blazebot_test_i_state_get;
  if (minor == 0) {
    th->host.size = (uint32_t)offsetof(struct blazebot_host, api_request);
    return;
  }
  th->host.api_request = blazebot_test_i_api_request;
  th->host.send_result = blazebot_test_i_send_result;
  th->host.hold = blazebot_test_i_hold;
  th->host.release = blazebot_test_i_release;
  th->host.now_ms = blazebot_test_i_now_ms;
  th->host.timer_at = blazebot_test_i_timer_at;
  th->host.state_dir = blazebot_test_i_state_dir;
  th->host.instance_name = blazebot_test_i_instance_name;
  th->host.upload = blazebot_test_i_upload;
}

/* Prepares th (nothing is allocated yet). */
static inline void blazebot_test_init(struct blazebot_test_host *th) {
  memset(th, 0, sizeof *th);
  blazebot_test_i_fill_host(th, BLAZEBOT_ABI_MINOR);
  th->bot_id = BLAZEBOT_TEST_BOT_ID;
  th->wall_offset = BLAZEBOT_TEST_WALL_START;
  th->api_timeout_ms = BLAZEBOT_TEST_API_TIMEOUT_MS;
  th->send_default.status = BLAZEBOT_SEND_ACCEPTED;
  th->upload_timeout_ms = BLAZEBOT_TEST_UPLOAD_TIMEOUT_MS;
  th->upload_default.ok = 1;
}

/* Sets key of the plugin's ini section to a copy of value; NULL removes it.
 * Takes effect at once (for a reconfigure test: change, then call
 * blazebot_test_reconfigure). Returns 0, or -1 when full or out of memory. */
static inline int blazebot_test_set_config(struct blazebot_test_host *th, const char *key,
                                           const char *value) {
  size_t i;
  char *v = NULL;
  if (!key)
    return -1;
  if (value && !(v = blazebot_test_i_strdup(value)))
    return -1;
  for (i = 0; i < th->nconfig; i++) {
    if (strcmp(th->config_key[i], key) == 0) {
      free(th->config_value[i]);
      if (v) {
        th->config_value[i] = v;
      } else {
        free(th->config_key[i]);
        th->nconfig--;
        th->config_key[i] = th->config_key[th->nconfig];
        th->config_value[i] = th->config_value[th->nconfig];
      }
      return 0;
    }
  }
  if (!v)
    return 0;
  if (th->nconfig == BLAZEBOT_TEST_MAX_CONFIG ||
      !(th->config_key[th->nconfig] = blazebot_test_i_strdup(key))) {
    free(v);
    return -1;
  }
  th->config_value[th->nconfig++] = v;
  return 0;
}

/* Checks desc as the daemon would, then calls its init. Returns init's
 * result (0 = loaded), or -1 when desc is refused (logged as a violation).
 * After a failure th->error holds what set_error said. */
static inline int blazebot_test_load(struct blazebot_test_host *th,
                                     const struct blazebot_plugin *desc) {
  struct blazebot_plugin d;
  unsigned gen;
  void *state;
  int rc;
  if (th->loaded) {
    blazebot_test_i_violation(th, "blazebot_test_load: a plugin is already loaded");
    return -1;
  }
  if (blazebot_test_i_accept(th, desc, &d))
    return -1;
  th->desc = d;
  gen = ++th->next_gen;
  rc = blazebot_test_i_init(th, &d, gen, &state);
  if (rc != 0) {
    blazebot_test_i_forget(th, gen);
    return rc;
  }
  th->state = state;
  th->gen = gen;
  th->loaded = 1;
  blazebot_test_i_drain(th);
  return 0;
}

/* Builds a message of category with data[0..len) as its payload from the
 * fixed test ids (BLAZEBOT_TEST_*), attempt 1, and a raw_json to match. The
 * message id ends in a counter, so each message has a new one. The message
 * lives in th and stays valid until the next call or the unload; the test
 * may change its fields (attempt, user_id, ...) before delivering it, though
 * raw_json keeps the original values. */
static inline struct blazebot_message *
blazebot_test_message_data(struct blazebot_test_host *th, const char *category,
                           const void *data, size_t len) {
  static const char b64[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const unsigned char *p = (const unsigned char *)data;
  struct blazebot_message *m = &th->msg;
  size_t clen = strlen(category), cap, o, i;
  char *buf, *id, *cat, *json;
  unsigned char *payload;
  if (!data)
    len = 0;
  /* One block: id, category, payload, then the JSON (category escaped at
   * most 6x, payload base64 at 4/3). */
  cap = BLAZEBOT_ID_LEN + (clen + 1) + (len + 1) + 600 + 6 * clen + (len + 2) / 3 * 4;
  buf = (char *)malloc(cap);
  if (!buf)
    return NULL;
  free(th->msg_buf);
  th->msg_buf = buf;
  id = buf;
  snprintf(id, BLAZEBOT_ID_LEN, BLAZEBOT_TEST_MESSAGE_ID_PREFIX "%012llx",
           (unsigned long long)(++th->message_counter & 0xFFFFFFFFFFFFull));
  cat = id + BLAZEBOT_ID_LEN;
  memcpy(cat, category, clen + 1);
  payload = (unsigned char *)(cat + clen + 1);
  if (len)
    memcpy(payload, data, len);
  payload[len] = '\0';
  json = (char *)(payload + len + 1);
  o = (size_t)sprintf(
      json,
      "{\"type\":\"message\",\"representative_id\":\"\",\"quote_message_id\":"
      "\"\",\"conversation_id\":\"%s\",\"user_id\":\"%s\",\"session_id\":"
      "\"%s\",\"message_id\":\"" BLAZEBOT_TEST_MESSAGE_ID_PREFIX
      "%012llx\",\"category\":\"",
      BLAZEBOT_TEST_CONVERSATION_ID, BLAZEBOT_TEST_USER_ID, BLAZEBOT_TEST_SESSION_ID,
      (unsigned long long)(th->message_counter & 0xFFFFFFFFFFFFull));
  for (i = 0; i < clen; i++) {
    unsigned char c = (unsigned char)category[i];
    if (c == '"' || c == '\\') {
      json[o++] = '\\';
      json[o++] = (char)c;
    } else if (c < 0x20) {
      o += (size_t)sprintf(json + o, "\\u%04x", c);
    } else {
      json[o++] = (char)c;
    }
  }
  o += (size_t)sprintf(json + o, "\",\"data_base64\":\"");
  for (i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16;
    if (i + 1 < len)
      v |= (uint32_t)p[i + 1] << 8;
    if (i + 2 < len)
      v |= p[i + 2];
    json[o++] = b64[(v >> 18) & 63];
    json[o++] = b64[(v >> 12) & 63];
    if (i + 1 < len)
      json[o++] = b64[(v >> 6) & 63];
    if (i + 2 < len)
      json[o++] = b64[v & 63];
  }
  o += (size_t)sprintf(
      json + o,
      "\",\"status\":\"SENT\",\"source\":\"CREATE_MESSAGE\",\"created_at\":"
      "\"%s\",\"updated_at\":\"%s\"}",
      BLAZEBOT_TEST_CREATED_AT, BLAZEBOT_TEST_CREATED_AT);

  memset(m, 0, sizeof *m);
  m->size = sizeof *m;
  m->attempt = 1;
  m->message_id = id;
  m->conversation_id = BLAZEBOT_TEST_CONVERSATION_ID;
  m->user_id = BLAZEBOT_TEST_USER_ID;
  m->representative_id = "";
  m->quote_message_id = "";
  m->session_id = BLAZEBOT_TEST_SESSION_ID;
  m->category = cat;
  m->source = "CREATE_MESSAGE";
  m->status = "SENT";
  m->created_at = BLAZEBOT_TEST_CREATED_AT;
  m->updated_at = BLAZEBOT_TEST_CREATED_AT;
  m->data = payload;
  m->data_len = len;
  m->raw_json = json;
  m->raw_json_len = o;
  return m;
}

/* blazebot_test_message_data with a NUL-terminated text payload. */
static inline struct blazebot_message *
blazebot_test_message(struct blazebot_test_host *th, const char *category,
                      const char *text) {
  return blazebot_test_message_data(th, category, text, text ? strlen(text) : 0);
}

/* Calls on_message as the daemon would (whether or not the plugin
 * subscribes to msg's category: see blazebot_test_subscribes), with the fake
 * host's own copy of msg, which stays valid while the plugin holds it (so
 * the test may reuse or free msg at once), then runs the completions it
 * queued and the results due. Returns what on_message returned, or -1 when
 * no plugin is loaded or msg is NULL (logged as a violation), or when
 * BLAZEBOT_TEST_MAX_DELIVERIES deliveries are held or memory runs out. How
 * the delivery ends: blazebot_test_outcome. */
static inline int blazebot_test_deliver(struct blazebot_test_host *th,
                                        const struct blazebot_message *msg) {
  struct blazebot_test_delivery *d = NULL;
  struct blazebot_message *view;
  size_t i, idx = 0;
  int rc;
  if (!th->loaded || !msg) {
    blazebot_test_i_violation(th,
                              "blazebot_test_deliver: no plugin loaded or no message");
    return -1;
  }
  /* A free slot, else the one of the oldest delivery that ended. */
  for (i = 0; i < BLAZEBOT_TEST_MAX_DELIVERIES; i++) {
    struct blazebot_test_delivery *c = &th->deliveries[i];
    if (!c->serial || (c->ended && (!d || (d->serial && c->serial < d->serial)))) {
      d = c;
      idx = i;
      if (!c->serial)
        break;
    }
  }
  if (!d) {
    blazebot_test_i_log(blazebot_test_i_ctx(th), BLAZEBOT_LOG_WARN,
                        "testing.h: more than %d deliveries held",
                        BLAZEBOT_TEST_MAX_DELIVERIES);
    return -1;
  }
  if (!(view = blazebot_test_i_copy_message(msg)))
    return -1;
  memset(d, 0, sizeof *d);
  d->serial = ++th->delivery_counter;
  for (i = 0; view->message_id[i] && i + 1 < sizeof d->message_id; i++)
    d->message_id[i] = view->message_id[i];
  d->gen = th->gen;
  d->result = BLAZEBOT_PASS;
  d->in_call = 1;
  d->view = view;
  th->current = view;
  th->cur_delivery = idx + 1;
  rc = th->desc.on_message(th->state, view);
  th->current = NULL;
  th->cur_delivery = 0;
  d->in_call = 0;
  d->rc = rc;
  blazebot_test_i_combine(d, rc);
  blazebot_test_i_settle_delivery(d);
  blazebot_test_i_drain(th);
  return rc;
}

/* Whether the static subscription table routes category to the plugin; the
 * priority goes to *priority (may be NULL). The ini key `categories`, which
 * overrides the table in the daemon, is not consulted. */
static inline int blazebot_test_subscribes(const struct blazebot_test_host *th,
                                           const char *category, int32_t *priority) {
  const struct blazebot_subscription *s;
  for (s = th->desc.subscriptions; s && s->category; s++) {
    size_t n = strlen(s->category);
    int match = n && s->category[n - 1] == '*'
                    ? strncmp(s->category, category, n - 1) == 0
                    : strcmp(s->category, category) == 0;
    if (match) {
      if (priority)
        *priority = s->priority;
      return 1;
    }
  }
  return 0;
}

/* Advances the fake clocks (monotonic and wall) by ms and runs every timer
 * (timer_add and timer_at) and hands over every API answer, send result and
 * upload result due by then, earliest first, each at its own time (now_ms in the callback
 * says when it was due; at equal times timers come first); a repeating timer
 * runs once for each period that elapsed. Returns how many callbacks ran (at
 * most BLAZEBOT_TEST_MAX_FIRES). fire_timers(th, 0) runs what is due now,
 * such as a timer_at in the past. */
static inline int blazebot_test_fire_timers(struct blazebot_test_host *th, uint32_t ms) {
  return blazebot_test_i_advance(th, ms);
}

/* How many timers of the loaded instance are live. */
static inline int blazebot_test_timer_count(const struct blazebot_test_host *th) {
  int n = 0;
  size_t i;
  for (i = 0; i < BLAZEBOT_TEST_MAX_TIMERS; i++)
    if (th->timers[i].id && th->timers[i].gen == th->gen)
      n++;
  return n;
}

/* A config-only reload: calls reconfigure (change the config first).
 * Returns its result, or -1 when the plugin has none (the daemon would then
 * re-init it: use blazebot_test_reload). */
static inline int blazebot_test_reconfigure(struct blazebot_test_host *th) {
  int rc;
  if (!th->loaded || !th->desc.reconfigure)
    return -1;
  rc = th->desc.reconfigure(th->state);
  blazebot_test_i_drain(th);
  return rc;
}

/* A reload as the daemon does it: the loaded instance's save_state (if
 * any) stores a blob, desc's init gets it through state_get; if that init
 * fails the old instance keeps running and its result is returned, else the
 * old instance is retired: its pending API answers, send results and upload
 * results are handed to it at once (as scripted), the holds it still has are released
 * as RETRY, its timers are cancelled, it is shut down and the new one takes
 * its place (0). desc may be the same descriptor. */
static inline int blazebot_test_reload(struct blazebot_test_host *th,
                                       const struct blazebot_plugin *desc) {
  struct blazebot_plugin d, old = th->desc;
  void *state, *old_state = th->state;
  unsigned gen, old_gen = th->gen;
  int rc;
  if (!th->loaded) {
    blazebot_test_i_violation(th, "blazebot_test_reload: no plugin loaded");
    return -1;
  }
  if (blazebot_test_i_accept(th, desc, &d))
    return -1;
  free(th->saved_blob);
  th->saved_blob = NULL;
  th->saved_len = 0;
  th->has_saved = 0;
  if (old.save_state) {
    th->in_save_state = 1;
    old.save_state(old_state);
    th->in_save_state = 0;
    blazebot_test_i_drain(th);
  }
  gen = ++th->next_gen;
  th->desc = d;
  rc = blazebot_test_i_init(th, &d, gen, &state);
  if (rc != 0) {
    blazebot_test_i_forget(th, gen);
    th->desc = old;
    return rc;
  }
  blazebot_test_i_retire(th, old_gen, old_state, 0);
  old.shutdown(old_state);
  th->state = state;
  th->gen = gen;
  blazebot_test_i_drain(th);
  return 0;
}

/* The outgoing messages (replies and sends) recorded so far, in order. */
static inline size_t blazebot_test_reply_count(const struct blazebot_test_host *th) {
  return th->nsent;
}

/* The i-th outgoing message, or NULL. */
static inline const struct blazebot_test_sent *
blazebot_test_reply(const struct blazebot_test_host *th, size_t i) {
  return i < th->nsent ? &th->sent[i] : NULL;
}

/* The payload of the i-th outgoing message (NUL-terminated), or NULL. */
static inline const char *blazebot_test_reply_text(const struct blazebot_test_host *th,
                                                   size_t i) {
  return i < th->nsent ? th->sent[i].data : NULL;
}

/* Forgets the recorded outgoing messages, API calls, uploads and log lines
 * (results still pending are delivered all the same). */
static inline void blazebot_test_clear(struct blazebot_test_host *th) {
  size_t i;
  for (i = 0; i < th->nsent; i++)
    free(th->sent[i].data);
  th->nsent = 0;
  for (i = 0; i < th->napi; i++) {
    free(th->api[i].path);
    free(th->api[i].body);
  }
  th->napi = 0;
  for (i = 0; i < th->nuploads; i++)
    free(th->uploads[i].data);
  th->nuploads = 0;
  th->nlog = 0;
  th->log_dropped = 0;
}

/* Whether a kept log line contains needle. */
static inline int blazebot_test_log_contains(const struct blazebot_test_host *th,
                                             const char *needle) {
  size_t i;
  for (i = 0; i < th->nlog; i++)
    if (strstr(th->log[i], needle))
      return 1;
  return 0;
}

/* Shuts the plugin down as the daemon does (completions run; API answers,
 * send results and upload results still pending are handed over at once as
 * no answer, http_status 0, GAVE_UP, and a failed upload with http_status 0
 * and error "the daemon is stopping"; holds still taken are released as
 * RETRY; timers cancelled; then shutdown) and frees everything th
 * allocated: the config, the recorded messages (the count drops to 0), API
 * calls and uploads, the scripts and the API default, the test message, any
 * saved state, and the temporary state_dir with what it holds. Log lines, error,
 * violations and the deliveries' outcomes stay readable. Safe to call when nothing is
 * loaded, and twice. */
static inline void blazebot_test_unload(struct blazebot_test_host *th) {
  struct blazebot_test_hold_rec *h;
  size_t i;
  if (th->loaded) {
    blazebot_test_i_drain(th);
    blazebot_test_i_retire(th, th->gen, th->state, 1);
    th->desc.shutdown(th->state);
    th->loaded = 0;
    th->state = NULL;
  }
  th->npending = 0;
  memset(th->timers, 0, sizeof th->timers);
  for (i = 0; i < th->nsent; i++)
    free(th->sent[i].data);
  th->nsent = 0;
  for (i = 0; i < th->nconfig; i++) {
    free(th->config_key[i]);
    free(th->config_value[i]);
  }
  th->nconfig = 0;
  free(th->msg_buf);
  th->msg_buf = NULL;
  memset(&th->msg, 0, sizeof th->msg);
  free(th->saved_blob);
  th->saved_blob = NULL;
  th->saved_len = 0;
  th->has_saved = 0;
  /* Minor 1. */
  for (i = 0; i < th->nevents; i++)
    free(th->events[i].body);
  free(th->events);
  th->events = NULL;
  th->nevents = th->events_cap = 0;
  for (i = 0; i < th->napi; i++) {
    free(th->api[i].path);
    free(th->api[i].body);
  }
  th->napi = 0;
  for (i = 0; i < th->napi_scripts; i++) {
    free(th->api_scripts[i].path);
    free(th->api_scripts[i].body);
  }
  th->napi_scripts = 0;
  free(th->api_default.body);
  memset(&th->api_default, 0, sizeof th->api_default);
  th->api_default_set = 0;
  th->nsend_scripts = 0;
  for (i = 0; i < th->nuploads; i++)
    free(th->uploads[i].data);
  th->nuploads = 0;
  th->nupload_scripts = 0;
  while ((h = th->holds) != NULL) {
    th->holds = h->next;
    free(h);
  }
  for (i = 0; i < BLAZEBOT_TEST_MAX_DELIVERIES; i++) {
    struct blazebot_test_delivery *d = &th->deliveries[i];
    free(d->view);
    d->view = NULL;
    if (d->serial && !d->ended) {
      d->holds = 0;
      d->ended = 1;
    }
  }
  if (th->state_root[0]) {
    blazebot_test_i_rmtree(th->state_root, 0);
    th->state_root[0] = '\0';
    th->state_path[0] = '\0';
  }
}

/* ---- ABI minor 1: API answers ------------------------------------------------------ */

/* Scripts one answer of api_request: http_status, the Mixin error_code, a
 * copy of body (NULL = ""), handed to done delay_ms after the call on the
 * fake clock (0: as soon as the calling callback returns). method and path
 * (exactly as the plugin gives them, query included) choose the call; NULL
 * matches any. Each script answers one call: a call takes the oldest script
 * naming both its method and path, else the oldest matching one. A delay
 * beyond the call's deadline (timeout_ms, or api_timeout_ms when 0) makes
 * the answer http_status 0 at the deadline. Returns 0, or -1 when
 * BLAZEBOT_TEST_MAX_SCRIPTS answers wait, method is longer than 7 bytes or
 * memory runs out. */
static inline int blazebot_test_api_script(struct blazebot_test_host *th,
                                           const char *method, const char *path,
                                           int32_t http_status, int32_t error_code,
                                           const char *body, uint32_t delay_ms) {
  struct blazebot_test_api_script *s;
  if (th->napi_scripts == BLAZEBOT_TEST_MAX_SCRIPTS)
    return -1;
  s = &th->api_scripts[th->napi_scripts];
  memset(s, 0, sizeof *s);
  if (blazebot_test_i_copy(s->method, sizeof s->method, method))
    return -1;
  if ((path && !(s->path = blazebot_test_i_strdup(path))) ||
      (body && !(s->body = blazebot_test_i_strdup(body)))) {
    free(s->path);
    return -1;
  }
  s->body_len = body ? strlen(body) : 0;
  s->http_status = http_status;
  s->error_code = error_code;
  s->delay_ms = delay_ms;
  th->napi_scripts++;
  return 0;
}

/* The answer of every call no script matches (at first: http_status 0,
 * error_code 0, body "", at once, with a log line naming the call). Returns
 * 0, or -1 when out of memory. */
static inline int blazebot_test_api_default(struct blazebot_test_host *th,
                                            int32_t http_status, int32_t error_code,
                                            const char *body, uint32_t delay_ms) {
  char *copy = NULL;
  if (body && !(copy = blazebot_test_i_strdup(body)))
    return -1;
  free(th->api_default.body);
  memset(&th->api_default, 0, sizeof th->api_default);
  th->api_default.http_status = http_status;
  th->api_default.error_code = error_code;
  th->api_default.body = copy;
  th->api_default.body_len = copy ? strlen(copy) : 0;
  th->api_default.delay_ms = delay_ms;
  th->api_default_set = 1;
  return 0;
}

/* The api_request calls recorded so far, in order. */
static inline size_t blazebot_test_api_count(const struct blazebot_test_host *th) {
  return th->napi;
}

/* The i-th recorded api_request call, or NULL. */
static inline const struct blazebot_test_api_call *
blazebot_test_api(const struct blazebot_test_host *th, size_t i) {
  return i < th->napi ? &th->api[i] : NULL;
}

/* ---- ABI minor 1: send results ----------------------------------------------------- */

/* Scripts the result of one outgoing message (reply, send or send_result):
 * status BLAZEBOT_SEND_*, code (kept for REFUSED only), delay_ms after the
 * send on the fake clock (0: as soon as the calling callback returns). The
 * message is the one with id message_id (as the plugin gave it, or as
 * uuid() made it), or with NULL the next one made that no script names.
 * Each script is used once; other messages get the default. The result
 * goes to the sent record (settled, status, code) and to send_result's done.
 * Returns 0, or -1 (full, an unknown status, an id too long). */
static inline int blazebot_test_send_script(struct blazebot_test_host *th,
                                            const char *message_id, uint32_t status,
                                            int32_t code, uint32_t delay_ms) {
  struct blazebot_test_send_script *s;
  if (th->nsend_scripts == BLAZEBOT_TEST_MAX_SCRIPTS || status > BLAZEBOT_SEND_GAVE_UP)
    return -1;
  s = &th->send_scripts[th->nsend_scripts];
  memset(s, 0, sizeof *s);
  if (blazebot_test_i_copy(s->message_id, sizeof s->message_id, message_id))
    return -1;
  s->status = status;
  s->code = status == BLAZEBOT_SEND_REFUSED ? code : 0;
  s->delay_ms = delay_ms;
  th->nsend_scripts++;
  return 0;
}

/* The result of every message no script matches (at first: ACCEPTED, at
 * once). Returns 0, or -1 for an unknown status. */
static inline int blazebot_test_send_default(struct blazebot_test_host *th,
                                             uint32_t status, int32_t code,
                                             uint32_t delay_ms) {
  if (status > BLAZEBOT_SEND_GAVE_UP)
    return -1;
  memset(&th->send_default, 0, sizeof th->send_default);
  th->send_default.status = status;
  th->send_default.code = status == BLAZEBOT_SEND_REFUSED ? code : 0;
  th->send_default.delay_ms = delay_ms;
  return 0;
}

/* How many API answers, send scripts and upload scripts were not used yet. */
static inline size_t blazebot_test_scripts_left(const struct blazebot_test_host *th) {
  return th->napi_scripts + th->nsend_scripts + th->nupload_scripts;
}

/* How many API answers, send results and upload results wait for their time. */
static inline size_t blazebot_test_results_pending(const struct blazebot_test_host *th) {
  return th->nevents;
}

/* ---- ABI minor 1: uploads ---------------------------------------------------------- */

/* Scripts the result of the next upload that no earlier script answers
 * (scripts are used in the order made): a success with attachment_id (NULL
 * or "": a fresh BLAZEBOT_TEST_ATTACHMENT_ID_PREFIX id), http_status 200,
 * handed to done delay_ms after the call on the fake clock (0: as soon as
 * the calling callback returns). A delay beyond the upload's deadline
 * (timeout_ms, or upload_timeout_ms when 0) makes it a failure with
 * http_status 0 at the deadline. Returns 0, or -1 when
 * BLAZEBOT_TEST_MAX_SCRIPTS results wait or the id is longer than 63 bytes. */
static inline int blazebot_test_upload_script_ok(struct blazebot_test_host *th,
                                                 const char *attachment_id,
                                                 uint32_t delay_ms) {
  struct blazebot_test_upload_script *s;
  if (th->nupload_scripts == BLAZEBOT_TEST_MAX_SCRIPTS)
    return -1;
  s = &th->upload_scripts[th->nupload_scripts];
  memset(s, 0, sizeof *s);
  if (blazebot_test_i_copy(s->attachment_id, sizeof s->attachment_id, attachment_id))
    return -1;
  s->ok = 1;
  s->http_status = 200;
  s->delay_ms = delay_ms;
  th->nupload_scripts++;
  return 0;
}

/* Scripts the next upload (as blazebot_test_upload_script_ok) to fail with
 * http_status (of the failing step; 0: no answer), Mixin's error_code and
 * error, the one-line text (NULL or "": what the daemon says, "POST
 * /attachments failed", or "no answer before the deadline" for status 0).
 * Returns 0, or -1 (full, or error longer than 127 bytes). */
static inline int blazebot_test_upload_script_fail(struct blazebot_test_host *th,
                                                   int32_t http_status,
                                                   int32_t error_code, const char *error,
                                                   uint32_t delay_ms) {
  struct blazebot_test_upload_script *s;
  if (th->nupload_scripts == BLAZEBOT_TEST_MAX_SCRIPTS)
    return -1;
  s = &th->upload_scripts[th->nupload_scripts];
  memset(s, 0, sizeof *s);
  if (blazebot_test_i_copy(s->error, sizeof s->error, error))
    return -1;
  s->http_status = http_status;
  s->error_code = error_code;
  s->delay_ms = delay_ms;
  th->nupload_scripts++;
  return 0;
}

/* The result of every upload no script answers: a success with a fresh
 * attachment id each time, delay_ms after the call. This is the default at
 * first, with delay 0. Returns 0. */
static inline int blazebot_test_upload_default_ok(struct blazebot_test_host *th,
                                                  uint32_t delay_ms) {
  memset(&th->upload_default, 0, sizeof th->upload_default);
  th->upload_default.ok = 1;
  th->upload_default.http_status = 200;
  th->upload_default.delay_ms = delay_ms;
  return 0;
}

/* The result of every upload no script answers: a failure, as
 * blazebot_test_upload_script_fail. Returns 0, or -1 (error too long). */
static inline int blazebot_test_upload_default_fail(struct blazebot_test_host *th,
                                                    int32_t http_status,
                                                    int32_t error_code, const char *error,
                                                    uint32_t delay_ms) {
  struct blazebot_test_upload_script d;
  memset(&d, 0, sizeof d);
  if (blazebot_test_i_copy(d.error, sizeof d.error, error))
    return -1;
  d.http_status = http_status;
  d.error_code = error_code;
  d.delay_ms = delay_ms;
  th->upload_default = d;
  return 0;
}

/* The upload calls recorded so far, in order. */
static inline size_t blazebot_test_upload_count(const struct blazebot_test_host *th) {
  return th->nuploads;
}

/* The i-th recorded upload: a copy of its bytes, its length, MIME type and
 * timeout, and its result once handed over; or NULL. */
static inline const struct blazebot_test_upload *
blazebot_test_upload(const struct blazebot_test_host *th, size_t i) {
  return i < th->nuploads ? &th->uploads[i] : NULL;
}

/* ---- ABI minor 1: holds ------------------------------------------------------------ */

/* The latest delivery of the message with id message_id (NULL: the latest
 * delivery of all), or NULL. The last BLAZEBOT_TEST_MAX_DELIVERIES are kept. */
static inline const struct blazebot_test_delivery *
blazebot_test_find_delivery(const struct blazebot_test_host *th, const char *message_id) {
  const struct blazebot_test_delivery *best = NULL;
  size_t i;
  for (i = 0; i < BLAZEBOT_TEST_MAX_DELIVERIES; i++) {
    const struct blazebot_test_delivery *d = &th->deliveries[i];
    if (d->serial && (!message_id || strcmp(d->message_id, message_id) == 0) &&
        (!best || d->serial > best->serial))
      best = d;
  }
  return best;
}

/* The holds outstanding on that delivery (see find_delivery), or -1 when
 * there is none. */
static inline int blazebot_test_holds(const struct blazebot_test_host *th,
                                      const char *message_id) {
  const struct blazebot_test_delivery *d = blazebot_test_find_delivery(th, message_id);
  return d ? d->holds : -1;
}

/* How that delivery ended: 1 when it did (*result, may be NULL, gets the
 * strongest of on_message's value and the releases: RETRY, an error,
 * HANDLED, PASS), 0 while on_message runs or a hold is outstanding (*result:
 * the strongest so far), -1 when there is no such delivery. */
static inline int blazebot_test_outcome(const struct blazebot_test_host *th,
                                        const char *message_id, int *result) {
  const struct blazebot_test_delivery *d = blazebot_test_find_delivery(th, message_id);
  if (!d)
    return -1;
  if (result)
    *result = d->result;
  return d->ended ? 1 : 0;
}

/* The holds outstanding on all deliveries. */
static inline int blazebot_test_hold_count(const struct blazebot_test_host *th) {
  int n = 0;
  size_t i;
  for (i = 0; i < BLAZEBOT_TEST_MAX_DELIVERIES; i++)
    if (th->deliveries[i].serial && !th->deliveries[i].ended)
      n += th->deliveries[i].holds;
  return n;
}

/* ---- ABI minor 1: clocks, folders, names, the host's minor ------------------------- */

/* What now_ms(clock) returns now, or -1 for an unknown clock. */
static inline int64_t blazebot_test_now(const struct blazebot_test_host *th, int clock) {
  if (clock == BLAZEBOT_CLOCK_MONOTONIC)
    return (int64_t)th->now_ms;
  if (clock == BLAZEBOT_CLOCK_WALL)
    return (int64_t)th->now_ms + th->wall_offset;
  return -1;
}

/* Sets a fake clock to ms and runs what is then due (as fire_timers).
 * BLAZEBOT_CLOCK_WALL may jump either way, like a system clock being set
 * (timer_at timers move with it; the monotonic clock does not move);
 * BLAZEBOT_CLOCK_MONOTONIC only forward (the wall clock follows). Returns
 * how many callbacks ran, or -1 (an unknown clock, or going back). */
static inline int blazebot_test_set_clock(struct blazebot_test_host *th, int clock,
                                          int64_t ms) {
  if (clock == BLAZEBOT_CLOCK_WALL) {
    th->wall_offset = ms - (int64_t)th->now_ms;
    return blazebot_test_i_advance(th, 0);
  }
  if (clock == BLAZEBOT_CLOCK_MONOTONIC && ms >= (int64_t)th->now_ms)
    return blazebot_test_i_advance(th, (uint64_t)ms - th->now_ms);
  return -1;
}

/* What instance_name returns (default: the descriptor's name); NULL goes
 * back to the default. Only while nothing is loaded. Returns 0, or -1
 * (loaded, "", or longer than 127 bytes). */
static inline int blazebot_test_set_instance_name(struct blazebot_test_host *th,
                                                  const char *name) {
  if (th->loaded || (name && !name[0]))
    return -1;
  if (!name) {
    th->instance_name[0] = '\0';
    return 0;
  }
  return blazebot_test_i_copy(th->instance_name, sizeof th->instance_name, name);
}

/* Makes state_dir return path, a folder the test owns (made with mode 0700
 * if missing, never removed by the fake host); NULL goes back to the
 * default, a temporary folder <TMPDIR or /tmp>/blazebot-test-<pid>-<n>/
 * <instance name> made on first use and removed with its contents by
 * blazebot_test_unload (set no_state_dir for a daemon without state_dir).
 * Only while nothing is loaded. Returns 0, or -1. */
static inline int blazebot_test_set_state_dir(struct blazebot_test_host *th,
                                              const char *path) {
  if (th->loaded)
    return -1;
  if (th->state_root[0]) {
    blazebot_test_i_rmtree(th->state_root, 0);
    th->state_root[0] = '\0';
  }
  th->state_path[0] = '\0';
  th->state_set = 0;
  if (!path)
    return 0;
  if (!path[0] || blazebot_test_i_copy(th->state_path, sizeof th->state_path, path))
    return -1;
#ifdef BLAZEBOT_TEST_POSIX
  if (mkdir(path, 0700) != 0 && errno != EEXIST) {
    th->state_path[0] = '\0';
    return -1;
  }
#endif
  th->state_set = 1;
  return 0;
}

/* The folder state_dir returns (made now if it is the temporary one), so a
 * test can put files there before loading or look at them afterwards; NULL
 * with no_state_dir, or when it cannot be made. */
static inline const char *blazebot_test_state_dir(struct blazebot_test_host *th) {
  return blazebot_test_i_make_state_dir(th);
}

/* Makes th a host of ABI minor `minor` (0 or BLAZEBOT_ABI_MINOR), to test how
 * a plugin copes with an older daemon: with 0 the table ends before
 * api_request (BLAZEBOT_HOST_HAS is false for the minor-1 members, which are
 * NULL), send ignores m->hold, and a plugin built for minor 1 is refused.
 * Only while nothing is loaded. Returns 0, or -1. */
static inline int blazebot_test_set_abi_minor(struct blazebot_test_host *th,
                                              uint32_t minor) {
  if (th->loaded || (minor != 0 && minor != BLAZEBOT_ABI_MINOR))
    return -1;
  blazebot_test_i_fill_host(th, minor);
  return 0;
}

#ifdef __cplusplus
}
#endif

#endif
