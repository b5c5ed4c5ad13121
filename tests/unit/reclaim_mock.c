/* SPDX-License-Identifier: MIT */
/*
 * The mock owner (reclaim_mock.h). Its lock is ERRORCHECK so that the ops
 * can tell whether the calling thread holds it: pthread_mutex_lock returns
 * EDEADLK to the owner, pthread_mutex_unlock returns EPERM to others.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "reclaim/pgdat.h"
#include "tests/unit/reclaim_mock.h"

static struct rl_mock_mapping *to_map(struct rl_mapping *m)
{
	return (struct rl_mock_mapping *)m;
}

static struct rl_mock_mapping *page_map(struct rl_page *page)
{
	return to_map(page->mapping);
}

/* The op must run with the lock held: the owner gets EDEADLK at once.
 * (If nobody holds it we take it, count, and give it back.) */
static void expect_held(struct rl_mock *mk)
{
	int r = pthread_mutex_lock(&mk->lock);

	if (r == EDEADLK)
		return;
	if (r == 0) {
		mk->lock_violations++;
		pthread_mutex_unlock(&mk->lock);
	}
}

/* The op must run without the lock: unlocking a mutex we do not own is
 * EPERM and harmless; if it succeeds the caller held it. */
static void expect_unheld(struct rl_mock *mk)
{
	if (pthread_mutex_unlock(&mk->lock) == 0) {
		mk->lock_violations++;
		pthread_mutex_lock(&mk->lock);
	}
}

static void drop_and_retake(struct rl_mock *mk)
{
	if (mk->drop_lock_in_ops) {
		pthread_mutex_unlock(&mk->lock);
		sched_yield();
		pthread_mutex_lock(&mk->lock);
	}
}

static bool mock_trylock_page(struct rl_page *page)
{
	struct rl_mock_mapping *map = page_map(page);

	expect_held(map->mock);
	if (map->locked[page->index])
		return false;
	map->locked[page->index] = true;
	return true;
}

static void mock_unlock_page(struct rl_page *page)
{
	struct rl_mock_mapping *map = page_map(page);

	expect_held(map->mock);
	map->locked[page->index] = false;
	pthread_cond_broadcast(&map->mock->wait);
}

static int mock_page_referenced(struct rl_page *page)
{
	struct rl_mock_mapping *map = page_map(page);
	bool young = map->young[page->index];

	expect_held(map->mock);
	map->mock->nr_page_referenced++;
	map->young[page->index] = false;
	return young ? 1 : 0;
}

static void *mock_page_address(struct rl_page *page)
{
	struct rl_mock *mk = page_map(page)->mock;

	return mk->frames + (size_t)page_to_pfn(&mk->pgdat, page) * RL_MOCK_PAGE_SIZE;
}

static struct rl_page *mock_find_page(struct rl_mapping *m, uint64_t index)
{
	struct rl_mock_mapping *map = to_map(m);

	expect_held(map->mock);
	if (index >= map->npages || map->pfn[index] == RL_NO_PAGE)
		return NULL;
	return pfn_to_page(&map->mock->pgdat, map->pfn[index]);
}

static int mock_write_protect(struct rl_page *page)
{
	struct rl_mock_mapping *map = page_map(page);

	expect_held(map->mock);
	map->mock->nr_write_protect++;
	map->wprotected[page->index] = true;
	drop_and_retake(map->mock);
	return 0;
}

static int mock_writepages(struct rl_mapping *m, uint64_t first, uint32_t n,
			   struct rl_page *const *pages, bool batch)
{
	struct rl_mock_mapping *map = to_map(m);
	struct rl_mock *mk = map->mock;
	struct rl_mock_wcall c = {
		.mapping_id = m->id, .first = first, .n = n, .batch = batch,
		.thread = pthread_self(),
	};
	int ret = 0;

	expect_unheld(mk);
	pthread_mutex_lock(&mk->lock);
	if (mk->fail_count != 0) {
		ret = -mk->fail_errno;
		if (mk->fail_count > 0)
			mk->fail_count--;
	}
	for (uint32_t i = 0; i < n && ret == 0; i++) {
		if (first + i >= map->npages || pages[i]->index != first + i ||
		    pages[i]->mapping != m || !PageWriteback(pages[i]))
			ret = -EINVAL;	/* a caller bug: the test sees ret in the log */
	}
	c.seq = mk->nr_writepages++;
	c.pins_during = m->pins;
	c.inode_refs_during = map->inode_refs;
	c.ret = ret;
	if (mk->nlog < RL_MOCK_LOG_MAX)
		mk->log[mk->nlog++] = c;
	pthread_mutex_unlock(&mk->lock);

	if (mk->write_delay_us)
		usleep(mk->write_delay_us);
	if (ret == 0) {
		/* Stable pages: contents cannot change under PG_writeback;
		 * the lock is for the disk bookkeeping. */
		pthread_mutex_lock(&mk->lock);
		for (uint32_t i = 0; i < n; i++) {
			map->disk[first + i] = *(const uint8_t *)mock_page_address(pages[i]);
			map->writes[first + i]++;
		}
		mk->pages_written += n;
		pthread_mutex_unlock(&mk->lock);
	}
	if (mk->on_writepages)
		mk->on_writepages(mk, &c, mk->hook_arg);
	return ret;
}

