/* SPDX-License-Identifier: MIT */
/*
 * Transactions (XFS's xfs_trans) over the write-ahead log (log.h).
 *
 * A transaction reserves blocks up front (so it cannot run out of space half
 * way), joins the metadata buffers it reads or creates, logs the ones it
 * changes, and commits: the images of the logged blocks are copied into the
 * in-core log (xlog_write), which is written to the on-disk log when it
 * fills or when the log is forced (xlog_sync). Changes are atomic: after a
 * crash, log recovery replays whole transactions or nothing.
 *
 * Logging is physical (whole block images), as jbd2 does; XFS logs byte
 * ranges of buffers. A block logged again while its image still sits in the
 * unwritten in-core log is updated in place there (XFS's CIL relogging).
 *
 * Locking: the caller holds mp->lock for the transaction's whole life.
 */
#ifndef DEEPFS_TRANS_H
#define DEEPFS_TRANS_H

#include <stdbool.h>
#include <stdint.h>

struct dfs_mount;
struct dfs_buf;
struct dfs_buf_ops;
struct dfs_trans;

/* blkres: free blocks to reserve from mp's free counter for allocations
 * made by this transaction (-ENOSPC if not available); unused ones are given
 * back at commit or cancel. */
int dfs_trans_alloc(struct dfs_mount *mp, uint32_t blkres, struct dfs_trans **tpp);
struct dfs_mount *dfs_trans_mount(struct dfs_trans *tp);

/* The allocator takes reserved blocks as it allocates, and gives them back
 * when it frees. */
int dfs_trans_use_blocks(struct dfs_trans *tp, uint32_t n);	/* -ENOSPC if over blkres */
void dfs_trans_free_blocks(struct dfs_trans *tp, uint32_t n);

/* Read/get a buffer and join it to the transaction (held until commit). */
int dfs_trans_read_buf(struct dfs_trans *tp, uint64_t blkno, const struct dfs_buf_ops *ops,
		       struct dfs_buf **bpp);
int dfs_trans_get_buf(struct dfs_trans *tp, uint64_t blkno, const struct dfs_buf_ops *ops,
		      struct dfs_buf **bpp);
/*
 * Join a buffer before changing it: a checkpoint may run at any moment (when
 * the log or the buffer cache fills) and writes in place what a dirty buffer
 * holds unless a transaction has it joined (then its last committed image).
 */
/* Join a buffer the caller holds (the transaction takes over that hold). */
void dfs_trans_bjoin(struct dfs_trans *tp, struct dfs_buf *bp);
/* The block changed: log its whole image at commit. */
void dfs_trans_log_buf(struct dfs_trans *tp, struct dfs_buf *bp);
/* The block was freed in this transaction: never write it again. Takes
 * effect at commit, which also tells the log not to replay older images of
 * the block (it may hold file data by then): call it for every freed
 * metadata block, with dfs_trans_get_buf if it is not at hand. */
void dfs_trans_binval(struct dfs_trans *tp, struct dfs_buf *bp);
/* Release a joined buffer early if it was not logged. */
void dfs_trans_brelse(struct dfs_trans *tp, struct dfs_buf *bp);

/* Commit: verify_write + CRC of each logged buffer, copy into the in-core
 * log, mark buffers dirty with the LSN, release them. With sync, the log is
 * forced to disk before returning (O_SYNC / fsync). */
int dfs_trans_commit(struct dfs_trans *tp, bool sync);
void dfs_trans_cancel(struct dfs_trans *tp);

/* Callbacks run after the transaction's log record is durable, e.g. to
 * clear busy extents. */
typedef void (*dfs_trans_cb_t)(struct dfs_mount *mp, void *arg);
int dfs_trans_add_committed_cb(struct dfs_trans *tp, dfs_trans_cb_t cb, void *arg);

#endif /* DEEPFS_TRANS_H */
