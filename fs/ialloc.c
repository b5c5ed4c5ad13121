/* SPDX-License-Identifier: MIT */
/*
 * Inode allocation (XFS's xfs_ialloc.c). Inodes are allocated in chunks of
 * DFS_INODES_PER_CHUNK, one inobt record each; a new inode is taken from the
 * chunk nearest its parent that has a free one, in the parent's AG, and a
 * new chunk is allocated there when none has. A chunk whose inodes are all
 * free again is given back to free space.
 *
 * AG counters: agi->count/freecount are the truth on disk, pag->pagi_* and
 * mp->m_icount/m_ifree are in-core copies changed in step with them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "alloc.h"
#include "btree.h"
#include "buf.h"
#include "ialloc.h"
#include "inode.h"
#include "mount.h"
#include "msg.h"
#include "trans.h"

uint32_t dfs_ialloc_space_res(const struct dfs_mount *mp)
{
	return dfs_ialloc_chunk_blocks(mp->m_inopblock) + (uint32_t)dfs_inobt_maxlevels(mp) + 1;
}

/* Can ino name an inode at all? Only a range check: whether a chunk is
 * there is the inobt's to say. */
static bool dfs_ino_in_range(const struct dfs_mount *mp, uint64_t ino)
{
	uint64_t fsbno;
	uint32_t agno, agbno;

	if (ino == DFS_NULLINO || (ino >> mp->m_inopblog) >= mp->m_dblocks)
		return false;
	fsbno = dfs_ino_to_fsb(mp, ino);
	agno = dfs_fsb_to_agno(mp, fsbno);
	agbno = dfs_fsb_to_agbno(mp, fsbno);
	if (agno >= mp->m_agcount || agbno >= mp->m_perag[agno].pag_length)
		return false;
	return agbno >= DFS_AG_FIRST_FREE;
}

/* Inconsistencies between the AGI and its inode btree. */
static int dfs_ialloc_corrupt(const struct dfs_mount *mp, uint32_t agno, const char *why)
{
	return dfs_corrupt(mp, "AGI/inobt", dfs_agb_to_fsb(mp, agno, DFS_AGI_AGBNO), why);
}

static void dfs_ialloc_relse(struct dfs_trans *tp, struct dfs_buf *bp)
{
	if (!tp)
		dfs_buf_relse(bp);
}

static int dfs_inobt_get_checked(struct dfs_btree_cur *cur, struct dfs_inobt_rec *rec, int *stat)
{
	union dfs_btree_rec r;
	int error;

	error = dfs_btree_get_rec(cur, &r, stat);
	if (error || !*stat)
		return error;
	if (!dfs_inobt_ops.rec_valid(cur, &r)) {
		char why[96];

		snprintf(why, sizeof(why), "bad record: startino %u freecount %u free 0x%016" PRIx64,
			 r.inobt.startino, r.inobt.freecount, r.inobt.free);
		return dfs_corrupt(cur->bc_mp, "inobt", cur->bc_bufs[0] ? cur->bc_bufs[0]->b_blkno : 0,
				   why);
	}
	*rec = r.inobt;
	return 0;
}

/*
 * Find the chunk holding agino: the record at or left of it, if it covers
 * agino. *stat = 0 when no chunk does. The cursor is left on the record.
 */
static int dfs_inobt_lookup_chunk(struct dfs_btree_cur *cur, uint32_t agino,
				  struct dfs_inobt_rec *rec, int *stat)
{
	int error;

	cur->bc_rec.inobt.startino = agino;
	cur->bc_rec.inobt.freecount = 0;
	cur->bc_rec.inobt.free = 0;
	error = dfs_btree_lookup(cur, DFS_LOOKUP_LE, stat);
	if (error || !*stat)
		return error;
	error = dfs_inobt_get_checked(cur, rec, stat);
	if (error || !*stat)
		return error;
	if (agino - rec->startino >= DFS_INODES_PER_CHUNK)
		*stat = 0;
	return 0;
}

