/* SPDX-License-Identifier: MIT */
/*
 * mixer DIR ANON_MB FILE_MB MAP_MB [--rounds R] [--seed S]: anonymous memory
 * and file writes competing for the same memory, as a real program mixes
 * them. Each round walks 1 MiB steps; step c checks and refills malloc'd
 * chunk c (anonymous), pwrite(2)s 1 MiB at offset c MiB of DIR/mixer.write,
 * and dirties 1 MiB at offset c MiB of DIR/mixer.map through a MAP_SHARED
 * mapping. At the end the mapping is msync'ed, both files are read back
 * with read(2) and checked against the last round, and one line with three
 * checksums is printed, the same natively and under the pager. DIR "env" is
 * $RECLAIMLAB_MOUNT (the pager's deepfs mount).
 *
 * Exits 1 with a message on any error or wrong byte, 2 on a bad command line.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pattern.h"

#define MIB (1ul << 20)

static const char usage[] = "usage: mixer DIR ANON_MB FILE_MB MAP_MB [--rounds R] [--seed S]\n";

static _Noreturn __attribute__((format(printf, 1, 2))) void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("mixer: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t num(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *s < '0' || *s > '9' || *end || v > (1u << 20)) {
		fprintf(stderr, "mixer: bad %s '%s'\n%s", what, s, usage);
		exit(2);
	}
	return v;
}

/* the seed of 1 MiB chunk c of stream k (0 anon, 1 write, 2 map) in round r */
static uint64_t chunk_seed(uint64_t seed, unsigned k, uint64_t r, uint64_t c)
{
	return pat_word(seed * 3 + k, r * (1u << 20) + c);
}

static void check(const char *what, const void *p, uint64_t s, uint64_t c, uint64_t *sum)
{
	size_t bad = pat_check(p, MIB, s, sum);

	if (bad != MIB) {
		char name[PATH_MAX + 32];

		snprintf(name, sizeof(name), "%s MiB %llu", what, (unsigned long long)c);
		pat_report("mixer", name, p, MIB, s, bad);
		exit(1);
	}
}

static void read_back(const char *path, uint64_t mb, uint64_t seed, unsigned k, uint64_t last,
		      uint64_t *sum)
{
	unsigned char *buf = malloc(MIB);
	int fd = open(path, O_RDONLY);

	if (!buf || fd < 0)
		fail("%s: %s", path, buf ? strerror(errno) : "no memory");
	for (uint64_t c = 0; c < mb; c++) {
		size_t got = 0;

		while (got < MIB) {
			ssize_t n = pread(fd, buf + got, MIB - got, (off_t)(c * MIB + got));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				fail("%s: read at %llu: %s", path, (unsigned long long)(c * MIB + got),
				     n ? strerror(errno) : "unexpected end of file");
			got += (size_t)n;
		}
		check(path, buf, chunk_seed(seed, k, last, c), c, sum);
	}
	close(fd);
	free(buf);
}

