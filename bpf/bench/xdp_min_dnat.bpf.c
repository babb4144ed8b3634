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
#define DNAT_MAP
#include "dnat.h"
#include "maps.h"
#include "stub.h"

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct dnat_value *nat;
	struct l4_hdrs h;

	if (parse_l4(data, data_end, &h))
		return XDP_PASS;
	nat = dnat_lookup(&h);
	if (!nat)
		return XDP_PASS;
	dnat_rewrite(&h, nat->daddr, nat->dport);
	return XDP_TX;
}
