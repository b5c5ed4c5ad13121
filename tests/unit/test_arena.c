/* SPDX-License-Identifier: MIT */
/*
 * The shim's range allocator (pager/shim/shim_arena.c) against a bitmap
 * model: randomized operations with the extent table's invariants checked
 * after each one, and the edge cases one by one.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pager/shim/shim_arena.h"

#define PG	SHIM_ARENA_PAGE
/* Not a multiple of any alignment above a page, so alignment has to be
 * computed on addresses, not on page indexes. */
#define BASE	(0x7f0000000000ull + 3 * PG)
#define NPAGES	2048u

static struct shim_arena_ext meta[4096];
static unsigned char model[NPAGES];	/* 1 = allocated */

static uint64_t addr_of(uint64_t page)
{
	return BASE + page * PG;
}

static uint64_t rnd(uint64_t n)
{
	return (uint64_t)random() % n;
}

/* Sorted, non-overlapping, coalesced, in range, counts right, and exactly
 * the model's free pages. */
static void check_invariants(const struct shim_arena *a, const unsigned char *m, uint64_t npages)
{
	uint64_t sum = 0, page = 0;

	assert_true(a->n <= a->cap);
	for (size_t i = 0; i < a->n; i++) {
		const struct shim_arena_ext *x = &a->ext[i];

		assert_true(x->npages > 0);
		assert_true(x->first + x->npages <= npages);
		if (i > 0)	/* strictly after the previous end: not touching */
			assert_true(x->first > a->ext[i - 1].first + a->ext[i - 1].npages);
		for (; page < x->first; page++)
			assert_int_equal(m[page], 1);
		for (; page < x->first + x->npages; page++)
			assert_int_equal(m[page], 0);
		sum += x->npages;
	}
	for (; page < npages; page++)
		assert_int_equal(m[page], 1);
	assert_int_equal(sum, a->free_pages);
	{
		uint64_t allocated = 0;

		for (uint64_t p = 0; p < npages; p++)
			allocated += m[p];
		assert_int_equal(allocated + a->free_pages, a->npages);
	}
}

/* The model's answer for alloc: lowest aligned run of np free pages. */
static int64_t model_fit(const unsigned char *m, uint64_t npages, uint64_t np, uint64_t align)
{
	if (align < PG)
		align = PG;
	for (uint64_t p = 0; p + np <= npages; p++) {
		uint64_t q;

		if (addr_of(p) % align)
			continue;
		for (q = 0; q < np && !m[p + q]; q++)
			;
		if (q == np)
			return (int64_t)p;
	}
	return -1;
}

static void set_model(unsigned char *m, uint64_t s, uint64_t n, unsigned char v)
{
	memset(m + s, v, n);
}

static void test_random_ops(void **state)
{
	static const uint64_t aligns[] = { 0, 1, PG, 2 * PG, 16 * PG, 64 * PG, 512 * PG };
	struct shim_arena a;

	(void)state;
	srandom(4);
	assert_int_equal(shim_arena_init(&a, BASE, NPAGES * PG, meta, sizeof(meta)), 0);
	memset(model, 0, sizeof(model));
	check_invariants(&a, model, NPAGES);

	for (int op = 0; op < 20000; op++) {
		uint64_t s = rnd(NPAGES), n = 1 + rnd(op % 7 == 0 ? NPAGES / 4 : 24), addr;
		int r;

		if (s + n > NPAGES)
			n = NPAGES - s;
		switch (rnd(6)) {
		case 0:
		case 1: {	/* alloc, sometimes with a byte length that is not a page multiple */
			uint64_t align = aligns[rnd(sizeof(aligns) / sizeof(aligns[0]))];
			uint64_t len = n * PG - (rnd(2) ? rnd(PG - 1) : 0);
			int64_t want = model_fit(model, NPAGES, n, align);

			r = shim_arena_alloc(&a, len, align, &addr);
			if (want < 0) {
				assert_int_equal(r, -ENOMEM);
			} else {
				assert_int_equal(r, 0);
				assert_int_equal(addr, addr_of((uint64_t)want));
				set_model(model, (uint64_t)want, n, 1);
			}
			break;
		}
		case 2:	/* alloc_fixed over whatever is there */
			assert_int_equal(shim_arena_alloc_fixed(&a, addr_of(s), n * PG), 0);
			set_model(model, s, n, 1);
			break;
		case 3:
		case 4:	/* free over whatever is there */
			assert_int_equal(shim_arena_free(&a, addr_of(s), n * PG - rnd(PG)), 0);
			set_model(model, s, n, 0);
			break;
		case 5: {	/* grow: only the tail decides */
			uint64_t old = 1 + rnd(n), grow = 1 + rnd(16);
			bool ok = s + old + grow <= NPAGES;

			for (uint64_t p = s + old; ok && p < s + old + grow; p++)
				ok = !model[p];
			r = shim_arena_grow(&a, addr_of(s), old * PG, (old + grow) * PG);
			assert_int_equal(r, ok ? 0 : -ENOMEM);
			if (ok)
				set_model(model, s + old, grow, 1);
			break;
		}
		}
		check_invariants(&a, model, NPAGES);
		{	/* is_allocated on a random range agrees with the model */
			uint64_t t = rnd(NPAGES), k = 1 + rnd(8), p;
			bool want = t + k <= NPAGES;

			bool want_free = want;

			for (p = t; want && p < t + k; p++)
				want = model[p];
			for (p = t; want_free && p < t + k; p++)
				want_free = !model[p];
			assert_int_equal(shim_arena_is_allocated(&a, addr_of(t), k * PG), want);
			assert_int_equal(shim_arena_is_free(&a, addr_of(t), k * PG), want_free);
		}
	}
}

