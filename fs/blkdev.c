/* SPDX-License-Identifier: MIT */
/*
 * The block layer over io_uring (see blkdev.h for the contract).
 *
 * dfs_submit_bio() only prepares an SQE, like submit_bio() under a plug;
 * dfs_blkdev_unplug() hands the batch to the kernel with one
 * io_uring_submit(). Completions are reaped by whoever waits, and end_io runs
 * in that thread with the ring lock held; the lock is recursive so that an
 * end_io may submit more IO (a bio chain). bio->done is set before end_io
 * runs, and a waiter only looks at it under the lock, so a waiter cannot
 * return while another thread is still inside its bio's end_io.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <liburing.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blkdev.h"
#include "msg.h"

#define DFS_RING_ENTRIES 256u

struct dfs_blkdev {
	int fd;
	bool is_bdev;
	bool direct;
	bool readonly;
	uint64_t size;

	pthread_mutex_t lock;		/* recursive; guards everything below */
	unsigned lock_depth;		/* of the holder's recursion */
	/* A thread sleeps in the kernel for completions without the lock
	 * (reaping), so that others can submit meanwhile; the rest wait on
	 * reap_cond for it to have reaped. */
	bool reaping;
	pthread_cond_t reap_cond;
	struct io_uring ring;
	unsigned queued;		/* SQEs prepared, not yet submitted */
	unsigned inflight;		/* submitted, not yet reaped */
	struct dfs_blkdev_stats stats;

	bool iolog_on;
	struct dfs_iolog_rec *iolog;
	size_t iolog_len, iolog_cap;
};

