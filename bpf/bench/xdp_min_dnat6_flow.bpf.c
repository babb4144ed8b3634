// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_min_dnat6_flow.bpf.c: benchmark baseline, xdp_min_dnat6 with its one
 * hash lookup keyed by the packet's whole 5-tuple in conntrack6's 40-byte
 * layout (both addresses, both ports, the protocol) instead of (daddr,
 * dport, proto): the least a load balancer pays that finds an IPv6 flow
 * by its tuple, as sluice's conntrack6 does. The difference from
 * xdp_min_dnat6 is what the wider key costs alone.
 *
 * Baselines include only bpf/bench/ headers (see xdp_parse.bpf.c).
 */
#include "dnat6.h"
#include "stub.h"
#include <bpf/bpf_helpers.h>

/* struct ct6_key's layout (include/sluice_shared.h), written out here so
 * that the baseline never moves with sluice. */
struct flow6_key {
	__be32 saddr[4];
	__be32 daddr[4];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

/* As many entries as the dnat6 map, so both hash into as many buckets. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow6_key);
	__type(value, struct dnat6_value);
} dnat6_flow SEC(".maps");

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct dnat6_value *nat;
	struct l4_6_hdrs h;
	struct flow6_key k = {};

	if (parse_l4_6(data, data_end, &h))
		return XDP_PASS;
	__builtin_memcpy(k.saddr, &h.ip6h->saddr, sizeof(k.saddr));
	__builtin_memcpy(k.daddr, &h.ip6h->daddr, sizeof(k.daddr));
	k.sport = *h.sport;
	k.dport = *h.dport;
	k.proto = h.ip6h->nexthdr;
	nat = bpf_map_lookup_elem(&dnat6_flow, &k);
	if (!nat)
		return XDP_PASS;
	dnat6_rewrite(&h, nat->daddr, nat->dport);
	return XDP_TX;
}
