/* SPDX-License-Identifier: MIT */
/*
 * reclaim/'s lists and page allocator against the mock owner: list order,
 * isolation oldest-first, putback, watermarks, allocation and freeing,
 * kswapd woken below low (by hand and as a thread), direct reclaim on the
 * caller's thread, failure when nothing can be freed, and capture (seed
 * 002) handing freed pages to the capturer rather than to a concurrent
 * allocator.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "reclaim/vmscan.h"
#include "tests/unit/reclaim_mock.h"

/* Checks the links of list lru against its count; returns its length. */
static uint64_t check_list(struct rl_pgdat *pgdat, enum lru_list lru)
{
	uint64_t n = 0;
	uint32_t prev = RL_NO_PAGE;

	for (uint32_t p = pgdat->lruvec.head[lru]; p != RL_NO_PAGE; p = pgdat->pages[p].next) {
		assert_int_equal(pgdat->pages[p].prev, prev);
		assert_true(PageLRU(&pgdat->pages[p]));
		assert_int_equal(pgdat->pages[p].lru, lru);
		prev = p;
		n++;
	}
	assert_int_equal(pgdat->lruvec.tail[lru], prev);
	assert_int_equal(pgdat->lruvec.nr[lru], n);
	return n;
}

static void test_policy_names(void **state)
{
	enum rl_policy p;
	enum rl_wb_mode m;

	(void)state;
	for (int i = 0; i < NR_RL_POLICIES; i++) {
		assert_int_equal(rl_policy_parse(rl_policy_name((enum rl_policy)i), &p), 0);
		assert_int_equal(p, i);
	}
	assert_string_equal(rl_policy_name(RL_POLICY_WRITEAROUND), "writearound");
	assert_null(rl_policy_name(NR_RL_POLICIES));
	assert_int_equal(rl_policy_parse("writepagez", &p), -EINVAL);
	assert_int_equal(rl_policy_parse(NULL, &p), -EINVAL);
	assert_int_equal(rl_wb_mode_parse("batch", &m), 0);
	assert_int_equal(m, RL_WB_BATCH);
	assert_string_equal(rl_wb_mode_name(RL_WB_SINGLE), "single");
	assert_int_equal(rl_wb_mode_parse("double", &m), -EINVAL);
}

static void test_config(void **state)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t wait = PTHREAD_COND_INITIALIZER;
	struct rl_reclaim_config cfg = { .nr_pages = 1024, .lock = &lock, .wait = &wait };
	struct rl_pgdat pgdat;

	(void)state;
	assert_int_equal(rl_pgdat_init(&pgdat, &cfg), 0);
	/* __setup_per_zone_wmarks' arithmetic on 1024 pages */
	assert_int_equal(pgdat.wmark_min, 8);
	assert_int_equal(pgdat.wmark_low, 12);
	assert_int_equal(pgdat.wmark_high, 16);
	assert_int_equal(pgdat.dirty_thresh, 204);
	assert_int_equal(pgdat.bg_thresh, 102);
	assert_int_equal(pgdat.nr_free, 1024);
	rl_pgdat_stop(&pgdat);
	rl_pgdat_destroy(&pgdat);

	cfg.nr_pages = 4096;
	assert_int_equal(rl_pgdat_init(&pgdat, &cfg), 0);
	assert_int_equal(pgdat.wmark_min, 16);
	assert_int_equal(pgdat.wmark_low, 28);
	assert_int_equal(pgdat.wmark_high, 40);
	rl_pgdat_destroy(&pgdat);

	cfg.nr_pages = 63;
	assert_int_equal(rl_pgdat_init(&pgdat, &cfg), -EINVAL);
	cfg.nr_pages = 256;
	cfg.wmark_min = 20;
	cfg.wmark_low = 10;
	assert_int_equal(rl_pgdat_init(&pgdat, &cfg), -EINVAL);
	cfg.wmark_min = 0;
	cfg.wmark_low = 0;
	cfg.lock = NULL;
	assert_int_equal(rl_pgdat_init(&pgdat, &cfg), -EINVAL);
	cfg.lock = &lock;
	cfg.policy = NR_RL_POLICIES;
	assert_int_equal(rl_pgdat_init(&pgdat, &cfg), -EINVAL);
}

