/* SPDX-License-Identifier: MIT */
/*
 * The generic B+tree against a reference model (a sorted array), on a real
 * bnobt of a 1 KiB-block image so that the tree grows to height 3 and back:
 * random inserts, deletes, updates and lookups, cursor walks compared with
 * the model, dfs_btree_check and a full comparison every few steps, and
 * remounts in between so that everything is read back from disk.
 *
 * The tree's blocks come from a pool the test keeps (instead of the AGFL),
 * so the test sees every block the tree allocates and frees.
 *
 * TEST_SEED=n in the environment replays a run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/alloc.h"
#include "fs/btree.h"
#include "fs/buf.h"
#include "fs/log.h"
#include "fs/mount.h"
#include "fs/msg.h"
#include "fs/trans.h"
#include "fixture.h"

#define TEST_AGNO	1u
#define POOL_START	1000u		/* agbnos below are record keys only */

static unsigned int seed;

/* ---- the model: records sorted by startblock ---- */
static struct dfs_alloc_rec *model;
static size_t nmodel;

static size_t model_find(uint32_t key)	/* index of the first >= key */
{
	size_t lo = 0, hi = nmodel;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (model[mid].startblock < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void model_insert(struct dfs_alloc_rec r)
{
	size_t i = model_find(r.startblock);

	memmove(&model[i + 1], &model[i], (nmodel - i) * sizeof(*model));
	model[i] = r;
	nmodel++;
}

static void model_delete(size_t i)
{
	memmove(&model[i], &model[i + 1], (nmodel - i - 1) * sizeof(*model));
	nmodel--;
}

/* ---- the block pool ---- */
static uint8_t *pool;
static uint32_t pool_len, pool_used;
static bool orig_root_live;	/* mkfs's root block, not from the pool */
static struct dfs_btree_ops test_ops;

static int test_alloc_block(struct dfs_btree_cur *cur, uint64_t hint, uint64_t *fsbno)
{
	for (uint32_t i = 0; i < pool_len; i++) {
		if (!pool[i]) {
			pool[i] = 1;
			pool_used++;
			*fsbno = dfs_agb_to_fsb(cur->bc_mp, TEST_AGNO, POOL_START + i);
			return 0;
		}
	}
	return -ENOSPC;
}

static int test_free_block(struct dfs_btree_cur *cur, uint64_t fsbno)
{
	uint32_t agbno = dfs_fsb_to_agbno(cur->bc_mp, fsbno);

	assert_int_equal(dfs_fsb_to_agno(cur->bc_mp, fsbno), TEST_AGNO);
	if (agbno == DFS_BNO_ROOT_AGBNO) {
		assert_true(orig_root_live);
		orig_root_live = false;
		return 0;
	}
	assert_true(agbno >= POOL_START && agbno < POOL_START + pool_len);
	assert_int_equal(pool[agbno - POOL_START], 1);
	pool[agbno - POOL_START] = 0;
	pool_used--;
	return 0;
}

/* ---- helpers ---- */
struct ctx {
	char *dir;
	struct dfs_mount *mp;
	struct dfs_trans *tp;
	struct dfs_buf *agbp;
	int max_height;
};

static void cur_init(struct ctx *c, struct dfs_btree_cur *cur)
{
	dfs_allocbt_init_cursor(cur, c->tp, c->agbp, TEST_AGNO, DFS_BTNUM_BNO);
	cur->bc_ops = &test_ops;
}

static void trans_start(struct ctx *c)
{
	assert_int_equal(dfs_trans_alloc(c->mp, 0, &c->tp), 0);
	assert_int_equal(dfs_alloc_read_agf(c->mp, c->tp, TEST_AGNO, &c->agbp), 0);
}

static void trans_commit(struct ctx *c)
{
	assert_int_equal(dfs_trans_commit(c->tp, false), 0);
	c->tp = NULL;
	c->agbp = NULL;
}

static int lookup(struct dfs_btree_cur *cur, enum dfs_lookup dir, uint32_t key, int *stat)
{
	cur->bc_rec.alloc.startblock = key;
	cur->bc_rec.alloc.blockcount = 1;
	return dfs_btree_lookup(cur, dir, stat);
}

static void expect_rec(struct dfs_btree_cur *cur, size_t idx)
{
	union dfs_btree_rec rec;
	int stat;

	assert_int_equal(dfs_btree_get_rec(cur, &rec, &stat), 0);
	if (idx >= nmodel) {
		assert_int_equal(stat, 0);
		return;
	}
	assert_int_equal(stat, 1);
	assert_int_equal(rec.alloc.startblock, model[idx].startblock);
	assert_int_equal(rec.alloc.blockcount, model[idx].blockcount);
}

struct cmp_state {
	size_t i;
};

static int cmp_rec(struct dfs_btree_cur *cur, const union dfs_btree_rec *rec, void *priv)
{
	struct cmp_state *st = priv;

	assert_true(st->i < nmodel);
	assert_int_equal(rec->alloc.startblock, model[st->i].startblock);
	assert_int_equal(rec->alloc.blockcount, model[st->i].blockcount);
	st->i++;
	return 0;
}

static int count_blk(struct dfs_btree_cur *cur, int level, uint64_t fsbno, void *priv)
{
	uint32_t *n = priv;

	(*n)++;
	return 0;
}

/* Everything the tree says equals the model, and every invariant holds. */
static void check_all(struct ctx *c)
{
	struct dfs_btree_cur cur;
	struct cmp_state st = { 0 };
	uint32_t nblocks = 0;
	const struct dfs_agf *agf = c->agbp->b_addr;

	cur_init(c, &cur);
	assert_int_equal(dfs_btree_check(&cur), 0);
	assert_int_equal(dfs_btree_query_all(&cur, cmp_rec, &st), 0);
	assert_int_equal(st.i, nmodel);
	assert_int_equal(dfs_btree_visit_blocks(&cur, count_blk, &nblocks), 0);
	assert_int_equal(nblocks, pool_used + orig_root_live);
	if ((int)agf->bno_level > c->max_height)
		c->max_height = (int)agf->bno_level;
	dfs_btree_del_cursor(&cur, 0);
}

static void op_insert(struct ctx *c, uint32_t keyspace)
{
	struct dfs_btree_cur cur;
	struct dfs_alloc_rec r;
	int stat;

	r.startblock = DFS_AG_FIRST_FREE + (uint32_t)(rand() % (keyspace - DFS_AG_FIRST_FREE - 16));
	r.blockcount = 1 + (uint32_t)(rand() % 16);
	cur_init(c, &cur);
	assert_int_equal(lookup(&cur, DFS_LOOKUP_EQ, r.startblock, &stat), 0);
	if (stat) {
		size_t i = model_find(r.startblock);

		assert_true(i < nmodel && model[i].startblock == r.startblock);
		expect_rec(&cur, i);
	} else {
		size_t i = model_find(r.startblock);

		assert_true(i == nmodel || model[i].startblock != r.startblock);
		cur.bc_rec.alloc = r;
		assert_int_equal(dfs_btree_insert(&cur, &stat), 0);
		assert_int_equal(stat, 1);
		model_insert(r);
		/* the cursor is on the new record, and walks on correctly */
		expect_rec(&cur, i);
		if (rand() % 2) {
			assert_int_equal(dfs_btree_increment(&cur, 0, &stat), 0);
			assert_int_equal(stat, i + 1 < nmodel);
			if (stat)
				expect_rec(&cur, i + 1);
		} else {
			assert_int_equal(dfs_btree_decrement(&cur, 0, &stat), 0);
			assert_int_equal(stat, i > 0);
			if (stat)
				expect_rec(&cur, i - 1);
		}
	}
	dfs_btree_del_cursor(&cur, 0);
}

static void op_delete(struct ctx *c)
{
	struct dfs_btree_cur cur;
	union dfs_btree_rec rec;
	size_t i;
	int stat;

	if (!nmodel)
		return;
	i = (size_t)rand() % nmodel;
	cur_init(c, &cur);
	assert_int_equal(lookup(&cur, DFS_LOOKUP_EQ, model[i].startblock, &stat), 0);
	assert_int_equal(stat, 1);
	assert_int_equal(dfs_btree_delete(&cur, &stat), 0);
	assert_int_equal(stat, 1);
	model_delete(i);
	/* the cursor is where the record was: at its successor, or just past
	 * the end of the leaf before it */
	assert_int_equal(dfs_btree_get_rec(&cur, &rec, &stat), 0);
	if (!stat) {
		assert_int_equal(dfs_btree_increment(&cur, 0, &stat), 0);
		assert_int_equal(stat, i < nmodel);
	}
	if (stat)
		expect_rec(&cur, i);
	dfs_btree_del_cursor(&cur, 0);
}

static void op_update(struct ctx *c)
{
	struct dfs_btree_cur cur;
	union dfs_btree_rec rec;
	uint32_t lo, hi;
	size_t i;
	int stat;

	if (!nmodel)
		return;
	i = (size_t)rand() % nmodel;
	rec.alloc = model[i];
	rec.alloc.blockcount = 1 + (uint32_t)(rand() % 16);
	/* move the key too, as long as it stays between its neighbours */
	lo = i > 0 ? model[i - 1].startblock + 1 : DFS_AG_FIRST_FREE;
	hi = i + 1 < nmodel ? model[i + 1].startblock - 1 : model[i].startblock;
	if (rand() % 2 && hi > lo)
		rec.alloc.startblock = lo + (uint32_t)(rand() % (hi - lo + 1));
	cur_init(c, &cur);
	assert_int_equal(lookup(&cur, DFS_LOOKUP_EQ, model[i].startblock, &stat), 0);
	assert_int_equal(stat, 1);
	assert_int_equal(dfs_btree_update(&cur, &rec), 0);
	model[i] = rec.alloc;
	expect_rec(&cur, i);
	dfs_btree_del_cursor(&cur, 0);
}

static void op_lookup(struct ctx *c, uint32_t keyspace)
{
	struct dfs_btree_cur cur;
	uint32_t key = (uint32_t)(rand() % keyspace);
	enum dfs_lookup dir = (enum dfs_lookup)(rand() % 3);
	size_t i = model_find(key);	/* first >= key */
	size_t want;
	int stat, steps;
	bool found;

	switch (dir) {
	case DFS_LOOKUP_EQ:
		found = i < nmodel && model[i].startblock == key;
		want = i;
		break;
	case DFS_LOOKUP_GE:
		found = i < nmodel;
		want = i;
		break;
	default:
		if (i < nmodel && model[i].startblock == key) {
			found = true;
			want = i;
		} else {
			found = i > 0;
			want = i - 1;
		}
		break;
	}
	cur_init(c, &cur);
	assert_int_equal(lookup(&cur, dir, key, &stat), 0);
	assert_int_equal(stat, found);
	if (!found) {
		dfs_btree_del_cursor(&cur, 0);
		return;
	}
	expect_rec(&cur, want);
	/* walk a few steps one way, then back */
	steps = rand() % 300;
	if (rand() % 2) {
		int n;

		for (n = 0; n < steps; n++) {
			assert_int_equal(dfs_btree_increment(&cur, 0, &stat), 0);
			assert_int_equal(stat, want + 1 < nmodel);
			if (!stat)
				break;
			expect_rec(&cur, ++want);
		}
		if (n == steps)
			for (n = 0; n < steps / 2; n++) {
				assert_int_equal(dfs_btree_decrement(&cur, 0, &stat), 0);
				assert_int_equal(stat, 1);
				expect_rec(&cur, --want);
			}
	} else {
		for (int n = 0; n < steps; n++) {
			assert_int_equal(dfs_btree_decrement(&cur, 0, &stat), 0);
			assert_int_equal(stat, want > 0);
			if (!stat)
				break;
			expect_rec(&cur, --want);
		}
	}
	dfs_btree_del_cursor(&cur, 0);
}

static void remount(struct ctx *c)
{
	dfs_perag_destroy(c->mp);
	c->mp = fixture_remount(c->mp);
	assert_int_equal(dfs_perag_init(c->mp), 0);
}

static void test_btree_random(void **state)
{
	struct ctx c = { 0 };
	struct fixture_geom geom = {
		.size = 64ull << 20,
		.blocksize = 1024,
		.agcount = 2,
		.logblocks = 2048,
	};
	const int nops = 20000;
	uint32_t keyspace;
	int step;

	printf("test_btree: seed %u (TEST_SEED=%u replays)\n", seed, seed);
	c.dir = fixture_tmpdir();
	c.mp = fixture_mount_geom(c.dir, &geom);
	/* AG 0 holds the fixture's log: make it all "in use" */
	assert_int_equal(dfs_ag_init_headers(c.mp, 0, c.mp->m_agblocks, c.mp->m_agblocks), 0);
	assert_int_equal(dfs_ag_init_headers(c.mp, 1, c.mp->m_agblocks, 0), 0);
	assert_int_equal(dfs_perag_init(c.mp), 0);

	keyspace = POOL_START;
	pool_len = c.mp->m_agblocks - POOL_START;
	pool = calloc(pool_len, 1);
	model = calloc(c.mp->m_agblocks, sizeof(*model));
	assert_non_null(pool);
	assert_non_null(model);
	nmodel = 0;
	pool_used = 0;
	orig_root_live = true;
	test_ops = dfs_bnobt_ops;
	test_ops.alloc_block = test_alloc_block;
	test_ops.free_block = test_free_block;
	/* the keys go past the records' AG bounds check only up to keyspace */
	keyspace = c.mp->m_agblocks;

	/* mkfs left one record: the model starts with it */
	trans_start(&c);
	{
		const struct dfs_agf *agf = c.agbp->b_addr;
		struct dfs_alloc_rec r = { DFS_AG_FIRST_FREE + DFS_AGFL_RESERVE,
					   agf->length - DFS_AG_FIRST_FREE - DFS_AGFL_RESERVE };

		model_insert(r);
	}
	check_all(&c);

	for (step = 0; step < nops; step++) {
		int r = rand() % 100;
		/* grow to height 3, then shrink back */
		int ins = step < nops / 2 ? 70 : 20;
		int del = step < nops / 2 ? 10 : 60;

		if (r < ins)
			op_insert(&c, keyspace);
		else if (r < ins + del)
			op_delete(&c);
		else if (r < ins + del + 8)
			op_update(&c);
		else
			op_lookup(&c, keyspace);

		if (step % 8 == 7) {
			trans_commit(&c);
			if (step % 5000 == 4999)
				remount(&c);
			trans_start(&c);
		}
		if (step % 64 == 63)
			check_all(&c);
	}
	check_all(&c);
	assert_true(c.max_height >= 3);

	/* empty it completely: joins all the way up, the root collapses */
	while (nmodel) {
		op_delete(&c);
		if (nmodel % 8 == 0) {
			trans_commit(&c);
			trans_start(&c);
		}
		if (nmodel % 256 == 0)
			check_all(&c);
	}
	check_all(&c);
	{
		const struct dfs_agf *agf = c.agbp->b_addr;

		assert_int_equal(agf->bno_level, 1);
	}
	trans_commit(&c);
	remount(&c);
	trans_start(&c);
	check_all(&c);
	trans_commit(&c);

	printf("test_btree: max height %d, %u pool blocks in use at the end\n", c.max_height,
	       pool_used);
	dfs_perag_destroy(c.mp);
	assert_int_equal(fixture_unmount(c.mp), 0);
	fixture_rmdir(c.dir);
	free(c.dir);
	free(pool);
	free(model);
}

/* A corrupt tree is reported, not followed: out-of-order keys in a leaf. */
static void test_btree_check_detects(void **state)
{
	struct ctx c = { 0 };
	struct fixture_geom geom = { .size = 16ull << 20, .blocksize = 1024, .agcount = 2,
				     .logblocks = 1024 };
	struct dfs_btree_cur cur;
	struct dfs_btree_block *block;
	struct dfs_alloc_rec *recs;
	struct dfs_buf *bp;
	int stat;

	c.dir = fixture_tmpdir();
	c.mp = fixture_mount_geom(c.dir, &geom);
	assert_int_equal(dfs_ag_init_headers(c.mp, 0, c.mp->m_agblocks, c.mp->m_agblocks), 0);
	assert_int_equal(dfs_ag_init_headers(c.mp, 1, c.mp->m_agblocks, 0), 0);
	assert_int_equal(dfs_perag_init(c.mp), 0);
	pool_len = c.mp->m_agblocks - POOL_START;
	pool = calloc(pool_len, 1);
	pool_used = 0;
	orig_root_live = true;
	test_ops = dfs_bnobt_ops;
	test_ops.alloc_block = test_alloc_block;
	test_ops.free_block = test_free_block;

	trans_start(&c);
	cur_init(&c, &cur);
	for (uint32_t k = 20; k < 40; k += 2) {
		assert_int_equal(lookup(&cur, DFS_LOOKUP_EQ, k, &stat), 0);
		assert_int_equal(stat, 0);
		cur.bc_rec.alloc.startblock = k;
		cur.bc_rec.alloc.blockcount = 1;
		assert_int_equal(dfs_btree_insert(&cur, &stat), 0);
	}
	assert_int_equal(dfs_btree_check(&cur), 0);
	bp = cur.bc_bufs[0];
	block = bp->b_addr;
	recs = (struct dfs_alloc_rec *)(block + 1);
	recs[1].startblock = 100;	/* after 20, before 22: out of order */
	dfs_msg_set_quiet(1);
	assert_int_equal(dfs_btree_check(&cur), -EFSCORRUPTED);
	recs[1].startblock = 21;
	assert_int_equal(dfs_btree_check(&cur), 0);
	recs[1].blockcount = 0;		/* invalid record */
	assert_int_equal(dfs_btree_check(&cur), -EFSCORRUPTED);
	recs[1].blockcount = 1;
	block->rightsib = 12345;	/* a root with a sibling */
	assert_int_equal(dfs_btree_check(&cur), -EFSCORRUPTED);
	block->rightsib = DFS_NULLFSBLOCK;
	dfs_msg_set_quiet(0);
	assert_int_equal(dfs_btree_check(&cur), 0);
	dfs_btree_del_cursor(&cur, 0);
	trans_commit(&c);

	dfs_perag_destroy(c.mp);
	assert_int_equal(fixture_unmount(c.mp), 0);
	fixture_rmdir(c.dir);
	free(c.dir);
	free(pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_btree_check_detects),
		cmocka_unit_test(test_btree_random),
	};
	const char *env = getenv("TEST_SEED");

	seed = env ? (unsigned int)strtoul(env, NULL, 0) : (unsigned int)time(NULL);
	srand(seed);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
