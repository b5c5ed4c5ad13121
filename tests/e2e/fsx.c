/* SPDX-License-Identifier: MIT */
/*
 * fsx: a randomized file-operation exerciser in the tradition of XFS's fsx
 * and fsstress. It applies the same seeded random sequence of operations to
 * two directories, the one under test (a deepfs mount) and a reference (on
 * tmpfs), and compares every result: return values, errno, data, sizes, link
 * counts, modes, directory listings, symlink targets, xattrs. Every
 * --check-every operations and at the end the whole trees are compared byte
 * for byte.
 *
 * The reference directory is the model: which names exist is read back from
 * it (in sorted order, so that a seed replays the same sequence).
 *
 *   fsx [--ops N] [--seed S] [--files N] [--maxsize BYTES] [--check-every N]
 *       [--op-timeout S] [--compare-only] [--verbose] TESTDIR REFDIR
 *
 * Exit status: 0 all matched, 1 a mismatch or a hang (seed, operation and
 * the tail of the operation log are printed), 2 bad usage or a setup error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define TEST	0
#define REF	1
#define NHELD	4
#define LOGN	32
#define LOGLEN	320
#define MAXDEPTH 3
#define NDIRNAMES 4
#define NLINKNAMES 4
#define NXATTRS	4
#define MAXENTS	4096

struct held {
	bool used;
	int fd[2];
	char path[PATH_MAX];	/* at open time; the name may be gone since */
};

struct ent {
	char path[PATH_MAX];
	mode_t type;		/* S_IFREG, S_IFDIR, S_IFLNK */
	int depth;
};

static struct {
	const char *root[2];
	int dfd[2];
	uint64_t seed, rng;
	unsigned long nops, op, check_every;
	unsigned op_timeout;		/* seconds; 0 = none */
	volatile unsigned long progress;	/* bumped by every operation */
	unsigned nfiles;
	uint64_t maxsize;
	bool verbose;
	struct held held[NHELD];
	char log[LOGN][LOGLEN];
	unsigned long nlogged;
	unsigned char *buf[2];
	unsigned char *wbuf;
	struct ent *ents;
	int nents;
	bool ents_valid;
} g;

/* ---- random numbers: splitmix64, so a seed means the same run anywhere ---- */
static uint64_t rnd(void)
{
	uint64_t z = (g.rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static bool one_in(unsigned n)
{
	return rnd_below(n) == 0;
}

/* Sizes and offsets biased to small values and block boundaries, where
 * filesystems keep their bugs. */
static uint64_t rnd_size(uint64_t max)
{
	uint64_t v;

	if (max == 0)
		return 0;
	switch (rnd_below(4)) {
	case 0:
		v = rnd_below(max + 1);
		break;
	case 1:
		v = rnd_below(max < 8192 ? max + 1 : 8193);
		break;
	case 2:
		v = rnd_below(max / 4096 + 1) * 4096;
		break;
	default:
		v = rnd_below(max / 512 + 1) * 512 + rnd_below(3) - 1;
		break;
	}
	return v > max ? max : v;
}

/* ---- operation log and failure report ------------------------------------ */
static void oplog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void oplog(const char *fmt, ...)
{
	char *line = g.log[g.nlogged % LOGN];
	va_list ap;
	int n;

	n = snprintf(line, LOGLEN, "%6lu ", g.op);
	va_start(ap, fmt);
	vsnprintf(line + n, LOGLEN - n, fmt, ap);
	va_end(ap);
	g.nlogged++;
	if (g.verbose)
		printf("%s\n", line);
}

static _Noreturn void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report_tail(void)
{
	unsigned long i, first;

	fprintf(stderr, "fsx: last operations (test %s, reference %s):\n", g.root[TEST],
		g.root[REF]);
	first = g.nlogged > LOGN ? g.nlogged - LOGN : 0;
	for (i = first; i < g.nlogged; i++)
		fprintf(stderr, "  %s\n", g.log[i % LOGN]);
	if (g.nops)
		fprintf(stderr, "fsx: reproduce with --seed %" PRIu64 " --ops %lu --files %u --maxsize %" PRIu64 "\n",
		g.seed, g.op + 1, g.nfiles, g.maxsize);
}

static void fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "fsx: MISMATCH at op %lu (seed %" PRIu64 "): ", g.op, g.seed);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	report_tail();
	exit(1);
}

/*
 * A filesystem that hangs leaves the caller in an uninterruptible wait, so
 * the hang is reported from another thread, which then ends the process
 * (a FUSE request wait is killable).
 */
static void *watchdog(void *arg)
{
	unsigned long last = g.progress;
	unsigned idle = 0;

	for (;;) {
		sleep(1);
		if (g.progress != last) {
			last = g.progress;
			idle = 0;
			continue;
		}
		if (++idle < g.op_timeout)
			continue;
		fflush(stdout);
		fprintf(stderr, "fsx: HANG at op %lu (seed %" PRIu64 "): no progress for %u s\n",
			g.op, g.seed, g.op_timeout);
		report_tail();
		_exit(1);
	}
	return arg;
}

static _Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fsx: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(2);
}

/*
 * POSIX lets rmdir and rename of a non-empty directory fail with EEXIST or
 * ENOTEMPTY; either is right.
 */
static int norm_errno(int e)
{
	return e == EEXIST ? ENOTEMPTY : e;
}

/* Compare the outcome of one call made on both sides. */
static void check_rc(const char *what, const long r[2], const int e[2], bool eexist_ok)
{
	int e0 = r[TEST] < 0 ? e[TEST] : 0, e1 = r[REF] < 0 ? e[REF] : 0;

	if (eexist_ok) {
		e0 = norm_errno(e0);
		e1 = norm_errno(e1);
	}
	if ((r[TEST] < 0) != (r[REF] < 0) || e0 != e1)
		fail("%s: test returned %ld (%s), reference %ld (%s)", what, r[TEST],
		     r[TEST] < 0 ? strerror(e[TEST]) : "ok", r[REF],
		     r[REF] < 0 ? strerror(e[REF]) : "ok");
}

