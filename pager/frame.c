/* SPDX-License-Identifier: MIT */
/*
 * Frame table: a free stack (O(1) alloc/free) and a clock hand over the
 * frames, as the kernel's clock walks physical pages.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pager/frame.h"
#include "pager/region.h"

int rl_frames_init(struct rl_frame_table *ft, uint32_t nr_frames)
{
	memset(ft, 0, sizeof(*ft));
	if (!nr_frames || nr_frames == RL_NO_FRAME)
		return -EINVAL;
	ft->frames = calloc(nr_frames, sizeof(*ft->frames));
	ft->free_stack = malloc(nr_frames * sizeof(*ft->free_stack));
	if (!ft->frames || !ft->free_stack) {
		rl_frames_destroy(ft);
		return -ENOMEM;
	}
	ft->nr_frames = nr_frames;
	/* Pushed in reverse, so frames are handed out from 0 upwards. */
	for (uint32_t i = 0; i < nr_frames; i++)
		ft->free_stack[i] = nr_frames - 1 - i;
	ft->nr_free = nr_frames;
	return 0;
}

void rl_frames_destroy(struct rl_frame_table *ft)
{
	free(ft->frames);
	free(ft->free_stack);
	memset(ft, 0, sizeof(*ft));
}

uint32_t rl_frame_alloc(struct rl_frame_table *ft, struct rl_region *r, uint64_t index)
{
	uint32_t f;

	if (!ft->nr_free)
		return RL_NO_FRAME;
	f = ft->free_stack[--ft->nr_free];
	assert(!ft->frames[f].region);
	ft->frames[f].region = r;
	ft->frames[f].index = index;
	if (rl_frames_used(ft) > ft->peak_used)
		ft->peak_used = rl_frames_used(ft);
	return f;
}

void rl_frame_free(struct rl_frame_table *ft, uint32_t frame)
{
	assert(frame < ft->nr_frames);
	assert(ft->frames[frame].region);
	assert(ft->nr_free < ft->nr_frames);
	ft->frames[frame].region = NULL;
	ft->frames[frame].index = 0;
	ft->free_stack[ft->nr_free++] = frame;
}

uint32_t rl_frame_clock(struct rl_frame_table *ft,
			bool (*pick)(struct rl_frame *f, void *arg), void *arg)
{
	uint64_t steps = 2ull * ft->nr_frames;

	for (uint64_t i = 0; i < steps; i++) {
		uint32_t f = ft->hand;

		ft->hand = f + 1 == ft->nr_frames ? 0 : f + 1;
		if (ft->frames[f].region && pick(&ft->frames[f], arg))
			return f;
	}
	return RL_NO_FRAME;
}
