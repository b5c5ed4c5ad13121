/* SPDX-License-Identifier: MIT */
/*
 * mm/vmscan.c of ~5.x for one lruvec: shrink_lruvec splits the scan
 * between anon and file (get_scan_count), shrink_active_list deactivates,
 * shrink_inactive_list isolates a batch and shrink_page_list decides each
 * page's fate: keep, activate, write (per policy: pageout, writeback.h) or
 * free, leaving a shadow entry (workingset.c). Freed pages go through
 * rl_free_page, which hands them to the reclaiming thread's open capture
 * (policy capture, page_alloc.c) before the free list.
 *
 * Userspace simplifications, each where it applies:
 *  - "referenced" is the owner's young bit (set by faults), read and
 *    cleared through ops->page_referenced, plus PG_referenced from
 *    mark_page_accessed; there are no executable mappings, so
 *    shrink_active_list deactivates every page it scans.
 *  - one lock (pgdat->lock) instead of the lru lock, i_pages and the page
 *    lock's bit spinning; owner ops that need to sleep drop it.
 *  - no memcg, no unevictable list, no THP, no swap cache: an anonymous
 *    page is written and freed like a file page (writeback.h).
 */
#include <errno.h>
#include <time.h>

#include "lib/lockdep.h"
#include "reclaim/vmscan.h"
#include "reclaim/workingset.h"
#include "reclaim/writeback.h"

/* vm_swappiness */
#define SWAPPINESS		60
#define THROTTLE_MS		100

enum page_references {
	PAGEREF_RECLAIM,
	PAGEREF_RECLAIM_CLEAN,
	PAGEREF_KEEP,
	PAGEREF_ACTIVATE,
};

static bool is_file_lru(enum lru_list lru)
{
	return lru == LRU_INACTIVE_FILE || lru == LRU_ACTIVE_FILE || lru == LRU_INACTIVE_DIRTY;
}

static bool is_active_lru(enum lru_list lru)
{
	return lru == LRU_ACTIVE_ANON || lru == LRU_ACTIVE_FILE;
}

static uint64_t isqrt(uint64_t x)
{
	uint64_t r = 0;

	while ((r + 1) * (r + 1) <= x)
		r++;
	return r;
}

bool inactive_is_low(const struct rl_pgdat *pgdat, bool file)
{
	const uint64_t *nr = pgdat->lruvec.nr;
	uint64_t inactive, active, gb, ratio;

	if (file) {
		inactive = nr[LRU_INACTIVE_FILE] + nr[LRU_INACTIVE_DIRTY];
		active = nr[LRU_ACTIVE_FILE];
	} else {
		inactive = nr[LRU_INACTIVE_ANON];
		active = nr[LRU_ACTIVE_ANON];
	}
	/* inactive_ratio = sqrt(10 * GB) of the pool (4 KiB pages): 1 below
	 * 1 GB, so small pools keep the lists the same size. */
	gb = (uint64_t)pgdat->nr_pages >> (30 - 12);
	ratio = gb ? isqrt(10 * gb) : 1;
	return inactive * ratio < active;
}

/* page_check_references: the ptes' young bits and PG_referenced. Page locked. */
static enum page_references page_check_references(struct rl_page *page)
{
	int referenced_ptes = page->mapping->ops->page_referenced(page);
	bool referenced_page = page->flags & PG_referenced;

	page->flags &= ~PG_referenced;
	if (referenced_ptes) {
		/* Anon pages in use are activated at once: no second chance
		 * as for file pages, whose first touch may be streaming IO. */
		if (PageSwapBacked(page))
			return PAGEREF_ACTIVATE;
		/* A second reference (since the last scan) activates; a
		 * first one only buys another trip through inactive. */
		page->flags |= PG_referenced;
		if (referenced_page || referenced_ptes > 1)
			return PAGEREF_ACTIVATE;
		return PAGEREF_KEEP;
	}
	/* Touched through mark_page_accessed only: reclaim if clean,
	 * leave dirty ones to writeback. */
	if (referenced_page && !PageSwapBacked(page))
		return PAGEREF_RECLAIM_CLEAN;
	return PAGEREF_RECLAIM;
}

static void count_scan(struct rl_pgdat *pgdat, const struct scan_control *sc, uint64_t n)
{
	if (sc->ctx == RL_CTX_KSWAPD)
		pgdat->vm.pgscan_kswapd += n;
	else
		pgdat->vm.pgscan_direct += n;
}

