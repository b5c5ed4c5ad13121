// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>

#include "bio_batch.h"
#include "mount.h"

int dfs_bio_batch_add(struct dfs_bio_batch *bb, uint64_t index, uint64_t disk_off,
		      void *buf, size_t len)
{
	struct dfs_bio *bio = bb->n ? bb->bios[bb->n - 1] : NULL;

	if (bio && bio->offset + dfs_bio_len(bio) == disk_off &&
	    (!bb->single || bb->last_index == index)) {
		struct iovec *last = &bio->vecs[bio->nr_vecs - 1];

		if ((char *)last->iov_base + last->iov_len == (char *)buf) {
			last->iov_len += len;
			goto added;
		}
		if (bio->nr_vecs < DFS_BIO_MAX_VECS) {
			dfs_bio_add_vec(bio, buf, len);
			goto added;
		}
	}
	if (bb->n == bb->cap) {
		size_t cap = bb->cap ? bb->cap * 2 : 16;
		struct dfs_bio **v = realloc(bb->bios, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		bb->bios = v;
		bb->cap = cap;
	}
	bio = malloc(sizeof(*bio));
	if (!bio)
		return -ENOMEM;
	dfs_bio_init(bio, bb->dir, DFS_IOK_DATA, disk_off);
	dfs_bio_add_vec(bio, buf, len);
	bb->bios[bb->n++] = bio;
added:
	bb->last_index = index;
	return 0;
}

void dfs_bio_batch_free(struct dfs_bio_batch *bb)
{
	for (size_t i = 0; i < bb->n; i++)
		free(bb->bios[i]);
	free(bb->bios);
	bb->bios = NULL;
	bb->n = bb->cap = 0;
}

int dfs_bio_batch_submit(struct dfs_mount *mp, struct dfs_bio_batch *bb, uint64_t *ios,
			 uint64_t *bytes)
{
	size_t i, submitted = 0;
	int error = 0;

	for (i = 0; i < bb->n && !error; i++) {
		error = dfs_submit_bio(mp->m_bdev, bb->bios[i]);
		if (!error) {
			submitted++;
			if (ios)
				++*ios;
			if (bytes)
				*bytes += dfs_bio_len(bb->bios[i]);
		}
	}
	for (i = 0; i < submitted; i++) {
		int e = dfs_blkdev_wait_bio(mp->m_bdev, bb->bios[i]);

		if (e && !error)
			error = e;
	}
	return error;
}

int dfs_bio_batch_run(struct dfs_mount *mp, struct dfs_bio_batch *bb)
{
	int error = dfs_bio_batch_submit(mp, bb, NULL, NULL);

	dfs_bio_batch_free(bb);
	return error;
}