static void check_ret(const char *what, const long r[2], const int e[2])
{
	check_rc(what, r, e, false);
	if (r[TEST] != r[REF])
		fail("%s: test returned %ld, reference %ld", what, r[TEST], r[REF]);
}

#define BOTH(r, e, expr)						\
	do {								\
		for (int s_ = 0; s_ < 2; s_++) {			\
			const int side = s_;				\
			(void)side;					\
			errno = 0;					\
			(r)[s_] = (expr);				\
			(e)[s_] = errno;				\
		}							\
	} while (0)

/* Paths in the trees are short by construction; a longer one is a bug here. */
static void join(char *out, const char *a, const char *b)
{
	if (snprintf(out, PATH_MAX, "%s/%s", a, b) >= PATH_MAX)
		die("path too long: %s/%s", a, b);
}

static void fullpath(char *out, int side, const char *rel)
{
	if (*rel)
		join(out, g.root[side], rel);
	else
		snprintf(out, PATH_MAX, "%s", g.root[side]);
}

static const char *relpath(const char *rel)
{
	return *rel ? rel : ".";
}

/* ---- the model: names that exist, read back from the reference ---------- */
static int ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ent *)a)->path, ((const struct ent *)b)->path);
}

static void walk(const char *rel, int depth)
{
	char full[PATH_MAX];
	struct dirent *de;
	DIR *d;

	fullpath(full, REF, rel);
	d = opendir(full);
	if (!d)
		die("opendir %s: %s", full, strerror(errno));
	while ((de = readdir(d))) {
		struct ent *e;
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (g.nents == MAXENTS)
			break;
		e = &g.ents[g.nents];
		if (*rel)
			join(e->path, rel, de->d_name);
		else
			snprintf(e->path, PATH_MAX, "%s", de->d_name);
		if (fstatat(g.dfd[REF], e->path, &st, AT_SYMLINK_NOFOLLOW))
			die("stat %s: %s", e->path, strerror(errno));
		e->type = st.st_mode & S_IFMT;
		e->depth = depth;
		g.nents++;
		if (e->type == S_IFDIR && depth < MAXDEPTH + 2) {
			char sub[PATH_MAX];

			snprintf(sub, sizeof(sub), "%s", e->path);
			walk(sub, depth + 1);
		}
	}
	closedir(d);
}

static void refresh(void)
{
	if (g.ents_valid)
		return;
	g.nents = 0;
	walk("", 0);
	qsort(g.ents, g.nents, sizeof(*g.ents), ent_cmp);
	g.ents_valid = true;
}

static void invalidate(void)
{
	g.ents_valid = false;
}

/* A random existing entry of one of the types in mask (S_IF* bits ORed are
 * not disjoint, so the mask is of our own bits). */
#define T_REG 1
#define T_DIR 2
#define T_LNK 4
#define T_ANY 7

static unsigned type_bit(mode_t t)
{
	return t == S_IFREG ? T_REG : t == S_IFDIR ? T_DIR : t == S_IFLNK ? T_LNK : 0;
}

static const struct ent *pick(unsigned mask)
{
	int i, n = 0, k;

	refresh();
	for (i = 0; i < g.nents; i++)
		if (type_bit(g.ents[i].type) & mask)
			n++;
	if (!n)
		return NULL;
	k = (int)rnd_below(n);
	for (i = 0; i < g.nents; i++)
		if ((type_bit(g.ents[i].type) & mask) && k-- == 0)
			return &g.ents[i];
	return NULL;
}

/* A new name: an existing directory (or the root) and a leaf of the kind's
 * name pool, so names collide often enough to hit EEXIST and renames over
 * existing entries. */
static void gen_path(char *out, unsigned kind)
{
	const struct ent *dir = one_in(3) ? NULL : pick(T_DIR);
	char leaf[32];

	if (dir && dir->depth >= MAXDEPTH)
		dir = NULL;
	if (kind == T_DIR)
		snprintf(leaf, sizeof(leaf), "d%u", (unsigned)rnd_below(NDIRNAMES));
	else if (kind == T_LNK)
		snprintf(leaf, sizeof(leaf), "l%u", (unsigned)rnd_below(NLINKNAMES));
	else
		snprintf(leaf, sizeof(leaf), "f%u", (unsigned)rnd_below(g.nfiles));
	if (dir)
		join(out, dir->path, leaf);
	else
		snprintf(out, PATH_MAX, "%s", leaf);
}

/* ---- data operations ---------------------------------------------------- */
struct target {
	int fd[2];
	bool close;
	const char *name;
};

static void held_close(int i)
{
	close(g.held[i].fd[TEST]);
	close(g.held[i].fd[REF]);
	g.held[i].used = false;
}

static int nheld(void)
{
	int i, n = 0;

	for (i = 0; i < NHELD; i++)
		n += g.held[i].used;
	return n;
}

/* The file a data operation works on: a held descriptor (maybe of an
 * unlinked file) or an existing regular file opened for the operation. */
static bool get_target(struct target *t)
{
	static char name[PATH_MAX + 16];
	const struct ent *e;
	long r[2];
	int er[2];

	if (nheld() && one_in(3)) {
		int i;

		do
			i = (int)rnd_below(NHELD);
		while (!g.held[i].used);
		t->fd[TEST] = g.held[i].fd[TEST];
		t->fd[REF] = g.held[i].fd[REF];
		t->close = false;
		snprintf(name, sizeof(name), "held%d:%s", i, g.held[i].path);
		t->name = name;
		return true;
	}
	e = pick(T_REG);
	if (!e)
		return false;
	BOTH(r, er, openat(g.dfd[side], e->path, O_RDWR));
	snprintf(name, sizeof(name), "%s", e->path);
	t->name = name;
	if (r[TEST] >= 0 && r[REF] >= 0) {
		t->fd[TEST] = (int)r[TEST];
		t->fd[REF] = (int)r[REF];
		t->close = true;
		return true;
	}
	oplog("open %s", name);
	if (r[TEST] >= 0)
		close((int)r[TEST]);
	if (r[REF] >= 0)
		close((int)r[REF]);
	check_rc("open", r, er, false);
	return false;
}

