/* SPDX-License-Identifier: MIT */
/*
 * pageout() per policy (writeback.h) and the write of a run of pages that
 * every writer shares (rl_write_pages): reclaim's side of the seeds'
 * argument about who cleans dirty pages, and how many at a time.
 *
 * A run is index-contiguous pages of one mapping, all locked by us when it
 * is built, and unlocked once under writeback, except the page pageout()
 * was given (the target): every policy keeps the target locked through the
 * IO and returns it locked, as shrink_page_list expects.
 *
 * For writearound that lock is the point (Morton: it pins the mapping).
 * For writepages it departs from seed 000 patch 5, which releases it: the
 * patch must, because the filesystem's writepages locks each page it
 * writes; the owner's ->writepages here takes no page locks (PG_writeback
 * keeps the pages stable), so there is no inversion to avoid, while taking
 * the lock back after the IO could wait forever on an owner that holds it
 * while waiting for the isolated page to come back (rl_page_cache_delete).
 * The patch's igrab/iput is kept as it is, and with it Morton's hazard.
 */
#include <errno.h>
#include <stdlib.h>

#include "reclaim/wb.h"
#include "reclaim/writeback.h"

static bool wb_batch(const struct rl_pgdat *pgdat)
{
	return pgdat->cfg.wb == RL_WB_BATCH;
}

static void count_written(struct rl_pgdat *pgdat, uint32_t n, bool sync, enum rl_reclaim_ctx ctx)
{
	switch (ctx) {
	case RL_CTX_DIRECT:
		pgdat->vm.nr_written_direct += n;
		break;
	case RL_CTX_KSWAPD:
		pgdat->vm.nr_written_kswapd += n;
		break;
	case RL_CTX_FLUSHER:
		pgdat->vm.nr_written_flusher += n;
		break;
	}
	if (sync)
		pgdat->vm.nr_written_sync += n;
	/* Single mode: the owner issues one write per page of the run. */
	pgdat->vm.write_ios += wb_batch(pgdat) ? 1 : n;
	pgdat->vm.write_io_pages += n;
}

/*
 * The body of rl_write_pages. keep: a page of the run that stays locked
 * (the target of writepage/writearound, whose lock pins the mapping); pin:
 * the caller took an igrab that the completion drops (iput, lock dropped).
 */
static int write_run(struct rl_pgdat *pgdat, struct rl_mapping *m, uint64_t first, uint32_t n,
		     struct rl_page **pages, bool sync, enum rl_reclaim_ctx ctx,
		     const struct rl_page *keep, bool pin)
{
	const struct rl_mapping_ops *ops = m->ops;
	int err = 0;

	/* page_mkclean before the dirty bit goes: a write from now on
	 * faults and waits for the page lock, then for PG_writeback. */
	for (uint32_t i = 0; i < n && !err; i++)
		err = ops->write_protect(pages[i]);
	if (err) {
		for (uint32_t i = 0; i < n; i++)
			if (pages[i] != keep)
				unlock_page(pages[i]);
		if (pin)
			rl_writeback_iput(pgdat, m, (int)ctx);
		return err;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t pfn = page_to_pfn(pgdat, pages[i]);

		rl_clear_page_dirty_for_io(pgdat, pfn);
		rl_set_page_writeback(pgdat, pfn);
	}
	for (uint32_t i = 0; i < n; i++)
		if (pages[i] != keep)
			unlock_page(pages[i]);
	count_written(pgdat, n, sync, ctx);

	if (!sync) {
		err = rl_wb_queue(pgdat, m, first, n, pages, wb_batch(pgdat), pin, (int)ctx);
		if (!err)
			return 0;
		/* Not queued (a bad request): undo, the pages stay dirty. */
		goto complete;
	}

	pthread_mutex_unlock(pgdat->lock);
	err = ops->writepages(m, first, n, (struct rl_page *const *)pages, wb_batch(pgdat));
	pthread_mutex_lock(pgdat->lock);
complete:
	rl_end_writeback_run(pgdat, m, pages, n, err, pin, (int)ctx);
	return err;
}

