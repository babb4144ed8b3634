// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_floor.bpf.c: benchmark baseline. Returns XDP_TX without reading the
 * frame: what BPF_PROG_TEST_RUN costs per packet around any program.
 *
 * The addon loads a file object's programs by the names sluice_xdp and
 * sluice_tc (native/dataplane.cc), so each baseline is its own object with
 * both; the tc program is a stub the benchmark never runs.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	return XDP_TX;
}

SEC("tc")
int sluice_tc(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
