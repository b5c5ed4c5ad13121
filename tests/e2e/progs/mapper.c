/* SPDX-License-Identifier: MIT */
/*
 * mapper MIB DIR: the mmap family under the pager.
 *
 * Anonymous memory: an MIB MiB private mapping is filled and verified (under
 * a smaller budget its first pages are evicted by then); mremap grows it
 * (the data moves along) and shrinks it; MADV_DONTNEED gives zeroes and
 * leaves the rest alone; a munmap in the middle of a mapping leaves both
 * sides intact.
 *
 * A file: DIR/mapper.dat (DIR "env" means $RECLAIMLAB_MOUNT, the pager's
 * deepfs mount) of MIB/2 MiB is written through a MAP_SHARED mapping,
 * msync'ed, and read back with read(2), which must see the data; a second
 * mapping reads it again. The file is left in place for the caller to
 * compare.
 *
 * Prints checksums only (same natively and under the pager); exits 1 with a
 * message on any wrong byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pattern.h"

#define PG 4096ul

static _Noreturn void die(const char *what)
{
	fprintf(stderr, "mapper: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void verify(const char *what, const void *p, size_t len, uint64_t seed, uint64_t *sum)
{
	size_t bad = pat_check(p, len, seed, sum);

	if (bad != len) {
		pat_report("mapper", what, p, len, seed, bad);
		exit(1);
	}
}

/* [p, p+len) holds pattern `seed` as it was filled starting `skip` bytes earlier */
static void verify_at(const char *what, const unsigned char *p, size_t skip, size_t len,
		      uint64_t seed, uint64_t *sum)
{
	const uint64_t *w = (const uint64_t *)p;

	for (size_t i = 0; i < len / 8; i++) {
		uint64_t want = pat_word(seed, skip / 8 + i);
		if (w[i] != want) {
			fprintf(stderr, "mapper: %s: wrong data at byte %zu: %016llx, expected %016llx\n",
				what, skip + i * 8, (unsigned long long)w[i], (unsigned long long)want);
			exit(1);
		}
		*sum = (*sum ^ w[i]) * 0x100000001b3ull;
	}
}

static void anon(size_t len)
{
	uint64_t sum = 0;
	unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap anonymous");
	if (zero_check(p, len) != len) {
		fprintf(stderr, "mapper: a new anonymous mapping is not zero\n");
		exit(1);
	}
	pat_fill(p, len, 1);
	verify("anonymous mapping", p, len, 1, &sum);

	/* grow: the old bytes move along, the new part starts zero */
	unsigned char *q = mremap(p, len, 2 * len, MREMAP_MAYMOVE);
	if (q == MAP_FAILED)
		die("mremap grow");
	verify("after mremap grow", q, len, 1, &sum);
	if (zero_check(q + len, len) != len) {
		fprintf(stderr, "mapper: the part mremap added is not zero\n");
		exit(1);
	}
	pat_fill(q + len, len, 2);
	verify("grown part", q + len, len, 2, &sum);

	/* MADV_DONTNEED on a private anonymous range: zeroes, as on Linux */
	size_t off = len / 4, dlen = len / 2;
	if (madvise(q + off, dlen, MADV_DONTNEED))
		die("madvise MADV_DONTNEED");
	size_t z = zero_check(q + off, dlen);
	if (z != dlen) {
		fprintf(stderr, "mapper: byte %zu of a MADV_DONTNEED range is %#x, not zero\n", off + z,
			q[off + z]);
		exit(1);
	}
	verify_at("before the MADV_DONTNEED range", q, 0, off, 1, &sum);
	verify_at("after the MADV_DONTNEED range", q + off + dlen, off + dlen, len - off - dlen, 1, &sum);
	verify("grown part after MADV_DONTNEED", q + len, len, 2, &sum);
	pat_fill(q + off, dlen, 3);
	verify("rewritten MADV_DONTNEED range", q + off, dlen, 3, &sum);

	/* shrink back: the first half stays */
	unsigned char *s = mremap(q, 2 * len, len, 0);
	if (s == MAP_FAILED)
		die("mremap shrink");
	verify_at("after mremap shrink", s, 0, off, 1, &sum);
	verify("after mremap shrink", s + off, dlen, 3, &sum);
	if (munmap(s, len))
		die("munmap");

	/* a hole in the middle of a mapping */
	unsigned char *h = mmap(NULL, 3 * 64 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				-1, 0);
	if (h == MAP_FAILED)
		die("mmap anonymous");
	pat_fill(h, 3 * 64 * PG, 4);
	if (munmap(h + 64 * PG, 64 * PG))
		die("munmap of the middle");
	verify_at("below a munmap hole", h, 0, 64 * PG, 4, &sum);
	verify_at("above a munmap hole", h + 128 * PG, 128 * PG, 64 * PG, 4, &sum);
	if (munmap(h, 64 * PG) || munmap(h + 128 * PG, 64 * PG))
		die("munmap");
	printf("mapper: anonymous %zu MiB: mremap, MADV_DONTNEED, munmap ok, checksum %016llx\n",
	       len >> 20, (unsigned long long)sum);
}

