/* SPDX-License-Identifier: MIT */
/*
 * http: the HTTP side of the simulator on the same port as Blaze — the
 * WebSocket upgrade check (GET / over HTTP/1.1, Host, RFC 6455 headers, JWT,
 * subprotocol, reject faults), the reading of every other request, the
 * response writers, the unauthenticated control API under /_sim/ for tests,
 * and the dispatch to the Mixin REST API (rest.c, each call with a fresh JWT
 * signed over METHOD + URI + BODY) and to the upload and view URLs of
 * attachments (files.c, no token, as on S3). On plain TCP the method and
 * URI are taken from the request line as sent (reqline.c), not from lws's
 * sanitised parse, and every connection carries one request ("Connection:
 * close"), so nothing a client sends on a later request escapes that
 * reading. Bodies are read up to SIM_MAX_BODY (SIM_MAX_UPLOAD for an
 * upload); a response is built whole and written in chunks from
 * HTTP_WRITEABLE. An api_slow fault holds a routed request on the lws timer
 * of its connection and answers it from LWS_CALLBACK_TIMER. Mixin-style
 * errors are HTTP 202 with {"error":{...}}, as the real API answers (HTTP
 * 500 for server failures); a bad token is HTTP 401.
 */
#include "sim.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "log.h"

#define RESP_CHUNK 16384

static const char *method_name(int m) {
  switch (m) {
  case LWSHUMETH_GET:
    return "GET";
  case LWSHUMETH_POST:
    return "POST";
  case LWSHUMETH_OPTIONS:
    return "OPTIONS";
  case LWSHUMETH_PUT:
    return "PUT";
  case LWSHUMETH_PATCH:
    return "PATCH";
  case LWSHUMETH_DELETE:
    return "DELETE";
  case LWSHUMETH_HEAD:
    return "HEAD";
  default:
    return "?";
  }
}

static void req_free(struct http_req *r) {
  if (!r)
    return;
  free(r->uri);
  free(r->auth);
  free(r->resp);
  buf_fini(&r->body);
  memset(r, 0, sizeof *r);
}

/* ---- JWT ---- */

int http_auth_check(struct sim *sim, const char *authorization, const char *method,
                    const char *uri, const void *body, size_t body_len, char *err,
                    size_t errlen) {
  if (!authorization || !*authorization) {
    snprintf(err, errlen, "no Authorization header");
    return -1;
  }
  const char *t = authorization;
  while (*t == ' ')
    t++;
  if (strncasecmp(t, "Bearer ", 7) != 0) {
    snprintf(err, errlen, "Authorization is not \"Bearer <token>\"");
    return -1;
  }
  t += 7;
  while (*t == ' ')
    t++;
  struct auth_claims cl;
  if (auth_verify(sim->pub, t, &cl, err, errlen) < 0)
    return -1;
  if (strcasecmp(cl.uid, sim->bot_id) != 0) {
    snprintf(err, errlen, "uid %s is not the bot %s", cl.uid, sim->bot_id);
    return -1;
  }
  if (strcasecmp(cl.sid, sim->session_id) != 0) {
    snprintf(err, errlen, "sid %s is not the keystore session %s", cl.sid,
             sim->session_id);
    return -1;
  }
  char want[65];
  auth_request_sig(method, uri, body, body_len, want);
  if (strcmp(cl.sig, want) != 0) {
    snprintf(err, errlen, "sig %.16s... is not sha256(%s %s + %zu body bytes) = %.16s...",
             cl.sig, method, uri, body_len, want);
    return -1;
  }
  int64_t now = wall_s();
  if (cl.exp <= now) {
    snprintf(err, errlen, "token expired %lld s ago", (long long)(now - cl.exp));
    return -1;
  }
  int64_t skew = cl.iat - now;
  if (skew > 300 || skew < -300) {
    snprintf(err, errlen, "iat is %lld s off the server clock (limit 300)",
             (long long)skew);
    return -1;
  }
  if (!cl.jti[0]) {
    snprintf(err, errlen, "token has no jti");
    return -1;
  }
  if (strmap_get(&sim->jti, cl.jti, NULL)) {
    snprintf(err, errlen, "jti %s was already used (tokens are single-use)", cl.jti);
    return -1;
  }
  /* A token id only has to be remembered while its token could still pass
   * the exp check, so a full cache first drops the expired ones. */
  if (sim->jti.count >= SIM_JTI_MAX)
    strmap_prune_below(&sim->jti, now);
  if (sim->jti.count >= SIM_JTI_MAX || strmap_put(&sim->jti, cl.jti, cl.exp) < 0) {
    snprintf(err, errlen, "replay cache full");
    return -1;
  }
  return 0;
}

