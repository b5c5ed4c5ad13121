/* SPDX-License-Identifier: MIT */
/*
 * The page cache (Linux's mm/filemap.c, in small): file data lives in
 * 4096-byte pages (DFS_PAGE_SIZE, deepfs.h), each belonging to one inode's
 * address space and found there by page index. All pages come from one pool
 * per mount with a page budget and a global LRU. When the pool is full, the
 * clean unreferenced pages at the cold end of the LRU are evicted; if none
 * is clean, the inode that was dirtied longest ago is written back (through
 * file.c's dfs_do_writepages) and then its pages are evicted.
 *
 * This module does no IO of its own: file.c fills pages (readpage) and
 * writes them (writepages); here is only the memory, the lookup, the dirty
 * accounting and the reclaim policy. It is the memory the userfaultfd pager
 * will manage.
 *
 * Locking: callers hold mp->m_lock.
 */
#ifndef DEEPFS_PAGECACHE_H
#define DEEPFS_PAGECACHE_H

#include <stdbool.h>
#include <stdint.h>

struct dfs_mount;
struct dfs_inode;
struct dfs_address_space;

#define DFS_PG_UPTODATE		(1u << 0)	/* data matches the file */
#define DFS_PG_DIRTY		(1u << 1)	/* newer than the disk */
#define DFS_PG_WRITEBACK	(1u << 2)	/* being written */

struct dfs_page {
	struct dfs_address_space *mapping;
	uint64_t index;			/* page index in the file */
	void *data;			/* DFS_PAGE_SIZE bytes, 4096-aligned (O_DIRECT) */
	uint32_t flags;			/* DFS_PG_* */
	int refcount;			/* holders; never evicted while > 0 */
	/* private to pagecache.c */
	struct dfs_page *hnext;			/* hash chain in the mapping */
	struct dfs_page *lru_prev, *lru_next;	/* global LRU, hot end first */
};

/* Per-inode address space (ip->i_mapping), made on first use. */
struct dfs_address_space {
	struct dfs_inode *host;
	struct dfs_page **hash;		/* by index */
	uint32_t hash_size;		/* power of two */
	uint64_t nrpages;
	uint64_t nrdirty;
	uint64_t dirtied_seq;		/* when nrdirty last went 0 -> 1 (oldest first) */
	struct dfs_address_space *prev, *next;	/* list of all mappings */
};

struct dfs_pagecache_stats {
	uint64_t hits, misses;		/* lookups that found / did not find a page */
	uint64_t reads;			/* pages read from disk (dfs_pagecache_note_read) */
	uint64_t readahead;		/* of those, read ahead of the request */
	uint64_t writebacks;		/* pages written back */
	uint64_t evictions;		/* pages freed to make room */
	uint64_t reclaim_writebacks;	/* inode writebacks started to make room */
	uint64_t overcommits;		/* pages allocated over budget: all were held */
	uint64_t nr_pages, nr_dirty, budget_pages;
};

/* Set up mp->m_pagecache with a budget of budget_bytes of 4096-byte pages. */
int dfs_pagecache_init(struct dfs_mount *mp, uint64_t budget_bytes);
/* Write back every dirty page of every inode and wait (syncfs). */
int dfs_pagecache_sync(struct dfs_mount *mp);
/* Free all pages; called at unmount after dfs_pagecache_sync. */
void dfs_pagecache_destroy(struct dfs_mount *mp);

/* Is the page cached? (readahead's question: no reference, no stats) */
bool dfs_page_cached(struct dfs_inode *ip, uint64_t index);
/* A referenced page of ip at index, or NULL (counts a hit or a miss). */
struct dfs_page *dfs_page_find(struct dfs_inode *ip, uint64_t index);
/*
 * Find or create (not uptodate, zeroed) a referenced page. Making room may
 * write back and evict other pages, of this inode too (never referenced
 * ones); fails with that writeback's error, or -ENOMEM. When every page is
 * held, the pool goes over budget rather than fail (stats.overcommits).
 */
int dfs_page_grab(struct dfs_inode *ip, uint64_t index, struct dfs_page **pgp);
void dfs_page_release(struct dfs_page *pg);
void dfs_page_mark_dirty(struct dfs_page *pg);
/* Writeback: the page's data is on disk (or the page is being dropped). */
void dfs_page_clear_dirty(struct dfs_page *pg);

/* Dirty pages of ip with start <= index <= end, referenced and sorted by
 * index; returns how many (*pages is malloc'd, NULL if none), or -ENOMEM. */
long dfs_pagecache_dirty_pages(struct dfs_inode *ip, uint64_t start, uint64_t end,
			       struct dfs_page ***pages);
/* Drop ip's pages with start <= index <= end, dirty ones included (truncate,
 * punch hole, inactive). No page in the range may be referenced. */
void dfs_pagecache_invalidate(struct dfs_inode *ip, uint64_t start, uint64_t end);
/* The in-core inode goes away (inode cache reclaim): write back its dirty
 * pages if it still has links, then free every page and the address space. */
int dfs_pagecache_evict_inode(struct dfs_inode *ip);

void dfs_pagecache_note_read(struct dfs_mount *mp, uint64_t pages, uint64_t readahead);
void dfs_pagecache_note_writeback(struct dfs_mount *mp, uint64_t pages);
void dfs_pagecache_get_stats(struct dfs_mount *mp, struct dfs_pagecache_stats *st);

#endif /* DEEPFS_PAGECACHE_H */
