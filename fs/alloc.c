/* SPDX-License-Identifier: MIT */
/*
 * Free space allocation (XFS's xfs_alloc.c and xfs_extent_busy.c).
 *
 * The call structure is XFS's, and it is deep on purpose (reclaim's stack
 * depth is measured through it):
 *
 *   dfs_alloc_vextent                       which AG(s), and reservation
 *     dfs_alloc_fix_freelist                AGFL sized for this allocation
 *       dfs_alloc_ag_vextent                (also refills the AGFL)
 *     dfs_alloc_ag_vextent                  counters
 *       dfs_alloc_ag_vextent_near/size/exact  choose an extent
 *         dfs_alloc_fixup_trees             take it out of bnobt and cntbt
 *           dfs_btree_insert -> dfs_btree_split -> alloc_block (the AGFL)
 *
 * Block accounting: a transaction reserves blocks up front (blkres) from
 * m_fdblocks; dfs_alloc_vextent charges what it hands out to that
 * reservation with dfs_trans_use_blocks, except for delayed allocation
 * conversion (args->wasdel), whose blocks were reserved at write time.
 * dfs_free_extent gives freed blocks back through the transaction. Moving
 * blocks between the trees and the AGFL, or to btree blocks, changes
 * freeblks, flcount and btreeblks but never their sum, so it needs no
 * reservation.
 *
 * Busy extents: an extent freed by a transaction stays out of reach of the
 * allocator until that transaction's log record is durable (a committed
 * callback clears it). The allocator trims busy ranges out of what it
 * looks at; if that leaves nothing, it forces the log once and retries.
 * Metadata and data are treated alike, which is simpler than XFS (which lets
 * metadata reuse busy blocks) and never wrong.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "btree.h"
#include "buf.h"
#include "log.h"
#include "mount.h"
#include "msg.h"
#include "trans.h"

struct dfs_extent_busy {
	struct dfs_extent_busy *next;	/* per-AG list, sorted by bno */
	uint32_t agno;
	uint32_t bno;
	uint32_t len;
	uint64_t id;			/* names it to its committed callback */
};

/* dfs_alloc_fix_freelist flags */
#define DFS_ALLOC_FLAG_FREEING	(1u << 0)	/* freeing: no space checks */

static int dfs_free_ag_extent(struct dfs_trans *tp, struct dfs_buf *agbp, uint32_t agno,
			      uint32_t bno, uint32_t len, bool busy);

static inline struct dfs_agf *agbp_agf(const struct dfs_buf *agbp)
{
	return agbp->b_addr;
}

/* ---- AGF, AGFL and AGI verifiers ---------------------------------------- */

static int dfs_agf_check(struct dfs_buf *bp)
{
	struct dfs_mount *mp = bp->b_mount;
	const struct dfs_agf *agf = bp->b_addr;
	uint32_t agno = mp->m_agblocks ? dfs_fsb_to_agno(mp, bp->b_blkno) : agf->seqno;
	uint32_t slots = DFS_AGFL_SIZE(mp->m_blocksize);
	char why[128];

	if (agf->hdr.magic != DFS_AGF_MAGIC) {
		snprintf(why, sizeof(why), "bad magic 0x%08x", agf->hdr.magic);
		goto bad;
	}
	if (agf->seqno != agno) {
		snprintf(why, sizeof(why), "sequence number %u in AG %u", agf->seqno, agno);
		goto bad;
	}
	if (agf->length < DFS_AG_FIRST_FREE || (mp->m_agblocks && agf->length > mp->m_agblocks)) {
		snprintf(why, sizeof(why), "length %u", agf->length);
		goto bad;
	}
	if (agf->bno_level < 1 || agf->bno_level > DFS_BTREE_MAXLEVELS || agf->cnt_level < 1 ||
	    agf->cnt_level > DFS_BTREE_MAXLEVELS) {
		snprintf(why, sizeof(why), "tree heights %u/%u", agf->bno_level, agf->cnt_level);
		goto bad;
	}
	if (mp->m_agblocks &&
	    (dfs_fsb_to_agno(mp, agf->bno_root) != agno ||
	     dfs_fsb_to_agbno(mp, agf->bno_root) >= agf->length ||
	     dfs_fsb_to_agno(mp, agf->cnt_root) != agno ||
	     dfs_fsb_to_agbno(mp, agf->cnt_root) >= agf->length)) {
		snprintf(why, sizeof(why), "tree roots %" PRIu64 "/%" PRIu64 " outside the AG",
			 agf->bno_root, agf->cnt_root);
		goto bad;
	}
	if (agf->flfirst >= slots || agf->fllast >= slots || agf->flcount > slots ||
	    (agf->flcount == 0 && (agf->fllast + 1) % slots != agf->flfirst) ||
	    (agf->flcount && (agf->fllast + slots - agf->flfirst) % slots + 1 != agf->flcount)) {
		snprintf(why, sizeof(why), "free list first %u last %u count %u inconsistent",
			 agf->flfirst, agf->fllast, agf->flcount);
		goto bad;
	}
	if (agf->freeblks > agf->length || agf->longest > agf->freeblks ||
	    (agf->freeblks && !agf->longest) || agf->btreeblks > agf->length) {
		snprintf(why, sizeof(why), "counters free %u longest %u btree %u", agf->freeblks,
			 agf->longest, agf->btreeblks);
		goto bad;
	}
	return 0;
bad:
	return dfs_corrupt(mp, "AGF", bp->b_blkno, why);
}

static int dfs_agf_check_buf(struct dfs_buf *bp, bool reading)
{
	return dfs_agf_check(bp);
}

const struct dfs_buf_ops dfs_agf_buf_ops = {
	.name = "AGF",
	.magic = DFS_AGF_MAGIC,
	.check = dfs_agf_check_buf,
};

static int dfs_agfl_check(struct dfs_buf *bp)
{
	struct dfs_mount *mp = bp->b_mount;
	const struct dfs_agfl *agfl = bp->b_addr;
	uint32_t slots = DFS_AGFL_SIZE(mp->m_blocksize);
	char why[96];
	uint32_t i;

	if (agfl->hdr.magic != DFS_AGFL_MAGIC)
		return dfs_corrupt(mp, "AGFL", bp->b_blkno, "bad magic");
	if (mp->m_agblocks && agfl->seqno != dfs_fsb_to_agno(mp, bp->b_blkno))
		return dfs_corrupt(mp, "AGFL", bp->b_blkno, "sequence number of another AG");
	for (i = 0; i < slots; i++) {
		if (agfl->bno[i] == DFS_NULLAGBLOCK)
			continue;
		if (agfl->bno[i] < DFS_AG_FIRST_FREE ||
		    (mp->m_agblocks && agfl->bno[i] >= mp->m_agblocks)) {
			snprintf(why, sizeof(why), "slot %u holds block %u", i, agfl->bno[i]);
			return dfs_corrupt(mp, "AGFL", bp->b_blkno, why);
		}
	}
	return 0;
}

static int dfs_agfl_check_buf(struct dfs_buf *bp, bool reading)
{
	return dfs_agfl_check(bp);
}

const struct dfs_buf_ops dfs_agfl_buf_ops = {
	.name = "AGFL",
	.magic = DFS_AGFL_MAGIC,
	.check = dfs_agfl_check_buf,
};

