/* SPDX-License-Identifier: MIT */
/*
 * A region as reclaim sees it: the rl_mapping_ops of reclaim/page.h on the
 * pager's page tables. This is the pager's rmap and page cache in one: a
 * resident page has exactly one pte (fork gives children private copies),
 * so "unmap from every user" is one punch of the memfd page.
 *
 * Called with p->lock held except writepages, igrab and iput.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#include "pager/fault.h"
#include "pager/pager_int.h"
#include "reclaim/pgdat.h"

#ifndef UFFDIO_WRITEPROTECT_MODE_WP
#define UFFDIO_WRITEPROTECT_MODE_WP	((__u64)1 << 0)
#endif

static struct rl_pte *page_pte(struct rl_page *page, struct rl_region **rp)
{
	struct rl_region *r = rl_mapping_region(page->mapping);

	*rp = r;
	return rl_pte_lookup(r, page->index, false);
}

static bool map_trylock_page(struct rl_page *page)
{
	struct rl_region *r;
	struct rl_pte *pte = page_pte(page, &r);

	if (pte->flags & RL_PTE_BUSY)
		return false;
	pte->flags |= RL_PTE_BUSY;
	return true;
}

static void map_unlock_page(struct rl_page *page)
{
	struct rl_region *r;
	struct rl_pte *pte = page_pte(page, &r);

	rl_pte_unbusy(r->pager, pte);
}

static int map_page_referenced(struct rl_page *page)
{
	struct rl_region *r;
	struct rl_pte *pte = page_pte(page, &r);

	if (!(pte->flags & RL_PTE_REFERENCED))
		return 0;
	pte->flags &= ~RL_PTE_REFERENCED;
	return 1;
}

static void *map_page_address(struct rl_page *page)
{
	struct rl_region *r = rl_mapping_region(page->mapping);

	return r->map + (page->index << RL_PAGE_SHIFT);
}

static struct rl_page *map_find_page(struct rl_mapping *m, uint64_t index)
{
	struct rl_region *r = rl_mapping_region(m);
	struct rl_pte *pte;

	if (index >= r->npages || r->deleted)
		return NULL;
	pte = rl_pte_lookup(r, index, false);
	if (!pte || !(pte->flags & RL_PTE_RESIDENT) || pte->frame == RL_NO_FRAME)
		return NULL;
	return pfn_to_page(&r->pager->pgdat, pte->frame);
}

static int map_write_protect(struct rl_page *page)
{
	struct rl_region *r = rl_mapping_region(page->mapping);
	struct rl_pager *p = r->pager;
	struct uffdio_writeprotect wp = {
		.range = { .start = r->start + (page->index << RL_PAGE_SHIFT),
			   .len = RL_PAGE_SIZE },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};
	int uffd = r->client->uffd, err = 0;

	pthread_mutex_unlock(&p->lock);
	/* ENOENT/ESRCH: the client's mapping or mm is gone; nobody can write
	 * the page any more, so writing it back is still exact. */
	if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) && errno != ENOENT && errno != ESRCH)
		err = -errno;
	pthread_mutex_lock(&p->lock);
	return err;
}

/*
 * The pages are PG_writeback and write-protected in the client, so their
 * contents in the daemon's mapping are stable until end_page_writeback.
 */
static int map_writepages(struct rl_mapping *m, uint64_t first, uint32_t n,
			  struct rl_page *const *pages, bool batch)
{
	struct rl_region *r = rl_mapping_region(m);
	struct rl_pager *p = r->pager;
	const void **srcs = malloc(n * sizeof(*srcs));
	uint32_t *csums = p->cfg.verify ? malloc(n * sizeof(*csums)) : NULL;
	int err;

