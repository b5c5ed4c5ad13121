/* SPDX-License-Identifier: MIT */
/*
 * mkfs (mkfs.xfs's job): choose the geometry, write the superblock, every
 * AG's headers and empty trees, and an empty log; then mount the new
 * filesystem and make the root directory through the ordinary code paths
 * (as mkfs.xfs's protofile does through libxfs), so that mkfs exercises the
 * same allocator and transactions as everything else.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "blkdev.h"
#include "buf.h"
#include "crc.h"
#include "deepfs.h"
#include "log.h"
#include "mount.h"
#include "msg.h"
#include "trans.h"

/* dir.c: makes the root directory in a freshly made filesystem. */
int dfs_mkfs_rootdir(struct dfs_mount *mp, uint64_t *rootino);

#define DFS_MKFS_MIN_BYTES	(8ull << 20)
#define DFS_MAX_AGBLOCKS	(1u << 30)

static int log2_ceil(uint64_t v)
{
	int l = 0;

	while ((1ull << l) < v)
		l++;
	return l;
}

/* Creates a missing image file and sizes it; a block device keeps its size. */
static int dfs_mkfs_prepare_target(const char *path, uint64_t want, uint64_t *size)
{
	struct stat st;
	int fd;

	if (stat(path, &st) == 0 && S_ISBLK(st.st_mode)) {
		if (want) {
			fprintf(stderr, "mkfs: %s is a block device: --size does not apply\n", path);
			return -EINVAL;
		}
		*size = 0;	/* the block layer reads it */
		return 0;
	}
	fd = open(path, O_RDWR | O_CREAT, 0644);
	if (fd < 0) {
		int error = -errno;

		fprintf(stderr, "mkfs: cannot create %s: %s\n", path, strerror(errno));
		return error;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "mkfs: %s is neither a regular file nor a block device\n", path);
		close(fd);
		return -EINVAL;
	}
	if (want == 0 && st.st_size == 0) {
		fprintf(stderr, "mkfs: %s is empty: give a size\n", path);
		close(fd);
		return -EINVAL;
	}
	if (want && ftruncate(fd, (off_t)want) < 0) {
		int error = -errno;

		fprintf(stderr, "mkfs: cannot size %s to %" PRIu64 " bytes: %s\n", path, want,
			strerror(errno));
		close(fd);
		return error;
	}
	*size = want ? want : (uint64_t)st.st_size;
	close(fd);
	return 0;
}

/* Fills mp->m_sb and the mount's geometry fields from the options. */
static int dfs_mkfs_geometry(struct dfs_mount *mp, uint64_t size, const struct dfs_mkfs_opts *opts)
{
	struct dfs_dsb *sb = &mp->m_sb;
	uint32_t bs = opts->blocksize ? opts->blocksize : 4096;
	uint64_t dblocks;
	uint32_t agcount, agblocks, logblocks, reserved;

	if (bs < DFS_MIN_BLOCKSIZE || bs > DFS_MAX_BLOCKSIZE || (bs & (bs - 1))) {
		fprintf(stderr, "mkfs: block size %u is not a power of two from %u to %u\n", bs,
			DFS_MIN_BLOCKSIZE, DFS_MAX_BLOCKSIZE);
		return -EINVAL;
	}
	if (size < DFS_MKFS_MIN_BYTES) {
		fprintf(stderr, "mkfs: %" PRIu64 " bytes is too small (at least %llu MiB)\n", size,
			DFS_MKFS_MIN_BYTES >> 20);
		return -EINVAL;
	}
	dblocks = size / bs;
	agcount = opts->agcount;
	if (!agcount) {
		/* XFS's single-disk default is 4 AGs; small images get fewer so
		 * that each AG still has room to work in. */
		agcount = size >= (64ull << 20) ? 4 : size >= (16ull << 20) ? 2 : 1;
		while (dblocks / agcount > DFS_MAX_AGBLOCKS)
			agcount++;
	}
	agblocks = (uint32_t)(dblocks / agcount);
	logblocks = opts->logblocks;
	if (!logblocks) {
		uint64_t l = dblocks / 64;

		logblocks = (uint32_t)(l < 512 ? 512 : l > 32768 ? 32768 : l);
	}
	reserved = DFS_AG_FIRST_FREE + DFS_AGFL_RESERVE;
	if (agcount == 0 || dblocks / agcount > DFS_MAX_AGBLOCKS) {
		fprintf(stderr, "mkfs: %u AGs do not fit %" PRIu64 " blocks\n", agcount, dblocks);
		return -EINVAL;
	}
	if (agblocks < reserved + 64 || agblocks < reserved + logblocks + 128) {
		fprintf(stderr,
			"mkfs: %u AGs of %u blocks leave no room for the log (%u blocks) and data: use fewer AGs or a larger size\n",
			agcount, agblocks, logblocks);
		return -EINVAL;
	}
	if (logblocks < 64) {
		fprintf(stderr, "mkfs: log of %u blocks is too small (at least 64)\n", logblocks);
		return -EINVAL;
	}

	memset(sb, 0, sizeof(*sb));
	sb->hdr.magic = DFS_SB_MAGIC;
	sb->hdr.blkno = 0;
	if (getrandom(sb->hdr.uuid, sizeof(sb->hdr.uuid), 0) != sizeof(sb->hdr.uuid))
		return -errno;
	sb->version = DFS_VERSION;
	sb->blocksize = bs;
	sb->blocklog = (uint32_t)__builtin_ctz(bs);
	sb->agcount = agcount;
	sb->agblocks = agblocks;
	sb->agblklog = (uint32_t)log2_ceil(agblocks);
	sb->dblocks = (uint64_t)agblocks * agcount;
	sb->rootino = DFS_NULLINO;
	sb->logstart = reserved;	/* AG 0, right after the headers and the AGFL's blocks */
	sb->logblocks = logblocks;
	sb->inodesize = DFS_INODE_SIZE;
	sb->inopblock = bs / DFS_INODE_SIZE;
	sb->inopblog = (uint32_t)__builtin_ctz(sb->inopblock);
	sb->mkfs_time = (uint64_t)time(NULL);
	if (opts->label)
		snprintf(sb->label, sizeof(sb->label), "%s", opts->label);

	mp->m_blocksize = bs;
	mp->m_blocklog = sb->blocklog;
	mp->m_agblocks = agblocks;
	mp->m_agcount = agcount;
	mp->m_dblocks = sb->dblocks;
	mp->m_inopblock = sb->inopblock;
	mp->m_inopblog = sb->inopblog;
	return 0;
}

