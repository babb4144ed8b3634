/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * reject6.h: reject.h's answers for IPv6. A SYN to a service without a
 * usable backend gets a RST|ACK from the VIP and service port (IPv6 + TCP
 * without options, hop limit 64), a UDP datagram an ICMPv6 destination
 * unreachable, port unreachable (type 1, code 4), quoting the datagram from
 * its IPv6 header: its extension headers and SLUICE_REJECT_QUOTE_L4 bytes
 * of what follows, at most REJECT6_QUOTE_MAX bytes (RFC 4443 allows up to
 * the minimum MTU; reject.h's buffer size is enough to find the socket).
 * The same token bucket (reject_take) and counters as IPv4; never sent to
 * a group MAC nor to or from an address reject6_answerable() refuses.
 *
 * The answer's TCP and ICMPv6 checksums are summed from scratch, both with
 * the IPv6 pseudo-header (RFC 8200 §8.1; ICMPv6 has one, RFC 4443 §2.3,
 * unlike ICMPv4). Everything is built in the caller's struct lb6_scratch.
 */
#ifndef SLUICE_REJECT6_H
#define SLUICE_REJECT6_H

#include "lb6.h"
#include "reject.h"

#define REJECT6_RST_LEN (sizeof(struct ethhdr) + sizeof(struct ipv6hdr) + sizeof(struct tcphdr))
#define REJECT6_ICMP_LEN (sizeof(struct ethhdr) + sizeof(struct ipv6hdr) + sizeof(struct icmp6hdr))
#define REJECT6_HOP_LIMIT 64

_Static_assert(sizeof(((struct lb6_scratch *)0)->quote) == REJECT6_QUOTE_MAX &&
	       (REJECT6_QUOTE_MAX & (REJECT6_QUOTE_MAX - 1)) == 0,
	       "the quote buffer's size is a mask");

/* The headers of a RST answering a SYN. */
struct reject6_rst {
	struct ipv6hdr ip;
	struct tcphdr tcp;
};

/* The headers of an ICMPv6 port unreachable; the quote follows them. */
struct reject6_unreach {
	struct ipv6hdr ip;
	struct icmp6hdr icmp;
};

_Static_assert(sizeof(struct reject6_rst) <= sizeof(((struct lb6_scratch *)0)->answer) &&
	       sizeof(struct reject6_unreach) <= sizeof(((struct lb6_scratch *)0)->answer),
	       "the answers' headers fit");

/* Whether a packet may be answered: reject4_answerable() for IPv6. */
static __always_inline int reject6_answerable(const struct ethhdr *eth,
					      const struct ipv6hdr *ip6h)
{
	return !((eth->h_dest[0] | eth->h_source[0]) & 1) &&
	       !addr6_unforwardable(IP6_SADDR(ip6h)) &&
	       !addr6_unforwardable(IP6_DADDR(ip6h));
}

/* The quote's length, bounded for the verifier (reject4_quote_len). */
static __always_inline __u32 reject6_quote_len(const struct reject6_orig *o)
{
	__u32 len = o->quote_len;

	asm volatile("" : "+r"(len));
	return ((len - 1) & (REJECT6_QUOTE_MAX - 1)) + 1;
}

/* reject4_prepare() for IPv6: whether the packet of `act` may be answered
 * and what the answer takes from it, in s->orig. 0, or
 * SLUICE_ERR_NO_BACKEND: not answered, dropped. */
static __always_inline int reject6_prepare(void *data, void *data_end,
					   struct lb6_scratch *s)
{
	const struct nat6_action *act = &s->act;
	struct reject6_orig *o = &s->orig;
	struct ethhdr *eth;
	struct ipv6hdr *ip6h;
	__be16 *ports;
	__sum16 *check;
	__u32 ip_len, avail, l4_min;

	if (act->n.l3_off != sizeof(struct ethhdr) ||
	    lb6_action_headers(data, data_end, act, &eth, &ip6h, &ports, &check))
		return SLUICE_ERR_NO_BACKEND;
	if (!reject6_answerable(eth, ip6h))
		return SLUICE_ERR_NO_BACKEND;

	o->hdrs_len = act->n.l4_off - act->n.l3_off;
	ip_len = act->n.ip_len;
	l4_min = act->n.udp ? sizeof(struct udphdr) : sizeof(struct tcphdr);
	if (ip_len < o->hdrs_len + l4_min)
		return SLUICE_ERR_NO_BACKEND;
	if (act->n.udp) {
		avail = data_end - (void *)ip6h;
		o->quote_len = o->hdrs_len + SLUICE_REJECT_QUOTE_L4;
		if (o->quote_len > ip_len)
			o->quote_len = ip_len;
		if (o->quote_len > avail)
			o->quote_len = avail;
		if (o->quote_len > REJECT6_QUOTE_MAX)
			o->quote_len = REJECT6_QUOTE_MAX;
		/* The sender finds its socket by the quoted UDP header. */
		if (o->quote_len < o->hdrs_len + sizeof(struct udphdr))
			return SLUICE_ERR_NO_BACKEND;
	} else {
		struct tcphdr *th = (struct tcphdr *)ports;
		__u32 hdr_len = th->doff * 4;

		if (!th->syn || th->ack || th->rst)
			return SLUICE_ERR_NO_BACKEND;
		if (ip_len < o->hdrs_len + hdr_len)
			return SLUICE_ERR_NO_BACKEND;
		o->ack_seq = bpf_htonl(bpf_ntohl(th->seq) + 1 + th->fin +
				       (ip_len - o->hdrs_len - hdr_len));
		o->sport = th->source;
		o->dport = th->dest;
	}
	__builtin_memcpy(o->dmac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(o->smac, eth->h_source, ETH_ALEN);
	addr6_copy(o->client, IP6_SADDR(ip6h));
	addr6_copy(o->vip, IP6_DADDR(ip6h));
	return 0;
}

static __always_inline void reject6_eth(struct ethhdr *eth,
					const struct reject6_orig *o)
{
	__builtin_memcpy(eth->h_dest, o->smac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, o->dmac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
}

/* An answer's IPv6 header, from the VIP to the client: traffic class and
 * flow label 0. */
static __always_inline void reject6_iphdr(struct ipv6hdr *ip,
					  const struct reject6_orig *o,
					  __u8 nexthdr, __u16 payload_len)
{
	__builtin_memset(ip, 0, sizeof(*ip));
	ip->version = 6;
	ip->payload_len = bpf_htons(payload_len);
	ip->nexthdr = nexthdr;
	ip->hop_limit = REJECT6_HOP_LIMIT;
	addr6_copy(IP6_SADDR(ip), o->vip);
	addr6_copy(IP6_DADDR(ip), o->client);
}

/* The RST's headers, with the TCP checksum, in s->answer. */
static __always_inline struct reject6_rst *reject6_tcp_rst(struct lb6_scratch *s)
{
	struct reject6_rst *r = (void *)s->answer;
	const struct reject6_orig *o = &s->orig;

	reject6_iphdr(&r->ip, o, IPPROTO_TCP, sizeof(r->tcp));
	__builtin_memset(&r->tcp, 0, sizeof(r->tcp));
	r->tcp.source = o->dport;
	r->tcp.dest = o->sport;
	r->tcp.ack_seq = o->ack_seq;
	r->tcp.doff = sizeof(r->tcp) / 4;
	r->tcp.rst = 1;
	r->tcp.ack = 1;
	r->tcp.check = csum_finish(csum_sum(&r->tcp, sizeof(r->tcp),
					    csum_pseudo6(o->vip, o->client,
							 IPPROTO_TCP,
							 sizeof(r->tcp))));
	return r;
}

/* The port unreachable's headers, with the ICMPv6 checksum over them, the
 * quote (s->quote, `quote_len` bytes, zero past them) and the
 * pseudo-header, in s->answer. */
static __always_inline struct reject6_unreach *
reject6_icmp_unreach(struct lb6_scratch *s, __u32 quote_len)
{
	struct reject6_unreach *u = (void *)s->answer;
	const struct reject6_orig *o = &s->orig;
	__u32 len = sizeof(u->icmp) + quote_len;

	reject6_iphdr(&u->ip, o, SLUICE_NEXTHDR_ICMP6, len);
	__builtin_memset(&u->icmp, 0, sizeof(u->icmp));
	u->icmp.type = ICMP6_DEST_UNREACH;
	u->icmp.code = ICMP6_PORT_UNREACH;
	u->icmp.checksum =
		csum_finish(csum_sum(&u->icmp, sizeof(u->icmp),
				     csum_sum(s->quote, sizeof(s->quote),
					      csum_pseudo6(o->vip, o->client,
							   SLUICE_NEXTHDR_ICMP6,
							   len))));
	return u;
}

#endif /* SLUICE_REJECT6_H */
