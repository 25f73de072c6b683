/* SPDX-License-Identifier: MIT */
/*
 * host: see host.h. The services find their instance through the ctx a
 * plugin passes back; what they share with other threads (the timer list,
 * the saved states) is taken under the host mutex, and the bot id is read
 * without a lock. The instance's ledger (its timers in the list, its
 * work_outstanding count) is what lets the host know that nothing of a
 * plugin runs any more before its shutdown.
 */
#include "host.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "async.h"
#include "loader.h"
#include "log.h"
#include "outbox.h"
#include "plugin_host.h"
#include "util.h"

struct work {
  struct dispatch_item item;
  struct instance *inst;
  blazebot_work_fn work;
  blazebot_done_fn done;
  void *arg;
};

/* ---- host services ------------------------------------------------------- */

static struct instance *inst_of(blazebot_ctx *ctx) {
  return ctx ? ctx->inst : NULL;
}

static void svc_log(blazebot_ctx *ctx, int level, const char *fmt, ...) {
  struct instance *in = inst_of(ctx);
  char tag[80];
  snprintf(tag, sizeof tag, "plugin %s", in ? in->name : "?");
  va_list ap;
  va_start(ap, fmt);
  log_vmsg(level < 0 ? 0 : level > 3 ? 3 : level, tag, fmt, ap);
  va_end(ap);
}

/* key in the instance's section, or NULL. Under the host mutex, since a
 * config-only reload swaps the section on the plugin's strand while other
 * threads of the plugin may ask (plugin_host.h). With cfg, also a
 * reference to the snapshot the entry lives in (config_free it): the
 * entry stays valid after a swap until the caller is done with it. */
static const struct config_kv *find_kv(struct instance *in, const char *key,
                                       const struct config **cfg) {
  if (cfg)
    *cfg = NULL;
  if (!in || !key)
    return NULL;
  const struct config_kv *kv = NULL;
  pthread_mutex_lock(&in->h->mu);
  const struct config_plugin *sec = in->section;
  for (size_t i = 0; sec && i < sec->nkv && !kv; i++)
    if (strcmp(sec->kv[i].key, key) == 0)
      kv = &sec->kv[i];
  if (kv && cfg)
    *cfg = config_ref(in->cfg);
  pthread_mutex_unlock(&in->h->mu);
  return kv;
}

/* The value is borrowed until the next reconfigure (plugin.h): the old
 * snapshot is freed once reconfigure returned. */
static const char *svc_config_get(blazebot_ctx *ctx, const char *key) {
  const struct config_kv *kv = find_kv(inst_of(ctx), key, NULL);
  return kv ? kv->value : NULL;
}

static int svc_config_int(blazebot_ctx *ctx, const char *key, int64_t def, int64_t *out) {
  struct instance *in = inst_of(ctx);
  const struct config *cfg;
  const struct config_kv *kv = find_kv(in, key, &cfg);
  if (out)
    *out = def;
  if (!kv)
    return 0;
  char *end;
  errno = 0;
  long long v = strtoll(kv->value, &end, 10);
  int bad = errno || end == kv->value || *end;
  if (bad)
    log_error("%s:%d: [plugin.%s] %s: '%s' is not an integer", cfg->path, kv->line,
              in->name, key, kv->value);
  else if (out)
    *out = v;
  config_free(cfg);
  return bad ? -1 : 0;
}

static int svc_config_bool(blazebot_ctx *ctx, const char *key, int def, int *out) {
  struct instance *in = inst_of(ctx);
  const struct config *cfg;
  const struct config_kv *kv = find_kv(in, key, &cfg);
  if (out)
    *out = def;
  if (!kv)
    return 0;
  int v;
  int bad = loader_parse_bool(kv->value, &v) < 0;
  if (bad)
    log_error("%s:%d: [plugin.%s] %s: '%s' is not a boolean (true/false)", cfg->path,
              kv->line, in->name, key, kv->value);
  else if (out)
    *out = v;
  config_free(cfg);
  return bad ? -1 : 0;
}

/* Gives m the id derived from the message being handled, the plugin's name
 * and the send's ordinal within this call (see uuid_derive), unless the
 * plugin chose one. A retry or a reprocessing after a crash makes the same
 * sends in the same order and so reuses the ids: the server keeps one copy
 * and the user sees one reply. */
