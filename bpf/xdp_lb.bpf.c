// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_lb.bpf.c: the load balancer at XDP, for traffic arriving at the load
 * balancer's own interfaces (from clients, and replies from backends).
 */
#include "include/lb.h"
#include "include/csum.h"
#include "include/fib.h"

/* Rewrite in place with incremental checksums. The caller has checked the
 * offsets against data_end once more (lb_decide's pointers are gone). */
static __always_inline void l4_rewrite(__be16 *sport, __be16 *dport,
				       __sum16 *check, int udp,
				       const struct nat_action *act, __u32 delta)
{
	if (act->rewrite_dst)
		*dport = act->new_port;
	else
		*sport = act->new_port;
	/* A UDP checksum of 0 means "none": it stays 0. A computed 0 is sent
	 * as 0xffff, its other one's complement representation. */
	if (udp && *check == 0)
		return;
	*check = csum_apply(*check, delta);
	if (udp && *check == 0)
		*check = 0xffff;
}

/* Rewrite in place with incremental checksums. lb_decide's pointers are
 * gone (the verifier does not carry them across), so bounds are checked
 * again here from the recorded offsets. */
static __always_inline int xdp_rewrite(struct xdp_md *ctx,
				       const struct nat_action *act)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *iph;
	/* Masks, not comparisons: the verifier must see the bound on the very
	 * register that is added to the packet pointer. l3 is 14 (Ethernet),
	 * l4 at most 14 + 60 (IPv4 with options). */
	__u32 l3 = act->l3_off & 0x3f, l4 = act->l4_off & 0x7f;
	__u32 delta = csum_delta4(0, act->old_addr, act->new_addr);

	if (l3 != act->l3_off || l4 != act->l4_off)
		return SLUICE_ERR_REWRITE;
	iph = data + l3;
	if ((void *)(iph + 1) > data_end)
		return SLUICE_ERR_REWRITE;
	if (act->udp) {
		struct udphdr *uh = data + l4;

		if ((void *)(uh + 1) > data_end)
			return SLUICE_ERR_REWRITE;
		l4_rewrite(&uh->source, &uh->dest, &uh->check, 1, act,
			   csum_delta2(delta, act->old_port, act->new_port));
	} else {
		struct tcphdr *th = data + l4;

		if ((void *)(th + 1) > data_end)
			return SLUICE_ERR_REWRITE;
		l4_rewrite(&th->source, &th->dest, &th->check, 0, act,
			   csum_delta2(delta, act->old_port, act->new_port));
	}
	if (act->rewrite_dst)
		iph->daddr = act->new_addr;
	else
		iph->saddr = act->new_addr;
	iph->check = csum_apply(iph->check, delta);
	return 0;
}

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct nat_action act = {};
	struct fib_out out = {};
	int rc, verdict = XDP_PASS, redirected = 0;

	rc = lb_decide(data, data_end, &act);
	if (rc == SLUICE_NAT_FWD || rc == SLUICE_NAT_REPLY) {
		/* A failed rewrite cannot happen after a successful parse; it is
		 * counted and the packet dropped, never sent half-rewritten. */
		if (xdp_rewrite(ctx, &act)) {
			rc = SLUICE_ERR_REWRITE;
		} else if (cfg_fib_redirect &&
			   fib_next_hop(ctx, ctx->ingress_ifindex, &act, &out) == 0) {
			data = (void *)(long)ctx->data;
			data_end = (void *)(long)ctx->data_end;
			if (fib_apply_l2(data, data_end, act.l3_off, &out) == 0) {
				redirected = 1;
				verdict = out.ifindex == ctx->ingress_ifindex ?
					  XDP_TX : bpf_redirect(out.ifindex, 0);
			}
		}
	}
	if (lb_account(rc, &act, redirected, cfg_fib_redirect && !redirected))
		return XDP_DROP;
	return verdict;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
