/* SPDX-License-Identifier: MIT */
/*
 * observe: what the operations endpoint says (metrics.h): every family of
 * GET /metrics, rendered from the counters the daemon's modules keep, and
 * the verdict of GET /healthz. The daemon hands it the modules once; it
 * only reads them, on the I/O thread.
 */
#ifndef BLAZEBOT_OBSERVE_H
#define BLAZEBOT_OBSERVE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct ingress;
struct session;
struct acks;
struct outbox;
struct rest;
struct plugin_host;

/* Reloads, kept by the daemon. */
struct observe_reloads {
  uint64_t reloads, failed;
  int last_ok;
  int64_t last_time; /* unix seconds; 0: none */
};

struct observe_sources {
  struct ingress *ingress;
  struct session *session;
  struct acks *acks;
  struct outbox *outbox;
  struct rest *rest;
  struct plugin_host *const *plugins; /* the daemon's pointer: NULL once unloaded */
  const struct observe_reloads *reload;
  const int *stopping;
};

/* metrics_render_fn and metrics_health_fn; ud: a struct observe_sources. */
void observe_metrics(void *ud, struct buf *b);
int observe_health(void *ud, char *reason, size_t cap);

#endif
