/* SPDX-License-Identifier: MIT */
/*
 * Replies and at-least-once, with the daemon's modules in this process (a
 * handler that echoes every text, quoting the message it answers) against
 * the real simulator: every message gets exactly one reply in its own
 * conversation; a message is acknowledged only after the server accepted its
 * reply, checked per message all along the run (a watcher compares which
 * messages the simulator has acknowledged with the replies it has accepted);
 * retryable errors (7000, 429) are retried with the same message_id;
 * permanent ones (403, 10002) are dropped and the message is still
 * acknowledged; a link dropped mid-stream makes the replies go again under
 * the same ids and the server keeps one copy.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "daemon.h"
#include "harness.h"
#include "keystore.h"
#include "log.h"
#include "util.h"

static atomic_int handled;

static int echo(void *ud, struct daemon *d, struct job *job) {
  const struct message *m = job->msg;
  char text[256];
  int n = snprintf(text, sizeof text, "echo %s %.*s", m->message_id, (int)m->data_len,
                   (const char *)m->data);
  struct outbox_msg out = {.conversation_id = m->conversation_id,
                           .recipient_id = m->user_id,
                           .category = "PLAIN_TEXT",
                           .data = text,
                           .len = (size_t)n,
                           .quote_message_id = m->message_id};
  atomic_fetch_add(&handled, 1);
  (void)ud;
  return daemon_reply(d, job, &out, NULL) == 0 ? 0 : -1;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The ids the replies in sent quote, sorted (pointers into sent). */
static const char **quoted_ids(json_t *sent, size_t *n) {
  const char **v = calloc(json_array_size(sent) + 1, sizeof *v);
  size_t i, k = 0;
  json_t *e;
  json_array_foreach(sent, i, e) {
    const char *q = json_string_value(json_object_get(e, "quote_message_id"));
    if (v && q && *q)
      v[k++] = q;
  }
  if (v)
    qsort(v, k, sizeof *v, cmp_str);
  *n = k;
  return v;
}

/* How many replies quote id. */
static long replies_to(const char **ids, size_t n, const char *id) {
  const char **hit = id ? bsearch(&id, ids, n, sizeof *ids, cmp_str) : NULL;
  if (!hit)
    return 0;
  const char **lo = hit, **hi = hit;
  while (lo > ids && !strcmp(lo[-1], id))
    lo--;
  while (hi + 1 < ids + n && !strcmp(hi[1], id))
    hi++;
  return (long)(hi - lo) + 1;
}

struct watch {
  struct sim *sim;
  struct daemon *d;
  long want_acked;
  long may_lack_reply; /* acked without a reply: the permanently refused ones */
  int timeout_ms;
  int polls;
  int violations;  /* snapshots with more acked-but-unanswered than allowed */
  int saw_waiting; /* snapshots with a delivered message neither answered nor acked */
};

/* One snapshot; returns the number of acknowledged messages (-1 on error). */
static long watch_once(struct watch *w) {
  struct h_snapshot snap;
  if (h_snapshot_take(w->sim, &snap) < 0)
    return -1;
  size_t nq;
  const char **q = quoted_ids(snap.sent, &nq);
  long acked = 0, unanswered = 0, waiting = 0;
  const char *example = NULL;
  size_t i;
  json_t *e;
  json_array_foreach(snap.messages, i, e) {
    const char *id = json_string_value(json_object_get(e, "message_id"));
    int is_acked = json_is_true(json_object_get(e, "acked"));
    long replies = replies_to(q, nq, id);
    acked += is_acked;
    if (is_acked && replies == 0) {
      unanswered++;
      example = id;
    }
    if (!is_acked && replies == 0 &&
        json_integer_value(json_object_get(e, "push_count")) > 0)
      waiting++;
  }
  w->polls++;
  if (unanswered > w->may_lack_reply) {
    if (w->violations++ < 5)
      fprintf(stderr,
              "%ld message(s) acknowledged before the server accepted their reply "
              "(allowed %ld), e.g. %s\n",
              unanswered, w->may_lack_reply, example);
  }
  if (waiting)
    w->saw_waiting++;
  free(q);
  h_snapshot_free(&snap);
  return acked;
}

