/* SPDX-License-Identifier: MIT */
/*
 * Region map (a sorted array: a client has a handful of regions, looked up
 * on every fault by binary search) and the sparse page tables.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pager/region.h"

int rl_region_init_ptes(struct rl_region *r, uint64_t npages)
{
	uint64_t nchunks = (npages + RL_PTE_CHUNK - 1) >> RL_PTE_CHUNK_SHIFT;

	r->npages = npages;
	r->nchunks = nchunks;
	r->chunks = NULL;
	if (!nchunks)
		return 0;
	r->chunks = calloc(nchunks, sizeof(*r->chunks));
	return r->chunks ? 0 : -ENOMEM;
}

void rl_region_free_ptes(struct rl_region *r)
{
	if (r->chunks)
		for (uint64_t i = 0; i < r->nchunks; i++)
			free(r->chunks[i]);
	free(r->chunks);
	r->chunks = NULL;
	r->nchunks = 0;
}

struct rl_pte *rl_pte_lookup(struct rl_region *r, uint64_t index, bool create)
{
	uint64_t c = index >> RL_PTE_CHUNK_SHIFT;
	struct rl_pte *chunk;

	if (index >= r->npages)
		return NULL;
	chunk = r->chunks[c];
	if (!chunk) {
		if (!create)
			return NULL;
		chunk = malloc(RL_PTE_CHUNK * sizeof(*chunk));
		if (!chunk)
			return NULL;
		for (uint32_t i = 0; i < RL_PTE_CHUNK; i++)
			chunk[i] = (struct rl_pte){ .frame = RL_NO_FRAME };
		r->chunks[c] = chunk;
	}
	return &chunk[index & (RL_PTE_CHUNK - 1)];
}

int rl_pte_for_each(struct rl_region *r, uint64_t first, uint64_t n,
		    int (*fn)(struct rl_region *r, uint64_t index, struct rl_pte *pte, void *arg),
		    void *arg)
{
	uint64_t end = first + n;

	if (end > r->npages || end < first)
		end = r->npages;
	for (uint64_t i = first; i < end;) {
		struct rl_pte *chunk = r->chunks[i >> RL_PTE_CHUNK_SHIFT];
		uint64_t stop = (i | (RL_PTE_CHUNK - 1)) + 1;

		if (stop > end)
			stop = end;
		if (chunk) {
			for (; i < stop; i++) {
				struct rl_pte *pte = &chunk[i & (RL_PTE_CHUNK - 1)];
				int ret;

				if (!pte->flags)
					continue;
				ret = fn(r, i, pte, arg);
				if (ret)
					return ret;
			}
		}
		i = stop;
	}
	return 0;
}

void rl_region_map_init(struct rl_region_map *m)
{
	memset(m, 0, sizeof(*m));
}

void rl_region_map_destroy(struct rl_region_map *m)
{
	free(m->v);
	memset(m, 0, sizeof(*m));
}

static uint64_t region_end(const struct rl_region *r)
{
	return r->start + (r->npages << 12);
}

/* Index of the first region whose end is above addr (m->n if none). */
static size_t map_search(const struct rl_region_map *m, uint64_t addr)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (region_end(m->v[mid]) <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int rl_region_map_insert(struct rl_region_map *m, struct rl_region *r)
{
	size_t pos = map_search(m, r->start);

	if (!r->npages || region_end(r) < r->start)
		return -EINVAL;
	if (pos < m->n && m->v[pos]->start < region_end(r))
		return -EEXIST;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 8;
		struct rl_region **v = realloc(m->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		m->v = v;
		m->cap = cap;
	}
	memmove(&m->v[pos + 1], &m->v[pos], (m->n - pos) * sizeof(*m->v));
	m->v[pos] = r;
	m->n++;
	return 0;
}

int rl_region_map_remove(struct rl_region_map *m, struct rl_region *r)
{
	size_t pos = map_search(m, r->start);

	if (pos >= m->n || m->v[pos] != r)
		return -ENOENT;
	memmove(&m->v[pos], &m->v[pos + 1], (m->n - pos - 1) * sizeof(*m->v));
	m->n--;
	return 0;
}

struct rl_region *rl_region_map_find(const struct rl_region_map *m, uint64_t addr)
{
	size_t pos = map_search(m, addr);

	if (pos < m->n && m->v[pos]->start <= addr)
		return m->v[pos];
	return NULL;
}

struct rl_region *rl_region_map_find_id(const struct rl_region_map *m, uint32_t id)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i]->id == id)
			return m->v[i];
	return NULL;
}
