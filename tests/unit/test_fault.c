/* SPDX-License-Identifier: MIT */
/*
 * The pager's memory management on a real userfaultfd: a struct rl_pager
 * made by hand with a small frame budget, a fake client whose region is a
 * memfd mapped and registered MISSING|WP in this process, two handler
 * threads serving the uffd with rl_handle_uffd_msg, and three threads doing
 * random reads and writes of 4x the budget, checked against a model of the
 * contents. Backends: an in-test one (malloc'd pages; it can fail writes and
 * corrupt a page, and it checks the a_ops rule "never two calls on one page
 * at once") and the real file backend. The kill paths (--verify mismatch,
 * backing store full, fault outside the regions) use a forked child as the
 * client, so that it can really be SIGKILLed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/userfaultfd.h>
#include <cmocka.h>

#include "fixture.h"
#include "pager/fault.h"
#include "pager/pager_int.h"

#define BUDGET	64
#define NPAGES	1024		/* 16x the budget's pages, touched 4x over */
#define NTHREADS 3
#define NOPS	6000		/* per thread and phase */
#define PG	RL_PAGE_SIZE

/* ---- the in-test backend ------------------------------------------------ */

static struct {
	int write_err;			/* writepage fails with this (-ENOSPC) */
	int64_t corrupt_index;		/* readpage flips a byte of this page */
	atomic_int live;		/* backing objects open */
	atomic_int overlaps;		/* two calls on one page at once */
	atomic_long reads, writes;
} mem;

struct rl_backing {
	uint64_t npages;
	unsigned char **pages;
	atomic_uchar *inflight;
	pthread_mutex_t lock;
};

static void mem_enter(struct rl_backing *b, uint64_t i)
{
	if (atomic_exchange(&b->inflight[i], 1))
		atomic_fetch_add(&mem.overlaps, 1);
}

static void mem_leave(struct rl_backing *b, uint64_t i)
{
	atomic_store(&b->inflight[i], 0);
}

static int mem_open_anon(struct rl_backend *be, uint64_t npages, struct rl_backing **bp)
{
	struct rl_backing *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	b->npages = npages;
	b->pages = calloc(npages, sizeof(*b->pages));
	b->inflight = calloc(npages, sizeof(*b->inflight));
	pthread_mutex_init(&b->lock, NULL);
	atomic_fetch_add(&mem.live, 1);
	*bp = b;
	return 0;
}

/* The one file of the FILE region test: inode FILE_INO, outlives its opens. */
#define FILE_INO	77
static struct rl_backing *mem_file;

static int mem_open_file(struct rl_backend *be, uint64_t ino, struct rl_backing **bp)
{
	if (ino != FILE_INO || !mem_file)
		return -ENOENT;
	atomic_fetch_add(&mem.live, 1);
	*bp = mem_file;
	return 0;
}

static int mem_readpage(struct rl_backing *b, uint64_t i, void *dst)
{
	if (i >= b->npages)
		return -EINVAL;
	mem_enter(b, i);
	usleep(random() % 3 ? 0 : 50);	/* let other threads run into this page */
	pthread_mutex_lock(&b->lock);
	if (b->pages[i])
		memcpy(dst, b->pages[i], PG);
	else
		memset(dst, 0, PG);
	pthread_mutex_unlock(&b->lock);
	if ((int64_t)i == mem.corrupt_index)
		((unsigned char *)dst)[100] ^= 0x40;
	atomic_fetch_add(&mem.reads, 1);
	mem_leave(b, i);
	return 0;
}

static int mem_writepage(struct rl_backing *b, uint64_t i, const void *src)
{
	unsigned char *pg;

	if (i >= b->npages)
		return -EINVAL;
	if (mem.write_err)
		return mem.write_err;
	mem_enter(b, i);
	pthread_mutex_lock(&b->lock);
	if (!b->pages[i])
		b->pages[i] = malloc(PG);
	pg = b->pages[i];
	pthread_mutex_unlock(&b->lock);
	memcpy(pg, src, PG);
	atomic_fetch_add(&mem.writes, 1);
	mem_leave(b, i);
	return pg ? 0 : -ENOMEM;
}

static int mem_writepages(struct rl_backing *b, uint64_t first, uint64_t n,
			  const void *const *srcs, bool batch)
{
	for (uint64_t i = 0; i < n; i++) {
		int err = mem_writepage(b, first + i, srcs[i]);

		if (err)
			return err;
	}
	return 0;
}

