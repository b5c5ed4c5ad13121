/* SPDX-License-Identifier: MIT */
/*
 * The pool's page allocator (mm/page_alloc.c for one zone, order 0):
 * pgdat setup, watermarks, the free list, and the allocation slow path
 * that wakes kswapd, reclaims on the caller's stack and throttles while
 * writeback is in flight. Policy capture (seed 002): a direct reclaimer
 * registers a capture_control and the pages its own reclaim frees go to
 * it, not to the free list where a concurrent allocator would take them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/lockdep.h"
#include "reclaim/vmscan.h"
#include "reclaim/wb.h"
#include "reclaim/writeback.h"

/* should_reclaim_retry's MAX_RECLAIM_RETRIES: direct reclaim rounds that
 * free nothing (with no writeback to wait for) before giving up. */
#define MAX_RECLAIM_RETRIES	16
/* congestion_wait(HZ/10) */
#define THROTTLE_MS		100

/*
 * The kernel keeps current->capture_control; a thread here has at most one
 * open capture too (direct reclaim does not recurse), so it is
 * thread-local. pgdat->capture lists the open ones, for inspection.
 */
struct rl_capture_control {
	struct rl_capture_control *next;
	const struct rl_pgdat *pgdat;
	unsigned want, got;
	uint32_t *pfns;			/* the captured pages */
};

static _Thread_local struct rl_capture_control *current_capture;

uint64_t rl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t rl_pgdat_now_ms(struct rl_pgdat *pgdat)
{
	pgdat->clock = (rl_now_ns() - pgdat->epoch_ns) / 1000000u;
	return pgdat->clock;
}

bool rl_below_wmark(const struct rl_pgdat *pgdat, uint32_t wmark)
{
	return pgdat->nr_free < wmark;
}

static int setup_wmarks(struct rl_pgdat *pgdat, const struct rl_reclaim_config *cfg)
{
	uint32_t nr = cfg->nr_pages;
	uint32_t min = cfg->wmark_min ? cfg->wmark_min : (nr / 256 > 8 ? nr / 256 : 8);

	pgdat->wmark_min = min;
	pgdat->wmark_low = cfg->wmark_low ? cfg->wmark_low : min * 5 / 4 + nr / 512;
	pgdat->wmark_high = cfg->wmark_high ? cfg->wmark_high : min * 3 / 2 + nr / 256;
	if (pgdat->wmark_min > pgdat->wmark_low || pgdat->wmark_low > pgdat->wmark_high ||
	    pgdat->wmark_high >= nr / 2)
		return -EINVAL;
	return 0;
}

