/* SPDX-License-Identifier: MIT */
/*
 * Transactions and the write-ahead log, checked by crashing.
 *
 * A randomized run commits transactions over a set of blocks (relogging,
 * logging a block twice, freeing blocks and reusing them as file data
 * written in place, sync commits, forces, checkpoints) against a model that
 * keeps, for every block, the history of what was committed to it and under
 * which LSN. At many points the image file is copied (a crash: nothing is in
 * flight, as all log IO is waited for) and the copy is mounted, which replays
 * its log; then every block of the copy must be what the model says it was
 * as of the last record written to the log: forced records and records
 * written but not yet flushed replay, the in-core log is lost, a freed block
 * never gets an older image back over the data written to it since.
 *
 * Then: torn records (header or image corrupted in the copy) end replay at
 * the record before, the circular log wraps many times through checkpoints,
 * a checkpoint in the middle of a transaction writes only committed
 * contents, committed callbacks run only once durable.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs/blkdev.h"
#include "fs/buf.h"
#include "fs/crc.h"
#include "fs/deepfs.h"
#include "fs/log.h"
#include "fs/mount.h"
#include "fs/msg.h"
#include "fs/trans.h"
#include "fixture.h"

#define TEST_MAGIC	0x54534554u	/* "TEST" */
#define FIRST		600u		/* first test block, past the log */
#define NBLK		80u

static int test_verify_read(struct dfs_buf *bp)
{
	return dfs_blkhdr_verify(bp, TEST_MAGIC);
}

static int test_verify_write(struct dfs_buf *bp)
{
	dfs_blkhdr_update_crc(bp);
	return 0;
}

static const struct dfs_buf_ops test_ops = {
	.name = "test",
	.magic = TEST_MAGIC,
	.verify_read = test_verify_read,
	.verify_write = test_verify_write,
};

/* ---- the model ------------------------------------------------------------ */

enum ev_type { EV_META, EV_FREE, EV_DATA };

struct ev {
	enum ev_type type;
	uint32_t value;		/* version (META) or tag (DATA) */
	uint64_t lsn;		/* of the transaction (META, FREE); 0 for DATA */
};

struct blk_model {
	struct ev *ev;
	size_t n, cap;
};

struct model {
	uint32_t bs;
	struct blk_model blk[NBLK];
};

static void model_push(struct model *m, uint32_t i, enum ev_type t, uint32_t value, uint64_t lsn)
{
	struct blk_model *b = &m->blk[i];

	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 16;
		b->ev = realloc(b->ev, b->cap * sizeof(*b->ev));
		assert_non_null(b->ev);
	}
	b->ev[b->n++] = (struct ev){ t, value, lsn };
}

static const struct ev *model_last(const struct model *m, uint32_t i)
{
	const struct blk_model *b = &m->blk[i];

	return b->n ? &b->ev[b->n - 1] : NULL;
}

/*
 * What a crash leaves in block i when records up to synced_lsn are in the
 * log: the last event that survives. File data written in place always does
 * (it is written only after the free is durable); transactions do if their
 * record was written.
 */
static const struct ev *model_at(const struct model *m, uint32_t i, uint64_t synced_lsn)
{
	const struct blk_model *b = &m->blk[i];

	for (size_t k = b->n; k-- > 0;)
		if (b->ev[k].type == EV_DATA || b->ev[k].lsn <= synced_lsn)
			return &b->ev[k];
	return NULL;
}

static void model_free(struct model *m)
{
	for (uint32_t i = 0; i < NBLK; i++)
		free(m->blk[i].ev);
}

static uint32_t pattern_word(uint64_t blkno, uint32_t value, size_t w)
{
	return (uint32_t)(blkno * 2654435761u) ^ (value * 40503u) ^ (uint32_t)(w * 97u);
}

/* Payload of a metadata block: version at byte 48, pattern after it. */
static void fill_meta(struct dfs_buf *bp, uint32_t version)
{
	uint32_t *p = (uint32_t *)((char *)bp->b_addr + sizeof(struct dfs_blkhdr));
	size_t words = (bp->b_len - sizeof(struct dfs_blkhdr)) / 4;

	p[0] = version;
	for (size_t w = 1; w < words; w++)
		p[w] = pattern_word(bp->b_blkno, version, w);
}

static void fill_data(void *buf, uint32_t bs, uint64_t blkno, uint32_t tag)
{
	for (size_t w = 0; w < bs / 4; w++)
		((uint32_t *)buf)[w] = pattern_word(blkno, tag | 0x80000000u, w);
}

