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
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fs/deepfs.h"
#include "harness/cli.h"
#include "pager/pager.h"

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
	assert_non_null(rl_find_cmd("serve"));
	assert_non_null(rl_find_cmd("run"));
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

/* ---- serve and run: what they refuse before starting anything ---- */

/*
 * Runs the subcommand with argv (NULL-terminated, the command's name first)
 * and returns its exit status, with what it printed on stderr in err.
 */
static int call_cmd(const char **cargv, char *err, size_t errlen)
{
	char *argv[32];
	const struct rl_cmd *cmd = rl_find_cmd(cargv[0]);
	FILE *tmp = tmpfile();
	int argc = 0, saved, status;
	size_t n;

	assert_non_null(cmd);
	assert_non_null(tmp);
	while (cargv[argc]) {
		assert_true(argc < 31);
		argv[argc] = (char *)cargv[argc];
		argc++;
	}
	argv[argc] = NULL;
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	status = cmd->run(cmd, argc, argv);
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(tmp);
	n = fread(err, 1, errlen - 1, tmp);
	err[n] = '\0';
	fclose(tmp);
	return status;
}

#define CALL(err, ...) call_cmd((const char *[]){ __VA_ARGS__, NULL }, err, sizeof(err))

static void expect(int status, const char *err, int want_status, const char *want_text)
{
	if (status != want_status || !strstr(err, want_text))
		fail_msg("exit %d (expected %d), stderr \"%s\" (expected it to contain \"%s\")",
			 status, want_status, err, want_text);
}

static void test_run_usage(void **state)
{
	char err[4096];

	expect(CALL(err, "run"), err, RL_EXIT_USAGE, "missing PROGRAM");
	expect(CALL(err, "run", "--mem", "32M", "--"), err, RL_EXIT_USAGE, "missing PROGRAM");
	expect(CALL(err, "run", "--mem", "1M", "--", "true"), err, RL_EXIT_USAGE,
	       "--mem must be at least 4 MiB");
	expect(CALL(err, "run", "--mem", "lots", "true"), err, RL_EXIT_USAGE, "bad --mem 'lots'");
	expect(CALL(err, "run", "--socket", "/nonexistent.sock", "--mem", "32M", "--", "true"),
	       err, RL_EXIT_USAGE, "configure a private daemon");
	expect(CALL(err, "run", "--verify", "--socket", "/nonexistent.sock", "true"), err,
	       RL_EXIT_USAGE, "configure a private daemon");
	expect(CALL(err, "run", "--backend", "swap", "--", "true"), err, RL_EXIT_USAGE,
	       "unknown --backend 'swap'");
	expect(CALL(err, "run", "--policy", "lru", "--", "true"), err, RL_EXIT_USAGE,
	       "unknown --policy 'lru'");
	expect(CALL(err, "run", "--image", "x.img", "--image-size", "1G", "--", "true"), err,
	       RL_EXIT_USAGE, "--image-size is for a new image");
	expect(CALL(err, "run", "--nope", "--", "true"), err, RL_EXIT_USAGE,
	       "unknown option '--nope'");
	expect(CALL(err, "run", "--dirty-expire", "0", "--", "true"), err, RL_EXIT_USAGE,
	       "--dirty-expire must be from 1 to 3600000 milliseconds");
	expect(CALL(err, "run", "--dirty-expire", "3600001", "--", "true"), err, RL_EXIT_USAGE,
	       "--dirty-expire must be from 1 to 3600000 milliseconds");
	expect(CALL(err, "run", "--dirty-expire", "soon", "--", "true"), err, RL_EXIT_USAGE,
	       "--dirty-expire");
	expect(CALL(err, "run", "--iolog", "io.log", "--backend", "file", "--", "true"), err,
	       RL_EXIT_USAGE, "--iolog logs the deepfs image's IO");
	expect(CALL(err, "run", "--iolog", "io.log", "--socket", "/nonexistent.sock", "true"),
	       err, RL_EXIT_USAGE, "configure a private daemon");
	expect(CALL(err, "run", "--dirty-expire", "100", "--socket", "/nonexistent.sock",
		    "true"), err, RL_EXIT_USAGE, "configure a private daemon");
}

