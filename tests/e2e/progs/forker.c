/* SPDX-License-Identifier: MIT */
/*
 * forker MIB: fork() without exec under the pager.
 *
 * The parent fills MIB MiB once, front to back (under a budget below MIB the
 * early pages are evicted by then, and nothing has been read back yet), and
 * forks. The child must see every byte, evicted pages included, as private
 * memory: it verifies all of it, overwrites it with its own pattern,
 * allocates more, forks a grandchild that verifies the child's data, and
 * exits. The parent then checks that its own copy is unchanged, twice, so
 * its pages are read back from the backing store after the fork.
 *
 * Both look the user up first: glibc keeps its NSS state in the heap and
 * restores it in every fork child of a process that ever had two threads,
 * before any atfork handler runs (bash without HOME does the same).
 *
 * The output (no addresses, no pids) is the same natively and under the
 * pager. Exits 1 with a message on any wrong byte.
 */
#include <errno.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pattern.h"

#define SEED_PARENT	0x5eed0001ull
#define SEED_CHILD	0x5eed0002ull
#define SEED_EXTRA	0x5eed0003ull

static void verify(const char *who, const unsigned char *p, size_t len, uint64_t seed,
		   uint64_t *sum)
{
	size_t bad = pat_check(p, len, seed, sum);

	if (bad != len) {
		pat_report("forker", who, p, len, seed, bad);
		exit(1);
	}
}

static int wait_ok(pid_t pid, const char *who)
{
	int st;

	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "forker: waitpid %s: %s\n", who, strerror(errno));
			return 0;
		}
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 1;
	if (WIFSIGNALED(st))
		fprintf(stderr, "forker: the %s was killed by signal %d\n", who, WTERMSIG(st));
	else
		fprintf(stderr, "forker: the %s exited %d\n", who, WEXITSTATUS(st));
	return 0;
}

/* getpwuid: NSS loads its configuration into the heap. */
static void who(const char *what)
{
	struct passwd *pw = getpwuid(getuid());

	printf("%s: user %s\n", what, pw ? pw->pw_name : "(none)");
}

static _Noreturn void child(unsigned char *a, size_t len)
{
	uint64_t sum = 0;

	who("child");

	verify("child, parent's data", a, len, SEED_PARENT, &sum);
	printf("child: %zu MiB inherited intact, checksum %016llx\n", len >> 20, (unsigned long long)sum);

	pat_fill(a, len, SEED_CHILD);
	sum = 0;
	verify("child, own data", a, len, SEED_CHILD, &sum);

	/* the detached child's allocator still works, in its private copy */
	size_t xlen = 8u << 20;
	unsigned char *x = malloc(xlen);
	if (!x) {
		fprintf(stderr, "forker: child: malloc of 8 MiB failed\n");
		exit(1);
	}
	pat_fill(x, xlen, SEED_EXTRA);
	verify("child, new allocation", x, xlen, SEED_EXTRA, &sum);
	printf("child: scribbled and allocated, checksum %016llx\n", (unsigned long long)sum);
	fflush(stdout);

	/* a grandchild: the child's memory is already private */
	pid_t g = fork();
	if (g < 0) {
		fprintf(stderr, "forker: child: fork: %s\n", strerror(errno));
		exit(1);
	}
	if (g == 0) {
		uint64_t gs = 0;
		verify("grandchild, child's data", a, len, SEED_CHILD, &gs);
		verify("grandchild, child's allocation", x, xlen, SEED_EXTRA, &gs);
		printf("grandchild: checksum %016llx\n", (unsigned long long)gs);
		exit(0);
	}
	if (!wait_ok(g, "grandchild"))
		exit(1);
	free(x);
	exit(0);
}

int main(int argc, char **argv)
{
	char *end;
	unsigned long mib = argc == 2 ? strtoul(argv[1], &end, 10) : 0;

	if (argc != 2 || *end || mib == 0 || mib > 65536) {
		fprintf(stderr, "usage: forker MIB (1..65536)\n");
		return 2;
	}
	size_t len = (size_t)mib << 20;
	unsigned char *a = malloc(len);
	if (!a) {
		fprintf(stderr, "forker: malloc of %lu MiB failed\n", mib);
		return 1;
	}
	who("parent");
	pat_fill(a, len, SEED_PARENT);
	printf("parent: filled %lu MiB\n", mib);
	fflush(stdout);

	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "forker: fork: %s\n", strerror(errno));
		return 1;
	}
	if (pid == 0)
		child(a, len);
	if (!wait_ok(pid, "child"))
		return 1;

	uint64_t sum = 0;
	for (int pass = 0; pass < 2; pass++) {
		sum = 0;
		verify("parent after the fork", a, len, SEED_PARENT, &sum);
	}
	printf("parent: own copy unchanged after the child scribbled, checksum %016llx\n",
	       (unsigned long long)sum);
	free(a);
	return 0;
}
