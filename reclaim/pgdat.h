/* SPDX-License-Identifier: MIT */
/*
 * The pool of frames (struct pglist_data, one node, one zone) and its page
 * allocator: free list, LRU lists (one lruvec), watermarks, dirty
 * accounting, the writeback policy of the run, vmstat counters and latency
 * histograms. kswapd, the flusher and the writeback engine hang off it.
 *
 * The owner (the pager) creates one pgdat with a budget of nr_pages frames;
 * page numbers 0..nr_pages-1 are frame numbers. Every function here is
 * called with *pgdat->lock held unless its comment says otherwise, and may
 * drop and retake it only where it says so.
 */
#ifndef RECLAIMLAB_RECLAIM_PGDAT_H
#define RECLAIMLAB_RECLAIM_PGDAT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/hist.h"
#include "reclaim/page.h"

/* Writeback policies (--policy), the sides of the seeds' argument. */
enum rl_policy {
	RL_POLICY_WRITEPAGE,	/* 2.6.34: single-page ->writepage from any reclaim, sync */
	RL_POLICY_WRITEPAGES,	/* seed 000 patch 5: a range of the inode, inode pinned */
	RL_POLICY_WRITEAROUND,	/* seed 003: a window around the page, pinned by its lock */
	RL_POLICY_NODIRECT,	/* seed 000 patch 6: direct reclaim never writes */
	RL_POLICY_FLUSHER,	/* seed 004: inactive_dirty/clean lists, oldest first */
	RL_POLICY_CAPTURE,	/* seed 002: multi-page allocations capture what they free */
	NR_RL_POLICIES,
};

/* --wb: how a run of pages reaches the disk. */
enum rl_wb_mode {
	RL_WB_SINGLE,		/* one write per page */
	RL_WB_BATCH,		/* one write per contiguous run after delalloc conversion */
};

/* "writepage" ... "capture"; NULL if out of range. */
const char *rl_policy_name(enum rl_policy p);
/* 0 with *p, or -EINVAL. */
int rl_policy_parse(const char *s, enum rl_policy *p);
const char *rl_wb_mode_name(enum rl_wb_mode m);
int rl_wb_mode_parse(const char *s, enum rl_wb_mode *m);

struct rl_reclaim_config {
	uint32_t nr_pages;		/* the budget (>= 64) */
	enum rl_policy policy;
	enum rl_wb_mode wb;
	/* Watermarks in free pages; 0 = defaults (min = max(8, nr/256),
	 * low = min * 5/4 + nr/512, high = min * 3/2 + nr/256, as
	 * __setup_per_zone_wmarks with watermark_scale_factor 10). */
	uint32_t wmark_min, wmark_low, wmark_high;
	/* vm.dirty_ratio / dirty_background_ratio, percent of nr_pages;
	 * 0 = defaults 20 / 10. */
	unsigned dirty_ratio, dirty_background_ratio;
	/* vm.dirty_expire_centisecs, in ms; 0 = 3000 (shorter than the
	 * kernel's 30 s: runs here last seconds). */
	unsigned dirty_expire_ms;
	/* Pages per writepages range (policy 2) / writearound window (policy
	 * 3, centred on the target); 0 = 32 / 32. */
	uint32_t writepages_max, writearound_window;
	/* Fault injection: milliseconds reclaim sleeps before the iput of an
	 * inode it pinned for writeback (writepages), lock dropped. Widens
	 * seed 003's window, in which an unmap can make that iput the last. */
	unsigned iput_delay_ms;
	/* Writeback requests in flight at once (async writeback); 0 = 8. */
	unsigned wb_queue_depth;
	/* Start the kswapd and flusher threads (tests drive them by hand). */
	bool threads;
	/* The owner's lock (protects pages, lists, counters) and the condition
	 * on which page-lock, writeback and free-page waiters sleep. */
	pthread_mutex_t *lock;
	pthread_cond_t *wait;
};

