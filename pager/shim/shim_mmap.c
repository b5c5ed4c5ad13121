/* SPDX-License-Identifier: MIT */
/*
 * The program's mmap family, made pager memory:
 *
 *   - private anonymous maps are carved from the anon region (one big
 *     PROT_NONE memfd mapping registered with userfaultfd) by shim_arena.c,
 *     so their pages fault into the daemon like the heap's;
 *   - MAP_SHARED maps of regular files on the deepfs mount become FILE
 *     regions, paged by the daemon from the file's inode;
 *   - munmap/mremap/madvise/msync on those ranges turn into DISCARD, SYNC
 *     and REGION_DEL requests.
 *
 * Everything else, and every call made from inside the allocator or before
 * init, goes straight to the kernel through raw syscalls (no dlsym, which
 * allocates). Free space in the anon region is always PROT_NONE and empty
 * (discarded before it is freed), so carving needs no zeroing and a stray
 * access to it is a SIGSEGV, as on Linux.
 *
 * Locking: mm_lock covers the arenas only and is never held across a
 * request to the daemon, a region-table lookup or malloc, so the fork
 * handlers can take it without ordering against the shim's other locks.
 */
/* Before any include: with _FILE_OFFSET_BITS=64 (meson's default) glibc's
 * <sys/mman.h> renames mmap to mmap64, and this file would define mmap64
 * twice and mmap not at all. off_t is 64 bits on every target we build. */
#undef _FILE_OFFSET_BITS

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "pager/shim/shim.h"
#include "pager/shim/shim_arena.h"

#define PAGE			SHIM_ARENA_PAGE
#define ANON_DEFAULT_SIZE	(64ull << 30)
#define ANON_ALIGN		(2ull << 20)
#define META_BYTES		(1ull << 20)
/* Per FILE region: the extents of its still-mapped pages, so that the last
 * partial munmap drops the region. */
#define FILE_META_EXTENTS	64
#define FILE_META_BYTES		(SHIM_MAX_REGIONS * FILE_META_EXTENTS * sizeof(struct shim_arena_ext))
#define PROT_META_BYTES		(256ull << 10)
#define PROT_ALL		(PROT_READ | PROT_WRITE | PROT_EXEC)
#ifndef MADV_COLLAPSE		/* Linux 6.1; glibc 2.36 lacks it */
#define MADV_COLLAPSE		25
#endif
#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED	24
#endif

#define WARN_ONCE(...)                                           \
	do {                                                     \
		static atomic_bool warned_;                      \
		if (!atomic_exchange(&warned_, true))            \
			shim_warn(__VA_ARGS__);                  \
	} while (0)
/* Once per call site and region kind (r may be NULL). */
#define WARN_ONCE_KIND(r, ...)                                           \
	do {                                                             \
		static atomic_bool warned_[RL_REGION_FILE + 1];          \
		uint32_t k_ = (r) && (r)->kind <= RL_REGION_FILE ? (r)->kind : 0; \
		if (!atomic_exchange(&warned_[k_], true))                \
			shim_warn(__VA_ARGS__);                          \
	} while (0)

static pthread_mutex_t mm_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shim_region *anon;	/* NULL: anonymous maps stay with the kernel */
static struct shim_arena anon_arena;
static struct shim_arena file_maps[SHIM_MAX_REGIONS];	/* by slot in shim.regions */
static bool file_tracked[SHIM_MAX_REGIONS];
static struct shim_arena_ext *file_meta;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* The anon region's protections other than read-write, recorded at fork:
 * the child maps its snapshot read-write throughout and puts them back. */
struct prot_rec {
	uint64_t s, e;
	int prot;
};
static struct prot_rec *prot_recs;
static size_t nprot_recs;
static bool prot_recs_lost;

/* ---- helpers ---- */

static void *fail(int err)
{
	errno = err;
	return MAP_FAILED;
}

static int fail_int(int err)
{
	errno = err;
	return -1;
}

static void lock(void)
{
	pthread_mutex_lock(&mm_lock);
}

static void unlock(void)
{
	pthread_mutex_unlock(&mm_lock);
}

static bool detached(void)
{
	return __atomic_load_n(&shim.mode, __ATOMIC_ACQUIRE) == SHIM_DETACHED;
}

/* Bytes rounded up to pages; false if that overflows. */
static bool page_round(uint64_t len, uint64_t *out)
{
	if (len > UINT64_MAX - (PAGE - 1))
		return false;
	*out = (len + PAGE - 1) & ~(PAGE - 1);
	return true;
}

/*
 * The first piece of [s, e): the part inside the lowest region that
 * overlaps it (returned), or the gap before that region (NULL). *pe is the
 * piece's end. Regions never overlap, so the lowest one either contains s
 * or starts after it.
 */
