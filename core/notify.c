/* SPDX-License-Identifier: MIT */
/*
 * notify: see notify.h. The wire format is sd_notify(3)'s: one datagram of
 * newline-separated KEY=VALUE lines, sent to the socket named by
 * NOTIFY_SOCKET. systemd reads at most a few KiB of one datagram, so STATUS
 * values are cut well below that.
 */
#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define STATUS_MAX 1024 /* bytes of one STATUS value, a cut line ends in "..." */
#define MSG_MAX 2048

struct notify {
  int fd;
  struct sockaddr_un addr;
  socklen_t addrlen;
  char name[sizeof(struct sockaddr_un)]; /* NOTIFY_SOCKET as given, for logs */
  int warned;                            /* a failed send was logged */
  uint64_t watchdog_usec;                /* 0: no watchdog */
  int64_t watchdog_next;                 /* ms (now_ms clock) */
  int64_t ready_grace_ms;
  int64_t ready_by; /* READY=1 at the latest then (set at the first tick) */
  int started;      /* the first tick ran */
  int want_ready;   /* start-up is complete: READY=1 is due */
  int ready;        /* READY=1 was sent */
  int reloading;    /* RELOADING=1 was sent; READY=1 ends it */
  int stopping;     /* STOPPING=1 was sent: no READY=1 any more */
  int was_open;     /* the link was up at the last look */
  uint64_t errors_seen, errors_base; /* connect_errors: last seen, at the last drop */
  char ready_status[STATUS_MAX];
};

/* Sends one datagram. 0 when it went out. */
static int send_msg(struct notify *n, const char *msg, size_t len) {
  ssize_t r;
  do
    r = sendto(n->fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&n->addr,
               n->addrlen);
  while (r < 0 && errno == EINTR);
  if (r == (ssize_t)len)
    return 0;
  if (!n->warned) {
    n->warned = 1;
    log_warn("systemd notify: cannot send to NOTIFY_SOCKET %s: %s; the daemon runs on "
             "without telling systemd (further failures are not logged)",
             n->name, r < 0 ? strerror(errno) : "short write");
  }
  return -1;
}

/* Appends "STATUS=value\n" to buf (at off), value on one line and cut. */
static size_t put_status(char *buf, size_t cap, size_t off, const char *value) {
  int k = snprintf(buf + off, cap - off, "STATUS=");
  off += (size_t)k;
  size_t n = strlen(value);
  int cut = n > STATUS_MAX - 1;
  if (cut)
    n = STATUS_MAX - 4;
  for (size_t i = 0; i < n && off + 1 < cap; i++) {
    char c = value[i];
    buf[off++] = c == '\n' || c == '\r' ? ' ' : c;
  }
  if (cut && off + 3 < cap) {
    memcpy(buf + off, "...", 3);
    off += 3;
  }
  if (off + 1 < cap)
    buf[off++] = '\n';
  buf[off] = 0;
  return off;
}

/* Sends head (fixed KEY=VALUE lines, each ending in \n) plus an optional
 * STATUS line. */
static int send_with_status(struct notify *n, const char *head, const char *status) {
  char buf[MSG_MAX];
  size_t off = (size_t)snprintf(buf, sizeof buf, "%s", head);
  if (off >= sizeof buf)
    off = sizeof buf - 1;
  if (status)
    off = put_status(buf, sizeof buf, off, status);
  return send_msg(n, buf, off);
}

static int parse_u64(const char *s, uint64_t *out) {
  if (!s || !*s)
    return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || s[0] == '-')
    return -1;
  *out = (uint64_t)v;
  return 0;
}

struct notify *notify_new(int64_t ready_grace_ms) {
  const char *sock = getenv("NOTIFY_SOCKET");
  if (!sock || !*sock)
    return NULL;
  size_t len = strlen(sock);
  if ((sock[0] != '/' && sock[0] != '@') || len < 2 ||
      len >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
    log_warn("systemd notify: NOTIFY_SOCKET %s is not an absolute path or an abstract "
             "socket (@name) that fits a socket address; not notifying systemd",
             sock);
    return NULL;
  }
  struct notify *n = calloc(1, sizeof *n);
  if (!n)
    return NULL;
  n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (n->fd < 0) {
    log_warn("systemd notify: socket(AF_UNIX): %s; not notifying systemd",
             strerror(errno));
    free(n);
    return NULL;
  }
  memcpy(n->name, sock, len + 1);
  n->addr.sun_family = AF_UNIX;
  memcpy(n->addr.sun_path, sock, len);
  if (sock[0] == '@') {
    /* Abstract: a leading NUL, and the length counts exactly the name. */
    n->addr.sun_path[0] = 0;
    n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
  } else {
    n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
  }
  uint64_t usec = 0, pid = 0;
  if (parse_u64(getenv("WATCHDOG_USEC"), &usec) == 0 && usec > 0) {
    const char *p = getenv("WATCHDOG_PID");
    if (!p || !*p || (parse_u64(p, &pid) == 0 && pid == (uint64_t)getpid()))
      n->watchdog_usec = usec;
  }
  n->ready_grace_ms = ready_grace_ms > 0 ? ready_grace_ms : 0;
  log_debug("systemd notify: NOTIFY_SOCKET %s, watchdog %llu us", n->name,
            (unsigned long long)n->watchdog_usec);
  return n;
}