int rl_pgdat_init(struct rl_pgdat *pgdat, const struct rl_reclaim_config *cfg)
{
	int ret;

	memset(pgdat, 0, sizeof(*pgdat));
	if (!cfg || cfg->nr_pages < 64 || cfg->nr_pages == RL_NO_PAGE || !cfg->lock ||
	    !cfg->wait || (unsigned)cfg->policy >= NR_RL_POLICIES ||
	    (cfg->wb != RL_WB_SINGLE && cfg->wb != RL_WB_BATCH) ||
	    cfg->dirty_ratio > 100 || cfg->dirty_background_ratio > 100)
		return -EINVAL;
	pgdat->cfg = *cfg;
	if (!pgdat->cfg.dirty_ratio)
		pgdat->cfg.dirty_ratio = 20;
	if (!pgdat->cfg.dirty_background_ratio)
		pgdat->cfg.dirty_background_ratio = 10;
	if (!pgdat->cfg.dirty_expire_ms)
		pgdat->cfg.dirty_expire_ms = 3000;
	if (!pgdat->cfg.writepages_max)
		pgdat->cfg.writepages_max = 32;
	if (!pgdat->cfg.writearound_window)
		pgdat->cfg.writearound_window = 32;
	if (!pgdat->cfg.wb_queue_depth)
		pgdat->cfg.wb_queue_depth = 8;
	ret = setup_wmarks(pgdat, cfg);
	if (ret)
		return ret;
	pgdat->lock = cfg->lock;
	pgdat->wait = cfg->wait;
	pgdat->nr_pages = cfg->nr_pages;
	pgdat->pages = calloc(cfg->nr_pages, sizeof(*pgdat->pages));
	if (!pgdat->pages)
		return -ENOMEM;
	/* Free list in pfn order, so a fresh pool hands out 0, 1, 2, ... */
	for (uint32_t i = 0; i < cfg->nr_pages; i++) {
		struct rl_page *p = &pgdat->pages[i];

		p->prev = RL_NO_PAGE;
		p->next = i + 1 < cfg->nr_pages ? i + 1 : RL_NO_PAGE;
		p->lru = LRU_NONE;
	}
	pgdat->free_head = 0;
	pgdat->nr_free = cfg->nr_pages;
	for (int l = 0; l < NR_LRU_LISTS; l++)
		pgdat->lruvec.head[l] = pgdat->lruvec.tail[l] = RL_NO_PAGE;
	/* The writeback role's rl_update_dirty_limits refines these; the
	 * ratios of the pool are all a fresh pgdat needs. */
	pgdat->dirty_thresh = (uint32_t)((uint64_t)cfg->nr_pages * pgdat->cfg.dirty_ratio / 100);
	pgdat->bg_thresh = (uint32_t)((uint64_t)cfg->nr_pages *
				      pgdat->cfg.dirty_background_ratio / 100);
	rl_hist_init(&pgdat->lat.direct_stall);
	rl_hist_init(&pgdat->lat.alloc);
	rl_hist_init(&pgdat->lat.fault);
	rl_hist_init(&pgdat->lat.throttle);
	pgdat->epoch_ns = rl_now_ns();
	if (!cfg->threads)
		return 0;
	ret = rl_wb_start(pgdat, pgdat->cfg.wb_queue_depth);
	if (!ret) {
		ret = kswapd_run(pgdat);
		if (!ret) {
			ret = rl_flusher_run(pgdat);
			if (ret)
				kswapd_stop(pgdat);
		}
		if (ret)
			rl_wb_stop(pgdat);
	}
	if (ret) {
		free(pgdat->pages);
		pgdat->pages = NULL;
	}
	return ret;
}

void rl_pgdat_stop(struct rl_pgdat *pgdat)
{
	pthread_mutex_lock(pgdat->lock);
	if (pgdat->stopping || !pgdat->cfg.threads) {
		pgdat->stopping = true;
		pthread_mutex_unlock(pgdat->lock);
		return;
	}
	pgdat->stopping = true;
	pthread_cond_broadcast(pgdat->wait);
	pthread_mutex_unlock(pgdat->lock);
	/* Reclaim and the flusher queue writeback: stop them before the
	 * engine drains what they queued. */
	kswapd_stop(pgdat);
	rl_flusher_stop(pgdat);
	rl_wb_stop(pgdat);
}

void rl_pgdat_destroy(struct rl_pgdat *pgdat)
{
	free(pgdat->pages);
	pgdat->pages = NULL;
}

static void free_list_push(struct rl_pgdat *pgdat, uint32_t pfn)
{
	struct rl_page *page = pfn_to_page(pgdat, pfn);

	page->next = pgdat->free_head;
	page->prev = RL_NO_PAGE;
	pgdat->free_head = pfn;
	pgdat->nr_free++;
}

static uint32_t free_list_pop(struct rl_pgdat *pgdat)
{
	uint32_t pfn = pgdat->free_head;
	struct rl_page *page = pfn_to_page(pgdat, pfn);

	pgdat->free_head = page->next;
	page->next = RL_NO_PAGE;
	pgdat->nr_free--;
	return pfn;
}

