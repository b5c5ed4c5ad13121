/* SPDX-License-Identifier: MIT */
/*
 * The frame table: the pager's physical memory. There are exactly
 * budget (--mem / 4096) frames; a resident client page holds one. A frame
 * knows its page (region, index), so the clock can walk frames and find the
 * page to evict, as the kernel walks struct pages. Pure data structure under
 * the pager lock; unit-tested in tests/unit/test_frame.c. The reclaim issue
 * replaces the clock with LRU lists on the same frames.
 */
#ifndef RECLAIMLAB_PAGER_FRAME_H
#define RECLAIMLAB_PAGER_FRAME_H

#include <stdbool.h>
#include <stdint.h>

struct rl_region;

struct rl_frame {
	struct rl_region *region;	/* NULL when free */
	uint64_t index;
};

struct rl_frame_table {
	uint32_t nr_frames;		/* the budget */
	uint32_t nr_free;
	struct rl_frame *frames;
	uint32_t *free_stack;		/* nr_free entries */
	uint32_t hand;			/* the clock hand */
	uint64_t peak_used;
};

int rl_frames_init(struct rl_frame_table *ft, uint32_t nr_frames);
void rl_frames_destroy(struct rl_frame_table *ft);
/* A free frame now owned by (r, index), or RL_NO_FRAME (region.h) if none. */
uint32_t rl_frame_alloc(struct rl_frame_table *ft, struct rl_region *r, uint64_t index);
void rl_frame_free(struct rl_frame_table *ft, uint32_t frame);
static inline uint32_t rl_frames_used(const struct rl_frame_table *ft)
{
	return ft->nr_frames - ft->nr_free;
}

/*
 * The clock: advances the hand over used frames and returns the first whose
 * page `pick` accepts (pick sees each candidate; it clears a referenced bit
 * and returns false to give the page a second chance, returns false for a
 * busy page, true to choose it). Gives up after two full turns: returns
 * RL_NO_FRAME.
 */
uint32_t rl_frame_clock(struct rl_frame_table *ft,
			bool (*pick)(struct rl_frame *f, void *arg), void *arg);

#endif
