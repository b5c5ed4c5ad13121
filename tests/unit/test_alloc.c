/* SPDX-License-Identifier: MIT */
/*
 * The allocator against a model of which blocks the test owns: random
 * allocations of all four types (lengths, alignment, prod/mod) and frees of
 * whole or partial extents, each in its own transaction. After every step:
 * both free-space trees pass dfs_btree_check, hold the same extents, and
 * describe exactly the blocks that are neither the test's, nor headers, nor
 * AGFL or btree blocks; AGF counters (freeblks, longest, flcount,
 * btreeblks), the perag copies and m_fdblocks agree; no block is handed out
 * twice; a freed extent is never handed out again before a log write made
 * its free durable. Then the AGs are driven full (ENOSPC), emptied again,
 * and the free space must have merged back.
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

static unsigned int seed;

struct ext {
	uint64_t fsbno;
	uint32_t len;
};

/* a free not yet known durable: no log write since it committed */
struct busy {
	uint64_t fsbno;
	uint32_t len;
	uint64_t logio;		/* log IO count when it committed */
};

struct ctx {
	char *dir;
	struct dfs_mount *mp;
	uint8_t *owned;		/* per fsbno: 1 = allocated to the test */
	struct ext *exts;
	size_t nexts, cap;
	struct busy *busy;
	size_t nbusy, busycap;
	uint32_t max_level;
	uint64_t nallocs, nfails, nforced_reuse;
	int64_t unreserved;	/* blocks taken as delalloc conversions, not from fdblocks */
};

static uint64_t log_io(struct dfs_mount *mp)
{
	struct dfs_log_stats st;

	dfs_log_get_stats(mp, &st);
	return st.records + st.forces + st.checkpoints;
}

/* ---- checking the trees against the model ---- */

struct walk {
	struct dfs_alloc_rec *recs;
	size_t n, cap;
};

static int collect_rec(struct dfs_btree_cur *cur, const union dfs_btree_rec *rec, void *priv)
{
	struct walk *w = priv;

	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 256;
		w->recs = realloc(w->recs, w->cap * sizeof(*w->recs));
		assert_non_null(w->recs);
	}
	w->recs[w->n++] = rec->alloc;
	return 0;
}

struct blkmark {
	uint8_t *meta;
	uint32_t n;
};

static int mark_blk(struct dfs_btree_cur *cur, int level, uint64_t fsbno, void *priv)
{
	struct blkmark *m = priv;
	uint32_t agbno = dfs_fsb_to_agbno(cur->bc_mp, fsbno);

	assert_int_equal(m->meta[agbno], 0);
	m->meta[agbno] = 1;
	m->n++;
	return 0;
}

static int cmp_cnt(const void *a, const void *b)
{
	const struct dfs_alloc_rec *x = a, *y = b;

	if (x->blockcount != y->blockcount)
		return x->blockcount < y->blockcount ? -1 : 1;
	return x->startblock < y->startblock ? -1 : x->startblock > y->startblock;
}