static void *watcher(void *arg) {
  struct watch *w = arg;
  for (int waited = 0; waited < w->timeout_ms; waited += 20) {
    if (watch_once(w) >= w->want_acked)
      break;
    h_sleep_ms(20);
  }
  h_sleep_ms(200);
  daemon_stop(w->d);
  return NULL;
}

static struct daemon *start(const char *dir, struct sim *sim, const char *ks,
                            const char *extra) {
  char ini[700];
  if (h_config(dir, sim, ks, extra, ini, sizeof ini) < 0)
    return NULL;
  struct config *cfg = NULL;
  if (config_load(ini, &cfg))
    return NULL;
  struct keystore *k = NULL;
  char err[256];
  if (keystore_load(cfg->keystore, 1, &k, err, sizeof err) < 0) {
    config_free(cfg);
    return NULL;
  }
  int ec;
  return daemon_new(cfg, k, echo, NULL, &ec);
}

static void run_daemon(struct daemon *d, struct watch *w) {
  pthread_t t;
  pthread_create(&t, NULL, watcher, w);
  CHECK_INT(daemon_run(d), 0);
  pthread_join(t, NULL);
}

struct expect {
  long created;       /* replies the server keeps */
  long dropped;       /* replies refused for good (their messages acked anyway) */
  long create_errors; /* refusals the fault injects */
  int drop;           /* the link drops once: 2 connections, acks may repeat */
  int see_waiting;    /* the watcher must catch a message waiting for its reply */
};