static struct shim_region *next_piece(uint64_t s, uint64_t e, uint64_t *pe)
{
	struct shim_region *best = NULL;

	pthread_mutex_lock(&shim.regions_lock);
	for (size_t i = 0; i < SHIM_MAX_REGIONS; i++) {
		struct shim_region *r = &shim.regions[i];

		if (!r->used || r->start + r->len <= s || r->start >= e)
			continue;
		if (!best || r->start < best->start)
			best = r;
	}
	if (!best) {
		*pe = e;
	} else if (best->start > s) {
		*pe = best->start;
		best = NULL;
	} else {
		*pe = best->start + best->len < e ? best->start + best->len : e;
	}
	pthread_mutex_unlock(&shim.regions_lock);
	return best;
}

static bool overlaps_region(uint64_t s, uint64_t e)
{
	uint64_t pe;

	return next_piece(s, e, &pe) != NULL || pe < e;
}

/* [s, e) lies wholly in the anon region. */
static bool in_anon(uint64_t s, uint64_t e)
{
	return anon && shim_arena_contains(&anon_arena, s, e - s);
}

static const char *kind_name(const struct shim_region *r)
{
	switch (r->kind) {
	case RL_REGION_HEAP:
		return "heap";
	case RL_REGION_ANON:
		return "anonymous";
	case RL_REGION_FILE:
		return "file";
	}
	return "unknown";
}

/* ---- /proc/self/maps: protections the program set with mprotect ---- */

struct maps_cursor {
	uint64_t s, e;
	uint64_t next;	/* reported up to here: a mapping fn merged is listed again */
	int (*fn)(uint64_t s, uint64_t e, int prot, void *arg);
	void *arg;
	bool done;
	int err;
};

static bool parse_hex(const char **p, uint64_t *out)
{
	uint64_t v = 0;
	const char *q = *p;

	for (; *q; q++) {
		int d;

		if (*q >= '0' && *q <= '9')
			d = *q - '0';
		else if (*q >= 'a' && *q <= 'f')
			d = *q - 'a' + 10;
		else
			break;
		v = v << 4 | (uint64_t)d;
	}
	if (q == *p)
		return false;
	*p = q;
	*out = v;
	return true;
}

/* One line, "lo-hi rwxp ...": calls the callback for its part of [s, e). */
static void maps_line(struct maps_cursor *c, const char *p)
{
	uint64_t lo, hi;
	int prot = 0;

	if (c->done || !parse_hex(&p, &lo) || *p++ != '-' || !parse_hex(&p, &hi) || *p++ != ' ')
		return;
	if (p[0] == 'r')
		prot |= PROT_READ;
	if (p[0] && p[1] == 'w')
		prot |= PROT_WRITE;
	if (p[0] && p[1] && p[2] == 'x')
		prot |= PROT_EXEC;
	if (lo >= c->e) {
		c->done = true;
		return;
	}
	if (lo < c->next)
		lo = c->next;
	if (hi <= lo)
		return;
	if (hi > c->e)
		hi = c->e;
	c->next = hi;
	c->err = c->fn(lo, hi, prot, c->arg);
	if (c->err)
		c->done = true;
}

/*
 * Calls fn(piece_start, piece_end, prot, arg) for each mapping that overlaps
 * [s, e), in address order, clipped. fn may mprotect inside [s, e): the
 * kernel resumes the listing after the last address it reported. Returns 0,
 * fn's error, or -errno if the file cannot be read. No malloc.
 */
static int maps_walk(uint64_t s, uint64_t e, int (*fn)(uint64_t, uint64_t, int, void *),
		     void *arg)
{
	struct maps_cursor c = { s, e, s, fn, arg, false, 0 };
	char buf[1024];
	size_t have = 0;
	bool skipping = false;	/* inside a line longer than buf */
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while (!c.done) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
		char *p = buf, *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			c.err = -errno;
			break;
		}
		if (n == 0)
			break;
		have += (size_t)n;
		buf[have] = '\0';
		while ((nl = memchr(p, '\n', (size_t)(buf + have - p)))) {
			*nl = '\0';
			if (!skipping)
				maps_line(&c, p);
			skipping = false;
			p = nl + 1;
		}
		have = (size_t)(buf + have - p);
		if (have == sizeof(buf) - 1) {	/* a long path: the start is all we need */
			if (!skipping)
				maps_line(&c, p);
			skipping = true;
			have = 0;
		} else {
			memmove(buf, p, have);
		}
	}
	close(fd);
	return c.err;
}