static int derive_id(struct instance *in, struct job *job, struct outbox_msg *m,
                     char buf[UUID_STR_LEN]) {
  if (!job || (m->message_id && *m->message_id))
    return 0;
  struct job_route *r = job->route;
  if (uuid_derive(job->id, in->name, atomic_fetch_add(&r->sent, 1) + 1, buf) < 0)
    return -1;
  m->message_id = buf;
  return 0;
}

/* A send was queued: its id goes to the plugin, and at debug level one line
 * says for which message (never what it says). */
static void queued(struct instance *in, struct job *job, const struct outbox_msg *m,
                   const char sent_id[UUID_STR_LEN], char id_out[BLAZEBOT_ID_LEN]) {
  if (id_out)
    memcpy(id_out, sent_id, UUID_STR_LEN);
  log_event_at(LOGL_DEBUG, "reply.queued", "message_id", sent_id, "in_reply_to",
               job ? job->id : NULL, "plugin", in->name, "conversation_id",
               m->conversation_id, "category", m->category, NULL);
}

static int svc_reply(blazebot_ctx *ctx, const struct blazebot_message *msg,
                     const char *category, const void *data, size_t len,
                     char id_out[BLAZEBOT_ID_LEN]) {
  struct instance *in = inst_of(ctx);
  if (!in || !msg || !category) {
    return -1;
  }
  struct job *job = async_current_job(in);
  struct hold *pin = NULL;
  if (!job || msg != atomic_load(&in->current_view)) {
    pin = async_pin(in, NULL, msg);
    job = pin ? pin->job : NULL;
  }
  if (!job) {
    log_warn("plugin %s: reply() outside on_message for that message (and not holding "
             "it); use send()",
             in->name);
    return -1;
  }
  struct outbox_msg m = {.conversation_id = msg->conversation_id,
                         .recipient_id = msg->user_id,
                         .category = category,
                         .data = data,
                         .len = len};
  char id[UUID_STR_LEN], sent_id[UUID_STR_LEN];
  int rc = derive_id(in, job, &m, id) < 0 ||
                   in->h->svc.send(in->h->svc.ud, job, &m, sent_id) != 0
               ? -1
               : 0;
  if (rc == 0)
    queued(in, job, &m, sent_id, id_out);
  if (pin)
    async_unpin(in, pin);
  return rc;
}

/* One send_result: in the instance's ledger (work_outstanding) from the
 * send until its done callback returned. */
struct send_ticket {
  struct dispatch_item item;
  struct instance *inst;
  blazebot_send_fn done;
  void *arg;
  int status, code;
  char id[UUID_STR_LEN];
};

static void ticket_run(struct dispatch_item *it) {
  struct send_ticket *t =
      (struct send_ticket *)((char *)it - offsetof(struct send_ticket, item));
  struct instance *in = t->inst;
  const struct blazebot_send_result r = {.size = sizeof r,
                                         .status = (uint32_t)t->status,
                                         .code = t->code,
                                         .message_id = t->id};
  t->done(in->state, t->arg, &r);
  free(t);
  atomic_fetch_sub(&in->work_outstanding, 1);
}

/* I/O thread (outbox_msg.result): taken to the instance's strand. */
static void ticket_settled(void *arg, int status, int code, const char *message_id) {
  struct send_ticket *t = arg;
  t->status = status == OUTBOX_ACCEPTED  ? BLAZEBOT_SEND_ACCEPTED
              : status == OUTBOX_REFUSED ? BLAZEBOT_SEND_REFUSED
                                         : BLAZEBOT_SEND_GAVE_UP;
  t->code = code;
  snprintf(t->id, sizeof t->id, "%s", message_id);
  t->item.run = ticket_run;
  dispatch_post(t->inst->h->disp, t->inst->slot->strand, &t->item);
}

static int send_common(struct instance *in, const struct blazebot_outgoing *om,
                       blazebot_send_fn done, void *arg, char id_out[BLAZEBOT_ID_LEN]);

static int svc_send(blazebot_ctx *ctx, const struct blazebot_outgoing *om,
                    char id_out[BLAZEBOT_ID_LEN]) {
  struct instance *in = inst_of(ctx);
  if (!in)
    return -1;
  return send_common(in, om, NULL, NULL, id_out);
}

