/* SPDX-License-Identifier: MIT */
/*
 * AG header initialisation (XFS's xfs_ag.c, xfs_ag_init_headers): the
 * blocks at the front of a new AG, written raw because no transaction or
 * log exists yet at mkfs time. The seven fixed blocks are contiguous, so they
 * go out as one write.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <stdlib.h>

#include "alloc.h"
#include "blkdev.h"
#include "crc.h"
#include "format.h"
#include "mount.h"

static void *dfs_ag_block(struct dfs_mount *mp, void *base, uint32_t agbno)
{
	return (char *)base + ((size_t)agbno << mp->m_blocklog);
}

static void dfs_ag_hdr_init(struct dfs_mount *mp, void *blk, uint32_t magic, uint32_t agno,
			    uint32_t agbno)
{
	struct dfs_blkhdr *hdr = blk;

	hdr->magic = magic;
	hdr->blkno = dfs_agb_to_fsb(mp, agno, agbno);
	hdr->lsn = 0;
	hdr->owner = agno;
	memcpy(hdr->uuid, mp->m_sb.hdr.uuid, sizeof(hdr->uuid));
}

static void dfs_ag_btroot_init(struct dfs_mount *mp, void *blk, uint32_t magic, uint32_t agno,
			       uint32_t agbno, uint32_t first_free, uint32_t length)
{
	struct dfs_btree_block *block = blk;

	dfs_ag_hdr_init(mp, blk, magic, agno, agbno);
	block->level = 0;
	block->leftsib = DFS_NULLFSBLOCK;
	block->rightsib = DFS_NULLFSBLOCK;
	if ((magic == DFS_BNOBT_MAGIC || magic == DFS_CNTBT_MAGIC) && first_free < length) {
		struct dfs_alloc_rec *rec = (struct dfs_alloc_rec *)(block + 1);

		rec->startblock = first_free;
		rec->blockcount = length - first_free;
		block->numrecs = 1;
	}
}

int dfs_ag_init_headers(struct dfs_mount *mp, uint32_t agno, uint32_t agblocks_this_ag,
			uint32_t reserved_until)
{
	const uint32_t nblocks = DFS_AG_FIRST_FREE;
	const uint32_t agfl_slots = DFS_AGFL_SIZE(mp->m_blocksize);
	uint32_t first_free = DFS_AG_FIRST_FREE + DFS_AGFL_RESERVE;
	struct dfs_agf *agf;
	struct dfs_agfl *agfl;
	struct dfs_agi *agi;
	uint32_t i, first;
	void *buf;
	int error;

	if (reserved_until > first_free)
		first_free = reserved_until;
	if (agblocks_this_ag < DFS_AG_FIRST_FREE + DFS_AGFL_RESERVE ||
	    agblocks_this_ag > mp->m_agblocks)
		return -EINVAL;
	buf = dfs_bio_alloc_buf((size_t)nblocks << mp->m_blocklog);
	if (!buf)
		return -ENOMEM;

	/* a secondary superblock: the primary's contents at its own address */
	if (agno > 0) {
		struct dfs_dsb *sb = dfs_ag_block(mp, buf, DFS_SB_AGBNO);

		memcpy(sb, &mp->m_sb, sizeof(*sb));
		sb->hdr.blkno = dfs_agb_to_fsb(mp, agno, DFS_SB_AGBNO);
		dfs_cksum_update(sb, mp->m_blocksize, offsetof(struct dfs_blkhdr, crc));
	}

	agf = dfs_ag_block(mp, buf, DFS_AGF_AGBNO);
	dfs_ag_hdr_init(mp, agf, DFS_AGF_MAGIC, agno, DFS_AGF_AGBNO);
	agf->seqno = agno;
	agf->length = agblocks_this_ag;
	agf->bno_root = dfs_agb_to_fsb(mp, agno, DFS_BNO_ROOT_AGBNO);
	agf->cnt_root = dfs_agb_to_fsb(mp, agno, DFS_CNT_ROOT_AGBNO);
	agf->bno_level = 1;
	agf->cnt_level = 1;
	/* the AGFL starts full of the blocks right after the headers */
	agf->flfirst = 0;
	agf->fllast = DFS_AGFL_RESERVE - 1;
	agf->flcount = DFS_AGFL_RESERVE;
	agf->freeblks = first_free < agblocks_this_ag ? agblocks_this_ag - first_free : 0;
	agf->longest = agf->freeblks;
	agf->btreeblks = 0;

	agfl = dfs_ag_block(mp, buf, DFS_AGFL_AGBNO);
	dfs_ag_hdr_init(mp, agfl, DFS_AGFL_MAGIC, agno, DFS_AGFL_AGBNO);
	agfl->seqno = agno;
	first = DFS_AG_FIRST_FREE;
	for (i = 0; i < agfl_slots; i++)
		agfl->bno[i] = i < DFS_AGFL_RESERVE ? first + i : DFS_NULLAGBLOCK;

	agi = dfs_ag_block(mp, buf, DFS_AGI_AGBNO);
	dfs_ag_hdr_init(mp, agi, DFS_AGI_MAGIC, agno, DFS_AGI_AGBNO);
	agi->seqno = agno;
	agi->length = agblocks_this_ag;
	agi->count = 0;
	agi->freecount = 0;
	agi->root = dfs_agb_to_fsb(mp, agno, DFS_INO_ROOT_AGBNO);
	agi->level = 1;
	agi->unlinked = DFS_NULLINO;

	dfs_ag_btroot_init(mp, dfs_ag_block(mp, buf, DFS_BNO_ROOT_AGBNO), DFS_BNOBT_MAGIC, agno,
			   DFS_BNO_ROOT_AGBNO, first_free, agblocks_this_ag);
	dfs_ag_btroot_init(mp, dfs_ag_block(mp, buf, DFS_CNT_ROOT_AGBNO), DFS_CNTBT_MAGIC, agno,
			   DFS_CNT_ROOT_AGBNO, first_free, agblocks_this_ag);
	dfs_ag_btroot_init(mp, dfs_ag_block(mp, buf, DFS_INO_ROOT_AGBNO), DFS_INOBT_MAGIC, agno,
			   DFS_INO_ROOT_AGBNO, first_free, agblocks_this_ag);

	for (i = DFS_AGF_AGBNO; i < nblocks; i++)
		dfs_cksum_update(dfs_ag_block(mp, buf, i), mp->m_blocksize,
				 offsetof(struct dfs_blkhdr, crc));

	/* AG 0's superblock is the primary, which mkfs writes itself */
	first = agno > 0 ? DFS_SB_AGBNO : DFS_AGF_AGBNO;
	error = dfs_blkdev_rw(mp->m_bdev, DFS_IO_WRITE, DFS_IOK_META,
			      dfs_fsb_to_bytes(mp, dfs_agb_to_fsb(mp, agno, first)),
			      dfs_ag_block(mp, buf, first), (size_t)(nblocks - first) << mp->m_blocklog);
	free(buf);
	return error;
}
