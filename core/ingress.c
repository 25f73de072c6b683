/* SPDX-License-Identifier: MIT */
/*
 * ingress: see ingress.h. One message's way, in the order of this file:
 * push (ingress_push) → dedupe → job → admission (back pressure) →
 * processing (plugins_route or the handler) → completion (ingress_drain) →
 * replies settled (ingress_settled) → DONE + ack (job_finish).
 */
#include "ingress.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "acks.h"
#include "dedupe.h"
#include "log.h"
#include "plugins.h"
#include "session.h"
#include "util.h"

/* Back pressure: messages in processing (queued for or running in plugins)
 * and the memory they hold. Past either limit the socket is held; it is
 * released when both fell to half. */
#define MAX_PROCESSING_JOBS 1024
#define MAX_PROCESSING_BYTES (16u << 20)

struct ingress {
  struct ingress_deps d;
  struct plugin_host *plugins; /* NULL in handler mode */
  size_t outbox_capacity;
  int stopping;
  int held;             /* back pressure: the socket is held */
  size_t inflight_jobs; /* jobs not yet finished */
  /* Jobs still queued in or running through the handler/plugins. Jobs that
   * only wait for the server to accept their replies do not count: those
   * replies arrive over the socket, so they must never hold it. */
  size_t processing_jobs;
  size_t processing_bytes; /* memory held by those jobs' messages */
  struct job *jobs;        /* all live jobs, for cleanup at exit */
  struct job *delayed;     /* jobs waiting for a RETRY's backoff */
  struct ingress_counters c;
  struct ingress_category cats[INGRESS_CATEGORIES + 1]; /* the last: "other" */
  size_t ncats;
};

/* The counters of category name. */
static struct ingress_category *category(struct ingress *in, const char *name) {
  for (size_t i = 0; i < in->ncats; i++)
    if (!strcmp(in->cats[i].name, name))
      return &in->cats[i];
  if (in->ncats < INGRESS_CATEGORIES && strlen(name) < sizeof in->cats[0].name) {
    struct ingress_category *c = &in->cats[in->ncats++];
    memcpy(c->name, name, strlen(name) + 1);
    return c;
  }
  struct ingress_category *o = &in->cats[INGRESS_CATEGORIES];
  if (!o->name[0])
    memcpy(o->name, "other", 6);
  return o;
}

const struct ingress_category *ingress_categories(const struct ingress *in, size_t *n,
                                                  const struct ingress_category **other) {
  *n = in->ncats;
  *other = in->cats[INGRESS_CATEGORIES].name[0] ? &in->cats[INGRESS_CATEGORIES] : NULL;
  return in->cats;
}

size_t ingress_processing(const struct ingress *in) {
  return in->processing_jobs;
}

int ingress_held(const struct ingress *in) {
  return in->held;
}

struct ingress *ingress_new(const struct ingress_deps *deps, const struct config *cfg) {
  struct ingress *in = calloc(1, sizeof *in);
  if (!in)
    return NULL;
  in->d = *deps;
  ingress_set_config(in, cfg);
  return in;
}

void ingress_set_plugins(struct ingress *in, struct plugin_host *plugins) {
  in->plugins = plugins;
}

void ingress_set_config(struct ingress *in, const struct config *cfg) {
  in->outbox_capacity = (size_t)cfg->outbox_capacity;
}

/* ---- jobs ---------------------------------------------------------------- */

static struct job *job_new(struct ingress *in, struct message *m) {
  struct job *job = calloc(1, sizeof *job);
  if (!job)
    return NULL;
  job->msg = m;
  memcpy(job->id, m->message_id, UUID_STR_LEN - 1);
  job->id[UUID_STR_LEN - 1] = 0;
  atomic_init(&job->pending_replies, 0);
  job->all_next = in->jobs;
  if (in->jobs)
    in->jobs->all_prev = job;
  in->jobs = job;
  in->inflight_jobs++;
  return job;
}

static void job_free(struct ingress *in, struct job *job) {
  if (job->all_prev)
    job->all_prev->all_next = job->all_next;
  else
    in->jobs = job->all_next;
  if (job->all_next)
    job->all_next->all_prev = job->all_prev;
  in->inflight_jobs--;
  free(job->msg);
  free(job);
}

/* Processing ended: the message itself is no longer needed, only its id
 * (for the ack once its replies settle). */
static void job_processed(struct ingress *in, struct job *job) {
  job->handler_done = 1;
  plugins_job_done(in->plugins, job);
  free(job->msg);
  job->msg = NULL;
  in->processing_bytes -= job->bytes;
  job->bytes = 0;
}

