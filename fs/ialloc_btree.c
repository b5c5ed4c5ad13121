/* SPDX-License-Identifier: MIT */
/*
 * The inode B+tree (XFS's xfs_ialloc_btree.c): one record per inode chunk,
 * keyed by the chunk's first AG-relative inode number. Its root lives in
 * the AGI; its blocks come from the ordinary allocator, near the AGI, rather
 * than from the AGFL (which only feeds the free-space trees).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "alloc.h"
#include "btree.h"
#include "buf.h"
#include "ialloc.h"
#include "mount.h"
#include "msg.h"
#include "trans.h"

static struct dfs_agi *cur_agi(const struct dfs_btree_cur *cur)
{
	return cur->bc_private.a.agbp->b_addr;
}

static void dfs_inobt_init_key_from_rec(union dfs_btree_key *key, const union dfs_btree_rec *rec)
{
	key->inobt.startino = rec->inobt.startino;
	key->inobt.pad = 0;
}

static void dfs_inobt_init_key_from_irec(const struct dfs_btree_cur *cur, union dfs_btree_key *key)
{
	key->inobt.startino = cur->bc_rec.inobt.startino;
	key->inobt.pad = 0;
}

static int64_t dfs_inobt_cmp_keys(const union dfs_btree_key *k1, const union dfs_btree_key *k2)
{
	return (int64_t)k1->inobt.startino - (int64_t)k2->inobt.startino;
}

static void dfs_inobt_get_root(struct dfs_btree_cur *cur, uint64_t *root, int *nlevels)
{
	const struct dfs_agi *agi = cur_agi(cur);

	*root = agi->root;
	*nlevels = (int)agi->level;
}

static void dfs_inobt_set_root(struct dfs_btree_cur *cur, uint64_t root, int inc)
{
	struct dfs_agi *agi = cur_agi(cur);

	agi->root = root;
	agi->level = (uint32_t)((int)agi->level + inc);
	dfs_trans_log_buf(cur->bc_tp, cur->bc_private.a.agbp);
}

/* New inobt blocks go near the AGI, as XFS's xfs_inobt_alloc_block does:
 * the tree stays compact at the front of the AG. */
static int dfs_inobt_alloc_block(struct dfs_btree_cur *cur, uint64_t hint, uint64_t *fsbno)
{
	struct dfs_mount *mp = cur->bc_mp;
	uint32_t agno = cur->bc_private.a.agno;
	struct dfs_alloc_arg args = {
		.tp = cur->bc_tp,
		.mp = mp,
		.type = DFS_ALLOCTYPE_NEAR_BNO,
		.agno = agno,
		.minlen = 1,
		.maxlen = 1,
		.prod = 1,
		.owner = agno,
	};
	int error;

	if (hint == DFS_NULLFSBLOCK || hint >= mp->m_dblocks || dfs_fsb_to_agno(mp, hint) != agno)
		hint = dfs_agb_to_fsb(mp, agno, DFS_AGI_AGBNO);
	args.fsbno = hint;
	error = dfs_alloc_vextent(&args);
	if (error)
		return error;
	if (args.fsbno == DFS_NULLFSBLOCK)
		return -ENOSPC;
	*fsbno = args.fsbno;
	return 0;
}

static int dfs_inobt_free_block(struct dfs_btree_cur *cur, uint64_t fsbno)
{
	return dfs_free_extent(cur->bc_tp, fsbno, 1);
}

