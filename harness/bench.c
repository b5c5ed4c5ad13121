/* SPDX-License-Identifier: MIT */
/*
 * reclaimlab bench fs|pager: one option table for both benchmarks (so that
 * --help and docs/cli.md show every option), each option marked with the
 * benchmark it belongs to; an option given to the other one is a usage
 * error rather than silently ignored.
 */
#include <string.h>

#include "bench.h"

enum { OPT_DIR, OPT_SIZE, OPT_RUNTIME, OPT_JSON, OPT_FILES, OPT_RUNS, OPT_BACKEND, OPT_IMAGE_SIZE,
       OPT_CPU, NOPTS };

static const struct rl_opt bench_opts[] = {
	[OPT_DIR] = { "dir", 'D', "DIR",
		      "fs: where the two image files go (default /var/tmp); it should be on a real "
		      "disk" },
	[OPT_SIZE] = { "size", 's', "SIZE",
		       "fs: size of the fio test file (default 1G); pager: the memory the "
		       "workload touches (default 256M)" },
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
	{ 0 },
};

/* Which benchmark each option belongs to; NULL: both. */
static const char *const opt_owner[NOPTS] = {
	[OPT_DIR] = "fs", [OPT_RUNTIME] = "fs", [OPT_FILES] = "fs",
	[OPT_RUNS] = "pager", [OPT_BACKEND] = "pager", [OPT_IMAGE_SIZE] = "pager",
	[OPT_CPU] = "pager",
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
		}
	}
	if (o == RL_OPT_HELP)
		return RL_EXIT_OK;
	if (o == RL_OPT_ERROR || !rl_want_args(&p, 1, 1))
		return RL_EXIT_USAGE;
	which = argv[p.optind];
	if (strcmp(which, "fs") != 0 && strcmp(which, "pager") != 0) {
		rl_usage_error(cmd, "unknown benchmark '%s' (there are: fs, pager)", which);
		return RL_EXIT_USAGE;
	}
	for (o = 0; o < NOPTS; o++)
		if (given[o] && opt_owner[o] && strcmp(opt_owner[o], which) != 0) {
			rl_usage_error(cmd, "--%s is an option of 'bench %s', not of 'bench %s'",
				       bench_opts[o].name, opt_owner[o], which);
			return RL_EXIT_USAGE;
		}
	for (o = 0; o < NOPTS; o++) {
		bool zero = (o == OPT_RUNTIME && a.runtime == 0) || (o == OPT_FILES && a.files == 0) ||
			    (o == OPT_RUNS && a.runs == 0) || (o == OPT_SIZE && a.size == 0);

		if (given[o] && zero) {
			rl_usage_error(cmd, "--%s must be above 0", bench_opts[o].name);
			return RL_EXIT_USAGE;
		}
	}
	return which[0] == 'f' ? rl_bench_fs(&a) : rl_bench_pager(&a);
}

const struct rl_cmd rl_cmd_bench = {
	.name = "bench",
	.args = "fs|pager",
	.summary = "Benchmark deepfs against kernel XFS, or the pager's faults against a floor",
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
		       "if a case failed.",
	.opts = bench_opts,
	.run = bench_run,
};
