/* SPDX-License-Identifier: MIT */
/*
 * Inode allocation internals (XFS's xfs_ialloc.h, xfs_ialloc_btree.h): the
 * inode B+tree of each AG and the geometry of inode chunks. The entry points
 * the rest of deepfs uses (dfs_dialloc, dfs_difree, dfs_imap_check) are in
 * inode.h; this header is for the inobt itself, fsck and tests.
 *
 * An inode chunk is DFS_INODES_PER_CHUNK inodes in dfs_ialloc_chunk_blocks()
 * contiguous blocks, aligned to its own length inside the AG, so that the
 * chunk of any AG-relative inode number is agino & ~(DFS_INODES_PER_CHUNK - 1).
 * The inobt has one record per chunk with a bitmap of its free inodes.
 */
#ifndef DEEPFS_IALLOC_H
#define DEEPFS_IALLOC_H

#include <stdint.h>

#include "format.h"

struct dfs_mount;
struct dfs_trans;
struct dfs_buf;
struct dfs_btree_cur;

extern const struct dfs_btree_ops dfs_inobt_ops;
extern const struct dfs_buf_ops dfs_inobt_buf_ops;

/* Cursor on AG agno's inobt; agibp is that AG's AGI, joined to tp (or
 * held by the caller for a read-only walk with tp NULL). */
void dfs_inobt_init_cursor(struct dfs_btree_cur *cur, struct dfs_trans *tp,
			   struct dfs_buf *agibp, uint32_t agno);
/* Height the inobt of a full AG can reach (reservations). */
int dfs_inobt_maxlevels(const struct dfs_mount *mp);

/* Blocks of one inode chunk. */
static inline uint32_t dfs_ialloc_chunk_blocks(uint32_t inopblock)
{
	return DFS_INODES_PER_CHUNK / inopblock;
}
#define DFS_INOBT_ALL_FREE	UINT64_MAX

#endif /* DEEPFS_IALLOC_H */
