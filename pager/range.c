/* SPDX-License-Identifier: MIT */
/*
 * The range operations the protocol asks for (DISCARD, SYNC, REGION_DEL,
 * SNAPSHOT, teardown), on pages reclaim (reclaim/, through pager/mapping.c)
 * may be scanning, writing back or evicting at the same time.
 *
 * The invariant everything here keeps: a page is in the memfd only while
 * its pte is RESIDENT (or BUSY being filled). Eviction punches the page out
 * of the memfd, so the client's next touch is a MISSING fault; the daemon
 * reads r->map only for RESIDENT pages it holds BUSY or under writeback.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <isa-l/crc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pager/fault.h"
#include "pager/pager_int.h"
#include "reclaim/vmscan.h"

#ifndef UFFDIO_WRITEPROTECT_MODE_WP
#define UFFDIO_WRITEPROTECT_MODE_WP	((__u64)1 << 0)
#endif

/* Pages a range operation holds BUSY at once. */
#define RL_BATCH	256
/* In struct grab's flags only: the resident page was PG_dirty when grabbed. */
#define GRAB_DIRTY	(1u << 15)

static _Thread_local unsigned char io_buf[RL_PAGE_SIZE] __attribute__((aligned(RL_PAGE_SIZE)));

uint32_t rl_page_csum(const void *page)
{
	/* crc32_iscsi neither pre- nor post-inverts: standard CRC32C */
	return ~crc32_iscsi((unsigned char *)page, RL_PAGE_SIZE, ~0u);
}

void rl_account_resident(struct rl_pager *p, struct rl_client *cl, int64_t delta)
{
	p->total.resident += (uint64_t)delta;
	if (p->total.resident > p->total.peak_resident)
		p->total.peak_resident = p->total.resident;
	if (cl && cl->sess) {
		struct rl_counters *c = &cl->sess->c;

		c->resident += (uint64_t)delta;
		if (c->resident > c->peak_resident)
			c->peak_resident = c->resident;
	}
}

int rl_region_punch(struct rl_region *r, uint64_t index)
{
	if (fallocate(r->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(index << RL_PAGE_SHIFT), RL_PAGE_SIZE))
		return -errno;
	return 0;
}

/*
 * Frees the frame of a resident page already punched out, or being dropped
 * with its region (lock held, page BUSY, not under writeback).
 */
static void drop_frame(struct rl_pager *p, struct rl_region *r, struct rl_pte *pte)
{
	rl_page_cache_delete(&p->pgdat, pte->frame);
	rl_free_page(&p->pgdat, pte->frame);
	pte->frame = RL_NO_FRAME;
	pte->flags &= ~(RL_PTE_RESIDENT | RL_PTE_REFERENCED);
	r->nr_resident--;
	r->mapping.nrpages--;
	rl_account_resident(p, r->client, -1);
}

static struct rl_page *pte_page(struct rl_pager *p, const struct rl_pte *pte)
{
	return (pte->flags & RL_PTE_RESIDENT) ? pfn_to_page(&p->pgdat, pte->frame) : NULL;
}

/* ---- range operations ---- */

/* A batch of pages of one region a range operation holds BUSY. */
struct grab {
	uint32_t id;
	uint64_t pos, end;	/* next page to look at, end of the range */
	uint16_t mask;		/* pages with any of these flags ... */
	bool all;		/* ... or every page, even never touched ones */
	size_t n;
	uint64_t idx[RL_BATCH];
	uint16_t flags[RL_BATCH];	/* as grabbed, BUSY excluded */
	int err[RL_BATCH];
	uint32_t csum[RL_BATCH];
};

/*
 * Marks up to RL_BATCH matching pages of [g->pos, g->end) BUSY (lock held).
 * Waits for a busy page only while it holds none, so it never waits
 * holding pages someone else may be waiting for. Returns the region (it is
 * looked up again by id after a wait) with g->n pages, g->n == 0 at the end
 * of the range; NULL with *err when the region went or a pte cannot be made.
 */
