/* SPDX-License-Identifier: MIT */
/*
 * dispatch: see dispatch.h. One mutex guards the shared queue, every
 * strand's queue and the completion list; workers sleep on a condition
 * variable. A strand with work has a token in the shared queue; the worker
 * that takes the token runs the strand's first item and puts the token back
 * if more are waiting, so a busy strand cannot starve the others. Worker
 * threads block every signal so that signals reach the I/O thread only.
 */
#include "dispatch.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "log.h"

struct queue {
  struct dispatch_item *head, *tail;
};

struct dispatch_strand {
  struct dispatch *d;
  struct dispatch_item token; /* sits in a run queue while the strand has work */
  struct queue q;
  int scheduled; /* token queued or an item of it running */
};

struct pool {
  struct dispatch *d;
  struct queue q;
  pthread_cond_t cv;
  pthread_t *threads;
  int n;
};

struct dispatch {
  pthread_mutex_t mu;
  struct pool main, blocking;
  struct job *c_head, *c_tail;
  int stopping;
  void (*wake)(void *);
  void *wake_ud;
};

static void q_push(struct queue *q, struct dispatch_item *it) {
  it->next = NULL;
  if (q->tail)
    q->tail->next = it;
  else
    q->head = it;
  q->tail = it;
}

static struct dispatch_item *q_pop(struct queue *q) {
  struct dispatch_item *it = q->head;
  if (it) {
    q->head = it->next;
    if (!q->head)
      q->tail = NULL;
  }
  return it;
}

/* The token's run function is never called; workers recognise tokens. */
static void token_run(struct dispatch_item *it) {
  (void)it;
}

static void *worker(void *arg) {
  struct pool *p = arg;
  struct dispatch *d = p->d;
  pthread_mutex_lock(&d->mu);
  for (;;) {
    while (!p->q.head && !d->stopping)
      pthread_cond_wait(&p->cv, &d->mu);
    struct dispatch_item *it = q_pop(&p->q);
    if (!it)
      break; /* stopping and nothing left */
    if (it->run == token_run) {
      struct dispatch_strand *s =
          (struct dispatch_strand *)((char *)it -
                                     offsetof(struct dispatch_strand, token));
      struct dispatch_item *work = q_pop(&s->q);
      if (!work) {
        s->scheduled = 0;
        continue;
      }
      pthread_mutex_unlock(&d->mu);
      work->run(work);
      pthread_mutex_lock(&d->mu);
      if (s->q.head) {
        q_push(&p->q, &s->token);
        pthread_cond_signal(&p->cv);
      } else {
        s->scheduled = 0;
      }
      continue;
    }
    pthread_mutex_unlock(&d->mu);
    it->run(it);
    pthread_mutex_lock(&d->mu);
  }
  pthread_mutex_unlock(&d->mu);
  return NULL;
}

static int pool_start(struct dispatch *d, struct pool *p, int n) {
  p->d = d;
  pthread_cond_init(&p->cv, NULL);
  if (n <= 0)
    return 0;
  p->threads = calloc((size_t)n, sizeof *p->threads);
  if (!p->threads)
    return -1;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  for (int i = 0; i < n; i++) {
    if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
      log_error("dispatch: cannot start worker thread %d", i);
      break;
    }
    p->n++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return p->n ? 0 : -1;
}

struct dispatch *dispatch_new(int workers, int blocking_workers, void (*wake)(void *),
                              void *wake_ud) {
  struct dispatch *d = calloc(1, sizeof *d);
  if (!d)
    return NULL;
  pthread_mutex_init(&d->mu, NULL);
  d->wake = wake;
  d->wake_ud = wake_ud;
  if (pool_start(d, &d->main, workers) < 0 ||
      (blocking_workers > 0 && pool_start(d, &d->blocking, blocking_workers) < 0)) {
    dispatch_free(d);
    return NULL;
  }
  return d;
}

static void pool_join(struct pool *p) {
  for (int i = 0; i < p->n; i++)
    pthread_join(p->threads[i], NULL);
  free(p->threads);
  p->threads = NULL;
  p->n = 0;
  pthread_cond_destroy(&p->cv);
}

void dispatch_free(struct dispatch *d) {
  if (!d)
    return;
  pthread_mutex_lock(&d->mu);
  d->stopping = 1;
  pthread_cond_broadcast(&d->main.cv);
  pthread_cond_broadcast(&d->blocking.cv);
  pthread_mutex_unlock(&d->mu);
  pool_join(&d->blocking);
  pool_join(&d->main);
  pthread_mutex_destroy(&d->mu);
  free(d);
}

struct dispatch_strand *dispatch_strand_new(struct dispatch *d) {
  struct dispatch_strand *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->d = d;
  s->token.run = token_run;
  return s;
}

void dispatch_strand_free(struct dispatch_strand *s) {
  free(s);
}

int dispatch_strand_idle(struct dispatch_strand *s) {
  pthread_mutex_lock(&s->d->mu);
  int idle = !s->scheduled && !s->q.head;
  pthread_mutex_unlock(&s->d->mu);
  return idle;
}

void dispatch_post(struct dispatch *d, struct dispatch_strand *s,
                   struct dispatch_item *item) {
  item->strand = s;
  pthread_mutex_lock(&d->mu);
  if (!s) {
    q_push(&d->main.q, item);
    pthread_cond_signal(&d->main.cv);
  } else {
    q_push(&s->q, item);
    if (!s->scheduled) {
      s->scheduled = 1;
      q_push(&d->main.q, &s->token);
      pthread_cond_signal(&d->main.cv);
    }
  }
  pthread_mutex_unlock(&d->mu);
}

void dispatch_post_front(struct dispatch *d, struct dispatch_strand *s,
                         struct dispatch_item *item) {
  item->strand = s;
  pthread_mutex_lock(&d->mu);
  item->next = s->q.head;
  s->q.head = item;
  if (!s->q.tail)
    s->q.tail = item;
  if (!s->scheduled) {
    s->scheduled = 1;
    q_push(&d->main.q, &s->token);
    pthread_cond_signal(&d->main.cv);
  }
  pthread_mutex_unlock(&d->mu);
}

int dispatch_strand_cancel(struct dispatch_strand *s, struct dispatch_item *item) {
  int removed = 0;
  pthread_mutex_lock(&s->d->mu);
  struct dispatch_item *prev = NULL;
  for (struct dispatch_item *it = s->q.head; it; prev = it, it = it->next) {
    if (it != item)
      continue;
    if (prev)
      prev->next = it->next;
    else
      s->q.head = it->next;
    if (s->q.tail == it)
      s->q.tail = prev;
    removed = 1;
    break;
  }
  pthread_mutex_unlock(&s->d->mu);
  return removed;
}

void dispatch_post_blocking(struct dispatch *d, struct dispatch_item *item) {
  struct pool *p = d->blocking.n ? &d->blocking : &d->main;
  item->strand = NULL;
  pthread_mutex_lock(&d->mu);
  q_push(&p->q, item);
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&d->mu);
}

void dispatch_complete(struct dispatch *d, struct job *job) {
  pthread_mutex_lock(&d->mu);
  job->next = NULL;
  if (d->c_tail)
    d->c_tail->next = job;
  else
    d->c_head = job;
  d->c_tail = job;
  pthread_mutex_unlock(&d->mu);
  if (d->wake)
    d->wake(d->wake_ud);
}

struct job *dispatch_drain(struct dispatch *d) {
  pthread_mutex_lock(&d->mu);
  struct job *j = d->c_head;
  d->c_head = d->c_tail = NULL;
  pthread_mutex_unlock(&d->mu);
  return j;
}
