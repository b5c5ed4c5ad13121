/* SPDX-License-Identifier: MIT */
/*
 * The lock-order checker (lib/lockdep.h, docs/lockdep.md).
 *
 * Global state (classes, the dependency graph, usage bits, reports) sits
 * behind one internal mutex. The common case, an acquisition whose edges
 * and usage are all known already, reads only the adjacency bitmap and the
 * usage bits (atomics that are only ever set) and the thread's own stack,
 * and takes no lock: the mutex is for news.
 */
#include <errno.h>
#include <execinfo.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/lockdep.h"

#define MAX_CLASSES	256		/* ids 1..255; 0 = not tracked */
#define MAX_DEPTH	48		/* held locks per thread */
#define MAX_CTX		16		/* nested contexts per thread */
#define MAX_REPORTS	256
#define TRACE_DEPTH	24
#define WORDS		(MAX_CLASSES / 64)

enum { USED_IN_RECLAIM = 0, RECLAIM_ON = 1 };	/* usage bits */
static const char *const usage_name[2] = { "IN-RECLAIM_FS-W", "RECLAIM_FS-ON-W" };

struct trace {
	void *ip[TRACE_DEPTH];
	int n;
	char role[16];
	pid_t tid;
};

/* from -> to: "to" was taken while "from" was held. */
struct edge {
	unsigned from, to;
	void *from_ip[2];		/* where "from" had been taken */
	struct trace t;			/* where "to" was taken */
};

struct cls {
	struct rl_lock_class *key;
	atomic_uint usage;		/* 1 << USED_IN_RECLAIM | 1 << RECLAIM_ON */
	struct trace *ut[2];		/* where each usage was first seen */
	unsigned *out, nout, capout;	/* edge indexes, both directions */
	unsigned *in, nin, capin;
	bool recursion_reported;
};

struct report {
	enum rl_lockdep_kind kind;
	unsigned a, b;			/* dedup key with kind */
	char *text;
};

static struct {
	pthread_mutex_t lock;
	unsigned nclasses;		/* next id */
	struct cls cls[MAX_CLASSES];
	_Atomic uint64_t adj[MAX_CLASSES][WORDS];
	_Atomic uint64_t bad[MAX_CLASSES][WORDS];	/* edges refused: they close a cycle */
	struct edge *edges;
	unsigned nedges, capedges;
	struct report rep[MAX_REPORTS];
	unsigned nrep, dropped;
	atomic_uint opts;
} G = { .lock = PTHREAD_MUTEX_INITIALIZER, .nclasses = 1 };

atomic_bool rl_lockdep_on_;

struct held {
	unsigned cls;
	const void *inst;
	void *ip[2];			/* the lock site and its caller's caller */
	unsigned level;			/* contexts open when taken */
};

struct ctxent {
	enum rl_lockdep_ctx ctx;
};

static _Thread_local struct tstate {
	struct held h[MAX_DEPTH];
	unsigned depth;
	unsigned lost;			/* acquisitions past MAX_DEPTH, not recorded */
	struct ctxent c[MAX_CTX];
	unsigned nctx, ctx_lost;
	unsigned in_reclaim, noreclaim;
	char role[16];
	bool named;
} T;

/* ---- text ------------------------------------------------------------ */

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void __attribute__((format(printf, 2, 3))) sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;

	if (sb->oom)
		return;
	for (;;) {
		size_t room = sb->cap - sb->len;

		va_start(ap, fmt);
		int n = vsnprintf(sb->p ? sb->p + sb->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			sb->oom = true;
			return;
		}
		if ((size_t)n < room) {
			sb->len += (size_t)n;
			return;
		}
		size_t cap = sb->cap ? sb->cap * 2 : 1024;

		while (cap - sb->len <= (size_t)n)
			cap *= 2;
		char *p = realloc(sb->p, cap);

		if (!p) {
			sb->oom = true;
			return;
		}
		sb->p = p;
		sb->cap = cap;
	}
}

static const char *thread_role(struct tstate *t)
{
	if (!t->named) {
		if (pthread_getname_np(pthread_self(), t->role, sizeof(t->role)) || !t->role[0])
			snprintf(t->role, sizeof(t->role), "thread");
		t->named = true;
	}
	return t->role;
}

/* Where we are now, from the frame that returns to site (the annotated
 * caller) outwards; frames inside the checker are dropped. */
