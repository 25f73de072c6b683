/* SPDX-License-Identifier: MIT */
/*
 * url: the request-target that goes on the request line is the one the
 * token signs, so these pin it for every shape of blaze_url and api_url an
 * operator may write, plus the Host header (with the port when it is not
 * the scheme's default) and the loopback rule for plain ws:// and http://.
 */
#include <string.h>

#include "check.h"
#include "url.h"

static void target_is(const char *in, const char *host, int port, const char *host_header,
                      const char *target) {
  struct url u;
  char err[200] = "";
  int rc = url_parse(in, &u, err, sizeof err);
  if (rc < 0)
    fprintf(stderr, "%s: %s\n", in, err);
  CHECK_INT(rc, 0);
  CHECK_STR(u.host, host);
  CHECK_INT(u.port, port);
  CHECK_STR(u.host_header, host_header);
  CHECK_STR(u.target, target);
}

static void refused(const char *in, const char *why) {
  struct url u;
  char err[200] = "";
  CHECK_INT(url_parse(in, &u, err, sizeof err), -1);
  if (!strstr(err, why))
    fprintf(stderr, "%s: '%s' lacks '%s'\n", in, err, why);
  CHECK(strstr(err, why) != NULL);
}

int main(void) {
  /* The default and its variants: always "GET /", never "GET //". */
  target_is("wss://blaze.mixin.one/", "blaze.mixin.one", 443, "blaze.mixin.one", "/");
  target_is("wss://blaze.mixin.one", "blaze.mixin.one", 443, "blaze.mixin.one", "/");
  target_is("ws://127.0.0.1:7600/", "127.0.0.1", 7600, "127.0.0.1:7600", "/");
  target_is("ws://127.0.0.1:7600", "127.0.0.1", 7600, "127.0.0.1:7600", "/");
  /* A default port given explicitly is not repeated in Host. */
  target_is("wss://blaze.mixin.one:443/", "blaze.mixin.one", 443, "blaze.mixin.one", "/");
  target_is("ws://h:80", "h", 80, "h", "/");
  target_is("wss://h:80/", "h", 80, "h:80", "/");
  /* A path and query are kept byte for byte: the token signs them. */
  target_is("wss://proxy.example/blaze", "proxy.example", 443, "proxy.example", "/blaze");
  target_is("wss://proxy.example/blaze/", "proxy.example", 443, "proxy.example",
            "/blaze/");
  target_is("ws://127.0.0.1:1/a//b?x=1&y=%20", "127.0.0.1", 1, "127.0.0.1:1",
            "/a//b?x=1&y=%20");
  target_is("wss://h?x=1", "h", 443, "h", "/?x=1");
  /* IPv6 literals: dialled without brackets, Host with them. */
  target_is("ws://[::1]:9000/", "::1", 9000, "[::1]:9000", "/");
  target_is("https://[::1]", "::1", 443, "[::1]", "/");
  target_is("HTTPS://API.mixin.one", "API.mixin.one", 443, "API.mixin.one", "/");

  refused("blaze.mixin.one", "not a URL");
  refused("ftp://h/", "unknown scheme");
  refused("wss:///x", "no host");
  refused("wss://:443/", "no host");
  refused("wss://h:/", "empty port");
  refused("wss://h:0/", "out of range");
  refused("wss://h:65536/", "out of range");
  refused("wss://h:99999999999/", "invalid port");
  refused("wss://h:12a/", "invalid port");
  refused("wss://user:pw@h/", "user info");
  refused("wss://h/#frag", "fragment");
  refused("wss://h/a b", "space");
  refused("wss://[::1/", "unterminated");
  refused("wss://[zz]/", "IPv6");
  refused("wss://h h/", "invalid character");

  /* Loopback: where plain ws:// and http:// are allowed by default. */
  const char *loop[] = {"ws://127.0.0.1:1", "ws://127.9.8.7", "ws://localhost:5",
                        "ws://LOCALHOST", "ws://[::1]:2"};
  const char *remote[] = {
      "ws://128.0.0.1",          "ws://10.0.0.1", "ws://127.0.0.1.evil.com",
      "ws://localhost.evil.com", "ws://[::2]",    "ws://127.0.0.256"};
  for (size_t i = 0; i < sizeof loop / sizeof loop[0]; i++) {
    struct url u;
    CHECK_INT(url_parse(loop[i], &u, NULL, 0), 0);
    CHECK_INT(url_is_loopback(&u), 1);
  }
  for (size_t i = 0; i < sizeof remote / sizeof remote[0]; i++) {
    struct url u;
    CHECK_INT(url_parse(remote[i], &u, NULL, 0), 0);
    if (url_is_loopback(&u))
      fprintf(stderr, "%s counted as loopback\n", remote[i]);
    CHECK_INT(url_is_loopback(&u), 0);
  }

  /* REST paths under an API base, with or without a proxy prefix. */
  char t[256];
  struct url u;
  CHECK_INT(url_parse("https://api.mixin.one", &u, NULL, 0), 0);
  CHECK_INT(url_join(&u, "/messages", t, sizeof t), 0);
  CHECK_STR(t, "/messages");
  CHECK_INT(url_parse("https://api.mixin.one/", &u, NULL, 0), 0);
  CHECK_INT(url_join(&u, "/acknowledgements", t, sizeof t), 0);
  CHECK_STR(t, "/acknowledgements");
  CHECK_INT(url_parse("http://127.0.0.1:9/mixin/api/", &u, NULL, 0), 0);
  CHECK_INT(url_join(&u, "/users/me?x=1", t, sizeof t), 0);
  CHECK_STR(t, "/mixin/api/users/me?x=1");
  CHECK_INT(url_join(&u, "/messages", t, 10), -1);
  CHECK_INT(url_parse("http://h/?q=1", &u, NULL, 0), 0);
  CHECK_INT(url_join(&u, "/messages", t, sizeof t), -1);
  return check_done("unit.url");
}
