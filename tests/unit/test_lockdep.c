/* SPDX-License-Identifier: MIT */
/*
 * The lock-order checker, rule by rule: each scenario runs its threads one
 * after another (created, joined), so the order of events is fixed and no
 * real deadlock can happen, yet the checker sees several threads. Each
 * rule is reported (once, with both sides) in the buggy variant and not
 * at all in the correct one. The seed-003 hazard is modelled as in the
 * kernel: a writer holding an inode's iolock allocates (might reclaim);
 * reclaim's writepages path drops the last inode reference, and the final
 * iput takes the iolock.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "lib/lockdep.h"

static RL_LOCK_CLASS(A);
static RL_LOCK_CLASS(B);
static RL_LOCK_CLASS(C);
static RL_LOCK_CLASS(D);
static RL_LOCK_CLASS_FLAGS(nested, RL_LCF_RECURSIVE);
static RL_LOCK_CLASS(iolock);
static RL_LOCK_CLASS(page_lock);
static RL_LOCK_CLASS(i_pages);
static RL_LOCK_CLASS_FLAGS(pgdat_lock, RL_LCF_RECLAIM_EXEMPT);

static struct rl_mutex ma, mb, mc, md;

static int setup(void **state)
{
	(void)state;
	rl_lockdep_enable(true);
	rl_lockdep_set_options(RL_LOCKDEP_QUIET);
	rl_lockdep_reset();
	assert_int_equal(rl_mutex_init(&ma, &A), 0);
	assert_int_equal(rl_mutex_init(&mb, &B), 0);
	assert_int_equal(rl_mutex_init(&mc, &C), 0);
	assert_int_equal(rl_mutex_init(&md, &D), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rl_mutex_destroy(&ma);
	rl_mutex_destroy(&mb);
	rl_mutex_destroy(&mc);
	rl_mutex_destroy(&md);
	rl_lockdep_reset();
	return 0;
}

struct job {
	const char *role;
	void (*fn)(void *);
	void *arg;
};

static void *job_main(void *p)
{
	struct job *j = p;

	rl_lockdep_set_role(j->role);
	j->fn(j->arg);
	return NULL;
}

/* One thread, to completion: the next scenario step starts after it. */
static void run_as(const char *role, void (*fn)(void *), void *arg)
{
	struct job j = { role, fn, arg };
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, job_main, &j), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
}

static unsigned nr_kind(enum rl_lockdep_kind k)
{
	unsigned n = 0;

	for (unsigned i = 0; i < rl_lockdep_nr_reports(); i++)
		n += rl_lockdep_report_kind(i) == k;
	return n;
}

static char text[64 * 1024];

/* Report i's text, which must name each string given. */
static void assert_report_has(unsigned i, ...)
{
	va_list ap;
	int n = rl_lockdep_report(i, text, sizeof(text));

	assert_true(n > 0);
	va_start(ap, i);
	for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *)) {
		if (!strstr(text, s)) {
			fprintf(stderr, "report %u lacks \"%s\":\n%s\n", i, s, text);
			fail();
		}
	}
	va_end(ap);
}

static void lock2(struct rl_mutex *x, struct rl_mutex *y)
{
	rl_mutex_lock(x);
	rl_mutex_lock(y);
	rl_mutex_unlock(y);
	rl_mutex_unlock(x);
}

static void a_then_b(void *arg) { (void)arg; lock2(&ma, &mb); }
static void b_then_a(void *arg) { (void)arg; lock2(&mb, &ma); }
static void b_then_c(void *arg) { (void)arg; lock2(&mb, &mc); }
static void c_then_a(void *arg) { (void)arg; lock2(&mc, &ma); }
static void a_then_c(void *arg) { (void)arg; lock2(&ma, &mc); }

/* (a) */
static void test_circular_two(void **state)
{
	(void)state;
	run_as("t1", a_then_b, NULL);
	assert_int_equal(rl_lockdep_nr_reports(), 0);
	run_as("t2", b_then_a, NULL);
	assert_int_equal(rl_lockdep_nr_reports(), 1);
	assert_int_equal(rl_lockdep_report_kind(0), RL_LOCKDEP_CIRCULAR);
	assert_report_has(0, "possible circular locking dependency detected",
			  "t2/", "is trying to acquire lock:\n  (A)", "already holds lock:\n  (B)",
			  "(A) -> (B): first seen in t1/", "(B) -> (A): this acquisition",
			  "DEADLOCK", "    #0 ", NULL);
	/* once: again, and from another thread */
	run_as("t2", b_then_a, NULL);
	run_as("t3", b_then_a, NULL);
	assert_int_equal(rl_lockdep_nr_reports(), 1);
}

