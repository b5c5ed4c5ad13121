/* SPDX-License-Identifier: MIT */
/*
 * deepfs on-disk format, version 1.
 *
 * Modelled on XFS v5: allocation groups (AGs), each with a free-space header
 * (AGF), a free list for btree blocks (AGFL), an inode header (AGI), two
 * free-space B+trees (by block number: bnobt, by length: cntbt) and an inode
 * B+tree (inobt). Files map logical blocks to disk blocks with an extent list
 * inline in the inode that grows into a B+tree (bmbt). Every metadata block
 * starts with struct dfs_blkhdr (magic, CRC32C, self address, LSN, owner,
 * filesystem UUID), so a misdirected, torn, stale or foreign block is
 * detected when it is read.
 *
 * All fields are little-endian; deepfs only builds on little-endian hosts
 * (checked below), so the structures are used in place.
 *
 * Addresses: a filesystem block number (fsbno) is agno * agblocks + agbno.
 * B+tree pointers and sibling links are 64-bit fsbnos for every tree; the
 * free-space and inode btree *records* hold 32-bit AG-relative numbers.
 * An inode number is (fsbno of the inode's block << inopblog) | index.
 */
#ifndef DEEPFS_FORMAT_H
#define DEEPFS_FORMAT_H

#include <assert.h>
#include <stdint.h>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	      "deepfs's on-disk format is little-endian and used in place");

#define DFS_VERSION		1u
#define DFS_MIN_BLOCKSIZE	1024u
#define DFS_MAX_BLOCKSIZE	4096u	/* block size <= page size, as Linux before large folios */
#define DFS_INODE_SIZE		512u
#define DFS_INODES_PER_CHUNK	64u	/* inodes allocated together, one inobt record */
#define DFS_NULLFSBLOCK		UINT64_MAX
#define DFS_NULLAGBLOCK		UINT32_MAX
#define DFS_NULLINO		0ull	/* inode 0 is never valid: block 0 is the superblock */
#define DFS_MAXNAMELEN		255u
#define DFS_MAXPATHLEN		4096u

/* Magic numbers of metadata blocks. */
#define DFS_SB_MAGIC		0x42534644u	/* "DFSB" */
#define DFS_AGF_MAGIC		0x46474144u	/* "DAGF" */
#define DFS_AGFL_MAGIC		0x4c464744u	/* "DGFL" */
#define DFS_AGI_MAGIC		0x49474144u	/* "DAGI" */
#define DFS_BNOBT_MAGIC		0x4f4e4244u	/* "DBNO" */
#define DFS_CNTBT_MAGIC		0x544e4344u	/* "DCNT" */
#define DFS_INOBT_MAGIC		0x424e4944u	/* "DINB" */
#define DFS_BMBT_MAGIC		0x504d4244u	/* "DBMP" */
#define DFS_DIR_MAGIC		0x52494444u	/* "DDIR"  directory blocks, see dir.h */
#define DFS_ATTR_MAGIC		0x52544144u	/* "DATR"  xattr block */
#define DFS_SYMLINK_MAGIC	0x4d595344u	/* "DSYM"  remote symlink block */
#define DFS_LOGHDR_MAGIC	0x474f4c44u	/* "DLOG"  log superblock, see log.h */
#define DFS_LOGREC_MAGIC	0x43524c44u	/* "DLRC"  log record header */
#define DFS_DINODE_MAGIC	0x4e49u		/* "IN" */

/*
 * Header of every metadata block except inode blocks (each inode carries its
 * own CRC). crc is CRC32C of the whole block with the crc field taken as zero.
 */
struct dfs_blkhdr {
	uint32_t magic;
	uint32_t crc;
	uint64_t blkno;		/* fsbno of this block: catches misdirected IO */
	uint64_t lsn;		/* LSN of the last transaction that logged it */
	uint64_t owner;		/* agno for AG metadata, inode number for file metadata */
	uint8_t  uuid[16];	/* filesystem UUID: catches blocks of an older fs */
};
static_assert(sizeof(struct dfs_blkhdr) == 48, "blkhdr layout");

