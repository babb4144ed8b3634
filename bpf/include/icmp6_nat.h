/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * icmp6_nat.h: ICMPv6 errors about a flow, through the NAT both ways:
 * icmp_nat.h's twin (which says who sends what, and why the quote must be
 * translated). lb6_decide() hands every unfragmented ICMPv6 packet to
 * icmp6_decide(), the cursor at its ICMPv6 header, `l4_len` its bytes.
 *
 * Informational messages (type 128 and up: echo, MLD, neighbour and router
 * discovery) are never the balancer's: they pass here, before any map is
 * read, whoever they are from or to. Errors (types 1-4: destination
 * unreachable, packet too big, time exceeded, parameter problem) quote the
 * packet they are about from its IPv6 header on (RFC 4443 §3): about a
 * tracked flow, they are translated as icmp_nat.h translates ICMPv4 ones.
 * The quote's extension headers are walked, at most ICMP6_QUOTE_EXT_MAX
 * of them: a quoted later fragment has no ports and passes, as does a
 * quote of anything but TCP or UDP, or with fewer than 8 bytes of it.
 *
 * Checksums: IPv6 has no header checksum, so what changes is the ICMPv6
 * checksum and the quoted TCP or UDP checksum when the quote holds it. The
 * ICMPv6 checksum covers the IPv6 pseudo-header (RFC 4443 §2.3, unlike
 * ICMPv4's), so the error's own address rewritten (the backend's to the
 * VIP, the VIP to the backend) enters it too, beside the quote's changes.
 * All incremental; every change is summed into the checksum that covers
 * it, so that an skb's CHECKSUM_COMPLETE sum still holds after direct
 * writes (ICMPv6 checksums are never offloaded).
 *
 * An error about no tracked flow (or a hairpinned one) passes untouched;
 * conntrack6 is only read.
 */
#ifndef SLUICE_ICMP6_NAT_H
#define SLUICE_ICMP6_NAT_H

#include "lb6.h"

/* The quote's extension headers walked before its L4 header, and their
 * bytes at most: a quote is at most 1,232 bytes (the minimum MTU's), and
 * what sluice forwards carries none; more passes untranslated. */
#define ICMP6_QUOTE_EXT_MAX 2
#define ICMP6_QUOTE_EXT_BYTES 128
/* Bytes of the quoted L4 header that must be there: its ports. */
#define ICMP6_QUOTE_L4_MIN 8

/* The ICMPv6 errors icmp6_decide() may translate. */
static __always_inline int icmp6_is_error(__u8 type)
{
	return type >= ICMP6_DEST_UNREACH && type <= ICMP6_PARAMPROB;
}

/*
 * What an ICMPv6 error's action (SLUICE_NAT_ICMP) says, in struct
 * nat6_action (icmp_nat.h's fields, 16-byte addresses):
 *   n.l4_off          its ICMPv6 header; the quoted IPv6 header follows;
 *   quote_l4_off      the quoted TCP or UDP header;
 *   n.l4_check_off    the quoted L4 checksum, 0 if not quoted;
 *   n.rewrite_dst     1: the quote's destination and port are rewritten
 *                     (from the backend's side); 0: its source and port;
 *   old_addr, new_addr, n.old_port, n.new_port: that address and port;
 *   peer_old_addr, peer_new_addr: the error's own address rewritten, its
 *                     source (rewrite_dst) or destination; all zero for
 *                     none (an error from a router keeps its address).
 */
static __always_inline int icmp6_decide(struct cursor *c, void *data,
					void *data_end,
					const struct ipv6hdr *ip6h,
					__u32 l4_len, struct lb6_scratch *s,
					int lookup)
{
	struct nat6_action *act = &s->act;
	struct icmp6hdr *icmp = c->pos;
	struct ct6_key *k = &s->rk;
	struct ct6_value *ct;
	struct ipv6hdr *in;
	__be16 *ports;
	__u32 ext = 0, in_len, quote, check_end;
	__u8 nh;
	int i;

	if ((void *)(icmp + 1) > data_end || l4_len < sizeof(*icmp))
		return SLUICE_PASS;
	if (icmp->type >= ICMP6_INFO_MIN || !icmp6_is_error(icmp->type))
		return SLUICE_PASS;
	if (lookup)
		return SLUICE_PASS;
	in = (void *)(icmp + 1);
	if ((void *)(in + 1) > data_end || in->version != 6)
		return SLUICE_PASS;
	nh = in->nexthdr;
#pragma unroll
	for (i = 0; i <= ICMP6_QUOTE_EXT_MAX; i++) {
		__u8 *e = (void *)(in + 1) + (ext & 0xff);

		if (nh != SLUICE_NEXTHDR_HOP && nh != SLUICE_NEXTHDR_DEST &&
		    nh != SLUICE_NEXTHDR_ROUTING && nh != SLUICE_NEXTHDR_FRAGMENT)
			break;
		if (i == ICMP6_QUOTE_EXT_MAX || (void *)(e + 8) > data_end)
			return SLUICE_PASS;
		if (nh == SLUICE_NEXTHDR_FRAGMENT) {
			/* A later fragment's quote has no ports. */
			if (((struct ipv6_frag_hdr *)e)->frag_off & bpf_htons(0xfff8))
				return SLUICE_PASS;
			ext += 8;
		} else {
			ext += ((__u32)e[1] + 1) * 8;
		}
		if (ext > ICMP6_QUOTE_EXT_BYTES)
			return SLUICE_PASS;
		nh = e[0];
	}
	if (nh != IPPROTO_TCP && nh != IPPROTO_UDP)
		return SLUICE_PASS;
	in_len = sizeof(*in) + ext;
	quote = l4_len - sizeof(*icmp);
	ports = (void *)(in + 1) + (ext & 0xff);
	if (quote < in_len + ICMP6_QUOTE_L4_MIN ||
	    (void *)ports + ICMP6_QUOTE_L4_MIN > data_end)
		return SLUICE_PASS;

	/* The quoted packet's tuple, reversed: the entry of the packet its
	 * sender would send back. */
	__builtin_memset(k, 0, sizeof(*k));
	addr6_copy(k->saddr, IP6_DADDR(in));
	addr6_copy(k->daddr, IP6_SADDR(in));
	k->sport = ports[1];
	k->dport = ports[0];
	k->proto = nh;
	ct = bpf_map_lookup_elem(&conntrack6, k);
	if (!ct || !ct_live_at(ct->expires, lb_now_s()) ||
	    (ct->flags & SLUICE_CT_F_HAIRPIN))
		return SLUICE_PASS;

	act->n.l4_off = (void *)icmp - data;
	act->quote_l4_off = (void *)ports - data;
	act->n.udp = nh == IPPROTO_UDP;
	act->n.svc_id = ct->svc_id;
	act->n.backend_id = ct->backend_id;
	if (ct->flags & SLUICE_CT_F_REPLY) {
		/* About client -> backend: the reply entry backend -> client. */
		if (!ct6_reply_valid(ct, IP6_DADDR(in), ports[1]))
			return SLUICE_PASS;
		act->n.rewrite_dst = 1;
		addr6_copy(act->old_addr, IP6_DADDR(in));
		act->n.old_port = ports[1];
		if (addr6_eq(IP6_SADDR(ip6h), IP6_DADDR(in))) {
			addr6_copy(act->peer_old_addr, IP6_SADDR(ip6h));
			addr6_copy(act->peer_new_addr, ct->nat_addr);
		}
	} else {
		/* About VIP -> client: the forward entry client -> VIP. */
		if (!backend6_for_ct(ct))
			return SLUICE_PASS;
		act->n.to_vip = 1;
		act->n.rewrite_dst = 0;
		addr6_copy(act->old_addr, IP6_SADDR(in));
		act->n.old_port = ports[0];
		if (addr6_eq(IP6_DADDR(ip6h), IP6_SADDR(in))) {
			addr6_copy(act->peer_old_addr, IP6_DADDR(ip6h));
			addr6_copy(act->peer_new_addr, ct->nat_addr);
		}
	}
	addr6_copy(act->new_addr, ct->nat_addr);
	act->n.new_port = ct->nat_port;
	/* A quoted TCP checksum is 16 bytes into its header, a UDP one 6.
	 * One past the bytes tc pulled into the linear part is left as it
	 * is rather than the error dropped: no receiver checks it (the
	 * quote is cut). */
	check_end = act->n.udp ? sizeof(struct udphdr) :
				 offsetof(struct tcphdr, check) + 2;
	if (quote >= in_len + check_end && (void *)ports + check_end <= data_end)
		act->n.l4_check_off = act->quote_l4_off + check_end - 2;
	return SLUICE_NAT_ICMP;
}

/*
 * Apply icmp6_decide()'s action: `ip6h` is the error's IPv6 header (bounds
 * checked by the caller), the rest is found again from the action's
 * offsets. Direct writes, at XDP and at tc alike (see the top of the
 * file). 0, or SLUICE_ERR_REWRITE.
 */
static __always_inline int icmp6_rewrite(void *data, void *data_end,
					 struct ipv6hdr *ip6h,
					 const struct nat6_action *act)
{
	/* Masked for the verifier, as lb6_action_headers() masks: the ICMPv6
	 * header is at most 14 + 40 + 256 bytes in, the quoted L4 header
	 * 8 + 40 + ICMP6_QUOTE_EXT_BYTES more, its checksum 16 after it. */
	__u32 l4 = act->n.l4_off & 0x1ff;
	__u32 q = act->quote_l4_off & 0x3ff;
	__u32 ck = act->n.l4_check_off & 0x3ff;
	struct icmp6hdr *icmp = data + l4;
	struct ipv6hdr *in = (void *)(icmp + 1);
	__be16 *ports = data + q;
	__be32 *addr;
	__sum16 *l4_check;
	__u32 delta, icmp_delta;
	__u16 old_check;

	if (l4 != act->n.l4_off || q != act->quote_l4_off ||
	    ck != act->n.l4_check_off || (void *)(in + 1) > data_end ||
	    (void *)(ports + 2) > data_end)
		return SLUICE_ERR_REWRITE;

	/* The quoted address and port (no header checksum to follow). */
	addr = act->n.rewrite_dst ? IP6_DADDR(in) : IP6_SADDR(in);
	delta = csum_delta16(0, addr, act->new_addr);
	icmp_delta = csum_delta2(delta, act->n.old_port, act->n.new_port);
	addr6_copy(addr, act->new_addr);
	if (act->n.rewrite_dst)
		ports[1] = act->n.new_port;
	else
		ports[0] = act->n.new_port;
	/* The quoted L4 checksum (pseudo-header and port), if quoted; a
	 * quoted UDP checksum of 0 stays 0, as icmp_nat.h keeps it. */
	if (ck) {
		l4_check = data + ck;
		if ((void *)(l4_check + 1) > data_end)
			return SLUICE_ERR_REWRITE;
		old_check = *l4_check;
		if (!act->n.udp || old_check) {
			*l4_check = csum_apply(old_check,
					       csum_delta2(delta, act->n.old_port,
							   act->n.new_port));
			if (act->n.udp && *l4_check == 0)
				*l4_check = 0xffff;
			icmp_delta = csum_delta2(icmp_delta, old_check, *l4_check);
		}
	}
	/* The error's own address, which the pseudo-header covers. */
	if (act->peer_new_addr[0] | act->peer_new_addr[1] |
	    act->peer_new_addr[2] | act->peer_new_addr[3]) {
		addr = act->n.rewrite_dst ? IP6_SADDR(ip6h) : IP6_DADDR(ip6h);
		icmp_delta = csum_delta16(icmp_delta, addr, act->peer_new_addr);
		addr6_copy(addr, act->peer_new_addr);
	}
	icmp->checksum = csum_apply(icmp->checksum, icmp_delta);
	return 0;
}

#endif /* SLUICE_ICMP6_NAT_H */