static void test_circular_two_correct(void **state)
{
	(void)state;
	run_as("t1", a_then_b, NULL);
	run_as("t2", a_then_b, NULL);
	lock2(&ma, &mb);
	assert_int_equal(rl_lockdep_nr_reports(), 0);
}

static void test_circular_three(void **state)
{
	(void)state;
	run_as("t1", a_then_b, NULL);
	run_as("t2", b_then_c, NULL);
	assert_int_equal(rl_lockdep_nr_reports(), 0);
	run_as("t3", c_then_a, NULL);
	assert_int_equal(rl_lockdep_nr_reports(), 1);
	assert_int_equal(rl_lockdep_report_kind(0), RL_LOCKDEP_CIRCULAR);
	assert_report_has(0, "t3/", "(A) -> (B): first seen in t1/", "(B) -> (C): first seen in t2/",
			  "(C) -> (A): this acquisition", NULL);
}

static void test_circular_three_correct(void **state)
{
	(void)state;
	run_as("t1", a_then_b, NULL);
	run_as("t2", b_then_c, NULL);
	run_as("t3", a_then_c, NULL);
	assert_int_equal(rl_lockdep_nr_reports(), 0);
}

/* A trylock cannot wait: taking B by trylock under A adds no edge. */
static void try_b_under_a(void *arg)
{
	(void)arg;
	rl_mutex_lock(&ma);
	assert_true(rl_mutex_trylock(&mb));
	assert_true(rl_lockdep_is_held(&B));
	rl_mutex_unlock(&mb);
	rl_mutex_unlock(&ma);
}

static int page_bit;			/* one page's lock: an annotated raw lock */

/* Nor does a trylock in reclaim make the class IN-RECLAIM: reclaim's
 * trylock_page never waits for a holder that waits for reclaim. */
static void reclaim_trylocks_page(void *arg)
{
	(void)arg;
	rl_lockdep_enter(RL_CTX_RECLAIM);
	rl_lock_acquired_try_inst(&page_lock, &page_bit);
	rl_lock_release_inst(&page_lock, &page_bit);
	rl_lockdep_leave(RL_CTX_RECLAIM);
}

static void reclaim_locks_page(void *arg)
{
	(void)arg;
	rl_lockdep_enter(RL_CTX_RECLAIM);
	rl_lock_acquire_inst(&page_lock, &page_bit);
	rl_lock_release_inst(&page_lock, &page_bit);
	rl_lockdep_leave(RL_CTX_RECLAIM);
}

static void page_locked_allocation(void *arg)
{
	(void)arg;
	rl_lock_acquire_inst(&page_lock, &page_bit);
	rl_lockdep_might_reclaim();
	rl_lock_release_inst(&page_lock, &page_bit);
}

static void test_trylock_no_edge(void **state)
{
	(void)state;
	run_as("t1", try_b_under_a, NULL);
	run_as("t2", b_then_a, NULL);
	assert_int_equal(rl_lockdep_nr_reports(), 0);

	run_as("kswapd", reclaim_trylocks_page, NULL);
	run_as("writer", page_locked_allocation, NULL);
	assert_int_equal(rl_lockdep_nr_reports(), 0);
	run_as("kswapd", reclaim_locks_page, NULL);
	assert_int_equal(rl_lockdep_nr_reports(), 1);
	assert_int_equal(rl_lockdep_report_kind(0), RL_LOCKDEP_RECLAIM_INCONSISTENT);
}

/* (b) */
static void test_recursion(void **state)
{
	struct rl_mutex a2, n1, n2;

	(void)state;
	assert_int_equal(rl_mutex_init(&a2, &A), 0);
	assert_int_equal(rl_mutex_init(&n1, &nested), 0);
	assert_int_equal(rl_mutex_init(&n2, &nested), 0);

	/* correct: a class marked recursive nests */
	rl_mutex_lock(&n1);
	rl_mutex_lock(&n2);
	rl_mutex_unlock(&n2);
	rl_mutex_unlock(&n1);
	/* correct: a trylock of another instance never waits */
	rl_mutex_lock(&ma);
	assert_true(rl_mutex_trylock(&a2));
	rl_mutex_unlock(&a2);
	rl_mutex_unlock(&ma);
	assert_int_equal(rl_lockdep_nr_reports(), 0);

	/* two instances of a non-recursive class */
	rl_lockdep_set_role("nester");
	rl_mutex_lock(&ma);
	rl_mutex_lock(&a2);
	rl_mutex_unlock(&a2);
	rl_mutex_unlock(&ma);
	assert_int_equal(rl_lockdep_nr_reports(), 1);
	assert_int_equal(rl_lockdep_report_kind(0), RL_LOCKDEP_RECURSIVE);
	assert_report_has(0, "possible recursive locking detected", "nester/", "(A)",
			  "a lock of the same class", NULL);

	/* the very same lock: a pseudo-lock cannot hang the test */
	rl_lock_acquire(&nested);
	rl_lock_acquire(&nested);
	rl_lock_release(&nested);
	rl_lock_release(&nested);
	assert_int_equal(rl_lockdep_nr_reports(), 2);
	assert_int_equal(rl_lockdep_report_kind(1), RL_LOCKDEP_SELF_DEADLOCK);
	assert_report_has(1, "recursive locking of the same lock", "that very lock", "(nested)", NULL);
	assert_int_equal(nr_kind(RL_LOCKDEP_BAD_UNLOCK), 0);

	rl_mutex_destroy(&a2);
	rl_mutex_destroy(&n1);
	rl_mutex_destroy(&n2);
}

