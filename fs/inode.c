/* SPDX-License-Identifier: MIT */
/*
 * In-core inodes and the inode cache (XFS's xfs_inode.c, xfs_icache.c,
 * xfs_inode_buf.c): reading and verifying dinodes, creating inodes, logging
 * them, link counts, the AGI unlinked list, and freeing inodes whose last
 * link and last reference are gone (xfs_inactive).
 *
 * Cached inodes are in a hash table by inode number. An inode nobody
 * references (i_count and i_nlookup both 0) stays cached on an LRU list, up
 * to a bound, so that a file opened again soon is not read again; inodes
 * referenced by FUSE lookups only are kept but never on the LRU.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "alloc.h"
#include "bmap.h"
#include "buf.h"
#include "crc.h"
#include "ialloc.h"
#include "inode.h"
#include "lib/lockdep.h"
#include "mount.h"
#include "msg.h"
#include "pagecache.h"
#include "trans.h"
#include "xattr.h"

#define DFS_ICACHE_HASH_BITS	14
#define DFS_ICACHE_LRU_MAX	8192	/* unreferenced inodes kept cached */

struct dfs_icache {
	struct dfs_inode **ic_hash;
	uint64_t ic_cached;
	/* unreferenced inodes, most recently released at the head */
	struct dfs_inode *ic_lru_head, *ic_lru_tail;
	uint64_t ic_lru_count;
	uint64_t ic_lru_max;
	uint64_t ic_hits, ic_misses, ic_evictions, ic_inactivated;
};

/* ---- dinodes --------------------------------------------------------------- */

void dfs_dinode_calc_crc(struct dfs_dinode *dip)
{
	dfs_cksum_update(dip, DFS_INODE_SIZE, offsetof(struct dfs_dinode, di_crc));
}

static struct dfs_dinode *dfs_buf_dinode(const struct dfs_mount *mp, struct dfs_buf *bp,
					 uint32_t index)
{
	return (struct dfs_dinode *)((char *)bp->b_addr + (size_t)index * DFS_INODE_SIZE);
}

static int dfs_inode_corrupt(const struct dfs_mount *mp, uint64_t ino, const char *why)
{
	dfs_err(mp, "metadata corruption in inode %" PRIu64 " (block %" PRIu64 "): %s", ino,
		dfs_ino_to_fsb(mp, ino), why);
	return -EFSCORRUPTED;
}

static bool dfs_mode_valid(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFDIR:
	case S_IFLNK:
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		return (mode & ~(uint32_t)(S_IFMT | 07777)) == 0;
	default:
		return false;
	}
}

/* The parts of a dinode that stand on their own: header, then (for an
 * inode in use) the core and the fork against each other. */
