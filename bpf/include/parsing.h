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

/* IPv4 header, options included. Returns the L4 protocol. */
static __always_inline int parse_iphdr(struct cursor *c, void *data_end,
				       struct iphdr **iph)
{
	struct iphdr *h = c->pos;
	__u32 hdrsize;

	if ((void *)(h + 1) > data_end)
		return SLUICE_ERR_TRUNCATED;
	if (h->version != 4 || h->ihl < 5)
		return SLUICE_ERR_MALFORMED;
	/* ihl is 4 bits: the mask keeps the verifier's range at 0..60. */
	hdrsize = (h->ihl & 0xf) * 4;
	if (c->pos + hdrsize > data_end)
		return SLUICE_ERR_TRUNCATED;
	c->pos += hdrsize;
	*iph = h;
	return h->protocol;
}

static __always_inline int parse_tcphdr(struct cursor *c, void *data_end,
					struct tcphdr **tcph)
{
	struct tcphdr *h = c->pos;

	if ((void *)(h + 1) > data_end)
		return SLUICE_ERR_TRUNCATED;
	if (h->doff < 5)
		return SLUICE_ERR_MALFORMED;
	*tcph = h;
	return 0;
}

static __always_inline int parse_udphdr(struct cursor *c, void *data_end,
					struct udphdr **udph)
{
	struct udphdr *h = c->pos;

	if ((void *)(h + 1) > data_end)
		return SLUICE_ERR_TRUNCATED;
	*udph = h;
	return 0;
}

#endif /* SLUICE_PARSING_H */
