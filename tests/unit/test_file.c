/* SPDX-License-Identifier: MIT */
/*
 * File data through the public API (file.c, pagecache.c, and bmap.c under
 * them): random writes, reads, truncates, hole punches, fallocates and
 * fsyncs on a few files against an in-memory copy of each, with a page
 * cache of a few pages so that writeback and eviction run all the time; then
 * unmount, fsck, mount and compare. A full-disk test writes until ENOSPC,
 * checks that what was written reads back and that fsck is happy, deletes
 * and writes again. TEST_SEED=<n> replays a run; the seed is printed first.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/bmap.h"
#include "fs/deepfs.h"
#include "fs/inode.h"
#include "fs/log.h"
#include "fs/msg.h"
#include "fs/pagecache.h"
#include "fs/mount.h"
#include "fixture.h"

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE	0x01
#define FALLOC_FL_PUNCH_HOLE	0x02
#endif
#ifndef FALLOC_FL_ZERO_RANGE
#define FALLOC_FL_ZERO_RANGE	0x10
#endif

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static void seed_init(const char *test)
{
	const char *env = getenv("TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid();

	print_message("%s: seed %" PRIu64 " (TEST_SEED=%" PRIu64 " to replay)\n", test, seed, seed);
	rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
}

#define NFILES		3
#define MAXSIZE		(1536u << 10)
#define MAXIO		(96u << 10)

struct rfile {
	uint64_t ino;
	uint64_t size;
	uint8_t *data;		/* MAXSIZE + MAXIO bytes, zero past size */
};

static const struct dfs_cred cred = { 0, 0 };

static void fill_random(uint8_t *p, size_t n)
{
	size_t i = 0;

	/* runs of a byte, so that a misplaced block shows */
	while (i < n) {
		uint8_t v = (uint8_t)rnd();
		size_t run = 1 + rnd_below(700);

		for (; run && i < n; run--, i++)
			p[i] = v;
	}
}

static void compare_range(struct dfs_mount *mp, const struct rfile *f, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len + 1);
	ssize_t n;
	size_t want;

	assert_non_null(buf);
	n = dfs_read(mp, f->ino, buf, len, off);
	want = off >= f->size ? 0 : (f->size - off < len ? f->size - off : len);
	if (n != (ssize_t)want)
		fail_msg("ino %" PRIu64 ": read of %zu at %" PRIu64 " returned %zd, expected %zu",
			 f->ino, len, off, n, want);
	for (size_t i = 0; i < want; i++)
		if (buf[i] != f->data[off + i])
			fail_msg("ino %" PRIu64 ": byte %" PRIu64 " is 0x%02x, expected 0x%02x",
				 f->ino, off + i, buf[i], f->data[off + i]);
	free(buf);
}

static void compare_file(struct dfs_mount *mp, const struct rfile *f)
{
	struct dfs_stat st;

	assert_int_equal(dfs_getattr(mp, f->ino, &st), 0);
	if (st.size != f->size)
		fail_msg("ino %" PRIu64 ": size %" PRIu64 ", expected %" PRIu64, f->ino, st.size,
			 f->size);
	compare_range(mp, f, 0, f->size + 100);
}

static void model_setsize(struct rfile *f, uint64_t size)
{
	if (size < f->size)
		memset(f->data + size, 0, f->size - size);
	f->size = size;
}

static void model_zero(struct rfile *f, uint64_t off, uint64_t len)
{
	if (off >= f->size)
		return;
	if (len > f->size - off)
		len = f->size - off;
	memset(f->data + off, 0, len);
}

