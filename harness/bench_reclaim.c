/* SPDX-License-Identifier: MIT */
/*
 * reclaimlab bench reclaim: issue 5's policy matrix. Every writeback
 * policy in both writeback modes runs each workload under `reclaimlab run`
 * (the real product path: private daemon, shim, deepfs image), and next to
 * them, in the same invocation, the references: the workload natively (no
 * budget), fio writing the same bytes sequentially with O_DIRECT next to
 * the image, and the real kernel (`kernel-run`: XFS on a loop device, the
 * workload in a memory cgroup of the same budget).
 *
 * The seeds' question is what reclaim does when it meets dirty pages at
 * the LRU tail. With the default dirty limits the flusher cleans nearly
 * every page first (measured, docs/reclaim.md), so the matrix runs with
 * background writeback off (--dirty-background-ratio 100, --dirty-ratio
 * 100) and the kernel's 30 s expiry: the situation of a memory cgroup far
 * below the global dirty limits, which is where the kernel reference, and
 * the seeds' complaint, come from.
 *
 * Workloads: (a) seq: N processes (exec'd by a shell, so each is a client
 * of the pager) each dirty their own file in order through a shared map, so
 * the LRU interleaves their pages; (b) random: one file dirtied in a random
 * permutation; (c) sort: GNU sort of a generated text, its heap over the
 * budget (anonymous memory: the kernel row needs swap, which this machine
 * may not have). mmapwrite checks its own files by reading them back; sort's
 * output is compared with the native one.
 *
 * Write IOs, their sizes, seeks and the time the device was busy writing
 * come from deepfs's IO log of each run (every write to the image: data,
 * log and metadata, as the kernel row counts every request on the loop
 * device), summarized with the kernel row's own code (rl_kref_summarize).
 * A benchmark: it prints ratios against the goals, it asserts nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "harness/kref.h"
#include "reclaim/pgdat.h"

#define MMAPWRITE	"rl-mmapwrite"
#define SEQ_PROCS	4
#define EXPIRE_MS	"30000"

enum workload { W_SEQ, W_RAND, W_SORT, NWORKLOADS };

static const char *const workload_names[NWORKLOADS] = { "seq", "random", "sort" };

/* One row of the table. */
struct cell {
	enum workload w;
	const char *what;		/* policy name, or "native", "kernel", "fio" */
	const char *wb;			/* "single"/"batch", or "" */
	bool ran;
	int status;			/* the workload's exit status; -1: could not run */
	bool output_ok;			/* sort: same bytes as natively */
	bool have_reclaim;		/* the pager's counters (pager rows) */
	bool have_scan;			/* scanned/reclaimed known (pager; kernel if cgroup says) */
	double wall;
	uint64_t scanned, reclaimed, written_kswapd, written_direct, written_flusher;
	uint64_t refaults;
	uint64_t stall_p50, stall_p99, stall_max, stall_count;	/* ns */
	uint64_t fault_p50, fault_p99, fault_max;		/* ns */
	/* the device's view (IO log, block trace, fio) */
	bool have_io;
	uint64_t write_ios, write_bytes, write_seeks, write_seek_sectors;
	double busy;			/* seconds with a write in flight */
};

struct rb {
	const struct rl_bench_args *a;
	char self[PATH_MAX], mmapwrite[PATH_MAX];
	char dir[PATH_MAX - 64];	/* scratch: inputs, outputs, logs (short names in it) */
	char sort_in[PATH_MAX];		/* sort's input, in dir */
	const char *base;		/* where images go: --dir, $TMPDIR or /var/tmp */
	uint64_t size, mem;
	bool kernel;			/* the kernel row can run */
	char kernel_why[256];
	bool fio;
	struct cell *cells;
	size_t ncells;
};

static const char *const wb_names[] = { "single", "batch" };

/* ---- small helpers ---- */

static void path_in(const struct rb *b, char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", b->dir, name);
}

static uint64_t get_u64(struct json_object *o, const char *key)
{
	struct json_object *v;

	return o && json_object_object_get_ex(o, key, &v) ? (uint64_t)json_object_get_int64(v) : 0;
}

static struct json_object *get_obj(struct json_object *o, const char *key)
{
	struct json_object *v;