int main(int argc, char **argv)
{
	uint64_t anon_mb, file_mb, map_mb, rounds = 2, seed = 1, steps;
	uint64_t anon_sum = 0, write_sum = 0, map_sum = 0;
	char wpath[PATH_MAX], mpath[PATH_MAX];
	unsigned char **anon, *map = NULL, *chunk;
	const char *dir;
	int wfd, mfd;

	if (argc < 5 || argc > 9 || argc % 2 == 0) {
		fputs(usage, stderr);
		return 2;
	}
	for (int i = 5; i < argc; i += 2) {
		if (strcmp(argv[i], "--rounds") == 0)
			rounds = num(argv[i + 1], "--rounds");
		else if (strcmp(argv[i], "--seed") == 0)
			seed = num(argv[i + 1], "--seed");
		else {
			fprintf(stderr, "mixer: unknown option '%s'\n%s", argv[i], usage);
			return 2;
		}
	}
	anon_mb = num(argv[2], "ANON_MB");
	file_mb = num(argv[3], "FILE_MB");
	map_mb = num(argv[4], "MAP_MB");
	if (rounds == 0) {
		fprintf(stderr, "mixer: --rounds must be at least 1\n%s", usage);
		return 2;
	}
	dir = argv[1];
	if (strcmp(dir, "env") == 0 && !(dir = getenv("RECLAIMLAB_MOUNT")))
		fail("DIR env: RECLAIMLAB_MOUNT is not set (run under 'reclaimlab run')");
	snprintf(wpath, sizeof(wpath), "%s/mixer.write", dir);
	snprintf(mpath, sizeof(mpath), "%s/mixer.map", dir);

	anon = calloc(anon_mb + 1, sizeof(*anon));
	chunk = malloc(MIB);
	if (!anon || !chunk)
		fail("no memory");
	for (uint64_t c = 0; c < anon_mb; c++)
		if (!(anon[c] = malloc(MIB)))
			fail("cannot allocate %llu MiB of anonymous memory", (unsigned long long)anon_mb);
	wfd = open(wpath, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (wfd < 0)
		fail("%s: %s", wpath, strerror(errno));
	mfd = open(mpath, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (mfd < 0)
		fail("%s: %s", mpath, strerror(errno));
	if (map_mb) {
		if (ftruncate(mfd, (off_t)(map_mb * MIB)) < 0)
			fail("%s: ftruncate: %s", mpath, strerror(errno));
		map = mmap(NULL, map_mb * MIB, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
		if (map == MAP_FAILED)
			fail("%s: mmap: %s", mpath, strerror(errno));
	}
	steps = anon_mb > file_mb ? anon_mb : file_mb;
	steps = steps > map_mb ? steps : map_mb;
	for (uint64_t r = 0; r < rounds; r++) {
		for (uint64_t c = 0; c < steps; c++) {
			if (c < anon_mb) {
				uint64_t ignored = 0;

				if (r > 0)
					check("anonymous", anon[c], chunk_seed(seed, 0, r - 1, c), c, &ignored);
				pat_fill(anon[c], MIB, chunk_seed(seed, 0, r, c));
			}
			if (c < file_mb) {
				size_t done = 0;

				pat_fill(chunk, MIB, chunk_seed(seed, 1, r, c));
				while (done < MIB) {
					ssize_t n = pwrite(wfd, chunk + done, MIB - done, (off_t)(c * MIB + done));

					if (n < 0 && errno == EINTR)
						continue;
					if (n < 0)
						fail("%s: write: %s", wpath, strerror(errno));
					done += (size_t)n;
				}
			}
			if (c < map_mb) {
				if (r > 0) {
					uint64_t ignored = 0;

					check(mpath, map + c * MIB, chunk_seed(seed, 2, r - 1, c), c, &ignored);
				}
				pat_fill(map + c * MIB, MIB, chunk_seed(seed, 2, r, c));
			}
		}
	}
	for (uint64_t c = 0; c < anon_mb; c++)
		check("anonymous", anon[c], chunk_seed(seed, 0, rounds - 1, c), c, &anon_sum);
	if (map && (msync(map, map_mb * MIB, MS_SYNC) < 0 || munmap(map, map_mb * MIB) < 0))
		fail("%s: msync/munmap: %s", mpath, strerror(errno));
	if (close(wfd) < 0 || close(mfd) < 0)
		fail("close: %s", strerror(errno));
	read_back(wpath, file_mb, seed, 1, rounds - 1, &write_sum);
	read_back(mpath, map_mb, seed, 2, rounds - 1, &map_sum);
	printf("mixer: %llu MiB anon, %llu MiB written, %llu MiB mapped, %llu rounds, "
	       "anon %016llx write %016llx map %016llx\n",
	       (unsigned long long)anon_mb, (unsigned long long)file_mb, (unsigned long long)map_mb,
	       (unsigned long long)rounds, (unsigned long long)anon_sum,
	       (unsigned long long)write_sum, (unsigned long long)map_sum);
	for (uint64_t c = 0; c < anon_mb; c++)
		free(anon[c]);
	free(anon);
	free(chunk);
	return 0;
}
