/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * parsing.h: header parsing with a cursor. Each parse_* checks its own bounds
 * immediately before it dereferences (the verifier tracks the check that
 * dominates the access) and returns the next protocol, or a negative
 * SLUICE_ERR_* code.
 */
#ifndef SLUICE_PARSING_H
#define SLUICE_PARSING_H

#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include "errors.h"
#include "sluice_shared.h"

struct cursor {
	void *pos;
};

static __always_inline int parse_ethhdr(struct cursor *c, void *data_end,
					struct ethhdr **eth)
{
	struct ethhdr *h = c->pos;

	if ((void *)(h + 1) > data_end)
		return SLUICE_ERR_TRUNCATED;
	c->pos = h + 1;
	*eth = h;
	return h->h_proto; /* network order */
}

/*
 * IPv4 header, options included. Returns the L4 protocol, and in *l4_len
 * the bytes the header's total length leaves for L4. The lengths are
 * checked as the kernel checks them (ip_rcv_core): a total length of at
 * least the header's, and no more than the `l3_avail` bytes the packet
 * holds from the IPv4 header on (a frame may hold more: Ethernet padding,
 * which the total length leaves out). A redirected packet never meets the
 * kernel's own checks, so these are the only ones it gets.
 */
static __always_inline int parse_iphdr(struct cursor *c, void *data_end,
				       __u32 l3_avail, struct iphdr **iph,
				       __u32 *l4_len)
{
	struct iphdr *h = c->pos;
	__u32 hdrsize, tot_len;

	if ((void *)(h + 1) > data_end)
		return SLUICE_ERR_TRUNCATED;
	if (h->version != 4 || h->ihl < 5)
		return SLUICE_ERR_MALFORMED;
	/* ihl is 4 bits: the mask keeps the verifier's range at 0..60. */
	hdrsize = (h->ihl & 0xf) * 4;
	if (c->pos + hdrsize > data_end)
		return SLUICE_ERR_TRUNCATED;
	tot_len = bpf_ntohs(h->tot_len);
	if (tot_len < hdrsize)
		return SLUICE_ERR_MALFORMED;
	if (tot_len > l3_avail)
		return SLUICE_ERR_TRUNCATED;
	c->pos += hdrsize;
	*iph = h;
	*l4_len = tot_len - hdrsize;
	return h->protocol;
}

/* IPv6 extension headers the walk steps over (RFC 8200 §4), and ICMPv6. */
#define SLUICE_NEXTHDR_HOP 0
#define SLUICE_NEXTHDR_ROUTING 43
#define SLUICE_NEXTHDR_FRAGMENT 44
#define SLUICE_NEXTHDR_ICMP6 58
#define SLUICE_NEXTHDR_DEST 60

/* Not a protocol number (those are bytes): parse_ipv6hdr()'s answer for a
 * routing header with segments left, whose destination is a waypoint and
 * not the packet's final one: not the balancer's to judge. */
#define SLUICE_IPV6_WAYPOINT 0x100

/* The fragment header (RFC 8200 §4.5); linux/ipv6.h has no UAPI one. */
struct ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off; /* offset in 8-byte units << 3, 2 reserved bits, M */
	__be32 identification;
};

/* What the walk found in a fragment header. `present` is set only for a
 * real fragment: an atomic one (offset 0, M 0, RFC 6946) is an ordinary
 * packet and leaves it 0. */
struct ipv6_frag_info {
	__be32 id;     /* identification, as the packet carries it */
	__u16 offset;  /* in bytes, host order */
	__u8 more;     /* M */
	__u8 present;
};

/*
 * IPv6 fixed header, then the extension headers up to the upper-layer one
 * (RFC 8200 §4.1's order): hop-by-hop options first only, destination
 * options, routing, fragment. Returns the upper-layer protocol (anything
 * else ends the walk: AH, ESP, no next header are the caller's to pass),
 * SLUICE_IPV6_WAYPOINT for a routing header with segments left, or an
 * error; in *l4_len the bytes payload_len leaves past the walked headers,
 * and the cursor there. A later fragment (offset != 0) has no upper-layer
 * header: the walk stops at its fragment header, `frag` says so, and the
 * protocol returned is its next header.
 *
 * Lengths are checked as ipv6_rcv() checks them: payload_len within the
 * `l3_avail` bytes the packet holds past the fixed header's start (more is
 * Ethernet padding), and the extension headers within payload_len. A
 * payload_len of 0 is a jumbogram's (RFC 2675), which the balancer does
 * not take: malformed. At most SLUICE_IPV6_MAX_EXT headers of at most
 * SLUICE_IPV6_EXT_MAX_BYTES in all; more is malformed too. The loop is
 * unrolled (the bound is the constant) and the cursor is the fixed
 * header's end plus a masked total, a range the verifier proves.
 */
