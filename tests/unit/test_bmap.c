/* SPDX-License-Identifier: MIT */
/*
 * Extent maps (bmap.c, bmap_btree.c) on a real filesystem (dfs_mkfs +
 * dfs_mount), block size 1024. Free space is first cut into single blocks
 * (a scratch file takes a long run and gives back every other block), so
 * that every allocation of the file under test is its own extent and the
 * bmbt grows to height 3.
 *
 * The model is the state of each file block: hole, delalloc, unwritten or
 * written with its disk block. After every step dfs_bmapi_read must give
 * back exactly the model; every few steps dfs_bmap_check (which runs
 * dfs_btree_check on the bmbt) must pass; at the end the filesystem is
 * remounted (delalloc is gone then) and checked again. TEST_SEED=<n>
 * replays a run; the seed is printed first.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/bmap.h"
#include "fs/btree.h"
#include "fs/deepfs.h"
#include "fs/inode.h"
#include "fs/log.h"
#include "fs/mount.h"
#include "fs/msg.h"
#include "fs/trans.h"
#include "fixture.h"

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

/* ---- model ------------------------------------------------------------------ */

enum { M_HOLE, M_DELAY, M_UNWRITTEN, M_WRITTEN };

#define NBLK 4096	/* file blocks under test */

struct model {
	uint8_t state[NBLK];
	uint64_t blk[NBLK];
};

static const char *mstate_name(int s)
{
	static const char *const names[] = { "hole", "delalloc", "unwritten", "written" };

	return names[s];
}

