// SPDX-License-Identifier: MIT
/*
 * fsck and repair (xfs_repair's job).
 *
 * The checker is independent of the library's code paths: it reads raw
 * blocks through the block layer (dfs_blkdev_rw) and validates them against
 * format.h with its own checks (magic, CRC, self address, UUID, owner), so a
 * bug in btree.c or bmap.c cannot hide the corruption it causes. It works in
 * xfs_repair's phases:
 *
 *  1. superblock (and its secondary copies) and the log header;
 *  2. per AG: AGF, AGFL, AGI; the bnobt and cntbt (every block, key order,
 *     sibling links, the two trees describe the same extents, counters);
 *     the inobt (chunks, free masks, AGI counters);
 *  3. every inode of every chunk: core, data fork (inline extents or the
 *     whole bmbt), xattr block; each block found is claimed in an ownership
 *     map over the whole filesystem, so that a block owned twice, a used
 *     block marked free, or a block owned by nothing (leaked) shows up;
 *  4. directories from the root: entries, ".", "..", reachability;
 *  5. link counts, orphans, the AGI unlinked lists;
 *  6. summary counts.
 *
 * An AG whose AGI or inobt cannot be walked has its inode chunks found by
 * scanning (chunk-aligned extents nothing else owns that hold valid inodes
 * of their own numbers), so its inodes are still checked.
 *
 * Repair is done in two ways, as suits each part:
 *  - raw writes with fresh CRCs, as xfs_repair does, for the structure:
 *    free-space trees and the AGFL of a damaged AG are rebuilt from the
 *    ownership map (xfs_repair's phase 5), an inobt and AGI from the chunks
 *    found; inobt free masks, AGF/AGI counters, link counts, block/extent
 *    counts, directory sizes and secondary superblocks are rewritten;
 *    corrupt inodes are cleared (their blocks go back to free space at the
 *    next rebuild) and bad xattr blocks dropped;
 *  - the library (dfs_mount and dir.c's calls in transactions) for the
 *    namespace, only once the structure checks sound: entries naming
 *    free or corrupt inodes are removed, wrong file types and ".." fixed,
 *    orphans linked into /lost+found (created if needed) or, when empty
 *    regular files, cleared.
 * Repair needs a clean log: a dirty one is replayed first by mounting and
 * unmounting. Repairs run in rounds, each followed by a full quiet check,
 * until nothing is left or nothing more can be done; the result is what
 * the last check finds. Not repaired: damaged directory blocks or tree
 * structure, a bad root inode, blocks claimed by two owners.
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

const char *const fsck_owner_names[] = {
	[OWN_NONE] = "nothing",
	[OWN_FREE] = "free space",
	[OWN_SB] = "a superblock",
	[OWN_AGHDR] = "an AG header",
	[OWN_LOG] = "the log",
	[OWN_AGFL] = "the AGFL",
	[OWN_FREESP] = "a free-space btree",
	[OWN_INOBT] = "an inobt",
	[OWN_INODES] = "an inode chunk",
	[OWN_DATA] = "file data",
	[OWN_BMBT] = "a bmbt",
	[OWN_XATTR] = "an xattr block",
};

void fsck_problem(struct fsck *fc, const char *fmt, ...)
{
	va_list ap;

	fc->problems++;
	if (fc->quiet)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void fsck_note(struct fsck *fc, const char *fmt, ...)
{
	va_list ap;

	if (fc->quiet)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- raw block IO ------------------------------------------------------- */

int fsck_read(struct fsck *fc, uint64_t fsbno, uint32_t nblocks, void *buf)
{
	int error = dfs_blkdev_rw(fc->bd, DFS_IO_READ, DFS_IOK_META, fsbno * fc->bs, buf,
				  (size_t)nblocks * fc->bs);

	if (error)
		fprintf(stderr, "cannot read block %" PRIu64 ": %s\n", fsbno, strerror(-error));
	return error;
}

int fsck_write(struct fsck *fc, uint64_t fsbno, uint32_t nblocks, void *buf)
{
	int error = dfs_blkdev_rw(fc->bd, DFS_IO_WRITE, DFS_IOK_META, fsbno * fc->bs, buf,
				  (size_t)nblocks * fc->bs);

	if (error)
		fprintf(stderr, "cannot write block %" PRIu64 ": %s\n", fsbno, strerror(-error));
	return error;
}

