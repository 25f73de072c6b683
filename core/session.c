/* SPDX-License-Identifier: MIT */
/*
 * session: see session.h. One struct session lives for the whole run; each
 * connection attempt gets a new wsi and a new token. State changes happen
 * only in lws callbacks and session_tick, both on the I/O thread. Outgoing
 * frames sit in a FIFO of pre-gzipped buffers (with LWS_PRE headroom) and are
 * written while the socket takes them; buffers are recycled through a small
 * free list so steady traffic does not allocate.
 */
#include "session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "buf.h"
#include "codec.h"
#include "log.h"
#include "url.h"
#include "util.h"

enum state {
  ST_IDLE,       /* waiting for the next attempt */
  ST_CONNECTING, /* handshake in progress */
  ST_LISTING,    /* open, LIST_PENDING_MESSAGES sent */
  ST_OPEN,       /* open and listed */
  ST_STOPPED,    /* stopped by the daemon or fatal */
};

struct frame {
  struct frame *next;
  struct buf b; /* LWS_PRE bytes of headroom, then the payload */
  int ping;
};

#define FRAME_POOL_MAX 64

struct session {
  struct lws_context *ctx;
  const struct config *cfg;
  const struct keystore *ks;
  struct session_callbacks cb;
  void *ud;

  int state;
  struct lws *wsi;
  char *token;            /* only during the handshake; wiped after */
  struct uuid_series ids; /* request ids */
  struct url dial;        /* the blaze_url of the current attempt (lws points into it) */
  int64_t next_attempt;
  int attempt;     /* consecutive failed attempts, for backoff */
  int auth_401;    /* consecutive 401s */
  int64_t last_rx; /* monotonic ms of the last byte or pong received */
  int64_t last_ping;
  int ping_due;
  int rx_paused;     /* the daemon asked to hold the socket (back pressure) */
  int rx_off;        /* reading is actually switched off (held and open) */
  int reconnect_now; /* close the current link and connect again */
  int drop_cause;    /* why we are closing the link (SESSION_CAUSE_*), or -1 */
  int consecutive_timeouts;
  char list_id[UUID_STR_LEN];

  struct codec *codec;
  struct buf rx; /* compressed frame being reassembled */
  struct buf inflated;
  int rx_skip; /* the current message is over the cap: drop its fragments */
  int rx_binary;

  struct frame *txq_head, *txq_tail;
  size_t txq_len;
  struct frame *frame_pool;
  size_t frame_pool_len;

  struct pending_table pending; /* requests awaiting their answers */

  struct buf json; /* scratch for request JSON */
  struct session_stats st;
};

/* ---- frames ---------------------------------------------------------- */

static struct frame *frame_get(struct session *s) {
  struct frame *f = s->frame_pool;
  if (f) {
    s->frame_pool = f->next;
    s->frame_pool_len--;
  } else {
    f = calloc(1, sizeof *f);
    if (!f)
      return NULL;
  }
  f->next = NULL;
  f->ping = 0;
  buf_reset(&f->b);
  if (buf_resize(&f->b, LWS_PRE) < 0) {
    buf_fini(&f->b);
    free(f);
    return NULL;
  }
  return f;
}

static void frame_put(struct session *s, struct frame *f) {
  /* Large buffers are not kept: one big frame must not pin memory forever. */
  if (s->frame_pool_len >= FRAME_POOL_MAX || f->b.cap > 64 * 1024) {
    buf_fini(&f->b);
    free(f);
    return;
  }
  f->next = s->frame_pool;
  s->frame_pool = f;
  s->frame_pool_len++;
}

static void txq_push(struct session *s, struct frame *f, int front) {
  if (front) {
    f->next = s->txq_head;
    s->txq_head = f;
    if (!s->txq_tail)
      s->txq_tail = f;
  } else {
    f->next = NULL;
    if (s->txq_tail)
      s->txq_tail->next = f;
    else
      s->txq_head = f;
    s->txq_tail = f;
  }
  s->txq_len++;
}

static struct frame *txq_pop(struct session *s) {
  struct frame *f = s->txq_head;
  if (f) {
    s->txq_head = f->next;
    if (!s->txq_head)
      s->txq_tail = NULL;
    s->txq_len--;
  }
  return f;
}

static void txq_clear(struct session *s) {
  struct frame *f;
  while ((f = txq_pop(s)))
    frame_put(s, f);
}

/* ---- pending requests ------------------------------------------------ */