/* Program lookup comes before any daemon, with the shell's exit statuses. */
static void test_run_program_lookup(void **state)
{
	char err[4096], path[] = "/tmp/test_cli-noexec-XXXXXX";
	int fd;

	expect(CALL(err, "run", "--", "no-such-program-rl"), err, 127,
	       "reclaimlab run: no-such-program-rl: command not found");
	/* options end at the program: its -n is not run's (that would be exit 2) */
	expect(CALL(err, "run", "--mem", "32M", "no-such-program-rl", "-n", "--mem"), err, 127,
	       "no-such-program-rl: command not found");
	expect(CALL(err, "run", "--", "/nonexistent/prog"), err, 127,
	       "/nonexistent/prog: No such file or directory");
	expect(CALL(err, "run", "--", "/"), err, 126, "/: Is a directory");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(chmod(path, 0644), 0);
	expect(CALL(err, "run", "--", path), err, 126, "Permission denied");
	unlink(path);
}

static void test_serve_usage(void **state)
{
	char err[4096];

	expect(CALL(err, "serve"), err, RL_EXIT_USAGE, "missing argument");
	expect(CALL(err, "serve", "--mem", "1M", "x.img"), err, RL_EXIT_USAGE,
	       "--mem must be at least 4 MiB");
	expect(CALL(err, "serve", "--backend", "swap", "x.img"), err, RL_EXIT_USAGE,
	       "unknown --backend 'swap'");
	expect(CALL(err, "serve", "--policy", "lru", "x.img"), err, RL_EXIT_USAGE,
	       "unknown --policy 'lru'");
	expect(CALL(err, "serve", "--backing-dir", "/tmp", "x.img"), err, RL_EXIT_USAGE,
	       "--backing-dir is for --backend file");
	expect(CALL(err, "serve", "--workers", "0", "x.img"), err, RL_EXIT_USAGE,
	       "--workers must be from 1 to 64");
	expect(CALL(err, "serve", "--ready-fd", "1000", "x.img"), err, RL_EXIT_USAGE,
	       "--ready-fd 1000 is not an open file descriptor");
	expect(CALL(err, "serve", "a.img", "b.img"), err, RL_EXIT_USAGE, "unexpected argument");
	expect(CALL(err, "serve", "--dirty-expire", "0", "x.img"), err, RL_EXIT_USAGE,
	       "--dirty-expire must be from 1 to 3600000 milliseconds");
	expect(CALL(err, "serve", "--iolog", "io.log", "--backend", "file", "x.img"), err,
	       RL_EXIT_USAGE, "--iolog logs the deepfs image's IO");
}