static void count_steal(struct rl_pgdat *pgdat, const struct scan_control *sc, uint64_t n)
{
	if (sc->ctx == RL_CTX_KSWAPD)
		pgdat->vm.pgsteal_kswapd += n;
	else
		pgdat->vm.pgsteal_direct += n;
}

/* Frees a page shrink_page_list has taken from its owner. */
static void reclaim_free_page(struct rl_pgdat *pgdat, struct rl_page *page)
{
	page->flags &= ~PG_isolated;
	pgdat->nr_isolated--;
	rl_free_page(pgdat, page_to_pfn(pgdat, page));
}

uint64_t shrink_page_list(struct rl_pgdat *pgdat, struct rl_page_list *list,
			  struct scan_control *sc)
{
	uint64_t nr_reclaimed = 0;
	struct rl_page *page;

	while ((page = rl_page_list_pop(pgdat, list))) {
		enum page_references references;
		bool file = page_is_file_lru(page);
		int ret;

		if (!trylock_page(page))
			goto keep;

		if (PageWriteback(page)) {
			/*
			 * kswapd meeting a page it already marked for
			 * reclaim: the IO is slow; count it (kswapd then
			 * throttles). Otherwise mark it so that the end of
			 * writeback rotates it to the tail, and move on.
			 */
			if (sc->ctx == RL_CTX_KSWAPD && PageReclaim(page)) {
				sc->nr_immediate++;
			} else {
				page->flags |= PG_reclaim;
				sc->nr_writeback++;
			}
			goto keep_locked;
		}

		references = page_check_references(page);
		switch (references) {
		case PAGEREF_ACTIVATE:
			goto activate_locked;
		case PAGEREF_KEEP:
			goto keep_locked;
		case PAGEREF_RECLAIM:
		case PAGEREF_RECLAIM_CLEAN:
			break;
		}

		if (PageDirty(page)) {
			sc->nr_dirty++;
			if (file && pgdat->cfg.policy == RL_POLICY_FLUSHER) {
				/* seed 004: reclaim never writes; putback
				 * files it on inactive_dirty for the flusher */
				goto keep_locked;
			}
			if (file && !sc->may_writepage) {
				/* seed 000 patch 6: not from direct reclaim */
				sc->nr_unqueued_dirty++;
				goto keep_locked;
			}
			if (references == PAGEREF_RECLAIM_CLEAN)
				goto keep_locked;
			switch (pageout(pgdat, page, sc)) {
			case PAGE_KEEP:
				goto keep_locked;
			case PAGE_ACTIVATE:
				goto activate_locked;
			case PAGE_SUCCESS:
				/* async: it is under writeback now, and will
				 * rotate to the tail when done; sync: clean
				 * unless written to again meanwhile */
				if (PageWriteback(page) || PageDirty(page))
					goto keep_locked;
				break;
			case PAGE_CLEAN:
				break;
			}
		}

		/*
		 * Clean: unmap it and leave the shadow entry. The age is
		 * taken before the owner knows whether it can let go (it
		 * drops the lock); a refused page just ages the clock by one.
		 */
		ret = page->mapping->ops->remove_mapping(page, workingset_eviction(pgdat, page));
		if (ret)
			goto keep_locked;
		/* The owner's page lock went with the pte it replaced. */
		reclaim_free_page(pgdat, page);
		nr_reclaimed++;
		continue;

activate_locked:
		if (!PageActive(page)) {
			page->flags |= PG_active;
			pgdat->vm.pgactivate++;
			sc->nr_activated++;
			pgdat->lruvec.recent_rotated[file]++;
		}
keep_locked:
		unlock_page(page);
keep:
		putback_lru_page(pgdat, page);
	}
	sc->nr_reclaimed += nr_reclaimed;
	/* isolated pages are back: rl_page_cache_delete may be waiting */
	pthread_cond_broadcast(pgdat->wait);
	return nr_reclaimed;
}

uint64_t shrink_inactive_list(struct rl_pgdat *pgdat, uint32_t nr_to_scan,
			      struct scan_control *sc, enum lru_list lru)
{
	struct rl_page_list list;
	uint64_t nr_scanned = 0, nr_reclaimed;
	uint32_t taken;