int dfs_dinode_verify(const struct dfs_mount *mp, uint64_t ino, const struct dfs_dinode *dip)
{
	char why[128];

	if (dip->di_magic != DFS_DINODE_MAGIC)
		return dfs_inode_corrupt(mp, ino, "bad magic");
	if (!dfs_cksum_verify(dip, DFS_INODE_SIZE, offsetof(struct dfs_dinode, di_crc)))
		return dfs_inode_corrupt(mp, ino, "CRC mismatch");
	if (dip->di_version != DFS_VERSION) {
		snprintf(why, sizeof(why), "unknown version %u", dip->di_version);
		return dfs_inode_corrupt(mp, ino, why);
	}
	if (dip->di_ino != ino) {
		snprintf(why, sizeof(why), "records inode number %" PRIu64, dip->di_ino);
		return dfs_inode_corrupt(mp, ino, why);
	}
	if (memcmp(dip->di_uuid, mp->m_sb.hdr.uuid, sizeof(dip->di_uuid)))
		return dfs_inode_corrupt(mp, ino, "belongs to another filesystem (UUID)");
	if (dip->di_mode == 0)
		return 0;

	if (!dfs_mode_valid(dip->di_mode)) {
		snprintf(why, sizeof(why), "bad mode 0%o", dip->di_mode);
		return dfs_inode_corrupt(mp, ino, why);
	}
	if (dip->di_size > INT64_MAX) {
		snprintf(why, sizeof(why), "size %" PRIu64, dip->di_size);
		return dfs_inode_corrupt(mp, ino, why);
	}
	if (dip->di_nblocks > mp->m_dblocks) {
		snprintf(why, sizeof(why), "owns %" PRIu64 " blocks", dip->di_nblocks);
		return dfs_inode_corrupt(mp, ino, why);
	}
	if (dip->di_xattr_blk && dip->di_xattr_blk >= mp->m_dblocks) {
		snprintf(why, sizeof(why), "xattr block %" PRIu64 " outside the filesystem",
			 dip->di_xattr_blk);
		return dfs_inode_corrupt(mp, ino, why);
	}
	if (dip->di_next_unlinked != DFS_NULLINO &&
	    (dip->di_nlink || dfs_ino_to_fsb(mp, dip->di_next_unlinked) >= mp->m_dblocks)) {
		snprintf(why, sizeof(why), "bad unlinked list link %" PRIu64 " (nlink %u)",
			 dip->di_next_unlinked, dip->di_nlink);
		return dfs_inode_corrupt(mp, ino, why);
	}

	switch (dip->di_format) {
	case DFS_DINODE_FMT_LOCAL:
		if (!S_ISDIR(dip->di_mode) && !S_ISLNK(dip->di_mode))
			return dfs_inode_corrupt(mp, ino, "local data fork on a file that cannot have one");
		if (dip->di_size > DFS_DFORK_SIZE || dip->di_nextents) {
			snprintf(why, sizeof(why), "local fork of %" PRIu64 " bytes, %u extents",
				 dip->di_size, dip->di_nextents);
			return dfs_inode_corrupt(mp, ino, why);
		}
		break;
	case DFS_DINODE_FMT_EXTENTS:
		if (dip->di_nextents > DFS_INLINE_EXTENTS) {
			snprintf(why, sizeof(why), "%u extents in the inode (at most %zu)",
				 dip->di_nextents, (size_t)DFS_INLINE_EXTENTS);
			return dfs_inode_corrupt(mp, ino, why);
		}
		break;
	case DFS_DINODE_FMT_BTREE: {
		const struct dfs_bmroot *broot = (const struct dfs_bmroot *)dip->di_fork;

		if (!S_ISREG(dip->di_mode) && !S_ISDIR(dip->di_mode) && !S_ISLNK(dip->di_mode))
			return dfs_inode_corrupt(mp, ino, "bmbt on a special file");
		if (broot->level == 0 || broot->level > 9 || broot->root >= mp->m_dblocks ||
		    dip->di_nextents <= DFS_INLINE_EXTENTS) {
			snprintf(why, sizeof(why), "bmbt root %" PRIu64 " level %u with %u extents",
				 broot->root, broot->level, dip->di_nextents);
			return dfs_inode_corrupt(mp, ino, why);
		}
		break;
	}
	default:
		snprintf(why, sizeof(why), "unknown data fork format %u", dip->di_format);
		return dfs_inode_corrupt(mp, ino, why);
	}
	if ((S_ISCHR(dip->di_mode) || S_ISBLK(dip->di_mode) || S_ISFIFO(dip->di_mode) ||
	     S_ISSOCK(dip->di_mode)) && (dip->di_nextents || dip->di_size))
		return dfs_inode_corrupt(mp, ino, "special file with data");
	return 0;
}

/* A cluster block: every dinode in it must at least be a dinode, at the
 * place it says it is (catches misdirected and torn writes). */
static int dfs_inode_buf_verify_read(struct dfs_buf *bp)
{
	struct dfs_mount *mp = bp->b_mount;
	uint32_t i;

	for (i = 0; i < mp->m_inopblock; i++) {
		const struct dfs_dinode *dip = dfs_buf_dinode(mp, bp, i);
		uint64_t ino = dfs_make_ino(mp, bp->b_blkno, i);
		char why[96];

		if (dip->di_magic != DFS_DINODE_MAGIC) {
			snprintf(why, sizeof(why), "inode %" PRIu64 ": bad magic 0x%04x", ino,
				 dip->di_magic);
			return dfs_corrupt(mp, "inode cluster", bp->b_blkno, why);
		}
		if (!dfs_cksum_verify(dip, DFS_INODE_SIZE, offsetof(struct dfs_dinode, di_crc))) {
			snprintf(why, sizeof(why), "inode %" PRIu64 ": CRC mismatch", ino);
			return dfs_corrupt(mp, "inode cluster", bp->b_blkno, why);
		}
		if (dip->di_ino != ino) {
			snprintf(why, sizeof(why), "inode %" PRIu64 " records number %" PRIu64, ino,
				 dip->di_ino);
			return dfs_corrupt(mp, "inode cluster", bp->b_blkno, why);
		}
	}
	return 0;
}

static int dfs_inode_buf_verify_write(struct dfs_buf *bp)
{
	struct dfs_mount *mp = bp->b_mount;
	uint32_t i;

	for (i = 0; i < mp->m_inopblock; i++) {
		struct dfs_dinode *dip = dfs_buf_dinode(mp, bp, i);

		if (dip->di_magic != DFS_DINODE_MAGIC ||
		    dip->di_ino != dfs_make_ino(mp, bp->b_blkno, i))
			return dfs_corrupt(mp, "inode cluster", bp->b_blkno,
					   "writing a block that does not hold its inodes");
		dip->di_lsn = bp->b_lsn;
		dfs_dinode_calc_crc(dip);
	}
	return 0;
}

const struct dfs_buf_ops dfs_inode_buf_ops = {
	.name = "inode",
	.magic = DFS_DINODE_MAGIC,
	.verify_read = dfs_inode_buf_verify_read,
	.verify_write = dfs_inode_buf_verify_write,
};

