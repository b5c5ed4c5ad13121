/* SPDX-License-Identifier: MIT */
/*
 * handle_mm_fault for userfaultfd messages: a MISSING fault is
 * do_anonymous_page (zero fill) or do_swap_page / filemap_fault (read-in
 * through a_ops), answered with UFFDIO_COPY in write-protect mode so that
 * the first write shows up as a WP fault; a WP fault is do_wp_page: the page
 * becomes dirty and writable.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>

#include "pager/fault.h"
#include "pager/pager_int.h"
#include "reclaim/vmscan.h"
#include "reclaim/writeback.h"

#ifndef UFFDIO_COPY_MODE_WP
#define UFFDIO_COPY_MODE_WP		((__u64)1 << 1)
#endif
#ifndef UFFD_PAGEFAULT_FLAG_WP
#define UFFD_PAGEFAULT_FLAG_WP		(1 << 1)
#endif
#ifndef UFFDIO_WRITEPROTECT_MODE_WP
#define UFFDIO_WRITEPROTECT_MODE_WP	((__u64)1 << 0)
#endif

/* A bounce buffer per fault thread: UFFDIO_COPY copies from it. */
static _Thread_local unsigned char fill_buf[RL_PAGE_SIZE] __attribute__((aligned(RL_PAGE_SIZE)));
static const unsigned char zero_page[RL_PAGE_SIZE] __attribute__((aligned(RL_PAGE_SIZE)));

static int uffd_wake(int uffd, uint64_t addr)
{
	struct uffdio_range range = { .start = addr, .len = RL_PAGE_SIZE };

	return ioctl(uffd, UFFDIO_WAKE, &range) ? -errno : 0;
}

/* The client is gone or the range unmapped: nothing left to serve. */
static bool uffd_target_gone(int err)
{
	return err == -ENOENT || err == -ESRCH;
}

static int uffd_copy(int uffd, uint64_t addr, const void *src)
{
	struct uffdio_copy copy = {
		.dst = addr, .src = (uintptr_t)src, .len = RL_PAGE_SIZE,
		.mode = UFFDIO_COPY_MODE_WP,
	};

	/* EAGAIN: the mm was changing under the copy; nothing was copied. */
	for (int tries = 0; tries < 100; tries++) {
		copy.copy = 0;
		if (!ioctl(uffd, UFFDIO_COPY, &copy))
			return 0;
		if (errno != EAGAIN)
			return -errno;
	}
	return -EAGAIN;
}

/* Records a whole fault's latency (lock held). */
static void fault_done(struct rl_pager *p, uint64_t t0)
{
	rl_hist_add(&p->pgdat.lat.fault, rl_now_ns() - t0);
}

/*
 * do_wp_page: the client writes to a clean resident page: it becomes dirty
 * (set_page_dirty, with the backing store's ->page_mkwrite reservation
 * first) and writable, and the writer is throttled by balance_dirty_pages.
 * A page under writeback is stable: the write waits for the IO, then
 * retries.
 */
