/* SPDX-License-Identifier: MIT */
/*
 * plugins: see plugins.h. Threads: loading, routing, timers and unloading
 * run on the main/I/O thread; plugin callbacks run on workers, each instance
 * on its own strand. The timer list and the saved-state map are shared with
 * workers and guarded by the host mutex; per-instance counters are atomics.
 * The host keeps a ledger per instance (timers, blocking work in flight) so
 * nothing of a plugin runs after its shutdown.
 */
#include "plugins.h"

#include <blazebot/plugin.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sys/types.h>

#include "buf.h"
#include "deadletter.h"
#include "log.h"
#include "outbox.h"
#include "util.h"

#define V1_MIN_DESC_SIZE                                                                 \
  (offsetof(struct blazebot_plugin, shutdown) + sizeof(void (*)(void *)))
#define MAX_SUBSCRIPTIONS 64

struct instance;

struct blazebot_ctx {
  struct instance *inst;
};

/* One subscription as the host applies it (ini overrides applied). */
struct sub {
  char pat[96];
  int32_t prio;
};

/* A plugin NAME's stable place in the host: owns the strand, the counters,
 * and an atomic pointer to the instance serving now (NULL while none: not
 * added yet, or removed). Routes and jobs hold slots, never instances, so a
 * reload swaps one pointer. Slots live until the host is freed. */
struct slot {
  struct slot *next;
  char name[64];
  struct dispatch_strand *strand;
  _Atomic(struct instance *) inst;
  int order; /* ini order, ties in routing */
  atomic_ullong delivered, handled, passed, retried, errors, gave_up;
};

struct instance {
  struct instance *next; /* the retiring list */
  char name[64];
  struct slot *slot;
  const struct config_plugin *section; /* changes only on the slot's strand */
  const struct config *cfg;
  struct plugin_host *h;
  void *dl;
  struct blazebot_plugin desc; /* min(size) copy, rest zero */
  void *state;
  struct blazebot_ctx ctx;
  atomic_int max_attempts;
  struct sub subs[MAX_SUBSCRIPTIONS];
  int nsubs;
  char src[1024];
  /* The file's identity when it was staged: a reload compares it. */
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
  int in_init;
  int initialised;        /* init succeeded: shutdown is owed */
  atomic_int closing;     /* no new timers or blocking work */
  atomic_int retire_done; /* retiring: shutdown ran (or is not owed) */
  int shut;               /* plugins_shutdown_all: shutdown ran (or is not owed) */
  int retire_posted;
  struct dispatch_item retire_item;
  char error[512];
  /* Inside on_message: the job and view being handled, and by which thread. */
  struct job *current_job;
  const struct blazebot_message *current_view;
  pthread_t current_thread;
  uint32_t sent_in_call;       /* messages sent during this on_message call */
  atomic_int work_outstanding; /* blocking work + timer items in flight */
};

struct route {
  char pattern[96];
  size_t plen;
  int prefix; /* pattern ended in '*' (plen excludes it) */
  int32_t priority;
  struct slot *slot;
};

/* Per-job routing state: the view handed to plugins and the subscriber list
 * computed when the message arrived. */
struct job_route {
  struct job_route *next_free;
  struct plugin_host *h;
  struct blazebot_message view;
  int nsubs, idx, attempt, cap;
  struct slot *subs[]; /* cap entries (>= the slots when routed) */
};

struct timer {
  struct timer *next;
  struct dispatch_item item;
  uint64_t id;
  int64_t due;
  uint32_t repeat;
  int posted;
  int cancelled;
  struct instance *inst;
  blazebot_timer_fn fn;
  void *arg;
};

struct work {
  struct dispatch_item item;
  struct instance *inst;
  blazebot_work_fn work;
  blazebot_done_fn done;
  void *arg;
};

struct saved_state {
  struct saved_state *next;
  char name[64];
  void *blob;
  size_t len;
};

struct interned {
  struct interned *next;
  char s[];
};

struct reload;

struct plugin_host {
  struct plugin_host_services svc; /* the daemon's services (see plugins.h) */
  struct dispatch *disp;
  const struct config *cfg;
  struct slot *slots;
  size_t nslots;
  struct route *routes;
  size_t nroutes;
  char stage_dir[256];
  unsigned gen;
  struct job_route *route_pool;
  struct reload *reload;     /* the reload in progress, or NULL */
  struct instance *retiring; /* replaced instances not yet unloaded */
  uint64_t kept_mapped;      /* old generations left mapped */

  pthread_mutex_t mu; /* timers, saved states */
  struct timer *timers;
  uint64_t next_timer_id;
  struct saved_state *states;
  /* Every bot id this run has had, never freed before the host: what
   * bot_id() returned stays valid for as long as plugin.h promises. The
   * current one is read by workers without a lock. */
  struct interned *bot_ids;
  _Atomic(const char *) bot_id;
  int shut_down; /* plugins_shutdown_all ran */
  int abandoned; /* instances still busy when it gave up: never unmap */
  /* Set once the daemon's loop ended: queued deliveries are skipped, so no
   * on_message starts while the instances shut down. */
  atomic_int stopping;
  struct deadletter *dl; /* set before any delivery; thread-safe */
};

static struct blazebot_host host_table; /* filled below, never changes */

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

static const struct config_kv *find_kv(struct instance *in, const char *key) {
  if (!in || !in->section || !key)
    return NULL;
  for (size_t i = 0; i < in->section->nkv; i++)
    if (strcmp(in->section->kv[i].key, key) == 0)
      return &in->section->kv[i];
  return NULL;
}

static const char *svc_config_get(blazebot_ctx *ctx, const char *key) {
  const struct config_kv *kv = find_kv(inst_of(ctx), key);
  return kv ? kv->value : NULL;
}

static int svc_config_int(blazebot_ctx *ctx, const char *key, int64_t def, int64_t *out) {
  struct instance *in = inst_of(ctx);
  const struct config_kv *kv = find_kv(in, key);
  if (out)
    *out = def;
  if (!kv)
    return 0;
  char *end;
  errno = 0;
  long long v = strtoll(kv->value, &end, 10);
  if (errno || end == kv->value || *end) {
    log_error("%s:%d: [plugin.%s] %s: '%s' is not an integer", in->cfg->path, kv->line,
              in->name, key, kv->value);
    return -1;
  }
  if (out)
    *out = v;
  return 0;
}

static int parse_bool(const char *s, int *out) {
  static const char *const t[] = {"1", "true", "yes", "on"};
  static const char *const f[] = {"0", "false", "no", "off"};
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(s, t[i]) == 0) {
      *out = 1;
      return 0;
    }
    if (strcasecmp(s, f[i]) == 0) {
      *out = 0;
      return 0;
    }
  }
  return -1;
}

static int svc_config_bool(blazebot_ctx *ctx, const char *key, int def, int *out) {
  struct instance *in = inst_of(ctx);
  const struct config_kv *kv = find_kv(in, key);
  if (out)
    *out = def;
  if (!kv)
    return 0;
  int v;
  if (parse_bool(kv->value, &v) < 0) {
    log_error("%s:%d: [plugin.%s] %s: '%s' is not a boolean (true/false)", in->cfg->path,
              kv->line, in->name, key, kv->value);
    return -1;
  }
  if (out)
    *out = v;
  return 0;
}