static void test_list_ops(void **state)
{
	struct rl_mock *mk = rl_mock_new(64, RL_POLICY_WRITEPAGE, false);
	struct rl_pgdat *pgdat = &mk->pgdat;
	struct rl_mock_mapping *file = rl_mock_mapping(mk, 100, false);
	struct rl_mock_mapping *anon = rl_mock_mapping(mk, 100, true);
	uint32_t pfn[5], a;

	(void)state;
	pthread_mutex_lock(&mk->lock);
	for (int i = 0; i < 5; i++)
		assert_int_equal(rl_mock_fault(mk, file, (uint64_t)i, false, 0, &pfn[i]), 0);
	assert_int_equal(rl_mock_fault(mk, anon, 7, false, 0, &a), 0);
	assert_int_equal(check_list(pgdat, LRU_INACTIVE_FILE), 5);
	assert_int_equal(check_list(pgdat, LRU_INACTIVE_ANON), 1);
	assert_true(PageSwapBacked(&pgdat->pages[a]));
	assert_int_equal(pgdat->lruvec.head[LRU_INACTIVE_FILE], pfn[4]);	/* newest */
	assert_int_equal(pgdat->lruvec.tail[LRU_INACTIVE_FILE], pfn[0]);	/* oldest */

	del_page_from_lru_list(pgdat, &pgdat->pages[pfn[2]]);
	assert_false(PageLRU(&pgdat->pages[pfn[2]]));
	assert_int_equal(check_list(pgdat, LRU_INACTIVE_FILE), 4);
	add_page_to_lru_list_tail(pgdat, &pgdat->pages[pfn[2]], LRU_INACTIVE_FILE);
	assert_int_equal(pgdat->lruvec.tail[LRU_INACTIVE_FILE], pfn[2]);
	assert_int_equal(check_list(pgdat, LRU_INACTIVE_FILE), 5);

	/* page_lru follows the flags */
	pgdat->pages[pfn[3]].flags |= PG_active;
	assert_int_equal(page_lru(pgdat, &pgdat->pages[pfn[3]]), LRU_ACTIVE_FILE);
	pgdat->pages[pfn[3]].flags &= ~PG_active;
	pgdat->pages[a].flags |= PG_active;
	assert_int_equal(page_lru(pgdat, &pgdat->pages[a]), LRU_ACTIVE_ANON);
	pgdat->pages[a].flags &= ~PG_active;

	/* rotate_reclaimable_page: clean inactive pages go to the tail */
	rotate_reclaimable_page(pgdat, &pgdat->pages[pfn[4]]);
	assert_int_equal(pgdat->lruvec.tail[LRU_INACTIVE_FILE], pfn[4]);
	assert_int_equal(pgdat->vm.pgrotated, 1);
	rl_set_page_dirty(pgdat, pfn[3]);
	rotate_reclaimable_page(pgdat, &pgdat->pages[pfn[3]]);	/* dirty: stays */
	assert_int_equal(pgdat->vm.pgrotated, 1);
	assert_int_equal(pgdat->nr_dirty, 1);
	assert_int_equal(file->m.nrdirty, 1);
	assert_true(rl_clear_page_dirty_for_io(pgdat, pfn[3]));
	assert_false(rl_clear_page_dirty_for_io(pgdat, pfn[3]));
	assert_int_equal(pgdat->nr_dirty, 0);

	/* private lists are FIFO */
	struct rl_page_list l;

	rl_page_list_init(&l);
	assert_null(rl_page_list_pop(pgdat, &l));
	pthread_mutex_unlock(&mk->lock);
	rl_mock_free(mk);
}