static void do_wp_page(struct rl_pager *p, struct rl_client *cl, struct rl_region *r,
		       uint64_t index, struct rl_pte *pte, uint64_t addr, uint64_t t0)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = addr, .len = RL_PAGE_SIZE }, .mode = 0,
	};
	struct rl_page *page;
	uint32_t pfn;
	int err = 0;

	if (!(pte->flags & RL_PTE_RESIDENT)) {
		/* Evicted while the fault was queued: let it refault as MISSING. */
		pthread_mutex_unlock(&p->lock);
		uffd_wake(cl->uffd, addr);
		return;
	}
	pfn = pte->frame;
	page = pfn_to_page(&p->pgdat, pfn);
	if (PageWriteback(page)) {
		pte->flags |= RL_PTE_REFERENCED;
		rl_wait_on_page_writeback(&p->pgdat, pfn);
		pthread_mutex_unlock(&p->lock);
		uffd_wake(cl->uffd, addr);	/* the write retries, and faults again */
		return;
	}
	/* BUSY across the ioctl: a pageout that wrote the page and punched it
	 * after we made it writable would lose the client's next write.
	 * The accessed bit (docs/reclaim.md): a write to a page the backing
	 * store already holds is a use after writeback cleaned it; the first
	 * write right after a fill is the same access as the fill. */
	pte->flags |= RL_PTE_BUSY;
	if (pte->flags & RL_PTE_BACKED)
		pte->flags |= RL_PTE_REFERENCED;
	RL_COUNT(p, cl, faults_wp, 1);
	if (!PageDirty(page) && r->be->ops->page_mkwrite) {
		pthread_mutex_unlock(&p->lock);
		err = r->be->ops->page_mkwrite(r->backing, rl_backing_pgoff(r, index));
		pthread_mutex_lock(&p->lock);
		if (err) {
			rl_pte_unbusy(p, pte);
			pthread_mutex_unlock(&p->lock);
			rl_client_kill(p, cl, false, "cannot reserve backing space for page %lu of "
				       "region %u before it is written: %s", (unsigned long)index,
				       r->id, err == -ENOSPC ? "the backing store is full (ENOSPC)"
				       : strerror(-err));
			return;
		}
	}
	rl_set_page_dirty(&p->pgdat, pfn);
	pthread_mutex_unlock(&p->lock);
	if (ioctl(cl->uffd, UFFDIO_WRITEPROTECT, &wp))
		err = -errno;
	pthread_mutex_lock(&p->lock);
	rl_pte_unbusy(p, pte);
	if (!err) {
		fault_done(p, t0);
		/* balance_dirty_pages_ratelimited: writers of file pages only */
		if (r->kind == RL_REGION_FILE)
			balance_dirty_pages(&p->pgdat);
	}
	pthread_mutex_unlock(&p->lock);
	if (err && !uffd_target_gone(err))
		rl_client_kill(p, cl, false, "cannot make page %lu of region %u writable: %s",
			       (unsigned long)index, r->id, strerror(-err));
}

/* do_anonymous_page / do_swap_page / filemap_fault: pte is BUSY, lock held. */
static void do_missing_page(struct rl_pager *p, struct rl_client *cl, struct rl_region *r,
			    uint64_t index, struct rl_pte *pte, uint64_t addr, uint64_t t0)
{
	uint16_t flags = pte->flags;
	uint32_t csum = pte->csum, frame;
	bool read = (flags & RL_PTE_BACKED) || r->kind == RL_REGION_FILE;
	bool check = read && p->cfg.verify && (flags & RL_PTE_BACKED) && (flags & RL_PTE_CSUM);
	const void *src = zero_page;
	bool fault_lock = read && r->be->ops->fault_begin;
	int err;

	if (fault_lock) {
		/* filemap_fault: the backing's lock before the frame, held
		 * until the page is read; the pte stays BUSY meanwhile. */
		pthread_mutex_unlock(&p->lock);
		r->be->ops->fault_begin(r->backing);
		pthread_mutex_lock(&p->lock);
	}
	err = rl_alloc_page(&p->pgdat, &r->mapping, index, &frame);
	if (err) {
		rl_pte_unbusy(p, pte);
		pthread_mutex_unlock(&p->lock);
		if (fault_lock)
			r->be->ops->fault_end(r->backing);
		if (err == -ENOSPC)
			rl_client_kill(p, cl, false,
				       "the backing store is full (ENOSPC): cannot page out");
		else
			rl_client_kill(p, cl, false, "no frame can be freed for page %lu of region %u: %s",
				       (unsigned long)index, r->id, strerror(-err));
		return;
	}
	pthread_mutex_unlock(&p->lock);

	if (read) {
		err = r->be->ops->readpage(r->backing, rl_backing_pgoff(r, index), fill_buf);
		if (fault_lock)
			r->be->ops->fault_end(r->backing);
		src = fill_buf;
		if (err) {
			pthread_mutex_lock(&p->lock);
			rl_free_page(&p->pgdat, frame);
			rl_pte_unbusy(p, pte);
			pthread_mutex_unlock(&p->lock);
			rl_client_kill(p, cl, false,
				       "cannot read page %lu of region %u from the backing store: %s",
				       (unsigned long)index, r->id, strerror(-err));
			return;
		}
		if (check) {
			bool bad = rl_page_csum(fill_buf) != csum;

			pthread_mutex_lock(&p->lock);
			RL_COUNT(p, cl, verify_checked, 1);
			if (bad) {
				RL_COUNT(p, cl, verify_failed, 1);
				rl_free_page(&p->pgdat, frame);
				rl_pte_unbusy(p, pte);
				pthread_mutex_unlock(&p->lock);
				rl_client_kill(p, cl, false, "page %lu of region %u failed --verify",
					       (unsigned long)index, r->id);
				return;
			}
			pthread_mutex_unlock(&p->lock);
		}
	}

	err = uffd_copy(cl->uffd, addr, src);

	pthread_mutex_lock(&p->lock);
	if (err) {
		rl_free_page(&p->pgdat, frame);
		rl_pte_unbusy(p, pte);
		pthread_mutex_unlock(&p->lock);
		if (uffd_target_gone(err))
			return;
		if (err == -EEXIST)
			rl_client_kill(p, cl, false,
				       "page %lu of region %u is present without a frame (a pager bug)",
				       (unsigned long)index, r->id);
		else
			rl_client_kill(p, cl, false, "cannot map page %lu of region %u: %s",
				       (unsigned long)index, r->id, strerror(-err));
		return;
	}
	pte->frame = frame;
	/* Not young: the fill is the first access (lru_cache_add counts it);
	 * a refault is judged by its refault distance (workingset). */
	pte->flags |= RL_PTE_RESIDENT;
	r->nr_resident++;
	RL_COUNT(p, cl, faults_missing, 1);
	if (read) {
		RL_COUNT(p, cl, pages_read, 1);
		RL_COUNT(p, cl, bytes_read, RL_PAGE_SIZE);
	} else {
		RL_COUNT(p, cl, zero_fills, 1);
	}
	if (flags & RL_PTE_EVICTED)
		RL_COUNT(p, cl, refaults, 1);
	rl_account_resident(p, cl, 1);
	r->mapping.nrpages++;
	/* workingset_refault decides between the inactive and active list */
	rl_lru_cache_add(&p->pgdat, frame, pte->shadow);
	pte->shadow = 0;
	rl_pte_unbusy(p, pte);
	fault_done(p, t0);
	pthread_mutex_unlock(&p->lock);
}