static void make_tmpdir(char *dir)
{
	strcpy(dir, "/tmp/test_cli-rt-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

/* The runtime directory: made 0700, refused when others could write to it. */
static void test_default_socket_path(void **state)
{
	char dir[64], rt[96], want[128], buf[128], err[4096];
	char *old = getenv("RECLAIMLAB_RUNTIME_DIR");
	struct stat st;

	old = old ? strdup(old) : NULL;
	make_tmpdir(dir);
	snprintf(rt, sizeof(rt), "%s/rt", dir);
	setenv("RECLAIMLAB_RUNTIME_DIR", rt, 1);
	assert_int_equal(rl_default_socket_path(buf, sizeof(buf)), 0);
	snprintf(want, sizeof(want), "%s/pager.sock", rt);
	assert_string_equal(buf, want);
	assert_int_equal(stat(rt, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(rl_default_socket_path(buf, 10), -ENAMETOOLONG);

	/* serve finds no image before it mounts anything: exit 1, the default
	 * mount point made in the runtime directory */
	expect(CALL(err, "serve", "/nonexistent.img"), err, RL_EXIT_PROBLEM,
	       "/nonexistent.img: No such file or directory");
	snprintf(want, sizeof(want), "%s/mnt", rt);
	assert_int_equal(stat(want, &st), 0);
	assert_int_equal(rmdir(want), 0);

	assert_int_equal(chmod(rt, 0777), 0);
	fflush(stderr);
	assert_int_equal(rl_default_socket_path(buf, sizeof(buf)), -EPERM);
	assert_int_equal(rmdir(rt), 0);
	fclose(fopen(rt, "w"));
	assert_int_equal(rl_default_socket_path(buf, sizeof(buf)), -ENOTDIR);
	assert_int_equal(unlink(rt), 0);
	assert_int_equal(rmdir(dir), 0);
	if (old)
		setenv("RECLAIMLAB_RUNTIME_DIR", old, 1);
	else
		unsetenv("RECLAIMLAB_RUNTIME_DIR");
	free(old);
}

/* ---- the control client (pager/ctl.c) against a scripted daemon ---- */

struct fake_daemon {
	int sock;
	int err;		/* answer with RL_MSG_ERR and this errno, 0 = OK */
	struct rl_msg got;	/* the request it received */
	int nreq;
};

static void *fake_daemon(void *arg)
{
	struct fake_daemon *fd = arg;
	struct rl_msg r;

	while (rl_proto_recv(fd->sock, &fd->got) == 1) {
		uint16_t len = 0;

		fd->nreq++;
		if (rl_proto_check(&fd->got, 0, NULL))
			break;
		memset(&r, 0, sizeof(r));
		r.fds[0] = r.fds[1] = -1;
		if (fd->err) {
			r.u.err.err = fd->err;
			strcpy(r.u.err.text, "refused");
			rl_proto_send(fd->sock, &r, RL_MSG_ERR, fd->got.hdr.seq, sizeof(r.u.err), 0);
			continue;
		}
		if (fd->got.hdr.type == RL_MSG_STATS) {
			r.u.counters.faults_missing = 42;
			r.u.counters.peak_resident = 7;
			r.u.counters.budget_pages = fd->got.u.stats.wait_idle_ms;
			len = sizeof(r.u.counters);
		}
		rl_proto_send(fd->sock, &r, RL_MSG_OK, fd->got.hdr.seq, len, 0);
	}
	close(fd->sock);
	return NULL;
}

static int start_fake(struct fake_daemon *fd, pthread_t *t, int err)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	memset(fd, 0, sizeof(*fd));
	fd->sock = sv[1];
	fd->err = err;
	assert_int_equal(pthread_create(t, NULL, fake_daemon, fd), 0);
	return sv[0];
}

static void test_ctl(void **state)
{
	struct fake_daemon fd;
	struct rl_counters c;
	pthread_t t;
	int sock;

	sock = start_fake(&fd, &t, 0);
	memset(&c, 0xff, sizeof(c));
	assert_int_equal(rl_ctl_stats(sock, "run-1-abc", 1234, &c), 0);
	assert_int_equal(fd.got.hdr.type, RL_MSG_STATS);
	assert_string_equal(fd.got.u.stats.session, "run-1-abc");
	assert_int_equal(c.faults_missing, 42);
	assert_int_equal(c.peak_resident, 7);
	assert_int_equal(c.budget_pages, 1234);	/* the wait the daemon was asked for */
	assert_int_equal(c.evictions, 0);
	assert_int_equal(rl_ctl_stats(sock, NULL, 0, &c), 0);
	assert_string_equal(fd.got.u.stats.session, "");
	assert_int_equal(rl_ctl_stats(sock, "0123456789012345678901234567890123", 0, &c),
			 -ENAMETOOLONG);
	assert_int_equal(rl_ctl_shutdown(sock), 0);
	assert_int_equal(fd.got.hdr.type, RL_MSG_SHUTDOWN);
	assert_int_equal(fd.nreq, 3);
	close(sock);
	pthread_join(t, NULL);

	/* a refusal comes back as its errno */
	sock = start_fake(&fd, &t, EPERM);
	assert_int_equal(rl_ctl_shutdown(sock), -EPERM);
	assert_int_equal(rl_ctl_stats(sock, "s", 0, &c), -EPERM);
	close(sock);
	pthread_join(t, NULL);
}

static void test_ctl_connect(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[64], path[200];
	int l, s;

	make_tmpdir(dir);
	snprintf(path, sizeof(path), "%s/pager.sock", dir);
	assert_int_equal(rl_ctl_connect(path), -ENOENT);
	l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(l >= 0);
	strcpy(sa.sun_path, path);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(rl_ctl_connect(path), -ECONNREFUSED);	/* bound, not listening */
	assert_int_equal(listen(l, 1), 0);
	s = rl_ctl_connect(path);
	assert_true(s >= 0);
	assert_true(fcntl(s, F_GETFD) & FD_CLOEXEC);
	close(s);
	close(l);
	unlink(path);
	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(rl_ctl_connect(path), -ENAMETOOLONG);
	assert_int_equal(rmdir(dir), 0);
}

/* ---- serve for real: FUSE, the pager, and both ways to stop it ---- */

static bool is_mounted(const char *dir, const char *parent)
{
	struct stat a, b;

	assert_int_equal(stat(dir, &a), 0);
	assert_int_equal(stat(parent, &b), 0);
	return a.st_dev != b.st_dev;
}

/* Starts `serve` in a child and waits for its ready byte. */
static pid_t start_serve(const char *img, const char *sock, const char *mnt)
{
	char fdarg[16], byte = 0;
	struct pollfd pfd;
	int pipefd[2];
	pid_t pid;

	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const struct rl_cmd *cmd = rl_find_cmd("serve");
		char *argv[] = { "serve", (char *)img, "--socket", (char *)sock, "--mountpoint",
				 (char *)mnt, "--mem", "8M", "--ready-fd", fdarg, "--quiet", NULL };

		close(pipefd[0]);
		snprintf(fdarg, sizeof(fdarg), "%d", pipefd[1]);
		_exit(cmd->run(cmd, 11, argv));
	}
	close(pipefd[1]);
	pfd = (struct pollfd){ .fd = pipefd[0], .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 30000), 1);
	assert_int_equal(read(pipefd[0], &byte, 1), 1);
	close(pipefd[0]);
	return pid;
}

static int wait_exit(pid_t pid)
{
	int ws;

	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFEXITED(ws));
	return WEXITSTATUS(ws);
}

