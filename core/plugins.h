/* SPDX-License-Identifier: MIT */
/*
 * plugins: the plugin host. Loads each enabled [plugin.NAME] from plugin_dir
 * (dlopen RTLD_NOW|RTLD_LOCAL of a private sealed in-memory copy), checks its ABI,
 * calls init with the host services table, builds the routing table
 * (category → subscribers by priority), and runs every plugin callback on the
 * plugin instance's own strand so one instance never runs two callbacks at
 * once. A plugin that fails any check is refused with one precise log line;
 * the others load. Routing state per message lives in the job; the job goes
 * from subscriber to subscriber (PASS / error → next, HANDLED → stop, RETRY →
 * the same subscriber again later) and is handed back to the daemon when done.
 */
#ifndef BLAZEBOT_PLUGINS_H
#define BLAZEBOT_PLUGINS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "dispatch.h"
#include "plugins_types.h"
#include "util.h"

struct plugin_host;
struct outbox_msg;

struct plugin_stats {
  uint64_t delivered, handled, passed, retried, errors, gave_up;
};

/* Loads every enabled plugin of cfg. Returns the host (possibly with zero
 * plugins) and sets *refused to the number of plugins refused. NULL only on
 * out-of-memory or a plugin_dir problem (logged). */
struct plugin_host *plugins_new(const struct config *cfg,
                                const struct plugin_host_services *svc,
                                struct dispatch *disp, const char *bot_id, int *refused);
/* I/O thread: the bot id plugins see from now on (after a keystore change).
 * Earlier ids stay allocated until plugins_free, so a string a plugin got
 * from bot_id() never dangles. */
void plugins_set_bot_id(struct plugin_host *h, const char *id);
/* Where messages go that a plugin gave up on (RETRY past max_attempts).
 * Set once, before messages are routed; dl outlives the host. */
struct deadletter;
void plugins_set_deadletter(struct plugin_host *h, struct deadletter *dl);
/* Main thread, once the loop no longer routes messages. Skips deliveries
 * still queued (those messages are not acknowledged), cancels every timer,
 * and calls each instance's shutdown once nothing of it runs or can run any
 * more (no callback after shutdown). Waits until deadline (now_ms clock) or
 * until interrupted(ud) returns 1, whichever comes first. Returns 0 when
 * every instance shut down, -1 when some were still running plugin code:
 * the caller must then exit without joining the workers or freeing the host
 * (plugins_free leaves an abandoned host alone). Once only; the counters
 * stay readable. */
int plugins_shutdown_all(struct plugin_host *h, int64_t deadline,
                         int (*interrupted)(void *ud), void *ud);
/* Unloads and frees. Call after plugins_shutdown_all and after the
 * dispatch pool was joined (dispatch_free), so that no worker can still be
 * in a plugin's code when it is unmapped. Without an earlier
 * plugins_shutdown_all, shuts down with no wait. */
void plugins_free(struct plugin_host *h);

/* Number of loaded plugin instances. */
size_t plugins_count(const struct plugin_host *h);

/* I/O thread. Routes job to its first subscriber. Returns 1 when the job was
 * posted (it comes back through dispatch_complete), 0 when no plugin
 * subscribes to its category (the job is done). -1 on out-of-memory. */
int plugins_route(struct plugin_host *h, struct job *job);
/* I/O thread. Like plugins_route, but to the plugin called name alone,
 * whatever its subscriptions (blazebot --replay). 0 when no such plugin is
 * loaded. */
int plugins_route_to(struct plugin_host *h, struct job *job, const char *name);
/* I/O thread. Frees the routing state of a finished job. */
void plugins_job_done(struct plugin_host *h, struct job *job);
/* I/O thread: fires due timers and advances reloads and retirements. */
void plugins_tick(struct plugin_host *h, int64_t now);

/* Reload (I/O thread). Applies the [plugin.NAME] sections of cfg, the new
 * snapshot, which must outlive the instances using it: per plugin
 * unchanged / config-only change (reconfigure) / new build / added /
 * removed. Each change runs at the head of its plugin's strand (after the
 * call running now, before the messages waiting); a new build is opened and
 * checked here and initialised there, and a refusal leaves the old instance
 * serving. Progress is made by plugins_poll/plugins_tick; when every plugin
 * is settled the routing table is swapped and done(ud, ok, summary) runs
 * (ok = nothing refused; summary: one line). Returns -1 when a reload is
 * already in progress (or stopping). */
int plugins_reload_begin(struct plugin_host *h, const struct config *cfg, int64_t now,
                         plugins_reload_done_fn done, void *ud);
/* I/O thread: advances a reload and the retiring of old generations. */
void plugins_poll(struct plugin_host *h, int64_t now);
/* Old generations left mapped (not unload-safe, or still referenced). */
uint64_t plugins_kept_mapped(const struct plugin_host *h);

/* Appends per-plugin counters as a JSON object {"NAME":{...},...}. */
struct buf;
void plugins_stats_json(struct plugin_host *h, struct buf *out);
/* I/O thread: fn(ud, name, latency of on_message) for every plugin slot. */
struct hist;
void plugins_latency_foreach(struct plugin_host *h,
                             void (*fn)(void *ud, const char *name,
                                        const struct hist *lat),
                             void *ud);

#endif
