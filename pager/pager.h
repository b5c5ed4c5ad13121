/* SPDX-License-Identifier: MIT */
/*
 * The userfaultfd pager daemon (`reclaimlab serve`), as a library the
 * harness starts. Programs run under it with the preloaded shim
 * (pager/shim/): their heap, anonymous mmaps and shared mappings of files on
 * the deepfs mount are memfd regions registered MISSING|WP on a userfaultfd
 * the daemon serves. The daemon holds at most cfg->mem_bytes of client pages
 * resident, across all clients; the rest lives in the backing store, reached
 * only through an a_ops table (aops.h).
 *
 * The mechanism and why: docs/pager.md.
 */
#ifndef RECLAIMLAB_PAGER_H
#define RECLAIMLAB_PAGER_H

#include <stdbool.h>
#include <stdint.h>

#include "pager/proto.h"
#include "reclaim/pgdat.h"

struct dfs_mount;
struct rl_pager;

enum rl_backend_kind {
	RL_BACKEND_DEEPFS,	/* an unlinked deepfs inode per anonymous region */
	RL_BACKEND_FILE,	/* an unlinked plain file per region, on the host fs */
};

/* Below this, a few busy pages per fault thread could exhaust the frames. */
#define RL_PAGER_MIN_MEM	(4ull << 20)

struct rl_pager_config {
	uint64_t mem_bytes;		/* the budget, >= RL_PAGER_MIN_MEM */
	const char *socket_path;	/* created 0600; must not exist (or be stale) */
	/* Reclaim: policy, --wb mode, dirty limits, watermarks (reclaim/pgdat.h);
	 * nr_pages, lock, wait and threads are the daemon's to set. */
	struct rl_reclaim_config reclaim;
	enum rl_backend_kind backend;
	struct dfs_mount *mp;		/* required: deepfs backend and file regions */
	uint64_t mount_dev;		/* st_dev of the FUSE mount (file regions), 0 = none */
	const char *backing_dir;	/* RL_BACKEND_FILE: directory of its files */
	bool verify;			/* CRC32C every page at writeback, check at read-in */
	unsigned nr_workers;		/* fault threads; 0 = 2 */
	bool quiet;			/* no per-client messages on stderr */
	/*
	 * Called (without the pager lock) after a page of a FILE region was
	 * written into its file, so that a cache in front of the same file (the
	 * kernel's FUSE page cache) can drop its stale copy; NULL = none.
	 */
	void (*file_written)(void *arg, uint64_t ino, uint64_t off, uint64_t len);
	void *file_written_arg;
};

/*
 * Validates cfg (clear message on stderr and -EINVAL for a bad one), binds
 * and listens on the socket, starts the control thread and the fault
 * threads. Returns 0 or -errno.
 */
int rl_pager_start(const struct rl_pager_config *cfg, struct rl_pager **pp);

/* Blocks until a SHUTDOWN request arrives or rl_pager_request_stop(). */
void rl_pager_wait(struct rl_pager *p);

/* Async-signal-safe (writes an eventfd): makes rl_pager_wait return. */
void rl_pager_request_stop(struct rl_pager *p);

/*
 * Stops the threads. Clients still connected are told on their stderr that
 * the daemon stops and lose their connection, so their watchdog stops them
 * (exit 70); none ever reads a zero page in place of its data. Releases all
 * backing objects, unlinks the socket, frees p. Does not unmount mp.
 */
void rl_pager_destroy(struct rl_pager *p);

/* Counters of one session ("" or NULL: the whole daemon). */
void rl_pager_get_counters(struct rl_pager *p, const char *session, struct rl_counters *c);

/* ---- control client (`reclaimlab run`), pager/ctl.c ---- */

/* Connects to a daemon's socket: fd, or -errno (-ENOENT/-ECONNREFUSED: none). */
int rl_ctl_connect(const char *socket_path);
/* STATS request: waits up to wait_idle_ms for the session's clients to go. */
int rl_ctl_stats(int sock, const char *session, uint32_t wait_idle_ms, struct rl_counters *c);
int rl_ctl_shutdown(int sock);

/* The socket of the shared daemon of this uid:
 * $RECLAIMLAB_RUNTIME_DIR, else $XDG_RUNTIME_DIR/reclaimlab, else
 * /tmp/reclaimlab-UID; then "/pager.sock". Creates the directory 0700. */
int rl_default_socket_path(char *buf, size_t size);

#endif