/* The cluster buffer of ino: joined to tp, or held by the caller when tp is
 * NULL (release with dfs_inode_buf_relse). */
static int dfs_imap_to_bp(struct dfs_mount *mp, struct dfs_trans *tp, uint64_t ino,
			  struct dfs_buf **bpp, struct dfs_dinode **dipp)
{
	uint64_t fsbno = dfs_ino_to_fsb(mp, ino);
	int error;

	if (tp)
		error = dfs_trans_read_buf(tp, fsbno, &dfs_inode_buf_ops, bpp);
	else
		error = dfs_buf_read(mp, fsbno, &dfs_inode_buf_ops, bpp);
	if (error)
		return error;
	*dipp = dfs_buf_dinode(mp, *bpp, dfs_ino_to_offset(mp, ino));
	return 0;
}

static void dfs_inode_buf_relse(struct dfs_trans *tp, struct dfs_buf *bp)
{
	if (!tp)
		dfs_buf_relse(bp);
}

static void ts_to_disk(struct dfs_timestamp *d, const struct timespec *ts)
{
	d->sec = ts->tv_sec;
	d->nsec = (uint32_t)ts->tv_nsec;
	d->pad = 0;
}

static void ts_from_disk(struct timespec *ts, const struct dfs_timestamp *d)
{
	ts->tv_sec = d->sec;
	ts->tv_nsec = d->nsec < 1000000000u ? (long)d->nsec : 999999999L;
}

static void dfs_inode_from_disk(struct dfs_inode *ip, const struct dfs_dinode *dip)
{
	ip->i_mode = dip->di_mode;
	ip->i_uid = dip->di_uid;
	ip->i_gid = dip->di_gid;
	ip->i_nlink = dip->di_nlink;
	ip->i_gen = dip->di_gen;
	ip->i_flags = dip->di_flags;
	ip->i_rdev = dip->di_rdev;
	ip->i_size = dip->di_size;
	ip->i_disk_size = dip->di_size;
	ip->i_nblocks = dip->di_nblocks;
	ts_from_disk(&ip->i_atime, &dip->di_atime);
	ts_from_disk(&ip->i_mtime, &dip->di_mtime);
	ts_from_disk(&ip->i_ctime, &dip->di_ctime);
	ts_from_disk(&ip->i_crtime, &dip->di_crtime);
	ip->i_next_unlinked = dip->di_next_unlinked;
	ip->i_xattr_blk = dip->di_xattr_blk;
	ip->i_df.if_format = dip->di_format;
}

static void dfs_inode_to_disk(const struct dfs_inode *ip, struct dfs_dinode *dip)
{
	dip->di_mode = ip->i_mode;
	dip->di_uid = ip->i_uid;
	dip->di_gid = ip->i_gid;
	dip->di_nlink = ip->i_nlink;
	dip->di_gen = ip->i_gen;
	dip->di_flags = ip->i_flags;
	dip->di_rdev = ip->i_rdev;
	dip->di_size = ip->i_disk_size;
	dip->di_nblocks = ip->i_nblocks;
	ts_to_disk(&dip->di_atime, &ip->i_atime);
	ts_to_disk(&dip->di_mtime, &ip->i_mtime);
	ts_to_disk(&dip->di_ctime, &ip->i_ctime);
	ts_to_disk(&dip->di_crtime, &ip->i_crtime);
	dip->di_next_unlinked = ip->i_next_unlinked;
	dip->di_xattr_blk = ip->i_xattr_blk;
}

/* ---- the cache ------------------------------------------------------------- */

static uint32_t dfs_ihash(uint64_t ino)
{
	return (uint32_t)((ino * 0x9e3779b97f4a7c15ull) >> (64 - DFS_ICACHE_HASH_BITS));
}

static struct dfs_inode *dfs_icache_find(struct dfs_mount *mp, uint64_t ino)
{
	struct dfs_inode *ip;

	for (ip = mp->m_icache->ic_hash[dfs_ihash(ino)]; ip; ip = ip->i_hnext)
		if (ip->i_ino == ino)
			return ip;
	return NULL;
}

static void dfs_icache_insert(struct dfs_mount *mp, struct dfs_inode *ip)
{
	struct dfs_inode **head = &mp->m_icache->ic_hash[dfs_ihash(ip->i_ino)];

	ip->i_hnext = *head;
	*head = ip;
	mp->m_icache->ic_cached++;
}

static void dfs_icache_remove(struct dfs_mount *mp, struct dfs_inode *ip)
{
	struct dfs_inode **pp = &mp->m_icache->ic_hash[dfs_ihash(ip->i_ino)];

	while (*pp && *pp != ip)
		pp = &(*pp)->i_hnext;
	assert(*pp == ip);
	*pp = ip->i_hnext;
	ip->i_hnext = NULL;
	mp->m_icache->ic_cached--;
}

