/* SPDX-License-Identifier: MIT */
/*
 * The metadata buffer cache (see buf.h).
 *
 * Every cached buffer is in the hash table. Besides, an unheld clean buffer
 * sits on the LRU (the only buffers that can be freed to stay within the
 * budget), and a dirty one on the dirty list until the log checkpoint writes
 * it in place. Held buffers are on neither list... except dirty ones, which
 * stay on the dirty list whoever holds them.
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

struct dfs_bcache {
	struct dfs_buf **hash;
	uint64_t nbuckets;		/* power of two */
	uint64_t nbufs;
	struct dfs_buf *lru_head, *lru_tail;	/* head = least recently used */
	struct dfs_buf *dirty_head;
	uint64_t budget;
	bool shrinking;
	struct dfs_bcache_stats stats;	/* bytes and dirty kept current */
};

static inline struct dfs_bcache *BC(struct dfs_mount *mp)
{
	return mp->m_bcache;
}

static uint64_t dfs_hash_blkno(const struct dfs_bcache *bc, uint64_t blkno)
{
	return (blkno * 0x9e3779b97f4a7c15ull >> 17) & (bc->nbuckets - 1);
}

int dfs_bcache_init(struct dfs_mount *mp, uint64_t budget_bytes)
{
	struct dfs_bcache *bc;
	uint64_t want = budget_bytes / (mp->m_blocksize ? mp->m_blocksize : 4096) / 2;

	bc = calloc(1, sizeof(*bc));
	if (!bc)
		return -ENOMEM;
	bc->nbuckets = 256;
	while (bc->nbuckets < want && bc->nbuckets < (1ull << 24))
		bc->nbuckets <<= 1;
	bc->hash = calloc(bc->nbuckets, sizeof(*bc->hash));
	if (!bc->hash) {
		free(bc);
		return -ENOMEM;
	}
	bc->budget = budget_bytes;
	mp->m_bcache = bc;
	return 0;
}

static void dfs_buf_free(struct dfs_buf *bp)
{
	free(bp->b_frozen);
	free(bp->b_addr);
	free(bp);
}

void dfs_bcache_destroy(struct dfs_mount *mp)
{
	struct dfs_bcache *bc = BC(mp);

	if (!bc)
		return;
	for (uint64_t i = 0; i < bc->nbuckets; i++) {
		struct dfs_buf *bp = bc->hash[i], *next;

		for (; bp; bp = next) {
			next = bp->b_hnext;
			dfs_buf_free(bp);
		}
	}
	free(bc->hash);
	free(bc);
	mp->m_bcache = NULL;
}

/* Keeps chains short: the cache can grow past its budget with dirty buffers. */
static void dfs_bcache_rehash(struct dfs_bcache *bc)
{
	uint64_t old_n = bc->nbuckets;
	struct dfs_buf **old = bc->hash, **nh;

	nh = calloc(old_n * 2, sizeof(*nh));
	if (!nh)
		return;
	bc->hash = nh;
	bc->nbuckets = old_n * 2;
	for (uint64_t i = 0; i < old_n; i++) {
		struct dfs_buf *bp = old[i], *next;

		for (; bp; bp = next) {
			uint64_t h = dfs_hash_blkno(bc, bp->b_blkno);

			next = bp->b_hnext;
			bp->b_hnext = nh[h];
			nh[h] = bp;
		}
	}
	free(old);
}

static struct dfs_buf *dfs_bcache_lookup(struct dfs_bcache *bc, uint64_t blkno)
{
	struct dfs_buf *bp = bc->hash[dfs_hash_blkno(bc, blkno)];

	while (bp && bp->b_blkno != blkno)
		bp = bp->b_hnext;
	return bp;
}

static void dfs_bcache_hash_remove(struct dfs_bcache *bc, struct dfs_buf *bp)
{
	struct dfs_buf **pp = &bc->hash[dfs_hash_blkno(bc, bp->b_blkno)];

	while (*pp != bp)
		pp = &(*pp)->b_hnext;
	*pp = bp->b_hnext;
	bc->nbufs--;
	bc->stats.bytes -= bp->b_len;
}

static bool dfs_buf_on_lru(const struct dfs_bcache *bc, const struct dfs_buf *bp)
{
	return bp->b_lru_prev || bc->lru_head == bp;
}

