// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc_lb.bpf.c: the load balancer at tc clsact (direct action), for paths
 * where XDP does not fit: a pod's host-side veth, egress, or a device
 * without native XDP. Same core as XDP (lb_decide, without XDP's fast
 * path); the L4 checksum goes through the skb helpers, which keep offloaded
 * (CHECKSUM_PARTIAL) checksums correct.
 */
#include <linux/pkt_cls.h>
#include "include/lb.h"
#include "include/csum.h"
#include "include/fib.h"

/* Enough linear data for Ethernet, IPv4 with options and a TCP header. */
#define SLUICE_TC_PULL (sizeof(struct ethhdr) + 60 + sizeof(struct tcphdr))

/*
 * Rewrite an address and its port. The address, the port and the IP header
 * checksum (never offloaded) are written directly, as at XDP; the L4
 * checksum goes through bpf_l4_csum_replace, which knows the skb's checksum
 * state: the pseudo-header flag updates a CHECKSUM_PARTIAL seed (the field
 * holds only the pseudo-header's sum, the rest is summed on the way out) and
 * skb->csum for CHECKSUM_COMPLETE; a port change touches a PARTIAL seed not
 * at all. MARK_MANGLED_0 keeps a zero UDP checksum zero. Direct writes are
 * safe on a cloned skb: for a program that makes them, the verifier adds a
 * prologue that unclones its head.
 */
static __always_inline int tc_rewrite(struct __sk_buff *skb,
				      const struct nat_action *act)
{
	__u64 l4_flags = act->udp ? BPF_F_MARK_MANGLED_0 : 0;
	struct ethhdr *eth;
	struct iphdr *iph;
	__be16 *ports;
	__sum16 *check; /* the helpers below find it by offset */
	int err = lb_action_headers((void *)(long)skb->data,
				    (void *)(long)skb->data_end, act,
				    &eth, &iph, &ports, &check);

	if (err)
		return err;
	iph->check = csum_apply(iph->check,
				csum_delta4(0, act->old_addr, act->new_addr));
	if (act->rewrite_dst) {
		iph->daddr = act->new_addr;
		ports[1] = act->new_port;
	} else {
		iph->saddr = act->new_addr;
		ports[0] = act->new_port;
	}
	if (act->hairpin) {
		iph->check = csum_apply(iph->check,
					csum_delta4(0, act->peer_old_addr,
						    act->peer_new_addr));
		if (act->rewrite_dst)
			iph->saddr = act->peer_new_addr;
		else
			iph->daddr = act->peer_new_addr;
	}
	/* The helpers may move the packet: no packet pointer is used after. */
	if (bpf_l4_csum_replace(skb, act->l4_check_off, act->old_addr,
				act->new_addr,
				l4_flags | BPF_F_PSEUDO_HDR | sizeof(__be32)))
		return SLUICE_ERR_REWRITE;
	if (bpf_l4_csum_replace(skb, act->l4_check_off, act->old_port,
				act->new_port, l4_flags | sizeof(__be16)))
		return SLUICE_ERR_REWRITE;
	if (act->hairpin &&
	    bpf_l4_csum_replace(skb, act->l4_check_off, act->peer_old_addr,
				act->peer_new_addr,
				l4_flags | BPF_F_PSEUDO_HDR | sizeof(__be32)))
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
	/* At clsact egress (a pod's link, towards the pod: replies of backends
	 * reached through routing) the packet already leaves where it must, so
	 * it is rewritten in place, never redirected. At ingress the kernel has
	 * just set ingress_ifindex to this interface's own. */
	int egress = skb->ingress_ifindex != skb->ifindex;

	/* Headers may sit in paged data; pull them into the linear part. */
	if ((long)skb->data_end - (long)skb->data < pull)
		bpf_skb_pull_data(skb, pull);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;

	rc = lb_decide(data, data_end, 0, &act, 0);
	if (rc == SLUICE_NAT_FWD || rc == SLUICE_NAT_REPLY) {
		if (tc_rewrite(skb, &act)) {
			rc = SLUICE_ERR_REWRITE;
		} else if (cfg_fib_redirect && !egress) {
			struct ethhdr *eth;
			struct iphdr *iph;

			/* The skb helpers invalidated every packet pointer. */
			if (!lb_action_l3((void *)(long)skb->data,
					  (void *)(long)skb->data_end, &act,
					  &eth, &iph))
				ifindex = fib_forward(skb, skb->ingress_ifindex ?
							       skb->ingress_ifindex :
							       skb->ifindex,
						      eth, iph);
			if (ifindex)
				verdict = bpf_redirect(ifindex, 0);
		}
	}
	if (lb_account(rc, &act, ifindex != 0,
		       cfg_fib_redirect && !egress && !ifindex))
		return TC_ACT_SHOT;
	return verdict;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
