/* SPDX-License-Identifier: MIT */
/*
 * nats: a bridge between the bot and NATS JetStream, so that the bot's logic
 * runs in workers on other machines and in any language (README, "Scaling
 * out"; docs/plugins.md). It owns the JetStream stream's set-up, the inbound
 * publishes and the outbound consumer.
 *
 * Inbound: every message routed to it is published with a JetStream async
 * publish to <prefix>.in.<CATEGORY>; the body is the Blaze message JSON as the
 * server sent it, with the headers Nats-Msg-Id (the message id: the stream drops
 * a redelivered copy), Blazebot-Category, Blazebot-Conversation and
 * Blazebot-User. on_message takes a hold and returns; the hold is released
 * HANDLED when JetStream acknowledged the publish, RETRY on an error or after
 * publish_timeout_ms. Without a connection on_message answers RETRY at once.
 * The plugin is flagged RETRY_FOREVER: nothing is acknowledged to Blaze, and
 * nothing dropped, until the broker has it; held and retried messages count
 * towards the daemon's back pressure.
 *
 * Outbound: a durable pull consumer "blazebot-out" on <prefix>.out. Each
 * message is one JSON object {conversation_id, recipient_id?, message_id,
 * category?, data_base64, quote_message_id?}, sent with send_result. Mixin
 * accepted it: Ack. Refused for good, or malformed: Term, and a log line with
 * the reason. Not sent (the outbox is full, the daemon is stopping): Nak with
 * nak_delay_ms. At most out_inflight sends wait for their result.
 *
 * Threads:
 *  - the plugin's queue (the host's): init, on_message (the publishes),
 *    on_sent (the acks of the outbound messages), save_state and np_resume
 *    (a reload pauses the outbound side of the instance it replaces),
 *    shutdown;
 *  - the bridge thread (the plugin's own, started by init, joined by
 *    shutdown): the connection's state, the stream and consumer set-up, and
 *    the fetch loop, which calls send_result (allowed from any thread);
 *  - libnats' threads: the connection's, and the JetStream publish-ack
 *    subscription's, which runs on_puback and calls release (allowed from any
 *    thread). The only other callback registered, on_connected_noop, touches
 *    nothing; shutdown waits for every on_puback to return before it frees
 *    the state.
 * The connection and the JetStream context are made by init and destroyed
 * by shutdown (libnats locks them itself); the stream's readiness, the
 * subscription, the publishes waiting for their acks, out_inflight and the
 * counters are under mu.
 *
 * [plugin.nats] keys: servers (required: nats:// or tls:// URLs, comma
 * separated), creds_file, token, ca_file, stream (BLAZEBOT), subject_prefix
 * (blazebot), replicas (1), max_age (7d), duplicate_window (2m),
 * publish_timeout_ms (5000), out_inflight (256), nak_delay_ms (2000),
 * out_ack_wait (60s). Durations are N followed by ms, s, m, h or d.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nats/nats.h>

#include <blazebot/plugin.h>

#define OUT_CONSUMER "blazebot-out"
#define PUB_BUCKETS 1024
#define FETCH_BATCH 64
#define FETCH_WAIT_MS 1000
#define RETRY_WAIT_MS 1000
#define LOG_EVERY_MS 10000
#define RESUME_AFTER_MS 1000 /* after a reload that did not replace us */
#define NS_PER_MS 1000000LL
/* What the daemon refuses at once (send_result returns -1, as when its
 * outbox is full): checked here first, so that -1 means "later". */
#define MAX_CATEGORY 64
#define MAX_MESSAGE_BYTES (128 * 1024) /* Mixin's limit, the JSON of a message */
#define MESSAGE_OVERHEAD 1024          /* its fields but data, at most */

/* A log line at most every LOG_EVERY_MS for one kind of trouble; the lines
 * left out are counted in the next one. */
struct ratelimit {
  int64_t last_ms;
  unsigned long skipped;
};

/* One inbound publish waiting for its JetStream ack: keyed by its natsMsg,
 * which libnats hands back to on_puback. */
struct pub {
  struct pub *next;
  natsMsg *msg;
  blazebot_hold *hold;
};

/* One outbound message waiting for its send's result. */
struct out {
  struct np *p;
  natsMsg *msg;
};

struct settings {
  char **servers;
  int nservers;
  char *stream;
  char *prefix;
  const char *creds_file, *token, *ca_file; /* borrowed from the host until shutdown */
  int64_t replicas;
  int64_t max_age_ns;
  int64_t dup_window_ns;
  int64_t publish_timeout_ms;
  int64_t out_inflight;
  int64_t nak_delay_ms;
  int64_t out_ack_wait_ns;
};

struct np {
  blazebot_ctx *ctx;
  const struct blazebot_host *host;
  struct settings set;
  char *subj_in;  /* "<prefix>.in." */
  char *subj_out; /* "<prefix>.out" */

  natsOptions *opts;
  pthread_mutex_t mu;
  pthread_cond_t cv;     /* stop, out_inflight going down */
  natsConnection *nc;    /* made by init, destroyed by shutdown */
  jsCtx *js;             /* made by init, destroyed by shutdown */
  natsSubscription *sub; /* the outbound consumer's, when bound */
  int ready;             /* the stream exists */
  int paused;            /* a reload is replacing this instance: no fetching */
  int stop;
  pthread_t thread;
  int thread_started;

  struct pub *pubs[PUB_BUCKETS];
  long pubs_pending;
  long out_inflight;

  struct ratelimit rl_down, rl_puberr, rl_send, rl_fetch, rl_conn;
  pthread_mutex_t rl_mu;

  /* Why np_init's connection attempt failed, for the bridge thread's line
   * when libnats then closes the connection; cleared once connected. */
  char conn_why[256];
  int async_used; /* js_PublishMsgAsync took a message (the plugin's queue) */

