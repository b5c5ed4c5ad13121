/* SPDX-License-Identifier: MIT */
/*
 * Inode allocation, the inode cache and the unlinked list, on filesystems
 * made by dfs_mkfs and mounted without the unlinked-list recovery
 * (DFS_MOUNT_MKFS), which the tests run themselves; fixture.h gives the
 * temporary directories and image copies ("crashes").
 *
 * The randomized tests keep a model, the set of inode numbers in use, and
 * after every step check the filesystem against it: the inobt records are
 * exactly the model's chunks with exactly its free masks, the AGI and in-core
 * counters agree, dfs_btree_check passes, and numbers outside the model are
 * refused. TEST_SEED=<n> replays a run; the seed is printed first.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/alloc.h"
#include "fs/deepfs.h"
#include "fs/bmap.h"
#include "fs/btree.h"
#include "fs/buf.h"
#include "fs/crc.h"
#include "fs/ialloc.h"
#include "fs/inode.h"
#include "fs/log.h"
#include "fs/mount.h"
#include "fs/msg.h"
#include "fs/pagecache.h"
#include "fs/trans.h"
#include "fixture.h"

/* ---- helpers ----------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static uint64_t seed_init(const char *test)
{
	const char *env = getenv("TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid();

	print_message("%s: seed %" PRIu64 " (TEST_SEED=%" PRIu64 " to replay)\n", test, seed,
		      seed);
	rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
	return seed;
}

/*
 * A filesystem made by dfs_mkfs (so: with its root directory), mounted with
 * DFS_MOUNT_MKFS, which leaves out the unlinked-list recovery: the tests run
 * it themselves, to see the state before it.
 */
static struct dfs_mount *t_mount_image(const char *path)
{
	struct dfs_mount *mp;
	int error = dfs_mount_flags(path, NULL, DFS_MOUNT_MKFS, &mp);

	if (error)
		fail_msg("mounting %s: %s", path, strerror(-error));
	return mp;
}

static struct dfs_mount *t_mkfs(const char *dir, uint64_t size, uint32_t bs, uint32_t agcount)
{
	struct dfs_mkfs_opts opts = { .size = size, .blocksize = bs, .agcount = agcount };
	char path[PATH_MAX];
	int error;

	snprintf(path, sizeof(path), "%s/image.img", dir);
	error = dfs_mkfs(path, &opts);
	if (error)
		fail_msg("mkfs %s: %s", path, strerror(-error));
	return t_mount_image(path);
}

static void t_unmount(struct dfs_mount *mp)
{
	assert_int_equal(dfs_unmount(mp), 0);
}

static struct dfs_mount *t_remount(struct dfs_mount *mp)
{
	char *path = strdup(fixture_image_path(mp));
	struct dfs_mount *nmp;

	assert_non_null(path);
	t_unmount(mp);
	nmp = t_mount_image(path);
	free(path);
	return nmp;
}

static struct dfs_trans *t_trans(struct dfs_mount *mp, uint32_t blkres)
{
	struct dfs_trans *tp;

	assert_int_equal(dfs_trans_alloc(mp, blkres, &tp), 0);
	return tp;
}

/* ---- the model ------------------------------------------------------------- */

struct model {
	uint64_t *inos;		/* inode numbers in use, unordered */
	size_t n, cap;
};

static bool model_has(const struct model *m, uint64_t ino)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->inos[i] == ino)
			return true;
	return false;
}

static void model_add(struct model *m, uint64_t ino)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 256;
		m->inos = realloc(m->inos, m->cap * sizeof(*m->inos));
		assert_non_null(m->inos);
	}
	m->inos[m->n++] = ino;
}

static void model_del_at(struct model *m, size_t i)
{
	m->inos[i] = m->inos[--m->n];
}

/* What mkfs allocated: the root directory. */
static struct model model_init(const struct dfs_mount *mp)
{
	struct model m = { 0 };

	model_add(&m, mp->m_sb.rootino);
	return m;
}

/* Chunk of an inode, as a global key: AG and AG-relative first inode. */
static uint64_t chunk_key(const struct dfs_mount *mp, uint64_t ino)
{
	return ((uint64_t)dfs_ino_to_agno(mp, ino) << 32) |
	       (dfs_ino_to_agino(mp, ino) & ~(DFS_INODES_PER_CHUNK - 1));
}

struct inobt_walk {
	struct dfs_inobt_rec *recs;
	size_t n, cap;
};

static int collect_rec(struct dfs_btree_cur *cur, const union dfs_btree_rec *rec, void *priv)
{
	struct inobt_walk *w = priv;

	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 64;
		w->recs = realloc(w->recs, w->cap * sizeof(*w->recs));
		assert_non_null(w->recs);
	}
	w->recs[w->n++] = rec->inobt;
	return 0;
}

/*
 * The whole allocation state against the model: inobt records of every AG
 * are exactly the chunks holding model inodes, their masks exactly the model,
 * the AGI/perag/mount counters their sums; each tree passes dfs_btree_check.
 */
static void check_against_model(struct dfs_mount *mp, const struct model *m)
{
	uint64_t icount = 0, ifree = 0, used_seen = 0;

	for (uint32_t agno = 0; agno < mp->m_agcount; agno++) {
		struct inobt_walk w = { 0 };
		struct dfs_btree_cur cur;
		struct dfs_buf *agbp;
		struct dfs_agi *agi;
		uint64_t count = 0, freecount = 0;

		assert_int_equal(dfs_read_agi(mp, NULL, agno, &agbp), 0);
		agi = agbp->b_addr;
		dfs_inobt_init_cursor(&cur, NULL, agbp, agno);
		assert_int_equal(dfs_btree_check(&cur), 0);
		dfs_btree_del_cursor(&cur, 0);
		dfs_inobt_init_cursor(&cur, NULL, agbp, agno);
		assert_int_equal(dfs_btree_query_all(&cur, collect_rec, &w), 0);
		dfs_btree_del_cursor(&cur, 0);

		for (size_t r = 0; r < w.n; r++) {
			const struct dfs_inobt_rec *rec = &w.recs[r];
			uint64_t want_used = 0;

			assert_int_equal(rec->startino % DFS_INODES_PER_CHUNK, 0);
			if (r)
				assert_true(w.recs[r - 1].startino < rec->startino);
			for (size_t i = 0; i < m->n; i++) {
				uint64_t ino = m->inos[i];

				if (dfs_ino_to_agno(mp, ino) == agno &&
				    dfs_ino_to_agino(mp, ino) - rec->startino < DFS_INODES_PER_CHUNK)
					want_used |= 1ull << (dfs_ino_to_agino(mp, ino) - rec->startino);
			}
			if (~rec->free != want_used)
				fail_msg("AG %u chunk %u: inobt says used 0x%016" PRIx64
					 ", model 0x%016" PRIx64, agno, rec->startino, ~rec->free,
					 want_used);
			/* fully free chunks are given back */
			assert_true(want_used != 0);
			assert_int_equal(rec->freecount, __builtin_popcountll(rec->free));
			used_seen += (uint64_t)__builtin_popcountll(want_used);
			count += DFS_INODES_PER_CHUNK;
			freecount += rec->freecount;
		}
		assert_int_equal(agi->count, count);
		assert_int_equal(agi->freecount, freecount);
		assert_int_equal(mp->m_perag[agno].pagi_count, count);
		assert_int_equal(mp->m_perag[agno].pagi_freecount, freecount);
		icount += count;
		ifree += freecount;
		free(w.recs);
		dfs_buf_relse(agbp);
	}
	/* every model inode was in some record */
	assert_int_equal(used_seen, m->n);
	assert_int_equal(mp->m_icount, icount);
	assert_int_equal(mp->m_ifree, ifree);
}

