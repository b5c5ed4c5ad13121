// SPDX-License-Identifier: MIT
/*
 * Namespace operations of deepfs.h (fs/namei.c, fs/symlink.c, fs/xattr.c):
 * the rules one by one, then random operations against a model tree with
 * link counts, modes and symlink sizes checked after every step and the
 * whole tree compared after remounts. DFS_TEST_SEED reproduces a run,
 * DFS_TEST_NAMEI_OPS sets the number of random steps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "fs/deepfs.h"
#include "fs/format.h"

static uint64_t rng_state;
static uint32_t test_seed;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}
static uint32_t rndn(uint32_t n)
{
	return (uint32_t)(rnd() % n);
}

static void seed_rng(const char *test)
{
	const char *s = getenv("DFS_TEST_SEED");

	test_seed = s ? (uint32_t)strtoul(s, NULL, 0) : (uint32_t)time(NULL) ^ (uint32_t)getpid();
	rng_state = (((uint64_t)test_seed << 1) | 1) ^ 0x9e3779b97f4a7c15ull;
	fprintf(stderr, "%s: seed %u (DFS_TEST_SEED=%u reproduces)\n", test, test_seed, test_seed);
}

struct tfs {
	char dir[64];
	char img[96];
	struct dfs_mount *mp;
	uint64_t root;
};

static void tfs_make(struct tfs *t, uint32_t blocksize)
{
	struct dfs_mkfs_opts opts = { .size = 64ull << 20, .blocksize = blocksize };

	strcpy(t->dir, "/var/tmp/dfs-test-namei-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->img, sizeof(t->img), "%s/img", t->dir);
	assert_int_equal(dfs_mkfs(t->img, &opts), 0);
	assert_int_equal(dfs_mount(t->img, NULL, &t->mp), 0);
	t->root = dfs_root_ino(t->mp);
}

static void tfs_remount(struct tfs *t)
{
	assert_int_equal(dfs_unmount(t->mp), 0);
	assert_int_equal(dfs_mount(t->img, NULL, &t->mp), 0);
	assert_int_equal(dfs_root_ino(t->mp), t->root);
}

/* Unmounts, and fsck must find the result consistent: link counts, ".."
 * and every block accounted for, seen from outside. */
static void tfs_destroy(struct tfs *t)
{
	struct dfs_fsck_opts fo = { .repair = false };
	struct dfs_fsck_result res;

	assert_int_equal(dfs_unmount(t->mp), 0);
	memset(&res, 0, sizeof(res));
	if (dfs_fsck(t->img, &fo, &res) != 0 || res.problems)
		fail_msg("fsck of %s: %" PRIu64 " problems (seed %u)", t->img, res.problems,
			 test_seed);
	unlink(t->img);
	rmdir(t->dir);
}

static const struct dfs_cred cred = { 1000, 1000 };

/* Name-returning calls take a lookup reference: give it back at once. */
static int do_mkdir(struct tfs *t, uint64_t dir, const char *name, uint64_t *ino)
{
	struct dfs_stat st;
	int error = dfs_mkdir(t->mp, dir, name, 0755, &cred, &st);

	if (!error) {
		dfs_forget(t->mp, st.ino, 1);
		if (ino)
			*ino = st.ino;
	}
	return error;
}

static int do_mknod(struct tfs *t, uint64_t dir, const char *name, uint32_t mode, uint64_t *ino)
{
	struct dfs_stat st;
	int error = dfs_mknod(t->mp, dir, name, mode, 0, &cred, &st);

	if (!error) {
		dfs_forget(t->mp, st.ino, 1);
		if (ino)
			*ino = st.ino;
	}
	return error;
}

static int do_lookup(struct tfs *t, uint64_t dir, const char *name, uint64_t *ino)
{
	struct dfs_stat st;
	int error = dfs_lookup(t->mp, dir, name, &st);

	if (!error) {
		dfs_forget(t->mp, st.ino, 1);
		if (ino)
			*ino = st.ino;
	}
	return error;
}

static uint32_t nlink_of(struct tfs *t, uint64_t ino)
{
	struct dfs_stat st;

	assert_int_equal(dfs_getattr(t->mp, ino, &st), 0);
	return st.nlink;
}