  /* counters for the last log line (under mu) */
  unsigned long published, pub_failed, sent, refused, malformed, naked;
};

/* ---- small helpers ------------------------------------------------------------ */

static int64_t mono_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

static void limited(struct np *p, struct ratelimit *rl, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static void limited(struct np *p, struct ratelimit *rl, int level, const char *fmt, ...) {
  int64_t now = mono_ms();
  unsigned long skipped;
  pthread_mutex_lock(&p->rl_mu);
  if (rl->last_ms && now - rl->last_ms < LOG_EVERY_MS) {
    rl->skipped++;
    pthread_mutex_unlock(&p->rl_mu);
    return;
  }
  rl->last_ms = now;
  skipped = rl->skipped;
  rl->skipped = 0;
  pthread_mutex_unlock(&p->rl_mu);
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (skipped)
    p->host->log(p->ctx, level, "%s (and %lu more like it)", line, skipped);
  else
    p->host->log(p->ctx, level, "%s", line);
}

static int is_uuid(const char *s) {
  if (!s || strlen(s) != 36)
    return 0;
  for (int i = 0; i < 36; i++) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-')
        return 0;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                 (c >= 'A' && c <= 'F'))) {
      return 0;
    }
  }
  return 1;
}

static int b64val(int c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+' || c == '-')
    return 62;
  if (c == '/' || c == '_')
    return 63;
  return -1;
}

/* Decodes base64url or standard base64, with or without padding, into a
 * fresh buffer (*out, NUL-terminated past *outlen). Returns 0, or -1. */
static int b64_decode(const char *in, size_t len, unsigned char **out, size_t *outlen) {
  while (len > 0 && in[len - 1] == '=')
    len--;
  if (len % 4 == 1)
    return -1;
  unsigned char *o = malloc(len / 4 * 3 + 3);
  if (!o)
    return -1;
  size_t n = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len; i++) {
    int v = b64val((unsigned char)in[i]);
    if (v < 0) {
      free(o);
      return -1;
    }
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      o[n++] = (unsigned char)(acc >> bits);
    }
  }
  o[n] = 0;
  *out = o;
  *outlen = n;
  return 0;
}

/* "7d", "24h", "30m", "90s", "500ms" or "0" in nanoseconds. Returns 0/-1. */
static int parse_duration(const char *s, int64_t *ns) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || v < 0)
    return -1;
  int64_t unit;
  if (!strcmp(end, "ms"))
    unit = NS_PER_MS;
  else if (!strcmp(end, "s") || (!*end && v == 0))
    unit = 1000 * NS_PER_MS;
  else if (!strcmp(end, "m"))
    unit = 60 * 1000 * NS_PER_MS;
  else if (!strcmp(end, "h"))
    unit = 3600 * 1000 * NS_PER_MS;
  else if (!strcmp(end, "d"))
    unit = 86400 * 1000 * NS_PER_MS;
  else
    return -1;
  if (v > INT64_MAX / unit)
    return -1;
  *ns = (int64_t)v * unit;
  return 0;
}

/* A subject prefix: dot-separated tokens of letters, digits, '_' and '-'. */
static int valid_prefix(const char *s) {
  int tok = 0;
  if (!*s)
    return 0;
  for (; *s; s++) {
    if (*s == '.') {
      if (!tok)
        return 0;
      tok = 0;
    } else if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
               (*s >= '0' && *s <= '9') || *s == '_' || *s == '-') {
      tok++;
    } else {
      return 0;
    }
  }
  return tok > 0;
}

static int valid_stream_name(const char *s) {
  if (!*s)
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
      return 0;
  return 1;
}

/* ---- settings ----------------------------------------------------------------- */

static void settings_free(struct settings *s) {
  for (int i = 0; i < s->nservers; i++)
    free(s->servers[i]);
  free(s->servers);
  free(s->stream);
  free(s->prefix);
  memset(s, 0, sizeof *s);
}

/* Splits "a, b,c" into trimmed URLs. Returns 0, or -1 with the reason. */
static int parse_servers(struct settings *s, const char *list, char *why, size_t whylen) {
  const char *q = list;
  while (*q) {
    while (*q == ' ' || *q == '\t' || *q == ',')
      q++;
    if (!*q)
      break;
    const char *e = q;
    while (*e && *e != ',')
      e++;
    const char *t = e;
    while (t > q && (t[-1] == ' ' || t[-1] == '\t'))
      t--;
    size_t n = (size_t)(t - q);
    char *url = malloc(n + 1);
    char **grown = realloc(s->servers, (size_t)(s->nservers + 1) * sizeof *grown);
    if (!url || !grown) {
      free(url);
      if (grown)
        s->servers = grown;
      snprintf(why, whylen, "out of memory");
      return -1;
    }
    s->servers = grown;
    memcpy(url, q, n);
    url[n] = 0;
    s->servers[s->nservers++] = url;
    if (strncmp(url, "nats://", 7) && strncmp(url, "tls://", 6)) {
      snprintf(why, whylen, "servers: '%s' is not a nats:// or tls:// URL", url);
      return -1;
    }
    q = e;
  }
  if (!s->nservers) {
    snprintf(why, whylen, "servers is required (a comma list of nats:// URLs)");
    return -1;
  }
  return 0;
}

static int get_duration(struct np *p, const char *key, const char *def, int64_t min_ns,
                        int64_t *out, char *why, size_t whylen) {
  const char *v = p->host->config_get(p->ctx, key);
  if (!v)
    v = def;
  if (parse_duration(v, out) < 0 || *out < min_ns) {
    snprintf(why, whylen, "%s: '%s' is not a duration such as 500ms, 90s, 30m, 24h or 7d",
             key, v);
    return -1;
  }
  return 0;
}

