/* SPDX-License-Identifier: MIT */
/*
 * The reclaimlab command line (harness/cli.c, usage.c, commands.c): size
 * parsing against a reference computed with 128-bit arithmetic, the option
 * parser on permuted and malformed command lines, and the command table's
 * invariants (what --help and docs/cli.md are made from).
 *
 * Built by harness/meson.build, since it links the harness.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness/cli.h"

static unsigned long long seed;

static void test_parse_size_table(void **state)
{
	static const struct {
		const char *s;
		int error;
		uint64_t v;
	} cases[] = {
		{ "0", 0, 0 },
		{ "4096", 0, 4096 },
		{ "64K", 0, 64ull << 10 },
		{ "64k", 0, 64ull << 10 },
		{ "512M", 0, 512ull << 20 },
		{ "4G", 0, 4ull << 30 },
		{ "4g", 0, 4ull << 30 },
		{ "4GiB", 0, 4ull << 30 },
		{ "4GB", 0, 4ull << 30 },
		{ "4gib", 0, 4ull << 30 },
		{ "1T", 0, 1ull << 40 },
		{ "2P", 0, 2ull << 50 },
		{ "16383P", 0, 16383ull << 50 },
		{ "16384P", -ERANGE, 0 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", -ERANGE, 0 },
		{ "17179869184G", -ERANGE, 0 },
		{ "17179869183G", 0, 17179869183ull << 30 },
		{ "", -EINVAL, 0 },
		{ "K", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "+1", -EINVAL, 0 },
		{ " 4G", -EINVAL, 0 },
		{ "4G ", -EINVAL, 0 },
		{ "1.5G", -EINVAL, 0 },
		{ "4Q", -EINVAL, 0 },
		{ "4Gx", -EINVAL, 0 },
		{ "4GiBB", -EINVAL, 0 },
		{ "4iB", -EINVAL, 0 },
		{ "0x10", -EINVAL, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 12345;
		int error = rl_parse_size(cases[i].s, &v);

		if (error != cases[i].error || (error == 0 && v != cases[i].v))
			fail_msg("rl_parse_size(\"%s\") = %d, %" PRIu64 "; expected %d, %" PRIu64,
				 cases[i].s, error, v, cases[i].error, cases[i].v);
		if (error)
			assert_int_equal(v, 12345);	/* untouched on error */
	}
	assert_int_equal(rl_parse_size(NULL, &(uint64_t){ 0 }), -EINVAL);
}

/* Random numbers and units against the same value computed in 128 bits. */
static void test_parse_size_random(void **state)
{
	static const char *const suffixes[] = { "", "B", "iB", "ib" };
	static const char units[] = " KMGTPkmgtp";
	char s[64];

	srandom((unsigned)seed);
	for (int i = 0; i < 200000; i++) {
		int bits = (int)(random() % 65);
		uint64_t n = bits == 0 ? 0 : ((uint64_t)random() << 33 ^ (uint64_t)random() << 2 ^
					      (uint64_t)random()) >> (64 - bits);
		int u = (int)(random() % (sizeof(units) - 1));
		int shift = u == 0 ? 0 : 10 * ((u - 1) % 5 + 1);
		unsigned __int128 want = (unsigned __int128)n << shift;
		uint64_t got = 0;
		int error;

		if (u == 0)
			snprintf(s, sizeof(s), "%" PRIu64, n);
		else
			snprintf(s, sizeof(s), "%" PRIu64 "%c%s", n, units[u], suffixes[random() % 4]);
		error = rl_parse_size(s, &got);
		if (want > UINT64_MAX) {
			if (error != -ERANGE)
				fail_msg("seed %llu: \"%s\" overflows but gave %d", seed, s, error);
		} else if (error || got != (uint64_t)want) {
			fail_msg("seed %llu: \"%s\" gave %d, %" PRIu64 "; expected %" PRIu64, seed, s,
				 error, got, (uint64_t)want);
		}
	}
}

