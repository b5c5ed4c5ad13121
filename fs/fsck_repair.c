// SPDX-License-Identifier: MIT
/*
 * fsck (see fsck.c for the design). Repair: raw rewrites of inodes, inobt,
 * AGI, free-space trees; namespace fixes through the library.
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

/* ---- repair: raw writes ------------------------------------------------- */

static int fsck_update_inode(struct fsck *fc, uint64_t ino,
			     void (*fn)(struct dfs_dinode *dip, const void *arg), const void *arg)
{
	uint64_t fsbno = dfs_ino_to_fsb(fc->mp, ino);
	struct dfs_dinode *dip;
	int error;

	error = fsck_read(fc, fsbno, 1, fc->blk);
	if (error)
		return error;
	dip = (void *)((uint8_t *)fc->blk + (size_t)dfs_ino_to_offset(fc->mp, ino) * DFS_INODE_SIZE);
	fn(dip, arg);
	dfs_cksum_update(dip, DFS_INODE_SIZE, offsetof(struct dfs_dinode, di_crc));
	return fsck_write(fc, fsbno, 1, fc->blk);
}

struct fsck_inode_fix {
	const struct fsck *fc;
	uint64_t ino;
	uint32_t nlink;
	uint64_t nblocks;
	uint32_t nextents;
};

/* A cleared inode is what ialloc writes into a new chunk: free but valid. */
static void fsck_clear_dinode(struct dfs_dinode *dip, const void *arg)
{
	const struct fsck_inode_fix *f = arg;
	uint32_t gen = dip->di_gen + 1;

	memset(dip, 0, DFS_INODE_SIZE);
	dip->di_magic = DFS_DINODE_MAGIC;
	dip->di_version = DFS_VERSION;
	dip->di_format = DFS_DINODE_FMT_EXTENTS;
	dip->di_ino = f->ino;
	memcpy(dip->di_uuid, f->fc->sb.hdr.uuid, sizeof(dip->di_uuid));
	dip->di_gen = gen;
	dip->di_next_unlinked = DFS_NULLINO;
}

static void fsck_set_nlink(struct dfs_dinode *dip, const void *arg)
{
	dip->di_nlink = ((const struct fsck_inode_fix *)arg)->nlink;
}

static void fsck_drop_xattr(struct dfs_dinode *dip, const void *arg)
{
	dip->di_xattr_blk = 0;
	if (dip->di_nblocks)
		dip->di_nblocks--;
}

static void fsck_set_size(struct dfs_dinode *dip, const void *arg)
{
	dip->di_size = ((const struct fsck_inode_fix *)arg)->nblocks;
}

static void fsck_set_counts(struct dfs_dinode *dip, const void *arg)
{
	const struct fsck_inode_fix *f = arg;

	dip->di_nblocks = f->nblocks;
	dip->di_nextents = f->nextents;
}

/* Leaf blocks of a tree, left to right: the leftmost path, then siblings. */
static int fsck_first_leaf(struct fsck *fc, uint64_t root, uint32_t nlevels, uint64_t *leaf)
{
	struct dfs_btree_block *block = fc->blk;
	uint64_t fsbno = root;
	uint32_t l;

	for (l = nlevels - 1; l > 0; l--) {
		uint32_t maxrecs = fsck_maxrecs(fc, FSCK_KEYLEN + FSCK_PTRLEN);
		int error = fsck_read(fc, fsbno, 1, block);

		if (error)
			return error;
		fsbno = *(const uint64_t *)((const uint8_t *)(block + 1) + (size_t)maxrecs * FSCK_KEYLEN);
	}
	*leaf = fsbno;
	return 0;
}

