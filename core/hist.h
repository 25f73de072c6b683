/* SPDX-License-Identifier: MIT */
/*
 * hist: a latency histogram with fixed buckets (0.5 ms to 10 s), for the
 * Prometheus endpoint. Observations and reads are relaxed atomics: any
 * thread may observe, any thread may read, nothing is locked, and a reader
 * may see a count that is one observation ahead of a bucket (harmless for
 * monitoring). No allocation.
 */
#ifndef BLAZEBOT_HIST_H
#define BLAZEBOT_HIST_H

#include <stdatomic.h>
#include <stdint.h>

#define HIST_BUCKETS 14

/* The upper bounds of the buckets, in seconds (the last bucket, +Inf, is
 * implicit). */
extern const double hist_bounds[HIST_BUCKETS];

struct hist {
  atomic_ullong bucket[HIST_BUCKETS + 1]; /* not cumulative; [HIST_BUCKETS]: +Inf */
  atomic_ullong count;
  atomic_ullong sum_us;
};

/* Records one duration in microseconds. */
void hist_observe_us(struct hist *h, uint64_t us);

#endif
