/* SPDX-License-Identifier: MIT */
/*
 * The write-ahead log (see log.h for the on-disk layout).
 *
 * Committed transactions are copied into the in-core log buffer, the iclog,
 * which becomes one record on disk when it fills or when the log is forced.
 * All transactions in an iclog share its LSN, which is a record sequence
 * number: records carry consecutive LSNs, so recovery knows the exact LSN of
 * the next record and stale records left from earlier trips around the ring
 * cannot be mistaken for it. After a crash the counter jumps by logblocks, so
 * records written past a torn one before the crash are never expected again.
 *
 * A record never wraps: when it does not fit before the end of the region it
 * starts at block 1, and the skipped blocks count as used until the next
 * checkpoint. Space: l_used counts blocks from the tail to the head; the open
 * iclog, written as a record, always fits in what is left (so a checkpoint,
 * which forces it, can always run); a transaction that would break that
 * checkpoints first. A checkpoint leaves the log empty and starts it over at
 * block 1, where the biggest record fits.
 *
 * The write path, as deep as XFS's: dfs_trans_commit -> dfs_log_write
 * (xlog_write) -> dfs_log_sync (xlog_sync) -> dfs_log_bwrite -> dfs_submit_bio.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkdev.h"
#include "buf.h"
#include "crc.h"
#include "log.h"
#include "mount.h"
#include "msg.h"

#define DFS_ICLOG_MAX_BLOCKS	256u	/* images in one record, at most */

struct dfs_log_cb {
	uint64_t lsn;
	void (*cb)(struct dfs_mount *mp, void *arg);
	void *arg;
};

struct dfs_log {
	struct dfs_mount *l_mp;
	uint64_t l_start;		/* fsbno of the loghdr */
	uint32_t l_blocks;		/* size of the region, loghdr included */
	uint32_t l_ring;		/* blocks for records: l_blocks - 1 */
	uint32_t l_head;		/* where the next record goes, in [1, l_blocks) */
	uint32_t l_tail;
	uint64_t l_tail_lsn;
	uint32_t l_used;		/* tail to head, skipped blocks included */
	uint64_t l_cur_lsn;		/* LSN of the open iclog */
	uint64_t l_synced_lsn;		/* last record written */
	uint64_t l_durable_lsn;		/* last record written and flushed */
	uint64_t l_last_commit_lsn;
	bool l_busy;			/* in a checkpoint: no nested one */

	/* the iclog: header and images, written as one two-vector bio */
	void *ic_hdr;			/* ic_max_hdr blocks */
	void *ic_img;			/* ic_max_images blocks */
	uint32_t ic_max_images;		/* also the most one transaction may log */
	uint32_t ic_max_entries;	/* images and cancels */
	uint32_t ic_max_hdr;		/* header blocks for ic_max_entries */
	uint32_t ic_nimages;
	uint64_t *ic_img_blkno;		/* [slot] */
	uint32_t ic_ncancel;
	uint64_t *ic_cancel;

	struct dfs_log_cb *l_cbs;
	size_t l_ncbs, l_cbs_cap;

	struct dfs_log_stats l_stats;
};

/* Entries that a header of hdr_blocks blocks holds. */
static uint32_t dfs_log_hdr_cap(uint32_t blocksize, uint32_t hdr_blocks)
{
	return (uint32_t)(((size_t)hdr_blocks * blocksize - sizeof(struct dfs_logrec)) /
			  sizeof(uint64_t));
}

/* Header blocks for nent entries. */
static uint32_t dfs_log_hdr_blocks(uint32_t blocksize, uint32_t nent)
{
	uint32_t hb = 1;

	while (dfs_log_hdr_cap(blocksize, hb) < nent)
		hb++;
	return hb;
}

static void *dfs_log_img(struct dfs_log *log, uint32_t slot)
{
	return (char *)log->ic_img + (size_t)slot * log->l_mp->m_blocksize;
}

static void dfs_log_shutdown(struct dfs_mount *mp, const char *why, int error)
{
	if (!mp->m_shutdown)
		dfs_err(mp, "log %s failed (%s): shutting down the filesystem", why,
			strerror(-error));
	mp->m_shutdown = true;
}

/* ---- loghdr -------------------------------------------------------------- */