static int mock_remove_mapping(struct rl_page *page, uint32_t shadow)
{
	struct rl_mock_mapping *map = page_map(page);
	struct rl_mock *mk = map->mock;
	uint64_t index = page->index;

	expect_held(mk);
	mk->nr_remove_mapping++;
	if (mk->remove_eagain) {
		mk->remove_eagain--;
		return -EAGAIN;
	}
	drop_and_retake(mk);
	if (map->young[index] || PageDirty(page))
		return -EAGAIN;
	if (mk->on_remove_mapping)
		mk->on_remove_mapping(mk, page, mk->hook_arg);
	/* The pte becomes the shadow entry: the page lock (its BUSY bit)
	 * goes with it, so the owner releases it here. */
	map->pfn[index] = RL_NO_PAGE;
	map->shadow[index] = shadow;
	map->locked[index] = false;
	map->wprotected[index] = false;
	map->m.nrpages--;
	pthread_cond_broadcast(&mk->wait);
	return 0;
}

static void mock_igrab(struct rl_mapping *m)
{
	struct rl_mock_mapping *map = to_map(m);

	expect_unheld(map->mock);
	pthread_mutex_lock(&map->mock->lock);
	map->inode_refs++;
	map->igrabs++;
	pthread_mutex_unlock(&map->mock->lock);
}

static bool mock_iput(struct rl_mapping *m)
{
	struct rl_mock_mapping *map = to_map(m);
	struct rl_mock *mk = map->mock;
	bool final;

	expect_unheld(mk);
	pthread_mutex_lock(&mk->lock);
	map->iputs++;
	final = --map->inode_refs == 0;
	if (final) {
		map->final_iputs++;
		map->final_iput_thread = pthread_self();
		map->evicted = true;
	}
	pthread_mutex_unlock(&mk->lock);
	if (final && mk->on_final_iput)
		mk->on_final_iput(mk, map, mk->hook_arg);
	return final;
}

static const struct rl_mapping_ops mock_ops = {
	.trylock_page = mock_trylock_page,
	.unlock_page = mock_unlock_page,
	.page_referenced = mock_page_referenced,
	.page_address = mock_page_address,
	.find_page = mock_find_page,
	.write_protect = mock_write_protect,
	.writepages = mock_writepages,
	.remove_mapping = mock_remove_mapping,
	.igrab = mock_igrab,
	.iput = mock_iput,
};

int rl_mock_init(struct rl_mock *mk, struct rl_reclaim_config *cfg)
{
	pthread_mutexattr_t a;
	int ret;

	memset(mk, 0, sizeof(*mk));
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&mk->lock, &a);
	pthread_mutexattr_destroy(&a);
	pthread_cond_init(&mk->wait, NULL);
	mk->frames = calloc(cfg->nr_pages ? cfg->nr_pages : 1, RL_MOCK_PAGE_SIZE);
	if (!mk->frames)
		return -ENOMEM;
	cfg->lock = &mk->lock;
	cfg->wait = &mk->wait;
	ret = rl_pgdat_init(&mk->pgdat, cfg);
	if (ret) {
		free(mk->frames);
		mk->frames = NULL;
	}
	return ret;
}

static void free_map(struct rl_mock_mapping *map)
{
	free(map->pfn);
	free(map->shadow);
	free(map->locked);
	free(map->young);
	free(map->wprotected);
	free(map->disk);
	free(map->writes);
}

void rl_mock_destroy(struct rl_mock *mk)
{
	rl_pgdat_stop(&mk->pgdat);
	rl_pgdat_destroy(&mk->pgdat);
	for (unsigned i = 0; i < mk->nr_maps; i++)
		free_map(&mk->maps[i]);
	free(mk->frames);
	pthread_cond_destroy(&mk->wait);
	pthread_mutex_destroy(&mk->lock);
}

struct rl_mock_mapping *rl_mock_mapping(struct rl_mock *mk, uint64_t npages, bool swapbacked)
{
	struct rl_mock_mapping *map;

	if (mk->nr_maps == RL_MOCK_MAX_MAPPINGS || npages == 0)
		return NULL;
	map = &mk->maps[mk->nr_maps];
	memset(map, 0, sizeof(*map));
	map->pfn = malloc(npages * sizeof(*map->pfn));
	map->shadow = calloc(npages, sizeof(*map->shadow));
	map->locked = calloc(npages, sizeof(bool));
	map->young = calloc(npages, sizeof(bool));
	map->wprotected = calloc(npages, sizeof(bool));
	map->disk = calloc(npages, 1);
	map->writes = calloc(npages, sizeof(*map->writes));
	if (!map->pfn || !map->shadow || !map->locked || !map->young || !map->wprotected ||
	    !map->disk || !map->writes) {
		free_map(map);
		return NULL;
	}
	for (uint64_t i = 0; i < npages; i++)
		map->pfn[i] = RL_NO_PAGE;
	map->m.ops = &mock_ops;
	map->m.id = mk->nr_maps + 1;
	map->m.swapbacked = swapbacked;
	map->mock = mk;
	map->npages = npages;
	map->inode_refs = 1;
	mk->nr_maps++;
	return map;
}