static void note_timeout(void *ctx, const char *id) {
  struct session *s = ctx;
  s->st.timeouts++;
  s->consecutive_timeouts++;
  log_warn("blaze: no reply to request %s within %d ms", id, s->cfg->request_timeout_ms);
}

static void pending_expire_due(struct session *s, int64_t now) {
  /* While reading is paused no reply can arrive: deadlines wait too. */
  if (s->rx_off)
    return;
  pending_expire(&s->pending, now, SESSION_ETIMEOUT, note_timeout, s);
}

/* Back pressure: while the daemon holds the socket it is not read at all,
 * at once: TCP flow control keeps what the server sends in its buffers and
 * ours, undecoded (waiting for the answers already awaited would mean
 * reading every push queued ahead of them). No new request is sent over it
 * (session_request answers SESSION_EHELD: acks and outgoing messages go
 * over REST meanwhile). Requests already sent stay pending with their
 * deadlines frozen, and get their answers when reading resumes; an owner
 * that cannot wait takes its requests back (session_cancel_requests). Silence
 * while reading is off is ours, so the idle clock restarts on resume. */
static void apply_rx_flow(struct session *s) {
  int off = s->rx_paused && s->state == ST_OPEN;
  if (off == s->rx_off)
    return;
  s->rx_off = off;
  lws_rx_flow_control(s->wsi, !off);
  int64_t now = now_ms();
  s->last_rx = now;
  if (!off)
    pending_refresh(&s->pending, now + s->cfg->request_timeout_ms);
}

void session_cancel_requests(struct session *s, session_reply_fn cb) {
  /* The entries stay, without an owner, until their answers arrive (or
   * their deadlines pass): an answer nobody waits for would otherwise look
   * like a push (an answer to CREATE_MESSAGE carries a message view). The
   * owners are told first, then forgotten, so their callbacks may queue or
   * cancel more. */
  pending_disown(&s->pending, cb, SESSION_EHELD);
}

/* ---- connection lifecycle -------------------------------------------- */

static void wipe_token(struct session *s) {
  if (s->token) {
    OPENSSL_cleanse(s->token, strlen(s->token));
    free(s->token);
    s->token = NULL;
  }
}

static int backoff_ms(struct session *s) {
  int64_t d = s->cfg->reconnect_min_ms;
  for (int i = 1; i < s->attempt && d < s->cfg->reconnect_max_ms; i++)
    d *= 2;
  if (d > s->cfg->reconnect_max_ms)
    d = s->cfg->reconnect_max_ms;
  /* Jitter in [d/2, d] spreads the reconnects of many bots after an outage. */
  return (int)(d / 2 + rand_below((uint32_t)(d / 2 + 1)));
}

static void schedule_retry(struct session *s, int64_t now) {
  if (s->state == ST_STOPPED)
    return;
  s->attempt++;
  int d = backoff_ms(s);
  s->next_attempt = now + d;
  s->state = ST_IDLE;
  log_info("blaze: reconnecting in %d ms (attempt %d)", d, s->attempt);
}

const char *const session_cause_names[SESSION_CAUSE_COUNT] = {
    "connect_error", "auth_rejected", "list_failed",
    "dead_link",     "server_closed", "settings_changed"};

/* Closes the link (the close completes on the loop), noting why. */
static void drop_link(struct session *s, enum session_cause cause) {
  if (s->drop_cause < 0)
    s->drop_cause = (int)cause;
  lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_ACK, LWS_TO_KILL_ASYNC);
}

/* An attempt failed or a link went down: counted under the cause noted by
 * drop_link, else `otherwise`; nothing is counted once stopping. */
static void count_cause(struct session *s, enum session_cause otherwise) {
  int c = s->drop_cause >= 0 ? s->drop_cause : (int)otherwise;
  s->drop_cause = -1;
  if (s->state != ST_STOPPED)
    s->st.reconnects[c]++;
}

static void fatal(struct session *s, const char *why) {
  s->state = ST_STOPPED;
  if (s->wsi)
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_ACK, LWS_TO_KILL_ASYNC);
  if (s->cb.on_fatal)
    s->cb.on_fatal(s->ud, why);
}

