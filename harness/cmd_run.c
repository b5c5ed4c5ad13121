/* SPDX-License-Identifier: MIT */
/*
 * reclaimlab run: runs an unmodified program with its memory paged by the
 * userfaultfd pager. The program gets the shim (librlshim.so) preloaded and
 * the daemon's socket in its environment; unless --socket names a running
 * daemon, run starts a private one (`reclaimlab serve` on a fresh image in a
 * temporary directory) and stops it afterwards. At the end, the session's
 * counters are asked from the daemon (--json).
 *
 * Everything that can be checked before the program starts is: the program
 * is found in PATH, userfaultfd is usable, the shim exists, the daemon is
 * up. A program that starts is then never blamed for run's own trouble.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "fs/deepfs.h"
#include "harness/pager_opts.h"
#include "harness/reclaim_json.h"
#include "pager/pager.h"

/* The exit statuses of run itself, as env(1) and the shells use them. */
#define RUN_EXIT_FAILED		125	/* run could not do its part */
#define RUN_EXIT_NOEXEC		126	/* found, but not executable */
#define RUN_EXIT_NOTFOUND	127

#define RUN_DEFAULT_MEM		(64ull << 20)
#define RUN_DEFAULT_IMAGE	(4ull << 30)
#define RUN_READY_TIMEOUT_MS	60000
#define RUN_STATS_WAIT_MS	10000
#define RUN_SHIM_NAME		"librlshim.so"

enum {
	OPT_MEM, OPT_JSON, OPT_SOCKET, OPT_IMAGE, OPT_IMAGE_SIZE, OPT_POLICY, OPT_WB,
	OPT_DIRTY_RATIO, OPT_DIRTY_BG, OPT_DIRTY_EXPIRE, OPT_BACKEND,
	OPT_VERIFY, OPT_LOCKDEP, OPT_IPUT_DELAY, OPT_IOLOG, OPT_KEEP,
};

static const struct rl_opt run_opts[] = {
	[OPT_MEM] = { "mem", 0, "SIZE",
		      "keep at most SIZE of the program's pages resident (default 64M, at "
		      "least 4M)" },
	[OPT_JSON] = { "json", 0, "FILE",
		       "write the exit status and the pager's counters of this run to FILE "
		       "as JSON ('-': standard output)" },
	[OPT_SOCKET] = { "socket", 0, "PATH",
			 "use the daemon of 'reclaimlab serve' listening on PATH instead of a "
			 "private one" },
	[OPT_IMAGE] = { "image", 0, "PATH",
			"the private daemon pages to this existing deepfs image (default: a "
			"new one in a temporary directory)" },
	[OPT_IMAGE_SIZE] = { "image-size", 0, "SIZE",
			     "size of the new image, sparse (default 4G)" },
	[OPT_POLICY] = { "policy", 0, "POLICY", RL_POLICY_HELP },
	[OPT_WB] = { "wb", 0, "MODE", RL_WB_HELP },
	[OPT_DIRTY_RATIO] = { "dirty-ratio", 0, "PCT", RL_DIRTY_RATIO_HELP },
	[OPT_DIRTY_BG] = { "dirty-background-ratio", 0, "PCT", RL_DIRTY_BG_HELP },
	[OPT_DIRTY_EXPIRE] = { "dirty-expire", 0, "MS", RL_DIRTY_EXPIRE_HELP },
	[OPT_BACKEND] = { "backend", 0, "KIND",
			  "where evicted pages go: deepfs (the default) or file (host files "
			  "in the temporary directory)" },
	[OPT_VERIFY] = { "verify", 0, NULL, RL_VERIFY_HELP },
	[OPT_LOCKDEP] = { "lockdep", 0, NULL,
			  RL_LOCKDEP_HELP " and are counted in --json (private daemon only)" },
	[OPT_IPUT_DELAY] = { "inject-iput-delay", 0, "MS", RL_IPUT_DELAY_HELP },
	[OPT_IOLOG] = { "iolog", 0, "FILE",
			RL_IOLOG_HELP ", which is before run returns; not with --backend file" },
	[OPT_KEEP] = { "keep", 0, NULL,
		       "keep the private daemon's temporary directory and image, and say "
		       "where it is" },
	{ 0 },
};

struct run_args {
	uint64_t mem, image_size;
	const char *json, *socket, *image;
	enum rl_policy policy;
	enum rl_wb_mode wb;
	unsigned dirty_ratio, dirty_bg;		/* 0 = the daemon's default */
	unsigned dirty_expire;			/* ms, 0 = the daemon's default */
	unsigned iput_delay;			/* ms, fault injection; 0 = none */
	char *iolog;				/* absolute (the daemon's cwd is not ours to assume) */
	enum rl_backend_kind backend;
	bool verify, lockdep, keep;
	bool private_opts;	/* an option that configures a private daemon was given */
	char **prog_argv;	/* NULL-terminated */
};

