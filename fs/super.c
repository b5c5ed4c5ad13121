/* SPDX-License-Identifier: MIT */
/*
 * Mount, unmount, sync, statfs and the superblock (XFS's xfs_mount.c and
 * xfs_super.c). Mount order matters: the log is replayed before anything
 * reads AG headers or inodes, because until then the metadata in place may
 * be older than what the log says.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "blkdev.h"
#include "buf.h"
#include "crc.h"
#include "deepfs.h"
#include "inode.h"
#include "log.h"
#include "mount.h"
#include "msg.h"
#include "pagecache.h"
#include "trans.h"

#define DFS_DEFAULT_BUFCACHE	(16ull << 20)
#define DFS_DEFAULT_PAGECACHE	(64ull << 20)

static int ilog2_exact(uint32_t v)
{
	if (v == 0 || (v & (v - 1)))
		return -1;
	return __builtin_ctz(v);
}

/*
 * Geometry checks of a superblock, shared by mount, the superblock
 * verifier and fsck. Each failure names the field, so that a user who points
 * deepfs at the wrong file learns what is wrong with it.
 */
int dfs_sb_verify(const struct dfs_mount *mp, const struct dfs_dsb *sb, uint64_t blkno,
		  uint64_t devsize)
{
	char why[160];

	if (sb->hdr.magic != DFS_SB_MAGIC) {
		snprintf(why, sizeof(why), "not a deepfs superblock (magic 0x%08x, expected 0x%08x)",
			 sb->hdr.magic, DFS_SB_MAGIC);
		goto bad;
	}
	if (sb->version != DFS_VERSION) {
		snprintf(why, sizeof(why), "unsupported format version %u (this build reads %u)",
			 sb->version, DFS_VERSION);
		goto bad;
	}
	if (ilog2_exact(sb->blocksize) < 0 || sb->blocksize < DFS_MIN_BLOCKSIZE ||
	    sb->blocksize > DFS_MAX_BLOCKSIZE || (int)sb->blocklog != ilog2_exact(sb->blocksize)) {
		snprintf(why, sizeof(why), "bad block size %u (log %u)", sb->blocksize,
			 sb->blocklog);
		goto bad;
	}
	if (!dfs_cksum_verify(sb, sb->blocksize, offsetof(struct dfs_blkhdr, crc))) {
		snprintf(why, sizeof(why), "CRC mismatch");
		goto bad;
	}
	if (sb->hdr.blkno != blkno) {
		snprintf(why, sizeof(why), "records block %" PRIu64 " as its address, read from %" PRIu64,
			 sb->hdr.blkno, blkno);
		goto bad;
	}
	if (sb->features) {
		snprintf(why, sizeof(why), "unknown feature bits 0x%" PRIx64, sb->features);
		goto bad;
	}
	if (sb->agcount == 0 || sb->agblocks < 64 || sb->dblocks == 0 ||
	    (uint64_t)sb->agblocks * (sb->agcount - 1) >= sb->dblocks ||
	    (uint64_t)sb->agblocks * sb->agcount < sb->dblocks) {
		snprintf(why, sizeof(why), "inconsistent geometry: %" PRIu64 " blocks, %u AGs of %u",
			 sb->dblocks, sb->agcount, sb->agblocks);
		goto bad;
	}
	if (sb->inodesize != DFS_INODE_SIZE || sb->inopblock != sb->blocksize / DFS_INODE_SIZE ||
	    (1u << sb->inopblog) != sb->inopblock) {
		snprintf(why, sizeof(why), "bad inode geometry (size %u, %u per block)",
			 sb->inodesize, sb->inopblock);
		goto bad;
	}
	if (sb->logblocks < 64 || sb->logstart < DFS_AG_FIRST_FREE ||
	    sb->logstart + sb->logblocks > sb->agblocks) {
		snprintf(why, sizeof(why), "log region %" PRIu64 "+%u is outside AG 0", sb->logstart,
			 sb->logblocks);
		goto bad;
	}
	if (devsize && sb->dblocks > devsize / sb->blocksize) {
		snprintf(why, sizeof(why),
			 "image is truncated: the superblock says %" PRIu64 " bytes, the device has %" PRIu64,
			 sb->dblocks * sb->blocksize, devsize);
		goto bad;
	}
	return 0;
bad:
	return dfs_corrupt(mp, "superblock", blkno, why);
}

static int dfs_sb_verify_read(struct dfs_buf *bp)
{
	return dfs_sb_verify(bp->b_mount, bp->b_addr, bp->b_blkno, 0);
}

static int dfs_sb_verify_write(struct dfs_buf *bp)
{
	dfs_blkhdr_update_crc(bp);
	return 0;
}

const struct dfs_buf_ops dfs_sb_buf_ops = {
	.name = "superblock",
	.magic = DFS_SB_MAGIC,
	.verify_read = dfs_sb_verify_read,
	.verify_write = dfs_sb_verify_write,
};

