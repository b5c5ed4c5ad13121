/* SPDX-License-Identifier: MIT */
/*
 * A hand-made mount for unit tests of the layers below mkfs and dfs_mount:
 * an image file in a mkdtemp() directory under /var/tmp (a real disk, so
 * O_DIRECT works), a block device, a superblock in block 0, a buffer cache
 * and a formatted log. No AG headers, no perag, no inode cache: tests of the
 * upper layers add what they need on top.
 *
 * mp->m_lock is initialised but not taken: the test is the only thread.
 */
#ifndef DEEPFS_TEST_FIXTURE_H
#define DEEPFS_TEST_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

struct dfs_mount;
struct dfs_dsb;

struct fixture_geom {
	uint64_t size;			/* image bytes */
	uint32_t blocksize;		/* 0 = 4096 */
	uint32_t agcount;		/* 0 = 1 */
	uint32_t logblocks;		/* 0 = 128 */
	uint64_t bcache_bytes;		/* 0 = 16 MiB */
};

/* A fresh directory under /var/tmp; free() the result. Fails the test on error. */
char *fixture_tmpdir(void);
/* Removes dir and everything in it. */
void fixture_rmdir(const char *dir);
/* Byte-for-byte copy (a "crash image" when nothing is in flight). */
int fixture_copy_file(const char *src, const char *dst);

/* Creates dir/image.img of geom->size bytes and mounts it as described
 * above; the log is freshly formatted. Fails the test on error. */
struct dfs_mount *fixture_mount_geom(const char *dir, const struct fixture_geom *geom);
struct dfs_mount *fixture_mount_raw(const char *dir, uint64_t size, uint32_t blocksize);

/* Mounts an existing image made by the fixture (its geometry in sb): opens
 * it, sets up the buffer cache, mounts the log (which replays it). Returns
 * NULL and sets *errorp if the log mount fails. */
struct dfs_mount *fixture_mount_image(const char *path, const struct dfs_dsb *sb,
				      uint64_t bcache_bytes, int *errorp);

/* The same, read-only (no replay: the log mount fails if it has records). */
struct dfs_mount *fixture_mount_image_ro(const char *path, const struct dfs_dsb *sb,
					 int *errorp);

/* Clean unmount: checkpoint, log marked clean, everything freed. Returns
 * dfs_log_unmount's result. */
int fixture_unmount(struct dfs_mount *mp);
/* Crash: whatever is not on disk is lost (IO already submitted is drained
 * first, as a copy of the image would see it). */
void fixture_crash(struct dfs_mount *mp);
/* fixture_unmount + fixture_mount_image of the same image. */
struct dfs_mount *fixture_remount(struct dfs_mount *mp);

/* Path of the image behind mp (its m_fsname). */
const char *fixture_image_path(const struct dfs_mount *mp);

/* A reproducible xorshift64* stream for randomized tests: seeded from
 * $RL_TEST_SEED if set, else at random; the seed is printed with `what`
 * so that a failing run can be replayed. Single-threaded use. */
void fixture_seed_rng(const char *what);
uint64_t fixture_rnd(void);

#endif