static int dfs_agi_check(struct dfs_buf *bp)
{
	struct dfs_mount *mp = bp->b_mount;
	const struct dfs_agi *agi = bp->b_addr;
	uint32_t agno = mp->m_agblocks ? dfs_fsb_to_agno(mp, bp->b_blkno) : agi->seqno;
	char why[96];

	if (agi->hdr.magic != DFS_AGI_MAGIC)
		return dfs_corrupt(mp, "AGI", bp->b_blkno, "bad magic");
	if (agi->seqno != agno) {
		snprintf(why, sizeof(why), "sequence number %u in AG %u", agi->seqno, agno);
		return dfs_corrupt(mp, "AGI", bp->b_blkno, why);
	}
	if (agi->length < DFS_AG_FIRST_FREE || (mp->m_agblocks && agi->length > mp->m_agblocks))
		return dfs_corrupt(mp, "AGI", bp->b_blkno, "bad length");
	if (agi->level < 1 || agi->level > DFS_BTREE_MAXLEVELS)
		return dfs_corrupt(mp, "AGI", bp->b_blkno, "inobt height out of range");
	if (mp->m_agblocks && (dfs_fsb_to_agno(mp, agi->root) != agno ||
			       dfs_fsb_to_agbno(mp, agi->root) >= agi->length))
		return dfs_corrupt(mp, "AGI", bp->b_blkno, "inobt root outside the AG");
	if (agi->freecount > agi->count)
		return dfs_corrupt(mp, "AGI", bp->b_blkno, "more free inodes than inodes");
	return 0;
}

static int dfs_agi_check_buf(struct dfs_buf *bp, bool reading)
{
	return dfs_agi_check(bp);
}

const struct dfs_buf_ops dfs_agi_buf_ops = {
	.name = "AGI",
	.magic = DFS_AGI_MAGIC,
	.check = dfs_agi_check_buf,
};

static int dfs_read_agbuf(struct dfs_mount *mp, struct dfs_trans *tp, uint32_t agno,
			  uint32_t agbno, const struct dfs_buf_ops *ops, struct dfs_buf **bpp)
{
	uint64_t fsbno = dfs_agb_to_fsb(mp, agno, agbno);

	if (agno >= mp->m_agcount)
		return -EINVAL;
	if (tp)
		return dfs_trans_read_buf(tp, fsbno, ops, bpp);
	return dfs_buf_read(mp, fsbno, ops, bpp);
}

int dfs_alloc_read_agf(struct dfs_mount *mp, struct dfs_trans *tp, uint32_t agno,
		       struct dfs_buf **bpp)
{
	return dfs_read_agbuf(mp, tp, agno, DFS_AGF_AGBNO, &dfs_agf_buf_ops, bpp);
}

static int dfs_alloc_read_agfl(struct dfs_mount *mp, struct dfs_trans *tp, uint32_t agno,
			       struct dfs_buf **bpp)
{
	return dfs_read_agbuf(mp, tp, agno, DFS_AGFL_AGBNO, &dfs_agfl_buf_ops, bpp);
}

int dfs_read_agi(struct dfs_mount *mp, struct dfs_trans *tp, uint32_t agno, struct dfs_buf **bpp)
{
	return dfs_read_agbuf(mp, tp, agno, DFS_AGI_AGBNO, &dfs_agi_buf_ops, bpp);
}

/* ---- per-AG state ------------------------------------------------------- */

int dfs_perag_init(struct dfs_mount *mp)
{
	uint64_t nfree = 0, icount = 0, ifree = 0;
	struct dfs_buf *bp;
	uint32_t agno;
	int error;

	mp->m_perag = calloc(mp->m_agcount, sizeof(*mp->m_perag));
	if (!mp->m_perag)
		return -ENOMEM;
	for (agno = 0; agno < mp->m_agcount; agno++) {
		struct dfs_perag *pag = &mp->m_perag[agno];
		const struct dfs_agf *agf;
		const struct dfs_agi *agi;

		error = dfs_alloc_read_agf(mp, NULL, agno, &bp);
		if (error)
			goto fail;
		agf = bp->b_addr;
		pag->pag_agno = agno;
		pag->pag_length = agf->length;
		pag->pagf_freeblks = agf->freeblks;
		pag->pagf_longest = agf->longest;
		pag->pagf_flcount = agf->flcount;
		nfree += (uint64_t)agf->freeblks + agf->flcount + agf->btreeblks;
		dfs_buf_relse(bp);

		error = dfs_read_agi(mp, NULL, agno, &bp);
		if (error)
			goto fail;
		agi = bp->b_addr;
		pag->pagi_count = agi->count;
		pag->pagi_freecount = agi->freecount;
		icount += agi->count;
		ifree += agi->freecount;
		dfs_buf_relse(bp);
	}
	mp->m_alloc_set_aside = (uint64_t)mp->m_agcount * (DFS_AGFL_RESERVE + 4);
	mp->m_fdblocks = nfree > mp->m_alloc_set_aside ? nfree - mp->m_alloc_set_aside : 0;
	mp->m_icount = icount;
	mp->m_ifree = ifree;
	return 0;
fail:
	free(mp->m_perag);
	mp->m_perag = NULL;
	return error;
}

void dfs_perag_destroy(struct dfs_mount *mp)
{
	if (!mp->m_perag)
		return;
	dfs_extent_busy_clear_all(mp);
	free(mp->m_perag);
	mp->m_perag = NULL;
}

/* ---- busy extents ------------------------------------------------------- */

static uint64_t dfs_extent_busy_next_id;

/* The transaction that freed the extent is durable: it may be reused. */
static void dfs_extent_busy_clear_cb(struct dfs_mount *mp, void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg;
	uint32_t agno;

	if (!mp->m_perag)
		return;
	for (agno = 0; agno < mp->m_agcount; agno++) {
		struct dfs_extent_busy **pp = &mp->m_perag[agno].pag_busy;

		for (; *pp; pp = &(*pp)->next) {
			if ((*pp)->id == id) {
				struct dfs_extent_busy *busyp = *pp;

				*pp = busyp->next;
				free(busyp);
				return;
			}
		}
	}
}

int dfs_extent_busy_insert(struct dfs_trans *tp, uint32_t agno, uint32_t agbno, uint32_t len)
{
	struct dfs_mount *mp = dfs_trans_mount(tp);
	struct dfs_extent_busy *new, **pp;
	int error;

	new = calloc(1, sizeof(*new));
	if (!new)
		return -ENOMEM;
	new->agno = agno;
	new->bno = agbno;
	new->len = len;
	new->id = __atomic_add_fetch(&dfs_extent_busy_next_id, 1, __ATOMIC_RELAXED);
	error = dfs_trans_add_committed_cb(tp, dfs_extent_busy_clear_cb,
					   (void *)(uintptr_t)new->id);
	if (error) {
		free(new);
		return error;
	}
	for (pp = &mp->m_perag[agno].pag_busy; *pp && (*pp)->bno < agbno; pp = &(*pp)->next)
		;
	new->next = *pp;
	*pp = new;
	return 0;
}

int dfs_extent_busy_search(struct dfs_mount *mp, uint32_t agno, uint32_t agbno, uint32_t len)
{
	const struct dfs_extent_busy *busyp;
	uint64_t end = (uint64_t)agbno + len;

	for (busyp = mp->m_perag[agno].pag_busy; busyp; busyp = busyp->next) {
		if (busyp->bno >= end)
			break;
		if ((uint64_t)busyp->bno + busyp->len > agbno)
			return 1;
	}
	return 0;
}

