/* SPDX-License-Identifier: MIT */
/*
 * Frame table and clock against models: a used/free bitmap for allocation,
 * and a straightforward re-statement of the clock (second chance, skip
 * busy, two turns) run side by side with the real one.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pager/frame.h"
#include "pager/region.h"

static uint32_t rnd(uint32_t n)
{
	return (uint32_t)random() % n;
}

static struct rl_region fake_region;	/* frames only need a non-NULL owner */

static void test_alloc_free_random(void **state)
{
	enum { N = 97 };
	struct rl_frame_table ft;
	bool used[N] = { false };
	uint32_t nused = 0, peak = 0;

	(void)state;
	srandom(3);
	assert_int_equal(rl_frames_init(&ft, 0), -EINVAL);
	assert_int_equal(rl_frames_init(&ft, N), 0);
	assert_int_equal(ft.nr_free, N);
	for (int i = 0; i < 100000; i++) {
		if (rnd(100) < 55) {
			uint64_t index = rnd(1u << 30);
			uint32_t f = rl_frame_alloc(&ft, &fake_region, index);

			if (nused == N) {
				assert_int_equal(f, RL_NO_FRAME);
				continue;
			}
			assert_true(f < N);
			assert_false(used[f]);
			assert_ptr_equal(ft.frames[f].region, &fake_region);
			assert_int_equal(ft.frames[f].index, index);
			used[f] = true;
			nused++;
			if (nused > peak)
				peak = nused;
		} else if (nused) {
			uint32_t f;

			do
				f = rnd(N);
			while (!used[f]);
			rl_frame_free(&ft, f);
			assert_null(ft.frames[f].region);
			used[f] = false;
			nused--;
		}
		assert_int_equal(rl_frames_used(&ft), nused);
		assert_int_equal(ft.peak_used, peak);
	}
	assert_int_equal(peak, N);
	rl_frames_destroy(&ft);
}

/* page state of each frame for the pick; indexed by frame (index = frame) */
struct state {
	bool referenced[64], busy[64];
	unsigned calls;
};

static bool pick(struct rl_frame *f, void *arg)
{
	struct state *s = arg;
	uint64_t i = f->index;

	s->calls++;
	assert_non_null(f->region);
	if (s->busy[i])
		return false;
	if (s->referenced[i]) {
		s->referenced[i] = false;
		return false;
	}
	return true;
}

/* The model: the same policy, stated over plain arrays. */
static uint32_t model_clock(uint32_t nr, const bool *inuse, struct state *s, uint32_t *hand)
{
	for (uint32_t step = 0; step < 2 * nr; step++) {
		uint32_t f = *hand;

		*hand = (f + 1) % nr;
		if (!inuse[f] || s->busy[f])
			continue;
		if (s->referenced[f]) {
			s->referenced[f] = false;
			continue;
		}
		return f;
	}
	return RL_NO_FRAME;
}

static void fill(struct rl_frame_table *ft, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(rl_frame_alloc(ft, &fake_region, i), i);
}

static void test_clock_second_chance(void **state)
{
	struct rl_frame_table ft;
	struct state s = { 0 };

	(void)state;
	assert_int_equal(rl_frames_init(&ft, 8), 0);
	fill(&ft, 8);
	/* all referenced: one full turn clears them, then the first is taken */
	memset(s.referenced, 1, 8);
	assert_int_equal(rl_frame_clock(&ft, pick, &s), 0);
	assert_int_equal(s.calls, 9);
	for (int i = 0; i < 8; i++)
		assert_false(s.referenced[i]);
	/* the hand moved past the victim */
	assert_int_equal(rl_frame_clock(&ft, pick, &s), 1);
	/* referenced frames before an unreferenced one survive, those after it keep their bit */
	s.referenced[2] = s.referenced[3] = s.referenced[5] = true;
	assert_int_equal(rl_frame_clock(&ft, pick, &s), 4);
	assert_false(s.referenced[2]);
	assert_false(s.referenced[3]);
	assert_true(s.referenced[5]);
	rl_frames_destroy(&ft);
}

static void test_clock_busy_and_give_up(void **state)
{
	struct rl_frame_table ft;
	struct state s = { 0 };

	(void)state;
	assert_int_equal(rl_frames_init(&ft, 8), 0);
	fill(&ft, 8);
	memset(s.busy, 1, 8);
	s.busy[6] = false;
	s.referenced[6] = true;
	/* the only candidate gets its second chance, then is taken */
	assert_int_equal(rl_frame_clock(&ft, pick, &s), 6);
	/* all busy: gives up after exactly two turns */
	s.busy[6] = true;
	s.calls = 0;
	assert_int_equal(rl_frame_clock(&ft, pick, &s), RL_NO_FRAME);
	assert_int_equal(s.calls, 16);
	/* free frames are never offered to pick */
	for (uint32_t i = 0; i < 8; i += 2)
		rl_frame_free(&ft, i);
	s.calls = 0;
	assert_int_equal(rl_frame_clock(&ft, pick, &s), RL_NO_FRAME);
	assert_int_equal(s.calls, 8);
	rl_frames_destroy(&ft);
	/* no used frame at all */
	assert_int_equal(rl_frames_init(&ft, 4), 0);
	s.calls = 0;
	assert_int_equal(rl_frame_clock(&ft, pick, &s), RL_NO_FRAME);
	assert_int_equal(s.calls, 0);
	rl_frames_destroy(&ft);
}

static void test_clock_random(void **state)
{
	enum { N = 64 };
	struct rl_frame_table ft;
	struct state s = { 0 }, ms;
	bool inuse[N] = { false };
	uint32_t hand = 0, victims = 0, giveups = 0;

	(void)state;
	srandom(4);
	assert_int_equal(rl_frames_init(&ft, N), 0);
	for (int i = 0; i < 20000; i++) {
		uint32_t f = rnd(N);

		switch (rnd(5)) {
		case 0:		/* alloc: the table picks the frame, the model follows */
			f = rl_frame_alloc(&ft, &fake_region, 0);
			if (f != RL_NO_FRAME) {
				ft.frames[f].index = f;
				inuse[f] = true;
			}
			break;
		case 1:
			if (inuse[f]) {
				rl_frame_free(&ft, f);
				inuse[f] = false;
			}
			break;
		case 2:
			s.busy[f] = rnd(4) == 0;
			break;
		case 3:
			s.referenced[f] = true;
			break;
		default: {
			uint32_t got, want;

			ms = s;
			got = rl_frame_clock(&ft, pick, &s);
			want = model_clock(N, inuse, &ms, &hand);
			assert_int_equal(got, want);
			assert_memory_equal(s.referenced, ms.referenced, sizeof(s.referenced));
			assert_int_equal(ft.hand, hand);
			if (got == RL_NO_FRAME) {
				giveups++;
			} else {
				victims++;
				rl_frame_free(&ft, got);
				inuse[got] = false;
			}
		}
		}
		assert_true(rl_frames_used(&ft) <= N);
	}
	assert_true(victims > 1000);
	assert_true(giveups > 0);
	rl_frames_destroy(&ft);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_free_random),
		cmocka_unit_test(test_clock_second_chance),
		cmocka_unit_test(test_clock_busy_and_give_up),
		cmocka_unit_test(test_clock_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
