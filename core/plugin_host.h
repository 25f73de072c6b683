/* SPDX-License-Identifier: MIT */
/*
 * plugin_host: the structs the plugin host's files share: the host, its
 * slots (one per plugin name) and instances (one per loaded generation), the
 * per-job routing state, timers, saved states and the reload in progress.
 * Private to the plugin host's files (loader, host, async, router, exec,
 * reload, plugins); nothing else may include it: the daemon and the tests see only
 * plugins.h. Threads: loading, routing, timers, reloads and unloading run on
 * the main/I/O thread; plugin callbacks run on workers, each instance on its
 * slot's strand. The timer list and the saved-state map are shared with
 * workers and guarded by the host mutex; per-instance and per-slot counters
 * are atomics. The host keeps a ledger per instance (timers, blocking work in
 * flight) so nothing of a plugin runs after its shutdown.
 */
#ifndef BLAZEBOT_PLUGIN_HOST_H
#define BLAZEBOT_PLUGIN_HOST_H

#include <blazebot/plugin.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "dispatch.h"
#include "hist.h"
#include "plugins_types.h"

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
  struct hist latency; /* time spent in on_message */
};

struct instance {
  struct instance *next; /* the retiring list */
  char name[64];
  struct slot *slot;
  /* The section and the snapshot its strings are borrowed from. A
   * config-only reload swaps both on the slot's strand while blocking work
   * or a plugin's own thread may call config_get: written, and read off
   * the strand, under the host mutex. */
  const struct config_plugin *section;
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
  /* The file's identity when it was copied: a reload compares it. */
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
  /* Inside on_message: the job and view being handled, and by which
   * thread. Written by that thread (exec_deliver), read by the services a
   * plugin calls from any thread (its own, the blocking pool), which match
   * them only on that thread: current_thread and current_view are stored
   * before current_job, and current_job is cleared first. */
  _Atomic(struct job *) current_job;
  _Atomic(const struct blazebot_message *) current_view;
  _Atomic(pthread_t) current_thread;
  struct hold *holds;          /* holds taken and not released (host mutex) */
  atomic_int work_outstanding; /* blocking work + timer items in flight */
  /* <state_dir>/<name>, made 0700 before init (host_prepare); "" when the
   * daemon has no state_dir or it could not be made (logged). */
  char state_path[1100];
};

/* Per-job routing state: the view handed to plugins and the subscriber list
 * computed when the message arrived. */
struct job_route {
  struct job_route *next_free;
  struct plugin_host *h;
  struct blazebot_message view;
  /* The delivery to subs[idx] in progress: holds counts the on_message call
   * itself plus every hold taken on the message; outcome is the strongest
   * result so far (exec_outcome). Guarded by the host mutex. sent numbers
   * the sends tied to the delivery (derived ids). */
  int holds, outcome;
  atomic_uint sent;
  int nsubs, idx, attempt, cap;
  struct slot *subs[]; /* cap entries (>= the slots when routed) */
};

/* A hold on a message (plugin.h: hold). The handle a plugin gets is the
 * id, never a pointer, so a stale or repeated release is recognised. */
struct hold {
  struct hold *next;
  uint64_t id;
  struct job *job;
  /* Sends tied to the hold in progress on some thread (async_pin): while
   * there are any, a release is only recorded and the last of those sends
   * completes it, so the job outlives every send. release_pending: taken
   * by a release (set under the host mutex, with or without sends in
   * progress), so no later release or send finds it. Host mutex. */
  int sending;
  int release_pending, release_result;
};

struct timer {
  struct timer *next;
  struct dispatch_item item;
  uint64_t id;
  int64_t due;      /* now_ms clock */
  int64_t wall_due; /* timer_at: > 0, wall clock (ms since 1970); due unused */
  uint32_t repeat;
  int posted;
  int cancelled;
  struct instance *inst;
  blazebot_timer_fn fn;
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

struct task; /* one plugin's change (reload.c) */

/* The reload in progress (reload.c); plugins_shutdown_all aborts it. */
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

struct route; /* one routing table entry (router.c) */
struct deadletter;

struct plugin_host {
  struct plugin_host_services svc; /* the daemon's services (see plugins_types.h) */
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

  pthread_mutex_t mu; /* timers, saved states, holds */
  struct timer *timers;
  uint64_t next_timer_id;
  uint64_t next_hold_id;
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

#endif