	rl_page_list_init(&list);
	taken = isolate_lru_pages(pgdat, nr_to_scan, lru, &list, &nr_scanned);
	sc->nr_scanned += nr_scanned;
	count_scan(pgdat, sc, nr_scanned);
	pgdat->lruvec.recent_scanned[is_file_lru(lru)] += taken;
	if (!taken)
		return 0;
	nr_reclaimed = shrink_page_list(pgdat, &list, sc);
	count_steal(pgdat, sc, nr_reclaimed);
	return nr_reclaimed;
}

void shrink_active_list(struct rl_pgdat *pgdat, uint32_t nr_to_scan, struct scan_control *sc,
			enum lru_list lru)
{
	struct rl_page_list hold;
	uint64_t nr_scanned = 0, nr_rotated = 0, nr_deactivated = 0;
	bool file = is_file_lru(lru);
	struct rl_page *page;

	rl_page_list_init(&hold);
	isolate_lru_pages(pgdat, nr_to_scan, lru, &hold, &nr_scanned);
	pgdat->lruvec.recent_scanned[file] += hold.nr;
	while ((page = rl_page_list_pop(pgdat, &hold))) {
		/* page_referenced wants the page locked; a page its owner
		 * holds is in use: leave it active */
		if (!trylock_page(page)) {
			putback_lru_page(pgdat, page);
			continue;
		}
		/* Consumes the young bit, as the kernel's does; referenced
		 * pages count as rotated (they weigh against scanning this
		 * type) but, with no VM_EXEC mappings here, all move on. */
		if (page->mapping->ops->page_referenced(page))
			nr_rotated++;
		unlock_page(page);
		page->flags &= ~PG_active;
		page->flags |= PG_workingset;	/* it was active: a refault of it is thrashing */
		putback_lru_page(pgdat, page);
		nr_deactivated++;
	}
	pgdat->lruvec.recent_rotated[file] += nr_rotated;
	pgdat->vm.pgdeactivate += nr_deactivated;
	(void)sc;
	pthread_cond_broadcast(pgdat->wait);
}

static uint64_t shrink_list(struct rl_pgdat *pgdat, enum lru_list lru, uint32_t nr_to_scan,
			    struct scan_control *sc)
{
	if (is_active_lru(lru)) {
		if (inactive_is_low(pgdat, is_file_lru(lru)))
			shrink_active_list(pgdat, nr_to_scan, sc, lru);
		return 0;
	}
	return shrink_inactive_list(pgdat, nr_to_scan, sc, lru);
}

/*
 * get_scan_count, the pre-5.9 recent_rotated/recent_scanned form: scan
 * size >> priority of each list, split between anon and file in
 * proportion to swappiness and to how much of each type turned out to be
 * in use (rotated) versus scanned.
 */
static void get_scan_count(const struct rl_pgdat *pgdat, const struct scan_control *sc,
			   uint64_t nr[NR_LRU_LISTS])
{
	const struct rl_lruvec *v = &pgdat->lruvec;
	uint64_t anon = v->nr[LRU_INACTIVE_ANON] + v->nr[LRU_ACTIVE_ANON];
	uint64_t file = v->nr[LRU_INACTIVE_FILE] + v->nr[LRU_ACTIVE_FILE];
	uint64_t ap, fp, fraction[2], denominator;
	enum { SCAN_FRACT, SCAN_EQUAL, SCAN_ANON, SCAN_FILE } balance = SCAN_FRACT;

	if (!anon)
		balance = SCAN_FILE;
	else if (!file)
		balance = SCAN_ANON;
	else if (!sc->priority)
		balance = SCAN_EQUAL;	/* out of options: scan everything */
	else if (!inactive_is_low(pgdat, true) && (v->nr[LRU_INACTIVE_FILE] >> sc->priority))
		balance = SCAN_FILE;	/* enough inactive cache: leave anon alone */

	ap = (uint64_t)SWAPPINESS * (v->recent_scanned[0] + 1) / (v->recent_rotated[0] + 1);
	fp = (uint64_t)(200 - SWAPPINESS) * (v->recent_scanned[1] + 1) / (v->recent_rotated[1] + 1);
	fraction[0] = ap;
	fraction[1] = fp;
	denominator = ap + fp;
	for (int lru = 0; lru < NR_LRU_LISTS; lru++) {
		bool f = is_file_lru((enum lru_list)lru);
		uint64_t scan;

		/* inactive_dirty (policy flusher) is the flusher's, never scanned */
		if (lru == LRU_INACTIVE_DIRTY) {
			nr[lru] = 0;
			continue;
		}
		scan = v->nr[lru] >> sc->priority;
		switch (balance) {
		case SCAN_EQUAL:
			break;
		case SCAN_FRACT:
			scan = denominator ? scan * fraction[f] / denominator : scan;
			/* a list that has pages gets at least one look at
			 * this priority, or small types starve forever */
			if (!scan && (v->nr[lru] >> sc->priority))
				scan = 1;
			break;
		case SCAN_FILE:
			if (!f)
				scan = 0;
			break;
		case SCAN_ANON:
			if (f)
				scan = 0;
			break;
		}
		nr[lru] = scan;
	}
}

