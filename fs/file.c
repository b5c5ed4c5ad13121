// SPDX-License-Identifier: MIT
/*
 * File data: buffered IO through the page cache (XFS's xfs_file.c with the
 * generic buffered path of mm/filemap.c) and writeback (xfs_aops.c).
 *
 * A write copies into pages and reserves delayed allocation for the blocks
 * that had none; nothing is allocated. Writeback maps each dirty block:
 * delalloc is converted here (dfs_bmapi_convert_delalloc, the deep path),
 * the pages go out in one bio per physically contiguous run, and the
 * completion turns the extents written and moves the on-disk size. Blocks
 * of a dirty page that are holes are not written: nobody wrote them, the
 * page holds zeroes there, and the disk says hole.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bio_batch.h"
#include "blkdev.h"
#include "bmap.h"
#include "deepfs.h"
#include "file.h"
#include "inode.h"
#include "log.h"
#include "mount.h"
#include "msg.h"
#include "pagecache.h"
#include "trans.h"

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE	0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE	0x02
#endif
#ifndef FALLOC_FL_ZERO_RANGE
#define FALLOC_FL_ZERO_RANGE	0x10
#endif

/* Pages read together by one read call. */
#define DFS_READ_BATCH		16
/* Pages read ahead past a request that missed, up to EOF (request and
 * readahead together use at most half of the cache). */
#define DFS_READAHEAD		4
/* Pages written back per run at most (one completion transaction each). */
#define DFS_WB_RUN		64

/* ---- bios ------------------------------------------------------------------- */

/* ---- entry-point helpers ---------------------------------------------------- */

int dfs_file_iget(struct dfs_mount *mp, uint64_t ino, struct dfs_inode **ipp)
{
	struct dfs_inode *ip;
	int error;

	if (mp->m_shutdown)
		return -EIO;
	error = dfs_iget(mp, NULL, ino, &ip);
	if (error)
		return error;
	if (!dfs_isreg(ip)) {
		error = dfs_isdir(ip) ? -EISDIR : -EINVAL;
		dfs_irele(ip);
		return error;
	}
	*ipp = ip;
	return 0;
}

static void dfs_file_touch(struct dfs_inode *ip)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	ip->i_mtime = now;
	ip->i_ctime = now;
}

static inline uint32_t dfs_blocks_per_page(const struct dfs_mount *mp)
{
	return DFS_PAGE_SIZE >> mp->m_blocklog;
}

/*
 * A loop over the extent map that made no progress: the in-core map is not
 * what the loop's logic relies on. Say so and fail rather than spin.
 */
static int dfs_file_no_progress(struct dfs_inode *ip, const char *what, uint64_t fb)
{
	dfs_err(ip->i_mount, "inode %" PRIu64 ": %s made no progress at file block %" PRIu64
		"; extent map inconsistent", ip->i_ino, what, fb);
	return -EFSCORRUPTED;
}

/* Blocks of [fb, lb) that are mapped (real or delalloc). */
static int dfs_file_mapped_blocks(struct dfs_inode *ip, uint64_t fb, uint64_t lb, uint64_t *cnt)
{
	struct dfs_bmbt_irec map;
	int nmaps, error;

	*cnt = 0;
	while (fb < lb) {
		nmaps = 1;
		error = dfs_bmapi_read(ip, fb, lb - fb, &map, &nmaps);
		if (error)
			return error;
		if (nmaps != 1 || map.br_blockcount == 0)
			return dfs_file_no_progress(ip, "extent lookup", fb);
		if (map.br_startblock != DFS_HOLESTARTBLOCK)
			*cnt += map.br_blockcount;
		fb += map.br_blockcount;
	}
	return 0;
}

/* ---- reading -------------------------------------------------------------- */

/*
 * Queue the reads that fill pg: only written blocks are read; holes,
 * delalloc and unwritten blocks are zeroes (the page starts zeroed), and so
 * is everything past EOF.
 */
