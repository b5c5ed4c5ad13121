/* SPDX-License-Identifier: MIT */
/*
 * reclaimlab bench fs: deepfs through FUSE against kernel XFS on a loop
 * device, same jobs, same directory, one invocation, so that the ratio
 * means something on the machine at hand. A benchmark, not a test: it
 * reports numbers and checks nothing about them.
 *
 * The fio jobs (--output-format=json, parsed with json-c) are a sequential
 * 1 MiB write then read (buffered, end_fsync) and a 4 KiB random write;
 * file creation is timed here, as fio cannot create files fast.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "fs/deepfs.h"

enum { JOB_SEQWRITE, JOB_SEQREAD, JOB_RANDWRITE, JOB_CREATE, NJOBS };

static const struct {
	const char *name;
	const char *unit;
} jobs[NJOBS] = {
	[JOB_SEQWRITE] = { "seq write 1M", "MiB/s" },
	[JOB_SEQREAD] = { "seq read 1M", "MiB/s" },
	[JOB_RANDWRITE] = { "rand write 4K", "IOPS" },
	[JOB_CREATE] = { "create empty files", "files/s" },
};

enum { FS_DEEPFS, FS_XFS, NFS };
static const char *const fs_names[NFS] = { "deepfs", "XFS" };

struct bench {
	char *dir;		/* our scratch directory inside --dir */
	uint64_t size;
	uint32_t runtime;
	uint32_t nfiles;
	bool json;
	double result[NJOBS][NFS];	/* < 0: the job failed */
	/* what to undo */
	char mnt[NFS][PATH_MAX];
	char img[NFS][PATH_MAX];
	char pidfile[PATH_MAX];
	char loopdev[64];
	bool mounted[NFS];
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

int rl_bench_run(char *const argv[], const char *out_path, bool quiet)
{
	pid_t pid;
	int ws;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (out_path) {
			int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

			if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0) {
				fprintf(stderr, "%s bench: %s: %s\n", rl_program, out_path,
					strerror(errno));
				_exit(127);
			}
		}
		if (quiet) {
			int null = open("/dev/null", O_WRONLY);

			if (null >= 0)
				dup2(null, STDERR_FILENO);
		}
		execvp(argv[0], argv);
		fprintf(stderr, "%s bench: cannot run %s: %s\n", rl_program, argv[0], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	return 128 + WTERMSIG(ws);
}

int rl_bench_capture(char *const argv[], const char *tmp_path, char *out, size_t len)
{
	int status = rl_bench_run(argv, tmp_path, false);
	FILE *f = fopen(tmp_path, "re");
	size_t n = f ? fread(out, 1, len - 1, f) : 0;

	out[n] = 0;
	while (n && out[n - 1] == '\n')
		out[--n] = 0;
	if (f)
		fclose(f);
	unlink(tmp_path);
	return status;
}

static bool executable_at(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

bool rl_bench_find_program(const char *self, const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH"), *slash = strrchr(self, '/');

	if (slash && snprintf(out, len, "%.*s/%s", (int)(slash - self), self, name) < (int)len &&
	    executable_at(out))
		return true;
	while (path && *path) {
		size_t n = strcspn(path, ":");

		if (n && snprintf(out, len, "%.*s/%s", (int)n, path, name) < (int)len &&
		    executable_at(out))
			return true;
		path += n + (path[n] == ':');
	}
	return false;
}

static int run_capture(char *const argv[], char *out, size_t len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "/tmp/rl-bench-out.%d", (int)getpid());
	return rl_bench_capture(argv, path, out, len);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Only the page cache: the jobs compare filesystems, not who cached what. */
static void drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	sync();
	if (fd >= 0) {
		if (write(fd, "3\n", 2) != 2)
			fprintf(stderr, "%s bench: drop_caches: %s\n", rl_program, strerror(errno));
		close(fd);
	}
}

static double fio_result(const char *json_path, int job)
{
	struct json_object *root, *jarr, *j, *side, *v;
	double r = -1;

	root = json_object_from_file(json_path);
	if (!root) {
		fprintf(stderr, "%s bench: fio wrote no JSON to %s\n", rl_program, json_path);
		return -1;
	}
	if (!json_object_object_get_ex(root, "jobs", &jarr) || !json_object_is_type(jarr, json_type_array) ||
	    json_object_array_length(jarr) < 1)
		goto out;
	j = json_object_array_get_idx(jarr, 0);
	if (json_object_object_get_ex(j, "error", &v) && json_object_get_int(v)) {
		fprintf(stderr, "%s bench: fio job failed: %s\n", rl_program, strerror(json_object_get_int(v)));
		goto out;
	}
	if (!json_object_object_get_ex(j, job == JOB_SEQREAD ? "read" : "write", &side))
		goto out;
	if (job == JOB_RANDWRITE) {
		if (json_object_object_get_ex(side, "iops", &v))
			r = json_object_get_double(v);
	} else if (json_object_object_get_ex(side, "bw_bytes", &v)) {
		r = json_object_get_double(v) / (1 << 20);
	}
out:
	json_object_put(root);
	return r;
}

