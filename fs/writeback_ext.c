// SPDX-License-Identifier: MIT
/*
 * External pages (deepfs.h: dfs_page_mkwrite, dfs_writepages_ext): the
 * userfaultfd pager's frames are the page cache of its inodes, so deepfs
 * does for them what a filesystem does for a page cache it does not own.
 * ->page_mkwrite reserves delayed allocation when a page is about to be
 * dirtied, so that ENOSPC is reported at fault time instead of being found
 * at writeback, when the data has nowhere to go. ->writepages maps the
 * blocks as XFS's xfs_map_blocks does (delalloc converted here: the deep
 * path), builds the bios on the caller's memory (no copy into deepfs's own
 * cache), and completes them as dfs_writeback_run does (unwritten
 * conversion, on-disk size).
 *
 * The data IO runs without mp->m_lock (map under it, IO unlocked, ioend
 * under it again), so that several writeback threads keep several IOs in
 * flight. While the lock is dropped:
 *  - the inode cannot go (unlink, inode cache eviction): the writeback
 *    holds an i_count reference, and dfs_inactive waits for its dfs_irele;
 *  - its blocks cannot be freed and reused under the IO (truncate, punch,
 *    zero range), nor a cached copy of its pages dirtied by a FUSE writer
 *    and written back racing with ours: dfs_setattr (size), dfs_fallocate
 *    and dfs_write call dfs_wbext_wait at their entry, before they look at
 *    anything, and sleep until i_wbext_inflight is 0. While one waits
 *    (i_wbext_waiters), new external writebacks of that inode wait in turn,
 *    so a stream of them cannot starve a truncate;
 *  - readers may fill deepfs's cache from the old disk contents: the ioend
 *    drops every cached copy of the range.
 * i_size cannot change meanwhile either (every path that changes it is one
 * of those that wait), so the ioend's size is the one the mapping used.
 *
 * A dirty copy of one of the pages in deepfs's cache (a FUSE writer's) is
 * older than the caller's page, whose data wins: it is copied into the
 * cached page before the IO, so that if the IO fails the data still sits
 * dirty in deepfs and nothing is lost either way; once the IO succeeded
 * the copy is on disk and is dropped with the clean ones.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bio_batch.h"
#include "blkdev.h"
#include "bmap.h"
#include "deepfs.h"
#include "file.h"
#include "inode.h"
#include "mount.h"
#include "msg.h"
#include "pagecache.h"

void (*dfs_wbext_io_hook)(struct dfs_inode *ip);

/* ---- helpers ------------------------------------------------------------------ */

static int dfs_wbext_iget(struct dfs_mount *mp, uint64_t ino, struct dfs_inode **ipp)
{
	if (mp->m_readonly)
		return -EROFS;
	return dfs_file_iget(mp, ino, ipp);
}

static inline uint64_t dfs_wbext_bpp(const struct dfs_mount *mp)
{
	return DFS_PAGE_SIZE >> mp->m_blocklog;
}

/* First block past EOF: the last partial block is file data, the rest not. */
static inline uint64_t dfs_wbext_eofb(const struct dfs_inode *ip)
{
	const struct dfs_mount *mp = ip->i_mount;

	return (ip->i_size + mp->m_blocksize - 1) >> mp->m_blocklog;
}

void dfs_wbext_wait(struct dfs_inode *ip)
{
	struct dfs_mount *mp = ip->i_mount;

	if (!ip->i_wbext_inflight)
		return;
	ip->i_wbext_waiters++;
	while (ip->i_wbext_inflight)
		pthread_cond_wait(&mp->m_wbext_wait, &mp->m_lock);
	/* external writebacks held off by us may go once we are done, and
	 * we hold the lock until then */
	if (--ip->i_wbext_waiters == 0)
		pthread_cond_broadcast(&mp->m_wbext_wait);
}

/*
 * Space for the blocks of pages [first, first + *np) below lb that have
 * none. On failure *np becomes the number of pages fully reserved:
 * dfs_bmapi_reserve_delalloc goes up the range, so the first block still a
 * hole is where it stopped.
 */
static int dfs_wbext_reserve(struct dfs_inode *ip, uint64_t first, uint64_t *np, uint64_t lb)
{
	struct dfs_mount *mp = ip->i_mount;
	uint64_t fb = first * dfs_wbext_bpp(mp), b = fb;
	struct dfs_bmbt_irec map;
	int nmaps, error, err2;

	if (lb <= fb)
		return 0;
	error = dfs_bmapi_reserve_delalloc(ip, fb, lb - fb);
	if (!error)
		return 0;
	while (b < lb) {
		nmaps = 1;
		err2 = dfs_bmapi_read(ip, b, lb - b, &map, &nmaps);
		if (err2) {
			*np = 0;
			return err2;
		}
		if (nmaps != 1 || map.br_blockcount == 0 ||
		    map.br_startblock == DFS_HOLESTARTBLOCK)
			break;
		b += map.br_blockcount;
	}
	*np = b / dfs_wbext_bpp(mp) - first;
	return error;
}

