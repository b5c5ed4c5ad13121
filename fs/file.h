/* SPDX-License-Identifier: MIT */
/*
 * File data (XFS's xfs_file.c and xfs_aops.c): buffered read and write
 * through the page cache, writeback that converts delayed allocation, size
 * changes, fallocate and fsync. The deepfs.h entry points (dfs_read,
 * dfs_write, dfs_fsync, dfs_fallocate, dfs_readpage, dfs_writepage(s)) live
 * in file.c; these are for the rest of deepfs.
 *
 * Locking: callers hold mp->m_lock.
 */
#ifndef DEEPFS_FILE_H
#define DEEPFS_FILE_H

#include <stdbool.h>
#include <stdint.h>

struct dfs_inode;

/* Largest file: page indexes and byte offsets stay far from overflow. */
#define DFS_MAX_FILE_SIZE	(1ull << 50)

/*
 * Truncate or extend a regular file (setattr's size change): zeroes the
 * tail of the new last block, writes back the dirty data between the
 * on-disk size and the new size, drops pages past EOF, frees blocks past
 * EOF and logs the new size (on disk too, always) and mtime/ctime. Runs its
 * own transactions.
 */
int dfs_file_setsize(struct dfs_inode *ip, uint64_t newsize);

/*
 * Write back ip's dirty pages with start <= index <= end (XFS's
 * xfs_vm_writepages): delalloc is converted, each physically contiguous
 * run goes out as one multi-vector bio, and at completion the extents
 * become written and the on-disk size moves. Waits for the IO; with sync,
 * also forces the log.
 */
int dfs_do_writepages(struct dfs_inode *ip, uint64_t start, uint64_t end, bool sync);

/*
 * Entry points that free blocks or dirty cached pages of ip (setattr size,
 * fallocate, write) call this first, before they look at ip: it sleeps
 * (dropping mp->m_lock) until no external-page writeback of ip has IO in
 * flight without the lock (writeback_ext.c). The caller holds a reference.
 */
void dfs_wbext_wait(struct dfs_inode *ip);
/* Test hook: if set, external writeback calls it without mp->m_lock once
 * its IO is counted in flight and before it is submitted (tests hold the
 * IO there to show who waits for it and who does not). */
extern void (*dfs_wbext_io_hook)(struct dfs_inode *ip);

/* The regular file ino, referenced (dfs_irele); -EIO on a shut down
 * filesystem, -EISDIR/-EINVAL for other kinds. m_lock held. */
int dfs_file_iget(struct dfs_mount *mp, uint64_t ino, struct dfs_inode **ipp);

#endif /* DEEPFS_FILE_H */