static void random_op(struct dfs_mount *mp, struct rfile *f)
{
	uint64_t off = rnd_below(MAXSIZE), len = 1 + rnd_below(MAXIO);
	unsigned op = (unsigned)rnd_below(100);
	int error;

	if (rnd_below(4) == 0)
		off &= ~4095ull;
	if (rnd_below(4) == 0)
		len = (len + 4095) & ~4095ull;
	if (getenv("TEST_TRACE"))
		print_message("op %u ino %" PRIu64 " off %" PRIu64 " len %" PRIu64 " size %" PRIu64 "\n",
			      op, f->ino, off, len, f->size);
	if (op < 40) {
		uint8_t *src = malloc(len);

		assert_non_null(src);
		fill_random(src, len);
		assert_int_equal(dfs_write(mp, f->ino, src, len, off), (ssize_t)len);
		memcpy(f->data + off, src, len);
		if (off + len > f->size)
			f->size = off + len;
		free(src);
	} else if (op < 60) {
		compare_range(mp, f, off, len);
	} else if (op < 68) {
		struct dfs_setattr sa = { .valid = DFS_SET_SIZE, .size = rnd_below(MAXSIZE) };
		struct dfs_stat st;

		assert_int_equal(dfs_setattr(mp, f->ino, &sa, &st), 0);
		model_setsize(f, sa.size);
	} else if (op < 78) {
		error = dfs_fallocate(mp, f->ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
				      len);
		assert_int_equal(error, 0);
		model_zero(f, off, len);
	} else if (op < 86) {
		int keep = rnd_below(2) ? FALLOC_FL_KEEP_SIZE : 0;

		assert_int_equal(dfs_fallocate(mp, f->ino, keep, off, len), 0);
		if (!keep && off + len > f->size)
			f->size = off + len;
	} else if (op < 92) {
		int keep = rnd_below(2) ? FALLOC_FL_KEEP_SIZE : 0;

		assert_int_equal(dfs_fallocate(mp, f->ino, FALLOC_FL_ZERO_RANGE | keep, off, len), 0);
		model_zero(f, off, len);
		if (!keep && off + len > f->size)
			f->size = off + len;
	} else if (op < 96) {
		assert_int_equal(dfs_fsync(mp, f->ino, rnd_below(2)), 0);
	} else if (op < 98) {
		assert_int_equal(dfs_writepages(mp, f->ino, rnd_below(MAXSIZE / 4096), UINT64_MAX), 0);
	} else if (op < 99) {
		assert_int_equal(dfs_writepage(mp, f->ino, off / 4096), 0);
	} else {
		/* the pager's view: whole pages, zero past EOF */
		uint8_t *pg = malloc(4096);
		uint64_t index = off / 4096;

		assert_non_null(pg);
		assert_int_equal(dfs_readpage(mp, f->ino, index, pg), 0);
		for (uint64_t i = 0; i < 4096; i++) {
			uint64_t pos = index * 4096 + i;
			uint8_t want = pos < f->size ? f->data[pos] : 0;

			if (pg[i] != want)
				fail_msg("readpage %" PRIu64 ": byte %" PRIu64 " is 0x%02x, expected 0x%02x",
					 index, i, pg[i], want);
		}
		free(pg);
	}
}

static void check_fsck(const char *path)
{
	struct dfs_fsck_opts o = { .repair = false, .verbose = false };
	struct dfs_fsck_result r;

	assert_int_equal(dfs_fsck(path, &o, &r), 0);
	assert_int_equal(r.problems, 0);
}

static void run_random(uint32_t blocksize, int steps)
{
	struct dfs_mkfs_opts mo = { .size = 48ull << 20, .blocksize = blocksize };
	struct dfs_mount_opts opts = { .pagecache_bytes = 16 * 4096, .bufcache_bytes = 2u << 20 };
	struct rfile files[NFILES];
	struct dfs_pagecache_stats ps;
	struct dfs_mount *mp;
	char path[256], *dir;
	int i, step;

	dir = fixture_tmpdir();
	snprintf(path, sizeof(path), "%s/file.img", dir);
	assert_int_equal(dfs_mkfs(path, &mo), 0);
	assert_int_equal(dfs_mount(path, &opts, &mp), 0);
	for (i = 0; i < NFILES; i++) {
		struct dfs_stat st;
		char name[16];

		snprintf(name, sizeof(name), "f%d", i);
		assert_int_equal(dfs_mknod(mp, dfs_root_ino(mp), name, S_IFREG | 0644, 0, &cred, &st), 0);
		files[i].ino = st.ino;
		files[i].size = 0;
		files[i].data = calloc(1, MAXSIZE + MAXIO);
		assert_non_null(files[i].data);
	}
	for (step = 0; step < steps; step++) {
		struct rfile *f = &files[rnd_below(NFILES)];

		random_op(mp, f);
		if (step % 100 == 99)
			compare_file(mp, f);
	}
	for (i = 0; i < NFILES; i++)
		compare_file(mp, &files[i]);
	pthread_mutex_lock(&mp->m_lock);
	dfs_pagecache_get_stats(mp, &ps);
	pthread_mutex_unlock(&mp->m_lock);
	print_message("bs %u: %" PRIu64 " hits %" PRIu64 " misses %" PRIu64 " reads (%" PRIu64
		      " ahead) %" PRIu64 " writebacks %" PRIu64 " evictions %" PRIu64
		      " reclaim writebacks\n",
		      blocksize, ps.hits, ps.misses, ps.reads, ps.readahead, ps.writebacks,
		      ps.evictions, ps.reclaim_writebacks);
	assert_true(ps.evictions > 0);
	assert_true(ps.reclaim_writebacks > 0);

	assert_int_equal(dfs_unmount(mp), 0);
	check_fsck(path);
	assert_int_equal(dfs_mount(path, &opts, &mp), 0);
	for (i = 0; i < NFILES; i++) {
		compare_file(mp, &files[i]);
		free(files[i].data);
	}
	assert_int_equal(dfs_unmount(mp), 0);
	fixture_rmdir(dir);
	free(dir);
}