static struct rl_region *grab_batch(struct rl_pager *p, struct rl_client *cl,
				    struct rl_region *r, struct grab *g, int *err)
{
	g->n = 0;
	while (g->pos < g->end && g->n < RL_BATCH) {
		uint64_t i = g->pos;
		struct rl_pte *pte = rl_pte_lookup(r, i, g->all);

		if (!pte) {
			if (g->all) {
				*err = -ENOMEM;
				goto fail;
			}
			g->pos = (i | (RL_PTE_CHUNK - 1)) + 1;	/* untouched chunk */
			continue;
		}
		struct rl_page *page = pte_page(p, pte);
		uint16_t flags = pte->flags | (page && PageDirty(page) ? GRAB_DIRTY : 0);

		if (!g->all && !(flags & g->mask)) {
			g->pos++;
			continue;
		}
		/* under writeback: its IO reads the page, and its frame stays */
		if ((pte->flags & RL_PTE_BUSY) || (page && PageWriteback(page))) {
			if (g->n)
				break;
			pthread_cond_wait(&p->page_wait, &p->lock);
			r = rl_region_map_find_id(&cl->regions, g->id);
			if (!r) {
				*err = -ENOENT;
				return NULL;
			}
			continue;
		}
		g->idx[g->n] = i;
		g->flags[g->n] = flags;
		g->csum[g->n] = pte->csum;
		g->err[g->n] = 0;
		g->n++;
		pte->flags |= RL_PTE_BUSY;
		g->pos++;
	}
	return r;
fail:
	for (size_t k = 0; k < g->n; k++)
		rl_pte_unbusy(p, rl_pte_lookup(r, g->idx[k], false));
	g->n = 0;
	return NULL;
}

static struct rl_pte *grabbed_pte(struct rl_region *r, const struct grab *g, size_t k)
{
	return rl_pte_lookup(r, g->idx[k], false);
}

/* Looks up region id of cl and checks [first, first+n) (lock held). */
static int range_begin(struct rl_pager *p, struct rl_client *cl, uint32_t id, uint64_t first,
		       uint64_t n, struct rl_region **rp, struct grab *g)
{
	struct rl_region *r = rl_region_map_find_id(&cl->regions, id);

	if (!r)
		return -ENOENT;
	if (!n || first >= r->npages || n > r->npages - first)
		return -EINVAL;
	memset(g, 0, offsetof(struct grab, idx));
	g->id = id;
	g->pos = first;
	g->end = first + n;
	*rp = r;
	return 0;
}

/*
 * Writes the dirty pages of a batch back, lock held on entry and exit (the
 * pages are BUSY: reclaim and the flusher leave them alone). Each run of
 * index-contiguous dirty pages is write-protected and sent as one
 * writepages request (batched or not as --wb says). A page whose write
 * failed is dirty again and has g->err set.
 */
static void sync_batch(struct rl_pager *p, struct rl_region *r, struct grab *g)
{
	struct rl_pgdat *pgdat = &p->pgdat;
	bool batch = pgdat->cfg.wb == RL_WB_BATCH;

	for (size_t k = 0; k < g->n;) {
		size_t e = k;

		if (!(g->flags[k] & GRAB_DIRTY)) {
			k++;
			continue;
		}
		while (e + 1 < g->n && (g->flags[e + 1] & GRAB_DIRTY) &&
		       g->idx[e + 1] == g->idx[e] + 1)
			e++;
		uint32_t n = (uint32_t)(e - k + 1);
		struct rl_page *pages[RL_BATCH];
		int err = 0;

		for (size_t j = k; j <= e; j++) {
			pages[j - k] = pte_page(p, grabbed_pte(r, g, j));
			rl_clear_page_dirty_for_io(pgdat, page_to_pfn(pgdat, pages[j - k]));
		}
		for (size_t j = k; j <= e && !err; j++)
			err = r->mapping.ops->write_protect(pages[j - k]);
		if (!err) {
			pthread_mutex_unlock(&p->lock);
			err = r->mapping.ops->writepages(&r->mapping, g->idx[k], n, pages, batch);
			pthread_mutex_lock(&p->lock);
		}
		pgdat->vm.nr_written_sync += err ? 0 : n;
		for (size_t j = k; j <= e; j++) {
			g->err[j] = err;
			if (err)
				rl_set_page_dirty(pgdat, page_to_pfn(pgdat, pages[j - k]));
		}
		k = e + 1;
	}
}

int64_t rl_region_sync(struct rl_pager *p, struct rl_client *cl, uint32_t id,
		       uint64_t first, uint64_t n)
{
	struct rl_region *r;
	struct grab *g = malloc(sizeof(*g));
	int64_t done = 0;
	int err = 0;

	if (!g)
		return -ENOMEM;
	pthread_mutex_lock(&p->lock);
	err = range_begin(p, cl, id, first, n, &r, g);
	g->mask = GRAB_DIRTY;
	while (!err) {
		r = grab_batch(p, cl, r, g, &err);
		if (!r || !g->n)
			break;
		sync_batch(p, r, g);
		for (size_t k = 0; k < g->n; k++) {
			if (g->err[k])
				err = err ? err : g->err[k];
			else
				done++;
			rl_pte_unbusy(p, grabbed_pte(r, g, k));
		}
	}
	pthread_mutex_unlock(&p->lock);
	free(g);
	return err ? err : done;
}

