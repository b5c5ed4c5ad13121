/* SPDX-License-Identifier: MIT */
/*
 * fork(): the child leaves the pager with a private copy of every region.
 *
 * The regions are MAP_SHARED memfds served by the daemon: a child that kept
 * them would allocate from the parent's heap (bash crashes within a few
 * forks), and since the child's copy of a VMA loses the userfaultfd
 * registration, it would read zeroes where pages were evicted. So before
 * the real fork the daemon copies each anonymous region, resident and
 * evicted pages alike, into a new memfd (SNAPSHOT), and FILE regions are
 * written back (SYNC). The regions are MADV_DONTFORK, so the child starts
 * without them; it maps each snapshot MAP_PRIVATE at the region's address
 * (a FILE region: the file itself, MAP_SHARED), drops the daemon socket,
 * the uffd and the memfds, and runs DETACHED. Its own children simply
 * inherit private memory.
 *
 * The child side runs in a pthread_atfork child handler, registered at
 * load, so that it comes before handlers registered later and before fork
 * returns; or earlier, from the SIGSEGV handler (shim_segv.c), when glibc's
 * own fork-child code touches the heap first (its NSS state, other threads'
 * thread-specific data: a process that ever had two threads, as every
 * client has). The prepare handler also snapshots for forks that bypass this
 * wrapper (glibc-internal ones such as daemon(3)); there a failure can
 * only stop the program, while the wrapper can fail fork with ENOMEM.
 *
 * Honest limits:
 * - The snapshot is not atomic like kernel COW: what other threads of the
 *   parent write, and what atfork prepare handlers registered before ours
 *   (which run after it) change, between the SNAPSHOT and the real fork is
 *   not in the child. Single-threaded forkers (shells, make) are exact.
 * - glibc's fork walks the list of open FILEs in the child of a process
 *   that has ever had threads (the watchdog makes every client one) to
 *   reset their locks, before any handler runs and so before the child has
 *   its heap, where fopen put them: SIGSEGV. So across the fork the list
 *   head is moved past the heap FILEs (fopen links new FILEs at the head,
 *   ahead of the static stdin/stdout/stderr), under glibc's own list lock;
 *   the child resets their locks itself once its heap is mapped. This
 *   uses glibc's exported _IO_list_all/_IO_list_lock; a FILE list whose
 *   heap entries are not all at the head is left alone (and the child
 *   would crash: never seen, since fopen only prepends).
 * - _Fork() and raw clone() run no handlers: such a child has no regions
 *   and gets SIGSEGV on its first heap access (never shared or zero pages).
 * - A FILE region reaches the child as the file itself: after the fork,
 *   the parent's writes (pager memory) and the child's (the file's page
 *   cache) meet only when written back, not at once as MAP_SHARED would.
 * - The anon region is mapped PROT_READ|PROT_WRITE as a whole in the child;
 *   shim_mmap_detach() restores narrower protections it knows of.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pager/shim/shim.h"

#define PG	4096ull

struct snap {
	int slot;
	uint32_t id;
	int fd;			/* the snapshot memfd; -1 for FILE regions */
};

/* fork_lock serialises forks; it protects everything below. */
static pthread_mutex_t fork_lock = PTHREAD_MUTEX_INITIALIZER;
static struct snap snaps[SHIM_MAX_REGIONS];
static int nsnaps;
static bool armed;			/* snaps[] are ready for a child */
static pid_t armed_by;			/* the parent that armed them */
static bool detached;			/* this child mapped them; FILEs not yet restored */
static __thread bool in_wrapper;	/* this thread's fork() came through us */
static __thread bool prepared;		/* this thread's prepare handler armed */
static FILE *files_head;		/* the real head of glibc's FILE list */
static FILE *files_kept;		/* the head the child's glibc walks */

/* glibc's FILE list (exported since 2.2.5, not declared in any header). */
extern FILE *_IO_list_all;
extern void _IO_list_lock(void);
extern void _IO_list_unlock(void);

/* The layout of glibc's _IO_lock_t, which it resets in fork children. */
struct io_lock {
	int lock, cnt;
	void *owner;
};

