/* SPDX-License-Identifier: MIT */
/*
 * Daemon death. The shim keeps its userfaultfd open, so when the daemon
 * dies a thread blocked in a fault would wait forever (closing the uffd
 * instead would make it read a zero page). This thread watches the daemon
 * socket and stops the whole process with a message, which works even
 * while other threads are stuck in faults.
 *
 * It polls for POLLRDHUP only: replies to the program's requests make the
 * socket readable, and must not wake it. All signals are blocked in it so
 * that the program's signal handling sees no extra thread.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "pager/shim/shim.h"

static void *watchdog(void *arg)
{
	struct pollfd p = { .fd = shim.sock, .events = POLLRDHUP };

	for (;;) {
		p.revents = 0;
		int n = poll(&p, 1, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			shim_die("the pager watchdog cannot poll the daemon socket: %s; stopping",
				 strerrordesc_np(errno));
		if (p.revents & POLLNVAL)
			shim_die("the program closed the pager daemon socket (fd %d); "
				 "stopping (no page was zero-filled)", p.fd);
		if (p.revents & (POLLHUP | POLLRDHUP | POLLERR))
			shim_die("the pager daemon went away; stopping (no page was zero-filled)");
	}
	return NULL;
}

void shim_watchdog_start(void)
{
	static bool started;
	pthread_attr_t attr;
	pthread_t t;
	sigset_t all, old;

	if (started || shim.mode != SHIM_PAGED)
		return;
	started = true;
	sigfillset(&all);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 << 10);
	/* The new thread inherits this mask. */
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&t, &attr, watchdog, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		shim_die("cannot start the pager watchdog thread: %s", strerrordesc_np(rc));
}