/* Superblock copy for AG agno: the same contents, its own address. */
static int dfs_mkfs_write_sb(struct dfs_mount *mp, const struct dfs_dsb *sb, uint32_t agno)
{
	uint64_t blkno = dfs_agb_to_fsb(mp, agno, DFS_SB_AGBNO);
	struct dfs_dsb *blk = dfs_bio_alloc_buf(mp->m_blocksize);
	int error;

	if (!blk)
		return -ENOMEM;
	memcpy(blk, sb, sizeof(*sb));
	blk->hdr.blkno = blkno;
	dfs_cksum_update(blk, mp->m_blocksize, offsetof(struct dfs_blkhdr, crc));
	error = dfs_blkdev_rw(mp->m_bdev, DFS_IO_WRITE, DFS_IOK_SB, dfs_fsb_to_bytes(mp, blkno),
			      blk, mp->m_blocksize);
	free(blk);
	return error;
}

/* An empty log: zeroed, with a clean log superblock whose tail is LSN 1. */
static int dfs_mkfs_write_log(struct dfs_mount *mp)
{
	const uint32_t chunk_blocks = (1u << 20) >> mp->m_blocklog;
	uint64_t start = mp->m_sb.logstart;
	struct dfs_loghdr *lh;
	void *zero;
	uint32_t done;
	int error = 0;

	zero = dfs_bio_alloc_buf(1u << 20);
	if (!zero)
		return -ENOMEM;
	for (done = 0; done < mp->m_sb.logblocks && !error; done += chunk_blocks) {
		uint32_t n = mp->m_sb.logblocks - done;

		if (n > chunk_blocks)
			n = chunk_blocks;
		error = dfs_blkdev_rw(mp->m_bdev, DFS_IO_WRITE, DFS_IOK_LOG,
				      dfs_fsb_to_bytes(mp, start + done), zero,
				      (size_t)n << mp->m_blocklog);
	}
	if (error)
		goto out;
	lh = zero;
	memset(lh, 0, mp->m_blocksize);
	lh->hdr.magic = DFS_LOGHDR_MAGIC;
	lh->hdr.blkno = start;
	memcpy(lh->hdr.uuid, mp->m_sb.hdr.uuid, sizeof(lh->hdr.uuid));
	lh->tail_lsn = 1;
	lh->tail_block = 1;
	lh->clean = 1;
	dfs_cksum_update(lh, mp->m_blocksize, offsetof(struct dfs_blkhdr, crc));
	error = dfs_blkdev_rw(mp->m_bdev, DFS_IO_WRITE, DFS_IOK_LOG, dfs_fsb_to_bytes(mp, start),
			      lh, mp->m_blocksize);
out:
	free(zero);
	return error;
}