static void test_parse_u32(void **state)
{
	uint32_t v = 0;

	assert_int_equal(rl_parse_u32("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(rl_parse_u32("4294967295", &v), 0);
	assert_int_equal(v, UINT32_MAX);
	assert_int_equal(rl_parse_u32("0x10", &v), 0);
	assert_int_equal(v, 16);
	assert_int_equal(rl_parse_u32("4294967296", &v), -ERANGE);
	assert_int_equal(rl_parse_u32("99999999999999999999999", &v), -ERANGE);
	assert_int_equal(rl_parse_u32("-1", &v), -EINVAL);
	assert_int_equal(rl_parse_u32("12a", &v), -EINVAL);
	assert_int_equal(rl_parse_u32("", &v), -EINVAL);
}

/* ---- the option parser, on a command of its own ---- */

enum { T_SIZE, T_FLAG, T_NAME, T_LONGONLY };
static const struct rl_opt t_opts[] = {
	[T_SIZE] = { "size", 's', "SIZE", "a size" },
	[T_FLAG] = { "flag", 'f', NULL, "a flag" },
	[T_NAME] = { "name", 0, "NAME", "a long option with an argument" },
	[T_LONGONLY] = { "long-only", 0, NULL, "a long flag" },
	{ 0 },
};
static const struct rl_cmd t_cmd = {
	.name = "t", .args = "A [B]", .summary = "test", .opts = t_opts,
};

struct parsed {
	int end;		/* the last rl_next_opt result */
	uint64_t size;
	int flags, longonly;
	const char *name;
	int nargs;
	const char *args[8];
};

/* cargv: NULL-terminated, argv[0] included */
static struct parsed parse(const char **cargv)
{
	char *argv[16];
	struct rl_parser p;
	struct parsed r = { 0 };
	int argc = 0, o;

	while (cargv[argc]) {
		assert_true(argc < 15);
		argv[argc] = (char *)cargv[argc];
		argc++;
	}
	argv[argc] = NULL;
	rl_parser_init(&p, &t_cmd, argc, argv);
	while ((o = rl_next_opt(&p)) >= 0) {
		switch (o) {
		case T_SIZE:
			assert_true(rl_opt_size(&p, "--size", &r.size));
			break;
		case T_FLAG:
			r.flags++;
			break;
		case T_NAME:
			r.name = p.optarg;
			break;
		case T_LONGONLY:
			r.longonly++;
			break;
		default:
			fail_msg("rl_next_opt returned %d", o);
		}
	}
	r.end = o;
	if (o == RL_OPT_END) {
		r.nargs = argc - p.optind;
		for (int i = 0; i < r.nargs && i < 8; i++)
			r.args[i] = argv[p.optind + i];
	}
	return r;
}

#define PARSE(...) parse((const char *[]){ "t", __VA_ARGS__, NULL })

static void test_parser(void **state)
{
	struct parsed r;

	r = PARSE("img", "--size", "4G", "-f", "mnt", "--name=x", "--long-only", "-ff");
	assert_int_equal(r.end, RL_OPT_END);
	assert_int_equal(r.size, 4ull << 30);
	assert_int_equal(r.flags, 3);
	assert_int_equal(r.longonly, 1);
	assert_string_equal(r.name, "x");
	assert_int_equal(r.nargs, 2);	/* positionals may come anywhere */
	assert_string_equal(r.args[0], "img");
	assert_string_equal(r.args[1], "mnt");

	r = PARSE("-s64K", "a", "--", "-f");
	assert_int_equal(r.end, RL_OPT_END);
	assert_int_equal(r.size, 64 << 10);
	assert_int_equal(r.flags, 0);	/* after "--" it is a positional */
	assert_int_equal(r.nargs, 2);
	assert_string_equal(r.args[1], "-f");

	r = PARSE("--size=1M", "--name", "n", "x");
	assert_int_equal(r.end, RL_OPT_END);
	assert_int_equal(r.size, 1 << 20);
	assert_string_equal(r.name, "n");

	/* errors: each prints a message and a usage hint on stderr */
	assert_int_equal(PARSE("--nope").end, RL_OPT_ERROR);
	assert_int_equal(PARSE("-x").end, RL_OPT_ERROR);
	assert_int_equal(PARSE("a", "--size").end, RL_OPT_ERROR);
	assert_int_equal(PARSE("a", "-s").end, RL_OPT_ERROR);
	assert_int_equal(PARSE("a", "--flag=1").end, RL_OPT_ERROR);
	/* --help and -h are every command's */
	assert_int_equal(PARSE("a", "--help").end, RL_OPT_HELP);
	assert_int_equal(PARSE("-h").end, RL_OPT_HELP);
}

static void test_want_args(void **state)
{
	char *argv[] = { "t", "a", "b", "c", NULL };
	struct rl_parser p;

	rl_parser_init(&p, &t_cmd, 4, argv);
	assert_int_equal(rl_next_opt(&p), RL_OPT_END);
	assert_true(rl_want_args(&p, 1, 3));
	assert_true(rl_want_args(&p, 3, 3));
	assert_false(rl_want_args(&p, 1, 2));
	assert_false(rl_want_args(&p, 4, 5));
}

/* ---- the command table ---- */

static void test_command_table(void **state)
{
	int n = 0;

	for (const struct rl_cmd *const *c = rl_commands; *c; c++, n++) {
		const struct rl_cmd *cmd = *c;
		int nopts = 0;

		assert_non_null(cmd->name);
		assert_non_null(cmd->summary);
		assert_non_null(cmd->args);
		assert_non_null(cmd->run);
		/* the summary is printed with a period after it */
		assert_int_not_equal(cmd->summary[strlen(cmd->summary) - 1], '.');
		assert_ptr_equal(rl_find_cmd(cmd->name), cmd);
		for (const struct rl_cmd *const *d = rl_commands; d != c; d++)
			if (strcmp((*d)->name, cmd->name) == 0)
				fail_msg("command %s is in the table twice", cmd->name);
		for (const struct rl_opt *o = cmd->opts; o && o->name; o++, nopts++) {
			assert_non_null(o->help);
			if (strcmp(o->name, "help") == 0 || o->short_name == 'h')
				fail_msg("%s: --help/-h are added to every command", cmd->name);
			for (const struct rl_opt *q = cmd->opts; q != o; q++)
				if (strcmp(q->name, o->name) == 0 ||
				    (o->short_name && q->short_name == o->short_name))
					fail_msg("%s: option --%s clashes with --%s", cmd->name,
						 o->name, q->name);
		}
		assert_true(nopts <= RL_MAX_OPTS);
	}
	assert_true(n >= 5);
	assert_null(rl_find_cmd("no-such-command"));
	assert_non_null(rl_find_cmd("mkfs"));
	assert_non_null(rl_find_cmd("mount"));
	assert_non_null(rl_find_cmd("fsck"));
}

/* Every line of every usage text fits in 80 columns. */
static void test_usage_width(void **state)
{
	for (const struct rl_cmd *const *c = rl_commands; *c; c++) {
		char *text = NULL, *line, *save = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);

		assert_non_null(f);
		rl_print_usage(f, *c);
		fclose(f);
		assert_non_null(strstr(text, (*c)->summary));
		for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			if (strlen(line) > 80)
				fail_msg("%s --help: line longer than 80 columns: %s", (*c)->name, line);
		free(text);
	}
}

/* docs/cli.md has a section for every command that names every option. */
static void test_markdown(void **state)
{
	char *text = NULL, want[160];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	rl_print_markdown(f);
	fclose(f);
	for (const struct rl_cmd *const *c = rl_commands; *c; c++) {
		const char *section;

		snprintf(want, sizeof(want), "\n## %s %s\n", rl_program, (*c)->name);
		section = strstr(text, want);
		if (!section)
			fail_msg("no section for %s", (*c)->name);
		for (const struct rl_opt *o = (*c)->opts; o && o->name; o++) {
			const char *next = strstr(section + 1, "\n## ");
			const char *at;

			snprintf(want, sizeof(want), "`--%s", o->name);
			at = strstr(section, want);
			if (!at || (next && at > next))
				fail_msg("%s: --%s is not in its section", (*c)->name, o->name);
		}
	}
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size_table),
		cmocka_unit_test(test_parse_size_random),
		cmocka_unit_test(test_parse_u32),
		cmocka_unit_test(test_parser),
		cmocka_unit_test(test_want_args),
		cmocka_unit_test(test_command_table),
		cmocka_unit_test(test_usage_width),
		cmocka_unit_test(test_markdown),
	};
	const char *env = getenv("TEST_SEED");

	seed = env ? strtoull(env, NULL, 0) : (unsigned long long)time(NULL);
	printf("test_cli: seed %llu (TEST_SEED=%llu to repeat)\n", seed, seed);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