static void check_ag(struct ctx *c, struct dfs_trans *tp, uint32_t agno)
{
	struct dfs_mount *mp = c->mp;
	struct dfs_buf *agbp, *agflbp;
	const struct dfs_agf *agf;
	const struct dfs_agfl *agfl;
	struct dfs_btree_cur cur;
	struct walk bno = { 0 }, cnt = { 0 };
	struct blkmark m;
	uint64_t freeblks = 0;
	uint32_t longest = 0, i, slot;

	assert_int_equal(dfs_alloc_read_agf(mp, tp, agno, &agbp), 0);
	agf = agbp->b_addr;
	m.meta = calloc(agf->length, 1);
	m.n = 0;
	assert_non_null(m.meta);

	dfs_allocbt_init_cursor(&cur, tp, agbp, agno, DFS_BTNUM_BNO);
	assert_int_equal(dfs_btree_check(&cur), 0);
	assert_int_equal(dfs_btree_query_all(&cur, collect_rec, &bno), 0);
	assert_int_equal(dfs_btree_visit_blocks(&cur, mark_blk, &m), 0);
	dfs_btree_del_cursor(&cur, 0);
	dfs_allocbt_init_cursor(&cur, tp, agbp, agno, DFS_BTNUM_CNT);
	assert_int_equal(dfs_btree_check(&cur), 0);
	assert_int_equal(dfs_btree_query_all(&cur, collect_rec, &cnt), 0);
	assert_int_equal(dfs_btree_visit_blocks(&cur, mark_blk, &m), 0);
	dfs_btree_del_cursor(&cur, 0);
	if (agf->bno_level > c->max_level)
		c->max_level = agf->bno_level;
	if (agf->cnt_level > c->max_level)
		c->max_level = agf->cnt_level;
	assert_int_equal(agf->btreeblks, m.n - 2);

	/* AGFL blocks */
	assert_int_equal(dfs_trans_read_buf(tp, dfs_agb_to_fsb(mp, agno, DFS_AGFL_AGBNO),
					    &dfs_agfl_buf_ops, &agflbp), 0);
	agfl = agflbp->b_addr;
	for (i = 0, slot = agf->flfirst; i < agf->flcount; i++) {
		uint32_t b = agfl->bno[slot];

		assert_true(b < agf->length);
		assert_int_equal(m.meta[b], 0);
		m.meta[b] = 2;
		if (++slot == DFS_AGFL_SIZE(mp->m_blocksize))
			slot = 0;
	}
	for (i = 0; i < DFS_AG_FIRST_FREE; i++)
		m.meta[i] = 3;

	/* the same extents in both trees; free space merged */
	assert_int_equal(bno.n, cnt.n);
	for (i = 0; i < bno.n; i++) {
		const struct dfs_alloc_rec *r = &bno.recs[i];

		if (i > 0)
			assert_true(bno.recs[i - 1].startblock + bno.recs[i - 1].blockcount <
				    r->startblock);
		freeblks += r->blockcount;
		if (r->blockcount > longest)
			longest = r->blockcount;
	}
	if (bno.n) {
		qsort(bno.recs, bno.n, sizeof(*bno.recs), cmp_cnt);
		assert_memory_equal(bno.recs, cnt.recs, bno.n * sizeof(*bno.recs));
	}

	/* every block is exactly one of: free, the test's, metadata */
	{
		uint8_t *isfree = calloc(agf->length, 1);
		uint32_t b;

		assert_non_null(isfree);
		for (i = 0; i < cnt.n; i++)
			for (b = cnt.recs[i].startblock;
			     b < cnt.recs[i].startblock + cnt.recs[i].blockcount; b++)
				isfree[b] = 1;
		for (b = 0; b < agf->length; b++) {
			uint64_t fsbno = dfs_agb_to_fsb(mp, agno, b);
			int owners = isfree[b] + (c->owned[fsbno] != 0) + (m.meta[b] != 0);

			/* AG 0 is the fixture's log, all marked in use */
			if (owners != 1 && agno != 0)
				fail_msg("AG %u block %u: free %d, test's %d, metadata %d (seed %u)",
					 agno, b, isfree[b], c->owned[fsbno], m.meta[b], seed);
		}
		free(isfree);
	}

	assert_int_equal(agf->freeblks, freeblks);
	assert_int_equal(agf->longest, longest);
	assert_int_equal(mp->m_perag[agno].pagf_freeblks, agf->freeblks);
	assert_int_equal(mp->m_perag[agno].pagf_longest, agf->longest);
	assert_int_equal(mp->m_perag[agno].pagf_flcount, agf->flcount);
	free(bno.recs);
	free(cnt.recs);
	free(m.meta);
}

