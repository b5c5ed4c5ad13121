/* SPDX-License-Identifier: MIT */
/*
 * The kernel reference run (kref.h) and its command, `reclaimlab
 * kernel-run`: the same workload under the kernel's own reclaim, on XFS, in
 * a memory cgroup of the budget the pager gets, with the block layer traced.
 *
 * The trace is read from trace_pipe while the workload runs (a 512 MiB
 * random-dirtying run issues ~50,000 requests, more than a ring buffer of
 * sane size holds), so nothing is lost unless the reader falls behind, and
 * then the overrun counters say so.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "kref.h"

#define RL_KREF_MEMCG "/sys/fs/cgroup/memory"
#define RL_KREF_TRACEFS "/sys/kernel/tracing"
#define RL_KREF_EXIT_FAILED 125	/* as `run`: kernel-run could not do its part */

#define RL_KREF_NAME(n) #n,
const char *const rl_kref_stat_names[RL_KREF_NSTATS] = { RL_KREF_STATS(RL_KREF_NAME) };
const char *const rl_kref_vmstat_names[RL_KREF_NVMSTATS] = { RL_KREF_VMSTATS(RL_KREF_NAME) };
#undef RL_KREF_NAME

/* ---- the trace text ---- */

/*
 * "  comm-123  [001] d..1.  4321.123456: block_rq_issue: 7,0 WS 8192 () 1234 + 16 none,0,0 [comm]"
 * "  <idle>-0  [000] ..s1.  4321.124000: block_rq_complete: 7,0 WS () 1234 + 16 none,0,0 [0]"
 * The fields after the command "(...)" have changed across kernels (ioprio
 * came in 6.x); only "SECTOR + NR" right after it is relied on.
 */
int rl_kref_parse_line(const char *line, struct rl_kref_io *io)
{
	const char *ev, *p, *ts;
	unsigned maj, mnr, nr;
	unsigned long long sector;
	char rwbs[sizeof(io->rwbs)];
	int n = 0;

	if ((ev = strstr(line, ": block_rq_issue: ")))
		io->complete = false;
	else if ((ev = strstr(line, ": block_rq_complete: ")))
		io->complete = true;
	else
		return 0;
	/* the timestamp is the word before the event name */
	for (ts = ev; ts > line && ts[-1] != ' '; ts--)
		;
	if (sscanf(ts, "%lf", &io->time) != 1)
		return -EINVAL;
	p = strchr(ev + 2, ':') + 2;
	if (sscanf(p, "%u,%u %11s %n", &maj, &mnr, rwbs, &n) != 3 || n == 0)
		return -EINVAL;
	p = strchr(p + n, '(');
	p = p ? strchr(p, ')') : NULL;
	if (!p || sscanf(p + 1, " %llu + %u", &sector, &nr) != 2)
		return -EINVAL;
	io->sector = sector;
	io->bytes = nr * 512u;
	memcpy(io->rwbs, rwbs, sizeof(rwbs));
	return 1;
}

void rl_kref_summarize(struct rl_kref_result *res)
{
	uint64_t next_write = UINT64_MAX;	/* where the previous write ended */

	res->write_ios = res->write_bytes = res->read_ios = res->read_bytes = 0;
	res->write_seeks = res->write_seek_sectors = 0;
	for (size_t i = 0; i < res->nios; i++) {
		const struct rl_kref_io *io = &res->ios[i];

		if (io->complete || io->bytes == 0)
			continue;	/* a flush or a zero-length barrier moves no data */
		if (strchr(io->rwbs, 'W')) {
			res->write_ios++;
			res->write_bytes += io->bytes;
			if (next_write != UINT64_MAX && io->sector != next_write) {
				res->write_seeks++;
				res->write_seek_sectors += io->sector > next_write ?
					io->sector - next_write : next_write - io->sector;
			}
			next_write = io->sector + io->bytes / 512;
		} else if (strchr(io->rwbs, 'R')) {
			res->read_ios++;
			res->read_bytes += io->bytes;
		}
	}
	res->mean_write_bytes = res->write_ios ? (double)res->write_bytes / res->write_ios : 0;
	res->mean_write_seek_sectors = res->write_seeks ?
		(double)res->write_seek_sectors / res->write_seeks : 0;
}