/* Free masks of the inobt from the inodes themselves; AGI counters. */
static int fsck_fix_inobt(struct fsck *fc, uint32_t agno)
{
	struct fsck_ag *ag = &fc->ags[agno];
	uint32_t nblocks = DFS_INODES_PER_CHUNK / fc->sb.inopblock;
	uint32_t count = 0, freecount = 0;
	struct dfs_btree_block *leaf;
	uint8_t *chunk;
	uint64_t fsbno;
	int error;

	leaf = dfs_bio_alloc_buf(fc->bs);
	chunk = dfs_bio_alloc_buf((size_t)nblocks * fc->bs);
	if (!leaf || !chunk) {
		error = -ENOMEM;
		goto out;
	}
	error = fsck_first_leaf(fc, ag->agi.root, ag->agi.level, &fsbno);
	while (!error && fsbno != DFS_NULLFSBLOCK) {
		struct dfs_inobt_rec *r = (void *)(leaf + 1);
		bool changed = false;
		uint32_t i, j;

		error = fsck_read(fc, fsbno, 1, leaf);
		for (i = 0; !error && i < leaf->numrecs; i++) {
			uint64_t mask = 0;

			error = fsck_read(fc, dfs_agb_to_fsb(fc->mp, agno, r[i].startino >> fc->sb.inopblog),
					  nblocks, chunk);
			for (j = 0; !error && j < DFS_INODES_PER_CHUNK; j++) {
				const struct dfs_dinode *dip = (const void *)(chunk + (size_t)j * DFS_INODE_SIZE);

				if (dip->di_mode == 0 || dip->di_magic != DFS_DINODE_MAGIC)
					mask |= 1ull << j;
			}
			if (mask != r[i].free ||
			    r[i].freecount != (uint32_t)__builtin_popcountll(mask)) {
				r[i].free = mask;
				r[i].freecount = (uint32_t)__builtin_popcountll(mask);
				changed = true;
			}
			count += DFS_INODES_PER_CHUNK;
			freecount += r[i].freecount;
		}
		if (!error && changed)
			error = fsck_write_hdrblk(fc, fsbno, leaf);
		fsbno = leaf->rightsib;
	}
	if (!error) {
		struct dfs_agi *agi = fc->blk;
		uint64_t agibno = dfs_agb_to_fsb(fc->mp, agno, DFS_AGI_AGBNO);

		error = fsck_read(fc, agibno, 1, agi);
		if (!error) {
			agi->count = count;
			agi->freecount = freecount;
			if (ag->fix_unlinked)
				agi->unlinked = DFS_NULLINO;
			error = fsck_write_hdrblk(fc, agibno, agi);
		}
	}
out:
	free(leaf);
	free(chunk);
	return error;
}

/* ---- repair: free space rebuild (xfs_repair phase 5) -------------------- */

static int alloc_rec_cmp_cnt(const void *a, const void *b)
{
	const struct dfs_alloc_rec *x = a, *y = b;

	if (x->blockcount != y->blockcount)
		return x->blockcount < y->blockcount ? -1 : 1;
	return (x->startblock > y->startblock) - (x->startblock < y->startblock);
}

/*
 * A new inobt from the chunks the check found (claimed OWN_INODES), and a
 * new AGI. The old tree's blocks and the new tree's come out of the
 * ownership map before the free-space rebuild, which then runs too.
 */