static int dfs_read_page_queue(struct dfs_inode *ip, struct dfs_page *pg, struct dfs_bio_batch *bb)
{
	struct dfs_mount *mp = ip->i_mount;
	uint64_t pos = pg->index * DFS_PAGE_SIZE;
	uint64_t fb = pg->index * dfs_blocks_per_page(mp);
	uint64_t lb = fb + dfs_blocks_per_page(mp);
	uint64_t eofb = (ip->i_size + mp->m_blocksize - 1) >> mp->m_blocklog;
	struct dfs_bmbt_irec map;
	int nmaps, error;

	memset(pg->data, 0, DFS_PAGE_SIZE);
	if (lb > eofb)
		lb = eofb;
	while (fb < lb) {
		nmaps = 1;
		error = dfs_bmapi_read(ip, fb, lb - fb, &map, &nmaps);
		if (error)
			return error;
		if (map.br_startblock != DFS_HOLESTARTBLOCK &&
		    map.br_startblock != DFS_DELAYSTARTBLOCK && map.br_state == DFS_EXT_NORM) {
			error = dfs_bio_batch_add(bb, pg->index,
						  dfs_fsb_to_bytes(mp, map.br_startblock),
						  (char *)pg->data + ((fb << mp->m_blocklog) - pos),
						  map.br_blockcount << mp->m_blocklog);
			if (error)
				return error;
		}
		fb += map.br_blockcount;
	}
	return 0;
}

/* Past EOF a page reads as zeroes, whatever the block holds. */
static void dfs_page_zero_eof(struct dfs_inode *ip, struct dfs_page *pg)
{
	uint64_t pos = pg->index * DFS_PAGE_SIZE;

	if (ip->i_size <= pos)
		memset(pg->data, 0, DFS_PAGE_SIZE);
	else if (ip->i_size < pos + DFS_PAGE_SIZE)
		memset((char *)pg->data + (ip->i_size - pos), 0, pos + DFS_PAGE_SIZE - ip->i_size);
}

/*
 * Grab pages [index, index+n) and make them uptodate, reading the missing
 * ones together, plus up to ra uncached pages after them (readahead, which
 * stops at EOF and at the first cached page). On success every pages[i] is
 * referenced; the readahead pages are left in the cache unreferenced.
 */
static int dfs_file_get_pages(struct dfs_inode *ip, uint64_t index, int n,
			      struct dfs_page **pages, int ra)
{
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_bio_batch bb = { .dir = DFS_IO_READ };
	struct dfs_page *rapages[DFS_READAHEAD];
	uint64_t eofpg = (ip->i_size + DFS_PAGE_SIZE - 1) / DFS_PAGE_SIZE;
	int i, got = 0, nra = 0, nread = 0, error = 0;

	for (i = 0; i < n; i++) {
		error = dfs_page_grab(ip, index + i, &pages[i]);
		if (error)
			goto out_release;
		got++;
		if (pages[i]->flags & DFS_PG_UPTODATE)
			continue;
		error = dfs_read_page_queue(ip, pages[i], &bb);
		if (error)
			goto out_release;
		nread++;
	}
	if (ra) {
		struct dfs_pagecache_stats st;

		dfs_pagecache_get_stats(mp, &st);
		if (ra > DFS_READAHEAD)
			ra = DFS_READAHEAD;
		if ((uint64_t)(n + ra) > st.budget_pages / 2)
			ra = st.budget_pages / 2 > (uint64_t)n ? (int)(st.budget_pages / 2 - n) : 0;
	}
	for (i = 0; i < ra && nread; i++) {
		uint64_t idx = index + n + i;

		if (idx >= eofpg || dfs_page_cached(ip, idx))
			break;
		error = dfs_page_grab(ip, idx, &rapages[nra]);
		if (error)
			goto out_release;
		nra++;
		error = dfs_read_page_queue(ip, rapages[nra - 1], &bb);
		if (error)
			goto out_release;
	}
	error = dfs_bio_batch_run(mp, &bb);
	if (error)
		goto out_release;
	for (i = 0; i < n + nra; i++) {
		struct dfs_page *pg = i < n ? pages[i] : rapages[i - n];

		if (!(pg->flags & DFS_PG_UPTODATE)) {
			dfs_page_zero_eof(ip, pg);
			pg->flags |= DFS_PG_UPTODATE;
		}
	}
	for (i = 0; i < nra; i++)
		dfs_page_release(rapages[i]);
	dfs_pagecache_note_read(mp, nread + nra, nra);
	return 0;

out_release:
	dfs_bio_batch_free(&bb);
	for (i = 0; i < got; i++)
		dfs_page_release(pages[i]);
	for (i = 0; i < nra; i++)
		dfs_page_release(rapages[i]);
	return error;
}