/* The daemon the program runs under. */
struct daemon {
	bool private;
	pid_t pid;		/* private: the serve process */
	int ctl;		/* control connection */
	char dir[PATH_MAX];	/* private: the temporary directory */
	char image[PATH_MAX];	/* private: the image it made, "" if --image */
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char mnt[PATH_MAX];	/* "" if unknown (a shared daemon) */
};

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s run: ", rl_program);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- the command line ---- */

static int parse_args(const struct rl_cmd *cmd, int argc, char **argv, struct run_args *ra)
{
	int prog = rl_program_index(cmd, argc, argv);
	struct rl_parser p;
	int o;

	ra->mem = RUN_DEFAULT_MEM;
	ra->image_size = RUN_DEFAULT_IMAGE;
	ra->policy = RL_DEFAULT_POLICY;
	ra->wb = RL_DEFAULT_WB;
	ra->backend = RL_BACKEND_DEEPFS;
	rl_parser_init(&p, cmd, prog, argv);
	while ((o = rl_next_opt(&p)) >= 0) {
		if (o != OPT_JSON && o != OPT_SOCKET && o != OPT_KEEP)
			ra->private_opts = true;
		switch (o) {
		case OPT_MEM:
			if (!rl_opt_size(&p, "--mem", &ra->mem) || !rl_check_mem(cmd, ra->mem))
				return RL_EXIT_USAGE;
			break;
		case OPT_JSON:
			ra->json = p.optarg;
			break;
		case OPT_SOCKET:
			ra->socket = p.optarg;
			break;
		case OPT_IMAGE:
			ra->image = p.optarg;
			break;
		case OPT_IMAGE_SIZE:
			if (!rl_opt_size(&p, "--image-size", &ra->image_size))
				return RL_EXIT_USAGE;
			break;
		case OPT_POLICY:
			if (!rl_parse_policy(cmd, p.optarg, &ra->policy))
				return RL_EXIT_USAGE;
			break;
		case OPT_WB:
			if (!rl_parse_wb(cmd, p.optarg, &ra->wb))
				return RL_EXIT_USAGE;
			break;
		case OPT_DIRTY_RATIO:
			if (!rl_parse_ratio(&p, "--dirty-ratio", &ra->dirty_ratio))
				return RL_EXIT_USAGE;
			break;
		case OPT_DIRTY_BG:
			if (!rl_parse_ratio(&p, "--dirty-background-ratio", &ra->dirty_bg))
				return RL_EXIT_USAGE;
			break;
		case OPT_DIRTY_EXPIRE:
			if (!rl_parse_dirty_expire(&p, &ra->dirty_expire))
				return RL_EXIT_USAGE;
			break;
		case OPT_BACKEND:
			if (!rl_parse_backend(cmd, p.optarg, &ra->backend))
				return RL_EXIT_USAGE;
			break;
		case OPT_VERIFY:
			ra->verify = true;
			break;
		case OPT_LOCKDEP:
			ra->lockdep = true;
			break;
		case OPT_IPUT_DELAY:
			if (!rl_parse_iput_delay(&p, &ra->iput_delay))
				return RL_EXIT_USAGE;
			break;
		case OPT_IOLOG:
			free(ra->iolog);
			ra->iolog = rl_absolute_path(p.optarg);
			if (!ra->iolog) {
				fail("--iolog %s: %s", p.optarg, strerror(errno));
				return RUN_EXIT_FAILED;
			}
			break;
		case OPT_KEEP:
			ra->keep = true;
			break;
		}
	}
	if (o == RL_OPT_HELP)
		return -1;
	if (o == RL_OPT_ERROR)
		return RL_EXIT_USAGE;
	if (prog >= argc) {
		rl_usage_error(cmd, "missing PROGRAM: what should run under the pager?");
		return RL_EXIT_USAGE;
	}
	if (ra->socket && ra->private_opts) {
		rl_usage_error(cmd, "--mem, --image, --image-size, --policy, --wb, --dirty-*, "
			       "--backend, --verify, --lockdep, --inject-* and --iolog configure a "
			       "private daemon; "
			       "with --socket, the daemon's own settings apply");
		return RL_EXIT_USAGE;
	}
	if (ra->socket && ra->keep) {
		rl_usage_error(cmd, "--keep is about a private daemon; there is none with "
			       "--socket");
		return RL_EXIT_USAGE;
	}
	if (ra->image && ra->image_size != RUN_DEFAULT_IMAGE) {
		rl_usage_error(cmd, "--image-size is for a new image; --image is used as it is");
		return RL_EXIT_USAGE;
	}
	if (!rl_check_iolog(cmd, ra->iolog, ra->backend))
		return RL_EXIT_USAGE;
	ra->prog_argv = &argv[prog];
	return RL_EXIT_OK;
}

/* ---- checks before anything starts ---- */

/* Returns 0 with *path (malloc'd) set, or run's exit status; says why. */
static int check_executable(const char *path, const char *shown, char **out)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR) {
			fail("%s: No such file or directory", shown);
			return RUN_EXIT_NOTFOUND;
		}
		fail("%s: %s", shown, strerror(errno));
		return RUN_EXIT_NOEXEC;
	}
	if (S_ISDIR(st.st_mode)) {
		fail("%s: Is a directory", shown);
		return RUN_EXIT_NOEXEC;
	}
	if (!S_ISREG(st.st_mode) || access(path, X_OK) < 0) {
		fail("%s: Permission denied", shown);
		return RUN_EXIT_NOEXEC;
	}
	*out = strdup(path);
	return *out ? 0 : RUN_EXIT_FAILED;
}