/* ---- (c): seed 003 -------------------------------------------------------- */

struct inode {
	struct rl_mutex iolock;		/* i_rwsem */
	int refs;
};

/* A write(2) into the file: iolock held, then a page cache allocation that
 * may recurse into reclaim. */
static void writer(void *arg)
{
	struct inode *ino = arg;

	rl_mutex_lock(&ino->iolock);
	rl_lockdep_might_reclaim();
	rl_mutex_unlock(&ino->iolock);
}

/* The final iput: evict the inode, which takes the filesystem's locks. */
static void iput(struct inode *ino)
{
	if (--ino->refs)
		return;
	rl_mutex_lock(&ino->iolock);
	rl_mutex_unlock(&ino->iolock);
}

/* Reclaim with policy writepages (seed 000 patch 5): trylock the page, pin
 * the inode, unlock the page, write the range, iput - the final one when
 * the file was unlinked meanwhile. */
static void reclaim_writepages(void *arg)
{
	struct inode *ino = arg;

	rl_lockdep_enter(RL_CTX_RECLAIM);
	rl_lock_acquired_try_inst(&page_lock, &page_bit);
	ino->refs++;				/* igrab */
	rl_lock_release_inst(&page_lock, &page_bit);
	ino->refs--;				/* the unlink's reference goes meanwhile */
	ino->refs++, iput(ino);			/* a plain reference: not the last */
	iput(ino);				/* reclaim's: the last */
	rl_lockdep_leave(RL_CTX_RECLAIM);
}

/* Reclaim with policy writearound (seed 003): the mapping stays pinned by
 * the page lock, held (blocking, even) across the IO; no inode reference. */
static void reclaim_writearound(void *arg)
{
	(void)arg;
	rl_lockdep_enter(RL_CTX_RECLAIM);
	rl_lock_acquire_inst(&page_lock, &page_bit);
	rl_lock_acquire_inst(&i_pages, &page_bit);	/* the mapping's tree, inside */
	rl_lock_release_inst(&i_pages, &page_bit);
	rl_lock_release_inst(&page_lock, &page_bit);
	rl_lockdep_leave(RL_CTX_RECLAIM);
}

static void test_seed003_writepages(void **state)
{
	struct inode writer_ino = { .refs = 1 }, victim = { .refs = 1 };

	(void)state;
	assert_int_equal(rl_mutex_init(&writer_ino.iolock, &iolock), 0);
	assert_int_equal(rl_mutex_init(&victim.iolock, &iolock), 0);
	run_as("writer", writer, &writer_ino);
	assert_int_equal(rl_lockdep_nr_reports(), 0);
	run_as("kswapd", reclaim_writepages, &victim);
	assert_int_equal(victim.refs, 0);
	assert_int_equal(rl_lockdep_nr_reports(), 1);
	assert_int_equal(rl_lockdep_report_kind(0), RL_LOCKDEP_RECLAIM_INCONSISTENT);
	assert_report_has(0, "inconsistent lock state",
			  "inconsistent {RECLAIM_FS-ON-W} -> {IN-RECLAIM_FS-W} usage.",
			  "kswapd/", "in reclaim context, takes:\n  (iolock)",
			  "{RECLAIM_FS-ON-W} state of (iolock) was registered in writer/",
			  "{IN-RECLAIM_FS-W} state of (iolock) was registered in kswapd/",
			  "DEADLOCK", NULL);
	/* once */
	victim.refs = 1;
	run_as("kswapd", reclaim_writepages, &victim);
	run_as("writer", writer, &writer_ino);
	assert_int_equal(rl_lockdep_nr_reports(), 1);
	rl_mutex_destroy(&writer_ino.iolock);
	rl_mutex_destroy(&victim.iolock);
}

