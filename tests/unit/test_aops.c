/* SPDX-License-Identifier: MIT */
/*
 * The pager's a_ops (pager/aops.h) on both backends.
 *
 * A model test drives several anonymous regions with random page_mkwrite,
 * writepage, writepages (batched or not), readpage and discard and
 * compares every read with an in-memory model (a page's content is a
 * function of a seed, 0 = never written or discarded = zeroes); release
 * must give back the space. deepfs FILE regions must read the file, and
 * write only below EOF. A full 16 MiB image must make writepage fail with
 * -ENOSPC and keep what it wrote, page_mkwrite must say -ENOSPC before
 * anything is lost (deepfs, and a small tmpfs for the file backend), and
 * fsck must find it clean. Batched writepages must cost one IO per run,
 * single ones one per page (the backend's counters). Throughput and
 * deepfs's own page cache after writepage are printed (numbers for the
 * docs, not assertions).
 *
 * RL_TEST_SEED=<n> repeats a run; the seed is printed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/deepfs.h"
#include "fs/mount.h"
#include "fs/pagecache.h"
#include "pager/aops.h"
#include "fixture.h"

#define PG		RL_PAGE_SIZE
#define NREGIONS	4
#define REGION_PAGES	96
#define MAX_BATCH	8

static uint64_t rnd_below(uint64_t n)
{
	return fixture_rnd() % n;
}

/* The content of a page written with seed s (s != 0). */
static void fill_page(void *page, uint64_t s)
{
	uint64_t *w = page, x = s;
	size_t i;

	for (i = 0; i < PG / sizeof(*w); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x + i;
	}
}

static void check_page(const void *page, uint64_t s, const char *what, uint64_t index)
{
	static unsigned char want[PG] __attribute__((aligned(64)));

	if (s)
		fill_page(want, s);
	else
		memset(want, 0, PG);
	if (memcmp(page, want, PG) != 0)
		fail_msg("%s: page %" PRIu64 " differs from the model (%s)", what, index,
			 s ? "written" : "never written: want zeroes");
}

static void *page_alloc(size_t n)
{
	void *p = NULL;

	assert_int_equal(posix_memalign(&p, PG, n * PG), 0);
	return p;
}

/* ---- the model test ----------------------------------------------------------- */

struct mregion {
	struct rl_backing *b;
	uint64_t seeds[REGION_PAGES];	/* 0 = zeroes */
};

static uint64_t next_seed(void)
{
	uint64_t s;

	do
		s = fixture_rnd();
	while (s == 0);
	return s;
}

static void model_op(const struct rl_aops *ops, struct mregion *r, const char *what)
{
	static const void *srcs[MAX_BATCH];
	unsigned char page[PG] __attribute__((aligned(PG)));
	unsigned char *buf;
	uint64_t first, n, i, perm[MAX_BATCH];
	unsigned op = (unsigned)rnd_below(100);

	if (op < 35) {				/* writepage */
		first = rnd_below(REGION_PAGES);
		r->seeds[first] = next_seed();
		fill_page(page, r->seeds[first]);
		/* as the pager at a write fault, half of the time */
		if (ops->page_mkwrite && rnd_below(2))
			assert_int_equal(ops->page_mkwrite(r->b, first), 0);
		assert_int_equal(ops->writepage(r->b, first, page), 0);
	} else if (op < 55) {			/* writepages */
		n = 1 + rnd_below(MAX_BATCH);
		first = rnd_below(REGION_PAGES - n + 1);
		buf = page_alloc(n);
		/* in order (one contiguous source) or scattered */
		for (i = 0; i < n; i++)
			perm[i] = i;
		if (rnd_below(2)) {
			for (i = n - 1; i > 0; i--) {
				uint64_t j = rnd_below(i + 1), t = perm[i];

				perm[i] = perm[j];
				perm[j] = t;
			}
		}
		for (i = 0; i < n; i++) {
			r->seeds[first + i] = next_seed();
			fill_page(buf + perm[i] * PG, r->seeds[first + i]);
			srcs[i] = buf + perm[i] * PG;
		}
		if (ops->page_mkwrite && rnd_below(2))
			for (i = 0; i < n; i++)
				assert_int_equal(ops->page_mkwrite(r->b, first + i), 0);
		assert_int_equal(ops->writepages(r->b, first, n, srcs, rnd_below(2)), 0);
		free(buf);
	} else if (op < 90) {			/* readpage */
		first = rnd_below(REGION_PAGES);
		memset(page, 0x5a, PG);
		assert_int_equal(ops->readpage(r->b, first, page), 0);
		check_page(page, r->seeds[first], what, first);
	} else {				/* discard */
		n = 1 + rnd_below(MAX_BATCH * 2);
		if (n > REGION_PAGES)
			n = REGION_PAGES;
		first = rnd_below(REGION_PAGES - n + 1);
		assert_int_equal(ops->discard(r->b, first, n), 0);
		for (i = 0; i < n; i++)
			r->seeds[first + i] = 0;
	}
}

