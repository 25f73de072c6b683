/* SPDX-License-Identifier: MIT */
/*
 * outbox: see outbox.h. An item moves inbox (locked, any thread) → ready
 * FIFO → in flight (one session request) → settled, or from in flight to the
 * delayed list when it must be retried. Only the inbox is shared between
 * threads; everything else belongs to the I/O thread. The count of
 * unsettled items is guarded by the same mutex so senders can wait for room.
 */
#include "outbox.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base64.h"
#include "log.h"

#define MAX_INFLIGHT 256

struct item {
  struct item *next;
  json_t *params; /* CREATE_MESSAGE params, owned */
  char message_id[UUID_STR_LEN];
  void *owner;
  int attempts;
  int64_t due;
  struct outbox *o;
};

struct list {
  struct item *head, *tail;
};

struct outbox {
  const struct config *cfg; /* I/O thread only (reload swaps it there) */
  struct session *s;
  outbox_settled_fn settled;
  void *settled_ud;
  void (*wake)(void *);
  void *wake_ud;

  pthread_mutex_t mu;
  pthread_cond_t room;
  struct list inbox;      /* guarded by mu */
  size_t count;           /* unsettled items, guarded by mu */
  size_t capacity;        /* outbox_capacity, guarded by mu: senders read it */
  int closed;             /* guarded by mu */
  struct outbox_stats st; /* queued/full guarded by mu; the rest I/O thread */

  struct list ready;
  struct item *delayed;
  int inflight;
  double tokens; /* rate limiter bucket */
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

static void list_push_front(struct list *l, struct item *it) {
  it->next = l->head;
  l->head = it;
  if (!l->tail)
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

static void item_free(struct item *it) {
  json_decref(it->params);
  free(it);
}

struct outbox *outbox_new(const struct config *cfg, struct session *s,
                          outbox_settled_fn settled, void *settled_ud,
                          void (*wake)(void *), void *wake_ud) {
  struct outbox *o = calloc(1, sizeof *o);
  if (!o)
    return NULL;
  o->cfg = cfg;
  o->capacity = (size_t)cfg->outbox_capacity;
  o->s = s;
  o->settled = settled;
  o->settled_ud = settled_ud;
  o->wake = wake;
  o->wake_ud = wake_ud;
  pthread_mutex_init(&o->mu, NULL);
  pthread_cond_init(&o->room, NULL);
  o->tokens = 1;
  o->tokens_at = now_ms();
  return o;
}

void outbox_free(struct outbox *o) {
  if (!o)
    return;
  struct item *it;
  while ((it = list_pop(&o->inbox)))
    item_free(it);
  while ((it = list_pop(&o->ready)))
    item_free(it);
  while ((it = o->delayed)) {
    o->delayed = it->next;
    item_free(it);
  }
  pthread_cond_destroy(&o->room);
  pthread_mutex_destroy(&o->mu);
  free(o);
}

void outbox_set_config(struct outbox *o, const struct config *cfg) {
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
      strlen(m->category) > 64 || !opt_uuid(m->recipient_id) ||
      !opt_uuid(m->message_id) || !opt_uuid(m->representative_id) ||
      !opt_uuid(m->quote_message_id) || (m->len && !m->data)) {
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
  size_t elen = base64_encoded_len(m->len, 1);
  char *b64 = malloc(elen + 1);
  if (!b64) {
    free(it);
    return -2;
  }
  base64_encode(m->data, m->len, 1, b64);
  it->params =
      json_pack("{s:s,s:s,s:s,s:s%}", "conversation_id", m->conversation_id, "message_id",
                it->message_id, "category", m->category, "data_base64", b64, elen);
  free(b64);
  if (!it->params) {
    free(it);
    return -2;
  }
  if (m->recipient_id && *m->recipient_id)
    json_object_set_new(it->params, "recipient_id", json_string(m->recipient_id));
  if (m->representative_id && *m->representative_id)
    json_object_set_new(it->params, "representative_id",
                        json_string(m->representative_id));
  if (m->quote_message_id && *m->quote_message_id)
    json_object_set_new(it->params, "quote_message_id", json_string(m->quote_message_id));
  if (m->silent)
    json_object_set_new(it->params, "silent", json_true());
  /* The server refuses a message over 128 KB; refusing it here tells the
   * plugin at once instead of retrying a message that can never go out. */
  size_t bound = elen + 6 * strlen(m->category) + 5 * UUID_STR_LEN + 256;
  size_t wire = bound <= OUTBOX_MAX_MESSAGE_BYTES
                    ? bound
                    : json_dumpb(it->params, NULL, 0, JSON_COMPACT);
  if (wire > OUTBOX_MAX_MESSAGE_BYTES) {
    log_warn("outbox: refused a %s message of %zu bytes (%zu as JSON): over the server's "
             "limit of %d bytes",
             m->category, m->len, wire, OUTBOX_MAX_MESSAGE_BYTES);
    item_free(it);
    return -1;
  }
  it->owner = owner;
  it->o = o;

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
  list_push(&o->inbox, it);
  pthread_mutex_unlock(&o->mu);
  if (id_out)
    memcpy(id_out, it->message_id, UUID_STR_LEN);
  if (o->wake)
    o->wake(o->wake_ud);
  return 0;
}

static void settle(struct outbox *o, struct item *it, int accepted) {
  void *owner = it->owner;
  item_free(it);
  pthread_mutex_lock(&o->mu);
  o->count--;
  pthread_cond_signal(&o->room);
  pthread_mutex_unlock(&o->mu);
  if (accepted)
    o->st.accepted++;
  else
    o->st.dropped++;
  if (o->settled)
    o->settled(o->settled_ud, owner, accepted);
}

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
  return code == 429 || code == 7000 || code == 7001 || (code >= 500 && code < 600);
}

static void on_reply(void *ud, const struct envelope *env, int err) {
  struct item *it = ud;
  struct outbox *o = it->o;
  o->inflight--;
  if (err == SESSION_EDISCONNECTED) {
    /* Same message_id on resend: the server drops a copy it already has. */
    list_push_front(&o->ready, it);
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
      settle(o, it, 0);
    }
    return;
  }
  settle(o, it, 1);
}

void outbox_tick(struct outbox *o, int64_t now) {
  pthread_mutex_lock(&o->mu);
  struct item *in = o->inbox.head;
  o->inbox.head = o->inbox.tail = NULL;
  pthread_mutex_unlock(&o->mu);
  while (in) {
    struct item *nx = in->next;
    list_push(&o->ready, in);
    in = nx;
  }
  for (struct item **pp = &o->delayed; *pp;) {
    struct item *it = *pp;
    if (it->due <= now) {
      *pp = it->next;
      list_push(&o->ready, it);
    } else {
      pp = &it->next;
    }
  }
  /* Token bucket: send_rate_per_min spread evenly, burst of one second. */
  double rate = o->cfg->send_rate_per_min / 60000.0;
  double burst = rate * 1000 > 1 ? rate * 1000 : 1;
  o->tokens += (double)(now - o->tokens_at) * rate;
  o->tokens_at = now;
  if (o->tokens > burst)
    o->tokens = burst;
  while (o->ready.head && o->inflight < MAX_INFLIGHT && o->tokens >= 1 &&
         session_is_open(o->s)) {
    struct item *it = list_pop(&o->ready);
    int rc = session_request(o->s, "CREATE_MESSAGE", it->params, NULL, on_reply, it);
    if (rc < 0) {
      list_push_front(&o->ready, it);
      break;
    }
    o->tokens -= 1;
    o->inflight++;
    o->st.sent++;
  }
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
