/* SPDX-License-Identifier: MIT */
/*
 * ws: the Blaze side of the simulator, the "Mixin-Blaze-1" WebSocket
 * protocol (protocol.md §3). Every frame both ways is one binary message
 * holding one gzip member of one JSON object; client messages are
 * reassembled from fragments before they are inflated. Writes happen only in
 * SERVER_WRITEABLE, one frame per callback, in this order: a due ping, then
 * id-matched replies, then a due fault, then due receipt pushes, then the
 * next stored message from the connection's cursor. The cursor walks the
 * store, so pending messages are never buffered in bulk; it starts only
 * after LIST_PENDING_MESSAGES and passes each message at most once per
 * connection. Queued frames per connection are bounded: past a high-water
 * mark the connection stops being read until its queue drains.
 */
#include "sim.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <openssl/rand.h>

#include "base64.h"
#include "envelope.h"
#include "log.h"

#define QUEUE_HIGH 1024 /* queued frames at which reading pauses */
#define QUEUE_LOW 256   /* ... and resumes */
#define CURSOR_SKIP_BUDGET 4096
#define RX_KEEP_CAP (64 * 1024) /* rx buffer capacity kept between messages */
#define BOMB_SIZE (64u * 1024 * 1024)

/* ---- frames ---- */

static struct frame *frame_new(const void *data, size_t len, int write_protocol,
                               int64_t due_ms) {
  struct frame *f = malloc(sizeof *f + LWS_PRE + len);
  if (!f)
    return NULL;
  f->next = NULL;
  f->due_ms = due_ms;
  f->len = len;
  f->write_protocol = write_protocol;
  memcpy(f->buf + LWS_PRE, data, len);
  return f;
}

static void frameq_push(struct frameq *q, struct frame *f) {
  if (q->tail)
    q->tail->next = f;
  else
    q->head = f;
  q->tail = f;
  q->count++;
}

static struct frame *frameq_pop(struct frameq *q) {
  struct frame *f = q->head;
  if (!f)
    return NULL;
  q->head = f->next;
  if (!q->head)
    q->tail = NULL;
  q->count--;
  return f;
}

static void frameq_clear(struct frameq *q) {
  struct frame *f;
  while ((f = frameq_pop(q)))
    free(f);
}

int ws_gzip_json(struct sim *sim, json_t *obj, struct buf *out) {
  char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
  if (!s)
    return -1;
  buf_reset(out);
  int rc = buf_resize(out, LWS_PRE) < 0 ? CODEC_ENOMEM
                                        : codec_deflate(sim->codec, s, strlen(s), out);
  free(s);
  return rc == CODEC_OK ? 0 : -1;
}

/* Gzips obj (which this call consumes) into a frame on q. Returns 0/-1. */
static int queue_json(struct sim_conn *c, struct frameq *q, json_t *obj, int64_t due_ms) {
  struct sim *sim = c->sim;
  int rc = ws_gzip_json(sim, obj, &sim->scratch);
  json_decref(obj);
  if (rc < 0) {
    log_error("connection %llu: cannot build a frame (out of memory)",
              (unsigned long long)c->serial);
    return -1;
  }
  struct frame *f = frame_new(sim->scratch.data + LWS_PRE, sim->scratch.len - LWS_PRE,
                              LWS_WRITE_BINARY, due_ms);
  if (!f)
    return -1;
  frameq_push(q, f);
  return 0;
}

/* Debug builds (the ASan and TSan test passes): frames written as text are
 * exactly the trees they replace. Consumes tree. */
static void check_same(const struct buf *t, json_t *tree) {
#ifndef NDEBUG
  json_t *parsed = json_loadb(t->data, t->len, 0, NULL);
  if (!parsed || !tree || !json_equal(parsed, tree)) {
    log_error("frame text differs from its tree: %.*s", (int)t->len, t->data);
    abort();
  }
  json_decref(parsed);
#else
  (void)t;
#endif
  json_decref(tree);
}

/* Gzips sim->text into a frame on q. Returns 0/-1. */
static int queue_text(struct sim_conn *c, struct frameq *q, int64_t due_ms) {
  struct sim *sim = c->sim;
  struct buf *out = &sim->scratch;
  buf_reset(out);
  if (buf_resize(out, LWS_PRE) < 0 ||
      codec_deflate(sim->codec, sim->text.data, sim->text.len, out) != CODEC_OK) {
    log_error("connection %llu: cannot build a frame (out of memory)",
              (unsigned long long)c->serial);
    return -1;
  }
  if (sim->text.cap > RX_KEEP_CAP)
    buf_fini(&sim->text);
  struct frame *f =
      frame_new(out->data + LWS_PRE, out->len - LWS_PRE, LWS_WRITE_BINARY, due_ms);
  if (!f)
    return -1;
  frameq_push(q, f);
  return 0;
}