static void dfs_lru_del(struct dfs_bcache *bc, struct dfs_buf *bp)
{
	if (!dfs_buf_on_lru(bc, bp))
		return;
	if (bp->b_lru_prev)
		bp->b_lru_prev->b_lru_next = bp->b_lru_next;
	else
		bc->lru_head = bp->b_lru_next;
	if (bp->b_lru_next)
		bp->b_lru_next->b_lru_prev = bp->b_lru_prev;
	else
		bc->lru_tail = bp->b_lru_prev;
	bp->b_lru_prev = bp->b_lru_next = NULL;
}

static void dfs_lru_add_tail(struct dfs_bcache *bc, struct dfs_buf *bp)
{
	assert(!dfs_buf_on_lru(bc, bp));
	bp->b_lru_prev = bc->lru_tail;
	bp->b_lru_next = NULL;
	if (bc->lru_tail)
		bc->lru_tail->b_lru_next = bp;
	else
		bc->lru_head = bp;
	bc->lru_tail = bp;
}

static void dfs_dirty_del(struct dfs_bcache *bc, struct dfs_buf *bp)
{
	if (!(bp->b_flags & DFS_BUF_DIRTY))
		return;
	if (bp->b_dirty_prev)
		bp->b_dirty_prev->b_dirty_next = bp->b_dirty_next;
	else
		bc->dirty_head = bp->b_dirty_next;
	if (bp->b_dirty_next)
		bp->b_dirty_next->b_dirty_prev = bp->b_dirty_prev;
	bp->b_dirty_prev = bp->b_dirty_next = NULL;
	bp->b_flags &= ~DFS_BUF_DIRTY;
	bc->stats.dirty--;
}

static void dfs_bcache_evict(struct dfs_bcache *bc, struct dfs_buf *bp)
{
	dfs_lru_del(bc, bp);
	dfs_dirty_del(bc, bp);
	dfs_bcache_hash_remove(bc, bp);
	dfs_buf_free(bp);
}

static void dfs_bcache_shrink_lru(struct dfs_bcache *bc)
{
	while (bc->stats.bytes > bc->budget && bc->lru_head) {
		dfs_bcache_evict(bc, bc->lru_head);
		bc->stats.evictions++;
	}
}

/*
 * Over budget with clean buffers gone: if most of the cache is dirty, only a
 * checkpoint (which writes them in place) lets memory go. Done only when a
 * buffer is added, never from release or writeback, which the log itself
 * calls in the middle of its work.
 */
static void dfs_bcache_shrink(struct dfs_mount *mp)
{
	struct dfs_bcache *bc = BC(mp);

	dfs_bcache_shrink_lru(bc);
	if (bc->stats.bytes <= bc->budget || bc->shrinking || !mp->m_log || mp->m_shutdown)
		return;
	if (bc->stats.dirty * mp->m_blocksize < bc->budget / 2)
		return;
	bc->shrinking = true;
	if (dfs_log_checkpoint(mp) == 0)
		dfs_bcache_shrink_lru(bc);
	bc->shrinking = false;
}

int dfs_buf_verify_read(struct dfs_buf *bp)
{
	const struct dfs_buf_ops *ops = bp->b_ops;
	int error;

	if (ops->verify_read)
		return ops->verify_read(bp);
	error = dfs_blkhdr_verify(bp, ops->magic);
	return error ? error : ops->check(bp, true);
}

int dfs_buf_verify_write(struct dfs_buf *bp)
{
	const struct dfs_buf_ops *ops = bp->b_ops;
	int error;

	if (ops->verify_write)
		return ops->verify_write(bp);
	if (!ops->check)
		return 0;
	error = ops->check(bp, false);
	if (error)
		return error;
	dfs_blkhdr_update_crc(bp);
	return 0;
}

static struct dfs_buf *dfs_buf_alloc(struct dfs_mount *mp, uint64_t blkno,
				     const struct dfs_buf_ops *ops)
{
	struct dfs_buf *bp = calloc(1, sizeof(*bp));

	if (!bp)
		return NULL;
	bp->b_addr = dfs_bio_alloc_buf(mp->m_blocksize);
	if (!bp->b_addr) {
		free(bp);
		return NULL;
	}
	bp->b_mount = mp;
	bp->b_blkno = blkno;
	bp->b_len = mp->m_blocksize;
	bp->b_ops = ops;
	bp->b_hold = 1;
	return bp;
}