/* ---- small file helpers ---- */

static int put_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;
	size_t len = strlen(text);

	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		ret = errno ? -errno : -EIO;
	close(fd);
	return ret;
}

static int put_filef(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX + 256];
	int ret;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ret = put_file(path, text);
	if (ret)
		fprintf(stderr, "%s kernel-run: writing '%s' to %s: %s\n", rl_program, text, path,
			strerror(-ret));
	return ret;
}

/* "name value" lines (memory.stat, /proc/vmstat): the value of each wanted name. */
static void read_counters(const char *path, const char *const *names, int n, bool *present,
			  uint64_t *val)
{
	char line[256], key[128];
	unsigned long long v;
	FILE *f = fopen(path, "re");

	for (int i = 0; i < n; i++)
		present[i] = false;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%127s %llu", key, &v) == 2)
			for (int i = 0; i < n; i++)
				if (strcmp(key, names[i]) == 0) {
					present[i] = true;
					val[i] = v;
				}
	fclose(f);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool have_program(const char *name)
{
	char cmd[128];
	char *argv[] = { "sh", "-c", cmd, NULL };

	snprintf(cmd, sizeof(cmd), "command -v %s", name);
	return rl_bench_run(argv, "/dev/null", true) == 0;
}

int rl_kref_check(char *why, size_t len)
{
	if (geteuid() != 0) {
		snprintf(why, len, "needs root (loop devices, mount, cgroups, tracefs)");
		return -EPERM;
	}
	if (access(RL_KREF_MEMCG "/memory.limit_in_bytes", W_OK) < 0) {
		snprintf(why, len, "no cgroup v1 memory controller at %s", RL_KREF_MEMCG);
		return -ENOTSUP;
	}
	if (access("/dev/loop-control", W_OK) < 0) {
		snprintf(why, len, "no loop devices (/dev/loop-control: %s)", strerror(errno));
		return -ENODEV;
	}
	if (!have_program("losetup") || !have_program("mkfs.xfs")) {
		snprintf(why, len, "needs losetup and mkfs.xfs (xfsprogs)");
		return -ENOENT;
	}
	if (access(RL_KREF_TRACEFS, F_OK) < 0) {
		snprintf(why, len, "no %s to mount tracefs on", RL_KREF_TRACEFS);
		return -ENOTSUP;
	}
	return 0;
}

/* ---- one run: what was made, so that it can be undone ---- */

struct kref {
	const struct rl_kref_opts *o;
	struct rl_kref_result *res;
	char *dir;			/* scratch directory */
	char img[PATH_MAX], mnt[PATH_MAX];
	char cg[PATH_MAX];		/* the memory cgroup, "" if not made */
	char tracefs[PATH_MAX];		/* tracefs root */
	char inst[PATH_MAX + 64];	/* our tracefs instance, "" if not made */
	bool tracefs_mounted;		/* by us, on dir/tracefs */
	bool xfs_mounted;
	int trace_fd;
	FILE *keep;
	char line[1024];		/* a partial line of the trace */
	size_t linelen;
	size_t cap;			/* of res->ios */
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

static int add_io(struct kref *k, const struct rl_kref_io *io)
{
	struct rl_kref_result *res = k->res;

	if (res->nios == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 4096;
		struct rl_kref_io *n = realloc(res->ios, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		res->ios = n;
		k->cap = cap;
	}
	res->ios[res->nios++] = *io;
	return 0;
}

static int trace_line(struct kref *k, const char *line)
{
	struct rl_kref_io io;
	int r = rl_kref_parse_line(line, &io);

	if (k->keep)
		fprintf(k->keep, "%s\n", line);
	if (r < 0) {
		fprintf(stderr, "%s kernel-run: a trace line not understood: %s\n", rl_program, line);
		return 0;
	}
	return r ? add_io(k, &io) : 0;
}

/* Reads what trace_pipe has (it is non-blocking) and parses whole lines. */
static int drain_trace(struct kref *k)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(k->trace_fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				if (k->linelen < sizeof(k->line) - 1)
					k->line[k->linelen++] = buf[i];
				continue;
			}
			k->line[k->linelen] = 0;
			k->linelen = 0;
			if (trace_line(k, k->line) < 0) {
				fprintf(stderr, "%s kernel-run: out of memory for the trace\n", rl_program);
				return -ENOMEM;
			}
		}
	}
	if (n < 0 && errno != EAGAIN && errno != EINTR) {
		fprintf(stderr, "%s kernel-run: reading the trace: %s\n", rl_program, strerror(errno));
		return -errno;
	}
	return 0;
}

