/* SPDX-License-Identifier: MIT */
/*
 * a_ops on deepfs inodes (see aops.h).
 *
 * An anonymous region is an inode created in the root directory and
 * unlinked at once: the lookup reference dfs_mknod took keeps it alive (link
 * count 0, on the AGI unlinked list, so a crash frees it at the next mount),
 * and dfs_forget of that reference frees it and its blocks. Its size is the
 * region's from the start (sparse), so that it is a file like any other to
 * deepfs's EOF rules: dfs_page_mkwrite reserves below EOF, and writeback
 * never has to grow it. A FILE region is the mapped file's own inode, with
 * a lookup reference of its own.
 *
 * The pager's pages are these inodes' page cache: writepage(s) hand them to
 * dfs_writepages_ext, which converts their delayed allocation (the deep
 * path the project measures) and writes them from the pager's memory, with
 * no copy in deepfs's cache (which would double-cache what the pager just
 * evicted, so that --mem would not be the memory the client gets).
 * page_mkwrite is dfs_page_mkwrite. A page read for a fault is dropped from
 * deepfs's cache after the read (the client holds it now; dfs_readpage
 * reads no ahead); FILE pages stay cached: they are the file's, shared
 * with FUSE.
 *
 * deepfs.h has no call for three things done here, a reference by inode
 * number, dropping clean cached pages and the fault lock (the inode's IO
 * lock, held shared across the fault's frame allocation and read), so
 * those use deepfs's internals (inode.h, pagecache.h) as its own entry
 * points do.
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
	struct rl_backend *be;		/* its write IO counters */
	struct dfs_mount *mp;
	uint64_t ino;
	/* In core while our lookup reference lasts (deepfs keeps inodes with
	 * lookups cached): its IO lock is the fault lock. */
	struct dfs_inode *ip;
	bool file;		/* a FILE region: never extend, never discard */
	uint64_t npages;	/* anonymous: the region's size, a bound on indexes */
};

/* Tries of a fresh name: a name can only be taken by a daemon that died
 * between mknod and unlink with the same pid. */
#define RL_DFS_NAME_TRIES	16

static atomic_uint_fast64_t rl_dfs_anon_counter;

static int rl_dfs_new(struct rl_backend *be, uint64_t ino, bool file, uint64_t npages,
		      struct rl_backing **bp)
{
	struct rl_backing *b = calloc(1, sizeof(*b));
	struct dfs_mount *mp = be->mp;
	struct dfs_inode *ip;
	int error;

	if (!b)
		return -ENOMEM;
	pthread_mutex_lock(&mp->m_lock);
	error = dfs_iget(mp, NULL, ino, &ip);
	if (!error) {
		b->ip = ip;
		dfs_irele(ip);	/* our lookup reference keeps it in core */
	}
	pthread_mutex_unlock(&mp->m_lock);
	if (error) {
		free(b);
		return error;
	}
	b->be = be;
	b->mp = be->mp;
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
	if (npages) {
		struct dfs_setattr sa = { .valid = DFS_SET_SIZE, .size = npages * RL_PAGE_SIZE };

		error = dfs_setattr(mp, st.ino, &sa, NULL);
		if (error) {
			fprintf(stderr, "reclaimlab: deepfs: cannot size the backing inode %" PRIu64 " of an anonymous region to %" PRIu64 " pages: %s\n",
				st.ino, npages, strerror(-error));
			dfs_forget(mp, st.ino, 1);	/* frees the unlinked inode */
			return error;
		}
	}
	error = rl_dfs_new(be, st.ino, false, npages, bp);
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
	error = rl_dfs_new(be, ino, true, 0, bp);
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
 * Drops pages [first, last] of an anonymous region from deepfs's cache
 * after a read. Writes of anonymous regions bypass deepfs's cache, so no
 * page of theirs is dirty there; were one, it would be the only copy, and
 * invalidation drops dirty pages too: checking the inode's dirty count is
 * cheap and errs on the safe side (deepfs's reclaim frees what is left).
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

static void rl_dfs_count(struct rl_backing *b, const struct dfs_wb_stats *st)
{
	atomic_fetch_add(&b->be->write_ios, st->ios);
	atomic_fetch_add(&b->be->write_bytes, st->bytes);
}

/*
 * FILE regions write only below EOF, as the kernel's writeback does:
 * dfs_writepages_ext cuts the range at EOF and writes zeroes for the rest
 * of the last page. The pager's FILE regions rely on the client not
 * truncating a file it has mapped (as a program that did would get SIGBUS).
 */
static int rl_dfs_writepages(struct rl_backing *b, uint64_t first, uint64_t n,
			     const void *const *srcs, bool batch)
{
	struct dfs_wb_stats st;
	int error = rl_dfs_check_range(b, first, n);

	if (error || n == 0)
		return error;
	error = dfs_writepages_ext(b->mp, b->ino, first, n, srcs, batch ? 0 : DFS_WB_SINGLE, &st);
	rl_dfs_count(b, &st);
	return error;
}

static int rl_dfs_writepage(struct rl_backing *b, uint64_t index, const void *src)
{
	return rl_dfs_writepages(b, index, 1, &src, false);
}

static int rl_dfs_page_mkwrite(struct rl_backing *b, uint64_t index)
{
	int error = rl_dfs_check_range(b, index, 1);

	if (error)
		return error;
	return dfs_page_mkwrite(b->mp, b->ino, index);
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

static void rl_dfs_fault_begin(struct rl_backing *b)
{
	dfs_ilock_io(b->ip, false);
}

static void rl_dfs_fault_end(struct rl_backing *b)
{
	dfs_iunlock_io(b->ip, false);
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
	.page_mkwrite = rl_dfs_page_mkwrite,
	.fault_begin = rl_dfs_fault_begin,
	.fault_end = rl_dfs_fault_end,
	.discard = rl_dfs_discard,
	.release = rl_dfs_release,
};
