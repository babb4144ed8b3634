// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_parse.bpf.c: benchmark baseline. Parses Ethernet, IPv4 (options
 * included) and TCP or UDP with a bounds check before every header, as a
 * load balancer must (l4.h), and returns XDP_TX; anything it cannot parse
 * passes.
 *
 * The baselines include only bpf/bench/ headers, never sluice's include/:
 * a baseline must not move when sluice's own headers change.
 */
#include "l4.h"
#include "stub.h"

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct l4_hdrs h;

	/* The port is used so that the compiler keeps its load. */
	if (parse_l4(data, data_end, &h) || !*h.dport)
		return XDP_PASS;
	return XDP_TX;
}
