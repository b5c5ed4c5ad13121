/* SPDX-License-Identifier: MIT */
/*
 * Writeback of external pages (fs/writeback_ext.c: dfs_page_mkwrite,
 * dfs_writepages_ext) through the public API.
 *
 * Pages written from the caller's memory read back through dfs_read and
 * after a remount; single and batched writeback write the same data, with
 * one IO per page and one per contiguous disk run (the run lengths come
 * from the extent map, the IO counts from the call's statistics and from
 * the IO log, which must record them as DATA writes); dfs_page_mkwrite on a
 * full image says ENOSPC and everything it accepted is then written; a
 * clean and a dirty copy in deepfs's own cache give way to the caller's
 * data without losing anything; EOF cuts the writes and the tail of the
 * last page reaches the disk as zeroes; threads write different ranges of
 * one inode and of two inodes while another punches and writes through
 * deepfs's own path, and a truncate loop frees blocks under a writer. With
 * one external IO held in flight by a test hook, the fence is checked by
 * state, not time: other calls (external writeback of the same inode too)
 * go through, so the lock is not held during the IO, while a truncate, a
 * punch and a dfs_write of that inode wait until it completes. fsck is
 * clean after each test.
 *
 * RL_TEST_SEED=<n> repeats a run; the seed is printed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "fs/blkdev.h"
#include "fs/bmap.h"
#include "fs/deepfs.h"
#include "fs/file.h"
#include "fs/inode.h"
#include "fs/mount.h"
#include "fs/msg.h"
#include "fs/pagecache.h"
#include "fixture.h"

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE	0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE	0x02
#endif

#define PG	DFS_PAGE_SIZE

/* The content of a page written with seed s. */
static void fill_page(void *page, uint64_t s)
{
	uint64_t *w = page, x = s | 1;
	size_t i;

	for (i = 0; i < PG / sizeof(*w); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x + i;
	}
}

static void *page_alloc(size_t n)
{
	void *p = NULL;

	assert_int_equal(posix_memalign(&p, PG, n * PG), 0);
	return p;
}

/* n pages with seeds base+i, at scattered addresses (buf reversed), as the
 * pager's frames are: no two neighbours adjacent in memory. */
struct pages {
	unsigned char *buf;
	const void **srcs;
	uint64_t n;
};

static void pages_make(struct pages *p, uint64_t n, uint64_t base)
{
	uint64_t i;

	p->n = n;
	p->buf = page_alloc(n);
	p->srcs = calloc(n, sizeof(*p->srcs));
	assert_non_null(p->srcs);
	for (i = 0; i < n; i++) {
		p->srcs[i] = p->buf + (n - 1 - i) * PG;
		fill_page((void *)p->srcs[i], base + i);
	}
}

static void pages_free(struct pages *p)
{
	free(p->buf);
	free(p->srcs);
}

/* Pages [first, first+n) of ino read through dfs_read hold seeds base+i. */
static void check_file(struct dfs_mount *mp, uint64_t ino, uint64_t first, uint64_t n,
		       uint64_t base, const char *what)
{
	unsigned char *got = page_alloc(1), *want = page_alloc(1);
	uint64_t i;

	for (i = 0; i < n; i++) {
		assert_int_equal(dfs_read(mp, ino, got, PG, (first + i) * PG), (ssize_t)PG);
		fill_page(want, base + i);
		if (memcmp(got, want, PG))
			fail_msg("%s: page %" PRIu64 " differs", what, first + i);
	}
	free(got);
	free(want);
}

struct env {
	char *dir;
	char path[256];
	struct dfs_mount *mp;
	uint32_t blocksize;
};

static void env_mount(struct env *e)
{
	struct dfs_mount_opts opts = { .bufcache_bytes = 4u << 20 };

	assert_int_equal(dfs_mount(e->path, &opts, &e->mp), 0);
	dfs_blkdev_iolog_enable(e->mp->m_bdev, true);
}

static void env_up(struct env *e, uint64_t size, uint32_t blocksize)
{
	struct dfs_mkfs_opts mo = { .size = size, .blocksize = blocksize };

	e->dir = fixture_tmpdir();
	e->blocksize = blocksize;
	snprintf(e->path, sizeof(e->path), "%s/wbext.img", e->dir);
	assert_int_equal(dfs_mkfs(e->path, &mo), 0);
	env_mount(e);
}

static void env_remount(struct env *e)
{
	assert_int_equal(dfs_unmount(e->mp), 0);
	env_mount(e);
}

/* Unmount, fsck (read-only, must be clean), remove. */
static void env_down(struct env *e)
{
	struct dfs_fsck_opts o = { .repair = false, .verbose = false };
	struct dfs_fsck_result r;

	assert_int_equal(dfs_unmount(e->mp), 0);
	assert_int_equal(dfs_fsck(e->path, &o, &r), 0);
	assert_int_equal(r.problems, 0);
	fixture_rmdir(e->dir);
	free(e->dir);
}

static const struct dfs_cred cred = { 0, 0 };