static void dfs_ialloc_mod_counts(struct dfs_mount *mp, struct dfs_buf *agbp, int64_t dcount,
				  int64_t dfree)
{
	struct dfs_agi *agi = agbp->b_addr;
	struct dfs_perag *pag = &mp->m_perag[agi->seqno];

	agi->count = (uint32_t)((int64_t)agi->count + dcount);
	agi->freecount = (uint32_t)((int64_t)agi->freecount + dfree);
	pag->pagi_count = agi->count;
	pag->pagi_freecount = agi->freecount;
	mp->m_icount = (uint64_t)((int64_t)mp->m_icount + dcount);
	mp->m_ifree = (uint64_t)((int64_t)mp->m_ifree + dfree);
}

/* Every dinode of a new chunk is written free but valid, so that the
 * cluster verifier can check whole blocks (XFS's xfs_ialloc_inode_init). */
static int dfs_ialloc_inode_init(struct dfs_trans *tp, uint64_t fsbno, uint32_t nblocks)
{
	struct dfs_mount *mp = dfs_trans_mount(tp);
	uint32_t b, i;
	int error;

	for (b = 0; b < nblocks; b++) {
		struct dfs_buf *bp;

		error = dfs_trans_get_buf(tp, fsbno + b, &dfs_inode_buf_ops, &bp);
		if (error)
			return error;
		memset(bp->b_addr, 0, bp->b_len);
		for (i = 0; i < mp->m_inopblock; i++) {
			struct dfs_dinode *dip = (struct dfs_dinode *)((char *)bp->b_addr +
								       i * DFS_INODE_SIZE);
			uint32_t gen = 0;

			dip->di_magic = DFS_DINODE_MAGIC;
			dip->di_version = DFS_VERSION;
			dip->di_format = DFS_DINODE_FMT_EXTENTS;
			dip->di_ino = dfs_make_ino(mp, fsbno + b, i);
			memcpy(dip->di_uuid, mp->m_sb.hdr.uuid, sizeof(dip->di_uuid));
			if (getrandom(&gen, sizeof(gen), GRND_NONBLOCK) != sizeof(gen))
				gen = (uint32_t)(dip->di_ino * 2654435761u);
			dip->di_gen = gen;
			dip->di_next_unlinked = DFS_NULLINO;
			dfs_dinode_calc_crc(dip);
		}
		dfs_trans_log_buf(tp, bp);
	}
	return 0;
}

/*
 * Allocate a new chunk in AG agno (XFS's xfs_ialloc_ag_alloc): an extent
 * of exactly one chunk, aligned to its length, near the parent.
 * -ENOSPC when the AG has no room for it.
 */
