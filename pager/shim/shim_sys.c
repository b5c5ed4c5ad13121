/* SPDX-License-Identifier: MIT */
/*
 * Raw memory syscalls for the shim. They bypass both the shim's own mmap
 * interposers and libc's symbol lookup: init runs inside the first malloc,
 * where dlsym (which calls calloc) is not an option, and the region code
 * must reach the kernel without being managed by shim_mmap.c.
 * glibc's syscall() already returns -1 with errno set, as the libc wrappers do.
 */
#include <sys/syscall.h>
#include <unistd.h>

#include "pager/shim/shim.h"

void *shim_sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

int shim_sys_munmap(void *addr, size_t len)
{
	return (int)syscall(SYS_munmap, addr, len);
}

void *shim_sys_mremap(void *old, size_t oldlen, size_t newlen, int flags, void *new_addr)
{
	return (void *)syscall(SYS_mremap, old, oldlen, newlen, flags, new_addr);
}

int shim_sys_madvise(void *addr, size_t len, int advice)
{
	return (int)syscall(SYS_madvise, addr, len, advice);
}

int shim_sys_mprotect(void *addr, size_t len, int prot)
{
	return (int)syscall(SYS_mprotect, addr, len, prot);
}

int shim_sys_msync(void *addr, size_t len, int flags)
{
	return (int)syscall(SYS_msync, addr, len, flags);
}
