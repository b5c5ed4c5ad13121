/* SPDX-License-Identifier: MIT */
/*
 * The pager's wire protocol: what a client (the preloaded shim, or
 * `reclaimlab run` asking for counters) and the daemon say on the unix
 * socket. Every message is one fixed header plus a payload whose size is
 * fixed by its type; file descriptors travel as SCM_RIGHTS on the same
 * sendmsg. The daemon trusts nothing here: rl_proto_check() validates a
 * received message completely before anything else looks at it, and a
 * message that fails it gets an RL_MSG_ERR reply and the connection closed
 * (the client's watchdog then stops the client with a message).
 *
 * One request, one reply (RL_MSG_OK with the request's payload type for the
 * answer, or RL_MSG_ERR), in order, per connection. The daemon never sends
 * anything unasked.
 *
 * This file is shared by the daemon and the shim, so it uses no allocation
 * and no libc beyond sendmsg/recvmsg/memcpy.
 */
#ifndef RECLAIMLAB_PAGER_PROTO_H
#define RECLAIMLAB_PAGER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reclaim/pgdat.h"

#define RL_PROTO_MAGIC		0x47504c52u	/* "RLPG" little-endian */
#define RL_PROTO_VERSION	2
#define RL_PROTO_MAX_PAYLOAD	1024
#define RL_PROTO_MAX_FDS	2

enum rl_msg_type {
	RL_MSG_HELLO = 1,	/* client -> daemon; fds: uffd, stderr dup */
	RL_MSG_REGION_ADD,	/* fds: the region's memfd */
	RL_MSG_REGION_DEL,	/* region unmapped: write back (file), drop */
	RL_MSG_DISCARD,		/* munmap/MADV_DONTNEED: pages become zero */
	RL_MSG_SYNC,		/* msync: write back dirty pages of a range */
	RL_MSG_SNAPSHOT,	/* fork: copy a region into a new memfd; fds: it */
	RL_MSG_STATS,		/* counters of a session (from `reclaimlab run`) */
	RL_MSG_SHUTDOWN,	/* stop the daemon (private daemons of `run`) */
	RL_MSG_OK = 100,	/* daemon -> client */
	RL_MSG_ERR,
	RL_MSG_TYPE_MAX
};

struct rl_msg_hdr {
	uint32_t magic;		/* RL_PROTO_MAGIC */
	uint16_t type;		/* enum rl_msg_type */
	uint16_t len;		/* payload bytes that follow, <= RL_PROTO_MAX_PAYLOAD */
	uint32_t seq;		/* echoed in the reply */
	uint32_t nfds;		/* fds attached (must match what the type expects) */
};

#define RL_SESSION_LEN	32	/* NUL-terminated; [A-Za-z0-9_-] only */
#define RL_COMM_LEN	64	/* program name, NUL-terminated, printable */

struct rl_msg_hello {
	uint32_t version;	/* RL_PROTO_VERSION */
	int32_t  pid;		/* must equal SO_PEERCRED's pid */
	char     session[RL_SESSION_LEN];
	char     comm[RL_COMM_LEN];
	/* fds[0] = userfaultfd (API done, features WP + WP_HUGETLBFS_SHMEM),
	 * fds[1] = a dup of the client's stderr, for messages about it */
};

struct rl_msg_hello_reply {
	uint64_t budget_pages;	/* the daemon's --mem in pages */
	uint32_t flags;		/* RL_HELLO_VERIFY if --verify */
	uint32_t client_id;
};
#define RL_HELLO_VERIFY	(1u << 0)

enum rl_region_kind {
	RL_REGION_HEAP = 1,	/* the allocator's arena (anonymous) */
	RL_REGION_ANON,		/* the program's anonymous mmaps (anonymous) */
	RL_REGION_FILE,		/* MAP_SHARED mapping of a file on the deepfs mount */
};

struct rl_msg_region_add {
	uint64_t start;		/* client address, page-aligned */
	uint64_t len;		/* bytes, page multiple, > 0, <= RL_REGION_MAX */
	uint32_t kind;		/* enum rl_region_kind */
	uint32_t pad;
	uint64_t file_ino;	/* RL_REGION_FILE: deepfs inode number (st_ino) */
	uint64_t file_pgoff;	/* RL_REGION_FILE: file page of the region's first page */
	/* fds[0] = the memfd that backs [start, start+len) in the client,
	 * at memfd offset 0; already registered MISSING|WP on the client's uffd */
};
#define RL_REGION_MAX	(1ull << 40)	/* 1 TiB of address space per region */

struct rl_msg_region_reply {
	uint32_t region_id;
	uint32_t pad;
};

/* REGION_DEL, DISCARD, SYNC, SNAPSHOT */
struct rl_msg_range {
	uint32_t region_id;
	uint32_t pad;
	uint64_t first;		/* first page index in the region */
	uint64_t npages;	/* > 0 and first + npages <= region pages; ignored by DEL */
	/* SNAPSHOT: fds[0] = a memfd of the region's size; every page that is
	 * not a zero page is written into it at the same offset */
};