static int dfs_ialloc_ag_alloc(struct dfs_trans *tp, struct dfs_buf *agbp, uint32_t agno,
			       uint64_t parent_ino)
{
	struct dfs_mount *mp = dfs_trans_mount(tp);
	uint32_t chunk_blocks = dfs_ialloc_chunk_blocks(mp->m_inopblock);
	struct dfs_alloc_arg args = {
		.tp = tp,
		.mp = mp,
		.type = DFS_ALLOCTYPE_NEAR_BNO,
		.agno = agno,
		.minlen = chunk_blocks,
		.maxlen = chunk_blocks,
		.prod = 1,
		.alignment = chunk_blocks,
		.minleft = (uint32_t)dfs_inobt_maxlevels(mp),
		.total = dfs_ialloc_space_res(mp),
		.owner = agno,
	};
	struct dfs_btree_cur cur;
	struct dfs_inobt_rec rec;
	uint32_t agbno;
	int error, stat;

	if (parent_ino != DFS_NULLINO && dfs_ino_to_agno(mp, parent_ino) == agno)
		args.fsbno = dfs_ino_to_fsb(mp, parent_ino);
	else
		args.fsbno = dfs_agb_to_fsb(mp, agno, DFS_AGI_AGBNO);
	error = dfs_alloc_vextent(&args);
	if (error)
		return error;
	if (args.fsbno == DFS_NULLFSBLOCK)
		return -ENOSPC;
	agbno = dfs_fsb_to_agbno(mp, args.fsbno);
	if (dfs_fsb_to_agno(mp, args.fsbno) != agno || args.len != chunk_blocks ||
	    agbno % chunk_blocks) {
		dfs_err(mp, "inode chunk allocation in AG %u returned %u blocks at %" PRIu64
			", not %u aligned blocks in that AG", agno, args.len, args.fsbno,
			chunk_blocks);
		return -EFSCORRUPTED;
	}

	error = dfs_ialloc_inode_init(tp, args.fsbno, chunk_blocks);
	if (error)
		return error;

	rec.startino = agbno << mp->m_inopblog;
	rec.freecount = DFS_INODES_PER_CHUNK;
	rec.free = DFS_INOBT_ALL_FREE;
	dfs_inobt_init_cursor(&cur, tp, agbp, agno);
	cur.bc_rec.inobt = rec;
	error = dfs_btree_lookup(&cur, DFS_LOOKUP_EQ, &stat);
	if (error)
		goto out;
	if (stat) {
		error = dfs_ialloc_corrupt(mp, agno, "new inode chunk is already in the inode btree");
		goto out;
	}
	cur.bc_rec.inobt = rec;
	error = dfs_btree_insert(&cur, &stat);
	if (error)
		goto out;
	if (!stat) {
		error = dfs_ialloc_corrupt(mp, agno, "cannot insert a new inode chunk");
		goto out;
	}
	dfs_ialloc_mod_counts(mp, agbp, DFS_INODES_PER_CHUNK, DFS_INODES_PER_CHUNK);
	dfs_trans_log_buf(tp, agbp);
out:
	dfs_btree_del_cursor(&cur, error);
	return error;
}

/* Distance in inode numbers from pagino to the nearest inode of a chunk. */
static uint64_t dfs_chunk_distance(uint32_t pagino, const struct dfs_inobt_rec *rec)
{
	uint64_t last = (uint64_t)rec->startino + DFS_INODES_PER_CHUNK - 1;

	if (pagino < rec->startino)
		return rec->startino - pagino;
	if (pagino > last)
		return pagino - last;
	return 0;
}

/*
 * Take a free inode from AG agno, which has one (XFS's xfs_dialloc_ag).
 * With the parent in this AG, search left and right of it at once and take
 * the nearest chunk with a free inode, so that files stay near their
 * directory; otherwise the first chunk with a free inode.
 */
