/* SPDX-License-Identifier: MIT */
/*
 * The subcommands of reclaimlab, one row each, in the order of
 * `reclaimlab --help`. Adding a command: harness/cmd_<name>.c defining
 * rl_cmd_<name>, a row here, and the file in harness/meson.build.
 */
#ifndef RECLAIMLAB_COMMANDS_H
#define RECLAIMLAB_COMMANDS_H

#define RL_COMMANDS(X)	\
	X(mkfs)		\
	X(mount)	\
	X(fsck)		\
	X(serve)	\
	X(run)		\
	X(bench)	\
	X(kernel_run)	\
	X(help)		\
	X(version)

#endif