/* PATH search as execvp(3) does it, so that the answer is known before the
 * daemon starts; the program is then executed by the path found here. */
static int find_program(const char *name, char **out)
{
	const char *path = getenv("PATH"), *p, *end;
	bool denied = false;

	if (strchr(name, '/'))
		return check_executable(name, name, out);
	if (!*name) {
		fail("'': command not found");
		return RUN_EXIT_NOTFOUND;
	}
	if (!path)
		path = "/bin:/usr/bin";		/* glibc's execvp without PATH */
	for (p = path; ; p = end + 1) {
		char cand[PATH_MAX];
		struct stat st;
		int n;

		end = strchrnul(p, ':');
		if (end == p)
			n = snprintf(cand, sizeof(cand), "%s", name);	/* "" is "." */
		else
			n = snprintf(cand, sizeof(cand), "%.*s/%s", (int)(end - p), p, name);
		if (n > 0 && (size_t)n < sizeof(cand) && stat(cand, &st) == 0 &&
		    S_ISREG(st.st_mode)) {
			if (access(cand, X_OK) == 0) {
				*out = strdup(cand);
				return *out ? 0 : RUN_EXIT_FAILED;
			}
			denied = true;
		}
		if (!*end)
			break;
	}
	if (denied) {
		fail("%s: Permission denied", name);
		return RUN_EXIT_NOEXEC;
	}
	fail("%s: command not found", name);
	return RUN_EXIT_NOTFOUND;
}

/*
 * The shim needs a userfaultfd that handles kernel-mode faults too (a
 * read(2) into a paged-out buffer), which an unprivileged user may not get.
 * Better said here than by every program's shim.
 */
static int check_userfaultfd(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno == EPERM) {
		/* the shim asks /dev/userfaultfd next, which an ACL may open */
		fd = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		fail("userfaultfd is not available to this user (uid %u), and the pager needs "
		     "one that handles faults in system calls too. Any one of these fixes it:\n"
		     "  - run as root (or with CAP_SYS_PTRACE);\n"
		     "  - give this user access to /dev/userfaultfd, e.g. "
		     "'setfacl -m u:%u:rw /dev/userfaultfd';\n"
		     "  - allow it to every user: 'sysctl vm.unprivileged_userfaultfd=1'.",
		     (unsigned)getuid(), (unsigned)getuid());
		return RUN_EXIT_FAILED;
	}
	if (errno == ENOSYS) {
		fail("this kernel has no userfaultfd (CONFIG_USERFAULTFD), which the pager "
		     "needs");
		return RUN_EXIT_FAILED;
	}
	fail("userfaultfd: %s", strerror(errno));
	return RUN_EXIT_FAILED;
}

/* LD_PRELOAD splits on ':' and ' ', so such a path cannot be preloaded. */
static int shim_usable(const char *path, char *out, size_t size)
{
	char *abs = realpath(path, NULL);

	if (!abs)
		return -errno;
	if (strpbrk(abs, ": ") || strlen(abs) >= size) {
		free(abs);
		return -EINVAL;
	}
	strcpy(out, abs);
	free(abs);
	return access(out, R_OK) < 0 ? -errno : 0;
}

static int find_shim(char *out, size_t size)
{
	const char *env = getenv("RECLAIMLAB_SHIM");
	char exe[PATH_MAX], cand[3][PATH_MAX + 32];
	ssize_t n;
	char *slash;
	int error;

	if (env && *env) {
		error = shim_usable(env, out, size);
		if (error)
			fail("RECLAIMLAB_SHIM=%s: %s", env,
			     error == -EINVAL ? "a path with ':' or ' ' cannot be preloaded"
					      : strerror(-error));
		return error ? RUN_EXIT_FAILED : 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0) {
		fail("/proc/self/exe: %s", strerror(errno));
		return RUN_EXIT_FAILED;
	}
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	*slash = '\0';
	snprintf(cand[0], sizeof(cand[0]), "%s/../pager/" RUN_SHIM_NAME, exe);	/* build tree */
	snprintf(cand[1], sizeof(cand[1]), "%s/" RUN_SHIM_NAME, exe);
	snprintf(cand[2], sizeof(cand[2]), "%s/" RUN_SHIM_NAME, RL_LIBDIR);
	for (int i = 0; i < 3; i++)
		if (shim_usable(cand[i], out, size) == 0)
			return 0;
	fail("cannot find the shim %s (looked for %s, %s and %s); set RECLAIMLAB_SHIM to it",
	     RUN_SHIM_NAME, cand[0], cand[1], cand[2]);
	return RUN_EXIT_FAILED;
}