/* What dfs_imap_check must say about any number, by the model. */
static int model_imap(const struct dfs_mount *mp, const struct model *m, uint64_t ino)
{
	uint64_t fsbno = ino >> mp->m_inopblog;

	if (ino == DFS_NULLINO || fsbno >= mp->m_dblocks)
		return -EINVAL;
	if (model_has(m, ino))
		return 1;
	for (size_t i = 0; i < m->n; i++)
		if (chunk_key(mp, m->inos[i]) == chunk_key(mp, ino))
			return 0;
	return -EINVAL;
}

static uint64_t random_ino_guess(const struct dfs_mount *mp, const struct model *m)
{
	switch (rnd_below(4)) {
	case 0:		/* anywhere, including far outside */
		return rnd();
	case 1:		/* inside the filesystem */
		return rnd_below(mp->m_dblocks << mp->m_inopblog);
	default:	/* near an inode in use */
		if (!m->n)
			return rnd_below(mp->m_dblocks << mp->m_inopblog);
		return m->inos[rnd_below(m->n)] + rnd_below(200) - 100;
	}
}

/* ---- tests ----------------------------------------------------------------- */

struct geo {
	uint64_t size;
	uint32_t bs, agcount;
};

static void run_ialloc_random(const struct geo *g, int steps)
{
	char *dir = fixture_tmpdir();
	struct dfs_mount *mp = t_mkfs(dir, g->size, g->bs, g->agcount);
	struct model m = model_init(mp);
	uint64_t seed = seed_init("ialloc_random");
	int step;

	dfs_msg_set_quiet(1);
	for (step = 0; step < steps; step++) {
		/* phases: mostly allocate, then mostly free, then mixed */
		int allocp = step < steps / 3 ? 80 : step < 2 * steps / 3 ? 25 : 55;
		struct dfs_trans *tp;
		uint64_t ino;

		if (!m.n || (int)rnd_below(100) < allocp) {
			uint64_t parent = m.n && rnd_below(8) ? m.inos[rnd_below(m.n)] : DFS_NULLINO;
			uint32_t mode = rnd_below(6) ? S_IFREG | 0644 : S_IFDIR | 0755;
			int error;

			tp = t_trans(mp, dfs_ialloc_space_res(mp));
			error = dfs_dialloc(tp, parent, mode, &ino);
			if (error)
				fail_msg("seed %" PRIu64 " step %d: dfs_dialloc: %s", seed, step,
					 strerror(-error));
			assert_int_equal(dfs_trans_commit(tp, false), 0);
			if (model_has(&m, ino))
				fail_msg("seed %" PRIu64 " step %d: inode %" PRIu64
					 " handed out twice", seed, step, ino);
			/* a file goes to its parent's AG while that has room */
			if (parent != DFS_NULLINO && !S_ISDIR(mode) &&
			    mp->m_perag[dfs_ino_to_agno(mp, parent)].pagf_freeblks > 1024)
				assert_int_equal(dfs_ino_to_agno(mp, ino), dfs_ino_to_agno(mp, parent));
			model_add(&m, ino);
		} else {
			size_t i = rnd_below(m.n);

			if (m.inos[i] == mp->m_sb.rootino)
				continue;
			tp = t_trans(mp, 0);
			assert_int_equal(dfs_difree(tp, m.inos[i]), 0);
			assert_int_equal(dfs_trans_commit(tp, false), 0);
			model_del_at(&m, i);
		}

		/* numbers in use, free, and garbage */
		for (int k = 0; k < 4; k++) {
			uint64_t guess = k == 0 && m.n ? m.inos[rnd_below(m.n)]
						       : random_ino_guess(mp, &m);
			int got = dfs_imap_check(mp, NULL, guess);

			if (got != model_imap(mp, &m, guess))
				fail_msg("seed %" PRIu64 " step %d: imap_check(%" PRIu64
					 ") = %d, model %d", seed, step, guess, got,
					 model_imap(mp, &m, guess));
		}
		if (step % 64 == 0 || step == steps - 1)
			check_against_model(mp, &m);
		if (step % 1000 == 999) {
			mp = t_remount(mp);
			check_against_model(mp, &m);
		}
	}
	/* freeing everything but the root gives every other chunk back */
	while (m.n > 1) {
		struct dfs_trans *tp = t_trans(mp, 0);
		size_t i = m.inos[m.n - 1] == mp->m_sb.rootino ? m.n - 2 : m.n - 1;

		assert_int_equal(dfs_difree(tp, m.inos[i]), 0);
		assert_int_equal(dfs_trans_commit(tp, false), 0);
		model_del_at(&m, i);
	}
	check_against_model(mp, &m);
	assert_int_equal(mp->m_icount, DFS_INODES_PER_CHUNK);
	dfs_msg_set_quiet(0);
	t_unmount(mp);
	free(m.inos);
	fixture_rmdir(dir);
	free(dir);
}

static void test_ialloc_random_4k(void **state)
{
	const struct geo g = { .size = 64ull << 20, .bs = 4096, .agcount = 4 };

	run_ialloc_random(&g, 4000);
}

/* 1 KiB blocks: 32-block chunks, alignment matters more. */
static void test_ialloc_random_1k(void **state)
{
	const struct geo g = { .size = 24ull << 20, .bs = 1024, .agcount = 3 };

	run_ialloc_random(&g, 3000);
}

static uint32_t agi_level(struct dfs_mount *mp, uint32_t agno)
{
	struct dfs_buf *bp;
	uint32_t level;

	assert_int_equal(dfs_read_agi(mp, NULL, agno, &bp), 0);
	level = ((struct dfs_agi *)bp->b_addr)->level;
	dfs_buf_relse(bp);
	return level;
}

/*
 * Enough chunks in one AG for a multi-level inobt (1 KiB blocks: 59 records
 * a leaf), then everything freed in random order: record deletes join
 * blocks and shrink the root back to a leaf.
 */
static void test_inobt_multilevel(void **state)
{
	/* a transaction that frees a chunk logs a cancel entry for each of
	 * its blocks: free few inodes per transaction */
	enum { N = 9000, BATCH = 32, FREE_BATCH = 2 };
	char *dir = fixture_tmpdir();
	struct dfs_mount *mp = t_mkfs(dir, 24ull << 20, 1024, 1);
	struct model m = model_init(mp);
	uint64_t seed = seed_init("inobt_multilevel");
	int batch = 0;

	while (m.n < N) {
		struct dfs_trans *tp = t_trans(mp, BATCH * dfs_ialloc_space_res(mp));

		for (int i = 0; i < BATCH; i++) {
			uint64_t ino;
			uint64_t parent = m.n ? m.inos[rnd_below(m.n)] : DFS_NULLINO;

			assert_int_equal(dfs_dialloc(tp, parent, S_IFREG, &ino), 0);
			model_add(&m, ino);
		}
		assert_int_equal(dfs_trans_commit(tp, false), 0);
		if (++batch % 40 == 0)
			check_against_model(mp, &m);
	}
	check_against_model(mp, &m);
	if (agi_level(mp, 0) < 2)
		fail_msg("seed %" PRIu64 ": inobt of %zu inodes still has one level", seed, m.n);
	mp = t_remount(mp);
	check_against_model(mp, &m);

	while (m.n > 1) {
		struct dfs_trans *tp = t_trans(mp, 0);

		for (int i = 0; i < FREE_BATCH && m.n > 1; i++) {
			size_t k = rnd_below(m.n);

			if (m.inos[k] == mp->m_sb.rootino)
				continue;
			assert_int_equal(dfs_difree(tp, m.inos[k]), 0);
			model_del_at(&m, k);
		}
		assert_int_equal(dfs_trans_commit(tp, false), 0);
		if (++batch % 40 == 0)
			check_against_model(mp, &m);
	}
	check_against_model(mp, &m);
	assert_int_equal(agi_level(mp, 0), 1);
	mp = t_remount(mp);
	check_against_model(mp, &m);
	t_unmount(mp);
	free(m.inos);
	fixture_rmdir(dir);
	free(dir);
}

