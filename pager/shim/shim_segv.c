/* SPDX-License-Identifier: MIT */
/*
 * SIGSEGV and SIGBUS under the pager.
 *
 * A fork child has no pager regions until shim_fork.c maps its snapshots
 * (the regions are MADV_DONTFORK), but glibc's fork runs code in the child
 * before any atfork handler: in a process that ever had a second thread
 * (the watchdog makes every client one) it restores the NSS state, which
 * malloc put in the heap, and resets thread-specific data of the other
 * threads, also in the heap. Those first touches fault; the handler maps
 * the snapshots right there (shim_fork_child_fault) and the access
 * retries. Around each fork our handler is in place whatever the program
 * installed, and SIGSEGV/SIGBUS are unblocked.
 *
 * Any other crash says where: the faulting address, whether it lies in a
 * pager region (and which), the shim's mode, and the code address as
 * object+offset for addr2line. A crash inside pager memory is the one way
 * a lost page could show itself, so it must never be silent. Outside the
 * fork window the handler is only a default that a program's own replaces;
 * after the message the default action is restored and the fault
 * re-executes (or the signal is raised again when it came from kill), so
 * the exit status and any core dump are what they would have been.
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include "pager/shim/shim.h"

static const int fault_sigs[] = { SIGSEGV, SIGBUS };
#define NSIGS	(sizeof(fault_sigs) / sizeof(fault_sigs[0]))

/* Around a fork (fork_lock held): the program's actions and mask. */
static bool in_fork;
static struct sigaction saved_act[NSIGS];
static sigset_t saved_mask;

static const char *kind_name(uint32_t kind)
{
	switch (kind) {
	case RL_REGION_HEAP: return "heap";
	case RL_REGION_ANON: return "anon";
	case RL_REGION_FILE: return "file";
	default: return "?";
	}
}

static const char *mode_name(void)
{
	switch (__atomic_load_n(&shim.mode, __ATOMIC_ACQUIRE)) {
	case SHIM_PAGED: return "paged";
	case SHIM_DETACHED: return "a fork child on private snapshots";
	case SHIM_INITING: return "starting";
	default: return "not started";
	}
}

static void report(int sig, const siginfo_t *si, const ucontext_t *uc)
{
	uint64_t addr = (uintptr_t)si->si_addr;
	uintptr_t ip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
	char where[160] = "outside every pager region";
	Dl_info di = { 0 };

	/* No regions_lock: the faulting thread may hold it. A torn read only
	 * garbles this message. */
	for (size_t i = 0; i < SHIM_MAX_REGIONS; i++) {
		const struct shim_region *r = &shim.regions[i];

		if (r->used && addr >= r->start && addr - r->start < r->len) {
			snprintf(where, sizeof(where), "in %s region %u (page %llu of %llu)",
				 kind_name(r->kind), r->id,
				 (unsigned long long)((addr - r->start) >> 12),
				 (unsigned long long)(r->len >> 12));
			break;
		}
	}
	if (!dladdr((void *)ip, &di) || !di.dli_fname)
		di.dli_fname = "?";
	shim_warn("%s at 0x%llx (si_code %d), %s; mode: %s; code at %s+0x%llx",
		  sig == SIGBUS ? "SIGBUS" : "SIGSEGV", (unsigned long long)addr, si->si_code,
		  where, mode_name(), di.dli_fname,
		  (unsigned long long)(ip - (uintptr_t)di.dli_fbase));
}

static size_t sig_slot(int sig)
{
	return sig == SIGSEGV ? 0 : 1;
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	int e = errno;
	bool sent = si->si_code <= 0;

	if (!sent && sig == SIGSEGV && shim_fork_child_fault((uintptr_t)si->si_addr)) {
		errno = e;
		return;
	}
	if (in_fork) {
		/* Not ours: the program's own action takes it from here. */
		const struct sigaction *a = &saved_act[sig_slot(sig)];

		if (a->sa_handler != SIG_DFL || (a->sa_flags & SA_SIGINFO)) {
			sigaction(sig, a, NULL);
			if (sent)
				raise(sig);
			errno = e;
			return;
		}
	}
	report(sig, si, uc);
	signal(sig, SIG_DFL);
	if (sent)	/* it will not come back by itself */
		raise(sig);
	errno = e;
}

static void install(int sig)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

void shim_segv_install(void)
{
	struct sigaction old;

	for (size_t i = 0; i < NSIGS; i++) {
		/* A handler already there (inherited SIG_IGN too) is the program's. */
		if (sigaction(fault_sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL &&
		    !(old.sa_flags & SA_SIGINFO))
			install(fault_sigs[i]);
	}
}

void shim_segv_fork_begin(void)
{
	sigset_t unblock;

	for (size_t i = 0; i < NSIGS; i++) {
		sigaction(fault_sigs[i], NULL, &saved_act[i]);
		install(fault_sigs[i]);
	}
	sigemptyset(&unblock);
	for (size_t i = 0; i < NSIGS; i++)
		sigaddset(&unblock, fault_sigs[i]);
	pthread_sigmask(SIG_UNBLOCK, &unblock, &saved_mask);
	in_fork = true;
}

void shim_segv_fork_end(void)
{
	in_fork = false;
	pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
	for (size_t i = 0; i < NSIGS; i++)
		sigaction(fault_sigs[i], &saved_act[i], NULL);
}