/* The other order: reclaim first, then the writer. */
static void test_seed003_writepages_reverse(void **state)
{
	struct inode writer_ino = { .refs = 1 }, victim = { .refs = 1 };

	(void)state;
	assert_int_equal(rl_mutex_init(&writer_ino.iolock, &iolock), 0);
	assert_int_equal(rl_mutex_init(&victim.iolock, &iolock), 0);
	run_as("kswapd", reclaim_writepages, &victim);
	assert_int_equal(rl_lockdep_nr_reports(), 0);
	run_as("writer", writer, &writer_ino);
	assert_int_equal(rl_lockdep_nr_reports(), 1);
	assert_int_equal(rl_lockdep_report_kind(0), RL_LOCKDEP_RECLAIM_INCONSISTENT);
	assert_report_has(0, "inconsistent {IN-RECLAIM_FS-W} -> {RECLAIM_FS-ON-W} usage.",
			  "writer/", "may enter reclaim holding:\n  (iolock)", NULL);
	rl_mutex_destroy(&writer_ino.iolock);
	rl_mutex_destroy(&victim.iolock);
}

/* The writer also takes the page lock and the tree under the iolock
 * (iolock -> page_lock -> i_pages), but never holds those across an
 * allocation: writearound is clean. */
static void writer_with_pages(void *arg)
{
	struct inode *ino = arg;

	rl_mutex_lock(&ino->iolock);
	rl_lockdep_might_reclaim();
	rl_lock_acquire_inst(&page_lock, &page_bit);
	rl_lock_acquire_inst(&i_pages, &page_bit);
	rl_lock_release_inst(&i_pages, &page_bit);
	rl_lock_release_inst(&page_lock, &page_bit);
	rl_mutex_unlock(&ino->iolock);
}

static void test_seed003_writearound(void **state)
{
	struct inode writer_ino = { .refs = 1 };

	(void)state;
	assert_int_equal(rl_mutex_init(&writer_ino.iolock, &iolock), 0);
	run_as("writer", writer_with_pages, &writer_ino);
	run_as("kswapd", reclaim_writearound, NULL);
	run_as("writer", writer_with_pages, &writer_ino);
	run_as("kswapd", reclaim_writearound, NULL);
	assert_int_equal(rl_lockdep_nr_reports(), 0);
	rl_mutex_destroy(&writer_ino.iolock);
}

/* Direct reclaim entered with iolock held marks it RECLAIM_FS-ON, as the
 * kernel's __fs_reclaim_acquire does after might_alloc. */
static void direct_reclaim_holding_iolock(void *arg)
{
	struct inode *ino = arg;

	rl_mutex_lock(&ino->iolock);
	rl_lockdep_enter(RL_CTX_RECLAIM);
	rl_lockdep_leave(RL_CTX_RECLAIM);
	rl_mutex_unlock(&ino->iolock);
}

static void test_enter_reclaim_marks_held(void **state)
{
	struct inode a = { .refs = 1 }, victim = { .refs = 1 };

	(void)state;
	assert_int_equal(rl_mutex_init(&a.iolock, &iolock), 0);
	assert_int_equal(rl_mutex_init(&victim.iolock, &iolock), 0);
	run_as("faulter", direct_reclaim_holding_iolock, &a);
	run_as("kswapd", reclaim_writepages, &victim);
	assert_int_equal(rl_lockdep_nr_reports(), 1);
	assert_int_equal(rl_lockdep_report_kind(0), RL_LOCKDEP_RECLAIM_INCONSISTENT);
	assert_report_has(0, "faulter/", "kswapd/", NULL);
	rl_mutex_destroy(&a.iolock);
	rl_mutex_destroy(&victim.iolock);
}

/* memalloc_nofs_save: allocations in a NORECLAIM scope do not recurse into
 * reclaim, and neither do allocations inside reclaim (PF_MEMALLOC). */
static void nofs_writer(void *arg)
{
	struct inode *ino = arg;

	rl_mutex_lock(&ino->iolock);
	rl_lockdep_enter(RL_CTX_NORECLAIM);
	rl_lockdep_might_reclaim();
	rl_lockdep_leave(RL_CTX_NORECLAIM);
	rl_mutex_unlock(&ino->iolock);
}

static void reclaim_allocates(void *arg)
{
	struct inode *ino = arg;

	rl_lockdep_enter(RL_CTX_RECLAIM);
	rl_mutex_lock(&ino->iolock);
	rl_lockdep_might_reclaim();
	rl_mutex_unlock(&ino->iolock);
	rl_lockdep_leave(RL_CTX_RECLAIM);
}