/* Takes glibc's list lock (recursive: fork takes it again) until
 * files_restore_*; the child's glibc then sees only FILEs outside the
 * regions. Before the snapshot, so no fopen or fclose runs meanwhile. */
static void files_hide(void)
{
	_IO_list_lock();
	files_head = _IO_list_all;
	FILE *f = files_head;
	while (f && shim_region_find((uintptr_t)f))
		f = f->_chain;
	for (FILE *g = f; g; g = g->_chain) {
		if (shim_region_find((uintptr_t)g)) {
			f = files_head;
			break;
		}
	}
	files_kept = f;
	_IO_list_all = files_kept;
}

static void files_restore_parent(void)
{
	_IO_list_all = files_head;
	_IO_list_unlock();
}

/* After the snapshots are mapped: do for the hidden FILEs what glibc did
 * for the others (a parent thread may have held their locks); glibc has
 * already reset the list lock itself. */
static void files_restore_child(void)
{
	for (FILE *f = files_head; f && f != files_kept; f = f->_chain)
		if (!(f->_flags & _IO_USER_LOCK) && f->_lock)
			memset(f->_lock, 0, sizeof(struct io_lock));
	_IO_list_all = files_head;
}

static void release_snapshots(void)
{
	for (int i = 0; i < nsnaps; i++)
		if (snaps[i].fd >= 0)
			close(snaps[i].fd);
	nsnaps = 0;
	armed = false;
}

static int snapshot_region(struct shim_region *r, int fd)
{
	struct rl_msg req, reply;

	if (ftruncate(fd, (off_t)r->len) < 0)
		return -errno;
	memset(&req, 0, sizeof(req));
	req.u.range.region_id = r->id;
	req.u.range.first = 0;
	req.u.range.npages = r->len / PG;
	req.fds[0] = fd;
	return shim_call(&req, RL_MSG_SNAPSHOT, sizeof(req.u.range), 1, &reply);
}

/* Under fork_lock. Returns 0 with snaps[] filled, or -errno with none. */
static int take_snapshots(void)
{
	int rc = 0;

	nsnaps = 0;
	shim_in_alloc++;
	pthread_mutex_lock(&shim.regions_lock);
	for (int i = 0; i < SHIM_MAX_REGIONS && rc == 0; i++) {
		struct shim_region *r = &shim.regions[i];
		if (!r->used)
			continue;
		struct snap *s = &snaps[nsnaps++];
		*s = (struct snap){ .slot = i, .id = r->id, .fd = -1 };
		if (r->kind == RL_REGION_FILE) {
			rc = shim_region_sync(r, r->start, r->len);
			continue;
		}
		s->fd = memfd_create("rl-snap", MFD_CLOEXEC);
		rc = s->fd < 0 ? -errno : snapshot_region(r, s->fd);
	}
	pthread_mutex_unlock(&shim.regions_lock);
	shim_in_alloc--;
	if (rc < 0) {
		release_snapshots();
	} else {
		armed = true;
		armed_by = getpid();
	}
	return rc;
}

/* In the child, before anything else there touches a region. */
static void detach_child(void)
{
	bool kept[SHIM_MAX_REGIONS] = { false };

	for (int i = 0; i < nsnaps; i++) {
		struct snap *s = &snaps[i];
		struct shim_region *r = &shim.regions[s->slot];
		void *want = (void *)(uintptr_t)r->start, *p;

		if (!r->used || r->id != s->id) {
			if (s->fd >= 0)
				close(s->fd);
			continue;
		}
		if (r->kind == RL_REGION_FILE)
			p = shim_sys_mmap(want, r->len, r->prot, MAP_SHARED | MAP_FIXED,
					  r->filefd, (off_t)(r->pgoff * PG));
		else
			p = shim_sys_mmap(want, r->len, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, s->fd, 0);
		if (p != want)
			shim_die("fork child: cannot map the copy of a %s region (%llu MiB at %p): %s",
				 r->kind == RL_REGION_FILE ? "file" : "memory",
				 (unsigned long long)(r->len >> 20), want, strerrordesc_np(errno));
		if (s->fd >= 0)
			close(s->fd);
		kept[s->slot] = true;
	}
	nsnaps = 0;
	armed = false;
	detached = true;
	for (int i = 0; i < SHIM_MAX_REGIONS; i++) {
		struct shim_region *r = &shim.regions[i];
		if (!r->used)
			continue;
		if (r->memfd >= 0)
			close(r->memfd);
		if (r->filefd >= 0)
			close(r->filefd);
		r->memfd = r->filefd = -1;
		/* Made after the snapshot: DONTFORK left nothing of it here. */
		if (!kept[i]) {
			memset(r, 0, sizeof(*r));
			r->memfd = r->filefd = -1;
		}
	}
	close(shim.sock);
	close(shim.uffd);
	shim.sock = shim.uffd = -1;
	/* Other parent threads may have held these; they do not exist here. */
	pthread_mutex_init(&shim.call_lock, NULL);
	pthread_mutex_init(&shim.regions_lock, NULL);
	pthread_mutex_init(&fork_lock, NULL);
	__atomic_store_n(&shim.mode, SHIM_DETACHED, __ATOMIC_RELEASE);
	shim_mmap_detach();
}

