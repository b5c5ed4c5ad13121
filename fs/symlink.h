/* SPDX-License-Identifier: MIT */
/*
 * Symlink targets (XFS's xfs_symlink.c): up to DFS_SYMLINK_INLINE bytes live
 * in the inode's data fork (FMT_LOCAL, i_size bytes); longer ones, up to
 * DFS_MAXPATHLEN - 1 bytes, in "remote" blocks at file offsets 0.. of the
 * link, each a struct dfs_symlink_blk followed by its piece of the target.
 */
#ifndef DEEPFS_SYMLINK_H
#define DEEPFS_SYMLINK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "format.h"

struct dfs_mount;
struct dfs_trans;
struct dfs_inode;

#define DFS_SYMLINK_INLINE	DFS_DFORK_SIZE

struct dfs_symlink_blk {
	struct dfs_blkhdr hdr;		/* magic DFS_SYMLINK_MAGIC, owner = link inode */
	uint32_t offset;		/* byte offset of this piece in the target */
	uint32_t bytes;			/* bytes of target in this block */
};

extern const struct dfs_buf_ops dfs_symlink_buf_ops;

/* Blocks to reserve for a target of len bytes. */
uint32_t dfs_symlink_space_res(const struct dfs_mount *mp, size_t len);
/* Store the target of a new, empty symlink inode; logs the inode. */
int dfs_symlink_write(struct dfs_trans *tp, struct dfs_inode *ip, const char *target, size_t len);
/* Copy up to size bytes of the target into buf; returns its length. */
ssize_t dfs_symlink_read(struct dfs_inode *ip, char *buf, size_t size);

#endif /* DEEPFS_SYMLINK_H */
