/* SPDX-License-Identifier: MIT */
/*
 * The write-ahead log: a circular region of logblocks blocks in AG 0.
 *
 * Block 0 of the region is the log superblock (struct dfs_loghdr): it holds
 * the tail, the oldest record still needed. Records follow it, each a header
 * (struct dfs_logrec, one block or a few) listing the fsbnos of the block
 * images after it,
 * a CRC32C covering header and images, and a strictly increasing LSN. A
 * record is written whole; a torn record fails its CRC and ends replay.
 *
 * Checkpoint: force the log, write every dirty buffer in place, flush the
 * device, empty the log (tail and head back at block 1, the LSN goes on),
 * flush. It runs when the log is three quarters full or a transaction does
 * not fit, when the buffer cache is over budget with mostly dirty buffers,
 * and at unmount.
 *
 * Recovery (at mount): from the tail, replay each valid record in LSN order
 * by writing its images in place; then flush and reset the tail.
 */
#ifndef DEEPFS_LOG_H
#define DEEPFS_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "format.h"

struct dfs_mount;
struct dfs_buf;

struct dfs_loghdr {
	struct dfs_blkhdr hdr;	/* magic DFS_LOGHDR_MAGIC */
	uint64_t tail_lsn;	/* LSN of the first record to replay */
	uint32_t tail_block;	/* its block offset inside the log region (>= 1) */
	uint32_t clean;		/* 1: nothing to replay (clean unmount) */
};

struct dfs_logrec {
	struct dfs_blkhdr hdr;	/* magic DFS_LOGREC_MAGIC; crc covers all hdr_blocks */
	uint64_t rec_lsn;
	uint32_t nblocks;	/* entries in blknos[] */
	uint32_t rec_crc;	/* CRC32C of the images, in order */
	uint32_t hdr_blocks;	/* blocks of this header: blknos[] runs on past the
				 * first block when one does not hold the list */
	uint32_t pad;
	uint64_t blknos[];	/* fsbno of each image */
};
/*
 * nblocks counts the entries of blknos[]. An entry with DFS_LOGREC_CANCEL set
 * has no image: its transaction freed the block, so recovery must not write
 * images of it from older records (XFS's buffer cancel items): the block may
 * hold file data by now. Images follow in the order of the other entries.
 */
#define DFS_LOGREC_CANCEL	(1ull << 63)

int dfs_log_mount(struct dfs_mount *mp);	/* reads the log sb, replays */
int dfs_log_unmount(struct dfs_mount *mp);	/* checkpoint, mark clean */
/* Make every committed transaction durable (xfs_log_force). */
int dfs_log_force(struct dfs_mount *mp);
/* Free the in-core log without writing anything (failed mount, shutdown):
 * whatever was not durable is lost, and the next mount replays the rest. */
void dfs_log_abort(struct dfs_mount *mp);
int dfs_log_checkpoint(struct dfs_mount *mp);
uint64_t dfs_log_durable_lsn(struct dfs_mount *mp);
/* Last LSN written to the log device, flushed or not (tests, statistics). */
uint64_t dfs_log_synced_lsn(struct dfs_mount *mp);

/* Called from dfs_trans_commit: copy images into the in-core log and
 * return the transaction's LSN (xlog_write; may call xlog_sync). For each
 * buffer it sets b_lsn to that LSN and calls ops->verify_write (CRC), then
 * copies the image; a buffer with DFS_BUF_STALE set is logged as a cancel
 * entry instead. A transaction always lands in one record. */
int dfs_log_write(struct dfs_mount *mp, struct dfs_buf **bufs, int nbufs, uint64_t *lsn);
/* Most blocks one transaction may log (-E2BIG from dfs_log_write beyond). */
uint32_t dfs_log_max_trans_blocks(struct dfs_mount *mp);
/* Run cb once the record holding LSN lsn is durable (at once if it is);
 * lsn 0 means the last transaction committed. */
int dfs_log_add_committed_cb(struct dfs_mount *mp, uint64_t lsn,
			     void (*cb)(struct dfs_mount *mp, void *arg), void *arg);
/* mkfs: write an empty, clean log (loghdr at logstart) for mp->m_sb's
 * logstart/logblocks/uuid. Needs m_bdev and m_blocksize only. */
int dfs_log_format(struct dfs_mount *mp);

struct dfs_log_stats {
	uint64_t commits, records, blocks_logged, forces, checkpoints, replayed_records;
};
void dfs_log_get_stats(struct dfs_mount *mp, struct dfs_log_stats *st);

#endif /* DEEPFS_LOG_H */