/* A regular file of size bytes (sparse), by name in the root. */
static uint64_t mkfile(struct dfs_mount *mp, const char *name, uint64_t size)
{
	struct dfs_setattr sa = { .valid = DFS_SET_SIZE, .size = size };
	struct dfs_stat st;

	assert_int_equal(dfs_mknod(mp, dfs_root_ino(mp), name, S_IFREG | 0644, 0, &cred, &st), 0);
	assert_int_equal(dfs_setattr(mp, st.ino, &sa, NULL), 0);
	return st.ino;
}

static uint64_t file_size(struct dfs_mount *mp, uint64_t ino)
{
	struct dfs_stat st;

	assert_int_equal(dfs_getattr(mp, ino, &st), 0);
	return st.size;
}

/* Data writes the IO log holds from record from on: count and bytes. */
static void iolog_data_writes(struct dfs_mount *mp, size_t from, uint64_t *n, uint64_t *bytes,
			      size_t *end)
{
	struct dfs_iolog_rec *recs;
	size_t len = dfs_blkdev_iolog_get(mp->m_bdev, &recs), i;

	assert_non_null(recs);
	*n = *bytes = 0;
	for (i = from; i < len; i++) {
		if (recs[i].dir != DFS_IO_WRITE || recs[i].kind != DFS_IOK_DATA)
			continue;
		assert_int_equal(recs[i].error, 0);
		(*n)++;
		*bytes += recs[i].len;
	}
	*end = len;
	free(recs);
}

static size_t iolog_len(struct dfs_mount *mp)
{
	uint64_t n, b;
	size_t end;

	iolog_data_writes(mp, 0, &n, &b, &end);
	return end;
}

/*
 * Runs of pages [first, first+n) contiguous on disk (4096-byte blocks),
 * from the extent map; *bios gets the batched IOs they make (a bio holds
 * DFS_BIO_MAX_VECS pages of scattered memory).
 */
static uint64_t disk_runs(struct dfs_mount *mp, uint64_t ino, uint64_t first, uint64_t n,
			  uint64_t *bios)
{
	struct dfs_bmbt_irec map;
	struct dfs_inode *ip;
	uint64_t i, prev = 0, runs = 0, runlen = 0;
	int nmaps;

	assert_int_equal(mp->m_blocksize, PG);
	*bios = 0;
	pthread_mutex_lock(&mp->m_lock);
	assert_int_equal(dfs_iget(mp, NULL, ino, &ip), 0);
	for (i = 0; i < n; i++) {
		nmaps = 1;
		assert_int_equal(dfs_bmapi_read(ip, first + i, 1, &map, &nmaps), 0);
		assert_true(map.br_startblock < DFS_HOLESTARTBLOCK);
		if (i && map.br_startblock == prev + 1) {
			runlen++;
		} else {
			if (runlen)
				*bios += (runlen + DFS_BIO_MAX_VECS - 1) / DFS_BIO_MAX_VECS;
			runs++;
			runlen = 1;
		}
		prev = map.br_startblock;
	}
	*bios += (runlen + DFS_BIO_MAX_VECS - 1) / DFS_BIO_MAX_VECS;
	dfs_irele(ip);
	pthread_mutex_unlock(&mp->m_lock);
	return runs;
}

/* Writes with dfs_writepages_ext and checks its counts against the IO log. */
static struct dfs_wb_stats wb(struct dfs_mount *mp, uint64_t ino, uint64_t first,
			      const struct pages *p, unsigned flags)
{
	struct dfs_wb_stats st;
	uint64_t n, bytes;
	size_t from = iolog_len(mp), end;

	assert_int_equal(dfs_writepages_ext(mp, ino, first, p->n, p->srcs, flags, &st), 0);
	iolog_data_writes(mp, from, &n, &bytes, &end);
	assert_int_equal(n, st.ios);
	assert_int_equal(bytes, st.bytes);
	return st;
}

/* ---- round trip --------------------------------------------------------------- */

static void roundtrip(uint32_t blocksize)
{
	struct dfs_wb_stats st;
	struct pages p;
	struct env e;
	uint64_t ino, i;

	env_up(&e, 64ull << 20, blocksize);
	ino = mkfile(e.mp, "f", 256 * PG);
	pages_make(&p, 200, 100);
	for (i = 0; i < 200; i++)
		assert_int_equal(dfs_page_mkwrite(e.mp, ino, 20 + i), 0);
	st = wb(e.mp, ino, 20, &p, 0);
	assert_int_equal(st.pages, 200);
	assert_int_equal(st.bytes, 200 * PG);
	print_message("bs %u: 200 fresh pages batched: %" PRIu64 " IOs\n", blocksize, st.ios);
	/* one allocation on an empty image: 64 pages per bio */
	assert_int_equal(st.ios, 4);
	check_file(e.mp, ino, 20, 200, 100, "after writeback");
	/* no copy went through deepfs's cache */
	{
		struct dfs_pagecache_stats ps;

		pthread_mutex_lock(&e.mp->m_lock);
		dfs_pagecache_get_stats(e.mp, &ps);
		pthread_mutex_unlock(&e.mp->m_lock);
		assert_int_equal(ps.writebacks, 0);
	}
	/* the holes around stay holes */
	{
		unsigned char *z = page_alloc(1), *zero = calloc(1, PG);

		assert_non_null(zero);
		assert_int_equal(dfs_read(e.mp, ino, z, PG, 19 * PG), (ssize_t)PG);
		assert_memory_equal(z, zero, PG);
		assert_int_equal(dfs_read(e.mp, ino, z, PG, 220 * PG), (ssize_t)PG);
		assert_memory_equal(z, zero, PG);
		free(z);
		free(zero);
	}
	env_remount(&e);
	check_file(e.mp, ino, 20, 200, 100, "after remount");
	assert_int_equal(file_size(e.mp, ino), 256 * PG);
	/* single: one IO per page (with 1 KiB blocks, a page's four blocks
	 * are contiguous: still one) */
	st = wb(e.mp, ino, 20, &p, DFS_WB_SINGLE);
	assert_int_equal(st.ios, 200);
	pages_free(&p);
	env_down(&e);
}