static void put_target(struct target *t)
{
	if (t->close) {
		close(t->fd[TEST]);
		close(t->fd[REF]);
	}
}

static void check_size(const struct target *t, const char *what)
{
	struct stat st[2];

	if (fstat(t->fd[TEST], &st[TEST]) || fstat(t->fd[REF], &st[REF]))
		fail("%s: fstat %s: %s", what, t->name, strerror(errno));
	if (st[TEST].st_size != st[REF].st_size)
		fail("%s %s: size %jd, reference %jd", what, t->name, (intmax_t)st[TEST].st_size,
		     (intmax_t)st[REF].st_size);
}

static uint64_t ref_size(const struct target *t)
{
	struct stat st;

	if (fstat(t->fd[REF], &st))
		die("fstat reference: %s", strerror(errno));
	return st.st_size;
}

static void compare_bufs(const char *what, const char *name, uint64_t off, size_t len)
{
	size_t i;

	if (!memcmp(g.buf[TEST], g.buf[REF], len))
		return;
	for (i = 0; i < len && g.buf[TEST][i] == g.buf[REF][i]; i++)
		;
	fail("%s %s: data differs at offset %" PRIu64 " (0x%" PRIx64 "): test 0x%02x, reference 0x%02x",
	     what, name, off + i, off + i, g.buf[TEST][i], g.buf[REF][i]);
}

static void fill_random(unsigned char *p, size_t len)
{
	size_t i;
	uint64_t v = 0;

	/* every 8th byte is odd, so written data never reads like a hole */
	for (i = 0; i < len; i++) {
		if (!(i & 7))
			v = rnd() | 1;
		p[i] = (unsigned char)(v >> ((i & 7) * 8));
	}
}

static void op_write(void)
{
	struct target t;
	uint64_t off, len;
	long r[2];
	int e[2];

	if (!get_target(&t))
		return;
	off = rnd_size(g.maxsize - 1);
	len = rnd_size(g.maxsize - off);
	if (!len)
		len = 1;
	fill_random(g.wbuf, len);
	oplog("write %s off %" PRIu64 " len %" PRIu64, t.name, off, len);
	BOTH(r, e, pwrite(t.fd[side], g.wbuf, len, off));
	check_ret("write", r, e);
	check_size(&t, "after write");
	put_target(&t);
}

static void op_read(void)
{
	struct target t;
	uint64_t off, len, size;
	long r[2];
	int e[2];

	if (!get_target(&t))
		return;
	size = ref_size(&t);
	off = rnd_size(size + 4096);
	len = rnd_size(g.maxsize);
	if (one_in(2))
		posix_fadvise(t.fd[TEST], 0, 0, POSIX_FADV_DONTNEED);
	oplog("read %s off %" PRIu64 " len %" PRIu64 " (size %" PRIu64 ")", t.name, off, len, size);
	BOTH(r, e, pread(t.fd[side], g.buf[side], len, off));
	check_ret("read", r, e);
	if (r[REF] > 0)
		compare_bufs("read", t.name, off, r[REF]);
	put_target(&t);
}

static void op_truncate(void)
{
	struct target t;
	uint64_t size;
	long r[2];
	int e[2];

	if (!get_target(&t))
		return;
	size = rnd_size(g.maxsize);
	oplog("truncate %s from %" PRIu64 " to %" PRIu64, t.name, ref_size(&t), size);
	BOTH(r, e, ftruncate(t.fd[side], size));
	check_rc("truncate", r, e, false);
	check_size(&t, "after truncate");
	put_target(&t);
}

/* tmpfs has no FALLOC_FL_ZERO_RANGE: the reference punches a hole and
 * extends the size, which is what zeroing means. */
static int ref_fallocate(int fd, int mode, off_t off, off_t len)
{
	struct stat st;

	if (!fallocate(fd, mode, off, len))
		return 0;
	if (errno != EOPNOTSUPP || !(mode & FALLOC_FL_ZERO_RANGE))
		return -1;
	if (fstat(fd, &st))
		return -1;
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len))
		return -1;
	if (!(mode & FALLOC_FL_KEEP_SIZE) && off + len > st.st_size)
		return ftruncate(fd, off + len);
	return 0;
}

static void op_fallocate(void)
{
	static const struct {
		int mode;
		const char *name;
	} modes[] = {
		{ 0, "alloc" },
		{ FALLOC_FL_KEEP_SIZE, "alloc-keepsize" },
		{ FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, "punch" },
		{ FALLOC_FL_ZERO_RANGE, "zero" },
		{ FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, "zero-keepsize" },
	};
	struct target t;
	uint64_t off, len;
	unsigned m = (unsigned)rnd_below(sizeof(modes) / sizeof(modes[0]));
	long r[2];
	int e[2];

	if (!get_target(&t))
		return;
	off = rnd_size(g.maxsize - 1);
	len = rnd_size(g.maxsize - off);
	if (!len)
		len = 1;
	oplog("fallocate %s %s off %" PRIu64 " len %" PRIu64 " (size %" PRIu64 ")", modes[m].name,
	      t.name, off, len, ref_size(&t));
	errno = 0;
	r[TEST] = fallocate(t.fd[TEST], modes[m].mode, off, len);
	e[TEST] = errno;
	errno = 0;
	r[REF] = ref_fallocate(t.fd[REF], modes[m].mode, off, len);
	e[REF] = errno;
	check_rc("fallocate", r, e, false);
	check_size(&t, "after fallocate");
	put_target(&t);
}