static int capture(char *const argv[], char *out, size_t len, const char *dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/out", dir);
	return rl_bench_capture(argv, path, out, len);
}

static int setup_xfs(struct kref *k)
{
	char *losetup[] = { "losetup", "--direct-io=on", "-f", "--show", k->img, NULL };
	char *mkfs[] = { "mkfs.xfs", "-f", "-q", k->res->loopdev, NULL };
	int fd;

	snprintf(k->img, sizeof(k->img), "%s/xfs.img", k->dir);
	snprintf(k->mnt, sizeof(k->mnt), "%s/mnt", k->dir);
	fd = open(k->img, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)k->o->image_size) < 0) {
		int e = errno;

		fprintf(stderr, "%s kernel-run: image %s: %s\n", rl_program, k->img, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	close(fd);
	if (capture(losetup, k->res->loopdev, sizeof(k->res->loopdev), k->dir) ||
	    strncmp(k->res->loopdev, "/dev/", 5) != 0) {
		fprintf(stderr, "%s kernel-run: losetup --direct-io=on %s failed\n", rl_program, k->img);
		k->res->loopdev[0] = 0;
		return -EIO;
	}
	if (interrupted || rl_bench_run(mkfs, NULL, false)) {
		fprintf(stderr, "%s kernel-run: mkfs.xfs %s failed\n", rl_program, k->res->loopdev);
		return -EIO;
	}
	if (mkdir(k->mnt, 0755) < 0 || mount(k->res->loopdev, k->mnt, "xfs", 0, NULL) < 0) {
		int e = errno;

		fprintf(stderr, "%s kernel-run: mount %s on %s: %s\n", rl_program, k->res->loopdev,
			k->mnt, strerror(e));
		return -e;
	}
	k->xfs_mounted = true;
	return 0;
}

static int setup_cgroup(struct kref *k)
{
	char val[32];
	int ret;

	snprintf(k->cg, sizeof(k->cg), "%s/reclaimlab-kref-%d", RL_KREF_MEMCG, (int)getpid());
	if (mkdir(k->cg, 0755) < 0) {
		int e = errno;

		fprintf(stderr, "%s kernel-run: cgroup %s: %s\n", rl_program, k->cg, strerror(e));
		k->cg[0] = 0;
		return -e;
	}
	snprintf(val, sizeof(val), "%" PRIu64, k->o->mem);
	ret = put_filef(k->cg, "memory.limit_in_bytes", val);
	if (!ret && k->o->swappiness >= 0) {
		snprintf(val, sizeof(val), "%d", k->o->swappiness);
		ret = put_filef(k->cg, "memory.swappiness", val);
	}
	return ret;
}

static int setup_trace(struct kref *k, dev_t dev)
{
	static const char *const events[] = { "block_rq_issue", "block_rq_complete" };
	char path[PATH_MAX + 128], filter[64];
	int ret;

	snprintf(k->tracefs, sizeof(k->tracefs), "%s", RL_KREF_TRACEFS);
	if (access(RL_KREF_TRACEFS "/instances", F_OK) < 0) {
		/* not mounted: our own mount, so that nothing is left behind */
		snprintf(k->tracefs, sizeof(k->tracefs), "%s/tracefs", k->dir);
		if (mkdir(k->tracefs, 0700) < 0 || mount("tracefs", k->tracefs, "tracefs", 0, NULL) < 0) {
			int e = errno;

			fprintf(stderr, "%s kernel-run: cannot mount tracefs: %s\n", rl_program,
				strerror(e));
			return -e;
		}
		k->tracefs_mounted = true;
	}
	snprintf(k->inst, sizeof(k->inst), "%s/instances/reclaimlab-%d", k->tracefs, (int)getpid());
	if (mkdir(k->inst, 0700) < 0) {
		int e = errno;

		fprintf(stderr, "%s kernel-run: tracefs instance %s: %s\n", rl_program, k->inst,
			strerror(e));
		k->inst[0] = 0;
		return -e;
	}
	/* the kernel's dev_t in trace events is MAJOR << 20 | MINOR */
	snprintf(filter, sizeof(filter), "dev == %u", (major(dev) << 20) | minor(dev));
	if ((ret = put_filef(k->inst, "buffer_size_kb", "16384")))
		return ret;
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
		snprintf(path, sizeof(path), "%s/events/block/%s", k->inst, events[i]);
		if ((ret = put_filef(path, "filter", filter)) || (ret = put_filef(path, "enable", "1")))
			return ret;
	}
	snprintf(path, sizeof(path), "%s/trace_pipe", k->inst);
	k->trace_fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (k->trace_fd < 0) {
		int e = errno;

		fprintf(stderr, "%s kernel-run: %s: %s\n", rl_program, path, strerror(e));
		return -e;
	}
	return put_filef(k->inst, "tracing_on", "1");
}