/* Processed and every reply settled: remembered as DONE and acknowledged. */
static void job_finish(struct ingress *in, struct job *job) {
  if (job->replay) {
    /* Acknowledged long ago, when it went to the dead-letter file. */
    in->c.replayed++;
    if (job->result < 0)
      in->c.replay_failed++;
    job_free(in, job);
    return;
  }
  dedupe_set(in->d.dedupe, job->id, DEDUPE_DONE);
  log_event_at(LOGL_DEBUG, "message.done", "message_id", job->id, NULL);
  if (acks_add(in->d.acks, job->id, job->received_us) < 0)
    log_error("acks: out of memory queueing %s; it will be redelivered", job->id);
  in->c.processed++;
  in->cats[job->category].processed++;
  job_free(in, job);
}

/* ---- back pressure ------------------------------------------------------- */

/* The socket is held (not read: TCP flow control) when the plugins have
 * MAX_PROCESSING_JOBS messages or MAX_PROCESSING_BYTES of them queued or
 * running, or the outbox is three quarters full; it is read again when all
 * fell to half. While held, acks and replies go over REST, so they complete
 * without reading the socket, and nothing pushed is read: nothing is decoded
 * and then dropped, and no reconnect is needed to get it back. A finished
 * job keeps only its id while its replies settle, so memory stays bounded
 * in bytes. */
static void check_load(struct ingress *in) {
  if (in->held || in->stopping)
    return;
  size_t outbox = outbox_outstanding(in->d.outbox);
  if (in->processing_jobs >= MAX_PROCESSING_JOBS ||
      in->processing_bytes >= MAX_PROCESSING_BYTES ||
      outbox >= in->outbox_capacity * 3 / 4) {
    in->held = 1;
    in->c.holds++;
    log_debug(
        "back pressure: holding the socket (%zu message(s), %zu bytes in processing, "
        "%zu in the outbox)",
        in->processing_jobs, in->processing_bytes, outbox);
    session_pause_rx(in->d.session, 1);
  }
}

static void maybe_release(struct ingress *in) {
  if (!in->held || in->stopping)
    return;
  if (in->processing_jobs <= MAX_PROCESSING_JOBS / 2 &&
      in->processing_bytes <= MAX_PROCESSING_BYTES / 2 &&
      outbox_outstanding(in->d.outbox) <= in->outbox_capacity / 2) {
    log_debug("back pressure: reading again (%zu message(s), %zu bytes in processing)",
              in->processing_jobs, in->processing_bytes);
    in->held = 0;
    session_pause_rx(in->d.session, 0);
  }
}

void ingress_stop(struct ingress *in) {
  if (in->held) {
    in->held = 0;
    session_pause_rx(in->d.session, 0);
  }
  in->stopping = 1;
}

/* ---- push ----------------------------------------------------------------- */

/* Handler mode: the job runs on any worker. */
static void handler_run(struct dispatch_item *it) {
  struct job *job = (struct job *)((char *)it - offsetof(struct job, item));
  struct ingress *in = job->route;
  job->result = in->d.handler(in->d.handler_ud, job);
  dispatch_complete(in->d.dispatch, job);
}

/* A push that cannot be decoded. With an id it would come back on every
 * reconnect for 7 days: it is logged with its id and acknowledged. */
static void push_malformed(struct ingress *in, const char *mid, const char *err) {
  in->c.malformed++;
  if (!mid[0]) {
    log_error("message push skipped: %s", err);
    return;
  }
  log_error("message %s skipped: %s; acknowledging it so it is not redelivered", mid,
            err);
  if (dedupe_get(in->d.dedupe, mid) == DEDUPE_NEW) {
    dedupe_set(in->d.dedupe, mid, DEDUPE_DONE);
    acks_add(in->d.acks, mid, 0);
  }
}

