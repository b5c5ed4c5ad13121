/* SPDX-License-Identifier: MIT */
/*
 * The LRU lists (one lruvec), private lists of isolated pages, and the
 * page-state transitions that move pages between lists: lru_cache_add,
 * mark_page_accessed, dirtying and cleaning (which, under policy flusher,
 * moves a file page between LRU_INACTIVE_FILE and LRU_INACTIVE_DIRTY),
 * and writeback state (mm/swap.c, mm/filemap.c, mm/page-writeback.c).
 *
 * Lists are doubly linked through page->prev/next by page number: head is
 * the newest page, tail the oldest; next points towards the tail. So
 * LRU_INACTIVE_DIRTY's tail is its oldest-dirtied page.
 */
#include "reclaim/vmscan.h"
#include "reclaim/workingset.h"

static void list_link_head(struct rl_pgdat *pgdat, uint32_t *head, uint32_t *tail,
			   struct rl_page *page)
{
	uint32_t pfn = page_to_pfn(pgdat, page);

	page->prev = RL_NO_PAGE;
	page->next = *head;
	if (*head != RL_NO_PAGE)
		pgdat->pages[*head].prev = pfn;
	else
		*tail = pfn;
	*head = pfn;
}

static void list_link_tail(struct rl_pgdat *pgdat, uint32_t *head, uint32_t *tail,
			   struct rl_page *page)
{
	uint32_t pfn = page_to_pfn(pgdat, page);

	page->next = RL_NO_PAGE;
	page->prev = *tail;
	if (*tail != RL_NO_PAGE)
		pgdat->pages[*tail].next = pfn;
	else
		*head = pfn;
	*tail = pfn;
}

static void list_unlink(struct rl_pgdat *pgdat, uint32_t *head, uint32_t *tail,
			struct rl_page *page)
{
	if (page->prev != RL_NO_PAGE)
		pgdat->pages[page->prev].next = page->next;
	else
		*head = page->next;
	if (page->next != RL_NO_PAGE)
		pgdat->pages[page->next].prev = page->prev;
	else
		*tail = page->prev;
	page->prev = page->next = RL_NO_PAGE;
}

static bool lru_is_active(enum lru_list lru)
{
	return lru == LRU_ACTIVE_ANON || lru == LRU_ACTIVE_FILE;
}

static void lru_add(struct rl_pgdat *pgdat, struct rl_page *page, enum lru_list lru, bool tail)
{
	struct rl_lruvec *v = &pgdat->lruvec;

	if (tail)
		list_link_tail(pgdat, &v->head[lru], &v->tail[lru], page);
	else
		list_link_head(pgdat, &v->head[lru], &v->tail[lru], page);
	page->lru = (uint8_t)lru;
	page->flags |= PG_lru;
	if (lru_is_active(lru))
		page->flags |= PG_active;
	else
		page->flags &= ~PG_active;
	v->nr[lru]++;
}

void add_page_to_lru_list(struct rl_pgdat *pgdat, struct rl_page *page, enum lru_list lru)
{
	lru_add(pgdat, page, lru, false);
}

void add_page_to_lru_list_tail(struct rl_pgdat *pgdat, struct rl_page *page, enum lru_list lru)
{
	lru_add(pgdat, page, lru, true);
}

void del_page_from_lru_list(struct rl_pgdat *pgdat, struct rl_page *page)
{
	struct rl_lruvec *v = &pgdat->lruvec;
	enum lru_list lru = page->lru;

	list_unlink(pgdat, &v->head[lru], &v->tail[lru], page);
	page->flags &= ~PG_lru;
	v->nr[lru]--;
}

enum lru_list page_lru(const struct rl_pgdat *pgdat, const struct rl_page *page)
{
	if (PageSwapBacked(page))
		return PageActive(page) ? LRU_ACTIVE_ANON : LRU_INACTIVE_ANON;
	if (PageActive(page))
		return LRU_ACTIVE_FILE;
	/* seed 004: dirty inactive file pages wait for the flusher on their
	 * own list, so reclaim scanning the clean list never meets them */
	if (pgdat->cfg.policy == RL_POLICY_FLUSHER && PageDirty(page))
		return LRU_INACTIVE_DIRTY;
	return LRU_INACTIVE_FILE;
}