static void capture(struct trace *tr, void *site)
{
	void *ip[TRACE_DEPTH + 8];
	int n = backtrace(ip, TRACE_DEPTH + 8), k = 0;

	for (int i = 0; i < n; i++) {
		if (ip[i] == site) {
			k = i;
			break;
		}
	}
	tr->n = n - k > TRACE_DEPTH ? TRACE_DEPTH : n - k;
	memcpy(tr->ip, ip + k, (size_t)tr->n * sizeof(void *));
	snprintf(tr->role, sizeof(tr->role), "%s", thread_role(&T));
	tr->tid = gettid();
}

static void sb_ips(struct sbuf *sb, void *const *ip, int n, const char *indent)
{
	char **sym = backtrace_symbols(ip, n);

	for (int i = 0; i < n; i++) {
		if (sym)
			sb_printf(sb, "%s#%d %s\n", indent, i, sym[i]);
		else
			sb_printf(sb, "%s#%d [%p]\n", indent, i, ip[i]);
	}
	free(sym);
}

static void sb_trace(struct sbuf *sb, const struct trace *tr)
{
	sb_ips(sb, tr->ip, tr->n, "    ");
}

static void sb_site(struct sbuf *sb, void *const ip[2])
{
	sb_ips(sb, ip, ip[1] ? 2 : 1, "    ");
}

static const char *cname(unsigned id)
{
	return G.cls[id].key->name;
}

/* ---- reports ----------------------------------------------------------- */

static bool reported(enum rl_lockdep_kind kind, unsigned a, unsigned b)
{
	for (unsigned i = 0; i < G.nrep; i++)
		if (G.rep[i].kind == kind && G.rep[i].a == a && G.rep[i].b == b)
			return true;
	return false;
}

/* Takes sb's text. Called with G.lock held. */
static void emit(enum rl_lockdep_kind kind, unsigned a, unsigned b, struct sbuf *sb)
{
	if (sb->oom || !sb->p) {
		free(sb->p);
		sb->p = strdup("lockdep: out of memory while formatting a report\n");
	}
	if (!(atomic_load(&G.opts) & RL_LOCKDEP_QUIET) && sb->p) {
		/* One write so that reports from threads do not interleave. */
		if (write(STDERR_FILENO, sb->p, strlen(sb->p)) < 0) {
			/* stderr is gone: the report list still has it. */
		}
	}
	if (G.nrep == MAX_REPORTS) {
		G.dropped++;
		free(sb->p);
		return;
	}
	G.rep[G.nrep++] = (struct report){ .kind = kind, .a = a, .b = b, .text = sb->p };
}

static void header(struct sbuf *sb, const char *title)
{
	size_t n = strlen(title);
	char line[128];

	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	memset(line, '=', n);
	line[n] = 0;
	sb_printf(sb, "\n%s\nWARNING: %s\n", line, title);
	memset(line, '-', n);
	sb_printf(sb, "%s\n", line);
}

static void sb_held(struct sbuf *sb, struct tstate *t)
{
	sb_printf(sb, "\n%u lock%s held by %s/%d:\n", t->depth, t->depth == 1 ? "" : "s",
		  thread_role(t), gettid());
	for (unsigned i = 0; i < t->depth; i++) {
		sb_printf(sb, "  #%u: (%s){%p}, taken at:\n", i, cname(t->h[i].cls), t->h[i].inst);
		sb_site(sb, t->h[i].ip);
	}
}

/* Reports that need no graph: the lock itself is enough. */
static void report_simple(enum rl_lockdep_kind kind, unsigned a, unsigned b, const char *title,
			  const char *what, void *site)
{
	struct tstate *t = &T;
	struct sbuf sb = { 0 };
	struct trace tr;

	pthread_mutex_lock(&G.lock);
	if (reported(kind, a, b)) {
		pthread_mutex_unlock(&G.lock);
		return;
	}
	capture(&tr, site);
	header(&sb, title);
	sb_printf(&sb, "%s/%d %s\n", thread_role(t), gettid(), what);
	sb_printf(&sb, "at:\n");
	sb_trace(&sb, &tr);
	sb_held(&sb, t);
	emit(kind, a, b, &sb);
	pthread_mutex_unlock(&G.lock);
}

/* ---- classes and the graph --------------------------------------------- */

static unsigned class_id(struct rl_lock_class *c, void *site)
{
	unsigned id = atomic_load_explicit(&c->id, memory_order_acquire);

	if (id)
		return id;
	pthread_mutex_lock(&G.lock);
	id = atomic_load_explicit(&c->id, memory_order_relaxed);
	if (!id && G.nclasses < MAX_CLASSES) {
		id = G.nclasses++;
		G.cls[id] = (struct cls){ .key = c };
		atomic_store_explicit(&c->id, id, memory_order_release);
	}
	pthread_mutex_unlock(&G.lock);
	if (!id) {
		char what[160];

		snprintf(what, sizeof(what), "registers class \"%s\" but the table of %d classes is full; "
			 "it is not checked", c->name ? c->name : "?", MAX_CLASSES - 1);
		report_simple(RL_LOCKDEP_OVERFLOW, 2, 0, "lock class table full", what, site);
	}
	return id;
}

