/* SPDX-License-Identifier: MIT */
/* Messages from the filesystem, in the kernel's style: "deepfs (IMAGE): ...". */
#ifndef DEEPFS_MSG_H
#define DEEPFS_MSG_H

#include <errno.h>

struct dfs_mount;

#define EFSCORRUPTED EUCLEAN	/* as XFS: metadata failed verification */

void dfs_err(const struct dfs_mount *mp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void dfs_warn(const struct dfs_mount *mp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void dfs_info(const struct dfs_mount *mp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Quiet mode for tests that provoke errors on purpose. */
void dfs_msg_set_quiet(int quiet);

/* Report corruption found in a block and return -EFSCORRUPTED. */
int dfs_corrupt(const struct dfs_mount *mp, const char *what, unsigned long long blkno,
		const char *why);

#endif
