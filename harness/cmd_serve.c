/* SPDX-License-Identifier: MIT */
/*
 * reclaimlab serve: the pager daemon. One process mounts a deepfs image,
 * serves it through FUSE (so that programs can map its files) and runs the
 * userfaultfd pager (pager/pager.h), whose backing store is that same
 * deepfs. It stays in the foreground; `reclaimlab run` starts a private one
 * of these for each program.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "fs/deepfs.h"
#include "harness/fuse_ll.h"
#include "harness/pager_opts.h"
#include "lib/lockdep.h"
#include "pager/pager.h"

enum {
	OPT_MEM, OPT_POLICY, OPT_WB, OPT_DIRTY_RATIO, OPT_DIRTY_BG, OPT_DIRTY_EXPIRE, OPT_BACKEND,
	OPT_BACKING_DIR, OPT_VERIFY, OPT_LOCKDEP, OPT_IPUT_DELAY, OPT_IOLOG, OPT_SOCKET, OPT_MOUNTPOINT, OPT_WORKERS,
	OPT_READY_FD, OPT_QUIET,
};

static const struct rl_opt serve_opts[] = {
	[OPT_MEM] = { "mem", 0, "SIZE",
		      "keep at most SIZE of client pages resident, over all clients "
		      "(default 64M, at least 4M)" },
	[OPT_POLICY] = { "policy", 0, "POLICY", RL_POLICY_HELP },
	[OPT_WB] = { "wb", 0, "MODE", RL_WB_HELP },
	[OPT_DIRTY_RATIO] = { "dirty-ratio", 0, "PCT", RL_DIRTY_RATIO_HELP },
	[OPT_DIRTY_BG] = { "dirty-background-ratio", 0, "PCT", RL_DIRTY_BG_HELP },
	[OPT_DIRTY_EXPIRE] = { "dirty-expire", 0, "MS", RL_DIRTY_EXPIRE_HELP },
	[OPT_BACKEND] = { "backend", 0, "KIND",
			  "where evicted anonymous pages go: deepfs (an unlinked file in IMAGE, "
			  "the default) or file (unlinked files on the host)" },
	[OPT_BACKING_DIR] = { "backing-dir", 0, "DIR",
			      "--backend file: the directory of those files (default $TMPDIR, "
			      "else /var/tmp)" },
	[OPT_VERIFY] = { "verify", 0, NULL, RL_VERIFY_HELP },
	[OPT_LOCKDEP] = { "lockdep", 0, NULL, RL_LOCKDEP_HELP },
	[OPT_IPUT_DELAY] = { "inject-iput-delay", 0, "MS", RL_IPUT_DELAY_HELP },
	[OPT_IOLOG] = { "iolog", 0, "FILE",
			RL_IOLOG_HELP ", i.e. once stopped; not with --backend file" },
	[OPT_SOCKET] = { "socket", 0, "PATH",
			 "listen on PATH (default: pager.sock in the runtime directory)" },
	[OPT_MOUNTPOINT] = { "mountpoint", 0, "DIR",
			     "mount IMAGE there (default: mnt in the runtime directory)" },
	[OPT_WORKERS] = { "workers", 0, "N", "threads serving page faults (default 2)" },
	[OPT_READY_FD] = { "ready-fd", 0, "FD",
			   "write one byte to FD once the pager listens, then close it" },
	[OPT_QUIET] = { "quiet", 'q', NULL,
			"print neither the start line nor a line per client" },
	{ 0 },
};

/* deepfs's own page cache is not what the budget limits (that is the
 * pager's frames): it only buffers the daemon's writeback and reads, so a
 * small one keeps the daemon's memory near --mem. */
#define SERVE_PAGECACHE (16ull << 20)
#define SERVE_DEFAULT_MEM (64ull << 20)

struct serve_args {
	const char *image, *socket, *mountpoint, *backing_dir, *iolog;
	struct rl_pager_config cfg;
	int ready_fd;
	int lock_fd;		/* the image's flock */
	char socket_buf[PATH_MAX], mnt_buf[PATH_MAX];
	char *image_abs, *mnt_abs, *iolog_abs;
};

