/* SPDX-License-Identifier: MIT */
/*
 * reclaim/'s writeback: which pages each policy's pageout writes (indexes,
 * calls, sync or async, from which context), the inode pins of writepages
 * and Morton's final iput, the flusher's order, balance_dirty_pages, and
 * the writeback engine. Against the mock owner; no timing assertions: a
 * "gate" in the mock's writepages hook holds an IO in flight while a test
 * looks at the states.
 *
 * The pattern most tests use: a file mapping with pages 0..99 resident and
 * dirty, except 25 and 60 (clean), and 50, which its owner holds locked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "reclaim/vmscan.h"
#include "reclaim/wb.h"
#include "reclaim/writeback.h"
#include "tests/unit/reclaim_mock.h"

#define NPAGES		256u
#define LOCKED_IDX	50u

struct fx {
	struct rl_mock mk;
	struct rl_mock_mapping *map;
	struct rl_pgdat *pgdat;
	bool engine;

	/* gate: writepages hook blocks while closed */
	pthread_mutex_t glock;
	pthread_cond_t gcond;
	bool gate_closed;
	unsigned in_gate;
	/* what the hook saw */
	bool target_locked_in_io[16];
	bool next_locked_in_io[16];	/* the page after the target */
	uint64_t watch_index;		/* its lock is sampled in each IO */
	unsigned nsamples;
	bool unlink_in_io;		/* the hazard tests: unlink during the IO */
	bool unlinking;
	/* the final iput, as the hook saw it */
	bool final_in_reclaim;
	unsigned final_seen;
};

/* The reclaiming thread is "in reclaim" while it runs pageout. */
static _Thread_local bool in_reclaim;

static bool is_clean(uint64_t i)
{
	return i == 25 || i == 60;
}

static void on_writepages(struct rl_mock *mk, const struct rl_mock_wcall *c, void *arg)
{
	struct fx *f = arg;

	pthread_mutex_lock(&mk->lock);
	if (f->nsamples < 16) {
		f->next_locked_in_io[f->nsamples] = f->map->locked[f->watch_index + 1];
		f->target_locked_in_io[f->nsamples++] = f->map->locked[f->watch_index];
	}
	pthread_mutex_unlock(&mk->lock);
	if (f->unlink_in_io) {
		f->unlink_in_io = false;
		f->unlinking = true;
		rl_mock_unlink(mk, f->map);
		f->unlinking = false;
	}
	pthread_mutex_lock(&f->glock);
	f->in_gate++;
	pthread_cond_broadcast(&f->gcond);
	while (f->gate_closed)
		pthread_cond_wait(&f->gcond, &f->glock);
	pthread_mutex_unlock(&f->glock);
	(void)c;
}

static void on_final_iput(struct rl_mock *mk, struct rl_mock_mapping *map, void *arg)
{
	struct fx *f = arg;

	f->final_seen++;
	f->final_in_reclaim = in_reclaim && !f->unlinking;
	(void)mk;
	(void)map;
}

static void fx_init_cfg(struct fx *f, struct rl_reclaim_config *cfg)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(rl_mock_init(&f->mk, cfg), 0);
	f->pgdat = &f->mk.pgdat;
	f->map = rl_mock_mapping(&f->mk, 128, false);
	assert_non_null(f->map);
	pthread_mutex_init(&f->glock, NULL);
	pthread_cond_init(&f->gcond, NULL);
	f->mk.on_writepages = on_writepages;
	f->mk.on_final_iput = on_final_iput;
	f->mk.hook_arg = f;
}

static void fx_init(struct fx *f, enum rl_policy pol, enum rl_wb_mode mode)
{
	struct rl_reclaim_config cfg = {
		.nr_pages = NPAGES, .policy = pol, .wb = mode,
		.dirty_expire_ms = 1000000, .writepages_max = 32, .writearound_window = 32,
	};

	fx_init_cfg(f, &cfg);
}

static void fx_engine(struct fx *f, unsigned depth)
{
	assert_int_equal(rl_wb_start(f->pgdat, depth), 0);
	f->engine = true;
}

static void fx_destroy(struct fx *f)
{
	/* The threads first (they queue writeback), then a hand-started engine. */
	rl_pgdat_stop(f->pgdat);
	rl_wb_stop(f->pgdat);
	assert_int_equal(f->mk.lock_violations, 0);
	rl_mock_destroy(&f->mk);
	pthread_cond_destroy(&f->gcond);
	pthread_mutex_destroy(&f->glock);
}

static void gate(struct fx *f, bool closed)
{
	pthread_mutex_lock(&f->glock);
	f->gate_closed = closed;
	pthread_cond_broadcast(&f->gcond);
	pthread_mutex_unlock(&f->glock);
}

/* Until n IOs reached the gate (lock not held). */
static void wait_in_gate(struct fx *f, unsigned n)
{
	pthread_mutex_lock(&f->glock);
	while (f->in_gate < n)
		pthread_cond_wait(&f->gcond, &f->glock);
	pthread_mutex_unlock(&f->glock);
}

/* Until the engine is idle (lock held). */
static void wait_idle(struct fx *f)
{
	while (rl_wb_inflight(f->pgdat))
		pthread_cond_wait(&f->mk.wait, &f->mk.lock);
}

/* The pattern (lock held). */
static void pattern(struct fx *f)
{
	for (uint64_t i = 0; i < 100; i++)
		assert_int_equal(rl_mock_fault(&f->mk, f->map, i, !is_clean(i),
					       (uint8_t)(0x10 + i), NULL), 0);
	f->map->locked[LOCKED_IDX] = true;
	assert_int_equal(f->pgdat->nr_dirty, 98);
}

static struct rl_page *page_at(struct fx *f, uint64_t i)
{
	struct rl_page *p = rl_mock_page(&f->mk, f->map, i);

	assert_non_null(p);
	return p;
}

/* As shrink_page_list holds it: isolated, locked (lock held). */
static struct rl_page *isolate(struct fx *f, uint64_t i)
{
	struct rl_page *p = page_at(f, i);

	del_page_from_lru_list(f->pgdat, p);
	p->flags |= PG_isolated;
	f->pgdat->nr_isolated++;
	assert_true(trylock_page(p));
	return p;
}

static void putback(struct fx *f, struct rl_page *p)
{
	unlock_page(p);
	putback_lru_page(f->pgdat, p);
}

static pageout_t run_pageout(struct fx *f, uint64_t idx, enum rl_reclaim_ctx ctx,
			     struct scan_control *sc, bool keep_isolated)
{
	struct rl_page *p = isolate(f, idx);
	pageout_t ret;