static void check_all(struct ctx *c)
{
	struct dfs_mount *mp = c->mp;
	struct dfs_trans *tp;
	uint64_t sum = 0;
	uint32_t agno;

	assert_int_equal(dfs_trans_alloc(mp, 0, &tp), 0);
	for (agno = 0; agno < mp->m_agcount; agno++) {
		struct dfs_buf *agbp;
		const struct dfs_agf *agf;

		check_ag(c, tp, agno);
		assert_int_equal(dfs_alloc_read_agf(mp, tp, agno, &agbp), 0);
		agf = agbp->b_addr;
		sum += (uint64_t)agf->freeblks + agf->flcount + agf->btreeblks;
	}
	dfs_trans_cancel(tp);
	assert_int_equal((int64_t)mp->m_fdblocks,
			 (int64_t)sum - (int64_t)mp->m_alloc_set_aside + c->unreserved);
}

/* ---- operations ---- */

static void own(struct ctx *c, uint64_t fsbno, uint32_t len, uint8_t v)
{
	for (uint32_t i = 0; i < len; i++) {
		if (v)
			assert_int_equal(c->owned[fsbno + i], 0);	/* never twice */
		else
			assert_int_equal(c->owned[fsbno + i], 1);
		c->owned[fsbno + i] = v;
	}
}

static void add_ext(struct ctx *c, uint64_t fsbno, uint32_t len)
{
	if (c->nexts == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 256;
		c->exts = realloc(c->exts, c->cap * sizeof(*c->exts));
		assert_non_null(c->exts);
	}
	c->exts[c->nexts++] = (struct ext){ fsbno, len };
}

static void busy_prune(struct ctx *c)
{
	uint64_t now = log_io(c->mp);
	size_t i, j;

	for (i = j = 0; i < c->nbusy; i++)
		if (c->busy[i].logio == now)
			c->busy[j++] = c->busy[i];
	c->nbusy = j;
}

static bool overlaps_busy(struct ctx *c, uint64_t fsbno, uint32_t len)
{
	for (size_t i = 0; i < c->nbusy; i++)
		if (fsbno < c->busy[i].fsbno + c->busy[i].len && c->busy[i].fsbno < fsbno + len)
			return true;
	return false;
}

static uint32_t rand_len(void)
{
	switch (rand() % 4) {
	case 0:
		return 1;
	case 1:
		return 1 + (uint32_t)(rand() % 8);
	case 2:
		return 1 + (uint32_t)(rand() % 64);
	default:
		return 1 + (uint32_t)(rand() % 400);
	}
}

/* Blocks free from fsbno to the end of the free extent holding it. */
static uint32_t free_run_at(struct ctx *c, uint64_t fsbno)
{
	struct dfs_mount *mp = c->mp;
	uint32_t agno = dfs_fsb_to_agno(mp, fsbno), agbno = dfs_fsb_to_agbno(mp, fsbno);
	struct dfs_btree_cur cur;
	union dfs_btree_rec rec;
	struct dfs_trans *tp;
	struct dfs_buf *agbp;
	uint32_t run = 0;
	int stat;

	assert_int_equal(dfs_trans_alloc(mp, 0, &tp), 0);
	assert_int_equal(dfs_alloc_read_agf(mp, tp, agno, &agbp), 0);
	dfs_allocbt_init_cursor(&cur, tp, agbp, agno, DFS_BTNUM_BNO);
	cur.bc_rec.alloc.startblock = agbno;
	cur.bc_rec.alloc.blockcount = 0;
	assert_int_equal(dfs_btree_lookup(&cur, DFS_LOOKUP_LE, &stat), 0);
	if (stat) {
		assert_int_equal(dfs_btree_get_rec(&cur, &rec, &stat), 0);
		if (rec.alloc.startblock + rec.alloc.blockcount > agbno)
			run = rec.alloc.startblock + rec.alloc.blockcount - agbno;
	}
	dfs_btree_del_cursor(&cur, 0);
	dfs_trans_cancel(tp);
	return run;
}

/*
 * One allocation in its own transaction. Returns 1 if it allocated, 0 on
 * ENOSPC, after checking that ENOSPC was the truth (up to the few blocks an
 * AGFL refill may take or keep).
 */