static ssize_t dfs_file_read(struct dfs_inode *ip, char *buf, size_t len, uint64_t off)
{
	struct dfs_page *pages[DFS_READ_BATCH];
	size_t done = 0;
	int error, i;

	if (off >= ip->i_size)
		return 0;
	if (len > ip->i_size - off)
		len = ip->i_size - off;
	while (done < len) {
		uint64_t pos = off + done;
		uint64_t first = pos / DFS_PAGE_SIZE;
		uint64_t last = (off + len - 1) / DFS_PAGE_SIZE;
		int n = last - first + 1 < DFS_READ_BATCH ? (int)(last - first + 1) : DFS_READ_BATCH;

		/* read ahead when this chunk ends the request */
		error = dfs_file_get_pages(ip, first, n, pages,
					   first + n > last ? DFS_READAHEAD : 0);
		if (error)
			return done ? (ssize_t)done : error;
		for (i = 0; i < n; i++) {
			uint64_t pstart = (first + i) * DFS_PAGE_SIZE;
			uint64_t from = pos > pstart ? pos - pstart : 0;
			uint64_t to = off + len < pstart + DFS_PAGE_SIZE ? off + len - pstart
									   : DFS_PAGE_SIZE;

			memcpy(buf + (pstart + from - off), (char *)pages[i]->data + from, to - from);
			done += to - from;
			dfs_page_release(pages[i]);
		}
	}
	return (ssize_t)done;
}

ssize_t dfs_read(struct dfs_mount *mp, uint64_t ino, void *buf, size_t len, uint64_t off)
{
	struct dfs_inode *ip;
	ssize_t ret;
	int error;

	pthread_mutex_lock(&mp->m_lock);
	error = dfs_file_iget(mp, ino, &ip);
	if (error) {
		pthread_mutex_unlock(&mp->m_lock);
		return error;
	}
	ret = dfs_file_read(ip, buf, len, off);
	dfs_irele(ip);
	pthread_mutex_unlock(&mp->m_lock);
	return ret;
}

int dfs_readpage(struct dfs_mount *mp, uint64_t ino, uint64_t index, void *dst)
{
	struct dfs_inode *ip;
	struct dfs_page *pg;
	int error;

	if (index >= DFS_MAX_FILE_SIZE / DFS_PAGE_SIZE)
		return -EINVAL;
	pthread_mutex_lock(&mp->m_lock);
	error = dfs_file_iget(mp, ino, &ip);
	if (error)
		goto out_unlock;
	error = dfs_file_get_pages(ip, index, 1, &pg, 0);
	if (!error) {
		memcpy(dst, pg->data, DFS_PAGE_SIZE);
		dfs_page_release(pg);
	}
	dfs_irele(ip);
out_unlock:
	pthread_mutex_unlock(&mp->m_lock);
	return error;
}

/* ---- writing ---------------------------------------------------------------- */

