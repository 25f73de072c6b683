/* SPDX-License-Identifier: MIT */
/*
 * outbox: see outbox.h. An item moves inbox (locked, any thread) → its
 * conversation's FIFO → in flight (a CREATE_MESSAGE request, or one REST
 * POST /messages batch) → settled; or from in flight to the delayed list
 * when it must be retried, and back to the front of its FIFO when due.
 * A conversation with an item in flight or delayed sends nothing else over
 * the WebSocket, so a retried reply can never be overtaken by a later one
 * of the same conversation; REST batches keep a conversation's items in
 * order inside one array. Only the inbox, the count and the capacity are
 * shared between threads; everything else belongs to the I/O thread.
 */
#include "outbox.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base64.h"
#include "buf.h"
#include "envelope.h"
#include "log.h"
#include "util.h"

#define MAX_INFLIGHT 256    /* WebSocket requests in flight */
#define MAX_REST_INFLIGHT 4 /* POST /messages batches in flight */
#define REST_BATCH_MAX 100  /* messages per POST /messages (Mixin's limit) */
#define CONV_BUCKETS 1024

struct conv;

struct item {
  struct item *next;
  char *params; /* CREATE_MESSAGE params as JSON text, owned */
  size_t params_len;
  char message_id[UUID_STR_LEN];
  char conv_id[UUID_STR_LEN]; /* lowercase */
  struct conv *conv;          /* I/O thread, once taken off the inbox */
  void *owner;
  /* outbox_msg.result, or NULL; items with one are also on o->results
   * (guarded by mu) until settled or abandoned. */
  outbox_result_fn result;
  void *result_arg;
  struct item *rprev, *rnext;
  uint64_t seq; /* order of arrival on the I/O thread */
  size_t wire;  /* its JSON size */
  int attempts;
  int solo; /* a REST batch holding it was refused: send it alone */
  int64_t due;
  struct outbox *o;
};

struct list {
  struct item *head, *tail;
};

/* One conversation's queue. busy counts its items in flight or delayed:
 * while it is not 0, nothing else of the conversation goes out. */
struct conv {
  struct conv *hnext;   /* hash chain */
  struct conv *runnext; /* runnable list */
  char id[UUID_STR_LEN];
  struct list fifo;
  int busy;
  int runnable;
};

/* One POST /messages in flight. */
struct rest_batch {
  struct outbox *o;
  struct item *items[REST_BATCH_MAX];
  int n;
};

struct outbox {
  const struct config *cfg; /* I/O thread only (reload swaps it there) */
  struct session *s;
  struct rest *rest;
  outbox_settled_fn settled;
  void *settled_ud;
  void (*wake)(void *);
  void *wake_ud;

  pthread_mutex_t mu;
  pthread_cond_t room;
  struct item *results;   /* guarded by mu: items with a result callback */
  struct list inbox;      /* guarded by mu */
  size_t count;           /* unsettled items, guarded by mu */
  size_t capacity;        /* outbox_capacity, guarded by mu: senders read it */
  int closed;             /* guarded by mu */
  struct outbox_stats st; /* queued/full guarded by mu; the rest I/O thread */

  struct conv *buckets[CONV_BUCKETS];
  struct conv *run_head, *run_tail; /* conversations with something to send */
  struct item *delayed;
  uint64_t next_seq;
  int inflight;      /* WebSocket requests */
  int rest_inflight; /* REST batches */
  int pumping;       /* in pump: answers it causes do not pump again */
  struct buf body;   /* POST /messages body being built */
  double tokens;     /* rate limiter bucket */
  int64_t tokens_at;
};

static void list_push(struct list *l, struct item *it) {
  it->next = NULL;
  if (l->tail)
    l->tail->next = it;
  else
    l->head = it;
  l->tail = it;
}

static struct item *list_pop(struct list *l) {
  struct item *it = l->head;
  if (it) {
    l->head = it->next;
    if (!l->head)
      l->tail = NULL;
  }
  return it;
}

/* Puts it back among the items not yet sent, in arrival order: items come
 * back (a retry, a lost link) older than the ones still queued. */
static void list_insert_ordered(struct list *l, struct item *it) {
  struct item **pp = &l->head;
  while (*pp && (*pp)->seq < it->seq)
    pp = &(*pp)->next;
  it->next = *pp;
  *pp = it;
  if (!it->next)
    l->tail = it;
}