/* Writes a block that starts with struct dfs_blkhdr, with a fresh CRC. */
int fsck_write_hdrblk(struct fsck *fc, uint64_t fsbno, void *buf)
{
	dfs_cksum_update(buf, fc->bs, offsetof(struct dfs_blkhdr, crc));
	return fsck_write(fc, fsbno, 1, buf);
}

/*
 * Checks the header every metadata block starts with. what names the block
 * in messages ("AG 1 bnobt block"). Returns false after reporting.
 */
bool fsck_check_hdr(struct fsck *fc, const void *buf, uint64_t fsbno, uint32_t magic,
		    uint64_t owner, const char *what)
{
	const struct dfs_blkhdr *hdr = buf;

	if (hdr->magic != magic) {
		fsck_problem(fc, "%s %" PRIu64 ": bad magic 0x%08x (expected 0x%08x)", what, fsbno,
			     hdr->magic, magic);
		return false;
	}
	if (!dfs_cksum_verify(buf, fc->bs, offsetof(struct dfs_blkhdr, crc))) {
		fsck_problem(fc, "%s %" PRIu64 ": CRC mismatch", what, fsbno);
		return false;
	}
	if (hdr->blkno != fsbno) {
		fsck_problem(fc, "%s %" PRIu64 ": records its address as %" PRIu64, what, fsbno,
			     hdr->blkno);
		return false;
	}
	if (memcmp(hdr->uuid, fc->sb.hdr.uuid, sizeof(hdr->uuid))) {
		fsck_problem(fc, "%s %" PRIu64 ": belongs to another filesystem (UUID mismatch)",
			     what, fsbno);
		return false;
	}
	if (hdr->owner != owner) {
		fsck_problem(fc, "%s %" PRIu64 ": owner %" PRIu64 ", expected %" PRIu64, what,
			     fsbno, hdr->owner, owner);
		return false;
	}
	return true;
}

/* ---- ownership map ------------------------------------------------------ */

/*
 * Claims [fsbno, fsbno+len) for type on behalf of who. Reports blocks that
 * free space also lists (used but marked free: the free-space trees will be
 * rebuilt) and blocks that something else owns already. Returns the number
 * of blocks that were owned by something other than free space.
 */
uint64_t fsck_claim(struct fsck *fc, uint64_t fsbno, uint64_t len, enum fsck_owner type,
		    const char *who)
{
	uint64_t b, nfree = 0, ndup = 0, first_free = 0, first_dup = 0;
	enum fsck_owner dup_owner = OWN_NONE;

	for (b = fsbno; b < fsbno + len; b++) {
		enum fsck_owner cur = fc->own[b];

		if (cur == OWN_NONE) {
			fc->own[b] = type;
		} else if (cur == OWN_FREE) {
			if (!nfree++)
				first_free = b;
			fc->own[b] = type;
			fc->ags[dfs_fsb_to_agno(fc->mp, b)].rebuild_freesp = true;
		} else {
			if (!ndup++) {
				first_dup = b;
				dup_owner = cur;
			}
		}
	}
	if (nfree)
		fsck_problem(fc, "%s: block %" PRIu64 " (%" PRIu64
			     " blocks in all) is in use but marked free",
			     who, first_free, nfree);
	if (ndup)
		fsck_problem(fc, "%s: block %" PRIu64 " (%" PRIu64
			     " blocks in all) is already owned by %s",
			     who, first_dup, ndup, fsck_owner_names[dup_owner]);
	return ndup;
}

bool fsck_extent_in_ag(struct fsck *fc, uint64_t fsbno, uint64_t len)
{
	uint32_t agno;

	if (len == 0 || fsbno >= fc->dblocks || len > fc->dblocks - fsbno)
		return false;
	agno = dfs_fsb_to_agno(fc->mp, fsbno);
	return dfs_fsb_to_agbno(fc->mp, fsbno) + len <= fc->ags[agno].length;
}

/* ---- the whole check ---------------------------------------------------- */

static void fsck_reset(struct fsck *fc)
{
	size_t i;

	for (i = 0; i < fc->ninodes; i++) {
		free(fc->inodes[i].ext);
		free(fc->inodes[i].local);
	}
	fc->ninodes = 0;
	fc->nclear = 0;
	fc->nnsfix = 0;
	fc->problems = 0;
	fc->files = fc->dirs = 0;
	fc->log_dirty = false;
	fc->fix_secondary_sb = false;
	fc->root_ok = false;
	memset(fc->ags, 0, sizeof(*fc->ags) * fc->sb.agcount);
	memset(fc->own, 0, fc->dblocks);
}