static int get_int(struct np *p, const char *key, int64_t def, int64_t lo, int64_t hi,
                   int64_t *out, char *why, size_t whylen) {
  if (p->host->config_int(p->ctx, key, def, out) != 0 || *out < lo || *out > hi) {
    snprintf(why, whylen, "%s must be an integer from %lld to %lld", key, (long long)lo,
             (long long)hi);
    return -1;
  }
  return 0;
}

static int readable(const char *key, const char *path, char *why, size_t whylen) {
  if (path && access(path, R_OK) != 0) {
    snprintf(why, whylen, "%s: cannot read %s: %s", key, path, strerror(errno));
    return -1;
  }
  return 0;
}

static int settings_read(struct np *p, char *why, size_t whylen) {
  struct settings *s = &p->set;
  const struct blazebot_host *h = p->host;
  const char *v = h->config_get(p->ctx, "servers");
  if (parse_servers(s, v ? v : "", why, whylen) < 0)
    return -1;
  v = h->config_get(p->ctx, "stream");
  s->stream = dupstr(v && *v ? v : "BLAZEBOT");
  v = h->config_get(p->ctx, "subject_prefix");
  s->prefix = dupstr(v && *v ? v : "blazebot");
  if (!s->stream || !s->prefix) {
    snprintf(why, whylen, "out of memory");
    return -1;
  }
  if (!valid_stream_name(s->stream)) {
    snprintf(why, whylen, "stream: '%s' may hold only letters, digits, '_' and '-'",
             s->stream);
    return -1;
  }
  if (!valid_prefix(s->prefix)) {
    snprintf(why, whylen,
             "subject_prefix: '%s' is not dot-separated tokens of letters, digits, "
             "'_' and '-'",
             s->prefix);
    return -1;
  }
  s->creds_file = h->config_get(p->ctx, "creds_file");
  s->token = h->config_get(p->ctx, "token");
  s->ca_file = h->config_get(p->ctx, "ca_file");
  if (readable("creds_file", s->creds_file, why, whylen) < 0 ||
      readable("ca_file", s->ca_file, why, whylen) < 0)
    return -1;
  if (get_int(p, "replicas", 1, 1, 5, &s->replicas, why, whylen) < 0 ||
      get_int(p, "publish_timeout_ms", 5000, 100, 600000, &s->publish_timeout_ms, why,
              whylen) < 0 ||
      get_int(p, "out_inflight", 256, 1, 4096, &s->out_inflight, why, whylen) < 0 ||
      get_int(p, "nak_delay_ms", 2000, 0, 3600000, &s->nak_delay_ms, why, whylen) < 0)
    return -1;
  if (get_duration(p, "max_age", "7d", 0, &s->max_age_ns, why, whylen) < 0 ||
      get_duration(p, "duplicate_window", "2m", 1000 * NS_PER_MS, &s->dup_window_ns, why,
                   whylen) < 0 ||
      get_duration(p, "out_ack_wait", "60s", 1000 * NS_PER_MS, &s->out_ack_wait_ns, why,
                   whylen) < 0)
    return -1;
  if (s->max_age_ns && s->dup_window_ns > s->max_age_ns) {
    snprintf(why, whylen, "duplicate_window cannot be longer than max_age");
    return -1;
  }
  return 0;
}

/* ---- inbound: publish, then release on the ack ---------------------------------- */

static size_t pub_bucket(const natsMsg *m) {
  uintptr_t v = (uintptr_t)m;
  return (size_t)((v >> 4) ^ (v >> 14)) % PUB_BUCKETS;
}

/* mu held. */
static void pub_insert(struct np *p, struct pub *pb) {
  size_t b = pub_bucket(pb->msg);
  pb->next = p->pubs[b];
  p->pubs[b] = pb;
  p->pubs_pending++;
}

/* mu held. */
static struct pub *pub_remove(struct np *p, const natsMsg *m) {
  for (struct pub **pp = &p->pubs[pub_bucket(m)]; *pp; pp = &(*pp)->next) {
    if ((*pp)->msg == m) {
      struct pub *pb = *pp;
      *pp = pb->next;
      p->pubs_pending--;
      return pb;
    }
  }
  return NULL;
}

/* libnats' publish-ack thread: the broker stored the message (pa), or the
 * publish failed or timed out (pae). */
static void on_puback(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae,
                      void *closure) {
  struct np *p = closure;
  (void)js;
  pthread_mutex_lock(&p->mu);
  struct pub *pb = pub_remove(p, m);
  if (pb && pa)
    p->published++;
  else if (pb)
    p->pub_failed++;
  pthread_mutex_unlock(&p->mu);
  if (pb) {
    if (!pa) {
      const char *id = NULL;
      natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
      limited(p, &p->rl_puberr, BLAZEBOT_LOG_WARN,
              "message %s not stored by JetStream (%s, JetStream error %d); it will "
              "come again",
              id ? id : "?", pae && pae->ErrText ? pae->ErrText : "no ack",
              pae ? (int)pae->ErrCode : 0);
    }
    p->host->release(p->ctx, pb->hold, pa ? BLAZEBOT_HANDLED : BLAZEBOT_RETRY);
    free(pb);
  }
  natsMsg_Destroy(m);
}

/* A subject token from a category: letters, digits, '_' and '-' kept, the
 * rest '_'; "UNKNOWN" when empty. */
static void category_token(const char *cat, char *out, size_t cap) {
  size_t n = 0;
  for (; *cat && n + 1 < cap; cat++) {
    char c = *cat;
    out[n++] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9') || c == '_' || c == '-')
                   ? c
                   : '_';
  }
  out[n] = 0;
  if (!n)
    snprintf(out, cap, "UNKNOWN");
}