static __always_inline int parse_ipv6hdr(struct cursor *c, void *data_end,
					 __u32 l3_avail, struct ipv6hdr **ip6h,
					 __u32 *l4_len,
					 struct ipv6_frag_info *frag)
{
	struct ipv6hdr *h = c->pos;
	void *start = h + 1;
	__u32 payload_len, total = 0, len;
	__u8 nh;
	int i;

	if ((void *)(h + 1) > data_end)
		return SLUICE_ERR_TRUNCATED;
	if (h->version != 6)
		return SLUICE_ERR_MALFORMED;
	payload_len = bpf_ntohs(h->payload_len);
	if (!payload_len)
		return SLUICE_ERR_MALFORMED;
	if (l3_avail < sizeof(*h) || payload_len > l3_avail - sizeof(*h))
		return SLUICE_ERR_TRUNCATED;
	*ip6h = h;
	nh = h->nexthdr;
#pragma unroll
	for (i = 0; i <= SLUICE_IPV6_MAX_EXT; i++) {
		__u8 *e = start + (total & 0x1ff);

		if (nh != SLUICE_NEXTHDR_HOP && nh != SLUICE_NEXTHDR_DEST &&
		    nh != SLUICE_NEXTHDR_ROUTING && nh != SLUICE_NEXTHDR_FRAGMENT)
			break;
		/* One more than the walk takes, or hop-by-hop past the first. */
		if (i == SLUICE_IPV6_MAX_EXT ||
		    (nh == SLUICE_NEXTHDR_HOP && i != 0))
			return SLUICE_ERR_MALFORMED;
		if ((void *)(e + 8) > data_end)
			return SLUICE_ERR_TRUNCATED;
		len = nh == SLUICE_NEXTHDR_FRAGMENT ? 8 : ((__u32)e[1] + 1) * 8;
		total += len;
		if (total > SLUICE_IPV6_EXT_MAX_BYTES || total > payload_len)
			return SLUICE_ERR_MALFORMED;
		if (nh == SLUICE_NEXTHDR_ROUTING && e[3] != 0)
			return SLUICE_IPV6_WAYPOINT;
		if (nh == SLUICE_NEXTHDR_FRAGMENT) {
			struct ipv6_frag_hdr *f = (void *)e;
			__u16 off = bpf_ntohs(f->frag_off);

			frag->offset = off & 0xfff8;
			frag->more = off & 1;
			frag->id = f->identification;
			frag->present = frag->offset || frag->more;
			if (frag->offset) {
				nh = f->nexthdr;
				break;
			}
		}
		nh = e[0];
	}
	c->pos = start + (total & 0x1ff);
	*l4_len = payload_len - total;
	return nh;
}

/* TCP header: its data offset at least the fixed header, and within the
 * `l4_len` bytes the IPv4 total length gives it. */
static __always_inline int parse_tcphdr(struct cursor *c, void *data_end,
					__u32 l4_len, struct tcphdr **tcph)
{
	struct tcphdr *h = c->pos;

	if ((void *)(h + 1) > data_end)
		return SLUICE_ERR_TRUNCATED;
	if (h->doff < 5 || (__u32)h->doff * 4 > l4_len)
		return SLUICE_ERR_MALFORMED;
	*tcph = h;
	return 0;
}

/* UDP header: within the `l4_len` bytes the IPv4 total length gives it,
 * its length at least the header's and, but in a datagram's first
 * fragment (`first_frag`: its length is the whole datagram's), within
 * `l4_len` too (the kernel's __udp4_lib_rcv; it trims what lies beyond). */
static __always_inline int parse_udphdr(struct cursor *c, void *data_end,
					__u32 l4_len, int first_frag,
					struct udphdr **udph)
{
	struct udphdr *h = c->pos;
	__u32 len;

	if ((void *)(h + 1) > data_end)
		return SLUICE_ERR_TRUNCATED;
	len = bpf_ntohs(h->len);
	if (l4_len < sizeof(*h) || len < sizeof(*h) || (!first_frag && len > l4_len))
		return SLUICE_ERR_MALFORMED;
	*udph = h;
	return 0;
}

#endif /* SLUICE_PARSING_H */
