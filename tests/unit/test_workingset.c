/* SPDX-License-Identifier: MIT */
/*
 * Workingset refault detection against the mock owner: the shadow entry's
 * round trip, activation within the refault distance and not beyond, and
 * the end-to-end effect: a hot set touched between chunks of a streaming
 * scan stays resident under reclaim, where a plain FIFO of the same size
 * evicts it every round.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "reclaim/vmscan.h"
#include "reclaim/workingset.h"
#include "tests/unit/reclaim_mock.h"

static void test_shadow_round_trip(void **state)
{
	struct rl_mock *mk = rl_mock_new(64, RL_POLICY_WRITEPAGE, false);
	struct rl_pgdat *pgdat = &mk->pgdat;
	struct rl_mock_mapping *file = rl_mock_mapping(mk, 10, false);
	struct rl_mock_mapping *anon = rl_mock_mapping(mk, 10, true);
	uint32_t f, a, s1, s2;

	(void)state;
	pthread_mutex_lock(&mk->lock);
	assert_int_equal(rl_mock_fault(mk, file, 0, false, 0, &f), 0);
	assert_int_equal(rl_mock_fault(mk, anon, 0, false, 0, &a), 0);
	workingset_age_nonresident(pgdat, 1000);
	s1 = workingset_eviction(pgdat, &pgdat->pages[f]);
	assert_int_not_equal(s1, 0);
	assert_int_equal(workingset_shadow_age(s1), 1000);
	assert_false(workingset_shadow_workingset(s1));
	assert_int_equal(pgdat->lruvec.nonresident_age, 1001);
	pgdat->pages[a].flags |= PG_workingset;
	s2 = workingset_eviction(pgdat, &pgdat->pages[a]);
	assert_int_equal(workingset_shadow_age(s2), 1001);
	assert_true(workingset_shadow_workingset(s2));
	assert_int_not_equal(s1 & 4, s2 & 4);	/* the type bit differs */
	/* shadow 0: a first fault, not a refault */
	assert_false(workingset_refault(pgdat, &pgdat->pages[f], 0));
	assert_int_equal(pgdat->vm.workingset_refault, 0);
	pthread_mutex_unlock(&mk->lock);
	rl_mock_free(mk);
}

static void test_refault_distance(void **state)
{
	struct rl_mock *mk = rl_mock_new(256, RL_POLICY_WRITEPAGE, false);
	struct rl_pgdat *pgdat = &mk->pgdat;
	struct rl_mock_mapping *file = rl_mock_mapping(mk, 100, false);
	struct rl_mock_mapping *other = rl_mock_mapping(mk, 100, false);
	struct rl_page *page;
	uint32_t pfn, shadow;

	(void)state;
	pthread_mutex_lock(&mk->lock);
	/* 20 active file pages: the workingset a refault competes with */
	for (uint64_t i = 0; i < 20; i++) {
		assert_int_equal(rl_mock_fault(mk, other, i, false, 0, NULL), 0);
		assert_int_equal(rl_mock_fault(mk, other, i, false, 0, NULL), 0);
		assert_int_equal(rl_mock_fault(mk, other, i, false, 0, NULL), 0);
	}
	assert_int_equal(pgdat->lruvec.nr[LRU_ACTIVE_FILE], 20);

	assert_int_equal(rl_mock_fault(mk, file, 0, false, 0, &pfn), 0);
	page = &pgdat->pages[pfn];
	page->flags |= PG_workingset;
	shadow = workingset_eviction(pgdat, page);

	/* distance 20 == the active list: activated, and a restore */
	workingset_age_nonresident(pgdat, 19);
	page->flags &= ~(PG_active | PG_workingset);
	assert_true(workingset_refault(pgdat, page, shadow));
	assert_true(PageActive(page));
	assert_true(PageWorkingset(page));
	assert_int_equal(pgdat->vm.workingset_refault, 1);
	assert_int_equal(pgdat->vm.workingset_activate, 1);
	assert_int_equal(pgdat->vm.workingset_restore, 1);

	/* distance 21 (the activation aged the clock by one more): not */
	page->flags &= ~(PG_active | PG_workingset);
	assert_false(workingset_refault(pgdat, page, shadow));
	assert_false(PageActive(page));
	assert_int_equal(pgdat->vm.workingset_refault, 2);
	assert_int_equal(pgdat->vm.workingset_activate, 1);
	pthread_mutex_unlock(&mk->lock);
	rl_mock_free(mk);
}

