/* SPDX-License-Identifier: MIT */
/*
 * Option parsing for the subcommands: getopt_long driven by the command's
 * option table, so that an option exists exactly when it is documented.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

const char rl_program[] = "reclaimlab";

void rl_usage_error(const struct rl_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	if (cmd)
		fprintf(stderr, "%s %s: ", rl_program, cmd->name);
	else
		fprintf(stderr, "%s: ", rl_program);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (cmd)
		fprintf(stderr, "\nTry '%s %s --help'.\n", rl_program, cmd->name);
	else
		fprintf(stderr, "\nTry '%s --help'.\n", rl_program);
}

void rl_parser_init(struct rl_parser *p, const struct rl_cmd *cmd, int argc, char **argv)
{
	memset(p, 0, sizeof(*p));
	p->cmd = cmd;
	p->argc = argc;
	p->argv = argv;
	p->optind = 1;
}

/* Long options without a letter are returned by getopt as 256 + index. */
#define RL_LONG_BASE 256

static int opt_count(const struct rl_cmd *cmd)
{
	int n = 0;

	while (cmd->opts && cmd->opts[n].name)
		n++;
	return n;
}

int rl_next_opt(struct rl_parser *p)
{
	struct option lo[RL_MAX_OPTS + 2];
	char shortopts[3 * RL_MAX_OPTS + 8];
	const struct rl_cmd *cmd = p->cmd;
	int n = opt_count(cmd), c, i;
	size_t s = 0;

	if (n > RL_MAX_OPTS)
		abort();	/* a programming error in the table */
	shortopts[s++] = ':';	/* report a missing argument as ':', not '?' */
	for (i = 0; i < n; i++) {
		const struct rl_opt *o = &cmd->opts[i];

		lo[i].name = o->name;
		lo[i].has_arg = o->arg ? required_argument : no_argument;
		lo[i].flag = NULL;
		lo[i].val = o->short_name ? o->short_name : RL_LONG_BASE + i;
		if (o->short_name) {
			shortopts[s++] = (char)o->short_name;
			if (o->arg)
				shortopts[s++] = ':';
		}
	}
	lo[n] = (struct option){ "help", no_argument, NULL, 'h' };
	lo[n + 1] = (struct option){ 0 };
	shortopts[s++] = 'h';
	shortopts[s] = '\0';

	if (!p->started) {
		optind = 0;	/* glibc: reinitialise getopt */
		opterr = 0;
		p->started = true;
	}
	c = getopt_long(p->argc, p->argv, shortopts, lo, NULL);
	p->optarg = optarg;
	switch (c) {
	case -1:
		p->optind = optind;
		return RL_OPT_END;
	case 'h':
		rl_print_usage(stdout, cmd);
		return RL_OPT_HELP;
	case '?':
		if (optopt && optopt < RL_LONG_BASE)
			rl_usage_error(cmd, "unknown option '-%c'", optopt);
		else
			rl_usage_error(cmd, "unknown option '%s'", p->argv[optind - 1]);
		return RL_OPT_ERROR;
	case ':':
		rl_usage_error(cmd, "option '%s' needs an argument", p->argv[optind - 1]);
		return RL_OPT_ERROR;
	}
	if (c >= RL_LONG_BASE)
		return c - RL_LONG_BASE;
	for (i = 0; i < n; i++)
		if (cmd->opts[i].short_name == c)
			return i;
	abort();	/* getopt returned a letter we did not give it */
}

bool rl_want_args(const struct rl_parser *p, int min, int max)
{
	int n = p->argc - p->optind;

	if (n < min) {
		rl_usage_error(p->cmd, "missing argument%s: expected %s", min - n > 1 ? "s" : "",
			       p->cmd->args);
		return false;
	}
	if (n > max) {
		rl_usage_error(p->cmd, "unexpected argument '%s'", p->argv[p->optind + max]);
		return false;
	}
	return true;
}

int rl_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGTP";
	const char *u;
	uint64_t v;
	char *end;
	int shift = 0;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end) {
		u = strchr(units, toupper((unsigned char)*end));
		if (!u)
			return -EINVAL;
		shift = 10 * (int)(u - units + 1);
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end)
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

int rl_parse_u32(const char *s, uint32_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE || v > UINT32_MAX)
		return -ERANGE;
	*out = (uint32_t)v;
	return 0;
}

static bool opt_error(const struct rl_parser *p, const char *opt, int error, const char *what)
{
	rl_usage_error(p->cmd, "bad %s '%s': %s", opt, p->optarg,
		       error == -ERANGE ? "too large" : what);
	return false;
}

bool rl_opt_size(const struct rl_parser *p, const char *opt, uint64_t *out)
{
	int error = rl_parse_size(p->optarg, out);

	return error ? opt_error(p, opt, error, "not a size (like 4G, 512M, 64K or 4096)") : true;
}

bool rl_opt_u32(const struct rl_parser *p, const char *opt, uint32_t *out)
{
	int error = rl_parse_u32(p->optarg, out);

	return error ? opt_error(p, opt, error, "not a number") : true;
}

const char *rl_fmt_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "bytes", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 " bytes", bytes);
	else
		snprintf(buf, len, "%.2f %s", v, units[u]);
	return buf;
}

/* Does an option of cmd matching this word take the next word as its argument? */
static bool takes_next(const struct rl_cmd *cmd, const char *a)
{
	if (a[1] == '-') {
		/* getopt_long takes unambiguous prefixes: does any match take one? */
		size_t n = strlen(a + 2);

		if (strchr(a, '='))
			return false;
		for (const struct rl_opt *o = cmd->opts; o->name; o++)
			if (strncmp(o->name, a + 2, n) == 0 && o->arg)
				return true;
		return false;
	}
	if (a[2] != '\0')
		return false;	/* -m64M: the argument is attached */
	for (const struct rl_opt *o = cmd->opts; o->name; o++)
		if (o->short_name == a[1] && o->arg)
			return true;
	return false;
}

int rl_program_index(const struct rl_cmd *cmd, int argc, char **argv)
{
	int i = 1;

	while (i < argc) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0)
			return i + 1;
		if (a[0] != '-' || a[1] == '\0')
			return i;
		i += takes_next(cmd, a) ? 2 : 1;
	}
	return argc;
}

char *rl_absolute_path(const char *path)
{
	char cwd[PATH_MAX];
	char *abs;

	if (path[0] == '/')
		return strdup(path);
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	if (asprintf(&abs, "%s/%s", cwd, path) < 0)
		return NULL;
	return abs;
}

bool rl_list_has(const char *list, const char *name)
{
	size_t n = strlen(name);

	if (!list)
		return true;
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");

		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p += len + (p[len] == ',');
	}
	return false;
}
