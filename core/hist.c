/* SPDX-License-Identifier: MIT */
/* hist: see hist.h. */
#include "hist.h"

const double hist_bounds[HIST_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                          0.1,    0.25,  0.5,    1,     2.5,  5,     10};

void hist_observe_us(struct hist *h, uint64_t us) {
  int i = 0;
  while (i < HIST_BUCKETS && (double)us > hist_bounds[i] * 1e6)
    i++;
  atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}