int rl_write_pages(struct rl_pgdat *pgdat, struct rl_mapping *m, uint64_t first, uint32_t n,
		   struct rl_page **pages, bool sync, enum rl_reclaim_ctx ctx)
{
	if (!m || !m->ops || !m->ops->writepages || !m->ops->write_protect || n == 0)
		return -EINVAL;
	return write_run(pgdat, m, first, n, pages, sync, ctx, NULL, false);
}

/* A neighbour that may join a run: resident, dirty, not under writeback,
 * and not locked by anyone else (we take its lock). */
static struct rl_page *grab_neighbour(struct rl_mapping *m, uint64_t index)
{
	struct rl_page *p = m->ops->find_page ? m->ops->find_page(m, index) : NULL;

	if (!p || p->mapping != m || !PageDirty(p) || PageWriteback(p))
		return NULL;
	if (!trylock_page(p))
		return NULL;
	/* The lock holder we raced with may have cleaned it. */
	if (!PageDirty(p) || PageWriteback(p)) {
		unlock_page(p);
		return NULL;
	}
	return p;
}

/* written: pages this pageout sent (write_io_pages before and after). */
static pageout_t result_of(struct rl_pgdat *pgdat, struct rl_page *page, int err,
			   struct scan_control *sc, uint64_t io_pages_before)
{
	sc->nr_written += pgdat->vm.write_io_pages - io_pages_before;
	if (err) {
		page->flags &= ~PG_reclaim;
		sc->last_error = err;
		return PAGE_ACTIVATE;
	}
	return PAGE_SUCCESS;
}

/* writepage, capture, and anonymous pages: the target alone. */
static pageout_t pageout_single(struct rl_pgdat *pgdat, struct rl_page *page,
				struct scan_control *sc, bool sync)
{
	struct rl_page *pages[1] = { page };
	uint64_t before = pgdat->vm.write_io_pages;
	int err;

	if (!sync)
		page->flags |= PG_reclaim;
	err = write_run(pgdat, page->mapping, page->index, 1, pages, sync, sc->ctx, page, false);
	return result_of(pgdat, page, err, sc, before);
}

/*
 * Seed 000 patch 5: the target and the dirty pages that follow it, the
 * inode pinned by igrab, the other pages' locks released during the IO.
 * The iput afterwards may be the final one, in reclaim context: Morton's
 * hazard, kept on purpose so that it can be observed (pgdat->lock
 * dropped, the target still locked).
 */
static pageout_t pageout_writepages(struct rl_pgdat *pgdat, struct rl_page *page,
				    struct scan_control *sc, bool sync)
{
	struct rl_mapping *m = page->mapping;
	uint32_t max = pgdat->cfg.writepages_max ? pgdat->cfg.writepages_max : 32;
	struct rl_page *stack_pages[64], **pages = stack_pages;
	bool pin = m->ops->igrab && m->ops->iput;
	uint64_t before = pgdat->vm.write_io_pages;
	uint32_t n = 1;
	int err;

	if (max > 64) {
		pages = malloc(max * sizeof(*pages));
		if (!pages) {
			/* A shorter range is still a range. */
			max = 64;
			pages = stack_pages;
		}
	}
	if (pin) {
		/* igrab under the target's lock, as the patch does: the
		 * mapping cannot go away before the reference is taken. */
		pthread_mutex_unlock(pgdat->lock);
		m->ops->igrab(m);
		pthread_mutex_lock(pgdat->lock);
		m->pins++;
	}
	pages[0] = page;
	while (n < max) {
		struct rl_page *p = grab_neighbour(m, page->index + n);

		if (!p)
			break;
		pages[n++] = p;
	}
	if (!sync)
		page->flags |= PG_reclaim;
	/* Async: the engine drops the pin at completion. Sync: dropped here,
	 * by the reclaiming thread. */
	err = write_run(pgdat, m, page->index, n, pages, sync, sc->ctx, page, pin && !sync);
	if (sync && pin)
		rl_writeback_iput(pgdat, m, (int)sc->ctx);
	if (pages != stack_pages)
		free(pages);
	return result_of(pgdat, page, err, sc, before);
}