static int op_alloc_at(struct ctx *c, enum dfs_alloctype type, uint64_t target, uint32_t minlen,
		       uint32_t maxlen, uint32_t alignment)
{
	struct dfs_mount *mp = c->mp;
	struct dfs_alloc_arg args;
	struct dfs_trans *tp;
	uint32_t agno = dfs_fsb_to_agno(mp, target);
	uint64_t before;
	int error;

	error = dfs_trans_alloc(mp, maxlen, &tp);
	if (error == -ENOSPC) {
		assert_true(mp->m_fdblocks < maxlen);
		return 0;
	}
	assert_int_equal(error, 0);
	memset(&args, 0, sizeof(args));
	args.tp = tp;
	args.mp = mp;
	args.type = type;
	args.minlen = minlen;
	args.maxlen = maxlen;
	args.alignment = alignment;
	args.prod = 1;
	if (type != DFS_ALLOCTYPE_THIS_BNO && rand() % 8 == 0 && minlen < maxlen) {
		args.prod = 4;
		args.mod = (uint32_t)(rand() % 4);
	}
	args.fsbno = target;
	args.owner = 42;

	busy_prune(c);
	before = log_io(mp);
	assert_int_equal(dfs_alloc_vextent(&args), 0);
	if (args.fsbno == DFS_NULLFSBLOCK) {
		/* the free list may have been fixed: that is a real change */
		assert_int_equal(dfs_trans_commit(tp, false), 0);
		c->nfails++;
		if (type == DFS_ALLOCTYPE_THIS_BNO) {
			assert_true(free_run_at(c, target) < minlen + DFS_AGFL_RESERVE);
		} else {
			uint32_t a, first = agno, last = agno;

			if (type == DFS_ALLOCTYPE_START_BNO) {
				first = 0;
				last = mp->m_agcount - 1;
			}
			for (a = first; a <= last; a++)
				assert_true(mp->m_perag[a].pagf_longest <
					    minlen + alignment - 1 + DFS_AGFL_RESERVE);
		}
		return 0;
	}
	/* what was asked for */
	assert_true(args.len >= minlen && args.len <= maxlen);
	if (args.prod > 1 && args.len != maxlen && args.len % args.prod != args.mod) {
		/* best effort, as XFS: only if trimming would go below minlen */
		uint32_t k = args.len % args.prod;
		int64_t fixed = k > args.mod ? (int64_t)args.len - (k - args.mod)
					     : (int64_t)args.len - args.prod + (args.mod - k);

		assert_true(fixed < (int64_t)minlen);
	}
	assert_int_equal(dfs_fsb_to_agbno(mp, args.fsbno) % alignment, 0);
	assert_int_equal(dfs_fsb_to_agno(mp, args.fsbno),
			 dfs_fsb_to_agno(mp, args.fsbno + args.len - 1));
	if (type != DFS_ALLOCTYPE_START_BNO)
		assert_int_equal(dfs_fsb_to_agno(mp, args.fsbno), agno);
	if (type == DFS_ALLOCTYPE_THIS_BNO)
		assert_int_equal(args.fsbno, target);
	/* a busy extent only after the log was written */
	if (overlaps_busy(c, args.fsbno, args.len)) {
		assert_true(log_io(mp) != before);
		c->nforced_reuse++;
	}
	own(c, args.fsbno, args.len, 1);
	add_ext(c, args.fsbno, args.len);
	assert_int_equal(dfs_trans_commit(tp, false), 0);
	c->nallocs++;
	return 1;
}

