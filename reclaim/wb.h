/* SPDX-License-Identifier: MIT */
/*
 * The writeback engine: asynchronous writeback requests (one run of
 * index-contiguous pages of one mapping each) carried out off the fault
 * path by queue_depth worker threads, each calling the mapping's
 * ->writepages (which sends the IO through io_uring: deepfs's block layer,
 * or the host-file backend's own ring) and then completing every page
 * (rl_end_page_writeback) and waking waiters. The kernel's equivalent is
 * the bio submitted by ->writepage and its end_io; the workers stand in for
 * the interrupt-time completion, so a faulting thread never waits for a
 * completion it did not ask for.
 */
#ifndef RECLAIMLAB_RECLAIM_WB_H
#define RECLAIMLAB_RECLAIM_WB_H

#include <stdbool.h>
#include <stdint.h>

#include "reclaim/pgdat.h"

/* Without the lock. */
int rl_wb_start(struct rl_pgdat *pgdat, unsigned queue_depth);
/* Waits for every queued request to complete, then stops the workers. */
void rl_wb_stop(struct rl_pgdat *pgdat);

/*
 * Queues one request (lock held; never blocks for IO, may wait for a free
 * slot when queue_depth * 4 requests are pending, lock dropped). The pages
 * are PG_writeback, unlocked, pages[i] at first+i; the engine copies the
 * array. batch as in rl_mapping_ops.writepages. If m->ops->igrab, pin
 * says to iput the mapping after completion (policy writepages).
 * ctx says whose write it is (for counters).
 */
int rl_wb_queue(struct rl_pgdat *pgdat, struct rl_mapping *m, uint64_t first, uint32_t n,
		struct rl_page *const *pages, bool batch, bool pin, int ctx);

/*
 * The completion of one written run, the same whether the writer waited
 * for it or an engine worker did (lock held, dropped around iput): every
 * page's end_page_writeback (err redirties), the error counted, the pin
 * dropped with an iput that the lock checker sees in reclaim context when
 * reclaim (direct or kswapd) asked for the write, and waiters woken.
 */
void rl_end_writeback_run(struct rl_pgdat *pgdat, struct rl_mapping *m,
			  struct rl_page *const *pages, uint32_t n, int err, bool pin, int ctx);
/* Drop a writeback's pin on m (lock held, dropped around the iput); an
 * iput for reclaim runs in RL_CTX_RECLAIM and, if it was the last,
 * counts nr_final_iput_reclaim. */
void rl_writeback_iput(struct rl_pgdat *pgdat, struct rl_mapping *m, int ctx);

/* Requests queued or in flight (lock held). */
unsigned rl_wb_inflight(const struct rl_pgdat *pgdat);

#endif