static void item_free(struct item *it) {
  free(it->params);
  free(it);
}

static unsigned conv_hash(const char *id) {
  unsigned h = 2166136261u;
  for (; *id; id++)
    h = (h ^ (unsigned char)*id) * 16777619u;
  return h % CONV_BUCKETS;
}

static struct conv *conv_get(struct outbox *o, const char *id) {
  unsigned h = conv_hash(id);
  for (struct conv *c = o->buckets[h]; c; c = c->hnext)
    if (!strcmp(c->id, id))
      return c;
  struct conv *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  memcpy(c->id, id, UUID_STR_LEN);
  c->hnext = o->buckets[h];
  o->buckets[h] = c;
  return c;
}

/* A conversation with nothing queued and nothing outstanding is forgotten. */
static void conv_maybe_free(struct outbox *o, struct conv *c) {
  if (c->busy || c->fifo.head || c->runnable)
    return;
  for (struct conv **pp = &o->buckets[conv_hash(c->id)]; *pp; pp = &(*pp)->hnext) {
    if (*pp == c) {
      *pp = c->hnext;
      break;
    }
  }
  free(c);
}

static void conv_wake(struct outbox *o, struct conv *c) {
  if (c->runnable || c->busy || !c->fifo.head)
    return;
  c->runnable = 1;
  c->runnext = NULL;
  if (o->run_tail)
    o->run_tail->runnext = c;
  else
    o->run_head = c;
  o->run_tail = c;
}

static struct conv *run_pop(struct outbox *o) {
  struct conv *c = o->run_head;
  if (c) {
    o->run_head = c->runnext;
    if (!o->run_head)
      o->run_tail = NULL;
    c->runnable = 0;
  }
  return c;
}

/* it is no longer outstanding: back to the front part of its FIFO. */
static void requeue(struct outbox *o, struct item *it) {
  struct conv *c = it->conv;
  c->busy--;
  list_insert_ordered(&c->fifo, it);
  conv_wake(o, c);
}

/* send_rate_per_min = 0 lifts the client-side limit: said once, when it
 * starts to apply. */
static void warn_unlimited(const struct config *cfg, const struct config *old) {
  if (cfg->send_rate_per_min == 0 && (!old || old->send_rate_per_min != 0))
    log_warn("send_rate_per_min = 0: replies are not rate limited; Mixin's quota is "
             "100,000 messages a minute, and the server refuses what exceeds it");
}

struct outbox *outbox_new(const struct config *cfg, struct session *s, struct rest *rest,
                          outbox_settled_fn settled, void *settled_ud,
                          void (*wake)(void *), void *wake_ud) {
  struct outbox *o = calloc(1, sizeof *o);
  if (!o)
    return NULL;
  o->cfg = cfg;
  o->capacity = (size_t)cfg->outbox_capacity;
  o->s = s;
  o->rest = rest;
  o->settled = settled;
  o->settled_ud = settled_ud;
  o->wake = wake;
  o->wake_ud = wake_ud;
  pthread_mutex_init(&o->mu, NULL);
  pthread_cond_init(&o->room, NULL);
  o->tokens = 1;
  o->tokens_at = now_ms();
  warn_unlimited(cfg, NULL);
  return o;
}

void outbox_free(struct outbox *o) {
  if (!o)
    return;
  struct item *it;
  while ((it = list_pop(&o->inbox)))
    item_free(it);
  while ((it = o->delayed)) {
    o->delayed = it->next;
    item_free(it);
  }
  for (int i = 0; i < CONV_BUCKETS; i++) {
    while (o->buckets[i]) {
      struct conv *c = o->buckets[i];
      o->buckets[i] = c->hnext;
      while ((it = list_pop(&c->fifo)))
        item_free(it);
      free(c);
    }
  }
  buf_fini(&o->body);
  pthread_cond_destroy(&o->room);
  pthread_mutex_destroy(&o->mu);
  free(o);
}

void outbox_set_config(struct outbox *o, const struct config *cfg) {
  warn_unlimited(cfg, o->cfg);
  o->cfg = cfg;
  pthread_mutex_lock(&o->mu);
  o->capacity = (size_t)cfg->outbox_capacity;
  pthread_cond_broadcast(&o->room); /* a larger outbox has room now */
  pthread_mutex_unlock(&o->mu);
}

static int opt_uuid(const char *s) {
  return !s || !*s || uuid_valid(s);
}

