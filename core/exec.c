/* SPDX-License-Identifier: MIT */
/*
 * exec: see exec.h. Runs on workers, one job at a time per strand; the
 * per-slot counters it bumps are atomics read by the stats.
 */
#include "exec.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "deadletter.h"
#include "dispatch.h"
#include "log.h"
#include "plugin_host.h"
#include "util.h"

/* ---- delivery ---------------------------------------------------------------- */

static int64_t retry_delay_ms(int attempt) {
  int64_t d = 500;
  for (int i = 1; i < attempt && d < 30000; i++)
    d *= 2;
  return d > 30000 ? 30000 : d;
}

/* A plugin used up max_attempts: the message goes to the dead-letter file
 * first, so giving up loses nothing. Returns -1 when it cannot be written
 * there: then the message is not given up on (it is retried later and stays
 * unacknowledged until either works). */
static int give_up(struct plugin_host *h, struct instance *in, struct job_route *r) {
  if (!h->dl || !deadletter_enabled(h->dl)) {
    log_error(
        "plugin %s: gave up on message %s after %d attempts; no dead_letter_file is "
        "set, so it is acknowledged without this plugin's processing",
        in->name, r->view.message_id, r->attempt);
    return 0;
  }
  char why[96];
  snprintf(why, sizeof why, "RETRY %d times (max_attempts)", r->attempt);
  if (deadletter_write(h->dl, in->name, r->attempt, why, r->view.raw_json,
                       r->view.raw_json_len) < 0) {
    log_error(
        "plugin %s: message %s not given up: the dead-letter file cannot be written; "
        "retrying it",
        in->name, r->view.message_id);
    return -1;
  }
  log_warn("plugin %s: gave up on message %s after %d attempts; it is in the dead-letter "
           "file",
           in->name, r->view.message_id, r->attempt);
  return 0;
}

/* The strength of a result: RETRY beats an error beats HANDLED beats PASS
 * (unknown codes count as PASS). */
static int rank(int rc) {
  return rc == BLAZEBOT_RETRY ? 3 : rc < 0 ? 2 : rc == BLAZEBOT_HANDLED ? 1 : 0;
}

int exec_hold_drop_locked(struct job *job, int result) {
  struct job_route *r = job->route;
  /* Equal to a PASS so far, an unknown code is kept, to be logged. */
  if (rank(result) > rank(r->outcome) ||
      (rank(result) == rank(r->outcome) && r->outcome == BLAZEBOT_PASS))
    r->outcome = result;
  return --r->holds == 0;
}

/* The delivery to r->subs[r->idx] ended with rc (on that subscriber's
 * strand, or on the strand of whoever released its last hold). in may be
 * NULL (the slot has no instance now). */
static const char *result_name(int rc) {
  return rc == BLAZEBOT_PASS      ? "pass"
         : rc == BLAZEBOT_HANDLED ? "handled"
         : rc == BLAZEBOT_RETRY   ? "retry"
         : rc < 0                 ? "error"
                                  : "unknown";
}

static void finish(struct plugin_host *h, struct job *job, struct instance *in, int rc) {
  struct job_route *r = job->route;
  struct slot *sl = r->subs[r->idx];
  if (log_get_level() >= LOGL_DEBUG) {
    char attempt[16];
    snprintf(attempt, sizeof attempt, "%d", r->attempt);
    log_event(LOGL_DEBUG, "message.delivered", "message_id", job->id, "plugin", sl->name,
              "result", in ? result_name(rc) : "no instance", "attempt", attempt, NULL);
  }
  if (in) {
    if (rc == BLAZEBOT_RETRY) {
      int max = atomic_load(&in->max_attempts);
      if ((max == 0 || r->attempt < max) || give_up(h, in, r) < 0) {
        atomic_fetch_add(&sl->retried, 1);
        job->retry_at = now_ms() + retry_delay_ms(r->attempt);
        r->attempt++;
        dispatch_complete(h->disp, job); /* the daemon re-posts it when due */
        return;
      }
      atomic_fetch_add(&sl->gave_up, 1);
      rc = BLAZEBOT_ERROR;
    }
    if (rc < 0) {
      atomic_fetch_add(&sl->errors, 1);
      log_warn("plugin %s: message %s (%s) failed with %d", in->name, r->view.message_id,
               r->view.category, rc);
    } else if (rc == BLAZEBOT_HANDLED) {
      atomic_fetch_add(&sl->handled, 1);
    } else {
      if (rc != BLAZEBOT_PASS)
        log_warn("plugin %s: unknown return code %d treated as PASS", in->name, rc);
      rc = BLAZEBOT_PASS;
      atomic_fetch_add(&sl->passed, 1);
    }
  }
  if (rc != BLAZEBOT_HANDLED && r->idx + 1 < r->nsubs) {
    r->idx++;
    r->attempt = 1;
    job->item.run = exec_deliver;
    dispatch_post(h->disp, r->subs[r->idx]->strand, &job->item);
    return;
  }
  job->retry_at = 0;
  job->result = rc < 0 ? rc : 0;
  dispatch_complete(h->disp, job);
}

