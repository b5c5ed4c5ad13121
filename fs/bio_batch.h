/* SPDX-License-Identifier: MIT */
/*
 * A batch of bios built block by block, each extending the previous one
 * while the disk range stays contiguous (the block layer's merging, done
 * before submission): file reads, page-cache writeback and the writeback of
 * pages deepfs does not own (writeback_ext.c) build their IO with it.
 */
#ifndef DEEPFS_BIO_BATCH_H
#define DEEPFS_BIO_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blkdev.h"

struct dfs_mount;

struct dfs_bio_batch {
	struct dfs_bio **bios;
	size_t n, cap;
	enum dfs_io_dir dir;
	bool single;		/* one bio per page: a page never joins another's bio */
	uint64_t last_index;	/* page of the last block added */
};

/* Adds len bytes at buf for page index, at disk_off. 0 or -ENOMEM. */
int dfs_bio_batch_add(struct dfs_bio_batch *bb, uint64_t index, uint64_t disk_off,
		      void *buf, size_t len);
void dfs_bio_batch_free(struct dfs_bio_batch *bb);
/* Submits every bio and waits for all of them; the first error, or 0.
 * ios/bytes (may be NULL) count what was submitted. Does not free. */
int dfs_bio_batch_submit(struct dfs_mount *mp, struct dfs_bio_batch *bb, uint64_t *ios,
			 uint64_t *bytes);

/* Submits, waits and frees the bios. */
int dfs_bio_batch_run(struct dfs_mount *mp, struct dfs_bio_batch *bb);

#endif
