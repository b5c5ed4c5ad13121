/* SPDX-License-Identifier: MIT */
/*
 * The pager options that `serve` and `run` share (--mem, --policy, --wb,
 * --dirty-ratio, --dirty-background-ratio, --dirty-expire, --backend,
 * --iolog), checked the same way by both: a private daemon that `run`
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

#define RL_POLICY_HELP \
	"what reclaim does with dirty pages: writepage, writepages, writearound, nodirect (the " \
	"default), flusher or capture (docs/reclaim.md)"
#define RL_WB_HELP \
	"how writeback reaches the disk: batch (one write per contiguous run, the default) or " \
	"single (one write per page)"
#define RL_DIRTY_RATIO_HELP \
	"percent of the frames that may be dirty before writers are throttled (default 20)"
#define RL_DIRTY_BG_HELP \
	"percent of the frames dirty at which the flusher starts writing (default 10; 100: " \
	"no background writeback, the flusher writes only expired pages and what reclaim or " \
	"a writer over --dirty-ratio asks for)"
#define RL_VERIFY_HELP "checksum every page written back and check it when read in"
#define RL_IPUT_DELAY_HELP \
	"fault injection: reclaim sleeps MS milliseconds before dropping an inode it " \
	"pinned for writeback (--policy writepages), widening the window in which " \
	"an unmap makes reclaim's iput the last (seed 003)"
#define RL_IPUT_DELAY_MAX_MS	10000u

static inline bool rl_parse_iput_delay(struct rl_parser *p, unsigned *ms)
{
	uint32_t n;

	if (!rl_opt_u32(p, "--inject-iput-delay", &n))
		return false;
	if (n > RL_IPUT_DELAY_MAX_MS) {
		rl_usage_error(p->cmd, "--inject-iput-delay must be at most %u milliseconds",
			       RL_IPUT_DELAY_MAX_MS);
		return false;
	}
	*ms = n;
	return true;
}
#define RL_LOCKDEP_HELP \
	"check the daemon's lock order and reclaim's use of its locks (docs/lockdep.md); " \
	"reports go to standard error"
#define RL_DIRTY_EXPIRE_HELP \
	"milliseconds after which a dirty page is old enough for the flusher to write it " \
	"(default 3000; the kernel's dirty_expire_centisecs is 30 s)"
/* --iolog; serve and run each say when the file is there */
#define RL_IOLOG_HELP \
	"record every IO of the deepfs image and write the log to FILE when the daemon " \
	"unmounts it (one IO a line: submit_ns complete_ns R|W|F kind offset len error)"

/* Defaults of both commands. */
#define RL_DEFAULT_POLICY	RL_POLICY_NODIRECT
#define RL_DEFAULT_WB		RL_WB_BATCH

static inline bool rl_parse_policy(const struct rl_cmd *cmd, const char *s, enum rl_policy *p)
{
	if (rl_policy_parse(s, p) == 0)
		return true;
	rl_usage_error(cmd, "unknown --policy '%s' (known: writepage, writepages, writearound, "
		       "nodirect, flusher, capture)", s);
	return false;
}

static inline bool rl_parse_wb(const struct rl_cmd *cmd, const char *s, enum rl_wb_mode *m)
{
	if (rl_wb_mode_parse(s, m) == 0)
		return true;
	rl_usage_error(cmd, "unknown --wb '%s' (known: single, batch)", s);
	return false;
}

/* A percentage option from 1 to 100. */
static inline bool rl_parse_ratio(struct rl_parser *p, const char *name, unsigned *v)
{
	uint32_t n;

	if (!rl_opt_u32(p, name, &n))
		return false;
	if (n < 1 || n > 100) {
		rl_usage_error(p->cmd, "%s must be a percentage from 1 to 100", name);
		return false;
	}
	*v = n;
	return true;
}

/* --dirty-expire: 1 ms to an hour (0 would be the default, not "at once"). */
#define RL_DIRTY_EXPIRE_MAX_MS	3600000u

static inline bool rl_parse_dirty_expire(struct rl_parser *p, unsigned *ms)
{
	uint32_t n;

	if (!rl_opt_u32(p, "--dirty-expire", &n))
		return false;
	if (n < 1 || n > RL_DIRTY_EXPIRE_MAX_MS) {
		rl_usage_error(p->cmd, "--dirty-expire must be from 1 to %u milliseconds",
			       RL_DIRTY_EXPIRE_MAX_MS);
		return false;
	}
	*ms = n;
	return true;
}

/*
 * --iolog logs the IO of the daemon's deepfs image; with --backend file the
 * evicted pages never reach it, so a log would hold none of the pager's IO.
 */
static inline bool rl_check_iolog(const struct rl_cmd *cmd, const char *iolog,
				  enum rl_backend_kind backend)
{
	if (!iolog || backend != RL_BACKEND_FILE)
		return true;
	rl_usage_error(cmd, "--iolog logs the deepfs image's IO; with --backend file the "
		       "evicted pages do not go there");
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
