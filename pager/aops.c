/* SPDX-License-Identifier: MIT */
/* Backend names, for --backend and messages. */
#include "pager/aops.h"

const char *rl_backend_name(const struct rl_backend *be)
{
	if (!be || !be->ops)
		return "none";
	return be->ops->name;
}