/*
 * DISCARD of one batch, lock held on entry and exit. Anonymous pages:
 * punched, frame freed, forgotten by the backing store, state 0 (zero).
 * FILE pages: written back if dirty, then evicted. g->err[k] says which
 * pages were not acted on; a failed backing-store discard only leaks space
 * (the page reads as zero all the same) and is returned as *berr.
 */
static void discard_batch(struct rl_pager *p, struct rl_region *r, struct grab *g, int *berr)
{
	bool file = r->kind == RL_REGION_FILE;

	if (file)
		sync_batch(p, r, g);
	pthread_mutex_unlock(&p->lock);
	for (size_t k = 0; k < g->n; k++)
		if (!g->err[k] && (g->flags[k] & RL_PTE_RESIDENT))
			g->err[k] = rl_region_punch(r, g->idx[k]);
	/* the backing store forgets runs of consecutive backed pages */
	for (size_t k = 0; !file && k < g->n;) {
		size_t e = k;
		int err;

		if (g->err[k] || !(g->flags[k] & RL_PTE_BACKED)) {
			k++;
			continue;
		}
		while (e + 1 < g->n && g->idx[e + 1] == g->idx[e] + 1 && !g->err[e + 1] &&
		       (g->flags[e + 1] & RL_PTE_BACKED))
			e++;
		err = r->be->ops->discard(r->backing, g->idx[k], g->idx[e] - g->idx[k] + 1);
		if (err && !*berr)
			*berr = err;
		k = e + 1;
	}
	pthread_mutex_lock(&p->lock);
	for (size_t k = 0; k < g->n; k++) {
		struct rl_pte *pte = grabbed_pte(r, g, k);

		if (!g->err[k]) {
			if (pte->flags & RL_PTE_RESIDENT)
				drop_frame(p, r, pte);
			if (file) {
				pte->flags |= RL_PTE_EVICTED;
			} else {
				pte->flags = RL_PTE_BUSY;
				pte->csum = 0;
				pte->shadow = 0;
			}
			RL_COUNT(p, r->client, discards, 1);
		}
		rl_pte_unbusy(p, pte);
	}
}

int64_t rl_region_discard(struct rl_pager *p, struct rl_client *cl, uint32_t id,
			  uint64_t first, uint64_t n)
{
	struct rl_region *r;
	struct grab *g = malloc(sizeof(*g));
	int64_t done = 0;
	int err = 0, berr = 0;

	if (!g)
		return -ENOMEM;
	pthread_mutex_lock(&p->lock);
	err = range_begin(p, cl, id, first, n, &r, g);
	g->mask = (uint16_t)~RL_PTE_BUSY;
	while (!err) {
		r = grab_batch(p, cl, r, g, &err);
		if (!r || !g->n)
			break;
		discard_batch(p, r, g, &berr);
		for (size_t k = 0; k < g->n; k++) {
			if (g->err[k])
				err = err ? err : g->err[k];
			else
				done++;
		}
	}
	pthread_mutex_unlock(&p->lock);
	free(g);
	if (!err)
		err = berr;
	return err ? err : done;
}

static int pwrite_page(int fd, const void *src, uint64_t index)
{
	const char *s = src;
	size_t off = 0;

	while (off < RL_PAGE_SIZE) {
		ssize_t w = pwrite(fd, s + off, RL_PAGE_SIZE - off,
				   (off_t)((index << RL_PAGE_SHIFT) + off));

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		off += (size_t)w;
	}
	return 0;
}