int dfs_mod_fdblocks(struct dfs_mount *mp, int64_t delta)
{
	if (delta < 0 && mp->m_fdblocks < (uint64_t)-delta)
		return -ENOSPC;
	mp->m_fdblocks += delta;
	return 0;
}

/* The primary superblock is read raw first: its block size says how big a
 * block is, so the buffer cache cannot be set up before it is known. */
static int dfs_read_sb(struct dfs_mount *mp)
{
	uint64_t devsize = dfs_blkdev_size(mp->m_bdev);
	struct dfs_dsb *sb;
	void *blk;
	int error;

	if (devsize < DFS_MIN_BLOCKSIZE) {
		dfs_err(mp, "device is %" PRIu64 " bytes, too small to hold a deepfs superblock",
			devsize);
		return -EFSCORRUPTED;
	}
	blk = dfs_bio_alloc_buf(DFS_MAX_BLOCKSIZE);
	if (!blk)
		return -ENOMEM;
	error = dfs_blkdev_rw(mp->m_bdev, DFS_IO_READ, DFS_IOK_SB, 0, blk,
			      devsize < DFS_MAX_BLOCKSIZE ? DFS_MIN_BLOCKSIZE : DFS_MAX_BLOCKSIZE);
	if (error) {
		dfs_err(mp, "cannot read the superblock: %s", strerror(-error));
		goto out;
	}
	sb = blk;
	if (sb->hdr.magic == DFS_SB_MAGIC && sb->blocksize <= DFS_MAX_BLOCKSIZE &&
	    sb->blocksize > devsize) {
		dfs_err(mp, "image is truncated: %" PRIu64 " bytes, smaller than one block", devsize);
		error = -EFSCORRUPTED;
		goto out;
	}
	error = dfs_sb_verify(mp, sb, 0, devsize);
	if (error)
		goto out;
	memcpy(&mp->m_sb, sb, sizeof(*sb));
	mp->m_blocksize = sb->blocksize;
	mp->m_blocklog = sb->blocklog;
	mp->m_agblocks = sb->agblocks;
	mp->m_agcount = sb->agcount;
	mp->m_dblocks = sb->dblocks;
	mp->m_inopblock = sb->inopblock;
	mp->m_inopblog = sb->inopblog;
out:
	free(blk);
	return error;
}

static void dfs_mount_free(struct dfs_mount *mp)
{
	if (mp->m_bdev)
		dfs_blkdev_close(mp->m_bdev);
	pthread_mutex_destroy(&mp->m_lock);
	pthread_cond_destroy(&mp->m_wbext_wait);
	free(mp->m_iolog_path);
	free(mp->m_fsname);
	free(mp);
}

/*
 * A mount that fails once the log is mounted: dfs_log_mount has marked the
 * log dirty (records may follow) and may have replayed it, and unlinked-list
 * recovery may have committed transactions. Leaving it at that would make a
 * clean filesystem look dirty to the next mount and to fsck, for no record
 * at all. Unless the filesystem is shut down (then whatever was committed
 * must stay in the log for the next mount), checkpoint and mark the log
 * clean, as an unmount does.
 */
static void dfs_mount_fail_log(struct dfs_mount *mp)
{
	int error;

	if (mp->m_readonly || mp->m_shutdown) {
		dfs_log_abort(mp);
		return;
	}
	error = dfs_log_unmount(mp);
	if (error) {
		dfs_err(mp, "failed mount: the log could not be checkpointed (%s); it will be replayed at the next mount",
			strerror(-error));
		dfs_log_abort(mp);
	}
}

int dfs_mount_flags(const char *path, const struct dfs_mount_opts *opts, unsigned flags,
		    struct dfs_mount **mpp)
{
	static const struct dfs_mount_opts defaults;
	struct dfs_mount *mp;
	int error;

	if (!opts)
		opts = &defaults;
	mp = calloc(1, sizeof(*mp));
	if (!mp)
		return -ENOMEM;
	mp->m_fsname = strdup(path);
	if (opts->iolog_path)
		mp->m_iolog_path = strdup(opts->iolog_path);
	mp->m_readonly = opts->readonly;
	pthread_mutex_init(&mp->m_lock, NULL);
	pthread_cond_init(&mp->m_wbext_wait, NULL);
	if (!mp->m_fsname || (opts->iolog_path && !mp->m_iolog_path)) {
		dfs_mount_free(mp);
		return -ENOMEM;
	}

