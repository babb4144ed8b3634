// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_min_dnat.bpf.c: benchmark baseline. The least a DNAT load balancer
 * does per packet: parse, one hash lookup of (daddr, dport, proto), rewrite
 * the destination, update the IP and L4 checksums incrementally, XDP_TX.
 * No conntrack, no backend choice, no counters. Step 0 of the cost ladder
 * (xdp_ladder.bpf.c), which shares its parse and rewrite (dnat.h).
 *
 * Baselines include only bpf/bench/ headers (see xdp_parse.bpf.c).
 */
#include "dnat.h"
#include "stub.h"

/* As many entries as sluice's services map, so both hash the same way
 * into as many buckets. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct dnat_key);
	__type(value, struct dnat_value);
} dnat SEC(".maps");

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct dnat_key key = {};
	struct dnat_value *nat;
	struct l4_hdrs h;

	if (parse_l4(data, data_end, &h))
		return XDP_PASS;
	key.daddr = h.iph->daddr;
	key.dport = *h.dport;
	key.proto = h.iph->protocol;
	nat = bpf_map_lookup_elem(&dnat, &key);
	if (!nat)
		return XDP_PASS;
	dnat_rewrite(&h, nat->daddr, nat->dport);
	return XDP_TX;
}
