/* SPDX-License-Identifier: MIT */
/* The table of subcommands, built from the rows of commands.h. */
#include <string.h>

#include "cli.h"

#define RL_CMD_ENTRY(n) &rl_cmd_##n,
const struct rl_cmd *const rl_commands[] = {
	RL_COMMANDS(RL_CMD_ENTRY)
	NULL,
};
#undef RL_CMD_ENTRY

const struct rl_cmd *rl_find_cmd(const char *name)
{
	for (const struct rl_cmd *const *c = rl_commands; *c; c++)
		if (strcmp((*c)->name, name) == 0)
			return *c;
	return NULL;
}
