/* SPDX-License-Identifier: MIT */
/*
 * Regions: memfd-backed, aligned, MAP_SHARED ranges of the program's address
 * space, registered MISSING|WP on the shim's userfaultfd and announced to the
 * daemon, which serves every fault in them through its own mapping of the
 * same memfd.
 *
 * MADV_DONTFORK: a child that got past shim_fork.c without a snapshot must
 * fault (SIGSEGV) rather than share the parent's pages or read zeroes from an
 * unregistered copy of the mapping.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pager/shim/shim.h"

#define PG		4096ull
/* Out of the way of scripts' `exec 3>file` (as in shim.c). */
#define SHIM_FD_BASE	900
#define PG_UP(x)	(((x) + PG - 1) & ~(PG - 1))

static const char *const memfd_names[] = {
	[RL_REGION_HEAP] = "rl-heap",
	[RL_REGION_ANON] = "rl-anon",
	[RL_REGION_FILE] = "rl-file",
};

/* Slot 0 is the heap and 1 the anon region; FILE regions take the rest. */
static struct shim_region *pick_slot(uint32_t kind)
{
	if (kind == RL_REGION_HEAP)
		return shim.regions[0].used ? NULL : &shim.regions[0];
	if (kind == RL_REGION_ANON)
		return shim.regions[1].used ? NULL : &shim.regions[1];
	for (int i = 2; i < SHIM_MAX_REGIONS; i++)
		if (!shim.regions[i].used)
			return &shim.regions[i];
	return NULL;
}

/* Maps memfd at a len-sized, align-aligned place; returns the address or
 * MAP_FAILED with errno set. */