static int fsck_rebuild_inobt(struct fsck *fc, uint32_t agno)
{
	struct fsck_ag *ag = &fc->ags[agno];
	uint32_t cb = DFS_INODES_PER_CHUNK / fc->sb.inopblock, agbno, i, nblocks, level;
	uint64_t base = dfs_agb_to_fsb(fc->mp, agno, 0), root;
	struct dfs_inobt_rec *recs = NULL;
	uint32_t *pool = NULL, count = 0, freecount = 0;
	size_t nrecs = 0, npool = 0, used = 0;
	struct dfs_agi *agi;
	uint8_t *chunk;
	int error = 0;

	chunk = dfs_bio_alloc_buf((size_t)cb * fc->bs);
	recs = calloc(ag->length / cb + 1, sizeof(*recs));
	if (!chunk || !recs) {
		error = -ENOMEM;
		goto out;
	}
	for (agbno = 0; agbno < ag->length; agbno++)
		if (fc->own[base + agbno] == OWN_INOBT)
			fc->own[base + agbno] = OWN_NONE;
	for (agbno = 0; agbno + cb <= ag->length && !error; agbno += cb) {
		struct dfs_inobt_rec *r = &recs[nrecs];

		if (fc->own[base + agbno] != OWN_INODES)
			continue;
		error = fsck_read(fc, base + agbno, cb, chunk);
		r->startino = agbno << fc->sb.inopblog;
		for (i = 0; !error && i < DFS_INODES_PER_CHUNK; i++) {
			const struct dfs_dinode *dip = (const void *)(chunk + (size_t)i * DFS_INODE_SIZE);

			if (dip->di_mode == 0 || dip->di_magic != DFS_DINODE_MAGIC) {
				r->free |= 1ull << i;
				r->freecount++;
			}
		}
		count += DFS_INODES_PER_CHUNK;
		freecount += r->freecount;
		nrecs++;
	}
	if (error)
		goto out;
	nblocks = fsck_tree_blocks(fc, nrecs, sizeof(*recs));
	pool = calloc(nblocks, sizeof(*pool));
	if (!pool) {
		error = -ENOMEM;
		goto out;
	}
	for (agbno = 0; agbno < ag->length && npool < nblocks; agbno++) {
		uint8_t o = fc->own[base + agbno];

		if (o == OWN_NONE || o == OWN_FREE) {
			fc->own[base + agbno] = OWN_INOBT;
			pool[npool++] = agbno;
		}
	}
	if (npool < nblocks) {
		fsck_note(fc, "AG %u: no room to rebuild the inobt", agno);
		goto out;
	}
	error = fsck_build_tree(fc, agno, DFS_INOBT_MAGIC, recs, sizeof(*recs), nrecs, pool, &used,
				&root, &level);
	if (error)
		goto out;
	agi = fc->blk;
	memset(agi, 0, fc->bs);
	agi->hdr.magic = DFS_AGI_MAGIC;
	agi->hdr.blkno = base + DFS_AGI_AGBNO;
	agi->hdr.owner = agno;
	memcpy(agi->hdr.uuid, fc->sb.hdr.uuid, sizeof(agi->hdr.uuid));
	agi->seqno = agno;
	agi->length = ag->length;
	agi->count = count;
	agi->freecount = freecount;
	agi->root = root;
	agi->level = level;
	/* a damaged AGI's list is lost: its inodes, unlinked and unnamed, are
	 * freed by the next pass */
	agi->unlinked = ag->agi_ok && !ag->fix_unlinked ? ag->agi.unlinked : DFS_NULLINO;
	error = fsck_write_hdrblk(fc, base + DFS_AGI_AGBNO, agi);
	ag->rebuild_freesp = true;
	fsck_note(fc, "repair: AG %u: rebuilt the inobt (%zu chunks) and the AGI", agno, nrecs);
out:
	free(chunk);
	free(recs);
	free(pool);
	return error;
}

