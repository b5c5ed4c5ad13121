/* SPDX-License-Identifier: MIT */
/*
 * uffd_probe: exits 0 if this process may create a full (kernel and user
 * mode) userfaultfd, which the pager's clients need; otherwise prints why
 * and exits 1. The e2e suite skips the pager tests on that.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
	long fd = syscall(SYS_userfaultfd, O_CLOEXEC);

	if (fd < 0) {
		printf("userfaultfd: %s\n", strerror(errno));
		return 1;
	}
	close((int)fd);
	return 0;
}
