/* SPDX-License-Identifier: MIT */
/*
 * rl-pager-touch: the workload of `reclaimlab bench pager`, and the floor
 * it is compared with.
 *
 *   rl-pager-touch [--floor|--floor-process] [--mmap] [--refault] seq|rand SIZE [SEED]
 *
 * Takes SIZE bytes (posix_memalign, or mmap with --mmap: under the pager
 * the shim puts them in the heap or the anon region) and times every
 * page's touch with CLOCK_MONOTONIC around one 8-byte access, in page order
 * (seq) or a random permutation of the pages (rand, from SEED):
 *
 *   default    "read": first touch of every page, a read (a missing fault,
 *              answered with a zero page); then "write": a write to every
 *              page (a write-protect fault, the page becomes dirty).
 *   --refault  "fill": a write to every page in page order (missing and
 *              write-protect faults; with a small --mem, evictions that
 *              write pages back); then "reread": a read of every page in
 *              the given order (with a small --mem, refaults read back from
 *              the backing store). Every page carries its index + 1, and
 *              every reread checks it.
 *   --floor    the memory is a memfd mapped MAP_SHARED and registered
 *              MISSING|WP on a userfaultfd of this process, served by a
 *              thread here that does nothing but poll, read and answer:
 *              UFFDIO_COPY of a zero page (MODE_WP) for a missing fault,
 *              UFFDIO_WRITEPROTECT off for a write-protect fault. That is
 *              the least any userfaultfd pager can do per fault, so the
 *              pager's latency is measured against it.
 *   --floor-process  the same handler in a forked process that inherited
 *              the userfaultfd, as the pager's daemon holds the client's:
 *              what crossing a process boundary adds to the floor.
 *
 * Output, one line per phase, for `bench pager` to parse:
 *   phase NAME order=seq pages=N p50_us=X p99_us=X mean_us=X max_us=X seconds=X touches_per_s=X
 * and with a floor "floor faults_missing=N faults_wp=N". A page that reads
 * back wrong (not zero on first touch, not its stamp on reread) is an error:
 * message on stderr, exit 1.
 *
 * Plain C and libc only: it runs under the shim, which must see nothing but
 * an ordinary program.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PG 4096u

static const char *prog = "rl-pager-touch";

static void die(const char *fmt, const char *arg, int err)
{
	fprintf(stderr, "%s: ", prog);
	fprintf(stderr, fmt, arg);
	if (err)
		fprintf(stderr, ": %s", strerror(err));
	fputc('\n', stderr);
	exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: %s [--floor|--floor-process] [--mmap] [--refault] seq|rand SIZE "
		"[SEED]\n"
		"  SIZE: bytes, with an optional K, M or G suffix (a multiple of 4096)\n", prog);
	exit(2);
}

static bool parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return false;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	}
	if (*end || v > (UINT64_MAX >> shift))
		return false;
	*out = (uint64_t)v << shift;
	return true;
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * The bookkeeping arrays bypass the shim (raw mmap syscall) and are faulted
 * in before any timing, so that under the pager the only faults in a timed
 * loop are the ones being measured and the budget covers the workload only.
 */
static void *private_array(size_t bytes)
{
	void *p = (void *)syscall(SYS_mmap, NULL, bytes, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		die("cannot map %s of bookkeeping", "arrays", errno);
	memset(p, 0, bytes);
	return p;
}

/* ---- the floor: a minimal userfaultfd handler, in a thread or a child ---- */

struct floor {
	bool xproc;		/* the handler is a forked process, as the daemon is */
	pid_t pid;
	int uffd;
	int stop_rfd, stop_wfd;	/* a pipe: a byte on it stops the handler */
	void *zero;		/* one zero page, the UFFDIO_COPY source */
};

/* Shared with a forked handler (MAP_SHARED), so main reads them either way. */
struct floor_counts {
	atomic_uint_fast64_t missing, wp;
	atomic_int error;
};
static struct floor_counts *counts;

static void set_error(int err)
{
	int none = 0;

	atomic_compare_exchange_strong(&counts->error, &none, err);
}

static void *floor_handler(void *arg)
{
	struct floor *f = arg;
	struct uffd_msg msgs[16];
	struct pollfd pfd[2] = { { f->uffd, POLLIN, 0 }, { f->stop_rfd, POLLIN, 0 } };

	for (;;) {
		ssize_t n;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			set_error(errno);
			return NULL;
		}
		if (pfd[1].revents)
			return NULL;
		n = read(f->uffd, msgs, sizeof(msgs));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			set_error(errno);
			return NULL;
		}
		for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]); i++) {
			const struct uffd_msg *m = &msgs[i];
			uint64_t addr = m->arg.pagefault.address & ~(uint64_t)(PG - 1);

			if (m->event != UFFD_EVENT_PAGEFAULT)
				continue;
			if (m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
				struct uffdio_writeprotect w = { { addr, PG }, 0 };

				if (ioctl(f->uffd, UFFDIO_WRITEPROTECT, &w) < 0)
					set_error(errno);
				atomic_fetch_add(&counts->wp, 1);
			} else {
				struct uffdio_copy c = { addr, (uint64_t)(uintptr_t)f->zero, PG,
							 UFFDIO_COPY_MODE_WP, 0 };

				/* EEXIST: already there (a spurious repeat); the touch retries */
				if (ioctl(f->uffd, UFFDIO_COPY, &c) < 0 && errno != EEXIST)
					set_error(errno);
				atomic_fetch_add(&counts->missing, 1);
			}
		}
	}
}

