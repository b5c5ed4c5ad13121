/* SPDX-License-Identifier: MIT */
/*
 * The flusher thread (the kernel's bdi writeback worker, wb_workfn ->
 * wb_do_writeback): woken by wakeup_flusher_threads (reclaim, and
 * balance_dirty_pages above the background threshold) and periodically,
 * every dirty_expire_ms / 2 (dirty_writeback_centisecs), it writes expired
 * dirty pages, then the oldest dirtied pages while above the background
 * threshold, then whatever reclaim asked for.
 *
 * Simplified from the kernel: there are no per-inode dirty lists (b_dirty,
 * b_io), so the pages come from the LRU lists, ordered by page->dirtied_at
 * instead of inode->dirtied_when; each chosen page is extended into the run
 * of contiguous dirty pages of its mapping around it (writeback_sb_inodes
 * writes whole inode ranges), sent asynchronously through the engine.
 * Policy flusher (seed 004) keeps dirty inactive file pages on
 * LRU_INACTIVE_DIRTY: those come first, since they are the ones reclaim is
 * waiting for; expired pages come before anything, wherever they are.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reclaim/wb.h"
#include "reclaim/writeback.h"

/* Pages per flusher run (MAX_WRITEBACK_PAGES is 1024 in the kernel; the
 * pools here are small). */
#define FLUSH_RUN_MAX	256u

struct rl_flusher {
	pthread_t thread;
	pthread_cond_t kick;		/* with pgdat->lock */
	bool stop;
	bool woken;			/* a wakeup since the last pass */
	uint64_t nr_requested;		/* pages asked for by wakeup_flusher_threads(nr) */
};

struct cand {
	uint64_t dirtied_at;
	uint32_t pfn;
	uint8_t rank;			/* 0 expired, 1 inactive_dirty (policy flusher), 2 other */
};

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	if (x->dirtied_at != y->dirtied_at)
		return x->dirtied_at < y->dirtied_at ? -1 : 1;
	return x->pfn < y->pfn ? -1 : x->pfn > y->pfn;
}

/* Dirty file pages: anonymous ones are written only by reclaim (swap). */
static bool flushable(const struct rl_page *p)
{
	return p->mapping && PageDirty(p) && !PageWriteback(p) && !PageSwapBacked(p) &&
	       p->mapping->ops && p->mapping->ops->writepages && p->mapping->ops->write_protect;
}

/* A dirty page the flusher may write: locks it, or NULL. */
static struct rl_page *grab(struct rl_mapping *m, uint64_t index)
{
	struct rl_page *p = m->ops->find_page ? m->ops->find_page(m, index) : NULL;

	if (!p || p->mapping != m || !flushable(p) || !trylock_page(p))
		return NULL;
	if (!flushable(p)) {
		unlock_page(p);
		return NULL;
	}
	return p;
}

/*
 * The run of contiguous dirty pages of page's mapping around it, locked,
 * in pages[] (index order); returns its length (0 if page cannot be taken).
 */
static uint32_t build_run(struct rl_page *page, struct rl_page **pages, uint64_t *first)
{
	struct rl_mapping *m = page->mapping;
	uint32_t back = 0, n;

	if (!flushable(page) || !trylock_page(page))
		return 0;
	if (!flushable(page)) {
		unlock_page(page);
		return 0;
	}
	/* Backwards first, into the top of the array, then slide down. */
	while (back < FLUSH_RUN_MAX / 2 && page->index > back) {
		struct rl_page *p = grab(m, page->index - back - 1);

		if (!p)
			break;
		pages[FLUSH_RUN_MAX - 1 - back] = p;
		back++;
	}
	for (uint32_t i = 0; i < back; i++)
		pages[i] = pages[FLUSH_RUN_MAX - back + i];
	pages[back] = page;
	n = back + 1;
	while (n < FLUSH_RUN_MAX && page->index + (n - back) != 0) {
		struct rl_page *p = grab(m, page->index + (n - back));

		if (!p)
			break;
		pages[n++] = p;
	}
	*first = page->index - back;
	return n;
}

static bool over_background(const struct rl_pgdat *pgdat)
{
	return pgdat->nr_dirty > pgdat->bg_thresh;
}