static void dfs_bcache_insert(struct dfs_mount *mp, struct dfs_buf *bp)
{
	struct dfs_bcache *bc = BC(mp);
	uint64_t h;

	if (bc->nbufs >= bc->nbuckets * 2)
		dfs_bcache_rehash(bc);
	h = dfs_hash_blkno(bc, bp->b_blkno);
	bp->b_hnext = bc->hash[h];
	bc->hash[h] = bp;
	bc->nbufs++;
	bc->stats.bytes += bp->b_len;
}

static int dfs_buf_check_blkno(struct dfs_mount *mp, uint64_t blkno,
			       const struct dfs_buf_ops *ops)
{
	if (mp->m_dblocks && blkno >= mp->m_dblocks)
		return dfs_corrupt(mp, ops ? ops->name : "metadata", blkno,
				   "block number beyond the end of the filesystem");
	return 0;
}

static int dfs_buf_read_disk(struct dfs_mount *mp, struct dfs_buf *bp)
{
	BC(mp)->stats.reads++;
	return dfs_blkdev_rw(mp->m_bdev, DFS_IO_READ, bp->b_blkno ? DFS_IOK_META : DFS_IOK_SB,
			     dfs_fsb_to_bytes(mp, bp->b_blkno), bp->b_addr, bp->b_len);
}

int dfs_buf_read(struct dfs_mount *mp, uint64_t blkno, const struct dfs_buf_ops *ops,
		 struct dfs_buf **bpp)
{
	struct dfs_bcache *bc = BC(mp);
	struct dfs_buf *bp;
	int error;

	*bpp = NULL;
	error = dfs_buf_check_blkno(mp, blkno, ops);
	if (error)
		return error;
	bc->stats.lookups++;
	bp = dfs_bcache_lookup(bc, blkno);
	if (bp) {
		bc->stats.hits++;
		dfs_lru_del(bc, bp);
		bp->b_hold++;
		if (bp->b_flags & DFS_BUF_STALE) {
			/* a freed block read again: what is on disk counts */
			bp->b_flags &= ~DFS_BUF_STALE;
			bp->b_ops = NULL;
			error = dfs_buf_read_disk(mp, bp);
			if (error)
				goto out_relse;
		}
		if (ops && bp->b_ops != ops) {
			/* cached raw (fsck), or as another kind of block (two
			 * verifiers for one format, a block reused without
			 * dfs_buf_get): the new verifier must accept it */
			const struct dfs_buf_ops *old_ops = bp->b_ops;

			bp->b_ops = ops;
			error = dfs_buf_verify_read(bp);
			if (error) {
				bp->b_ops = old_ops;
				goto out_relse;
			}
		}
		*bpp = bp;
		return 0;
	}

	bp = dfs_buf_alloc(mp, blkno, ops);
	if (!bp)
		return -ENOMEM;
	error = dfs_buf_read_disk(mp, bp);
	if (!error && ops)
		error = dfs_buf_verify_read(bp);
	if (error) {
		/* never cache what failed verification: the next read retries */
		dfs_buf_free(bp);
		return error;
	}
	dfs_bcache_insert(mp, bp);
	dfs_bcache_shrink(mp);
	*bpp = bp;
	return 0;

out_relse:
	dfs_buf_relse(bp);
	return error;
}

int dfs_buf_get(struct dfs_mount *mp, uint64_t blkno, const struct dfs_buf_ops *ops,
		struct dfs_buf **bpp)
{
	struct dfs_bcache *bc = BC(mp);
	struct dfs_buf *bp;
	int error;

	*bpp = NULL;
	error = dfs_buf_check_blkno(mp, blkno, ops);
	if (error)
		return error;
	bc->stats.lookups++;
	bp = dfs_bcache_lookup(bc, blkno);
	if (bp) {
		bc->stats.hits++;
		dfs_lru_del(bc, bp);
		bp->b_hold++;
		bp->b_flags &= ~DFS_BUF_STALE;
	} else {
		bp = dfs_buf_alloc(mp, blkno, ops);
		if (!bp)
			return -ENOMEM;
		dfs_bcache_insert(mp, bp);
		dfs_bcache_shrink(mp);
	}
	memset(bp->b_addr, 0, bp->b_len);
	bp->b_ops = ops;
	*bpp = bp;
	return 0;
}