static void op_mmap_read(void)
{
	struct target t;
	uint64_t size, off, len, mlen;
	unsigned char *p[2];
	long page = sysconf(_SC_PAGESIZE);
	int s;

	if (!get_target(&t))
		return;
	size = ref_size(&t);
	check_size(&t, "mmap read");
	if (!size) {
		put_target(&t);
		return;
	}
	off = rnd_below(size);
	len = rnd_size(size - off);
	if (!len)
		len = 1;
	oplog("mapread %s off %" PRIu64 " len %" PRIu64 " (size %" PRIu64 ")", t.name, off, len, size);
	if (one_in(2))
		posix_fadvise(t.fd[TEST], 0, 0, POSIX_FADV_DONTNEED);
	for (s = 0; s < 2; s++) {
		p[s] = mmap(NULL, size, PROT_READ, MAP_SHARED, t.fd[s], 0);
		if (p[s] == MAP_FAILED)
			fail("mmap %s of %s: %s", s == TEST ? "test" : "reference", t.name,
			     strerror(errno));
	}
	memcpy(g.buf[TEST], p[TEST] + off, len);
	memcpy(g.buf[REF], p[REF] + off, len);
	compare_bufs("mapread", t.name, off, len);
	/* the rest of the last page must read as zeroes (fsx's EOF check) */
	mlen = (size + page - 1) / page * page;
	for (off = size; off < mlen; off++)
		if (p[TEST][off])
			fail("mapread %s: byte at %" PRIu64 " past EOF %" PRIu64 " is 0x%02x, not 0",
			     t.name, off, size, p[TEST][off]);
	munmap(p[TEST], size);
	munmap(p[REF], size);
	put_target(&t);
}

static void op_mmap_write(void)
{
	struct target t;
	uint64_t size, off, len;
	unsigned char *p[2];
	int s;

	if (!get_target(&t))
		return;
	size = ref_size(&t);
	check_size(&t, "mmap write");
	if (!size) {
		put_target(&t);
		return;
	}
	off = rnd_below(size);
	len = rnd_size(size - off);
	if (!len)
		len = 1;
	fill_random(g.wbuf, len);
	oplog("mapwrite %s off %" PRIu64 " len %" PRIu64 " (size %" PRIu64 ")", t.name, off, len,
	      size);
	for (s = 0; s < 2; s++) {
		p[s] = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, t.fd[s], 0);
		if (p[s] == MAP_FAILED)
			fail("mmap shared writable %s of %s: %s", s == TEST ? "test" : "reference",
			     t.name, strerror(errno));
		memcpy(p[s] + off, g.wbuf, len);
		if (msync(p[s], size, MS_SYNC))
			fail("msync %s of %s: %s", s == TEST ? "test" : "reference", t.name,
			     strerror(errno));
		munmap(p[s], size);
	}
	check_size(&t, "after mapwrite");
	put_target(&t);
}

/* fsync of a directory makes its entries durable (what rename-into-place
 * and mail spools rely on) */
static void op_fsync_dir(void)
{
	const struct ent *en = one_in(3) ? NULL : pick(T_DIR);
	const char *path = en ? en->path : ".";
	long r[2], fd[2];
	int e[2];

	oplog("fsync dir %s", path);
	BOTH(fd, e, openat(g.dfd[side], path, O_RDONLY | O_DIRECTORY));
	check_rc("open dir", fd, e, false);
	if (fd[REF] < 0)
		return;
	BOTH(r, e, fsync((int)fd[side]));
	check_rc("fsync dir", r, e, false);
	close((int)fd[TEST]);
	close((int)fd[REF]);
}

static void op_fsync(void)
{
	struct target t;
	bool data = one_in(2);
	long r[2];
	int e[2];

	if (one_in(4)) {
		op_fsync_dir();
		return;
	}
	if (!get_target(&t))
		return;
	oplog("%s %s", data ? "fdatasync" : "fsync", t.name);
	BOTH(r, e, data ? fdatasync(t.fd[side]) : fsync(t.fd[side]));
	check_rc(data ? "fdatasync" : "fsync", r, e, false);
	put_target(&t);
}

/* ---- namespace operations ------------------------------------------------ */
static void op_create(void)
{
	char path[PATH_MAX];
	int flags = O_RDWR | O_CREAT | (one_in(2) ? O_EXCL : 0) | (one_in(4) ? O_TRUNC : 0);
	long r[2];
	int e[2], i;

	gen_path(path, T_REG);
	oplog("create %s%s%s", path, flags & O_EXCL ? " excl" : "", flags & O_TRUNC ? " trunc" : "");
	BOTH(r, e, openat(g.dfd[side], path, flags, 0644));
	invalidate();
	check_rc("create", r, e, false);
	if (r[TEST] < 0)
		return;
	for (i = 0; i < NHELD; i++)
		if (!g.held[i].used && one_in(3)) {
			g.held[i].used = true;
			g.held[i].fd[TEST] = (int)r[TEST];
			g.held[i].fd[REF] = (int)r[REF];
			snprintf(g.held[i].path, PATH_MAX, "%s", path);
			oplog("hold %d %s", i, path);
			return;
		}
	close((int)r[TEST]);
	close((int)r[REF]);
}

