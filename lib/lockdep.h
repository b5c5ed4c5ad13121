/* SPDX-License-Identifier: MIT */
/*
 * A lock-order checker in the spirit of the kernel's lockdep
 * (docs/lockdep.md). Locks belong to statically declared classes; the
 * checker learns, per class, which classes were held when it was taken (the
 * dependency graph) and in which contexts it was used, and reports:
 *   (a) lock order inversion: a new edge A -> B closing a cycle;
 *   (b) recursion: taking a class already held (a non-recursive class, or
 *       the very same lock instance);
 *   (c) the reclaim rule (seed 003, Morton's final iput): a class taken in
 *       reclaim context (IN-RECLAIM_FS) that is also held where the thread
 *       may enter reclaim (RECLAIM_FS-ON), directly or through the graph;
 *   (d) unlock bugs: releasing a class not held, leaving a context with
 *       locks taken in it, unbalanced contexts, optionally non-LIFO unlock.
 * Each problem is reported once, with the thread roles and backtraces of
 * both sides, to stderr (unless quiet) and to a list read by
 * rl_lockdep_report().
 *
 * Disabled (the default), each wrapper costs one predictable branch.
 * Enable it before any annotated lock is taken: rl_lockdep_enable(true) or
 * RL_LOCKDEP=1 in the environment (read at load time; "RL_LOCKDEP=1,quiet,
 * strict" adds options). Thread-safe; per-thread state is thread-local.
 */
#ifndef RECLAIMLAB_LIB_LOCKDEP_H
#define RECLAIMLAB_LIB_LOCKDEP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Class flags. */
#define RL_LCF_RECURSIVE	0x1u	/* instances of the class may nest */
/* Exempt from the reclaim rule (c), not from ordering: for the owner's
 * lock that reclaim itself runs under and drops around every sleep
 * (pgdat->lock), so a thread holding it across reclaim never waits for a
 * reclaimer that wants it. */
#define RL_LCF_RECLAIM_EXEMPT	0x2u

struct rl_lock_class {
	const char *name;
	unsigned flags;
	_Atomic unsigned id;	/* lockdep.c's: 0 until first use */
};

/* static RL_LOCK_CLASS(iolock); defines the class "iolock". */
#define RL_LOCK_CLASS(var)		struct rl_lock_class var = { .name = #var }
#define RL_LOCK_CLASS_FLAGS(var, fl)	struct rl_lock_class var = { .name = #var, .flags = (fl) }

/* Contexts, a per-thread stack. */
enum rl_lockdep_ctx {
	RL_CTX_RECLAIM = 1,	/* direct reclaim, kswapd: fs_reclaim_acquire */
	RL_CTX_NORECLAIM,	/* memalloc_nofs_save: allocations here cannot recurse into reclaim */
};

/* Options (rl_lockdep_set_options). */
#define RL_LOCKDEP_QUIET		0x1u	/* do not print reports to stderr */
#define RL_LOCKDEP_STRICT_UNLOCK	0x2u	/* report non-LIFO unlocks (the kernel allows them) */

enum rl_lockdep_kind {
	RL_LOCKDEP_CIRCULAR = 1,	/* (a) */
	RL_LOCKDEP_RECURSIVE,		/* (b) same class, another instance */
	RL_LOCKDEP_SELF_DEADLOCK,	/* (b) the very lock already held */
	RL_LOCKDEP_RECLAIM_INCONSISTENT,/* (c) one class both IN-RECLAIM and RECLAIM-ON */
	RL_LOCKDEP_RECLAIM_ORDER,	/* (c) IN-RECLAIM class -> ... -> RECLAIM-ON class */
	RL_LOCKDEP_BAD_UNLOCK,		/* (d) released a class this thread does not hold */
	RL_LOCKDEP_UNLOCK_ORDER,	/* (d) non-LIFO release (STRICT_UNLOCK only) */
	RL_LOCKDEP_HELD_AT_LEAVE,	/* (d) lock taken in a context still held when leaving it */
	RL_LOCKDEP_CONTEXT,		/* (d) leave() of a context that is not the innermost */
	RL_LOCKDEP_OVERFLOW,		/* held-lock stack (48) or class table full */
};

/* The switch the inline wrappers test; use rl_lockdep_enabled(). */
extern atomic_bool rl_lockdep_on_;

static inline bool rl_lockdep_enabled(void)
{
	return __builtin_expect(atomic_load_explicit(&rl_lockdep_on_, memory_order_relaxed), 0);
}

/* Turning it on with locks held makes their release a bad unlock. */
void rl_lockdep_enable(bool on);
void rl_lockdep_set_options(unsigned opts);
/* The calling thread's name in reports (copied, 15 chars); default: its
 * pthread name. */