struct dfs_buf *dfs_buf_incore(struct dfs_mount *mp, uint64_t blkno)
{
	struct dfs_bcache *bc = BC(mp);
	struct dfs_buf *bp = dfs_bcache_lookup(bc, blkno);

	if (bp) {
		dfs_lru_del(bc, bp);
		bp->b_hold++;
	}
	return bp;
}

void dfs_buf_hold(struct dfs_buf *bp)
{
	assert(bp->b_hold > 0);
	bp->b_hold++;
}

void dfs_buf_relse(struct dfs_buf *bp)
{
	struct dfs_bcache *bc = BC(bp->b_mount);

	assert(bp->b_hold > 0);
	if (--bp->b_hold)
		return;
	if (bp->b_flags & DFS_BUF_STALE) {
		dfs_bcache_evict(bc, bp);
		return;
	}
	if (!(bp->b_flags & DFS_BUF_DIRTY)) {
		dfs_lru_add_tail(bc, bp);
		dfs_bcache_shrink_lru(bc);
	}
}

void dfs_buf_stale(struct dfs_buf *bp)
{
	dfs_dirty_del(BC(bp->b_mount), bp);
	bp->b_flags |= DFS_BUF_STALE;
}

void dfs_buf_mark_dirty(struct dfs_buf *bp, uint64_t lsn)
{
	struct dfs_bcache *bc = BC(bp->b_mount);

	bp->b_lsn = lsn;
	bp->b_flags &= ~DFS_BUF_STALE;
	if (bp->b_flags & DFS_BUF_DIRTY)
		return;
	dfs_lru_del(bc, bp);
	bp->b_flags |= DFS_BUF_DIRTY;
	bp->b_dirty_prev = NULL;
	bp->b_dirty_next = bc->dirty_head;
	if (bc->dirty_head)
		bc->dirty_head->b_dirty_prev = bp;
	bc->dirty_head = bp;
	bc->stats.dirty++;
}

int dfs_buf_freeze(struct dfs_buf *bp)
{
	if (!(bp->b_flags & DFS_BUF_DIRTY) || bp->b_frozen)
		return 0;
	bp->b_frozen = dfs_bio_alloc_buf(bp->b_len);
	if (!bp->b_frozen)
		return -ENOMEM;
	memcpy(bp->b_frozen, bp->b_addr, bp->b_len);
	return 0;
}

void dfs_buf_thaw(struct dfs_buf *bp)
{
	free(bp->b_frozen);
	bp->b_frozen = NULL;
}

static int dfs_buf_cmp_blkno(const void *a, const void *b)
{
	const struct dfs_buf *x = *(struct dfs_buf *const *)a;
	const struct dfs_buf *y = *(struct dfs_buf *const *)b;

	return x->b_blkno < y->b_blkno ? -1 : x->b_blkno > y->b_blkno;
}

/*
 * Writes bufs[0..n) (sorted by block number) as few bios as possible:
 * adjacent blocks go in one multi-vector bio.
 */
static int dfs_bcache_submit_sorted(struct dfs_mount *mp, struct dfs_buf **bufs, size_t n)
{
	struct dfs_bio *bios;
	size_t nbios = 0;
	int error = 0, error2;

	bios = calloc(n ? n : 1, sizeof(*bios));
	if (!bios)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct dfs_buf *bp = bufs[i];
		struct dfs_bio *bio = nbios ? &bios[nbios - 1] : NULL;

		if (!bio || bio->nr_vecs == DFS_BIO_MAX_VECS ||
		    bufs[i - 1]->b_blkno + 1 != bp->b_blkno) {
			if (bio) {
				error = dfs_submit_bio(mp->m_bdev, bio);
				if (error)
					break;
			}
			bio = &bios[nbios++];
			dfs_bio_init(bio, DFS_IO_WRITE, bp->b_blkno ? DFS_IOK_META : DFS_IOK_SB,
				     dfs_fsb_to_bytes(mp, bp->b_blkno));
		}
		dfs_bio_add_vec(bio, bp->b_frozen ? bp->b_frozen : bp->b_addr, bp->b_len);
	}
	if (!error && nbios)
		error = dfs_submit_bio(mp->m_bdev, &bios[nbios - 1]);
	/* wait for whatever was submitted, even after an error */
	error2 = dfs_blkdev_drain(mp->m_bdev);
	if (!error)
		error = error2;
	for (size_t i = 0; i < nbios && !error; i++)
		if (bios[i].done && bios[i].error)
			error = bios[i].error;
	free(bios);
	return error;
}