void dfs_extent_busy_clear_all(struct dfs_mount *mp)
{
	uint32_t agno;

	if (!mp->m_perag)
		return;
	for (agno = 0; agno < mp->m_agcount; agno++) {
		struct dfs_perag *pag = &mp->m_perag[agno];

		while (pag->pag_busy) {
			struct dfs_extent_busy *busyp = pag->pag_busy;

			pag->pag_busy = busyp->next;
			free(busyp);
		}
	}
}

/*
 * Cut busy ranges out of the free extent [*bno, *bno + *len): what is left
 * is its longest non-busy piece (XFS's xfs_extent_busy_trim). Returns true
 * if anything was busy.
 */
static bool dfs_extent_busy_trim(struct dfs_alloc_arg *args, uint32_t *bno, uint32_t *len)
{
	const struct dfs_extent_busy *busyp;
	uint64_t start = *bno, end = start + *len, piece = start;
	uint64_t best = start, bestlen = 0;
	bool busy = false;

	for (busyp = args->pag->pag_busy; busyp; busyp = busyp->next) {
		uint64_t bstart = busyp->bno, bend = bstart + busyp->len;

		if (bstart >= end)
			break;
		if (bend <= piece)
			continue;
		busy = true;
		if (bstart > piece && bstart - piece > bestlen) {
			best = piece;
			bestlen = bstart - piece;
		}
		piece = bend;
	}
	if (!busy)
		return false;
	if (piece < end && end - piece > bestlen) {
		best = piece;
		bestlen = end - piece;
	}
	*bno = (uint32_t)best;
	*len = (uint32_t)bestlen;
	return true;
}

/* Force the log so that every committed free becomes reusable; once per
 * allocation, since what stays busy afterwards was freed by this very
 * transaction. */
static int dfs_extent_busy_flush(struct dfs_alloc_arg *args, bool *retry)
{
	int error;

	*retry = false;
	if (args->busy_forced)
		return 0;
	args->busy_forced = 1;
	error = dfs_log_force(args->mp);
	if (error)
		return error;
	*retry = true;
	return 0;
}

/* ---- free list ---------------------------------------------------------- */

uint32_t dfs_alloc_min_freelist(const struct dfs_mount *mp, const struct dfs_buf *agbp)
{
	const struct dfs_agf *agf = agbp_agf(agbp);
	uint32_t levels = agf->bno_level > agf->cnt_level ? agf->bno_level : agf->cnt_level;
	uint32_t need = 2 * (levels + 1);

	return need < DFS_AGFL_RESERVE ? need : DFS_AGFL_RESERVE;
}

int dfs_alloc_get_freelist(struct dfs_trans *tp, struct dfs_buf *agbp, uint32_t *agbno,
			   int btreeblk)
{
	struct dfs_mount *mp = agbp->b_mount;
	struct dfs_agf *agf = agbp_agf(agbp);
	uint32_t agno = agf->seqno;
	const struct dfs_agfl *agfl;
	struct dfs_buf *agflbp;
	uint32_t bno;
	int error;

	*agbno = DFS_NULLAGBLOCK;
	if (agf->flcount == 0)
		return 0;
	error = dfs_alloc_read_agfl(mp, tp, agno, &agflbp);
	if (error)
		return error;
	agfl = agflbp->b_addr;
	bno = agfl->bno[agf->flfirst];
	if (bno == DFS_NULLAGBLOCK || bno < DFS_AG_FIRST_FREE || bno >= agf->length) {
		char why[64];

		snprintf(why, sizeof(why), "slot %u holds block %u", agf->flfirst, bno);
		return dfs_corrupt(mp, "AGFL", agflbp->b_blkno, why);
	}
	if (++agf->flfirst == DFS_AGFL_SIZE(mp->m_blocksize))
		agf->flfirst = 0;
	agf->flcount--;
	mp->m_perag[agno].pagf_flcount--;
	if (btreeblk)
		agf->btreeblks++;
	dfs_trans_log_buf(tp, agbp);
	*agbno = bno;
	return 0;
}

int dfs_alloc_put_freelist(struct dfs_trans *tp, struct dfs_buf *agbp, uint32_t agbno,
			   int btreeblk)
{
	struct dfs_mount *mp = agbp->b_mount;
	struct dfs_agf *agf = agbp_agf(agbp);
	uint32_t agno = agf->seqno;
	uint32_t slots = DFS_AGFL_SIZE(mp->m_blocksize);
	struct dfs_agfl *agfl;
	struct dfs_buf *agflbp;
	int error;

	if (agf->flcount >= slots)
		return dfs_corrupt(mp, "AGF", agbp->b_blkno, "free list overflows");
	if (btreeblk && agf->btreeblks == 0)
		return dfs_corrupt(mp, "AGF", agbp->b_blkno, "btree block count underflows");
	error = dfs_alloc_read_agfl(mp, tp, agno, &agflbp);
	if (error)
		return error;
	agfl = agflbp->b_addr;
	if (++agf->fllast == slots)
		agf->fllast = 0;
	agfl->bno[agf->fllast] = agbno;
	agf->flcount++;
	mp->m_perag[agno].pagf_flcount++;
	if (btreeblk)
		agf->btreeblks--;
	dfs_trans_log_buf(tp, agflbp);
	dfs_trans_log_buf(tp, agbp);
	return 0;
}

/* ---- btree helpers (XFS's xfs_alloc_lookup_*, xfs_alloc_get_rec) -------- */

static int dfs_alloc_lookup(struct dfs_btree_cur *cur, enum dfs_lookup dir, uint32_t bno,
			    uint32_t len, int *stat)
{
	cur->bc_rec.alloc.startblock = bno;
	cur->bc_rec.alloc.blockcount = len;
	return dfs_btree_lookup(cur, dir, stat);
}

static int dfs_alloc_get_rec(struct dfs_btree_cur *cur, uint32_t *bno, uint32_t *len, int *stat)
{
	union dfs_btree_rec rec;
	int error;

	error = dfs_btree_get_rec(cur, &rec, stat);
	if (error || !*stat)
		return error;
	if (!cur->bc_ops->rec_valid(cur, &rec)) {
		char why[80];

		snprintf(why, sizeof(why), "free extent %u+%u outside the AG",
			 rec.alloc.startblock, rec.alloc.blockcount);
		return dfs_corrupt(cur->bc_mp, cur->bc_ops->buf_ops->name,
				   cur->bc_bufs[0]->b_blkno, why);
	}
	*bno = rec.alloc.startblock;
	*len = rec.alloc.blockcount;
	return 0;
}

static int dfs_alloc_update(struct dfs_btree_cur *cur, uint32_t bno, uint32_t len)
{
	union dfs_btree_rec rec;

	memset(&rec, 0, sizeof(rec));
	rec.alloc.startblock = bno;
	rec.alloc.blockcount = len;
	return dfs_btree_update(cur, &rec);
}

/* Insert (bno, len), which must not be in the tree yet. */
static int dfs_alloc_insert(struct dfs_btree_cur *cur, uint32_t bno, uint32_t len)
{
	int i, error;

	error = dfs_alloc_lookup(cur, DFS_LOOKUP_EQ, bno, len, &i);
	if (error)
		return error;
	if (i)
		return dfs_corrupt(cur->bc_mp, cur->bc_ops->buf_ops->name,
				   cur->bc_bufs[0]->b_blkno, "free extent already recorded");
	error = dfs_btree_insert(cur, &i);
	if (!error && !i)
		error = -EFSCORRUPTED;
	return error;
}