static int mem_discard(struct rl_backing *b, uint64_t first, uint64_t n)
{
	if (first >= b->npages || n > b->npages - first)
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	for (uint64_t i = first; i < first + n; i++) {
		free(b->pages[i]);
		b->pages[i] = NULL;
	}
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static void mem_release(struct rl_backing *b)
{
	if (b == mem_file) {
		atomic_fetch_sub(&mem.live, 1);
		return;
	}
	for (uint64_t i = 0; i < b->npages; i++)
		free(b->pages[i]);
	free(b->pages);
	free((void *)b->inflight);
	pthread_mutex_destroy(&b->lock);
	free(b);
	atomic_fetch_sub(&mem.live, 1);
}

static void mem_release_file(void)
{
	struct rl_backing *b = mem_file;

	mem_file = NULL;
	mem_release(b);
}

static const struct rl_aops mem_aops = {
	.name = "test-mem",
	.open_anon = mem_open_anon,
	.open_file = mem_open_file,
	.readpage = mem_readpage,
	.writepage = mem_writepage,
	.writepages = mem_writepages,
	.discard = mem_discard,
	.release = mem_release,
};

/* ---- the environment: pager, client, uffd, region, handler threads ------- */

struct env {
	struct rl_pager p;
	struct rl_session sess;
	struct rl_client cl;
	int errpipe[2];
	int stop_efd;
	unsigned char *map;		/* the client's view (this process or the child's) */
	uint32_t region_id;
	pthread_t handlers[2];
	atomic_int in_flight;		/* handlers between read() and done */
	char *tmpdir;
};

static uint32_t frames_used(const struct rl_pager *p)
{
	return p->pgdat.nr_pages - p->pgdat.nr_free;
}

static void env_init_policy(struct env *e, const struct rl_aops *ops, bool verify,
			    enum rl_policy policy)
{
	memset(e, 0, sizeof(*e));
	pthread_mutex_init(&e->p.lock, NULL);
	pthread_cond_init(&e->p.page_wait, NULL);
	e->p.cfg.reclaim = (struct rl_reclaim_config){
		.nr_pages = BUDGET, .policy = policy, .wb = RL_WB_BATCH, .threads = true,
		.lock = &e->p.lock, .wait = &e->p.page_wait,
	};
	assert_int_equal(rl_pgdat_init(&e->p.pgdat, &e->p.cfg.reclaim), 0);
	e->p.cfg.verify = verify;
	e->p.cfg.quiet = true;
	e->p.cfg.mem_bytes = BUDGET * PG;
	e->p.fault_epfd = -1;
	e->p.next_region_id = 1;
	e->p.total.budget_pages = BUDGET;
	e->sess.c.budget_pages = BUDGET;
	e->p.anon_backend.ops = ops;
	if (ops == &rl_file_aops) {
		e->tmpdir = fixture_tmpdir();
		e->p.anon_backend.dir = e->tmpdir;
	}
	strcpy(e->sess.name, "test");
	e->cl.id = 1;
	e->cl.refs = 1;
	e->cl.pid = getpid();
	e->cl.pidfd = -1;
	e->cl.sock = -1;
	e->cl.uffd = -1;
	strcpy(e->cl.comm, "test_fault");
	e->cl.sess = &e->sess;
	rl_region_map_init(&e->cl.regions);
	assert_int_equal(pipe2(e->errpipe, O_CLOEXEC | O_NONBLOCK), 0);
	e->cl.errfd = e->errpipe[1];
	e->stop_efd = eventfd(0, EFD_CLOEXEC);
	assert_true(e->stop_efd >= 0);
	mem.write_err = 0;
	mem.corrupt_index = -1;
	atomic_store(&mem.overlaps, 0);
}

static int make_uffd(void)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
	};
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (uffd < 0) {
		fprintf(stderr, "userfaultfd: %s (needs root or vm.unprivileged_userfaultfd=1)\n",
			strerror(errno));
		return -1;
	}
	if (ioctl(uffd, UFFDIO_API, &api)) {
		fprintf(stderr, "UFFDIO_API: %s\n", strerror(errno));
		close(uffd);
		return -1;
	}
	return uffd;
}

/* A memfd of npages mapped and registered MISSING|WP for mapped_pages
 * (>= npages: the rest is registered but in no region). */
