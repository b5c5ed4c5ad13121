// SPDX-License-Identifier: MIT
/*
 * The bmbt (XFS's xfs_bmap_btree.c): the B+tree of a file's extents, keyed by
 * file offset. Its root is an ordinary block whose address and height live
 * in the inode's data fork (struct dfs_bmroot); its blocks belong to the
 * inode (header owner, i_nblocks) and come from the allocator near the inode
 * or near the first block this transaction allocated.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "bmap.h"
#include "btree.h"
#include "buf.h"
#include "inode.h"
#include "mount.h"
#include "msg.h"
#include "trans.h"

static void dfs_bmbt_init_key_from_rec(union dfs_btree_key *key, const union dfs_btree_rec *rec)
{
	key->bmbt.startoff = rec->bmbt.startoff;
}

static void dfs_bmbt_init_key_from_irec(const struct dfs_btree_cur *cur, union dfs_btree_key *key)
{
	key->bmbt.startoff = cur->bc_rec.bmbt.startoff;
}

static int64_t dfs_bmbt_cmp_keys(const union dfs_btree_key *k1, const union dfs_btree_key *k2)
{
	return (k1->bmbt.startoff > k2->bmbt.startoff) - (k1->bmbt.startoff < k2->bmbt.startoff);
}

static void dfs_bmbt_get_root(struct dfs_btree_cur *cur, uint64_t *root, int *nlevels)
{
	struct dfs_inode *ip = cur->bc_private.b.ip;

	*root = ip->i_df.if_broot.root;
	*nlevels = (int)ip->i_df.if_broot.level;
}

static void dfs_bmbt_set_root(struct dfs_btree_cur *cur, uint64_t root, int inc)
{
	struct dfs_inode *ip = cur->bc_private.b.ip;

	ip->i_df.if_broot.root = root;
	ip->i_df.if_broot.level += inc;
	dfs_trans_log_inode(cur->bc_tp, ip);
}

/*
 * New bmbt blocks go near the block the transaction allocated first (XFS's
 * firstblock), else near the hint the btree gives (the neighbouring block),
 * else near the inode, so that a file's metadata stays with its data.
 */
static int dfs_bmbt_alloc_block(struct dfs_btree_cur *cur, uint64_t hint, uint64_t *fsbno)
{
	struct dfs_inode *ip = cur->bc_private.b.ip;
	struct dfs_mount *mp = cur->bc_mp;
	struct dfs_alloc_arg args;
	int error;

	memset(&args, 0, sizeof(args));
	args.tp = cur->bc_tp;
	args.mp = mp;
	if (cur->bc_private.b.firstblock != DFS_NULLFSBLOCK)
		args.fsbno = cur->bc_private.b.firstblock;
	else if (hint != DFS_NULLFSBLOCK && hint < mp->m_dblocks)
		args.fsbno = hint;
	else
		args.fsbno = dfs_ino_to_fsb(mp, ip->i_ino);
	args.type = DFS_ALLOCTYPE_START_BNO;
	args.minlen = args.maxlen = args.prod = 1;
	args.owner = ip->i_ino;
	error = dfs_alloc_vextent(&args);
	if (error)
		return error;
	if (args.fsbno == DFS_NULLFSBLOCK)
		return -ENOSPC;
	if (cur->bc_private.b.firstblock == DFS_NULLFSBLOCK)
		cur->bc_private.b.firstblock = args.fsbno;
	cur->bc_private.b.allocated++;
	ip->i_nblocks++;
	*fsbno = args.fsbno;
	return 0;
}

static int dfs_bmbt_free_block(struct dfs_btree_cur *cur, uint64_t fsbno)
{
	struct dfs_inode *ip = cur->bc_private.b.ip;
	int error;

	error = dfs_free_extent(cur->bc_tp, fsbno, 1);
	if (error)
		return error;
	ip->i_nblocks--;
	return 0;
}

static int dfs_bmbt_rec_valid(const struct dfs_btree_cur *cur, const union dfs_btree_rec *rec)
{
	const struct dfs_bmbt_rec *r = &rec->bmbt;
	const struct dfs_mount *mp = cur->bc_mp;

	if (r->blockcount == 0 || r->blockcount > DFS_MAX_EXTLEN)
		return 0;
	if (r->state != DFS_EXT_NORM && r->state != DFS_EXT_UNWRITTEN)
		return 0;
	if (r->startblock >= mp->m_dblocks || r->blockcount > mp->m_dblocks - r->startblock)
		return 0;
	if (r->startoff + r->blockcount < r->startoff)
		return 0;
	/* an extent never crosses an AG boundary */
	if (dfs_fsb_to_agno(mp, r->startblock) !=
	    dfs_fsb_to_agno(mp, r->startblock + r->blockcount - 1))
		return 0;
	return 1;
}

static uint64_t dfs_bmbt_owner(const struct dfs_btree_cur *cur)
{
	return cur->bc_private.b.ip->i_ino;
}

static int dfs_bmbt_check_buf(struct dfs_buf *bp, bool reading)
{
	return dfs_btree_verify_block(bp, &dfs_bmbt_ops);
}

static const struct dfs_buf_ops dfs_bmbt_buf_ops = {
	.name = "bmbt",
	.magic = DFS_BMBT_MAGIC,
	.check = dfs_bmbt_check_buf,
};

const struct dfs_btree_ops dfs_bmbt_ops = {
	.btnum = DFS_BTNUM_BMAP,
	.magic = DFS_BMBT_MAGIC,
	.rec_len = sizeof(struct dfs_bmbt_rec),
	.key_len = sizeof(struct dfs_bmbt_key),
	.buf_ops = &dfs_bmbt_buf_ops,
	.init_key_from_rec = dfs_bmbt_init_key_from_rec,
	.init_key_from_irec = dfs_bmbt_init_key_from_irec,
	.cmp_keys = dfs_bmbt_cmp_keys,
	.get_root = dfs_bmbt_get_root,
	.set_root = dfs_bmbt_set_root,
	.alloc_block = dfs_bmbt_alloc_block,
	.free_block = dfs_bmbt_free_block,
	.rec_valid = dfs_bmbt_rec_valid,
	.owner = dfs_bmbt_owner,
};

void dfs_bmbt_init_cursor(struct dfs_btree_cur *cur, struct dfs_trans *tp, struct dfs_inode *ip)
{
	dfs_btree_init_cursor(cur, tp, ip->i_mount, &dfs_bmbt_ops);
	cur->bc_private.b.ip = ip;
	cur->bc_private.b.allocated = 0;
	cur->bc_private.b.firstblock = DFS_NULLFSBLOCK;
	cur->bc_nlevels = (int)ip->i_df.if_broot.level;
}
