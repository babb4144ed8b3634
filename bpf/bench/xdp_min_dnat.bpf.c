// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_min_dnat.bpf.c: benchmark baseline. The least a DNAT load balancer
 * does per packet: parse, one hash lookup of (daddr, dport, proto), rewrite
 * the destination, update the IP and L4 checksums incrementally, XDP_TX.
 * No conntrack, no backend choice, no counters.
 *
 * Self-contained on purpose (see xdp_parse.bpf.c). Program names: see
 * xdp_floor.bpf.c.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define IP_MF_OFFSET 0x3fff

/* Written by the benchmark; addresses and ports in network order. */
struct dnat_key {
	__be32 daddr;
	__be16 dport;
	__u8 proto;
	__u8 pad;
};

struct dnat_value {
	__be32 daddr;
	__be16 dport;
	__u16 pad;
};

/* As many entries as sluice's services map, so both hash the same way
 * into as many buckets. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct dnat_key);
	__type(value, struct dnat_value);
} dnat SEC(".maps");

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). One's complement sums do not
 * depend on byte order if each 16-bit word is taken as it sits in memory,
 * so nothing here is swapped. */
static __always_inline __u32 csum_add4(__u32 acc, __be32 from, __be32 to)
{
	acc += (__u16)~(from & 0xffff) + (__u16)~(from >> 16);
	return acc + (to & 0xffff) + (to >> 16);
}

static __always_inline __u16 csum_update(__u16 check, __u32 delta)
{
	__u32 sum = (__u16)~check + delta;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct dnat_key key = {};
	struct dnat_value *nat;
	struct iphdr *iph;
	__be16 *dport;
	__sum16 *check;
	__u32 delta;
	void *l4;
	int udp;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > data_end)
		return XDP_PASS;
	if (iph->version != 4 || iph->ihl < 5)
		return XDP_PASS;
	if (iph->frag_off & bpf_htons(IP_MF_OFFSET))
		return XDP_PASS;
	/* ihl is 4 bits: the mask keeps the verifier's range at 0..60. */
	l4 = (void *)iph + (iph->ihl & 0xf) * 4;
	if (iph->protocol == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end || th->doff < 5)
			return XDP_PASS;
		dport = &th->dest;
		check = &th->check;
		udp = 0;
	} else if (iph->protocol == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return XDP_PASS;
		dport = &uh->dest;
		check = &uh->check;
		udp = 1;
	} else {
		return XDP_PASS;
	}

	key.daddr = iph->daddr;
	key.dport = *dport;
	key.proto = iph->protocol;
	nat = bpf_map_lookup_elem(&dnat, &key);
	if (!nat)
		return XDP_PASS;

	delta = csum_add4(0, iph->daddr, nat->daddr);
	iph->check = csum_update(iph->check, delta);
	iph->daddr = nat->daddr;
	/* The L4 checksum covers the pseudo-header's address too. A UDP
	 * checksum of 0 means "none" and stays 0; a computed 0 is sent as
	 * 0xffff. */
	if (!udp || *check) {
		delta += (__u16)~*dport + nat->dport;
		*check = csum_update(*check, delta);
		if (udp && !*check)
			*check = 0xffff;
	}
	*dport = nat->dport;
	return XDP_TX;
}

SEC("tc")
int sluice_tc(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