/* With a tiny table, an operation that needs one more extent fails with
 * -ENOSPC and changes nothing; the model keeps agreeing. */
static void test_random_small_table(void **state)
{
	static struct shim_arena_ext small[5];
	static unsigned char m[256];
	struct shim_arena a, before;
	struct shim_arena_ext saved[5];
	int nospc = 0;

	(void)state;
	srandom(7);
	assert_int_equal(shim_arena_init(&a, BASE, 256 * PG, small, sizeof(small)), 0);
	assert_int_equal(a.cap, 5);
	memset(m, 0, sizeof(m));
	for (int op = 0; op < 20000; op++) {
		uint64_t s = rnd(256), n = 1 + rnd(12), addr;
		int r;

		if (s + n > 256)
			n = 256 - s;
		before = a;
		memcpy(saved, small, sizeof(saved));
		switch (rnd(3)) {
		case 0: {
			int64_t want = model_fit(m, 256, n, 0);

			r = shim_arena_alloc(&a, n * PG, 0, &addr);
			if (r == 0) {
				assert_true(want >= 0);
				assert_int_equal(addr, addr_of((uint64_t)want));
				set_model(m, (uint64_t)want, n, 1);
			} else if (want < 0) {
				assert_int_equal(r, -ENOMEM);
			} else {
				assert_int_equal(r, -ENOSPC);
			}
			break;
		}
		case 1:
			r = shim_arena_alloc_fixed(&a, addr_of(s), n * PG);
			if (r == 0)
				set_model(m, s, n, 1);
			break;
		default:
			r = shim_arena_free(&a, addr_of(s), n * PG);
			if (r == 0)
				set_model(m, s, n, 0);
			break;
		}
		if (r == -ENOSPC) {
			nospc++;
			assert_int_equal(a.n, before.n);
			assert_int_equal(a.free_pages, before.free_pages);
			assert_memory_equal(small, saved, sizeof(saved));
		} else {
			assert_true(r == 0 || r == -ENOMEM);
		}
		check_invariants(&a, m, 256);
	}
	assert_true(nospc > 100);	/* the case really happened */
}

static void test_init_args(void **state)
{
	struct shim_arena a;

	(void)state;
	assert_int_equal(shim_arena_init(&a, BASE + 1, 16 * PG, meta, sizeof(meta)), -EINVAL);
	assert_int_equal(shim_arena_init(&a, BASE, PG - 1, meta, sizeof(meta)), -EINVAL);
	assert_int_equal(shim_arena_init(&a, BASE, 16 * PG, meta, sizeof(meta[0]) - 1), -EINVAL);
	assert_int_equal(shim_arena_init(&a, BASE, 16 * PG, NULL, sizeof(meta)), -EINVAL);
	assert_int_equal(shim_arena_init(&a, UINT64_MAX - 4 * PG + 1, 16 * PG, meta, sizeof(meta)),
			 -EINVAL);
	/* a partial last page is not managed */
	assert_int_equal(shim_arena_init(&a, BASE, 16 * PG + 100, meta, sizeof(meta)), 0);
	assert_int_equal(a.npages, 16);
	assert_int_equal(a.free_pages, 16);
}