/* Checks block i of the device behind mp against ev; returns a reason or NULL. */
static const char *check_block(struct dfs_mount *mp, uint32_t i, const struct ev *ev, char *raw)
{
	uint64_t blkno = FIRST + i;
	const struct dfs_blkhdr *hdr = (const void *)raw;
	const uint32_t *p = (const uint32_t *)(hdr + 1);
	uint32_t bs = mp->m_blocksize;

	assert_int_equal(dfs_blkdev_rw(mp->m_bdev, DFS_IO_READ, DFS_IOK_META,
				       dfs_fsb_to_bytes(mp, blkno), raw, bs), 0);
	if (!ev) {
		for (uint32_t k = 0; k < bs; k++)
			if (raw[k])
				return "never written, but not zero";
		return NULL;
	}
	switch (ev->type) {
	case EV_FREE:
		return NULL;	/* anything goes */
	case EV_DATA:
		for (size_t w = 0; w < bs / 4; w++)
			if (((uint32_t *)raw)[w] != pattern_word(blkno, ev->value | 0x80000000u, w))
				return "file data overwritten";
		return NULL;
	case EV_META:
		if (hdr->magic != TEST_MAGIC)
			return "bad magic";
		if (p[0] != ev->value)
			return "wrong version";
		if (hdr->lsn != ev->lsn)
			return "hdr.lsn is not the LSN of the last transaction that logged it";
		if (hdr->blkno != blkno)
			return "wrong self address";
		if (!dfs_cksum_verify(raw, bs, offsetof(struct dfs_blkhdr, crc)))
			return "bad CRC";
		for (size_t w = 1; w < (bs - sizeof(*hdr)) / 4; w++)
			if (p[w] != pattern_word(blkno, ev->value, w))
				return "payload differs";
		return NULL;
	}
	return "?";
}

/* Checks every block of mp against the model as of synced_lsn. */
static void check_all(struct dfs_mount *mp, const struct model *m, uint64_t synced_lsn,
		      uint64_t seed, const char *when)
{
	char *raw = dfs_bio_alloc_buf(mp->m_blocksize);

	for (uint32_t i = 0; i < NBLK; i++) {
		const struct ev *ev = model_at(m, i, synced_lsn);
		const char *why = check_block(mp, i, ev, raw);

		if (why)
			fail_msg("%s: block %u: %s (expected %s %u lsn %" PRIu64 ", found version %u "
				 "lsn %" PRIu64 "; synced %" PRIu64 ", seed %" PRIu64 ")",
				 when, FIRST + i, why,
				 !ev ? "nothing" : ev->type == EV_META ? "meta" : "data",
				 ev ? ev->value : 0, ev ? ev->lsn : 0,
				 ((uint32_t *)raw)[sizeof(struct dfs_blkhdr) / 4],
				 ((struct dfs_blkhdr *)raw)->lsn, synced_lsn, seed);
	}
	free(raw);
}

/* Copy the image as it is now, mount the copy (replaying its log), check. */
static void crash_and_check(struct dfs_mount *mp, const struct model *m, uint64_t synced_lsn,
			    const char *dir, uint64_t seed, void (*damage)(const char *, void *),
			    void *arg)
{
	char path[PATH_MAX];
	struct dfs_mount *cmp;
	int error;

	snprintf(path, sizeof(path), "%s/crash.img", dir);
	assert_int_equal(dfs_blkdev_drain(mp->m_bdev), 0);
	assert_int_equal(fixture_copy_file(fixture_image_path(mp), path), 0);
	if (damage)
		damage(path, arg);
	cmp = fixture_mount_image(path, &mp->m_sb, 0, &error);
	if (!cmp)
		fail_msg("mounting the crash copy: %s (seed %" PRIu64 ")", strerror(-error), seed);
	check_all(cmp, m, synced_lsn, seed, "after recovery");
	/* and a second crash right after recovery changes nothing */
	fixture_crash(cmp);
	cmp = fixture_mount_image(path, &mp->m_sb, 0, &error);
	assert_non_null(cmp);
	check_all(cmp, m, synced_lsn, seed, "after a second recovery");
	assert_int_equal(fixture_unmount(cmp), 0);
	unlink(path);
}

/* ---- the randomized run --------------------------------------------------- */

struct run {
	struct dfs_mount *mp;
	struct model m;
	uint32_t version[NBLK];		/* last version committed, per block */
	uint32_t data_tag;
	uint64_t x;
	char *dir;
	uint64_t seed;
};

static uint32_t rnd(struct run *r, uint32_t n)
{
	r->x ^= r->x << 13;
	r->x ^= r->x >> 7;
	r->x ^= r->x << 17;
	return (uint32_t)(r->x % n);
}