/* Find (bno, len), which must be in the tree, and delete it. */
static int dfs_alloc_delete(struct dfs_btree_cur *cur, uint32_t bno, uint32_t len)
{
	int i, error;

	error = dfs_alloc_lookup(cur, DFS_LOOKUP_EQ, bno, len, &i);
	if (error)
		return error;
	if (!i)
		return dfs_corrupt(cur->bc_mp, cur->bc_ops->buf_ops->name,
				   cur->bc_bufs[0]->b_blkno, "free extent missing from the tree");
	error = dfs_btree_delete(cur, &i);
	if (!error && !i)
		error = -EFSCORRUPTED;
	return error;
}

/* agf->longest is the last record of the cntbt. */
static int dfs_alloc_fixup_longest(struct dfs_btree_cur *cnt_cur)
{
	struct dfs_buf *agbp = cnt_cur->bc_private.a.agbp;
	struct dfs_agf *agf = agbp_agf(agbp);
	uint32_t bno, len = 0;
	int i, error;

	error = dfs_alloc_lookup(cnt_cur, DFS_LOOKUP_LE, UINT32_MAX, UINT32_MAX, &i);
	if (error)
		return error;
	if (i) {
		error = dfs_alloc_get_rec(cnt_cur, &bno, &len, &i);
		if (error)
			return error;
	}
	if (agf->longest != len) {
		agf->longest = len;
		cnt_cur->bc_mp->m_perag[cnt_cur->bc_private.a.agno].pagf_longest = len;
		dfs_trans_log_buf(cnt_cur->bc_tp, agbp);
	}
	return 0;
}

/*
 * Take [rbno, rbno + rlen) out of the free extent [fbno, fbno + flen) in
 * both trees, putting back the one or two pieces left over
 * (XFS's xfs_alloc_fixup_trees).
 */
static int dfs_alloc_fixup_trees(struct dfs_btree_cur *cnt_cur, struct dfs_btree_cur *bno_cur,
				 uint32_t fbno, uint32_t flen, uint32_t rbno, uint32_t rlen)
{
	uint32_t nfbno1 = DFS_NULLAGBLOCK, nflen1 = 0, nfbno2 = DFS_NULLAGBLOCK, nflen2 = 0;
	uint32_t bno, len;
	int i, error;

	if (rbno < fbno || (uint64_t)rbno + rlen > (uint64_t)fbno + flen || rlen == 0)
		return dfs_corrupt(cnt_cur->bc_mp, "free extent", fbno,
				   "allocation outside the extent it was taken from");

	/* both trees must hold the extent exactly */
	error = dfs_alloc_lookup(cnt_cur, DFS_LOOKUP_EQ, fbno, flen, &i);
	if (error)
		return error;
	if (!i)
		return dfs_corrupt(cnt_cur->bc_mp, "cntbt", cnt_cur->bc_bufs[0]->b_blkno,
				   "free extent missing");
	error = dfs_alloc_lookup(bno_cur, DFS_LOOKUP_EQ, fbno, flen, &i);
	if (error)
		return error;
	if (i)
		error = dfs_alloc_get_rec(bno_cur, &bno, &len, &i);
	if (error)
		return error;
	if (!i || len != flen)
		return dfs_corrupt(bno_cur->bc_mp, "bnobt", bno_cur->bc_bufs[0]->b_blkno,
				   "free extent missing or of another length than in the cntbt");

	if (rbno == fbno && rlen == flen) {
		/* all of it */
	} else if (rbno == fbno) {
		nfbno1 = rbno + rlen;
		nflen1 = flen - rlen;
	} else if (rbno + rlen == fbno + flen) {
		nfbno1 = fbno;
		nflen1 = flen - rlen;
	} else {
		nfbno1 = fbno;
		nflen1 = rbno - fbno;
		nfbno2 = rbno + rlen;
		nflen2 = fbno + flen - nfbno2;
	}

	error = dfs_btree_delete(cnt_cur, &i);
	if (error)
		return error;
	if (nfbno1 != DFS_NULLAGBLOCK) {
		error = dfs_alloc_insert(cnt_cur, nfbno1, nflen1);
		if (error)
			return error;
	}
	if (nfbno2 != DFS_NULLAGBLOCK) {
		error = dfs_alloc_insert(cnt_cur, nfbno2, nflen2);
		if (error)
			return error;
	}

	if (nfbno1 == DFS_NULLAGBLOCK) {
		error = dfs_btree_delete(bno_cur, &i);
	} else {
		/* the first piece keeps the record's place in the bnobt */
		error = dfs_alloc_update(bno_cur, nfbno1, nflen1);
		if (!error && nfbno2 != DFS_NULLAGBLOCK)
			error = dfs_alloc_insert(bno_cur, nfbno2, nflen2);
	}
	if (error)
		return error;
	return dfs_alloc_fixup_longest(cnt_cur);
}

/* ---- choosing an extent ------------------------------------------------- */

static inline uint32_t roundup_u32(uint32_t v, uint32_t a)
{
	return (uint32_t)(((uint64_t)v + a - 1) / a * a);
}

/*
 * The usable part of a free extent: its longest non-busy piece, started at
 * the alignment (XFS's xfs_alloc_compute_aligned).
 */
static bool dfs_alloc_compute_aligned(struct dfs_alloc_arg *args, uint32_t foundbno,
				      uint32_t foundlen, uint32_t *resbno, uint32_t *reslen)
{
	uint32_t bno = foundbno, len = foundlen;
	bool busy = dfs_extent_busy_trim(args, &bno, &len);

	if (args->alignment > 1 && len >= args->minlen) {
		uint32_t aligned = roundup_u32(bno, args->alignment);
		uint32_t diff = aligned - bno;

		*resbno = aligned;
		*reslen = diff >= len ? 0 : len - diff;
	} else {
		*resbno = bno;
		*reslen = len;
	}
	return busy;
}

/* Trim args->len so that len % prod == mod (XFS's xfs_alloc_fix_len). */
static void dfs_alloc_fix_len(struct dfs_alloc_arg *args)
{
	uint32_t rlen = args->len, k;

	if (args->prod <= 1 || rlen < args->mod || rlen == args->maxlen ||
	    (args->mod == 0 && rlen < args->prod))
		return;
	k = rlen % args->prod;
	if (k == args->mod)
		return;
	if (k > args->mod)
		rlen = rlen - (k - args->mod);
	else
		rlen = rlen - args->prod + (args->mod - k);
	if ((int)rlen < (int)args->minlen)
		return;
	args->len = rlen;
}

/* Leave minleft blocks in the AG (XFS's xfs_alloc_fix_minleft). */
static bool dfs_alloc_fix_minleft(struct dfs_alloc_arg *args)
{
	const struct dfs_agf *agf = agbp_agf(args->agbp);
	int64_t diff;

	if (args->minleft == 0)
		return true;
	diff = (int64_t)agf->freeblks + agf->flcount - args->len - args->minleft;
	if (diff >= 0)
		return true;
	args->len = (uint32_t)((int64_t)args->len + diff);
	if (args->len >= args->minlen)
		return true;
	args->agbno = DFS_NULLAGBLOCK;
	return false;
}

/*
 * Where in the free extent [freebno, freebno + freelen) to put wantlen
 * blocks so that they start closest to wantbno, aligned; returns the
 * distance (XFS's xfs_alloc_compute_diff). freelen >= wantlen, and freebno
 * is aligned.
 */
