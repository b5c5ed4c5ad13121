/* SPDX-License-Identifier: MIT */
/*
 * mmapwrite FILE SIZE [--procs N] [--order seq|random] [--passes K] [--seed S]
 *
 * Dirties every page of a MAP_SHARED file mapping, K times, in page order or
 * in a uniformly random permutation (each page once per pass): the workload
 * of the seeds, where reclaim meets dirty file pages at the LRU tail. With
 * --procs N, N processes each write their own file FILE.0 .. FILE.N-1 of
 * SIZE/N bytes, at the same time, so that the LRU interleaves their pages.
 * FILE "env/NAME" is $RECLAIMLAB_MOUNT/NAME (the pager's deepfs mount).
 *
 * Page p (counted across the files in order) of pass k holds the pattern
 * seeded by (S, k, p), so the final contents depend only on SIZE, K and S:
 * the result line is the same for every --order and --procs. After msync
 * the files are read back with read(2), checked page by page against the
 * last pass, and hashed; the one result line is printed at the end. Exits 1
 * with a message on any error or wrong byte, 2 on a bad command line.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pattern.h"

#define PG 4096ul
#define MAX_PROCS 256

#define PROG_NAME "mmapwrite"
#define PROG_USAGE \
	"usage: mmapwrite FILE SIZE [--procs N] [--order seq|random] [--passes K] [--seed S]\n" \
	"  SIZE in bytes or with K, M, G; a multiple of 4096 * N\n"
#include "prog.h"

static uint64_t page_seed(uint64_t seed, uint64_t pass, uint64_t page)
{
	return pat_word(seed ^ (pass * 0x5851f42d4c957f2dull), page);
}

/* splitmix64: the permutation must not depend on the libc's rand(). */
static uint64_t next_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

struct job {
	char path[PATH_MAX];
	uint64_t first_page;	/* global index of the file's page 0 */
	uint64_t npages;
};