/* Shutting down: not delivered, not acknowledged; the server delivers it
 * again after the restart. */
static void skip(struct plugin_host *h, struct job *job) {
  job->retry_at = 0;
  job->result = BLAZEBOT_ERROR;
  dispatch_complete(h->disp, job);
}

/* On the subscriber's strand, after the last hold was released. */
static void resume_run(struct dispatch_item *it) {
  struct job *job = (struct job *)((char *)it - offsetof(struct job, item));
  struct job_route *r = job->route;
  struct plugin_host *h = r->h;
  job->item.run = exec_deliver;
  if (atomic_load(&h->stopping)) {
    skip(h, job);
    return;
  }
  pthread_mutex_lock(&h->mu);
  int rc = r->outcome;
  pthread_mutex_unlock(&h->mu);
  finish(h, job, atomic_load(&r->subs[r->idx]->inst), rc);
}

void exec_resume_post(struct job *job) {
  struct job_route *r = job->route;
  job->item.run = resume_run;
  dispatch_post(r->h->disp, r->subs[r->idx]->strand, &job->item);
}

/* Runs on the strand of r->subs[r->idx]. The slot's instance is read here,
 * on that strand, so a reload's swap (also on the strand) happens between
 * two deliveries, never during one. A slot without an instance (its plugin
 * was removed) passes the message on. The on_message call counts as one
 * hold, so a hold released on another thread before the call returned
 * cannot end the delivery under it. */
void exec_deliver(struct dispatch_item *it) {
  struct job *job = (struct job *)((char *)it - offsetof(struct job, item));
  struct job_route *r = job->route;
  struct plugin_host *h = r->h;
  struct slot *sl = r->subs[r->idx];
  if (atomic_load(&h->stopping)) {
    skip(h, job);
    return;
  }
  struct instance *in = atomic_load(&sl->inst);
  if (!in) {
    finish(h, job, NULL, BLAZEBOT_PASS);
    return;
  }
  r->view.attempt = (uint32_t)r->attempt;
  pthread_mutex_lock(&h->mu);
  r->holds = 1;
  r->outcome = BLAZEBOT_PASS;
  pthread_mutex_unlock(&h->mu);
  atomic_store(&r->sent, 0);
  /* Services called on other threads read these (async_current_job). */
  atomic_store(&in->current_thread, pthread_self());
  atomic_store(&in->current_view, &r->view);
  atomic_store(&in->current_job, job);
  int64_t t0 = now_us();
  int rc = in->desc.on_message(in->state, &r->view);
  hist_observe_us(&sl->latency, (uint64_t)(now_us() - t0));
  atomic_store(&in->current_job, NULL);
  atomic_store(&in->current_view, NULL);
  atomic_fetch_add(&sl->delivered, 1);
  pthread_mutex_lock(&h->mu);
  int last = exec_hold_drop_locked(job, rc);
  rc = r->outcome;
  pthread_mutex_unlock(&h->mu);
  if (last)
    finish(h, job, in, rc);
  else /* held: the last release posts resume_run to this strand */
    log_event_at(LOGL_DEBUG, "message.held", "message_id", job->id, "plugin", sl->name,
                 NULL);
}
