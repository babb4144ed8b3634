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
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include "errors.h"

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
