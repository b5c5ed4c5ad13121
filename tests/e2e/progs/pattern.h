/* SPDX-License-Identifier: MIT */
/*
 * Deterministic memory patterns for the pager's end-to-end programs: every
 * 8-byte word of a buffer is a hash of (seed, word index), so a page that
 * comes back from the backing store with the wrong contents, at the wrong
 * offset, or as zeroes is caught, and the checksum of a run does not depend
 * on where the allocator put the buffers.
 */
#ifndef RL_E2E_PATTERN_H
#define RL_E2E_PATTERN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static inline uint64_t pat_word(uint64_t seed, uint64_t i)
{
	uint64_t z = seed * 0x9e3779b97f4a7c15ull + i + 1;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	/* never zero: a zero word always means a lost page */
	return (z ^ (z >> 31)) | 1;
}

/* Fills len bytes (any length; the tail is the low bytes of the next word). */
static inline void pat_fill(void *p, size_t len, uint64_t seed)
{
	uint64_t *w = p;
	size_t n = len / 8, i;

	for (i = 0; i < n; i++)
		w[i] = pat_word(seed, i);
	if (len % 8) {
		uint64_t last = pat_word(seed, i);
		memcpy((char *)p + n * 8, &last, len % 8);
	}
}

/*
 * Checks a pat_fill'ed buffer. Returns the byte offset of the first bad
 * byte, or len if all are right; *sum accumulates a checksum of the data.
 */
static inline size_t pat_check(const void *p, size_t len, uint64_t seed, uint64_t *sum)
{
	const uint64_t *w = p;
	size_t n = len / 8, i;
	uint64_t s = *sum;

	for (i = 0; i < n; i++) {
		uint64_t want = pat_word(seed, i);
		if (w[i] != want) {
			for (size_t b = 0; b < 8; b++)
				if (((const unsigned char *)&w[i])[b] != ((const unsigned char *)&want)[b])
					return i * 8 + b;
		}
		s = (s ^ w[i]) * 0x100000001b3ull;
	}
	if (len % 8) {
		uint64_t last = pat_word(seed, i);
		const unsigned char *t = (const unsigned char *)p + n * 8;
		for (size_t b = 0; b < len % 8; b++) {
			if (t[b] != ((const unsigned char *)&last)[b])
				return n * 8 + b;
			s = (s ^ t[b]) * 0x100000001b3ull;
		}
	}
	*sum = s;
	return len;
}

/* The 8 bytes around a bad offset, for the failure message. */
static inline void pat_report(const char *prog, const char *what, const void *p, size_t len,
			      uint64_t seed, size_t bad)
{
	size_t w = bad / 8;
	uint64_t got = 0, want = pat_word(seed, w);

	memcpy(&got, (const char *)p + w * 8, len - w * 8 < 8 ? len - w * 8 : 8);
	fprintf(stderr, "%s: %s: wrong data at byte %zu of %zu (page %zu): word is %016llx, expected %016llx\n",
		prog, what, bad, len, bad / 4096, (unsigned long long)got, (unsigned long long)want);
}

/* Offset of the first non-zero byte, or len. */
static inline size_t zero_check(const void *p, size_t len)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < len; i++)
		if (c[i])
			return i;
	return len;
}

#endif
