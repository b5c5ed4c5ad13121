// SPDX-License-Identifier: MIT
/*
 * fsck (see fsck.c for the design). Phases 4 and 5: directories from the
 * root, the unlinked lists, link counts and orphans.
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

/* ---- phase 4: directories ----------------------------------------------- */

static int fsck_add_nsfix(struct fsck *fc, enum fsck_nsfix_op op, uint64_t dir, uint64_t ino,
			  const char *name, size_t namelen)
{
	struct fsck_nsfix *f;

	if (fc->nnsfix == fc->cap_nsfix) {
		size_t cap = fc->cap_nsfix ? fc->cap_nsfix * 2 : 16;

		f = realloc(fc->nsfix, cap * sizeof(*f));
		if (!f)
			return -ENOMEM;
		fc->nsfix = f;
		fc->cap_nsfix = cap;
	}
	f = &fc->nsfix[fc->nnsfix++];
	memset(f, 0, sizeof(*f));
	f->op = op;
	f->dir = dir;
	f->ino = ino;
	f->namelen = (uint8_t)namelen;
	if (name)
		memcpy(f->name, name, namelen);
	return 0;
}

static int fsck_enqueue_dir(struct fsck *fc, uint64_t ino)
{
	if (fc->qtail == fc->cap_queue) {
		size_t cap = fc->cap_queue ? fc->cap_queue * 2 : 64;
		uint64_t *q = realloc(fc->queue, cap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		fc->queue = q;
		fc->cap_queue = cap;
	}
	fc->queue[fc->qtail++] = ino;
	return 0;
}

struct fsck_dirwalk {
	struct fsck_inode *dp;
	uint64_t nentries;
	uint64_t nblocks;	/* directory blocks visited */
	uint32_t prev_leaf;	/* leaf chain, as in fsck_bt_walk */
	uint32_t prev_right;
	uint64_t root_nentries;
	bool bad;
};

static void fsck_dir_bad(struct fsck *fc, struct fsck_dirwalk *dw, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fsck_dir_bad(struct fsck *fc, struct fsck_dirwalk *dw, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fsck_problem(fc, "directory %" PRIu64 ": %s", dw->dp->ino, msg);
	dw->bad = true;
}

static bool fsck_ino_unknown(struct fsck *fc, uint64_t ino)
{
	uint32_t agno = dfs_ino_to_agno(fc->mp, ino);

	return agno < fc->sb.agcount && !fsck_ag_inodes_known(&fc->ags[agno]);
}

/* One entry; lo <= key < hi is where the tree says it must be. */
static int fsck_dir_entry(struct fsck *fc, struct fsck_dirwalk *dw, const struct dfs_dir_ent *de,
			  uint64_t lo, uint64_t hi, uint64_t *lastkey, bool *have_last)
{
	uint64_t dino = dw->dp->ino;
	struct fsck_inode *ip;
	const char *name = de->name;
	size_t len = de->namelen;

	dw->nentries++;
	if (len == 0 || memchr(name, '/', len) || memchr(name, '\0', len) ||
	    (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) {
		fsck_dir_bad(fc, dw, "entry for inode %" PRIu64 " has an invalid name", de->ino);
		return 0;
	}
	if (dfs_dir_key_hash(de->key) != dfs_dir_hashname(name, len))
		fsck_dir_bad(fc, dw, "entry '%.*s' has key 0x%" PRIx64 ", not its name's hash",
			     (int)len, name, de->key);
	if ((*have_last && de->key <= *lastkey) || de->key < lo || de->key >= hi)
		fsck_dir_bad(fc, dw, "entry '%.*s' is out of key order", (int)len, name);
	*lastkey = de->key;
	*have_last = true;

	ip = fsck_find_inode(fc, de->ino);
	if (!ip && fsck_ino_unknown(fc, de->ino))
		return 0;	/* in an AG whose inodes could not be read */
	if (!ip || (ip->flags & FI_BAD)) {
		fsck_problem(fc, "directory %" PRIu64 ": entry '%.*s' points to %s inode %" PRIu64,
			     dino, (int)len, name, ip ? "corrupt" : "free or invalid", de->ino);
		return fsck_add_nsfix(fc, NSFIX_REMOVE, dino, de->ino, name, len);
	}
	if (S_ISDIR(ip->mode) && (ip->flags & FI_REACHED)) {
		fsck_problem(fc, "directory %" PRIu64 ": entry '%.*s' links directory %" PRIu64 ", which is already linked elsewhere",
			     dino, (int)len, name, de->ino);
		return fsck_add_nsfix(fc, NSFIX_REMOVE, dino, de->ino, name, len);
	}
	if (de->ftype != dfs_dir_ftype(ip->mode)) {
		fsck_problem(fc, "directory %" PRIu64 ": entry '%.*s' has file type %u, inode %" PRIu64 " has %u",
			     dino, (int)len, name, de->ftype, de->ino, dfs_dir_ftype(ip->mode));
		if (fsck_add_nsfix(fc, NSFIX_FTYPE, dino, de->ino, name, len))
			return -ENOMEM;
	}
	ip->refs++;
	if (S_ISDIR(ip->mode)) {
		ip->flags |= FI_REACHED;
		ip->parent = dino;
		return fsck_enqueue_dir(fc, ip->ino);
	}
	ip->flags |= FI_REACHED;
	return 0;
}

/* Entries packed in [p, p+len): a shortform body or a leaf. */
static int fsck_dir_entries(struct fsck *fc, struct fsck_dirwalk *dw, const uint8_t *p, uint32_t len,
			    uint32_t count, uint64_t lo, uint64_t hi, uint64_t *lastkey,
			    bool *have_last, const char *where)
{
	uint32_t off = 0, i;
	int error;

	for (i = 0; i < count; i++) {
		const struct dfs_dir_ent *de = (const void *)(p + off);
		uint32_t sz;

		if (len - off < DFS_DIR_ENT_HDR ||
		    (sz = dfs_dir_ent_size(de->namelen)) > len - off) {
			fsck_dir_bad(fc, dw, "%s: entry %u runs past the end", where, i);
			return 0;
		}
		error = fsck_dir_entry(fc, dw, de, lo, hi, lastkey, have_last);
		if (error)
			return error;
		off += sz;
	}
	if (off != len)
		fsck_dir_bad(fc, dw, "%s: %u entries use %u bytes, not %u", where, count, off, len);
	return 0;
}

static uint64_t fsck_dir_bmap(const struct fsck_inode *dp, uint64_t fb)
{
	uint32_t i;

	for (i = 0; i < dp->next; i++) {
		const struct dfs_bmbt_rec *r = &dp->ext[i];

		if (fb >= r->startoff && fb < r->startoff + r->blockcount)
			return r->state == DFS_EXT_NORM ? r->startblock + (fb - r->startoff)
							: DFS_NULLFSBLOCK;
	}
	return DFS_NULLFSBLOCK;
}

static int fsck_dir_block(struct fsck *fc, struct fsck_dirwalk *dw, uint32_t fb, int level,
			  uint64_t lo, uint64_t hi, uint64_t *lastkey, bool *have_last,
			  uint64_t *parent)
{
	uint64_t fsbno = fsck_dir_bmap(dw->dp, fb);
	const uint32_t room = fc->bs - (uint32_t)sizeof(struct dfs_dir_blk);
	struct dfs_dir_blk *db;
	char what[64];
	int error = 0;
	uint32_t i;

	if (fsbno == DFS_NULLFSBLOCK) {
		fsck_dir_bad(fc, dw, "tree block at file block %u is not mapped (or unwritten)", fb);
		return 0;
	}
	if (dw->nblocks++ > dw->dp->nblocks) {
		fsck_dir_bad(fc, dw, "tree has more blocks than the directory owns (a loop?)");
		return 0;
	}
	db = dfs_bio_alloc_buf(fc->bs);
	if (!db)
		return -ENOMEM;
	snprintf(what, sizeof(what), "directory %" PRIu64 " block", dw->dp->ino);
	if (fsck_read(fc, fsbno, 1, db) ||
	    !fsck_check_hdr(fc, db, fsbno, DFS_DIR_MAGIC, dw->dp->ino, what)) {
		dw->bad = true;
		goto out;
	}
	if (level < 0) {	/* root: its level is the tree's height */
		if (db->level >= DFS_DIR_MAXLEVELS) {
			fsck_dir_bad(fc, dw, "root block has level %u", db->level);
			goto out;
		}
		level = db->level;
		*parent = db->parent;
		dw->root_nentries = db->nentries;	/* checked by the caller */
	} else if (db->level != level) {
		fsck_dir_bad(fc, dw, "block %u has level %u, expected %d", fb, db->level, level);
		goto out;
	}
	if (level == 0) {
		if (dw->prev_leaf == DFS_DIR_NOBLK) {
			if (db->leftsib != DFS_DIR_NOBLK)
				fsck_dir_bad(fc, dw, "first leaf %u has a left sibling %u", fb,
					     db->leftsib);
		} else if (db->leftsib != dw->prev_leaf || dw->prev_right != fb) {
			fsck_dir_bad(fc, dw, "leaf %u: sibling links broken", fb);
		}
		dw->prev_leaf = fb;
		dw->prev_right = db->rightsib;
		if (db->used > room) {
			fsck_dir_bad(fc, dw, "leaf %u: %u bytes used in a %u-byte block", fb,
				     db->used, room);
			goto out;
		}
		snprintf(what, sizeof(what), "leaf %u", fb);
		error = fsck_dir_entries(fc, dw, (const uint8_t *)(db + 1), db->used, db->count,
					 lo, hi, lastkey, have_last, what);
	} else {
		const struct dfs_dir_nent *ne = (const void *)(db + 1);

		if (db->count == 0 || db->count > room / sizeof(*ne)) {
			fsck_dir_bad(fc, dw, "node %u has %u keys", fb, db->count);
			goto out;
		}
		for (i = 0; i < db->count && !error && !dw->bad; i++) {
			uint64_t clo = i ? ne[i].key : lo;
			uint64_t chi = i + 1 < db->count ? ne[i + 1].key : hi;

			if (clo < lo || chi > hi || clo >= chi) {
				fsck_dir_bad(fc, dw, "node %u: key %u is out of order", fb, i);
				break;
			}
			error = fsck_dir_block(fc, dw, ne[i].child, level - 1, clo, chi, lastkey,
					       have_last, parent);
		}
	}
out:
	free(db);
	return error;
}

static int fsck_check_dir(struct fsck *fc, struct fsck_inode *dp, bool disconnected)
{
	struct fsck_dirwalk dw = { .dp = dp, .prev_leaf = DFS_DIR_NOBLK,
				   .prev_right = DFS_DIR_NOBLK };
	uint64_t parent = DFS_NULLFSBLOCK, lastkey = 0, expected;	/* parent: not read yet */
	bool have_last = false;
	int error;

	dp->refs++;	/* "." */
	if (dp->local) {
		const struct dfs_dir_sf_hdr *sf = (const void *)dp->local;

		if (dp->local_len < sizeof(*sf)) {
			fsck_dir_bad(fc, &dw, "shortform data of %u bytes is too short",
				     dp->local_len);
		} else {
			parent = sf->parent;
			error = fsck_dir_entries(fc, &dw, dp->local + sizeof(*sf),
						 dp->local_len - (uint32_t)sizeof(*sf), sf->count, 0,
						 UINT64_MAX, &lastkey, &have_last, "shortform");
			if (error)
				return error;
		}
	} else {
		uint64_t mapped = 0, nentries;
		uint32_t i;

		for (i = 0; i < dp->next; i++)
			mapped += dp->ext[i].blockcount;
		if (!mapped) {
			fsck_dir_bad(fc, &dw, "has neither shortform data nor blocks");
		} else {
			error = fsck_dir_block(fc, &dw, 0, -1, 0, UINT64_MAX, &lastkey, &have_last,
					       &parent);
			if (error)
				return error;
			nentries = dw.root_nentries;
			if (!dw.bad && dw.prev_right != DFS_DIR_NOBLK)
				fsck_dir_bad(fc, &dw, "last leaf has a right sibling %u",
					     dw.prev_right);
			if (!dw.bad && nentries != dw.nentries)
				fsck_dir_bad(fc, &dw, "root says %" PRIu64 " entries, found %" PRIu64,
					     nentries, dw.nentries);
			if (!dw.bad && dw.nblocks != mapped)
				fsck_dir_bad(fc, &dw, "%" PRIu64 " blocks mapped, %" PRIu64 " in the tree",
					     mapped, dw.nblocks);
			if (!dw.bad) {
				const struct dfs_bmbt_rec *last = &dp->ext[dp->next - 1];
				uint64_t want = (last->startoff + last->blockcount) * fc->bs;

				if (dp->size != want) {
					fsck_problem(fc, "directory %" PRIu64 ": size %" PRIu64 ", its blocks end at %" PRIu64,
						     dp->ino, dp->size, want);
					dp->fix_size = want;
				}
			}
		}
	}
	if (disconnected)
		return 0;
	expected = dp->ino == fc->sb.rootino ? dp->ino : dp->parent;
	if (parent != expected && parent != DFS_NULLFSBLOCK) {
		fsck_problem(fc, "directory %" PRIu64 ": '..' is %" PRIu64 ", expected %" PRIu64,
			     dp->ino, parent, expected);
		error = fsck_add_nsfix(fc, NSFIX_DOTDOT, dp->ino, expected, "..", 2);
		if (error)
			return error;
	}
	{
		struct fsck_inode *pp = fsck_find_inode(fc, expected);

		if (pp)
			pp->refs++;	/* ".." */
	}
	return 0;
}

/* Walks the directories queued so far, breadth first. */
static int fsck_walk_queue(struct fsck *fc, bool disconnected_first)
{
	bool first = disconnected_first;
	int error = 0;

	while (fc->qhead < fc->qtail && !error) {
		struct fsck_inode *dp = fsck_find_inode(fc, fc->queue[fc->qhead++]);

		if (dp)
			error = fsck_check_dir(fc, dp, first);
		first = false;
	}
	return error;
}

int fsck_check_namespace(struct fsck *fc)
{
	struct fsck_inode *root = fsck_find_inode(fc, fc->sb.rootino);
	size_t i;
	int error;

	if (!root && fsck_ino_unknown(fc, fc->sb.rootino)) {
		fsck_note(fc, "directories not checked: the root inode's AG could not be read");
		return 0;
	}
	if (!root || (root->flags & FI_BAD) || !S_ISDIR(root->mode)) {
		fsck_problem(fc, "root inode %" PRIu64 " is %s", fc->sb.rootino,
			     !root ? "not in use" : (root->flags & FI_BAD) ? "corrupt" : "not a directory");
		fsck_note(fc, "fsck cannot rebuild the root directory");
		return 0;
	}
	fc->root_ok = true;
	root->flags |= FI_REACHED;
	root->parent = root->ino;
	fc->qhead = fc->qtail = 0;
	error = fsck_enqueue_dir(fc, root->ino);
	if (!error)
		error = fsck_walk_queue(fc, false);

	/* Directory trees cut off from the root: walk each from its top, so
	 * that only the top goes to lost+found. */
	for (i = 0; i < fc->ninodes && !error; i++) {
		struct fsck_inode *dp = &fc->inodes[i], *top = dp;
		unsigned hops = 0;

		if ((dp->flags & (FI_REACHED | FI_BAD)) || !S_ISDIR(dp->mode) || dp->nlink == 0)
			continue;
		for (;;) {
			uint64_t up = 0;
			struct fsck_inode *pp;

			if (top->local && top->local_len >= sizeof(struct dfs_dir_sf_hdr))
				up = ((const struct dfs_dir_sf_hdr *)top->local)->parent;
			else if (!top->local && top->next) {
				struct dfs_dir_blk *db = fc->blk;
				uint64_t fsbno = fsck_dir_bmap(top, 0);

				if (fsbno != DFS_NULLFSBLOCK && !fsck_read(fc, fsbno, 1, db) &&
				    db->hdr.magic == DFS_DIR_MAGIC)
					up = db->parent;
			}
			pp = fsck_find_inode(fc, up);
			if (!pp || pp == top || (pp->flags & (FI_REACHED | FI_BAD)) ||
			    !S_ISDIR(pp->mode) || pp->nlink == 0 || ++hops > fc->ninodes)
				break;
			top = pp;
		}
		top->flags |= FI_REACHED | FI_DISCONNECTED;
		fc->qhead = fc->qtail = 0;
		error = fsck_enqueue_dir(fc, top->ino);
		if (!error)
			error = fsck_walk_queue(fc, true);
	}
	return error;
}

/* ---- phase 5: unlinked lists, link counts, orphans ---------------------- */

void fsck_check_unlinked(struct fsck *fc, uint32_t agno)
{
	struct fsck_ag *ag = &fc->ags[agno];
	uint64_t ino = ag->agi.unlinked;
	size_t n = 0;

	while (ino != DFS_NULLINO) {
		struct fsck_inode *fi = fsck_find_inode(fc, ino);
		struct dfs_dinode *dip;
		uint64_t fsbno;

		if (!fi || (fi->flags & FI_BAD) || dfs_ino_to_agno(fc->mp, ino) != agno ||
		    (fi->flags & FI_UNLINKED) || fi->nlink != 0 || ++n > fc->ninodes) {
			fsck_problem(fc, "AG %u AGI: unlinked list reaches inode %" PRIu64 ", which is %s",
				     agno, ino,
				     !fi ? "not in use" : (fi->flags & FI_BAD) ? "corrupt" :
				     (fi->flags & FI_UNLINKED) ? "on the list twice" :
				     fi->nlink ? "linked" : "in another AG");
			ag->fix_unlinked = true;
			return;
		}
		fi->flags |= FI_UNLINKED;
		fsbno = dfs_ino_to_fsb(fc->mp, ino);
		if (fsck_read(fc, fsbno, 1, fc->blk))
			return;
		dip = (void *)((uint8_t *)fc->blk +
			       (size_t)dfs_ino_to_offset(fc->mp, ino) * DFS_INODE_SIZE);
		ino = dip->di_next_unlinked;
	}
	if (n)
		fsck_note(fc, "AG %u: %zu unlinked inodes wait to be freed at the next mount", agno,
			  n);
}

int fsck_check_links(struct fsck *fc)
{
	size_t i;
	int error = 0;

	for (i = 0; i < fc->ninodes && !error; i++) {
		struct fsck_inode *fi = &fc->inodes[i];

		if (fi->flags & FI_BAD)
			continue;
		if (fi->flags & FI_UNLINKED) {
			if (fi->refs)
				fsck_problem(fc, "inode %" PRIu64 ": on the unlinked list but named by %u directory entries",
					     fi->ino, fi->refs);
			continue;
		}
		if (fi->flags & FI_DISCONNECTED) {
			fsck_problem(fc, "directory %" PRIu64 ": not reachable from the root", fi->ino);
			fi->flags |= FI_ORPHAN;
			error = fsck_add_nsfix(fc, NSFIX_ORPHAN, 0, fi->ino, NULL, 0);
			continue;
		}
		if (!(fi->flags & FI_REACHED)) {
			if (fi->nlink == 0) {
				fsck_problem(fc, "inode %" PRIu64 ": no links, in no directory and not on an unlinked list",
					     fi->ino);
				error = fsck_clear_later(fc, fi->ino);
			} else if (S_ISREG(fi->mode) && fi->size == 0 && fi->nblocks == 0) {
				fsck_problem(fc, "inode %" PRIu64 ": empty file in no directory (orphan)",
					     fi->ino);
				error = fsck_clear_later(fc, fi->ino);
			} else {
				fsck_problem(fc, "inode %" PRIu64 ": in no directory (orphan, link count %u)",
					     fi->ino, fi->nlink);
				fi->flags |= FI_ORPHAN;
				error = fsck_add_nsfix(fc, NSFIX_ORPHAN, 0, fi->ino, NULL, 0);
			}
			continue;
		}
		if (fi->refs != fi->nlink)
			fsck_problem(fc, "inode %" PRIu64 ": link count %u, but %u references", fi->ino,
				     fi->nlink, fi->refs);
	}
	return error;
}

/* Blocks that nothing owns and free space does not list. */
void fsck_check_leaks(struct fsck *fc, uint32_t agno)
{
	struct fsck_ag *ag = &fc->ags[agno];
	uint64_t base = dfs_agb_to_fsb(fc->mp, agno, 0);
	uint32_t b = 0, runs = 0, total = 0;

	while (b < ag->length) {
		uint32_t e;

		if (fc->own[base + b] != OWN_NONE) {
			b++;
			continue;
		}
		for (e = b; e < ag->length && fc->own[base + e] == OWN_NONE; e++)
			;
		if (runs++ < 8)
			fsck_problem(fc, "AG %u: blocks %u..%u (%u blocks) are neither free nor in use (leaked)",
				     agno, b, e - 1, e - b);
		else
			fc->problems++;
		total += e - b;
		b = e;
	}
	if (runs)
		ag->rebuild_freesp = true;
}