static int svc_send_result(blazebot_ctx *ctx, const struct blazebot_outgoing *om,
                           blazebot_send_fn done, void *arg,
                           char id_out[BLAZEBOT_ID_LEN]) {
  struct instance *in = inst_of(ctx);
  if (!in || (done && atomic_load(&in->closing)))
    return -1;
  return send_common(in, om, done, arg, id_out);
}

/* Queues m tied to job (or to nothing), with a result ticket when done. */
static int send_tied(struct instance *in, struct job *job, struct outbox_msg *m,
                     blazebot_send_fn done, void *arg, char id_out[BLAZEBOT_ID_LEN]) {
  char id[UUID_STR_LEN];
  if (derive_id(in, job, m, id) < 0)
    return -1;
  struct send_ticket *t = NULL;
  if (done) {
    t = calloc(1, sizeof *t);
    if (!t)
      return -1;
    t->inst = in;
    t->done = done;
    t->arg = arg;
    m->result = ticket_settled;
    m->result_arg = t;
    atomic_fetch_add(&in->work_outstanding, 1);
    if (atomic_load(&in->closing)) {
      /* The shutdown began after svc_send_result's check: counted first,
       * then checked again, so it either waits for this ticket or the
       * send does not happen. */
      atomic_fetch_sub(&in->work_outstanding, 1);
      free(t);
      return -1;
    }
  }
  char sent_id[UUID_STR_LEN];
  if (in->h->svc.send(in->h->svc.ud, job, m, sent_id) != 0) {
    if (t) {
      atomic_fetch_sub(&in->work_outstanding, 1);
      free(t);
    }
    return -1;
  }
  queued(in, job, m, sent_id, id_out);
  return 0;
}

static int send_common(struct instance *in, const struct blazebot_outgoing *om,
                       blazebot_send_fn done, void *arg, char id_out[BLAZEBOT_ID_LEN]) {
  if (!om || om->size < offsetof(struct blazebot_outgoing, representative_id))
    return -1;
  struct blazebot_outgoing o;
  memset(&o, 0, sizeof o);
  memcpy(&o, om, om->size < sizeof o ? om->size : sizeof o);
  struct outbox_msg m = {.conversation_id = o.conversation_id,
                         .recipient_id = o.recipient_id,
                         .category = o.category,
                         .data = o.data,
                         .len = o.data_len,
                         .message_id = o.message_id,
                         .quote_message_id = o.quote_message_id,
                         .representative_id = o.representative_id,
                         .silent = (o.flags & BLAZEBOT_SEND_SILENT) != 0};
  struct job *job = async_current_job(in);
  struct hold *pin = NULL;
  if (o.hold) {
    pin = async_pin(in, o.hold, NULL);
    if (!pin) {
      log_warn("plugin %s: send() under a hold that is not taken (released already?)",
               in->name);
      return -1;
    }
    job = pin->job;
  }
  int rc = send_tied(in, job, &m, done, arg, id_out);
  if (pin)
    async_unpin(in, pin);
  return rc;
}

static int svc_uuid(blazebot_ctx *ctx, char out[BLAZEBOT_ID_LEN]) {
  (void)ctx;
  return uuid_v4(out);
}

static int svc_unique_conversation_id(blazebot_ctx *ctx, const char *a, const char *b,
                                      char out[BLAZEBOT_ID_LEN]) {
  (void)ctx;
  return uuid_unique_conversation(a, b, out);
}

static const char *svc_bot_id(blazebot_ctx *ctx) {
  struct instance *in = inst_of(ctx);
  const char *id = in ? atomic_load(&in->h->bot_id) : NULL;
  return id ? id : "";
}

void host_set_bot_id(struct plugin_host *h, const char *id) {
  const char *cur = h ? atomic_load(&h->bot_id) : NULL;
  if (!h || (cur && strcmp(cur, id) == 0))
    return;
  for (struct interned *i = h->bot_ids; i; i = i->next) {
    if (strcmp(i->s, id) == 0) {
      atomic_store(&h->bot_id, i->s);
      return;
    }
  }
  size_t n = strlen(id) + 1;
  struct interned *i = malloc(sizeof *i + n);
  if (!i) {
    log_error("plugins: out of memory recording the bot id; plugins keep the old one");
    return;
  }
  memcpy(i->s, id, n);
  i->next = h->bot_ids;
  h->bot_ids = i;
  atomic_store(&h->bot_id, i->s);
}