static uint64_t trace_overruns(const struct kref *k)
{
	char path[PATH_MAX + 128], line[128];
	uint64_t total = 0;

	for (int cpu = 0; cpu < 4096; cpu++) {
		unsigned long long v;
		FILE *f;

		snprintf(path, sizeof(path), "%s/per_cpu/cpu%d/stats", k->inst, cpu);
		if (!(f = fopen(path, "re")))
			break;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "overrun: %llu", &v) == 1)
				total += v;
		fclose(f);
	}
	return total;
}

/* SIGKILL to every task left in the cgroup, until it is empty (5 s at most). */
static void empty_cgroup(const char *cg)
{
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	for (int i = 0; i < 50; i++) {
		FILE *f = fopen(path, "re");
		bool any = false;
		int pid;

		if (!f)
			return;
		while (fscanf(f, "%d", &pid) == 1) {
			any = true;
			kill(pid, SIGKILL);
		}
		fclose(f);
		if (!any)
			return;
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		usleep(100000);
	}
}

static void teardown(struct kref *k)
{
	if (k->cg[0]) {
		empty_cgroup(k->cg);
		if (rmdir(k->cg) < 0)
			fprintf(stderr, "%s kernel-run: rmdir %s: %s\n", rl_program, k->cg,
				strerror(errno));
	}
	if (k->trace_fd >= 0)
		close(k->trace_fd);
	if (k->inst[0]) {
		if (rmdir(k->inst) < 0)
			fprintf(stderr, "%s kernel-run: rmdir %s: %s\n", rl_program, k->inst,
				strerror(errno));
	}
	if (k->tracefs_mounted && umount(k->tracefs) < 0 && umount2(k->tracefs, MNT_DETACH) < 0)
		fprintf(stderr, "%s kernel-run: umount %s: %s\n", rl_program, k->tracefs,
			strerror(errno));
	if (k->xfs_mounted && umount(k->mnt) < 0 && umount2(k->mnt, MNT_DETACH) < 0) {
		fprintf(stderr, "%s kernel-run: umount %s: %s; %s left in place\n", rl_program,
			k->mnt, strerror(errno), k->dir);
		return;
	}
	if (k->res->loopdev[0]) {
		char *argv[] = { "losetup", "-d", k->res->loopdev, NULL };

		if (rl_bench_run(argv, NULL, false))
			fprintf(stderr, "%s kernel-run: losetup -d %s failed\n", rl_program,
				k->res->loopdev);
	}
	if (k->dir) {
		char *argv[] = { "rm", "-rf", "--one-file-system", k->dir, NULL };

		rl_bench_run(argv, NULL, false);
	}
}

