// SPDX-License-Identifier: MIT
/* Extended attributes in one block per inode; see xattr.h. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "deepfs.h"
#include "inode.h"
#include "mount.h"
#include "msg.h"
#include "trans.h"
#include "xattr.h"

#define ATTR_HDR	sizeof(struct dfs_attr_blk)

static inline uint32_t dfs_attr_ent_size(uint32_t namelen, uint32_t valuelen)
{
	return (uint32_t)(sizeof(struct dfs_attr_ent) + namelen + valuelen + 3) & ~3u;
}
static inline struct dfs_attr_ent *dfs_attr_ent_at(struct dfs_attr_blk *ab, uint32_t off)
{
	return (struct dfs_attr_ent *)((char *)(ab + 1) + off);
}

static int dfs_attr_namecmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int dfs_attr_blk_check(struct dfs_mount *mp, uint64_t blkno, struct dfs_attr_blk *ab)
{
	uint32_t off = 0, n = 0;
	struct dfs_attr_ent *prev = NULL;

	if (ab->used > mp->m_blocksize - ATTR_HDR)
		return dfs_corrupt(mp, "xattr block", blkno, "entries overrun the block");
	while (off < ab->used) {
		struct dfs_attr_ent *e = dfs_attr_ent_at(ab, off);

		if (off + sizeof(*e) > ab->used || e->namelen == 0 ||
		    off + dfs_attr_ent_size(e->namelen, e->valuelen) > ab->used)
			return dfs_corrupt(mp, "xattr block", blkno, "entry overruns the block");
		if (memchr(e->data, '\0', e->namelen) ||
		    (prev && dfs_attr_namecmp(prev->data, prev->namelen, e->data, e->namelen) >= 0))
			return dfs_corrupt(mp, "xattr block", blkno, "names out of order or invalid");
		prev = e;
		off += dfs_attr_ent_size(e->namelen, e->valuelen);
		n++;
	}
	if (n != ab->count || n == 0)
		return dfs_corrupt(mp, "xattr block", blkno, "wrong entry count");
	return 0;
}

static int dfs_attr_check_buf(struct dfs_buf *bp, bool reading)
{
	return dfs_attr_blk_check(bp->b_mount, bp->b_blkno, bp->b_addr);
}

const struct dfs_buf_ops dfs_attr_buf_ops = {
	.name = "xattr",
	.magic = DFS_ATTR_MAGIC,
	.check = dfs_attr_check_buf,
};

/* Read ip's attribute block, in tp if there is one. */
static int dfs_attr_read(struct dfs_trans *tp, struct dfs_inode *ip, struct dfs_buf **bpp)
{
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_buf *bp;
	int error;

	if (ip->i_xattr_blk >= mp->m_dblocks)
		return dfs_corrupt(mp, "inode", ip->i_ino, "xattr block beyond the filesystem");
	if (tp)
		error = dfs_trans_read_buf(tp, ip->i_xattr_blk, &dfs_attr_buf_ops, &bp);
	else
		error = dfs_buf_read(mp, ip->i_xattr_blk, &dfs_attr_buf_ops, &bp);
	if (error)
		return error;
	if (((struct dfs_attr_blk *)bp->b_addr)->hdr.owner != ip->i_ino) {
		if (tp)
			dfs_trans_brelse(tp, bp);
		else
			dfs_buf_relse(bp);
		return dfs_corrupt(mp, "xattr block", ip->i_xattr_blk, "owned by another inode");
	}
	*bpp = bp;
	return 0;
}

/* Offset of name in ab, or of the first entry after it (*found says which). */
static uint32_t dfs_attr_lookup(struct dfs_attr_blk *ab, const char *name, size_t len,
				bool *found)
{
	uint32_t off = 0;

	*found = false;
	while (off < ab->used) {
		struct dfs_attr_ent *e = dfs_attr_ent_at(ab, off);
		int c = dfs_attr_namecmp(e->data, e->namelen, name, len);

		if (c >= 0) {
			*found = c == 0;
			break;
		}
		off += dfs_attr_ent_size(e->namelen, e->valuelen);
	}
	return off;
}