static ssize_t dfs_file_write(struct dfs_inode *ip, const char *buf, size_t len, uint64_t off)
{
	struct dfs_mount *mp = ip->i_mount;
	size_t done = 0;
	int error = 0;

	if (off >= DFS_MAX_FILE_SIZE || len > DFS_MAX_FILE_SIZE - off)
		return -EFBIG;
	while (done < len) {
		uint64_t pos = off + done;
		uint64_t index = pos / DFS_PAGE_SIZE;
		uint64_t pstart = index * DFS_PAGE_SIZE;
		uint64_t from = pos - pstart;
		uint64_t to = off + len - pstart < DFS_PAGE_SIZE ? off + len - pstart : DFS_PAGE_SIZE;
		uint64_t fb = pos >> mp->m_blocklog;
		uint64_t lb = (pstart + to - 1) >> mp->m_blocklog;
		struct dfs_page *pg;

		/* space first: a page is dirtied only when its blocks are backed */
		error = dfs_bmapi_reserve_delalloc(ip, fb, lb - fb + 1);
		if (error)
			break;
		if (from == 0 && to == DFS_PAGE_SIZE) {
			error = dfs_page_grab(ip, index, &pg);
			if (!error)
				pg->flags |= DFS_PG_UPTODATE;
		} else {
			/* partial page: read-modify-write */
			error = dfs_file_get_pages(ip, index, 1, &pg, 0);
		}
		if (error)
			break;
		memcpy((char *)pg->data + from, buf + done, to - from);
		dfs_page_mark_dirty(pg);
		dfs_page_release(pg);
		done += to - from;
		if (off + done > ip->i_size)
			ip->i_size = off + done;
	}
	if (done)
		dfs_file_touch(ip);
	return done ? (ssize_t)done : error;
}

ssize_t dfs_write(struct dfs_mount *mp, uint64_t ino, const void *buf, size_t len, uint64_t off)
{
	struct dfs_inode *ip;
	ssize_t ret;
	int error;

	pthread_mutex_lock(&mp->m_lock);
	if (mp->m_readonly) {
		pthread_mutex_unlock(&mp->m_lock);
		return -EROFS;
	}
	error = dfs_file_iget(mp, ino, &ip);
	if (error) {
		pthread_mutex_unlock(&mp->m_lock);
		return error;
	}
	dfs_wbext_wait(ip);
	ret = len ? dfs_file_write(ip, buf, len, off) : 0;
	dfs_irele(ip);
	pthread_mutex_unlock(&mp->m_lock);
	return ret;
}

/* ---- writeback ---------------------------------------------------------------- */

/*
 * XFS's xfs_map_blocks for the blocks of one run of pages: every block that
 * is not a hole gets a real extent (converting delalloc), and goes into the
 * batch at its disk address.
 */
static int dfs_map_blocks(struct dfs_inode *ip, struct dfs_page **pages, uint64_t lb,
			  struct dfs_bio_batch *bb)
{
	struct dfs_mount *mp = ip->i_mount;
	uint32_t bpp = dfs_blocks_per_page(mp);
	uint64_t first = pages[0]->index;
	uint64_t fb = first * bpp;
	struct dfs_bmbt_irec map;
	int nmaps, error;

	while (fb < lb) {
		uint64_t b, cnt;

		nmaps = 1;
		error = dfs_bmapi_read(ip, fb, lb - fb, &map, &nmaps);
		if (error)
			return error;
		if (map.br_startblock == DFS_HOLESTARTBLOCK) {
			fb += map.br_blockcount;
			continue;
		}
		if (map.br_startblock == DFS_DELAYSTARTBLOCK) {
			struct dfs_bmbt_irec imap;
			uint64_t delayed = ip->i_delayed_blks;

			error = dfs_bmapi_convert_delalloc(ip, fb, &imap);
			if (error)
				return error;
			if (ip->i_delayed_blks >= delayed)
				return dfs_file_no_progress(ip, "delalloc conversion", fb);
			continue;	/* look again: now it is real */
		}
		cnt = map.br_blockcount;
		for (b = 0; b < cnt; b++) {
			uint64_t blk = fb + b;
			struct dfs_page *pg = pages[blk / bpp - first];

			assert(pg->index == blk / bpp);
			error = dfs_bio_batch_add(bb, blk / bpp,
						  dfs_fsb_to_bytes(mp, map.br_startblock + b),
						  (char *)pg->data + (blk % bpp) * mp->m_blocksize,
						  mp->m_blocksize);
			if (error)
				return error;
		}
		fb += cnt;
	}
	return 0;
}