static void test_bad_args(void **state)
{
	struct shim_arena a;
	uint64_t addr;

	(void)state;
	assert_int_equal(shim_arena_init(&a, BASE, 16 * PG, meta, sizeof(meta)), 0);
	assert_int_equal(shim_arena_alloc(&a, 0, 0, &addr), -EINVAL);
	assert_int_equal(shim_arena_alloc(&a, PG, 3 * PG, &addr), -EINVAL);
	assert_int_equal(shim_arena_alloc(&a, UINT64_MAX, 0, &addr), -EINVAL);
	assert_int_equal(shim_arena_alloc_fixed(&a, BASE + 1, PG), -EINVAL);
	assert_int_equal(shim_arena_alloc_fixed(&a, BASE, 0), -EINVAL);
	assert_int_equal(shim_arena_alloc_fixed(&a, BASE - PG, 2 * PG), -EINVAL);
	assert_int_equal(shim_arena_alloc_fixed(&a, BASE + 15 * PG, 2 * PG), -EINVAL);
	assert_int_equal(shim_arena_alloc_fixed(&a, BASE + 16 * PG, PG), -EINVAL);
	assert_int_equal(shim_arena_free(&a, BASE + 8 * PG, UINT64_MAX - PG), -EINVAL);
	assert_int_equal(shim_arena_free(&a, BASE + 100, PG), -EINVAL);
	assert_int_equal(shim_arena_grow(&a, BASE, 2 * PG, PG), -EINVAL);
	assert_int_equal(shim_arena_grow(&a, BASE, 2 * PG, 2 * PG), -EINVAL);
	assert_int_equal(shim_arena_grow(&a, BASE, 0, PG), -EINVAL);
	assert_false(shim_arena_is_allocated(&a, BASE + 15 * PG, 2 * PG));
	assert_false(shim_arena_is_allocated(&a, BASE, 0));
	assert_false(shim_arena_is_free(&a, BASE + 15 * PG, 2 * PG));
	assert_false(shim_arena_is_free(&a, BASE - PG, PG));
	assert_true(shim_arena_is_free(&a, BASE, 16 * PG));
	assert_true(shim_arena_contains(&a, BASE + 100, 16 * PG - 100));
	assert_false(shim_arena_contains(&a, BASE + 100, 16 * PG - 99));
	assert_false(shim_arena_contains(&a, BASE - 1, 2));
	assert_false(shim_arena_contains(&a, BASE, 0));
	assert_false(shim_arena_contains(&a, BASE + PG, UINT64_MAX));
	/* nothing changed */
	assert_int_equal(a.n, 1);
	assert_int_equal(a.free_pages, 16);
}

static void test_alignment(void **state)
{
	struct shim_arena a;
	uint64_t addr, aligned64 = (BASE + 64 * PG - 1) & ~(64 * PG - 1);

	(void)state;
	assert_int_equal(shim_arena_init(&a, BASE, 256 * PG, meta, sizeof(meta)), 0);
	assert_int_equal(shim_arena_alloc(&a, PG, 64 * PG, &addr), 0);
	assert_int_equal(addr, aligned64);
	/* the pages skipped for alignment stay free and are used next */
	assert_int_equal(shim_arena_alloc(&a, PG, 0, &addr), 0);
	assert_int_equal(addr, BASE);
	assert_int_equal(shim_arena_alloc(&a, 3 * PG, 1, &addr), 0);
	assert_int_equal(addr, BASE + PG);
	assert_int_equal(a.n, 2);
	/* no 128-page-aligned run of 200 pages fits in 256 pages at this base */
	assert_int_equal(shim_arena_alloc(&a, 200 * PG, 128 * PG, &addr), -ENOMEM);
	/* an alignment so large that rounding up wraps the address space */
	assert_int_equal(shim_arena_alloc(&a, PG, 1ull << 63, &addr), -ENOMEM);
}

