/* SPDX-License-Identifier: MIT */
/*
 * What reclaim does with a dirty page, per policy (the seeds' argument),
 * and mm/page-writeback.c: dirty limits, balance_dirty_pages, and the
 * flusher thread (bdi writeback: background and expired pages).
 *
 * pageout() is called by shrink_page_list for a dirty, locked, isolated
 * page at the tail of the inactive list:
 *
 *   writepage    single-page write of this page, synchronous, from kswapd and
 *                direct reclaim alike (2.6.34).
 *   writepages   this page and the dirty pages of the same mapping that follow
 *                it, up to writepages_max (one run), the mapping pinned with
 *                igrab and every page lock released during the IO; iput after
 *                (seed 000 patch 5). Asynchronous from kswapd, synchronous
 *                from direct reclaim.
 *   writearound  dirty pages of the same mapping in a window around the page
 *                (writearound_window, aligned), pinned by the target page's
 *                lock only, never an inode reference (seed 003).
 *   nodirect     direct reclaim does not write: PAGE_KEEP, counted as
 *                nr_unqueued_dirty; kswapd writes asynchronously, and wakes
 *                the flusher (seed 000 patch 6).
 *   flusher      reclaim never writes: dirty inactive file pages live on
 *                LRU_INACTIVE_DIRTY, cleaned oldest-dirtied-first by the
 *                flusher; reclaim takes from the clean lists (seed 004).
 *   capture      as writepage for writeback; differs in allocation (pgdat.h).
 *
 * Anonymous pages are written by any reclaim context under every policy
 * (swap_writepage; the seeds' policies are about file pages), one page per
 * write, asynchronously.
 */
#ifndef RECLAIMLAB_RECLAIM_WRITEBACK_H
#define RECLAIMLAB_RECLAIM_WRITEBACK_H

#include <stdbool.h>
#include <stdint.h>

#include "reclaim/vmscan.h"

typedef enum {
	PAGE_KEEP,		/* could not write it now: keep it on the LRU */
	PAGE_ACTIVATE,		/* write failed or pointless: activate */
	PAGE_SUCCESS,		/* written (sync: clean now; async: under writeback) */
	PAGE_CLEAN,		/* it was clean after all */
} pageout_t;

/*
 * pageout: page is locked, dirty, isolated, lock held. The page comes back
 * still locked (the caller unlocks or frees it). With PAGE_SUCCESS and a
 * synchronous write the page is clean; with an asynchronous one it is
 * PG_writeback|PG_reclaim and rotates to the inactive tail at completion.
 * Counts nr_written_{kswapd,direct}, write_ios, write_io_pages.
 */
pageout_t pageout(struct rl_pgdat *pgdat, struct rl_page *page, struct scan_control *sc);

/*
 * Writes n index-contiguous locked dirty pages of m (pages[i] at
 * first+i): clears their dirty bits, write-protects them, sets
 * PG_writeback, unlocks them, and sends them as one request. sync: waits
 * for completion (end_page_writeback done on return); else queued to the
 * writeback engine. Lock held; dropped during the IO. 0 or -errno (sync
 * only: the pages were redirtied).
 */
int rl_write_pages(struct rl_pgdat *pgdat, struct rl_mapping *m, uint64_t first, uint32_t n,
		   struct rl_page **pages, bool sync, enum rl_reclaim_ctx ctx);

/* ---- dirty limits (page-writeback.c) ---- */
/* Recomputes dirty_thresh / bg_thresh from the config and the pool. */
void rl_update_dirty_limits(struct rl_pgdat *pgdat);
/*
 * balance_dirty_pages: the owner calls it after dirtying a page (lock
 * held). Above the background threshold it wakes the flusher; above the
 * dirty threshold the writer sleeps (lock dropped) until the flusher
 * brings dirty+writeback below the midpoint of the two, or 200 ms pass;
 * pauses are counted (dirty_throttled) and timed (lat.throttle).
 */
void balance_dirty_pages(struct rl_pgdat *pgdat);

/* ---- the flusher thread (flusher.c) ---- */
int rl_flusher_run(struct rl_pgdat *pgdat);
void rl_flusher_stop(struct rl_pgdat *pgdat);
/* wakeup_flusher_threads: write nr pages (0 = background until below the
 * background threshold) (lock held). */
void wakeup_flusher_threads(struct rl_pgdat *pgdat, uint64_t nr);
/*
 * One flusher pass (callable by tests without the thread): writes expired
 * dirty pages and, above the background threshold, the oldest dirtied
 * pages until below it; in runs of contiguous dirty pages of a mapping
 * (batched per --wb). Policy flusher takes them from LRU_INACTIVE_DIRTY in
 * dirtied order. Returns pages written.
 */
uint64_t wb_do_writeback(struct rl_pgdat *pgdat);

#endif