static unsigned char *make_region(int uffd, int *memfd, uint64_t npages, uint64_t mapped_pages)
{
	struct uffdio_register reg = { 0 };
	unsigned char *map;

	*memfd = memfd_create("rl-test-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (*memfd < 0 || ftruncate(*memfd, (off_t)(mapped_pages * PG)))
		return NULL;
	map = mmap(NULL, mapped_pages * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		   *memfd, 0);
	if (map == MAP_FAILED)
		return NULL;
	reg.range.start = (uintptr_t)map;
	reg.range.len = mapped_pages * PG;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		return NULL;
	return map;
}

static void add_region(struct env *e, uint64_t start, uint64_t npages, int memfd)
{
	struct rl_msg_region_add ra = {
		.start = start, .len = npages * PG, .kind = RL_REGION_ANON,
	};
	const char *why = NULL;
	int ret = rl_region_add(&e->p, &e->cl, &ra, memfd, &e->region_id, &why);

	if (ret)
		fprintf(stderr, "rl_region_add: %s: %s\n", why, strerror(-ret));
	assert_int_equal(ret, 0);
	assert_int_not_equal(e->region_id, 0);
}

static void *handler(void *arg)
{
	struct env *e = arg;
	struct uffd_msg msgs[16];

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = e->cl.uffd, .events = POLLIN },
			{ .fd = e->stop_efd, .events = POLLIN },
		};
		ssize_t n;

		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			abort();
		if (pfd[1].revents)
			return NULL;
		if (!pfd[0].revents)
			continue;
		atomic_fetch_add(&e->in_flight, 1);
		n = read(e->cl.uffd, msgs, sizeof(msgs));
		for (ssize_t i = 0; i < n / (ssize_t)sizeof(msgs[0]); i++)
			rl_handle_uffd_msg(&e->p, &e->cl, &msgs[i]);
		atomic_fetch_sub(&e->in_flight, 1);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			usleep(1000);	/* the child client died: POLLHUP until we stop */
	}
}

static void start_handlers(struct env *e)
{
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&e->handlers[i], NULL, handler, e), 0);
}

static void stop_handlers(struct env *e)
{
	uint64_t one = 1;

	assert_int_equal(write(e->stop_efd, &one, sizeof(one)), sizeof(one));
	for (int i = 0; i < 2; i++)
		pthread_join(e->handlers[i], NULL);
}

/* What rl_client_kill wrote on the client's stderr ("" if nothing). */
static void read_errpipe(struct env *e, char *buf, size_t size)
{
	ssize_t n = read(e->errpipe[0], buf, size - 1);

	buf[n > 0 ? n : 0] = '\0';
}

static void env_init(struct env *e, const struct rl_aops *ops, bool verify)
{
	env_init_policy(e, ops, verify, RL_POLICY_NODIRECT);
}

static void env_destroy(struct env *e)
{
	rl_client_teardown_regions(&e->p, &e->cl);
	assert_int_equal(e->cl.regions.n, 0);
	assert_int_equal(frames_used(&e->p), 0);
	assert_int_equal(e->p.total.resident, 0);
	assert_int_equal(e->sess.c.resident, 0);
	stop_handlers(e);
	if (e->cl.uffd >= 0)
		close(e->cl.uffd);
	close(e->errpipe[0]);
	close(e->errpipe[1]);
	close(e->stop_efd);
	if (e->cl.pidfd >= 0)
		close(e->cl.pidfd);
	rl_region_map_destroy(&e->cl.regions);
	rl_pgdat_stop(&e->p.pgdat);
	rl_pgdat_destroy(&e->p.pgdat);
	pthread_cond_destroy(&e->p.page_wait);
	pthread_mutex_destroy(&e->p.lock);
	if (e->tmpdir) {
		fixture_rmdir(e->tmpdir);
		free(e->tmpdir);
	}
	assert_int_equal(atomic_load(&mem.live), 0);
	assert_int_equal(atomic_load(&mem.overlaps), 0);
}

/* ---- random reads and writes against a model ---------------------------- */

static unsigned char *model;
static atomic_int worker_failures;

struct worker {
	struct env *e;
	int t;
	uint64_t seed;
};

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Thread t owns the pages i with i % NTHREADS == t: the model stays exact
 * while all three fault on the same frames and the same clock. */
static void *worker(void *arg)
{
	struct worker *w = arg;
	unsigned char *map = w->e->map;

	for (int op = 0; op < NOPS; op++) {
		uint64_t r = xorshift(&w->seed);
		uint64_t page = (r % (NPAGES / NTHREADS)) * NTHREADS + (uint64_t)w->t;
		unsigned char *c = map + page * PG, *m = model + page * PG;

		if (page >= NPAGES)
			continue;
		if ((r >> 32) % 100 < 45) {
			size_t off = (r >> 40) % PG, len = 1 + (xorshift(&w->seed) % (PG - off));
			unsigned char b = (unsigned char)xorshift(&w->seed);

			/* a run of bytes, so that partial writes of a page count */
			for (size_t i = 0; i < len; i++)
				m[off + i] = (unsigned char)(b + i);
			memcpy(c + off, m + off, len);
		} else if (memcmp(c, m, PG)) {
			fprintf(stderr, "thread %d: page %lu differs from the model\n", w->t,
				(unsigned long)page);
			atomic_fetch_add(&worker_failures, 1);
			return NULL;
		}
	}
	return NULL;
}

