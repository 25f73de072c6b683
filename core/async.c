/* SPDX-License-Identifier: MIT */
/*
 * async: see async.h. Holds are found by id under the host mutex; an API
 * call or upload is a ticket in the instance's ledger (work_outstanding)
 * from the call until its callback returned on the plugin's strand.
 */
#include "async.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apicall.h"
#include "exec.h"
#include "log.h"
#include "plugin_host.h"

static struct instance *inst_of(blazebot_ctx *ctx) {
  return ctx ? ctx->inst : NULL;
}

/* ---- the message being handled, and holds ------------------------------------- */

/* The job a send from this thread belongs to: only the thread running
 * on_message for the instance, during that call. Any thread may ask: one
 * that sees a job also sees the thread stored before it (exec_deliver). */
struct job *async_current_job(struct instance *in) {
  struct job *job = atomic_load(&in->current_job);
  if (job && pthread_equal(atomic_load(&in->current_thread), pthread_self()))
    return job;
  return NULL;
}

struct hold *async_pin(struct instance *in, blazebot_hold *handle,
                       const struct blazebot_message *msg) {
  uint64_t id = (uint64_t)(uintptr_t)handle;
  struct hold *found = NULL;
  pthread_mutex_lock(&in->h->mu);
  for (struct hold *hd = in->holds; hd && !found; hd = hd->next) {
    if (hd->release_pending)
      continue;
    if (handle ? hd->id == id : &((struct job_route *)hd->job->route)->view == msg)
      found = hd;
  }
  if (found)
    found->sending++;
  pthread_mutex_unlock(&in->h->mu);
  return found;
}

/* Host mutex held: takes hd out of in's list (it may be detached already,
 * by async_release_holds). */
static void hold_unlink_locked(struct instance *in, struct hold *hd) {
  for (struct hold **pp = &in->holds; *pp; pp = &(*pp)->next) {
    if (*pp == hd) {
      *pp = hd->next;
      return;
    }
  }
}

/* Ends hd (host mutex not held): its result joins the delivery's outcome. */
static void hold_end(struct instance *in, struct hold *hd, int result) {
  pthread_mutex_lock(&in->h->mu);
  hold_unlink_locked(in, hd);
  int last = exec_hold_drop_locked(hd->job, result);
  pthread_mutex_unlock(&in->h->mu);
  if (last)
    exec_resume_post(hd->job);
  free(hd);
}

void async_unpin(struct instance *in, struct hold *hd) {
  pthread_mutex_lock(&in->h->mu);
  int end = --hd->sending == 0 && hd->release_pending;
  pthread_mutex_unlock(&in->h->mu);
  if (end)
    hold_end(in, hd, hd->release_result);
}

blazebot_hold *async_hold(blazebot_ctx *ctx, const struct blazebot_message *msg) {
  struct instance *in = inst_of(ctx);
  if (!in || !msg)
    return NULL;
  struct job *job = async_current_job(in);
  if (!job || msg != atomic_load(&in->current_view)) {
    log_warn("plugin %s: hold() outside on_message for that message", in->name);
    return NULL;
  }
  struct hold *hd = calloc(1, sizeof *hd);
  if (!hd)
    return NULL;
  hd->job = job;
  pthread_mutex_lock(&in->h->mu);
  hd->id = ++in->h->next_hold_id;
  hd->next = in->holds;
  in->holds = hd;
  ((struct job_route *)job->route)->holds++;
  pthread_mutex_unlock(&in->h->mu);
  return (blazebot_hold *)(uintptr_t)hd->id;
}