static int np_on_message(void *state, const struct blazebot_message *msg) {
  struct np *p = state;
  pthread_mutex_lock(&p->mu);
  int ready = p->ready;
  pthread_mutex_unlock(&p->mu);
  if (!ready || natsConnection_Status(p->nc) != NATS_CONN_STATUS_CONNECTED) {
    limited(p, &p->rl_down, BLAZEBOT_LOG_WARN,
            "JetStream is not reachable; message %s will come again", msg->message_id);
    return BLAZEBOT_RETRY;
  }
  char cat[64], subject[512];
  category_token(msg->category, cat, sizeof cat);
  snprintf(subject, sizeof subject, "%s%s", p->subj_in, cat);
  natsMsg *m = NULL;
  natsStatus s = natsMsg_Create(&m, subject, NULL, msg->raw_json, (int)msg->raw_json_len);
  if (s == NATS_OK)
    s = natsMsgHeader_Set(m, "Nats-Msg-Id", msg->message_id);
  if (s == NATS_OK)
    s = natsMsgHeader_Set(m, "Blazebot-Category", msg->category);
  if (s == NATS_OK)
    s = natsMsgHeader_Set(m, "Blazebot-Conversation", msg->conversation_id);
  if (s == NATS_OK)
    s = natsMsgHeader_Set(m, "Blazebot-User", msg->user_id);
  struct pub *pb = s == NATS_OK ? calloc(1, sizeof *pb) : NULL;
  if (pb)
    pb->hold = p->host->hold(p->ctx, msg);
  if (!pb || !pb->hold) {
    free(pb);
    natsMsg_Destroy(m);
    return BLAZEBOT_RETRY;
  }
  pb->msg = m;
  pthread_mutex_lock(&p->mu);
  pub_insert(p, pb);
  pthread_mutex_unlock(&p->mu);
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = p->set.publish_timeout_ms;
  natsMsg *owned = m;
  s = js_PublishMsgAsync(p->js, &owned, &po);
  if (s == NATS_OK)
    p->async_used = 1;
  if (s != NATS_OK) {
    /* libnats did not take the message: no on_puback for it. */
    pthread_mutex_lock(&p->mu);
    pub_remove(p, m);
    p->pub_failed++;
    pthread_mutex_unlock(&p->mu);
    natsMsg_Destroy(owned);
    int result = BLAZEBOT_RETRY;
    if (s == NATS_MAX_PAYLOAD) {
      p->host->log(p->ctx, BLAZEBOT_LOG_ERROR,
                   "message %s (%zu bytes) is larger than the broker's max_payload; "
                   "not bridged",
                   msg->message_id, msg->raw_json_len);
      result = BLAZEBOT_ERROR;
    } else {
      limited(p, &p->rl_puberr, BLAZEBOT_LOG_WARN,
              "publishing message %s failed (%s); it will come again", msg->message_id,
              natsStatus_GetText(s));
    }
    p->host->release(p->ctx, pb->hold, result);
    free(pb);
  }
  return BLAZEBOT_PASS;
}

/* ---- outbound: fetch, send, ack on the result ------------------------------------ */

static void out_done(struct np *p, struct out *o) {
  natsMsg_Destroy(o->msg);
  free(o);
  pthread_mutex_lock(&p->mu);
  p->out_inflight--;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

/* The plugin's queue: what became of a send. */
static void on_sent(void *state, void *arg, const struct blazebot_send_result *r) {
  struct np *p = state;
  struct out *o = arg;
  if (r->status == BLAZEBOT_SEND_ACCEPTED) {
    natsMsg_Ack(o->msg, NULL);
    pthread_mutex_lock(&p->mu);
    p->sent++;
    pthread_mutex_unlock(&p->mu);
  } else if (r->status == BLAZEBOT_SEND_REFUSED) {
    p->host->log(p->ctx, BLAZEBOT_LOG_WARN,
                 "outbound message %s refused by Mixin (code %d): terminated",
                 r->message_id, (int)r->code);
    natsMsg_Term(o->msg, NULL);
    pthread_mutex_lock(&p->mu);
    p->refused++;
    pthread_mutex_unlock(&p->mu);
  } else {
    natsMsg_NakWithDelay(o->msg, p->set.nak_delay_ms, NULL);
    pthread_mutex_lock(&p->mu);
    p->naked++;
    pthread_mutex_unlock(&p->mu);
  }
  out_done(p, o);
}

/* An outbound message that can never be sent: Term, and why. */
static void terminate(struct np *p, natsMsg *m, const char *why) {
  jsMsgMetaData *meta = NULL;
  uint64_t seq = 0;
  if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
    seq = meta->Sequence.Stream;
    jsMsgMetaData_Destroy(meta);
  }
  p->host->log(p->ctx, BLAZEBOT_LOG_WARN,
               "outbound message (%s sequence %llu) malformed: %s; terminated",
               p->set.stream, (unsigned long long)seq, why);
  natsMsg_Term(m, NULL);
  natsMsg_Destroy(m);
  pthread_mutex_lock(&p->mu);
  p->malformed++;
  pthread_mutex_unlock(&p->mu);
}

/* An optional string field: NULL when absent, null or ""; -1 when not a
 * string. */
static int opt_string(json_t *root, const char *key, const char **out) {
  json_t *v = json_object_get(root, key);
  *out = NULL;
  if (!v || json_is_null(v))
    return 0;
  if (!json_is_string(v))
    return -1;
  if (json_string_length(v))
    *out = json_string_value(v);
  return 0;
}

/* The bridge thread: one message of <prefix>.out. Returns 1 when the daemon
 * could not take it (the outbox is full), else 0. */
