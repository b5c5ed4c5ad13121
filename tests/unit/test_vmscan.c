/* SPDX-License-Identifier: MIT */
/*
 * Aging and shrink_page_list against the mock owner: mark_page_accessed's
 * two steps, shrink_active_list's deactivation, page_check_references,
 * pages under writeback, and what each policy does with a dirty file page
 * at the tail of the inactive list from direct reclaim and from kswapd
 * (which pages are written, by whom, synchronously or not, and whether the
 * page is freed). Range details (writepages/writearound edge cases,
 * pinning, the flusher's order) are test_writeback's.
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
#include "reclaim/wb.h"
#include "reclaim/workingset.h"
#include "tests/unit/reclaim_mock.h"

static struct scan_control sc_for(const struct rl_pgdat *pgdat, enum rl_reclaim_ctx ctx)
{
	struct scan_control sc = {
		.nr_to_reclaim = SWAP_CLUSTER_MAX,
		.ctx = ctx,
		.may_writepage = !(ctx == RL_CTX_DIRECT && pgdat->cfg.policy == RL_POLICY_NODIRECT),
		.may_unmap = true,
	};
	return sc;
}

static void test_mark_page_accessed(void **state)
{
	struct rl_mock *mk = rl_mock_new(64, RL_POLICY_WRITEPAGE, false);
	struct rl_pgdat *pgdat = &mk->pgdat;
	struct rl_mock_mapping *file = rl_mock_mapping(mk, 10, false);
	uint32_t pfn;
	uint64_t age;

	(void)state;
	pthread_mutex_lock(&mk->lock);
	assert_int_equal(rl_mock_fault(mk, file, 0, false, 0, &pfn), 0);
	assert_int_equal(pgdat->pages[pfn].lru, LRU_INACTIVE_FILE);
	assert_false(PageReferenced(&pgdat->pages[pfn]));
	age = pgdat->lruvec.nonresident_age;
	rl_mark_page_accessed(pgdat, pfn);
	assert_true(PageReferenced(&pgdat->pages[pfn]));
	assert_false(PageActive(&pgdat->pages[pfn]));
	rl_mark_page_accessed(pgdat, pfn);
	assert_true(PageActive(&pgdat->pages[pfn]));
	assert_false(PageReferenced(&pgdat->pages[pfn]));
	assert_int_equal(pgdat->pages[pfn].lru, LRU_ACTIVE_FILE);
	assert_int_equal(pgdat->vm.pgactivate, 1);
	assert_int_equal(pgdat->lruvec.nonresident_age, age + 1);	/* activations age */
	rl_mark_page_accessed(pgdat, pfn);
	rl_mark_page_accessed(pgdat, pfn);
	assert_int_equal(pgdat->vm.pgactivate, 1);
	assert_int_equal(pgdat->lruvec.nr[LRU_ACTIVE_FILE], 1);
	pthread_mutex_unlock(&mk->lock);
	rl_mock_free(mk);
}

static void test_shrink_active_list(void **state)
{
	struct rl_mock *mk = rl_mock_new(64, RL_POLICY_WRITEPAGE, false);
	struct rl_pgdat *pgdat = &mk->pgdat;
	struct rl_mock_mapping *file = rl_mock_mapping(mk, 10, false);
	struct scan_control sc = sc_for(pgdat, RL_CTX_KSWAPD);

	(void)state;
	pthread_mutex_lock(&mk->lock);
	for (uint64_t i = 0; i < 10; i++)
		for (int t = 0; t < 3; t++)
			assert_int_equal(rl_mock_fault(mk, file, i, false, 0, NULL), 0);
	assert_int_equal(pgdat->lruvec.nr[LRU_ACTIVE_FILE], 10);
	assert_true(inactive_is_low(pgdat, true));
	assert_false(inactive_is_low(pgdat, false));
	for (uint64_t i = 0; i < 10; i++)
		file->young[i] = i < 4;		/* 4 referenced since */
	file->locked[9] = true;			/* in use by its owner: skipped */
	shrink_active_list(pgdat, 10, &sc, LRU_ACTIVE_FILE);
	assert_int_equal(pgdat->lruvec.nr[LRU_ACTIVE_FILE], 1);
	assert_int_equal(pgdat->lruvec.nr[LRU_INACTIVE_FILE], 9);
	assert_int_equal(pgdat->vm.pgdeactivate, 9);
	assert_int_equal(pgdat->lruvec.recent_rotated[1], 4);
	for (uint64_t i = 0; i < 9; i++) {
		struct rl_page *p = rl_mock_page(mk, file, i);

		assert_false(PageActive(p));
		assert_true(PageWorkingset(p));
		assert_false(file->young[i]);	/* consumed */
	}
	assert_int_equal(pgdat->nr_isolated, 0);
	file->locked[9] = false;
	assert_false(inactive_is_low(pgdat, true));
	pthread_mutex_unlock(&mk->lock);
	rl_mock_free(mk);
}