/*
 * xfs_map_blocks for pages [first, ...) up to block lb: every block gets a
 * real extent (delalloc converted) and goes into the batch at its disk
 * address, from bufs[page - first].
 */
static int dfs_wbext_map(struct dfs_inode *ip, uint64_t first, uint64_t lb, char *const *bufs,
			 struct dfs_bio_batch *bb)
{
	struct dfs_mount *mp = ip->i_mount;
	uint64_t bpp = dfs_wbext_bpp(mp);
	uint64_t fb = first * bpp;
	struct dfs_bmbt_irec map, imap;
	int nmaps, error;

	while (fb < lb) {
		uint64_t b;

		nmaps = 1;
		error = dfs_bmapi_read(ip, fb, lb - fb, &map, &nmaps);
		if (error)
			return error;
		if (nmaps != 1 || map.br_blockcount == 0) {
			dfs_err(mp, "inode %" PRIu64 ": extent lookup made no progress at file block %"
				PRIu64 "; extent map inconsistent", ip->i_ino, fb);
			return -EFSCORRUPTED;
		}
		if (map.br_startblock == DFS_HOLESTARTBLOCK) {
			/* reserved under this same lock hold: cannot be */
			dfs_err(mp, "inode %" PRIu64 ": file block %" PRIu64
				" is a hole right after its space was reserved", ip->i_ino, fb);
			return -EFSCORRUPTED;
		}
		if (map.br_startblock == DFS_DELAYSTARTBLOCK) {
			uint64_t delayed = ip->i_delayed_blks;

			error = dfs_bmapi_convert_delalloc(ip, fb, &imap);
			if (error)
				return error;
			if (ip->i_delayed_blks >= delayed) {
				dfs_err(mp, "inode %" PRIu64 ": delalloc conversion made no progress at file block %"
					PRIu64 "; extent map inconsistent", ip->i_ino, fb);
				return -EFSCORRUPTED;
			}
			continue;	/* look again: now it is real */
		}
		for (b = 0; b < map.br_blockcount; b++) {
			uint64_t blk = fb + b;

			error = dfs_bio_batch_add(bb, blk / bpp,
					      dfs_fsb_to_bytes(mp, map.br_startblock + b),
					      bufs[blk / bpp - first] + (blk % bpp) * mp->m_blocksize,
					      mp->m_blocksize);
			if (error)
				return error;
		}
		fb += map.br_blockcount;
	}
	return 0;
}

/* Before the IO: the caller's data goes into dirty cached copies (see top). */
static void dfs_wbext_cache_prepare(struct dfs_inode *ip, uint64_t first, uint64_t n,
				    char *const *bufs)
{
	uint64_t i;

	if (!ip->i_mapping || !ip->i_mapping->nrdirty)
		return;
	for (i = 0; i < n; i++) {
		struct dfs_page *pg;

		if (!dfs_page_cached(ip, first + i))
			continue;
		pg = dfs_page_find(ip, first + i);
		if (pg->flags & DFS_PG_DIRTY) {
			/* bufs has zeroes past EOF, as the cached page */
			memcpy(pg->data, bufs[i], DFS_PAGE_SIZE);
			pg->flags |= DFS_PG_UPTODATE;
		}
		dfs_page_release(pg);
	}
}

/*
 * After the IO: cached copies of the range go. A dirty one stays if the
 * write failed (it holds the caller's data); a clean one may hold what was
 * read from the disk during the IO, so it goes either way. A page someone
 * holds cannot be dropped: it gets the caller's data instead (no deepfs
 * path holds a page across a lock drop, so this does not happen today).
 */
static void dfs_wbext_cache_finish(struct dfs_inode *ip, uint64_t first, uint64_t n,
				   char *const *bufs, bool written)
{
	uint64_t i;

	if (!ip->i_mapping || !ip->i_mapping->nrpages)
		return;
	for (i = 0; i < n; i++) {
		uint64_t idx = first + i;
		struct dfs_page *pg;
		bool dirty, busy;

		if (!dfs_page_cached(ip, idx))
			continue;
		pg = dfs_page_find(ip, idx);
		dirty = pg->flags & DFS_PG_DIRTY;
		busy = pg->refcount > 1 || (pg->flags & DFS_PG_WRITEBACK);
		if (!busy && (written || !dirty)) {
			dfs_page_release(pg);
			dfs_pagecache_invalidate(ip, idx, idx);
			continue;
		}
		if (!dirty || !written)
			memcpy(pg->data, bufs[i], DFS_PAGE_SIZE);
		dfs_page_release(pg);
	}
}

/* ---- entry points -------------------------------------------------------------- */

