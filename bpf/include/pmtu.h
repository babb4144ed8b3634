/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * pmtu.h: path MTU discovery through the load balancer. A packet sluice
 * forwards by the FIB leaves without the stack's MTU check; when the
 * lookup says the rewritten packet is longer than the next hop's MTU and
 * its sender forbade fragmenting it (DF), sluice answers as a router does
 * (RFC 1191): ICMP destination unreachable, fragmentation needed, with the
 * next hop's MTU. Unlike the stack's own answer (which would quote the
 * packet as sluice rewrote it, naming a backend the client never talked
 * to), it quotes the packet as its sender sent it: the rewrite is undone
 * first. It comes from the packet's destination as sent (the VIP to a
 * client, the client to a backend), as reject.h's answers do, and out of
 * the same token bucket (reject_take).
 *
 * A packet that may be fragmented (no DF) is handed to the stack, which
 * fragments it; one that cannot be answered (to or from a group address,
 * its quote short) is dropped, as the stack would drop it.
 */
#ifndef SLUICE_PMTU_H
#define SLUICE_PMTU_H

#include "lb.h"
#include "reject.h"
#include "icmp.h"

/* Make the action undo what it did: swap every old value with its new. */
static __always_inline void pmtu_invert(struct nat_action *act)
{
	__be32 a = act->old_addr;
	__be16 p = act->old_port;

	act->old_addr = act->new_addr;
	act->new_addr = a;
	act->old_port = act->new_port;
	act->new_port = p;
	a = act->peer_old_addr;
	act->peer_old_addr = act->peer_new_addr;
	act->peer_new_addr = a;
}

/*
 * What the answer to the packet of `act` (TCP or UDP, as its sender sent
 * it) takes from it: reject4_prepare()'s checks for any such packet, its
 * quote the IP header and up to SLUICE_REJECT_QUOTE_L4 bytes after it.
 * 0, or SLUICE_ERR_REWRITE: not answered, dropped.
 */
static __always_inline int pmtu_prepare(void *data, void *data_end,
					const struct nat_action *act,
					struct reject4_orig *o)
{
	struct ethhdr *eth;
	struct iphdr *iph;
	__u32 ip_len, avail;

	if (act->l3_off != sizeof(struct ethhdr) ||
	    lb_action_l3(data, data_end, act, &eth, &iph))
		return SLUICE_ERR_REWRITE;
	if (!reject4_answerable(eth, iph))
		return SLUICE_ERR_REWRITE;
	o->ihl_len = (iph->ihl & 0xf) * 4;
	ip_len = bpf_ntohs(iph->tot_len);
	avail = data_end - (void *)iph;
	o->quote_len = o->ihl_len + SLUICE_REJECT_QUOTE_L4;
	if (o->quote_len > ip_len)
		o->quote_len = ip_len;
	if (o->quote_len > avail)
		o->quote_len = avail;
	if (o->quote_len < o->ihl_len + ICMP4_QUOTE_L4_MIN)
		return SLUICE_ERR_REWRITE;
	__builtin_memcpy(o->dmac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(o->smac, eth->h_source, ETH_ALEN);
	o->client = iph->saddr;
	o->vip = iph->daddr;
	return 0;
}

/*
 * Turn the port unreachable an entry point has just written (its ICMP
 * header right after an IPv4 header without options) into fragmentation
 * needed with next-hop MTU `mtu`: the code and the MTU, the checksum
 * updated for both. SLUICE_FRAG_NEEDED, or SLUICE_ERR_REWRITE.
 */
static __always_inline int pmtu_frag_needed(void *data, void *data_end,
					    __u16 mtu)
{
	struct icmp4hdr *icmp = data + sizeof(struct ethhdr) + sizeof(struct iphdr);
	__be16 *words = (__be16 *)icmp;
	__be16 old0;
	__u32 delta;

	if ((void *)(icmp + 1) > data_end)
		return SLUICE_ERR_REWRITE;
	/* Type and code share the first 16-bit word; the MTU is the low
	 * half of the 32 bits after the checksum, which were 0. */
	old0 = words[0];
	icmp->code = ICMP4_FRAG_NEEDED;
	delta = csum_delta2(0, old0, words[0]);
	delta = csum_delta2(delta, 0, bpf_htons(mtu));
	icmp->unused = bpf_htonl(mtu);
	icmp->checksum = csum_apply(icmp->checksum, delta);
	return SLUICE_FRAG_NEEDED;
}

#endif /* SLUICE_PMTU_H */
