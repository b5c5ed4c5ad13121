/* SPDX-License-Identifier: MIT */
/*
 * One connection to the daemon, on its own thread: who is calling
 * (SO_PEERCRED), HELLO, the requests of proto.h one at a time, and the
 * client's teardown when it goes. A connection that breaks the protocol gets
 * an RL_MSG_ERR saying why and is closed; the client's watchdog then stops
 * the client, and the daemon goes on serving the others.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "pager/fault.h"
#include "pager/pager_int.h"

#define FOREIGN_TIMEOUT_S	5	/* how long a refused peer may take to say anything */

struct conn {
	struct rl_pager *p;
	struct rl_client *cl;
	uid_t uid;		/* the peer's, from SO_PEERCRED */
	bool hello;		/* a paged client: HELLO accepted */
	bool control;		/* a control connection: STATS/SHUTDOWN first */
};

static int sys_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int sys_pidfd_send_signal(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* A message we cannot deliver must not stop the daemon: a client's stderr
 * may be a pipe nobody reads any more, and SIGPIPE would kill us all. The
 * signal a write raises is the writing thread's, so blocking it here and
 * taking it back afterwards leaves the process's handling unchanged. */
static void write_all(int fd, const char *s)
{
	static const struct timespec now;
	size_t len = strlen(s);
	sigset_t pipe_set, old;
	bool epipe = false;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	while (len) {
		ssize_t n = write(fd, s, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			epipe = n < 0 && errno == EPIPE;
			break;
		}
		s += n;
		len -= (size_t)n;
	}
	if (epipe && !sigismember(&old, SIGPIPE))
		while (sigtimedwait(&pipe_set, NULL, &now) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* ---- the client object ---------------------------------------------------- */

void rl_client_get(struct rl_client *cl)
{
	cl->refs++;
}

void rl_client_put(struct rl_pager *p, struct rl_client *cl)
{
	if (--cl->refs > 0)
		return;
	if (cl->uffd >= 0)
		close(cl->uffd);
	if (cl->errfd >= 0)
		close(cl->errfd);
	if (cl->pidfd >= 0)
		close(cl->pidfd);
	close(cl->sock);
	rl_region_map_destroy(&cl->regions);
	free(cl);
}

struct rl_client *rl_client_lookup(struct rl_pager *p, uint32_t id)
{
	for (struct rl_client *cl = p->clients; cl; cl = cl->next)
		if (cl->id == id)
			return cl;
	return NULL;
}

void rl_client_kill(struct rl_pager *p, struct rl_client *cl, bool locked, const char *fmt, ...)
{
	char why[256], line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (!locked)
		pthread_mutex_lock(&p->lock);
	if (!cl->dead) {
		cl->dead = true;
		snprintf(line, sizeof(line), "reclaimlab: pager: %s[%d]: %s; stopping it\n",
			 cl->comm, (int)cl->pid, why);
		if (cl->errfd >= 0)
			write_all(cl->errfd, line);
		if (!p->cfg.quiet)
			write_all(STDERR_FILENO, line);
		if (cl->pidfd >= 0 && sys_pidfd_send_signal(cl->pidfd, SIGKILL) < 0 &&
		    errno != ESRCH)
			fprintf(stderr, "reclaimlab: pager: %s[%d]: SIGKILL: %s\n", cl->comm,
				(int)cl->pid, strerror(errno));
		/* no more faults to read; the connection thread tears it down */
		if (cl->uffd >= 0)
			epoll_ctl(p->fault_epfd, EPOLL_CTL_DEL, cl->uffd, NULL);
		shutdown(cl->sock, SHUT_RDWR);
	}
	if (!locked)
		pthread_mutex_unlock(&p->lock);
}

void rl_client_disconnect(struct rl_pager *p, struct rl_client *cl, const char *why)
{
	char line[256];

	if (cl->errfd >= 0 && !cl->dead) {
		snprintf(line, sizeof(line), "reclaimlab: pager: %s; %s[%d] cannot be paged "
			 "any more\n", why, cl->comm, (int)cl->pid);
		write_all(cl->errfd, line);
	}
	shutdown(cl->sock, SHUT_RDWR);
}

/* ---- replies --------------------------------------------------------------- */

static int reply_ok(struct conn *c, const struct rl_msg *req, struct rl_msg *m, uint16_t len)
{
	return rl_proto_send(c->cl->sock, m, RL_MSG_OK, req->hdr.seq, len, 0);
}

static void reply_err(struct conn *c, uint32_t seq, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void reply_err(struct conn *c, uint32_t seq, int err, const char *fmt, ...)
{
	struct rl_msg m;
	va_list ap;

	memset(&m.u.err, 0, sizeof(m.u.err));
	m.u.err.err = err > 0 && err < 4096 ? err : EPROTO;
	va_start(ap, fmt);
	vsnprintf(m.u.err.text, sizeof(m.u.err.text), fmt, ap);
	va_end(ap);
	rl_proto_send(c->cl->sock, &m, RL_MSG_ERR, seq, sizeof(m.u.err), 0);
}

/* The protocol was broken: say why to the peer and on our stderr, and close. */
static bool malformed(struct conn *c, struct rl_msg *m, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static bool malformed(struct conn *c, struct rl_msg *m, const char *fmt, ...)
{
	char why[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	rl_proto_close_fds(m);
	reply_err(c, m->hdr.seq, EPROTO, "malformed message: %s", why);
	fprintf(stderr, "reclaimlab: pager: %s[%d]: malformed message (%s); closing its "
		"connection\n", c->cl->comm, (int)c->cl->pid, why);
	return false;
}

/* ---- HELLO ----------------------------------------------------------------- */

static bool is_userfaultfd(int fd)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return strcmp(target, "anon_inode:[userfaultfd]") == 0;
}

/* A pipe whose reader stopped reading must not block the daemon (maybe
 * under the pager lock): write to a pipe through a description of our own
 * that is non-blocking. Setting O_NONBLOCK on the received fd would change
 * the client's own stderr. */
static int own_errfd(int fd)
{
	char path[64];
	struct stat st;
	int nfd;

	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode))
		return fd;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	nfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (nfd < 0)
		return fd;
	close(fd);
	return nfd;
}

static struct rl_session *session_get(struct rl_pager *p, const char *name)
{
	struct rl_session *s = rl_session_find(p, name);

	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	memcpy(s->name, name, strlen(name) + 1);
	s->next = p->sessions;
	p->sessions = s;
	return s;
}

static bool do_hello(struct conn *c, struct rl_msg *m)
{
	struct rl_pager *p = c->p;
	struct rl_client *cl = c->cl;
	const struct rl_msg_hello *h = &m->u.hello;
	struct rl_session *s = NULL;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = cl->id };
	struct rl_msg r;
	int pidfd, flags;

	if (h->pid != cl->pid)
		return malformed(c, m, "HELLO from pid %d, but the connecting process is %d",
				 (int)h->pid, (int)cl->pid);
	if (!is_userfaultfd(m->fds[0]))
		return malformed(c, m, "the first fd of HELLO is not a userfaultfd");
	pidfd = sys_pidfd_open(cl->pid);
	if (pidfd < 0) {
		int err = errno;

		rl_proto_close_fds(m);
		reply_err(c, m->hdr.seq, err, "pidfd_open(%d): %s", (int)cl->pid, strerror(err));
		return false;
	}
	flags = fcntl(m->fds[0], F_GETFL);
	/* several fault threads read it; the one that finds nothing goes back to epoll */
	if (flags < 0 || fcntl(m->fds[0], F_SETFL, flags | O_NONBLOCK) < 0) {
		int err = errno;

		close(pidfd);
		rl_proto_close_fds(m);
		reply_err(c, m->hdr.seq, err, "making the userfaultfd non-blocking: %s",
			  strerror(err));
		return false;
	}

	pthread_mutex_lock(&p->lock);
	if (p->stopping) {
		pthread_mutex_unlock(&p->lock);
		close(pidfd);
		rl_proto_close_fds(m);
		reply_err(c, m->hdr.seq, ESHUTDOWN, "the pager daemon is stopping");
		return false;
	}
	if (h->session[0] && !(s = session_get(p, h->session))) {
		pthread_mutex_unlock(&p->lock);
		close(pidfd);
		rl_proto_close_fds(m);
		reply_err(c, m->hdr.seq, ENOMEM, "out of memory for session %s", h->session);
		return false;
	}
	memcpy(cl->comm, h->comm, sizeof(cl->comm));
	cl->sess = s;
	cl->pidfd = pidfd;
	cl->uffd = m->fds[0];
	cl->errfd = own_errfd(m->fds[1]);
	m->fds[0] = m->fds[1] = -1;
	RL_COUNT(p, cl, clients, 1);
	p->total.live_clients++;
	if (s)
		s->live++;
	c->hello = true;
	pthread_mutex_unlock(&p->lock);

	if (epoll_ctl(p->fault_epfd, EPOLL_CTL_ADD, cl->uffd, &ev) < 0) {
		int err = errno;

		reply_err(c, m->hdr.seq, err, "watching the userfaultfd: %s", strerror(err));
		return false;
	}
	memset(&r.u.hello_reply, 0, sizeof(r.u.hello_reply));
	r.u.hello_reply.budget_pages = p->pgdat.nr_pages;
	r.u.hello_reply.flags = p->cfg.verify ? RL_HELLO_VERIFY : 0;
	r.u.hello_reply.client_id = cl->id;
	return reply_ok(c, m, &r, sizeof(r.u.hello_reply)) == 0;
}

/* ---- requests -------------------------------------------------------------- */

static bool do_region_add(struct conn *c, struct rl_msg *m)
{
	const struct rl_msg_region_add *ra = &m->u.region_add;
	const char *why = NULL;
	struct rl_msg r;
	uint32_t id = 0;
	int memfd = m->fds[0], ret;

	m->fds[0] = -1;		/* rl_region_add owns it now */
	ret = rl_region_add(c->p, c->cl, ra, memfd, &id, &why);
	if (ret) {
		reply_err(c, m->hdr.seq, -ret, "region at 0x%llx of %llu bytes: %s",
			  (unsigned long long)ra->start, (unsigned long long)ra->len,
			  why ? why : strerror(-ret));
		return true;
	}
	memset(&r.u.region_reply, 0, sizeof(r.u.region_reply));
	r.u.region_reply.region_id = id;
	return reply_ok(c, m, &r, sizeof(r.u.region_reply)) == 0;
}

static bool do_range(struct conn *c, struct rl_msg *m)
{
	const struct rl_msg_range *rg = &m->u.range;
	const char *what;
	struct rl_msg r;
	int64_t ret;

	switch (m->hdr.type) {
	case RL_MSG_REGION_DEL:
		what = "REGION_DEL";
		ret = rl_region_del(c->p, c->cl, rg->region_id);
		break;
	case RL_MSG_DISCARD:
		what = "DISCARD";
		ret = rl_region_discard(c->p, c->cl, rg->region_id, rg->first, rg->npages);
		break;
	case RL_MSG_SYNC:
		what = "SYNC";
		ret = rl_region_sync(c->p, c->cl, rg->region_id, rg->first, rg->npages);
		break;
	default:
		what = "SNAPSHOT";
		ret = rl_region_snapshot(c->p, c->cl, rg->region_id, m->fds[0]);
		break;
	}
	rl_proto_close_fds(m);
	if (ret < 0) {
		reply_err(c, m->hdr.seq, (int)-ret, "%s of region %u: %s", what, rg->region_id,
			  ret == -ENOENT ? "no such region" : strerror((int)-ret));
		return true;
	}
	memset(&r.u.range_reply, 0, sizeof(r.u.range_reply));
	r.u.range_reply.pages = (uint64_t)ret;
	return reply_ok(c, m, &r, sizeof(r.u.range_reply)) == 0;
}

/* Clients of the session (all clients for "") still connected, not
 * counting the asking connection itself. */
static uint64_t live_others(struct conn *c, const char *session)
{
	struct rl_pager *p = c->p;
	uint64_t n;

	if (!*session) {
		n = p->total.live_clients;
		return c->hello && n ? n - 1 : n;
	}
	struct rl_session *s = rl_session_find(p, session);
	if (!s)
		return 0;
	n = s->live;
	return c->hello && c->cl->sess == s && n ? n - 1 : n;
}

static bool do_stats(struct conn *c, struct rl_msg *m)
{
	struct rl_pager *p = c->p;
	struct timespec dl;
	struct rl_msg r;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += m->u.stats.wait_idle_ms / 1000;
	dl.tv_nsec += (long)(m->u.stats.wait_idle_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->lock);
	while (!p->stopping && live_others(c, m->u.stats.session) > 0)
		if (pthread_cond_timedwait(&p->idle_wait, &p->lock, &dl) == ETIMEDOUT)
			break;
	rl_pager_counters_locked(p, m->u.stats.session, &r.u.counters);
	pthread_mutex_unlock(&p->lock);
	return reply_ok(c, m, &r, sizeof(r.u.counters)) == 0;
}

/* Returns false when the connection is to be closed. */
static bool dispatch(struct conn *c, struct rl_msg *m)
{
	struct rl_msg r;

	switch (m->hdr.type) {
	case RL_MSG_HELLO:
		if (c->hello)
			return malformed(c, m, "duplicate HELLO");
		if (c->control)
			return malformed(c, m, "HELLO on a control connection");
		return do_hello(c, m);
	case RL_MSG_REGION_ADD:
	case RL_MSG_REGION_DEL:
	case RL_MSG_DISCARD:
	case RL_MSG_SYNC:
	case RL_MSG_SNAPSHOT:
		if (!c->hello)
			return malformed(c, m, "request before HELLO");
		pthread_mutex_lock(&c->p->lock);
		bool dead = c->cl->dead;
		pthread_mutex_unlock(&c->p->lock);
		if (dead) {
			rl_proto_close_fds(m);
			return false;	/* being stopped: nothing more to do for it */
		}
		if (m->hdr.type == RL_MSG_REGION_ADD)
			return do_region_add(c, m);
		return do_range(c, m);
	case RL_MSG_STATS:
		c->control = !c->hello;
		return do_stats(c, m);
	case RL_MSG_SHUTDOWN:
		c->control = !c->hello;
		if (reply_ok(c, m, &r, 0))
			return false;
		rl_pager_request_stop(c->p);
		return true;
	default:
		return malformed(c, m, "a reply sent to the daemon");
	}
}

/* ---- the connection thread ------------------------------------------------- */

static void teardown(struct conn *c)
{
	struct rl_pager *p = c->p;
	struct rl_client *cl = c->cl;
	struct rl_counters k;
	char comm[RL_COMM_LEN];
	pid_t pid = cl->pid;
	bool say = c->hello && !p->cfg.quiet;

	pthread_mutex_lock(&p->lock);
	cl->dead = true;
	pthread_mutex_unlock(&p->lock);
	if (c->hello) {
		epoll_ctl(p->fault_epfd, EPOLL_CTL_DEL, cl->uffd, NULL);
		rl_client_teardown_regions(p, cl);
	}

	if (say) {
		pthread_mutex_lock(&p->lock);
		k = cl->c;
		memcpy(comm, cl->comm, sizeof(comm));
		pthread_mutex_unlock(&p->lock);
		fprintf(stderr, "reclaimlab: pager: %s[%d] left: %llu faults (%llu missing, "
			"%llu write-protect), %llu pages read, %llu written, %llu evictions\n",
			comm, (int)pid, (unsigned long long)(k.faults_missing + k.faults_wp),
			(unsigned long long)k.faults_missing, (unsigned long long)k.faults_wp,
			(unsigned long long)k.pages_read, (unsigned long long)k.pages_written,
			(unsigned long long)k.evictions);
	}

	pthread_mutex_lock(&p->lock);
	if (c->hello) {
		p->total.live_clients--;
		if (cl->sess)
			cl->sess->live--;
	}
	for (struct rl_client **pp = &p->clients; *pp; pp = &(*pp)->next) {
		if (*pp == cl) {
			*pp = cl->next;
			break;
		}
	}
	rl_client_put(p, cl);
	p->nr_conns--;
	pthread_cond_broadcast(&p->idle_wait);
	pthread_mutex_unlock(&p->lock);
	/* p may be gone from here on (rl_pager_destroy waits only for nr_conns) */
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct rl_client *cl = c->cl;
	uid_t me = getuid();

	for (;;) {
		struct rl_msg m;
		const char *why = NULL;
		int ret;

		m.hdr.seq = 0;	/* what an ERR echoes when not even a header came */
		ret = rl_proto_recv(cl->sock, &m);

		if (ret == 0)
			break;
		if (ret == -EPROTO) {
			malformed(c, &m, "truncated, oversized or with too many file descriptors");
			break;
		}
		if (ret < 0)
			break;	/* reset by the peer, or shut down by us */
		if (c->uid != me) {
			rl_proto_close_fds(&m);
			reply_err(c, m.hdr.seq, EACCES, "permission denied: the pager serves only "
				  "uid %u", (unsigned)me);
			fprintf(stderr, "reclaimlab: pager: %s[%d] of uid %u refused: the pager "
				"serves only uid %u\n", cl->comm, (int)cl->pid, (unsigned)c->uid,
				(unsigned)me);
			break;
		}
		if (rl_proto_check(&m, 0, &why)) {
			malformed(c, &m, "%s", why);
			break;
		}
		bool go_on = dispatch(c, &m);
		rl_proto_close_fds(&m);
		if (!go_on)
			break;
	}
	teardown(c);
	free(c);
	return NULL;
}

static void peer_comm(pid_t pid, char *comm)
{
	char path[64];
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, comm, RL_COMM_LEN - 1);
		close(fd);
	}
	if (n <= 0) {
		strcpy(comm, "?");
		return;
	}
	comm[n] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
}