/* One transaction over 1..maxblk random blocks; maybe frees one. */
static void run_transaction(struct run *r, uint32_t maxblk)
{
	struct dfs_mount *mp = r->mp;
	uint32_t n = 1 + rnd(r, maxblk), picked[16], npicked = 0;
	uint32_t newver[16];
	bool freed[16] = { false };
	struct dfs_trans *tp;
	uint64_t lsn = 0;
	bool sync = rnd(r, 10) == 0;

	assert_int_equal(dfs_trans_alloc(mp, 0, &tp), 0);
	while (npicked < n) {
		uint32_t i = rnd(r, NBLK), k;
		const struct ev *last = model_last(&r->m, i);
		struct dfs_buf *bp;

		for (k = 0; k < npicked; k++)
			if (picked[k] == i)
				break;
		if (k < npicked)
			continue;
		picked[npicked] = i;
		if (last && last->type == EV_META) {
			assert_int_equal(dfs_trans_read_buf(tp, FIRST + i, &test_ops, &bp), 0);
			if (((uint32_t *)bp->b_addr)[sizeof(struct dfs_blkhdr) / 4] != r->version[i])
				fail_msg("block %u: version %u in cache, %u committed (seed %" PRIu64 ")",
					 FIRST + i, ((uint32_t *)bp->b_addr)[12], r->version[i],
					 r->seed);
		} else {
			/* never used, or file data now: a new metadata block */
			if (last && last->type == EV_FREE) {
				/* not reused as data yet: reallocate while maybe still busy */
			}
			assert_int_equal(dfs_trans_get_buf(tp, FIRST + i, &test_ops, &bp), 0);
			dfs_blkhdr_init(bp, TEST_MAGIC, 1);
		}
		newver[npicked] = r->version[i] + 1;
		if (rnd(r, 4) == 0) {
			/* log the block twice: first one image, then a newer one */
			fill_meta(bp, newver[npicked] + 1000);
			dfs_trans_log_buf(tp, bp);
			{
				struct dfs_buf *again;

				assert_int_equal(dfs_trans_read_buf(tp, FIRST + i, &test_ops, &again), 0);
				assert_ptr_equal(again, bp);
			}
		}
		fill_meta(bp, newver[npicked]);
		dfs_trans_log_buf(tp, bp);
		/* the first block stays: its b_lsn tells the transaction's LSN */
		if (npicked && last && last->type == EV_META && rnd(r, 12) == 0) {
			dfs_trans_binval(tp, bp);
			freed[npicked] = true;
		}
		npicked++;
	}
	assert_int_equal(dfs_trans_commit(tp, sync), 0);
	/* the LSN of the transaction: any logged block carries it now */
	for (uint32_t k = 0; k < npicked; k++) {
		struct dfs_buf *bp = dfs_buf_incore(mp, FIRST + picked[k]);

		if (freed[k]) {
			assert_null(bp);	/* stale: dropped at release */
			continue;
		}
		assert_non_null(bp);
		if (!lsn)
			lsn = bp->b_lsn;
		assert_int_equal(bp->b_lsn, lsn);
		assert_int_equal(((struct dfs_blkhdr *)bp->b_addr)->lsn, lsn);
		dfs_buf_relse(bp);
	}
	for (uint32_t k = 0; k < npicked; k++) {
		uint32_t i = picked[k];

		if (freed[k]) {
			model_push(&r->m, i, EV_FREE, 0, lsn);
		} else {
			r->version[i] = newver[k];
			model_push(&r->m, i, EV_META, newver[k], lsn);
		}
	}
	if (sync)
		assert_true(dfs_log_durable_lsn(mp) >= lsn);
}

/* A block whose free is durable gets file data written straight to disk. */
static void run_data_write(struct run *r)
{
	struct dfs_mount *mp = r->mp;
	uint32_t i = rnd(r, NBLK);
	const struct ev *last = model_last(&r->m, i);
	void *buf;

	if (!last || last->type != EV_FREE || last->lsn > dfs_log_durable_lsn(mp))
		return;
	buf = dfs_bio_alloc_buf(mp->m_blocksize);
	fill_data(buf, mp->m_blocksize, FIRST + i, ++r->data_tag);
	assert_int_equal(dfs_blkdev_rw(mp->m_bdev, DFS_IO_WRITE, DFS_IOK_DATA,
				       dfs_fsb_to_bytes(mp, FIRST + i), buf, mp->m_blocksize), 0);
	free(buf);
	model_push(&r->m, i, EV_DATA, r->data_tag, 0);
}