static void test_roundtrip_4k(void **state)
{
	roundtrip(4096);
}

static void test_roundtrip_1k(void **state)
{
	roundtrip(1024);
}

/* ---- single vs batched ---------------------------------------------------------- */

static void test_single_vs_batch(void **state)
{
	struct dfs_wb_stats st;
	struct pages a, b, one;
	struct env e;
	uint64_t fa, fb, i, runs, bios;

	env_up(&e, 64ull << 20, 4096);
	fa = mkfile(e.mp, "a", 64 * PG);
	fb = mkfile(e.mp, "b", 64 * PG);
	/* interleave the two files' first allocations: a's pages 0..15 get
	 * blocks that alternate with b's, so a has many short runs */
	for (i = 0; i < 16; i++) {
		pages_make(&one, 1, 10 + i);
		wb(e.mp, fa, i, &one, 0);
		pages_free(&one);
		pages_make(&one, 1, 50 + i);
		wb(e.mp, fb, i, &one, DFS_WB_SINGLE);
		pages_free(&one);
	}
	runs = disk_runs(e.mp, fa, 0, 16, &bios);
	print_message("file a: 16 pages in %" PRIu64 " disk runs\n", runs);
	assert_true(runs > 1);

	pages_make(&a, 16, 1000);
	st = wb(e.mp, fa, 0, &a, 0);
	assert_int_equal(st.ios, bios);
	assert_int_equal(st.pages, 16);
	check_file(e.mp, fa, 0, 16, 1000, "batched over short runs");
	pages_free(&a);
	pages_make(&a, 16, 2000);
	st = wb(e.mp, fa, 0, &a, DFS_WB_SINGLE);
	assert_int_equal(st.ios, 16);
	check_file(e.mp, fa, 0, 16, 2000, "single over short runs");
	pages_free(&a);

	/* b's pages 16..63 are fresh: one run, 48 pages, one IO batched */
	pages_make(&b, 48, 3000);
	for (i = 0; i < 48; i++)
		assert_int_equal(dfs_page_mkwrite(e.mp, fb, 16 + i), 0);
	st = wb(e.mp, fb, 16, &b, 0);
	runs = disk_runs(e.mp, fb, 16, 48, &bios);
	assert_int_equal(runs, 1);
	assert_int_equal(st.ios, 1);
	assert_int_equal(st.bytes, 48 * PG);
	pages_free(&b);
	/* the same data both ways gives the same file */
	pages_make(&b, 48, 4000);
	st = wb(e.mp, fb, 16, &b, DFS_WB_SINGLE);
	assert_int_equal(st.ios, 48);
	check_file(e.mp, fb, 16, 48, 4000, "single");
	st = wb(e.mp, fb, 16, &b, 0);
	assert_int_equal(st.ios, 1);
	check_file(e.mp, fb, 16, 48, 4000, "batched");
	pages_free(&b);

	env_remount(&e);
	check_file(e.mp, fa, 0, 16, 2000, "a after remount");
	check_file(e.mp, fb, 0, 16, 50, "b head after remount");
	check_file(e.mp, fb, 16, 48, 4000, "b tail after remount");
	env_down(&e);
}

/* ---- ENOSPC -------------------------------------------------------------------------- */

static void test_enospc(void **state)
{
	struct dfs_wb_stats st;
	struct dfs_statfs sf;
	struct pages p;
	struct env e;
	uint64_t ino, other, n, i;
	int error = 0;

	env_up(&e, 16ull << 20, 4096);
	ino = mkfile(e.mp, "big", 8192 * PG);
	other = mkfile(e.mp, "other", 16 * PG);
	for (n = 0; n < 8192; n++) {
		error = dfs_page_mkwrite(e.mp, ino, n);
		if (error)
			break;
	}
	print_message("16 MiB image: dfs_page_mkwrite reserved %" PRIu64 " pages, then %s\n", n,
		      strerror(-error));
	assert_int_equal(error, -ENOSPC);
	assert_true(n > 2048);
	assert_int_equal(dfs_page_mkwrite(e.mp, other, 0), -ENOSPC);
	assert_int_equal(dfs_statfs(e.mp, &sf), 0);
	assert_true(sf.bfree < 16);
	/* past the reservation, writeback itself cannot find space: the
	 * pages before the first it could not reserve are written */
	pages_make(&p, 4, 9000);
	assert_int_equal(dfs_writepages_ext(e.mp, ino, n - 2, 4, p.srcs, 0, &st), -ENOSPC);
	assert_int_equal(st.pages, 2);
	check_file(e.mp, ino, n - 2, 2, 9000, "written before ENOSPC");
	pages_free(&p);
	/* everything reserved is written, batched and single alternately */
	for (i = 0; i < n - 2; i += 32) {
		uint64_t k = n - 2 - i < 32 ? n - 2 - i : 32;

		pages_make(&p, k, 20000 + i);
		assert_int_equal(dfs_writepages_ext(e.mp, ino, i, k, p.srcs,
						    (i / 32) % 2 ? DFS_WB_SINGLE : 0, &st), 0);
		assert_int_equal(st.pages, k);
		pages_free(&p);
	}
	env_remount(&e);
	for (i = 0; i < n - 2; i += 32) {
		uint64_t k = n - 2 - i < 32 ? n - 2 - i : 32;

		check_file(e.mp, ino, i, k, 20000 + i, "reserved, after remount");
	}
	check_file(e.mp, ino, n - 2, 2, 9000, "written before ENOSPC, after remount");
	env_down(&e);
}

