// SPDX-License-Identifier: MIT
/*
 * fsck (see fsck.c for the design). Phases 1 and 2: superblocks, the log
 * header, AGF, AGFL, and the free-space btrees.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "blkdev.h"
#include "crc.h"
#include "deepfs.h"
#include "dir.h"
#include "format.h"
#include "inode.h"
#include "log.h"
#include "mount.h"
#include "msg.h"
#include "symlink.h"
#include "trans.h"
#include "xattr.h"

#include "fsck_priv.h"

/* ---- phase 1: superblocks and the log header ---------------------------- */

/* The primary superblock must be sane for anything else to be checked. */
int fsck_read_primary_sb(struct fsck *fc)
{
	uint64_t devsize = dfs_blkdev_size(fc->bd);
	void *blk = fc->blk;
	int error;

	if (devsize < DFS_MAX_BLOCKSIZE) {
		fprintf(stderr, "%s: %" PRIu64 " bytes is too small to hold a deepfs filesystem\n",
			fc->path, devsize);
		return -EINVAL;
	}
	error = dfs_blkdev_rw(fc->bd, DFS_IO_READ, DFS_IOK_SB, 0, blk, DFS_MAX_BLOCKSIZE);
	if (error)
		return error;
	if (((struct dfs_dsb *)blk)->hdr.magic != DFS_SB_MAGIC) {
		fprintf(stderr, "%s: not a deepfs filesystem (bad superblock magic)\n", fc->path);
		return -EINVAL;
	}
	/* dfs_sb_verify says what is wrong with the geometry */
	error = dfs_sb_verify(fc->mp, blk, 0, devsize);
	if (error)
		return error;
	memcpy(&fc->sb, blk, sizeof(fc->sb));
	fc->bs = fc->sb.blocksize;
	fc->dblocks = fc->sb.dblocks;
	fc->mp->m_sb = fc->sb;
	fc->mp->m_blocksize = fc->sb.blocksize;
	fc->mp->m_blocklog = fc->sb.blocklog;
	fc->mp->m_agblocks = fc->sb.agblocks;
	fc->mp->m_agcount = fc->sb.agcount;
	fc->mp->m_dblocks = fc->sb.dblocks;
	fc->mp->m_inopblock = fc->sb.inopblock;
	fc->mp->m_inopblog = fc->sb.inopblog;
	return 0;
}

/* Secondary copies must agree with the primary in everything but the
 * address (and so the CRC). */
int fsck_check_secondary_sbs(struct fsck *fc)
{
	struct dfs_dsb *sb = fc->blk;
	uint32_t agno;
	int error;

	for (agno = 1; agno < fc->sb.agcount; agno++) {
		uint64_t fsbno = dfs_agb_to_fsb(fc->mp, agno, DFS_SB_AGBNO);
		char what[48];

		error = fsck_read(fc, fsbno, 1, sb);
		if (error)
			return error;
		snprintf(what, sizeof(what), "AG %u superblock", agno);
		if (!fsck_check_hdr(fc, sb, fsbno, DFS_SB_MAGIC, fc->sb.hdr.owner, what)) {
			fc->fix_secondary_sb = true;
			continue;
		}
		if (memcmp((const char *)sb + sizeof(sb->hdr), (const char *)&fc->sb + sizeof(sb->hdr),
			   sizeof(*sb) - sizeof(sb->hdr))) {
			fsck_problem(fc, "%s %" PRIu64 ": differs from the primary superblock", what,
				     fsbno);
			fc->fix_secondary_sb = true;
		}
	}
	return 0;
}

int fsck_check_log(struct fsck *fc)
{
	struct dfs_loghdr *lh = fc->blk;
	int error;

	error = fsck_read(fc, fc->sb.logstart, 1, lh);
	if (error)
		return error;
	/* log.c does not define the owner of its header: not checked */
	if (!fsck_check_hdr(fc, lh, fc->sb.logstart, DFS_LOGHDR_MAGIC, lh->hdr.owner,
			    "log header block"))
		return 0;
	if (lh->tail_block < 1 || lh->tail_block >= fc->sb.logblocks)
		fsck_problem(fc, "log header block %" PRIu64 ": tail block %u is outside the log",
			     fc->sb.logstart, lh->tail_block);
	if (!lh->clean) {
		fc->log_dirty = true;
		fsck_problem(fc, "the log is dirty: it must be replayed by mounting the filesystem (or fsck --repair) before the metadata can be trusted");
	}
	return 0;
}

/* ---- phase 2: AG headers, free space, inode btrees ---------------------- */

static int alloc_rec_cmp_bno(const void *a, const void *b)
{
	const struct dfs_alloc_rec *x = a, *y = b;

	return (x->startblock > y->startblock) - (x->startblock < y->startblock);
}

