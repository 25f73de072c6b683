/* SPDX-License-Identifier: MIT */
/*
 * host: the host side of sdk-headers/blazebot/plugin.h. The services table
 * every instance's init gets (log, config, reply, send and send_result
 * with reply ids derived from the message being handled, uuids, bot_id,
 * timers relative and at a wall-clock time, run_blocking, set_error,
 * state_put/state_get, now_ms, state_dir, instance_name; hold, release,
 * api_request and upload come from async.c), the timer list with its
 * ledger per instance, the saved-state blobs an old instance hands to its
 * replacement, the private state folders, and the interned bot ids. Threads: a service
 * runs on the thread of the plugin calling it (workers; the main thread during startup
 * init and the final shutdown); due timers are posted by the I/O thread
 * (host_fire_timers) to the instance's strand; blocking work runs on the
 * blocking pool and its done callback on the strand. The timer list and the
 * saved states are guarded by the host mutex.
 */
#ifndef BLAZEBOT_HOST_H
#define BLAZEBOT_HOST_H

#include <blazebot/plugin.h>

#include <stddef.h>
#include <stdint.h>

struct instance;
struct plugin_host;

/* The services table handed to every instance's init; never changes. */
extern struct blazebot_host host_table;

/* I/O thread: the bot id plugins see from now on (plugins_set_bot_id). */
void host_set_bot_id(struct plugin_host *h, const char *id);
/* Before in's init: makes its private folder <state_dir>/<name> (mode
 * 0700) when the daemon has a state_dir. A folder that cannot be made or is
 * not private is logged, and state_dir() then returns NULL to the plugin. */
void host_prepare(struct instance *in);
/* I/O thread: posts every due timer to its instance's strand. */
void host_fire_timers(struct plugin_host *h, int64_t now);
/* Any thread: cancels every timer of in and refuses new ones. */
void host_cancel_timers(struct plugin_host *h, struct instance *in);
/* The number of timers of in still in the list. */
int host_has_timers(struct plugin_host *h, struct instance *in);
/* Drops the saved state of plugin name, if any. */
void host_state_drop(struct plugin_host *h, const char *name);
/* The length of the saved state of plugin name; *found: there is one. */
size_t host_state_len(struct plugin_host *h, const char *name, int *found);

#endif