/* Superblock: fsbno 0 (primary); agbno 0 of every other AG holds a copy. */
struct dfs_dsb {
	struct dfs_blkhdr hdr;
	uint32_t version;
	uint32_t blocksize;
	uint32_t blocklog;
	uint32_t agcount;
	uint64_t dblocks;	/* blocks in the filesystem */
	uint32_t agblocks;	/* blocks per AG; the last AG may be shorter */
	uint32_t agblklog;	/* ceil(log2(agblocks)) */
	uint64_t rootino;
	uint64_t logstart;	/* fsbno of the first log block (in AG 0) */
	uint32_t logblocks;
	uint32_t inodesize;	/* DFS_INODE_SIZE */
	uint32_t inopblock;	/* inodes per block */
	uint32_t inopblog;	/* log2(inopblock) */
	uint64_t features;	/* none defined yet; unknown bits refuse mount */
	uint64_t mkfs_time;
	char     label[32];
};

/*
 * Fixed block positions inside every AG. AG 0 additionally holds the log
 * (logstart .. logstart+logblocks-1) right after these.
 */
#define DFS_SB_AGBNO		0u
#define DFS_AGF_AGBNO		1u
#define DFS_AGFL_AGBNO		2u
#define DFS_AGI_AGBNO		3u
#define DFS_BNO_ROOT_AGBNO	4u	/* initial roots made by mkfs; they move later */
#define DFS_CNT_ROOT_AGBNO	5u
#define DFS_INO_ROOT_AGBNO	6u
#define DFS_AG_FIRST_FREE	7u

/* AG free space header. */
struct dfs_agf {
	struct dfs_blkhdr hdr;
	uint32_t seqno;		/* agno */
	uint32_t length;	/* blocks in this AG */
	uint64_t bno_root;	/* fsbno of the bnobt root */
	uint64_t cnt_root;	/* fsbno of the cntbt root */
	uint32_t bno_level;	/* height of bnobt (1 = root is a leaf) */
	uint32_t cnt_level;
	uint32_t flfirst;	/* AGFL ring: first valid slot */
	uint32_t fllast;	/* AGFL ring: last valid slot */
	uint32_t flcount;	/* blocks on the AGFL */
	uint32_t freeblks;	/* free blocks in the btrees (AGFL not counted) */
	uint32_t longest;	/* longest free extent */
	uint32_t btreeblks;	/* blocks used by bnobt+cntbt beyond the roots */
};

/* AG free list: blocks set aside so that btree splits never recurse into
 * the allocator (XFS's AGFL). */
struct dfs_agfl {
	struct dfs_blkhdr hdr;
	uint32_t seqno;
	uint32_t pad;
	uint32_t bno[];		/* agbnos; ring of (blocksize - 56) / 4 slots */
};
#define DFS_AGFL_SIZE(bs)	(((bs) - sizeof(struct dfs_agfl)) / sizeof(uint32_t))

/* AG inode header. */
struct dfs_agi {
	struct dfs_blkhdr hdr;
	uint32_t seqno;
	uint32_t length;
	uint32_t count;		/* inodes allocated (in chunks) */
	uint32_t freecount;	/* of those, free */
	uint64_t root;		/* fsbno of the inobt root */
	uint32_t level;
	uint32_t pad;
	uint64_t unlinked;	/* head of the list of unlinked-but-open inodes */
};

/* B+tree block header, shared by bnobt, cntbt, inobt and bmbt. */
struct dfs_btree_block {
	struct dfs_blkhdr hdr;
	uint16_t level;		/* 0 = leaf */
	uint16_t numrecs;
	uint32_t pad;
	uint64_t leftsib;	/* DFS_NULLFSBLOCK at the edges */
	uint64_t rightsib;
};
static_assert(sizeof(struct dfs_btree_block) == 72, "btree block layout");
/*
 * A leaf holds numrecs records after the header. A node holds maxrecs keys
 * after the header, then maxrecs 64-bit child pointers (XFS's layout), of
 * which the first numrecs are valid.
 */

