/* SPDX-License-Identifier: MIT */
/*
 * The daemon's insides, shared by daemon.c/client.c (connections, threads)
 * and fault.c/frame.c/region.c (memory management). Not for the harness.
 *
 * Locking: one pager lock (p->lock) protects the pool of frames (p->pgdat:
 * free list, LRU lists, page states, reclaim's counters), every page table
 * entry, every client's region map, the sessions and the counters. It is
 * never held across IO or a userfaultfd ioctl: a page being filled,
 * written back, evicted or copied is marked RL_PTE_BUSY (the kernel's
 * PG_locked), a page under writeback PG_writeback, and others wait on
 * p->page_wait. kswapd, the flusher and the writeback workers (reclaim/)
 * take the same lock.
 */
#ifndef RECLAIMLAB_PAGER_INT_H
#define RECLAIMLAB_PAGER_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pager/aops.h"
#include "pager/pager.h"
#include "pager/proto.h"
#include "pager/region.h"
#include "reclaim/pgdat.h"

struct rl_session {
	char name[RL_SESSION_LEN];
	struct rl_counters c;
	uint64_t live;			/* connected clients of the session */
	struct rl_session *next;
};

struct rl_client {
	uint32_t id;
	int refs;			/* under p->lock; the table holds one */
	pid_t pid;			/* from SO_PEERCRED, checked against HELLO */
	int pidfd;			/* to stop it for sure (pidfd_send_signal) */
	int sock;
	int uffd;			/* -1 until HELLO */
	int errfd;			/* dup of the client's stderr, for messages */
	char comm[RL_COMM_LEN];
	struct rl_session *sess;
	struct rl_region_map regions;
	bool dead;			/* being torn down or killed: serve nothing */
	struct rl_counters c;		/* this client's own (for its line when it leaves) */
	struct rl_client *next;		/* p->clients */
};

struct rl_pager {
	struct rl_pager_config cfg;
	pthread_mutex_t lock;
	pthread_cond_t page_wait;	/* a BUSY page went idle, writeback ended, a frame was freed */
	struct rl_pgdat pgdat;		/* the frames: --mem / 4096 of them */
	struct rl_backend anon_backend;	/* cfg->backend, for HEAP and ANON regions */
	struct rl_backend file_backend;	/* deepfs, for FILE regions */
	struct rl_counters total;
	struct rl_session *sessions;
	struct rl_client *clients;
	uint32_t next_client_id, next_region_id;
	/* daemon.c's own state */
	int listen_fd, ctl_epfd, fault_epfd, stop_efd;
	pthread_t ctl_thread;
	pthread_t *workers;
	unsigned nr_workers;
	bool stopping;
	pthread_cond_t idle_wait;	/* a session's live count dropped, a connection ended */
	unsigned nr_conns;		/* connection threads running */
};

/* Counts n events of `field` for cl, its session and the whole daemon (p->lock held). */
#define RL_COUNT(p, cl, field, n) do {				\
		(p)->total.field += (n);			\
		if (cl) {					\
			(cl)->c.field += (n);			\
			if ((cl)->sess)				\
				(cl)->sess->c.field += (n);	\
		}						\
	} while (0)

/*
 * client.c: stops a client that cannot be served correctly. Writes
 * "reclaimlab: pager: COMM[PID]: <why>; stopping it" on its stderr (and the
 * daemon's unless quiet), SIGKILLs it through its pidfd and marks it dead.
 * Callable with or without p->lock (pass locked accordingly).
 */
void rl_client_kill(struct rl_pager *p, struct rl_client *cl, bool locked,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void rl_client_get(struct rl_client *cl);		/* p->lock held */
void rl_client_put(struct rl_pager *p, struct rl_client *cl);	/* p->lock held */

/* Between daemon.c and client.c. */
/* A new connection: takes sock, serves it on its own thread (p->nr_conns). */
void rl_conn_start(struct rl_pager *p, int sock);
/* The client with this id, or NULL (p->lock held). */
struct rl_client *rl_client_lookup(struct rl_pager *p, uint32_t id);
/* Stops serving cl: a message on its stderr, its socket shut down, so its
 * connection thread tears it down and its watchdog stops it (p->lock held). */
void rl_client_disconnect(struct rl_pager *p, struct rl_client *cl, const char *why);
/* The session of this name, or NULL (p->lock held). */
struct rl_session *rl_session_find(struct rl_pager *p, const char *name);
/* pager/mapping.c: makes r->mapping reclaim's handle on r's pages. */
void rl_region_mapping_init(struct rl_pager *p, struct rl_region *r);
/* The region a mapping belongs to. */
static inline struct rl_region *rl_mapping_region(struct rl_mapping *m)
{
	return (struct rl_region *)((char *)m - offsetof(struct rl_region, mapping));
}
/* unlock_page: clears the pte's BUSY (PG_locked) and wakes its waiters (p->lock held). */
static inline void rl_pte_unbusy(struct rl_pager *p, struct rl_pte *pte)
{
	pte->flags &= ~RL_PTE_BUSY;
	pthread_cond_broadcast(&p->page_wait);
}
/* Page index of the backing object for page index of r: a FILE region
 * starts at its file offset, an anonymous region at 0. */
static inline uint64_t rl_backing_pgoff(const struct rl_region *r, uint64_t index)
{
	return r->kind == RL_REGION_FILE ? r->file_pgoff + index : index;
}
/* Frees a region whose backing was released (range.c). */
void rl_region_free(struct rl_region *r);

/* rl_pager_get_counters with p->lock held. */
void rl_pager_counters_locked(struct rl_pager *p, const char *session, struct rl_counters *c);

#endif