/* The workload: into the cgroup, cwd on XFS, then exec. */
static _Noreturn void child(const struct kref *k)
{
	char path[PATH_MAX + 16], pid[16];

	snprintf(path, sizeof(path), "%s/cgroup.procs", k->cg);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if (put_file(path, pid) < 0 || chdir(k->mnt) < 0) {
		fprintf(stderr, "%s kernel-run: cannot enter %s / %s: %s\n", rl_program, k->cg,
			k->mnt, strerror(errno));
		_exit(RL_KREF_EXIT_FAILED);
	}
	if (k->trace_fd >= 0)
		close(k->trace_fd);
	execvp(k->o->argv[0], k->o->argv);
	fprintf(stderr, "%s kernel-run: %s: %s\n", rl_program, k->o->argv[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

static int run_workload(struct kref *k)
{
	uint64_t before[RL_KREF_NVMSTATS] = { 0 };
	bool present[RL_KREF_NVMSTATS];
	double t0;
	pid_t pid;
	int ws = 0, ret = 0, fd;
	char path[PATH_MAX + 16];

	read_counters("/proc/vmstat", rl_kref_vmstat_names, RL_KREF_NVMSTATS, present, before);
	fflush(NULL);
	t0 = now();
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "%s kernel-run: fork: %s\n", rl_program, strerror(errno));
		return -errno;
	}
	if (pid == 0)
		child(k);
	for (;;) {
		struct pollfd pfd = { .fd = k->trace_fd, .events = POLLIN };
		pid_t r;

		poll(&pfd, 1, 100);
		if ((ret = drain_trace(k)) < 0 || interrupted)
			kill(pid, SIGKILL);
		r = waitpid(pid, &ws, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			fprintf(stderr, "%s kernel-run: waitpid: %s\n", rl_program, strerror(errno));
			return -errno;
		}
	}
	k->res->wall_seconds = now() - t0;
	k->res->exit_status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	/* what the workload left dirty is its writeback too: flush it while traced */
	fd = open(k->mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		syncfs(fd);
		close(fd);
	}
	snprintf(path, sizeof(path), "%s/memory.stat", k->cg);
	read_counters(path, rl_kref_stat_names, RL_KREF_NSTATS, k->res->stat_present,
		      k->res->stat);
	read_counters("/proc/vmstat", rl_kref_vmstat_names, RL_KREF_NVMSTATS,
		      k->res->vmstat_present, k->res->vmstat_delta);
	for (int i = 0; i < RL_KREF_NVMSTATS; i++)
		k->res->vmstat_delta[i] -= k->res->vmstat_present[i] ? before[i] : 0;
	put_filef(k->inst, "tracing_on", "0");
	if (ret == 0)
		ret = drain_trace(k);
	k->res->lost_events = trace_overruns(k);
	if (k->keep && fflush(k->keep) != 0) {
		fprintf(stderr, "%s kernel-run: --keep-trace %s: %s\n", rl_program, k->o->keep_trace,
			strerror(errno));
		ret = ret ? ret : -EIO;
	}
	return interrupted ? -EINTR : ret;
}

int rl_kref_run(const struct rl_kref_opts *o, struct rl_kref_result *res)
{
	struct sigaction sa = { .sa_handler = on_signal }, old[3];
	static const int sigs[3] = { SIGINT, SIGTERM, SIGHUP };
	struct kref k = { .o = o, .res = res, .trace_fd = -1 };
	const char *base = o->dir ? o->dir : getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	char tmpl[PATH_MAX], why[160];
	struct stat st;
	int ret;

	memset(res, 0, sizeof(*res));
	if ((ret = rl_kref_check(why, sizeof(why)))) {
		fprintf(stderr, "%s kernel-run: cannot run here: %s\n", rl_program, why);
		return ret;
	}
	if (!o->argv || !o->argv[0]) {
		fprintf(stderr, "%s kernel-run: no workload to run\n", rl_program);
		return -EINVAL;
	}
	if (o->keep_trace && !(k.keep = fopen(o->keep_trace, "we"))) {
		ret = -errno;
		fprintf(stderr, "%s kernel-run: --keep-trace %s: %s\n", rl_program, o->keep_trace,
			strerror(errno));
		return ret;
	}
	snprintf(tmpl, sizeof(tmpl), "%s/rl-kref.XXXXXX", base);
	if (!(k.dir = mkdtemp(tmpl))) {
		ret = -errno;
		fprintf(stderr, "%s kernel-run: %s: %s\n", rl_program, tmpl, strerror(errno));
		if (k.keep)
			fclose(k.keep);
		return ret;
	}
	interrupted = 0;
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &old[i]);

	ret = setup_xfs(&k);
	if (!ret && !interrupted)
		ret = setup_cgroup(&k);
	if (!ret && !interrupted) {
		if (stat(res->loopdev, &st) < 0) {
			ret = -errno;
			fprintf(stderr, "%s kernel-run: %s: %s\n", rl_program, res->loopdev,
				strerror(errno));
		} else {
			ret = setup_trace(&k, st.st_rdev);
		}
	}
	if (!ret && interrupted)
		ret = -EINTR;
	if (!ret)
		ret = run_workload(&k);
	teardown(&k);
	if (k.keep)
		fclose(k.keep);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);
	if (ret == -EINTR)
		fprintf(stderr, "%s kernel-run: interrupted; everything it made is removed\n",
			rl_program);
	rl_kref_summarize(res);
	return ret;
}

