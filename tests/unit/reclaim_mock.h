/* SPDX-License-Identifier: MIT */
/*
 * A mock page owner for reclaim/'s unit tests: what the pager is to
 * reclaim/ in the daemon, reduced to arrays a test can read and set.
 *
 * One struct rl_mock holds the lock and condvar reclaim/ runs under (an
 * ERRORCHECK mutex, so a double lock or an unlock by a non-owner in
 * reclaim/ fails loudly instead of hanging), a pgdat, up to
 * RL_MOCK_MAX_MAPPINGS mappings, and a log of every ->writepages call.
 *
 * Each mapping has, per page index (its "page table"): the resident pfn,
 * the shadow left by eviction, the owner's lock bit, the young bit (what a
 * fault sets: the accessed-bit approximation), a write-protect bit, and the
 * page's contents as a byte (the first byte of the frame; what a writer
 * stored) next to what the "disk" holds for that index.
 *
 * The ops check the calling convention: ops that must run with the lock
 * held, and writepages/igrab/iput that must run without it, count a
 * violation in mock->lock_violations (tests assert it stays 0).
 *
 * Use (lock not held unless said):
 *   rl_mock_init(&mk, &cfg)              cfg->lock/wait are filled in
 *   map = rl_mock_mapping(&mk, npages, swapbacked)
 *   lock; rl_mock_fault(&mk, map, idx, write) ...; unlock
 *   ... reclaim ...
 *   rl_mock_destroy(&mk)
 */
#ifndef RECLAIMLAB_TESTS_RECLAIM_MOCK_H
#define RECLAIMLAB_TESTS_RECLAIM_MOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "reclaim/pgdat.h"

#define RL_MOCK_PAGE_SIZE	4096u
#define RL_MOCK_MAX_MAPPINGS	16
#define RL_MOCK_LOG_MAX		4096

struct rl_mock;

/* One ->writepages call, as the owner saw it. */
struct rl_mock_wcall {
	uint64_t mapping_id;
	uint64_t first;
	uint32_t n;
	bool batch;
	pthread_t thread;		/* who issued the IO */
	uint64_t seq;			/* order of calls */
	uint32_t pins_during;		/* mapping->pins while the IO ran */
	int inode_refs_during;		/* igrab references at the time */
	int ret;			/* what the mock returned */
};

struct rl_mock_mapping {
	struct rl_mapping m;		/* what reclaim/ sees; first member */
	struct rl_mock *mock;
	uint64_t npages;
	uint32_t *pfn;			/* index -> pfn, RL_NO_PAGE if not resident */
	uint32_t *shadow;		/* index -> shadow entry left by eviction */
	bool *locked, *young, *wprotected;
	uint8_t *disk;			/* the byte written back for each index */
	uint32_t *writes;		/* times each index was written */
	/* inode references: 1 (the "dentry") from creation until
	 * rl_mock_unlink; igrab/iput add and drop */
	int inode_refs;
	uint32_t igrabs, iputs, final_iputs;
	pthread_t final_iput_thread;	/* valid when final_iputs */
	bool evicted;			/* the final iput ran */
};

struct rl_mock {
	pthread_mutex_t lock;
	pthread_cond_t wait;
	struct rl_pgdat pgdat;
	uint8_t *frames;		/* nr_pages * RL_MOCK_PAGE_SIZE */
	struct rl_mock_mapping maps[RL_MOCK_MAX_MAPPINGS];
	unsigned nr_maps;

	struct rl_mock_wcall log[RL_MOCK_LOG_MAX];
	unsigned nlog;			/* calls recorded (capped at RL_MOCK_LOG_MAX) */
	uint64_t nr_writepages;		/* all calls */
	uint64_t pages_written;

	/* Failure injection: writepages returns -fail_errno for the next
	 * fail_count calls (fail_count < 0: every call). */
	int fail_errno;
	int fail_count;
	/* remove_mapping returns -EAGAIN for the next n calls. */
	unsigned remove_eagain;
	/* Ops that may drop the lock (write_protect, remove_mapping) do so
	 * when this is set, to exercise callers' revalidation. */
	bool drop_lock_in_ops;
	/* Sleep this long inside writepages (a slow disk; 0 = none). */
	unsigned write_delay_us;

	/* Optional hooks, called with the lock in the state the op has
	 * (remove_mapping: held; writepages/final iput: not held). */
	void (*on_remove_mapping)(struct rl_mock *mk, struct rl_page *page, void *arg);
	void (*on_writepages)(struct rl_mock *mk, const struct rl_mock_wcall *c, void *arg);
	void (*on_final_iput)(struct rl_mock *mk, struct rl_mock_mapping *map, void *arg);
	void *hook_arg;

	uint64_t nr_remove_mapping, nr_write_protect, nr_page_referenced;
	uint64_t lock_violations;	/* an op called in the wrong lock state */
};

/*
 * Makes the lock (ERRORCHECK) and condvar, points cfg->lock/wait at them
 * and initialises mk->pgdat with cfg. 0 or -errno (rl_pgdat_init's).
 */
int rl_mock_init(struct rl_mock *mk, struct rl_reclaim_config *cfg);
/* Stops the pgdat's threads, destroys everything. Lock not held. */
void rl_mock_destroy(struct rl_mock *mk);
/* A heap-allocated mock with a pool of nr pages (cmocka-asserted), and its
 * release, which asserts that no op was called against the lock contract. */
struct rl_mock *rl_mock_new(uint32_t nr, enum rl_policy policy, bool threads);
void rl_mock_free(struct rl_mock *mk);

/* A new mapping of npages indexes; NULL when out of slots or memory. */
struct rl_mock_mapping *rl_mock_mapping(struct rl_mock *mk, uint64_t npages, bool swapbacked);

/*
 * A fault on index (lock held): if resident, sets young and (on a write)
 * dirties it; else allocates a page (rl_alloc_page, which may reclaim),
 * fills it from the disk byte, and adds it to the LRU with its shadow
 * (rl_lru_cache_add) as the pager does. write stores `val` in the page and
 * dirties it. 0 or rl_alloc_page's -errno. *pfn_out may be NULL.
 */
int rl_mock_fault(struct rl_mock *mk, struct rl_mock_mapping *map, uint64_t index,
		  bool write, uint8_t val, uint32_t *pfn_out);
/* Like a write fault on a resident page without touching young: dirty it. */
void rl_mock_dirty(struct rl_mock *mk, struct rl_mock_mapping *map, uint64_t index, uint8_t val);
/* The page of map at index or NULL (lock held). */
struct rl_page *rl_mock_page(struct rl_mock *mk, struct rl_mock_mapping *map, uint64_t index);
/* The first byte of the page's frame. */
uint8_t rl_mock_content(struct rl_mock *mk, const struct rl_page *page);
/* Drops a page from its mapping and frees it (munmap; lock held). */
void rl_mock_drop(struct rl_mock *mk, struct rl_mock_mapping *map, uint64_t index);
/* Drops the creation reference (unlink + close): a later iput may be the
 * final one. Lock NOT held (it may run the final iput). */
void rl_mock_unlink(struct rl_mock *mk, struct rl_mock_mapping *map);

/* Resident pages of all mappings, and how many are on LRU list lru (lock held). */
uint64_t rl_mock_resident(const struct rl_mock *mk);
uint64_t rl_mock_count_on(const struct rl_mock *mk, enum lru_list lru);
/* Clears the writepages log. */
void rl_mock_log_clear(struct rl_mock *mk);

#endif
