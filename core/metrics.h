/* SPDX-License-Identifier: MIT */
/*
 * metrics: the optional operations endpoint ([blazebot] metrics_listen):
 * GET /metrics answers the Prometheus text format (version 0.0.4), GET
 * /healthz 200 or 503 with a one-line JSON reason. Served by libwebsockets
 * on the daemon's own loop (a listening vhost of its context), so a scrape
 * runs on the I/O thread and reads the counters the modules keep anyway:
 * nothing on the message path takes a lock or does work for it. The daemon
 * supplies what to render (metrics_render_fn); the helpers below write the
 * text format.
 */
#ifndef BLAZEBOT_METRICS_H
#define BLAZEBOT_METRICS_H

#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct metrics;

/* I/O thread: appends every metric family to out. */
typedef void (*metrics_render_fn)(void *ud, struct buf *out);
/* I/O thread: 1 when healthy; a one-line reason either way in reason. */
typedef int (*metrics_health_fn)(void *ud, char *reason, size_t cap);

/* The lws protocol list the listening vhost serves (one entry + end). */
extern const struct lws_protocols metrics_protocols[];

/* Listens on listen ("HOST:PORT", e.g. 127.0.0.1:9464; port 0 picks one)
 * as a new vhost of ctx. Returns NULL with a reason in err. */
struct metrics *metrics_new(struct lws_context *ctx, const char *listen,
                            metrics_render_fn render, metrics_health_fn health, void *ud,
                            char *err, size_t errlen);
void metrics_free(struct metrics *m);
/* The port actually listened on. */
int metrics_port(const struct metrics *m);

/* The text format. A family: its # HELP and # TYPE lines (type "counter",
 * "gauge" or "histogram"); then its samples. labels is "" or the inside of
 * the braces, e.g. plugin="echo",result="handled" (values escaped with
 * metrics_label). */
void metrics_family(struct buf *b, const char *name, const char *type, const char *help);
void metrics_sample(struct buf *b, const char *name, const char *labels, double value);
struct hist;
/* The samples of one histogram (name_bucket{labels,le=...} cumulative,
 * name_sum in seconds, name_count); the family line comes first. */
void metrics_histogram(struct buf *b, const char *name, const char *labels,
                       const struct hist *h);
/* Appends key="value" (value escaped: backslash, quote, newline) and a comma
 * first when dst is not empty; dst is NUL-terminated, cap its size. */
void metrics_label(char *dst, size_t cap, const char *key, const char *value);

#endif