int fsck_check_agf(struct fsck *fc, uint32_t agno)
{
	struct fsck_ag *ag = &fc->ags[agno];
	struct dfs_agf *agf = fc->blk;
	uint64_t fsbno = dfs_agb_to_fsb(fc->mp, agno, DFS_AGF_AGBNO);
	char what[32];
	int error;

	snprintf(what, sizeof(what), "AG %u AGF", agno);
	error = fsck_read(fc, fsbno, 1, agf);
	if (error)
		return error;
	ag->agf_ok = false;
	if (!fsck_check_hdr(fc, agf, fsbno, DFS_AGF_MAGIC, agno, what))
		return 0;
	if (agf->seqno != agno || agf->length != ag->length) {
		fsck_problem(fc, "%s %" PRIu64 ": seqno %u length %u, expected %u and %u", what,
			     fsbno, agf->seqno, agf->length, agno, ag->length);
		return 0;
	}
	if (agf->flfirst >= DFS_AGFL_SIZE(fc->bs) || agf->fllast >= DFS_AGFL_SIZE(fc->bs) ||
	    agf->flcount > DFS_AGFL_SIZE(fc->bs)) {
		fsck_problem(fc, "%s %" PRIu64 ": AGFL ring %u..%u (%u blocks) is out of range",
			     what, fsbno, agf->flfirst, agf->fllast, agf->flcount);
		ag->rebuild_freesp = true;
	}
	ag->agf = *agf;
	ag->agf_ok = true;
	return 0;
}

void fsck_check_agfl(struct fsck *fc, uint32_t agno)
{
	struct fsck_ag *ag = &fc->ags[agno];
	struct dfs_agfl *agfl = fc->blk;
	uint64_t fsbno = dfs_agb_to_fsb(fc->mp, agno, DFS_AGFL_AGBNO);
	uint32_t size = (uint32_t)DFS_AGFL_SIZE(fc->bs), i, slot;
	char what[32];

	snprintf(what, sizeof(what), "AG %u AGFL", agno);
	if (fsck_read(fc, fsbno, 1, agfl))
		return;
	if (!fsck_check_hdr(fc, agfl, fsbno, DFS_AGFL_MAGIC, agno, what)) {
		ag->rebuild_freesp = true;
		return;
	}
	if (!ag->agf_ok || ag->rebuild_freesp)
		return;
	if (ag->agf.flcount &&
	    (ag->agf.flfirst + ag->agf.flcount - 1) % size != ag->agf.fllast) {
		fsck_problem(fc, "AG %u AGF: AGFL ring %u..%u does not hold %u blocks", agno,
			     ag->agf.flfirst, ag->agf.fllast, ag->agf.flcount);
		ag->rebuild_freesp = true;
		return;
	}
	for (i = 0, slot = ag->agf.flfirst; i < ag->agf.flcount; i++, slot = (slot + 1) % size) {
		uint32_t agbno = agfl->bno[slot];

		if (agbno >= ag->length) {
			fsck_problem(fc, "%s %" PRIu64 ": slot %u holds block %u, outside the AG", what,
				     fsbno, slot, agbno);
			ag->rebuild_freesp = true;
			continue;
		}
		if (fsck_claim(fc, dfs_agb_to_fsb(fc->mp, agno, agbno), 1, OWN_AGFL, what))
			ag->rebuild_freesp = true;
	}
}

/* bnobt: the free extents, marked in the ownership map. */
static int fsck_mark_free(struct fsck *fc, uint32_t agno, const struct fsck_bt *bno)
{
	struct fsck_ag *ag = &fc->ags[agno];
	const struct dfs_alloc_rec *r = (const void *)bno->recs;
	uint32_t prev_end = 0;
	size_t i;

	for (i = 0; i < bno->nrecs; i++) {
		uint64_t fsbno, b, nover = 0, first_over = 0;
		enum fsck_owner over = OWN_NONE;

		if (r[i].blockcount == 0 || r[i].startblock >= ag->length ||
		    r[i].blockcount > ag->length - r[i].startblock) {
			fsck_problem(fc, "AG %u bnobt: free extent %u+%u is outside the AG", agno,
				     r[i].startblock, r[i].blockcount);
			ag->rebuild_freesp = true;
			continue;
		}
		if (i && r[i].startblock < prev_end) {
			fsck_problem(fc, "AG %u bnobt: free extent %u+%u overlaps the one before it",
				     agno, r[i].startblock, r[i].blockcount);
			ag->rebuild_freesp = true;
		}
		prev_end = r[i].startblock + r[i].blockcount;
		fsbno = dfs_agb_to_fsb(fc->mp, agno, r[i].startblock);
		for (b = fsbno; b < fsbno + r[i].blockcount; b++) {
			if (fc->own[b] == OWN_NONE) {
				fc->own[b] = OWN_FREE;
			} else if (!nover++) {
				first_over = b;
				over = fc->own[b];
			}
		}
		if (nover) {
			fsck_problem(fc, "AG %u bnobt: free extent %u+%u covers block %" PRIu64
				     " (%" PRIu64 " blocks in all) of %s",
				     agno, r[i].startblock, r[i].blockcount, first_over, nover,
				     fsck_owner_names[over]);
			ag->rebuild_freesp = true;
		}
	}
	return 0;
}