void rl_kref_result_free(struct rl_kref_result *res)
{
	free(res->ios);
	res->ios = NULL;
	res->nios = 0;
}

/* ---- output ---- */

int rl_kref_write_json(FILE *f, const struct rl_kref_opts *o, const struct rl_kref_result *res)
{
	struct json_object *root = json_object_new_object(), *a = json_object_new_array(), *s;
	int ret = 0;

	for (char *const *p = o->argv; *p; p++)
		json_object_array_add(a, json_object_new_string(*p));
	json_object_object_add(root, "argv", a);
	json_object_object_add(root, "mem_bytes", json_object_new_uint64(o->mem));
	json_object_object_add(root, "image_size", json_object_new_uint64(o->image_size));
	json_object_object_add(root, "swappiness",
			       o->swappiness >= 0 ? json_object_new_int(o->swappiness) : NULL);
	json_object_object_add(root, "filesystem", json_object_new_string("xfs"));
	json_object_object_add(root, "loop_device", json_object_new_string(res->loopdev));
	json_object_object_add(root, "exit_status", json_object_new_int(res->exit_status));
	json_object_object_add(root, "wall_seconds", json_object_new_double(res->wall_seconds));
	json_object_object_add(root, "write_ios", json_object_new_uint64(res->write_ios));
	json_object_object_add(root, "write_bytes", json_object_new_uint64(res->write_bytes));
	json_object_object_add(root, "mean_write_bytes", json_object_new_double(res->mean_write_bytes));
	json_object_object_add(root, "read_ios", json_object_new_uint64(res->read_ios));
	json_object_object_add(root, "read_bytes", json_object_new_uint64(res->read_bytes));
	json_object_object_add(root, "write_seeks", json_object_new_uint64(res->write_seeks));
	json_object_object_add(root, "write_seek_sectors",
			       json_object_new_uint64(res->write_seek_sectors));
	json_object_object_add(root, "mean_write_seek_sectors",
			       json_object_new_double(res->mean_write_seek_sectors));
	json_object_object_add(root, "lost_events", json_object_new_uint64(res->lost_events));
	s = json_object_new_object();
	for (int i = 0; i < RL_KREF_NSTATS; i++)
		json_object_object_add(s, rl_kref_stat_names[i], res->stat_present[i] ?
				       json_object_new_uint64(res->stat[i]) : NULL);
	json_object_object_add(root, "memory_stat", s);
	s = json_object_new_object();
	for (int i = 0; i < RL_KREF_NVMSTATS; i++)
		json_object_object_add(s, rl_kref_vmstat_names[i], res->vmstat_present[i] ?
				       json_object_new_uint64(res->vmstat_delta[i]) : NULL);
	json_object_object_add(root, "vmstat_delta_system_wide", s);
	if (fprintf(f, "%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
							       JSON_C_TO_STRING_NOSLASHESCAPE)) < 0)
		ret = -EIO;
	json_object_put(root);
	return ret;
}

