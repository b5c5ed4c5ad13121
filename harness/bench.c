/* SPDX-License-Identifier: MIT */
/*
 * reclaimlab bench fs|pager|reclaim: one option table for the benchmarks (so that
 * --help and docs/cli.md show every option), each option marked with the
 * benchmark it belongs to; an option given to the other one is a usage
 * error rather than silently ignored.
 */
#include <string.h>

#include "bench.h"

enum { OPT_DIR, OPT_SIZE, OPT_RUNTIME, OPT_JSON, OPT_FILES, OPT_RUNS, OPT_BACKEND, OPT_IMAGE_SIZE,
       OPT_CPU, OPT_MEM, OPT_WORKLOADS, OPT_POLICIES, OPT_MODES, NOPTS };

static const struct rl_opt bench_opts[] = {
	[OPT_DIR] = { "dir", 'D', "DIR",
		      "fs, reclaim: where the image files go (default $TMPDIR, else /var/tmp); "
		      "it should be on a real disk" },
	[OPT_SIZE] = { "size", 's', "SIZE",
		       "fs: size of the fio test file (default 1G); pager: the memory the "
		       "workload touches (default 256M); reclaim: the bytes each workload "
		       "dirties (default 64M; sort gets a quarter of it as input)" },
	[OPT_RUNTIME] = { "runtime", 't', "SECONDS",
			  "fs: time limit of each fio job (default 30)" },
	[OPT_JSON] = { "json", 0, NULL, "print the results as JSON instead of the table" },
	[OPT_FILES] = { "files", 0, "N",
			"fs: empty files to create in the create job (default 20000)" },
	[OPT_RUNS] = { "runs", 'n', "N",
		       "pager: run every case N times and report the median (default 1)" },
	[OPT_BACKEND] = { "backend", 0, "NAME",
			  "pager: the pager's backing store, deepfs or file, as in 'run "
			  "--backend' (default deepfs)" },
	[OPT_IMAGE_SIZE] = { "image-size", 0, "SIZE",
			     "pager: size of the private daemon's deepfs image, as in 'run "
			     "--image-size' (default: run's)" },
	[OPT_CPU] = { "cpu", 0, "N",
		      "pager: pin every case (the workload, the floor's handler, the daemon) to "
		      "CPU N; by default the scheduler places them, and a wakeup across CPUs "
		      "costs more than a fault on some machines" },
	[OPT_MEM] = { "mem", 0, "SIZE",
		      "reclaim: the memory budget of every run, pager and kernel (default: a "
		      "quarter of --size)" },
	[OPT_WORKLOADS] = { "workloads", 0, "LIST",
			    "reclaim: comma-separated, of seq, random, sort (default all)" },
	[OPT_POLICIES] = { "policies", 0, "LIST",
			   "reclaim: comma-separated writeback policies (default all six)" },
	[OPT_MODES] = { "modes", 0, "LIST",
			"reclaim: comma-separated writeback modes, single and batch (default "
			"both)" },
	{ 0 },
};

/* Which benchmarks each option belongs to (comma-separated); NULL: all. */
static const char *const opt_owner[NOPTS] = {
	[OPT_DIR] = "fs,reclaim", [OPT_RUNTIME] = "fs", [OPT_FILES] = "fs",
	[OPT_RUNS] = "pager", [OPT_BACKEND] = "pager", [OPT_IMAGE_SIZE] = "pager",
	[OPT_CPU] = "pager", [OPT_MEM] = "reclaim", [OPT_WORKLOADS] = "reclaim",
	[OPT_POLICIES] = "reclaim", [OPT_MODES] = "reclaim",
};

