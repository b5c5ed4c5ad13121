/* SPDX-License-Identifier: MIT */
/*
 * The buffer cache: hits and misses, eviction within the byte budget (held
 * and dirty buffers stay), verifiers refusing bad blocks (CRC, magic, self
 * address, UUID) without caching them, writeback (sorted, merged, only up to
 * an LSN, stale buffers never written, frozen images written instead of
 * live ones), and a randomized run against a model of cache and disk.
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
#include <time.h>
#include <unistd.h>

#include "fs/blkdev.h"
#include "fs/buf.h"
#include "fs/crc.h"
#include "fs/mount.h"
#include "fs/msg.h"
#include "fixture.h"

#define TEST_MAGIC 0x54534554u	/* "TEST" */
#define BS 4096u

static int test_verify_read(struct dfs_buf *bp)
{
	return dfs_blkhdr_verify(bp, TEST_MAGIC);
}

static int test_verify_write(struct dfs_buf *bp)
{
	dfs_blkhdr_update_crc(bp);
	return 0;
}

static int other_verify_read(struct dfs_buf *bp)
{
	return dfs_blkhdr_verify(bp, 0x12345678);
}

static const struct dfs_buf_ops test_ops = {
	.name = "test",
	.magic = TEST_MAGIC,
	.verify_read = test_verify_read,
	.verify_write = test_verify_write,
};

struct buf_state {
	char *dir;
	struct dfs_mount *mp;
};

static int buf_setup_budget(void **state, uint64_t budget)
{
	struct buf_state *s = calloc(1, sizeof(*s));
	struct fixture_geom geom = { .size = 16u << 20, .bcache_bytes = budget };

	assert_non_null(s);
	s->dir = fixture_tmpdir();
	s->mp = fixture_mount_geom(s->dir, &geom);
	*state = s;
	return 0;
}

static int buf_setup(void **state)
{
	return buf_setup_budget(state, 16u << 20);
}

static int buf_setup_small(void **state)
{
	return buf_setup_budget(state, 8 * BS);
}

static int buf_setup_budget_16(void **state)
{
	return buf_setup_budget(state, 16 * BS);
}

static int buf_teardown(void **state)
{
	struct buf_state *s = *state;

	if (s->mp)
		fixture_crash(s->mp);	/* tests leave dirty buffers on purpose */
	fixture_rmdir(s->dir);
	free(s->dir);
	free(s);
	dfs_msg_set_quiet(0);
	return 0;
}

/* A valid test block written straight to disk, its payload from seed. */
static void write_raw_block(struct dfs_mount *mp, uint64_t blkno, uint32_t seed)
{
	struct dfs_blkhdr *hdr = dfs_bio_alloc_buf(BS);
	uint32_t *p = (uint32_t *)(hdr + 1);

	hdr->magic = TEST_MAGIC;
	hdr->blkno = blkno;
	memcpy(hdr->uuid, mp->m_sb.hdr.uuid, 16);
	for (size_t i = 0; i < (BS - sizeof(*hdr)) / 4; i++)
		p[i] = seed * 2654435761u + (uint32_t)i;
	dfs_cksum_update(hdr, BS, offsetof(struct dfs_blkhdr, crc));
	assert_int_equal(dfs_blkdev_rw(mp->m_bdev, DFS_IO_WRITE, DFS_IOK_META, blkno * BS, hdr, BS),
			 0);
	free(hdr);
}

static void read_raw_block(struct dfs_mount *mp, uint64_t blkno, void *buf)
{
	assert_int_equal(dfs_blkdev_rw(mp->m_bdev, DFS_IO_READ, DFS_IOK_META, blkno * BS, buf, BS),
			 0);
}

static void corrupt_byte(struct dfs_mount *mp, uint64_t blkno, size_t off)
{
	char *b = dfs_bio_alloc_buf(BS);

	read_raw_block(mp, blkno, b);
	b[off] ^= 0x40;
	assert_int_equal(dfs_blkdev_rw(mp->m_bdev, DFS_IO_WRITE, DFS_IOK_META, blkno * BS, b, BS),
			 0);
	free(b);
}