static bool dfs_inode_on_lru(const struct dfs_mount *mp, const struct dfs_inode *ip)
{
	return ip->i_lru_prev || mp->m_icache->ic_lru_head == ip;
}

static void dfs_lru_del(struct dfs_mount *mp, struct dfs_inode *ip)
{
	struct dfs_icache *ic = mp->m_icache;

	if (ip->i_lru_prev)
		ip->i_lru_prev->i_lru_next = ip->i_lru_next;
	else
		ic->ic_lru_head = ip->i_lru_next;
	if (ip->i_lru_next)
		ip->i_lru_next->i_lru_prev = ip->i_lru_prev;
	else
		ic->ic_lru_tail = ip->i_lru_prev;
	ip->i_lru_prev = ip->i_lru_next = NULL;
	ic->ic_lru_count--;
}

static void dfs_lru_add(struct dfs_mount *mp, struct dfs_inode *ip)
{
	struct dfs_icache *ic = mp->m_icache;

	ip->i_lru_prev = NULL;
	ip->i_lru_next = ic->ic_lru_head;
	if (ic->ic_lru_head)
		ic->ic_lru_head->i_lru_prev = ip;
	else
		ic->ic_lru_tail = ip;
	ic->ic_lru_head = ip;
	ic->ic_lru_count++;
}

/* An atime change is not logged by itself; it goes to disk with the next
 * change of the inode, or here when the inode leaves the cache. */
static int dfs_inode_write_core(struct dfs_inode *ip)
{
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_trans *tp;
	int error;

	if (!ip->i_dirty_core || mp->m_readonly || mp->m_shutdown || ip->i_mode == 0)
		return 0;
	error = dfs_trans_alloc(mp, 0, &tp);
	if (error)
		return error;
	error = dfs_trans_log_inode(tp, ip);
	if (error) {
		dfs_trans_cancel(tp);
		return error;
	}
	return dfs_trans_commit(tp, false);
}

/* Free an in-core inode that is out of the hash and the LRU. */
/* Referenced once, by the caller. */
static struct dfs_inode *dfs_inode_alloc(struct dfs_mount *mp, uint64_t ino)
{
	struct dfs_inode *ip = calloc(1, sizeof(*ip));

	if (!ip)
		return NULL;
	if (pthread_rwlock_init(&ip->i_iolock, NULL)) {
		free(ip);
		return NULL;
	}
	ip->i_mount = mp;
	ip->i_ino = ino;
	ip->i_count = 1;
	return ip;
}

static void dfs_inode_free(struct dfs_inode *ip)
{
	dfs_bmap_destroy_fork(ip);
	pthread_rwlock_destroy(&ip->i_iolock);
	free(ip);
}

/* ---- the IO lock ------------------------------------------------------------- */

/* One class for every inode's IO lock, as lockdep sees XFS's IOLOCK. */
static RL_LOCK_CLASS(dfs_iolock);

void dfs_ilock_io(struct dfs_inode *ip, bool excl)
{
	rl_lock_acquire_inst(&dfs_iolock, ip);
	if (excl)
		pthread_rwlock_wrlock(&ip->i_iolock);
	else
		pthread_rwlock_rdlock(&ip->i_iolock);
}

void dfs_iunlock_io(struct dfs_inode *ip, bool excl)
{
	(void)excl;	/* one unlock for both modes; kept for the reader */
	rl_lock_release_inst(&dfs_iolock, ip);
	pthread_rwlock_unlock(&ip->i_iolock);
}

void dfs_ilock_io_mlocked(struct dfs_inode *ip, bool excl)
{
	struct dfs_mount *mp = ip->i_mount;

	pthread_mutex_unlock(&mp->m_lock);
	dfs_ilock_io(ip, excl);
	pthread_mutex_lock(&mp->m_lock);
}

/* dfs_forget's IO lock, taken for an inactivation, is released once the
 * inode's blocks are freed, before the in-core inode can go. */
static void dfs_iolock_inactive_done(struct dfs_inode *ip)
{
	if (!ip->i_iolock_inactive)
		return;
	*ip->i_iolock_inactive = false;
	ip->i_iolock_inactive = NULL;
	dfs_iunlock_io(ip, true);
}

/*
 * Out of the cache: its pages go first (written back if it still has
 * links: pagecache.c says so if that fails), then the atime. Both may look
 * the inode up again, so it is held meanwhile; if someone kept it, it stays
 * (unless force: unmount).
 */
static bool dfs_inode_evict(struct dfs_inode *ip, bool force)
{
	struct dfs_mount *mp = ip->i_mount;
	int error;

	ip->i_count++;
	dfs_pagecache_evict_inode(ip);
	error = dfs_inode_write_core(ip);
	if (error)
		dfs_warn(mp, "inode %" PRIu64 ": access time not written back: %s", ip->i_ino,
			 strerror(-error));
	if (--ip->i_count > 0 && !force)
		return false;
	dfs_icache_remove(mp, ip);
	mp->m_icache->ic_evictions++;
	dfs_inode_free(ip);
	return true;
}

