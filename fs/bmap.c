// SPDX-License-Identifier: MIT
/*
 * File block mapping (XFS's xfs_bmap.c). The in-core extent list i_df is the
 * truth the rest of deepfs asks; every change to a real extent is made to
 * it and, in the same transaction, to the on-disk fork: the inline array
 * (written out whole by dfs_trans_log_inode through dfs_bmap_format_fork) or
 * the bmbt records. The case tables below follow XFS's: a change fills the
 * whole of an extent or its left part, its right part or its middle, and
 * merges with neighbours of the same kind.
 *
 * Delayed allocation reserves the data blocks and, for the bmbt blocks their
 * conversion may need, a worst-case "indirect" reservation per delalloc
 * extent (XFS's indlen). deepfs keeps the indirect reservation per inode
 * (i_delayed_indlen) and rebalances it to the sum of the per-extent worst
 * cases after every change: merging releases blocks, splitting asks for
 * more (and may stay short if the disk is full, as XFS's split_indlen
 * steals).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "bmap.h"
#include "btree.h"
#include "buf.h"
#include "deepfs.h"
#include "inode.h"
#include "mount.h"
#include "msg.h"
#include "pagecache.h"
#include "trans.h"

#define DFS_NULLFILEOFF		UINT64_MAX

/* Extents converted or unmapped per transaction, to bound its size. */
#define DFS_BUNMAPI_MAX_REAL	4

static inline bool isnullstartblock(uint64_t b)
{
	return b == DFS_DELAYSTARTBLOCK;
}

static inline bool dfs_bmap_is_real(const struct dfs_bmbt_irec *irec)
{
	return irec->br_startblock != DFS_DELAYSTARTBLOCK &&
	       irec->br_startblock != DFS_HOLESTARTBLOCK;
}

static inline uint64_t dfs_irec_end(const struct dfs_bmbt_irec *irec)
{
	return irec->br_startoff + irec->br_blockcount;
}

/* ---- the in-core extent list (XFS's xfs_iext_*) -------------------------- */

/* Room for extra more records, made before a change starts so that nothing
 * can fail half way through one. */
static int dfs_iext_reserve(struct dfs_ifork *ifp, uint32_t extra)
{
	uint32_t need = ifp->if_nextents + extra;
	uint32_t cap;
	struct dfs_bmbt_irec *ext;

	if (need <= ifp->if_cap)
		return 0;
	cap = ifp->if_cap ? ifp->if_cap * 2 : 16;
	if (cap < need)
		cap = need;
	ext = realloc(ifp->if_ext, (size_t)cap * sizeof(*ext));
	if (!ext)
		return -ENOMEM;
	ifp->if_ext = ext;
	ifp->if_cap = cap;
	return 0;
}

static void dfs_iext_insert(struct dfs_ifork *ifp, uint32_t idx, const struct dfs_bmbt_irec *irec)
{
	assert(ifp->if_nextents < ifp->if_cap && idx <= ifp->if_nextents);
	memmove(&ifp->if_ext[idx + 1], &ifp->if_ext[idx],
		(ifp->if_nextents - idx) * sizeof(*irec));
	ifp->if_ext[idx] = *irec;
	ifp->if_nextents++;
}

static void dfs_iext_remove(struct dfs_ifork *ifp, uint32_t idx, uint32_t cnt)
{
	assert(idx + cnt <= ifp->if_nextents);
	memmove(&ifp->if_ext[idx], &ifp->if_ext[idx + cnt],
		(ifp->if_nextents - idx - cnt) * sizeof(*ifp->if_ext));
	ifp->if_nextents -= cnt;
}

static bool dfs_iext_get_extent(const struct dfs_ifork *ifp, uint32_t idx,
				struct dfs_bmbt_irec *got)
{
	if (idx >= ifp->if_nextents)
		return false;
	*got = ifp->if_ext[idx];
	return true;
}

static void dfs_iext_update_extent(struct dfs_ifork *ifp, uint32_t idx,
				   const struct dfs_bmbt_irec *irec)
{
	assert(idx < ifp->if_nextents);
	ifp->if_ext[idx] = *irec;
}

/* The first extent that ends after bno: *idx is its index (or if_nextents
 * when there is none, which is where an extent at bno would go). */
static bool dfs_iext_lookup_extent(const struct dfs_ifork *ifp, uint64_t bno, uint32_t *idx,
				   struct dfs_bmbt_irec *got)
{
	uint32_t lo = 0, hi = ifp->if_nextents;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (dfs_irec_end(&ifp->if_ext[mid]) <= bno)
			lo = mid + 1;
		else
			hi = mid;
	}
	*idx = lo;
	return dfs_iext_get_extent(ifp, lo, got);
}

uint32_t dfs_bmap_real_extents(const struct dfs_inode *ip)
{
	const struct dfs_ifork *ifp = &ip->i_df;
	uint32_t i, n = 0;

	for (i = 0; i < ifp->if_nextents; i++)
		if (!isnullstartblock(ifp->if_ext[i].br_startblock))
			n++;
	return n;
}

/* ---- geometry of the worst case ------------------------------------------ */

static uint32_t dfs_bmbt_maxrecs(const struct dfs_mount *mp, bool leaf)
{
	uint32_t room = mp->m_blocksize - sizeof(struct dfs_btree_block);

	if (leaf)
		return room / sizeof(struct dfs_bmbt_rec);
	return room / (sizeof(struct dfs_bmbt_key) + sizeof(uint64_t));
}

/* Height a bmbt may reach: a file has at most one extent per block of the
 * filesystem, and blocks may be only half full (XFS's
 * xfs_bmap_compute_maxlevels). */
static uint32_t dfs_bmap_maxlevels(const struct dfs_mount *mp)
{
	uint64_t maxrecs = mp->m_dblocks < (1ull << 32) ? mp->m_dblocks : (1ull << 32);
	uint64_t minleaf = dfs_bmbt_maxrecs(mp, true) / 2;
	uint64_t minnode = dfs_bmbt_maxrecs(mp, false) / 2;
	uint64_t cap = minleaf;
	uint32_t levels = 1;

	while (cap < maxrecs && levels < DFS_BTREE_MAXLEVELS) {
		cap *= minnode;
		levels++;
	}
	return levels;
}

/* Blocks that adding one extent may need: a split at every level, a new
 * root, and the extents -> btree conversion. */
uint32_t dfs_bmap_ext_res(const struct dfs_mount *mp)
{
	return dfs_bmap_maxlevels(mp) + 2;
}

/* bmbt blocks that converting len delalloc blocks may need in the worst
 * case, each block becoming its own extent (XFS's xfs_bmap_worst_indlen). */
static uint64_t dfs_bmap_worst_indlen(const struct dfs_mount *mp, uint64_t len)
{
	uint32_t maxlevels = dfs_bmap_maxlevels(mp);
	uint64_t maxrecs = dfs_bmbt_maxrecs(mp, true);
	uint64_t rval = 0;
	uint32_t level;

	for (level = 0; level < maxlevels; level++) {
		len = (len + maxrecs - 1) / maxrecs;
		rval += len;
		if (len == 1)
			return rval + maxlevels - level - 1;
		if (level == 0)
			maxrecs = dfs_bmbt_maxrecs(mp, false);
	}
	return rval;
}

/*
 * Bring the inode's indirect reservation to the worst case of its delalloc
 * extents. With strict, failing to get more is -ENOSPC; without, the
 * reservation stays short (the conversion's transaction reserves for
 * itself anyway).
 */
static int dfs_bmap_rebalance_indlen(struct dfs_inode *ip, bool strict)
{
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_ifork *ifp = &ip->i_df;
	uint64_t target = 0, diff;
	uint32_t i;

	for (i = 0; i < ifp->if_nextents; i++)
		if (isnullstartblock(ifp->if_ext[i].br_startblock))
			target += dfs_bmap_worst_indlen(mp, ifp->if_ext[i].br_blockcount);
	if (target < ip->i_delayed_indlen) {
		diff = ip->i_delayed_indlen - target;
		dfs_mod_fdblocks(mp, (int64_t)diff);
		mp->m_delalloc_blocks -= diff;
		ip->i_delayed_indlen = target;
	} else if (target > ip->i_delayed_indlen) {
		diff = target - ip->i_delayed_indlen;
		if (dfs_mod_fdblocks(mp, -(int64_t)diff))
			return strict ? -ENOSPC : 0;
		mp->m_delalloc_blocks += diff;
		ip->i_delayed_indlen = target;
	}
	return 0;
}

/* ---- the reserve pool ------------------------------------------------------ */

void dfs_bmap_reserve_init(struct dfs_mount *mp)
{
	uint64_t want = mp->m_fdblocks / 32;

	if (want > 256)
		want = 256;
	if (want < 2ull * dfs_bmap_ext_res(mp) && mp->m_fdblocks >= 4ull * dfs_bmap_ext_res(mp))
		want = 2ull * dfs_bmap_ext_res(mp);
	mp->m_resblks = want;
	mp->m_resblks_avail = 0;
	dfs_bmap_reserve_refill(mp);
}

void dfs_bmap_reserve_refill(struct dfs_mount *mp)
{
	uint64_t take;

	if (mp->m_resblks_avail >= mp->m_resblks)
		return;
	take = mp->m_resblks - mp->m_resblks_avail;
	if (take > mp->m_fdblocks)
		take = mp->m_fdblocks;
	if (take && !dfs_mod_fdblocks(mp, -(int64_t)take))
		mp->m_resblks_avail += take;
}

int dfs_bmap_trans_alloc_reserved(struct dfs_mount *mp, uint32_t blkres, struct dfs_trans **tpp)
{
	int error = dfs_trans_alloc(mp, blkres, tpp);

	if (error != -ENOSPC || mp->m_resblks_avail < blkres)
		return error;
	mp->m_resblks_avail -= blkres;
	dfs_mod_fdblocks(mp, blkres);
	return dfs_trans_alloc(mp, blkres, tpp);
}

/* ---- on-disk records ------------------------------------------------------ */

