/* SPDX-License-Identifier: MIT */
/*
 * daemon: wires the modules into the running bot and owns the event loop.
 * Inbound message → dedupe → dispatch (a worker runs the handler, which may
 * send replies through the outbox) → when the handler returned and every
 * reply sent for the message was accepted or permanently refused by the
 * server → acknowledgement queued. Signals arrive through a signalfd on the
 * loop: SIGTERM/SIGINT stop gracefully (stop reading, finish in-flight work,
 * flush acks, close), SIGHUP reloads the configuration and the plugins (see
 * plugins.h, plugins_reload_begin).
 */
#ifndef BLAZEBOT_DAEMON_H
#define BLAZEBOT_DAEMON_H

#include <stdint.h>

#include "config.h"
#include "dispatch.h"
#include "keystore.h"
#include "outbox.h"

enum daemon_exit {
  DAEMON_EXIT_OK = 0,
  DAEMON_EXIT_CONFIG = 1, /* bad configuration or keystore */
  DAEMON_EXIT_AUTH = 2,   /* Blaze refused the credentials (401) */
  DAEMON_EXIT_FATAL = 3,  /* any other unrecoverable error */
};

struct daemon;

/* The processing step in handler mode (tests, embedding). Runs on a worker
 * thread. May call daemon_reply. Returns 0 or a negative error (logged and
 * counted; the message is still acknowledged). */
typedef int (*daemon_handler_fn)(void *ud, struct daemon *d, struct job *job);

struct daemon_counters {
  uint64_t received;   /* message pushes decoded */
  uint64_t processed;  /* jobs finished and acknowledged */
  uint64_t duplicates; /* redeliveries skipped (acked again if done) */
  uint64_t malformed;  /* pushes that could not be decoded */
  uint64_t deferred;   /* pushes left for redelivery while stopping */
  uint64_t holds;      /* times the socket was held for back pressure */
  uint64_t handler_errors;
  uint64_t acked; /* acks the server confirmed */
  uint64_t replies_accepted, replies_dropped;
};

/* Takes ownership of cfg and ks. fn NULL = plugin mode: the plugins of cfg
 * are loaded (any refusal fails the start). Returns NULL on error (logged)
 * with a daemon_exit code in *exit_code. */
struct daemon *daemon_new(struct config *cfg, struct keystore *ks, daemon_handler_fn fn,
                          void *ud, int *exit_code);
void daemon_free(struct daemon *d);

/* Runs until stopped by a signal, daemon_stop, or a fatal error. Returns a
 * daemon_exit code. */
int daemon_run(struct daemon *d);
/* After daemon_run: 1 when plugin code was still running at exit (a plugin
 * ignored the stop deadline or a second stop signal came). The threads that
 * run it cannot be joined and its code cannot be unmapped, so the caller
 * must end the process without daemon_free (main: _exit). */
int daemon_abandoned(const struct daemon *d);
/* blazebot --replay: instead of daemon_run. Delivers each message of a
 * dead-letter file again to the plugin named in its record (whatever that
 * plugin subscribes to), sends their replies over REST without opening the
 * Blaze connection, acknowledges nothing, and returns once all finished:
 * DAEMON_EXIT_OK when every one was processed, DAEMON_EXIT_CONFIG when some
 * could not be read, had no such plugin, or failed again (then they are in
 * dead_letter_file again, which must not be the file replayed). */
int daemon_replay(struct daemon *d, const char *path);
/* Any thread: asks the loop to stop gracefully. */
void daemon_stop(struct daemon *d);

/* Worker thread, inside the handler for job: sends a message whose
 * acknowledgement of job waits until the server accepted or refused it.
 * Returns outbox_send's result. */
int daemon_reply(struct daemon *d, struct job *job, const struct outbox_msg *m,
                 char id_out[UUID_STR_LEN]);

void daemon_get_counters(struct daemon *d, struct daemon_counters *out);
/* Writes all counters (daemon, session, acks, outbox) as one JSON object. */
char *daemon_stats_json(struct daemon *d);
const char *daemon_bot_id(const struct daemon *d);
/* Number of plugin instances loaded (0 in handler mode). */
size_t daemon_plugin_count(const struct daemon *d);

#endif
