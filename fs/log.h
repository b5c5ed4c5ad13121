/* SPDX-License-Identifier: MIT */
/*
 * The write-ahead log: a circular region of logblocks blocks in AG 0.
 *
 * Block 0 of the region is the log superblock (struct dfs_loghdr): it holds
 * the tail, the oldest record still needed. Records follow it, each a header
 * block (struct dfs_logrec) listing the fsbnos of the block images after it,
 * a CRC32C covering header and images, and a strictly increasing LSN. A
 * record is written whole; a torn record fails its CRC and ends replay.
 *
 * Checkpoint: write every dirty buffer in place, flush the device, move the
 * tail to the head, flush. It runs when the log is three quarters full, when
 * the buffer cache is over budget with dirty buffers, and at unmount.
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
	struct dfs_blkhdr hdr;	/* magic DFS_LOGREC_MAGIC; crc covers header+images */
	uint64_t rec_lsn;
	uint32_t nblocks;	/* images following this header */
	uint32_t rec_crc;	/* CRC32C of the images, in order */
	uint64_t blknos[];	/* fsbno of each image */
};

int dfs_log_mount(struct dfs_mount *mp);	/* reads the log sb, replays */
int dfs_log_unmount(struct dfs_mount *mp);	/* checkpoint, mark clean */
/* Make every committed transaction durable (xfs_log_force). */
int dfs_log_force(struct dfs_mount *mp);
/* Free the in-core log without writing anything (failed mount, shutdown):
 * whatever was not durable is lost, and the next mount replays the rest. */
void dfs_log_abort(struct dfs_mount *mp);
int dfs_log_checkpoint(struct dfs_mount *mp);
uint64_t dfs_log_durable_lsn(struct dfs_mount *mp);

/* Called from dfs_trans_commit: copy images into the in-core log and
 * return the transaction's LSN (xlog_write; may call xlog_sync). */
int dfs_log_write(struct dfs_mount *mp, struct dfs_buf **bufs, int nbufs, uint64_t *lsn);

struct dfs_log_stats {
	uint64_t commits, records, blocks_logged, forces, checkpoints, replayed_records;
};
void dfs_log_get_stats(struct dfs_mount *mp, struct dfs_log_stats *st);

#endif /* DEEPFS_LOG_H */