static int handle_out(struct np *p, natsMsg *m) {
  char why[200];
  json_error_t jerr;
  json_t *root =
      json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, &jerr);
  const char *conv, *recipient, *id, *category, *data, *quote;
  if (!json_is_object(root)) {
    snprintf(why, sizeof why, "not a JSON object (%s)",
             root ? "another type" : jerr.text);
    json_decref(root);
    terminate(p, m, why);
    return 0;
  }
  why[0] = 0;
  if (opt_string(root, "conversation_id", &conv) < 0 || !is_uuid(conv))
    snprintf(why, sizeof why, "conversation_id is missing or not a UUID");
  else if (opt_string(root, "message_id", &id) < 0 || !is_uuid(id))
    snprintf(why, sizeof why, "message_id is missing or not a UUID");
  else if (opt_string(root, "recipient_id", &recipient) < 0 ||
           (recipient && !is_uuid(recipient)))
    snprintf(why, sizeof why, "recipient_id is not a UUID");
  else if (opt_string(root, "quote_message_id", &quote) < 0 || (quote && !is_uuid(quote)))
    snprintf(why, sizeof why, "quote_message_id is not a UUID");
  else if (opt_string(root, "category", &category) < 0 ||
           (category && strlen(category) > MAX_CATEGORY))
    snprintf(why, sizeof why, "category is not a string of at most %d bytes",
             MAX_CATEGORY);
  else if (opt_string(root, "data_base64", &data) < 0 || !data)
    snprintf(why, sizeof why, "data_base64 is missing or empty");
  unsigned char *bytes = NULL;
  size_t len = 0;
  if (!why[0] && b64_decode(data, strlen(data), &bytes, &len) < 0)
    snprintf(why, sizeof why, "data_base64 is not base64");
  else if (!why[0] && (len + 2) / 3 * 4 + MESSAGE_OVERHEAD > MAX_MESSAGE_BYTES)
    snprintf(why, sizeof why,
             "%zu bytes of data: over Mixin's limit of %d bytes a message", len,
             MAX_MESSAGE_BYTES);
  if (why[0]) {
    json_decref(root);
    terminate(p, m, why);
    return 0;
  }
  struct out *o = malloc(sizeof *o);
  struct blazebot_outgoing og = {.size = sizeof og,
                                 .conversation_id = conv,
                                 .recipient_id = recipient,
                                 .category = category ? category : "PLAIN_TEXT",
                                 .data = bytes,
                                 .data_len = len,
                                 .message_id = id,
                                 .quote_message_id = quote};
  int full = 0;
  if (o) {
    o->p = p;
    o->msg = m;
    pthread_mutex_lock(&p->mu);
    p->out_inflight++;
    pthread_mutex_unlock(&p->mu);
    if (p->host->send_result(p->ctx, &og, on_sent, o, NULL) != 0) {
      pthread_mutex_lock(&p->mu);
      p->out_inflight--;
      p->naked++;
      pthread_mutex_unlock(&p->mu);
      free(o);
      o = NULL;
      full = 1;
    }
  }
  if (!o) {
    limited(p, &p->rl_send, BLAZEBOT_LOG_WARN,
            "outbound message %s not taken by the daemon (outbox full or stopping); "
            "redelivered in %lld ms",
            id, (long long)p->set.nak_delay_ms);
    natsMsg_NakWithDelay(m, p->set.nak_delay_ms, NULL);
    natsMsg_Destroy(m);
  }
  free(bytes);
  json_decref(root);
  return full;
}

/* ---- the bridge thread --------------------------------------------------------------
 */

/* Waits up to ms or until stop. mu held. Returns p->stop. */
static int wait_locked(struct np *p, int64_t ms) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  t.tv_sec += (time_t)(ms / 1000);
  t.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000L;
  }
  if (!p->stop)
    pthread_cond_timedwait(&p->cv, &p->mu, &t);
  return p->stop;
}

static int stopping(struct np *p) {
  pthread_mutex_lock(&p->mu);
  int stop = p->stop;
  pthread_mutex_unlock(&p->mu);
  return stop;
}

static int pause_ms(struct np *p, int64_t ms) {
  pthread_mutex_lock(&p->mu);
  int stop = wait_locked(p, ms);
  pthread_mutex_unlock(&p->mu);
  return stop;
}

/* Creates the stream when it does not exist. Returns 0 when it does. */
static int ensure_stream(struct np *p) {
  jsStreamInfo *si = NULL;
  jsErrCode jerr = 0;
  natsStatus s = js_GetStreamInfo(&si, p->js, p->set.stream, NULL, &jerr);
  if (s == NATS_OK) {
    p->host->log(p->ctx, BLAZEBOT_LOG_INFO, "stream %s: %llu messages, %lld replicas",
                 p->set.stream, (unsigned long long)si->State.Msgs,
                 (long long)si->Config->Replicas);
    jsStreamInfo_Destroy(si);
    return 0;
  }
  if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr) {
    limited(p, &p->rl_fetch, BLAZEBOT_LOG_WARN, "stream %s: cannot look it up: %s",
            p->set.stream, nats_GetLastError(NULL));
    return -1;
  }
  char in_all[400];
  snprintf(in_all, sizeof in_all, "%s>", p->subj_in);
  const char *subjects[] = {in_all, p->subj_out};
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = p->set.stream;
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 2;
  cfg.Storage = js_FileStorage;
  cfg.Replicas = p->set.replicas;
  cfg.MaxAge = p->set.max_age_ns;
  cfg.Duplicates = p->set.dup_window_ns;
  s = js_AddStream(&si, p->js, &cfg, NULL, &jerr);
  if (s != NATS_OK) {
    limited(p, &p->rl_fetch, BLAZEBOT_LOG_WARN, "stream %s: cannot create it: %s",
            p->set.stream, nats_GetLastError(NULL));
    return -1;
  }
  jsStreamInfo_Destroy(si);
  p->host->log(p->ctx, BLAZEBOT_LOG_INFO,
               "stream %s created: %s, %s, %lld replicas, max_age %lld s", p->set.stream,
               in_all, p->subj_out, (long long)p->set.replicas,
               (long long)(p->set.max_age_ns / 1000 / NS_PER_MS));
  return 0;
}

