// SPDX-License-Identifier: MIT
/*
 * The page cache: a pool of 4096-byte pages with a budget, per-inode hash
 * tables, one LRU, and reclaim that evicts clean pages first and writes
 * back the longest-dirty inode when only dirty pages are left (the policy
 * the reclaim work will replace and measure).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bmap.h"
#include "deepfs.h"
#include "file.h"
#include "inode.h"
#include "mount.h"
#include "msg.h"
#include "pagecache.h"

struct dfs_pagecache {
	uint64_t budget;		/* pages */
	uint64_t nr_pages;
	uint64_t nr_dirty;
	uint64_t dirty_seq;
	struct dfs_page *lru_head, *lru_tail;	/* head = most recently used */
	struct dfs_address_space *mappings;
	struct dfs_pagecache_stats stats;
};

#define PC(mp) ((mp)->m_pagecache)
#define DFS_MAPPING_MIN_HASH 64u

static uint32_t dfs_page_hash(const struct dfs_address_space *as, uint64_t index)
{
	return (uint32_t)((index * 0x9e3779b97f4a7c15ull) >> 32) & (as->hash_size - 1);
}

/* ---- LRU ------------------------------------------------------------------ */

static void dfs_lru_del(struct dfs_pagecache *pc, struct dfs_page *pg)
{
	if (pg->lru_prev)
		pg->lru_prev->lru_next = pg->lru_next;
	else
		pc->lru_head = pg->lru_next;
	if (pg->lru_next)
		pg->lru_next->lru_prev = pg->lru_prev;
	else
		pc->lru_tail = pg->lru_prev;
	pg->lru_prev = pg->lru_next = NULL;
}

static void dfs_lru_add_head(struct dfs_pagecache *pc, struct dfs_page *pg)
{
	pg->lru_prev = NULL;
	pg->lru_next = pc->lru_head;
	if (pc->lru_head)
		pc->lru_head->lru_prev = pg;
	else
		pc->lru_tail = pg;
	pc->lru_head = pg;
}

static void dfs_lru_touch(struct dfs_pagecache *pc, struct dfs_page *pg)
{
	if (pc->lru_head == pg)
		return;
	dfs_lru_del(pc, pg);
	dfs_lru_add_head(pc, pg);
}

/* ---- address spaces -------------------------------------------------------- */

static struct dfs_address_space *dfs_mapping_get(struct dfs_inode *ip, bool create)
{
	struct dfs_pagecache *pc = PC(ip->i_mount);
	struct dfs_address_space *as = ip->i_mapping;

	if (as || !create)
		return as;
	as = calloc(1, sizeof(*as));
	if (!as)
		return NULL;
	as->hash = calloc(DFS_MAPPING_MIN_HASH, sizeof(*as->hash));
	if (!as->hash) {
		free(as);
		return NULL;
	}
	as->hash_size = DFS_MAPPING_MIN_HASH;
	as->host = ip;
	as->next = pc->mappings;
	if (pc->mappings)
		pc->mappings->prev = as;
	pc->mappings = as;
	ip->i_mapping = as;
	return as;
}

static void dfs_mapping_free(struct dfs_pagecache *pc, struct dfs_address_space *as)
{
	if (as->prev)
		as->prev->next = as->next;
	else
		pc->mappings = as->next;
	if (as->next)
		as->next->prev = as->prev;
	as->host->i_mapping = NULL;
	free(as->hash);
	free(as);
}

/* Keep chains short; failing to grow only makes them longer. */
static void dfs_mapping_maybe_grow(struct dfs_address_space *as)
{
	uint32_t old = as->hash_size, i;
	struct dfs_page **oh = as->hash, **nh;

	if (as->nrpages < (uint64_t)old * 2 || old >= (1u << 24))
		return;
	nh = calloc((size_t)old * 4, sizeof(*nh));
	if (!nh)
		return;
	as->hash = nh;
	as->hash_size = old * 4;
	for (i = 0; i < old; i++) {
		struct dfs_page *pg = oh[i], *next;

		for (; pg; pg = next) {
			uint32_t h = dfs_page_hash(as, pg->index);

			next = pg->hnext;
			pg->hnext = nh[h];
			nh[h] = pg;
		}
	}
	free(oh);
}