static int dfs_loghdr_write(struct dfs_mount *mp, uint32_t tail_block, uint64_t tail_lsn,
			    bool clean)
{
	struct dfs_loghdr *lh;
	int error;

	lh = dfs_bio_alloc_buf(mp->m_blocksize);
	if (!lh)
		return -ENOMEM;
	lh->hdr.magic = DFS_LOGHDR_MAGIC;
	lh->hdr.blkno = mp->m_sb.logstart;
	lh->hdr.lsn = tail_lsn;
	memcpy(lh->hdr.uuid, mp->m_sb.hdr.uuid, sizeof(lh->hdr.uuid));
	lh->tail_lsn = tail_lsn;
	lh->tail_block = tail_block;
	lh->clean = clean;
	dfs_cksum_update(lh, mp->m_blocksize, offsetof(struct dfs_blkhdr, crc));
	error = dfs_blkdev_rw(mp->m_bdev, DFS_IO_WRITE, DFS_IOK_LOG,
			      dfs_fsb_to_bytes(mp, mp->m_sb.logstart), lh, mp->m_blocksize);
	free(lh);
	return error;
}

int dfs_log_format(struct dfs_mount *mp)
{
	int error = dfs_loghdr_write(mp, 1, 1, true);

	return error ? error : dfs_blkdev_flush(mp->m_bdev);
}

static int dfs_loghdr_read(struct dfs_mount *mp, struct dfs_loghdr *out)
{
	uint32_t blocks = mp->m_sb.logblocks;
	struct dfs_loghdr *lh;
	const char *why = NULL;
	int error;

	lh = dfs_bio_alloc_buf(mp->m_blocksize);
	if (!lh)
		return -ENOMEM;
	error = dfs_blkdev_rw(mp->m_bdev, DFS_IO_READ, DFS_IOK_LOG,
			      dfs_fsb_to_bytes(mp, mp->m_sb.logstart), lh, mp->m_blocksize);
	if (error) {
		dfs_err(mp, "cannot read the log header: %s", strerror(-error));
		goto out;
	}
	if (lh->hdr.magic != DFS_LOGHDR_MAGIC)
		why = "bad magic";
	else if (!dfs_cksum_verify(lh, mp->m_blocksize, offsetof(struct dfs_blkhdr, crc)))
		why = "CRC mismatch";
	else if (lh->hdr.blkno != mp->m_sb.logstart)
		why = "wrong self address";
	else if (memcmp(lh->hdr.uuid, mp->m_sb.hdr.uuid, sizeof(lh->hdr.uuid)))
		why = "belongs to another filesystem (UUID mismatch)";
	else if (lh->tail_block < 1 || lh->tail_block >= blocks || lh->tail_lsn == 0 ||
		 lh->clean > 1)
		why = "tail outside the log";
	if (why) {
		error = dfs_corrupt(mp, "log header", mp->m_sb.logstart, why);
		goto out;
	}
	*out = *lh;
out:
	free(lh);
	return error;
}

/* ---- writing records ------------------------------------------------------ */

/* Would a record of size blocks fit between head and tail? */
static bool dfs_log_fits(const struct dfs_log *log, uint32_t size)
{
	uint32_t skip = log->l_head + size > log->l_blocks ? log->l_blocks - log->l_head : 0;

	return (uint64_t)log->l_used + skip + size <= log->l_ring;
}

static int dfs_log_bwrite(struct dfs_log *log, uint32_t pos, void *hdr, size_t hdr_len,
			  void *img, size_t img_len)
{
	struct dfs_mount *mp = log->l_mp;
	struct dfs_bio bio;
	int error;

	dfs_bio_init(&bio, DFS_IO_WRITE, DFS_IOK_LOG, dfs_fsb_to_bytes(mp, log->l_start + pos));
	dfs_bio_add_vec(&bio, hdr, hdr_len);
	if (img_len)
		dfs_bio_add_vec(&bio, img, img_len);
	error = dfs_submit_bio(mp->m_bdev, &bio);
	if (error)
		return error;
	return dfs_blkdev_wait_bio(mp->m_bdev, &bio);
}

static void dfs_iclog_reset(struct dfs_log *log)
{
	log->ic_nimages = 0;
	log->ic_ncancel = 0;
}