/* Creates (when missing) and binds the durable outbound consumer. */
static int subscribe_out(struct np *p) {
  jsConsumerInfo *ci = NULL;
  jsErrCode jerr = 0;
  natsStatus s = js_GetConsumerInfo(&ci, p->js, p->set.stream, OUT_CONSUMER, NULL, &jerr);
  if (s != NATS_OK) {
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = OUT_CONSUMER;
    cc.FilterSubject = p->subj_out;
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckWait = p->set.out_ack_wait_ns;
    cc.MaxDeliver = -1;
    cc.MaxAckPending = 4 * p->set.out_inflight + FETCH_BATCH;
    s = js_AddConsumer(&ci, p->js, p->set.stream, &cc, NULL, &jerr);
  }
  jsConsumerInfo_Destroy(ci);
  if (s != NATS_OK) {
    limited(p, &p->rl_fetch, BLAZEBOT_LOG_WARN, "consumer %s: cannot create it: %s",
            OUT_CONSUMER, nats_GetLastError(NULL));
    return -1;
  }
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = p->set.stream;
  so.Consumer = OUT_CONSUMER;
  natsSubscription *sub = NULL;
  s = js_PullSubscribe(&sub, p->js, p->subj_out, OUT_CONSUMER, NULL, &so, &jerr);
  if (s != NATS_OK) {
    limited(p, &p->rl_fetch, BLAZEBOT_LOG_WARN, "consumer %s: cannot bind to it: %s",
            OUT_CONSUMER, nats_GetLastError(NULL));
    return -1;
  }
  pthread_mutex_lock(&p->mu);
  p->sub = sub;
  pthread_mutex_unlock(&p->mu);
  return 0;
}

/* No-op: the connection is watched by polling its status (see bridge_main).
 * Registered only because libnats needs one to connect in the background. */
static void on_connected_noop(natsConnection *nc, void *closure) {
  (void)nc;
  (void)closure;
}

/* libnats' last error in this thread without its "(conn.c:123): ". */
static const char *last_error(void) {
  const char *e = nats_GetLastError(NULL), *q = e ? strstr(e, "): ") : NULL;
  return !e ? "" : e[0] == '(' && q ? q + 3 : e;
}

/* Why the connection is not up (libnats' last error on it: an authorization
 * violation, a TLS handshake error, ...) into out. Returns 0 when it has
 * none. */
static int conn_error(struct np *p, char *out, size_t cap) {
  const char *text = NULL;
  natsStatus s = natsConnection_GetLastError(p->nc, &text);
  if (s == NATS_OK)
    return 0;
  snprintf(out, cap, "%s", text && *text ? text : natsStatus_GetText(s));
  return 1;
}

static void note_status(struct np *p, natsConnStatus st, natsConnStatus *last) {
  if (st == *last)
    return;
  if (st == NATS_CONN_STATUS_CONNECTED) {
    char url[256] = "?";
    natsConnection_GetConnectedUrl(p->nc, url, sizeof url);
    p->host->log(p->ctx, BLAZEBOT_LOG_INFO, "connected to %s", url);
    p->conn_why[0] = 0; /* a first failure is old news */
  } else if (*last == NATS_CONN_STATUS_CONNECTED) {
    p->host->log(p->ctx, BLAZEBOT_LOG_WARN,
                 "lost the connection to NATS; reconnecting (messages wait meanwhile)");
  }
  *last = st;
}

