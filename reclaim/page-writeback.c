/* SPDX-License-Identifier: MIT */
/*
 * mm/page-writeback.c: dirty limits and balance_dirty_pages.
 *
 * Simplified from the kernel: the limits are a share of the whole pool (no
 * "dirtyable memory" estimate, no per-bdi proportions), and a throttled
 * writer does not compute a pause from a bandwidth estimate: it sleeps on
 * pgdat->wait until the flusher's completions bring dirty + writeback to
 * the midpoint of the two thresholds (the kernel's "freerun" ceiling) or
 * the 200 ms the kernel allows per pause (MAX_PAUSE) pass.
 *
 * Unlike the kernel, a background ratio of 100 means no background
 * writeback at all (bg_thresh = nr_pages): the flusher then writes only
 * expired pages and what it is asked for, so that what reclaim writes is
 * not hidden by the flusher cleaning ahead of it.
 */
#include <time.h>

#include "reclaim/writeback.h"

#define MAX_PAUSE_MS	200

void rl_update_dirty_limits(struct rl_pgdat *pgdat)
{
	unsigned ratio = pgdat->cfg.dirty_ratio ? pgdat->cfg.dirty_ratio : 20;
	unsigned bg_ratio = pgdat->cfg.dirty_background_ratio ?
			    pgdat->cfg.dirty_background_ratio : 10;
	uint64_t thresh, bg;

	if (ratio > 100)
		ratio = 100;
	if (bg_ratio > 100)
		bg_ratio = 100;
	thresh = (uint64_t)pgdat->nr_pages * ratio / 100;
	bg = (uint64_t)pgdat->nr_pages * bg_ratio / 100;
	if (thresh < 1)
		thresh = 1;
	/* domain_dirty_limits: background must stay below the hard limit;
	 * except that 100 is "never", which nr_dirty cannot exceed. */
	if (bg_ratio == 100)
		bg = pgdat->nr_pages;
	else if (bg >= thresh)
		bg = thresh / 2;
	pgdat->dirty_thresh = (uint32_t)thresh;
	pgdat->bg_thresh = (uint32_t)bg;
}

static uint64_t nr_reclaimable(const struct rl_pgdat *pgdat)
{
	return pgdat->nr_dirty + pgdat->nr_writeback;
}

void balance_dirty_pages(struct rl_pgdat *pgdat)
{
	uint64_t freerun, start;
	struct timespec deadline;

	if (pgdat->dirty_thresh == 0)
		rl_update_dirty_limits(pgdat);
	/* Pages already under writeback need no flusher: only dirty ones
	 * wake it (each wakeup is a pass over the LRU lists). */
	if (pgdat->nr_dirty > pgdat->bg_thresh)
		wakeup_flusher_threads(pgdat, 0);
	if (nr_reclaimable(pgdat) <= pgdat->dirty_thresh)
		return;

	freerun = ((uint64_t)pgdat->dirty_thresh + pgdat->bg_thresh) / 2;
	if (pgdat->bg_thresh >= pgdat->dirty_thresh) {
		/* No background writeback: nothing would clean for this writer
		 * unless it asks, and its pause ends at the limit itself. */
		freerun = pgdat->dirty_thresh;
		wakeup_flusher_threads(pgdat, nr_reclaimable(pgdat) - freerun);
	}
	pgdat->vm.dirty_throttled++;
	start = rl_now_ns();
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_nsec += (long)MAX_PAUSE_MS * 1000000L;
	deadline.tv_sec += deadline.tv_nsec / 1000000000L;
	deadline.tv_nsec %= 1000000000L;
	/* Wake waiters that watch the counter (the flusher reacts to the
	 * wakeup above; tests wait for dirty_throttled). */
	pthread_cond_broadcast(pgdat->wait);
	while (nr_reclaimable(pgdat) > freerun && !pgdat->stopping) {
		if (pthread_cond_timedwait(pgdat->wait, pgdat->lock, &deadline))
			break;	/* ETIMEDOUT: the pause is over */
		if (pgdat->nr_dirty > pgdat->bg_thresh)
			wakeup_flusher_threads(pgdat, 0);
	}
	rl_hist_add(&pgdat->lat.throttle, rl_now_ns() - start);
}
