// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_fwd.bpf.c: the ceilings of bench/stages/traffic.ts, two plain XDP
 * forwarders on the load balancer's ingress interface that do no load
 * balancing at all.
 *
 * - static (fwd_cfg.fib == 0): every IPv4 frame gets the egress MACs written
 *   by the benchmark and is redirected to the sink's link. Nothing is looked
 *   up: the topology's raw ceiling.
 * - routing (fwd_cfg.fib == 1): what the kernel's samples/bpf/xdp_fwd does,
 *   a router in XDP: bpf_fib_lookup() on the destination as it arrives, the
 *   next hop's MACs, the TTL decremented (checksum updated), redirect. The
 *   forwarding work any XDP load balancer does after its own, so the ceiling
 *   for one.
 *
 * Includes only bpf/bench/ headers (see xdp_parse.bpf.c); the tc program is
 * stub.h's.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "stub.h"

#define AF_INET 2

struct fwd_cfg {
	__u32 ifindex;			/* static: egress interface */
	__u8 dmac[ETH_ALEN];		/* static: next hop's MAC */
	__u8 smac[ETH_ALEN];		/* static: egress interface's MAC */
	__u16 fib;			/* 1: route with bpf_fib_lookup() instead */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fwd_cfg);
} fwd_cfg SEC(".maps");

/* The TTL shares a 16-bit word with the protocol; decrementing it adds
 * 0x0100 to the one's complement of that word in network order (RFC 1624). */
static __always_inline void ttl_decrement(struct iphdr *iph)
{
	__u32 check = iph->check;

	check += bpf_htons(0x0100);
	iph->check = (__sum16)(check + (check >= 0xFFFF));
	iph->ttl--;
}

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	__u32 zero = 0;
	struct fwd_cfg *cfg;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	cfg = bpf_map_lookup_elem(&fwd_cfg, &zero);
	if (!cfg)
		return XDP_PASS;
	if (cfg->fib) {
		struct bpf_fib_lookup p = {};

		if ((void *)(iph + 1) > data_end || iph->ttl <= 1)
			return XDP_PASS;
		p.family = AF_INET;
		p.tos = iph->tos;
		p.l4_protocol = iph->protocol;
		p.tot_len = bpf_ntohs(iph->tot_len);
		p.ipv4_src = iph->saddr;
		p.ipv4_dst = iph->daddr;
		p.ifindex = ctx->ingress_ifindex;
		if (bpf_fib_lookup(ctx, &p, sizeof(p), 0) != BPF_FIB_LKUP_RET_SUCCESS)
			return XDP_PASS;
		ttl_decrement(iph);
		__builtin_memcpy(eth->h_dest, p.dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, p.smac, ETH_ALEN);
		return bpf_redirect(p.ifindex, 0);
	}
	if (!cfg->ifindex)
		return XDP_PASS;
	__builtin_memcpy(eth->h_dest, cfg->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, cfg->smac, ETH_ALEN);
	return bpf_redirect(cfg->ifindex, 0);
}
