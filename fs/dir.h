/* SPDX-License-Identifier: MIT */
/*
 * Directories (XFS's xfs_dir2: shortform, then a hash-keyed B+tree like its
 * node format; ext4's htree plays the same role).
 *
 * Every entry has a 63-bit key: the 31-bit hash of its name in the high 32
 * bits and a collision sequence number in the low 32. Entries with the same
 * hash get distinct sequence numbers (one more than the largest in use for
 * that hash when inserted), so keys are unique and an entry keeps its key
 * for life. The key is also the readdir cookie: the cookie after an entry is
 * key + 3 (cookies 1 and 2 are "." and ".."), and a listing resumed at any
 * cookie returns the entries with a larger key, in key order. Entries that
 * are inserted or removed meanwhile therefore never make it repeat or skip
 * any other entry.
 *
 * Two formats:
 *
 * - Shortform (DFS_DINODE_FMT_LOCAL): struct dfs_dir_sf_hdr and the entries,
 *   sorted by key, in the inode's data fork (if_local, i_size bytes). New
 *   directories start here.
 *
 * - B+tree: when an entry no longer fits inline, the entries move to a tree
 *   of directory blocks that are file blocks of the directory, allocated
 *   real (not delalloc) by dfs_bmapi_write in the transaction. File block 0
 *   is always the root; the root also holds the parent inode number and the
 *   entry count. Every block starts with struct dfs_dir_blk (magic
 *   DFS_DIR_MAGIC, owner = the directory). Leaves (level 0) hold entries
 *   sorted by key, packed, and are chained by sibling pointers for readdir;
 *   nodes hold (key, child file block) pairs, key[i] a lower bound of every
 *   key under child i (key[0] is ignored). Lookup, insert and remove read
 *   one block per level. A leaf splits in two by bytes when full; the root
 *   grows by moving its contents to a new block. A leaf that empties is
 *   freed (its parent key goes, and emptied nodes with it); a root with one
 *   child absorbs it; a tree that empties completely is freed and the
 *   directory goes back to shortform. Half-empty blocks are not merged.
 *
 * i_size is the byte length of the shortform data, or of the directory's
 * file blocks up to the last one mapped.
 */
#ifndef DEEPFS_DIR_H
#define DEEPFS_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deepfs.h"
#include "format.h"

struct dfs_mount;
struct dfs_trans;
struct dfs_inode;

#define DFS_DIR_NOBLK		UINT32_MAX	/* no sibling */
#define DFS_DIR_MAXLEVELS	8
#define DFS_DIR_MAXSEQ		((1u << 31) - 1)
#define DFS_DIR_COOKIE_FIRST	2	/* entries start after "." (1) and ".." (2) */

/* Header of every directory block. */
struct dfs_dir_blk {
	struct dfs_blkhdr hdr;		/* magic DFS_DIR_MAGIC, owner = directory */
	uint16_t level;			/* 0 = leaf */
	uint16_t count;			/* entries (leaf) or keys (node) */
	uint32_t used;			/* leaf: bytes of entries after the header */
	uint32_t leftsib;		/* leaves: file blocks, DFS_DIR_NOBLK at the ends */
	uint32_t rightsib;
	uint64_t nentries;		/* root only: entries in the directory */
	uint64_t parent;		/* root only: ".." */
};
static_assert(sizeof(struct dfs_dir_blk) == 80, "dir block header layout");

/* An entry, in leaves and in shortform; 8-byte aligned, dfs_dir_ent_size(). */
struct dfs_dir_ent {
	uint64_t ino;
	uint64_t key;			/* hash << 32 | seq */
	uint8_t  ftype;			/* S_IFMT >> 12 of the inode (DT_* value) */
	uint8_t  namelen;
	char     name[];
};
#define DFS_DIR_ENT_HDR		18u

/* Node entry. */
struct dfs_dir_nent {
	uint64_t key;
	uint32_t child;			/* file block */
	uint32_t pad;
};

/* Shortform header, at the start of if_local. */
struct dfs_dir_sf_hdr {
	uint64_t parent;
	uint16_t count;
	uint16_t pad[3];
};

static inline uint32_t dfs_dir_ent_size(uint32_t namelen)
{
	return (DFS_DIR_ENT_HDR + namelen + 7) & ~7u;
}
static inline uint32_t dfs_dir_key_hash(uint64_t key) { return (uint32_t)(key >> 32); }
static inline uint8_t dfs_dir_ftype(uint32_t mode) { return (uint8_t)((mode >> 12) & 017); }

extern const struct dfs_buf_ops dfs_dir_buf_ops;

/* The 31-bit name hash (part of the on-disk format). */
uint32_t dfs_dir_hashname(const char *name, size_t len);
/* 0 if name is a valid entry name (1..255 bytes, no '/' or NUL, not "." or
 * ".."), else -ENAMETOOLONG or -EINVAL. */
int dfs_dir_namecheck(const char *name, size_t len);

/* Blocks a directory insert may need (tree splits, a new root, bmbt). */
uint32_t dfs_dir_space_res(const struct dfs_mount *mp);

/* Make dp (just created, empty extent fork) an empty shortform directory. */
int dfs_dir_init(struct dfs_trans *tp, struct dfs_inode *dp, uint64_t parent_ino);
/* Find name ("." and ".." included); -ENOENT if absent. tp may be NULL. */
int dfs_dir_lookup(struct dfs_trans *tp, struct dfs_inode *dp, const char *name, size_t len,
		   uint64_t *inop);
/* Add an entry; -EEXIST if the name is there. ftype: S_IFMT bits >> 12. */
int dfs_dir_createname(struct dfs_trans *tp, struct dfs_inode *dp, const char *name,
		       size_t len, uint64_t ino, uint8_t ftype);
int dfs_dir_removename(struct dfs_trans *tp, struct dfs_inode *dp, const char *name,
		       size_t len);
/* Point an existing entry (or "..") at another inode. */
int dfs_dir_replace(struct dfs_trans *tp, struct dfs_inode *dp, const char *name, size_t len,
		    uint64_t ino, uint8_t ftype);
/* 1 if dp has no entries besides "." and "..", 0 if it has, or -errno. */
int dfs_dir_isempty(struct dfs_inode *dp);
/* List from cookie (see above); fill gets mode = ftype << 12. tp may be NULL. */
int dfs_dir_iterate(struct dfs_trans *tp, struct dfs_inode *dp, uint64_t cookie,
		    dfs_filldir_t fill, void *ctx);
/* Check the whole directory: block structure, key order, sibling chains,
 * hashes of names, duplicate names, name validity, entry count, i_size.
 * 0 or -EFSCORRUPTED (after saying what is wrong). For fsck and tests. */
int dfs_dir_check(struct dfs_trans *tp, struct dfs_inode *dp);
/* Number of entries besides "." and ".." (tests, fsck). */
int dfs_dir_count(struct dfs_inode *dp, uint64_t *countp);

/* mkfs: make the root directory (mode 040755, in AG 0, its own parent). */
int dfs_mkfs_rootdir(struct dfs_mount *mp, uint64_t *rootino);

#endif /* DEEPFS_DIR_H */
