// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_ladder.bpf.c: where sluice's established-flow cost goes. The minimal
 * DNAT of xdp_min_dnat.bpf.c (step 0), turned into sluice's established path
 * one step per object (built with -DLADDER_STEP=1..5), with the same parse
 * and rewrite (dnat.h):
 *
 *   1  the rewrite target from a `conntrack` hit on the packet's own tuple
 *      (struct ct_key, LRU hash) instead of the minimal DNAT's own map
 *   2  + the `backends` array slot, checked against the conntrack entry
 *      (service, address, port)
 *   3  + the clock (clock.h: the coarse time, cached per CPU for a tick)
 *      and the last-seen refresh test
 *   4  + the per-service and per-backend per-CPU counters
 *   5  + the global per-CPU counters, read once as lb_account() does
 *
 * Step 5 makes exactly the map and helper calls of sluice's established
 * path, on maps with sluice's names, types (sluice_shared.h) and sizes (the
 * benchmark fills them with the control plane's codecs), so sluice's cost
 * minus step 5 is what its structure costs (its own parse, the branches for
 * replies and UDP, ...: sluice's established flow takes xdp_lb.bpf.c's fast
 * path, which rewrites in the same pass as this ladder does).
 */
#define CT_MAP
#include "dnat.h"
#include "maps.h"
#include "stub.h"
#include "sluice_shared.h"
#include "clock.h"

#ifndef LADDER_STEP
#define LADDER_STEP 5
#endif

/* sluice's default idle timeout of an established TCP flow (config.h). */
#define EST_TIMEOUT 21600

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend_value);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct lb_stats);
} svc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct lb_stats);
} backend_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct global_stats);
} global_stats SEC(".maps");

#if LADDER_STEP >= 4
static __always_inline void stats_add(void *map, __u32 id, __u64 bytes)
{
	struct lb_stats *s = bpf_map_lookup_elem(map, &id);

	if (s) {
		s->packets++;
		s->bytes += bytes;
	}
}
#endif

#if LADDER_STEP >= 5
static __always_inline struct global_stats *global_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&global_stats, &zero);
}
#endif

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ct_key fk;
	struct ct_value *ct;
	struct l4_hdrs h;

	if (parse_l4(data, data_end, &h))
		return XDP_PASS;
	ct_key_of(&fk, &h);
	ct = bpf_map_lookup_elem(&conntrack, &fk);
	if (!ct || (ct->flags & SLUICE_CT_F_REPLY))
		return XDP_PASS;
#if LADDER_STEP >= 2
	struct backend_value *be;
	__u32 bid = ct->backend_id;

	be = bpf_map_lookup_elem(&backends, &bid);
	if (!be || !be->family || be->svc_id != ct->svc_id ||
	    be->addr[0] != ct->nat_addr || be->port != ct->nat_port)
		return XDP_PASS;
#endif
#if LADDER_STEP >= 3
	/* The lifecycle's check: alive, and its expiry where this packet
	 * would move it (sluice's fast path leaves the once-a-second write to
	 * its general path; here it is written in place). */
	__u32 now = lb_now_s();

	if ((__s32)(ct->expires - now) <= 0)
		return XDP_PASS;
	if (ct->expires != now + EST_TIMEOUT)
		ct->expires = now + EST_TIMEOUT;
#endif

	dnat_rewrite(&h, ct->nat_addr, ct->nat_port);

#if LADDER_STEP >= 4
	stats_add(&svc_stats, ct->svc_id, bpf_ntohs(h.iph->tot_len));
	stats_add(&backend_stats, bid, bpf_ntohs(h.iph->tot_len));
#endif
#if LADDER_STEP >= 5
	struct global_stats *g = global_get();

	if (g) {
		g->rx_packets++;
		g->forwarded++;
	}
#endif
	return XDP_TX;
}
