/* SPDX-License-Identifier: MIT */
/*
 * hotscan HOT_MB SCAN_MB ROUNDS [--seed S]: a hot set under a streaming
 * scan, both anonymous. Every round reads and rewrites one word of each page
 * of the hot array, then reads the whole streaming array once (filled in the
 * first round, read-only after that). With SCAN_MB above the memory budget a
 * plain LRU evicts the hot set each round; reclaim that detects the hot
 * pages' refaults (workingset) keeps them resident, which the pager's refault
 * counters show.
 *
 * Prints one result line (checksums of both arrays) at the end, the same
 * natively and under the pager. Exits 1 on wrong data, 2 on a bad command
 * line.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pattern.h"

#define PG 4096ul
#define WORDS (PG / 8)

static const char usage[] = "usage: hotscan HOT_MB SCAN_MB ROUNDS [--seed S]\n";

static uint64_t num(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *s < '0' || *s > '9' || *end) {
		fprintf(stderr, "hotscan: %s is not a number: '%s'\n%s", what, s, usage);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	uint64_t hot_mb, scan_mb, rounds, seed = 1, hot_sum = 0, scan_sum = 0;
	size_t hot_pages, scan_pages;
	uint64_t *hot, *scan;

	if (argc == 6 && strcmp(argv[4], "--seed") == 0) {
		seed = num(argv[5], "--seed");
	} else if (argc != 4) {
		fputs(usage, stderr);
		return 2;
	}
	hot_mb = num(argv[1], "HOT_MB");
	scan_mb = num(argv[2], "SCAN_MB");
	rounds = num(argv[3], "ROUNDS");
	if (hot_mb == 0 || scan_mb == 0 || rounds == 0 || hot_mb > (1u << 20) || scan_mb > (1u << 20)) {
		fprintf(stderr, "hotscan: HOT_MB, SCAN_MB and ROUNDS must be 1 or more (MB at most 1048576)\n%s",
			usage);
		return 2;
	}
	hot_pages = hot_mb << 8;
	scan_pages = scan_mb << 8;
	hot = malloc(hot_pages * PG);
	scan = malloc(scan_pages * PG);
	if (!hot || !scan) {
		fprintf(stderr, "hotscan: cannot allocate %llu + %llu MiB\n", (unsigned long long)hot_mb,
			(unsigned long long)scan_mb);
		return 1;
	}
	pat_fill(hot, hot_pages * PG, seed);
	for (uint64_t r = 0; r < rounds; r++) {
		/* one word per page changes each round: the hot set is written, and checked */
		for (size_t p = 0; p < hot_pages; p++) {
			uint64_t *w = hot + p * WORDS + r % WORDS;
			uint64_t idx = p * WORDS + r % WORDS;
			uint64_t want = r < WORDS ? pat_word(seed, idx) : pat_word(seed + r - WORDS + 1, idx);

			if (*w != want) {
				fprintf(stderr, "hotscan: round %llu: hot page %zu word %llu is %016llx, expected %016llx\n",
					(unsigned long long)r, p, (unsigned long long)(r % WORDS),
					(unsigned long long)*w, (unsigned long long)want);
				return 1;
			}
			*w = pat_word(seed + r + 1, idx);
		}
		if (r == 0) {
			pat_fill(scan, scan_pages * PG, seed ^ 0xabcdef);
			continue;
		}
		{
			uint64_t s = 0;
			size_t bad = pat_check(scan, scan_pages * PG, seed ^ 0xabcdef, &s);

			if (bad != scan_pages * PG) {
				pat_report("hotscan", "streaming array", scan, scan_pages * PG, seed ^ 0xabcdef, bad);
				return 1;
			}
			scan_sum = s;
		}
	}
	if (rounds == 1 && pat_check(scan, scan_pages * PG, seed ^ 0xabcdef, &scan_sum) != scan_pages * PG) {
		fprintf(stderr, "hotscan: wrong data in the streaming array\n");
		return 1;
	}
	for (size_t i = 0; i < hot_pages * WORDS; i++)
		hot_sum = (hot_sum ^ hot[i]) * 0x100000001b3ull;
	printf("hotscan: %llu MiB hot, %llu MiB streamed, %llu rounds, hot %016llx scan %016llx\n",
	       (unsigned long long)hot_mb, (unsigned long long)scan_mb, (unsigned long long)rounds,
	       (unsigned long long)hot_sum, (unsigned long long)scan_sum);
	free(hot);
	free(scan);
	return 0;
}
