/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lb6.h: the load-balancing core for IPv6, lb.h's twin.
 *
 * The entry points send every IPv6 frame here through a subprogram of its
 * own (xdp_lb6, tc_lb6: noinline on purpose), so that the IPv4 program's
 * instructions and registers stay what they are and the verifier explores
 * IPv6's states inside it. The decision has lb_decide()'s shape: it parses,
 * finds the flow (conntrack6) or the service, picks the backend and fills in
 * a struct nat6_action, never writing to the packet.
 */
#ifndef SLUICE_LB6_H
#define SLUICE_LB6_H

#include "lb.h"

/*
 * What the entry point must do to an IPv6 packet: lb.h's action, whose
 * offsets, ports, ids and outcome flags mean what they mean for IPv4 (so
 * that lb_account() counts both families alike), with the addresses 16
 * bytes wide. The action's own 4-byte address fields stay zero.
 */
struct nat6_action {
	struct nat_action n;
	__be32 old_addr[4];
	__be32 new_addr[4];
	__be32 peer_old_addr[4]; /* hairpin: the other address, before */
	__be32 peer_new_addr[4]; /* and after */
};

/*
 * Decide what to do with an IPv6 frame. Returns lb_decide()'s outcomes.
 * Not built yet: every IPv6 frame passes, counted as not ours.
 */
static __always_inline int lb6_decide(void *ctx, __u32 ifindex, void *data,
				      void *data_end, __u32 frame_len,
				      struct nat6_action *act, const int lookup)
{
	return SLUICE_PASS;
}

#endif /* SLUICE_LB6_H */