static char *floor_map(struct floor *f, uint64_t size, pthread_t *th)
{
	struct uffdio_api api = { .api = UFFD_API,
		.features = UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_WP_HUGETLBFS_SHMEM };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING |
						UFFDIO_REGISTER_MODE_WP };
	int pipefd[2], mfd, err;
	char *base;

	f->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (f->uffd < 0)
		die("%s (as root, or with vm.unprivileged_userfaultfd=1)",
		    "userfaultfd is not available", errno);
	if (ioctl(f->uffd, UFFDIO_API, &api) < 0)
		die("UFFDIO_API with %s", "write-protect on shmem", errno);
	mfd = (int)syscall(SYS_memfd_create, "rl-touch-floor", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, (off_t)size) < 0)
		die("%s", "memfd", errno);
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, mfd, 0);
	if (base == MAP_FAILED)
		die("%s", "mmap of the memfd", errno);
	close(mfd);
	reg.range.start = (uint64_t)(uintptr_t)base;
	reg.range.len = size;
	if (ioctl(f->uffd, UFFDIO_REGISTER, &reg) < 0)
		die("UFFDIO_REGISTER %s", "MISSING|WP", errno);
	f->zero = private_array(PG);
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		die("%s", "pipe", errno);
	f->stop_rfd = pipefd[0];
	f->stop_wfd = pipefd[1];
	counts = mmap(NULL, sizeof(*counts), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		      -1, 0);
	if (counts == MAP_FAILED)
		die("%s", "cannot map the counters", errno);
	if (f->xproc) {
		/* The child keeps the uffd, which still acts on this process's mm:
		 * the pager daemon's situation after SCM_RIGHTS. */
		f->pid = fork();
		if (f->pid < 0)
			die("%s", "cannot fork the handler", errno);
		if (f->pid == 0) {
			close(f->stop_wfd);
			floor_handler(f);
			_exit(0);
		}
		close(f->stop_rfd);
		return base;
	}
	err = pthread_create(th, NULL, floor_handler, f);
	if (err)
		die("%s", "cannot start the handler thread", err);
	return base;
}