/* Write one run of index-contiguous dirty pages and complete it. */
static int dfs_writeback_run(struct dfs_inode *ip, struct dfs_page **pages, int n)
{
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_bio_batch bb = { .dir = DFS_IO_WRITE };
	uint64_t bpp = dfs_blocks_per_page(mp);
	uint64_t end = (pages[n - 1]->index + 1) * DFS_PAGE_SIZE;
	uint64_t eofb = (ip->i_size + mp->m_blocksize - 1) >> mp->m_blocklog;
	uint64_t fb = pages[0]->index * bpp;
	uint64_t lb = (pages[n - 1]->index + 1) * bpp;
	int i, error;

	if (lb > eofb)
		lb = eofb;
	for (i = 0; i < n; i++)
		pages[i]->flags |= DFS_PG_WRITEBACK;
	error = 0;
	if (lb > fb) {
		error = dfs_map_blocks(ip, pages, lb, &bb);
		if (!error)
			error = dfs_bio_batch_run(mp, &bb);
		else
			dfs_bio_batch_free(&bb);
		/* only the blocks written: an unwritten block past EOF in the
		 * last page was not, and must keep reading as zeroes */
		if (!error)
			error = dfs_iomap_write_unwritten(ip, fb << mp->m_blocklog,
							  (lb - fb) << mp->m_blocklog,
							  end < ip->i_size ? end : ip->i_size);
	}
	for (i = 0; i < n; i++) {
		pages[i]->flags &= ~DFS_PG_WRITEBACK;
		if (!error)
			dfs_page_clear_dirty(pages[i]);
	}
	if (!error)
		dfs_pagecache_note_writeback(mp, n);
	return error;
}

int dfs_do_writepages(struct dfs_inode *ip, uint64_t start, uint64_t end, bool sync)
{
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_page **pages;
	long n, i, j;
	int error = 0;

	if (mp->m_shutdown)
		return -EIO;
	n = dfs_pagecache_dirty_pages(ip, start, end, &pages);
	if (n < 0)
		return (int)n;
	for (i = 0; i < n && !error; i = j) {
		for (j = i + 1; j < n && j - i < DFS_WB_RUN &&
			    pages[j]->index == pages[j - 1]->index + 1; j++)
			;
		error = dfs_writeback_run(ip, &pages[i], (int)(j - i));
	}
	for (i = 0; i < n; i++)
		dfs_page_release(pages[i]);
	free(pages);
	if (!error && sync)
		error = dfs_log_force(mp);
	return error;
}

int dfs_writepage(struct dfs_mount *mp, uint64_t ino, uint64_t index)
{
	return dfs_writepages(mp, ino, index, index);
}

int dfs_writepages(struct dfs_mount *mp, uint64_t ino, uint64_t start, uint64_t end)
{
	struct dfs_inode *ip;
	int error;

	if (start > end)
		return -EINVAL;
	pthread_mutex_lock(&mp->m_lock);
	error = dfs_file_iget(mp, ino, &ip);
	if (!error) {
		error = dfs_do_writepages(ip, start, end, false);
		dfs_irele(ip);
	}
	pthread_mutex_unlock(&mp->m_lock);
	return error;
}

/* Log the in-core core (size, times) in a transaction of its own. */
static int dfs_file_log_core(struct dfs_inode *ip, bool sync)
{
	struct dfs_trans *tp;
	int error;

	error = dfs_trans_alloc(ip->i_mount, 0, &tp);
	if (error)
		return error;
	error = dfs_trans_log_inode(tp, ip);
	if (error) {
		dfs_trans_cancel(tp);
		return error;
	}
	return dfs_trans_commit(tp, sync);
}

