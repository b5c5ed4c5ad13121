/* SPDX-License-Identifier: MIT */
/*
 * Memory management of the daemon (fault.c, range.c, mapping.c):
 * userfaultfd faults and the range operations the protocol asks for; frames
 * come from reclaim/ (rl_alloc_page, with direct reclaim on the faulting
 * thread). Names follow mm/: handle_mm_fault, do_anonymous_page (zero
 * fill), do_swap_page (read-in through a_ops), do_wp_page (dirty).
 *
 * All functions are called without p->lock unless said otherwise; they
 * take it themselves and drop it around IO and userfaultfd ioctls (the page
 * is RL_PTE_BUSY meanwhile).
 */
#ifndef RECLAIMLAB_PAGER_FAULT_H
#define RECLAIMLAB_PAGER_FAULT_H

#include <linux/userfaultfd.h>
#include <stdint.h>

struct rl_pager;
struct rl_client;
struct rl_region;
struct rl_msg_region_add;

/*
 * One message read from cl's userfaultfd. Page faults in a region are
 * served; a fault outside every region, a fill the client cannot be given
 * correctly (read error, --verify mismatch, no frame can be freed because
 * the backing store is full), stops the client with rl_client_kill. Other
 * events are ignored (none is enabled).
 */
void rl_handle_uffd_msg(struct rl_pager *p, struct rl_client *cl, const struct uffd_msg *msg);

/*
 * REGION_ADD: makes a region for cl: opens its backing object (anonymous
 * kinds: p->anon_backend; FILE: p->file_backend with the inode), maps the
 * memfd in the daemon, inserts it in cl's map. Takes ownership of memfd
 * (closed on failure). Returns 0 with *id, or -errno with a reason in *why.
 */
int rl_region_add(struct rl_pager *p, struct rl_client *cl, const struct rl_msg_region_add *ra,
		  int memfd, uint32_t *id, const char **why);

/*
 * DISCARD: anonymous regions: the pages' contents become zero: resident
 * ones lose their frame and are punched out of the memfd, the backing store
 * forgets them. FILE regions (MADV_DONTNEED on a shared file mapping keeps
 * the data): dirty pages are written back, then all are evicted.
 * SYNC: dirty resident pages of the range are write-protected and written
 * back (they stay resident, clean). REGION_DEL: FILE regions are synced,
 * then the region is dropped (frames freed, backing released, unmapped).
 * SNAPSHOT: every page of the region that is not zero is written into
 * dstfd at its offset (resident ones from the daemon's mapping, the others
 * read through a_ops), without taking frames. Each returns the number of
 * pages it acted on, or -errno.
 */
int64_t rl_region_discard(struct rl_pager *p, struct rl_client *cl, uint32_t id,
			  uint64_t first, uint64_t n);
int64_t rl_region_sync(struct rl_pager *p, struct rl_client *cl, uint32_t id,
		       uint64_t first, uint64_t n);
int64_t rl_region_del(struct rl_pager *p, struct rl_client *cl, uint32_t id);
int64_t rl_region_snapshot(struct rl_pager *p, struct rl_client *cl, uint32_t id, int dstfd);

/* The client went away (EOF or killed): waits for its busy pages, frees
 * every frame, releases every region (FILE regions are synced first). */
void rl_client_teardown_regions(struct rl_pager *p, struct rl_client *cl);

/* ---- between fault.c, mapping.c and range.c (p->lock held) ---- */

/* Punches page index out of r's memfd: 0 or -errno (no lock needed). */
int rl_region_punch(struct rl_region *r, uint64_t index);
/* Counts delta resident pages for cl's session and the daemon (and peaks). */
void rl_account_resident(struct rl_pager *p, struct rl_client *cl, int64_t delta);

/* --verify checksum of a page (CRC32C via ISA-L). */
uint32_t rl_page_csum(const void *page);

#endif
