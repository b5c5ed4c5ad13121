/* SPDX-License-Identifier: MIT */
/*
 * fsck's internals, shared by its files: fsck.c (driver, reporting, raw
 * IO, ownership map), fsck_btree.c (btree walk and build), fsck_ag.c
 * (superblocks, log, AG headers, free space), fsck_inode.c (inobt, inode
 * chunks, inodes), fsck_dir.c (directories, link counts), fsck_repair.c.
 * See fsck.c for the design.
 */
#ifndef DEEPFS_FSCK_PRIV_H
#define DEEPFS_FSCK_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deepfs.h"
#include "format.h"

struct dfs_blkdev;
struct dfs_mount;

#define FSCK_MAXLEVELS		9	/* as DFS_BTREE_MAXLEVELS */
#define FSCK_MAX_PASSES		4

/* What owns a block, in the ownership map (one byte per block). */
enum fsck_owner {
	OWN_NONE = 0,
	OWN_FREE,	/* in the bnobt */
	OWN_SB,
	OWN_AGHDR,
	OWN_LOG,
	OWN_AGFL,
	OWN_FREESP,	/* bnobt/cntbt blocks */
	OWN_INOBT,
	OWN_INODES,
	OWN_DATA,	/* file, directory or symlink data */
	OWN_BMBT,
	OWN_XATTR,
};

/* Per in-use inode, found in the inode chunks. */
#define FI_BAD		(1u << 0)	/* failed validation: to be cleared */
#define FI_REACHED	(1u << 1)	/* found from the root */
#define FI_UNLINKED	(1u << 2)	/* on an AGI unlinked list */
#define FI_DISCONNECTED	(1u << 3)	/* top of a directory tree not reachable from the root */
#define FI_ORPHAN	(1u << 4)	/* to be moved to lost+found (or freed if empty) */
struct fsck_inode {
	uint64_t ino;
	uint32_t mode;
	uint32_t nlink;
	uint32_t refs;		/* directory entries naming it (+ "." and "..") */
	uint32_t flags;
	uint64_t parent;	/* from "..", directories only */
	uint64_t nblocks;	/* counted */
	uint32_t nextents;	/* counted */
	bool fix_counts;	/* di_nblocks/di_nextents wrong, fork valid */
	bool drop_xattr;	/* the xattr block is bad: repair drops it */
	uint64_t fix_size;	/* directory size to set, if not 0 */
	/* directories and symlinks: the fork, for phase 4 */
	struct dfs_bmbt_rec *ext;
	uint32_t next;
	uint8_t *local;
	uint32_t local_len;
	uint64_t size;
};

struct fsck_ag {
	uint32_t length;
	struct dfs_agf agf;
	struct dfs_agi agi;
	bool agf_ok, agi_ok;
	bool rebuild_freesp;	/* free-space trees, AGFL or AGF counters wrong */
	bool fix_agi;		/* AGI counters wrong, inobt fine */
	bool fix_unlinked;	/* the unlinked list is broken: empty it */
	bool inobt_ok;		/* walked without damage: its inodes are all known */
	bool scanned;		/* inobt unusable: chunks found by scanning the AG */
	bool rebuild_inobt;
	uint32_t icount, ifree;	/* counted from the inobt */
};

enum fsck_nsfix_op {
	NSFIX_REMOVE,		/* remove the entry name from dir */
	NSFIX_FTYPE,		/* rewrite the entry with the inode's file type */
	NSFIX_DOTDOT,		/* point ".." of dir at ino */
	NSFIX_ORPHAN,		/* link ino into lost+found, or free it if empty */
};
struct fsck_nsfix {
	enum fsck_nsfix_op op;
	uint64_t dir;
	uint64_t ino;
	uint8_t namelen;
	char name[DFS_MAXNAMELEN + 1];
};

struct fsck {
	const char *path;
	const struct dfs_fsck_opts *opts;
	struct dfs_blkdev *bd;
	struct dfs_mount *mp;	/* geometry only, for mount.h's helpers and messages */
	struct dfs_dsb sb;
	uint32_t bs;
	uint64_t dblocks;
	uint8_t *own;		/* ownership map, dblocks entries */
	struct fsck_ag *ags;
	struct fsck_inode *inodes;	/* sorted by ino */
	size_t ninodes, cap_inodes;
	uint64_t problems;
	bool quiet;		/* intermediate repair passes */
	bool log_dirty;
	bool fix_secondary_sb;
	bool all_inodes_known;	/* every AG's inobt was readable */
	bool root_ok;
	/* repairs to do, collected by the check */
	uint64_t *clear_inos;	/* inodes to clear */
	size_t nclear, cap_clear;
	/* namespace repairs, made through the library */
	struct fsck_nsfix *nsfix;
	size_t nnsfix, cap_nsfix;
	uint64_t *queue;	/* directories to walk */
	size_t qhead, qtail, cap_queue;
	uint64_t repaired;
	uint64_t files, dirs;
	void *blk;		/* scratch block buffer */
};