static void run_workers(struct env *e, uint64_t seed)
{
	pthread_t th[NTHREADS];
	struct worker w[NTHREADS];

	for (int t = 0; t < NTHREADS; t++) {
		w[t] = (struct worker){ .e = e, .t = t, .seed = seed * 7919 + (uint64_t)t + 1 };
		assert_int_equal(pthread_create(&th[t], NULL, worker, &w[t]), 0);
	}
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	assert_int_equal(atomic_load(&worker_failures), 0);
}

static void check_all(struct env *e)
{
	for (uint64_t i = 0; i < NPAGES; i++)
		if (memcmp(e->map + i * PG, model + i * PG, PG)) {
			fprintf(stderr, "page %lu differs from the model\n", (unsigned long)i);
			fail();
		}
}

/* A woken client thread may run on before its handler has accounted the
 * page: wait until no message is queued or being handled. */
static void quiesce(struct env *e)
{
	for (int settled = 0; settled < 3;) {
		struct pollfd pfd = { .fd = e->cl.uffd, .events = POLLIN };

		if (poll(&pfd, 1, 0) == 0 && atomic_load(&e->in_flight) == 0)
			settled++;
		else
			settled = 0;
		usleep(1000);
	}
}

static void check_budget_and_no_kill(struct env *e)
{
	char buf[512];

	quiesce(e);
	read_errpipe(e, buf, sizeof(buf));
	assert_string_equal(buf, "");
	assert_false(e->cl.dead);
	pthread_mutex_lock(&e->p.lock);
	assert_true(frames_used(&e->p) <= BUDGET);
	assert_true(e->p.pgdat.peak_used <= BUDGET);
	assert_true(e->p.total.peak_resident <= BUDGET);
	assert_int_equal(e->p.total.resident, frames_used(&e->p));
	assert_int_equal(e->sess.c.resident, e->p.total.resident);
	pthread_mutex_unlock(&e->p.lock);
}

/* The counters, read under the lock as the daemon's STATS does. */
static struct rl_counters totals(struct env *e)
{
	struct rl_counters c;

	pthread_mutex_lock(&e->p.lock);
	c = e->p.total;
	pthread_mutex_unlock(&e->p.lock);
	return c;
}

static struct rl_counters session_totals(struct env *e)
{
	struct rl_counters c;

	pthread_mutex_lock(&e->p.lock);
	c = e->sess.c;
	pthread_mutex_unlock(&e->p.lock);
	return c;
}

static uint32_t used_frames(struct env *e)
{
	uint32_t n;

	pthread_mutex_lock(&e->p.lock);
	n = frames_used(&e->p);
	pthread_mutex_unlock(&e->p.lock);
	return n;
}

/* PG_dirty of a resident page (p->lock held) */
static bool pte_dirty(struct rl_region *r, const struct rl_pte *pte)
{
	return (pte->flags & RL_PTE_RESIDENT) &&
	       PageDirty(pfn_to_page(&r->pager->pgdat, pte->frame));
}

static int no_dirty_fn(struct rl_region *r, uint64_t index, struct rl_pte *pte, void *arg)
{
	return pte_dirty(r, pte) ? 1 : 0;
}

static int clean_fn(struct rl_region *r, uint64_t index, struct rl_pte *pte, void *arg)
{
	if ((pte->flags & RL_PTE_RESIDENT) && !pte_dirty(r, pte))
		++*(uint32_t *)arg;
	return 0;
}

/* resident pages that are clean (p->lock held) */
static uint32_t clean_resident(struct env *e)
{
	uint32_t n = 0;

	rl_pte_for_each(e->cl.regions.v[0], 0, NPAGES, clean_fn, &n);
	return n;
}