static void dfs_lru_trim(struct dfs_mount *mp)
{
	struct dfs_icache *ic = mp->m_icache;

	while (ic->ic_lru_count > ic->ic_lru_max) {
		struct dfs_inode *ip = ic->ic_lru_tail;

		dfs_lru_del(mp, ip);
		dfs_inode_evict(ip, false);
	}
}

int dfs_icache_init(struct dfs_mount *mp)
{
	struct dfs_icache *ic = calloc(1, sizeof(*ic));

	if (!ic)
		return -ENOMEM;
	ic->ic_hash = calloc(1u << DFS_ICACHE_HASH_BITS, sizeof(*ic->ic_hash));
	if (!ic->ic_hash) {
		free(ic);
		return -ENOMEM;
	}
	ic->ic_lru_max = DFS_ICACHE_LRU_MAX;
	mp->m_icache = ic;
	return 0;
}

void dfs_icache_set_lru_max(struct dfs_mount *mp, uint64_t max)
{
	mp->m_icache->ic_lru_max = max;
	dfs_lru_trim(mp);
}

void dfs_icache_get_stats(struct dfs_mount *mp, struct dfs_icache_stats *st)
{
	const struct dfs_icache *ic = mp->m_icache;

	st->cached = ic->ic_cached;
	st->unreferenced = ic->ic_lru_count;
	st->hits = ic->ic_hits;
	st->misses = ic->ic_misses;
	st->evictions = ic->ic_evictions;
	st->inactivated = ic->ic_inactivated;
}

/*
 * Unmount: FUSE lookup references die with the mount (an unlinked inode
 * still looked up stays on its unlinked list and is freed by the next
 * mount, as XFS does); code references must all be gone.
 */
void dfs_icache_destroy(struct dfs_mount *mp)
{
	struct dfs_icache *ic = mp->m_icache;
	uint32_t b;

	if (!ic)
		return;
	for (b = 0; b < (1u << DFS_ICACHE_HASH_BITS); b++) {
		while (ic->ic_hash[b]) {
			struct dfs_inode *ip = ic->ic_hash[b];

			if (ip->i_count)
				dfs_warn(mp, "inode %" PRIu64 " still has %d references at unmount",
					 ip->i_ino, ip->i_count);
			if (dfs_inode_on_lru(mp, ip))
				dfs_lru_del(mp, ip);
			dfs_inode_evict(ip, true);
		}
	}
	free(ic->ic_hash);
	free(ic);
	mp->m_icache = NULL;
}

/* ---- iget / irele ------------------------------------------------------------ */

static int dfs_iread(struct dfs_mount *mp, struct dfs_trans *tp, uint64_t ino,
		     struct dfs_inode **ipp)
{
	struct dfs_inode *ip;
	struct dfs_dinode *dip;
	struct dfs_buf *bp;
	int error;

	/* Only the inobt can say whether ino is an inode: a garbage number
	 * must not make us read some data block as an inode cluster. */
	error = dfs_imap_check(mp, tp, ino);
	if (error < 0)
		return error;
	if (error == 0)
		return -ENOENT;

	error = dfs_imap_to_bp(mp, tp, ino, &bp, &dip);
	if (error)
		return error;
	error = dfs_dinode_verify(mp, ino, dip);
	if (error)
		goto out_relse;
	if (dip->di_mode == 0) {
		error = dfs_inode_corrupt(mp, ino, "free, but in use in the inode btree");
		goto out_relse;
	}
	ip = dfs_inode_alloc(mp, ino);
	if (!ip) {
		error = -ENOMEM;
		goto out_relse;
	}
	dfs_inode_from_disk(ip, dip);
	error = dfs_bmap_read_extents(tp, ip, dip);
	if (error) {
		dfs_inode_free(ip);
		goto out_relse;
	}
	*ipp = ip;
out_relse:
	dfs_inode_buf_relse(tp, bp);
	return error;
}

int dfs_iget(struct dfs_mount *mp, struct dfs_trans *tp, uint64_t ino, struct dfs_inode **ipp)
{
	struct dfs_inode *ip;
	int error;

	ip = dfs_icache_find(mp, ino);
	if (ip) {
		if (dfs_inode_on_lru(mp, ip))
			dfs_lru_del(mp, ip);
		ip->i_count++;
		mp->m_icache->ic_hits++;
		*ipp = ip;
		return 0;
	}
	mp->m_icache->ic_misses++;
	error = dfs_iread(mp, tp, ino, &ip);
	if (error)
		return error;
	dfs_icache_insert(mp, ip);
	*ipp = ip;
	return 0;
}

