/* SPDX-License-Identifier: MIT */
/*
 * dispatch: runs work off the I/O thread on a small pool of workers. Work
 * items go either to the shared queue (any free worker runs them, in
 * parallel) or to a strand: a serial queue whose items never run two at a
 * time, in order. Each plugin instance owns a strand, which is how "one
 * plugin instance never runs two callbacks at once" is kept without locks in
 * plugins. Finished jobs come back to the I/O thread through a completion
 * list drained after a wake-up (lws_cancel_service). A second small pool runs
 * blocking work that must not hold a strand.
 */
#ifndef BLAZEBOT_DISPATCH_H
#define BLAZEBOT_DISPATCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "util.h"

struct dispatch_item;
typedef void (*dispatch_run_fn)(struct dispatch_item *item);

/* A unit of work, embedded in the caller's struct (no allocation here). */
struct dispatch_item {
  struct dispatch_item *next;
  dispatch_run_fn run;
  struct dispatch_strand *strand; /* set by dispatch_post */
};

/* One inbound message on its way through processing. Owned by the daemon;
 * dispatch only links it into its lists. */
struct job {
  struct dispatch_item item;       /* how the job travels through strands */
  struct job *next;                /* completion list / delayed list */
  struct message *msg;             /* owned by the job; NULL once processed */
  char id[UUID_STR_LEN];           /* the message id, kept until the ack */
  size_t bytes;                    /* memory held by msg, for back pressure */
  int replay;                      /* from a dead-letter file: never acknowledged */
  int category;                    /* the ingress's category counters index */
  int64_t received_us;             /* now_us of the push (push-to-ack latency) */
  atomic_int pending_replies;      /* outbox messages sent for it, not yet settled */
  int handler_done;                /* I/O thread: processing finished */
  int result;                      /* the handler's return value (handler mode) */
  int64_t retry_at;                /* > 0: re-post item to its strand at this time */
  struct job *all_prev, *all_next; /* the daemon's list of live jobs */
  void *route;                     /* the plugin host's per-job state */
};

struct dispatch;
struct dispatch_strand;

/* wake runs on a worker after a job completed; it must make the I/O thread
 * call dispatch_drain soon. blocking_workers may be 0 (no blocking pool). */
struct dispatch *dispatch_new(int workers, int blocking_workers, void (*wake)(void *),
                              void *wake_ud);
/* Runs everything still queued, joins the threads, frees. */
void dispatch_free(struct dispatch *d);

struct dispatch_strand *dispatch_strand_new(struct dispatch *d);
/* The strand must be idle (dispatch_strand_idle). */
void dispatch_strand_free(struct dispatch_strand *s);
/* 1 when nothing is queued on or running in the strand. */
int dispatch_strand_idle(struct dispatch_strand *s);

/* Any thread. Queues item on strand (NULL = the shared queue). */
void dispatch_post(struct dispatch *d, struct dispatch_strand *strand,
                   struct dispatch_item *item);
/* Any thread. Queues item at the head of strand s (reload: the item runs
 * right after the item running now, before the messages waiting). */
void dispatch_post_front(struct dispatch *d, struct dispatch_strand *s,
                         struct dispatch_item *item);
/* Any thread. Takes item out of strand s if it is still queued there.
 * Returns 1 when removed, 0 when it is not queued (running or ran). */
int dispatch_strand_cancel(struct dispatch_strand *s, struct dispatch_item *item);
/* Any thread. Queues item on the blocking pool (or the shared queue when
 * there is none). */
void dispatch_post_blocking(struct dispatch *d, struct dispatch_item *item);

/* Worker thread: job finished processing (or wants a delayed retry when
 * job->retry_at > 0); hands it back to the I/O thread. */
void dispatch_complete(struct dispatch *d, struct job *job);
/* I/O thread. Takes all completed jobs (linked by next), oldest first. */
struct job *dispatch_drain(struct dispatch *d);

#endif
