/* SPDX-License-Identifier: MIT */
/*
 * The kernel reference's trace parsing and its counts (harness/kref.c):
 * tracefs text lines of this kernel and of older ones (no ioprio field),
 * and btt's seek definition on hand-made request sequences.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "harness/kref.h"

static void test_parse_issue_complete(void **state)
{
	struct rl_kref_io io;

	assert_int_equal(rl_kref_parse_line("   kworker/u8:3-1234    [001] ..... 20354.790709: "
					    "block_rq_issue: 7,0 WS 12288 () 2048 + 24 be,0,4 "
					    "[kworker/u8:3]", &io), 1);
	assert_false(io.complete);
	assert_string_equal(io.rwbs, "WS");
	assert_int_equal(io.sector, 2048);
	assert_int_equal(io.bytes, 24 * 512);
	assert_true(io.time > 20354.79 && io.time < 20354.80);

	assert_int_equal(rl_kref_parse_line("  <idle>-0 [000] ..s1. 5.000001: block_rq_complete: "
					    "7,0 RM () 32 + 8 be,0,4 [0]", &io), 1);
	assert_true(io.complete);
	assert_string_equal(io.rwbs, "RM");
	assert_int_equal(io.sector, 32);
	assert_int_equal(io.bytes, 4096);
	/* 5.x text: no ioprio after "SECTOR + NR" */
	assert_int_equal(rl_kref_parse_line("  dd-77 [000] .... 9.5: block_rq_issue: 7,3 W 4096 () "
					    "100 + 8 [dd]", &io), 1);
	assert_int_equal(io.sector, 100);
	/* a flush: no data */
	assert_int_equal(rl_kref_parse_line("  x-1 [000] .... 1.0: block_rq_issue: 7,0 FF 0 () 0 + 0 "
					    "none,0,0 [x]", &io), 1);
	assert_int_equal(io.bytes, 0);
}

static void test_parse_other_and_bad(void **state)
{
	struct rl_kref_io io;

	assert_int_equal(rl_kref_parse_line("# tracer: nop", &io), 0);
	assert_int_equal(rl_kref_parse_line("", &io), 0);
	assert_int_equal(rl_kref_parse_line("  a-1 [000] .... 1.0: block_bio_queue: 7,0 W 8 + 8 [a]",
					    &io), 0);
	assert_int_equal(rl_kref_parse_line("  a-1 [000] .... 1.0: block_rq_issue: garbage", &io),
			 -EINVAL);
	assert_int_equal(rl_kref_parse_line("  a-1 [000] .... 1.0: block_rq_issue: 7,0 W 4096 no "
					    "parenthesis", &io), -EINVAL);
}

static struct rl_kref_io mk(const char *rwbs, uint64_t sector, uint32_t sectors, bool complete)
{
	struct rl_kref_io io = { .sector = sector, .bytes = sectors * 512, .complete = complete };

	snprintf(io.rwbs, sizeof(io.rwbs), "%s", rwbs);
	return io;
}

static void test_summarize(void **state)
{
	struct rl_kref_io ios[] = {
		mk("W", 100, 8, false),		/* first write: no seek */
		mk("W", 100, 8, true),		/* completions are not IOs */
		mk("W", 108, 16, false),	/* starts where the last ended */
		mk("R", 5000, 8, false),	/* reads do not move the write head */
		mk("WS", 1000, 8, false),	/* seek of 1000 - 124 = 876 */
		mk("FF", 0, 0, false),		/* a flush moves no data */
		mk("W", 500, 8, false),		/* backwards: 1008 - 500 = 508 */
		mk("RA", 10, 24, false),
	};
	struct rl_kref_result res = { .ios = ios, .nios = sizeof(ios) / sizeof(ios[0]) };

	rl_kref_summarize(&res);
	assert_int_equal(res.write_ios, 4);
	assert_int_equal(res.write_bytes, (8 + 16 + 8 + 8) * 512);
	assert_true(res.mean_write_bytes == 10 * 512.0);
	assert_int_equal(res.read_ios, 2);
	assert_int_equal(res.read_bytes, 32 * 512);
	assert_int_equal(res.write_seeks, 2);
	assert_int_equal(res.write_seek_sectors, 876 + 508);
	assert_true(res.mean_write_seek_sectors == (876 + 508) / 2.0);

	res.nios = 0;
	rl_kref_summarize(&res);
	assert_int_equal(res.write_ios, 0);
	assert_true(res.mean_write_bytes == 0 && res.mean_write_seek_sectors == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_issue_complete),
		cmocka_unit_test(test_parse_other_and_bad),
		cmocka_unit_test(test_summarize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