static void *map_aligned(int memfd, uint64_t len, uint64_t align, int prot)
{
	/* Reserve len + align of PROT_NONE, place the memfd at the aligned
	 * address inside it, and give back the slack on both sides. */
	char *res = shim_sys_mmap(NULL, len + align, PROT_NONE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		return MAP_FAILED;
	char *at = (char *)(((uintptr_t)res + align - 1) & ~(uintptr_t)(align - 1));
	char *p = shim_sys_mmap(at, len, prot, MAP_SHARED | MAP_FIXED | MAP_NORESERVE, memfd, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		shim_sys_munmap(res, len + align);
		errno = e;
		return MAP_FAILED;
	}
	if (at > res)
		shim_sys_munmap(res, (size_t)(at - res));
	if (res + len + align > at + len)
		shim_sys_munmap(at + len, (size_t)(res + len + align - (at + len)));
	return at;
}

static int register_uffd(uint64_t start, uint64_t len)
{
	struct uffdio_register reg = {
		.range = { .start = start, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
	};
	const uint64_t need = (1ull << _UFFDIO_COPY) | (1ull << _UFFDIO_WRITEPROTECT);

	if (ioctl(shim.uffd, UFFDIO_REGISTER, &reg) < 0)
		return -errno;
	/* The daemon resolves faults with COPY and tracks dirtiness with
	 * WRITEPROTECT: a range that lacks either cannot be paged. */
	if ((reg.ioctls & need) != need)
		return -EOPNOTSUPP;
	return 0;
}

int shim_region_new(uint64_t len, uint64_t align, uint32_t kind, uint64_t ino, uint64_t pgoff,
		    int filefd, int prot, struct shim_region **out)
{
	struct shim_region *r;
	int memfd = -1, dupfd = -1, rc;
	void *at = MAP_FAILED;

	len = PG_UP(len);
	if (align < PG)
		align = PG;
	if (len == 0 || len > RL_REGION_MAX || (align & (align - 1)) ||
	    kind < RL_REGION_HEAP || kind > RL_REGION_FILE || (kind == RL_REGION_FILE && filefd < 0))
		return -EINVAL;
	if (shim.mode != SHIM_INITING && shim.mode != SHIM_PAGED)
		return -ENOTCONN;

	shim_in_alloc++;
	pthread_mutex_lock(&shim.regions_lock);
	r = pick_slot(kind);
	if (!r) {
		rc = kind == RL_REGION_FILE ? -EMFILE : -EEXIST;
		goto out;
	}
	memfd = memfd_create(memfd_names[kind], MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (memfd < 0 || ftruncate(memfd, (off_t)len) < 0) {
		rc = -errno;
		goto out;
	}
	int high = fcntl(memfd, F_DUPFD_CLOEXEC, SHIM_FD_BASE);
	if (high >= 0) {
		close(memfd);
		memfd = high;
	}
	if (kind == RL_REGION_FILE) {
		dupfd = fcntl(filefd, F_DUPFD_CLOEXEC, SHIM_FD_BASE);
		if (dupfd < 0)
			dupfd = fcntl(filefd, F_DUPFD_CLOEXEC, 3);
		if (dupfd < 0) {
			rc = -errno;
			goto out;
		}
	}
	at = map_aligned(memfd, len, align, prot);
	if (at == MAP_FAILED) {
		rc = -errno;
		goto out;
	}
	if (shim_sys_madvise(at, len, MADV_DONTFORK) < 0) {
		rc = -errno;
		goto out;
	}
	rc = register_uffd((uintptr_t)at, len);
	if (rc < 0)
		goto out;

	struct rl_msg req, reply;
	memset(&req, 0, sizeof(req));
	req.u.region_add.start = (uintptr_t)at;
	req.u.region_add.len = len;
	req.u.region_add.kind = kind;
	req.u.region_add.file_ino = ino;
	req.u.region_add.file_pgoff = pgoff;
	req.fds[0] = memfd;
	rc = shim_call(&req, RL_MSG_REGION_ADD, sizeof(req.u.region_add), 1, &reply);
	if (rc < 0)
		goto out;

	*r = (struct shim_region){
		.used = true,
		.id = reply.u.region_reply.region_id,
		.kind = kind,
		.start = (uintptr_t)at,
		.len = len,
		.memfd = memfd,
		.filefd = dupfd,
		.ino = ino,
		.pgoff = pgoff,
		.prot = prot,
		.flags = MAP_SHARED,
	};
	*out = r;
	rc = 0;
out:
	if (rc < 0) {
		/* munmap also drops the userfaultfd registration. */
		if (at != MAP_FAILED)
			shim_sys_munmap(at, len);
		if (memfd >= 0)
			close(memfd);
		if (dupfd >= 0)
			close(dupfd);
	}
	pthread_mutex_unlock(&shim.regions_lock);
	shim_in_alloc--;
	return rc;
}

/* REGION_DEL, DISCARD or SYNC of pages [first, first + npages) of r. */
static int range_call(struct shim_region *r, uint16_t type, uint64_t first, uint64_t npages)
{
	struct rl_msg req, reply;

	memset(&req, 0, sizeof(req));
	req.u.range.region_id = r->id;
	req.u.range.first = first;
	req.u.range.npages = npages;
	return shim_call(&req, type, sizeof(req.u.range), 0, &reply);
}

int shim_region_drop(struct shim_region *r)
{
	int rc = 0;

	shim_in_alloc++;
	pthread_mutex_lock(&shim.regions_lock);
	if (!r->used) {
		rc = -EINVAL;
		goto out;
	}
	/* The daemon is told first: it may still write back or evict pages
	 * of this region through the client's mapping. */
	if (shim.mode == SHIM_PAGED)
		rc = range_call(r, RL_MSG_REGION_DEL, 0, r->len / PG);
	shim_sys_munmap((void *)(uintptr_t)r->start, r->len);
	if (r->memfd >= 0)
		close(r->memfd);
	if (r->filefd >= 0)
		close(r->filefd);
	memset(r, 0, sizeof(*r));
	r->memfd = r->filefd = -1;
out:
	pthread_mutex_unlock(&shim.regions_lock);
	shim_in_alloc--;
	return rc;
}

struct shim_region *shim_region_find(uint64_t addr)
{
	struct shim_region *found = NULL;

	pthread_mutex_lock(&shim.regions_lock);
	for (int i = 0; i < SHIM_MAX_REGIONS; i++) {
		struct shim_region *r = &shim.regions[i];
		if (r->used && addr >= r->start && addr - r->start < r->len) {
			found = r;
			break;
		}
	}
	pthread_mutex_unlock(&shim.regions_lock);
	return found;
}

/* Page range [first, first+npages) of r covering [addr, addr+len), clipped
 * to the region; -EINVAL if addr is outside it. */
static int to_pages(struct shim_region *r, uint64_t addr, uint64_t len,
		    uint64_t *first, uint64_t *npages)
{
	if (!r->used || addr < r->start || addr - r->start >= r->len)
		return -EINVAL;
	uint64_t off = (addr - r->start) & ~(PG - 1);
	uint64_t end = addr - r->start + len;
	if (end < len || end > r->len)
		end = r->len;
	end = PG_UP(end);
	*first = off / PG;
	*npages = end > off ? (end - off) / PG : 0;
	return 0;
}

/* In a DETACHED child the regions are private memory with no daemon: the
 * caller's own munmap/madvise/msync is all there is to do. */
static int range_request(struct shim_region *r, uint16_t type, uint64_t addr, uint64_t len)
{
	uint64_t first, npages;
	int rc = to_pages(r, addr, len, &first, &npages);

	if (rc < 0 || npages == 0 || shim.mode != SHIM_PAGED)
		return rc;
	return range_call(r, type, first, npages);
}

int shim_region_discard(struct shim_region *r, uint64_t addr, uint64_t len)
{
	return range_request(r, RL_MSG_DISCARD, addr, len);
}

int shim_region_sync(struct shim_region *r, uint64_t addr, uint64_t len)
{
	return range_request(r, RL_MSG_SYNC, addr, len);
}