int dfs_fsync(struct dfs_mount *mp, uint64_t ino, bool datasync)
{
	struct dfs_inode *ip;
	int error;

	pthread_mutex_lock(&mp->m_lock);
	if (mp->m_shutdown) {
		error = -EIO;
		goto out_unlock;
	}
	error = dfs_iget(mp, NULL, ino, &ip);
	if (error)
		goto out_unlock;
	if (mp->m_readonly) {
		/* nothing can be dirty */
		dfs_irele(ip);
		goto out_unlock;
	}
	if (!dfs_isreg(ip)) {
		/* directories, symlinks, special files (fsyncdir comes here
		 * too): no page cache, and every change to them is a committed
		 * transaction, so forcing the log makes them durable (XFS's
		 * xfs_dir_fsync) */
		error = dfs_log_force(mp);
		dfs_irele(ip);
		goto out_unlock;
	}
	error = dfs_do_writepages(ip, 0, UINT64_MAX, false);
	if (!error) {
		/* the data's size moved at IO completion; timestamps only
		 * matter to fsync proper */
		if (datasync)
			error = dfs_log_force(mp);
		else
			error = dfs_file_log_core(ip, true);
	}
	dfs_irele(ip);
out_unlock:
	pthread_mutex_unlock(&mp->m_lock);
	return error;
}

/* ---- size changes and fallocate ---------------------------------------------- */

/*
 * Zero [from, to) of the file in the page cache (inside one page), so that
 * the bytes of a block that stays mapped read as zeroes from now on and
 * reach the disk as zeroes at writeback.
 */
static int dfs_file_zero_partial(struct dfs_inode *ip, uint64_t from, uint64_t to)
{
	uint64_t index = from / DFS_PAGE_SIZE;
	struct dfs_page *pg;
	int error;

	assert(to <= (index + 1) * DFS_PAGE_SIZE && from < to);
	error = dfs_file_get_pages(ip, index, 1, &pg, 0);
	if (error)
		return error;
	memset((char *)pg->data + (from - index * DFS_PAGE_SIZE), 0, to - from);
	dfs_page_mark_dirty(pg);
	dfs_page_release(pg);
	return 0;
}

/*
 * XFS's xfs_setattr_size. The on-disk size becomes newsize in every case,
 * in the transaction that logs the change. Before that, the data that the
 * new size covers but the disk size does not yet ([i_disk_size, newsize))
 * is written back: otherwise a shrink to between i_disk_size and i_size
 * would leave the disk size behind (nothing else moves it: the cached data
 * past newsize is thrown away, and the range below may be all hole), and an
 * extension would expose zeroes where written data was not yet on disk.
 */
int dfs_file_setsize(struct dfs_inode *ip, uint64_t newsize)
{
	uint64_t oldsize = ip->i_size;
	int error;

	if (newsize > DFS_MAX_FILE_SIZE)
		return -EFBIG;
	if (newsize < oldsize && (newsize & (DFS_PAGE_SIZE - 1))) {
		/* the rest of the new last page becomes zeroes */
		uint64_t pend = (newsize | (DFS_PAGE_SIZE - 1)) + 1;

		error = dfs_file_zero_partial(ip, newsize, pend < oldsize ? pend : oldsize);
		if (error)
			return error;
	}
	if (newsize > ip->i_disk_size && oldsize > ip->i_disk_size) {
		/* only pages below both sizes can hold data the disk lacks */
		uint64_t wend = newsize < oldsize ? newsize : oldsize;

		error = dfs_do_writepages(ip, ip->i_disk_size / DFS_PAGE_SIZE,
					  (wend - 1) / DFS_PAGE_SIZE, false);
		if (error)
			return error;
	}
	if (newsize < oldsize)
		dfs_pagecache_invalidate(ip, (newsize + DFS_PAGE_SIZE - 1) / DFS_PAGE_SIZE,
					 UINT64_MAX);
	ip->i_size = newsize;
	/* shrinking, the size on disk goes first, then the blocks */
	ip->i_disk_size = newsize;
	dfs_file_touch(ip);
	error = dfs_file_log_core(ip, false);
	if (error)
		return error;
	if (newsize < oldsize)
		error = dfs_itruncate_extents(ip, newsize);
	return error;
}

