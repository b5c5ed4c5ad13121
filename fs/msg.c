/* SPDX-License-Identifier: MIT */
/*
 * Messages in the kernel's style, "deepfs (IMAGE): ...", one line each; as
 * with xfs_err/xfs_warn the level is not spelled out.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "mount.h"
#include "msg.h"

static atomic_int dfs_msg_quiet;

void dfs_msg_set_quiet(int quiet)
{
	atomic_store(&dfs_msg_quiet, quiet);
}

static void dfs_vmsg(const struct dfs_mount *mp, const char *fmt, va_list ap)
{
	char line[1024];

	if (atomic_load(&dfs_msg_quiet))
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	/* one fprintf per message so that lines of several threads don't mix */
	fprintf(stderr, "deepfs (%s): %s\n", mp && mp->m_fsname ? mp->m_fsname : "-", line);
}

void dfs_err(const struct dfs_mount *mp, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dfs_vmsg(mp, fmt, ap);
	va_end(ap);
}

void dfs_warn(const struct dfs_mount *mp, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dfs_vmsg(mp, fmt, ap);
	va_end(ap);
}

void dfs_info(const struct dfs_mount *mp, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dfs_vmsg(mp, fmt, ap);
	va_end(ap);
}

int dfs_corrupt(const struct dfs_mount *mp, const char *what, unsigned long long blkno,
		const char *why)
{
	dfs_err(mp, "metadata corruption in %s block %llu: %s", what, blkno, why);
	return -EFSCORRUPTED;
}