/* Page 0 of a file mapping at the tail of its inactive list: one page
 * shrunk from that list in ctx. Returns pages freed. */
static uint64_t shrink_tail(struct rl_mock *mk, enum lru_list lru, enum rl_reclaim_ctx ctx,
			    struct scan_control *sc)
{
	*sc = sc_for(&mk->pgdat, ctx);
	return shrink_inactive_list(&mk->pgdat, 1, sc, lru);
}

static void test_page_check_references(void **state)
{
	struct rl_mock *mk = rl_mock_new(64, RL_POLICY_WRITEPAGE, false);
	struct rl_pgdat *pgdat = &mk->pgdat;
	struct rl_mock_mapping *file = rl_mock_mapping(mk, 10, false);
	struct rl_mock_mapping *anon = rl_mock_mapping(mk, 10, true);
	struct scan_control sc;
	uint32_t pfn;

	(void)state;
	pthread_mutex_lock(&mk->lock);
	/* file, referenced once (the fault): one more trip, PG_referenced */
	assert_int_equal(rl_mock_fault(mk, file, 0, false, 0, &pfn), 0);
	assert_int_equal(shrink_tail(mk, LRU_INACTIVE_FILE, RL_CTX_DIRECT, &sc), 0);
	assert_true(PageReferenced(&pgdat->pages[pfn]));
	assert_int_equal(pgdat->pages[pfn].lru, LRU_INACTIVE_FILE);
	assert_false(file->young[0]);
	assert_int_equal(sc.nr_scanned, 1);
	/* not touched since: reclaimed, with a shadow left behind */
	assert_int_equal(shrink_tail(mk, LRU_INACTIVE_FILE, RL_CTX_DIRECT, &sc), 1);
	assert_int_equal(file->pfn[0], RL_NO_PAGE);
	assert_int_not_equal(file->shadow[0], 0);
	assert_int_equal(pgdat->vm.pgsteal_direct, 1);
	assert_int_equal(pgdat->vm.pgscan_direct, 2);
	assert_int_equal(pgdat->nr_free, 64);

	/* file, referenced again while on its second trip: activated */
	assert_int_equal(rl_mock_fault(mk, file, 1, false, 0, &pfn), 0);
	assert_int_equal(shrink_tail(mk, LRU_INACTIVE_FILE, RL_CTX_KSWAPD, &sc), 0);
	file->young[1] = true;
	assert_int_equal(shrink_tail(mk, LRU_INACTIVE_FILE, RL_CTX_KSWAPD, &sc), 0);
	assert_int_equal(pgdat->pages[pfn].lru, LRU_ACTIVE_FILE);
	assert_int_equal(sc.nr_activated, 1);
	assert_int_equal(pgdat->vm.pgactivate, 1);

	/* anon, referenced once: activated at once */
	assert_int_equal(rl_mock_fault(mk, anon, 0, false, 0, &pfn), 0);
	assert_int_equal(shrink_tail(mk, LRU_INACTIVE_ANON, RL_CTX_DIRECT, &sc), 0);
	assert_int_equal(pgdat->pages[pfn].lru, LRU_ACTIVE_ANON);
	assert_int_equal(pgdat->vm.pgactivate, 2);

	/* dirty file page seen only through mark_page_accessed: kept, not
	 * written (PAGEREF_RECLAIM_CLEAN) */
	assert_int_equal(rl_mock_fault(mk, file, 2, true, 9, &pfn), 0);
	file->young[2] = false;
	rl_mark_page_accessed(pgdat, pfn);
	assert_int_equal(shrink_tail(mk, LRU_INACTIVE_FILE, RL_CTX_DIRECT, &sc), 0);
	assert_int_equal(mk->nr_writepages, 0);
	assert_true(PageDirty(&pgdat->pages[pfn]));
	assert_int_equal(sc.nr_dirty, 1);

	/* the owner refuses to let go (referenced meanwhile): kept */
	assert_int_equal(rl_mock_fault(mk, file, 3, false, 0, &pfn), 0);
	file->young[3] = false;
	rotate_reclaimable_page(pgdat, &pgdat->pages[pfn]);
	assert_int_equal(pgdat->lruvec.tail[LRU_INACTIVE_FILE], pfn);
	mk->remove_eagain = 1;
	assert_int_equal(shrink_tail(mk, LRU_INACTIVE_FILE, RL_CTX_DIRECT, &sc), 0);
	assert_int_equal(file->pfn[3], pfn);
	assert_true(PageLRU(&pgdat->pages[pfn]));
	assert_false(file->locked[3]);
	assert_int_equal(pgdat->nr_isolated, 0);
	pthread_mutex_unlock(&mk->lock);
	rl_mock_free(mk);
}