static int last_prot_fn(uint64_t s, uint64_t e, int prot, void *arg)
{
	*(int *)arg = prot;
	return 0;
}

/* ---- fork ---- */

static int record_prot_fn(uint64_t s, uint64_t e, int prot, void *arg)
{
	if (prot == (PROT_READ | PROT_WRITE) ||
	    (prot == PROT_NONE && shim_arena_is_free(&anon_arena, s, e - s)))
		return 0;
	if (nprot_recs == PROT_META_BYTES / sizeof(*prot_recs)) {
		prot_recs_lost = true;
		return 0;
	}
	prot_recs[nprot_recs++] = (struct prot_rec){ s, e, prot };
	return 0;
}

/* Holding mm_lock across fork keeps the child's arenas consistent (and a
 * thread that held it does not exist there). Also records the anon
 * region's protections for the child. */
static void atfork_prepare(void)
{
	lock();
	nprot_recs = 0;
	prot_recs_lost = false;
	if (anon && !detached() &&
	    maps_walk(anon->start, anon->start + anon->len, record_prot_fn, NULL))
		prot_recs_lost = true;
}

static void atfork_parent(void)
{
	unlock();
}

static void atfork_child(void)
{
	pthread_mutex_init(&mm_lock, NULL);
}

static void register_atfork(void)
{
	int err = pthread_atfork(atfork_prepare, atfork_parent, atfork_child);

	if (err)
		shim_warn("pthread_atfork: %s; a fork racing an mmap in another thread may hang "
			  "the child", strerrordesc_np(err));
}

/* Our calls are handled only once the pager is up, and never on behalf of
 * the allocator (its metadata is small and its arena is the heap region). */
static bool managed(void)
{
	enum shim_mode mode = __atomic_load_n(&shim.mode, __ATOMIC_ACQUIRE);

	if (shim_in_alloc > 0 || (mode != SHIM_PAGED && mode != SHIM_DETACHED))
		return false;
	pthread_once(&atfork_once, register_atfork);
	return true;
}

/* ---- the anon region: release and zero ---- */

/*
 * Pages of [s, e) in region r read zero from now on. Paged: the daemon
 * drops them (DISCARD). Detached (a fork child, no daemon): the regions are
 * private mappings of snapshots, where MADV_DONTNEED would bring back the
 * snapshot's data, so fresh anonymous memory replaces each piece, with the
 * piece's protection.
 */
static int zero_fn(uint64_t s, uint64_t e, int prot, void *arg)
{
	void *p = shim_sys_mmap((void *)s, e - s, prot,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? -errno : 0;
}

static int zero_range(struct shim_region *r, uint64_t s, uint64_t e)
{
	if (detached())
		return maps_walk(s, e, zero_fn, NULL);
	return shim_region_discard(r, s, e - s);
}

/* [s, e) of the anon region goes back to the arena: empty and PROT_NONE
 * first, so nothing stale is ever carved again. On failure the range
 * stays allocated (leaked, never reused). */
static int anon_release(uint64_t s, uint64_t e)
{
	int err;

	if (detached()) {
		err = zero_fn(s, e, PROT_NONE, NULL);
	} else {
		err = shim_region_discard(anon, s, e - s);
		if (!err && shim_sys_mprotect((void *)s, e - s, PROT_NONE))
			err = -errno;
	}
	if (err) {
		shim_warn("cannot release %#lx-%#lx of the anonymous region: %s; the range is "
			  "not reused", (unsigned long)s, (unsigned long)e, strerrordesc_np(-err));
		return err;
	}
	lock();
	err = shim_arena_free(&anon_arena, s, e - s);
	unlock();
	if (err)
		WARN_ONCE("anonymous region too fragmented to track a free range (%s); its "
			  "address space is not reused", strerrordesc_np(-err));
	return 0;
}

/* ---- mmap ---- */

/* A new private anonymous map from the arena, or the kernel's if it is
 * full. */
static void *anon_carve(uint64_t len, int prot, int flags)
{
	uint64_t addr;
	int err;

	lock();
	err = shim_arena_alloc(&anon_arena, len, 0, &addr);
	unlock();
	if (err) {
		WARN_ONCE("the anonymous region (%llu MiB) has no room for a %llu KiB map (%s); "
			  "maps that do not fit are NOT paged by the daemon (said once)",
			  (unsigned long long)(anon_arena.npages * PAGE >> 20),
			  (unsigned long long)(len >> 10),
			  err == -ENOSPC ? "too fragmented" : "full");
		return shim_sys_mmap(NULL, len, prot, flags, -1, 0);
	}
	if (prot != PROT_NONE && shim_sys_mprotect((void *)addr, len, prot)) {
		err = errno;
		lock();
		shim_arena_free(&anon_arena, addr, len);	/* a full table only leaks it */
		unlock();
		WARN_ONCE("mprotect(%#x) in the anonymous region: %s; such maps are NOT paged",
			  prot, strerrordesc_np(err));
		return shim_sys_mmap(NULL, len, prot, flags, -1, 0);
	}
	return (void *)addr;
}

/* MAP_FIXED_NOREPLACE inside the anon region: only over free space. */
static void *anon_noreplace(uint64_t addr, uint64_t len, int prot)
{
	int err = -EEXIST;

	lock();
	if (shim_arena_is_free(&anon_arena, addr, len))
		err = shim_arena_alloc_fixed(&anon_arena, addr, len);
	unlock();
	if (err)
		return fail(err == -EEXIST ? EEXIST : ENOMEM);
	if (prot != PROT_NONE && shim_sys_mprotect((void *)addr, len, prot)) {
		err = errno;
		anon_release(addr, addr + len);
		return fail(err);
	}
	return (void *)addr;
}

/* Reads [off, off+len) of fd into dst; what lies past EOF stays as it is
 * (zero). Returns 0 or -errno. */
static int read_file_into(int fd, off_t off, char *dst, uint64_t len)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, dst + done, len - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (uint64_t)n;
	}
	return 0;
}