static void test_hit_miss(void **state)
{
	struct dfs_mount *mp = ((struct buf_state *)*state)->mp;
	struct dfs_bcache_stats st;
	struct dfs_buf *bp, *bp2;

	write_raw_block(mp, 300, 1);
	assert_null(dfs_buf_incore(mp, 300));
	assert_int_equal(dfs_buf_read(mp, 300, &test_ops, &bp), 0);
	assert_int_equal(bp->b_blkno, 300);
	assert_int_equal(bp->b_hold, 1);
	assert_int_equal(((struct dfs_blkhdr *)bp->b_addr)->magic, TEST_MAGIC);
	dfs_bcache_get_stats(mp, &st);
	assert_int_equal(st.lookups, 1);
	assert_int_equal(st.hits, 0);
	assert_int_equal(st.reads, 1);
	assert_int_equal(st.bytes, BS);

	/* a second read while held: same buffer, one more hold, no IO */
	assert_int_equal(dfs_buf_read(mp, 300, &test_ops, &bp2), 0);
	assert_ptr_equal(bp, bp2);
	assert_int_equal(bp->b_hold, 2);
	dfs_buf_relse(bp2);
	dfs_buf_relse(bp);
	/* unheld but cached */
	assert_int_equal(dfs_buf_read(mp, 300, &test_ops, &bp2), 0);
	assert_ptr_equal(bp, bp2);
	dfs_bcache_get_stats(mp, &st);
	assert_int_equal(st.lookups, 3);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.reads, 1);
	bp = dfs_buf_incore(mp, 300);
	assert_ptr_equal(bp, bp2);
	dfs_buf_relse(bp);
	dfs_buf_relse(bp2);

	/* dfs_buf_get: no read, zeroed */
	assert_int_equal(dfs_buf_get(mp, 301, &test_ops, &bp), 0);
	for (uint32_t i = 0; i < BS; i++)
		assert_int_equal(((char *)bp->b_addr)[i], 0);
	dfs_bcache_get_stats(mp, &st);
	assert_int_equal(st.reads, 1);
	dfs_buf_relse(bp);

	/* read with other ops: cached, but their verifier has the last word */
	{
		static const struct dfs_buf_ops twin_ops = {
			.name = "twin", .magic = TEST_MAGIC,
			.verify_read = test_verify_read, .verify_write = test_verify_write,
		};
		static const struct dfs_buf_ops other_ops = {
			.name = "other", .magic = 0x12345678,
			.verify_read = other_verify_read, .verify_write = test_verify_write,
		};

		assert_int_equal(dfs_buf_read(mp, 300, &twin_ops, &bp), 0);
		assert_ptr_equal(bp->b_ops, &twin_ops);
		dfs_buf_relse(bp);
		dfs_msg_set_quiet(1);
		assert_int_equal(dfs_buf_read(mp, 300, &other_ops, &bp), -EFSCORRUPTED);
		bp = dfs_buf_incore(mp, 300);
		assert_ptr_equal(bp->b_ops, &twin_ops);
		dfs_buf_relse(bp);
	}

	/* a block past the end of the filesystem is refused */
	dfs_msg_set_quiet(1);
	assert_int_equal(dfs_buf_read(mp, mp->m_dblocks, &test_ops, &bp), -EFSCORRUPTED);
	assert_null(bp);
}

static void test_eviction(void **state)
{
	struct dfs_mount *mp = ((struct buf_state *)*state)->mp;
	struct dfs_bcache_stats st;
	struct dfs_buf *bp, *held[12];

	for (uint64_t b = 200; b < 240; b++)
		write_raw_block(mp, b, (uint32_t)b);
	/* read and release 40 blocks through an 8-block cache */
	for (uint64_t b = 200; b < 240; b++) {
		assert_int_equal(dfs_buf_read(mp, b, &test_ops, &bp), 0);
		dfs_buf_relse(bp);
		dfs_bcache_get_stats(mp, &st);
		assert_true(st.bytes <= 8 * BS);
	}
	dfs_bcache_get_stats(mp, &st);
	assert_int_equal(st.evictions, 32);
	/* LRU: the 8 most recent are cached, the older ones are not */
	for (uint64_t b = 200; b < 232; b++)
		assert_null(dfs_buf_incore(mp, b));
	for (uint64_t b = 232; b < 240; b++) {
		bp = dfs_buf_incore(mp, b);
		assert_non_null(bp);
		dfs_buf_relse(bp);
	}

	/* held buffers are never evicted, even over budget */
	for (int i = 0; i < 12; i++)
		assert_int_equal(dfs_buf_read(mp, 200 + i, &test_ops, &held[i]), 0);
	dfs_bcache_get_stats(mp, &st);
	assert_int_equal(st.bytes, 12 * BS);
	for (int i = 0; i < 12; i++)
		assert_ptr_equal(dfs_buf_incore(mp, 200 + i), held[i]);
	for (int i = 0; i < 12; i++) {
		dfs_buf_relse(held[i]);
		dfs_buf_relse(held[i]);
	}
	dfs_bcache_get_stats(mp, &st);
	assert_int_equal(st.bytes, 8 * BS);

	/* dirty buffers stay too, and come back under budget once clean */
	for (int i = 0; i < 10; i++) {
		assert_int_equal(dfs_buf_get(mp, 250 + i, &test_ops, &bp), 0);
		dfs_blkhdr_init(bp, TEST_MAGIC, 0);
		dfs_buf_mark_dirty(bp, 1);
		dfs_buf_relse(bp);
	}
	dfs_bcache_get_stats(mp, &st);
	assert_int_equal(st.dirty, 10);
	assert_int_equal(st.bytes, 10 * BS);
	for (int i = 0; i < 10; i++) {
		bp = dfs_buf_incore(mp, 250 + i);
		assert_non_null(bp);
		assert_true(bp->b_flags & DFS_BUF_DIRTY);
		dfs_buf_relse(bp);
	}
	assert_int_equal(dfs_bcache_writeback(mp, UINT64_MAX), 0);
	/* the next addition trims the cache again */
	assert_int_equal(dfs_buf_read(mp, 239, &test_ops, &bp), 0);
	dfs_buf_relse(bp);
	dfs_bcache_get_stats(mp, &st);
	assert_int_equal(st.dirty, 0);
	assert_true(st.bytes <= 8 * BS);
}