/* A full AG sends files elsewhere; a full filesystem gives ENOSPC, and
 * everything still adds up afterwards. */
static void test_ialloc_enospc(void **state)
{
	char *dir = fixture_tmpdir();
	struct dfs_mount *mp = t_mkfs(dir, 8ull << 20, 4096, 2);
	struct model m = model_init(mp);
	int error = 0;

	seed_init("ialloc_enospc");
	dfs_msg_set_quiet(1);
	while (!error) {
		struct dfs_trans *tp;
		uint64_t ino;

		error = dfs_trans_alloc(mp, dfs_ialloc_space_res(mp), &tp);
		if (error)
			break;
		error = dfs_dialloc(tp, m.n ? m.inos[0] : DFS_NULLINO, S_IFREG, &ino);
		if (error) {
			dfs_trans_cancel(tp);
			break;
		}
		assert_int_equal(dfs_trans_commit(tp, false), 0);
		assert_false(model_has(&m, ino));
		model_add(&m, ino);
	}
	assert_int_equal(error, -ENOSPC);
	assert_true(m.n > 1000);
	/* both AGs were used */
	assert_true(mp->m_perag[0].pagi_count > 0 && mp->m_perag[1].pagi_count > 0);
	check_against_model(mp, &m);
	mp = t_remount(mp);
	check_against_model(mp, &m);
	dfs_msg_set_quiet(0);
	t_unmount(mp);
	free(m.inos);
	fixture_rmdir(dir);
	free(dir);
}

static struct dfs_inode *t_create(struct dfs_mount *mp, struct dfs_inode *parent, uint32_t mode,
				  uint32_t nlink)
{
	struct dfs_trans *tp = t_trans(mp, dfs_ialloc_space_res(mp));
	struct dfs_inode *ip;
	int error;

	error = dfs_icreate(tp, parent, mode, nlink, 0, 1000, 100, &ip);
	if (error)
		fail_msg("dfs_icreate: %s", strerror(-error));
	assert_int_equal(dfs_trans_commit(tp, false), 0);
	return ip;
}

/* Create, change, log, evict, read back: the core survives, garbage and
 * free numbers are refused cleanly. */
static void test_icreate_iget(void **state)
{
	char *dir = fixture_tmpdir();
	struct dfs_mount *mp = t_mkfs(dir, 32ull << 20, 4096, 2);
	struct dfs_inode *root, *ip, *ip2;
	struct dfs_trans *tp;
	struct timespec mtime = { .tv_sec = 1234567890, .tv_nsec = 987654321 };
	uint64_t rootino, inos[40];
	uint32_t gens[40];
	int i;

	seed_init("icreate_iget");
	root = t_create(mp, NULL, S_IFDIR | 0755, 2);
	rootino = root->i_ino;
	assert_true(dfs_isdir(root));
	assert_int_equal(root->i_nlink, 2);
	assert_int_equal(root->i_uid, 1000);
	assert_int_equal(root->i_gid, 100);
	assert_int_equal(root->i_count, 1);
	for (i = 0; i < 40; i++) {
		ip = t_create(mp, root, (i % 3 ? S_IFREG : S_IFCHR) | 0600, 1);
		assert_int_equal(dfs_ino_to_agno(mp, ip->i_ino), dfs_ino_to_agno(mp, rootino));
		inos[i] = ip->i_ino;
		gens[i] = ip->i_gen;
		tp = t_trans(mp, 0);
		ip->i_uid = (uint32_t)i;
		ip->i_mtime = mtime;
		ip->i_flags = 7;
		if (i % 3 == 0)
			ip->i_rdev = 0x0801;
		dfs_trans_ichgtime(tp, ip, DFS_ICHG_CHG);
		assert_int_equal(dfs_trans_log_inode(tp, ip), 0);
		assert_int_equal(dfs_trans_commit(tp, false), 0);
		/* a cache hit is the same inode */
		assert_int_equal(dfs_iget(mp, NULL, inos[i], &ip2), 0);
		assert_ptr_equal(ip, ip2);
		assert_int_equal(ip->i_count, 2);
		dfs_irele(ip2);
		dfs_irele(ip);
	}
	dfs_irele(root);

	mp = t_remount(mp);
	assert_int_equal(dfs_iget(mp, NULL, rootino, &root), 0);
	assert_true(dfs_isdir(root));
	assert_int_equal(root->i_nlink, 2);
	for (i = 0; i < 40; i++) {
		assert_int_equal(dfs_iget(mp, NULL, inos[i], &ip), 0);
		assert_int_equal(ip->i_mode, (i % 3 ? S_IFREG : S_IFCHR) | 0600);
		assert_int_equal(ip->i_uid, (uint32_t)i);
		assert_int_equal(ip->i_gid, 100);
		assert_int_equal(ip->i_nlink, 1);
		assert_int_equal(ip->i_flags, 7);
		assert_int_equal(ip->i_rdev, i % 3 == 0 ? 0x0801 : 0);
		assert_int_equal(ip->i_gen, gens[i]);
		assert_int_equal(ip->i_mtime.tv_sec, mtime.tv_sec);
		assert_int_equal(ip->i_mtime.tv_nsec, mtime.tv_nsec);
		assert_true(ip->i_ctime.tv_sec >= ip->i_crtime.tv_sec);
		assert_int_equal(ip->i_size, 0);
		assert_int_equal(ip->i_df.if_format, DFS_DINODE_FMT_EXTENTS);
		assert_int_equal(ip->i_next_unlinked, DFS_NULLINO);
		dfs_irele(ip);
	}

	/* garbage numbers: -EINVAL, never a crash; free ones: -ENOENT */
	dfs_msg_set_quiet(1);
	{
		const uint64_t bad[] = {
			0, 1, UINT64_MAX, mp->m_dblocks << mp->m_inopblog,
			(mp->m_dblocks << mp->m_inopblog) + 5,
			dfs_make_ino(mp, DFS_AGI_AGBNO, 0),		/* AG header */
			dfs_make_ino(mp, dfs_agb_to_fsb(mp, 1, 2), 1),	/* AG 1 header */
			dfs_make_ino(mp, mp->m_dblocks - 1, 3),		/* free space */
			dfs_make_ino(mp, mp->m_sb.logstart + 3, 0),	/* the log */
		};

		for (i = 0; i < (int)(sizeof(bad) / sizeof(bad[0])); i++) {
			assert_int_equal(dfs_iget(mp, NULL, bad[i], &ip), -EINVAL);
			assert_int_equal(dfs_imap_check(mp, NULL, bad[i]), -EINVAL);
		}
	}
	/* the last inode of the root's chunk is still free */
	assert_int_equal(dfs_iget(mp, NULL, (rootino | (DFS_INODES_PER_CHUNK - 1)), &ip), -ENOENT);

	/* a damaged dinode on disk is reported, not used */
	{
		char *path = strdup(fixture_image_path(mp));
		uint64_t off = dfs_ino_to_fsb(mp, inos[20]) * mp->m_blocksize +
			       (uint64_t)dfs_ino_to_offset(mp, inos[20]) * DFS_INODE_SIZE + 40;
		uint32_t junk = 0xdeadbeef;
		int fd;

		dfs_irele(root);
		t_unmount(mp);
		fd = open(path, O_RDWR);
		assert_true(fd >= 0);
		assert_int_equal(pwrite(fd, &junk, sizeof(junk), (off_t)off), sizeof(junk));
		close(fd);
		mp = t_mount_image(path);
		free(path);
		assert_int_equal(dfs_iget(mp, NULL, inos[20], &ip), -EFSCORRUPTED);
		/* the root's block (the chunk's first) is not affected */
		assert_int_equal(dfs_iget(mp, NULL, rootino, &root), 0);
		dfs_irele(root);
	}
	dfs_msg_set_quiet(0);
	t_unmount(mp);
	fixture_rmdir(dir);
	free(dir);
}

