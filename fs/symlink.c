// SPDX-License-Identifier: MIT
/* Symlink targets, inline or in remote blocks; see symlink.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bmap.h"
#include "buf.h"
#include "inode.h"
#include "mount.h"
#include "msg.h"
#include "symlink.h"
#include "trans.h"

static inline uint32_t dfs_symlink_bytes_per_blk(const struct dfs_mount *mp)
{
	return mp->m_blocksize - sizeof(struct dfs_symlink_blk);
}

static int dfs_symlink_blk_check(struct dfs_buf *bp)
{
	const struct dfs_symlink_blk *sb = bp->b_addr;

	if (sb->offset >= DFS_MAXPATHLEN || sb->bytes == 0 ||
	    sb->bytes > dfs_symlink_bytes_per_blk(bp->b_mount) ||
	    sb->offset + sb->bytes >= DFS_MAXPATHLEN)
		return dfs_corrupt(bp->b_mount, "symlink block", bp->b_blkno,
				   "target piece out of range");
	return 0;
}

static int dfs_symlink_check_buf(struct dfs_buf *bp, bool reading)
{
	return dfs_symlink_blk_check(bp);
}

const struct dfs_buf_ops dfs_symlink_buf_ops = {
	.name = "symlink",
	.magic = DFS_SYMLINK_MAGIC,
	.check = dfs_symlink_check_buf,
};

uint32_t dfs_symlink_space_res(const struct dfs_mount *mp, size_t len)
{
	uint32_t per = dfs_symlink_bytes_per_blk(mp);

	if (len <= DFS_SYMLINK_INLINE)
		return 0;
	/* each block may be an extent of its own, and the extent list may
	 * turn into a bmbt */
	return (uint32_t)((len + per - 1) / per) + 4;
}

int dfs_symlink_write(struct dfs_trans *tp, struct dfs_inode *ip, const char *target, size_t len)
{
	struct dfs_mount *mp = ip->i_mount;
	uint32_t per = dfs_symlink_bytes_per_blk(mp);
	uint64_t fbno;
	size_t done;
	int error;

	if (len == 0 || len >= DFS_MAXPATHLEN)
		return -ENAMETOOLONG;
	if (len <= DFS_SYMLINK_INLINE) {
		char *buf = malloc(len);

		if (!buf)
			return -ENOMEM;
		memcpy(buf, target, len);
		free(ip->i_df.if_local);
		ip->i_df.if_local = buf;
		ip->i_df.if_local_len = (uint32_t)len;
		ip->i_df.if_format = DFS_DINODE_FMT_LOCAL;
		ip->i_size = len;
		ip->i_disk_size = len;
		return dfs_trans_log_inode(tp, ip);
	}
	for (fbno = 0, done = 0; done < len; fbno++, done += per) {
		struct dfs_bmbt_irec map;
		struct dfs_symlink_blk *sb;
		struct dfs_buf *bp;
		int nmaps = 1;
		uint32_t n = len - done < per ? (uint32_t)(len - done) : per;

		error = dfs_bmapi_write(tp, ip, fbno, 1, 0, &map, &nmaps);
		if (error)
			return error;
		if (nmaps < 1 || map.br_startblock >= DFS_HOLESTARTBLOCK ||
		    map.br_startoff > fbno || map.br_startoff + map.br_blockcount <= fbno)
			return -ENOSPC;
		error = dfs_trans_get_buf(tp, map.br_startblock + (fbno - map.br_startoff),
					  &dfs_symlink_buf_ops, &bp);
		if (error)
			return error;
		memset(bp->b_addr, 0, bp->b_len);
		dfs_blkhdr_init(bp, DFS_SYMLINK_MAGIC, ip->i_ino);
		sb = bp->b_addr;
		sb->offset = (uint32_t)done;
		sb->bytes = n;
		memcpy(sb + 1, target + done, n);
		dfs_trans_log_buf(tp, bp);
	}
	ip->i_size = len;
	ip->i_disk_size = len;
	return dfs_trans_log_inode(tp, ip);
}

ssize_t dfs_symlink_read(struct dfs_inode *ip, char *buf, size_t size)
{
	struct dfs_mount *mp = ip->i_mount;
	uint32_t per = dfs_symlink_bytes_per_blk(mp);
	uint64_t len = ip->i_size, done, fbno;
	char why[96];

	if (len == 0 || len >= DFS_MAXPATHLEN) {
		snprintf(why, sizeof(why), "symlink length %" PRIu64, len);
		return dfs_corrupt(mp, "symlink inode", ip->i_ino, why);
	}
	if (ip->i_df.if_format == DFS_DINODE_FMT_LOCAL) {
		if (ip->i_df.if_local_len != len || !ip->i_df.if_local)
			return dfs_corrupt(mp, "symlink inode", ip->i_ino,
					   "inline target length differs from the size");
		memcpy(buf, ip->i_df.if_local, len < size ? len : size);
		return (ssize_t)len;
	}
	if (len <= DFS_SYMLINK_INLINE)
		return dfs_corrupt(mp, "symlink inode", ip->i_ino, "short target not inline");
	for (fbno = 0, done = 0; done < len; fbno++, done += per) {
		struct dfs_bmbt_irec map;
		struct dfs_symlink_blk *sb;
		struct dfs_buf *bp;
		uint64_t want = len - done < per ? len - done : per;
		int nmaps = 1, error;

		error = dfs_bmapi_read(ip, fbno, 1, &map, &nmaps);
		if (error)
			return error;
		if (nmaps < 1 || map.br_startblock >= DFS_HOLESTARTBLOCK ||
		    map.br_startoff > fbno || map.br_startoff + map.br_blockcount <= fbno)
			return dfs_corrupt(mp, "symlink inode", ip->i_ino, "target block not mapped");
		error = dfs_buf_read(mp, map.br_startblock + (fbno - map.br_startoff),
				     &dfs_symlink_buf_ops, &bp);
		if (error)
			return error;
		sb = bp->b_addr;
		if (sb->hdr.owner != ip->i_ino || sb->offset != done || sb->bytes != want) {
			dfs_buf_relse(bp);
			return dfs_corrupt(mp, "symlink block", map.br_startblock,
					   "block does not hold the expected piece of the target");
		}
		if (done < size)
			memcpy(buf + done, sb + 1, size - done < want ? size - done : want);
		dfs_buf_relse(bp);
	}
	return (ssize_t)len;
}
