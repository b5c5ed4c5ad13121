/* SPDX-License-Identifier: MIT */
/*
 * reclaimlab bench pager: the pager's fault service latency against the
 * floor, a minimal userfaultfd handler, both measured in this invocation so
 * that the ratio means something on the machine at hand. A benchmark, not a
 * test: it reports numbers and checks nothing about them (beyond the
 * workload's own check that every page reads back right).
 *
 * The workload is rl-pager-touch (pager_touch.c), which times each page's
 * touch itself. The floor cases run it natively with --floor (handler in a
 * thread) and --floor-process (handler in another process: the pager's
 * daemon always is, and on some machines, virtual ones above all, the
 * switch between address spaces costs more than the fault); the pager
 * cases run it through `/proc/self/exe run --mem M --json FILE -- ...`, the
 * real product path (private daemon, shim, mimalloc heap), and take the
 * run's counters from its JSON.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"

#define TOUCH_PROGRAM	"rl-pager-touch"
#define MAX_RUNS	101

enum { PH_FIRST, PH_SECOND, NPHASES };	/* read, write; or fill, reread */

enum bcase { C_FLOOR_SEQ, C_FLOOR_RAND, C_PROC_SEQ, C_PROC_RAND, C_AMPLE_SEQ, C_AMPLE_RAND,
	     C_TIGHT_SEQ, C_TIGHT_RAND, NCASES };

enum kind {
	K_FLOOR,	/* rl-pager-touch --floor: the handler is a thread of the workload */
	K_PROC,		/* --floor-process: the handler is another process, as the daemon is */
	K_PAGER,	/* through `reclaimlab run` */
};

enum { R_FLOOR, R_PROC, NRATIOS };	/* p50 against which floor */

static const struct {
	const char *name;
	const char *order;	/* rl-pager-touch's ORDER */
	enum kind kind;
	bool refault;		/* --refault: fill, then reread */
	unsigned mem_quarters;	/* pager: --mem = size * mem_quarters / 4 */
	enum bcase floor[NRATIOS];	/* the floor cases of the same order */
} cases[NCASES] = {
	[C_FLOOR_SEQ] = { "floor seq", "seq", K_FLOOR, false, 0, { C_FLOOR_SEQ, C_PROC_SEQ } },
	[C_FLOOR_RAND] = { "floor rand", "rand", K_FLOOR, false, 0, { C_FLOOR_RAND, C_PROC_RAND } },
	[C_PROC_SEQ] = { "process seq", "seq", K_PROC, false, 0, { C_FLOOR_SEQ, C_PROC_SEQ } },
	[C_PROC_RAND] = { "process rand", "rand", K_PROC, false, 0, { C_FLOOR_RAND, C_PROC_RAND } },
	[C_AMPLE_SEQ] = { "pager seq", "seq", K_PAGER, false, 8, { C_FLOOR_SEQ, C_PROC_SEQ } },
	[C_AMPLE_RAND] = { "pager rand", "rand", K_PAGER, false, 8, { C_FLOOR_RAND, C_PROC_RAND } },
	[C_TIGHT_SEQ] = { "pager 25% seq", "seq", K_PAGER, true, 1, { C_FLOOR_SEQ, C_PROC_SEQ } },
	[C_TIGHT_RAND] = { "pager 25% rand", "rand", K_PAGER, true, 1,
			   { C_FLOOR_RAND, C_PROC_RAND } },
};

/* One phase line of rl-pager-touch. */
struct phase {
	char name[16];
	uint64_t pages;
	double p50_us, p99_us, mean_us, seconds;
};

/* The counters of one run (pager: the run's JSON; floor: its handler's). */
struct counters {
	uint64_t faults_missing, faults_wp, zero_fills, pages_read, refaults, pages_written,
		 evictions, peak_resident;
};

struct result {
	bool ok;
	struct phase ph[NPHASES];
	struct counters c;
};

/* The median over the runs of one case, and what the table shows. */
struct summary {
	bool ok;
	const char *phase[NPHASES];
	double p50_us[NPHASES], p99_us[NPHASES], faults_per_s[NPHASES];
	double ratio[NRATIOS][NPHASES];	/* < 0: none */
	struct counters c;
	uint64_t mem_bytes;
};

