/* SPDX-License-Identifier: MIT */
/*
 * The daemon's skeleton (pager.h): configuration, the listening socket, the
 * accept thread and the fault threads, counters, stop and teardown. What a
 * connection does is client.c; what a fault does is fault.c.
 */
#include "lib/lockdep.h"
#include "pager/pager.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "pager/fault.h"
#include "pager/pager_int.h"
#include "reclaim/writeback.h"

#define KEY_STOP	UINT64_MAX	/* epoll key of stop_efd */
#define KEY_LISTEN	(UINT64_MAX - 1)
#define UFFD_BATCH	16
#define MAX_WORKERS	64

/* "4M", "1G", "12345" — how the user wrote --mem, most likely. */
static void fmt_size(char *buf, size_t size, uint64_t v)
{
	static const char units[] = "KMGT";
	int u = -1;

	while (v && v % 1024 == 0 && u < 3) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, size, "%llu", (unsigned long long)v);
	else
		snprintf(buf, size, "%llu%c", (unsigned long long)v, units[u]);
}

static int check_config(const struct rl_pager_config *cfg)
{
	char a[32], b[32];

	if (cfg->mem_bytes < RL_PAGER_MIN_MEM) {
		fmt_size(a, sizeof(a), cfg->mem_bytes);
		fmt_size(b, sizeof(b), RL_PAGER_MIN_MEM);
		fprintf(stderr, "reclaimlab: --mem %s is below the minimum of %s\n", a, b);
		return -EINVAL;
	}
	if (cfg->mem_bytes / RL_PAGE_SIZE >= UINT32_MAX) {
		fmt_size(a, sizeof(a), cfg->mem_bytes);
		fprintf(stderr, "reclaimlab: --mem %s is above the maximum of 16T\n", a);
		return -EINVAL;
	}
	if (!rl_policy_name(cfg->reclaim.policy) || !rl_wb_mode_name(cfg->reclaim.wb)) {
		fprintf(stderr, "reclaimlab: unknown reclaim policy %d or writeback mode %d\n",
			(int)cfg->reclaim.policy, (int)cfg->reclaim.wb);
		return -EINVAL;
	}
	if (!cfg->mp) {
		fprintf(stderr, "reclaimlab: the pager needs a mounted deepfs (file regions and "
			"the deepfs backend live there)\n");
		return -EINVAL;
	}
	if (cfg->backend != RL_BACKEND_DEEPFS && cfg->backend != RL_BACKEND_FILE) {
		fprintf(stderr, "reclaimlab: unknown pager backend %d\n", (int)cfg->backend);
		return -EINVAL;
	}
	if (cfg->backend == RL_BACKEND_FILE && (!cfg->backing_dir || !*cfg->backing_dir)) {
		fprintf(stderr, "reclaimlab: --backend file needs a directory for its files\n");
		return -EINVAL;
	}
	if (!cfg->socket_path || !*cfg->socket_path) {
		fprintf(stderr, "reclaimlab: the pager needs a socket path\n");
		return -EINVAL;
	}
	if (strlen(cfg->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		fprintf(stderr, "reclaimlab: socket path %s is longer than %zu bytes\n",
			cfg->socket_path, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return -EINVAL;
	}
	if (cfg->nr_workers > MAX_WORKERS) {
		fprintf(stderr, "reclaimlab: %u fault threads is more than the maximum of %d\n",
			cfg->nr_workers, MAX_WORKERS);
		return -EINVAL;
	}
	return 0;
}

/* A socket file that exists: a live daemon keeps it (refuse), a dead one
 * left it behind (remove it). */
static int clear_stale_socket(const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, ret;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		ret = -errno;
		fprintf(stderr, "reclaimlab: pager socket %s: %s\n", path, strerror(errno));
		return ret;
	}
	if (!S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "reclaimlab: pager socket %s exists and is not a socket; "
			"not touching it\n", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		fprintf(stderr, "reclaimlab: socket: %s\n", strerror(errno));
		return ret;
	}
	ret = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	ret = ret < 0 ? -errno : 0;
	close(fd);
	if (ret == 0) {
		fprintf(stderr, "reclaimlab: a pager daemon already serves %s\n", path);
		return -EADDRINUSE;
	}
	if (ret != -ECONNREFUSED) {
		fprintf(stderr, "reclaimlab: pager socket %s: cannot tell whether a daemon serves "
			"it: %s\n", path, strerror(-ret));
		return ret;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		ret = -errno;
		fprintf(stderr, "reclaimlab: removing the stale socket %s: %s\n", path,
			strerror(errno));
		return ret;
	}
	return 0;
}

static int listen_socket(const char *path, int *fdp)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int fd, ret;

	memcpy(sa.sun_path, path, strlen(path) + 1);
	ret = clear_stale_socket(path, &sa);
	if (ret)
		return ret;
	/* non-blocking: a connection aborted between epoll and accept must not
	 * keep the accept thread from seeing the stop */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		ret = -errno;
		fprintf(stderr, "reclaimlab: socket: %s\n", strerror(errno));
		return ret;
	}
	/* no window in which another uid could connect */
	old = umask(077);
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	ret = ret < 0 ? -errno : 0;
	umask(old);
	if (ret) {
		if (ret == -EADDRINUSE)
			fprintf(stderr, "reclaimlab: a pager daemon already serves %s\n", path);
		else
			fprintf(stderr, "reclaimlab: bind %s: %s\n", path, strerror(-ret));
		close(fd);
		return ret;
	}
	if (chmod(path, 0600) < 0 || listen(fd, 128) < 0) {
		ret = -errno;
		fprintf(stderr, "reclaimlab: pager socket %s: %s\n", path, strerror(errno));
		unlink(path);
		close(fd);
		return ret;
	}
	*fdp = fd;
	return 0;
}

