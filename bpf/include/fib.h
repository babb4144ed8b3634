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
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "csum.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
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

/* The lookup's parameters for an IPv6 packet (its header as it now is):
 * the flow label and traffic class as the first word carries them. */
static __always_inline void fib6_params(struct bpf_fib_lookup *p,
					const struct ipv6hdr *ip6h,
					__u8 l4_proto, __u16 tot_len,
					__u32 ifindex)
{
	__builtin_memset(p, 0, sizeof(*p));
	p->family = AF_INET6;
	p->flowinfo = *(const __be32 *)ip6h & bpf_htonl(0x0fffffff);
	p->l4_protocol = l4_proto;
	p->tot_len = tot_len;
	__builtin_memcpy(p->ipv6_src, &ip6h->saddr, 16);
	__builtin_memcpy(p->ipv6_dst, &ip6h->daddr, 16);
	p->ifindex = ifindex;
}

/* fib_next_hop() for IPv6, `p` being room for the parameters (the IPv6
 * path keeps them off the stack). tot_len: the fixed header and
 * payload_len, or for a GSO skb one segment's. */
static __always_inline int fib6_next_hop(void *ctx, __u32 ifindex,
					 const struct ipv6hdr *ip6h,
					 __u8 l4_proto, __u16 tot_len,
					 struct bpf_fib_lookup *p,
					 struct fib_out *out)
{
	int rc;

	fib6_params(p, ip6h, l4_proto, tot_len, ifindex);
	rc = bpf_fib_lookup(ctx, p, sizeof(*p), 0);
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		out->mtu = p->mtu_result;
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return rc;
	out->ifindex = p->ifindex;
	__builtin_memcpy(out->dmac, p->dmac, ETH_ALEN);
	__builtin_memcpy(out->smac, p->smac, ETH_ALEN);
	return 0;
}

/* fib_not_forwarded() for IPv6. */
static __always_inline int fib6_not_forwarded(void *ctx, __u32 ifindex,
					      const struct ipv6hdr *ip6h,
					      __u8 l4_proto,
					      struct bpf_fib_lookup *p)
{
	fib6_params(p, ip6h, l4_proto, 0, ifindex);
	return bpf_fib_lookup(ctx, p, sizeof(*p), 0) == BPF_FIB_LKUP_RET_NOT_FWDED;
}

/* fib_apply_l2() for IPv6: the hop limit, which no checksum covers. A hop
 * limit about to expire: -1, the stack answers it (time exceeded). */
static __always_inline int fib6_apply_l2(struct ethhdr *eth,
					 struct ipv6hdr *ip6h,
					 const struct fib_out *out)
{
	if (ip6h->hop_limit <= 1)
		return -1;
	ip6h->hop_limit--;
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

/* fib_forward() for IPv6. Routers never fragment IPv6: every "too long"
 * is FIB_FRAG_NEEDED (answered with packet too big, pmtu6.h). */
static __always_inline __u32 fib6_forward(void *ctx, __u32 ifindex,
					  struct ethhdr *eth,
					  struct ipv6hdr *ip6h, __u8 l4_proto,
					  __u16 tot_len,
					  struct bpf_fib_lookup *p, __u16 *mtu)
{
	struct fib_out out;
	int rc = fib6_next_hop(ctx, ifindex, ip6h, l4_proto, tot_len, p, &out);

	if (__builtin_expect(rc == BPF_FIB_LKUP_RET_FRAG_NEEDED, 0)) {
		*mtu = out.mtu;
		return FIB_FRAG_NEEDED;
	}
	if (rc || fib6_apply_l2(eth, ip6h, &out))
		return 0;
	return out.ifindex;
}

#endif /* SLUICE_FIB_H */
