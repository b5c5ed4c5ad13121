/* SPDX-License-Identifier: MIT */
/* reclaimlab: dispatch to a subcommand of the table in commands.h. */
#include <string.h>

#include "cli.h"

int main(int argc, char **argv)
{
	const struct rl_cmd *cmd;

	if (argc < 2) {
		rl_print_overview(stderr);
		return RL_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		rl_print_overview(stdout);
		return RL_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0)
		return rl_cmd_version.run(&rl_cmd_version, 1, &argv[1]);
	cmd = rl_find_cmd(argv[1]);
	if (!cmd) {
		rl_usage_error(NULL, "unknown command '%s'", argv[1]);
		return RL_EXIT_USAGE;
	}
	return cmd->run(cmd, argc - 1, argv + 1);
}