/*
 * MAP_FIXED | MAP_PRIVATE inside the anon region: the program re-maps part
 * of its own reservation. Anonymous (fd < 0): the pages read zero
 * afterwards, as on Linux. A private file map is a copy of the file read in
 * now (Linux leaves it unspecified whether later changes to the file show
 * in pages not yet written; here they do not, and pages past EOF read zero
 * instead of raising SIGBUS).
 */
static void *anon_fixed(uint64_t addr, uint64_t len, int prot, int fd, off_t off)
{
	int err;

	lock();
	err = shim_arena_alloc_fixed(&anon_arena, addr, len);
	unlock();
	if (err) {
		WARN_ONCE("anonymous region too fragmented for MAP_FIXED at %#lx (%s)",
			  (unsigned long)addr, strerrordesc_np(-err));
		return fail(ENOMEM);
	}
	err = shim_region_discard(anon, addr, len);
	if (err) {
		shim_warn("MAP_FIXED at %#lx: cannot discard the old pages: %s",
			  (unsigned long)addr, strerrordesc_np(-err));
		return fail(ENOMEM);
	}
	if (fd >= 0) {
		if (shim_sys_mprotect((void *)addr, len, PROT_READ | PROT_WRITE))
			return fail(errno);
		err = read_file_into(fd, off, (char *)addr, len);
		if (err) {
			anon_release(addr, addr + len);
			return fail(-err);
		}
	}
	if (shim_sys_mprotect((void *)addr, len, prot))
		return fail(errno);
	return (void *)addr;
}

/* Which MAP_PRIVATE file maps anon_fixed can copy: regular files (*fd_out
 * = fd) and /dev/zero (*fd_out = -1, anonymous memory). Else -errno. */
static int private_source(int fd, int *fd_out)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fstat(fd, &st))
		return -EBADF;
	if ((fl & O_ACCMODE) == O_WRONLY)
		return -EACCES;
	if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 5) {
		*fd_out = -1;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return -ENODEV;
	*fd_out = fd;
	return 0;
}

/* MAP_FIXED anywhere: inside the anon region, private maps only; never over
 * the heap, a FILE region or across a region's edge (that would replace
 * pager memory behind the daemon's back). */
