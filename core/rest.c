/* SPDX-License-Identifier: MIT */
/*
 * rest: see rest.h. Each request is a struct rest_req linked into the rest's
 * list and attached to its wsi as opaque user data; whichever of completion,
 * connection error, close or deadline comes first finishes it, exactly once.
 */
#include "rest.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "buf.h"
#include "log.h"
#include "url.h"
#include "util.h"

#define REST_MAX_BODY (4 * 1024 * 1024)

struct rest_req {
  struct rest_req *next, *prev;
  struct rest *r;
  struct lws *wsi;
  char method[8];
  int upload; /* rest_upload: a presigned PUT, no token, S3 headers */
  char path[2048];
  struct url dial; /* api_url, parsed; lws points into it */
  char request_id[UUID_STR_LEN];
  struct buf body; /* LWS_PRE headroom + body */
  struct buf resp;
  char *token;
  int status;
  int sent;
  int done;
  int failed; /* failed during connect; finished by the tick */
  int64_t deadline;
  rest_done_fn cb;
  void *ud;
};

struct rest {
  struct lws_context *ctx;
  const struct config *cfg;
  const struct keystore *ks;
  struct rest_req *head;
  size_t n;
  int in_connect; /* inside lws_client_connect_via_info */
  struct rest_count counts[REST_COUNTS];
  size_t ncounts;
};

/* Counts q's outcome under its endpoint: the method and the first segment
 * of the path (after api_url's own prefix), so ids are not labels. */
static void count(struct rest *r, const struct rest_req *q, int status) {
  char ep[48];
  if (q->upload) {
    snprintf(ep, sizeof ep, "PUT upload");
  } else {
    struct url u;
    size_t skip = 0;
    if (url_parse(r->cfg->api_url, &u, NULL, 0) == 0) {
      size_t pl = strlen(u.target);
      while (pl && u.target[pl - 1] == '/')
        pl--;
      if (!strncmp(q->path, u.target, pl))
        skip = pl;
    }
    const char *seg = q->path + skip;
    size_t n = strcspn(seg + 1, "/?") + 1;
    snprintf(ep, sizeof ep, "%s %.*s", q->method, (int)(n < 32 ? n : 32), seg);
  }
  for (size_t i = 0; i < r->ncounts; i++) {
    if (r->counts[i].status == status && !strcmp(r->counts[i].endpoint, ep)) {
      r->counts[i].n++;
      return;
    }
  }
  if (r->ncounts < REST_COUNTS) {
    struct rest_count *c = &r->counts[r->ncounts++];
    snprintf(c->endpoint, sizeof c->endpoint, "%s", ep);
    c->status = status;
    c->n = 1;
  }
}

const struct rest_count *rest_counts(const struct rest *r, size_t *n) {
  *n = r->ncounts;
  return r->counts;
}

static void req_unlink_free(struct rest_req *q) {
  struct rest *r = q->r;
  if (q->prev)
    q->prev->next = q->next;
  else
    r->head = q->next;
  if (q->next)
    q->next->prev = q->prev;
  r->n--;
  if (q->token) {
    OPENSSL_cleanse(q->token, strlen(q->token));
    free(q->token);
  }
  buf_fini(&q->body);
  buf_fini(&q->resp);
  free(q);
}

/* Finishes q: runs the callback once. The struct is freed here unless its
 * wsi is still alive, in which case the wsi's destruction frees it. */
