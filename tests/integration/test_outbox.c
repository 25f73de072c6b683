/* SPDX-License-Identifier: MIT */
/*
 * Replies and at-least-once, with the daemon's modules in this process (a
 * handler that echoes every text) against the real simulator: every message
 * gets exactly one reply in its own conversation; a message is acknowledged
 * only after the server accepted its reply; retryable errors (7000, 429) are
 * retried with the same message_id; permanent ones (403, 10002) are dropped
 * and the message is still acknowledged; a link dropped mid-stream makes the
 * replies go again under the same ids and the server keeps one copy.
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
                           .len = (size_t)n};
  atomic_fetch_add(&handled, 1);
  (void)ud;
  return daemon_reply(d, job, &out, NULL) == 0 ? 0 : -1;
}

struct watch {
  struct sim *sim;
  struct daemon *d;
  long want_acked;
  int strict; /* check acked <= created on every poll */
  int violations;
  int timeout_ms;
};

static void *watcher(void *arg) {
  struct watch *w = arg;
  for (int waited = 0; waited < w->timeout_ms; waited += 20) {
    json_t *st = h_sim_stats(w->sim);
    long acked = h_stat(st, "acked"), created = h_stat(st, "created");
    json_decref(st);
    if (w->strict && acked > created)
      w->violations++;
    if (acked >= w->want_acked)
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

static void phase(const char *name, int n, const char *fault, long want_created,
                  long want_dropped, int strict) {
  char dir[512], ks[600], pre[16];
  snprintf(dir, sizeof dir, "%s", h_dir(name));
  CHECK(h_keygen(dir, "ed25519", ks, sizeof ks) == 0);
  snprintf(pre, sizeof pre, "%d", n);
  const char *args[] = {"--preload", pre, fault ? "--fault" : NULL, fault, NULL};
  struct sim sim;
  if (h_sim_start(&sim, dir, ks, args) < 0) {
    CHECK(!"simulator started");
    return;
  }
  struct daemon *d = start(dir, &sim, ks, "request_timeout_ms = 5000\n");
  CHECK(d != NULL);
  if (!d) {
    h_sim_stop(&sim);
    return;
  }
  struct watch w = {&sim, d, n, strict, 0, 120000};
  run_daemon(d, &w);
  CHECK_INT(w.violations, 0);
  struct daemon_counters c;
  daemon_get_counters(d, &c);
  CHECK_INT(c.processed, n);
  CHECK_INT(c.replies_accepted, want_created);
  CHECK_INT(c.replies_dropped, want_dropped);
  json_t *st = h_sim_stats(&sim);
  CHECK_INT(h_stat(st, "acked"), n);
  CHECK_INT(h_stat(st, "created"), want_created);
  CHECK_INT(h_stat(st, "receipt_acks"), 0); /* receipts are never acked */
  json_decref(st);

  /* Every reply is in the conversation of the message it answers. */
  json_t *sent = h_sim_get(&sim, "/_sim/sent");
  CHECK(json_is_array(sent));
  size_t i;
  json_t *v;
  int wrong = 0;
  json_array_foreach(sent, i, v) {
    const char *conv = json_string_value(json_object_get(v, "conversation_id"));
    const char *rcpt = json_string_value(json_object_get(v, "recipient_id"));
    char want[UUID_STR_LEN];
    if (!conv || !rcpt || uuid_unique_conversation(daemon_bot_id(d), rcpt, want) < 0 ||
        strcmp(want, conv) != 0)
      wrong++;
  }
  CHECK_INT(wrong, 0);
  CHECK_INT(json_array_size(sent), want_created);
  json_decref(sent);
  daemon_free(d);
  h_sim_stop(&sim);
}

int main(void) {
  log_set_level(LOGL_WARN);
  /* Plain echo of 2,000 messages. */
  phase("outbox-echo", 2000, NULL, 2000, 0, 0);
  /* Retryable server errors: retried with backoff, same message_id. */
  phase("outbox-retry", 300, "create_error:7000x20", 300, 0, 0);
  phase("outbox-429", 50, "create_error:429x3", 50, 0, 0);
  /* Permanent errors: dropped, logged, the message still acknowledged. */
  phase("outbox-403", 200, "create_error:403x5", 195, 5, 0);
  phase("outbox-10002", 20, "create_error:10002x2", 18, 2, 0);
  /* Ack strictly after the reply was accepted: one message whose reply
   * fails three times; it must not be acked while no reply exists. */
  phase("outbox-order", 1, "create_error:7000x3", 1, 0, 1);
  /* The link drops mid-stream with replies in flight. */
  phase("outbox-drop", 3000, "drop@1500", 3000, 0, 0);
  return check_done("integration.outbox");
}