static void *mmap_fixed(uint64_t addr, uint64_t len, int prot, int flags, int fd, off_t off,
			bool anon_private)
{
	uint64_t e = addr + len;

	if (!overlaps_region(addr, e))
		return shim_sys_mmap((void *)addr, len, prot, flags, fd, off);
	if (in_anon(addr, e) && detached()) {
		/* the child's region is plain private memory: the kernel can
		 * map anything over it */
		void *p = shim_sys_mmap((void *)addr, len, prot, flags, fd, off);

		if (p != MAP_FAILED) {
			lock();
			shim_arena_alloc_fixed(&anon_arena, addr, len);
			unlock();
		}
		return p;
	}
	if (in_anon(addr, e) && anon_private)
		return anon_fixed(addr, len, prot, -1, 0);
	if (in_anon(addr, e) && !(flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE &&
	    !(flags & (MAP_HUGETLB | MAP_GROWSDOWN))) {
		int src, err = private_source(fd, &src);

		if (!err)
			return anon_fixed(addr, len, prot, src, off);
		if (err != -ENODEV)
			return fail(-err);
	}
	{
		uint64_t pe;
		struct shim_region *r = next_piece(addr, e, &pe);

		if (!r)
			r = next_piece(pe, e, &pe);
		WARN_ONCE_KIND(r, "mmap(MAP_FIXED%s) at %#lx-%#lx overlaps the pager's %s region "
			  "%#lx-%#lx and cannot be served there; returning ENOMEM",
			  (flags & MAP_ANONYMOUS) ? "" : (flags & MAP_TYPE) == MAP_PRIVATE ?
			  ", a device" : ", MAP_SHARED of a file", (unsigned long)addr,
			  (unsigned long)e, r ? kind_name(r) : "?",
			  r ? (unsigned long)r->start : 0ul,
			  r ? (unsigned long)(r->start + r->len) : 0ul);
	}
	return fail(ENOMEM);
}

/* MAP_SHARED of a regular file on the deepfs mount: a FILE region. */
static void *file_map(uint64_t len, int prot, int fd, off_t off, const struct stat *st)
{
	struct shim_region *r;
	int fl = fcntl(fd, F_GETFL), err;
	size_t slot;

	if (fl < 0)
		return fail(errno);
	/* the access checks the kernel would make on the file */
	if ((fl & O_ACCMODE) == O_WRONLY)
		return fail(EACCES);
	if ((prot & PROT_WRITE) && ((fl & O_ACCMODE) != O_RDWR || (fl & O_APPEND)))
		return fail(EACCES);
	err = shim_region_new(len, PAGE, RL_REGION_FILE, st->st_ino, (uint64_t)off / PAGE, fd,
			      prot, &r);
	if (err) {
		shim_warn("cannot map inode %llu of the deepfs mount through the pager: %s",
			  (unsigned long long)st->st_ino, strerrordesc_np(-err));
		return fail(-err);
	}
	slot = (size_t)(r - shim.regions);
	lock();
	file_tracked[slot] =
		shim_arena_init(&file_maps[slot], r->start, r->len,
				file_meta + slot * FILE_META_EXTENTS,
				FILE_META_EXTENTS * sizeof(*file_meta)) == 0 &&
		shim_arena_alloc_fixed(&file_maps[slot], r->start, r->len) == 0;
	unlock();
	return (void *)r->start;
}

static bool on_mount(int fd, struct stat *st)
{
	return shim.mount_dev != 0 && fstat(fd, st) == 0 && S_ISREG(st->st_mode) &&
	       (uint64_t)st->st_dev == shim.mount_dev;
}

static void *managed_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	int type = flags & MAP_TYPE;
	uint64_t a = (uint64_t)addr, rlen;
	struct stat st;
	bool anon_private = (flags & MAP_ANONYMOUS) && type == MAP_PRIVATE &&
			    !(flags & (MAP_GROWSDOWN | MAP_HUGETLB | MAP_32BIT));

	/* what the kernel rejects anyway, it rejects with the right errno */
	if (len == 0 || !page_round(len, &rlen) || (off & (off_t)(PAGE - 1)) ||
	    (prot & ~PROT_ALL))
		return shim_sys_mmap(addr, len, prot, flags, fd, off);
	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) && (a & (PAGE - 1) || a + rlen < a))
		return shim_sys_mmap(addr, len, prot, flags, fd, off);
	/* the kernel's own answer (EEXIST) is right unless it is free arena space */
	if (flags & MAP_FIXED_NOREPLACE) {
		if (anon_private && in_anon(a, a + rlen))
			return anon_noreplace(a, rlen, prot);
		return shim_sys_mmap(addr, len, prot, flags, fd, off);
	}
	if (flags & MAP_FIXED)
		return mmap_fixed(a, rlen, prot, flags, fd, off, anon_private);
	/* MAP_SHARED anonymous memory is shared with fork children, which a pager
	 * region (private snapshots after fork) cannot be: it stays the kernel's. */
	if (flags & MAP_ANONYMOUS) {
		if (!anon_private || !anon)
			return shim_sys_mmap(addr, len, prot, flags, fd, off);
		return anon_carve(rlen, prot, flags);	/* a hint is only a hint */
	}
	if ((type == MAP_SHARED || type == MAP_SHARED_VALIDATE) &&
	    !(flags & (MAP_SYNC | MAP_HUGETLB)) && !detached() && on_mount(fd, &st))
		return file_map(rlen, prot, fd, off, &st);
	/* MAP_PRIVATE file maps and files elsewhere: the kernel's */
	return shim_sys_mmap(addr, len, prot, flags, fd, off);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (!managed())
		return shim_sys_mmap(addr, len, prot, flags, fd, off);
	return managed_mmap(addr, len, prot, flags, fd, off);
}