static int reply_ok(struct sim_conn *c, const char *id, const char *action,
                    json_t *data) {
  json_t *o = json_pack("{s:s,s:s}", "id", id, "action", action);
  if (o && data)
    json_object_set_new(o, "data", data);
  else
    json_decref(data);
  return queue_json(c, &c->replies, o, 0);
}

static json_t *error_object(int code, const char *description, const char *reason) {
  json_t *e =
      json_pack("{s:i,s:i,s:s}", "status", 202, "code", code, "description", description);
  if (e && reason && *reason)
    json_object_set_new(e, "extra", json_pack("{s:s}", "reason", reason));
  return e;
}

static int reply_error(struct sim_conn *c, const char *id, const char *action, int code,
                       const char *description, const char *reason) {
  json_t *o = json_pack("{s:s,s:s,s:o}", "id", id, "action", action, "error",
                        error_object(code, description, reason));
  return queue_json(c, &c->replies, o, 0);
}

static int write_frame(struct sim_conn *c, struct frame *f) {
  int n = lws_write(c->wsi, f->buf + LWS_PRE, f->len,
                    (enum lws_write_protocol)f->write_protocol);
  size_t len = f->len;
  free(f);
  if (n < (int)len) {
    log_info("connection %llu: write failed", (unsigned long long)c->serial);
    return -1;
  }
  return 0;
}

/* Writes what is in scratch (LWS_PRE headroom first) as one message. */
static int write_scratch(struct sim_conn *c, int write_protocol) {
  struct buf *b = &c->sim->scratch;
  size_t len = b->len - LWS_PRE;
  int n = lws_write(c->wsi, (unsigned char *)b->data + LWS_PRE, len,
                    (enum lws_write_protocol)write_protocol);
  if (n < (int)len) {
    log_info("connection %llu: write failed", (unsigned long long)c->serial);
    return -1;
  }
  return 0;
}

static int write_json(struct sim_conn *c, json_t *obj) {
  int rc = ws_gzip_json(c->sim, obj, &c->sim->scratch);
  json_decref(obj);
  return rc < 0 ? -1 : write_scratch(c, LWS_WRITE_BINARY);
}

/* ---- requests ---- */

static void on_list_pending(struct sim_conn *c, const struct envelope *env) {
  struct sim *sim = c->sim;
  sim->st.list_pending++;
  reply_ok(c, env->id, env->action, NULL);
  if (c->listing)
    return; /* each connection passes each message at most once */
  c->listing = 1;
  store_advance_unacked(sim);
  c->cursor = sim->first_unacked;
  c->list_mark = sim->nmsgs;
  log_info("connection %llu: LIST_PENDING_MESSAGES, %llu unacked of %zu",
           (unsigned long long)c->serial,
           (unsigned long long)(sim->nmsgs - sim->st.acked), sim->nmsgs);
}

static void on_ack_batch(struct sim_conn *c, const struct envelope *env) {
  struct sim *sim = c->sim;
  char why[160];
  if (sim->ack_batch_error) {
    faults_fired(sim, "ack_batch_error");
    reply_error(c, env->id, env->action, 400, "unknown action", NULL);
    return;
  }
  json_t *msgs = env->params ? json_object_get(env->params, "messages") : NULL;
  int code = store_check_acks(msgs, why, sizeof why);
  if (code) {
    log_info("connection %llu: %s refused: %s", (unsigned long long)c->serial,
             env->action, why);
    reply_error(c, env->id, env->action, code, "invalid field", why);
    return;
  }
  sim->st.ack_requests_ws++;
  size_t i;
  json_t *e;
  json_array_foreach(msgs, i, e) {
    store_ack(sim, json_string_value(json_object_get(e, "message_id")));
  }
  reply_ok(c, env->id, env->action, NULL);
}

static void on_ack_one(struct sim_conn *c, const struct envelope *env) {
  struct sim *sim = c->sim;
  json_t *id = env->params ? json_object_get(env->params, "message_id") : NULL;
  json_t *st = env->params ? json_object_get(env->params, "status") : NULL;
  if (!json_is_string(id) || !uuid_valid(json_string_value(id)) ||
      (st && !json_is_string(st))) {
    reply_error(c, env->id, env->action, 10002, "invalid field",
                "params must be {\"message_id\":UUID,\"status\":STRING}");
    return;
  }
  sim->st.ack_requests_ws++;
  store_ack(sim, json_string_value(id));
  reply_ok(c, env->id, env->action, NULL);
}

