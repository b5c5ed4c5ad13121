/* SPDX-License-Identifier: MIT */
/*
 * The pager's backing store, reached only through this table, as the kernel
 * reaches a filesystem through address_space_operations. Two backends:
 *
 *   deepfs (aops_deepfs.c): an anonymous region is an unlinked deepfs inode
 *       of the region's size (created in the root directory, unlinked at
 *       once, freed when the region goes); a FILE region is the mapped
 *       file's own inode. The pager's pages are the page cache of those
 *       inodes: writeback goes from the pager's memory straight to disk
 *       through deepfs's delayed-allocation path (docs/allocation-path.md)
 *       and its io_uring block layer (dfs_writepages_ext), page_mkwrite
 *       reserves the delayed allocation (dfs_page_mkwrite).
 *   file (aops_file.c): an unlinked plain file on the host (O_TMPFILE in
 *       backing_dir), written through io_uring, read with pread: the shallow
 *       reference.
 *
 * Every call is synchronous, may block on IO, and is made without the pager
 * lock. Calls on one rl_backing are never concurrent for the same page
 * index, but may be for different indexes. Pages are 4096 bytes; the
 * sources of writepage(s) are page-aligned (deepfs does O_DIRECT from them)
 * and must not change until the call returns.
 */
#ifndef RECLAIMLAB_PAGER_AOPS_H
#define RECLAIMLAB_PAGER_AOPS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define RL_PAGE_SIZE	4096u
#define RL_PAGE_SHIFT	12

struct rl_backing;		/* one per region, private to the backend */
struct rl_backend;

struct rl_aops {
	const char *name;	/* "deepfs", "file" */
	/* A new, empty backing object for an anonymous region of npages. */
	int (*open_anon)(struct rl_backend *be, uint64_t npages, struct rl_backing **bp);
	/* The backing object of an existing file (deepfs: its inode number);
	 * -EOPNOTSUPP where the backend has no files. */
	int (*open_file)(struct rl_backend *be, uint64_t ino, struct rl_backing **bp);
	/* Fills dst with page index. A page never written reads as zeroes (the
	 * pager does not ask for those of anonymous regions). */
	int (*readpage)(struct rl_backing *b, uint64_t index, void *dst);
	/* Writes one page, one IO, and waits until it is durable in the
	 * backing store as far as the backend goes (deepfs: written to disk by
	 * dfs_writepages_ext, not fsynced). FILE regions: only the part below
	 * the file's size is written; never extends the file. */
	int (*writepage)(struct rl_backing *b, uint64_t index, const void *src);
	/* n contiguous pages starting at first, srcs[i] for page first+i, as
	 * writepage does for one. batch: one IO per contiguous run on disk
	 * (deepfs: per physically contiguous extent run, up to 64 pages; file:
	 * one writev per run of up to IOV_MAX pages); !batch: one IO per page
	 * (reclaim's single-page writeback, measured against batching). */
	int (*writepages)(struct rl_backing *b, uint64_t first, uint64_t n,
			  const void *const *srcs, bool batch);
	/* Optional (NULL: nothing to reserve): page index is about to be
	 * dirtied in memory (the kernel's ->page_mkwrite, called at the write
	 * fault): reserve its backing space now, so that a full store fails
	 * the fault with -ENOSPC instead of losing the data at writeback. */
	int (*page_mkwrite)(struct rl_backing *b, uint64_t index);
	/* Optional (NULL: no such lock): a missing fault that reads its page
	 * is about to allocate a frame and read into it. fault_begin takes the
	 * backend's lock that keeps the page from being truncated or punched
	 * until fault_end (the kernel's filemap_fault under the mapping's
	 * invalidate_lock; deepfs: the inode's IO lock, shared). The frame
	 * allocation between them may enter reclaim. */
	void (*fault_begin)(struct rl_backing *b);
	void (*fault_end)(struct rl_backing *b);
	/* The pages' contents no longer matter (munmap, MADV_DONTNEED): free
	 * their space (anonymous regions only). */
	int (*discard)(struct rl_backing *b, uint64_t first, uint64_t n);
	/* The region is gone: free the object (anonymous: the inode/file and all
	 * its blocks; FILE: nothing but the reference). */
	void (*release)(struct rl_backing *b);
};

extern const struct rl_aops rl_deepfs_aops;
extern const struct rl_aops rl_file_aops;

struct dfs_mount;

struct rl_backend {
	const struct rl_aops *ops;
	struct dfs_mount *mp;		/* deepfs */
	const char *dir;		/* file: host directory */
	/* Write IOs the backend submitted for writepage(s) and their bytes,
	 * across all its regions and threads (the pager's write IO count and
	 * mean size). Only ever added to. */
	atomic_uint_fast64_t write_ios, write_bytes;
};

/* Human-readable backend names for --backend and messages. */
const char *rl_backend_name(const struct rl_backend *be);

#endif