struct bench {
	uint64_t size;
	uint32_t runs;
	const char *backend;
	uint64_t image_size;
	bool json;
	int cpu;		/* pinned to it, or -1 */
	char self[PATH_MAX];
	char touch[PATH_MAX];
	char tmpdir[PATH_MAX];
	bool run_broken;	/* `run` itself failed: the other pager cases would too */
	struct summary sum[NCASES];
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

/* ---- finding the pieces ---- */

/* rl-pager-touch next to this executable (build tree and install), else in PATH. */
static bool find_touch(struct bench *b)
{
	return rl_bench_find_program(b->self, TOUCH_PROGRAM, b->touch, sizeof(b->touch));
}

/* The floor and the pager both need a full userfaultfd; say what to do once. */
static bool check_userfaultfd(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);

	if (fd >= 0) {
		close(fd);
		return true;
	}
	if (errno == EPERM || errno == EACCES)
		fprintf(stderr, "%s bench: userfaultfd is not allowed for this user: run as root, "
			"grant access to /dev/userfaultfd, or set 'sysctl "
			"vm.unprivileged_userfaultfd=1'\n", rl_program);
	else
		fprintf(stderr, "%s bench: userfaultfd: %s (the kernel needs "
			"CONFIG_USERFAULTFD)\n", rl_program, strerror(errno));
	return false;
}

/* ---- running one case ---- */

static bool parse_phase(const char *line, struct phase *ph)
{
	return sscanf(line, "phase %15s order=%*s pages=%" SCNu64 " p50_us=%lf p99_us=%lf "
		      "mean_us=%lf max_us=%*f seconds=%lf", ph->name, &ph->pages, &ph->p50_us,
		      &ph->p99_us, &ph->mean_us, &ph->seconds) == 6 && ph->pages && ph->seconds > 0;
}

/* Reads rl-pager-touch's output: two phase lines, and the floor's counters. */
static bool read_touch_output(const char *path, const char *label, bool floor,
			      struct result *r)
{
	char line[512];
	int nph = 0;
	bool have_floor = false;
	FILE *f = fopen(path, "r");

	if (!f) {
		fprintf(stderr, "%s bench: %s: %s\n", rl_program, path, strerror(errno));
		return false;
	}
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "phase ", 6) == 0 && nph < NPHASES) {
			if (parse_phase(line, &r->ph[nph]))
				nph++;
		} else if (floor && sscanf(line, "floor faults_missing=%" SCNu64 " faults_wp=%"
					   SCNu64, &r->c.faults_missing, &r->c.faults_wp) == 2) {
			have_floor = true;
		}
	}
	fclose(f);
	if (nph != NPHASES || (floor && !have_floor)) {
		fprintf(stderr, "%s bench: %s: %s printed %d of %d phase lines%s\n", rl_program,
			label, TOUCH_PROGRAM, nph, NPHASES,
			floor && !have_floor ? " and no floor counters" : "");
		return false;
	}
	return true;
}

static uint64_t json_u64(struct json_object *o, const char *key, const char *sub)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (sub && !json_object_object_get_ex(v, sub, &v))
		return 0;
	return (uint64_t)json_object_get_int64(v);
}

/* The counters `reclaimlab run --json` wrote. */
static bool read_run_json(const char *path, const char *label, struct counters *c)
{
	struct json_object *root = json_object_from_file(path);

	if (!root || !json_object_is_type(root, json_type_object)) {
		fprintf(stderr, "%s bench: %s: no counters from 'run --json' (%s: %s)\n",
			rl_program, label, path, json_util_get_last_err());
		if (root)
			json_object_put(root);
		return false;
	}
	if (!json_object_object_get_ex(root, "faults", NULL) ||
	    !json_object_object_get_ex(root, "evictions", NULL)) {
		fprintf(stderr, "%s bench: %s: 'run --json' wrote no \"faults\" or \"evictions\"\n",
			rl_program, label);
		json_object_put(root);
		return false;
	}
	c->faults_missing = json_u64(root, "faults", "missing");
	c->faults_wp = json_u64(root, "faults", "wp");
	c->zero_fills = json_u64(root, "zero_fills", NULL);
	c->pages_read = json_u64(root, "pages_read_in", NULL);
	c->refaults = json_u64(root, "refaults", NULL);
	c->pages_written = json_u64(root, "pages_written_back", NULL);
	c->evictions = json_u64(root, "evictions", NULL);
	c->peak_resident = json_u64(root, "peak_resident_frames", NULL);
	json_object_put(root);
	return true;
}

/*
 * A case whose counters do not show the faults it was built to cause
 * measured something else (a floor that did not fault every touch, a heap
 * the pager did not manage, a budget that evicted nothing): no number.
 */
