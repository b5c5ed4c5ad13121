/* SPDX-License-Identifier: MIT */
/*
 * Extended attributes, in one block per inode (as ext4 without ea_inode):
 * ip->i_xattr_blk is a block allocated near the inode, a struct
 * dfs_attr_blk (magic DFS_ATTR_MAGIC, owner = the inode) followed by the
 * attributes sorted by name, each a struct dfs_attr_ent, its name, its value,
 * padded to 4 bytes. Names are stored as given ("user.", "trusted.",
 * "security.", "system.posix_acl_*"...). What does not fit in the block
 * fails with -ENOSPC; a value over 64 KiB with -E2BIG, a name over 255
 * bytes with -ERANGE. The block is freed when its last attribute goes.
 */
#ifndef DEEPFS_XATTR_H
#define DEEPFS_XATTR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "format.h"

struct dfs_trans;
struct dfs_inode;

struct dfs_attr_blk {
	struct dfs_blkhdr hdr;
	uint16_t count;
	uint16_t pad;
	uint32_t used;			/* bytes of entries after the header */
};

struct dfs_attr_ent {
	uint8_t  namelen;
	uint8_t  pad;
	uint16_t valuelen;
	char     data[];		/* name, then value */
};

#define DFS_XATTR_NAME_MAX	255u
#define DFS_XATTR_SIZE_MAX	65536u

extern const struct dfs_buf_ops dfs_attr_buf_ops;

/* Blocks to reserve for dfs_attr_set. */
#define DFS_ATTR_SPACE_RES	2u

/* flags: DFS_XATTR_CREATE / DFS_XATTR_REPLACE (deepfs.h). Updates ctime. */
int dfs_attr_set(struct dfs_trans *tp, struct dfs_inode *ip, const char *name, const void *value,
		 size_t size, int flags);
int dfs_attr_remove(struct dfs_trans *tp, struct dfs_inode *ip, const char *name);
/* Without a transaction; size 0 asks for the size. */
ssize_t dfs_attr_get(struct dfs_inode *ip, const char *name, void *value, size_t size);
ssize_t dfs_attr_list(struct dfs_inode *ip, char *list, size_t size);
/* Free the attribute block of an inode being freed (dfs_inactive), in its
 * own transaction. */
int dfs_attr_inactive(struct dfs_inode *ip);
/* Check the attribute block of ip (fsck, tests): 0 or -EFSCORRUPTED. */
int dfs_attr_check(struct dfs_inode *ip);

#endif /* DEEPFS_XATTR_H */
