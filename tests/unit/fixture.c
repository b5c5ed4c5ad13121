/* SPDX-License-Identifier: MIT */
/* The hand-made test mount (see fixture.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "fs/blkdev.h"
#include "fs/buf.h"
#include "fs/crc.h"
#include "fs/log.h"
#include "fs/mount.h"
#include "fs/msg.h"
#include "fixture.h"

#define FIXTURE_BCACHE_DEFAULT	(16ull << 20)

/* bcache budgets of live mounts, so that a remount keeps the same one */
static struct {
	const struct dfs_mount *mp;
	uint64_t budget;
} fixture_budgets[64];

static void fixture_set_budget(const struct dfs_mount *mp, uint64_t budget)
{
	for (size_t i = 0; i < sizeof(fixture_budgets) / sizeof(fixture_budgets[0]); i++) {
		if (!fixture_budgets[i].mp || fixture_budgets[i].mp == mp) {
			fixture_budgets[i].mp = mp;
			fixture_budgets[i].budget = budget;
			return;
		}
	}
}

static uint64_t fixture_take_budget(const struct dfs_mount *mp)
{
	for (size_t i = 0; i < sizeof(fixture_budgets) / sizeof(fixture_budgets[0]); i++) {
		if (fixture_budgets[i].mp == mp) {
			fixture_budgets[i].mp = NULL;
			return fixture_budgets[i].budget;
		}
	}
	return FIXTURE_BCACHE_DEFAULT;
}

char *fixture_tmpdir(void)
{
	char *dir = strdup("/var/tmp/deepfs-test-XXXXXX");

	assert_non_null(dir);
	if (!mkdtemp(dir))
		fail_msg("mkdtemp: %s", strerror(errno));
	return dir;
}

static int fixture_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

void fixture_rmdir(const char *dir)
{
	nftw(dir, fixture_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int fixture_copy_file(const char *src, const char *dst)
{
	char buf[1 << 16];
	int in, out, error = 0;
	ssize_t n;

	in = open(src, O_RDONLY);
	if (in < 0)
		return -errno;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0) {
		error = -errno;
		close(in);
		return error;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if (write(out, buf, (size_t)n) != n) {
			error = -EIO;
			break;
		}
	}
	if (n < 0)
		error = -errno;
	close(in);
	if (close(out) && !error)
		error = -errno;
	return error;
}

const char *fixture_image_path(const struct dfs_mount *mp)
{
	return mp->m_fsname;
}

static void fixture_free(struct dfs_mount *mp)
{
	dfs_bcache_destroy(mp);
	if (mp->m_bdev)
		dfs_blkdev_close(mp->m_bdev);
	pthread_mutex_destroy(&mp->m_lock);
	free(mp->m_fsname);
	free(mp);
}

static void fixture_geometry(struct dfs_mount *mp, const struct dfs_dsb *sb)
{
	mp->m_sb = *sb;
	mp->m_blocksize = sb->blocksize;
	mp->m_blocklog = sb->blocklog;
	mp->m_agblocks = sb->agblocks;
	mp->m_agcount = sb->agcount;
	mp->m_dblocks = sb->dblocks;
	mp->m_inopblock = sb->inopblock;
	mp->m_inopblog = sb->inopblog;
	mp->m_fdblocks = sb->dblocks - sb->logstart - sb->logblocks;
}

static struct dfs_mount *fixture_mount_image_mode(const char *path, const struct dfs_dsb *sb,
						   uint64_t bcache_bytes, bool readonly,
						   int *errorp)
{
	struct dfs_mount *mp;
	int error;

	if (!bcache_bytes)
		bcache_bytes = FIXTURE_BCACHE_DEFAULT;
	mp = calloc(1, sizeof(*mp));
	assert_non_null(mp);
	mp->m_fsname = strdup(path);
	assert_non_null(mp->m_fsname);
	pthread_mutex_init(&mp->m_lock, NULL);
	fixture_geometry(mp, sb);
	mp->m_readonly = readonly;
	error = dfs_blkdev_open(path, readonly, &mp->m_bdev);
	if (!error)
		error = dfs_bcache_init(mp, bcache_bytes);
	if (!error)
		error = dfs_log_mount(mp);
	if (error) {
		fixture_free(mp);
		if (errorp)
			*errorp = error;
		return NULL;
	}
	fixture_set_budget(mp, bcache_bytes);
	if (errorp)
		*errorp = 0;
	return mp;
}

struct dfs_mount *fixture_mount_image(const char *path, const struct dfs_dsb *sb,
				      uint64_t bcache_bytes, int *errorp)
{
	return fixture_mount_image_mode(path, sb, bcache_bytes, false, errorp);
}

struct dfs_mount *fixture_mount_image_ro(const char *path, const struct dfs_dsb *sb,
					 int *errorp)
{
	return fixture_mount_image_mode(path, sb, 0, true, errorp);
}

struct dfs_mount *fixture_mount_geom(const char *dir, const struct fixture_geom *geom)
{
	uint32_t bs = geom->blocksize ? geom->blocksize : 4096;
	uint32_t agcount = geom->agcount ? geom->agcount : 1;
	char path[PATH_MAX];
	struct dfs_mount *mp, tmp = { 0 };
	struct dfs_dsb *sb;
	struct dfs_blkdev *bd;
	int fd, error;

	snprintf(path, sizeof(path), "%s/image.img", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)geom->size) < 0)
		fail_msg("creating %s: %s", path, strerror(errno));
	close(fd);

	sb = dfs_bio_alloc_buf(bs);
	assert_non_null(sb);
	sb->hdr.magic = DFS_SB_MAGIC;
	if (getrandom(sb->hdr.uuid, sizeof(sb->hdr.uuid), 0) != sizeof(sb->hdr.uuid))
		fail_msg("getrandom: %s", strerror(errno));
	sb->version = DFS_VERSION;
	sb->blocksize = bs;
	sb->blocklog = (uint32_t)__builtin_ctz(bs);
	sb->dblocks = geom->size / bs;
	sb->agcount = agcount;
	sb->agblocks = (uint32_t)((sb->dblocks + agcount - 1) / agcount);
	sb->agblklog = 0;
	while ((1ull << sb->agblklog) < sb->agblocks)
		sb->agblklog++;
	/* as mkfs: the log after the AG headers and the blocks dfs_ag_init_headers
	 * puts on the AGFL (DFS_AG_FIRST_FREE .. + DFS_AGFL_RESERVE) */
	sb->logstart = DFS_AG_FIRST_FREE + DFS_AGFL_RESERVE;
	sb->logblocks = geom->logblocks ? geom->logblocks : 128;
	sb->inodesize = DFS_INODE_SIZE;
	sb->inopblock = bs / DFS_INODE_SIZE;
	sb->inopblog = (uint32_t)__builtin_ctz(sb->inopblock);
	assert_true(sb->logstart + sb->logblocks <= sb->agblocks);
	dfs_cksum_update(sb, bs, offsetof(struct dfs_blkhdr, crc));

	/* superblock and an empty log, as mkfs would leave them */
	error = dfs_blkdev_open(path, false, &bd);
	if (error)
		fail_msg("dfs_blkdev_open %s: %s", path, strerror(-error));
	tmp.m_fsname = path;
	tmp.m_bdev = bd;
	fixture_geometry(&tmp, sb);
	error = dfs_blkdev_rw(bd, DFS_IO_WRITE, DFS_IOK_SB, 0, sb, bs);
	if (!error)
		error = dfs_log_format(&tmp);
	if (error)
		fail_msg("formatting %s: %s", path, strerror(-error));
	dfs_blkdev_close(bd);

	mp = fixture_mount_image(path, sb, geom->bcache_bytes, &error);
	if (!mp)
		fail_msg("mounting %s: %s", path, strerror(-error));
	free(sb);
	return mp;
}