static void model_check_all(const struct rl_aops *ops, struct mregion *rs, const char *what)
{
	unsigned char page[PG] __attribute__((aligned(64)));
	int k;
	uint64_t i;

	for (k = 0; k < NREGIONS; k++) {
		for (i = 0; i < REGION_PAGES; i++) {
			memset(page, 0xa5, PG);
			assert_int_equal(ops->readpage(rs[k].b, i, page), 0);
			check_page(page, rs[k].seeds[i], what, i);
		}
	}
}

/* Opens NREGIONS regions, runs steps random operations, checks everything. */
static void model_run(struct rl_backend *be, int steps, const char *what)
{
	const struct rl_aops *ops = be->ops;
	struct mregion *rs = calloc(NREGIONS, sizeof(*rs));
	unsigned char page[PG] __attribute__((aligned(64)));
	int k, step;

	assert_non_null(rs);
	for (k = 0; k < NREGIONS; k++)
		assert_int_equal(ops->open_anon(be, REGION_PAGES, &rs[k].b), 0);
	/* never written: zeroes, and nothing past the region */
	for (k = 0; k < NREGIONS; k++) {
		memset(page, 0xff, PG);
		assert_int_equal(ops->readpage(rs[k].b, REGION_PAGES - 1, page), 0);
		check_page(page, 0, what, REGION_PAGES - 1);
		assert_int_equal(ops->readpage(rs[k].b, REGION_PAGES, page), -EINVAL);
		assert_int_equal(ops->writepage(rs[k].b, REGION_PAGES, page), -EINVAL);
		assert_int_equal(ops->discard(rs[k].b, REGION_PAGES - 1, 2), -EINVAL);
		assert_int_equal(ops->page_mkwrite(rs[k].b, REGION_PAGES), -EINVAL);
	}
	for (step = 0; step < steps; step++)
		model_op(ops, &rs[rnd_below(NREGIONS)], what);
	model_check_all(ops, rs, what);
	for (k = 0; k < NREGIONS; k++)
		ops->release(rs[k].b);
	free(rs);
}

static const struct dfs_cred cred = { 0, 0 };

struct dfs_env {
	char *dir;
	char path[256];
	struct dfs_mount *mp;
};

static void dfs_env_up(struct dfs_env *e, uint64_t size, uint32_t blocksize,
		       uint64_t pagecache_bytes)
{
	struct dfs_mkfs_opts mo = { .size = size, .blocksize = blocksize };
	struct dfs_mount_opts opts = { .pagecache_bytes = pagecache_bytes,
				       .bufcache_bytes = 4u << 20 };

	e->dir = fixture_tmpdir();
	snprintf(e->path, sizeof(e->path), "%s/aops.img", e->dir);
	assert_int_equal(dfs_mkfs(e->path, &mo), 0);
	assert_int_equal(dfs_mount(e->path, &opts, &e->mp), 0);
}

/* Unmounts, checks with fsck (clean, read-only) and removes the image. */
static void dfs_env_down(struct dfs_env *e)
{
	struct dfs_fsck_opts o = { .repair = false, .verbose = false };
	struct dfs_fsck_result r;

	assert_int_equal(dfs_unmount(e->mp), 0);
	assert_int_equal(dfs_fsck(e->path, &o, &r), 0);
	assert_int_equal(r.problems, 0);
	fixture_rmdir(e->dir);
	free(e->dir);
}

static uint64_t dfs_free_blocks(struct dfs_mount *mp)
{
	struct dfs_statfs sf;

	assert_int_equal(dfs_sync(mp), 0);
	assert_int_equal(dfs_statfs(mp, &sf), 0);
	return sf.bfree;
}

static void deepfs_model(uint32_t blocksize, int steps)
{
	struct rl_backend be = { .ops = &rl_deepfs_aops };
	struct rl_backing *warm[NREGIONS];
	struct dfs_env e;
	uint64_t free0, free1;
	char what[32];
	int k;

	snprintf(what, sizeof(what), "deepfs bs %u", blocksize);
	fixture_seed_rng(what);
	/* a small page cache, so that deepfs's own reclaim runs too */
	dfs_env_up(&e, 64ull << 20, blocksize, 32 * PG);
	be.mp = e.mp;
	/* inode chunks and the root directory's blocks stay allocated once
	 * made: count free space after they exist */
	for (k = 0; k < NREGIONS; k++)
		assert_int_equal(rl_deepfs_aops.open_anon(&be, REGION_PAGES, &warm[k]), 0);
	for (k = 0; k < NREGIONS; k++)
		rl_deepfs_aops.release(warm[k]);
	free0 = dfs_free_blocks(e.mp);

	model_run(&be, steps, what);

	free1 = dfs_free_blocks(e.mp);
	if (free1 != free0)
		fail_msg("%s: %" PRIu64 " free blocks before, %" PRIu64 " after release",
			 what, free0, free1);
	dfs_env_down(&e);
}

static void test_deepfs_model_4k(void **state)
{
	deepfs_model(4096, 4000);
}

static void test_deepfs_model_1k(void **state)
{
	deepfs_model(1024, 1500);
}

