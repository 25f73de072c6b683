/* SPDX-License-Identifier: MIT */
/*
 * blazebot-sim is as strict as the real Blaze server (issue 7): hand-written
 * requests on raw loopback sockets, each judged by its status code. The
 * upgrade is served on "/" only, as sent ("//" is not "/" even though
 * libwebsockets folds it); a token's sig must cover the request-target and
 * body that were sent, query included; a jti is good once; Host must be
 * there and name the port served. Every refusal below has a sibling request
 * that differs only in the refused detail and passes, so a lenient simulator
 * fails a check instead of refusing for some other reason. Over TLS the
 * simulator cannot see the request line as sent; a last part pins what it
 * still refuses there and the leniency its --help lists.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/ssl.h>

#include "auth.h"
#include "check.h"
#include "harness.h"
#include "keystore.h"

#define IO_TIMEOUT_MS 10000

static int g_port;
static struct keystore *g_ks;
static SSL_CTX *g_tls; /* set while the simulator serves TLS */

/* Reads up to cap bytes; the socket's SO_RCVTIMEO bounds the wait. */
static ssize_t recv_some(int fd, SSL *ssl, char *b, size_t cap) {
  if (!ssl)
    return read(fd, b, cap);
  int n = SSL_read(ssl, b, (int)cap);
  return n > 0 ? n : -1;
}

/* Connects to the simulator, optionally waits delay_ms, sends req, and reads
 * the answer until its header ends (101 keeps the link open) or, with
 * to_eof, until the simulator closes. Returns the status code (-1 when none
 * came) and, with head, a malloc'd copy of what was read. */
