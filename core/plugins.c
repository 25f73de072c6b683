/* SPDX-License-Identifier: MIT */
/*
 * plugins: see plugins.h. The public face of the plugin host: creation
 * (loading and init on the main thread), the tick and poll of the I/O
 * thread, the shutdown and freeing on the main thread after the loop, and
 * the stats. The work is done by the host's other files, which share
 * plugin_host.h: loader (staging, dlopen, checks), host (the services table,
 * timers, saved state, bot ids), router (the routing table, per-job routes),
 * exec (delivery on the strands) and reload (reloads, retiring).
 */
#include "plugins.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "async.h"
#include "host.h"
#include "loader.h"
#include "log.h"
#include "plugin_host.h"
#include "reload.h"
#include "router.h"
#include "util.h"

/* Startup: loads one [plugin.NAME] and initialises it on this thread. */
static int load_one(struct plugin_host *h, const struct config_plugin *sec, int order,
                    char *err, size_t errlen) {
  struct instance *in = loader_open(h, h->cfg, sec, err, errlen);
  if (!in)
    return -1;
  struct slot *sl = loader_slot_get(h, sec->name);
  if (!sl) {
    snprintf(err, errlen, "out of memory");
    loader_close(in, 1);
    return -1;
  }
  sl->order = order;
  in->slot = sl;
  host_prepare(in);
  in->in_init = 1;
  int rc = in->desc.init(&in->ctx, &host_table, &in->state);
  in->in_init = 0;
  if (rc < 0) {
    snprintf(err, errlen, "%s: init failed (%d): %s", in->src, rc,
             in->error[0] ? in->error : "no reason given");
    host_cancel_timers(h, in);
    loader_close(in, (in->desc.flags & BLAZEBOT_FLAG_UNLOAD_SAFE) != 0);
    return -1;
  }
  in->initialised = 1;
  atomic_store(&sl->inst, in);
  loader_log_loaded(in);
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
    enabled += loader_is_enabled(cfg, &cfg->plugins[i], &bad);
    *refused += bad;
  }
  if (!enabled)
    return h;
  char err[1024];
  if (loader_check_plugin_dir(cfg, err, sizeof err) < 0) {
    log_error("%s", err);
    *refused += enabled;
    return h;
  }
  for (size_t i = 0; i < cfg->nplugins; i++) {
    const struct config_plugin *sec = &cfg->plugins[i];
    if (!loader_is_enabled(cfg, sec, NULL))
      continue;
    if (load_one(h, sec, (int)i, err, sizeof err) < 0) {
      log_error("plugin %s refused: %s", sec->name, err);
      (*refused)++;
    }
  }
  router_commit(h);
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

void plugins_set_deadletter(struct plugin_host *h, struct deadletter *dl) {
  if (h)
    h->dl = dl;
}

void plugins_set_bot_id(struct plugin_host *h, const char *id) {
  host_set_bot_id(h, id);
}

int plugins_route(struct plugin_host *h, struct job *job) {
  return router_route(h, job, NULL);
}

int plugins_route_to(struct plugin_host *h, struct job *job, const char *name) {
  return router_route(h, job, name);
}

void plugins_job_done(struct plugin_host *h, struct job *job) {
  router_job_done(h, job);
}

void plugins_tick(struct plugin_host *h, int64_t now) {
  if (!h)
    return;
  plugins_poll(h, now);
  host_fire_timers(h, now);
}

int plugins_reload_begin(struct plugin_host *h, const struct config *cfg, int64_t now,
                         plugins_reload_done_fn done, void *ud) {
  return reload_begin(h, cfg, now, done, ud);
}

void plugins_poll(struct plugin_host *h, int64_t now) {
  if (!h)
    return;
  if (h->reload)
    reload_poll(h, now);
  if (h->retiring)
    reload_retire_poll(h);
}

/* ---- stopping ------------------------------------------------------------------------
 */

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* 1 when nothing of in can run any more: no timer or blocking work in
 * flight and, for the instance serving a slot, nothing queued on or running
 * in its strand (deliveries queued now are skipped, see exec_deliver). */
static int inst_idle(struct instance *in, struct dispatch_strand *strand) {
  return atomic_load(&in->work_outstanding) == 0 &&
         (!strand || dispatch_strand_idle(strand));
}

static void inst_stop(struct instance *in) {
  async_release_holds(in->h, in);
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
      host_cancel_timers(h, in);
  }
  for (struct instance *in = h->retiring; in; in = in->next)
    host_cancel_timers(h, in);

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
      reload_retire_unload(h, in);
  }
  while (h->slots) {
    struct slot *sl = h->slots;
    h->slots = sl->next;
    struct instance *in = atomic_load(&sl->inst);
    if (in)
      loader_close(in, (in->desc.flags & BLAZEBOT_FLAG_UNLOAD_SAFE) != 0);
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

void plugins_latency_foreach(struct plugin_host *h,
                             void (*fn)(void *ud, const char *name,
                                        const struct hist *lat),
                             void *ud) {
  if (!h)
    return;
  for (struct slot *sl = h->slots; sl; sl = sl->next)
    fn(ud, sl->name, &sl->latency);
}
