/* SPDX-License-Identifier: MIT */
/*
 * The handshake as it goes on the wire. A plain TCP listener on 127.0.0.1
 * plays the server and reads the daemon's upgrade request byte for byte,
 * so nothing a server library normalises (libwebsockets folds "//" into
 * "/") can hide a wrong request line. For each shape of blaze_url: the
 * request-target, the Host header (with the port, which is not the
 * default), the subprotocol, and a token whose sig is sha256 over exactly
 * the method and target that were sent, verified with the keystore's key.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "check.h"
#include "harness.h"
#include "keystore.h"
#include "util.h"

static int listen_loopback(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4) < 0 ||
      getsockname(fd, (struct sockaddr *)&a, &al) < 0) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

/* Accepts one connection and reads its request head (bounded: 15 s, 16
 * KiB). Returns a malloc'd NUL-terminated head or NULL. */
static char *read_head(int lfd) {
  struct pollfd p = {.fd = lfd, .events = POLLIN};
  if (poll(&p, 1, 15000) != 1)
    return NULL;
  int c = accept(lfd, NULL, NULL);
  if (c < 0)
    return NULL;
  size_t cap = 16384, len = 0;
  char *b = calloc(1, cap + 1);
  while (b && len < cap && !strstr(b, "\r\n\r\n")) {
    struct pollfd q = {.fd = c, .events = POLLIN};
    if (poll(&q, 1, 15000) != 1)
      break;
    ssize_t n = read(c, b + len, cap - len);
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  close(c);
  if (b && !strstr(b, "\r\n\r\n")) {
    free(b);
    return NULL;
  }
  return b;
}

/* The value of header name (case-insensitive) in head, copied to out. */
static int header(const char *head, const char *name, char *out, size_t cap) {
  size_t nl = strlen(name);
  for (const char *l = strstr(head, "\r\n"); l && l[2] != '\r';
       l = strstr(l + 2, "\r\n")) {
    const char *s = l + 2;
    if (!strncasecmp(s, name, nl) && s[nl] == ':') {
      s += nl + 1;
      while (*s == ' ')
        s++;
      size_t n = strcspn(s, "\r");
      if (n >= cap)
        return -1;
      memcpy(out, s, n);
      out[n] = 0;
      return 0;
    }
  }
  return -1;
}

/* blaze_url = ws://HOST:PORT + suffix; the request must be for want_target
 * with Host HOST:PORT. */
static void one(const char *dir, const char *ks, EVP_PKEY *pub, const char *hostname,
                const char *suffix, const char *want_target) {
  int port;
  int lfd = listen_loopback(&port);
  CHECK(lfd >= 0);
  if (lfd < 0)
    return;
  char url[300], ini[700], text[1200], want_host[100];
  snprintf(url, sizeof url, "ws://%s:%d%s", hostname, port, suffix);
  snprintf(want_host, sizeof want_host, "%s:%d", hostname, port);
  snprintf(text, sizeof text,
           "[blazebot]\nkeystore = %s\nblaze_url = %s\napi_url = http://127.0.0.1:%d\n"
           "reconnect_min_ms = 5000\n",
           ks, url, port);
  snprintf(ini, sizeof ini, "%s/blazebot.ini", dir);
  CHECK(h_write(ini, text, 0600) == 0);
  struct proc d;
  CHECK(h_daemon_start(&d, dir, "daemon", ini) == 0);
  char *head = read_head(lfd);
  close(lfd);
  CHECK(head != NULL);
  if (head) {
    char line[400], want_line[400];
    snprintf(line, sizeof line, "%.*s", (int)strcspn(head, "\r"), head);
    snprintf(want_line, sizeof want_line, "GET %s HTTP/1.1", want_target);
    if (strcmp(line, want_line))
      fprintf(stderr, "blaze_url %s: request line '%s', want '%s'\n", url, line,
              want_line);
    CHECK_STR(line, want_line);
    char host[200] = "", proto[200] = "", authz[4096] = "";
    CHECK(header(head, "Host", host, sizeof host) == 0);
    CHECK_STR(host, want_host);
    CHECK(header(head, "Sec-WebSocket-Protocol", proto, sizeof proto) == 0);
    CHECK_STR(proto, "Mixin-Blaze-1");
    CHECK(header(head, "Authorization", authz, sizeof authz) == 0);
    CHECK(strncmp(authz, "Bearer ", 7) == 0);
    struct auth_claims cl;
    char err[200] = "";
    int v = auth_verify(pub, authz + 7, &cl, err, sizeof err);
    if (v < 0)
      fprintf(stderr, "token: %s\n", err);
    CHECK_INT(v, 0);
    char want_sig[65];
    auth_request_sig("GET", want_target, "", 0, want_sig);
    CHECK_STR(cl.sig, want_sig);
    free(head);
  }
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 15000) == 0);
  CHECK_INT(d.status, 0);
  h_reap(&d);
}

int main(void) {
  char dir[512], ks[600], err[200];
  snprintf(dir, sizeof dir, "%s", h_dir("handshake"));
  CHECK(h_keygen(dir, "ed25519", ks, sizeof ks) == 0);
  struct keystore *k = NULL;
  CHECK(keystore_load(ks, 1, &k, err, sizeof err) == 0);
  EVP_PKEY *pub = k ? keystore_public_key(k) : NULL;
  CHECK(pub != NULL);
  if (!pub)
    return check_done("integration.handshake");
  /* The default's shape (a trailing '/'), without it, and with a path and
   * query of a proxy, which are sent and signed as given. */
  one(dir, ks, pub, "127.0.0.1", "/", "/");
  one(dir, ks, pub, "127.0.0.1", "", "/");
  one(dir, ks, pub, "localhost", "/blaze/?v=1", "/blaze/?v=1");
  EVP_PKEY_free(pub);
  keystore_free(k);
  return check_done("integration.handshake");
}
