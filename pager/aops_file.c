/* SPDX-License-Identifier: MIT */
/*
 * a_ops on plain host files (see aops.h): the shallow reference against
 * which deepfs's deep path is measured. An anonymous region is an unlinked
 * file in be->dir, read and written with pread/pwrite of whole pages; the
 * host's page cache and filesystem do the rest. There are no FILE regions.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pager/aops.h"

struct rl_backing {
	int fd;
	uint64_t npages;	/* the region's size, a bound on indexes */
};

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

static int rl_file_writepage(struct rl_backing *b, uint64_t index, const void *src)
{
	int error = rl_file_check_range(b, index, 1);

	if (error)
		return error;
	return rl_file_pwrite_all(b, src, RL_PAGE_SIZE, (off_t)(index * RL_PAGE_SIZE));
}

static int rl_file_writepages(struct rl_backing *b, uint64_t first, uint64_t n,
			      const void *const *srcs)
{
	uint64_t i;
	int error = rl_file_check_range(b, first, n);

	for (i = 0; i < n && !error; i++)
		error = rl_file_pwrite_all(b, srcs[i], RL_PAGE_SIZE,
					   (off_t)((first + i) * RL_PAGE_SIZE));
	return error;
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
	.discard = rl_file_discard,
	.release = rl_file_release,
};