static void test_verify_refuses(void **state)
{
	struct dfs_mount *mp = ((struct buf_state *)*state)->mp;
	struct dfs_bcache_stats st;
	struct dfs_buf *bp;
	uint8_t other_uuid[16];

	dfs_msg_set_quiet(1);
	/* zeroes: bad magic */
	assert_int_equal(dfs_buf_read(mp, 400, &test_ops, &bp), -EFSCORRUPTED);
	assert_null(bp);
	assert_null(dfs_buf_incore(mp, 400));
	dfs_bcache_get_stats(mp, &st);
	assert_int_equal(st.bytes, 0);

	/* a flipped bit anywhere in the block: CRC */
	write_raw_block(mp, 401, 7);
	corrupt_byte(mp, 401, 3000);
	assert_int_equal(dfs_buf_read(mp, 401, &test_ops, &bp), -EFSCORRUPTED);
	assert_null(dfs_buf_incore(mp, 401));
	/* rewritten correctly: now it reads (nothing stale was cached) */
	write_raw_block(mp, 401, 7);
	assert_int_equal(dfs_buf_read(mp, 401, &test_ops, &bp), 0);
	dfs_buf_relse(bp);

	/* a block written to the wrong place: its self address gives it away */
	write_raw_block(mp, 402, 8);
	{
		char *b = dfs_bio_alloc_buf(BS);

		read_raw_block(mp, 402, b);
		assert_int_equal(dfs_blkdev_rw(mp->m_bdev, DFS_IO_WRITE, DFS_IOK_META, 403 * BS, b,
					       BS), 0);
		free(b);
	}
	assert_int_equal(dfs_buf_read(mp, 403, &test_ops, &bp), -EFSCORRUPTED);

	/* a block of another filesystem */
	memcpy(other_uuid, mp->m_sb.hdr.uuid, 16);
	mp->m_sb.hdr.uuid[0] ^= 1;
	write_raw_block(mp, 404, 9);
	mp->m_sb.hdr.uuid[0] ^= 1;
	assert_memory_equal(other_uuid, mp->m_sb.hdr.uuid, 16);
	assert_int_equal(dfs_buf_read(mp, 404, &test_ops, &bp), -EFSCORRUPTED);

	/* raw read (fsck) caches it; a verified read then checks it */
	assert_int_equal(dfs_buf_read(mp, 404, NULL, &bp), 0);
	dfs_buf_relse(bp);
	assert_int_equal(dfs_buf_read(mp, 404, &test_ops, &bp), -EFSCORRUPTED);
}

