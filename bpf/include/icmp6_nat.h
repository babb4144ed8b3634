/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * icmp6_nat.h: ICMPv6 through the NAT, icmp_nat.h's twin. lb6_decide()
 * hands every unfragmented ICMPv6 packet to icmp6_decide(), the cursor at
 * its ICMPv6 header, `l4_len` its bytes.
 *
 * Informational messages (type 128 and up: echo, MLD, neighbour and router
 * discovery) are never the balancer's: they pass here, before any map is
 * read, whoever they are from or to. Errors (types 1-4: destination
 * unreachable, packet too big, time exceeded, parameter problem) about a
 * tracked flow are the ones to translate (SLUICE_NAT_ICMP, the quote's
 * addresses and port and both checksums, the ICMPv6 one with its
 * pseudo-header); this hook passes them for now, and anything else passes.
 */
#ifndef SLUICE_ICMP6_NAT_H
#define SLUICE_ICMP6_NAT_H

#include "lb6.h"

/* The ICMPv6 errors icmp6_decide() may translate. */
static __always_inline int icmp6_is_error(__u8 type)
{
	return type >= ICMP6_DEST_UNREACH && type <= ICMP6_PARAMPROB;
}

static __always_inline int icmp6_decide(struct cursor *c, void *data,
					void *data_end,
					const struct ipv6hdr *ip6h,
					__u32 l4_len, struct lb6_scratch *s,
					int lookup)
{
	struct icmp6hdr *icmp = c->pos;

	if ((void *)(icmp + 1) > data_end || l4_len < sizeof(*icmp))
		return SLUICE_PASS;
	if (icmp->type >= ICMP6_INFO_MIN || !icmp6_is_error(icmp->type))
		return SLUICE_PASS;
	/* An error about a flow: its translation is the hook's to add. */
	return SLUICE_PASS;
}

#endif /* SLUICE_ICMP6_NAT_H */