static void test_flusher_lists(void **state)
{
	struct rl_mock *mk = rl_mock_new(64, RL_POLICY_FLUSHER, false);
	struct rl_pgdat *pgdat = &mk->pgdat;
	struct rl_mock_mapping *file = rl_mock_mapping(mk, 100, false);
	uint32_t pfn[4];

	(void)state;
	pthread_mutex_lock(&mk->lock);
	for (int i = 0; i < 4; i++)
		assert_int_equal(rl_mock_fault(mk, file, (uint64_t)i, false, 0, &pfn[i]), 0);
	/* dirtied in the order 2, 0, 3: inactive_dirty's tail is the oldest */
	rl_mock_dirty(mk, file, 2, 1);
	rl_mock_dirty(mk, file, 0, 1);
	rl_mock_dirty(mk, file, 3, 1);
	assert_int_equal(check_list(pgdat, LRU_INACTIVE_DIRTY), 3);
	assert_int_equal(check_list(pgdat, LRU_INACTIVE_FILE), 1);
	assert_int_equal(pgdat->lruvec.tail[LRU_INACTIVE_DIRTY], pfn[2]);
	assert_int_equal(pgdat->lruvec.head[LRU_INACTIVE_DIRTY], pfn[3]);
	/* cleaned: to the tail of the clean list, next for reclaim */
	assert_true(rl_clear_page_dirty_for_io(pgdat, pfn[0]));
	assert_int_equal(pgdat->pages[pfn[0]].lru, LRU_INACTIVE_FILE);
	assert_int_equal(pgdat->lruvec.tail[LRU_INACTIVE_FILE], pfn[0]);
	assert_int_equal(check_list(pgdat, LRU_INACTIVE_DIRTY), 2);
	/* writeback that fails redirties it */
	assert_true(rl_clear_page_dirty_for_io(pgdat, pfn[2]));
	rl_set_page_writeback(pgdat, pfn[2]);
	assert_int_equal(pgdat->nr_writeback, 1);
	rl_end_page_writeback(pgdat, pfn[2], -EIO);
	assert_int_equal(pgdat->nr_writeback, 0);
	assert_true(PageDirty(&pgdat->pages[pfn[2]]));
	assert_int_equal(pgdat->pages[pfn[2]].lru, LRU_INACTIVE_DIRTY);
	pthread_mutex_unlock(&mk->lock);
	rl_mock_free(mk);
}

static void test_isolate_order(void **state)
{
	struct rl_mock *mk = rl_mock_new(64, RL_POLICY_WRITEPAGE, false);
	struct rl_pgdat *pgdat = &mk->pgdat;
	struct rl_mock_mapping *file = rl_mock_mapping(mk, 100, false);
	struct rl_page_list l;
	struct rl_page *page;
	uint32_t pfn[10];
	uint64_t scanned;
	uint32_t taken;

	(void)state;
	pthread_mutex_lock(&mk->lock);
	for (int i = 0; i < 10; i++)
		assert_int_equal(rl_mock_fault(mk, file, (uint64_t)i, false, 0, &pfn[i]), 0);
	file->locked[1] = true;		/* its owner holds it */
	rl_page_list_init(&l);
	taken = isolate_lru_pages(pgdat, 5, LRU_INACTIVE_FILE, &l, &scanned);
	assert_int_equal(taken, 4);
	assert_int_equal(scanned, 5);
	assert_int_equal(l.nr, 4);
	assert_int_equal(pgdat->nr_isolated, 4);
	assert_int_equal(check_list(pgdat, LRU_INACTIVE_FILE), 6);
	/* the locked page was rotated to the head, the rest stayed */
	assert_int_equal(pgdat->lruvec.head[LRU_INACTIVE_FILE], pfn[1]);
	assert_int_equal(pgdat->lruvec.tail[LRU_INACTIVE_FILE], pfn[5]);
	const int order[] = { 0, 2, 3, 4 };
	for (int i = 0; i < 4; i++) {
		page = rl_page_list_pop(pgdat, &l);
		assert_non_null(page);
		assert_int_equal(page_to_pfn(pgdat, page), pfn[order[i]]);
		assert_true(page->flags & PG_isolated);
		assert_false(PageLRU(page));
		putback_lru_page(pgdat, page);
		assert_false(page->flags & PG_isolated);
	}
	assert_null(rl_page_list_pop(pgdat, &l));
	assert_int_equal(pgdat->nr_isolated, 0);
	assert_int_equal(check_list(pgdat, LRU_INACTIVE_FILE), 10);
	assert_int_equal(pgdat->lruvec.head[LRU_INACTIVE_FILE], pfn[4]);
	file->locked[1] = false;
	pthread_mutex_unlock(&mk->lock);
	rl_mock_free(mk);
}

