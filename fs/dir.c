// SPDX-License-Identifier: MIT
/*
 * Directories: shortform in the inode, then a hash-keyed B+tree of directory
 * blocks. The design and the on-disk layout are described in dir.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bmap.h"
#include "buf.h"
#include "dir.h"
#include "inode.h"
#include "mount.h"
#include "msg.h"
#include "trans.h"

#define DIR_HDR		sizeof(struct dfs_dir_blk)
#define SF_HDR		sizeof(struct dfs_dir_sf_hdr)

static inline uint32_t dfs_dir_cap(const struct dfs_mount *mp)
{
	return mp->m_blocksize - DIR_HDR;
}
static inline uint32_t dfs_dir_maxkeys(const struct dfs_mount *mp)
{
	return dfs_dir_cap(mp) / sizeof(struct dfs_dir_nent);
}
static inline struct dfs_dir_ent *dfs_dir_ent_at(struct dfs_dir_blk *b, uint32_t off)
{
	return (struct dfs_dir_ent *)((char *)(b + 1) + off);
}
static inline struct dfs_dir_nent *dfs_dir_nents(struct dfs_dir_blk *b)
{
	return (struct dfs_dir_nent *)(b + 1);
}
static inline uint64_t dfs_dir_mkkey(uint32_t hash, uint32_t seq)
{
	return (uint64_t)hash << 32 | seq;
}

/* FNV-1a with murmur3's finaliser: cheap, and every name byte reaches
 * every hash bit, so the tree stays balanced for names that share prefixes. */
uint32_t dfs_dir_hashname(const char *name, size_t len)
{
	uint32_t h = 0x811c9dc5u;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (uint8_t)name[i];
		h *= 0x01000193u;
	}
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h & 0x7fffffffu;
}

int dfs_dir_namecheck(const char *name, size_t len)
{
	if (len == 0)
		return -EINVAL;
	if (len > DFS_MAXNAMELEN)
		return -ENAMETOOLONG;
	if (memchr(name, '/', len) || memchr(name, '\0', len))
		return -EINVAL;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return -EINVAL;
	return 0;
}

uint32_t dfs_dir_space_res(const struct dfs_mount *mp)
{
	/* a split on every level and a new root, each block possibly
	 * splitting the bmbt as it is mapped */
	return 2 * (DFS_DIR_MAXLEVELS + 1) + 8;
}

/* ---- block verification -------------------------------------------------- */

/*
 * Checks what one block can say about itself. deep also recomputes the name
 * hashes (dfs_dir_check; the read verifier does it too, since a block is read
 * from disk far less often than it is looked at).
 */
static int dfs_dir_blk_check(const struct dfs_mount *mp, uint64_t blkno, struct dfs_dir_blk *b,
			     bool deep)
{
	char why[128];
	uint32_t off = 0, n = 0, i;
	uint64_t prev = 0;

	if (b->level >= DFS_DIR_MAXLEVELS) {
		snprintf(why, sizeof(why), "level %u too high", b->level);
		goto bad;
	}
	if (b->level > 0) {
		struct dfs_dir_nent *ne = dfs_dir_nents(b);

		if (b->count == 0 || b->count > dfs_dir_maxkeys(mp) || b->used) {
			snprintf(why, sizeof(why), "node with %u keys", b->count);
			goto bad;
		}
		for (i = 0; i < b->count; i++) {
			if (ne[i].child == DFS_DIR_NOBLK || (i > 1 && ne[i].key <= ne[i - 1].key)) {
				snprintf(why, sizeof(why), "node key %u out of order or no child", i);
				goto bad;
			}
		}
		return 0;
	}
	if (b->used > dfs_dir_cap(mp)) {
		snprintf(why, sizeof(why), "leaf uses %u bytes", b->used);
		goto bad;
	}
	while (off < b->used) {
		struct dfs_dir_ent *e = dfs_dir_ent_at(b, off);

		if (off + DFS_DIR_ENT_HDR > b->used || e->namelen == 0 ||
		    off + dfs_dir_ent_size(e->namelen) > b->used) {
			snprintf(why, sizeof(why), "entry at %u overruns the leaf", off);
			goto bad;
		}
		if ((n > 0 && e->key <= prev) || e->ino == DFS_NULLINO ||
		    (uint32_t)e->key > DFS_DIR_MAXSEQ) {
			snprintf(why, sizeof(why), "entry %u: bad key 0x%" PRIx64 " or inode", n, e->key);
			goto bad;
		}
		if (memchr(e->name, '/', e->namelen) || memchr(e->name, '\0', e->namelen) ||
		    (deep && dfs_dir_hashname(e->name, e->namelen) != dfs_dir_key_hash(e->key))) {
			snprintf(why, sizeof(why), "entry %u: bad name or hash", n);
			goto bad;
		}
		prev = e->key;
		off += dfs_dir_ent_size(e->namelen);
		n++;
	}
	if (n != b->count) {
		snprintf(why, sizeof(why), "leaf holds %u entries, says %u", n, b->count);
		goto bad;
	}
	return 0;
bad:
	return dfs_corrupt(mp, "directory block", blkno, why);
}

static int dfs_dir_check_buf(struct dfs_buf *bp, bool reading)
{
	return dfs_dir_blk_check(bp->b_mount, bp->b_blkno, bp->b_addr, reading);
}

const struct dfs_buf_ops dfs_dir_buf_ops = {
	.name = "directory",
	.magic = DFS_DIR_MAGIC,
	.check = dfs_dir_check_buf,
};

/* ---- directory blocks ---------------------------------------------------- */

static int dfs_dir_bmap(struct dfs_inode *dp, uint32_t fbno, uint64_t *fsbno)
{
	struct dfs_bmbt_irec map;
	int nmaps = 1, error;

	error = dfs_bmapi_read(dp, fbno, 1, &map, &nmaps);
	if (error)
		return error;
	if (nmaps < 1 || map.br_startblock >= DFS_HOLESTARTBLOCK || map.br_startoff > fbno ||
	    map.br_startoff + map.br_blockcount <= fbno || map.br_state != DFS_EXT_NORM) {
		char why[96];

		snprintf(why, sizeof(why), "directory inode %" PRIu64 ": block %u is not mapped",
			 dp->i_ino, fbno);
		return dfs_corrupt(dp->i_mount, "directory", dp->i_ino, why);
	}
	*fsbno = map.br_startblock + (fbno - map.br_startoff);
	return 0;
}

static void dfs_dir_brelse(struct dfs_trans *tp, struct dfs_buf *bp)
{
	if (tp)
		dfs_trans_brelse(tp, bp);
	else
		dfs_buf_relse(bp);
}

/* Read file block fbno of dp; level is what the parent says it must be
 * (-1: any). */
static int dfs_dir_read(struct dfs_trans *tp, struct dfs_inode *dp, uint32_t fbno, int level,
			struct dfs_buf **bpp)
{
	struct dfs_mount *mp = dp->i_mount;
	struct dfs_dir_blk *b;
	struct dfs_buf *bp;
	uint64_t fsbno = 0;
	int error;

