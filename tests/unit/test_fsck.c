// SPDX-License-Identifier: MIT
/*
 * fsck: a populated filesystem checks clean; each kind of damage made by
 * editing the image raw is found with the message that names it; --repair
 * fixes what it claims (a re-check is clean, file data is intact); and
 * random damage to metadata never crashes fsck and leaves, after repair, a
 * filesystem that checks the same twice.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/crc.h"
#include "fs/deepfs.h"
#include "fs/dir.h"
#include "fs/format.h"
#include "fs/xattr.h"
#include "fixture.h"

#define IMG_SIZE	(32ull << 20)

/* ---- the populated image, made once ------------------------------------- */

static char *g_dir;
static char g_pristine[512];
static char g_work[512];
static char g_pristine_dirty[512];
static const struct dfs_cred g_cr = { 0, 0 };

/* What the test needs to find again in the image. */
static uint64_t g_ino_small, g_ino_frag1, g_ino_victim, g_ino_d1, g_ino_bigdir, g_ino_longsym;

struct file_spec {
	const char *path;	/* parent directories are made first, in order */
	uint64_t size;
	uint32_t seed;
};

static const struct file_spec g_files[] = {
	{ "empty", 0, 1 },
	{ "small", 100, 2 },
	{ "f4k", 4096, 3 },
	{ "f100k", 100000, 4 },
	{ "big", 2u << 20, 5 },
	{ "d1/d2/deep", 12345, 6 },
	{ "d1/victim", 5000, 7 },
};

static uint8_t pattern(uint32_t seed, uint64_t off)
{
	return (uint8_t)(seed * 131 + off * 7 + (off >> 9));
}

/* Walks path below the root, creating directories; returns the parent and
 * the last component. */
static uint64_t walk_parent(struct dfs_mount *mp, const char *path, const char **leaf, bool create)
{
	uint64_t dir = dfs_root_ino(mp);
	char comp[256];
	const char *p = path, *slash;

	while ((slash = strchr(p, '/'))) {
		struct dfs_stat st;
		int error;

		memcpy(comp, p, (size_t)(slash - p));
		comp[slash - p] = '\0';
		error = dfs_lookup(mp, dir, comp, &st);
		if (error == -ENOENT && create)
			error = dfs_mkdir(mp, dir, comp, 0755, &g_cr, &st);
		assert_int_equal(error, 0);
		dfs_forget(mp, st.ino, 1);
		dir = st.ino;
		p = slash + 1;
	}
	*leaf = p;
	return dir;
}

static uint64_t make_file(struct dfs_mount *mp, const struct file_spec *fs)
{
	const char *leaf;
	uint64_t dir = walk_parent(mp, fs->path, &leaf, true);
	static uint8_t buf[65536];
	struct dfs_stat st;
	uint64_t off, i;

	assert_int_equal(dfs_mknod(mp, dir, leaf, S_IFREG | 0644, 0, &g_cr, &st), 0);
	for (off = 0; off < fs->size; off += sizeof(buf)) {
		uint64_t n = fs->size - off < sizeof(buf) ? fs->size - off : sizeof(buf);

		for (i = 0; i < n; i++)
			buf[i] = pattern(fs->seed, off + i);
		assert_int_equal(dfs_write(mp, st.ino, buf, n, off), (ssize_t)n);
	}
	dfs_forget(mp, st.ino, 1);
	return st.ino;
}

/* Reads a file back and compares it with its pattern. */
static void verify_file(struct dfs_mount *mp, const char *path, uint64_t size, uint32_t seed)
{
	static uint8_t buf[65536];
	const char *leaf;
	uint64_t dir = walk_parent(mp, path, &leaf, false);
	struct dfs_stat st;
	uint64_t off, i;

	assert_int_equal(dfs_lookup(mp, dir, leaf, &st), 0);
	assert_int_equal(st.size, size);
	for (off = 0; off < size; off += sizeof(buf)) {
		uint64_t n = size - off < sizeof(buf) ? size - off : sizeof(buf);

		assert_int_equal(dfs_read(mp, st.ino, buf, n, off), (ssize_t)n);
		for (i = 0; i < n; i++)
			if (buf[i] != pattern(seed, off + i))
				fail_msg("%s: byte %" PRIu64 " differs", path, off + i);
	}
	dfs_forget(mp, st.ino, 1);
}

/* Two files written in turns, each chunk synced: their extents interleave,
 * so each has more than fit in the inode and grows a bmbt. */