static void test_alloc_free(void **state)
{
	struct rl_mock *mk = rl_mock_new(64, RL_POLICY_WRITEPAGE, false);
	struct rl_pgdat *pgdat = &mk->pgdat;
	struct rl_mock_mapping *file = rl_mock_mapping(mk, 100, false);
	uint32_t pfns[64];
	bool seen[64] = { false };

	(void)state;
	pthread_mutex_lock(&mk->lock);
	/* min 8, low 10, high 12 for 64 pages */
	assert_int_equal(pgdat->wmark_min, 8);
	assert_int_equal(pgdat->wmark_low, 10);
	assert_int_equal(pgdat->wmark_high, 12);
	for (int i = 0; i < 56; i++) {
		assert_int_equal(rl_alloc_page(pgdat, &file->m, (uint64_t)i, &pfns[i]), 0);
		assert_false(seen[pfns[i]]);
		seen[pfns[i]] = true;
		assert_ptr_equal(pgdat->pages[pfns[i]].mapping, &file->m);
		assert_int_equal(pgdat->pages[pfns[i]].index, (uint64_t)i);
	}
	assert_int_equal(pgdat->nr_free, 8);
	assert_int_equal(pgdat->vm.allocstall, 0);
	assert_true(pgdat->vm.kswapd_low_wmark_hit > 0);	/* crossed low on the way */
	assert_true(rl_below_wmark(pgdat, pgdat->wmark_low));
	assert_false(rl_below_wmark(pgdat, pgdat->wmark_min));
	assert_int_equal(pgdat->vm.pgalloc, 56);
	assert_int_equal(pgdat->peak_used, 56);
	for (int i = 0; i < 56; i++)
		rl_free_page(pgdat, pfns[i]);
	assert_int_equal(pgdat->nr_free, 64);
	assert_int_equal(pgdat->vm.pgfree, 56);
	assert_null(pgdat->pages[pfns[0]].mapping);
	assert_int_equal(rl_alloc_pages(pgdat, 0, pfns), -EINVAL);
	assert_int_equal(rl_alloc_pages(pgdat, 40, pfns), -EINVAL);	/* more than half the pool */
	assert_int_equal(rl_alloc_pages(pgdat, 20, pfns), 0);
	assert_int_equal(pgdat->nr_free, 44);
	pthread_mutex_unlock(&mk->lock);
	rl_mock_free(mk);
}

static void test_kswapd_by_hand(void **state)
{
	struct rl_mock *mk = rl_mock_new(256, RL_POLICY_WRITEPAGE, false);
	struct rl_pgdat *pgdat = &mk->pgdat;
	struct rl_mock_mapping *file = rl_mock_mapping(mk, 1000, false);
	uint64_t i = 0, got;

	(void)state;
	pthread_mutex_lock(&mk->lock);
	while (!rl_below_wmark(pgdat, pgdat->wmark_low))
		assert_int_equal(rl_mock_fault(mk, file, i++, false, 0, NULL), 0);
	assert_int_equal(pgdat->vm.kswapd_low_wmark_hit, 1);	/* the allocation that crossed it */
	assert_int_equal(pgdat->vm.allocstall, 0);
	got = balance_pgdat(pgdat);
	assert_true(got > 0);
	assert_false(rl_below_wmark(pgdat, pgdat->wmark_high));
	assert_int_equal(pgdat->vm.kswapd_high_wmark_hit, 1);
	assert_int_equal(pgdat->vm.pgsteal_kswapd, got);
	assert_true(pgdat->vm.pgscan_kswapd >= got);
	assert_int_equal(pgdat->vm.pgsteal_direct, 0);
	assert_int_equal(rl_mock_resident(mk), i - got);
	/* balanced: another run has nothing to do */
	assert_int_equal(balance_pgdat(pgdat), 0);
	pthread_mutex_unlock(&mk->lock);
	rl_mock_free(mk);
}

static void test_kswapd_thread(void **state)
{
	struct rl_mock *mk = rl_mock_new(256, RL_POLICY_WRITEPAGE, true);
	struct rl_pgdat *pgdat = &mk->pgdat;
	struct rl_mock_mapping *file = rl_mock_mapping(mk, 1000, false);
	uint64_t i = 0;

	(void)state;
	pthread_mutex_lock(&mk->lock);
	while (!rl_below_wmark(pgdat, pgdat->wmark_low))
		assert_int_equal(rl_mock_fault(mk, file, i++, false, 0, NULL), 0);
	/* Wait for the thread's run to complete (bounded: a hang fails). */
	for (int tries = 0; tries < 500 && (pgdat->vm.kswapd_high_wmark_hit == 0 ||
					     rl_below_wmark(pgdat, pgdat->wmark_high)); tries++) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&mk->wait, &mk->lock, &ts);
	}
	assert_true(pgdat->vm.kswapd_wake >= 1);
	assert_false(rl_below_wmark(pgdat, pgdat->wmark_high));
	assert_true(pgdat->vm.pgsteal_kswapd > 0);
	assert_int_equal(pgdat->vm.allocstall, 0);
	pthread_mutex_unlock(&mk->lock);
	rl_mock_free(mk);
}

