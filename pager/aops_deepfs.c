/* SPDX-License-Identifier: MIT */
/*
 * a_ops on deepfs inodes (see aops.h).
 *
 * An anonymous region is an inode created in the root directory and
 * unlinked at once: the lookup reference dfs_mknod took keeps it alive (link
 * count 0, on the AGI unlinked list, so a crash frees it at the next mount),
 * and dfs_forget of that reference frees it and its blocks. A FILE region is
 * the mapped file's own inode, with a lookup reference of its own.
 *
 * Pages are written with dfs_write then dfs_writepage(s): the data passes
 * through deepfs's page cache and the writeback converts its delayed
 * allocation, the deep path the project measures. An anonymous page is then
 * dropped from deepfs's cache, as the kernel frees a page reclaim wrote
 * (PG_reclaim): the pager evicts a page to free memory, and a clean copy
 * kept by deepfs would double-cache it, so that up to the mount's page
 * cache budget of evicted pages would refault from memory and --mem would
 * not be the memory the client gets. A page read for a fault is dropped
 * too (the client holds it now; dfs_readpage reads no ahead). FILE pages
 * stay cached: they are the file's, shared with FUSE.
 *
 * deepfs.h has no call for either of two things done here, a reference
 * by inode number and dropping clean cached pages, so those two use
 * deepfs's internals (inode.h, pagecache.h) under its lock, as its own
 * entry points do.
 *
 * Errors are deepfs's negative errno, unchanged (-ENOSPC stays -ENOSPC).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/deepfs.h"
#include "fs/inode.h"
#include "fs/mount.h"
#include "fs/pagecache.h"
#include "pager/aops.h"

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE	0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE	0x02
#endif

struct rl_backing {
	struct dfs_mount *mp;
	uint64_t ino;
	bool file;		/* a FILE region: never extend, never discard */
	uint64_t npages;	/* anonymous: the region's size, a bound on indexes */
};

/* Tries of a fresh name: a name can only be taken by a daemon that died
 * between mknod and unlink with the same pid. */
#define RL_DFS_NAME_TRIES	16

static atomic_uint_fast64_t rl_dfs_anon_counter;

static int rl_dfs_new(struct dfs_mount *mp, uint64_t ino, bool file, uint64_t npages,
		      struct rl_backing **bp)
{
	struct rl_backing *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	b->mp = mp;
	b->ino = ino;
	b->file = file;
	b->npages = npages;
	*bp = b;
	return 0;
}

static int rl_dfs_open_anon(struct rl_backend *be, uint64_t npages, struct rl_backing **bp)
{
	struct dfs_mount *mp = be->mp;
	struct dfs_cred cr = { .uid = geteuid(), .gid = getegid() };
	struct dfs_stat st;
	char name[64];
	uint64_t root;
	int error = -EEXIST, tries, uerr;

	if (!mp) {
		fprintf(stderr, "reclaimlab: deepfs backend: no deepfs mount given\n");
		return -EINVAL;
	}
	root = dfs_root_ino(mp);
	if (npages > UINT64_MAX / RL_PAGE_SIZE)
		return -EFBIG;
	for (tries = 0; tries < RL_DFS_NAME_TRIES && error == -EEXIST; tries++) {
		snprintf(name, sizeof(name), ".rl-anon-%ld-%" PRIuFAST64, (long)getpid(),
			 atomic_fetch_add(&rl_dfs_anon_counter, 1));
		error = dfs_mknod(mp, root, name, S_IFREG | 0600, 0, &cr, &st);
	}
	if (error) {
		fprintf(stderr, "reclaimlab: deepfs: cannot create the backing inode of an anonymous region (/%s): %s\n",
			name, strerror(-error));
		return error;
	}
	uerr = dfs_unlink(mp, root, name);
	if (uerr) {
		fprintf(stderr, "reclaimlab: deepfs: cannot unlink /%s (inode %" PRIu64 "), the backing of an anonymous region: %s; it stays in the root directory\n",
			name, st.ino, strerror(-uerr));
		dfs_forget(mp, st.ino, 1);
		return uerr;
	}
	error = rl_dfs_new(mp, st.ino, false, npages, bp);
	if (error)
		dfs_forget(mp, st.ino, 1);	/* frees the unlinked inode */
	return error;
}