static bool dfs_bmap_irec_valid(const struct dfs_mount *mp, const struct dfs_bmbt_irec *irec)
{
	if (irec->br_blockcount == 0 || irec->br_blockcount > DFS_MAX_EXTLEN)
		return false;
	if (irec->br_state != DFS_EXT_NORM && irec->br_state != DFS_EXT_UNWRITTEN)
		return false;
	if (irec->br_startblock >= mp->m_dblocks ||
	    irec->br_blockcount > mp->m_dblocks - irec->br_startblock)
		return false;
	if (dfs_irec_end(irec) < irec->br_startoff)
		return false;
	return dfs_fsb_to_agno(mp, irec->br_startblock) ==
	       dfs_fsb_to_agno(mp, irec->br_startblock + irec->br_blockcount - 1);
}

static void dfs_bmbt_disk_set(struct dfs_bmbt_rec *rec, const struct dfs_bmbt_irec *irec)
{
	rec->startoff = irec->br_startoff;
	rec->startblock = irec->br_startblock;
	rec->blockcount = (uint32_t)irec->br_blockcount;
	rec->state = irec->br_state;
}

static void dfs_bmbt_disk_get(const struct dfs_bmbt_rec *rec, struct dfs_bmbt_irec *irec)
{
	irec->br_startoff = rec->startoff;
	irec->br_startblock = rec->startblock;
	irec->br_blockcount = rec->blockcount;
	irec->br_state = rec->state;
}

static int dfs_bmbt_lookup_eq(struct dfs_btree_cur *cur, const struct dfs_bmbt_irec *irec,
			      int *stat)
{
	memset(&cur->bc_rec, 0, sizeof(cur->bc_rec));
	dfs_bmbt_disk_set(&cur->bc_rec.bmbt, irec);
	return dfs_btree_lookup(cur, DFS_LOOKUP_EQ, stat);
}

/*
 * The three record changes of the case tables. With no cursor the fork is
 * an inline array, which dfs_trans_log_inode writes out whole.
 */
static int dfs_bmap_disk_update(struct dfs_btree_cur *cur, uint64_t oldoff,
				const struct dfs_bmbt_irec *irec)
{
	struct dfs_bmbt_irec key = { .br_startoff = oldoff };
	union dfs_btree_rec rec;
	int error, stat;

	if (!cur)
		return 0;
	error = dfs_bmbt_lookup_eq(cur, &key, &stat);
	if (error)
		return error;
	if (!stat)
		return dfs_corrupt(cur->bc_mp, "bmbt", oldoff, "extent to update is missing");
	memset(&rec, 0, sizeof(rec));
	dfs_bmbt_disk_set(&rec.bmbt, irec);
	return dfs_btree_update(cur, &rec);
}

static int dfs_bmap_disk_insert(struct dfs_btree_cur *cur, const struct dfs_bmbt_irec *irec)
{
	int error, stat;

	if (!cur)
		return 0;
	error = dfs_bmbt_lookup_eq(cur, irec, &stat);
	if (error)
		return error;
	if (stat)
		return dfs_corrupt(cur->bc_mp, "bmbt", irec->br_startoff,
				   "extent to insert is already there");
	error = dfs_btree_insert(cur, &stat);
	if (error)
		return error;
	if (!stat)
		return dfs_corrupt(cur->bc_mp, "bmbt", irec->br_startoff, "insert failed");
	return 0;
}

static int dfs_bmap_disk_delete(struct dfs_btree_cur *cur, uint64_t off)
{
	struct dfs_bmbt_irec key = { .br_startoff = off };
	int error, stat;

	if (!cur)
		return 0;
	error = dfs_bmbt_lookup_eq(cur, &key, &stat);
	if (error)
		return error;
	if (!stat)
		return dfs_corrupt(cur->bc_mp, "bmbt", off, "extent to delete is missing");
	error = dfs_btree_delete(cur, &stat);
	if (error)
		return error;
	if (!stat)
		return dfs_corrupt(cur->bc_mp, "bmbt", off, "delete failed");
	return 0;
}

/*
 * A freed block of a directory or symlink may sit in the buffer cache, maybe
 * dirty: it must never be written over whatever reuses the block.
 */
static int dfs_bmap_stale_blocks(struct dfs_trans *tp, struct dfs_inode *ip, uint64_t fsbno,
				 uint64_t len)
{
	struct dfs_mount *mp = ip->i_mount;
	uint64_t b;
	int error;

	if (dfs_isreg(ip))
		return 0;
	for (b = fsbno; b < fsbno + len; b++) {
		struct dfs_buf *bp = dfs_buf_incore(mp, b);

		if (!bp)
			continue;
		dfs_buf_relse(bp);
		error = dfs_trans_get_buf(tp, b, NULL, &bp);
		if (error)
			return error;
		dfs_trans_binval(tp, bp);
	}
	return 0;
}

/* ---- fork format conversions ---------------------------------------------- */

/* XFS's xfs_bmap_extents_to_btree: the inline array overflowed; its real
 * extents move into a new root leaf. */
static int dfs_bmap_extents_to_btree(struct dfs_trans *tp, struct dfs_inode *ip,
				     uint64_t firstblock)
{
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_ifork *ifp = &ip->i_df;
	struct dfs_alloc_arg args;
	struct dfs_btree_block *block;
	struct dfs_bmbt_rec *recs;
	struct dfs_buf *bp;
	uint32_t i, n = 0;
	int error;

	memset(&args, 0, sizeof(args));
	args.tp = tp;
	args.mp = mp;
	args.fsbno = firstblock != DFS_NULLFSBLOCK ? firstblock : dfs_ino_to_fsb(mp, ip->i_ino);
	args.type = DFS_ALLOCTYPE_START_BNO;
	args.minlen = args.maxlen = args.prod = 1;
	args.owner = ip->i_ino;
	error = dfs_alloc_vextent(&args);
	if (error)
		return error;
	if (args.fsbno == DFS_NULLFSBLOCK)
		return -ENOSPC;
	error = dfs_btree_init_block(tp, &dfs_bmbt_ops, args.fsbno, ip->i_ino, 0, &bp);
	if (error)
		return error;
	block = bp->b_addr;
	recs = (struct dfs_bmbt_rec *)(block + 1);
	for (i = 0; i < ifp->if_nextents; i++) {
		if (isnullstartblock(ifp->if_ext[i].br_startblock))
			continue;
		assert(n < dfs_bmbt_maxrecs(mp, true));
		dfs_bmbt_disk_set(&recs[n++], &ifp->if_ext[i]);
	}
	block->numrecs = (uint16_t)n;
	dfs_trans_log_buf(tp, bp);
	ip->i_nblocks++;
	ifp->if_format = DFS_DINODE_FMT_BTREE;
	ifp->if_broot.root = args.fsbno;
	ifp->if_broot.level = 1;
	ifp->if_broot.pad = 0;
	return 0;
}

struct dfs_bmap_blklist {
	uint64_t *blks;
	uint32_t n, cap;
};