static struct dfs_page *dfs_mapping_lookup(const struct dfs_address_space *as, uint64_t index)
{
	struct dfs_page *pg;

	for (pg = as->hash[dfs_page_hash(as, index)]; pg; pg = pg->hnext)
		if (pg->index == index)
			return pg;
	return NULL;
}

/* ---- pages ------------------------------------------------------------------ */

static void dfs_page_free(struct dfs_pagecache *pc, struct dfs_page *pg)
{
	struct dfs_address_space *as = pg->mapping;
	struct dfs_page **pp = &as->hash[dfs_page_hash(as, pg->index)];

	assert(pg->refcount == 0 && !(pg->flags & DFS_PG_WRITEBACK));
	while (*pp != pg)
		pp = &(*pp)->hnext;
	*pp = pg->hnext;
	if (pg->flags & DFS_PG_DIRTY) {
		as->nrdirty--;
		pc->nr_dirty--;
	}
	as->nrpages--;
	pc->nr_pages--;
	dfs_lru_del(pc, pg);
	free(pg->data);
	free(pg);
}

/* The mapping that has been dirty longest (the flusher's oldest inode). */
static struct dfs_address_space *dfs_pagecache_oldest_dirty(struct dfs_pagecache *pc)
{
	struct dfs_address_space *as, *best = NULL;

	for (as = pc->mappings; as; as = as->next)
		if (as->nrdirty && (!best || as->dirtied_seq < best->dirtied_seq))
			best = as;
	return best;
}

/*
 * Make room for one more page. Clean unreferenced pages go first, coldest
 * first; when only dirty ones are left, the longest-dirty inode is written
 * back whole and its now clean pages become candidates.
 */
static int dfs_pagecache_make_room(struct dfs_mount *mp)
{
	struct dfs_pagecache *pc = PC(mp);
	int error, tries = 0;

	while (pc->nr_pages >= pc->budget) {
		struct dfs_address_space *as;
		struct dfs_page *pg;

		for (pg = pc->lru_tail; pg; pg = pg->lru_prev)
			if (!pg->refcount && !(pg->flags & (DFS_PG_DIRTY | DFS_PG_WRITEBACK)))
				break;
		if (pg) {
			dfs_page_free(pc, pg);
			pc->stats.evictions++;
			continue;
		}
		as = dfs_pagecache_oldest_dirty(pc);
		if (!as || tries++ > 8) {
			/* everything is held: go over budget rather than fail */
			pc->stats.overcommits++;
			return 0;
		}
		pc->stats.reclaim_writebacks++;
		error = dfs_do_writepages(as->host, 0, UINT64_MAX, false);
		if (error)
			return error;
	}
	return 0;
}

bool dfs_page_cached(struct dfs_inode *ip, uint64_t index)
{
	struct dfs_address_space *as = dfs_mapping_get(ip, false);

	return as && dfs_mapping_lookup(as, index);
}

struct dfs_page *dfs_page_find(struct dfs_inode *ip, uint64_t index)
{
	struct dfs_pagecache *pc = PC(ip->i_mount);
	struct dfs_address_space *as = dfs_mapping_get(ip, false);
	struct dfs_page *pg = as ? dfs_mapping_lookup(as, index) : NULL;

	if (!pg) {
		pc->stats.misses++;
		return NULL;
	}
	pc->stats.hits++;
	pg->refcount++;
	dfs_lru_touch(pc, pg);
	return pg;
}

