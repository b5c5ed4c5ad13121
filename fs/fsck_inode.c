// SPDX-License-Identifier: MIT
/*
 * fsck (see fsck.c for the design). Phase 3: the inobt (or a scan for inode
 * chunks), every inode, its fork and blocks.
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

/* ---- phase 3: inodes ---------------------------------------------------- */

struct fsck_inode *fsck_find_inode(struct fsck *fc, uint64_t ino)
{
	size_t lo = 0, hi = fc->ninodes;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (fc->inodes[mid].ino == ino)
			return &fc->inodes[mid];
		if (fc->inodes[mid].ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static struct fsck_inode *fsck_add_inode(struct fsck *fc, uint64_t ino)
{
	struct fsck_inode *fi;

	if (fc->ninodes == fc->cap_inodes) {
		size_t cap = fc->cap_inodes ? fc->cap_inodes * 2 : 256;

		fi = realloc(fc->inodes, cap * sizeof(*fi));
		if (!fi)
			return NULL;
		fc->inodes = fi;
		fc->cap_inodes = cap;
	}
	fi = &fc->inodes[fc->ninodes++];
	memset(fi, 0, sizeof(*fi));
	fi->ino = ino;
	return fi;
}

int fsck_clear_later(struct fsck *fc, uint64_t ino)
{
	if (fc->nclear == fc->cap_clear) {
		size_t cap = fc->cap_clear ? fc->cap_clear * 2 : 16;
		uint64_t *n = realloc(fc->clear_inos, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		fc->clear_inos = n;
		fc->cap_clear = cap;
	}
	fc->clear_inos[fc->nclear++] = ino;
	return 0;
}

static bool fsck_mode_valid(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFCHR: case S_IFBLK: case S_IFIFO:
	case S_IFSOCK:
		return true;
	}
	return false;
}

/*
 * Checks and claims a file's extents, in file offset order; returns false
 * if one is unusable (the inode is then cleared by repair).
 */
static bool fsck_check_extents(struct fsck *fc, struct fsck_inode *fi,
			       const struct dfs_bmbt_rec *recs, size_t n)
{
	uint64_t next_off = 0;
	char who[48];
	bool ok = true;
	size_t i;

	snprintf(who, sizeof(who), "inode %" PRIu64 " data", fi->ino);
	for (i = 0; i < n; i++) {
		const struct dfs_bmbt_rec *r = &recs[i];

		if (r->blockcount == 0 || r->blockcount > DFS_MAX_EXTLEN ||
		    r->startoff + r->blockcount < r->startoff || r->state > DFS_EXT_UNWRITTEN ||
		    !fsck_extent_in_ag(fc, r->startblock, r->blockcount)) {
			fsck_problem(fc, "inode %" PRIu64 ": bad extent %zu (offset %" PRIu64 ", block %" PRIu64 ", %u blocks, state %u)",
				     fi->ino, i, r->startoff, r->startblock, r->blockcount, r->state);
			ok = false;
			continue;
		}
		if (i && r->startoff < next_off) {
			fsck_problem(fc, "inode %" PRIu64 ": extent %zu at offset %" PRIu64 " overlaps the one before it",
				     fi->ino, i, r->startoff);
			ok = false;
		}
		next_off = r->startoff + r->blockcount;
		if (fsck_claim(fc, r->startblock, r->blockcount, OWN_DATA, who))
			ok = false;
		if (S_ISDIR(fi->mode) || S_ISLNK(fi->mode)) {
			struct dfs_bmbt_rec *e = realloc(fi->ext, (fi->next + 1) * sizeof(*e));

			if (!e)
				return false;
			fi->ext = e;
			fi->ext[fi->next++] = *r;
		}
		fi->nblocks += r->blockcount;
		fi->nextents++;
	}
	return ok;
}

static bool fsck_check_dinode_fork(struct fsck *fc, struct fsck_inode *fi,
				   const struct dfs_dinode *dip)
{
	uint32_t type = dip->di_mode & S_IFMT;

	switch (dip->di_format) {
	case DFS_DINODE_FMT_LOCAL:
		if (type != S_IFDIR && type != S_IFLNK) {
			fsck_problem(fc, "inode %" PRIu64 ": local format for mode 0%o", fi->ino,
				     dip->di_mode);
			return false;
		}
		if (dip->di_size > DFS_DFORK_SIZE || dip->di_nextents) {
			fsck_problem(fc, "inode %" PRIu64 ": local fork of %" PRIu64 " bytes, %u extents",
				     fi->ino, dip->di_size, dip->di_nextents);
			return false;
		}
		if (type == S_IFDIR) {
			fi->local = malloc(dip->di_size + 1);
			if (!fi->local)
				return false;
			memcpy(fi->local, dip->di_fork, dip->di_size);
			fi->local_len = (uint32_t)dip->di_size;
		}
		return true;
	case DFS_DINODE_FMT_EXTENTS:
		if (dip->di_nextents > DFS_INLINE_EXTENTS) {
			fsck_problem(fc, "inode %" PRIu64 ": %u extents do not fit in the inode",
				     fi->ino, dip->di_nextents);
			return false;
		}
		return fsck_check_extents(fc, fi, (const struct dfs_bmbt_rec *)dip->di_fork,
					  dip->di_nextents);
	case DFS_DINODE_FMT_BTREE: {
		const struct dfs_bmroot *br = (const struct dfs_bmroot *)dip->di_fork;
		struct fsck_bt bt;
		char name[48];
		bool ok;

		if (type != S_IFREG && type != S_IFDIR) {
			fsck_problem(fc, "inode %" PRIu64 ": btree format for mode 0%o", fi->ino,
				     dip->di_mode);
			return false;
		}
		snprintf(name, sizeof(name), "inode %" PRIu64 " bmbt", fi->ino);
		fsck_bt_init(&bt, name, DFS_BMBT_MAGIC, sizeof(struct dfs_bmbt_rec), fi->ino,
			     UINT32_MAX, OWN_BMBT);
		bt.key_of_rec = fsck_bmbt_key_of_rec;
		bt.key_of_key = fsck_bmbt_key_of_key;
		if (fsck_bt_walk_tree(fc, &bt, br->root, br->level)) {
			free(bt.recs);
			return false;
		}
		ok = !bt.bad;
		fi->nblocks += bt.nblocks;
		if (ok)
			ok = fsck_check_extents(fc, fi, (const struct dfs_bmbt_rec *)bt.recs,
						bt.nrecs);
		free(bt.recs);
		return ok;
	}
	default:
		fsck_problem(fc, "inode %" PRIu64 ": unknown data fork format %u", fi->ino,
			     dip->di_format);
		return false;
	}
}

static int fsck_attr_namecmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

/* The entries of an xattr block (xattr.h): sorted names, sizes that add up. */
static bool fsck_check_xattr_ents(struct fsck *fc, struct fsck_inode *fi, uint64_t fsbno,
				  const struct dfs_attr_blk *ab)
{
	const uint8_t *p = (const uint8_t *)(ab + 1);
	const struct dfs_attr_ent *prev = NULL;
	uint32_t off = 0, n = 0;

	if (ab->used > fc->bs - sizeof(*ab)) {
		fsck_problem(fc, "inode %" PRIu64 " xattr block %" PRIu64 ": %u bytes used", fi->ino,
			     fsbno, ab->used);
		return false;
	}
	while (off < ab->used) {
		const struct dfs_attr_ent *e = (const void *)(p + off);
		uint32_t sz;

		if (ab->used - off < sizeof(*e) || e->namelen == 0 ||
		    (sz = (uint32_t)((sizeof(*e) + e->namelen + e->valuelen + 3) & ~3u)) >
			    ab->used - off) {
			fsck_problem(fc, "inode %" PRIu64 " xattr block %" PRIu64 ": entry %u overruns the block",
				     fi->ino, fsbno, n);
			return false;
		}
		if (memchr(e->data, '\0', e->namelen) ||
		    (prev && fsck_attr_namecmp(prev->data, prev->namelen, e->data, e->namelen) >= 0)) {
			fsck_problem(fc, "inode %" PRIu64 " xattr block %" PRIu64 ": entry %u has a bad name or is out of order",
				     fi->ino, fsbno, n);
			return false;
		}
		prev = e;
		off += sz;
		n++;
	}
	if (n != ab->count || n == 0) {
		fsck_problem(fc, "inode %" PRIu64 " xattr block %" PRIu64 ": %u entries, header says %u",
			     fi->ino, fsbno, n, ab->count);
		return false;
	}
	return true;
}

/* A bad xattr block costs the attributes, not the file: repair drops it. */
static void fsck_check_xattr_blk(struct fsck *fc, struct fsck_inode *fi, uint64_t fsbno)
{
	char who[48];

	snprintf(who, sizeof(who), "inode %" PRIu64 " xattr block", fi->ino);
	if (!fsck_extent_in_ag(fc, fsbno, 1)) {
		fsck_problem(fc, "%s %" PRIu64 " is out of range", who, fsbno);
		fi->drop_xattr = true;
		return;
	}
	if (fsck_claim(fc, fsbno, 1, OWN_XATTR, who)) {
		fi->drop_xattr = true;
		return;
	}
	fi->nblocks++;
	if (fsck_read(fc, fsbno, 1, fc->blk) ||
	    !fsck_check_hdr(fc, fc->blk, fsbno, DFS_ATTR_MAGIC, fi->ino, who) ||
	    !fsck_check_xattr_ents(fc, fi, fsbno, fc->blk))
		fi->drop_xattr = true;
}

/* Symlink targets (symlink.h): inline, or pieces in blocks 0.. in order. */
static bool fsck_check_symlink(struct fsck *fc, struct fsck_inode *fi, const struct dfs_dinode *dip)
{
	uint32_t per = fc->bs - (uint32_t)sizeof(struct dfs_symlink_blk);
	uint64_t len = dip->di_size, done, fb;
	char who[48];

	if (len == 0 || len >= DFS_MAXPATHLEN ||
	    (dip->di_format == DFS_DINODE_FMT_LOCAL) != (len <= DFS_SYMLINK_INLINE)) {
		fsck_problem(fc, "symlink %" PRIu64 ": target of %" PRIu64 " bytes in format %u",
			     fi->ino, len, dip->di_format);
		return false;
	}
	if (dip->di_format == DFS_DINODE_FMT_LOCAL)
		return true;
	snprintf(who, sizeof(who), "symlink %" PRIu64 " block", fi->ino);
	for (fb = 0, done = 0; done < len; fb++, done += per) {
		const struct dfs_symlink_blk *sb = fc->blk;
		uint64_t want = len - done < per ? len - done : per;
		uint64_t fsbno = DFS_NULLFSBLOCK;
		uint32_t i;

		for (i = 0; i < fi->next; i++)
			if (fb >= fi->ext[i].startoff && fb < fi->ext[i].startoff + fi->ext[i].blockcount)
				fsbno = fi->ext[i].startblock + (fb - fi->ext[i].startoff);
		if (fsbno == DFS_NULLFSBLOCK) {
			fsck_problem(fc, "symlink %" PRIu64 ": block %" PRIu64 " of the target is not mapped",
				     fi->ino, fb);
			return false;
		}
		if (fsck_read(fc, fsbno, 1, fc->blk) ||
		    !fsck_check_hdr(fc, sb, fsbno, DFS_SYMLINK_MAGIC, fi->ino, who))
			return false;
		if (sb->offset != done || sb->bytes != want) {
			fsck_problem(fc, "%s %" PRIu64 ": holds bytes %u+%u of the target, expected %" PRIu64 "+%" PRIu64,
				     who, fsbno, sb->offset, sb->bytes, done, want);
			return false;
		}
	}
	return true;
}

/* One in-use inode (by the inobt). */
static int fsck_check_dinode(struct fsck *fc, uint64_t ino, const struct dfs_dinode *dip)
{
	struct fsck_inode *fi = fsck_add_inode(fc, ino);
	bool ok = true;

	if (!fi)
		return -ENOMEM;
	if (dip->di_magic != DFS_DINODE_MAGIC) {
		fsck_problem(fc, "inode %" PRIu64 ": bad magic 0x%04x", ino, dip->di_magic);
		ok = false;
	} else if (!dfs_cksum_verify(dip, DFS_INODE_SIZE, offsetof(struct dfs_dinode, di_crc))) {
		fsck_problem(fc, "inode %" PRIu64 ": CRC mismatch", ino);
		ok = false;
	} else if (dip->di_ino != ino) {
		fsck_problem(fc, "inode %" PRIu64 ": records its number as %" PRIu64, ino,
			     dip->di_ino);
		ok = false;
	} else if (memcmp(dip->di_uuid, fc->sb.hdr.uuid, sizeof(dip->di_uuid))) {
		fsck_problem(fc, "inode %" PRIu64 ": belongs to another filesystem (UUID mismatch)",
			     ino);
		ok = false;
	} else if (dip->di_version != DFS_VERSION) {
		fsck_problem(fc, "inode %" PRIu64 ": unknown version %u", ino, dip->di_version);
		ok = false;
	} else if (!fsck_mode_valid(dip->di_mode)) {
		fsck_problem(fc, "inode %" PRIu64 ": bad mode 0%o", ino, dip->di_mode);
		ok = false;
	}
	if (ok) {
		fi->mode = dip->di_mode;
		fi->nlink = dip->di_nlink;
		fi->size = dip->di_size;
		ok = fsck_check_dinode_fork(fc, fi, dip);
		if (ok && S_ISLNK(fi->mode))
			ok = fsck_check_symlink(fc, fi, dip);
		if (ok && dip->di_xattr_blk)
			fsck_check_xattr_blk(fc, fi, dip->di_xattr_blk);
	}
	if (!ok) {
		fi->flags |= FI_BAD;
		return fsck_clear_later(fc, ino);
	}
	if (fi->nblocks != dip->di_nblocks || fi->nextents != dip->di_nextents) {
		fsck_problem(fc, "inode %" PRIu64 ": di_nblocks %" PRIu64 " di_nextents %u, counted %" PRIu64 " and %u",
			     ino, dip->di_nblocks, dip->di_nextents, fi->nblocks, fi->nextents);
		fi->fix_counts = true;
	}
	if (S_ISDIR(fi->mode))
		fc->dirs++;
	else
		fc->files++;
	return 0;
}

/* Inodes of one chunk; in_use tells which ones the inobt says are in use. */
static int fsck_check_chunk(struct fsck *fc, uint32_t agno, const struct dfs_inobt_rec *rec,
			    bool *mask_wrong)
{
	uint32_t nblocks = DFS_INODES_PER_CHUNK / fc->sb.inopblock, i;
	uint64_t fsbno = dfs_agb_to_fsb(fc->mp, agno, rec->startino >> fc->sb.inopblog);
	uint8_t *chunk;
	int error;

	chunk = dfs_bio_alloc_buf((size_t)nblocks * fc->bs);
	if (!chunk)
		return -ENOMEM;
	error = fsck_read(fc, fsbno, nblocks, chunk);
	if (error)
		goto out;
	for (i = 0; i < DFS_INODES_PER_CHUNK && !error; i++) {
		const struct dfs_dinode *dip = (const void *)(chunk + (size_t)i * DFS_INODE_SIZE);
		uint64_t ino = dfs_agino_to_ino(fc->mp, agno, rec->startino + i);
		bool is_free = rec->free & (1ull << i);
		bool looks_used = dip->di_magic == DFS_DINODE_MAGIC && dip->di_mode != 0;

		if (is_free) {
			if (looks_used) {
				fsck_problem(fc, "inode %" PRIu64 ": marked free in the inobt but in use (mode 0%o)",
					     ino, dip->di_mode);
				*mask_wrong = true;
			}
			continue;
		}
		if (!looks_used && dip->di_magic == DFS_DINODE_MAGIC &&
		    dfs_cksum_verify(dip, DFS_INODE_SIZE, offsetof(struct dfs_dinode, di_crc))) {
			fsck_problem(fc, "inode %" PRIu64 ": marked in use in the inobt but free",
				     ino);
			*mask_wrong = true;
			continue;
		}
		error = fsck_check_dinode(fc, ino, dip);
	}
out:
	free(chunk);
	return error;
}

int fsck_check_inodes_ag(struct fsck *fc, uint32_t agno)
{
	struct fsck_ag *ag = &fc->ags[agno];
	struct fsck_bt bt;
	char name[32];
	size_t i;
	int error;
	bool mask_wrong = false;

	snprintf(name, sizeof(name), "AG %u inobt", agno);
	fsck_bt_init(&bt, name, DFS_INOBT_MAGIC, sizeof(struct dfs_inobt_rec), agno, agno,
		     OWN_INOBT);
	bt.key_of_rec = fsck_ino_key_of_rec;
	bt.key_of_key = fsck_ino_key_of_key;
	error = fsck_bt_walk_tree(fc, &bt, ag->agi.root, ag->agi.level);
	if (error)
		goto out;
	for (i = 0; i < bt.nrecs && !error; i++) {
		const struct dfs_inobt_rec *r = (const void *)(bt.recs + i * bt.reclen);
		uint32_t nblocks = DFS_INODES_PER_CHUNK / fc->sb.inopblock;
		uint32_t agbno = r->startino >> fc->sb.inopblog;
		char who[48];

		if (r->startino % DFS_INODES_PER_CHUNK || agbno >= ag->length ||
		    nblocks > ag->length - agbno) {
			fsck_problem(fc, "%s: chunk at inode %u is misaligned or outside the AG",
				     name, r->startino);
			bt.bad = true;
			continue;
		}
		ag->icount += DFS_INODES_PER_CHUNK;
		ag->ifree += r->freecount;
		if ((uint32_t)__builtin_popcountll(r->free) != r->freecount) {
			fsck_problem(fc, "%s: chunk at inode %u has freecount %u but %d free inodes",
				     name, r->startino, r->freecount, __builtin_popcountll(r->free));
			mask_wrong = true;
		}
		snprintf(who, sizeof(who), "%s chunk %u", name, r->startino);
		if (fsck_claim(fc, dfs_agb_to_fsb(fc->mp, agno, agbno), nblocks, OWN_INODES, who)) {
			bt.bad = true;
			continue;
		}
		error = fsck_check_chunk(fc, agno, r, &mask_wrong);
	}
	if (error)
		goto out;
	if (!bt.bad && !mask_wrong && (ag->agi.count != ag->icount || ag->agi.freecount != ag->ifree)) {
		fsck_problem(fc, "AG %u AGI: count %u freecount %u, counted %u and %u", agno,
			     ag->agi.count, ag->agi.freecount, ag->icount, ag->ifree);
		ag->fix_agi = true;
	}
	if (!bt.bad && mask_wrong)
		ag->fix_agi = true;
	ag->inobt_ok = !bt.bad;
	if (bt.bad) {	/* fsck_scan_chunks takes over */
		ag->icount = ag->ifree = 0;
		ag->fix_agi = false;
	}
out:
	free(bt.recs);
	return error;
}

bool fsck_ag_inodes_known(const struct fsck_ag *ag)
{
	return (ag->agi_ok && ag->inobt_ok) || ag->scanned;
}

static bool fsck_dinode_valid(struct fsck *fc, const struct dfs_dinode *dip, uint64_t ino)
{
	return dip->di_magic == DFS_DINODE_MAGIC && dip->di_version == DFS_VERSION &&
	       dip->di_ino == ino && !memcmp(dip->di_uuid, fc->sb.hdr.uuid, sizeof(dip->di_uuid)) &&
	       dfs_cksum_verify(dip, DFS_INODE_SIZE, offsetof(struct dfs_dinode, di_crc));
}

/*
 * An AG whose inobt cannot be walked (xfs_repair's phase 3 without the
 * inobt): every chunk-aligned extent that nothing else owns and that holds
 * at least one valid inode of its own number is an inode chunk. Its inodes
 * are checked like any others, and repair rebuilds the inobt from them.
 */
int fsck_scan_chunks(struct fsck *fc, uint32_t agno)
{
	struct fsck_ag *ag = &fc->ags[agno];
	uint32_t cb = DFS_INODES_PER_CHUNK / fc->sb.inopblock, agbno, i, found = 0;
	uint64_t base = dfs_agb_to_fsb(fc->mp, agno, 0);
	uint8_t *chunk;
	int error = 0;
	bool mask_wrong = false;

	chunk = dfs_bio_alloc_buf((size_t)cb * fc->bs);
	if (!chunk)
		return -ENOMEM;
	for (agbno = 0; agbno + cb <= ag->length && !error; agbno += cb) {
		struct dfs_inobt_rec rec = { .startino = agbno << fc->sb.inopblog };
		uint32_t nvalid = 0;
		char who[48];

		for (i = 0; i < cb && fc->own[base + agbno + i] == OWN_NONE; i++)
			;
		if (i < cb)
			continue;
		error = fsck_read(fc, base + agbno, cb, chunk);
		for (i = 0; !error && i < DFS_INODES_PER_CHUNK; i++) {
			const struct dfs_dinode *dip = (const void *)(chunk + (size_t)i * DFS_INODE_SIZE);
			uint64_t ino = dfs_agino_to_ino(fc->mp, agno, rec.startino + i);

			if (!fsck_dinode_valid(fc, dip, ino))
				continue;
			nvalid++;
			if (dip->di_mode == 0) {
				rec.free |= 1ull << i;
				rec.freecount++;
			}
		}
		if (error || !nvalid)
			continue;
		found++;
		snprintf(who, sizeof(who), "AG %u inode chunk %u (found by scanning)", agno,
			 rec.startino);
		fsck_claim(fc, base + agbno, cb, OWN_INODES, who);
		ag->icount += DFS_INODES_PER_CHUNK;
		ag->ifree += rec.freecount;
		error = fsck_check_chunk(fc, agno, &rec, &mask_wrong);
	}
	free(chunk);
	if (error)
		return error;
	fsck_problem(fc, "AG %u: %s: the inobt must be rebuilt from %u inode chunks found by scanning",
		     agno, ag->agi_ok ? "the inobt is damaged" : "the AGI is damaged", found);
	ag->scanned = true;
	ag->rebuild_inobt = true;
	return 0;
}

int fsck_inode_cmp(const void *a, const void *b)
{
	const struct fsck_inode *x = a, *y = b;

	return (x->ino > y->ino) - (x->ino < y->ino);
}

int fsck_check_agi(struct fsck *fc, uint32_t agno)
{
	struct fsck_ag *ag = &fc->ags[agno];
	struct dfs_agi *agi = fc->blk;
	uint64_t fsbno = dfs_agb_to_fsb(fc->mp, agno, DFS_AGI_AGBNO);
	char what[32];
	int error;

	snprintf(what, sizeof(what), "AG %u AGI", agno);
	error = fsck_read(fc, fsbno, 1, agi);
	if (error)
		return error;
	ag->agi_ok = false;
	if (!fsck_check_hdr(fc, agi, fsbno, DFS_AGI_MAGIC, agno, what))
		return 0;
	if (agi->seqno != agno || agi->length != ag->length) {
		fsck_problem(fc, "%s %" PRIu64 ": seqno %u length %u, expected %u and %u", what,
			     fsbno, agi->seqno, agi->length, agno, ag->length);
		return 0;
	}
	ag->agi = *agi;
	ag->agi_ok = true;
	return 0;
}
