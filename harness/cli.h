/* SPDX-License-Identifier: MIT */
/*
 * The reclaimlab command line: one table of subcommands (commands.h) drives
 * option parsing, `--help`, `help CMD` and the markdown reference in
 * docs/cli.md, so the documentation cannot drift from what the parser
 * accepts.
 *
 * A subcommand is one file, harness/cmd_<name>.c, defining
 * `const struct rl_cmd rl_cmd_<name>`, plus one row in commands.h.
 */
#ifndef RECLAIMLAB_CLI_H
#define RECLAIMLAB_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes of every subcommand. */
#define RL_EXIT_OK	0
#define RL_EXIT_PROBLEM	1	/* a problem was found: fsck errors, mount of a bad image */
#define RL_EXIT_USAGE	2	/* bad command line */

struct rl_opt {
	const char *name;	/* long name, without "--" */
	int short_name;		/* a letter, or 0 */
	const char *arg;	/* metavariable ("SIZE"), NULL for a flag */
	const char *help;
};

struct rl_cmd {
	const char *name;
	const char *args;	/* positional arguments, e.g. "IMAGE MOUNTPOINT" */
	const char *summary;	/* one line */
	const char *description;	/* paragraphs, separated by blank lines */
	const struct rl_opt *opts;	/* ends with a zeroed entry; NULL if none */
	/* argv[0] is the subcommand's name */
	int (*run)(const struct rl_cmd *cmd, int argc, char **argv);
};

#include "commands.h"

#define RL_DECLARE_CMD(n) extern const struct rl_cmd rl_cmd_##n;
RL_COMMANDS(RL_DECLARE_CMD)
#undef RL_DECLARE_CMD

extern const struct rl_cmd *const rl_commands[];	/* NULL-terminated */
const struct rl_cmd *rl_find_cmd(const char *name);

/* ---- option parsing ---- */
#define RL_MAX_OPTS 32
#define RL_OPT_END	(-1)	/* no more options; positionals start at p->optind */
#define RL_OPT_HELP	(-2)	/* --help/-h was given: usage printed on stdout */
#define RL_OPT_ERROR	(-3)	/* bad option: message and usage hint printed on stderr */

struct rl_parser {
	const struct rl_cmd *cmd;
	int argc;
	char **argv;
	int optind;		/* valid after RL_OPT_END */
	const char *optarg;	/* argument of the option just returned */
	bool started;
};

void rl_parser_init(struct rl_parser *p, const struct rl_cmd *cmd, int argc, char **argv);
/* Returns the index in cmd->opts of the next option, or RL_OPT_*. */
int rl_next_opt(struct rl_parser *p);
/* Checks the number of positionals; prints the error and returns false if wrong. */
bool rl_want_args(const struct rl_parser *p, int min, int max);

/* path made absolute against the cwd (malloc'd; NULL with errno), for files
 * a daemon writes later from another directory; the file need not exist. */
char *rl_absolute_path(const char *path);
/* Whether the comma-separated list names name (NULL: every name does). */
bool rl_list_has(const char *list, const char *name);

/*
 * "4G", "512M", "64K", "4096" (binary units K M G T P, an optional
 * "iB"/"B" after them, case-insensitive). Returns 0, or -EINVAL (not a size)
 * or -ERANGE (does not fit in 64 bits).
 */
int rl_parse_size(const char *s, uint64_t *out);
int rl_parse_u32(const char *s, uint32_t *out);
/* Parse helpers for options: print "reclaimlab CMD: bad --OPT 'VAL': ..." and
 * return false on error. */
bool rl_opt_size(const struct rl_parser *p, const char *opt, uint64_t *out);
bool rl_opt_u32(const struct rl_parser *p, const char *opt, uint32_t *out);
/*
 * For commands that run a program (`run`, `kernel-run`): the index of the
 * program's first word in argv. The program's arguments are its own, so
 * option parsing stops at the first word that is not one of cmd's options
 * (or just after "--"): `reclaimlab run sort -n big.txt` does not read -n.
 */
int rl_program_index(const struct rl_cmd *cmd, int argc, char **argv);

/* "4.00 GiB": for messages. */
const char *rl_fmt_size(uint64_t bytes, char *buf, size_t len);

/* ---- messages and usage ---- */
void rl_usage_error(const struct rl_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void rl_print_usage(FILE *f, const struct rl_cmd *cmd);
void rl_print_overview(FILE *f);
void rl_print_markdown(FILE *f);

extern const char rl_program[];
extern const char rl_version[];

#endif /* RECLAIMLAB_CLI_H */