/* Opened before the program runs, so that a bad --json FILE costs no run. */
static int open_json(const char *path, FILE **fp)
{
	if (!path) {
		*fp = NULL;
		return 0;
	}
	if (strcmp(path, "-") == 0) {
		*fp = stdout;
		return 0;
	}
	*fp = fopen(path, "we");
	if (!*fp) {
		fail("--json %s: %s", path, strerror(errno));
		return RUN_EXIT_FAILED;
	}
	return 0;
}

/* ---- signals ----
 *
 * While run sets up, SIGINT, SIGQUIT, SIGTERM and SIGHUP stop it cleanly
 * (the private daemon stopped, its directory removed). While the program
 * runs, run is out of the way: ^C and ^\ are the program's (run ignores
 * them, as system(3) does), and a SIGTERM or SIGHUP sent to run alone (by
 * timeout(1), say) is passed on to the program, so that run still cleans
 * up after it.
 */
static const int run_signals[] = { SIGINT, SIGQUIT, SIGTERM, SIGHUP };
#define NR_RUN_SIGNALS (sizeof(run_signals) / sizeof(run_signals[0]))

static volatile sig_atomic_t got_signal;
static volatile pid_t forward_to;

static void on_signal(int sig)
{
	pid_t pid = forward_to;

	if (pid > 0)
		kill(pid, sig);
	else
		got_signal = sig;
}

/* orig: where the dispositions run found are kept, for the program */
static void catch_signals(struct sigaction orig[NR_RUN_SIGNALS])
{
	struct sigaction act = { .sa_handler = on_signal };

	sigemptyset(&act.sa_mask);
	for (size_t i = 0; i < NR_RUN_SIGNALS; i++) {
		sigaction(run_signals[i], NULL, &orig[i]);
		/* a signal the caller ignores stays ignored (nohup, background jobs) */
		if (orig[i].sa_handler != SIG_IGN)
			sigaction(run_signals[i], &act, NULL);
	}
}

static void restore_signals(const struct sigaction orig[NR_RUN_SIGNALS])
{
	for (size_t i = 0; i < NR_RUN_SIGNALS; i++)
		sigaction(run_signals[i], &orig[i], NULL);
}

/*
 * Around fork: a child still running run's handler until it execs would
 * swallow a signal meant for it (forward_to is the parent's). The child sets
 * its dispositions first, then unblocks.
 */
static void block_run_signals(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < NR_RUN_SIGNALS; i++)
		sigaddset(&set, run_signals[i]);
	sigprocmask(SIG_BLOCK, &set, old);
}

static int interrupted(void)
{
	if (!got_signal)
		return 0;
	fail("interrupted by signal %d; stopping", (int)got_signal);
	return 128 + got_signal;
}

/* ---- the daemon ---- */

static int connect_daemon(struct daemon *d)
{
	d->ctl = rl_ctl_connect(d->sock);
	if (d->ctl < 0) {
		int error = -d->ctl;

		d->ctl = -1;
		if (error == ENOENT || error == ECONNREFUSED)
			fail("no pager daemon listens on %s (start one with 'reclaimlab serve')",
			     d->sock);
		else
			fail("cannot connect to the pager daemon on %s: %s", d->sock,
			     strerror(error));
		return RUN_EXIT_FAILED;
	}
	return 0;
}

/* A shared daemon's mount point, if it is the default one next to its socket. */
static void guess_shared_mount(struct daemon *d)
{
	struct stat st, parent;
	char up[PATH_MAX + 8];
	char *slash;

	snprintf(d->mnt, sizeof(d->mnt), "%s", d->sock);
	slash = strrchr(d->mnt, '/');
	if (!slash || (size_t)(slash - d->mnt) + sizeof("/mnt") > sizeof(d->mnt)) {
		d->mnt[0] = '\0';
		return;
	}
	strcpy(slash, "/mnt");
	snprintf(up, sizeof(up), "%s/..", d->mnt);
	if (stat(d->mnt, &st) < 0 || stat(up, &parent) < 0 || st.st_dev == parent.st_dev)
		d->mnt[0] = '\0';
}