/* The map from dfs_bmapi_read, block by block, against the model. */
static void check_model(struct dfs_inode *ip, const struct model *m)
{
	struct dfs_bmbt_irec maps[64];
	uint64_t bno = 0;

	while (bno < NBLK) {
		int nmaps = 64, i;

		assert_int_equal(dfs_bmapi_read(ip, bno, NBLK - bno, maps, &nmaps), 0);
		assert_true(nmaps > 0);
		for (i = 0; i < nmaps; i++) {
			const struct dfs_bmbt_irec *r = &maps[i];

			assert_int_equal(r->br_startoff, bno);
			for (uint64_t b = 0; b < r->br_blockcount; b++, bno++) {
				int s;

				if (r->br_startblock == DFS_HOLESTARTBLOCK)
					s = M_HOLE;
				else if (r->br_startblock == DFS_DELAYSTARTBLOCK)
					s = M_DELAY;
				else
					s = r->br_state == DFS_EXT_UNWRITTEN ? M_UNWRITTEN : M_WRITTEN;
				if (s != m->state[bno])
					fail_msg("file block %" PRIu64 ": map says %s, model %s", bno,
						 mstate_name(s), mstate_name(m->state[bno]));
				if (s >= M_UNWRITTEN && r->br_startblock + b != m->blk[bno])
					fail_msg("file block %" PRIu64 ": disk block %" PRIu64 ", model %" PRIu64,
						 bno, r->br_startblock + b, m->blk[bno]);
			}
		}
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* No disk block is mapped twice. */
static void check_unique(const struct model *m)
{
	uint64_t *v = malloc(NBLK * sizeof(*v));
	size_t n = 0;

	assert_non_null(v);
	for (int i = 0; i < NBLK; i++)
		if (m->state[i] >= M_UNWRITTEN)
			v[n++] = m->blk[i];
	qsort(v, n, sizeof(*v), cmp_u64);
	for (size_t i = 1; i < n; i++)
		assert_true(v[i - 1] != v[i]);
	free(v);
}

/* ---- filesystem helpers --------------------------------------------------------- */

struct env {
	char *dir;
	char path[256];
	struct dfs_mount *mp;
};

static void env_mount(struct env *e)
{
	struct dfs_mount_opts mo = { .bufcache_bytes = 4u << 20, .pagecache_bytes = 1u << 20 };

	assert_int_equal(dfs_mount(e->path, &mo, &e->mp), 0);
	pthread_mutex_lock(&e->mp->m_lock);
}

static void env_unmount(struct env *e)
{
	pthread_mutex_unlock(&e->mp->m_lock);
	assert_int_equal(dfs_unmount(e->mp), 0);
	e->mp = NULL;
}

static void env_setup(struct env *e, uint64_t size, uint32_t blocksize)
{
	struct dfs_mkfs_opts o = { .size = size, .blocksize = blocksize, .agcount = 1 };

	e->dir = fixture_tmpdir();
	snprintf(e->path, sizeof(e->path), "%s/bmap.img", e->dir);
	assert_int_equal(dfs_mkfs(e->path, &o), 0);
	env_mount(e);
}

static void env_teardown(struct env *e)
{
	if (e->mp)
		env_unmount(e);
	fixture_rmdir(e->dir);
	free(e->dir);
}

/* A regular file made through the namespace, so that fsck can account for
 * it; returned referenced, with the mount lock held again. */
static struct dfs_inode *make_inode(struct dfs_mount *mp)
{
	static const struct dfs_cred cred = { 0, 0 };
	static int seq;
	struct dfs_inode *ip;
	struct dfs_stat st;
	char name[32];

	snprintf(name, sizeof(name), "file%d", seq++);
	pthread_mutex_unlock(&mp->m_lock);
	assert_int_equal(dfs_mknod(mp, dfs_root_ino(mp), name, 0100644, 0, &cred, &st), 0);
	pthread_mutex_lock(&mp->m_lock);
	assert_int_equal(dfs_iget(mp, NULL, st.ino, &ip), 0);
	ip->i_size = (uint64_t)NBLK * ip->i_mount->m_blocksize;
	return ip;
}

/* Unmount and check the whole filesystem: free space, block ownership. */
static void env_fsck(struct env *e)
{
	struct dfs_fsck_opts o = { 0 };
	struct dfs_fsck_result r;

	env_unmount(e);
	assert_int_equal(dfs_fsck(e->path, &o, &r), 0);
	assert_int_equal(r.problems, 0);
	env_mount(e);
}

static int punch(struct dfs_inode *ip, uint64_t bno, uint64_t len)
{
	struct dfs_trans *tp;
	int done = 0, error;

	while (!done) {
		error = dfs_trans_alloc(ip->i_mount, dfs_bmap_ext_res(ip->i_mount), &tp);
		if (error)
			return error;
		error = dfs_bunmapi(tp, ip, bno, len, &done);
		if (!error)
			error = dfs_trans_log_inode(tp, ip);
		if (error) {
			dfs_trans_cancel(tp);
			return error;
		}
		error = dfs_trans_commit(tp, false);
		if (error)
			return error;
	}
	return 0;
}

/*
 * Cut free space into single blocks: a scratch file takes runs of blocks
 * and gives back every other one.
 */
static void fragment_free_space(struct dfs_mount *mp, struct dfs_inode *sp, uint64_t nblocks)
{
	uint64_t fb = 0;

	while (fb < nblocks) {
		struct dfs_bmbt_irec map;
		struct dfs_trans *tp;
		int nmaps = 1;

		assert_int_equal(dfs_trans_alloc(mp, 256 + dfs_bmap_ext_res(mp), &tp), 0);
		assert_int_equal(dfs_bmapi_write(tp, sp, fb, 256, DFS_BMAPI_PREALLOC, &map, &nmaps), 0);
		assert_int_equal(nmaps, 1);
		assert_int_equal(dfs_trans_commit(tp, false), 0);
		fb += map.br_blockcount;
	}
	for (fb = 1; fb < nblocks; fb += 2)
		assert_int_equal(punch(sp, fb, 1), 0);
	assert_int_equal(dfs_bmap_check(sp), 0);
	/* freed extents are busy until the log is durable */
	assert_int_equal(dfs_log_force(mp), 0);
}

/* ---- operations on the model and the file ---------------------------------------- */

static void op_reserve(struct dfs_inode *ip, struct model *m, uint64_t bno, uint64_t len)
{
	assert_int_equal(dfs_bmapi_reserve_delalloc(ip, bno, len), 0);
	for (uint64_t b = bno; b < bno + len; b++)
		if (m->state[b] == M_HOLE)
			m->state[b] = M_DELAY;
}

static void op_convert(struct dfs_inode *ip, struct model *m, uint64_t bno)
{
	struct dfs_bmbt_irec imap;

	assert_int_equal(dfs_bmapi_convert_delalloc(ip, bno, &imap), 0);
	assert_int_equal(imap.br_state, DFS_EXT_UNWRITTEN);
	assert_true(imap.br_blockcount > 0);
	for (uint64_t i = 0; i < imap.br_blockcount; i++) {
		uint64_t b = imap.br_startoff + i;

		assert_true(b < NBLK);
		assert_int_equal(m->state[b], M_DELAY);
		m->state[b] = M_UNWRITTEN;
		m->blk[b] = imap.br_startblock + i;
	}
}

static void op_written(struct dfs_inode *ip, struct model *m, uint64_t bno, uint64_t len)
{
	uint32_t bs = ip->i_mount->m_blocksize;

	assert_int_equal(dfs_iomap_write_unwritten(ip, bno * bs, len * bs, ip->i_size), 0);
	for (uint64_t b = bno; b < bno + len; b++)
		if (m->state[b] == M_UNWRITTEN)
			m->state[b] = M_WRITTEN;
}

static void op_prealloc(struct dfs_inode *ip, struct model *m, uint64_t bno, uint64_t len)
{
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_bmbt_irec maps[8];
	struct dfs_trans *tp;
	int nmaps = 8;

	assert_int_equal(dfs_trans_alloc(mp, (uint32_t)len + 8 * dfs_bmap_ext_res(mp), &tp), 0);
	assert_int_equal(dfs_bmapi_write(tp, ip, bno, len, DFS_BMAPI_PREALLOC, maps, &nmaps), 0);
	assert_int_equal(dfs_trans_commit(tp, false), 0);
	for (int i = 0; i < nmaps; i++) {
		for (uint64_t j = 0; j < maps[i].br_blockcount; j++) {
			uint64_t b = maps[i].br_startoff + j;

			if (m->state[b] == M_HOLE) {
				m->state[b] = M_UNWRITTEN;
				m->blk[b] = maps[i].br_startblock + j;
				assert_int_equal(maps[i].br_state, DFS_EXT_UNWRITTEN);
			}
		}
	}
}

static void op_punch(struct dfs_inode *ip, struct model *m, uint64_t bno, uint64_t len)
{
	assert_int_equal(punch(ip, bno, len), 0);
	for (uint64_t b = bno; b < bno + len; b++)
		m->state[b] = M_HOLE;
}

static void op_truncate(struct dfs_inode *ip, struct model *m, uint64_t bno)
{
	assert_int_equal(dfs_itruncate_extents(ip, bno * ip->i_mount->m_blocksize), 0);
	for (uint64_t b = bno; b < NBLK; b++)
		m->state[b] = M_HOLE;
}

static void random_step(struct dfs_inode *ip, struct model *m)
{
	uint64_t bno = rnd_below(NBLK), len = 1 + rnd_below(24);
	unsigned op = (unsigned)rnd_below(100);

	if (bno + len > NBLK)
		len = NBLK - bno;
	if (op < 30) {
		op_reserve(ip, m, bno, len);
	} else if (op < 55) {
		/* convert a delalloc block at or after bno, if any */
		for (uint64_t b = bno; b < NBLK; b++) {
			if (m->state[b] == M_DELAY) {
				op_convert(ip, m, b);
				break;
			}
		}
	} else if (op < 70) {
		op_written(ip, m, bno, len);
	} else if (op < 82) {
		op_prealloc(ip, m, bno, len);
	} else if (op < 99) {
		op_punch(ip, m, bno, len);
	} else {
		op_truncate(ip, m, NBLK - rnd_below(NBLK / 8));
	}
}

/* ---- tests -------------------------------------------------------------------------- */

/* The in-core list and its conversions on an inline extent list first. */
static void test_bmap_inline(void **state)
{
	struct env e = { 0 };
	struct model *m = calloc(1, sizeof(*m));
	struct dfs_inode *ip;

	seed_init("test_bmap_inline");
	env_setup(&e, 64ull << 20, 4096);
	ip = make_inode(e.mp);
	for (int step = 0; step < 600; step++) {
		random_step(ip, m);
		check_model(ip, m);
		if (step % 16 == 0)
			assert_int_equal(dfs_bmap_check(ip), 0);
	}
	assert_int_equal(dfs_bmap_check(ip), 0);
	free(m);
	dfs_irele(ip);
	env_fsck(&e);
	env_teardown(&e);
}

/* Fragmented free space: one extent per block, a bmbt of height 3. */
static void test_bmap_btree_height3(void **state)
{
	struct env e = { 0 };
	struct model *m = calloc(1, sizeof(*m));
	struct dfs_inode *ip, *sp;
	uint64_t ino;

	seed_init("test_bmap_btree_height3");
	env_setup(&e, 24ull << 20, 1024);
	/* the inodes first, so that the fragments lie between them and the
	 * rest of the free space */
	ip = make_inode(e.mp);
	sp = make_inode(e.mp);
	ino = ip->i_ino;
	fragment_free_space(e.mp, sp, 2 * NBLK + 512);

	/* fill every block, one at a time: the block after the previous one
	 * is the scratch file's, so each gets an extent of its own */
	for (uint64_t b = 0; b < NBLK; b++) {
		op_reserve(ip, m, b, 1);
		op_convert(ip, m, b);
	}
	check_model(ip, m);
	assert_int_equal(ip->i_df.if_format, DFS_DINODE_FMT_BTREE);
	print_message("bmbt height %u with %u extents\n", ip->i_df.if_broot.level,
		      dfs_bmap_real_extents(ip));
	assert_true(ip->i_df.if_broot.level >= 3);
	assert_int_equal(dfs_bmap_check(ip), 0);

	for (int step = 0; step < 1500; step++) {
		random_step(ip, m);
		check_model(ip, m);
		if (step % 50 == 0) {
			assert_int_equal(dfs_bmap_check(ip), 0);
			check_unique(m);
		}
	}
	assert_int_equal(dfs_bmap_check(ip), 0);
	assert_int_equal(dfs_bmap_check(sp), 0);
	dfs_irele(sp);
	dfs_irele(ip);

	/* remount (through fsck): delalloc does not survive, everything else does */
	env_fsck(&e);
	for (int b = 0; b < NBLK; b++)
		if (m->state[b] == M_DELAY)
			m->state[b] = M_HOLE;
	assert_int_equal(dfs_iget(e.mp, NULL, ino, &ip), 0);
	check_model(ip, m);
	assert_int_equal(dfs_bmap_check(ip), 0);
	/* and go on from what was read back */
	ip->i_size = (uint64_t)NBLK * e.mp->m_blocksize;
	for (int step = 0; step < 500; step++) {
		random_step(ip, m);
		check_model(ip, m);
		if (step % 50 == 0)
			assert_int_equal(dfs_bmap_check(ip), 0);
	}
	check_unique(m);

	/* punch everything back down to an inline list, then truncate */
	op_punch(ip, m, 0, NBLK - 8);
	check_model(ip, m);
	assert_int_equal(ip->i_df.if_format, DFS_DINODE_FMT_EXTENTS);
	assert_int_equal(dfs_bmap_check(ip), 0);
	op_truncate(ip, m, 0);
	check_model(ip, m);
	assert_int_equal(ip->i_nblocks, 0);
	dfs_irele(ip);
	free(m);
	env_fsck(&e);
	env_teardown(&e);
}

/* Delalloc reservations come out of the free block count and go back. */
static void test_bmap_delalloc_accounting(void **state)
{
	struct env e = { 0 };
	struct dfs_inode *ip;
	uint64_t free0, dal0;

	env_setup(&e, 16ull << 20, 1024);
	ip = make_inode(e.mp);
	free0 = e.mp->m_fdblocks;
	dal0 = e.mp->m_delalloc_blocks;
	assert_int_equal(dfs_bmapi_reserve_delalloc(ip, 10, 100), 0);
	assert_int_equal(ip->i_delayed_blks, 100);
	assert_true(e.mp->m_fdblocks < free0 - 100);	/* data + indirect */
	assert_int_equal(free0 - e.mp->m_fdblocks, e.mp->m_delalloc_blocks - dal0);
	/* split in the middle, then give all back */
	assert_int_equal(punch(ip, 50, 10), 0);
	assert_int_equal(ip->i_delayed_blks, 90);
	assert_int_equal(punch(ip, 0, 1000), 0);
	assert_int_equal(ip->i_delayed_blks, 0);
	assert_int_equal(ip->i_delayed_indlen, 0);
	assert_int_equal(e.mp->m_fdblocks, free0);
	assert_int_equal(e.mp->m_delalloc_blocks, dal0);
	/* more than the disk: ENOSPC, and nothing is left reserved */
	assert_int_equal(dfs_bmapi_reserve_delalloc(ip, 0, e.mp->m_dblocks), -ENOSPC);
	assert_int_equal(ip->i_delayed_blks, 0);
	assert_int_equal(e.mp->m_fdblocks, free0);
	dfs_irele(ip);
	env_teardown(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bmap_delalloc_accounting),
		cmocka_unit_test(test_bmap_inline),
		cmocka_unit_test(test_bmap_btree_height3),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