	return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static bool same_file(const char *a, const char *b)
{
	FILE *fa = fopen(a, "r"), *fb = fopen(b, "r");
	bool same = fa && fb;
	char ba[65536], bb[65536];

	while (same) {
		size_t na = fread(ba, 1, sizeof(ba), fa), nb = fread(bb, 1, sizeof(bb), fb);

		if (na != nb || memcmp(ba, bb, na) != 0)
			same = false;
		if (na < sizeof(ba))
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

/* sort's input: lines of random words, deterministic. */
static int make_sort_input(const char *path, uint64_t bytes)
{
	FILE *f = fopen(path, "w");
	uint64_t x = 0x9e3779b97f4a7c15ull, n = 0;

	if (!f)
		return -errno;
	while (n < bytes) {
		char line[64];
		int len = 0;

		for (int w = 0; w < 4; w++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			len += snprintf(line + len, sizeof(line) - (size_t)len, "%s%08llx",
					w ? " " : "", (unsigned long long)(x & 0xffffffffull));
		}
		line[len++] = '\n';
		if (fwrite(line, 1, (size_t)len, f) != (size_t)len)
			break;
		n += (uint64_t)len;
	}
	if (fclose(f) != 0 || n < bytes)
		return -EIO;
	return 0;
}

/*
 * The workload's argv. file: the base name of mmapwrite's files ("env/f"
 * under the pager, "f" in the kernel row's cwd); out: sort's output.
 */
static void workload_argv(const struct rb *b, enum workload w, const char *file,
			  const char *out, char *buf[16], char sizes[2][32])
{
	static char script[] =
		"set -e; p=; for ((i = 0; i < $3; i++)); do "
		"\"$0\" \"$1.$i\" \"$2\" --order seq --seed $i & p=\"$p $!\"; done; "
		"for j in $p; do wait $j; done";
	size_t n = 0;

	switch (w) {
	case W_SEQ:
		snprintf(sizes[0], 32, "%" PRIu64, b->size / SEQ_PROCS);
		snprintf(sizes[1], 32, "%d", SEQ_PROCS);
		buf[n++] = "bash";
		buf[n++] = "-c";
		buf[n++] = script;
		buf[n++] = (char *)b->mmapwrite;
		buf[n++] = (char *)file;
		buf[n++] = sizes[0];
		buf[n++] = sizes[1];
		break;
	case W_RAND:
		snprintf(sizes[0], 32, "%" PRIu64, b->size);
		buf[n++] = (char *)b->mmapwrite;
		buf[n++] = (char *)file;
		buf[n++] = sizes[0];
		buf[n++] = "--order";
		buf[n++] = "random";
		break;
	case W_SORT:
		/* the whole input in memory: its heap is what reclaim pages */
		buf[n++] = "sort";
		buf[n++] = "-S";
		buf[n++] = "1G";
		buf[n++] = "-o";
		buf[n++] = (char *)out;
		buf[n++] = (char *)b->sort_in;
		break;
	case NWORKLOADS:
		break;
	}
	buf[n] = NULL;
}

/* ---- the device's view ---- */

/* The write counts of a summarized trace, the kernel's or deepfs's. */
static void set_device_view(struct cell *c, const struct rl_kref_result *res)
{
	c->have_io = true;
	c->write_ios = res->write_ios;
	c->write_bytes = res->write_bytes;
	c->write_seeks = res->write_seeks;
	c->write_seek_sectors = res->write_seek_sectors;
}

/* A write's start (+1) or end (-1) on the device, in seconds. */
struct io_edge {
	double t;
	int d;
};

static int edge_cmp(const void *x, const void *y)
{
	const struct io_edge *a = x, *b = y;

	return a->t < b->t ? -1 : a->t > b->t ? 1 : b->d - a->d;	/* starts first */
}

/* The time at least one write was in flight: the union of the intervals. */
static double busy_seconds(struct io_edge *e, size_t n)
{
	double busy = 0, since = 0;
	long pending = 0;

	qsort(e, n, sizeof(*e), edge_cmp);
	for (size_t i = 0; i < n; i++) {
		if (e[i].d > 0) {
			if (pending++ == 0)
				since = e[i].t;
		} else if (pending > 0 && --pending == 0) {	/* an end without its start: ignored */
			busy += e[i].t - since;
		}
	}
	return busy;
}

static int io_time_cmp(const void *x, const void *y)
{
	const struct rl_kref_io *a = x, *b = y;

	return a->time < b->time ? -1 : a->time > b->time;
}

/* deepfs's IO log: "submit_ns complete_ns R|W|F kind offset len error" */
static int read_iolog(const char *path, struct cell *c)
{
	struct rl_kref_result res = { 0 };
	struct io_edge *edges = NULL;
	FILE *f = fopen(path, "r");
	char line[256];
	size_t cap = 0;
	int err = 0;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e, off, len;
		unsigned kind;
		char dir;
		int ioerr;

		if (sscanf(line, "%llu %llu %c %u %llu %llu %d", &s, &e, &dir, &kind, &off, &len,
			   &ioerr) != 7) {
			err = -EINVAL;
			break;
		}
		if (dir != 'W' || len == 0)
			continue;
		if (res.nios == cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			void *n1 = realloc(res.ios, ncap * sizeof(*res.ios));
			void *n2 = n1 ? realloc(edges, 2 * ncap * sizeof(*edges)) : NULL;

			if (n1)
				res.ios = n1;
			if (!n1 || !n2) {
				err = -ENOMEM;
				break;
			}
			edges = n2;
			cap = ncap;
		}
		edges[2 * res.nios] = (struct io_edge){ (double)s / 1e9, 1 };
		edges[2 * res.nios + 1] = (struct io_edge){ (double)(e > s ? e : s) / 1e9, -1 };
		res.ios[res.nios++] = (struct rl_kref_io){ .time = (double)s / 1e9,
							   .sector = off / 512,
							   .bytes = (uint32_t)len, .rwbs = "W" };
	}
	fclose(f);
	if (!err) {
		/* The log is in completion order; seeks are judged in issue order. */
		qsort(res.ios, res.nios, sizeof(*res.ios), io_time_cmp);
		rl_kref_summarize(&res);
		set_device_view(c, &res);
		c->busy = busy_seconds(edges, 2 * res.nios);
	}
	free(edges);
	rl_kref_result_free(&res);
	return err;
}

/* ---- rows ---- */

static struct cell *new_cell(struct rb *b, enum workload w, const char *what, const char *wb)
{
	struct cell *n = realloc(b->cells, (b->ncells + 1) * sizeof(*n));

	if (!n)
		return NULL;
	b->cells = n;
	n = &b->cells[b->ncells++];
	*n = (struct cell){ .w = w, .what = what, .wb = wb, .status = -1 };
	return n;
}

static void native_row(struct rb *b, enum workload w, struct cell *c)
{
	char *argv[16], sizes[2][32], out[PATH_MAX], mnt[PATH_MAX];
	struct timespec t0, t1;

	path_in(b, out, sizeof(out), "sort.native");
	path_in(b, mnt, sizeof(mnt), "native");
	mkdir(mnt, 0700);
	/* mmapwrite's env/NAME is $RECLAIMLAB_MOUNT/NAME */
	setenv("RECLAIMLAB_MOUNT", mnt, 1);
	workload_argv(b, w, "env/f", out, argv, sizes);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	c->status = rl_bench_run(argv, "/dev/null", false);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	unsetenv("RECLAIMLAB_MOUNT");
	c->ran = true;
	c->output_ok = true;
	c->wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	for (int i = 0; i < SEQ_PROCS; i++) {
		char name[32], f[PATH_MAX];

		snprintf(name, sizeof(name), "native/f.%d", i);
		path_in(b, f, sizeof(f), name);
		unlink(f);
	}
	path_in(b, out, sizeof(out), "native/f");
	unlink(out);
	rmdir(mnt);
}

static void pager_row(struct rb *b, enum workload w, struct cell *c)
{
	char *argv[48], *wl[16], sizes[2][32], mem[32], json[PATH_MAX], iolog[PATH_MAX];
	char out[PATH_MAX], native[PATH_MAX];
	struct json_object *o, *rc, *lat;
	size_t n = 0;

	snprintf(mem, sizeof(mem), "%" PRIu64, b->mem);
	path_in(b, json, sizeof(json), "run.json");
	path_in(b, iolog, sizeof(iolog), "run.iolog");
	path_in(b, out, sizeof(out), "sort.paged");
	path_in(b, native, sizeof(native), "sort.native");
	unlink(json);
	unlink(iolog);
	argv[n++] = b->self;
	argv[n++] = "run";
	argv[n++] = "--mem";
	argv[n++] = mem;
	argv[n++] = "--policy";
	argv[n++] = (char *)c->what;
	argv[n++] = "--wb";
	argv[n++] = (char *)c->wb;
	argv[n++] = "--dirty-ratio";
	argv[n++] = "100";
	argv[n++] = "--dirty-background-ratio";
	argv[n++] = "100";
	argv[n++] = "--dirty-expire";
	argv[n++] = EXPIRE_MS;
	argv[n++] = "--iolog";
	argv[n++] = iolog;
	argv[n++] = "--json";
	argv[n++] = json;
	argv[n++] = "--";
	workload_argv(b, w, "env/f", out, wl, sizes);
	for (size_t i = 0; wl[i]; i++)
		argv[n++] = wl[i];
	argv[n] = NULL;

	int st = rl_bench_run(argv, "/dev/null", false);
	o = json_object_from_file(json);
	c->ran = true;
	c->status = o ? (int)get_u64(o, "exit_status") : (st ? st : -1);
	c->output_ok = w != W_SORT || (c->status == 0 && same_file(out, native));
	unlink(out);
	if (!o) {
		fprintf(stderr, "%s bench reclaim: %s %s %s: no counters (run's status %d)\n",
			rl_program, workload_names[w], c->what, c->wb, st);
		return;
	}
	c->have_reclaim = c->have_scan = true;
	c->wall = json_object_get_double(get_obj(o, "wall_seconds"));
	c->refaults = get_u64(o, "refaults");
	rc = get_obj(o, "reclaim");
	c->scanned = get_u64(rc, "pgscan_kswapd") + get_u64(rc, "pgscan_direct");
	c->reclaimed = get_u64(rc, "pgsteal_kswapd") + get_u64(rc, "pgsteal_direct");
	c->written_kswapd = get_u64(rc, "nr_written_kswapd");
	c->written_direct = get_u64(rc, "nr_written_direct");
	c->written_flusher = get_u64(rc, "nr_written_flusher");
	lat = get_obj(get_obj(rc, "latency_ns"), "direct_stall");
	c->stall_count = get_u64(lat, "count");
	c->stall_p50 = get_u64(lat, "p50");
	c->stall_p99 = get_u64(lat, "p99");
	c->stall_max = get_u64(lat, "max");
	lat = get_obj(get_obj(rc, "latency_ns"), "fault");
	c->fault_p50 = get_u64(lat, "p50");
	c->fault_p99 = get_u64(lat, "p99");
	c->fault_max = get_u64(lat, "max");
	json_object_put(o);
	int e = read_iolog(iolog, c);
	if (e)
		fprintf(stderr, "%s bench reclaim: the IO log %s: %s\n", rl_program, iolog,
			strerror(-e));
}

static void kernel_row(struct rb *b, enum workload w, struct cell *c)
{
	char *argv[16], sizes[2][32], out[PATH_MAX];
	struct rl_kref_result res;
	struct rl_kref_opts o = {
		.argv = argv, .mem = b->mem, .image_size = 2ull << 30, .swappiness = -1,
		.dir = b->base,
	};
	int saved, devnull;

	path_in(b, out, sizeof(out), "sort.kernel");
	workload_argv(b, w, "f", out, argv, sizes);
	/* the workload's stdout is not the table's */
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (saved >= 0 && devnull >= 0)
		dup2(devnull, STDOUT_FILENO);
	int err = rl_kref_run(&o, &res);
	if (saved >= 0) {
		dup2(saved, STDOUT_FILENO);
		close(saved);
	}
	if (devnull >= 0)
		close(devnull);
	if (err)
		return;
	c->ran = true;
	c->status = res.exit_status;
	c->output_ok = true;
	c->wall = res.wall_seconds;
	/* cgroup v1's memory.stat has no pgscan/pgsteal; v2's has */
	c->have_scan = res.stat_present[RL_KREF_STAT_pgscan] &&
		       res.stat_present[RL_KREF_STAT_pgsteal];
	if (c->have_scan) {
		c->scanned = res.stat[RL_KREF_STAT_pgscan];
		c->reclaimed = res.stat[RL_KREF_STAT_pgsteal];
	}
	if (res.stat_present[RL_KREF_STAT_workingset_refault_file])
		c->refaults = res.stat[RL_KREF_STAT_workingset_refault_file];
	set_device_view(c, &res);
	/* issue to completion of the write requests */
	struct io_edge *edges = malloc((res.nios ? res.nios : 1) * sizeof(*edges));
	size_t n = 0;

	for (size_t i = 0; edges && i < res.nios; i++)
		if (strchr(res.ios[i].rwbs, 'W'))
			edges[n++] = (struct io_edge){ res.ios[i].time,
						       res.ios[i].complete ? -1 : 1 };
	c->busy = edges ? busy_seconds(edges, n) : 0;
	free(edges);
	rl_kref_result_free(&res);
}

static void fio_row(struct rb *b, struct cell *c)
{
	char file[PATH_MAX + 32], size[48], out[PATH_MAX], name[PATH_MAX + 48];
	char *argv[] = { "fio", "--name=seqwrite", name, "--rw=write", "--bs=1M", "--direct=1",
			 "--ioengine=io_uring", "--iodepth=8", size, "--end_fsync=1",
			 "--output-format=json", NULL };
	struct json_object *o, *jobs, *wr;

	snprintf(file, sizeof(file), "%s/rl-bench-reclaim-fio.%d", b->base, (int)getpid());
	snprintf(name, sizeof(name), "--filename=%s", file);
	snprintf(size, sizeof(size), "--size=%" PRIu64, b->size);
	path_in(b, out, sizeof(out), "fio.json");
	int st = rl_bench_run(argv, out, true);
	unlink(file);
	o = json_object_from_file(out);
	c->ran = true;
	c->status = st;
	c->output_ok = true;
	if (st || !o || !json_object_object_get_ex(o, "jobs", &jobs) ||
	    json_object_array_length(jobs) < 1) {
		json_object_put(o);
		return;
	}
	wr = get_obj(json_object_array_get_idx(jobs, 0), "write");
	c->have_io = true;
	c->write_ios = get_u64(wr, "total_ios");
	c->write_bytes = get_u64(wr, "io_bytes");
	c->busy = (double)get_u64(wr, "runtime") / 1e3;	/* ms */
	c->wall = c->busy;
	json_object_put(o);
}

/* ---- the report ---- */

static double mib_s(const struct cell *c)
{
	return c->have_io && c->busy > 0 ? (double)c->write_bytes / 1048576.0 / c->busy : 0;
}

static void print_header(void)
{
	printf("%-7s %-11s %-6s %7s %8s %8s %7s %7s %7s %8s %7s %7s %9s %7s %s %s %8s\n",
	       "work", "policy", "wb", "wall_s", "scanned", "reclaim", "wr_ksw", "wr_dir",
	       "wr_flu", "wr_IOs", "KiB/IO", "seeks", "seek_GiB", "MiB/s", "stall_us(n p50 p99 max)",
	       "fault_us(p50 p99 max)", "refault");
}

static void print_cell(const struct cell *c)
{
	char status[48] = "";

	if (!c->ran) {
		printf("%-7s %-11s %-6s not run\n", workload_names[c->w], c->what, c->wb);
		return;
	}
	if (c->status != 0)
		snprintf(status, sizeof(status), "  FAILED (status %d)", c->status);
	else if (!c->output_ok)
		snprintf(status, sizeof(status), "  WRONG OUTPUT");
	printf("%-7s %-11s %-6s %7.1f", workload_names[c->w], c->what, c->wb, c->wall);
	if (c->have_scan)
		printf(" %8" PRIu64 " %8" PRIu64, c->scanned, c->reclaimed);
	else
		printf(" %8s %8s", "-", "-");
	if (c->have_reclaim)
		printf(" %7" PRIu64 " %7" PRIu64 " %7" PRIu64, c->written_kswapd, c->written_direct,
		       c->written_flusher);
	else
		printf(" %7s %7s %7s", "-", "-", "-");
	if (c->have_io)
		printf(" %8" PRIu64 " %7.1f %7" PRIu64 " %9.2f %7.1f", c->write_ios,
		       c->write_ios ? (double)c->write_bytes / 1024.0 / (double)c->write_ios : 0.0,
		       c->write_seeks, (double)c->write_seek_sectors * 512.0 / (1u << 30), mib_s(c));
	else
		printf(" %8s %7s %7s %9s %7s", "-", "-", "-", "-", "-");
	if (c->have_reclaim)
		printf(" %5" PRIu64 " %5" PRIu64 " %6" PRIu64 " %7" PRIu64 "  %5" PRIu64 " %6" PRIu64
		       " %7" PRIu64, c->stall_count, c->stall_p50 / 1000, c->stall_p99 / 1000,
		       c->stall_max / 1000, c->fault_p50 / 1000, c->fault_p99 / 1000,
		       c->fault_max / 1000);
	else
		printf(" %5s %5s %6s %7s  %5s %6s %7s", "-", "-", "-", "-", "-", "-", "-");
	if (c->have_reclaim || strcmp(c->what, "kernel") == 0)
		printf(" %8" PRIu64 "%s\n", c->refaults, status);
	else
		printf(" %8s%s\n", "-", status);
}

static const struct cell *find(const struct rb *b, enum workload w, const char *what,
			       const char *wb)
{
	for (size_t i = 0; i < b->ncells; i++) {
		const struct cell *c = &b->cells[i];

		if (c->w == w && strcmp(c->what, what) == 0 && strcmp(c->wb, wb) == 0 && c->ran &&
		    c->status == 0)
			return c;
	}
	return NULL;
}

static void print_goals(const struct rb *b, enum workload w)
{
	const struct cell *k = find(b, w, "kernel", ""), *fio = find(b, w, "fio", "");

	if (w == W_SEQ) {
		for (int m = 0; m < 2; m++) {
			const struct cell *p1 = find(b, w, "writepage", wb_names[m]);
			const struct cell *pn = find(b, w, "writepages", wb_names[m]);

			if (p1 && pn && p1->have_io && pn->have_io && pn->write_ios)
				printf("  goal (a) %s: writepages %" PRIu64 " write IOs, writepage %"
				       PRIu64 ": %.1fx fewer (goal: 10x)\n", wb_names[m],
				       pn->write_ios, p1->write_ios,
				       (double)p1->write_ios / (double)pn->write_ios);
		}
		for (size_t i = 0; fio && fio->have_io && i < b->ncells; i++) {
			const struct cell *c = &b->cells[i];

			if (c->w == w && c->ran && !c->status && strcmp(c->wb, "batch") == 0 &&
			    mib_s(fio) > 0)
				printf("  goal (a) batch %-11s writes at %.1f MiB/s while writing, "
				       "fio %.1f: %.2fx (goal: 0.9x)\n", c->what, mib_s(c), mib_s(fio),
				       mib_s(c) / mib_s(fio));
		}
	}
	if (w == W_RAND && k && k->have_io) {
		for (size_t i = 0; i < b->ncells; i++) {
			const struct cell *c = &b->cells[i];

			if (c->w != w || !c->ran || c->status || !c->have_io || !*c->wb)
				continue;
			printf("  goal (b) %-11s %-6s write IOs %.2fx the kernel's, seek distance "
			       "%.2fx (goal: both below 1)\n", c->what, c->wb,
			       k->write_ios ? (double)c->write_ios / (double)k->write_ios : 0.0,
			       k->write_seek_sectors ? (double)c->write_seek_sectors /
						       (double)k->write_seek_sectors : 0.0);
		}
	}
}

static struct json_object *cell_json(const struct cell *c)
{
	struct json_object *o = json_object_new_object();

#define U(k, v) json_object_object_add(o, k, json_object_new_uint64(v))
	json_object_object_add(o, "workload", json_object_new_string(workload_names[c->w]));
	json_object_object_add(o, "policy", json_object_new_string(c->what));
	json_object_object_add(o, "wb", *c->wb ? json_object_new_string(c->wb) : NULL);
	json_object_object_add(o, "ran", json_object_new_boolean(c->ran));
	json_object_object_add(o, "exit_status", json_object_new_int(c->status));
	json_object_object_add(o, "output_ok", json_object_new_boolean(c->output_ok));
	json_object_object_add(o, "wall_seconds", json_object_new_double(c->wall));
	if (c->have_scan) {
		U("scanned", c->scanned);
		U("reclaimed", c->reclaimed);
	}
	U("refaults", c->refaults);
	if (!c->have_reclaim)
		goto io;
	U("written_kswapd", c->written_kswapd);
	U("written_direct", c->written_direct);
	U("written_flusher", c->written_flusher);
	U("direct_stalls", c->stall_count);
	U("direct_stall_p50_ns", c->stall_p50);
	U("direct_stall_p99_ns", c->stall_p99);
	U("direct_stall_max_ns", c->stall_max);
	U("fault_p50_ns", c->fault_p50);
	U("fault_p99_ns", c->fault_p99);
	U("fault_max_ns", c->fault_max);
io:
	if (c->have_io) {
		U("write_ios", c->write_ios);
		U("write_bytes", c->write_bytes);
		U("write_seeks", c->write_seeks);
		U("write_seek_sectors", c->write_seek_sectors);
		json_object_object_add(o, "write_busy_seconds", json_object_new_double(c->busy));
	}
#undef U
	return o;
}

/* ---- the matrix ---- */

/* Every name in list must be one of names[0..n). */
static bool check_list(const struct rl_bench_args *a, const char *opt, const char *list,
		       const char *const *names, size_t n)
{
	for (const char *p = list; p && *p;) {
		size_t len = strcspn(p, ","), i;

		for (i = 0; i < n; i++)
			if (names[i] && strlen(names[i]) == len && strncmp(p, names[i], len) == 0)
				break;
		if (i == n) {
			rl_usage_error(a->cmd, "--%s: unknown '%.*s'", opt, (int)len, p);
			return false;
		}
		p += len + (p[len] == ',');
	}
	return true;
}

static void run_workload(struct rb *b, enum workload w)
{
	struct cell *c;

	fprintf(stderr, "%s bench reclaim: workload %s\n", rl_program, workload_names[w]);
	c = new_cell(b, w, "native", "");
	if (c)
		native_row(b, w, c);
	for (int pol = 0; pol < NR_RL_POLICIES; pol++) {
		const char *name = rl_policy_name((enum rl_policy)pol);

		if (!name || !rl_list_has(b->a->policies, name))
			continue;
		for (int m = 0; m < 2; m++) {
			if (!rl_list_has(b->a->modes, wb_names[m]))
				continue;
			fprintf(stderr, "  %s %s\n", name, wb_names[m]);
			c = new_cell(b, w, name, wb_names[m]);
			if (c)
				pager_row(b, w, c);
		}
	}
	if (w != W_SORT && b->kernel && (c = new_cell(b, w, "kernel", "")))
		kernel_row(b, w, c);
	if (w == W_SEQ && b->fio && (c = new_cell(b, w, "fio", "")))
		fio_row(b, c);
}

int rl_bench_reclaim(const struct rl_bench_args *a)
{
	struct rb b = { .a = a };
	const char *policy_names[NR_RL_POLICIES];
	char tmpl[PATH_MAX];
	ssize_t n;
	int ret = RL_EXIT_OK;

	for (int i = 0; i < NR_RL_POLICIES; i++)
		policy_names[i] = rl_policy_name((enum rl_policy)i);
	if (!check_list(a, "workloads", a->workloads, workload_names, NWORKLOADS) ||
	    !check_list(a, "policies", a->policies, policy_names, NR_RL_POLICIES) ||
	    !check_list(a, "modes", a->modes, wb_names, 2))
		return RL_EXIT_USAGE;
	b.size = a->size ? a->size : 64ull << 20;
	b.mem = a->mem ? a->mem : b.size / 4;
	if (b.size % (SEQ_PROCS * 4096) || b.mem < (4u << 20)) {
		rl_usage_error(a->cmd, "--size must be a multiple of %d KiB and --mem at least 4M",
			       SEQ_PROCS * 4);
		return RL_EXIT_USAGE;
	}
	n = readlink("/proc/self/exe", b.self, sizeof(b.self) - 1);
	if (n < 0) {
		fprintf(stderr, "%s bench: /proc/self/exe: %s\n", rl_program, strerror(errno));
		return RL_EXIT_PROBLEM;
	}
	b.self[n] = '\0';
	if (!rl_bench_find_program(b.self, MMAPWRITE, b.mmapwrite, sizeof(b.mmapwrite))) {
		fprintf(stderr, "%s bench reclaim: cannot find %s next to %s or in PATH\n",
			rl_program, MMAPWRITE, b.self);
		return RL_EXIT_PROBLEM;
	}
	b.base = a->dir ? a->dir : getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	/* `run` puts its image in $TMPDIR: the same disk as the other rows */
	setenv("TMPDIR", b.base, 1);
	snprintf(tmpl, sizeof(tmpl), "%s/rl-bench-reclaim-XXXXXX", b.base);
	if (!mkdtemp(tmpl)) {
		fprintf(stderr, "%s bench reclaim: mkdtemp in %s: %s\n", rl_program, b.base,
			strerror(errno));
		return RL_EXIT_PROBLEM;
	}
	if (strlen(tmpl) >= sizeof(b.dir)) {
		fprintf(stderr, "%s bench reclaim: %s: too long a path\n", rl_program, tmpl);
		rmdir(tmpl);
		return RL_EXIT_USAGE;
	}
	memcpy(b.dir, tmpl, strlen(tmpl) + 1);
	b.kernel = rl_kref_check(b.kernel_why, sizeof(b.kernel_why)) == 0;
	{
		char *probe[] = { "fio", "--version", NULL };

		b.fio = rl_bench_run(probe, "/dev/null", true) == 0;
	}
	path_in(&b, b.sort_in, sizeof(b.sort_in), "sort.in");
	if (rl_list_has(a->workloads, "sort") && make_sort_input(b.sort_in, b.size / 4) < 0) {
		fprintf(stderr, "%s bench reclaim: cannot write %s\n", rl_program, b.sort_in);
		ret = RL_EXIT_PROBLEM;
		goto out;
	}

	for (int w = 0; w < NWORKLOADS; w++)
		if (rl_list_has(a->workloads, workload_names[w]))
			run_workload(&b, (enum workload)w);

	if (a->json) {
		struct json_object *o = json_object_new_object(), *rows = json_object_new_array();

		json_object_object_add(o, "size", json_object_new_uint64(b.size));
		json_object_object_add(o, "mem", json_object_new_uint64(b.mem));
		json_object_object_add(o, "dirty_expire_ms", json_object_new_int(atoi(EXPIRE_MS)));
		for (size_t i = 0; i < b.ncells; i++)
			json_object_array_add(rows, cell_json(&b.cells[i]));
		json_object_object_add(o, "rows", rows);
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		printf("reclaim matrix: %" PRIu64 " MiB per workload (seq: %d files of %" PRIu64
		       " MiB; sort: %" PRIu64 " MiB of text) under --mem %" PRIu64 " MiB; "
		       "background writeback off, dirty expiry %s ms\n",
		       b.size >> 20, SEQ_PROCS, (b.size / SEQ_PROCS) >> 20, (b.size / 4) >> 20,
		       b.mem >> 20, EXPIRE_MS);
		if (!b.kernel)
			printf("no kernel row: %s\n", b.kernel_why);
		if (!b.fio)
			printf("no fio row: fio is not installed\n");
		print_header();
		for (int w = 0; w < NWORKLOADS; w++) {
			bool any = false;

			for (size_t i = 0; i < b.ncells; i++)
				if (b.cells[i].w == (enum workload)w) {
					print_cell(&b.cells[i]);
					any = true;
				}
			if (any)
				print_goals(&b, (enum workload)w);
		}
	}
	for (size_t i = 0; i < b.ncells; i++)
		if (b.cells[i].ran && (b.cells[i].status != 0 || !b.cells[i].output_ok))
			ret = RL_EXIT_PROBLEM;
out:
	{
		const char *names[] = { "sort.in", "sort.native", "sort.kernel", "run.json",
					"run.iolog", "fio.json" };
		char p[PATH_MAX + 16];

		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			path_in(&b, p, sizeof(p), names[i]);
			unlink(p);
		}
		rmdir(b.dir);
	}
	free(b.cells);
	return ret;
}
