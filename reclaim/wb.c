/* SPDX-License-Identifier: MIT */
/*
 * The writeback engine (wb.h): a bounded FIFO of requests and queue_depth
 * workers that carry them out. A worker is the bio's end_io: it completes
 * every page of its request and wakes the waiters, so nobody who did not
 * ask for an IO waits for its completion.
 *
 * Without an engine (cfg.threads off and no rl_wb_start: unit tests that
 * drive reclaim by hand) a request is carried out at once on the queuing
 * thread, with the lock dropped exactly as a worker would drop it, so the
 * page states seen afterwards are deterministic.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/lockdep.h"
#include "reclaim/vmscan.h"
#include "reclaim/wb.h"

struct rl_wb_req {
	struct rl_mapping *m;
	uint64_t first;
	uint32_t n;
	bool batch, pin;
	bool owned;			/* pages is our copy (freed at completion) */
	int ctx;
	struct rl_page **pages;
};

struct rl_wb {
	struct rl_pgdat *pgdat;
	/* Idle workers sleep here (with pgdat->lock), not on pgdat->wait:
	 * that one is broadcast on every page event and would wake them all
	 * for nothing. */
	pthread_cond_t work;
	struct rl_wb_req *ring;
	unsigned cap, head, count;	/* pending requests */
	unsigned busy;			/* taken by a worker, not completed */
	unsigned nthreads;
	pthread_t *threads;
	bool stop;
};

void rl_end_writeback_run(struct rl_pgdat *pgdat, struct rl_mapping *m,
			  struct rl_page *const *pages, uint32_t n, int err, bool pin, int ctx)
{
	for (uint32_t i = 0; i < n; i++)
		rl_end_page_writeback(pgdat, page_to_pfn(pgdat, pages[i]), err);
	if (err) {
		pgdat->vm.wb_errors++;
		pgdat->last_wb_error = err;
	}
	/* After the pages are completed: the iput may be the last reference
	 * and tear the mapping down. */
	if (pin)
		rl_writeback_iput(pgdat, m, ctx);
	pthread_cond_broadcast(pgdat->wait);
}

void rl_writeback_iput(struct rl_pgdat *pgdat, struct rl_mapping *m, int ctx)
{
	/* For a write reclaim asked for it is reclaim's iput, wherever it
	 * runs (the reclaimer or, for kswapd's async writepages, an engine
	 * worker): the lock checker must see it in reclaim context. */
	bool for_reclaim = ctx == RL_CTX_DIRECT || ctx == RL_CTX_KSWAPD;
	bool last;

	m->pins--;
	pthread_mutex_unlock(pgdat->lock);
	if (for_reclaim && pgdat->cfg.iput_delay_ms) {
		struct timespec ts = { .tv_sec = pgdat->cfg.iput_delay_ms / 1000,
				       .tv_nsec = (long)(pgdat->cfg.iput_delay_ms % 1000) * 1000000L };

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	}
	if (for_reclaim)
		rl_lockdep_enter(RL_CTX_RECLAIM);
	last = m->ops->iput(m);
	if (for_reclaim)
		rl_lockdep_leave(RL_CTX_RECLAIM);
	pthread_mutex_lock(pgdat->lock);
	if (last && for_reclaim)
		pgdat->vm.nr_final_iput_reclaim++;
}

/* One request; lock held, dropped around the IO and iput. */
static void run_request(struct rl_pgdat *pgdat, struct rl_wb_req *r)
{
	int err;

	pthread_mutex_unlock(pgdat->lock);
	err = r->m->ops->writepages(r->m, r->first, r->n, (struct rl_page *const *)r->pages,
				    r->batch);
	pthread_mutex_lock(pgdat->lock);
	rl_end_writeback_run(pgdat, r->m, r->pages, r->n, err, r->pin, r->ctx);
	if (r->owned)
		free(r->pages);
	r->pages = NULL;
}

