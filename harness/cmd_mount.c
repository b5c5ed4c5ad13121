/* SPDX-License-Identifier: MIT */
/*
 * reclaimlab mount: mount a deepfs image through FUSE.
 *
 * Like other FUSE filesystems it runs in the background, but it forks
 * *before* mounting and the parent waits for the child's verdict: a corrupt
 * image or a bad mountpoint is reported on the terminal and in the exit
 * status, and the daemon is the same process that mounted deepfs (its
 * io_uring and any threads are never carried across a fork).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "fs/deepfs.h"
#include "harness/fuse_ll.h"

enum {
	OPT_FOREGROUND, OPT_DEBUG, OPT_OPTIONS, OPT_IOLOG, OPT_CACHE, OPT_METACACHE,
	OPT_THREADS, OPT_PIDFILE, OPT_LOG,
};

static const struct rl_opt mount_opts[] = {
	[OPT_FOREGROUND] = { "foreground", 'f', NULL, "stay in the foreground" },
	[OPT_DEBUG] = { "debug", 'd', NULL, "print every FUSE request on stderr (implies -f)" },
	[OPT_OPTIONS] = { "options", 'o', "OPTS",
			  "comma-separated mount options: ro, rw, or any FUSE option "
			  "(default_permissions, allow_other as root, fsname and subtype are set "
			  "already)" },
	[OPT_IOLOG] = { "iolog", 0, "FILE",
			"record every IO deepfs does and write the log to FILE at unmount "
			"(one IO a line: submit_ns complete_ns R|W|F kind offset len error)" },
	[OPT_CACHE] = { "cache", 0, "SIZE", "deepfs page cache for file data (default 64M)" },
	[OPT_METACACHE] = { "meta-cache", 0, "SIZE",
			    "deepfs buffer cache for metadata (default 16M)" },
	[OPT_THREADS] = { "threads", 0, "N", "at most N threads serve FUSE requests (default 10)" },
	[OPT_PIDFILE] = { "pidfile", 0, "FILE",
			  "write the daemon's pid to FILE; it is removed when the daemon exits, "
			  "after deepfs is cleanly unmounted" },
	[OPT_LOG] = { "log", 0, "FILE",
		      "append the daemon's messages to FILE (default: discarded once in the "
		      "background)" },
	{ 0 },
};

struct mount_args {
	const char *image, *mountpoint;
	struct dfs_mount_opts dmo;
	struct rl_fuse_config fc;
	bool foreground;
	char *fuse_opts;	/* the -o options that are FUSE's */
	char *image_abs, *mnt_abs, *iolog_abs, *pidfile_abs;
	int log_fd;
};

/* Splits -o: ro and rw are deepfs's, everything else goes to FUSE. */
static int parse_o(struct mount_args *ma, const char *list)
{
	char *copy = strdup(list), *save = NULL, *tok;
	size_t len = ma->fuse_opts ? strlen(ma->fuse_opts) : 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *n;

		if (strcmp(tok, "ro") == 0) {
			ma->dmo.readonly = true;
			continue;
		}
		if (strcmp(tok, "rw") == 0) {
			ma->dmo.readonly = false;
			continue;
		}
		n = realloc(ma->fuse_opts, len + strlen(tok) + 2);
		if (!n) {
			free(copy);
			return -ENOMEM;
		}
		ma->fuse_opts = n;
		len += (size_t)sprintf(n + len, "%s%s", len ? "," : "", tok);
	}
	free(copy);
	return 0;
}