void dfs_ihold(struct dfs_inode *ip)
{
	assert(ip->i_count > 0);
	ip->i_count++;
}

/* Last reference gone: free the inode if it has no links (holding a
 * reference meanwhile, so that whatever inactivation looks up cannot
 * recurse into here), else keep it cached on the LRU. */
static void dfs_inode_unreferenced(struct dfs_inode *ip)
{
	struct dfs_mount *mp = ip->i_mount;

	if (ip->i_nlink == 0) {
		if (!mp->m_readonly && !mp->m_shutdown) {
			int error;

			ip->i_count++;
			error = dfs_inactive(ip);
			ip->i_count--;
			if (error)
				dfs_err(mp, "inode %" PRIu64 " could not be freed (%s); it stays on the unlinked list until the next mount",
					ip->i_ino, strerror(-error));
			else
				mp->m_icache->ic_inactivated++;
		}
		dfs_iolock_inactive_done(ip);
		dfs_inode_evict(ip, false);
		return;
	}
	dfs_iolock_inactive_done(ip);
	dfs_lru_add(mp, ip);
	dfs_lru_trim(mp);
}

void dfs_irele(struct dfs_inode *ip)
{
	assert(ip->i_count > 0);
	if (--ip->i_count > 0 || ip->i_nlookup > 0)
		return;
	dfs_inode_unreferenced(ip);
}

void dfs_iforget(struct dfs_inode *ip, uint64_t n)
{
	if (n > ip->i_nlookup) {
		dfs_warn(ip->i_mount, "inode %" PRIu64 ": forgetting %" PRIu64
			 " lookups of %" PRIu64, ip->i_ino, n, ip->i_nlookup);
		n = ip->i_nlookup;
	}
	if (n == 0)
		return;
	ip->i_nlookup -= n;
	if (ip->i_nlookup == 0 && ip->i_count == 0)
		dfs_inode_unreferenced(ip);
}

/* ---- creating and logging ---------------------------------------------------- */

static void dfs_now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

static uint32_t dfs_random_gen(uint64_t ino)
{
	uint32_t gen;

	if (getrandom(&gen, sizeof(gen), GRND_NONBLOCK) == sizeof(gen))
		return gen;
	return (uint32_t)(ino * 2654435761u) ^ (uint32_t)time(NULL);
}

int dfs_trans_log_inode(struct dfs_trans *tp, struct dfs_inode *ip)
{
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_dinode *dip;
	struct dfs_buf *bp;
	int error;

	error = dfs_imap_to_bp(mp, tp, ip->i_ino, &bp, &dip);
	if (error)
		return error;
	dfs_inode_to_disk(ip, dip);
	dfs_bmap_format_fork(ip, dip);
	/* Kept valid at all times, so that the inode can be read back from
	 * this buffer before the transaction commits. */
	dfs_dinode_calc_crc(dip);
	dfs_trans_log_buf(tp, bp);
	ip->i_dirty_core = false;
	return 0;
}

void dfs_trans_ichgtime(struct dfs_trans *tp, struct dfs_inode *ip, int flags)
{
	struct timespec now;

	dfs_now(&now);
	if (flags & DFS_ICHG_MOD)
		ip->i_mtime = now;
	if (flags & DFS_ICHG_CHG)
		ip->i_ctime = now;
	if (flags & DFS_ICHG_ACC)
		ip->i_atime = now;
	ip->i_dirty_core = true;
}

static int dfs_iunlink(struct dfs_trans *tp, struct dfs_inode *ip);

int dfs_icreate(struct dfs_trans *tp, struct dfs_inode *parent, uint32_t mode, uint32_t nlink,
		uint32_t rdev, uint32_t uid, uint32_t gid, struct dfs_inode **ipp)
{
	struct dfs_mount *mp = dfs_trans_mount(tp);
	struct dfs_inode *ip;
	struct dfs_dinode *dip;
	struct dfs_buf *bp;
	uint64_t ino;
	int error;

	if (!dfs_mode_valid(mode))
		return -EINVAL;
	error = dfs_dialloc(tp, parent ? parent->i_ino : DFS_NULLINO, mode, &ino);
	if (error)
		return error;
	if (dfs_icache_find(mp, ino))
		return dfs_inode_corrupt(mp, ino, "allocated, but still cached in use");
	error = dfs_imap_to_bp(mp, tp, ino, &bp, &dip);
	if (error)
		return error;
	error = dfs_dinode_verify(mp, ino, dip);
	if (error)
		return error;
	if (dip->di_mode)
		return dfs_inode_corrupt(mp, ino, "free in the inode btree, but in use");

	ip = dfs_inode_alloc(mp, ino);
	if (!ip)
		return -ENOMEM;
	ip->i_mode = mode;
	ip->i_uid = uid;
	ip->i_gid = gid;
	ip->i_nlink = nlink;
	ip->i_rdev = rdev;
	ip->i_gen = dfs_random_gen(ino);
	dfs_now(&ip->i_crtime);
	ip->i_atime = ip->i_mtime = ip->i_ctime = ip->i_crtime;
	ip->i_next_unlinked = DFS_NULLINO;
	ip->i_df.if_format = DFS_DINODE_FMT_EXTENTS;
	dfs_icache_insert(mp, ip);
	/* O_TMPFILE: born unlinked, so a crash frees it */
	if (nlink == 0)
		error = dfs_iunlink(tp, ip);
	else
		error = dfs_trans_log_inode(tp, ip);
	if (error) {
		dfs_icache_remove(mp, ip);
		dfs_inode_free(ip);
		return error;
	}
	*ipp = ip;
	return 0;
}