static void data_test(const struct rl_aops *ops, bool verify)
{
	struct env e;
	struct rl_counters c, sc;
	struct timespec t0, t1;
	double secs;
	uint64_t wp_before, dirty[BUDGET];
	size_t ndirty;
	int memfd, snapfd;
	int64_t ret;
	unsigned char *snap;

	env_init(&e, ops, verify);
	e.cl.uffd = make_uffd();
	if (e.cl.uffd < 0)
		skip();
	e.map = make_region(e.cl.uffd, &memfd, NPAGES, NPAGES);
	assert_non_null(e.map);
	add_region(&e, (uintptr_t)e.map, NPAGES, memfd);
	start_handlers(&e);
	model = calloc(NPAGES, PG);
	atomic_store(&worker_failures, 0);

	/* phase 1: 3 threads, random reads and writes over 16x the budget */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	run_workers(&e, 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	check_budget_and_no_kill(&e);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr, "  %s: phase 1: %.0f faults/s (%lu missing + %lu wp in %.2f s)\n",
		ops->name, (double)(totals(&e).faults_missing + totals(&e).faults_wp) / secs,
		(unsigned long)totals(&e).faults_missing, (unsigned long)totals(&e).faults_wp, secs);
	check_all(&e);
	c = totals(&e);
	assert_true(c.evictions > 0);
	assert_true(c.refaults > 0);
	assert_true(c.pages_written > 0);
	assert_true(c.pages_read > 0);
	assert_true(c.zero_fills > 0);
	assert_true(c.faults_wp > 0);
	assert_int_equal(c.bytes_written, c.pages_written * PG);
	assert_int_equal(c.faults_missing, c.zero_fills + c.pages_read);
	/* A page read and checked whose copy into the client then finds the
	 * range gone (uffd_target_gone) is checked but not counted as read. */
	if (verify)
		assert_true(c.verify_checked >= c.pages_read &&
			    c.verify_checked <= c.pages_read + 8);
	assert_int_equal(c.verify_failed, 0);
	c = totals(&e);
	sc = session_totals(&e);
	assert_memory_equal(&sc, &c, sizeof(c));

	/* phase 2: DISCARD pages [100, 400): they read as zeroes */
	ret = rl_region_discard(&e.p, &e.cl, e.region_id, 100, 300);
	assert_true(ret > 0 && ret <= 300);
	memset(model + 100 * PG, 0, 300 * PG);
	assert_int_equal(rl_region_discard(&e.p, &e.cl, e.region_id, NPAGES - 1, 2), -EINVAL);
	assert_int_equal(rl_region_discard(&e.p, &e.cl, 999, 0, 1), -ENOENT);
	check_budget_and_no_kill(&e);
	check_all(&e);
	assert_true(totals(&e).discards >= (uint64_t)ret);

	/* phase 3: more random work over discarded and evicted pages */
	run_workers(&e, 2);
	check_budget_and_no_kill(&e);
	check_all(&e);

	/* phase 4: SYNC writes the dirty pages back and leaves them resident
	 * and write-protected: writes after it fault again, and are not lost
	 * when the pages are then evicted as clean ones */
	for (uint64_t i = NPAGES - BUDGET / 2; i < NPAGES; i++) {
		e.map[i * PG + 7] ^= 0xa5;
		model[i * PG + 7] ^= 0xa5;
	}
	quiesce(&e);
	pthread_mutex_lock(&e.p.lock);
	ndirty = 0;
	for (uint64_t i = 0; i < NPAGES; i++) {
		struct rl_pte *pte = rl_pte_lookup(e.cl.regions.v[0], i, false);

		if (pte && pte_dirty(e.cl.regions.v[0], pte))
			dirty[ndirty++] = i;
	}
	pthread_mutex_unlock(&e.p.lock);
	assert_true(ndirty > 0);
	ret = rl_region_sync(&e.p, &e.cl, e.region_id, 0, NPAGES);
	assert_int_equal(ret, ndirty);
	pthread_mutex_lock(&e.p.lock);
	assert_int_equal(rl_pte_for_each(e.cl.regions.v[0], 0, NPAGES, no_dirty_fn, NULL), 0);
	assert_int_equal(frames_used(&e.p), clean_resident(&e));
	wp_before = e.p.total.faults_wp;
	pthread_mutex_unlock(&e.p.lock);
	for (size_t k = 0; k < ndirty; k++) {
		e.map[dirty[k] * PG + k % PG] ^= 0x5a;
		model[dirty[k] * PG + k % PG] ^= 0x5a;
	}
	quiesce(&e);
	assert_int_equal(totals(&e).faults_wp, wp_before + ndirty);
	check_all(&e);		/* evicts them all */
	check_all(&e);		/* reads them back */

	/* phase 5: SNAPSHOT equals the model and takes no frame */
	snapfd = memfd_create("rl-test-snap", MFD_CLOEXEC);
	assert_int_equal(ftruncate(snapfd, NPAGES * PG), 0);
	{
		uint32_t used = used_frames(&e);

		ret = rl_region_snapshot(&e.p, &e.cl, e.region_id, snapfd);
		assert_true(ret > 0);
		/* kswapd may free some meanwhile */
		assert_true(used_frames(&e) <= used);
	}
	snap = mmap(NULL, NPAGES * PG, PROT_READ, MAP_SHARED, snapfd, 0);
	assert_true(snap != MAP_FAILED);
	assert_memory_equal(snap, model, NPAGES * PG);
	munmap(snap, NPAGES * PG);
	close(snapfd);
	check_budget_and_no_kill(&e);

	/* --verify: a corrupt page read for a SNAPSHOT fails it */
	if (verify) {
		int64_t bad = -1;

		pthread_mutex_lock(&e.p.lock);
		for (uint64_t i = 0; i < NPAGES && bad < 0; i++) {
			struct rl_pte *pte = rl_pte_lookup(e.cl.regions.v[0], i, false);

			if (pte && (pte->flags & RL_PTE_BACKED) && !(pte->flags & RL_PTE_RESIDENT))
				bad = (int64_t)i;
		}
		pthread_mutex_unlock(&e.p.lock);
		assert_true(bad >= 0);
		mem.corrupt_index = bad;
		snapfd = memfd_create("rl-test-snap", MFD_CLOEXEC);
		assert_int_equal(ftruncate(snapfd, NPAGES * PG), 0);
		assert_int_equal(rl_region_snapshot(&e.p, &e.cl, e.region_id, snapfd), -EIO);
		assert_int_equal(totals(&e).verify_failed, 1);
		close(snapfd);
		mem.corrupt_index = -1;
	}

	/* REGION_DEL frees every frame and the backing object */
	ret = rl_region_del(&e.p, &e.cl, e.region_id);
	assert_true(ret > 0);
	assert_int_equal(used_frames(&e), 0);
	assert_int_equal(rl_region_del(&e.p, &e.cl, e.region_id), -ENOENT);
	fprintf(stderr, "  %s%s: %lu missing faults (%lu zero, %lu read, %lu refaults), "
		"%lu wp faults, %lu evictions, %lu written, peak %lu/%u frames\n",
		ops->name, verify ? " --verify" : "", (unsigned long)totals(&e).faults_missing,
		(unsigned long)totals(&e).zero_fills, (unsigned long)totals(&e).pages_read,
		(unsigned long)totals(&e).refaults, (unsigned long)totals(&e).faults_wp,
		(unsigned long)totals(&e).evictions, (unsigned long)totals(&e).pages_written,
		(unsigned long)totals(&e).peak_resident, BUDGET);
	env_destroy(&e);
	munmap(e.map, NPAGES * PG);
	free(model);
}