static void test_noreclaim_scopes(void **state)
{
	struct inode a = { .refs = 1 }, victim = { .refs = 1 };

	(void)state;
	assert_int_equal(rl_mutex_init(&a.iolock, &iolock), 0);
	assert_int_equal(rl_mutex_init(&victim.iolock, &iolock), 0);
	run_as("writer", nofs_writer, &a);
	run_as("kswapd", reclaim_writepages, &victim);
	run_as("kswapd", reclaim_allocates, &victim);
	assert_int_equal(rl_lockdep_nr_reports(), 0);
	/* and the writer without the scope is caught */
	run_as("writer", writer, &a);
	assert_int_equal(rl_lockdep_nr_reports(), 1);
	rl_mutex_destroy(&a.iolock);
	rl_mutex_destroy(&victim.iolock);
}

/* The owner's lock: held across reclaim and taken in it, by design. */
static pthread_mutex_t raw_pgdat_lock = PTHREAD_MUTEX_INITIALIZER;

static void fault_path(void *arg)
{
	(void)arg;
	rl_lock_acquire_inst(&pgdat_lock, &raw_pgdat_lock);
	rl_lockdep_might_reclaim();
	rl_lockdep_enter(RL_CTX_RECLAIM);	/* direct reclaim under it */
	rl_lockdep_leave(RL_CTX_RECLAIM);
	rl_lock_release_inst(&pgdat_lock, &raw_pgdat_lock);
}

static void kswapd_takes_pgdat(void *arg)
{
	(void)arg;
	rl_lockdep_enter(RL_CTX_RECLAIM);
	rl_lock_acquire_inst(&pgdat_lock, &raw_pgdat_lock);
	rl_lock_release_inst(&pgdat_lock, &raw_pgdat_lock);
	rl_lockdep_leave(RL_CTX_RECLAIM);
}

static void pgdat_then_a(void *arg)
{
	(void)arg;
	rl_lock_acquire_inst(&pgdat_lock, &raw_pgdat_lock);
	rl_mutex_lock(&ma);
	rl_mutex_unlock(&ma);
	rl_lock_release_inst(&pgdat_lock, &raw_pgdat_lock);
}

static void a_then_pgdat(void *arg)
{
	(void)arg;
	rl_mutex_lock(&ma);
	rl_lock_acquire_inst(&pgdat_lock, &raw_pgdat_lock);
	rl_lock_release_inst(&pgdat_lock, &raw_pgdat_lock);
	rl_mutex_unlock(&ma);
}

static void test_reclaim_exempt(void **state)
{
	(void)state;
	run_as("faulter", fault_path, NULL);
	run_as("kswapd", kswapd_takes_pgdat, NULL);
	run_as("faulter", fault_path, NULL);
	assert_int_equal(rl_lockdep_nr_reports(), 0);
	/* exempt from (c) only: order is still checked */
	run_as("t1", pgdat_then_a, NULL);
	run_as("t2", a_then_pgdat, NULL);
	assert_int_equal(rl_lockdep_nr_reports(), 1);
	assert_int_equal(rl_lockdep_report_kind(0), RL_LOCKDEP_CIRCULAR);
}

/* (c) through the graph: L is taken in reclaim, L -> M, and M is held where
 * reclaim may run. Whichever of the three facts comes last reports it. */
static void take_a_in_reclaim(void *arg)
{
	(void)arg;
	rl_lockdep_enter(RL_CTX_RECLAIM);
	rl_mutex_lock(&ma);
	rl_mutex_unlock(&ma);
	rl_lockdep_leave(RL_CTX_RECLAIM);
}

static void hold_b_might_reclaim(void *arg)
{
	(void)arg;
	rl_mutex_lock(&mb);
	rl_lockdep_might_reclaim();
	rl_mutex_unlock(&mb);
}

static void check_order_report(void)
{
	assert_int_equal(rl_lockdep_nr_reports(), 1);
	assert_int_equal(rl_lockdep_report_kind(0), RL_LOCKDEP_RECLAIM_ORDER);
	assert_report_has(0, "RECLAIM_FS-safe -> RECLAIM_FS-unsafe lock order detected",
			  "(A) -> (B): first seen in t1/",
			  "{IN-RECLAIM_FS-W} state of (A) was registered in kswapd/",
			  "{RECLAIM_FS-ON-W} state of (B) was registered in writer/", NULL);
}

