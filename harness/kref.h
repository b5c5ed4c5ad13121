/* SPDX-License-Identifier: MIT */
/*
 * The kernel reference run: a workload under the real kernel's reclaim, as
 * the reference row of issue 5's measurements. The workload runs with its
 * cwd on a fresh XFS (mkfs.xfs on a loop device with direct IO over an
 * image on the host disk) inside a cgroup v1 memory cgroup of the given
 * limit, while tracefs records the loop device's block requests. The loop
 * device sees exactly what the kernel's writeback sends to "the disk".
 *
 * Needs root, the cgroup v1 memory controller at /sys/fs/cgroup/memory,
 * loop devices, losetup and mkfs.xfs, and tracefs. Everything made is
 * undone before rl_kref_run returns, also on errors and SIGINT/SIGTERM.
 */
#ifndef RECLAIMLAB_KREF_H
#define RECLAIMLAB_KREF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct rl_kref_opts {
	char *const *argv;	/* the workload, NULL-terminated; found in PATH */
	uint64_t mem;		/* memory.limit_in_bytes */
	uint64_t image_size;	/* the XFS image (sparse) */
	int swappiness;		/* memory.swappiness; < 0: the cgroup's default */
	const char *dir;	/* where the image and scratch go; NULL: $TMPDIR or /var/tmp */
	const char *keep_trace;	/* copy the trace text (tracefs format) here; NULL: none */
};

/* One block request on the loop device, from block_rq_issue/complete. */
struct rl_kref_io {
	double time;		/* seconds, trace clock */
	uint64_t sector;	/* 512-byte units */
	uint32_t bytes;
	bool complete;		/* block_rq_complete, else block_rq_issue */
	char rwbs[12];		/* "W", "WS", "R", "RA", "FWS", ... */
};

/* memory.stat counters of the cgroup that the result reports (when present) */
#define RL_KREF_STATS(X)	\
	X(pgscan)		\
	X(pgsteal)		\
	X(pgfault)		\
	X(pgmajfault)		\
	X(pgpgin)		\
	X(pgpgout)		\
	X(workingset_refault)	\
	X(workingset_refault_anon)	\
	X(workingset_refault_file)

/* /proc/vmstat counters reported as deltas over the run: system-wide, so
 * other activity on the machine is counted too. */
#define RL_KREF_VMSTATS(X)	\
	X(nr_vmscan_write)	\
	X(pgscan_kswapd)	\
	X(pgscan_direct)	\
	X(pgsteal_kswapd)	\
	X(pgsteal_direct)	\
	X(allocstall_movable)

#define RL_KREF_ENUM(n) RL_KREF_STAT_##n,
enum { RL_KREF_STATS(RL_KREF_ENUM) RL_KREF_NSTATS };
enum { RL_KREF_VMSTATS(RL_KREF_ENUM) RL_KREF_NVMSTATS };
#undef RL_KREF_ENUM

extern const char *const rl_kref_stat_names[RL_KREF_NSTATS];
extern const char *const rl_kref_vmstat_names[RL_KREF_NVMSTATS];

struct rl_kref_result {
	double wall_seconds;	/* fork of the workload to its exit */
	int exit_status;	/* its exit code, 128+N if killed by signal N */
	char loopdev[32];
	/* issued requests with data (flushes without data are not IOs) */
	uint64_t write_ios, write_bytes;
	uint64_t read_ios, read_bytes;
	double mean_write_bytes;	/* 0 without writes */
	/*
	 * btt's seek: a request that does not start where the previous one in
	 * the same direction ended; its distance is |start - previous end| in
	 * sectors. The mean is over the seeks.
	 */
	uint64_t write_seeks, write_seek_sectors;
	double mean_write_seek_sectors;
	uint64_t lost_events;		/* tracefs ring buffer overruns: counts are low */
	bool stat_present[RL_KREF_NSTATS];
	uint64_t stat[RL_KREF_NSTATS];
	bool vmstat_present[RL_KREF_NVMSTATS];
	uint64_t vmstat_delta[RL_KREF_NVMSTATS];
	struct rl_kref_io *ios;		/* every record, in trace order; free with rl_kref_result_free */
	size_t nios;
};

/*
 * Why the kernel reference cannot run here (not root, no cgroup v1 memory
 * controller, no loop devices, a missing tool): 0, or -errno with the reason
 * written to why.
 */
int rl_kref_check(char *why, size_t len);

/*
 * Runs the workload as described above and fills res. Returns 0 if the
 * workload ran (whatever its exit status), or -errno after a message on
 * stderr if the reference could not be set up, -EINTR if interrupted.
 */
int rl_kref_run(const struct rl_kref_opts *o, struct rl_kref_result *res);
void rl_kref_result_free(struct rl_kref_result *res);

/*
 * One line of the trace text: 1 if it is a block_rq_issue/complete record
 * (filled into io), 0 if it is another line, -EINVAL if it is malformed.
 */
int rl_kref_parse_line(const char *line, struct rl_kref_io *io);
/* The IO counts and seek distances of res from res->ios. */
void rl_kref_summarize(struct rl_kref_result *res);

/* The result as JSON (an object, pretty) and as a short table. */
int rl_kref_write_json(FILE *f, const struct rl_kref_opts *o, const struct rl_kref_result *res);
void rl_kref_print_table(FILE *f, const struct rl_kref_result *res);

#endif