static uint32_t dfs_alloc_compute_diff(uint32_t wantbno, uint32_t wantlen, uint32_t alignment,
				       uint32_t freebno, uint32_t freelen, uint32_t *newbnop)
{
	uint32_t lo = freebno, hi = freebno + freelen - wantlen, t, a, b, best;

	if (alignment > 1)
		hi = hi / alignment * alignment;
	t = wantbno < lo ? lo : wantbno > hi ? hi : wantbno;
	if (alignment > 1) {
		a = t / alignment * alignment;
		if (a < lo)
			a = lo;
		b = a + alignment;
		best = a;
		if (b <= hi && (b > wantbno ? b - wantbno : wantbno - b) <
			       (a > wantbno ? a - wantbno : wantbno - a))
			best = b;
	} else {
		best = t;
	}
	*newbnop = best;
	return best > wantbno ? best - wantbno : wantbno - best;
}

/*
 * Exactly at args->agbno (XFS's xfs_alloc_ag_vextent_exact): the free
 * extent holding agbno must run on for at least minlen blocks, none busy.
 */
static int dfs_alloc_ag_vextent_exact(struct dfs_alloc_arg *args)
{
	struct dfs_btree_cur bno_cur, cnt_cur;
	uint32_t fbno, flen, tend, end, busy_end;
	const struct dfs_extent_busy *busyp;
	int i, error;

	dfs_allocbt_init_cursor(&bno_cur, args->tp, args->agbp, args->agno, DFS_BTNUM_BNO);
	error = dfs_alloc_lookup(&bno_cur, DFS_LOOKUP_LE, args->agbno, args->minlen, &i);
	if (error || !i)
		goto not_found;
	error = dfs_alloc_get_rec(&bno_cur, &fbno, &flen, &i);
	if (error || !i)
		goto not_found;
	tend = fbno + flen;
	if (fbno > args->agbno || tend <= args->agbno ||
	    (args->alignment > 1 && args->agbno % args->alignment))
		goto not_found;
	/* busy blocks cut the run short */
	busy_end = tend;
	for (busyp = args->pag->pag_busy; busyp; busyp = busyp->next) {
		if (busyp->bno >= tend)
			break;
		if (busyp->bno + busyp->len <= args->agbno)
			continue;
		busy_end = busyp->bno > args->agbno ? busyp->bno : args->agbno;
		break;
	}
	if (busy_end < tend && busy_end < args->agbno + args->minlen) {
		bool retry;

		dfs_btree_del_cursor(&bno_cur, 0);
		error = dfs_extent_busy_flush(args, &retry);
		if (error)
			return error;
		if (retry)
			return dfs_alloc_ag_vextent_exact(args);
		args->agbno = DFS_NULLAGBLOCK;
		return 0;
	}
	end = busy_end;
	if ((uint64_t)args->agbno + args->maxlen < end)
		end = args->agbno + args->maxlen;
	args->len = end - args->agbno;
	dfs_alloc_fix_len(args);
	if (args->len < args->minlen || !dfs_alloc_fix_minleft(args))
		goto not_found;

	dfs_allocbt_init_cursor(&cnt_cur, args->tp, args->agbp, args->agno, DFS_BTNUM_CNT);
	error = dfs_alloc_fixup_trees(&cnt_cur, &bno_cur, fbno, flen, args->agbno, args->len);
	dfs_btree_del_cursor(&cnt_cur, error);
	dfs_btree_del_cursor(&bno_cur, error);
	return error;

not_found:
	dfs_btree_del_cursor(&bno_cur, error);
	args->agbno = DFS_NULLAGBLOCK;
	return error;
}

static uint64_t dfs_alloc_cur_rightsib(const struct dfs_btree_cur *cur)
{
	const struct dfs_btree_block *block = cur->bc_bufs[0]->b_addr;

	return block->rightsib;
}

/* A candidate extent: longer is better, then closer. */
struct dfs_alloc_cand {
	uint32_t fbno, flen;	/* the free extent */
	uint32_t bno, len;	/* the part to allocate */
	uint32_t diff;		/* distance from the target */
};

/*
 * Evaluate the free extent [fbno, fbno + flen) for a near allocation: the
 * aligned, non-busy part, cut to maxlen and placed closest to the target.
 * Returns false if it cannot hold minlen.
 */
static bool dfs_alloc_near_cand(struct dfs_alloc_arg *args, uint32_t fbno, uint32_t flen,
				struct dfs_alloc_cand *c, bool *busy)
{
	uint32_t abno, alen;

	if (dfs_alloc_compute_aligned(args, fbno, flen, &abno, &alen))
		*busy = true;
	if (alen < args->minlen)
		return false;
	args->len = alen < args->maxlen ? alen : args->maxlen;
	dfs_alloc_fix_len(args);
	if (args->len < args->minlen)
		return false;
	c->fbno = fbno;
	c->flen = flen;
	c->len = args->len;
	c->diff = dfs_alloc_compute_diff(args->agbno, args->len, args->alignment, abno, alen,
					 &c->bno);
	return true;
}

/*
 * Allocate near args->agbno (XFS's xfs_alloc_ag_vextent_near). When the
 * extents long enough all sit in the last cntbt leaf, the closest of them
 * wins. Otherwise walk the bnobt both ways from the target to the nearest
 * extent that fits on either side, then look on the other side for one
 * closer still.
 */