/* xlog_sync: write the open iclog as one record. */
static int dfs_log_sync(struct dfs_log *log)
{
	struct dfs_mount *mp = log->l_mp;
	uint32_t bs = mp->m_blocksize;
	uint32_t hb = dfs_log_hdr_blocks(bs, log->ic_nimages + log->ic_ncancel);
	uint32_t size = hb + log->ic_nimages;
	uint32_t pos = log->l_head, skip = 0;
	struct dfs_logrec *rec = log->ic_hdr;
	int error;

	if (mp->m_shutdown)
		return -EIO;
	if (!log->ic_nimages && !log->ic_ncancel)
		return 0;
	assert(dfs_log_fits(log, size));
	if (pos + size > log->l_blocks) {
		skip = log->l_blocks - pos;
		pos = 1;
	}
	memset(rec, 0, (size_t)hb * bs);
	rec->hdr.magic = DFS_LOGREC_MAGIC;
	rec->hdr.blkno = log->l_start + pos;
	rec->hdr.lsn = log->l_cur_lsn;
	memcpy(rec->hdr.uuid, mp->m_sb.hdr.uuid, sizeof(rec->hdr.uuid));
	rec->rec_lsn = log->l_cur_lsn;
	rec->nblocks = log->ic_nimages + log->ic_ncancel;
	rec->hdr_blocks = hb;
	memcpy(rec->blknos, log->ic_img_blkno, log->ic_nimages * sizeof(uint64_t));
	for (uint32_t i = 0; i < log->ic_ncancel; i++)
		rec->blknos[log->ic_nimages + i] = log->ic_cancel[i] | DFS_LOGREC_CANCEL;
	rec->rec_crc = dfs_crc32c(0, dfs_log_img(log, 0), (size_t)log->ic_nimages * bs);
	dfs_cksum_update(rec, (size_t)hb * bs, offsetof(struct dfs_blkhdr, crc));

	error = dfs_log_bwrite(log, pos, rec, (size_t)hb * bs, log->ic_img,
			       (size_t)log->ic_nimages * bs);
	if (error) {
		dfs_log_shutdown(mp, "write", error);
		return error;
	}
	log->l_used += skip + size;
	log->l_head = pos + size;
	if (log->l_head == log->l_blocks)
		log->l_head = 1;
	log->l_synced_lsn = log->l_cur_lsn++;
	log->l_stats.records++;
	log->l_stats.blocks_logged += log->ic_nimages;
	dfs_iclog_reset(log);
	return 0;
}

static void dfs_log_run_callbacks(struct dfs_log *log)
{
	struct dfs_mount *mp = log->l_mp;
	size_t i = 0;

	/* a callback may add callbacks: take one at a time */
	while (i < log->l_ncbs) {
		struct dfs_log_cb c = log->l_cbs[i];

		if (c.lsn > log->l_durable_lsn) {
			i++;
			continue;
		}
		log->l_cbs[i] = log->l_cbs[--log->l_ncbs];
		c.cb(mp, c.arg);
	}
}

static int __dfs_log_force(struct dfs_log *log)
{
	struct dfs_mount *mp = log->l_mp;
	int error;

	error = dfs_log_sync(log);
	if (error)
		return error;
	if (log->l_synced_lsn > log->l_durable_lsn) {
		error = dfs_blkdev_flush(mp->m_bdev);
		if (error) {
			dfs_log_shutdown(mp, "flush", error);
			return error;
		}
		log->l_durable_lsn = log->l_synced_lsn;
	}
	log->l_stats.forces++;
	dfs_log_run_callbacks(log);
	return 0;
}

static int __dfs_log_checkpoint(struct dfs_log *log)
{
	struct dfs_mount *mp = log->l_mp;
	int error;

	if (log->l_busy)
		return 0;
	log->l_busy = true;
	error = __dfs_log_force(log);
	if (error)
		goto out;
	error = dfs_bcache_writeback(mp, log->l_durable_lsn);
	if (error) {
		dfs_log_shutdown(mp, "checkpoint writeback", error);
		goto out;
	}
	/* in-place writes durable before the tail moves past their records */
	error = dfs_blkdev_flush(mp->m_bdev);
	/* the log is empty now: start over at block 1, so that the biggest
	 * record fits without a skip at the end */
	if (!error)
		error = dfs_loghdr_write(mp, 1, log->l_cur_lsn, false);
	/* and the new tail durable before records overwrite the old ones */
	if (!error)
		error = dfs_blkdev_flush(mp->m_bdev);
	if (error) {
		dfs_log_shutdown(mp, "checkpoint", error);
		goto out;
	}
	log->l_head = log->l_tail = 1;
	log->l_tail_lsn = log->l_cur_lsn;
	log->l_used = 0;
	log->l_stats.checkpoints++;
out:
	log->l_busy = false;
	return error;
}

static int dfs_log_maybe_checkpoint(struct dfs_log *log)
{
	if ((uint64_t)log->l_used * 4 < (uint64_t)log->l_ring * 3)
		return 0;
	return __dfs_log_checkpoint(log);
}

