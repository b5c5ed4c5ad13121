/* SPDX-License-Identifier: MIT */
/*
 * In-core inodes (XFS's xfs_inode) and the inode cache.
 *
 * An inode is read from its cluster buffer and verified by dfs_iget, and
 * stays cached while referenced. Two kinds of reference: i_count, held by
 * code for the duration of an operation (dfs_iget/dfs_irele), and
 * i_nlookup, the FUSE lookup count (dfs_forget). When both reach zero and
 * i_nlink is 0, dfs_inactive frees the inode's blocks and the inode itself
 * (XFS's xfs_inactive). An inode with i_nlink 0 that is still referenced sits
 * on its AGI's unlinked list so that recovery can free it after a crash.
 *
 * The data fork is kept in core as a sorted extent list, i_df, which also
 * holds delayed-allocation extents (br_startblock == DFS_DELAYSTARTBLOCK) that
 * never reach the disk; bmap.c keeps it and the on-disk fork in step.
 */
#ifndef DEEPFS_INODE_H
#define DEEPFS_INODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "format.h"

struct dfs_mount;
struct dfs_trans;
struct dfs_address_space;

#define DFS_DELAYSTARTBLOCK	(UINT64_MAX - 1)
#define DFS_HOLESTARTBLOCK	(UINT64_MAX - 2)

/* An extent in core: file blocks [startoff, startoff+blockcount) map to
 * startblock.. (or are delalloc, or a hole in query results). */
struct dfs_bmbt_irec {
	uint64_t br_startoff;
	uint64_t br_startblock;
	uint64_t br_blockcount;
	uint32_t br_state;	/* DFS_EXT_NORM / DFS_EXT_UNWRITTEN */
};

struct dfs_ifork {
	struct dfs_bmbt_irec *if_ext;	/* sorted, non-overlapping */
	uint32_t if_nextents;		/* incl. delalloc extents */
	uint32_t if_cap;
	uint8_t  if_format;		/* DFS_DINODE_FMT_* on disk */
	struct dfs_bmroot if_broot;	/* when FMT_BTREE */
	char    *if_local;		/* FMT_LOCAL data (symlink target, ...) */
	uint32_t if_local_len;
};

struct dfs_inode {
	struct dfs_mount *i_mount;
	uint64_t i_ino;
	int      i_count;		/* code references */
	uint64_t i_nlookup;		/* FUSE lookups */
	/* core, as on disk */
	uint32_t i_mode, i_uid, i_gid, i_nlink, i_gen, i_flags, i_rdev;
	uint64_t i_size;		/* in-core size (may be ahead of disk) */
	uint64_t i_disk_size;		/* size as logged: grows at IO completion */
	uint64_t i_nblocks;		/* real blocks owned */
	uint64_t i_delayed_blks;	/* blocks reserved by delalloc extents */
	uint64_t i_delayed_indlen;	/* worst-case bmbt blocks reserved for them (bmap.c) */
	struct timespec i_atime, i_mtime, i_ctime, i_crtime;
	uint64_t i_next_unlinked;
	uint64_t i_xattr_blk;
	struct dfs_ifork i_df;		/* data fork */
	struct dfs_address_space *i_mapping; /* page cache (pagecache.h) */
	bool     i_dirty_core;		/* core changed since last logged (atime only) */
	/* external-page writeback (writeback_ext.c), under mp->m_lock: IOs in
	 * flight without the lock, and entry points waiting for them to end */
	uint32_t i_wbext_inflight;
	uint32_t i_wbext_waiters;
	/* The IO lock (XFS's IOLOCK, the kernel's invalidate_lock): what is
	 * read into a page cannot be truncated away meanwhile. Taken before
	 * m_lock, never while holding it (dfs_ilock_io_mlocked drops it).
	 * Shared by a pager fault across its frame allocation and its read;
	 * exclusive by size changes, hole punches and, in dfs_forget, the
	 * inactivation of an unlinked inode (2.6.34's xfs_inactive took
	 * IOLOCK_EXCL): seed 003's "high-level locks" of a final iput. */
	pthread_rwlock_t i_iolock;
	bool    *i_iolock_inactive;	/* dfs_forget's flag: inactivation unlocks */
	/* cache bookkeeping, private to inode.c */
	struct dfs_inode *i_hnext;
	struct dfs_inode *i_lru_prev, *i_lru_next;	/* unreferenced, cached */
};

int dfs_icache_init(struct dfs_mount *mp);
void dfs_icache_destroy(struct dfs_mount *mp);
/* How many unreferenced inodes stay cached (default 8192; reclaim work and
 * tests change it). */
void dfs_icache_set_lru_max(struct dfs_mount *mp, uint64_t max);
struct dfs_icache_stats {
	uint64_t cached;		/* in-core inodes */
	uint64_t unreferenced;		/* of those, on the LRU */
	uint64_t hits, misses;		/* dfs_iget */
	uint64_t evictions;		/* inodes dropped from the cache */
	uint64_t inactivated;		/* inodes freed by dfs_inactive */
};
void dfs_icache_get_stats(struct dfs_mount *mp, struct dfs_icache_stats *st);