static int dfs_attr_namecheck(const char *name, size_t *lenp)
{
	size_t len = strnlen(name, DFS_XATTR_NAME_MAX + 1);

	if (len == 0 || len > DFS_XATTR_NAME_MAX)
		return -ERANGE;
	*lenp = len;
	return 0;
}

/* A new attribute block near the inode (xfs_attr3_leaf_create). */
static int dfs_attr_alloc_blk(struct dfs_trans *tp, struct dfs_inode *ip, struct dfs_buf **bpp)
{
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_alloc_arg args;
	struct dfs_buf *bp;
	int error;

	memset(&args, 0, sizeof(args));
	args.tp = tp;
	args.mp = mp;
	args.fsbno = dfs_ino_to_fsb(mp, ip->i_ino);
	args.type = DFS_ALLOCTYPE_START_BNO;
	args.minlen = args.maxlen = 1;
	args.prod = 1;
	args.alignment = 1;
	args.total = 1;
	args.owner = ip->i_ino;
	error = dfs_alloc_vextent(&args);
	if (error)
		return error;
	if (args.fsbno == DFS_NULLFSBLOCK)
		return -ENOSPC;
	error = dfs_trans_get_buf(tp, args.fsbno, &dfs_attr_buf_ops, &bp);
	if (error)
		return error;
	memset(bp->b_addr, 0, bp->b_len);
	dfs_blkhdr_init(bp, DFS_ATTR_MAGIC, ip->i_ino);
	ip->i_xattr_blk = args.fsbno;
	ip->i_nblocks++;
	*bpp = bp;
	return 0;
}

static int dfs_attr_free_blk(struct dfs_trans *tp, struct dfs_inode *ip, struct dfs_buf *bp)
{
	int error;

	dfs_trans_binval(tp, bp);
	error = dfs_free_extent(tp, ip->i_xattr_blk, 1);
	if (error)
		return error;
	ip->i_xattr_blk = 0;
	ip->i_nblocks--;
	return 0;
}

int dfs_attr_set(struct dfs_trans *tp, struct dfs_inode *ip, const char *name, const void *value,
		 size_t size, int flags)
{
	struct dfs_mount *mp = ip->i_mount;
	const uint32_t cap = mp->m_blocksize - ATTR_HDR;
	struct dfs_attr_blk *ab;
	struct dfs_attr_ent *e;
	struct dfs_buf *bp = NULL;
	uint32_t off = 0, oldsize = 0, newsize;
	size_t len;
	bool found = false;
	int error;

	error = dfs_attr_namecheck(name, &len);
	if (error)
		return error;
	if (size > DFS_XATTR_SIZE_MAX)
		return -E2BIG;
	if ((flags & ~(DFS_XATTR_CREATE | DFS_XATTR_REPLACE)) ||
	    flags == (DFS_XATTR_CREATE | DFS_XATTR_REPLACE))
		return -EINVAL;
	newsize = dfs_attr_ent_size((uint32_t)len, (uint32_t)size);
	if (ip->i_xattr_blk) {
		error = dfs_attr_read(tp, ip, &bp);
		if (error)
			return error;
		ab = bp->b_addr;
		off = dfs_attr_lookup(ab, name, len, &found);
		if (found) {
			e = dfs_attr_ent_at(ab, off);
			oldsize = dfs_attr_ent_size(e->namelen, e->valuelen);
		}
	}
	if (found && (flags & DFS_XATTR_CREATE))
		return -EEXIST;
	if (!found && (flags & DFS_XATTR_REPLACE))
		return -ENODATA;
	if (newsize > cap || (bp && ((struct dfs_attr_blk *)bp->b_addr)->used - oldsize + newsize > cap))
		return -ENOSPC;
	if (!bp) {
		error = dfs_attr_alloc_blk(tp, ip, &bp);
		if (error)
			return error;
	}
	ab = bp->b_addr;
	/* make room for the new entry in place of the old one */
	memmove((char *)(ab + 1) + off + newsize, (char *)(ab + 1) + off + oldsize,
		ab->used - off - oldsize);
	ab->used = ab->used - oldsize + newsize;
	if (!found)
		ab->count++;
	e = dfs_attr_ent_at(ab, off);
	memset(e, 0, newsize);
	e->namelen = (uint8_t)len;
	e->valuelen = (uint16_t)size;
	memcpy(e->data, name, len);
	if (size)
		memcpy(e->data + len, value, size);
	memset((char *)(ab + 1) + ab->used, 0, cap - ab->used);
	dfs_trans_log_buf(tp, bp);
	dfs_trans_ichgtime(tp, ip, DFS_ICHG_CHG);
	return dfs_trans_log_inode(tp, ip);
}

