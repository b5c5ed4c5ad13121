/* SPDX-License-Identifier: MIT */
/*
 * Region map and sparse page tables against simple models: a plain list of
 * ranges for the map, a flat flags array for the page table.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pager/region.h"

#define NREG 300
#define SPACE_PAGES 20000ull	/* address space the random regions live in */

static uint64_t rnd(uint64_t n)
{
	return ((uint64_t)random() << 31 ^ (uint64_t)random()) % n;
}

/* model: every region ever inserted, live or not */
struct mreg {
	struct rl_region r;
	bool live;
};

static bool overlaps(const struct rl_region *a, const struct rl_region *b)
{
	return a->start < b->start + (b->npages << 12) && b->start < a->start + (a->npages << 12);
}

static struct rl_region *model_find(struct mreg *m, size_t n, uint64_t addr)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].live && addr >= m[i].r.start && addr < m[i].r.start + (m[i].r.npages << 12))
			return &m[i].r;
	return NULL;
}

static void check_sorted(const struct rl_region_map *m)
{
	for (size_t i = 1; i < m->n; i++)
		assert_true(m->v[i - 1]->start + (m->v[i - 1]->npages << 12) <= m->v[i]->start);
}

static void test_map_random(void **state)
{
	struct mreg *model = calloc(NREG, sizeof(*model));
	struct rl_region_map map;
	size_t live = 0, rejected = 0;

	(void)state;
	srandom(1);
	rl_region_map_init(&map);
	for (size_t i = 0; i < NREG; i++) {
		struct rl_region *r = &model[i].r;
		bool clash = false;
		int ret;

		r->id = (uint32_t)i + 1;
		r->start = (1ull << 30) + (rnd(SPACE_PAGES) << 12);
		r->npages = 1 + rnd(200);
		for (size_t j = 0; j < i; j++)
			clash |= model[j].live && overlaps(&model[j].r, r);
		ret = rl_region_map_insert(&map, r);
		assert_int_equal(ret, clash ? -EEXIST : 0);
		model[i].live = !clash;
		live += !clash;
		rejected += clash;

		/* now and then remove a random live one */
		if (rnd(4) == 0) {
			size_t k = rnd(i + 1);

			if (model[k].live) {
				assert_int_equal(rl_region_map_remove(&map, &model[k].r), 0);
				assert_int_equal(rl_region_map_remove(&map, &model[k].r), -ENOENT);
				model[k].live = false;
				live--;
			}
		}
		assert_int_equal(map.n, live);
		check_sorted(&map);
		for (int q = 0; q < 50; q++) {
			uint64_t addr = (1ull << 30) - 4096 * 10 + rnd((SPACE_PAGES + 220) << 12);

			assert_ptr_equal(rl_region_map_find(&map, addr), model_find(model, i + 1, addr));
		}
	}
	/* both kinds of outcome happened */
	assert_true(rejected > 10);
	assert_true(live > 10);
	for (size_t i = 0; i < NREG; i++)
		assert_ptr_equal(rl_region_map_find_id(&map, model[i].r.id),
				 model[i].live ? &model[i].r : NULL);
	/* edges: first and last byte, one past the end */
	for (size_t i = 0; i < NREG; i++) {
		struct rl_region *r = &model[i].r;

		if (!model[i].live)
			continue;
		assert_ptr_equal(rl_region_map_find(&map, r->start), r);
		assert_ptr_equal(rl_region_map_find(&map, r->start + (r->npages << 12) - 1), r);
		assert_ptr_equal(rl_region_map_find(&map, r->start + (r->npages << 12)),
				 model_find(model, NREG, r->start + (r->npages << 12)));
	}
	rl_region_map_destroy(&map);
	free(model);
}

static void test_map_adjacent(void **state)
{
	struct rl_region a = { .id = 1, .start = 0x10000, .npages = 4 };
	struct rl_region b = { .id = 2, .start = 0x14000, .npages = 4 };
	struct rl_region c = { .id = 3, .start = 0x13000, .npages = 1 };
	struct rl_region d = { .id = 4, .start = 0x0f000, .npages = 2 };
	struct rl_region_map map;

	(void)state;
	rl_region_map_init(&map);
	assert_int_equal(rl_region_map_insert(&map, &b), 0);
	assert_int_equal(rl_region_map_insert(&map, &a), 0);	/* touching, not overlapping */
	assert_int_equal(rl_region_map_insert(&map, &c), -EEXIST);
	assert_int_equal(rl_region_map_insert(&map, &d), -EEXIST);
	assert_ptr_equal(rl_region_map_find(&map, 0x13fff), &a);
	assert_ptr_equal(rl_region_map_find(&map, 0x14000), &b);
	assert_null(rl_region_map_find(&map, 0xffff));
	assert_null(rl_region_map_find(&map, 0x18000));
	assert_int_equal(rl_region_map_remove(&map, &c), -ENOENT);
	rl_region_map_destroy(&map);
}

