/* SPDX-License-Identifier: MIT */
/*
 * The generic B+tree (XFS's xfs_btree.c). Levels count from 0 at the leaves;
 * the cursor keeps, for every level, the block on the path to the current
 * record and a 1-based index into it (0 means "before the first entry").
 * Every change goes through the cursor's transaction, whose hold keeps the
 * cursor's buffers alive; a cursor without a transaction (fsck, the bmbt
 * load at iget) holds its buffers itself and may only read.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "btree.h"
#include "buf.h"
#include "mount.h"
#include "msg.h"
#include "trans.h"

#define DFS_BTREE_HDR_LEN	sizeof(struct dfs_btree_block)

int dfs_btree_maxrecs(const struct dfs_mount *mp, const struct dfs_btree_ops *ops, bool leaf)
{
	uint32_t room = mp->m_blocksize - DFS_BTREE_HDR_LEN;

	return (int)(room / (leaf ? ops->rec_len : ops->key_len + sizeof(uint64_t)));
}

static int dfs_btree_get_maxrecs(const struct dfs_btree_cur *cur, int level)
{
	return dfs_btree_maxrecs(cur->bc_mp, cur->bc_ops, level == 0);
}

/* Blocks other than the root stay at least half full. */
static int dfs_btree_get_minrecs(const struct dfs_btree_cur *cur, int level)
{
	return dfs_btree_get_maxrecs(cur, level) / 2;
}

/* ---- block layout: records, or keys then pointers ---------------------- */

static inline struct dfs_btree_block *dfs_btree_blk(struct dfs_buf *bp)
{
	return bp->b_addr;
}

static inline char *dfs_btree_rec_addr(const struct dfs_btree_cur *cur, int n,
				       struct dfs_btree_block *block)
{
	return (char *)block + DFS_BTREE_HDR_LEN + (size_t)(n - 1) * cur->bc_ops->rec_len;
}

static inline char *dfs_btree_key_addr(const struct dfs_btree_cur *cur, int n,
				       struct dfs_btree_block *block)
{
	return (char *)block + DFS_BTREE_HDR_LEN + (size_t)(n - 1) * cur->bc_ops->key_len;
}

/* Pointers start after maxrecs keys, so that a node never moves its
 * pointer array as it fills (XFS's layout). */
static inline uint64_t *dfs_btree_ptr_addr(const struct dfs_btree_cur *cur, int n,
					   struct dfs_btree_block *block)
{
	int maxrecs = dfs_btree_get_maxrecs(cur, 1);

	return (uint64_t *)((char *)block + DFS_BTREE_HDR_LEN +
			    (size_t)maxrecs * cur->bc_ops->key_len) + (n - 1);
}

/* The key an entry contributes to its parent: a record's key, or a node's
 * first key. */
static void dfs_btree_get_entry_key(const struct dfs_btree_cur *cur, int level, int n,
				    struct dfs_btree_block *block, union dfs_btree_key *key)
{
	if (level == 0) {
		union dfs_btree_rec rec;

		memcpy(&rec, dfs_btree_rec_addr(cur, n, block), cur->bc_ops->rec_len);
		cur->bc_ops->init_key_from_rec(key, &rec);
	} else {
		memset(key, 0, sizeof(*key));
		memcpy(key, dfs_btree_key_addr(cur, n, block), cur->bc_ops->key_len);
	}
}

static void dfs_btree_copy_entries(const struct dfs_btree_cur *cur, int level,
				   struct dfs_btree_block *dst, int dst_n,
				   struct dfs_btree_block *src, int src_n, int count)
{
	if (count <= 0)
		return;
	if (level == 0) {
		memmove(dfs_btree_rec_addr(cur, dst_n, dst), dfs_btree_rec_addr(cur, src_n, src),
			(size_t)count * cur->bc_ops->rec_len);
	} else {
		memmove(dfs_btree_key_addr(cur, dst_n, dst), dfs_btree_key_addr(cur, src_n, src),
			(size_t)count * cur->bc_ops->key_len);
		memmove(dfs_btree_ptr_addr(cur, dst_n, dst), dfs_btree_ptr_addr(cur, src_n, src),
			(size_t)count * sizeof(uint64_t));
	}
}

/* ---- buffers ------------------------------------------------------------ */

static int dfs_btree_corrupt(const struct dfs_btree_cur *cur, uint64_t blkno, const char *why)
{
	char what[48];

	snprintf(what, sizeof(what), "%s btree block",
		 cur->bc_ops->buf_ops ? cur->bc_ops->buf_ops->name : "?");
	return dfs_corrupt(cur->bc_mp, what, (unsigned long long)blkno, why);
}

static int dfs_btree_read_buf(struct dfs_btree_cur *cur, uint64_t fsbno, struct dfs_buf **bpp)
{
	if (fsbno == DFS_NULLFSBLOCK || fsbno >= cur->bc_mp->m_dblocks)
		return dfs_btree_corrupt(cur, fsbno, "pointer outside the filesystem");
	if (cur->bc_tp)
		return dfs_trans_read_buf(cur->bc_tp, fsbno, cur->bc_ops->buf_ops, bpp);
	return dfs_buf_read(cur->bc_mp, fsbno, cur->bc_ops->buf_ops, bpp);
}

/* Drop a buffer the cursor read for a moment (not one of its path). */
static void dfs_btree_put_buf(struct dfs_btree_cur *cur, struct dfs_buf *bp)
{
	if (!cur->bc_tp)
		dfs_buf_relse(bp);
}

static void dfs_btree_setbuf(struct dfs_btree_cur *cur, int level, struct dfs_buf *bp)
{
	struct dfs_buf *old = cur->bc_bufs[level];

	if (old && old != bp && !cur->bc_tp)
		dfs_buf_relse(old);
	cur->bc_bufs[level] = bp;
	cur->bc_ra[level] = 0;
}

static void dfs_btree_log(struct dfs_btree_cur *cur, struct dfs_buf *bp)
{
	dfs_trans_log_buf(cur->bc_tp, bp);
}