/* ---- deepfs's own cached copies ----------------------------------------------------- */

static bool cached(struct dfs_mount *mp, uint64_t ino, uint64_t index, bool *dirty)
{
	struct dfs_inode *ip;
	struct dfs_page *pg;
	bool ret = false;

	pthread_mutex_lock(&mp->m_lock);
	assert_int_equal(dfs_iget(mp, NULL, ino, &ip), 0);
	*dirty = false;
	if (dfs_page_cached(ip, index)) {
		pg = dfs_page_find(ip, index);
		*dirty = pg->flags & DFS_PG_DIRTY;
		dfs_page_release(pg);
		ret = true;
	}
	dfs_irele(ip);
	pthread_mutex_unlock(&mp->m_lock);
	return ret;
}

static void test_cached_copies(void **state)
{
	unsigned char *x = page_alloc(4);
	struct pages p;
	struct env e;
	uint64_t ino;
	bool dirty;

	env_up(&e, 64ull << 20, 4096);
	ino = mkfile(e.mp, "f", 0);
	fill_page(x, 1);
	fill_page(x + PG, 2);
	fill_page(x + 2 * PG, 3);
	fill_page(x + 3 * PG, 4);
	assert_int_equal(dfs_write(e.mp, ino, x, 4 * PG, 0), (ssize_t)(4 * PG));
	assert_int_equal(dfs_fsync(e.mp, ino, false), 0);
	/* a clean cached copy of page 0, read by a FUSE reader */
	check_file(e.mp, ino, 0, 1, 1, "before");
	assert_true(cached(e.mp, ino, 0, &dirty));
	assert_false(dirty);
	pages_make(&p, 1, 100);
	wb(e.mp, ino, 0, &p, 0);
	pages_free(&p);
	assert_false(cached(e.mp, ino, 0, &dirty));
	check_file(e.mp, ino, 0, 1, 100, "clean copy replaced");

	/* a dirty cached copy of page 1 (a FUSE writer), and of page 2,
	 * which the external writeback does not cover */
	fill_page(x, 7);
	assert_int_equal(dfs_write(e.mp, ino, x, PG, 1 * PG), (ssize_t)PG);
	fill_page(x, 8);
	assert_int_equal(dfs_write(e.mp, ino, x, PG, 2 * PG), (ssize_t)PG);
	assert_true(cached(e.mp, ino, 1, &dirty));
	assert_true(dirty);
	pages_make(&p, 1, 200);
	wb(e.mp, ino, 1, &p, DFS_WB_SINGLE);
	pages_free(&p);
	/* the caller's data won, and the copy is gone with it on disk */
	assert_false(cached(e.mp, ino, 1, &dirty));
	check_file(e.mp, ino, 1, 1, 200, "dirty copy replaced");
	assert_true(cached(e.mp, ino, 2, &dirty));
	assert_true(dirty);
	assert_int_equal(dfs_sync(e.mp), 0);
	env_remount(&e);
	check_file(e.mp, ino, 0, 1, 100, "page 0 after remount");
	check_file(e.mp, ino, 1, 1, 200, "page 1 after remount");
	check_file(e.mp, ino, 2, 1, 8, "page 2 (FUSE's) after remount");
	check_file(e.mp, ino, 3, 1, 4, "page 3 after remount");
	free(x);
	env_down(&e);
}

/* ---- EOF -------------------------------------------------------------------------------- */