static int make_private_dir(struct daemon *d, const struct run_args *ra)
{
	const char *tmp = getenv("TMPDIR");
	int n;

	/* /var/tmp, not /tmp: the image is where evicted pages go, and /tmp may
	 * be a tmpfs, i.e. memory */
	if (!tmp || !*tmp)
		tmp = "/var/tmp";
	n = snprintf(d->dir, sizeof(d->dir), "%s/reclaimlab-run-XXXXXX", tmp);
	if (n < 0 || (size_t)n >= sizeof(d->dir) || !mkdtemp(d->dir)) {
		fail("cannot make a temporary directory in %s: %s", tmp,
		     n < 0 || (size_t)n >= sizeof(d->dir) ? strerror(ENAMETOOLONG)
							  : strerror(errno));
		d->dir[0] = '\0';
		return RUN_EXIT_FAILED;
	}
	n = snprintf(d->sock, sizeof(d->sock), "%s/pager.sock", d->dir);
	if (n < 0 || (size_t)n >= sizeof(d->sock)) {
		fail("%s/pager.sock: too long for a unix socket; set TMPDIR to a shorter "
		     "directory", d->dir);
		return RUN_EXIT_FAILED;
	}
	n = snprintf(d->mnt, sizeof(d->mnt), "%s/mnt", d->dir);
	if (n < 0 || (size_t)n >= sizeof(d->mnt)) {
		d->mnt[0] = '\0';
		fail("%s/mnt: %s", d->dir, strerror(ENAMETOOLONG));
		return RUN_EXIT_FAILED;
	}
	if (mkdir(d->mnt, 0700) < 0) {
		fail("%s: %s", d->mnt, strerror(errno));
		d->mnt[0] = '\0';
		return RUN_EXIT_FAILED;
	}
	if (!ra->image) {
		struct dfs_mkfs_opts mo = { .size = ra->image_size, .label = "pager" };
		int error;

		n = snprintf(d->image, sizeof(d->image), "%s/pager.img", d->dir);
		if (n < 0 || (size_t)n >= sizeof(d->image)) {
			d->image[0] = '\0';
			fail("%s/pager.img: %s", d->dir, strerror(ENAMETOOLONG));
			return RUN_EXIT_FAILED;
		}
		error = dfs_mkfs(d->image, &mo);
		if (error) {
			fail("cannot make the pager's image %s: %s", d->image, strerror(-error));
			return RUN_EXIT_FAILED;
		}
	}
	return 0;
}

/* Waits for the ready byte of `serve --ready-fd`; EOF means it gave up. */
static int wait_ready(struct daemon *d, int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char byte;
	int n = 0, ws;

	/* in slices: a signal that came before poll() would not interrupt it */
	for (int waited = 0; !got_signal && waited < RUN_READY_TIMEOUT_MS; waited += 100) {
		n = poll(&pfd, 1, 100);
		if (n != 0 && !(n < 0 && errno == EINTR))
			break;
	}
	if (n <= 0 || got_signal) {
		int status = interrupted();

		if (!status) {
			fail("the pager daemon was not ready after %d s; stopping it",
			     RUN_READY_TIMEOUT_MS / 1000);
			status = RUN_EXIT_FAILED;
		}
		kill(d->pid, SIGTERM);
		while (waitpid(d->pid, NULL, 0) < 0 && errno == EINTR)
			;
		d->pid = 0;
		return status;
	}
	do {
		n = (int)read(fd, &byte, 1);
	} while (n < 0 && errno == EINTR);
	if (n == 1)
		return 0;
	while (waitpid(d->pid, &ws, 0) < 0 && errno == EINTR)
		;
	d->pid = 0;
	if (WIFEXITED(ws))
		fail("the pager daemon could not start (exit status %d, its message is above)",
		     WEXITSTATUS(ws));
	else
		fail("the pager daemon died of signal %d while starting", WTERMSIG(ws));
	return RUN_EXIT_FAILED;
}

static void exec_daemon(const struct run_args *ra, const struct daemon *d, int ready_fd,
			pid_t parent)
{
	char mem[32], fd[16], ratio[16], bg[16], expire[16], iput_delay[16];
	const char *argv[40];
	int a = 0, null;

	/* the terminal's ^C is for the program; run stops the daemon itself */
	setpgid(0, 0);
	/* and should run itself die, the daemon must not outlive it */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(RUN_EXIT_FAILED);
	null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
	}
	fcntl(ready_fd, F_SETFD, 0);
	snprintf(mem, sizeof(mem), "%" PRIu64, ra->mem);
	snprintf(fd, sizeof(fd), "%d", ready_fd);
	argv[a++] = rl_program;
	argv[a++] = "serve";
	argv[a++] = ra->image ? ra->image : d->image;
	argv[a++] = "--socket";
	argv[a++] = d->sock;
	argv[a++] = "--mountpoint";
	argv[a++] = d->mnt;
	argv[a++] = "--mem";
	argv[a++] = mem;
	argv[a++] = "--policy";
	argv[a++] = rl_policy_name(ra->policy);
	argv[a++] = "--wb";
	argv[a++] = rl_wb_mode_name(ra->wb);
	if (ra->dirty_ratio) {
		snprintf(ratio, sizeof(ratio), "%u", ra->dirty_ratio);
		argv[a++] = "--dirty-ratio";
		argv[a++] = ratio;
	}
	if (ra->dirty_bg) {
		snprintf(bg, sizeof(bg), "%u", ra->dirty_bg);
		argv[a++] = "--dirty-background-ratio";
		argv[a++] = bg;
	}
	if (ra->dirty_expire) {
		snprintf(expire, sizeof(expire), "%u", ra->dirty_expire);
		argv[a++] = "--dirty-expire";
		argv[a++] = expire;
	}
	argv[a++] = "--backend";
	argv[a++] = rl_backend_name_of(ra->backend);
	if (ra->backend == RL_BACKEND_FILE) {
		argv[a++] = "--backing-dir";
		argv[a++] = d->dir;
	}
	if (ra->verify)
		argv[a++] = "--verify";
	if (ra->lockdep)
		argv[a++] = "--lockdep";
	if (ra->iput_delay) {
		snprintf(iput_delay, sizeof(iput_delay), "%u", ra->iput_delay);
		argv[a++] = "--inject-iput-delay";
		argv[a++] = iput_delay;
	}
	if (ra->iolog) {
		argv[a++] = "--iolog";
		argv[a++] = ra->iolog;
	}
	argv[a++] = "--ready-fd";
	argv[a++] = fd;
	argv[a++] = "--quiet";
	argv[a] = NULL;
	execv("/proc/self/exe", (char **)argv);
	fprintf(stderr, "%s run: cannot start the pager daemon: /proc/self/exe: %s\n",
		rl_program, strerror(errno));
	_exit(RUN_EXIT_FAILED);
}