static void file(const char *dir, size_t len)
{
	char path[4096];
	uint64_t sum = 0, rsum = 0;

	snprintf(path, sizeof(path), "%s/mapper.dat", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die(path);
	if (ftruncate(fd, (off_t)len))
		die("ftruncate");
	unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		die("mmap MAP_SHARED of the file");
	if (zero_check(m, len) != len) {
		fprintf(stderr, "mapper: a new file's mapping is not zero\n");
		exit(1);
	}
	pat_fill(m, len, 5);
	if (msync(m, len, MS_SYNC))
		die("msync");

	/* read(2) sees what the mapping wrote */
	size_t chunk = 1 << 20;
	unsigned char *buf = malloc(chunk);
	if (!buf)
		die("malloc");
	for (size_t o = 0; o < len; o += chunk) {
		size_t n = len - o < chunk ? len - o : chunk, got = 0;
		while (got < n) {
			ssize_t r = pread(fd, buf + got, n - got, (off_t)(o + got));
			if (r < 0)
				die("pread");
			if (r == 0) {
				fprintf(stderr, "mapper: the file ends at %zu, expected %zu bytes\n", o + got, len);
				exit(1);
			}
			got += (size_t)r;
		}
		verify_at("read(2) of the file after msync", buf, o, n, 5, &rsum);
	}
	free(buf);
	verify("the file's mapping", m, len, 5, &sum);
	if (munmap(m, len))
		die("munmap of the file");

	/* a new mapping gets the pages back from the file */
	m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		die("mmap MAP_SHARED of the file, again");
	sum = 0;
	verify("the file mapped again", m, len, 5, &sum);
	if (munmap(m, len) || close(fd))
		die("munmap/close of the file");
	if (sum != rsum) {
		fprintf(stderr, "mapper: read(2) and the mapping disagree\n");
		exit(1);
	}
	printf("mapper: file %zu MiB through MAP_SHARED, msync, read(2) ok, checksum %016llx\n",
	       len >> 20, (unsigned long long)sum);
}

int main(int argc, char **argv)
{
	char *end;
	unsigned long mib = argc == 3 ? strtoul(argv[1], &end, 10) : 0;

	if (argc != 3 || *end || mib < 2 || mib > 65536) {
		fprintf(stderr, "usage: mapper MIB DIR (DIR \"env\": $RECLAIMLAB_MOUNT)\n");
		return 2;
	}
	const char *dir = argv[2];
	if (!strcmp(dir, "env")) {
		dir = getenv("RECLAIMLAB_MOUNT");
		if (!dir || !*dir) {
			fprintf(stderr, "mapper: RECLAIMLAB_MOUNT is not set (not under `reclaimlab run`?)\n");
			return 2;
		}
	}
	anon((size_t)mib << 20);
	file(dir, (size_t)mib << 19);
	return 0;
}
