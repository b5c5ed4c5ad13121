/* SPDX-License-Identifier: MIT */
/*
 * The daemon as a client sees it: a real rl_pager on a deepfs image and a
 * temporary socket, spoken to over the socket. Checked here: the socket's
 * mode, configuration refused with a clear message, a live daemon not
 * displaced, a stale socket replaced, HELLO and sessions, malformed messages
 * answered with ERR and the connection closed while other connections go
 * on, other uids refused, rl_client_kill, SHUTDOWN, and destroy with clients
 * still connected. Faults are test_fault.c's and the end-to-end tests'.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fs/deepfs.h"
#include "pager/pager.h"
#include "pager/pager_int.h"

static char tmpdir[] = "/var/tmp/test_daemon.XXXXXX";	/* a real disk, as fixture.h says */
static char image[128], sock_path[128];
static struct dfs_mount *mp;

static int group_setup(void **state)
{
	struct dfs_mkfs_opts mo = { .size = 64ull << 20 };

	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(image, sizeof(image), "%s/image", tmpdir);
	snprintf(sock_path, sizeof(sock_path), "%s/pager.sock", tmpdir);
	if (dfs_mkfs(image, &mo) || dfs_mount(image, NULL, &mp))
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	int ret = dfs_unmount(mp);

	unlink(image);
	unlink(sock_path);
	rmdir(tmpdir);
	return ret;
}

static struct rl_pager_config base_config(void)
{
	struct rl_pager_config cfg = {
		.mem_bytes = 8ull << 20,
		.socket_path = sock_path,
		.reclaim = { .policy = RL_POLICY_NODIRECT, .wb = RL_WB_BATCH },
		.backend = RL_BACKEND_DEEPFS,
		.mp = mp,
		.nr_workers = 2,
		.quiet = false,
	};

	return cfg;
}

static struct rl_pager *running;	/* destroyed by the teardown if a test failed */

static struct rl_pager *start(void)
{
	struct rl_pager_config cfg = base_config();
	struct rl_pager *p;

	assert_int_equal(rl_pager_start(&cfg, &p), 0);
	assert_non_null(p);
	running = p;
	return p;
}

static void stop(struct rl_pager *p)
{
	running = NULL;
	rl_pager_destroy(p);
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 10 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = errno;

		close(fd);
		return -err;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static int stats(int sock, const char *session, uint32_t wait_ms, struct rl_counters *c)
{
	struct rl_msg req, reply;
	int ret;

	memset(&req, 0, sizeof(req));
	strcpy(req.u.stats.session, session);
	req.u.stats.wait_idle_ms = wait_ms;
	req.hdr.seq = 5;
	ret = rl_proto_call(sock, &req, RL_MSG_STATS, sizeof(req.u.stats), 0, &reply);
	if (ret == 0)
		*c = reply.u.counters;
	return ret;
}

static int new_uffd(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);

	if (fd < 0 || ioctl(fd, UFFDIO_API, &api) < 0)
		return -1;
	return fd;
}

/* HELLO with a real userfaultfd and errfd as the "stderr"; no libc
 * allocation, so a fork child of this threaded process may call it. */
static int hello(int sock, const char *session, int errfd, struct rl_msg *reply)
{
	struct rl_msg req;
	int ret;

	memset(&req, 0, sizeof(req));
	req.u.hello.version = RL_PROTO_VERSION;
	req.u.hello.pid = getpid();
	strcpy(req.u.hello.session, session);
	strcpy(req.u.hello.comm, "test_daemon");
	req.fds[0] = new_uffd();
	req.fds[1] = errfd;
	if (req.fds[0] < 0)
		return -errno;
	ret = rl_proto_call(sock, &req, RL_MSG_HELLO, sizeof(req.u.hello), 2, reply);
	close(req.fds[0]);
	return ret;
}

/* EOF, or a reset when the daemon closed with our bytes unread. */
static bool closed_by_peer(int sock)
{
	struct rl_msg m;
	int ret = rl_proto_recv(sock, &m);

	return ret == 0 || ret == -ECONNRESET;
}

/* stderr into a file while a block runs, to check the daemon's messages. */
static int saved_stderr = -1;
static char capture_path[160];