int64_t rl_region_snapshot(struct rl_pager *p, struct rl_client *cl, uint32_t id, int dstfd)
{
	struct rl_region *r;
	struct grab *g = malloc(sizeof(*g));
	int64_t done = 0;
	int err;

	if (!g)
		return -ENOMEM;
	pthread_mutex_lock(&p->lock);
	r = rl_region_map_find_id(&cl->regions, id);
	err = r ? range_begin(p, cl, id, 0, r->npages, &r, g) : -ENOENT;
	/* A page with neither is a zero page: the new memfd's hole. A FILE
	 * region's untouched pages hold the file's data. */
	g->mask = RL_PTE_RESIDENT | RL_PTE_BACKED;
	g->all = r && r->kind == RL_REGION_FILE;
	while (!err) {
		uint64_t bytes = 0, bad = 0;

		r = grab_batch(p, cl, r, g, &err);
		if (!r || !g->n)
			break;
		pthread_mutex_unlock(&p->lock);
		for (size_t k = 0; k < g->n && !err; k++) {
			uint64_t i = g->idx[k];
			const void *src = r->map + (i << RL_PAGE_SHIFT);

			if (!(g->flags[k] & RL_PTE_RESIDENT)) {
				err = r->be->ops->readpage(r->backing, rl_backing_pgoff(r, i), io_buf);
				src = io_buf;
				bytes += RL_PAGE_SIZE;
				/* a child must not start from a corrupt page either */
				if (!err && p->cfg.verify && (g->flags[k] & RL_PTE_CSUM) &&
				    (g->flags[k] & RL_PTE_BACKED) && rl_page_csum(io_buf) != g->csum[k]) {
					err = -EIO;
					bad++;
				}
			}
			if (!err)
				err = pwrite_page(dstfd, src, i);
			if (!err)
				done++;
		}
		pthread_mutex_lock(&p->lock);
		RL_COUNT(p, cl, bytes_read, bytes);
		RL_COUNT(p, cl, verify_failed, bad);
		for (size_t k = 0; k < g->n; k++)
			rl_pte_unbusy(p, grabbed_pte(r, g, k));
	}
	pthread_mutex_unlock(&p->lock);
	free(g);
	return err ? err : done;
}

static int pte_busy_fn(struct rl_region *r, uint64_t index, struct rl_pte *pte, void *arg)
{
	struct rl_page *page = pte_page(r->pager, pte);

	return (pte->flags & RL_PTE_BUSY) || (page && PageWriteback(page)) ? 1 : 0;
}

struct drop_arg {
	struct rl_pager *p;
	int64_t pages;
};

/* Locks every page first: reclaim may still hold some of them isolated,
 * and drop_frame waits for it to put them back, which it does without
 * touching a page it cannot lock. */
static int pte_lock_fn(struct rl_region *r, uint64_t index, struct rl_pte *pte, void *arg)
{
	pte->flags |= RL_PTE_BUSY;
	return 0;
}

static int pte_drop_fn(struct rl_region *r, uint64_t index, struct rl_pte *pte, void *arg)
{
	struct drop_arg *a = arg;

	if (pte->flags & RL_PTE_RESIDENT)
		drop_frame(a->p, r, pte);
	if (pte->flags & RL_PTE_BACKED || r->kind != RL_REGION_FILE)
		a->pages++;
	pte->flags = 0;
	return 0;
}

void rl_region_free(struct rl_region *r)
{
	if (r->backing)
		r->be->ops->release(r->backing);
	if (r->map && r->map != MAP_FAILED)
		munmap(r->map, r->npages << RL_PAGE_SHIFT);
	if (r->memfd >= 0)
		close(r->memfd);
	rl_region_free_ptes(r);
	free(r);
}

int64_t rl_region_del(struct rl_pager *p, struct rl_client *cl, uint32_t id)
{
	struct drop_arg a = { .p = p, .pages = 0 };
	struct rl_region *r;
	int64_t err = 0;
	bool pinned;

	pthread_mutex_lock(&p->lock);
	r = rl_region_map_find_id(&cl->regions, id);
	if (r && r->kind == RL_REGION_FILE) {
		uint64_t npages = r->npages;

		pthread_mutex_unlock(&p->lock);
		err = rl_region_sync(p, cl, id, 0, npages);
		err = err < 0 ? err : 0;
		pthread_mutex_lock(&p->lock);
		r = rl_region_map_find_id(&cl->regions, id);
	}
	if (!r) {
		pthread_mutex_unlock(&p->lock);
		return -ENOENT;
	}
	/* Out of the map first: no new fault or range operation finds it;
	 * those in flight hold pages BUSY and finish. */
	rl_region_map_remove(&cl->regions, r);
	while (rl_pte_for_each(r, 0, r->npages, pte_busy_fn, NULL))
		pthread_cond_wait(&p->page_wait, &p->lock);
	rl_pte_for_each(r, 0, r->npages, pte_lock_fn, NULL);
	rl_pte_for_each(r, 0, r->npages, pte_drop_fn, &a);
	RL_COUNT(p, cl, discards, (uint64_t)a.pages);
	/* A writeback that pinned the region (policy writepages) releases it
	 * at its iput instead. */
	r->deleted = true;
	pinned = __atomic_load_n(&r->pins, __ATOMIC_ACQUIRE) > 0;
	pthread_mutex_unlock(&p->lock);
	if (!pinned)
		rl_region_free(r);
	return err ? err : a.pages;
}

