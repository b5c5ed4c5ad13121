/* SPDX-License-Identifier: MIT */
/*
 * Generic B+tree (XFS's xfs_btree.c): one implementation, four trees, each
 * described by a struct dfs_btree_ops. Blocks are struct dfs_btree_block
 * (format.h) followed by records (leaves) or keys then pointers (nodes).
 *
 * A cursor (struct dfs_btree_cur, as big as XFS's, since it lives on the
 * stack of the deep allocation path) holds the path from the root to the
 * current record: one held buffer and one index per level. All changes go
 * through the cursor's transaction.
 *
 * Lookups position the cursor; insert splits full blocks (and grows a new
 * root), delete joins or borrows from siblings when a block falls under half
 * full (and shrinks the root); update rewrites the record under the cursor and
 * fixes the keys above it.
 */
#ifndef DEEPFS_BTREE_H
#define DEEPFS_BTREE_H

#include <stdbool.h>
#include <stdint.h>

#include "format.h"

struct dfs_mount;
struct dfs_trans;
struct dfs_buf;
struct dfs_buf_ops;
struct dfs_btree_cur;

#define DFS_BTREE_MAXLEVELS 9

/* Records and keys are copied through these unions, sized for the largest. */
union dfs_btree_rec {
	struct dfs_alloc_rec alloc;
	struct dfs_inobt_rec inobt;
	struct dfs_bmbt_rec bmbt;
};
union dfs_btree_key {
	dfs_alloc_key_t alloc;
	struct dfs_inobt_key inobt;
	struct dfs_bmbt_key bmbt;
};

enum dfs_btnum { DFS_BTNUM_BNO, DFS_BTNUM_CNT, DFS_BTNUM_INO, DFS_BTNUM_BMAP };

struct dfs_btree_ops {
	enum dfs_btnum btnum;
	uint32_t magic;
	uint16_t rec_len;
	uint16_t key_len;
	const struct dfs_buf_ops *buf_ops;
	/* key of a record */
	void (*init_key_from_rec)(union dfs_btree_key *key, const union dfs_btree_rec *rec);
	/* key of the record the cursor's search is for (cur->bc_rec) */
	void (*init_key_from_irec)(const struct dfs_btree_cur *cur, union dfs_btree_key *key);
	/* <0, 0, >0: key k1 against k2 */
	int64_t (*cmp_keys)(const union dfs_btree_key *k1, const union dfs_btree_key *k2);
	/* root pointer and height, kept by the tree's owner (AGF, AGI, inode) */
	void (*get_root)(struct dfs_btree_cur *cur, uint64_t *root, int *nlevels);
	void (*set_root)(struct dfs_btree_cur *cur, uint64_t root, int inc);	/* inc: +1 grow, -1 shrink, 0 move */
	/* block allocation for the tree: AGFL for bnobt/cntbt, the allocator for
	 * inobt and bmbt. Returns 0 and *fsbno, or -ENOSPC. */
	int (*alloc_block)(struct dfs_btree_cur *cur, uint64_t hint, uint64_t *fsbno);
	int (*free_block)(struct dfs_btree_cur *cur, uint64_t fsbno);
	/* records checked by the invariant checker and fsck: 1 if valid, 0 if not */
	int (*rec_valid)(const struct dfs_btree_cur *cur, const union dfs_btree_rec *rec);
	/* owner field written in each block's header */
	uint64_t (*owner)(const struct dfs_btree_cur *cur);
};

enum dfs_lookup { DFS_LOOKUP_EQ, DFS_LOOKUP_LE, DFS_LOOKUP_GE };

