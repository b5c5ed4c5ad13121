/* SPDX-License-Identifier: MIT */
/*
 * The free-space B+trees (XFS's xfs_alloc_btree.c): bnobt keyed by start
 * block, cntbt by (length, start block), both holding the same AG-relative
 * free extents. Their roots live in the AGF; their blocks come from and go
 * back to the AGFL, so that a split in the middle of an allocation never
 * needs the allocator it is part of.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "alloc.h"
#include "btree.h"
#include "buf.h"
#include "mount.h"
#include "msg.h"
#include "trans.h"

static struct dfs_agf *cur_agf(const struct dfs_btree_cur *cur)
{
	return cur->bc_private.a.agbp->b_addr;
}

static void dfs_allocbt_init_key_from_rec(union dfs_btree_key *key,
					  const union dfs_btree_rec *rec)
{
	key->alloc = rec->alloc;
}

static void dfs_allocbt_init_key_from_irec(const struct dfs_btree_cur *cur,
					   union dfs_btree_key *key)
{
	key->alloc = cur->bc_rec.alloc;
}

static int64_t dfs_bnobt_cmp_keys(const union dfs_btree_key *k1, const union dfs_btree_key *k2)
{
	return (int64_t)k1->alloc.startblock - (int64_t)k2->alloc.startblock;
}

static int64_t dfs_cntbt_cmp_keys(const union dfs_btree_key *k1, const union dfs_btree_key *k2)
{
	int64_t diff = (int64_t)k1->alloc.blockcount - (int64_t)k2->alloc.blockcount;

	if (diff)
		return diff;
	return (int64_t)k1->alloc.startblock - (int64_t)k2->alloc.startblock;
}

static void dfs_allocbt_get_root(struct dfs_btree_cur *cur, uint64_t *root, int *nlevels)
{
	const struct dfs_agf *agf = cur_agf(cur);

	if (cur->bc_ops->btnum == DFS_BTNUM_BNO) {
		*root = agf->bno_root;
		*nlevels = (int)agf->bno_level;
	} else {
		*root = agf->cnt_root;
		*nlevels = (int)agf->cnt_level;
	}
}

static void dfs_allocbt_set_root(struct dfs_btree_cur *cur, uint64_t root, int inc)
{
	struct dfs_agf *agf = cur_agf(cur);

	if (cur->bc_ops->btnum == DFS_BTNUM_BNO) {
		agf->bno_root = root;
		agf->bno_level = (uint32_t)((int)agf->bno_level + inc);
	} else {
		agf->cnt_root = root;
		agf->cnt_level = (uint32_t)((int)agf->cnt_level + inc);
	}
	dfs_trans_log_buf(cur->bc_tp, cur->bc_private.a.agbp);
}

static int dfs_allocbt_alloc_block(struct dfs_btree_cur *cur, uint64_t hint, uint64_t *fsbno)
{
	uint32_t agbno;
	int error;

	error = dfs_alloc_get_freelist(cur->bc_tp, cur->bc_private.a.agbp, &agbno, 1);
	if (error)
		return error;
	if (agbno == DFS_NULLAGBLOCK) {
		dfs_err(cur->bc_mp, "AG %u: free list empty during a %s split",
			cur->bc_private.a.agno, cur->bc_ops->buf_ops->name);
		return -ENOSPC;
	}
	*fsbno = dfs_agb_to_fsb(cur->bc_mp, cur->bc_private.a.agno, agbno);
	return 0;
}

static int dfs_allocbt_free_block(struct dfs_btree_cur *cur, uint64_t fsbno)
{
	return dfs_alloc_put_freelist(cur->bc_tp, cur->bc_private.a.agbp,
				      dfs_fsb_to_agbno(cur->bc_mp, fsbno), 1);
}

static int dfs_allocbt_rec_valid(const struct dfs_btree_cur *cur, const union dfs_btree_rec *rec)
{
	const struct dfs_agf *agf = cur_agf(cur);

	return rec->alloc.blockcount > 0 && rec->alloc.startblock >= DFS_AG_FIRST_FREE &&
	       (uint64_t)rec->alloc.startblock + rec->alloc.blockcount <= agf->length;
}

static uint64_t dfs_allocbt_owner(const struct dfs_btree_cur *cur)
{
	return cur->bc_private.a.agno;
}

static int dfs_allocbt_verify(struct dfs_buf *bp, const struct dfs_btree_ops *ops)
{
	const struct dfs_btree_block *block = bp->b_addr;
	struct dfs_mount *mp = bp->b_mount;
	char why[80];
	int error;

	error = dfs_btree_verify_block(bp, ops);
	if (error)
		return error;
	if (mp->m_agblocks && block->hdr.owner != dfs_fsb_to_agno(mp, bp->b_blkno)) {
		snprintf(why, sizeof(why), "owner %" PRIu64 " is not its AG %u", block->hdr.owner,
			 dfs_fsb_to_agno(mp, bp->b_blkno));
		return dfs_corrupt(mp, ops->buf_ops->name, bp->b_blkno, why);
	}
	return 0;
}

static int dfs_bnobt_check_buf(struct dfs_buf *bp, bool reading)
{
	return dfs_allocbt_verify(bp, &dfs_bnobt_ops);
}

static int dfs_cntbt_check_buf(struct dfs_buf *bp, bool reading)
{
	return dfs_allocbt_verify(bp, &dfs_cntbt_ops);
}

static const struct dfs_buf_ops dfs_bnobt_buf_ops = {
	.name = "bnobt",
	.magic = DFS_BNOBT_MAGIC,
	.check = dfs_bnobt_check_buf,
};

static const struct dfs_buf_ops dfs_cntbt_buf_ops = {
	.name = "cntbt",
	.magic = DFS_CNTBT_MAGIC,
	.check = dfs_cntbt_check_buf,
};

const struct dfs_btree_ops dfs_bnobt_ops = {
	.btnum = DFS_BTNUM_BNO,
	.magic = DFS_BNOBT_MAGIC,
	.rec_len = sizeof(struct dfs_alloc_rec),
	.key_len = sizeof(dfs_alloc_key_t),
	.buf_ops = &dfs_bnobt_buf_ops,
	.init_key_from_rec = dfs_allocbt_init_key_from_rec,
	.init_key_from_irec = dfs_allocbt_init_key_from_irec,
	.cmp_keys = dfs_bnobt_cmp_keys,
	.get_root = dfs_allocbt_get_root,
	.set_root = dfs_allocbt_set_root,
	.alloc_block = dfs_allocbt_alloc_block,
	.free_block = dfs_allocbt_free_block,
	.rec_valid = dfs_allocbt_rec_valid,
	.owner = dfs_allocbt_owner,
};

const struct dfs_btree_ops dfs_cntbt_ops = {
	.btnum = DFS_BTNUM_CNT,
	.magic = DFS_CNTBT_MAGIC,
	.rec_len = sizeof(struct dfs_alloc_rec),
	.key_len = sizeof(dfs_alloc_key_t),
	.buf_ops = &dfs_cntbt_buf_ops,
	.init_key_from_rec = dfs_allocbt_init_key_from_rec,
	.init_key_from_irec = dfs_allocbt_init_key_from_irec,
	.cmp_keys = dfs_cntbt_cmp_keys,
	.get_root = dfs_allocbt_get_root,
	.set_root = dfs_allocbt_set_root,
	.alloc_block = dfs_allocbt_alloc_block,
	.free_block = dfs_allocbt_free_block,
	.rec_valid = dfs_allocbt_rec_valid,
	.owner = dfs_allocbt_owner,
};

void dfs_allocbt_init_cursor(struct dfs_btree_cur *cur, struct dfs_trans *tp,
			     struct dfs_buf *agbp, uint32_t agno, int btnum)
{
	const struct dfs_agf *agf = agbp->b_addr;

	dfs_btree_init_cursor(cur, tp, agbp->b_mount,
			      btnum == DFS_BTNUM_BNO ? &dfs_bnobt_ops : &dfs_cntbt_ops);
	cur->bc_private.a.agbp = agbp;
	cur->bc_private.a.agno = agno;
	cur->bc_nlevels = (int)(btnum == DFS_BTNUM_BNO ? agf->bno_level : agf->cnt_level);
}