int outbox_send(struct outbox *o, const struct outbox_msg *m, void *owner,
                char id_out[UUID_STR_LEN], int wait_ms) {
  if (!m || !uuid_valid(m->conversation_id) || !m->category || !*m->category ||
      strlen(m->category) > 64 ||
      !utf8_valid((const unsigned char *)m->category, strlen(m->category)) ||
      !opt_uuid(m->recipient_id) || !opt_uuid(m->message_id) ||
      !opt_uuid(m->representative_id) || !opt_uuid(m->quote_message_id) ||
      (m->len && !m->data)) {
    log_warn("outbox: refused a message with a missing or invalid field");
    return -1;
  }
  struct item *it = calloc(1, sizeof *it);
  if (!it)
    return -2;
  if (m->message_id && *m->message_id) {
    for (int i = 0; i < UUID_STR_LEN; i++)
      it->message_id[i] = (char)(m->message_id[i] >= 'A' && m->message_id[i] <= 'F'
                                     ? m->message_id[i] + 32
                                     : m->message_id[i]);
  } else if (uuid_v4(it->message_id) < 0) {
    free(it);
    return -2;
  }
  /* The params as JSON text, written once, sent as is over the socket or
   * in a POST /messages batch. */
  size_t elen = base64_encoded_len(m->len, 1);
  struct buf b = {0};
  int bad = buf_reserve(&b, elen + 2 * strlen(m->category) + 5 * UUID_STR_LEN + 200) < 0;
  bad = bad || buf_append(&b, "{\"conversation_id\":\"", 20) < 0 ||
        buf_append(&b, m->conversation_id, 36) < 0 ||
        buf_append(&b, "\",\"message_id\":\"", 16) < 0 ||
        buf_append(&b, it->message_id, 36) < 0 ||
        buf_append(&b, "\",\"category\":", 13) < 0 ||
        envelope_append_string(&b, m->category) < 0 ||
        buf_append(&b, ",\"data_base64\":\"", 16) < 0 || buf_reserve(&b, elen + 2) < 0;
  if (!bad) {
    base64_encode(m->data, m->len, 1, b.data + b.len);
    b.len += elen;
    bad = buf_append(&b, "\"", 1) < 0;
  }
  static const char *const opt_keys[] = {
      ",\"recipient_id\":\"", ",\"representative_id\":\"", ",\"quote_message_id\":\""};
  const char *opt_vals[] = {m->recipient_id, m->representative_id, m->quote_message_id};
  for (int i = 0; i < 3 && !bad; i++) {
    if (opt_vals[i] && *opt_vals[i])
      bad = buf_append(&b, opt_keys[i], strlen(opt_keys[i])) < 0 ||
            buf_append(&b, opt_vals[i], 36) < 0 || buf_append(&b, "\"", 1) < 0;
  }
  if (!bad && m->silent)
    bad = buf_append(&b, ",\"silent\":true", 14) < 0;
  if (!bad)
    bad = buf_append(&b, "}", 1) < 0;
  if (bad) {
    buf_fini(&b);
    free(it);
    return -2;
  }
  it->params = b.data;
  it->params_len = b.len;
  /* The server refuses a message over 128 KB; refusing it here tells the
   * plugin at once instead of retrying a message that can never go out. */
  size_t wire = b.len;
  if (wire > OUTBOX_MAX_MESSAGE_BYTES) {
    log_warn("outbox: refused a %s message of %zu bytes (%zu as JSON): over the server's "
             "limit of %d bytes",
             m->category, m->len, wire, OUTBOX_MAX_MESSAGE_BYTES);
    item_free(it);
    return -1;
  }
  it->owner = owner;
  it->o = o;
  it->wire = wire;
  memcpy(it->conv_id, m->conversation_id, UUID_STR_LEN);
  for (int i = 0; i < UUID_STR_LEN; i++)
    if (it->conv_id[i] >= 'A' && it->conv_id[i] <= 'F')
      it->conv_id[i] = (char)(it->conv_id[i] + 32);

  pthread_mutex_lock(&o->mu);
  if (wait_ms > 0 && o->count >= o->capacity && !o->closed) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += wait_ms / 1000;
    ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    while (o->count >= o->capacity && !o->closed)
      if (pthread_cond_timedwait(&o->room, &o->mu, &ts) != 0)
        break;
  }
  if (o->closed || o->count >= o->capacity) {
    o->st.full++;
    pthread_mutex_unlock(&o->mu);
    item_free(it);
    return -2;
  }
  o->count++;
  o->st.queued++;
  if (m->result) {
    it->result = m->result;
    it->result_arg = m->result_arg;
    it->rnext = o->results;
    if (o->results)
      o->results->rprev = it;
    o->results = it;
  }
  if (id_out)
    memcpy(id_out, it->message_id, UUID_STR_LEN);
  list_push(&o->inbox, it);
  pthread_mutex_unlock(&o->mu);
  if (o->wake)
    o->wake(o->wake_ud);
  return 0;
}

