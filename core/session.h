/* SPDX-License-Identifier: MIT */
/*
 * session: the one authenticated Blaze WebSocket connection, as an lws client
 * on the daemon's event loop (I/O thread only; nothing here is thread-safe).
 * It signs a fresh JWT for every attempt, speaks "Mixin-Blaze-1" over
 * HTTP/1.1, gzips every frame both ways, reassembles fragments, sends
 * LIST_PENDING_MESSAGES after every connect, matches replies to requests by
 * id with deadlines, pings, declares the link dead after idle_timeout_ms of
 * silence, and reconnects with exponential backoff and jitter. A 401 (at the
 * handshake or as an ERROR frame) is retried once with a fresh token; a
 * second one in a row is fatal and reported through on_fatal.
 */
#ifndef BLAZEBOT_SESSION_H
#define BLAZEBOT_SESSION_H

#include <jansson.h>
#include <libwebsockets.h>
#include <stdint.h>

#include "config.h"
#include "envelope.h"
#include "keystore.h"
#include "pending.h"

enum {
  SESSION_OK = 0,
  SESSION_EDISCONNECTED = -1, /* the link went down before the reply came */
  SESSION_ETIMEOUT = -2,      /* no reply within request_timeout_ms */
  SESSION_ENOTOPEN = -3,      /* not connected: try again after on_open */
  SESSION_ENOMEM = -4,
  SESSION_EHELD = -5, /* the socket is held (back pressure): send it over REST */
};

/* Reply to a request. env is the id-matched reply frame (it may carry an
 * error object: check env->has_error) or NULL when err is negative. env is
 * borrowed for the call. */
typedef pending_fn session_reply_fn;

struct session_callbacks {
  /* The link is up and LIST_PENDING_MESSAGES was accepted. */
  void (*on_open)(void *ud);
  /* The link went down (in-flight requests already got SESSION_EDISCONNECTED). */
  void (*on_close)(void *ud);
  /* A pushed message (action CREATE_MESSAGE with a data object). */
  void (*on_push)(void *ud, const struct envelope *env);
  /* Authentication failed for good, or another unrecoverable error. The
   * session has stopped and will not reconnect. */
  void (*on_fatal)(void *ud, const char *why);
};

/* Why an attempt failed or a link went down: the reconnects it caused. */
enum session_cause {
  SESSION_CAUSE_CONNECT_ERROR, /* DNS, TCP, TLS, HTTP or a handshake timeout */
  SESSION_CAUSE_AUTH_REJECTED, /* 401: at the handshake, to the list, or a frame */
  SESSION_CAUSE_LIST_FAILED,   /* LIST_PENDING_MESSAGES refused or unanswered */
  SESSION_CAUSE_DEAD_LINK,     /* silent past idle_timeout_ms, or 3 requests unanswered */
  SESSION_CAUSE_SERVER_CLOSED, /* the server closed an open link, or it broke */
  SESSION_CAUSE_SETTINGS_CHANGED, /* a reload changed blaze_url or the keystore */
  SESSION_CAUSE_COUNT
};
/* "connect_error", "auth_rejected", ...: metric labels and stats keys. */
extern const char *const session_cause_names[SESSION_CAUSE_COUNT];

struct session_stats {
  uint64_t connects;       /* successful handshakes */
  uint64_t connect_errors; /* failed attempts */
  uint64_t frames_in, frames_out, bytes_in, bytes_out;
  uint64_t bad_frames;   /* undecodable frames skipped */
  uint64_t too_big;      /* frames over max_frame_bytes skipped */
  uint64_t receipts;     /* ACKNOWLEDGE_MESSAGE_RECEIPT pushes (never acked) */
  uint64_t error_frames; /* server ERROR frames */
  uint64_t timeouts;     /* request deadlines missed */
  uint64_t dead_links;   /* links closed for silence */
  /* Failed attempts and links lost, by cause (not counted once stopping). */
  uint64_t reconnects[SESSION_CAUSE_COUNT];
};

struct session;

/* The lws protocol entry the daemon puts in its context's protocol list. */
extern const struct lws_protocols session_protocol;

/* cfg and ks are borrowed and must outlive the session (or be replaced with
 * session_set_config). Returns NULL on error (logged). */
struct session *session_new(struct lws_context *ctx, const struct config *cfg,
                            const struct keystore *ks, const struct session_callbacks *cb,
                            void *ud);
void session_free(struct session *s);

/* Starts connecting (now). */
void session_start(struct session *s);
/* Closes the link cleanly and stops reconnecting. */
void session_stop(struct session *s);
/* Swaps config/keystore; if the connection keys changed, reconnects once. */
void session_set_config(struct session *s, const struct config *cfg,
                        const struct keystore *ks);
/* Drives pings, idle detection, request deadlines and reconnects: call every
 * ~100 ms from the loop. */
void session_tick(struct session *s, int64_t now);

/* 1 when connected and LIST_PENDING_MESSAGES was accepted. */
int session_is_open(const struct session *s);
/* 1 when the link is gone for good (stopped or fatal). */
int session_is_closed(const struct session *s);

/* Queues a request frame {"id","action","params"}. params is borrowed (may
 * be NULL). id NULL = a fresh UUID. cb (may be NULL) gets the reply, a
 * timeout or a disconnect exactly once, never synchronously. Returns 0 or a
 * negative SESSION_E* code (then cb is not called). */
int session_request(struct session *s, const char *action, json_t *params, const char *id,
                    session_reply_fn cb, void *ud);
/* The same with params as JSON text (len bytes), written into the frame as
 * is: for requests built without a jansson tree (replies). */
int session_request_text(struct session *s, const char *action, const char *params,
                         size_t len, const char *id, session_reply_fn cb, void *ud);
/* Holds (1) or releases (0) the socket for back pressure. While held the
 * socket is not read at all (lws_rx_flow_control) and new requests are
 * refused with SESSION_EHELD: acknowledgements and outgoing messages go over
 * REST meanwhile. Requests already sent keep waiting, deadlines frozen, for
 * their answers after the release. Nothing pushed is read while held, so
 * nothing is decoded only to be dropped. */
void session_pause_rx(struct session *s, int pause);
/* 1 while the socket is held (session_pause_rx(1)). */
int session_is_held(const struct session *s);
/* Answers every pending request whose callback is cb with SESSION_EHELD
 * now (its owner sends it another way, with the same ids). */
void session_cancel_requests(struct session *s, session_reply_fn cb);

const struct session_stats *session_get_stats(const struct session *s);

#endif