void rl_kref_print_table(FILE *f, const struct rl_kref_result *res)
{
	char b1[32];

	fprintf(f, "kernel reference (XFS on %s, cgroup v1 memory limit)\n", res->loopdev);
	fprintf(f, "  %-22s %d\n", "exit status", res->exit_status);
	fprintf(f, "  %-22s %.2f s\n", "wall time", res->wall_seconds);
	fprintf(f, "  %-22s %" PRIu64 " (%s), mean %.1f KiB\n", "write IOs", res->write_ios,
		rl_fmt_size(res->write_bytes, b1, sizeof(b1)), res->mean_write_bytes / 1024);
	fprintf(f, "  %-22s %" PRIu64 " (%s)\n", "read IOs", res->read_ios,
		rl_fmt_size(res->read_bytes, b1, sizeof(b1)));
	fprintf(f, "  %-22s %" PRIu64 ", %" PRIu64 " sectors in all, mean %.0f\n", "write seeks",
		res->write_seeks, res->write_seek_sectors, res->mean_write_seek_sectors);
	for (int i = 0; i < RL_KREF_NSTATS; i++)
		if (res->stat_present[i])
			fprintf(f, "  %-22s %" PRIu64 "\n", rl_kref_stat_names[i], res->stat[i]);
	if (res->lost_events)
		fprintf(f, "  %-22s %" PRIu64 " (the counts above are low)\n", "lost trace events",
			res->lost_events);
}

/* ---- reclaimlab kernel-run ---- */

enum { OPT_MEM, OPT_IMAGE_SIZE, OPT_JSON, OPT_KEEP_TRACE, OPT_SWAPPINESS, OPT_DIR };

static const struct rl_opt kref_opts[] = {
	[OPT_MEM] = { "mem", 'm', "SIZE", "memory.limit_in_bytes of the cgroup (default 64M)" },
	[OPT_IMAGE_SIZE] = { "image-size", 0, "SIZE", "size of the XFS image (default 2G)" },
	[OPT_JSON] = { "json", 0, "FILE", "write the results as JSON to FILE" },
	[OPT_KEEP_TRACE] = { "keep-trace", 0, "FILE",
			     "write the block trace (tracefs text) to FILE" },
	[OPT_SWAPPINESS] = { "swappiness", 0, "N",
			     "memory.swappiness of the cgroup, 0 to 200 (default: inherited)" },
	[OPT_DIR] = { "dir", 'D', "DIR",
		      "where the image goes (default $TMPDIR, else /var/tmp); a real disk" },
	{ 0 },
};