int dfs_page_grab(struct dfs_inode *ip, uint64_t index, struct dfs_page **pgp)
{
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_pagecache *pc = PC(mp);
	struct dfs_address_space *as;
	struct dfs_page *pg;
	int error;

	pg = dfs_page_find(ip, index);
	if (pg) {
		*pgp = pg;
		return 0;
	}
	error = dfs_pagecache_make_room(mp);
	if (error)
		return error;
	as = dfs_mapping_get(ip, true);
	if (!as)
		return -ENOMEM;
	pg = calloc(1, sizeof(*pg));
	if (!pg)
		return -ENOMEM;
	pg->data = aligned_alloc(DFS_PAGE_SIZE, DFS_PAGE_SIZE);
	if (!pg->data) {
		free(pg);
		return -ENOMEM;
	}
	memset(pg->data, 0, DFS_PAGE_SIZE);
	pg->mapping = as;
	pg->index = index;
	pg->refcount = 1;
	dfs_mapping_maybe_grow(as);
	pg->hnext = as->hash[dfs_page_hash(as, index)];
	as->hash[dfs_page_hash(as, index)] = pg;
	as->nrpages++;
	pc->nr_pages++;
	dfs_lru_add_head(pc, pg);
	*pgp = pg;
	return 0;
}

void dfs_page_release(struct dfs_page *pg)
{
	assert(pg->refcount > 0);
	pg->refcount--;
}

void dfs_page_mark_dirty(struct dfs_page *pg)
{
	struct dfs_address_space *as = pg->mapping;
	struct dfs_pagecache *pc = PC(as->host->i_mount);

	if (pg->flags & DFS_PG_DIRTY)
		return;
	pg->flags |= DFS_PG_DIRTY;
	if (as->nrdirty++ == 0)
		as->dirtied_seq = ++pc->dirty_seq;
	pc->nr_dirty++;
}

void dfs_page_clear_dirty(struct dfs_page *pg)
{
	struct dfs_address_space *as = pg->mapping;
	struct dfs_pagecache *pc = PC(as->host->i_mount);

	if (!(pg->flags & DFS_PG_DIRTY))
		return;
	pg->flags &= ~DFS_PG_DIRTY;
	as->nrdirty--;
	pc->nr_dirty--;
}

static int dfs_page_cmp(const void *a, const void *b)
{
	const struct dfs_page *pa = *(struct dfs_page *const *)a;
	const struct dfs_page *pb = *(struct dfs_page *const *)b;

	return (pa->index > pb->index) - (pa->index < pb->index);
}

long dfs_pagecache_dirty_pages(struct dfs_inode *ip, uint64_t start, uint64_t end,
			       struct dfs_page ***pages)
{
	struct dfs_address_space *as = dfs_mapping_get(ip, false);
	struct dfs_page **v, *pg;
	long n = 0;
	uint32_t i;