struct rl_msg_range_reply {
	uint64_t pages;		/* pages written back / discarded / copied */
};

struct rl_msg_stats {
	char     session[RL_SESSION_LEN];	/* "" = the whole daemon */
	uint32_t wait_idle_ms;	/* first wait up to this long for the session's clients to go */
	uint32_t pad;
};

/* A latency distribution, nanoseconds. */
struct rl_lat_summary {
	uint64_t count, mean, p50, p99, max;
};

/* Reclaim's counters (reclaim/pgdat.h: struct rl_vmstat) and latencies of
 * the daemon's pool of frames. */
struct rl_reclaim_counters {
	uint32_t policy;		/* enum rl_policy */
	uint32_t wb;			/* enum rl_wb_mode */
	uint32_t lockdep_on;		/* the daemon runs lib/lockdep.h's checker */
	uint32_t lockdep_reports;	/* problems it reported (the daemon's, all sessions) */
	struct rl_vmstat vm;
	struct rl_lat_summary direct_stall, fault, alloc, throttle;
};

/* The counters of `reclaimlab run --json`; one set per session and one for
 * the whole daemon. */
struct rl_counters {
	uint64_t clients;		/* client processes that said HELLO */
	uint64_t faults_missing;
	uint64_t faults_wp;
	uint64_t zero_fills;		/* missing faults answered with a zero page */
	uint64_t pages_read;		/* missing faults answered by a_ops readpage */
	uint64_t refaults;		/* of those, pages this pager had evicted */
	uint64_t pages_written;		/* pages written back by a_ops */
	uint64_t evictions;		/* frames freed by reclaim */
	uint64_t discards;		/* pages dropped by DISCARD/REGION_DEL */
	uint64_t bytes_read;		/* backing store bytes read */
	uint64_t bytes_written;		/* backing store bytes written */
	uint64_t verify_checked;	/* --verify: pages checked at read-in */
	uint64_t verify_failed;		/* --verify: mismatches (the client was stopped) */
	uint64_t resident;		/* frames held now */
	uint64_t peak_resident;		/* most frames held at once */
	uint64_t budget_pages;
	uint64_t live_clients;		/* connected now */
	struct rl_reclaim_counters reclaim;	/* the pool's, whatever the session */
};

struct rl_msg_err {
	int32_t  err;		/* positive errno */
	char     text[200];	/* NUL-terminated, for the user */
};

/* A whole decoded message. */
struct rl_msg {
	struct rl_msg_hdr hdr;
	union {
		struct rl_msg_hello hello;
		struct rl_msg_hello_reply hello_reply;
		struct rl_msg_region_add region_add;
		struct rl_msg_region_reply region_reply;
		struct rl_msg_range range;
		struct rl_msg_range_reply range_reply;
		struct rl_msg_stats stats;
		struct rl_counters counters;	/* reply to STATS */
		struct rl_msg_err err;
		unsigned char raw[RL_PROTO_MAX_PAYLOAD];
	} u;
	int fds[RL_PROTO_MAX_FDS];	/* -1 when absent */
};

/*
 * Payload size and fd count a message of this type must have. `reply_to` is
 * the request type for RL_MSG_OK (its payload depends on what it answers),
 * 0 otherwise. Returns false for an unknown type.
 */
bool rl_proto_shape(uint16_t type, uint16_t reply_to, uint16_t *len, uint32_t *nfds);

/*
 * Validates a received message: magic, known type, exact payload size and
 * fd count, NUL-terminated and well-formed strings, ranges and kinds in
 * bounds. Returns 0 or a negative errno, with a short reason in why (may be
 * NULL). Does not close fds.
 */
int rl_proto_check(const struct rl_msg *m, uint16_t reply_to, const char **why);

/*
 * Sends one message (header from type/seq/len of the payload, fds from
 * m->fds[0..nfds)). Returns 0 or -errno. Retries EINTR; MSG_NOSIGNAL.
 */
int rl_proto_send(int sock, struct rl_msg *m, uint16_t type, uint32_t seq, uint16_t len,
		  uint32_t nfds);

/*
 * Receives one message: exactly one header, then exactly hdr.len bytes, and
 * the fds that came with the header (MSG_CMSG_CLOEXEC). Returns 1 on a
 * message (not yet validated: call rl_proto_check), 0 on EOF at a message
 * boundary, -EPROTO on a short or oversized message or too many fds (fds
 * received are closed), or another -errno. Unused m->fds are -1.
 */
int rl_proto_recv(int sock, struct rl_msg *m);

/* Closes the fds a message carried and sets them to -1. */
void rl_proto_close_fds(struct rl_msg *m);

/* Send request (seq: req->hdr.seq as the caller set it; the reply must echo
 * it), wait for its reply, check it (OK or ERR). Returns 0 with the
 * reply in *reply (RL_MSG_OK), or -err of an RL_MSG_ERR (text in
 * reply->u.err.text), or -EPROTO/-errno for transport trouble. */
int rl_proto_call(int sock, struct rl_msg *req, uint16_t type, uint16_t len, uint32_t nfds,
		  struct rl_msg *reply);

#endif