int dfs_attr_remove(struct dfs_trans *tp, struct dfs_inode *ip, const char *name)
{
	struct dfs_attr_blk *ab;
	struct dfs_attr_ent *e;
	struct dfs_buf *bp;
	uint32_t off, esize;
	size_t len;
	bool found;
	int error;

	error = dfs_attr_namecheck(name, &len);
	if (error)
		return error;
	if (!ip->i_xattr_blk)
		return -ENODATA;
	error = dfs_attr_read(tp, ip, &bp);
	if (error)
		return error;
	ab = bp->b_addr;
	off = dfs_attr_lookup(ab, name, len, &found);
	if (!found) {
		dfs_trans_brelse(tp, bp);
		return -ENODATA;
	}
	e = dfs_attr_ent_at(ab, off);
	esize = dfs_attr_ent_size(e->namelen, e->valuelen);
	memmove(e, (char *)e + esize, ab->used - off - esize);
	ab->used -= esize;
	ab->count--;
	memset((char *)(ab + 1) + ab->used, 0, esize);
	if (ab->count == 0)
		error = dfs_attr_free_blk(tp, ip, bp);
	else
		dfs_trans_log_buf(tp, bp);
	if (error)
		return error;
	dfs_trans_ichgtime(tp, ip, DFS_ICHG_CHG);
	return dfs_trans_log_inode(tp, ip);
}

ssize_t dfs_attr_get(struct dfs_inode *ip, const char *name, void *value, size_t size)
{
	struct dfs_attr_ent *e;
	struct dfs_buf *bp;
	ssize_t ret;
	uint32_t off;
	size_t len;
	bool found;
	int error;

	error = dfs_attr_namecheck(name, &len);
	if (error)
		return error;
	if (!ip->i_xattr_blk)
		return -ENODATA;
	error = dfs_attr_read(NULL, ip, &bp);
	if (error)
		return error;
	off = dfs_attr_lookup(bp->b_addr, name, len, &found);
	if (!found) {
		ret = -ENODATA;
	} else {
		e = dfs_attr_ent_at(bp->b_addr, off);
		ret = e->valuelen;
		if (size && size < e->valuelen)
			ret = -ERANGE;
		else if (size)
			memcpy(value, e->data + e->namelen, e->valuelen);
	}
	dfs_buf_relse(bp);
	return ret;
}

ssize_t dfs_attr_list(struct dfs_inode *ip, char *list, size_t size)
{
	struct dfs_attr_blk *ab;
	struct dfs_buf *bp;
	size_t total = 0;
	uint32_t off;
	int error;

	if (!ip->i_xattr_blk)
		return 0;
	error = dfs_attr_read(NULL, ip, &bp);
	if (error)
		return error;
	ab = bp->b_addr;
	for (off = 0; off < ab->used;) {
		struct dfs_attr_ent *e = dfs_attr_ent_at(ab, off);

		if (size) {
			if (total + e->namelen + 1 > size) {
				dfs_buf_relse(bp);
				return -ERANGE;
			}
			memcpy(list + total, e->data, e->namelen);
			list[total + e->namelen] = '\0';
		}
		total += e->namelen + 1u;
		off += dfs_attr_ent_size(e->namelen, e->valuelen);
	}
	dfs_buf_relse(bp);
	return (ssize_t)total;
}