void rl_handle_uffd_msg(struct rl_pager *p, struct rl_client *cl, const struct uffd_msg *msg)
{
	uint64_t addr = msg->arg.pagefault.address & ~(uint64_t)(RL_PAGE_SIZE - 1);
	bool wp = msg->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP;
	bool waited = false;
	uint64_t t0 = rl_now_ns();
	struct rl_region *r;
	struct rl_pte *pte;
	uint64_t index;

	if (msg->event != UFFD_EVENT_PAGEFAULT)
		return;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		if (cl->dead) {
			pthread_mutex_unlock(&p->lock);
			return;
		}
		r = rl_region_map_find(&cl->regions, addr);
		if (!r) {
			pthread_mutex_unlock(&p->lock);
			if (waited) {
				/* The region went while we waited (REGION_DEL after munmap). */
				uffd_wake(cl->uffd, addr);
				return;
			}
			rl_client_kill(p, cl, false, "fault at 0x%lx outside every pager region",
				       (unsigned long)addr);
			return;
		}
		index = (addr - r->start) >> RL_PAGE_SHIFT;
		pte = rl_pte_lookup(r, index, true);
		if (!pte) {
			pthread_mutex_unlock(&p->lock);
			rl_client_kill(p, cl, false,
				       "out of memory for the page table of region %u", r->id);
			return;
		}
		if (!(pte->flags & RL_PTE_BUSY))
			break;
		/* Someone fills, writes back or evicts it (PG_locked): wait. */
		pthread_cond_wait(&p->page_wait, &p->lock);
		waited = true;
	}

	if (wp) {
		do_wp_page(p, cl, r, index, pte, addr, t0);
		return;
	}
	if (pte->flags & RL_PTE_RESIDENT) {
		/* Raced with another thread's fault on the same page. */
		pthread_mutex_unlock(&p->lock);
		uffd_wake(cl->uffd, addr);
		return;
	}
	pte->flags |= RL_PTE_BUSY;
	do_missing_page(p, cl, r, index, pte, addr, t0);
}