/* Convert the delalloc extents of [fb, lb) to real (unwritten) ones. */
static int dfs_file_convert_range(struct dfs_inode *ip, uint64_t fb, uint64_t lb)
{
	struct dfs_bmbt_irec map, imap;
	int nmaps, error;

	while (fb < lb) {
		nmaps = 1;
		error = dfs_bmapi_read(ip, fb, lb - fb, &map, &nmaps);
		if (error)
			return error;
		if (map.br_startblock == DFS_DELAYSTARTBLOCK) {
			uint64_t delayed = ip->i_delayed_blks;

			error = dfs_bmapi_convert_delalloc(ip, fb, &imap);
			if (error)
				return error;
			/* each conversion takes at least a block out of delalloc */
			if (ip->i_delayed_blks >= delayed)
				return dfs_file_no_progress(ip, "delalloc conversion", fb);
			continue;
		}
		fb += map.br_blockcount;
	}
	return 0;
}

/* XFS's xfs_alloc_file_space: unwritten extents over the holes of the
 * range, one transaction per extent. */
static int dfs_alloc_file_space(struct dfs_inode *ip, uint64_t off, uint64_t len)
{
	struct dfs_mount *mp = ip->i_mount;
	uint64_t fb = off >> mp->m_blocklog;
	uint64_t lb = (off + len + mp->m_blocksize - 1) >> mp->m_blocklog;
	struct dfs_bmbt_irec map;
	struct dfs_trans *tp;
	int nmaps, error;

	error = dfs_file_convert_range(ip, fb, lb);
	if (error)
		return error;
	while (fb < lb) {
		uint64_t cnt;

		nmaps = 1;
		error = dfs_bmapi_read(ip, fb, lb - fb, &map, &nmaps);
		if (error)
			return error;
		if (map.br_startblock != DFS_HOLESTARTBLOCK) {
			fb += map.br_blockcount;
			continue;
		}
		cnt = map.br_blockcount < DFS_MAX_EXTLEN ? map.br_blockcount : DFS_MAX_EXTLEN;
		if (cnt > mp->m_agblocks)
			cnt = mp->m_agblocks;
		/* data + one extent's worth of bmbt blocks */
		error = dfs_trans_alloc(mp, (uint32_t)cnt + dfs_bmap_ext_res(mp), &tp);
		if (error)
			return error;
		nmaps = 1;
		error = dfs_bmapi_write(tp, ip, fb, cnt, DFS_BMAPI_PREALLOC, &map, &nmaps);
		if (error || nmaps == 0) {
			dfs_trans_cancel(tp);
			return error ? error : -ENOSPC;
		}
		error = dfs_trans_commit(tp, false);
		if (error)
			return error;
		if (map.br_blockcount == 0 || map.br_startoff + map.br_blockcount <= fb)
			return dfs_file_no_progress(ip, "preallocation", fb);
		fb = map.br_startoff + map.br_blockcount;
	}
	return 0;
}

/* XFS's xfs_free_file_space: zero the partial blocks at the edges, drop the
 * pages inside, unmap the whole blocks. */