/* A malloc'd copy of a header (NULL when absent or longer than cap). */
static char *header_dup(struct lws *wsi, enum lws_token_indexes h, int cap) {
  int n = lws_hdr_total_length(wsi, h);
  if (n <= 0 || n > cap)
    return NULL;
  char *s = malloc((size_t)n + 1);
  if (s && lws_hdr_copy(wsi, s, n + 1, h) < 0) {
    free(s);
    return NULL;
  }
  return s;
}

/* ---- the request as sent ---- */

/* The method, request-target and version of a request as the client sent
 * them (over TLS: as lws parsed them). */
struct sent_req {
  char method[16];
  char version[16];
  char *target; /* path plus query (owned) */
};

/* Over TLS there is only lws's reading: its sanitised path plus the query
 * rebuilt from its fragments. Returns a malloc'd string or NULL. */
static char *lws_target(struct lws *wsi, const char *path, size_t len) {
  struct buf uri = {0};
  char frag[512];
  if (buf_append(&uri, path, len) < 0)
    return NULL;
  for (int i = 0; i < 32; i++) {
    int n = lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, i);
    if (n <= 0)
      break;
    if (buf_append(&uri, i ? "&" : "?", 1) < 0 || buf_append(&uri, frag, (size_t)n) < 0) {
      buf_fini(&uri);
      return NULL;
    }
  }
  return uri.data;
}

static unsigned fail(char *why, size_t whylen, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static unsigned fail(char *why, size_t whylen, unsigned status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, whylen, fmt, ap);
  va_end(ap);
  return status;
}

/* Fills s with the request as the client sent it: on plain TCP from the
 * line peeked at accept, over TLS from lws's parse. Returns 0, or the HTTP
 * status to refuse the request with and the reason in why. */
static unsigned request_sent(struct sim *sim, struct lws *wsi, struct sent_req *s,
                             char *why, size_t whylen) {
  char *uri_ptr = NULL;
  int uri_len = 0;
  const char *lws_method =
      method_name(lws_http_get_uri_and_method(wsi, &uri_ptr, &uri_len));
  memset(s, 0, sizeof *s);
  if (sim->cfg.tls_cert) {
    snprintf(s->method, sizeof s->method, "%s", lws_method);
    if (lws_hdr_copy(wsi, s->version, sizeof s->version, WSI_TOKEN_HTTP) <= 0)
      snprintf(s->version, sizeof s->version, "HTTP/1.0");
    s->target =
        uri_ptr && uri_len > 0 ? lws_target(wsi, uri_ptr, (size_t)uri_len) : strdup("/");
    return s->target ? 0 : fail(why, whylen, 500, "out of memory");
  }
  char *line;
  unsigned st = 0;
  const char *method, *target, *version;
  switch (reqline_take(sim, lws_get_socket_fd(wsi), &line)) {
  case REQLINE_SEEN:
    break;
  case REQLINE_TIMEOUT:
    return fail(why, whylen, HTTP_STATUS_REQUEST_TIMEOUT,
                "no request line within %d ms of connecting", SIM_REQLINE_WAIT_MS);
  case REQLINE_TOO_LONG:
    return fail(why, whylen, HTTP_STATUS_REQ_URI_TOO_LONG,
                "request line longer than %d bytes", SIM_MAX_REQLINE);
  case REQLINE_BAD:
    return fail(why, whylen, HTTP_STATUS_BAD_REQUEST, "NUL byte in the request line");
  case REQLINE_TAKEN:
    return fail(why, whylen, HTTP_STATUS_BAD_REQUEST,
                "a second request on a plain-TCP connection (one per connection here)");
  default:
    return fail(why, whylen, HTTP_STATUS_BAD_REQUEST, "the request line was not seen");
  }
  if (reqline_split(line, &method, &target, &version) < 0)
    st = fail(why, whylen, HTTP_STATUS_BAD_REQUEST, "malformed request line");
  else if (strcmp(method, lws_method) != 0)
    st = fail(why, whylen, HTTP_STATUS_BAD_REQUEST,
              "request line method %.15s is not the one parsed (%s)", method, lws_method);
  else if (strcmp(version, "HTTP/1.1") != 0 && strcmp(version, "HTTP/1.0") != 0)
    st = fail(why, whylen, HTTP_STATUS_HTTP_VERSION_NOT_SUPPORTED, "%.15s not supported",
              version);
  else if (target[0] != '/')
    st = fail(why, whylen, HTTP_STATUS_BAD_REQUEST,
              "request-target %.64s is not a path (origin-form)", target);
  else if (!(s->target = strdup(target)))
    st = fail(why, whylen, 500, "out of memory");
  if (!st) {
    snprintf(s->method, sizeof s->method, "%s", method);
    snprintf(s->version, sizeof s->version, "%s", version);
  }
  free(line);
  return st;
}

