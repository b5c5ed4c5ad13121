/* SPDX-License-Identifier: MIT */
/*
 * Log-linear histograms against a sorted reference: every quantile of
 * several distributions within 12.5% (and never below the true value),
 * min/max/mean exact, bucket edges at every power of two, merge equal to
 * adding everything to one histogram, the empty histogram.
 * TEST_SEED replays a run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "lib/hist.h"

static uint64_t rng_state;

static uint64_t rnd64(void)
{
	/* splitmix64: reproducible from TEST_SEED, full 64-bit range */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank, the definition hist.h promises within a bucket. */
static uint64_t ref_quantile(const uint64_t *sorted, size_t n, double q)
{
	size_t rank = (size_t)(q * (double)n);

	if ((double)rank < q * (double)n)
		rank++;
	if (rank < 1)
		rank = 1;
	return sorted[rank - 1];
}

static void assert_close(uint64_t got, uint64_t want, double q)
{
	/* The bucket's upper bound: >= the value, and above it by less than
	 * an eighth of it. */
	if (got < want || got - want > want / 8) {
		fprintf(stderr, "q=%g: got %llu want %llu\n", q, (unsigned long long)got,
			(unsigned long long)want);
		fail();
	}
}

enum dist { UNIFORM_SMALL, UNIFORM_1M, LOG_UNIFORM, LATENCY_LIKE };

static uint64_t draw(enum dist d)
{
	switch (d) {
	case UNIFORM_SMALL:
		return rnd64() % 40;
	case UNIFORM_1M:
		return rnd64() % 1000000;
	case LOG_UNIFORM: {
		unsigned bits = (unsigned)(rnd64() % 65);

		return bits == 64 ? rnd64() : rnd64() & ((1ull << bits) - 1);
	}
	case LATENCY_LIKE:
		/* mostly ~2 us, a tail of ms stalls */
		return rnd64() % 100 < 97 ? 1500 + rnd64() % 1000 : 1000000 + rnd64() % 50000000;
	}
	return 0;
}

static void test_quantiles_vs_reference(void **state)
{
	static const double qs[] = { 0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1 };
	static const size_t sizes[] = { 1, 2, 7, 100, 20000 };

	(void)state;
	for (enum dist d = UNIFORM_SMALL; d <= LATENCY_LIKE; d++) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			size_t n = sizes[s];
			uint64_t *v = malloc(n * sizeof(*v)), sum = 0;
			struct rl_hist h;

			assert_non_null(v);
			rl_hist_init(&h);
			for (size_t i = 0; i < n; i++) {
				v[i] = draw(d);
				sum += v[i];
				rl_hist_add(&h, v[i]);
			}
			qsort(v, n, sizeof(*v), cmp_u64);
			assert_int_equal(h.count, n);
			assert_int_equal(h.sum, sum);
			assert_int_equal(h.min, v[0]);
			assert_int_equal(h.max, v[n - 1]);
			/* the top rank is max exactly (clamped); the bottom one
			 * is min's bucket's bound, checked with the others */
			assert_int_equal(rl_hist_quantile(&h, 1), v[n - 1]);
			assert_true(rl_hist_mean(&h) == (double)sum / (double)n);
			for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
				assert_close(rl_hist_quantile(&h, qs[i]), ref_quantile(v, n, qs[i]), qs[i]);
			/* out of range q clamps */
			assert_int_equal(rl_hist_quantile(&h, -1), rl_hist_quantile(&h, 0));
			assert_int_equal(rl_hist_quantile(&h, 2), v[n - 1]);
			free(v);
		}
	}
}

static void test_small_values_exact(void **state)
{
	struct rl_hist h;

	(void)state;
	/* 0..15 are their own buckets: every quantile exact. */
	rl_hist_init(&h);
	for (uint64_t v = 0; v < 16; v++)
		for (uint64_t k = 0; k <= v; k++)	/* v appears v+1 times */
			rl_hist_add(&h, v);

	uint64_t n = h.count, seen = 0;

	assert_int_equal(n, 16 * 17 / 2);
	for (uint64_t v = 0; v < 16; v++) {
		seen += v + 1;
		/* the rank of the last copy of v (half a rank below, so that
		 * rounding cannot push it to the next one) */
		assert_int_equal(rl_hist_quantile(&h, ((double)seen - 0.5) / (double)n), v);
	}
}

/* Bucket edges: v alone with a far larger value; the median is v's bucket's
 * upper bound, which must be within an eighth of v. */