static void req_finish(struct rest_req *q, int transport_ok) {
  if (q->done)
    return;
  q->done = 1;
  struct rest_result res = {0};
  res.http_status = transport_ok ? q->status : 0;
  count(q->r, q, res.http_status);
  res.body = q->resp.data ? q->resp.data : "";
  res.body_len = q->resp.len;
  int ok = 0;
  if (transport_ok && q->status >= 200 && q->status < 300) {
    ok = 1;
    json_t *root = json_loadb(res.body, res.body_len, 0, NULL);
    json_t *err = root ? json_object_get(root, "error") : NULL;
    if (json_is_object(err)) {
      ok = 0;
      res.error_code = (int)json_integer_value(json_object_get(err, "code"));
      if (!res.error_code)
        res.error_code = (int)json_integer_value(json_object_get(err, "status"));
    }
    json_decref(root);
  } else if (transport_ok && q->status == 401) {
    res.error_code = 401;
  }
  if (q->cb)
    q->cb(q->ud, ok, &res);
  if (!q->wsi)
    req_unlink_free(q);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                    void *in, size_t len) {
  struct rest_req *q = wsi ? lws_get_opaque_user_data(wsi) : NULL;
  switch (reason) {
  case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
    if (!q || q->done)
      return -1;
    unsigned char **p = in, *end = *p + len;
    char hdr[4096], clen[32];
    if (q->upload) {
      size_t ulen = q->body.len - LWS_PRE;
      int un = snprintf(clen, sizeof clen, "%zu", ulen);
      static const char octet[] = "application/octet-stream", acl[] = "public-read";
      if (lws_add_http_header_by_name(
              wsi, (const unsigned char *)"content-type:", (const unsigned char *)octet,
              sizeof octet - 1, p, end) ||
          lws_add_http_header_by_name(
              wsi, (const unsigned char *)"x-amz-acl:", (const unsigned char *)acl,
              sizeof acl - 1, p, end) ||
          lws_add_http_header_by_name(wsi, (const unsigned char *)"content-length:",
                                      (const unsigned char *)clen, un, p, end))
        return -1;
      if (ulen) {
        lws_client_http_body_pending(wsi, 1);
        lws_callback_on_writable(wsi);
      }
      break;
    }
    int n = snprintf(hdr, sizeof hdr, "Bearer %s", q->token);
    int rc = lws_add_http_header_by_name(
        wsi, (const unsigned char *)"authorization:", (unsigned char *)hdr, n, p, end);
    OPENSSL_cleanse(hdr, sizeof hdr);
    OPENSSL_cleanse(q->token, strlen(q->token));
    free(q->token);
    q->token = NULL;
    if (rc)
      return -1;
    size_t blen = q->body.len - LWS_PRE;
    n = snprintf(clen, sizeof clen, "%zu", blen);
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"content-type:",
                                    (const unsigned char *)"application/json", 16, p,
                                    end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"x-request-id:",
                                    (const unsigned char *)q->request_id, 36, p, end))
      return -1;
    if (blen || strcmp(q->method, "GET") != 0) {
      if (lws_add_http_header_by_name(wsi, (const unsigned char *)"content-length:",
                                      (const unsigned char *)clen, n, p, end))
        return -1;
      if (blen) {
        lws_client_http_body_pending(wsi, 1);
        lws_callback_on_writable(wsi);
      }
    }
    break;
  }
  case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE: {
    if (!q || q->sent)
      break;
    size_t blen = q->body.len - LWS_PRE;
    q->sent = 1;
    lws_client_http_body_pending(wsi, 0);
    if (lws_write(wsi, (unsigned char *)q->body.data + LWS_PRE, blen,
                  LWS_WRITE_HTTP_FINAL) < (int)blen)
      return -1;
    break;
  }
  case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
    if (q)
      q->status = (int)lws_http_client_http_response(wsi);
    break;
  case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
    char buffer[4096 + LWS_PRE];
    char *px = buffer + LWS_PRE;
    int lenx = (int)sizeof buffer - LWS_PRE;
    if (lws_http_client_read(wsi, &px, &lenx) < 0)
      return -1;
    break;
  }
  case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
    if (q && !q->done) {
      if (q->resp.len + len > REST_MAX_BODY || buf_append(&q->resp, in, len) < 0) {
        log_warn("rest: %s %s: response too large", q->method, q->path);
        return -1;
      }
    }
    break;
  case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
    if (q) {
      req_finish(q, 1);
      return -1; /* one request per connection: close now */
    }
    break;
  case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    if (q) {
      if (!q->done) {
        q->status = (int)lws_http_client_http_response(wsi);
        log_warn("rest: %s %s failed: %s", q->method, q->path,
                 in ? (const char *)in : "error");
      }
      q->wsi = NULL;
      lws_set_opaque_user_data(wsi, NULL);
      if (q->r->in_connect) {
        /* Inside rest_request: finish from the next tick instead, so the
         * callback never runs synchronously and q outlives the call. */
        q->deadline = 0;
        q->failed = 1;
      } else {
        req_finish(q, q->status == 401); /* frees q */
      }
    }
    break;
  case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
  case LWS_CALLBACK_WSI_DESTROY:
    if (q) {
      lws_set_opaque_user_data(wsi, NULL);
      q->wsi = NULL;
      if (!q->done)
        req_finish(q, 0); /* frees */
      else
        req_unlink_free(q);
    }
    break;
  default:
    break;
  }
  (void)user;
  return 0;
}

const struct lws_protocols rest_protocol = {
    .name = "blazebot-rest",
    .callback = callback,
    .per_session_data_size = 0,
    .rx_buffer_size = 0,
};

struct rest *rest_new(struct lws_context *ctx, const struct config *cfg,
                      const struct keystore *ks) {
  struct rest *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  r->ctx = ctx;
  r->cfg = cfg;
  r->ks = ks;
  return r;
}