extern const char *const fsck_owner_names[];

/*
 * A walk of one btree. Keys of all four trees are 8 bytes; records are
 * compared through their keys, widened to two 64-bit numbers.
 */
struct fsck_bt {
	const char *name;		/* "AG 1 bnobt" */
	uint32_t magic;
	uint16_t reclen;
	uint64_t owner;
	uint32_t agno;			/* UINT32_MAX: any AG (bmbt) */
	enum fsck_owner own;
	void (*key_of_rec)(const void *rec, uint64_t k[2]);
	void (*key_of_key)(const void *key, uint64_t k[2]);
	/* results */
	uint8_t *recs;
	size_t nrecs, cap;
	uint64_t nblocks;
	bool bad;
	bool have_last;
	uint64_t last[2];
	uint64_t prev_blk[FSCK_MAXLEVELS];	/* last block seen at each level */
	uint64_t prev_right[FSCK_MAXLEVELS];	/* its right sibling */
};

#define FSCK_KEYLEN	8u
#define FSCK_PTRLEN	8u

void fsck_problem(struct fsck *fc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fsck_note(struct fsck *fc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* fsck.c */
bool fsck_check_hdr(struct fsck *fc, const void *buf, uint64_t fsbno, uint32_t magic,
		    uint64_t owner, const char *what);
bool fsck_extent_in_ag(struct fsck *fc, uint64_t fsbno, uint64_t len);
int fsck_read(struct fsck *fc, uint64_t fsbno, uint32_t nblocks, void *buf);
int fsck_write(struct fsck *fc, uint64_t fsbno, uint32_t nblocks, void *buf);
int fsck_write_hdrblk(struct fsck *fc, uint64_t fsbno, void *buf);
uint64_t fsck_claim(struct fsck *fc, uint64_t fsbno, uint64_t len, enum fsck_owner type,
		    const char *who);

/* fsck_ag.c */
int fsck_check_agf(struct fsck *fc, uint32_t agno);
int fsck_check_freesp(struct fsck *fc, uint32_t agno);
int fsck_check_log(struct fsck *fc);
int fsck_check_secondary_sbs(struct fsck *fc);
int fsck_read_primary_sb(struct fsck *fc);
void fsck_bt_init(struct fsck_bt *bt, const char *name, uint32_t magic, uint16_t reclen,
		  uint64_t owner, uint32_t agno, enum fsck_owner own);
void fsck_check_agfl(struct fsck *fc, uint32_t agno);

/* fsck_btree.c */
int fsck_bt_walk(struct fsck *fc, struct fsck_bt *bt, uint64_t fsbno, int level,
		 bool root, uint64_t first[2], bool *have_first);
int fsck_bt_walk_tree(struct fsck *fc, struct fsck_bt *bt, uint64_t root, uint32_t nlevels);
int fsck_build_tree(struct fsck *fc, uint32_t agno, uint32_t magic, const void *recs,
		    size_t reclen, size_t nrecs, const uint32_t *pool, size_t *pool_used,
		    uint64_t *rootp, uint32_t *levelsp);
uint32_t fsck_maxrecs(const struct fsck *fc, uint32_t len);
uint32_t fsck_tree_blocks(struct fsck *fc, size_t nrecs, size_t reclen);
void fsck_bmbt_key_of_key(const void *key, uint64_t k[2]);
void fsck_bmbt_key_of_rec(const void *rec, uint64_t k[2]);
void fsck_bno_key_of_rec(const void *rec, uint64_t k[2]);
void fsck_cnt_key_of_rec(const void *rec, uint64_t k[2]);
void fsck_ino_key_of_key(const void *key, uint64_t k[2]);
void fsck_ino_key_of_rec(const void *rec, uint64_t k[2]);

/* fsck_dir.c */
int fsck_check_links(struct fsck *fc);
int fsck_check_namespace(struct fsck *fc);
void fsck_check_leaks(struct fsck *fc, uint32_t agno);
void fsck_check_unlinked(struct fsck *fc, uint32_t agno);

/* fsck_inode.c */
bool fsck_ag_inodes_known(const struct fsck_ag *ag);
int fsck_check_agi(struct fsck *fc, uint32_t agno);
int fsck_check_inodes_ag(struct fsck *fc, uint32_t agno);
int fsck_clear_later(struct fsck *fc, uint64_t ino);
int fsck_inode_cmp(const void *a, const void *b);
int fsck_scan_chunks(struct fsck *fc, uint32_t agno);
struct fsck_inode *fsck_find_inode(struct fsck *fc, uint64_t ino);

/* fsck_repair.c */
int fsck_repair_namespace(struct fsck *fc);
int fsck_repair_raw(struct fsck *fc);

#endif /* DEEPFS_FSCK_PRIV_H */