static int op_alloc(struct ctx *c, enum dfs_alloctype type, uint32_t minlen, uint32_t maxlen)
{
	struct dfs_mount *mp = c->mp;
	uint32_t agno = 1 + (uint32_t)(rand() % (mp->m_agcount - 1));
	uint32_t alignment = (rand() % 4) ? 1 : (rand() % 2 ? 4 : 8);
	uint64_t target = dfs_agb_to_fsb(mp, agno, (uint32_t)(rand() % mp->m_agblocks));

	if (type == DFS_ALLOCTYPE_THIS_BNO) {
		uint32_t agbno = (uint32_t)(rand() % mp->m_agblocks), n;

		/* mostly at a block the test does not own (maybe free) */
		for (n = 0; rand() % 4 && n < mp->m_agblocks; n++) {
			uint32_t b = (agbno + n) % mp->m_agblocks;

			if (b >= DFS_AG_FIRST_FREE && !c->owned[dfs_agb_to_fsb(mp, agno, b)]) {
				agbno = b;
				break;
			}
		}
		target = dfs_agb_to_fsb(mp, agno, agbno);
		alignment = 1;
	}
	return op_alloc_at(c, type, target, minlen, maxlen, alignment);
}

static void op_alloc_random(struct ctx *c)
{
	enum dfs_alloctype type = (enum dfs_alloctype)(rand() % 4);
	uint32_t maxlen = rand_len();
	uint32_t minlen = rand() % 3 ? maxlen : 1 + (uint32_t)(rand() % maxlen);

	op_alloc(c, type, minlen, maxlen);
}

static void op_free(struct ctx *c)
{
	struct dfs_mount *mp = c->mp;
	struct dfs_trans *tp;
	struct ext *e;
	uint64_t fsbno;
	uint32_t len, off;
	size_t i;

	if (!c->nexts)
		return;
	i = (size_t)rand() % c->nexts;
	e = &c->exts[i];
	/* the whole extent, or a piece of it (as a punch would) */
	if (e->len > 1 && rand() % 3 == 0) {
		off = (uint32_t)(rand() % e->len);
		len = 1 + (uint32_t)(rand() % (e->len - off));
	} else {
		off = 0;
		len = e->len;
	}
	fsbno = e->fsbno + off;
	assert_int_equal(dfs_trans_alloc(mp, 0, &tp), 0);
	assert_int_equal(dfs_free_extent(tp, fsbno, len), 0);
	assert_int_equal(dfs_trans_commit(tp, false), 0);
	own(c, fsbno, len, 0);

	/* what is left of the extent: up to two pieces */
	{
		struct ext left = { e->fsbno, off };
		struct ext right = { fsbno + len, e->len - off - len };

		c->exts[i] = c->exts[--c->nexts];
		if (left.len)
			add_ext(c, left.fsbno, left.len);
		if (right.len)
			add_ext(c, right.fsbno, right.len);
	}
	if (c->nbusy == c->busycap) {
		c->busycap = c->busycap ? c->busycap * 2 : 64;
		c->busy = realloc(c->busy, c->busycap * sizeof(*c->busy));
		assert_non_null(c->busy);
	}
	c->busy[c->nbusy++] = (struct busy){ fsbno, len, log_io(mp) };
}

static struct ctx *setup_ctx(uint64_t size, uint32_t agcount)
{
	struct fixture_geom geom = {
		.size = size,
		.blocksize = 1024,
		.agcount = agcount,
		.logblocks = 1024,
	};
	struct ctx *c = calloc(1, sizeof(*c));
	uint32_t agno;

	assert_non_null(c);
	c->dir = fixture_tmpdir();
	c->mp = fixture_mount_geom(c->dir, &geom);
	/* AG 0 holds the fixture's log: all of it in use */
	assert_int_equal(dfs_ag_init_headers(c->mp, 0, c->mp->m_agblocks, c->mp->m_agblocks), 0);
	for (agno = 1; agno < agcount; agno++)
		assert_int_equal(dfs_ag_init_headers(c->mp, agno, c->mp->m_agblocks, 0), 0);
	assert_int_equal(dfs_perag_init(c->mp), 0);
	c->owned = calloc(c->mp->m_dblocks, 1);
	assert_non_null(c->owned);
	return c;
}

static void teardown_ctx(struct ctx *c)
{
	dfs_perag_destroy(c->mp);
	assert_int_equal(fixture_unmount(c->mp), 0);
	fixture_rmdir(c->dir);
	free(c->dir);
	free(c->owned);
	free(c->exts);
	free(c->busy);
	free(c);
}

