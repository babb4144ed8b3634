/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * icmp_nat.h: ICMP errors about a flow, through the NAT both ways.
 *
 * An ICMP error (destination unreachable, fragmentation needed among them,
 * time exceeded, parameter problem) quotes the IP header and the first
 * bytes of the packet it is about. A packet of a balanced flow was
 * rewritten on its way, so its error quotes addresses its receiver never
 * used:
 *
 *   - from the backend's side (the backend, or a router on its way),
 *     about client -> backend: its quote reversed is the flow's reply
 *     entry's key. The quote's destination and port become the VIP's, and
 *     the error's own source, if it is the backend, becomes the VIP: the
 *     client's kernel finds its socket (client -> VIP) and, for
 *     fragmentation needed, lowers its path MTU to the VIP.
 *   - from the client's side, about a reply VIP -> client: its quote
 *     reversed is the forward entry's key. The quote's source and port
 *     become the backend's, and the error's destination, the VIP, becomes
 *     the backend, which finds its socket (backend -> client).
 *
 * Checksums as Linux's NAT keeps them (nf_nat_icmp_reply_translation with
 * the protocols' manip_pkt): the outer IP header's, the quoted IP header's,
 * the quoted TCP or UDP checksum when the quote holds it (a UDP checksum of
 * 0 stays 0), and the ICMP checksum over the changed quote, all updated
 * incrementally. A receiver never checks the quoted L4 checksum (the
 * quote is cut); it is kept right anyway, as Linux does, for two words.
 *
 * An error about no tracked flow (or a hairpinned one) passes untouched;
 * an error is never answered (RFC 1122). Conntrack is only read: an error
 * keeps no flow alive.
 *
 * Included by lb.h, before lb_decide(), whose branch for protocols other
 * than TCP and UDP calls icmp4_decide(); each entry point applies the
 * action with icmp4_rewrite().
 */
#ifndef SLUICE_ICMP_NAT_H
#define SLUICE_ICMP_NAT_H

#include <linux/bpf.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <stddef.h>

#include "maps.h"
#include "csum.h"
#include "errors.h"
#include "icmp.h"
#include "parsing.h"
#include "ct.h"

/* Bytes of the quoted packet's L4 header an error must hold: its ports
 * (RFC 792 guarantees 8). */
#define ICMP4_QUOTE_L4_MIN 8

/*
 * What an ICMP error's action (SLUICE_NAT_ICMP) says, in struct nat_action:
 *   l3_off, ip_len   the error's own IPv4 header, as for any packet;
 *   l4_off           its ICMP header; the quoted IPv4 header follows it;
 *   rewrite_dst      1: the quote's destination and port are rewritten
 *                    (from the backend's side); 0: its source and port;
 *   old_addr, new_addr, old_port, new_port: that address and port;
 *   udp              the quoted packet is UDP;
 *   l4_check_off     the quoted L4 checksum's offset, 0 if not quoted;
 *   peer_old_addr, peer_new_addr: the error's own address rewritten, its
 *                    source (rewrite_dst) or destination; 0 for none;
 *   svc_id, backend_id: the flow's.
 */

/*
 * lb_decide()'s hook for a packet that is neither TCP nor UDP, `c` at its
 * L4 header, `l4_len` bytes of it by its total length: an ICMP error about
 * a tracked flow gets an action, anything else passes.
 */
static __always_inline int icmp4_decide(struct cursor *c, void *data,
					void *data_end,
					const struct iphdr *iph, __u32 l4_len,
					struct nat_action *act, int lookup)
{
	struct icmp4hdr *icmp = c->pos;
	struct iphdr *in;
	__be16 *ports;
	struct ct_key k = {};
	struct ct_value *ct;
	struct backend_value *be;
	__u32 in_len, quote;

	if (lookup || iph->protocol != IPPROTO_ICMP)
		return SLUICE_PASS;
	if ((void *)(icmp + 1) > data_end || l4_len < sizeof(*icmp))
		return SLUICE_PASS;
	if (icmp->type != ICMP4_DEST_UNREACH && icmp->type != ICMP4_TIME_EXCEEDED &&
	    icmp->type != ICMP4_PARAMETERPROB)
		return SLUICE_PASS;
	in = (void *)(icmp + 1);
	if ((void *)(in + 1) > data_end || in->version != 4 || in->ihl < 5)
		return SLUICE_PASS;
	/* Ports are in a datagram's first fragment only. */
	if (in->frag_off & bpf_htons(SLUICE_IP_OFFSET))
		return SLUICE_PASS;
	if (in->protocol != IPPROTO_TCP && in->protocol != IPPROTO_UDP)
		return SLUICE_PASS;
	in_len = (in->ihl & 0xf) * 4;
	quote = l4_len - sizeof(*icmp);
	ports = (void *)in + in_len;
	if (quote < in_len + ICMP4_QUOTE_L4_MIN ||
	    (void *)ports + ICMP4_QUOTE_L4_MIN > data_end)
		return SLUICE_PASS;