	error = dfs_dir_bmap(dp, fbno, &fsbno);
	if (error)
		return error;
	if (tp)
		error = dfs_trans_read_buf(tp, fsbno, &dfs_dir_buf_ops, &bp);
	else
		error = dfs_buf_read(mp, fsbno, &dfs_dir_buf_ops, &bp);
	if (error)
		return error;
	b = bp->b_addr;
	if (b->hdr.owner != dp->i_ino || (level >= 0 && b->level != level)) {
		char why[96];

		snprintf(why, sizeof(why), "owner %" PRIu64 " level %u, expected %" PRIu64 " level %d",
			 b->hdr.owner, b->level, dp->i_ino, level);
		dfs_dir_brelse(tp, bp);
		return dfs_corrupt(mp, "directory block", fsbno, why);
	}
	*bpp = bp;
	return 0;
}

/* Directories have no data IO to wait for: the logged size is the size. */
static void dfs_dir_set_size(struct dfs_inode *dp, uint64_t size)
{
	dp->i_size = size;
	dp->i_disk_size = size;
}

/* i_size of a block directory: up to its last mapped block. */
static void dfs_dir_update_size(struct dfs_inode *dp)
{
	const struct dfs_ifork *ifp = &dp->i_df;
	uint64_t end = 0;

	if (ifp->if_nextents) {
		const struct dfs_bmbt_irec *last = &ifp->if_ext[ifp->if_nextents - 1];

		end = last->br_startoff + last->br_blockcount;
	}
	dfs_dir_set_size(dp, end << dp->i_mount->m_blocklog);
}

/* Map a new block at the first hole of the directory's file offsets. */
static int dfs_dir_alloc_blk(struct dfs_trans *tp, struct dfs_inode *dp, uint32_t *fbnop,
			     struct dfs_buf **bpp)
{
	const struct dfs_ifork *ifp = &dp->i_df;
	struct dfs_bmbt_irec map;
	struct dfs_dir_blk *b;
	struct dfs_buf *bp;
	uint64_t fbno = 0, fsbno;
	uint32_t i;
	int nmaps = 1, error;

	for (i = 0; i < ifp->if_nextents; i++) {
		const struct dfs_bmbt_irec *e = &ifp->if_ext[i];

		if (e->br_startoff > fbno)
			break;
		if (e->br_startoff + e->br_blockcount > fbno)
			fbno = e->br_startoff + e->br_blockcount;
	}
	if (fbno >= DFS_DIR_NOBLK)
		return -ENOSPC;
	error = dfs_bmapi_write(tp, dp, fbno, 1, 0, &map, &nmaps);
	if (error)
		return error;
	if (nmaps < 1 || map.br_startblock >= DFS_HOLESTARTBLOCK || map.br_startoff > fbno ||
	    map.br_startoff + map.br_blockcount <= fbno)
		return -ENOSPC;
	fsbno = map.br_startblock + (fbno - map.br_startoff);
	error = dfs_trans_get_buf(tp, fsbno, &dfs_dir_buf_ops, &bp);
	if (error)
		return error;
	memset(bp->b_addr, 0, bp->b_len);
	dfs_blkhdr_init(bp, DFS_DIR_MAGIC, dp->i_ino);
	b = bp->b_addr;
	b->leftsib = DFS_DIR_NOBLK;
	b->rightsib = DFS_DIR_NOBLK;
	dfs_dir_update_size(dp);
	*fbnop = (uint32_t)fbno;
	*bpp = bp;
	return 0;
}

static int dfs_dir_free_blk(struct dfs_trans *tp, struct dfs_inode *dp, uint32_t fbno,
			    struct dfs_buf *bp)
{
	int done = 0, tries, error = 0;

	dfs_trans_binval(tp, bp);
	for (tries = 0; !done && tries < 4; tries++) {
		error = dfs_bunmapi(tp, dp, fbno, 1, &done);
		if (error)
			return error;
	}
	if (!done)
		return dfs_corrupt(dp->i_mount, "directory", dp->i_ino, "block would not unmap");
	dfs_dir_update_size(dp);
	return 0;
}

/* ---- shortform ----------------------------------------------------------- */

static inline bool dfs_dir_is_sf(const struct dfs_inode *dp)
{
	return dp->i_df.if_format == DFS_DINODE_FMT_LOCAL;
}

static int dfs_dir_sf_corrupt(struct dfs_inode *dp, const char *why)
{
	return dfs_corrupt(dp->i_mount, "shortform directory inode", dp->i_ino, why);
}

/* Structure of the inline data: header, entries in bounds and in key order. */
static int dfs_dir_sf_verify(struct dfs_inode *dp, bool deep)
{
	const char *buf = dp->i_df.if_local;
	uint32_t len = dp->i_df.if_local_len, off = SF_HDR, n = 0;
	const struct dfs_dir_sf_hdr *sfh = (const void *)buf;
	uint64_t prev = 0;

	if (!buf || len < SF_HDR || len > DFS_DFORK_SIZE)
		return dfs_dir_sf_corrupt(dp, "bad inline length");
	while (off < len) {
		const struct dfs_dir_ent *e = (const void *)(buf + off);

		if (off + DFS_DIR_ENT_HDR > len || e->namelen == 0 ||
		    off + dfs_dir_ent_size(e->namelen) > len)
			return dfs_dir_sf_corrupt(dp, "entry overruns the fork");
		if ((n && e->key <= prev) || e->ino == DFS_NULLINO ||
		    (uint32_t)e->key > DFS_DIR_MAXSEQ)
			return dfs_dir_sf_corrupt(dp, "entry key out of order, or no inode");
		if (memchr(e->name, '/', e->namelen) || memchr(e->name, '\0', e->namelen) ||
		    (deep && dfs_dir_hashname(e->name, e->namelen) != dfs_dir_key_hash(e->key)))
			return dfs_dir_sf_corrupt(dp, "bad name or hash");
		prev = e->key;
		off += dfs_dir_ent_size(e->namelen);
		n++;
	}
	if (n != sfh->count || sfh->parent == DFS_NULLINO)
		return dfs_dir_sf_corrupt(dp, "entry count or parent wrong");
	return 0;
}

struct dfs_dir_match {
	bool found;
	uint64_t key;		/* of the entry found */
	uint64_t ino;
	uint8_t ftype;
	int64_t maxseq;		/* largest seq in use for the hash, -1 if none */
	uint32_t off;		/* where it is in its block / the fork */
};

static int dfs_dir_sf_find(struct dfs_inode *dp, const char *name, size_t len, uint32_t hash,
			   struct dfs_dir_match *m)
{
	char *buf = dp->i_df.if_local;
	uint32_t off = SF_HDR;
	int error;

	error = dfs_dir_sf_verify(dp, false);
	if (error)
		return error;
	while (off < dp->i_df.if_local_len) {
		struct dfs_dir_ent *e = (void *)(buf + off);

		if (dfs_dir_key_hash(e->key) == hash) {
			if ((int64_t)(uint32_t)e->key > m->maxseq)
				m->maxseq = (uint32_t)e->key;
			if (e->namelen == len && !memcmp(e->name, name, len)) {
				m->found = true;
				m->key = e->key;
				m->ino = e->ino;
				m->ftype = e->ftype;
				m->off = off;
			}
		}
		off += dfs_dir_ent_size(e->namelen);
	}
	return 0;
}

