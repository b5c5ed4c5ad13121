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

struct dfs_mount;
struct rl_fuse;

struct rl_fuse_config {
	const char *image;	/* shown as fsname=deepfs:IMAGE */
	const char *mountpoint;
	const char *options;	/* more -o options for FUSE, or NULL */
	bool readonly;
	bool debug;		/* libfuse's request trace on stderr */
	unsigned max_threads;	/* 0 = libfuse's default */
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

#endif /* RECLAIMLAB_FUSE_LL_H */
