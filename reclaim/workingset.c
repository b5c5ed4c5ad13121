/* SPDX-License-Identifier: MIT */
/*
 * mm/workingset.c for one lruvec. A shadow entry (32 bits, stored by the
 * owner where the page was) packs:
 *   bit 0      always 1, so that a shadow is never 0 ("no shadow")
 *   bit 1      PG_workingset of the evicted page
 *   bit 2      file (1) or anon (0)
 *   bits 3-31  lruvec->nonresident_age at eviction, modulo 2^29
 * 2^29 evictions between eviction and refault is far beyond any pool here,
 * so the kernel's bucket_order is not needed.
 */
#include "reclaim/vmscan.h"
#include "reclaim/workingset.h"

#define SHADOW_WORKINGSET	(1u << 1)
#define SHADOW_FILE		(1u << 2)
#define SHADOW_AGE_SHIFT	3
#define SHADOW_AGE_MASK		((1ull << (32 - SHADOW_AGE_SHIFT)) - 1)

static uint32_t pack_shadow(uint64_t age, bool workingset, bool file)
{
	return (uint32_t)((age & SHADOW_AGE_MASK) << SHADOW_AGE_SHIFT) |
	       (workingset ? SHADOW_WORKINGSET : 0) | (file ? SHADOW_FILE : 0) | 1u;
}

uint64_t workingset_shadow_age(uint32_t shadow)
{
	return shadow >> SHADOW_AGE_SHIFT;
}

bool workingset_shadow_workingset(uint32_t shadow)
{
	return shadow & SHADOW_WORKINGSET;
}

void workingset_age_nonresident(struct rl_pgdat *pgdat, uint64_t nr_pages)
{
	pgdat->lruvec.nonresident_age += nr_pages;
}

uint32_t workingset_eviction(struct rl_pgdat *pgdat, struct rl_page *page)
{
	uint64_t eviction = pgdat->lruvec.nonresident_age;

	workingset_age_nonresident(pgdat, 1);
	return pack_shadow(eviction, PageWorkingset(page), page_is_file_lru(page));
}

bool workingset_refault(struct rl_pgdat *pgdat, struct rl_page *page, uint32_t shadow)
{
	const uint64_t *nr = pgdat->lruvec.nr;
	uint64_t eviction = workingset_shadow_age(shadow);
	uint64_t refault = pgdat->lruvec.nonresident_age & SHADOW_AGE_MASK;
	uint64_t distance = (refault - eviction) & SHADOW_AGE_MASK;
	bool file = shadow & SHADOW_FILE;
	uint64_t workingset_size;

	if (!shadow)
		return false;
	pgdat->vm.workingset_refault++;
	/*
	 * The 5.9+ rule: the page would have stayed resident had the
	 * inactive list of its type been larger by the distance, at the cost
	 * of the active pages it competes with: the active lists, and the
	 * other type's inactive list (there is always swap here: anonymous
	 * pages have a backing store).
	 */
	workingset_size = nr[LRU_ACTIVE_FILE] + nr[LRU_ACTIVE_ANON];
	if (file)
		workingset_size += nr[LRU_INACTIVE_ANON];
	else
		workingset_size += nr[LRU_INACTIVE_FILE] + nr[LRU_INACTIVE_DIRTY];
	if (distance > workingset_size)
		return false;
	page->flags |= PG_active;
	workingset_age_nonresident(pgdat, 1);
	pgdat->vm.workingset_activate++;
	if (workingset_shadow_workingset(shadow)) {
		/* It was active before eviction: this is thrashing. */
		page->flags |= PG_workingset;
		pgdat->vm.workingset_restore++;
	}
	return true;
}