static void on_auth_failure(struct session *s, const char *where) {
  s->auth_401++;
  if (s->auth_401 >= 2) {
    char why[512];
    snprintf(
        why, sizeof why,
        "Blaze refused the bot's credentials (401, %s) twice in a row. Likely causes: "
        "the session in the keystore was revoked or reset in the developer dashboard, "
        "the "
        "keystore belongs to another app, or this machine's clock is off by more than 5 "
        "minutes (check NTP). Not reconnecting.",
        where);
    fatal(s, why);
    return;
  }
  log_warn("blaze: authentication refused (401, %s); retrying once with a fresh token",
           where);
}

static void connect_now(struct session *s) {
  struct url u;
  char why[200];
  if (url_parse(s->cfg->blaze_url, &u, why, sizeof why) < 0) {
    char msg[300];
    snprintf(msg, sizeof msg, "blaze_url cannot be parsed: %s", why);
    fatal(s, msg);
    return;
  }
  if (!u.tls && !url_is_loopback(&u))
    log_warn("blaze: connecting to %s without TLS (allow_insecure_transport = true): "
             "tokens and messages cross the network in the clear",
             u.host_header);

  /* The token signs exactly the request-target that goes on the request
   * line: the server recomputes sig over the URI it received. */
  wipe_token(s);
  if (auth_sign(s->ks, "GET", u.target, "", 0, 600, NULL, &s->token) < 0) {
    log_error("blaze: cannot sign a token");
    s->st.connect_errors++;
    count_cause(s, SESSION_CAUSE_CONNECT_ERROR);
    schedule_retry(s, now_ms());
    return;
  }

  /* lws keeps pointers to these until the handshake is sent. */
  s->dial = u;
  struct lws_client_connect_info ci;
  memset(&ci, 0, sizeof ci);
  ci.context = s->ctx;
  ci.address = s->dial.host;
  ci.port = s->dial.port;
  ci.path = s->dial.target;
  /* lws sends ci.host as the Host header verbatim and strips a ":port"
   * from it for TLS SNI and certificate checks. */
  ci.host = s->dial.host_header;
  ci.origin = s->dial.host_header;
  ci.protocol = "Mixin-Blaze-1";
  ci.local_protocol_name = session_protocol.name;
  ci.ssl_connection = s->dial.tls ? LCCSCF_USE_SSL : 0;
  ci.alpn = "http/1.1";
  ci.opaque_user_data = s;
  ci.pwsi = &s->wsi;

  s->state = ST_CONNECTING;
  s->next_attempt = now_ms() + s->cfg->connect_timeout_ms;
  log_info("blaze: connecting to %s", s->cfg->blaze_url);
  if (!lws_client_connect_via_info(&ci)) {
    /* The failure was reported through CLIENT_CONNECTION_ERROR already when
     * a wsi existed; otherwise count and back off here. */
    if (s->state == ST_CONNECTING) {
      s->wsi = NULL;
      s->st.connect_errors++;
      count_cause(s, SESSION_CAUSE_CONNECT_ERROR);
      wipe_token(s);
      schedule_retry(s, now_ms());
    }
  }
}

static void link_down(struct session *s, const char *why) {
  int was_open = s->state == ST_OPEN || s->state == ST_LISTING;
  count_cause(s, was_open ? SESSION_CAUSE_SERVER_CLOSED : SESSION_CAUSE_CONNECT_ERROR);
  s->wsi = NULL;
  wipe_token(s);
  txq_clear(s);
  buf_reset(&s->rx);
  s->rx_skip = 0;
  s->ping_due = 0;
  if (was_open)
    log_warn("blaze: connection closed (%s)", why);
  pending_fail_all(&s->pending, SESSION_EDISCONNECTED);
  txq_clear(s); /* nothing queued for this link goes out on the next */
  if (s->state != ST_STOPPED)
    schedule_retry(s, now_ms());
  if (s->reconnect_now && s->state == ST_IDLE) {
    s->reconnect_now = 0;
    s->attempt = 0;
    s->next_attempt = now_ms();
  }
  if (was_open && s->cb.on_close)
    s->cb.on_close(s->ud);
}

/* ---- sending ----------------------------------------------------------- */

static int queue_json(struct session *s, const char *json, size_t len) {
  struct frame *f = frame_get(s);
  if (!f)
    return SESSION_ENOMEM;
  int rc = codec_deflate(s->codec, json, len, &f->b);
  if (rc != CODEC_OK) {
    frame_put(s, f);
    return SESSION_ENOMEM;
  }
  txq_push(s, f, 0);
  if (s->wsi)
    lws_callback_on_writable(s->wsi);
  return 0;
}