void rl_free_page(struct rl_pgdat *pgdat, uint32_t pfn)
{
	struct rl_page *page = pfn_to_page(pgdat, pfn);
	struct rl_capture_control *cc = current_capture;

	page->flags = 0;
	page->mapping = NULL;
	page->index = 0;
	page->lru = LRU_NONE;
	page->order_tag = 0;
	pgdat->vm.pgfree++;
	if (cc && cc->pgdat == pgdat && cc->got < cc->want) {
		/* seed 002: this thread freed it for itself */
		page->flags = PG_capture;
		page->order_tag = 1;
		page->prev = page->next = RL_NO_PAGE;
		cc->pfns[cc->got++] = pfn;
		return;
	}
	free_list_push(pgdat, pfn);
	pthread_cond_broadcast(pgdat->wait);
}

static void capture_open(struct rl_pgdat *pgdat, struct rl_capture_control *cc)
{
	cc->next = pgdat->capture;
	pgdat->capture = cc;
	current_capture = cc;
}

static void capture_close(struct rl_pgdat *pgdat, struct rl_capture_control *cc)
{
	struct rl_capture_control **pp = &pgdat->capture;

	while (*pp && *pp != cc)
		pp = &(*pp)->next;
	if (*pp)
		*pp = cc->next;
	current_capture = NULL;
}

/* Gives back what a failed allocation had captured. */
static void capture_release(struct rl_pgdat *pgdat, struct rl_capture_control *cc)
{
	while (cc->got) {
		uint32_t pfn = cc->pfns[--cc->got];

		pfn_to_page(pgdat, pfn)->flags = 0;
		pfn_to_page(pgdat, pfn)->order_tag = 0;
		free_list_push(pgdat, pfn);
	}
	pthread_cond_broadcast(pgdat->wait);
}

static void take_pages(struct rl_pgdat *pgdat, struct rl_capture_control *cc, unsigned n,
		       uint32_t *pfns)
{
	unsigned i = 0;

	for (; i < cc->got && i < n; i++) {
		struct rl_page *page = pfn_to_page(pgdat, cc->pfns[i]);

		page->flags = 0;
		page->order_tag = 0;
		pfns[i] = cc->pfns[i];
	}
	for (; i < n; i++)
		pfns[i] = free_list_pop(pgdat);
	pgdat->vm.pgalloc += n;
	if (pgdat->nr_pages - pgdat->nr_free > pgdat->peak_used)
		pgdat->peak_used = pgdat->nr_pages - pgdat->nr_free;
}

/* What other threads' reclaim and writeback have done, to tell a wait
 * that made progress from one that did not. */
struct progress {
	uint64_t pgfree, written, rotated, dirty, writeback;
};

static struct progress progress_of(const struct rl_pgdat *pgdat)
{
	const struct rl_vmstat *vm = &pgdat->vm;

	return (struct progress){
		.pgfree = vm->pgfree,
		.written = vm->nr_written_kswapd + vm->nr_written_flusher + vm->nr_written_direct,
		.rotated = vm->pgrotated,
		.dirty = pgdat->nr_dirty,
		.writeback = pgdat->nr_writeback,
	};
}

static bool same_progress(const struct progress *a, const struct rl_pgdat *pgdat)
{
	struct progress b = progress_of(pgdat);

	return a->pgfree == b.pgfree && a->written == b.written && a->rotated == b.rotated &&
	       a->dirty == b.dirty && a->writeback == b.writeback;
}

/*
 * __alloc_pages_slowpath, reduced: fast path while free stays above min
 * (kswapd woken below low); else reclaim on this thread and retry. Gives
 * up after MAX_RECLAIM_RETRIES rounds without progress, taking the last
 * free pages below min before failing (there is no OOM killer to wait for).
 */