static int dfs_dialloc_ag(struct dfs_trans *tp, struct dfs_buf *agbp, uint32_t agno,
			  uint64_t parent_ino, uint64_t *inop)
{
	struct dfs_mount *mp = dfs_trans_mount(tp);
	struct dfs_btree_cur lcur, rcur, *cur = NULL;
	struct dfs_inobt_rec lrec = { 0 }, rrec = { 0 }, rec;
	union dfs_btree_rec urec;
	uint32_t pagino = 0;
	uint64_t ldist, rdist;
	int lstat, rstat = 0, error;
	bool lfound = false, rfound = false;
	int i;

	if (parent_ino != DFS_NULLINO && dfs_ino_to_agno(mp, parent_ino) == agno)
		pagino = dfs_ino_to_agino(mp, parent_ino);

	dfs_inobt_init_cursor(&lcur, tp, agbp, agno);
	dfs_inobt_init_cursor(&rcur, tp, agbp, agno);
	lcur.bc_rec.inobt = (struct dfs_inobt_rec){ .startino = pagino };
	error = dfs_btree_lookup(&lcur, DFS_LOOKUP_LE, &lstat);
	if (error)
		goto out;
	rcur.bc_rec.inobt = (struct dfs_inobt_rec){ .startino = pagino };
	error = dfs_btree_lookup(&rcur, DFS_LOOKUP_GE, &rstat);
	if (error)
		goto out;
	/* The chunk at pagino exactly is the left one. */
	if (lstat && rstat) {
		error = dfs_inobt_get_checked(&rcur, &rrec, &rstat);
		if (error)
			goto out;
		if (rstat && rrec.startino == pagino) {
			error = dfs_btree_increment(&rcur, 0, &rstat);
			if (error)
				goto out;
		}
	}

	for (;;) {
		if (lstat && !lfound) {
			error = dfs_inobt_get_checked(&lcur, &lrec, &lstat);
			if (error)
				goto out;
			lfound = lstat && lrec.freecount;
		}
		if (rstat && !rfound) {
			error = dfs_inobt_get_checked(&rcur, &rrec, &rstat);
			if (error)
				goto out;
			rfound = rstat && rrec.freecount;
		}
		if (!lstat && !rstat) {
			error = dfs_ialloc_corrupt(mp, agno,
						   "free inodes counted, but no record has one");
			goto out;
		}
		/* The nearer frontier decides: anything beyond a frontier is
		 * farther than the frontier itself. */
		ldist = lstat ? dfs_chunk_distance(pagino, &lrec) : UINT64_MAX;
		rdist = rstat ? dfs_chunk_distance(pagino, &rrec) : UINT64_MAX;
		if (ldist <= rdist) {
			if (lfound) {
				cur = &lcur;
				rec = lrec;
				break;
			}
			error = dfs_btree_decrement(&lcur, 0, &lstat);
		} else {
			if (rfound) {
				cur = &rcur;
				rec = rrec;
				break;
			}
			error = dfs_btree_increment(&rcur, 0, &rstat);
		}
		if (error)
			goto out;
	}

	i = __builtin_ctzll(rec.free);
	rec.free &= ~(1ull << i);
	rec.freecount--;
	urec.inobt = rec;
	error = dfs_btree_update(cur, &urec);
	if (error)
		goto out;
	dfs_ialloc_mod_counts(mp, agbp, 0, -1);
	dfs_trans_log_buf(tp, agbp);
	*inop = dfs_agino_to_ino(mp, agno, rec.startino + (uint32_t)i);
out:
	dfs_btree_del_cursor(&lcur, error);
	dfs_btree_del_cursor(&rcur, error);
	return error;
}

/* Worth trying to allocate a chunk in this AG? The in-core counters are a
 * hint; the allocator has the last word. */
static bool dfs_ialloc_ag_has_room(const struct dfs_mount *mp, const struct dfs_perag *pag)
{
	return pag->pagf_longest >= dfs_ialloc_chunk_blocks(mp->m_inopblock);
}

int dfs_dialloc(struct dfs_trans *tp, uint64_t parent_ino, uint32_t mode, uint64_t *inop)
{
	struct dfs_mount *mp = dfs_trans_mount(tp);
	uint32_t start, agno, tried;
	int error;

	if (S_ISDIR(mode) || parent_ino == DFS_NULLINO || !dfs_ino_in_range(mp, parent_ino)) {
		/* As xfs_ialloc_ag_select: new directories go round the AGs,
		 * so that the files created in them spread out too. */
		start = mp->m_agirotor % mp->m_agcount;
		mp->m_agirotor = (start + 1) % mp->m_agcount;
	} else {
		start = dfs_ino_to_agno(mp, parent_ino);
	}

	for (tried = 0; tried < mp->m_agcount; tried++) {
		struct dfs_perag *pag;
		struct dfs_buf *agbp;

		agno = (start + tried) % mp->m_agcount;
		pag = &mp->m_perag[agno];
		if (!pag->pagi_freecount && !dfs_ialloc_ag_has_room(mp, pag))
			continue;
		error = dfs_read_agi(mp, tp, agno, &agbp);
		if (error)
			return error;
		if (!((struct dfs_agi *)agbp->b_addr)->freecount) {
			error = dfs_ialloc_ag_alloc(tp, agbp, agno, parent_ino);
			if (error == -ENOSPC)
				continue;
			if (error)
				return error;
		}
		return dfs_dialloc_ag(tp, agbp, agno, parent_ino, inop);
	}
	return -ENOSPC;
}

