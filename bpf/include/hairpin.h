/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * hairpin.h: a flow whose client is its own backend (a pod calling its own
 * service and given itself). DNAT alone would hand the pod a packet from its
 * own address, which it drops as a martian; kube-proxy masquerades such
 * flows, and so does sluice, as part of the flow's NAT: the entries carry
 * SLUICE_CT_F_HAIRPIN.
 *
 *   forward, key (client:sport -> VIP:port):
 *     dst := backend:port (= client:port), src := hairpin address (sport stays)
 *   reply, key (backend:port -> hairpin:sport):
 *     src := VIP:port, dst := the reply's own source (the client; dport stays)
 *
 * The source port is kept, so the reply needs no field of its own: the
 * client's port is the reply's destination port and the client's address the
 * reply's source address. Two sockets of one client cannot collide on the
 * NATed tuple unless they share a source port towards two VIPs with the same
 * backend endpoint, which collides without hairpin too (both DNAT to one
 * tuple). The reply key (backend -> hairpin address) is no other flow's as
 * long as the hairpin address sends nothing itself through this NAT: the
 * node's own processes are balanced at their sockets (sock_lb.bpf.c), not
 * here.
 *
 * The address is read from node_config on each packet of a hairpin flow,
 * not kept in the entry: a change of it moves established hairpin flows to
 * the new address, which their server sees as a new peer (they break), and
 * turning it off leaves them DNATed only.
 */
#ifndef SLUICE_HAIRPIN_H
#define SLUICE_HAIRPIN_H

#include <linux/ip.h>
#include "sluice_shared.h"
#include "maps.h"

/* The hairpin SNAT address, network order; 0: off. */
static __always_inline __be32 hairpin_addr(void)
{
	__u32 zero = 0;
	struct node_config *nc = bpf_map_lookup_elem(&node_config, &zero);

	return nc ? nc->hairpin_addr : 0;
}

/* The IPv6 hairpin SNAT address (node_config6), or NULL: off (all zero). */
static __always_inline const __be32 *hairpin6_addr(void)
{
	__u32 zero = 0;
	struct node_config6 *nc = bpf_map_lookup_elem(&node_config6, &zero);

	if (!nc || !(nc->hairpin_addr[0] | nc->hairpin_addr[1] |
		     nc->hairpin_addr[2] | nc->hairpin_addr[3]))
		return NULL;
	return nc->hairpin_addr;
}

#endif /* SLUICE_HAIRPIN_H */