/* The push that tells the bot its message reached the recipient, as a tree:
 * what the text of queue_receipt is checked against in debug builds. */
static json_t *receipt_push(const char *id, const char *now, const struct sim_sent *s) {
#ifdef NDEBUG
  (void)id;
  (void)now;
  (void)s;
  return NULL;
#else
  return json_pack("{s:s,s:s,s:{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}}", "id", id, "action",
                   "ACKNOWLEDGE_MESSAGE_RECEIPT", "data", "message_id", s->message_id,
                   "status", "DELIVERED", "source", "ACKNOWLEDGE_MESSAGE_RECEIPT",
                   "conversation_id", "", "user_id", s->recipient_id, "category", "",
                   "created_at", now, "updated_at", now);
#endif
}

static void schedule_more(struct sim_conn *c);

/* The receipt, written as text (one for every message sent). */
static void queue_receipt(struct sim_conn *c, const struct sim_sent *s) {
  struct sim *sim = c->sim;
  struct buf *t = &sim->text;
  char id[UUID_STR_LEN], now[SIM_TIME_LEN];
  uuid_series_next(&sim->ids, id);
  sim_timestamp(now);
  static const char p1[] = "{\"id\":\"",
                    p2[] = "\",\"action\":\"ACKNOWLEDGE_MESSAGE_RECEIPT\","
                           "\"data\":{\"message_id\":\"",
                    p3[] = "\",\"status\":\"DELIVERED\",\"source\":"
                           "\"ACKNOWLEDGE_MESSAGE_RECEIPT\",\"conversation_id\":\"\","
                           "\"user_id\":",
                    p4[] = ",\"category\":\"\",\"created_at\":\"",
                    p5[] = "\",\"updated_at\":\"", p6[] = "\"}}";
  buf_reset(t);
  /* Appends, not buf_appendf: one receipt for every message the bot sends. */
  if (buf_append(t, p1, sizeof p1 - 1) < 0 || buf_append(t, id, strlen(id)) < 0 ||
      buf_append(t, p2, sizeof p2 - 1) < 0 ||
      buf_append(t, s->message_id, strlen(s->message_id)) < 0 ||
      buf_append(t, p3, sizeof p3 - 1) < 0 ||
      envelope_append_string(t, s->recipient_id) < 0 ||
      buf_append(t, p4, sizeof p4 - 1) < 0 || buf_append(t, now, strlen(now)) < 0 ||
      buf_append(t, p5, sizeof p5 - 1) < 0 || buf_append(t, now, strlen(now)) < 0 ||
      buf_append(t, p6, sizeof p6 - 1) < 0)
    return;
  check_same(t, receipt_push(id, now, s));
  if (queue_text(c, &c->receipts, now_ms() + SIM_RECEIPT_DELAY_MS) < 0)
    return;
  schedule_more(c);
}

void ws_queue_receipt(struct sim *sim, const struct sim_sent *s) {
  /* Only one live connection is expected; the newest one gets it. */
  for (struct sim_conn *c = sim->conns; c; c = c->next) {
    if (!c->silent) {
      queue_receipt(c, s);
      return;
    }
  }
}

static void on_create(struct sim_conn *c, const struct envelope *env) {
  struct sim *sim = c->sim;
  struct sim_sent s;
  char why[160];
  if (sent_parse(env->params, "ws", &s, why, sizeof why) < 0) {
    sim->st.create_errors++;
    log_info("connection %llu: CREATE_MESSAGE refused: %s", (unsigned long long)c->serial,
             why);
    reply_error(c, env->id, env->action, 10002, "invalid field", why);
    return;
  }
  int code = faults_take_create_error(sim);
  if (code) {
    free(s.data);
    sim->st.create_errors++;
    reply_error(c, env->id, env->action, code, faults_error_description(code), NULL);
    return;
  }
  int dup;
  size_t idx = sent_add(sim, &s, &dup);
  if (idx == SIM_MSG_INDEX_NONE) {
    reply_error(c, env->id, env->action, 500, "Internal Server Error.", "out of memory");
    return;
  }
  /* The answer as text (one for every message): {"id","action","data":view}. */
  struct buf *t = &sim->text;
  buf_reset(t);
  if (buf_append(t, "{\"id\":", 6) < 0 || envelope_append_string(t, env->id) < 0 ||
      buf_append(t, ",\"action\":", 10) < 0 ||
      envelope_append_string(t, env->action) < 0 || buf_append(t, ",\"data\":", 8) < 0 ||
      sent_reply_text(sim, &sim->sent[idx], t) < 0 || buf_append(t, "}", 1) < 0)
    return;
#ifndef NDEBUG
  json_t *tree = json_pack("{s:s,s:s,s:o}", "id", env->id, "action", env->action, "data",
                           sent_reply_view(sim, &sim->sent[idx]));
#else
  json_t *tree = NULL;
#endif
  check_same(t, tree);
  if (queue_text(c, &c->replies, 0) < 0)
    return;
  if (!dup)
    queue_receipt(c, &sim->sent[idx]);
}

