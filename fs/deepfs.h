/* SPDX-License-Identifier: MIT */
/*
 * deepfs: the library interface.
 *
 * This is the only header the FUSE front end (harness/fuse_ll.c), the CLI
 * and, later, the pager include. Everything is addressed by inode number, as
 * in the FUSE low-level API. Every call takes the mount's lock itself and
 * returns 0 (or a byte count) on success and a negative errno on failure;
 * -EUCLEAN means the filesystem found corrupt metadata (XFS's EFSCORRUPTED)
 * and has said what on stderr.
 *
 * Threading: any number of threads may call in at once.
 */
#ifndef DEEPFS_H
#define DEEPFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct dfs_mount;

/* ---- mkfs ---------------------------------------------------------------- */
struct dfs_mkfs_opts {
	uint64_t size;		/* bytes; 0 = the size of the existing file/device */
	uint32_t blocksize;	/* 0 = 4096 */
	uint32_t agcount;	/* 0 = chosen from size */
	uint32_t logblocks;	/* 0 = chosen from size */
	const char *label;
};
/* Creates (or truncates up to size) the image file, or formats a device. */
int dfs_mkfs(const char *path, const struct dfs_mkfs_opts *opts);

/* ---- mount --------------------------------------------------------------- */
struct dfs_mount_opts {
	uint64_t bufcache_bytes;	/* metadata buffer cache budget; 0 = 16 MiB */
	uint64_t pagecache_bytes;	/* file page cache budget; 0 = 64 MiB */
	bool     readonly;		/* no log replay, no writes (fails if the log is dirty) */
	const char *iolog_path;		/* if set, the IO log is written there at unmount */
};
/* Reads and verifies the superblock and AG headers, replays the log. */
int dfs_mount(const char *path, const struct dfs_mount_opts *opts, struct dfs_mount **mpp);
/* Writes back everything, checkpoints the log, marks the fs clean, frees mp. */
int dfs_unmount(struct dfs_mount *mp);
/* Writes back all dirty data and metadata and forces the log (syncfs). */
int dfs_sync(struct dfs_mount *mp);

/* ---- inodes and names ---------------------------------------------------- */
struct dfs_stat {
	uint64_t ino;
	uint32_t mode, nlink, uid, gid, rdev;
	uint64_t size;
	uint64_t blocks;	/* 512-byte units, as st_blocks */
	uint32_t blksize;
	uint32_t gen;
	struct timespec atime, mtime, ctime;
};

uint64_t dfs_root_ino(struct dfs_mount *mp);
int dfs_getattr(struct dfs_mount *mp, uint64_t ino, struct dfs_stat *st);

#define DFS_SET_MODE	(1u << 0)
#define DFS_SET_UID	(1u << 1)
#define DFS_SET_GID	(1u << 2)
#define DFS_SET_SIZE	(1u << 3)	/* truncate or extend */
#define DFS_SET_ATIME	(1u << 4)
#define DFS_SET_MTIME	(1u << 5)
#define DFS_SET_ATIME_NOW (1u << 6)
#define DFS_SET_MTIME_NOW (1u << 7)
#define DFS_SET_CTIME	(1u << 8)
struct dfs_setattr {
	unsigned valid;		/* DFS_SET_* */
	uint32_t mode, uid, gid;
	uint64_t size;
	struct timespec atime, mtime, ctime;
};
int dfs_setattr(struct dfs_mount *mp, uint64_t ino, const struct dfs_setattr *sa,
		struct dfs_stat *st);

/*
 * Lookup counts, as FUSE keeps them: every call that returns a dfs_stat for
 * a name (lookup, create, mkdir, mknod, symlink, link) takes one reference on
 * the inode; dfs_forget drops n. An inode whose link count is 0 is freed when
 * its last reference goes (until then it is on the AGI unlinked list, so a
 * crash frees it at the next mount).
 */