static void eof(uint32_t blocksize)
{
	const uint64_t size = 3 * PG + 1000;
	unsigned char *buf = page_alloc(4), *back = page_alloc(6), *junk = page_alloc(4);
	struct dfs_setattr sa = { .valid = DFS_SET_SIZE, .size = 6 * PG };
	const void *srcs[4];
	struct dfs_wb_stats st;
	struct dfs_statfs sf0, sf1;
	struct env e;
	uint64_t ino, i;

	env_up(&e, 64ull << 20, blocksize);
	ino = mkfile(e.mp, "f", 0);
	for (i = 0; i < 4; i++)
		fill_page(buf + i * PG, 30 + i);
	assert_int_equal(dfs_write(e.mp, ino, buf, size, 0), (ssize_t)size);
	assert_int_equal(dfs_sync(e.mp), 0);
	/* pages 2..5 of junk: 2 and 3 are (partly) file data, 4 and 5 not */
	memset(junk, 0xab, 4 * PG);
	for (i = 0; i < 4; i++)
		srcs[i] = junk + i * PG;
	assert_int_equal(dfs_writepages_ext(e.mp, ino, 2, 4, srcs, 0, &st), 0);
	assert_int_equal(st.pages, 2);
	assert_int_equal(file_size(e.mp, ino), size);
	/* wholly past EOF: nothing at all */
	assert_int_equal(dfs_writepages_ext(e.mp, ino, 4, 2, srcs, 0, &st), 0);
	assert_int_equal(st.ios, 0);
	assert_int_equal(st.pages, 0);
	/* and nothing to reserve there */
	assert_int_equal(dfs_statfs(e.mp, &sf0), 0);
	assert_int_equal(dfs_page_mkwrite(e.mp, ino, 10), 0);
	assert_int_equal(dfs_statfs(e.mp, &sf1), 0);
	assert_int_equal(sf1.bfree, sf0.bfree);
	assert_int_equal(file_size(e.mp, ino), size);

	env_remount(&e);
	memset(back, 0x11, 6 * PG);
	assert_int_equal(dfs_read(e.mp, ino, back, 6 * PG, 0), (ssize_t)size);
	assert_memory_equal(back, buf, 2 * PG);
	for (i = 2 * PG; i < size; i++)
		if (back[i] != 0xab)
			fail_msg("bs %u: byte %" PRIu64 " of the file is %#x, not written", blocksize,
				 i, back[i]);
	/* grown again, the old tail reads as zeroes: the junk past EOF never
	 * reached the disk (remounted: deepfs's cached page is zeroed there
	 * whatever the disk says) */
	assert_int_equal(dfs_setattr(e.mp, ino, &sa, NULL), 0);
	env_remount(&e);
	memset(back, 0x11, 6 * PG);
	assert_int_equal(dfs_read(e.mp, ino, back, 6 * PG, 0), (ssize_t)(6 * PG));
	for (i = size; i < 6 * PG; i++)
		if (back[i] != 0)
			fail_msg("bs %u: byte %" PRIu64 " past the old EOF is %#x", blocksize, i,
				 back[i]);
	free(buf);
	free(back);
	free(junk);
	env_down(&e);
}

static void test_eof_4k(void **state)
{
	eof(4096);
}

static void test_eof_1k(void **state)
{
	eof(1024);
}

/* ---- errors -------------------------------------------------------------------------- */

static void test_errors(void **state)
{
	struct dfs_mount_opts ro = { .readonly = true };
	unsigned char *buf = page_alloc(2);
	const void *srcs[1] = { buf };
	const void *odd[1] = { buf + 512 };
	struct dfs_wb_stats st;
	struct env e;
	uint64_t ino;

	env_up(&e, 32ull << 20, 4096);
	ino = mkfile(e.mp, "f", 4 * PG);
	assert_int_equal(dfs_writepages_ext(e.mp, ino, 0, 1, odd, 0, &st), -EINVAL);
	assert_int_equal(dfs_writepages_ext(e.mp, ino, 0, 1, srcs, 0x80, &st), -EINVAL);
	assert_int_equal(dfs_writepages_ext(e.mp, ino, 0, 0, srcs, 0, &st), 0);
	assert_int_equal(dfs_writepages_ext(e.mp, dfs_root_ino(e.mp), 0, 1, srcs, 0, &st),
			 -EISDIR);
	assert_int_equal(dfs_page_mkwrite(e.mp, dfs_root_ino(e.mp), 0), -EISDIR);
	assert_int_equal(dfs_writepages_ext(e.mp, ino, UINT64_MAX / PG, 1, srcs, 0, &st), -EFBIG);
	assert_int_equal(dfs_page_mkwrite(e.mp, ino, UINT64_MAX / PG), -EFBIG);
	assert_true(dfs_writepages_ext(e.mp, ino + 4096, 0, 1, srcs, 0, &st) < 0);
	assert_int_equal(dfs_unmount(e.mp), 0);
	assert_int_equal(dfs_mount(e.path, &ro, &e.mp), 0);
	assert_int_equal(dfs_writepages_ext(e.mp, ino, 0, 1, srcs, 0, &st), -EROFS);
	assert_int_equal(dfs_page_mkwrite(e.mp, ino, 0), -EROFS);
	free(buf);
	env_down(&e);
}

/* ---- concurrency ------------------------------------------------------------------------ */

#define CONC_CHUNK	8	/* pages per call */
#define CONC_CHUNKS	16	/* per writer and file */
#define CONC_ROUNDS	40

struct writer {
	struct dfs_mount *mp;
	uint64_t ino;
	uint64_t first;		/* its range: CONC_CHUNKS chunks from here */
	uint64_t stride;	/* pages between its chunks */
	uint64_t seed;
	uint64_t seeds[CONC_CHUNKS];	/* seed base of each chunk, last written */
	int error;
};