int async_release(blazebot_ctx *ctx, blazebot_hold *handle, int result) {
  struct instance *in = inst_of(ctx);
  if (!in || !handle)
    return -1;
  uint64_t id = (uint64_t)(uintptr_t)handle;
  pthread_mutex_lock(&in->h->mu);
  struct hold *hd = in->holds;
  while (hd && (hd->id != id || hd->release_pending))
    hd = hd->next;
  int now = hd && !hd->sending;
  if (hd) {
    /* Taken under the lock, so that neither a second release nor a send
     * (async_pin) on another thread finds it before hold_end unlinks it.
     * While a send tied to it is being queued, the last such send ends it
     * (async_unpin). */
    hd->release_pending = 1;
    hd->release_result = result;
  }
  pthread_mutex_unlock(&in->h->mu);
  if (!hd) {
    log_warn("plugin %s: release() of a hold that is not taken (released twice?)",
             in->name);
    return -1;
  }
  if (now)
    hold_end(in, hd, result);
  return 0;
}

void async_release_holds(struct plugin_host *h, struct instance *in) {
  /* Each is taken under the lock like a release (a release by the plugin
   * on another thread no longer finds it); those with a send in progress
   * are ended by that send, which may free them at once, so the message id
   * is copied first. */
  for (;;) {
    char id[UUID_STR_LEN];
    pthread_mutex_lock(&h->mu);
    struct hold *hd = in->holds;
    while (hd && hd->release_pending)
      hd = hd->next;
    int now = hd && !hd->sending;
    if (hd) {
      hd->release_pending = 1;
      hd->release_result = BLAZEBOT_RETRY;
      memcpy(id, hd->job->id, sizeof id);
    }
    pthread_mutex_unlock(&h->mu);
    if (!hd)
      return;
    log_warn("plugin %s: message %s still held at shutdown; it comes again (RETRY)",
             in->name, id);
    if (now)
      hold_end(in, hd, BLAZEBOT_RETRY);
  }
}

/* ---- api_request ---------------------------------------------------------------- */

/* One api_request: counted in the instance's ledger (work_outstanding)
 * from the call until its done callback returned, so the instance is not
 * shut down before it has its answer. */
struct api_call {
  struct dispatch_item item;
  struct instance *inst;
  blazebot_api_fn done;
  void *arg;
  int http_status, error_code;
  char *body; /* NULL: out of memory copying it ("" is handed over) */
  size_t body_len;
};

static void api_run(struct dispatch_item *it) {
  struct api_call *c = (struct api_call *)((char *)it - offsetof(struct api_call, item));
  struct instance *in = c->inst;
  const struct blazebot_api_response r = {.size = sizeof r,
                                          .http_status = c->http_status,
                                          .error_code = c->error_code,
                                          .body = c->body ? c->body : "",
                                          .body_len = c->body ? c->body_len : 0};
  c->done(in->state, c->arg, &r);
  free(c->body);
  free(c);
  atomic_fetch_sub(&in->work_outstanding, 1);
}

/* I/O thread: the answer, taken to the instance's strand. */
static void api_answered(void *arg, const struct apicall_result *r) {
  struct api_call *c = arg;
  c->http_status = r->http_status;
  c->error_code = r->error_code;
  c->body = malloc(r->body_len + 1);
  if (c->body) {
    memcpy(c->body, r->body, r->body_len);
    c->body[r->body_len] = 0;
    c->body_len = r->body_len;
  } else {
    c->http_status = 0; /* reported as no answer */
  }
  c->item.run = api_run;
  dispatch_post(c->inst->h->disp, c->inst->slot->strand, &c->item);
}

