// SPDX-License-Identifier: MIT
/*
 * fsck (see fsck.c for the design). B+tree walks (every block checked and
 * claimed) and bulk builds of new trees, for all four trees.
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

/* ---- generic btree walk ------------------------------------------------- */

static int fsck_keycmp(const uint64_t a[2], const uint64_t b[2])
{
	if (a[0] != b[0])
		return a[0] < b[0] ? -1 : 1;
	if (a[1] != b[1])
		return a[1] < b[1] ? -1 : 1;
	return 0;
}

void fsck_bno_key_of_rec(const void *rec, uint64_t k[2])
{
	const struct dfs_alloc_rec *r = rec;

	k[0] = r->startblock;
	k[1] = 0;
}

void fsck_cnt_key_of_rec(const void *rec, uint64_t k[2])
{
	const struct dfs_alloc_rec *r = rec;

	k[0] = r->blockcount;
	k[1] = r->startblock;
}

void fsck_ino_key_of_rec(const void *rec, uint64_t k[2])
{
	const struct dfs_inobt_rec *r = rec;

	k[0] = r->startino;
	k[1] = 0;
}

void fsck_ino_key_of_key(const void *key, uint64_t k[2])
{
	const struct dfs_inobt_key *r = key;

	k[0] = r->startino;
	k[1] = 0;
}

void fsck_bmbt_key_of_rec(const void *rec, uint64_t k[2])
{
	const struct dfs_bmbt_rec *r = rec;

	k[0] = r->startoff;
	k[1] = 0;
}

void fsck_bmbt_key_of_key(const void *key, uint64_t k[2])
{
	const struct dfs_bmbt_key *r = key;

	k[0] = r->startoff;
	k[1] = 0;
}

uint32_t fsck_maxrecs(const struct fsck *fc, uint32_t len)
{
	return (fc->bs - (uint32_t)sizeof(struct dfs_btree_block)) / len;
}


static int fsck_bt_add_rec(struct fsck_bt *bt, const void *rec)
{
	if (bt->nrecs == bt->cap) {
		size_t cap = bt->cap ? bt->cap * 2 : 64;
		uint8_t *n = realloc(bt->recs, cap * bt->reclen);

		if (!n)
			return -ENOMEM;
		bt->recs = n;
		bt->cap = cap;
	}
	memcpy(bt->recs + bt->nrecs * bt->reclen, rec, bt->reclen);
	bt->nrecs++;
	return 0;
}

/*
 * Walks the subtree at fsbno, expected at level, and returns its first key
 * in first (for the parent's key check). A block already claimed is not
 * descended into (a cycle or a cross-link: reported by the claim).
 * Returns -ENOMEM or 0; corruption is reported and sets bt->bad.
 */