	/* The quoted packet's tuple, reversed: the entry of the packet its
	 * sender would send back. */
	k.saddr = in->daddr;
	k.daddr = in->saddr;
	k.sport = ports[1];
	k.dport = ports[0];
	k.proto = in->protocol;
	ct = bpf_map_lookup_elem(&conntrack, &k);
	if (!ct || !ct_live(ct, lb_now_s()) || (ct->flags & SLUICE_CT_F_HAIRPIN))
		return SLUICE_PASS;

	act->l4_off = (void *)icmp - data;
	act->udp = in->protocol == IPPROTO_UDP;
	act->svc_id = ct->svc_id;
	act->backend_id = ct->backend_id;
	if (ct->flags & SLUICE_CT_F_REPLY) {
		/* About client -> backend: the reply entry backend -> client. */
		if (!ct_reply_valid(ct, in->daddr, ports[1]))
			return SLUICE_PASS;
		act->rewrite_dst = 1;
		act->old_addr = in->daddr;
		act->old_port = ports[1];
		if (iph->saddr == in->daddr) {
			act->peer_old_addr = iph->saddr;
			act->peer_new_addr = ct->nat_addr;
		}
	} else {
		/* About VIP -> client: the forward entry client -> VIP. */
		be = backend_for_ct(ct);
		if (!be)
			return SLUICE_PASS;
		act->to_vip = 1;
		act->rewrite_dst = 0;
		act->old_addr = in->saddr;
		act->old_port = ports[0];
		if (iph->daddr == in->saddr) {
			act->peer_old_addr = iph->daddr;
			act->peer_new_addr = ct->nat_addr;
		}
	}
	act->new_addr = ct->nat_addr;
	act->new_port = ct->nat_port;
	/* A quoted TCP checksum is 16 bytes into its header, a UDP one 6. */
	if (quote >= in_len + (act->udp ? sizeof(struct udphdr) :
				offsetof(struct tcphdr, check) + 2))
		act->l4_check_off = act->l4_off + sizeof(*icmp) + in_len +
				    (act->udp ? offsetof(struct udphdr, check) :
						offsetof(struct tcphdr, check));
	return SLUICE_NAT_ICMP;
}

/*
 * Apply icmp4_decide()'s action: `iph` is the error's IPv4 header (bounds
 * checked by the caller), the rest is found again from the action's
 * offsets. Direct writes, at XDP and at tc alike: ICMP checksums are never
 * offloaded, and every change is summed into the checksum that covers it,
 * so an skb's CHECKSUM_COMPLETE sum still holds. 0, or SLUICE_ERR_REWRITE.
 */
static __always_inline int icmp4_rewrite(void *data, void *data_end,
					 struct iphdr *iph,
					 const struct nat_action *act)
{
	/* Offsets masked as lb_action_headers() masks them: the ICMP header
	 * is at most 14 + 60 bytes in, the quoted L4 checksum 60 + 16 more. */
	__u32 l4 = act->l4_off & 0x7f;
	__u32 ck = act->l4_check_off & 0xff;
	struct icmp4hdr *icmp = data + l4;
	struct iphdr *in = (void *)(icmp + 1);
	__be16 *ports;
	__sum16 *l4_check;
	__be32 *addr;
	__u32 delta, icmp_delta;
	__u16 old_check;

	if (l4 != act->l4_off || ck != act->l4_check_off ||
	    (void *)(in + 1) > data_end)
		return SLUICE_ERR_REWRITE;
	ports = (void *)in + (in->ihl & 0xf) * 4;
	if ((void *)(ports + 2) > data_end)
		return SLUICE_ERR_REWRITE;

	/* The quoted header: the address, and its checksum. */
	addr = act->rewrite_dst ? &in->daddr : &in->saddr;
	delta = csum_delta4(0, act->old_addr, act->new_addr);
	icmp_delta = delta;
	*addr = act->new_addr;
	old_check = in->check;
	in->check = csum_apply(in->check, delta);
	icmp_delta = csum_delta2(icmp_delta, old_check, in->check);
	/* Its port, and its L4 checksum (pseudo-header and port) if quoted. */
	if (act->rewrite_dst)
		ports[1] = act->new_port;
	else
		ports[0] = act->new_port;
	icmp_delta = csum_delta2(icmp_delta, act->old_port, act->new_port);
	if (ck) {
		l4_check = data + ck;
		if ((void *)(l4_check + 1) > data_end)
			return SLUICE_ERR_REWRITE;
		old_check = *l4_check;
		if (!act->udp || old_check) {
			*l4_check = csum_apply(old_check,
					       csum_delta2(delta, act->old_port,
							   act->new_port));
			if (act->udp && *l4_check == 0)
				*l4_check = 0xffff;
			icmp_delta = csum_delta2(icmp_delta, old_check, *l4_check);
		}
	}
	icmp->checksum = csum_apply(icmp->checksum, icmp_delta);

	/* The error's own header: its source or destination. */
	if (act->peer_new_addr) {
		addr = act->rewrite_dst ? &iph->saddr : &iph->daddr;
		iph->check = csum_apply(iph->check,
					csum_delta4(0, *addr, act->peer_new_addr));
		*addr = act->peer_new_addr;
	}
	return 0;
}

#endif /* SLUICE_ICMP_NAT_H */