/* One process's part: map its file and dirty it pass after pass. */
static void dirty_file(const struct job *j, bool random_order, uint64_t passes, uint64_t seed)
{
	uint32_t *order = NULL;
	unsigned char *map;
	int fd;

	fd = open(j->path, O_RDWR | O_CREAT, 0644);
	if (fd < 0)
		fail("%s: %s", j->path, strerror(errno));
	if (ftruncate(fd, (off_t)(j->npages * PG)) < 0)
		fail("%s: ftruncate to %llu bytes: %s", j->path,
		     (unsigned long long)(j->npages * PG), strerror(errno));
	map = mmap(NULL, j->npages * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		fail("%s: mmap: %s", j->path, strerror(errno));
	if (random_order) {
		order = malloc(j->npages * sizeof(*order));
		if (!order)
			fail("no memory for a permutation of %llu pages", (unsigned long long)j->npages);
	}
	for (uint64_t k = 0; k < passes; k++) {
		if (random_order) {
			uint64_t rs = seed * 31 + k * 0x632be59bd9b4e019ull + j->first_page;

			for (uint64_t i = 0; i < j->npages; i++)
				order[i] = (uint32_t)i;
			for (uint64_t i = j->npages - 1; i > 0; i--) {
				uint64_t r = next_rand(&rs) % (i + 1);
				uint32_t t = order[i];

				order[i] = order[r];
				order[r] = t;
			}
		}
		for (uint64_t i = 0; i < j->npages; i++) {
			uint64_t p = order ? order[i] : i;

			pat_fill(map + p * PG, PG, page_seed(seed, k, j->first_page + p));
		}
	}
	if (msync(map, j->npages * PG, MS_SYNC) < 0)
		fail("%s: msync: %s", j->path, strerror(errno));
	if (munmap(map, j->npages * PG) < 0 || close(fd) < 0)
		fail("%s: munmap/close: %s", j->path, strerror(errno));
	free(order);
}

/* read(2) sees what the mapping wrote: check each page, hash them in order. */
static void read_back(const struct job *j, uint64_t last_pass, uint64_t seed, uint64_t *sum)
{
	unsigned char *buf = malloc(256 * PG);
	uint64_t done = 0;
	int fd;

	if (!buf)
		fail("no memory for the read buffer");
	fd = open(j->path, O_RDONLY);
	if (fd < 0)
		fail("%s: %s", j->path, strerror(errno));
	while (done < j->npages) {
		uint64_t want = j->npages - done < 256 ? j->npages - done : 256;
		size_t got = 0;

		while (got < want * PG) {
			ssize_t n = pread(fd, buf + got, want * PG - got, (off_t)(done * PG + got));

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				fail("%s: read: %s", j->path, strerror(errno));
			if (n == 0)
				fail("%s: ends at byte %llu, expected %llu", j->path,
				     (unsigned long long)(done * PG + got),
				     (unsigned long long)(j->npages * PG));
			got += (size_t)n;
		}
		for (uint64_t i = 0; i < want; i++) {
			uint64_t p = done + i, ps = page_seed(seed, last_pass, j->first_page + p);
			size_t bad = pat_check(buf + i * PG, PG, ps, sum);

			if (bad != PG) {
				char what[PATH_MAX + 32];

				snprintf(what, sizeof(what), "%s page %llu", j->path, (unsigned long long)p);
				pat_report("mmapwrite", what, buf + i * PG, PG, ps, bad);
				exit(1);
			}
		}
		done += want;
	}
	close(fd);
	free(buf);
}

int main(int argc, char **argv)
{
	uint64_t size, procs = 1, passes = 1, seed = 1, sum = 0xcbf29ce484222325ull;
	const char *file = NULL, *size_arg = NULL, *procs_arg = "";
	char base[PATH_MAX - 8];
	bool random_order = false, many = false;
	struct job *jobs;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--procs") == 0 || strcmp(a, "--order") == 0 ||
		    strcmp(a, "--passes") == 0 || strcmp(a, "--seed") == 0) {
			if (i + 1 >= argc)
				bad_usage("missing the value of", a);
			if (a[2] == 'p' && a[3] == 'r') {
				procs_arg = argv[++i];
				procs = parse_num(procs_arg, false);
				many = true;
			} else if (a[2] == 'p') {
				passes = parse_num(argv[++i], false);
			} else if (a[2] == 's') {
				seed = parse_num(argv[++i], false);
			} else if (strcmp(argv[++i], "random") == 0) {
				random_order = true;
			} else if (strcmp(argv[i], "seq") == 0) {
				random_order = false;
			} else {
				bad_usage("--order is seq or random, not", argv[i]);
			}
		} else if (a[0] == '-' && a[1]) {
			bad_usage("unknown option", a);
		} else if (!file) {
			file = a;
		} else if (!size_arg) {
			size_arg = a;
		} else {
			bad_usage("one argument too many:", a);
		}
	}
	if (!file || !size_arg) {
		fputs(PROG_USAGE, stderr);
		return 2;
	}
	size = parse_num(size_arg, true);
	if (procs < 1 || procs > MAX_PROCS)
		bad_usage("--procs must be 1 to 256:", procs_arg);
	if (passes < 1)
		bad_usage("--passes must be at least 1, not", "0");
	if (size == 0 || size % (PG * procs))
		bad_usage("SIZE must be a non-zero multiple of 4096 * procs:", size_arg);
	if (size / PG / procs > UINT32_MAX)
		bad_usage("SIZE is too large:", size_arg);
	if (strncmp(file, "env/", 4) == 0) {
		const char *m = getenv("RECLAIMLAB_MOUNT");

		if (!m)
			fail("FILE %s: RECLAIMLAB_MOUNT is not set (run under 'reclaimlab run')", file);
		snprintf(base, sizeof(base), "%s/%s", m, file + 4);
	} else {
		snprintf(base, sizeof(base), "%s", file);
	}

	jobs = calloc(procs, sizeof(*jobs));
	if (!jobs)
		fail("no memory");
	for (uint64_t p = 0; p < procs; p++) {
		if (many)
			snprintf(jobs[p].path, PATH_MAX, "%s.%llu", base, (unsigned long long)p);
		else
			snprintf(jobs[p].path, PATH_MAX, "%s", base);
		jobs[p].npages = size / PG / procs;
		jobs[p].first_page = p * jobs[p].npages;
	}
	if (procs == 1) {
		dirty_file(&jobs[0], random_order, passes, seed);
	} else {
		pid_t pids[MAX_PROCS];
		bool failed = false;

		fflush(NULL);
		for (uint64_t p = 0; p < procs; p++) {
			pids[p] = fork();
			if (pids[p] < 0)
				fail("fork: %s", strerror(errno));
			if (pids[p] == 0) {
				dirty_file(&jobs[p], random_order, passes, seed);
				_exit(0);
			}
		}
		for (uint64_t p = 0; p < procs; p++) {
			int ws;

			while (waitpid(pids[p], &ws, 0) < 0)
				if (errno != EINTR)
					fail("waitpid: %s", strerror(errno));
			if (!WIFEXITED(ws) || WEXITSTATUS(ws)) {
				fprintf(stderr, "mmapwrite: the writer of %s %s %d\n", jobs[p].path,
					WIFEXITED(ws) ? "exited with" : "was killed by signal",
					WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws));
				failed = true;
			}
		}
		if (failed)
			return 1;
	}
	for (uint64_t p = 0; p < procs; p++)
		read_back(&jobs[p], passes - 1, seed, &sum);
	printf("mmapwrite: %llu bytes, %llu passes, seed %llu, checksum %016llx\n",
	       (unsigned long long)size, (unsigned long long)passes, (unsigned long long)seed,
	       (unsigned long long)sum);
	free(jobs);
	return 0;
}
