/* SPDX-License-Identifier: MIT */
/*
 * metrics: see metrics.h. One response per request, built whole when the
 * request arrives and written in chunks as the socket takes them.
 */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hist.h"
#include "log.h"

#define CHUNK 16384

struct metrics {
  struct lws_vhost *vh;
  metrics_render_fn render;
  metrics_health_fn health;
  void *ud;
  char iface[128];
  int port;
};

/* Per connection. */
struct mconn {
  struct buf resp; /* LWS_PRE headroom, then the body */
  size_t off;      /* bytes of the body written */
};

static int respond(struct lws *wsi, struct mconn *c, unsigned status, const char *ctype,
                   const char *body, size_t len) {
  unsigned char hdr[LWS_PRE + 512];
  unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr - 1;
  buf_reset(&c->resp);
  if (buf_resize(&c->resp, LWS_PRE) < 0 || buf_append(&c->resp, body, len) < 0)
    return -1;
  c->off = 0;
  if (lws_add_http_common_headers(wsi, status, ctype, len, &p, end) ||
      lws_finalize_write_http_header(wsi, start, &p, end))
    return -1;
  lws_callback_on_writable(wsi);
  return 0;
}

static int on_http(struct lws *wsi, struct mconn *c, const char *uri) {
  struct metrics *m = lws_vhost_user(lws_get_vhost(wsi));
  if (!m || lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
    static const char only[] = "only GET\n";
    return respond(wsi, c, HTTP_STATUS_METHOD_NOT_ALLOWED, "text/plain", only,
                   sizeof only - 1);
  }
  if (!strcmp(uri, "/metrics")) {
    struct buf b = {0};
    m->render(m->ud, &b);
    int rc = respond(wsi, c, HTTP_STATUS_OK, "text/plain; version=0.0.4; charset=utf-8",
                     b.data ? b.data : "", b.len);
    buf_fini(&b);
    return rc;
  }
  if (!strcmp(uri, "/healthz")) {
    char reason[256] = "", body[400];
    int ok = m->health(m->ud, reason, sizeof reason);
    json_t *o =
        json_pack("{s:s,s:s}", "status", ok ? "ok" : "unhealthy", "reason", reason);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    snprintf(body, sizeof body, "%s\n", s ? s : "{}");
    free(s);
    json_decref(o);
    return respond(wsi, c, ok ? HTTP_STATUS_OK : HTTP_STATUS_SERVICE_UNAVAILABLE,
                   "application/json", body, strlen(body));
  }
  static const char nf[] = "not found: try /metrics or /healthz\n";
  return respond(wsi, c, HTTP_STATUS_NOT_FOUND, "text/plain", nf, sizeof nf - 1);
}