static int parse_args(const struct rl_cmd *cmd, int argc, char **argv, struct mount_args *ma)
{
	struct rl_parser p;
	uint32_t threads;
	int o;

	rl_parser_init(&p, cmd, argc, argv);
	while ((o = rl_next_opt(&p)) >= 0) {
		switch (o) {
		case OPT_FOREGROUND:
			ma->foreground = true;
			break;
		case OPT_DEBUG:
			ma->fc.debug = true;
			ma->foreground = true;
			break;
		case OPT_OPTIONS:
			if (parse_o(ma, p.optarg))
				return RL_EXIT_PROBLEM;
			break;
		case OPT_IOLOG:
			ma->dmo.iolog_path = p.optarg;
			break;
		case OPT_CACHE:
			if (!rl_opt_size(&p, "--cache", &ma->dmo.pagecache_bytes))
				return RL_EXIT_USAGE;
			break;
		case OPT_METACACHE:
			if (!rl_opt_size(&p, "--meta-cache", &ma->dmo.bufcache_bytes))
				return RL_EXIT_USAGE;
			break;
		case OPT_THREADS:
			if (!rl_opt_u32(&p, "--threads", &threads))
				return RL_EXIT_USAGE;
			if (threads == 0 || threads > 1024) {
				rl_usage_error(cmd, "--threads must be from 1 to 1024");
				return RL_EXIT_USAGE;
			}
			ma->fc.max_threads = threads;
			break;
		case OPT_PIDFILE:
			ma->pidfile_abs = rl_absolute_path(p.optarg);
			break;
		case OPT_LOG:
			if (ma->log_fd >= 0)
				close(ma->log_fd);
			ma->log_fd = open(p.optarg, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
			if (ma->log_fd < 0) {
				fprintf(stderr, "%s mount: %s: %s\n", rl_program, p.optarg,
					strerror(errno));
				return RL_EXIT_PROBLEM;
			}
			break;
		}
	}
	if (o == RL_OPT_HELP)
		return -1;
	if (o == RL_OPT_ERROR || !rl_want_args(&p, 2, 2))
		return RL_EXIT_USAGE;
	ma->image = argv[p.optind];
	ma->mountpoint = argv[p.optind + 1];
	return RL_EXIT_OK;
}

/* Paths are checked here so that the usual mistakes get a plain message. */
static int resolve_paths(struct mount_args *ma)
{
	struct stat st;

	ma->image_abs = realpath(ma->image, NULL);
	if (!ma->image_abs) {
		fprintf(stderr, "%s mount: %s: %s\n", rl_program, ma->image, strerror(errno));
		return RL_EXIT_PROBLEM;
	}
	ma->mnt_abs = realpath(ma->mountpoint, NULL);
	if (!ma->mnt_abs || stat(ma->mnt_abs, &st) < 0) {
		fprintf(stderr, "%s mount: mountpoint %s: %s\n", rl_program, ma->mountpoint,
			strerror(errno));
		return RL_EXIT_PROBLEM;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "%s mount: mountpoint %s is not a directory\n", rl_program,
			ma->mountpoint);
		return RL_EXIT_PROBLEM;
	}
	if (ma->dmo.iolog_path) {
		ma->iolog_abs = rl_absolute_path(ma->dmo.iolog_path);
		if (!ma->iolog_abs)
			return RL_EXIT_PROBLEM;
		ma->dmo.iolog_path = ma->iolog_abs;
	}
	return RL_EXIT_OK;
}