static void op_hold(void)
{
	const struct ent *en;
	long r[2];
	int e[2], i;

	for (i = 0; i < NHELD && g.held[i].used; i++)
		;
	if (i == NHELD) {
		i = (int)rnd_below(NHELD);
		oplog("close held %d %s", i, g.held[i].path);
		held_close(i);
		return;
	}
	en = pick(T_REG);
	if (!en)
		return;
	oplog("hold %d %s", i, en->path);
	BOTH(r, e, openat(g.dfd[side], en->path, O_RDWR));
	check_rc("open", r, e, false);
	if (r[TEST] < 0)
		return;
	g.held[i].used = true;
	g.held[i].fd[TEST] = (int)r[TEST];
	g.held[i].fd[REF] = (int)r[REF];
	snprintf(g.held[i].path, PATH_MAX, "%s", en->path);
}

static void op_close(void)
{
	int i = (int)rnd_below(NHELD);

	if (!g.held[i].used)
		return;
	oplog("close held %d %s", i, g.held[i].path);
	held_close(i);
}

static void op_unlink(void)
{
	const struct ent *en = pick(one_in(10) ? T_ANY : T_REG | T_LNK);
	long r[2];
	int e[2];

	if (!en)
		return;
	oplog("unlink %s", en->path);
	BOTH(r, e, unlinkat(g.dfd[side], en->path, 0));
	invalidate();
	check_rc("unlink", r, e, false);
}

static void op_mkdir(void)
{
	char path[PATH_MAX];
	long r[2];
	int e[2];

	gen_path(path, T_DIR);
	oplog("mkdir %s", path);
	BOTH(r, e, mkdirat(g.dfd[side], path, 0755));
	invalidate();
	check_rc("mkdir", r, e, false);
}

static void op_rmdir(void)
{
	const struct ent *en = pick(one_in(10) ? T_ANY : T_DIR);
	long r[2];
	int e[2];

	if (!en)
		return;
	oplog("rmdir %s", en->path);
	BOTH(r, e, unlinkat(g.dfd[side], en->path, AT_REMOVEDIR));
	invalidate();
	check_rc("rmdir", r, e, true);
}

static void op_rename(void)
{
	const struct ent *src = pick(T_ANY), *dst;
	char from[PATH_MAX], to[PATH_MAX];
	unsigned flags;
	long r[2];
	int e[2];

	if (!src)
		return;
	snprintf(from, sizeof(from), "%s", src->path);
	dst = one_in(2) ? pick(T_ANY) : NULL;
	if (dst)
		snprintf(to, sizeof(to), "%s", dst->path);
	else
		gen_path(to, type_bit(src->type));
	flags = one_in(3) ? (one_in(2) ? RENAME_NOREPLACE : RENAME_EXCHANGE) : 0;
	oplog("rename%s %s -> %s", flags == RENAME_NOREPLACE ? " noreplace" :
	      flags == RENAME_EXCHANGE ? " exchange" : "", from, to);
	BOTH(r, e, renameat2(g.dfd[side], from, g.dfd[side], to, flags));
	invalidate();
	check_rc("rename", r, e, true);
}

static void op_link(void)
{
	const struct ent *src = pick(T_REG);
	char from[PATH_MAX], to[PATH_MAX];
	long r[2];
	int e[2];

	if (!src)
		return;
	snprintf(from, sizeof(from), "%s", src->path);
	gen_path(to, T_REG);
	oplog("link %s -> %s", from, to);
	BOTH(r, e, linkat(g.dfd[side], from, g.dfd[side], to, 0));
	invalidate();
	check_rc("link", r, e, false);
}

/* Targets never contain "..", so they cannot leave the tree; long ones need
 * a block of their own (a remote symlink). */
static void gen_target(char *out, size_t size)
{
	size_t len, i;

	if (one_in(2)) {
		gen_path(out, one_in(3) ? T_DIR : T_REG);
		return;
	}
	len = 1 + rnd_below(one_in(2) ? 64 : 1200);
	if (len >= size)
		len = size - 1;
	for (i = 0; i < len; i++)
		out[i] = (i % 9 == 8) ? '/' : (char)('a' + rnd_below(26));
	out[len] = 0;
}

static void op_symlink(void)
{
	char path[PATH_MAX], target[PATH_MAX];
	long r[2];
	int e[2];

	gen_path(path, T_LNK);
	gen_target(target, sizeof(target));
	oplog("symlink %s -> %.60s%s (%zu bytes)", path, target, strlen(target) > 60 ? "..." : "",
	      strlen(target));
	BOTH(r, e, symlinkat(target, g.dfd[side], path));
	invalidate();
	check_rc("symlink", r, e, false);
}

static void op_readlink(void)
{
	const struct ent *en = pick(one_in(10) ? T_ANY : T_LNK);
	long r[2];
	int e[2];

	if (!en)
		return;
	oplog("readlink %s", en->path);
	BOTH(r, e, readlinkat(g.dfd[side], en->path, (char *)g.buf[side], PATH_MAX));
	check_ret("readlink", r, e);
	if (r[REF] > 0)
		compare_bufs("readlink", en->path, 0, r[REF]);
}