static void handle_message(struct sim_conn *c) {
  struct sim *sim = c->sim;
  char err[200];
  if (!c->rx_binary) {
    sim->st.bad_frames++;
    log_info("connection %llu: text frame ignored (Blaze frames are binary gzip)",
             (unsigned long long)c->serial);
    return;
  }
  buf_reset(&sim->inflated);
  int rc = codec_inflate(sim->codec, c->rx.data, c->rx.len, &sim->inflated);
  if (rc != CODEC_OK) {
    sim->st.bad_frames++;
    log_info("connection %llu: bad frame of %zu bytes: %s", (unsigned long long)c->serial,
             c->rx.len, codec_strerror(rc));
    return;
  }
  struct envelope env;
  if (envelope_parse(sim->inflated.data, sim->inflated.len, &env, err, sizeof err) < 0) {
    sim->st.bad_frames++;
    log_info("connection %llu: bad frame: %s", (unsigned long long)c->serial, err);
    return;
  }
  log_debug("connection %llu: <- %s %s", (unsigned long long)c->serial, env.action,
            env.id);
  if (!strcmp(env.action, "LIST_PENDING_MESSAGES"))
    on_list_pending(c, &env);
  else if (!strcmp(env.action, "ACKNOWLEDGE_MESSAGE_RECEIPTS"))
    on_ack_batch(c, &env);
  else if (!strcmp(env.action, "ACKNOWLEDGE_MESSAGE_RECEIPT"))
    on_ack_one(c, &env);
  else if (!strcmp(env.action, "CREATE_MESSAGE"))
    on_create(c, &env);
  else
    reply_error(c, env.id, env.action, 400, "unknown action", NULL);
  envelope_fini(&env);
  /* Large inflated frames must not pin their memory for the whole run. */
  if (sim->inflated.cap > RX_KEEP_CAP)
    buf_fini(&sim->inflated);
}

static int on_receive(struct sim_conn *c, const void *in, size_t len) {
  struct sim *sim = c->sim;
  if (c->silent)
    return 0;
  if (!c->rx_in_message) {
    c->rx_in_message = 1;
    c->rx_discard = 0;
    c->rx_binary = lws_frame_is_binary(c->wsi);
    buf_reset(&c->rx);
  }
  if (!c->rx_discard) {
    if (c->rx.len + len > SIM_MAX_FRAME) {
      c->rx_discard = 1;
      buf_fini(&c->rx);
    } else if (buf_append(&c->rx, in, len) < 0) {
      log_error("connection %llu: out of memory", (unsigned long long)c->serial);
      return -1;
    }
  }
  if (!lws_is_final_fragment(c->wsi) || lws_remaining_packet_payload(c->wsi))
    return 0;
  c->rx_in_message = 0;
  if (c->rx_discard) {
    sim->st.bad_frames++;
    log_info("connection %llu: frame larger than %d bytes dropped",
             (unsigned long long)c->serial, SIM_MAX_FRAME);
  } else {
    handle_message(c);
  }
  if (c->rx.cap > RX_KEEP_CAP)
    buf_fini(&c->rx);
  else
    buf_reset(&c->rx);
  if (!c->flow_off && c->replies.count + c->receipts.count >= QUEUE_HIGH) {
    c->flow_off = 1;
    lws_rx_flow_control(c->wsi, 0);
    log_debug("connection %llu: %zu frames queued; reading paused",
              (unsigned long long)c->serial, c->replies.count + c->receipts.count);
  }
  schedule_more(c);
  return 0;
}

/* ---- faults ---- */