static void *accept_main(void *arg)
{
	struct rl_pager *p = arg;
	struct epoll_event ev;

	for (;;) {
		int n = epoll_wait(p->ctl_epfd, &ev, 1, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "reclaimlab: pager: epoll_wait: %s; accepting no more "
				"clients\n", strerror(errno));
			return NULL;
		}
		if (n == 0)
			continue;
		if (ev.data.u64 == KEY_STOP)
			return NULL;
		int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)
				continue;
			fprintf(stderr, "reclaimlab: pager: accept: %s\n", strerror(errno));
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
				poll(NULL, 0, 100);	/* let descriptors free up */
			continue;
		}
		rl_conn_start(p, fd);
	}
}

static void *worker_main(void *arg)
{
	struct rl_pager *p = arg;
	struct epoll_event evs[8];
	struct uffd_msg msgs[UFFD_BATCH];

	for (;;) {
		int n = epoll_wait(p->fault_epfd, evs, 8, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "reclaimlab: pager: fault thread: epoll_wait: %s\n",
				strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			struct rl_client *cl;

			if (evs[i].data.u64 == KEY_STOP)
				return NULL;
			pthread_mutex_lock(&p->lock);
			cl = rl_client_lookup(p, (uint32_t)evs[i].data.u64);
			if (cl && (cl->dead || cl->uffd < 0))
				cl = NULL;
			if (cl)
				rl_client_get(cl);
			pthread_mutex_unlock(&p->lock);
			if (!cl)
				continue;

			ssize_t got = read(cl->uffd, msgs, sizeof(msgs));
			if (got < 0 && errno != EAGAIN && errno != EINTR)
				rl_client_kill(p, cl, false, "reading its userfaultfd failed: %s",
					       strerror(errno));
			else if (got > 0 && got % sizeof(msgs[0]))
				rl_client_kill(p, cl, false, "its userfaultfd gave a partial "
					       "message (%zd bytes)", got);
			for (ssize_t j = 0; got > 0 && j < got / (ssize_t)sizeof(msgs[0]); j++)
				rl_handle_uffd_msg(p, cl, &msgs[j]);

			pthread_mutex_lock(&p->lock);
			rl_client_put(p, cl);
			pthread_mutex_unlock(&p->lock);
		}
	}
}

static int epoll_add(int epfd, int fd, uint64_t key)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = key };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int init_sync(struct rl_pager *p)
{
	pthread_condattr_t ca;
	int ret;

	ret = pthread_mutex_init(&p->lock, NULL);
	if (ret)
		return -ret;
	ret = pthread_cond_init(&p->page_wait, NULL);
	if (ret)
		return -ret;
	/* STATS waits with a deadline that the wall clock must not move */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	ret = pthread_cond_init(&p->idle_wait, &ca);
	pthread_condattr_destroy(&ca);
	return -ret;
}

/* Starts the fault threads, then the accept thread; on failure stops
 * those already started. */
