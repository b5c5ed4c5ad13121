/* SPDX-License-Identifier: MIT */
/*
 * mm/workingset.c: refault distance. When reclaim evicts a page it leaves a
 * shadow entry where the page was (the owner stores the 32-bit value in its
 * page table): the lruvec's nonresident age at eviction. When the page is
 * faulted back, the refault distance is the number of evictions since
 * then; if it is no larger than the active list(s), the page would have
 * stayed resident with that much more inactive space: it is part of the
 * working set and goes straight to the active list (workingset_activate),
 * and PG_workingset marks it so its next eviction counts it as thrashing
 * (workingset_restore).
 *
 * Shadow 0 means "none"; the encoding packs the age (low bits) with the
 * page's PG_workingset bit and the anon/file type.
 */
#ifndef RECLAIMLAB_RECLAIM_WORKINGSET_H
#define RECLAIMLAB_RECLAIM_WORKINGSET_H

#include <stdbool.h>
#include <stdint.h>

#include "reclaim/pgdat.h"

/* workingset_eviction: advances the age and returns the shadow for page. */
uint32_t workingset_eviction(struct rl_pgdat *pgdat, struct rl_page *page);
/*
 * workingset_refault: page (just filled, not yet on the LRU) refaulted with
 * shadow. Counts workingset_refault; returns true when it must be
 * activated (and sets PG_workingset/PG_active as the kernel does).
 */
bool workingset_refault(struct rl_pgdat *pgdat, struct rl_page *page, uint32_t shadow);
/* workingset_age_nonresident: activations also age the clock. */
void workingset_age_nonresident(struct rl_pgdat *pgdat, uint64_t nr_pages);

/* For tests: the parts of a shadow. */
uint64_t workingset_shadow_age(uint32_t shadow);
bool workingset_shadow_workingset(uint32_t shadow);

#endif