int dfs_attr_inactive(struct dfs_inode *ip)
{
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_trans *tp;
	struct dfs_buf *bp;
	int error;

	if (!ip->i_xattr_blk)
		return 0;
	if (ip->i_xattr_blk >= mp->m_dblocks)
		return dfs_corrupt(mp, "inode", ip->i_ino, "xattr block beyond the filesystem");
	error = dfs_trans_alloc(mp, 0, &tp);
	if (error)
		return error;
	/* the contents do not matter any more: no read */
	error = dfs_trans_get_buf(tp, ip->i_xattr_blk, &dfs_attr_buf_ops, &bp);
	if (!error)
		error = dfs_attr_free_blk(tp, ip, bp);
	if (!error)
		error = dfs_trans_log_inode(tp, ip);
	if (error) {
		dfs_trans_cancel(tp);
		return error;
	}
	return dfs_trans_commit(tp, false);
}

int dfs_attr_check(struct dfs_inode *ip)
{
	struct dfs_buf *bp;
	int error;

	if (!ip->i_xattr_blk)
		return 0;
	error = dfs_attr_read(NULL, ip, &bp);
	if (error)
		return error;
	error = dfs_attr_blk_check(ip->i_mount, bp->b_blkno, bp->b_addr);
	dfs_buf_relse(bp);
	return error;
}

/* ---- deepfs.h entry points ----------------------------------------------- */

int dfs_setxattr(struct dfs_mount *mp, uint64_t ino, const char *name, const void *value,
		 size_t size, int flags)
{
	struct dfs_inode *ip;
	struct dfs_trans *tp;
	int error;

	pthread_mutex_lock(&mp->m_lock);
	if (mp->m_readonly) {
		error = -EROFS;
		goto out_unlock;
	}
	error = dfs_iget(mp, NULL, ino, &ip);
	if (error)
		goto out_unlock;
	error = dfs_trans_alloc(mp, DFS_ATTR_SPACE_RES, &tp);
	if (error)
		goto out_rele;
	error = dfs_attr_set(tp, ip, name, value, size, flags);
	if (error)
		dfs_trans_cancel(tp);
	else
		error = dfs_trans_commit(tp, false);
out_rele:
	dfs_irele(ip);
out_unlock:
	pthread_mutex_unlock(&mp->m_lock);
	return error;
}

ssize_t dfs_getxattr(struct dfs_mount *mp, uint64_t ino, const char *name, void *value,
		     size_t size)
{
	struct dfs_inode *ip;
	ssize_t ret;

	pthread_mutex_lock(&mp->m_lock);
	ret = dfs_iget(mp, NULL, ino, &ip);
	if (!ret) {
		ret = dfs_attr_get(ip, name, value, size);
		dfs_irele(ip);
	}
	pthread_mutex_unlock(&mp->m_lock);
	return ret;
}

ssize_t dfs_listxattr(struct dfs_mount *mp, uint64_t ino, char *list, size_t size)
{
	struct dfs_inode *ip;
	ssize_t ret;

	pthread_mutex_lock(&mp->m_lock);
	ret = dfs_iget(mp, NULL, ino, &ip);
	if (!ret) {
		ret = dfs_attr_list(ip, list, size);
		dfs_irele(ip);
	}
	pthread_mutex_unlock(&mp->m_lock);
	return ret;
}

int dfs_removexattr(struct dfs_mount *mp, uint64_t ino, const char *name)
{
	struct dfs_inode *ip;
	struct dfs_trans *tp;
	int error;

	pthread_mutex_lock(&mp->m_lock);
	if (mp->m_readonly) {
		error = -EROFS;
		goto out_unlock;
	}
	error = dfs_iget(mp, NULL, ino, &ip);
	if (error)
		goto out_unlock;
	error = dfs_trans_alloc(mp, 0, &tp);
	if (error)
		goto out_rele;
	error = dfs_attr_remove(tp, ip, name);
	if (error)
		dfs_trans_cancel(tp);
	else
		error = dfs_trans_commit(tp, false);
out_rele:
	dfs_irele(ip);
out_unlock:
	pthread_mutex_unlock(&mp->m_lock);
	return error;
}
