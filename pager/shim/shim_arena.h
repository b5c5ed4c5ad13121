/* SPDX-License-Identifier: MIT */
/*
 * A range allocator over the pages of [base, base + len): the anon region's
 * map of which address ranges the program has mmap'ed. It keeps the FREE
 * ranges as a sorted, non-overlapping, coalesced array of extents.
 *
 * It runs inside mmap(), possibly while the program's allocator is busy, so
 * it never allocates and makes no system calls: its extent table lives in
 * memory the caller hands to shim_arena_init. Every operation either
 * completes or, when the table is full (-ENOSPC), changes nothing.
 *
 * Addresses and lengths are bytes; lengths are rounded up to whole pages
 * (SHIM_ARENA_PAGE), addresses must be page-aligned. Not thread-safe: the
 * caller locks.
 */
#ifndef RECLAIMLAB_SHIM_ARENA_H
#define RECLAIMLAB_SHIM_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHIM_ARENA_PAGE		4096ull

/* A free range, in pages from base. */
struct shim_arena_ext {
	uint64_t first;
	uint64_t npages;
};

struct shim_arena {
	uint64_t base;			/* address of page 0 */
	uint64_t npages;		/* pages managed */
	uint64_t free_pages;		/* sum of ext[].npages */
	struct shim_arena_ext *ext;	/* free extents, sorted by first */
	size_t n;			/* extents in use */
	size_t cap;			/* extents that fit in the caller's memory */
};

/* Everything free. meta/metalen: the extent table's memory (at least one
 * extent). Returns 0, or -EINVAL for an unaligned base, len 0, a range that
 * wraps, or too little metadata. */
int shim_arena_init(struct shim_arena *a, uint64_t base, uint64_t len, void *meta,
		    size_t metalen);

/* The lowest free range of len bytes whose address is a multiple of align (a
 * power of two; 0 = one page), marked allocated; its address in *addr.
 * Returns 0, -EINVAL (len 0, bad align), -ENOMEM (no free range fits) or
 * -ENOSPC (the extent table is full). */
int shim_arena_alloc(struct shim_arena *a, uint64_t len, uint64_t align, uint64_t *addr);

/* Marks [addr, addr+len) allocated, whatever parts of it were. Returns 0,
 * -EINVAL (unaligned, len 0, outside the arena) or -ENOSPC. */
int shim_arena_alloc_fixed(struct shim_arena *a, uint64_t addr, uint64_t len);

/* Marks [addr, addr+len) free, whatever parts of it were (munmap of a range
 * with holes is legal), coalescing with its neighbours. Returns 0, -EINVAL
 * or -ENOSPC. */
int shim_arena_free(struct shim_arena *a, uint64_t addr, uint64_t len);

/* Extends the allocation [addr, addr+oldlen) to newlen > oldlen in place if
 * [addr+oldlen, addr+newlen) is all free. Returns 0, -EINVAL (unaligned,
 * newlen <= oldlen, outside), -ENOMEM (blocked or past the end) or -ENOSPC. */
int shim_arena_grow(struct shim_arena *a, uint64_t addr, uint64_t oldlen, uint64_t newlen);

/* True if every page of [addr, addr+len) is inside the arena and allocated. */
bool shim_arena_is_allocated(const struct shim_arena *a, uint64_t addr, uint64_t len);

/* True if every page of [addr, addr+len) is inside the arena and free. */
bool shim_arena_is_free(const struct shim_arena *a, uint64_t addr, uint64_t len);

/* True if [addr, addr+len) lies inside the arena (len > 0, no wrap). */
bool shim_arena_contains(const struct shim_arena *a, uint64_t addr, uint64_t len);

#endif