void ingress_push(struct ingress *in, const struct envelope *env) {
  struct message *m = NULL;
  char mid[64], err[256];
  if (envelope_message_raw(env->data_raw, env->data_raw_len, &m, mid, err, sizeof err) <
      0) {
    push_malformed(in, mid, err);
    return;
  }
  if (in->stopping) {
    /* Not processed, not acknowledged, not remembered: the server delivers
     * it again after the restart. (Back pressure drops nothing: it stops
     * reading instead.) */
    in->c.deferred++;
    free(m);
    return;
  }
  m->received_ms = now_ms();
  in->c.received++;
  struct ingress_category *cat = category(in, m->category);
  cat->received++;
  log_event_at(LOGL_DEBUG, "message.received", "message_id", m->message_id,
               "conversation_id", m->conversation_id, "category", m->category, "source",
               m->source, NULL);
  int st = dedupe_get(in->d.dedupe, m->message_id);
  if (st != DEDUPE_NEW) {
    in->c.duplicates++;
    log_debug("message %s redelivered; %s", m->message_id,
              st == DEDUPE_DONE ? "acknowledging again" : "still in processing");
    if (st == DEDUPE_DONE)
      acks_add(in->d.acks, m->message_id, 0);
    free(m);
    return;
  }
  struct job *job = job_new(in, m);
  if (!job) {
    log_error("message %s: out of memory; it will be redelivered", m->message_id);
    free(m);
    return;
  }
  job->bytes = sizeof *m + m->raw_json_len * 2 + m->data_len;
  job->category = (int)(cat - in->cats);
  job->received_us = now_us();
  dedupe_set(in->d.dedupe, job->id, DEDUPE_INFLIGHT);
  if (in->d.handler) {
    job->route = in;
    job->item.run = handler_run;
    dispatch_post(in->d.dispatch, NULL, &job->item);
  } else {
    int routed = plugins_route(in->plugins, job);
    if (routed < 0) {
      /* Not acknowledged: the server will deliver it again. */
      log_error("message %s: out of memory routing it; it will be redelivered", job->id);
      dedupe_set(in->d.dedupe, job->id, DEDUPE_NEW);
      job_free(in, job);
      return;
    }
    if (routed == 0) {
      log_debug("message %s (%s): no plugin subscribes to it", job->id, m->category);
      job->handler_done = 1;
      job_finish(in, job);
      return;
    }
  }
  in->processing_jobs++;
  in->processing_bytes += job->bytes;
  check_load(in);
}

int ingress_replay(struct ingress *in, json_t *message, const char *plugin, long line) {
  struct message *m = NULL;
  char mid[64], err[256];
  if (envelope_message(message, &m, mid, err, sizeof err) < 0) {
    log_error("replay: line %ld: the message cannot be decoded: %s", line, err);
    return 0;
  }
  struct job *job = job_new(in, m);
  if (!job) {
    free(m);
    return -1;
  }
  job->replay = 1;
  int routed = plugins_route_to(in->plugins, job, plugin);
  if (routed <= 0) {
    log_error("replay: line %ld: message %s: plugin %s %s", line, job->id, plugin,
              routed < 0 ? "cannot be reached (out of memory)" : "is not loaded");
    job_free(in, job);
    return routed < 0 ? -1 : 0;
  }
  in->processing_jobs++;
  return 1;
}

/* ---- completion ------------------------------------------------------------ */

int ingress_send(struct ingress *in, struct job *job, const struct outbox_msg *m,
                 char id_out[UUID_STR_LEN]) {
  if (job)
    atomic_fetch_add(&job->pending_replies, 1);
  int rc = outbox_send(in->d.outbox, m, job, id_out, 5000);
  if (rc < 0 && job)
    atomic_fetch_sub(&job->pending_replies, 1);
  return rc;
}

void ingress_settled(struct ingress *in, void *owner, int accepted) {
  struct job *job = owner;
  if (accepted)
    in->c.replies_accepted++;
  else
    in->c.replies_dropped++;
  if (job && atomic_fetch_sub(&job->pending_replies, 1) == 1 && job->handler_done)
    job_finish(in, job);
}

void ingress_drain(struct ingress *in) {
  struct job *j = dispatch_drain(in->d.dispatch);
  while (j) {
    struct job *next = j->next;
    if (j->retry_at > 0) {
      /* A plugin asked for a later redelivery: park the job until due. */
      j->next = in->delayed;
      in->delayed = j;
      j = next;
      continue;
    }
    in->processing_jobs--;
    if (j->result < 0) {
      in->c.handler_errors++;
      log_warn("message %s (%s): processing failed with %d", j->id, j->msg->category,
               j->result);
    }
    job_processed(in, j);
    if (atomic_load(&j->pending_replies) == 0)
      job_finish(in, j);
    j = next;
  }
}

void ingress_repost_due(struct ingress *in, int64_t now) {
  for (struct job **pp = &in->delayed; *pp;) {
    struct job *j = *pp;
    if (j->retry_at <= now) {
      *pp = j->next;
      j->retry_at = 0;
      dispatch_post(in->d.dispatch, j->item.strand, &j->item);
    } else {
      pp = &j->next;
    }
  }
}

void ingress_tick(struct ingress *in, int64_t now) {
  ingress_drain(in);
  ingress_repost_due(in, now);
  check_load(in);
  maybe_release(in);
}

/* ---- queries and cleanup ----------------------------------------------------- */

size_t ingress_inflight(const struct ingress *in) {
  return in->inflight_jobs;
}

const struct ingress_counters *ingress_get_counters(const struct ingress *in) {
  return &in->c;
}

void ingress_release_routes(struct ingress *in) {
  for (struct job *j = in->jobs; j; j = j->all_next)
    plugins_job_done(in->plugins, j);
}

void ingress_free(struct ingress *in) {
  if (!in)
    return;
  while (in->jobs)
    job_free(in, in->jobs);
  free(in);
}
