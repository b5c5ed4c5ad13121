/* SPDX-License-Identifier: MIT */
/*
 * The in-core mount (XFS's xfs_mount) and per-AG state (xfs_perag).
 *
 * Locking model of this version: one filesystem lock, mp->lock, taken by
 * every public entry point in deepfs.h and held across the whole operation,
 * IO waits included. Everything below the public API assumes it is held.
 * This is deliberate for now: it makes every path correct first; finer
 * locking (per-inode, per-AG) comes with the reclaim work, where lock order
 * matters and is checked. One exception already: the data IO of external
 * pages (writeback_ext.c) runs unlocked, fenced per inode.
 */
#ifndef DEEPFS_MOUNT_H
#define DEEPFS_MOUNT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "format.h"

struct dfs_blkdev;
struct dfs_bcache;
struct dfs_log;
struct dfs_icache;
struct dfs_pagecache;
struct dfs_extent_busy;

struct dfs_perag {
	uint32_t pag_agno;
	uint32_t pag_length;		/* blocks in this AG */
	/* copies of AGF/AGI counters, kept current by alloc.c/ialloc.c */
	uint32_t pagf_freeblks;
	uint32_t pagf_longest;
	uint32_t pagf_flcount;
	uint32_t pagi_count;
	uint32_t pagi_freecount;
	/* extents freed by transactions whose log record is not durable yet:
	 * not to be reused before a log force (XFS's busy extents) */
	struct dfs_extent_busy *pag_busy;
};

struct dfs_mount {
	char *m_fsname;			/* image path, for messages */
	struct dfs_blkdev *m_bdev;
	struct dfs_dsb m_sb;		/* in-core copy of the superblock */
	uint32_t m_blocksize;
	uint32_t m_blocklog;
	uint32_t m_agblocks;
	uint32_t m_agcount;
	uint64_t m_dblocks;
	uint32_t m_inopblock;
	uint32_t m_inopblog;
	bool m_readonly;
	bool m_shutdown;		/* after a fatal IO or corruption error */
	struct dfs_perag *m_perag;	/* m_agcount entries */

	pthread_mutex_t m_lock;		/* the filesystem lock, see above */
	/* broadcast when an inode's external writebacks in flight reach 0
	 * (writeback_ext.c: the one place IO runs without m_lock) */
	pthread_cond_t m_wbext_wait;

	/* free block accounting: m_fdblocks counts blocks that are neither
	 * allocated nor reserved (by transactions or delayed allocation) */
	uint64_t m_fdblocks;
	uint64_t m_delalloc_blocks;	/* reserved for delalloc extents */
	uint64_t m_alloc_set_aside;	/* never handed out: AGFL refills */
	/* reserve pool (XFS's m_resblks): blocks taken out of m_fdblocks at
	 * mount for the transactions that must not fail on a full disk
	 * (writeback's delalloc conversion, IO completion, hole punch);
	 * see dfs_bmap_trans_alloc_reserved in bmap.h */
	uint64_t m_resblks;		/* pool size */
	uint64_t m_resblks_avail;	/* of which still in the pool */
	uint64_t m_icount, m_ifree;
	uint32_t m_agirotor;		/* next AG for a new directory (ialloc.c) */

	struct dfs_bcache *m_bcache;
	struct dfs_log *m_log;
	struct dfs_icache *m_icache;
	struct dfs_pagecache *m_pagecache;
	char *m_iolog_path;
};

static inline uint64_t dfs_agb_to_fsb(const struct dfs_mount *mp, uint32_t agno, uint32_t agbno)
{
	return (uint64_t)agno * mp->m_agblocks + agbno;
}
static inline uint32_t dfs_fsb_to_agno(const struct dfs_mount *mp, uint64_t fsbno)
{
	return (uint32_t)(fsbno / mp->m_agblocks);
}
static inline uint32_t dfs_fsb_to_agbno(const struct dfs_mount *mp, uint64_t fsbno)
{
	return (uint32_t)(fsbno % mp->m_agblocks);
}
static inline uint64_t dfs_fsb_to_bytes(const struct dfs_mount *mp, uint64_t fsbno)
{
	return fsbno << mp->m_blocklog;
}
/* inode number <-> location */
static inline uint64_t dfs_ino_to_fsb(const struct dfs_mount *mp, uint64_t ino)
{
	return ino >> mp->m_inopblog;
}
static inline uint32_t dfs_ino_to_offset(const struct dfs_mount *mp, uint64_t ino)
{
	return (uint32_t)(ino & (mp->m_inopblock - 1));
}
static inline uint64_t dfs_make_ino(const struct dfs_mount *mp, uint64_t fsbno, uint32_t idx)
{
	return (fsbno << mp->m_inopblog) | idx;
}
static inline uint32_t dfs_ino_to_agno(const struct dfs_mount *mp, uint64_t ino)
{
	return dfs_fsb_to_agno(mp, dfs_ino_to_fsb(mp, ino));
}
/* AG-relative inode number, as stored in the inobt */
static inline uint32_t dfs_ino_to_agino(const struct dfs_mount *mp, uint64_t ino)
{
	return (uint32_t)(((uint64_t)dfs_fsb_to_agbno(mp, dfs_ino_to_fsb(mp, ino))
			   << mp->m_inopblog) | dfs_ino_to_offset(mp, ino));
}
static inline uint64_t dfs_agino_to_ino(const struct dfs_mount *mp, uint32_t agno, uint32_t agino)
{
	return dfs_make_ino(mp, dfs_agb_to_fsb(mp, agno, agino >> mp->m_inopblog),
			    agino & (mp->m_inopblock - 1));
}

/*
 * Free-block accounting (super.c). m_fdblocks = sum over AGs of
 * (agf freeblks + flcount + btreeblks) - m_alloc_set_aside, as XFS's
 * sb_fdblocks: blocks of the free-space trees and the AGFL come back as free
 * space is used up. Transactions (blkres) and delayed allocation reserve
 * from it; a negative delta fails with -ENOSPC when not enough is left.
 */
int dfs_mod_fdblocks(struct dfs_mount *mp, int64_t delta);
#define DFS_AGFL_RESERVE 8	/* blocks per AG kept for free-space btree splits */

/* Mount with flags (super.c); DFS_MOUNT_MKFS: the root directory does not
 * exist yet (mkfs makes it through the normal code paths, as mkfs.xfs's
 * protofile does through libxfs). */
#define DFS_MOUNT_MKFS	(1u << 0)
struct dfs_mount_opts;
int dfs_mount_flags(const char *path, const struct dfs_mount_opts *opts, unsigned flags,
		    struct dfs_mount **mpp);

/* Superblock read/verify and write (super.c). */
extern const struct dfs_buf_ops dfs_sb_buf_ops;
int dfs_sb_verify(const struct dfs_mount *mp, const struct dfs_dsb *sb, uint64_t blkno,
		  uint64_t devsize);

#endif /* DEEPFS_MOUNT_H */
