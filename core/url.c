/* SPDX-License-Identifier: MIT */
/*
 * url: see url.h. Written by hand rather than with lws_parse_uri, whose
 * path result drops the leading '/' in some cases and not in others: the
 * handshake once went out as `GET //` while its token was signed for `/`.
 * Here the request-target is one string used for both the request line
 * and the signature, so the two cannot disagree.
 */
#include "url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

static const struct {
  const char *name;
  int tls, websocket, port;
} schemes[] = {
    {"ws", 0, 1, 80},
    {"wss", 1, 1, 443},
    {"http", 0, 0, 80},
    {"https", 1, 0, 443},
};

/* Characters allowed in a request-target as sent: printable ASCII without
 * space, and no fragment. */
static int target_char_ok(unsigned char c) {
  return c > 0x20 && c < 0x7f && c != '#';
}

static int host_char_ok(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_';
}

int url_parse(const char *s, struct url *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  const char *sep = strstr(s, "://");
  if (!sep)
    return error_set(err, errlen, "'%s' is not a URL (want scheme://host[:port][/path])",
                     s);
  size_t sl = (size_t)(sep - s);
  int scheme = -1;
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
    if (strlen(schemes[i].name) == sl && strncasecmp(s, schemes[i].name, sl) == 0)
      scheme = (int)i;
  }
  if (scheme < 0)
    return error_set(err, errlen, "unknown scheme '%.*s' (want ws, wss, http or https)",
                     (int)(sl > 16 ? 16 : sl), s);
  out->tls = schemes[scheme].tls;
  out->websocket = schemes[scheme].websocket;
  out->port = schemes[scheme].port;

  const char *a = sep + 3;
  size_t alen = strcspn(a, "/?#");
  const char *rest = a + alen;
  if (memchr(a, '@', alen))
    return error_set(err, errlen, "user info in a URL is not supported");
  if (*rest == '#' || strchr(rest, '#'))
    return error_set(err, errlen, "a URL fragment (#...) is not allowed");

  /* host, [v6] or host, then an optional :port */
  const char *h = a, *hend;
  const char *colon = NULL;
  int v6 = 0;
  if (alen && *a == '[') {
    const char *close = memchr(a, ']', alen);
    if (!close)
      return error_set(err, errlen, "unterminated '[' in the host");
    h = a + 1;
    hend = close;
    v6 = 1;
    if (close + 1 < a + alen) {
      if (close[1] != ':')
        return error_set(err, errlen, "junk after ']' in the host");
      colon = close + 1;
    }
    for (const char *p = h; p < hend; p++) {
      if (!(*p == ':' || *p == '.' || (*p >= '0' && *p <= '9') ||
            (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')))
        return error_set(err, errlen, "'%.*s' is not an IPv6 address", (int)(hend - h),
                         h);
    }
  } else {
    colon = memchr(a, ':', alen);
    hend = colon ? colon : a + alen;
    for (const char *p = h; p < hend; p++) {
      if (!host_char_ok((unsigned char)*p))
        return error_set(err, errlen, "invalid character in the host '%.*s'",
                         (int)(hend - h), h);
    }
  }
  size_t hl = (size_t)(hend - h);
  if (!hl)
    return error_set(err, errlen, "the URL has no host");
  if (hl >= sizeof out->host)
    return error_set(err, errlen, "the host is too long");
  memcpy(out->host, h, hl);
  out->host[hl] = 0;

  if (colon) {
    const char *p = colon + 1, *pend = a + alen;
    long port = 0;
    if (p == pend)
      return error_set(err, errlen, "empty port after ':'");
    for (; p < pend; p++) {
      if (*p < '0' || *p > '9' || port > 65535)
        return error_set(err, errlen, "invalid port '%.*s'", (int)(pend - colon - 1),
                         colon + 1);
      port = port * 10 + (*p - '0');
    }
    if (port < 1 || port > 65535)
      return error_set(err, errlen, "port %ld is out of range", port);
    out->port = (int)port;
  }
  int n = out->port == schemes[scheme].port
              ? snprintf(out->host_header, sizeof out->host_header, "%s%s%s",
                         v6 ? "[" : "", out->host, v6 ? "]" : "")
              : snprintf(out->host_header, sizeof out->host_header, "%s%s%s:%d",
                         v6 ? "[" : "", out->host, v6 ? "]" : "", out->port);
  if (n < 0 || (size_t)n >= sizeof out->host_header)
    return error_set(err, errlen, "the host is too long");

  for (const char *p = rest; *p; p++) {
    if (!target_char_ok((unsigned char)*p))
      return error_set(err, errlen, "the path has a space or control character");
  }
  /* "host" and "host/" both mean the root; "host?q" means "/?q". */
  n = snprintf(out->target, sizeof out->target, "%s%s", *rest == '/' ? "" : "/", rest);
  if (n < 0 || (size_t)n >= sizeof out->target)
    return error_set(err, errlen, "the path is too long");
  return 0;
}

int url_is_loopback(const struct url *u) {
  if (!strcasecmp(u->host, "localhost") || !strcmp(u->host, "::1"))
    return 1;
  /* 127.0.0.0/8 as a dotted quad */
  unsigned a, b, c, d;
  char tail;
  return sscanf(u->host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 &&
         b < 256 && c < 256 && d < 256;
}

int url_join(const struct url *u, const char *path, char *out, size_t cap) {
  if (strchr(u->target, '?'))
    return -1;
  size_t pl = strlen(u->target);
  while (pl && u->target[pl - 1] == '/')
    pl--;
  int n = snprintf(out, cap, "%.*s%s", (int)pl, u->target, path);
  return n < 0 || (size_t)n >= cap ? -1 : 0;
}