static void test_file_random_1k(void **state)
{
	seed_init("test_file_random_1k");
	run_random(1024, 1500);
}

static void test_file_random_2k(void **state)
{
	seed_init("test_file_random_2k");
	run_random(2048, 1000);
}

static void test_file_random_4k(void **state)
{
	seed_init("test_file_random_4k");
	run_random(4096, 1000);
}

/* Write until the disk is full; the filesystem must stay consistent. */
static uint64_t fill_disk(struct dfs_mount *mp, uint64_t ino, uint8_t seed)
{
	uint8_t *buf = malloc(64 << 10);
	uint64_t off = 0;
	ssize_t n;

	assert_non_null(buf);
	for (;;) {
		memset(buf, seed + (uint8_t)(off >> 16), 64 << 10);
		n = dfs_write(mp, ino, buf, 64 << 10, off);
		if (n < 0) {
			assert_int_equal(n, -ENOSPC);
			break;
		}
		assert_true(n > 0);
		off += (uint64_t)n;
		if (n < (64 << 10))
			break;
	}
	/* what was accepted must reach the disk */
	assert_int_equal(dfs_fsync(mp, ino, false), 0);
	free(buf);
	return off;
}

static void check_fill(struct dfs_mount *mp, uint64_t ino, uint8_t seed, uint64_t size)
{
	uint8_t *buf = malloc(64 << 10);
	struct dfs_stat st;

	assert_int_equal(dfs_getattr(mp, ino, &st), 0);
	assert_int_equal(st.size, size);
	for (uint64_t off = 0; off < size; off += 64 << 10) {
		size_t len = size - off < (64 << 10) ? size - off : (64 << 10);

		assert_int_equal(dfs_read(mp, ino, buf, len, off), (ssize_t)len);
		for (size_t i = 0; i < len; i++)
			if (buf[i] != (uint8_t)(seed + (uint8_t)(off >> 16)))
				fail_msg("byte %" PRIu64 " is wrong", off + i);
	}
	free(buf);
}

static void test_file_enospc(void **state)
{
	struct dfs_mkfs_opts mo = { .size = 12ull << 20, .blocksize = 1024 };
	struct dfs_mount_opts opts = { .pagecache_bytes = 256 * 4096 };
	struct dfs_stat st;
	struct dfs_mount *mp;
	char path[256], *dir;
	uint64_t ino, first, second;

	dir = fixture_tmpdir();
	snprintf(path, sizeof(path), "%s/full.img", dir);
	assert_int_equal(dfs_mkfs(path, &mo), 0);
	assert_int_equal(dfs_mount(path, &opts, &mp), 0);
	assert_int_equal(dfs_mknod(mp, dfs_root_ino(mp), "big", S_IFREG | 0644, 0, &cred, &st), 0);
	ino = st.ino;
	first = fill_disk(mp, ino, 1);
	print_message("full after %" PRIu64 " bytes\n", first);
	assert_true(first > (6ull << 20));
	check_fill(mp, ino, 1, first);
	assert_int_equal(dfs_unmount(mp), 0);
	check_fsck(path);

	assert_int_equal(dfs_mount(path, &opts, &mp), 0);
	check_fill(mp, ino, 1, first);
	assert_int_equal(dfs_unlink(mp, dfs_root_ino(mp), "big"), 0);
	dfs_forget(mp, ino, 1);
	assert_int_equal(dfs_mknod(mp, dfs_root_ino(mp), "big2", S_IFREG | 0644, 0, &cred, &st), 0);
	second = fill_disk(mp, st.ino, 7);
	print_message("full again after %" PRIu64 " bytes\n", second);
	assert_true(second + (256u << 10) >= first);
	check_fill(mp, st.ino, 7, second);
	assert_int_equal(dfs_unmount(mp), 0);
	check_fsck(path);
	fixture_rmdir(dir);
	free(dir);
}

