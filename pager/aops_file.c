/* SPDX-License-Identifier: MIT */
/*
 * a_ops on plain host files (see aops.h): the shallow reference against
 * which deepfs's deep path is measured. An anonymous region is an unlinked
 * file in be->dir, read with pread and written through io_uring, whole
 * pages; the host's page cache and filesystem do the rest. page_mkwrite
 * reserves the page's space with fallocate, so that a full host
 * filesystem fails the fault, not the writeback. There are no FILE
 * regions.
 *
 * Writes go through one io_uring per thread, made on the thread's first
 * write and freed when it exits. writepage(s) is called from several
 * threads at once (fault threads, kswapd, the writeback workers), on one
 * backing and on many: a ring per backing would need a lock around
 * submission and completion, serialising exactly the IO that the threads
 * are there to overlap, and its completions would have to be handed to
 * whichever thread asked; a ring per thread needs no lock, and every
 * completion on it is its own thread's. A call with more IOs than the ring
 * holds submits them RL_FILE_RING_DEPTH at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "pager/aops.h"

struct rl_backing {
	struct rl_backend *be;	/* its write IO counters */
	int fd;
	uint64_t npages;	/* the region's size, a bound on indexes */
};

#define RL_FILE_RING_DEPTH	64u
/* Pages of one writev: the kernel's limit on iovecs per call. */
#define RL_FILE_RUN_MAX		((uint64_t)IOV_MAX)

/* O_TMPFILE first: the file never has a name, so nothing is left behind
 * even if the daemon dies at once. */
