/* SPDX-License-Identifier: MIT */
/*
 * The sd_notify protocol, as systemd would see it: the test binds its own
 * AF_UNIX datagram socket, starts the daemon with NOTIFY_SOCKET pointing
 * at it, and reads what arrives. READY=1 (with MAINPID) comes after the
 * connection was made and listed; WATCHDOG=1 every WATCHDOG_USEC / 2;
 * SIGHUP gives RELOADING=1 with a MONOTONIC_USEC taken during the reload,
 * then READY=1; SIGTERM gives STOPPING=1. An abstract socket (@name) works
 * the same; WATCHDOG_PID naming another process turns the watchdog off; a
 * socket that is not there costs one warning and nothing else; and with
 * Blaze unreachable READY=1 still comes, after the first failed attempt,
 * with a STATUS that says so.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

#define TEST_NAME "integration.notify"

static long long mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* Every datagram received, in order, with its arrival time. */
struct rx {
  int fd;
  char **msg;
  long long *at;
  int n, cap;
};

/* Binds name: a path, or "@name" for the abstract namespace. */
static int rx_open(struct rx *r, const char *name) {
  memset(r, 0, sizeof *r);
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  size_t len = strlen(name);
  if (len >= sizeof a.sun_path)
    return -1;
  memcpy(a.sun_path, name, len);
  socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
  if (name[0] == '@') {
    a.sun_path[0] = 0;
    alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
  } else {
    unlink(name);
  }
  r->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (r->fd < 0 || bind(r->fd, (struct sockaddr *)&a, alen) < 0) {
    fprintf(stderr, "cannot bind %s: %s\n", name, strerror(errno));
    return -1;
  }
  return 0;
}

static void rx_close(struct rx *r) {
  if (r->fd >= 0)
    close(r->fd);
  for (int i = 0; i < r->n; i++)
    free(r->msg[i]);
  free(r->msg);
  free(r->at);
  memset(r, 0, sizeof *r);
  r->fd = -1;
}

/* Reads what arrives for up to timeout_ms (returns early once a datagram
 * came and stop_on_one is set). */
static void rx_poll(struct rx *r, int timeout_ms, int stop_on_one) {
  long long end = mono_us() + (long long)timeout_ms * 1000;
  for (;;) {
    long long left = (end - mono_us()) / 1000;
    if (left < 0)
      left = 0;
    struct pollfd p = {.fd = r->fd, .events = POLLIN};
    int k = poll(&p, 1, (int)left);
    if (k > 0) {
      char buf[4096];
      ssize_t got = recv(r->fd, buf, sizeof buf - 1, MSG_DONTWAIT);
      if (got >= 0) {
        buf[got] = 0;
        if (r->n == r->cap) {
          r->cap = r->cap ? r->cap * 2 : 64;
          r->msg = realloc(r->msg, (size_t)r->cap * sizeof *r->msg);
          r->at = realloc(r->at, (size_t)r->cap * sizeof *r->at);
          if (!r->msg || !r->at)
            abort();
        }
        r->msg[r->n] = strdup(buf);
        r->at[r->n++] = mono_us();
        if (stop_on_one)
          return;
      }
    }
    if (left == 0)
      return;
  }
}