/* A gzip member that inflates to 64 MiB of zeros, streamed from a small
 * zero buffer (deflate reaches about 1000:1 on zeros: ~64 KiB). */
static int build_bomb(struct buf *out) {
  static const unsigned char zeros[64 * 1024];
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY) != Z_OK)
    return -1;
  buf_reset(out);
  int rc = -1;
  if (buf_resize(out, LWS_PRE) < 0)
    goto done;
  size_t fed = 0;
  int zr = Z_OK;
  while (zr != Z_STREAM_END) {
    if (z.avail_in == 0 && fed < BOMB_SIZE) {
      z.next_in = (Bytef *)zeros;
      z.avail_in = sizeof zeros;
      fed += sizeof zeros;
    }
    if (buf_reserve(out, 16384) < 0)
      goto done;
    z.next_out = (Bytef *)out->data + out->len;
    z.avail_out = (uInt)(out->cap - out->len - 1);
    uInt before = z.avail_out;
    zr = deflate(&z, fed >= BOMB_SIZE ? Z_FINISH : Z_NO_FLUSH);
    if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
      goto done;
    out->len += before - z.avail_out;
  }
  rc = 0;
done:
  deflateEnd(&z);
  return rc;
}

static json_t *missing_view(struct sim *sim) {
  const struct sim_user *u = &sim->users[store_next_user(sim)];
  char id[UUID_STR_LEN], now[SIM_TIME_LEN];
  if (uuid_v4(id) < 0)
    return NULL;
  sim_timestamp(now);
  /* A MessageView without message_id and category. */
  json_t *data =
      json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "type", "message",
                "conversation_id", u->conversation_id, "user_id", u->id, "session_id",
                u->session_id, "data", "aGVsbG8=", "data_base64", "aGVsbG8", "status",
                "SENT", "source", "CREATE_MESSAGE", "created_at", now, "updated_at", now);
  return json_pack("{s:s,s:s,s:o}", "id", id, "action", "CREATE_MESSAGE", "data", data);
}

static void note_push(struct sim_conn *c, struct sim_msg *m) {
  m->push_count++;
  c->sim->st.pushed++;
  c->pushes++;
  faults_note_push(c->sim);
}

/* Fires fault f on this connection. Returns -1 to drop the connection. */
static int fire_fault(struct sim_conn *c, const struct sim_fault *f) {
  struct sim *sim = c->sim;
  char id[UUID_STR_LEN];
  faults_fired(sim, f->spec);
  switch (f->kind) {
  case FAULT_DROP:
    /* Returning -1 closes without a close frame (LWS_CLOSE_STATUS_NOSTATUS). */
    log_info("connection %llu: dropped (fault)", (unsigned long long)c->serial);
    return -1;
  case FAULT_SILENT:
    log_info("connection %llu: now silent (fault): no reads, no writes, no pongs",
             (unsigned long long)c->serial);
    c->silent = 1;
    lws_rx_flow_control(c->wsi, 0);
    return 0;
  case FAULT_ERROR401:
    if (uuid_v4(id) < 0)
      return 0;
    return write_json(c, json_pack("{s:s,s:s,s:o}", "id", id, "action", "ERROR", "error",
                                   error_object(401, "Unauthorized", NULL)));
  case FAULT_GARBAGE: {
    unsigned char junk[200];
    if (RAND_bytes(junk, sizeof junk) != 1)
      memset(junk, 0xa5, sizeof junk);
    junk[0] = 0x00; /* never the gzip magic */
    buf_reset(&sim->scratch);
    if (buf_resize(&sim->scratch, LWS_PRE) < 0 ||
        buf_append(&sim->scratch, junk, sizeof junk) < 0)
      return 0;
    return write_scratch(c, LWS_WRITE_BINARY);
  }
  case FAULT_TEXT:
    buf_reset(&sim->scratch);
    if (buf_resize(&sim->scratch, LWS_PRE) < 0 ||
        buf_append(&sim->scratch, "hello", 5) < 0)
      return 0;
    return write_scratch(c, LWS_WRITE_TEXT);
  case FAULT_BADJSON: {
    static const char bad[] = "{\"id\": not json";
    buf_reset(&sim->scratch);
    if (buf_resize(&sim->scratch, LWS_PRE) < 0 ||
        codec_deflate(sim->codec, bad, sizeof bad - 1, &sim->scratch) != CODEC_OK)
      return 0;
    return write_scratch(c, LWS_WRITE_BINARY);
  }
  case FAULT_BOMB:
    if (build_bomb(&sim->scratch) < 0) {
      log_error("cannot build the gzip bomb");
      return 0;
    }
    log_info("connection %llu: gzip bomb of %zu bytes (inflates to %u)",
             (unsigned long long)c->serial, sim->scratch.len - LWS_PRE, BOMB_SIZE);
    return write_scratch(c, LWS_WRITE_BINARY);
  case FAULT_BADBASE64: {
    static const char poison[] = "!!not base64!!";
    size_t i = store_add(sim, store_next_user(sim), "PLAIN_TEXT", NULL, poison,
                         sizeof poison - 1, 1);
    if (i == SIM_MSG_INDEX_NONE || uuid_v4(id) < 0)
      return 0;
    struct sim_msg *m = &sim->msgs[i];
    m->skip_conn = c->serial; /* this connection's cursor must not repeat it */
    log_info("connection %llu: poison message %s (bad base64)",
             (unsigned long long)c->serial, m->message_id);
    note_push(c, m);
    return write_json(c, json_pack("{s:s,s:s,s:o}", "id", id, "action", "CREATE_MESSAGE",
                                   "data", store_msg_view(sim, m, "CREATE_MESSAGE")));
  }
  case FAULT_MISSING:
    return write_json(c, missing_view(sim));
  default:
    return 0;
  }
}