static int rl_file_create(const char *dir)
{
	char path[PATH_MAX];
	int fd, n;

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	/* filesystems without O_TMPFILE say EOPNOTSUPP; kernels before it, EISDIR */
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -errno;
	n = snprintf(path, sizeof(path), "%s/.rl-anon-XXXXXX", dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (unlink(path) < 0) {
		int error = -errno;

		fprintf(stderr, "reclaimlab: file backend: cannot unlink %s: %s; remove it by hand\n",
			path, strerror(-error));
		close(fd);
		return error;
	}
	return fd;
}

static int rl_file_open_anon(struct rl_backend *be, uint64_t npages, struct rl_backing **bp)
{
	const char *dir = be->dir;
	struct rl_backing *b;
	int fd;

	if (!dir) {
		fprintf(stderr, "reclaimlab: file backend: no backing directory given\n");
		return -EINVAL;
	}
	if (npages > (uint64_t)INT64_MAX / RL_PAGE_SIZE)
		return -EFBIG;
	fd = rl_file_create(dir);
	if (fd < 0) {
		fprintf(stderr, "reclaimlab: file backend: cannot create a backing file in %s: %s\n",
			dir, strerror(-fd));
		return fd;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		close(fd);
		return -ENOMEM;
	}
	b->be = be;
	b->fd = fd;
	b->npages = npages;
	*bp = b;
	return 0;
}

static int rl_file_open_file(struct rl_backend *be, uint64_t ino, struct rl_backing **bp)
{
	return -EOPNOTSUPP;
}

/* A pager bug must not become IO far past the region. */
static int rl_file_check_range(const struct rl_backing *b, uint64_t first, uint64_t n)
{
	if (first > b->npages || n > b->npages - first)
		return -EINVAL;
	return 0;
}

static int rl_file_readpage(struct rl_backing *b, uint64_t index, void *dst)
{
	off_t off = (off_t)(index * RL_PAGE_SIZE);
	size_t done = 0;
	int error = rl_file_check_range(b, index, 1);

	if (error)
		return error;
	while (done < RL_PAGE_SIZE) {
		ssize_t n = pread(b->fd, (char *)dst + done, RL_PAGE_SIZE - done,
				  off + (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {
			/* EOF: never written, as a hole */
			memset((char *)dst + done, 0, RL_PAGE_SIZE - done);
			break;
		}
		done += (size_t)n;
	}
	return 0;
}

static int rl_file_pwrite_all(struct rl_backing *b, const void *src, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(b->fd, (const char *)src + done, len - done, off + (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;	/* pwrite of a regular file never does this */
		done += (size_t)n;
	}
	return 0;
}

/* ---- the per-thread ring ------------------------------------------------------ */

static pthread_key_t rl_file_ring_key;
static pthread_once_t rl_file_ring_once = PTHREAD_ONCE_INIT;
static int rl_file_ring_key_error;

static void rl_file_ring_free(void *p)
{
	io_uring_queue_exit(p);
	free(p);
}

static void rl_file_ring_key_make(void)
{
	rl_file_ring_key_error = pthread_key_create(&rl_file_ring_key, rl_file_ring_free);
}

static int rl_file_ring_get(struct io_uring **ringp)
{
	struct io_uring *ring;
	int error;

	pthread_once(&rl_file_ring_once, rl_file_ring_key_make);
	if (rl_file_ring_key_error)
		return -rl_file_ring_key_error;
	ring = pthread_getspecific(rl_file_ring_key);
	if (!ring) {
		ring = calloc(1, sizeof(*ring));
		if (!ring)
			return -ENOMEM;
		error = io_uring_queue_init(RL_FILE_RING_DEPTH, ring, 0);
		if (error) {
			fprintf(stderr, "reclaimlab: file backend: cannot set up an io_uring: %s\n",
				strerror(-error));
			free(ring);
			return error;
		}
		error = pthread_setspecific(rl_file_ring_key, ring);
		if (error) {
			rl_file_ring_free(ring);
			return -error;
		}
	}
	*ringp = ring;
	return 0;
}

/* A ring whose submission failed may hold SQEs pointing at memory about to
 * go: it goes instead, and the thread's next write makes a new one. */
static void rl_file_ring_drop(struct io_uring *ring)
{
	pthread_setspecific(rl_file_ring_key, NULL);
	rl_file_ring_free(ring);
}

/* ---- writing -------------------------------------------------------------------- */

/* The rest of one IO the kernel wrote short (a regular file never should:
 * then it gets pwrite's loop rather than an error). */
static int rl_file_write_rest(struct rl_backing *b, uint64_t first, const void *const *srcs,
			      uint64_t p, uint64_t cnt, uint64_t done)
{
	int error = 0;

	for (uint64_t j = done / RL_PAGE_SIZE; j < cnt && !error; j++) {
		size_t skip = j == done / RL_PAGE_SIZE ? done % RL_PAGE_SIZE : 0;

		error = rl_file_pwrite_all(b, (const char *)srcs[p + j] + skip,
					   RL_PAGE_SIZE - skip,
					   (off_t)((first + p + j) * RL_PAGE_SIZE + skip));
	}
	return error;
}

/*
 * batch: one writev SQE per run of up to RL_FILE_RUN_MAX pages (the pages
 * are index-contiguous, so a run is the whole call unless it is longer);
 * otherwise one write SQE per page. At most RL_FILE_RING_DEPTH in flight.
 */
static int rl_file_writepages(struct rl_backing *b, uint64_t first, uint64_t n,
			      const void *const *srcs, bool batch)
{
	uint64_t per = batch ? RL_FILE_RUN_MAX : 1, nios, io, i, ios = 0, bytes = 0;
	struct iovec *iov = NULL;
	struct io_uring *ring;
	int error = rl_file_check_range(b, first, n);

	if (error || n == 0)
		return error;
	error = rl_file_ring_get(&ring);
	if (error)
		return error;
	if (batch) {
		/* lives until the completions: the kernel may read it late */
		iov = malloc(n * sizeof(*iov));
		if (!iov)
			return -ENOMEM;
		for (i = 0; i < n; i++) {
			iov[i].iov_base = (void *)srcs[i];
			iov[i].iov_len = RL_PAGE_SIZE;
		}
	}
	nios = (n + per - 1) / per;
	for (io = 0; io < nios && !error; ) {
		unsigned chunk = nios - io < RL_FILE_RING_DEPTH ? (unsigned)(nios - io)
							       : RL_FILE_RING_DEPTH;
		unsigned k, submitted = 0;

		for (k = 0; k < chunk; k++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
			uint64_t p = (io + k) * per;
			uint64_t cnt = n - p < per ? n - p : per;
			off_t off = (off_t)((first + p) * RL_PAGE_SIZE);

			/* the ring is empty between calls and chunk fits it */
			if (!sqe) {
				error = -EBUSY;
				break;
			}
			if (batch)
				io_uring_prep_writev(sqe, b->fd, &iov[p], (unsigned)cnt, off);
			else
				io_uring_prep_write(sqe, b->fd, srcs[p], RL_PAGE_SIZE, off);
			io_uring_sqe_set_data64(sqe, io + k);
		}
		while (submitted < k) {
			int ret = io_uring_submit(ring);

			if (ret == -EINTR)
				continue;
			if (ret <= 0) {
				error = ret < 0 ? ret : -EIO;
				break;
			}
			submitted += (unsigned)ret;
		}
		for (k = 0; k < submitted; ) {
			struct io_uring_cqe *cqe;
			uint64_t p, cnt, len;
			int ret = io_uring_wait_cqe(ring, &cqe), res;

			if (ret == -EINTR)
				continue;
			k++;
			if (ret < 0) {
				/* the ring is broken: the IOs still in it cannot be
				 * waited for, and their memory is the caller's */
				fprintf(stderr, "reclaimlab: file backend: waiting for io_uring completions: %s\n",
					strerror(-ret));
				abort();
			}
			p = io_uring_cqe_get_data64(cqe) * per;
			res = cqe->res;
			io_uring_cqe_seen(ring, cqe);
			cnt = n - p < per ? n - p : per;
			len = cnt * RL_PAGE_SIZE;
			ios++;
			bytes += len;
			if (res >= 0 && (uint64_t)res == len)
				continue;
			if (res >= 0 || res == -EAGAIN || res == -EINTR)
				ret = rl_file_write_rest(b, first, srcs, p, cnt,
							 res > 0 ? (uint64_t)res : 0);
			else
				ret = res;
			if (ret && !error)
				error = ret;
		}
		if (submitted < chunk && !error)
			error = -EIO;
		if (submitted < chunk)
			rl_file_ring_drop(ring);
		io += chunk;
	}
	free(iov);
	atomic_fetch_add(&b->be->write_ios, ios);
	atomic_fetch_add(&b->be->write_bytes, bytes);
	return error;
}

static int rl_file_writepage(struct rl_backing *b, uint64_t index, const void *src)
{
	return rl_file_writepages(b, index, 1, &src, false);
}

static int rl_file_page_mkwrite(struct rl_backing *b, uint64_t index)
{
	int error = rl_file_check_range(b, index, 1);

	if (error)
		return error;
	if (fallocate(b->fd, FALLOC_FL_KEEP_SIZE, (off_t)(index * RL_PAGE_SIZE),
		      RL_PAGE_SIZE) < 0) {
		/* a host filesystem that cannot reserve: ENOSPC comes at
		 * writeback there, as before */
		if (errno == EOPNOTSUPP)
			return 0;
		return -errno;
	}
	return 0;
}

static int rl_file_discard(struct rl_backing *b, uint64_t first, uint64_t n)
{
	int error = rl_file_check_range(b, first, n);

	if (error || n == 0)
		return error;
	if (fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(first * RL_PAGE_SIZE), (off_t)(n * RL_PAGE_SIZE)) < 0)
		return -errno;
	return 0;
}

static void rl_file_release(struct rl_backing *b)
{
	/* the last reference of an unlinked file: this frees its space */
	if (close(b->fd) < 0)
		fprintf(stderr, "reclaimlab: file backend: closing a backing file: %s\n",
			strerror(errno));
	free(b);
}

const struct rl_aops rl_file_aops = {
	.name = "file",
	.open_anon = rl_file_open_anon,
	.open_file = rl_file_open_file,
	.readpage = rl_file_readpage,
	.writepage = rl_file_writepage,
	.writepages = rl_file_writepages,
	.page_mkwrite = rl_file_page_mkwrite,
	.discard = rl_file_discard,
	.release = rl_file_release,
};