int dfs_bcache_writeback(struct dfs_mount *mp, uint64_t upto_lsn)
{
	struct dfs_bcache *bc = BC(mp);
	struct dfs_buf **bufs, *bp;
	size_t n = 0;
	int error = 0;

	if (!bc->stats.dirty)
		return 0;
	bufs = malloc(bc->stats.dirty * sizeof(*bufs));
	if (!bufs)
		return -ENOMEM;
	for (bp = bc->dirty_head; bp; bp = bp->b_dirty_next)
		if (bp->b_lsn <= upto_lsn)
			bufs[n++] = bp;
	qsort(bufs, n, sizeof(*bufs), dfs_buf_cmp_blkno);
	for (size_t i = 0; i < n; i++) {
		bp = bufs[i];
		/* a frozen image was checksummed when its transaction committed */
		if (bp->b_frozen || !bp->b_ops)
			continue;
		error = dfs_buf_verify_write(bp);
		if (error) {
			dfs_err(mp, "%s block %" PRIu64 " is corrupt in memory; not writing it",
				bp->b_ops->name, bp->b_blkno);
			goto out;
		}
	}
	error = dfs_bcache_submit_sorted(mp, bufs, n);
	if (error) {
		dfs_err(mp, "metadata writeback failed: %s", strerror(-error));
		goto out;
	}
	bc->stats.writes += n;
	for (size_t i = 0; i < n; i++) {
		bp = bufs[i];
		dfs_dirty_del(bc, bp);
		if (!bp->b_hold)
			dfs_lru_add_tail(bc, bp);
	}
	dfs_bcache_shrink_lru(bc);
out:
	free(bufs);
	return error;
}

uint64_t dfs_bcache_dirty_count(struct dfs_mount *mp)
{
	return BC(mp)->stats.dirty;
}

void dfs_blkhdr_init(struct dfs_buf *bp, uint32_t magic, uint64_t owner)
{
	struct dfs_blkhdr *hdr = bp->b_addr;

	memset(hdr, 0, sizeof(*hdr));
	hdr->magic = magic;
	hdr->blkno = bp->b_blkno;
	hdr->lsn = bp->b_lsn;
	hdr->owner = owner;
	memcpy(hdr->uuid, bp->b_mount->m_sb.hdr.uuid, sizeof(hdr->uuid));
}

int dfs_blkhdr_verify(struct dfs_buf *bp, uint32_t magic)
{
	const struct dfs_blkhdr *hdr = bp->b_addr;
	struct dfs_mount *mp = bp->b_mount;
	const char *what = bp->b_ops ? bp->b_ops->name : "metadata";
	char why[128];

	if (hdr->magic != magic) {
		snprintf(why, sizeof(why), "bad magic 0x%08x, expected 0x%08x", hdr->magic, magic);
		return dfs_corrupt(mp, what, bp->b_blkno, why);
	}
	if (!dfs_cksum_verify(bp->b_addr, bp->b_len, offsetof(struct dfs_blkhdr, crc)))
		return dfs_corrupt(mp, what, bp->b_blkno, "CRC mismatch");
	if (hdr->blkno != bp->b_blkno) {
		snprintf(why, sizeof(why), "records block %" PRIu64 " as its address (misdirected IO?)",
			 hdr->blkno);
		return dfs_corrupt(mp, what, bp->b_blkno, why);
	}
	if (memcmp(hdr->uuid, mp->m_sb.hdr.uuid, sizeof(hdr->uuid)))
		return dfs_corrupt(mp, what, bp->b_blkno,
				   "belongs to another filesystem (UUID mismatch)");
	return 0;
}

void dfs_blkhdr_update_crc(struct dfs_buf *bp)
{
	struct dfs_blkhdr *hdr = bp->b_addr;

	if (bp->b_lsn)
		hdr->lsn = bp->b_lsn;
	dfs_cksum_update(bp->b_addr, bp->b_len, offsetof(struct dfs_blkhdr, crc));
}

void dfs_bcache_get_stats(struct dfs_mount *mp, struct dfs_bcache_stats *st)
{
	*st = BC(mp)->stats;
}
