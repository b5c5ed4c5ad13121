/* SPDX-License-Identifier: MIT */
/*
 * Transactions (see trans.h).
 *
 * A joined buffer is held by the transaction until commit or cancel. A
 * buffer that is dirty when it joins gets a frozen copy of its committed
 * image (dfs_buf_freeze), so that a checkpoint running while this
 * transaction changes the buffer writes only committed contents in place.
 *
 * Freeing a block (dfs_trans_binval) takes effect at commit: until then the
 * buffer keeps its dirty state, so a checkpoint in between still writes the
 * committed image, and a cancel finds everything as it was.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "mount.h"
#include "msg.h"
#include "trans.h"

struct dfs_trans_item {
	struct dfs_buf *bp;
	bool logged;
	bool freed;			/* binval'd: a cancel entry at commit */
};

struct dfs_trans_cb {
	dfs_trans_cb_t cb;
	void *arg;
};

struct dfs_trans {
	struct dfs_mount *t_mp;
	uint64_t t_blkres;		/* reserved from m_fdblocks, plus blocks freed */
	uint64_t t_blkused;
	struct dfs_trans_item *t_items;
	int t_nitems, t_items_cap;
	struct dfs_trans_cb *t_cbs;
	int t_ncbs, t_cbs_cap;
};

int dfs_trans_alloc(struct dfs_mount *mp, uint32_t blkres, struct dfs_trans **tpp)
{
	struct dfs_trans *tp;
	int error;

	*tpp = NULL;
	if (mp->m_shutdown)
		return -EIO;
	if (mp->m_readonly)
		return -EROFS;
	tp = calloc(1, sizeof(*tp));
	if (!tp)
		return -ENOMEM;
	if (blkres) {
		error = dfs_mod_fdblocks(mp, -(int64_t)blkres);
		if (error) {
			free(tp);
			return error;
		}
	}
	tp->t_mp = mp;
	tp->t_blkres = blkres;
	*tpp = tp;
	return 0;
}

struct dfs_mount *dfs_trans_mount(struct dfs_trans *tp)
{
	return tp->t_mp;
}

int dfs_trans_use_blocks(struct dfs_trans *tp, uint32_t n)
{
	if (tp->t_blkused + n > tp->t_blkres)
		return -ENOSPC;
	tp->t_blkused += n;
	return 0;
}

void dfs_trans_free_blocks(struct dfs_trans *tp, uint32_t n)
{
	/* given back to m_fdblocks with the unused reservation */
	tp->t_blkres += n;
}

static struct dfs_trans_item *dfs_trans_find_item(struct dfs_trans *tp, struct dfs_buf *bp)
{
	for (int i = 0; i < tp->t_nitems; i++)
		if (tp->t_items[i].bp == bp)
			return &tp->t_items[i];
	return NULL;
}

