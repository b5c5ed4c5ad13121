/* SPDX-License-Identifier: MIT */
/*
 * struct rl_page: one per frame of the pool, the kernel's struct page.
 *
 * reclaim/ is the kernel's mm/vmscan.c, mm/workingset.c and
 * mm/page-writeback.c for a pool of frames whose owners it does not know:
 * it reaches the owner of a page only through the page's mapping and that
 * mapping's rl_mapping_ops, as vmscan reaches a filesystem through
 * address_space_operations and the rmap. The pager (pager/mapping.c) is the
 * owner of every page in the daemon; the unit tests bring their own.
 *
 * Who owns which state of a page:
 *   - reclaim/ owns LRU membership and the PG_* flags below.
 *   - the owner owns the page lock (PG_locked lives in its page table: the
 *     pager's pte BUSY bit, which also covers pages not resident yet) and
 *     the "young" bit (the pte's accessed bit; here: set by faults). Both
 *     are reached through ops (trylock_page, page_referenced).
 *
 * Locking: every field is protected by pgdat->lock (pgdat.h), which is the
 * owner's lock too (the pager's p->lock): one lock for the LRU lists, the
 * free list and the page tables, as in the pager. Ops are called with it
 * held unless their comment says otherwise.
 */
#ifndef RECLAIMLAB_RECLAIM_PAGE_H
#define RECLAIMLAB_RECLAIM_PAGE_H

#include <stdbool.h>
#include <stdint.h>

#define RL_NO_PAGE	UINT32_MAX

/* PG_* (bit numbers as flags; kernel meanings). */
enum {
	PG_lru		= 1u << 0,	/* on one of the LRU lists (page->lru says which) */
	PG_active	= 1u << 1,	/* on an active list */
	PG_referenced	= 1u << 2,	/* software referenced bit (mark_page_accessed) */
	PG_dirty	= 1u << 3,	/* must be written before it can be freed */
	PG_writeback	= 1u << 4,	/* IO in flight; the page is write-protected (stable) */
	PG_reclaim	= 1u << 5,	/* written by reclaim: rotate to the tail on completion */
	PG_swapbacked	= 1u << 6,	/* anonymous (backing store = swap); else file */
	PG_workingset	= 1u << 7,	/* was active before eviction, or refaulted in the working set */
	PG_isolated	= 1u << 8,	/* taken off the LRU by an isolate; on a private list */
	PG_capture	= 1u << 9,	/* freed into a capture_control, not the free list */
};

/* The LRU lists of the pool (enum lru_list). LRU_INACTIVE_DIRTY is used by
 * the `flusher` policy only (seed 004): dirty inactive file pages, oldest
 * dirtied first; the others are the kernel's. */
enum lru_list {
	LRU_INACTIVE_ANON,
	LRU_ACTIVE_ANON,
	LRU_INACTIVE_FILE,
	LRU_ACTIVE_FILE,
	LRU_INACTIVE_DIRTY,
	NR_LRU_LISTS,
	LRU_NONE = 0xff,
};

struct rl_mapping;

struct rl_page {
	uint32_t flags;			/* PG_* */
	uint32_t prev, next;		/* list links (page numbers), RL_NO_PAGE at the ends */
	uint8_t lru;			/* enum lru_list while PG_lru or PG_isolated */
	uint8_t order_tag;		/* capture: index of the capture_control (0 = none) */
	struct rl_mapping *mapping;	/* owner; NULL while free */
	uint64_t index;			/* page offset in the mapping */
	uint64_t dirtied_at;		/* pgdat->clock tick when it became dirty */
};

/*
 * A mapping: one owner object whose pages live in the pool (the pager: one
 * per region; an anonymous region is swap-backed). The owner embeds it.
 */
struct rl_mapping {
	const struct rl_mapping_ops *ops;
	uint64_t id;			/* stable number for traces and range lookups */
	bool swapbacked;		/* anonymous memory: pages go to the anon lists */
	uint32_t pins;			/* writepages' inode references (igrab) held now */
	uint64_t nrpages;		/* resident pages (owner maintains) */
	uint64_t nrdirty;		/* PG_dirty pages (set/clear_page_dirty maintain) */
};