int dfs_page_mkwrite(struct dfs_mount *mp, uint64_t ino, uint64_t index)
{
	struct dfs_inode *ip;
	uint64_t fb, lb;
	int error;

	if (index >= DFS_MAX_FILE_SIZE / DFS_PAGE_SIZE)
		return -EFBIG;
	pthread_mutex_lock(&mp->m_lock);
	error = dfs_wbext_iget(mp, ino, &ip);
	if (error)
		goto out_unlock;
	fb = index * dfs_wbext_bpp(mp);
	lb = fb + dfs_wbext_bpp(mp);
	if (lb > dfs_wbext_eofb(ip))
		lb = dfs_wbext_eofb(ip);
	if (lb > fb)
		error = dfs_bmapi_reserve_delalloc(ip, fb, lb - fb);
	dfs_irele(ip);
out_unlock:
	pthread_mutex_unlock(&mp->m_lock);
	return error;
}

int dfs_writepages_ext(struct dfs_mount *mp, uint64_t ino, uint64_t first, uint64_t n,
		       const void *const *srcs, unsigned flags, struct dfs_wb_stats *st)
{
	struct dfs_bio_batch bb = { .dir = DFS_IO_WRITE, .single = flags & DFS_WB_SINGLE };
	struct dfs_wb_stats local = { 0 };
	struct dfs_inode *ip;
	uint64_t size, eofpg, fb, lb, end, i;
	char **bufs = NULL, *bounce = NULL;
	int error, resv_error = 0;

	if (st)
		memset(st, 0, sizeof(*st));
	if (flags & ~DFS_WB_SINGLE)
		return -EINVAL;
	if (n == 0)
		return 0;
	if (!srcs)
		return -EINVAL;
	if (first >= DFS_MAX_FILE_SIZE / DFS_PAGE_SIZE ||
	    n > DFS_MAX_FILE_SIZE / DFS_PAGE_SIZE - first)
		return -EFBIG;
	/* O_DIRECT straight from the caller's memory */
	for (i = 0; i < n; i++)
		if (!srcs[i] || ((uintptr_t)srcs[i] & (DFS_IO_ALIGN - 1)))
			return -EINVAL;

	pthread_mutex_lock(&mp->m_lock);
	error = dfs_wbext_iget(mp, ino, &ip);
	if (error)
		goto out_unlock;
	while (ip->i_wbext_waiters)
		pthread_cond_wait(&mp->m_wbext_wait, &mp->m_lock);
	if (mp->m_shutdown) {
		error = -EIO;
		goto out_rele;
	}
	size = ip->i_size;
	eofpg = (size + DFS_PAGE_SIZE - 1) / DFS_PAGE_SIZE;
	if (first >= eofpg)
		goto out_rele;		/* wholly past EOF: not file data */
	if (n > eofpg - first)
		n = eofpg - first;
	fb = first * dfs_wbext_bpp(mp);
	lb = (first + n) * dfs_wbext_bpp(mp);
	if (lb > dfs_wbext_eofb(ip))
		lb = dfs_wbext_eofb(ip);
	resv_error = dfs_wbext_reserve(ip, first, &n, lb);
	if (n == 0) {
		error = resv_error;
		goto out_rele;
	}
	end = (first + n) * DFS_PAGE_SIZE;
	if (lb > (first + n) * dfs_wbext_bpp(mp))
		lb = (first + n) * dfs_wbext_bpp(mp);

	bufs = malloc(n * sizeof(*bufs));
	if (!bufs) {
		error = -ENOMEM;
		goto out_rele;
	}
	for (i = 0; i < n; i++)
		bufs[i] = (char *)srcs[i];	/* only read: the bios want void * */
	if (end > size) {
		/* the page holding EOF: past it the disk gets zeroes, as the
		 * kernel zeroes the page tail before writing it (a later
		 * extension must read them) */
		bounce = dfs_bio_alloc_buf(DFS_PAGE_SIZE);
		if (!bounce) {
			error = -ENOMEM;
			goto out_rele;
		}
		memcpy(bounce, bufs[n - 1], size % DFS_PAGE_SIZE);
		bufs[n - 1] = bounce;
	}
	dfs_wbext_cache_prepare(ip, first, n, bufs);
	error = dfs_wbext_map(ip, first, lb, bufs, &bb);
	if (error)
		goto out_rele;

	ip->i_wbext_inflight++;
	pthread_mutex_unlock(&mp->m_lock);
	if (dfs_wbext_io_hook)
		dfs_wbext_io_hook(ip);
	error = dfs_bio_batch_submit(mp, &bb, &local.ios, &local.bytes);
	pthread_mutex_lock(&mp->m_lock);

	/* the ioend (xfs_end_ioend): only blocks written; the size moves up
	 * to the end of the range, never past EOF */
	if (!error)
		error = dfs_iomap_write_unwritten(ip, fb << mp->m_blocklog,
						  (lb - fb) << mp->m_blocklog,
						  end < size ? end : size);
	if (!error)
		local.pages = n;
	dfs_wbext_cache_finish(ip, first, n, bufs, !error);
	if (--ip->i_wbext_inflight == 0 && ip->i_wbext_waiters)
		pthread_cond_broadcast(&mp->m_wbext_wait);
out_rele:
	dfs_irele(ip);
out_unlock:
	pthread_mutex_unlock(&mp->m_lock);
	dfs_bio_batch_free(&bb);
	free(bounce);
	free(bufs);
	if (st)
		*st = local;
	return error ? error : resv_error;
}