/* ---- attributes ------------------------------------------------------------ */
static void op_setxattr(void)
{
	const struct ent *en = pick(T_REG | T_DIR);
	char name[32], p[2][PATH_MAX];
	int flags = one_in(2) ? 0 : one_in(2) ? XATTR_CREATE : XATTR_REPLACE;
	size_t len = rnd_below(one_in(4) ? 256 : 32);
	long r[2];
	int e[2];

	if (!en)
		return;
	snprintf(name, sizeof(name), "user.x%u", (unsigned)rnd_below(NXATTRS));
	fill_random(g.wbuf, len);
	fullpath(p[TEST], TEST, en->path);
	fullpath(p[REF], REF, en->path);
	if (one_in(4)) {
		oplog("removexattr %s %s", en->path, name);
		BOTH(r, e, lremovexattr(p[side], name));
		check_rc("removexattr", r, e, false);
		return;
	}
	oplog("setxattr %s %s len %zu flags %d", en->path, name, len, flags);
	BOTH(r, e, lsetxattr(p[side], name, g.wbuf, len, flags));
	check_rc("setxattr", r, e, false);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* listxattr output as a sorted, NUL-separated, comparable string */
static size_t sort_names(char *list, size_t len, char *out)
{
	char *names[256];
	size_t n = 0, i, o = 0;
	char *q;

	for (q = list; q < list + len && n < 256; q += strlen(q) + 1)
		names[n++] = q;
	qsort(names, n, sizeof(names[0]), name_cmp);
	for (i = 0; i < n; i++) {
		size_t l = strlen(names[i]) + 1;

		memcpy(out + o, names[i], l);
		o += l;
	}
	return o;
}

static void compare_xattrs(const char *rel)
{
	char p[2][PATH_MAX], list[2][4096], sorted[2][4096];
	long r[2];
	int e[2];
	size_t n, off;

	fullpath(p[TEST], TEST, rel);
	fullpath(p[REF], REF, rel);
	BOTH(r, e, llistxattr(p[side], list[side], sizeof(list[side])));
	check_rc("listxattr", r, e, false);
	if (r[REF] < 0)
		return;
	/* keep only user.*: security.* labels may exist on one side only */
	for (int s = 0; s < 2; s++) {
		char filtered[4096];
		size_t o = 0;

		for (off = 0; off < (size_t)r[s]; off += strlen(list[s] + off) + 1)
			if (!strncmp(list[s] + off, "user.", 5)) {
				size_t l = strlen(list[s] + off) + 1;

				memcpy(filtered + o, list[s] + off, l);
				o += l;
			}
		r[s] = (long)sort_names(filtered, o, sorted[s]);
	}
	if (r[TEST] != r[REF] || memcmp(sorted[TEST], sorted[REF], r[REF]))
		fail("listxattr %s: the names differ", rel);
	for (off = 0; off < (size_t)r[REF]; off += strlen(sorted[REF] + off) + 1) {
		const char *name = sorted[REF] + off;
		long v[2];

		BOTH(v, e, lgetxattr(p[side], name, g.buf[side], 65536));
		check_ret("getxattr", v, e);
		n = v[REF] > 0 ? (size_t)v[REF] : 0;
		if (n)
			compare_bufs("getxattr value", rel, 0, n);
	}
}

static void op_getxattr(void)
{
	const struct ent *en = pick(T_REG | T_DIR);
	char name[32], p[2][PATH_MAX];
	long r[2];
	int e[2];

	if (!en)
		return;
	snprintf(name, sizeof(name), "user.x%u", (unsigned)rnd_below(NXATTRS));
	fullpath(p[TEST], TEST, en->path);
	fullpath(p[REF], REF, en->path);
	oplog("getxattr %s %s", en->path, name);
	BOTH(r, e, lgetxattr(p[side], name, g.buf[side], 65536));
	check_ret("getxattr", r, e);
	if (r[REF] > 0)
		compare_bufs("getxattr", en->path, 0, r[REF]);
	compare_xattrs(en->path);
}

static void op_chmod(void)
{
	static const mode_t modes[] = { 0600, 0644, 0755, 0700, 0444, 01777, 02755, 0 };
	const struct ent *en = pick(T_REG | T_DIR);
	mode_t m = modes[rnd_below(sizeof(modes) / sizeof(modes[0]))];
	long r[2];
	int e[2];

	if (!en)
		return;
	oplog("chmod %s %04o", en->path, m);
	BOTH(r, e, fchmodat(g.dfd[side], en->path, m, 0));
	check_rc("chmod", r, e, false);
}

static void compare_stat(const char *rel, bool times)
{
	struct stat st[2];
	long r[2];
	int e[2];

	BOTH(r, e, fstatat(g.dfd[side], relpath(rel), &st[side], AT_SYMLINK_NOFOLLOW));
	check_rc("stat", r, e, false);
	if (r[REF] < 0)
		return;
	if ((st[TEST].st_mode & S_IFMT) != (st[REF].st_mode & S_IFMT))
		fail("stat %s: file type 0%o, reference 0%o", rel, st[TEST].st_mode & S_IFMT,
		     st[REF].st_mode & S_IFMT);
	/* the mode of a symlink is whatever the filesystem says (0777 usually),
	 * and the roots' modes are whoever made them */
	if (!S_ISLNK(st[REF].st_mode) && *rel && st[TEST].st_mode != st[REF].st_mode)
		fail("stat %s: mode 0%o, reference 0%o", rel, st[TEST].st_mode, st[REF].st_mode);
	if (st[TEST].st_nlink != st[REF].st_nlink)
		fail("stat %s: nlink %ju, reference %ju", rel, (uintmax_t)st[TEST].st_nlink,
		     (uintmax_t)st[REF].st_nlink);
	/* directory sizes are the filesystem's business */
	if (!S_ISDIR(st[REF].st_mode) && st[TEST].st_size != st[REF].st_size)
		fail("stat %s: size %jd, reference %jd", rel, (intmax_t)st[TEST].st_size,
		     (intmax_t)st[REF].st_size);
	if (times && (st[TEST].st_mtim.tv_sec != st[REF].st_mtim.tv_sec ||
		      st[TEST].st_mtim.tv_nsec != st[REF].st_mtim.tv_nsec))
		fail("stat %s: mtime %jd.%09ld, reference %jd.%09ld", rel,
		     (intmax_t)st[TEST].st_mtim.tv_sec, st[TEST].st_mtim.tv_nsec,
		     (intmax_t)st[REF].st_mtim.tv_sec, st[REF].st_mtim.tv_nsec);
}

static void op_utimes(void)
{
	const struct ent *en = pick(T_ANY);
	struct timespec ts[2];
	long r[2];
	int e[2];

	if (!en)
		return;
	ts[0].tv_sec = (time_t)(1000000000 + rnd_below(1000000000));
	ts[0].tv_nsec = (long)rnd_below(1000000000);
	ts[1].tv_sec = (time_t)(1000000000 + rnd_below(1000000000));
	ts[1].tv_nsec = (long)rnd_below(1000000000);
	oplog("utimes %s mtime %jd.%09ld", en->path, (intmax_t)ts[1].tv_sec, ts[1].tv_nsec);
	BOTH(r, e, utimensat(g.dfd[side], en->path, ts, AT_SYMLINK_NOFOLLOW));
	check_rc("utimes", r, e, false);
	compare_stat(en->path, true);
}

static void op_stat(void)
{
	const struct ent *en = pick(T_ANY);

	if (!en)
		return;
	oplog("stat %s", en->path);
	compare_stat(en->path, false);
}

/* ---- directory listings and whole trees ----------------------------------- */
static int list_dir(int side, const char *rel, char ***names)
{
	char full[PATH_MAX];
	struct dirent *de;
	int n = 0, cap = 16;
	DIR *d;

	fullpath(full, side, rel);
	d = opendir(full);
	if (!d)
		return -errno;
	*names = malloc(cap * sizeof(char *));
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			cap *= 2;
			*names = realloc(*names, cap * sizeof(char *));
		}
		(*names)[n++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(*names, n, sizeof(char *), name_cmp);
	return n;
}

static void free_names(char **names, int n)
{
	while (n > 0)
		free(names[--n]);
	free(names);
}

static void compare_listing(const char *rel, char ***out, int *nout)
{
	char **names[2] = { NULL, NULL };
	int n[2], i;

	n[TEST] = list_dir(TEST, rel, &names[TEST]);
	n[REF] = list_dir(REF, rel, &names[REF]);
	if (n[TEST] < 0 || n[REF] < 0)
		fail("readdir %s: test %s, reference %s", relpath(rel),
		     n[TEST] < 0 ? strerror(-n[TEST]) : "ok", n[REF] < 0 ? strerror(-n[REF]) : "ok");
	for (i = 0; i < n[TEST] && i < n[REF]; i++)
		if (strcmp(names[TEST][i], names[REF][i]))
			break;
	if (i < n[TEST] || i < n[REF])
		fail("readdir %s: %d entries, reference %d; first difference: test '%s', reference '%s'",
		     relpath(rel), n[TEST], n[REF], i < n[TEST] ? names[TEST][i] : "(end)",
		     i < n[REF] ? names[REF][i] : "(end)");
	free_names(names[TEST], n[TEST]);
	if (out) {
		*out = names[REF];
		*nout = n[REF];
	} else {
		free_names(names[REF], n[REF]);
	}
}

static void op_readdir(void)
{
	const struct ent *en = one_in(3) ? NULL : pick(T_DIR);

	oplog("readdir %s", en ? en->path : ".");
	compare_listing(en ? en->path : "", NULL, NULL);
}

static void compare_fds(int fd[2], const char *name)
{
	uint64_t off = 0;
	struct stat st[2];

	if (fstat(fd[TEST], &st[TEST]) || fstat(fd[REF], &st[REF]))
		fail("fstat %s: %s", name, strerror(errno));
	if (st[TEST].st_size != st[REF].st_size)
		fail("compare %s: size %jd, reference %jd", name, (intmax_t)st[TEST].st_size,
		     (intmax_t)st[REF].st_size);
	posix_fadvise(fd[TEST], 0, 0, POSIX_FADV_DONTNEED);
	for (;;) {
		long r[2];
		int e[2];

		BOTH(r, e, pread(fd[side], g.buf[side], 1 << 20, off));
		check_ret("compare read", r, e);
		if (r[REF] <= 0)
			break;
		compare_bufs("compare", name, off, r[REF]);
		off += r[REF];
	}
}

static void compare_file(const char *rel)
{
	long r[2];
	int e[2], fd[2];

	BOTH(r, e, openat(g.dfd[side], rel, O_RDONLY));
	check_rc("open for compare", r, e, false);
	if (r[REF] < 0)
		return;
	fd[TEST] = (int)r[TEST];
	fd[REF] = (int)r[REF];
	compare_fds(fd, rel);
	g.progress++;
	close(fd[TEST]);
	close(fd[REF]);
}

static void compare_tree(const char *rel)
{
	char **names, sub[PATH_MAX], link[2][PATH_MAX];
	struct stat st;
	int n, i;
	long r[2];
	int e[2];

	compare_stat(rel, false);
	if (*rel)
		compare_xattrs(rel);
	compare_listing(rel, &names, &n);
	for (i = 0; i < n; i++) {
		if (*rel)
			join(sub, rel, names[i]);
		else
			snprintf(sub, sizeof(sub), "%s", names[i]);
		if (fstatat(g.dfd[REF], sub, &st, AT_SYMLINK_NOFOLLOW))
			die("stat reference %s: %s", sub, strerror(errno));
		compare_stat(sub, false);
		if (S_ISDIR(st.st_mode)) {
			compare_tree(sub);
		} else if (S_ISREG(st.st_mode)) {
			compare_xattrs(sub);
			compare_file(sub);
		} else if (S_ISLNK(st.st_mode)) {
			BOTH(r, e, readlinkat(g.dfd[side], sub, link[side], PATH_MAX));
			check_ret("readlink", r, e);
			if (r[REF] > 0 && memcmp(link[TEST], link[REF], r[REF]))
				fail("readlink %s: targets differ", sub);
		}
	}
	free_names(names, n);
}

static void check_all(void)
{
	int i;

	oplog("check the whole tree");
	compare_tree("");
	for (i = 0; i < NHELD; i++)
		if (g.held[i].used) {
			char name[PATH_MAX + 16];

			snprintf(name, sizeof(name), "held%d:%s", i, g.held[i].path);
			compare_fds(g.held[i].fd, name);
		}
}

/* ---- driver ---------------------------------------------------------------- */
static const struct {
	void (*fn)(void);
	unsigned weight;
} ops[] = {
	{ op_write, 20 },	{ op_read, 12 },	{ op_truncate, 6 },
	{ op_fallocate, 8 },	{ op_mmap_read, 4 },	{ op_mmap_write, 4 },
	{ op_fsync, 3 },	{ op_create, 8 },	{ op_hold, 3 },
	{ op_close, 3 },	{ op_unlink, 4 },	{ op_rename, 5 },
	{ op_link, 3 },		{ op_mkdir, 3 },	{ op_rmdir, 3 },
	{ op_symlink, 3 },	{ op_readlink, 2 },	{ op_setxattr, 3 },
	{ op_getxattr, 2 },	{ op_chmod, 2 },	{ op_utimes, 2 },
	{ op_stat, 4 },		{ op_readdir, 3 },
};

static void run_one(void)
{
	unsigned total = 0, k, i;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		total += ops[i].weight;
	k = (unsigned)rnd_below(total);
	for (i = 0; k >= ops[i].weight; i++)
		k -= ops[i].weight;
	ops[i].fn();
	g.progress++;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fsx [options] TESTDIR REFDIR\n"
		"Applies one seeded random sequence of file operations to TESTDIR and\n"
		"REFDIR and compares every result, then the whole trees.\n"
		"  --ops N            operations (default 10000)\n"
		"  --seed S           random seed (default: from the clock; printed)\n"
		"  --files N          file names per directory (default 16)\n"
		"  --maxsize BYTES    largest file offset (default 1048576)\n"
		"  --check-every N    compare the whole trees every N ops (default 2000; 0 = end only)\n"
		"  --op-timeout S     report a hang if one operation takes S seconds (default 300; 0 = never)\n"
		"  --compare-only     only compare the trees (e.g. after a remount)\n"
		"  --verbose          print every operation\n");
}