static bool counters_plausible(enum bcase k, const struct result *r)
{
	const struct counters *c = &r->c;
	uint64_t pages = r->ph[PH_FIRST].pages;
	const char *why = NULL;

	if (!(cases[k].kind == K_PAGER) && (c->faults_missing != pages || c->faults_wp != pages))
		why = "the floor handler did not see exactly one missing and one write-protect "
		      "fault per page";
	else if ((cases[k].kind == K_PAGER) && !cases[k].refault &&
		 (c->faults_missing < pages || c->faults_wp < pages))
		why = "the pager saw fewer faults than pages touched: the workload's memory "
		      "was not paged";
	else if (cases[k].refault && (c->evictions == 0 || c->refaults == 0))
		why = "no evictions or no refaults with --mem at 25% of the footprint";
	if (!why)
		return true;
	fprintf(stderr, "%s bench: %s: %s (missing %" PRIu64 ", write-protect %" PRIu64
		", evictions %" PRIu64 ", refaults %" PRIu64 ", pages %" PRIu64 ")\n",
		rl_program, cases[k].name, why, c->faults_missing, c->faults_wp, c->evictions,
		c->refaults, pages);
	return false;
}

static void size_arg(char *buf, size_t len, uint64_t bytes)
{
	if (bytes % (1u << 20) == 0)
		snprintf(buf, len, "%" PRIu64 "M", bytes >> 20);
	else
		snprintf(buf, len, "%" PRIu64, bytes);
}

static void run_case(struct bench *b, enum bcase k, struct result *r)
{
	char out[PATH_MAX + 16], json[PATH_MAX + 16], size[32], mem[32], imgsz[32];
	char *argv[24];
	int n = 0, status;

	memset(r, 0, sizeof(*r));
	snprintf(out, sizeof(out), "%s/touch.out", b->tmpdir);
	snprintf(json, sizeof(json), "%s/run.json", b->tmpdir);
	size_arg(size, sizeof(size), b->size);
	size_arg(mem, sizeof(mem), b->size / 4 * cases[k].mem_quarters);
	unlink(json);
	if ((cases[k].kind == K_PAGER)) {
		argv[n++] = b->self;
		argv[n++] = "run";
		argv[n++] = "--mem";
		argv[n++] = mem;
		argv[n++] = "--json";
		argv[n++] = json;
		if (b->backend) {
			argv[n++] = "--backend";
			argv[n++] = (char *)b->backend;
		}
		if (b->image_size) {
			size_arg(imgsz, sizeof(imgsz), b->image_size);
			argv[n++] = "--image-size";
			argv[n++] = imgsz;
		}
		argv[n++] = "--";
	}
	argv[n++] = b->touch;
	if (cases[k].kind == K_FLOOR)
		argv[n++] = "--floor";
	else if (cases[k].kind == K_PROC)
		argv[n++] = "--floor-process";
	if (cases[k].refault)
		argv[n++] = "--refault";
	argv[n++] = (char *)cases[k].order;
	argv[n++] = size;
	argv[n] = NULL;

	status = rl_bench_run(argv, out, false);
	if (status != 0) {
		if (status < 0)
			fprintf(stderr, "%s bench: %s: %s\n", rl_program, cases[k].name,
				strerror(-status));
		else if ((cases[k].kind == K_PAGER) && status >= 125 && status <= 127) {
			fprintf(stderr, "%s bench: %s: 'reclaimlab run' failed (exit %d); the "
				"other pager cases are skipped\n", rl_program, cases[k].name,
				status);
			b->run_broken = true;
		} else
			fprintf(stderr, "%s bench: %s: %s exited with %d%s\n", rl_program,
				cases[k].name, TOUCH_PROGRAM, status,
				status == 70 ? " (stopped by the pager)" : "");
		unlink(out);
		return;
	}
	r->ok = read_touch_output(out, cases[k].name, !(cases[k].kind == K_PAGER), r) &&
		(!(cases[k].kind == K_PAGER) || read_run_json(json, cases[k].name, &r->c)) &&
		counters_plausible(k, r);
	unlink(out);
	unlink(json);
}

/* ---- summarising ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(v[0]), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Faults a phase took, from the counters: a first-touch read is a missing
 * fault, a write to a clean page a write-protect fault, a fill both (its
 * missing faults are the run's minus the reread's, which are all refaults).
 * The pager's counters include the few faults of the program's start.
 */
