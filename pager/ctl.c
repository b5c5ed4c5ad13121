/* SPDX-License-Identifier: MIT */
/*
 * The control client of the pager (pager.h): what `reclaimlab run` says to
 * a daemon besides what the shim says, and where the shared daemon of a
 * user listens.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "pager/pager.h"
#include "pager/proto.h"

int rl_ctl_connect(const char *socket_path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ret;

	if (strlen(socket_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	do {
		ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	} while (ret < 0 && errno == EINTR);
	if (ret < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

/* A daemon that stops answering must not hang `reclaimlab run` forever. */
static int set_reply_timeout(int sock, uint32_t ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	if (setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

/* Allowance beyond what the request itself may wait, for a busy daemon. */
#define RL_CTL_SLACK_MS 30000

static int call(int sock, struct rl_msg *req, uint16_t type, uint32_t wait_ms,
		struct rl_msg *reply)
{
	uint16_t len;
	uint32_t nfds;
	int error;

	if (!rl_proto_shape(type, 0, &len, &nfds))
		return -EINVAL;
	error = set_reply_timeout(sock, wait_ms + RL_CTL_SLACK_MS);
	if (error)
		return error;
	error = rl_proto_call(sock, req, type, len, 0, reply);
	/* a receive timeout on the socket shows as EAGAIN */
	return error == -EAGAIN || error == -EWOULDBLOCK ? -ETIMEDOUT : error;
}

int rl_ctl_stats(int sock, const char *session, uint32_t wait_idle_ms, struct rl_counters *c)
{
	struct rl_msg req, reply;
	int error;

	if (!session)
		session = "";
	if (strlen(session) >= RL_SESSION_LEN)
		return -ENAMETOOLONG;
	memset(&req, 0, sizeof(req));
	req.fds[0] = req.fds[1] = -1;
	strcpy(req.u.stats.session, session);
	req.u.stats.wait_idle_ms = wait_idle_ms;
	error = call(sock, &req, RL_MSG_STATS, wait_idle_ms, &reply);
	if (error)
		return error;
	*c = reply.u.counters;
	return 0;
}

int rl_ctl_shutdown(int sock)
{
	struct rl_msg req, reply;

	memset(&req, 0, sizeof(req));
	req.fds[0] = req.fds[1] = -1;
	return call(sock, &req, RL_MSG_SHUTDOWN, 0, &reply);
}

/*
 * The socket's directory must be the user's own and closed to others:
 * whoever can write there can put a socket of theirs in place of ours, and
 * the shim would hand that process its userfaultfd.
 */
static int check_runtime_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (lstat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "reclaimlab: runtime directory %s is not a directory\n", dir);
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 0022)) {
		fprintf(stderr,
			"reclaimlab: runtime directory %s must belong to uid %u and not be "
			"writable by group or others (set RECLAIMLAB_RUNTIME_DIR to another)\n",
			dir, (unsigned)geteuid());
		return -EPERM;
	}
	return 0;
}

int rl_default_socket_path(char *buf, size_t size)
{
	struct sockaddr_un sa;
	const char *env = getenv("RECLAIMLAB_RUNTIME_DIR");
	char dir[PATH_MAX];
	int n, error;

	if (env && *env)
		n = snprintf(dir, sizeof(dir), "%s", env);
	else if ((env = getenv("XDG_RUNTIME_DIR")) && *env)
		n = snprintf(dir, sizeof(dir), "%s/reclaimlab", env);
	else
		n = snprintf(dir, sizeof(dir), "/tmp/reclaimlab-%u", (unsigned)geteuid());
	if (n < 0 || (size_t)n >= sizeof(dir))
		return -ENAMETOOLONG;
	error = check_runtime_dir(dir);
	if (error)
		return error;
	n = snprintf(buf, size, "%s/pager.sock", dir);
	if (n < 0 || (size_t)n >= size || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	return 0;
}