void rl_conn_start(struct rl_pager *p, int sock)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct rl_client *cl;
	struct conn *c;
	pthread_attr_t attr;
	pthread_t t;
	int ret;

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		fprintf(stderr, "reclaimlab: pager: SO_PEERCRED: %s; refusing a connection\n",
			strerror(errno));
		close(sock);
		return;
	}
	cl = calloc(1, sizeof(*cl));
	c = calloc(1, sizeof(*c));
	if (!cl || !c) {
		fprintf(stderr, "reclaimlab: pager: out of memory; refusing a connection\n");
		free(cl);
		free(c);
		close(sock);
		return;
	}
	cl->refs = 1;
	cl->pid = cred.pid;
	cl->sock = sock;
	cl->uffd = cl->errfd = cl->pidfd = -1;
	rl_region_map_init(&cl->regions);
	peer_comm(cred.pid, cl->comm);
	c->p = p;
	c->cl = cl;
	c->uid = cred.uid;
	if (cred.uid != getuid()) {
		/* it gets an answer only if it says something soon */
		struct timeval tv = { .tv_sec = FOREIGN_TIMEOUT_S };

		setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}

	pthread_mutex_lock(&p->lock);
	cl->id = p->next_client_id++;
	if (cl->id == 0)	/* wrapped: ids only need to be unique among the living */
		cl->id = p->next_client_id++;
	cl->next = p->clients;
	p->clients = cl;
	p->nr_conns++;
	pthread_mutex_unlock(&p->lock);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&t, &attr, conn_main, c);
	pthread_attr_destroy(&attr);
	if (ret) {
		fprintf(stderr, "reclaimlab: pager: %s[%d]: no thread for its connection: %s\n",
			cl->comm, (int)cl->pid, strerror(ret));
		teardown(c);
		free(c);
	}
}