static int dfs_alloc_ag_vextent_near(struct dfs_alloc_arg *args)
{
	struct dfs_btree_cur cnt_cur, bno_lt, bno_gt, *bno_cur;
	struct dfs_alloc_cand best, lt, gt;
	uint32_t fbno, flen;
	bool have_lt, have_gt, lt_ok, gt_ok, busy, retry;
	int i, error;

restart:
	busy = false;
	memset(&best, 0, sizeof(best));
	dfs_allocbt_init_cursor(&cnt_cur, args->tp, args->agbp, args->agno, DFS_BTNUM_CNT);

	/* Is there an extent of maxlen? If not, the longest must do. */
	error = dfs_alloc_lookup(&cnt_cur, DFS_LOOKUP_GE, 0, args->maxlen, &i);
	if (error)
		goto out_cnt;
	if (!i) {
		error = dfs_alloc_lookup(&cnt_cur, DFS_LOOKUP_LE, UINT32_MAX, UINT32_MAX, &i);
		if (error)
			goto out_cnt;
		if (!i)
			goto not_found_cnt;
		error = dfs_alloc_get_rec(&cnt_cur, &fbno, &flen, &i);
		if (error)
			goto out_cnt;
		if (flen < args->minlen)
			goto not_found_cnt;
		/* smaller than maxlen: start at the first of this leaf that fits */
		cnt_cur.bc_ptrs[0] = 1;
	}

	/* First algorithm: everything big enough is in the last cntbt leaf. */
	if (dfs_alloc_cur_rightsib(&cnt_cur) == DFS_NULLFSBLOCK) {
		for (i = 1; i; ) {
			struct dfs_alloc_cand c;

			error = dfs_alloc_get_rec(&cnt_cur, &fbno, &flen, &i);
			if (error)
				goto out_cnt;
			if (!i)
				break;
			if (flen >= args->minlen && dfs_alloc_near_cand(args, fbno, flen, &c, &busy) &&
			    (c.len > best.len || (c.len == best.len && c.diff < best.diff)))
				best = c;
			if (best.len >= args->maxlen && best.len && best.diff == 0)
				break;
			error = dfs_btree_increment(&cnt_cur, 0, &i);
			if (error)
				goto out_cnt;
		}
		if (best.len)
			goto allocate_best;
	}

	/* Second algorithm: both ways through the bnobt from the target. */
	dfs_allocbt_init_cursor(&bno_lt, args->tp, args->agbp, args->agno, DFS_BTNUM_BNO);
	error = dfs_alloc_lookup(&bno_lt, DFS_LOOKUP_LE, args->agbno, args->maxlen, &i);
	if (error)
		goto out_lt;
	have_lt = i;
	dfs_btree_dup_cursor(&bno_lt, &bno_gt);
	error = dfs_btree_increment(&bno_gt, 0, &i);
	if (error)
		goto out_gt;
	have_gt = i;

	lt_ok = gt_ok = false;
	while (have_lt || have_gt) {
		if (have_lt) {
			error = dfs_alloc_get_rec(&bno_lt, &fbno, &flen, &i);
			if (error)
				goto out_gt;
			if (dfs_alloc_near_cand(args, fbno, flen, &lt, &busy)) {
				lt_ok = true;
				break;
			}
			error = dfs_btree_decrement(&bno_lt, 0, &i);
			if (error)
				goto out_gt;
			have_lt = i;
		}
		if (have_gt) {
			error = dfs_alloc_get_rec(&bno_gt, &fbno, &flen, &i);
			if (error)
				goto out_gt;
			if (dfs_alloc_near_cand(args, fbno, flen, &gt, &busy)) {
				gt_ok = true;
				break;
			}
			error = dfs_btree_increment(&bno_gt, 0, &i);
			if (error)
				goto out_gt;
			have_gt = i;
		}
	}
	if (!lt_ok && !gt_ok) {
		dfs_btree_del_cursor(&bno_gt, 0);
		dfs_btree_del_cursor(&bno_lt, 0);
		dfs_btree_del_cursor(&cnt_cur, 0);
		if (busy) {
			error = dfs_extent_busy_flush(args, &retry);
			if (error)
				return error;
			if (retry)
				goto restart;
		}
		args->agbno = DFS_NULLAGBLOCK;
		return 0;
	}

	/* One side fits; the other may have something closer
	 * (XFS's xfs_alloc_find_best_extent). */
	if (lt_ok) {
		while (have_gt) {
			error = dfs_alloc_get_rec(&bno_gt, &fbno, &flen, &i);
			if (error)
				goto out_gt;
			if (fbno >= args->agbno && fbno - args->agbno >= lt.diff)
				break;
			if (dfs_alloc_near_cand(args, fbno, flen, &gt, &busy)) {
				gt_ok = gt.diff < lt.diff;
				break;
			}
			error = dfs_btree_increment(&bno_gt, 0, &i);
			if (error)
				goto out_gt;
			have_gt = i;
		}
	} else {
		while (have_lt) {
			error = dfs_alloc_get_rec(&bno_lt, &fbno, &flen, &i);
			if (error)
				goto out_gt;
			if ((uint64_t)fbno + flen <= args->agbno &&
			    args->agbno - (fbno + flen) >= gt.diff)
				break;
			if (dfs_alloc_near_cand(args, fbno, flen, &lt, &busy)) {
				lt_ok = lt.diff < gt.diff;
				if (lt_ok)
					gt_ok = false;
				break;
			}
			error = dfs_btree_decrement(&bno_lt, 0, &i);
			if (error)
				goto out_gt;
			have_lt = i;
		}
	}
	if (gt_ok) {
		best = gt;
		bno_cur = &bno_gt;
	} else {
		best = lt;
		bno_cur = &bno_lt;
	}
	args->len = best.len;
	if (!dfs_alloc_fix_minleft(args)) {
		error = 0;
		goto out_gt;
	}
	error = dfs_alloc_fixup_trees(&cnt_cur, bno_cur, best.fbno, best.flen, best.bno, args->len);
	if (!error)
		args->agbno = best.bno;
out_gt:
	dfs_btree_del_cursor(&bno_gt, error);
out_lt:
	dfs_btree_del_cursor(&bno_lt, error);
	goto out_cnt;

allocate_best:
	args->len = best.len;
	if (dfs_alloc_fix_minleft(args)) {
		dfs_allocbt_init_cursor(&bno_lt, args->tp, args->agbp, args->agno, DFS_BTNUM_BNO);
		error = dfs_alloc_fixup_trees(&cnt_cur, &bno_lt, best.fbno, best.flen, best.bno,
					      args->len);
		dfs_btree_del_cursor(&bno_lt, error);
		if (!error)
			args->agbno = best.bno;
	}
out_cnt:
	dfs_btree_del_cursor(&cnt_cur, error);
	return error;

not_found_cnt:
	dfs_btree_del_cursor(&cnt_cur, error);
	args->agbno = DFS_NULLAGBLOCK;
	return 0;
}

/*
 * Allocate by size anywhere in the AG (XFS's xfs_alloc_ag_vextent_size):
 * the smallest extent whose usable part holds maxlen, else the biggest
 * usable part there is.
 */
static int dfs_alloc_ag_vextent_size(struct dfs_alloc_arg *args)
{
	struct dfs_btree_cur cnt_cur, bno_cur;
	struct dfs_alloc_cand best;
	uint32_t fbno, flen, rbno, rlen;
	bool busy, retry;
	int i, error;

restart:
	busy = false;
	memset(&best, 0, sizeof(best));
	dfs_allocbt_init_cursor(&cnt_cur, args->tp, args->agbp, args->agno, DFS_BTNUM_CNT);
	error = dfs_alloc_lookup(&cnt_cur, DFS_LOOKUP_GE, 0,
				 args->maxlen + args->alignment - 1, &i);
	if (error)
		goto out;
	while (i) {
		error = dfs_alloc_get_rec(&cnt_cur, &fbno, &flen, &i);
		if (error)
			goto out;
		if (dfs_alloc_compute_aligned(args, fbno, flen, &rbno, &rlen))
			busy = true;
		if (rlen > best.len)
			best = (struct dfs_alloc_cand){ fbno, flen, rbno, rlen, 0 };
		if (rlen >= args->maxlen)
			break;
		error = dfs_btree_increment(&cnt_cur, 0, &i);
		if (error)
			goto out;
	}
	if (best.len < args->maxlen) {
		/* down from the longest, while an extent could still beat it */
		error = dfs_alloc_lookup(&cnt_cur, DFS_LOOKUP_LE, UINT32_MAX, UINT32_MAX, &i);
		if (error)
			goto out;
		while (i) {
			error = dfs_alloc_get_rec(&cnt_cur, &fbno, &flen, &i);
			if (error)
				goto out;
			if (flen <= best.len || flen < args->minlen)
				break;
			if (dfs_alloc_compute_aligned(args, fbno, flen, &rbno, &rlen))
				busy = true;
			if (rlen > best.len)
				best = (struct dfs_alloc_cand){ fbno, flen, rbno, rlen, 0 };
			error = dfs_btree_decrement(&cnt_cur, 0, &i);
			if (error)
				goto out;
		}
	}
	args->len = best.len < args->maxlen ? best.len : args->maxlen;
	dfs_alloc_fix_len(args);
	if (args->len < args->minlen || best.len == 0) {
		dfs_btree_del_cursor(&cnt_cur, 0);
		if (busy) {
			error = dfs_extent_busy_flush(args, &retry);
			if (error)
				return error;
			if (retry)
				goto restart;
		}
		args->agbno = DFS_NULLAGBLOCK;
		return 0;
	}
	if (!dfs_alloc_fix_minleft(args))
		goto out;
	dfs_allocbt_init_cursor(&bno_cur, args->tp, args->agbp, args->agno, DFS_BTNUM_BNO);
	error = dfs_alloc_fixup_trees(&cnt_cur, &bno_cur, best.fbno, best.flen, best.bno, args->len);
	dfs_btree_del_cursor(&bno_cur, error);
	if (!error)
		args->agbno = best.bno;
out:
	dfs_btree_del_cursor(&cnt_cur, error);
	return error;
}