/* Through the owner: evict a page by reclaim, fault it back. */
static void test_refault_activates_via_fault(void **state)
{
	struct rl_mock *mk = rl_mock_new(256, RL_POLICY_WRITEPAGE, false);
	struct rl_pgdat *pgdat = &mk->pgdat;
	struct rl_mock_mapping *hot = rl_mock_mapping(mk, 100, false);
	struct rl_mock_mapping *file = rl_mock_mapping(mk, 2000, false);
	uint64_t distance, size;
	uint32_t pfn;
	uint64_t i = 0;

	(void)state;
	pthread_mutex_lock(&mk->lock);
	/* an active set of 100 (three touches each), then file:0, then new
	 * pages until reclaim has pushed file:0 out */
	for (uint64_t k = 0; k < 100; k++)
		for (int t = 0; t < 3; t++)
			assert_int_equal(rl_mock_fault(mk, hot, k, false, 0, NULL), 0);
	assert_int_equal(pgdat->lruvec.nr[LRU_ACTIVE_FILE], 100);
	assert_int_equal(rl_mock_fault(mk, file, i++, false, 0, NULL), 0);
	while (file->pfn[0] != RL_NO_PAGE)
		assert_int_equal(rl_mock_fault(mk, file, i++, false, 0, NULL), 0);
	assert_int_not_equal(file->shadow[0], 0);
	distance = pgdat->lruvec.nonresident_age - workingset_shadow_age(file->shadow[0]);
	size = pgdat->lruvec.nr[LRU_ACTIVE_FILE] + pgdat->lruvec.nr[LRU_ACTIVE_ANON] +
	       pgdat->lruvec.nr[LRU_INACTIVE_ANON];
	assert_true(distance <= size);
	assert_int_equal(rl_mock_fault(mk, file, 0, false, 0, &pfn), 0);
	assert_true(PageActive(&pgdat->pages[pfn]));
	assert_int_equal(pgdat->pages[pfn].lru, LRU_ACTIVE_FILE);
	assert_int_equal(pgdat->vm.workingset_refault, 1);
	assert_int_equal(pgdat->vm.workingset_activate, 1);
	assert_int_equal(file->shadow[0], 0);	/* the owner consumed it */

	/* A page evicted long ago (more evictions since than the active
	 * list holds) comes back inactive. */
	while (file->pfn[1] != RL_NO_PAGE)
		assert_int_equal(rl_mock_fault(mk, file, i++, false, 0, NULL), 0);
	for (uint64_t k = 0; k < 400; k++)
		assert_int_equal(rl_mock_fault(mk, file, i++, false, 0, NULL), 0);
	assert_true(pgdat->lruvec.nonresident_age - workingset_shadow_age(file->shadow[1]) >
		    pgdat->lruvec.nr[LRU_ACTIVE_FILE] + pgdat->lruvec.nr[LRU_ACTIVE_ANON] +
		    pgdat->lruvec.nr[LRU_INACTIVE_ANON]);
	assert_int_equal(rl_mock_fault(mk, file, 1, false, 0, &pfn), 0);
	assert_false(PageActive(&pgdat->pages[pfn]));
	assert_int_equal(pgdat->vm.workingset_refault, 2);
	assert_int_equal(pgdat->vm.workingset_activate, 1);
	pthread_mutex_unlock(&mk->lock);
	rl_mock_free(mk);
}