static void *bridge_main(void *arg) {
  struct np *p = arg;
  natsConnStatus last = NATS_CONN_STATUS_CONNECTING;
  int errors = 0;
  int64_t backoff = 0; /* ms, while the daemon refuses sends */
  while (!stopping(p)) {
    natsConnStatus st = natsConnection_Status(p->nc);
    note_status(p, st, &last);
    if (st != NATS_CONN_STATUS_CONNECTED) {
      char why[300];
      if (st == NATS_CONN_STATUS_CLOSED) {
        /* libnats gives up after the same authorization error twice, and
         * (3.4) after any failure of the first connection but an
         * unreachable server, then saying only "No server available". */
        if (p->conn_why[0])
          snprintf(why, sizeof why, "%s", p->conn_why);
        else if (!conn_error(p, why, sizeof why))
          snprintf(why, sizeof why, "no reason given");
        p->host->log(p->ctx, BLAZEBOT_LOG_ERROR,
                     "the NATS connection was closed (%s); messages wait until "
                     "[plugin.nats] is fixed and the daemon reloaded",
                     why);
        break;
      }
      if (conn_error(p, why, sizeof why))
        limited(p, &p->rl_conn, BLAZEBOT_LOG_WARN,
                "cannot connect to NATS (%s); trying again", why);
      pause_ms(p, 200);
      continue;
    }
    pthread_mutex_lock(&p->mu);
    int ready = p->ready;
    natsSubscription *sub = p->sub;
    pthread_mutex_unlock(&p->mu);
    if (!ready) {
      if (ensure_stream(p) < 0) {
        pause_ms(p, RETRY_WAIT_MS);
        continue;
      }
      pthread_mutex_lock(&p->mu);
      p->ready = 1;
      pthread_mutex_unlock(&p->mu);
    }
    if (!sub) {
      if (subscribe_out(p) < 0)
        pause_ms(p, RETRY_WAIT_MS);
      continue;
    }
    /* Room for a batch of sends, and not being replaced. */
    pthread_mutex_lock(&p->mu);
    while (!p->stop && (p->paused || p->out_inflight >= p->set.out_inflight))
      wait_locked(p, 500);
    long room = p->set.out_inflight - p->out_inflight;
    int stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    if (stop)
      break;
    if (backoff || room > FETCH_BATCH)
      room = backoff ? 1 : FETCH_BATCH;
    natsMsgList list = {0};
    jsErrCode jerr = 0;
    natsStatus s = natsSubscription_Fetch(&list, sub, (int)room, FETCH_WAIT_MS, &jerr);
    if (s == NATS_OK) {
      errors = 0;
      int full = 0;
      for (int i = 0; i < list.Count; i++) {
        natsMsg *m = list.Msgs[i];
        list.Msgs[i] = NULL; /* ours now */
        if (full) {          /* the daemon takes nothing now: the rest later */
          natsMsg_NakWithDelay(m, p->set.nak_delay_ms, NULL);
          natsMsg_Destroy(m);
          pthread_mutex_lock(&p->mu);
          p->naked++;
          pthread_mutex_unlock(&p->mu);
        } else {
          full = handle_out(p, m);
        }
      }
      natsMsgList_Destroy(&list);
      /* Refused sends: wait longer each time (200 ms to 2 s), one by one. */
      backoff = full ? (backoff ? (backoff < 1000 ? 2 * backoff : 2000) : 200) : 0;
      if (backoff)
        pause_ms(p, backoff);
    } else if (s != NATS_TIMEOUT) {
      natsMsgList_Destroy(&list);
      limited(p, &p->rl_fetch, BLAZEBOT_LOG_WARN, "fetching from %s failed: %s",
              OUT_CONSUMER, nats_GetLastError(NULL));
      /* Three failures in a row: the consumer or the stream may be gone (a
       * broker that lost its store); set them up again once no message of
       * the old subscription is waiting for its result. */
      if (++errors >= 3 && natsConnection_Status(p->nc) == NATS_CONN_STATUS_CONNECTED) {
        pthread_mutex_lock(&p->mu);
        while (!p->stop && p->out_inflight > 0)
          wait_locked(p, 500);
        int quit = p->stop;
        if (!quit) {
          p->sub = NULL;
          p->ready = 0;
        }
        pthread_mutex_unlock(&p->mu);
        if (quit)
          break;
        natsSubscription_Destroy(sub);
        errors = 0;
      }
      pause_ms(p, RETRY_WAIT_MS);
    }
  }
  return NULL;
}

/* ---- life cycle -----------------------------------------------------------------------
 */

static void np_free(struct np *p) {
  if (!p)
    return;
  natsOptions_Destroy(p->opts);
  settings_free(&p->set);
  free(p->subj_in);
  free(p->subj_out);
  pthread_mutex_destroy(&p->mu);
  pthread_mutex_destroy(&p->rl_mu);
  pthread_cond_destroy(&p->cv);
  free(p);
}

static int make_options(struct np *p, char *why, size_t whylen) {
  char name[200];
  snprintf(name, sizeof name, "blazebot %s",
           BLAZEBOT_HOST_HAS(p->host, instance_name) ? p->host->instance_name(p->ctx)
                                                     : "nats");
  natsStatus s = natsOptions_Create(&p->opts);
  if (s == NATS_OK)
    s = natsOptions_SetServers(p->opts, (const char **)p->set.servers, p->set.nservers);
  if (s == NATS_OK)
    s = natsOptions_SetName(p->opts, name);
  if (s == NATS_OK)
    s = natsOptions_SetMaxReconnect(p->opts, -1);
  if (s == NATS_OK)
    s = natsOptions_SetReconnectWait(p->opts, 500);
  if (s == NATS_OK)
    s = natsOptions_SetTimeout(p->opts, 2000);
  if (s == NATS_OK)
    s = natsOptions_SetPingInterval(p->opts, 5000);
  if (s == NATS_OK)
    s = natsOptions_SetMaxPingsOut(p->opts, 3);
  if (s == NATS_OK && p->set.token)
    s = natsOptions_SetToken(p->opts, p->set.token);
  if (s == NATS_OK && p->set.creds_file)
    s = natsOptions_SetUserCredentialsFromFiles(p->opts, p->set.creds_file, NULL);
  /* libnats 3.4 does not require TLS for a tls:// URL by itself: it would
   * talk in clear to a server that does not offer TLS. */
  int tls = p->set.ca_file != NULL;
  for (int i = 0; i < p->set.nservers; i++)
    tls |= !strncmp(p->set.servers[i], "tls://", 6);
  if (s == NATS_OK && tls)
    s = natsOptions_SetSecure(p->opts, true);
  if (s == NATS_OK && p->set.ca_file)
    s = natsOptions_LoadCATrustedCertificates(p->opts, p->set.ca_file);
  if (s != NATS_OK) {
    snprintf(why, whylen, "NATS options: %s", nats_GetLastError(NULL));
    return -1;
  }
  return 0;
}

