/* SPDX-License-Identifier: MIT */
/*
 * mt THREADS MIB ROUNDS: each thread, per round, allocates about MIB MiB in
 * buffers of mixed sizes (malloc, calloc, one realloc grown in steps), fills
 * them with its own pattern, then verifies them all, so with THREADS * MIB
 * above the pager's budget the first buffers are evicted before they are read
 * back. Half of a round's buffers live on into the next round and are
 * verified again there. All threads fault at once.
 *
 * Prints one line with a checksum at the very end and nothing before it, so
 * a run that is stopped part way cannot print a plausible result. Exits 1
 * with a message naming the thread, round, buffer and byte on wrong data.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pattern.h"

#define MAX_BUFS 65536

struct buf {
	unsigned char *p;
	size_t len;
	uint64_t seed;
};

struct worker {
	pthread_t th;
	unsigned idx;
	unsigned rounds;
	size_t bytes;
	uint64_t sum;
};

static const size_t sizes[] = {
	24, 4096, 100000, 1 << 20, 4096 * 3 + 17, 700, 64 << 10, (3 << 20) + 123, 12345, 256 << 10,
};

static _Noreturn __attribute__((format(printf, 1, 2))) void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	exit(1);
}

static void check_buf(struct worker *w, unsigned round, unsigned i, const struct buf *b)
{
	size_t bad = pat_check(b->p, b->len, b->seed, &w->sum);

	if (bad != b->len) {
		char what[96];
		snprintf(what, sizeof(what), "thread %u round %u buffer %u", w->idx, round, i);
		pat_report("mt", what, b->p, b->len, b->seed, bad);
		exit(1);
	}
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct buf *cur = calloc(MAX_BUFS, sizeof(*cur));
	struct buf *kept = calloc(MAX_BUFS, sizeof(*kept));
	unsigned nkept = 0;

	if (!cur || !kept)
		fail("mt: thread %u: out of memory for the buffer table\n", w->idx);
	for (unsigned r = 0; r < w->rounds; r++) {
		unsigned n = 0;
		size_t total = 0;
		while (total < w->bytes && n < MAX_BUFS) {
			struct buf *b = &cur[n];
			b->len = sizes[(n + w->idx + r) % (sizeof(sizes) / sizeof(sizes[0]))];
			b->seed = ((uint64_t)w->idx << 48) ^ ((uint64_t)r << 24) ^ n;
			if (n % 5 == 1) {
				/* calloc must give zeroes even where freed, evicted pages were */
				b->p = calloc(1, b->len);
				if (b->p && zero_check(b->p, b->len) != b->len)
					fail("mt: thread %u round %u buffer %u: calloc memory is not zero\n",
					     w->idx, r, n);
			} else {
				b->p = malloc(b->len);
			}
			if (!b->p)
				fail("mt: thread %u round %u buffer %u: allocation failed\n", w->idx, r, n);
			pat_fill(b->p, b->len, b->seed);
			total += b->len;
			n++;
		}

		/* one buffer grown by realloc keeps its contents */
		struct buf g = { malloc(5000), 5000, ~(uint64_t)w->idx ^ r };
		if (!g.p)
			fail("mt: thread %u round %u: allocation failed\n", w->idx, r);
		pat_fill(g.p, g.len, g.seed);
		for (size_t len = 5000; len < (1u << 18); len = len * 3) {
			unsigned char *np = realloc(g.p, len * 3);
			if (!np)
				fail("mt: thread %u round %u: realloc to %zu bytes failed\n", w->idx, r, len * 3);
			g.p = np;
			check_buf(w, r, MAX_BUFS, &g);
			g.len = len * 3;
			pat_fill(g.p, g.len, g.seed);
		}
		free(g.p);

		for (unsigned i = 0; i < nkept; i++) {
			check_buf(w, r, i, &kept[i]);
			free(kept[i].p);
		}
		nkept = 0;
		for (unsigned i = 0; i < n; i++) {
			check_buf(w, r, i, &cur[i]);
			if (i % 2)
				kept[nkept++] = cur[i];
			else
				free(cur[i].p);
		}
	}
	for (unsigned i = 0; i < nkept; i++) {
		check_buf(w, w->rounds, i, &kept[i]);
		free(kept[i].p);
	}
	free(cur);
	free(kept);
	return NULL;
}

static unsigned long arg(const char *s, const char *what)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > 4096) {
		fprintf(stderr, "mt: bad %s '%s' (1..4096)\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: mt THREADS MIB_PER_THREAD ROUNDS\n");
		return 2;
	}
	unsigned nt = (unsigned)arg(argv[1], "thread count");
	size_t mib = arg(argv[2], "MiB per thread");
	unsigned rounds = (unsigned)arg(argv[3], "round count");
	struct worker *w = calloc(nt, sizeof(*w));
	if (!w) {
		fprintf(stderr, "mt: out of memory\n");
		return 1;
	}
	for (unsigned t = 0; t < nt; t++) {
		w[t].idx = t;
		w[t].rounds = rounds;
		w[t].bytes = mib << 20;
		int e = pthread_create(&w[t].th, NULL, work, &w[t]);
		if (e) {
			fprintf(stderr, "mt: pthread_create: %s\n", strerror(e));
			return 1;
		}
	}
	uint64_t sum = 0;
	for (unsigned t = 0; t < nt; t++) {
		pthread_join(w[t].th, NULL);
		sum = sum * 31 + w[t].sum;
	}
	printf("mt: %u threads x %zu MiB x %u rounds: checksum %016llx\n", nt, mib, rounds,
	       (unsigned long long)sum);
	free(w);
	return 0;
}
