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

#include "buf.h"
#include "daemon.h"
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

struct instance {
  struct instance *next;
  char name[64];
  const struct config_plugin *section;
  const struct config *cfg;
  struct plugin_host *h;
  void *dl;
  struct blazebot_plugin desc; /* min(size) copy, rest zero */
  void *state;
  struct blazebot_ctx ctx;
  struct dispatch_strand *strand;
  int max_attempts;
  int order; /* ini order, ties in routing */
  int in_init;
  int closing;
  char error[512];
  /* Inside on_message: the job and view being handled, and by which thread. */
  struct job *current_job;
  const struct blazebot_message *current_view;
  pthread_t current_thread;
  atomic_int work_outstanding; /* blocking work + timer items in flight */
  atomic_ullong delivered, handled, passed, retried, errors, gave_up;
};

struct route {
  char pattern[96];
  size_t plen;
  int prefix; /* pattern ended in '*' (plen excludes it) */
  int32_t priority;
  struct instance *inst;
};

/* Per-job routing state: the view handed to plugins and the subscriber list
 * computed when the message arrived. */
struct job_route {
  struct job_route *next_free;
  struct blazebot_message view;
  int nsubs, idx, attempt;
  struct instance *subs[]; /* host->ninst entries */
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

struct plugin_host {
  struct daemon *d;
  struct dispatch *disp;
  const struct config *cfg;
  struct instance *insts;
  size_t ninst;
  struct route *routes;
  size_t nroutes;
  char stage_dir[256];
  unsigned gen;
  struct job_route *route_pool;

  pthread_mutex_t mu; /* timers, saved states */
  struct timer *timers;
  uint64_t next_timer_id;
  struct saved_state *states;
  int shut_down; /* every instance's shutdown ran */
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
  return daemon_reply(in->h->d, job, &m, id_out) == 0 ? 0 : -1;
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
  return daemon_reply(in->h->d, current_job(in), &m, id_out) == 0 ? 0 : -1;
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
  return in ? daemon_bot_id(in->h->d) : "";
}

static void timer_run(struct dispatch_item *it);

static int svc_timer_add(blazebot_ctx *ctx, uint32_t delay_ms, uint32_t repeat_ms,
                         blazebot_timer_fn fn, void *arg, uint64_t *id_out) {
  struct instance *in = inst_of(ctx);
  if (!in || !fn || in->closing)
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
    dispatch_post(in->h->disp, in->strand, &w->item);
    return;
  }
  free(w);
  atomic_fetch_sub(&in->work_outstanding, 1);
}