/* params: a tree, or (text non-NULL) JSON text of len bytes. */
static int send_request(struct session *s, const char *action, json_t *params,
                        const char *text, size_t len, const char *id, session_reply_fn cb,
                        void *ud) {
  char fresh[UUID_STR_LEN];
  if (!id) {
    uuid_series_next(&s->ids, fresh);
    id = fresh;
  }
  struct pending *p = pending_new(&s->pending, id);
  if (!p)
    return SESSION_ENOMEM;
  buf_reset(&s->json);
  int built = text ? envelope_request_text(&s->json, id, action, text, len)
                   : envelope_request(&s->json, id, action, params);
  int rc = built < 0 ? SESSION_ENOMEM : queue_json(s, s->json.data, s->json.len);
  if (rc < 0) {
    pending_release(&s->pending, p);
    return rc;
  }
  pending_add(&s->pending, p, now_ms() + s->cfg->request_timeout_ms, cb, ud);
  return 0;
}

int session_request(struct session *s, const char *action, json_t *params, const char *id,
                    session_reply_fn cb, void *ud) {
  /* !wsi: the link is going down (its requests are being failed, and their
   * owners may try again at once): a frame queued now would go out on the
   * next link, where its answer would match nothing. */
  if (s->state != ST_OPEN || !s->wsi)
    return SESSION_ENOTOPEN;
  if (s->rx_paused)
    return SESSION_EHELD;
  return send_request(s, action, params, NULL, 0, id, cb, ud);
}

int session_request_text(struct session *s, const char *action, const char *params,
                         size_t len, const char *id, session_reply_fn cb, void *ud) {
  if (s->state != ST_OPEN || !s->wsi)
    return SESSION_ENOTOPEN;
  if (s->rx_paused)
    return SESSION_EHELD;
  return send_request(s, action, NULL, params ? params : "null", params ? len : 4, id, cb,
                      ud);
}

static void on_list_reply(void *ud, const struct envelope *env, int err) {
  struct session *s = ud;
  if (err < 0 || !env) {
    /* A link that cannot even list is not useful: drop it and retry. */
    if (err == SESSION_ETIMEOUT && s->wsi) {
      log_warn("blaze: LIST_PENDING_MESSAGES got no reply; reconnecting");
      drop_link(s, SESSION_CAUSE_LIST_FAILED);
    }
    return;
  }
  if (env->has_error) {
    log_error("blaze: LIST_PENDING_MESSAGES failed: code %d %s", env->error_code,
              env->error_description);
    if (env->error_code == 401) {
      on_auth_failure(s, "LIST_PENDING_MESSAGES");
      if (s->state != ST_STOPPED && s->wsi)
        drop_link(s, SESSION_CAUSE_AUTH_REJECTED);
    } else if (s->wsi) {
      drop_link(s, SESSION_CAUSE_LIST_FAILED);
    }
    return;
  }
  if (s->state != ST_LISTING)
    return;
  s->state = ST_OPEN;
  s->attempt = 0;
  s->auth_401 = 0;
  log_info("blaze: connected; pending messages requested");
  if (s->wsi)
    apply_rx_flow(s); /* still held from before the reconnect: stop reading */
  if (s->cb.on_open)
    s->cb.on_open(s->ud);
}

/* ---- receiving --------------------------------------------------------- */