static double run_fio(struct bench *b, int fs, int job)
{
	char name[64], filename[PATH_MAX + 16], size[32], runtime[32], out[PATH_MAX];
	char *argv[16];
	int n = 0, status;

	snprintf(name, sizeof(name), "--name=%s", job == JOB_SEQWRITE ? "seqwrite" :
		 job == JOB_SEQREAD ? "seqread" : "randwrite");
	snprintf(filename, sizeof(filename), "--filename=%s/bench.dat", b->mnt[fs]);
	snprintf(size, sizeof(size), "--size=%" PRIu64, b->size);
	snprintf(runtime, sizeof(runtime), "--runtime=%u", b->runtime);
	snprintf(out, sizeof(out), "%s/fio-%s-%d.json", b->dir, fs_names[fs], job);
	argv[n++] = "fio";
	argv[n++] = name;
	argv[n++] = filename;
	argv[n++] = size;
	argv[n++] = runtime;
	argv[n++] = "--ioengine=psync";
	argv[n++] = "--direct=0";
	argv[n++] = "--output-format=json";
	switch (job) {
	case JOB_SEQWRITE:
		argv[n++] = "--rw=write";
		argv[n++] = "--bs=1M";
		argv[n++] = "--end_fsync=1";
		break;
	case JOB_SEQREAD:
		argv[n++] = "--rw=read";
		argv[n++] = "--bs=1M";
		break;
	case JOB_RANDWRITE:
		argv[n++] = "--rw=randwrite";
		argv[n++] = "--bs=4k";
		argv[n++] = "--end_fsync=1";
		argv[n++] = "--time_based=1";
		break;
	}
	argv[n] = NULL;
	if (job == JOB_SEQREAD)
		drop_caches();
	status = rl_bench_run(argv, out, false);
	if (status) {
		fprintf(stderr, "%s bench: fio %s on %s exited with %d\n", rl_program, name + 7,
			fs_names[fs], status);
		return -1;
	}
	return fio_result(out, job);
}

/* open(O_CREAT)+close of empty files in one directory, timed to the last close. */
static double run_creates(struct bench *b, int fs)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	double t0, t;
	uint32_t i;

	snprintf(dir, sizeof(dir), "%s/creates", b->mnt[fs]);
	if (mkdir(dir, 0755) < 0) {
		fprintf(stderr, "%s bench: mkdir %s: %s\n", rl_program, dir, strerror(errno));
		return -1;
	}
	t0 = now();
	for (i = 0; i < b->nfiles && !interrupted; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/f%08" PRIu32, dir, i);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0) {
			fprintf(stderr, "%s bench: create %s: %s\n", rl_program, path, strerror(errno));
			return -1;
		}
		close(fd);
	}
	t = now() - t0;
	return interrupted ? -1 : b->nfiles / t;
}

static void run_jobs(struct bench *b, int fs)
{
	int job;

	for (job = 0; job < NJOBS; job++) {
		if (interrupted) {
			b->result[job][fs] = -1;
			continue;
		}
		if (!b->json)
			fprintf(stderr, "%s bench: %s on %s\n", rl_program, jobs[job].name, fs_names[fs]);
		b->result[job][fs] = job == JOB_CREATE ? run_creates(b, fs) : run_fio(b, fs, job);
	}
}

/* ---- deepfs: an image, mounted by our own `reclaimlab mount` ---- */
static int wait_gone(const char *pidfile)
{
	int i;

	for (i = 0; i < 1200; i++) {
		if (access(pidfile, F_OK) < 0)
			return 0;
		usleep(100000);
	}
	return -ETIMEDOUT;
}

static int image_size(const struct bench *b, uint64_t *out)
{
	/* room for the fio file, the creates and the metadata */
	*out = b->size * 2 < (512ull << 20) ? (512ull << 20) : b->size * 2;
	return 0;
}