/* A signal handler's view: getpid() is a system call, and in the child
 * armed is still set (detach_child clears it). */
bool shim_fork_child_fault(uint64_t addr)
{
	if (!armed || getpid() == armed_by)
		return false;
	for (int i = 0; i < nsnaps; i++) {
		const struct shim_region *r = &shim.regions[snaps[i].slot];

		if (r->used && addr >= r->start && addr - r->start < r->len) {
			detach_child();
			return true;
		}
	}
	return false;
}

static void atfork_prepare(void)
{
	if (in_wrapper || __atomic_load_n(&shim.mode, __ATOMIC_ACQUIRE) != SHIM_PAGED)
		return;
	pthread_mutex_lock(&fork_lock);
	files_hide();
	int rc = take_snapshots();
	if (rc < 0)
		shim_die("fork (from inside the C library) cannot copy the pager regions "
			 "for the child: %s; stopping", strerrordesc_np(-rc));
	prepared = true;
	shim_segv_fork_begin();
}

static void atfork_parent(void)
{
	if (in_wrapper || !prepared)
		return;
	prepared = false;
	shim_segv_fork_end();
	files_restore_parent();
	release_snapshots();
	pthread_mutex_unlock(&fork_lock);
}

static void atfork_child(void)
{
	if (armed)
		detach_child();
	if (detached) {
		detached = false;
		files_restore_child();
	}
	if (prepared) {
		prepared = false;
		shim_segv_fork_end();
	}
}

__attribute__((constructor(101))) static void shim_fork_register(void)
{
	int rc = pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	if (rc != 0)
		shim_die("pthread_atfork: %s", strerrordesc_np(rc));
}

typedef pid_t (*fork_fn)(void);

static fork_fn real_fork(void)
{
	static fork_fn fn;
	fork_fn f = __atomic_load_n(&fn, __ATOMIC_ACQUIRE);

	if (!f) {
		/* Lazily: dlsym allocates, which needs a working heap. */
		f = (fork_fn)dlsym(RTLD_NEXT, "fork");
		if (!f)
			shim_die("cannot find the C library's fork: %s", dlerror());
		__atomic_store_n(&fn, f, __ATOMIC_RELEASE);
	}
	return f;
}

pid_t fork(void)
{
	fork_fn f = real_fork();

	if (__atomic_load_n(&shim.mode, __ATOMIC_ACQUIRE) != SHIM_PAGED)
		return f();
	pthread_mutex_lock(&fork_lock);
	files_hide();
	int rc = take_snapshots();
	if (rc < 0) {
		files_restore_parent();
		pthread_mutex_unlock(&fork_lock);
		shim_warn("fork: cannot copy the pager regions for the child: %s",
			  strerrordesc_np(-rc));
		errno = ENOMEM;
		return -1;
	}
	in_wrapper = true;
	shim_segv_fork_begin();
	pid_t pid = f();
	int e = errno;
	shim_segv_fork_end();
	in_wrapper = false;
	if (pid == 0)
		return 0;	/* detached by atfork_child or the SIGSEGV handler */
	files_restore_parent();
	release_snapshots();
	pthread_mutex_unlock(&fork_lock);
	errno = e;
	return pid;
}