/* Python's arenas, among others, call the LFS name. */
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
	__attribute__((alias("mmap")));

/* ---- munmap ---- */

/* The slot of a FILE region a fork child mapped from the kernel: the
 * kernel unmapped it; the shim forgets it. */
static void forget_region(struct shim_region *r)
{
	pthread_mutex_lock(&shim.regions_lock);
	memset(r, 0, sizeof(*r));
	r->memfd = r->filefd = -1;
	pthread_mutex_unlock(&shim.regions_lock);
}

static int file_unmap(struct shim_region *r, uint64_t s, uint64_t e)
{
	size_t slot = (size_t)(r - shim.regions);
	bool whole = s == r->start && e == r->start + r->len;
	int err = 0;

	lock();
	if (file_tracked[slot]) {
		err = shim_arena_free(&file_maps[slot], s, e - s);
		if (err)
			file_tracked[slot] = false;	/* keep the region to the end */
		else
			whole = file_maps[slot].free_pages == file_maps[slot].npages;
	}
	if (whole)
		file_tracked[slot] = false;
	unlock();
	if (err)
		WARN_ONCE("too many partial munmaps of a deepfs file mapping to track; it stays "
			  "mapped (PROT_NONE) until exit");
	if (detached()) {
		if (shim_sys_munmap((void *)s, e - s))
			return -errno;
		if (whole)
			forget_region(r);
		return 0;
	}
	if (whole)
		return shim_region_drop(r);
	/* the daemon writes the pages back before it drops them */
	err = shim_region_discard(r, s, e - s);
	if (!err && shim_sys_mprotect((void *)s, e - s, PROT_NONE))
		err = -errno;
	return err;
}

int munmap(void *addr, size_t len)
{
	uint64_t s = (uint64_t)addr, rlen, e, pe;
	bool any = false;
	int ret = 0;

	if (!managed() || (s & (PAGE - 1)) || len == 0 || !page_round(len, &rlen) ||
	    s + rlen < s)
		return shim_sys_munmap(addr, len);
	e = s + rlen;
	for (uint64_t p = s; p < e; p = pe) {
		struct shim_region *r = next_piece(p, e, &pe);

		if (r && r->kind == RL_REGION_HEAP) {
			WARN_ONCE("munmap(%#lx, %zu) would unmap the pager's heap region; "
				  "returning EINVAL", (unsigned long)s, len);
			return fail_int(EINVAL);
		}
		any |= r != NULL;
	}
	if (!any)
		return shim_sys_munmap(addr, len);
	for (uint64_t p = s; p < e; p = pe) {
		struct shim_region *r = next_piece(p, e, &pe);
		int err = 0;

		if (!r)
			err = shim_sys_munmap((void *)p, pe - p) ? -errno : 0;
		else if (r == anon)
			err = anon_release(p, pe);
		else if (r->kind == RL_REGION_FILE)
			err = file_unmap(r, p, pe);
		if (err && !ret)
			ret = err;
	}
	return ret ? fail_int(-ret) : 0;
}

/* ---- mremap ---- */

struct move {
	uint64_t old, new;
	int last_prot;
};

/* Copies one mapping piece of the old range to the new one, keeping its
 * protection (pages the program made unreadable are opened for the copy;
 * the old range is released right after). */
static int move_fn(uint64_t s, uint64_t e, int prot, void *arg)
{
	struct move *m = arg;
	uint64_t ns = m->new + (s - m->old);

	if (!(prot & PROT_READ) && shim_sys_mprotect((void *)s, e - s, PROT_READ))
		return -errno;
	if (shim_sys_mprotect((void *)ns, e - s, PROT_READ | PROT_WRITE))
		return -errno;
	memcpy((void *)ns, (void *)s, e - s);
	if (prot != (PROT_READ | PROT_WRITE) && shim_sys_mprotect((void *)ns, e - s, prot))
		return -errno;
	m->last_prot = prot;
	return 0;
}