/* XFS's xfs_btree_check_block: what must hold of any block we walk into. */
static int dfs_btree_check_block(struct dfs_btree_cur *cur, struct dfs_buf *bp, int level)
{
	struct dfs_btree_block *block = dfs_btree_blk(bp);
	struct dfs_mount *mp = cur->bc_mp;
	char why[96];

	if (block->hdr.magic != cur->bc_ops->magic)
		return dfs_btree_corrupt(cur, bp->b_blkno, "wrong magic for this tree");
	if (block->level != level) {
		snprintf(why, sizeof(why), "level %u where %d was expected", block->level, level);
		return dfs_btree_corrupt(cur, bp->b_blkno, why);
	}
	if (block->numrecs > dfs_btree_get_maxrecs(cur, level)) {
		snprintf(why, sizeof(why), "%u records, at most %d fit", block->numrecs,
			 dfs_btree_get_maxrecs(cur, level));
		return dfs_btree_corrupt(cur, bp->b_blkno, why);
	}
	if (level > 0 && block->numrecs == 0)
		return dfs_btree_corrupt(cur, bp->b_blkno, "empty node");
	if ((block->leftsib != DFS_NULLFSBLOCK && block->leftsib >= mp->m_dblocks) ||
	    (block->rightsib != DFS_NULLFSBLOCK && block->rightsib >= mp->m_dblocks))
		return dfs_btree_corrupt(cur, bp->b_blkno, "sibling outside the filesystem");
	return 0;
}

/* Read the child that entry ptr of the level-(level+1) block points to into
 * the cursor at level. */
static int dfs_btree_read_child(struct dfs_btree_cur *cur, int level, uint64_t fsbno)
{
	struct dfs_buf *bp;
	int error;

	error = dfs_btree_read_buf(cur, fsbno, &bp);
	if (error)
		return error;
	error = dfs_btree_check_block(cur, bp, level);
	if (error) {
		dfs_btree_put_buf(cur, bp);
		return error;
	}
	dfs_btree_setbuf(cur, level, bp);
	return 0;
}

/* ---- cursors ------------------------------------------------------------ */

void dfs_btree_init_cursor(struct dfs_btree_cur *cur, struct dfs_trans *tp,
			   struct dfs_mount *mp, const struct dfs_btree_ops *ops)
{
	memset(cur, 0, sizeof(*cur));
	cur->bc_tp = tp;
	cur->bc_mp = mp;
	cur->bc_ops = ops;
}

void dfs_btree_del_cursor(struct dfs_btree_cur *cur, int error)
{
	int i;

	for (i = 0; i < DFS_BTREE_MAXLEVELS; i++)
		dfs_btree_setbuf(cur, i, NULL);
}

void dfs_btree_dup_cursor(const struct dfs_btree_cur *cur, struct dfs_btree_cur *ncur)
{
	int i;

	*ncur = *cur;
	if (cur->bc_tp)
		return;
	for (i = 0; i < DFS_BTREE_MAXLEVELS; i++)
		if (ncur->bc_bufs[i])
			dfs_buf_hold(ncur->bc_bufs[i]);
}

static struct dfs_btree_block *dfs_btree_get_block(const struct dfs_btree_cur *cur, int level,
						   struct dfs_buf **bpp)
{
	*bpp = cur->bc_bufs[level];
	return dfs_btree_blk(*bpp);
}

/* Read the root into the cursor (it may have moved since the cursor was made). */
static int dfs_btree_load_root(struct dfs_btree_cur *cur)
{
	uint64_t root;
	int nlevels, error;

	cur->bc_ops->get_root(cur, &root, &nlevels);
	if (nlevels < 1 || nlevels > DFS_BTREE_MAXLEVELS) {
		char why[64];

		snprintf(why, sizeof(why), "tree height %d in its owner", nlevels);
		return dfs_btree_corrupt(cur, root, why);
	}
	if (cur->bc_nlevels > nlevels) {
		int i;

		for (i = nlevels; i < cur->bc_nlevels; i++)
			dfs_btree_setbuf(cur, i, NULL);
	}
	cur->bc_nlevels = nlevels;
	error = dfs_btree_read_child(cur, nlevels - 1, root);
	if (error)
		return error;
	/* only a leaf root may be empty */
	return 0;
}

/* ---- lookup ------------------------------------------------------------- */

int dfs_btree_lookup(struct dfs_btree_cur *cur, enum dfs_lookup dir, int *stat)
{
	const struct dfs_btree_ops *ops = cur->bc_ops;
	union dfs_btree_key search, kp;
	struct dfs_btree_block *block = NULL;
	struct dfs_buf *bp = NULL;
	int64_t diff = -1;
	int level, keyno = 0, error;

	ops->init_key_from_irec(cur, &search);
	error = dfs_btree_load_root(cur);
	if (error)
		return error;

	for (level = cur->bc_nlevels - 1; level >= 0; level--) {
		int low, high;

		if (level < cur->bc_nlevels - 1) {
			uint64_t ptr = *dfs_btree_ptr_addr(cur, keyno, block);

			error = dfs_btree_read_child(cur, level, ptr);
			if (error)
				return error;
		}
		block = dfs_btree_get_block(cur, level, &bp);

		if (block->numrecs == 0) {
			/* only an empty tree has an empty (root leaf) block */
			cur->bc_ptrs[0] = dir != DFS_LOOKUP_LE;
			*stat = 0;
			return 0;
		}

		/* binary search for the key within the block */
		low = 1;
		high = block->numrecs;
		diff = -1;
		while (low <= high) {
			keyno = (low + high) >> 1;
			dfs_btree_get_entry_key(cur, level, keyno, block, &kp);
			diff = ops->cmp_keys(&kp, &search);
			if (diff < 0)
				low = keyno + 1;
			else if (diff > 0)
				high = keyno - 1;
			else
				break;
		}
		/* in a node, follow the last key not past the search key */
		if (level > 0) {
			if (diff > 0 && --keyno < 1)
				keyno = 1;
			cur->bc_ptrs[level] = keyno;
		}
	}

	if (dir != DFS_LOOKUP_LE && diff < 0) {
		keyno++;
		/* GE past the end of this leaf: the answer is in the next one */
		if (dir == DFS_LOOKUP_GE && keyno > block->numrecs &&
		    block->rightsib != DFS_NULLFSBLOCK) {
			int i;

			cur->bc_ptrs[0] = keyno;
			error = dfs_btree_increment(cur, 0, &i);
			if (error)
				return error;
			if (!i)
				return dfs_btree_corrupt(cur, bp->b_blkno,
							 "right sibling unreachable through the parents");
			*stat = 1;
			return 0;
		}
	} else if (dir == DFS_LOOKUP_LE && diff > 0) {
		keyno--;
	}
	cur->bc_ptrs[0] = keyno;

	if (keyno == 0 || keyno > block->numrecs)
		*stat = 0;
	else
		*stat = dir != DFS_LOOKUP_EQ || diff == 0;
	return 0;
}

