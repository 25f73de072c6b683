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
 * standard headers only. One test host serves one thread. The struct is
 * about 60 KiB: a local variable of main() is fine.
 */
#ifndef BLAZEBOT_TESTING_H
#define BLAZEBOT_TESTING_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

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
/* uuid() returns this prefix and a 12-digit hex counter, starting at 1. */
#define BLAZEBOT_TEST_UUID_PREFIX "00000000-0000-4000-8000-"

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
};

struct blazebot_test_timer {
  uint64_t id; /* 0: a free slot */
  uint64_t due_ms;
  uint32_t repeat_ms;
  unsigned gen; /* the instance that added it */
  blazebot_timer_fn fn;
  void *arg;
};

struct blazebot_test_pending {
  unsigned gen;
  blazebot_done_fn fn;
  void *arg;
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

/* Records one outgoing message. */
static inline int blazebot_test_i_record(struct blazebot_test_host *th, int is_reply,
                                         const struct blazebot_outgoing *m,
                                         char id_out[BLAZEBOT_ID_LEN]) {
  struct blazebot_test_sent *s;
  if (!m->conversation_id || !m->category || !m->category[0] ||
      (!m->data && m->data_len)) {
    blazebot_test_i_violation(th, "%s: conversation_id, category or data missing",
                              is_reply ? "reply" : "send");
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
    blazebot_test_i_violation(th, "%s: an id or the category is too long",
                              is_reply ? "reply" : "send");
    return -1;
  }
  if (!s->message_id[0])
    blazebot_test_i_uuid(blazebot_test_i_ctx(th), s->message_id);
  s->data = (char *)malloc(m->data_len + 1);
  if (!s->data)
    return -1;
  if (m->data_len)
    memcpy(s->data, m->data, m->data_len);
  s->data[m->data_len] = '\0';
  s->data_len = m->data_len;
  th->nsent++;
  if (id_out)
    memcpy(id_out, s->message_id, BLAZEBOT_ID_LEN);
  return 0;
}

static inline int blazebot_test_i_reply(blazebot_ctx *ctx,
                                        const struct blazebot_message *msg,
                                        const char *category, const void *data,
                                        size_t len, char id_out[BLAZEBOT_ID_LEN]) {
  struct blazebot_test_host *th = blazebot_test_i_th(ctx);
  struct blazebot_outgoing m;
  if (!msg || msg != th->current) {
    blazebot_test_i_violation(th, "reply outside on_message for that message");
    return -1;
  }
  memset(&m, 0, sizeof m);
  m.size = sizeof m;
  m.conversation_id = msg->conversation_id;
  m.recipient_id = msg->user_id;
  m.category = category;
  m.data = data;
  m.data_len = len;
  return blazebot_test_i_record(th, 1, &m, id_out);
}

static inline int blazebot_test_i_send(blazebot_ctx *ctx,
                                       const struct blazebot_outgoing *m,
                                       char id_out[BLAZEBOT_ID_LEN]) {
  struct blazebot_test_host *th = blazebot_test_i_th(ctx);
  struct blazebot_outgoing copy;
  if (!m || m->size < offsetof(struct blazebot_outgoing, data_len) + sizeof m->data_len) {
    blazebot_test_i_violation(th, "send: NULL message or size too small");
    return -1;
  }
  /* As the host does: min(size, sizeof) into a zeroed struct. */
  memset(&copy, 0, sizeof copy);
  memcpy(&copy, m, m->size < sizeof copy ? m->size : sizeof copy);
  return blazebot_test_i_record(th, 0, &copy, id_out);
}

static inline int blazebot_test_i_unique(blazebot_ctx *ctx, const char *a, const char *b,
                                         char out[BLAZEBOT_ID_LEN]) {
  (void)ctx;
  return blazebot_test_unique_conversation_id(a, b, out);
}

static inline const char *blazebot_test_i_bot_id(blazebot_ctx *ctx) {
  return blazebot_test_i_th(ctx)->bot_id;
}

static inline int blazebot_test_i_timer_add(blazebot_ctx *ctx, uint32_t delay_ms,
                                            uint32_t repeat_ms, blazebot_timer_fn fn,
                                            void *arg, uint64_t *id_out) {
  struct blazebot_test_host *th = blazebot_test_i_th(ctx);
  size_t i;
  if (!fn)
    return -1;
  for (i = 0; i < BLAZEBOT_TEST_MAX_TIMERS; i++) {
    struct blazebot_test_timer *t = &th->timers[i];
    if (t->id)
      continue;
    t->id = ++th->timer_counter;
    t->due_ms = th->now_ms + delay_ms;
    t->repeat_ms = repeat_ms;
    t->gen = th->in_init ? th->init_gen : th->gen;
    t->fn = fn;
    t->arg = arg;
    if (id_out)
      *id_out = t->id;
    return 0;
  }
  blazebot_test_i_log(ctx, BLAZEBOT_LOG_WARN, "testing.h: more than %d timers",
                      BLAZEBOT_TEST_MAX_TIMERS);
  return -1;
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
  if (!work)
    return -1;
  if (done && th->npending == BLAZEBOT_TEST_MAX_PENDING) {
    blazebot_test_i_log(ctx, BLAZEBOT_LOG_WARN,
                        "testing.h: more than %d pending completions",
                        BLAZEBOT_TEST_MAX_PENDING);
    return -1;
  }
  work(arg);
  if (done) {
    th->pending[th->npending].gen = th->in_init ? th->init_gen : th->gen;
    th->pending[th->npending].fn = done;
    th->pending[th->npending].arg = arg;
    th->npending++;
  }
  return 0;
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

/* Runs the completions that callbacks of instance gen queued, in order;
 * those of other generations are dropped. */
static inline void blazebot_test_i_drain(struct blazebot_test_host *th) {
  while (th->npending) {
    struct blazebot_test_pending p = th->pending[0];
    memmove(&th->pending[0], &th->pending[1], (th->npending - 1) * sizeof th->pending[0]);
    th->npending--;
    if (th->loaded && p.gen == th->gen) {
      p.fn(th->state, p.arg);
    }
  }
}

/* Forgets the timers and completions of instance gen. */
static inline void blazebot_test_i_forget(struct blazebot_test_host *th, unsigned gen) {
  size_t i, o = 0;
  for (i = 0; i < BLAZEBOT_TEST_MAX_TIMERS; i++)
    if (th->timers[i].id && th->timers[i].gen == gen)
      memset(&th->timers[i], 0, sizeof th->timers[i]);
  for (i = 0; i < th->npending; i++)
    if (th->pending[i].gen != gen)
      th->pending[o++] = th->pending[i];
  th->npending = o;
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
  if (out->abi_major != BLAZEBOT_ABI_MAJOR || out->abi_minor > BLAZEBOT_ABI_MINOR) {
    blazebot_test_i_violation(th, "descriptor ABI %u.%u, host %d.%d",
                              (unsigned)out->abi_major, (unsigned)out->abi_minor,
                              BLAZEBOT_ABI_MAJOR, BLAZEBOT_ABI_MINOR);
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

/* Prepares th (nothing is allocated yet). */
static inline void blazebot_test_init(struct blazebot_test_host *th) {
  memset(th, 0, sizeof *th);
  th->host.size = sizeof th->host;
  th->host.abi_minor = BLAZEBOT_ABI_MINOR;
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
  th->bot_id = BLAZEBOT_TEST_BOT_ID;
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

/* Calls on_message(msg) as the daemon would (whether or not the plugin
 * subscribes to msg's category: see blazebot_test_subscribes), then runs the
 * completions it queued. Returns what on_message returned, or -1 (logged as
 * a violation) when no plugin is loaded or msg is NULL. */
static inline int blazebot_test_deliver(struct blazebot_test_host *th,
                                        const struct blazebot_message *msg) {
  int rc;
  if (!th->loaded || !msg) {
    blazebot_test_i_violation(th,
                              "blazebot_test_deliver: no plugin loaded or no message");
    return -1;
  }
  th->current = msg;
  rc = th->desc.on_message(th->state, msg);
  th->current = NULL;
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

/* Advances the fake clock by ms and runs every timer due by then, earliest
 * first; a repeating timer runs once for each period that elapsed. Returns
 * how many callbacks ran (at most BLAZEBOT_TEST_MAX_FIRES). */
static inline int blazebot_test_fire_timers(struct blazebot_test_host *th, uint32_t ms) {
  int fired = 0;
  th->now_ms += ms;
  while (th->loaded && fired < BLAZEBOT_TEST_MAX_FIRES) {
    struct blazebot_test_timer *t = NULL;
    blazebot_timer_fn fn;
    void *arg;
    size_t i;
    for (i = 0; i < BLAZEBOT_TEST_MAX_TIMERS; i++) {
      struct blazebot_test_timer *c = &th->timers[i];
      if (c->id && c->gen == th->gen && c->due_ms <= th->now_ms &&
          (!t || c->due_ms < t->due_ms || (c->due_ms == t->due_ms && c->id < t->id)))
        t = c;
    }
    if (!t)
      break;
    fn = t->fn;
    arg = t->arg;
    if (t->repeat_ms)
      t->due_ms += t->repeat_ms;
    else
      memset(t, 0, sizeof *t);
    fn(th->state, arg);
    fired++;
    blazebot_test_i_drain(th);
  }
  return fired;
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
 * old instance's timers are cancelled, it is shut down and the new one takes
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
  blazebot_test_i_forget(th, old_gen);
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

/* Forgets the recorded outgoing messages and log lines. */
static inline void blazebot_test_clear(struct blazebot_test_host *th) {
  size_t i;
  for (i = 0; i < th->nsent; i++)
    free(th->sent[i].data);
  th->nsent = 0;
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

/* Shuts the plugin down as the daemon does (completions run, timers
 * cancelled, then shutdown) and frees everything th allocated: the config,
 * the recorded messages (the count drops to 0), the test message and any
 * saved state. Log lines, error and violations stay readable. Safe to call
 * when nothing is loaded, and twice. */
static inline void blazebot_test_unload(struct blazebot_test_host *th) {
  size_t i;
  if (th->loaded) {
    blazebot_test_i_drain(th);
    blazebot_test_i_forget(th, th->gen);
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
}

#ifdef __cplusplus
}
#endif

#endif
