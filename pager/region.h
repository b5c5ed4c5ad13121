/* SPDX-License-Identifier: MIT */
/*
 * Regions and their page tables: the pager's vm_area_struct and
 * address_space in one. A region is a range of a client's address space
 * backed by one memfd (offset 0 at region start) and one backing object;
 * page index i of the region is client address start + i*4096, memfd offset
 * i*4096, and backing page file_pgoff + i.
 *
 * Each region has a sparse page table of rl_pte, allocated in chunks of
 * RL_PTE_CHUNK pages on first use, so a 16 GiB heap region costs nothing
 * until it is touched. Pure data structures, no locking of their own (the
 * pager lock), unit-tested in tests/unit/test_region.c.
 */
#ifndef RECLAIMLAB_PAGER_REGION_H
#define RECLAIMLAB_PAGER_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reclaim/page.h"

struct rl_backing;
struct rl_backend;
struct rl_client;
struct rl_pager;

/*
 * Page states (flags of rl_pte). A page with no flags was never touched or
 * was discarded: its content is zero. A resident page's other state (dirty,
 * under writeback, its LRU list) lives in its struct rl_page (reclaim/page.h),
 * pgdat->pages[pte->frame]; the pte holds what the kernel keeps in the page
 * table and the page cache: the page lock (BUSY, which also covers a page
 * being filled before it has a frame), the accessed bit, and for an evicted
 * page its workingset shadow.
 */
#define RL_PTE_RESIDENT	(1u << 0)	/* in the memfd, mapped by the client, holds a frame */
#define RL_PTE_BUSY	(1u << 2)	/* PG_locked: being filled/written/evicted/copied */
#define RL_PTE_BACKED	(1u << 3)	/* the backing store holds its current content
					   whenever the page is not dirty */
#define RL_PTE_REFERENCED (1u << 4)	/* the accessed ("young") bit: set by faults */
#define RL_PTE_EVICTED	(1u << 5)	/* evicted at least once (a refault when read back) */
#define RL_PTE_CSUM	(1u << 6)	/* csum is valid (--verify) */

#define RL_NO_FRAME	RL_NO_PAGE

struct rl_pte {
	uint32_t frame;		/* page (frame) number in the pgdat, or RL_NO_FRAME */
	uint32_t csum;		/* CRC32C of the content written back (--verify) */
	uint32_t shadow;	/* workingset shadow of an evicted page, 0 = none */
	uint16_t flags;		/* RL_PTE_* */
};

#define RL_PTE_CHUNK_SHIFT	9		/* 512 pages = 2 MiB per chunk */
#define RL_PTE_CHUNK		(1u << RL_PTE_CHUNK_SHIFT)

struct rl_region {
	struct rl_mapping mapping;	/* reclaim's view: ops in pager/mapping.c */
	uint32_t id;
	uint32_t kind;			/* enum rl_region_kind (proto.h) */
	struct rl_pager *pager;
	struct rl_client *client;
	uint64_t start;			/* client address */
	uint64_t npages;
	uint64_t file_ino, file_pgoff;	/* RL_REGION_FILE */
	int memfd;
	unsigned char *map;		/* the daemon's MAP_SHARED mapping of memfd; touch
					   only RESIDENT pages (a hole touched here would
					   become a zero page the client sees unfaulted) */
	struct rl_backend *be;
	struct rl_backing *backing;
	struct rl_pte **chunks;		/* npages / RL_PTE_CHUNK rounded up; NULL = untouched */
	uint64_t nchunks;
	uint64_t nr_resident;
	/* Inode pins of writepages (mapping igrab/iput, atomic): a region
	 * deleted while pinned keeps its backing until the last iput, which
	 * then releases it in that caller's context (seed 003's hazard). */
	int pins;
	bool deleted;			/* out of its client's map, waiting for iput */
};

/* Initialises r's page table for npages; 0 or -ENOMEM. Other fields are the caller's. */
int rl_region_init_ptes(struct rl_region *r, uint64_t npages);
void rl_region_free_ptes(struct rl_region *r);
/* The entry of page index (< npages); with create, allocates its chunk
 * (NULL only on ENOMEM); without, NULL means "never touched". */
struct rl_pte *rl_pte_lookup(struct rl_region *r, uint64_t index, bool create);
/* Calls fn for every entry with any flag set, in index order; stops when fn
 * returns non-zero and returns that. */
int rl_pte_for_each(struct rl_region *r, uint64_t first, uint64_t n,
		    int (*fn)(struct rl_region *r, uint64_t index, struct rl_pte *pte, void *arg),
		    void *arg);

/* A client's regions, sorted by start, never overlapping. */
struct rl_region_map {
	struct rl_region **v;
	size_t n, cap;
};

void rl_region_map_init(struct rl_region_map *m);
void rl_region_map_destroy(struct rl_region_map *m);	/* frees the array, not the regions */
/* -EEXIST if r overlaps a region of m, -ENOMEM. */
int rl_region_map_insert(struct rl_region_map *m, struct rl_region *r);
/* -ENOENT if r is not in m. */
int rl_region_map_remove(struct rl_region_map *m, struct rl_region *r);
/* The region containing addr, or NULL (binary search). */
struct rl_region *rl_region_map_find(const struct rl_region_map *m, uint64_t addr);
struct rl_region *rl_region_map_find_id(const struct rl_region_map *m, uint32_t id);

#endif