struct thread_log {
	pthread_t self;
	unsigned removals, foreign;
};

static void note_thread(struct rl_mock *mk, struct rl_page *page, void *arg)
{
	struct thread_log *t = arg;

	(void)mk;
	(void)page;
	t->removals++;
	if (!pthread_equal(t->self, pthread_self()))
		t->foreign++;
}

static void test_direct_reclaim(void **state)
{
	struct rl_mock *mk = rl_mock_new(128, RL_POLICY_WRITEPAGE, false);
	struct rl_pgdat *pgdat = &mk->pgdat;
	struct rl_mock_mapping *file = rl_mock_mapping(mk, 1000, false);
	struct thread_log t = { .self = pthread_self() };

	(void)state;
	mk->on_remove_mapping = note_thread;
	mk->hook_arg = &t;
	pthread_mutex_lock(&mk->lock);
	for (uint64_t i = 0; i < 400; i++)
		assert_int_equal(rl_mock_fault(mk, file, i, false, 0, NULL), 0);
	assert_true(pgdat->vm.allocstall > 0);
	assert_true(pgdat->vm.pgsteal_direct >= 400 - 128);
	assert_int_equal(pgdat->vm.pgsteal_kswapd, 0);
	assert_int_equal(t.removals, pgdat->vm.pgsteal_direct);
	assert_int_equal(t.foreign, 0);		/* all on the faulting thread */
	assert_int_equal(rl_mock_resident(mk) + pgdat->nr_free, 128);
	assert_int_equal(pgdat->lat.direct_stall.count, pgdat->vm.allocstall);
	assert_int_equal(pgdat->nr_isolated, 0);
	pthread_mutex_unlock(&mk->lock);
	rl_mock_free(mk);
}

static void test_enomem_all_pinned(void **state)
{
	struct rl_mock *mk = rl_mock_new(64, RL_POLICY_WRITEPAGE, false);
	struct rl_pgdat *pgdat = &mk->pgdat;
	struct rl_mock_mapping *file = rl_mock_mapping(mk, 1000, false);
	uint64_t i;
	int ret = 0;

	(void)state;
	pthread_mutex_lock(&mk->lock);
	for (i = 0; i < 56; i++) {
		assert_int_equal(rl_mock_fault(mk, file, i, false, 0, NULL), 0);
		file->locked[i] = true;		/* every page held by its owner */
	}
	for (; i < 1000 && ret == 0; i++) {
		ret = rl_mock_fault(mk, file, i, false, 0, NULL);
		file->locked[i] = true;
	}
	assert_int_equal(ret, -ENOMEM);
	/* the reserve below min went before giving up */
	assert_int_equal(i - 1, 64);
	assert_int_equal(pgdat->nr_free, 0);
	assert_true(pgdat->vm.allocstall >= 16);
	assert_int_equal(pgdat->vm.pgsteal_direct, 0);
	pthread_mutex_unlock(&mk->lock);
	rl_mock_free(mk);
}

static void test_enospc(void **state)
{
	struct rl_mock *mk = rl_mock_new(64, RL_POLICY_WRITEPAGE, false);
	struct rl_pgdat *pgdat = &mk->pgdat;
	struct rl_mock_mapping *file = rl_mock_mapping(mk, 1000, false);
	uint64_t i;
	int ret = 0;

	(void)state;
	mk->fail_errno = ENOSPC;
	mk->fail_count = -1;
	pthread_mutex_lock(&mk->lock);
	for (i = 0; i < 1000 && ret == 0; i++)
		ret = rl_mock_fault(mk, file, i, true, (uint8_t)i, NULL);
	assert_int_equal(ret, -ENOSPC);
	assert_int_equal(i - 1, 64);
	assert_true(pgdat->vm.wb_errors > 0);
	assert_true(mk->nr_writepages > 0);
	assert_int_equal(pgdat->nr_dirty, 64);	/* redirtied, nothing lost */
	assert_int_equal(pgdat->nr_writeback, 0);
	pthread_mutex_unlock(&mk->lock);
	rl_mock_free(mk);
}