static void remount(struct ctx *c)
{
	dfs_perag_destroy(c->mp);
	c->mp = fixture_remount(c->mp);
	assert_int_equal(dfs_perag_init(c->mp), 0);
	c->nbusy = 0;	/* the unmount made everything durable */
}

static void test_alloc_random(void **state)
{
	struct ctx *c = setup_ctx(24ull << 20, 3);
	int step;

	printf("test_alloc: seed %u (TEST_SEED=%u replays)\n", seed, seed);
	check_all(c);
	/* churn: mostly allocations, then mostly frees, twice */
	for (step = 0; step < 6000; step++) {
		int phase = (step / 1500) % 2;

		if (rand() % 100 < (phase == 0 ? 65 : 35))
			op_alloc_random(c);
		else
			op_free(c);
		check_all(c);
		if (step % 2000 == 1999) {
			remount(c);
			check_all(c);
		}
	}
	assert_true(c->max_level >= 2);

	/* fill every AG until nothing fits */
	for (int fails = 0; fails < 200; ) {
		if (!op_alloc(c, DFS_ALLOCTYPE_START_BNO, 1, rand_len()))
			fails++;
		if (rand() % 16 == 0)
			check_all(c);
	}
	check_all(c);
	/* full: a single block cannot be had, and little space is left */
	assert_int_equal(op_alloc(c, DFS_ALLOCTYPE_START_BNO, 1, 1), 0);
	assert_true(c->mp->m_fdblocks < 64);

	/* free everything: the free space merges back */
	while (c->nexts) {
		op_free(c);
		if (rand() % 16 == 0)
			check_all(c);
	}
	check_all(c);
	remount(c);
	check_all(c);
	for (uint32_t agno = 1; agno < c->mp->m_agcount; agno++) {
		const struct dfs_perag *pag = &c->mp->m_perag[agno];
		const struct dfs_agf *agf;
		struct dfs_buf *bp;

		/* all but the headers, the AGFL and the tree blocks (check_all
		 * made sure the free ones are exactly the rest, merged) */
		assert_int_equal(dfs_alloc_read_agf(c->mp, NULL, agno, &bp), 0);
		agf = bp->b_addr;
		assert_int_equal(agf->bno_level, 1);
		assert_int_equal(agf->cnt_level, 1);
		assert_true(pag->pagf_freeblks + pag->pagf_flcount + agf->btreeblks + 2 >=
			    pag->pag_length - DFS_AG_FIRST_FREE);
		dfs_buf_relse(bp);
	}
	printf("test_alloc: %" PRIu64 " allocations, %" PRIu64 " failed, %" PRIu64
	       " reused busy extents after a log write, tree height up to %u\n",
	       c->nallocs, c->nfails, c->nforced_reuse, c->max_level);
	teardown_ctx(c);
}

/*
 * A busy extent is the only free space: the allocator must force the log
 * and then hand it out; before the force, nothing else may take it.
 */