int dfs_btree_get_rec(struct dfs_btree_cur *cur, union dfs_btree_rec *rec, int *stat)
{
	struct dfs_btree_block *block;
	struct dfs_buf *bp;
	int ptr = cur->bc_ptrs[0];

	if (!cur->bc_bufs[0]) {
		*stat = 0;
		return 0;
	}
	block = dfs_btree_get_block(cur, 0, &bp);
	if (ptr < 1 || ptr > block->numrecs) {
		*stat = 0;
		return 0;
	}
	memset(rec, 0, sizeof(*rec));
	memcpy(rec, dfs_btree_rec_addr(cur, ptr, block), cur->bc_ops->rec_len);
	*stat = 1;
	return 0;
}

/* ---- moving the cursor -------------------------------------------------- */

int dfs_btree_increment(struct dfs_btree_cur *cur, int level, int *stat)
{
	struct dfs_btree_block *block;
	struct dfs_buf *bp;
	int lev, error;

	block = dfs_btree_get_block(cur, level, &bp);
	if (++cur->bc_ptrs[level] <= block->numrecs) {
		*stat = 1;
		return 0;
	}
	if (block->rightsib == DFS_NULLFSBLOCK) {
		*stat = 0;
		return 0;
	}
	/* climb until a level has an entry to the right ... */
	for (lev = level + 1; lev < cur->bc_nlevels; lev++) {
		block = dfs_btree_get_block(cur, lev, &bp);
		if (++cur->bc_ptrs[lev] <= block->numrecs)
			break;
	}
	if (lev == cur->bc_nlevels)
		return dfs_btree_corrupt(cur, cur->bc_bufs[level]->b_blkno,
					 "has a right sibling its parents do not know");
	/* ... and come back down its left edge */
	for (; lev > level; lev--) {
		block = dfs_btree_get_block(cur, lev, &bp);
		error = dfs_btree_read_child(cur, lev - 1,
					     *dfs_btree_ptr_addr(cur, cur->bc_ptrs[lev], block));
		if (error)
			return error;
		cur->bc_ptrs[lev - 1] = 1;
	}
	*stat = 1;
	return 0;
}

int dfs_btree_decrement(struct dfs_btree_cur *cur, int level, int *stat)
{
	struct dfs_btree_block *block;
	struct dfs_buf *bp;
	int lev, error;

	block = dfs_btree_get_block(cur, level, &bp);
	if (--cur->bc_ptrs[level] > 0) {
		*stat = 1;
		return 0;
	}
	if (block->leftsib == DFS_NULLFSBLOCK) {
		*stat = 0;
		return 0;
	}
	for (lev = level + 1; lev < cur->bc_nlevels; lev++) {
		if (--cur->bc_ptrs[lev] > 0)
			break;
	}
	if (lev == cur->bc_nlevels)
		return dfs_btree_corrupt(cur, cur->bc_bufs[level]->b_blkno,
					 "has a left sibling its parents do not know");
	/* come back down the right edge of the subtree to the left */
	for (; lev > level; lev--) {
		block = dfs_btree_get_block(cur, lev, &bp);
		error = dfs_btree_read_child(cur, lev - 1,
					     *dfs_btree_ptr_addr(cur, cur->bc_ptrs[lev], block));
		if (error)
			return error;
		block = dfs_btree_get_block(cur, lev - 1, &bp);
		cur->bc_ptrs[lev - 1] = block->numrecs;
	}
	*stat = 1;
	return 0;
}

/* Point the cursor at the first/last entry of its block at level. */
static void dfs_btree_firstrec(struct dfs_btree_cur *cur, int level)
{
	cur->bc_ptrs[level] = 1;
}

static void dfs_btree_lastrec(struct dfs_btree_cur *cur, int level)
{
	struct dfs_buf *bp;

	cur->bc_ptrs[level] = dfs_btree_get_block(cur, level, &bp)->numrecs;
}

/* ---- keys --------------------------------------------------------------- */

/*
 * The first key of the block at level changed: copy it into the parents for
 * as long as the cursor's path enters each parent by its first entry
 * (XFS's xfs_btree_updkeys for trees without overlapping keys).
 */
static void dfs_btree_update_keys(struct dfs_btree_cur *cur, int level)
{
	union dfs_btree_key key;
	struct dfs_btree_block *block;
	struct dfs_buf *bp;
	int ptr;

	block = dfs_btree_get_block(cur, level, &bp);
	if (block->numrecs == 0)
		return;
	dfs_btree_get_entry_key(cur, level, 1, block, &key);
	for (ptr = 1, level++; ptr == 1 && level < cur->bc_nlevels; level++) {
		block = dfs_btree_get_block(cur, level, &bp);
		ptr = cur->bc_ptrs[level];
		memcpy(dfs_btree_key_addr(cur, ptr, block), &key, cur->bc_ops->key_len);
		dfs_btree_log(cur, bp);
	}
}

int dfs_btree_update(struct dfs_btree_cur *cur, const union dfs_btree_rec *rec)
{
	struct dfs_btree_block *block;
	struct dfs_buf *bp;
	int ptr = cur->bc_ptrs[0];

	assert(cur->bc_tp);
	block = dfs_btree_get_block(cur, 0, &bp);
	if (ptr < 1 || ptr > block->numrecs)
		return dfs_btree_corrupt(cur, bp->b_blkno, "update outside the block's records");
	memcpy(dfs_btree_rec_addr(cur, ptr, block), rec, cur->bc_ops->rec_len);
	dfs_btree_log(cur, bp);
	if (ptr == 1)
		dfs_btree_update_keys(cur, 0);
	return 0;
}

/* ---- insert ------------------------------------------------------------- */

int dfs_btree_init_block(struct dfs_trans *tp, const struct dfs_btree_ops *ops, uint64_t fsbno,
			 uint64_t owner, int level, struct dfs_buf **bpp)
{
	struct dfs_btree_block *block;
	struct dfs_buf *bp;
	int error;

	error = dfs_trans_get_buf(tp, fsbno, ops->buf_ops, &bp);
	if (error)
		return error;
	dfs_blkhdr_init(bp, ops->magic, owner);
	block = dfs_btree_blk(bp);
	block->level = (uint16_t)level;
	block->numrecs = 0;
	block->pad = 0;
	block->leftsib = DFS_NULLFSBLOCK;
	block->rightsib = DFS_NULLFSBLOCK;
	dfs_trans_log_buf(tp, bp);
	*bpp = bp;
	return 0;
}

/*
 * Split the full block at level in two (XFS's xfs_btree_split): the upper
 * half moves to a new right sibling, whose first key and address the caller
 * inserts into the parent. If the insertion point moved to the new block, so
 * does the cursor. *ncur gets a cursor whose parent index points just after
 * the old block, where the new block's entry belongs.
 */