	memset(sc, 0, sizeof(*sc));
	sc->nr_to_reclaim = SWAP_CLUSTER_MAX;
	sc->priority = DEF_PRIORITY;
	sc->ctx = ctx;
	sc->may_writepage = true;
	sc->may_unmap = true;
	f->watch_index = idx;
	in_reclaim = true;
	ret = pageout(f->pgdat, p, sc);
	in_reclaim = false;
	/* The page comes back locked, whatever happened. */
	assert_true(f->map->locked[idx]);
	if (!keep_isolated)
		putback(f, p);
	return ret;
}

struct run {
	uint64_t first;
	uint32_t n;
};

/* The log holds exactly these calls in this order, all by this thread
 * (sync) or none by it (async). */
static void expect_calls(struct fx *f, const struct run *r, unsigned n, bool sync, bool batch)
{
	assert_int_equal(f->mk.nlog, n);
	for (unsigned i = 0; i < n; i++) {
		const struct rl_mock_wcall *c = &f->mk.log[i];

		assert_int_equal(c->mapping_id, f->map->m.id);
		assert_int_equal(c->first, r[i].first);
		assert_int_equal(c->n, r[i].n);
		assert_int_equal(c->batch, batch);
		assert_int_equal(c->ret, 0);
		assert_int_equal(!!pthread_equal(c->thread, pthread_self()), sync);
	}
}

/* Pages [first, first+n) are clean, written once, not under writeback. */
static void expect_written(struct fx *f, uint64_t first, uint64_t n)
{
	for (uint64_t i = first; i < first + n; i++) {
		struct rl_page *p = page_at(f, i);

		assert_false(PageDirty(p));
		assert_false(PageWriteback(p));
		assert_int_equal(f->map->writes[i], 1);
		assert_int_equal(f->map->disk[i], (uint8_t)(0x10 + i));
	}
}

static void expect_untouched(struct fx *f, uint64_t i)
{
	assert_int_equal(f->map->writes[i], 0);
	if (!is_clean(i))
		assert_true(PageDirty(page_at(f, i)));
}

/* ---- writepage / capture ---- */