static void timer_run(struct dispatch_item *it);

/* Puts t in the host's timer list (the instance's ledger). */
static int timer_link(struct instance *in, struct timer *t, uint64_t *id_out) {
  pthread_mutex_lock(&in->h->mu);
  if (atomic_load(&in->closing)) {
    pthread_mutex_unlock(&in->h->mu);
    free(t);
    return -1;
  }
  t->id = ++in->h->next_timer_id;
  t->next = in->h->timers;
  in->h->timers = t;
  pthread_mutex_unlock(&in->h->mu);
  if (id_out)
    *id_out = t->id;
  return 0;
}

static int svc_timer_add(blazebot_ctx *ctx, uint32_t delay_ms, uint32_t repeat_ms,
                         blazebot_timer_fn fn, void *arg, uint64_t *id_out) {
  struct instance *in = inst_of(ctx);
  if (!in || !fn || atomic_load(&in->closing))
    return -1;
  struct timer *t = calloc(1, sizeof *t);
  if (!t)
    return -1;
  t->due = now_ms() + delay_ms;
  t->repeat = repeat_ms;
  t->inst = in;
  t->fn = fn;
  t->arg = arg;
  t->item.run = timer_run;
  return timer_link(in, t, id_out);
}

static int svc_timer_at(blazebot_ctx *ctx, int64_t wall_ms, blazebot_timer_fn fn,
                        void *arg, uint64_t *id_out) {
  struct instance *in = inst_of(ctx);
  if (!in || !fn || atomic_load(&in->closing))
    return -1;
  struct timer *t = calloc(1, sizeof *t);
  if (!t)
    return -1;
  t->wall_due = wall_ms > 0 ? wall_ms : 1;
  t->inst = in;
  t->fn = fn;
  t->arg = arg;
  t->item.run = timer_run;
  return timer_link(in, t, id_out);
}

static void timer_unlink_locked(struct plugin_host *h, struct timer *t) {
  for (struct timer **pp = &h->timers; *pp; pp = &(*pp)->next) {
    if (*pp == t) {
      *pp = t->next;
      return;
    }
  }
}

static int svc_timer_cancel(blazebot_ctx *ctx, uint64_t id) {
  struct instance *in = inst_of(ctx);
  if (!in)
    return -1;
  int rc = -1;
  pthread_mutex_lock(&in->h->mu);
  for (struct timer *t = in->h->timers; t; t = t->next) {
    if (t->id == id && t->inst == in && !t->cancelled) {
      t->cancelled = 1;
      if (!t->posted) {
        timer_unlink_locked(in->h, t);
        free(t);
      }
      rc = 0;
      break;
    }
  }
  pthread_mutex_unlock(&in->h->mu);
  return rc;
}

static void timer_run(struct dispatch_item *it) {
  struct timer *t = (struct timer *)((char *)it - offsetof(struct timer, item));
  struct instance *in = t->inst;
  struct plugin_host *h = in->h;
  pthread_mutex_lock(&h->mu);
  int cancelled = t->cancelled;
  pthread_mutex_unlock(&h->mu);
  if (!cancelled)
    t->fn(in->state, t->arg);
  pthread_mutex_lock(&h->mu);
  t->posted = 0;
  int drop = t->cancelled || !t->repeat;
  if (drop)
    timer_unlink_locked(h, t);
  pthread_mutex_unlock(&h->mu);
  if (drop)
    free(t);
  atomic_fetch_sub(&in->work_outstanding, 1);
}

static void work_done_run(struct dispatch_item *it) {
  struct work *w = (struct work *)((char *)it - offsetof(struct work, item));
  struct instance *in = w->inst;
  w->done(in->state, w->arg);
  free(w);
  atomic_fetch_sub(&in->work_outstanding, 1);
}

static void work_run(struct dispatch_item *it) {
  struct work *w = (struct work *)((char *)it - offsetof(struct work, item));
  struct instance *in = w->inst;
  w->work(w->arg);
  if (w->done) {
    w->item.run = work_done_run;
    dispatch_post(in->h->disp, in->slot->strand, &w->item);
    return;
  }
  free(w);
  atomic_fetch_sub(&in->work_outstanding, 1);
}