/* Host must be there, once, and a port in it must be the one served. The
 * name is not checked: the simulator answers to any. Returns 0 or 400. */
static unsigned check_host(struct sim *sim, struct lws *wsi, char *why, size_t whylen) {
  char host[300];
  int n = lws_hdr_total_length(wsi, WSI_TOKEN_HOST);
  if (n <= 0)
    return fail(why, whylen, HTTP_STATUS_BAD_REQUEST, "no Host header");
  if (n >= (int)sizeof host || lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) < 0)
    return fail(why, whylen, HTTP_STATUS_BAD_REQUEST, "Host header too long");
  /* lws chains a repeated header as fragments, with one separator each. */
  if (lws_hdr_fragment_length(wsi, WSI_TOKEN_HOST, 0) != n)
    return fail(why, whylen, HTTP_STATUS_BAD_REQUEST, "more than one Host header");
  const char *port = NULL;
  if (host[0] == '[') {
    const char *e = strchr(host, ']');
    if (!e || (e[1] && e[1] != ':'))
      return fail(why, whylen, HTTP_STATUS_BAD_REQUEST, "malformed Host %s", host);
    port = e[1] ? e + 2 : NULL;
  } else {
    const char *c = strchr(host, ':');
    if (c && strchr(c + 1, ':'))
      return fail(why, whylen, HTTP_STATUS_BAD_REQUEST, "malformed Host %s", host);
    port = c ? c + 1 : NULL;
    if (c == host || !host[0])
      return fail(why, whylen, HTTP_STATUS_BAD_REQUEST, "Host %s has no name", host);
  }
  if (!port || !*port)
    return 0;
  size_t pl = strspn(port, "0123456789");
  int served = lws_get_vhost_listen_port(sim->vhost);
  if (port[pl] || pl > 5)
    return fail(why, whylen, HTTP_STATUS_BAD_REQUEST, "Host %s has a malformed port",
                host);
  if (atoi(port) != served)
    return fail(why, whylen, HTTP_STATUS_BAD_REQUEST,
                "Host %s does not name the port served (%d)", host, served);
  return 0;
}

/* 1 when key is what RFC 6455 §4.1 asks for: 16 bytes in base64 (24
 * characters, the last two "=="). */
static int ws_key_ok(const char *key) {
  if (strlen(key) != 24 || strcmp(key + 22, "==") != 0)
    return 0;
  for (int i = 0; i < 22; i++) {
    char c = key[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          c == '+' || c == '/'))
      return 0;
  }
  return 1;
}

/* ---- the WebSocket upgrade ---- */

/* 1 when the comma-separated list has exactly this token. */
static int has_token(const char *list, const char *tok) {
  size_t tl = strlen(tok);
  const char *p = list;
  while (*p) {
    while (*p == ' ' || *p == ',' || *p == '\t')
      p++;
    size_t n = strcspn(p, ", \t");
    if (n == tl && strncmp(p, tok, n) == 0)
      return 1;
    p += n;
  }
  return 0;
}

static int refuse(struct sim *sim, struct lws *wsi, unsigned int status,
                  const char *why) {
  sim->st.handshake_rejects++;
  log_info("handshake refused with %u: %s", status, why);
  lws_return_http_status(wsi, status, NULL);
  return 1; /* > 0: lws completes the transaction (the response is out) */
}

/* The checks of an upgrade that come before the token's. Returns 0 or the
 * status to refuse with (the reason in why). */