static void test_reclaim_order(void **state)
{
	void (*step[3])(void *) = { take_a_in_reclaim, a_then_b, hold_b_might_reclaim };
	const char *role[3] = { "kswapd", "t1", "writer" };
	static const int orders[3][3] = { { 0, 1, 2 }, { 1, 2, 0 }, { 2, 0, 1 } };

	(void)state;
	for (int o = 0; o < 3; o++) {
		rl_lockdep_reset();
		for (int s = 0; s < 3; s++) {
			int k = orders[o][s];

			run_as(role[k], step[k], NULL);
			assert_int_equal(rl_lockdep_nr_reports(), s == 2);
		}
		check_order_report();
	}

	/* longer path: A -> C -> D -> B */
	rl_lockdep_reset();
	run_as("kswapd", take_a_in_reclaim, NULL);
	run_as("t1", a_then_c, NULL);
	lock2(&mc, &md);
	run_as("writer", hold_b_might_reclaim, NULL);
	assert_int_equal(rl_lockdep_nr_reports(), 0);
	lock2(&md, &mb);
	assert_int_equal(rl_lockdep_nr_reports(), 1);
	assert_int_equal(rl_lockdep_report_kind(0), RL_LOCKDEP_RECLAIM_ORDER);
	assert_report_has(0, "(A) -> (C)", "(C) -> (D)", "(D) -> (B)", NULL);
}

static void test_reclaim_order_correct(void **state)
{
	(void)state;
	/* B held over reclaim, A taken in reclaim, but B -> A: a reclaimer
	 * holding A never waits for B. */
	run_as("kswapd", take_a_in_reclaim, NULL);
	run_as("writer", hold_b_might_reclaim, NULL);
	run_as("t1", b_then_a, NULL);
	assert_int_equal(rl_lockdep_nr_reports(), 0);
}

/* ---- (d) ------------------------------------------------------------------ */

static void acquire_pseudo(void *arg) { rl_lock_acquire(arg); }
static void release_pseudo(void *arg) { rl_lock_release(arg); }

static void test_bad_unlock(void **state)
{
	(void)state;
	/* correct: out of order is allowed by default, as in the kernel */
	rl_mutex_lock(&ma);
	rl_mutex_lock(&mb);
	rl_mutex_unlock(&ma);
	rl_mutex_unlock(&mb);
	assert_int_equal(rl_lockdep_nr_reports(), 0);

	/* released by a thread that does not hold it */
	run_as("taker", acquire_pseudo, &C);
	run_as("giver", release_pseudo, &C);
	assert_int_equal(rl_lockdep_nr_reports(), 1);
	assert_int_equal(rl_lockdep_report_kind(0), RL_LOCKDEP_BAD_UNLOCK);
	assert_report_has(0, "bad unlock balance detected", "giver/", "(C)", "that it does not hold",
			  NULL);
	/* never taken at all: the same class, already reported */
	rl_lock_release(&C);
	assert_int_equal(rl_lockdep_nr_reports(), 1);
	rl_lock_release(&D);
	assert_int_equal(rl_lockdep_nr_reports(), 2);
}

static void test_strict_unlock_order(void **state)
{
	pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
	struct timespec past = { 0, 0 };

	(void)state;
	rl_lockdep_set_options(RL_LOCKDEP_QUIET | RL_LOCKDEP_STRICT_UNLOCK);
	/* correct: LIFO; and a condition wait on the outer lock is no
	 * unlock order bug */
	rl_mutex_lock(&ma);
	rl_mutex_lock(&mb);
	rl_mutex_unlock(&mb);
	assert_int_equal(rl_cond_timedwait(&cond, &ma, &past), ETIMEDOUT);
	rl_mutex_unlock(&ma);
	assert_int_equal(rl_lockdep_nr_reports(), 0);

	rl_mutex_lock(&ma);
	rl_mutex_lock(&mb);
	rl_mutex_unlock(&ma);
	rl_mutex_unlock(&mb);
	rl_lockdep_set_options(RL_LOCKDEP_QUIET);
	assert_int_equal(rl_lockdep_nr_reports(), 1);
	assert_int_equal(rl_lockdep_report_kind(0), RL_LOCKDEP_UNLOCK_ORDER);
	assert_report_has(0, "releases (A) while (B), taken after it, is still held", NULL);
	pthread_cond_destroy(&cond);
}

