/* SPDX-License-Identifier: MIT */
/*
 * mm/vmscan.c: LRU list maintenance, isolation in batches, aging
 * (shrink_active_list / shrink_inactive_list / shrink_page_list), direct
 * reclaim (try_to_free_pages) and kswapd (balance_pgdat), with the
 * kernel's names. All under *pgdat->lock, dropped around IO and owner ops
 * that say they drop it.
 *
 * How a page is chosen, and what reclaim does with a dirty page, depends on
 * the policy (pgdat->cfg.policy); writeback.h has the policies' pageout.
 */
#ifndef RECLAIMLAB_RECLAIM_VMSCAN_H
#define RECLAIMLAB_RECLAIM_VMSCAN_H

#include <stdbool.h>
#include <stdint.h>

#include "reclaim/pgdat.h"

#define SWAP_CLUSTER_MAX	32u	/* pages isolated per batch */
#define DEF_PRIORITY		12	/* scan nr_lru >> priority per pass */

/* Who is reclaiming (the kernel's current_is_kswapd() and friends). */
enum rl_reclaim_ctx {
	RL_CTX_DIRECT,		/* an allocating thread (a fault thread) */
	RL_CTX_KSWAPD,
	RL_CTX_FLUSHER,		/* never reclaims; writes only */
};

struct scan_control {
	uint64_t nr_to_reclaim;
	int priority;
	enum rl_reclaim_ctx ctx;
	bool may_writepage;		/* policy nodirect: false for direct reclaim */
	bool may_unmap;
	/* out */
	uint64_t nr_scanned, nr_reclaimed;
	uint64_t nr_dirty, nr_unqueued_dirty, nr_congested, nr_writeback, nr_immediate;
	uint64_t nr_activated, nr_written;
	int last_error;			/* a writeback that failed (e.g. -ENOSPC) */
};

/* ---- lists (lru.c) ---- */
void add_page_to_lru_list(struct rl_pgdat *pgdat, struct rl_page *page, enum lru_list lru);
void add_page_to_lru_list_tail(struct rl_pgdat *pgdat, struct rl_page *page, enum lru_list lru);
void del_page_from_lru_list(struct rl_pgdat *pgdat, struct rl_page *page);
/* The list a page belongs on given its flags (and, for policy flusher, PG_dirty). */
enum lru_list page_lru(const struct rl_pgdat *pgdat, const struct rl_page *page);
/* putback_lru_page for an isolated page. */
void putback_lru_page(struct rl_pgdat *pgdat, struct rl_page *page);
/* rotate_reclaimable_page: to the tail of its inactive list (end of writeback). */
void rotate_reclaimable_page(struct rl_pgdat *pgdat, struct rl_page *page);

/* A private list of isolated pages (the kernel's list_head page_list). */
struct rl_page_list {
	uint32_t head, tail;
	uint32_t nr;
};
void rl_page_list_init(struct rl_page_list *l);
void rl_page_list_add_tail(struct rl_pgdat *pgdat, struct rl_page_list *l, struct rl_page *page);
/* The first page, unlinked, or NULL. */
struct rl_page *rl_page_list_pop(struct rl_pgdat *pgdat, struct rl_page_list *l);

/*
 * isolate_lru_pages: takes up to nr_to_scan pages from the tail (oldest)
 * of list lru onto dst, PG_isolated, off the LRU. Pages that cannot be
 * taken (locked by their owner) are rotated. Returns how many it took;
 * *nr_scanned how many it looked at.
 */
uint32_t isolate_lru_pages(struct rl_pgdat *pgdat, uint32_t nr_to_scan, enum lru_list lru,
			   struct rl_page_list *dst, uint64_t *nr_scanned);

/* ---- aging and reclaim (vmscan.c) ---- */
void shrink_active_list(struct rl_pgdat *pgdat, uint32_t nr_to_scan, struct scan_control *sc,
			enum lru_list lru);
uint64_t shrink_inactive_list(struct rl_pgdat *pgdat, uint32_t nr_to_scan,
			      struct scan_control *sc, enum lru_list lru);
/* The heart: each isolated page is kept, activated, written (per policy)
 * or freed; returns the number freed. Survivors go back to the LRU. */
uint64_t shrink_page_list(struct rl_pgdat *pgdat, struct rl_page_list *list,
			  struct scan_control *sc);
/* shrink_lruvec: one pass over all lists at sc->priority. */
void shrink_lruvec(struct rl_pgdat *pgdat, struct scan_control *sc);
/* inactive_is_low for anon (file = false) or file lists. */
bool inactive_is_low(const struct rl_pgdat *pgdat, bool file);

/*
 * try_to_free_pages: direct reclaim by the calling thread, priority
 * DEF_PRIORITY down to 0, until nr_to_reclaim pages were freed. Counts an
 * allocstall, times the stall into pgdat->lat.direct_stall, throttles
 * (reclaim_throttle) when it finds only pages under writeback. Returns
 * pages freed; *err the last writeback error when it freed none.
 */
uint64_t try_to_free_pages(struct rl_pgdat *pgdat, uint64_t nr_to_reclaim, int *err);

/* reclaim_throttle (congestion_wait): sleep until writeback completes or
 * timeout_ms passes, lock dropped; counted and timed. */
void reclaim_throttle(struct rl_pgdat *pgdat, unsigned timeout_ms);

/* ---- kswapd (kswapd.c) ---- */
/* Starts/stops the kswapd thread (without the lock). */
int kswapd_run(struct rl_pgdat *pgdat);
void kswapd_stop(struct rl_pgdat *pgdat);
/* wakeup_kswapd: free pages fell below low (lock held). */
void wakeup_kswapd(struct rl_pgdat *pgdat);
/* balance_pgdat: reclaim until free pages reach high (one kswapd run;
 * callable by tests without the thread). Returns pages reclaimed. */
uint64_t balance_pgdat(struct rl_pgdat *pgdat);

#endif