static int setup_deepfs(struct bench *b)
{
	struct dfs_mkfs_opts mo = { 0 };
	char self[PATH_MAX];
	ssize_t n;
	int ret;

	image_size(b, &mo.size);
	snprintf(b->img[FS_DEEPFS], PATH_MAX, "%s/deepfs.img", b->dir);
	snprintf(b->mnt[FS_DEEPFS], PATH_MAX, "%s/deepfs", b->dir);
	snprintf(b->pidfile, PATH_MAX, "%s/deepfs.pid", b->dir);
	ret = dfs_mkfs(b->img[FS_DEEPFS], &mo);
	if (ret) {
		fprintf(stderr, "%s bench: mkfs %s: %s\n", rl_program, b->img[FS_DEEPFS], strerror(-ret));
		return ret;
	}
	if (mkdir(b->mnt[FS_DEEPFS], 0755) < 0)
		return -errno;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return -errno;
	self[n] = 0;
	{
		char *argv[] = { self, "mount", "--pidfile", b->pidfile, b->img[FS_DEEPFS],
				 b->mnt[FS_DEEPFS], NULL };

		if (rl_bench_run(argv, NULL, false)) {
			fprintf(stderr, "%s bench: cannot mount deepfs\n", rl_program);
			return -EIO;
		}
	}
	b->mounted[FS_DEEPFS] = true;
	return 0;
}

static void teardown_deepfs(struct bench *b)
{
	char *argv[] = { "fusermount3", "-u", b->mnt[FS_DEEPFS], NULL };

	if (!b->mounted[FS_DEEPFS])
		return;
	if (rl_bench_run(argv, NULL, false)) {
		char *lazy[] = { "fusermount3", "-uz", b->mnt[FS_DEEPFS], NULL };

		rl_bench_run(lazy, NULL, false);
	}
	if (wait_gone(b->pidfile))
		fprintf(stderr, "%s bench: the deepfs daemon did not exit\n", rl_program);
	b->mounted[FS_DEEPFS] = false;
}

