/* SPDX-License-Identifier: MIT */
/*
 * plugins_types: the two types that the plugin host's public header
 * (plugins.h) shares with its internal one (plugin_host.h): the services the
 * daemon hands the host, and the callback that ends a reload. They live here
 * and not in plugins.h only so that plugin_host.h need not include plugins.h:
 * plugins.c includes plugin_host.h, and scripts/check-deps.sh counts
 * plugins.c and plugins.h as one module, so that would be an include cycle.
 * Outside the plugin host, include plugins.h. No code; no thread.
 */
#ifndef BLAZEBOT_PLUGINS_TYPES_H
#define BLAZEBOT_PLUGINS_TYPES_H

#include <stddef.h>

#include "util.h"

struct job;
struct outbox_msg;
struct apicall_result;
struct apicall_upload_result;

/* What the host may ask of the daemon, handed to it at creation (the same
 * idea as the services table plugins get from the host): the host never
 * calls up into the daemon otherwise. */
struct plugin_host_services {
  /* Any thread: sends m on behalf of job (NULL: tied to no message). The
   * job is acknowledged only once m was accepted or refused. Returns 0 or
   * a negative error (outbox_send's). */
  int (*send)(void *ud, struct job *job, const struct outbox_msg *m,
              char id_out[UUID_STR_LEN]);
  /* Any thread: makes the I/O thread call plugins_poll soon. */
  void (*wake)(void *ud);
  /* Any thread: a call to the Mixin REST API (see apicall.h,
   * apicalls_submit); done(arg, ...) runs on the I/O thread exactly once
   * unless this returns -1. NULL when the daemon offers none. */
  int (*api)(void *ud, const char *method, const char *path, const void *body, size_t len,
             int timeout_ms, void (*done)(void *arg, const struct apicall_result *r),
             void *arg);
  /* Any thread: an attachment (see apicall.h, apicalls_upload); done runs
   * on the I/O thread exactly once unless this returns -1. NULL: none. */
  int (*upload)(void *ud, const void *data, size_t len, int timeout_ms,
                void (*done)(void *arg, const struct apicall_upload_result *r),
                void *arg);
  void *ud;
};

/* Ends a reload (see plugins_reload_begin): ok = nothing refused; summary:
 * one line. */
typedef void (*plugins_reload_done_fn)(void *ud, int ok, const char *summary);

#endif