/* A FIFO of nr frames: how many touches of pages in [0, hot) miss. */
struct fifo {
	uint32_t nr, used, head;
	uint64_t *slot;
};

static bool fifo_touch(struct fifo *f, uint64_t page)
{
	for (uint32_t i = 0; i < f->used; i++)
		if (f->slot[i] == page)
			return true;
	if (f->used < f->nr) {
		f->slot[f->used++] = page;
	} else {
		f->slot[f->head] = page;
		f->head = (f->head + 1) % f->nr;
	}
	return false;
}

enum { POOL = 256, HOT = 64, STREAM = 1024, CHUNK = 64, ROUNDS = 4 };

/* Each round: the stream in chunks of CHUNK new pages, the whole hot set
 * touched after each chunk. Returns hot misses after the first round. */
static uint64_t hot_vs_stream(bool swapbacked, uint64_t *fifo_misses)
{
	struct rl_mock *mk = rl_mock_new(POOL, RL_POLICY_WRITEPAGE, false);
	struct rl_mock_mapping *hot = rl_mock_mapping(mk, HOT, swapbacked);
	struct rl_mock_mapping *stream = rl_mock_mapping(mk, (uint64_t)STREAM * ROUNDS, swapbacked);
	struct fifo f = { .nr = POOL, .slot = calloc(POOL, sizeof(uint64_t)) };
	uint64_t misses = 0, fmisses = 0, s = 0;

	assert_non_null(f.slot);
	pthread_mutex_lock(&mk->lock);
	for (int r = 0; r < ROUNDS; r++) {
		for (int c = 0; c < STREAM / CHUNK; c++) {
			for (int k = 0; k < CHUNK; k++, s++) {
				assert_int_equal(rl_mock_fault(mk, stream, s, false, 0, NULL), 0);
				fifo_touch(&f, 1000000 + s);
			}
			for (uint64_t h = 0; h < HOT; h++) {
				bool resident = hot->pfn[h] != RL_NO_PAGE;

				assert_int_equal(rl_mock_fault(mk, hot, h, false, 0, NULL), 0);
				if (r > 0 && !resident)
					misses++;
				if (!fifo_touch(&f, h) && r > 0)
					fmisses++;
			}
		}
	}
	assert_int_equal(mk->pgdat.nr_isolated, 0);
	pthread_mutex_unlock(&mk->lock);
	free(f.slot);
	rl_mock_free(mk);
	*fifo_misses = fmisses;
	return misses;
}

static void test_hot_set_survives_stream_file(void **state)
{
	uint64_t fifo, lru;

	(void)state;
	lru = hot_vs_stream(false, &fifo);
	/* FIFO: 256 frames, 64 stream pages between hot touches, a hot page
	 * survives 4 chunks then goes: every hot page misses 4 times a round */
	assert_int_equal(fifo, (uint64_t)HOT * (STREAM / CHUNK / 4) * (ROUNDS - 1));
	assert_int_equal(lru, 0);
}

static void test_hot_set_survives_stream_anon(void **state)
{
	uint64_t fifo, lru;

	(void)state;
	lru = hot_vs_stream(true, &fifo);
	/*
	 * Anonymous pages are activated by their first reference at the
	 * inactive tail (page_check_references), so streamed anon pages
	 * crowd the active list, as in the kernel: the hot set is sometimes
	 * deactivated and evicted, then brought back active by its refault
	 * distance. Less than half of FIFO's misses, not none.
	 */
	assert_int_equal(fifo, (uint64_t)HOT * (STREAM / CHUNK / 4) * (ROUNDS - 1));
	assert_true(lru * 2 < fifo);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shadow_round_trip),
		cmocka_unit_test(test_refault_distance),
		cmocka_unit_test(test_refault_activates_via_fault),
		cmocka_unit_test(test_hot_set_survives_stream_file),
		cmocka_unit_test(test_hot_set_survives_stream_anon),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