/* Mutex held: takes it off the results list; returns its callback (now
 * cleared), or NULL when it had none or it was abandoned. */
static outbox_result_fn take_result_locked(struct outbox *o, struct item *it) {
  outbox_result_fn fn = it->result;
  if (!fn)
    return NULL;
  if (it->rprev)
    it->rprev->rnext = it->rnext;
  else
    o->results = it->rnext;
  if (it->rnext)
    it->rnext->rprev = it->rprev;
  it->result = NULL;
  return fn;
}

/* code: for a refusal, the Mixin error code (or the HTTP status). */
static void settle(struct outbox *o, struct item *it, int accepted, int code) {
  void *owner = it->owner;
  struct conv *c = it->conv;
  c->busy--;
  pthread_mutex_lock(&o->mu);
  outbox_result_fn fn = take_result_locked(o, it);
  o->count--;
  pthread_cond_signal(&o->room);
  pthread_mutex_unlock(&o->mu);
  if (log_get_level() >= LOGL_DEBUG) {
    char cs[16];
    snprintf(cs, sizeof cs, "%d", code);
    log_event(LOGL_DEBUG, "reply.settled", "message_id", it->message_id, "result",
              accepted ? "accepted" : "refused", "code", accepted ? NULL : cs, NULL);
  }
  if (fn)
    fn(it->result_arg, accepted ? OUTBOX_ACCEPTED : OUTBOX_REFUSED, accepted ? 0 : code,
       it->message_id);
  item_free(it);
  conv_wake(o, c);
  conv_maybe_free(o, c);
  if (accepted)
    o->st.accepted++;
  else
    o->st.dropped++;
  if (o->settled)
    o->settled(o->settled_ud, owner, accepted);
}

/* it stays outstanding (its conversation waits) until due. */
static void retry_later(struct outbox *o, struct item *it) {
  it->attempts++;
  int64_t d = 1000;
  for (int i = 1; i < it->attempts && d < 60000; i++)
    d *= 2;
  if (d > 60000)
    d = 60000;
  d = d / 2 + rand_below((uint32_t)(d / 2 + 1));
  it->due = now_ms() + d;
  it->next = o->delayed;
  o->delayed = it;
  o->st.retried++;
}

static int retryable(int code) {
  return code == 401 || code == 429 || code == 7000 || code == 7001 ||
         (code >= 500 && code < 600);
}

static void pump(struct outbox *o, int64_t now);

static void on_reply_settle(struct outbox *o, struct item *it, const struct envelope *env,
                            int err);

static void on_reply(void *ud, const struct envelope *env, int err) {
  struct item *it = ud;
  struct outbox *o = it->o;
  o->inflight--;
  on_reply_settle(o, it, env, err);
  if (!o->pumping)
    pump(o, now_ms());
}

static void on_reply_settle(struct outbox *o, struct item *it, const struct envelope *env,
                            int err) {
  if (err == SESSION_EDISCONNECTED || err == SESSION_EHELD) {
    /* Sent again (over REST while the socket is held) with the same
     * message_id: the server drops a copy it already has. */
    requeue(o, it);
    return;
  }
  if (err < 0) {
    retry_later(o, it);
    return;
  }
  if (env->has_error) {
    int code = env->error_code ? env->error_code : env->error_status;
    if (retryable(code)) {
      log_warn("outbox: message %s: server error %d (%s); retrying with backoff",
               it->message_id, code, env->error_description);
      retry_later(o, it);
    } else {
      log_error("outbox: message %s dropped: server refused it with code %d (%s)",
                it->message_id, code, env->error_description);
      settle(o, it, 0, code);
    }
    return;
  }
  settle(o, it, 1, 0);
}

static void on_rest_settle(struct outbox *o, struct rest_batch *b, int ok,
                           const struct rest_result *res);