static void test_contexts(void **state)
{
	(void)state;
	/* correct: a lock taken before entering, held after leaving */
	rl_mutex_lock(&ma);
	rl_lockdep_enter(RL_CTX_NORECLAIM);
	rl_mutex_lock(&mb);
	rl_mutex_unlock(&mb);
	rl_lockdep_leave(RL_CTX_NORECLAIM);
	rl_mutex_unlock(&ma);
	assert_int_equal(rl_lockdep_nr_reports(), 0);

	/* a lock taken in reclaim, still held when leaving it */
	rl_lockdep_enter(RL_CTX_RECLAIM);
	rl_mutex_lock(&mc);
	rl_lockdep_leave(RL_CTX_RECLAIM);
	rl_mutex_unlock(&mc);
	assert_int_equal(rl_lockdep_nr_reports(), 1);
	assert_int_equal(rl_lockdep_report_kind(0), RL_LOCKDEP_HELD_AT_LEAVE);
	assert_report_has(0, "leaves context RECLAIM still holding (C)", NULL);

	/* leaving what is not the innermost, and what was never entered */
	rl_lockdep_enter(RL_CTX_RECLAIM);
	rl_lockdep_enter(RL_CTX_NORECLAIM);
	rl_lockdep_leave(RL_CTX_RECLAIM);
	rl_lockdep_leave(RL_CTX_NORECLAIM);
	assert_int_equal(rl_lockdep_nr_reports(), 2);
	assert_int_equal(rl_lockdep_report_kind(1), RL_LOCKDEP_CONTEXT);
	assert_report_has(1, "leaves context RECLAIM but the innermost one is NORECLAIM", NULL);
	rl_lockdep_leave(RL_CTX_NORECLAIM);
	assert_int_equal(rl_lockdep_nr_reports(), 3);
	assert_report_has(2, "leaves context NORECLAIM but the innermost one is none", NULL);
	/* the stack is empty again: reclaim context is over */
	rl_mutex_lock(&md);
	rl_lockdep_might_reclaim();
	rl_mutex_unlock(&md);
	run_as("kswapd", take_a_in_reclaim, NULL);
	assert_int_equal(rl_lockdep_nr_reports(), 3);
}

static void test_overflow(void **state)
{
	int inst[49];

	(void)state;
	for (int i = 0; i < 48; i++)
		rl_lock_acquire_inst(&nested, &inst[i]);
	assert_int_equal(rl_lockdep_nr_reports(), 0);
	rl_lock_acquire_inst(&nested, &inst[48]);
	assert_int_equal(rl_lockdep_nr_reports(), 1);
	assert_int_equal(rl_lockdep_report_kind(0), RL_LOCKDEP_OVERFLOW);
	assert_report_has(0, "held lock stack overflow", NULL);
	for (int i = 48; i >= 0; i--)
		rl_lock_release_inst(&nested, &inst[i]);
	assert_int_equal(rl_lockdep_nr_reports(), 1);
	assert_false(rl_lockdep_is_held(&nested));
}

/* ---- the wrappers, the switch, the report API ------------------------------ */

static void test_cond_wait(void **state)
{
	pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
	struct timespec past = { 0, 0 };

	(void)state;
	rl_mutex_lock(&ma);
	assert_int_equal(rl_cond_timedwait(&cond, &ma, &past), ETIMEDOUT);
	assert_true(rl_lockdep_is_held(&A));
	rl_mutex_unlock(&ma);
	assert_false(rl_lockdep_is_held(&A));
	assert_int_equal(rl_lockdep_nr_reports(), 0);

	/* waiting on A while holding B, taken after A: the retake of A
	 * under B inverts A -> B. Even strict, the wait's release of A from
	 * under B is no unlock order bug; A is on top after the retake. */
	rl_lockdep_set_options(RL_LOCKDEP_QUIET | RL_LOCKDEP_STRICT_UNLOCK);
	rl_mutex_lock(&ma);
	rl_mutex_lock(&mb);
	assert_int_equal(rl_cond_timedwait(&cond, &ma, &past), ETIMEDOUT);
	rl_mutex_unlock(&ma);
	rl_mutex_unlock(&mb);
	rl_lockdep_set_options(RL_LOCKDEP_QUIET);
	assert_int_equal(rl_lockdep_nr_reports(), 1);
	assert_int_equal(rl_lockdep_report_kind(0), RL_LOCKDEP_CIRCULAR);
	assert_report_has(0, "already holds lock:\n  (B)", "(A) -> (B): first seen", NULL);
	assert_int_equal(nr_kind(RL_LOCKDEP_BAD_UNLOCK), 0);
	pthread_cond_destroy(&cond);
}

static void test_disabled(void **state)
{
	(void)state;
	rl_lockdep_enable(false);
	assert_false(rl_lockdep_enabled());
	run_as("t1", a_then_b, NULL);
	run_as("t2", b_then_a, NULL);
	rl_lock_release(&C);
	assert_true(rl_lockdep_is_held(&D));	/* assertions pass while off */
	rl_lockdep_enable(true);
	assert_int_equal(rl_lockdep_nr_reports(), 0);
	assert_false(rl_lockdep_is_held(&D));
	/* nothing was learnt while off */
	run_as("t2", b_then_a, NULL);
	assert_int_equal(rl_lockdep_nr_reports(), 0);
}