static void dfs_dir_fill_ent(struct dfs_dir_ent *e, const char *name, size_t len, uint64_t key,
			     uint64_t ino, uint8_t ftype)
{
	uint32_t size = dfs_dir_ent_size((uint32_t)len);

	memset(e, 0, size);
	e->ino = ino;
	e->key = key;
	e->ftype = ftype;
	e->namelen = (uint8_t)len;
	memcpy(e->name, name, len);
}

static int dfs_dir_sf_set(struct dfs_inode *dp, char *buf, uint32_t len)
{
	free(dp->i_df.if_local);
	dp->i_df.if_local = buf;
	dp->i_df.if_local_len = len;
	dfs_dir_set_size(dp, len);
	return 0;
}

/* Insert into the inline data; -EFBIG if it does not fit there. */
static int dfs_dir_sf_insert(struct dfs_trans *tp, struct dfs_inode *dp, const char *name,
			     size_t len, uint64_t key, uint64_t ino, uint8_t ftype)
{
	uint32_t oldlen = dp->i_df.if_local_len, size = dfs_dir_ent_size((uint32_t)len);
	uint32_t off = SF_HDR;
	char *buf;

	if (oldlen + size > DFS_DFORK_SIZE)
		return -EFBIG;
	while (off < oldlen) {
		struct dfs_dir_ent *e = (void *)(dp->i_df.if_local + off);

		if (e->key > key)
			break;
		off += dfs_dir_ent_size(e->namelen);
	}
	buf = malloc(oldlen + size);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, dp->i_df.if_local, off);
	dfs_dir_fill_ent((void *)(buf + off), name, len, key, ino, ftype);
	memcpy(buf + off + size, dp->i_df.if_local + off, oldlen - off);
	((struct dfs_dir_sf_hdr *)buf)->count++;
	dfs_dir_sf_set(dp, buf, oldlen + size);
	return dfs_trans_log_inode(tp, dp);
}

int dfs_dir_init(struct dfs_trans *tp, struct dfs_inode *dp, uint64_t parent_ino)
{
	struct dfs_dir_sf_hdr *sfh;

	assert(dp->i_df.if_nextents == 0 && dp->i_df.if_format != DFS_DINODE_FMT_BTREE);
	sfh = calloc(1, SF_HDR);
	if (!sfh)
		return -ENOMEM;
	sfh->parent = parent_ino;
	dp->i_df.if_format = DFS_DINODE_FMT_LOCAL;
	dfs_dir_sf_set(dp, (char *)sfh, SF_HDR);
	return dfs_trans_log_inode(tp, dp);
}

/* The entries outgrew the inode: they move into a root leaf, file block 0. */
static int dfs_dir_sf_to_tree(struct dfs_trans *tp, struct dfs_inode *dp)
{
	char *sf = dp->i_df.if_local;
	uint32_t sflen = dp->i_df.if_local_len;
	struct dfs_dir_sf_hdr *sfh = (void *)sf;
	struct dfs_dir_blk *root;
	struct dfs_buf *bp;
	uint32_t fbno;
	int error;

	dp->i_df.if_local = NULL;
	dp->i_df.if_local_len = 0;
	dp->i_df.if_format = DFS_DINODE_FMT_EXTENTS;
	dfs_dir_set_size(dp, 0);
	error = dfs_dir_alloc_blk(tp, dp, &fbno, &bp);
	if (error) {
		dp->i_df.if_format = DFS_DINODE_FMT_LOCAL;
		dfs_dir_sf_set(dp, sf, sflen);
		return error;
	}
	assert(fbno == 0);
	root = bp->b_addr;
	root->parent = sfh->parent;
	root->nentries = sfh->count;
	root->count = sfh->count;
	root->used = sflen - SF_HDR;
	memcpy(root + 1, sf + SF_HDR, root->used);
	free(sf);
	dfs_trans_log_buf(tp, bp);
	return dfs_trans_log_inode(tp, dp);
}

/* ---- tree lookups -------------------------------------------------------- */

struct dfs_dir_path {
	int n;
	struct {
		struct dfs_buf *bp;
		uint32_t fbno;
		uint32_t idx;	/* node: child index; leaf: byte offset */
	} lv[DFS_DIR_MAXLEVELS + 1];
};

