/* SPDX-License-Identifier: MIT */
/*
 * loader: turns a [plugin.NAME] section into a checked instance, or a
 * refusal with one precise reason: the file named by the section (inside
 * plugin_dir, which must be a safe directory and not a symbolic link),
 * opened without following links and checked on its descriptor (type, mode,
 * owner), a private copy of it in a sealed memfd (a staged file under
 * $TMPDIR only where memfds are unavailable), its ELF headers (class,
 * machine, type, not truncated), dlopen RTLD_NOW|RTLD_LOCAL of the copy
 * (/proc/self/fd/N), the entry symbol, the ABI major and minor, the
 * descriptor's size, name and required callbacks, its copy, and the
 * subscriptions and max_attempts (the ini overrides the descriptor). Also
 * the slots (a plugin name's stable place in the host) and the duplicate
 * name check. Calls no plugin callback but the entry symbol (init is the
 * caller's) and starts no thread: the main thread at startup, the I/O thread
 * during a reload.
 */
#ifndef BLAZEBOT_LOADER_H
#define BLAZEBOT_LOADER_H

#include <stddef.h>

struct blazebot_plugin;
struct config;
struct config_plugin;
struct instance;
struct plugin_host;
struct slot;
struct sub;

/* "true"/"yes"/"on"/"1" or "false"/"no"/"off"/"0", any case; -1 otherwise. */
int loader_parse_bool(const char *s, int *out);
/* The subscriptions of in under section sec (ini over descriptor). */
int loader_parse_subs(const struct instance *in, const struct config_plugin *sec,
                      const struct config *cfg, struct sub *subs, int *nout, char *err,
                      size_t errlen);
/* The section's max_attempts, or -1 when it sets none. */
int loader_parse_max_attempts(const struct config_plugin *sec, const struct config *cfg,
                              int *out, char *err, size_t errlen);
/* The ini's max_attempts (parsed), or the plugin's default. */
int loader_max_attempts_for(int parsed, const struct blazebot_plugin *desc);
/* Frees an instance whose init never ran or failed, or that was shut down;
 * dlcloses it when may_unload (and then closes the memfd of its copy once
 * the copy is really unmapped; a copy left mapped keeps its memfd open). */
void loader_close(struct instance *in, int may_unload);
/* The section is enabled; *bad (when given) is set, and logged, when its
 * enabled key is not a boolean. */
int loader_is_enabled(const struct config *cfg, const struct config_plugin *sec,
                      int *bad);
/* The section's enabled key is present but not a boolean. */
int loader_enabled_bad(const struct config_plugin *sec);
/* plugin_dir/file of a section, checked to stay inside plugin_dir. */
int loader_plugin_src(const struct config *cfg, const struct config_plugin *sec,
                      char *src, size_t srclen, char *err, size_t errlen);
/* plugin_dir is set, a directory that is not a symbolic link, and safe
 * (owned by root or the daemon's user, not group- or other-writable).
 * loader_open checks it again on every load. */
int loader_check_plugin_dir(const struct config *cfg, char *err, size_t errlen);
/* Creates the host's staging folder once (only the fallback for systems
 * without memfd_create uses it). */
int loader_ensure_stage_dir(struct plugin_host *h, char *err, size_t errlen);
/* Checks plugin_dir and the file, copies it, opens and checks the plugin of
 * sec (no init, no slot). */
struct instance *loader_open(struct plugin_host *h, const struct config *cfg,
                             const struct config_plugin *sec, char *err, size_t errlen);
/* The slot of plugin name, or NULL. */
struct slot *loader_slot_find(struct plugin_host *h, const char *name);
/* The slot of plugin name, made (with its strand) when there is none yet. */
struct slot *loader_slot_get(struct plugin_host *h, const char *name);
/* Logs "plugin NAME loaded: ...". */
void loader_log_loaded(const struct instance *in);

#endif
