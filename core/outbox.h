/* SPDX-License-Identifier: MIT */
/*
 * outbox: messages the bot sends. Any thread may call outbox_send: the
 * message is copied into a params object with a message_id (fresh or the
 * caller's) and put on a locked inbox; the I/O thread moves it into its
 * conversation's queue, paces it under send_rate_per_min, and sends it as
 * CREATE_MESSAGE over the WebSocket, or, while the daemon holds the socket
 * for back pressure, in POST /messages batches (up to 100 messages and
 * 128 KB). Within a conversation messages go out strictly in order: one in
 * flight at a time over the WebSocket, in order inside a batch, and a
 * message being retried holds the ones after it. The queue survives
 * reconnects; a message is always sent again with the same message_id, so
 * the server drops any copy. Replies 400/403/404/10002 (and other client
 * errors) are permanent: logged and dropped. 401, 429, 5xx, 7000, 7001 and
 * timeouts are retried with backoff. When a message is settled either way,
 * on_settled(owner) runs on the I/O thread so the inbound message that
 * caused it can be acknowledged.
 */
#ifndef BLAZEBOT_OUTBOX_H
#define BLAZEBOT_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "rest.h"
#include "session.h"
#include "util.h"

/* What became of a message (outbox_msg.result). */
enum { OUTBOX_ACCEPTED = 0, OUTBOX_REFUSED = 1, OUTBOX_GAVE_UP = 2 };
/* I/O thread, once: status OUTBOX_*, code the Mixin error code (or the HTTP
 * status) of a refusal, else 0. */
typedef void (*outbox_result_fn)(void *arg, int status, int code, const char *message_id);

struct outbox_msg {
  const char *conversation_id; /* required UUID */
  const char *recipient_id;    /* optional UUID (NULL or "") */
  const char *category;        /* required, e.g. "PLAIN_TEXT" */
  const void *data;            /* payload bytes, sent as data_base64 */
  size_t len;
  const char *message_id;        /* optional; NULL = a fresh UUID */
  const char *representative_id; /* optional */
  const char *quote_message_id;  /* optional */
  int silent;
  outbox_result_fn result; /* optional: told how the message settled */
  void *result_arg;
};

struct outbox_stats {
  uint64_t queued, sent, accepted, dropped, retried, full;
  uint64_t sent_rest; /* of sent: in POST /messages batches (socket held) */
};

/* Runs on the I/O thread when a message is settled (accepted or dropped). */
typedef void (*outbox_settled_fn)(void *ud, void *owner, int accepted);

struct outbox;

/* The largest message the server takes: its JSON (base64 data included). */
#define OUTBOX_MAX_MESSAGE_BYTES (128 * 1024)

/* wake is called (from any thread) after a message was put on the inbox;
 * it must make the I/O thread call outbox_tick soon (lws_cancel_service). */
struct outbox *outbox_new(const struct config *cfg, struct session *s, struct rest *rest,
                          outbox_settled_fn settled, void *settled_ud,
                          void (*wake)(void *), void *wake_ud);
/* Frees queued messages (without settling them). */
void outbox_free(struct outbox *o);
void outbox_set_config(struct outbox *o, const struct config *cfg);

/* Any thread. Validates and copies m; owner (may be NULL) is handed back to
 * on_settled. Writes the message id to id_out (may be NULL). When the outbox
 * is full, waits up to wait_ms for room. Returns 0, -1 (invalid message: a
 * reason is logged; this includes a message over OUTBOX_MAX_MESSAGE_BYTES),
 * or -2 (still full, or shutting down). */
int outbox_send(struct outbox *o, const struct outbox_msg *m, void *owner,
                char id_out[UUID_STR_LEN], int wait_ms);
/* I/O thread: takes the inbox, sends what the rate and the link allow,
 * expires backoffs. */
void outbox_tick(struct outbox *o, int64_t now);
/* Messages not yet settled (inbox + queue + in flight). Any thread. */
size_t outbox_outstanding(struct outbox *o);
/* Refuses further sends (they return -2) and wakes waiting senders. */
void outbox_close(struct outbox *o);
/* I/O thread, once the loop ended: closes, and every message not yet
 * settled that has a result callback gets OUTBOX_GAVE_UP now (it is not
 * sent any more). */
void outbox_abandon(struct outbox *o);
void outbox_get_stats(struct outbox *o, struct outbox_stats *out);

#endif