void rl_lockdep_set_role(const char *role);

/* Out-of-line hooks, called only when enabled. inst identifies the lock
 * instance (its address); ip is where it was taken. */
void rl_lockdep_acquire(struct rl_lock_class *c, const void *inst, bool trylock, const void *ip);
void rl_lockdep_release(struct rl_lock_class *c, const void *inst);

/* Annotate a lock that is not an rl_mutex (a raw pthread mutex such as
 * pgdat->lock, the owner's page lock): acquire before blocking on it,
 * acquired_try after a successful trylock, release after unlocking. */
static inline void rl_lock_acquire_inst(struct rl_lock_class *c, const void *inst)
{
	if (rl_lockdep_enabled())
		rl_lockdep_acquire(c, inst, false, __builtin_return_address(0));
}
static inline void rl_lock_acquired_try_inst(struct rl_lock_class *c, const void *inst)
{
	if (rl_lockdep_enabled())
		rl_lockdep_acquire(c, inst, true, __builtin_return_address(0));
}
static inline void rl_lock_release_inst(struct rl_lock_class *c, const void *inst)
{
	if (rl_lockdep_enabled())
		rl_lockdep_release(c, inst);
}
/* Pseudo-locks with no mutex behind them ("fs_reclaim"-like). */
static inline void rl_lock_acquire(struct rl_lock_class *c)
{
	if (rl_lockdep_enabled())
		rl_lockdep_acquire(c, c, false, __builtin_return_address(0));
}
static inline void rl_lock_release(struct rl_lock_class *c)
{
	if (rl_lockdep_enabled())
		rl_lockdep_release(c, c);
}

/* Context stack. enter(RL_CTX_RECLAIM) first marks every lock the thread
 * holds RECLAIM_FS-ON (the kernel's __fs_reclaim_acquire after
 * might_alloc), then marks locks taken until leave() IN-RECLAIM_FS. */
void rl_lockdep_enter(enum rl_lockdep_ctx ctx);
void rl_lockdep_leave(enum rl_lockdep_ctx ctx);
/* "This thread may now enter reclaim and wait for it" (an allocation that
 * can recurse into reclaim, might_alloc(GFP_KERNEL)): locks held here are
 * RECLAIM_FS-ON. A no-op inside RECLAIM (PF_MEMALLOC) or NORECLAIM. */
void rl_lockdep_might_reclaim(void);

/* Does this thread hold a lock of class c? (lockdep_is_held: true while
 * disabled, so it can sit in assertions.) */
bool rl_lockdep_is_held(const struct rl_lock_class *c);

/* Reports so far (problems found, not counting repeats). */
unsigned rl_lockdep_nr_reports(void);
/* Kind of report i; 0 if there is no such report. */
enum rl_lockdep_kind rl_lockdep_report_kind(unsigned i);
/* Copy report i as text into buf (NUL-terminated, truncated to len);
 * returns its full length like snprintf, or -ENOENT if there is no report
 * i, -EINVAL if buf is NULL with len > 0. */
int rl_lockdep_report(unsigned i, char *buf, size_t len);
/* Forget every class, edge, usage and report, and the calling thread's
 * held locks and contexts. Tests only: no other thread may be inside an
 * annotated lock operation. Options and the enable switch stay. */
void rl_lockdep_reset(void);

/* A pthread mutex with a class. */
struct rl_mutex {
	pthread_mutex_t m;
	struct rl_lock_class *cls;
};

/* 0 or -errno from pthread_mutex_init. */
int rl_mutex_init(struct rl_mutex *m, struct rl_lock_class *c);
int rl_mutex_destroy(struct rl_mutex *m);

static inline void rl_mutex_lock(struct rl_mutex *m)
{
	if (rl_lockdep_enabled())
		rl_lockdep_acquire(m->cls, m, false, __builtin_return_address(0));
	pthread_mutex_lock(&m->m);
}
/* true if taken. */
static inline bool rl_mutex_trylock(struct rl_mutex *m)
{
	if (pthread_mutex_trylock(&m->m))
		return false;
	if (rl_lockdep_enabled())
		rl_lockdep_acquire(m->cls, m, true, __builtin_return_address(0));
	return true;
}
static inline void rl_mutex_unlock(struct rl_mutex *m)
{
	if (rl_lockdep_enabled())
		rl_lockdep_release(m->cls, m);
	pthread_mutex_unlock(&m->m);
}
/* The checker sees m released while waiting and taken again after (the
 * retake is checked like a lock()). pthread_cond_wait's result. */
int rl_cond_wait(pthread_cond_t *cond, struct rl_mutex *m);
int rl_cond_timedwait(pthread_cond_t *cond, struct rl_mutex *m, const struct timespec *abstime);

#endif
