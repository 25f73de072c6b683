/* SPDX-License-Identifier: MIT */
/*
 * dispatch: see dispatch.h. One mutex guards the run queue, the completion
 * list and the counters; workers sleep on a condition variable. Workers
 * block every signal so that signals reach the I/O thread only.
 */
#include "dispatch.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "log.h"

struct dispatch {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct job *q_head, *q_tail; /* to run */
  struct job *c_head, *c_tail; /* done, to drain */
  size_t outstanding;
  int stopping;
  int nworkers;
  pthread_t *threads;
  dispatch_handler_fn fn;
  void *ud;
  void (*wake)(void *);
  void *wake_ud;
};

static void *worker(void *arg) {
  struct dispatch *d = arg;
  pthread_mutex_lock(&d->mu);
  for (;;) {
    while (!d->q_head && !d->stopping)
      pthread_cond_wait(&d->cv, &d->mu);
    struct job *j = d->q_head;
    if (!j)
      break; /* stopping and nothing left */
    d->q_head = j->next;
    if (!d->q_head)
      d->q_tail = NULL;
    pthread_mutex_unlock(&d->mu);

    j->result = d->fn(d->ud, j);

    pthread_mutex_lock(&d->mu);
    j->next = NULL;
    if (d->c_tail)
      d->c_tail->next = j;
    else
      d->c_head = j;
    d->c_tail = j;
    pthread_mutex_unlock(&d->mu);
    if (d->wake)
      d->wake(d->wake_ud);
    pthread_mutex_lock(&d->mu);
  }
  pthread_mutex_unlock(&d->mu);
  return NULL;
}

struct dispatch *dispatch_new(int workers, dispatch_handler_fn fn, void *ud,
                              void (*wake)(void *), void *wake_ud) {
  struct dispatch *d = calloc(1, sizeof *d);
  if (!d)
    return NULL;
  d->threads = calloc((size_t)workers, sizeof *d->threads);
  if (!d->threads) {
    free(d);
    return NULL;
  }
  pthread_mutex_init(&d->mu, NULL);
  pthread_cond_init(&d->cv, NULL);
  d->fn = fn;
  d->ud = ud;
  d->wake = wake;
  d->wake_ud = wake_ud;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  for (int i = 0; i < workers; i++) {
    if (pthread_create(&d->threads[i], NULL, worker, d) != 0) {
      log_error("dispatch: cannot start worker thread %d", i);
      break;
    }
    d->nworkers++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (!d->nworkers) {
    dispatch_free(d);
    return NULL;
  }
  return d;
}

void dispatch_free(struct dispatch *d) {
  if (!d)
    return;
  pthread_mutex_lock(&d->mu);
  d->stopping = 1;
  pthread_cond_broadcast(&d->cv);
  pthread_mutex_unlock(&d->mu);
  for (int i = 0; i < d->nworkers; i++)
    pthread_join(d->threads[i], NULL);
  pthread_cond_destroy(&d->cv);
  pthread_mutex_destroy(&d->mu);
  free(d->threads);
  free(d);
}

void dispatch_submit(struct dispatch *d, struct job *job) {
  job->next = NULL;
  pthread_mutex_lock(&d->mu);
  if (d->q_tail)
    d->q_tail->next = job;
  else
    d->q_head = job;
  d->q_tail = job;
  d->outstanding++;
  pthread_cond_signal(&d->cv);
  pthread_mutex_unlock(&d->mu);
}

struct job *dispatch_drain(struct dispatch *d) {
  pthread_mutex_lock(&d->mu);
  struct job *j = d->c_head;
  for (struct job *k = j; k; k = k->next)
    d->outstanding--;
  d->c_head = d->c_tail = NULL;
  pthread_mutex_unlock(&d->mu);
  return j;
}

size_t dispatch_outstanding(struct dispatch *d) {
  pthread_mutex_lock(&d->mu);
  size_t n = d->outstanding;
  pthread_mutex_unlock(&d->mu);
  return n;
}
