/* SPDX-License-Identifier: MIT */
/*
 * The malloc family, served by mimalloc from an arena that is exactly the
 * heap region, so that every allocation is pager memory.
 *
 * mimalloc is told never to return memory to the OS (no decommit, no page
 * reset: those would madvise pager memory behind the daemon's back) and
 * never to allocate from the OS (limit_os_alloc): when the region is full,
 * allocations fail with ENOMEM instead of escaping it. Its remaining OS
 * calls are small metadata maps, which shim_mmap.c passes to the kernel
 * because shim_in_alloc is raised around every mi_* call.
 *
 * Pointers outside the region were not allocated here (the dynamic loader's
 * early minimal malloc can hand such blocks to free): free ignores them and
 * malloc_usable_size reports 0, since mimalloc would read a segment header
 * that does not exist.
 */
#include <errno.h>
#include <malloc.h>
#include <mimalloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pager/shim/shim.h"

static uintptr_t heap_start, heap_end;
static bool stats_on;
static unsigned long long n_in, n_out;

#define ENTER() do {								\
	if (__builtin_expect(__atomic_load_n(&shim.mode, __ATOMIC_ACQUIRE) < SHIM_PAGED, 0)) \
		shim_init();							\
	shim_in_alloc++;							\
} while (0)
#define LEAVE() (shim_in_alloc--)

static inline bool in_heap(const void *p)
{
	return (uintptr_t)p >= heap_start && (uintptr_t)p < heap_end;
}

static inline void *count(void *p)
{
	if (stats_on && p)
		__atomic_fetch_add(in_heap(p) ? &n_in : &n_out, 1, __ATOMIC_RELAXED);
	return p;
}

void shim_malloc_init(struct shim_region *heap)
{
	const char *s = getenv("RECLAIMLAB_SHIM_STATS");

	stats_on = s && strcmp(s, "1") == 0;
	shim_in_alloc++;
	mi_process_init();
	mi_option_disable(mi_option_allow_decommit);
	mi_option_disable(mi_option_page_reset);
	mi_option_disable(mi_option_abandoned_page_decommit);
	mi_option_disable(mi_option_large_os_pages);
	mi_option_set(mi_option_reserve_huge_os_pages, 0);
	mi_option_set(mi_option_reserve_os_memory, 0);
	mi_option_set(mi_option_limit_os_alloc, 1);
	bool ok = mi_manage_os_memory((void *)(uintptr_t)heap->start, heap->len,
				      true, false, true, -1);
	shim_in_alloc--;
	if (!ok)
		shim_die("mimalloc refused the heap region (%llu MiB at %p)",
			 (unsigned long long)(heap->len >> 20), (void *)(uintptr_t)heap->start);
	heap_start = heap->start;
	heap_end = heap->start + heap->len;
}

__attribute__((destructor)) static void shim_malloc_stats(void)
{
	if (!stats_on)
		return;
	char buf[256];
	int n = snprintf(buf, sizeof(buf),
			 "rlshim: %s[%d]: allocations: %llu from the heap region, %llu outside\n",
			 shim.comm, (int)getpid(), __atomic_load_n(&n_in, __ATOMIC_RELAXED),
			 __atomic_load_n(&n_out, __ATOMIC_RELAXED));
	if (n > 0 && write(shim.errfd >= 0 ? shim.errfd : 2, buf,
			   (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1) < 0)
		return;
}

/* mimalloc sets errno on most failures; make sure every NULL says ENOMEM. */
static inline void *nomem(void *p)
{
	if (!p)
		errno = ENOMEM;
	return p;
}

void *malloc(size_t n)
{
	ENTER();
	void *p = mi_malloc(n);
	LEAVE();
	return count(nomem(p));
}

void free(void *p)
{
	if (!p || !in_heap(p))
		return;
	shim_in_alloc++;
	mi_free(p);
	shim_in_alloc--;
}

void cfree(void *p);
void cfree(void *p)
{
	free(p);
}

/*
 * mimalloc clears a large block with memset whenever it cannot prove the
 * memory fresh, and under the pager that faults in and dirties every page
 * (xz -9's 64 MiB calloc touched 3.5x its native footprint). Large callocs
 * are cleared instead by discarding their whole pages: the daemon drops
 * them, and they come back as zero pages on first touch, with no IO.
 */
#define CALLOC_DISCARD_MIN	(1ul << 20)
#define PAGE_MASK_		((uintptr_t)RL_PAGE_SIZE_ - 1)
#define RL_PAGE_SIZE_		4096u

void *calloc(size_t nmemb, size_t size)
{
	uintptr_t a, lo, hi;
	size_t n;
	void *p;

	ENTER();
	if (__builtin_mul_overflow(nmemb, size, &n) || n < CALLOC_DISCARD_MIN ||
	    shim.mode != SHIM_PAGED) {
		p = mi_calloc(nmemb, size);
		LEAVE();
		return count(nomem(p));
	}
	p = mi_malloc(n);
	LEAVE();
	if (!p)
		return count(nomem(p));
	a = (uintptr_t)p;
	lo = (a + PAGE_MASK_) & ~PAGE_MASK_;
	hi = (a + n) & ~PAGE_MASK_;
	memset(p, 0, lo - a);
	memset((void *)hi, 0, a + n - hi);
	if (shim_region_discard(&shim.regions[0], lo, hi - lo) < 0)
		memset((void *)lo, 0, hi - lo);
	return count(p);
}

void *realloc(void *old, size_t n)
{
	ENTER();
	if (old && !in_heap(old))
		shim_die("realloc(%p): that block was not allocated by the shim "
			 "(it lies outside the heap region)", old);
	void *p = mi_realloc(old, n);
	LEAVE();
	return count(nomem(p));
}

void *reallocarray(void *old, size_t nmemb, size_t size)
{
	ENTER();
	if (old && !in_heap(old))
		shim_die("reallocarray(%p): that block was not allocated by the shim "
			 "(it lies outside the heap region)", old);
	void *p = mi_reallocarray(old, nmemb, size);
	LEAVE();
	return count(nomem(p));
}

int posix_memalign(void **out, size_t align, size_t n)
{
	ENTER();
	int rc = mi_posix_memalign(out, align, n);
	LEAVE();
	if (rc == 0)
		count(*out);
	return rc;
}

void *aligned_alloc(size_t align, size_t n)
{
	ENTER();
	void *p = mi_aligned_alloc(align, n);
	LEAVE();
	return count(p);
}

void *memalign(size_t align, size_t n)
{
	ENTER();
	void *p = mi_memalign(align, n);
	LEAVE();
	return count(nomem(p));
}

void *valloc(size_t n)
{
	ENTER();
	void *p = mi_valloc(n);
	LEAVE();
	return count(nomem(p));
}

void *pvalloc(size_t n)
{
	ENTER();
	void *p = mi_pvalloc(n);
	LEAVE();
	return count(nomem(p));
}

size_t malloc_usable_size(void *p)
{
	if (!p || !in_heap(p))
		return 0;
	shim_in_alloc++;
	size_t n = mi_usable_size(p);
	shim_in_alloc--;
	return n;
}