/* Takes over the caller's hold on bp. */
static int dfs_trans_add_item(struct dfs_trans *tp, struct dfs_buf *bp)
{
	int error;

	assert(!bp->b_trans);
	if (tp->t_nitems == tp->t_items_cap) {
		int cap = tp->t_items_cap ? tp->t_items_cap * 2 : 16;
		struct dfs_trans_item *n = realloc(tp->t_items, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		tp->t_items = n;
		tp->t_items_cap = cap;
	}
	error = dfs_buf_freeze(bp);
	if (error)
		return error;
	tp->t_items[tp->t_nitems++] = (struct dfs_trans_item){ .bp = bp };
	bp->b_trans = tp;
	bp->b_flags |= DFS_BUF_INTRANS;
	return 0;
}

static void dfs_trans_release_item(struct dfs_trans *tp, int i)
{
	struct dfs_buf *bp = tp->t_items[i].bp;

	bp->b_trans = NULL;
	bp->b_flags &= ~DFS_BUF_INTRANS;
	dfs_buf_thaw(bp);
	dfs_buf_relse(bp);
	tp->t_items[i] = tp->t_items[--tp->t_nitems];
}

/*
 * A buffer already joined to tp is handed back as it is, without a new hold
 * (as xfs_trans_read_buf): the transaction's one hold covers every use.
 */
static struct dfs_buf *dfs_trans_buf_joined(struct dfs_trans *tp, uint64_t blkno)
{
	for (int i = 0; i < tp->t_nitems; i++)
		if (tp->t_items[i].bp->b_blkno == blkno)
			return tp->t_items[i].bp;
	return NULL;
}

int dfs_trans_read_buf(struct dfs_trans *tp, uint64_t blkno, const struct dfs_buf_ops *ops,
		       struct dfs_buf **bpp)
{
	struct dfs_buf *bp = dfs_trans_buf_joined(tp, blkno);
	int error;

	if (bp) {
		*bpp = bp;
		return 0;
	}
	error = dfs_buf_read(tp->t_mp, blkno, ops, &bp);
	if (error)
		return error;
	error = dfs_trans_add_item(tp, bp);
	if (error) {
		dfs_buf_relse(bp);
		return error;
	}
	*bpp = bp;
	return 0;
}

int dfs_trans_get_buf(struct dfs_trans *tp, uint64_t blkno, const struct dfs_buf_ops *ops,
		      struct dfs_buf **bpp)
{
	struct dfs_buf *bp = dfs_trans_buf_joined(tp, blkno);
	int error;

	if (bp) {
		struct dfs_trans_item *tip = dfs_trans_find_item(tp, bp);

		/* reallocated within the transaction that freed it */
		tip->freed = false;
		memset(bp->b_addr, 0, bp->b_len);
		bp->b_ops = ops;
		*bpp = bp;
		return 0;
	}
	/* the frozen copy must be taken before dfs_buf_get zeroes the buffer */
	bp = dfs_buf_incore(tp->t_mp, blkno);
	if (bp) {
		error = dfs_trans_add_item(tp, bp);
		if (error) {
			dfs_buf_relse(bp);
			return error;
		}
		memset(bp->b_addr, 0, bp->b_len);
		bp->b_flags &= ~DFS_BUF_STALE;
		bp->b_ops = ops;
		*bpp = bp;
		return 0;
	}
	error = dfs_buf_get(tp->t_mp, blkno, ops, &bp);
	if (error)
		return error;
	error = dfs_trans_add_item(tp, bp);
	if (error) {
		dfs_buf_relse(bp);
		return error;
	}
	*bpp = bp;
	return 0;
}

void dfs_trans_bjoin(struct dfs_trans *tp, struct dfs_buf *bp)
{
	if (bp->b_trans == tp) {
		/* already joined: the transaction's hold is enough */
		dfs_buf_relse(bp);
		return;
	}
	if (dfs_trans_add_item(tp, bp)) {
		/* no memory to track it: nothing can be committed safely */
		dfs_err(tp->t_mp, "out of memory joining block %llu to a transaction",
			(unsigned long long)bp->b_blkno);
		tp->t_mp->m_shutdown = true;
		dfs_buf_relse(bp);
	}
}

void dfs_trans_log_buf(struct dfs_trans *tp, struct dfs_buf *bp)
{
	struct dfs_trans_item *tip = dfs_trans_find_item(tp, bp);

	assert(tip);
	tip->logged = true;
	tip->freed = false;
}

void dfs_trans_binval(struct dfs_trans *tp, struct dfs_buf *bp)
{
	struct dfs_trans_item *tip = dfs_trans_find_item(tp, bp);

	assert(tip);
	tip->freed = true;
	tip->logged = false;
}

void dfs_trans_brelse(struct dfs_trans *tp, struct dfs_buf *bp)
{
	struct dfs_trans_item *tip = dfs_trans_find_item(tp, bp);

	if (!tip) {
		dfs_buf_relse(bp);
		return;
	}
	if (tip->logged || tip->freed)
		return;		/* stays with the transaction until commit */
	dfs_trans_release_item(tp, (int)(tip - tp->t_items));
}

int dfs_trans_add_committed_cb(struct dfs_trans *tp, dfs_trans_cb_t cb, void *arg)
{
	if (tp->t_ncbs == tp->t_cbs_cap) {
		int cap = tp->t_cbs_cap ? tp->t_cbs_cap * 2 : 4;
		struct dfs_trans_cb *n = realloc(tp->t_cbs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		tp->t_cbs = n;
		tp->t_cbs_cap = cap;
	}
	tp->t_cbs[tp->t_ncbs++] = (struct dfs_trans_cb){ cb, arg };
	return 0;
}

static void dfs_trans_free(struct dfs_trans *tp)
{
	struct dfs_mount *mp = tp->t_mp;

	while (tp->t_nitems)
		dfs_trans_release_item(tp, tp->t_nitems - 1);
	if (tp->t_blkres > tp->t_blkused)
		dfs_mod_fdblocks(mp, (int64_t)(tp->t_blkres - tp->t_blkused));
	free(tp->t_items);
	free(tp->t_cbs);
	free(tp);
}

int dfs_trans_commit(struct dfs_trans *tp, bool sync)
{
	struct dfs_mount *mp = tp->t_mp;
	struct dfs_buf **bufs = NULL;
	uint64_t lsn = 0;
	int n = 0, error = 0;

	if (mp->m_shutdown) {
		error = -EIO;
		goto out;
	}
	if (tp->t_nitems) {
		bufs = malloc(tp->t_nitems * sizeof(*bufs));
		if (!bufs) {
			error = -ENOMEM;
			goto out_shutdown;
		}
	}
	for (int i = 0; i < tp->t_nitems; i++) {
		struct dfs_trans_item *tip = &tp->t_items[i];

		/* the flag tells the log to write a cancel entry; the buffer
		 * leaves the dirty list only once the free is in the log, since
		 * the log may checkpoint before that */
		if (tip->freed)
			tip->bp->b_flags |= DFS_BUF_STALE;
		if (tip->logged || tip->freed)
			bufs[n++] = tip->bp;
	}
	if (n) {
		/* xlog_write: stamps the LSN, checksums and copies each image */
		error = dfs_log_write(mp, bufs, n, &lsn);
		if (error)
			goto out_shutdown;
		for (int i = 0; i < n; i++) {
			if (bufs[i]->b_flags & DFS_BUF_STALE)
				dfs_buf_stale(bufs[i]);
			else
				dfs_buf_mark_dirty(bufs[i], lsn);
		}
	}
	for (int i = 0; i < tp->t_ncbs; i++) {
		error = dfs_log_add_committed_cb(mp, lsn, tp->t_cbs[i].cb, tp->t_cbs[i].arg);
		if (error)
			goto out_shutdown;
	}
	/* before any force: a checkpoint must not find the old frozen images */
	while (tp->t_nitems)
		dfs_trans_release_item(tp, tp->t_nitems - 1);
	if (sync)
		error = dfs_log_force(mp);
	goto out;

out_shutdown:
	/* the in-memory changes cannot reach the log: stop before more damage */
	dfs_err(mp, "transaction commit failed (%s): shutting down", strerror(-error));
	mp->m_shutdown = true;
out:
	free(bufs);
	dfs_trans_free(tp);
	return error;
}

void dfs_trans_cancel(struct dfs_trans *tp)
{
	struct dfs_mount *mp = tp->t_mp;

	for (int i = 0; i < tp->t_nitems; i++) {
		if (tp->t_items[i].logged || tp->t_items[i].freed) {
			/* buffers were changed for good, but will never be logged */
			if (!mp->m_shutdown)
				dfs_err(mp, "cancelling a transaction that changed metadata (block %llu): shutting down",
					(unsigned long long)tp->t_items[i].bp->b_blkno);
			mp->m_shutdown = true;
			break;
		}
	}
	dfs_trans_free(tp);
}