/* ---- link counts and the unlinked list ------------------------------------------ */

static int dfs_agi_unlinked_check(struct dfs_mount *mp, uint32_t agno, uint64_t ino)
{
	char why[96];

	if (ino == DFS_NULLINO ||
	    (dfs_ino_to_fsb(mp, ino) < mp->m_dblocks && dfs_ino_to_agno(mp, ino) == agno))
		return 0;
	snprintf(why, sizeof(why), "unlinked list points at inode %" PRIu64, ino);
	return dfs_corrupt(mp, "AGI", dfs_agb_to_fsb(mp, agno, DFS_AGI_AGBNO), why);
}

/* Push ip on its AGI's unlinked list (XFS's xfs_iunlink; one list head per
 * AG, where XFS hashes into 64). */
static int dfs_iunlink(struct dfs_trans *tp, struct dfs_inode *ip)
{
	struct dfs_mount *mp = ip->i_mount;
	uint32_t agno = dfs_ino_to_agno(mp, ip->i_ino);
	struct dfs_buf *agbp;
	struct dfs_agi *agi;
	int error;

	error = dfs_read_agi(mp, tp, agno, &agbp);
	if (error)
		return error;
	agi = agbp->b_addr;
	error = dfs_agi_unlinked_check(mp, agno, agi->unlinked);
	if (error)
		return error;
	ip->i_next_unlinked = agi->unlinked;
	agi->unlinked = ip->i_ino;
	dfs_trans_log_buf(tp, agbp);
	return dfs_trans_log_inode(tp, ip);
}

/*
 * Take ip off its AGI's unlinked list. The list is singly linked, so the
 * predecessor is found by walking from the head; a predecessor that is not
 * cached is changed in its cluster buffer directly.
 */
static int dfs_iunlink_remove(struct dfs_trans *tp, struct dfs_inode *ip)
{
	struct dfs_mount *mp = ip->i_mount;
	uint32_t agno = dfs_ino_to_agno(mp, ip->i_ino);
	struct dfs_buf *agbp;
	struct dfs_agi *agi;
	uint64_t prev, steps;
	int error;

	error = dfs_read_agi(mp, tp, agno, &agbp);
	if (error)
		return error;
	agi = agbp->b_addr;
	if (agi->unlinked == ip->i_ino) {
		agi->unlinked = ip->i_next_unlinked;
		dfs_trans_log_buf(tp, agbp);
		goto done;
	}

	prev = agi->unlinked;
	for (steps = 0;; steps++) {
		struct dfs_inode *pip;
		struct dfs_dinode *dip;
		struct dfs_buf *bp;
		uint64_t next;

		error = dfs_agi_unlinked_check(mp, agno, prev);
		if (error)
			return error;
		if (prev == DFS_NULLINO || steps > agi->count)
			return dfs_inode_corrupt(mp, ip->i_ino, "not on its AGI's unlinked list");
		pip = dfs_icache_find(mp, prev);
		if (pip) {
			if (pip->i_next_unlinked == ip->i_ino) {
				pip->i_next_unlinked = ip->i_next_unlinked;
				error = dfs_trans_log_inode(tp, pip);
				if (error)
					return error;
				break;
			}
			prev = pip->i_next_unlinked;
			continue;
		}
		error = dfs_imap_to_bp(mp, tp, prev, &bp, &dip);
		if (error)
			return error;
		error = dfs_dinode_verify(mp, prev, dip);
		if (error)
			return error;
		next = dip->di_next_unlinked;
		if (next == ip->i_ino) {
			dip->di_next_unlinked = ip->i_next_unlinked;
			dfs_dinode_calc_crc(dip);
			dfs_trans_log_buf(tp, bp);
			break;
		}
		prev = next;
	}
done:
	ip->i_next_unlinked = DFS_NULLINO;
	return dfs_trans_log_inode(tp, ip);
}

int dfs_droplink(struct dfs_trans *tp, struct dfs_inode *ip)
{
	if (ip->i_nlink == 0)
		return dfs_inode_corrupt(ip->i_mount, ip->i_ino, "dropping a link of an inode with none");
	dfs_trans_ichgtime(tp, ip, DFS_ICHG_CHG);
	if (--ip->i_nlink == 0)
		return dfs_iunlink(tp, ip);
	return dfs_trans_log_inode(tp, ip);
}

