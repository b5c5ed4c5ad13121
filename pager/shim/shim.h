/* SPDX-License-Identifier: MIT */
/*
 * The client shim (librlshim.so), preloaded into every program that
 * `reclaimlab run` starts. It makes the program's memory pager memory:
 *
 *   shim.c        state, lazy init from the first malloc (or the
 *                 constructor), connection and HELLO, shim_die
 *   shim_sys.c    raw syscalls (no dlsym: dlsym itself calls calloc)
 *   shim_region.c memfd regions: reserve aligned, map, MADV_DONTFORK,
 *                 UFFDIO_REGISTER MISSING|WP, REGION_ADD
 *   shim_malloc.c the malloc family from mimalloc, confined to the heap region
 *   shim_mmap.c   mmap/mmap64/munmap/mremap/madvise/msync: anonymous maps
 *                 carved from the anon region (shim_arena.c), MAP_SHARED
 *                 maps of files on the deepfs mount as FILE regions
 *   shim_watchdog.c  a thread that stops the program when the daemon dies
 *   shim_segv.c   SIGSEGV: maps a fork child's snapshots at its first touch;
 *                 any other crash is reported, never silent
 *   shim_fork.c   fork(): the child gets private snapshots and leaves the pager
 *
 * Environment (set by `reclaimlab run`): RECLAIMLAB_SOCK (daemon socket,
 * required), RECLAIMLAB_SESSION (counters key), RECLAIMLAB_MOUNT (the deepfs
 * FUSE mount point, optional), RECLAIMLAB_HEAP_SIZE / RECLAIMLAB_ANON_SIZE
 * (region sizes, defaults 16G / 64G of address space).
 *
 * Never-zero rule: the shim never closes its userfaultfd and never touches
 * region memory on the daemon's behalf; every way it cannot go on ends in
 * shim_die (message, exit status 70).
 */
#ifndef RECLAIMLAB_SHIM_H
#define RECLAIMLAB_SHIM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pager/proto.h"

#define SHIM_EXIT_DAEMON	70		/* the status of a client stopped by the pager */
#define SHIM_REGION_ALIGN	(64ull << 20)	/* mimalloc v2 segments need 32 MiB alignment */
#define SHIM_MAX_REGIONS	256

enum shim_mode {
	SHIM_UNINIT,		/* before the first malloc */
	SHIM_INITING,		/* init in progress (on the initing thread) */
	SHIM_PAGED,		/* connected: regions are pager memory */
	SHIM_DETACHED,		/* a fork child: regions are private snapshots; no daemon */
};

struct shim_region {
	bool used;
	uint32_t id;		/* the daemon's region id */
	uint32_t kind;		/* enum rl_region_kind */
	uint64_t start, len;
	int memfd;
	/* FILE regions */
	int filefd;		/* dup of the mapped file (O_CLOEXEC), for fork */
	uint64_t ino, pgoff;
	int prot, flags;
};

struct shim_state {
	enum shim_mode mode;
	pid_t init_tid;			/* the thread running init (recursion guard) */
	int sock, uffd, errfd;		/* all O_CLOEXEC */
	pthread_mutex_t call_lock;	/* one request at a time on sock */
	uint32_t seq;
	uint64_t budget_pages;
	bool verify;
	uint64_t mount_dev;		/* st_dev of RECLAIMLAB_MOUNT; 0 = none */
	char comm[RL_COMM_LEN];
	pthread_mutex_t regions_lock;	/* regions[] (not the memory in them) */
	struct shim_region regions[SHIM_MAX_REGIONS];	/* [0] heap, [1] anon */
};

extern struct shim_state shim;
/* > 0 while inside the allocator or the shim's own bookkeeping: the mmap
 * family passes such calls straight to the kernel, unmanaged. Static TLS:
 * the shim is only ever preloaded, so no __tls_get_addr on every malloc. */
extern __thread int shim_in_alloc __attribute__((tls_model("initial-exec")));

/* Runs init once (any thread; others wait); returns with mode PAGED, or dies. */
void shim_init(void);
/* "reclaimlab: COMM[PID]: <message>" on errfd (raw write, no malloc), exit 70. */
_Noreturn void shim_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same message, no exit. */
void shim_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The value of environment variable name: digits with an optional K, M, G or
 * T; anything else stops the program with a message naming the variable. */
uint64_t shim_parse_size(const char *name, const char *s);
/* A request to the daemon under call_lock; dies on transport errors (the
 * daemon is gone). Returns 0 or -err from an RL_MSG_ERR reply. */
int shim_call(struct rl_msg *req, uint16_t type, uint16_t len, uint32_t nfds,
	      struct rl_msg *reply);

/* shim_region.c: a new region of len bytes (rounded up to pages) aligned to
 * align, registered and announced; *out points into shim.regions. For FILE,
 * ino/pgoff/filefd say which file (filefd is dup'ed). Returns 0 or -errno. */
int shim_region_new(uint64_t len, uint64_t align, uint32_t kind, uint64_t ino, uint64_t pgoff,
		    int filefd, int prot, struct shim_region **out);
/* REGION_DEL, munmap, close; the slot becomes free. */
int shim_region_drop(struct shim_region *r);
/* The region containing addr, or NULL. */
struct shim_region *shim_region_find(uint64_t addr);
/* DISCARD / SYNC of [addr, addr+len) inside r (page-rounded). */
int shim_region_discard(struct shim_region *r, uint64_t addr, uint64_t len);
int shim_region_sync(struct shim_region *r, uint64_t addr, uint64_t len);

/* shim_sys.c: raw syscalls, errno set on failure as libc does. */
void *shim_sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int shim_sys_munmap(void *addr, size_t len);
void *shim_sys_mremap(void *old, size_t oldlen, size_t newlen, int flags, void *new_addr);
int shim_sys_madvise(void *addr, size_t len, int advice);
int shim_sys_mprotect(void *addr, size_t len, int prot);
int shim_sys_msync(void *addr, size_t len, int flags);

/* shim_malloc.c: hands the heap region to mimalloc (called by shim_init). */
void shim_malloc_init(struct shim_region *heap);

/* shim_mmap.c: makes the anon region (called by shim_init after the heap);
 * in a fork child, switches the mmap family to detached behaviour. */
void shim_mmap_init(void);
void shim_mmap_detach(void);

/* shim_watchdog.c: starts the thread (from the constructor, after init). */
void shim_watchdog_start(void);
/* shim_segv.c: a SIGSEGV/SIGBUS handler that says where (unless the
 * program starts with one of its own). */
void shim_segv_install(void);
/* Around the real fork (fork_lock held), in the parent and in the child:
 * our handler in place and the two signals unblocked, then the program's
 * actions and mask back. */
void shim_segv_fork_begin(void);
void shim_segv_fork_end(void);
/* shim_fork.c, from the handler: true if this is a fork child that touched
 * a region before its snapshots were mapped, and now they are. */
bool shim_fork_child_fault(uint64_t addr);

#endif
