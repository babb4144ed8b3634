// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_fwd.bpf.c: the ceiling of bench/stages/traffic.ts. A plain XDP
 * forwarder on the load balancer's ingress interface that does no load
 * balancing at all: every IPv4 frame gets the egress MACs written by the
 * benchmark and is redirected to the sink's link. Whatever sluice forwards
 * on the same topology is measured against this.
 *
 * Self-contained on purpose (see xdp_parse.bpf.c). Program names: see
 * xdp_floor.bpf.c.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct fwd_cfg {
	__u32 ifindex;			/* egress interface */
	__u8 dmac[ETH_ALEN];		/* next hop's MAC */
	__u8 smac[ETH_ALEN];		/* egress interface's MAC */
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fwd_cfg);
} fwd_cfg SEC(".maps");

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 zero = 0;
	struct fwd_cfg *cfg;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	cfg = bpf_map_lookup_elem(&fwd_cfg, &zero);
	if (!cfg || !cfg->ifindex)
		return XDP_PASS;
	__builtin_memcpy(eth->h_dest, cfg->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, cfg->smac, ETH_ALEN);
	return bpf_redirect(cfg->ifindex, 0);
}

SEC("tc")
int sluice_tc(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