static int exchange(const char *req, size_t len, int delay_ms, int to_eof, char **head) {
  if (head)
    *head = NULL;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)g_port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct timeval tv = {IO_TIMEOUT_MS / 1000, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  SSL *ssl = NULL;
  int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  if (ok && g_tls) {
    ssl = SSL_new(g_tls);
    ok = ssl && SSL_set_fd(ssl, fd) == 1 && SSL_connect(ssl) == 1;
  }
  if (ok && delay_ms)
    h_sleep_ms(delay_ms);
  if (ok)
    ok = ssl ? SSL_write(ssl, req, (int)len) == (int)len
             : write(fd, req, len) == (ssize_t)len;
  size_t cap = 65536, got = 0;
  char *b = ok ? calloc(1, cap + 1) : NULL;
  while (b && got < cap && (to_eof || !strstr(b, "\r\n\r\n"))) {
    ssize_t n = recv_some(fd, ssl, b + got, cap - got);
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  SSL_free(ssl);
  close(fd);
  int status = -1;
  /* lws answers a refused upgrade as HTTP/1.0 (it never ran its HTTP/1.1
   * request handling), which clients accept. */
  if (b && (!strncmp(b, "HTTP/1.1 ", 9) || !strncmp(b, "HTTP/1.0 ", 9)))
    status = atoi(b + 9);
  if (head)
    *head = b;
  else
    free(b);
  return status;
}

static int send_str(const char *req) {
  return exchange(req, strlen(req), 0, 0, NULL);
}

/* A fresh token for method + uri + body (jti NULL: a new one). */
static char *token(const char *method, const char *uri, const char *body,
                   const char *jti) {
  char *t = NULL;
  if (auth_sign(g_ks, method, uri, body, strlen(body), 600, jti, &t) < 0)
    return NULL;
  return t;
}

/* Host: with the port served (host NULL), as given, or none at all (""). */
static void host_line(char *out, size_t cap, const char *host) {
  if (!host)
    snprintf(out, cap, "Host: 127.0.0.1:%d\r\n", g_port);
  else if (*host)
    snprintf(out, cap, "Host: %s\r\n", host);
  else
    out[0] = 0;
}

/* An upgrade request. Any of method, version, key, wsver may be NULL for
 * the right value; tok NULL sends no Authorization. */
struct upg {
  const char *method, *target, *version, *host, *key, *wsver;
  const char *tok;
};

static int upgrade(const struct upg *u) {
  char req[8192], host[128], auth[4096] = "";
  host_line(host, sizeof host, u->host);
  if (u->tok)
    snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", u->tok);
  snprintf(req, sizeof req,
           "%s %s %s\r\n%sUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: %s\r\n"
           "Sec-WebSocket-Protocol: Mixin-Blaze-1\r\n%s\r\n",
           u->method ? u->method : "GET", u->target, u->version ? u->version : "HTTP/1.1",
           host, u->key ? u->key : "dGhlIHNhbXBsZSBub25jZQ==", u->wsver ? u->wsver : "13",
           auth);
  return send_str(req);
}

/* Upgrades on target with a fresh token signed for signed_for. */
static int upgrade_signed(const char *target, const char *signed_for, const char *host) {
  char *t = token("GET", signed_for, "", NULL);
  struct upg u = {.target = target, .host = host, .tok = t};
  int st = t ? upgrade(&u) : -1;
  free(t);
  return st;
}

/* A REST request: method target, body, token tok (NULL: none). */
static int rest(const char *method, const char *target, const char *body, const char *tok,
                const char *host) {
  char req[8192], hl[128], auth[4096] = "";
  host_line(hl, sizeof hl, host);
  if (tok)
    snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", tok);
  snprintf(req, sizeof req,
           "%s %s HTTP/1.1\r\n%s%sContent-Type: application/json\r\n"
           "Content-Length: %zu\r\n\r\n%s",
           method, target, hl, auth, strlen(body), body);
  return send_str(req);
}

/* REST with a fresh token signed over signed_method signed_uri signed_body. */
static int rest_signed(const char *method, const char *target, const char *body,
                       const char *signed_uri, const char *signed_body,
                       const char *host) {
  char *t = token(method, signed_uri, signed_body, NULL);
  int st = t ? rest(method, target, body, t, host) : -1;
  free(t);
  return st;
}

static void upgrades(void) {
  /* The path: only "/" as sent. The first pair is the daemon bug this
   * guards against (GET // signed for /); the rest are signed for what is
   * sent, so only the path rule can refuse them. */
  CHECK_INT(upgrade_signed("//", "/", NULL), 404);
  const char *bad[] = {"//", "/other", "/./", "/%2F", "/.", "/x/..", "//?x=1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int st = upgrade_signed(bad[i], bad[i], NULL);
    if (st != 404)
      fprintf(stderr, "upgrade on %s: %d\n", bad[i], st);
    CHECK_INT(st, 404);
  }
  CHECK_INT(upgrade_signed("/", "/", NULL), 101);

  /* The signature covers the target with its query, as sent. */
  CHECK_INT(upgrade_signed("/?x=1", "/", NULL), 401);
  CHECK_INT(upgrade_signed("/", "/?x=1", NULL), 401);
  CHECK_INT(upgrade_signed("/?x=1", "/?x=1", NULL), 101);
  CHECK_INT(upgrade_signed("/?a=b+c", "/?a=b+c", NULL), 101);
  CHECK_INT(upgrade_signed("/?a=b+c", "/?a=b c", NULL), 401);

  /* A token is good once: the same token again, then a new one that reuses
   * its jti. */
  static const char jti[] = "0b7d5c1e-3f0a-4c55-9d3e-6a1f2b3c4d5e";
  char *t1 = token("GET", "/", "", jti);
  struct upg u = {.target = "/", .tok = t1};
  CHECK_INT(upgrade(&u), 101);
  CHECK_INT(upgrade(&u), 401);
  char *t2 = token("GET", "/", "", jti);
  u.tok = t2;
  CHECK_INT(upgrade(&u), 401);
  free(t1);
  free(t2);

  /* Host: there, once, and a port in it is the one served. */
  char other[64];
  snprintf(other, sizeof other, "127.0.0.1:%d", g_port == 1 ? 2 : g_port - 1);
  CHECK_INT(upgrade_signed("/", "/", ""), 400);
  CHECK_INT(upgrade_signed("/", "/", other), 400);
  CHECK_INT(upgrade_signed("/", "/", "127.0.0.1:x"), 400);
  snprintf(other, sizeof other, "127.0.0.1:%d\r\nHost: 127.0.0.1:%d", g_port, g_port);
  CHECK_INT(upgrade_signed("/", "/", other), 400);
  CHECK_INT(upgrade_signed("/", "/", "127.0.0.1"), 101);
  CHECK_INT(upgrade_signed("/", "/", "blaze.example"), 101);

  /* RFC 6455: GET over HTTP/1.1, version 13, a 16-byte key. */
  char *t = token("GET", "/", "", NULL);
  struct upg v = {.target = "/", .method = "POST", .tok = t};
  CHECK_INT(upgrade(&v), 405);
  v.method = NULL;
  v.version = "HTTP/1.0";
  CHECK_INT(upgrade(&v), 400);
  v.version = NULL;
  v.wsver = "8";
  CHECK_INT(upgrade(&v), 400);
  v.wsver = NULL;
  v.key = "c2hvcnQ=";
  CHECK_INT(upgrade(&v), 400);
  v.key = NULL;
  CHECK_INT(upgrade(&v), 101); /* the token was not spent by the refusals */
  free(t);

  /* No token at all. */
  struct upg n = {.target = "/"};
  CHECK_INT(upgrade(&n), 401);
}

static void rest_calls(void) {
  /* GET /me: the token signs the target as sent, query included. */
  CHECK_INT(rest_signed("GET", "/me", "", "/me", "", NULL), 200);
  CHECK_INT(rest_signed("GET", "//me", "", "/me", "", NULL), 401);
  CHECK_INT(rest_signed("GET", "/me?x=1", "", "/me", "", NULL), 401);
  CHECK_INT(rest_signed("GET", "/me?x=1", "", "/me?x=1", "", NULL), 200);
  CHECK_INT(rest_signed("GET", "/me?q=a+b%20c", "", "/me?q=a+b%20c", "", NULL), 200);
  CHECK_INT(rest_signed("GET", "/me?q=a+b%20c", "", "/me?q=a b c", "", NULL), 401);
  CHECK_INT(rest_signed("GET", "/users//x", "", "/users/x", "", NULL), 401);
  CHECK_INT(rest_signed("GET", "/./me", "", "/me", "", NULL), 401);
  /* Signed for what was sent, "//me" is a path the API does not have: a
   * Mixin-style 404 (HTTP 202), not /me's 200. */
  CHECK_INT(rest_signed("GET", "//me", "", "//me", "", NULL), 202);

  /* POST: the body signed is the body sent. */
  CHECK_INT(
      rest_signed("POST", "/acknowledgements", "[]", "/acknowledgements", "[]", NULL),
      200);
  CHECK_INT(
      rest_signed("POST", "/acknowledgements", "[ ]", "/acknowledgements", "[]", NULL),
      401);
  CHECK_INT(
      rest_signed("POST", "//acknowledgements", "[]", "/acknowledgements", "[]", NULL),
      401);

  /* A jti is good once on REST too. */
  char *t = token("GET", "/me", "", NULL);
  CHECK_INT(rest("GET", "/me", "", t, NULL), 200);
  CHECK_INT(rest("GET", "/me", "", t, NULL), 401);
  free(t);

  /* Host. */
  CHECK_INT(rest_signed("GET", "/me", "", "/me", "", ""), 400);
  CHECK_INT(rest_signed("POST", "/acknowledgements", "[]", "/acknowledgements", "[]", ""),
            400);
  CHECK_INT(rest_signed("GET", "/me", "", "/me", "", "127.0.0.1:1"), 400);
  CHECK_INT(rest_signed("GET", "/me", "", "/me", "", "127.0.0.1"), 200);
}

static void connection_rules(void) {
  /* One request per plain-TCP connection: the answer says so and the
   * simulator closes; a pipelined second request is never answered. */
  static const char two[] = "GET /_sim/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                            "GET /_sim/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  char *head = NULL;
  CHECK_INT(exchange(two, sizeof two - 1, 0, 1, &head), 200);
  int answers = 0;
  for (const char *p = head; p && (p = strstr(p, "HTTP/1.")); p++)
    answers++;
  CHECK_INT(answers, 1);
  CHECK(head && strcasestr(head, "\r\nconnection: close\r\n"));
  free(head);

  /* The request line has to come within a second of connecting. */
  char *tok = token("GET", "/me", "", NULL);
  char req[4096];
  snprintf(req, sizeof req,
           "GET /me HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n",
           tok ? tok : "");
  CHECK_INT(exchange(req, strlen(req), 1500, 0, NULL), 408);
  free(tok);

  /* A request line that is not METHOD SP TARGET SP VERSION. */
  CHECK_INT(send_str("GET  /_sim/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), 400);
  CHECK_INT(send_str("GET /_sim/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), 200);
}

/* Over TLS the request line cannot be peeked: what lws parsed is checked. */
static void over_tls(void) {
  CHECK_INT(upgrade_signed("/", "/", NULL), 101);
  CHECK_INT(upgrade_signed("/other", "/other", NULL), 404);
  CHECK_INT(upgrade_signed("/?x=1", "/", NULL), 401);
  CHECK_INT(upgrade_signed("/", "/", ""), 400);
  CHECK_INT(rest_signed("GET", "/me", "", "/me", "", NULL), 200);
  CHECK_INT(rest_signed("GET", "/me?x=1", "", "/me", "", NULL), 401);
  CHECK_INT(rest_signed("GET", "/me", "", "/me", "", ""), 400);
  /* The leniency: lws folds "//" into "/", so this passes over TLS. */
  CHECK_INT(upgrade_signed("//", "/", NULL), 101);
}

static void tls_part(void) {
  char dir[512], ks[600], cert[700], key[700], out[600];
  struct sim sim;
  snprintf(dir, sizeof dir, "%s", h_dir("sim-strict-tls"));
  snprintf(out, sizeof out, "%s/tls", dir);
  const char *sim_bin = getenv("BLAZEBOT_SIM_BIN");
  const char *gen[] = {sim_bin ? sim_bin : "blazebot-sim", "gen-tls", "--dir", out, NULL};
  CHECK_INT(h_run(dir, "gen-tls", gen, 60000), 0);
  CHECK(h_keygen(dir, "ed25519", ks, sizeof ks) == 0);
  keystore_free(g_ks);
  g_ks = NULL;
  CHECK(keystore_load(ks, 0, &g_ks, out, sizeof out) == 0);
  snprintf(cert, sizeof cert, "%s/tls/server.pem", dir);
  snprintf(key, sizeof key, "%s/tls/server.key", dir);
  const char *args[] = {"--tls-cert", cert, "--tls-key", key, NULL};
  g_tls = SSL_CTX_new(TLS_client_method());
  CHECK(g_tls != NULL);
  if (g_tls && g_ks && h_sim_start(&sim, dir, ks, args) == 0) {
    g_port = sim.port;
    over_tls();
    CHECK(h_wait(&sim.p, 0) != 0); /* still running */
    h_sim_stop(&sim);
    CHECK(h_no_sanitizer_report(dir, "sim.err"));
  } else {
    CHECK(!"TLS simulator started");
  }
  SSL_CTX_free(g_tls);
  g_tls = NULL;
}

int main(void) {
  char dir[512], ks[600], err[256];
  struct sim sim;
  snprintf(dir, sizeof dir, "%s", h_dir("sim-strict"));
  CHECK(h_keygen(dir, "ed25519", ks, sizeof ks) == 0);
  CHECK(keystore_load(ks, 0, &g_ks, err, sizeof err) == 0);
  if (g_ks && h_sim_start(&sim, dir, ks, NULL) == 0) {
    g_port = sim.port;
    upgrades();
    rest_calls();
    connection_rules();
    json_t *st = h_sim_stats(&sim);
    CHECK(st != NULL);
    CHECK_INT(h_stat(st, "connections"), 7);        /* the 101s above */
    CHECK_INT(h_stat(st, "handshake_rejects"), 22); /* the other upgrades */
    CHECK_INT(h_stat(st, "auth_failures"), 14);     /* the 401s */
    json_decref(st);
    CHECK(h_wait(&sim.p, 0) != 0); /* still running */
    h_sim_stop(&sim);
    CHECK(h_no_sanitizer_report(dir, "sim.err"));
  } else {
    CHECK(!"simulator started");
  }
  tls_part();
  keystore_free(g_ks);
  return check_done("integration.sim_strict");
}
