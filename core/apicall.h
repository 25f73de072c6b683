/* SPDX-License-Identifier: MIT */
/*
 * apicall: calls to the Mixin REST API that plugins make (plugin.h:
 * api_request), with the bot's own session. Any thread submits a call (it
 * is copied onto a locked queue and the loop is woken); the I/O thread runs
 * it through rest (a token signed for exactly that method, URI and body),
 * enforces the call's deadline, retries a GET that got no answer, 429 or a
 * 5xx with backoff, and hands the result to the call's done function, on
 * the I/O thread, exactly once. POSTs are never retried: the API does not
 * promise they are idempotent.
 */
#ifndef BLAZEBOT_APICALL_H
#define BLAZEBOT_APICALL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "rest.h"

struct apicalls;

struct apicall_result {
  int http_status;  /* 0: no answer (deadline, transport, stopping) */
  int error_code;   /* Mixin's {"error":{"code"}}, else 0 */
  const char *body; /* NUL-terminated, "" when none; borrowed for the call */
  size_t body_len;
};

/* I/O thread, exactly once per accepted call. */
typedef void (*apicall_done_fn)(void *arg, const struct apicall_result *r);

/* The largest request body a call may carry. */
#define APICALL_MAX_BODY (1u << 20)

/* wake: any thread; must make the I/O thread call apicalls_tick soon. */
struct apicalls *apicalls_new(struct rest *rest, const struct config *cfg,
                              void (*wake)(void *), void *wake_ud);
/* Calls still pending are answered (http_status 0) first. */
void apicalls_free(struct apicalls *a);
void apicalls_set_config(struct apicalls *a, const struct config *cfg);

/* Any thread. method "GET" or "POST"; path the request-target (starts with
 * '/', no spaces or control characters); body copied. timeout_ms 0: the
 * config's request_timeout_ms. Returns 0, or -1 (invalid, out of memory,
 * or stopping: then done is never called). */
int apicalls_submit(struct apicalls *a, const char *method, const char *path,
                    const void *body, size_t len, int timeout_ms, apicall_done_fn done,
                    void *arg);
/* What an upload ends with (I/O thread, exactly once per accepted upload). */
struct apicall_upload_result {
  int ok;                    /* 1: attachment_id holds the new attachment */
  const char *attachment_id; /* "" on failure */
  int http_status;           /* of the failing step; 0 no answer */
  int error_code;            /* Mixin's code of the failing step, else 0 */
  const char *error;         /* one line: what failed; "" on success */
};
typedef void (*apicall_upload_fn)(void *arg, const struct apicall_upload_result *r);

/* The largest attachment an upload takes. */
#define APICALL_MAX_UPLOAD (16u << 20)

/* Any thread: an attachment from data (copied): POST /attachments, then a
 * PUT of the bytes to the upload_url it returned. One deadline for both
 * steps (timeout_ms, 0: twice request_timeout_ms); POST /attachments is
 * retried like a GET (an unused attachment costs nothing), the PUT is
 * retried on no answer and 5xx. Returns 0 or -1 (then done never runs). */
int apicalls_upload(struct apicalls *a, const void *data, size_t len, int timeout_ms,
                    apicall_upload_fn done, void *arg);
/* I/O thread: starts queued calls, retries due GETs, ends overdue calls. */
void apicalls_tick(struct apicalls *a, int64_t now);
/* I/O thread: refuses new calls and answers every pending one now
 * (http_status 0); answers still in flight in rest are then ignored. */
void apicalls_abort(struct apicalls *a);
/* Calls accepted and not yet answered. Any thread. */
size_t apicalls_pending(struct apicalls *a);

#endif
