// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_parse.bpf.c: benchmark baseline. Parses Ethernet, IPv4 (options
 * included) and TCP or UDP with a bounds check before every header, as a
 * load balancer must, and returns XDP_TX; anything it cannot parse passes.
 *
 * Self-contained on purpose: a baseline must not move when sluice's own
 * headers change. Program names: see xdp_floor.bpf.c.
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

#define IP_MF_OFFSET 0x3fff

static __always_inline int parse_l4(void *data, void *data_end,
				    __be16 *dport)
{
	struct ethhdr *eth = data;
	struct iphdr *iph;
	void *l4;

	if ((void *)(eth + 1) > data_end)
		return -1;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return -1;
	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > data_end)
		return -1;
	if (iph->version != 4 || iph->ihl < 5)
		return -1;
	/* A later fragment carries no ports. */
	if (iph->frag_off & bpf_htons(IP_MF_OFFSET))
		return -1;
	/* ihl is 4 bits: the mask keeps the verifier's range at 0..60. */
	l4 = (void *)iph + (iph->ihl & 0xf) * 4;
	if (iph->protocol == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end || th->doff < 5)
			return -1;
		*dport = th->dest;
		return 0;
	}
	if (iph->protocol == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return -1;
		*dport = uh->dest;
		return 0;
	}
	return -1;
}

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__be16 dport;

	/* The port is used so that the compiler keeps its load. */
	if (parse_l4(data, data_end, &dport) || !dport)
		return XDP_PASS;
	return XDP_TX;
}

SEC("tc")
int sluice_tc(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
