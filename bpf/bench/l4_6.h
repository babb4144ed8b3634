/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * l4_6.h: l4.h's twin for IPv6, the parse of the IPv6 baselines
 * (xdp_parse6, xdp_min_dnat6). Not sluice's include/parsing.h: a baseline
 * must not move when sluice's own headers change.
 */
#ifndef SLUICE_BENCH_L4_6_H
#define SLUICE_BENCH_L4_6_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* The headers a DNAT reads and rewrites. */
struct l4_6_hdrs {
	struct ipv6hdr *ip6h;
	__be16 *sport;
	__be16 *dport;
	__sum16 *check;
	int udp;
};

/* Ethernet, the fixed IPv6 header and TCP or UDP right after it, with a
 * bounds check before every header, as a load balancer must; -1 for
 * anything else. No extension header is walked: the least any IPv6 load
 * balancer does, so a floor below sluice's (whose walk a packet without
 * extension headers leaves at its first test). */
static __always_inline int parse_l4_6(void *data, void *data_end,
				      struct l4_6_hdrs *h)
{
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6h;
	void *l4;

	if ((void *)(eth + 1) > data_end)
		return -1;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6))
		return -1;
	ip6h = (void *)(eth + 1);
	if ((void *)(ip6h + 1) > data_end)
		return -1;
	if (ip6h->version != 6)
		return -1;
	l4 = ip6h + 1;
	h->ip6h = ip6h;
	if (ip6h->nexthdr == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end || th->doff < 5)
			return -1;
		h->sport = &th->source;
		h->dport = &th->dest;
		h->check = &th->check;
		h->udp = 0;
		return 0;
	}
	if (ip6h->nexthdr == IPPROTO_UDP) {
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

#endif /* SLUICE_BENCH_L4_6_H */