static int fsck_rebuild_freesp(struct fsck *fc, uint32_t agno)
{
	struct fsck_ag *ag = &fc->ags[agno];
	uint64_t base = dfs_agb_to_fsb(fc->mp, agno, 0);
	uint32_t aglen = ag->length, b, want, ntree, bno_blocks, cnt_blocks;
	uint32_t agfl_size = (uint32_t)DFS_AGFL_SIZE(fc->bs), longest = 0, i;
	struct dfs_alloc_rec *recs = NULL, *bycnt = NULL;
	uint32_t *pool = NULL;
	size_t nrecs = 0, npool = 0, pool_used = 0, r;
	uint64_t freeblks = 0, bno_root, cnt_root;
	uint32_t bno_level, cnt_level;
	struct dfs_agf *agf;
	struct dfs_agfl *agfl;
	int error;

	/* free = everything not owned by something that stays */
	recs = calloc(aglen / 2 + 1, sizeof(*recs));
	if (!recs)
		return -ENOMEM;
	for (b = 0; b < aglen;) {
		uint8_t o = fc->own[base + b];
		uint32_t e;

		if (o != OWN_NONE && o != OWN_FREE && o != OWN_FREESP && o != OWN_AGFL) {
			b++;
			continue;
		}
		for (e = b; e < aglen; e++) {
			o = fc->own[base + e];
			if (o != OWN_NONE && o != OWN_FREE && o != OWN_FREESP && o != OWN_AGFL)
				break;
		}
		recs[nrecs].startblock = b;
		recs[nrecs].blockcount = e - b;
		nrecs++;
		b = e;
	}
	/* blocks for both trees and the AGFL come off the front of free space;
	 * what the trees turn out not to need goes to the AGFL too */
	ntree = fsck_tree_blocks(fc, nrecs, sizeof(*recs));
	want = 2 * ntree + DFS_AGFL_RESERVE;
	pool = calloc(want, sizeof(*pool));
	if (!pool) {
		error = -ENOMEM;
		goto out;
	}
	for (r = 0; r < nrecs && npool < want;) {
		pool[npool++] = recs[r].startblock++;
		if (--recs[r].blockcount == 0)
			r++;
	}
	if (r) {
		memmove(recs, recs + r, (nrecs - r) * sizeof(*recs));
		nrecs -= r;
	}
	bno_blocks = cnt_blocks = fsck_tree_blocks(fc, nrecs, sizeof(*recs));
	if (npool < 2u * bno_blocks) {
		fsck_note(fc, "AG %u: no room to rebuild the free-space btrees", agno);
		error = -ENOSPC;
		goto out;
	}
	for (i = 0; i < nrecs; i++) {
		freeblks += recs[i].blockcount;
		if (recs[i].blockcount > longest)
			longest = recs[i].blockcount;
	}
	bycnt = malloc((nrecs + 1) * sizeof(*bycnt));
	if (!bycnt) {
		error = -ENOMEM;
		goto out;
	}
	memcpy(bycnt, recs, nrecs * sizeof(*recs));
	qsort(bycnt, nrecs, sizeof(*bycnt), alloc_rec_cmp_cnt);
	error = fsck_build_tree(fc, agno, DFS_BNOBT_MAGIC, recs, sizeof(*recs), nrecs, pool,
				&pool_used, &bno_root, &bno_level);
	if (!error)
		error = fsck_build_tree(fc, agno, DFS_CNTBT_MAGIC, bycnt, sizeof(*bycnt), nrecs,
					pool, &pool_used, &cnt_root, &cnt_level);
	if (error)
		goto out;

	agfl = fc->blk;
	memset(agfl, 0, fc->bs);
	agfl->hdr.magic = DFS_AGFL_MAGIC;
	agfl->hdr.blkno = base + DFS_AGFL_AGBNO;
	agfl->hdr.owner = agno;
	memcpy(agfl->hdr.uuid, fc->sb.hdr.uuid, sizeof(agfl->hdr.uuid));
	agfl->seqno = agno;
	for (i = 0; i < agfl_size; i++)
		agfl->bno[i] = DFS_NULLAGBLOCK;
	for (i = 0; pool_used < npool && i < agfl_size; i++)
		agfl->bno[i] = pool[pool_used++];
	/* an AGFL overflow cannot happen (a tree needs few blocks), but if it
	 * did the blocks would simply show as leaked at the re-check */
	error = fsck_write_hdrblk(fc, base + DFS_AGFL_AGBNO, agfl);
	if (error)
		goto out;

	agf = fc->blk;
	memset(agf, 0, fc->bs);
	agf->hdr.magic = DFS_AGF_MAGIC;
	agf->hdr.blkno = base + DFS_AGF_AGBNO;
	agf->hdr.owner = agno;
	memcpy(agf->hdr.uuid, fc->sb.hdr.uuid, sizeof(agf->hdr.uuid));
	agf->seqno = agno;
	agf->length = aglen;
	agf->bno_root = bno_root;
	agf->cnt_root = cnt_root;
	agf->bno_level = bno_level;
	agf->cnt_level = cnt_level;
	agf->flfirst = 0;
	agf->fllast = i ? i - 1 : agfl_size - 1;
	agf->flcount = i;
	agf->freeblks = (uint32_t)freeblks;
	agf->longest = longest;
	agf->btreeblks = bno_blocks + cnt_blocks - 2;
	error = fsck_write_hdrblk(fc, base + DFS_AGF_AGBNO, agf);
out:
	free(recs);
	free(bycnt);
	free(pool);
	return error;
}