static bool ts_after(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

/* ---- the rules, one by one ------------------------------------------------ */

static void test_namei_dirs(void **state)
{
	struct tfs t;
	uint64_t a = 0, b = 0, c = 0, f = 0, ino = 0;
	struct dfs_stat st, st2;
	int error;

	tfs_make(&t, 4096);
	assert_int_equal(nlink_of(&t, t.root), 2);
	assert_int_equal(dfs_getattr(t.mp, t.root, &st), 0);
	assert_int_equal(st.mode, S_IFDIR | 0755);
	assert_int_equal(do_mkdir(&t, t.root, "a", &a), 0);
	assert_int_equal(do_mkdir(&t, t.root, "a", NULL), -EEXIST);
	assert_int_equal(do_mkdir(&t, t.root, ".", NULL), -EEXIST);
	assert_int_equal(do_mkdir(&t, t.root, "..", NULL), -EEXIST);
	assert_int_equal(do_mkdir(&t, a, "b", &b), 0);
	assert_int_equal(nlink_of(&t, t.root), 3);
	assert_int_equal(nlink_of(&t, a), 3);
	assert_int_equal(nlink_of(&t, b), 2);
	assert_int_equal(do_lookup(&t, b, "..", &ino), 0);
	assert_int_equal(ino, a);
	assert_int_equal(do_lookup(&t, b, ".", &ino), 0);
	assert_int_equal(ino, b);
	assert_int_equal(do_lookup(&t, t.root, "..", &ino), 0);
	assert_int_equal(ino, t.root);
	assert_int_equal(do_mknod(&t, a, "f", S_IFREG | 0644, &f), 0);
	assert_int_equal(do_mkdir(&t, f, "x", NULL), -ENOTDIR);
	assert_int_equal(do_lookup(&t, f, "x", NULL), -ENOTDIR);
	assert_int_equal(do_lookup(&t, a, "nope", NULL), -ENOENT);

	/* parent times move on create */
	assert_int_equal(dfs_getattr(t.mp, a, &st), 0);
	usleep(20000);
	assert_int_equal(do_mknod(&t, a, "g", 0644, NULL), 0);
	assert_int_equal(dfs_getattr(t.mp, a, &st2), 0);
	assert_true(ts_after(&st2.mtime, &st.mtime));
	assert_true(ts_after(&st2.ctime, &st.ctime));
	assert_int_equal(dfs_unlink(t.mp, a, "g"), 0);

	assert_int_equal(dfs_rmdir(t.mp, t.root, "a"), -ENOTEMPTY);
	assert_int_equal(dfs_rmdir(t.mp, a, "f"), -ENOTDIR);
	assert_int_equal(dfs_unlink(t.mp, a, "b"), -EISDIR);
	assert_int_equal(dfs_rmdir(t.mp, a, "."), -EINVAL);
	assert_int_equal(dfs_rmdir(t.mp, a, ".."), -ENOTEMPTY);
	assert_int_equal(dfs_unlink(t.mp, a, "."), -EISDIR);
	assert_int_equal(dfs_rmdir(t.mp, a, "nope"), -ENOENT);
	assert_int_equal(do_mkdir(&t, b, "c", &c), 0);
	assert_int_equal(dfs_rmdir(t.mp, a, "b"), -ENOTEMPTY);
	assert_int_equal(dfs_rmdir(t.mp, b, "c"), 0);
	assert_int_equal(nlink_of(&t, b), 2);
	assert_int_equal(dfs_rmdir(t.mp, a, "b"), 0);
	assert_int_equal(nlink_of(&t, a), 2);
	/* freed: no inode there any more (its chunk may be gone too) */
	error = dfs_getattr(t.mp, b, &st);
	assert_true(error == -ENOENT || error == -EINVAL);
	assert_int_equal(dfs_unlink(t.mp, a, "f"), 0);
	assert_int_equal(dfs_rmdir(t.mp, t.root, "a"), 0);
	assert_int_equal(nlink_of(&t, t.root), 2);

	/* name length */
	{
		char name[300];

		memset(name, 'n', sizeof(name));
		name[255] = '\0';
		assert_int_equal(do_mknod(&t, t.root, name, 0644, NULL), 0);
		assert_int_equal(do_lookup(&t, t.root, name, NULL), 0);
		name[255] = 'n';
		name[256] = '\0';
		assert_int_equal(do_mknod(&t, t.root, name, 0644, NULL), -ENAMETOOLONG);
		assert_int_equal(do_lookup(&t, t.root, name, NULL), -ENAMETOOLONG);
		assert_int_equal(do_mkdir(&t, t.root, name, NULL), -ENAMETOOLONG);
	}
	tfs_destroy(&t);
}

static void test_namei_files(void **state)
{
	struct tfs t;
	uint64_t f = 0, d = 0, ino = 0;
	struct dfs_stat st;
	struct dfs_setattr sa;
	int error;

	tfs_make(&t, 1024);
	assert_int_equal(do_mkdir(&t, t.root, "d", &d), 0);
	assert_int_equal(dfs_mknod(t.mp, t.root, "fifo", S_IFIFO | 0600, 0, &cred, &st), 0);
	dfs_forget(t.mp, st.ino, 1);
	assert_int_equal(st.mode, S_IFIFO | 0600);
	assert_int_equal(st.uid, 1000);
	assert_int_equal(dfs_mknod(t.mp, t.root, "chr", S_IFCHR | 0600, makedev(1, 3), &cred, &st), 0);
	dfs_forget(t.mp, st.ino, 1);
	assert_int_equal(st.rdev, makedev(1, 3));
	assert_int_equal(dfs_mknod(t.mp, t.root, "sock", S_IFSOCK | 0600, 0, &cred, &st), 0);
	dfs_forget(t.mp, st.ino, 1);
	assert_int_equal(dfs_mknod(t.mp, t.root, "dir", S_IFDIR | 0600, 0, &cred, &st), -EPERM);

	/* hard links */
	assert_int_equal(do_mknod(&t, t.root, "f", S_IFREG | 0644, &f), 0);
	assert_int_equal(dfs_link(t.mp, f, d, "f2", &st), 0);
	dfs_forget(t.mp, st.ino, 1);
	assert_int_equal(st.nlink, 2);
	assert_int_equal(dfs_link(t.mp, f, d, "f2", &st), -EEXIST);
	assert_int_equal(dfs_link(t.mp, d, t.root, "d2", &st), -EPERM);
	assert_int_equal(dfs_link(t.mp, f, f, "x", &st), -ENOTDIR);
	assert_int_equal(do_lookup(&t, d, "f2", &ino), 0);
	assert_int_equal(ino, f);
	/* rename onto another name of the same inode: nothing happens */
	assert_int_equal(dfs_rename(t.mp, t.root, "f", d, "f2", 0), 0);
	assert_int_equal(do_lookup(&t, t.root, "f", NULL), 0);
	assert_int_equal(nlink_of(&t, f), 2);
	assert_int_equal(dfs_unlink(t.mp, t.root, "f"), 0);
	assert_int_equal(nlink_of(&t, f), 1);

	/* an open (looked up) file outlives its last name */
	assert_int_equal(dfs_lookup(t.mp, d, "f2", &st), 0);
	assert_int_equal(dfs_unlink(t.mp, d, "f2"), 0);
	assert_int_equal(dfs_getattr(t.mp, f, &st), 0);
	assert_int_equal(st.nlink, 0);
	assert_int_equal(dfs_link(t.mp, f, d, "back", &st), -ENOENT);
	dfs_forget(t.mp, f, 1);
	error = dfs_getattr(t.mp, f, &st);
	assert_true(error == -ENOENT || error == -EINVAL);

	/* setattr */
	assert_int_equal(do_mknod(&t, t.root, "s", S_IFREG | 0644, &f), 0);
	memset(&sa, 0, sizeof(sa));
	sa.valid = DFS_SET_MODE | DFS_SET_UID | DFS_SET_GID | DFS_SET_MTIME | DFS_SET_ATIME;
	sa.mode = 04711;
	sa.uid = 5;
	sa.gid = 6;
	sa.mtime.tv_sec = 1000000;
	sa.mtime.tv_nsec = 5;
	sa.atime.tv_sec = 2000000;
	assert_int_equal(dfs_setattr(t.mp, f, &sa, &st), 0);
	assert_int_equal(st.mode, S_IFREG | 04711);
	assert_int_equal(st.uid, 5);
	assert_int_equal(st.gid, 6);
	assert_int_equal(st.mtime.tv_sec, 1000000);
	assert_int_equal(st.mtime.tv_nsec, 5);
	assert_int_equal(st.atime.tv_sec, 2000000);
	sa.valid = DFS_SET_SIZE;
	sa.size = 12345;
	assert_int_equal(dfs_setattr(t.mp, f, &sa, &st), 0);
	assert_int_equal(st.size, 12345);
	assert_int_equal(dfs_setattr(t.mp, d, &sa, &st), -EISDIR);
	tfs_remount(&t);
	assert_int_equal(dfs_getattr(t.mp, f, &st), 0);
	assert_int_equal(st.mode, S_IFREG | 04711);
	assert_int_equal(st.uid, 5);
	assert_int_equal(st.size, 12345);
	assert_true(st.mtime.tv_sec > 1000000);	/* the size change moved it */

	/* setgid directories hand down their group */
	sa.valid = DFS_SET_MODE | DFS_SET_GID;
	sa.mode = 02775;
	sa.gid = 77;
	assert_int_equal(dfs_setattr(t.mp, d, &sa, &st), 0);
	assert_int_equal(dfs_mkdir(t.mp, d, "sub", 0700, &cred, &st), 0);
	dfs_forget(t.mp, st.ino, 1);
	assert_int_equal(st.gid, 77);
	assert_int_equal(st.mode, S_IFDIR | 02700);
	tfs_destroy(&t);
}

static void test_namei_symlinks(void **state)
{
	static char target[DFS_MAXPATHLEN + 8], buf[DFS_MAXPATHLEN + 8];
	struct tfs t;
	struct dfs_stat st;
	size_t lens[] = { 1, 100, 344, 345, 1000, 1024, 3000, 4095 };
	unsigned i;
	uint64_t inos[8];

	tfs_make(&t, 1024);
	for (i = 0; i < sizeof(target); i++)
		target[i] = (char)('a' + i % 26);
	for (i = 0; i < 8; i++) {
		char name[16];

		snprintf(name, sizeof(name), "l%u", i);
		target[lens[i]] = '\0';
		assert_int_equal(dfs_symlink(t.mp, t.root, name, target, &cred, &st), 0);
		dfs_forget(t.mp, st.ino, 1);
		inos[i] = st.ino;
		target[lens[i]] = (char)('a' + lens[i] % 26);
		assert_int_equal(st.size, lens[i]);
		assert_int_equal(st.mode, S_IFLNK | 0777);
	}
	target[4096] = '\0';
	assert_int_equal(dfs_symlink(t.mp, t.root, "big", target, &cred, &st), -ENAMETOOLONG);
	assert_int_equal(dfs_symlink(t.mp, t.root, "empty", "", &cred, &st), -ENOENT);
	for (int pass = 0; pass < 2; pass++) {
		for (i = 0; i < 8; i++) {
			memset(buf, 0, sizeof(buf));
			assert_int_equal(dfs_readlink(t.mp, inos[i], buf, sizeof(buf)), lens[i]);
			assert_memory_equal(buf, target, lens[i]);
			assert_int_equal(buf[lens[i]], '\0');
			/* short buffer: the length, and what fits */
			memset(buf, 0, sizeof(buf));
			assert_int_equal(dfs_readlink(t.mp, inos[i], buf, 10), lens[i]);
			assert_memory_equal(buf, target, lens[i] < 10 ? lens[i] : 10);
		}
		tfs_remount(&t);
	}
	assert_int_equal(dfs_readlink(t.mp, t.root, buf, sizeof(buf)), -EINVAL);
	/* freeing a long symlink gives its blocks back */
	{
		struct dfs_statfs before, after;

		assert_int_equal(dfs_statfs(t.mp, &before), 0);
		assert_int_equal(dfs_unlink(t.mp, t.root, "l7"), 0);
		assert_int_equal(dfs_statfs(t.mp, &after), 0);
		assert_true(after.bfree >= before.bfree + 4);
	}
	tfs_destroy(&t);
}

static void test_namei_rename(void **state)
{
	struct tfs t;
	uint64_t a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, ino = 0;

	tfs_make(&t, 4096);
	assert_int_equal(do_mkdir(&t, t.root, "a", &a), 0);
	assert_int_equal(do_mkdir(&t, a, "b", &b), 0);
	assert_int_equal(do_mkdir(&t, b, "c", &c), 0);
	assert_int_equal(do_mkdir(&t, t.root, "d", &d), 0);
	assert_int_equal(do_mkdir(&t, d, "e", &e), 0);
	assert_int_equal(do_mknod(&t, t.root, "f", 0644, &f), 0);
	assert_int_equal(do_mknod(&t, d, "g", 0644, &g), 0);

	assert_int_equal(dfs_rename(t.mp, t.root, "a", c, "x", 0), -EINVAL);
	assert_int_equal(dfs_rename(t.mp, t.root, "a", a, "x", 0), -EINVAL);
	assert_int_equal(dfs_rename(t.mp, a, "b", b, "x", 0), -EINVAL);
	assert_int_equal(dfs_rename(t.mp, b, "c", t.root, "a", 0), -ENOTEMPTY);
	assert_int_equal(dfs_rename(t.mp, t.root, "nope", d, "x", 0), -ENOENT);
	assert_int_equal(dfs_rename(t.mp, t.root, "f", d, "e", 0), -EISDIR);
	assert_int_equal(dfs_rename(t.mp, d, "e", t.root, "f", 0), -ENOTDIR);
	assert_int_equal(dfs_rename(t.mp, t.root, "a", t.root, "d", 0), -ENOTEMPTY);
	assert_int_equal(dfs_rename(t.mp, t.root, "f", d, "g", DFS_RENAME_NOREPLACE), -EEXIST);
	assert_int_equal(dfs_rename(t.mp, t.root, "f", d, "zz", DFS_RENAME_EXCHANGE), -ENOENT);
	assert_int_equal(dfs_rename(t.mp, t.root, "f", d, "g", 3), -EINVAL);
	assert_int_equal(dfs_rename(t.mp, t.root, ".", d, "g", 0), -EBUSY);
	assert_int_equal(dfs_rename(t.mp, t.root, "f", d, "..", 0), -EBUSY);
	assert_int_equal(dfs_rename(t.mp, t.root, "f", t.root, "f", 0), 0);

	/* a directory across parents: link counts and ".." follow */
	assert_int_equal(dfs_rename(t.mp, a, "b", d, "b", 0), 0);
	assert_int_equal(nlink_of(&t, a), 2);
	assert_int_equal(nlink_of(&t, d), 4);
	assert_int_equal(do_lookup(&t, b, "..", &ino), 0);
	assert_int_equal(ino, d);
	assert_int_equal(do_lookup(&t, a, "b", NULL), -ENOENT);

	/* over an empty directory: it goes, its parent loses its link */
	assert_int_equal(dfs_rename(t.mp, d, "e", d, "b", 0), -ENOTEMPTY);
	assert_int_equal(dfs_rename(t.mp, b, "c", d, "e", 0), 0);
	assert_int_equal(nlink_of(&t, b), 2);
	assert_int_equal(nlink_of(&t, d), 4);
	assert_int_equal(do_lookup(&t, d, "e", &ino), 0);
	assert_int_equal(ino, c);
	assert_int_equal(do_lookup(&t, c, "..", &ino), 0);
	assert_int_equal(ino, d);
	{
		int error = dfs_getattr(t.mp, e, &(struct dfs_stat){ 0 });

		assert_true(error == -ENOENT || error == -EINVAL);
	}

	/* over a file: it loses the link */
	assert_int_equal(dfs_link(t.mp, g, t.root, "g2", &(struct dfs_stat){ 0 }), 0);
	dfs_forget(t.mp, g, 1);
	assert_int_equal(nlink_of(&t, g), 2);
	assert_int_equal(dfs_rename(t.mp, t.root, "f", d, "g", 0), 0);
	assert_int_equal(nlink_of(&t, g), 1);
	assert_int_equal(do_lookup(&t, d, "g", &ino), 0);
	assert_int_equal(ino, f);

	/* exchange a file and a directory across parents */
	assert_int_equal(dfs_rename(t.mp, d, "g", t.root, "a", DFS_RENAME_EXCHANGE), 0);
	assert_int_equal(do_lookup(&t, d, "g", &ino), 0);
	assert_int_equal(ino, a);
	assert_int_equal(do_lookup(&t, t.root, "a", &ino), 0);
	assert_int_equal(ino, f);
	assert_int_equal(do_lookup(&t, a, "..", &ino), 0);
	assert_int_equal(ino, d);
	assert_int_equal(nlink_of(&t, t.root), 3);	/* d only */
	assert_int_equal(nlink_of(&t, d), 5);		/* b, e(c), g(a) */
	/* exchange a directory with its own ancestor: refused */
	assert_int_equal(dfs_rename(t.mp, d, "b", t.root, "d", DFS_RENAME_EXCHANGE), -EINVAL);
	assert_int_equal(dfs_rename(t.mp, t.root, "d", d, "b", DFS_RENAME_EXCHANGE), -EINVAL);
	tfs_remount(&t);
	assert_int_equal(nlink_of(&t, d), 5);
	assert_int_equal(do_lookup(&t, a, "..", &ino), 0);
	assert_int_equal(ino, d);
	tfs_destroy(&t);
}

static void test_namei_xattr(void **state)
{
	struct tfs t;
	uint64_t f = 0;
	char buf[8192], list[512];
	static char big[70000];

	tfs_make(&t, 4096);
	assert_int_equal(do_mknod(&t, t.root, "f", 0644, &f), 0);
	assert_int_equal(dfs_getxattr(t.mp, f, "user.a", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(dfs_listxattr(t.mp, f, list, sizeof(list)), 0);
	assert_int_equal(dfs_setxattr(t.mp, f, "user.a", "hello", 5, DFS_XATTR_REPLACE), -ENODATA);
	assert_int_equal(dfs_setxattr(t.mp, f, "user.a", "hello", 5, DFS_XATTR_CREATE), 0);
	assert_int_equal(dfs_setxattr(t.mp, f, "user.a", "x", 1, DFS_XATTR_CREATE), -EEXIST);
	assert_int_equal(dfs_setxattr(t.mp, f, "trusted.t", "", 0, 0), 0);
	assert_int_equal(dfs_setxattr(t.mp, f, "system.posix_acl_access", "\2\0\0\0", 4, 0), 0);
	assert_int_equal(dfs_setxattr(t.mp, f, "security.selinux", "ctx", 3, 0), 0);
	assert_int_equal(dfs_getxattr(t.mp, f, "user.a", NULL, 0), 5);
	assert_int_equal(dfs_getxattr(t.mp, f, "user.a", buf, 2), -ERANGE);
	assert_int_equal(dfs_getxattr(t.mp, f, "user.a", buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(dfs_getxattr(t.mp, f, "trusted.t", buf, sizeof(buf)), 0);
	assert_int_equal(dfs_setxattr(t.mp, f, "user.a", "bye", 3, DFS_XATTR_REPLACE), 0);
	assert_int_equal(dfs_getxattr(t.mp, f, "user.a", buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "bye", 3);
	{
		static const char want[] = "security.selinux\0system.posix_acl_access\0trusted.t\0user.a";

		assert_int_equal(dfs_listxattr(t.mp, f, NULL, 0), sizeof(want));
		assert_int_equal(dfs_listxattr(t.mp, f, list, 5), -ERANGE);
		assert_int_equal(dfs_listxattr(t.mp, f, list, sizeof(list)), sizeof(want));
		assert_memory_equal(list, want, sizeof(want));
	}
	assert_int_equal(dfs_setxattr(t.mp, f, "user.big", big, 5000, 0), -ENOSPC);
	assert_int_equal(dfs_setxattr(t.mp, f, "user.big", big, sizeof(big), 0), -E2BIG);
	memset(big, 'z', 300);
	big[256] = '\0';
	assert_int_equal(dfs_setxattr(t.mp, f, big, "v", 1, 0), -ERANGE);
	assert_int_equal(dfs_setxattr(t.mp, f, "", "v", 1, 0), -ERANGE);
	/* fill the block */
	{
		int i, error = 0;

		for (i = 0; i < 100 && !error; i++) {
			char name[32];

			snprintf(name, sizeof(name), "user.fill%d", i);
			error = dfs_setxattr(t.mp, f, name, big, 200, 0);
		}
		assert_int_equal(error, -ENOSPC);
		assert_true(i > 10);
	}
	assert_int_equal(dfs_removexattr(t.mp, f, "user.nope"), -ENODATA);
	assert_int_equal(dfs_removexattr(t.mp, f, "user.a"), 0);
	assert_int_equal(dfs_getxattr(t.mp, f, "user.a", buf, sizeof(buf)), -ENODATA);
	tfs_remount(&t);
	assert_int_equal(dfs_getxattr(t.mp, f, "security.selinux", buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "ctx", 3);
	assert_int_equal(dfs_getxattr(t.mp, f, "user.fill3", buf, sizeof(buf)), 200);
	/* removing them all frees the block; freeing the inode too */
	{
		struct dfs_statfs s1, s2;
		ssize_t n = dfs_listxattr(t.mp, f, list, sizeof(list));
		char *p;

		assert_true(n > 0);
		assert_int_equal(dfs_statfs(t.mp, &s1), 0);
		for (p = list; p < list + n; p += strlen(p) + 1)
			assert_int_equal(dfs_removexattr(t.mp, f, p), 0);
		assert_int_equal(dfs_listxattr(t.mp, f, list, sizeof(list)), 0);
		assert_int_equal(dfs_statfs(t.mp, &s2), 0);
		assert_int_equal(s2.bfree, s1.bfree + 1);
		assert_int_equal(dfs_setxattr(t.mp, f, "user.again", "1", 1, 0), 0);
		assert_int_equal(dfs_unlink(t.mp, t.root, "f"), 0);
		assert_int_equal(dfs_statfs(t.mp, &s1), 0);
		assert_true(s1.bfree >= s2.bfree);
	}
	tfs_destroy(&t);
}

/* Threads at once: every entry point takes the filesystem lock. Each thread
 * works in its own directory and also lists and renames in the shared root. */
struct worker {
	struct tfs *t;
	int id;
	uint64_t dir;
	int error;
};

static int noop_fill(void *ctx, const char *name, size_t namelen, uint64_t ino, uint32_t mode,
		     uint64_t next)
{
	return 0;
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct dfs_mount *mp = w->t->mp;
	struct dfs_stat st;
	char name[32], name2[32];
	int i, error;

	for (i = 0; i < 300 && !w->error; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		error = dfs_mknod(mp, w->dir, name, S_IFREG | 0600, 0, &cred, &st);
		if (!error) {
			dfs_forget(mp, st.ino, 1);
			error = dfs_setxattr(mp, st.ino, "user.w", &w->id, sizeof(w->id), 0);
		}
		if (!error && i % 3 == 0)
			error = dfs_unlink(mp, w->dir, name);
		if (!error && i % 10 == 0)
			error = dfs_readdir(mp, w->t->root, 0, noop_fill, NULL);
		if (!error && i % 7 == 0) {
			snprintf(name2, sizeof(name2), "w%d", w->id);
			error = dfs_rename(mp, w->t->root, name2, w->t->root, name2, 0);
		}
		w->error = error;
	}
	return NULL;
}

static void test_namei_threads(void **state)
{
	struct tfs t;
	struct worker w[4];
	pthread_t th[4];
	int i;

	tfs_make(&t, 4096);
	for (i = 0; i < 4; i++) {
		char name[16];

		snprintf(name, sizeof(name), "w%d", i);
		w[i] = (struct worker){ .t = &t, .id = i };
		assert_int_equal(do_mkdir(&t, t.root, name, &w[i].dir), 0);
	}
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].error, 0);
		assert_int_equal(nlink_of(&t, w[i].dir), 2);
	}
	tfs_remount(&t);
	for (i = 0; i < 4; i++) {
		uint64_t ino = 0;
		int id = -1;

		assert_int_equal(do_lookup(&t, w[i].dir, "f1", &ino), 0);
		assert_int_equal(dfs_getxattr(t.mp, ino, "user.w", &id, sizeof(id)), sizeof(id));
		assert_int_equal(id, i);
		assert_int_equal(do_lookup(&t, w[i].dir, "f0", NULL), -ENOENT);
	}
	tfs_destroy(&t);
}

/* ---- random operations against a model tree ----------------------------- */

enum { T_REG, T_DIR, T_LNK, T_FIFO };

#define MAXNODES	4096
#define MAXENTS		8192
#define MAXX		6

struct mnode {
	bool live;
	int type;
	uint64_t ino;
	int parent;		/* directories */
	char *target;
	size_t tlen;
	int nx;
	struct {
		char name[40];
		uint8_t val[64];
		int vlen;
	} x[MAXX];
};
struct ment {
	bool used;
	int dir;
	int node;
	char name[256];
};
struct mtree {
	struct mnode n[MAXNODES];
	struct ment e[MAXENTS];
	int nn;
};

static int m_find(struct mtree *m, int dir, const char *name)
{
	int i;

	for (i = 0; i < MAXENTS; i++)
		if (m->e[i].used && m->e[i].dir == dir && !strcmp(m->e[i].name, name))
			return i;
	return -1;
}

static int m_children(struct mtree *m, int dir)
{
	int i, c = 0;

	for (i = 0; i < MAXENTS; i++)
		c += m->e[i].used && m->e[i].dir == dir;
	return c;
}

static uint32_t m_nlink(struct mtree *m, int node)
{
	int i;
	uint32_t c = 0;

	if (m->n[node].type == T_DIR) {
		for (i = 0; i < MAXENTS; i++)
			c += m->e[i].used && m->e[i].dir == node && m->n[m->e[i].node].type == T_DIR;
		return c + 2;
	}
	for (i = 0; i < MAXENTS; i++)
		c += m->e[i].used && m->e[i].node == node;
	return c;
}

/* Is d inside the subtree of directory a (or a itself)? */
static bool m_ancestor(struct mtree *m, int a, int d)
{
	for (;;) {
		if (d == a)
			return true;
		if (d == 0)
			return false;
		d = m->n[d].parent;
	}
}

static int m_add_ent(struct mtree *m, int dir, const char *name, int node)
{
	int i;

	for (i = 0; i < MAXENTS; i++)
		if (!m->e[i].used)
			break;
	assert_true(i < MAXENTS);
	m->e[i].used = true;
	m->e[i].dir = dir;
	m->e[i].node = node;
	snprintf(m->e[i].name, sizeof(m->e[i].name), "%s", name);
	return i;
}

static void m_drop_ent(struct mtree *m, int ent)
{
	int node = m->e[ent].node;

	m->e[ent].used = false;
	if (m->n[node].type == T_DIR || m_nlink(m, node) == 0) {
		m->n[node].live = false;
		free(m->n[node].target);
		m->n[node].target = NULL;
	}
}

static int m_new_node(struct mtree *m, int type, uint64_t ino)
{
	int i;

	for (i = 1; i < m->nn; i++)
		if (!m->n[i].live)
			break;
	if (i == m->nn)
		m->nn++;
	assert_true(i < MAXNODES);
	memset(&m->n[i], 0, sizeof(m->n[i]));
	m->n[i].live = true;
	m->n[i].type = type;
	m->n[i].ino = ino;
	return i;
}

static int m_random_node(struct mtree *m, int type)
{
	int tries;

	for (tries = 0; tries < 200; tries++) {
		int i = (int)rndn((uint32_t)m->nn);

		if (m->n[i].live && (type < 0 || m->n[i].type == type))
			return i;
	}
	return type == T_DIR || type < 0 ? 0 : -1;
}

static int m_random_ent(struct mtree *m)
{
	int tries;

	for (tries = 0; tries < 200; tries++) {
		int i = (int)rndn(MAXENTS / 8);

		if (m->e[i].used)
			return i;
	}
	return -1;
}

static void random_name(char *buf)
{
	if (rndn(50) == 0) {
		memset(buf, 'L', 255);
		buf[0] = (char)('a' + rndn(3));
		buf[255] = '\0';
	} else {
		sprintf(buf, "n%u", rndn(24));
	}
}

static void check_node(struct tfs *t, struct mtree *m, int i)
{
	struct dfs_stat st;
	static const uint32_t fmt[] = { S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO };

	if (!m->n[i].live)
		return;
	assert_int_equal(dfs_getattr(t->mp, m->n[i].ino, &st), 0);
	if (st.nlink != m_nlink(m, i))
		fail_msg("node %d ino %" PRIu64 ": nlink %u, model %u (seed %u)", i, m->n[i].ino,
			 st.nlink, m_nlink(m, i), test_seed);
	assert_int_equal(st.mode & S_IFMT, fmt[m->n[i].type]);
	if (m->n[i].type == T_LNK)
		assert_int_equal(st.size, m->n[i].tlen);
}

struct rdctx {
	int n;
	bool refused;
	char names[600][256];
	uint64_t inos[600];
	uint64_t next[600];	/* the cookie to resume after each */
};

static int rd_fill(void *ctx, const char *name, size_t namelen, uint64_t ino, uint32_t mode,
		   uint64_t next)
{
	struct rdctx *rc = ctx;

	if (rc->n == 600 || rndn(50) == 0) {
		rc->refused = true;
		return 1;
	}
	memcpy(rc->names[rc->n], name, namelen);
	rc->names[rc->n][namelen] = '\0';
	rc->inos[rc->n] = ino;
	rc->next[rc->n] = next;
	(void)mode;
	rc->n++;
	return 0;
}

/* Everything below dir, as the model says, through readdir, lookup,
 * readlink and the xattr calls. */
static void compare_dir(struct tfs *t, struct mtree *m, int dir)
{
	static struct rdctx rc;
	uint64_t cookie = 0;
	int seen = 0, i;
	char buf[DFS_MAXPATHLEN];

	for (;;) {
		int k, got;

		/* rd_fill refuses at random, as a full FUSE buffer does */
		do {
			rc.n = 0;
			rc.refused = false;
			assert_int_equal(dfs_readdir(t->mp, m->n[dir].ino, cookie, rd_fill, &rc), 0);
		} while (rc.n == 0 && rc.refused);
		got = rc.n;
		if (got == 0)
			break;
		for (k = 0; k < got; k++) {
			const char *name = rc.names[k];
			int e;

			if (!strcmp(name, ".")) {
				assert_int_equal(rc.inos[k], m->n[dir].ino);
				continue;
			}
			if (!strcmp(name, "..")) {
				assert_int_equal(rc.inos[k], m->n[m->n[dir].parent].ino);
				continue;
			}
			e = m_find(m, dir, name);
			if (e < 0)
				fail_msg("readdir of node %d returned \"%.40s\", not in the model (seed %u)",
					 dir, name, test_seed);
			assert_int_equal(rc.inos[k], m->n[m->e[e].node].ino);
			seen++;
		}
		cookie = rc.next[got - 1];
	}
	assert_int_equal(seen, m_children(m, dir));
	for (i = 0; i < MAXENTS; i++) {
		struct mnode *n;
		int x;

		if (!m->e[i].used || m->e[i].dir != dir)
			continue;
		n = &m->n[m->e[i].node];
		check_node(t, m, m->e[i].node);
		if (n->type == T_DIR)
			compare_dir(t, m, m->e[i].node);
		if (n->type == T_LNK) {
			assert_int_equal(dfs_readlink(t->mp, n->ino, buf, sizeof(buf)), n->tlen);
			assert_memory_equal(buf, n->target, n->tlen);
		}
		for (x = 0; x < n->nx; x++) {
			uint8_t val[64];

			assert_int_equal(dfs_getxattr(t->mp, n->ino, n->x[x].name, val, sizeof(val)),
					 n->x[x].vlen);
			assert_memory_equal(val, n->x[x].val, n->x[x].vlen);
		}
		{
			char list[512];
			ssize_t len = dfs_listxattr(t->mp, n->ino, list, sizeof(list));
			int cnt = 0;
			char *p;

			assert_true(len >= 0);
			for (p = list; p < list + len; p += strlen(p) + 1)
				cnt++;
			assert_int_equal(cnt, n->nx);
		}
	}
}

static int m_xfind(struct mnode *n, const char *name)
{
	int i;

	for (i = 0; i < n->nx; i++)
		if (!strcmp(n->x[i].name, name))
			return i;
	return -1;
}

static const char *const xnames[] = {
	"user.a", "user.bb", "trusted.overlay.opaque", "security.selinux",
	"system.posix_acl_access", "user.zzzzzzzzzzzzzzz",
};

/* Successes and refusals per kind, to see that the mix is worth running. */
enum { S_CREATE, S_LINK, S_REMOVE, S_RENAME, S_XCHG, S_XATTR, S_LOOKUP, S_NR };
static const char *const stat_names[S_NR] = {
	"create", "link", "unlink/rmdir", "rename", "exchange", "xattr", "lookup",
};
static uint32_t stat_ok[S_NR], stat_err[S_NR];

static void count(int kind, int error)
{
	if (error)
		stat_err[kind]++;
	else
		stat_ok[kind]++;
}

/* One random operation; returns the node touched (for checks) or -1. */
static int random_op(struct tfs *t, struct mtree *m, int *touched2)
{
	char name[256], name2[256];
	struct dfs_stat st;
	int op = (int)rndn(100), dir, e, node, want, got;

	*touched2 = -1;
	random_name(name);
	dir = m_random_node(m, T_DIR);
	if (op < 25) {		/* mknod, mkdir, symlink */
		int type = op < 10 ? T_REG : op < 14 ? T_FIFO : op < 20 ? T_DIR : T_LNK;
		static char target[DFS_MAXPATHLEN];
		size_t tlen = 0;

		want = m_find(m, dir, name) >= 0 ? -EEXIST : 0;
		if (type == T_DIR) {
			got = dfs_mkdir(t->mp, m->n[dir].ino, name, 0700, &cred, &st);
		} else if (type == T_LNK) {
			size_t i;

			tlen = rndn(3) ? 1 + rndn(400) : 345 + rndn(DFS_MAXPATHLEN - 346);
			for (i = 0; i < tlen; i++)
				target[i] = (char)('!' + rndn(90));
			target[tlen] = '\0';
			got = dfs_symlink(t->mp, m->n[dir].ino, name, target, &cred, &st);
		} else {
			got = dfs_mknod(t->mp, m->n[dir].ino, name,
					(type == T_FIFO ? S_IFIFO : S_IFREG) | 0640, 0, &cred, &st);
		}
		assert_int_equal(got, want);
		count(S_CREATE, got);
		if (got)
			return dir;
		dfs_forget(t->mp, st.ino, 1);
		node = m_new_node(m, type, st.ino);
		m->n[node].parent = dir;
		if (type == T_LNK) {
			m->n[node].target = malloc(tlen);
			memcpy(m->n[node].target, target, tlen);
			m->n[node].tlen = tlen;
		}
		m_add_ent(m, dir, name, node);
		*touched2 = node;
		return dir;
	}
	if (op < 35) {		/* link */
		node = m_random_node(m, -1);
		want = m->n[node].type == T_DIR ? -EPERM : m_find(m, dir, name) >= 0 ? -EEXIST : 0;
		got = dfs_link(t->mp, m->n[node].ino, m->n[dir].ino, name, &st);
		assert_int_equal(got, want);
		count(S_LINK, got);
		if (!got) {
			dfs_forget(t->mp, st.ino, 1);
			m_add_ent(m, dir, name, node);
		}
		*touched2 = node;
		return dir;
	}
	if (op < 50) {		/* unlink, rmdir */
		e = m_random_ent(m);
		if (e < 0)
			return -1;
		node = m->e[e].node;
		dir = m->e[e].dir;
		if (rndn(2)) {
			want = m->n[node].type == T_DIR ? -EISDIR : 0;
			got = dfs_unlink(t->mp, m->n[dir].ino, m->e[e].name);
		} else {
			want = m->n[node].type != T_DIR ? -ENOTDIR :
			       m_children(m, node) ? -ENOTEMPTY : 0;
			got = dfs_rmdir(t->mp, m->n[dir].ino, m->e[e].name);
		}
		assert_int_equal(got, want);
		count(S_REMOVE, got);
		if (!got)
			m_drop_ent(m, e);
		*touched2 = node;
		return dir;
	}
	if (op < 80) {		/* rename */
		static const unsigned flagset[] = { 0, 0, DFS_RENAME_NOREPLACE, DFS_RENAME_EXCHANGE };
		unsigned flags = flagset[rndn(4)];
		int odir, ndir = dir, s, te, tn;
		bool sdir, tdir;

		e = m_random_ent(m);
		if (e < 0)
			return -1;
		odir = m->e[e].dir;
		s = m->e[e].node;
		snprintf(name2, sizeof(name2), "%s", m->e[e].name);
		te = m_find(m, ndir, name);
		tn = te >= 0 ? m->e[te].node : -1;
		sdir = m->n[s].type == T_DIR;
		tdir = tn >= 0 && m->n[tn].type == T_DIR;
		if (tn == s)
			want = flags & DFS_RENAME_NOREPLACE ? -EEXIST : 0;
		else if ((flags & DFS_RENAME_EXCHANGE) && te < 0)
			want = -ENOENT;
		else if ((flags & DFS_RENAME_NOREPLACE) && te >= 0)
			want = -EEXIST;
		else if (odir != ndir && sdir && m_ancestor(m, s, ndir))
			want = -EINVAL;
		else if (odir != ndir && tdir && m_ancestor(m, tn, odir))
			want = flags & DFS_RENAME_EXCHANGE ? -EINVAL : -ENOTEMPTY;
		else if (!(flags & DFS_RENAME_EXCHANGE) && te >= 0 && sdir && !tdir)
			want = -ENOTDIR;
		else if (!(flags & DFS_RENAME_EXCHANGE) && te >= 0 && !sdir && tdir)
			want = -EISDIR;
		else if (!(flags & DFS_RENAME_EXCHANGE) && tdir && m_children(m, tn))
			want = -ENOTEMPTY;
		else
			want = 0;
		got = dfs_rename(t->mp, m->n[odir].ino, name2, m->n[ndir].ino, name, flags);
		if (got != want)
			fail_msg("rename %d/%s -> %d/%.40s flags %u: %d, model says %d (seed %u)",
				 odir, name2, ndir, name, flags, got, want, test_seed);
		count(flags & DFS_RENAME_EXCHANGE ? S_XCHG : S_RENAME, got);
		if (got || tn == s)
			return odir;
		if (flags & DFS_RENAME_EXCHANGE) {
			m->e[e].node = tn;
			m->e[te].node = s;
			if (sdir)
				m->n[s].parent = ndir;
			if (tdir)
				m->n[tn].parent = odir;
		} else {
			if (te >= 0)
				m_drop_ent(m, te);
			m->e[e].dir = ndir;
			snprintf(m->e[e].name, sizeof(m->e[e].name), "%s", name);
			if (sdir)
				m->n[s].parent = ndir;
		}
		*touched2 = ndir;
		if (tn >= 0 && m->n[tn].live)
			check_node(t, m, tn);
		check_node(t, m, s);
		return odir;
	}
	if (op < 95) {		/* setxattr, removexattr */
		struct mnode *n;
		const char *xn = xnames[rndn(6)];
		int xi, flags = (int)rndn(3);

		node = m_random_node(m, -1);
		n = &m->n[node];
		xi = m_xfind(n, xn);
		if (rndn(3)) {
			uint8_t val[64];
			int vlen = (int)rndn(65), i;

			for (i = 0; i < vlen; i++)
				val[i] = (uint8_t)rnd();
			want = flags == DFS_XATTR_CREATE && xi >= 0 ? -EEXIST :
			       flags == DFS_XATTR_REPLACE && xi < 0 ? -ENODATA : 0;
			got = dfs_setxattr(t->mp, n->ino, xn, val, (size_t)vlen, flags);
			assert_int_equal(got, want);
			count(S_XATTR, got);
			if (!got) {
				if (xi < 0)
					xi = n->nx++;
				snprintf(n->x[xi].name, sizeof(n->x[xi].name), "%s", xn);
				memcpy(n->x[xi].val, val, (size_t)vlen);
				n->x[xi].vlen = vlen;
			}
		} else {
			want = xi < 0 ? -ENODATA : 0;
			assert_int_equal(dfs_removexattr(t->mp, n->ino, xn), want);
			if (!want)
				n->x[xi] = n->x[--n->nx];
		}
		return node;
	}
	/* lookup */
	e = m_find(m, dir, name);
	{
		uint64_t ino;

		got = do_lookup(t, m->n[dir].ino, name, &ino);
		count(S_LOOKUP, got);
		assert_int_equal(got, e >= 0 ? 0 : -ENOENT);
		if (!got)
			assert_int_equal(ino, m->n[m->e[e].node].ino);
	}
	return dir;
}

static void test_namei_random(void **state)
{
	const char *s = getenv("DFS_TEST_NAMEI_OPS");
	uint32_t ops = s ? (uint32_t)strtoul(s, NULL, 0) : 6000, i;
	struct mtree *m = calloc(1, sizeof(*m));
	struct tfs t;

	seed_rng("test_namei_random");
	assert_non_null(m);
	tfs_make(&t, rndn(2) ? 1024 : 4096);
	m->nn = 1;
	m->n[0].live = true;
	m->n[0].type = T_DIR;
	m->n[0].ino = t.root;
	m->n[0].parent = 0;
	for (i = 0; i < ops; i++) {
		int t2, n1 = random_op(&t, m, &t2);

		if (n1 >= 0)
			check_node(&t, m, n1);
		if (t2 >= 0)
			check_node(&t, m, t2);
		check_node(&t, m, m_random_node(m, -1));
		check_node(&t, m, 0);
		if (i % 1000 == 999) {
			compare_dir(&t, m, 0);
			if (i % 3000 == 2999) {
				tfs_remount(&t);
				compare_dir(&t, m, 0);
			}
		}
	}
	compare_dir(&t, m, 0);
	tfs_remount(&t);
	compare_dir(&t, m, 0);
	for (i = 0; i < S_NR; i++)
		fprintf(stderr, "  %-13s %6u done, %6u refused\n", stat_names[i], stat_ok[i],
			stat_err[i]);
	for (i = 0; i < (uint32_t)m->nn; i++)
		free(m->n[i].target);
	free(m);
	tfs_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_namei_dirs),
		cmocka_unit_test(test_namei_files),
		cmocka_unit_test(test_namei_symlinks),
		cmocka_unit_test(test_namei_rename),
		cmocka_unit_test(test_namei_xattr),
		cmocka_unit_test(test_namei_threads),
		cmocka_unit_test(test_namei_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
