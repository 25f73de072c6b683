/* SPDX-License-Identifier: MIT */
/*
 * config: the blazebot.ini file, parsed with inih into an immutable snapshot.
 * A snapshot is never modified after config_load returns; a reload builds a
 * new one and swaps pointers. Snapshots are reference-counted: whoever keeps
 * one past the call that handed it (the daemon, each plugin instance, a
 * reload in progress) holds a reference, and the last config_free frees it,
 * on whichever thread that happens. Every problem is reported through log_error as
 * "FILE:LINE: message" (all of them, not just the first), and then loading
 * fails as a whole.
 */
#ifndef BLAZEBOT_CONFIG_H
#define BLAZEBOT_CONFIG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>

enum ack_transport { ACK_TRANSPORT_WEBSOCKET = 0, ACK_TRANSPORT_REST = 1 };

/* One key = value line of a [plugin.NAME] section, kept verbatim for the
 * plugin loader (which validates them). */
struct config_kv {
  char *key;
  char *value;
  int line;
};

struct config_plugin {
  char *name; /* NAME of [plugin.NAME] */
  int line;   /* line of the section header */
  struct config_kv *kv;
  size_t nkv;
};

struct config {
  atomic_int refs;        /* config_ref / config_free */
  char *path;             /* the ini file as given */
  char *dir;              /* the folder of the ini file; relative paths resolve here */
  char *keystore;         /* resolved path (required) */
  char *blaze_url;        /* default "wss://blaze.mixin.one/" */
  char *api_url;          /* default "https://api.mixin.one" (no trailing slash) */
  char *ca_file;          /* resolved path or NULL for the system store */
  int ack_transport;      /* enum ack_transport, default websocket */
  int ack_batch;          /* 1..100, default 100 */
  int ack_interval_ms;    /* 1..60000, default 200 */
  size_t max_frame_bytes; /* 1 KiB..1 GiB, default 4 MiB; accepts K/M/G suffix */
  int log_level;          /* enum log_level, default info */
  int log_format;         /* enum log_format (log.h), default text */
  int ping_interval_ms;   /* 1000..60000, default 12000 */
  int idle_timeout_ms; /* dead link after this much silence; default 30000, must be > ping
                        */
  int request_timeout_ms;  /* id-matched reply deadline; default 10000 */
  int connect_timeout_ms;  /* handshake deadline; default 10000 */
  int reconnect_min_ms;    /* backoff start; default 1000 */
  int reconnect_max_ms;    /* backoff cap; default 60000 */
  int outbox_capacity;     /* queued outgoing messages; default 10000 */
  int send_rate_per_min;   /* 1..100000; default 90000 (quota is 100,000/min) */
  int dedupe_capacity;     /* recent ids remembered; default 100000 */
  int workers;             /* processing threads; 1..64, default 2 */
  int shutdown_timeout_ms; /* graceful stop deadline; default 10000 */
  int reload_timeout_ms;   /* reload: wait for a plugin's in-flight call; default 5000 */
  struct config_plugin *plugins; /* [plugin.NAME] sections in file order */
  size_t nplugins;
  char *plugin_dir;  /* resolved path of the plugin folder, or NULL when not set */
  char *status_file; /* resolved path: pid and last reload outcome (JSON), or NULL */
  int allow_insecure_transport; /* ws:// and http:// beyond loopback; default 0 */
  char *dead_letter_file;       /* resolved path: messages plugins gave up on, or NULL */
  char *state_dir;      /* resolved path: plugins' private folders live here, or NULL */
  char *metrics_listen; /* HOST:PORT of /metrics and /healthz, or NULL */
  unsigned long long keys_set; /* bit i: key i of config.c's [blazebot] table was set
                                  in the file (clear: the default); for config_print */
};

/* Parses path. On success returns 0 and *out (free with config_free). On any
 * error logs every problem as "path:line: message" and returns the (positive)
 * number of errors; *out is NULL. Unknown sections other than [blazebot] and
 * [plugin.NAME], unknown keys, bad values, duplicates, and a missing keystore
 * key are all errors. Relative paths are resolved against the ini's folder. */
int config_load(const char *path, struct config **out);
/* Any thread: one more reference to cfg (returned). The count is not part
 * of the snapshot's value, so a const pointer may take one. */
const struct config *config_ref(const struct config *cfg);
/* Any thread: drops one reference; the last one frees the snapshot. NULL is
 * a no-op. */
void config_free(const struct config *cfg);

/* Returns the [plugin.NAME] section or NULL. */
const struct config_plugin *config_find_plugin(const struct config *cfg,
                                               const char *name);

/* Writes cfg to out as an ini file that config_load reads back to the same
 * values (blazebot --print-config): a header comment naming cfg->path, then
 * [blazebot] with every key config.c knows, in its table's order, with its
 * effective value, "; default" after each one the file did not set, paths
 * resolved (absolute), and a path key that is not set as a comment line
 * "; KEY = (not set) ; default: what that means". Then every [plugin.NAME]
 * section in file order with its keys as written, followed by the host's keys
 * the section leaves to their default: path and enabled as "; default" lines,
 * categories, priority and max_attempts (whose defaults come from the plugin,
 * unknown without loading it) as comment lines. Values of plugin keys named
 * by config_secret_key are written as ******** ("; masked"). A value that
 * cannot be written so that it reads back the same (a line break, leading or
 * trailing whitespace, a ';' after whitespace, a line over inih's length
 * limit) is written as a comment line saying why. Returns 0, the number of
 * values written as such comments, or -1 when writing to out failed. */
int config_print(const struct config *cfg, FILE *out);
/* 1 when config_print masks the value of a [plugin.NAME] key of this name:
 * ignoring case, the name contains "secret", "token", "passw", "passphrase",
 * "private" or "credential", or one of its words (runs of letters and digits,
 * trailing digits ignored) ends with "key", "keys", "pin", "pins" or "pwd":
 * api_token, client_secret, db_password, api_key, apiKey, pin and user_pin
 * are masked; keystore, keyword, ping_interval and mapping are not. The
 * host's own keys (path, enabled, categories, priority, max_attempts) never
 * are. */
int config_secret_key(const char *name);

#endif