static void test_exact_fit_and_fragmentation(void **state)
{
	struct shim_arena a;
	uint64_t addr;

	(void)state;
	assert_int_equal(shim_arena_init(&a, BASE, 64 * PG, meta, sizeof(meta)), 0);
	for (int i = 0; i < 64; i++) {
		assert_int_equal(shim_arena_alloc(&a, PG, 0, &addr), 0);
		assert_int_equal(addr, BASE + (uint64_t)i * PG);
	}
	assert_int_equal(a.n, 0);
	assert_int_equal(a.free_pages, 0);
	/* exhaustion */
	assert_int_equal(shim_arena_alloc(&a, PG, 0, &addr), -ENOMEM);
	/* free every other page: 32 free pages, no two together */
	for (int i = 0; i < 64; i += 2)
		assert_int_equal(shim_arena_free(&a, BASE + (uint64_t)i * PG, PG), 0);
	assert_int_equal(a.n, 32);
	assert_int_equal(a.free_pages, 32);
	assert_int_equal(shim_arena_alloc(&a, 2 * PG, 0, &addr), -ENOMEM);
	/* a hole of exactly 3 pages after one of 2: the 3-page alloc takes it */
	assert_int_equal(shim_arena_free(&a, BASE + 9 * PG, PG), 0);	/* 8..10 free */
	assert_int_equal(shim_arena_free(&a, BASE + 3 * PG, PG), 0);	/* 2..4 free */
	assert_int_equal(shim_arena_alloc(&a, PG - 100, 0, &addr), 0);	/* one page */
	assert_int_equal(addr, BASE);
	assert_int_equal(shim_arena_alloc(&a, 3 * PG, 0, &addr), 0);
	assert_int_equal(addr, BASE + 2 * PG);
	assert_int_equal(shim_arena_alloc(&a, 3 * PG, 0, &addr), 0);
	assert_int_equal(addr, BASE + 8 * PG);
	/* more than the whole arena */
	assert_int_equal(shim_arena_alloc(&a, 65 * PG, 0, &addr), -ENOMEM);
	/* free everything (including free parts): one extent again */
	assert_int_equal(shim_arena_free(&a, BASE, 64 * PG), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.free_pages, 64);
	assert_int_equal(shim_arena_alloc(&a, 64 * PG, 0, &addr), 0);
	assert_int_equal(addr, BASE);
}

static void test_partial_free(void **state)
{
	struct shim_arena a;
	uint64_t addr;

	(void)state;
	assert_int_equal(shim_arena_init(&a, BASE, 64 * PG, meta, sizeof(meta)), 0);
	assert_int_equal(shim_arena_alloc(&a, 10 * PG, 0, &addr), 0);
	assert_true(shim_arena_is_allocated(&a, BASE, 10 * PG));
	assert_false(shim_arena_is_allocated(&a, BASE, 11 * PG));
	/* the middle 3 pages of the allocation */
	assert_int_equal(shim_arena_free(&a, BASE + 4 * PG, 3 * PG), 0);
	assert_true(shim_arena_is_allocated(&a, BASE, 4 * PG));
	assert_true(shim_arena_is_allocated(&a, BASE + 7 * PG, 3 * PG));
	assert_false(shim_arena_is_allocated(&a, BASE + 3 * PG, 2 * PG));
	assert_false(shim_arena_is_free(&a, BASE + 3 * PG, 2 * PG));
	assert_true(shim_arena_is_free(&a, BASE + 4 * PG, 3 * PG));
	assert_int_equal(a.n, 2);
	assert_int_equal(a.free_pages, 57);
	/* a free across allocated and free space coalesces both sides */
	assert_int_equal(shim_arena_free(&a, BASE + 6 * PG, 10 * PG), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.ext[0].first, 4);
	assert_int_equal(a.ext[0].npages, 60);
	/* alloc_fixed over partly allocated space */
	assert_int_equal(shim_arena_alloc_fixed(&a, BASE + 2 * PG, 8 * PG), 0);
	assert_true(shim_arena_is_allocated(&a, BASE, 10 * PG));
	assert_int_equal(a.n, 1);
	assert_int_equal(a.free_pages, 54);
}