static bool adj_test(unsigned a, unsigned b)
{
	return atomic_load_explicit(&G.adj[a][b / 64], memory_order_acquire) >> (b % 64) & 1;
}

static bool bad_test(unsigned a, unsigned b)
{
	return atomic_load_explicit(&G.bad[a][b / 64], memory_order_relaxed) >> (b % 64) & 1;
}

static int push_idx(unsigned **v, unsigned *n, unsigned *cap, unsigned x)
{
	if (*n == *cap) {
		unsigned ncap = *cap ? *cap * 2 : 8;
		unsigned *p = realloc(*v, ncap * sizeof(**v));

		if (!p)
			return -ENOMEM;
		*v = p;
		*cap = ncap;
	}
	(*v)[(*n)++] = x;
	return 0;
}

static int add_edge(unsigned from, unsigned to, const struct held *h, const struct trace *tr)
{
	if (G.nedges == G.capedges) {
		unsigned ncap = G.capedges ? G.capedges * 2 : 64;
		struct edge *p = realloc(G.edges, ncap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		G.edges = p;
		G.capedges = ncap;
	}
	unsigned e = G.nedges;
	struct cls *f = &G.cls[from], *t = &G.cls[to];

	if (push_idx(&f->out, &f->nout, &f->capout, e))
		return -ENOMEM;
	if (push_idx(&t->in, &t->nin, &t->capin, e)) {
		f->nout--;
		return -ENOMEM;
	}
	G.edges[e] = (struct edge){ .from = from, .to = to, .from_ip = { h->ip[0], h->ip[1] }, .t = *tr };
	G.nedges++;
	atomic_fetch_or_explicit(&G.adj[from][to / 64], 1ull << (to % 64), memory_order_release);
	return 0;
}

/*
 * Breadth first from src along out-edges (forward) or in-edges, until a
 * class that is dst or, with dst 0, has usage bit ubit. The path is left in
 * via[] (the edge that reached each class). Returns the class found or 0.
 */
static unsigned bfs(unsigned src, bool forward, unsigned dst, int ubit, unsigned via[MAX_CLASSES])
{
	unsigned queue[MAX_CLASSES], qh = 0, qt = 0;
	uint64_t seen[WORDS] = { 0 };

	queue[qt++] = src;
	seen[src / 64] |= 1ull << (src % 64);
	while (qh < qt) {
		struct cls *c = &G.cls[queue[qh++]];
		unsigned n = forward ? c->nout : c->nin;
		const unsigned *v = forward ? c->out : c->in;

		for (unsigned i = 0; i < n; i++) {
			const struct edge *e = &G.edges[v[i]];
			unsigned x = forward ? e->to : e->from;

			if (seen[x / 64] >> (x % 64) & 1)
				continue;
			seen[x / 64] |= 1ull << (x % 64);
			via[x] = v[i];
			if (dst ? x == dst : (atomic_load(&G.cls[x].usage) >> ubit & 1))
				return x;
			queue[qt++] = x;
		}
	}
	return 0;
}

/* The path src -> ... -> dst that bfs() left in via[] (forward search). */
static unsigned path_forward(unsigned src, unsigned dst, const unsigned via[MAX_CLASSES],
			     unsigned out[MAX_CLASSES])
{
	unsigned n = 0;

	for (unsigned x = dst; x != src; x = G.edges[via[x]].from)
		out[n++] = via[x];
	for (unsigned i = 0; i < n / 2; i++) {	/* into src -> dst order */
		unsigned tmp = out[i];

		out[i] = out[n - 1 - i];
		out[n - 1 - i] = tmp;
	}
	return n;
}

/* Same for a backward search from src that found dst: dst -> ... -> src. */
static unsigned path_backward(unsigned src, unsigned dst, const unsigned via[MAX_CLASSES],
			      unsigned out[MAX_CLASSES])
{
	unsigned n = 0;

	for (unsigned x = dst; x != src; x = G.edges[via[x]].to)
		out[n++] = via[x];
	return n;
}

static void sb_edges(struct sbuf *sb, const unsigned *path, unsigned n, unsigned first_no)
{
	for (unsigned i = 0; i < n; i++) {
		const struct edge *e = &G.edges[path[i]];

		sb_printf(sb, "\n-> #%u (%s) -> (%s): first seen in %s/%d, holding (%s) taken at:\n",
			  first_no - i, cname(e->from), cname(e->to), e->t.role, e->t.tid, cname(e->from));
		sb_site(sb, e->from_ip);
		sb_printf(sb, "   when it took (%s) at:\n", cname(e->to));
		sb_trace(sb, &e->t);
	}
}

static void report_circular(struct tstate *t, const struct held *prev, unsigned next,
			    const unsigned *path, unsigned n, const struct trace *tr)
{
	struct sbuf sb = { 0 };
	unsigned a = prev->cls;

	header(&sb, "possible circular locking dependency detected");
	sb_printf(&sb, "%s/%d is trying to acquire lock:\n  (%s), at:\n", tr->role, tr->tid, cname(next));
	sb_trace(&sb, tr);
	sb_printf(&sb, "\nbut it already holds lock:\n  (%s){%p}, taken at:\n", cname(a), prev->inst);
	sb_site(&sb, prev->ip);
	sb_printf(&sb, "\nwhich lock already depends on the new lock.\n"
		  "\nthe existing dependency chain (in reverse order) is:\n");
	sb_edges(&sb, path, n, n);
	sb_printf(&sb, "\n-> #0 (%s) -> (%s): this acquisition, above.\n", cname(a), cname(next));
	if (n == 1) {
		sb_printf(&sb, "\n Possible unsafe locking scenario:\n\n"
			  "       CPU0                    CPU1\n"
			  "       ----                    ----\n"
			  "  lock(%s);\n"
			  "                               lock(%s);\n"
			  "                               lock(%s);\n"
			  "  lock(%s);\n\n *** DEADLOCK ***\n",
			  cname(a), cname(next), cname(a), cname(next));
	}
	sb_held(&sb, t);
	emit(RL_LOCKDEP_CIRCULAR, a, next, &sb);
}

static void sb_usage(struct sbuf *sb, unsigned id, int ubit)
{
	const struct trace *ut = G.cls[id].ut[ubit];

	sb_printf(sb, "\n{%s} state of (%s) was registered in %s/%d at:\n", usage_name[ubit],
		  cname(id), ut->role, ut->tid);
	sb_trace(sb, ut);
}

#define RECLAIM_SCENARIO \
	"\n Possible unsafe locking scenario:\n\n" \
	"       CPU0 (holds it, may reclaim)    CPU1 (in reclaim)\n" \
	"       ----                            ----\n" \
	"  lock(%s);\n" \
	"  <wait for reclaim to free memory>\n" \
	"                                       lock(%s);\n\n *** DEADLOCK ***\n"

/* safe -> unsafe: l is IN-RECLAIM, m is RECLAIM-ON, path l -> ... -> m. */
static void report_reclaim_order(unsigned l, unsigned m, const unsigned *path, unsigned n,
				 const char *why)
{
	struct sbuf sb = { 0 };

	if (reported(RL_LOCKDEP_RECLAIM_ORDER, l, m))
		return;
	header(&sb, "RECLAIM_FS-safe -> RECLAIM_FS-unsafe lock order detected");
	sb_printf(&sb, "%s\n(%s) is taken in reclaim and (%s), held where reclaim may run, "
		  "is taken under it:\n", why, cname(l), cname(m));
	sb_edges(&sb, path, n, n);
	sb_usage(&sb, l, USED_IN_RECLAIM);
	sb_usage(&sb, m, RECLAIM_ON);
	sb_printf(&sb, "\n A reclaimer holding (%s) waits for (%s), whose holder waits for reclaim.\n",
		  cname(l), cname(m));
	emit(RL_LOCKDEP_RECLAIM_ORDER, l, m, &sb);
}

/* Called with G.lock held; the usage bit was just set on id. */
static void check_usage(struct tstate *t, unsigned id, int ubit, const struct trace *tr)
{
	int other = !ubit;
	unsigned via[MAX_CLASSES], path[MAX_CLASSES], n, x;

	if (atomic_load(&G.cls[id].usage) >> other & 1) {
		struct sbuf sb = { 0 };

		if (reported(RL_LOCKDEP_RECLAIM_INCONSISTENT, id, 0))
			return;
		header(&sb, "inconsistent lock state");
		sb_printf(&sb, "inconsistent {%s} -> {%s} usage.\n", usage_name[other], usage_name[ubit]);
		if (ubit == USED_IN_RECLAIM)
			sb_printf(&sb, "%s/%d, in reclaim context, takes:\n  (%s)\n", tr->role, tr->tid,
				  cname(id));
		else
			sb_printf(&sb, "%s/%d may enter reclaim holding:\n  (%s)\n", tr->role, tr->tid,
				  cname(id));
		sb_usage(&sb, id, other);
		sb_usage(&sb, id, ubit);
		sb_printf(&sb, RECLAIM_SCENARIO, cname(id), cname(id));
		sb_held(&sb, t);
		emit(RL_LOCKDEP_RECLAIM_INCONSISTENT, id, 0, &sb);
		return;
	}
	if (ubit == USED_IN_RECLAIM) {
		x = bfs(id, true, 0, RECLAIM_ON, via);
		if (x) {
			n = path_forward(id, x, via, path);
			report_reclaim_order(id, x, path, n, "a class became IN-RECLAIM_FS:");
		}
	} else {
		x = bfs(id, false, 0, USED_IN_RECLAIM, via);
		if (x) {
			n = path_backward(id, x, via, path);
			report_reclaim_order(x, id, path, n, "a class became RECLAIM_FS-ON:");
		}
	}
}

static void mark_usage(struct tstate *t, unsigned id, int ubit, const struct trace *tr)
{
	struct cls *c = &G.cls[id];

	if (atomic_load(&c->usage) >> ubit & 1)
		return;
	c->ut[ubit] = malloc(sizeof(*tr));
	if (!c->ut[ubit])
		return;		/* not recorded: checked again next time */
	*c->ut[ubit] = *tr;
	atomic_fetch_or(&c->usage, 1u << ubit);
	check_usage(t, id, ubit, tr);
}

/* A new edge prev -> next, not in the graph yet. G.lock held. */
static void new_dependency(struct tstate *t, const struct held *prev, unsigned next,
			   const struct trace *tr)
{
	unsigned a = prev->cls, via[MAX_CLASSES], path[MAX_CLASSES], n;

	if (adj_test(a, next) || bad_test(a, next))
		return;
	if (bfs(next, true, a, 0, via)) {
		n = path_forward(next, a, via, path);
		atomic_fetch_or(&G.bad[a][next / 64], 1ull << (next % 64));
		report_circular(t, prev, next, path, n, tr);
		return;
	}
	if (add_edge(a, next, prev, tr))
		return;		/* out of memory: looked at again next time */

	/* The new edge can join an IN-RECLAIM class before it to a
	 * RECLAIM-ON class after it. */
	unsigned l = (atomic_load(&G.cls[a].usage) >> USED_IN_RECLAIM & 1) ? a
		     : bfs(a, false, 0, USED_IN_RECLAIM, via);

	if (!l)
		return;
	unsigned lpath[MAX_CLASSES], ln = l == a ? 0 : path_backward(a, l, via, lpath);
	unsigned m = (atomic_load(&G.cls[next].usage) >> RECLAIM_ON & 1) ? next
		     : bfs(next, true, 0, RECLAIM_ON, via);

	if (!m)
		return;
	n = ln;
	memcpy(path, lpath, ln * sizeof(*path));
	path[n++] = G.nedges - 1;
	if (m != next)
		n += path_forward(next, m, via, path + n);
	report_reclaim_order(l, m, path, n, "a new dependency joins them:");
}

/* ---- the hooks --------------------------------------------------------- */

static bool strict_unlock(void)
{
	return atomic_load_explicit(&G.opts, memory_order_relaxed) & RL_LOCKDEP_STRICT_UNLOCK;
}

static void acquire(struct tstate *t, struct rl_lock_class *c, const void *inst, bool trylock,
		    void *site, void *caller)
{
	unsigned id = class_id(c, site);

	if (!id)
		return;
	if (t->depth == MAX_DEPTH) {
		char what[160];

		t->lost++;
		snprintf(what, sizeof(what), "takes (%s) holding %d locks already; it is not checked",
			 c->name, MAX_DEPTH);
		report_simple(RL_LOCKDEP_OVERFLOW, 1, 0, "held lock stack overflow", what, site);
		return;
	}

	struct held *h = &t->h[t->depth];

	*h = (struct held){ .cls = id, .inst = inst, .ip = { site, caller }, .level = t->nctx };

	/* What is new: an edge from a held class, the recursion, a usage.
	 * A trylock cannot wait, so it adds no edge and no IN-RECLAIM usage
	 * (as the kernel's): reclaim's trylock_page is no hazard. */
	bool news = false;
	bool in_reclaim = t->in_reclaim && !trylock && !(c->flags & RL_LCF_RECLAIM_EXEMPT);

	if (in_reclaim && !(atomic_load(&G.cls[id].usage) >> USED_IN_RECLAIM & 1))
		news = true;
	for (unsigned i = 0; i < t->depth && !trylock && !news; i++) {
		if (t->h[i].cls == id)
			news = t->h[i].inst == inst || !(c->flags & RL_LCF_RECURSIVE);
		else
			news = !adj_test(t->h[i].cls, id) && !bad_test(t->h[i].cls, id);
	}
	if (news) {
		struct trace tr;

		capture(&tr, site);
		pthread_mutex_lock(&G.lock);
		for (unsigned i = 0; i < t->depth && !trylock; i++) {
			const struct held *p = &t->h[i];

			if (p->cls != id) {
				new_dependency(t, p, id, &tr);
				continue;
			}
			enum rl_lockdep_kind k = p->inst == inst ? RL_LOCKDEP_SELF_DEADLOCK
						 : RL_LOCKDEP_RECURSIVE;

			if (k == RL_LOCKDEP_RECURSIVE && (c->flags & RL_LCF_RECURSIVE))
				continue;
			if (reported(k, id, 0))
				continue;

			struct sbuf sb = { 0 };

			header(&sb, k == RL_LOCKDEP_SELF_DEADLOCK ? "recursive locking of the same lock"
				    : "possible recursive locking detected");
			sb_printf(&sb, "%s/%d is trying to acquire lock:\n  (%s){%p}, at:\n", tr.role,
				  tr.tid, c->name, inst);
			sb_trace(&sb, &tr);
			sb_printf(&sb, "\nbut it already holds %s:\n  (%s){%p}, taken at:\n",
				  k == RL_LOCKDEP_SELF_DEADLOCK ? "that very lock" : "a lock of the same class",
				  c->name, p->inst);
			sb_site(&sb, p->ip);
			sb_printf(&sb, "\n Possible unsafe locking scenario:\n\n       CPU0\n       ----\n"
				  "  lock(%s);\n  lock(%s);\n\n *** DEADLOCK ***\n%s", c->name, c->name,
				  k == RL_LOCKDEP_RECURSIVE
				  ? "\n (May be nesting by design: mark the class RL_LCF_RECURSIVE.)\n" : "");
			sb_held(&sb, t);
			emit(k, id, 0, &sb);
		}
		if (in_reclaim)
			mark_usage(t, id, USED_IN_RECLAIM, &tr);
		pthread_mutex_unlock(&G.lock);
	}
	t->depth++;
}

void rl_lockdep_acquire(struct rl_lock_class *c, const void *inst, bool trylock, const void *ip)
{
	if (!rl_lockdep_enabled())
		return;
	acquire(&T, c, inst, trylock, __builtin_return_address(0), (void *)ip);
}

static void release(struct tstate *t, struct rl_lock_class *c, const void *inst, bool check_order,
		    void *site)
{
	unsigned id = class_id(c, site);
	int i;

	if (!id)
		return;
	for (i = (int)t->depth - 1; i >= 0; i--)
		if (t->h[i].cls == id && t->h[i].inst == inst)
			break;
	if (i < 0) {
		if (t->lost) {		/* one of those past MAX_DEPTH */
			t->lost--;
			return;
		}
		char what[160];

		snprintf(what, sizeof(what), "is trying to release lock (%s){%p} that it does not hold",
			 c->name, inst);
		report_simple(RL_LOCKDEP_BAD_UNLOCK, id, 0, "bad unlock balance detected", what, site);
		return;
	}
	if (check_order && (unsigned)i != t->depth - 1 && strict_unlock()) {
		char what[200];
		unsigned top = t->h[t->depth - 1].cls;

		snprintf(what, sizeof(what), "releases (%s) while (%s), taken after it, is still held",
			 c->name, cname(top));
		report_simple(RL_LOCKDEP_UNLOCK_ORDER, id, top, "unlock order (not last in, first out)",
			      what, site);
	}
	memmove(&t->h[i], &t->h[i + 1], (t->depth - 1 - (unsigned)i) * sizeof(t->h[0]));
	t->depth--;
}

void rl_lockdep_release(struct rl_lock_class *c, const void *inst)
{
	if (!rl_lockdep_enabled())
		return;
	release(&T, c, inst, true, __builtin_return_address(0));
}

static void might_reclaim(struct tstate *t, void *site)
{
	if (t->in_reclaim || t->noreclaim)
		return;

	bool news = false;

	for (unsigned i = 0; i < t->depth && !news; i++) {
		const struct cls *c = &G.cls[t->h[i].cls];

		news = !(c->key->flags & RL_LCF_RECLAIM_EXEMPT) &&
		       !(atomic_load(&c->usage) >> RECLAIM_ON & 1);
	}
	if (!news)
		return;

	struct trace tr;

	capture(&tr, site);
	pthread_mutex_lock(&G.lock);
	for (unsigned i = 0; i < t->depth; i++)
		if (!(G.cls[t->h[i].cls].key->flags & RL_LCF_RECLAIM_EXEMPT))
			mark_usage(t, t->h[i].cls, RECLAIM_ON, &tr);
	pthread_mutex_unlock(&G.lock);
}

void rl_lockdep_might_reclaim(void)
{
	if (!rl_lockdep_enabled())
		return;
	might_reclaim(&T, __builtin_return_address(0));
}

static const char *ctx_name(enum rl_lockdep_ctx ctx)
{
	switch (ctx) {
	case RL_CTX_RECLAIM:
		return "RECLAIM";
	case RL_CTX_NORECLAIM:
		return "NORECLAIM";
	}
	return "?";
}

void rl_lockdep_enter(enum rl_lockdep_ctx ctx)
{
	struct tstate *t = &T;
	void *site = __builtin_return_address(0);

	if (!rl_lockdep_enabled())
		return;
	if (t->nctx == MAX_CTX) {
		t->ctx_lost++;
		report_simple(RL_LOCKDEP_OVERFLOW, 3, 0, "context stack overflow",
			      "entered more than 16 nested contexts; the rest are not checked", site);
		return;
	}
	if (ctx == RL_CTX_RECLAIM)
		might_reclaim(t, site);
	t->c[t->nctx++] = (struct ctxent){ .ctx = ctx };
	if (ctx == RL_CTX_RECLAIM)
		t->in_reclaim++;
	else
		t->noreclaim++;
}

void rl_lockdep_leave(enum rl_lockdep_ctx ctx)
{
	struct tstate *t = &T;
	void *site = __builtin_return_address(0);
	char what[200];
	int i;

	if (!rl_lockdep_enabled())
		return;
	if (t->ctx_lost) {
		t->ctx_lost--;
		return;
	}
	for (i = (int)t->nctx - 1; i >= 0; i--)
		if (t->c[i].ctx == ctx)
			break;
	if (i < 0 || (unsigned)i != t->nctx - 1) {
		snprintf(what, sizeof(what), "leaves context %s but the innermost one is %s",
			 ctx_name(ctx), t->nctx ? ctx_name(t->c[t->nctx - 1].ctx) : "none");
		report_simple(RL_LOCKDEP_CONTEXT, (unsigned)ctx, 0, "context imbalance", what, site);
		if (i < 0)
			return;
	}
	/* Locks taken while this context was open, still held. */
	for (unsigned j = 0; j < t->depth; j++) {
		if (t->h[j].level > (unsigned)i) {
			snprintf(what, sizeof(what), "leaves context %s still holding (%s), taken in it",
				 ctx_name(ctx), cname(t->h[j].cls));
			report_simple(RL_LOCKDEP_HELD_AT_LEAVE, t->h[j].cls, (unsigned)ctx,
				      "lock held when leaving a context", what, site);
			break;
		}
	}
	memmove(&t->c[i], &t->c[i + 1], (t->nctx - 1 - (unsigned)i) * sizeof(t->c[0]));
	t->nctx--;
	/* The ones still held count as taken in the enclosing context now. */
	for (unsigned j = 0; j < t->depth; j++)
		if (t->h[j].level > t->nctx)
			t->h[j].level = t->nctx;
	if (ctx == RL_CTX_RECLAIM)
		t->in_reclaim--;
	else
		t->noreclaim--;
}

bool rl_lockdep_is_held(const struct rl_lock_class *c)
{
	if (!rl_lockdep_enabled())
		return true;

	unsigned id = atomic_load_explicit(&c->id, memory_order_acquire);

	for (unsigned i = 0; id && i < T.depth; i++)
		if (T.h[i].cls == id)
			return true;
	return false;
}

/* ---- control ----------------------------------------------------------- */

void rl_lockdep_enable(bool on)
{
	if (on) {
		void *ip[1];

		/* The first backtrace() loads libgcc_s: do it here, not in
		 * the middle of a report. */
		backtrace(ip, 1);
	}
	atomic_store(&rl_lockdep_on_, on);
}

void rl_lockdep_set_options(unsigned opts)
{
	atomic_store(&G.opts, opts);
}

void rl_lockdep_set_role(const char *role)
{
	snprintf(T.role, sizeof(T.role), "%s", role ? role : "thread");
	T.named = true;
}

unsigned rl_lockdep_nr_reports(void)
{
	pthread_mutex_lock(&G.lock);
	unsigned n = G.nrep;
	pthread_mutex_unlock(&G.lock);
	return n;
}

enum rl_lockdep_kind rl_lockdep_report_kind(unsigned i)
{
	enum rl_lockdep_kind k = 0;

	pthread_mutex_lock(&G.lock);
	if (i < G.nrep)
		k = G.rep[i].kind;
	pthread_mutex_unlock(&G.lock);
	return k;
}

int rl_lockdep_report(unsigned i, char *buf, size_t len)
{
	int ret;

	if (!buf && len)
		return -EINVAL;
	pthread_mutex_lock(&G.lock);
	if (i >= G.nrep) {
		ret = -ENOENT;
	} else {
		size_t n = strlen(G.rep[i].text);

		if (len) {
			size_t c = n < len - 1 ? n : len - 1;

			memcpy(buf, G.rep[i].text, c);
			buf[c] = 0;
		}
		ret = n > INT32_MAX ? INT32_MAX : (int)n;
	}
	pthread_mutex_unlock(&G.lock);
	return ret;
}

void rl_lockdep_reset(void)
{
	pthread_mutex_lock(&G.lock);
	for (unsigned id = 1; id < G.nclasses; id++) {
		struct cls *c = &G.cls[id];

		atomic_store(&c->key->id, 0);
		free(c->ut[0]);
		free(c->ut[1]);
		free(c->out);
		free(c->in);
	}
	memset(G.cls, 0, sizeof(G.cls));
	G.nclasses = 1;
	for (unsigned a = 0; a < MAX_CLASSES; a++)
		for (unsigned w = 0; w < WORDS; w++)
		{
			atomic_store(&G.adj[a][w], 0);
			atomic_store(&G.bad[a][w], 0);
		}
	free(G.edges);
	G.edges = NULL;
	G.nedges = G.capedges = 0;
	for (unsigned i = 0; i < G.nrep; i++)
		free(G.rep[i].text);
	G.nrep = 0;
	G.dropped = 0;
	pthread_mutex_unlock(&G.lock);
	T.depth = T.lost = 0;
	T.nctx = T.ctx_lost = T.in_reclaim = T.noreclaim = 0;
}

int rl_mutex_init(struct rl_mutex *m, struct rl_lock_class *c)
{
	m->cls = c;
	return -pthread_mutex_init(&m->m, NULL);
}

int rl_mutex_destroy(struct rl_mutex *m)
{
	return -pthread_mutex_destroy(&m->m);
}

int rl_cond_wait(pthread_cond_t *cond, struct rl_mutex *m)
{
	if (!rl_lockdep_enabled())
		return pthread_cond_wait(cond, &m->m);

	void *site = __builtin_return_address(0);

	/* Released from wherever it sits in the stack (not an unlock order
	 * bug); retaken on top, checked against what is still held. */
	release(&T, m->cls, m, false, site);
	int ret = pthread_cond_wait(cond, &m->m);
	acquire(&T, m->cls, m, false, site, NULL);
	return ret;
}

int rl_cond_timedwait(pthread_cond_t *cond, struct rl_mutex *m, const struct timespec *abstime)
{
	if (!rl_lockdep_enabled())
		return pthread_cond_timedwait(cond, &m->m, abstime);

	void *site = __builtin_return_address(0);

	release(&T, m->cls, m, false, site);
	int ret = pthread_cond_timedwait(cond, &m->m, abstime);
	acquire(&T, m->cls, m, false, site, NULL);
	return ret;
}

/* RL_LOCKDEP=1[,quiet][,strict] in the environment turns it on at load. */
__attribute__((constructor)) static void lockdep_from_env(void)
{
	const char *env = getenv("RL_LOCKDEP");
	char buf[128], *save = NULL;
	unsigned opts = 0;
	bool on = false;

	if (!env || !*env)
		return;
	snprintf(buf, sizeof(buf), "%s", env);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "1") || !strcmp(tok, "on"))
			on = true;
		else if (!strcmp(tok, "0") || !strcmp(tok, "off"))
			on = false;
		else if (!strcmp(tok, "quiet"))
			opts |= RL_LOCKDEP_QUIET;
		else if (!strcmp(tok, "strict"))
			opts |= RL_LOCKDEP_STRICT_UNLOCK;
		else
			fprintf(stderr, "lockdep: RL_LOCKDEP: unknown word \"%s\" (want 1, 0, quiet, strict)\n",
				tok);
	}
	rl_lockdep_set_options(opts);
	rl_lockdep_enable(on);
}
