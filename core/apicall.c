/* SPDX-License-Identifier: MIT */
/*
 * apicall: see apicall.h. A call goes inbox (locked, any thread) → queue
 * (I/O thread) → in rest → answered, or back to the queue with a retry
 * time (GET only). Each call has one deadline for all its attempts. A call
 * whose deadline passes while its request is still in rest is answered at
 * once; the request stays linked (orphaned) until rest reports it, so the
 * rest callback never sees freed memory.
 */
#include "apicall.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "util.h"

struct call {
  struct call *next;
  char method[8];
  char *path;
  char *body;
  size_t len;
  int64_t deadline; /* 0 until queued on the I/O thread */
  int timeout_ms;
  int64_t due; /* next attempt (retries) */
  int attempts;
  int in_rest; /* a request is in rest now */
  int orphan;  /* answered already: the rest callback only frees it */
  apicall_done_fn done;
  void *arg;
  /* An upload: step 1 is POST /attachments (method/path/body above), step
   * 2 the PUT of data to upload_url. */
  apicall_upload_fn up_done;
  char *data;
  size_t data_len;
  char *upload_url; /* set after step 1 */
  char attachment_id[64];
  struct apicalls *a;
};

struct apicalls {
  struct rest *rest;
  int request_timeout_ms;
  void (*wake)(void *);
  void *wake_ud;
  pthread_mutex_t mu;
  struct call *inbox; /* guarded by mu */
  int closed;         /* guarded by mu */
  size_t pending;     /* guarded by mu: accepted, not answered */
  struct call *calls; /* I/O thread: queued, waiting or in rest */
};

struct apicalls *apicalls_new(struct rest *rest, const struct config *cfg,
                              void (*wake)(void *), void *wake_ud) {
  struct apicalls *a = calloc(1, sizeof *a);
  if (!a)
    return NULL;
  a->rest = rest;
  a->wake = wake;
  a->wake_ud = wake_ud;
  pthread_mutex_init(&a->mu, NULL);
  apicalls_set_config(a, cfg);
  return a;
}

void apicalls_set_config(struct apicalls *a, const struct config *cfg) {
  a->request_timeout_ms = cfg->request_timeout_ms;
}

static void call_free(struct call *c) {
  free(c->path);
  free(c->body);
  free(c->data);
  free(c->upload_url);
  free(c);
}

static int valid_path(const char *p) {
  if (!p || p[0] != '/' || strlen(p) > 2048)
    return 0;
  for (const unsigned char *s = (const unsigned char *)p; *s; s++)
    if (*s <= ' ' || *s == 0x7f)
      return 0;
  return 1;
}

/* Any thread: puts c on the inbox and wakes the loop; -1 (c freed) once
 * closed. */
static int enqueue(struct apicalls *a, struct call *c) {
  c->a = a;
  pthread_mutex_lock(&a->mu);
  if (a->closed) {
    pthread_mutex_unlock(&a->mu);
    call_free(c);
    return -1;
  }
  c->next = a->inbox;
  a->inbox = c;
  a->pending++;
  pthread_mutex_unlock(&a->mu);
  a->wake(a->wake_ud);
  return 0;
}

int apicalls_submit(struct apicalls *a, const char *method, const char *path,
                    const void *body, size_t len, int timeout_ms, apicall_done_fn done,
                    void *arg) {
  if (!done || !method || (strcmp(method, "GET") && strcmp(method, "POST")) ||
      !valid_path(path) || len > APICALL_MAX_BODY || (len && !body) ||
      (len && !strcmp(method, "GET")) || timeout_ms < 0)
    return -1;
  struct call *c = calloc(1, sizeof *c);
  if (!c)
    return -1;
  snprintf(c->method, sizeof c->method, "%s", method);
  c->path = strdup(path);
  c->body = malloc(len + 1);
  if (!c->path || !c->body) {
    call_free(c);
    return -1;
  }
  if (len)
    memcpy(c->body, body, len);
  c->body[len] = 0;
  c->len = len;
  c->timeout_ms = timeout_ms;
  c->done = done;
  c->arg = arg;
  return enqueue(a, c);
}