static uint64_t parse_num(const char *opt, const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *s == '-')
		goto bad;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end)
		goto bad;
	return v;
bad:
	fprintf(stderr, "fsx: bad %s '%s'\n", opt, s);
	usage(stderr);
	exit(2);
}

static bool dir_is_empty(int side)
{
	char **names;
	int n = list_dir(side, "", &names);

	if (n < 0)
		die("%s: %s", g.root[side], strerror(-n));
	free_names(names, n);
	return n == 0;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "ops", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 's' },
		{ "files", required_argument, NULL, 'f' },
		{ "maxsize", required_argument, NULL, 'm' },
		{ "check-every", required_argument, NULL, 'c' },
		{ "compare-only", no_argument, NULL, 'C' },
		{ "op-timeout", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool compare_only = false, have_seed = false;
	struct timespec t0, t1;
	int c, i;

	g.nops = 10000;
	g.nfiles = 16;
	g.maxsize = 1 << 20;
	g.check_every = 2000;
	g.op_timeout = 300;
	while ((c = getopt_long(argc, argv, "n:s:f:m:c:t:Cvh", lopts, NULL)) != -1) {
		switch (c) {
		case 'n': g.nops = parse_num("--ops", optarg); break;
		case 's': g.seed = parse_num("--seed", optarg); have_seed = true; break;
		case 'f': g.nfiles = (unsigned)parse_num("--files", optarg); break;
		case 'm': g.maxsize = parse_num("--maxsize", optarg); break;
		case 'c': g.check_every = parse_num("--check-every", optarg); break;
		case 'C': compare_only = true; break;
		case 't': g.op_timeout = (unsigned)parse_num("--op-timeout", optarg); break;
		case 'v': g.verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	if (g.nfiles < 1 || g.nfiles > 1000 || g.maxsize < 1 || g.maxsize > (1ull << 30)) {
		fprintf(stderr, "fsx: --files must be 1..1000 and --maxsize 1..1G\n");
		return 2;
	}
	g.root[TEST] = argv[optind];
	g.root[REF] = argv[optind + 1];
	for (i = 0; i < 2; i++) {
		g.dfd[i] = open(g.root[i], O_RDONLY | O_DIRECTORY);
		if (g.dfd[i] < 0)
			die("%s: %s", g.root[i], strerror(errno));
		/* 64 KiB more than the largest IO: reads may ask past maxsize */
		g.buf[i] = malloc((g.maxsize > (1 << 20) ? g.maxsize : (1 << 20)) + 65536 + PATH_MAX);
		if (!g.buf[i])
			die("out of memory");
	}
	g.wbuf = malloc(g.maxsize + 65536);
	g.ents = calloc(MAXENTS, sizeof(*g.ents));
	if (!g.wbuf || !g.ents)
		die("out of memory");
	if (!have_seed)
		g.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	g.rng = g.seed;
	if (g.op_timeout) {
		pthread_t t;

		if (pthread_create(&t, NULL, watchdog, NULL))
			die("cannot start the watchdog thread");
		pthread_detach(t);
	}

	if (compare_only) {
		g.nops = 0;
		compare_tree("");
		printf("fsx: %s and %s are identical\n", g.root[TEST], g.root[REF]);
		return 0;
	}
	if (!dir_is_empty(TEST) || !dir_is_empty(REF))
		die("both directories must start empty");
	printf("fsx: seed %" PRIu64 ", %lu ops, %u files, maxsize %" PRIu64 "\n", g.seed, g.nops,
	       g.nfiles, g.maxsize);
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (g.op = 0; g.op < g.nops; g.op++) {
		run_one();
		if (g.check_every && g.op % g.check_every == g.check_every - 1)
			check_all();
	}
	check_all();
	for (i = 0; i < NHELD; i++)
		if (g.held[i].used)
			held_close(i);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("fsx: %lu ops OK in %.1f s (seed %" PRIu64 ")\n", g.nops,
	       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, g.seed);
	return 0;
}
