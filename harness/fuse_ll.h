/* SPDX-License-Identifier: MIT */
/*
 * The FUSE front end of deepfs (libfuse3 low-level API): every request is
 * translated into the inode-based calls of fs/deepfs.h; errors go back as
 * fuse_reply_err(-ret). The FUSE inode number is the deepfs inode number,
 * except FUSE_ROOT_ID, which stands for dfs_root_ino().
 */
#ifndef RECLAIMLAB_FUSE_LL_H
#define RECLAIMLAB_FUSE_LL_H

#include <stdbool.h>
#include <stdint.h>

struct dfs_mount;
struct rl_fuse;

struct rl_fuse_config {
	const char *image;	/* shown as fsname=deepfs:IMAGE */
	const char *mountpoint;
	const char *options;	/* more -o options for FUSE, or NULL */
	bool readonly;
	bool debug;		/* libfuse's request trace on stderr */
	unsigned max_threads;	/* 0 = libfuse's default */
	/* deepfs is written behind this mount too (the pager's file regions):
	 * the kernel drops a file's cached pages at each open, and keeps them at
	 * most its 1 s attribute timeout while open */
	bool other_writers;
};

/*
 * Mounts mp at cfg->mountpoint. Returns 0, -EINVAL if FUSE rejected the
 * options, or another negative errno. On success the session owns mp: it is
 * unmounted when the session ends.
 */
int rl_fuse_mount(struct dfs_mount *mp, const struct rl_fuse_config *cfg, struct rl_fuse **fp);

/*
 * Serves requests until the filesystem is unmounted (fusermount3 -u) or a
 * SIGINT, SIGTERM or SIGHUP arrives, then unmounts deepfs (dfs_unmount:
 * everything written back, log checkpointed) and frees f. Returns 0 or the
 * negative errno of what failed.
 */
int rl_fuse_run(struct rl_fuse *f);

/*
 * For a process that serves more than FUSE (`reclaimlab serve`): serves
 * requests in a thread of its own, with no signal handlers of libfuse's (the
 * caller owns SIGINT and SIGTERM). Installs a do-nothing SIGUSR1 handler,
 * which rl_fuse_stop uses to wake the loop. Returns 0, or a negative errno
 * with everything rl_fuse_run would undo undone and f freed.
 */
int rl_fuse_start(struct rl_fuse *f);

/*
 * Tells the kernel to drop its cached pages of inode ino in [off, off+len):
 * the file was written behind FUSE's back (by the pager's write-back of a
 * shared mapping). Safe from any thread that is not serving a FUSE request
 * for that inode; an inode the kernel does not know is not an error.
 */
void rl_fuse_inval_data(struct rl_fuse *f, uint64_t ino, uint64_t off, uint64_t len);

/*
 * Stops a session started by rl_fuse_start (requests in progress finish),
 * then does what rl_fuse_run does when its loop ends: unmounts the FUSE
 * mount and deepfs, frees f, returns 0 or the negative errno of what failed.
 */
int rl_fuse_stop(struct rl_fuse *f);

#endif /* RECLAIMLAB_FUSE_LL_H */