/*
 * Allocate in the AG of args->agbp (XFS's xfs_alloc_ag_vextent): choose by
 * type, then account for it in the AGF.
 */
static int dfs_alloc_ag_vextent(struct dfs_alloc_arg *args)
{
	struct dfs_agf *agf = agbp_agf(args->agbp);
	int error;

	switch (args->type) {
	case DFS_ALLOCTYPE_THIS_AG:
		error = dfs_alloc_ag_vextent_size(args);
		break;
	case DFS_ALLOCTYPE_NEAR_BNO:
		error = dfs_alloc_ag_vextent_near(args);
		break;
	case DFS_ALLOCTYPE_THIS_BNO:
		error = dfs_alloc_ag_vextent_exact(args);
		break;
	default:
		assert(0);
		return -EINVAL;
	}
	if (error || args->agbno == DFS_NULLAGBLOCK)
		return error;

	assert(args->len >= args->minlen && args->len <= args->maxlen);
	assert(!dfs_extent_busy_search(args->mp, args->agno, args->agbno, args->len));
	agf->freeblks -= args->len;
	args->pag->pagf_freeblks = agf->freeblks;
	dfs_trans_log_buf(args->tp, args->agbp);
	return 0;
}

/* ---- the free list, sized before each allocation ------------------------ */

/* Can this AG satisfy the allocation once its free list is refilled?
 * (XFS's xfs_alloc_space_available) */
static bool dfs_alloc_space_available(struct dfs_alloc_arg *args, uint32_t need)
{
	const struct dfs_agf *agf = agbp_agf(args->agbp);
	uint32_t want = args->total > args->minlen ? args->total : args->minlen;
	int64_t avail;

	if (agf->longest < args->minlen)
		return false;
	avail = (int64_t)agf->freeblks + agf->flcount - need - args->minleft;
	return avail >= (int64_t)want;
}

/*
 * Bring the AGFL to the size the next allocation's btree splits may need
 * (XFS's xfs_alloc_fix_freelist): surplus blocks go back to the trees,
 * missing ones are allocated from the trees themselves. On return
 * args->agbp is the AGF joined to the transaction, or NULL if the AG cannot
 * satisfy the allocation.
 */
static int dfs_alloc_fix_freelist(struct dfs_alloc_arg *args, unsigned flags)
{
	struct dfs_mount *mp = args->mp;
	struct dfs_trans *tp = args->tp;
	struct dfs_alloc_arg targs;
	struct dfs_buf *agbp;
	struct dfs_agf *agf;
	uint32_t need, bno;
	int error;

	args->agbp = NULL;
	args->pag = &mp->m_perag[args->agno];
	error = dfs_alloc_read_agf(mp, tp, args->agno, &agbp);
	if (error)
		return error;
	agf = agbp_agf(agbp);
	args->agbp = agbp;
	need = dfs_alloc_min_freelist(mp, agbp);
	if (!(flags & DFS_ALLOC_FLAG_FREEING) && !dfs_alloc_space_available(args, need))
		goto unusable;

	/* too long: give the surplus back, busy, as XFS does for freed
	 * btree blocks (they may still be in use on disk until this commits) */
	while (agf->flcount > need) {
		error = dfs_alloc_get_freelist(tp, agbp, &bno, 0);
		if (error)
			return error;
		if (bno == DFS_NULLAGBLOCK)
			break;
		error = dfs_free_ag_extent(tp, agbp, args->agno, bno, 1, true);
		if (error)
			return error;
	}

	/* too short: allocate from the trees, by size, anywhere in the AG */
	memset(&targs, 0, sizeof(targs));
	targs.tp = tp;
	targs.mp = mp;
	targs.agbp = agbp;
	targs.pag = args->pag;
	targs.agno = args->agno;
	targs.type = DFS_ALLOCTYPE_THIS_AG;
	targs.alignment = targs.prod = 1;
	targs.owner = args->agno;
	targs.busy_forced = args->busy_forced;
	while (agf->flcount < need) {
		targs.agbno = 0;
		targs.minlen = 1;
		targs.maxlen = need - agf->flcount;
		error = dfs_alloc_ag_vextent(&targs);
		if (error)
			return error;
		if (targs.agbno == DFS_NULLAGBLOCK) {
			if (flags & DFS_ALLOC_FLAG_FREEING)
				break;	/* a free adds space; do with what there is */
			goto unusable;
		}
		for (bno = targs.agbno; bno < targs.agbno + targs.len; bno++) {
			error = dfs_alloc_put_freelist(tp, agbp, bno, 0);
			if (error)
				return error;
		}
	}
	args->busy_forced = targs.busy_forced;
	return 0;

unusable:
	dfs_trans_brelse(tp, agbp);
	args->agbp = NULL;
	return 0;
}

/* ---- the entry points ---------------------------------------------------- */

int dfs_alloc_vextent(struct dfs_alloc_arg *args)
{
	struct dfs_mount *mp = args->mp ? args->mp : dfs_trans_mount(args->tp);
	uint32_t startag, n;
	int error = 0;

	args->mp = mp;
	args->otype = args->type;
	args->agbp = NULL;
	args->busy_forced = 0;
	args->len = 0;
	if (args->alignment == 0)
		args->alignment = 1;
	if (args->prod == 0)
		args->prod = 1;
	if (args->type == DFS_ALLOCTYPE_START_BNO && args->fsbno == DFS_NULLFSBLOCK)
		args->fsbno = 0;	/* no hint: start at the first AG */
	if (args->maxlen > mp->m_agblocks)
		args->maxlen = mp->m_agblocks;
	if (args->maxlen > DFS_MAX_EXTLEN)
		args->maxlen = DFS_MAX_EXTLEN;
	if (args->mod >= args->prod || args->minlen == 0 || args->minlen > args->maxlen ||
	    args->fsbno >= mp->m_dblocks) {
		dfs_err(mp, "bad allocation request: type %d fsbno %" PRIu64 " len %u..%u mod %u/%u",
			args->type, args->fsbno, args->minlen, args->maxlen, args->mod, args->prod);
		args->fsbno = DFS_NULLFSBLOCK;
		return -EINVAL;
	}
	startag = dfs_fsb_to_agno(mp, args->fsbno);

	switch (args->type) {
	case DFS_ALLOCTYPE_THIS_AG:
	case DFS_ALLOCTYPE_NEAR_BNO:
	case DFS_ALLOCTYPE_THIS_BNO:
		args->agno = startag;
		args->agbno = args->type == DFS_ALLOCTYPE_THIS_AG ? 0
								: dfs_fsb_to_agbno(mp, args->fsbno);
		error = dfs_alloc_fix_freelist(args, 0);
		if (error)
			break;
		if (!args->agbp) {
			args->agbno = DFS_NULLAGBLOCK;
			break;
		}
		error = dfs_alloc_ag_vextent(args);
		break;
	case DFS_ALLOCTYPE_START_BNO:
		/* near the target in its AG, then by size in each next AG */
		for (n = 0; n < mp->m_agcount; n++) {
			args->agno = (startag + n) % mp->m_agcount;
			if (n == 0) {
				args->type = DFS_ALLOCTYPE_NEAR_BNO;
				args->agbno = dfs_fsb_to_agbno(mp, args->fsbno);
			} else {
				args->type = DFS_ALLOCTYPE_THIS_AG;
				args->agbno = 0;
			}
			error = dfs_alloc_fix_freelist(args, 0);
			if (error)
				break;
			if (!args->agbp) {
				args->agbno = DFS_NULLAGBLOCK;
				continue;
			}
			error = dfs_alloc_ag_vextent(args);
			if (error || args->agbno != DFS_NULLAGBLOCK)
				break;
		}
		args->type = args->otype;
		break;
	default:
		assert(0);
		error = -EINVAL;
	}
	if (error || args->agbno == DFS_NULLAGBLOCK) {
		args->fsbno = DFS_NULLFSBLOCK;
		args->len = 0;
		return error;
	}
	args->fsbno = dfs_agb_to_fsb(mp, args->agno, args->agbno);
	if (!args->wasdel) {
		error = dfs_trans_use_blocks(args->tp, args->len);
		if (error)
			dfs_err(mp, "allocated %u blocks beyond the transaction's reservation",
				args->len);
	}
	return error;
}