/* The job a send from this thread belongs to: only the thread running
 * on_message for the instance, during that call. */
static struct job *current_job(struct instance *in) {
  if (in->current_job && pthread_equal(in->current_thread, pthread_self()))
    return in->current_job;
  return NULL;
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
  if (uuid_derive(job->id, in->name, ++in->sent_in_call, buf) < 0)
    return -1;
  m->message_id = buf;
  return 0;
}

static int svc_reply(blazebot_ctx *ctx, const struct blazebot_message *msg,
                     const char *category, const void *data, size_t len,
                     char id_out[BLAZEBOT_ID_LEN]) {
  struct instance *in = inst_of(ctx);
  if (!in || !msg || !category) {
    return -1;
  }
  struct job *job = current_job(in);
  if (!job || msg != in->current_view) {
    log_warn("plugin %s: reply() outside on_message for that message; use send()",
             in->name);
    return -1;
  }
  struct outbox_msg m = {.conversation_id = msg->conversation_id,
                         .recipient_id = msg->user_id,
                         .category = category,
                         .data = data,
                         .len = len};
  char id[UUID_STR_LEN];
  if (derive_id(in, job, &m, id) < 0)
    return -1;
  return in->h->svc.send(in->h->svc.ud, job, &m, id_out) == 0 ? 0 : -1;
}