static int parse_args(const struct rl_cmd *cmd, int argc, char **argv, struct serve_args *sa)
{
	struct rl_parser p;
	uint32_t n;
	int o;

	sa->cfg.mem_bytes = SERVE_DEFAULT_MEM;
	sa->cfg.reclaim.policy = RL_DEFAULT_POLICY;
	sa->cfg.reclaim.wb = RL_DEFAULT_WB;
	sa->cfg.backend = RL_BACKEND_DEEPFS;
	sa->ready_fd = -1;
	rl_parser_init(&p, cmd, argc, argv);
	while ((o = rl_next_opt(&p)) >= 0) {
		switch (o) {
		case OPT_MEM:
			if (!rl_opt_size(&p, "--mem", &sa->cfg.mem_bytes) ||
			    !rl_check_mem(cmd, sa->cfg.mem_bytes))
				return RL_EXIT_USAGE;
			break;
		case OPT_POLICY:
			if (!rl_parse_policy(cmd, p.optarg, &sa->cfg.reclaim.policy))
				return RL_EXIT_USAGE;
			break;
		case OPT_WB:
			if (!rl_parse_wb(cmd, p.optarg, &sa->cfg.reclaim.wb))
				return RL_EXIT_USAGE;
			break;
		case OPT_DIRTY_RATIO:
			if (!rl_parse_ratio(&p, "--dirty-ratio", &sa->cfg.reclaim.dirty_ratio))
				return RL_EXIT_USAGE;
			break;
		case OPT_DIRTY_BG:
			if (!rl_parse_ratio(&p, "--dirty-background-ratio",
					    &sa->cfg.reclaim.dirty_background_ratio))
				return RL_EXIT_USAGE;
			break;
		case OPT_DIRTY_EXPIRE:
			if (!rl_parse_dirty_expire(&p, &sa->cfg.reclaim.dirty_expire_ms))
				return RL_EXIT_USAGE;
			break;
		case OPT_BACKEND:
			if (!rl_parse_backend(cmd, p.optarg, &sa->cfg.backend))
				return RL_EXIT_USAGE;
			break;
		case OPT_BACKING_DIR:
			sa->backing_dir = p.optarg;
			break;
		case OPT_VERIFY:
			sa->cfg.verify = true;
			break;
		case OPT_LOCKDEP:
			/* before any annotated lock exists */
			rl_lockdep_enable(true);
			break;
		case OPT_IPUT_DELAY:
			if (!rl_parse_iput_delay(&p, &sa->cfg.reclaim.iput_delay_ms))
				return RL_EXIT_USAGE;
			break;
		case OPT_IOLOG:
			sa->iolog = p.optarg;
			break;
		case OPT_SOCKET:
			sa->socket = p.optarg;
			break;
		case OPT_MOUNTPOINT:
			sa->mountpoint = p.optarg;
			break;
		case OPT_WORKERS:
			if (!rl_opt_u32(&p, "--workers", &n))
				return RL_EXIT_USAGE;
			if (n == 0 || n > 64) {
				rl_usage_error(cmd, "--workers must be from 1 to 64");
				return RL_EXIT_USAGE;
			}
			sa->cfg.nr_workers = n;
			break;
		case OPT_READY_FD:
			if (!rl_opt_u32(&p, "--ready-fd", &n))
				return RL_EXIT_USAGE;
			if (n > INT_MAX || fcntl((int)n, F_GETFD) < 0) {
				rl_usage_error(cmd, "--ready-fd %s is not an open file descriptor",
					       p.optarg);
				return RL_EXIT_USAGE;
			}
			sa->ready_fd = (int)n;
			break;
		case OPT_QUIET:
			sa->cfg.quiet = true;
			break;
		}
	}
	if (o == RL_OPT_HELP)
		return -1;
	if (o == RL_OPT_ERROR || !rl_want_args(&p, 1, 1))
		return RL_EXIT_USAGE;
	if (sa->backing_dir && sa->cfg.backend != RL_BACKEND_FILE) {
		rl_usage_error(cmd, "--backing-dir is for --backend file");
		return RL_EXIT_USAGE;
	}
	if (!rl_check_iolog(cmd, sa->iolog, sa->cfg.backend))
		return RL_EXIT_USAGE;
	sa->image = argv[p.optind];
	return RL_EXIT_OK;
}