static int kref_cmd_run(const struct rl_cmd *cmd, int argc, char **argv)
{
	struct rl_kref_opts o = { .mem = 64ull << 20, .image_size = 2ull << 30, .swappiness = -1 };
	struct rl_kref_result res;
	const char *json = NULL;
	int prog = rl_program_index(cmd, argc, argv), opt, ret;
	struct rl_parser p;
	uint32_t sw;
	FILE *jf = NULL;

	rl_parser_init(&p, cmd, prog, argv);
	while ((opt = rl_next_opt(&p)) >= 0) {
		switch (opt) {
		case OPT_MEM:
			if (!rl_opt_size(&p, "--mem", &o.mem))
				return RL_EXIT_USAGE;
			if (o.mem < (4u << 20)) {
				rl_usage_error(cmd, "--mem must be at least 4M");
				return RL_EXIT_USAGE;
			}
			break;
		case OPT_IMAGE_SIZE:
			if (!rl_opt_size(&p, "--image-size", &o.image_size))
				return RL_EXIT_USAGE;
			if (o.image_size < (300u << 20)) {
				rl_usage_error(cmd, "--image-size must be at least 300M (mkfs.xfs)");
				return RL_EXIT_USAGE;
			}
			break;
		case OPT_JSON:
			json = p.optarg;
			break;
		case OPT_KEEP_TRACE:
			o.keep_trace = p.optarg;
			break;
		case OPT_SWAPPINESS:
			if (!rl_opt_u32(&p, "--swappiness", &sw))
				return RL_EXIT_USAGE;
			if (sw > 200) {
				rl_usage_error(cmd, "--swappiness is 0 to 200");
				return RL_EXIT_USAGE;
			}
			o.swappiness = (int)sw;
			break;
		case OPT_DIR:
			o.dir = p.optarg;
			break;
		}
	}
	if (opt == RL_OPT_HELP)
		return RL_EXIT_OK;
	if (opt == RL_OPT_ERROR)
		return RL_EXIT_USAGE;
	if (prog >= argc) {
		rl_usage_error(cmd, "no program to run");
		return RL_EXIT_USAGE;
	}
	o.argv = &argv[prog];
	/* opened first, so that a bad FILE costs no run */
	if (json && !(jf = fopen(json, "we"))) {
		fprintf(stderr, "%s kernel-run: --json %s: %s\n", rl_program, json, strerror(errno));
		return RL_KREF_EXIT_FAILED;
	}
	ret = rl_kref_run(&o, &res);
	if (ret == 0) {
		rl_kref_print_table(stderr, &res);
		if (jf && rl_kref_write_json(jf, &o, &res) < 0)
			ret = -EIO;
	}
	if (jf && fclose(jf) != 0 && ret == 0)
		ret = -EIO;
	if (ret == -EIO && json)
		fprintf(stderr, "%s kernel-run: --json %s: cannot be written\n", rl_program, json);
	if (ret && json)
		unlink(json);
	rl_kref_result_free(&res);
	return ret ? RL_KREF_EXIT_FAILED : res.exit_status;
}

const struct rl_cmd rl_cmd_kernel_run = {
	.name = "kernel-run",
	.args = "[--] PROGRAM [ARGS...]",
	.summary = "Run a program under the kernel's own reclaim, as the reference",
	.description =
		"The reference for the pager's reclaim: makes an image of --image-size in DIR, "
		"attaches it to a loop device with direct IO, makes XFS on it and mounts it, "
		"creates a cgroup v1 memory cgroup with memory.limit_in_bytes --mem, and runs "
		"PROGRAM in it with its working directory on the XFS, while tracefs records "
		"the loop device's block requests (block_rq_issue, block_rq_complete). After "
		"the program exits, the filesystem is synced (still traced).\n\n"
		"The program's output is its own; the results go to stderr as a short table "
		"and, with --json, to FILE: wall time, exit status, write and read requests "
		"with their mean size, write seeks (a request not starting where the previous "
		"write ended; the distance in sectors), the cgroup's memory.stat counters and "
		"system-wide /proc/vmstat deltas. Options end at the first word that is not "
		"one of kernel-run's (or at '--').\n\n"
		"Everything it makes (mount, loop device, cgroup, tracefs instance, image) is "
		"removed before it exits, also on Ctrl-C. Needs root, the cgroup v1 memory "
		"controller at /sys/fs/cgroup/memory, loop devices, losetup, mkfs.xfs and "
		"tracefs. Exits with the program's status, or 125 if kernel-run could not do "
		"its part.",
	.opts = kref_opts,
	.run = kref_cmd_run,
};