int dfs_log_checkpoint(struct dfs_mount *mp)
{
	if (!mp->m_log)
		return 0;
	if (mp->m_shutdown)
		return -EIO;
	return __dfs_log_checkpoint(mp->m_log);
}

int dfs_log_force(struct dfs_mount *mp)
{
	struct dfs_log *log = mp->m_log;
	int error;

	if (!log)
		return 0;
	if (mp->m_shutdown)
		return -EIO;
	error = __dfs_log_force(log);
	if (!error && !log->l_busy)
		error = dfs_log_maybe_checkpoint(log);
	return error;
}

uint64_t dfs_log_durable_lsn(struct dfs_mount *mp)
{
	return mp->m_log ? mp->m_log->l_durable_lsn : 0;
}

uint64_t dfs_log_synced_lsn(struct dfs_mount *mp)
{
	return mp->m_log ? mp->m_log->l_synced_lsn : 0;
}

uint32_t dfs_log_max_trans_blocks(struct dfs_mount *mp)
{
	return mp->m_log ? mp->m_log->ic_max_images : 0;
}

static int dfs_iclog_find_img(const struct dfs_log *log, uint64_t blkno)
{
	for (uint32_t i = 0; i < log->ic_nimages; i++)
		if (log->ic_img_blkno[i] == blkno)
			return (int)i;
	return -1;
}

static int dfs_iclog_find_cancel(const struct dfs_log *log, uint64_t blkno)
{
	for (uint32_t i = 0; i < log->ic_ncancel; i++)
		if (log->ic_cancel[i] == blkno)
			return (int)i;
	return -1;
}

/* Would the open iclog still be within its limits with these buffers? */
static bool dfs_iclog_has_room(const struct dfs_log *log, struct dfs_buf **bufs, int nbufs,
			       uint32_t *sizep)
{
	uint32_t img = log->ic_nimages, ent = log->ic_nimages + log->ic_ncancel;

	for (int i = 0; i < nbufs; i++) {
		bool stale = bufs[i]->b_flags & DFS_BUF_STALE;
		bool has_img = dfs_iclog_find_img(log, bufs[i]->b_blkno) >= 0;
		bool has_cancel = dfs_iclog_find_cancel(log, bufs[i]->b_blkno) >= 0;

		if (!has_img && !has_cancel)
			ent++;
		if (!stale && !has_img)
			img++;
		else if (stale && has_img)
			img--;
	}
	*sizep = dfs_log_hdr_blocks(log->l_mp->m_blocksize, ent) + img;
	return img <= log->ic_max_images && ent <= log->ic_max_entries;
}

static void dfs_iclog_add(struct dfs_log *log, struct dfs_buf *bp)
{
	int slot = dfs_iclog_find_img(log, bp->b_blkno);
	int c = dfs_iclog_find_cancel(log, bp->b_blkno);

	if (bp->b_flags & DFS_BUF_STALE) {
		if (slot >= 0) {
			/* freed again before its image reached disk: drop it */
			uint32_t last = --log->ic_nimages;

			if ((uint32_t)slot != last) {
				memcpy(dfs_log_img(log, (uint32_t)slot), dfs_log_img(log, last),
				       bp->b_len);
				log->ic_img_blkno[slot] = log->ic_img_blkno[last];
			}
		}
		if (c < 0) {
			assert(log->ic_nimages + log->ic_ncancel < log->ic_max_entries);
			log->ic_cancel[log->ic_ncancel++] = bp->b_blkno;
		}
		return;
	}
	if (c >= 0)
		log->ic_cancel[c] = log->ic_cancel[--log->ic_ncancel];
	if (slot < 0) {
		assert(log->ic_nimages < log->ic_max_images);
		slot = (int)log->ic_nimages++;
		log->ic_img_blkno[slot] = bp->b_blkno;
	}
	/* relogged while still in the iclog: the newer image replaces it */
	memcpy(dfs_log_img(log, (uint32_t)slot), bp->b_addr, bp->b_len);
}