static int on_writeable(struct lws *wsi, struct mconn *c) {
  size_t total = c->resp.len > LWS_PRE ? c->resp.len - LWS_PRE : 0;
  size_t left = total - c->off;
  size_t n = left > CHUNK ? CHUNK : left;
  int final = n == left;
  unsigned char *p = (unsigned char *)c->resp.data + LWS_PRE + c->off;
  if (lws_write(wsi, p, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
    return -1;
  c->off += n;
  if (!final) {
    lws_callback_on_writable(wsi);
    return 0;
  }
  buf_fini(&c->resp);
  return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                    void *in, size_t len) {
  struct mconn *c = user;
  switch (reason) {
  case LWS_CALLBACK_HTTP:
    return c && on_http(wsi, c, in ? (const char *)in : "") < 0 ? -1 : 0;
  case LWS_CALLBACK_HTTP_BODY:
    return -1; /* no request has a body */
  case LWS_CALLBACK_HTTP_WRITEABLE:
    return c && c->resp.data ? on_writeable(wsi, c) : 0;
  case LWS_CALLBACK_CLOSED_HTTP:
  case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    if (c)
      buf_fini(&c->resp);
    break;
  default:
    break;
  }
  (void)len;
  return lws_callback_http_dummy(wsi, reason, user, in, len);
}

const struct lws_protocols metrics_protocols[] = {
    {"blazebot-metrics", callback, sizeof(struct mconn), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

struct metrics *metrics_new(struct lws_context *ctx, const char *listen,
                            metrics_render_fn render, metrics_health_fn health, void *ud,
                            char *err, size_t errlen) {
  struct metrics *m = calloc(1, sizeof *m);
  if (!m) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  m->render = render;
  m->health = health;
  m->ud = ud;
  /* HOST:PORT, the host possibly [v6]. */
  const char *colon = strrchr(listen, ':');
  char *endp = NULL;
  long port = colon ? strtol(colon + 1, &endp, 10) : -1;
  size_t hlen = colon ? (size_t)(colon - listen) : 0;
  if (!colon || !*(colon + 1) || *endp || port < 0 || port > 65535 || hlen == 0 ||
      hlen >= sizeof m->iface) {
    snprintf(err, errlen, "metrics_listen '%s' is not HOST:PORT (e.g. 127.0.0.1:9464)",
             listen);
    free(m);
    return NULL;
  }
  if (listen[0] == '[' && hlen > 2 && listen[hlen - 1] == ']')
    memcpy(m->iface, listen + 1, hlen - 2);
  else
    memcpy(m->iface, listen, hlen);
  struct lws_context_creation_info vi;
  memset(&vi, 0, sizeof vi);
  vi.vhost_name = "blazebot-metrics";
  vi.port = (int)port;
  vi.iface = m->iface;
  vi.protocols = metrics_protocols;
  vi.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
  if (!strchr(m->iface, ':'))
    vi.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
  vi.user = m;
  vi.keepalive_timeout = 10;
  vi.timeout_secs = 10;
  vi.server_string = "blazebot";
  m->vh = lws_create_vhost(ctx, &vi);
  if (!m->vh) {
    snprintf(err, errlen,
             "metrics_listen %s: cannot listen there (in use, or not a local "
             "address?)",
             listen);
    free(m);
    return NULL;
  }
  m->port = lws_get_vhost_listen_port(m->vh);
  log_info("metrics: serving /metrics and /healthz on %s:%d", m->iface, m->port);
  return m;
}

void metrics_free(struct metrics *m) {
  /* The vhost goes with the context (lws_context_destroy). */
  free(m);
}

int metrics_port(const struct metrics *m) {
  return m->port;
}

void metrics_family(struct buf *b, const char *name, const char *type, const char *help) {
  buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_sample(struct buf *b, const char *name, const char *labels, double value) {
  if (labels && *labels)
    buf_appendf(b, "%s{%s} %.15g\n", name, labels, value);
  else
    buf_appendf(b, "%s %.15g\n", name, value);
}

void metrics_label(char *dst, size_t cap, const char *key, const char *value) {
  size_t n = strlen(dst);
  if (n + 4 >= cap)
    return;
  n += (size_t)snprintf(dst + n, cap - n, "%s%s=\"", n ? "," : "", key);
  for (const char *s = value; *s && n + 3 < cap; s++) {
    if (*s == '\\' || *s == '"') {
      dst[n++] = '\\';
      dst[n++] = *s;
    } else if (*s == '\n') {
      dst[n++] = '\\';
      dst[n++] = 'n';
    } else {
      dst[n++] = *s;
    }
  }
  if (n + 1 < cap)
    dst[n++] = '"';
  dst[n] = 0;
}

void metrics_histogram(struct buf *b, const char *name, const char *labels,
                       const struct hist *h) {
  char l[400], bname[160];
  snprintf(bname, sizeof bname, "%s_bucket", name);
  uint64_t cum = 0;
  for (int i = 0; i <= HIST_BUCKETS; i++) {
    cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
    snprintf(l, sizeof l, "%s", labels ? labels : "");
    char le[32];
    if (i < HIST_BUCKETS)
      snprintf(le, sizeof le, "%g", hist_bounds[i]);
    else
      snprintf(le, sizeof le, "+Inf");
    metrics_label(l, sizeof l, "le", le);
    metrics_sample(b, bname, l, (double)cum);
  }
  /* _count equals the +Inf bucket by definition (a concurrent observation
   * may have been counted in one and not yet the other). */
  snprintf(bname, sizeof bname, "%s_sum", name);
  metrics_sample(b, bname, labels,
                 (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6);
  snprintf(bname, sizeof bname, "%s_count", name);
  metrics_sample(b, bname, labels, (double)cum);
}