int apicalls_upload(struct apicalls *a, const void *data, size_t len, int timeout_ms,
                    apicall_upload_fn done, void *arg) {
  if (!done || !len || !data || len > APICALL_MAX_UPLOAD || timeout_ms < 0)
    return -1;
  struct call *c = calloc(1, sizeof *c);
  if (!c)
    return -1;
  snprintf(c->method, sizeof c->method, "POST");
  c->path = strdup("/attachments");
  c->body = strdup("{}");
  c->data = malloc(len);
  if (!c->path || !c->body || !c->data) {
    call_free(c);
    return -1;
  }
  memcpy(c->data, data, len);
  c->data_len = len;
  c->len = 2;
  c->timeout_ms = timeout_ms ? timeout_ms : 2 * a->request_timeout_ms;
  c->up_done = done;
  c->arg = arg;
  return enqueue(a, c);
}

size_t apicalls_pending(struct apicalls *a) {
  pthread_mutex_lock(&a->mu);
  size_t n = a->pending;
  pthread_mutex_unlock(&a->mu);
  return n;
}

static void unlink_call(struct apicalls *a, struct call *c) {
  for (struct call **pp = &a->calls; *pp; pp = &(*pp)->next) {
    if (*pp == c) {
      *pp = c->next;
      return;
    }
  }
}

/* Hands the result to the caller. The call stays linked while rest still
 * has its request (orphan), otherwise it is freed. For an upload, r is the
 * failing step's answer (ok: the attachment is done) and why says what. */
static void finish(struct apicalls *a, struct call *c, const struct apicall_result *r,
                   int ok, const char *why) {
  c->orphan = 1;
  pthread_mutex_lock(&a->mu);
  a->pending--;
  pthread_mutex_unlock(&a->mu);
  if (c->up_done) {
    const struct apicall_upload_result u = {.ok = ok,
                                            .attachment_id = ok ? c->attachment_id : "",
                                            .http_status = ok ? 200 : r->http_status,
                                            .error_code = ok ? 0 : r->error_code,
                                            .error = ok ? "" : why};
    if (!ok)
      log_warn("api: upload of %zu bytes failed: %s (HTTP %d, code %d)", c->data_len, why,
               r->http_status, r->error_code);
    c->up_done(c->arg, &u);
  } else {
    c->done(c->arg, r);
  }
  if (!c->in_rest) {
    unlink_call(a, c);
    call_free(c);
  }
}

static void answer(struct apicalls *a, struct call *c, const struct apicall_result *r) {
  finish(a, c, r, 0,
         c->upload_url ? "the upload was refused" : "POST /attachments failed");
}

static void answer_none(struct apicalls *a, struct call *c) {
  const struct apicall_result r = {.http_status = 0, .body = "", .body_len = 0};
  finish(a, c, &r, 0, "no answer before the deadline");
}

/* Step 1 of an upload answered 2xx: keep the attachment id and the upload
 * URL, and go on to the PUT. Returns 0, or -1 with why set. */
static int upload_step1(struct call *c, const char *body, size_t len, const char **why) {
  json_t *root = json_loadb(body, len, 0, NULL);
  json_t *data = root ? json_object_get(root, "data") : NULL;
  const char *id = json_string_value(json_object_get(data, "attachment_id"));
  const char *url = json_string_value(json_object_get(data, "upload_url"));
  int rc = -1;
  if (!id || !uuid_valid(id) || !url || !*url) {
    *why = "POST /attachments answered without attachment_id and upload_url";
  } else if (!(c->upload_url = strdup(url))) {
    *why = "out of memory";
  } else {
    snprintf(c->attachment_id, sizeof c->attachment_id, "%s", id);
    rc = 0;
  }
  json_decref(root);
  return rc;
}

static int64_t backoff_ms(int attempts) {
  int64_t d = 200;
  for (int i = 1; i < attempts && d < 5000; i++)
    d *= 2;
  return d > 5000 ? 5000 : d;
}