static int start_private_daemon(const struct run_args *ra, struct daemon *d)
{
	pid_t parent = getpid();
	int pipefd[2], status;
	sigset_t mask;

	d->private = true;
	status = make_private_dir(d, ra);
	if (status)
		return status;
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		fail("pipe: %s", strerror(errno));
		return RUN_EXIT_FAILED;
	}
	fflush(NULL);
	block_run_signals(&mask);
	d->pid = fork();
	if (d->pid == 0) {
		/* the daemon handles its signals itself, once it is one */
		struct sigaction dfl = { .sa_handler = SIG_DFL };

		sigemptyset(&dfl.sa_mask);
		for (size_t i = 0; i < NR_RUN_SIGNALS; i++)
			sigaction(run_signals[i], &dfl, NULL);
		sigprocmask(SIG_SETMASK, &mask, NULL);
		close(pipefd[0]);
		exec_daemon(ra, d, pipefd[1], parent);
	}
	sigprocmask(SIG_SETMASK, &mask, NULL);
	if (d->pid < 0) {
		fail("fork: %s", strerror(errno));
		d->pid = 0;
		close(pipefd[0]);
		close(pipefd[1]);
		return RUN_EXIT_FAILED;
	}
	close(pipefd[1]);
	status = wait_ready(d, pipefd[0]);
	close(pipefd[0]);
	return status ? status : connect_daemon(d);
}

/* Stops a private daemon: deepfs is written back and unmounted before it exits. */
static void stop_private_daemon(struct daemon *d)
{
	int ws, error;

	if (!d->pid)
		return;
	error = d->ctl >= 0 ? rl_ctl_shutdown(d->ctl) : -ENOTCONN;
	/* the daemon's teardown must not wait for this connection to go */
	if (d->ctl >= 0)
		close(d->ctl);
	d->ctl = -1;
	if (error) {
		fail("cannot ask the pager daemon to stop (%s); sending SIGTERM",
		     strerror(-error));
		kill(d->pid, SIGTERM);
	}
	while (waitpid(d->pid, &ws, 0) < 0 && errno == EINTR)
		;
	d->pid = 0;
	if (WIFSIGNALED(ws))
		fail("the pager daemon died of signal %d while stopping", WTERMSIG(ws));
	else if (WEXITSTATUS(ws) != 0)
		fail("the pager daemon exited with status %d while stopping (its message is "
		     "above)", WEXITSTATUS(ws));
}

/* Removes only what run made there; anything else keeps the directory. */
static void remove_private_dir(struct daemon *d)
{
	if (!d->dir[0])
		return;
	if (d->image[0] && unlink(d->image) < 0 && errno != ENOENT)
		fail("%s: %s", d->image, strerror(errno));
	if (unlink(d->sock) < 0 && errno != ENOENT)
		fail("%s: %s", d->sock, strerror(errno));
	if (d->mnt[0] && rmdir(d->mnt) < 0 && errno != ENOENT) {
		/* still mounted if the daemon died: detach it, then try again */
		if (umount2(d->mnt, MNT_DETACH) < 0 || rmdir(d->mnt) < 0)
			fail("%s: %s", d->mnt, strerror(errno));
	}
	if (rmdir(d->dir) < 0)
		fail("left %s behind: %s", d->dir, strerror(errno));
}

/* ---- the program ---- */

static int make_session(char *buf, size_t size)
{
	unsigned char r[6];
	int n;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		fail("getrandom: %s", strerror(errno));
		return RUN_EXIT_FAILED;
	}
	n = snprintf(buf, size, "run-%d-%02x%02x%02x%02x%02x%02x", (int)getpid(), r[0], r[1],
		     r[2], r[3], r[4], r[5]);
	return n > 0 && (size_t)n < size ? 0 : RUN_EXIT_FAILED;
}