static int dfs_free_file_space(struct dfs_inode *ip, uint64_t off, uint64_t len)
{
	struct dfs_mount *mp = ip->i_mount;
	uint64_t end = off + len;
	uint64_t fb = (off + mp->m_blocksize - 1) >> mp->m_blocklog;
	uint64_t lb = end >> mp->m_blocklog;
	uint64_t zend, first_full, last_full, mapped, left;
	struct dfs_trans *tp;
	int done = 0, error;

	/* partial pages at both edges are zeroed in the cache */
	if (off < ip->i_size) {
		uint64_t e = end < ip->i_size ? end : ip->i_size;

		if (off & (DFS_PAGE_SIZE - 1)) {
			zend = (off | (DFS_PAGE_SIZE - 1)) + 1;
			error = dfs_file_zero_partial(ip, off, zend < e ? zend : e);
			if (error)
				return error;
		}
		/* the tail page, unless the head's zeroing covered it */
		if ((e & (DFS_PAGE_SIZE - 1)) &&
		    (e / DFS_PAGE_SIZE > off / DFS_PAGE_SIZE || !(off & (DFS_PAGE_SIZE - 1)))) {
			uint64_t pstart = e & ~(uint64_t)(DFS_PAGE_SIZE - 1);

			error = dfs_file_zero_partial(ip, pstart > off ? pstart : off, e);
			if (error)
				return error;
		}
	}
	/* as XFS's xfs_flush_unmap_range: write back, then drop, so that a
	 * punch that fails half way loses no data */
	first_full = (off + DFS_PAGE_SIZE - 1) / DFS_PAGE_SIZE;
	last_full = end / DFS_PAGE_SIZE;	/* exclusive */
	if (last_full > first_full) {
		error = dfs_do_writepages(ip, first_full, last_full - 1, false);
		if (error)
			return error;
		dfs_pagecache_invalidate(ip, first_full, last_full - 1);
	}
	if (fb >= lb)
		return 0;
	error = dfs_file_mapped_blocks(ip, fb, lb, &mapped);
	if (error)
		return error;
	while (!done) {
		/* a full disk can still punch holes */
		error = dfs_bmap_trans_alloc_reserved(mp, dfs_bmap_ext_res(mp), &tp);
		if (error)
			return error;
		error = dfs_bunmapi(tp, ip, fb, lb - fb, &done);
		if (!error)
			error = dfs_trans_log_inode(tp, ip);
		if (error) {
			dfs_trans_cancel(tp);
			return error;
		}
		error = dfs_trans_commit(tp, false);
		dfs_bmap_reserve_refill(mp);
		if (error)
			return error;
		if (done)
			break;
		/* a transaction that stops short has unmapped some extents (it
		 * stops after DFS_BUNMAPI_MAX_REAL of them): never spin */
		left = mapped;
		error = dfs_file_mapped_blocks(ip, fb, lb, &mapped);
		if (error)
			return error;
		if (mapped >= left)
			return dfs_file_no_progress(ip, "hole punch", fb);
	}
	return 0;
}

int dfs_fallocate(struct dfs_mount *mp, uint64_t ino, int mode, uint64_t off, uint64_t len)
{
	const int keep = FALLOC_FL_KEEP_SIZE;
	struct dfs_inode *ip;
	int error;

	if (len == 0)
		return -EINVAL;
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) &&
	    ((mode & FALLOC_FL_ZERO_RANGE) || !(mode & FALLOC_FL_KEEP_SIZE)))
		return -EOPNOTSUPP;
	if (off >= DFS_MAX_FILE_SIZE || len > DFS_MAX_FILE_SIZE - off)
		return -EFBIG;
	pthread_mutex_lock(&mp->m_lock);
	if (mp->m_readonly) {
		error = -EROFS;
		goto out_unlock;
	}
	error = dfs_file_iget(mp, ino, &ip);
	if (error)
		goto out_unlock;
	dfs_ilock_io_mlocked(ip, true);
	dfs_wbext_wait(ip);
	if (mode & FALLOC_FL_PUNCH_HOLE) {
		error = dfs_free_file_space(ip, off, len);
	} else {
		if (mode & FALLOC_FL_ZERO_RANGE)
			error = dfs_free_file_space(ip, off, len);
		if (!error)
			error = dfs_alloc_file_space(ip, off, len);
		if (!error && !(mode & keep) && off + len > ip->i_size)
			error = dfs_file_setsize(ip, off + len);
	}
	if (!error) {
		dfs_file_touch(ip);
		error = dfs_file_log_core(ip, false);
	}
	dfs_iunlock_io(ip, true);
	dfs_irele(ip);
out_unlock:
	pthread_mutex_unlock(&mp->m_lock);
	return error;
}