static void handle_frame(struct session *s, const char *data, size_t len) {
  s->st.frames_in++;
  if (!s->rx_binary) {
    /* Blaze sends binary frames only; a text frame is logged and skipped
     * rather than guessed at. */
    s->st.bad_frames++;
    log_warn("blaze: skipped a text frame of %zu bytes (Blaze frames are binary gzip)",
             len);
    return;
  }
  buf_reset(&s->inflated);
  int rc = codec_inflate(s->codec, data, len, &s->inflated);
  if (rc != CODEC_OK) {
    if (rc == CODEC_ETOOBIG)
      s->st.too_big++;
    else
      s->st.bad_frames++;
    log_warn("blaze: skipped a frame of %zu bytes: %s (limit %zu bytes inflated)", len,
             codec_strerror(rc), s->cfg->max_frame_bytes);
    /* A big buffer is released so one bomb does not pin memory. */
    if (s->inflated.cap > 1024 * 1024)
      buf_fini(&s->inflated);
    return;
  }
  struct envelope env;
  char err[256];
  if (envelope_scan(s->inflated.data, s->inflated.len, &env, err, sizeof err) < 0) {
    s->st.bad_frames++;
    log_warn("blaze: skipped a frame: %s", err);
    return;
  }
  if (env.id[0] && pending_answer(&s->pending, env.id, &env)) {
    s->consecutive_timeouts = 0;
    envelope_fini(&env);
    return;
  }
  if (strcmp(env.action, "ERROR") == 0 || (env.has_error && env.error_code == 401)) {
    s->st.error_frames++;
    log_warn("blaze: server error frame: code %d status %d %s", env.error_code,
             env.error_status, env.error_description);
    if (env.error_code == 401) {
      on_auth_failure(s, "ERROR frame");
      if (s->state != ST_STOPPED && s->wsi)
        drop_link(s, SESSION_CAUSE_AUTH_REJECTED);
    }
  } else if (strcmp(env.action, "CREATE_MESSAGE") == 0 && env.data_raw) {
    if (strcmp(env.data_source, "ACKNOWLEDGE_MESSAGE_RECEIPT") == 0) {
      s->st.receipts++;
    } else if (s->cb.on_push) {
      s->cb.on_push(s->ud, &env);
    }
  } else if (strcmp(env.action, "ACKNOWLEDGE_MESSAGE_RECEIPT") == 0) {
    /* Status updates of messages the bot sent. Never acknowledged. */
    s->st.receipts++;
  } else if (env.has_error) {
    s->st.error_frames++;
    log_warn("blaze: unmatched error reply to %s (id %s): code %d %s", env.action, env.id,
             env.error_code, env.error_description);
  } else {
    log_debug("blaze: ignored frame with action %s", env.action);
  }
  envelope_fini(&env);
}

static void on_receive(struct session *s, struct lws *wsi, const void *in, size_t len) {
  s->last_rx = now_ms();
  s->st.bytes_in += len;
  int first = s->rx.len == 0 && !s->rx_skip;
  if (first)
    s->rx_binary = lws_frame_is_binary(wsi);
  if (!s->rx_skip) {
    if (s->rx.len + len > s->cfg->max_frame_bytes) {
      s->rx_skip = 1;
      s->st.too_big++;
      log_warn("blaze: skipping a frame larger than max_frame_bytes (%zu)",
               s->cfg->max_frame_bytes);
      buf_fini(&s->rx);
    } else if (buf_append(&s->rx, in, len) < 0) {
      s->rx_skip = 1;
      buf_fini(&s->rx);
    }
  }
  if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
    if (!s->rx_skip)
      handle_frame(s, s->rx.data, s->rx.len);
    s->rx_skip = 0;
    buf_reset(&s->rx);
    if (s->rx.cap > 1024 * 1024)
      buf_fini(&s->rx);
  }
}

#define WRITE_ROUND 32 /* frames written in one WRITEABLE callback, at most */

static int on_writeable(struct session *s, struct lws *wsi) {
  if (s->ping_due) {
    /* lws 4.1 does not report empty pongs, so the ping carries a payload
     * (the send time), which the pong echoes. */
    unsigned char pb[LWS_PRE + 8];
    s->ping_due = 0;
    s->last_ping = now_ms();
    for (int i = 0; i < 8; i++)
      pb[LWS_PRE + i] = (unsigned char)(s->last_ping >> (8 * i));
    if (lws_write(wsi, pb + LWS_PRE, 8, LWS_WRITE_PING) < 0)
      return -1;
    if (s->txq_head)
      lws_callback_on_writable(wsi);
    return 0;
  }
  /* Frames go out while the socket takes them, not one per pass of the
   * event loop (lws_send_pipe_choked also says whether lws still holds part
   * of the last one). */
  for (int i = 0; i < WRITE_ROUND && s->txq_head; i++) {
    if (i && lws_send_pipe_choked(wsi))
      break;
    struct frame *f = txq_pop(s);
    size_t n = f->b.len - LWS_PRE;
    int w = lws_write(wsi, (unsigned char *)f->b.data + LWS_PRE, n, LWS_WRITE_BINARY);
    frame_put(s, f);
    if (w < (int)n) {
      log_warn("blaze: write failed; closing the link");
      return -1;
    }
    s->st.frames_out++;
    s->st.bytes_out += n;
  }
  if (s->txq_head)
    lws_callback_on_writable(wsi);
  return 0;
}

/* why is never NULL (the caller substitutes a text): testing it here made
 * gcc -O1 split a NULL path into the caller's log line (-Wformat-overflow). */
