/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * dnat6.h: dnat.h's twin for IPv6, the minimal IPv6 DNAT's map types and
 * rewrite (xdp_min_dnat6).
 */
#ifndef SLUICE_BENCH_DNAT6_H
#define SLUICE_BENCH_DNAT6_H

#include "l4_6.h"
#include "dnat.h"

/* Written by the benchmark; addresses and ports in network order. */
struct dnat6_key {
	__be32 daddr[4];
	__be16 dport;
	__u8 proto;
	__u8 pad;
};

struct dnat6_value {
	__be32 daddr[4];
	__be16 dport;
	__u16 pad;
};

/* Rewrite the destination to daddr:dport, with an incremental L4 checksum
 * (dnat.h's RFC 1624 update over the four address words and the port).
 * IPv6 has no header checksum; its pseudo-header carries the 16-byte
 * address. A UDP checksum is mandatory over IPv6 (RFC 8200 8.1), so it is
 * always updated, and a computed 0 is sent as 0xffff. */
static __always_inline void dnat6_rewrite(const struct l4_6_hdrs *h,
					  const __be32 daddr[4], __be16 dport)
{
	__be32 *old = h->ip6h->daddr.in6_u.u6_addr32;
	__u32 delta = 0;
	int i;

#pragma unroll
	for (i = 0; i < 4; i++) {
		delta = csum_add4(delta, old[i], daddr[i]);
		old[i] = daddr[i];
	}
	delta += (__u16)~*h->dport + dport;
	*h->check = csum_update(*h->check, delta);
	if (h->udp && !*h->check)
		*h->check = 0xffff;
	*h->dport = dport;
}

#endif /* SLUICE_BENCH_DNAT6_H */