/*
 * Seed 003 (Morton): the dirty pages of an aligned window around the
 * target, as contiguous runs. The target's lock, held throughout, pins the
 * mapping: no inode reference, so no iput in reclaim context.
 */
static pageout_t pageout_writearound(struct rl_pgdat *pgdat, struct rl_page *page,
				     struct scan_control *sc, bool sync)
{
	struct rl_mapping *m = page->mapping;
	uint64_t w = pgdat->cfg.writearound_window ? pgdat->cfg.writearound_window : 32;
	uint64_t start = page->index - page->index % w;
	struct rl_page *stack_pages[64], **pages = stack_pages;
	uint64_t before = pgdat->vm.write_io_pages;
	int err = 0, target_err = 0;
	uint64_t i = 0;

	if (w > 64) {
		pages = malloc(w * sizeof(*pages));
		if (!pages) {
			/* No room for the window: fall back to the target alone. */
			return pageout_single(pgdat, page, sc, sync);
		}
	}
	/* Lock the whole window first: the runs are then fixed while the
	 * earlier ones are in flight (the lock is dropped for sync IO). */
	for (i = 0; i < w; i++) {
		uint64_t idx = start + i;

		if (idx < start)	/* wrapped past UINT64_MAX */
			break;
		pages[i] = idx == page->index ? page : grab_neighbour(m, idx);
	}
	w = i;
	if (!sync)
		page->flags |= PG_reclaim;
	for (i = 0; i < w;) {
		uint64_t j = i;
		bool has_target = false;

		if (!pages[i]) {
			i++;
			continue;
		}
		while (j < w && pages[j]) {
			has_target |= pages[j] == page;
			j++;
		}
		err = write_run(pgdat, m, start + i, (uint32_t)(j - i), pages + i, sync, sc->ctx,
				page, false);
		if (has_target)
			target_err = err;
		i = j;
	}
	if (pages != stack_pages)
		free(pages);
	/* The other runs' errors redirtied their pages; the target's decides. */
	return result_of(pgdat, page, target_err, sc, before);
}

pageout_t pageout(struct rl_pgdat *pgdat, struct rl_page *page, struct scan_control *sc)
{
	struct rl_mapping *m = page->mapping;
	bool direct = sc->ctx == RL_CTX_DIRECT;

	if (!m || !m->ops || !m->ops->writepages || !m->ops->write_protect)
		return PAGE_KEEP;
	if (!PageDirty(page))
		return PAGE_CLEAN;
	if (PageWriteback(page))
		return PAGE_KEEP;
	/* swap_writepage: the policies (and may_writepage, which carries
	 * nodirect's rule) are about file pages. */
	if (PageSwapBacked(page))
		return pageout_single(pgdat, page, sc, false);
	if (!sc->may_writepage) {
		sc->nr_unqueued_dirty++;
		return PAGE_KEEP;
	}

	switch (pgdat->cfg.policy) {
	case RL_POLICY_WRITEPAGE:
	case RL_POLICY_CAPTURE:
		return pageout_single(pgdat, page, sc, true);
	case RL_POLICY_WRITEPAGES:
		return pageout_writepages(pgdat, page, sc, direct);
	case RL_POLICY_WRITEAROUND:
		return pageout_writearound(pgdat, page, sc, direct);
	case RL_POLICY_NODIRECT: {
		pageout_t ret;

		if (direct || sc->ctx != RL_CTX_KSWAPD) {
			sc->nr_unqueued_dirty++;
			return PAGE_KEEP;
		}
		ret = pageout_single(pgdat, page, sc, false);
		/* kswapd cleans what direct reclaimers left behind; the
		 * flusher helps with the rest of the backlog. */
		wakeup_flusher_threads(pgdat, SWAP_CLUSTER_MAX);
		return ret;
	}
	case RL_POLICY_FLUSHER:
	case NR_RL_POLICIES:
		break;
	}
	return PAGE_KEEP;
}