static void phase(const char *name, int n, const char *fault, struct expect want) {
  char dir[512], ks[600], pre[16];
  snprintf(dir, sizeof dir, "%s", h_dir(name));
  snprintf(pre, sizeof pre, "%d", n);
  const char *args[] = {"--preload", pre, fault ? "--fault" : NULL, fault, NULL};
  struct sim sim;
  if (h_keygen(dir, "ed25519", ks, sizeof ks) < 0 || h_sim_start(&sim, dir, ks, args) < 0)
    return;
  struct daemon *d = start(dir, &sim, ks, "request_timeout_ms = 5000\n");
  CHECK(d != NULL);
  if (!d) {
    h_sim_stop(&sim);
    return;
  }
  struct watch w = {&sim, d, n, want.dropped, 120000, 0, 0, 0};
  run_daemon(d, &w);
  fprintf(stderr,
          "%s: %d snapshots, %d with a message delivered and waiting for its reply\n",
          name, w.polls, w.saw_waiting);
  CHECK(w.polls > 0);
  CHECK_INT(w.violations, 0);
  if (want.see_waiting)
    CHECK(w.saw_waiting > 0); /* the check did look inside the window */
  /* And once more with everything settled. */
  CHECK_INT(watch_once(&w), n);
  CHECK_INT(w.violations, 0);
  struct daemon_counters c;
  daemon_get_counters(d, &c);
  CHECK_INT(c.processed, n);
  CHECK_INT(c.replies_accepted, want.created);
  CHECK_INT(c.replies_dropped, want.dropped);
  json_t *st = h_sim_stats(&sim);
  CHECK_INT(h_stat(st, "messages"), n);
  CHECK_INT(h_stat(st, "acked"), n);
  CHECK_INT(h_stat(st, "unacked"), 0);
  CHECK_INT(h_stat(st, "created"), want.created);
  CHECK_INT(h_stat(st, "create_errors"), want.create_errors);
  CHECK_INT(h_stat(st, "receipt_acks"), 0); /* receipts are never acked */
  CHECK_INT(h_stat(st, "acks_unknown"), 0);
  CHECK_INT(h_stat(st, "auth_failures"), 0);
  CHECK_INT(h_stat(st, "connections"), want.drop ? 2 : 1);
  if (!want.drop) {
    CHECK_INT(h_stat(st, "acked_twice"), 0);
    CHECK_INT(h_stat(st, "created_duplicates"), 0);
  }
  json_decref(st);

  /* Per message: the replies quoting it, and its acknowledgements. */
  struct h_snapshot snap;
  CHECK(h_snapshot_take(&sim, &snap) == 0);
  size_t nq = 0;
  const char **q = quoted_ids(snap.sent, &nq);
  long answered_once = 0, unanswered = 0, twice = 0, acked_once = 0, unacked = 0;
  size_t i;
  json_t *v;
  json_array_foreach(snap.messages, i, v) {
    long r = replies_to(q, nq, json_string_value(json_object_get(v, "message_id")));
    long acks = (long)json_integer_value(json_object_get(v, "ack_count"));
    answered_once += r == 1;
    unanswered += r == 0;
    twice += r > 1;
    acked_once += acks == 1;
    unacked += acks == 0;
  }
  CHECK_INT(answered_once, want.created);
  CHECK_INT(unanswered, want.dropped);
  CHECK_INT(twice, 0);
  CHECK_INT(unacked, 0);
  if (!want.drop)
    CHECK_INT(acked_once, n);
  free(q);

  /* Every reply answers its message (the text names the id it quotes), in
   * the conversation of that message. */
  int wrong = 0, wrong_text = 0;
  json_array_foreach(snap.sent, i, v) {
    const char *conv = json_string_value(json_object_get(v, "conversation_id"));
    const char *rcpt = json_string_value(json_object_get(v, "recipient_id"));
    const char *quote = json_string_value(json_object_get(v, "quote_message_id"));
    const char *text = json_string_value(json_object_get(v, "text"));
    char want_conv[UUID_STR_LEN], want_text[64];
    if (!conv || !rcpt ||
        uuid_unique_conversation(daemon_bot_id(d), rcpt, want_conv) < 0 ||
        strcmp(want_conv, conv) != 0)
      wrong++;
    snprintf(want_text, sizeof want_text, "echo %s message ", quote ? quote : "?");
    if (!quote || !text || strncmp(text, want_text, strlen(want_text)) != 0)
      wrong_text++;
  }
  CHECK_INT(wrong, 0);
  CHECK_INT(wrong_text, 0);
  CHECK_INT(json_array_size(snap.sent), want.created);
  h_snapshot_free(&snap);
  daemon_free(d);
  h_sim_stop(&sim);
}

int main(void) {
  log_set_level(LOGL_WARN);
  /* Plain echo of 2,000 messages. */
  phase("outbox-echo", 2000, NULL, (struct expect){2000, 0, 0, 0, 0});
  /* Retryable server errors: retried with backoff, same message_id. */
  phase("outbox-retry", 300, "create_error:7000x20", (struct expect){300, 0, 20, 0, 0});
  phase("outbox-429", 50, "create_error:429x3", (struct expect){50, 0, 3, 0, 0});
  /* Permanent errors: dropped, logged, the message still acknowledged. */
  phase("outbox-403", 200, "create_error:403x5", (struct expect){195, 5, 5, 0, 0});
  phase("outbox-10002", 20, "create_error:10002x2", (struct expect){18, 2, 2, 0, 0});
  /* Ack strictly after the reply was accepted: one message whose reply
   * fails three times; it must not be acked while no reply exists, and the
   * watcher must have seen it waiting (delivered, unanswered, unacked). */
  phase("outbox-order", 1, "create_error:7000x3", (struct expect){1, 0, 3, 0, 1});
  /* The link drops mid-stream with replies in flight. */
  phase("outbox-drop", 3000, "drop@1500", (struct expect){3000, 0, 0, 1, 0});
  return check_done("integration.outbox");
}