static void *writer_thread(void *arg)
{
	struct writer *w = arg;
	uint64_t x = w->seed;
	struct pages p;
	int r;

	for (r = 0; r < CONC_ROUNDS && !w->error; r++) {
		uint64_t c, first;
		unsigned flags;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		c = (x >> 8) % CONC_CHUNKS;
		first = w->first + c * w->stride;
		flags = x % 2 ? DFS_WB_SINGLE : 0;
		pages_make(&p, CONC_CHUNK, x & 0xffffffffffffull);
		for (uint64_t i = 0; i < CONC_CHUNK && !w->error; i++)
			w->error = dfs_page_mkwrite(w->mp, w->ino, first + i);
		if (!w->error)
			w->error = dfs_writepages_ext(w->mp, w->ino, first, CONC_CHUNK, p.srcs, flags,
						      NULL);
		if (!w->error)
			w->seeds[c] = x & 0xffffffffffffull;
		pages_free(&p);
	}
	return NULL;
}

/* deepfs's own writers on the same inode, on pages no writer owns: they
 * must wait for the external IO in flight, and not deadlock with it. */
struct meddler {
	struct dfs_mount *mp;
	uint64_t ino;
	uint64_t page;		/* its page */
	uint64_t seed;		/* last written */
	int rounds, error;
};

static void *meddler_thread(void *arg)
{
	struct meddler *m = arg;
	unsigned char *buf = page_alloc(1);

	for (int r = 0; r < m->rounds && !m->error; r++) {
		m->error = dfs_fallocate(m->mp, m->ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					 m->page * PG, PG);
		if (m->error)
			break;
		m->seed = 77000 + (uint64_t)r;
		fill_page(buf, m->seed);
		if (dfs_write(m->mp, m->ino, buf, PG, m->page * PG) != (ssize_t)PG)
			m->error = -EIO;
		if (!m->error && r % 4 == 0)
			m->error = dfs_fsync(m->mp, m->ino, true);
	}
	free(buf);
	return NULL;
}

static void check_writer(struct env *e, const struct writer *w, const char *what)
{
	unsigned char *zero = calloc(1, PG), *got = page_alloc(1);

	assert_non_null(zero);
	for (uint64_t c = 0; c < CONC_CHUNKS; c++) {
		uint64_t first = w->first + c * w->stride;

		if (w->seeds[c]) {
			check_file(e->mp, w->ino, first, CONC_CHUNK, w->seeds[c], what);
			continue;
		}
		for (uint64_t i = 0; i < CONC_CHUNK; i++) {
			assert_int_equal(dfs_read(e->mp, w->ino, got, PG, (first + i) * PG),
					 (ssize_t)PG);
			assert_memory_equal(got, zero, PG);
		}
	}
	free(zero);
	free(got);
}

/* IO log records of data writes whose lifetimes overlap another's. */
static uint64_t overlapping_writes(struct dfs_mount *mp)
{
	struct dfs_iolog_rec *recs;
	size_t len = dfs_blkdev_iolog_get(mp->m_bdev, &recs), i;
	uint64_t n = 0, end = 0;

	assert_non_null(recs);
	/* completion order; a record overlaps if it was submitted before the
	 * latest completion seen so far */
	for (i = 0; i < len; i++) {
		if (recs[i].dir != DFS_IO_WRITE || recs[i].kind != DFS_IOK_DATA)
			continue;
		if (recs[i].submit_ns < end)
			n++;
		if (recs[i].complete_ns > end)
			end = recs[i].complete_ns;
	}
	free(recs);
	return n;
}

static void test_concurrent(void **state)
{
	const uint64_t span = 2 * CONC_CHUNKS * CONC_CHUNK + 2;
	struct writer w[4];
	struct meddler m;
	pthread_t th[5];
	struct env e;
	uint64_t f1, f2;
	int t;

	fixture_seed_rng("concurrent");
	env_up(&e, 64ull << 20, 4096);
	f1 = mkfile(e.mp, "one", span * PG);
	f2 = mkfile(e.mp, "two", span * PG);
	/* writers 0 and 1 on one inode, their chunks interleaved; 2 and 3 on
	 * the two halves of another; the meddler on the last page of the
	 * first, which no writer touches */
	for (t = 0; t < 4; t++) {
		w[t] = (struct writer){ .mp = e.mp, .seed = fixture_rnd() | 1 };
		if (t < 2) {
			w[t].ino = f1;
			w[t].first = (uint64_t)t * CONC_CHUNK;
			w[t].stride = 2 * CONC_CHUNK;
		} else {
			w[t].ino = f2;
			w[t].first = (uint64_t)(t - 2) * CONC_CHUNKS * CONC_CHUNK;
			w[t].stride = CONC_CHUNK;
		}
	}
	m = (struct meddler){ .mp = e.mp, .ino = f1, .page = span - 1, .rounds = 60 };
	for (t = 0; t < 4; t++)
		assert_int_equal(pthread_create(&th[t], NULL, writer_thread, &w[t]), 0);
	assert_int_equal(pthread_create(&th[4], NULL, meddler_thread, &m), 0);
	for (t = 0; t < 5; t++)
		pthread_join(th[t], NULL);
	for (t = 0; t < 4; t++)
		if (w[t].error)
			fail_msg("writer %d: %s", t, strerror(-w[t].error));
	if (m.error)
		fail_msg("meddler: %s", strerror(-m.error));
	/* a number, not an assertion: the bios of one call overlap too */
	print_message("concurrent: %" PRIu64 " data writes were submitted while another was in flight\n",
		      overlapping_writes(e.mp));
	for (t = 0; t < 4; t++)
		check_writer(&e, &w[t], "concurrent");
	check_file(e.mp, f1, m.page, 1, m.seed, "meddler's page");
	env_remount(&e);
	for (t = 0; t < 4; t++)
		check_writer(&e, &w[t], "concurrent, after remount");
	check_file(e.mp, f1, m.page, 1, m.seed, "meddler's page after remount");
	env_down(&e);
}