static void floor_stop(struct floor *f, pthread_t th)
{
	char b = 1;

	if (write(f->stop_wfd, &b, 1) != 1)
		die("%s", "cannot stop the handler", errno);
	if (f->xproc) {
		int ws;

		if (waitpid(f->pid, &ws, 0) < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
			die("%s", "the handler process failed", 0);
	} else {
		pthread_join(th, NULL);
	}
	if (atomic_load(&counts->error))
		die("%s", "the floor handler failed", atomic_load(&counts->error));
}

/* ---- timing ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static void report(const char *phase, const char *order, uint64_t *lat, uint64_t n,
		   uint64_t wall_ns)
{
	uint64_t sum = 0;

	for (uint64_t i = 0; i < n; i++)
		sum += lat[i];
	qsort(lat, n, sizeof(lat[0]), cmp_u64);
	printf("phase %s order=%s pages=%" PRIu64 " p50_us=%.3f p99_us=%.3f mean_us=%.3f "
	       "max_us=%.3f seconds=%.6f touches_per_s=%.0f\n",
	       phase, order, n, lat[n / 2] / 1e3, lat[n * 99 / 100] / 1e3, sum / 1e3 / n,
	       lat[n - 1] / 1e3, wall_ns / 1e9, n / (wall_ns / 1e9));
	fflush(stdout);
}

enum touch { TOUCH_READ_ZERO, TOUCH_READ_STAMP, TOUCH_WRITE };

static void run_phase(const char *phase, const char *order, char *base, const uint64_t *idx,
		      uint64_t n, enum touch how, uint64_t *lat)
{
	uint64_t start = now_ns();

	for (uint64_t i = 0; i < n; i++) {
		volatile uint64_t *p = (volatile uint64_t *)(base + idx[i] * PG);
		uint64_t t0, t1, v = 0;

		t0 = now_ns();
		if (how == TOUCH_WRITE)
			*p = idx[i] + 1;
		else
			v = *p;
		t1 = now_ns();
		lat[i] = t1 - t0;
		if (how == TOUCH_READ_ZERO && v != 0) {
			fprintf(stderr, "%s: page %" PRIu64 " read %#" PRIx64 " on first touch, "
				"not zero\n", prog, idx[i], v);
			exit(1);
		}
		if (how == TOUCH_READ_STAMP && v != idx[i] + 1) {
			fprintf(stderr, "%s: page %" PRIu64 " read back %#" PRIx64 ", expected %#"
				PRIx64 "\n", prog, idx[i], v, idx[i] + 1);
			exit(1);
		}
	}
	report(phase, order, lat, n, now_ns() - start);
}

/* xorshift64*: reproducible from SEED, no libc state */
static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

int main(int argc, char **argv)
{
	bool floor_mode = false, use_mmap = false, refault = false, random_order;
	uint64_t size, npages, seed = 1, *idx, *seqidx, *lat;
	struct floor f = { .uffd = -1, .stop_rfd = -1, .stop_wfd = -1 };
	pthread_t th;
	const char *order;
	char *base;
	int a = 1;

	for (; a < argc && argv[a][0] == '-'; a++) {
		if (strcmp(argv[a], "--floor") == 0)
			floor_mode = true;
		else if (strcmp(argv[a], "--floor-process") == 0)
			floor_mode = f.xproc = true;
		else if (strcmp(argv[a], "--mmap") == 0)
			use_mmap = true;
		else if (strcmp(argv[a], "--refault") == 0)
			refault = true;
		else
			usage();
	}
	if (argc - a < 2 || argc - a > 3)
		usage();
	order = argv[a];
	if (strcmp(order, "seq") != 0 && strcmp(order, "rand") != 0)
		usage();
	random_order = order[0] == 'r';
	if (!parse_size(argv[a + 1], &size) || size == 0 || size % PG)
		die("bad SIZE '%s': a multiple of 4096 above 0, like 256M", argv[a + 1], 0);
	if (argc - a == 3 && (!parse_size(argv[a + 2], &seed) || seed == 0))
		die("bad SEED '%s': a number above 0", argv[a + 2], 0);
	if (floor_mode && (use_mmap || refault))
		die("%s", "the floor serves zero pages only: no --mmap, no --refault", 0);
	npages = size / PG;

	idx = private_array(npages * sizeof(*idx));
	seqidx = private_array(npages * sizeof(*seqidx));
	lat = private_array(npages * sizeof(*lat));
	for (uint64_t i = 0; i < npages; i++)
		idx[i] = seqidx[i] = i;
	if (random_order)
		for (uint64_t i = npages - 1; i > 0; i--) {
			uint64_t j = next_rand(&seed) % (i + 1), t = idx[i];

			idx[i] = idx[j];
			idx[j] = t;
		}

	if (floor_mode) {
		base = floor_map(&f, size, &th);
	} else if (use_mmap) {
		base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (base == MAP_FAILED)
			die("cannot mmap %s", argv[a + 1], errno);
	} else {
		int err = posix_memalign((void **)&base, PG, size);

		if (err)
			die("cannot allocate %s", argv[a + 1], err);
	}

	if (refault) {
		run_phase("fill", "seq", base, seqidx, npages, TOUCH_WRITE, lat);
		run_phase("reread", order, base, idx, npages, TOUCH_READ_STAMP, lat);
	} else {
		run_phase("read", order, base, idx, npages, TOUCH_READ_ZERO, lat);
		run_phase("write", order, base, idx, npages, TOUCH_WRITE, lat);
		if (floor_mode) {
			floor_stop(&f, th);
			printf("floor faults_missing=%" PRIu64 " faults_wp=%" PRIu64 "\n",
			       (uint64_t)atomic_load(&counts->missing),
			       (uint64_t)atomic_load(&counts->wp));
		}
	}
	return 0;
}