static void test_bucket_edges(void **state)
{
	(void)state;
	for (unsigned k = 0; k < 64; k++) {
		uint64_t p = 1ull << k;
		uint64_t cand[] = { p - 1, p, p + 1, p + (p >> 3), p + (p >> 3) - 1, p + (p >> 1),
				    p + (p - 1) };

		for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++) {
			uint64_t v = cand[i];
			struct rl_hist h;

			if (v == UINT64_MAX)
				continue;
			rl_hist_init(&h);
			rl_hist_add(&h, v);
			rl_hist_add(&h, UINT64_MAX);
			assert_close(rl_hist_quantile(&h, 0.5), v, 0.5);
			assert_int_equal(rl_hist_quantile(&h, 1), UINT64_MAX);
			/* alone, clamping makes it exact */
			rl_hist_init(&h);
			rl_hist_add(&h, v);
			assert_int_equal(rl_hist_quantile(&h, 0.5), v);
		}
	}

	/* Upper bounds are monotonic: a sorted run of values near each
	 * power of two never gives a smaller quantile for a larger q. */
	struct rl_hist h;
	uint64_t last = 0;

	rl_hist_init(&h);
	for (unsigned k = 0; k < 64; k++)
		for (uint64_t d = 0; d < 9; d++)
			rl_hist_add(&h, (1ull << k) + d * ((1ull << k) >> 3));
	for (int i = 0; i <= 1000; i++) {
		uint64_t q = rl_hist_quantile(&h, i / 1000.0);

		assert_true(q >= last);
		last = q;
	}
	assert_int_equal(last, h.max);
}

static void test_merge(void **state)
{
	struct rl_hist a, b, all, m;

	(void)state;
	rl_hist_init(&a);
	rl_hist_init(&b);
	rl_hist_init(&all);
	for (int i = 0; i < 5000; i++) {
		uint64_t v = draw(i % 3 ? LATENCY_LIKE : LOG_UNIFORM);

		rl_hist_add(i % 2 ? &a : &b, v);
		rl_hist_add(&all, v);
	}
	m = a;
	rl_hist_merge(&m, &b);
	assert_memory_equal(&m, &all, sizeof(m));

	/* into an empty one, and an empty one into it */
	struct rl_hist e;

	rl_hist_init(&e);
	rl_hist_merge(&e, &all);
	assert_memory_equal(&e, &all, sizeof(e));
	rl_hist_init(&e);
	m = all;
	rl_hist_merge(&m, &e);
	assert_memory_equal(&m, &all, sizeof(m));

	/* min and max come from whichever side has them */
	rl_hist_init(&a);
	rl_hist_init(&b);
	rl_hist_add(&a, 50);
	rl_hist_add(&b, 3);
	rl_hist_add(&b, 1000);
	rl_hist_merge(&a, &b);
	assert_int_equal(a.min, 3);
	assert_int_equal(a.max, 1000);
	assert_int_equal(a.count, 3);
	assert_int_equal(a.sum, 1053);
}

static void test_empty(void **state)
{
	struct rl_hist h;

	(void)state;
	memset(&h, 0xa5, sizeof(h));
	rl_hist_init(&h);
	assert_int_equal(h.count, 0);
	assert_int_equal(h.sum, 0);
	assert_int_equal(h.min, UINT64_MAX);
	assert_int_equal(h.max, 0);
	for (int i = 0; i < RL_HIST_BUCKETS; i++)
		assert_int_equal(h.b[i], 0);
	assert_int_equal(rl_hist_quantile(&h, 0), 0);
	assert_int_equal(rl_hist_quantile(&h, 0.5), 0);
	assert_int_equal(rl_hist_quantile(&h, 1), 0);
	assert_true(rl_hist_mean(&h) == 0.0);

	/* extremes are recorded exactly */
	rl_hist_add(&h, 0);
	rl_hist_add(&h, UINT64_MAX);
	assert_int_equal(h.min, 0);
	assert_int_equal(h.max, UINT64_MAX);
	assert_int_equal(rl_hist_quantile(&h, 0.5), 0);
	assert_int_equal(rl_hist_quantile(&h, 1), UINT64_MAX);
}

int main(void)
{
	const char *env = getenv("TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);

	fprintf(stderr, "test_hist: TEST_SEED=%llu\n", (unsigned long long)seed);
	rng_state = seed;

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_small_values_exact),
		cmocka_unit_test(test_bucket_edges),
		cmocka_unit_test(test_quantiles_vs_reference),
		cmocka_unit_test(test_merge),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
