/* SPDX-License-Identifier: MIT */
/*
 * Usage text and the markdown reference (docs/cli.md), both rendered from
 * the table of subcommands.
 */
#include <string.h>

#include "cli.h"

#define RL_WIDTH 80

static const char rl_about[] =
	"reclaimlab is a userspace testbed for Linux page-reclaim writeback policies. "
	"Its filesystem, deepfs, is modelled on XFS and mounted through FUSE.";

static const char rl_exit_status[] =
	"0 success; 1 a problem was found (fsck found inconsistencies, the image "
	"could not be mounted); 2 usage error (unknown command or option, missing "
	"argument, bad size).";

/* "-s, --size SIZE" or "    --ag-count N" */
static void opt_label(const struct rl_opt *o, char *buf, size_t len)
{
	if (o->short_name)
		snprintf(buf, len, "-%c, --%s%s%s", o->short_name, o->name, o->arg ? " " : "",
			 o->arg ? o->arg : "");
	else
		snprintf(buf, len, "    --%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
}

/* One option as it appears in a synopsis: "[-f]", "[--size SIZE]". */
static void opt_synopsis(const struct rl_opt *o, char *buf, size_t len)
{
	if (o->short_name)
		snprintf(buf, len, "[-%c%s%s]", o->short_name, o->arg ? " " : "",
			 o->arg ? o->arg : "");
	else
		snprintf(buf, len, "[--%s%s%s]", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
}

/* Prints words of text wrapped at RL_WIDTH, each line starting with indent
 * spaces except the first, which continues at column col. */
static void print_wrapped(FILE *f, const char *text, int col, int indent)
{
	const char *p = text;

	while (*p) {
		size_t w = strcspn(p, " \n");

		if (col > indent && col + 1 + (int)w > RL_WIDTH) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else if (col > indent) {
			fputc(' ', f);
			col++;
		}
		fprintf(f, "%.*s", (int)w, p);
		col += (int)w;
		p += w;
		if (*p == '\n') {	/* a hard line break in the text */
			fprintf(f, "\n%*s", indent, "");
			col = indent;
			p++;
			while (*p == '\n') {
				fputc('\n', f);
				fprintf(f, "%*s", indent, "");
				p++;
			}
		} else {
			while (*p == ' ')
				p++;
		}
	}
}

static void print_synopsis(FILE *f, const struct rl_cmd *cmd)
{
	int indent = (int)(strlen("Usage: ") + strlen(rl_program) + 1 + strlen(cmd->name) + 1);
	char buf[128];
	int col = indent;

	fprintf(f, "Usage: %s %s", rl_program, cmd->name);
	if (cmd->args && *cmd->args) {
		fprintf(f, " %s", cmd->args);
		col += 1 + (int)strlen(cmd->args);
	}
	for (const struct rl_opt *o = cmd->opts; o && o->name; o++) {
		opt_synopsis(o, buf, sizeof(buf));
		if (col + 1 + (int)strlen(buf) > RL_WIDTH) {
			fprintf(f, "\n%*s", indent - 1, "");
			col = indent - 1;
		}
		fprintf(f, " %s", buf);
		col += 1 + (int)strlen(buf);
	}
	fputc('\n', f);
}

void rl_print_usage(FILE *f, const struct rl_cmd *cmd)
{
	const struct rl_opt help = { "help", 'h', NULL, "print this help and exit" };
	char label[128];
	int width = 16;

	print_synopsis(f, cmd);
	fputc('\n', f);
	print_wrapped(f, cmd->summary, 0, 0);
	fputs(".\n", f);
	if (cmd->description) {
		fputc('\n', f);
		print_wrapped(f, cmd->description, 0, 0);
		fputc('\n', f);
	}
	for (const struct rl_opt *o = cmd->opts; o && o->name; o++) {
		opt_label(o, label, sizeof(label));
		if ((int)strlen(label) + 2 > width)
			width = (int)strlen(label) + 2;
	}
	fputs("\nOptions:\n", f);
	for (const struct rl_opt *o = cmd->opts; ; o++) {
		if (!o || !o->name)
			o = &help;
		opt_label(o, label, sizeof(label));
		fprintf(f, "  %-*s", width, label);
		print_wrapped(f, o->help, width + 2, width + 2);
		fputc('\n', f);
		if (o == &help)
			break;
	}
	fprintf(f, "\nExit status:");
	print_wrapped(f, rl_exit_status, 12, 0);
	fputc('\n', f);
}

void rl_print_overview(FILE *f)
{
	fprintf(f, "Usage: %s COMMAND [ARGUMENTS] [OPTIONS]\n\n", rl_program);
	print_wrapped(f, rl_about, 0, 0);
	fputs("\n\nCommands:\n", f);
	for (const struct rl_cmd *const *c = rl_commands; *c; c++)
		fprintf(f, "  %-10s%s\n", (*c)->name, (*c)->summary);
	fprintf(f, "\nRun '%s help COMMAND' or '%s COMMAND --help' for a command's options.\n",
		rl_program, rl_program);
	fprintf(f, "\nExit status:");
	print_wrapped(f, rl_exit_status, 12, 0);
	fputc('\n', f);
}

/* Table cells: a '|' would end the cell. */
static void md_cell(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '|')
			fputs("\\|", f);
		else if (*s == '\n')
			fputc(' ', f);
		else
			fputc(*s, f);
	}
}

static void md_command(FILE *f, const struct rl_cmd *cmd)
{
	char buf[128];

	fprintf(f, "## %s %s\n\n", rl_program, cmd->name);
	fprintf(f, "```\n%s %s", rl_program, cmd->name);
	if (cmd->args && *cmd->args)
		fprintf(f, " %s", cmd->args);
	for (const struct rl_opt *o = cmd->opts; o && o->name; o++) {
		opt_synopsis(o, buf, sizeof(buf));
		fprintf(f, " %s", buf);
	}
	fprintf(f, "\n```\n\n%s.\n\n", cmd->summary);
	if (cmd->description)
		fprintf(f, "%s\n\n", cmd->description);
	fputs("| Option | Description |\n|---|---|\n", f);
	for (const struct rl_opt *o = cmd->opts; o && o->name; o++) {
		fputs("| `", f);
		if (o->short_name)
			fprintf(f, "-%c`, `", o->short_name);
		fprintf(f, "--%s%s%s` | ", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
		md_cell(f, o->help);
		fputs(" |\n", f);
	}
	fputs("| `-h`, `--help` | print the command's help and exit |\n\n", f);
}

void rl_print_markdown(FILE *f)
{
	fprintf(f, "# %s command reference\n\n", rl_program);
	fprintf(f, "<!-- Generated by `%s help --markdown` from the table of subcommands "
		"in harness/; do not edit by hand. -->\n\n", rl_program);
	fprintf(f, "%s\n\n", rl_about);
	fputs("| Command | Summary |\n|---|---|\n", f);
	for (const struct rl_cmd *const *c = rl_commands; *c; c++)
		fprintf(f, "| [`%s`](#%s-%s) | %s |\n", (*c)->name, rl_program, (*c)->name,
			(*c)->summary);
	fprintf(f, "\nSizes are given as bytes or with a binary unit: `64K`, `512M`, `4G`, `1T`.\n\n");
	fprintf(f, "Exit status: %s\n\n", rl_exit_status);
	for (const struct rl_cmd *const *c = rl_commands; *c; c++)
		md_command(f, *c);
}