/* Both trees must list the same extents; counters must match them. */
static int fsck_compare_freesp(struct fsck *fc, uint32_t agno, const struct fsck_bt *bno,
			       const struct fsck_bt *cnt)
{
	struct fsck_ag *ag = &fc->ags[agno];
	const struct dfs_alloc_rec *b = (const void *)bno->recs;
	struct dfs_alloc_rec *c;
	uint64_t freeblks = 0;
	uint32_t longest = 0, btreeblks;
	size_t i = 0, j = 0, reported = 0;

	c = malloc((cnt->nrecs + 1) * sizeof(*c));
	if (!c)
		return -ENOMEM;
	memcpy(c, cnt->recs, cnt->nrecs * sizeof(*c));
	qsort(c, cnt->nrecs, sizeof(*c), alloc_rec_cmp_bno);
	while (i < bno->nrecs || j < cnt->nrecs) {
		int d;

		if (i == bno->nrecs)
			d = 1;
		else if (j == cnt->nrecs)
			d = -1;
		else if (b[i].startblock != c[j].startblock)
			d = b[i].startblock < c[j].startblock ? -1 : 1;
		else
			d = b[i].blockcount == c[j].blockcount ? 0 : 2;
		if (d) {
			ag->rebuild_freesp = true;
			if (reported++ < 8) {
				if (d == -1)
					fsck_problem(fc, "AG %u: free extent %u+%u is in the bnobt but not in the cntbt",
						     agno, b[i].startblock, b[i].blockcount);
				else if (d == 1)
					fsck_problem(fc, "AG %u: free extent %u+%u is in the cntbt but not in the bnobt",
						     agno, c[j].startblock, c[j].blockcount);
				else
					fsck_problem(fc, "AG %u: free extent at %u is %u blocks in the bnobt but %u in the cntbt",
						     agno, b[i].startblock, b[i].blockcount,
						     c[j].blockcount);
			} else {
				fc->problems++;
			}
		}
		if (d <= 0 || d == 2)
			i++;
		if (d >= 0)
			j++;
	}
	free(c);
	for (i = 0; i < bno->nrecs; i++) {
		freeblks += b[i].blockcount;
		if (b[i].blockcount > longest)
			longest = b[i].blockcount;
	}
	btreeblks = (uint32_t)(bno->nblocks + cnt->nblocks - 2);
	if (ag->agf.freeblks != freeblks || ag->agf.longest != longest ||
	    ag->agf.btreeblks != btreeblks) {
		fsck_problem(fc, "AG %u AGF: counters freeblks %u longest %u btreeblks %u, counted %" PRIu64 " %u %u",
			     agno, ag->agf.freeblks, ag->agf.longest, ag->agf.btreeblks, freeblks,
			     longest, btreeblks);
		ag->rebuild_freesp = true;
	}
	return 0;
}

void fsck_bt_init(struct fsck_bt *bt, const char *name, uint32_t magic, uint16_t reclen,
		  uint64_t owner, uint32_t agno, enum fsck_owner own)
{
	memset(bt, 0, sizeof(*bt));
	bt->name = name;
	bt->magic = magic;
	bt->reclen = reclen;
	bt->owner = owner;
	bt->agno = agno;
	bt->own = own;
}

int fsck_check_freesp(struct fsck *fc, uint32_t agno)
{
	struct fsck_ag *ag = &fc->ags[agno];
	struct fsck_bt bno, cnt;
	char bname[32], cname[32];
	int error;

	snprintf(bname, sizeof(bname), "AG %u bnobt", agno);
	snprintf(cname, sizeof(cname), "AG %u cntbt", agno);
	fsck_bt_init(&bno, bname, DFS_BNOBT_MAGIC, sizeof(struct dfs_alloc_rec), agno, agno,
		     OWN_FREESP);
	bno.key_of_rec = fsck_bno_key_of_rec;
	bno.key_of_key = fsck_bno_key_of_rec;
	fsck_bt_init(&cnt, cname, DFS_CNTBT_MAGIC, sizeof(struct dfs_alloc_rec), agno, agno,
		     OWN_FREESP);
	cnt.key_of_rec = fsck_cnt_key_of_rec;
	cnt.key_of_key = fsck_cnt_key_of_rec;

	error = fsck_bt_walk_tree(fc, &bno, ag->agf.bno_root, ag->agf.bno_level);
	if (!error)
		error = fsck_mark_free(fc, agno, &bno);
	if (!error)
		error = fsck_bt_walk_tree(fc, &cnt, ag->agf.cnt_root, ag->agf.cnt_level);
	if (!error && (bno.bad || cnt.bad))
		ag->rebuild_freesp = true;
	if (!error && !bno.bad && !cnt.bad)
		error = fsck_compare_freesp(fc, agno, &bno, &cnt);
	free(bno.recs);
	free(cnt.recs);
	return error;
}