struct rl_page *rl_mock_page(struct rl_mock *mk, struct rl_mock_mapping *map, uint64_t index)
{
	if (index >= map->npages || map->pfn[index] == RL_NO_PAGE)
		return NULL;
	return pfn_to_page(&mk->pgdat, map->pfn[index]);
}

uint8_t rl_mock_content(struct rl_mock *mk, const struct rl_page *page)
{
	return mk->frames[(size_t)page_to_pfn(&mk->pgdat, page) * RL_MOCK_PAGE_SIZE];
}

/* A write to a resident page: stable pages make it wait for writeback. */
static void write_page(struct rl_mock *mk, struct rl_mock_mapping *map, uint64_t index,
		       uint8_t val)
{
	uint32_t pfn = map->pfn[index];

	while (PageWriteback(pfn_to_page(&mk->pgdat, pfn))) {
		rl_wait_on_page_writeback(&mk->pgdat, pfn);
		pfn = map->pfn[index];
		if (pfn == RL_NO_PAGE)
			return;
	}
	map->wprotected[index] = false;
	mk->frames[(size_t)pfn * RL_MOCK_PAGE_SIZE] = val;
	rl_set_page_dirty(&mk->pgdat, pfn);
}

int rl_mock_fault(struct rl_mock *mk, struct rl_mock_mapping *map, uint64_t index,
		  bool write, uint8_t val, uint32_t *pfn_out)
{
	uint32_t pfn;
	int ret;

	if (index >= map->npages)
		return -EINVAL;
	if (map->pfn[index] != RL_NO_PAGE) {
		map->young[index] = true;
		rl_mark_page_accessed(&mk->pgdat, map->pfn[index]);
	} else {
		ret = rl_alloc_page(&mk->pgdat, &map->m, index, &pfn);
		if (ret)
			return ret;
		if (map->pfn[index] != RL_NO_PAGE) {
			/* another thread faulted it in while we reclaimed */
			rl_free_page(&mk->pgdat, pfn);
		} else {
			uint32_t shadow = map->shadow[index];

			mk->frames[(size_t)pfn * RL_MOCK_PAGE_SIZE] = map->disk[index];
			map->pfn[index] = pfn;
			map->shadow[index] = 0;
			map->young[index] = true;
			map->m.nrpages++;
			rl_lru_cache_add(&mk->pgdat, pfn, shadow);
		}
	}
	if (write)
		write_page(mk, map, index, val);
	if (pfn_out)
		*pfn_out = map->pfn[index];
	return 0;
}

void rl_mock_dirty(struct rl_mock *mk, struct rl_mock_mapping *map, uint64_t index, uint8_t val)
{
	if (index < map->npages && map->pfn[index] != RL_NO_PAGE)
		write_page(mk, map, index, val);
}

void rl_mock_drop(struct rl_mock *mk, struct rl_mock_mapping *map, uint64_t index)
{
	uint32_t pfn;

	if (index >= map->npages || map->pfn[index] == RL_NO_PAGE)
		return;
	pfn = map->pfn[index];
	rl_page_cache_delete(&mk->pgdat, pfn);
	if (map->pfn[index] != pfn)
		return;		/* someone else dropped it while we waited */
	map->pfn[index] = RL_NO_PAGE;
	map->m.nrpages--;
	rl_free_page(&mk->pgdat, pfn);
}

void rl_mock_unlink(struct rl_mock *mk, struct rl_mock_mapping *map)
{
	mock_iput(&map->m);
	pthread_mutex_lock(&mk->lock);
	map->iputs--;	/* the creation reference is not an iput of reclaim's */
	pthread_mutex_unlock(&mk->lock);
}

uint64_t rl_mock_resident(const struct rl_mock *mk)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < mk->nr_maps; i++)
		n += mk->maps[i].m.nrpages;
	return n;
}

uint64_t rl_mock_count_on(const struct rl_mock *mk, enum lru_list lru)
{
	uint64_t n = 0;

	for (uint32_t p = mk->pgdat.lruvec.head[lru]; p != RL_NO_PAGE;
	     p = mk->pgdat.pages[p].next)
		n++;
	return n;
}

void rl_mock_log_clear(struct rl_mock *mk)
{
	mk->nlog = 0;
}

struct rl_mock *rl_mock_new(uint32_t nr, enum rl_policy policy, bool threads)
{
	struct rl_reclaim_config cfg = { .nr_pages = nr, .policy = policy, .threads = threads };
	struct rl_mock *mk = malloc(sizeof(*mk));

	assert_non_null(mk);
	assert_int_equal(rl_mock_init(mk, &cfg), 0);
	return mk;
}

void rl_mock_free(struct rl_mock *mk)
{
	assert_int_equal(mk->lock_violations, 0);
	rl_mock_destroy(mk);
	free(mk);
}