/* ---- XFS: mkfs.xfs on a loop device over an image in the same directory ---- */
static int setup_xfs(struct bench *b)
{
	char *argv_losetup[] = { "losetup", "--direct-io=on", "-f", "--show", b->img[FS_XFS], NULL };
	uint64_t size;
	int fd;

	image_size(b, &size);
	snprintf(b->img[FS_XFS], PATH_MAX, "%s/xfs.img", b->dir);
	snprintf(b->mnt[FS_XFS], PATH_MAX, "%s/xfs", b->dir);
	fd = open(b->img[FS_XFS], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		fprintf(stderr, "%s bench: %s: %s\n", rl_program, b->img[FS_XFS], strerror(errno));
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	close(fd);
	if (run_capture(argv_losetup, b->loopdev, sizeof(b->loopdev)) || !b->loopdev[0]) {
		fprintf(stderr, "%s bench: losetup failed\n", rl_program);
		b->loopdev[0] = 0;
		return -EIO;
	}
	{
		char *argv_mkfs[] = { "mkfs.xfs", "-f", "-q", b->loopdev, NULL };

		if (rl_bench_run(argv_mkfs, NULL, false)) {
			fprintf(stderr, "%s bench: mkfs.xfs failed\n", rl_program);
			return -EIO;
		}
	}
	if (mkdir(b->mnt[FS_XFS], 0755) < 0)
		return -errno;
	if (mount(b->loopdev, b->mnt[FS_XFS], "xfs", 0, NULL) < 0) {
		fprintf(stderr, "%s bench: mount xfs: %s\n", rl_program, strerror(errno));
		return -errno;
	}
	b->mounted[FS_XFS] = true;
	return 0;
}

static void teardown_xfs(struct bench *b)
{
	if (b->mounted[FS_XFS]) {
		if (umount(b->mnt[FS_XFS]) < 0 && umount2(b->mnt[FS_XFS], MNT_DETACH) < 0)
			fprintf(stderr, "%s bench: umount %s: %s\n", rl_program, b->mnt[FS_XFS],
				strerror(errno));
		b->mounted[FS_XFS] = false;
	}
	if (b->loopdev[0]) {
		char *argv[] = { "losetup", "-d", b->loopdev, NULL };

		if (rl_bench_run(argv, NULL, false))
			fprintf(stderr, "%s bench: losetup -d %s failed\n", rl_program, b->loopdev);
		b->loopdev[0] = 0;
	}
}

static void remove_scratch(struct bench *b)
{
	char *argv[] = { "rm", "-rf", b->dir, NULL };

	if (b->mounted[FS_DEEPFS] || b->mounted[FS_XFS]) {
		fprintf(stderr, "%s bench: %s left in place: something is still mounted there\n",
			rl_program, b->dir);
		return;
	}
	rl_bench_run(argv, NULL, false);
}

/* ---- output ---- */
static void print_value(double v)
{
	if (v < 0)
		printf(" %12s", "failed");
	else
		printf(" %12.1f", v);
}

static void print_table(const struct bench *b)
{
	int job;

	printf("%-20s %-8s %12s %12s %12s\n", "job", "unit", "deepfs", "XFS", "deepfs/XFS");
	for (job = 0; job < NJOBS; job++) {
		const double *r = b->result[job];

		printf("%-20s %-8s", jobs[job].name, jobs[job].unit);
		print_value(r[FS_DEEPFS]);
		print_value(r[FS_XFS]);
		if (r[FS_DEEPFS] >= 0 && r[FS_XFS] > 0)
			printf(" %12.3f\n", r[FS_DEEPFS] / r[FS_XFS]);
		else
			printf(" %12s\n", "-");
	}
}

static void print_json(const struct bench *b)
{
	struct json_object *root = json_object_new_object(), *arr = json_object_new_array();
	int job;

	json_object_object_add(root, "size", json_object_new_uint64(b->size));
	json_object_object_add(root, "runtime", json_object_new_int64(b->runtime));
	json_object_object_add(root, "files", json_object_new_int64(b->nfiles));
	for (job = 0; job < NJOBS; job++) {
		struct json_object *o = json_object_new_object();
		const double *r = b->result[job];

		json_object_object_add(o, "job", json_object_new_string(jobs[job].name));
		json_object_object_add(o, "unit", json_object_new_string(jobs[job].unit));
		json_object_object_add(o, "deepfs", r[FS_DEEPFS] >= 0 ? json_object_new_double(r[FS_DEEPFS]) : NULL);
		json_object_object_add(o, "xfs", r[FS_XFS] >= 0 ? json_object_new_double(r[FS_XFS]) : NULL);
		json_object_object_add(o, "ratio", r[FS_DEEPFS] >= 0 && r[FS_XFS] > 0 ?
				       json_object_new_double(r[FS_DEEPFS] / r[FS_XFS]) : NULL);
		json_object_array_add(arr, o);
	}
	json_object_object_add(root, "jobs", arr);
	printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
}

static bool have_program(const char *name)
{
	char *argv[] = { "sh", "-c", NULL, NULL };
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s", name);
	argv[2] = cmd;
	return rl_bench_run(argv, "/dev/null", true) == 0;
}

int rl_bench_fs(const struct rl_bench_args *a)
{
	struct bench b = { .size = a->size ? a->size : 1ull << 30,
			   .runtime = a->runtime ? a->runtime : 30,
			   .nfiles = a->files ? a->files : 20000,
			   .json = a->json };
	const char *dir = a->dir ? a->dir : "/var/tmp";
	struct sigaction sa = { .sa_handler = on_signal };
	char tmpl[PATH_MAX];
	bool failed = false;
	int o, job;

	if (b.size < (1u << 20)) {
		rl_usage_error(a->cmd, "--size of 'bench fs' must be at least 1M");
		return RL_EXIT_USAGE;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "%s bench: needs root (loop devices, mount, drop_caches)\n", rl_program);
		return RL_EXIT_PROBLEM;
	}
	if (!have_program("fio") || !have_program("mkfs.xfs") || !have_program("losetup") ||
	    !have_program("fusermount3")) {
		fprintf(stderr, "%s bench: needs fio, mkfs.xfs (xfsprogs), losetup and fusermount3\n",
			rl_program);
		return RL_EXIT_PROBLEM;
	}
	snprintf(tmpl, sizeof(tmpl), "%s/rl-bench.XXXXXX", dir);
	b.dir = mkdtemp(tmpl);
	if (!b.dir) {
		fprintf(stderr, "%s bench: %s: %s\n", rl_program, tmpl, strerror(errno));
		return RL_EXIT_PROBLEM;
	}
	for (job = 0; job < NJOBS; job++)
		for (o = 0; o < NFS; o++)
			b.result[job][o] = -1;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	if (setup_deepfs(&b) == 0)
		run_jobs(&b, FS_DEEPFS);
	else
		failed = true;
	teardown_deepfs(&b);
	if (!interrupted && setup_xfs(&b) == 0)
		run_jobs(&b, FS_XFS);
	else
		failed = true;
	teardown_xfs(&b);
	remove_scratch(&b);

	if (interrupted) {
		fprintf(stderr, "%s bench: interrupted\n", rl_program);
		return RL_EXIT_PROBLEM;
	}
	if (b.json)
		print_json(&b);
	else
		print_table(&b);
	for (job = 0; job < NJOBS; job++)
		for (o = 0; o < NFS; o++)
			failed |= b.result[job][o] < 0;
	return failed ? RL_EXIT_PROBLEM : RL_EXIT_OK;
}