int dfs_bumplink(struct dfs_trans *tp, struct dfs_inode *ip)
{
	int error;

	if (ip->i_nlink == UINT32_MAX)
		return -EMLINK;
	dfs_trans_ichgtime(tp, ip, DFS_ICHG_CHG);
	if (ip->i_nlink++ == 0) {
		/* linking an unlinked (O_TMPFILE) inode back in */
		error = dfs_iunlink_remove(tp, ip);
		if (error)
			return error;
	}
	return dfs_trans_log_inode(tp, ip);
}

/* ---- freeing --------------------------------------------------------------------- */

/* The inode itself, once its blocks are gone (XFS's xfs_ifree): off the
 * unlinked list, dinode free, inobt bit free; one transaction. */
static int dfs_ifree(struct dfs_inode *ip)
{
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_trans *tp;
	struct dfs_dinode *dip;
	struct dfs_buf *bp;
	uint32_t gen;
	int error;

	error = dfs_trans_alloc(mp, 0, &tp);
	if (error)
		return error;
	error = dfs_iunlink_remove(tp, ip);
	if (error)
		goto out_cancel;
	error = dfs_imap_to_bp(mp, tp, ip->i_ino, &bp, &dip);
	if (error)
		goto out_cancel;
	gen = dip->di_gen;
	memset((char *)dip + offsetof(struct dfs_dinode, di_mode), 0,
	       DFS_INODE_SIZE - offsetof(struct dfs_dinode, di_mode));
	dip->di_format = DFS_DINODE_FMT_EXTENTS;
	dip->di_gen = gen + 1;
	dip->di_next_unlinked = DFS_NULLINO;
	dfs_dinode_calc_crc(dip);
	dfs_trans_log_buf(tp, bp);
	error = dfs_difree(tp, ip->i_ino);
	if (error)
		goto out_cancel;
	ip->i_mode = 0;
	ip->i_dirty_core = false;
	return dfs_trans_commit(tp, false);
out_cancel:
	dfs_trans_cancel(tp);
	return error;
}

int dfs_inactive(struct dfs_inode *ip)
{
	struct dfs_mount *mp = ip->i_mount;
	int error;

	assert(ip->i_nlink == 0);
	if (mp->m_readonly || mp->m_shutdown)
		return 0;
	/* with no links left, dirty pages are dropped, not written */
	dfs_pagecache_evict_inode(ip);
	if (ip->i_df.if_format != DFS_DINODE_FMT_LOCAL &&
	    (ip->i_nblocks || ip->i_df.if_nextents || ip->i_delayed_blks || ip->i_size)) {
		error = dfs_itruncate_extents(ip, 0);
		if (error)
			return error;
	}
	if (ip->i_xattr_blk) {
		error = dfs_attr_inactive(ip);
		if (error)
			return error;
	}
	if (ip->i_nblocks)
		dfs_warn(mp, "inode %" PRIu64 " is freed with %" PRIu64 " blocks still counted",
			 ip->i_ino, ip->i_nblocks);
	return dfs_ifree(ip);
}

/*
 * At mount (XFS's xlog_recover_process_iunlinks): inodes still on an
 * unlinked list lost their last link and then their last reference to a
 * crash or an unmount; free them now. A list that cannot be processed is
 * reported and left alone: its inodes are leaked, not lost, and fsck finds
 * them.
 */
int dfs_iunlink_recover(struct dfs_mount *mp)
{
	uint32_t agno;
	int error;

	for (agno = 0; agno < mp->m_agcount; agno++) {
		uint64_t prev = DFS_NULLINO;

		for (;;) {
			struct dfs_inode *ip;
			struct dfs_buf *agbp;
			uint64_t head;

			error = dfs_read_agi(mp, NULL, agno, &agbp);
			if (error)
				return error;
			head = ((struct dfs_agi *)agbp->b_addr)->unlinked;
			dfs_buf_relse(agbp);
			if (head == DFS_NULLINO)
				break;
			if (head == prev) {
				dfs_err(mp, "AG %u: unlinked inode %" PRIu64 " could not be freed; leaving the rest of the list",
					agno, head);
				break;
			}
			prev = head;
			if (dfs_agi_unlinked_check(mp, agno, head))
				break;
			error = dfs_iget(mp, NULL, head, &ip);
			if (error) {
				dfs_err(mp, "AG %u: unlinked inode %" PRIu64 " cannot be read (%s); leaving the list",
					agno, head, strerror(-error));
				break;
			}
			if (ip->i_nlink) {
				dfs_inode_corrupt(mp, head, "on the unlinked list with links");
				dfs_irele(ip);
				break;
			}
			dfs_irele(ip);
		}
	}
	return 0;
}
