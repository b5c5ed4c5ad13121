/* SPDX-License-Identifier: MIT */
/*
 * unlinker DIR NFILES SIZE [--live K] [--seed S]
 *
 * Seed 003's case (Morton's final iput): files that are unlinked while
 * their dirty pages are being written back. File i is created as
 * DIR/unlinker.PID.i, sized, mapped MAP_SHARED, closed and unlinked at
 * once; then every page is dirtied with the pattern of (S, i, page), the
 * mapping is read back and checked (check_and_unmap says which pages), and
 * it is unmapped. K files are live at a time (file i is unmapped when file
 * i+K-1 has been dirtied; default 1, at once), so that under a memory budget
 * below SIZE reclaim meets dirty pages of a mapped, already unlinked file at
 * the LRU tail and is writing them back when the file is unmapped: with the
 * writepages policy its writeback holds the inode, and its iput can be the
 * last one.
 * DIR "env" or "env/NAME" is $RECLAIMLAB_MOUNT or $RECLAIMLAB_MOUNT/NAME (the
 * pager's deepfs mount).
 *
 * Prints one line, a hash of everything read back, which depends only on
 * NFILES, SIZE and S. Exits 1 with a message on any error or wrong byte,
 * 2 on a bad command line.
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
#include <unistd.h>

#include "pattern.h"

#define PG 4096ul
#define MAX_LIVE 64

#define PROG_NAME "unlinker"
#define PROG_USAGE \
	"usage: unlinker DIR NFILES SIZE [--live K] [--seed S]\n" \
	"  SIZE in bytes or with K, M, G; a multiple of 4096; 1 <= K <= 64\n"
#include "prog.h"

static uint64_t page_seed(uint64_t seed, uint64_t file, uint64_t page)
{
	return pat_word(pat_word(seed, file), page);
}

struct live {
	unsigned char *map;
	uint64_t file;
};

/*
 * Reads the mapping back, checks it, folds it into *hash and unmaps it.
 * Every fourth file is read whole (its evicted pages come back from the
 * backing store); the others only their last TAIL_PAGES pages, so that
 * their unmap comes while reclaim is still writing their first ones.
 */
#define TAIL_PAGES 16
static void check_and_unmap(struct live *l, uint64_t size, uint64_t seed, uint64_t *hash)
{
	static unsigned char want[PG];
	uint64_t npages = size / PG;
	uint64_t first = l->file % 4 == 3 || npages <= TAIL_PAGES ? 0 : npages - TAIL_PAGES;

	for (uint64_t pg = first; pg < npages; pg++) {
		const unsigned char *p = l->map + pg * PG;

		pat_fill(want, PG, page_seed(seed, l->file, pg));
		if (memcmp(p, want, PG))
			fail("file %llu page %llu: wrong contents after write-back",
			     (unsigned long long)l->file, (unsigned long long)pg);
		*hash = pat_word(*hash ^ ((const uint64_t *)p)[0], pg);
	}
	if (munmap(l->map, size))
		fail("munmap of file %llu: %s", (unsigned long long)l->file, strerror(errno));
	l->map = NULL;
}

int main(int argc, char **argv)
{
	struct live live[MAX_LIVE] = { 0 };
	uint64_t nfiles, size, nlive = 1, seed = 1, hash = 0;
	const char *dir;
	char path[PATH_MAX];

	if (argc < 4)
		bad_usage("missing arguments", argc > 1 ? argv[1] : "");
	dir = argv[1];
	nfiles = parse_num(argv[2], false);
	size = parse_num(argv[3], true);
	for (int i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "--live") && i + 1 < argc)
			nlive = parse_num(argv[++i], false);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = parse_num(argv[++i], false);
		else
			bad_usage("unknown option", argv[i]);
	}
	if (!nfiles || !size || size % PG)
		bad_usage("NFILES and SIZE must be positive, SIZE a multiple of 4096", argv[3]);
	if (nlive < 1 || nlive > MAX_LIVE)
		bad_usage("--live out of range:", argv[argc - 1]);
	if (!strcmp(dir, "env") || !strncmp(dir, "env/", 4)) {
		const char *mnt = getenv("RECLAIMLAB_MOUNT");

		if (!mnt)
			fail("%s: RECLAIMLAB_MOUNT is not set", dir);
		snprintf(path, sizeof(path), "%s/%s", mnt, dir[3] ? dir + 4 : "");
		dir = strdup(path);
		if (!dir)
			fail("out of memory");
	}

	for (uint64_t f = 0; f < nfiles + nlive; f++) {
		struct live *l = &live[f % nlive];
		int fd;

		if (l->map)
			check_and_unmap(l, size, seed, &hash);
		if (f >= nfiles)
			continue;
		snprintf(path, sizeof(path), "%s/unlinker.%ld.%llu", dir, (long)getpid(),
			 (unsigned long long)f);
		fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
		if (fd < 0)
			fail("%s: %s", path, strerror(errno));
		if (ftruncate(fd, (off_t)size))
			fail("%s: ftruncate: %s", path, strerror(errno));
		l->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (l->map == MAP_FAILED)
			fail("%s: mmap: %s", path, strerror(errno));
		l->file = f;
		/* Only the mapping keeps the file now. */
		if (close(fd) || unlink(path))
			fail("%s: close/unlink: %s", path, strerror(errno));
		for (uint64_t pg = 0; pg < size / PG; pg++)
			pat_fill(l->map + pg * PG, PG, page_seed(seed, f, pg));
	}
	printf("unlinker: %llu files of %llu bytes, hash %016llx\n", (unsigned long long)nfiles,
	       (unsigned long long)size, (unsigned long long)hash);
	return 0;
}