static int dfs_btree_split(struct dfs_btree_cur *cur, int level, uint64_t *nptr,
			   union dfs_btree_key *key, struct dfs_btree_cur *ncur, bool *have_ncur)
{
	struct dfs_btree_block *left, *right;
	struct dfs_buf *lbp, *rbp;
	uint64_t rfsbno;
	int lrecs, rrecs, src_index, error;

	left = dfs_btree_get_block(cur, level, &lbp);
	error = cur->bc_ops->alloc_block(cur, lbp->b_blkno, &rfsbno);
	if (error)
		return error;
	error = dfs_btree_init_block(cur->bc_tp, cur->bc_ops, rfsbno, cur->bc_ops->owner(cur),
				     level, &rbp);
	if (error)
		return error;
	right = dfs_btree_blk(rbp);
	cur->bc_stats_splits++;

	/* Half the entries move right; with an odd count the side that gets
	 * the new entry keeps one fewer. */
	lrecs = left->numrecs;
	rrecs = lrecs / 2;
	if ((lrecs & 1) && cur->bc_ptrs[level] <= rrecs + 1)
		rrecs++;
	src_index = lrecs - rrecs + 1;
	dfs_btree_copy_entries(cur, level, right, 1, left, src_index, rrecs);
	dfs_btree_get_entry_key(cur, level, 1, right, key);
	left->numrecs = (uint16_t)(lrecs - rrecs);
	right->numrecs = (uint16_t)rrecs;

	/* link the new block in after the old one */
	right->rightsib = left->rightsib;
	right->leftsib = lbp->b_blkno;
	left->rightsib = rbp->b_blkno;
	if (right->rightsib != DFS_NULLFSBLOCK) {
		struct dfs_buf *rrbp;

		error = dfs_btree_read_buf(cur, right->rightsib, &rrbp);
		if (error)
			return error;
		error = dfs_btree_check_block(cur, rrbp, level);
		if (error) {
			dfs_btree_put_buf(cur, rrbp);
			return error;
		}
		dfs_btree_blk(rrbp)->leftsib = rbp->b_blkno;
		dfs_btree_log(cur, rrbp);
		dfs_btree_put_buf(cur, rrbp);
	}
	dfs_btree_log(cur, lbp);
	dfs_btree_log(cur, rbp);

	lrecs = left->numrecs;
	if (cur->bc_ptrs[level] > lrecs + 1) {
		if (!cur->bc_tp)
			dfs_buf_hold(rbp);
		dfs_btree_setbuf(cur, level, rbp);
		cur->bc_ptrs[level] -= lrecs;
	}
	if (level + 1 < cur->bc_nlevels) {
		dfs_btree_dup_cursor(cur, ncur);
		ncur->bc_ptrs[level + 1]++;
		*have_ncur = true;
	}
	*nptr = rbp->b_blkno;
	return 0;
}

/*
 * The root split: a new root above the two halves (XFS's xfs_btree_new_root).
 * The cursor's block at the old root level is one of the halves; its
 * sibling link tells which.
 */
static int dfs_btree_new_root(struct dfs_btree_cur *cur)
{
	struct dfs_btree_block *block, *left, *right, *root;
	struct dfs_buf *bp, *lbp, *rbp, *nbp, *obp;
	int level = cur->bc_nlevels - 1;
	uint64_t nroot;
	int nptr, error;

	if (cur->bc_nlevels >= DFS_BTREE_MAXLEVELS)
		return dfs_btree_corrupt(cur, cur->bc_bufs[level]->b_blkno,
					 "tree would grow past the maximum height");
	block = dfs_btree_get_block(cur, level, &bp);
	error = cur->bc_ops->alloc_block(cur, bp->b_blkno, &nroot);
	if (error)
		return error;
	error = dfs_btree_init_block(cur->bc_tp, cur->bc_ops, nroot, cur->bc_ops->owner(cur),
				     level + 1, &nbp);
	if (error)
		return error;

	if (block->rightsib != DFS_NULLFSBLOCK) {
		lbp = bp;
		error = dfs_btree_read_buf(cur, block->rightsib, &rbp);
		nptr = 1;
	} else {
		rbp = bp;
		error = dfs_btree_read_buf(cur, block->leftsib, &lbp);
		nptr = 2;
	}
	if (error)
		return error;
	obp = nptr == 1 ? rbp : lbp;
	error = dfs_btree_check_block(cur, obp, level);
	if (error) {
		dfs_btree_put_buf(cur, obp);
		return error;
	}
	left = dfs_btree_blk(lbp);
	right = dfs_btree_blk(rbp);
	root = dfs_btree_blk(nbp);

	{
		union dfs_btree_key lkey, rkey;

		dfs_btree_get_entry_key(cur, level, 1, left, &lkey);
		dfs_btree_get_entry_key(cur, level, 1, right, &rkey);
		memcpy(dfs_btree_key_addr(cur, 1, root), &lkey, cur->bc_ops->key_len);
		memcpy(dfs_btree_key_addr(cur, 2, root), &rkey, cur->bc_ops->key_len);
	}
	*dfs_btree_ptr_addr(cur, 1, root) = lbp->b_blkno;
	*dfs_btree_ptr_addr(cur, 2, root) = rbp->b_blkno;
	root->numrecs = 2;
	dfs_btree_log(cur, nbp);
	dfs_btree_put_buf(cur, obp);

	cur->bc_ops->set_root(cur, nroot, 1);
	if (!cur->bc_tp)
		dfs_buf_hold(nbp);
	dfs_btree_setbuf(cur, cur->bc_nlevels, nbp);
	cur->bc_ptrs[cur->bc_nlevels] = nptr;
	cur->bc_nlevels++;
	return 0;
}

/*
 * Insert one entry at level (XFS's xfs_btree_insrec): a record at the leaf,
 * a key and child pointer above. A full block is split first; then *nptr
 * and *key describe the new block for the level above, and *ncur, if set,
 * is the cursor to insert it with.
 */
static int dfs_btree_insrec(struct dfs_btree_cur *cur, int level, uint64_t *nptr,
			    const union dfs_btree_rec *rec, union dfs_btree_key *key,
			    struct dfs_btree_cur *ncur, bool *have_ncur)
{
	struct dfs_btree_block *block;
	struct dfs_buf *bp;
	union dfs_btree_key nkey;
	uint64_t ptr_in = *nptr;
	uint64_t split_ptr = DFS_NULLFSBLOCK;
	int ptr, numrecs, error;

	*have_ncur = false;
	if (level >= cur->bc_nlevels) {
		*nptr = DFS_NULLFSBLOCK;
		return dfs_btree_new_root(cur);
	}

