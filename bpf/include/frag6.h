/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * frag6.h: fragmented IPv6 datagrams, frag.h's twin (RFC 8200 §4.5). Only
 * a datagram's first fragment carries the upper-layer header: lb6_decide()
 * decides it as any packet and hands its outcome to frag6_first(); a later
 * fragment (offset != 0) goes to frag6_later() without its ports.
 *
 * The hooks' contract (the `frag6` map is keyed by source, destination and
 * identification, struct frag6_key): frag6_first() returns the first
 * fragment's outcome, having remembered its translation unless `lookup`;
 * frag6_later() returns SLUICE_NAT_FRAG with the translation in s->act
 * (old/new address, peer for hairpin, ids), SLUICE_ERR_FRAGMENT to a VIP
 * without an entry (to_vip set), or SLUICE_PASS.
 *
 * Not built yet beyond that last rule: a first fragment is balanced as its
 * packet is, and a later one to a VIP is dropped (drop_fragment), as IPv4
 * drops a later fragment whose first it has not seen.
 */
#ifndef SLUICE_FRAG6_H
#define SLUICE_FRAG6_H

#include "lb6.h"

static __always_inline int frag6_first(const struct ipv6hdr *ip6h,
				       const struct ipv6_frag_info *frag,
				       int rc, struct lb6_scratch *s,
				       int lookup)
{
	return rc;
}

static __always_inline int frag6_later(const struct ipv6hdr *ip6h,
				       const struct ipv6_frag_info *frag,
				       struct lb6_scratch *s, int lookup)
{
	if (vip6_known(IP6_DADDR(ip6h), &s->vk)) {
		s->act.n.to_vip = 1;
		return SLUICE_ERR_FRAGMENT;
	}
	return SLUICE_PASS;
}

#endif /* SLUICE_FRAG6_H */
