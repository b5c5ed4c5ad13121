/* SPDX-License-Identifier: MIT */
/*
 * reclaimlab bench: one command (bench.c: options, which benchmark), one
 * file per benchmark. bench.c has parsed and range-checked the options and
 * rejected those that do not belong to the chosen benchmark; each benchmark
 * applies its own defaults to what was not given and returns an RL_EXIT_*
 * code.
 */
#ifndef RECLAIMLAB_BENCH_H
#define RECLAIMLAB_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"

struct rl_bench_args {
	const struct rl_cmd *cmd;	/* for usage errors */
	bool json;			/* print JSON instead of the table */
	/* 0 or NULL: not given */
	uint64_t size;
	const char *dir;		/* fs */
	uint32_t runtime;		/* fs, seconds */
	uint32_t files;			/* fs */
	uint32_t runs;			/* pager */
	const char *backend;		/* pager: passed to `run --backend` */
	uint64_t image_size;		/* pager: passed to `run --image-size` */
	bool pin;			/* pager: --cpu given */
	uint32_t cpu;			/* pager: pin every case to this CPU */
	uint64_t mem;			/* reclaim: the budget */
	const char *workloads;		/* reclaim: comma-separated; NULL: all */
	const char *policies;		/* reclaim */
	const char *modes;		/* reclaim */
};

/*
 * Runs argv (execvp) with its stdout to out_path (NULL: ours; quiet: its
 * stderr to /dev/null); returns its exit status, 128+N if signal N killed
 * it, 127 if it could not be started, or -errno if fork failed.
 */
int rl_bench_run(char *const argv[], const char *out_path, bool quiet);
/* rl_bench_run with stdout captured through the file tmp_path (removed
 * after): up to len - 1 bytes of it in out, trailing newlines dropped. */
int rl_bench_capture(char *const argv[], const char *tmp_path, char *out, size_t len);

/* name next to the executable self (build tree and install), else in PATH:
 * true with its path in out. */
bool rl_bench_find_program(const char *self, const char *name, char *out, size_t len);

/* bench fs: deepfs through FUSE against kernel XFS (bench_fs.c) */
int rl_bench_fs(const struct rl_bench_args *a);
/* bench pager: fault service latency against a minimal handler (bench_pager.c) */
int rl_bench_pager(const struct rl_bench_args *a);
/* bench reclaim: issue 5's policy matrix with fio and kernel rows (bench_reclaim.c) */
int rl_bench_reclaim(const struct rl_bench_args *a);

#endif
