/* SPDX-License-Identifier: MIT */
/*
 * The block layer: every IO deepfs does, data and metadata, goes through
 * io_uring on a file or block device opened O_DIRECT, and is recorded in the
 * IO log.
 *
 * Contract:
 * - buffers are aligned to 4096 bytes (dfs_bio_alloc_buf); offsets and
 *   lengths to 512;
 * - dfs_submit_bio() queues a bio (like submit_bio with a plug held): it is
 *   handed to the kernel by dfs_blkdev_unplug(), or at once when the
 *   submission queue is full; completions run bio->end_io from whichever
 *   thread reaps them (dfs_blkdev_wait_bio / dfs_blkdev_drain);
 * - a bio with several iovecs is one IO (writev), so a contiguous run of
 *   pages becomes one request;
 * - dfs_blkdev_flush() waits for everything queued and issues a cache flush
 *   (IORING_OP_FSYNC with DATASYNC): after it, completed writes are durable.
 * The device is safe to use from several threads (an internal lock guards the
 * ring). A thread that waits for completions sleeps in the kernel without
 * that lock, so that other threads submit meanwhile and several threads'
 * IO is in flight at once; whichever thread wakes reaps for all.
 */
#ifndef DEEPFS_BLKDEV_H
#define DEEPFS_BLKDEV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define DFS_IO_ALIGN 4096u

enum dfs_io_dir { DFS_IO_READ = 0, DFS_IO_WRITE = 1, DFS_IO_FLUSH = 2 };
/* What an IO is for: the IO log and the seek statistics tell them apart. */
enum dfs_io_kind { DFS_IOK_DATA = 0, DFS_IOK_META = 1, DFS_IOK_LOG = 2, DFS_IOK_SB = 3 };

struct dfs_bio;
typedef void (*dfs_bio_end_io_t)(struct dfs_bio *bio);

#define DFS_BIO_MAX_VECS 64
struct dfs_bio {
	uint64_t offset;		/* byte offset on the device */
	enum dfs_io_dir dir;
	enum dfs_io_kind kind;
	int nr_vecs;
	struct iovec vecs[DFS_BIO_MAX_VECS];
	int error;			/* 0 or negative errno, set before end_io */
	bool done;
	dfs_bio_end_io_t end_io;	/* may be NULL */
	void *private;
	uint64_t submit_ns;		/* set by the block layer */
};

struct dfs_blkdev;

/* Opens an existing file or block device. O_DIRECT is used where the host
 * filesystem allows it (a warning says so when it does not). */
int dfs_blkdev_open(const char *path, bool readonly, struct dfs_blkdev **bdp);
void dfs_blkdev_close(struct dfs_blkdev *bd);
uint64_t dfs_blkdev_size(const struct dfs_blkdev *bd);
bool dfs_blkdev_is_bdev(const struct dfs_blkdev *bd);

void *dfs_bio_alloc_buf(size_t len);	/* 4096-aligned, zeroed; free() it */
void dfs_bio_init(struct dfs_bio *bio, enum dfs_io_dir dir, enum dfs_io_kind kind,
		  uint64_t offset);
void dfs_bio_add_vec(struct dfs_bio *bio, void *buf, size_t len);
uint64_t dfs_bio_len(const struct dfs_bio *bio);

int dfs_submit_bio(struct dfs_blkdev *bd, struct dfs_bio *bio);
int dfs_blkdev_unplug(struct dfs_blkdev *bd);
/* Submits what is queued and reaps until bio is done; returns bio->error. */
int dfs_blkdev_wait_bio(struct dfs_blkdev *bd, struct dfs_bio *bio);
/* Submits and reaps until nothing is in flight. */
int dfs_blkdev_drain(struct dfs_blkdev *bd);
int dfs_blkdev_flush(struct dfs_blkdev *bd);
/* Synchronous helpers built on the above. */
int dfs_blkdev_rw(struct dfs_blkdev *bd, enum dfs_io_dir dir, enum dfs_io_kind kind,
		  uint64_t offset, void *buf, size_t len);

/* ---- IO log: one record per completed IO ---- */
struct dfs_iolog_rec {
	uint64_t offset;
	uint64_t len;
	uint64_t submit_ns;	/* CLOCK_MONOTONIC */
	uint64_t complete_ns;
	uint8_t  dir;		/* enum dfs_io_dir */
	uint8_t  kind;		/* enum dfs_io_kind */
	uint16_t pad;
	int32_t  error;
};
void dfs_blkdev_iolog_enable(struct dfs_blkdev *bd, bool on);
/* Copies out the records kept so far (caller frees *recs). */
size_t dfs_blkdev_iolog_get(struct dfs_blkdev *bd, struct dfs_iolog_rec **recs);
/* Text format, one IO per line: "submit_ns complete_ns R|W|F kind offset len error". */
int dfs_blkdev_iolog_save(struct dfs_blkdev *bd, const char *path);

struct dfs_blkdev_stats {
	uint64_t reads, writes, flushes, read_bytes, write_bytes, submits;
};
void dfs_blkdev_get_stats(struct dfs_blkdev *bd, struct dfs_blkdev_stats *st);

#endif /* DEEPFS_BLKDEV_H */