/* One round of raw repairs; returns how many were made, or -errno. */
int fsck_repair_raw(struct fsck *fc)
{
	bool all_inodes_known = fc->all_inodes_known;
	uint32_t agno;
	int n = 0, error = 0;
	size_t i;

	if (fc->fix_secondary_sb) {
		for (agno = 1; agno < fc->sb.agcount && !error; agno++) {
			uint64_t fsbno = dfs_agb_to_fsb(fc->mp, agno, DFS_SB_AGBNO);

			memset(fc->blk, 0, fc->bs);
			memcpy(fc->blk, &fc->sb, sizeof(fc->sb));
			((struct dfs_dsb *)fc->blk)->hdr.blkno = fsbno;
			error = fsck_write_hdrblk(fc, fsbno, fc->blk);
		}
		fsck_note(fc, "repair: rewrote the secondary superblocks");
		n++;
	}
	for (i = 0; i < fc->nclear && !error; i++) {
		struct fsck_inode_fix f = { .fc = fc, .ino = fc->clear_inos[i] };

		error = fsck_update_inode(fc, f.ino, fsck_clear_dinode, &f);
		fc->ags[dfs_ino_to_agno(fc->mp, f.ino)].fix_agi = true;
		fsck_note(fc, "repair: cleared inode %" PRIu64, f.ino);
		n++;
	}
	for (i = 0; i < fc->ninodes && !error; i++) {
		struct fsck_inode *fi = &fc->inodes[i];
		struct fsck_inode_fix f = { .fc = fc, .ino = fi->ino, .nlink = fi->refs,
					    .nblocks = fi->nblocks, .nextents = fi->nextents };

		if (fi->flags & FI_BAD)
			continue;
		if (fi->drop_xattr) {
			error = fsck_update_inode(fc, fi->ino, fsck_drop_xattr, &f);
			fsck_note(fc, "repair: inode %" PRIu64 ": dropped its bad xattr block", fi->ino);
			n++;
			continue;	/* its counts are checked again next pass */
		}
		if (fi->fix_size) {
			struct fsck_inode_fix sz = { .fc = fc, .ino = fi->ino, .nblocks = fi->fix_size };

			error = fsck_update_inode(fc, fi->ino, fsck_set_size, &sz);
			fsck_note(fc, "repair: directory %" PRIu64 ": size set to %" PRIu64, fi->ino,
				  fi->fix_size);
			n++;
		}
		if (fi->flags & (FI_UNLINKED | FI_ORPHAN))
			continue;
		if (fi->fix_counts) {
			error = fsck_update_inode(fc, fi->ino, fsck_set_counts, &f);
			fsck_note(fc, "repair: inode %" PRIu64 ": block and extent counts set to %" PRIu64 " and %u",
				  fi->ino, fi->nblocks, fi->nextents);
			n++;
		}
		if (!error && (fi->flags & FI_REACHED) && fi->refs != fi->nlink) {
			error = fsck_update_inode(fc, fi->ino, fsck_set_nlink, &f);
			fsck_note(fc, "repair: inode %" PRIu64 ": link count set to %u", fi->ino,
				  fi->refs);
			n++;
		}
	}
	for (agno = 0; agno < fc->sb.agcount && !error; agno++) {
		if (fc->ags[agno].rebuild_inobt) {
			error = fsck_rebuild_inobt(fc, agno);
			n++;
		}
	}
	for (agno = 0; agno < fc->sb.agcount && !error; agno++) {
		struct fsck_ag *ag = &fc->ags[agno];

		if (ag->agi_ok && ag->inobt_ok && (ag->fix_agi || ag->fix_unlinked)) {
			error = fsck_fix_inobt(fc, agno);
			fsck_note(fc, "repair: AG %u: inobt free masks and AGI counters rewritten",
				  agno);
			n++;
		}
	}
	/* a rebuild treats what is not known to be in use as free: only safe
	 * when every inode, and so every file block, has been seen */
	for (agno = 0; agno < fc->sb.agcount && !error; agno++) {
		if (!fc->ags[agno].rebuild_freesp)
			continue;
		if (!all_inodes_known) {
			fsck_note(fc, "AG %u: free space not rebuilt: some inodes could not be read", agno);
			continue;
		}
		error = fsck_rebuild_freesp(fc, agno);
		if (error == -ENOSPC) {
			error = 0;
			continue;
		}
		fsck_note(fc, "repair: AG %u: rebuilt the free-space btrees and the AGFL", agno);
		n++;
	}
	if (!error)
		error = dfs_blkdev_flush(fc->bd);
	return error ? error : n;
}

/* ---- repair: the namespace, through the library ------------------------- */

