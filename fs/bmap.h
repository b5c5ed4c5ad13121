/* SPDX-License-Identifier: MIT */
/*
 * File block mapping (XFS's xfs_bmap.c): the data fork, in core as a sorted
 * extent list (struct dfs_ifork in inode.h), on disk as an extent array in
 * the inode that grows into a bmbt B+tree when it no longer fits
 * (DFS_INLINE_EXTENTS), and shrinks back.
 *
 * Delayed allocation: a buffered write reserves blocks and records a
 * delalloc extent in core only. Writeback converts it
 * (dfs_bmapi_convert_delalloc -> dfs_bmap_btalloc -> dfs_alloc_vextent), near
 * the file's previous extent, as an unwritten extent; the IO completion
 * converts it to written (dfs_iomap_write_unwritten) and moves the on-disk
 * size. A crash between the two leaves unwritten blocks that read as zeroes:
 * never stale data.
 */
#ifndef DEEPFS_BMAP_H
#define DEEPFS_BMAP_H

#include <stdbool.h>
#include <stdint.h>

#include "inode.h"

struct dfs_trans;

/* The argument block of one mapping change (XFS's xfs_bmalloca, ~160 bytes). */
struct dfs_bmalloca {
	struct dfs_trans *tp;
	struct dfs_inode *ip;
	struct dfs_bmbt_irec prev;	/* extent before offset */
	struct dfs_bmbt_irec got;	/* extent at/after offset */
	uint64_t offset;		/* file block */
	uint64_t length;
	uint64_t blkno;			/* out: first block allocated */
	struct dfs_btree_cur *cur;	/* bmbt cursor, if btree format */
	uint32_t icur;			/* index into the in-core extent list */
	int nallocs;
	int logflags;
	uint64_t total;
	uint64_t minlen;
	uint64_t minleft;
	bool eof;
	bool wasdel;
	bool aeof;
	bool conv;
	int datatype;
	int flags;
	uint64_t hint;
};

/*
 * Fork <-> dinode, for inode.c. dfs_iget calls dfs_bmap_read_extents with
 * the verified dinode (still in its cluster buffer) after filling the core
 * (i_mode, i_size, i_nblocks...): it loads i_df from the inline extent array
 * (FMT_EXTENTS), from the bmbt leaves (FMT_BTREE; reads blocks through tp,
 * which may be NULL) or copies the local data (FMT_LOCAL, di_size bytes into
 * if_local). dfs_trans_log_inode calls dfs_bmap_format_fork to write
 * di_format, di_nextents and di_fork from i_df (delalloc extents never reach
 * the disk). dfs_bmap_destroy_fork frees the in-core fork (inode reclaim).
 */
int dfs_bmap_read_extents(struct dfs_trans *tp, struct dfs_inode *ip,
			  const struct dfs_dinode *dip);
void dfs_bmap_format_fork(const struct dfs_inode *ip, struct dfs_dinode *dip);
void dfs_bmap_destroy_fork(struct dfs_inode *ip);
/* bmbt cursor on ip's data fork (FMT_BTREE). */
struct dfs_btree_cur;
void dfs_bmbt_init_cursor(struct dfs_btree_cur *cur, struct dfs_trans *tp, struct dfs_inode *ip);
/* Transaction reservation for adding one extent: a bmbt split per level,
 * a new root, the extents -> btree conversion. */
struct dfs_mount;
uint32_t dfs_bmap_ext_res(const struct dfs_mount *mp);
/*
 * A transaction for the paths that must not fail for lack of space once
 * the data was accepted (delalloc conversion, unwritten conversion at IO
 * completion, hole punch): when m_fdblocks is short it dips into the
 * reserve pool m_resblks_avail (XFS's XFS_TRANS_RESERVE).
 * dfs_bmap_reserve_init sets the pool up at mount (called from
 * dfs_pagecache_init); dfs_bmap_reserve_refill tops it up from free space.
 */
int dfs_bmap_trans_alloc_reserved(struct dfs_mount *mp, uint32_t blkres, struct dfs_trans **tpp);
void dfs_bmap_reserve_init(struct dfs_mount *mp);
void dfs_bmap_reserve_refill(struct dfs_mount *mp);
/* Number of real (non-delalloc) extents in the in-core fork. */
uint32_t dfs_bmap_real_extents(const struct dfs_inode *ip);
/* Look up mappings of [bno, bno+len): fills up to *nmaps records (holes
 * included, as DFS_HOLESTARTBLOCK). */
int dfs_bmapi_read(struct dfs_inode *ip, uint64_t bno, uint64_t len, struct dfs_bmbt_irec *mval,
		   int *nmaps);
/* Reserve delayed allocation for [bno, bno+len) where it is a hole. */
int dfs_bmapi_reserve_delalloc(struct dfs_inode *ip, uint64_t bno, uint64_t len);
/* Allocate real (unwritten) blocks for the delalloc extent that covers
 * offset_fsb; returns the new mapping in *imap. */
int dfs_bmapi_convert_delalloc(struct dfs_inode *ip, uint64_t offset_fsb,
			       struct dfs_bmbt_irec *imap);
/* Allocate blocks for a range (fallocate): unwritten extents. */
#define DFS_BMAPI_PREALLOC 1
int dfs_bmapi_write(struct dfs_trans *tp, struct dfs_inode *ip, uint64_t bno, uint64_t len,
		    int flags, struct dfs_bmbt_irec *mval, int *nmaps);
/* Unmap [bno, bno+len) (punch, truncate): frees real blocks, drops delalloc
 * reservations. *done = 1 when the whole range is unmapped (a transaction
 * may do only part of it). */
int dfs_bunmapi(struct dfs_trans *tp, struct dfs_inode *ip, uint64_t bno, uint64_t len,
		int *done);
/* Convert [offset, offset+count) bytes to written after IO, and move the
 * on-disk size to at most new_size. */
int dfs_iomap_write_unwritten(struct dfs_inode *ip, uint64_t offset, uint64_t count,
			      uint64_t new_size);
/* Free all blocks past new_size (truncate), in as many transactions as it takes. */
int dfs_itruncate_extents(struct dfs_inode *ip, uint64_t new_size);
/* Invariant check: in-core list sorted, no overlap, matches disk. */
int dfs_bmap_check(struct dfs_inode *ip);

extern const struct dfs_btree_ops dfs_bmbt_ops;

#endif /* DEEPFS_BMAP_H */