	if (!srcs || (p->cfg.verify && !csums)) {
		free(srcs);
		free(csums);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		srcs[i] = r->map + ((first + i) << RL_PAGE_SHIFT);
		if (csums)
			csums[i] = rl_page_csum(srcs[i]);
	}
	if (n == 1 && !batch)
		err = r->be->ops->writepage(r->backing, rl_backing_pgoff(r, first), srcs[0]);
	else
		err = r->be->ops->writepages(r->backing, rl_backing_pgoff(r, first), n,
					     (const void *const *)srcs, batch);
	if (!err && r->kind == RL_REGION_FILE && p->cfg.file_written)
		p->cfg.file_written(p->cfg.file_written_arg, r->file_ino,
				    rl_backing_pgoff(r, first) << RL_PAGE_SHIFT,
				    (uint64_t)n << RL_PAGE_SHIFT);
	if (!err) {
		pthread_mutex_lock(&p->lock);
		for (uint32_t i = 0; i < n; i++) {
			struct rl_pte *pte = rl_pte_lookup(r, first + i, false);

			pte->flags |= RL_PTE_BACKED;
			if (csums) {
				pte->csum = csums[i];
				pte->flags |= RL_PTE_CSUM;
			} else {
				pte->flags &= ~RL_PTE_CSUM;
			}
		}
		RL_COUNT(p, r->client, pages_written, n);
		RL_COUNT(p, r->client, bytes_written, (uint64_t)n * RL_PAGE_SIZE);
		pthread_mutex_unlock(&p->lock);
	}
	free(srcs);
	free(csums);
	return err;
}

static int map_remove_mapping(struct rl_page *page, uint32_t shadow)
{
	struct rl_region *r;
	struct rl_pte *pte = page_pte(page, &r);
	struct rl_pager *p = r->pager;
	uint64_t index = page->index;
	int err;

	if (PageDirty(page) || PageWriteback(page))
		return -EAGAIN;
	/* The page is clean, so write-protected in the client: a write now
	 * faults and waits for our lock (BUSY); nothing reaches the memfd page
	 * between here and the punch. */
	pthread_mutex_unlock(&p->lock);
	err = rl_region_punch(r, index);
	pthread_mutex_lock(&p->lock);
	if (err)
		return err;
	pte->frame = RL_NO_FRAME;
	pte->flags &= ~(RL_PTE_RESIDENT | RL_PTE_REFERENCED | RL_PTE_BUSY);
	pte->flags |= RL_PTE_EVICTED;
	pte->shadow = shadow;
	r->nr_resident--;
	r->mapping.nrpages--;
	rl_account_resident(p, r->client, -1);
	RL_COUNT(p, r->client, evictions, 1);
	pthread_cond_broadcast(&p->page_wait);
	return 0;
}

static void map_igrab(struct rl_mapping *m)
{
	__atomic_add_fetch(&rl_mapping_region(m)->pins, 1, __ATOMIC_ACQ_REL);
}

/*
 * The last pin of a region deleted meanwhile (its file unmapped, maybe
 * unlinked) releases the backing here, in the caller's context: with the
 * writepages policy that is reclaim (kswapd's writeback or a fault thread),
 * and releasing a FILE region's inode can be deepfs's final iput: seed
 * 003's hazard, made real on purpose.
 */
static bool map_iput(struct rl_mapping *m)
{
	struct rl_region *r = rl_mapping_region(m);
	struct rl_pager *p = r->pager;
	bool last;

	pthread_mutex_lock(&p->lock);
	last = __atomic_sub_fetch(&r->pins, 1, __ATOMIC_ACQ_REL) == 0 && r->deleted;
	pthread_mutex_unlock(&p->lock);
	if (last)
		rl_region_free(r);
	return last;
}

static const struct rl_mapping_ops rl_region_mapping_ops = {
	.trylock_page = map_trylock_page,
	.unlock_page = map_unlock_page,
	.page_referenced = map_page_referenced,
	.page_address = map_page_address,
	.find_page = map_find_page,
	.write_protect = map_write_protect,
	.writepages = map_writepages,
	.remove_mapping = map_remove_mapping,
	.igrab = map_igrab,
	.iput = map_iput,
};

void rl_region_mapping_init(struct rl_pager *p, struct rl_region *r)
{
	r->pager = p;
	r->mapping = (struct rl_mapping){
		.ops = &rl_region_mapping_ops,
		.id = r->id,
		.swapbacked = r->kind != RL_REGION_FILE,
	};
}
