/* SPDX-License-Identifier: MIT */
/*
 * reload: see reload.h. The reload and its tasks belong to the I/O thread,
 * except what a task's item does on its slot's strand (a worker), which it
 * reports through the task's atomic phase and a wake-up.
 */
#include "reload.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "config.h"
#include "dispatch.h"
#include "async.h"
#include "host.h"
#include "loader.h"
#include "log.h"
#include "plugin_host.h"
#include "router.h"

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
    /* The section is swapped under the host mutex: the plugin's blocking
     * work or own threads may be reading it (host.c, find_kv). */
    const struct config_plugin *osec = old->section;
    const struct config *ocfg = old->cfg;
    pthread_mutex_lock(&h->mu);
    old->section = t->sec;
    old->cfg = config_ref(t->cfg);
    pthread_mutex_unlock(&h->mu);
    if (old->desc.reconfigure(old->state) < 0) {
      pthread_mutex_lock(&h->mu);
      const struct config *ncfg = old->cfg;
      old->section = osec;
      old->cfg = ocfg;
      pthread_mutex_unlock(&h->mu);
      config_free(ncfg);
      t->declined = 1;
    } else {
      /* The plugin let go of the old values when reconfigure returned. */
      config_free(ocfg);
    }
  } else if (t->kind == T_REMOVE) {
    host_cancel_timers(h, old);
    atomic_store(&t->slot->inst, NULL);
  } else {
    host_state_drop(h, neu->name);
    if (old && old->desc.save_state && old->desc.save_state(old->state) < 0)
      log_warn("plugin %s: save_state failed; the new instance starts without state",
               old->name);
    int found;
    t->handed_len = host_state_len(h, neu->name, &found);
    t->handed = found;
    host_prepare(neu);
    neu->in_init = 1;
    int rc = neu->desc.init(&neu->ctx, &host_table, &neu->state);
    neu->in_init = 0;
    host_state_drop(h, neu->name);
    if (rc < 0) {
      snprintf(t->why, sizeof t->why, "%s: init failed (%d): %s", neu->src, rc,
               neu->error[0] ? neu->error : "no reason given");
      t->rc = -1;
      host_cancel_timers(h, neu);
    } else {
      neu->initialised = 1;
      if (old)
        host_cancel_timers(h, old);
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

/* A new instance for sl from sec: opened and checked here, initialised by
 * the task on the slot's strand. */
static void plan_build(struct plugin_host *h, struct reload *r, struct slot *sl,
                       const struct config_plugin *sec, struct instance *cur) {
  char err[1200];
  /* loader_open checks plugin_dir and the file itself, on every load. */
  struct instance *neu = loader_open(h, r->cfg, sec, err, sizeof err);
  if (!neu) {
    refuse(r, sec->name, cur != NULL, err);
    return;
  }
  if (!sl)
    sl = loader_slot_get(h, sec->name);
  struct task *t = sl ? task_new(r, h, sl, cur ? T_BUILD : T_ADD, cur) : NULL;
  if (!t) {
    loader_close(neu, 1);
    refuse(r, sec->name, cur != NULL, "out of memory");
    return;
  }
  neu->slot = sl;
  t->neu = neu;
  t->sec = sec;
}

static void plan_one(struct plugin_host *h, struct reload *r,
                     const struct config_plugin *sec) {
  struct slot *sl = loader_slot_find(h, sec->name);
  struct instance *cur = sl ? atomic_load(&sl->inst) : NULL;
  if (!cur) {
    plan_build(h, r, sl, sec, NULL);
    return;
  }
  char src[1024], err[1200];
  if (loader_plugin_src(r->cfg, sec, src, sizeof src, err, sizeof err) < 0 ||
      loader_check_plugin_dir(r->cfg, err, sizeof err) < 0) {
    refuse(r, sec->name, 1, err);
    return;
  }
  /* lstat: a file replaced by a symbolic link counts as changed (and is
   * refused by loader_open). */
  struct stat st;
  int same_file = lstat(src, &st) == 0 && strcmp(src, cur->src) == 0 &&
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
    if (loader_parse_max_attempts(sec, r->cfg, &t->max_attempts, err, sizeof err) < 0 ||
        loader_parse_subs(cur, sec, r->cfg, t->subs, &t->nsubs, err, sizeof err) < 0) {
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
  router_commit(h);
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
      struct instance *neu = loader_open(h, r->cfg, t->sec, err, sizeof err);
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
    atomic_store(&t->old->max_attempts,
                 loader_max_attempts_for(t->max_attempts, &t->old->desc));
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
    loader_log_loaded(t->neu);
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

void reload_poll(struct plugin_host *h, int64_t now) {
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
        loader_close(t->neu, 1); /* never initialised */
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

int reload_begin(struct plugin_host *h, const struct config *cfg, int64_t now,
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
    int on = loader_is_enabled(cfg, sec, &bad);
    if (bad) {
      struct slot *sl = loader_slot_find(h, sec->name);
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
    if (!cur || (sec && (loader_is_enabled(cfg, sec, NULL) || loader_enabled_bad(sec))))
      continue;
    if (!task_new(r, h, sl, T_REMOVE, cur))
      refuse(r, sl->name, 1, "out of memory");
  }
  for (struct task *t = r->tasks; t; t = t->next)
    task_post(h, t, now);
  reload_poll(h, now);
  return 0;
}

/* ---- retiring old generations ---------------------------------------------------- */

static void retire_run(struct dispatch_item *it) {
  struct instance *in =
      (struct instance *)((char *)it - offsetof(struct instance, retire_item));
  struct plugin_host *h = in->h;
  async_release_holds(h, in);
  in->desc.shutdown(in->state);
  /* From here on the I/O thread may unload and free in (reload_retire_poll):
   * only h is used after the store. */
  atomic_store(&in->retire_done, 1);
  h->svc.wake(h->svc.ud);
}

/* Unmaps in only when it declared itself unload-safe and the host holds
 * nothing of it; otherwise the mapping stays (counted). Frees in. */
void reload_retire_unload(struct plugin_host *h, struct instance *in) {
  int held = host_has_timers(h, in) || atomic_load(&in->work_outstanding) != 0;
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
  loader_close(in, safe);
}

void reload_retire_poll(struct plugin_host *h) {
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
    reload_retire_unload(h, in);
  }
}
