/* SPDX-License-Identifier: MIT */
/*
 * reqline: the request line of each plain-TCP (ws://, http://) connection
 * exactly as the client sent it. libwebsockets sanitises the URI before any
 * callback sees it ("//", "/./" and "/../" collapse, %XX is decoded, "+" in
 * the query turns into a space), so a client that sends "GET // HTTP/1.1"
 * would look like "GET /". lws tells protocols[0] of every accepted socket
 * (LWS_CALLBACK_FILTER_NETWORK_CONNECTION) before it reads from it; there
 * the first line is peeked with MSG_PEEK, waiting at most SIM_REQLINE_WAIT_MS,
 * and kept in a table indexed by descriptor until the request takes it. Only
 * the first request of a connection can be seen this way, which is why
 * http.c answers every plain request with "Connection: close".
 */
#include "sim.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"

#define PARTIAL_PAUSE_MS 2 /* a line has started but not ended: look again */

/* Makes sim->reqlines[fd] exist. Returns 0 or -1 (out of memory). */
static int slot_reserve(struct sim *sim, int fd) {
  size_t need = (size_t)fd + 1;
  if (need <= sim->nreqlines)
    return 0;
  size_t n = sim->nreqlines ? sim->nreqlines : 64;
  while (n < need)
    n *= 2;
  struct reqline_slot *s = realloc(sim->reqlines, n * sizeof *s);
  if (!s)
    return -1;
  memset(s + sim->nreqlines, 0, (n - sim->nreqlines) * sizeof *s);
  sim->reqlines = s;
  sim->nreqlines = n;
  return 0;
}

int reqline_peek(struct sim *sim, int fd) {
  if (fd < 0 || slot_reserve(sim, fd) < 0)
    return -1;
  /* Whatever the slot held belonged to an earlier connection on this fd. */
  struct reqline_slot *s = &sim->reqlines[fd];
  free(s->line);
  s->line = NULL;
  s->state = REQLINE_NONE;

  char buf[SIM_MAX_REQLINE];
  int64_t deadline = now_ms() + SIM_REQLINE_WAIT_MS;
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0)
      return -1; /* the peer left without a word */
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      return -1;
    if (n > 0) {
      char *nl = memchr(buf, '\n', (size_t)n);
      if (nl) {
        size_t len = (size_t)(nl - buf);
        if (len && buf[len - 1] == '\r')
          len--;
        if (memchr(buf, 0, len)) {
          s->state = REQLINE_BAD;
          return 0;
        }
        s->line = malloc(len + 1);
        if (!s->line)
          return -1;
        memcpy(s->line, buf, len);
        s->line[len] = 0;
        s->state = REQLINE_SEEN;
        return 0;
      }
      if ((size_t)n == sizeof buf) {
        s->state = REQLINE_TOO_LONG;
        return 0;
      }
    }
    int left = (int)(deadline - now_ms());
    if (left <= 0) {
      s->state = REQLINE_TIMEOUT;
      log_info("fd %d: no request line within %d ms", fd, SIM_REQLINE_WAIT_MS);
      return 0;
    }
    if (n > 0) {
      /* Part of a line is waiting, so the socket stays readable and poll
       * would return at once: pause instead until more may have come. */
      poll(NULL, 0, left < PARTIAL_PAUSE_MS ? left : PARTIAL_PAUSE_MS);
      continue;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, left) < 0 && errno != EINTR)
      return -1;
  }
}

int reqline_take(struct sim *sim, int fd, char **line) {
  *line = NULL;
  if (fd < 0 || (size_t)fd >= sim->nreqlines)
    return REQLINE_NONE;
  struct reqline_slot *s = &sim->reqlines[fd];
  int state = s->state;
  if (state == REQLINE_SEEN) {
    *line = s->line;
    s->line = NULL;
  }
  /* Whatever it was, a second request on the connection gets no line. */
  s->state = REQLINE_TAKEN;
  return state;
}

int reqline_split(char *line, const char **method, const char **target,
                  const char **version) {
  /* method SP request-target SP HTTP-version, single spaces (RFC 9112 §3). */
  char *sp1 = strchr(line, ' ');
  char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
  if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1 || strchr(sp2 + 1, ' '))
    return -1;
  for (const char *p = line; p < sp1; p++) {
    if (*p < 'A' || *p > 'Z')
      return -1;
  }
  for (const char *p = sp1 + 1; p < sp2; p++) {
    if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
      return -1;
  }
  *sp1 = *sp2 = 0;
  *method = line;
  *target = sp1 + 1;
  *version = sp2 + 1;
  if (strncmp(*version, "HTTP/", 5) != 0)
    return -1;
  return 0;
}

void reqline_fini(struct sim *sim) {
  for (size_t i = 0; i < sim->nreqlines; i++)
    free(sim->reqlines[i].line);
  free(sim->reqlines);
  sim->reqlines = NULL;
  sim->nreqlines = 0;
}