static double phase_faults(enum bcase k, int ph, const struct result *r)
{
	const struct counters *c = &r->c;

	if (!cases[k].refault)
		return (double)(ph == PH_FIRST ? c->faults_missing : c->faults_wp);
	if (ph == PH_FIRST)
		return (double)c->faults_missing - (double)c->refaults + (double)c->faults_wp;
	return (double)c->refaults;
}

static void summarise(struct bench *b, enum bcase k, const struct result *res, unsigned n)
{
	struct summary *s = &b->sum[k];
	double v[MAX_RUNS];
	unsigned i;

	s->mem_bytes = (cases[k].kind == K_PAGER) ? b->size / 4 * cases[k].mem_quarters : 0;
	s->phase[PH_FIRST] = cases[k].refault ? "fill" : "read";
	s->phase[PH_SECOND] = cases[k].refault ? "reread" : "write";
	s->ok = n > 0;
	for (i = 0; i < n; i++)
		s->ok &= res[i].ok;
	if (!s->ok)
		return;
	for (int ph = 0; ph < NPHASES; ph++) {
		for (i = 0; i < n; i++)
			v[i] = res[i].ph[ph].p50_us;
		s->p50_us[ph] = median(v, n);
		for (i = 0; i < n; i++)
			v[i] = res[i].ph[ph].p99_us;
		s->p99_us[ph] = median(v, n);
		for (i = 0; i < n; i++)
			v[i] = phase_faults(k, ph, &res[i]) / res[i].ph[ph].seconds;
		s->faults_per_s[ph] = median(v, n);
	}
#define MEDIAN_COUNTER(field)						\
	do {								\
		for (i = 0; i < n; i++)					\
			v[i] = (double)res[i].c.field;		\
		s->c.field = (uint64_t)median(v, n);			\
	} while (0)
	MEDIAN_COUNTER(faults_missing);
	MEDIAN_COUNTER(faults_wp);
	MEDIAN_COUNTER(zero_fills);
	MEDIAN_COUNTER(pages_read);
	MEDIAN_COUNTER(refaults);
	MEDIAN_COUNTER(pages_written);
	MEDIAN_COUNTER(evictions);
	MEDIAN_COUNTER(peak_resident);
#undef MEDIAN_COUNTER
}

/*
 * Against the floor of the same order: a read or a reread against the
 * floor's read, a write against its write, and a fill, which takes a
 * missing and a write-protect fault per page, against the sum of both.
 */
static void ratios(struct bench *b)
{
	for (int k = 0; k < NCASES; k++)
		for (int r = 0; r < NRATIOS; r++) {
			const struct summary *f = &b->sum[cases[k].floor[r]];
			struct summary *s = &b->sum[k];

			for (int ph = 0; ph < NPHASES; ph++) {
				double floor_p50;

				s->ratio[r][ph] = -1;
				if (!s->ok || !f->ok)
					continue;
				if (!cases[k].refault)
					floor_p50 = f->p50_us[ph];
				else if (ph == PH_FIRST)
					floor_p50 = f->p50_us[PH_FIRST] + f->p50_us[PH_SECOND];
				else
					floor_p50 = f->p50_us[PH_FIRST];
				if (floor_p50 > 0)
					s->ratio[r][ph] = s->p50_us[ph] / floor_p50;
			}
		}
}

/* ---- output ---- */

