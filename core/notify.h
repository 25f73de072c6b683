/* SPDX-License-Identifier: MIT */
/*
 * notify: the sd_notify protocol without libsystemd. When NOTIFY_SOCKET is
 * set (a filesystem path, or "@name" for the abstract namespace) each call
 * sends one datagram on an AF_UNIX SOCK_DGRAM socket (close-on-exec,
 * non-blocking, MSG_NOSIGNAL); otherwise every call does nothing. It never
 * blocks and never fails the caller: the first failed send is logged once
 * as a warning, later ones are dropped quietly. The daemon decides when
 * things happen and calls in (I/O thread, or main before and after the
 * loop; nothing here is thread-safe):
 *
 *   READY=1, MAINPID, STATUS  the first connection (notify_connected), or,
 *                             when Blaze is unreachable at start, the first
 *                             failed attempt or the start grace period,
 *                             whichever comes first (notify_tick): the
 *                             daemon is then running and retrying;
 *   RELOADING=1 + MONOTONIC_USEC, then READY=1 + STATUS   a SIGHUP reload
 *                             (notify_reloading, notify_reloaded);
 *   STOPPING=1 + STATUS       a graceful stop or a fatal error begins;
 *   STATUS                    connection changes (lost, failed attempts);
 *   WATCHDOG=1                from the tick, every WATCHDOG_USEC / 2, when
 *                             WATCHDOG_USEC is set and WATCHDOG_PID is
 *                             unset or this process.
 *
 * Before the first READY=1 a reload sends STATUS only, so that its READY=1
 * cannot tell systemd that start-up is complete.
 */
#ifndef BLAZEBOT_NOTIFY_H
#define BLAZEBOT_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

struct notify;

/* Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID. Returns NULL when
 * NOTIFY_SOCKET is unset or unusable (a warning says why): every function
 * below accepts NULL and then does nothing. ready_grace_ms: how long after
 * the first notify_tick READY=1 is sent at the latest when no connection
 * was made and no attempt failed yet. */
struct notify *notify_new(int64_t ready_grace_ms);
void notify_free(struct notify *n);

/* The watchdog period in microseconds (WATCHDOG_USEC), 0 when off. */
uint64_t notify_watchdog_usec(const struct notify *n);
/* 1 once READY=1 was sent. */
int notify_is_ready(const struct notify *n);

/* The link is up (every time): READY=1 the first time, STATUS always. */
void notify_connected(struct notify *n, const char *url, size_t plugins);
/* Every tick (~100 ms): the watchdog, STATUS when the link went down or an
 * attempt failed (connect_errors is the session's running count), and
 * READY=1 if start-up cannot connect. */
void notify_tick(struct notify *n, int64_t now, int open, uint64_t connect_errors);
/* A reload starts: RELOADING=1, MONOTONIC_USEC, STATUS. */
void notify_reloading(struct notify *n);
/* A reload ended: READY=1 and STATUS with the summary line. ok: 1 all
 * applied, 0 something was refused, -1 the whole reload was refused. */
void notify_reloaded(struct notify *n, int ok, const char *summary);
/* A graceful stop (or a fatal error) begins: STOPPING=1 and STATUS. */
void notify_stopping(struct notify *n, const char *status);
/* One STATUS line (newlines become spaces, long lines are cut). */
void notify_status(struct notify *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