int dfs_lookup(struct dfs_mount *mp, uint64_t dir, const char *name, struct dfs_stat *st);
void dfs_forget(struct dfs_mount *mp, uint64_t ino, uint64_t nlookup);

struct dfs_cred { uint32_t uid, gid; };
int dfs_mknod(struct dfs_mount *mp, uint64_t dir, const char *name, uint32_t mode,
	      uint32_t rdev, const struct dfs_cred *cr, struct dfs_stat *st);
int dfs_mkdir(struct dfs_mount *mp, uint64_t dir, const char *name, uint32_t mode,
	      const struct dfs_cred *cr, struct dfs_stat *st);
int dfs_symlink(struct dfs_mount *mp, uint64_t dir, const char *name, const char *target,
		const struct dfs_cred *cr, struct dfs_stat *st);
/* Returns the target length; buf gets it NUL-terminated if it fits. */
ssize_t dfs_readlink(struct dfs_mount *mp, uint64_t ino, char *buf, size_t size);
int dfs_link(struct dfs_mount *mp, uint64_t ino, uint64_t newdir, const char *newname,
	     struct dfs_stat *st);
int dfs_unlink(struct dfs_mount *mp, uint64_t dir, const char *name);
int dfs_rmdir(struct dfs_mount *mp, uint64_t dir, const char *name);
#define DFS_RENAME_NOREPLACE	(1u << 0)
#define DFS_RENAME_EXCHANGE	(1u << 1)
int dfs_rename(struct dfs_mount *mp, uint64_t olddir, const char *oldname,
	       uint64_t newdir, const char *newname, unsigned flags);

/*
 * Directory listing. The callback gets each entry with the cookie that
 * resumes *after* it; it returns non-zero to stop (buffer full). Cookies stay
 * valid across inserts and removals of other entries. "." and ".." are
 * included (cookies 1 and 2); start with cookie 0.
 */
typedef int (*dfs_filldir_t)(void *ctx, const char *name, size_t namelen, uint64_t ino,
			     uint32_t mode, uint64_t next_cookie);
int dfs_readdir(struct dfs_mount *mp, uint64_t dir, uint64_t cookie, dfs_filldir_t fill,
		void *ctx);

/* ---- file data ----------------------------------------------------------- */
ssize_t dfs_read(struct dfs_mount *mp, uint64_t ino, void *buf, size_t len, uint64_t off);
/* Buffered write: data goes to the page cache as delayed allocation. */
ssize_t dfs_write(struct dfs_mount *mp, uint64_t ino, const void *buf, size_t len,
		  uint64_t off);
int dfs_fsync(struct dfs_mount *mp, uint64_t ino, bool datasync);
/* mode: 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE,
 * FALLOC_FL_ZERO_RANGE (with or without KEEP_SIZE). */
int dfs_fallocate(struct dfs_mount *mp, uint64_t ino, int mode, uint64_t off, uint64_t len);

/*
 * Page-granular entry points for the pager's a_ops (pages are
 * DFS_PAGE_SIZE = 4096 bytes, whatever the block size). writepage and
 * writepages write back dirty cached pages: this is where delayed allocation
 * is converted to real blocks (the deep path).
 */
#define DFS_PAGE_SIZE 4096u
int dfs_readpage(struct dfs_mount *mp, uint64_t ino, uint64_t index, void *dst);
int dfs_writepage(struct dfs_mount *mp, uint64_t ino, uint64_t index);
int dfs_writepages(struct dfs_mount *mp, uint64_t ino, uint64_t start, uint64_t end);

