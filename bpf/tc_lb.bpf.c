// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc_lb.bpf.c: the load balancer at tc clsact (direct action), for paths
 * where XDP does not fit: a pod's host-side veth, egress, or a device
 * without native XDP. Same core as XDP; the rewrite goes through the skb
 * helpers, which keep offloaded (CHECKSUM_PARTIAL) checksums correct.
 */
#include <linux/pkt_cls.h>
#include "include/lb.h"
#include "include/fib.h"

/* Enough linear data for Ethernet, IPv4 with options and a TCP header. */
#define SLUICE_TC_PULL (sizeof(struct ethhdr) + 60 + sizeof(struct tcphdr))

static __always_inline int tc_rewrite(struct __sk_buff *skb,
				      const struct nat_action *act)
{
	__u32 addr_off = act->l3_off + (act->rewrite_dst ?
				offsetof(struct iphdr, daddr) :
				offsetof(struct iphdr, saddr));
	__u32 port_off = act->l4_off + (act->rewrite_dst ? 2 : 0);
	__u32 ip_check_off = act->l3_off + offsetof(struct iphdr, check);
	__u64 l4_flags = act->udp ? BPF_F_MARK_MANGLED_0 : 0;

	/* L4 first: the pseudo-header flag makes the helper adjust
	 * skb->csum for CHECKSUM_COMPLETE and leave CHECKSUM_PARTIAL seeds
	 * right; MARK_MANGLED_0 keeps a zero UDP checksum zero. */
	if (bpf_l4_csum_replace(skb, act->l4_check_off, act->old_addr,
				act->new_addr,
				l4_flags | BPF_F_PSEUDO_HDR | sizeof(__be32)))
		return SLUICE_ERR_REWRITE;
	if (bpf_l4_csum_replace(skb, act->l4_check_off, act->old_port,
				act->new_port, l4_flags | sizeof(__be16)))
		return SLUICE_ERR_REWRITE;
	if (bpf_l3_csum_replace(skb, ip_check_off, act->old_addr,
				act->new_addr, sizeof(__be32)))
		return SLUICE_ERR_REWRITE;
	if (bpf_skb_store_bytes(skb, addr_off, &act->new_addr,
				sizeof(act->new_addr), 0))
		return SLUICE_ERR_REWRITE;
	if (bpf_skb_store_bytes(skb, port_off, &act->new_port,
				sizeof(act->new_port), 0))
		return SLUICE_ERR_REWRITE;
	return 0;
}

SEC("tc")
int sluice_tc(struct __sk_buff *skb)
{
	struct nat_action act = {};
	void *data, *data_end;
	__u32 pull = skb->len < SLUICE_TC_PULL ? skb->len : SLUICE_TC_PULL;
	__u32 ifindex = 0;
	int rc, verdict = TC_ACT_OK;

	/* Headers may sit in paged data; pull them into the linear part. */
	if ((long)skb->data_end - (long)skb->data < pull)
		bpf_skb_pull_data(skb, pull);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;

	rc = lb_decide(data, data_end, 0, &act);
	if (rc == SLUICE_NAT_FWD || rc == SLUICE_NAT_REPLY) {
		if (tc_rewrite(skb, &act)) {
			rc = SLUICE_ERR_REWRITE;
		} else if (cfg_fib_redirect) {
			struct ethhdr *eth;
			struct iphdr *iph;

			/* The skb helpers invalidated every packet pointer. */
			data = (void *)(long)skb->data;
			data_end = (void *)(long)skb->data_end;
			eth = data;
			iph = data + sizeof(*eth);
			if ((void *)(iph + 1) <= data_end)
				ifindex = fib_forward(skb, skb->ingress_ifindex ?
							       skb->ingress_ifindex :
							       skb->ifindex,
						      eth, iph);
			if (ifindex)
				verdict = bpf_redirect(ifindex, 0);
		}
	}
	if (lb_account(rc, &act, ifindex != 0, cfg_fib_redirect && !ifindex))
		return TC_ACT_SHOT;
	return verdict;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