	ptr = cur->bc_ptrs[level];
	if (ptr == 0)
		ptr = cur->bc_ptrs[level] = 1;	/* before the first: insert at the front */
	block = dfs_btree_get_block(cur, level, &bp);
	numrecs = block->numrecs;
	if (ptr > numrecs + 1)
		return dfs_btree_corrupt(cur, bp->b_blkno, "insert position past the end");

	if (numrecs == dfs_btree_get_maxrecs(cur, level)) {
		error = dfs_btree_split(cur, level, &split_ptr, &nkey, ncur, have_ncur);
		if (error)
			return error;
		block = dfs_btree_get_block(cur, level, &bp);
		numrecs = block->numrecs;
		ptr = cur->bc_ptrs[level];
	}

	/* make a hole at ptr and fill it */
	dfs_btree_copy_entries(cur, level, block, ptr + 1, block, ptr, numrecs - ptr + 1);
	if (level == 0) {
		memcpy(dfs_btree_rec_addr(cur, ptr, block), rec, cur->bc_ops->rec_len);
	} else {
		memcpy(dfs_btree_key_addr(cur, ptr, block), key, cur->bc_ops->key_len);
		*dfs_btree_ptr_addr(cur, ptr, block) = ptr_in;
	}
	block->numrecs = (uint16_t)(numrecs + 1);
	dfs_btree_log(cur, bp);

	if (ptr == 1)
		dfs_btree_update_keys(cur, level);

	*nptr = split_ptr;
	if (split_ptr != DFS_NULLFSBLOCK)
		*key = nkey;
	return 0;
}

int dfs_btree_insert(struct dfs_btree_cur *cur, int *stat)
{
	struct dfs_btree_cur tcur[2];	/* the cursor in use above a split, and the next */
	struct dfs_btree_cur *pcur = cur;
	union dfs_btree_rec rec = cur->bc_rec;
	union dfs_btree_key key;
	uint64_t nptr = DFS_NULLFSBLOCK;
	int level = 0, which = 0, error = 0, i;
	bool split = false;

	assert(cur->bc_tp);
	cur->bc_ops->init_key_from_rec(&key, &rec);
	do {
		struct dfs_btree_cur *next = &tcur[which];
		bool have_ncur;

		error = dfs_btree_insrec(pcur, level, &nptr, &rec, &key, next, &have_ncur);
		if (error)
			break;
		if (nptr != DFS_NULLFSBLOCK)
			split = true;
		if (pcur != cur && (have_ncur || nptr == DFS_NULLFSBLOCK)) {
			if (pcur->bc_nlevels > cur->bc_nlevels)
				cur->bc_nlevels = pcur->bc_nlevels;
			dfs_btree_del_cursor(pcur, 0);
		}
		if (have_ncur) {
			pcur = next;
			which ^= 1;
		}
		level++;
	} while (nptr != DFS_NULLFSBLOCK);
	if (pcur != cur)
		dfs_btree_del_cursor(pcur, error);
	if (error)
		return error;

	/*
	 * Splits leave the cursor's upper levels pointing at where the path
	 * ran before; find the new record again so that the cursor is whole.
	 */
	if (split) {
		cur->bc_rec = rec;
		error = dfs_btree_lookup(cur, DFS_LOOKUP_EQ, &i);
		if (error)
			return error;
		if (!i)
			return dfs_btree_corrupt(cur, cur->bc_bufs[0]->b_blkno,
						 "record not found after insert");
	}
	*stat = 1;
	return 0;
}

/* ---- delete ------------------------------------------------------------- */

/*
 * Move the first entry of the cursor's block at level to the end of its
 * left sibling (XFS's xfs_btree_lshift). The cursor's block got a new first
 * key, which its parents learn.
 */
static int dfs_btree_lshift(struct dfs_btree_cur *cur, int level, int *stat)
{
	struct dfs_btree_block *left, *right;
	struct dfs_buf *lbp, *rbp;
	int lrecs, rrecs, error;

	right = dfs_btree_get_block(cur, level, &rbp);
	if (right->leftsib == DFS_NULLFSBLOCK || right->numrecs <= 1) {
		*stat = 0;
		return 0;
	}
	error = dfs_btree_read_buf(cur, right->leftsib, &lbp);
	if (error)
		return error;
	error = dfs_btree_check_block(cur, lbp, level);
	if (error)
		goto out;
	left = dfs_btree_blk(lbp);
	lrecs = left->numrecs;
	if (lrecs >= dfs_btree_get_maxrecs(cur, level)) {
		*stat = 0;
		goto out;
	}
	rrecs = right->numrecs;
	dfs_btree_copy_entries(cur, level, left, lrecs + 1, right, 1, 1);
	dfs_btree_copy_entries(cur, level, right, 1, right, 2, rrecs - 1);
	left->numrecs = (uint16_t)(lrecs + 1);
	right->numrecs = (uint16_t)(rrecs - 1);
	dfs_btree_log(cur, lbp);
	dfs_btree_log(cur, rbp);
	dfs_btree_update_keys(cur, level);
	cur->bc_ptrs[level]--;
	*stat = 1;
out:
	dfs_btree_put_buf(cur, lbp);
	return error;
}

/*
 * Move the last entry of the cursor's block at level to the front of its
 * right sibling (XFS's xfs_btree_rshift); the sibling's parents learn its
 * new first key through a second cursor walked onto it.
 */
static int dfs_btree_rshift(struct dfs_btree_cur *cur, int level, int *stat)
{
	struct dfs_btree_block *left, *right;
	struct dfs_buf *lbp, *rbp;
	struct dfs_btree_cur tcur;
	int lrecs, rrecs, i, error;

	left = dfs_btree_get_block(cur, level, &lbp);
	if (left->rightsib == DFS_NULLFSBLOCK || left->numrecs <= 1) {
		*stat = 0;
		return 0;
	}
	error = dfs_btree_read_buf(cur, left->rightsib, &rbp);
	if (error)
		return error;
	error = dfs_btree_check_block(cur, rbp, level);
	if (error) {
		dfs_btree_put_buf(cur, rbp);
		return error;
	}
	right = dfs_btree_blk(rbp);
	rrecs = right->numrecs;
	if (rrecs >= dfs_btree_get_maxrecs(cur, level)) {
		dfs_btree_put_buf(cur, rbp);
		*stat = 0;
		return 0;
	}
	lrecs = left->numrecs;
	dfs_btree_copy_entries(cur, level, right, 2, right, 1, rrecs);
	dfs_btree_copy_entries(cur, level, right, 1, left, lrecs, 1);
	left->numrecs = (uint16_t)(lrecs - 1);
	right->numrecs = (uint16_t)(rrecs + 1);
	dfs_btree_log(cur, lbp);
	dfs_btree_log(cur, rbp);
	dfs_btree_put_buf(cur, rbp);

	dfs_btree_dup_cursor(cur, &tcur);
	dfs_btree_lastrec(&tcur, level);
	error = dfs_btree_increment(&tcur, level, &i);
	if (!error && !i)
		error = dfs_btree_corrupt(cur, lbp->b_blkno,
					  "right sibling unreachable through the parents");
	if (!error)
		dfs_btree_update_keys(&tcur, level);
	dfs_btree_del_cursor(&tcur, error);
	if (error)
		return error;
	*stat = 1;
	return 0;
}