void putback_lru_page(struct rl_pgdat *pgdat, struct rl_page *page)
{
	page->flags &= ~PG_isolated;
	pgdat->nr_isolated--;
	add_page_to_lru_list(pgdat, page, page_lru(pgdat, page));
}

void rotate_reclaimable_page(struct rl_pgdat *pgdat, struct rl_page *page)
{
	/* An active or redirtied page has been used since reclaim chose it:
	 * the kernel leaves those where they are. */
	if (!PageLRU(page) || PageActive(page) || PageDirty(page) || PageWriteback(page))
		return;
	del_page_from_lru_list(pgdat, page);
	add_page_to_lru_list_tail(pgdat, page, page_lru(pgdat, page));
	pgdat->vm.pgrotated++;
}

void rl_page_list_init(struct rl_page_list *l)
{
	l->head = l->tail = RL_NO_PAGE;
	l->nr = 0;
}

void rl_page_list_add_tail(struct rl_pgdat *pgdat, struct rl_page_list *l, struct rl_page *page)
{
	list_link_tail(pgdat, &l->head, &l->tail, page);
	l->nr++;
}

struct rl_page *rl_page_list_pop(struct rl_pgdat *pgdat, struct rl_page_list *l)
{
	struct rl_page *page;

	if (l->head == RL_NO_PAGE)
		return NULL;
	page = &pgdat->pages[l->head];
	list_unlink(pgdat, &l->head, &l->tail, page);
	l->nr--;
	return page;
}

uint32_t isolate_lru_pages(struct rl_pgdat *pgdat, uint32_t nr_to_scan, enum lru_list lru,
			   struct rl_page_list *dst, uint64_t *nr_scanned)
{
	struct rl_lruvec *v = &pgdat->lruvec;
	uint64_t scan = 0, budget = nr_to_scan < v->nr[lru] ? nr_to_scan : v->nr[lru];
	uint32_t taken = 0;

	while (scan < budget && v->tail[lru] != RL_NO_PAGE) {
		struct rl_page *page = &pgdat->pages[v->tail[lru]];

		scan++;
		del_page_from_lru_list(pgdat, page);
		/* A page its owner has locked is being faulted, written or
		 * dropped: look at it again on a later pass. */
		if (!trylock_page(page)) {
			add_page_to_lru_list(pgdat, page, lru);
			continue;
		}
		unlock_page(page);
		page->flags |= PG_isolated;
		pgdat->nr_isolated++;
		rl_page_list_add_tail(pgdat, dst, page);
		taken++;
	}
	if (nr_scanned)
		*nr_scanned = scan;
	return taken;
}

void rl_lru_cache_add(struct rl_pgdat *pgdat, uint32_t pfn, uint32_t shadow)
{
	struct rl_page *page = pfn_to_page(pgdat, pfn);

	if (page->mapping && page->mapping->swapbacked)
		page->flags |= PG_swapbacked;
	if (shadow)
		workingset_refault(pgdat, page, shadow);
	add_page_to_lru_list(pgdat, page, page_lru(pgdat, page));
}

void rl_mark_page_accessed(struct rl_pgdat *pgdat, uint32_t pfn)
{
	struct rl_page *page = pfn_to_page(pgdat, pfn);

	if (!PageReferenced(page)) {
		page->flags |= PG_referenced;
	} else if (!PageActive(page) && PageLRU(page)) {
		/* activate_page: the second touch while inactive */
		del_page_from_lru_list(pgdat, page);
		page->flags |= PG_active;
		add_page_to_lru_list(pgdat, page, page_lru(pgdat, page));
		page->flags &= ~PG_referenced;
		pgdat->vm.pgactivate++;
		workingset_age_nonresident(pgdat, 1);
	}
	/* An isolated page keeps PG_referenced: shrink_page_list decides. */
}