static int dfs_inobt_rec_valid(const struct dfs_btree_cur *cur, const union dfs_btree_rec *rec)
{
	const struct dfs_mount *mp = cur->bc_mp;
	const struct dfs_inobt_rec *ir = &rec->inobt;
	uint32_t chunk_blocks = dfs_ialloc_chunk_blocks(mp->m_inopblock);
	uint32_t agbno = ir->startino >> mp->m_inopblog;
	const struct dfs_perag *pag = &mp->m_perag[cur->bc_private.a.agno];

	if (ir->startino % DFS_INODES_PER_CHUNK)
		return 0;
	if (agbno < DFS_AG_FIRST_FREE || agbno % chunk_blocks ||
	    (uint64_t)agbno + chunk_blocks > pag->pag_length)
		return 0;
	if (ir->freecount > DFS_INODES_PER_CHUNK ||
	    ir->freecount != (uint32_t)__builtin_popcountll(ir->free))
		return 0;
	return 1;
}

static uint64_t dfs_inobt_owner(const struct dfs_btree_cur *cur)
{
	return cur->bc_private.a.agno;
}

/* The generic checks, and the owner: an inobt block of another AG is
 * a misdirected write. */
static int dfs_inobt_verify_structure(struct dfs_buf *bp)
{
	struct dfs_mount *mp = bp->b_mount;
	const struct dfs_btree_block *block = bp->b_addr;
	char why[96];
	int error;

	error = dfs_btree_verify_block(bp, &dfs_inobt_ops);
	if (error)
		return error;
	if (block->hdr.owner != dfs_fsb_to_agno(mp, bp->b_blkno)) {
		snprintf(why, sizeof(why), "owner %" PRIu64 " is not its AG %u", block->hdr.owner,
			 dfs_fsb_to_agno(mp, bp->b_blkno));
		return dfs_corrupt(mp, "inobt", bp->b_blkno, why);
	}
	return 0;
}

static int dfs_inobt_check_buf(struct dfs_buf *bp, bool reading)
{
	return dfs_inobt_verify_structure(bp);
}

const struct dfs_buf_ops dfs_inobt_buf_ops = {
	.name = "inobt",
	.magic = DFS_INOBT_MAGIC,
	.check = dfs_inobt_check_buf,
};

const struct dfs_btree_ops dfs_inobt_ops = {
	.btnum = DFS_BTNUM_INO,
	.magic = DFS_INOBT_MAGIC,
	.rec_len = sizeof(struct dfs_inobt_rec),
	.key_len = sizeof(struct dfs_inobt_key),
	.buf_ops = &dfs_inobt_buf_ops,
	.init_key_from_rec = dfs_inobt_init_key_from_rec,
	.init_key_from_irec = dfs_inobt_init_key_from_irec,
	.cmp_keys = dfs_inobt_cmp_keys,
	.get_root = dfs_inobt_get_root,
	.set_root = dfs_inobt_set_root,
	.alloc_block = dfs_inobt_alloc_block,
	.free_block = dfs_inobt_free_block,
	.rec_valid = dfs_inobt_rec_valid,
	.owner = dfs_inobt_owner,
};

void dfs_inobt_init_cursor(struct dfs_btree_cur *cur, struct dfs_trans *tp,
			   struct dfs_buf *agibp, uint32_t agno)
{
	const struct dfs_agi *agi = agibp->b_addr;

	dfs_btree_init_cursor(cur, tp, agibp->b_mount, &dfs_inobt_ops);
	cur->bc_private.a.agbp = agibp;
	cur->bc_private.a.agno = agno;
	cur->bc_nlevels = (int)agi->level;
}

/* As xfs_btree_compute_maxlevels: every block only half full. */
int dfs_inobt_maxlevels(const struct dfs_mount *mp)
{
	uint64_t chunks = mp->m_agblocks / dfs_ialloc_chunk_blocks(mp->m_inopblock) + 1;
	uint64_t minleaf = (uint64_t)dfs_btree_maxrecs(mp, &dfs_inobt_ops, true) / 2;
	uint64_t minnode = (uint64_t)dfs_btree_maxrecs(mp, &dfs_inobt_ops, false) / 2;
	uint64_t n = (chunks + minleaf - 1) / minleaf;
	int levels = 1;

	while (n > 1) {
		n = (n + minnode - 1) / minnode;
		levels++;
	}
	return levels;
}
