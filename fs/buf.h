/* SPDX-License-Identifier: MIT */
/*
 * The metadata buffer cache (XFS's xfs_buf): one struct dfs_buf per cached
 * metadata block, found by fsbno, verified by its ops when read from disk and
 * checksummed when written.
 *
 * Lifetime: dfs_buf_read/dfs_buf_get return a held buffer; dfs_buf_relse
 * drops the hold. Unheld clean buffers are kept on an LRU and freed when the
 * cache is over its byte budget. A buffer that a committed transaction logged
 * is dirty and pinned in memory until the log checkpoint has written it in
 * place (see log.h); dirty buffers are never written in place before the log
 * record holding them is durable (write-ahead rule).
 *
 * Locking: callers hold mp->lock (the filesystem lock); the cache has no lock
 * of its own.
 */
#ifndef DEEPFS_BUF_H
#define DEEPFS_BUF_H

#include <stdbool.h>
#include <stdint.h>

#include "format.h"

struct dfs_mount;
struct dfs_buf;

struct dfs_buf_ops {
	const char *name;
	uint32_t magic;
	/*
	 * A block with a blkhdr (magic, CRC, self address, UUID) needs only
	 * check: the contents' own rules, reading (from disk or a log image)
	 * or about to be written. dfs_buf_verify_read/write add the header
	 * half. Returns 0 or -EFSCORRUPTED after saying what is wrong.
	 */
	int (*check)(struct dfs_buf *bp, bool reading);
	/* Blocks with rules of their own (superblock, inode clusters) give
	 * these instead of check. */
	int (*verify_read)(struct dfs_buf *bp);
	int (*verify_write)(struct dfs_buf *bp);
};

/* Checks a block read from disk (or a log image at replay) with bp->b_ops. */
int dfs_buf_verify_read(struct dfs_buf *bp);
/* Before the block goes to disk or to the log: checks it and sets its CRC.
 * Blocks whose ops verify nothing are left as they are (0). */
int dfs_buf_verify_write(struct dfs_buf *bp);

#define DFS_BUF_DIRTY	(1u << 0)	/* logged, not yet written in place */
#define DFS_BUF_STALE	(1u << 1)	/* block freed: never write it, drop on release */
#define DFS_BUF_INTRANS	(1u << 2)	/* joined to a running transaction */

struct dfs_buf {
	struct dfs_mount *b_mount;
	uint64_t b_blkno;		/* fsbno */
	void *b_addr;			/* blocksize bytes, 4096-aligned */
	uint32_t b_len;
	uint32_t b_flags;
	int b_hold;
	const struct dfs_buf_ops *b_ops;
	uint64_t b_lsn;			/* last LSN that logged it (0 = never) */
	struct dfs_trans *b_trans;	/* transaction it is joined to, if any */
	/* the last committed image while a transaction changes a dirty buffer
	 * (jbd2's frozen data): what a checkpoint writes in place meanwhile */
	void *b_frozen;
	/* cache bookkeeping, private to buf.c */
	struct dfs_buf *b_hnext;
	struct dfs_buf *b_lru_prev, *b_lru_next;
	struct dfs_buf *b_dirty_prev, *b_dirty_next;
};

int dfs_bcache_init(struct dfs_mount *mp, uint64_t budget_bytes);
/* Frees all buffers; dirty ones must have been checkpointed. */
void dfs_bcache_destroy(struct dfs_mount *mp);

/* Read and verify (ops may be NULL only for raw reads by fsck/replay). */
int dfs_buf_read(struct dfs_mount *mp, uint64_t blkno, const struct dfs_buf_ops *ops,
		 struct dfs_buf **bpp);
/* A buffer for a block about to be written whole (new btree block...):
 * contents zeroed, no read. */
int dfs_buf_get(struct dfs_mount *mp, uint64_t blkno, const struct dfs_buf_ops *ops,
		struct dfs_buf **bpp);
/* Cache lookup only: NULL if blkno is not cached. */
struct dfs_buf *dfs_buf_incore(struct dfs_mount *mp, uint64_t blkno);
void dfs_buf_hold(struct dfs_buf *bp);
void dfs_buf_relse(struct dfs_buf *bp);
void dfs_buf_stale(struct dfs_buf *bp);

/* Dirty list, used by the log checkpoint. */
void dfs_buf_mark_dirty(struct dfs_buf *bp, uint64_t lsn);
/* Writes every dirty buffer with b_lsn <= upto in place (batched, sorted by
 * block number), waits, and clears DIRTY. */
int dfs_bcache_writeback(struct dfs_mount *mp, uint64_t upto_lsn);
uint64_t dfs_bcache_dirty_count(struct dfs_mount *mp);
/*
 * For trans.c: a transaction that joins a dirty buffer may change it before
 * it commits, while a checkpoint must write only committed contents in
 * place. dfs_buf_freeze keeps a copy of the committed image (if the buffer is
 * dirty) for dfs_bcache_writeback to write; dfs_buf_thaw drops it once the
 * buffer leaves the transaction.
 */
int dfs_buf_freeze(struct dfs_buf *bp);
void dfs_buf_thaw(struct dfs_buf *bp);

/* Helpers for blocks that start with struct dfs_blkhdr. */
void dfs_blkhdr_init(struct dfs_buf *bp, uint32_t magic, uint64_t owner);
/* Checks magic, CRC, self address and UUID; reports and returns
 * -EFSCORRUPTED on mismatch. */
int dfs_blkhdr_verify(struct dfs_buf *bp, uint32_t magic);
/* Sets the CRC of a blkhdr block (for verify_write); first stamps hdr.lsn
 * with b_lsn, which the log sets to the committing transaction's LSN before
 * it calls verify_write. */
void dfs_blkhdr_update_crc(struct dfs_buf *bp);

struct dfs_bcache_stats {
	uint64_t lookups, hits, reads, writes, evictions, bytes, dirty;
};
void dfs_bcache_get_stats(struct dfs_mount *mp, struct dfs_bcache_stats *st);

#endif /* DEEPFS_BUF_H */