/* The value of KEY= in a message (a pointer to its line's value), or NULL. */
static const char *field(const char *msg, const char *key) {
  size_t k = strlen(key);
  for (const char *l = msg; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
    if (strncmp(l, key, k) == 0 && l[k] == '=')
      return l + k + 1;
  return NULL;
}

/* 1 when the message has the line KEY=VALUE exactly. */
static int has(const char *msg, const char *key, const char *value) {
  const char *v = field(msg, key);
  size_t n = strlen(value);
  return v && strncmp(v, value, n) == 0 && (v[n] == '\n' || v[n] == 0);
}

/* The index of the first message from index `from` on with KEY=VALUE,
 * waiting up to timeout_ms for it; -1 at the deadline. */
static int rx_wait(struct rx *r, int from, const char *key, const char *value,
                   int timeout_ms) {
  long long end = mono_us() + (long long)timeout_ms * 1000;
  for (int i = from;; i++) {
    while (i >= r->n) {
      long long left = (end - mono_us()) / 1000;
      if (left <= 0) {
        fprintf(stderr, "no %s=%s within %d ms (%d message(s) so far)\n", key, value,
                timeout_ms, r->n);
        return -1;
      }
      rx_poll(r, (int)left, 1);
    }
    if (has(r->msg[i], key, value))
      return i;
  }
}

static int count(const struct rx *r, int from, int to, const char *key,
                 const char *value) {
  int c = 0;
  for (int i = from; i < to && i < r->n; i++)
    c += has(r->msg[i], key, value);
  return c;
}

static int status_has(const struct rx *r, int i, const char *needle) {
  const char *v = i >= 0 && i < r->n ? field(r->msg[i], "STATUS") : NULL;
  return v && strstr(v, needle) != NULL;
}

/* Starts the daemon with NOTIFY_SOCKET (and the watchdog variables, when
 * given) in its environment only. */
static int start(struct proc *d, const char *dir, const char *tag, const char *ini,
                 const char *sock, const char *wd_usec, const char *wd_pid) {
  setenv("NOTIFY_SOCKET", sock, 1);
  if (wd_usec)
    setenv("WATCHDOG_USEC", wd_usec, 1);
  if (wd_pid)
    setenv("WATCHDOG_PID", wd_pid, 1);
  int rc = h_daemon_start(d, dir, tag, ini);
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
  return rc;
}

static void push(struct sim *sim, int n, long *expect) {
  char body[128];
  snprintf(body, sizeof body, "{\"count\":%d,\"text\":\"notify %%d\"}", n);
  json_t *r = h_sim_post(sim, "/_sim/push", body);
  CHECK_INT(h_stat(r, "count"), n);
  json_decref(r);
  *expect += n;
  CHECK(h_sim_wait(sim, "acked", *expect, 30000) == 0);
}

/* A filesystem socket: READY after the listing, the watchdog, a reload,
 * a stop. */
static void run_path(const char *dir, struct sim *sim, const char *ini, long *expect) {
  char sock[600], errlog[700], mainpid[32];
  snprintf(sock, sizeof sock, "%s/notify.sock", dir);
  if (strlen(sock) >= sizeof(((struct sockaddr_un *)0)->sun_path))
    snprintf(sock, sizeof sock, "/tmp/blazebot-notify-%d.sock", (int)getpid());
  snprintf(errlog, sizeof errlog, "%s/daemon.err", dir);
  struct rx r;
  if (rx_open(&r, sock) < 0) {
    CHECK(!"the notify socket is bound");
    return;
  }
  struct proc d;
  if (start(&d, dir, "daemon", ini, sock, "400000", NULL) < 0) {
    rx_close(&r);
    return;
  }
  snprintf(mainpid, sizeof mainpid, "%d", (int)d.pid);

  /* READY=1 once connected and listed, with the pid and a status. */
  int ready = rx_wait(&r, 0, "READY", "1", 15000);
  CHECK(ready >= 0);
  json_t *st = h_sim_stats(sim);
  CHECK(h_stat(st, "list_pending") >= 1);
  json_decref(st);
  if (ready >= 0) {
    CHECK(has(r.msg[ready], "MAINPID", mainpid));
    CHECK(status_has(&r, ready, "connected to Blaze"));
    CHECK_INT(
        count(&r, 0, ready, "RELOADING", "1") + count(&r, 0, ready, "STOPPING", "1"), 0);
  }

  /* The watchdog: every 200 ms, so 3 or more in 1.5 s, and not a flood. */
  int before = r.n;
  rx_poll(&r, 1500, 0);
  int pings = count(&r, before, r.n, "WATCHDOG", "1");
  fprintf(stderr, "%d WATCHDOG=1 in 1.5 s (WATCHDOG_USEC=400000)\n", pings);
  CHECK(pings >= 3);
  CHECK(pings <= 16);

  push(sim, 20, expect);

  /* SIGHUP: RELOADING=1 stamped during the reload, then READY=1. */
  int from = r.n;
  long long t1 = mono_us();
  h_kill(&d, SIGHUP);
  int reloading = rx_wait(&r, from, "RELOADING", "1", 10000);
  CHECK(reloading >= 0);
  if (reloading >= 0) {
    const char *v = field(r.msg[reloading], "MONOTONIC_USEC");
    long long mono = v ? atoll(v) : 0;
    CHECK(mono >= t1);
    CHECK(mono <= r.at[reloading]);
    int done = rx_wait(&r, reloading + 1, "READY", "1", 10000);
    CHECK(done >= 0);
    CHECK(status_has(&r, done, "reload done"));
  }
  CHECK(h_wait_count(errlog, "reload: done", 1, 10000) == 0);

  /* SIGTERM: STOPPING=1 first, then a clean exit. */
  from = r.n;
  h_kill(&d, SIGTERM);
  int stopping = rx_wait(&r, from, "STOPPING", "1", 10000);
  CHECK(stopping >= 0);
  CHECK(status_has(&r, stopping, "stopping (SIGTERM)"));
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  CHECK_INT(count(&r, 0, r.n, "READY", "1"), 2);
  CHECK_INT(h_count(errlog, "systemd notify"), 0);
  CHECK(h_no_sanitizer_report(dir, "daemon.err"));
  h_reap(&d);
  rx_close(&r);
  unlink(sock);
}

/* An abstract socket, and a watchdog meant for another process. */
static void run_abstract(const char *dir, const char *ini) {
  char sock[64], mainpid[32];
  snprintf(sock, sizeof sock, "@blazebot-notify-test-%d", (int)getpid());
  struct rx r;
  if (rx_open(&r, sock) < 0) {
    CHECK(!"the abstract notify socket is bound");
    return;
  }
  struct proc d;
  if (start(&d, dir, "abstract", ini, sock, "200000", "1") < 0) {
    rx_close(&r);
    return;
  }
  snprintf(mainpid, sizeof mainpid, "%d", (int)d.pid);
  int ready = rx_wait(&r, 0, "READY", "1", 15000);
  CHECK(ready >= 0);
  if (ready >= 0)
    CHECK(has(r.msg[ready], "MAINPID", mainpid));
  rx_poll(&r, 1000, 0);
  CHECK_INT(count(&r, 0, r.n, "WATCHDOG", "1"), 0); /* WATCHDOG_PID=1 is not us */
  int from = r.n;
  h_kill(&d, SIGTERM);
  CHECK(rx_wait(&r, from, "STOPPING", "1", 10000) >= 0);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  CHECK(h_no_sanitizer_report(dir, "abstract.err"));
  h_reap(&d);
  rx_close(&r);
}

/* NOTIFY_SOCKET names nothing: one warning, the daemon works and stops. */
static void run_missing(const char *dir, struct sim *sim, const char *ini, long *expect) {
  char sock[600], errlog[700];
  snprintf(sock, sizeof sock, "%s/missing.sock", dir);
  unlink(sock);
  snprintf(errlog, sizeof errlog, "%s/missing.err", dir);
  json_t *st = h_sim_stats(sim);
  long conns = h_stat(st, "connections");
  json_decref(st);
  struct proc d;
  if (start(&d, dir, "missing", ini, sock, "200000", NULL) < 0)
    return;
  CHECK(h_sim_wait(sim, "connections", conns + 1, 15000) == 0);
  push(sim, 20, expect);
  h_kill(&d, SIGHUP);
  CHECK(h_wait_count(errlog, "reload: done", 1, 10000) == 0);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  CHECK_INT(h_count(errlog, "systemd notify: cannot send"), 1);
  CHECK(h_no_sanitizer_report(dir, "missing.err"));
  h_reap(&d);
}

/* Blaze unreachable at start: READY=1 after the first failed attempt,
 * with a STATUS that says the daemon is not connected and retrying. */
static void run_unreachable(const char *dir, const char *ks) {
  char sock[600], ini[700];
  snprintf(sock, sizeof sock, "%s/unreachable.sock", dir);
  if (strlen(sock) >= sizeof(((struct sockaddr_un *)0)->sun_path))
    snprintf(sock, sizeof sock, "/tmp/blazebot-notify-u-%d.sock", (int)getpid());
  CHECK(h_config(dir, NULL, ks, "", ini, sizeof ini) == 0); /* ws://127.0.0.1:1/ */
  struct rx r;
  if (rx_open(&r, sock) < 0) {
    CHECK(!"the notify socket is bound");
    return;
  }
  struct proc d;
  long long t0 = mono_us();
  if (start(&d, dir, "unreachable", ini, sock, NULL, NULL) < 0) {
    rx_close(&r);
    return;
  }
  int ready = rx_wait(&r, 0, "READY", "1", 15000);
  CHECK(ready >= 0);
  if (ready >= 0) {
    fprintf(stderr, "READY=1 %lld ms after the start with Blaze unreachable: %s",
            (r.at[ready] - t0) / 1000, r.msg[ready]);
    CHECK(status_has(&r, ready, "not connected to Blaze"));
    CHECK(r.at[ready] - t0 < 5000000LL); /* the first refused attempt, not a timeout */
  }
  int from = r.n;
  h_kill(&d, SIGTERM);
  CHECK(rx_wait(&r, from, "STOPPING", "1", 10000) >= 0);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  CHECK(h_no_sanitizer_report(dir, "unreachable.err"));
  h_reap(&d);
  rx_close(&r);
  unlink(sock);
}

int main(void) {
  char dir[512], ks[600], ini[700];
  snprintf(dir, sizeof dir, "%s", h_dir("notify"));
  /* The simulator starts before NOTIFY_SOCKET is ever set here. */
  struct sim sim;
  if (h_keygen(dir, "ed25519", ks, sizeof ks) < 0 || h_sim_start(&sim, dir, ks, NULL) < 0)
    return check_done(TEST_NAME);
  CHECK(h_config(dir, &sim, ks, "", ini, sizeof ini) == 0);
  long expect = 0;
  run_path(dir, &sim, ini, &expect);
  run_abstract(dir, ini);
  run_missing(dir, &sim, ini, &expect);
  run_unreachable(dir, ks);
  json_t *st = h_sim_stats(&sim);
  CHECK_INT(h_stat(st, "acked"), expect);
  CHECK_INT(h_stat(st, "acked_twice"), 0);
  json_decref(st);
  h_sim_stop(&sim);
  return check_done(TEST_NAME);
}