/*
 * A lookup reference by inode number, as FUSE holds one for every inode the
 * kernel knows (deepfs.h has lookups by name only). The shim keeps a dup of
 * the mapped file open, so the kernel's reference keeps the inode while the
 * client lives; ours covers the daemon's writeback after the client has
 * gone: an unlink meanwhile would free the inode, and its number could be
 * reused by another file our writes would then reach.
 */
static int rl_dfs_iref(struct dfs_mount *mp, uint64_t ino)
{
	struct dfs_inode *ip;
	int error;

	pthread_mutex_lock(&mp->m_lock);
	error = mp->m_shutdown ? -EIO : dfs_iget(mp, NULL, ino, &ip);
	if (!error) {
		if (dfs_isreg(ip))
			ip->i_nlookup++;
		else
			error = dfs_isdir(ip) ? -EISDIR : -EINVAL;
		dfs_irele(ip);
	}
	pthread_mutex_unlock(&mp->m_lock);
	return error;
}

static int rl_dfs_open_file(struct rl_backend *be, uint64_t ino, struct rl_backing **bp)
{
	struct dfs_mount *mp = be->mp;
	struct dfs_stat st;
	int error;

	if (!mp) {
		fprintf(stderr, "reclaimlab: deepfs backend: no deepfs mount given\n");
		return -EINVAL;
	}
	error = dfs_getattr(mp, ino, &st);
	if (error) {
		fprintf(stderr, "reclaimlab: deepfs: cannot back a file region by inode %" PRIu64 ": %s\n",
			ino, strerror(-error));
		return error;
	}
	if (!S_ISREG(st.mode)) {
		fprintf(stderr, "reclaimlab: deepfs: cannot back a file region by inode %" PRIu64 ": not a regular file\n",
			ino);
		return S_ISDIR(st.mode) ? -EISDIR : -EINVAL;
	}
	error = rl_dfs_iref(mp, ino);
	if (error) {
		/* freed (or turned into something else) since getattr */
		fprintf(stderr, "reclaimlab: deepfs: cannot take a reference on inode %" PRIu64 ": %s\n",
			ino, strerror(-error));
		return error;
	}
	error = rl_dfs_new(mp, ino, true, 0, bp);
	if (error)
		dfs_forget(mp, ino, 1);
	return error;
}

/* A pager bug must not become a write far past the region, nor an offset
 * that wraps around. */
static int rl_dfs_check_range(const struct rl_backing *b, uint64_t first, uint64_t n)
{
	uint64_t max = b->file ? UINT64_MAX / RL_PAGE_SIZE : b->npages;

	if (first > max || n > max - first)
		return -EINVAL;
	return 0;
}

/*
 * Drops pages [first, last] of an anonymous region from deepfs's cache.
 * They are clean (just read, or just written back) unless an earlier
 * writeback of one failed: then deepfs's dirty copy may be the only one
 * outside the client, and invalidation would drop it too. Checking the
 * inode's dirty count is cheap and errs on the safe side (a writepage of
 * another index in flight also makes it skip; deepfs's reclaim frees what
 * is left).
 */
static void rl_dfs_drop_cached(struct rl_backing *b, uint64_t first, uint64_t last)
{
	struct dfs_mount *mp = b->mp;
	struct dfs_inode *ip;

	if (b->file)
		return;
	pthread_mutex_lock(&mp->m_lock);
	if (!dfs_iget(mp, NULL, b->ino, &ip)) {
		if (ip->i_mapping && ip->i_mapping->nrdirty == 0)
			dfs_pagecache_invalidate(ip, first, last);
		dfs_irele(ip);
	}
	pthread_mutex_unlock(&mp->m_lock);
}

static int rl_dfs_readpage(struct rl_backing *b, uint64_t index, void *dst)
{
	int error = rl_dfs_check_range(b, index, 1);

	if (error)
		return error;
	error = dfs_readpage(b->mp, b->ino, index, dst);
	if (!error)
		rl_dfs_drop_cached(b, index, index);
	return error;
}

