/* SPDX-License-Identifier: MIT */
/*
 * dispatch: runs message handlers off the I/O thread. The I/O thread submits
 * jobs; a small pool of worker threads runs the handler for each; finished
 * jobs come back through a completion list that the I/O thread drains after
 * a wake-up (lws_cancel_service). The number of jobs submitted and not yet
 * drained is bounded by the caller (back pressure: it stops reading the
 * socket when dispatch_busy says so).
 */
#ifndef BLAZEBOT_DISPATCH_H
#define BLAZEBOT_DISPATCH_H

#include <stdatomic.h>
#include <stddef.h>

#include "envelope.h"

/* One inbound message on its way through processing. Owned by the daemon;
 * dispatch only links it into its queues. */
struct job {
  struct job *next;
  struct message *msg;        /* owned by the job */
  atomic_int pending_replies; /* outbox messages sent for it, not yet settled */
  int handler_done;           /* I/O thread: the handler returned */
  int result;                 /* the handler's return value */
  struct job *all_prev, *all_next; /* the daemon's list of live jobs */
};

/* Runs on a worker thread. Returns 0 when the message was processed (it may
 * be acknowledged once its replies are settled), negative on error (the
 * message is still acknowledged: an error is logged and counted, never
 * redelivered forever). */
typedef int (*dispatch_handler_fn)(void *ud, struct job *job);

struct dispatch;

/* wake runs on a worker after a job completed; it must make the I/O thread
 * call dispatch_drain soon. */
struct dispatch *dispatch_new(int workers, dispatch_handler_fn fn, void *ud,
                              void (*wake)(void *), void *wake_ud);
/* Stops the workers after the queued jobs ran, joins them, frees. Jobs still
 * on the completion list are returned through drain first by the caller. */
void dispatch_free(struct dispatch *d);

/* I/O thread. Queues a job. */
void dispatch_submit(struct dispatch *d, struct job *job);
/* I/O thread. Takes all finished jobs (linked by next), oldest first. */
struct job *dispatch_drain(struct dispatch *d);
/* Jobs submitted and not yet drained. */
size_t dispatch_outstanding(struct dispatch *d);

#endif