/* xlog_write */
int dfs_log_write(struct dfs_mount *mp, struct dfs_buf **bufs, int nbufs, uint64_t *lsnp)
{
	struct dfs_log *log = mp->m_log;
	uint32_t size, own_images = 0;
	bool checkpointed = false;
	int error;

	if (mp->m_shutdown)
		return -EIO;
	if (!log)
		return -EINVAL;
	for (int i = 0; i < nbufs; i++)
		if (!(bufs[i]->b_flags & DFS_BUF_STALE))
			own_images++;
	if (own_images > log->ic_max_images || (uint32_t)nbufs > log->ic_max_entries) {
		dfs_err(mp, "a transaction logs %d blocks, more than a log record holds (%u)",
			nbufs, log->ic_max_images);
		return -E2BIG;
	}
	for (;;) {
		if (!dfs_iclog_has_room(log, bufs, nbufs, &size)) {
			error = dfs_log_sync(log);
			if (!error && !log->l_busy)
				error = dfs_log_maybe_checkpoint(log);
			if (error)
				return error;
			continue;
		}
		if (dfs_log_fits(log, size))
			break;
		if (checkpointed || log->l_busy) {
			dfs_err(mp, "no log space for a transaction of %d blocks", nbufs);
			return -ENOSPC;
		}
		error = __dfs_log_checkpoint(log);
		if (error)
			return error;
		checkpointed = true;
	}

	/* checksum everything first: a transaction is copied whole or not at all */
	for (int i = 0; i < nbufs; i++) {
		struct dfs_buf *bp = bufs[i];

		if (bp->b_flags & DFS_BUF_STALE)
			continue;
		bp->b_lsn = log->l_cur_lsn;
		if (bp->b_ops) {
			error = dfs_buf_verify_write(bp);
			if (error) {
				dfs_err(mp, "%s block %" PRIu64 " fails verification at commit",
					bp->b_ops->name, bp->b_blkno);
				return error;
			}
		}
	}
	/* frees first: the slots they give back may be needed by the rest */
	for (int i = 0; i < nbufs; i++)
		if (bufs[i]->b_flags & DFS_BUF_STALE)
			dfs_iclog_add(log, bufs[i]);
	for (int i = 0; i < nbufs; i++)
		if (!(bufs[i]->b_flags & DFS_BUF_STALE))
			dfs_iclog_add(log, bufs[i]);
	log->l_last_commit_lsn = log->l_cur_lsn;
	log->l_stats.commits++;
	*lsnp = log->l_cur_lsn;
	return 0;
}

int dfs_log_add_committed_cb(struct dfs_mount *mp, uint64_t lsn,
			     void (*cb)(struct dfs_mount *mp, void *arg), void *arg)
{
	struct dfs_log *log = mp->m_log;

	if (!lsn)
		lsn = log ? log->l_last_commit_lsn : 0;
	if (!log || lsn <= log->l_durable_lsn) {
		cb(mp, arg);
		return 0;
	}
	if (log->l_ncbs == log->l_cbs_cap) {
		size_t cap = log->l_cbs_cap ? log->l_cbs_cap * 2 : 64;
		struct dfs_log_cb *n = realloc(log->l_cbs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		log->l_cbs = n;
		log->l_cbs_cap = cap;
	}
	log->l_cbs[log->l_ncbs++] = (struct dfs_log_cb){ .lsn = lsn, .cb = cb, .arg = arg };
	return 0;
}

/* ---- recovery ------------------------------------------------------------- */

struct dfs_rlog_cancel {
	uint64_t blkno;
	uint64_t lsn;
};

struct dfs_rlog {
	struct dfs_log *log;
	void *hdr;			/* ic_max_hdr blocks */
	void *images;			/* ic_max_images blocks */
	struct dfs_rlog_cancel *cancels;
	size_t ncancels, cancels_cap;
};

static uint32_t dfs_rec_nimages(const struct dfs_logrec *rec)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < rec->nblocks; i++)
		if (!(rec->blknos[i] & DFS_LOGREC_CANCEL))
			n++;
	return n;
}

/*
 * Is there a valid record with LSN lsn at pos? Returns 1 with the header in
 * r->hdr and the images in r->images, 0 if not (end of the log), or a
 * negative errno.
 */