static int rl_dfs_write_all(struct rl_backing *b, const void *src, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t ret = dfs_write(b->mp, b->ino, (const char *)src + done, len - done,
					off + done);

		if (ret < 0)
			return (int)ret;
		if (ret == 0)
			return -EIO;	/* deepfs never does this for len > 0 */
		done += (size_t)ret;
	}
	return 0;
}

static int rl_dfs_file_size(struct rl_backing *b, uint64_t *sizep)
{
	struct dfs_stat st;
	int error = dfs_getattr(b->mp, b->ino, &st);

	if (!error)
		*sizep = st.size;
	return error;
}

/*
 * FILE regions write only below EOF, as the kernel's writeback does: the
 * part of the last page past EOF and the pages wholly past it are not file
 * data. The size is read before the write, so a truncate racing with it can
 * be undone by the write: the pager's FILE regions rely on the client not
 * truncating a file it has mapped (as a program that did would get SIGBUS).
 */
static int rl_dfs_writepage(struct rl_backing *b, uint64_t index, const void *src)
{
	uint64_t pos = index * RL_PAGE_SIZE;
	size_t len = RL_PAGE_SIZE;
	int error = rl_dfs_check_range(b, index, 1);

	if (error)
		return error;
	if (b->file) {
		uint64_t size;

		error = rl_dfs_file_size(b, &size);
		if (error)
			return error;
		if (pos >= size)
			return 0;
		if (size - pos < len)
			len = (size_t)(size - pos);
	}
	error = rl_dfs_write_all(b, src, len, pos);
	if (error)
		return error;
	error = dfs_writepage(b->mp, b->ino, index);
	if (!error)
		rl_dfs_drop_cached(b, index, index);
	return error;
}

static int rl_dfs_writepages(struct rl_backing *b, uint64_t first, uint64_t n,
			     const void *const *srcs)
{
	uint64_t size = UINT64_MAX, limit = n, written = 0, i, j;
	int error = rl_dfs_check_range(b, first, n);

	if (error || n == 0)
		return error;
	if (b->file) {
		uint64_t eofpg;

		error = rl_dfs_file_size(b, &size);
		if (error)
			return error;
		eofpg = size / RL_PAGE_SIZE + (size % RL_PAGE_SIZE != 0);
		if (first >= eofpg)
			return 0;
		if (eofpg - first < limit)
			limit = eofpg - first;
	}
	/* one dfs_write per run of pages that are contiguous in memory too */
	for (i = 0; i < limit && !error; i = j) {
		uint64_t end;
		size_t len;

		for (j = i + 1; j < limit &&
			    (const char *)srcs[j] == (const char *)srcs[j - 1] + RL_PAGE_SIZE; j++)
			;
		end = (first + j) * RL_PAGE_SIZE;
		len = (size_t)((j - i) * RL_PAGE_SIZE);
		if (end > size)
			len -= (size_t)(end - size);
		error = rl_dfs_write_all(b, srcs[i], len, (first + i) * RL_PAGE_SIZE);
		if (!error)
			written = j;
	}
	/* what reached deepfs's cache is written back even if a later run failed */
	if (written) {
		int wberr = dfs_writepages(b->mp, b->ino, first, first + written - 1);

		if (!wberr)
			rl_dfs_drop_cached(b, first, first + written - 1);
		if (!error)
			error = wberr;
	}
	return error;
}

static int rl_dfs_discard(struct rl_backing *b, uint64_t first, uint64_t n)
{
	int error;

	if (b->file)
		return -EOPNOTSUPP;
	error = rl_dfs_check_range(b, first, n);
	if (error || n == 0)
		return error;
	return dfs_fallocate(b->mp, b->ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			     first * RL_PAGE_SIZE, n * RL_PAGE_SIZE);
}

static void rl_dfs_release(struct rl_backing *b)
{
	/* anonymous: the last reference of an unlinked inode, so this frees it */
	dfs_forget(b->mp, b->ino, 1);
	free(b);
}

const struct rl_aops rl_deepfs_aops = {
	.name = "deepfs",
	.open_anon = rl_dfs_open_anon,
	.open_file = rl_dfs_open_file,
	.readpage = rl_dfs_readpage,
	.writepage = rl_dfs_writepage,
	.writepages = rl_dfs_writepages,
	.discard = rl_dfs_discard,
	.release = rl_dfs_release,
};