/* Writes everything but the root directory. */
static int dfs_mkfs_write_empty(const char *path, uint64_t size, const struct dfs_mkfs_opts *opts,
				struct dfs_dsb *sbout)
{
	struct dfs_mount *mp;
	uint32_t agno;
	int error;

	mp = calloc(1, sizeof(*mp));
	if (!mp)
		return -ENOMEM;
	mp->m_fsname = (char *)path;
	error = dfs_blkdev_open(path, false, &mp->m_bdev);
	if (error) {
		fprintf(stderr, "mkfs: cannot open %s: %s\n", path, strerror(-error));
		free(mp);
		return error;
	}
	if (!size)
		size = dfs_blkdev_size(mp->m_bdev);
	error = dfs_mkfs_geometry(mp, size, opts);
	if (error)
		goto out;
	error = dfs_mkfs_write_sb(mp, &mp->m_sb, 0);
	for (agno = 0; !error && agno < mp->m_agcount; agno++) {
		uint32_t reserved = DFS_AG_FIRST_FREE + DFS_AGFL_RESERVE;

		if (agno == 0)
			reserved = (uint32_t)(mp->m_sb.logstart + mp->m_sb.logblocks);
		error = dfs_ag_init_headers(mp, agno, mp->m_agblocks, reserved);
		if (!error && agno)
			error = dfs_mkfs_write_sb(mp, &mp->m_sb, agno);
	}
	if (!error)
		error = dfs_mkfs_write_log(mp);
	if (!error)
		error = dfs_blkdev_flush(mp->m_bdev);
	if (error)
		fprintf(stderr, "mkfs: writing %s failed: %s\n", path, strerror(-error));
	*sbout = mp->m_sb;
out:
	dfs_blkdev_close(mp->m_bdev);
	free(mp);
	return error;
}

/* Records the root inode in the superblock, in a transaction like any
 * other metadata change. */
static int dfs_mkfs_set_rootino(struct dfs_mount *mp, uint64_t rootino)
{
	struct dfs_trans *tp;
	struct dfs_buf *bp;
	int error;

	error = dfs_trans_alloc(mp, 0, &tp);
	if (error)
		return error;
	error = dfs_trans_read_buf(tp, 0, &dfs_sb_buf_ops, &bp);
	if (error) {
		dfs_trans_cancel(tp);
		return error;
	}
	((struct dfs_dsb *)bp->b_addr)->rootino = rootino;
	dfs_trans_log_buf(tp, bp);
	mp->m_sb.rootino = rootino;
	return dfs_trans_commit(tp, true);
}

int dfs_mkfs(const char *path, const struct dfs_mkfs_opts *opts)
{
	static const struct dfs_mkfs_opts defaults;
	struct dfs_mount *mp;
	struct dfs_dsb sb;
	uint64_t size = 0, rootino = 0;
	uint32_t agno;
	int error;

	if (!opts)
		opts = &defaults;
	error = dfs_mkfs_prepare_target(path, opts->size, &size);
	if (error)
		return error;
	error = dfs_mkfs_write_empty(path, size, opts, &sb);
	if (error)
		return error;

	error = dfs_mount_flags(path, NULL, DFS_MOUNT_MKFS, &mp);
	if (error)
		return error;
	pthread_mutex_lock(&mp->m_lock);
	error = dfs_mkfs_rootdir(mp, &rootino);
	if (!error)
		error = dfs_mkfs_set_rootino(mp, rootino);
	pthread_mutex_unlock(&mp->m_lock);
	if (error)
		fprintf(stderr, "mkfs: making the root directory failed: %s\n", strerror(-error));
	if (dfs_unmount(mp) && !error)
		error = -EIO;
	if (error)
		return error;

	/* Secondary superblocks learn the root inode too, so that they can
	 * stand in for a damaged primary. */
	error = dfs_mount_flags(path, NULL, DFS_MOUNT_MKFS, &mp);
	if (error)
		return error;
	for (agno = 1; !error && agno < mp->m_agcount; agno++)
		error = dfs_mkfs_write_sb(mp, &mp->m_sb, agno);
	if (!error)
		error = dfs_blkdev_flush(mp->m_bdev);
	if (dfs_unmount(mp) && !error)
		error = -EIO;
	return error;
}