static void test_data_mem_verify(void **state)
{
	data_test(&mem_aops, true);
}

static void test_data_file(void **state)
{
	data_test(&rl_file_aops, false);
}

/* ---- kill paths, with a forked child as the client ---------------------- */

enum child_mode {
	CHILD_VERIFY,		/* write 4x the budget, read back: one page is corrupt */
	CHILD_ENOSPC,		/* write 4x the budget: nothing can be written back */
	CHILD_OUTSIDE,		/* touch a registered page in no region */
};

#define CHILD_PAGES	(4 * BUDGET)

static void send_fds(int sock, int fd0, int fd1, uint64_t addr)
{
	char cbuf[CMSG_SPACE(2 * sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = &addr, .iov_len = sizeof(addr) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	int fds[2] = { fd0, fd1 };

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	if (sendmsg(sock, &mh, 0) != sizeof(addr))
		_exit(10);
}

static int recv_fds(int sock, int *fd0, int *fd1, uint64_t *addr)
{
	char cbuf[CMSG_SPACE(2 * sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = addr, .iov_len = sizeof(*addr) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	int fds[2];

	if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) != sizeof(*addr))
		return -1;
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(fds)))
		return -1;
	memcpy(fds, CMSG_DATA(cm), sizeof(fds));
	*fd0 = fds[0];
	*fd1 = fds[1];
	return 0;
}

static void child_main(int sock, enum child_mode mode)
{
	uint64_t mapped = CHILD_PAGES + 1;
	unsigned char *map;
	char go;
	int uffd = make_uffd(), memfd;

	if (uffd < 0)
		_exit(11);
	map = make_region(uffd, &memfd, CHILD_PAGES, mapped);
	if (!map)
		_exit(12);
	send_fds(sock, uffd, memfd, (uintptr_t)map);
	if (read(sock, &go, 1) != 1)
		_exit(13);
	if (mode == CHILD_OUTSIDE) {
		map[CHILD_PAGES * PG] = 1;
		_exit(0);
	}
	for (uint64_t i = 0; i < CHILD_PAGES; i++)
		memset(map + i * PG, (int)(i * 7 + 1), PG);
	for (uint64_t i = 0; i < CHILD_PAGES; i++)
		for (size_t b = 0; b < PG; b++)
			if (map[i * PG + b] != (unsigned char)(i * 7 + 1))
				_exit(3);	/* read wrong data: the worst outcome */
	_exit(0);
}