static int is_http_401(struct lws *wsi, const char *why) {
  if (wsi && lws_http_client_http_response(wsi) == 401)
    return 1;
  return strstr(why, "401") || strstr(why, "nauthorized");
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                    void *in, size_t len) {
  struct session *s = wsi ? lws_get_opaque_user_data(wsi) : NULL;
  switch (reason) {
  case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
    if (!s || !s->token)
      return -1;
    unsigned char **p = in, *end = *p + len;
    char hdr[4096];
    int n = snprintf(hdr, sizeof hdr, "Bearer %s", s->token);
    int rc = lws_add_http_header_by_name(
        wsi, (const unsigned char *)"authorization:", (unsigned char *)hdr, n, p, end);
    OPENSSL_cleanse(hdr, sizeof hdr);
    wipe_token(s);
    if (rc)
      return -1;
    static const char ua[] = "blazebot/" BLAZEBOT_VERSION;
    if (lws_add_http_header_by_name(
            wsi, (const unsigned char *)"user-agent:", (const unsigned char *)ua,
            (int)sizeof ua - 1, p, end))
      return -1;
    break;
  }
  case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
    if (!s || wsi != s->wsi)
      break;
    const char *why = in ? (const char *)in : "unknown error";
    s->st.connect_errors++;
    int auth = is_http_401(wsi, why);
    count_cause(s, auth ? SESSION_CAUSE_AUTH_REJECTED : SESSION_CAUSE_CONNECT_ERROR);
    log_warn("blaze: connection attempt failed: %s", why);
    s->wsi = NULL;
    wipe_token(s);
    if (auth)
      on_auth_failure(s, "handshake");
    else
      s->auth_401 = 0;
    if (s->state != ST_STOPPED) {
      schedule_retry(s, now_ms());
      if (auth && s->state == ST_IDLE)
        s->next_attempt = now_ms() + s->cfg->reconnect_min_ms;
    }
    break;
  }
  case LWS_CALLBACK_CLIENT_ESTABLISHED:
    if (!s)
      return -1;
    if (s->state == ST_STOPPED)
      return -1;
    s->st.connects++;
    s->state = ST_LISTING;
    s->last_rx = s->last_ping = now_ms();
    s->consecutive_timeouts = 0;
    wipe_token(s);
    s->rx_off = 0;
    if (send_request(s, "LIST_PENDING_MESSAGES", NULL, NULL, 0, NULL, on_list_reply, s) <
        0)
      return -1;
    break;
  case LWS_CALLBACK_CLIENT_RECEIVE:
    if (!s)
      return -1;
    on_receive(s, wsi, in, len);
    break;
  case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
    if (s)
      s->last_rx = now_ms();
    break;
  case LWS_CALLBACK_CLIENT_WRITEABLE:
    if (!s)
      return -1;
    if (s->state == ST_STOPPED && !s->txq_head)
      return -1;
    return on_writeable(s, wsi);
  case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
    if (s && len >= 2) {
      const unsigned char *c = in;
      log_info("blaze: server closed the connection (code %d)", c[0] << 8 | c[1]);
    }
    break;
  case LWS_CALLBACK_CLIENT_CLOSED:
    if (s && wsi == s->wsi)
      link_down(s, "closed");
    break;
  case LWS_CALLBACK_WSI_DESTROY:
    if (s && wsi == s->wsi) {
      /* Destroyed without CLOSED (e.g. during the handshake). */
      if (s->state == ST_CONNECTING) {
        s->wsi = NULL;
        wipe_token(s);
        s->st.connect_errors++;
        count_cause(s, SESSION_CAUSE_CONNECT_ERROR);
        schedule_retry(s, now_ms());
      } else {
        link_down(s, "destroyed");
      }
    }
    break;
  default:
    break;
  }
  (void)user;
  return 0;
}

const struct lws_protocols session_protocol = {
    .name = "blazebot-blaze",
    .callback = callback,
    .per_session_data_size = 0,
    .rx_buffer_size = 65536,
};

/* ---- public ------------------------------------------------------------ */