static void capture_begin(void)
{
	int fd;

	snprintf(capture_path, sizeof(capture_path), "%s/stderr", tmpdir);
	fd = open(capture_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
}

static char *capture_end(void)
{
	static char buf[8192];
	ssize_t n;
	int fd;

	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	saved_stderr = -1;
	fd = open(capture_path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	unlink(capture_path);
	buf[n > 0 ? n : 0] = '\0';
	fputs(buf, stderr);	/* still visible in the test log */
	return buf;
}

/* After a failed test: stderr back, whatever the test was doing. */
static int restore_stderr(void **state)
{
	if (running)
		stop(running);
	if (saved_stderr >= 0) {
		fflush(stderr);
		dup2(saved_stderr, 2);
		close(saved_stderr);
		saved_stderr = -1;
		unlink(capture_path);
	}
	return 0;
}

__attribute__((noinline)) static void assert_contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle))
		return;
	print_error("\"%s\" not in \"%s\"\n", needle, hay);
	fail();
}

/* Waits up to 10 s for child; returns its wait status. */
static int wait_child(pid_t pid)
{
	int status;

	for (int i = 0; i < 1000; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		assert_true(r >= 0);
		if (r == pid)
			return status;
		poll(NULL, 0, 10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	fail_msg("child %d did not finish", (int)pid);
	return -1;
}

static void read_pipe(int fd, char *buf, size_t size)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t got = 0;

	while (got < size - 1 && poll(&pfd, 1, 2000) > 0) {
		ssize_t n = read(fd, buf + got, size - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(buf, '\n', got))
			break;
	}
	buf[got] = '\0';
}

static void test_bad_config(void **state)
{
	struct rl_pager_config cfg;
	struct rl_pager *p = (void *)1;
	char *out;

	capture_begin();
	cfg = base_config();
	cfg.mem_bytes = 1ull << 20;
	assert_int_equal(rl_pager_start(&cfg, &p), -EINVAL);
	assert_null(p);
	cfg = base_config();
	cfg.reclaim.policy = NR_RL_POLICIES;
	assert_int_equal(rl_pager_start(&cfg, &p), -EINVAL);
	cfg = base_config();
	cfg.mp = NULL;
	assert_int_equal(rl_pager_start(&cfg, &p), -EINVAL);
	cfg = base_config();
	cfg.backend = RL_BACKEND_FILE;
	assert_int_equal(rl_pager_start(&cfg, &p), -EINVAL);
	out = capture_end();
	assert_contains(out, "--mem 1M is below the minimum of 4M\n");
	assert_contains(out, "unknown reclaim policy 6 or writeback mode 1\n");
	assert_contains(out, "needs a mounted deepfs");
	assert_contains(out, "--backend file needs a directory");
	/* nothing was left behind */
	assert_int_equal(access(sock_path, F_OK), -1);

	/* the minimum itself is fine */
	cfg = base_config();
	cfg.mem_bytes = RL_PAGER_MIN_MEM;
	assert_int_equal(rl_pager_start(&cfg, &p), 0);
	stop(p);
}

static void test_socket(void **state)
{
	struct rl_pager *p = start(), *p2 = (void *)1;
	struct rl_pager_config cfg = base_config();
	struct rl_counters c;
	struct stat st;
	char *out;
	int s;

	assert_int_equal(stat(sock_path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);

	/* a second daemon on the same socket is refused and leaves it alone */
	capture_begin();
	assert_int_equal(rl_pager_start(&cfg, &p2), -EADDRINUSE);
	out = capture_end();
	assert_null(p2);
	assert_contains(out, "a pager daemon already serves");
	s = connect_to(sock_path);
	assert_true(s >= 0);
	assert_int_equal(stats(s, "", 0, &c), 0);
	assert_int_equal(c.budget_pages, 2048);
	assert_int_equal(c.live_clients, 0);
	close(s);

	stop(p);
	assert_int_equal(access(sock_path, F_OK), -1);
}

static void test_stale_socket(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct rl_pager_config cfg = base_config();
	struct rl_pager *p;
	int fd;

	/* a socket file with no daemon behind it, as a crash leaves it */
	strcpy(sa.sun_path, sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(access(sock_path, F_OK), 0);
	assert_int_equal(rl_pager_start(&cfg, &p), 0);
	fd = connect_to(sock_path);
	assert_true(fd >= 0);
	close(fd);
	stop(p);

	/* something that is not a socket is never removed */
	fd = open(sock_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	capture_begin();
	assert_int_equal(rl_pager_start(&cfg, &p), -EEXIST);
	assert_contains(capture_end(), "exists and is not a socket");
	assert_int_equal(access(sock_path, F_OK), 0);
	unlink(sock_path);
}

static void test_malformed(void **state)
{
	struct rl_pager *p = start();
	struct rl_counters c;
	struct rl_msg m, reply;
	char *out;
	int s1, s2, s3;

	s1 = connect_to(sock_path);
	s2 = connect_to(sock_path);
	assert_true(s1 >= 0 && s2 >= 0);

	/* a STATS that waits too long: ERR with the reason, then the close */
	capture_begin();
	memset(&m, 0, sizeof(m));
	m.u.stats.wait_idle_ms = 700000;
	m.hdr.seq = 9;
	assert_int_equal(rl_proto_call(s1, &m, RL_MSG_STATS, sizeof(m.u.stats), 0, &reply),
			 -EPROTO);
	assert_int_equal(reply.hdr.type, RL_MSG_ERR);
	assert_int_equal(reply.hdr.seq, 9);
	assert_contains(reply.u.err.text, "malformed message: STATS wait longer than 10 minutes");
	assert_true(closed_by_peer(s1));
	close(s1);

	/* the other connection still works */
	assert_int_equal(stats(s2, "", 0, &c), 0);
	assert_int_equal(c.budget_pages, 2048);

	/* a request before HELLO */
	s3 = connect_to(sock_path);
	memset(&m, 0, sizeof(m));
	m.u.range.region_id = 1;
	m.u.range.npages = 1;
	assert_int_equal(rl_proto_call(s3, &m, RL_MSG_SYNC, sizeof(m.u.range), 0, &reply),
			 -EPROTO);
	assert_contains(reply.u.err.text, "request before HELLO");
	assert_true(closed_by_peer(s3));
	close(s3);

	/* garbage bytes */
	s3 = connect_to(sock_path);
	assert_int_equal(write(s3, "GET / HTTP/1.0\r\n\r\n", 18), 18);
	assert_int_equal(rl_proto_recv(s3, &reply), 1);
	assert_int_equal(reply.hdr.type, RL_MSG_ERR);
	assert_true(closed_by_peer(s3));
	close(s3);

	/* a reply sent to the daemon */
	s3 = connect_to(sock_path);
	memset(&m, 0, sizeof(m));
	assert_int_equal(rl_proto_call(s3, &m, RL_MSG_OK, 0, 0, &reply), -EPROTO);
	assert_true(closed_by_peer(s3));
	close(s3);
	out = capture_end();
	assert_contains(out, "malformed message (STATS wait longer than 10 minutes); closing its "
			"connection");
	assert_contains(out, "malformed message (request before HELLO)");

	assert_int_equal(stats(s2, "", 0, &c), 0);
	close(s2);
	stop(p);
}

static void test_hello(void **state)
{
	struct rl_pager *p = start();
	struct rl_counters c;
	struct rl_msg reply, m;
	struct timespec t0, t1;
	int s, ctl, pipefd[2];
	char *out;

	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	s = connect_to(sock_path);
	ctl = connect_to(sock_path);
	assert_int_equal(hello(s, "sess_1", pipefd[1], &reply), 0);
	assert_int_equal(reply.u.hello_reply.budget_pages, 2048);
	assert_int_equal(reply.u.hello_reply.flags, 0);
	assert_true(reply.u.hello_reply.client_id > 0);

	assert_int_equal(stats(ctl, "sess_1", 0, &c), 0);
	assert_int_equal(c.clients, 1);
	assert_int_equal(c.live_clients, 1);
	assert_int_equal(c.budget_pages, 2048);
	assert_int_equal(stats(ctl, "", 0, &c), 0);
	assert_int_equal(c.live_clients, 1);
	assert_int_equal(stats(ctl, "other", 0, &c), 0);
	assert_int_equal(c.clients, 0);

	/* STATS waits for the session's clients, up to its limit */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(stats(ctl, "sess_1", 300, &c), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(c.live_clients, 1);
	assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >= 290);

	/* a duplicate HELLO closes the connection; the client is then gone */
	capture_begin();
	assert_int_equal(hello(s, "sess_1", pipefd[1], &reply), -EPROTO);
	assert_contains(reply.u.err.text, "duplicate HELLO");
	assert_true(closed_by_peer(s));
	close(s);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(stats(ctl, "sess_1", 10000, &c), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(c.live_clients, 0);
	assert_int_equal(c.clients, 1);
	assert_true(t1.tv_sec - t0.tv_sec < 5);
	out = capture_end();
	assert_contains(out, "test_daemon[");
	assert_contains(out, "] left: 0 faults");

	/* HELLO with something that is not a userfaultfd */
	s = connect_to(sock_path);
	memset(&m, 0, sizeof(m));
	m.u.hello.version = RL_PROTO_VERSION;
	m.u.hello.pid = getpid();
	strcpy(m.u.hello.comm, "x");
	m.fds[0] = pipefd[0];
	m.fds[1] = pipefd[1];
	capture_begin();
	assert_int_equal(rl_proto_call(s, &m, RL_MSG_HELLO, sizeof(m.u.hello), 2, &reply),
			 -EPROTO);
	assert_contains(reply.u.err.text, "not a userfaultfd");
	close(s);

	/* HELLO naming another pid */
	s = connect_to(sock_path);
	m.u.hello.pid = getppid();
	m.fds[0] = new_uffd();
	assert_int_equal(rl_proto_call(s, &m, RL_MSG_HELLO, sizeof(m.u.hello), 2, &reply),
			 -EPROTO);
	assert_contains(reply.u.err.text, "but the connecting process is");
	close(m.fds[0]);
	close(s);
	capture_end();

	/* a control connection cannot become a client */
	assert_int_equal(hello(ctl, "", pipefd[1], &reply), -EPROTO);
	assert_contains(reply.u.err.text, "HELLO on a control connection");
	close(ctl);

	assert_int_equal(stats(ctl = connect_to(sock_path), "", 0, &c), 0);
	assert_int_equal(c.live_clients, 0);
	assert_int_equal(c.clients, 1);
	close(ctl);
	close(pipefd[0]);
	close(pipefd[1]);
	stop(p);
}

/* A forked client: HELLO, then waits for the daemon to close its socket and
 * exits 70 as the shim's watchdog does. Only syscalls after fork. */
static pid_t spawn_client(int errfd, int ready_fd, const char *session)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct rl_msg reply;
		int s = connect_to(sock_path);

		if (s < 0 || hello(s, session, errfd, &reply) != 0)
			_exit(1);
		if (write(ready_fd, "r", 1) != 1)
			_exit(2);
		while (rl_proto_recv(s, &reply) > 0)
			;
		_exit(70);
	}
	return pid;
}

static void wait_ready(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char ch;

	assert_int_equal(poll(&pfd, 1, 10000), 1);
	assert_int_equal(read(fd, &ch, 1), 1);
}

static void test_kill(void **state)
{
	struct rl_pager *p = start();
	struct rl_client *cl;
	struct rl_counters c;
	char buf[512], *out;
	int errp[2], readyp[2], status, ctl;
	pid_t pid;

	assert_int_equal(pipe2(errp, O_CLOEXEC), 0);
	assert_int_equal(pipe2(readyp, O_CLOEXEC), 0);
	pid = spawn_client(errp[1], readyp[1], "k");
	wait_ready(readyp[0]);

	pthread_mutex_lock(&p->lock);
	for (cl = p->clients; cl && cl->pid != pid; cl = cl->next)
		;
	assert_non_null(cl);
	assert_int_equal(cl->uffd >= 0, 1);
	rl_client_get(cl);
	pthread_mutex_unlock(&p->lock);

	capture_begin();
	rl_client_kill(p, cl, false, "the test says so");
	rl_client_kill(p, cl, false, "a second time");	/* once is enough */
	status = wait_child(pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	pthread_mutex_lock(&p->lock);
	assert_true(cl->dead);
	rl_client_put(p, cl);
	pthread_mutex_unlock(&p->lock);

	ctl = connect_to(sock_path);
	assert_int_equal(stats(ctl, "k", 10000, &c), 0);
	assert_int_equal(c.live_clients, 0);
	close(ctl);
	out = capture_end();
	snprintf(buf, sizeof(buf), "reclaimlab: pager: test_daemon[%d]: the test says so; "
		 "stopping it\n", (int)pid);
	assert_contains(out, buf);
	assert_true(strstr(out, "a second time") == NULL);
	read_pipe(errp[0], buf + 256, 256);
	assert_string_equal(buf + 256, buf);	/* the client's stderr got the same line */

	/* a client whose stderr nobody reads any more: no SIGPIPE for the daemon */
	close(errp[0]);
	pid = spawn_client(errp[1], readyp[1], "k");
	wait_ready(readyp[0]);
	pthread_mutex_lock(&p->lock);
	for (cl = p->clients; cl && cl->pid != pid; cl = cl->next)
		;
	assert_non_null(cl);
	rl_client_get(cl);
	pthread_mutex_unlock(&p->lock);
	capture_begin();
	rl_client_kill(p, cl, false, "its stderr is gone");
	status = wait_child(pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	pthread_mutex_lock(&p->lock);
	rl_client_put(p, cl);
	pthread_mutex_unlock(&p->lock);
	assert_contains(capture_end(), "its stderr is gone; stopping it");
	sigset_t pending;
	sigpending(&pending);
	assert_false(sigismember(&pending, SIGPIPE));

	close(errp[1]);
	close(readyp[0]);
	close(readyp[1]);
	stop(p);
}

static void test_destroy_with_clients(void **state)
{
	struct rl_pager *p = start();
	char buf[256];
	int errp[2], readyp[2], status;
	pid_t pid[2];

	assert_int_equal(pipe2(errp, O_CLOEXEC), 0);
	assert_int_equal(pipe2(readyp, O_CLOEXEC), 0);
	pid[0] = spawn_client(errp[1], readyp[1], "d");
	pid[1] = spawn_client(errp[1], readyp[1], "");
	wait_ready(readyp[0]);
	wait_ready(readyp[0]);

	stop(p);
	for (int i = 0; i < 2; i++) {
		status = wait_child(pid[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 70);
	}
	read_pipe(errp[0], buf, sizeof(buf));
	assert_contains(buf, "reclaimlab: pager: the pager daemon stops; test_daemon[");
	assert_int_equal(access(sock_path, F_OK), -1);
	close(errp[0]);
	close(errp[1]);
	close(readyp[0]);
	close(readyp[1]);
}

static void test_other_uid(void **state)
{
	struct rl_pager *p;
	int status;
	pid_t pid;

	if (getuid() != 0)
		skip();
	p = start();
	/* the directory lets everyone through: only the socket's mode may refuse */
	assert_int_equal(chmod(tmpdir, 0711), 0);
	for (int open_mode = 0; open_mode < 2; open_mode++) {
		if (open_mode)	/* let it reach the daemon: SO_PEERCRED must stop it */
			assert_int_equal(chmod(sock_path, 0666), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct rl_msg req, reply;
			int s, ret;

			if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
				_exit(10);
			s = connect_to(sock_path);
			if (!open_mode)
				_exit(s == -EACCES ? 0 : 11);
			if (s < 0)
				_exit(12);
			memset(&req, 0, sizeof(req));
			ret = rl_proto_call(s, &req, RL_MSG_SHUTDOWN, 0, 0, &reply);
			if (ret != -EACCES)
				_exit(13);
			if (strcmp(reply.u.err.text,
				   "permission denied: the pager serves only uid 0") != 0)
				_exit(14);
			_exit(closed_by_peer(s) ? 0 : 15);
		}
		capture_begin();
		status = wait_child(pid);
		capture_end();
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(chmod(tmpdir, 0700), 0);
	/* the refused SHUTDOWN did not stop it */
	int s = connect_to(sock_path);
	struct rl_counters c;
	assert_int_equal(stats(s, "", 0, &c), 0);
	close(s);
	stop(p);
}

struct waiter {
	struct rl_pager *p;
	atomic_int done;
};

static void *wait_main(void *arg)
{
	struct waiter *w = arg;

	rl_pager_wait(w->p);
	atomic_store(&w->done, 1);
	return NULL;
}

static void test_shutdown(void **state)
{
	struct waiter w = { .p = start() };
	struct rl_msg req, reply;
	pthread_t t;
	int s;

	assert_int_equal(pthread_create(&t, NULL, wait_main, &w), 0);
	poll(NULL, 0, 50);
	assert_int_equal(atomic_load(&w.done), 0);
	s = connect_to(sock_path);
	memset(&req, 0, sizeof(req));
	assert_int_equal(rl_proto_call(s, &req, RL_MSG_SHUTDOWN, 0, 0, &reply), 0);
	for (int i = 0; i < 500 && !atomic_load(&w.done); i++)
		poll(NULL, 0, 10);
	assert_int_equal(atomic_load(&w.done), 1);
	pthread_join(t, NULL);
	stop(w.p);	/* with the control connection still open */
	assert_true(closed_by_peer(s));
	close(s);
	assert_int_equal(access(sock_path, F_OK), -1);

	/* rl_pager_request_stop (a signal handler's way) too */
	w.p = start();
	atomic_store(&w.done, 0);
	assert_int_equal(pthread_create(&t, NULL, wait_main, &w), 0);
	rl_pager_request_stop(w.p);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&w.done), 1);
	stop(w.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_bad_config, restore_stderr),
		cmocka_unit_test_teardown(test_socket, restore_stderr),
		cmocka_unit_test_teardown(test_stale_socket, restore_stderr),
		cmocka_unit_test_teardown(test_malformed, restore_stderr),
		cmocka_unit_test_teardown(test_hello, restore_stderr),
		cmocka_unit_test_teardown(test_kill, restore_stderr),
		cmocka_unit_test_teardown(test_destroy_with_clients, restore_stderr),
		cmocka_unit_test_teardown(test_other_uid, restore_stderr),
		cmocka_unit_test_teardown(test_shutdown, restore_stderr),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