/* A truncate waits for the external IO in flight on its inode, then frees
 * the blocks: the blocks are not written after they were freed (fsck and
 * the other file's data say so). */
static void test_truncate_races(void **state)
{
	struct dfs_setattr sa = { .valid = DFS_SET_SIZE };
	struct writer w;
	pthread_t th;
	struct env e;
	uint64_t f1, f2, i;
	struct pages p;

	fixture_seed_rng("truncate");
	env_up(&e, 64ull << 20, 4096);
	f1 = mkfile(e.mp, "victim", CONC_CHUNKS * CONC_CHUNK * PG);
	f2 = mkfile(e.mp, "bystander", 0);
	w = (struct writer){ .mp = e.mp, .ino = f1, .first = 0, .stride = CONC_CHUNK,
			     .seed = fixture_rnd() | 1 };
	assert_int_equal(pthread_create(&th, NULL, writer_thread, &w), 0);
	for (i = 0; i < 20; i++) {
		/* shrink to nothing and back: what the writer wrote before
		 * is gone, what it writes after lands in new blocks */
		sa.size = 0;
		assert_int_equal(dfs_setattr(e.mp, f1, &sa, NULL), 0);
		sa.size = CONC_CHUNKS * CONC_CHUNK * PG;
		assert_int_equal(dfs_setattr(e.mp, f1, &sa, NULL), 0);
		/* the freed blocks go to another file at once */
		pages_make(&p, 4, 600 + i * 4);
		assert_int_equal(dfs_write(e.mp, f2, p.buf, 4 * PG, i * 4 * PG),
				 (ssize_t)(4 * PG));
		assert_int_equal(dfs_fsync(e.mp, f2, true), 0);
		pages_free(&p);
	}
	pthread_join(th, NULL);
	if (w.error)
		fail_msg("writer: %s", strerror(-w.error));
	for (i = 0; i < 20; i++) {
		/* pages_make reversed them in buf: page j of the write holds
		 * seed base + 3 - j */
		for (uint64_t j = 0; j < 4; j++)
			check_file(e.mp, f2, i * 4 + j, 1, 600 + i * 4 + 3 - j, "bystander");
	}
	env_remount(&e);
	for (i = 0; i < 20; i++)
		for (uint64_t j = 0; j < 4; j++)
			check_file(e.mp, f2, i * 4 + j, 1, 600 + i * 4 + 3 - j,
				   "bystander after remount");
	env_down(&e);
}

/* ---- the fence around the unlocked IO, deterministically ----------------------------- */

/* The hook holds the first external IO after it is armed until released. */
static pthread_mutex_t hook_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hook_cond = PTHREAD_COND_INITIALIZER;
static enum { HOOK_IDLE, HOOK_ARMED, HOOK_HOLDING, HOOK_RELEASED } hook_state;

static void hold_io_hook(struct dfs_inode *ip)
{
	pthread_mutex_lock(&hook_lock);
	if (hook_state == HOOK_ARMED) {
		hook_state = HOOK_HOLDING;
		pthread_cond_broadcast(&hook_cond);
		while (hook_state == HOOK_HOLDING)
			pthread_cond_wait(&hook_cond, &hook_lock);
	}
	pthread_mutex_unlock(&hook_lock);
}

static uint32_t wbext_waiters(struct dfs_mount *mp, uint64_t ino)
{
	struct dfs_inode *ip;
	uint32_t n;

	pthread_mutex_lock(&mp->m_lock);
	assert_int_equal(dfs_iget(mp, NULL, ino, &ip), 0);
	n = ip->i_wbext_waiters;
	dfs_irele(ip);
	pthread_mutex_unlock(&mp->m_lock);
	return n;
}

struct held_write {
	struct dfs_mount *mp;
	uint64_t ino;
	struct pages p;
	int error;
};

static void *held_write_thread(void *arg)
{
	struct held_write *h = arg;

	h->error = dfs_writepages_ext(h->mp, h->ino, 0, h->p.n, h->p.srcs, 0, NULL);
	return NULL;
}

enum fenced_op { OP_TRUNCATE, OP_PUNCH, OP_WRITE };

struct fenced {
	struct dfs_mount *mp;
	uint64_t ino;
	enum fenced_op op;
	unsigned char *buf;
	int error;
	atomic_int done;
};