static void test_writeback_pages(void **state)
{
	struct rl_mock *mk = rl_mock_new(64, RL_POLICY_WRITEPAGE, false);
	struct rl_pgdat *pgdat = &mk->pgdat;
	struct rl_mock_mapping *file = rl_mock_mapping(mk, 10, false);
	struct scan_control sc;
	uint32_t pfn, other;

	(void)state;
	pthread_mutex_lock(&mk->lock);
	assert_int_equal(rl_mock_fault(mk, file, 0, true, 5, &pfn), 0);
	assert_int_equal(rl_mock_fault(mk, file, 1, false, 0, &other), 0);
	file->young[0] = false;
	/* the owner writes it itself (msync) */
	assert_true(rl_clear_page_dirty_for_io(pgdat, pfn));
	rl_set_page_writeback(pgdat, pfn);

	assert_int_equal(shrink_tail(mk, LRU_INACTIVE_FILE, RL_CTX_DIRECT, &sc), 0);
	assert_int_equal(sc.nr_writeback, 1);
	assert_true(PageReclaim(&pgdat->pages[pfn]));
	assert_int_equal(pgdat->lruvec.head[LRU_INACTIVE_FILE], pfn);
	/* kswapd meeting it again, still under writeback: nr_immediate */
	del_page_from_lru_list(pgdat, &pgdat->pages[pfn]);
	add_page_to_lru_list_tail(pgdat, &pgdat->pages[pfn], LRU_INACTIVE_FILE);
	assert_int_equal(shrink_tail(mk, LRU_INACTIVE_FILE, RL_CTX_KSWAPD, &sc), 0);
	assert_int_equal(sc.nr_immediate, 1);
	assert_int_equal(sc.nr_writeback, 0);
	assert_int_equal(mk->nr_writepages, 0);

	/* completion: PG_reclaim rotates it to the tail for the next scan */
	uint64_t rotated = pgdat->vm.pgrotated;

	assert_int_equal(pgdat->lruvec.head[LRU_INACTIVE_FILE], pfn);
	rl_end_page_writeback(pgdat, pfn, 0);
	assert_false(PageWriteback(&pgdat->pages[pfn]));
	assert_false(PageReclaim(&pgdat->pages[pfn]));
	assert_int_equal(pgdat->vm.pgrotated, rotated + 1);
	assert_int_equal(pgdat->lruvec.tail[LRU_INACTIVE_FILE], pfn);
	assert_int_equal(shrink_tail(mk, LRU_INACTIVE_FILE, RL_CTX_KSWAPD, &sc), 1);
	assert_int_equal(file->pfn[0], RL_NO_PAGE);
	pthread_mutex_unlock(&mk->lock);
	rl_mock_free(mk);
}

struct dirty_case {
	uint64_t freed, nr_unqueued_dirty;
	unsigned calls;
	struct rl_mock_wcall call;
	bool by_self, dirty_after, resident_after;
	uint32_t igrabs, iputs;
	uint64_t written_direct, written_kswapd;
	uint8_t disk0;
};

/*
 * Dirty pages 0..ndirty-1 of a file (0 oldest, at the tail, written 0x40+i),
 * young bits cleared; one page shrunk from the tail in ctx. engine: run
 * the writeback engine, so that asynchronous writes are really async.
 */