static void test_alloc_busy_force(void **state)
{
	struct ctx *c = setup_ctx(16ull << 20, 2);
	struct dfs_mount *mp = c->mp;
	struct dfs_log_stats st0, st1;
	struct dfs_alloc_arg args;
	struct dfs_trans *tp;
	uint64_t fsbno;

	/* take everything there is in AG 1: what the reservations allow, then
	 * the set-aside too, as delalloc conversions (no reservation) */
	while (op_alloc_at(c, DFS_ALLOCTYPE_THIS_AG, dfs_agb_to_fsb(mp, 1, 0), 1,
			   mp->m_fdblocks > 512 ? 512 : mp->m_fdblocks ? (uint32_t)mp->m_fdblocks : 1, 1))
		;
	for (;;) {
		assert_int_equal(dfs_trans_alloc(mp, 0, &tp), 0);
		memset(&args, 0, sizeof(args));
		args.tp = tp;
		args.type = DFS_ALLOCTYPE_THIS_AG;
		args.fsbno = dfs_agb_to_fsb(mp, 1, 0);
		args.minlen = args.maxlen = args.prod = 1;
		args.wasdel = 1;
		assert_int_equal(dfs_alloc_vextent(&args), 0);
		if (args.fsbno != DFS_NULLFSBLOCK) {
			c->unreserved += args.len;
			own(c, args.fsbno, args.len, 1);
			add_ext(c, args.fsbno, args.len);
		}
		assert_int_equal(dfs_trans_commit(tp, false), 0);
		if (args.fsbno == DFS_NULLFSBLOCK)
			break;
	}
	check_all(c);
	assert_int_equal(mp->m_perag[1].pagf_freeblks, 0);

	/* give back 16 blocks in the middle; the free is committed, not durable */
	fsbno = c->exts[c->nexts / 2].fsbno;
	assert_true(c->exts[c->nexts / 2].len >= 16);
	assert_int_equal(dfs_trans_alloc(mp, 0, &tp), 0);
	assert_int_equal(dfs_free_extent(tp, fsbno, 16), 0);
	assert_int_equal(dfs_trans_commit(tp, false), 0);
	assert_int_equal(dfs_extent_busy_search(mp, 1, dfs_fsb_to_agbno(mp, fsbno), 16), 1);

	dfs_log_get_stats(mp, &st0);
	assert_int_equal(dfs_trans_alloc(mp, 8, &tp), 0);
	memset(&args, 0, sizeof(args));
	args.tp = tp;
	args.mp = mp;
	args.type = DFS_ALLOCTYPE_NEAR_BNO;
	args.fsbno = fsbno;
	args.minlen = 1;
	args.maxlen = 8;
	args.prod = 1;
	assert_int_equal(dfs_alloc_vextent(&args), 0);
	dfs_log_get_stats(mp, &st1);
	assert_int_not_equal(args.fsbno, DFS_NULLFSBLOCK);
	assert_true(args.fsbno >= fsbno && args.fsbno + args.len <= fsbno + 16);
	assert_true(args.busy_forced);
	assert_true(st1.forces > st0.forces);
	assert_int_equal(dfs_extent_busy_search(mp, 1, dfs_fsb_to_agbno(mp, fsbno), 16), 0);
	assert_int_equal(dfs_trans_commit(tp, false), 0);

	/* freed and reallocated in one transaction: trimmed, never reused */
	assert_int_equal(dfs_trans_alloc(mp, 4, &tp), 0);
	assert_int_equal(dfs_free_extent(tp, args.fsbno, args.len), 0);
	memset(&args, 0, sizeof(args));
	args.tp = tp;
	args.mp = mp;
	args.type = DFS_ALLOCTYPE_NEAR_BNO;
	args.fsbno = fsbno;
	args.minlen = 1;
	args.maxlen = 4;
	args.prod = 1;
	{
		uint64_t freed = fsbno;	/* where the first allocation went is in [fsbno, +16) */

		assert_int_equal(dfs_alloc_vextent(&args), 0);
		if (args.fsbno != DFS_NULLFSBLOCK)
			assert_int_equal(dfs_extent_busy_search(mp, 1,
								dfs_fsb_to_agbno(mp, args.fsbno),
								args.len), 0);
		(void)freed;
	}
	assert_int_equal(dfs_trans_commit(tp, false), 0);
	teardown_ctx(c);
}

/* Free one extent the test owns, in its own transaction. */
static void free_range(struct ctx *c, uint64_t fsbno, uint32_t len)
{
	struct dfs_trans *tp;

	assert_int_equal(dfs_trans_alloc(c->mp, 0, &tp), 0);
	assert_int_equal(dfs_free_extent(tp, fsbno, len), 0);
	assert_int_equal(dfs_trans_commit(tp, false), 0);
	own(c, fsbno, len, 0);
}

