/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * pmtu6.h: path MTU discovery through the load balancer for IPv6, pmtu.h's
 * twin (RFC 8201). A packet sluice forwards by the FIB leaves without the
 * stack's MTU check; when the lookup says the rewritten packet is longer
 * than the next hop's MTU, sluice answers as a router does: ICMPv6 packet
 * too big (RFC 4443 §3.2, type 2 code 0) with the next hop's MTU in its
 * 32-bit field. IPv6 has no DF bit: routers never fragment, so every such
 * packet is answered (fib6_forward()'s FIB_FRAG_NEEDED).
 *
 * As pmtu.h: the answer quotes the packet as its sender sent it (the
 * rewrite undone first), comes from the packet's destination as sent (the
 * VIP to a client, the client to a backend), out of the same token bucket
 * (reject_take), built by reject6.h's port unreachable and then turned
 * into packet too big. Its quote is reject6.h's: the IPv6 header, the
 * extension headers and up to SLUICE_REJECT_QUOTE_L4 bytes after them, at
 * most REJECT6_QUOTE_MAX (enough for the sender to find its socket; RFC
 * 4443 allows up to the minimum MTU, 1,280 bytes in all). A packet that
 * cannot be answered (to or from a group MAC or an address reject6.h
 * refuses, its quote short) is dropped, as the stack would drop it.
 */
#ifndef SLUICE_PMTU6_H
#define SLUICE_PMTU6_H

#include "lb6.h"
#include "reject6.h"
#include "icmp.h"

static __always_inline void addr6_swap(__be32 *a, __be32 *b)
{
	int i;

#pragma unroll
	for (i = 0; i < 4; i++) {
		__be32 t = a[i];

		a[i] = b[i];
		b[i] = t;
	}
}

/* Make the action undo what it did: swap every old value with its new. */
static __always_inline void pmtu6_invert(struct nat6_action *act)
{
	__be16 p = act->n.old_port;

	addr6_swap(act->old_addr, act->new_addr);
	act->n.old_port = act->n.new_port;
	act->n.new_port = p;
	addr6_swap(act->peer_old_addr, act->peer_new_addr);
}

/*
 * What the answer to the packet of s->act (TCP or UDP, as its sender sent
 * it) takes from it, in s->orig: pmtu_prepare() for IPv6. 0, or
 * SLUICE_ERR_REWRITE: not answered, dropped.
 */
static __always_inline int pmtu6_prepare(void *data, void *data_end,
					 struct lb6_scratch *s)
{
	const struct nat6_action *act = &s->act;
	struct reject6_orig *o = &s->orig;
	struct ethhdr *eth;
	struct ipv6hdr *ip6h;
	__u32 avail;

	if (act->n.l3_off != sizeof(struct ethhdr) ||
	    lb6_action_l3(data, data_end, act, &eth, &ip6h))
		return SLUICE_ERR_REWRITE;
	if (!reject6_answerable(eth, ip6h))
		return SLUICE_ERR_REWRITE;
	o->hdrs_len = act->n.l4_off - act->n.l3_off;
	avail = data_end - (void *)ip6h;
	o->quote_len = o->hdrs_len + SLUICE_REJECT_QUOTE_L4;
	if (o->quote_len > act->n.ip_len)
		o->quote_len = act->n.ip_len;
	if (o->quote_len > avail)
		o->quote_len = avail;
	if (o->quote_len > REJECT6_QUOTE_MAX)
		o->quote_len = REJECT6_QUOTE_MAX;
	/* The sender finds its socket by the quoted ports. */
	if (o->quote_len < o->hdrs_len + ICMP6_QUOTE_L4_MIN)
		return SLUICE_ERR_REWRITE;
	__builtin_memcpy(o->dmac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(o->smac, eth->h_source, ETH_ALEN);
	addr6_copy(o->client, IP6_SADDR(ip6h));
	addr6_copy(o->vip, IP6_DADDR(ip6h));
	return 0;
}

/*
 * Turn the port unreachable an entry point has just written (its ICMPv6
 * header right after the IPv6 header) into packet too big with MTU `mtu`:
 * the type, the code and the MTU, the checksum updated for them.
 * SLUICE_FRAG_NEEDED, or SLUICE_ERR_REWRITE.
 */
static __always_inline int pmtu6_packet_too_big(void *data, void *data_end,
						__u32 mtu)
{
	struct icmp6hdr *icmp = data + sizeof(struct ethhdr) + sizeof(struct ipv6hdr);
	__be16 *words = (__be16 *)icmp;
	__be16 old0;
	__u32 delta;

	if ((void *)(icmp + 1) > data_end)
		return SLUICE_ERR_REWRITE;
	/* Type and code share the first 16-bit word; the MTU is the 32 bits
	 * after the checksum, which were 0. */
	old0 = words[0];
	icmp->type = ICMP6_PKT_TOOBIG;
	icmp->code = 0;
	delta = csum_delta2(0, old0, words[0]);
	delta = csum_delta4(delta, 0, bpf_htonl(mtu));
	icmp->data = bpf_htonl(mtu);
	icmp->checksum = csum_apply(icmp->checksum, delta);
	return SLUICE_FRAG_NEEDED;
}

#endif /* SLUICE_PMTU6_H */