struct dfs_mount *fixture_mount_raw(const char *dir, uint64_t size, uint32_t blocksize)
{
	struct fixture_geom geom = { .size = size, .blocksize = blocksize };

	return fixture_mount_geom(dir, &geom);
}

int fixture_unmount(struct dfs_mount *mp)
{
	int error = 0;

	if (mp->m_readonly)
		dfs_log_abort(mp);
	else
		error = dfs_log_unmount(mp);
	if (error)
		dfs_log_abort(mp);
	fixture_take_budget(mp);
	fixture_free(mp);
	return error;
}

void fixture_crash(struct dfs_mount *mp)
{
	dfs_blkdev_drain(mp->m_bdev);
	dfs_log_abort(mp);
	fixture_take_budget(mp);
	fixture_free(mp);
}

struct dfs_mount *fixture_remount(struct dfs_mount *mp)
{
	struct dfs_dsb sb = mp->m_sb;
	uint64_t budget = fixture_take_budget(mp);
	char *path = strdup(mp->m_fsname);
	struct dfs_mount *nmp;
	int error;

	assert_non_null(path);
	fixture_set_budget(mp, budget);
	error = fixture_unmount(mp);
	if (error)
		fail_msg("unmount of %s: %s", path, strerror(-error));
	nmp = fixture_mount_image(path, &sb, budget, &error);
	if (!nmp)
		fail_msg("remount of %s: %s", path, strerror(-error));
	free(path);
	return nmp;
}

static uint64_t fixture_rng_state;

uint64_t fixture_rnd(void)
{
	/* xorshift64* */
	fixture_rng_state ^= fixture_rng_state >> 12;
	fixture_rng_state ^= fixture_rng_state << 25;
	fixture_rng_state ^= fixture_rng_state >> 27;
	return fixture_rng_state * 0x2545F4914F6CDD1Dull;
}

void fixture_seed_rng(const char *what)
{
	const char *env = getenv("RL_TEST_SEED");
	uint64_t seed;

	if (env)
		seed = strtoull(env, NULL, 0);
	else if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)time(NULL);
	if (seed == 0)
		seed = 1;
	fixture_rng_state = seed;
	print_message("%s: RL_TEST_SEED=%" PRIu64 "\n", what, seed);
}