static void on_rest_reply(void *ud, int ok, const struct rest_result *res) {
  struct rest_batch *b = ud;
  struct outbox *o = b->o;
  o->rest_inflight--;
  on_rest_settle(o, b, ok, res);
  free(b);
  if (!o->pumping)
    pump(o, now_ms());
}

static void on_rest_settle(struct outbox *o, struct rest_batch *b, int ok,
                           const struct rest_result *res) {
  int code = res->error_code ? res->error_code : res->http_status;
  if (ok) {
    for (int i = 0; i < b->n; i++)
      settle(o, b->items[i], 1, 0);
  } else if (!res->http_status || retryable(code)) {
    log_warn(
        "outbox: POST /messages of %d message(s) failed (HTTP %d, code %d); retrying "
        "with backoff",
        b->n, res->http_status, res->error_code);
    for (int i = 0; i < b->n; i++)
      retry_later(o, b->items[i]);
  } else if (b->n > 1) {
    /* The server refused the batch for one of its messages: find which by
     * sending each alone. */
    log_warn("outbox: POST /messages of %d message(s) refused with code %d; sending them "
             "one by one",
             b->n, code);
    for (int i = b->n - 1; i >= 0; i--) {
      b->items[i]->solo = 1;
      requeue(o, b->items[i]);
    }
  } else {
    log_error("outbox: message %s dropped: server refused it with code %d",
              b->items[0]->message_id, code);
    settle(o, b->items[0], 0, code);
  }
}

static int take_token(struct outbox *o) {
  if (o->tokens < 1)
    return 0;
  o->tokens -= 1;
  return 1;
}

/* One POST /messages with up to 100 messages and 128 KB, taken from the
 * runnable conversations in turn (a conversation's items in order). */
static int send_rest_batch(struct outbox *o) {
  struct rest_batch *b = calloc(1, sizeof *b);
  if (!b)
    return -1;
  b->o = o;
  buf_reset(&o->body);
  buf_append(&o->body, "[", 1);
  size_t bytes = 2;
  struct conv *skipped = NULL, **skipped_tail = &skipped;
  struct conv *c;
  while (b->n < REST_BATCH_MAX && (c = run_pop(o))) {
    int took = 0;
    while (c->fifo.head && b->n < REST_BATCH_MAX && o->tokens >= 1) {
      struct item *it = c->fifo.head;
      if ((it->solo && b->n) || bytes + it->wire + 1 > OUTBOX_MAX_MESSAGE_BYTES)
        break;
      list_pop(&c->fifo);
      if ((b->n && buf_append(&o->body, ",", 1) < 0) ||
          buf_append(&o->body, it->params, it->params_len) < 0) {
        list_insert_ordered(&c->fifo, it);
        break;
      }
      bytes += it->params_len + 1;
      take_token(o);
      c->busy++;
      b->items[b->n++] = it;
      took = 1;
      if (it->solo)
        break;
    }
    if (!took) {
      /* Kept for the next batch, in its place in the round. */
      c->runnext = NULL;
      *skipped_tail = c;
      skipped_tail = &c->runnext;
      if (b->n && (bytes + 1 >= OUTBOX_MAX_MESSAGE_BYTES || o->tokens < 1))
        break;
      continue;
    }
    if (b->items[b->n - 1]->solo || bytes + 1 >= OUTBOX_MAX_MESSAGE_BYTES ||
        o->tokens < 1)
      break;
  }
  /* Conversations passed over stay runnable, at the back of the round. */
  for (struct conv *k = skipped; k;) {
    struct conv *nx = k->runnext;
    conv_wake(o, k);
    k = nx;
  }
  if (!b->n) {
    free(b);
    return 0;
  }
  buf_append(&o->body, "]", 1);
  if (rest_request(o->rest, "POST", "/messages", o->body.data, o->body.len, on_rest_reply,
                   b) < 0) {
    for (int i = b->n - 1; i >= 0; i--)
      retry_later(o, b->items[i]);
    free(b);
    return -1;
  }
  o->rest_inflight++;
  o->st.sent += (uint64_t)b->n;
  o->st.sent_rest += (uint64_t)b->n;
  return b->n;
}

/* Sends what the rate limit, the link and the per-conversation order allow
 * now. Also runs after every answer, so a conversation's next message goes
 * out as soon as the one before it was accepted. */
static void pump_once(struct outbox *o, int64_t now);

static void pump(struct outbox *o, int64_t now) {
  o->pumping = 1;
  pump_once(o, now);
  o->pumping = 0;
}

