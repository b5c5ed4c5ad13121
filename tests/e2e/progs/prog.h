/* SPDX-License-Identifier: MIT */
/*
 * Messages and number parsing shared by the e2e programs. Define PROG_NAME
 * (a string) and PROG_USAGE (the usage text) before including this.
 * fail() exits 1, bad_usage() exits 2.
 */
#ifndef RL_E2E_PROG_H
#define RL_E2E_PROG_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static _Noreturn __attribute__((format(printf, 1, 2))) void fail(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG_NAME ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static _Noreturn void bad_usage(const char *what, const char *arg)
{
	fprintf(stderr, PROG_NAME ": %s '%s'\n%s", what, arg, PROG_USAGE);
	exit(2);
}

/* A decimal number; with suffix, optionally followed by K, M or G. */
static uint64_t parse_num(const char *s, bool suffix)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	errno = 0;
	if (*s < '0' || *s > '9')
		bad_usage("not a number:", s);
	v = strtoull(s, &end, 10);
	if (errno)
		bad_usage("out of range:", s);
	if (suffix && *end) {
		switch (*end) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		default: bad_usage("not a size:", s);
		}
		if (end[1] || v > (UINT64_MAX >> shift))
			bad_usage("not a size:", s);
		return (uint64_t)v << shift;
	}
	if (*end)
		bad_usage("not a number:", s);
	return v;
}

#endif