/* Writeback through the cache, then a CRC error in place is caught on re-read. */
static void test_writeback(void **state)
{
	struct dfs_mount *mp = ((struct buf_state *)*state)->mp;
	struct dfs_blkdev_stats b0, b1;
	struct dfs_bcache_stats st;
	struct dfs_buf *bp;
	char *raw = dfs_bio_alloc_buf(BS);
	/* runs 500-509 and 512-513, lsn 5; 520 with lsn 9; 530 stale */
	static const uint64_t blks[] = { 507, 500, 513, 503, 501, 502, 504, 505, 506, 508, 509,
					 512, 520, 530 };

	for (size_t i = 0; i < sizeof(blks) / sizeof(blks[0]); i++) {
		assert_int_equal(dfs_buf_get(mp, blks[i], &test_ops, &bp), 0);
		bp->b_lsn = blks[i] == 520 ? 9 : 5;
		dfs_blkhdr_init(bp, TEST_MAGIC, 77);
		memset((char *)bp->b_addr + 100, (int)blks[i], 50);
		dfs_buf_mark_dirty(bp, bp->b_lsn);
		if (blks[i] == 530)
			dfs_buf_stale(bp);
		dfs_buf_relse(bp);
	}
	assert_null(dfs_buf_incore(mp, 530));	/* stale: dropped on release */
	assert_int_equal(dfs_bcache_dirty_count(mp), 13);
	dfs_blkdev_get_stats(mp->m_bdev, &b0);
	assert_int_equal(dfs_bcache_writeback(mp, 5), 0);
	dfs_blkdev_get_stats(mp->m_bdev, &b1);
	/* 12 blocks in two runs: two bios */
	assert_int_equal(b1.writes - b0.writes, 2);
	assert_int_equal(b1.write_bytes - b0.write_bytes, 12 * BS);
	assert_int_equal(dfs_bcache_dirty_count(mp), 1);
	bp = dfs_buf_incore(mp, 520);
	assert_true(bp->b_flags & DFS_BUF_DIRTY);
	dfs_buf_relse(bp);
	for (size_t i = 0; i < sizeof(blks) / sizeof(blks[0]); i++) {
		read_raw_block(mp, blks[i], raw);
		if (blks[i] >= 520) {
			assert_int_equal(((struct dfs_blkhdr *)raw)->magic, 0);
			continue;
		}
		assert_int_equal(((struct dfs_blkhdr *)raw)->magic, TEST_MAGIC);
		assert_int_equal(((struct dfs_blkhdr *)raw)->lsn, 5);
		assert_int_equal(((struct dfs_blkhdr *)raw)->owner, 77);
		assert_int_equal((uint8_t)raw[120], (uint8_t)blks[i]);
		assert_true(dfs_cksum_verify(raw, BS, offsetof(struct dfs_blkhdr, crc)));
	}
	assert_int_equal(dfs_bcache_writeback(mp, 9), 0);
	read_raw_block(mp, 520, raw);
	assert_int_equal(((struct dfs_blkhdr *)raw)->lsn, 9);
	assert_true(dfs_cksum_verify(raw, BS, offsetof(struct dfs_blkhdr, crc)));
	assert_int_equal(dfs_bcache_dirty_count(mp), 0);
	assert_int_equal(dfs_blkdev_rw(mp->m_bdev, DFS_IO_READ, DFS_IOK_META, 530 * BS, raw, BS), 0);
	assert_int_equal(((struct dfs_blkhdr *)raw)->magic, 0);

	/* a frozen buffer: the frozen image goes to disk, not the live one */
	assert_int_equal(dfs_buf_read(mp, 500, &test_ops, &bp), 0);
	memset((char *)bp->b_addr + 200, 0x11, 10);
	bp->b_lsn = 10;
	test_verify_write(bp);
	dfs_buf_mark_dirty(bp, 10);
	assert_int_equal(dfs_buf_freeze(bp), 0);
	memset((char *)bp->b_addr + 200, 0x22, 10);	/* uncommitted change */
	assert_int_equal(dfs_bcache_writeback(mp, 10), 0);
	read_raw_block(mp, 500, raw);
	assert_int_equal(raw[205], 0x11);
	assert_true(dfs_cksum_verify(raw, BS, offsetof(struct dfs_blkhdr, crc)));
	dfs_buf_thaw(bp);
	dfs_buf_relse(bp);

	/* drop the cache: corrupt one byte on disk, the re-read catches it */
	fixture_crash(mp);
	{
		struct buf_state *s = *state;
		char path[4096];
		struct dfs_dsb sb;
		int error;

		snprintf(path, sizeof(path), "%s/image.img", s->dir);
		/* crash left the sb in place; reuse the geometry from block 0 */
		{
			int fd = open(path, O_RDONLY);

			assert_true(fd >= 0);
			assert_int_equal(pread(fd, &sb, sizeof(sb), 0), (ssize_t)sizeof(sb));
			close(fd);
		}
		s->mp = mp = fixture_mount_image(path, &sb, 0, &error);
		assert_non_null(mp);
	}
	corrupt_byte(mp, 505, 4000);
	dfs_msg_set_quiet(1);
	assert_int_equal(dfs_buf_read(mp, 505, &test_ops, &bp), -EFSCORRUPTED);
	assert_int_equal(dfs_buf_read(mp, 506, &test_ops, &bp), 0);
	dfs_buf_relse(bp);
	dfs_bcache_get_stats(mp, &st);
	assert_int_equal(st.reads, 2);
	free(raw);
}