static int start_threads(struct rl_pager *p)
{
	int ret;

	p->workers = calloc(p->nr_workers, sizeof(*p->workers));
	if (!p->workers)
		return -ENOMEM;
	for (unsigned i = 0; i < p->nr_workers; i++) {
		ret = pthread_create(&p->workers[i], NULL, worker_main, p);
		if (ret) {
			fprintf(stderr, "reclaimlab: pager: starting fault thread %u: %s\n", i,
				strerror(ret));
			p->nr_workers = i;
			goto fail;
		}
	}
	ret = pthread_create(&p->ctl_thread, NULL, accept_main, p);
	if (!ret)
		return 0;
	fprintf(stderr, "reclaimlab: pager: starting the accept thread: %s\n", strerror(ret));
fail:
	rl_pager_request_stop(p);
	for (unsigned i = 0; i < p->nr_workers; i++)
		pthread_join(p->workers[i], NULL);
	free(p->workers);
	p->workers = NULL;
	return -ret;
}

int rl_pager_start(const struct rl_pager_config *cfg, struct rl_pager **pp)
{
	struct rl_pager *p;
	int ret;

	*pp = NULL;
	ret = check_config(cfg);
	if (ret)
		return ret;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cfg = *cfg;
	p->cfg.socket_path = strdup(cfg->socket_path);
	p->cfg.backing_dir = cfg->backing_dir ? strdup(cfg->backing_dir) : NULL;
	p->nr_workers = cfg->nr_workers ? cfg->nr_workers : 2;
	p->cfg.nr_workers = p->nr_workers;
	p->listen_fd = p->ctl_epfd = p->fault_epfd = p->stop_efd = -1;
	p->next_client_id = 1;
	p->next_region_id = 1;
	if (!p->cfg.socket_path || (cfg->backing_dir && !p->cfg.backing_dir)) {
		ret = -ENOMEM;
		goto fail_free;
	}
	ret = init_sync(p);
	if (ret)
		goto fail_free;
	p->anon_backend.ops = cfg->backend == RL_BACKEND_FILE ? &rl_file_aops : &rl_deepfs_aops;
	p->anon_backend.mp = cfg->mp;
	p->anon_backend.dir = p->cfg.backing_dir;
	p->file_backend.ops = &rl_deepfs_aops;
	p->file_backend.mp = cfg->mp;

	p->cfg.reclaim.nr_pages = (uint32_t)(cfg->mem_bytes / RL_PAGE_SIZE);
	p->cfg.reclaim.lock = &p->lock;
	p->cfg.reclaim.wait = &p->page_wait;
	p->cfg.reclaim.threads = true;
	ret = rl_pgdat_init(&p->pgdat, &p->cfg.reclaim);
	if (ret) {
		fprintf(stderr, "reclaimlab: pager: a pool of %llu frames: %s\n",
			(unsigned long long)(cfg->mem_bytes / RL_PAGE_SIZE), strerror(-ret));
		goto fail_sync;
	}
	p->total.budget_pages = p->pgdat.nr_pages;
	/* rl_pgdat_init takes the ratios as they are: the limits proper (a
	 * background threshold below the hard one, or none for 100) are
	 * rl_update_dirty_limits'. The flusher may already run. */
	pthread_mutex_lock(&p->lock);
	rl_update_dirty_limits(&p->pgdat);
	pthread_mutex_unlock(&p->lock);

	p->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->ctl_epfd = epoll_create1(EPOLL_CLOEXEC);
	p->fault_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (p->stop_efd < 0 || p->ctl_epfd < 0 || p->fault_epfd < 0) {
		ret = -errno;
		fprintf(stderr, "reclaimlab: pager: eventfd/epoll: %s\n", strerror(errno));
		goto fail_fds;
	}
	ret = listen_socket(p->cfg.socket_path, &p->listen_fd);
	if (ret)
		goto fail_fds;
	ret = epoll_add(p->ctl_epfd, p->stop_efd, KEY_STOP);
	if (!ret)
		ret = epoll_add(p->ctl_epfd, p->listen_fd, KEY_LISTEN);
	if (!ret)
		ret = epoll_add(p->fault_epfd, p->stop_efd, KEY_STOP);
	if (ret) {
		fprintf(stderr, "reclaimlab: pager: epoll_ctl: %s\n", strerror(-ret));
		goto fail_sock;
	}
	ret = start_threads(p);
	if (ret)
		goto fail_sock;
	*pp = p;
	return 0;

fail_sock:
	close(p->listen_fd);
	unlink(p->cfg.socket_path);
fail_fds:
	if (p->stop_efd >= 0)
		close(p->stop_efd);
	if (p->ctl_epfd >= 0)
		close(p->ctl_epfd);
	if (p->fault_epfd >= 0)
		close(p->fault_epfd);
	rl_pgdat_stop(&p->pgdat);
	rl_pgdat_destroy(&p->pgdat);
fail_sync:
	pthread_cond_destroy(&p->idle_wait);
	pthread_cond_destroy(&p->page_wait);
	pthread_mutex_destroy(&p->lock);
fail_free:
	free((char *)p->cfg.socket_path);
	free((char *)p->cfg.backing_dir);
	free(p);
	return ret;
}