	*pages = NULL;
	if (!as || !as->nrdirty)
		return 0;
	v = malloc(as->nrdirty * sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (end - start < as->nrpages) {
		/* a short range (writepage): look its indexes up */
		for (uint64_t idx = start;; idx++) {
			pg = dfs_mapping_lookup(as, idx);
			if (pg && (pg->flags & DFS_PG_DIRTY)) {
				pg->refcount++;
				v[n++] = pg;
			}
			if (idx == end)
				break;
		}
	} else {
		for (i = 0; i < as->hash_size; i++)
			for (pg = as->hash[i]; pg; pg = pg->hnext)
				if ((pg->flags & DFS_PG_DIRTY) && pg->index >= start &&
				    pg->index <= end) {
					pg->refcount++;
					v[n++] = pg;
				}
	}
	if (!n) {
		free(v);
		return 0;
	}
	qsort(v, (size_t)n, sizeof(*v), dfs_page_cmp);
	*pages = v;
	return n;
}

void dfs_pagecache_invalidate(struct dfs_inode *ip, uint64_t start, uint64_t end)
{
	struct dfs_pagecache *pc = PC(ip->i_mount);
	struct dfs_address_space *as = dfs_mapping_get(ip, false);
	struct dfs_page *pg, *next;
	uint32_t i;

	if (!as)
		return;
	for (i = 0; i < as->hash_size; i++) {
		for (pg = as->hash[i]; pg; pg = next) {
			next = pg->hnext;
			if (pg->index >= start && pg->index <= end)
				dfs_page_free(pc, pg);
		}
	}
}

int dfs_pagecache_evict_inode(struct dfs_inode *ip)
{
	struct dfs_pagecache *pc = PC(ip->i_mount);
	struct dfs_address_space *as = dfs_mapping_get(ip, false);
	int error = 0;

	if (!as)
		return 0;
	if (as->nrdirty && ip->i_nlink > 0)
		error = dfs_do_writepages(ip, 0, UINT64_MAX, false);
	if (error)
		dfs_err(ip->i_mount, "inode %" PRIu64 ": writeback at eviction failed: %s; its dirty data is lost",
			ip->i_ino, strerror(-error));
	dfs_pagecache_invalidate(ip, 0, UINT64_MAX);
	dfs_mapping_free(pc, as);
	return error;
}

/* ---- the pool ---------------------------------------------------------------- */

int dfs_pagecache_init(struct dfs_mount *mp, uint64_t budget_bytes)
{
	struct dfs_pagecache *pc = calloc(1, sizeof(*pc));

	if (!pc)
		return -ENOMEM;
	pc->budget = budget_bytes / DFS_PAGE_SIZE;
	if (pc->budget < 4)
		pc->budget = 4;
	mp->m_pagecache = pc;
	/* writeback of the pages must not fail on a full disk */
	if (!mp->m_readonly)
		dfs_bmap_reserve_init(mp);
	return 0;
}

int dfs_pagecache_sync(struct dfs_mount *mp)
{
	struct dfs_pagecache *pc = PC(mp);
	struct dfs_address_space *as;
	int error, first = 0;

	if (!pc)
		return 0;
	for (as = pc->mappings; as; as = as->next) {
		if (!as->nrdirty)
			continue;
		error = dfs_do_writepages(as->host, 0, UINT64_MAX, false);
		if (error && !first)
			first = error;
	}
	return first;
}

void dfs_pagecache_destroy(struct dfs_mount *mp)
{
	struct dfs_pagecache *pc = PC(mp);

	if (!pc)
		return;
	if (pc->nr_dirty)
		dfs_err(mp, "%" PRIu64 " dirty pages could not be written back and are lost",
			pc->nr_dirty);
	while (pc->mappings) {
		struct dfs_address_space *as = pc->mappings;
		struct dfs_page *pg, *next;
		uint32_t i;

		for (i = 0; i < as->hash_size; i++) {
			for (pg = as->hash[i]; pg; pg = next) {
				next = pg->hnext;
				pg->refcount = 0;
				pg->flags &= ~DFS_PG_WRITEBACK;
				dfs_page_free(pc, pg);
			}
		}
		dfs_mapping_free(pc, as);
	}
	free(pc);
	mp->m_pagecache = NULL;
}

void dfs_pagecache_note_read(struct dfs_mount *mp, uint64_t pages, uint64_t readahead)
{
	PC(mp)->stats.reads += pages;
	PC(mp)->stats.readahead += readahead;
}

void dfs_pagecache_note_writeback(struct dfs_mount *mp, uint64_t pages)
{
	PC(mp)->stats.writebacks += pages;
}

void dfs_pagecache_get_stats(struct dfs_mount *mp, struct dfs_pagecache_stats *st)
{
	struct dfs_pagecache *pc = PC(mp);

	*st = pc->stats;
	st->nr_pages = pc->nr_pages;
	st->nr_dirty = pc->nr_dirty;
	st->budget_pages = pc->budget;
}