/*
 * NR_FILE_DIRTY: pgdat->nr_dirty counts dirty file pages only, as the
 * kernel's dirty limits and flusher do: anonymous memory is dirty by
 * nature and is written only when reclaim swaps it out.
 */
static void account_dirty(struct rl_pgdat *pgdat, struct rl_page *page, int delta)
{
	if (!PageSwapBacked(page))
		pgdat->nr_dirty += (uint64_t)(int64_t)delta;
	if (page->mapping)
		page->mapping->nrdirty += (uint64_t)(int64_t)delta;
}

void rl_page_cache_delete(struct rl_pgdat *pgdat, uint32_t pfn)
{
	struct rl_page *page = pfn_to_page(pgdat, pfn);

	/* Reclaim may hold it isolated (its batch is being processed with the
	 * lock dropped) or be writing it: wait until it lets go. */
	while (page->flags & (PG_writeback | PG_isolated))
		pthread_cond_wait(pgdat->wait, pgdat->lock);
	if (PageLRU(page))
		del_page_from_lru_list(pgdat, page);
	if (PageDirty(page)) {
		page->flags &= ~PG_dirty;
		account_dirty(pgdat, page, -1);
	}
	page->flags &= ~(PG_active | PG_referenced | PG_reclaim | PG_workingset);
}

void rl_set_page_dirty(struct rl_pgdat *pgdat, uint32_t pfn)
{
	struct rl_page *page = pfn_to_page(pgdat, pfn);

	if (PageDirty(page))
		return;
	page->flags |= PG_dirty;
	page->dirtied_at = rl_pgdat_now_ms(pgdat);
	pgdat->vm.nr_dirtied++;
	account_dirty(pgdat, page, 1);
	if (PageLRU(page) && page->lru != page_lru(pgdat, page)) {
		/* policy flusher: to the head of inactive_dirty (newest dirtied) */
		del_page_from_lru_list(pgdat, page);
		add_page_to_lru_list(pgdat, page, page_lru(pgdat, page));
	}
}

bool rl_clear_page_dirty_for_io(struct rl_pgdat *pgdat, uint32_t pfn)
{
	struct rl_page *page = pfn_to_page(pgdat, pfn);

	if (!PageDirty(page))
		return false;
	page->flags &= ~PG_dirty;
	account_dirty(pgdat, page, -1);
	if (PageLRU(page) && page->lru != page_lru(pgdat, page)) {
		/* policy flusher: an old page made clean is the next one
		 * reclaim should find, at the tail of inactive_clean */
		del_page_from_lru_list(pgdat, page);
		add_page_to_lru_list_tail(pgdat, page, page_lru(pgdat, page));
	}
	return true;
}

void rl_set_page_writeback(struct rl_pgdat *pgdat, uint32_t pfn)
{
	struct rl_page *page = pfn_to_page(pgdat, pfn);

	if (PageWriteback(page))
		return;
	page->flags |= PG_writeback;
	pgdat->nr_writeback++;
}

void rl_end_page_writeback(struct rl_pgdat *pgdat, uint32_t pfn, int err)
{
	struct rl_page *page = pfn_to_page(pgdat, pfn);

	if (!PageWriteback(page))
		return;
	page->flags &= ~PG_writeback;
	pgdat->nr_writeback--;
	if (err)
		rl_set_page_dirty(pgdat, pfn);
	if (page->flags & PG_reclaim) {
		page->flags &= ~PG_reclaim;
		rotate_reclaimable_page(pgdat, page);
	}
	pthread_cond_broadcast(pgdat->wait);
}

void rl_wait_on_page_writeback(struct rl_pgdat *pgdat, uint32_t pfn)
{
	while (PageWriteback(pfn_to_page(pgdat, pfn)))
		pthread_cond_wait(pgdat->wait, pgdat->lock);
}