static void run_random(uint32_t blocksize, uint32_t logblocks, int steps, int crash_every,
		       uint32_t maxblk, uint64_t bcache_bytes)
{
	struct run r = { 0 };
	struct fixture_geom geom = {
		.size = 4u << 20, .blocksize = blocksize, .logblocks = logblocks,
		.bcache_bytes = bcache_bytes,
	};
	struct dfs_log_stats st;
	int crashes = 0;

	r.seed = getenv("DFS_SEED") ? strtoull(getenv("DFS_SEED"), NULL, 0) : (uint64_t)time(NULL);
	r.x = r.seed * 2 + 1;
	print_message("seed %" PRIu64 " (blocksize %u, log %u blocks)\n", r.seed, blocksize,
		      logblocks);
	r.dir = fixture_tmpdir();
	r.mp = fixture_mount_geom(r.dir, &geom);
	dfs_msg_set_quiet(1);
	assert_true(maxblk <= dfs_log_max_trans_blocks(r.mp));

	for (int step = 0; step < steps; step++) {
		switch (rnd(&r, 20)) {
		case 0:
			assert_int_equal(dfs_log_force(r.mp), 0);
			break;
		case 1:
			if (rnd(&r, 4) == 0)
				assert_int_equal(dfs_log_checkpoint(r.mp), 0);
			break;
		case 2:
		case 3:
			run_data_write(&r);
			break;
		default:
			run_transaction(&r, maxblk);
			break;
		}
		if (rnd(&r, (uint32_t)crash_every) == 0) {
			crash_and_check(r.mp, &r.m, dfs_log_synced_lsn(r.mp), r.dir, r.seed, NULL,
					NULL);
			crashes++;
		}
	}
	/* a clean unmount writes everything in place: the log is not needed */
	assert_int_equal(dfs_log_force(r.mp), 0);
	crash_and_check(r.mp, &r.m, dfs_log_synced_lsn(r.mp), r.dir, r.seed, NULL, NULL);
	dfs_log_get_stats(r.mp, &st);
	print_message("%d crash points, %" PRIu64 " commits in %" PRIu64 " records, %" PRIu64
		      " forces, %" PRIu64 " checkpoints\n", crashes + 1, st.commits, st.records,
		      st.forces, st.checkpoints);
	assert_true(st.records > 1);
	{
		uint64_t synced = dfs_log_synced_lsn(r.mp);

		r.mp = fixture_remount(r.mp);
		check_all(r.mp, &r.m, synced, r.seed, "after a clean remount");
		dfs_log_get_stats(r.mp, &st);
		assert_int_equal(st.replayed_records, 0);
	}
	assert_int_equal(fixture_unmount(r.mp), 0);
	model_free(&r.m);
	fixture_rmdir(r.dir);
	free(r.dir);
	dfs_msg_set_quiet(0);
}

static void test_random_4k(void **state)
{
	run_random(4096, 256, 3000, 40, 8, 0);
}

static void test_random_1k_small_log(void **state)
{
	/* 1 KiB blocks, the smallest log: wraps and checkpoints all the time */
	run_random(1024, 64, 3000, 40, 6, 0);
}

static void test_random_small_cache(void **state)
{
	/* a buffer cache too small for the dirty blocks: checkpoints from buf.c */
	run_random(4096, 512, 2000, 50, 8, 8 * 4096);
}

/* ---- targeted tests ------------------------------------------------------- */

struct simple {
	char *dir;
	struct dfs_mount *mp;
	struct model m;
	uint32_t version[NBLK];
};

static int simple_setup(void **state)
{
	struct simple *s = calloc(1, sizeof(*s));
	struct fixture_geom geom = { .size = 4u << 20, .logblocks = 128 };

	assert_non_null(s);
	s->dir = fixture_tmpdir();
	s->mp = fixture_mount_geom(s->dir, &geom);
	*state = s;
	return 0;
}

static int simple_teardown(void **state)
{
	struct simple *s = *state;

	if (s->mp)
		fixture_crash(s->mp);
	model_free(&s->m);
	fixture_rmdir(s->dir);
	free(s->dir);
	free(s);
	dfs_msg_set_quiet(0);
	return 0;
}

/* Commits one transaction over blocks [first, first+n) and returns its LSN. */
static uint64_t commit_blocks(struct simple *s, uint32_t first, uint32_t n, bool sync)
{
	struct dfs_trans *tp;
	struct dfs_buf *bp;
	uint64_t lsn;

	assert_int_equal(dfs_trans_alloc(s->mp, 0, &tp), 0);
	for (uint32_t i = first; i < first + n; i++) {
		if (s->version[i])
			assert_int_equal(dfs_trans_read_buf(tp, FIRST + i, &test_ops, &bp), 0);
		else {
			assert_int_equal(dfs_trans_get_buf(tp, FIRST + i, &test_ops, &bp), 0);
			dfs_blkhdr_init(bp, TEST_MAGIC, 1);
		}
		fill_meta(bp, ++s->version[i]);
		dfs_trans_log_buf(tp, bp);
	}
	assert_int_equal(dfs_trans_commit(tp, sync), 0);
	bp = dfs_buf_incore(s->mp, FIRST + first);
	lsn = bp->b_lsn;
	dfs_buf_relse(bp);
	for (uint32_t i = first; i < first + n; i++)
		model_push(&s->m, i, EV_META, s->version[i], lsn);
	return lsn;
}

struct tear {
	uint64_t logstart;
	uint32_t logblocks, bs;
	bool header;		/* corrupt the header, else the last image */
	uint64_t lsn;		/* out: LSN of the record damaged */
};