int async_api_request(blazebot_ctx *ctx, const char *method, const char *path,
                      const void *body, size_t body_len, uint32_t timeout_ms,
                      blazebot_api_fn done, void *arg) {
  struct instance *in = inst_of(ctx);
  if (!in || !done || !in->h->svc.api || atomic_load(&in->closing) ||
      timeout_ms > 3600000)
    return -1;
  struct api_call *c = calloc(1, sizeof *c);
  if (!c)
    return -1;
  c->inst = in;
  c->done = done;
  c->arg = arg;
  atomic_fetch_add(&in->work_outstanding, 1);
  if (atomic_load(&in->closing)) {
    /* The shutdown began after the check above: it may already have seen
     * the ledger empty, so this call must not start (counted first, then
     * checked again: the shutdown sets closing, then waits for the count). */
    atomic_fetch_sub(&in->work_outstanding, 1);
    free(c);
    return -1;
  }
  if (in->h->svc.api(in->h->svc.ud, method, path, body, body_len, (int)timeout_ms,
                     api_answered, c) < 0) {
    atomic_fetch_sub(&in->work_outstanding, 1);
    free(c);
    log_warn("plugin %s: api_request %s %s refused (method GET or POST, a path starting "
             "with '/', a body up to 1 MiB and none for GET; or the daemon is stopping)",
             in->name, method ? method : "(null)", path ? path : "(null)");
    return -1;
  }
  return 0;
}

/* ---- upload ------------------------------------------------------------------------ */

/* One upload, in the instance's ledger like an api_call. */
struct upload_call {
  struct dispatch_item item;
  struct instance *inst;
  blazebot_upload_fn done;
  void *arg;
  int ok, http_status, error_code;
  char attachment_id[64];
  char error[200];
};

static void upload_run(struct dispatch_item *it) {
  struct upload_call *c =
      (struct upload_call *)((char *)it - offsetof(struct upload_call, item));
  struct instance *in = c->inst;
  const struct blazebot_upload_result r = {.size = sizeof r,
                                           .ok = (uint32_t)c->ok,
                                           .http_status = c->http_status,
                                           .error_code = c->error_code,
                                           .attachment_id = c->attachment_id,
                                           .error = c->error};
  c->done(in->state, c->arg, &r);
  free(c);
  atomic_fetch_sub(&in->work_outstanding, 1);
}

static void upload_answered(void *arg, const struct apicall_upload_result *r) {
  struct upload_call *c = arg;
  c->ok = r->ok;
  c->http_status = r->http_status;
  c->error_code = r->error_code;
  snprintf(c->attachment_id, sizeof c->attachment_id, "%s", r->attachment_id);
  snprintf(c->error, sizeof c->error, "%s", r->error);
  c->item.run = upload_run;
  dispatch_post(c->inst->h->disp, c->inst->slot->strand, &c->item);
}

/* "type/subtype", printable, no spaces. */
static int valid_mime(const char *m) {
  const char *slash = m ? strchr(m, '/') : NULL;
  if (!slash || slash == m || !slash[1] || strlen(m) > 127)
    return 0;
  for (; *m; m++)
    if (*m <= ' ' || *m >= 0x7f)
      return 0;
  return 1;
}

int async_upload(blazebot_ctx *ctx, const void *data, size_t len, const char *mime,
                 uint32_t timeout_ms, blazebot_upload_fn done, void *arg) {
  struct instance *in = inst_of(ctx);
  if (!in || !done || !in->h->svc.upload || atomic_load(&in->closing) ||
      timeout_ms > 3600000)
    return -1;
  if (!valid_mime(mime) || !data || !len) {
    log_warn("plugin %s: upload needs data and a MIME type like image/png", in->name);
    return -1;
  }
  struct upload_call *c = calloc(1, sizeof *c);
  if (!c)
    return -1;
  c->inst = in;
  c->done = done;
  c->arg = arg;
  atomic_fetch_add(&in->work_outstanding, 1);
  if (atomic_load(&in->closing)) { /* see async_api_request */
    atomic_fetch_sub(&in->work_outstanding, 1);
    free(c);
    return -1;
  }
  if (in->h->svc.upload(in->h->svc.ud, data, len, (int)timeout_ms, upload_answered, c) <
      0) {
    atomic_fetch_sub(&in->work_outstanding, 1);
    free(c);
    log_warn("plugin %s: upload of %zu bytes refused (at most 16 MiB; or the daemon is "
             "stopping)",
             in->name, len);
    return -1;
  }
  log_debug("plugin %s: uploading %zu bytes of %s", in->name, len, mime);
  return 0;
}