static void kill_test(enum child_mode mode, const char *expect)
{
	struct env e;
	char buf[512];
	int sv[2], status, memfd = -1;
	uint64_t addr;
	pid_t pid;

	env_init(&e, &mem_aops, mode == CHILD_VERIFY);
	if (mode == CHILD_VERIFY)
		mem.corrupt_index = 5;
	if (mode == CHILD_ENOSPC)
		mem.write_err = -ENOSPC;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		child_main(sv[1], mode);
	}
	close(sv[1]);
	if (recv_fds(sv[0], &e.cl.uffd, &memfd, &addr)) {
		waitpid(pid, &status, 0);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 11)
			skip();
		fail_msg("the child did not send its uffd (status 0x%x)", status);
	}
	e.cl.pid = pid;
	e.cl.pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	assert_true(e.cl.pidfd >= 0);
	add_region(&e, addr, CHILD_PAGES, memfd);
	start_handlers(&e);
	assert_int_equal(write(sv[0], "g", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(sv[0]);
	read_errpipe(&e, buf, sizeof(buf));
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		fail_msg("the client was not killed (status 0x%x); it said: %s", status, buf);
	if (!strstr(buf, expect))
		fail_msg("expected \"%s\" in the client's stderr, got \"%s\"", expect, buf);
	assert_true(e.cl.dead);
	assert_true(used_frames(&e) <= BUDGET);
	if (mode == CHILD_VERIFY) {
		assert_int_equal(totals(&e).verify_failed, 1);
		assert_int_equal(session_totals(&e).verify_failed, 1);
		assert_true(totals(&e).pages_written >= CHILD_PAGES - BUDGET);
	}
	if (mode == CHILD_ENOSPC) {
		/* nothing could be written, so only pages still clean (filled,
		 * not yet written to) could be evicted to make room */
		assert_int_equal(totals(&e).pages_written, 0);
		assert_true(totals(&e).faults_missing >= BUDGET);
		assert_true(totals(&e).faults_missing <= BUDGET + totals(&e).evictions);
	}
	env_destroy(&e);
}

static void test_kill_verify(void **state)
{
	kill_test(CHILD_VERIFY, "page 5 of region 1 failed --verify; stopping it");
}

static void test_kill_enospc(void **state)
{
	kill_test(CHILD_ENOSPC, "the backing store is full (ENOSPC): cannot page out; stopping it");
}

static void test_kill_outside(void **state)
{
	kill_test(CHILD_OUTSIDE, "outside every pager region; stopping it");
}

static void test_region_add_rejects(void **state)
{
	struct env e;
	struct rl_msg_region_add ra = { .start = 0x100000, .len = 16 * PG, .kind = RL_REGION_ANON };
	const char *why = NULL;
	uint32_t id;
	int fd;

	env_init(&e, &mem_aops, false);
	/* not a memfd */
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	assert_int_equal(rl_region_add(&e.p, &e.cl, &ra, fd, &id, &why), -EINVAL);
	assert_non_null(strstr(why, "not a memfd"));
	/* not sealable: it could shrink under the daemon's mapping */
	fd = memfd_create("unsealable", MFD_CLOEXEC);
	assert_int_equal(ftruncate(fd, 16 * PG), 0);
	assert_int_equal(rl_region_add(&e.p, &e.cl, &ra, fd, &id, &why), -EINVAL);
	assert_non_null(strstr(why, "sealed"));
	/* smaller than the region */
	fd = memfd_create("small", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_int_equal(ftruncate(fd, PG), 0);
	assert_int_equal(rl_region_add(&e.p, &e.cl, &ra, fd, &id, &why), -EINVAL);
	assert_non_null(strstr(why, "smaller"));
	/* unaligned */
	ra.start += 1;
	fd = memfd_create("r", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_int_equal(ftruncate(fd, 16 * PG), 0);
	assert_int_equal(rl_region_add(&e.p, &e.cl, &ra, fd, &id, &why), -EINVAL);
	ra.start -= 1;
	/* FILE region on a backend without files */
	ra.kind = RL_REGION_FILE;
	fd = memfd_create("r", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_int_equal(ftruncate(fd, 16 * PG), 0);
	assert_int_equal(rl_region_add(&e.p, &e.cl, &ra, fd, &id, &why), -EOPNOTSUPP);
	/* overlap */
	ra.kind = RL_REGION_ANON;
	fd = memfd_create("r", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_int_equal(ftruncate(fd, 16 * PG), 0);
	assert_int_equal(rl_region_add(&e.p, &e.cl, &ra, fd, &id, &why), 0);
	ra.start += 8 * PG;
	fd = memfd_create("r", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_int_equal(ftruncate(fd, 16 * PG), 0);
	assert_int_equal(rl_region_add(&e.p, &e.cl, &ra, fd, &id, &why), -EEXIST);
	assert_non_null(strstr(why, "overlaps"));
	start_handlers(&e);
	env_destroy(&e);
}

/* ---- a FILE region: a shared mapping of a file's pages 16.. ------------- */

#define FILE_PAGES	300
#define FILE_PGOFF	16
#define FREGION_PAGES	256	/* 4x the budget */

static unsigned char file_byte(uint64_t fpage, size_t b)
{
	return (unsigned char)(fpage * 31 + b / 64 + 1);
}

static void file_check(const unsigned char *m)
{
	for (uint64_t i = 0; i < FREGION_PAGES; i++) {
		const unsigned char *pg = mem_file->pages[FILE_PGOFF + i];

		assert_non_null(pg);
		if (memcmp(pg, m + i * PG, PG))
			fail_msg("file page %lu differs from the model",
				 (unsigned long)(FILE_PGOFF + i));
	}
}

static void test_file_region(void **state)
{
	struct rl_msg_region_add ra = { .len = FREGION_PAGES * PG, .kind = RL_REGION_FILE,
					.file_ino = FILE_INO, .file_pgoff = FILE_PGOFF };
	unsigned char *m = malloc(FREGION_PAGES * PG), *snap;
	uint64_t seed = 99, written;
	const char *why;
	struct env e;
	int64_t ret;
	int memfd, snapfd;

	env_init(&e, &mem_aops, true);
	e.p.file_backend.ops = &mem_aops;
	assert_int_equal(mem_open_anon(NULL, FILE_PAGES, &mem_file), 0);
	for (uint64_t f = 0; f < FILE_PAGES; f++) {
		mem_file->pages[f] = malloc(PG);
		for (size_t b = 0; b < PG; b++)
			mem_file->pages[f][b] = file_byte(f, b);
	}
	for (uint64_t i = 0; i < FREGION_PAGES; i++)
		memcpy(m + i * PG, mem_file->pages[FILE_PGOFF + i], PG);
	e.cl.uffd = make_uffd();
	if (e.cl.uffd < 0)
		skip();
	e.map = make_region(e.cl.uffd, &memfd, FREGION_PAGES, FREGION_PAGES);
	assert_non_null(e.map);
	ra.start = (uintptr_t)e.map;
	assert_int_equal(rl_region_add(&e.p, &e.cl, &ra, memfd, &e.region_id, &why), 0);
	start_handlers(&e);

	/* the file's data shows through; writes go back to the file */
	for (int op = 0; op < 4000; op++) {
		uint64_t r = xorshift(&seed), i = r % FREGION_PAGES;
		size_t off = (r >> 20) % PG;

		if ((r >> 40) % 2) {
			e.map[i * PG + off] = (unsigned char)(r >> 48);
			m[i * PG + off] = (unsigned char)(r >> 48);
		} else if (memcmp(e.map + i * PG, m + i * PG, PG)) {
			fail_msg("page %lu differs from the model", (unsigned long)i);
		}
	}
	check_budget_and_no_kill(&e);
	assert_true(totals(&e).evictions > 0);
	assert_true(totals(&e).pages_written > 0);
	assert_int_equal(totals(&e).zero_fills, 0);	/* every fill came from the file */
	for (uint64_t i = 0; i < FREGION_PAGES; i++)
		if (memcmp(e.map + i * PG, m + i * PG, PG))
			fail_msg("page %lu differs from the model", (unsigned long)i);

	/* DISCARD keeps a file mapping's data: written back, then evicted */
	written = totals(&e).pages_written;
	ret = rl_region_discard(&e.p, &e.cl, e.region_id, 0, FREGION_PAGES);
	assert_true(ret > 0);
	check_budget_and_no_kill(&e);
	assert_int_equal(used_frames(&e), 0);
	assert_true(totals(&e).pages_written >= written);
	file_check(m);

	/* touch some again, SNAPSHOT has the file data under the untouched ones */
	for (uint64_t i = 0; i < FREGION_PAGES; i += 5) {
		e.map[i * PG] ^= 0xff;
		m[i * PG] ^= 0xff;
	}
	quiesce(&e);
	snapfd = memfd_create("rl-test-snap", MFD_CLOEXEC);
	assert_int_equal(ftruncate(snapfd, FREGION_PAGES * PG), 0);
	ret = rl_region_snapshot(&e.p, &e.cl, e.region_id, snapfd);
	assert_int_equal(ret, FREGION_PAGES);
	snap = mmap(NULL, FREGION_PAGES * PG, PROT_READ, MAP_SHARED, snapfd, 0);
	assert_true(snap != MAP_FAILED);
	assert_memory_equal(snap, m, FREGION_PAGES * PG);
	munmap(snap, FREGION_PAGES * PG);
	close(snapfd);

	/* REGION_DEL writes the dirty pages back before dropping them */
	ret = rl_region_del(&e.p, &e.cl, e.region_id);
	assert_true(ret > 0);
	file_check(m);
	check_budget_and_no_kill(&e);
	mem_release_file();
	env_destroy(&e);
	munmap(e.map, FREGION_PAGES * PG);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_mem_verify),
		cmocka_unit_test(test_data_file),
		cmocka_unit_test(test_kill_verify),
		cmocka_unit_test(test_kill_enospc),
		cmocka_unit_test(test_kill_outside),
		cmocka_unit_test(test_region_add_rejects),
		cmocka_unit_test(test_file_region),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