int fsck_bt_walk(struct fsck *fc, struct fsck_bt *bt, uint64_t fsbno, int level,
		 bool root, uint64_t first[2], bool *have_first)
{
	struct dfs_btree_block *block;
	uint32_t maxrecs, i;
	char what[96];
	int error = 0;

	*have_first = false;
	snprintf(what, sizeof(what), "%s block", bt->name);
	if (fsbno >= fc->dblocks ||
	    (bt->agno != UINT32_MAX && dfs_fsb_to_agno(fc->mp, fsbno) != bt->agno) ||
	    !fsck_extent_in_ag(fc, fsbno, 1)) {
		fsck_problem(fc, "%s: pointer to block %" PRIu64 " is out of range", bt->name,
			     fsbno);
		bt->bad = true;
		return 0;
	}
	if (fsck_claim(fc, fsbno, 1, bt->own, what)) {
		bt->bad = true;
		return 0;
	}
	bt->nblocks++;
	block = dfs_bio_alloc_buf(fc->bs);
	if (!block)
		return -ENOMEM;
	error = fsck_read(fc, fsbno, 1, block);
	if (error) {
		bt->bad = true;
		error = 0;
		goto out;
	}
	if (!fsck_check_hdr(fc, block, fsbno, bt->magic, bt->owner, what)) {
		bt->bad = true;
		goto out;
	}
	if (block->level != level) {
		fsck_problem(fc, "%s %" PRIu64 ": level %u, expected %d", what, fsbno, block->level,
			     level);
		bt->bad = true;
		goto out;
	}
	maxrecs = level ? fsck_maxrecs(fc, FSCK_KEYLEN + FSCK_PTRLEN) : fsck_maxrecs(fc, bt->reclen);
	if (block->numrecs > maxrecs || (block->numrecs == 0 && !(root && level == 0))) {
		fsck_problem(fc, "%s %" PRIu64 ": %u records (at most %u)", what, fsbno,
			     block->numrecs, maxrecs);
		bt->bad = true;
		goto out;
	}
	/* sibling chain, level by level, left to right */
	if (bt->prev_blk[level] == DFS_NULLFSBLOCK) {
		if (block->leftsib != DFS_NULLFSBLOCK) {
			fsck_problem(fc, "%s %" PRIu64 ": leftmost block has a left sibling %" PRIu64,
				     what, fsbno, block->leftsib);
			bt->bad = true;
		}
	} else if (block->leftsib != bt->prev_blk[level] || bt->prev_right[level] != fsbno) {
		fsck_problem(fc, "%s %" PRIu64 ": sibling links broken (left %" PRIu64
			     ", previous block %" PRIu64 " points right to %" PRIu64 ")",
			     what, fsbno, block->leftsib, bt->prev_blk[level],
			     bt->prev_right[level]);
		bt->bad = true;
	}
	bt->prev_blk[level] = fsbno;
	bt->prev_right[level] = block->rightsib;

	if (level == 0) {
		const uint8_t *rec = (const uint8_t *)(block + 1);

		for (i = 0; i < block->numrecs; i++, rec += bt->reclen) {
			uint64_t k[2];

			bt->key_of_rec(rec, k);
			if (bt->have_last && fsck_keycmp(bt->last, k) >= 0) {
				fsck_problem(fc, "%s %" PRIu64 ": record %u is out of order", what,
					     fsbno, i);
				bt->bad = true;
			}
			bt->have_last = true;
			memcpy(bt->last, k, sizeof(k));
			if (i == 0) {
				memcpy(first, k, sizeof(k));
				*have_first = true;
			}
			error = fsck_bt_add_rec(bt, rec);
			if (error)
				goto out;
		}
	} else {
		const uint8_t *keys = (const uint8_t *)(block + 1);
		const uint64_t *ptrs = (const uint64_t *)(keys + (size_t)maxrecs * FSCK_KEYLEN);
		uint64_t prevk[2] = { 0, 0 };

		for (i = 0; i < block->numrecs && !error; i++) {
			uint64_t k[2], cf[2];
			bool hf;

			bt->key_of_key(keys + (size_t)i * FSCK_KEYLEN, k);
			if (i && fsck_keycmp(prevk, k) >= 0) {
				fsck_problem(fc, "%s %" PRIu64 ": key %u is out of order", what,
					     fsbno, i);
				bt->bad = true;
			}
			memcpy(prevk, k, sizeof(k));
			if (i == 0) {
				memcpy(first, k, sizeof(k));
				*have_first = true;
			}
			error = fsck_bt_walk(fc, bt, ptrs[i], level - 1, false, cf, &hf);
			if (!error && hf && fsck_keycmp(cf, k)) {
				fsck_problem(fc, "%s %" PRIu64 ": key %u does not match the first key of child %" PRIu64,
					     what, fsbno, i, ptrs[i]);
				bt->bad = true;
			}
		}
	}
out:
	free(block);
	return error;
}

/* Walks a whole tree; checks that each level's chain ends. */
int fsck_bt_walk_tree(struct fsck *fc, struct fsck_bt *bt, uint64_t root, uint32_t nlevels)
{
	uint64_t first[2];
	bool hf;
	int error, l;

	for (l = 0; l < FSCK_MAXLEVELS; l++) {
		bt->prev_blk[l] = DFS_NULLFSBLOCK;
		bt->prev_right[l] = DFS_NULLFSBLOCK;
	}
	if (nlevels == 0 || nlevels > FSCK_MAXLEVELS) {
		fsck_problem(fc, "%s: bad height %u", bt->name, nlevels);
		bt->bad = true;
		return 0;
	}
	error = fsck_bt_walk(fc, bt, root, (int)nlevels - 1, true, first, &hf);
	if (error)
		return error;
	for (l = 0; l < (int)nlevels; l++) {
		if (bt->prev_blk[l] != DFS_NULLFSBLOCK && bt->prev_right[l] != DFS_NULLFSBLOCK) {
			fsck_problem(fc, "%s block %" PRIu64 ": rightmost block at level %d has a right sibling %" PRIu64,
				     bt->name, bt->prev_blk[l], l, bt->prev_right[l]);
			bt->bad = true;
		}
	}
	return 0;
}

