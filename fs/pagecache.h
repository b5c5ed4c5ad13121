/* SPDX-License-Identifier: MIT */
/*
 * The page cache (owned by the data engineer, who completes this header).
 * The lead's super.c calls the three lifecycle functions below at mount,
 * sync and unmount; keep these names.
 */
#ifndef DEEPFS_PAGECACHE_H
#define DEEPFS_PAGECACHE_H

#include <stdint.h>

struct dfs_mount;

/* Set up mp->m_pagecache with a budget of budget_bytes of 4096-byte pages. */
int dfs_pagecache_init(struct dfs_mount *mp, uint64_t budget_bytes);
/* Write back every dirty page of every inode and wait (syncfs). */
int dfs_pagecache_sync(struct dfs_mount *mp);
/* Free all pages; called at unmount after dfs_pagecache_sync. */
void dfs_pagecache_destroy(struct dfs_mount *mp);

#endif /* DEEPFS_PAGECACHE_H */