/* Finds the record with the highest LSN in the copy and damages it. */
static void tear_last_record(const char *path, void *arg)
{
	struct tear *t = arg;
	char *blk = malloc(t->bs);
	uint32_t best = 0, best_n = 0;
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	t->lsn = 0;
	for (uint32_t b = 1; b < t->logblocks; b++) {
		const struct dfs_logrec *rec = (const void *)blk;

		assert_int_equal(pread(fd, blk, t->bs, (off_t)((t->logstart + b) * t->bs)),
				 (ssize_t)t->bs);
		/* these records are small: one header block, images only */
		if (rec->hdr.magic == DFS_LOGREC_MAGIC && rec->hdr_blocks == 1 &&
		    dfs_cksum_verify(blk, t->bs, offsetof(struct dfs_blkhdr, crc)) &&
		    rec->rec_lsn > t->lsn) {
			t->lsn = rec->rec_lsn;
			best = b;
			best_n = rec->nblocks;
		}
	}
	assert_true(t->lsn > 0);
	{
		off_t off = (off_t)((t->logstart + best + (t->header ? 0 : best_n)) * t->bs) + 700;
		char c;

		assert_int_equal(pread(fd, &c, 1, off), 1);
		c ^= 0x08;
		assert_int_equal(pwrite(fd, &c, 1, off), 1);
	}
	close(fd);
	free(blk);
}

static void torn_record(void **state, bool header)
{
	struct simple *s = *state;
	struct tear t = {
		.logstart = s->mp->m_sb.logstart, .logblocks = s->mp->m_sb.logblocks,
		.bs = s->mp->m_blocksize, .header = header,
	};
	uint64_t lsn1, lsn2, lsn3;

	dfs_msg_set_quiet(1);
	lsn1 = commit_blocks(s, 0, 5, true);
	lsn2 = commit_blocks(s, 3, 6, true);
	lsn3 = commit_blocks(s, 8, 4, true);
	assert_true(lsn1 < lsn2 && lsn2 < lsn3);
	/* a sanity check of the model first: undamaged, everything replays */
	crash_and_check(s->mp, &s->m, lsn3, s->dir, 0, NULL, NULL);
	/* damaged: replay stops after the record before */
	crash_and_check(s->mp, &s->m, lsn2, s->dir, 0, tear_last_record, &t);
	assert_int_equal(t.lsn, lsn3);
}

static void test_torn_image(void **state)
{
	torn_record(state, false);
}

static void test_torn_header(void **state)
{
	torn_record(state, true);
}

/* A record written (iclog full) but never flushed still replays. */
static void test_unforced_record(void **state)
{
	struct simple *s = *state;
	uint32_t max = dfs_log_max_trans_blocks(s->mp);
	uint64_t lsn = 0, first_lsn;
	struct dfs_log_stats st;

	dfs_msg_set_quiet(1);
	first_lsn = commit_blocks(s, 0, 8, false);
	/* fill the iclog until it is written on its own */
	for (int k = 0; dfs_log_synced_lsn(s->mp) < first_lsn; k++) {
		lsn = commit_blocks(s, 8 + (uint32_t)k % 70, 1, false);
		assert_true(k < (int)max * 2);
	}
	dfs_log_get_stats(s->mp, &st);
	assert_int_equal(st.forces, 0);
	assert_true(dfs_log_durable_lsn(s->mp) < first_lsn);
	/* the last commit is in the open iclog: lost in a crash */
	assert_true(lsn > dfs_log_synced_lsn(s->mp));
	crash_and_check(s->mp, &s->m, dfs_log_synced_lsn(s->mp), s->dir, 0, NULL, NULL);
}

/* A checkpoint while a transaction changes a dirty block writes the committed image. */
static void test_checkpoint_mid_transaction(void **state)
{
	struct simple *s = *state;
	struct dfs_trans *tp;
	struct dfs_buf *bp;
	uint64_t lsn;

	dfs_msg_set_quiet(1);
	lsn = commit_blocks(s, 0, 3, false);
	assert_int_equal(dfs_trans_alloc(s->mp, 0, &tp), 0);
	assert_int_equal(dfs_trans_read_buf(tp, FIRST + 1, &test_ops, &bp), 0);
	assert_true(bp->b_flags & DFS_BUF_DIRTY);
	fill_meta(bp, 999);	/* not committed */
	assert_int_equal(dfs_log_checkpoint(s->mp), 0);
	assert_int_equal(dfs_bcache_dirty_count(s->mp), 0);
	/* the checkpoint moved the tail: no record to replay, all in place */
	crash_and_check(s->mp, &s->m, lsn, s->dir, 0, NULL, NULL);
	dfs_trans_log_buf(tp, bp);
	s->version[1] = 999;
	assert_int_equal(dfs_trans_commit(tp, true), 0);
	model_push(&s->m, 1, EV_META, 999, bp->b_lsn);
	crash_and_check(s->mp, &s->m, dfs_log_synced_lsn(s->mp), s->dir, 0, NULL, NULL);
}

static void count_cb(struct dfs_mount *mp, void *arg)
{
	(*(int *)arg)++;
}

