/* SPDX-License-Identifier: MIT */
/*
 * Log-linear histogram (lib/hist.h). Bucket i < 8 holds the value i; above
 * that, the power of two e = floor(log2 v) >= 3 is split in 8 buckets of
 * width 2^(e-3), so a bucket's width is at most 1/8 of its lower bound:
 * returning its upper bound is within 12.5% of any value in it.
 */
#include "lib/hist.h"

static unsigned bucket_of(uint64_t v)
{
	if (v < RL_HIST_SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v);	/* >= 3 */
	unsigned sub = (unsigned)(v >> (e - 3)) & (RL_HIST_SUB - 1);

	return (e - 2) * RL_HIST_SUB + sub;
}

/* The largest value that lands in bucket i. */
static uint64_t bucket_upper(unsigned i)
{
	if (i < RL_HIST_SUB)
		return i;
	unsigned e = i / RL_HIST_SUB + 2;
	uint64_t sub = i % RL_HIST_SUB;
	uint64_t width = 1ull << (e - 3);

	/* (8 + sub) << (e - 3) fits even for e = 63: 15 << 60 < 2^64. */
	return ((RL_HIST_SUB + sub) << (e - 3)) + (width - 1);
}

void rl_hist_init(struct rl_hist *h)
{
	*h = (struct rl_hist){ .min = UINT64_MAX };
}

void rl_hist_add(struct rl_hist *h, uint64_t v)
{
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->b[bucket_of(v)]++;
}

void rl_hist_merge(struct rl_hist *dst, const struct rl_hist *src)
{
	if (!src->count)
		return;
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	for (unsigned i = 0; i < RL_HIST_BUCKETS; i++)
		dst->b[i] += src->b[i];
}

uint64_t rl_hist_quantile(const struct rl_hist *h, double q)
{
	if (!h->count)
		return 0;
	if (!(q > 0))		/* also NaN */
		q = 0;
	if (q > 1)
		q = 1;

	/* Nearest rank: the smallest value with at least ceil(q * n) values
	 * at or below it (rank 1 for q = 0, the minimum). */
	double want = q * (double)h->count;
	uint64_t rank = (uint64_t)want;	/* ceil without libm */

	if ((double)rank < want)
		rank++;

	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;

	uint64_t seen = 0;

	for (unsigned i = 0; i < RL_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t v = bucket_upper(i);

			if (v < h->min)
				v = h->min;
			if (v > h->max)
				v = h->max;
			return v;
		}
	}
	/* Unreachable while count == sum of buckets: only a bucket that
	 * wrapped past 2^32 gets here. */
	return h->max;
}

double rl_hist_mean(const struct rl_hist *h)
{
	return h->count ? (double)h->sum / (double)h->count : 0.0;
}