void rest_free(struct rest *r) {
  if (!r)
    return;
  while (r->head) {
    struct rest_req *q = r->head;
    if (q->wsi) {
      lws_set_opaque_user_data(q->wsi, NULL);
      q->wsi = NULL;
    }
    if (!q->done)
      req_finish(q, 0);
    else
      req_unlink_free(q);
  }
  free(r);
}

void rest_set_config(struct rest *r, const struct config *cfg,
                     const struct keystore *ks) {
  r->cfg = cfg;
  r->ks = ks;
}

/* Links q and starts its connection (finished by the tick if that fails). */
static void start(struct rest *r, struct rest_req *q) {
  q->deadline = now_ms() + r->cfg->request_timeout_ms;
  q->next = r->head;
  if (r->head)
    r->head->prev = q;
  r->head = q;
  r->n++;

  struct lws_client_connect_info ci;
  memset(&ci, 0, sizeof ci);
  ci.context = r->ctx;
  ci.address = q->dial.host;
  ci.port = q->dial.port;
  ci.path = q->path;
  ci.host = q->dial.host_header;
  ci.origin = q->dial.host_header;
  ci.method = q->method;
  ci.ssl_connection = q->dial.tls ? LCCSCF_USE_SSL : 0;
  ci.alpn = "http/1.1";
  ci.protocol = rest_protocol.name;
  ci.local_protocol_name = rest_protocol.name;
  ci.opaque_user_data = q;
  ci.pwsi = &q->wsi;
  r->in_connect = 1;
  struct lws *w = lws_client_connect_via_info(&ci);
  r->in_connect = 0;
  if (!w) {
    /* Finished asynchronously by the next tick. */
    if (q->wsi)
      lws_set_opaque_user_data(q->wsi, NULL);
    q->wsi = NULL;
    q->deadline = 0;
    q->failed = 1;
  }
}

int rest_request(struct rest *r, const char *method, const char *path, const char *body,
                 size_t len, rest_done_fn cb, void *ud) {
  struct url u;
  if (url_parse(r->cfg->api_url, &u, NULL, 0) < 0)
    return -1;
  struct rest_req *q = calloc(1, sizeof *q);
  if (!q)
    return -1;
  q->r = r;
  q->cb = cb;
  q->ud = ud;
  q->dial = u;
  snprintf(q->method, sizeof q->method, "%s", method);
  /* api_url may carry a path prefix (a proxy); the signature covers the
   * request-target exactly as it is sent. */
  if (url_join(&u, path, q->path, sizeof q->path) < 0) {
    free(q);
    return -1;
  }
  if (uuid_v4(q->request_id) < 0 || buf_resize(&q->body, LWS_PRE) < 0 ||
      buf_append(&q->body, body, len) < 0 ||
      auth_sign(r->ks, method, q->path, body, len, 600, q->request_id, &q->token) < 0) {
    buf_fini(&q->body);
    free(q->token);
    free(q);
    return -1;
  }
  start(r, q);
  return 0;
}

int rest_upload(struct rest *r, const char *url, const void *body, size_t len,
                rest_done_fn cb, void *ud, char *err, size_t errlen) {
  struct url u;
  if (url_parse(url, &u, err, errlen) < 0)
    return -1;
  if (u.websocket || (!u.tls && !url_is_loopback(&u))) {
    snprintf(err, errlen, "the upload URL is not https (nor loopback http)");
    return -1;
  }
  struct rest_req *q = calloc(1, sizeof *q);
  if (!q) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  q->r = r;
  q->cb = cb;
  q->ud = ud;
  q->dial = u;
  q->upload = 1;
  snprintf(q->method, sizeof q->method, "PUT");
  snprintf(q->path, sizeof q->path, "%s", u.target);
  if (buf_resize(&q->body, LWS_PRE) < 0 || buf_append(&q->body, body, len) < 0) {
    buf_fini(&q->body);
    free(q);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  start(r, q);
  return 0;
}

void rest_tick(struct rest *r, int64_t now) {
  for (struct rest_req *q = r->head, *nx; q; q = nx) {
    nx = q->next;
    if (q->done || q->deadline > now)
      continue;
    if (!q->failed)
      log_warn("rest: %s %s timed out", q->method, q->path);
    if (q->wsi) {
      struct lws *w = q->wsi;
      lws_set_opaque_user_data(w, NULL);
      q->wsi = NULL;
      lws_set_timeout(w, PENDING_TIMEOUT_CLOSE_ACK, LWS_TO_KILL_ASYNC);
    }
    req_finish(q, q->failed && q->status == 401); /* frees q */
  }
}