/* Child index to follow for key: the last whose key is <= key (or 0). */
static uint32_t dfs_dir_node_search(struct dfs_dir_blk *b, uint64_t key)
{
	struct dfs_dir_nent *ne = dfs_dir_nents(b);
	uint32_t lo = 1, hi = b->count;	/* answer in [lo-1, hi-1] */

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (ne[mid].key <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - 1;
}

/* Byte offset of the first entry of leaf b with a key >= key. */
static uint32_t dfs_dir_leaf_search(struct dfs_dir_blk *b, uint64_t key)
{
	uint32_t off = 0;

	while (off < b->used) {
		struct dfs_dir_ent *e = dfs_dir_ent_at(b, off);

		if (e->key >= key)
			break;
		off += dfs_dir_ent_size(e->namelen);
	}
	return off;
}

/* Root to leaf for key, keeping every block on the way (for changes). */
static int dfs_dir_descend(struct dfs_trans *tp, struct dfs_inode *dp, uint64_t key,
			   struct dfs_dir_path *path)
{
	struct dfs_buf *bp;
	struct dfs_dir_blk *b;
	uint32_t fbno = 0;
	int level = -1, error;

	path->n = 0;
	for (;;) {
		error = dfs_dir_read(tp, dp, fbno, level, &bp);
		if (error)
			return error;
		b = bp->b_addr;
		path->lv[path->n].bp = bp;
		path->lv[path->n].fbno = fbno;
		if (b->level == 0) {
			path->lv[path->n++].idx = dfs_dir_leaf_search(b, key);
			return 0;
		}
		path->lv[path->n].idx = dfs_dir_node_search(b, key);
		fbno = dfs_dir_nents(b)[path->lv[path->n].idx].child;
		level = b->level - 1;
		path->n++;
	}
}

/* Root to leaf for key, releasing nodes on the way (lookups, readdir). */
static int dfs_dir_walk_to_leaf(struct dfs_trans *tp, struct dfs_inode *dp, uint64_t key,
				struct dfs_buf **bpp)
{
	struct dfs_buf *bp;
	struct dfs_dir_blk *b;
	uint32_t fbno = 0;
	int level = -1, error;

	for (;;) {
		error = dfs_dir_read(tp, dp, fbno, level, &bp);
		if (error)
			return error;
		b = bp->b_addr;
		if (b->level == 0) {
			*bpp = bp;
			return 0;
		}
		fbno = dfs_dir_nents(b)[dfs_dir_node_search(b, key)].child;
		level = b->level - 1;
		dfs_dir_brelse(tp, bp);
	}
}

/*
 * Follow the right sibling of the leaf in *bpp (released). Keys must keep
 * increasing along the chain, which also keeps a corrupt chain from
 * looping.
 */
static int dfs_dir_read_right(struct dfs_trans *tp, struct dfs_inode *dp, struct dfs_buf **bpp)
{
	struct dfs_dir_blk *b = (*bpp)->b_addr, *nb;
	uint32_t next = b->rightsib, off = 0;
	uint64_t lastkey = 0;
	struct dfs_buf *nbp;
	int error;

	while (off < b->used) {
		lastkey = dfs_dir_ent_at(b, off)->key;
		off += dfs_dir_ent_size(dfs_dir_ent_at(b, off)->namelen);
	}
	dfs_dir_brelse(tp, *bpp);
	*bpp = NULL;
	error = dfs_dir_read(tp, dp, next, 0, &nbp);
	if (error)
		return error;
	nb = nbp->b_addr;
	if (nb->count == 0 || (off && dfs_dir_ent_at(nb, 0)->key <= lastkey)) {
		dfs_dir_brelse(tp, nbp);
		return dfs_corrupt(dp->i_mount, "directory", dp->i_ino,
				   "leaf sibling chain out of key order");
	}
	*bpp = nbp;
	return 0;
}

/*
 * Find name among the entries with its hash, which may continue over the
 * following leaves. With keep, the leaf holding the entry found stays held
 * in *bpp; otherwise everything is released.
 */
static int dfs_dir_tree_find(struct dfs_trans *tp, struct dfs_inode *dp, const char *name,
			     size_t len, uint32_t hash, struct dfs_dir_match *m, bool keep,
			     struct dfs_buf **bpp)
{
	const uint64_t first = dfs_dir_mkkey(hash, 0);
	struct dfs_buf *bp;
	struct dfs_dir_blk *b;
	uint32_t off;
	int error;

	error = dfs_dir_walk_to_leaf(tp, dp, first, &bp);
	if (error)
		return error;
	b = bp->b_addr;
	off = dfs_dir_leaf_search(b, first);
	for (;;) {
		for (; off < b->used; off += dfs_dir_ent_size(dfs_dir_ent_at(b, off)->namelen)) {
			struct dfs_dir_ent *e = dfs_dir_ent_at(b, off);

			if (dfs_dir_key_hash(e->key) != hash)
				goto out;
			if ((int64_t)(uint32_t)e->key > m->maxseq)
				m->maxseq = (uint32_t)e->key;
			if (!m->found && e->namelen == len && !memcmp(e->name, name, len)) {
				m->found = true;
				m->key = e->key;
				m->ino = e->ino;
				m->ftype = e->ftype;
				m->off = off;
				if (keep) {
					*bpp = bp;
					return 0;
				}
			}
		}
		if (b->rightsib == DFS_DIR_NOBLK)
			break;
		error = dfs_dir_read_right(tp, dp, &bp);
		if (error)
			return error;
		b = bp->b_addr;
		off = 0;
	}
out:
	dfs_dir_brelse(tp, bp);
	return 0;
}

static int dfs_dir_find(struct dfs_trans *tp, struct dfs_inode *dp, const char *name, size_t len,
			struct dfs_dir_match *m)
{
	uint32_t hash = dfs_dir_hashname(name, len);

	memset(m, 0, sizeof(*m));
	m->maxseq = -1;
	if (dfs_dir_is_sf(dp))
		return dfs_dir_sf_find(dp, name, len, hash, m);
	return dfs_dir_tree_find(tp, dp, name, len, hash, m, false, NULL);
}

static int dfs_dir_get_parent(struct dfs_trans *tp, struct dfs_inode *dp, uint64_t *inop)
{
	struct dfs_buf *bp;
	int error;

	if (dfs_dir_is_sf(dp)) {
		error = dfs_dir_sf_verify(dp, false);
		if (!error)
			*inop = ((struct dfs_dir_sf_hdr *)dp->i_df.if_local)->parent;
		return error;
	}
	error = dfs_dir_read(tp, dp, 0, -1, &bp);
	if (error)
		return error;
	*inop = ((struct dfs_dir_blk *)bp->b_addr)->parent;
	dfs_dir_brelse(tp, bp);
	return 0;
}

int dfs_dir_lookup(struct dfs_trans *tp, struct dfs_inode *dp, const char *name, size_t len,
		   uint64_t *inop)
{
	struct dfs_dir_match m;
	int error;

	if (!dfs_isdir(dp))
		return -ENOTDIR;
	if (len == 1 && name[0] == '.') {
		*inop = dp->i_ino;
		return 0;
	}
	if (len == 2 && name[0] == '.' && name[1] == '.')
		return dfs_dir_get_parent(tp, dp, inop);
	if (len > DFS_MAXNAMELEN)
		return -ENAMETOOLONG;
	if (len == 0)
		return -ENOENT;
	error = dfs_dir_find(tp, dp, name, len, &m);
	if (error)
		return error;
	if (!m.found)
		return -ENOENT;
	*inop = m.ino;
	return 0;
}

/* ---- tree insert --------------------------------------------------------- */

/* The root's contents move to a new block, and the root becomes a node one
 * level higher with that block as its only child (xfs_da3_root_split). */
static int dfs_dir_root_grow(struct dfs_trans *tp, struct dfs_inode *dp, struct dfs_dir_path *path)
{
	struct dfs_mount *mp = dp->i_mount;
	struct dfs_buf *rbp = path->lv[0].bp, *cbp;
	struct dfs_dir_blk *root = rbp->b_addr, *c;
	uint32_t cfb;
	int error;

	if (root->level + 1 >= DFS_DIR_MAXLEVELS)
		return -ENOSPC;
	error = dfs_dir_alloc_blk(tp, dp, &cfb, &cbp);
	if (error)
		return error;
	c = cbp->b_addr;
	c->level = root->level;
	c->count = root->count;
	c->used = root->used;
	memcpy(c + 1, root + 1, dfs_dir_cap(mp));

	root->level++;
	root->count = 1;
	root->used = 0;
	memset(root + 1, 0, dfs_dir_cap(mp));
	dfs_dir_nents(root)[0].key = 0;
	dfs_dir_nents(root)[0].child = cfb;

	memmove(&path->lv[1], &path->lv[0], path->n * sizeof(path->lv[0]));
	path->lv[1].bp = cbp;
	path->lv[1].fbno = cfb;
	path->lv[0].idx = 0;
	path->n++;
	dfs_trans_log_buf(tp, cbp);
	dfs_trans_log_buf(tp, rbp);
	return 0;
}

/* Insert (key, child) after index path->lv[l].idx of node l, splitting
 * nodes up the path as needed. */
static int dfs_dir_node_insert(struct dfs_trans *tp, struct dfs_inode *dp,
			       struct dfs_dir_path *path, int l, uint64_t key, uint32_t child)
{
	struct dfs_mount *mp = dp->i_mount;
	const uint32_t maxkeys = dfs_dir_maxkeys(mp);
	struct dfs_dir_nent *tmp = NULL;
	int error = 0;

	for (;;) {
		struct dfs_dir_blk *b = path->lv[l].bp->b_addr, *nb;
		struct dfs_dir_nent *ne = dfs_dir_nents(b);
		uint32_t pos = path->lv[l].idx + 1, total, half, nfb;
		struct dfs_buf *nbp;

		if (b->count < maxkeys) {
			memmove(&ne[pos + 1], &ne[pos], (b->count - pos) * sizeof(*ne));
			ne[pos].key = key;
			ne[pos].child = child;
			ne[pos].pad = 0;
			b->count++;
			dfs_trans_log_buf(tp, path->lv[l].bp);
			break;
		}
		if (l == 0) {
			error = dfs_dir_root_grow(tp, dp, path);
			if (error)
				break;
			l = 1;
			continue;
		}
		if (!tmp) {
			tmp = malloc((maxkeys + 1) * sizeof(*tmp));
			if (!tmp)
				return -ENOMEM;
		}
		total = b->count + 1;
		memcpy(tmp, ne, pos * sizeof(*ne));
		tmp[pos].key = key;
		tmp[pos].child = child;
		tmp[pos].pad = 0;
		memcpy(&tmp[pos + 1], &ne[pos], (b->count - pos) * sizeof(*ne));
		error = dfs_dir_alloc_blk(tp, dp, &nfb, &nbp);
		if (error)
			break;
		half = total / 2;
		nb = nbp->b_addr;
		nb->level = b->level;
		nb->count = (uint16_t)(total - half);
		memcpy(dfs_dir_nents(nb), &tmp[half], nb->count * sizeof(*ne));
		b->count = (uint16_t)half;
		memset(ne, 0, dfs_dir_cap(mp));
		memcpy(ne, tmp, half * sizeof(*ne));
		dfs_trans_log_buf(tp, nbp);
		dfs_trans_log_buf(tp, path->lv[l].bp);
		key = tmp[half].key;
		child = nfb;
		l--;
	}
	free(tmp);
	return error;
}

/* The leaf at the end of path is full: split it in two by bytes with the new
 * entry e placed in key order, and hang the right half into the parent. */
static int dfs_dir_leaf_split(struct dfs_trans *tp, struct dfs_inode *dp,
			      struct dfs_dir_path *path, const struct dfs_dir_ent *e)
{
	struct dfs_mount *mp = dp->i_mount;
	const uint32_t cap = dfs_dir_cap(mp), esize = dfs_dir_ent_size(e->namelen);
	struct dfs_buf *lbp, *rbp, *sbp;
	struct dfs_dir_blk *l, *r;
	uint32_t *offs, pos, total, n, i, k, best = 0, rfb, lfb, off;
	char *tmp;
	int error;

	if (path->n == 1) {
		error = dfs_dir_root_grow(tp, dp, path);
		if (error)
			return error;
	}
	lbp = path->lv[path->n - 1].bp;
	lfb = path->lv[path->n - 1].fbno;
	l = lbp->b_addr;
	pos = path->lv[path->n - 1].idx;
	total = l->used + esize;
	n = l->count + 1u;
	tmp = malloc(total);
	offs = malloc((n + 1) * sizeof(*offs));
	if (!tmp || !offs) {
		error = -ENOMEM;
		goto out;
	}
	memcpy(tmp, l + 1, pos);
	memcpy(tmp + pos, e, esize);
	memcpy(tmp + pos + esize, (char *)(l + 1) + pos, l->used - pos);
	for (i = 0, off = 0; i < n; i++) {
		offs[i] = off;
		off += dfs_dir_ent_size(((struct dfs_dir_ent *)(tmp + off))->namelen);
	}
	offs[n] = total;
	/* the most even split that fits both halves */
	for (k = 1; k < n; k++) {
		if (offs[k] > cap || total - offs[k] > cap)
			continue;
		if (!best || (offs[k] > total / 2 ? offs[k] - total / 2 : total / 2 - offs[k]) <
			     (offs[best] > total / 2 ? offs[best] - total / 2 : total / 2 - offs[best]))
			best = k;
	}
	if (!best) {
		error = dfs_corrupt(mp, "directory", dp->i_ino, "leaf cannot be split");
		goto out;
	}
	error = dfs_dir_alloc_blk(tp, dp, &rfb, &rbp);
	if (error)
		goto out;
	r = rbp->b_addr;
	r->count = (uint16_t)(n - best);
	r->used = total - offs[best];
	memcpy(r + 1, tmp + offs[best], r->used);
	r->leftsib = lfb;
	r->rightsib = l->rightsib;
	if (l->rightsib != DFS_DIR_NOBLK) {
		error = dfs_dir_read(tp, dp, l->rightsib, 0, &sbp);
		if (error)
			goto out;
		((struct dfs_dir_blk *)sbp->b_addr)->leftsib = rfb;
		dfs_trans_log_buf(tp, sbp);
	}
	l->rightsib = rfb;
	l->count = (uint16_t)best;
	l->used = offs[best];
	memset(l + 1, 0, cap);
	memcpy(l + 1, tmp, offs[best]);
	dfs_trans_log_buf(tp, rbp);
	dfs_trans_log_buf(tp, lbp);
	error = dfs_dir_node_insert(tp, dp, path, path->n - 2,
				    ((struct dfs_dir_ent *)(tmp + offs[best]))->key, rfb);
out:
	free(offs);
	free(tmp);
	return error;
}

static int dfs_dir_tree_insert(struct dfs_trans *tp, struct dfs_inode *dp, const char *name,
			       size_t len, uint64_t key, uint64_t ino, uint8_t ftype)
{
	const uint32_t esize = dfs_dir_ent_size((uint32_t)len);
	struct dfs_dir_path path;
	struct dfs_dir_blk *leaf, *root;
	union {
		struct dfs_dir_ent e;
		char b[DFS_DIR_ENT_HDR + DFS_MAXNAMELEN + 8];
	} ent;
	uint32_t pos;
	int error;

	error = dfs_dir_descend(tp, dp, key, &path);
	if (error)
		return error;
	dfs_dir_fill_ent(&ent.e, name, len, key, ino, ftype);
	leaf = path.lv[path.n - 1].bp->b_addr;
	pos = path.lv[path.n - 1].idx;
	if (leaf->used + esize <= dfs_dir_cap(dp->i_mount)) {
		char *base = (char *)(leaf + 1);

		memmove(base + pos + esize, base + pos, leaf->used - pos);
		memcpy(base + pos, &ent.e, esize);
		leaf->used += esize;
		leaf->count++;
		dfs_trans_log_buf(tp, path.lv[path.n - 1].bp);
	} else {
		error = dfs_dir_leaf_split(tp, dp, &path, &ent.e);
		if (error)
			return error;
	}
	root = path.lv[0].bp->b_addr;
	root->nentries++;
	dfs_trans_log_buf(tp, path.lv[0].bp);
	return dfs_trans_log_inode(tp, dp);
}

int dfs_dir_createname(struct dfs_trans *tp, struct dfs_inode *dp, const char *name,
		       size_t len, uint64_t ino, uint8_t ftype)
{
	struct dfs_dir_match m;
	uint64_t key;
	int error;

	error = dfs_dir_namecheck(name, len);
	if (error)
		return error;
	error = dfs_dir_find(tp, dp, name, len, &m);
	if (error)
		return error;
	if (m.found)
		return -EEXIST;
	if (m.maxseq >= DFS_DIR_MAXSEQ)
		return -ENOSPC;
	key = dfs_dir_mkkey(dfs_dir_hashname(name, len), (uint32_t)(m.maxseq + 1));
	if (dfs_dir_is_sf(dp)) {
		error = dfs_dir_sf_insert(tp, dp, name, len, key, ino, ftype);
		if (error != -EFBIG)
			return error;
		error = dfs_dir_sf_to_tree(tp, dp);
		if (error)
			return error;
	}
	return dfs_dir_tree_insert(tp, dp, name, len, key, ino, ftype);
}

/* ---- tree remove --------------------------------------------------------- */

static struct dfs_buf *dfs_dir_path_buf(struct dfs_dir_path *path, uint32_t fbno)
{
	int i;

	for (i = 0; i < path->n; i++)
		if (path->lv[i].fbno == fbno)
			return path->lv[i].bp;
	return NULL;
}

/* Take a freed leaf out of the sibling chain. */
static int dfs_dir_leaf_unlink(struct dfs_trans *tp, struct dfs_inode *dp, struct dfs_dir_blk *b)
{
	struct dfs_buf *sbp;
	int error;

	if (b->leftsib != DFS_DIR_NOBLK) {
		error = dfs_dir_read(tp, dp, b->leftsib, 0, &sbp);
		if (error)
			return error;
		((struct dfs_dir_blk *)sbp->b_addr)->rightsib = b->rightsib;
		dfs_trans_log_buf(tp, sbp);
	}
	if (b->rightsib != DFS_DIR_NOBLK) {
		error = dfs_dir_read(tp, dp, b->rightsib, 0, &sbp);
		if (error)
			return error;
		((struct dfs_dir_blk *)sbp->b_addr)->leftsib = b->leftsib;
		dfs_trans_log_buf(tp, sbp);
	}
	return 0;
}

/* A root node with one child takes the child's place (xfs_da3_root_join). */
static int dfs_dir_root_join(struct dfs_trans *tp, struct dfs_inode *dp, struct dfs_dir_path *path)
{
	struct dfs_mount *mp = dp->i_mount;
	struct dfs_buf *rbp = path->lv[0].bp, *cbp;
	struct dfs_dir_blk *root = rbp->b_addr, *c;
	uint32_t cfb;
	int error;

	while (root->level > 0 && root->count == 1) {
		cfb = dfs_dir_nents(root)[0].child;
		cbp = dfs_dir_path_buf(path, cfb);
		if (!cbp) {
			error = dfs_dir_read(tp, dp, cfb, root->level - 1, &cbp);
			if (error)
				return error;
		}
		c = cbp->b_addr;
		root->level = c->level;
		root->count = c->count;
		root->used = c->used;
		root->leftsib = DFS_DIR_NOBLK;
		root->rightsib = DFS_DIR_NOBLK;
		memcpy(root + 1, c + 1, dfs_dir_cap(mp));
		dfs_trans_log_buf(tp, rbp);
		error = dfs_dir_free_blk(tp, dp, cfb, cbp);
		if (error)
			return error;
	}
	return 0;
}

/* The last entry went: free the root block and go back inline. */
static int dfs_dir_tree_to_sf(struct dfs_trans *tp, struct dfs_inode *dp, struct dfs_buf *rbp)
{
	struct dfs_dir_blk *root = rbp->b_addr;
	struct dfs_dir_sf_hdr *sfh;
	int error;

	sfh = calloc(1, SF_HDR);
	if (!sfh)
		return -ENOMEM;
	sfh->parent = root->parent;
	error = dfs_dir_free_blk(tp, dp, 0, rbp);
	if (error) {
		free(sfh);
		return error;
	}
	if (dp->i_df.if_nextents) {
		free(sfh);
		return dfs_corrupt(dp->i_mount, "directory", dp->i_ino,
				   "blocks left after the last entry went");
	}
	dp->i_df.if_format = DFS_DINODE_FMT_LOCAL;
	dfs_dir_sf_set(dp, (char *)sfh, SF_HDR);
	return 0;
}

static int dfs_dir_tree_remove(struct dfs_trans *tp, struct dfs_inode *dp, uint64_t key)
{
	struct dfs_dir_path path;
	struct dfs_dir_blk *leaf, *root;
	struct dfs_dir_ent *e;
	uint32_t pos, esize;
	int l, error;

	error = dfs_dir_descend(tp, dp, key, &path);
	if (error)
		return error;
	leaf = path.lv[path.n - 1].bp->b_addr;
	pos = path.lv[path.n - 1].idx;
	e = dfs_dir_ent_at(leaf, pos);
	if (pos >= leaf->used || e->key != key)
		return dfs_corrupt(dp->i_mount, "directory", dp->i_ino,
				   "entry found by name is not where its key leads");
	esize = dfs_dir_ent_size(e->namelen);
	memmove(e, (char *)e + esize, leaf->used - pos - esize);
	memset((char *)(leaf + 1) + leaf->used - esize, 0, esize);
	leaf->used -= esize;
	leaf->count--;
	dfs_trans_log_buf(tp, path.lv[path.n - 1].bp);
	root = path.lv[0].bp->b_addr;
	root->nentries--;
	dfs_trans_log_buf(tp, path.lv[0].bp);

	/* free emptied blocks bottom up */
	for (l = path.n - 1; l > 0; l--) {
		struct dfs_dir_blk *b = path.lv[l].bp->b_addr, *parent;
		struct dfs_dir_nent *ne;
		uint32_t idx;

		if (b->count)
			break;
		if (b->level == 0) {
			error = dfs_dir_leaf_unlink(tp, dp, b);
			if (error)
				return error;
		}
		error = dfs_dir_free_blk(tp, dp, path.lv[l].fbno, path.lv[l].bp);
		if (error)
			return error;
		path.lv[l].fbno = DFS_DIR_NOBLK;
		parent = path.lv[l - 1].bp->b_addr;
		ne = dfs_dir_nents(parent);
		idx = path.lv[l - 1].idx;
		memmove(&ne[idx], &ne[idx + 1], (parent->count - idx - 1) * sizeof(*ne));
		parent->count--;
		memset(&ne[parent->count], 0, sizeof(*ne));
		if (parent->count == 0 && l - 1 == 0) {
			/* the root lost its last child: an empty leaf again */
			parent->level = 0;
			parent->leftsib = parent->rightsib = DFS_DIR_NOBLK;
		}
		dfs_trans_log_buf(tp, path.lv[l - 1].bp);
	}
	error = dfs_dir_root_join(tp, dp, &path);
	if (error)
		return error;
	if (root->nentries == 0) {
		error = dfs_dir_tree_to_sf(tp, dp, path.lv[0].bp);
		if (error)
			return error;
	}
	return dfs_trans_log_inode(tp, dp);
}

int dfs_dir_removename(struct dfs_trans *tp, struct dfs_inode *dp, const char *name,
		       size_t len)
{
	struct dfs_dir_match m;
	int error;

	if (len > DFS_MAXNAMELEN)
		return -ENAMETOOLONG;
	error = dfs_dir_find(tp, dp, name, len, &m);
	if (error)
		return error;
	if (!m.found)
		return -ENOENT;
	if (dfs_dir_is_sf(dp)) {
		uint32_t oldlen = dp->i_df.if_local_len;
		uint32_t esize = dfs_dir_ent_size((uint32_t)len);
		char *buf = malloc(oldlen - esize);

		if (!buf)
			return -ENOMEM;
		memcpy(buf, dp->i_df.if_local, m.off);
		memcpy(buf + m.off, dp->i_df.if_local + m.off + esize, oldlen - m.off - esize);
		((struct dfs_dir_sf_hdr *)buf)->count--;
		dfs_dir_sf_set(dp, buf, oldlen - esize);
		return dfs_trans_log_inode(tp, dp);
	}
	return dfs_dir_tree_remove(tp, dp, m.key);
}

int dfs_dir_replace(struct dfs_trans *tp, struct dfs_inode *dp, const char *name, size_t len,
		    uint64_t ino, uint8_t ftype)
{
	struct dfs_dir_match m;
	struct dfs_buf *bp = NULL;
	struct dfs_dir_ent *e;
	int error;

	if (len == 2 && name[0] == '.' && name[1] == '.') {
		if (dfs_dir_is_sf(dp)) {
			((struct dfs_dir_sf_hdr *)dp->i_df.if_local)->parent = ino;
			return dfs_trans_log_inode(tp, dp);
		}
		error = dfs_dir_read(tp, dp, 0, -1, &bp);
		if (error)
			return error;
		((struct dfs_dir_blk *)bp->b_addr)->parent = ino;
		dfs_trans_log_buf(tp, bp);
		return 0;
	}
	if (len > DFS_MAXNAMELEN)
		return -ENAMETOOLONG;
	if (dfs_dir_is_sf(dp)) {
		error = dfs_dir_find(tp, dp, name, len, &m);
		if (error)
			return error;
		if (!m.found)
			return -ENOENT;
		e = (void *)(dp->i_df.if_local + m.off);
		e->ino = ino;
		e->ftype = ftype;
		return dfs_trans_log_inode(tp, dp);
	}
	memset(&m, 0, sizeof(m));
	m.maxseq = -1;
	error = dfs_dir_tree_find(tp, dp, name, len, dfs_dir_hashname(name, len), &m, true, &bp);
	if (error)
		return error;
	if (!m.found)
		return -ENOENT;
	e = dfs_dir_ent_at(bp->b_addr, m.off);
	e->ino = ino;
	e->ftype = ftype;
	dfs_trans_log_buf(tp, bp);
	return 0;
}

/* ---- whole-directory queries --------------------------------------------- */

int dfs_dir_count(struct dfs_inode *dp, uint64_t *countp)
{
	struct dfs_buf *bp;
	int error;

	if (dfs_dir_is_sf(dp)) {
		error = dfs_dir_sf_verify(dp, false);
		if (!error)
			*countp = ((struct dfs_dir_sf_hdr *)dp->i_df.if_local)->count;
		return error;
	}
	error = dfs_dir_read(NULL, dp, 0, -1, &bp);
	if (error)
		return error;
	*countp = ((struct dfs_dir_blk *)bp->b_addr)->nentries;
	dfs_buf_relse(bp);
	return 0;
}

int dfs_dir_isempty(struct dfs_inode *dp)
{
	uint64_t n;
	int error = dfs_dir_count(dp, &n);

	return error ? error : n == 0;
}

int dfs_dir_iterate(struct dfs_trans *tp, struct dfs_inode *dp, uint64_t cookie,
		    dfs_filldir_t fill, void *ctx)
{
	uint64_t parent, start;
	struct dfs_buf *bp;
	struct dfs_dir_blk *b;
	uint32_t off;
	int error;

	if (!dfs_isdir(dp))
		return -ENOTDIR;
	if (cookie == 0 && fill(ctx, ".", 1, dp->i_ino, S_IFDIR, 1))
		return 0;
	if (cookie <= 1) {
		error = dfs_dir_get_parent(tp, dp, &parent);
		if (error)
			return error;
		if (fill(ctx, "..", 2, parent, S_IFDIR, 2))
			return 0;
	}
	start = cookie <= DFS_DIR_COOKIE_FIRST ? 0 : cookie - DFS_DIR_COOKIE_FIRST;
	if (dfs_dir_is_sf(dp)) {
		error = dfs_dir_sf_verify(dp, false);
		if (error)
			return error;
		off = SF_HDR;
		while (off < dp->i_df.if_local_len) {
			struct dfs_dir_ent *e = (void *)(dp->i_df.if_local + off);

			off += dfs_dir_ent_size(e->namelen);
			if (e->key >= start &&
			    fill(ctx, e->name, e->namelen, e->ino, (uint32_t)e->ftype << 12,
				 e->key + 3))
				break;
		}
		return 0;
	}
	error = dfs_dir_walk_to_leaf(tp, dp, start, &bp);
	if (error)
		return error;
	b = bp->b_addr;
	off = dfs_dir_leaf_search(b, start);
	for (;;) {
		while (off < b->used) {
			struct dfs_dir_ent *e = dfs_dir_ent_at(b, off);

			off += dfs_dir_ent_size(e->namelen);
			if (fill(ctx, e->name, e->namelen, e->ino, (uint32_t)e->ftype << 12,
				 e->key + 3))
				goto out;
		}
		if (b->rightsib == DFS_DIR_NOBLK)
			break;
		error = dfs_dir_read_right(tp, dp, &bp);
		if (error)
			return error;
		b = bp->b_addr;
		off = 0;
	}
out:
	dfs_dir_brelse(tp, bp);
	return 0;
}

/* ---- checker ------------------------------------------------------------- */

struct dfs_dir_checker {
	struct dfs_trans *tp;
	struct dfs_inode *dp;
	uint64_t entries;
	uint64_t lastkey;
	bool any;
	uint32_t prevleaf;		/* last leaf seen, for the sibling chain */
	uint32_t prevright;		/* and its right sibling pointer */
	/* copies of the names of the current hash group, to find duplicates */
	char **grp;
	uint32_t ngrp, grpcap;
};

static int dfs_dir_check_corrupt(struct dfs_dir_checker *ck, const char *why)
{
	return dfs_corrupt(ck->dp->i_mount, "directory inode", ck->dp->i_ino, why);
}

static void dfs_dir_check_grp_reset(struct dfs_dir_checker *ck)
{
	while (ck->ngrp)
		free(ck->grp[--ck->ngrp]);
}

/* One entry, in global key order: names valid, keys increasing, no name twice
 * (a name twice would have the same hash, so only the group is searched). */
static int dfs_dir_check_ent(struct dfs_dir_checker *ck, const struct dfs_dir_ent *e)
{
	uint32_t i;
	char *s;

	if (dfs_dir_namecheck(e->name, e->namelen))
		return dfs_dir_check_corrupt(ck, "invalid entry name");
	if (dfs_dir_hashname(e->name, e->namelen) != dfs_dir_key_hash(e->key))
		return dfs_dir_check_corrupt(ck, "entry hash does not match its name");
	if (ck->any && e->key <= ck->lastkey)
		return dfs_dir_check_corrupt(ck, "entry keys out of order across blocks");
	if (e->ftype == 0 || e->ftype > 014)
		return dfs_dir_check_corrupt(ck, "bad file type in entry");
	if (!ck->any || dfs_dir_key_hash(e->key) != dfs_dir_key_hash(ck->lastkey))
		dfs_dir_check_grp_reset(ck);
	for (i = 0; i < ck->ngrp; i++)
		if ((uint8_t)ck->grp[i][0] == e->namelen && !memcmp(ck->grp[i] + 1, e->name, e->namelen))
			return dfs_dir_check_corrupt(ck, "name appears twice");
	if (ck->ngrp == ck->grpcap) {
		uint32_t cap = ck->grpcap ? ck->grpcap * 2 : 8;
		char **g = realloc(ck->grp, cap * sizeof(*g));

		if (!g)
			return -ENOMEM;
		ck->grp = g;
		ck->grpcap = cap;
	}
	s = malloc(e->namelen + 1u);
	if (!s)
		return -ENOMEM;
	s[0] = (char)e->namelen;
	memcpy(s + 1, e->name, e->namelen);
	ck->grp[ck->ngrp++] = s;
	ck->lastkey = e->key;
	ck->any = true;
	ck->entries++;
	return 0;
}

/* Subtree at fbno: its keys must lie in [lo, hi) (hi_open: no upper bound). */
static int dfs_dir_check_blk(struct dfs_dir_checker *ck, uint32_t fbno, int level, uint64_t lo,
			     uint64_t hi, bool hi_open)
{
	struct dfs_mount *mp = ck->dp->i_mount;
	struct dfs_buf *bp;
	struct dfs_dir_blk *b;
	uint32_t i, off;
	int error;

	error = dfs_dir_read(ck->tp, ck->dp, fbno, level, &bp);
	if (error)
		return error;
	b = bp->b_addr;
	error = dfs_dir_blk_check(mp, bp->b_blkno, b, true);
	if (error)
		goto out;
	if (fbno != 0 && (b->nentries || b->parent)) {
		error = dfs_dir_check_corrupt(ck, "root fields set in a non-root block");
		goto out;
	}
	if (b->level > 0) {
		struct dfs_dir_nent *ne = dfs_dir_nents(b);

		for (i = 0; i < b->count; i++) {
			bool last = i + 1 == b->count;
			uint64_t clo = i ? ne[i].key : lo;
			uint64_t chi = last ? hi : ne[i + 1].key;

			if (i && (ne[i].key < lo || (!hi_open && ne[i].key >= hi))) {
				error = dfs_dir_check_corrupt(ck, "node key outside its parent's range");
				goto out;
			}
			error = dfs_dir_check_blk(ck, ne[i].child, b->level - 1, clo, chi,
						  last ? hi_open : false);
			if (error)
				goto out;
		}
		goto out;
	}
	if (fbno != 0 && b->count == 0) {
		error = dfs_dir_check_corrupt(ck, "empty leaf");
		goto out;
	}
	if (b->leftsib != ck->prevleaf ||
	    (ck->prevleaf != DFS_DIR_NOBLK && ck->prevright != fbno)) {
		error = dfs_dir_check_corrupt(ck, "leaf sibling chain broken");
		goto out;
	}
	ck->prevleaf = fbno;
	ck->prevright = b->rightsib;
	for (off = 0; off < b->used;) {
		struct dfs_dir_ent *e = dfs_dir_ent_at(b, off);

		if (e->key < lo || (!hi_open && e->key >= hi)) {
			error = dfs_dir_check_corrupt(ck, "entry key outside its parent's range");
			goto out;
		}
		error = dfs_dir_check_ent(ck, e);
		if (error)
			goto out;
		off += dfs_dir_ent_size(e->namelen);
	}
out:
	dfs_dir_brelse(ck->tp, bp);
	return error;
}

int dfs_dir_check(struct dfs_trans *tp, struct dfs_inode *dp)
{
	struct dfs_dir_checker ck = {
		.tp = tp,
		.dp = dp,
		.prevleaf = DFS_DIR_NOBLK,
		.prevright = DFS_DIR_NOBLK,
	};
	uint64_t nentries = 0, oldsize;
	struct dfs_buf *bp;
	uint32_t off;
	int error;

	if (!dfs_isdir(dp))
		return -ENOTDIR;
	if (dfs_dir_is_sf(dp)) {
		error = dfs_dir_sf_verify(dp, true);
		if (error)
			return error;
		if (dp->i_size != dp->i_df.if_local_len)
			return dfs_dir_sf_corrupt(dp, "size is not the inline length");
		for (off = SF_HDR; off < dp->i_df.if_local_len && !error;) {
			struct dfs_dir_ent *e = (void *)(dp->i_df.if_local + off);

			error = dfs_dir_check_ent(&ck, e);
			off += dfs_dir_ent_size(e->namelen);
		}
		goto out;
	}
	if (dp->i_df.if_format != DFS_DINODE_FMT_EXTENTS &&
	    dp->i_df.if_format != DFS_DINODE_FMT_BTREE)
		return dfs_dir_check_corrupt(&ck, "unknown data fork format");
	error = dfs_dir_read(tp, dp, 0, -1, &bp);
	if (error)
		return error;
	nentries = ((struct dfs_dir_blk *)bp->b_addr)->nentries;
	if (((struct dfs_dir_blk *)bp->b_addr)->parent == DFS_NULLINO)
		error = dfs_dir_check_corrupt(&ck, "no parent");
	dfs_dir_brelse(tp, bp);
	if (error)
		return error;
	error = dfs_dir_check_blk(&ck, 0, -1, 0, 0, true);
	if (error)
		goto out;
	if (ck.prevright != DFS_DIR_NOBLK) {
		error = dfs_dir_check_corrupt(&ck, "last leaf has a right sibling");
		goto out;
	}
	if (ck.entries != nentries) {
		error = dfs_dir_check_corrupt(&ck, "entry count in the root is wrong");
		goto out;
	}
	oldsize = dp->i_size;
	dfs_dir_update_size(dp);
	if (dp->i_size != oldsize) {
		dfs_dir_set_size(dp, oldsize);
		error = dfs_dir_check_corrupt(&ck, "size does not match the blocks mapped");
	}
out:
	dfs_dir_check_grp_reset(&ck);
	free(ck.grp);
	return error;
}

/* ---- mkfs ---------------------------------------------------------------- */

int dfs_mkfs_rootdir(struct dfs_mount *mp, uint64_t *rootino)
{
	struct dfs_inode *ip;
	struct dfs_trans *tp;
	int error;

	error = dfs_trans_alloc(mp, dfs_ialloc_space_res(mp), &tp);
	if (error)
		return error;
	error = dfs_icreate(tp, NULL, S_IFDIR | 0755, 2, 0, 0, 0, &ip);
	if (error) {
		dfs_trans_cancel(tp);
		return error;
	}
	error = dfs_dir_init(tp, ip, ip->i_ino);
	if (error) {
		dfs_trans_cancel(tp);
		dfs_irele(ip);
		return error;
	}
	error = dfs_trans_commit(tp, true);
	if (!error)
		*rootino = ip->i_ino;
	dfs_irele(ip);
	return error;
}