uint32_t fsck_tree_blocks(struct fsck *fc, size_t nrecs, size_t reclen)
{
	uint32_t leafmax = fsck_maxrecs(fc, (uint32_t)reclen);
	uint32_t nodemax = fsck_maxrecs(fc, FSCK_KEYLEN + FSCK_PTRLEN);
	uint64_t n = nrecs ? (nrecs + leafmax - 1) / leafmax : 1, total = n;

	while (n > 1) {
		n = (n + nodemax - 1) / nodemax;
		total += n;
	}
	return (uint32_t)total;
}

/* The key of a record: its first 8 bytes (the inobt's key pads startino). */
static void fsck_rec_key(uint32_t magic, const uint8_t *rec, uint8_t key[FSCK_KEYLEN])
{
	memcpy(key, rec, FSCK_KEYLEN);
	if (magic == DFS_INOBT_MAGIC)
		memset(key + 4, 0, 4);
}

/*
 * Writes a tree of the sorted records recs into blocks taken from pool,
 * filling blocks evenly so that every block but the root is at least half
 * full, as the btree code expects.
 */
int fsck_build_tree(struct fsck *fc, uint32_t agno, uint32_t magic, const void *recs,
		    size_t reclen, size_t nrecs, const uint32_t *pool, size_t *pool_used,
		    uint64_t *rootp, uint32_t *levelsp)
{
	uint32_t leafmax = fsck_maxrecs(fc, (uint32_t)reclen);
	uint32_t nodemax = fsck_maxrecs(fc, FSCK_KEYLEN + FSCK_PTRLEN);
	uint8_t (*keys)[FSCK_KEYLEN] = NULL, (*nkeys)[FSCK_KEYLEN];
	uint64_t *ptrs = NULL, *nptrs;
	size_t n = nrecs, nb, i, j, done;
	uint32_t level = 0, max = leafmax;
	struct dfs_btree_block *block = fc->blk;
	const uint8_t *rp = recs;
	int error = 0;

	for (;;) {
		nb = n ? (n + max - 1) / max : 1;
		nkeys = calloc(nb, sizeof(*nkeys));
		nptrs = calloc(nb, sizeof(*nptrs));
		if (!nkeys || !nptrs) {
			free(nkeys);
			free(nptrs);
			error = -ENOMEM;
			break;
		}
		for (i = 0; i < nb; i++)
			nptrs[i] = dfs_agb_to_fsb(fc->mp, agno, pool[*pool_used + i]);
		for (i = 0, done = 0; i < nb && !error; i++) {
			size_t cnt = n / nb + (i < n % nb);
			uint8_t *p = (uint8_t *)(block + 1);

			memset(block, 0, fc->bs);
			block->hdr.magic = magic;
			block->hdr.blkno = nptrs[i];
			block->hdr.owner = agno;
			memcpy(block->hdr.uuid, fc->sb.hdr.uuid, sizeof(block->hdr.uuid));
			block->level = (uint16_t)level;
			block->numrecs = (uint16_t)cnt;
			block->leftsib = i ? nptrs[i - 1] : DFS_NULLFSBLOCK;
			block->rightsib = i + 1 < nb ? nptrs[i + 1] : DFS_NULLFSBLOCK;
			if (level == 0) {
				memcpy(p, rp + done * reclen, cnt * reclen);
				if (cnt)
					fsck_rec_key(magic, rp + done * reclen, nkeys[i]);
			} else {
				uint64_t *bp = (uint64_t *)(p + (size_t)nodemax * FSCK_KEYLEN);

				for (j = 0; j < cnt; j++) {
					memcpy(p + j * FSCK_KEYLEN, keys[done + j], FSCK_KEYLEN);
					bp[j] = ptrs[done + j];
				}
				memcpy(nkeys[i], keys[done], FSCK_KEYLEN);
			}
			done += cnt;
			error = fsck_write_hdrblk(fc, nptrs[i], block);
		}
		*pool_used += nb;
		free(keys);
		free(ptrs);
		keys = nkeys;
		ptrs = nptrs;
		if (error || nb == 1)
			break;
		n = nb;
		max = nodemax;
		level++;
	}
	if (!error) {
		*rootp = ptrs[0];
		*levelsp = level + 1;
	}
	free(keys);
	free(ptrs);
	return error;
}