static void make_fragmented(struct dfs_mount *mp)
{
	uint8_t buf[4096];
	struct dfs_stat a, b;
	unsigned i, j;

	assert_int_equal(dfs_mknod(mp, dfs_root_ino(mp), "frag1", S_IFREG | 0644, 0, &g_cr, &a), 0);
	assert_int_equal(dfs_mknod(mp, dfs_root_ino(mp), "frag2", S_IFREG | 0644, 0, &g_cr, &b), 0);
	for (i = 0; i < 48; i++) {
		for (j = 0; j < sizeof(buf); j++)
			buf[j] = pattern(100, (uint64_t)i * sizeof(buf) + j);
		assert_int_equal(dfs_write(mp, a.ino, buf, sizeof(buf), (uint64_t)i * sizeof(buf)),
				 (ssize_t)sizeof(buf));
		assert_int_equal(dfs_fsync(mp, a.ino, false), 0);
		for (j = 0; j < sizeof(buf); j++)
			buf[j] = pattern(101, (uint64_t)i * sizeof(buf) + j);
		assert_int_equal(dfs_write(mp, b.ino, buf, sizeof(buf), (uint64_t)i * sizeof(buf)),
				 (ssize_t)sizeof(buf));
		assert_int_equal(dfs_fsync(mp, b.ino, false), 0);
	}
	g_ino_frag1 = a.ino;
	dfs_forget(mp, a.ino, 1);
	dfs_forget(mp, b.ino, 1);
}

static void populate(struct dfs_mount *mp)
{
	char name[64], target[1200];
	struct dfs_stat st, d;
	size_t i;

	for (i = 0; i < sizeof(g_files) / sizeof(g_files[0]); i++) {
		uint64_t ino = make_file(mp, &g_files[i]);

		if (!strcmp(g_files[i].path, "small"))
			g_ino_small = ino;
		if (!strcmp(g_files[i].path, "d1/victim"))
			g_ino_victim = ino;
	}
	make_fragmented(mp);
	assert_int_equal(dfs_lookup(mp, dfs_root_ino(mp), "d1", &d), 0);
	g_ino_d1 = d.ino;
	assert_int_equal(dfs_link(mp, g_ino_small, d.ino, "link", &st), 0);
	dfs_forget(mp, st.ino, 1);
	dfs_forget(mp, d.ino, 1);
	assert_int_equal(dfs_symlink(mp, dfs_root_ino(mp), "sym", "small", &g_cr, &st), 0);
	dfs_forget(mp, st.ino, 1);
	memset(target, 'x', sizeof(target) - 1);
	target[sizeof(target) - 1] = '\0';
	assert_int_equal(dfs_symlink(mp, dfs_root_ino(mp), "longsym", target, &g_cr, &st), 0);
	g_ino_longsym = st.ino;
	dfs_forget(mp, st.ino, 1);
	assert_int_equal(dfs_setxattr(mp, g_ino_small, "user.a", "hello", 5, 0), 0);
	/* a directory big enough for a tree of directory blocks */
	assert_int_equal(dfs_mkdir(mp, dfs_root_ino(mp), "bigdir", 0755, &g_cr, &d), 0);
	g_ino_bigdir = d.ino;
	for (i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "entry-with-a-longish-name-%03zu", i);
		assert_int_equal(dfs_mknod(mp, d.ino, name, S_IFREG | 0600, 0, &g_cr, &st), 0);
		dfs_forget(mp, st.ino, 1);
	}
	dfs_forget(mp, d.ino, 1);
}

