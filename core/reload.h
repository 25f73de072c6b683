/* SPDX-License-Identifier: MIT */
/*
 * reload: applies a new snapshot's [plugin.NAME] sections to the running
 * host (plugins_reload_begin): a plan per plugin (kept, config-only change,
 * new build, added, removed), a task per change at the head of its slot's
 * strand, the reload_timeout_ms deadline of each queued task, finalizing
 * each task and, once all are final, the new routing table, the host's new
 * snapshot and the one-line summary. Then retiring the generations replaced
 * or removed: their shutdown once nothing of them is in flight, and dlclose
 * only when unload-safe and unheld. Threads: planning, polling and finishing
 * on the I/O thread (the main thread when plugins_shutdown_all aborts a
 * reload); the tasks and a retired instance's shutdown on workers.
 */
#ifndef BLAZEBOT_RELOAD_H
#define BLAZEBOT_RELOAD_H

#include <stdint.h>

#include "plugins_types.h"

struct config;
struct instance;
struct plugin_host;

/* plugins_reload_begin. */
int reload_begin(struct plugin_host *h, const struct config *cfg, int64_t now,
                 plugins_reload_done_fn done, void *ud);
/* Advances the reload in progress, if any; finishes it when every task is
 * final. */
void reload_poll(struct plugin_host *h, int64_t now);
/* Advances the retiring of old generations. */
void reload_retire_poll(struct plugin_host *h);
/* Unloads (or keeps mapped, counted) and frees a retired instance whose
 * shutdown ran or is not owed. */
void reload_retire_unload(struct plugin_host *h, struct instance *in);

#endif
