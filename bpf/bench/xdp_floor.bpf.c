// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_floor.bpf.c: benchmark baseline. Returns XDP_TX without reading the
 * frame: what BPF_PROG_TEST_RUN costs per packet around any program.
 * (The tc program every object needs is stub.h's.)
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "stub.h"

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	return XDP_TX;
}