static int svc_run_blocking(blazebot_ctx *ctx, blazebot_work_fn fn, blazebot_done_fn done,
                            void *arg) {
  struct instance *in = inst_of(ctx);
  if (!in || !fn || atomic_load(&in->closing))
    return -1;
  struct work *w = calloc(1, sizeof *w);
  if (!w)
    return -1;
  w->inst = in;
  w->work = fn;
  w->done = done;
  w->arg = arg;
  w->item.run = work_run;
  atomic_fetch_add(&in->work_outstanding, 1);
  dispatch_post_blocking(in->h->disp, &w->item);
  return 0;
}

static void svc_set_error(blazebot_ctx *ctx, const char *fmt, ...) {
  struct instance *in = inst_of(ctx);
  if (!in || !in->in_init || !fmt)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(in->error, sizeof in->error, fmt, ap);
  va_end(ap);
}

static int svc_state_put(blazebot_ctx *ctx, const void *blob, size_t len) {
  struct instance *in = inst_of(ctx);
  if (!in || (!blob && len))
    return -1;
  struct saved_state *s = calloc(1, sizeof *s);
  if (!s || !(s->blob = malloc(len ? len : 1))) {
    free(s);
    return -1;
  }
  if (len)
    memcpy(s->blob, blob, len);
  s->len = len;
  snprintf(s->name, sizeof s->name, "%s", in->name);
  pthread_mutex_lock(&in->h->mu);
  /* The newest blob for a name replaces an older one. */
  for (struct saved_state **pp = &in->h->states; *pp; pp = &(*pp)->next) {
    if (strcmp((*pp)->name, in->name) == 0) {
      struct saved_state *old = *pp;
      *pp = old->next;
      free(old->blob);
      free(old);
      break;
    }
  }
  s->next = in->h->states;
  in->h->states = s;
  pthread_mutex_unlock(&in->h->mu);
  return 0;
}

static int svc_state_get(blazebot_ctx *ctx, const void **blob, size_t *len) {
  struct instance *in = inst_of(ctx);
  if (!in || !in->in_init || !blob || !len)
    return -1;
  int rc = -1;
  pthread_mutex_lock(&in->h->mu);
  for (struct saved_state *s = in->h->states; s; s = s->next) {
    if (strcmp(s->name, in->name) == 0) {
      *blob = s->blob;
      *len = s->len;
      rc = 0;
      break;
    }
  }
  pthread_mutex_unlock(&in->h->mu);
  return rc;
}

static int64_t svc_now_ms(blazebot_ctx *ctx, int clock) {
  (void)ctx;
  if (clock == BLAZEBOT_CLOCK_MONOTONIC)
    return now_ms();
  return clock == BLAZEBOT_CLOCK_WALL ? wall_ms() : -1;
}

static const char *svc_state_dir(blazebot_ctx *ctx) {
  struct instance *in = inst_of(ctx);
  return in && in->state_path[0] ? in->state_path : NULL;
}

static const char *svc_instance_name(blazebot_ctx *ctx) {
  struct instance *in = inst_of(ctx);
  return in ? in->name : NULL;
}

/* mkdir -m 0700 path unless it exists; then it must be a folder of this
 * user that no one else may read or write. */
static int private_dir(const char *path, char *err, size_t errlen) {
  if (mkdir(path, 0700) < 0 && errno != EEXIST) {
    snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (lstat(path, &st) < 0) {
    snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "%s is not a folder", path);
    return -1;
  }
  if (st.st_uid != geteuid()) {
    snprintf(err, errlen, "%s belongs to another user (uid %u)", path,
             (unsigned)st.st_uid);
    return -1;
  }
  if (st.st_mode & 0077) {
    snprintf(err, errlen, "%s is open to other users (mode %03o); chmod 700 it", path,
             (unsigned)(st.st_mode & 0777));
    return -1;
  }
  return 0;
}