int rl_region_add(struct rl_pager *p, struct rl_client *cl, const struct rl_msg_region_add *ra,
		  int memfd, uint32_t *id, const char **why)
{
	struct rl_region *r;
	struct stat st;
	int err;

	if (!ra->len || (ra->start | ra->len) & (RL_PAGE_SIZE - 1) || ra->len > RL_REGION_MAX ||
	    ra->start + ra->len < ra->start) {
		*why = "the region is not page-aligned or too large";
		close(memfd);
		return -EINVAL;
	}
	if (ra->kind != RL_REGION_HEAP && ra->kind != RL_REGION_ANON && ra->kind != RL_REGION_FILE) {
		*why = "unknown region kind";
		close(memfd);
		return -EINVAL;
	}
	/* The daemon relies on shmem: PUNCH_HOLE and sparse pages. */
	if (fcntl(memfd, F_GET_SEALS) < 0 || fstat(memfd, &st)) {
		*why = "the region's descriptor is not a memfd";
		close(memfd);
		return -EINVAL;
	}
	/* Sealed against shrinking: a client that truncated its memfd under the
	 * daemon's mapping would make the daemon take SIGBUS. */
	if (fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
		*why = "the region's memfd cannot be sealed against shrinking "
		       "(create it with MFD_ALLOW_SEALING)";
		close(memfd);
		return -EINVAL;
	}
	if (fstat(memfd, &st)) {
		*why = "the region's memfd cannot be examined";
		close(memfd);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size < ra->len) {
		*why = "the region's memfd is smaller than the region";
		close(memfd);
		return -EINVAL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		*why = "out of memory";
		close(memfd);
		return -ENOMEM;
	}
	r->kind = ra->kind;
	r->client = cl;
	r->start = ra->start;
	r->memfd = memfd;
	r->map = MAP_FAILED;
	if (r->kind == RL_REGION_FILE) {
		r->file_ino = ra->file_ino;
		r->file_pgoff = ra->file_pgoff;
	}
	r->be = r->kind == RL_REGION_FILE ? &p->file_backend : &p->anon_backend;
	rl_region_mapping_init(p, r);
	err = rl_region_init_ptes(r, ra->len >> RL_PAGE_SHIFT);
	if (err) {
		*why = "out of memory for the region's page table";
		goto fail;
	}
	r->map = mmap(NULL, ra->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, memfd, 0);
	if (r->map == MAP_FAILED) {
		err = -errno;
		*why = "cannot map the region's memfd in the daemon";
		goto fail;
	}
	if (!r->be->ops) {
		err = -EOPNOTSUPP;
		*why = "the daemon has no backing store for this kind of region";
		goto fail;
	}
	if (r->kind == RL_REGION_FILE) {
		err = r->be->ops->open_file(r->be, r->file_ino, &r->backing);
		*why = "cannot open the mapped file in the backing store";
	} else {
		err = r->be->ops->open_anon(r->be, r->npages, &r->backing);
		*why = "cannot create the region's backing object";
	}
	if (err) {
		r->backing = NULL;
		goto fail;
	}
	pthread_mutex_lock(&p->lock);
	if (cl->dead) {
		err = -ESRCH;
		*why = "the client is being stopped";
	} else {
		r->id = p->next_region_id++;
		if (!r->id)	/* 0 never names a region */
			r->id = p->next_region_id++;
		r->mapping.id = r->id;
		err = rl_region_map_insert(&cl->regions, r);
		*why = err == -EEXIST ? "the region overlaps another region of this client"
				      : "out of memory";
	}
	pthread_mutex_unlock(&p->lock);
	if (err)
		goto fail;
	*why = NULL;
	*id = r->id;
	return 0;
fail:
	rl_region_free(r);
	return err;
}

void rl_client_teardown_regions(struct rl_pager *p, struct rl_client *cl)
{
	for (;;) {
		uint32_t id;
		int64_t ret;

		pthread_mutex_lock(&p->lock);
		if (!cl->regions.n) {
			pthread_mutex_unlock(&p->lock);
			return;
		}
		id = cl->regions.v[cl->regions.n - 1]->id;
		pthread_mutex_unlock(&p->lock);
		ret = rl_region_del(p, cl, id);
		if (ret < 0 && ret != -ENOENT && !p->cfg.quiet)
			fprintf(stderr, "reclaimlab: pager: %s[%d]: cannot write back region %u "
				"at teardown: %s\n", cl->comm, (int)cl->pid, id, strerror((int)-ret));
	}
}