static int fsck_check(struct fsck *fc, struct dfs_fsck_result *res)
{
	uint32_t agno;
	uint64_t b;
	int error;

	fsck_reset(fc);
	for (agno = 0; agno < fc->sb.agcount; agno++) {
		uint64_t start = (uint64_t)agno * fc->sb.agblocks;

		fc->ags[agno].length = (uint32_t)(fc->dblocks - start < fc->sb.agblocks ?
						  fc->dblocks - start : fc->sb.agblocks);
	}
	if (fc->opts->verbose)
		fsck_note(fc, "phase 1: superblocks and log");
	error = fsck_check_secondary_sbs(fc);
	if (!error)
		error = fsck_check_log(fc);
	if (error)
		return error;

	/* fixed blocks first, so that free space or a file claiming them shows */
	for (agno = 0; agno < fc->sb.agcount; agno++) {
		uint64_t base = dfs_agb_to_fsb(fc->mp, agno, 0);

		fsck_claim(fc, base + DFS_SB_AGBNO, 1, OWN_SB, "superblock");
		fsck_claim(fc, base + DFS_AGF_AGBNO, 1, OWN_AGHDR, "AGF");
		fsck_claim(fc, base + DFS_AGFL_AGBNO, 1, OWN_AGHDR, "AGFL");
		fsck_claim(fc, base + DFS_AGI_AGBNO, 1, OWN_AGHDR, "AGI");
	}
	fsck_claim(fc, fc->sb.logstart, fc->sb.logblocks, OWN_LOG, "log");

	if (fc->opts->verbose)
		fsck_note(fc, "phase 2: AG headers, free space and inode btrees");
	for (agno = 0; agno < fc->sb.agcount && !error; agno++) {
		struct fsck_ag *ag = &fc->ags[agno];

		error = fsck_check_agf(fc, agno);
		if (error)
			break;
		if (!ag->agf_ok) {
			ag->rebuild_freesp = true;
		} else {
			fsck_check_agfl(fc, agno);
			error = fsck_check_freesp(fc, agno);
		}
		if (!error)
			error = fsck_check_agi(fc, agno);
	}
	if (fc->opts->verbose)
		fsck_note(fc, "phase 3: inodes and their blocks");
	for (agno = 0; agno < fc->sb.agcount && !error; agno++)
		if (fc->ags[agno].agi_ok)
			error = fsck_check_inodes_ag(fc, agno);
	/* after every other AG's files have claimed their blocks, which are
	 * then not scanned */
	for (agno = 0; agno < fc->sb.agcount && !error; agno++)
		if (!fc->ags[agno].agi_ok || !fc->ags[agno].inobt_ok)
			error = fsck_scan_chunks(fc, agno);
	if (error)
		return error;
	qsort(fc->inodes, fc->ninodes, sizeof(*fc->inodes), fsck_inode_cmp);
	fc->all_inodes_known = true;
	for (agno = 0; agno < fc->sb.agcount; agno++)
		if (!fsck_ag_inodes_known(&fc->ags[agno]))
			fc->all_inodes_known = false;
	/* blocks of inodes that could not be read look leaked: no verdict */
	if (fc->all_inodes_known)
		for (agno = 0; agno < fc->sb.agcount; agno++)
			fsck_check_leaks(fc, agno);
	else
		fsck_note(fc, "leaked blocks not checked: not every inode could be read");

	if (fc->opts->verbose)
		fsck_note(fc, "phase 4: directories");
	for (agno = 0; agno < fc->sb.agcount; agno++)
		if (fc->ags[agno].agi_ok)
			fsck_check_unlinked(fc, agno);
	error = fsck_check_namespace(fc);
	if (error)
		return error;
	if (fc->opts->verbose)
		fsck_note(fc, "phase 5: link counts");
	/* with inodes missing, references from them are too: no verdict */
	if (fc->all_inodes_known && fc->root_ok)
		error = fsck_check_links(fc);
	else
		fsck_note(fc, "link counts and orphans not checked: not every inode could be read");
	if (error)
		return error;

	if (fc->opts->verbose)
		fsck_note(fc, "phase 6: summary");
	if (res) {
		res->inodes = fc->ninodes;
		res->dirs = fc->dirs;
		res->files = fc->files;
		res->blocks_used = 0;
		res->blocks_free = 0;
		for (b = 0; b < fc->dblocks; b++) {
			if (fc->own[b] == OWN_FREE || fc->own[b] == OWN_AGFL)
				res->blocks_free++;
			else if (fc->own[b] != OWN_NONE)
				res->blocks_used++;
		}
	}
	return 0;
}