/* ---- writing ---- */

/* The push of m as gzip in sim->scratch (LWS_PRE headroom first), under a
 * fresh frame id. Returns 0/-1. */
static int push_frame(struct sim *sim, const struct sim_msg *m, const char *source) {
  char id[UUID_STR_LEN];
  uuid_series_next(&sim->ids, id);
  /* Written as text, not a jansson tree: pushes are most of the frames. */
  struct buf *t = &sim->text;
  buf_reset(t);
  static const char a[] = "{\"id\":\"",
                    b[] = "\",\"action\":\"CREATE_MESSAGE\",\"data\":";
  if (buf_append(t, a, sizeof a - 1) < 0 || buf_append(t, id, strlen(id)) < 0 ||
      buf_append(t, b, sizeof b - 1) < 0 || store_msg_text(sim, m, source, t) < 0 ||
      buf_append(t, "}", 1) < 0)
    return -1;
#ifndef NDEBUG
  json_t *tree = json_pack("{s:s,s:s,s:o}", "id", id, "action", "CREATE_MESSAGE", "data",
                           store_msg_view(sim, m, source));
#else
  json_t *tree = NULL;
#endif
  check_same(t, tree);
  buf_reset(&sim->scratch);
  int rc = buf_resize(&sim->scratch, LWS_PRE) < 0 ||
                   codec_deflate(sim->codec, t->data, t->len, &sim->scratch) != CODEC_OK
               ? -1
               : 0;
  if (t->cap > RX_KEEP_CAP)
    buf_fini(t);
  return rc;
}

int ws_prebuild_push(struct sim *sim, struct sim_msg *m) {
  if (push_frame(sim, m, "LIST_PENDING_MESSAGES") < 0)
    return -1;
  m->push = malloc(sim->scratch.len);
  if (!m->push)
    return -1;
  memcpy(m->push, sim->scratch.data, sim->scratch.len);
  m->push_len = (uint32_t)(sim->scratch.len - LWS_PRE);
  return 0;
}

/* Pushes the next unacked stored message, if any; *wrote tells whether one
 * was written. Returns 0/-1. */
static int push_next(struct sim_conn *c, int *wrote) {
  struct sim *sim = c->sim;
  for (int budget = CURSOR_SKIP_BUDGET; budget > 0 && c->cursor < sim->nmsgs; budget--) {
    struct sim_msg *m = &sim->msgs[c->cursor];
    int listed = c->cursor < c->list_mark;
    if (!m->acked && m->visible_us > now_us())
      return 0; /* a paced push: schedule_more wakes us when it is due */
    c->cursor++;
    if (m->acked || m->skip_conn == c->serial)
      continue;
    if (!m->first_push_us)
      m->first_push_us = now_us();
    *wrote = 1;
    if (m->push && listed && !m->push_count) {
      /* Prebuilt: only its first push; a redelivery gets a fresh frame id. */
      note_push(c, m);
      int n = lws_write(c->wsi, m->push + LWS_PRE, m->push_len, LWS_WRITE_BINARY);
      int short_write = n < (int)m->push_len;
      free(m->push);
      m->push = NULL;
      if (short_write)
        log_info("connection %llu: write failed", (unsigned long long)c->serial);
      return short_write ? -1 : 0;
    }
    free(m->push);
    m->push = NULL;
    if (push_frame(sim, m, listed ? "LIST_PENDING_MESSAGES" : "CREATE_MESSAGE") < 0)
      return -1;
    note_push(c, m);
    return write_scratch(c, LWS_WRITE_BINARY);
  }
  return 0;
}