/* vmstat: /proc/vmstat's names where the kernel has one. */
struct rl_vmstat {
	uint64_t pgalloc, pgfree;
	uint64_t pgscan_kswapd, pgscan_direct;
	uint64_t pgsteal_kswapd, pgsteal_direct;	/* reclaimed */
	uint64_t pgactivate, pgdeactivate, pgrotated;
	uint64_t workingset_refault, workingset_activate, workingset_restore;
	uint64_t nr_written_kswapd, nr_written_direct, nr_written_flusher, nr_written_sync;
	uint64_t write_ios, write_io_pages;		/* IOs the policy issued, pages in them */
	uint64_t kswapd_wake, kswapd_low_wmark_hit, kswapd_high_wmark_hit;
	uint64_t allocstall;				/* direct reclaim entries */
	uint64_t throttled;				/* reclaim_throttle (congestion wait) */
	uint64_t dirty_throttled;			/* balance_dirty_pages pauses */
	uint64_t nr_dirtied;				/* pages that became dirty */
	uint64_t flusher_passes;
	uint64_t capture_success, capture_fail;
	uint64_t nr_final_iput_reclaim;			/* reclaim's iput was the last (seed 003) */
	uint64_t wb_errors;
};

/* Latency histograms, nanoseconds. */
struct rl_latency {
	struct rl_hist direct_stall;	/* each try_to_free_pages, entry to return */
	struct rl_hist alloc;		/* each rl_alloc_page(s) that had to wait or reclaim */
	struct rl_hist fault;		/* recorded by the owner: a whole fault */
	struct rl_hist throttle;	/* reclaim_throttle and balance_dirty_pages waits */
};

struct rl_lruvec {
	uint32_t head[NR_LRU_LISTS], tail[NR_LRU_LISTS];	/* head = newest */
	uint64_t nr[NR_LRU_LISTS];
	/* workingset: evictions so far (the nonresident age clock) */
	uint64_t nonresident_age;
	/* shrink_active_list balance (inactive_is_low) */
	uint64_t recent_rotated[2], recent_scanned[2];	/* [anon, file] */
};

struct rl_wb;		/* wb.h */
struct rl_kswapd;	/* vmscan.h */
struct rl_flusher;	/* writeback.h */

struct rl_pgdat {
	struct rl_reclaim_config cfg;
	pthread_mutex_t *lock;
	pthread_cond_t *wait;
	struct rl_page *pages;			/* nr_pages */
	uint32_t nr_pages;
	uint32_t free_head;			/* singly linked through page->next */
	uint32_t nr_free;
	uint32_t wmark_min, wmark_low, wmark_high;
	uint32_t dirty_thresh, bg_thresh;	/* in pages */
	uint64_t nr_dirty;			/* dirty file pages (NR_FILE_DIRTY) */
	uint64_t nr_writeback, nr_isolated;
	uint64_t peak_used;
	int last_wb_error;			/* -errno of the latest failed writeback, 0 = none */
	uint64_t clock;				/* ms since creation, for dirty expiry */
	uint64_t epoch_ns;			/* rl_now_ns() at creation (clock's origin) */
	struct rl_lruvec lruvec;
	struct rl_vmstat vm;
	struct rl_latency lat;
	struct rl_wb *wb;
	struct rl_kswapd *kswapd;
	struct rl_flusher *flusher;
	struct rl_capture_control *capture;	/* open captures (policy capture) */
	bool stopping;
};

static inline struct rl_page *pfn_to_page(struct rl_pgdat *pgdat, uint32_t pfn)
{
	return &pgdat->pages[pfn];
}

static inline uint32_t page_to_pfn(const struct rl_pgdat *pgdat, const struct rl_page *page)
{
	return (uint32_t)(page - pgdat->pages);
}

/* Without the lock. -EINVAL for a bad config, -ENOMEM. Starts kswapd, the
 * flusher and the writeback engine when cfg->threads. */