/* st_dev of the FUSE mount, which the shim compares to tell files on it. */
static int mount_dev(const char *mnt, uint64_t *dev)
{
	struct stat st, parent;
	char *up;

	if (asprintf(&up, "%s/..", mnt) < 0)
		return -ENOMEM;
	if (stat(mnt, &st) < 0 || stat(up, &parent) < 0) {
		int error = -errno;

		free(up);
		return error;
	}
	free(up);
	if (st.st_dev == parent.st_dev)
		return -ENOTCONN;	/* not a mount point: the mount did not take */
	*dev = st.st_dev;
	return 0;
}

/* The runtime directory (the default socket's) holds the default mount point. */
static int resolve_paths(struct serve_args *sa)
{
	struct stat st;
	int error;

	if (!sa->socket || !sa->mountpoint) {
		error = rl_default_socket_path(sa->socket_buf, sizeof(sa->socket_buf));
		if (error) {
			fprintf(stderr, "%s serve: no runtime directory for the socket: %s\n",
				rl_program, strerror(-error));
			return RL_EXIT_PROBLEM;
		}
		if (!sa->mountpoint) {
			snprintf(sa->mnt_buf, sizeof(sa->mnt_buf), "%s", sa->socket_buf);
			strcpy(strrchr(sa->mnt_buf, '/'), "/mnt");
			if (mkdir(sa->mnt_buf, 0700) < 0 && errno != EEXIST) {
				fprintf(stderr, "%s serve: %s: %s\n", rl_program, sa->mnt_buf,
					strerror(errno));
				return RL_EXIT_PROBLEM;
			}
			sa->mountpoint = sa->mnt_buf;
		}
		if (!sa->socket)
			sa->socket = sa->socket_buf;
	}
	sa->image_abs = realpath(sa->image, NULL);
	if (!sa->image_abs) {
		fprintf(stderr, "%s serve: %s: %s\n", rl_program, sa->image, strerror(errno));
		return RL_EXIT_PROBLEM;
	}
	sa->mnt_abs = realpath(sa->mountpoint, NULL);
	if (!sa->mnt_abs || stat(sa->mnt_abs, &st) < 0) {
		fprintf(stderr, "%s serve: mountpoint %s: %s\n", rl_program, sa->mountpoint,
			strerror(errno));
		return RL_EXIT_PROBLEM;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "%s serve: mountpoint %s is not a directory\n", rl_program,
			sa->mountpoint);
		return RL_EXIT_PROBLEM;
	}
	if (sa->iolog) {
		sa->iolog_abs = rl_absolute_path(sa->iolog);
		if (!sa->iolog_abs) {
			fprintf(stderr, "%s serve: --iolog %s: %s\n", rl_program, sa->iolog,
				strerror(errno));
			return RL_EXIT_PROBLEM;
		}
	}
	if (mount_dev(sa->mnt_abs, &(uint64_t){ 0 }) == 0) {
		/* mounting over it would hide another daemon's files from its programs */
		fprintf(stderr, "%s serve: %s is a mount point already (another daemon's?)\n",
			rl_program, sa->mnt_abs);
		return RL_EXIT_PROBLEM;
	}
	if (sa->cfg.backend == RL_BACKEND_FILE && !sa->backing_dir) {
		sa->backing_dir = getenv("TMPDIR");
		if (!sa->backing_dir || !*sa->backing_dir)
			sa->backing_dir = "/var/tmp";
	}
	return RL_EXIT_OK;
}

static struct rl_pager *volatile stop_target;

static void on_stop_signal(int sig)
{
	(void)sig;
	if (stop_target)
		rl_pager_request_stop(stop_target);
}