static void test_grow(void **state)
{
	struct shim_arena a;
	uint64_t x, y;

	(void)state;
	assert_int_equal(shim_arena_init(&a, BASE, 32 * PG, meta, sizeof(meta)), 0);
	assert_int_equal(shim_arena_alloc(&a, 4 * PG, 0, &x), 0);
	assert_int_equal(shim_arena_alloc_fixed(&a, BASE + 8 * PG, 2 * PG), 0);
	y = BASE + 8 * PG;
	/* unblocked up to the next allocation */
	assert_int_equal(shim_arena_grow(&a, x, 4 * PG, 8 * PG), 0);
	assert_true(shim_arena_is_allocated(&a, x, 10 * PG));
	/* blocked by it */
	assert_int_equal(shim_arena_grow(&a, y, 2 * PG, 3 * PG), 0);
	assert_int_equal(shim_arena_grow(&a, x, 8 * PG, 9 * PG), -ENOMEM);
	/* the same page count after rounding is not a change */
	assert_int_equal(shim_arena_grow(&a, y, 3 * PG - 100, 3 * PG), 0);
	/* up to the very end, then past it */
	assert_int_equal(shim_arena_grow(&a, y, 3 * PG, 24 * PG), 0);
	assert_int_equal(a.free_pages, 0);
	assert_int_equal(a.n, 0);
	assert_int_equal(shim_arena_free(&a, BASE + 31 * PG, PG), 0);
	assert_int_equal(shim_arena_grow(&a, y, 23 * PG, 25 * PG), -ENOMEM);
	assert_int_equal(shim_arena_grow(&a, y, 23 * PG, 24 * PG), 0);
	assert_int_equal(shim_arena_grow(&a, y, 24 * PG, UINT64_MAX), -ENOMEM);
}

static void test_table_full(void **state)
{
	static struct shim_arena_ext two[2];
	struct shim_arena a;
	uint64_t addr;

	(void)state;
	/* page p is at 0x7f0000000000 + (p + 3) pages: 4-page-aligned pages are 1, 5, 9, 13 */
	assert_int_equal(shim_arena_init(&a, BASE, 16 * PG, two, sizeof(two)), 0);
	assert_int_equal(shim_arena_alloc_fixed(&a, BASE + 4 * PG, PG), 0);	/* free: 0-3, 5-15 */
	assert_int_equal(a.n, 2);
	/* splitting either extent needs a third */
	assert_int_equal(shim_arena_alloc_fixed(&a, BASE + 10 * PG, PG), -ENOSPC);
	assert_int_equal(shim_arena_alloc(&a, PG, 4 * PG, &addr), -ENOSPC);	/* page 1 */
	assert_int_equal(shim_arena_alloc(&a, PG, 16 * PG, &addr), -ENOSPC);	/* page 13 */
	assert_int_equal(a.free_pages, 15);
	/* merging needs none */
	assert_int_equal(shim_arena_free(&a, BASE + 4 * PG, PG), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(shim_arena_alloc_fixed(&a, BASE + 4 * PG, PG), 0);
	/* an aligned fit at the head of an extent needs none */
	assert_int_equal(shim_arena_alloc(&a, PG, 8 * PG, &addr), 0);	/* page 5 */
	assert_int_equal(addr, BASE + 5 * PG);
	assert_int_equal(shim_arena_free(&a, BASE + 5 * PG, PG), 0);
	/* taking the head of an extent, or a whole one */
	assert_int_equal(shim_arena_alloc(&a, 2 * PG, 0, &addr), 0);
	assert_int_equal(addr, BASE);
	assert_int_equal(shim_arena_alloc(&a, 2 * PG, 0, &addr), 0);
	assert_int_equal(addr, BASE + 2 * PG);
	assert_int_equal(a.n, 1);	/* free: 5-15 */
	/* a free that touches nothing needs a new extent */
	assert_int_equal(shim_arena_free(&a, BASE + 3 * PG, PG), 0);	/* free: 3, 5-15 */
	assert_int_equal(a.n, 2);
	assert_int_equal(shim_arena_free(&a, BASE, PG), -ENOSPC);
	assert_int_equal(a.free_pages, 12);
	/* one that bridges two extents removes one */
	assert_int_equal(shim_arena_free(&a, BASE + 4 * PG, PG), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.ext[0].first, 3);
	assert_int_equal(a.ext[0].npages, 13);
	assert_int_equal(shim_arena_free(&a, BASE, PG), 0);
	assert_int_equal(a.n, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_args),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_alignment),
		cmocka_unit_test(test_exact_fit_and_fragmentation),
		cmocka_unit_test(test_partial_free),
		cmocka_unit_test(test_grow),
		cmocka_unit_test(test_table_full),
		cmocka_unit_test(test_random_ops),
		cmocka_unit_test(test_random_small_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