static int fault_for(const struct sim_conn *c) {
  return c->silent ? -1 : faults_due(c->sim);
}

/* The next stored message is a paced one not due yet: when, in ms from
 * now (at least 1), else 0. */
static int64_t paced_wait_ms(const struct sim_conn *c) {
  if (!c->listing || c->cursor >= c->sim->nmsgs)
    return 0;
  const struct sim_msg *m = &c->sim->msgs[c->cursor];
  int64_t wait_us = m->acked ? 0 : m->visible_us - now_us();
  return wait_us > 0 ? (wait_us + 999) / 1000 : 0;
}

static int has_work(const struct sim_conn *c, int64_t now) {
  return c->want_ping || c->replies.head || fault_for(c) >= 0 ||
         (c->receipts.head && c->receipts.head->due_ms <= now) ||
         (c->listing && c->cursor < c->sim->nmsgs && !paced_wait_ms(c));
}

static void on_wake(lws_sorted_usec_list_t *sul) {
  struct sim_conn *c = lws_container_of(sul, struct sim_conn, wake_sul);
  lws_callback_on_writable(c->wsi);
}

static void schedule_more(struct sim_conn *c) {
  if (c->silent)
    return;
  int64_t now = now_ms();
  int64_t paced = paced_wait_ms(c);
  if (has_work(c, now)) {
    lws_callback_on_writable(c->wsi);
  } else if (c->receipts.head || paced) {
    int64_t wait = c->receipts.head ? c->receipts.head->due_ms - now : paced;
    if (paced && paced < wait)
      wait = paced;
    lws_sul_schedule(c->sim->ctx, 0, &c->wake_sul, on_wake,
                     (wait > 0 ? wait : 0) * LWS_US_PER_MS);
  }
  if (c->flow_off && c->replies.count + c->receipts.count <= QUEUE_LOW) {
    c->flow_off = 0;
    lws_rx_flow_control(c->wsi, 1);
    log_debug("connection %llu: reading resumed", (unsigned long long)c->serial);
  }
}

/* Writes the next frame due, if any (*wrote says). Returns 0/-1. */
static int write_next(struct sim_conn *c, int *wrote) {
  struct sim *sim = c->sim;
  *wrote = 1;
  if (c->want_ping) {
    /* The payload is the ping's number, so pongs can be matched in logs. */
    unsigned char b[LWS_PRE + 24];
    int n = snprintf((char *)b + LWS_PRE, 24, "%llu", (unsigned long long)++c->pings);
    c->want_ping = 0;
    log_debug("connection %llu: ping %llu", (unsigned long long)c->serial,
              (unsigned long long)c->pings);
    return lws_write(c->wsi, b + LWS_PRE, (size_t)n, LWS_WRITE_PING) < 0 ? -1 : 0;
  }
  if (c->replies.head)
    return write_frame(c, frameq_pop(&c->replies));
  if (fault_for(c) >= 0) {
    struct sim_fault f = faults_take(sim, fault_for(c));
    *wrote = 0; /* a fault ends this round of writes */
    return fire_fault(c, &f);
  }
  if (c->receipts.head && c->receipts.head->due_ms <= now_ms()) {
    sim->st.receipts_pushed++;
    return write_frame(c, frameq_pop(&c->receipts));
  }
  *wrote = 0;
  return c->listing ? push_next(c, wrote) : 0;
}

/* Frames are written while the socket takes them (up to WRITE_ROUND a
 * callback), not one per pass of the event loop: fewer polls here, and
 * fewer, fuller reads on the bot's side. */
#define WRITE_ROUND 32

static int on_writeable(struct sim_conn *c) {
  if (c->silent)
    return 0;
  for (int i = 0; i < WRITE_ROUND; i++) {
    if (i && lws_send_pipe_choked(c->wsi))
      break;
    int wrote = 0;
    if (write_next(c, &wrote) < 0)
      return -1;
    if (!wrote || c->silent)
      break;
  }
  if (c->silent)
    return 0;
  schedule_more(c);
  return 0;
}