struct rl_pgdat;

struct rl_mapping_ops {
	/* trylock_page / unlock_page: the owner's page lock; unlock wakes waiters. */
	bool (*trylock_page)(struct rl_page *page);
	void (*unlock_page)(struct rl_page *page);
	/* page_referenced: tests and clears the young bit of the page's
	 * mapping (the owner's accessed approximation); returns how many
	 * references it saw (0 or 1 here). Page locked. */
	int (*page_referenced)(struct rl_page *page);
	/* The address of the page's contents in this process (for IO). */
	void *(*page_address)(struct rl_page *page);
	/* The page of this mapping at index if resident, else NULL (the page
	 * cache lookup range writeback uses to find dirty neighbours). */
	struct rl_page *(*find_page)(struct rl_mapping *m, uint64_t index);
	/* Before IO: write-protect the locked page in its users, so writes
	 * during writeback fault and wait (stable pages). Drops and retakes
	 * pgdat->lock; 0 or -errno. */
	int (*write_protect)(struct rl_page *page);
	/*
	 * The IO: writes n index-contiguous pages (pages[i] at index first+i,
	 * all PG_writeback, unlocked) to the backing store. batch: the owner
	 * may send the run as one IO per contiguous disk extent; otherwise one
	 * IO per page. Called WITHOUT pgdat->lock, from the writeback engine
	 * (wb.h) or, for synchronous writeback, from the reclaiming thread;
	 * synchronous (returns when the IO completed); 0 or -errno.
	 */
	int (*writepages)(struct rl_mapping *m, uint64_t first, uint32_t n,
			  struct rl_page *const *pages, bool batch);
	/* __remove_mapping: the page is locked, clean, not under writeback, off
	 * the LRU: unmap it from its users and drop it from the mapping,
	 * remembering shadow (workingset.h) where the page was. May drop and
	 * retake pgdat->lock. On success (0) the page is no longer locked (its
	 * lock belonged to the mapping: do not unlock_page it) and the caller
	 * frees it; -EAGAIN if the page was dirtied or referenced meanwhile, or
	 * another -errno: it stays, still locked. */
	int (*remove_mapping)(struct rl_page *page, uint32_t shadow);
	/* igrab / iput of the mapping's inode: writepages (policy 2) pins the
	 * inode during IO. iput may be the final one and run the filesystem's
	 * inode eviction in the caller's (reclaim) context: the hazard of
	 * seed 003. Called without pgdat->lock. May be NULL (no inode). iput
	 * returns true when it was the last reference and tore the mapping
	 * down (counted as nr_final_iput_reclaim when reclaim dropped it). */
	void (*igrab)(struct rl_mapping *m);
	bool (*iput)(struct rl_mapping *m);
};

/* Kernel-style accessors, so vmscan.c reads like mm/vmscan.c. */
static inline bool PageLRU(const struct rl_page *p) { return p->flags & PG_lru; }
static inline bool PageActive(const struct rl_page *p) { return p->flags & PG_active; }
static inline bool PageReferenced(const struct rl_page *p) { return p->flags & PG_referenced; }
static inline bool PageDirty(const struct rl_page *p) { return p->flags & PG_dirty; }
static inline bool PageWriteback(const struct rl_page *p) { return p->flags & PG_writeback; }
static inline bool PageReclaim(const struct rl_page *p) { return p->flags & PG_reclaim; }
static inline bool PageSwapBacked(const struct rl_page *p) { return p->flags & PG_swapbacked; }
static inline bool PageWorkingset(const struct rl_page *p) { return p->flags & PG_workingset; }
static inline bool page_is_file_lru(const struct rl_page *p) { return !PageSwapBacked(p); }

static inline bool trylock_page(struct rl_page *p) { return p->mapping->ops->trylock_page(p); }
static inline void unlock_page(struct rl_page *p) { p->mapping->ops->unlock_page(p); }

#endif