int rl_pgdat_init(struct rl_pgdat *pgdat, const struct rl_reclaim_config *cfg);
/* Without the lock: stops the threads (waiting for writeback in flight). */
void rl_pgdat_stop(struct rl_pgdat *pgdat);
void rl_pgdat_destroy(struct rl_pgdat *pgdat);

/*
 * __alloc_pages(order 0) for page `index` of m: a free page, taken off the
 * free list with mapping/index set, not on any LRU. Below the low watermark
 * it wakes kswapd; when no free page is left (or below min) the calling
 * thread reclaims itself (try_to_free_pages, on its own stack), throttled
 * while writeback is in flight. May drop and retake the lock. Returns 0
 * with *pfn, or -ENOMEM when nothing can be reclaimed (every page pinned,
 * or writeback keeps failing: the last error, e.g. -ENOSPC, is returned).
 */
int rl_alloc_page(struct rl_pgdat *pgdat, struct rl_mapping *m, uint64_t index, uint32_t *pfn);
/*
 * n pages at once (a fault-around of n pages, policy `capture`'s
 * multi-frame allocation): all or nothing, same rules. With policy
 * capture, pages freed by this thread's own direct reclaim are handed to
 * it before any other allocator sees them (seed 002). mapping/index of
 * each page are set by the caller.
 */
int rl_alloc_pages(struct rl_pgdat *pgdat, unsigned n, uint32_t *pfns);
/* Back to the free list (the page is off the LRU, clean, unlocked by its owner). */
void rl_free_page(struct rl_pgdat *pgdat, uint32_t pfn);

/*
 * lru_cache_add after the owner filled the page: onto the inactive list of
 * its type, or, when shadow says it refaulted within the working set
 * (workingset_refault), the active list. shadow 0 = first touch.
 */
void rl_lru_cache_add(struct rl_pgdat *pgdat, uint32_t pfn, uint32_t shadow);
/* mark_page_accessed: inactive,unreferenced -> inactive,referenced ->
 * active (the owner calls it on a fault that touched a resident page). */
void rl_mark_page_accessed(struct rl_pgdat *pgdat, uint32_t pfn);
/*
 * The page is leaving its mapping outside reclaim (munmap, discard, the
 * client exits): waits for writeback and for reclaim to put it back if it
 * holds it isolated (may drop the lock), takes it off the LRU, drops its
 * dirty accounting. The owner frees it with rl_free_page. The owner must
 * not hold the page's lock (trylock_page) across the call: reclaim may be
 * waiting for that lock before it can let go of the page.
 */
void rl_page_cache_delete(struct rl_pgdat *pgdat, uint32_t pfn);

/* set_page_dirty / account_page_dirtied: the owner saw the first write. */
void rl_set_page_dirty(struct rl_pgdat *pgdat, uint32_t pfn);
/* clear_page_dirty_for_io: before the owner writes a page itself (msync). */
bool rl_clear_page_dirty_for_io(struct rl_pgdat *pgdat, uint32_t pfn);
/* Writeback state around IO the owner does itself. */
void rl_set_page_writeback(struct rl_pgdat *pgdat, uint32_t pfn);
/* end_page_writeback: clears PG_writeback, rotates PG_reclaim pages to the
 * inactive tail, wakes waiters; err != 0 redirties the page. */
void rl_end_page_writeback(struct rl_pgdat *pgdat, uint32_t pfn, int err);
/* wait_on_page_writeback (drops the lock while waiting). */
void rl_wait_on_page_writeback(struct rl_pgdat *pgdat, uint32_t pfn);

/* Free pages below the watermark? (zone_watermark_ok's negation) */
bool rl_below_wmark(const struct rl_pgdat *pgdat, uint32_t wmark);

/* Milliseconds since the pgdat was made (CLOCK_MONOTONIC); updates pgdat->clock. */
uint64_t rl_pgdat_now_ms(struct rl_pgdat *pgdat);
/* CLOCK_MONOTONIC in ns, for latency samples. */
uint64_t rl_now_ns(void);

#endif