static void print_table(const struct bench *b)
{
	char sz[32];

	printf("footprint %s (%" PRIu64 " pages), %u run%s per case (medians), backend %s, ",
	       rl_fmt_size(b->size, sz, sizeof(sz)), b->size / 4096, b->runs,
	       b->runs == 1 ? "" : "s", b->backend ? b->backend : "deepfs");
	if (b->cpu >= 0)
		printf("all on CPU %d\n\n", b->cpu);
	else
		printf("CPUs as the scheduler places them\n\n");
	printf("%-14s %-6s %-6s %8s %8s %9s %9s %9s %9s %8s\n", "case", "--mem", "phase",
	       "p50 us", "p99 us", "faults/s", "p50/floor", "p50/proc", "evictions", "refaults");
	for (int k = 0; k < NCASES; k++) {
		const struct summary *s = &b->sum[k];

		for (int ph = 0; ph < NPHASES; ph++) {
			char mem[32] = "";

			if (cases[k].kind == K_PAGER && ph == PH_FIRST)
				size_arg(mem, sizeof(mem), s->mem_bytes);
			printf("%-14s %-6s %-6s", ph == PH_FIRST ? cases[k].name : "", mem,
			       s->phase[ph] ? s->phase[ph] : "");
			if (!s->ok) {
				printf(" %8s\n", "failed");
				continue;
			}
			printf(" %8.1f %8.1f %9.0f", s->p50_us[ph], s->p99_us[ph],
			       s->faults_per_s[ph]);
			for (int r = 0; r < NRATIOS; r++)
				if (s->ratio[r][ph] >= 0)
					printf(" %8.2fx", s->ratio[r][ph]);
				else
					printf(" %9s", "-");
			if (cases[k].kind == K_PAGER && ph == PH_FIRST)
				printf(" %9" PRIu64 " %8" PRIu64 "\n", s->c.evictions, s->c.refaults);
			else
				printf("\n");
		}
	}
	printf("\n");
	for (int k = C_AMPLE_SEQ; k <= C_AMPLE_RAND; k++) {
		const struct summary *s = &b->sum[k];

		if (s->ok && s->ratio[R_FLOOR][PH_FIRST] >= 0) {
			printf("goal, p50 within 1.5x of the floor with ample memory: %s read "
			       "%.2fx (%s)", cases[k].order, s->ratio[R_FLOOR][PH_FIRST],
			       s->ratio[R_FLOOR][PH_FIRST] <= 1.5 ? "met" : "not met");
			if (s->ratio[R_PROC][PH_FIRST] >= 0)
				printf("; %.2fx the floor in another process",
				       s->ratio[R_PROC][PH_FIRST]);
			printf("\n");
		}
	}
}

static struct json_object *json_or_null(double v, bool present)
{
	return present ? json_object_new_double(v) : NULL;
}

static void print_json(const struct bench *b)
{
	struct json_object *root = json_object_new_object(), *arr = json_object_new_array();

	json_object_object_add(root, "size", json_object_new_uint64(b->size));
	json_object_object_add(root, "runs", json_object_new_int64(b->runs));
	json_object_object_add(root, "backend", json_object_new_string(b->backend ? b->backend :
									 "deepfs"));
	json_object_object_add(root, "cpu", b->cpu >= 0 ? json_object_new_int(b->cpu) : NULL);
	for (int k = 0; k < NCASES; k++) {
		const struct summary *s = &b->sum[k];
		struct json_object *o = json_object_new_object(), *phs = json_object_new_array();

		json_object_object_add(o, "case", json_object_new_string(cases[k].name));
		json_object_object_add(o, "ok", json_object_new_boolean(s->ok));
		json_object_object_add(o, "mem_bytes", (cases[k].kind == K_PAGER) ?
				       json_object_new_uint64(s->mem_bytes) : NULL);
		for (int ph = 0; ph < NPHASES && s->ok; ph++) {
			struct json_object *p = json_object_new_object();

			json_object_object_add(p, "phase", json_object_new_string(s->phase[ph]));
			json_object_object_add(p, "p50_us", json_object_new_double(s->p50_us[ph]));
			json_object_object_add(p, "p99_us", json_object_new_double(s->p99_us[ph]));
			json_object_object_add(p, "faults_per_s",
					       json_object_new_double(s->faults_per_s[ph]));
			json_object_object_add(p, "p50_vs_floor",
					       json_or_null(s->ratio[R_FLOOR][ph],
							    s->ratio[R_FLOOR][ph] >= 0));
			json_object_object_add(p, "p50_vs_process_floor",
					       json_or_null(s->ratio[R_PROC][ph],
							    s->ratio[R_PROC][ph] >= 0));
			json_object_array_add(phs, p);
		}
		json_object_object_add(o, "phases", phs);
		if (s->ok) {
			struct json_object *c = json_object_new_object();

			json_object_object_add(c, "faults_missing",
					       json_object_new_uint64(s->c.faults_missing));
			json_object_object_add(c, "faults_wp", json_object_new_uint64(s->c.faults_wp));
			if ((cases[k].kind == K_PAGER)) {
				json_object_object_add(c, "zero_fills",
						       json_object_new_uint64(s->c.zero_fills));
				json_object_object_add(c, "pages_read_in",
						       json_object_new_uint64(s->c.pages_read));
				json_object_object_add(c, "refaults",
						       json_object_new_uint64(s->c.refaults));
				json_object_object_add(c, "pages_written_back",
						       json_object_new_uint64(s->c.pages_written));
				json_object_object_add(c, "evictions",
						       json_object_new_uint64(s->c.evictions));
				json_object_object_add(c, "peak_resident_frames",
						       json_object_new_uint64(s->c.peak_resident));
			}
			json_object_object_add(o, "counters", c);
		}
		json_object_array_add(arr, o);
	}
	json_object_object_add(root, "cases", arr);
	printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
						      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
}