/* Free-space records (bnobt and cntbt), AG-relative. */
struct dfs_alloc_rec {
	uint32_t startblock;
	uint32_t blockcount;
};
/* bnobt keys on startblock; cntbt on (blockcount, startblock): same struct. */
typedef struct dfs_alloc_rec dfs_alloc_key_t;

/* Inode btree record: one chunk of DFS_INODES_PER_CHUNK inodes. */
struct dfs_inobt_rec {
	uint32_t startino;	/* AG-relative inode number of the chunk's first inode */
	uint32_t freecount;
	uint64_t free;		/* bit i set: inode startino+i is free */
};
struct dfs_inobt_key {
	uint32_t startino;
	uint32_t pad;
};

/* Extent record (bmbt leaves and the inline extent list). */
struct dfs_bmbt_rec {
	uint64_t startoff;	/* file block */
	uint64_t startblock;	/* fsbno */
	uint32_t blockcount;
	uint32_t state;		/* DFS_EXT_NORM or DFS_EXT_UNWRITTEN */
};
struct dfs_bmbt_key {
	uint64_t startoff;
};
#define DFS_EXT_NORM		0u
#define DFS_EXT_UNWRITTEN	1u
#define DFS_MAX_EXTLEN		((1u << 21) - 1)

/* Data fork formats. */
#define DFS_DINODE_FMT_LOCAL	1u	/* data in the inode (short symlinks, small dirs) */
#define DFS_DINODE_FMT_EXTENTS	2u	/* dfs_bmbt_rec array in the inode */
#define DFS_DINODE_FMT_BTREE	3u	/* bmbt; the fork holds struct dfs_bmroot */

struct dfs_timestamp {
	int64_t  sec;
	uint32_t nsec;
	uint32_t pad;
};

/* On-disk inode, DFS_INODE_SIZE bytes. crc covers the whole inode. */
struct dfs_dinode {
	uint16_t di_magic;
	uint8_t  di_version;
	uint8_t  di_format;	/* DFS_DINODE_FMT_* of the data fork */
	uint32_t di_crc;
	uint64_t di_ino;	/* self: catches misplaced inodes */
	uint8_t  di_uuid[16];
	uint32_t di_mode;	/* 0 = free inode */
	uint32_t di_uid;
	uint32_t di_gid;
	uint32_t di_nlink;
	uint64_t di_size;
	uint64_t di_nblocks;	/* blocks owned: data, bmbt, xattr, symlink blocks */
	struct dfs_timestamp di_atime;
	struct dfs_timestamp di_mtime;
	struct dfs_timestamp di_ctime;
	struct dfs_timestamp di_crtime;
	uint32_t di_nextents;	/* extents in the data fork */
	uint32_t di_gen;
	uint64_t di_next_unlinked; /* AGI unlinked list link, DFS_NULLINO at the end */
	uint64_t di_xattr_blk;	/* fsbno of the xattr block, or 0 */
	uint32_t di_flags;
	uint32_t di_rdev;
	uint64_t di_lsn;
	uint8_t  di_fork[];	/* data fork: extents, bmroot or local data */
};
#define DFS_DINODE_CORE_SIZE	168u
#define DFS_DFORK_SIZE		(DFS_INODE_SIZE - DFS_DINODE_CORE_SIZE)
#define DFS_INLINE_EXTENTS	(DFS_DFORK_SIZE / sizeof(struct dfs_bmbt_rec))
static_assert(sizeof(struct dfs_dinode) == DFS_DINODE_CORE_SIZE, "dinode core layout");


/* Data fork contents in DFS_DINODE_FMT_BTREE: where the bmbt root lives. */
struct dfs_bmroot {
	uint64_t root;		/* fsbno of the root block */
	uint32_t level;		/* height */
	uint32_t pad;
};

#endif /* DEEPFS_FORMAT_H */