#define PT_PAGES 100000ull

struct visit {
	uint64_t *idx;
	size_t n, stop_after;
};

static int visit_fn(struct rl_region *r, uint64_t index, struct rl_pte *pte, void *arg)
{
	struct visit *v = arg;

	assert_ptr_equal(rl_pte_lookup(r, index, false), pte);
	assert_true(pte->flags);
	v->idx[v->n++] = index;
	return v->n == v->stop_after ? 42 : 0;
}

static void test_ptes_random(void **state)
{
	uint16_t *model = calloc(PT_PAGES, sizeof(*model));
	uint64_t *expect = malloc(PT_PAGES * sizeof(*expect));
	struct visit v = { .idx = malloc(PT_PAGES * sizeof(uint64_t)) };
	struct rl_region r = { 0 };
	size_t used_chunks = 0;

	(void)state;
	srandom(2);
	assert_int_equal(rl_region_init_ptes(&r, PT_PAGES), 0);
	assert_int_equal(r.nchunks, (PT_PAGES + RL_PTE_CHUNK - 1) / RL_PTE_CHUNK);
	/* untouched: nothing allocated, nothing visited */
	assert_null(rl_pte_lookup(&r, 5, false));
	assert_null(rl_pte_lookup(&r, PT_PAGES, true));
	v.n = 0;
	assert_int_equal(rl_pte_for_each(&r, 0, PT_PAGES, visit_fn, &v), 0);
	assert_int_equal(v.n, 0);

	/* clustered writes: a few chunks only, as a heap is used */
	for (int i = 0; i < 20000; i++) {
		uint64_t base = rnd(12) * (PT_PAGES / 12);
		uint64_t idx = base + rnd(3000);
		struct rl_pte *pte;

		if (idx >= PT_PAGES)
			continue;
		pte = rl_pte_lookup(&r, idx, true);
		assert_non_null(pte);
		if (!model[idx])
			assert_int_equal(pte->frame, RL_NO_FRAME);
		model[idx] = rnd(4) ? (uint16_t)(1 + rnd(127)) : 0;
		pte->flags = model[idx];
	}
	for (uint64_t c = 0; c < r.nchunks; c++)
		used_chunks += r.chunks[c] != NULL;
	assert_true(used_chunks < r.nchunks / 2);
	for (uint64_t i = 0; i < PT_PAGES; i++) {
		struct rl_pte *pte = rl_pte_lookup(&r, i, false);

		assert_int_equal(pte ? pte->flags : 0, model[i]);
		if (!r.chunks[i / RL_PTE_CHUNK])
			assert_null(pte);
	}
	/* for_each: index order, only set entries, random sub-ranges */
	for (int q = 0; q < 200; q++) {
		uint64_t first = rnd(PT_PAGES), n = rnd(PT_PAGES - first) + 1;
		size_t ne = 0;

		for (uint64_t i = first; i < first + n; i++)
			if (model[i])
				expect[ne++] = i;
		v.n = 0;
		v.stop_after = 0;
		assert_int_equal(rl_pte_for_each(&r, first, n, visit_fn, &v), 0);
		assert_int_equal(v.n, ne);
		assert_memory_equal(v.idx, expect, ne * sizeof(*expect));
		/* early stop after k visits returns fn's value */
		if (ne > 1) {
			size_t k = 1 + rnd(ne - 1);

			v.n = 0;
			v.stop_after = k;
			assert_int_equal(rl_pte_for_each(&r, first, n, visit_fn, &v), 42);
			assert_int_equal(v.n, k);
			assert_memory_equal(v.idx, expect, k * sizeof(*expect));
		}
	}
	rl_region_free_ptes(&r);
	assert_null(r.chunks);
	free(model);
	free(expect);
	free(v.idx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_random),
		cmocka_unit_test(test_map_adjacent),
		cmocka_unit_test(test_ptes_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