static int np_init(blazebot_ctx *ctx, const struct blazebot_host *host, void **state) {
  char why[300];
  if (!BLAZEBOT_HOST_HAS(host, hold) || !BLAZEBOT_HOST_HAS(host, send_result)) {
    host->set_error(ctx, "needs a daemon with plugin API 1.1 (hold, send_result)");
    return -1;
  }
  struct np *p = calloc(1, sizeof *p);
  if (!p) {
    host->set_error(ctx, "out of memory");
    return -1;
  }
  p->ctx = ctx;
  p->host = host;
  pthread_mutex_init(&p->mu, NULL);
  pthread_mutex_init(&p->rl_mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  if (settings_read(p, why, sizeof why) < 0 || make_options(p, why, sizeof why) < 0) {
    host->set_error(ctx, "%s", why);
    np_free(p);
    return -1;
  }
  size_t n = strlen(p->set.prefix) + 8;
  p->subj_in = malloc(n);
  p->subj_out = malloc(n);
  if (!p->subj_in || !p->subj_out) {
    host->set_error(ctx, "out of memory");
    np_free(p);
    return -1;
  }
  snprintf(p->subj_in, n, "%s.in.", p->set.prefix);
  snprintf(p->subj_out, n, "%s.out", p->set.prefix);

  /* One attempt first, which says why it fails (the connection's own error
   * is gone by the time the bridge thread looks). Then in the background
   * (NATS_NOT_YET_CONNECTED) when no server answers now: the daemon starts
   * anyway and messages wait. */
  natsStatus s = natsConnection_Connect(&p->nc, p->opts);
  if (s != NATS_OK) {
    snprintf(p->conn_why, sizeof p->conn_why, "%s", last_error());
    host->log(ctx, BLAZEBOT_LOG_WARN,
              "cannot connect to NATS (%s); trying again in the background", p->conn_why);
    p->nc = NULL;
    s = natsOptions_SetRetryOnFailedConnect(p->opts, true, on_connected_noop, NULL);
    if (s == NATS_OK)
      s = natsConnection_Connect(&p->nc, p->opts);
  }
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
    host->set_error(ctx, "cannot connect to NATS: %s", nats_GetLastError(NULL));
    np_free(p);
    return -1;
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = 5000;
  jo.PublishAsync.AckHandler = on_puback;
  jo.PublishAsync.AckHandlerClosure = p;
  jo.PublishAsync.MaxPending = 4096;
  jo.PublishAsync.StallWait = 1000;
  s = natsConnection_JetStream(&p->js, p->nc, &jo);
  if (s == NATS_OK && pthread_create(&p->thread, NULL, bridge_main, p) == 0) {
    p->thread_started = 1;
  } else {
    host->set_error(ctx, "cannot start: %s",
                    s != NATS_OK ? nats_GetLastError(NULL) : "no thread");
    jsCtx_Destroy(p->js);
    natsConnection_Destroy(p->nc);
    np_free(p);
    return -1;
  }
  host->log(ctx, BLAZEBOT_LOG_INFO,
            "bridging to %s (%d server%s), stream %s, subjects %s* and %s",
            p->set.servers[0], p->set.nservers, p->set.nservers == 1 ? "" : "s",
            p->set.stream, p->subj_in, p->subj_out);
  *state = p;
  return 0;
}

static void np_shutdown(void *state) {
  struct np *p = state;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  if (p->thread_started)
    pthread_join(p->thread, NULL);
  /* The host released the holds still taken (as RETRY) before this call:
   * the publishes still waiting are taken back from libnats, and any
   * on_puback already running is waited for, so none runs after this. */
  natsMsgList pending = {0};
  /* Only after a publish: libnats 3.4 crashes here before the first one. */
  if (p->async_used && js_PublishAsyncGetPendingList(&pending, p->js) == NATS_OK) {
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < pending.Count; i++) {
      struct pub *pb = pub_remove(p, pending.Msgs[i]);
      if (pb) {
        p->host->release(p->ctx, pb->hold, BLAZEBOT_RETRY); /* -1 if released already */
        free(pb);
      }
    }
    pthread_mutex_unlock(&p->mu);
    natsMsgList_Destroy(&pending);
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 10000;
  if (js_PublishAsyncComplete(p->js, &po) != NATS_OK)
    p->host->log(p->ctx, BLAZEBOT_LOG_ERROR, "a publish-ack callback did not finish");
  natsSubscription_Destroy(p->sub);
  jsCtx_Destroy(p->js);
  natsConnection_Close(p->nc);
  natsConnection_Destroy(p->nc);
  for (int b = 0; b < PUB_BUCKETS; b++) { /* only after a failed wait above */
    while (p->pubs[b]) {
      struct pub *pb = p->pubs[b];
      p->pubs[b] = pb->next;
      free(pb);
    }
  }
  p->host->log(p->ctx, BLAZEBOT_LOG_INFO,
               "stopped: %lu published, %lu publish failures; %lu sent, %lu refused, %lu "
               "malformed, %lu redelivered later",
               p->published, p->pub_failed, p->sent, p->refused, p->malformed, p->naked);
  np_free(p);
}

/* The plugin's queue: a reload that was to replace this instance failed
 * (after a successful one this timer is cancelled and never runs). */
static void np_resume(void *state, void *arg) {
  struct np *p = state;
  (void)arg;
  pthread_mutex_lock(&p->mu);
  p->paused = 0;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

/* The plugin's queue, just before a reload's new instance starts: this one
 * stops fetching outbound messages, which it could not send any more once
 * replaced (the host refuses a retired instance's sends). If the new
 * instance fails to start, np_resume undoes this; there is no state to hand
 * over. */
static int np_save_state(void *state) {
  struct np *p = state;
  if (p->host->timer_add(p->ctx, RESUME_AFTER_MS, 0, np_resume, NULL, NULL) != 0)
    return 0;
  pthread_mutex_lock(&p->mu);
  p->paused = 1;
  pthread_mutex_unlock(&p->mu);
  return 0;
}

static const struct blazebot_subscription subs[] = {{"*", 0, 0}, {NULL, 0, 0}};

/* Not UNLOAD_SAFE: libnats (shared by every generation) may still run down
 * its threads after shutdown, so an old generation stays mapped. */
BLAZEBOT_PLUGIN(.flags = BLAZEBOT_FLAG_RETRY_FOREVER, .name = "nats", .version = "1.0",
                .description =
                    "Bridges messages to NATS JetStream and sends workers' replies",
                .subscriptions = subs, .init = np_init, .on_message = np_on_message,
                .shutdown = np_shutdown, .save_state = np_save_state);