static void *anon_mremap(uint64_t old, uint64_t oldlen, uint64_t newlen, int flags)
{
	struct move m = { old, 0, PROT_READ | PROT_WRITE };
	bool ok;
	int err;

	if (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) {
		WARN_ONCE("mremap with MREMAP_FIXED or MREMAP_DONTUNMAP inside the pager's "
			  "anonymous region is not supported; returning EINVAL");
		return fail(EINVAL);
	}
	lock();
	ok = shim_arena_is_allocated(&anon_arena, old, oldlen);
	unlock();
	if (!ok)
		return fail(EFAULT);
	if (newlen == oldlen)
		return (void *)old;
	if (newlen < oldlen) {
		anon_release(old + newlen, old + oldlen);
		return (void *)old;
	}
	lock();
	err = shim_arena_grow(&anon_arena, old, oldlen, newlen);
	unlock();
	if (err == 0) {
		/* the new pages take the protection of the last old one, as the
		 * kernel extends the last mapping */
		maps_walk(old + oldlen - PAGE, old + oldlen, last_prot_fn, &m.last_prot);
		if (m.last_prot != PROT_NONE &&
		    shim_sys_mprotect((void *)(old + oldlen), newlen - oldlen, m.last_prot)) {
			err = errno;
			anon_release(old + oldlen, old + newlen);
			return fail(err);
		}
		return (void *)old;
	}
	if (!(flags & MREMAP_MAYMOVE))
		return fail(ENOMEM);
	lock();
	err = shim_arena_alloc(&anon_arena, newlen, 0, &m.new);
	unlock();
	if (err) {
		WARN_ONCE("mremap: the anonymous region has no room for %llu KiB; returning "
			  "ENOMEM", (unsigned long long)(newlen >> 10));
		return fail(ENOMEM);
	}
	err = maps_walk(old, old + oldlen, move_fn, &m);
	if (err) {
		shim_warn("mremap: cannot move %#lx-%#lx: %s", (unsigned long)old,
			  (unsigned long)(old + oldlen), strerrordesc_np(-err));
		anon_release(m.new, m.new + newlen);
		return fail(ENOMEM);
	}
	if (m.last_prot != PROT_NONE &&
	    shim_sys_mprotect((void *)(m.new + oldlen), newlen - oldlen, m.last_prot))
		shim_warn("mremap: mprotect of the grown tail: %s", strerrordesc_np(errno));
	anon_release(old, old + oldlen);
	return (void *)m.new;
}

void *mremap(void *old_address, size_t old_size, size_t new_size, int flags, ...)
{
	uint64_t old = (uint64_t)old_address, ro, rn, na = 0, pe;
	void *new_address = NULL;
	struct shim_region *r;

	if (flags & MREMAP_FIXED) {
		va_list ap;

		va_start(ap, flags);
		new_address = va_arg(ap, void *);
		va_end(ap);
		na = (uint64_t)new_address;
	}
	if (!managed() || (old & (PAGE - 1)) || !page_round(old_size, &ro) ||
	    !page_round(new_size, &rn) || old + ro < old || new_size == 0)
		return shim_sys_mremap(old_address, old_size, new_size, flags, new_address);
	r = next_piece(old, old + (ro ? ro : PAGE), &pe);
	if (!r && pe == old + (ro ? ro : PAGE)) {	/* the old range is outside every region */
		if ((flags & MREMAP_FIXED) && na + rn > na && overlaps_region(na, na + rn)) {
			WARN_ONCE("mremap(MREMAP_FIXED) onto the pager's memory at %#lx is not "
				  "supported; returning EINVAL", (unsigned long)na);
			return fail(EINVAL);
		}
		return shim_sys_mremap(old_address, old_size, new_size, flags, new_address);
	}
	if (r == anon && ro > 0 && in_anon(old, old + ro) &&
	    !(flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)))
		return anon_mremap(old, ro, rn, flags);
	WARN_ONCE_KIND(r, "mremap(%#lx, %zu) of the pager's %s region is not supported; returning "
		  "EINVAL", (unsigned long)old, old_size, r ? kind_name(r) : "memory");
	return fail(EINVAL);
}

/* ---- madvise, msync ---- */

int madvise(void *addr, size_t len, int advice)
{
	uint64_t s = (uint64_t)addr, rlen, e, pe;
	int ret = 0;

	if (!managed() || (s & (PAGE - 1)) || len == 0 || !page_round(len, &rlen) ||
	    s + rlen < s || !overlaps_region(s, s + rlen))
		return shim_sys_madvise(addr, len, advice);
	e = s + rlen;
	for (uint64_t p = s; p < e; p = pe) {
		struct shim_region *r = next_piece(p, e, &pe);
		int err = 0;

		if (!r) {
			err = shim_sys_madvise((void *)p, pe - p, advice) ? -errno : 0;
		} else if (advice == MADV_DONTNEED || advice == MADV_FREE ||
			   advice == MADV_REMOVE || advice == MADV_DONTNEED_LOCKED) {
			/* a FILE region's pages are written back, not lost */
			if (r->kind != RL_REGION_FILE || !detached())
				err = zero_range(r, p, pe);
			else
				err = shim_sys_madvise((void *)p, pe - p, advice) ? -errno : 0;
		} else if (advice == MADV_DOFORK || advice == MADV_HUGEPAGE ||
			   advice == MADV_COLLAPSE) {
			/* ignored: DOFORK would share the memfd with children behind
			 * the fork snapshot; huge-page collapse of a shmem range can
			 * fill its holes without a userfault */
		} else {
			err = shim_sys_madvise((void *)p, pe - p, advice) ? -errno : 0;
		}
		if (err && !ret)
			ret = err;
	}
	return ret ? fail_int(-ret) : 0;
}