static void dirty_case(enum rl_policy policy, enum rl_reclaim_ctx ctx, unsigned ndirty,
		       bool engine, struct dirty_case *r)
{
	struct rl_mock *mk = rl_mock_new(64, policy, false);
	struct rl_pgdat *pgdat = &mk->pgdat;
	struct rl_mock_mapping *file = rl_mock_mapping(mk, 100, false);
	struct scan_control sc;
	uint32_t pfn;

	memset(r, 0, sizeof(*r));
	if (engine)
		assert_int_equal(rl_wb_start(pgdat, 1), 0);
	pthread_mutex_lock(&mk->lock);
	for (unsigned i = 0; i < ndirty; i++) {
		assert_int_equal(rl_mock_fault(mk, file, i, true, (uint8_t)(0x40 + i),
					       i ? NULL : &pfn), 0);
		file->young[i] = false;
	}
	r->freed = shrink_tail(mk, policy == RL_POLICY_FLUSHER ? LRU_INACTIVE_DIRTY :
				   LRU_INACTIVE_FILE, ctx, &sc);
	if (engine)
		rl_wait_on_page_writeback(pgdat, pfn);
	r->nr_unqueued_dirty = sc.nr_unqueued_dirty;
	r->calls = mk->nlog;
	if (mk->nlog) {
		r->call = mk->log[0];
		r->by_self = pthread_equal(mk->log[0].thread, pthread_self());
	}
	r->resident_after = file->pfn[0] != RL_NO_PAGE;
	r->dirty_after = r->resident_after && PageDirty(&pgdat->pages[pfn]);
	r->igrabs = file->igrabs;
	r->iputs = file->iputs;
	r->written_direct = pgdat->vm.nr_written_direct;
	r->written_kswapd = pgdat->vm.nr_written_kswapd;
	r->disk0 = file->disk[0];
	assert_int_equal(pgdat->nr_isolated, 0);
	pthread_mutex_unlock(&mk->lock);
	if (engine)
		rl_wb_stop(pgdat);
	rl_mock_free(mk);
}

static void test_policy_writepage(void **state)
{
	struct dirty_case r;

	(void)state;
	for (int ctx = RL_CTX_DIRECT; ctx <= RL_CTX_KSWAPD; ctx++) {
		for (int p = 0; p < 2; p++) {
			/* capture writes back as writepage does */
			dirty_case(p ? RL_POLICY_CAPTURE : RL_POLICY_WRITEPAGE,
				   (enum rl_reclaim_ctx)ctx, 4, false, &r);
			assert_int_equal(r.calls, 1);		/* this page alone */
			assert_int_equal(r.call.first, 0);
			assert_int_equal(r.call.n, 1);
			assert_true(r.by_self);			/* synchronous */
			assert_int_equal(r.disk0, 0x40);
			assert_int_equal(r.freed, 1);		/* clean after the write */
			assert_false(r.resident_after);
			assert_int_equal(r.igrabs, 0);
			assert_int_equal(ctx == RL_CTX_DIRECT ? r.written_direct : r.written_kswapd, 1);
		}
	}
}

static void test_policy_nodirect(void **state)
{
	struct dirty_case r;

	(void)state;
	dirty_case(RL_POLICY_NODIRECT, RL_CTX_DIRECT, 4, false, &r);
	assert_int_equal(r.calls, 0);
	assert_int_equal(r.freed, 0);
	assert_true(r.dirty_after);
	assert_int_equal(r.nr_unqueued_dirty, 1);

	/* kswapd writes it asynchronously: the engine's thread does the IO,
	 * the page is kept (under writeback) rather than freed */
	dirty_case(RL_POLICY_NODIRECT, RL_CTX_KSWAPD, 4, true, &r);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.call.n, 1);
	assert_false(r.by_self);
	assert_int_equal(r.freed, 0);
	assert_true(r.resident_after);
	assert_false(r.dirty_after);
	assert_int_equal(r.disk0, 0x40);
	assert_int_equal(r.written_kswapd, 1);
	assert_int_equal(r.written_direct, 0);
}