/* The AGI unlinked list as it is on disk. */
static size_t read_unlinked(struct dfs_mount *mp, uint32_t agno, uint64_t *out, size_t max)
{
	struct dfs_buf *agbp;
	uint64_t ino;
	size_t n = 0;

	assert_int_equal(dfs_read_agi(mp, NULL, agno, &agbp), 0);
	ino = ((struct dfs_agi *)agbp->b_addr)->unlinked;
	dfs_buf_relse(agbp);
	while (ino != DFS_NULLINO) {
		struct dfs_buf *bp;
		const struct dfs_dinode *dip;

		assert_true(n < max);
		out[n++] = ino;
		assert_int_equal(dfs_buf_read(mp, dfs_ino_to_fsb(mp, ino), &dfs_inode_buf_ops, &bp),
				 0);
		dip = (const struct dfs_dinode *)((char *)bp->b_addr +
						  dfs_ino_to_offset(mp, ino) * DFS_INODE_SIZE);
		assert_int_equal(dip->di_nlink, 0);
		assert_int_not_equal(dip->di_mode, 0);
		ino = dip->di_next_unlinked;
		dfs_buf_relse(bp);
	}
	return n;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The on-disk unlinked lists hold exactly the open unlinked inodes. */
static void check_unlinked(struct dfs_mount *mp, struct dfs_inode **ips, const bool *unlinked,
			   size_t n)
{
	uint64_t want[512], got[512];
	size_t nw = 0, ng = 0;

	for (size_t i = 0; i < n; i++)
		if (ips[i] && unlinked[i])
			want[nw++] = ips[i]->i_ino;
	for (uint32_t agno = 0; agno < mp->m_agcount; agno++)
		ng += read_unlinked(mp, agno, got + ng, 512 - ng);
	qsort(want, nw, sizeof(*want), cmp_u64);
	qsort(got, ng, sizeof(*got), cmp_u64);
	assert_int_equal(ng, nw);
	for (size_t i = 0; i < nw; i++)
		assert_int_equal(got[i], want[i]);
}

/*
 * Randomized unlink/release: droplink pushes onto the list, the last
 * release frees the inode and takes it off from anywhere in the list,
 * bumplink of an unlinked inode takes it off again.
 */
static void test_unlinked_random(void **state)
{
	enum { N = 300 };
	char *dir = fixture_tmpdir();
	struct dfs_mount *mp = t_mkfs(dir, 32ull << 20, 4096, 2);
	struct dfs_inode *ips[N] = { 0 };
	bool unlinked[N] = { 0 };
	struct model m = model_init(mp);
	uint64_t seed = seed_init("unlinked_random");
	struct dfs_inode *root = t_create(mp, NULL, S_IFDIR | 0755, 2);

	model_add(&m, root->i_ino);
	for (int step = 0; step < 3000; step++) {
		size_t i = rnd_below(N);
		struct dfs_trans *tp;

		if (!ips[i]) {
			/* some are born unlinked (O_TMPFILE) */
			uint32_t nlink = rnd_below(6) ? 1 : 0;

			ips[i] = t_create(mp, rnd_below(2) ? root : NULL,
					  rnd_below(4) ? S_IFREG | 0644 : S_IFDIR | 0755, nlink);
			model_add(&m, ips[i]->i_ino);
			unlinked[i] = nlink == 0;
		} else if (!unlinked[i]) {
			tp = t_trans(mp, 0);
			assert_int_equal(dfs_droplink(tp, ips[i]), 0);
			assert_int_equal(dfs_trans_commit(tp, false), 0);
			assert_int_equal(ips[i]->i_nlink, 0);
			unlinked[i] = true;
		} else if (rnd_below(5) == 0) {
			/* linked back in (O_TMPFILE + linkat) */
			tp = t_trans(mp, 0);
			assert_int_equal(dfs_bumplink(tp, ips[i]), 0);
			assert_int_equal(dfs_trans_commit(tp, false), 0);
			assert_int_equal(ips[i]->i_nlink, 1);
			unlinked[i] = false;
		} else {
			uint64_t ino = ips[i]->i_ino;

			dfs_irele(ips[i]);
			ips[i] = NULL;
			for (size_t k = 0; k < m.n; k++)
				if (m.inos[k] == ino)
					model_del_at(&m, k);
			if (dfs_imap_check(mp, NULL, ino) > 0)
				fail_msg("seed %" PRIu64 " step %d: inode %" PRIu64
					 " still allocated after its last release", seed, step, ino);
		}
		if (step % 50 == 0) {
			check_unlinked(mp, ips, unlinked, N);
			check_against_model(mp, &m);
		}
	}
	check_unlinked(mp, ips, unlinked, N);
	check_against_model(mp, &m);
	for (size_t i = 0; i < N; i++)
		if (ips[i])
			dfs_irele(ips[i]);
	dfs_irele(root);
	t_unmount(mp);
	free(m.inos);
	fixture_rmdir(dir);
	free(dir);
}

/*
 * Crash with unlinked inodes still open: a copy of the image taken after
 * the log force is mounted, log recovery runs, then dfs_iunlink_recover frees
 * them; the linked ones survive.
 */
static void test_unlinked_recovery(void **state)
{
	enum { N = 150 };
	char *dir = fixture_tmpdir();
	struct dfs_mount *mp = t_mkfs(dir, 32ull << 20, 4096, 2);
	struct dfs_inode *ips[N];
	bool unlinked[N] = { 0 };
	uint64_t inos[N];
	struct model m = model_init(mp);
	char crash[PATH_MAX];

	seed_init("unlinked_recovery");
	for (int i = 0; i < N; i++) {
		ips[i] = t_create(mp, NULL, i % 5 ? S_IFREG | 0644 : S_IFDIR | 0700, 1);
		inos[i] = ips[i]->i_ino;
	}
	for (int i = 0; i < N; i++) {
		if (rnd_below(3)) {
			struct dfs_trans *tp = t_trans(mp, 0);

			assert_int_equal(dfs_droplink(tp, ips[i]), 0);
			assert_int_equal(dfs_trans_commit(tp, false), 0);
			unlinked[i] = true;
		} else {
			model_add(&m, inos[i]);
		}
	}
	check_unlinked(mp, ips, unlinked, N);
	assert_int_equal(dfs_log_force(mp), 0);
	snprintf(crash, sizeof(crash), "%s/crash.img", dir);
	assert_int_equal(fixture_copy_file(fixture_image_path(mp), crash), 0);

	/* the original goes on: releasing frees the unlinked ones */
	for (int i = 0; i < N; i++)
		dfs_irele(ips[i]);
	check_against_model(mp, &m);
	t_unmount(mp);

	mp = t_mount_image(crash);
	assert_int_equal(dfs_iunlink_recover(mp), 0);
	for (uint32_t agno = 0; agno < mp->m_agcount; agno++) {
		uint64_t l[N];

		assert_int_equal(read_unlinked(mp, agno, l, N), 0);
	}
	check_against_model(mp, &m);
	for (int i = 0; i < N; i++) {
		struct dfs_inode *ip;
		int error = dfs_iget(mp, NULL, inos[i], &ip);

		if (unlinked[i]) {
			assert_true(error == -ENOENT || error == -EINVAL);
		} else {
			assert_int_equal(error, 0);
			assert_int_equal(ip->i_nlink, 1);
			dfs_irele(ip);
		}
	}
	/* and the recovered filesystem stays consistent across a remount */
	mp = t_remount(mp);
	check_against_model(mp, &m);
	t_unmount(mp);
	fixture_rmdir(dir);
	free(m.inos);
	free(dir);
}

/* Unmount with lookup references on an unlinked inode: it stays on the list
 * and the next mount's recovery frees it. */
static void test_unlinked_at_unmount(void **state)
{
	char *dir = fixture_tmpdir();
	struct dfs_mount *mp = t_mkfs(dir, 16ull << 20, 4096, 1);
	struct dfs_inode *keep = t_create(mp, NULL, S_IFREG | 0644, 1);
	struct dfs_inode *ip = t_create(mp, keep, S_IFREG | 0644, 1);
	struct dfs_trans *tp;
	uint64_t ino = ip->i_ino, l[4];

	seed_init("unlinked_at_unmount");
	ip->i_nlookup = 3;		/* as FUSE lookups would */
	tp = t_trans(mp, 0);
	assert_int_equal(dfs_droplink(tp, ip), 0);
	assert_int_equal(dfs_trans_commit(tp, false), 0);
	dfs_irele(ip);			/* still looked up: stays */
	assert_int_equal(dfs_imap_check(mp, NULL, ino), 1);
	dfs_irele(keep);
	mp = t_remount(mp);
	assert_int_equal(read_unlinked(mp, 0, l, 4), 1);
	assert_int_equal(l[0], ino);
	assert_int_equal(dfs_iunlink_recover(mp), 0);
	assert_int_equal(read_unlinked(mp, 0, l, 4), 0);
	assert_int_equal(dfs_imap_check(mp, NULL, ino), 0);
	/* FUSE forget path: the last forget frees an unlinked inode */
	ip = t_create(mp, NULL, S_IFREG | 0644, 1);
	ino = ip->i_ino;
	ip->i_nlookup = 2;
	tp = t_trans(mp, 0);
	assert_int_equal(dfs_droplink(tp, ip), 0);
	assert_int_equal(dfs_trans_commit(tp, false), 0);
	dfs_irele(ip);
	assert_int_equal(dfs_iget(mp, NULL, ino, &ip), 0);
	dfs_iforget(ip, 1);
	assert_int_equal(dfs_imap_check(mp, NULL, ino), 1);
	dfs_iforget(ip, 1);
	dfs_irele(ip);
	assert_int_equal(dfs_imap_check(mp, NULL, ino), 0);
	t_unmount(mp);
	fixture_rmdir(dir);
	free(dir);
}

/* Taking an inode off the middle of a list whose predecessor is not cached
 * (after a remount, before recovery) changes the predecessor on disk. */
static void test_unlinked_uncached_pred(void **state)
{
	enum { N = 6 };
	char *dir = fixture_tmpdir();
	struct dfs_mount *mp = t_mkfs(dir, 16ull << 20, 4096, 1);
	struct dfs_inode *ips[N];
	uint64_t inos[N], l[N];
	struct dfs_trans *tp;
	struct dfs_inode *ip;

	seed_init("unlinked_uncached_pred");
	for (int i = 0; i < N; i++) {
		ips[i] = t_create(mp, NULL, S_IFREG | 0644, 1);
		inos[i] = ips[i]->i_ino;
		ips[i]->i_nlookup = 1;
		tp = t_trans(mp, 0);
		assert_int_equal(dfs_droplink(tp, ips[i]), 0);
		assert_int_equal(dfs_trans_commit(tp, false), 0);
		dfs_irele(ips[i]);
	}
	/* pushed at the head: newest first */
	assert_int_equal(read_unlinked(mp, 0, l, N), N);
	for (int i = 0; i < N; i++)
		assert_int_equal(l[i], inos[N - 1 - i]);
	mp = t_remount(mp);

	/* link inos[2] back: its predecessor inos[3] is not in core */
	assert_int_equal(dfs_iget(mp, NULL, inos[2], &ip), 0);
	tp = t_trans(mp, 0);
	assert_int_equal(dfs_bumplink(tp, ip), 0);
	assert_int_equal(dfs_trans_commit(tp, false), 0);
	assert_int_equal(ip->i_next_unlinked, DFS_NULLINO);
	dfs_irele(ip);
	assert_int_equal(read_unlinked(mp, 0, l, N), N - 1);
	assert_int_equal(l[0], inos[5]);
	assert_int_equal(l[1], inos[4]);
	assert_int_equal(l[2], inos[3]);
	assert_int_equal(l[3], inos[1]);
	assert_int_equal(l[4], inos[0]);
	/* the tail too */
	assert_int_equal(dfs_iget(mp, NULL, inos[0], &ip), 0);
	tp = t_trans(mp, 0);
	assert_int_equal(dfs_bumplink(tp, ip), 0);
	assert_int_equal(dfs_trans_commit(tp, false), 0);
	dfs_irele(ip);
	assert_int_equal(read_unlinked(mp, 0, l, N), N - 2);
	assert_int_equal(l[3], inos[1]);

	mp = t_remount(mp);
	assert_int_equal(dfs_iunlink_recover(mp), 0);
	assert_int_equal(read_unlinked(mp, 0, l, N), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(dfs_imap_check(mp, NULL, inos[i]), i == 0 || i == 2);
	t_unmount(mp);
	fixture_rmdir(dir);
	free(dir);
}

static void rw_image(const char *path, uint64_t off, void *buf, size_t len, bool write)
{
	int fd = open(path, O_RDWR);
	ssize_t n;

	assert_true(fd >= 0);
	n = write ? pwrite(fd, buf, len, (off_t)off) : pread(fd, buf, len, (off_t)off);
	assert_int_equal(n, (ssize_t)len);
	close(fd);
}

/*
 * Dinodes with random damage and a valid CRC (so that the checks past the
 * CRC get their turn): dfs_iget either refuses them with -EFSCORRUPTED or
 * returns an inode; it never crashes or reads past anything (ASan).
 */
static void test_dinode_fuzz(void **state)
{
	enum { NINO = 12, ROUNDS = 150 };
	char *dir = fixture_tmpdir();
	struct dfs_mount *mp = t_mkfs(dir, 16ull << 20, 4096, 1);
	char *path = strdup(fixture_image_path(mp));
	uint64_t inos[NINO], offs[NINO], seed = seed_init("dinode_fuzz");
	int refused = 0, accepted = 0;

	assert_non_null(path);
	for (int i = 0; i < NINO; i++) {
		static const uint32_t modes[] = { S_IFREG | 0644, S_IFDIR | 0755, S_IFLNK | 0777,
						  S_IFCHR | 0600 };
		struct dfs_inode *ip = t_create(mp, NULL, modes[i % 4], 1);

		if (i % 4 == 0) {
			/* a few extents to damage */
			for (uint64_t k = 0; k < (uint64_t)i; k++) {
				struct dfs_trans *tp = t_trans(mp, 1 + 2 * dfs_bmap_ext_res(mp));
				struct dfs_bmbt_irec map;
				int nmaps = 1;

				assert_int_equal(dfs_bmapi_write(tp, ip, 3 * k, 1, DFS_BMAPI_PREALLOC,
								 &map, &nmaps), 0);
				ip->i_size = ip->i_disk_size = (3 * k + 1) * mp->m_blocksize;
				assert_int_equal(dfs_trans_log_inode(tp, ip), 0);
				assert_int_equal(dfs_trans_commit(tp, false), 0);
			}
		}
		inos[i] = ip->i_ino;
		offs[i] = dfs_ino_to_fsb(mp, ip->i_ino) * mp->m_blocksize +
			  (uint64_t)dfs_ino_to_offset(mp, ip->i_ino) * DFS_INODE_SIZE;
		dfs_irele(ip);
	}
	t_unmount(mp);

	dfs_msg_set_quiet(1);
	for (int r = 0; r < ROUNDS; r++) {
		int which = (int)rnd_below(NINO);
		uint64_t ino = inos[which], off = offs[which];
		uint8_t orig[DFS_INODE_SIZE], bad[DFS_INODE_SIZE];
		struct dfs_inode *ip;
		int nflips = 1 + (int)rnd_below(4), error;

		rw_image(path, off, orig, sizeof(orig), false);
		memcpy(bad, orig, sizeof(bad));
		for (int f = 0; f < nflips; f++) {
			/* the core and the first extents are where the meaning is */
			size_t at = rnd_below(4) ? rnd_below(DFS_DINODE_CORE_SIZE + 64)
						 : rnd_below(DFS_INODE_SIZE);

			bad[at] ^= (uint8_t)(1u << rnd_below(8));
		}
		dfs_dinode_calc_crc((struct dfs_dinode *)bad);
		rw_image(path, off, bad, sizeof(bad), true);

		mp = t_mount_image(path);
		error = dfs_iget(mp, NULL, ino, &ip);
		if (error == 0) {
			accepted++;
			/* never inactivate a damaged inode: keep it looked up */
			ip->i_nlookup = 1;
			dfs_irele(ip);
		} else if (error == -EFSCORRUPTED) {
			refused++;
		} else {
			fail_msg("seed %" PRIu64 " round %d: dfs_iget of a damaged inode: %s", seed, r,
				 strerror(-error));
		}
		t_unmount(mp);
		rw_image(path, off, orig, sizeof(orig), true);
	}
	dfs_msg_set_quiet(0);
	print_message("dinode_fuzz: %d refused, %d accepted\n", refused, accepted);
	assert_true(refused > 0);

	/* undamaged again: all fine */
	mp = t_mount_image(path);
	for (int i = 0; i < NINO; i++) {
		struct dfs_inode *ip;

		assert_int_equal(dfs_iget(mp, NULL, inos[i], &ip), 0);
		dfs_irele(ip);
	}
	t_unmount(mp);
	free(path);
	fixture_rmdir(dir);
	free(dir);
}

/* Damaged AGI unlinked lists: recovery reports and leaves them, never loops
 * or crashes, and the mount goes on. */
static void test_unlinked_damaged(void **state)
{
	char *dir = fixture_tmpdir();
	struct dfs_mount *mp = t_mkfs(dir, 16ull << 20, 4096, 1);
	char *path = strdup(fixture_image_path(mp));
	struct dfs_inode *ip = t_create(mp, NULL, S_IFREG | 0644, 1);
	uint64_t linked = ip->i_ino, agi_off = (uint64_t)DFS_AGI_AGBNO * mp->m_blocksize;
	uint32_t bs = mp->m_blocksize;
	const uint64_t heads[] = {
		linked,				/* in use, with a link */
		linked + 1,			/* free */
		(uint64_t)1 << 40,		/* outside the filesystem */
		dfs_make_ino(mp, 100, 0),	/* in no chunk */
	};
	uint8_t *blk = malloc(bs);

	seed_init("unlinked_damaged");
	assert_non_null(path);
	assert_non_null(blk);
	dfs_irele(ip);
	t_unmount(mp);
	for (size_t h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
		struct dfs_agi *agi = (struct dfs_agi *)blk;

		rw_image(path, agi_off, blk, bs, false);
		agi->unlinked = heads[h];
		dfs_cksum_update(blk, bs, offsetof(struct dfs_blkhdr, crc));
		rw_image(path, agi_off, blk, bs, true);

		mp = t_mount_image(path);
		dfs_msg_set_quiet(1);
		assert_int_equal(dfs_iunlink_recover(mp), 0);
		dfs_msg_set_quiet(0);
		/* the linked inode was not freed */
		assert_int_equal(dfs_imap_check(mp, NULL, linked), 1);
		assert_int_equal(dfs_iget(mp, NULL, linked, &ip), 0);
		assert_int_equal(ip->i_nlink, 1);
		dfs_irele(ip);
		t_unmount(mp);
	}
	/* repair by hand: an empty list is recovered silently */
	{
		struct dfs_agi *agi = (struct dfs_agi *)blk;

		rw_image(path, agi_off, blk, bs, false);
		agi->unlinked = DFS_NULLINO;
		dfs_cksum_update(blk, bs, offsetof(struct dfs_blkhdr, crc));
		rw_image(path, agi_off, blk, bs, true);
	}
	mp = t_mount_image(path);
	assert_int_equal(dfs_iunlink_recover(mp), 0);
	t_unmount(mp);
	free(blk);
	free(path);
	fixture_rmdir(dir);
	free(dir);
}

/* The cluster verifier catches a dinode in the wrong place. */
static void test_inode_buf_verify(void **state)
{
	char *dir = fixture_tmpdir();
	struct dfs_mount *mp = t_mkfs(dir, 16ull << 20, 4096, 1);
	struct dfs_inode *ip = t_create(mp, NULL, S_IFREG | 0644, 1);
	struct dfs_buf *bp;
	struct dfs_dinode *dip;
	uint64_t ino = ip->i_ino;

	seed_init("inode_buf_verify");
	dfs_irele(ip);
	assert_int_equal(dfs_buf_read(mp, dfs_ino_to_fsb(mp, ino), &dfs_inode_buf_ops, &bp), 0);
	assert_int_equal(dfs_inode_buf_ops.verify_read(bp), 0);
	dip = (struct dfs_dinode *)((char *)bp->b_addr + dfs_ino_to_offset(mp, ino) * DFS_INODE_SIZE);
	assert_int_equal(dfs_dinode_verify(mp, ino, dip), 0);
	dfs_msg_set_quiet(1);
	/* as read from the wrong place */
	assert_int_equal(dfs_dinode_verify(mp, ino + 1, dip), -EFSCORRUPTED);
	/* bad format for the type, CRC kept valid */
	{
		struct dfs_dinode save;

		memcpy(&save, dip, sizeof(save));
		dip->di_format = DFS_DINODE_FMT_LOCAL;
		dfs_dinode_calc_crc(dip);
		assert_int_equal(dfs_dinode_verify(mp, ino, dip), -EFSCORRUPTED);
		dip->di_format = 9;
		dfs_dinode_calc_crc(dip);
		assert_int_equal(dfs_dinode_verify(mp, ino, dip), -EFSCORRUPTED);
		memcpy(dip, &save, sizeof(save));
		dip->di_mode = 0170644;
		dfs_dinode_calc_crc(dip);
		assert_int_equal(dfs_dinode_verify(mp, ino, dip), -EFSCORRUPTED);
		memcpy(dip, &save, sizeof(save));
		dip->di_nlink ^= 1;	/* CRC now stale */
		assert_int_equal(dfs_dinode_verify(mp, ino, dip), -EFSCORRUPTED);
		assert_int_equal(dfs_inode_buf_ops.verify_read(bp), -EFSCORRUPTED);
		memcpy(dip, &save, sizeof(save));
		assert_int_equal(dfs_inode_buf_ops.verify_read(bp), 0);
	}
	dfs_msg_set_quiet(0);
	dfs_buf_relse(bp);
	t_unmount(mp);
	fixture_rmdir(dir);
	free(dir);
}

/* Free blocks as the AGFs count them (the m_fdblocks formula, without the
 * set-aside), read from the headers. */
static uint64_t agf_free_sum(struct dfs_mount *mp)
{
	uint64_t sum = 0;

	for (uint32_t agno = 0; agno < mp->m_agcount; agno++) {
		struct dfs_buf *bp;
		const struct dfs_agf *agf;

		assert_int_equal(dfs_alloc_read_agf(mp, NULL, agno, &bp), 0);
		agf = bp->b_addr;
		sum += (uint64_t)agf->freeblks + agf->flcount + agf->btreeblks;
		dfs_buf_relse(bp);
	}
	return sum;
}

/* The LRU keeps at most its bound of unreferenced inodes; evicted ones are
 * read back intact, and an atime-only change is written when its inode
 * leaves the cache. */
static void test_icache_lru(void **state)
{
	enum { N = 100, MAX = 16 };
	char *dir = fixture_tmpdir();
	struct dfs_mount *mp = t_mkfs(dir, 16ull << 20, 4096, 1);
	struct dfs_icache_stats st;
	struct dfs_inode *ip, *ip2;
	uint64_t inos[N];
	struct timespec atime;

	seed_init("icache_lru");
	dfs_icache_set_lru_max(mp, MAX);
	for (int i = 0; i < N; i++) {
		ip = t_create(mp, NULL, S_IFREG | 0644, 1);
		inos[i] = ip->i_ino;
		dfs_irele(ip);
		dfs_icache_get_stats(mp, &st);
		assert_true(st.unreferenced <= MAX);
		assert_int_equal(st.cached, st.unreferenced);
	}
	dfs_icache_get_stats(mp, &st);
	assert_int_equal(st.cached, MAX);
	assert_int_equal(st.evictions, N - MAX);
	/* the most recent are hits, the oldest misses */
	assert_int_equal(dfs_iget(mp, NULL, inos[N - 1], &ip), 0);
	assert_int_equal(dfs_iget(mp, NULL, inos[0], &ip2), 0);
	dfs_icache_get_stats(mp, &st);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.misses, 1);
	assert_int_equal(ip2->i_mode, S_IFREG | 0644);
	assert_int_equal(ip2->i_nlink, 1);
	/* referenced inodes are not on the LRU and never evicted */
	assert_int_equal(st.unreferenced, MAX - 1);
	dfs_icache_set_lru_max(mp, 0);
	dfs_icache_get_stats(mp, &st);
	assert_int_equal(st.cached, 2);

	/* atime alone: not logged by its change, written at eviction */
	dfs_trans_ichgtime(NULL, ip2, DFS_ICHG_ACC);
	ip2->i_atime.tv_sec = 2000000000;
	atime = ip2->i_atime;
	dfs_irele(ip2);
	dfs_irele(ip);
	dfs_icache_get_stats(mp, &st);
	assert_int_equal(st.cached, 0);
	mp = t_remount(mp);
	assert_int_equal(dfs_iget(mp, NULL, inos[0], &ip), 0);
	assert_int_equal(ip->i_atime.tv_sec, atime.tv_sec);
	assert_int_equal(ip->i_atime.tv_nsec, atime.tv_nsec);
	dfs_irele(ip);
	t_unmount(mp);
	fixture_rmdir(dir);
	free(dir);
}

/* An unreferenced inode pushed out of the cache takes its dirty pages
 * with it, written back first: the data reads back afterwards. */
static void test_icache_evict_dirty_pages(void **state)
{
	enum { LEN = 200000 };
	char *dir = fixture_tmpdir();
	struct dfs_mount *mp = t_mkfs(dir, 32ull << 20, 4096, 2);
	const struct dfs_cred cred = { 0, 0 };
	struct dfs_pagecache_stats ps;
	struct dfs_icache_stats st;
	struct dfs_stat sst;
	char *buf = malloc(LEN), *back = malloc(LEN);
	uint64_t ino;

	seed_init("icache_evict_dirty_pages");
	assert_non_null(buf);
	assert_non_null(back);
	for (int i = 0; i < LEN; i++)
		buf[i] = (char)rnd();
	assert_int_equal(dfs_mknod(mp, mp->m_sb.rootino, "f", S_IFREG | 0644, 0, &cred, &sst), 0);
	ino = sst.ino;
	assert_int_equal(dfs_write(mp, ino, buf, LEN, 0), LEN);
	dfs_pagecache_get_stats(mp, &ps);
	assert_true(ps.nr_dirty > 0);
	dfs_forget(mp, ino, 1);		/* unreferenced now: on the LRU */

	dfs_icache_get_stats(mp, &st);
	assert_int_equal(st.unreferenced, 2);	/* the root and f */
	dfs_icache_set_lru_max(mp, 0);
	dfs_icache_get_stats(mp, &st);
	assert_int_equal(st.unreferenced, 0);
	dfs_pagecache_get_stats(mp, &ps);
	assert_int_equal(ps.nr_dirty, 0);
	assert_int_equal(ps.nr_pages, 0);

	assert_int_equal(dfs_getattr(mp, ino, &sst), 0);
	assert_int_equal(sst.size, LEN);
	assert_int_equal(dfs_read(mp, ino, back, LEN, 0), LEN);
	assert_memory_equal(buf, back, LEN);
	mp = t_remount(mp);
	memset(back, 0, LEN);
	assert_int_equal(dfs_read(mp, ino, back, LEN, 0), LEN);
	assert_memory_equal(buf, back, LEN);
	t_unmount(mp);
	free(buf);
	free(back);
	fixture_rmdir(dir);
	free(dir);
}

/* Directories go round the AGs; files stay with their parent. */
static void test_dialloc_rotor(void **state)
{
	char *dir = fixture_tmpdir();
	struct dfs_mount *mp = t_mkfs(dir, 64ull << 20, 4096, 4);
	struct dfs_inode *root = t_create(mp, NULL, S_IFDIR | 0755, 2);
	unsigned used = 0;

	seed_init("dialloc_rotor");
	for (int i = 0; i < 8; i++) {
		struct dfs_inode *d = t_create(mp, root, S_IFDIR | 0755, 2);
		struct dfs_inode *f = t_create(mp, d, S_IFREG | 0644, 1);

		used |= 1u << dfs_ino_to_agno(mp, d->i_ino);
		assert_int_equal(dfs_ino_to_agno(mp, f->i_ino), dfs_ino_to_agno(mp, d->i_ino));
		dfs_irele(f);
		dfs_irele(d);
	}
	assert_int_equal(used, 0xf);
	dfs_irele(root);
	t_unmount(mp);
	fixture_rmdir(dir);
	free(dir);
}

/* A new inode comes from the chunk nearest its parent that has one free. */
static void test_dialloc_near_parent(void **state)
{
	enum { N = 3 * DFS_INODES_PER_CHUNK };
	char *dir = fixture_tmpdir();
	struct dfs_mount *mp = t_mkfs(dir, 16ull << 20, 4096, 1);
	uint64_t inos[N], got;
	uint32_t start[3];
	struct dfs_trans *tp;

	seed_init("dialloc_near_parent");
	inos[0] = mp->m_sb.rootino;	/* mkfs's */
	for (int i = 1; i < N; i++) {
		tp = t_trans(mp, dfs_ialloc_space_res(mp));
		assert_int_equal(dfs_dialloc(tp, DFS_NULLINO, S_IFREG, &inos[i]), 0);
		assert_int_equal(dfs_trans_commit(tp, false), 0);
	}
	qsort(inos, N, sizeof(*inos), cmp_u64);
	for (int c = 0; c < 3; c++) {
		start[c] = dfs_ino_to_agino(mp, inos[c * DFS_INODES_PER_CHUNK]);
		assert_int_equal(start[c] % DFS_INODES_PER_CHUNK, 0);
		/* each chunk is full and contiguous in inode numbers */
		assert_int_equal(dfs_ino_to_agino(mp, inos[c * DFS_INODES_PER_CHUNK + 63]),
				 start[c] + 63);
	}
	/* one free inode in the first and in the last chunk; the parent in the
	 * middle one, at each end of it */
	for (int side = 0; side < 2; side++) {
		uint64_t a = inos[10], c = inos[2 * DFS_INODES_PER_CHUNK + 50];
		uint64_t parent = inos[DFS_INODES_PER_CHUNK + (side ? 63 : 0)];
		uint32_t pag = dfs_ino_to_agino(mp, parent);
		uint64_t da = pag - (start[0] + 63), dc = start[2] - pag;

		tp = t_trans(mp, 0);
		assert_int_equal(dfs_difree(tp, a), 0);
		assert_int_equal(dfs_difree(tp, c), 0);
		assert_int_equal(dfs_trans_commit(tp, false), 0);
		tp = t_trans(mp, dfs_ialloc_space_res(mp));
		assert_int_equal(dfs_dialloc(tp, parent, S_IFREG, &got), 0);
		assert_int_equal(dfs_trans_commit(tp, false), 0);
		assert_int_equal(got, da <= dc ? a : c);
		/* and the other one next */
		tp = t_trans(mp, dfs_ialloc_space_res(mp));
		assert_int_equal(dfs_dialloc(tp, parent, S_IFREG, &got), 0);
		assert_int_equal(dfs_trans_commit(tp, false), 0);
		assert_int_equal(got, da <= dc ? c : a);
	}
	t_unmount(mp);
	fixture_rmdir(dir);
	free(dir);
}

/*
 * The last release of an unlinked file frees its data blocks, its bmbt and
 * its inode chunk: free space is back where it started; after a crash,
 * recovery does the same.
 */
static void test_inactive_frees_blocks(void **state)
{
	enum { NEXT = 40 };
	char *dir = fixture_tmpdir();
	struct dfs_mount *mp = t_mkfs(dir, 32ull << 20, 4096, 2);
	/* the reserve pool (bmap.c) moves blocks to and from m_fdblocks */
	uint64_t free0 = agf_free_sum(mp), fd0 = mp->m_fdblocks + mp->m_resblks_avail, ino;
	struct dfs_inode *ip = t_create(mp, NULL, S_IFREG | 0644, 1);
	char crash[PATH_MAX];
	struct dfs_trans *tp;

	seed_init("inactive_frees_blocks");
	/* every other block: NEXT extents, more than fit in the inode */
	for (int k = 0; k < NEXT; k++) {
		struct dfs_bmbt_irec map;
		int nmaps = 1;

		tp = t_trans(mp, 1 + 2 * dfs_bmap_ext_res(mp));
		assert_int_equal(dfs_bmapi_write(tp, ip, 2 * (uint64_t)k, 1, DFS_BMAPI_PREALLOC,
						 &map, &nmaps), 0);
		assert_int_equal(nmaps, 1);
		ip->i_size = ip->i_disk_size = (2 * (uint64_t)k + 1) * mp->m_blocksize;
		assert_int_equal(dfs_trans_log_inode(tp, ip), 0);
		assert_int_equal(dfs_trans_commit(tp, false), 0);
	}
	assert_int_equal(ip->i_df.if_format, DFS_DINODE_FMT_BTREE);
	assert_true(ip->i_nblocks > NEXT);
	ino = ip->i_ino;
	dfs_irele(ip);

	/* read back through the bmbt */
	mp = t_remount(mp);
	assert_true(agf_free_sum(mp) < free0 - NEXT);
	assert_int_equal(dfs_iget(mp, NULL, ino, &ip), 0);
	assert_int_equal(ip->i_df.if_format, DFS_DINODE_FMT_BTREE);
	assert_int_equal(dfs_bmap_real_extents(ip), NEXT);
	assert_int_equal(dfs_bmap_check(ip), 0);

	tp = t_trans(mp, 0);
	assert_int_equal(dfs_droplink(tp, ip), 0);
	assert_int_equal(dfs_trans_commit(tp, false), 0);
	assert_int_equal(dfs_log_force(mp), 0);
	snprintf(crash, sizeof(crash), "%s/crash.img", dir);
	assert_int_equal(fixture_copy_file(fixture_image_path(mp), crash), 0);

	dfs_irele(ip);
	assert_int_equal(dfs_imap_check(mp, NULL, ino), 0);
	assert_int_equal(agf_free_sum(mp), free0);
	assert_int_equal(mp->m_fdblocks + mp->m_resblks_avail, fd0);
	mp = t_remount(mp);
	assert_int_equal(agf_free_sum(mp), free0);
	t_unmount(mp);

	mp = t_mount_image(crash);
	assert_int_equal(dfs_iunlink_recover(mp), 0);
	assert_int_equal(dfs_imap_check(mp, NULL, ino), 0);
	assert_int_equal(agf_free_sum(mp), free0);
	assert_int_equal(mp->m_fdblocks + mp->m_resblks_avail, fd0);
	mp = t_remount(mp);
	assert_int_equal(agf_free_sum(mp), free0);
	t_unmount(mp);
	fixture_rmdir(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_icreate_iget),
		cmocka_unit_test(test_inode_buf_verify),
		cmocka_unit_test(test_ialloc_random_4k),
		cmocka_unit_test(test_ialloc_random_1k),
		cmocka_unit_test(test_ialloc_enospc),
		cmocka_unit_test(test_inobt_multilevel),
		cmocka_unit_test(test_unlinked_random),
		cmocka_unit_test(test_unlinked_recovery),
		cmocka_unit_test(test_unlinked_at_unmount),
		cmocka_unit_test(test_unlinked_uncached_pred),
		cmocka_unit_test(test_unlinked_damaged),
		cmocka_unit_test(test_dinode_fuzz),
		cmocka_unit_test(test_icache_lru),
		cmocka_unit_test(test_icache_evict_dirty_pages),
		cmocka_unit_test(test_dialloc_rotor),
		cmocka_unit_test(test_dialloc_near_parent),
		cmocka_unit_test(test_inactive_frees_blocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