void host_prepare(struct instance *in) {
  in->state_path[0] = 0;
  const char *base = in->cfg ? in->cfg->state_dir : NULL;
  if (!base)
    return;
  char path[sizeof in->state_path], err[1300];
  if ((size_t)snprintf(path, sizeof path, "%s/%s", base, in->name) >= sizeof path) {
    log_error("plugin %s: state_dir %s: the path is too long", in->name, base);
    return;
  }
  /* The base folder is made if missing (0700 too), but may be shared: its
   * mode is the operator's choice, the instance's folder is private. */
  err[0] = 0;
  if (mkdir(base, 0700) < 0 && errno != EEXIST)
    snprintf(err, sizeof err, "cannot create %s: %s", base, strerror(errno));
  else
    private_dir(path, err, sizeof err);
  if (err[0]) {
    log_error("plugin %s: state_dir: %s; state_dir() returns NULL to it", in->name, err);
    return;
  }
  memcpy(in->state_path, path, strlen(path) + 1);
}

struct blazebot_host host_table = {
    .size = sizeof(struct blazebot_host),
    .abi_minor = BLAZEBOT_ABI_MINOR,
    .log = svc_log,
    .config_get = svc_config_get,
    .config_int = svc_config_int,
    .config_bool = svc_config_bool,
    .reply = svc_reply,
    .send = svc_send,
    .uuid = svc_uuid,
    .unique_conversation_id = svc_unique_conversation_id,
    .bot_id = svc_bot_id,
    .timer_add = svc_timer_add,
    .timer_cancel = svc_timer_cancel,
    .run_blocking = svc_run_blocking,
    .set_error = svc_set_error,
    .state_put = svc_state_put,
    .state_get = svc_state_get,
    .api_request = async_api_request,
    .send_result = svc_send_result,
    .hold = async_hold,
    .release = async_release,
    .now_ms = svc_now_ms,
    .timer_at = svc_timer_at,
    .state_dir = svc_state_dir,
    .instance_name = svc_instance_name,
    .upload = async_upload,
};

void host_fire_timers(struct plugin_host *h, int64_t now) {
  int64_t wall = wall_ms();
  pthread_mutex_lock(&h->mu);
  for (struct timer *t = h->timers; t; t = t->next) {
    if (t->posted || t->cancelled || (t->wall_due ? t->wall_due > wall : t->due > now))
      continue;
    t->posted = 1;
    if (t->repeat)
      t->due = now + t->repeat;
    atomic_fetch_add(&t->inst->work_outstanding, 1);
    dispatch_post(h->disp, t->inst->slot->strand, &t->item);
  }
  pthread_mutex_unlock(&h->mu);
}

/* Cancels every timer of in (the ledger) and refuses new ones. Timers
 * already posted run as cancelled no-ops. Any thread. */
void host_cancel_timers(struct plugin_host *h, struct instance *in) {
  pthread_mutex_lock(&h->mu);
  atomic_store(&in->closing, 1);
  for (struct timer **pp = &h->timers; *pp;) {
    struct timer *t = *pp;
    if (t->inst == in) {
      t->cancelled = 1;
      if (!t->posted) {
        *pp = t->next;
        free(t);
        continue;
      }
    }
    pp = &t->next;
  }
  pthread_mutex_unlock(&h->mu);
}

int host_has_timers(struct plugin_host *h, struct instance *in) {
  int n = 0;
  pthread_mutex_lock(&h->mu);
  for (struct timer *t = h->timers; t; t = t->next)
    n += t->inst == in;
  pthread_mutex_unlock(&h->mu);
  return n;
}

void host_state_drop(struct plugin_host *h, const char *name) {
  pthread_mutex_lock(&h->mu);
  for (struct saved_state **pp = &h->states; *pp; pp = &(*pp)->next) {
    if (strcmp((*pp)->name, name) == 0) {
      struct saved_state *old = *pp;
      *pp = old->next;
      free(old->blob);
      free(old);
      break;
    }
  }
  pthread_mutex_unlock(&h->mu);
}

size_t host_state_len(struct plugin_host *h, const char *name, int *found) {
  size_t len = 0;
  *found = 0;
  pthread_mutex_lock(&h->mu);
  for (struct saved_state *s = h->states; s; s = s->next) {
    if (strcmp(s->name, name) == 0) {
      len = s->len;
      *found = 1;
      break;
    }
  }
  pthread_mutex_unlock(&h->mu);
  return len;
}