static unsigned upgrade_refusal(struct sim *sim, struct lws *wsi,
                                const struct sent_req *s, char *why, size_t whylen) {
  char val[256];
  if (strcmp(s->method, "GET") != 0)
    return fail(why, whylen, HTTP_STATUS_METHOD_NOT_ALLOWED, "upgrade with %s, not GET",
                s->method);
  if (strcmp(s->version, "HTTP/1.1") != 0)
    return fail(why, whylen, HTTP_STATUS_BAD_REQUEST, "upgrade over %s, not HTTP/1.1",
                s->version);
  /* Blaze serves only "/"; a query may follow, and is signed. */
  size_t pl = strcspn(s->target, "?");
  if (pl != 1 || s->target[0] != '/')
    return fail(why, whylen, HTTP_STATUS_NOT_FOUND, "upgrade on %.*s, not /",
                pl > 64 ? 64 : (int)pl, s->target);
  unsigned st = check_host(sim, wsi, why, whylen);
  if (st)
    return st;
  if (lws_hdr_copy(wsi, val, sizeof val, WSI_TOKEN_VERSION) <= 0 ||
      strcmp(val, "13") != 0)
    return fail(why, whylen, HTTP_STATUS_BAD_REQUEST, "Sec-WebSocket-Version is not 13");
  if (lws_hdr_copy(wsi, val, sizeof val, WSI_TOKEN_KEY) <= 0 || !ws_key_ok(val))
    return fail(why, whylen, HTTP_STATUS_BAD_REQUEST,
                "Sec-WebSocket-Key is not 16 bytes in base64");
  int n = lws_hdr_copy(wsi, val, sizeof val, WSI_TOKEN_PROTOCOL);
  if (n <= 0 || !has_token(val, SIM_SUBPROTOCOL) || has_token(val, SIM_HTTP_PROTOCOL))
    return fail(why, whylen, HTTP_STATUS_BAD_REQUEST, "%s",
                n > 0 ? "Sec-WebSocket-Protocol lacks Mixin-Blaze-1"
                      : "no Sec-WebSocket-Protocol (want Mixin-Blaze-1)");
  return 0;
}

static int confirm_upgrade(struct sim *sim, struct lws *wsi, const char *upgrade) {
  char why[256];
  struct sent_req s;
  if (!upgrade || strcasecmp(upgrade, "websocket") != 0)
    return refuse(sim, wsi, HTTP_STATUS_BAD_REQUEST, "not a websocket upgrade");
  unsigned st = request_sent(sim, wsi, &s, why, sizeof why);
  if (!st)
    st = upgrade_refusal(sim, wsi, &s, why, sizeof why);
  if (!st && faults_take_reject(sim))
    st = fail(why, sizeof why, HTTP_STATUS_UNAUTHORIZED, "reject401 fault");
  if (!st) {
    /* The token signs the request-target that was sent (protocol.md §1.3). */
    char *auth = header_dup(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, SIM_MAX_AUTH);
    if (http_auth_check(sim, auth, "GET", s.target, "", 0, why, sizeof why) < 0) {
      sim->st.auth_failures++;
      st = HTTP_STATUS_UNAUTHORIZED;
    }
    free(auth);
  }
  free(s.target);
  return st ? refuse(sim, wsi, st, why) : 0;
}

/* ---- responses ---- */

int http_respond(struct lws *wsi, struct http_req *r, unsigned int status,
                 const char *ctype, const char *hname, const char *hval, const void *body,
                 size_t len) {
  unsigned char hdr[LWS_PRE + 1024];
  unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr - 1;
  free(r->resp);
  r->resp = malloc(LWS_PRE + len + 1);
  if (!r->resp)
    return -1;
  if (len)
    memcpy(r->resp + LWS_PRE, body, len);
  r->resp_len = len;
  r->resp_off = 0;
  if (lws_add_http_common_headers(wsi, status, ctype, len, &p, end))
    return -1;
  if (r->close_after &&
      lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
                                   (const unsigned char *)"close", 5, &p, end))
    return -1;
  if (r->request_id[0] &&
      lws_add_http_header_by_name(wsi, (const unsigned char *)"x-request-id:",
                                  (const unsigned char *)r->request_id,
                                  (int)strlen(r->request_id), &p, end))
    return -1;
  if (hname && lws_add_http_header_by_name(wsi, (const unsigned char *)hname,
                                           (const unsigned char *)hval, (int)strlen(hval),
                                           &p, end))
    return -1;
  if (lws_finalize_write_http_header(wsi, start, &p, end))
    return -1;
  lws_callback_on_writable(wsi);
  return 0;
}

static int respond(struct lws *wsi, struct http_req *r, unsigned int status,
                   const char *body, size_t len) {
  return http_respond(wsi, r, status, "application/json", NULL, NULL, body, len);
}