/*
 * Put [bno, bno + len) back into the AG's trees, merged with its free
 * neighbours (XFS's xfs_free_ag_extent). busy: the blocks may still be
 * referenced on disk until the transaction is durable.
 */
static int dfs_free_ag_extent(struct dfs_trans *tp, struct dfs_buf *agbp, uint32_t agno,
			      uint32_t bno, uint32_t len, bool busy)
{
	struct dfs_mount *mp = agbp->b_mount;
	struct dfs_agf *agf = agbp_agf(agbp);
	struct dfs_btree_cur bno_cur, cnt_cur;
	uint32_t ltbno = 0, ltlen = 0, gtbno = 0, gtlen = 0, nbno, nlen;
	bool haveleft = false, haveright = false;
	char why[96];
	int i, error;

	if (len == 0 || bno < DFS_AG_FIRST_FREE || (uint64_t)bno + len > agf->length) {
		snprintf(why, sizeof(why), "freeing %u+%u, outside the AG's free space", bno, len);
		return dfs_corrupt(mp, "AGF", agbp->b_blkno, why);
	}
	dfs_allocbt_init_cursor(&bno_cur, tp, agbp, agno, DFS_BTNUM_BNO);
	dfs_allocbt_init_cursor(&cnt_cur, tp, agbp, agno, DFS_BTNUM_CNT);

	/* the free extents on either side */
	error = dfs_alloc_lookup(&bno_cur, DFS_LOOKUP_LE, bno, len, &i);
	if (error)
		goto out;
	if (i) {
		error = dfs_alloc_get_rec(&bno_cur, &ltbno, &ltlen, &i);
		if (error)
			goto out;
		if ((uint64_t)ltbno + ltlen > bno) {
			snprintf(why, sizeof(why), "freeing %u+%u, but %u+%u is free already", bno,
				 len, ltbno, ltlen);
			error = dfs_corrupt(mp, "bnobt", bno_cur.bc_bufs[0]->b_blkno, why);
			goto out;
		}
		haveleft = ltbno + ltlen == bno;
	}
	error = dfs_btree_increment(&bno_cur, 0, &i);
	if (error)
		goto out;
	if (i) {
		error = dfs_alloc_get_rec(&bno_cur, &gtbno, &gtlen, &i);
		if (error)
			goto out;
		if ((uint64_t)bno + len > gtbno) {
			snprintf(why, sizeof(why), "freeing %u+%u, but %u+%u is free already", bno,
				 len, gtbno, gtlen);
			error = dfs_corrupt(mp, "bnobt", bno_cur.bc_bufs[0]->b_blkno, why);
			goto out;
		}
		haveright = bno + len == gtbno;
	}

	nbno = bno;
	nlen = len;
	if (haveleft) {
		error = dfs_alloc_delete(&cnt_cur, ltbno, ltlen);
		if (error)
			goto out;
		nbno = ltbno;
		nlen += ltlen;
	}
	if (haveright) {
		error = dfs_alloc_delete(&cnt_cur, gtbno, gtlen);
		if (error)
			goto out;
		nlen += gtlen;
	}
	if (haveleft && haveright) {
		/* one record for all three: drop the right one's */
		error = dfs_alloc_delete(&bno_cur, gtbno, gtlen);
		if (error)
			goto out;
	}
	if (haveleft || haveright) {
		error = dfs_alloc_lookup(&bno_cur, DFS_LOOKUP_EQ, haveleft ? ltbno : gtbno, 0, &i);
		if (!error && !i)
			error = dfs_corrupt(mp, "bnobt", bno_cur.bc_bufs[0]->b_blkno,
					    "neighbour vanished");
		if (!error)
			error = dfs_alloc_update(&bno_cur, nbno, nlen);
	} else {
		error = dfs_alloc_insert(&bno_cur, nbno, nlen);
	}
	if (error)
		goto out;
	error = dfs_alloc_insert(&cnt_cur, nbno, nlen);
	if (error)
		goto out;
	error = dfs_alloc_fixup_longest(&cnt_cur);
	if (error)
		goto out;

	agf->freeblks += len;
	mp->m_perag[agno].pagf_freeblks = agf->freeblks;
	dfs_trans_log_buf(tp, agbp);
	if (busy)
		error = dfs_extent_busy_insert(tp, agno, bno, len);
out:
	dfs_btree_del_cursor(&cnt_cur, error);
	dfs_btree_del_cursor(&bno_cur, error);
	return error;
}

int dfs_free_extent(struct dfs_trans *tp, uint64_t fsbno, uint32_t len)
{
	struct dfs_mount *mp = dfs_trans_mount(tp);
	struct dfs_alloc_arg args;
	uint32_t agno, agbno;
	char why[96];
	int error;

	agno = dfs_fsb_to_agno(mp, fsbno);
	agbno = dfs_fsb_to_agbno(mp, fsbno);
	if (len == 0 || fsbno >= mp->m_dblocks || agno >= mp->m_agcount ||
	    (uint64_t)agbno + len > mp->m_agblocks) {
		snprintf(why, sizeof(why), "freeing %u blocks at %" PRIu64 ", not inside one AG", len,
			 fsbno);
		return dfs_corrupt(mp, "extent", fsbno, why);
	}
	/* the trees may split while the extent goes in: fill the AGFL first */
	memset(&args, 0, sizeof(args));
	args.tp = tp;
	args.mp = mp;
	args.agno = agno;
	args.minlen = args.maxlen = args.alignment = args.prod = 1;
	args.type = DFS_ALLOCTYPE_THIS_AG;
	error = dfs_alloc_fix_freelist(&args, DFS_ALLOC_FLAG_FREEING);
	if (error)
		return error;
	error = dfs_free_ag_extent(tp, args.agbp, agno, agbno, len, true);
	if (error)
		return error;
	dfs_trans_free_blocks(tp, len);
	return 0;
}