/*
 * Random reads, gets, modifications, dirtying, staling and writebacks of
 * 64 blocks through a 16-block cache. Model: the disk contents, the cached
 * contents of each block, holds. Invariants after each step: cache bytes
 * within budget unless held or dirty buffers need more; every cached
 * buffer holds the model's contents; the disk holds the model's disk.
 */
#define NB 64
#define BASE 1000
static void test_random(void **state)
{
	struct dfs_mount *mp = ((struct buf_state *)*state)->mp;
	uint64_t seed = (uint64_t)time(NULL), x;
	uint8_t disk[NB], mem[NB];	/* byte 100 of each block: a version tag */
	bool dirty[NB];
	struct dfs_buf *held[NB] = { 0 };
	char *raw = dfs_bio_alloc_buf(BS);
	uint64_t lsn = 1;

	x = seed | 1;
	print_message("seed %" PRIu64 "\n", seed);
	for (int i = 0; i < NB; i++) {
		write_raw_block(mp, BASE + i, 0);
		read_raw_block(mp, BASE + i, raw);
		disk[i] = mem[i] = (uint8_t)raw[100];
		dirty[i] = false;
	}
#define RND(n) ((x ^= x << 13, x ^= x >> 7, x ^= x << 17), (uint32_t)(x % (n)))
	for (int step = 0; step < 20000; step++) {
		int i = (int)RND(NB);
		struct dfs_buf *bp;
		struct dfs_bcache_stats st;

		switch (RND(5)) {
		case 0:		/* read and hold */
		case 1:
			if (held[i])
				break;
			assert_int_equal(dfs_buf_read(mp, BASE + i, &test_ops, &bp), 0);
			if ((uint8_t)((char *)bp->b_addr)[100] != mem[i])
				fail_msg("block %d: cache has %u, model %u (seed %" PRIu64 ")", i,
					 (uint8_t)((char *)bp->b_addr)[100], mem[i], seed);
			held[i] = bp;
			break;
		case 2:		/* modify a held one and dirty it */
			if (!held[i])
				break;
			mem[i]++;
			((char *)held[i]->b_addr)[100] = (char)mem[i];
			dfs_buf_mark_dirty(held[i], lsn);
			dirty[i] = true;
			break;
		case 3:		/* release */
			if (!held[i])
				break;
			dfs_buf_relse(held[i]);
			held[i] = NULL;
			break;
		case 4:		/* writeback */
			if (RND(8))
				break;
			assert_int_equal(dfs_bcache_writeback(mp, lsn), 0);
			for (int j = 0; j < NB; j++) {
				if (dirty[j])
					disk[j] = mem[j];
				dirty[j] = false;
			}
			lsn++;
			break;
		}
		/* invariants */
		dfs_bcache_get_stats(mp, &st);
		{
			uint64_t pinned = 0, ndirty = 0;

			for (int j = 0; j < NB; j++) {
				if (held[j] || dirty[j])
					pinned++;
				ndirty += dirty[j];
			}
			assert_int_equal(st.dirty, ndirty);
			if (st.bytes > 16 * BS && st.bytes > pinned * BS)
				fail_msg("cache holds %" PRIu64 " bytes, budget %u, pinned %" PRIu64
					 " (seed %" PRIu64 ")", st.bytes, 16 * BS, pinned, seed);
		}
		if (step % 500 == 0) {
			for (int j = 0; j < NB; j++) {
				read_raw_block(mp, BASE + j, raw);
				if ((uint8_t)raw[100] != disk[j])
					fail_msg("disk block %d has %u, model %u (seed %" PRIu64 ")", j,
						 (uint8_t)raw[100], disk[j], seed);
			}
		}
	}
#undef RND
	for (int i = 0; i < NB; i++)
		if (held[i])
			dfs_buf_relse(held[i]);
	free(raw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hit_miss, buf_setup, buf_teardown),
		cmocka_unit_test_setup_teardown(test_eviction, buf_setup_small, buf_teardown),
		cmocka_unit_test_setup_teardown(test_verify_refuses, buf_setup, buf_teardown),
		cmocka_unit_test_setup_teardown(test_writeback, buf_setup, buf_teardown),
		cmocka_unit_test_setup_teardown(test_random, buf_setup_budget_16, buf_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