/*
 * A crash after delayed allocation was converted and the allocation made
 * durable, but before the data was written: the new blocks, which held the
 * data of a deleted file and of punched-out ranges, must read as zeroes
 * (the unwritten-extent guarantee), and the fsynced data must be intact.
 */
static void test_file_crash_no_stale_data(void **state)
{
	struct dfs_mkfs_opts mo = { .size = 16ull << 20, .blocksize = 1024 };
	struct dfs_mount_opts opts = { .pagecache_bytes = 512 * 4096 };
	const size_t big = 1u << 20, hole = 256u << 10, hlen = 512u << 10;
	uint8_t *buf = malloc(big), *rd = malloc(big);
	char path[256], crash[256], *dir;
	struct dfs_bmbt_irec map, imap;
	struct dfs_inode *ip;
	struct dfs_stat st;
	struct dfs_mount *mp;
	uint64_t a, fb, nunwritten = 0;
	ssize_t n;
	int nmaps;

	assert_non_null(buf);
	assert_non_null(rd);
	dir = fixture_tmpdir();
	snprintf(path, sizeof(path), "%s/crash.img", dir);
	snprintf(crash, sizeof(crash), "%s/crash-copy.img", dir);
	assert_int_equal(dfs_mkfs(path, &mo), 0);
	assert_int_equal(dfs_mount(path, &opts, &mp), 0);

	/* a file of 0x5a, durable, then deleted: its blocks are free again */
	assert_int_equal(dfs_mknod(mp, dfs_root_ino(mp), "old", S_IFREG | 0644, 0, &cred, &st), 0);
	memset(buf, 0x5a, big);
	assert_int_equal(dfs_write(mp, st.ino, buf, big, 0), (ssize_t)big);
	assert_int_equal(dfs_fsync(mp, st.ino, false), 0);
	assert_int_equal(dfs_unlink(mp, dfs_root_ino(mp), "old"), 0);
	dfs_forget(mp, st.ino, 1);

	/* 1 MiB of 0x11, durable; then a durable hole in its middle */
	assert_int_equal(dfs_mknod(mp, dfs_root_ino(mp), "new", S_IFREG | 0644, 0, &cred, &st), 0);
	a = st.ino;
	memset(buf, 0x11, big);
	assert_int_equal(dfs_write(mp, a, buf, big, 0), (ssize_t)big);
	assert_int_equal(dfs_fsync(mp, a, false), 0);
	assert_int_equal(dfs_fallocate(mp, a, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, hole, hlen), 0);
	assert_int_equal(dfs_sync(mp), 0);

	/* 0x22 into the hole: allocated (durably) but never written */
	memset(buf, 0x22, hlen);
	assert_int_equal(dfs_write(mp, a, buf, hlen, hole), (ssize_t)hlen);
	pthread_mutex_lock(&mp->m_lock);
	assert_int_equal(dfs_iget(mp, NULL, a, &ip), 0);
	for (fb = hole >> 10; fb < (hole + hlen) >> 10;) {
		nmaps = 1;
		assert_int_equal(dfs_bmapi_read(ip, fb, ((hole + hlen) >> 10) - fb, &map, &nmaps), 0);
		if (map.br_startblock == DFS_DELAYSTARTBLOCK) {
			assert_int_equal(dfs_bmapi_convert_delalloc(ip, fb, &imap), 0);
			continue;
		}
		assert_true(map.br_startblock != DFS_HOLESTARTBLOCK);
		assert_int_equal(map.br_state, DFS_EXT_UNWRITTEN);
		nunwritten += map.br_blockcount;
		fb += map.br_blockcount;
	}
	assert_int_equal(nunwritten, hlen >> 10);
	assert_int_equal(dfs_log_force(mp), 0);
	dfs_irele(ip);
	pthread_mutex_unlock(&mp->m_lock);

	/* the crash: the image as it is on disk now */
	assert_int_equal(fixture_copy_file(path, crash), 0);
	assert_int_equal(dfs_unmount(mp), 0);

	assert_int_equal(dfs_mount(crash, &opts, &mp), 0);
	assert_int_equal(dfs_lookup(mp, dfs_root_ino(mp), "new", &st), 0);
	assert_int_equal(st.ino, a);
	assert_int_equal(st.size, big);
	n = dfs_read(mp, a, rd, big, 0);
	assert_int_equal(n, (ssize_t)big);
	for (size_t i = 0; i < big; i++) {
		bool in_hole = i >= hole && i < hole + hlen;
		uint8_t want = in_hole ? 0 : 0x11;

		if (rd[i] != want)
			fail_msg("byte %zu of the crashed file is 0x%02x, expected 0x%02x", i, rd[i],
				 want);
	}
	dfs_forget(mp, a, 1);
	assert_int_equal(dfs_unmount(mp), 0);
	check_fsck(crash);
	free(buf);
	free(rd);
	fixture_rmdir(dir);
	free(dir);
}