static int dfs_btree_free_block(struct dfs_btree_cur *cur, struct dfs_buf *bp)
{
	uint64_t fsbno = bp->b_blkno;
	int error;

	error = cur->bc_ops->free_block(cur, fsbno);
	if (error)
		return error;
	dfs_trans_binval(cur->bc_tp, bp);
	return 0;
}

/*
 * The root node is down to one child: the child becomes the root
 * (XFS's xfs_btree_kill_root).
 */
static int dfs_btree_kill_root(struct dfs_btree_cur *cur, int level)
{
	struct dfs_btree_block *block;
	struct dfs_buf *bp;
	uint64_t child;
	int error;

	block = dfs_btree_get_block(cur, level, &bp);
	child = *dfs_btree_ptr_addr(cur, 1, block);
	cur->bc_ops->set_root(cur, child, -1);
	error = dfs_btree_free_block(cur, bp);
	if (error)
		return error;
	dfs_btree_setbuf(cur, level, NULL);
	cur->bc_nlevels--;
	return 0;
}

/*
 * Delete the entry at the cursor at level (XFS's xfs_btree_delrec). A
 * block left under half full borrows an entry from a sibling that can spare
 * one, or else is joined with a sibling and the emptied block freed; then
 * *stat = 2 says that the parent's entry for it must go too, and the cursor
 * at level+1 points at that entry.
 */
static int dfs_btree_delrec(struct dfs_btree_cur *cur, int level, int *stat, bool *rebalanced)
{
	struct dfs_btree_block *block, *left, *right;
	struct dfs_buf *bp, *lbp, *rbp, *sbp = NULL;
	struct dfs_btree_cur tcur;
	uint64_t lsib, rsib;
	int ptr, numrecs, lrecs, rrecs, i, error;
	bool joined_left;

	ptr = cur->bc_ptrs[level];
	if (ptr == 0) {
		*stat = 0;
		return 0;
	}
	block = dfs_btree_get_block(cur, level, &bp);
	numrecs = block->numrecs;
	if (ptr > numrecs) {
		*stat = 0;
		return 0;
	}

	dfs_btree_copy_entries(cur, level, block, ptr, block, ptr + 1, numrecs - ptr);
	block->numrecs = (uint16_t)--numrecs;
	dfs_btree_log(cur, bp);
	if (ptr == 1 && numrecs > 0)
		dfs_btree_update_keys(cur, level);

	if (level == cur->bc_nlevels - 1) {
		/* the root may hold anything down to one child */
		if (numrecs == 1 && level > 0) {
			error = dfs_btree_kill_root(cur, level);
			if (error)
				return error;
			*rebalanced = true;
		}
		*stat = 1;
		return 0;
	}
	if (numrecs >= dfs_btree_get_minrecs(cur, level)) {
		*stat = 1;
		return 0;
	}

	*rebalanced = true;
	lsib = block->leftsib;
	rsib = block->rightsib;
	if (lsib == DFS_NULLFSBLOCK && rsib == DFS_NULLFSBLOCK)
		return dfs_btree_corrupt(cur, bp->b_blkno, "non-root block without siblings");

	/* Borrow from the right: walk a copy of the cursor onto the right
	 * block and shift its first entry over to us. */
	rrecs = lrecs = 0;
	if (rsib != DFS_NULLFSBLOCK) {
		dfs_btree_dup_cursor(cur, &tcur);
		dfs_btree_lastrec(&tcur, level);
		error = dfs_btree_increment(&tcur, level, &i);
		if (!error && !i)
			error = dfs_btree_corrupt(cur, bp->b_blkno, "right sibling unreachable");
		if (error)
			goto out_tcur;
		right = dfs_btree_get_block(&tcur, level, &rbp);
		rrecs = right->numrecs;
		if (rrecs - 1 >= dfs_btree_get_minrecs(cur, level)) {
			dfs_btree_firstrec(&tcur, level);
			error = dfs_btree_lshift(&tcur, level, &i);
			if (!error && !i)
				error = dfs_btree_corrupt(cur, rbp->b_blkno, "cannot shift left");
			dfs_btree_del_cursor(&tcur, error);
			if (error)
				return error;
			*stat = 1;
			return 0;
		}
		dfs_btree_del_cursor(&tcur, 0);
	}
	/* Borrow from the left: its last entry becomes our first. */
	if (lsib != DFS_NULLFSBLOCK) {
		dfs_btree_dup_cursor(cur, &tcur);
		dfs_btree_firstrec(&tcur, level);
		error = dfs_btree_decrement(&tcur, level, &i);
		if (!error && !i)
			error = dfs_btree_corrupt(cur, bp->b_blkno, "left sibling unreachable");
		if (error)
			goto out_tcur;
		left = dfs_btree_get_block(&tcur, level, &lbp);
		lrecs = left->numrecs;
		if (lrecs - 1 >= dfs_btree_get_minrecs(cur, level)) {
			dfs_btree_lastrec(&tcur, level);
			error = dfs_btree_rshift(&tcur, level, &i);
			if (!error && !i)
				error = dfs_btree_corrupt(cur, lbp->b_blkno, "cannot shift right");
			dfs_btree_del_cursor(&tcur, error);
			if (error)
				return error;
			cur->bc_ptrs[level]++;
			*stat = 1;
			return 0;
		}
		dfs_btree_del_cursor(&tcur, 0);
	}

	/* Join: everything of the right block of the pair goes to the left. */
	if (lsib != DFS_NULLFSBLOCK && lrecs + numrecs <= dfs_btree_get_maxrecs(cur, level)) {
		error = dfs_btree_read_buf(cur, lsib, &lbp);
		if (error)
			return error;
		sbp = lbp;
		rbp = bp;
		joined_left = true;
	} else if (rsib != DFS_NULLFSBLOCK &&
		   rrecs + numrecs <= dfs_btree_get_maxrecs(cur, level)) {
		error = dfs_btree_read_buf(cur, rsib, &rbp);
		if (error)
			return error;
		sbp = rbp;
		lbp = bp;
		joined_left = false;
	} else {
		/* neither sibling can spare an entry nor take ours: stay short */
		*stat = 1;
		return 0;
	}
	error = dfs_btree_check_block(cur, sbp, level);
	if (error)
		goto out_sbp;
	left = dfs_btree_blk(lbp);
	right = dfs_btree_blk(rbp);
	lrecs = left->numrecs;
	rrecs = right->numrecs;
	dfs_btree_copy_entries(cur, level, left, lrecs + 1, right, 1, rrecs);
	left->numrecs = (uint16_t)(lrecs + rrecs);
	left->rightsib = right->rightsib;
	dfs_btree_log(cur, lbp);
	if (left->rightsib != DFS_NULLFSBLOCK) {
		struct dfs_buf *rrbp;

		error = dfs_btree_read_buf(cur, left->rightsib, &rrbp);
		if (error)
			goto out_sbp;
		error = dfs_btree_check_block(cur, rrbp, level);
		if (!error) {
			dfs_btree_blk(rrbp)->leftsib = lbp->b_blkno;
			dfs_btree_log(cur, rrbp);
		}
		dfs_btree_put_buf(cur, rrbp);
		if (error)
			goto out_sbp;
	}
	cur->bc_stats_joins++;

	if (joined_left) {
		/* the cursor follows its entries into the left block; the
		 * parent entry to delete is ours, where the cursor points */
		if (!cur->bc_tp)
			dfs_buf_hold(lbp);
		error = dfs_btree_free_block(cur, rbp);
		if (error)
			goto out_sbp;
		dfs_btree_setbuf(cur, level, lbp);
		cur->bc_ptrs[level] += lrecs;
	} else {
		/* the right block goes: its parent entry is the next one */
		if (lrecs == 0)
			dfs_btree_update_keys(cur, level);
		error = dfs_btree_free_block(cur, rbp);
		if (error)
			goto out_sbp;
		error = dfs_btree_increment(cur, level + 1, &i);
		if (!error && !i)
			error = dfs_btree_corrupt(cur, bp->b_blkno, "joined block's parent entry lost");
		if (error)
			goto out_sbp;
	}
	dfs_btree_put_buf(cur, sbp);
	*stat = 2;
	return 0;

out_sbp:
	dfs_btree_put_buf(cur, sbp);
	return error;
out_tcur:
	dfs_btree_del_cursor(&tcur, error);
	return error;
}

