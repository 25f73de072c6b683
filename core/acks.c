/* SPDX-License-Identifier: MIT */
/*
 * acks: see acks.h. Queued ids live in a growable ring of fixed 37-byte
 * slots; batches are recycled structs holding up to 100 ids. A batch is in
 * exactly one place at a time: the retry list (waiting, with a due time) or
 * in flight (owned by a session request or REST call).
 */
#include "acks.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "util.h"

#define MAX_INFLIGHT 8

struct batch {
  struct batch *next;
  struct acks *a;
  int n;
  int attempts;
  int64_t due;
  int via; /* transport the batch was sent with */
  char ids[100][UUID_STR_LEN];
  int64_t received_us[100]; /* per id: now_us of its push, 0 unknown */
};

struct acks {
  const struct config *cfg;
  struct session *s;
  struct rest *r;
  int transport;

  char (*ring)[UUID_STR_LEN];
  int64_t *ring_us;      /* received_us of each ring entry */
  size_t cap, head, len; /* ring of queued ids */
  int64_t first_at;      /* when the oldest queued id arrived */

  struct batch *retry; /* waiting batches, sent before new ones */
  struct batch *pool;
  /* Batches in flight per transport: WebSocket ones wait, unanswered, while
   * the socket is held, and must not stop REST batches meanwhile. */
  int inflight[2];
  size_t inflight_ids;
  struct buf body;
  struct acks_stats st;
};

struct acks *acks_new(const struct config *cfg, struct session *s, struct rest *r) {
  struct acks *a = calloc(1, sizeof *a);
  if (!a)
    return NULL;
  a->cfg = cfg;
  a->s = s;
  a->r = r;
  a->transport = cfg->ack_transport;
  a->st.transport = a->transport;
  a->st.last_ok_ms = now_ms();
  return a;
}

static void free_list(struct batch *b) {
  while (b) {
    struct batch *n = b->next;
    free(b);
    b = n;
  }
}

void acks_free(struct acks *a) {
  if (!a)
    return;
  free_list(a->retry);
  free_list(a->pool);
  free(a->ring);
  free(a->ring_us);
  buf_fini(&a->body);
  free(a);
}

void acks_set_config(struct acks *a, const struct config *cfg) {
  /* A fallback to REST forced by the server stays in force. */
  if (a->transport == a->cfg->ack_transport)
    a->transport = cfg->ack_transport;
  a->cfg = cfg;
  a->st.transport = a->transport;
}

int acks_add(struct acks *a, const char *message_id, int64_t received_us) {
  if (a->len == a->cap) {
    size_t ncap = a->cap ? a->cap * 2 : 1024;
    char(*nr)[UUID_STR_LEN] = malloc(ncap * sizeof *nr);
    int64_t *nt = malloc(ncap * sizeof *nt);
    if (!nr || !nt) {
      free(nr);
      free(nt);
      return -1;
    }
    for (size_t i = 0; i < a->len; i++) {
      memcpy(nr[i], a->ring[(a->head + i) % a->cap], UUID_STR_LEN);
      nt[i] = a->ring_us[(a->head + i) % a->cap];
    }
    free(a->ring);
    free(a->ring_us);
    a->ring = nr;
    a->ring_us = nt;
    a->cap = ncap;
    a->head = 0;
  }
  if (!a->len)
    a->first_at = now_ms();
  a->ring_us[(a->head + a->len) % a->cap] = received_us;
  snprintf(a->ring[(a->head + a->len) % a->cap], UUID_STR_LEN, "%s", message_id);
  a->len++;
  a->st.queued++;
  return 0;
}

static struct batch *batch_get(struct acks *a) {
  struct batch *b = a->pool;
  if (b)
    a->pool = b->next;
  else if (!(b = malloc(sizeof *b)))
    return NULL;
  b->next = NULL;
  b->a = a;
  b->n = 0;
  b->attempts = 0;
  b->due = 0;
  return b;
}

static void batch_put(struct acks *a, struct batch *b) {
  b->next = a->pool;
  a->pool = b;
}

/* Puts b back on the retry list, due after a backoff. */
static void batch_retry(struct acks *a, struct batch *b, int immediate) {
  b->attempts++;
  int64_t d = 0;
  if (!immediate) {
    d = 500;
    for (int i = 1; i < b->attempts && d < 30000; i++)
      d *= 2;
    if (d > 30000)
      d = 30000;
  }
  b->due = now_ms() + d;
  b->next = a->retry;
  a->retry = b;
  a->st.retries++;
}

static void batch_done(struct acks *a, struct batch *b) {
  if (log_get_level() >= LOGL_DEBUG)
    for (int i = 0; i < b->n; i++)
      log_event(LOGL_DEBUG, "message.acked", "message_id", b->ids[i], "via",
                b->via == ACK_TRANSPORT_REST ? "rest" : "websocket", NULL);
  int64_t now = now_us();
  for (int i = 0; i < b->n; i++)
    if (b->received_us[i] > 0 && now >= b->received_us[i])
      hist_observe_us(&a->st.push_to_ack, (uint64_t)(now - b->received_us[i]));
  a->st.acked += (uint64_t)b->n;
  a->st.batches++;
  a->st.last_ok_ms = now_ms();
  batch_put(a, b);
}