void shrink_lruvec(struct rl_pgdat *pgdat, struct scan_control *sc)
{
	static const enum lru_list order[] = {
		LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE,
	};
	uint64_t nr[NR_LRU_LISTS];
	bool more = true;

	get_scan_count(pgdat, sc, nr);
	while (more) {
		more = false;
		for (unsigned i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
			enum lru_list lru = order[i];
			uint32_t n;

			if (!nr[lru])
				continue;
			n = nr[lru] < SWAP_CLUSTER_MAX ? (uint32_t)nr[lru] : SWAP_CLUSTER_MAX;
			nr[lru] -= n;
			shrink_list(pgdat, lru, n, sc);
			more |= nr[lru] != 0;
		}
		/* Unlike the kernel's proportional cut-off, stop at the
		 * target: the pools are small and the target is a batch. */
		if (sc->nr_reclaimed >= sc->nr_to_reclaim)
			break;
	}
	/* Even when anon was not scanned, age it so it can be later. */
	if (inactive_is_low(pgdat, false))
		shrink_active_list(pgdat, SWAP_CLUSTER_MAX, sc, LRU_ACTIVE_ANON);
}

void reclaim_throttle(struct rl_pgdat *pgdat, unsigned timeout_ms)
{
	uint64_t t0 = rl_now_ns();
	struct timespec ts;

	/* pgdat->wait uses the default clock (CLOCK_REALTIME) */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pgdat->vm.throttled++;
	pthread_cond_timedwait(pgdat->wait, pgdat->lock, &ts);
	rl_hist_add(&pgdat->lat.throttle, rl_now_ns() - t0);
}

uint64_t try_to_free_pages(struct rl_pgdat *pgdat, uint64_t nr_to_reclaim, int *err)
{
	struct scan_control sc = {
		.nr_to_reclaim = nr_to_reclaim,
		.ctx = RL_CTX_DIRECT,
		.may_writepage = pgdat->cfg.policy != RL_POLICY_NODIRECT,
		.may_unmap = true,
	};
	uint64_t t0 = rl_now_ns();
	bool throttled = false;

	pgdat->vm.allocstall++;
	/* fs_reclaim_acquire: PF_MEMALLOC for the checker. */
	rl_lockdep_enter(RL_CTX_RECLAIM);
	for (sc.priority = DEF_PRIORITY; sc.priority >= 0; sc.priority--) {
		uint64_t writeback0 = sc.nr_writeback + sc.nr_immediate;
		uint64_t reclaimed0 = sc.nr_reclaimed;

		shrink_lruvec(pgdat, &sc);
		if (sc.nr_reclaimed >= nr_to_reclaim)
			break;
		/* Dirty pages this reclaimer may not write (nodirect) or
		 * that live on inactive_dirty (flusher): get them cleaned. */
		if (sc.nr_unqueued_dirty ||
		    (pgdat->cfg.policy == RL_POLICY_FLUSHER && pgdat->lruvec.nr[LRU_INACTIVE_DIRTY])) {
			wakeup_flusher_threads(pgdat, nr_to_reclaim);
			wakeup_kswapd(pgdat);
		}
		/* A pass that found only pages under writeback: wait for
		 * some to complete (once per stall) rather than burn through
		 * the priorities. */
		if (!throttled && sc.nr_reclaimed == reclaimed0 &&
		    sc.nr_writeback + sc.nr_immediate > writeback0) {
			throttled = true;
			reclaim_throttle(pgdat, THROTTLE_MS);
		}
	}
	rl_lockdep_leave(RL_CTX_RECLAIM);
	rl_hist_add(&pgdat->lat.direct_stall, rl_now_ns() - t0);
	if (err)
		*err = sc.nr_reclaimed ? 0 : sc.last_error;
	return sc.nr_reclaimed;
}