uint64_t wb_do_writeback(struct rl_pgdat *pgdat)
{
	bool policy_flusher = pgdat->cfg.policy == RL_POLICY_FLUSHER;
	uint64_t expire = pgdat->cfg.dirty_expire_ms ? pgdat->cfg.dirty_expire_ms : 3000;
	uint64_t now = rl_pgdat_now_ms(pgdat), written = 0, requested = 0;
	struct rl_page *pages[FLUSH_RUN_MAX];
	struct cand *c;
	size_t nc = 0, cap = pgdat->nr_dirty + 16;

	if (pgdat->dirty_thresh == 0)
		rl_update_dirty_limits(pgdat);
	if (pgdat->flusher) {
		requested = pgdat->flusher->nr_requested;
		pgdat->flusher->nr_requested = 0;
		pgdat->flusher->woken = false;
	}
	pgdat->vm.flusher_passes++;
	if (pgdat->nr_dirty == 0)
		return 0;
	c = malloc(cap * sizeof(*c));
	if (!c) {
		/* The next pass (periodic or woken) tries again. */
		fprintf(stderr, "reclaim: flusher: no memory for %zu candidates\n", cap);
		return 0;
	}
	for (unsigned lru = 0; lru < NR_LRU_LISTS; lru++) {
		for (uint32_t pfn = pgdat->lruvec.tail[lru]; pfn != RL_NO_PAGE;
		     pfn = pgdat->pages[pfn].prev) {
			struct rl_page *p = &pgdat->pages[pfn];
			bool expired = p->dirtied_at <= now && now - p->dirtied_at >= expire;

			if (!flushable(p))
				continue;
			if (nc == cap) {
				struct cand *nc_ = realloc(c, 2 * cap * sizeof(*c));

				if (!nc_)
					break;	/* write what we have; the rest next pass */
				c = nc_;
				cap *= 2;
			}
			c[nc++] = (struct cand){
				.dirtied_at = p->dirtied_at, .pfn = pfn,
				.rank = expired ? 0 : (policy_flusher && lru == LRU_INACTIVE_DIRTY) ? 1 : 2,
			};
		}
	}
	qsort(c, nc, sizeof(*c), cand_cmp);

	for (size_t i = 0; i < nc; i++) {
		struct rl_page *p = &pgdat->pages[c[i].pfn];
		uint64_t first;
		uint32_t n;

		if (c[i].rank != 0 && !over_background(pgdat) && written >= requested)
			break;
		/* Earlier runs (and the lock drops in them) may have
		 * written or freed it. */
		n = build_run(p, pages, &first);
		if (n == 0)
			continue;
		if (rl_write_pages(pgdat, p->mapping, first, n, pages, false, RL_CTX_FLUSHER) == 0)
			written += n;
	}
	free(c);
	return written;
}

static void *flusher_thread(void *arg)
{
	struct rl_pgdat *pgdat = arg;
	struct rl_flusher *f = pgdat->flusher;
	uint64_t expire = pgdat->cfg.dirty_expire_ms ? pgdat->cfg.dirty_expire_ms : 3000;
	uint64_t period_ns = expire * 1000000ull / 2;

	pthread_mutex_lock(pgdat->lock);
	while (!f->stop) {
		struct timespec ts;

		wb_do_writeback(pgdat);
		if (f->woken || f->stop)
			continue;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)(period_ns / 1000000000ull);
		ts.tv_nsec += (long)(period_ns % 1000000000ull);
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!f->woken && !f->stop) {
			if (pthread_cond_timedwait(&f->kick, pgdat->lock, &ts))
				break;	/* the periodic pass */
		}
	}
	pthread_mutex_unlock(pgdat->lock);
	return NULL;
}

int rl_flusher_run(struct rl_pgdat *pgdat)
{
	struct rl_flusher *f;
	int ret;

	if (pgdat->flusher)
		return -EBUSY;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	ret = -pthread_cond_init(&f->kick, NULL);
	if (ret) {
		free(f);
		return ret;
	}
	pthread_mutex_lock(pgdat->lock);
	pgdat->flusher = f;
	pthread_mutex_unlock(pgdat->lock);
	ret = -pthread_create(&f->thread, NULL, flusher_thread, pgdat);
	if (ret) {
		fprintf(stderr, "reclaim: flusher thread: %s\n", strerror(-ret));
		pthread_mutex_lock(pgdat->lock);
		pgdat->flusher = NULL;
		pthread_mutex_unlock(pgdat->lock);
		pthread_cond_destroy(&f->kick);
		free(f);
	}
	return ret;
}

void rl_flusher_stop(struct rl_pgdat *pgdat)
{
	struct rl_flusher *f;

	pthread_mutex_lock(pgdat->lock);
	f = pgdat->flusher;
	if (!f) {
		pthread_mutex_unlock(pgdat->lock);
		return;
	}
	f->stop = true;
	pthread_cond_signal(&f->kick);
	pthread_mutex_unlock(pgdat->lock);
	pthread_join(f->thread, NULL);
	pthread_mutex_lock(pgdat->lock);
	pgdat->flusher = NULL;
	pthread_mutex_unlock(pgdat->lock);
	pthread_cond_destroy(&f->kick);
	free(f);
}

void wakeup_flusher_threads(struct rl_pgdat *pgdat, uint64_t nr)
{
	struct rl_flusher *f = pgdat->flusher;

	if (!f)
		return;
	/* Reclaim asks again on every priority: asking twice for the same
	 * pages is not a reason to write more than are dirty. */
	f->nr_requested += nr;
	if (f->nr_requested > pgdat->nr_dirty)
		f->nr_requested = pgdat->nr_dirty;
	f->woken = true;
	pthread_cond_signal(&f->kick);
}