/* Release frees the blocks: not vacuous, the region did hold some. */
static void test_deepfs_release_frees(void **state)
{
	struct rl_backend be = { .ops = &rl_deepfs_aops };
	unsigned char *buf = page_alloc(1);
	struct rl_backing *b, *warm;
	struct dfs_env e;
	uint64_t free0, i;

	dfs_env_up(&e, 64ull << 20, 4096, 0);
	be.mp = e.mp;
	assert_int_equal(rl_deepfs_aops.open_anon(&be, 1024, &warm), 0);
	rl_deepfs_aops.release(warm);
	free0 = dfs_free_blocks(e.mp);
	assert_int_equal(rl_deepfs_aops.open_anon(&be, 1024, &b), 0);
	for (i = 0; i < 1024; i += 2) {
		fill_page(buf, i + 1);
		assert_int_equal(rl_deepfs_aops.writepage(b, i, buf), 0);
	}
	assert_true(dfs_free_blocks(e.mp) + 512 <= free0);
	/* discard gives back what it covers */
	assert_int_equal(rl_deepfs_aops.discard(b, 0, 512), 0);
	assert_true(dfs_free_blocks(e.mp) + 256 <= free0);
	assert_true(dfs_free_blocks(e.mp) + 256 + 16 > free0);
	rl_deepfs_aops.release(b);
	assert_int_equal(dfs_free_blocks(e.mp), free0);
	free(buf);
	dfs_env_down(&e);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_file_model(void **state)
{
	struct rl_backend be = { .ops = &rl_file_aops };
	struct rl_backing *b;
	char *dir = fixture_tmpdir();
	int fds0;

	fixture_seed_rng("file");
	be.dir = dir;
	/* this thread's io_uring holds an fd of its own from its first write */
	assert_int_equal(rl_file_aops.open_anon(&be, 8, &b), 0);
	{
		unsigned char *pg = page_alloc(1);

		assert_int_equal(rl_file_aops.writepage(b, 0, pg), 0);
		free(pg);
	}
	rl_file_aops.release(b);
	fds0 = count_fds();
	/* each region holds one fd while open, and the directory stays empty */
	assert_int_equal(rl_file_aops.open_anon(&be, 8, &b), 0);
	assert_int_equal(count_fds(), fds0 + 1);
	assert_int_equal(count_entries(dir), 0);
	rl_file_aops.release(b);
	assert_int_equal(count_fds(), fds0);

	model_run(&be, 4000, "file");
	assert_int_equal(count_fds(), fds0);
	assert_int_equal(count_entries(dir), 0);
	assert_int_equal(rl_file_aops.open_file(&be, 1, &b), -EOPNOTSUPP);

	be.dir = "/nonexistent-rl-aops";
	assert_int_equal(rl_file_aops.open_anon(&be, 8, &b), -ENOENT);
	fixture_rmdir(dir);
	free(dir);
}

/* ---- deepfs FILE regions -------------------------------------------------------- */

static uint64_t file_size(struct dfs_mount *mp, uint64_t ino)
{
	struct dfs_stat st;

	assert_int_equal(dfs_getattr(mp, ino, &st), 0);
	return st.size;
}

static void test_deepfs_file_region(void **state)
{
	const uint64_t size = 3 * PG + 1000;
	struct rl_backend be = { .ops = &rl_deepfs_aops };
	unsigned char *data = page_alloc(4), *pg = page_alloc(1), *two = page_alloc(2);
	unsigned char *back = page_alloc(4);
	const void *srcs[4];
	struct rl_backing *b;
	struct dfs_stat st;
	struct dfs_env e;
	uint64_t ino, i;

	dfs_env_up(&e, 32ull << 20, 4096, 0);
	be.mp = e.mp;
	for (i = 0; i < 4; i++)
		fill_page(data + i * PG, 100 + i);
	assert_int_equal(dfs_mknod(e.mp, dfs_root_ino(e.mp), "data", S_IFREG | 0644, 0, &cred,
				   &st), 0);
	ino = st.ino;
	assert_int_equal(dfs_write(e.mp, ino, data, size, 0), (ssize_t)size);
	assert_int_equal(dfs_sync(e.mp), 0);

	/* not regular files, or no inode at all */
	assert_int_equal(rl_deepfs_aops.open_file(&be, dfs_root_ino(e.mp), &b), -EISDIR);
	assert_true(rl_deepfs_aops.open_file(&be, ino + 1000, &b) < 0);

	assert_int_equal(rl_deepfs_aops.open_file(&be, ino, &b), 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(rl_deepfs_aops.readpage(b, i, pg), 0);
		assert_memory_equal(pg, data + i * PG, PG);
	}
	assert_int_equal(rl_deepfs_aops.readpage(b, 3, pg), 0);
	assert_memory_equal(pg, data + 3 * PG, 1000);
	for (i = 1000; i < PG; i++)
		assert_int_equal(pg[i], 0);
	memset(pg, 0x77, PG);
	assert_int_equal(rl_deepfs_aops.readpage(b, 9, pg), 0);
	for (i = 0; i < PG; i++)
		assert_int_equal(pg[i], 0);

	/* the last, partial page: written up to EOF, the size stays */
	fill_page(pg, 7);
	assert_int_equal(rl_deepfs_aops.writepage(b, 3, pg), 0);
	assert_int_equal(file_size(e.mp, ino), size);
	memset(back, 0, 4 * PG);
	assert_int_equal(dfs_read(e.mp, ino, back, 4 * PG, 0), (ssize_t)size);
	assert_memory_equal(back + 3 * PG, pg, 1000);
	assert_memory_equal(back, data, 3 * PG);
	/* past EOF: nothing */
	assert_int_equal(rl_deepfs_aops.writepage(b, 4, pg), 0);
	assert_int_equal(rl_deepfs_aops.writepage(b, 100, pg), 0);
	assert_int_equal(file_size(e.mp, ino), size);
	/* writepages across EOF: one contiguous source, cut at EOF */
	fill_page(two, 21);
	fill_page(two + PG, 22);
	srcs[0] = two;
	srcs[1] = two + PG;
	fill_page(data, 23);
	srcs[2] = data;
	assert_int_equal(rl_deepfs_aops.writepages(b, 2, 3, srcs, true), 0);
	assert_int_equal(file_size(e.mp, ino), size);
	assert_int_equal(dfs_read(e.mp, ino, back, 4 * PG, 0), (ssize_t)size);
	assert_memory_equal(back + 2 * PG, two, PG);
	assert_memory_equal(back + 3 * PG, two + PG, 1000);
	assert_int_equal(rl_deepfs_aops.writepages(b, 5, 2, srcs, false), 0);
	assert_int_equal(file_size(e.mp, ino), size);
	/* and nothing of it is dirty in deepfs: it was written back */
	{
		struct dfs_pagecache_stats ps;

		pthread_mutex_lock(&e.mp->m_lock);
		dfs_pagecache_get_stats(e.mp, &ps);
		pthread_mutex_unlock(&e.mp->m_lock);
		assert_int_equal(ps.nr_dirty, 0);
	}
	assert_int_equal(rl_deepfs_aops.discard(b, 0, 1), -EOPNOTSUPP);
	assert_int_equal(rl_deepfs_aops.writepage(b, UINT64_MAX / PG + 1, pg), -EINVAL);
	assert_int_equal(file_size(e.mp, ino), size);

	/* the region's reference keeps an unlinked file alive until release */
	assert_int_equal(dfs_unlink(e.mp, dfs_root_ino(e.mp), "data"), 0);
	dfs_forget(e.mp, ino, 1);	/* mknod's lookup */
	assert_int_equal(rl_deepfs_aops.readpage(b, 2, pg), 0);
	assert_memory_equal(pg, two, PG);
	assert_int_equal(rl_deepfs_aops.writepage(b, 0, pg), 0);
	rl_deepfs_aops.release(b);
	assert_int_equal(dfs_getattr(e.mp, ino, &st) == 0, 0);

	free(data);
	free(pg);
	free(two);
	free(back);
	dfs_env_down(&e);
}

static void fsck_clean(const char *path, struct dfs_fsck_result *r)
{
	struct dfs_fsck_opts o = { .repair = false, .verbose = false };

	assert_int_equal(dfs_fsck(path, &o, r), 0);
	assert_int_equal(r->problems, 0);
}

/* A daemon that dies with regions open leaves unlinked inodes: the next
 * mount frees them and their blocks. */
static void test_deepfs_crash_frees(void **state)
{
	struct rl_backend be = { .ops = &rl_deepfs_aops };
	struct dfs_mount_opts opts = { 0 };
	unsigned char *pg = page_alloc(1);
	struct dfs_fsck_result clean, crashed;
	struct rl_backing *b;
	struct dfs_mount *mp2;
	struct dfs_env e;
	char crash[300];
	uint64_t free0, i;

	dfs_env_up(&e, 32ull << 20, 4096, 0);
	be.mp = e.mp;
	free0 = dfs_free_blocks(e.mp);
	assert_int_equal(rl_deepfs_aops.open_anon(&be, 256, &b), 0);
	for (i = 0; i < 256; i++) {
		fill_page(pg, i + 1);
		assert_int_equal(rl_deepfs_aops.writepage(b, i, pg), 0);
	}
	assert_true(dfs_free_blocks(e.mp) + 256 <= free0);
	/* the image as a crash right now would leave it */
	snprintf(crash, sizeof(crash), "%s/crash.img", e.dir);
	assert_int_equal(fixture_copy_file(e.path, crash), 0);
	rl_deepfs_aops.release(b);
	assert_int_equal(dfs_unmount(e.mp), 0);
	fsck_clean(e.path, &clean);

	/* compared by fsck: free counts of two mounts differ by their
	 * reserve pools, which are sized from the state at mount */
	assert_int_equal(dfs_mount(crash, &opts, &mp2), 0);
	assert_int_equal(dfs_unmount(mp2), 0);
	fsck_clean(crash, &crashed);
	assert_int_equal(crashed.blocks_used, clean.blocks_used);
	assert_int_equal(crashed.inodes, clean.inodes);
	free(pg);
	fixture_rmdir(e.dir);
	free(e.dir);
}

/* ---- ENOSPC ------------------------------------------------------------------------ */

static void test_deepfs_enospc(void **state)
{
	struct rl_backend be = { .ops = &rl_deepfs_aops };
	unsigned char *pg = page_alloc(1);
	struct rl_backing *b, *b2;
	struct dfs_env e;
	uint64_t i, n, free0;
	int error = 0;

	dfs_env_up(&e, 16ull << 20, 4096, 0);
	be.mp = e.mp;
	assert_int_equal(rl_deepfs_aops.open_anon(&be, 16384, &b2), 0);
	rl_deepfs_aops.release(b2);
	free0 = dfs_free_blocks(e.mp);
	assert_int_equal(rl_deepfs_aops.open_anon(&be, 16384, &b), 0);
	assert_int_equal(rl_deepfs_aops.open_anon(&be, 16, &b2), 0);
	for (n = 0; n < 16384; n++) {
		fill_page(pg, n + 1);
		error = rl_deepfs_aops.writepage(b, n, pg);
		if (error)
			break;
	}
	print_message("deepfs 16 MiB image: %" PRIu64 " pages written, then %s\n", n,
		      strerror(-error));
	assert_int_equal(error, -ENOSPC);
	assert_true(n > 2048);
	/* writepages too, in another region */
	{
		const void *srcs[2] = { pg, pg };

		assert_int_equal(rl_deepfs_aops.writepages(b2, 0, 2, srcs, true), -ENOSPC);
	}
	for (i = 0; i < n; i++) {
		assert_int_equal(rl_deepfs_aops.readpage(b, i, pg), 0);
		check_page(pg, i + 1, "after ENOSPC", i);
	}
	/* space comes back: the full region's discard lets the other write */
	assert_int_equal(rl_deepfs_aops.discard(b, 0, 64), 0);
	fill_page(pg, 99);
	assert_int_equal(rl_deepfs_aops.writepage(b2, 0, pg), 0);
	rl_deepfs_aops.release(b2);
	rl_deepfs_aops.release(b);
	assert_int_equal(dfs_free_blocks(e.mp), free0);
	free(pg);
	dfs_env_down(&e);
}

/* ---- deepfs's own page cache ---------------------------------------------------------- */

static uint64_t dfs_cached_pages(struct dfs_mount *mp, uint64_t *dirty)
{
	struct dfs_pagecache_stats ps;

	pthread_mutex_lock(&mp->m_lock);
	dfs_pagecache_get_stats(mp, &ps);
	pthread_mutex_unlock(&mp->m_lock);
	*dirty = ps.nr_dirty;
	return ps.nr_pages;
}

/* Evicted and faulted-in anonymous pages leave deepfs's cache: no double
 * caching of what the pager evicted or holds. */
static void test_deepfs_no_double_cache(void **state)
{
	struct rl_backend be = { .ops = &rl_deepfs_aops };
	unsigned char *buf = page_alloc(16);
	const void *srcs[16];
	struct rl_backing *b;
	struct dfs_env e;
	uint64_t i, dirty;

	dfs_env_up(&e, 64ull << 20, 4096, 0);
	be.mp = e.mp;
	assert_int_equal(rl_deepfs_aops.open_anon(&be, 1024, &b), 0);
	for (i = 0; i < 512; i++) {
		fill_page(buf, i + 1);
		assert_int_equal(rl_deepfs_aops.writepage(b, i, buf), 0);
	}
	assert_int_equal(dfs_cached_pages(e.mp, &dirty), 0);
	for (i = 0; i < 16; i++) {
		fill_page(buf + i * PG, 512 + i + 1);
		srcs[i] = buf + i * PG;
	}
	assert_int_equal(rl_deepfs_aops.writepages(b, 512, 16, srcs, true), 0);
	assert_int_equal(dfs_cached_pages(e.mp, &dirty), 0);
	for (i = 0; i < 528; i++) {
		assert_int_equal(rl_deepfs_aops.readpage(b, i, buf), 0);
		check_page(buf, i + 1, "after writeback", i);
	}
	assert_int_equal(dfs_cached_pages(e.mp, &dirty), 0);
	assert_int_equal(dirty, 0);
	rl_deepfs_aops.release(b);
	free(buf);
	dfs_env_down(&e);
}

/* Threads on one region, each on its own indexes (aops.h allows that). */
#define CONC_THREADS	4
#define CONC_PAGES	128
#define CONC_OPS	400

struct conc_arg {
	struct rl_backing *b;
	const struct rl_aops *ops;
	int t;
	uint64_t seed;
	uint64_t *seeds;	/* shared array; thread t owns indexes = t mod CONC_THREADS */
	int failed;
};

static void *conc_thread(void *p)
{
	struct conc_arg *a = p;
	unsigned char *pg = page_alloc(1), *want = page_alloc(1);
	uint64_t x = a->seed;
	int op;

	for (op = 0; op < CONC_OPS && !a->failed; op++) {
		uint64_t idx, r;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		r = x;
		idx = (r >> 8) % (CONC_PAGES / CONC_THREADS) * CONC_THREADS + (uint64_t)a->t;
		if (r % 2) {
			a->seeds[idx] = r | 1;
			fill_page(pg, a->seeds[idx]);
			if (a->ops->writepage(a->b, idx, pg))
				a->failed = 1;
		} else {
			if (a->ops->readpage(a->b, idx, pg))
				a->failed = 1;
			if (a->seeds[idx])
				fill_page(want, a->seeds[idx]);
			else
				memset(want, 0, PG);
			if (memcmp(pg, want, PG))
				a->failed = 2;
		}
	}
	free(pg);
	free(want);
	return NULL;
}

static void concurrent(struct rl_backend *be, const char *what)
{
	struct conc_arg args[CONC_THREADS];
	pthread_t th[CONC_THREADS];
	uint64_t seeds[CONC_PAGES] = { 0 };
	unsigned char *pg = page_alloc(1);
	struct rl_backing *b;
	int t;
	uint64_t i;

	fixture_seed_rng(what);
	assert_int_equal(be->ops->open_anon(be, CONC_PAGES, &b), 0);
	for (t = 0; t < CONC_THREADS; t++) {
		args[t] = (struct conc_arg){ .b = b, .ops = be->ops, .t = t, .seed = next_seed(),
					     .seeds = seeds };
		assert_int_equal(pthread_create(&th[t], NULL, conc_thread, &args[t]), 0);
	}
	for (t = 0; t < CONC_THREADS; t++) {
		pthread_join(th[t], NULL);
		if (args[t].failed)
			fail_msg("%s: thread %d: %s", what, t,
				 args[t].failed == 1 ? "an a_op failed" : "a page read back wrong");
	}
	for (i = 0; i < CONC_PAGES; i++) {
		assert_int_equal(be->ops->readpage(b, i, pg), 0);
		check_page(pg, seeds[i], what, i);
	}
	be->ops->release(b);
	free(pg);
}

static void test_concurrent(void **state)
{
	struct rl_backend be = { .ops = &rl_deepfs_aops };
	struct dfs_env e;
	char *dir;

	/* a small deepfs cache: its reclaim runs between the threads' calls */
	dfs_env_up(&e, 64ull << 20, 4096, 8 * PG);
	be.mp = e.mp;
	concurrent(&be, "deepfs, 4 threads");
	dfs_env_down(&e);
	dir = fixture_tmpdir();
	be = (struct rl_backend){ .ops = &rl_file_aops, .dir = dir };
	concurrent(&be, "file, 4 threads");
	fixture_rmdir(dir);
	free(dir);
}

/* ---- batch or single, and page_mkwrite -------------------------------------------- */

/* Writes pages [first, first+n) of b with seeds base+i; returns the IOs. */
static uint64_t write_run(struct rl_backend *be, struct rl_backing *b, uint64_t first,
			  uint64_t n, uint64_t base, bool batch)
{
	unsigned char *buf = page_alloc(n);
	const void **srcs = calloc(n, sizeof(*srcs));
	uint64_t io0 = atomic_load(&be->write_ios), by0 = atomic_load(&be->write_bytes), i;

	assert_non_null(srcs);
	/* scattered sources, as frames are: buf reversed */
	for (i = 0; i < n; i++) {
		srcs[i] = buf + (n - 1 - i) * PG;
		fill_page((void *)srcs[i], base + i);
	}
	assert_int_equal(be->ops->writepages(b, first, n, srcs, batch), 0);
	assert_int_equal(atomic_load(&be->write_bytes) - by0, n * PG);
	free(srcs);
	free(buf);
	return atomic_load(&be->write_ios) - io0;
}

static void check_run(struct rl_backend *be, struct rl_backing *b, uint64_t first, uint64_t n,
		      uint64_t base, const char *what)
{
	unsigned char *pg = page_alloc(1);

	for (uint64_t i = 0; i < n; i++) {
		assert_int_equal(be->ops->readpage(b, first + i, pg), 0);
		check_page(pg, base + i, what, first + i);
	}
	free(pg);
}

static void io_counts(struct rl_backend *be, const char *what)
{
	struct rl_backing *b;
	uint64_t ios;

	assert_int_equal(be->ops->open_anon(be, 256, &b), 0);
	/* a fresh region: one run on disk (deepfs allocates the delalloc
	 * extent of the call at once, on an empty image) */
	ios = write_run(be, b, 0, 48, 1000, true);
	print_message("%s: 48 pages batched: %" PRIu64 " IOs\n", what, ios);
	assert_int_equal(ios, 1);
	check_run(be, b, 0, 48, 1000, what);
	ios = write_run(be, b, 0, 48, 2000, false);
	assert_int_equal(ios, 48);
	check_run(be, b, 0, 48, 2000, what);
	/* longer than a bio holds (deepfs: 64 vectors) */
	ios = write_run(be, b, 100, 100, 3000, true);
	print_message("%s: 100 pages batched: %" PRIu64 " IOs\n", what, ios);
	assert_true(ios >= 1 && ios <= 2);
	check_run(be, b, 100, 100, 3000, what);
	/* writepage is one IO */
	ios = atomic_load(&be->write_ios);
	{
		unsigned char *pg = page_alloc(1);

		fill_page(pg, 77);
		assert_int_equal(be->ops->writepage(b, 255, pg), 0);
		free(pg);
	}
	assert_int_equal(atomic_load(&be->write_ios) - ios, 1);
	be->ops->release(b);
}

static void test_io_counts(void **state)
{
	struct rl_backend be = { .ops = &rl_deepfs_aops };
	struct dfs_env e;
	char *dir;

	dfs_env_up(&e, 64ull << 20, 4096, 0);
	be.mp = e.mp;
	io_counts(&be, "deepfs");
	dfs_env_down(&e);
	dir = fixture_tmpdir();
	be = (struct rl_backend){ .ops = &rl_file_aops, .dir = dir };
	io_counts(&be, "file");
	fixture_rmdir(dir);
	free(dir);
}

/* page_mkwrite until the store is full: -ENOSPC comes from page_mkwrite.
 * Returns the pages accepted. */
static uint64_t mkwrite_until_full(struct rl_backend *be, struct rl_backing *b, uint64_t max,
				   const char *what)
{
	uint64_t n;
	int error = 0;

	for (n = 0; n < max; n++) {
		error = be->ops->page_mkwrite(b, n);
		if (error)
			break;
	}
	print_message("%s: page_mkwrite accepted %" PRIu64 " pages, then %s\n", what, n,
		      strerror(-error));
	assert_int_equal(error, -ENOSPC);
	return n;
}

/* Every page page_mkwrite accepted is written back without an error and
 * reads back: nothing is lost at writeback. */
static void write_reserved(struct rl_backend *be, struct rl_backing *b, uint64_t n,
			   const char *what)
{
	unsigned char *buf = page_alloc(16);
	const void *srcs[16];
	uint64_t i, j;

	for (i = 0; i < n; i += 16) {
		uint64_t k = n - i < 16 ? n - i : 16;

		for (j = 0; j < k; j++) {
			srcs[j] = buf + j * PG;
			fill_page(buf + j * PG, 5000 + i + j);
		}
		/* alternate batched and single */
		assert_int_equal(be->ops->writepages(b, i, k, srcs, (i / 16) % 2), 0);
	}
	check_run(be, b, 0, n, 5000, what);
	free(buf);
}

static void test_deepfs_mkwrite_enospc(void **state)
{
	struct rl_backend be = { .ops = &rl_deepfs_aops };
	unsigned char *pg = page_alloc(1);
	struct rl_backing *b, *b2;
	struct dfs_env e;
	uint64_t n;

	dfs_env_up(&e, 16ull << 20, 4096, 0);
	be.mp = e.mp;
	assert_int_equal(rl_deepfs_aops.open_anon(&be, 16384, &b), 0);
	assert_int_equal(rl_deepfs_aops.open_anon(&be, 16, &b2), 0);
	n = mkwrite_until_full(&be, b, 16384, "deepfs 16 MiB image");
	assert_true(n > 2048);
	/* the space is gone for the other region too, at its fault */
	assert_int_equal(rl_deepfs_aops.page_mkwrite(b2, 0), -ENOSPC);
	write_reserved(&be, b, n, "deepfs 16 MiB image");
	/* and comes back with a discard */
	assert_int_equal(rl_deepfs_aops.discard(b, 0, 64), 0);
	assert_int_equal(rl_deepfs_aops.page_mkwrite(b2, 0), 0);
	fill_page(pg, 1);
	assert_int_equal(rl_deepfs_aops.writepage(b2, 0, pg), 0);
	rl_deepfs_aops.release(b2);
	rl_deepfs_aops.release(b);
	free(pg);
	dfs_env_down(&e);
}

/* The file backend on a 1 MiB tmpfs (needs root to mount; skipped without).
 * The teardown unmounts it whatever the test did. */
static char *tmpfs_dir;
static bool tmpfs_mounted;

static int tmpfs_teardown(void **state)
{
	char cmd[512];

	if (tmpfs_mounted) {
		snprintf(cmd, sizeof(cmd), "umount %s", tmpfs_dir);
		if (system(cmd) != 0) {
			fprintf(stderr, "test_aops: cannot unmount the tmpfs on %s\n", tmpfs_dir);
			return -1;
		}
		tmpfs_mounted = false;
	}
	if (tmpfs_dir) {
		fixture_rmdir(tmpfs_dir);
		free(tmpfs_dir);
		tmpfs_dir = NULL;
	}
	return 0;
}

static void test_file_mkwrite_enospc(void **state)
{
	struct rl_backend be = { .ops = &rl_file_aops };
	struct rl_backing *b;
	char cmd[512];
	uint64_t n;

	tmpfs_dir = fixture_tmpdir();
	snprintf(cmd, sizeof(cmd), "mount -t tmpfs -o size=1m rl-aops-test %s 2>/dev/null",
		 tmpfs_dir);
	if (geteuid() != 0 || system(cmd) != 0) {
		print_message("file backend ENOSPC: cannot mount a tmpfs here (not root?): skipped\n");
		skip();
	}
	tmpfs_mounted = true;
	be.dir = tmpfs_dir;
	assert_int_equal(rl_file_aops.open_anon(&be, 1024, &b), 0);
	n = mkwrite_until_full(&be, b, 1024, "file backend, 1 MiB tmpfs");
	write_reserved(&be, b, n, "file backend, 1 MiB tmpfs");
	assert_true(n > 64 && n <= 256);
	rl_file_aops.release(b);
}

/* ---- numbers ------------------------------------------------------------------------- */

#define BENCH_PAGES	8192	/* 32 MiB */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void bench(struct rl_backend *be, const char *what, struct dfs_mount *mp)
{
	const struct rl_aops *ops = be->ops;
	unsigned char *pg = page_alloc(1), *batch = page_alloc(16);
	const void *srcs[16];
	struct rl_backing *b, *b2, *b3;
	double t0, tw, tws, tws1, tr, trr;
	uint64_t i, j, dirty, io0, io1, io2, io3;

	assert_int_equal(ops->open_anon(be, BENCH_PAGES, &b), 0);
	assert_int_equal(ops->open_anon(be, BENCH_PAGES, &b2), 0);
	io0 = atomic_load(&be->write_ios);
	t0 = now_s();
	for (i = 0; i < BENCH_PAGES; i++) {
		fill_page(pg, i + 1);
		assert_int_equal(ops->writepage(b, i, pg), 0);
	}
	tw = now_s() - t0;
	io1 = atomic_load(&be->write_ios);
	if (mp) {
		print_message("%s: after %d writepages deepfs caches %" PRIu64 " pages\n",
			      what, BENCH_PAGES, dfs_cached_pages(mp, &dirty));
		assert_int_equal(dirty, 0);
	}
	t0 = now_s();
	for (i = 0; i < BENCH_PAGES; i += 16) {
		for (j = 0; j < 16; j++) {
			fill_page(batch + j * PG, i + j + 1);
			srcs[j] = batch + j * PG;
		}
		assert_int_equal(ops->writepages(b2, i, 16, srcs, true), 0);
	}
	tws = now_s() - t0;
	io2 = atomic_load(&be->write_ios);
	/* the same into a fresh region, one IO per page */
	assert_int_equal(ops->open_anon(be, BENCH_PAGES, &b3), 0);
	t0 = now_s();
	for (i = 0; i < BENCH_PAGES; i += 16) {
		for (j = 0; j < 16; j++) {
			fill_page(batch + j * PG, i + j + 1);
			srcs[j] = batch + j * PG;
		}
		assert_int_equal(ops->writepages(b3, i, 16, srcs, false), 0);
	}
	tws1 = now_s() - t0;
	io3 = atomic_load(&be->write_ios);
	t0 = now_s();
	for (i = 0; i < BENCH_PAGES; i++)
		assert_int_equal(ops->readpage(b, i, pg), 0);
	tr = now_s() - t0;
	t0 = now_s();
	for (i = 0; i < BENCH_PAGES; i++) {
		uint64_t idx = (i * 2654435761u) % BENCH_PAGES;

		assert_int_equal(ops->readpage(b2, idx, pg), 0);
		if (i % 512 == 0)
			check_page(pg, idx + 1, what, idx);
	}
	trr = now_s() - t0;
	print_message("%s: pages/s: writepage %.0f, writepages(16) batched %.0f, single %.0f, readpage sequential %.0f, random %.0f\n",
		      what, BENCH_PAGES / tw, BENCH_PAGES / tws, BENCH_PAGES / tws1,
		      BENCH_PAGES / tr, BENCH_PAGES / trr);
	print_message("%s: write IOs: writepage %" PRIu64 ", writepages(16) batched %" PRIu64
		      ", single %" PRIu64 " (for %d pages each)\n", what, io1 - io0, io2 - io1,
		      io3 - io2, BENCH_PAGES);
	assert_int_equal(io1 - io0, BENCH_PAGES);
	assert_int_equal(io3 - io2, BENCH_PAGES);
	assert_true(io2 - io1 <= BENCH_PAGES / 16 * 2);
	ops->release(b);
	ops->release(b2);
	ops->release(b3);
	free(pg);
	free(batch);
}

static void test_bench(void **state)
{
	struct rl_backend be = { .ops = &rl_deepfs_aops };
	struct dfs_env e;
	char *dir;

	dfs_env_up(&e, 256ull << 20, 4096, 0);
	be.mp = e.mp;
	bench(&be, "deepfs (/var/tmp image)", e.mp);
	dfs_env_down(&e);

	dir = fixture_tmpdir();
	be = (struct rl_backend){ .ops = &rl_file_aops, .dir = dir };
	bench(&be, "file (/var/tmp, host page cache)", NULL);
	fixture_rmdir(dir);
	free(dir);
}

static void test_names(void **state)
{
	struct rl_backend d = { .ops = &rl_deepfs_aops }, f = { .ops = &rl_file_aops };

	assert_string_equal(rl_backend_name(&d), "deepfs");
	assert_string_equal(rl_backend_name(&f), "file");
	assert_string_equal(rl_backend_name(NULL), "none");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_deepfs_model_4k),
		cmocka_unit_test(test_deepfs_model_1k),
		cmocka_unit_test(test_deepfs_release_frees),
		cmocka_unit_test(test_file_model),
		cmocka_unit_test(test_deepfs_file_region),
		cmocka_unit_test(test_deepfs_enospc),
		cmocka_unit_test(test_deepfs_crash_frees),
		cmocka_unit_test(test_deepfs_no_double_cache),
		cmocka_unit_test(test_io_counts),
		cmocka_unit_test(test_deepfs_mkwrite_enospc),
		cmocka_unit_test_teardown(test_file_mkwrite_enospc, tmpfs_teardown),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_bench),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