static void pump_once(struct outbox *o, int64_t now) {
  /* Token bucket: send_rate_per_min spread evenly, burst of one second;
   * 0 = no client-side limit (the bucket is always full). */
  double rate = o->cfg->send_rate_per_min / 60000.0;
  double burst = rate * 1000 > 1 ? rate * 1000 : 1;
  o->tokens += (double)(now - o->tokens_at) * rate;
  o->tokens_at = now;
  if (o->cfg->send_rate_per_min == 0)
    o->tokens = 1e9;
  else if (o->tokens > burst)
    o->tokens = burst;
  if (session_is_held(o->s)) {
    /* The socket is not read while held: messages in flight over it are
     * taken back (their conversations would wait for the release, and the
     * outbox with them) and go over REST with their ids, like the rest. */
    if (o->inflight)
      session_cancel_requests(o->s, on_reply);
    while (o->rest && o->run_head && o->rest_inflight < MAX_REST_INFLIGHT &&
           o->tokens >= 1)
      if (send_rest_batch(o) <= 0)
        break;
    return;
  }
  while (o->run_head && o->inflight < MAX_INFLIGHT && o->tokens >= 1 &&
         session_is_open(o->s)) {
    struct conv *c = run_pop(o);
    struct item *it = list_pop(&c->fifo);
    int rc = session_request_text(o->s, "CREATE_MESSAGE", it->params, it->params_len,
                                  NULL, on_reply, it);
    if (rc < 0) {
      list_insert_ordered(&c->fifo, it);
      conv_wake(o, c);
      break;
    }
    c->busy++;
    take_token(o);
    o->inflight++;
    o->st.sent++;
  }
}

void outbox_tick(struct outbox *o, int64_t now) {
  pthread_mutex_lock(&o->mu);
  struct item *in = o->inbox.head;
  o->inbox.head = o->inbox.tail = NULL;
  pthread_mutex_unlock(&o->mu);
  while (in) {
    struct item *nx = in->next;
    in->seq = ++o->next_seq;
    in->conv = conv_get(o, in->conv_id);
    if (!in->conv) {
      /* Out of memory: this one and the rest go back to the front of the
       * inbox, in order, for the next tick. */
      struct item *last = in;
      while (last->next)
        last = last->next;
      pthread_mutex_lock(&o->mu);
      last->next = o->inbox.head;
      o->inbox.head = in;
      if (!o->inbox.tail)
        o->inbox.tail = last;
      pthread_mutex_unlock(&o->mu);
      break;
    }
    list_push(&in->conv->fifo, in);
    conv_wake(o, in->conv);
    in = nx;
  }
  for (struct item **pp = &o->delayed; *pp;) {
    struct item *it = *pp;
    if (it->due <= now) {
      *pp = it->next;
      requeue(o, it);
    } else {
      pp = &it->next;
    }
  }
  pump(o, now);
}

size_t outbox_outstanding(struct outbox *o) {
  pthread_mutex_lock(&o->mu);
  size_t n = o->count;
  pthread_mutex_unlock(&o->mu);
  return n;
}

void outbox_close(struct outbox *o) {
  pthread_mutex_lock(&o->mu);
  o->closed = 1;
  pthread_cond_broadcast(&o->room);
  pthread_mutex_unlock(&o->mu);
}

void outbox_get_stats(struct outbox *o, struct outbox_stats *out) {
  pthread_mutex_lock(&o->mu);
  *out = o->st;
  pthread_mutex_unlock(&o->mu);
}

void outbox_abandon(struct outbox *o) {
  pthread_mutex_lock(&o->mu);
  o->closed = 1;
  pthread_cond_broadcast(&o->room);
  struct item *list = o->results;
  o->results = NULL;
  for (struct item *it = list; it; it = it->rnext)
    it->rprev = NULL; /* still linked by rnext, read below */
  pthread_mutex_unlock(&o->mu);
  /* Each item stays owned by its queue (freed by outbox_free or settled
   * without a callback): only the callbacks are taken here, on the I/O
   * thread, which is the only one that settles or frees items. */
  for (struct item *it = list, *next; it; it = next) {
    next = it->rnext;
    outbox_result_fn fn = it->result;
    it->result = NULL;
    it->rnext = NULL;
    fn(it->result_arg, OUTBOX_GAVE_UP, 0, it->message_id);
  }
}
