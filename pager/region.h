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

struct rl_backing;
struct rl_backend;
struct rl_client;

/* Page states (flags of rl_pte). A page with no flags was never touched or
 * was discarded: its content is zero. */
#define RL_PTE_RESIDENT	(1u << 0)	/* in the memfd, mapped by the client, holds a frame */
#define RL_PTE_DIRTY	(1u << 1)	/* written since last clean (WP fault seen) */
#define RL_PTE_BUSY	(1u << 2)	/* being filled/written/evicted/copied: wait */
#define RL_PTE_BACKED	(1u << 3)	/* the backing store holds its current content
					   whenever the page is not dirty */
#define RL_PTE_REFERENCED (1u << 4)	/* the clock's referenced bit */
#define RL_PTE_EVICTED	(1u << 5)	/* evicted at least once (a refault when read back) */
#define RL_PTE_CSUM	(1u << 6)	/* csum is valid (--verify) */

#define RL_NO_FRAME	UINT32_MAX

struct rl_pte {
	uint32_t frame;		/* frame table index, or RL_NO_FRAME */
	uint32_t csum;		/* CRC32C of the content written back (--verify) */
	uint16_t flags;		/* RL_PTE_* */
};

#define RL_PTE_CHUNK_SHIFT	9		/* 512 pages = 2 MiB per chunk */
#define RL_PTE_CHUNK		(1u << RL_PTE_CHUNK_SHIFT)

struct rl_region {
	uint32_t id;
	uint32_t kind;			/* enum rl_region_kind (proto.h) */
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