/* deepfs refuses a read-only mount of an image whose log is dirty. */
static void assert_clean(const char *img)
{
	struct dfs_mount_opts o = { .readonly = true };
	struct dfs_mount *mp;

	assert_int_equal(dfs_mount(img, &o, &mp), 0);
	assert_int_equal(dfs_unmount(mp), 0);
}

static void test_serve_lifecycle(void **state)
{
	char dir[64], img[96], sock[96], mnt[96];
	struct dfs_mkfs_opts mo = { .size = 64ull << 20 };
	struct rl_counters c;
	pid_t pid;
	int s;

	if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) != 0)
		skip();	/* FUSE mounts need root here */
	make_tmpdir(dir);
	snprintf(img, sizeof(img), "%s/img", dir);
	snprintf(sock, sizeof(sock), "%s/pager.sock", dir);
	snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
	assert_int_equal(mkdir(mnt, 0700), 0);
	assert_int_equal(dfs_mkfs(img, &mo), 0);

	/* stopped by a SHUTDOWN request */
	pid = start_serve(img, sock, mnt);
	assert_true(is_mounted(mnt, dir));
	s = rl_ctl_connect(sock);
	assert_true(s >= 0);
	assert_int_equal(rl_ctl_stats(s, "", 0, &c), 0);
	assert_int_equal(c.budget_pages, (8u << 20) / (unsigned)sysconf(_SC_PAGESIZE));
	assert_int_equal(c.clients, 0);
	assert_int_equal(rl_ctl_shutdown(s), 0);
	close(s);
	assert_int_equal(wait_exit(pid), 0);
	assert_false(is_mounted(mnt, dir));
	assert_int_equal(access(sock, F_OK), -1);	/* the daemon removed it */
	assert_clean(img);

	/* stopped by SIGTERM, with a file of the mount open */
	pid = start_serve(img, sock, mnt);
	{
		char f[128];
		int fd;

		snprintf(f, sizeof(f), "%s/file", mnt);
		fd = open(f, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, "data", 4), 4);
		assert_int_equal(kill(pid, SIGTERM), 0);
		assert_int_equal(wait_exit(pid), 0);
		close(fd);
	}
	assert_false(is_mounted(mnt, dir));
	assert_clean(img);

	assert_int_equal(unlink(img), 0);
	assert_int_equal(rmdir(mnt), 0);
	assert_int_equal(rmdir(dir), 0);
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
		cmocka_unit_test(test_run_usage),
		cmocka_unit_test(test_run_program_lookup),
		cmocka_unit_test(test_serve_usage),
		cmocka_unit_test(test_default_socket_path),
		cmocka_unit_test(test_ctl),
		cmocka_unit_test(test_ctl_connect),
		cmocka_unit_test(test_serve_lifecycle),
	};
	const char *env = getenv("TEST_SEED");

	seed = env ? strtoull(env, NULL, 0) : (unsigned long long)time(NULL);
	printf("test_cli: seed %llu (TEST_SEED=%llu to repeat)\n", seed, seed);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