int http_respond_json(struct lws *wsi, struct http_req *r, unsigned int status,
                      json_t *obj) {
  char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
  json_decref(obj);
  if (!s) {
    static const char oom[] = "{\"error\":{\"status\":500,\"code\":500,\"description\":"
                              "\"Internal Server Error.\"}}";
    return respond(wsi, r, 500, oom, sizeof oom - 1);
  }
  int rc = respond(wsi, r, status, s, strlen(s));
  free(s);
  return rc;
}

int http_respond_data(struct lws *wsi, struct http_req *r, json_t *data) {
  return http_respond_json(wsi, r, 200,
                           json_pack("{s:o}", "data", data ? data : json_null()));
}

int http_respond_mixin_error(struct lws *wsi, struct http_req *r, int code,
                             const char *reason) {
  int status = (code >= 500 && code <= 599) || code == 7000 || code == 7001 ? 500 : 202;
  json_t *e = json_pack("{s:i,s:i,s:s}", "status", status, "code", code, "description",
                        faults_error_description(code));
  if (e && reason && *reason)
    json_object_set_new(e, "extra", json_pack("{s:s}", "reason", reason));
  return http_respond_json(wsi, r, (unsigned)status, json_pack("{s:o}", "error", e));
}

int http_respond_unauthorized(struct lws *wsi, struct http_req *r) {
  static const char unauth[] =
      "{\"error\":{\"status\":401,\"code\":401,\"description\":\"Unauthorized\"}}";
  return respond(wsi, r, 401, unauth, sizeof unauth - 1);
}

int http_respond_plain_error(struct lws *wsi, struct http_req *r, unsigned int status,
                             const char *what) {
  return http_respond_json(wsi, r, status, json_pack("{s:s}", "error", what));
}

json_t *http_body_json(const struct http_req *r) {
  json_error_t je;
  return json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, &je);
}

static int endpoint_run(struct sim *sim, struct lws *wsi, struct http_req *r) {
  return r->endpoint == EP_UPLOAD || r->endpoint == EP_VIEW ? files_run(sim, wsi, r)
                                                            : rest_run(sim, wsi, r);
}

int http_endpoint_start(struct sim *sim, struct lws *wsi, struct http_req *r) {
  sim->st.api_calls[r->endpoint]++;
  long ms = faults_take_api_slow(sim, r->endpoint);
  if (ms > 0) {
    /* The answer waits for LWS_CALLBACK_TIMER; nothing is read meanwhile,
     * so no lws timeout has to run, and a client that leaves takes the
     * timer with it. */
    r->delayed = 1;
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    lws_set_timer_usecs(wsi, (lws_usec_t)ms * LWS_US_PER_MS);
    return 0;
  }
  return endpoint_run(sim, wsi, r);
}