static void send_batch(struct acks *a, struct batch *b);

/* While the daemon holds the socket for back pressure, a WebSocket ack
 * would need the socket read for its reply; REST needs nothing from it. */
static int current_transport(const struct acks *a) {
  return session_is_held(a->s) ? ACK_TRANSPORT_REST : a->transport;
}

static void on_ws_reply(void *ud, const struct envelope *env, int err) {
  struct batch *b = ud;
  struct acks *a = b->a;
  a->inflight[ACK_TRANSPORT_WEBSOCKET]--;
  a->inflight_ids -= (size_t)b->n;
  if (err < 0) {
    /* Disconnected or no reply: resend once the link is back. */
    batch_retry(a, b, err == SESSION_EDISCONNECTED);
    return;
  }
  if (env->has_error) {
    if (a->transport == ACK_TRANSPORT_WEBSOCKET) {
      log_warn("acks: the server refused ACKNOWLEDGE_MESSAGE_RECEIPTS (code %d %s); "
               "acknowledging over REST POST /acknowledgements from now on",
               env->error_code, env->error_description);
      a->transport = ACK_TRANSPORT_REST;
      a->st.transport = a->transport;
    }
    batch_retry(a, b, 1);
    return;
  }
  batch_done(a, b);
}

static void on_rest_reply(void *ud, int ok, const struct rest_result *res) {
  struct batch *b = ud;
  struct acks *a = b->a;
  a->inflight[ACK_TRANSPORT_REST]--;
  a->inflight_ids -= (size_t)b->n;
  if (ok) {
    batch_done(a, b);
    return;
  }
  log_warn("acks: POST /acknowledgements failed (HTTP %d, code %d); will retry",
           res->http_status, res->error_code);
  batch_retry(a, b, 0);
}

static void send_batch(struct acks *a, struct batch *b) {
  b->via = current_transport(a);
  /* The entries as JSON text (the ids are UUIDs): the REST body as is, or
   * the WebSocket request's {"messages": [...]}. */
  buf_reset(&a->body);
  int ws = b->via == ACK_TRANSPORT_WEBSOCKET;
  int bad = buf_append(&a->body, ws ? "{\"messages\":[" : "[", ws ? 13 : 1) < 0;
  for (int i = 0; i < b->n && !bad; i++)
    bad = (i && buf_append(&a->body, ",", 1) < 0) ||
          buf_append(&a->body, "{\"message_id\":\"", 15) < 0 ||
          buf_append(&a->body, b->ids[i], strlen(b->ids[i])) < 0 ||
          buf_append(&a->body, "\",\"status\":\"READ\"}", 18) < 0;
  bad = bad || buf_append(&a->body, ws ? "]}" : "]", ws ? 2 : 1) < 0;
  if (ws) {
    int rc = bad ? -1
                 : session_request_text(a->s, "ACKNOWLEDGE_MESSAGE_RECEIPTS",
                                        a->body.data, a->body.len, NULL, on_ws_reply, b);
    if (rc < 0) {
      batch_retry(a, b, 1);
      return;
    }
  } else {
    if (bad || rest_request(a->r, "POST", "/acknowledgements", a->body.data, a->body.len,
                            on_rest_reply, b) < 0) {
      batch_retry(a, b, 0);
      return;
    }
  }
  a->inflight[b->via]++;
  a->inflight_ids += (size_t)b->n;
}

static int can_send(struct acks *a) {
  if (a->inflight[current_transport(a)] >= MAX_INFLIGHT)
    return 0;
  if (current_transport(a) == ACK_TRANSPORT_WEBSOCKET)
    return session_is_open(a->s);
  return 1;
}

void acks_tick(struct acks *a, int64_t now, int force) {
  /* Retries first: they are the oldest. */
  struct batch **pp = &a->retry;
  while (*pp && can_send(a)) {
    struct batch *b = *pp;
    if (b->due > now) {
      pp = &b->next;
      continue;
    }
    *pp = b->next;
    send_batch(a, b);
  }
  int max = a->cfg->ack_batch;
  while (
      a->len && can_send(a) &&
      (force || a->len >= (size_t)max || now - a->first_at >= a->cfg->ack_interval_ms)) {
    struct batch *b = batch_get(a);
    if (!b)
      return;
    while (b->n < max && a->len) {
      b->received_us[b->n] = a->ring_us[a->head];
      memcpy(b->ids[b->n++], a->ring[a->head], UUID_STR_LEN);
      a->head = (a->head + 1) % a->cap;
      a->len--;
    }
    a->first_at = now;
    send_batch(a, b);
  }
}

size_t acks_outstanding(const struct acks *a) {
  size_t n = a->len + a->inflight_ids;
  for (struct batch *b = a->retry; b; b = b->next)
    n += (size_t)b->n;
  return n;
}

const struct acks_stats *acks_get_stats(const struct acks *a) {
  return &a->st;
}
