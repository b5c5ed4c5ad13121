/* SPDX-License-Identifier: MIT */
/*
 * Reclaim's counters and latency distributions (pager/proto.h: struct
 * rl_reclaim_counters) as one JSON object, the same in `run --json` and in
 * the benchmarks, so that a table of runs can be made from either.
 */
#ifndef RECLAIMLAB_HARNESS_RECLAIM_JSON_H
#define RECLAIMLAB_HARNESS_RECLAIM_JSON_H

#include <json-c/json.h>

#include "pager/proto.h"

/* A new object (the caller owns it). */
struct json_object *rl_reclaim_json(const struct rl_reclaim_counters *rc);

#endif