static void verify_all(const char *path)
{
	struct dfs_mount *mp;
	char buf[64];
	size_t i;

	assert_int_equal(dfs_mount(path, NULL, &mp), 0);
	for (i = 0; i < sizeof(g_files) / sizeof(g_files[0]); i++)
		verify_file(mp, g_files[i].path, g_files[i].size, g_files[i].seed);
	verify_file(mp, "frag1", 48 * 4096, 100);
	verify_file(mp, "frag2", 48 * 4096, 101);
	assert_int_equal(dfs_getxattr(mp, g_ino_small, "user.a", buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(dfs_unmount(mp), 0);
}

static int group_setup(void **state)
{
	struct dfs_mkfs_opts mo = { .size = IMG_SIZE, .agcount = 2 };
	struct dfs_mount *mp;

	g_dir = fixture_tmpdir();
	snprintf(g_pristine, sizeof(g_pristine), "%s/pristine.img", g_dir);
	snprintf(g_work, sizeof(g_work), "%s/work.img", g_dir);
	snprintf(g_pristine_dirty, sizeof(g_pristine_dirty), "%s/dirty.img", g_dir);
	if (dfs_mkfs(g_pristine, &mo))
		return -1;
	if (dfs_mount(g_pristine, NULL, &mp))
		return -1;
	populate(mp);
	return dfs_unmount(mp);
}

static int group_teardown(void **state)
{
	fixture_rmdir(g_dir);
	free(g_dir);
	return 0;
}

/* ---- running fsck ------------------------------------------------------- */

/* Runs dfs_fsck with stderr captured into *out (caller frees). */
static int run_fsck(const char *path, bool repair, struct dfs_fsck_result *res, char **out)
{
	struct dfs_fsck_opts o = { .repair = repair };
	char tmpl[600];
	int saved, fd, ret;
	struct stat st;
	char *buf;

	snprintf(tmpl, sizeof(tmpl), "%s/stderr-XXXXXX", g_dir);
	fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	unlink(tmpl);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	ret = dfs_fsck(path, &o, res);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	assert_int_equal(fstat(fd, &st), 0);
	buf = calloc(1, (size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	*out = buf;
	return ret;
}

static void expect_clean(const char *path)
{
	struct dfs_fsck_result res;
	char *out;
	int ret = run_fsck(path, false, &res, &out);

	if (ret != 0 || res.problems)
		fail_msg("fsck of %s: %d, %" PRIu64 " problems:\n%s", path, ret, res.problems, out);
	free(out);
}

/* fsck finds the damage and says so with msg; repair fixes it all. */
static void expect_found_and_repaired(const char *msg)
{
	struct dfs_fsck_result res;
	char *out;
	int ret;

	ret = run_fsck(g_work, false, &res, &out);
	if (ret != 1 || !strstr(out, msg))
		fail_msg("fsck returned %d; expected a message with \"%s\", got:\n%s", ret, msg, out);
	free(out);
	ret = run_fsck(g_work, true, &res, &out);
	if (ret != 0 || res.repaired != res.problems || !res.problems)
		fail_msg("repair returned %d, %" PRIu64 " problems, %" PRIu64 " repaired:\n%s", ret,
			 res.problems, res.repaired, out);
	free(out);
	expect_clean(g_work);
}

/* ---- raw image access --------------------------------------------------- */

struct img {
	int fd;
	struct dfs_dsb sb;
	uint32_t bs;
};

static void img_open(struct img *im, const char *path)
{
	im->fd = open(path, O_RDWR);
	assert_true(im->fd >= 0);
	assert_int_equal(pread(im->fd, &im->sb, sizeof(im->sb), 0), (ssize_t)sizeof(im->sb));
	im->bs = im->sb.blocksize;
}

static void img_close(struct img *im)
{
	assert_int_equal(fsync(im->fd), 0);
	close(im->fd);
}

static void *img_read(struct img *im, uint64_t fsbno)
{
	void *b = malloc(im->bs);

	assert_non_null(b);
	assert_int_equal(pread(im->fd, b, im->bs, (off_t)(fsbno * im->bs)), (ssize_t)im->bs);
	return b;
}

/* Writes a block back; with crc, its header CRC is made valid again. */
static void img_write(struct img *im, uint64_t fsbno, void *b, bool crc)
{
	if (crc)
		dfs_cksum_update(b, im->bs, offsetof(struct dfs_blkhdr, crc));
	assert_int_equal(pwrite(im->fd, b, im->bs, (off_t)(fsbno * im->bs)), (ssize_t)im->bs);
	free(b);
}

static uint64_t agb(struct img *im, uint32_t agno, uint32_t agbno)
{
	return (uint64_t)agno * im->sb.agblocks + agbno;
}

static struct dfs_dinode *dinode_in(struct img *im, void *blk, uint64_t ino)
{
	return (struct dfs_dinode *)((uint8_t *)blk + (ino & (im->sb.inopblock - 1)) * DFS_INODE_SIZE);
}

static void *img_read_inode(struct img *im, uint64_t ino, struct dfs_dinode **dipp)
{
	void *b = img_read(im, ino >> im->sb.inopblog);

	*dipp = dinode_in(im, b, ino);
	return b;
}

static void img_write_inode(struct img *im, uint64_t ino, void *blk)
{
	dfs_cksum_update(dinode_in(im, blk, ino), DFS_INODE_SIZE, offsetof(struct dfs_dinode, di_crc));
	img_write(im, ino >> im->sb.inopblog, blk, false);
}

static struct dfs_agf *img_read_agf(struct img *im, uint32_t agno)
{
	return img_read(im, agb(im, agno, DFS_AGF_AGBNO));
}

/* The free-space trees of the test image are one leaf each. */
static struct dfs_btree_block *img_read_leaf(struct img *im, uint64_t root)
{
	struct dfs_btree_block *b = img_read(im, root);

	assert_int_equal(b->level, 0);
	return b;
}

static struct dfs_alloc_rec *leaf_recs(struct dfs_btree_block *b)
{
	return (struct dfs_alloc_rec *)(b + 1);
}

static void leaf_insert(struct dfs_btree_block *b, struct dfs_alloc_rec r, bool bycnt)
{
	struct dfs_alloc_rec *recs = leaf_recs(b);
	unsigned i = 0;

	while (i < b->numrecs &&
	       (bycnt ? (recs[i].blockcount < r.blockcount ||
			 (recs[i].blockcount == r.blockcount && recs[i].startblock < r.startblock))
		      : recs[i].startblock < r.startblock))
		i++;
	memmove(&recs[i + 1], &recs[i], (b->numrecs - i) * sizeof(r));
	recs[i] = r;
	b->numrecs++;
}

static void copy_pristine(void)
{
	assert_int_equal(fixture_copy_file(g_pristine, g_work), 0);
}

/* The first block of a file's data fork: a bmbt root or its first extent. */
static uint64_t img_fork_block(struct img *im, uint64_t ino, uint8_t want_format)
{
	struct dfs_dinode *dip;
	void *ib = img_read_inode(im, ino, &dip);
	uint64_t fsbno;

	assert_int_equal(dip->di_format, want_format);
	if (want_format == DFS_DINODE_FMT_BTREE)
		fsbno = ((struct dfs_bmroot *)dip->di_fork)->root;
	else
		fsbno = ((struct dfs_bmbt_rec *)dip->di_fork)[0].startblock;
	free(ib);
	return fsbno;
}

static uint64_t img_xattr_block(struct img *im, uint64_t ino)
{
	struct dfs_dinode *dip;
	void *ib = img_read_inode(im, ino, &dip);
	uint64_t fsbno = dip->di_xattr_blk;

	assert_true(fsbno != 0);
	free(ib);
	return fsbno;
}

/* ---- tests -------------------------------------------------------------- */

static void test_clean(void **state)
{
	struct dfs_fsck_result res;
	char *out;

	copy_pristine();
	assert_int_equal(run_fsck(g_work, false, &res, &out), 0);
	free(out);
	assert_int_equal(res.problems, 0);
	/* the image has what the checks are meant to walk */
	{
		struct img im;

		img_open(&im, g_work);
		img_fork_block(&im, g_ino_frag1, DFS_DINODE_FMT_BTREE);
		img_fork_block(&im, g_ino_bigdir, DFS_DINODE_FMT_EXTENTS);
		img_close(&im);
	}
	/* 7 files, frag1/2, 2 symlinks, 300 in bigdir; root, d1, d2, bigdir */
	assert_int_equal(res.dirs, 4);
	assert_int_equal(res.files, 7 + 2 + 2 + 300);
	assert_int_equal(res.inodes, res.dirs + res.files);
	assert_true(res.blocks_used > (2u << 20) / 4096);
	assert_true(res.blocks_free > 0);
	/* repairing a clean filesystem changes nothing */
	assert_int_equal(run_fsck(g_work, true, &res, &out), 0);
	free(out);
	assert_int_equal(res.repaired, 0);
	verify_all(g_work);
}

static void test_not_deepfs(void **state)
{
	struct dfs_fsck_result res;
	char path[600];
	char *out;
	int fd;

	snprintf(path, sizeof(path), "%s/zero.img", g_dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	assert_true(run_fsck(path, false, &res, &out) < 0);
	assert_non_null(strstr(out, "not a deepfs filesystem"));
	free(out);
	unlink(path);
}

static void test_bnobt_crc(void **state)
{
	struct dfs_agf *agf;
	struct dfs_btree_block *b;
	struct img im;
	char msg[128];

	copy_pristine();
	img_open(&im, g_work);
	agf = img_read_agf(&im, 1);
	b = img_read(&im, agf->bno_root);
	((uint8_t *)b)[sizeof(*b) + 3] ^= 0x10;	/* a bit in the first record */
	img_write(&im, agf->bno_root, b, false);
	snprintf(msg, sizeof(msg), "AG 1 bnobt block %" PRIu64 ": CRC mismatch", agf->bno_root);
	free(agf);
	img_close(&im);
	expect_found_and_repaired(msg);
	verify_all(g_work);
}

static void test_cntbt_disagrees(void **state)
{
	struct dfs_btree_block *b;
	struct dfs_agf *agf;
	struct img im;

	copy_pristine();
	img_open(&im, g_work);
	agf = img_read_agf(&im, 0);
	b = img_read_leaf(&im, agf->cnt_root);
	assert_true(b->numrecs > 0);
	/* the longest extent, one block shorter: still in order */
	leaf_recs(b)[b->numrecs - 1].blockcount--;
	img_write(&im, agf->cnt_root, b, true);
	free(agf);
	img_close(&im);
	expect_found_and_repaired("in the bnobt but");
	verify_all(g_work);
}

/* A block of a file's data is listed as free in both trees, counters
 * updated: only the ownership map can tell. */
static void test_used_block_marked_free(void **state)
{
	struct dfs_btree_block *bno, *cnt;
	struct dfs_dinode *dip;
	struct dfs_alloc_rec r;
	struct dfs_agf *agf;
	struct img im;
	uint64_t fsbno;
	uint32_t agno;
	char msg[128];
	void *ib;

	copy_pristine();
	img_open(&im, g_work);
	ib = img_read_inode(&im, g_ino_victim, &dip);
	assert_int_equal(dip->di_format, DFS_DINODE_FMT_EXTENTS);
	fsbno = ((struct dfs_bmbt_rec *)dip->di_fork)[0].startblock;
	free(ib);
	agno = (uint32_t)(fsbno / im.sb.agblocks);
	r.startblock = (uint32_t)(fsbno % im.sb.agblocks);
	r.blockcount = 1;
	agf = img_read_agf(&im, agno);
	bno = img_read_leaf(&im, agf->bno_root);
	cnt = img_read_leaf(&im, agf->cnt_root);
	leaf_insert(bno, r, false);
	leaf_insert(cnt, r, true);
	img_write(&im, agf->bno_root, bno, true);
	img_write(&im, agf->cnt_root, cnt, true);
	agf->freeblks++;
	img_write(&im, agb(&im, agno, DFS_AGF_AGBNO), agf, true);
	img_close(&im);
	snprintf(msg, sizeof(msg), "inode %" PRIu64 " data: block %" PRIu64
		 " (1 blocks in all) is in use but marked free", g_ino_victim, fsbno);
	expect_found_and_repaired(msg);
	verify_all(g_work);
}

/* The longest free extent loses its last block in both trees and the AGF:
 * the block is now owned by nothing. */
static void test_leaked_block(void **state)
{
	struct dfs_btree_block *bno, *cnt;
	struct dfs_alloc_rec *longest;
	struct dfs_agf *agf;
	struct img im;
	uint32_t end, i;
	char msg[128];

	copy_pristine();
	img_open(&im, g_work);
	agf = img_read_agf(&im, 1);
	bno = img_read_leaf(&im, agf->bno_root);
	cnt = img_read_leaf(&im, agf->cnt_root);
	longest = &leaf_recs(cnt)[cnt->numrecs - 1];
	assert_true(longest->blockcount > 1);
	assert_true(cnt->numrecs == 1 || leaf_recs(cnt)[cnt->numrecs - 2].blockcount < longest->blockcount - 1);
	for (i = 0; i < bno->numrecs; i++)
		if (leaf_recs(bno)[i].startblock == longest->startblock)
			leaf_recs(bno)[i].blockcount--;
	longest->blockcount--;
	end = longest->startblock + longest->blockcount;
	agf->freeblks--;
	agf->longest--;
	img_write(&im, agf->bno_root, bno, true);
	img_write(&im, agf->cnt_root, cnt, true);
	img_write(&im, agb(&im, 1, DFS_AGF_AGBNO), agf, true);
	img_close(&im);
	snprintf(msg, sizeof(msg), "AG 1: blocks %u..%u (1 blocks) are neither free nor in use (leaked)",
		 end, end);
	expect_found_and_repaired(msg);
	verify_all(g_work);
}

static void test_wrong_nlink(void **state)
{
	struct dfs_dinode *dip;
	struct img im;
	char msg[128];
	void *ib;

	copy_pristine();
	img_open(&im, g_work);
	ib = img_read_inode(&im, g_ino_small, &dip);
	assert_int_equal(dip->di_nlink, 2);	/* "small" and "d1/link" */
	dip->di_nlink = 5;
	img_write_inode(&im, g_ino_small, ib);
	img_close(&im);
	snprintf(msg, sizeof(msg), "inode %" PRIu64 ": link count 5, but 2 references", g_ino_small);
	expect_found_and_repaired(msg);
	verify_all(g_work);
}

/* A free inode of an allocated chunk, from the inobt (one leaf per AG). */
static uint64_t img_find_free_inode(struct img *im)
{
	uint32_t agno;

	for (agno = 0; agno < im->sb.agcount; agno++) {
		struct dfs_agi *agi = img_read(im, agb(im, agno, DFS_AGI_AGBNO));
		struct dfs_btree_block *leaf = img_read_leaf(im, agi->root);
		struct dfs_inobt_rec *r = (void *)(leaf + 1);
		unsigned i;

		free(agi);
		for (i = 0; i < leaf->numrecs; i++) {
			if (r[i].free) {
				uint32_t agino = r[i].startino + (uint32_t)__builtin_ctzll(r[i].free);
				uint64_t fsbno = agb(im, agno, agino >> im->sb.inopblog);

				free(leaf);
				return (fsbno << im->sb.inopblog) | (agino & (im->sb.inopblock - 1));
			}
		}
		free(leaf);
	}
	fail_msg("no free inode in any chunk");
	return 0;
}

/* Finds the shortform entry name in directory dino. */
static struct dfs_dir_ent *sf_entry(struct dfs_dinode *dip, const char *name)
{
	struct dfs_dir_sf_hdr *sf = (void *)dip->di_fork;
	uint8_t *p = (uint8_t *)(sf + 1);
	unsigned i;

	assert_int_equal(dip->di_format, DFS_DINODE_FMT_LOCAL);
	for (i = 0; i < sf->count; i++) {
		struct dfs_dir_ent *de = (void *)p;

		if (de->namelen == strlen(name) && !memcmp(de->name, name, de->namelen))
			return de;
		p += dfs_dir_ent_size(de->namelen);
	}
	fail_msg("no entry %s", name);
	return NULL;
}

/* "d1/victim" points at a free inode of its chunk; the real victim inode is
 * then an orphan, which repair moves to lost+found with its data. */
static void test_entry_to_free_inode(void **state)
{
	struct dfs_dinode *dip, *fdip;
	struct dfs_dir_ent *de;
	struct dfs_mount *mp;
	struct dfs_stat st;
	uint64_t free_ino;
	struct img im;
	char msg[160], name[32];
	void *ib, *fb;

	copy_pristine();
	img_open(&im, g_work);
	free_ino = img_find_free_inode(&im);
	fb = img_read_inode(&im, free_ino, &fdip);
	assert_int_equal(fdip->di_mode, 0);
	free(fb);
	ib = img_read_inode(&im, g_ino_d1, &dip);
	de = sf_entry(dip, "victim");
	assert_int_equal(de->ino, g_ino_victim);
	de->ino = free_ino;
	img_write_inode(&im, g_ino_d1, ib);
	img_close(&im);
	snprintf(msg, sizeof(msg), "directory %" PRIu64 ": entry 'victim' points to free or invalid inode %" PRIu64,
		 g_ino_d1, free_ino);
	expect_found_and_repaired(msg);

	assert_int_equal(dfs_mount(g_work, NULL, &mp), 0);
	assert_int_equal(dfs_lookup(mp, g_ino_d1, "victim", &st), -ENOENT);
	snprintf(name, sizeof(name), "lost+found/%" PRIu64, g_ino_victim);
	verify_file(mp, name, 5000, 7);
	assert_int_equal(dfs_unmount(mp), 0);
}

static void test_secondary_sb(void **state)
{
	struct dfs_dsb *sb;
	struct img im;
	char msg[128];

	copy_pristine();
	img_open(&im, g_work);
	sb = img_read(&im, agb(&im, 1, DFS_SB_AGBNO));
	sb->label[3] ^= 0x20;
	img_write(&im, agb(&im, 1, DFS_SB_AGBNO), sb, true);
	snprintf(msg, sizeof(msg), "AG 1 superblock %" PRIu64 ": differs from the primary superblock",
		 agb(&im, 1, DFS_SB_AGBNO));
	img_close(&im);
	expect_found_and_repaired(msg);
}

/* Removes a shortform entry, as if its directory had lost it. */
static void sf_remove(struct dfs_dinode *dip, const char *name)
{
	struct dfs_dir_sf_hdr *sf = (void *)dip->di_fork;
	struct dfs_dir_ent *de = sf_entry(dip, name);
	uint32_t sz = dfs_dir_ent_size(de->namelen);
	uint8_t *end = dip->di_fork + dip->di_size;

	memmove(de, (uint8_t *)de + sz, (size_t)(end - ((uint8_t *)de + sz)));
	sf->count--;
	dip->di_size -= sz;
}

/* d1 loses its entry for d2: d2 and what is under it go to lost+found, d1's
 * link count drops by the ".." it no longer has. */
static void test_orphan_directory(void **state)
{
	struct dfs_dinode *dip;
	struct dfs_mount *mp;
	struct dfs_stat st;
	uint64_t d2;
	struct img im;
	char msg[128], path[64];
	void *ib;

	copy_pristine();
	img_open(&im, g_work);
	ib = img_read_inode(&im, g_ino_d1, &dip);
	d2 = sf_entry(dip, "d2")->ino;
	sf_remove(dip, "d2");
	img_write_inode(&im, g_ino_d1, ib);
	img_close(&im);
	snprintf(msg, sizeof(msg), "directory %" PRIu64 ": not reachable from the root", d2);
	expect_found_and_repaired(msg);

	assert_int_equal(dfs_mount(g_work, NULL, &mp), 0);
	snprintf(path, sizeof(path), "lost+found/%" PRIu64 "/deep", d2);
	verify_file(mp, path, 12345, 6);
	assert_int_equal(dfs_getattr(mp, g_ino_d1, &st), 0);
	assert_int_equal(st.nlink, 2);
	assert_int_equal(dfs_lookup(mp, dfs_root_ino(mp), "lost+found", &st), 0);
	assert_int_equal(st.nlink, 3);
	dfs_forget(mp, st.ino, 1);
	assert_int_equal(dfs_unmount(mp), 0);
}

/* A copy taken while mounted, after an fsync: the log holds what the
 * metadata in place does not. */
static void test_dirty_log(void **state)
{
	struct dfs_fsck_result res;
	struct dfs_mount *mp;
	struct dfs_stat st;
	char *out;
	int ret;

	copy_pristine();
	assert_int_equal(dfs_mount(g_work, NULL, &mp), 0);
	assert_int_equal(dfs_mknod(mp, dfs_root_ino(mp), "late", S_IFREG | 0644, 0, &g_cr, &st), 0);
	assert_int_equal(dfs_write(mp, st.ino, "data", 4, 0), 4);
	assert_int_equal(dfs_fsync(mp, st.ino, false), 0);
	dfs_forget(mp, st.ino, 1);
	assert_int_equal(fixture_copy_file(g_work, g_pristine_dirty), 0);
	assert_int_equal(dfs_unmount(mp), 0);

	ret = run_fsck(g_pristine_dirty, false, &res, &out);
	if (ret != 1 || !strstr(out, "the log is dirty"))
		fail_msg("fsck returned %d:\n%s", ret, out);
	free(out);
	ret = run_fsck(g_pristine_dirty, true, &res, &out);
	if (ret != 0)
		fail_msg("repair returned %d:\n%s", ret, out);
	free(out);
	expect_clean(g_pristine_dirty);
	verify_all(g_pristine_dirty);
	assert_int_equal(dfs_mount(g_pristine_dirty, NULL, &mp), 0);
	assert_int_equal(dfs_lookup(mp, dfs_root_ino(mp), "late", &st), 0);
	assert_int_equal(st.size, 4);
	dfs_forget(mp, st.ino, 1);
	assert_int_equal(dfs_unmount(mp), 0);
	unlink(g_pristine_dirty);
}

/* A bad bmbt block: the file is lost (cleared, its name removed, its blocks
 * freed), everything else stays. */
static void test_bmbt_damage(void **state)
{
	struct dfs_mount *mp;
	struct dfs_stat st;
	struct img im;
	uint64_t root;
	uint8_t *b;
	char msg[128];
	size_t i;

	copy_pristine();
	img_open(&im, g_work);
	root = img_fork_block(&im, g_ino_frag1, DFS_DINODE_FMT_BTREE);
	b = img_read(&im, root);
	b[100] ^= 1;
	img_write(&im, root, b, false);
	img_close(&im);
	snprintf(msg, sizeof(msg), "inode %" PRIu64 " bmbt block %" PRIu64 ": CRC mismatch",
		 g_ino_frag1, root);
	expect_found_and_repaired(msg);

	assert_int_equal(dfs_mount(g_work, NULL, &mp), 0);
	assert_int_equal(dfs_lookup(mp, dfs_root_ino(mp), "frag1", &st), -ENOENT);
	for (i = 0; i < sizeof(g_files) / sizeof(g_files[0]); i++)
		verify_file(mp, g_files[i].path, g_files[i].size, g_files[i].seed);
	verify_file(mp, "frag2", 48 * 4096, 101);
	assert_int_equal(dfs_unmount(mp), 0);
}

/* The AGI of AG 0 is unreadable: its inode chunks are found by scanning
 * and the inobt is rebuilt; nothing is lost. */
static void test_agi_damage(void **state)
{
	struct img im;
	uint8_t *b;

	copy_pristine();
	img_open(&im, g_work);
	b = img_read(&im, agb(&im, 0, DFS_AGI_AGBNO));
	b[60] ^= 4;
	img_write(&im, agb(&im, 0, DFS_AGI_AGBNO), b, false);
	img_close(&im);
	expect_found_and_repaired("the inobt must be rebuilt from");
	verify_all(g_work);
}

/* A bad xattr block costs the attributes, not the file. */
static void test_xattr_damage(void **state)
{
	struct dfs_dinode *dip;
	struct dfs_mount *mp;
	uint64_t xblk;
	struct img im;
	char msg[128], buf[16];
	uint8_t *b;
	void *ib;
	size_t i;

	copy_pristine();
	img_open(&im, g_work);
	ib = img_read_inode(&im, g_ino_small, &dip);
	xblk = dip->di_xattr_blk;
	assert_true(xblk != 0);
	free(ib);
	b = img_read(&im, xblk);
	((struct dfs_attr_blk *)b)->count = 7;
	img_write(&im, xblk, b, true);
	img_close(&im);
	snprintf(msg, sizeof(msg), "inode %" PRIu64 " xattr block %" PRIu64 ": 1 entries, header says 7",
		 g_ino_small, xblk);
	expect_found_and_repaired(msg);

	assert_int_equal(dfs_mount(g_work, NULL, &mp), 0);
	assert_true(dfs_getxattr(mp, g_ino_small, "user.a", buf, sizeof(buf)) < 0);
	for (i = 0; i < sizeof(g_files) / sizeof(g_files[0]); i++)
		verify_file(mp, g_files[i].path, g_files[i].size, g_files[i].seed);
	assert_int_equal(dfs_unmount(mp), 0);
}

/* ---- random damage ------------------------------------------------------ */


/*
 * Flips random bits in random metadata blocks (found by a clean fsck's
 * view: every block is either free or owned; metadata is what is not file
 * data). fsck must never crash; after --repair a second check must agree
 * with what the repair reported: clean if it said so.
 */
static void test_random_damage(void **state)
{
	unsigned seed = (unsigned)time(NULL), round;
	const char *env = getenv("FSCK_SEED");

	if (env)
		seed = (unsigned)strtoul(env, NULL, 0);
	srandom(seed);
	for (round = 0; round < 20; round++) {
		struct dfs_fsck_result res, res2;
		struct img im;
		unsigned flips = 1 + (unsigned)(random() % 4), i;
		char *out, *out2;
		int ret, ret2;

		copy_pristine();
		img_open(&im, g_work);
		/* Targets come from the undamaged image: a flip must not steer
		 * the next one to a block address it made up. */
		uint64_t targets[64];
		unsigned ntargets = 0, agno;

		for (agno = 0; agno < im.sb.agcount && ntargets + 6 <= 64 - 7; agno++) {
			struct dfs_agf *agf = img_read_agf(&im, agno);
			struct dfs_agi *agi = img_read(&im, agb(&im, agno, DFS_AGI_AGBNO));

			targets[ntargets++] = agb(&im, agno, DFS_AGF_AGBNO);
			targets[ntargets++] = agb(&im, agno, DFS_AGI_AGBNO);
			targets[ntargets++] = agb(&im, agno, DFS_AGFL_AGBNO);
			targets[ntargets++] = agf->bno_root;
			targets[ntargets++] = agf->cnt_root;
			targets[ntargets++] = agi->root;
			free(agf);
			free(agi);
		}
		targets[ntargets++] = g_ino_victim >> im.sb.inopblog;
		targets[ntargets++] = g_ino_d1 >> im.sb.inopblog;
		targets[ntargets++] = img_fork_block(&im, g_ino_frag1, DFS_DINODE_FMT_BTREE);
		targets[ntargets++] = img_fork_block(&im, g_ino_bigdir, DFS_DINODE_FMT_EXTENTS);
		targets[ntargets++] = img_fork_block(&im, g_ino_longsym, DFS_DINODE_FMT_EXTENTS);
		targets[ntargets++] = img_xattr_block(&im, g_ino_small);
		targets[ntargets++] = im.sb.rootino >> im.sb.inopblog;
		for (i = 0; i < flips; i++) {
			/* AG headers, tree roots and inode blocks of any AG */
			uint64_t fsbno = targets[(unsigned)random() % ntargets];
			bool is_inode = fsbno == (g_ino_victim >> im.sb.inopblog) ||
					fsbno == (g_ino_d1 >> im.sb.inopblog) ||
					fsbno == (im.sb.rootino >> im.sb.inopblog);
			uint8_t *b = img_read(&im, fsbno);
			uint32_t off = (uint32_t)(random() % im.bs);

			b[off] ^= (uint8_t)(1u << (random() % 8));
			/* half of the time, the CRC is made valid: damage that only
			 * cross-checks can find */
			img_write(&im, fsbno, b, random() % 2 && !is_inode);
		}
		img_close(&im);
		ret = run_fsck(g_work, true, &res, &out);
		ret2 = run_fsck(g_work, false, &res2, &out2);
		if (getenv("FSCK_DEBUG"))
			printf("seed %u round %u: repair %d, re-check %d\n%s", seed, round, ret, ret2,
			       out);
		if (ret < 0 || ret2 < 0 || (ret == 0 && ret2 != 0))
			fail_msg("seed %u round %u: repair returned %d, re-check %d:\n%s\n--- re-check:\n%s",
				 seed, round, ret, ret2, out, out2);
		if (ret == 0) {
			/* what fsck calls consistent, the library must mount */
			struct dfs_mount *mp;
			int error = dfs_mount(g_work, NULL, &mp);

			if (error)
				fail_msg("seed %u round %u: repaired image does not mount: %d\n%s", seed,
					 round, error, out);
			assert_int_equal(dfs_unmount(mp), 0);
			expect_clean(g_work);
		}
		free(out);
		free(out2);
	}
}

/* The same on 1 KiB blocks: two inodes per block, 32-block inode chunks,
 * deeper trees. Runs last: it reuses the populate globals. */
static void test_blocksize_1k(void **state)
{
	struct dfs_mkfs_opts mo = { .size = 24u << 20, .blocksize = 1024, .agcount = 2 };
	struct dfs_fsck_result res;
	struct dfs_mount *mp;
	struct dfs_agf *agf;
	struct img im;
	uint8_t *b;
	char *out;

	assert_int_equal(dfs_mkfs(g_work, &mo), 0);
	assert_int_equal(dfs_mount(g_work, NULL, &mp), 0);
	populate(mp);
	assert_int_equal(dfs_unmount(mp), 0);
	assert_int_equal(run_fsck(g_work, false, &res, &out), 0);
	free(out);
	assert_int_equal(res.problems, 0);

	img_open(&im, g_work);
	agf = img_read_agf(&im, 0);
	b = img_read(&im, agf->cnt_root);
	b[80] ^= 2;
	img_write(&im, agf->cnt_root, b, false);
	free(agf);
	img_close(&im);
	expect_found_and_repaired("AG 0 cntbt block");
	verify_all(g_work);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean),
		cmocka_unit_test(test_not_deepfs),
		cmocka_unit_test(test_bnobt_crc),
		cmocka_unit_test(test_cntbt_disagrees),
		cmocka_unit_test(test_used_block_marked_free),
		cmocka_unit_test(test_leaked_block),
		cmocka_unit_test(test_wrong_nlink),
		cmocka_unit_test(test_entry_to_free_inode),
		cmocka_unit_test(test_secondary_sb),
		cmocka_unit_test(test_orphan_directory),
		cmocka_unit_test(test_dirty_log),
		cmocka_unit_test(test_bmbt_damage),
		cmocka_unit_test(test_agi_damage),
		cmocka_unit_test(test_xattr_damage),
		cmocka_unit_test(test_random_damage),
		cmocka_unit_test(test_blocksize_1k),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