/*
 * Size changes must reach the disk (XFS's xfs_setattr_size): a truncate to
 * between the on-disk size and the in-core size (data written past the
 * disk size, then cut off), an extension over data not yet written back,
 * fallocate past EOF, and writes past EOF followed by a truncate. Checked
 * after fsync on a crash copy of the image (log recovery) and after a clean
 * unmount and mount.
 */
enum sz_op { SZ_WRITE, SZ_FSYNC, SZ_TRUNC, SZ_FALLOC, SZ_FALLOC_KEEP, SZ_PUNCH, SZ_ZERO,
	     SZ_END };
struct sz_step {
	enum sz_op op;
	uint64_t off, len;	/* SZ_TRUNC: off is the size */
};

static const struct sz_step sz_scripts[][8] = {
	/* the FUSE reproducer: cp, dd past EOF, truncate to between */
	{ { SZ_WRITE, 0, 368640 }, { SZ_FSYNC, 0, 0 }, { SZ_WRITE, 679936, 43697 },
	  { SZ_TRUNC, 409600, 0 }, { SZ_END, 0, 0 } },
	/* the same, not page aligned, with dirty data kept below the new size */
	{ { SZ_WRITE, 0, 100000 }, { SZ_FSYNC, 0, 0 }, { SZ_WRITE, 150001, 3000 },
	  { SZ_WRITE, 500000, 5000 }, { SZ_TRUNC, 300123, 0 }, { SZ_END, 0, 0 } },
	/* extend over data that was never written back */
	{ { SZ_WRITE, 0, 50001 }, { SZ_TRUNC, 200000, 0 }, { SZ_END, 0, 0 } },
	/* truncate down then up again, across the disk size */
	{ { SZ_WRITE, 0, 40960 }, { SZ_FSYNC, 0, 0 }, { SZ_WRITE, 90000, 7000 },
	  { SZ_TRUNC, 60001, 0 }, { SZ_TRUNC, 250000, 0 }, { SZ_END, 0, 0 } },
	/* fallocate without KEEP_SIZE inside and past EOF, then cut back */
	{ { SZ_WRITE, 0, 40960 }, { SZ_FSYNC, 0, 0 }, { SZ_WRITE, 300000, 1000 },
	  { SZ_FALLOC, 100000, 50000 }, { SZ_FALLOC, 400000, 77777 },
	  { SZ_TRUNC, 120000, 0 }, { SZ_END, 0, 0 } },
	/* a write past EOF punched out, zeroed past EOF, then a truncate */
	{ { SZ_WRITE, 0, 8192 }, { SZ_FSYNC, 0, 0 }, { SZ_WRITE, 200000, 20000 },
	  { SZ_PUNCH, 190000, 40000 }, { SZ_ZERO, 230000, 10000 }, { SZ_FALLOC_KEEP, 240000, 9000 },
	  { SZ_TRUNC, 210000, 0 }, { SZ_END, 0, 0 } },
	/* shrink to exactly the disk size and to below it */
	{ { SZ_WRITE, 0, 65536 }, { SZ_FSYNC, 0, 0 }, { SZ_WRITE, 65536, 65536 },
	  { SZ_TRUNC, 65536, 0 }, { SZ_WRITE, 100000, 10 }, { SZ_TRUNC, 3000, 0 },
	  { SZ_END, 0, 0 } },
};
#define SZ_NSCRIPTS (sizeof(sz_scripts) / sizeof(sz_scripts[0]))