void rl_pager_wait(struct rl_pager *p)
{
	struct pollfd pfd = { .fd = p->stop_efd, .events = POLLIN };

	/* the eventfd is never read, so it stays readable for every thread */
	while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
		;
}

void rl_pager_request_stop(struct rl_pager *p)
{
	uint64_t one = 1;
	int saved = errno;

	if (write(p->stop_efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is already huge, i.e. stop was requested */
	}
	errno = saved;
}

void rl_pager_destroy(struct rl_pager *p)
{
	if (!p)
		return;
	rl_pager_request_stop(p);
	pthread_join(p->ctl_thread, NULL);

	/* Connections: tell each client, cut its socket (its watchdog stops it),
	 * and wait until every connection thread has torn its client down. */
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	for (struct rl_client *cl = p->clients; cl; cl = cl->next)
		rl_client_disconnect(p, cl, "the pager daemon stops");
	pthread_cond_broadcast(&p->idle_wait);
	while (p->nr_conns)
		pthread_cond_wait(&p->idle_wait, &p->lock);
	pthread_mutex_unlock(&p->lock);

	for (unsigned i = 0; i < p->nr_workers; i++)
		pthread_join(p->workers[i], NULL);
	free(p->workers);
	/* every client is gone, so no writeback is in flight for any of them */
	rl_pgdat_stop(&p->pgdat);

	close(p->listen_fd);
	unlink(p->cfg.socket_path);
	close(p->ctl_epfd);
	close(p->fault_epfd);
	close(p->stop_efd);
	rl_pgdat_destroy(&p->pgdat);
	while (p->sessions) {
		struct rl_session *s = p->sessions;

		p->sessions = s->next;
		free(s);
	}
	pthread_cond_destroy(&p->idle_wait);
	pthread_cond_destroy(&p->page_wait);
	pthread_mutex_destroy(&p->lock);
	free((char *)p->cfg.socket_path);
	free((char *)p->cfg.backing_dir);
	free(p);
}

struct rl_session *rl_session_find(struct rl_pager *p, const char *name)
{
	for (struct rl_session *s = p->sessions; s; s = s->next)
		if (strcmp(s->name, name) == 0)
			return s;
	return NULL;
}

static void lat_summary(const struct rl_hist *h, struct rl_lat_summary *s)
{
	s->count = h->count;
	s->mean = (uint64_t)rl_hist_mean(h);
	s->p50 = rl_hist_quantile(h, 0.5);
	s->p99 = rl_hist_quantile(h, 0.99);
	s->max = h->count ? h->max : 0;
}

static void reclaim_counters(const struct rl_pgdat *pgdat, struct rl_reclaim_counters *rc)
{
	rc->policy = (uint32_t)pgdat->cfg.policy;
	rc->wb = (uint32_t)pgdat->cfg.wb;
	rc->vm = pgdat->vm;
	rc->lockdep_on = rl_lockdep_enabled();
	rc->lockdep_reports = rc->lockdep_on ? rl_lockdep_nr_reports() : 0;
	lat_summary(&pgdat->lat.direct_stall, &rc->direct_stall);
	lat_summary(&pgdat->lat.fault, &rc->fault);
	lat_summary(&pgdat->lat.alloc, &rc->alloc);
	lat_summary(&pgdat->lat.throttle, &rc->throttle);
}

void rl_pager_counters_locked(struct rl_pager *p, const char *session, struct rl_counters *c)
{
	if (!session || !*session) {
		*c = p->total;
		c->resident = p->pgdat.nr_pages - p->pgdat.nr_free;
		if (p->pgdat.peak_used > c->peak_resident)
			c->peak_resident = p->pgdat.peak_used;
	} else {
		struct rl_session *s = rl_session_find(p, session);

		memset(c, 0, sizeof(*c));
		if (s) {
			*c = s->c;
			c->live_clients = s->live;
		}
	}
	if (c->resident > c->peak_resident)
		c->peak_resident = c->resident;
	c->budget_pages = p->pgdat.nr_pages;
	reclaim_counters(&p->pgdat, &c->reclaim);
}

void rl_pager_get_counters(struct rl_pager *p, const char *session, struct rl_counters *c)
{
	pthread_mutex_lock(&p->lock);
	rl_pager_counters_locked(p, session, c);
	pthread_mutex_unlock(&p->lock);
}