static int svc_run_blocking(blazebot_ctx *ctx, blazebot_work_fn fn, blazebot_done_fn done,
                            void *arg) {
  struct instance *in = inst_of(ctx);
  if (!in || !fn || in->closing)
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

static void deliver_run(struct dispatch_item *it) {
  struct job *job = (struct job *)((char *)it - offsetof(struct job, item));
  struct job_route *r = job->route;
  struct instance *in = r->subs[r->idx];
  struct plugin_host *h = in->h;
  r->view.attempt = (uint32_t)r->attempt;
  in->current_job = job;
  in->current_view = &r->view;
  in->current_thread = pthread_self();
  int rc = in->desc.on_message(in->state, &r->view);
  in->current_job = NULL;
  in->current_view = NULL;
  atomic_fetch_add(&in->delivered, 1);

  if (rc == BLAZEBOT_RETRY) {
    if (r->attempt < in->max_attempts) {
      atomic_fetch_add(&in->retried, 1);
      job->retry_at = now_ms() + retry_delay_ms(r->attempt);
      r->attempt++;
      dispatch_complete(h->disp, job); /* the daemon re-posts it when due */
      return;
    }
    atomic_fetch_add(&in->gave_up, 1);
    log_warn("plugin %s: gave up on message %s after %d attempts", in->name,
             r->view.message_id, r->attempt);
    rc = BLAZEBOT_ERROR;
  }
  if (rc < 0) {
    atomic_fetch_add(&in->errors, 1);
    log_warn("plugin %s: message %s (%s) failed with %d", in->name, r->view.message_id,
             r->view.category, rc);
  } else if (rc == BLAZEBOT_HANDLED) {
    atomic_fetch_add(&in->handled, 1);
  } else {
    if (rc != BLAZEBOT_PASS)
      log_warn("plugin %s: unknown return code %d treated as PASS", in->name, rc);
    atomic_fetch_add(&in->passed, 1);
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

int plugins_route(struct plugin_host *h, struct job *job) {
  if (!h || !h->ninst)
    return 0;
  struct job_route *r = h->route_pool;
  if (r) {
    h->route_pool = r->next_free;
  } else {
    r = malloc(sizeof *r + h->ninst * sizeof r->subs[0]);
    if (!r)
      return -1;
  }
  r->nsubs = 0;
  const char *cat = job->msg->category;
  /* Routes are sorted by priority; an instance matching through several
   * patterns is delivered once, at its first (highest) position. */
  for (size_t i = 0; i < h->nroutes; i++) {
    if (!route_matches(&h->routes[i], cat))
      continue;
    struct instance *in = h->routes[i].inst;
    int dup = 0;
    for (int k = 0; k < r->nsubs; k++)
      dup |= r->subs[k] == in;
    if (!dup)
      r->subs[r->nsubs++] = in;
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

int64_t plugins_tick(struct plugin_host *h, int64_t now) {
  if (!h)
    return -1;
  int64_t next = -1;
  pthread_mutex_lock(&h->mu);
  for (struct timer *t = h->timers; t; t = t->next) {
    if (t->posted || t->cancelled)
      continue;
    if (t->due <= now) {
      t->posted = 1;
      if (t->repeat)
        t->due = now + t->repeat;
      atomic_fetch_add(&t->inst->work_outstanding, 1);
      dispatch_post(h->disp, t->inst->strand, &t->item);
    } else if (next < 0 || t->due - now < next) {
      next = t->due - now;
    }
  }
  pthread_mutex_unlock(&h->mu);
  return next;
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
                 size_t dstlen, char *err, size_t errlen) {
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

static int add_routes(struct plugin_host *h, struct instance *in, char *err,
                      size_t errlen) {
  const struct config_kv *cats = find_kv(in, "categories");
  const struct config_kv *prio = find_kv(in, "priority");
  int32_t prio_v = 0;
  if (prio) {
    char *end;
    long v = strtol(prio->value, &end, 10);
    if (end == prio->value || *end || v < -1000000 || v > 1000000) {
      snprintf(err, errlen, "%s:%d: priority must be an integer", in->cfg->path,
               prio->line);
      return -1;
    }
    prio_v = (int32_t)v;
  }
  struct {
    char pat[96];
    int32_t prio;
  } subs[MAX_SUBSCRIPTIONS];
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
  if (!n)
    log_warn("plugin %s subscribes to no category; it will receive no messages",
             in->name);
  struct route *nr = realloc(h->routes, (h->nroutes + (size_t)n) * sizeof *nr);
  if (!nr && n) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  h->routes = nr;
  for (int i = 0; i < n; i++) {
    struct route *rt = &h->routes[h->nroutes++];
    snprintf(rt->pattern, sizeof rt->pattern, "%s", subs[i].pat);
    char *star = strchr(rt->pattern, '*');
    rt->prefix = star != NULL;
    if (star)
      *star = 0;
    rt->plen = strlen(rt->pattern);
    rt->priority = subs[i].prio;
    rt->inst = in;
  }
  return 0;
}

static int route_cmp(const void *a, const void *b) {
  const struct route *x = a, *y = b;
  if (x->priority != y->priority)
    return x->priority > y->priority ? -1 : 1;
  return x->inst->order - y->inst->order;
}

static void inst_free(struct instance *in) {
  if (!in)
    return;
  if (in->strand)
    dispatch_strand_free(in->strand);
  if (in->dl && (in->desc.flags & BLAZEBOT_FLAG_UNLOAD_SAFE))
    dlclose(in->dl);
  free(in);
}

/* Loads one [plugin.NAME]; on refusal returns -1 with the reason in err. */
static int load_one(struct plugin_host *h, const struct config_plugin *sec, int order,
                    char *err, size_t errlen) {
  const struct config *cfg = h->cfg;
  struct instance *in = calloc(1, sizeof *in);
  if (!in) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  snprintf(in->name, sizeof in->name, "%s", sec->name);
  in->section = sec;
  in->cfg = cfg;
  in->h = h;
  in->order = order;
  in->ctx.inst = in;
  in->max_attempts = 5;

  const struct config_kv *kv = find_kv(in, "max_attempts");
  if (kv) {
    char *end;
    long v = strtol(kv->value, &end, 10);
    if (end == kv->value || *end || v < 1 || v > 100) {
      snprintf(err, errlen, "%s:%d: max_attempts must be 1..100", cfg->path, kv->line);
      goto fail;
    }
    in->max_attempts = (int)v;
  }
  char file[512], src[1024], staged[600];
  kv = find_kv(in, "path");
  snprintf(file, sizeof file, "%s", kv ? kv->value : "");
  if (!kv)
    snprintf(file, sizeof file, "%s.so", sec->name);
  if (strchr(file, '/') || strcmp(file, "..") == 0 || file[0] == '.' || !file[0]) {
    snprintf(
        err, errlen,
        "%s:%d: path '%s' must be a file name inside plugin_dir (plugins load only from "
        "there)",
        cfg->path, kv ? kv->line : sec->line, file);
    goto fail;
  }
  snprintf(src, sizeof src, "%s/%s", cfg->plugin_dir, file);
  if (stage(h, sec->name, src, staged, sizeof staged, err, errlen) < 0)
    goto fail;
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
  for (struct instance *o = h->insts; o; o = o->next) {
    if (strcmp(o->desc.name, in->desc.name) == 0) {
      snprintf(err, errlen,
               "%s: duplicate plugin name '%s' (already loaded as [plugin.%s])", src,
               in->desc.name, o->name);
      goto fail;
    }
  }
  in->strand = dispatch_strand_new(h->disp);
  if (!in->strand) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  size_t nroutes_before = h->nroutes;
  if (add_routes(h, in, err, errlen) < 0)
    goto fail;

  in->in_init = 1;
  int rc = in->desc.init(&in->ctx, &host_table, &in->state);
  in->in_init = 0;
  if (rc < 0) {
    h->nroutes = nroutes_before;
    snprintf(err, errlen, "%s: init failed (%d): %s", src, rc,
             in->error[0] ? in->error : "no reason given");
    goto fail;
  }
  in->next = h->insts;
  h->insts = in;
  h->ninst++;
  log_info("plugin %s loaded: %s %s from %s%s", in->name, in->desc.name,
           in->desc.version ? in->desc.version : "", src,
           (in->desc.flags & BLAZEBOT_FLAG_UNLOAD_SAFE) ? " (unload-safe)" : "");
  return 0;
fail:
  inst_free(in);
  return -1;
}

struct plugin_host *plugins_new(const struct config *cfg, struct daemon *d,
                                struct dispatch *disp, int *refused) {
  *refused = 0;
  struct plugin_host *h = calloc(1, sizeof *h);
  if (!h)
    return NULL;
  h->d = d;
  h->disp = disp;
  h->cfg = cfg;
  pthread_mutex_init(&h->mu, NULL);

  int enabled = 0;
  for (size_t i = 0; i < cfg->nplugins; i++) {
    const struct config_plugin *sec = &cfg->plugins[i];
    int on = 1;
    for (size_t k = 0; k < sec->nkv; k++) {
      if (strcmp(sec->kv[k].key, "enabled") == 0 &&
          parse_bool(sec->kv[k].value, &on) < 0) {
        log_error("%s:%d: [plugin.%s] enabled must be true or false", cfg->path,
                  sec->kv[k].line, sec->name);
        (*refused)++;
        on = 0;
      }
    }
    enabled += on;
  }
  if (!enabled)
    return h;
  if (!cfg->plugin_dir) {
    log_error("%s: plugins are configured but [blazebot] plugin_dir is not set",
              cfg->path);
    *refused += enabled;
    return h;
  }
  struct stat st;
  char err[1024];
  if (stat(cfg->plugin_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
    log_error("plugin_dir %s is not a directory", cfg->plugin_dir);
    *refused += enabled;
    return h;
  }
  if (safe_mode(&st, "plugin_dir", cfg->plugin_dir, err, sizeof err) < 0) {
    log_error("%s", err);
    *refused += enabled;
    return h;
  }
  const char *tmp = getenv("TMPDIR");
  snprintf(h->stage_dir, sizeof h->stage_dir, "%s/blazebot-plugins.XXXXXX",
           tmp && tmp[0] == '/' ? tmp : "/tmp");
  if (!mkdtemp(h->stage_dir)) {
    log_error("cannot create a staging folder in %s: %s", tmp ? tmp : "/tmp",
              strerror(errno));
    h->stage_dir[0] = 0;
    *refused += enabled;
    return h;
  }
  for (size_t i = 0; i < cfg->nplugins; i++) {
    const struct config_plugin *sec = &cfg->plugins[i];
    int on = 1;
    for (size_t k = 0; k < sec->nkv; k++)
      if (strcmp(sec->kv[k].key, "enabled") == 0 && parse_bool(sec->kv[k].value, &on) < 0)
        on = 0;
    if (!on)
      continue;
    if (load_one(h, sec, (int)i, err, sizeof err) < 0) {
      log_error("plugin %s refused: %s", sec->name, err);
      (*refused)++;
    }
  }
  if (h->nroutes)
    qsort(h->routes, h->nroutes, sizeof *h->routes, route_cmp);
  return h;
}

size_t plugins_count(const struct plugin_host *h) {
  return h ? h->ninst : 0;
}

static void inst_shutdown(struct plugin_host *h, struct instance *in) {
  in->closing = 1;
  /* Timers first (the ledger), then wait for work in flight to drain. */
  pthread_mutex_lock(&h->mu);
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
  for (int i = 0; i < 3000; i++) {
    if (atomic_load(&in->work_outstanding) == 0 && dispatch_strand_idle(in->strand))
      break;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  in->desc.shutdown(in->state);
  log_info("plugin %s stopped (%llu delivered, %llu errors)", in->name,
           (unsigned long long)atomic_load(&in->delivered),
           (unsigned long long)atomic_load(&in->errors));
}

void plugins_shutdown_all(struct plugin_host *h) {
  if (!h || h->shut_down)
    return;
  h->shut_down = 1;
  for (struct instance *in = h->insts; in; in = in->next)
    inst_shutdown(h, in);
}

void plugins_free(struct plugin_host *h) {
  if (!h)
    return;
  plugins_shutdown_all(h);
  while (h->insts) {
    struct instance *in = h->insts;
    h->insts = in->next;
    inst_free(in);
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
  if (h->stage_dir[0])
    rmdir(h->stage_dir);
  pthread_mutex_destroy(&h->mu);
  free(h);
}

void plugins_stats_json(struct plugin_host *h, struct buf *out) {
  buf_append(out, "{", 1);
  int first = 1;
  for (struct instance *in = h ? h->insts : NULL; in; in = in->next) {
    buf_appendf(out,
                "%s\"%s\":{\"delivered\":%llu,\"handled\":%llu,\"passed\":%llu,"
                "\"retried\":%llu,\"errors\":%llu,\"gave_up\":%llu}",
                first ? "" : ",", in->name,
                (unsigned long long)atomic_load(&in->delivered),
                (unsigned long long)atomic_load(&in->handled),
                (unsigned long long)atomic_load(&in->passed),
                (unsigned long long)atomic_load(&in->retried),
                (unsigned long long)atomic_load(&in->errors),
                (unsigned long long)atomic_load(&in->gave_up));
    first = 0;
  }
  buf_append(out, "}", 1);
}