static int fsck_nsfix_one(struct dfs_mount *mp, const struct fsck_nsfix *f, uint64_t lpf)
{
	struct dfs_inode *dp = NULL, *ip = NULL;
	struct dfs_trans *tp;
	char name[32];
	int error;

	error = dfs_trans_alloc(mp, dfs_dir_space_res(mp), &tp);
	if (error)
		return error;
	switch (f->op) {
	case NSFIX_REMOVE:
		error = dfs_iget(mp, tp, f->dir, &dp);
		if (!error)
			error = dfs_dir_removename(tp, dp, f->name, f->namelen);
		break;
	case NSFIX_FTYPE:
		error = dfs_iget(mp, tp, f->dir, &dp);
		if (!error)
			error = dfs_iget(mp, tp, f->ino, &ip);
		if (!error)
			error = dfs_dir_replace(tp, dp, f->name, f->namelen, f->ino,
						dfs_dir_ftype(ip->i_mode));
		break;
	case NSFIX_DOTDOT:
		error = dfs_iget(mp, tp, f->dir, &dp);
		if (!error)
			error = dfs_dir_replace(tp, dp, "..", 2, f->ino, dfs_dir_ftype(S_IFDIR));
		break;
	case NSFIX_ORPHAN:
		snprintf(name, sizeof(name), "%" PRIu64, f->ino);
		error = dfs_iget(mp, tp, lpf, &dp);
		if (!error)
			error = dfs_iget(mp, tp, f->ino, &ip);
		if (!error)
			error = dfs_dir_createname(tp, dp, name, strlen(name), f->ino,
						   dfs_dir_ftype(ip->i_mode));
		if (!error && dfs_isdir(ip)) {
			error = dfs_dir_replace(tp, ip, "..", 2, lpf, dfs_dir_ftype(S_IFDIR));
			if (!error)
				error = dfs_bumplink(tp, dp);
		}
		break;
	}
	if (error)
		dfs_trans_cancel(tp);
	else
		error = dfs_trans_commit(tp, false);
	if (ip)
		dfs_irele(ip);
	if (dp)
		dfs_irele(dp);
	return error;
}

static int fsck_lost_found(struct fsck *fc, struct dfs_mount *mp, uint64_t *lpf)
{
	struct dfs_cred cr = { 0, 0 };
	struct dfs_stat st;
	int error;

	error = dfs_lookup(mp, dfs_root_ino(mp), "lost+found", &st);
	if (error == -ENOENT) {
		error = dfs_mkdir(mp, dfs_root_ino(mp), "lost+found", 0700, &cr, &st);
		if (!error)
			fsck_note(fc, "repair: created /lost+found (inode %" PRIu64 ")", st.ino);
	}
	if (error)
		return error;
	dfs_forget(mp, st.ino, 1);
	if (!S_ISDIR(st.mode)) {
		fsck_note(fc, "/lost+found is not a directory: orphans stay where they are");
		return -ENOTDIR;
	}
	*lpf = st.ino;
	return 0;
}

/* Returns the number of repairs made, or -errno. */
int fsck_repair_namespace(struct fsck *fc)
{
	static const char *const what[] = {
		[NSFIX_REMOVE] = "removed entry '%s' from directory %" PRIu64,
		[NSFIX_FTYPE] = "fixed the file type of entry '%s' in directory %" PRIu64,
		[NSFIX_DOTDOT] = "fixed entry '%s' of directory %" PRIu64,
	};
	struct dfs_mount *mp;
	uint64_t lpf = 0;
	bool need_lpf = false;
	int n = 0, error, error2;
	size_t i;

	for (i = 0; i < fc->nnsfix; i++)
		if (fc->nsfix[i].op == NSFIX_ORPHAN)
			need_lpf = true;
	error = dfs_mount(fc->path, NULL, &mp);
	if (error) {
		fsck_note(fc, "cannot mount to repair directories: %s", strerror(-error));
		return error;
	}
	if (need_lpf)
		error = fsck_lost_found(fc, mp, &lpf);
	pthread_mutex_lock(&mp->m_lock);
	for (i = 0; i < fc->nnsfix && !error; i++) {
		const struct fsck_nsfix *f = &fc->nsfix[i];

		error = fsck_nsfix_one(mp, f, lpf);
		if (error)
			fsck_note(fc, "repair of inode %" PRIu64 " failed: %s", f->ino ? f->ino : f->dir,
				  strerror(-error));
		else if (f->op == NSFIX_ORPHAN)
			fsck_note(fc, "repair: moved inode %" PRIu64 " to /lost+found", f->ino);
		else
			fsck_note(fc, what[f->op], f->name, f->dir);
		n += !error;
	}
	pthread_mutex_unlock(&mp->m_lock);
	error2 = dfs_unmount(mp);
	if (!error)
		error = error2;
	return error ? error : n;
}