static void on_rest(void *ud, int ok, const struct rest_result *res) {
  struct call *c = ud;
  struct apicalls *a = c->a;
  c->in_rest = 0;
  if (c->orphan) {
    unlink_call(a, c);
    call_free(c);
    return;
  }
  int st = res->http_status;
  int retryable = st == 0 || st == 429 || st >= 500 || res->error_code == 429 ||
                  (res->error_code >= 500 && res->error_code < 600);
  int64_t now = now_ms();
  if (c->up_done && ok) {
    if (c->upload_url) { /* the PUT went through: done */
      finish(a, c, NULL, 1, "");
      return;
    }
    const char *why = NULL;
    if (upload_step1(c, res->body, res->body_len, &why) < 0) {
      const struct apicall_result r = {.http_status = st, .body = "", .body_len = 0};
      finish(a, c, &r, 0, why);
      return;
    }
    c->attempts = 0;
    c->due = now; /* the PUT, on this tick or the next */
    return;
  }
  /* A GET, POST /attachments or an upload's PUT may be retried. */
  if (retryable && (!strcmp(c->method, "GET") || c->up_done) &&
      now + backoff_ms(c->attempts) < c->deadline) {
    c->due = now + backoff_ms(c->attempts);
    log_debug("api: %s %s: %d (code %d); retrying", c->method, c->path, st,
              res->error_code);
    return;
  }
  const struct apicall_result r = {.http_status = st,
                                   .error_code = res->error_code,
                                   .body = res->body ? res->body : "",
                                   .body_len = res->body ? res->body_len : 0};
  answer(a, c, &r);
}

void apicalls_tick(struct apicalls *a, int64_t now) {
  pthread_mutex_lock(&a->mu);
  struct call *in = a->inbox;
  a->inbox = NULL;
  pthread_mutex_unlock(&a->mu);
  while (in) {
    struct call *c = in;
    in = c->next;
    int t = c->timeout_ms ? c->timeout_ms : a->request_timeout_ms;
    c->deadline = now + t;
    c->due = now;
    c->next = a->calls;
    a->calls = c;
  }
  for (struct call *c = a->calls, *next; c; c = next) {
    next = c->next;
    if (c->orphan || c->in_rest) {
      if (!c->orphan && now >= c->deadline) {
        log_warn("api: %s %s: no answer before the call's deadline", c->method, c->path);
        answer_none(a, c); /* stays linked until rest reports */
      }
      continue;
    }
    if (now >= c->deadline) {
      log_warn("api: %s %s: deadline passed after %d attempt(s)", c->method, c->path,
               c->attempts);
      answer_none(a, c);
      continue;
    }
    if (c->due > now)
      continue;
    c->attempts++;
    if (c->upload_url) {
      char err[200];
      if (rest_upload(a->rest, c->upload_url, c->data, c->data_len, on_rest, c, err,
                      sizeof err) == 0) {
        c->in_rest = 1;
      } else {
        const struct apicall_result r = {.http_status = 0, .body = "", .body_len = 0};
        finish(a, c, &r, 0, err);
      }
      continue;
    }
    if (rest_request(a->rest, c->method, c->path, c->body, c->len, on_rest, c) == 0) {
      c->in_rest = 1;
    } else {
      c->due = now + backoff_ms(c->attempts);
      if (strcmp(c->method, "GET") != 0 && !c->up_done) {
        log_warn("api: %s %s: the request could not be started", c->method, c->path);
        answer_none(a, c);
      }
    }
  }
}

void apicalls_abort(struct apicalls *a) {
  pthread_mutex_lock(&a->mu);
  a->closed = 1;
  pthread_mutex_unlock(&a->mu);
  apicalls_tick(a, now_ms()); /* takes the inbox */
  const struct apicall_result none = {.http_status = 0, .body = "", .body_len = 0};
  for (struct call *c = a->calls, *next; c; c = next) {
    next = c->next;
    if (!c->orphan)
      finish(a, c, &none, 0, "the daemon is stopping");
  }
}

void apicalls_free(struct apicalls *a) {
  if (!a)
    return;
  apicalls_abort(a);
  /* Orphans still in rest: rest_free reports them (on_rest frees them) if
   * it runs first; whatever is left is freed here. */
  while (a->calls) {
    struct call *c = a->calls;
    a->calls = c->next;
    call_free(c);
  }
  pthread_mutex_destroy(&a->mu);
  free(a);
}
