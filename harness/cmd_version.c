/* SPDX-License-Identifier: MIT */
/* reclaimlab version */
#include <fuse_lowlevel.h>

#include "cli.h"
#include "fs/format.h"

const char rl_version[] = RECLAIMLAB_VERSION;

static int version_run(const struct rl_cmd *cmd, int argc, char **argv)
{
	struct rl_parser p;
	int o;

	rl_parser_init(&p, cmd, argc, argv);
	while ((o = rl_next_opt(&p)) >= 0)
		;
	if (o == RL_OPT_HELP)
		return RL_EXIT_OK;
	if (o == RL_OPT_ERROR || !rl_want_args(&p, 0, 0))
		return RL_EXIT_USAGE;
	printf("%s %s\n", rl_program, rl_version);
	printf("deepfs on-disk format version %u\n", DFS_VERSION);
	printf("libfuse %d.%d (API %d.%d), liburing %s\n", fuse_version() / 100,
	       fuse_version() % 100, FUSE_USE_VERSION / 100, FUSE_USE_VERSION % 100,
	       RL_LIBURING_VERSION);
	return RL_EXIT_OK;
}

const struct rl_cmd rl_cmd_version = {
	.name = "version",
	.args = "",
	.summary = "Print the version of reclaimlab and of the libraries it runs on",
	.description = NULL,
	.opts = NULL,
	.run = version_run,
};