/* In the child: the environment the shim reads, then the program. */
static void exec_program(const char *path, char **argv, const char *shim,
			 const struct daemon *d, const char *session)
{
	const char *old = getenv("LD_PRELOAD");
	char *preload = NULL;

	if (asprintf(&preload, "%s%s%s", shim, old && *old ? ":" : "", old ? old : "") < 0 ||
	    setenv("LD_PRELOAD", preload, 1) || setenv("RECLAIMLAB_SOCK", d->sock, 1) ||
	    setenv("RECLAIMLAB_SESSION", session, 1) ||
	    (d->mnt[0] && setenv("RECLAIMLAB_MOUNT", d->mnt, 1))) {
		fprintf(stderr, "%s run: environment: %s\n", rl_program, strerror(errno));
		_exit(RUN_EXIT_FAILED);
	}
	execv(path, argv);
	fprintf(stderr, "%s run: %s: %s\n", rl_program, argv[0], strerror(errno));
	_exit(errno == ENOENT ? RUN_EXIT_NOTFOUND : RUN_EXIT_NOEXEC);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_program(const char *path, char **argv, const char *shim, const struct daemon *d,
		       const char *session, const struct sigaction orig[NR_RUN_SIGNALS],
		       int *ws, double *wall)
{
	struct sigaction ign = { .sa_handler = SIG_IGN };
	sigset_t mask;
	double start;
	pid_t pid;

	sigemptyset(&ign.sa_mask);
	sigaction(SIGINT, &ign, NULL);
	sigaction(SIGQUIT, &ign, NULL);
	fflush(NULL);
	start = now();
	block_run_signals(&mask);
	pid = fork();
	if (pid == 0) {
		restore_signals(orig);
		sigprocmask(SIG_SETMASK, &mask, NULL);
		exec_program(path, argv, shim, d, session);
	}
	if (pid > 0) {
		forward_to = pid;
		if (got_signal)		/* came after the last look before the program */
			kill(pid, got_signal);
	}
	sigprocmask(SIG_SETMASK, &mask, NULL);
	if (pid < 0) {
		fail("fork: %s", strerror(errno));
		return RUN_EXIT_FAILED;
	}
	while (waitpid(pid, ws, 0) < 0 && errno == EINTR)
		;
	forward_to = 0;
	got_signal = 0;		/* the program's signal, not run's */
	*wall = now() - start;
	return 0;
}

static int exit_status_of(int ws)
{
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return WEXITSTATUS(ws);
}

/* ---- the report ---- */

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static int write_json(FILE *f, const struct run_args *ra, const struct daemon *d, int ws,
		      double wall, const struct rl_counters *c)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	struct json_object *o = json_object_new_object(), *args, *faults;
	int ret;

	json_object_object_add(o, "program", json_object_new_string(ra->prog_argv[0]));
	args = json_object_new_array();
	for (char **a = ra->prog_argv; *a; a++)
		json_object_array_add(args, json_object_new_string(*a));
	json_object_object_add(o, "argv", args);
	json_object_object_add(o, "exit_status", json_object_new_int(exit_status_of(ws)));
	if (WIFSIGNALED(ws))
		json_object_object_add(o, "signal", json_object_new_int(WTERMSIG(ws)));
	json_object_object_add(o, "wall_seconds", json_object_new_double(wall));
	add_u64(o, "mem_bytes", d->private ? ra->mem : c->budget_pages * page);
	add_u64(o, "budget_pages", c->budget_pages);
	json_object_object_add(o, "policy",
			       json_object_new_string(rl_policy_name(c->reclaim.policy) ?: "?"));
	json_object_object_add(o, "wb",
			       json_object_new_string(rl_wb_mode_name(c->reclaim.wb) ?: "?"));
	/* a shared daemon does not say how it was configured */
	json_object_object_add(o, "backend",
			       d->private ? json_object_new_string(rl_backend_name_of(ra->backend))
					  : NULL);
	json_object_object_add(o, "verify", d->private ? json_object_new_boolean(ra->verify)
						       : NULL);
	faults = json_object_new_object();
	add_u64(faults, "missing", c->faults_missing);
	add_u64(faults, "wp", c->faults_wp);
	json_object_object_add(o, "faults", faults);
	add_u64(o, "pages_read_in", c->pages_read);
	add_u64(o, "pages_written_back", c->pages_written);
	add_u64(o, "evictions", c->evictions);
	add_u64(o, "refaults", c->refaults);
	add_u64(o, "zero_fills", c->zero_fills);
	add_u64(o, "discards", c->discards);
	add_u64(o, "bytes_read", c->bytes_read);
	add_u64(o, "bytes_written", c->bytes_written);
	add_u64(o, "peak_resident_frames", c->peak_resident);
	add_u64(o, "peak_resident_bytes", c->peak_resident * page);
	add_u64(o, "clients", c->clients);
	add_u64(o, "verify_checked", c->verify_checked);
	add_u64(o, "verify_failed", c->verify_failed);
	json_object_object_add(o, "reclaim", rl_reclaim_json(&c->reclaim));

	ret = fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
								  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	if (ret < 0 || fflush(f) != 0) {
		fail("--json %s: %s", ra->json, strerror(errno));
		return RUN_EXIT_FAILED;
	}
	return 0;
}

