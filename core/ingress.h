/* SPDX-License-Identifier: MIT */
/*
 * ingress: the life of one inbound message, on the I/O thread. A push from
 * the session is decoded, checked against the dedupe set, admitted (or the
 * socket is held: back pressure), turned into a job and handed to its
 * processing (the plugin host's routing, or a handler on any worker). When
 * processing returned and every reply tied to the job settled, the id
 * becomes DONE in the dedupe set and its acknowledgement is queued. A job
 * is freed exactly then.
 *
 * Threads: everything runs on the I/O thread except ingress_send (any
 * thread inside processing: it touches the job's atomic counter and the
 * outbox only). The ingress calls down into session (hold), dedupe, acks,
 * outbox, dispatch and the plugin host; nothing here calls up.
 */
#ifndef BLAZEBOT_INGRESS_H
#define BLAZEBOT_INGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "dispatch.h"
#include "envelope.h"
#include "outbox.h"

struct ingress;
struct session;
struct acks;
struct dedupe;
struct plugin_host;

/* The processing step in handler mode. Runs on a worker; may call
 * ingress_send. Returns 0 or a negative error (logged, counted; the message
 * is still acknowledged). */
typedef int (*ingress_handler_fn)(void *ud, struct job *job);

struct ingress_deps {
  struct session *session; /* held and released for back pressure */
  struct acks *acks;
  struct outbox *outbox;
  struct dedupe *dedupe;
  struct dispatch *dispatch;
  ingress_handler_fn handler; /* NULL: plugin mode (ingress_set_plugins) */
  void *handler_ud;
};

struct ingress_counters {
  uint64_t received;   /* message pushes decoded */
  uint64_t processed;  /* jobs finished and acknowledged */
  uint64_t duplicates; /* redeliveries skipped (acked again if done) */
  uint64_t malformed;  /* pushes that could not be decoded */
  uint64_t deferred;   /* pushes left for redelivery while stopping */
  uint64_t holds;      /* times the socket was held for back pressure */
  uint64_t handler_errors;
  uint64_t replies_accepted, replies_dropped;
  uint64_t replayed, replay_failed; /* blazebot --replay */
};

struct ingress *ingress_new(const struct ingress_deps *deps, const struct config *cfg);
/* Frees the jobs that never finished, unacknowledged (the server delivers
 * them again). Call after ingress_release_routes. */
void ingress_free(struct ingress *in);

/* Plugin mode: where jobs are routed. Set once the host exists; set NULL
 * before the host is freed. */
void ingress_set_plugins(struct ingress *in, struct plugin_host *plugins);
/* A new snapshot (reload): only the outbox capacity is read from it. */
void ingress_set_config(struct ingress *in, const struct config *cfg);

/* The session's on_push. */
void ingress_push(struct ingress *in, const struct envelope *env);
/* The outbox's on_settled: a reply sent for owner (a job, or NULL)
 * was accepted (1) or permanently refused / given up (0). */
void ingress_settled(struct ingress *in, void *owner, int accepted);
/* Any thread, inside processing of job (NULL: tied to no message): sends m;
 * job is acknowledged only once m settled. Returns outbox_send's result. */
int ingress_send(struct ingress *in, struct job *job, const struct outbox_msg *m,
                 char id_out[UUID_STR_LEN]);

/* Takes the jobs finished by workers (after a wake-up or on the tick). */
void ingress_drain(struct ingress *in);
/* Posts again the jobs whose RETRY backoff is due. */
void ingress_repost_due(struct ingress *in, int64_t now);
/* On the tick: drain, repost, and hold or release the socket. */
void ingress_tick(struct ingress *in, int64_t now);
/* A graceful stop began: pushes read from now on are left for redelivery,
 * and a held socket is read again (for the answers still to come). */
void ingress_stop(struct ingress *in);

/* blazebot --replay: message (a dead-letter record's) as a job for the
 * plugin called plugin alone, never acknowledged. Returns 1 when posted, 0
 * when it cannot be (logged with line), -1 out of memory. */
int ingress_replay(struct ingress *in, json_t *message, const char *plugin, long line);

/* Per message category (the first INGRESS_CATEGORIES seen; later ones are
 * counted under "other"): received and processed. I/O thread. */
#define INGRESS_CATEGORIES 32
struct ingress_category {
  char name[40];
  uint64_t received, processed;
};
/* The table and its length; *other: the "other" counters, NULL if unused. */
const struct ingress_category *ingress_categories(const struct ingress *in, size_t *n,
                                                  const struct ingress_category **other);
/* Jobs queued for or running in processing (held ones included). */
size_t ingress_processing(const struct ingress *in);
/* 1 while back pressure holds the socket. */
int ingress_held(const struct ingress *in);
/* Jobs not yet finished (in processing or waiting for replies to settle). */
size_t ingress_inflight(const struct ingress *in);
/* After the workers were joined: the routing state of jobs that never
 * finished goes back to the plugin host, which frees it. */
void ingress_release_routes(struct ingress *in);
const struct ingress_counters *ingress_get_counters(const struct ingress *in);

#endif