void notify_free(struct notify *n) {
  if (!n)
    return;
  close(n->fd);
  free(n);
}

uint64_t notify_watchdog_usec(const struct notify *n) {
  return n ? n->watchdog_usec : 0;
}

int notify_is_ready(const struct notify *n) {
  return n && n->ready;
}

void notify_status(struct notify *n, const char *fmt, ...) {
  if (!n)
    return;
  char st[STATUS_MAX + 16];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(st, sizeof st, fmt, ap);
  va_end(ap);
  send_with_status(n, "", st);
}

/* READY=1 once start-up is complete; kept due (retried every tick) until a
 * send succeeds. */
static void want_ready(struct notify *n, const char *status) {
  if (n->ready || n->stopping)
    return;
  n->want_ready = 1;
  if (status != n->ready_status)
    snprintf(n->ready_status, sizeof n->ready_status, "%s", status);
  char head[64];
  snprintf(head, sizeof head, "READY=1\nMAINPID=%lld\n", (long long)getpid());
  if (send_with_status(n, head, n->ready_status) == 0)
    n->ready = 1;
}

void notify_connected(struct notify *n, const char *url, size_t plugins) {
  if (!n)
    return;
  n->was_open = 1;
  char st[STATUS_MAX];
  snprintf(st, sizeof st, "connected to Blaze at %s; %zu plugin(s) loaded", url, plugins);
  if (!n->ready && !n->stopping)
    want_ready(n, st);
  else
    send_with_status(n, "", st);
}

void notify_tick(struct notify *n, int64_t now, int open, uint64_t connect_errors) {
  if (!n)
    return;
  if (!n->started) {
    n->started = 1;
    n->ready_by = now + n->ready_grace_ms;
    n->errors_seen = n->errors_base = connect_errors;
  }
  if (n->watchdog_usec && now >= n->watchdog_next) {
    int64_t half_ms = (int64_t)(n->watchdog_usec / 2000);
    n->watchdog_next = now + (half_ms > 0 ? half_ms : 1);
    send_msg(n, "WATCHDOG=1\n", 11);
  }
  char st[STATUS_MAX];
  st[0] = 0;
  if (n->was_open && !open) {
    n->was_open = 0;
    n->errors_base = connect_errors;
    snprintf(st, sizeof st, "disconnected from Blaze; reconnecting");
  } else if (!open && connect_errors > n->errors_seen) {
    snprintf(st, sizeof st,
             "not connected to Blaze: %llu failed attempt(s) in a row; retrying with "
             "backoff",
             (unsigned long long)(connect_errors - n->errors_base));
  }
  n->errors_seen = connect_errors;
  if (n->stopping)
    return; /* STATUS keeps saying why it stops */
  if (!n->ready) {
    /* Blaze unreachable at start: the daemon is up and retrying, which is
     * its job; start-up is complete at the first failed attempt, or after
     * the grace period when an attempt hangs. */
    if (st[0])
      want_ready(n, st);
    else if (n->want_ready)
      want_ready(n, n->ready_status);
    else if (now >= n->ready_by)
      want_ready(n, "running; not connected to Blaze yet (still trying)");
    return;
  }
  if (st[0])
    send_with_status(n, "", st);
}

void notify_reloading(struct notify *n) {
  if (!n)
    return;
  if (!n->ready || n->stopping) {
    n->reloading = 0;
    send_with_status(n, "", "reloading the configuration and plugins");
    return;
  }
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  char head[96];
  snprintf(head, sizeof head, "RELOADING=1\nMONOTONIC_USEC=%llu\n",
           (unsigned long long)ts.tv_sec * 1000000ULL +
               (unsigned long long)ts.tv_nsec / 1000ULL);
  n->reloading = 1;
  send_with_status(n, head, "reloading the configuration and plugins");
}

void notify_reloaded(struct notify *n, int ok, const char *summary) {
  if (!n)
    return;
  char st[STATUS_MAX];
  snprintf(st, sizeof st, "%s: %s",
           ok > 0    ? "reload done"
           : ok == 0 ? "reload done with refusals"
                     : "reload refused, running configuration kept",
           summary && summary[0] ? summary : "nothing changed");
  int pair = n->reloading && !n->stopping;
  n->reloading = 0;
  send_with_status(n, pair ? "READY=1\n" : "", st);
}

void notify_stopping(struct notify *n, const char *status) {
  if (!n || n->stopping)
    return;
  n->stopping = 1;
  send_with_status(n, "STOPPING=1\n", status);
}
