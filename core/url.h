/* SPDX-License-Identifier: MIT */
/*
 * url: the few URLs blazebot dials (blaze_url, api_url), split into what a
 * connection needs: the address to dial, the Host header, and the
 * request-target exactly as it goes on the request line. The target is what
 * a Mixin token's `sig` is computed over, so it is never normalised: an
 * empty path becomes "/", anything else is kept byte for byte. Pure
 * functions, no allocation, thread-safe.
 */
#ifndef BLAZEBOT_URL_H
#define BLAZEBOT_URL_H

#include <stddef.h>

struct url {
  int tls;               /* wss:// or https:// */
  int websocket;         /* ws:// or wss:// */
  char host[256];        /* to dial: a name or an IP literal, IPv6 without brackets */
  int port;              /* explicit or the scheme's default */
  char host_header[272]; /* host, or host:port when the port is not the default */
  char target[2048];     /* path plus query, always starting with '/' */
};

/* Parses s (ws, wss, http or https; no user info, no fragment). Returns 0, or
 * -1 with a one-line reason in err. */
int url_parse(const char *s, struct url *out, char *err, size_t errlen);

/* 1 when the host is a loopback address (127.0.0.0/8, ::1, localhost), where
 * plain ws:// and http:// cannot be read by anyone else. */
int url_is_loopback(const struct url *u);

/* Writes into out the target for path (which starts with '/') under u's own
 * path, which works as a prefix (an API behind a proxy). A trailing '/' of
 * the prefix is not doubled. Returns 0, or -1 when it does not fit or u has a
 * query. */
int url_join(const struct url *u, const char *path, char *out, size_t cap);

#endif