static void *fenced_thread(void *arg)
{
	struct fenced *f = arg;
	struct dfs_setattr sa = { .valid = DFS_SET_SIZE, .size = 0 };

	switch (f->op) {
	case OP_TRUNCATE:
		f->error = dfs_setattr(f->mp, f->ino, &sa, NULL);
		break;
	case OP_PUNCH:
		f->error = dfs_fallocate(f->mp, f->ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					 0, 8 * PG);
		break;
	case OP_WRITE:
		if (dfs_write(f->mp, f->ino, f->buf, PG, 0) != (ssize_t)PG)
			f->error = -EIO;
		break;
	}
	atomic_store(&f->done, 1);
	return NULL;
}

/*
 * With an external IO of the inode held in flight: other calls, external
 * writeback of the same inode included, go through (the lock is not held
 * during the IO); op waits (it is counted as a waiter and has not
 * finished); once the IO is released, op completes after it.
 */
static void fence(enum fenced_op op, const char *what)
{
	struct held_write h;
	struct fenced f;
	struct pages other;
	pthread_t th_w, th_f;
	struct env e;
	struct dfs_stat st;
	uint64_t ino;
	int i;

	env_up(&e, 64ull << 20, 4096);
	ino = mkfile(e.mp, "f", 256 * PG);
	h = (struct held_write){ .mp = e.mp, .ino = ino };
	pages_make(&h.p, 8, 100);
	f = (struct fenced){ .mp = e.mp, .ino = ino, .op = op, .buf = page_alloc(1) };
	fill_page(f.buf, 999);

	hook_state = HOOK_ARMED;
	dfs_wbext_io_hook = hold_io_hook;
	assert_int_equal(pthread_create(&th_w, NULL, held_write_thread, &h), 0);
	pthread_mutex_lock(&hook_lock);
	while (hook_state != HOOK_HOLDING)
		pthread_cond_wait(&hook_cond, &hook_lock);
	pthread_mutex_unlock(&hook_lock);

	/* the IO is in flight: deepfs is not locked meanwhile */
	assert_int_equal(dfs_getattr(e.mp, ino, &st), 0);
	pages_make(&other, 4, 500);
	assert_int_equal(dfs_writepages_ext(e.mp, ino, 100, 4, other.srcs, 0, NULL), 0);
	check_file(e.mp, ino, 100, 4, 500, "written while another IO of the inode was held");
	pages_free(&other);

	assert_int_equal(pthread_create(&th_f, NULL, fenced_thread, &f), 0);
	/* a state to reach, not a time to measure: the bound only turns a
	 * hang into a failure */
	for (i = 0; i < 20000 && !wbext_waiters(e.mp, ino) && !atomic_load(&f.done); i++)
		nanosleep(&(struct timespec){ .tv_nsec = 500000 }, NULL);
	if (atomic_load(&f.done))
		fail_msg("%s: finished while an external IO of the inode was in flight", what);
	assert_int_equal(wbext_waiters(e.mp, ino), 1);

	pthread_mutex_lock(&hook_lock);
	hook_state = HOOK_RELEASED;
	pthread_cond_broadcast(&hook_cond);
	pthread_mutex_unlock(&hook_lock);
	pthread_join(th_w, NULL);
	pthread_join(th_f, NULL);
	dfs_wbext_io_hook = NULL;
	assert_int_equal(h.error, 0);
	assert_int_equal(f.error, 0);
	assert_int_equal(wbext_waiters(e.mp, ino), 0);

	assert_int_equal(dfs_sync(e.mp), 0);
	env_remount(&e);
	switch (op) {
	case OP_TRUNCATE:
		assert_int_equal(file_size(e.mp, ino), 0);
		break;
	case OP_PUNCH: {
		unsigned char *z = page_alloc(1), *zero = calloc(1, PG);

		assert_non_null(zero);
		for (i = 0; i < 8; i++) {
			assert_int_equal(dfs_read(e.mp, ino, z, PG, (uint64_t)i * PG), (ssize_t)PG);
			assert_memory_equal(z, zero, PG);
		}
		free(z);
		free(zero);
		check_file(e.mp, ino, 100, 4, 500, "untouched by the punch");
		break;
	}
	case OP_WRITE:
		/* the write came after the IO: its data is the newer */
		check_file(e.mp, ino, 0, 1, 999, "written after the IO");
		check_file(e.mp, ino, 1, 7, 101, "the rest of the IO");
		break;
	}
	pages_free(&h.p);
	free(f.buf);
	env_down(&e);
}

static void test_fence_truncate(void **state)
{
	fence(OP_TRUNCATE, "truncate");
}

static void test_fence_punch(void **state)
{
	fence(OP_PUNCH, "punch");
}

static void test_fence_write(void **state)
{
	fence(OP_WRITE, "dfs_write");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_4k),
		cmocka_unit_test(test_roundtrip_1k),
		cmocka_unit_test(test_single_vs_batch),
		cmocka_unit_test(test_enospc),
		cmocka_unit_test(test_cached_copies),
		cmocka_unit_test(test_eof_4k),
		cmocka_unit_test(test_eof_1k),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_truncate_races),
		cmocka_unit_test(test_fence_truncate),
		cmocka_unit_test(test_fence_punch),
		cmocka_unit_test(test_fence_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
