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

/* Runs on the strand of r->subs[r->idx]. The slot's instance is read here,
 * on that strand, so a reload's swap (also on the strand) happens between
 * two deliveries, never during one. A slot without an instance (its plugin
 * was removed) passes the message on. */
void exec_deliver(struct dispatch_item *it) {
  struct job *job = (struct job *)((char *)it - offsetof(struct job, item));
  struct job_route *r = job->route;
  struct plugin_host *h = r->h;
  struct slot *sl = r->subs[r->idx];
  if (atomic_load(&h->stopping)) {
    /* Shutting down: not delivered, not acknowledged; the server delivers
     * it again after the restart. */
    job->retry_at = 0;
    job->result = BLAZEBOT_ERROR;
    dispatch_complete(h->disp, job);
    return;
  }
  struct instance *in = atomic_load(&sl->inst);
  int rc = BLAZEBOT_PASS;
  if (in) {
    r->view.attempt = (uint32_t)r->attempt;
    in->current_job = job;
    in->current_view = &r->view;
    in->current_thread = pthread_self();
    in->sent_in_call = 0;
    rc = in->desc.on_message(in->state, &r->view);
    in->current_job = NULL;
    in->current_view = NULL;
    atomic_fetch_add(&sl->delivered, 1);

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
    dispatch_post(h->disp, r->subs[r->idx]->strand, &job->item);
    return;
  }
  job->retry_at = 0;
  job->result = rc < 0 ? rc : 0;
  dispatch_complete(h->disp, job);
}