static void test_policy_flusher(void **state)
{
	struct rl_mock *mk = rl_mock_new(64, RL_POLICY_FLUSHER, false);
	struct rl_pgdat *pgdat = &mk->pgdat;
	struct rl_mock_mapping *file = rl_mock_mapping(mk, 100, false);
	struct scan_control sc;
	uint64_t freed;
	uint32_t pfn;

	(void)state;
	pthread_mutex_lock(&mk->lock);
	for (uint64_t i = 0; i < 20; i++) {
		assert_int_equal(rl_mock_fault(mk, file, i, i % 2 == 0, 1, NULL), 0);
		file->young[i] = false;
	}
	assert_int_equal(pgdat->lruvec.nr[LRU_INACTIVE_DIRTY], 10);
	assert_int_equal(pgdat->lruvec.nr[LRU_INACTIVE_FILE], 10);
	/* reclaim takes the clean pages and writes nothing, in either ctx */
	sc = sc_for(pgdat, RL_CTX_DIRECT);
	sc.priority = 0;
	shrink_lruvec(pgdat, &sc);
	sc = sc_for(pgdat, RL_CTX_KSWAPD);
	sc.priority = 0;
	shrink_lruvec(pgdat, &sc);
	freed = pgdat->vm.pgsteal_direct + pgdat->vm.pgsteal_kswapd;
	assert_int_equal(freed, 10);
	assert_int_equal(mk->nr_writepages, 0);
	assert_int_equal(pgdat->lruvec.nr[LRU_INACTIVE_DIRTY], 10);
	for (uint64_t i = 0; i < 20; i++)
		assert_true((file->pfn[i] != RL_NO_PAGE) == (i % 2 == 0));

	/* a dirty page found on the clean list goes to inactive_dirty */
	pfn = file->pfn[0];
	del_page_from_lru_list(pgdat, &pgdat->pages[pfn]);
	add_page_to_lru_list_tail(pgdat, &pgdat->pages[pfn], LRU_INACTIVE_FILE);
	assert_int_equal(shrink_tail(mk, LRU_INACTIVE_FILE, RL_CTX_KSWAPD, &sc), 0);
	assert_int_equal(pgdat->pages[pfn].lru, LRU_INACTIVE_DIRTY);
	assert_int_equal(mk->nr_writepages, 0);
	pthread_mutex_unlock(&mk->lock);
	rl_mock_free(mk);
}

static void test_policy_ranges(void **state)
{
	struct dirty_case r;

	(void)state;
	/* writepages from direct reclaim: the target and the dirty pages
	 * after it, one synchronous call, the inode pinned around it */
	dirty_case(RL_POLICY_WRITEPAGES, RL_CTX_DIRECT, 10, false, &r);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.call.first, 0);
	assert_int_equal(r.call.n, 10);
	assert_true(r.by_self);
	assert_int_equal(r.call.inode_refs_during, 2);
	assert_int_equal(r.igrabs, 1);
	assert_int_equal(r.iputs, 1);
	assert_int_equal(r.freed, 1);
	assert_int_equal(r.written_direct, 10);

	/* writearound: the window around the target, no inode reference */
	dirty_case(RL_POLICY_WRITEAROUND, RL_CTX_DIRECT, 10, false, &r);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.call.first, 0);
	assert_int_equal(r.call.n, 10);
	assert_int_equal(r.call.inode_refs_during, 1);
	assert_int_equal(r.igrabs, 0);
	assert_int_equal(r.freed, 1);
}

/* Direct reclaim through many dirty pages with an owner that drops the
 * lock in its ops: every page's last contents reach the disk. */
static void test_dirty_stream_data(void **state)
{
	enum { N = 400 };

	(void)state;
	for (int p = 0; p < NR_RL_POLICIES; p++) {
		if (p == RL_POLICY_NODIRECT || p == RL_POLICY_FLUSHER)
			continue;	/* they need kswapd/the flusher to make progress */
		struct rl_mock *mk = rl_mock_new(128, (enum rl_policy)p, false);
		struct rl_mock_mapping *file = rl_mock_mapping(mk, N, false);

		mk->drop_lock_in_ops = true;
		pthread_mutex_lock(&mk->lock);
		for (uint64_t i = 0; i < N; i++)
			assert_int_equal(rl_mock_fault(mk, file, i, true, (uint8_t)(i * 7), NULL), 0);
		for (uint64_t i = 0; i < N; i++) {
			if (file->pfn[i] == RL_NO_PAGE)
				assert_int_equal(file->disk[i], (uint8_t)(i * 7));
			else
				assert_int_equal(rl_mock_content(mk, rl_mock_page(mk, file, i)),
						 (uint8_t)(i * 7));
		}
		assert_true(mk->pgdat.vm.pgsteal_direct >= N - 128);
		assert_int_equal(mk->pgdat.nr_isolated, 0);
		assert_int_equal(mk->pgdat.nr_writeback, 0);
		pthread_mutex_unlock(&mk->lock);
		rl_mock_free(mk);
	}
}

