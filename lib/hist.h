/* SPDX-License-Identifier: MIT */
/*
 * Latency histograms: log-linear buckets (HdrHistogram's layout with 3
 * significant bits: every power of two split in 8), so p50/p99 are within
 * 12.5% of the true value and max is exact, in a fixed 1 KiB with no
 * allocation: cheap enough to record every fault and every direct-reclaim
 * stall. Not thread-safe: callers hold their own lock (or keep one per
 * thread and merge).
 */
#ifndef RECLAIMLAB_LIB_HIST_H
#define RECLAIMLAB_LIB_HIST_H

#include <stdint.h>

#define RL_HIST_SUB	8			/* buckets per power of two */
#define RL_HIST_BUCKETS	(64 * RL_HIST_SUB)

struct rl_hist {
	uint64_t count;
	uint64_t sum;				/* of values, for the mean */
	uint64_t min, max;			/* exact; min is UINT64_MAX while empty */
	uint32_t b[RL_HIST_BUCKETS];
};

void rl_hist_init(struct rl_hist *h);
void rl_hist_add(struct rl_hist *h, uint64_t v);
void rl_hist_merge(struct rl_hist *dst, const struct rl_hist *src);
/* The value at quantile q in [0, 1] (the upper bound of its bucket,
 * clamped to [min, max]); 0 when empty. */
uint64_t rl_hist_quantile(const struct rl_hist *h, double q);
double rl_hist_mean(const struct rl_hist *h);

#endif
