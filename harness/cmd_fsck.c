/* SPDX-License-Identifier: MIT */
/* reclaimlab fsck: check (and repair) a deepfs filesystem (dfs_fsck). */
#include <inttypes.h>
#include <string.h>

#include "cli.h"
#include "fs/deepfs.h"

enum { OPT_REPAIR, OPT_VERBOSE };

static const struct rl_opt fsck_opts[] = {
	[OPT_REPAIR] = { "repair", 'r', NULL,
			 "fix what is found (default: only report; the image is not written)" },
	[OPT_VERBOSE] = { "verbose", 'v', NULL, "say what is checked as it goes" },
	{ 0 },
};

static int fsck_run(const struct rl_cmd *cmd, int argc, char **argv)
{
	struct dfs_fsck_opts fo = { 0 };
	struct dfs_fsck_result res = { 0 };
	struct rl_parser p;
	const char *path;
	int o, ret;

	rl_parser_init(&p, cmd, argc, argv);
	while ((o = rl_next_opt(&p)) >= 0) {
		switch (o) {
		case OPT_REPAIR:
			fo.repair = true;
			break;
		case OPT_VERBOSE:
			fo.verbose = true;
			break;
		}
	}
	if (o == RL_OPT_HELP)
		return RL_EXIT_OK;
	if (o == RL_OPT_ERROR || !rl_want_args(&p, 1, 1))
		return RL_EXIT_USAGE;
	path = argv[p.optind];

	ret = dfs_fsck(path, &fo, &res);
	if (ret < 0) {
		fprintf(stderr, "%s fsck: %s: cannot be checked: %s\n", rl_program, path,
			strerror(-ret));
		return RL_EXIT_PROBLEM;
	}
	printf("%s: %" PRIu64 " inodes (%" PRIu64 " directories, %" PRIu64 " files), %" PRIu64
	       " blocks used, %" PRIu64 " free\n", path, res.inodes, res.dirs, res.files,
	       res.blocks_used, res.blocks_free);
	if (res.problems == 0)
		printf("%s: clean\n", path);
	else if (fo.repair)
		printf("%s: %" PRIu64 " problems found, %" PRIu64 " repaired%s\n", path,
		       res.problems, res.repaired, ret ? "; problems remain" : "");
	else
		printf("%s: %" PRIu64 " problems found; run with --repair to fix them\n", path,
		       res.problems);
	return ret == 0 ? RL_EXIT_OK : RL_EXIT_PROBLEM;
}

const struct rl_cmd rl_cmd_fsck = {
	.name = "fsck",
	.args = "IMAGE",
	.summary = "Check a deepfs filesystem for consistency, and repair it",
	.description = "Checks the metadata of an unmounted filesystem: headers, B+trees, "
		       "inodes, extent maps, directories and link counts, against each other "
		       "and against the free space. Without --repair nothing is written. "
		       "Exits 0 if it is consistent (or was fully repaired), 1 if problems "
		       "remain or it could not be checked.",
	.opts = fsck_opts,
	.run = fsck_run,
};