static int write_body(struct lws *wsi, struct http_req *r) {
  if (!r || !r->resp)
    return 0;
  size_t left = r->resp_len - r->resp_off;
  size_t n = left > RESP_CHUNK ? RESP_CHUNK : left;
  int final = n == left;
  /* In place: the LWS_PRE bytes before the chunk are the reserved headroom
   * or body bytes already sent, which lws may overwrite. */
  unsigned char *p = r->resp + LWS_PRE + r->resp_off;
  if (lws_write(wsi, p, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
    return -1;
  r->resp_off += n;
  if (!final) {
    lws_callback_on_writable(wsi);
    return 0;
  }
  int close = r->close_after;
  req_free(r);
  if (close || lws_http_transaction_completed(wsi))
    return -1;
  return 0;
}

/* ---- control API ---- */

/* text with every "%d" replaced by i, appended to out. */
/* text with "%d" replaced by i (the message's number in this push) and
 * "%n" by n (its index in the store, which latency samples name). */
static int substitute(struct buf *out, const char *text, long i, size_t n) {
  buf_reset(out);
  for (const char *p = text; *p;) {
    const char *q = p;
    while ((q = strchr(q, '%')) && q[1] != 'd' && q[1] != 'n')
      q++;
    if (!q)
      return buf_append(out, p, strlen(p));
    if (buf_append(out, p, (size_t)(q - p)) < 0 ||
        (q[1] == 'd' ? buf_appendf(out, "%ld", i) : buf_appendf(out, "%zu", n)) < 0)
      return -1;
    p = q + 2;
  }
  return 0;
}

static int control_push(struct sim *sim, struct lws *wsi, struct http_req *r) {
  json_t *root = r->body.len ? http_body_json(r) : json_object();
  if (!json_is_object(root)) {
    json_decref(root);
    return http_respond_plain_error(wsi, r, 400, "body must be a JSON object");
  }
  json_t *jc = json_object_get(root, "count");
  json_t *jcat = json_object_get(root, "category");
  json_t *jtext = json_object_get(root, "text");
  json_t *juser = json_object_get(root, "user_id");
  json_t *jconv = json_object_get(root, "conversation_id");
  json_t *jrate = json_object_get(root, "rate");
  const char *err = NULL;
  long count = jc ? (long)json_integer_value(jc) : 1;
  long rate = jrate ? (long)json_integer_value(jrate) : 0;
  if (jc && (!json_is_integer(jc) || count < 1 || count > SIM_MAX_PUSH))
    err = "count must be an integer 1..1000000";
  else if (jcat && (!json_is_string(jcat) || json_string_length(jcat) == 0 ||
                    json_string_length(jcat) >= SIM_CATEGORY_MAX))
    err = "category must be a non-empty string";
  else if (jtext && !json_is_string(jtext))
    err = "text must be a string";
  else if (juser && (!json_is_string(juser) || !uuid_valid(json_string_value(juser))))
    err = "user_id must be a UUID";
  else if (jconv && (!json_is_string(jconv) || !uuid_valid(json_string_value(jconv))))
    err = "conversation_id must be a UUID";
  else if (jrate && (!json_is_integer(jrate) || rate < 1 || rate > 1000000))
    err = "rate must be an integer 1..1000000 (messages a second)";
  if (err) {
    json_decref(root);
    return http_respond_plain_error(wsi, r, 400, err);
  }
  const char *cat = jcat ? json_string_value(jcat) : "PLAIN_TEXT";
  const char *text = jtext ? json_string_value(jtext) : "message %d";
  char conv[UUID_STR_LEN] = "";
  if (jconv) {
    for (size_t i = 0; i < UUID_STR_LEN; i++)
      conv[i] = (char)tolower((unsigned char)json_string_value(jconv)[i]);
  }
  size_t fixed_user = juser ? store_user(sim, json_string_value(juser)) : 0;
  json_t *ids = json_array();
  struct buf data = {0};
  long made = 0;
  if (fixed_user == SIZE_MAX || !ids)
    goto oom;
  int64_t start_us = now_us();
  for (; made < count; made++) {
    size_t user = juser ? fixed_user : store_next_user(sim);
    if (substitute(&data, text, made, sim->nmsgs) < 0)
      goto oom;
    size_t idx = store_add(sim, user, cat, jconv ? conv : NULL,
                           data.data ? data.data : "", data.len, 0);
    if (idx == SIM_MSG_INDEX_NONE)
      goto oom;
    if (rate) /* paced: one every 1/rate s from now, in order */
      sim->msgs[idx].visible_us = start_us + (int64_t)(made * 1000000.0 / (double)rate);
    if (made < 1000)
      json_array_append_new(ids, json_string(sim->msgs[idx].message_id));
  }
  log_info("control: %ld %s message(s) pushed (store: %zu)", made, cat, sim->nmsgs);
  buf_fini(&data);
  json_decref(root);
  ws_wake_all(sim);
  return http_respond_json(
      wsi, r, 200, json_pack("{s:o,s:i}", "message_ids", ids, "count", (json_int_t)made));
oom:
  buf_fini(&data);
  json_decref(root);
  json_decref(ids);
  if (made)
    ws_wake_all(sim);
  return http_respond_plain_error(wsi, r, 500, "out of memory");
}

static int control_fault(struct sim *sim, struct lws *wsi, struct http_req *r) {
  char err[200];
  json_t *root = http_body_json(r);
  const char *spec = json_string_value(json_object_get(root, "fault"));
  struct sim_fault f;
  int rc;
  if (!spec)
    rc = http_respond_plain_error(wsi, r, 400, "body must be {\"fault\":\"SPEC\"}");
  else if (faults_parse(spec, &f, err, sizeof err) < 0)
    rc = http_respond_plain_error(wsi, r, 400, err);
  else if (faults_arm(sim, &f) < 0)
    rc = http_respond_plain_error(wsi, r, 409, "too many faults armed");
  else
    rc = http_respond_json(wsi, r, 200, json_pack("{s:s}", "armed", spec));
  json_decref(root);
  return rc;
}

static int control_dispatch(struct sim *sim, struct lws *wsi, struct http_req *r) {
  int post = r->method == LWSHUMETH_POST, get = r->method == LWSHUMETH_GET;
  const char *p = r->path + 6; /* after "/_sim/" */
  if (get && !strcmp(p, "stats"))
    return http_respond_json(wsi, r, 200, stats_json(sim));
  if (post && !strcmp(p, "push"))
    return control_push(sim, wsi, r);
  if (post && !strcmp(p, "fault"))
    return control_fault(sim, wsi, r);
  if (get && !strcmp(p, "sent"))
    return http_respond_json(wsi, r, 200, sent_list_json(sim));
  if (get && !strcmp(p, "conversations"))
    return http_respond_json(wsi, r, 200, json_incref(sim->conversations));
  if (get && !strcmp(p, "users"))
    return http_respond_json(wsi, r, 200, store_users_json(sim));
  if (get && !strcmp(p, "attachments"))
    return http_respond_json(wsi, r, 200, files_list_json(sim));
  if (get && !strcmp(p, "latency"))
    return http_respond_json(wsi, r, 200, store_latency_json(sim));
  if (get && !strcmp(p, "messages")) {
    struct buf b = {0};
    int rc = store_messages_json(sim, &b) < 0
                 ? http_respond_plain_error(wsi, r, 500, "out of memory")
                 : respond(wsi, r, 200, b.data, b.len);
    buf_fini(&b);
    return rc;
  }
  return http_respond_plain_error(wsi, r, 404, "no such control endpoint");
}

static int dispatch(struct sim *sim, struct lws *wsi, struct http_req *r) {
  int rc;
  if (r->refusal) {
    log_info("%s %s refused with %u: %s", method_name(r->method),
             r->uri ? r->uri : "(unread)", r->refusal, r->refusal_why);
    rc = http_respond_plain_error(wsi, r, r->refusal, r->refusal_why);
  } else if (files_is_path(r->path)) {
    rc = files_dispatch(sim, wsi, r); /* S3's rules, its own size limit too */
  } else if (r->body_too_big) {
    rc = http_respond_plain_error(wsi, r, HTTP_STATUS_REQ_ENTITY_TOO_LARGE,
                                  "body too large");
  } else if (!strncmp(r->path, "/_sim/", 6)) {
    rc = control_dispatch(sim, wsi, r);
  } else {
    rc = rest_dispatch(sim, wsi, r);
  }
  return rc < 0 ? -1 : 0;
}

/* ---- requests ---- */

static int on_request(struct sim *sim, struct lws *wsi, struct http_req *r,
                      const char *in, size_t len) {
  char *uri_ptr;
  int uri_len;
  if (!r)
    return -1;
  req_free(r);
  r->method = lws_http_get_uri_and_method(wsi, &uri_ptr, &uri_len);
  /* Plain TCP: one request per connection, the only one whose line was
   * seen as sent. */
  r->close_after = !sim->cfg.tls_cert;

  /* The signed URI is the path plus the query string (protocol.md §1.3),
   * byte for byte as on the request line. A refusal found here is answered
   * once a body has been read, so the client sees it rather than a reset. */
  struct sent_req s;
  r->refusal = request_sent(sim, wsi, &s, r->refusal_why, sizeof r->refusal_why);
  if (!r->refusal)
    r->refusal = check_host(sim, wsi, r->refusal_why, sizeof r->refusal_why);
  const char *path = sim->cfg.tls_cert ? in : s.target;
  size_t plen = sim->cfg.tls_cert ? len : s.target ? strcspn(s.target, "?") : 0;
  if (!r->refusal && (!path || plen >= sizeof r->path)) {
    free(s.target);
    r->close_after = 1;
    return http_respond_plain_error(wsi, r, HTTP_STATUS_REQ_URI_TOO_LONG,
                                    "path too long") < 0
               ? -1
               : 0;
  }
  if (path && plen < sizeof r->path) {
    memcpy(r->path, path, plen);
    r->path[plen] = 0;
  }
  r->uri = s.target;
  r->auth = header_dup(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, SIM_MAX_AUTH);

  /* X-Request-Id is echoed; only printable characters go back out. */
  char rid[sizeof r->request_id];
  int n = lws_hdr_custom_copy(wsi, rid, sizeof rid, "x-request-id:", 13);
  if (n > 0) {
    size_t o = 0;
    for (int i = 0; i < n && o + 1 < sizeof r->request_id; i++) {
      if (isgraph((unsigned char)rid[i]))
        r->request_id[o++] = rid[i];
    }
    r->request_id[o] = 0;
  }

  char ct[sizeof r->content_type];
  if (lws_hdr_copy(wsi, ct, sizeof ct, WSI_TOKEN_HTTP_CONTENT_TYPE) > 0)
    snprintf(r->content_type, sizeof r->content_type, "%s", ct);
  lws_hdr_custom_copy(wsi, r->amz_acl, sizeof r->amz_acl, "x-amz-acl:", 10);
  r->endpoint = -1;

  /* Bodies come with POST, and with PUT to an upload URL (as on S3). */
  int upload = r->method == LWSHUMETH_PUT && files_is_path(r->path);
  if (r->method == LWSHUMETH_POST || upload) {
    char cl[32];
    r->body_limit = upload ? SIM_MAX_UPLOAD : SIM_MAX_BODY;
    if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0) {
      r->close_after = 1;
      return http_respond_plain_error(wsi, r, HTTP_STATUS_LENGTH_REQUIRED,
                                      "Content-Length required") < 0
                 ? -1
                 : 0;
    }
    unsigned long long want = strtoull(cl, NULL, 10);
    if (want > (upload ? 4ull : 16ull) * r->body_limit) {
      r->close_after = 1;
      return http_respond_plain_error(wsi, r, HTTP_STATUS_REQ_ENTITY_TOO_LARGE,
                                      upload ? "upload larger than 40 MiB"
                                             : "body too large") < 0
                 ? -1
                 : 0;
    }
    /* A body over the limit is read and dropped, so that the client gets
     * to see the refusal instead of a reset while it is still sending. */
    r->body_too_big = want > r->body_limit;
    /* curl asks before sending a large body and would otherwise wait a
     * second for the interim response. */
    char expect[32];
    if (lws_hdr_copy(wsi, expect, sizeof expect, WSI_TOKEN_HTTP_EXPECT) > 0 &&
        !strcasecmp(expect, "100-continue")) {
      static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
      unsigned char b[LWS_PRE + sizeof cont];
      memcpy(b + LWS_PRE, cont, sizeof cont - 1);
      if (lws_write(wsi, b + LWS_PRE, sizeof cont - 1, LWS_WRITE_HTTP_HEADERS) < 0)
        return -1;
    }
    return 0; /* the body follows: HTTP_BODY, then HTTP_BODY_COMPLETION */
  }
  if (r->method != LWSHUMETH_GET) {
    r->close_after = 1;
    return http_respond_plain_error(wsi, r, HTTP_STATUS_METHOD_NOT_ALLOWED,
                                    "method not allowed") < 0
               ? -1
               : 0;
  }
  return dispatch(sim, wsi, r);
}

int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len) {
  struct http_req *r = user;
  struct sim *sim = lws_context_user(lws_get_context(wsi));
  switch (reason) {
  case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
    /* A socket just accepted, nothing read from it yet; user is lws's
     * filter arguments, not a request. Over TLS the line is encrypted. */
    if (sim->cfg.tls_cert)
      return 0;
    return reqline_peek(sim, (int)(lws_intptr_t)in) < 0 ? 1 : 0;
  case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
    req_free(r);
    return confirm_upgrade(sim, wsi, in);
  case LWS_CALLBACK_HTTP:
    return on_request(sim, wsi, r, in, len);
  case LWS_CALLBACK_HTTP_BODY:
    if (!r || r->resp || r->body_too_big || r->refusal)
      return 0; /* answered (411/413) or to be refused: the body is discarded */
    if (r->body.len + len > r->body_limit) {
      r->body_too_big = 1;
      buf_fini(&r->body);
    } else if (len && buf_append(&r->body, in, len) < 0) {
      return -1;
    }
    return 0;
  case LWS_CALLBACK_HTTP_BODY_COMPLETION:
    if (!r || r->resp || r->delayed)
      return 0; /* answered, or held by api_slow: dispatched already */
    return dispatch(sim, wsi, r);
  case LWS_CALLBACK_TIMER:
    /* An api_slow delay is over: the held request is answered now. */
    if (!r || !r->delayed || r->resp)
      return 0;
    r->delayed = 0;
    return endpoint_run(sim, wsi, r) < 0 ? -1 : 0;
  case LWS_CALLBACK_HTTP_WRITEABLE:
    return write_body(wsi, r);
  case LWS_CALLBACK_CLOSED_HTTP:
  case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    req_free(r);
    return 0;
  default:
    return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}
