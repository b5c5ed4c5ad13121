/* SPDX-License-Identifier: MIT */
/*
 * The anon region's range allocator (see shim_arena.h): a sorted array of
 * free extents, binary-searched, edited with memmove. Every edit first works
 * out how many extents it needs, so a full table fails before anything
 * changes.
 */
#include "pager/shim/shim_arena.h"

#include <errno.h>
#include <string.h>

static uint64_t ext_end(const struct shim_arena_ext *x)
{
	return x->first + x->npages;
}

/* Index of the first extent whose end is > p (or >= p when touching: an
 * extent that merely ends at p counts, for coalescing). */
static size_t first_ending_after(const struct shim_arena *a, uint64_t p, bool touching)
{
	size_t lo = 0, hi = a->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t end = ext_end(&a->ext[mid]);

		if (end > p || (touching && end == p))
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* Replaces ext[i, j) with the nnew extents in repl. */
static int splice(struct shim_arena *a, size_t i, size_t j, const struct shim_arena_ext *repl,
		  size_t nnew)
{
	size_t nold = j - i;

	if (nnew > nold && a->n + (nnew - nold) > a->cap)
		return -ENOSPC;
	memmove(&a->ext[i + nnew], &a->ext[j], (a->n - j) * sizeof(a->ext[0]));
	memcpy(&a->ext[i], repl, nnew * sizeof(a->ext[0]));
	a->n = a->n - nold + nnew;
	return 0;
}

/* Page range [s, e) becomes allocated. */
static int mark_allocated(struct shim_arena *a, uint64_t s, uint64_t e)
{
	size_t i = first_ending_after(a, s, false), j = i;
	struct shim_arena_ext keep[2];
	size_t nkeep = 0;
	uint64_t taken = 0;
	int err;

	while (j < a->n && a->ext[j].first < e) {
		uint64_t lo = a->ext[j].first > s ? a->ext[j].first : s;
		uint64_t hi = ext_end(&a->ext[j]) < e ? ext_end(&a->ext[j]) : e;

		taken += hi - lo;
		j++;
	}
	if (i == j)
		return 0;
	if (a->ext[i].first < s)
		keep[nkeep++] = (struct shim_arena_ext){ a->ext[i].first, s - a->ext[i].first };
	if (ext_end(&a->ext[j - 1]) > e)
		keep[nkeep++] = (struct shim_arena_ext){ e, ext_end(&a->ext[j - 1]) - e };
	err = splice(a, i, j, keep, nkeep);
	if (err)
		return err;
	a->free_pages -= taken;
	return 0;
}

/* Page range [s, e) becomes free, merged with every free extent it overlaps
 * or touches. */
static int mark_free(struct shim_arena *a, uint64_t s, uint64_t e)
{
	size_t i = first_ending_after(a, s, true), j = i;
	struct shim_arena_ext merged = { s, e - s };
	uint64_t was_free = 0;
	uint64_t end = e;
	int err;

	while (j < a->n && a->ext[j].first <= e) {
		if (a->ext[j].first < merged.first)
			merged.first = a->ext[j].first;
		if (ext_end(&a->ext[j]) > end)
			end = ext_end(&a->ext[j]);
		was_free += a->ext[j].npages;
		j++;
	}
	merged.npages = end - merged.first;
	err = splice(a, i, j, &merged, 1);
	if (err)
		return err;
	a->free_pages += merged.npages - was_free;
	return 0;
}

/* Converts a byte range to pages from base; false if unaligned, empty,
 * wrapping or not inside the arena. */
static bool to_pages(const struct shim_arena *a, uint64_t addr, uint64_t len, uint64_t *s,
		     uint64_t *e)
{
	uint64_t np;

	if (len == 0 || len > UINT64_MAX - (SHIM_ARENA_PAGE - 1))
		return false;
	if (addr % SHIM_ARENA_PAGE || addr < a->base)
		return false;
	np = (len + SHIM_ARENA_PAGE - 1) / SHIM_ARENA_PAGE;
	*s = (addr - a->base) / SHIM_ARENA_PAGE;
	if (*s > a->npages || np > a->npages - *s)
		return false;
	*e = *s + np;
	return true;
}

int shim_arena_init(struct shim_arena *a, uint64_t base, uint64_t len, void *meta,
		    size_t metalen)
{
	uint64_t np = len / SHIM_ARENA_PAGE;

	if (base % SHIM_ARENA_PAGE || np == 0 || base + np * SHIM_ARENA_PAGE < base ||
	    !meta || metalen < sizeof(struct shim_arena_ext))
		return -EINVAL;
	a->base = base;
	a->npages = np;
	a->free_pages = np;
	a->ext = meta;
	a->cap = metalen / sizeof(struct shim_arena_ext);
	a->ext[0] = (struct shim_arena_ext){ 0, np };
	a->n = 1;
	return 0;
}

int shim_arena_alloc(struct shim_arena *a, uint64_t len, uint64_t align, uint64_t *addr)
{
	uint64_t np;

	if (len == 0 || len > UINT64_MAX - (SHIM_ARENA_PAGE - 1))
		return -EINVAL;
	if (align < SHIM_ARENA_PAGE)
		align = SHIM_ARENA_PAGE;
	if (align & (align - 1))
		return -EINVAL;
	np = (len + SHIM_ARENA_PAGE - 1) / SHIM_ARENA_PAGE;
	if (np > a->free_pages)
		return -ENOMEM;
	for (size_t i = 0; i < a->n; i++) {
		uint64_t start = a->base + a->ext[i].first * SHIM_ARENA_PAGE;
		uint64_t aligned = (start + align - 1) & ~(align - 1);
		uint64_t skip, s;
		int err;

		if (aligned < start)	/* wrapped: nothing further up fits either */
			break;
		skip = (aligned - start) / SHIM_ARENA_PAGE;
		if (skip >= a->ext[i].npages || a->ext[i].npages - skip < np)
			continue;
		s = a->ext[i].first + skip;
		err = mark_allocated(a, s, s + np);
		if (err)
			return err;
		*addr = aligned;
		return 0;
	}
	return -ENOMEM;
}

int shim_arena_alloc_fixed(struct shim_arena *a, uint64_t addr, uint64_t len)
{
	uint64_t s, e;

	if (!to_pages(a, addr, len, &s, &e))
		return -EINVAL;
	return mark_allocated(a, s, e);
}

int shim_arena_free(struct shim_arena *a, uint64_t addr, uint64_t len)
{
	uint64_t s, e;

	if (!to_pages(a, addr, len, &s, &e))
		return -EINVAL;
	return mark_free(a, s, e);
}

int shim_arena_grow(struct shim_arena *a, uint64_t addr, uint64_t oldlen, uint64_t newlen)
{
	uint64_t s, e, tail_end;
	size_t i;

	if (newlen <= oldlen || !to_pages(a, addr, oldlen, &s, &e))
		return -EINVAL;
	if (newlen > UINT64_MAX - (SHIM_ARENA_PAGE - 1))
		return -ENOMEM;
	tail_end = s + (newlen + SHIM_ARENA_PAGE - 1) / SHIM_ARENA_PAGE;
	if (tail_end == e)	/* the same number of pages */
		return 0;
	if (tail_end > a->npages)
		return -ENOMEM;
	i = first_ending_after(a, e, false);
	if (i == a->n || a->ext[i].first > e || ext_end(&a->ext[i]) < tail_end)
		return -ENOMEM;
	return mark_allocated(a, e, tail_end);
}

bool shim_arena_is_allocated(const struct shim_arena *a, uint64_t addr, uint64_t len)
{
	uint64_t s, e;
	size_t i;

	if (!to_pages(a, addr, len, &s, &e))
		return false;
	i = first_ending_after(a, s, false);
	return i == a->n || a->ext[i].first >= e;
}

bool shim_arena_is_free(const struct shim_arena *a, uint64_t addr, uint64_t len)
{
	uint64_t s, e;
	size_t i;

	if (!to_pages(a, addr, len, &s, &e))
		return false;
	i = first_ending_after(a, s, false);
	return i < a->n && a->ext[i].first <= s && ext_end(&a->ext[i]) >= e;
}

bool shim_arena_contains(const struct shim_arena *a, uint64_t addr, uint64_t len)
{
	uint64_t end = a->base + a->npages * SHIM_ARENA_PAGE;

	return len > 0 && addr >= a->base && addr < end && len <= end - addr;
}