/* A concurrent allocator that runs whenever reclaim lets go of the lock
 * (the mock's remove_mapping) and takes free pages above min. */
struct stealer {
	unsigned stolen, nfreed;
	uint32_t stolen_pfn[16];
	uint32_t freed[256];
};

static void steal(struct rl_mock *mk, struct rl_page *page, void *arg)
{
	struct stealer *s = arg;

	if (s->nfreed < 256)
		s->freed[s->nfreed++] = page_to_pfn(&mk->pgdat, page);
	while (mk->pgdat.nr_free > mk->pgdat.wmark_min && s->stolen < 16)
		assert_int_equal(rl_alloc_pages(&mk->pgdat, 1, &s->stolen_pfn[s->stolen++]), 0);
}

static bool freed_by_reclaim(const struct stealer *s, uint32_t pfn)
{
	for (unsigned i = 0; i < s->nfreed; i++)
		if (s->freed[i] == pfn)
			return true;
	return false;
}

static void run_capture(enum rl_policy policy, struct stealer *s, uint32_t got[4],
			uint64_t *success, uint64_t *fail)
{
	struct rl_mock *mk = rl_mock_new(64, policy, false);
	struct rl_pgdat *pgdat = &mk->pgdat;
	struct rl_mock_mapping *file = rl_mock_mapping(mk, 1000, false);
	uint64_t i = 0;

	pthread_mutex_lock(&mk->lock);
	while (pgdat->nr_free > pgdat->wmark_min)
		assert_int_equal(rl_mock_fault(mk, file, i++, false, 0, NULL), 0);
	mk->on_remove_mapping = steal;
	mk->hook_arg = s;
	assert_int_equal(rl_alloc_pages(pgdat, 4, got), 0);
	for (int k = 0; k < 4; k++)
		assert_false(pgdat->pages[got[k]].flags & PG_capture);
	*success = pgdat->vm.capture_success;
	*fail = pgdat->vm.capture_fail;
	mk->on_remove_mapping = NULL;
	pthread_mutex_unlock(&mk->lock);
	rl_mock_free(mk);
}

static void test_capture(void **state)
{
	struct stealer plain = { 0 }, cap = { 0 };
	uint32_t got[4];
	uint64_t success, fail;

	(void)state;
	/* Without capture, what direct reclaim frees the other allocator
	 * takes: it gets pages and the reclaimer has to go again. */
	run_capture(RL_POLICY_WRITEPAGE, &plain, got, &success, &fail);
	assert_true(plain.stolen > 0);
	assert_true(freed_by_reclaim(&plain, plain.stolen_pfn[0]));
	assert_int_equal(success + fail, 0);

	/* With capture, the first pages its reclaim frees are the
	 * capturer's: the other allocator gets only what reclaim frees
	 * after that (reclaim still finishes its batch), never those. */
	run_capture(RL_POLICY_CAPTURE, &cap, got, &success, &fail);
	assert_int_equal(success, 1);
	assert_int_equal(fail, 0);
	assert_true(cap.nfreed >= 4);
	for (int k = 0; k < 4; k++) {
		assert_int_equal(got[k], cap.freed[k]);
		for (unsigned j = 0; j < cap.stolen; j++)
			assert_int_not_equal(cap.stolen_pfn[j], got[k]);
	}
	/* the first freed pages were not on the free list for the thief */
	for (unsigned j = 0; j < cap.stolen; j++)
		for (int k = 0; k < 4; k++)
			assert_int_not_equal(cap.stolen_pfn[j], cap.freed[k]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_names),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_list_ops),
		cmocka_unit_test(test_flusher_lists),
		cmocka_unit_test(test_isolate_order),
		cmocka_unit_test(test_alloc_free),
		cmocka_unit_test(test_kswapd_by_hand),
		cmocka_unit_test(test_kswapd_thread),
		cmocka_unit_test(test_direct_reclaim),
		cmocka_unit_test(test_enomem_all_pinned),
		cmocka_unit_test(test_enospc),
		cmocka_unit_test(test_capture),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