static const int stop_signals[] = { SIGINT, SIGTERM, SIGHUP };

static void stop_signal_mask(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++)
		sigaddset(set, stop_signals[i]);
}

static void install_stop_handlers(void)
{
	struct sigaction act = { .sa_handler = on_stop_signal };

	sigemptyset(&act.sa_mask);
	for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++) {
		struct sigaction old;

		/* one ignored by who started us stays so (nohup, background jobs) */
		if (sigaction(stop_signals[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
			sigaction(stop_signals[i], &act, NULL);
	}
}

static void tell_ready(struct serve_args *sa)
{
	char byte = 1;

	if (sa->ready_fd < 0)
		return;
	if (write(sa->ready_fd, &byte, 1) != 1)
		fprintf(stderr, "%s serve: --ready-fd %d: %s\n", rl_program, sa->ready_fd,
			strerror(errno));
	close(sa->ready_fd);
	sa->ready_fd = -1;
}

/*
 * Two daemons on one image would corrupt it (deepfs has one writer), and a
 * second daemon on a live socket would mount over the first one's mount
 * point before failing: both are refused before anything is mounted.
 */
static int claim(struct serve_args *sa)
{
	int fd = rl_ctl_connect(sa->socket);

	if (fd >= 0) {
		close(fd);
		fprintf(stderr, "%s serve: a pager daemon already listens on %s\n", rl_program,
			sa->socket);
		return RL_EXIT_PROBLEM;
	}
	fd = open(sa->image_abs, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "%s serve: %s: %s\n", rl_program, sa->image, strerror(errno));
		return RL_EXIT_PROBLEM;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr, "%s serve: %s: %s\n", rl_program, sa->image,
			errno == EWOULDBLOCK ? "another reclaimlab serve uses this image"
					     : strerror(errno));
		close(fd);
		return RL_EXIT_PROBLEM;
	}
	sa->lock_fd = fd;
	return RL_EXIT_OK;
}

/* The pager wrote a page of a mapped file into deepfs directly: without this,
 * read() through the mount would go on seeing the kernel's cached copy. */
static void inval_fuse_cache(void *arg, uint64_t ino, uint64_t off, uint64_t len)
{
	rl_fuse_inval_data(arg, ino, off, len);
}

