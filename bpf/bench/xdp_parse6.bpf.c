// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_parse6.bpf.c: benchmark baseline, xdp_parse's IPv6 twin. Parses
 * Ethernet, the fixed IPv6 header and TCP or UDP with a bounds check before
 * every header (l4_6.h), and returns XDP_TX; anything it cannot parse passes.
 *
 * Baselines include only bpf/bench/ headers (see xdp_parse.bpf.c).
 */
#include "l4_6.h"
#include "stub.h"

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct l4_6_hdrs h;

	/* The port is used so that the compiler keeps its load. */
	if (parse_l4_6(data, data_end, &h) || !*h.dport)
		return XDP_PASS;
	return XDP_TX;
}