static int svc_send(blazebot_ctx *ctx, const struct blazebot_outgoing *om,
                    char id_out[BLAZEBOT_ID_LEN]) {
  struct instance *in = inst_of(ctx);
  if (!in || !om || om->size < offsetof(struct blazebot_outgoing, representative_id))
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
  struct job *job = current_job(in);
  char id[UUID_STR_LEN];
  if (derive_id(in, job, &m, id) < 0)
    return -1;
  return in->h->svc.send(in->h->svc.ud, job, &m, id_out) == 0 ? 0 : -1;
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

void plugins_set_deadletter(struct plugin_host *h, struct deadletter *dl) {
  if (h)
    h->dl = dl;
}

void plugins_set_bot_id(struct plugin_host *h, const char *id) {
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

static struct blazebot_host host_table = {
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
};

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
static void deliver_run(struct dispatch_item *it) {
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

static int route_matches(const struct route *rt, const char *category) {
  if (rt->prefix)
    return strncmp(category, rt->pattern, rt->plen) == 0;
  return strcmp(category, rt->pattern) == 0;
}

static int route(struct plugin_host *h, struct job *job, const char *only);
static struct slot *slot_find(struct plugin_host *h, const char *name);

int plugins_route(struct plugin_host *h, struct job *job) {
  return route(h, job, NULL);
}

int plugins_route_to(struct plugin_host *h, struct job *job, const char *name) {
  return route(h, job, name);
}

/* only: deliver to that plugin alone, whatever it subscribes to (replay). */
static int route(struct plugin_host *h, struct job *job, const char *only) {
  if (!h || (!h->nroutes && !only))
    return 0;
  struct job_route *r = h->route_pool;
  if (r && r->cap < (int)h->nslots) {
    /* Slots were added by a reload since this one was made. */
    h->route_pool = r->next_free;
    free(r);
    r = NULL;
  }
  if (r) {
    h->route_pool = r->next_free;
  } else {
    r = malloc(sizeof *r + h->nslots * sizeof r->subs[0]);
    if (!r)
      return -1;
    r->cap = (int)h->nslots;
  }
  r->h = h;
  r->nsubs = 0;
  const char *cat = job->msg->category;
  if (only) {
    struct slot *sl = slot_find(h, only);
    if (sl && atomic_load(&sl->inst) && r->cap > 0)
      r->subs[r->nsubs++] = sl;
  }
  /* Routes are sorted by priority; a slot matching through several
   * patterns is delivered once, at its first (highest) position. */
  for (size_t i = 0; !only && i < h->nroutes; i++) {
    if (!route_matches(&h->routes[i], cat))
      continue;
    struct slot *sl = h->routes[i].slot;
    int dup = 0;
    for (int k = 0; k < r->nsubs; k++)
      dup |= r->subs[k] == sl;
    if (!dup && r->nsubs < r->cap)
      r->subs[r->nsubs++] = sl;
  }
  if (!r->nsubs) {
    r->next_free = h->route_pool;
    h->route_pool = r;
    return 0;
  }
  const struct message *m = job->msg;
  r->view = (struct blazebot_message){
      .size = sizeof(struct blazebot_message),
      .attempt = 1,
      .message_id = m->message_id,
      .conversation_id = m->conversation_id,
      .user_id = m->user_id,
      .representative_id = m->representative_id,
      .quote_message_id = m->quote_message_id,
      .session_id = m->session_id,
      .category = m->category,
      .source = m->source,
      .status = m->status,
      .created_at = m->created_at,
      .updated_at = m->updated_at,
      .data = m->data,
      .data_len = m->data_len,
      .raw_json = m->raw_json,
      .raw_json_len = m->raw_json_len,
  };
  r->idx = 0;
  r->attempt = 1;
  job->route = r;
  job->item.run = deliver_run;
  dispatch_post(h->disp, r->subs[0]->strand, &job->item);
  return 1;
}

void plugins_job_done(struct plugin_host *h, struct job *job) {
  struct job_route *r = job->route;
  if (!r || !h)
    return;
  job->route = NULL;
  r->next_free = h->route_pool;
  h->route_pool = r;
}

static void reload_poll(struct plugin_host *h, int64_t now);
static void retire_poll(struct plugin_host *h);

void plugins_tick(struct plugin_host *h, int64_t now) {
  if (!h)
    return;
  plugins_poll(h, now);
  pthread_mutex_lock(&h->mu);
  for (struct timer *t = h->timers; t; t = t->next) {
    if (t->posted || t->cancelled || t->due > now)
      continue;
    t->posted = 1;
    if (t->repeat)
      t->due = now + t->repeat;
    atomic_fetch_add(&t->inst->work_outstanding, 1);
    dispatch_post(h->disp, t->inst->slot->strand, &t->item);
  }
  pthread_mutex_unlock(&h->mu);
}
/* ---- loading ------------------------------------------------------------------- */

static int safe_mode(const struct stat *st, const char *what, const char *path, char *err,
                     size_t errlen) {
  if (st->st_mode & (S_IWGRP | S_IWOTH)) {
    snprintf(err, errlen,
             "%s %s is writable by group or others (mode %04o); refusing to load", what,
             path, (unsigned)(st->st_mode & 07777));
    return -1;
  }
  if (st->st_uid != 0 && st->st_uid != geteuid()) {
    snprintf(err, errlen, "%s %s belongs to uid %u, neither root nor the daemon's user",
             what, path, (unsigned)st->st_uid);
    return -1;
  }
  return 0;
}

/* Copies the plugin file (opened without following links, checked on the
 * open descriptor) to a private staged file: glibc would hand back the old
 * handle for a path it already has loaded, and the copy cannot be changed
 * under us after the checks. */
static int stage(struct plugin_host *h, const char *name, const char *src, char *dst,
                 size_t dstlen, struct stat *id, char *err, size_t errlen) {
  int in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0) {
    snprintf(err, errlen, "cannot open %s: %s", src,
             errno == ELOOP ? "it is a symbolic link" : strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "%s is not a regular file", src);
    close(in);
    return -1;
  }
  if (safe_mode(&st, "plugin file", src, err, errlen) < 0) {
    close(in);
    return -1;
  }
  *id = st;
  snprintf(dst, dstlen, "%s/%s.%u.so", h->stage_dir, name, ++h->gen);
  int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
  if (out < 0) {
    snprintf(err, errlen, "cannot stage %s: %s", src, strerror(errno));
    close(in);
    return -1;
  }
  char buf[65536];
  ssize_t n;
  int rc = 0;
  while ((n = read(in, buf, sizeof buf)) > 0) {
    if (write(out, buf, (size_t)n) != n) {
      rc = -1;
      break;
    }
  }
  if (n < 0)
    rc = -1;
  close(in);
  if (close(out) < 0)
    rc = -1;
  if (rc < 0) {
    snprintf(err, errlen, "cannot stage %s: %s", src, strerror(errno));
    unlink(dst);
  }
  return rc;
}

/* The subscriptions of in under section sec: the ini's categories/priority
 * override the descriptor's table. */
static int parse_subs(const struct instance *in, const struct config_plugin *sec,
                      const struct config *cfg, struct sub *subs, int *nout, char *err,
                      size_t errlen) {
  const struct config_kv *cats = NULL, *prio = NULL;
  for (size_t i = 0; i < sec->nkv; i++) {
    if (strcmp(sec->kv[i].key, "categories") == 0)
      cats = &sec->kv[i];
    else if (strcmp(sec->kv[i].key, "priority") == 0)
      prio = &sec->kv[i];
  }
  int32_t prio_v = 0;
  if (prio) {
    char *end;
    long v = strtol(prio->value, &end, 10);
    if (end == prio->value || *end || v < -1000000 || v > 1000000) {
      snprintf(err, errlen, "%s:%d: priority must be an integer", cfg->path, prio->line);
      return -1;
    }
    prio_v = (int32_t)v;
  }
  int n = 0;
  if (cats) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", cats->value);
    char *save = NULL;
    for (char *tok = strtok_r(tmp, ", \t", &save); tok && n < MAX_SUBSCRIPTIONS;
         tok = strtok_r(NULL, ", \t", &save)) {
      snprintf(subs[n].pat, sizeof subs[n].pat, "%s", tok);
      subs[n++].prio = prio_v;
    }
  } else if (in->desc.subscriptions) {
    for (const struct blazebot_subscription *s = in->desc.subscriptions;
         s->category && n < MAX_SUBSCRIPTIONS; s++) {
      snprintf(subs[n].pat, sizeof subs[n].pat, "%s", s->category);
      subs[n++].prio = prio ? prio_v : s->priority;
    }
  }
  for (int i = 0; i < n; i++) {
    char *star = strchr(subs[i].pat, '*');
    if (!subs[i].pat[0] || (star && star[1])) {
      snprintf(err, errlen, "bad category pattern '%s' (exact, PREFIX_* or *)",
               subs[i].pat);
      return -1;
    }
  }
  *nout = n;
  return 0;
}

static int parse_max_attempts(const struct config_plugin *sec, const struct config *cfg,
                              int *out, char *err, size_t errlen) {
  *out = -1; /* not set: the plugin's default (see max_attempts_for) */
  for (size_t i = 0; i < sec->nkv; i++) {
    const struct config_kv *kv = &sec->kv[i];
    if (strcmp(kv->key, "max_attempts") != 0)
      continue;
    char *end;
    long v = strtol(kv->value, &end, 10);
    if (end == kv->value || *end || v < 0 || v > 100) {
      snprintf(err, errlen, "%s:%d: max_attempts must be 0 (never give up) .. 100",
               cfg->path, kv->line);
      return -1;
    }
    *out = (int)v;
  }
  return 0;
}

/* The ini's max_attempts, or the plugin's default: 0 (never give up) for a
 * plugin flagged RETRY_FOREVER, else 5. */
static int max_attempts_for(int parsed, const struct blazebot_plugin *desc) {
  if (parsed >= 0)
    return parsed;
  return (desc->flags & BLAZEBOT_FLAG_RETRY_FOREVER) ? 0 : 5;
}

/* Rebuilds the routing table from the slots' current instances. I/O thread. */
static int rebuild_routes(struct plugin_host *h) {
  size_t n = 0;
  for (struct slot *sl = h->slots; sl; sl = sl->next) {
    struct instance *in = atomic_load(&sl->inst);
    if (in)
      n += (size_t)in->nsubs;
  }
  struct route *nr = calloc(n ? n : 1, sizeof *nr);
  if (!nr)
    return -1;
  size_t k = 0;
  for (struct slot *sl = h->slots; sl; sl = sl->next) {
    struct instance *in = atomic_load(&sl->inst);
    if (!in)
      continue;
    if (!in->nsubs)
      log_warn("plugin %s subscribes to no category; it will receive no messages",
               in->name);
    for (int i = 0; i < in->nsubs; i++) {
      struct route *rt = &nr[k++];
      snprintf(rt->pattern, sizeof rt->pattern, "%s", in->subs[i].pat);
      char *star = strchr(rt->pattern, '*');
      rt->prefix = star != NULL;
      if (star)
        *star = 0;
      rt->plen = strlen(rt->pattern);
      rt->priority = in->subs[i].prio;
      rt->slot = sl;
    }
  }
  free(h->routes);
  h->routes = nr;
  h->nroutes = n;
  return 0;
}

static int route_cmp(const void *a, const void *b) {
  const struct route *x = a, *y = b;
  if (x->priority != y->priority)
    return x->priority > y->priority ? -1 : 1;
  return x->slot->order - y->slot->order;
}

static void routes_commit(struct plugin_host *h) {
  if (rebuild_routes(h) == 0)
    qsort(h->routes, h->nroutes, sizeof *h->routes, route_cmp);
  else
    log_error("plugins: out of memory rebuilding the routing table; keeping the old one");
}

/* Drops an instance whose init never ran or failed: nothing of it is
 * registered with the host any more (see inst_cancel_timers). */
static void inst_free(struct instance *in, int may_unload) {
  if (!in)
    return;
  if (in->dl && may_unload)
    dlclose(in->dl);
  config_free(in->cfg);
  free(in);
}

static int is_enabled(const struct config *cfg, const struct config_plugin *sec,
                      int *bad) {
  int on = 1;
  if (bad)
    *bad = 0;
  for (size_t k = 0; k < sec->nkv; k++) {
    if (strcmp(sec->kv[k].key, "enabled") == 0 && parse_bool(sec->kv[k].value, &on) < 0) {
      if (bad) {
        log_error("%s:%d: [plugin.%s] enabled must be true or false", cfg->path,
                  sec->kv[k].line, sec->name);
        *bad = 1;
      }
      on = 0;
    }
  }
  return on;
}

/* The section's enabled key is present but not a boolean. */
static int enabled_bad(const struct config_plugin *sec) {
  int on;
  for (size_t k = 0; k < sec->nkv; k++)
    if (strcmp(sec->kv[k].key, "enabled") == 0 && parse_bool(sec->kv[k].value, &on) < 0)
      return 1;
  return 0;
}

/* plugin_dir/file of a section, checked to stay inside plugin_dir. */
static int plugin_src(const struct config *cfg, const struct config_plugin *sec,
                      char *src, size_t srclen, char *err, size_t errlen) {
  const struct config_kv *kv = NULL;
  for (size_t i = 0; i < sec->nkv; i++)
    if (strcmp(sec->kv[i].key, "path") == 0)
      kv = &sec->kv[i];
  char file[512];
  if (kv)
    snprintf(file, sizeof file, "%s", kv->value);
  else
    snprintf(file, sizeof file, "%s.so", sec->name);
  if (strchr(file, '/') || strcmp(file, "..") == 0 || file[0] == '.' || !file[0]) {
    snprintf(
        err, errlen,
        "%s:%d: path '%s' must be a file name inside plugin_dir (plugins load only from "
        "there)",
        cfg->path, kv ? kv->line : sec->line, file);
    return -1;
  }
  snprintf(src, srclen, "%s/%s", cfg->plugin_dir, file);
  return 0;
}

static int check_plugin_dir(const struct config *cfg, char *err, size_t errlen) {
  struct stat st;
  if (!cfg->plugin_dir) {
    snprintf(err, errlen,
             "%s: plugins are configured but [blazebot] plugin_dir is not set",
             cfg->path);
    return -1;
  }
  if (stat(cfg->plugin_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "plugin_dir %s is not a directory", cfg->plugin_dir);
    return -1;
  }
  return safe_mode(&st, "plugin_dir", cfg->plugin_dir, err, errlen);
}

static int ensure_stage_dir(struct plugin_host *h, char *err, size_t errlen) {
  if (h->stage_dir[0])
    return 0;
  const char *tmp = getenv("TMPDIR");
  snprintf(h->stage_dir, sizeof h->stage_dir, "%s/blazebot-plugins.XXXXXX",
           tmp && tmp[0] == '/' ? tmp : "/tmp");
  if (!mkdtemp(h->stage_dir)) {
    snprintf(err, errlen, "cannot create a staging folder in %s: %s", tmp ? tmp : "/tmp",
             strerror(errno));
    h->stage_dir[0] = 0;
    return -1;
  }
  return 0;
}

/* Stages, opens and checks the plugin of [plugin.NAME] sec (no init, no
 * slot). On refusal returns NULL with the reason in err. */
static struct instance *inst_open(struct plugin_host *h, const struct config *cfg,
                                  const struct config_plugin *sec, char *err,
                                  size_t errlen) {
  struct instance *in = calloc(1, sizeof *in);
  if (!in) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  snprintf(in->name, sizeof in->name, "%s", sec->name);
  in->section = sec;
  in->cfg = config_ref(cfg); /* the section's strings are borrowed from it */
  in->h = h;
  in->ctx.inst = in;
  int max_attempts;
  if (parse_max_attempts(sec, cfg, &max_attempts, err, errlen) < 0)
    goto fail;
  char staged[600];
  const char *src = in->src;
  struct stat id;
  if (plugin_src(cfg, sec, in->src, sizeof in->src, err, errlen) < 0 ||
      ensure_stage_dir(h, err, errlen) < 0 ||
      stage(h, sec->name, src, staged, sizeof staged, &id, err, errlen) < 0)
    goto fail;
  in->dev = id.st_dev;
  in->ino = id.st_ino;
  in->size = id.st_size;
  in->mtime = id.st_mtim;
  in->dl = dlopen(staged, RTLD_NOW | RTLD_LOCAL);
  unlink(staged); /* the mapping stays; nothing is left on disk */
  if (!in->dl) {
    const char *e = dlerror();
    /* dlerror names the staged copy, which is already gone: drop it. */
    size_t sl = strlen(staged);
    if (e && strncmp(e, staged, sl) == 0 && strncmp(e + sl, ": ", 2) == 0)
      e += sl + 2;
    snprintf(err, errlen, "%s: cannot load: %s", src, e ? e : "unknown error");
    goto fail;
  }
  typedef const struct blazebot_plugin *(*entry_fn)(void);
  entry_fn entry;
  *(void **)&entry = dlsym(in->dl, BLAZEBOT_ENTRY_SYMBOL);
  if (!entry) {
    for (int major = 2; major < 10; major++) {
      char sym[32];
      snprintf(sym, sizeof sym, "blazebot_plugin_v%d", major);
      if (dlsym(in->dl, sym)) {
        snprintf(err, errlen,
                 "%s: built for plugin ABI major %d; this daemon speaks major %d", src,
                 major, BLAZEBOT_ABI_MAJOR);
        goto fail;
      }
    }
    snprintf(err, errlen, "%s: no %s entry symbol (not a blazebot plugin?)", src,
             BLAZEBOT_ENTRY_SYMBOL);
    goto fail;
  }
  const struct blazebot_plugin *desc = entry();
  if (!desc) {
    snprintf(err, errlen, "%s: %s() returned no descriptor", src, BLAZEBOT_ENTRY_SYMBOL);
    goto fail;
  }
  if (desc->size < V1_MIN_DESC_SIZE) {
    snprintf(err, errlen,
             "%s: descriptor too small (%u bytes; ABI 1.0 needs at least %zu)", src,
             desc->size, (size_t)V1_MIN_DESC_SIZE);
    goto fail;
  }
  if (desc->abi_major != BLAZEBOT_ABI_MAJOR) {
    snprintf(err, errlen,
             "%s: built for plugin ABI major %u; this daemon speaks major %d", src,
             desc->abi_major, BLAZEBOT_ABI_MAJOR);
    goto fail;
  }
  if (desc->abi_minor > BLAZEBOT_ABI_MINOR) {
    snprintf(
        err, errlen,
        "%s: built for plugin ABI 1.%u, newer than this daemon's 1.%d; upgrade blazebot",
        src, desc->abi_minor, BLAZEBOT_ABI_MINOR);
    goto fail;
  }
  memcpy(&in->desc, desc, desc->size < sizeof in->desc ? desc->size : sizeof in->desc);
  atomic_init(&in->max_attempts, max_attempts_for(max_attempts, &in->desc));
  if (!in->desc.name || !in->desc.name[0]) {
    snprintf(err, errlen, "%s: the descriptor has no name", src);
    goto fail;
  }
  const char *missing = !in->desc.init         ? "init"
                        : !in->desc.on_message ? "on_message"
                        : !in->desc.shutdown   ? "shutdown"
                                               : NULL;
  if (missing) {
    snprintf(err, errlen, "%s: missing required callback %s", src, missing);
    goto fail;
  }
  if (parse_subs(in, sec, cfg, in->subs, &in->nsubs, err, errlen) < 0)
    goto fail;
  return in;
fail:
  /* No plugin callback ran (only its constructors, if any): safe to close. */
  inst_free(in, 1);
  return NULL;
}

/* The slot whose current instance has descriptor name dname, other than
 * except, or NULL. */
static struct slot *desc_name_used(struct plugin_host *h, const char *dname,
                                   const struct slot *except) {
  for (struct slot *sl = h->slots; sl; sl = sl->next) {
    struct instance *o = atomic_load(&sl->inst);
    if (sl != except && o && strcmp(o->desc.name, dname) == 0)
      return sl;
  }
  return NULL;
}

static struct slot *slot_find(struct plugin_host *h, const char *name) {
  for (struct slot *sl = h->slots; sl; sl = sl->next)
    if (strcmp(sl->name, name) == 0)
      return sl;
  return NULL;
}

static struct slot *slot_get(struct plugin_host *h, const char *name) {
  struct slot *sl = slot_find(h, name);
  if (sl)
    return sl;
  sl = calloc(1, sizeof *sl);
  if (!sl || !(sl->strand = dispatch_strand_new(h->disp))) {
    free(sl);
    return NULL;
  }
  snprintf(sl->name, sizeof sl->name, "%s", name);
  /* Appended: stats and ties keep the order slots appeared in. */
  struct slot **pp = &h->slots;
  while (*pp)
    pp = &(*pp)->next;
  *pp = sl;
  h->nslots++;
  return sl;
}

/* Cancels every timer of in (the ledger) and refuses new ones. Timers
 * already posted run as cancelled no-ops. Any thread. */
static void inst_cancel_timers(struct plugin_host *h, struct instance *in) {
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

static int inst_has_timers(struct plugin_host *h, struct instance *in) {
  int n = 0;
  pthread_mutex_lock(&h->mu);
  for (struct timer *t = h->timers; t; t = t->next)
    n += t->inst == in;
  pthread_mutex_unlock(&h->mu);
  return n;
}

static void state_drop(struct plugin_host *h, const char *name) {
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

static size_t state_len(struct plugin_host *h, const char *name, int *found) {
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

static void log_loaded(const struct instance *in) {
  log_info("plugin %s loaded: %s %s from %s%s", in->name, in->desc.name,
           in->desc.version ? in->desc.version : "", in->src,
           (in->desc.flags & BLAZEBOT_FLAG_UNLOAD_SAFE) ? " (unload-safe)" : "");
}

/* Startup: loads one [plugin.NAME] and initialises it on this thread. */
static int load_one(struct plugin_host *h, const struct config_plugin *sec, int order,
                    char *err, size_t errlen) {
  struct instance *in = inst_open(h, h->cfg, sec, err, errlen);
  if (!in)
    return -1;
  struct slot *other = desc_name_used(h, in->desc.name, NULL);
  if (other) {
    snprintf(err, errlen,
             "%s: duplicate plugin name '%s' (already loaded as [plugin.%s])", in->src,
             in->desc.name, other->name);
    inst_free(in, 1);
    return -1;
  }
  struct slot *sl = slot_get(h, sec->name);
  if (!sl) {
    snprintf(err, errlen, "out of memory");
    inst_free(in, 1);
    return -1;
  }
  sl->order = order;
  in->slot = sl;
  in->in_init = 1;
  int rc = in->desc.init(&in->ctx, &host_table, &in->state);
  in->in_init = 0;
  if (rc < 0) {
    snprintf(err, errlen, "%s: init failed (%d): %s", in->src, rc,
             in->error[0] ? in->error : "no reason given");
    inst_cancel_timers(h, in);
    inst_free(in, (in->desc.flags & BLAZEBOT_FLAG_UNLOAD_SAFE) != 0);
    return -1;
  }
  in->initialised = 1;
  atomic_store(&sl->inst, in);
  log_loaded(in);
  return 0;
}

struct plugin_host *plugins_new(const struct config *cfg,
                                const struct plugin_host_services *svc,
                                struct dispatch *disp, const char *bot_id, int *refused) {
  *refused = 0;
  struct plugin_host *h = calloc(1, sizeof *h);
  if (!h)
    return NULL;
  plugins_set_bot_id(h, bot_id);
  h->svc = *svc;
  h->disp = disp;
  h->cfg = config_ref(cfg);
  pthread_mutex_init(&h->mu, NULL);

  int enabled = 0;
  for (size_t i = 0; i < cfg->nplugins; i++) {
    int bad;
    enabled += is_enabled(cfg, &cfg->plugins[i], &bad);
    *refused += bad;
  }
  if (!enabled)
    return h;
  char err[1024];
  if (check_plugin_dir(cfg, err, sizeof err) < 0 ||
      ensure_stage_dir(h, err, sizeof err) < 0) {
    log_error("%s", err);
    *refused += enabled;
    return h;
  }
  for (size_t i = 0; i < cfg->nplugins; i++) {
    const struct config_plugin *sec = &cfg->plugins[i];
    if (!is_enabled(cfg, sec, NULL))
      continue;
    if (load_one(h, sec, (int)i, err, sizeof err) < 0) {
      log_error("plugin %s refused: %s", sec->name, err);
      (*refused)++;
    }
  }
  routes_commit(h);
  return h;
}

size_t plugins_count(const struct plugin_host *h) {
  size_t n = 0;
  for (struct slot *sl = h ? h->slots : NULL; sl; sl = sl->next)
    n += atomic_load(&sl->inst) != NULL;
  return n;
}

uint64_t plugins_kept_mapped(const struct plugin_host *h) {
  return h ? h->kept_mapped : 0;
}

/* ---- reload ---------------------------------------------------------------------- */

enum { T_CONFIG, T_BUILD, T_ADD, T_REMOVE };
enum { P_PENDING, P_STARTED, P_DONE };

/* One plugin's change. Its item runs at the head of the slot's strand, so
 * the slot's instance is quiesced by construction: the call running now
 * finishes first, messages arriving meanwhile wait behind the item and go
 * to whatever instance the slot holds when it returns. */
struct task {
  struct task *next;
  struct dispatch_item item;
  struct plugin_host *h;
  struct slot *slot;
  int kind;
  struct instance *old, *neu;
  const struct config *cfg;        /* the new snapshot */
  const struct config_plugin *sec; /* the new section */
  struct sub subs[MAX_SUBSCRIPTIONS];
  int nsubs, max_attempts;
  int64_t deadline;
  atomic_int phase;
  int rc;       /* < 0: the new instance was refused (why) */
  int declined; /* reconfigure asked for a full re-init */
  int handed;   /* a state blob was handed over */
  size_t handed_len;
  int finalized;
  char why[1024];
};

struct reload {
  const struct config *cfg;
  struct task *tasks;
  int timeout_ms;
  int aborting;
  int nrefused;
  struct buf reloaded, reconfigured, kept, added, removed, refused;
  plugins_reload_done_fn done;
  void *ud;
};

static void note(struct buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void note(struct buf *b, const char *fmt, ...) {
  char tmp[1400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  buf_appendf(b, "%s%s", b->len ? ", " : "", tmp);
}

static void refuse(struct reload *r, const char *name, int running, const char *why) {
  r->nrefused++;
  log_error("reload: plugin %s refused: %s; %s", name, why,
            running ? "the running instance keeps serving" : "it is not loaded");
  note(&r->refused, "%s (%s)", name, why);
}

static int section_equal(const struct config_plugin *a, const struct config_plugin *b) {
  if (a->nkv != b->nkv)
    return 0;
  for (size_t i = 0; i < a->nkv; i++)
    if (strcmp(a->kv[i].key, b->kv[i].key) != 0 ||
        strcmp(a->kv[i].value, b->kv[i].value) != 0)
      return 0;
  return 1;
}

static void retire_add(struct plugin_host *h, struct instance *in) {
  in->next = h->retiring;
  h->retiring = in;
}

static void task_run(struct dispatch_item *it) {
  struct task *t = (struct task *)((char *)it - offsetof(struct task, item));
  struct plugin_host *h = t->h;
  struct instance *old = t->old, *neu = t->neu;
  atomic_store(&t->phase, P_STARTED);
  if (t->kind == T_CONFIG) {
    const struct config_plugin *osec = old->section;
    const struct config *ocfg = old->cfg;
    old->section = t->sec;
    old->cfg = config_ref(t->cfg);
    if (old->desc.reconfigure(old->state) < 0) {
      config_free(old->cfg);
      old->section = osec;
      old->cfg = ocfg;
      t->declined = 1;
    } else {
      /* The plugin let go of the old values when reconfigure returned. */
      config_free(ocfg);
    }
  } else if (t->kind == T_REMOVE) {
    inst_cancel_timers(h, old);
    atomic_store(&t->slot->inst, NULL);
  } else {
    state_drop(h, neu->name);
    if (old && old->desc.save_state && old->desc.save_state(old->state) < 0)
      log_warn("plugin %s: save_state failed; the new instance starts without state",
               old->name);
    int found;
    t->handed_len = state_len(h, neu->name, &found);
    t->handed = found;
    neu->in_init = 1;
    int rc = neu->desc.init(&neu->ctx, &host_table, &neu->state);
    neu->in_init = 0;
    state_drop(h, neu->name);
    if (rc < 0) {
      snprintf(t->why, sizeof t->why, "%s: init failed (%d): %s", neu->src, rc,
               neu->error[0] ? neu->error : "no reason given");
      t->rc = -1;
      inst_cancel_timers(h, neu);
    } else {
      neu->initialised = 1;
      if (old)
        inst_cancel_timers(h, old);
      atomic_store(&t->slot->inst, neu);
    }
  }
  atomic_store(&t->phase, P_DONE);
  h->svc.wake(h->svc.ud);
}

static void task_post(struct plugin_host *h, struct task *t, int64_t now) {
  t->deadline = now + h->reload->timeout_ms;
  t->item.run = task_run;
  atomic_store(&t->phase, P_PENDING);
  dispatch_post_front(h->disp, t->slot->strand, &t->item);
}

static struct task *task_new(struct reload *r, struct plugin_host *h, struct slot *sl,
                             int kind, struct instance *old) {
  struct task *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  t->h = h;
  t->slot = sl;
  t->kind = kind;
  t->old = old;
  t->cfg = r->cfg;
  t->next = r->tasks;
  r->tasks = t;
  return t;
}

/* The descriptor name dname is taken by another slot, or by a new instance
 * of this reload for another slot. */
static const char *name_taken(struct plugin_host *h, struct reload *r, const char *dname,
                              const struct slot *sl) {
  struct slot *o = desc_name_used(h, dname, sl);
  if (o)
    return o->name;
  for (struct task *t = r->tasks; t; t = t->next)
    if (t->neu && t->slot != sl && strcmp(t->neu->desc.name, dname) == 0)
      return t->slot->name;
  return NULL;
}

/* A new instance for sl from sec: opened and checked here, initialised by
 * the task on the slot's strand. */
static void plan_build(struct plugin_host *h, struct reload *r, struct slot *sl,
                       const struct config_plugin *sec, struct instance *cur) {
  char err[1200];
  if (!cur && check_plugin_dir(r->cfg, err, sizeof err) < 0) {
    refuse(r, sec->name, 0, err);
    return;
  }
  struct instance *neu = inst_open(h, r->cfg, sec, err, sizeof err);
  if (!neu) {
    refuse(r, sec->name, cur != NULL, err);
    return;
  }
  const char *other = name_taken(h, r, neu->desc.name, sl);
  if (other) {
    snprintf(err, sizeof err,
             "%s: duplicate plugin name '%s' (already loaded as [plugin.%s])", neu->src,
             neu->desc.name, other);
    inst_free(neu, 1);
    refuse(r, sec->name, cur != NULL, err);
    return;
  }
  if (!sl)
    sl = slot_get(h, sec->name);
  struct task *t = sl ? task_new(r, h, sl, cur ? T_BUILD : T_ADD, cur) : NULL;
  if (!t) {
    inst_free(neu, 1);
    refuse(r, sec->name, cur != NULL, "out of memory");
    return;
  }
  neu->slot = sl;
  t->neu = neu;
  t->sec = sec;
}

static void plan_one(struct plugin_host *h, struct reload *r,
                     const struct config_plugin *sec) {
  struct slot *sl = slot_find(h, sec->name);
  struct instance *cur = sl ? atomic_load(&sl->inst) : NULL;
  if (!cur) {
    plan_build(h, r, sl, sec, NULL);
    return;
  }
  char src[1024], err[1200];
  if (plugin_src(r->cfg, sec, src, sizeof src, err, sizeof err) < 0) {
    refuse(r, sec->name, 1, err);
    return;
  }
  struct stat st;
  int same_file = stat(src, &st) == 0 && strcmp(src, cur->src) == 0 &&
                  st.st_dev == cur->dev && st.st_ino == cur->ino &&
                  st.st_size == cur->size && st.st_mtim.tv_sec == cur->mtime.tv_sec &&
                  st.st_mtim.tv_nsec == cur->mtime.tv_nsec;
  if (same_file && section_equal(cur->section, sec)) {
    note(&r->kept, "%s", sec->name);
    return;
  }
  if (same_file && cur->desc.reconfigure) {
    struct task *t = task_new(r, h, sl, T_CONFIG, cur);
    if (!t) {
      refuse(r, sec->name, 1, "out of memory");
      return;
    }
    t->sec = sec;
    if (parse_max_attempts(sec, r->cfg, &t->max_attempts, err, sizeof err) < 0 ||
        parse_subs(cur, sec, r->cfg, t->subs, &t->nsubs, err, sizeof err) < 0) {
      r->tasks = t->next;
      free(t);
      refuse(r, sec->name, 1, err);
    }
    return;
  }
  plan_build(h, r, sl, sec, cur);
}

static void reload_finish(struct plugin_host *h) {
  struct reload *r = h->reload;
  config_free(h->cfg);
  h->cfg = config_ref(r->cfg);
  for (struct slot *sl = h->slots; sl; sl = sl->next) {
    for (size_t i = 0; i < r->cfg->nplugins; i++)
      if (strcmp(r->cfg->plugins[i].name, sl->name) == 0)
        sl->order = (int)i;
  }
  routes_commit(h);
  struct buf s = {0};
  const struct {
    const char *what;
    struct buf *b;
  } parts[] = {{"reloaded", &r->reloaded}, {"reconfigured", &r->reconfigured},
               {"added", &r->added},       {"removed", &r->removed},
               {"kept", &r->kept},         {"refused", &r->refused}};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
    if (parts[i].b->len)
      buf_appendf(&s, "%s%s %.*s", s.len ? "; " : "", parts[i].what, (int)parts[i].b->len,
                  parts[i].b->data);
  if (!s.len)
    buf_appendf(&s, "no plugins");
  while (r->tasks) {
    struct task *t = r->tasks;
    r->tasks = t->next;
    free(t);
  }
  h->reload = NULL;
  if (r->done)
    r->done(r->ud, r->nrefused == 0, s.data ? s.data : "");
  buf_fini(&s);
  struct buf *bufs[] = {&r->reloaded, &r->reconfigured, &r->kept,
                        &r->added,    &r->removed,      &r->refused};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    buf_fini(bufs[i]);
  config_free(r->cfg);
  free(r);
}

/* I/O thread: a task whose item has run. Returns 1 when it is final. */
static int task_finalize(struct plugin_host *h, struct reload *r, struct task *t,
                         int64_t now) {
  const char *name = t->slot->name;
  char err[1200];
  switch (t->kind) {
  case T_CONFIG:
    if (t->declined) {
      if (r->aborting) {
        refuse(r, name, 1, "reconfigure declined while stopping");
        return 1;
      }
      struct instance *neu = inst_open(h, r->cfg, t->sec, err, sizeof err);
      if (!neu) {
        refuse(r, name, 1, err);
        return 1;
      }
      /* The plugin asked for a full re-init: same file, new instance. */
      neu->slot = t->slot;
      t->neu = neu;
      t->kind = T_BUILD;
      t->declined = 0;
      task_post(h, t, now);
      return 0;
    }
    memcpy(t->old->subs, t->subs, sizeof t->subs);
    t->old->nsubs = t->nsubs;
    atomic_store(&t->old->max_attempts, max_attempts_for(t->max_attempts, &t->old->desc));
    note(&r->reconfigured, "%s", name);
    return 1;
  case T_REMOVE:
    retire_add(h, t->old);
    note(&r->removed, "%s", name);
    return 1;
  default:
    if (t->rc < 0) {
      refuse(r, name, t->old != NULL, t->why);
      retire_add(h, t->neu); /* init failed: no shutdown owed */
      return 1;
    }
    log_loaded(t->neu);
    char state[64] = "";
    if (t->handed)
      snprintf(state, sizeof state, ", state handed over: %zu bytes", t->handed_len);
    note(t->old ? &r->reloaded : &r->added, "%s (%s %s%s)", name, t->neu->desc.name,
         t->neu->desc.version ? t->neu->desc.version : "", state);
    if (t->old)
      retire_add(h, t->old);
    return 1;
  }
}

static void reload_poll(struct plugin_host *h, int64_t now) {
  struct reload *r = h->reload;
  if (!r)
    return;
  int all = 1;
  for (struct task *t = r->tasks; t; t = t->next) {
    if (t->finalized)
      continue;
    int ph = atomic_load(&t->phase);
    if (ph == P_PENDING && (r->aborting || now >= t->deadline) &&
        dispatch_strand_cancel(t->slot->strand, &t->item)) {
      char why[200];
      if (r->aborting)
        snprintf(why, sizeof why, "the daemon is stopping");
      else
        snprintf(why, sizeof why,
                 "its running call did not finish within reload_timeout_ms (%d ms)",
                 r->timeout_ms);
      refuse(r, t->slot->name, t->old != NULL, why);
      if (t->neu)
        inst_free(t->neu, 1); /* never initialised */
      t->neu = NULL;
      t->finalized = 1;
      continue;
    }
    if (atomic_load(&t->phase) != P_DONE) {
      all = 0;
      continue;
    }
    if (task_finalize(h, r, t, now))
      t->finalized = 1;
    else
      all = 0;
  }
  if (all)
    reload_finish(h);
}

int plugins_reload_begin(struct plugin_host *h, const struct config *cfg, int64_t now,
                         plugins_reload_done_fn done, void *ud) {
  if (!h || h->reload || h->shut_down)
    return -1;
  struct reload *r = calloc(1, sizeof *r);
  if (!r)
    return -1;
  r->cfg = config_ref(cfg);
  r->timeout_ms = cfg->reload_timeout_ms;
  r->done = done;
  r->ud = ud;
  h->reload = r;
  for (size_t i = 0; i < cfg->nplugins; i++) {
    const struct config_plugin *sec = &cfg->plugins[i];
    int bad;
    int on = is_enabled(cfg, sec, &bad);
    if (bad) {
      struct slot *sl = slot_find(h, sec->name);
      refuse(r, sec->name, sl && atomic_load(&sl->inst),
             "'enabled' must be true or false");
    } else if (on) {
      plan_one(h, r, sec);
    }
  }
  /* Slots serving a plugin whose section is gone or disabled. */
  for (struct slot *sl = h->slots; sl; sl = sl->next) {
    struct instance *cur = atomic_load(&sl->inst);
    const struct config_plugin *sec = config_find_plugin(cfg, sl->name);
    if (!cur || (sec && (is_enabled(cfg, sec, NULL) || enabled_bad(sec))))
      continue;
    if (!task_new(r, h, sl, T_REMOVE, cur))
      refuse(r, sl->name, 1, "out of memory");
  }
  for (struct task *t = r->tasks; t; t = t->next)
    task_post(h, t, now);
  reload_poll(h, now);
  return 0;
}

void plugins_poll(struct plugin_host *h, int64_t now) {
  if (!h)
    return;
  if (h->reload)
    reload_poll(h, now);
  if (h->retiring)
    retire_poll(h);
}

/* ---- retiring old generations ---------------------------------------------------- */

static void retire_run(struct dispatch_item *it) {
  struct instance *in =
      (struct instance *)((char *)it - offsetof(struct instance, retire_item));
  in->desc.shutdown(in->state);
  atomic_store(&in->retire_done, 1);
  in->h->svc.wake(in->h->svc.ud);
}

/* Unmaps in only when it declared itself unload-safe and the host holds
 * nothing of it; otherwise the mapping stays (counted). Frees in. */
static void retire_unload(struct plugin_host *h, struct instance *in) {
  int held = inst_has_timers(h, in) || atomic_load(&in->work_outstanding) != 0;
  int safe = (in->desc.flags & BLAZEBOT_FLAG_UNLOAD_SAFE) && !held;
  if (!safe) {
    h->kept_mapped++;
    log_info("plugin %s: old generation %s %s stays mapped (%s)", in->name, in->desc.name,
             in->desc.version ? in->desc.version : "",
             held ? "the host still holds its timers or work"
                  : "not declared unload-safe");
  } else {
    log_debug("plugin %s: old generation unloaded", in->name);
  }
  inst_free(in, safe);
}

static void retire_poll(struct plugin_host *h) {
  for (struct instance **pp = &h->retiring; *pp;) {
    struct instance *in = *pp;
    if (!in->retire_posted) {
      if (atomic_load(&in->work_outstanding) != 0) {
        pp = &in->next;
        continue;
      }
      in->retire_posted = 1;
      if (in->initialised) {
        /* shutdown is plugin code: a worker runs it, not this thread. */
        in->retire_item.run = retire_run;
        dispatch_post(h->disp, NULL, &in->retire_item);
        pp = &in->next;
        continue;
      }
      atomic_store(&in->retire_done, 1);
    }
    if (!atomic_load(&in->retire_done)) {
      pp = &in->next;
      continue;
    }
    *pp = in->next;
    retire_unload(h, in);
  }
}

/* ---- stopping ------------------------------------------------------------------------
 */

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* 1 when nothing of in can run any more: no timer or blocking work in
 * flight and, for the instance serving a slot, nothing queued on or running
 * in its strand (deliveries queued now are skipped, see deliver_run). */
static int inst_idle(struct instance *in, struct dispatch_strand *strand) {
  return atomic_load(&in->work_outstanding) == 0 &&
         (!strand || dispatch_strand_idle(strand));
}

static void inst_stop(struct instance *in) {
  in->shut = 1;
  if (in->initialised)
    in->desc.shutdown(in->state);
}

int plugins_shutdown_all(struct plugin_host *h, int64_t deadline,
                         int (*interrupted)(void *ud), void *ud) {
  if (!h)
    return 0;
  if (h->shut_down)
    return h->abandoned ? -1 : 0;
  atomic_store(&h->stopping, 1);
  /* A reload in progress ends first: queued tasks are taken back, a
   * running one is waited for. */
  if (h->reload) {
    h->reload->aborting = 1;
    while (h->reload) {
      reload_poll(h, now_ms());
      if (!h->reload || now_ms() >= deadline || (interrupted && interrupted(ud)))
        break;
      sleep_ms(10);
    }
  }
  /* Timers first (the ledger): none fires from now on. */
  for (struct slot *sl = h->slots; sl; sl = sl->next) {
    struct instance *in = atomic_load(&sl->inst);
    if (in)
      inst_cancel_timers(h, in);
  }
  for (struct instance *in = h->retiring; in; in = in->next)
    inst_cancel_timers(h, in);

  /* Each instance's shutdown runs once nothing of it can run any more, and
   * never while one of its callbacks runs; this thread calls it, since its
   * strand is idle and stays so. */
  int busy;
  for (;;) {
    busy = 0;
    for (struct slot *sl = h->slots; sl; sl = sl->next) {
      struct instance *in = atomic_load(&sl->inst);
      if (!in || in->shut)
        continue;
      if (!inst_idle(in, sl->strand)) {
        busy++;
        continue;
      }
      inst_stop(in);
      log_info("plugin %s stopped (%llu delivered, %llu errors)", sl->name,
               (unsigned long long)atomic_load(&sl->delivered),
               (unsigned long long)atomic_load(&sl->errors));
    }
    for (struct instance *in = h->retiring; in; in = in->next) {
      if (in->retire_posted) {
        /* Its shutdown was handed to a worker (retire_run). */
        busy += !atomic_load(&in->retire_done);
        continue;
      }
      if (!inst_idle(in, NULL)) {
        busy++;
        continue;
      }
      in->retire_posted = 1;
      inst_stop(in);
      atomic_store(&in->retire_done, 1);
    }
    if (!busy || now_ms() >= deadline || (interrupted && interrupted(ud)))
      break;
    sleep_ms(10);
  }
  h->shut_down = 1;
  if (!busy)
    return 0;
  /* Still running plugin code: its shutdown would race with it and its
   * code must stay mapped, so neither happens. The caller exits without
   * joining the workers. */
  h->abandoned = busy;
  for (struct slot *sl = h->slots; sl; sl = sl->next) {
    struct instance *in = atomic_load(&sl->inst);
    if (in && !in->shut)
      log_error("plugin %s is still busy; exiting without calling its shutdown",
                sl->name);
  }
  for (struct instance *in = h->retiring; in; in = in->next) {
    if (!atomic_load(&in->retire_done))
      log_error("plugin %s (old generation) is still busy; exiting without calling its "
                "shutdown",
                in->name);
  }
  return -1;
}

void plugins_free(struct plugin_host *h) {
  if (!h)
    return;
  /* Unmapping code a thread may still run would crash it: an abandoned
   * host is left to the process's exit. */
  if (plugins_shutdown_all(h, 0, NULL, NULL) < 0)
    return;
  while (h->retiring) {
    struct instance *in = h->retiring;
    h->retiring = in->next;
    if (atomic_load(&in->retire_done))
      retire_unload(h, in);
  }
  while (h->slots) {
    struct slot *sl = h->slots;
    h->slots = sl->next;
    struct instance *in = atomic_load(&sl->inst);
    if (in)
      inst_free(in, (in->desc.flags & BLAZEBOT_FLAG_UNLOAD_SAFE) != 0);
    dispatch_strand_free(sl->strand);
    free(sl);
  }
  while (h->timers) {
    struct timer *t = h->timers;
    h->timers = t->next;
    free(t);
  }
  while (h->states) {
    struct saved_state *s = h->states;
    h->states = s->next;
    free(s->blob);
    free(s);
  }
  while (h->route_pool) {
    struct job_route *r = h->route_pool;
    h->route_pool = r->next_free;
    free(r);
  }
  free(h->routes);
  config_free(h->cfg);
  while (h->bot_ids) {
    struct interned *i = h->bot_ids;
    h->bot_ids = i->next;
    free(i);
  }
  if (h->stage_dir[0])
    rmdir(h->stage_dir);
  pthread_mutex_destroy(&h->mu);
  free(h);
}

void plugins_stats_json(struct plugin_host *h, struct buf *out) {
  buf_append(out, "{", 1);
  int first = 1;
  for (struct slot *sl = h ? h->slots : NULL; sl; sl = sl->next) {
    if (!atomic_load(&sl->inst) && !atomic_load(&sl->delivered))
      continue;
    buf_appendf(out,
                "%s\"%s\":{\"delivered\":%llu,\"handled\":%llu,\"passed\":%llu,"
                "\"retried\":%llu,\"errors\":%llu,\"gave_up\":%llu}",
                first ? "" : ",", sl->name,
                (unsigned long long)atomic_load(&sl->delivered),
                (unsigned long long)atomic_load(&sl->handled),
                (unsigned long long)atomic_load(&sl->passed),
                (unsigned long long)atomic_load(&sl->retried),
                (unsigned long long)atomic_load(&sl->errors),
                (unsigned long long)atomic_load(&sl->gave_up));
    first = 0;
  }
  buf_append(out, "}", 1);
}
