/* SPDX-License-Identifier: MIT */
#include <inttypes.h>

#include "harness/reclaim_json.h"

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static struct json_object *lat_json(const struct rl_lat_summary *s)
{
	struct json_object *o = json_object_new_object();

	add_u64(o, "count", s->count);
	add_u64(o, "mean", s->mean);
	add_u64(o, "p50", s->p50);
	add_u64(o, "p99", s->p99);
	add_u64(o, "max", s->max);
	return o;
}

struct json_object *rl_reclaim_json(const struct rl_reclaim_counters *rc)
{
	const struct rl_vmstat *vm = &rc->vm;
	struct json_object *o = json_object_new_object(), *lat = json_object_new_object();

#define VM(field) add_u64(o, #field, vm->field)
	VM(pgalloc);
	VM(pgfree);
	VM(pgscan_kswapd);
	VM(pgscan_direct);
	VM(pgsteal_kswapd);
	VM(pgsteal_direct);
	VM(pgactivate);
	VM(pgdeactivate);
	VM(pgrotated);
	VM(workingset_refault);
	VM(workingset_activate);
	VM(workingset_restore);
	VM(nr_written_kswapd);
	VM(nr_written_direct);
	VM(nr_written_flusher);
	VM(nr_written_sync);
	VM(write_ios);
	VM(write_io_pages);
	VM(kswapd_wake);
	VM(kswapd_low_wmark_hit);
	VM(kswapd_high_wmark_hit);
	VM(allocstall);
	VM(throttled);
	VM(dirty_throttled);
	VM(nr_dirtied);
	VM(flusher_passes);
	VM(capture_success);
	VM(capture_fail);
	VM(nr_final_iput_reclaim);
	VM(wb_errors);
#undef VM
	json_object_object_add(o, "mean_write_pages",
			       json_object_new_double(vm->write_ios ? (double)vm->write_io_pages /
							(double)vm->write_ios : 0.0));
	json_object_object_add(lat, "direct_stall", lat_json(&rc->direct_stall));
	json_object_object_add(lat, "fault", lat_json(&rc->fault));
	json_object_object_add(lat, "alloc", lat_json(&rc->alloc));
	json_object_object_add(lat, "throttle", lat_json(&rc->throttle));
	json_object_object_add(o, "latency_ns", lat);
	/* only when the checker ran: absent is not "no problem found" */
	if (rc->lockdep_on)
		add_u64(o, "lockdep_reports", rc->lockdep_reports);
	return o;
}