/* ---- entry point -------------------------------------------------------- */

/* A dirty log holds metadata newer than what is in place: replay it first. */
static int fsck_replay_log(struct fsck *fc)
{
	struct dfs_loghdr *lh = fc->blk;
	struct dfs_mount *mp;
	int error;

	error = fsck_read(fc, fc->sb.logstart, 1, lh);
	if (error || lh->hdr.magic != DFS_LOGHDR_MAGIC || lh->clean)
		return error;
	fsck_note(fc, "the log is dirty: replaying it by mounting the filesystem");
	error = dfs_mount(fc->path, NULL, &mp);
	if (error) {
		fsck_note(fc, "mount failed (%s): checking the image as it is on disk", strerror(-error));
		return 0;
	}
	error = dfs_unmount(mp);
	if (error)
		return error;
	return fsck_read_primary_sb(fc);
}

int dfs_fsck(const char *path, const struct dfs_fsck_opts *opts, struct dfs_fsck_result *res)
{
	static const struct dfs_fsck_opts defaults;
	struct dfs_fsck_result dummy;
	struct fsck fc;
	uint64_t first;
	size_t i;
	int error, pass;

	if (!opts)
		opts = &defaults;
	if (!res)
		res = &dummy;
	memset(res, 0, sizeof(*res));
	memset(&fc, 0, sizeof(fc));
	fc.path = path;
	fc.opts = opts;
	fc.mp = calloc(1, sizeof(*fc.mp));
	fc.blk = dfs_bio_alloc_buf(DFS_MAX_BLOCKSIZE);
	if (!fc.mp || !fc.blk) {
		error = -ENOMEM;
		goto out;
	}
	fc.mp->m_fsname = (char *)path;
	error = dfs_blkdev_open(path, !opts->repair, &fc.bd);
	if (error) {
		fprintf(stderr, "%s: cannot open: %s\n", path, strerror(-error));
		goto out;
	}
	error = fsck_read_primary_sb(&fc);
	if (!error && opts->repair)
		error = fsck_replay_log(&fc);
	if (error)
		goto out;
	fc.own = calloc(fc.dblocks, 1);
	fc.ags = calloc(fc.sb.agcount, sizeof(*fc.ags));
	if (!fc.own || !fc.ags) {
		error = -ENOMEM;
		goto out;
	}

	error = fsck_check(&fc, res);
	first = fc.problems;
	if (!error && opts->repair && fc.problems) {
		for (pass = 0; pass < FSCK_MAX_PASSES && fc.problems; pass++) {
			int n = fsck_repair_raw(&fc);

			/* the library only gets a filesystem whose structure is
			 * sound: it is not built to mount anything else */
			if (n == 0 && fc.nnsfix && fc.all_inodes_known && fc.root_ok)
				n = fsck_repair_namespace(&fc);
			if (n <= 0) {
				error = n == -ENOMEM || n == -EIO ? n : 0;
				break;
			}
			fc.quiet = true;
			error = fsck_check(&fc, res);
			fc.quiet = false;
			if (error)
				break;
		}
		if (!error && fc.problems) {
			fsck_note(&fc, "after repair, these problems remain:");
			error = fsck_check(&fc, res);
		}
		res->repaired = first > fc.problems ? first - fc.problems : 0;
	}
	res->problems = first;
	if (!error)
		error = fc.problems ? 1 : 0;
out:
	for (i = 0; i < fc.ninodes; i++) {
		free(fc.inodes[i].ext);
		free(fc.inodes[i].local);
	}
	free(fc.inodes);
	free(fc.clear_inos);
	free(fc.nsfix);
	free(fc.queue);
	free(fc.own);
	free(fc.ags);
	if (fc.bd)
		dfs_blkdev_close(fc.bd);
	free(fc.blk);
	free(fc.mp);
	return error;
}