static uint64_t dfs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int dfs_blkdev_getsize(struct dfs_blkdev *bd)
{
	struct stat st;

	if (fstat(bd->fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		uint64_t sz;

		if (ioctl(bd->fd, BLKGETSIZE64, &sz) < 0)
			return -errno;
		bd->is_bdev = true;
		bd->size = sz;
	} else if (S_ISREG(st.st_mode)) {
		bd->size = (uint64_t)st.st_size;
	} else {
		return -ENOTBLK;
	}
	return 0;
}

int dfs_blkdev_open(const char *path, bool readonly, struct dfs_blkdev **bdp)
{
	int flags = (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	pthread_mutexattr_t attr;
	struct dfs_blkdev *bd;
	int error;

	bd = calloc(1, sizeof(*bd));
	if (!bd)
		return -ENOMEM;
	bd->readonly = readonly;
	bd->direct = true;
	bd->fd = open(path, flags | O_DIRECT);
	if (bd->fd < 0 && errno == EINVAL) {
		/* tmpfs and a few others refuse O_DIRECT */
		bd->direct = false;
		bd->fd = open(path, flags);
		if (bd->fd >= 0)
			fprintf(stderr, "deepfs (%s): O_DIRECT not supported here, using buffered IO\n",
				path);
	}
	if (bd->fd < 0) {
		error = -errno;
		free(bd);
		return error;
	}
	error = dfs_blkdev_getsize(bd);
	if (error)
		goto out_close;
	error = io_uring_queue_init(DFS_RING_ENTRIES, &bd->ring, 0);
	if (error)
		goto out_close;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&bd->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	pthread_cond_init(&bd->reap_cond, NULL);
	*bdp = bd;
	return 0;

out_close:
	close(bd->fd);
	free(bd);
	return error;
}

void dfs_blkdev_close(struct dfs_blkdev *bd)
{
	if (!bd)
		return;
	dfs_blkdev_drain(bd);
	io_uring_queue_exit(&bd->ring);
	close(bd->fd);
	pthread_mutex_destroy(&bd->lock);
	pthread_cond_destroy(&bd->reap_cond);
	free(bd->iolog);
	free(bd);
}

uint64_t dfs_blkdev_size(const struct dfs_blkdev *bd)
{
	return bd->size;
}

bool dfs_blkdev_is_bdev(const struct dfs_blkdev *bd)
{
	return bd->is_bdev;
}

void *dfs_bio_alloc_buf(size_t len)
{
	void *p;

	if (posix_memalign(&p, DFS_IO_ALIGN, len ? len : DFS_IO_ALIGN))
		return NULL;
	memset(p, 0, len);
	return p;
}

void dfs_bio_init(struct dfs_bio *bio, enum dfs_io_dir dir, enum dfs_io_kind kind,
		  uint64_t offset)
{
	memset(bio, 0, offsetof(struct dfs_bio, vecs));
	bio->offset = offset;
	bio->dir = dir;
	bio->kind = kind;
	bio->error = 0;
	bio->done = false;
	bio->end_io = NULL;
	bio->private = NULL;
	bio->submit_ns = 0;
}

void dfs_bio_add_vec(struct dfs_bio *bio, void *buf, size_t len)
{
	assert(bio->nr_vecs < DFS_BIO_MAX_VECS);
	bio->vecs[bio->nr_vecs].iov_base = buf;
	bio->vecs[bio->nr_vecs].iov_len = len;
	bio->nr_vecs++;
}

uint64_t dfs_bio_len(const struct dfs_bio *bio)
{
	uint64_t len = 0;

	for (int i = 0; i < bio->nr_vecs; i++)
		len += bio->vecs[i].iov_len;
	return len;
}

static void dfs_iolog_add(struct dfs_blkdev *bd, const struct dfs_bio *bio, uint64_t now)
{
	struct dfs_iolog_rec *r;

	if (!bd->iolog_on)
		return;
	if (bd->iolog_len == bd->iolog_cap) {
		size_t cap = bd->iolog_cap ? bd->iolog_cap * 2 : 4096;
		struct dfs_iolog_rec *n = realloc(bd->iolog, cap * sizeof(*n));

		if (!n)
			return;	/* the log is best effort; the IO itself went fine */
		bd->iolog = n;
		bd->iolog_cap = cap;
	}
	r = &bd->iolog[bd->iolog_len++];
	memset(r, 0, sizeof(*r));
	r->offset = bio->offset;
	r->len = bio->dir == DFS_IO_FLUSH ? 0 : dfs_bio_len(bio);
	r->submit_ns = bio->submit_ns;
	r->complete_ns = now;
	r->dir = (uint8_t)bio->dir;
	r->kind = (uint8_t)bio->kind;
	r->error = bio->error;
}

/* Called with bd->lock held. */
static void dfs_bio_complete(struct dfs_blkdev *bd, struct dfs_bio *bio, int res)
{
	uint64_t len = dfs_bio_len(bio);

	if (res < 0) {
		bio->error = res;
	} else if (bio->dir == DFS_IO_FLUSH || (uint64_t)res == len) {
		bio->error = 0;
	} else if (bio->dir == DFS_IO_READ && bio->offset + (uint64_t)res >= bd->size) {
		/* a read that runs past the end of the image sees zeroes */
		uint64_t skip = (uint64_t)res;

		for (int i = 0; i < bio->nr_vecs; i++) {
			struct iovec *v = &bio->vecs[i];

			if (skip >= v->iov_len) {
				skip -= v->iov_len;
				continue;
			}
			memset((char *)v->iov_base + skip, 0, v->iov_len - skip);
			skip = 0;
		}
		bio->error = 0;
	} else {
		bio->error = -EIO;
	}
	dfs_iolog_add(bd, bio, dfs_now_ns());
	bio->done = true;
	if (bio->end_io)
		bio->end_io(bio);
}

/* Called with bd->lock held: hands what is queued to the kernel. */
static int __dfs_blkdev_unplug(struct dfs_blkdev *bd)
{
	int ret;

	if (!bd->queued)
		return 0;
	ret = io_uring_submit(&bd->ring);
	if (ret < 0)
		return ret;
	bd->stats.submits++;
	bd->inflight += (unsigned)ret;
	bd->queued -= (unsigned)ret;
	return 0;
}

static void dfs_bd_lock(struct dfs_blkdev *bd)
{
	pthread_mutex_lock(&bd->lock);
	bd->lock_depth++;
}

static void dfs_bd_unlock(struct dfs_blkdev *bd)
{
	bd->lock_depth--;
	pthread_mutex_unlock(&bd->lock);
}

/*
 * Called with bd->lock held: reaps completions, waiting for one if wait.
 * The wait happens without the lock, so that other threads' IO is
 * submitted while this one sleeps (several writeback threads keep several
 * IOs in flight); only this thread touches the completion queue
 * meanwhile. A thread that finds another already waiting sleeps until
 * that one has reaped and returns: its callers loop on their own
 * condition (their bio done, nothing in flight). Nested in an end_io
 * (the lock held twice), the wait keeps the lock, as it cannot drop it.
 */
static int dfs_blkdev_reap(struct dfs_blkdev *bd, bool wait)
{
	struct io_uring_cqe *cqe;
	int ret;

	if (wait && bd->lock_depth == 1) {
		if (bd->reaping) {
			bd->lock_depth--;
			pthread_cond_wait(&bd->reap_cond, &bd->lock);
			bd->lock_depth++;
			return 0;
		}
		bd->reaping = true;
		dfs_bd_unlock(bd);
		do
			ret = io_uring_wait_cqe(&bd->ring, &cqe);
		while (ret == -EINTR);
		dfs_bd_lock(bd);
		bd->reaping = false;
		pthread_cond_broadcast(&bd->reap_cond);
		if (ret < 0)
			return ret;
		wait = false;	/* one is there: take it and whatever else is */
	}
	for (;;) {
		if (wait)
			ret = io_uring_wait_cqe(&bd->ring, &cqe);
		else
			ret = io_uring_peek_cqe(&bd->ring, &cqe);
		if (ret == -EINTR)
			continue;
		if (ret == -EAGAIN && !wait)
			return 0;
		if (ret < 0)
			return ret;
		struct dfs_bio *bio = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&bd->ring, cqe);
		bd->inflight--;
		dfs_bio_complete(bd, bio, res);
		wait = false;	/* got one; take whatever else is there */
	}
}

int dfs_submit_bio(struct dfs_blkdev *bd, struct dfs_bio *bio)
{
	struct io_uring_sqe *sqe;
	uint64_t len = dfs_bio_len(bio);
	int error;

	assert(bio->dir == DFS_IO_FLUSH || (bio->nr_vecs > 0 && !(bio->offset & 511) && !(len & 511)));
	if (bio->dir == DFS_IO_WRITE && bd->readonly)
		return -EROFS;
	dfs_bd_lock(bd);
	/* keep completions within what the CQ ring holds */
	while (bd->inflight + bd->queued >= 2 * DFS_RING_ENTRIES - 1) {
		error = __dfs_blkdev_unplug(bd);
		if (!error)
			error = dfs_blkdev_reap(bd, true);
		if (error)
			goto out_unlock;
	}
	sqe = io_uring_get_sqe(&bd->ring);
	if (!sqe) {
		error = __dfs_blkdev_unplug(bd);
		if (error)
			goto out_unlock;
		sqe = io_uring_get_sqe(&bd->ring);
		if (!sqe) {
			error = -EBUSY;
			goto out_unlock;
		}
	}
	bio->done = false;
	bio->error = 0;
	bio->submit_ns = dfs_now_ns();
	switch (bio->dir) {
	case DFS_IO_READ:
		if (bio->nr_vecs == 1)
			io_uring_prep_read(sqe, bd->fd, bio->vecs[0].iov_base,
					   (unsigned)bio->vecs[0].iov_len, bio->offset);
		else
			io_uring_prep_readv(sqe, bd->fd, bio->vecs, (unsigned)bio->nr_vecs,
					    bio->offset);
		bd->stats.reads++;
		bd->stats.read_bytes += len;
		break;
	case DFS_IO_WRITE:
		if (bio->nr_vecs == 1)
			io_uring_prep_write(sqe, bd->fd, bio->vecs[0].iov_base,
					    (unsigned)bio->vecs[0].iov_len, bio->offset);
		else
			io_uring_prep_writev(sqe, bd->fd, bio->vecs, (unsigned)bio->nr_vecs,
					     bio->offset);
		bd->stats.writes++;
		bd->stats.write_bytes += len;
		break;
	case DFS_IO_FLUSH:
		io_uring_prep_fsync(sqe, bd->fd, IORING_FSYNC_DATASYNC);
		bd->stats.flushes++;
		break;
	}
	io_uring_sqe_set_data(sqe, bio);
	bd->queued++;
	error = 0;
out_unlock:
	dfs_bd_unlock(bd);
	return error;
}

int dfs_blkdev_unplug(struct dfs_blkdev *bd)
{
	int error;

	dfs_bd_lock(bd);
	error = __dfs_blkdev_unplug(bd);
	dfs_bd_unlock(bd);
	return error;
}

int dfs_blkdev_wait_bio(struct dfs_blkdev *bd, struct dfs_bio *bio)
{
	int error = 0;

	dfs_bd_lock(bd);
	while (!bio->done) {
		error = __dfs_blkdev_unplug(bd);
		if (!error && !bd->inflight)
			error = -EINVAL;	/* waiting for something never submitted */
		if (!error)
			error = dfs_blkdev_reap(bd, true);
		if (error)
			break;
	}
	dfs_bd_unlock(bd);
	return error ? error : bio->error;
}

int dfs_blkdev_drain(struct dfs_blkdev *bd)
{
	int error = 0;

	dfs_bd_lock(bd);
	while (bd->queued || bd->inflight) {
		error = __dfs_blkdev_unplug(bd);
		if (!error && !bd->inflight)
			error = -EINVAL;	/* waiting for something never submitted */
		if (!error)
			error = dfs_blkdev_reap(bd, true);
		if (error)
			break;
	}
	dfs_bd_unlock(bd);
	return error;
}

int dfs_blkdev_flush(struct dfs_blkdev *bd)
{
	struct dfs_bio bio;
	int error;

	error = dfs_blkdev_drain(bd);
	if (error)
		return error;
	if (bd->readonly)
		return 0;
	dfs_bio_init(&bio, DFS_IO_FLUSH, DFS_IOK_DATA, 0);
	error = dfs_submit_bio(bd, &bio);
	if (error)
		return error;
	return dfs_blkdev_wait_bio(bd, &bio);
}

int dfs_blkdev_rw(struct dfs_blkdev *bd, enum dfs_io_dir dir, enum dfs_io_kind kind,
		  uint64_t offset, void *buf, size_t len)
{
	struct dfs_bio bio;
	int error;

	dfs_bio_init(&bio, dir, kind, offset);
	dfs_bio_add_vec(&bio, buf, len);
	error = dfs_submit_bio(bd, &bio);
	if (error)
		return error;
	return dfs_blkdev_wait_bio(bd, &bio);
}

void dfs_blkdev_iolog_enable(struct dfs_blkdev *bd, bool on)
{
	dfs_bd_lock(bd);
	bd->iolog_on = on;
	dfs_bd_unlock(bd);
}

size_t dfs_blkdev_iolog_get(struct dfs_blkdev *bd, struct dfs_iolog_rec **recs)
{
	size_t n;

	dfs_bd_lock(bd);
	n = bd->iolog_len;
	*recs = malloc((n ? n : 1) * sizeof(**recs));
	if (*recs && n)
		memcpy(*recs, bd->iolog, n * sizeof(**recs));
	else if (!*recs)
		n = 0;
	dfs_bd_unlock(bd);
	return n;
}

int dfs_blkdev_iolog_save(struct dfs_blkdev *bd, const char *path)
{
	static const char dirc[] = { 'R', 'W', 'F' };
	struct dfs_iolog_rec *recs;
	size_t n = dfs_blkdev_iolog_get(bd, &recs);
	FILE *f;
	int error = 0;

	if (!recs)
		return -ENOMEM;
	f = fopen(path, "w");
	if (!f) {
		error = -errno;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct dfs_iolog_rec *r = &recs[i];

		fprintf(f, "%" PRIu64 " %" PRIu64 " %c %u %" PRIu64 " %" PRIu64 " %d\n",
			r->submit_ns, r->complete_ns, r->dir < 3 ? dirc[r->dir] : '?', r->kind,
			r->offset, r->len, r->error);
	}
	if (ferror(f))
		error = -EIO;
	if (fclose(f) && !error)
		error = -errno;
out:
	free(recs);
	return error;
}

void dfs_blkdev_get_stats(struct dfs_blkdev *bd, struct dfs_blkdev_stats *st)
{
	dfs_bd_lock(bd);
	*st = bd->stats;
	dfs_bd_unlock(bd);
}