static int bench_run(const struct rl_cmd *cmd, int argc, char **argv)
{
	struct rl_bench_args a = { .cmd = cmd };
	bool given[NOPTS] = { false };
	struct rl_parser p;
	const char *which;
	int o;

	rl_parser_init(&p, cmd, argc, argv);
	while ((o = rl_next_opt(&p)) >= 0) {
		given[o] = true;
		switch (o) {
		case OPT_DIR:
			a.dir = p.optarg;
			break;
		case OPT_SIZE:
			if (!rl_opt_size(&p, "--size", &a.size))
				return RL_EXIT_USAGE;
			break;
		case OPT_RUNTIME:
			if (!rl_opt_u32(&p, "--runtime", &a.runtime))
				return RL_EXIT_USAGE;
			break;
		case OPT_FILES:
			if (!rl_opt_u32(&p, "--files", &a.files))
				return RL_EXIT_USAGE;
			break;
		case OPT_JSON:
			a.json = true;
			break;
		case OPT_RUNS:
			if (!rl_opt_u32(&p, "--runs", &a.runs))
				return RL_EXIT_USAGE;
			break;
		case OPT_BACKEND:
			a.backend = p.optarg;
			break;
		case OPT_CPU:
			if (!rl_opt_u32(&p, "--cpu", &a.cpu))
				return RL_EXIT_USAGE;
			a.pin = true;
			break;
		case OPT_IMAGE_SIZE:
			if (!rl_opt_size(&p, "--image-size", &a.image_size))
				return RL_EXIT_USAGE;
			break;
		case OPT_MEM:
			if (!rl_opt_size(&p, "--mem", &a.mem))
				return RL_EXIT_USAGE;
			break;
		case OPT_WORKLOADS:
			a.workloads = p.optarg;
			break;
		case OPT_POLICIES:
			a.policies = p.optarg;
			break;
		case OPT_MODES:
			a.modes = p.optarg;
			break;
		}
	}
	if (o == RL_OPT_HELP)
		return RL_EXIT_OK;
	if (o == RL_OPT_ERROR || !rl_want_args(&p, 1, 1))
		return RL_EXIT_USAGE;
	which = argv[p.optind];
	if (strcmp(which, "fs") != 0 && strcmp(which, "pager") != 0 &&
	    strcmp(which, "reclaim") != 0) {
		rl_usage_error(cmd, "unknown benchmark '%s' (there are: fs, pager, reclaim)", which);
		return RL_EXIT_USAGE;
	}
	for (o = 0; o < NOPTS; o++)
		if (given[o] && opt_owner[o] && !rl_list_has(opt_owner[o], which)) {
			rl_usage_error(cmd, "--%s is an option of 'bench %s', not of 'bench %s'",
				       bench_opts[o].name, opt_owner[o], which);
			return RL_EXIT_USAGE;
		}
	for (o = 0; o < NOPTS; o++) {
		bool zero = (o == OPT_RUNTIME && a.runtime == 0) || (o == OPT_FILES && a.files == 0) ||
			    (o == OPT_RUNS && a.runs == 0) || (o == OPT_SIZE && a.size == 0) ||
			    (o == OPT_MEM && a.mem == 0);

		if (given[o] && zero) {
			rl_usage_error(cmd, "--%s must be above 0", bench_opts[o].name);
			return RL_EXIT_USAGE;
		}
	}
	if (which[0] == 'r')
		return rl_bench_reclaim(&a);
	return which[0] == 'f' ? rl_bench_fs(&a) : rl_bench_pager(&a);
}

const struct rl_cmd rl_cmd_bench = {
	.name = "bench",
	.args = "fs|pager|reclaim",
	.summary = "Benchmark deepfs, the pager's faults or the writeback policies",
	.description = "'bench fs' makes a deepfs image in DIR and mounts it through FUSE, runs "
		       "fio jobs on it (sequential 1 MiB write then read, buffered, with a final "
		       "fsync; 4 KiB random write), times the creation of empty files, then runs "
		       "the same on kernel XFS (mkfs.xfs on a loop device with direct IO over an "
		       "image in DIR), and prints each job's result on both with the ratio "
		       "deepfs/XFS. Needs root, fio, xfsprogs and /dev/fuse. Everything it "
		       "mounts or attaches is undone before it exits, also on Ctrl-C.\n\n"
		       "'bench pager' times every page fault of rl-pager-touch (installed next "
		       "to reclaimlab), a program that touches SIZE bytes of heap page by page, "
		       "in page order and in random order. It runs it first against the floor, a "
		       "minimal userfaultfd handler (UFFDIO_COPY of a zero page, nothing else) in "
		       "a thread of the same process, then with that handler in another process "
		       "(where the pager's daemon is), then through 'reclaimlab run' with --mem "
		       "twice SIZE "
		       "(ample memory: every fault is a first touch) and with --mem a quarter of "
		       "SIZE after the whole footprint was written (evictions, then refaults read "
		       "back from the backing store). It prints the fault latency p50 and p99, "
		       "faults per second, the p50 ratio against both floors measured in the same "
		       "invocation, and the run's evictions and refaults. Needs userfaultfd "
		       "(root, or vm.unprivileged_userfaultfd=1) and what 'run' needs; exits 1 "
		       "if a case failed.\n\n"
		       "'bench reclaim' runs issue 5's matrix: every writeback policy in both "
		       "writeback modes (or those --policies and --modes name) runs each workload "
		       "through 'reclaimlab run --mem MEM' with background writeback off "
		       "(--dirty-background-ratio 100, --dirty-ratio 100, --dirty-expire 30000: "
		       "a memory cgroup far below the global dirty limits, where reclaim meets "
		       "dirty pages). Workloads: seq (4 processes, each dirtying its own file in "
		       "order through a shared map, SIZE in all), random (one file of SIZE "
		       "dirtied in random order), sort (GNU sort of SIZE/4 of text, in memory). "
		       "Each workload also runs natively, on kernel XFS in a memory cgroup of "
		       "MEM (as 'kernel-run'; not sort, whose anonymous memory needs swap), and "
		       "seq has an fio row (sequential 1 MiB O_DIRECT writes of SIZE next to the "
		       "images). Per row: wall time, pages scanned and reclaimed, pages written "
		       "by kswapd, direct reclaim and the flusher, write IOs on the device "
		       "(deepfs's IO log, or the loop device's block trace), their mean size, "
		       "seeks and seek distance, MiB/s while a write was in flight, direct "
		       "reclaim stalls and fault latency p50/p99/max, refaults; then the "
		       "issue's goals as ratios. Needs root and what 'run' and 'kernel-run' "
		       "need (rows that cannot run say why); exits 1 if a workload failed or "
		       "sort's output differed from the native one.",
	.opts = bench_opts,
	.run = bench_run,
};