struct writer {
	struct rl_mock *mk;
	struct rl_mock_mapping *map;
	uint64_t n;
	uint8_t salt;
	int ret;
};

static void *writer_thread(void *arg)
{
	struct writer *w = arg;

	pthread_mutex_lock(&w->mk->lock);
	for (uint64_t i = 0; i < w->n && !w->ret; i++)
		w->ret = rl_mock_fault(w->mk, w->map, i, true, (uint8_t)(i * 7 + w->salt), NULL);
	/* and once more over the first half: refaults of dirty data */
	for (uint64_t i = 0; i < w->n / 2 && !w->ret; i++)
		w->ret = rl_mock_fault(w->mk, w->map, i, false, 0, NULL);
	pthread_mutex_unlock(&w->mk->lock);
	return NULL;
}

/*
 * Every policy with its threads running (kswapd, the flusher, the
 * writeback engine) and two faulting threads: nodirect and flusher make
 * progress only through them. Asserts outcomes, not timing: every page's
 * last contents are resident or on the disk, nothing is left isolated.
 */
static void test_threaded_policies(void **state)
{
	enum { N = 300 };

	(void)state;
	for (int p = 0; p < NR_RL_POLICIES; p++) {
		for (int mode = RL_WB_SINGLE; mode <= RL_WB_BATCH; mode++) {
			struct rl_reclaim_config cfg = {
				.nr_pages = 128, .policy = (enum rl_policy)p,
				.wb = (enum rl_wb_mode)mode, .threads = true,
			};
			struct rl_mock *mk = malloc(sizeof(*mk));
			struct writer w[2];
			pthread_t t[2];

			assert_non_null(mk);
			assert_int_equal(rl_mock_init(mk, &cfg), 0);
			mk->drop_lock_in_ops = true;
			for (int k = 0; k < 2; k++) {
				w[k] = (struct writer){ .mk = mk, .n = N, .salt = (uint8_t)(k + 1),
							.map = rl_mock_mapping(mk, N, k == 1 && p % 2) };
				assert_non_null(w[k].map);
			}
			for (int k = 0; k < 2; k++)
				assert_int_equal(pthread_create(&t[k], NULL, writer_thread, &w[k]), 0);
			for (int k = 0; k < 2; k++)
				pthread_join(t[k], NULL);
			rl_pgdat_stop(&mk->pgdat);	/* drains writeback */
			pthread_mutex_lock(&mk->lock);
			for (int k = 0; k < 2; k++) {
				if (w[k].ret)
					print_message("policy %s wb %s writer %d: %d\n", rl_policy_name((enum rl_policy)p), rl_wb_mode_name((enum rl_wb_mode)mode), k, w[k].ret);
				assert_int_equal(w[k].ret, 0);
				for (uint64_t i = 0; i < N; i++) {
					uint8_t want = (uint8_t)(i * 7 + w[k].salt);
					struct rl_page *pg = rl_mock_page(mk, w[k].map, i);

					if (pg)
						assert_int_equal(rl_mock_content(mk, pg), want);
					else
						assert_int_equal(w[k].map->disk[i], want);
				}
			}
			assert_int_equal(mk->pgdat.nr_isolated, 0);
			assert_int_equal(mk->pgdat.nr_writeback, 0);
			assert_int_equal(rl_mock_resident(mk) + mk->pgdat.nr_free, 128);
			pthread_mutex_unlock(&mk->lock);
			rl_mock_free(mk);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mark_page_accessed),
		cmocka_unit_test(test_shrink_active_list),
		cmocka_unit_test(test_page_check_references),
		cmocka_unit_test(test_writeback_pages),
		cmocka_unit_test(test_policy_writepage),
		cmocka_unit_test(test_policy_nodirect),
		cmocka_unit_test(test_policy_flusher),
		cmocka_unit_test(test_policy_ranges),
		cmocka_unit_test(test_dirty_stream_data),
		cmocka_unit_test(test_threaded_policies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
