/* SPDX-License-Identifier: MIT */
/*
 * acks: acknowledgements of processed messages (I/O thread only). Ids are
 * queued only after processing finished; they are coalesced into batches of
 * up to ack_batch (≤ 100) and flushed when a batch is full or ack_interval_ms
 * after its first id, over the WebSocket (ACKNOWLEDGE_MESSAGE_RECEIPTS) or
 * REST (POST /acknowledgements). A batch that fails or times out is retried
 * with backoff; a batch in flight when the link drops is resent after the
 * reconnect. If the server answers the WebSocket batch action with an error,
 * acks switch to REST for the rest of the run and say so once.
 */
#ifndef BLAZEBOT_ACKS_H
#define BLAZEBOT_ACKS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "hist.h"
#include "rest.h"
#include "session.h"

struct acks_stats {
  uint64_t queued;         /* ids queued */
  uint64_t acked;          /* ids the server confirmed */
  uint64_t batches;        /* batches confirmed */
  uint64_t retries;        /* batches sent again */
  int transport;           /* enum ack_transport in use now */
  int64_t last_ok_ms;      /* now_ms of the last confirmed batch (or of acks_new) */
  struct hist push_to_ack; /* from the push to the server's confirmation */
};

struct acks;

struct acks *acks_new(const struct config *cfg, struct session *s, struct rest *r);
void acks_free(struct acks *a);
void acks_set_config(struct acks *a, const struct config *cfg);

/* Queues the acknowledgement of message_id; received_us (now_us of the
 * push, 0 when unknown) times push-to-ack. Returns 0 or -1 (no memory). */
int acks_add(struct acks *a, const char *message_id, int64_t received_us);
/* Sends due batches and retries; call every ~100 ms and after on_open. If
 * force is set, partial batches go out now (shutdown). */
void acks_tick(struct acks *a, int64_t now, int force);
/* Ids queued or in flight, not yet confirmed. */
size_t acks_outstanding(const struct acks *a);
const struct acks_stats *acks_get_stats(const struct acks *a);

#endif