struct dfs_btree_cur {
	struct dfs_trans *bc_tp;
	struct dfs_mount *bc_mp;
	const struct dfs_btree_ops *bc_ops;
	union dfs_btree_rec bc_rec;		/* what the last lookup was for */
	struct dfs_buf *bc_bufs[DFS_BTREE_MAXLEVELS];
	int bc_ptrs[DFS_BTREE_MAXLEVELS];	/* 1-based index at each level, XFS style */
	uint8_t bc_ra[DFS_BTREE_MAXLEVELS];
	int bc_nlevels;
	union {
		struct {		/* bnobt, cntbt, inobt */
			struct dfs_buf *agbp;	/* AGF or AGI buffer, joined to bc_tp */
			uint32_t agno;
		} a;
		struct {		/* bmbt */
			struct dfs_inode *ip;
			int allocated;	/* blocks allocated by splits, for di_nblocks */
			uint64_t firstblock; /* allocation hint */
		} b;
	} bc_private;
	uint64_t bc_stats_splits, bc_stats_joins;
};

/* Cursor set-up (the tree-specific constructors live with each tree). */
void dfs_btree_init_cursor(struct dfs_btree_cur *cur, struct dfs_trans *tp,
			   struct dfs_mount *mp, const struct dfs_btree_ops *ops);
void dfs_btree_del_cursor(struct dfs_btree_cur *cur, int error);

/* *stat = 1 if the cursor points at a record afterwards. */
int dfs_btree_lookup(struct dfs_btree_cur *cur, enum dfs_lookup dir, int *stat);
int dfs_btree_get_rec(struct dfs_btree_cur *cur, union dfs_btree_rec *rec, int *stat);
int dfs_btree_increment(struct dfs_btree_cur *cur, int level, int *stat);
int dfs_btree_decrement(struct dfs_btree_cur *cur, int level, int *stat);
/* Insert cur->bc_rec at the cursor's position (after a failed EQ lookup);
 * afterwards the cursor points at the new record. */
int dfs_btree_insert(struct dfs_btree_cur *cur, int *stat);
/* Delete the record under the cursor; afterwards the cursor points where it
 * was: at its successor, or just past the end of the leaf before it (so an
 * increment reaches the successor). */
int dfs_btree_delete(struct dfs_btree_cur *cur, int *stat);
/* Rewrite the record under the cursor; its key may change only within the
 * bounds of its neighbours (the parents' keys are fixed up). */
int dfs_btree_update(struct dfs_btree_cur *cur, const union dfs_btree_rec *rec);
/* Make a new empty tree: one leaf block at fsbno. */
int dfs_btree_init_block(struct dfs_trans *tp, const struct dfs_btree_ops *ops, uint64_t fsbno,
			 uint64_t owner, int level, struct dfs_buf **bpp);
/* Records per block for this tree and block size. */
int dfs_btree_maxrecs(const struct dfs_mount *mp, const struct dfs_btree_ops *ops, bool leaf);

/* Walk every record in order (fsck, tests, bmbt load). The callback returns
 * non-zero to stop, which is returned. */
typedef int (*dfs_btree_rec_fn)(struct dfs_btree_cur *cur, const union dfs_btree_rec *rec,
				void *priv);
int dfs_btree_query_all(struct dfs_btree_cur *cur, dfs_btree_rec_fn fn, void *priv);
/* Visit every block of the tree (fsck's block accounting). */
typedef int (*dfs_btree_blk_fn)(struct dfs_btree_cur *cur, int level, uint64_t fsbno,
				void *priv);
int dfs_btree_visit_blocks(struct dfs_btree_cur *cur, dfs_btree_blk_fn fn, void *priv);
/* Check every invariant (key order, keys match children, sibling links,
 * levels, fill, record validity); reports and returns -EFSCORRUPTED. */
int dfs_btree_check(struct dfs_btree_cur *cur);

/*
 * Copy a cursor (XFS's xfs_btree_dup_cursor): same path, same transaction.
 * Without a transaction each copy holds its own buffer references.
 */
void dfs_btree_dup_cursor(const struct dfs_btree_cur *cur, struct dfs_btree_cur *ncur);
/*
 * Structural checks of a block for the trees' buffer verifiers: header
 * magic, level below DFS_BTREE_MAXLEVELS, numrecs within maxrecs, sibling
 * addresses inside the filesystem. Callers check CRC/UUID/self address with
 * dfs_blkhdr_verify first on reads.
 */
int dfs_btree_verify_block(struct dfs_buf *bp, const struct dfs_btree_ops *ops);

#endif /* DEEPFS_BTREE_H */