static void sz_run_step(struct dfs_mount *mp, struct rfile *f, const struct sz_step *st)
{
	struct dfs_setattr sa = { .valid = DFS_SET_SIZE };
	uint8_t *src;

	switch (st->op) {
	case SZ_WRITE:
		src = malloc(st->len);
		assert_non_null(src);
		fill_random(src, st->len);
		assert_int_equal(dfs_write(mp, f->ino, src, st->len, st->off), (ssize_t)st->len);
		memcpy(f->data + st->off, src, st->len);
		if (st->off + st->len > f->size)
			f->size = st->off + st->len;
		free(src);
		break;
	case SZ_FSYNC:
		assert_int_equal(dfs_fsync(mp, f->ino, true), 0);
		break;
	case SZ_TRUNC:
		sa.size = st->off;
		assert_int_equal(dfs_setattr(mp, f->ino, &sa, NULL), 0);
		model_setsize(f, st->off);
		break;
	case SZ_FALLOC:
	case SZ_FALLOC_KEEP:
		assert_int_equal(dfs_fallocate(mp, f->ino, st->op == SZ_FALLOC_KEEP ?
					       FALLOC_FL_KEEP_SIZE : 0, st->off, st->len), 0);
		if (st->op == SZ_FALLOC && st->off + st->len > f->size)
			f->size = st->off + st->len;
		break;
	case SZ_PUNCH:
		assert_int_equal(dfs_fallocate(mp, f->ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					       st->off, st->len), 0);
		model_zero(f, st->off, st->len);
		break;
	case SZ_ZERO:
		assert_int_equal(dfs_fallocate(mp, f->ino, FALLOC_FL_ZERO_RANGE, st->off, st->len), 0);
		model_zero(f, st->off, st->len);
		if (st->off + st->len > f->size)
			f->size = st->off + st->len;
		break;
	case SZ_END:
		break;
	}
}

static void run_setsize_remount(uint32_t blocksize)
{
	struct dfs_mkfs_opts mo = { .size = 32ull << 20, .blocksize = blocksize };
	struct dfs_mount_opts opts = { .pagecache_bytes = 1024 * 4096 };
	struct rfile files[SZ_NSCRIPTS];
	char path[256], crash[256], *dir;
	struct dfs_mount *mp;
	size_t i, j;

	dir = fixture_tmpdir();
	snprintf(path, sizeof(path), "%s/size.img", dir);
	snprintf(crash, sizeof(crash), "%s/size-crash.img", dir);
	assert_int_equal(dfs_mkfs(path, &mo), 0);
	assert_int_equal(dfs_mount(path, &opts, &mp), 0);
	for (i = 0; i < SZ_NSCRIPTS; i++) {
		struct dfs_stat st;
		char name[16];

		snprintf(name, sizeof(name), "s%zu", i);
		assert_int_equal(dfs_mknod(mp, dfs_root_ino(mp), name, S_IFREG | 0644, 0, &cred, &st), 0);
		files[i].ino = st.ino;
		files[i].size = 0;
		files[i].data = calloc(1, MAXSIZE + MAXIO);
		assert_non_null(files[i].data);
		for (j = 0; sz_scripts[i][j].op != SZ_END; j++)
			sz_run_step(mp, &files[i], &sz_scripts[i][j]);
		compare_file(mp, &files[i]);
	}
	/* fsync makes the sizes durable: a crash now must keep them */
	for (i = 0; i < SZ_NSCRIPTS; i++)
		assert_int_equal(dfs_fsync(mp, files[i].ino, false), 0);
	assert_int_equal(fixture_copy_file(path, crash), 0);
	assert_int_equal(dfs_unmount(mp), 0);
	check_fsck(path);

	assert_int_equal(dfs_mount(path, &opts, &mp), 0);
	for (i = 0; i < SZ_NSCRIPTS; i++)
		compare_file(mp, &files[i]);
	assert_int_equal(dfs_unmount(mp), 0);

	assert_int_equal(dfs_mount(crash, &opts, &mp), 0);
	for (i = 0; i < SZ_NSCRIPTS; i++) {
		compare_file(mp, &files[i]);
		free(files[i].data);
	}
	assert_int_equal(dfs_unmount(mp), 0);
	check_fsck(crash);
	fixture_rmdir(dir);
	free(dir);
}

static void test_file_setsize_remount(void **state)
{
	run_setsize_remount(4096);
	run_setsize_remount(1024);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_random_4k),
		cmocka_unit_test(test_file_random_1k),
		cmocka_unit_test(test_file_random_2k),
		cmocka_unit_test(test_file_enospc),
		cmocka_unit_test(test_file_crash_no_stale_data),
		cmocka_unit_test(test_file_setsize_remount),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