int dfs_btree_delete(struct dfs_btree_cur *cur, int *stat)
{
	union dfs_btree_rec deleted, saved = cur->bc_rec;
	bool rebalanced = false;
	int level, i = 0, error;

	assert(cur->bc_tp);
	error = dfs_btree_get_rec(cur, &deleted, &i);
	if (error)
		return error;
	if (!i) {
		*stat = 0;
		return 0;
	}
	for (level = 0, i = 2; i == 2; level++) {
		error = dfs_btree_delrec(cur, level, &i, &rebalanced);
		if (error)
			return error;
	}
	i = 1;
	/*
	 * Rebalancing moved entries between blocks under the cursor: find the
	 * place of the deleted record again (its successor, or past the end).
	 */
	if (rebalanced) {
		cur->bc_rec = deleted;
		error = dfs_btree_lookup(cur, DFS_LOOKUP_GE, &level);
		cur->bc_rec = saved;
		if (error)
			return error;
	}
	*stat = i;
	return 0;
}

/* ---- walks -------------------------------------------------------------- */

/* Position the cursor before the first record: the left edge of every level. */
static int dfs_btree_goto_left_edge(struct dfs_btree_cur *cur)
{
	struct dfs_btree_block *block;
	struct dfs_buf *bp;
	int level, error;

	error = dfs_btree_load_root(cur);
	if (error)
		return error;
	for (level = cur->bc_nlevels - 1; level > 0; level--) {
		block = dfs_btree_get_block(cur, level, &bp);
		cur->bc_ptrs[level] = 1;
		error = dfs_btree_read_child(cur, level - 1, *dfs_btree_ptr_addr(cur, 1, block));
		if (error)
			return error;
	}
	cur->bc_ptrs[0] = 1;
	return 0;
}

int dfs_btree_query_all(struct dfs_btree_cur *cur, dfs_btree_rec_fn fn, void *priv)
{
	union dfs_btree_rec rec;
	int stat, error;

	error = dfs_btree_goto_left_edge(cur);
	if (error)
		return error;
	for (;;) {
		error = dfs_btree_get_rec(cur, &rec, &stat);
		if (error)
			return error;
		if (!stat)
			return 0;
		error = fn(cur, &rec, priv);
		if (error)
			return error;
		error = dfs_btree_increment(cur, 0, &stat);
		if (error || !stat)
			return error;
	}
}

int dfs_btree_visit_blocks(struct dfs_btree_cur *cur, dfs_btree_blk_fn fn, void *priv)
{
	struct dfs_btree_block *block;
	struct dfs_buf *bp;
	uint64_t first, next;
	int level, error;

	error = dfs_btree_load_root(cur);
	if (error)
		return error;
	first = cur->bc_bufs[cur->bc_nlevels - 1]->b_blkno;
	for (level = cur->bc_nlevels - 1; level >= 0; level--) {
		uint64_t down = DFS_NULLFSBLOCK;
		uint64_t nblocks = 0;

		for (next = first; next != DFS_NULLFSBLOCK; next = block->rightsib) {
			if (++nblocks > cur->bc_mp->m_dblocks)
				return dfs_btree_corrupt(cur, first, "sibling list loops");
			error = dfs_btree_read_child(cur, level, next);
			if (error)
				return error;
			block = dfs_btree_get_block(cur, level, &bp);
			if (down == DFS_NULLFSBLOCK && level > 0)
				down = *dfs_btree_ptr_addr(cur, 1, block);
			error = fn(cur, level, next, priv);
			if (error)
				return error;
		}
		first = down;
	}
	return 0;
}

/* ---- the invariant checker ---------------------------------------------- */

struct dfs_btree_check_state {
	uint64_t prev[DFS_BTREE_MAXLEVELS];	/* last block seen at each level */
	uint64_t prev_rsib[DFS_BTREE_MAXLEVELS]; /* and its right sibling */
	union dfs_btree_key last;		/* last record key, in order */
	bool have_last;
	uint64_t nblocks;
};