static int alloc_pages_locked(struct rl_pgdat *pgdat, unsigned n, uint32_t *pfns)
{
	uint32_t captured[SWAP_CLUSTER_MAX];
	uint32_t *cpfns = n <= SWAP_CLUSTER_MAX ? captured : malloc(n * sizeof(uint32_t));
	struct rl_capture_control cc = { .pgdat = pgdat, .want = n, .pfns = cpfns };
	bool capture = pgdat->cfg.policy == RL_POLICY_CAPTURE;
	uint64_t t0 = 0, wb_errors0 = pgdat->vm.wb_errors;
	unsigned no_progress = 0;
	int last_err = 0, ret = 0;

	if (!cpfns)
		return -ENOMEM;
	/* might_alloc: whatever the caller holds may be waited for by reclaim
	 * from now on, whether or not this one gets to reclaim. */
	rl_lockdep_might_reclaim();
	for (;;) {
		if (cc.got + pgdat->nr_free >= n + pgdat->wmark_min ||
		    (no_progress >= MAX_RECLAIM_RETRIES && cc.got + pgdat->nr_free >= n)) {
			take_pages(pgdat, &cc, n, pfns);
			/* the allocation that takes free pages below low
			 * wakes kswapd, so the next ones need not reclaim */
			wakeup_kswapd(pgdat);
			break;
		}
		wakeup_kswapd(pgdat);
		if (no_progress >= MAX_RECLAIM_RETRIES) {
			capture_release(pgdat, &cc);
			ret = last_err ? last_err : -ENOMEM;
			break;
		}
		if (!t0)
			t0 = rl_now_ns();

		int err = 0;
		unsigned got0 = cc.got;
		uint64_t freed;

		if (capture) {
			cc.want = n;
			capture_open(pgdat, &cc);
		}
		freed = try_to_free_pages(pgdat, n > SWAP_CLUSTER_MAX ? n : SWAP_CLUSTER_MAX, &err);
		if (capture) {
			capture_close(pgdat, &cc);
			if (cc.got >= n)
				pgdat->vm.capture_success++;
			else
				pgdat->vm.capture_fail++;
		}
		if (err)
			last_err = err;
		if (pgdat->vm.wb_errors != wb_errors0 && !last_err)
			last_err = pgdat->last_wb_error ? pgdat->last_wb_error : -EIO;
		if (freed || cc.got > got0) {
			no_progress = 0;
			continue;
		}
		/*
		 * Nothing freed, but pages are on their way to being
		 * reclaimable: under writeback, isolated by another
		 * reclaimer, or dirty with kswapd/the flusher there to clean
		 * them (nodirect, flusher). Wait for them; it counts as a
		 * failed round only when a whole wait passed with nothing
		 * moving at all.
		 */
		if ((pgdat->nr_writeback || pgdat->nr_isolated ||
		     (pgdat->nr_dirty && (pgdat->kswapd || pgdat->flusher))) && !last_err) {
			struct progress before = progress_of(pgdat);
			uint64_t w0 = rl_now_ns();

			reclaim_throttle(pgdat, THROTTLE_MS);
			if (!same_progress(&before, pgdat))
				no_progress = 0;
			else if (rl_now_ns() - w0 >= THROTTLE_MS * 1000000ull)
				no_progress++;
			continue;
		}
		no_progress++;
	}
	if (t0)
		rl_hist_add(&pgdat->lat.alloc, rl_now_ns() - t0);
	if (cpfns != captured)
		free(cpfns);
	return ret;
}

int rl_alloc_page(struct rl_pgdat *pgdat, struct rl_mapping *m, uint64_t index, uint32_t *pfn)
{
	int ret;

	if (!m || !pfn)
		return -EINVAL;
	ret = alloc_pages_locked(pgdat, 1, pfn);
	if (ret)
		return ret;

	struct rl_page *page = pfn_to_page(pgdat, *pfn);

	page->mapping = m;
	page->index = index;
	page->flags = m->swapbacked ? PG_swapbacked : 0;
	return 0;
}

int rl_alloc_pages(struct rl_pgdat *pgdat, unsigned n, uint32_t *pfns)
{
	if (n == 0 || n > pgdat->nr_pages / 2 || !pfns)
		return -EINVAL;
	return alloc_pages_locked(pgdat, n, pfns);
}
