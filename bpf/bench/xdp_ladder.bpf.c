// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_ladder.bpf.c: where sluice's established-flow cost goes. The minimal
 * DNAT of xdp_min_dnat.bpf.c, turned into sluice's established path one step
 * per object (built with -DLADDER_STEP=1..5):
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
 * minus step 5 is what its structure costs (the nat_action between decision
 * and rewrite, bounds checked twice, ...).
 * Program names: see xdp_floor.bpf.c.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "sluice_shared.h"
#include "clock.h"

#ifndef LADDER_STEP
#define LADDER_STEP 5
#endif

#define IP_MF_OFFSET 0x3fff
#define REFRESH_NS 1000000000ULL

struct dnat_key {
	__be32 daddr;
	__be16 dport;
	__u8 proto;
	__u8 pad;
};

struct dnat_value {
	__be32 daddr;
	__be16 dport;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct dnat_key);
	__type(value, struct dnat_value);
} dnat SEC(".maps");

/* The benchmark's conntrack size, not sluice's default. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ct_key);
	__type(value, struct ct_value);
} conntrack SEC(".maps");

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

static __always_inline __u32 csum_add4(__u32 acc, __be32 from, __be32 to)
{
	acc += (__u16)~(from & 0xffff) + (__u16)~(from >> 16);
	return acc + (to & 0xffff) + (to >> 16);
}

static __always_inline __u16 csum_update(__u16 check, __u32 delta)
{
	__u32 sum = (__u16)~check + delta;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

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
	struct ethhdr *eth = data;
#if LADDER_STEP < 1
	struct dnat_key key = {};
	struct dnat_value *nat;
#endif
	struct iphdr *iph;
	__be32 new_daddr;
	__be16 new_dport;
	/* The source port is read from step 1 on. */
	__be16 *sport __attribute__((unused)), *dport;
	__sum16 *check;
	__u32 delta;
	void *l4;
	int udp;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > data_end)
		return XDP_PASS;
	if (iph->version != 4 || iph->ihl < 5)
		return XDP_PASS;
	if (iph->frag_off & bpf_htons(IP_MF_OFFSET))
		return XDP_PASS;
	/* ihl is 4 bits: the mask keeps the verifier's range at 0..60. */
	l4 = (void *)iph + (iph->ihl & 0xf) * 4;
	if (iph->protocol == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end || th->doff < 5)
			return XDP_PASS;
		sport = &th->source;
		dport = &th->dest;
		check = &th->check;
		udp = 0;
	} else if (iph->protocol == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return XDP_PASS;
		sport = &uh->source;
		dport = &uh->dest;
		check = &uh->check;
		udp = 1;
	} else {
		return XDP_PASS;
	}

#if LADDER_STEP >= 1
	struct ct_key fk = {};
	struct ct_value *ct;

	fk.saddr = iph->saddr;
	fk.daddr = iph->daddr;
	fk.sport = *sport;
	fk.dport = *dport;
	fk.proto = iph->protocol;
	ct = bpf_map_lookup_elem(&conntrack, &fk);
	if (!ct || ct->dir != SLUICE_CT_FORWARD)
		return XDP_PASS;
	new_daddr = ct->nat_addr;
	new_dport = ct->nat_port;
#else
	key.daddr = iph->daddr;
	key.dport = *dport;
	key.proto = iph->protocol;
	nat = bpf_map_lookup_elem(&dnat, &key);
	if (!nat)
		return XDP_PASS;
	new_daddr = nat->daddr;
	new_dport = nat->dport;
#endif
#if LADDER_STEP >= 2
	struct backend_value *be;
	__u32 bid = ct->backend_id;

	be = bpf_map_lookup_elem(&backends, &bid);
	if (!be || !be->family || be->svc_id != ct->svc_id ||
	    be->addr[0] != ct->nat_addr || be->port != ct->nat_port)
		return XDP_PASS;
#endif
#if LADDER_STEP >= 3
	__u64 now = lb_now();

	if (now - ct->last_seen_ns > REFRESH_NS)
		ct->last_seen_ns = now;
#endif

	delta = csum_add4(0, iph->daddr, new_daddr);
	iph->check = csum_update(iph->check, delta);
	iph->daddr = new_daddr;
	if (!udp || *check) {
		delta += (__u16)~*dport + new_dport;
		*check = csum_update(*check, delta);
		if (udp && !*check)
			*check = 0xffff;
	}
	*dport = new_dport;

#if LADDER_STEP >= 4
	stats_add(&svc_stats, ct->svc_id, bpf_ntohs(iph->tot_len));
	stats_add(&backend_stats, bid, bpf_ntohs(iph->tot_len));
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

SEC("tc")
int sluice_tc(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