/*
 * External pages: the pager's frames are the page cache of its inodes, so
 * their data never passes through deepfs's own cache (fs/writeback_ext.c).
 *
 * dfs_page_mkwrite is the kernel's ->page_mkwrite: page index is about to
 * be dirtied outside deepfs. It reserves delayed allocation for the page's
 * blocks below EOF that have none, so that a full filesystem says -ENOSPC
 * now, at fault time, and not later at writeback where the data would be
 * lost. A page wholly past EOF has nothing to reserve (0; writeback writes
 * nothing there). The reservation lasts while the inode is in core: hold a
 * lookup reference (the pager does).
 *
 * dfs_writepages_ext writes pages first..first+n-1 from srcs[i] (4096-byte
 * aligned, DFS_PAGE_SIZE bytes each, unchanged by the caller until the
 * call returns): blocks still without space are reserved (-ENOSPC if that
 * fails: the pages before the first that could not be reserved are still
 * written), delalloc is converted, the IO goes straight from srcs through
 * the block layer (logged as DATA), and its completion converts unwritten
 * extents and moves the on-disk size. Only the part below EOF is written;
 * the file never grows, and the bytes of the last page past EOF reach the
 * disk as zeroes whatever srcs holds there. Returns when the IO completed
 * (not fsynced). Deepfs's own cached copies of these pages give way to the
 * caller's data: a dirty one gets it copied in (so nothing is lost if the
 * IO fails), and all of them are dropped once it is on disk.
 *
 * flags: DFS_WB_SINGLE sends one IO per page even where the disk blocks of
 * several pages are contiguous (reclaim's single-page ->writepage); the
 * default sends one IO per contiguous disk run, up to DFS_BIO_MAX_VECS
 * pages (blkdev.h). A page whose own blocks are not contiguous (block size
 * below 4096) needs one IO per piece either way.
 *
 * st (may be NULL) gets what was submitted, also on error.
 */
#define DFS_WB_SINGLE	(1u << 0)
struct dfs_wb_stats {
	uint64_t ios;		/* write IOs submitted */
	uint64_t bytes;		/* their bytes */
	uint64_t pages;		/* pages (wholly or partly below EOF) written */
};
int dfs_page_mkwrite(struct dfs_mount *mp, uint64_t ino, uint64_t index);
int dfs_writepages_ext(struct dfs_mount *mp, uint64_t ino, uint64_t first, uint64_t n,
		       const void *const *srcs, unsigned flags, struct dfs_wb_stats *st);

/* ---- filesystem ---------------------------------------------------------- */
struct dfs_statfs {
	uint32_t bsize;
	uint64_t blocks, bfree, bavail, files, ffree;
	uint32_t namelen;
};
int dfs_statfs(struct dfs_mount *mp, struct dfs_statfs *sf);

/* ---- extended attributes ------------------------------------------------- */
#define DFS_XATTR_CREATE	1	/* as XATTR_CREATE */
#define DFS_XATTR_REPLACE	2	/* as XATTR_REPLACE */
int dfs_setxattr(struct dfs_mount *mp, uint64_t ino, const char *name, const void *value,
		 size_t size, int flags);
/* Return the value size; copy it if size is large enough (size 0 = query). */
ssize_t dfs_getxattr(struct dfs_mount *mp, uint64_t ino, const char *name, void *value,
		     size_t size);
/* NUL-separated names, as listxattr(2). */
ssize_t dfs_listxattr(struct dfs_mount *mp, uint64_t ino, char *list, size_t size);
int dfs_removexattr(struct dfs_mount *mp, uint64_t ino, const char *name);

/* ---- fsck ---------------------------------------------------------------- */
struct dfs_fsck_opts {
	bool repair;
	bool verbose;
};
struct dfs_fsck_result {
	uint64_t problems;	/* inconsistencies found */
	uint64_t repaired;	/* of those, fixed */
	uint64_t inodes, dirs, files, blocks_used, blocks_free;
};
/* 0 if the filesystem is consistent (or was repaired fully), 1 if problems
 * remain, negative errno if it could not be checked. Messages go to stderr. */
int dfs_fsck(const char *path, const struct dfs_fsck_opts *opts, struct dfs_fsck_result *res);

#endif /* DEEPFS_H */
