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
#include <bpf/bpf_endian.h>
#include "csum.h"

#ifndef AF_INET
#define AF_INET 2
#endif

struct fib_out {
	__u32 ifindex;
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
	__u16 mtu;  /* BPF_FIB_LKUP_RET_FRAG_NEEDED: the next hop's MTU */
};

/* The next hop of a rewritten IPv4 packet (its header as it now is), whose
 * packets are `tot_len` bytes long (its total length, or for a GSO skb one
 * segment's). ctx is an xdp_md or a __sk_buff: bpf_fib_lookup takes either.
 * Returns BPF_FIB_LKUP_RET_SUCCESS (0) or why not; a packet longer than the
 * next hop's MTU (a nonzero tot_len has the lookup check it) gives
 * BPF_FIB_LKUP_RET_FRAG_NEEDED and the MTU in out->mtu. */
static __always_inline int fib_next_hop(void *ctx, __u32 ifindex,
					const struct iphdr *iph, __u16 tot_len,
					struct fib_out *out)
{
	struct bpf_fib_lookup p = {};
	int rc;

	p.family = AF_INET;
	p.tos = iph->tos;
	p.l4_protocol = iph->protocol;
	p.tot_len = tot_len;
	p.ipv4_src = iph->saddr;
	p.ipv4_dst = iph->daddr;
	p.ifindex = ifindex;
	rc = bpf_fib_lookup(ctx, &p, sizeof(p), 0);
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		out->mtu = p.mtu_result; /* a union with tot_len */
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return rc;
	out->ifindex = p.ifindex;
	__builtin_memcpy(out->dmac, p.dmac, ETH_ALEN);
	__builtin_memcpy(out->smac, p.smac, ETH_ALEN);
	return 0;
}

/* Whether the routes of interface `ifindex`'s namespace would not forward
 * `iph`: its destination is the host itself (a local, broadcast or
 * multicast route) or has no route; the kernel answers both NOT_FWDED.
 * With forwarding off on the interface the kernel asks no route
 * (FWD_DISABLED): that answers no, as no verdict on the route. */
static __always_inline int fib_not_forwarded(void *ctx, __u32 ifindex,
					     const struct iphdr *iph)
{
	struct bpf_fib_lookup p = {};
	int rc;

	p.family = AF_INET;
	p.tos = iph->tos;
	p.l4_protocol = iph->protocol;
	p.ipv4_src = iph->saddr;
	p.ipv4_dst = iph->daddr;
	p.ifindex = ifindex;
	rc = bpf_fib_lookup(ctx, &p, sizeof(p), 0);
	return rc == BPF_FIB_LKUP_RET_NOT_FWDED;
}

/* Rewrite MACs and decrement the TTL. Returns -1 (and changes nothing) if
 * the TTL would expire: the stack then sends ICMP time exceeded. */
static __always_inline int fib_apply_l2(struct ethhdr *eth, struct iphdr *iph,
					const struct fib_out *out)
{
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

/* Not an interface: fib_forward's answer for a DF packet longer than the
 * next hop's MTU, which is answered, not forwarded (frag.h). */
#define FIB_FRAG_NEEDED 0xffffffffU

/* Whether the FIB's answer is "too long" for a packet that must not be
 * fragmented; any other (a packet the stack may fragment) goes on. */
static __always_inline int fib_frag_needed(int rc, const struct iphdr *iph)
{
	return rc == BPF_FIB_LKUP_RET_FRAG_NEEDED &&
	       (iph->frag_off & bpf_htons(0x4000 /* DF */));
}

/*
 * Forward a rewritten packet by the FIB: the next hop of its IPv4 header
 * (which follows `eth`, bounds checked by the caller), applied to the frame.
 * Returns the interface to redirect to, 0 to hand the packet to the stack
 * unchanged (no full answer, a TTL about to expire, a packet the stack
 * fragments), or FIB_FRAG_NEEDED with the MTU in *mtu.
 */
static __always_inline __u32 fib_forward(void *ctx, __u32 ifindex,
					 struct ethhdr *eth, struct iphdr *iph,
					 __u16 tot_len, __u16 *mtu)
{
	struct fib_out out;
	int rc = fib_next_hop(ctx, ifindex, iph, tot_len, &out);

	if (__builtin_expect(fib_frag_needed(rc, iph), 0)) {
		*mtu = out.mtu;
		return FIB_FRAG_NEEDED;
	}
	if (rc || fib_apply_l2(eth, iph, &out))
		return 0;
	return out.ifindex;
}

#endif /* SLUICE_FIB_H */
