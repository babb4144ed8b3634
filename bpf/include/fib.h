/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * fib.h: forwarding after the rewrite. Ask the kernel's FIB (routes and
 * neighbours of the namespace the packet arrived in) for the next hop; on a
 * full answer, rewrite the Ethernet header and decrement the TTL as a router
 * would. Anything less (no route, no neighbour entry yet, TTL expiring) and
 * the packet goes to the stack, which knows how to resolve or answer it.
 */
#ifndef SLUICE_FIB_H
#define SLUICE_FIB_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include "csum.h"
#include "lb.h"

#ifndef AF_INET
#define AF_INET 2
#endif

struct fib_out {
	__u32 ifindex;
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
};

/* ctx is an xdp_md or a __sk_buff: bpf_fib_lookup takes either. */
static __always_inline int fib_next_hop(void *ctx, __u32 ifindex,
					const struct nat_action *act,
					struct fib_out *out)
{
	struct bpf_fib_lookup p = {};
	int rc;

	p.family = AF_INET;
	p.tos = act->tos;
	p.l4_protocol = act->proto;
	p.tot_len = act->ip_len;
	p.ipv4_src = act->fib_src;
	p.ipv4_dst = act->fib_dst;
	p.ifindex = ifindex;
	rc = bpf_fib_lookup(ctx, &p, sizeof(p), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return -1;
	out->ifindex = p.ifindex;
	__builtin_memcpy(out->dmac, p.dmac, ETH_ALEN);
	__builtin_memcpy(out->smac, p.smac, ETH_ALEN);
	return 0;
}

/* Rewrite MACs and decrement the TTL. Returns -1 (and changes nothing) if
 * the TTL would expire: the stack then sends ICMP time exceeded. */
static __always_inline int fib_apply_l2(void *data, void *data_end,
					__u32 l3_off, const struct fib_out *out)
{
	struct ethhdr *eth = data;
	struct iphdr *iph;

	if (l3_off != sizeof(struct ethhdr))
		return -1;
	iph = data + sizeof(struct ethhdr);
	if ((void *)(iph + 1) > data_end)
		return -1;
	if (iph->ttl <= 1)
		return -1;
	/* TTL is the high byte of the 16-bit word it shares with protocol:
	 * in memory order, decrementing it subtracts 0x0100 in network order. */
	iph->check = csum_apply(iph->check,
				csum_delta2(0, bpf_htons((__u16)iph->ttl << 8),
					    bpf_htons((__u16)(iph->ttl - 1) << 8)));
	iph->ttl--;
	__builtin_memcpy(eth->h_dest, out->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, out->smac, ETH_ALEN);
	return 0;
}

#endif /* SLUICE_FIB_H */