static int serve(struct serve_args *sa)
{
	/* the IO log is saved by dfs_unmount, i.e. after the pager stopped */
	struct dfs_mount_opts dmo = { .pagecache_bytes = SERVE_PAGECACHE,
				      .iolog_path = sa->iolog_abs };
	struct rl_fuse_config fc = { 0 };
	struct dfs_mount *mp;
	struct rl_fuse *f;
	struct rl_pager *p;
	sigset_t stops, old;
	int error, status = RL_EXIT_OK;

	/* Threads started from here on never take the stop signals: only this
	 * one, in rl_pager_wait, and only once there is a pager to stop. */
	stop_signal_mask(&stops);
	pthread_sigmask(SIG_BLOCK, &stops, &old);
	/* a client that closed its stderr must not kill the daemon */
	signal(SIGPIPE, SIG_IGN);

	error = dfs_mount(sa->image_abs, &dmo, &mp);
	if (error) {
		fprintf(stderr, "%s serve: %s: cannot mount: %s\n", rl_program, sa->image,
			strerror(-error));
		status = RL_EXIT_PROBLEM;
		goto out;
	}
	fc.image = sa->image_abs;
	fc.mountpoint = sa->mnt_abs;
	fc.other_writers = true;	/* the pager writes back file regions itself */
	error = rl_fuse_mount(mp, &fc, &f);
	if (error) {
		fprintf(stderr, "%s serve: cannot mount %s on %s\n", rl_program, sa->image,
			sa->mnt_abs);
		dfs_unmount(mp);
		status = RL_EXIT_PROBLEM;
		goto out;
	}
	error = rl_fuse_start(f);
	if (error) {
		fprintf(stderr, "%s serve: cannot serve FUSE requests: %s\n", rl_program,
			strerror(-error));
		status = RL_EXIT_PROBLEM;
		goto out;
	}
	error = mount_dev(sa->mnt_abs, &sa->cfg.mount_dev);
	if (error) {
		fprintf(stderr, "%s serve: %s is not mounted: %s\n", rl_program, sa->mnt_abs,
			strerror(-error));
		status = RL_EXIT_PROBLEM;
		goto out_fuse;
	}

	sa->cfg.socket_path = sa->socket;
	sa->cfg.mp = mp;
	sa->cfg.file_written = inval_fuse_cache;
	sa->cfg.file_written_arg = f;
	sa->cfg.backing_dir = sa->backing_dir;
	error = rl_pager_start(&sa->cfg, &p);
	if (error) {
		fprintf(stderr, "%s serve: cannot start the pager on %s: %s\n", rl_program,
			sa->socket, strerror(-error));
		status = error == -EINVAL ? RL_EXIT_USAGE : RL_EXIT_PROBLEM;
		goto out_fuse;
	}
	if (!sa->cfg.quiet) {
		printf("%s serve: pager on %s (budget %llu MiB, backend %s), deepfs %s on %s\n",
		       rl_program, sa->socket, (unsigned long long)(sa->cfg.mem_bytes >> 20),
		       rl_backend_name_of(sa->cfg.backend), sa->image_abs, sa->mnt_abs);
		fflush(stdout);
	}
	tell_ready(sa);

	stop_target = p;
	install_stop_handlers();
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	rl_pager_wait(p);
	pthread_sigmask(SIG_BLOCK, &stops, NULL);
	stop_target = NULL;
	rl_pager_destroy(p);

out_fuse:
	error = rl_fuse_stop(f);	/* unmounts deepfs too */
	if (error) {
		fprintf(stderr, "%s serve: %s: unmount failed: %s\n", rl_program, sa->image_abs,
			strerror(-error));
		status = RL_EXIT_PROBLEM;
	}
out:
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return status;
}

static int serve_run(const struct rl_cmd *cmd, int argc, char **argv)
{
	struct serve_args sa = { .lock_fd = -1 };
	int status;

	status = parse_args(cmd, argc, argv, &sa);
	if (status < 0)		/* --help */
		return RL_EXIT_OK;
	if (status == RL_EXIT_OK)
		status = resolve_paths(&sa);
	if (status == RL_EXIT_OK)
		status = claim(&sa);
	if (status == RL_EXIT_OK) {
		if (sa.ready_fd >= 0)
			fcntl(sa.ready_fd, F_SETFD, FD_CLOEXEC);
		status = serve(&sa);
	}
	if (sa.ready_fd >= 0)
		close(sa.ready_fd);	/* unwritten: the waiter sees EOF, a failure */
	if (sa.lock_fd >= 0)
		close(sa.lock_fd);
	free(sa.image_abs);
	free(sa.mnt_abs);
	free(sa.iolog_abs);
	return status;
}

const struct rl_cmd rl_cmd_serve = {
	.name = "serve",
	.args = "IMAGE",
	.summary = "Run the userfaultfd pager daemon on a deepfs image",
	.description =
		"Mounts the deepfs IMAGE on the mount point through FUSE and serves the "
		"pager on a unix socket, in the foreground, until SIGINT or SIGTERM (or a "
		"shutdown request). Programs started with 'reclaimlab run --socket PATH' "
		"have their heap and anonymous memory paged by it: at most --mem of their "
		"pages stay resident, over all programs, and the rest is written to IMAGE "
		"(or to host files with --backend file). MAP_SHARED mappings of files under "
		"the mount point are paged from those files.\n\n"
		"The runtime directory is $RECLAIMLAB_RUNTIME_DIR, else "
		"$XDG_RUNTIME_DIR/reclaimlab, else /tmp/reclaimlab-UID; it must belong to "
		"you and be closed to others. On stop, programs still running are told on "
		"their stderr and stopped (exit status 70); deepfs is then written back "
		"and unmounted clean.",
	.opts = serve_opts,
	.run = serve_run,
};