static void test_committed_callbacks(void **state)
{
	struct simple *s = *state;
	struct dfs_trans *tp;
	struct dfs_buf *bp;
	int called = 0, called2 = 0;

	assert_int_equal(dfs_trans_alloc(s->mp, 0, &tp), 0);
	assert_int_equal(dfs_trans_get_buf(tp, FIRST, &test_ops, &bp), 0);
	dfs_blkhdr_init(bp, TEST_MAGIC, 1);
	dfs_trans_log_buf(tp, bp);
	assert_int_equal(dfs_trans_add_committed_cb(tp, count_cb, &called), 0);
	assert_int_equal(dfs_trans_commit(tp, false), 0);
	assert_int_equal(called, 0);
	/* a transaction logging nothing waits for the last commit */
	assert_int_equal(dfs_trans_alloc(s->mp, 0, &tp), 0);
	assert_int_equal(dfs_trans_add_committed_cb(tp, count_cb, &called2), 0);
	assert_int_equal(dfs_trans_commit(tp, false), 0);
	assert_int_equal(called2, 0);
	assert_int_equal(dfs_log_force(s->mp), 0);
	assert_int_equal(called, 1);
	assert_int_equal(called2, 1);
	assert_int_equal(dfs_log_force(s->mp), 0);
	assert_int_equal(called, 1);
	/* already durable: at once */
	assert_int_equal(dfs_log_add_committed_cb(s->mp, dfs_log_durable_lsn(s->mp), count_cb,
						  &called), 0);
	assert_int_equal(called, 2);
}

/* Block reservations come from m_fdblocks; unused ones go back. */
static void test_reservation(void **state)
{
	struct simple *s = *state;
	uint64_t free0 = s->mp->m_fdblocks;
	struct dfs_trans *tp;

	assert_int_equal(dfs_trans_alloc(s->mp, 10, &tp), 0);
	assert_int_equal(s->mp->m_fdblocks, free0 - 10);
	assert_int_equal(dfs_trans_use_blocks(tp, 4), 0);
	assert_int_equal(dfs_trans_use_blocks(tp, 7), -ENOSPC);
	dfs_trans_free_blocks(tp, 1);
	assert_int_equal(dfs_trans_commit(tp, false), 0);
	assert_int_equal(s->mp->m_fdblocks, free0 - 3);
	assert_int_equal(dfs_trans_alloc(s->mp, (uint32_t)s->mp->m_fdblocks + 1, &tp), -ENOSPC);
	assert_int_equal(s->mp->m_fdblocks, free0 - 3);
}

/* Too big for a record: refused, and the filesystem shuts down. */
static void test_oversized_transaction(void **state)
{
	struct simple *s = *state;
	uint32_t max = dfs_log_max_trans_blocks(s->mp);
	struct dfs_trans *tp;
	struct dfs_buf *bp;

	dfs_msg_set_quiet(1);
	assert_true(max + 1 < 1000);
	assert_int_equal(dfs_trans_alloc(s->mp, 0, &tp), 0);
	for (uint32_t i = 0; i <= max; i++) {
		assert_int_equal(dfs_trans_get_buf(tp, FIRST + i, &test_ops, &bp), 0);
		dfs_blkhdr_init(bp, TEST_MAGIC, 1);
		dfs_trans_log_buf(tp, bp);
	}
	assert_int_equal(dfs_trans_commit(tp, false), -E2BIG);
	assert_true(s->mp->m_shutdown);
	assert_int_equal(dfs_trans_alloc(s->mp, 0, &tp), -EIO);
}

/* Cancelling a transaction that logged something shuts the filesystem down. */
static void test_cancel(void **state)
{
	struct simple *s = *state;
	struct dfs_trans *tp;
	struct dfs_buf *bp;

	dfs_msg_set_quiet(1);
	commit_blocks(s, 0, 2, false);
	/* only read: a cancel is harmless */
	assert_int_equal(dfs_trans_alloc(s->mp, 0, &tp), 0);
	assert_int_equal(dfs_trans_read_buf(tp, FIRST, &test_ops, &bp), 0);
	dfs_trans_cancel(tp);
	assert_false(s->mp->m_shutdown);
	bp = dfs_buf_incore(s->mp, FIRST);
	assert_int_equal(bp->b_hold, 1);
	assert_null(bp->b_trans);
	dfs_buf_relse(bp);
	/* logged: shut down */
	assert_int_equal(dfs_trans_alloc(s->mp, 0, &tp), 0);
	assert_int_equal(dfs_trans_read_buf(tp, FIRST, &test_ops, &bp), 0);
	dfs_trans_log_buf(tp, bp);
	dfs_trans_cancel(tp);
	assert_true(s->mp->m_shutdown);
	assert_int_equal(dfs_log_force(s->mp), -EIO);
}

/*
 * 1 KiB blocks and a big log: transactions of 200 blocks need records whose
 * header runs over two blocks; then relogging and freeing in one record.
 */
