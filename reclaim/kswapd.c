/* SPDX-License-Identifier: MIT */
/*
 * kswapd: a thread that sleeps until an allocation finds free pages below
 * the low watermark (wakeup_kswapd), then reclaims (balance_pgdat) until
 * they are back at high, so that most allocations never reclaim
 * themselves.
 *
 * Counters: kswapd_low_wmark_hit counts wakeup_kswapd calls that found the
 * pool below low (requests, whether or not the thread was already awake);
 * kswapd_wake the runs of balance_pgdat by the thread; kswapd_high_wmark_hit
 * the balance_pgdat runs that reached high.
 */
#include <errno.h>
#include <stdlib.h>

#include "lib/lockdep.h"
#include "reclaim/vmscan.h"

struct rl_kswapd {
	pthread_t thread;
	pthread_cond_t cond;		/* kswapd_wait; with pgdat->lock */
	bool wake;			/* a wakeup since the last run */
	bool stop;
};

uint64_t balance_pgdat(struct rl_pgdat *pgdat)
{
	struct scan_control sc = {
		.ctx = RL_CTX_KSWAPD,
		.may_writepage = true,
		.may_unmap = true,
		.priority = DEF_PRIORITY,
	};

	rl_lockdep_enter(RL_CTX_RECLAIM);
	while (sc.priority >= 0 && rl_below_wmark(pgdat, pgdat->wmark_high) && !pgdat->stopping) {
		uint64_t reclaimed0 = sc.nr_reclaimed, scanned0 = sc.nr_scanned;
		uint64_t immediate0 = sc.nr_immediate;

		sc.nr_to_reclaim = pgdat->wmark_high - pgdat->nr_free;
		if (sc.nr_to_reclaim < SWAP_CLUSTER_MAX)
			sc.nr_to_reclaim = SWAP_CLUSTER_MAX;
		sc.nr_reclaimed = 0;
		shrink_lruvec(pgdat, &sc);
		sc.nr_reclaimed += reclaimed0;
		/*
		 * The kernel raises the priority (scans harder) only when a
		 * pass made no progress or had to scan its whole target;
		 * otherwise it repeats at the same priority.
		 */
		if (sc.nr_reclaimed == reclaimed0 ||
		    sc.nr_scanned - scanned0 >= sc.nr_to_reclaim)
			sc.priority--;
		/* Pages it marked for reclaim are still under writeback: the
		 * disk is the bottleneck, wait for it (kswapd's congestion_wait). */
		if (sc.nr_immediate > immediate0 && sc.nr_reclaimed == reclaimed0)
			reclaim_throttle(pgdat, 100);
	}
	rl_lockdep_leave(RL_CTX_RECLAIM);
	if (!rl_below_wmark(pgdat, pgdat->wmark_high))
		pgdat->vm.kswapd_high_wmark_hit++;
	return sc.nr_reclaimed;
}

void wakeup_kswapd(struct rl_pgdat *pgdat)
{
	if (!rl_below_wmark(pgdat, pgdat->wmark_low))
		return;
	pgdat->vm.kswapd_low_wmark_hit++;
	if (!pgdat->kswapd)
		return;
	pgdat->kswapd->wake = true;
	pthread_cond_signal(&pgdat->kswapd->cond);
}

static void *kswapd(void *arg)
{
	struct rl_pgdat *pgdat = arg;
	struct rl_kswapd *k = pgdat->kswapd;

	pthread_mutex_lock(pgdat->lock);
	while (!k->stop) {
		if (!k->wake) {
			pthread_cond_wait(&k->cond, pgdat->lock);
			continue;
		}
		k->wake = false;
		pgdat->vm.kswapd_wake++;
		balance_pgdat(pgdat);
		/* Allocators throttled on free pages may go again. */
		pthread_cond_broadcast(pgdat->wait);
	}
	pthread_mutex_unlock(pgdat->lock);
	return NULL;
}

int kswapd_run(struct rl_pgdat *pgdat)
{
	struct rl_kswapd *k = calloc(1, sizeof(*k));
	int ret;

	if (!k)
		return -ENOMEM;
	pthread_cond_init(&k->cond, NULL);
	pthread_mutex_lock(pgdat->lock);
	pgdat->kswapd = k;
	pthread_mutex_unlock(pgdat->lock);
	ret = pthread_create(&k->thread, NULL, kswapd, pgdat);
	if (ret) {
		pthread_mutex_lock(pgdat->lock);
		pgdat->kswapd = NULL;
		pthread_mutex_unlock(pgdat->lock);
		pthread_cond_destroy(&k->cond);
		free(k);
		return -ret;
	}
	return 0;
}

void kswapd_stop(struct rl_pgdat *pgdat)
{
	struct rl_kswapd *k;

	pthread_mutex_lock(pgdat->lock);
	k = pgdat->kswapd;
	if (!k) {
		pthread_mutex_unlock(pgdat->lock);
		return;
	}
	k->stop = true;
	pthread_cond_signal(&k->cond);
	pthread_mutex_unlock(pgdat->lock);
	pthread_join(k->thread, NULL);
	pthread_mutex_lock(pgdat->lock);
	pgdat->kswapd = NULL;
	pthread_mutex_unlock(pgdat->lock);
	pthread_cond_destroy(&k->cond);
	free(k);
}
