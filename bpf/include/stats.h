/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * stats.h: per-CPU counters. Plain ++ on a per-CPU slot needs no atomics.
 */
#ifndef SLUICE_STATS_H
#define SLUICE_STATS_H

#include "maps.h"

static __always_inline struct global_stats *global_stats_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&global_stats, &zero);
}

static __always_inline void lb_stats_add(void *map, __u32 id, __u64 bytes,
					 int new_conn, int reply)
{
	struct lb_stats *s = bpf_map_lookup_elem(map, &id);

	if (!s)
		return;
	if (reply) {
		s->reply_packets++;
		return;
	}
	s->packets++;
	s->bytes += bytes;
	if (new_conn)
		s->new_conns++;
}

#endif /* SLUICE_STATS_H */