int dfs_difree(struct dfs_trans *tp, uint64_t ino)
{
	struct dfs_mount *mp = dfs_trans_mount(tp);
	uint32_t chunk_blocks = dfs_ialloc_chunk_blocks(mp->m_inopblock);
	struct dfs_btree_cur cur;
	struct dfs_inobt_rec rec;
	union dfs_btree_rec urec;
	struct dfs_buf *agbp;
	uint32_t agno, agino, off;
	uint64_t chunk_fsbno;
	char why[96];
	int error, stat;

	if (!dfs_ino_in_range(mp, ino))
		return -EINVAL;
	agno = dfs_ino_to_agno(mp, ino);
	agino = dfs_ino_to_agino(mp, ino);
	error = dfs_read_agi(mp, tp, agno, &agbp);
	if (error)
		return error;

	dfs_inobt_init_cursor(&cur, tp, agbp, agno);
	error = dfs_inobt_lookup_chunk(&cur, agino, &rec, &stat);
	if (error)
		goto out;
	off = stat ? agino - rec.startino : 0;
	if (!stat || (rec.free & (1ull << off))) {
		snprintf(why, sizeof(why), "freeing inode %" PRIu64 ", which is %s", ino,
			 stat ? "already free" : "in no inode chunk");
		error = dfs_ialloc_corrupt(mp, agno, why);
		goto out;
	}
	rec.free |= 1ull << off;
	rec.freecount++;

	if (rec.freecount < DFS_INODES_PER_CHUNK) {
		urec.inobt = rec;
		error = dfs_btree_update(&cur, &urec);
		if (error)
			goto out;
		dfs_ialloc_mod_counts(mp, agbp, 0, 1);
		dfs_trans_log_buf(tp, agbp);
		goto out;
	}

	/* The whole chunk is free: give it back (XFS's xfs_difree_inode_chunk). */
	error = dfs_btree_delete(&cur, &stat);
	if (error)
		goto out;
	if (!stat) {
		error = dfs_ialloc_corrupt(mp, agno, "cannot delete a free inode chunk");
		goto out;
	}
	dfs_ialloc_mod_counts(mp, agbp, -(int64_t)DFS_INODES_PER_CHUNK,
			      -(int64_t)(DFS_INODES_PER_CHUNK - 1));
	dfs_trans_log_buf(tp, agbp);
	dfs_btree_del_cursor(&cur, 0);

	chunk_fsbno = dfs_agb_to_fsb(mp, agno, rec.startino >> mp->m_inopblog);
	for (off = 0; off < chunk_blocks; off++) {
		struct dfs_buf *bp;

		error = dfs_trans_get_buf(tp, chunk_fsbno + off, &dfs_inode_buf_ops, &bp);
		if (error)
			return error;
		dfs_trans_binval(tp, bp);
	}
	return dfs_free_extent(tp, chunk_fsbno, chunk_blocks);
out:
	dfs_btree_del_cursor(&cur, error);
	return error;
}

int dfs_imap_check(struct dfs_mount *mp, struct dfs_trans *tp, uint64_t ino)
{
	struct dfs_btree_cur cur;
	struct dfs_inobt_rec rec;
	struct dfs_buf *agbp;
	uint32_t agno, agino;
	int error, stat;

	if (!dfs_ino_in_range(mp, ino))
		return -EINVAL;
	agno = dfs_ino_to_agno(mp, ino);
	agino = dfs_ino_to_agino(mp, ino);
	error = dfs_read_agi(mp, tp, agno, &agbp);
	if (error)
		return error;
	dfs_inobt_init_cursor(&cur, tp, agbp, agno);
	error = dfs_inobt_lookup_chunk(&cur, agino, &rec, &stat);
	dfs_btree_del_cursor(&cur, error);
	dfs_ialloc_relse(tp, agbp);
	if (error)
		return error;
	if (!stat)
		return -EINVAL;
	return !(rec.free & (1ull << (agino - rec.startino)));
}