static void test_big_transaction(void **state)
{
	struct fixture_geom geom = { .size = 4u << 20, .blocksize = 1024, .logblocks = 1024 };
	const uint64_t first = 2000;
	char *dir = fixture_tmpdir(), path[PATH_MAX];
	struct dfs_mount *mp = fixture_mount_geom(dir, &geom), *cmp;
	struct dfs_trans *tp;
	struct dfs_buf *bp;
	uint64_t lsn1, lsn2;
	char *raw = dfs_bio_alloc_buf(1024);
	int error;

	assert_true(dfs_log_max_trans_blocks(mp) >= 200);
	assert_int_equal(dfs_trans_alloc(mp, 0, &tp), 0);
	for (uint64_t b = first; b < first + 200; b++) {
		assert_int_equal(dfs_trans_get_buf(tp, b, &test_ops, &bp), 0);
		dfs_blkhdr_init(bp, TEST_MAGIC, 1);
		fill_meta(bp, 1);
		dfs_trans_log_buf(tp, bp);
	}
	assert_int_equal(dfs_trans_commit(tp, true), 0);
	lsn1 = dfs_log_durable_lsn(mp);

	/* relog 150, free 50: 150 images and 50 cancels in the next record */
	assert_int_equal(dfs_trans_alloc(mp, 0, &tp), 0);
	for (uint64_t b = first; b < first + 200; b++) {
		assert_int_equal(dfs_trans_read_buf(tp, b, &test_ops, &bp), 0);
		if (b % 4 == 0) {
			dfs_trans_binval(tp, bp);
			continue;
		}
		fill_meta(bp, 2);
		dfs_trans_log_buf(tp, bp);
	}
	assert_int_equal(dfs_trans_commit(tp, true), 0);
	lsn2 = dfs_log_durable_lsn(mp);
	assert_true(lsn2 > lsn1);

	snprintf(path, sizeof(path), "%s/crash.img", dir);
	assert_int_equal(fixture_copy_file(fixture_image_path(mp), path), 0);
	cmp = fixture_mount_image(path, &mp->m_sb, 0, &error);
	assert_non_null(cmp);
	for (uint64_t b = first; b < first + 200; b++) {
		const struct dfs_blkhdr *hdr = (const void *)raw;

		if (b % 4 == 0)
			continue;
		assert_int_equal(dfs_blkdev_rw(cmp->m_bdev, DFS_IO_READ, DFS_IOK_META, b * 1024, raw,
					       1024), 0);
		assert_int_equal(hdr->magic, TEST_MAGIC);
		assert_int_equal(hdr->lsn, lsn2);
		assert_int_equal(((const uint32_t *)raw)[12], 2);
		assert_true(dfs_cksum_verify(raw, 1024, offsetof(struct dfs_blkhdr, crc)));
	}
	{
		struct dfs_log_stats st;

		dfs_log_get_stats(cmp, &st);
		assert_int_equal(st.replayed_records, 2);
	}
	assert_int_equal(fixture_unmount(cmp), 0);
	assert_int_equal(fixture_unmount(mp), 0);
	free(raw);
	fixture_rmdir(dir);
	free(dir);
}

/* A read-only mount refuses a log with records to replay, and takes a clean one. */
static void test_readonly_mount(void **state)
{
	struct simple *s = *state;
	char path[PATH_MAX];
	struct dfs_mount *cmp;
	struct dfs_buf *bp;
	uint64_t lsn;
	int error;

	dfs_msg_set_quiet(1);
	lsn = commit_blocks(s, 0, 4, true);
	snprintf(path, sizeof(path), "%s/crash.img", s->dir);
	assert_int_equal(fixture_copy_file(fixture_image_path(s->mp), path), 0);
	assert_null(fixture_mount_image_ro(path, &s->mp->m_sb, &error));
	assert_int_equal(error, -EROFS);
	/* replayed by a read-write mount, clean after its unmount */
	cmp = fixture_mount_image(path, &s->mp->m_sb, 0, &error);
	assert_non_null(cmp);
	assert_int_equal(fixture_unmount(cmp), 0);
	cmp = fixture_mount_image_ro(path, &s->mp->m_sb, &error);
	assert_non_null(cmp);
	assert_int_equal(dfs_buf_read(cmp, FIRST + 2, &test_ops, &bp), 0);
	assert_int_equal(((struct dfs_blkhdr *)bp->b_addr)->lsn, lsn);
	assert_int_equal(((uint32_t *)bp->b_addr)[12], s->version[2]);
	dfs_buf_relse(bp);
	assert_int_equal(fixture_unmount(cmp), 0);
	unlink(path);
}

/* ---- a mount that fails after the log mount ------------------------------- */

/* pread of len bytes at byte offset off of the image at path */
static void image_pread(const char *path, void *buf, size_t len, uint64_t off)
{
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void image_pwrite(const char *path, const void *buf, size_t len, uint64_t off)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
	assert_int_equal(fsync(fd), 0);
	close(fd);
}

static void read_loghdr(const char *path, struct dfs_loghdr *lh)
{
	struct dfs_dsb sb;

	image_pread(path, &sb, sizeof(sb), 0);
	image_pread(path, lh, sizeof(*lh), sb.logstart * sb.blocksize);
	assert_int_equal(lh->hdr.magic, DFS_LOGHDR_MAGIC);
}

/* Flips a byte of the root inode: its cluster then fails verification, so
 * dfs_mount fails at the root inode, after the log is mounted. */
static void corrupt_root_inode(const char *path, uint64_t root_off)
{
	uint8_t c;

	image_pread(path, &c, 1, root_off + offsetof(struct dfs_dinode, di_crc));
	c ^= 0xff;
	image_pwrite(path, &c, 1, root_off + offsetof(struct dfs_dinode, di_crc));
}