static void *wb_worker(void *arg)
{
	struct rl_wb *wb = arg;
	struct rl_pgdat *pgdat = wb->pgdat;

	pthread_mutex_lock(pgdat->lock);
	for (;;) {
		struct rl_wb_req r;

		while (wb->count == 0 && !wb->stop)
			pthread_cond_wait(&wb->work, pgdat->lock);
		if (wb->count == 0)
			break;	/* stopping and drained */
		r = wb->ring[wb->head];
		wb->head = (wb->head + 1) % wb->cap;
		wb->count--;
		wb->busy++;
		/* A queuer may be waiting for the slot. */
		pthread_cond_broadcast(pgdat->wait);
		run_request(pgdat, &r);
		wb->busy--;
		pthread_cond_broadcast(pgdat->wait);
	}
	pthread_mutex_unlock(pgdat->lock);
	return NULL;
}

int rl_wb_start(struct rl_pgdat *pgdat, unsigned queue_depth)
{
	struct rl_wb *wb;
	int ret;

	if (pgdat->wb)
		return -EBUSY;
	if (queue_depth == 0)
		queue_depth = 8;
	wb = calloc(1, sizeof(*wb));
	if (!wb)
		return -ENOMEM;
	wb->pgdat = pgdat;
	wb->cap = queue_depth * 4;
	wb->ring = calloc(wb->cap, sizeof(*wb->ring));
	wb->threads = calloc(queue_depth, sizeof(*wb->threads));
	if (!wb->ring || !wb->threads) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = -pthread_cond_init(&wb->work, NULL);
	if (ret)
		goto fail;
	pthread_mutex_lock(pgdat->lock);
	pgdat->wb = wb;
	pthread_mutex_unlock(pgdat->lock);
	for (unsigned i = 0; i < queue_depth; i++) {
		ret = -pthread_create(&wb->threads[i], NULL, wb_worker, wb);
		if (ret) {
			fprintf(stderr, "reclaim: writeback worker %u: %s\n", i, strerror(-ret));
			rl_wb_stop(pgdat);
			return ret;
		}
		wb->nthreads++;
	}
	return 0;
fail:
	free(wb->ring);
	free(wb->threads);
	free(wb);
	return ret;
}

void rl_wb_stop(struct rl_pgdat *pgdat)
{
	struct rl_wb *wb;

	pthread_mutex_lock(pgdat->lock);
	wb = pgdat->wb;
	if (!wb) {
		pthread_mutex_unlock(pgdat->lock);
		return;
	}
	wb->stop = true;
	pthread_cond_broadcast(&wb->work);
	pthread_mutex_unlock(pgdat->lock);
	/* Workers leave only when the queue is empty: this drains it. */
	for (unsigned i = 0; i < wb->nthreads; i++)
		pthread_join(wb->threads[i], NULL);
	pthread_mutex_lock(pgdat->lock);
	pgdat->wb = NULL;
	pthread_mutex_unlock(pgdat->lock);
	pthread_cond_destroy(&wb->work);
	free(wb->ring);
	free(wb->threads);
	free(wb);
}

int rl_wb_queue(struct rl_pgdat *pgdat, struct rl_mapping *m, uint64_t first, uint32_t n,
		struct rl_page *const *pages, bool batch, bool pin, int ctx)
{
	struct rl_wb *wb = pgdat->wb;
	struct rl_wb_req r = {
		.m = m, .first = first, .n = n, .batch = batch, .ctx = ctx,
		.pin = pin && m && m->ops && m->ops->iput,
	};

	if (!m || !m->ops || !m->ops->writepages || n == 0 || !pages ||
	    ctx < RL_CTX_DIRECT || ctx > RL_CTX_FLUSHER)
		return -EINVAL;
	r.pages = malloc(n * sizeof(*r.pages));
	if (!r.pages) {
		/* The pages are already under writeback: they must be
		 * written, so write them from here rather than fail. */
		r.pages = (struct rl_page **)pages;
		run_request(pgdat, &r);
		return 0;
	}
	r.owned = true;
	memcpy(r.pages, pages, n * sizeof(*r.pages));

	while (wb && wb->count == wb->cap && !wb->stop) {
		pthread_cond_wait(pgdat->wait, pgdat->lock);
		wb = pgdat->wb;
	}
	if (!wb || wb->stop) {
		run_request(pgdat, &r);
		return 0;
	}
	wb->ring[(wb->head + wb->count) % wb->cap] = r;
	wb->count++;
	pthread_cond_signal(&wb->work);
	return 0;
}

unsigned rl_wb_inflight(const struct rl_pgdat *pgdat)
{
	const struct rl_wb *wb = pgdat->wb;

	return wb ? wb->count + wb->busy : 0;
}