int msync(void *addr, size_t len, int flags)
{
	uint64_t s = (uint64_t)addr, rlen, e, pe;
	int ret = 0;

	if (!managed() || (s & (PAGE - 1)) || (flags & ~(MS_ASYNC | MS_SYNC | MS_INVALIDATE)) ||
	    ((flags & MS_ASYNC) && (flags & MS_SYNC)) || len == 0 ||
	    !page_round(len, &rlen) || s + rlen < s || detached() ||
	    !overlaps_region(s, s + rlen))
		return shim_sys_msync(addr, len, flags);
	e = s + rlen;
	for (uint64_t p = s; p < e; p = pe) {
		struct shim_region *r = next_piece(p, e, &pe);
		int err = 0;

		if (!r)
			err = shim_sys_msync((void *)p, pe - p, flags) ? -errno : 0;
		else if (r->kind == RL_REGION_FILE && (flags & MS_SYNC))
			err = shim_region_sync(r, p, pe - p);
		/* MS_ASYNC: dirty pages are already the daemon's to write back;
		 * anonymous regions have nothing to sync */
		if (err && !ret)
			ret = err;
	}
	return ret ? fail_int(-ret) : 0;
}

/* ---- init, and the fork child ---- */

void shim_mmap_init(void)
{
	const char *env = getenv("RECLAIMLAB_ANON_SIZE");
	uint64_t size = ANON_DEFAULT_SIZE;
	struct shim_region *r;
	void *meta;
	int err;

	if (env)
		size = shim_parse_size("RECLAIMLAB_ANON_SIZE", env);
	if (env && ((size && !page_round(size, &size)) || size > RL_REGION_MAX))
		shim_die("RECLAIMLAB_ANON_SIZE=%s: not a size up to 1T (e.g. 64G, 512M; 0 = "
			 "leave anonymous maps to the kernel)", env);
	if (size == 0)
		return;
	meta = shim_sys_mmap(NULL, META_BYTES, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (meta == MAP_FAILED) {
		shim_warn("cannot map %llu KiB for the anonymous region's table: %s; anonymous "
			  "maps are NOT paged", META_BYTES >> 10, strerrordesc_np(errno));
		return;
	}
	file_meta = meta;
	err = shim_region_new(size, ANON_ALIGN, RL_REGION_ANON, 0, 0, -1, PROT_NONE, &r);
	if (err) {
		shim_warn("cannot make the anonymous region (%llu MiB): %s; anonymous maps are "
			  "NOT paged", (unsigned long long)(size >> 20), strerrordesc_np(-err));
		return;
	}
	prot_recs = (void *)((char *)meta + FILE_META_BYTES);
	err = shim_arena_init(&anon_arena, r->start, r->len,
			      (char *)meta + FILE_META_BYTES + PROT_META_BYTES,
			      META_BYTES - FILE_META_BYTES - PROT_META_BYTES);
	if (err)
		shim_die("anonymous region %#lx+%#lx: bad range for its allocator",
			 (unsigned long)r->start, (unsigned long)r->len);
	anon = r;
}

void shim_mmap_detach(void)
{
	/* the child has one thread: whoever held the lock is not here */
	pthread_mutex_init(&mm_lock, NULL);
	if (!anon)
		return;
	for (size_t i = 0; i < nprot_recs; i++)
		if (shim_sys_mprotect((void *)prot_recs[i].s, prot_recs[i].e - prot_recs[i].s,
				      prot_recs[i].prot))
			shim_warn("fork child: cannot restore protection %#x at %#lx: %s",
				  prot_recs[i].prot, (unsigned long)prot_recs[i].s,
				  strerrordesc_np(errno));
	if (prot_recs_lost)
		shim_warn("fork child: some memory protections of the parent's anonymous maps "
			  "were not recorded; they are read-write here");
	/* untaken space must fault again */
	for (size_t i = 0; i < anon_arena.n; i++) {
		uint64_t s = anon_arena.base + anon_arena.ext[i].first * PAGE;
		uint64_t n = anon_arena.ext[i].npages * PAGE;

		if (shim_sys_mprotect((void *)s, n, PROT_NONE))
			shim_warn("fork child: mprotect of free anonymous space: %s",
				  strerrordesc_np(errno));
	}
}