static int dfs_bmap_collect_block(struct dfs_btree_cur *cur, int level, uint64_t fsbno,
				  void *priv)
{
	struct dfs_bmap_blklist *bl = priv;

	if (bl->n == bl->cap) {
		uint32_t cap = bl->cap ? bl->cap * 2 : 8;
		uint64_t *p = realloc(bl->blks, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		bl->blks = p;
		bl->cap = cap;
	}
	bl->blks[bl->n++] = fsbno;
	return 0;
}

/* XFS's xfs_bmap_btree_to_extents: the real extents fit inline again; the
 * bmbt's blocks are freed. */
static int dfs_bmap_btree_to_extents(struct dfs_trans *tp, struct dfs_inode *ip)
{
	struct dfs_ifork *ifp = &ip->i_df;
	struct dfs_bmap_blklist bl = { 0 };
	struct dfs_btree_cur cur;
	struct dfs_buf *bp;
	uint32_t i;
	int error;

	dfs_bmbt_init_cursor(&cur, tp, ip);
	error = dfs_btree_visit_blocks(&cur, dfs_bmap_collect_block, &bl);
	dfs_btree_del_cursor(&cur, error);
	if (error)
		goto out;
	for (i = 0; i < bl.n; i++) {
		error = dfs_free_extent(tp, bl.blks[i], 1);
		if (error)
			goto out;
		error = dfs_trans_get_buf(tp, bl.blks[i], dfs_bmbt_ops.buf_ops, &bp);
		if (error)
			goto out;
		dfs_trans_binval(tp, bp);
		ip->i_nblocks--;
	}
	ifp->if_format = DFS_DINODE_FMT_EXTENTS;
	memset(&ifp->if_broot, 0, sizeof(ifp->if_broot));
out:
	free(bl.blks);
	return error;
}

/* The cursor of a change, when the fork is a btree. */
static void dfs_bmap_cur_setup(struct dfs_trans *tp, struct dfs_inode *ip,
			       struct dfs_btree_cur *curbuf, struct dfs_btree_cur **curp)
{
	if (!*curp && ip->i_df.if_format == DFS_DINODE_FMT_BTREE) {
		dfs_bmbt_init_cursor(curbuf, tp, ip);
		*curp = curbuf;
	}
}

/* End of a change: drop the cursor and move the fork to the format its
 * real extent count calls for. */
static int dfs_bmap_finish(struct dfs_trans *tp, struct dfs_inode *ip,
			   struct dfs_btree_cur **curp, uint64_t firstblock, int error)
{
	uint32_t real;

	if (*curp) {
		if (!error && (*curp)->bc_private.b.firstblock != DFS_NULLFSBLOCK)
			firstblock = (*curp)->bc_private.b.firstblock;
		dfs_btree_del_cursor(*curp, error);
		*curp = NULL;
	}
	if (error)
		return error;
	real = dfs_bmap_real_extents(ip);
	if (ip->i_df.if_format == DFS_DINODE_FMT_EXTENTS && real > DFS_INLINE_EXTENTS)
		return dfs_bmap_extents_to_btree(tp, ip, firstblock);
	if (ip->i_df.if_format == DFS_DINODE_FMT_BTREE && real <= DFS_INLINE_EXTENTS)
		return dfs_bmap_btree_to_extents(tp, ip);
	return 0;
}

/* A change failed after it modified the in-core list: in-core and on-disk
 * state no longer agree, so the filesystem stops (XFS's shutdown on the
 * cancel of a dirty transaction). */
static void dfs_bmap_shutdown(struct dfs_inode *ip, const char *what, int error)
{
	struct dfs_mount *mp = ip->i_mount;

	if (!mp->m_shutdown)
		dfs_err(mp, "%s failed on inode %" PRIu64 " after changing it (%s): shutting down",
			what, ip->i_ino, strerror(-error));
	mp->m_shutdown = true;
}

/* ---- the case tables -------------------------------------------------------- */

#define BMAP_LEFT_CONTIG	(1 << 0)
#define BMAP_RIGHT_CONTIG	(1 << 1)
#define BMAP_LEFT_FILLING	(1 << 2)
#define BMAP_RIGHT_FILLING	(1 << 3)
#define BMAP_LEFT_DELAY		(1 << 4)
#define BMAP_RIGHT_DELAY	(1 << 5)
#define BMAP_LEFT_VALID		(1 << 6)
#define BMAP_RIGHT_VALID	(1 << 7)

/* Can a (real, on the left) and b (real) become one extent? */
static bool dfs_bmap_contig(const struct dfs_bmbt_irec *a, const struct dfs_bmbt_irec *b)
{
	return dfs_irec_end(a) == b->br_startoff &&
	       a->br_startblock + a->br_blockcount == b->br_startblock &&
	       a->br_state == b->br_state &&
	       a->br_blockcount + b->br_blockcount <= DFS_MAX_EXTLEN;
}

/* Neighbours of the extent at idx (or of a hole before idx, with hole). */
static int dfs_bmap_neighbours(const struct dfs_ifork *ifp, uint32_t idx, bool hole,
			       struct dfs_bmbt_irec *left, struct dfs_bmbt_irec *right)
{
	int state = 0;

	if (idx > 0) {
		dfs_iext_get_extent(ifp, idx - 1, left);
		state |= BMAP_LEFT_VALID;
		if (isnullstartblock(left->br_startblock))
			state |= BMAP_LEFT_DELAY;
	}
	if (dfs_iext_get_extent(ifp, hole ? idx : idx + 1, right)) {
		state |= BMAP_RIGHT_VALID;
		if (isnullstartblock(right->br_startblock))
			state |= BMAP_RIGHT_DELAY;
	}
	return state;
}

/*
 * A delalloc extent (bma->icur) got real blocks for [bma->offset,
 * +bma->length): XFS's xfs_bmap_add_extent_delay_real. The new extent is
 * unwritten until the data is on disk.
 */
static int dfs_bmap_add_extent_delay_real(struct dfs_bmalloca *bma)
{
	struct dfs_inode *ip = bma->ip;
	struct dfs_ifork *ifp = &ip->i_df;
	struct dfs_btree_cur *cur = bma->cur;
	struct dfs_bmbt_irec new = {
		.br_startoff = bma->offset, .br_startblock = bma->blkno,
		.br_blockcount = bma->length, .br_state = DFS_EXT_UNWRITTEN,
	};
	struct dfs_bmbt_irec PREV, LEFT, RIGHT, r;
	uint32_t idx = bma->icur;
	uint64_t new_endoff = dfs_irec_end(&new);
	int state, error = 0;

	dfs_iext_get_extent(ifp, idx, &PREV);
	assert(isnullstartblock(PREV.br_startblock));
	assert(new.br_startoff >= PREV.br_startoff && new_endoff <= dfs_irec_end(&PREV));

	state = dfs_bmap_neighbours(ifp, idx, false, &LEFT, &RIGHT);
	if (PREV.br_startoff == new.br_startoff)
		state |= BMAP_LEFT_FILLING;
	if (dfs_irec_end(&PREV) == new_endoff)
		state |= BMAP_RIGHT_FILLING;
	if ((state & BMAP_LEFT_FILLING) && (state & BMAP_LEFT_VALID) &&
	    !(state & BMAP_LEFT_DELAY) && dfs_bmap_contig(&LEFT, &new))
		state |= BMAP_LEFT_CONTIG;
	if ((state & BMAP_RIGHT_FILLING) && (state & BMAP_RIGHT_VALID) &&
	    !(state & BMAP_RIGHT_DELAY) && dfs_bmap_contig(&new, &RIGHT) &&
	    (!(state & BMAP_LEFT_CONTIG) ||
	     LEFT.br_blockcount + new.br_blockcount + RIGHT.br_blockcount <= DFS_MAX_EXTLEN))
		state |= BMAP_RIGHT_CONTIG;

	switch (state & (BMAP_LEFT_FILLING | BMAP_LEFT_CONTIG |
			 BMAP_RIGHT_FILLING | BMAP_RIGHT_CONTIG)) {
	case BMAP_LEFT_FILLING | BMAP_LEFT_CONTIG | BMAP_RIGHT_FILLING | BMAP_RIGHT_CONTIG:
		/* filling all of PREV, contiguous with both neighbours */
		LEFT.br_blockcount += new.br_blockcount + RIGHT.br_blockcount;
		dfs_iext_update_extent(ifp, idx - 1, &LEFT);
		dfs_iext_remove(ifp, idx, 2);
		bma->icur = idx - 1;
		error = dfs_bmap_disk_delete(cur, RIGHT.br_startoff);
		if (!error)
			error = dfs_bmap_disk_update(cur, LEFT.br_startoff, &LEFT);
		break;
	case BMAP_LEFT_FILLING | BMAP_LEFT_CONTIG | BMAP_RIGHT_FILLING:
		LEFT.br_blockcount += new.br_blockcount;
		dfs_iext_update_extent(ifp, idx - 1, &LEFT);
		dfs_iext_remove(ifp, idx, 1);
		bma->icur = idx - 1;
		error = dfs_bmap_disk_update(cur, LEFT.br_startoff, &LEFT);
		break;
	case BMAP_LEFT_FILLING | BMAP_RIGHT_FILLING | BMAP_RIGHT_CONTIG:
		r = new;
		r.br_blockcount += RIGHT.br_blockcount;
		dfs_iext_update_extent(ifp, idx, &r);
		dfs_iext_remove(ifp, idx + 1, 1);
		error = dfs_bmap_disk_update(cur, RIGHT.br_startoff, &r);
		break;
	case BMAP_LEFT_FILLING | BMAP_RIGHT_FILLING:
		dfs_iext_update_extent(ifp, idx, &new);
		error = dfs_bmap_disk_insert(cur, &new);
		break;
	case BMAP_LEFT_FILLING | BMAP_LEFT_CONTIG:
		/* the left part of PREV, contiguous with LEFT */
		LEFT.br_blockcount += new.br_blockcount;
		dfs_iext_update_extent(ifp, idx - 1, &LEFT);
		PREV.br_startoff = new_endoff;
		PREV.br_blockcount -= new.br_blockcount;
		dfs_iext_update_extent(ifp, idx, &PREV);
		bma->icur = idx - 1;
		error = dfs_bmap_disk_update(cur, LEFT.br_startoff, &LEFT);
		break;
	case BMAP_LEFT_FILLING:
		PREV.br_startoff = new_endoff;
		PREV.br_blockcount -= new.br_blockcount;
		dfs_iext_update_extent(ifp, idx, &PREV);
		dfs_iext_insert(ifp, idx, &new);
		error = dfs_bmap_disk_insert(cur, &new);
		break;
	case BMAP_RIGHT_FILLING | BMAP_RIGHT_CONTIG:
		/* the right part of PREV, contiguous with RIGHT */
		r = RIGHT;
		r.br_startoff = new.br_startoff;
		r.br_startblock = new.br_startblock;
		r.br_blockcount += new.br_blockcount;
		dfs_iext_update_extent(ifp, idx + 1, &r);
		PREV.br_blockcount -= new.br_blockcount;
		dfs_iext_update_extent(ifp, idx, &PREV);
		bma->icur = idx + 1;
		error = dfs_bmap_disk_update(cur, RIGHT.br_startoff, &r);
		break;
	case BMAP_RIGHT_FILLING:
		PREV.br_blockcount -= new.br_blockcount;
		dfs_iext_update_extent(ifp, idx, &PREV);
		dfs_iext_insert(ifp, idx + 1, &new);
		bma->icur = idx + 1;
		error = dfs_bmap_disk_insert(cur, &new);
		break;
	case 0:
		/* the middle of PREV: delalloc on both sides stays */
		r.br_startoff = new_endoff;
		r.br_startblock = DFS_DELAYSTARTBLOCK;
		r.br_blockcount = dfs_irec_end(&PREV) - new_endoff;
		r.br_state = DFS_EXT_NORM;
		PREV.br_blockcount = new.br_startoff - PREV.br_startoff;
		dfs_iext_update_extent(ifp, idx, &PREV);
		dfs_iext_insert(ifp, idx + 1, &new);
		dfs_iext_insert(ifp, idx + 2, &r);
		bma->icur = idx + 1;
		error = dfs_bmap_disk_insert(cur, &new);
		break;
	default:
		/* contiguity is only looked at on a filled side */
		assert(0);
	}
	return error;
}

/*
 * Part of a real extent changes state, [new->br_startoff, +blockcount)
 * becoming new->br_state (XFS's xfs_bmap_add_extent_unwritten_real).
 */
static int dfs_bmap_add_extent_unwritten_real(struct dfs_inode *ip, uint32_t *icur,
					      struct dfs_btree_cur *cur,
					      struct dfs_bmbt_irec *new)
{
	struct dfs_ifork *ifp = &ip->i_df;
	struct dfs_bmbt_irec PREV, LEFT, RIGHT, r, oldprev;
	uint32_t idx = *icur;
	uint64_t new_endoff = dfs_irec_end(new);
	int state, error = 0;

	dfs_iext_get_extent(ifp, idx, &PREV);
	assert(dfs_bmap_is_real(&PREV) && PREV.br_state != new->br_state);
	assert(new->br_startoff >= PREV.br_startoff && new_endoff <= dfs_irec_end(&PREV));
	new->br_startblock = PREV.br_startblock + (new->br_startoff - PREV.br_startoff);
	oldprev = PREV;

	state = dfs_bmap_neighbours(ifp, idx, false, &LEFT, &RIGHT);
	if (PREV.br_startoff == new->br_startoff)
		state |= BMAP_LEFT_FILLING;
	if (dfs_irec_end(&PREV) == new_endoff)
		state |= BMAP_RIGHT_FILLING;
	if ((state & BMAP_LEFT_FILLING) && (state & BMAP_LEFT_VALID) &&
	    !(state & BMAP_LEFT_DELAY) && dfs_bmap_contig(&LEFT, new))
		state |= BMAP_LEFT_CONTIG;
	if ((state & BMAP_RIGHT_FILLING) && (state & BMAP_RIGHT_VALID) &&
	    !(state & BMAP_RIGHT_DELAY) && dfs_bmap_contig(new, &RIGHT) &&
	    (!(state & BMAP_LEFT_CONTIG) ||
	     LEFT.br_blockcount + new->br_blockcount + RIGHT.br_blockcount <= DFS_MAX_EXTLEN))
		state |= BMAP_RIGHT_CONTIG;

	switch (state & (BMAP_LEFT_FILLING | BMAP_LEFT_CONTIG |
			 BMAP_RIGHT_FILLING | BMAP_RIGHT_CONTIG)) {
	case BMAP_LEFT_FILLING | BMAP_LEFT_CONTIG | BMAP_RIGHT_FILLING | BMAP_RIGHT_CONTIG:
		LEFT.br_blockcount += PREV.br_blockcount + RIGHT.br_blockcount;
		dfs_iext_update_extent(ifp, idx - 1, &LEFT);
		dfs_iext_remove(ifp, idx, 2);
		*icur = idx - 1;
		error = dfs_bmap_disk_delete(cur, RIGHT.br_startoff);
		if (!error)
			error = dfs_bmap_disk_delete(cur, PREV.br_startoff);
		if (!error)
			error = dfs_bmap_disk_update(cur, LEFT.br_startoff, &LEFT);
		break;
	case BMAP_LEFT_FILLING | BMAP_LEFT_CONTIG | BMAP_RIGHT_FILLING:
		LEFT.br_blockcount += PREV.br_blockcount;
		dfs_iext_update_extent(ifp, idx - 1, &LEFT);
		dfs_iext_remove(ifp, idx, 1);
		*icur = idx - 1;
		error = dfs_bmap_disk_delete(cur, PREV.br_startoff);
		if (!error)
			error = dfs_bmap_disk_update(cur, LEFT.br_startoff, &LEFT);
		break;
	case BMAP_LEFT_FILLING | BMAP_RIGHT_FILLING | BMAP_RIGHT_CONTIG:
		PREV.br_blockcount += RIGHT.br_blockcount;
		PREV.br_state = new->br_state;
		dfs_iext_update_extent(ifp, idx, &PREV);
		dfs_iext_remove(ifp, idx + 1, 1);
		error = dfs_bmap_disk_delete(cur, RIGHT.br_startoff);
		if (!error)
			error = dfs_bmap_disk_update(cur, PREV.br_startoff, &PREV);
		break;
	case BMAP_LEFT_FILLING | BMAP_RIGHT_FILLING:
		PREV.br_state = new->br_state;
		dfs_iext_update_extent(ifp, idx, &PREV);
		error = dfs_bmap_disk_update(cur, PREV.br_startoff, &PREV);
		break;
	case BMAP_LEFT_FILLING | BMAP_LEFT_CONTIG:
		LEFT.br_blockcount += new->br_blockcount;
		dfs_iext_update_extent(ifp, idx - 1, &LEFT);
		PREV.br_startoff += new->br_blockcount;
		PREV.br_startblock += new->br_blockcount;
		PREV.br_blockcount -= new->br_blockcount;
		dfs_iext_update_extent(ifp, idx, &PREV);
		*icur = idx - 1;
		error = dfs_bmap_disk_update(cur, oldprev.br_startoff, &PREV);
		if (!error)
			error = dfs_bmap_disk_update(cur, LEFT.br_startoff, &LEFT);
		break;
	case BMAP_LEFT_FILLING:
		PREV.br_startoff += new->br_blockcount;
		PREV.br_startblock += new->br_blockcount;
		PREV.br_blockcount -= new->br_blockcount;
		dfs_iext_update_extent(ifp, idx, &PREV);
		dfs_iext_insert(ifp, idx, new);
		error = dfs_bmap_disk_update(cur, oldprev.br_startoff, &PREV);
		if (!error)
			error = dfs_bmap_disk_insert(cur, new);
		break;
	case BMAP_RIGHT_FILLING | BMAP_RIGHT_CONTIG:
		PREV.br_blockcount -= new->br_blockcount;
		dfs_iext_update_extent(ifp, idx, &PREV);
		r = RIGHT;
		r.br_startoff = new->br_startoff;
		r.br_startblock = new->br_startblock;
		r.br_blockcount += new->br_blockcount;
		dfs_iext_update_extent(ifp, idx + 1, &r);
		*icur = idx + 1;
		error = dfs_bmap_disk_update(cur, PREV.br_startoff, &PREV);
		if (!error)
			error = dfs_bmap_disk_update(cur, RIGHT.br_startoff, &r);
		break;
	case BMAP_RIGHT_FILLING:
		PREV.br_blockcount -= new->br_blockcount;
		dfs_iext_update_extent(ifp, idx, &PREV);
		dfs_iext_insert(ifp, idx + 1, new);
		*icur = idx + 1;
		error = dfs_bmap_disk_update(cur, PREV.br_startoff, &PREV);
		if (!error)
			error = dfs_bmap_disk_insert(cur, new);
		break;
	case 0:
		r.br_startoff = new_endoff;
		r.br_startblock = new->br_startblock + new->br_blockcount;
		r.br_blockcount = dfs_irec_end(&PREV) - new_endoff;
		r.br_state = PREV.br_state;
		PREV.br_blockcount = new->br_startoff - PREV.br_startoff;
		dfs_iext_update_extent(ifp, idx, &PREV);
		dfs_iext_insert(ifp, idx + 1, new);
		dfs_iext_insert(ifp, idx + 2, &r);
		*icur = idx + 1;
		error = dfs_bmap_disk_update(cur, PREV.br_startoff, &PREV);
		if (!error)
			error = dfs_bmap_disk_insert(cur, new);
		if (!error)
			error = dfs_bmap_disk_insert(cur, &r);
		break;
	default:
		assert(0);
	}
	return error;
}

/* A real extent lands in a hole before index idx
 * (XFS's xfs_bmap_add_extent_hole_real). */
static int dfs_bmap_add_extent_hole_real(struct dfs_inode *ip, uint32_t *icur,
					 struct dfs_btree_cur *cur,
					 const struct dfs_bmbt_irec *new)
{
	struct dfs_ifork *ifp = &ip->i_df;
	struct dfs_bmbt_irec left, right, r;
	uint32_t idx = *icur;
	int state, error = 0;

	state = dfs_bmap_neighbours(ifp, idx, true, &left, &right);
	if ((state & BMAP_LEFT_VALID) && !(state & BMAP_LEFT_DELAY) &&
	    dfs_bmap_contig(&left, new))
		state |= BMAP_LEFT_CONTIG;
	if ((state & BMAP_RIGHT_VALID) && !(state & BMAP_RIGHT_DELAY) &&
	    dfs_bmap_contig(new, &right) &&
	    (!(state & BMAP_LEFT_CONTIG) ||
	     left.br_blockcount + new->br_blockcount + right.br_blockcount <= DFS_MAX_EXTLEN))
		state |= BMAP_RIGHT_CONTIG;

	switch (state & (BMAP_LEFT_CONTIG | BMAP_RIGHT_CONTIG)) {
	case BMAP_LEFT_CONTIG | BMAP_RIGHT_CONTIG:
		left.br_blockcount += new->br_blockcount + right.br_blockcount;
		dfs_iext_update_extent(ifp, idx - 1, &left);
		dfs_iext_remove(ifp, idx, 1);
		*icur = idx - 1;
		error = dfs_bmap_disk_delete(cur, right.br_startoff);
		if (!error)
			error = dfs_bmap_disk_update(cur, left.br_startoff, &left);
		break;
	case BMAP_LEFT_CONTIG:
		left.br_blockcount += new->br_blockcount;
		dfs_iext_update_extent(ifp, idx - 1, &left);
		*icur = idx - 1;
		error = dfs_bmap_disk_update(cur, left.br_startoff, &left);
		break;
	case BMAP_RIGHT_CONTIG:
		r = right;
		r.br_startoff = new->br_startoff;
		r.br_startblock = new->br_startblock;
		r.br_blockcount += new->br_blockcount;
		dfs_iext_update_extent(ifp, idx, &r);
		error = dfs_bmap_disk_update(cur, right.br_startoff, &r);
		break;
	default:
		dfs_iext_insert(ifp, idx, new);
		error = dfs_bmap_disk_insert(cur, new);
		break;
	}
	return error;
}

/* A delalloc extent lands in a hole before index idx; it merges with
 * delalloc neighbours (XFS's xfs_bmap_add_extent_hole_delay). In core only. */
static void dfs_bmap_add_extent_hole_delay(struct dfs_inode *ip, uint32_t idx,
					   const struct dfs_bmbt_irec *new)
{
	struct dfs_ifork *ifp = &ip->i_df;
	struct dfs_bmbt_irec left, right;
	int state;

	state = dfs_bmap_neighbours(ifp, idx, true, &left, &right);
	if ((state & BMAP_LEFT_DELAY) && dfs_irec_end(&left) == new->br_startoff &&
	    left.br_blockcount + new->br_blockcount <= DFS_MAX_EXTLEN)
		state |= BMAP_LEFT_CONTIG;
	if ((state & BMAP_RIGHT_DELAY) && dfs_irec_end(new) == right.br_startoff &&
	    new->br_blockcount + right.br_blockcount <= DFS_MAX_EXTLEN &&
	    (!(state & BMAP_LEFT_CONTIG) ||
	     left.br_blockcount + new->br_blockcount + right.br_blockcount <= DFS_MAX_EXTLEN))
		state |= BMAP_RIGHT_CONTIG;

	switch (state & (BMAP_LEFT_CONTIG | BMAP_RIGHT_CONTIG)) {
	case BMAP_LEFT_CONTIG | BMAP_RIGHT_CONTIG:
		left.br_blockcount += new->br_blockcount + right.br_blockcount;
		dfs_iext_update_extent(ifp, idx - 1, &left);
		dfs_iext_remove(ifp, idx, 1);
		break;
	case BMAP_LEFT_CONTIG:
		left.br_blockcount += new->br_blockcount;
		dfs_iext_update_extent(ifp, idx - 1, &left);
		break;
	case BMAP_RIGHT_CONTIG:
		right.br_startoff = new->br_startoff;
		right.br_blockcount += new->br_blockcount;
		dfs_iext_update_extent(ifp, idx, &right);
		break;
	default:
		dfs_iext_insert(ifp, idx, new);
		break;
	}
}

/* Remove del, a part of the extent at idx, from the in-core list; *rest is
 * the piece right of del when del was in the middle. Returns the number of
 * list entries change: -1, 0 or +1. */
static int dfs_bmap_cut_extent(struct dfs_ifork *ifp, uint32_t idx, const struct dfs_bmbt_irec *del,
			       struct dfs_bmbt_irec *left, struct dfs_bmbt_irec *rest)
{
	struct dfs_bmbt_irec got;
	uint64_t del_end = dfs_irec_end(del);
	bool real;

	dfs_iext_get_extent(ifp, idx, &got);
	real = !isnullstartblock(got.br_startblock);
	*left = got;
	if (got.br_startoff == del->br_startoff && dfs_irec_end(&got) == del_end) {
		dfs_iext_remove(ifp, idx, 1);
		return -1;
	}
	if (got.br_startoff == del->br_startoff) {
		left->br_startoff = del_end;
		if (real)
			left->br_startblock += del->br_blockcount;
		left->br_blockcount -= del->br_blockcount;
		dfs_iext_update_extent(ifp, idx, left);
		return 0;
	}
	if (dfs_irec_end(&got) == del_end) {
		left->br_blockcount -= del->br_blockcount;
		dfs_iext_update_extent(ifp, idx, left);
		return 0;
	}
	rest->br_startoff = del_end;
	rest->br_startblock = real ? got.br_startblock + (del_end - got.br_startoff)
				   : DFS_DELAYSTARTBLOCK;
	rest->br_blockcount = dfs_irec_end(&got) - del_end;
	rest->br_state = got.br_state;
	left->br_blockcount = del->br_startoff - got.br_startoff;
	dfs_iext_update_extent(ifp, idx, left);
	dfs_iext_insert(ifp, idx + 1, rest);
	return 1;
}

/* Unmap del, a part of the real extent at idx, and free its blocks
 * (XFS's xfs_bmap_del_extent_real). */
static int dfs_bmap_del_extent_real(struct dfs_trans *tp, struct dfs_inode *ip, uint32_t idx,
				    struct dfs_btree_cur *cur, const struct dfs_bmbt_irec *del)
{
	struct dfs_bmbt_irec got, left, rest;
	int delta, error;

	assert(idx < ip->i_df.if_nextents);
	got = ip->i_df.if_ext[idx];
	delta = dfs_bmap_cut_extent(&ip->i_df, idx, del, &left, &rest);
	if (delta < 0) {
		error = dfs_bmap_disk_delete(cur, got.br_startoff);
	} else {
		error = dfs_bmap_disk_update(cur, got.br_startoff, &left);
		if (!error && delta > 0)
			error = dfs_bmap_disk_insert(cur, &rest);
	}
	if (error)
		return error;
	error = dfs_free_extent(tp, del->br_startblock, (uint32_t)del->br_blockcount);
	if (error)
		return error;
	ip->i_nblocks -= del->br_blockcount;
	return dfs_bmap_stale_blocks(tp, ip, del->br_startblock, del->br_blockcount);
}

/* Drop del, a part of the delalloc extent at idx, and give its data blocks
 * back (XFS's xfs_bmap_del_extent_delay; the caller rebalances indlen). */
static void dfs_bmap_del_extent_delay(struct dfs_inode *ip, uint32_t idx,
				      const struct dfs_bmbt_irec *del)
{
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_bmbt_irec left, rest;

	dfs_bmap_cut_extent(&ip->i_df, idx, del, &left, &rest);
	dfs_mod_fdblocks(mp, (int64_t)del->br_blockcount);
	ip->i_delayed_blks -= del->br_blockcount;
	mp->m_delalloc_blocks -= del->br_blockcount;
}

/* ---- allocation: the deep path ------------------------------------------ */

static bool dfs_bmap_hint_valid(const struct dfs_mount *mp, uint64_t fsb, uint64_t near)
{
	return fsb < mp->m_dblocks && dfs_fsb_to_agno(mp, fsb) == dfs_fsb_to_agno(mp, near);
}

/*
 * Where to look first (XFS's xfs_bmap_adjacent): right after the previous
 * extent at EOF; otherwise where the previous or the next extent, whichever
 * is nearer in the file, would put this offset.
 */
static void dfs_bmap_adjacent(struct dfs_alloc_arg *ap, const struct dfs_bmalloca *bma)
{
	const struct dfs_mount *mp = ap->mp;
	const struct dfs_bmbt_irec *prev = &bma->prev, *got = &bma->got;
	bool prev_real = prev->br_startoff != DFS_NULLFILEOFF && dfs_bmap_is_real(prev);
	bool got_real = got->br_startoff != DFS_NULLFILEOFF && dfs_bmap_is_real(got) &&
			got->br_startoff >= bma->offset + bma->length;
	uint64_t prevbno = DFS_NULLFSBLOCK, gotbno = DFS_NULLFSBLOCK;
	uint64_t prevdiff = UINT64_MAX, gotdiff = UINT64_MAX;

	if (prev_real) {
		uint64_t gap = bma->offset - dfs_irec_end(prev);

		prevbno = prev->br_startblock + prev->br_blockcount;
		prevdiff = gap;
		/* leave room for the gap if it is small compared with prev */
		if (gap <= 4 * prev->br_blockcount &&
		    dfs_bmap_hint_valid(mp, prevbno + gap, prev->br_startblock))
			prevbno += gap;
		if (!dfs_bmap_hint_valid(mp, prevbno, prev->br_startblock))
			prevbno = DFS_NULLFSBLOCK;
	}
	if (bma->eof && prevbno != DFS_NULLFSBLOCK) {
		ap->fsbno = prevbno;
		return;
	}
	if (got_real) {
		uint64_t gap = got->br_startoff - (bma->offset + bma->length);

		gotdiff = gap;
		if (got->br_startblock >= bma->length + gap &&
		    dfs_bmap_hint_valid(mp, got->br_startblock - bma->length - gap,
					got->br_startblock))
			gotbno = got->br_startblock - bma->length - gap;
		else if (got->br_startblock >= bma->length &&
			 dfs_bmap_hint_valid(mp, got->br_startblock - bma->length,
					     got->br_startblock))
			gotbno = got->br_startblock - bma->length;
	}
	if (prevbno != DFS_NULLFSBLOCK && (gotbno == DFS_NULLFSBLOCK || prevdiff <= gotdiff))
		ap->fsbno = prevbno;
	else if (gotbno != DFS_NULLFSBLOCK)
		ap->fsbno = gotbno;
}

/*
 * XFS's xfs_bmap_btalloc: try for exactly the adjacent block (a file that
 * grows stays one extent), then near it in its AG, then anywhere from there
 * on, and at last without keeping room for bmbt splits in the AG.
 */
static int dfs_bmap_btalloc(struct dfs_bmalloca *bma)
{
	struct dfs_mount *mp = bma->ip->i_mount;
	struct dfs_alloc_arg args;
	uint64_t hint;
	bool adjacent;
	int error, try;

	memset(&args, 0, sizeof(args));
	args.tp = bma->tp;
	args.mp = mp;
	args.fsbno = DFS_NULLFSBLOCK;
	dfs_bmap_adjacent(&args, bma);
	adjacent = args.fsbno != DFS_NULLFSBLOCK;
	if (!adjacent)
		args.fsbno = bma->hint != DFS_NULLFSBLOCK ? bma->hint
							  : dfs_ino_to_fsb(mp, bma->ip->i_ino);
	hint = args.fsbno;

	for (try = adjacent ? 0 : 1; try < 4; try++) {
		args.fsbno = hint;
		args.minlen = 1;
		args.maxlen = (uint32_t)(bma->length < DFS_MAX_EXTLEN ? bma->length
								      : DFS_MAX_EXTLEN);
		args.prod = 1;
		args.mod = 0;
		args.alignment = 0;
		args.total = (uint32_t)bma->total;
		args.minleft = try < 3 ? (uint32_t)bma->minleft : 0;
		args.wasdel = bma->wasdel;
		args.userdata = bma->datatype;
		args.owner = bma->ip->i_ino;
		switch (try) {
		case 0:
			args.type = DFS_ALLOCTYPE_THIS_BNO;
			break;
		case 1:
			args.type = DFS_ALLOCTYPE_NEAR_BNO;
			break;
		default:
			args.type = DFS_ALLOCTYPE_START_BNO;
			break;
		}
		args.otype = args.type;
		error = dfs_alloc_vextent(&args);
		if (error)
			return error;
		if (args.fsbno != DFS_NULLFSBLOCK)
			break;
	}
	if (args.fsbno == DFS_NULLFSBLOCK) {
		bma->blkno = DFS_NULLFSBLOCK;
		bma->length = 0;
		return 0;
	}
	bma->blkno = args.fsbno;
	bma->length = args.len;
	return 0;
}

/* XFS's xfs_bmap_alloc: deepfs has no realtime device, so always the btree
 * allocator. */
static int dfs_bmap_alloc(struct dfs_bmalloca *bma)
{
	return dfs_bmap_btalloc(bma);
}

/* Allocate blocks for [bma->offset, +bma->length) and map them
 * (XFS's xfs_bmapi_allocate). */
static int dfs_bmapi_allocate(struct dfs_bmalloca *bma)
{
	struct dfs_inode *ip = bma->ip;
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_bmbt_irec new;
	int error;

	bma->datatype = dfs_isreg(ip);
	error = dfs_bmap_alloc(bma);
	if (error)
		return error;
	if (bma->blkno == DFS_NULLFSBLOCK)
		return -ENOSPC;
	if (bma->cur && bma->cur->bc_private.b.firstblock == DFS_NULLFSBLOCK)
		bma->cur->bc_private.b.firstblock = bma->blkno;
	bma->nallocs++;
	ip->i_nblocks += bma->length;
	if (bma->wasdel) {
		ip->i_delayed_blks -= bma->length;
		mp->m_delalloc_blocks -= bma->length;
		return dfs_bmap_add_extent_delay_real(bma);
	}
	new.br_startoff = bma->offset;
	new.br_startblock = bma->blkno;
	new.br_blockcount = bma->length;
	new.br_state = (bma->flags & DFS_BMAPI_PREALLOC) ? DFS_EXT_UNWRITTEN : DFS_EXT_NORM;
	return dfs_bmap_add_extent_hole_real(ip, &bma->icur, bma->cur, &new);
}

static void dfs_bmap_prev_extent(const struct dfs_ifork *ifp, uint32_t idx,
				 struct dfs_bmbt_irec *prev)
{
	if (idx == 0 || !dfs_iext_get_extent(ifp, idx - 1, prev))
		prev->br_startoff = DFS_NULLFILEOFF;
}

int dfs_bmapi_convert_delalloc(struct dfs_inode *ip, uint64_t offset_fsb,
			       struct dfs_bmbt_irec *imap)
{
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_ifork *ifp = &ip->i_df;
	struct dfs_btree_cur curbuf;
	struct dfs_bmalloca bma;
	struct dfs_bmbt_irec got;
	uint32_t res = dfs_bmap_ext_res(mp);
	uint64_t give;
	int error;

	memset(&bma, 0, sizeof(bma));
	/* The bmbt blocks come out of the inode's indirect reservation. */
	give = ip->i_delayed_indlen < res ? ip->i_delayed_indlen : res;
	ip->i_delayed_indlen -= give;
	mp->m_delalloc_blocks -= give;
	dfs_mod_fdblocks(mp, (int64_t)give);
	error = dfs_bmap_trans_alloc_reserved(mp, res, &bma.tp);
	if (error) {
		dfs_bmap_rebalance_indlen(ip, false);
		return error;
	}
	error = dfs_iext_reserve(ifp, 2);
	if (error)
		goto out_cancel;
	if (!dfs_iext_lookup_extent(ifp, offset_fsb, &bma.icur, &got) ||
	    got.br_startoff > offset_fsb) {
		error = -EINVAL;
		goto out_cancel;
	}
	if (!isnullstartblock(got.br_startblock)) {
		/* converted already, by fallocate or an earlier page */
		*imap = got;
		goto out_cancel;
	}
	bma.ip = ip;
	bma.got = got;
	bma.offset = got.br_startoff;
	bma.length = got.br_blockcount < DFS_MAX_EXTLEN ? got.br_blockcount : DFS_MAX_EXTLEN;
	dfs_bmap_prev_extent(ifp, bma.icur, &bma.prev);
	bma.eof = bma.icur + 1 == ifp->if_nextents;
	bma.wasdel = true;
	bma.total = res;
	bma.minleft = res;
	bma.hint = DFS_NULLFSBLOCK;
	bma.cur = NULL;
	dfs_bmap_cur_setup(bma.tp, ip, &curbuf, &bma.cur);
	error = dfs_bmapi_allocate(&bma);
	error = dfs_bmap_finish(bma.tp, ip, &bma.cur, bma.blkno, error);
	if (error)
		goto out_cancel;
	imap->br_startoff = bma.offset;
	imap->br_startblock = bma.blkno;
	imap->br_blockcount = bma.length;
	imap->br_state = DFS_EXT_UNWRITTEN;
	error = dfs_trans_log_inode(bma.tp, ip);
	if (error)
		goto out_cancel;
	error = dfs_trans_commit(bma.tp, false);
	if (error)
		dfs_bmap_shutdown(ip, "delalloc conversion commit", error);
	dfs_bmap_rebalance_indlen(ip, false);
	dfs_bmap_reserve_refill(mp);
	return error;

out_cancel:
	if (bma.nallocs)
		dfs_bmap_shutdown(ip, "delalloc conversion", error);
	dfs_trans_cancel(bma.tp);
	dfs_bmap_rebalance_indlen(ip, false);
	return error;
}

int dfs_bmapi_write(struct dfs_trans *tp, struct dfs_inode *ip, uint64_t bno, uint64_t len,
		    int flags, struct dfs_bmbt_irec *mval, int *nmaps)
{
	struct dfs_ifork *ifp = &ip->i_df;
	uint64_t end = bno + len;
	struct dfs_btree_cur curbuf;
	struct dfs_bmbt_irec got;
	int n = 0, error = 0;
	bool found;

	if (len == 0 || end < bno)
		return -EINVAL;
	while (bno < end && n < *nmaps) {
		struct dfs_bmalloca bma;

		error = dfs_iext_reserve(ifp, 2);
		if (error)
			break;
		memset(&bma, 0, sizeof(bma));
		found = dfs_iext_lookup_extent(ifp, bno, &bma.icur, &got);
		if (found && got.br_startoff <= bno) {
			/* mapped already (real or delalloc): report it */
			mval[n].br_startoff = bno;
			mval[n].br_blockcount = (dfs_irec_end(&got) < end ? dfs_irec_end(&got) : end) - bno;
			mval[n].br_startblock = isnullstartblock(got.br_startblock)
				? DFS_DELAYSTARTBLOCK : got.br_startblock + (bno - got.br_startoff);
			mval[n].br_state = got.br_state;
			bno += mval[n++].br_blockcount;
			continue;
		}
		bma.tp = tp;
		bma.ip = ip;
		bma.offset = bno;
		bma.length = (found && got.br_startoff < end ? got.br_startoff : end) - bno;
		if (bma.length > DFS_MAX_EXTLEN)
			bma.length = DFS_MAX_EXTLEN;
		if (found)
			bma.got = got;
		else
			bma.got.br_startoff = DFS_NULLFILEOFF;
		dfs_bmap_prev_extent(ifp, bma.icur, &bma.prev);
		bma.eof = !found;
		bma.flags = flags;
		bma.total = dfs_bmap_ext_res(ip->i_mount);
		bma.minleft = bma.total;
		bma.hint = DFS_NULLFSBLOCK;
		dfs_bmap_cur_setup(tp, ip, &curbuf, &bma.cur);
		error = dfs_bmapi_allocate(&bma);
		error = dfs_bmap_finish(tp, ip, &bma.cur, bma.blkno, error);
		if (error) {
			if (bma.nallocs)
				dfs_bmap_shutdown(ip, "block allocation", error);
			break;
		}
		mval[n].br_startoff = bma.offset;
		mval[n].br_startblock = bma.blkno;
		mval[n].br_blockcount = bma.length;
		mval[n].br_state = (flags & DFS_BMAPI_PREALLOC) ? DFS_EXT_UNWRITTEN : DFS_EXT_NORM;
		n++;
		bno += bma.length;
	}
	*nmaps = n;
	if (n && error == -ENOSPC)
		error = 0;	/* a partial mapping is progress */
	if (!error)
		error = dfs_trans_log_inode(tp, ip);
	return error;
}

/* ---- delayed allocation --------------------------------------------------- */

/*
 * Hole by hole: each gets its data blocks and the rebalanced indirect
 * reservation, or is taken back whole. Earlier holes of the range stay
 * reserved on failure (the caller's page is not dirtied; truncate or inode
 * reclaim gives them back).
 */
int dfs_bmapi_reserve_delalloc(struct dfs_inode *ip, uint64_t bno, uint64_t len)
{
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_ifork *ifp = &ip->i_df;
	uint64_t end = bno + len, off = bno;
	struct dfs_bmbt_irec got, new;
	uint32_t idx;
	int error, done;

	if (len == 0 || end < bno)
		return -EINVAL;
	while (off < end) {
		bool found = dfs_iext_lookup_extent(ifp, off, &idx, &got);

		if (found && got.br_startoff <= off) {
			off = dfs_irec_end(&got);
			continue;
		}
		new.br_startoff = off;
		new.br_startblock = DFS_DELAYSTARTBLOCK;
		new.br_blockcount = (found && got.br_startoff < end ? got.br_startoff : end) - off;
		new.br_state = DFS_EXT_NORM;
		if (new.br_blockcount > DFS_MAX_EXTLEN)
			new.br_blockcount = DFS_MAX_EXTLEN;
		error = dfs_iext_reserve(ifp, 1);
		if (error)
			return error;
		error = dfs_mod_fdblocks(mp, -(int64_t)new.br_blockcount);
		if (error)
			return error;
		ip->i_delayed_blks += new.br_blockcount;
		mp->m_delalloc_blocks += new.br_blockcount;
		dfs_bmap_add_extent_hole_delay(ip, idx, &new);
		error = dfs_bmap_rebalance_indlen(ip, true);
		if (error) {
			/* no room for the bmbt worst case: take this hole back */
			dfs_bunmapi(NULL, ip, new.br_startoff, new.br_blockcount, &done);
			return error;
		}
		off = dfs_irec_end(&new);
	}
	return 0;
}

int dfs_bmapi_read(struct dfs_inode *ip, uint64_t bno, uint64_t len, struct dfs_bmbt_irec *mval,
		   int *nmaps)
{
	const struct dfs_ifork *ifp = &ip->i_df;
	uint64_t end = bno + len;
	struct dfs_bmbt_irec got;
	uint32_t idx;
	int n = 0;

	if (end < bno)
		end = UINT64_MAX;
	while (bno < end && n < *nmaps) {
		bool found = dfs_iext_lookup_extent(ifp, bno, &idx, &got);

		mval[n].br_startoff = bno;
		if (!found || got.br_startoff > bno) {
			mval[n].br_startblock = DFS_HOLESTARTBLOCK;
			mval[n].br_blockcount = (found && got.br_startoff < end ? got.br_startoff
										: end) - bno;
			mval[n].br_state = DFS_EXT_NORM;
		} else {
			uint64_t e = dfs_irec_end(&got) < end ? dfs_irec_end(&got) : end;

			mval[n].br_startblock = isnullstartblock(got.br_startblock)
				? DFS_DELAYSTARTBLOCK : got.br_startblock + (bno - got.br_startoff);
			mval[n].br_blockcount = e - bno;
			mval[n].br_state = got.br_state;
		}
		bno += mval[n++].br_blockcount;
	}
	*nmaps = n;
	return 0;
}

/* ---- unmapping ------------------------------------------------------------ */

/*
 * Works from the end of the range backwards (as XFS's __xfs_bunmapi), so a
 * truncate that runs out of transaction leaves a shorter file, never a hole.
 * tp may be NULL when only delalloc extents can be in the range.
 */
int dfs_bunmapi(struct dfs_trans *tp, struct dfs_inode *ip, uint64_t bno, uint64_t len,
		int *done)
{
	struct dfs_ifork *ifp = &ip->i_df;
	struct dfs_btree_cur curbuf, *cur = NULL;
	uint64_t end = len > UINT64_MAX - bno ? UINT64_MAX : bno + len;
	struct dfs_bmbt_irec got, del;
	int nreal = 0, error = 0;
	bool changed = false;
	uint32_t idx;

	*done = 0;
	if (ifp->if_format == DFS_DINODE_FMT_LOCAL)
		return -EINVAL;
	error = dfs_iext_reserve(ifp, 1);
	if (error)
		return error;
	if (tp)
		dfs_bmap_cur_setup(tp, ip, &curbuf, &cur);
	while (end > bno) {
		/* the last extent that starts before end */
		bool found = dfs_iext_lookup_extent(ifp, end - 1, &idx, &got);

		if (!found || got.br_startoff >= end) {
			if (idx == 0) {
				end = bno;	/* only holes are left */
				break;
			}
			idx--;
			dfs_iext_get_extent(ifp, idx, &got);
		}
		if (dfs_irec_end(&got) <= bno) {
			end = bno;
			break;
		}
		del = got;
		if (del.br_startoff < bno) {
			if (!isnullstartblock(del.br_startblock))
				del.br_startblock += bno - del.br_startoff;
			del.br_blockcount -= bno - del.br_startoff;
			del.br_startoff = bno;
		}
		if (dfs_irec_end(&del) > end)
			del.br_blockcount = end - del.br_startoff;
		if (isnullstartblock(del.br_startblock)) {
			dfs_bmap_del_extent_delay(ip, idx, &del);
		} else {
			if (!tp || nreal == DFS_BUNMAPI_MAX_REAL)
				break;
			changed = true;
			error = dfs_bmap_del_extent_real(tp, ip, idx, cur, &del);
			if (error)
				break;
			nreal++;
		}
		end = del.br_startoff;
	}
	if (tp)
		error = dfs_bmap_finish(tp, ip, &cur, DFS_NULLFSBLOCK, error);
	if (error && changed)
		dfs_bmap_shutdown(ip, "unmapping", error);
	dfs_bmap_rebalance_indlen(ip, false);
	if (!error)
		*done = end <= bno;
	return error;
}

/* Blocks mapped (real or delalloc) at or after file block first. */
static uint64_t dfs_bmap_blocks_from(const struct dfs_inode *ip, uint64_t first)
{
	const struct dfs_ifork *ifp = &ip->i_df;
	uint64_t n = 0;
	uint32_t i;

	for (i = 0; i < ifp->if_nextents; i++) {
		const struct dfs_bmbt_irec *r = &ifp->if_ext[i];

		if (dfs_irec_end(r) > first)
			n += dfs_irec_end(r) - (r->br_startoff > first ? r->br_startoff : first);
	}
	return n;
}

int dfs_itruncate_extents(struct dfs_inode *ip, uint64_t new_size)
{
	struct dfs_mount *mp = ip->i_mount;
	uint64_t first = (new_size + mp->m_blocksize - 1) >> mp->m_blocklog;
	uint64_t left = dfs_bmap_blocks_from(ip, first), now;
	struct dfs_trans *tp;
	int done = 0, error;

	/* no page may outlive the blocks it maps (inactive comes here) */
	if (ip->i_mapping)
		dfs_pagecache_invalidate(ip, (new_size + DFS_PAGE_SIZE - 1) / DFS_PAGE_SIZE,
					 UINT64_MAX);
	while (!done) {
		/* truncating to EOF only deletes records and trims the first
		 * one: no bmbt split, so no reservation (XFS's tr_itruncate) */
		error = dfs_trans_alloc(mp, 0, &tp);
		if (error)
			return error;
		error = dfs_bunmapi(tp, ip, first, UINT64_MAX - first, &done);
		if (!error)
			error = dfs_trans_log_inode(tp, ip);
		if (error) {
			dfs_trans_cancel(tp);
			return error;
		}
		error = dfs_trans_commit(tp, false);
		if (error)
			return error;
		if (done)
			break;
		/* each transaction that stops short unmapped something: a map
		 * that does not shrink is inconsistent, so fail, never spin */
		now = dfs_bmap_blocks_from(ip, first);
		if (now >= left) {
			dfs_err(mp, "inode %" PRIu64 ": truncate to %" PRIu64
				" made no progress; extent map inconsistent", ip->i_ino, new_size);
			return -EFSCORRUPTED;
		}
		left = now;
	}
	return 0;
}

/* ---- IO completion ---------------------------------------------------------- */

int dfs_iomap_write_unwritten(struct dfs_inode *ip, uint64_t offset, uint64_t count,
			      uint64_t new_size)
{
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_ifork *ifp = &ip->i_df;
	uint64_t bno = offset >> mp->m_blocklog;
	uint64_t end = (offset + count + mp->m_blocksize - 1) >> mp->m_blocklog;
	uint32_t res = 2 * dfs_bmap_ext_res(mp);
	struct dfs_btree_cur curbuf, *cur;
	struct dfs_bmbt_irec got, new;
	struct dfs_trans *tp;
	uint32_t idx;
	int error;

	if (new_size > ip->i_size)
		new_size = ip->i_size;
	for (;;) {
		bool convert = false, grow;

		/* the next unwritten piece of the range, if any */
		while (bno < end) {
			if (!dfs_iext_lookup_extent(ifp, bno, &idx, &got) || got.br_startoff >= end) {
				bno = end;
				break;
			}
			if (got.br_startoff > bno)
				bno = got.br_startoff;
			if (dfs_bmap_is_real(&got) && got.br_state == DFS_EXT_UNWRITTEN) {
				convert = true;
				break;
			}
			bno = dfs_irec_end(&got);
		}
		grow = new_size > ip->i_disk_size;
		if (!convert && !grow)
			return 0;
		error = dfs_bmap_trans_alloc_reserved(mp, convert ? res : 0, &tp);
		if (error)
			return error;
		if (convert) {
			error = dfs_iext_reserve(ifp, 2);
			if (error) {
				dfs_trans_cancel(tp);
				return error;
			}
			new.br_startoff = bno;
			new.br_blockcount = (dfs_irec_end(&got) < end ? dfs_irec_end(&got) : end) - bno;
			new.br_state = DFS_EXT_NORM;
			cur = NULL;
			dfs_bmap_cur_setup(tp, ip, &curbuf, &cur);
			error = dfs_bmap_add_extent_unwritten_real(ip, &idx, cur, &new);
			error = dfs_bmap_finish(tp, ip, &cur, got.br_startblock, error);
			if (error) {
				dfs_bmap_shutdown(ip, "unwritten extent conversion", error);
				dfs_trans_cancel(tp);
				return error;
			}
			bno = dfs_irec_end(&new);
		}
		if (grow && (!convert || bno >= end))
			ip->i_disk_size = new_size;
		error = dfs_trans_log_inode(tp, ip);
		if (error) {
			dfs_trans_cancel(tp);
			return error;
		}
		error = dfs_trans_commit(tp, false);
		dfs_bmap_reserve_refill(mp);
		if (error)
			return error;
	}
}

/* ---- fork <-> dinode ---------------------------------------------------------- */

static int dfs_bmap_append_loaded(struct dfs_inode *ip, const struct dfs_bmbt_irec *irec,
				  uint64_t blkno)
{
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_ifork *ifp = &ip->i_df;
	char why[96];
	int error;

	if (!dfs_bmap_irec_valid(mp, irec)) {
		snprintf(why, sizeof(why), "inode %" PRIu64 ": bad extent at file block %" PRIu64,
			 ip->i_ino, irec->br_startoff);
		return dfs_corrupt(mp, "extent map", blkno, why);
	}
	if (ifp->if_nextents &&
	    dfs_irec_end(&ifp->if_ext[ifp->if_nextents - 1]) > irec->br_startoff) {
		snprintf(why, sizeof(why), "inode %" PRIu64 ": extents overlap at file block %" PRIu64,
			 ip->i_ino, irec->br_startoff);
		return dfs_corrupt(mp, "extent map", blkno, why);
	}
	error = dfs_iext_reserve(ifp, 1);
	if (error)
		return error;
	dfs_iext_insert(ifp, ifp->if_nextents, irec);
	return 0;
}

static int dfs_bmap_load_rec(struct dfs_btree_cur *cur, const union dfs_btree_rec *rec,
			     void *priv)
{
	struct dfs_bmbt_irec irec;

	dfs_bmbt_disk_get(&rec->bmbt, &irec);
	return dfs_bmap_append_loaded(priv, &irec, cur->bc_private.b.ip->i_df.if_broot.root);
}

int dfs_bmap_read_extents(struct dfs_trans *tp, struct dfs_inode *ip,
			  const struct dfs_dinode *dip)
{
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_ifork *ifp = &ip->i_df;
	uint64_t blkno = dfs_ino_to_fsb(mp, ip->i_ino);
	const struct dfs_bmbt_rec *recs = (const struct dfs_bmbt_rec *)dip->di_fork;
	struct dfs_btree_cur cur;
	struct dfs_bmbt_irec irec;
	char why[96];
	uint32_t i;
	int error;

	ifp->if_nextents = 0;
	ifp->if_format = dip->di_format;
	switch (dip->di_format) {
	case DFS_DINODE_FMT_LOCAL:
		if (dip->di_size > DFS_DFORK_SIZE) {
			snprintf(why, sizeof(why), "inode %" PRIu64 ": local fork of %" PRIu64 " bytes",
				 ip->i_ino, dip->di_size);
			return dfs_corrupt(mp, "inode", blkno, why);
		}
		free(ifp->if_local);
		ifp->if_local = malloc(dip->di_size + 1);
		if (!ifp->if_local)
			return -ENOMEM;
		memcpy(ifp->if_local, dip->di_fork, dip->di_size);
		ifp->if_local[dip->di_size] = '\0';
		ifp->if_local_len = (uint32_t)dip->di_size;
		return 0;
	case DFS_DINODE_FMT_EXTENTS:
		if (dip->di_nextents > DFS_INLINE_EXTENTS) {
			snprintf(why, sizeof(why), "inode %" PRIu64 ": %u inline extents", ip->i_ino,
				 dip->di_nextents);
			return dfs_corrupt(mp, "inode", blkno, why);
		}
		for (i = 0; i < dip->di_nextents; i++) {
			dfs_bmbt_disk_get(&recs[i], &irec);
			error = dfs_bmap_append_loaded(ip, &irec, blkno);
			if (error)
				return error;
		}
		return 0;
	case DFS_DINODE_FMT_BTREE:
		memcpy(&ifp->if_broot, dip->di_fork, sizeof(ifp->if_broot));
		if (ifp->if_broot.root >= mp->m_dblocks || ifp->if_broot.level == 0 ||
		    ifp->if_broot.level > DFS_BTREE_MAXLEVELS) {
			snprintf(why, sizeof(why), "inode %" PRIu64 ": bad bmbt root %" PRIu64 " level %u",
				 ip->i_ino, ifp->if_broot.root, ifp->if_broot.level);
			return dfs_corrupt(mp, "inode", blkno, why);
		}
		dfs_bmbt_init_cursor(&cur, tp, ip);
		error = dfs_btree_query_all(&cur, dfs_bmap_load_rec, ip);
		dfs_btree_del_cursor(&cur, error);
		if (error)
			return error;
		if (ifp->if_nextents != dip->di_nextents || ifp->if_nextents <= DFS_INLINE_EXTENTS) {
			snprintf(why, sizeof(why), "inode %" PRIu64 ": bmbt holds %u extents, inode says %u",
				 ip->i_ino, ifp->if_nextents, dip->di_nextents);
			return dfs_corrupt(mp, "inode", blkno, why);
		}
		return 0;
	default:
		snprintf(why, sizeof(why), "inode %" PRIu64 ": unknown fork format %u", ip->i_ino,
			 dip->di_format);
		return dfs_corrupt(mp, "inode", blkno, why);
	}
}

void dfs_bmap_format_fork(const struct dfs_inode *ip, struct dfs_dinode *dip)
{
	const struct dfs_ifork *ifp = &ip->i_df;
	struct dfs_bmbt_rec *recs = (struct dfs_bmbt_rec *)dip->di_fork;
	uint32_t i, n = 0;

	dip->di_format = ifp->if_format;
	memset(dip->di_fork, 0, DFS_DFORK_SIZE);
	switch (ifp->if_format) {
	case DFS_DINODE_FMT_LOCAL:
		assert(ifp->if_local_len <= DFS_DFORK_SIZE);
		if (ifp->if_local_len)
			memcpy(dip->di_fork, ifp->if_local, ifp->if_local_len);
		dip->di_nextents = 0;
		break;
	case DFS_DINODE_FMT_EXTENTS:
		for (i = 0; i < ifp->if_nextents; i++) {
			if (isnullstartblock(ifp->if_ext[i].br_startblock))
				continue;
			assert(n < DFS_INLINE_EXTENTS);
			dfs_bmbt_disk_set(&recs[n++], &ifp->if_ext[i]);
		}
		dip->di_nextents = n;
		break;
	case DFS_DINODE_FMT_BTREE:
		memcpy(dip->di_fork, &ifp->if_broot, sizeof(ifp->if_broot));
		dip->di_nextents = dfs_bmap_real_extents(ip);
		break;
	default:
		assert(0);
	}
}

void dfs_bmap_destroy_fork(struct dfs_inode *ip)
{
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_ifork *ifp = &ip->i_df;

	/* the inode leaves the cache: so do its pages (written back first
	 * while it has links), before the extents they map go */
	if (ip->i_mapping && mp->m_pagecache)
		dfs_pagecache_evict_inode(ip);

	/* delalloc that never got dirty data (a failed write) */
	if (ip->i_delayed_blks || ip->i_delayed_indlen) {
		dfs_mod_fdblocks(mp, (int64_t)(ip->i_delayed_blks + ip->i_delayed_indlen));
		mp->m_delalloc_blocks -= ip->i_delayed_blks + ip->i_delayed_indlen;
		ip->i_delayed_blks = ip->i_delayed_indlen = 0;
	}
	free(ifp->if_ext);
	ifp->if_ext = NULL;
	ifp->if_nextents = ifp->if_cap = 0;
	free(ifp->if_local);
	ifp->if_local = NULL;
	ifp->if_local_len = 0;
}

/* ---- invariant check ------------------------------------------------------ */

struct dfs_bmap_check_ctx {
	struct dfs_inode *ip;
	uint32_t next;		/* index in the in-core list */
	int bad;
};

static int dfs_bmap_check_rec(struct dfs_btree_cur *cur, const union dfs_btree_rec *rec,
			      void *priv)
{
	struct dfs_bmap_check_ctx *ctx = priv;
	const struct dfs_ifork *ifp = &ctx->ip->i_df;
	struct dfs_bmbt_irec irec;

	while (ctx->next < ifp->if_nextents &&
	       isnullstartblock(ifp->if_ext[ctx->next].br_startblock))
		ctx->next++;
	dfs_bmbt_disk_get(&rec->bmbt, &irec);
	if (ctx->next >= ifp->if_nextents ||
	    irec.br_startoff != ifp->if_ext[ctx->next].br_startoff ||
	    irec.br_startblock != ifp->if_ext[ctx->next].br_startblock ||
	    irec.br_blockcount != ifp->if_ext[ctx->next].br_blockcount ||
	    irec.br_state != ifp->if_ext[ctx->next].br_state) {
		ctx->bad = 1;
		return 1;
	}
	ctx->next++;
	return 0;
}

static int dfs_bmap_count_block(struct dfs_btree_cur *cur, int level, uint64_t fsbno, void *priv)
{
	(*(uint64_t *)priv)++;
	return 0;
}

int dfs_bmap_check(struct dfs_inode *ip)
{
	struct dfs_mount *mp = ip->i_mount;
	const struct dfs_ifork *ifp = &ip->i_df;
	uint64_t blkno = dfs_ino_to_fsb(mp, ip->i_ino);
	uint64_t delayed = 0, data = 0, bmbt = 0;
	struct dfs_bmap_check_ctx ctx = { .ip = ip };
	struct dfs_btree_cur cur;
	uint32_t i, real = 0;
	char why[128];
	int error;

	if (ifp->if_format == DFS_DINODE_FMT_LOCAL)
		return 0;
	for (i = 0; i < ifp->if_nextents; i++) {
		const struct dfs_bmbt_irec *e = &ifp->if_ext[i];

		if (i && dfs_irec_end(&ifp->if_ext[i - 1]) > e->br_startoff) {
			snprintf(why, sizeof(why), "inode %" PRIu64 ": in-core extents %u and %u overlap",
				 ip->i_ino, i - 1, i);
			return dfs_corrupt(mp, "extent map", blkno, why);
		}
		if (isnullstartblock(e->br_startblock)) {
			if (e->br_blockcount == 0 || e->br_blockcount > DFS_MAX_EXTLEN)
				goto bad_ext;
			delayed += e->br_blockcount;
			continue;
		}
		if (!dfs_bmap_irec_valid(mp, e))
			goto bad_ext;
		data += e->br_blockcount;
		real++;
		continue;
bad_ext:
		snprintf(why, sizeof(why), "inode %" PRIu64 ": in-core extent %u is invalid",
			 ip->i_ino, i);
		return dfs_corrupt(mp, "extent map", blkno, why);
	}
	if (delayed != ip->i_delayed_blks) {
		snprintf(why, sizeof(why), "inode %" PRIu64 ": %" PRIu64 " delalloc blocks, counted %" PRIu64,
			 ip->i_ino, delayed, ip->i_delayed_blks);
		return dfs_corrupt(mp, "extent map", blkno, why);
	}
	if (ifp->if_format == DFS_DINODE_FMT_EXTENTS) {
		if (real > DFS_INLINE_EXTENTS) {
			snprintf(why, sizeof(why), "inode %" PRIu64 ": %u extents in extents format",
				 ip->i_ino, real);
			return dfs_corrupt(mp, "extent map", blkno, why);
		}
	} else if (ifp->if_format == DFS_DINODE_FMT_BTREE) {
		if (real <= DFS_INLINE_EXTENTS) {
			snprintf(why, sizeof(why), "inode %" PRIu64 ": only %u extents in btree format",
				 ip->i_ino, real);
			return dfs_corrupt(mp, "extent map", blkno, why);
		}
		dfs_bmbt_init_cursor(&cur, NULL, ip);
		error = dfs_btree_check(&cur);
		if (!error)
			error = dfs_btree_query_all(&cur, dfs_bmap_check_rec, &ctx);
		if (!error)
			error = dfs_btree_visit_blocks(&cur, dfs_bmap_count_block, &bmbt);
		dfs_btree_del_cursor(&cur, error);
		if (error < 0)
			return error;
		while (ctx.next < ifp->if_nextents &&
		       isnullstartblock(ifp->if_ext[ctx.next].br_startblock))
			ctx.next++;
		if (ctx.bad || ctx.next != ifp->if_nextents) {
			snprintf(why, sizeof(why), "inode %" PRIu64 ": bmbt records differ from the in-core list",
				 ip->i_ino);
			return dfs_corrupt(mp, "extent map", blkno, why);
		}
	}
	if (dfs_isreg(ip) && ip->i_nblocks != data + bmbt + (ip->i_xattr_blk ? 1 : 0)) {
		snprintf(why, sizeof(why), "inode %" PRIu64 ": %" PRIu64 " blocks counted, %" PRIu64 " mapped + %" PRIu64 " bmbt",
			 ip->i_ino, ip->i_nblocks, data, bmbt);
		return dfs_corrupt(mp, "extent map", blkno, why);
	}
	return 0;
}