struct session *session_new(struct lws_context *ctx, const struct config *cfg,
                            const struct keystore *ks, const struct session_callbacks *cb,
                            void *ud) {
  struct session *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->ctx = ctx;
  s->cfg = cfg;
  s->ks = ks;
  s->drop_cause = -1;
  s->cb = *cb;
  s->ud = ud;
  s->state = ST_IDLE;
  s->next_attempt = INT64_MAX;
  if (uuid_series_init(&s->ids) < 0) {
    free(s);
    return NULL;
  }
  s->codec = codec_new(cfg->max_frame_bytes, 3);
  if (!s->codec) {
    free(s);
    return NULL;
  }
  return s;
}

void session_free(struct session *s) {
  if (!s)
    return;
  if (s->wsi)
    lws_set_opaque_user_data(s->wsi, NULL);
  pending_fail_all(&s->pending, SESSION_EDISCONNECTED);
  txq_clear(s);
  struct frame *f;
  while ((f = s->frame_pool)) {
    s->frame_pool = f->next;
    buf_fini(&f->b);
    free(f);
  }
  pending_fini(&s->pending);
  wipe_token(s);
  codec_free(s->codec);
  buf_fini(&s->rx);
  buf_fini(&s->inflated);
  buf_fini(&s->json);
  free(s);
}

void session_start(struct session *s) {
  if (s->state == ST_STOPPED)
    return;
  s->next_attempt = now_ms();
}

void session_stop(struct session *s) {
  if (s->state == ST_STOPPED)
    return;
  int open = s->state == ST_OPEN || s->state == ST_LISTING;
  s->state = ST_STOPPED;
  if (s->wsi) {
    /* A close frame only exists once the WebSocket is up. */
    if (open)
      lws_close_reason(s->wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_ACK, LWS_TO_KILL_ASYNC);
  }
}

void session_set_config(struct session *s, const struct config *cfg,
                        const struct keystore *ks) {
  int changed = strcmp(cfg->blaze_url, s->cfg->blaze_url) != 0 || ks != s->ks;
  s->cfg = cfg;
  s->ks = ks;
  codec_set_max(s->codec, cfg->max_frame_bytes);
  if (changed && s->state != ST_STOPPED) {
    log_info("blaze: connection settings changed; reconnecting once");
    if (s->wsi) {
      s->reconnect_now = 1;
      drop_link(s, SESSION_CAUSE_SETTINGS_CHANGED);
    } else {
      s->attempt = 0;
      s->next_attempt = now_ms();
      s->state = ST_IDLE;
    }
  }
}

void session_tick(struct session *s, int64_t now) {
  switch (s->state) {
  case ST_IDLE:
    if (now >= s->next_attempt)
      connect_now(s);
    break;
  case ST_CONNECTING:
    if (now >= s->next_attempt && s->wsi) {
      log_warn("blaze: handshake timed out after %d ms", s->cfg->connect_timeout_ms);
      drop_link(s, SESSION_CAUSE_CONNECT_ERROR);
      s->next_attempt = INT64_MAX;
    }
    break;
  case ST_LISTING:
  case ST_OPEN:
    if (s->wsi)
      apply_rx_flow(s);
    pending_expire_due(s, now);
    if (!s->wsi)
      break;
    if (s->rx_off)
      s->last_rx = now; /* silence is ours while we do not read */
    if (now - s->last_rx > s->cfg->idle_timeout_ms || s->consecutive_timeouts >= 3) {
      s->st.dead_links++;
      if (s->consecutive_timeouts >= 3)
        log_warn("blaze: link is dead (%d requests in a row unanswered); reconnecting",
                 s->consecutive_timeouts);
      else
        log_warn("blaze: link is dead (nothing received for %lld ms); reconnecting",
                 (long long)(now - s->last_rx));
      s->consecutive_timeouts = 0;
      s->last_rx = now;
      drop_link(s, SESSION_CAUSE_DEAD_LINK);
      break;
    }
    if (now - s->last_ping >= s->cfg->ping_interval_ms && !s->ping_due) {
      s->ping_due = 1;
      s->last_ping = now;
      lws_callback_on_writable(s->wsi);
    }
    break;
  default:
    break;
  }
}

int session_is_open(const struct session *s) {
  return s->state == ST_OPEN;
}

int session_is_closed(const struct session *s) {
  return s->state == ST_STOPPED && !s->wsi;
}

void session_pause_rx(struct session *s, int pause) {
  if (s->rx_paused == pause)
    return;
  s->rx_paused = pause;
  if (s->wsi)
    apply_rx_flow(s);
}

int session_is_held(const struct session *s) {
  return s->rx_paused;
}

const struct session_stats *session_get_stats(const struct session *s) {
  return &s->st;
}