static int dfs_log_read_record(struct dfs_rlog *r, uint32_t pos, uint64_t lsn)
{
	struct dfs_log *log = r->log;
	struct dfs_mount *mp = log->l_mp;
	struct dfs_logrec *rec = r->hdr;
	uint32_t bs = mp->m_blocksize, nimages, hb;
	int error;

	if (pos < 1 || pos >= log->l_blocks)
		return 0;
	error = dfs_blkdev_rw(mp->m_bdev, DFS_IO_READ, DFS_IOK_LOG,
			      dfs_fsb_to_bytes(mp, log->l_start + pos), rec, bs);
	if (error)
		return error;
	/* a record is only as big as this geometry makes them */
	hb = rec->hdr_blocks;
	if (rec->hdr.magic != DFS_LOGREC_MAGIC || rec->rec_lsn != lsn || rec->hdr.lsn != lsn ||
	    rec->hdr.blkno != log->l_start + pos ||
	    memcmp(rec->hdr.uuid, mp->m_sb.hdr.uuid, sizeof(rec->hdr.uuid)) ||
	    hb < 1 || hb > log->ic_max_hdr || pos + hb > log->l_blocks)
		return 0;
	if (hb > 1) {
		error = dfs_blkdev_rw(mp->m_bdev, DFS_IO_READ, DFS_IOK_LOG,
				      dfs_fsb_to_bytes(mp, log->l_start + pos + 1),
				      (char *)rec + bs, (size_t)(hb - 1) * bs);
		if (error)
			return error;
	}
	if (!dfs_cksum_verify(rec, (size_t)hb * bs, offsetof(struct dfs_blkhdr, crc)) ||
	    rec->nblocks > dfs_log_hdr_cap(bs, hb))
		return 0;
	nimages = dfs_rec_nimages(rec);
	if (nimages > log->ic_max_images || (uint64_t)pos + hb + nimages > log->l_blocks)
		return 0;
	if (nimages) {
		error = dfs_blkdev_rw(mp->m_bdev, DFS_IO_READ, DFS_IOK_LOG,
				      dfs_fsb_to_bytes(mp, log->l_start + pos + hb), r->images,
				      (size_t)nimages * bs);
		if (error)
			return error;
	}
	/* a torn record ends the log */
	if (dfs_crc32c(0, r->images, (size_t)nimages * bs) != rec->rec_crc)
		return 0;
	/* a record that checksums but names impossible blocks is a bug, not a tear */
	for (uint32_t i = 0; i < rec->nblocks; i++) {
		uint64_t b = rec->blknos[i] & ~DFS_LOGREC_CANCEL;

		if (b >= mp->m_dblocks || (b >= log->l_start && b < log->l_start + log->l_blocks))
			return dfs_corrupt(mp, "log record", log->l_start + pos,
					   "logs a block outside the filesystem or inside the log");
	}
	return 1;
}