static int dfs_btree_check_subtree(struct dfs_btree_cur *cur, struct dfs_btree_check_state *st,
				   int level, uint64_t fsbno, const union dfs_btree_key *pkey)
{
	const struct dfs_btree_ops *ops = cur->bc_ops;
	struct dfs_btree_block *block;
	union dfs_btree_key key, prevkey;
	struct dfs_buf *bp;
	char why[128];
	int i, error;
	bool is_root = level == cur->bc_nlevels - 1;

	if (++st->nblocks > cur->bc_mp->m_dblocks)
		return dfs_btree_corrupt(cur, fsbno, "tree has more blocks than the filesystem");
	error = dfs_btree_read_buf(cur, fsbno, &bp);
	if (error)
		return error;
	error = dfs_btree_check_block(cur, bp, level);
	if (error)
		goto out;
	block = dfs_btree_blk(bp);

	if (ops->owner && block->hdr.owner != ops->owner(cur)) {
		snprintf(why, sizeof(why), "owner %" PRIu64 ", expected %" PRIu64, block->hdr.owner,
			 ops->owner(cur));
		error = dfs_btree_corrupt(cur, fsbno, why);
		goto out;
	}
	if (is_root) {
		if (level > 0 && block->numrecs < 2) {
			error = dfs_btree_corrupt(cur, fsbno, "root node with a single child");
			goto out;
		}
		if (block->leftsib != DFS_NULLFSBLOCK || block->rightsib != DFS_NULLFSBLOCK) {
			error = dfs_btree_corrupt(cur, fsbno, "root has siblings");
			goto out;
		}
	} else if (block->numrecs < dfs_btree_get_minrecs(cur, level)) {
		snprintf(why, sizeof(why), "%u entries at level %d, fewer than the minimum %d",
			 block->numrecs, level, dfs_btree_get_minrecs(cur, level));
		error = dfs_btree_corrupt(cur, fsbno, why);
		goto out;
	}

	/* siblings: the chain at this level runs in key order */
	if (block->leftsib != st->prev[level]) {
		snprintf(why, sizeof(why), "left sibling %" PRIu64 ", but the block before it is %" PRIu64,
			 block->leftsib, st->prev[level]);
		error = dfs_btree_corrupt(cur, fsbno, why);
		goto out;
	}
	if (st->prev[level] != DFS_NULLFSBLOCK && st->prev_rsib[level] != fsbno) {
		snprintf(why, sizeof(why), "block before it, %" PRIu64 ", names %" PRIu64 " as its right sibling",
			 st->prev[level], st->prev_rsib[level]);
		error = dfs_btree_corrupt(cur, fsbno, why);
		goto out;
	}
	st->prev[level] = fsbno;
	st->prev_rsib[level] = block->rightsib;

	for (i = 1; i <= block->numrecs; i++) {
		dfs_btree_get_entry_key(cur, level, i, block, &key);
		if (i == 1 && pkey && ops->cmp_keys(&key, pkey) != 0) {
			error = dfs_btree_corrupt(cur, fsbno, "first key differs from its parent's key");
			goto out;
		}
		if (i > 1 && ops->cmp_keys(&prevkey, &key) >= 0) {
			snprintf(why, sizeof(why), "keys %d and %d out of order", i - 1, i);
			error = dfs_btree_corrupt(cur, fsbno, why);
			goto out;
		}
		prevkey = key;
		if (level == 0) {
			union dfs_btree_rec rec;

			memset(&rec, 0, sizeof(rec));
			memcpy(&rec, dfs_btree_rec_addr(cur, i, block), ops->rec_len);
			if (ops->rec_valid && !ops->rec_valid(cur, &rec)) {
				snprintf(why, sizeof(why), "record %d is invalid", i);
				error = dfs_btree_corrupt(cur, fsbno, why);
				goto out;
			}
			if (st->have_last && ops->cmp_keys(&st->last, &key) >= 0) {
				error = dfs_btree_corrupt(cur, fsbno,
							  "records out of order across blocks");
				goto out;
			}
			st->last = key;
			st->have_last = true;
		} else {
			uint64_t child = *dfs_btree_ptr_addr(cur, i, block);

			error = dfs_btree_check_subtree(cur, st, level - 1, child, &key);
			if (error)
				goto out;
		}
	}
out:
	dfs_btree_put_buf(cur, bp);
	return error;
}

int dfs_btree_check(struct dfs_btree_cur *cur)
{
	struct dfs_btree_check_state st;
	uint64_t root;
	int nlevels, level, error;

	memset(&st, 0, sizeof(st));
	for (level = 0; level < DFS_BTREE_MAXLEVELS; level++)
		st.prev[level] = DFS_NULLFSBLOCK;
	cur->bc_ops->get_root(cur, &root, &nlevels);
	if (nlevels < 1 || nlevels > DFS_BTREE_MAXLEVELS)
		return dfs_btree_corrupt(cur, root, "tree height out of range");
	/* the walk needs the cursor's height for the root tests */
	for (level = nlevels; level < cur->bc_nlevels; level++)
		dfs_btree_setbuf(cur, level, NULL);
	cur->bc_nlevels = nlevels;
	error = dfs_btree_check_subtree(cur, &st, nlevels - 1, root, NULL);
	if (error)
		return error;
	/* every level's chain ends where the walk ended */
	for (level = 0; level < nlevels; level++)
		if (st.prev_rsib[level] != DFS_NULLFSBLOCK)
			return dfs_btree_corrupt(cur, st.prev[level],
						 "last block of its level has a right sibling");
	return 0;
}

/* ---- buffer verification helper ----------------------------------------- */

int dfs_btree_verify_block(struct dfs_buf *bp, const struct dfs_btree_ops *ops)
{
	const struct dfs_btree_block *block = bp->b_addr;
	struct dfs_mount *mp = bp->b_mount;
	const char *name = ops->buf_ops ? ops->buf_ops->name : "btree";
	char why[96];

	if (block->hdr.magic != ops->magic)
		return dfs_corrupt(mp, name, bp->b_blkno, "bad magic");
	if (block->level >= DFS_BTREE_MAXLEVELS) {
		snprintf(why, sizeof(why), "level %u", block->level);
		return dfs_corrupt(mp, name, bp->b_blkno, why);
	}
	if (block->numrecs > dfs_btree_maxrecs(mp, ops, block->level == 0)) {
		snprintf(why, sizeof(why), "%u records at level %u", block->numrecs, block->level);
		return dfs_corrupt(mp, name, bp->b_blkno, why);
	}
	if ((block->leftsib != DFS_NULLFSBLOCK && block->leftsib >= mp->m_dblocks) ||
	    (block->rightsib != DFS_NULLFSBLOCK && block->rightsib >= mp->m_dblocks))
		return dfs_corrupt(mp, name, bp->b_blkno, "sibling outside the filesystem");
	return 0;
}
