/* SPDX-License-Identifier: MIT */
/*
 * The pager options that `serve` and `run` share (--mem, --policy,
 * --backend), checked the same way by both: a private daemon that `run`
 * starts must never be the first to reject what the user typed.
 */
#ifndef RECLAIMLAB_PAGER_OPTS_H
#define RECLAIMLAB_PAGER_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "harness/cli.h"
#include "pager/pager.h"

static const struct {
	const char *name;
	enum rl_backend_kind kind;
} rl_backend_names[] = {
	{ "deepfs", RL_BACKEND_DEEPFS },
	{ "file", RL_BACKEND_FILE },
};

static inline bool rl_parse_backend(const struct rl_cmd *cmd, const char *s,
				    enum rl_backend_kind *kind)
{
	for (size_t i = 0; i < sizeof(rl_backend_names) / sizeof(rl_backend_names[0]); i++)
		if (strcmp(s, rl_backend_names[i].name) == 0) {
			*kind = rl_backend_names[i].kind;
			return true;
		}
	rl_usage_error(cmd, "unknown --backend '%s' (known: deepfs, file)", s);
	return false;
}

static inline const char *rl_backend_name_of(enum rl_backend_kind kind)
{
	for (size_t i = 0; i < sizeof(rl_backend_names) / sizeof(rl_backend_names[0]); i++)
		if (rl_backend_names[i].kind == kind)
			return rl_backend_names[i].name;
	return "?";
}

/* "clock" until reclaim/ brings the others. */
static inline bool rl_check_policy(const struct rl_cmd *cmd, const char *s)
{
	if (strcmp(s, "clock") == 0)
		return true;
	rl_usage_error(cmd, "unknown --policy '%s' (known: clock)", s);
	return false;
}

static inline bool rl_check_mem(const struct rl_cmd *cmd, uint64_t bytes)
{
	if (bytes >= RL_PAGER_MIN_MEM)
		return true;
	rl_usage_error(cmd, "--mem must be at least %llu MiB, so that the fault threads "
		       "always find a frame", (unsigned long long)(RL_PAGER_MIN_MEM >> 20));
	return false;
}

#endif
