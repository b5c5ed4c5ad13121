/* SPDX-License-Identifier: MIT */
/*
 * Free space allocation (XFS's xfs_alloc.c): extents are allocated from and
 * freed to an AG's two free-space B+trees, bnobt (by block number) and cntbt
 * (by length), always updated together (dfs_alloc_fixup_trees). Btree blocks
 * for those two trees come from the AGFL, refilled before each allocation by
 * dfs_alloc_fix_freelist so that a split never recurses into the allocator.
 *
 * Extents freed by a transaction are "busy" until its log record is durable:
 * reusing one forces the log first, so a crash can never leave a file
 * pointing at blocks that another file has meanwhile written.
 */
#ifndef DEEPFS_ALLOC_H
#define DEEPFS_ALLOC_H

#include <stdint.h>

struct dfs_mount;
struct dfs_trans;
struct dfs_buf;
struct dfs_perag;

enum dfs_alloctype {
	DFS_ALLOCTYPE_THIS_AG,		/* anywhere in agno: by size (cntbt) */
	DFS_ALLOCTYPE_START_BNO,	/* near fsbno, trying other AGs after */
	DFS_ALLOCTYPE_NEAR_BNO,		/* near fsbno, in its AG only */
	DFS_ALLOCTYPE_THIS_BNO,		/* exactly at fsbno */
};

/* The allocation argument block; lives on the stack of the deep path (its
 * size is about XFS's xfs_alloc_arg, 136 bytes). */
struct dfs_alloc_arg {
	struct dfs_trans *tp;
	struct dfs_mount *mp;
	struct dfs_buf *agbp;		/* AGF buffer of the AG being tried */
	struct dfs_perag *pag;
	uint64_t fsbno;			/* in: hint; out: result or DFS_NULLFSBLOCK */
	uint32_t agno;
	uint32_t agbno;
	uint32_t minlen;		/* at least this long */
	uint32_t maxlen;		/* at most this long */
	uint32_t mod, prod;		/* len % prod == mod, if prod > 1 (best effort, as
					 * XFS: not below minlen; a maxlen result stays) */
	uint32_t alignment;		/* agbno alignment (inode chunks) */
	uint32_t minleft;		/* blocks that must remain in the AG after */
	uint32_t total;			/* blocks the whole operation still needs */
	uint32_t len;			/* out: length allocated */
	enum dfs_alloctype type;
	enum dfs_alloctype otype;
	uint64_t owner;			/* inode number or AG, for messages */
	int wasdel;			/* converting delalloc: blocks were reserved */
	int userdata;			/* file data, not metadata */
	int busy_forced;		/* a busy extent forced the log */
};

/*
 * Allocate one extent; on failure args->fsbno = DFS_NULLFSBLOCK and 0 is
 * returned (ENOSPC is not an error at this level, as in XFS). args->len
 * blocks are charged to tp's reservation (dfs_trans_use_blocks) unless
 * args->wasdel. THIS_AG, NEAR_BNO and THIS_BNO stay in fsbno's AG; only
 * START_BNO moves on to the next AGs (by size there). alignment and prod 0
 * mean 1. Even a failed allocation may have refilled or shrunk an AG's
 * free list in tp: commit tp rather than cancel it (a cancel of a dirty
 * transaction shuts the filesystem down).
 */
int dfs_alloc_vextent(struct dfs_alloc_arg *args);
/* Free an extent into its AG's trees (marks it busy); the blocks go back
 * to tp's reservation (dfs_trans_free_blocks). */
int dfs_free_extent(struct dfs_trans *tp, uint64_t fsbno, uint32_t len);

/* mkfs: write AG agno's headers and empty trees (ag.c). agbnos below
 * reserved_until are in use (AG 0: the log); the AGFL is filled with
 * DFS_AGFL_RESERVE blocks starting at DFS_AG_FIRST_FREE. */
int dfs_ag_init_headers(struct dfs_mount *mp, uint32_t agno, uint32_t agblocks_this_ag,
			uint32_t reserved_until);

/* AGF/AGFL/AGI buffer reads with verifiers. */
extern const struct dfs_buf_ops dfs_agf_buf_ops;
extern const struct dfs_buf_ops dfs_agfl_buf_ops;
extern const struct dfs_buf_ops dfs_agi_buf_ops;
int dfs_alloc_read_agf(struct dfs_mount *mp, struct dfs_trans *tp, uint32_t agno,
		       struct dfs_buf **bpp);
int dfs_read_agi(struct dfs_mount *mp, struct dfs_trans *tp, uint32_t agno, struct dfs_buf **bpp);
/* Load pag counters from the AG headers at mount. */
int dfs_perag_init(struct dfs_mount *mp);
void dfs_perag_destroy(struct dfs_mount *mp);

/*
 * The AGFL ring (XFS's xfs_alloc_get_freelist/put_freelist): take a block
 * off the front (*agbno = DFS_NULLAGBLOCK when empty) or put one at the end.
 * btreeblk: the block goes to/comes from a free-space btree, so the AGF's
 * btreeblks changes with flcount. agbp is the AGF, joined to tp.
 */
int dfs_alloc_get_freelist(struct dfs_trans *tp, struct dfs_buf *agbp, uint32_t *agbno,
			   int btreeblk);
int dfs_alloc_put_freelist(struct dfs_trans *tp, struct dfs_buf *agbp, uint32_t agbno,
			   int btreeblk);
/* AGFL blocks an AG must hold before an allocation can run in it. */
uint32_t dfs_alloc_min_freelist(const struct dfs_mount *mp, const struct dfs_buf *agbp);

/* Busy extents. */
int dfs_extent_busy_insert(struct dfs_trans *tp, uint32_t agno, uint32_t agbno, uint32_t len);
/* 1 if any part of [agbno, agbno+len) is busy */
int dfs_extent_busy_search(struct dfs_mount *mp, uint32_t agno, uint32_t agbno, uint32_t len);
void dfs_extent_busy_clear_all(struct dfs_mount *mp);	/* after a log force */

/* Free-space btree cursors (alloc_btree.c). */
struct dfs_btree_cur;
void dfs_allocbt_init_cursor(struct dfs_btree_cur *cur, struct dfs_trans *tp,
			     struct dfs_buf *agbp, uint32_t agno, int btnum);
extern const struct dfs_btree_ops dfs_bnobt_ops;
extern const struct dfs_btree_ops dfs_cntbt_ops;

#endif /* DEEPFS_ALLOC_H */