	error = dfs_blkdev_open(path, opts->readonly, &mp->m_bdev);
	if (error) {
		dfs_err(mp, "cannot open: %s", strerror(-error));
		dfs_mount_free(mp);
		return error;
	}
	if (mp->m_iolog_path)
		dfs_blkdev_iolog_enable(mp->m_bdev, true);
	error = dfs_read_sb(mp);
	if (error)
		goto out_free;
	error = dfs_bcache_init(mp, opts->bufcache_bytes ? opts->bufcache_bytes
							 : DFS_DEFAULT_BUFCACHE);
	if (error)
		goto out_free;
	pthread_mutex_lock(&mp->m_lock);
	error = dfs_log_mount(mp);
	if (error)
		goto out_unlock;
	error = dfs_perag_init(mp);
	if (error)
		goto out_log;
	error = dfs_icache_init(mp);
	if (error)
		goto out_perag;
	error = dfs_pagecache_init(mp, opts->pagecache_bytes ? opts->pagecache_bytes
							     : DFS_DEFAULT_PAGECACHE);
	if (error)
		goto out_icache;
	if (!(flags & DFS_MOUNT_MKFS)) {
		struct dfs_inode *rip;

		if (!mp->m_readonly) {
			error = dfs_iunlink_recover(mp);
			if (error)
				goto out_pagecache;
		}
		error = dfs_iget(mp, NULL, mp->m_sb.rootino, &rip);
		if (error) {
			dfs_err(mp, "cannot read the root directory inode %" PRIu64 ": %s",
				mp->m_sb.rootino, strerror(-error));
			goto out_pagecache;
		}
		if (!dfs_isdir(rip)) {
			dfs_err(mp, "root inode %" PRIu64 " is not a directory", mp->m_sb.rootino);
			dfs_irele(rip);
			error = -EFSCORRUPTED;
			goto out_pagecache;
		}
		dfs_irele(rip);
	}
	pthread_mutex_unlock(&mp->m_lock);
	*mpp = mp;
	return 0;

out_pagecache:
	dfs_pagecache_destroy(mp);
out_icache:
	dfs_icache_destroy(mp);
out_perag:
	/* the log before the perag, as at unmount: the checkpoint's committed
	 * callbacks (busy extents) may still reach it */
	dfs_mount_fail_log(mp);
	dfs_perag_destroy(mp);
	goto out_unlock;
out_log:
	dfs_mount_fail_log(mp);
out_unlock:
	pthread_mutex_unlock(&mp->m_lock);
	dfs_bcache_destroy(mp);
out_free:
	dfs_mount_free(mp);
	return error;
}

int dfs_mount(const char *path, const struct dfs_mount_opts *opts, struct dfs_mount **mpp)
{
	return dfs_mount_flags(path, opts, 0, mpp);
}

/* Everything dirty goes to disk and the log is forced; callers hold m_lock. */
static int dfs_sync_locked(struct dfs_mount *mp)
{
	int error;

	if (mp->m_readonly)
		return 0;
	error = dfs_pagecache_sync(mp);
	if (error)
		return error;
	return dfs_log_force(mp);
}

int dfs_sync(struct dfs_mount *mp)
{
	int error;

	pthread_mutex_lock(&mp->m_lock);
	error = dfs_sync_locked(mp);
	pthread_mutex_unlock(&mp->m_lock);
	return error;
}

int dfs_unmount(struct dfs_mount *mp)
{
	int error, error2 = 0;

	pthread_mutex_lock(&mp->m_lock);
	error = dfs_sync_locked(mp);
	if (error)
		dfs_err(mp, "writing back data at unmount failed: %s", strerror(-error));
	dfs_pagecache_destroy(mp);
	dfs_icache_destroy(mp);
	if (!mp->m_readonly) {
		error2 = mp->m_shutdown ? -EIO : dfs_log_unmount(mp);
		if (error2) {
			dfs_err(mp, "unmount: the log could not be checkpointed (%s); it will be replayed at the next mount",
				strerror(-error2));
			dfs_log_abort(mp);
		}
	} else {
		dfs_log_abort(mp);
	}
	dfs_perag_destroy(mp);
	pthread_mutex_unlock(&mp->m_lock);
	dfs_bcache_destroy(mp);
	if (mp->m_iolog_path) {
		int e = dfs_blkdev_iolog_save(mp->m_bdev, mp->m_iolog_path);

		if (e)
			dfs_err(mp, "cannot save the IO log to %s: %s", mp->m_iolog_path, strerror(-e));
	}
	dfs_mount_free(mp);
	return error ? error : error2;
}

uint64_t dfs_root_ino(struct dfs_mount *mp)
{
	return mp->m_sb.rootino;
}

int dfs_statfs(struct dfs_mount *mp, struct dfs_statfs *sf)
{
	uint64_t used_inodes, room;

	pthread_mutex_lock(&mp->m_lock);
	memset(sf, 0, sizeof(*sf));
	sf->bsize = mp->m_blocksize;
	sf->blocks = mp->m_dblocks - mp->m_sb.logblocks;
	sf->bfree = mp->m_fdblocks;
	sf->bavail = mp->m_fdblocks;
	/* As XFS: inodes are allocated on demand, so the limit is what free
	 * space could still hold. */
	used_inodes = mp->m_icount - mp->m_ifree;
	room = mp->m_fdblocks << mp->m_inopblog;
	sf->files = mp->m_icount + room;
	sf->ffree = sf->files - used_inodes;
	sf->namelen = DFS_MAXNAMELEN;
	pthread_mutex_unlock(&mp->m_lock);
	return 0;
}