/* Counters of the session, once its clients are gone (forked children too). */
static int report(const struct run_args *ra, const struct daemon *d, const char *session,
		  FILE *json, int ws, double wall)
{
	struct rl_counters c;
	int error;

	error = rl_ctl_stats(d->ctl, session, RUN_STATS_WAIT_MS, &c);
	if (error) {
		fail("cannot get the counters of this run from the pager daemon: %s",
		     strerror(-error));
		return json ? RUN_EXIT_FAILED : 0;
	}
	if (c.live_clients)
		fail("%" PRIu64 " process%s of this run still use%s the pager after %d s",
		     c.live_clients, c.live_clients == 1 ? "" : "es",
		     c.live_clients == 1 ? "s" : "", RUN_STATS_WAIT_MS / 1000);
	return json ? write_json(json, ra, d, ws, wall, &c) : 0;
}

static int run_run(const struct rl_cmd *cmd, int argc, char **argv)
{
	struct run_args ra = { 0 };
	struct daemon d = { .ctl = -1 };
	struct sigaction orig[NR_RUN_SIGNALS];
	char shim[PATH_MAX], session[RL_SESSION_LEN];
	char *path = NULL;
	FILE *json = NULL;
	int status, ws = 0;
	double wall = 0;

	status = parse_args(cmd, argc, argv, &ra);
	if (status) {
		free(ra.iolog);
		return status < 0 ? RL_EXIT_OK : status;	/* < 0: --help */
	}
	status = find_program(ra.prog_argv[0], &path);
	if (!status)
		status = check_userfaultfd();
	if (!status)
		status = find_shim(shim, sizeof(shim));
	if (!status)
		status = make_session(session, sizeof(session));
	if (!status)
		status = open_json(ra.json, &json);
	if (status)
		goto out;

	catch_signals(orig);
	if (ra.socket) {
		if (strlen(ra.socket) >= sizeof(d.sock)) {
			fail("--socket %s: too long for a unix socket", ra.socket);
			status = RUN_EXIT_FAILED;
			goto out_daemon;
		}
		strcpy(d.sock, ra.socket);
		status = connect_daemon(&d);
		if (!status && !getenv("RECLAIMLAB_MOUNT"))
			guess_shared_mount(&d);
	} else {
		status = start_private_daemon(&ra, &d);
	}
	if (!status)
		status = interrupted();
	if (status)
		goto out_daemon;

	status = run_program(path, ra.prog_argv, shim, &d, session, orig, &ws, &wall);
	if (status)
		goto out_daemon;
	/* a failed report is run's failure only when nothing else went wrong */
	status = report(&ra, &d, session, json, ws, wall);
	if (exit_status_of(ws) || !status)
		status = exit_status_of(ws);

out_daemon:
	/* cleaning up is what a signal now would ask for anyway */
	stop_private_daemon(&d);
	if (d.ctl >= 0)
		close(d.ctl);
	if (d.private) {
		if (ra.keep)
			fprintf(stderr, "%s run: kept %s%s\n", rl_program, d.dir,
				d.image[0] ? " (pager.img is the pager's deepfs image)" : "");
		else
			remove_private_dir(&d);
	}
	restore_signals(orig);
out:
	if (json && json != stdout) {
		bool empty = ftell(json) == 0;

		if (fclose(json) != 0 && !status) {
			fail("--json %s: %s", ra.json, strerror(errno));
			status = RUN_EXIT_FAILED;
		}
		if (empty)	/* no report: no file that looks like one */
			unlink(ra.json);
	}
	free(path);
	free(ra.iolog);
	return status;
}

const struct rl_cmd rl_cmd_run = {
	.name = "run",
	.args = "[--] PROGRAM [ARGS...]",
	.summary = "Run a program with its memory paged by the userfaultfd pager",
	.description =
		"Runs PROGRAM, unmodified and dynamically linked, with its heap, its "
		"anonymous mmaps and its MAP_SHARED mappings of files on the pager's mount "
		"in memory served by the pager: at most --mem of it is resident, the rest "
		"is paged to a deepfs image. Unless --socket names a running 'reclaimlab "
		"serve', run starts a private daemon in a temporary directory under "
		"$TMPDIR (else /var/tmp) and removes it afterwards. Options end at the "
		"first word that is not one of run's (or at '--'): the rest is the "
		"program's.\n\n"
		"The program gets LD_PRELOAD=librlshim.so (before any LD_PRELOAD it had), "
		"RECLAIMLAB_SOCK (the daemon's socket), RECLAIMLAB_SESSION (the key of this "
		"run's counters) and RECLAIMLAB_MOUNT (the deepfs mount point). "
		"RECLAIMLAB_SHIM chooses another shim. Programs it starts run under the "
		"pager too; a child that a process forks without exec leaves the pager "
		"with a private copy of its parent's memory.\n\n"
		"Exit status: the program's; 128+N if a signal N killed it; 70 if the "
		"pager had to stop it (the message says why: the daemon stopped, or a "
		"page could not be read back); 125 if run itself failed (no usable "
		"userfaultfd, no shim, the daemon did not start, or the --json report of a "
		"program that succeeded could not be written); 126 if PROGRAM is not "
		"executable; 127 if it is not found; 2 for a bad command line. With "
		"--json, exit_status is that status and signal is present only if a "
		"signal killed the program.",
	.opts = run_opts,
	.run = run_run,
};
