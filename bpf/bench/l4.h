/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * l4.h: the parse of the per-packet baselines (xdp_parse, xdp_min_dnat and
 * the cost ladder). Not sluice's include/parsing.h: a baseline must not move
 * when sluice's own headers change.
 */
#ifndef SLUICE_BENCH_L4_H
#define SLUICE_BENCH_L4_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define IP_MF_OFFSET 0x3fff

/* The headers a DNAT reads and rewrites. */
struct l4_hdrs {
	struct iphdr *iph;
	__be16 *sport;
	__be16 *dport;
	__sum16 *check;
	int udp;
};

/* Ethernet, IPv4 (options included) and TCP or UDP, with a bounds check
 * before every header, as a load balancer must; -1 for anything else, a
 * later fragment (it carries no ports) included. */
static __always_inline int parse_l4(void *data, void *data_end,
				    struct l4_hdrs *h)
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
	if (iph->frag_off & bpf_htons(IP_MF_OFFSET))
		return -1;
	/* ihl is 4 bits: the mask keeps the verifier's range at 0..60. */
	l4 = (void *)iph + (iph->ihl & 0xf) * 4;
	h->iph = iph;
	if (iph->protocol == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end || th->doff < 5)
			return -1;
		h->sport = &th->source;
		h->dport = &th->dest;
		h->check = &th->check;
		h->udp = 0;
		return 0;
	}
	if (iph->protocol == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return -1;
		h->sport = &uh->source;
		h->dport = &uh->dest;
		h->check = &uh->check;
		h->udp = 1;
		return 0;
	}
	return -1;
}

#endif /* SLUICE_BENCH_L4_H */