static void on_ping_timer(lws_sorted_usec_list_t *sul) {
  struct sim_conn *c = lws_container_of(sul, struct sim_conn, ping_sul);
  if (c->silent)
    return;
  c->want_ping = 1;
  lws_callback_on_writable(c->wsi);
  lws_sul_schedule(c->sim->ctx, 0, &c->ping_sul, on_ping_timer,
                   c->sim->cfg.ping_interval_s * LWS_US_PER_SEC);
}

/* ---- lifecycle ---- */

static void conn_open(struct sim *sim, struct sim_conn *c, struct lws *wsi) {
  c->sim = sim;
  c->wsi = wsi;
  c->serial = ++sim->next_serial;
  c->next = sim->conns;
  if (sim->conns)
    sim->conns->prev = c;
  sim->conns = c;
  c->linked = 1;
  sim->nconns++;
  sim->st.connections++;
  char peer[64] = "";
  lws_get_peer_simple(wsi, peer, sizeof peer);
  log_info("connection %llu established from %s (%zu live)",
           (unsigned long long)c->serial, peer, sim->nconns);
  if (sim->cfg.ping_interval_s > 0)
    lws_sul_schedule(sim->ctx, 0, &c->ping_sul, on_ping_timer,
                     sim->cfg.ping_interval_s * LWS_US_PER_SEC);
  schedule_more(c);
}

static void conn_close(struct sim_conn *c) {
  struct sim *sim = c->sim;
  if (!c->linked)
    return;
  lws_sul_cancel(&c->wake_sul);
  lws_sul_cancel(&c->ping_sul);
  frameq_clear(&c->replies);
  frameq_clear(&c->receipts);
  buf_fini(&c->rx);
  if (c->prev)
    c->prev->next = c->next;
  else
    sim->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  c->linked = 0;
  sim->nconns--;
  log_info("connection %llu closed after %llu pushes (%zu live)",
           (unsigned long long)c->serial, (unsigned long long)c->pushes, sim->nconns);
}

int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                size_t len) {
  struct sim_conn *c = user;
  struct sim *sim = lws_context_user(lws_get_context(wsi));
  switch (reason) {
  case LWS_CALLBACK_ADD_HEADERS: {
    /* What the iOS client reads to detect clock skew (protocol.md §1.2). */
    struct lws_process_html_args *args = in;
    struct timespec ts;
    char t[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    int n =
        snprintf(t, sizeof t, "%lld", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    unsigned char *p = (unsigned char *)args->p;
    if (lws_add_http_header_by_name(
            wsi, (const unsigned char *)"x-server-time:", (const unsigned char *)t, n, &p,
            p + args->max_len) == 0)
      args->p = (char *)p;
    return 0;
  }
  case LWS_CALLBACK_ESTABLISHED:
    conn_open(sim, c, wsi);
    return 0;
  case LWS_CALLBACK_RECEIVE:
    return c && c->linked ? on_receive(c, in, len) : 0;
  case LWS_CALLBACK_SERVER_WRITEABLE:
    return c && c->linked ? on_writeable(c) : 0;
  case LWS_CALLBACK_RECEIVE_PONG:
    if (c && c->linked)
      log_debug("connection %llu: pong %.*s", (unsigned long long)c->serial,
                (int)(len > 20 ? 20 : len), in ? (const char *)in : "");
    return 0;
  case LWS_CALLBACK_CLOSED:
    if (c)
      conn_close(c);
    return 0;
  default:
    return 0;
  }
}

void ws_wake_all(struct sim *sim) {
  for (struct sim_conn *c = sim->conns; c; c = c->next) {
    if (!c->silent)
      lws_callback_on_writable(c->wsi);
  }
}

int ws_replies_flushed(const struct sim *sim) {
  for (const struct sim_conn *c = sim->conns; c; c = c->next) {
    if (!c->silent && c->replies.head)
      return 0;
  }
  return 1;
}

void ws_reap_silent(struct sim *sim) {
  for (struct sim_conn *c = sim->conns; c; c = c->next) {
    if (!c->silent || c->reaping)
      continue;
    /* The socket is not read any more, so lws cannot see the peer leave;
     * POLLRDHUP still reports the FIN (or RST) without reading. */
    struct pollfd p = {.fd = (int)lws_get_socket_fd(c->wsi), .events = POLLRDHUP};
    if (p.fd >= 0 && poll(&p, 1, 0) == 1 &&
        (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
      log_info("connection %llu: peer left the silent link; closing",
               (unsigned long long)c->serial);
      c->reaping = 1;
      lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
  }
}