/*
 * Free space cut into thousands of one-block pieces: both trees reach
 * height 3, so allocations split (and frees join) three levels deep, with
 * their blocks coming from and going to the AGFL.
 */
static void test_alloc_deep_trees(void **state)
{
	struct ctx *c = setup_ctx(64ull << 20, 2);
	struct dfs_mount *mp = c->mp;
	uint64_t b, start = dfs_agb_to_fsb(mp, 1, 0), end = start + mp->m_agblocks;
	int step;

	while (op_alloc_at(c, DFS_ALLOCTYPE_THIS_AG, start, 1, 512, 1))
		;
	/* every other block back: a checkerboard of free space */
	for (b = start; b < end; b += 2)
		if (c->owned[b])
			free_range(c, b, 1);
	c->nexts = 0;
	for (b = start; b < end; b++)
		if (c->owned[b])
			add_ext(c, b, 1);
	check_all(c);
	assert_true(c->max_level >= 3);

	for (step = 0; step < 3000; step++) {
		if (rand() % 2) {
			uint32_t len = 1 + (uint32_t)(rand() % 3);

			op_alloc(c, (enum dfs_alloctype)(rand() % 4), 1, len);
		} else {
			op_free(c);
		}
		if (step % 250 == 249)
			check_all(c);
	}
	while (c->nexts) {
		struct ext e = c->exts[--c->nexts];

		free_range(c, e.fsbno, e.len);
	}
	check_all(c);
	{
		/* merged back (check_all): only metadata blocks split it up,
		 * and the trees shrank back to their roots */
		const struct dfs_perag *pag = &mp->m_perag[1];
		const struct dfs_agf *agf;
		struct dfs_buf *bp;

		assert_int_equal(dfs_alloc_read_agf(mp, NULL, 1, &bp), 0);
		agf = bp->b_addr;
		assert_int_equal(agf->bno_level, 1);
		assert_int_equal(agf->cnt_level, 1);
		assert_int_equal(agf->btreeblks, 0);
		assert_true(pag->pagf_freeblks + pag->pagf_flcount + 2 >=
			    pag->pag_length - DFS_AG_FIRST_FREE);
		dfs_buf_relse(bp);
	}
	printf("test_alloc_deep_trees: tree height up to %u\n", c->max_level);
	teardown_ctx(c);
}

/* Bad AG headers are refused with EFSCORRUPTED, not trusted. */
static void test_alloc_agf_verifier(void **state)
{
	struct ctx *c = setup_ctx(16ull << 20, 2);
	struct dfs_mount *mp = c->mp;
	struct dfs_trans *tp;
	struct dfs_buf *bp;
	struct dfs_agf *agf;

	assert_int_equal(dfs_trans_alloc(mp, 0, &tp), 0);
	assert_int_equal(dfs_alloc_read_agf(mp, tp, 1, &bp), 0);
	agf = bp->b_addr;
	dfs_msg_set_quiet(1);
	agf->flcount++;		/* ring no longer adds up */
	assert_int_equal(dfs_buf_verify_write(bp), -EFSCORRUPTED);
	agf->flcount--;
	agf->longest = agf->freeblks + 1;
	assert_int_equal(dfs_buf_verify_write(bp), -EFSCORRUPTED);
	agf->longest = agf->freeblks;
	agf->seqno = 0;
	assert_int_equal(dfs_buf_verify_write(bp), -EFSCORRUPTED);
	agf->seqno = 1;
	dfs_msg_set_quiet(0);
	assert_int_equal(dfs_buf_verify_write(bp), 0);
	dfs_trans_cancel(tp);
	teardown_ctx(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_agf_verifier),
		cmocka_unit_test(test_alloc_busy_force),
		cmocka_unit_test(test_alloc_random),
		cmocka_unit_test(test_alloc_deep_trees),
	};
	const char *env = getenv("TEST_SEED");

	seed = env ? (unsigned int)strtoul(env, NULL, 0) : (unsigned int)time(NULL);
	srand(seed);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
