/* SPDX-License-Identifier: MIT */
/* The names of --policy and --wb values: one table each, so the CLI, the
 * JSON report and the docs spell them the same way. */
#include <errno.h>
#include <string.h>

#include "reclaim/pgdat.h"

static const char *const policy_names[NR_RL_POLICIES] = {
	[RL_POLICY_WRITEPAGE] = "writepage",
	[RL_POLICY_WRITEPAGES] = "writepages",
	[RL_POLICY_WRITEAROUND] = "writearound",
	[RL_POLICY_NODIRECT] = "nodirect",
	[RL_POLICY_FLUSHER] = "flusher",
	[RL_POLICY_CAPTURE] = "capture",
};

static const char *const wb_names[] = {
	[RL_WB_SINGLE] = "single",
	[RL_WB_BATCH] = "batch",
};

const char *rl_policy_name(enum rl_policy p)
{
	return (unsigned)p < NR_RL_POLICIES ? policy_names[p] : NULL;
}

int rl_policy_parse(const char *s, enum rl_policy *p)
{
	for (unsigned i = 0; s && i < NR_RL_POLICIES; i++) {
		if (strcmp(s, policy_names[i]) == 0) {
			*p = (enum rl_policy)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *rl_wb_mode_name(enum rl_wb_mode m)
{
	return (unsigned)m < sizeof(wb_names) / sizeof(wb_names[0]) ? wb_names[m] : NULL;
}

int rl_wb_mode_parse(const char *s, enum rl_wb_mode *m)
{
	for (unsigned i = 0; s && i < sizeof(wb_names) / sizeof(wb_names[0]); i++) {
		if (strcmp(s, wb_names[i]) == 0) {
			*m = (enum rl_wb_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}