/*
 * dfs_mount marks the log dirty once it is mounted (records may follow). A
 * mount failing later, here at a corrupt root inode, must not leave it so:
 * a clean log stays clean, and a replayed one is reset and clean, so that
 * neither the next mount nor fsck sees a dirty log.
 */
static void test_failed_mount_leaves_log_clean(void **state)
{
	struct dfs_mkfs_opts opts = { .size = 16u << 20 };
	char *dir = fixture_tmpdir(), path[PATH_MAX], crash[PATH_MAX];
	struct dfs_mount *mp;
	struct dfs_trans *tp;
	struct dfs_buf *bp;
	struct dfs_loghdr lh;
	uint64_t root_off, blk, lsn, bs;
	struct dfs_blkhdr *hdr;
	char *raw;

	snprintf(path, sizeof(path), "%s/image.img", dir);
	snprintf(crash, sizeof(crash), "%s/crash.img", dir);
	assert_int_equal(dfs_mkfs(path, &opts), 0);
	assert_int_equal(dfs_mount(path, NULL, &mp), 0);
	bs = mp->m_blocksize;
	root_off = dfs_fsb_to_bytes(mp, dfs_ino_to_fsb(mp, mp->m_sb.rootino)) +
		   (uint64_t)dfs_ino_to_offset(mp, mp->m_sb.rootino) * DFS_INODE_SIZE;
	/* one record for the crash copy, on a free block far from the inodes */
	blk = mp->m_dblocks - 1;
	assert_int_equal(dfs_trans_alloc(mp, 0, &tp), 0);
	assert_int_equal(dfs_trans_get_buf(tp, blk, &test_ops, &bp), 0);
	dfs_blkhdr_init(bp, TEST_MAGIC, 1);
	fill_meta(bp, 7);
	dfs_trans_log_buf(tp, bp);
	assert_int_equal(dfs_trans_commit(tp, true), 0);
	bp = dfs_buf_incore(mp, blk);
	assert_non_null(bp);
	lsn = bp->b_lsn;
	dfs_buf_relse(bp);
	assert_int_equal(dfs_blkdev_drain(mp->m_bdev), 0);
	assert_int_equal(fixture_copy_file(path, crash), 0);
	assert_int_equal(dfs_unmount(mp), 0);

	dfs_msg_set_quiet(1);
	/* a clean log */
	read_loghdr(path, &lh);
	assert_int_equal(lh.clean, 1);
	corrupt_root_inode(path, root_off);
	assert_int_not_equal(dfs_mount(path, NULL, &mp), 0);
	read_loghdr(path, &lh);
	assert_int_equal(lh.clean, 1);

	/* a log with a record: replayed, then clean */
	read_loghdr(crash, &lh);
	assert_int_equal(lh.clean, 0);
	corrupt_root_inode(crash, root_off);
	assert_int_not_equal(dfs_mount(crash, NULL, &mp), 0);
	read_loghdr(crash, &lh);
	assert_int_equal(lh.clean, 1);
	assert_true(lh.tail_lsn > lsn);
	raw = dfs_bio_alloc_buf(bs);
	assert_non_null(raw);
	image_pread(crash, raw, bs, blk * bs);
	hdr = (struct dfs_blkhdr *)raw;
	assert_int_equal(hdr->magic, TEST_MAGIC);
	assert_int_equal(hdr->lsn, lsn);
	assert_int_equal(((uint32_t *)raw)[sizeof(struct dfs_blkhdr) / 4], 7);
	/* and a second failed mount finds nothing to replay */
	assert_int_not_equal(dfs_mount(crash, NULL, &mp), 0);
	read_loghdr(crash, &lh);
	assert_int_equal(lh.clean, 1);
	free(raw);
	dfs_msg_set_quiet(0);
	fixture_rmdir(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_torn_image, simple_setup, simple_teardown),
		cmocka_unit_test_setup_teardown(test_torn_header, simple_setup, simple_teardown),
		cmocka_unit_test_setup_teardown(test_unforced_record, simple_setup, simple_teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_mid_transaction, simple_setup,
						simple_teardown),
		cmocka_unit_test_setup_teardown(test_committed_callbacks, simple_setup,
						simple_teardown),
		cmocka_unit_test_setup_teardown(test_reservation, simple_setup, simple_teardown),
		cmocka_unit_test_setup_teardown(test_oversized_transaction, simple_setup,
						simple_teardown),
		cmocka_unit_test_setup_teardown(test_cancel, simple_setup, simple_teardown),
		cmocka_unit_test_setup_teardown(test_readonly_mount, simple_setup, simple_teardown),
		cmocka_unit_test(test_big_transaction),
		cmocka_unit_test(test_failed_mount_leaves_log_clean),
		cmocka_unit_test(test_random_4k),
		cmocka_unit_test(test_random_1k_small_log),
		cmocka_unit_test(test_random_small_cache),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