static int write_pidfile(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f)) {
		fprintf(stderr, "%s mount: pidfile %s: %s\n", rl_program, path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The parent's half of the fork: waits for the child to say how mounting
 * went (one byte, the exit status) and exits with it. If the child dies
 * without saying, its death is the answer.
 */
static int wait_for_child(pid_t child, int fd)
{
	unsigned char status;
	ssize_t n;
	int ws;

	do {
		n = read(fd, &status, 1);
	} while (n < 0 && errno == EINTR);
	close(fd);
	if (n == 1 && status == RL_EXIT_OK)
		return RL_EXIT_OK;
	if (waitpid(child, &ws, 0) == child && WIFSIGNALED(ws))
		fprintf(stderr, "%s mount: the daemon died of signal %d while mounting\n",
			rl_program, WTERMSIG(ws));
	return n == 1 ? status : RL_EXIT_PROBLEM;
}

/* The child is now the daemon: it lets go of the terminal. */
static void detach(int log_fd)
{
	int null = open("/dev/null", O_RDWR);

	if (setsid() < 0)
		perror("setsid");
	if (chdir("/") < 0)
		perror("chdir /");
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(log_fd >= 0 ? log_fd : null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
}

static void notify(int *fd, unsigned char status)
{
	if (*fd < 0)
		return;
	if (write(*fd, &status, 1) != 1)
		perror("mount: telling the parent");
	close(*fd);
	*fd = -1;
}

static int mount_run(const struct rl_cmd *cmd, int argc, char **argv)
{
	struct mount_args ma = { .log_fd = -1 };
	struct dfs_mount *mp;
	struct rl_fuse *f;
	int status, error, pipefd[2], notify_fd = -1;
	bool pidfile_written = false;

	status = parse_args(cmd, argc, argv, &ma);
	if (status < 0) {	/* --help */
		status = RL_EXIT_OK;
		goto out;
	}
	if (status != RL_EXIT_OK)
		goto out;
	status = resolve_paths(&ma);
	if (status != RL_EXIT_OK)
		goto out;
	ma.fc.image = ma.image_abs;
	ma.fc.mountpoint = ma.mnt_abs;
	ma.fc.options = ma.fuse_opts;
	ma.fc.readonly = ma.dmo.readonly;

	if (!ma.foreground) {
		pid_t child;

		fflush(NULL);
		if (pipe2(pipefd, O_CLOEXEC) < 0) {
			perror("pipe");
			status = RL_EXIT_PROBLEM;
			goto out;
		}
		child = fork();
		if (child < 0) {
			perror("fork");
			status = RL_EXIT_PROBLEM;
			goto out;
		}
		if (child > 0) {
			close(pipefd[1]);
			status = wait_for_child(child, pipefd[0]);
			goto out;
		}
		close(pipefd[0]);
		notify_fd = pipefd[1];
		/* a parent that is gone must not kill a mounted daemon */
		signal(SIGPIPE, SIG_IGN);
	}

	error = dfs_mount(ma.image_abs, &ma.dmo, &mp);
	if (error) {
		fprintf(stderr, "%s mount: %s: cannot mount: %s\n", rl_program, ma.image,
			strerror(-error));
		status = RL_EXIT_PROBLEM;
		goto out_notify;
	}
	error = rl_fuse_mount(mp, &ma.fc, &f);
	if (error) {
		fprintf(stderr, "%s mount: cannot mount %s on %s%s\n", rl_program, ma.image,
			ma.mountpoint, error == -EINVAL ? ": bad -o option" : "");
		dfs_unmount(mp);
		status = error == -EINVAL ? RL_EXIT_USAGE : RL_EXIT_PROBLEM;
		goto out_notify;
	}
	if (ma.pidfile_abs)
		pidfile_written = write_pidfile(ma.pidfile_abs) == 0;
	if (!ma.foreground)
		detach(ma.log_fd);
	notify(&notify_fd, RL_EXIT_OK);

	error = rl_fuse_run(f);
	if (error) {
		fprintf(stderr, "%s mount: %s: unmount failed: %s\n", rl_program, ma.image_abs,
			strerror(-error));
		status = RL_EXIT_PROBLEM;
	}
	if (pidfile_written)
		unlink(ma.pidfile_abs);
out_notify:
	notify(&notify_fd, (unsigned char)status);
out:
	if (ma.log_fd >= 0)
		close(ma.log_fd);
	free(ma.fuse_opts);
	free(ma.image_abs);
	free(ma.mnt_abs);
	free(ma.iolog_abs);
	free(ma.pidfile_abs);
	return status;
}

const struct rl_cmd rl_cmd_mount = {
	.name = "mount",
	.args = "IMAGE MOUNTPOINT",
	.summary = "Mount a deepfs filesystem through FUSE",
	.description = "Mounts IMAGE on MOUNTPOINT and serves it from a daemon in the "
		       "background; the command returns once the filesystem is mounted, or "
		       "exits 1 with the reason if it cannot be (a corrupt image, say). "
		       "Unmount with 'fusermount3 -u MOUNTPOINT': the daemon then writes "
		       "everything back, checkpoints the log and exits (wait for it with "
		       "--pidfile before using the image again).",
	.opts = mount_opts,
	.run = mount_run,
};
