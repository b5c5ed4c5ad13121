/* SPDX-License-Identifier: MIT */
/* reclaimlab help [COMMAND] [--markdown] */
#include "cli.h"

enum { OPT_MARKDOWN };

static const struct rl_opt help_opts[] = {
	[OPT_MARKDOWN] = { "markdown", 0, NULL,
			   "print the reference of all commands as markdown (docs/cli.md)" },
	{ 0 },
};

static int help_run(const struct rl_cmd *cmd, int argc, char **argv)
{
	struct rl_parser p;
	const struct rl_cmd *which;
	bool markdown = false;
	int o;

	rl_parser_init(&p, cmd, argc, argv);
	while ((o = rl_next_opt(&p)) >= 0) {
		switch (o) {
		case OPT_MARKDOWN:
			markdown = true;
			break;
		}
	}
	if (o == RL_OPT_HELP)
		return RL_EXIT_OK;
	if (o == RL_OPT_ERROR || !rl_want_args(&p, 0, markdown ? 0 : 1))
		return RL_EXIT_USAGE;
	if (markdown) {
		rl_print_markdown(stdout);
		return RL_EXIT_OK;
	}
	if (p.optind == argc) {
		rl_print_overview(stdout);
		return RL_EXIT_OK;
	}
	which = rl_find_cmd(argv[p.optind]);
	if (!which) {
		rl_usage_error(cmd, "unknown command '%s'", argv[p.optind]);
		return RL_EXIT_USAGE;
	}
	rl_print_usage(stdout, which);
	return RL_EXIT_OK;
}

const struct rl_cmd rl_cmd_help = {
	.name = "help",
	.args = "[COMMAND]",
	.summary = "Print the usage of reclaimlab or of one command",
	.description = "Without a COMMAND, lists the commands. With --markdown, prints the "
		       "reference of every command as markdown; docs/cli.md is its output.",
	.opts = help_opts,
	.run = help_run,
};