static void single_sync(enum rl_policy pol, enum rl_reclaim_ctx ctx)
{
	struct fx f;
	struct scan_control sc;
	const struct run r[] = { { 20, 1 } };

	fx_init(&f, pol, RL_WB_BATCH);
	pthread_mutex_lock(&f.mk.lock);
	pattern(&f);
	f.mk.nlog = 0;
	assert_int_equal(run_pageout(&f, 20, ctx, &sc, false), PAGE_SUCCESS);
	expect_calls(&f, r, 1, true, true);
	assert_true(f.target_locked_in_io[0]);	/* writepage: under the page lock */
	expect_written(&f, 20, 1);
	expect_untouched(&f, 19);
	expect_untouched(&f, 21);
	assert_int_equal(sc.nr_written, 1);
	assert_int_equal(ctx == RL_CTX_DIRECT ? f.pgdat->vm.nr_written_direct :
			 f.pgdat->vm.nr_written_kswapd, 1);
	assert_int_equal(f.pgdat->vm.nr_written_sync, 1);
	assert_int_equal(f.pgdat->vm.write_ios, 1);
	assert_int_equal(f.map->igrabs, 0);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

static void test_writepage(void **state)
{
	single_sync(RL_POLICY_WRITEPAGE, RL_CTX_DIRECT);
	single_sync(RL_POLICY_WRITEPAGE, RL_CTX_KSWAPD);
	single_sync(RL_POLICY_CAPTURE, RL_CTX_DIRECT);
	single_sync(RL_POLICY_CAPTURE, RL_CTX_KSWAPD);
}

/* ---- writepages ---- */

static void writepages_direct(enum rl_wb_mode mode)
{
	struct fx f;
	struct scan_control sc;
	/* 5..24 (25 clean), 40..49 (50 locked), 61..92 (writepages_max) */
	const struct run r[] = { { 5, 20 }, { 40, 10 }, { 61, 32 } };
	const uint64_t targets[] = { 5, 40, 61 };

	fx_init(&f, RL_POLICY_WRITEPAGES, mode);
	pthread_mutex_lock(&f.mk.lock);
	pattern(&f);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(run_pageout(&f, targets[i], RL_CTX_DIRECT, &sc, false),
				 PAGE_SUCCESS);
		assert_int_equal(sc.nr_written, r[i].n);
		/* kept locked (writeback.c says why), the others released */
		assert_true(f.target_locked_in_io[i]);
		assert_false(f.next_locked_in_io[i]);
	}
	expect_calls(&f, r, 3, true, mode == RL_WB_BATCH);
	for (unsigned i = 0; i < 3; i++) {
		expect_written(&f, r[i].first, r[i].n);
		assert_int_equal(f.mk.log[i].pins_during, 1);
		assert_int_equal(f.mk.log[i].inode_refs_during, 2);
	}
	expect_untouched(&f, 4);
	expect_untouched(&f, 51);
	expect_untouched(&f, 93);
	assert_false(f.map->locked[40]);
	assert_true(f.map->locked[LOCKED_IDX]);
	assert_int_equal(f.map->igrabs, 3);
	assert_int_equal(f.map->iputs, 3);
	assert_int_equal(f.map->m.pins, 0);
	assert_int_equal(f.map->final_iputs, 0);
	assert_int_equal(f.pgdat->vm.nr_written_direct, 62);
	assert_int_equal(f.pgdat->vm.nr_written_kswapd, 0);
	assert_int_equal(f.pgdat->vm.write_io_pages, 62);
	assert_int_equal(f.pgdat->vm.write_ios, mode == RL_WB_BATCH ? 3 : 62);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

static void test_writepages_direct(void **state)
{
	writepages_direct(RL_WB_SINGLE);
	writepages_direct(RL_WB_BATCH);
}

/* A page under writeback ends the range. */
static void test_writepages_stops_at_writeback(void **state)
{
	struct fx f;
	struct scan_control sc;
	const struct run r[] = { { 10, 5 } };

	fx_init(&f, RL_POLICY_WRITEPAGES, RL_WB_SINGLE);
	pthread_mutex_lock(&f.mk.lock);
	pattern(&f);
	rl_set_page_writeback(f.pgdat, page_to_pfn(f.pgdat, page_at(&f, 15)));
	assert_int_equal(run_pageout(&f, 10, RL_CTX_DIRECT, &sc, false), PAGE_SUCCESS);
	expect_calls(&f, r, 1, true, false);
	rl_end_page_writeback(f.pgdat, page_to_pfn(f.pgdat, page_at(&f, 15)), 0);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

static void test_writepages_kswapd_async(void **state)
{
	struct fx f;
	struct scan_control sc;
	const struct run r[] = { { 5, 20 } };
	struct rl_page *t;
	uint32_t tpfn;

	fx_init(&f, RL_POLICY_WRITEPAGES, RL_WB_BATCH);
	fx_engine(&f, 2);
	gate(&f, true);
	pthread_mutex_lock(&f.mk.lock);
	pattern(&f);
	assert_int_equal(run_pageout(&f, 5, RL_CTX_KSWAPD, &sc, false), PAGE_SUCCESS);
	t = page_at(&f, 5);
	tpfn = page_to_pfn(f.pgdat, t);
	/* Queued: under writeback, PG_reclaim on the target, the pin held
	 * until completion. */
	assert_true(PageWriteback(t));
	assert_true(PageReclaim(t));
	assert_false(PageDirty(t));
	assert_int_equal(f.map->m.pins, 1);
	assert_int_equal(f.map->iputs, 0);
	assert_int_equal(f.pgdat->nr_writeback, 20);
	pthread_mutex_unlock(&f.mk.lock);

	wait_in_gate(&f, 1);
	pthread_mutex_lock(&f.mk.lock);
	assert_int_equal(f.mk.log[0].pins_during, 1);
	assert_true(PageWriteback(t));
	pthread_mutex_unlock(&f.mk.lock);
	gate(&f, false);

	pthread_mutex_lock(&f.mk.lock);
	wait_idle(&f);
	expect_calls(&f, r, 1, false, true);
	expect_written(&f, 5, 20);
	assert_int_equal(f.map->igrabs, 1);
	assert_int_equal(f.map->iputs, 1);
	assert_int_equal(f.map->m.pins, 0);
	assert_int_equal(f.pgdat->nr_writeback, 0);
	assert_int_equal(f.pgdat->vm.nr_written_kswapd, 20);
	assert_int_equal(f.pgdat->vm.nr_written_sync, 0);
	/* end_page_writeback rotated the reclaim target to the tail */
	assert_false(PageReclaim(t));
	assert_int_equal(f.pgdat->lruvec.tail[LRU_INACTIVE_FILE], tpfn);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

/* ---- writearound ---- */

static void writearound(enum rl_reclaim_ctx ctx)
{
	struct fx f;
	struct scan_control sc;
	bool sync = ctx == RL_CTX_DIRECT;
	/* window 32..63 around 40: 50 locked, 60 clean */
	const struct run r[] = { { 32, 18 }, { 51, 9 }, { 61, 3 } };

	fx_init(&f, RL_POLICY_WRITEAROUND, RL_WB_SINGLE);
	f.mk.drop_lock_in_ops = true;	/* write_protect drops the lock */
	if (!sync)
		fx_engine(&f, 1);	/* one worker: calls stay in order */
	pthread_mutex_lock(&f.mk.lock);
	pattern(&f);
	assert_int_equal(run_pageout(&f, 40, ctx, &sc, true), PAGE_SUCCESS);
	assert_int_equal(sc.nr_written, 30);
	wait_idle(&f);
	/* The target's lock pinned the mapping through every IO (async: the
	 * caller still holds it here, and the IO is done). */
	assert_int_equal(f.nsamples, 3);
	for (unsigned i = 0; i < 3; i++)
		assert_true(f.target_locked_in_io[i]);
	putback(&f, page_at(&f, 40));
	expect_calls(&f, r, 3, sync, false);
	for (unsigned i = 0; i < 3; i++) {
		expect_written(&f, r[i].first, r[i].n);
		assert_int_equal(f.mk.log[i].pins_during, 0);
		assert_int_equal(f.mk.log[i].inode_refs_during, 1);
	}
	expect_untouched(&f, 31);
	expect_untouched(&f, 64);
	assert_int_equal(f.map->igrabs, 0);
	assert_int_equal(f.map->iputs, 0);
	assert_int_equal(f.pgdat->vm.write_ios, 30);
	assert_int_equal(sync ? f.pgdat->vm.nr_written_direct : f.pgdat->vm.nr_written_kswapd, 30);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

static void test_writearound(void **state)
{
	writearound(RL_CTX_DIRECT);
	writearound(RL_CTX_KSWAPD);
}

/* ---- Morton's hazard ---- */

static void hazard(enum rl_policy pol, bool expect_final_in_reclaim)
{
	struct fx f;
	struct scan_control sc;

	fx_init(&f, pol, RL_WB_BATCH);
	pthread_mutex_lock(&f.mk.lock);
	pattern(&f);
	/* The file is unlinked while reclaim writes it. */
	f.unlink_in_io = true;
	assert_int_equal(run_pageout(&f, 5, RL_CTX_DIRECT, &sc, false), PAGE_SUCCESS);
	assert_int_equal(f.map->final_iputs, 1);
	assert_true(f.map->evicted);
	assert_int_equal(f.final_seen, 1);
	assert_int_equal(f.final_in_reclaim, expect_final_in_reclaim);
	assert_int_equal(!!pthread_equal(f.map->final_iput_thread, pthread_self()), 1);
	assert_int_equal(f.map->iputs, expect_final_in_reclaim ? 1 : 0);
	assert_int_equal(f.map->m.pins, 0);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

static void test_hazard_writepages(void **state)
{
	hazard(RL_POLICY_WRITEPAGES, true);
}

static void test_hazard_writearound(void **state)
{
	hazard(RL_POLICY_WRITEAROUND, false);
}

/* ---- nodirect, flusher, anon ---- */

static void test_nodirect(void **state)
{
	struct fx f;
	struct scan_control sc;
	const struct run r[] = { { 20, 1 } };

	fx_init(&f, RL_POLICY_NODIRECT, RL_WB_SINGLE);
	pthread_mutex_lock(&f.mk.lock);
	pattern(&f);
	assert_int_equal(run_pageout(&f, 20, RL_CTX_DIRECT, &sc, false), PAGE_KEEP);
	assert_int_equal(sc.nr_unqueued_dirty, 1);
	assert_int_equal(f.mk.nlog, 0);
	assert_true(PageDirty(page_at(&f, 20)));
	pthread_mutex_unlock(&f.mk.lock);

	fx_engine(&f, 1);
	gate(&f, true);
	pthread_mutex_lock(&f.mk.lock);
	assert_int_equal(run_pageout(&f, 20, RL_CTX_KSWAPD, &sc, false), PAGE_SUCCESS);
	assert_true(PageWriteback(page_at(&f, 20)));
	assert_true(PageReclaim(page_at(&f, 20)));
	pthread_mutex_unlock(&f.mk.lock);
	gate(&f, false);
	pthread_mutex_lock(&f.mk.lock);
	wait_idle(&f);
	expect_calls(&f, r, 1, false, false);
	expect_written(&f, 20, 1);
	expect_untouched(&f, 21);
	assert_int_equal(f.pgdat->vm.nr_written_direct, 0);
	assert_int_equal(f.pgdat->vm.nr_written_kswapd, 1);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

static void test_flusher_policy_reclaim_never_writes(void **state)
{
	struct fx f;
	struct scan_control sc;
	struct rl_mock_mapping *anon;
	const struct run r[] = { { 3, 1 } };

	fx_init(&f, RL_POLICY_FLUSHER, RL_WB_SINGLE);
	anon = rl_mock_mapping(&f.mk, 8, true);
	assert_non_null(anon);
	pthread_mutex_lock(&f.mk.lock);
	pattern(&f);
	assert_int_equal(page_at(&f, 20)->lru, LRU_INACTIVE_DIRTY);
	assert_int_equal(run_pageout(&f, 20, RL_CTX_DIRECT, &sc, false), PAGE_KEEP);
	assert_int_equal(run_pageout(&f, 20, RL_CTX_KSWAPD, &sc, false), PAGE_KEEP);
	assert_int_equal(f.mk.nlog, 0);

	/* swap_writepage: anonymous pages are written under every policy,
	 * alone (no engine here: carried out at once). */
	for (uint64_t i = 0; i < 8; i++)
		assert_int_equal(rl_mock_fault(&f.mk, anon, i, true, 1, NULL), 0);
	{
		struct rl_page *p = rl_mock_page(&f.mk, anon, 3);

		del_page_from_lru_list(f.pgdat, p);
		p->flags |= PG_isolated;
		f.pgdat->nr_isolated++;
		assert_true(trylock_page(p));
		memset(&sc, 0, sizeof(sc));
		sc.ctx = RL_CTX_DIRECT;
		sc.may_writepage = true;
		assert_int_equal(pageout(f.pgdat, p, &sc), PAGE_SUCCESS);
		assert_false(PageDirty(p));
		putback(&f, p);
	}
	assert_int_equal(f.mk.nlog, 1);
	assert_int_equal(f.mk.log[0].mapping_id, anon->m.id);
	assert_int_equal(f.mk.log[0].first, r[0].first);
	assert_int_equal(f.mk.log[0].n, r[0].n);
	assert_int_equal(anon->igrabs, 0);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

/* A failed synchronous write: activate, error reported, page dirty again. */
static void test_pageout_error(void **state)
{
	struct fx f;
	struct scan_control sc;

	fx_init(&f, RL_POLICY_WRITEPAGES, RL_WB_BATCH);
	pthread_mutex_lock(&f.mk.lock);
	pattern(&f);
	f.mk.fail_errno = ENOSPC;
	f.mk.fail_count = 1;
	assert_int_equal(run_pageout(&f, 5, RL_CTX_DIRECT, &sc, false), PAGE_ACTIVATE);
	assert_int_equal(sc.last_error, -ENOSPC);
	for (uint64_t i = 5; i < 25; i++) {
		assert_true(PageDirty(page_at(&f, i)));
		assert_false(PageWriteback(page_at(&f, i)));
	}
	assert_int_equal(f.pgdat->nr_dirty, 98);
	assert_int_equal(f.pgdat->vm.wb_errors, 1);
	assert_int_equal(f.map->iputs, f.map->igrabs);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

/* ---- the flusher ---- */

/* Dirty the pages [first, first+n) of map with dirtied_at = at (lock held). */
static void dirty_at(struct fx *f, struct rl_mock_mapping *map, uint64_t first, uint64_t n,
		     uint64_t at)
{
	for (uint64_t i = first; i < first + n; i++) {
		assert_int_equal(rl_mock_fault(&f->mk, map, i, true, (uint8_t)i, NULL), 0);
		rl_mock_page(&f->mk, map, i)->dirtied_at = at;
	}
}

static void flusher_order(enum rl_policy pol)
{
	struct fx f;
	struct rl_mock_mapping *b, *c;

	fx_init(&f, pol, RL_WB_BATCH);
	b = rl_mock_mapping(&f.mk, 16, false);
	c = rl_mock_mapping(&f.mk, 16, false);
	assert_non_null(b);
	assert_non_null(c);
	pthread_mutex_lock(&f.mk.lock);
	dirty_at(&f, f.map, 0, 4, 50);		/* A: newest */
	dirty_at(&f, b, 0, 4, 10);		/* B: oldest */
	dirty_at(&f, c, 10, 1, 30);		/* C: two lone pages */
	dirty_at(&f, c, 12, 1, 20);
	assert_int_equal(f.pgdat->nr_dirty, 10);
	f.pgdat->bg_thresh = 0;			/* above background: write all */
	assert_int_equal(wb_do_writeback(f.pgdat), 10);
	assert_int_equal(f.mk.nlog, 4);
	assert_int_equal(f.mk.log[0].mapping_id, b->m.id);
	assert_int_equal(f.mk.log[0].n, 4);
	assert_int_equal(f.mk.log[1].mapping_id, c->m.id);
	assert_int_equal(f.mk.log[1].first, 12);
	assert_int_equal(f.mk.log[2].mapping_id, c->m.id);
	assert_int_equal(f.mk.log[2].first, 10);
	assert_int_equal(f.mk.log[3].mapping_id, f.map->m.id);
	assert_int_equal(f.mk.log[3].first, 0);
	assert_int_equal(f.mk.log[3].n, 4);
	assert_int_equal(f.pgdat->vm.nr_written_flusher, 10);
	assert_int_equal(f.pgdat->vm.write_ios, 4);
	assert_int_equal(f.pgdat->nr_dirty, 0);

	/* Stops once below the background threshold. */
	f.mk.nlog = 0;
	dirty_at(&f, f.map, 0, 4, 50);
	dirty_at(&f, b, 0, 4, 10);
	dirty_at(&f, c, 10, 1, 30);
	dirty_at(&f, c, 12, 1, 20);
	f.pgdat->bg_thresh = 5;
	assert_int_equal(wb_do_writeback(f.pgdat), 5);	/* B (4), then C's 12 */
	assert_int_equal(f.mk.nlog, 2);
	assert_int_equal(f.mk.log[1].first, 12);
	assert_int_equal(f.pgdat->nr_dirty, 5);
	/* Nothing expired, below background, nothing asked: no IO. */
	assert_int_equal(wb_do_writeback(f.pgdat), 0);
	assert_int_equal(f.pgdat->vm.flusher_passes, 3);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

static void test_flusher_oldest_first(void **state)
{
	flusher_order(RL_POLICY_WRITEPAGE);
	flusher_order(RL_POLICY_FLUSHER);
}

/* Policy flusher: inactive_dirty pages go before an older active one. */
static void test_flusher_inactive_dirty_first(void **state)
{
	struct fx f;
	struct rl_mock_mapping *b;
	struct rl_page *hot;

	fx_init(&f, RL_POLICY_FLUSHER, RL_WB_BATCH);
	b = rl_mock_mapping(&f.mk, 16, false);
	assert_non_null(b);
	pthread_mutex_lock(&f.mk.lock);
	dirty_at(&f, f.map, 0, 1, 1);
	hot = rl_mock_page(&f.mk, f.map, 0);
	rl_mark_page_accessed(f.pgdat, page_to_pfn(f.pgdat, hot));
	rl_mark_page_accessed(f.pgdat, page_to_pfn(f.pgdat, hot));
	assert_int_equal(hot->lru, LRU_ACTIVE_FILE);
	dirty_at(&f, b, 4, 2, 5);
	assert_int_equal(rl_mock_page(&f.mk, b, 4)->lru, LRU_INACTIVE_DIRTY);
	f.pgdat->bg_thresh = 0;
	assert_int_equal(wb_do_writeback(f.pgdat), 3);
	assert_int_equal(f.mk.nlog, 2);
	assert_int_equal(f.mk.log[0].mapping_id, b->m.id);
	assert_int_equal(f.mk.log[0].first, 4);
	assert_int_equal(f.mk.log[0].n, 2);
	assert_int_equal(f.mk.log[1].mapping_id, f.map->m.id);
	/* cleaned: back on inactive_clean */
	assert_int_equal(rl_mock_page(&f.mk, b, 4)->lru, LRU_INACTIVE_FILE);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

static void test_flusher_expired(void **state)
{
	struct fx f;
	struct rl_reclaim_config cfg = {
		.nr_pages = NPAGES, .policy = RL_POLICY_WRITEPAGE, .wb = RL_WB_SINGLE,
		.dirty_expire_ms = 1,
	};
	struct timespec ts = { 0, 5 * 1000 * 1000 };
	uint64_t young;

	fx_init_cfg(&f, &cfg);
	nanosleep(&ts, NULL);
	pthread_mutex_lock(&f.mk.lock);
	young = rl_pgdat_now_ms(f.pgdat) + 1000000;
	dirty_at(&f, f.map, 0, 3, 0);		/* expired */
	dirty_at(&f, f.map, 10, 3, young);	/* not yet */
	assert_true(f.pgdat->nr_dirty <= f.pgdat->bg_thresh);
	assert_int_equal(wb_do_writeback(f.pgdat), 3);
	assert_int_equal(f.mk.nlog, 1);
	assert_int_equal(f.mk.log[0].first, 0);
	assert_int_equal(f.mk.log[0].n, 3);
	assert_int_equal(f.pgdat->vm.write_ios, 3);	/* single: one per page */
	assert_true(PageDirty(rl_mock_page(&f.mk, f.map, 10)));
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

/* A contiguous run is extended backwards too. */
static void test_flusher_run_both_ways(void **state)
{
	struct fx f;

	fx_init(&f, RL_POLICY_WRITEPAGE, RL_WB_BATCH);
	pthread_mutex_lock(&f.mk.lock);
	dirty_at(&f, f.map, 20, 10, 100);
	rl_mock_page(&f.mk, f.map, 25)->dirtied_at = 1;	/* the oldest is in the middle */
	f.map->locked[22] = true;				/* ends the run below */
	f.pgdat->bg_thresh = 0;
	assert_int_equal(wb_do_writeback(f.pgdat), 9);
	assert_int_equal(f.mk.nlog, 2);
	assert_int_equal(f.mk.log[0].first, 23);
	assert_int_equal(f.mk.log[0].n, 7);
	assert_int_equal(f.mk.log[1].first, 20);
	assert_int_equal(f.mk.log[1].n, 2);
	assert_true(PageDirty(rl_mock_page(&f.mk, f.map, 22)));
	f.map->locked[22] = false;
	assert_int_equal(wb_do_writeback(f.pgdat), 1);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

/* ---- balance_dirty_pages ---- */

struct writer {
	struct fx *f;
	bool done;
	uint64_t dirty_after;
};

static void *writer_thread(void *arg)
{
	struct writer *w = arg;

	pthread_mutex_lock(&w->f->mk.lock);
	balance_dirty_pages(w->f->pgdat);
	w->done = true;
	w->dirty_after = w->f->pgdat->nr_dirty + w->f->pgdat->nr_writeback;
	pthread_mutex_unlock(&w->f->mk.lock);
	return NULL;
}

static void test_balance_dirty_pages(void **state)
{
	struct fx f;
	struct writer w = { .f = &f };
	pthread_t t;
	uint64_t freerun;

	fx_init(&f, RL_POLICY_WRITEPAGE, RL_WB_BATCH);
	fx_engine(&f, 2);
	pthread_mutex_lock(&f.mk.lock);
	rl_update_dirty_limits(f.pgdat);
	assert_int_equal(f.pgdat->dirty_thresh, NPAGES * 20 / 100);
	assert_int_equal(f.pgdat->bg_thresh, NPAGES * 10 / 100);
	freerun = (f.pgdat->dirty_thresh + f.pgdat->bg_thresh) / 2;

	/* Above background, below the limit: no pause. */
	dirty_at(&f, f.map, 0, 30, 7);
	balance_dirty_pages(f.pgdat);
	assert_int_equal(f.pgdat->vm.dirty_throttled, 0);

	/* Above the limit: the writer sleeps until the flusher cleans. */
	dirty_at(&f, f.map, 30, 30, 7);
	pthread_mutex_unlock(&f.mk.lock);
	assert_int_equal(pthread_create(&t, NULL, writer_thread, &w), 0);
	pthread_mutex_lock(&f.mk.lock);
	while (f.pgdat->vm.dirty_throttled == 0)
		pthread_cond_wait(&f.mk.wait, &f.mk.lock);
	assert_false(w.done);
	/* One run: the 60 pages are contiguous. */
	assert_true(wb_do_writeback(f.pgdat) >= 60 - f.pgdat->bg_thresh);
	assert_true(f.pgdat->nr_dirty <= f.pgdat->bg_thresh);
	pthread_mutex_unlock(&f.mk.lock);
	pthread_join(t, NULL);
	pthread_mutex_lock(&f.mk.lock);
	assert_true(w.done);
	assert_true(w.dirty_after <= freerun);
	assert_int_equal(f.pgdat->vm.dirty_throttled, 1);
	assert_int_equal(f.pgdat->lat.throttle.count, 1);
	assert_true(f.pgdat->vm.nr_written_flusher >= 60 - freerun);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

/* ---- the engine ---- */

static void test_engine_completes_and_redirties(void **state)
{
	struct fx f;
	struct rl_page *pages[10];

	fx_init(&f, RL_POLICY_WRITEPAGE, RL_WB_BATCH);
	fx_engine(&f, 2);
	pthread_mutex_lock(&f.mk.lock);
	pattern(&f);
	f.mk.fail_errno = EIO;
	f.mk.fail_count = 1;
	/* Two requests, queued in order; the first one fails. */
	for (uint64_t i = 0; i < 10; i++) {
		pages[i] = page_at(&f, i);
		assert_true(trylock_page(pages[i]));
	}
	assert_int_equal(rl_write_pages(f.pgdat, &f.map->m, 0, 5, pages, false, RL_CTX_FLUSHER), 0);
	wait_idle(&f);
	assert_int_equal(rl_write_pages(f.pgdat, &f.map->m, 5, 5, pages + 5, false,
					RL_CTX_FLUSHER), 0);
	wait_idle(&f);
	for (uint64_t i = 0; i < 10; i++) {
		assert_false(PageWriteback(pages[i]));
		assert_false(f.map->locked[i]);
		assert_int_equal(PageDirty(pages[i]), i < 5);
		assert_int_equal(f.map->writes[i], i < 5 ? 0 : 1);
	}
	assert_int_equal(f.pgdat->vm.wb_errors, 1);
	assert_int_equal(f.pgdat->nr_writeback, 0);
	assert_int_equal(f.pgdat->nr_dirty, 98 - 5);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

/* rl_wb_stop drains a full queue (more requests than slots). */
static void test_engine_stop_drains(void **state)
{
	struct fx f;

	fx_init(&f, RL_POLICY_WRITEPAGE, RL_WB_SINGLE);
	fx_engine(&f, 1);
	gate(&f, true);
	pthread_mutex_lock(&f.mk.lock);
	pattern(&f);
	for (uint64_t i = 0; i < 3; i++) {
		struct rl_page *p = page_at(&f, i);

		assert_true(trylock_page(p));
		assert_int_equal(rl_write_pages(f.pgdat, &f.map->m, i, 1, &p, false,
						RL_CTX_KSWAPD), 0);
	}
	assert_int_equal(rl_wb_inflight(f.pgdat), 3);
	pthread_mutex_unlock(&f.mk.lock);
	wait_in_gate(&f, 1);
	gate(&f, false);
	rl_wb_stop(f.pgdat);
	pthread_mutex_lock(&f.mk.lock);
	assert_null(f.pgdat->wb);
	assert_int_equal(f.mk.pages_written, 3);
	assert_int_equal(f.pgdat->nr_writeback, 0);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

/* ---- single vs batch ---- */

static void test_single_vs_batch(void **state)
{
	struct rl_mock_wcall logs[2][8];
	unsigned nlog[2];
	uint64_t ios[2];

	for (int mode = 0; mode < 2; mode++) {
		struct fx f;
		struct scan_control sc;

		fx_init(&f, RL_POLICY_WRITEAROUND, (enum rl_wb_mode)mode);
		pthread_mutex_lock(&f.mk.lock);
		pattern(&f);
		assert_int_equal(run_pageout(&f, 40, RL_CTX_DIRECT, &sc, false), PAGE_SUCCESS);
		assert_int_equal(run_pageout(&f, 70, RL_CTX_DIRECT, &sc, false), PAGE_SUCCESS);
		nlog[mode] = f.mk.nlog;
		assert_true(nlog[mode] <= 8);
		memcpy(logs[mode], f.mk.log, nlog[mode] * sizeof(logs[0][0]));
		ios[mode] = f.pgdat->vm.write_ios;
		assert_int_equal(f.pgdat->vm.write_io_pages, 30 + 32);
		pthread_mutex_unlock(&f.mk.lock);
		fx_destroy(&f);
	}
	assert_int_equal(nlog[0], nlog[1]);
	for (unsigned i = 0; i < nlog[0]; i++) {
		assert_int_equal(logs[0][i].first, logs[1][i].first);
		assert_int_equal(logs[0][i].n, logs[1][i].n);
		assert_false(logs[0][i].batch);
		assert_true(logs[1][i].batch);
	}
	assert_int_equal(ios[0], 30 + 32);
	assert_int_equal(ios[1], nlog[1]);
}


/* ---- with the threads: kswapd, the flusher, the engine ---- */

static void fx_init_threads(struct fx *f, unsigned expire_ms)
{
	struct rl_reclaim_config cfg = {
		.nr_pages = NPAGES, .policy = RL_POLICY_WRITEPAGE, .wb = RL_WB_BATCH,
		.dirty_expire_ms = expire_ms, .threads = true,
	};

	fx_init_cfg(f, &cfg);
	assert_non_null(f->pgdat->flusher);
	assert_non_null(f->pgdat->wb);
}

/* Until cond holds (lock held); a hang guard of 20 s, not a timing test. */
#define WAIT_UNTIL(f, cond)							\
	do {									\
		struct timespec dl_;						\
		clock_gettime(CLOCK_REALTIME, &dl_);				\
		dl_.tv_sec += 20;						\
		while (!(cond))							\
			assert_int_not_equal(pthread_cond_timedwait(&(f)->mk.wait, \
					&(f)->mk.lock, &dl_), ETIMEDOUT);	\
	} while (0)

static void test_flusher_thread_background(void **state)
{
	struct fx f;

	fx_init_threads(&f, 1000000);
	pthread_mutex_lock(&f.mk.lock);
	dirty_at(&f, f.map, 0, 40, 7);
	assert_true(f.pgdat->nr_dirty > f.pgdat->bg_thresh);
	/* Above background, below the limit: wakes the flusher, no pause. */
	balance_dirty_pages(f.pgdat);
	assert_int_equal(f.pgdat->vm.dirty_throttled, 0);
	WAIT_UNTIL(&f, f.pgdat->nr_dirty <= f.pgdat->bg_thresh && f.pgdat->nr_writeback == 0);
	assert_true(f.pgdat->vm.nr_written_flusher >= 40 - f.pgdat->bg_thresh);
	assert_int_equal(f.pgdat->vm.nr_written_kswapd + f.pgdat->vm.nr_written_direct, 0);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

/* Below background, nothing woken: the periodic pass writes expired pages. */
static void test_flusher_thread_expiry(void **state)
{
	struct fx f;

	fx_init_threads(&f, 20);
	pthread_mutex_lock(&f.mk.lock);
	dirty_at(&f, f.map, 0, 3, 0);
	assert_true(f.pgdat->nr_dirty <= f.pgdat->bg_thresh);
	WAIT_UNTIL(&f, f.pgdat->nr_dirty == 0 && f.pgdat->nr_writeback == 0);
	assert_int_equal(f.pgdat->vm.nr_written_flusher, 3);
	assert_int_equal(f.map->writes[0] + f.map->writes[1] + f.map->writes[2], 3);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

/* A writer over the limit, cleaned for by the real flusher thread. */
static void test_balance_dirty_pages_threads(void **state)
{
	struct fx f;

	fx_init_threads(&f, 1000000);
	pthread_mutex_lock(&f.mk.lock);
	dirty_at(&f, f.map, 0, 60, 7);
	assert_true(f.pgdat->nr_dirty > f.pgdat->dirty_thresh);
	balance_dirty_pages(f.pgdat);
	assert_int_equal(f.pgdat->vm.dirty_throttled, 1);
	assert_int_equal(f.pgdat->lat.throttle.count, 1);
	WAIT_UNTIL(&f, f.pgdat->nr_dirty <= f.pgdat->bg_thresh && f.pgdat->nr_writeback == 0);
	assert_true(f.pgdat->vm.nr_written_flusher >= 60 - f.pgdat->bg_thresh);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

/*
 * --dirty-background-ratio 100 is no background writeback: bg_thresh is the
 * whole pool, so dirtying below the hard limit neither wakes the flusher nor
 * gets a page written; over the limit, the writer asks the flusher for the
 * excess itself. Any other background ratio at or above the limit is halved.
 */
static void test_dirty_background_100(void **state)
{
	struct fx f;
	struct rl_reclaim_config cfg = {
		.nr_pages = NPAGES, .policy = RL_POLICY_WRITEPAGE, .wb = RL_WB_BATCH,
		.dirty_ratio = 30, .dirty_background_ratio = 100,
		.dirty_expire_ms = 1000000, .threads = true,
	};
	struct timespec pause = { .tv_nsec = 100 * 1000000L };
	uint64_t passes;

	fx_init_cfg(&f, &cfg);
	pthread_mutex_lock(&f.mk.lock);
	rl_update_dirty_limits(f.pgdat);
	assert_int_equal(f.pgdat->dirty_thresh, NPAGES * 30 / 100);
	assert_int_equal(f.pgdat->bg_thresh, NPAGES);
	/* the flusher's first pass (at its start) is over: from here on it
	 * runs only when woken (its period is 500 s) */
	while (f.pgdat->vm.flusher_passes == 0) {
		pthread_mutex_unlock(&f.mk.lock);
		nanosleep(&pause, NULL);
		pthread_mutex_lock(&f.mk.lock);
	}
	passes = f.pgdat->vm.flusher_passes;

	/* Below the limit: no pause, no wakeup, nothing written. A wakeup
	 * would show as a pass within the pause (a slow machine can only hide
	 * one, not invent it). */
	dirty_at(&f, f.map, 0, 60, 7);
	assert_true(f.pgdat->nr_dirty <= f.pgdat->dirty_thresh);
	balance_dirty_pages(f.pgdat);
	assert_int_equal(f.pgdat->vm.dirty_throttled, 0);
	pthread_mutex_unlock(&f.mk.lock);
	nanosleep(&pause, NULL);
	pthread_mutex_lock(&f.mk.lock);
	assert_int_equal(f.pgdat->vm.flusher_passes, passes);
	assert_int_equal(f.pgdat->vm.nr_written_flusher, 0);
	assert_int_equal(f.pgdat->nr_dirty, 60);

	/* An explicit pass writes nothing either: no page is expired. */
	assert_int_equal(wb_do_writeback(f.pgdat), 0);

	/* Over the limit: the writer is paused until the flusher, asked for
	 * the excess, brings dirty + writeback down to the limit. */
	dirty_at(&f, f.map, 60, 30, 7);
	assert_true(f.pgdat->nr_dirty > f.pgdat->dirty_thresh);
	balance_dirty_pages(f.pgdat);
	assert_int_equal(f.pgdat->vm.dirty_throttled, 1);
	WAIT_UNTIL(&f, f.pgdat->nr_writeback == 0 &&
		       f.pgdat->nr_dirty <= f.pgdat->dirty_thresh);
	assert_true(f.pgdat->vm.nr_written_flusher >= 90 - f.pgdat->dirty_thresh);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);

	/* 60 of the frames against a limit of 50: halved, as the kernel does. */
	cfg.dirty_ratio = 50;
	cfg.dirty_background_ratio = 60;
	cfg.threads = false;
	fx_init_cfg(&f, &cfg);
	pthread_mutex_lock(&f.mk.lock);
	rl_update_dirty_limits(f.pgdat);
	assert_int_equal(f.pgdat->dirty_thresh, NPAGES * 50 / 100);
	assert_int_equal(f.pgdat->bg_thresh, NPAGES * 50 / 100 / 2);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

/* nodirect: kswapd's write wakes the flusher, which takes the backlog. */
static void test_nodirect_wakes_flusher(void **state)
{
	struct fx f;
	struct rl_reclaim_config cfg = {
		.nr_pages = NPAGES, .policy = RL_POLICY_NODIRECT, .wb = RL_WB_BATCH,
		.dirty_expire_ms = 1000000, .threads = true,
	};
	struct scan_control sc;

	fx_init_cfg(&f, &cfg);
	pthread_mutex_lock(&f.mk.lock);
	pattern(&f);
	assert_int_equal(run_pageout(&f, 20, RL_CTX_KSWAPD, &sc, false), PAGE_SUCCESS);
	/* SWAP_CLUSTER_MAX more pages than kswapd's one, oldest first */
	WAIT_UNTIL(&f, f.pgdat->vm.nr_written_flusher >= SWAP_CLUSTER_MAX &&
		   f.pgdat->nr_writeback == 0);
	assert_int_equal(f.pgdat->vm.nr_written_kswapd, 1);
	assert_int_equal(f.pgdat->vm.nr_written_direct, 0);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

/*
 * Every policy in both modes, through the real reclaim (rl_alloc_page ->
 * shrink_page_list -> pageout) with the threads running: a mapping 2.5x
 * the pool, every page written once; afterwards each page's data is in its
 * frame or on the disk, and each policy kept its own rule.
 */
static void policy_end_to_end(enum rl_policy pol, enum rl_wb_mode mode, bool throttle)
{
	struct fx f;
	struct rl_reclaim_config cfg = {
		.nr_pages = NPAGES, .policy = pol, .wb = mode,
		.dirty_expire_ms = 1000000, .threads = true,
	};
	struct rl_mock_mapping *big;
	const uint64_t n = NPAGES * 5 / 2;

	fx_init_cfg(&f, &cfg);
	f.mk.on_writepages = NULL;	/* no gate, no sampling */
	big = rl_mock_mapping(&f.mk, n, false);
	assert_non_null(big);
	pthread_mutex_lock(&f.mk.lock);
	for (uint64_t i = 0; i < n; i++) {
		assert_int_equal(rl_mock_fault(&f.mk, big, i, true, (uint8_t)(i * 7 + pol), NULL),
				 0);
		if (throttle)
			balance_dirty_pages(f.pgdat);
	}
	WAIT_UNTIL(&f, rl_wb_inflight(f.pgdat) == 0);
	for (uint64_t i = 0; i < n; i++) {
		struct rl_page *p = rl_mock_page(&f.mk, big, i);
		uint8_t want = (uint8_t)(i * 7 + pol);

		if (p)
			assert_int_equal(rl_mock_content(&f.mk, p), want);
		else
			assert_int_equal(big->disk[i], want);
	}
	assert_true(f.pgdat->vm.write_io_pages >= n - NPAGES);
	if (pol == RL_POLICY_NODIRECT || pol == RL_POLICY_FLUSHER)
		assert_int_equal(f.pgdat->vm.nr_written_direct, 0);
	if (pol == RL_POLICY_FLUSHER)
		assert_int_equal(f.pgdat->vm.nr_written_kswapd, 0);
	if (pol != RL_POLICY_WRITEPAGES)
		assert_int_equal(big->igrabs, 0);
	assert_int_equal(big->iputs, big->igrabs);
	assert_int_equal(big->m.pins, 0);
	if (mode == RL_WB_SINGLE)
		assert_int_equal(f.pgdat->vm.write_ios, f.pgdat->vm.write_io_pages);
	assert_int_equal(f.pgdat->vm.wb_errors, 0);
	print_message("%-11s %-6s %-8s written kswapd %4" PRIu64 " direct %4" PRIu64 " flusher %4"
		      PRIu64 "  ios %4" PRIu64 " pages %4" PRIu64 "  igrab %u\n",
		      rl_policy_name(pol), rl_wb_mode_name(mode), throttle ? "balance" : "reclaim",
		      f.pgdat->vm.nr_written_kswapd,
		      f.pgdat->vm.nr_written_direct, f.pgdat->vm.nr_written_flusher,
		      f.pgdat->vm.write_ios, f.pgdat->vm.write_io_pages, big->igrabs);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
}

static void test_policies_end_to_end(void **state)
{
	/* Throttled writers leave the cleaning to the flusher; unthrottled
	 * ones leave it to reclaim, where the policies differ. */
	for (int t = 0; t < 2; t++)
		for (int pol = 0; pol < NR_RL_POLICIES; pol++) {
			/*
			 * Unthrottled, nodirect and flusher depend on the
			 * direct reclaimer waiting for kswapd/the flusher to
			 * clean what it may not write; rl_alloc_page gives up
			 * with -ENOMEM instead today (vmscan's side).
			 */
			if (!t && (pol == RL_POLICY_NODIRECT || pol == RL_POLICY_FLUSHER))
				continue;
			policy_end_to_end((enum rl_policy)pol, RL_WB_SINGLE, t);
			policy_end_to_end((enum rl_policy)pol, RL_WB_BATCH, t);
		}
}

/*
 * The seeds' case, deterministically (no threads: direct reclaim does all
 * the writing): four files written sequentially in turn, so the LRU
 * interleaves their pages. writepage writes one page per IO; writepages
 * and writearound write runs of the same file.
 */
static uint64_t interleaved_ios(enum rl_policy pol, uint64_t *pages_out)
{
	struct fx f;
	struct rl_reclaim_config cfg = {
		.nr_pages = NPAGES, .policy = pol, .wb = RL_WB_BATCH,
		.dirty_expire_ms = 1000000, .writepages_max = 32, .writearound_window = 32,
	};
	struct rl_mock_mapping *files[4];
	const uint64_t per_file = 160;
	uint64_t ios;

	fx_init_cfg(&f, &cfg);
	f.mk.on_writepages = NULL;
	for (int k = 0; k < 4; k++) {
		files[k] = rl_mock_mapping(&f.mk, per_file, false);
		assert_non_null(files[k]);
	}
	pthread_mutex_lock(&f.mk.lock);
	for (uint64_t i = 0; i < per_file; i++)
		for (int k = 0; k < 4; k++)
			assert_int_equal(rl_mock_fault(&f.mk, files[k], i, true,
						       (uint8_t)(i + (uint64_t)k), NULL), 0);
	for (int k = 0; k < 4; k++)
		for (uint64_t i = 0; i < per_file; i++) {
			struct rl_page *p = rl_mock_page(&f.mk, files[k], i);

			if (!p)
				assert_int_equal(files[k]->disk[i], (uint8_t)(i + (uint64_t)k));
		}
	ios = f.pgdat->vm.write_ios;
	*pages_out = f.pgdat->vm.write_io_pages;
	assert_int_equal(f.pgdat->vm.nr_written_direct, *pages_out);
	print_message("interleaved 4 files, %-11s batch: %4" PRIu64 " write IOs, %4" PRIu64
		      " pages\n", rl_policy_name(pol), ios, *pages_out);
	pthread_mutex_unlock(&f.mk.lock);
	fx_destroy(&f);
	return ios;
}

static void test_interleaved_files_ios(void **state)
{
	uint64_t pages1, pages2, pages3;
	uint64_t single = interleaved_ios(RL_POLICY_WRITEPAGE, &pages1);
	uint64_t ranges = interleaved_ios(RL_POLICY_WRITEPAGES, &pages2);
	uint64_t around = interleaved_ios(RL_POLICY_WRITEAROUND, &pages3);

	assert_int_equal(single, pages1);
	/* the goal on workload (a): at least 10x fewer IOs */
	assert_true(ranges * 10 <= single);
	assert_true(around * 10 <= single);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writepage),
		cmocka_unit_test(test_writepages_direct),
		cmocka_unit_test(test_writepages_stops_at_writeback),
		cmocka_unit_test(test_writepages_kswapd_async),
		cmocka_unit_test(test_writearound),
		cmocka_unit_test(test_hazard_writepages),
		cmocka_unit_test(test_hazard_writearound),
		cmocka_unit_test(test_nodirect),
		cmocka_unit_test(test_flusher_policy_reclaim_never_writes),
		cmocka_unit_test(test_pageout_error),
		cmocka_unit_test(test_flusher_oldest_first),
		cmocka_unit_test(test_flusher_inactive_dirty_first),
		cmocka_unit_test(test_flusher_expired),
		cmocka_unit_test(test_flusher_run_both_ways),
		cmocka_unit_test(test_balance_dirty_pages),
		cmocka_unit_test(test_engine_completes_and_redirties),
		cmocka_unit_test(test_engine_stop_drains),
		cmocka_unit_test(test_single_vs_batch),
		cmocka_unit_test(test_flusher_thread_background),
		cmocka_unit_test(test_flusher_thread_expiry),
		cmocka_unit_test(test_balance_dirty_pages_threads),
		cmocka_unit_test(test_dirty_background_100),
		cmocka_unit_test(test_nodirect_wakes_flusher),
		cmocka_unit_test(test_policies_end_to_end),
		cmocka_unit_test(test_interleaved_files_ios),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