/* ---- the command ---- */

int rl_bench_pager(const struct rl_bench_args *a)
{
	struct bench b = { .size = a->size ? a->size : 256ull << 20, .runs = a->runs ? a->runs : 1,
			   .backend = a->backend, .image_size = a->image_size, .json = a->json,
			   .cpu = -1 };
	struct sigaction sa = { .sa_handler = on_signal }, old[3];
	static const int sigs[3] = { SIGINT, SIGTERM, SIGHUP };
	static struct result res[MAX_RUNS];
	const char *tmp = getenv("TMPDIR");
	bool failed = false;
	ssize_t n;

	/* 4 pages at 25% is the least that has an eviction in it; 16 MiB keeps
	 * --mem at 25% above the pager's minimum budget. */
	if (b.size % 4096 || b.size < (16u << 20)) {
		rl_usage_error(a->cmd, "--size of 'bench pager' must be a multiple of 4K and at "
			       "least 16M (a quarter of it is the smallest --mem)");
		return RL_EXIT_USAGE;
	}
	if (b.runs > MAX_RUNS) {
		rl_usage_error(a->cmd, "--runs: at most %d", MAX_RUNS);
		return RL_EXIT_USAGE;
	}
	if (b.backend && strcmp(b.backend, "deepfs") != 0 && strcmp(b.backend, "file") != 0) {
		rl_usage_error(a->cmd, "bad --backend '%s': deepfs or file", b.backend);
		return RL_EXIT_USAGE;
	}
	n = readlink("/proc/self/exe", b.self, sizeof(b.self) - 1);
	if (n <= 0) {
		fprintf(stderr, "%s bench: /proc/self/exe: %s\n", rl_program, strerror(errno));
		return RL_EXIT_PROBLEM;
	}
	b.self[n] = 0;
	if (!find_touch(&b)) {
		fprintf(stderr, "%s bench: %s not found next to %s or in PATH\n", rl_program,
			TOUCH_PROGRAM, b.self);
		return RL_EXIT_PROBLEM;
	}
	if (!check_userfaultfd())
		return RL_EXIT_PROBLEM;
	if (a->pin) {
		cpu_set_t set;

		/* inherited by every process a case starts, the daemon included */
		CPU_ZERO(&set);
		if (a->cpu >= CPU_SETSIZE) {
			fprintf(stderr, "%s bench: --cpu %u: no such CPU\n", rl_program, a->cpu);
			return RL_EXIT_PROBLEM;
		}
		CPU_SET(a->cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0) {
			fprintf(stderr, "%s bench: --cpu %u: %s\n", rl_program, a->cpu,
				errno == EINVAL ? "no such CPU online" : strerror(errno));
			return RL_EXIT_PROBLEM;
		}
		b.cpu = (int)a->cpu;
	}
	snprintf(b.tmpdir, sizeof(b.tmpdir), "%s/rl-bench-pager.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(b.tmpdir)) {
		fprintf(stderr, "%s bench: %s: %s\n", rl_program, b.tmpdir, strerror(errno));
		return RL_EXIT_PROBLEM;
	}
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &old[i]);

	for (int k = 0; k < NCASES && !interrupted; k++) {
		unsigned i;

		for (i = 0; i < b.runs && !interrupted; i++) {
			if ((cases[k].kind == K_PAGER) && b.run_broken) {
				res[i].ok = false;
				continue;
			}
			if (!b.json)
				fprintf(stderr, "%s bench: %s, run %u of %u\n", rl_program,
					cases[k].name, i + 1, b.runs);
			run_case(&b, (enum bcase)k, &res[i]);
		}
		summarise(&b, (enum bcase)k, res, i);
		failed |= !b.sum[k].ok;
	}
	rmdir(b.tmpdir);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);
	if (interrupted) {
		fprintf(stderr, "%s bench: interrupted\n", rl_program);
		return RL_EXIT_PROBLEM;
	}
	ratios(&b);
	if (b.json)
		print_json(&b);
	else
		print_table(&b);
	return failed ? RL_EXIT_PROBLEM : RL_EXIT_OK;
}