static int dfs_rlog_add_cancel(struct dfs_rlog *r, uint64_t blkno, uint64_t lsn)
{
	if (r->ncancels == r->cancels_cap) {
		size_t cap = r->cancels_cap ? r->cancels_cap * 2 : 64;
		struct dfs_rlog_cancel *n = realloc(r->cancels, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		r->cancels = n;
		r->cancels_cap = cap;
	}
	r->cancels[r->ncancels++] = (struct dfs_rlog_cancel){ blkno, lsn };
	return 0;
}

static int dfs_rlog_cancel_cmp(const void *a, const void *b)
{
	const struct dfs_rlog_cancel *x = a, *y = b;

	if (x->blkno != y->blkno)
		return x->blkno < y->blkno ? -1 : 1;
	return x->lsn < y->lsn ? -1 : x->lsn > y->lsn;
}

/* Was blkno freed by a record later than lsn? */
static bool dfs_rlog_cancelled(const struct dfs_rlog *r, uint64_t blkno, uint64_t lsn)
{
	size_t lo = 0, hi = r->ncancels;

	/* last entry for blkno has the highest LSN */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (r->cancels[mid].blkno <= blkno)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && r->cancels[lo - 1].blkno == blkno && r->cancels[lo - 1].lsn > lsn;
}

static int dfs_log_replay_record(struct dfs_rlog *r)
{
	struct dfs_log *log = r->log;
	struct dfs_mount *mp = log->l_mp;
	const struct dfs_logrec *rec = r->hdr;
	uint32_t bs = mp->m_blocksize, slot = 0;
	struct dfs_bio *bios;
	int error = 0;

	bios = calloc(rec->nblocks ? rec->nblocks : 1, sizeof(*bios));
	if (!bios)
		return -ENOMEM;
	for (uint32_t i = 0; i < rec->nblocks; i++) {
		uint64_t b = rec->blknos[i];
		char *img;
		struct dfs_buf *bp;

		if (b & DFS_LOGREC_CANCEL)
			continue;
		img = (char *)r->images + (size_t)slot++ * bs;
		if (dfs_rlog_cancelled(r, b, rec->rec_lsn))
			continue;
		if (b == 0)
			memcpy(&mp->m_sb, img, sizeof(mp->m_sb));
		if (mp->m_bcache && (bp = dfs_buf_incore(mp, b))) {
			memcpy(bp->b_addr, img, bs);
			dfs_buf_relse(bp);
		}
		dfs_bio_init(&bios[i], DFS_IO_WRITE, b ? DFS_IOK_META : DFS_IOK_SB,
			     dfs_fsb_to_bytes(mp, b));
		dfs_bio_add_vec(&bios[i], img, bs);
		error = dfs_submit_bio(mp->m_bdev, &bios[i]);
		if (error)
			break;
	}
	/* later records win: this one is on disk before the next is written */
	{
		int error2 = dfs_blkdev_drain(mp->m_bdev);

		if (!error)
			error = error2;
	}
	for (uint32_t i = 0; i < rec->nblocks && !error; i++)
		if (bios[i].done && bios[i].error)
			error = bios[i].error;
	free(bios);
	return error;
}

/* Finds the next record: at pos, or at block 1 if the writer wrapped. */
static int dfs_log_next_record(struct dfs_rlog *r, uint32_t *pos, uint64_t lsn)
{
	int ret = dfs_log_read_record(r, *pos, lsn);

	if (ret == 0 && *pos != 1) {
		ret = dfs_log_read_record(r, 1, lsn);
		if (ret == 1)
			*pos = 1;
	}
	return ret;
}

/*
 * Two passes, as xlog_recover: the first finds the end of the log and the
 * cancelled blocks, the second writes images in place, oldest first.
 * Returns the number of records found, or a negative errno; with replay
 * false, only counts them (read-only mount).
 */
static int dfs_log_recover(struct dfs_log *log, const struct dfs_loghdr *lh, bool replay,
			   uint32_t *headp, uint64_t *last_lsnp)
{
	struct dfs_mount *mp = log->l_mp;
	struct dfs_rlog r = { .log = log };
	uint32_t pos = lh->tail_block, *positions = NULL;
	uint64_t lsn = lh->tail_lsn, nimg = 0;
	int nrec = 0, ret;

	r.hdr = dfs_bio_alloc_buf((size_t)log->ic_max_hdr * mp->m_blocksize);
	r.images = dfs_bio_alloc_buf((size_t)log->ic_max_images * mp->m_blocksize);
	positions = calloc(log->l_blocks, sizeof(*positions));
	if (!r.hdr || !r.images || !positions) {
		ret = -ENOMEM;
		goto out;
	}
	/* each record takes two blocks at least: a bound on a corrupt chain */
	while ((uint32_t)nrec < log->l_blocks) {
		const struct dfs_logrec *rec = r.hdr;

		ret = dfs_log_next_record(&r, &pos, lsn);
		if (ret < 0)
			goto out;
		if (ret == 0)
			break;
		for (uint32_t i = 0; i < rec->nblocks; i++) {
			if (!(rec->blknos[i] & DFS_LOGREC_CANCEL))
				continue;
			ret = dfs_rlog_add_cancel(&r, rec->blknos[i] & ~DFS_LOGREC_CANCEL, lsn);
			if (ret)
				goto out;
		}
		positions[nrec++] = pos;
		pos += rec->hdr_blocks + dfs_rec_nimages(rec);
		if (pos == log->l_blocks)
			pos = 1;
		lsn++;
	}
	*headp = pos;
	*last_lsnp = lsn - 1;
	if (!replay || !nrec) {
		ret = nrec;
		goto out;
	}
	/* qsort's base must not be NULL, even for zero elements (C17 7.22.5) */
	if (r.ncancels)
		qsort(r.cancels, r.ncancels, sizeof(*r.cancels), dfs_rlog_cancel_cmp);
	for (int i = 0; i < nrec; i++) {
		ret = dfs_log_read_record(&r, positions[i], lh->tail_lsn + (uint64_t)i);
		if (ret == 0)
			ret = -EIO;	/* it was there a moment ago */
		if (ret < 0)
			goto out;
		ret = dfs_log_replay_record(&r);
		if (ret)
			goto out;
		nimg += dfs_rec_nimages(r.hdr);
		log->l_stats.replayed_records++;
	}
	ret = dfs_blkdev_flush(mp->m_bdev);
	if (ret)
		goto out;
	dfs_info(mp, "log recovery: replayed %d records (%" PRIu64 " block images), LSN %" PRIu64
		 " to %" PRIu64, nrec, nimg, lh->tail_lsn, *last_lsnp);
	ret = nrec;
out:
	if (ret < 0)
		dfs_err(mp, "log recovery failed: %s", strerror(-ret));
	free(positions);
	free(r.cancels);
	free(r.images);
	free(r.hdr);
	return ret;
}

static void dfs_log_free(struct dfs_log *log)
{
	if (!log)
		return;
	free(log->ic_hdr);
	free(log->ic_img);
	free(log->ic_img_blkno);
	free(log->ic_cancel);
	free(log->l_cbs);
	free(log);
}

int dfs_log_mount(struct dfs_mount *mp)
{
	uint32_t blocks = mp->m_sb.logblocks, bs = mp->m_blocksize, head;
	uint64_t last_lsn;
	struct dfs_loghdr lh = { 0 };
	struct dfs_log *log;
	int error, nrec;

	if (blocks < 8 || mp->m_sb.logstart + blocks > mp->m_dblocks ||
	    dfs_fsb_to_bytes(mp, mp->m_sb.logstart + blocks) > dfs_blkdev_size(mp->m_bdev))
		return dfs_corrupt(mp, "log header", mp->m_sb.logstart,
				   "log region outside the device");
	log = calloc(1, sizeof(*log));
	if (!log)
		return -ENOMEM;
	log->l_mp = mp;
	log->l_start = mp->m_sb.logstart;
	log->l_blocks = blocks;
	log->l_ring = blocks - 1;
	/* half the ring at most, so that the log holds two full records */
	log->ic_max_images = log->l_ring / 2;
	if (log->ic_max_images > DFS_ICLOG_MAX_BLOCKS)
		log->ic_max_images = DFS_ICLOG_MAX_BLOCKS;
	log->ic_max_entries = 2 * log->ic_max_images;
	log->ic_max_hdr = dfs_log_hdr_blocks(bs, log->ic_max_entries);
	/* the biggest record fits in an empty log (a checkpoint empties it) */
	assert(log->ic_max_hdr + log->ic_max_images <= log->l_ring);
	log->ic_hdr = dfs_bio_alloc_buf((size_t)log->ic_max_hdr * bs);
	log->ic_img = dfs_bio_alloc_buf((size_t)log->ic_max_images * bs);
	log->ic_img_blkno = calloc(log->ic_max_images, sizeof(uint64_t));
	log->ic_cancel = calloc(log->ic_max_entries, sizeof(uint64_t));
	if (!log->ic_hdr || !log->ic_img || !log->ic_img_blkno || !log->ic_cancel) {
		error = -ENOMEM;
		goto out_free;
	}

	error = dfs_loghdr_read(mp, &lh);
	if (error)
		goto out_free;
	head = lh.tail_block;
	log->l_cur_lsn = lh.tail_lsn;
	if (!lh.clean) {
		nrec = dfs_log_recover(log, &lh, !mp->m_readonly, &head, &last_lsn);
		if (nrec < 0) {
			error = nrec;
			goto out_free;
		}
		if (nrec && mp->m_readonly) {
			dfs_err(mp, "the log needs recovery (%d records): cannot mount read-only",
				nrec);
			error = -EROFS;
			goto out_free;
		}
		/* records past a torn one may exist: never expect their LSNs */
		log->l_cur_lsn = (nrec ? last_lsn + 1 : lh.tail_lsn) + blocks;
	}
	log->l_head = head;
	log->l_tail = head;
	log->l_tail_lsn = log->l_cur_lsn;
	log->l_synced_lsn = log->l_durable_lsn = log->l_cur_lsn - 1;
	if (!mp->m_readonly) {
		/* not clean from now on: records may follow */
		error = dfs_loghdr_write(mp, log->l_tail, log->l_tail_lsn, false);
		if (!error)
			error = dfs_blkdev_flush(mp->m_bdev);
		if (error) {
			dfs_err(mp, "cannot write the log header: %s", strerror(-error));
			goto out_free;
		}
	}
	mp->m_log = log;
	return 0;

out_free:
	dfs_log_free(log);
	return error;
}

int dfs_log_unmount(struct dfs_mount *mp)
{
	struct dfs_log *log = mp->m_log;
	int error;

	if (!log)
		return 0;
	if (mp->m_shutdown) {
		error = -EIO;
		goto out;
	}
	error = __dfs_log_checkpoint(log);
	if (!error)
		error = dfs_loghdr_write(mp, log->l_head, log->l_cur_lsn, true);
	if (!error)
		error = dfs_blkdev_flush(mp->m_bdev);
out:
	dfs_log_free(log);
	mp->m_log = NULL;
	return error;
}

void dfs_log_abort(struct dfs_mount *mp)
{
	dfs_log_free(mp->m_log);
	mp->m_log = NULL;
}

void dfs_log_get_stats(struct dfs_mount *mp, struct dfs_log_stats *st)
{
	if (mp->m_log)
		*st = mp->m_log->l_stats;
	else
		memset(st, 0, sizeof(*st));
}