/* Get a referenced in-core inode. Fails with -EINVAL for a number that is
 * not a valid inode location, -ENOENT for a free inode, -EFSCORRUPTED for a
 * bad one. tp may be NULL. */
int dfs_iget(struct dfs_mount *mp, struct dfs_trans *tp, uint64_t ino, struct dfs_inode **ipp);
void dfs_ihold(struct dfs_inode *ip);
/* Drop a code reference; may run dfs_inactive (in its own transactions), so
 * it must not be called while the caller has a transaction open: release
 * inodes after dfs_trans_commit/cancel. */
void dfs_irele(struct dfs_inode *ip);
/* FUSE forget. */
void dfs_iforget(struct dfs_inode *ip, uint64_t n);

/* The IO lock (i_iolock), annotated for lib/lockdep.h as class dfs_iolock.
 * ip must be referenced. dfs_ilock_io_mlocked is for entry points that hold
 * m_lock: it drops m_lock, takes the IO lock and retakes m_lock, so that the
 * order stays IO lock -> m_lock; what was checked under m_lock before must
 * be checked again. */
void dfs_ilock_io(struct dfs_inode *ip, bool excl);
void dfs_iunlock_io(struct dfs_inode *ip, bool excl);
void dfs_ilock_io_mlocked(struct dfs_inode *ip, bool excl);

/* Allocate a new inode near the parent (ialloc.c does the inobt part),
 * initialised with mode, nlink, rdev and owner, empty extent fork, times now;
 * logged in tp. parent may be NULL (the root directory). With nlink 0
 * (O_TMPFILE) the inode starts on the unlinked list. tp must have reserved
 * dfs_ialloc_space_res() blocks for it. */
int dfs_icreate(struct dfs_trans *tp, struct dfs_inode *parent, uint32_t mode, uint32_t nlink,
		uint32_t rdev, uint32_t uid, uint32_t gid, struct dfs_inode **ipp);
/* Copy the in-core core and fork to the cluster buffer and log it. */
int dfs_trans_log_inode(struct dfs_trans *tp, struct dfs_inode *ip);
/* Time stamps: flags of DFS_ICHG_* */
#define DFS_ICHG_MOD	1	/* mtime */
#define DFS_ICHG_CHG	2	/* ctime */
#define DFS_ICHG_ACC	4	/* atime */
void dfs_trans_ichgtime(struct dfs_trans *tp, struct dfs_inode *ip, int flags);

/* Link count changes; dropping to 0 puts the inode on the unlinked list. */
int dfs_droplink(struct dfs_trans *tp, struct dfs_inode *ip);
int dfs_bumplink(struct dfs_trans *tp, struct dfs_inode *ip);

/* Free everything of an unlinked, unreferenced inode (XFS's xfs_inactive):
 * data (dfs_itruncate_extents), xattr block, the inode (dfs_difree),
 * and take it off the unlinked list. Runs its own transactions. */
int dfs_inactive(struct dfs_inode *ip);
/* At mount after recovery: free inodes left on the AGI unlinked lists. */
int dfs_iunlink_recover(struct dfs_mount *mp);

/* Inode allocation (ialloc.c). dfs_dialloc picks the parent's AG first (or,
 * for a new directory, the next AG in rotation, as XFS spreads directories);
 * parent_ino 0 means none. mode is the new inode's (only S_IFDIR matters). */
int dfs_dialloc(struct dfs_trans *tp, uint64_t parent_ino, uint32_t mode, uint64_t *inop);
int dfs_difree(struct dfs_trans *tp, uint64_t ino);
/* Free blocks to reserve (dfs_trans_alloc blkres) for a transaction that
 * creates one inode: a new chunk plus inobt splits, XFS_IALLOC_SPACE_RES. */
uint32_t dfs_ialloc_space_res(const struct dfs_mount *mp);
/* Is ino in use? 1 if allocated, 0 if in an allocated chunk but free,
 * -EINVAL if it is no inode location at all (out of range, or in no chunk of
 * the inobt), other -errno on IO error or corruption. tp may be NULL. */
int dfs_imap_check(struct dfs_mount *mp, struct dfs_trans *tp, uint64_t ino);
/* Verifier of inode cluster blocks; dinode CRC helpers. */
extern const struct dfs_buf_ops dfs_inode_buf_ops;
void dfs_dinode_calc_crc(struct dfs_dinode *dip);
int dfs_dinode_verify(const struct dfs_mount *mp, uint64_t ino, const struct dfs_dinode *dip);

static inline bool dfs_isdir(const struct dfs_inode *ip) { return (ip->i_mode & 0170000) == 0040000; }
static inline bool dfs_isreg(const struct dfs_inode *ip) { return (ip->i_mode & 0170000) == 0100000; }
static inline bool dfs_islnk(const struct dfs_inode *ip) { return (ip->i_mode & 0170000) == 0120000; }

#endif /* DEEPFS_INODE_H */
