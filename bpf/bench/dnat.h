/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * dnat.h: the minimal DNAT's map and rewrite, shared by xdp_min_dnat and
 * the cost ladder, so that every ladder step starts from exactly the
 * baseline's code.
 */
#ifndef SLUICE_BENCH_DNAT_H
#define SLUICE_BENCH_DNAT_H

#include "l4.h"

/* Written by the benchmark; addresses and ports in network order. */
struct dnat_key {
	__be32 daddr;
	__be16 dport;
	__u8 proto;
	__u8 pad;
};

struct dnat_value {
	__be32 daddr;
	__be16 dport;
	__u16 pad;
};

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). One's complement sums do not
 * depend on byte order if each 16-bit word is taken as it sits in memory,
 * so nothing here is swapped. */
static __always_inline __u32 csum_add4(__u32 acc, __be32 from, __be32 to)
{
	acc += (__u16)~(from & 0xffff) + (__u16)~(from >> 16);
	return acc + (to & 0xffff) + (to >> 16);
}

static __always_inline __u16 csum_update(__u16 check, __u32 delta)
{
	__u32 sum = (__u16)~check + delta;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* Rewrite the destination to daddr:dport, with incremental checksums. The
 * L4 checksum covers the pseudo-header's address too. A UDP checksum of 0
 * means "none" and stays 0; a computed 0 is sent as 0xffff. */
static __always_inline void dnat_rewrite(const struct l4_hdrs *h,
					 __be32 daddr, __be16 dport)
{
	struct iphdr *iph = h->iph;
	__u32 delta = csum_add4(0, iph->daddr, daddr);

	iph->check = csum_update(iph->check, delta);
	iph->daddr = daddr;
	if (!h->udp || *h->check) {
		delta += (__u16)~*h->dport + dport;
		*h->check = csum_update(*h->check, delta);
		if (h->udp && !*h->check)
			*h->check = 0xffff;
	}
	*h->dport = dport;
}

#endif /* SLUICE_BENCH_DNAT_H */
