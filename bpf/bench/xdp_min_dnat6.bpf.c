// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_min_dnat6.bpf.c: benchmark baseline, xdp_min_dnat's IPv6 twin. The
 * least an IPv6 DNAT load balancer does per packet: parse (no extension
 * headers), one hash lookup of (daddr, dport, proto), rewrite the 16-byte
 * destination and the port, update the L4 checksum incrementally, XDP_TX.
 * No conntrack, no backend choice, no counters.
 *
 * Baselines include only bpf/bench/ headers (see xdp_parse.bpf.c).
 */
#define DNAT6_MAP
#include "dnat6.h"
#include "maps.h"
#include "stub.h"

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct dnat6_value *nat;
	struct l4_6_hdrs h;

	if (parse_l4_6(data, data_end, &h))
		return XDP_PASS;
	nat = dnat6_lookup(&h);
	if (!nat)
		return XDP_PASS;
	dnat6_rewrite(&h, nat->daddr, nat->dport);
	return XDP_TX;
}