static void test_report_api(void **state)
{
	char small[16];

	(void)state;
	assert_int_equal(rl_lockdep_report(0, small, sizeof(small)), -ENOENT);
	assert_int_equal(rl_lockdep_report_kind(0), 0);
	run_as("t1", a_then_b, NULL);
	run_as("t2", b_then_a, NULL);
	assert_int_equal(rl_lockdep_nr_reports(), 1);

	int n = rl_lockdep_report(0, NULL, 0);

	assert_true(n > 100);
	assert_int_equal(rl_lockdep_report(0, NULL, 5), -EINVAL);
	assert_int_equal(rl_lockdep_report(0, small, sizeof(small)), n);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(rl_lockdep_report(0, text, sizeof(text)), n);
	assert_int_equal(strlen(text), (size_t)n);
	assert_memory_equal(small, text, sizeof(small) - 1);
	assert_int_equal(rl_lockdep_report(1, text, sizeof(text)), -ENOENT);
	rl_lockdep_reset();
	assert_int_equal(rl_lockdep_nr_reports(), 0);
	/* the graph went too: the same inversion is new again */
	run_as("t2", b_then_a, NULL);
	assert_int_equal(rl_lockdep_nr_reports(), 0);
	run_as("t1", a_then_b, NULL);
	assert_int_equal(rl_lockdep_nr_reports(), 1);
}

/* Several threads at once, consistent order and reclaim use: nothing to
 * report, the shared graph intact; then one inversion, by several threads
 * one after another (at once they would really deadlock), is found once. */
struct stress {
	unsigned seed;
};

static void stress_thread(void *arg)
{
	struct stress *s = arg;

	for (int i = 0; i < 3000; i++) {
		unsigned r = (unsigned)rand_r(&s->seed);
		bool reclaim = r & 16;

		if (reclaim)
			rl_lockdep_enter(RL_CTX_RECLAIM);
		if (r & 1)
			rl_mutex_lock(&ma);
		if (r & 2)
			rl_mutex_lock(&mb);
		if (r & 4)
			rl_mutex_lock(&mc);
		if (r & 4)
			rl_mutex_unlock(&mc);
		if (r & 2)
			rl_mutex_unlock(&mb);
		if (r & 1)
			rl_mutex_unlock(&ma);
		if (reclaim)
			rl_lockdep_leave(RL_CTX_RECLAIM);
		if (!reclaim && (r & 32)) {
			rl_mutex_lock(&md);
			rl_lockdep_might_reclaim();
			if (r & 64)	/* D -> C is fine: C is IN-RECLAIM, D is ON */
				rl_mutex_lock(&mc);
			if (r & 64)
				rl_mutex_unlock(&mc);
			rl_mutex_unlock(&md);
		}
	}
}

static void c_then_a_stress(void *arg) { (void)arg; lock2(&mc, &ma); }

static void *stress_main(void *arg)
{
	stress_thread(arg);
	return NULL;
}

static void test_threads(void **state)
{
	enum { N = 4 };
	pthread_t t[N];
	struct stress s[N];

	(void)state;
	for (int i = 0; i < N; i++) {
		s[i] = (struct stress){ .seed = 17u * (unsigned)i + 1 };
		assert_int_equal(pthread_create(&t[i], NULL, stress_main, &s[i]), 0);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	assert_int_equal(rl_lockdep_nr_reports(), 0);
	for (int i = 0; i < N; i++)
		run_as("inverter", c_then_a_stress, NULL);
	assert_int_equal(rl_lockdep_nr_reports(), 1);
	assert_int_equal(rl_lockdep_report_kind(0), RL_LOCKDEP_CIRCULAR);
	assert_report_has(0, "inverter/", "(C) -> (A): this acquisition", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_circular_two, setup, teardown),
		cmocka_unit_test_setup_teardown(test_circular_two_correct, setup, teardown),
		cmocka_unit_test_setup_teardown(test_circular_three, setup, teardown),
		cmocka_unit_test_setup_teardown(test_circular_three_correct, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trylock_no_edge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recursion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seed003_writepages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seed003_writepages_reverse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seed003_writearound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enter_reclaim_marks_held, setup, teardown),
		cmocka_unit_test_setup_teardown(test_noreclaim_scopes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reclaim_exempt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reclaim_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reclaim_order_correct, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_unlock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strict_unlock_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_contexts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cond_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disabled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_report_api, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
