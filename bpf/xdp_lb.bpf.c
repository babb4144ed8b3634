// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_lb.bpf.c: the load balancer at XDP, for traffic arriving at the load
 * balancer's own interfaces (from clients, and replies from backends).
 *
 * Two paths. Most packets belong to a flow sluice already tracks, or are not
 * for a VIP at all: the fast path parses them, finds their conntrack entry
 * and rewrites them in one pass, through the header pointers it has just
 * checked, or passes them. Everything else (a new flow to a VIP, a flow
 * whose backend is gone or draining under a fresh SYN, a packet that is not
 * IPv4 TCP/UDP or not well formed) goes to lb_decide(), which parses again
 * and decides (a new flow to a VIP without repeating the fast path's
 * conntrack miss and VIP check), and is rewritten from its struct
 * nat_action. Both paths follow the same entries (ct_follow), count alike
 * and forward by the FIB alike (fib_forward, xdp_verdict). A packet for a
 * service without a usable backend may be answered in its place
 * (reject.h): the frame becomes the answer and goes back out with XDP_TX.
 */
#include "include/lb.h"
#include "include/lb6.h"
#include "include/csum.h"
#include "include/fib.h"
#include "include/reject.h"
#include "include/pmtu.h"
#include "include/reject6.h"
#include "include/pmtu6.h"

/*
 * Rewrite one address and its port in place, with incremental checksums:
 * `addr` and `port` point into the headers at `iph` and at the L4 header
 * whose checksum is `check`, all bounds checked by the caller.
 */
static __always_inline void nat_rewrite4(struct iphdr *iph, __be32 *addr,
					 __be16 *port, __sum16 *check, int udp,
					 __be32 to_addr, __be16 to_port)
{
	__u32 delta = csum_delta4(0, *addr, to_addr);

	/* The L4 checksum covers the pseudo-header's address too. A UDP
	 * checksum of 0 means "none": it stays 0. A computed 0 is sent as
	 * 0xffff, its other one's complement representation. */
	if (!udp || *check) {
		*check = csum_apply(*check, csum_delta2(delta, *port, to_port));
		if (udp && *check == 0)
			*check = 0xffff;
	}
	*port = to_port;
	*addr = to_addr;
	iph->check = csum_apply(iph->check, delta);
}

/* Rewrite an address whose port stays (a hairpin flow's other side): the
 * IP checksum and the L4 checksum's pseudo-header. */
static __always_inline void nat_rewrite_addr4(struct iphdr *iph, __be32 *addr,
					      __sum16 *check, int udp,
					      __be32 to_addr)
{
	__u32 delta = csum_delta4(0, *addr, to_addr);

	if (!udp || *check) {
		*check = csum_apply(*check, delta);
		if (udp && *check == 0)
			*check = 0xffff;
	}
	*addr = to_addr;
	iph->check = csum_apply(iph->check, delta);
}

/*
 * fib_forward() for XDP: a next hop out of an interface that cannot take
 * an XDP frame (not in xdp_ports, not the one it came in on) is not
 * redirected: the packet goes to the stack, rewritten, and the stack
 * forwards it (counted as fib_miss). FIB_FRAG_NEEDED (the MTU in *mtu): a
 * DF packet too long for the next hop, answered by pmtu.h.
 */
static __always_inline __u32 xdp_fib_forward(struct xdp_md *ctx,
					     struct ethhdr *eth,
					     struct iphdr *iph, __u16 *mtu)
{
	struct fib_out out;
	__u32 in = ctx->ingress_ifindex;
	int rc = fib_next_hop(ctx, in, iph, bpf_ntohs(iph->tot_len), &out);

	if (__builtin_expect(fib_frag_needed(rc, iph), 0)) {
		*mtu = out.mtu;
		return FIB_FRAG_NEEDED;
	}
	if (rc)
		return 0;
	if (out.ifindex != in && !bpf_map_lookup_elem(&xdp_ports, &out.ifindex))
		return 0;
	if (fib_apply_l2(eth, iph, &out))
		return 0;
	return out.ifindex;
}

/* The verdict for a packet the FIB lookup sent out of `ifindex` (0: it goes
 * to the stack, rewritten). */
static __always_inline int xdp_verdict(struct xdp_md *ctx, __u32 ifindex)
{
	if (!ifindex)
		return XDP_PASS;
	return ifindex == ctx->ingress_ifindex ? XDP_TX : bpf_redirect(ifindex, 0);
}

/* Not XDP verdicts: the fast path leaves the packet to lb_decide(), which
 * for XDP_FAST_NEW_FLOW (no entry under its tuple, maybe to a VIP: its filter bit is set) need not look
 * again. */
#define XDP_FAST_MISS (-1)
#define XDP_FAST_NEW_FLOW (-2)
#define XDP_FAST_IPV6 (-3) /* an IPv6 frame: xdp_lb6's */

/*
 * The fast path: a packet of a tracked flow, forward or reply, or one that
 * belongs to no flow and is not addressed to a VIP (passed untouched).
 * Returns the verdict, or XDP_FAST_MISS or XDP_FAST_NEW_FLOW without having
 * changed or counted anything.
 *
 * The checks are lb_decide()'s (the same parse_* functions), so a packet
 * that passes them here would pass them there too; what fails here is
 * judged, dropped or counted there.
 */
static __always_inline int xdp_fast(struct xdp_md *ctx, void *data,
				    void *data_end)
{
	struct cursor c = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct ct_key fk = {};
	struct ct_value *ct;
	struct backend_value *be = NULL;
	struct global_stats *g;
	__be16 *ports;
	__sum16 *check;
	__u8 tflags = 0;
	int proto, udp = 0, reply;
	__u32 len, l4_len, now, ifindex = 0;
	__u16 mtu;

	proto = parse_ethhdr(&c, data_end, &eth);
	if (proto != bpf_htons(ETH_P_IP))
		return proto == bpf_htons(ETH_P_IPV6) ? XDP_FAST_IPV6 : XDP_FAST_MISS;
	proto = parse_iphdr(&c, data_end, data_end - (void *)(eth + 1), &iph, &l4_len);
	if (proto < 0 || (iph->frag_off & bpf_htons(SLUICE_IP_MF | SLUICE_IP_OFFSET)))
		return XDP_FAST_MISS;
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th;

		if (parse_tcphdr(&c, data_end, l4_len, &th))
			return XDP_FAST_MISS;
		tflags = ((__u8 *)th)[13];
		ports = &th->source;
		check = &th->check;
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *uh;

		if (parse_udphdr(&c, data_end, l4_len, 0, &uh))
			return XDP_FAST_MISS;
		udp = 1;
		ports = &uh->source;
		check = &uh->check;
	} else {
		return XDP_FAST_MISS;
	}

	fk.proto = proto;
	fk.saddr = iph->saddr;
	fk.daddr = iph->daddr;
	fk.sport = ports[0];
	fk.dport = ports[1];
	ct = bpf_map_lookup_elem(&conntrack, &fk);
	if (__builtin_expect(!ct, 0)) {
		/* No flow, and not to a VIP: not ours (lb_flow's verdict too),
		 * settled here without a second conntrack lookup there. */
		if (vip_maybe(iph->daddr))
			return XDP_FAST_NEW_FLOW;
		/* A reply reply_nat may restore: lb_decide() judges it. */
		if (rnat_find(iph->saddr, ports[0], proto))
			return XDP_FAST_MISS;
		g = global_stats_get();
		if (g) {
			g->rx_packets++;
			g->passed_other++;
		}
		return XDP_PASS;
	}
	/*
	 * The fast path takes an established flow's packet that changes
	 * nothing in its entries: not a hairpin flow's (both addresses are
	 * rewritten), no SYN, FIN or RST, and its expiry not due for a refresh
	 * (once a step, ct.h: that packet goes the general way, which writes
	 * both entries). A dead entry, too, is the general path's.
	 */
	now = lb_now_s();
	if ((ct->flags & SLUICE_CT_F_HAIRPIN) || ct->state != SLUICE_CT_ESTABLISHED ||
	    (tflags & (SLUICE_TCP_SYN | SLUICE_TCP_FIN | SLUICE_TCP_RST)) ||
	    ct_due(ct, proto, SLUICE_CT_ESTABLISHED, now))
		return XDP_FAST_MISS;
	reply = ct->flags & SLUICE_CT_F_REPLY;
	if (reply) {
		if (!ct_reply_valid(ct, iph->saddr, ports[0]))
			return XDP_FAST_MISS;
	} else {
		be = ct_follow(ct, 0);
		if (!be)
			return XDP_FAST_MISS;
	}

	len = bpf_ntohs(iph->tot_len);
	if (reply)
		nat_rewrite4(iph, &iph->saddr, &ports[0], check, udp,
			     ct->nat_addr, ct->nat_port);
	else
		nat_rewrite4(iph, &iph->daddr, &ports[1], check, udp,
			     be->addr[0], be->port);
	if (cfg_fib_redirect) {
		ifindex = xdp_fib_forward(ctx, eth, iph, &mtu);
		if (__builtin_expect(ifindex == FIB_FRAG_NEEDED, 0)) {
			/* Too long for the next hop: undone, and left to the
			 * general path, which answers it (pmtu.h). */
			if (reply)
				nat_rewrite4(iph, &iph->saddr, &ports[0], check,
					     udp, fk.saddr, fk.sport);
			else
				nat_rewrite4(iph, &iph->daddr, &ports[1], check,
					     udp, fk.daddr, fk.dport);
			return XDP_FAST_MISS;
		}
	}
	if (reply) {
		lb_stats_add(&svc_stats, ct->svc_id, len, 0, 1);
		lb_stats_add(&backend_stats, ct->backend_id, len, 0, 1);
	} else {
		lb_stats_add(&svc_stats, ct->svc_id, len, 0, 0);
		lb_stats_add(&backend_stats, ct->backend_id, len, 0, 0);
	}
	g = global_stats_get();
	if (g) {
		g->rx_packets++;
		lb_count_nat(g, reply, ifindex != 0, cfg_fib_redirect && !ifindex);
	}
	return xdp_verdict(ctx, ifindex);
}

/* The general path's rewrite, from the action; its headers, for the FIB
 * lookup (direct writes leave XDP's packet pointers valid). */
static __always_inline int xdp_rewrite(struct xdp_md *ctx,
				       const struct nat_action *act,
				       struct ethhdr **eth, struct iphdr **iph)
{
	__be16 *ports;
	__sum16 *check;
	int err = lb_action_headers((void *)(long)ctx->data,
				    (void *)(long)ctx->data_end, act,
				    eth, iph, &ports, &check);

	if (err)
		return err;
	if (act->rewrite_dst)
		nat_rewrite4(*iph, &(*iph)->daddr, &ports[1], check, act->udp,
			     act->new_addr, act->new_port);
	else
		nat_rewrite4(*iph, &(*iph)->saddr, &ports[0], check, act->udp,
			     act->new_addr, act->new_port);
	if (act->hairpin)
		nat_rewrite_addr4(*iph, act->rewrite_dst ? &(*iph)->saddr :
							   &(*iph)->daddr,
				  check, act->udp, act->peer_new_addr);
	return 0;
}

/* A SYN becomes its RST: the headers written over the frame's start, which
 * is cut to their length. */
static __always_inline int xdp_reject4_tcp_rst(struct xdp_md *ctx,
					       const struct reject4_orig *o)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct reject4_rst r;

	reject4_tcp_rst(&r, o);
	/* A SYN's frame holds at least the RST's headers (the parser saw
	 * them): only ever shrunk. */
	if (bpf_xdp_adjust_tail(ctx, (int)REJECT4_RST_LEN - (int)(data_end - data)))
		return SLUICE_ERR_REWRITE;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + REJECT4_RST_LEN > data_end)
		return SLUICE_ERR_REWRITE;
	reject4_eth(data, o);
	__builtin_memcpy(data + sizeof(struct ethhdr), &r, sizeof(r));
	return SLUICE_REJECT_RST;
}

/* A UDP datagram becomes its ICMP port unreachable: room for an IP and an
 * ICMP header is made before the datagram's IP header, which with what
 * follows it, cut to the quote's length, is the quote. */
static __always_inline int xdp_reject4_icmp_unreach(struct xdp_md *ctx,
						    const struct nat_action *act,
						    const struct reject4_orig *o)
{
	struct reject4_quote q = {};
	struct reject4_unreach u;
	void *data, *data_end;
	__u32 len = reject4_quote_len(o);

	if (bpf_xdp_load_bytes(ctx, act->l3_off, &q, len))
		return SLUICE_ERR_REWRITE;
	reject4_icmp_unreach(&u, o, &q, len);
	if (bpf_xdp_adjust_head(ctx, -(int)(sizeof(struct iphdr) + sizeof(struct icmp4hdr))))
		return SLUICE_ERR_REWRITE;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (bpf_xdp_adjust_tail(ctx, (int)(REJECT4_ICMP_LEN + len) - (int)(data_end - data)))
		return SLUICE_ERR_REWRITE;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + REJECT4_ICMP_LEN > data_end)
		return SLUICE_ERR_REWRITE;
	reject4_eth(data, o);
	__builtin_memcpy(data + sizeof(struct ethhdr), &u, sizeof(u));
	return SLUICE_REJECT_ICMP;
}

/* Answer the packet of `act`, for a service without a usable backend, if
 * it may be answered and the bucket has a token: SLUICE_REJECT_* (the frame
 * is now the answer), or why not. */
static __always_inline int xdp_reject4(struct xdp_md *ctx,
				       const struct nat_action *act)
{
	struct reject4_orig o = {};
	int err = reject4_prepare((void *)(long)ctx->data,
				  (void *)(long)ctx->data_end, act, &o);

	if (err)
		return err;
	if (!reject_take())
		return SLUICE_ERR_RATE_LIMITED;
	if (act->udp)
		return xdp_reject4_icmp_unreach(ctx, act, &o);
	return xdp_reject4_tcp_rst(ctx, &o);
}

/* The general path's rewrite of a later fragment (frag.h) or an ICMP error
 * (icmp_nat.h); its headers, for the FIB lookup. */
static __always_inline int xdp_rewrite_other(struct xdp_md *ctx, int rc,
					     const struct nat_action *act,
					     struct ethhdr **eth,
					     struct iphdr **iph)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (lb_action_l3(data, data_end, act, eth, iph))
		return SLUICE_ERR_REWRITE;
	if (rc == SLUICE_NAT_FRAG) {
		frag4_rewrite(*iph, act);
		return 0;
	}
	return icmp4_rewrite(data, data_end, *iph, act);
}

/* A DF packet of `act`, rewritten, too long for the next hop: undo the
 * rewrite and answer its sender with fragmentation needed (the frame
 * becomes the answer, sent back with XDP_TX), if it may be answered and
 * the bucket has a token: SLUICE_FRAG_NEEDED, or why not. */
static __always_inline int xdp_frag_needed(struct xdp_md *ctx,
					   struct nat_action *act, __u16 mtu)
{
	struct reject4_orig o = {};
	struct ethhdr *eth;
	struct iphdr *iph;
	int rc;

	pmtu_invert(act);
	if (xdp_rewrite(ctx, act, &eth, &iph))
		return SLUICE_ERR_REWRITE;
	rc = pmtu_prepare((void *)(long)ctx->data, (void *)(long)ctx->data_end,
			  act, &o);
	if (rc)
		return rc;
	if (!reject_take())
		return SLUICE_ERR_RATE_LIMITED;
	rc = xdp_reject4_icmp_unreach(ctx, act, &o);
	if (rc != SLUICE_REJECT_ICMP)
		return rc;
	return pmtu_frag_needed((void *)(long)ctx->data,
				(void *)(long)ctx->data_end, mtu);
}

/*
 * The general path, for what the fast path left: lb_decide(), then the
 * rewrite from its action. Inlined, but its own scope: the action is zeroed
 * only when the general path runs. With the action declared at the top of
 * sluice_xdp, the compiler zeroed it and spilled the context before the fast
 * path ran (about 2 ns of the fast path's 60, measured side by side).
 */
static __always_inline int xdp_general(struct xdp_md *ctx, int new_to_vip)
{
	struct nat_action act = {};
	struct ethhdr *eth;
	struct iphdr *iph;
	int rc, verdict = XDP_PASS;
	__u32 ifindex = 0;
	__u16 mtu = 0;

	rc = lb_decide(ctx, ctx->ingress_ifindex, (void *)(long)ctx->data,
		       (void *)(long)ctx->data_end,
		       ctx->data_end - ctx->data, new_to_vip, &act, 0);
	if (rc == SLUICE_NAT_FWD || rc == SLUICE_NAT_REPLY ||
	    rc == SLUICE_NAT_FRAG || rc == SLUICE_NAT_ICMP) {
		/* A failed rewrite cannot happen after a successful parse; it is
		 * counted and the packet dropped, never sent half-rewritten. */
		if (rc == SLUICE_NAT_FWD || rc == SLUICE_NAT_REPLY ?
			    xdp_rewrite(ctx, &act, &eth, &iph) :
			    xdp_rewrite_other(ctx, rc, &act, &eth, &iph)) {
			rc = SLUICE_ERR_REWRITE;
		} else if (cfg_fib_redirect) {
			ifindex = xdp_fib_forward(ctx, eth, iph, &mtu);
			if (ifindex == FIB_FRAG_NEEDED) {
				/* Fragments and ICMP errors never carry DF
				 * from Linux; from elsewhere, the stack
				 * judges them. */
				ifindex = 0;
				if (rc == SLUICE_NAT_FWD || rc == SLUICE_NAT_REPLY) {
					rc = xdp_frag_needed(ctx, &act, mtu);
					verdict = XDP_TX;
				}
			} else {
				verdict = xdp_verdict(ctx, ifindex);
			}
		}
	} else if (rc == SLUICE_ERR_NO_BACKEND && act.reject) {
		rc = xdp_reject4(ctx, &act);
		if (rc == SLUICE_REJECT_RST || rc == SLUICE_REJECT_ICMP)
			verdict = XDP_TX;
	}
	if (lb_account(rc, &act, ifindex != 0, cfg_fib_redirect && !ifindex))
		return XDP_DROP;
	return verdict;
}

/*
 * nat_rewrite4() for IPv6: one address and its port, the L4 checksum by
 * the 16-byte delta and the port's (there is no IP header checksum). A UDP
 * checksum is never 0 here (lb6_decide refuses it); a computed 0 is sent
 * as 0xffff.
 */
static __always_inline void nat6_rewrite(__be32 *addr, __be16 *port,
					 __sum16 *check, int udp,
					 const __be32 *to_addr, __be16 to_port)
{
	__u32 delta = csum_delta16(0, addr, to_addr);

	*check = csum_apply(*check, csum_delta2(delta, *port, to_port));
	if (udp && *check == 0)
		*check = 0xffff;
	*port = to_port;
	addr6_copy(addr, to_addr);
}

/* nat_rewrite_addr4() for IPv6: a hairpin flow's other address. */
static __always_inline void nat6_rewrite_addr(__be32 *addr, __sum16 *check,
					      int udp, const __be32 *to_addr)
{
	*check = csum_apply(*check, csum_delta16(0, addr, to_addr));
	if (udp && *check == 0)
		*check = 0xffff;
	addr6_copy(addr, to_addr);
}

/* xdp_fib_forward() for IPv6 (the same xdp_ports rule); `p` is room for
 * the lookup's parameters. */
static __always_inline __u32 xdp_fib6_forward(struct xdp_md *ctx,
					      struct ethhdr *eth,
					      struct ipv6hdr *ip6h,
					      __u8 l4_proto,
					      struct bpf_fib_lookup *p,
					      __u16 *mtu)
{
	struct fib_out out;
	__u32 in = ctx->ingress_ifindex;
	int rc = fib6_next_hop(ctx, in, ip6h, l4_proto,
			       sizeof(*ip6h) + bpf_ntohs(ip6h->payload_len),
			       p, &out);

	if (__builtin_expect(rc == BPF_FIB_LKUP_RET_FRAG_NEEDED, 0)) {
		*mtu = out.mtu;
		return FIB_FRAG_NEEDED;
	}
	if (rc)
		return 0;
	if (out.ifindex != in && !bpf_map_lookup_elem(&xdp_ports, &out.ifindex))
		return 0;
	if (fib6_apply_l2(eth, ip6h, &out))
		return 0;
	return out.ifindex;
}

/*
 * xdp_fast() for IPv6: a packet of a tracked flow without extension
 * headers (so no fragment), forward or reply, rewritten in one pass; or one
 * of no flow, not to a VIP nor a reply reply_nat may restore, passed.
 * Everything else: XDP_FAST_MISS, nothing changed or counted. The checks
 * are lb6_decide()'s, so that what passes them here would there too.
 */
static __always_inline int xdp_fast6(struct xdp_md *ctx, void *data,
				     void *data_end)
{
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6h = (void *)(eth + 1);
	/* The forward key, then (no entry) the reply_nat key: one slot. */
	union {
		struct ct6_key fk;
		struct rnat_key rk;
	} k;
	struct ct6_value *ct;
	struct backend_value *be = NULL;
	struct global_stats *g;
	struct lb6_scratch *s;
	__be16 *ports;
	__sum16 *check;
	__u8 tflags = 0, proto;
	int udp = 0, reply;
	__u32 len, l4_len, now, ifindex = 0;
	__u16 mtu;

	if ((void *)(ip6h + 1) > data_end || ip6h->version != 6)
		return XDP_FAST_MISS;
	l4_len = bpf_ntohs(ip6h->payload_len);
	if (!l4_len || l4_len > data_end - (void *)(ip6h + 1))
		return XDP_FAST_MISS;
	proto = ip6h->nexthdr;
	if (addr6_unforwardable(IP6_SADDR(ip6h)))
		return XDP_FAST_MISS;
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = (void *)(ip6h + 1);

		if ((void *)(th + 1) > data_end || th->doff < 5 ||
		    (__u32)th->doff * 4 > l4_len)
			return XDP_FAST_MISS;
		tflags = ((__u8 *)th)[13];
		ports = &th->source;
		check = &th->check;
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *uh = (void *)(ip6h + 1);

		if ((void *)(uh + 1) > data_end || l4_len < sizeof(*uh) ||
		    bpf_ntohs(uh->len) < sizeof(*uh) ||
		    bpf_ntohs(uh->len) > l4_len || !uh->check)
			return XDP_FAST_MISS;
		udp = 1;
		ports = &uh->source;
		check = &uh->check;
	} else {
		return XDP_FAST_MISS;
	}

	__builtin_memset(&k.fk, 0, sizeof(k.fk));
	addr6_copy(k.fk.saddr, IP6_SADDR(ip6h));
	addr6_copy(k.fk.daddr, IP6_DADDR(ip6h));
	k.fk.sport = ports[0];
	k.fk.dport = ports[1];
	k.fk.proto = proto;
	ct = bpf_map_lookup_elem(&conntrack6, &k.fk);
	if (__builtin_expect(!ct, 0)) {
		if (vip6_maybe(IP6_DADDR(ip6h)))
			return XDP_FAST_MISS;
		if (rnat6_find(IP6_SADDR(ip6h), ports[0], proto, &k.rk))
			return XDP_FAST_MISS;
		g = global_stats_get();
		if (g) {
			g->rx_packets++;
			g->passed_other++;
		}
		return XDP_PASS;
	}
	/* xdp_fast()'s rule: only a packet that changes nothing in the
	 * entries. */
	now = lb_now_s();
	if ((ct->flags & SLUICE_CT_F_HAIRPIN) || ct->state != SLUICE_CT_ESTABLISHED ||
	    (tflags & (SLUICE_TCP_SYN | SLUICE_TCP_FIN | SLUICE_TCP_RST)) ||
	    ct_due_at(ct->expires, proto, SLUICE_CT_ESTABLISHED, now))
		return XDP_FAST_MISS;
	reply = ct->flags & SLUICE_CT_F_REPLY;
	if (reply) {
		if (!ct6_reply_valid(ct, IP6_SADDR(ip6h), ports[0]))
			return XDP_FAST_MISS;
	} else {
		be = ct6_follow(ct, 0);
		if (!be)
			return XDP_FAST_MISS;
	}

	len = sizeof(*ip6h) + l4_len;
	if (reply)
		nat6_rewrite(IP6_SADDR(ip6h), &ports[0], check, udp,
			     ct->nat_addr, ct->nat_port);
	else
		nat6_rewrite(IP6_DADDR(ip6h), &ports[1], check, udp,
			     be->addr, be->port);
	if (cfg_fib_redirect) {
		s = lb6_scratch_get(LB6_SCRATCH_XDP);
		if (s)
			ifindex = xdp_fib6_forward(ctx, eth, ip6h, proto,
						   &s->fib, &mtu);
		if (__builtin_expect(ifindex == FIB_FRAG_NEEDED, 0)) {
			/* Undone, and left to the general path (pmtu6.h). */
			if (reply)
				nat6_rewrite(IP6_SADDR(ip6h), &ports[0], check,
					     udp, k.fk.saddr, k.fk.sport);
			else
				nat6_rewrite(IP6_DADDR(ip6h), &ports[1], check,
					     udp, k.fk.daddr, k.fk.dport);
			return XDP_FAST_MISS;
		}
	}
	lb_stats_add(&svc_stats, ct->svc_id, len, 0, reply);
	lb_stats_add(&backend_stats, ct->backend_id, len, 0, reply);
	g = global_stats_get();
	if (g) {
		g->rx_packets++;
		lb_count_nat(g, reply, ifindex != 0, cfg_fib_redirect && !ifindex);
	}
	return xdp_verdict(ctx, ifindex);
}

/* The general IPv6 path's rewrite, from the action; its headers for the
 * FIB lookup. */
static __always_inline int xdp_rewrite6(struct xdp_md *ctx,
					const struct nat6_action *act,
					struct ethhdr **eth,
					struct ipv6hdr **ip6h)
{
	__be16 *ports;
	__sum16 *check;
	int err = lb6_action_headers((void *)(long)ctx->data,
				     (void *)(long)ctx->data_end, act, eth,
				     ip6h, &ports, &check);

	if (err)
		return err;
	if (act->n.rewrite_dst)
		nat6_rewrite(IP6_DADDR(*ip6h), &ports[1], check, act->n.udp,
			     act->new_addr, act->n.new_port);
	else
		nat6_rewrite(IP6_SADDR(*ip6h), &ports[0], check, act->n.udp,
			     act->new_addr, act->n.new_port);
	if (act->n.hairpin)
		nat6_rewrite_addr(act->n.rewrite_dst ? IP6_SADDR(*ip6h) :
						       IP6_DADDR(*ip6h),
				  check, act->n.udp, act->peer_new_addr);
	return 0;
}

/* A SYN becomes its RST (xdp_reject4_tcp_rst). */
static __always_inline int xdp_reject6_tcp_rst(struct xdp_md *ctx,
					       struct lb6_scratch *s)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct reject6_rst *r = reject6_tcp_rst(s);

	if (bpf_xdp_adjust_tail(ctx, (int)REJECT6_RST_LEN - (int)(data_end - data)))
		return SLUICE_ERR_REWRITE;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + REJECT6_RST_LEN > data_end)
		return SLUICE_ERR_REWRITE;
	reject6_eth(data, &s->orig);
	__builtin_memcpy(data + sizeof(struct ethhdr), r, sizeof(*r));
	return SLUICE_REJECT_RST;
}

/* A UDP datagram becomes its ICMPv6 port unreachable
 * (xdp_reject4_icmp_unreach). */
static __always_inline int xdp_reject6_icmp_unreach(struct xdp_md *ctx,
						    struct lb6_scratch *s)
{
	struct reject6_unreach *u;
	void *data, *data_end;
	__u32 len = reject6_quote_len(&s->orig);

	__builtin_memset(s->quote, 0, sizeof(s->quote));
	if (bpf_xdp_load_bytes(ctx, s->act.n.l3_off, s->quote, len))
		return SLUICE_ERR_REWRITE;
	u = reject6_icmp_unreach(s, len);
	if (bpf_xdp_adjust_head(ctx, -(int)(sizeof(struct ipv6hdr) + sizeof(struct icmp6hdr))))
		return SLUICE_ERR_REWRITE;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (bpf_xdp_adjust_tail(ctx, (int)(REJECT6_ICMP_LEN + len) - (int)(data_end - data)))
		return SLUICE_ERR_REWRITE;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + REJECT6_ICMP_LEN > data_end)
		return SLUICE_ERR_REWRITE;
	reject6_eth(data, &s->orig);
	__builtin_memcpy(data + sizeof(struct ethhdr), u, sizeof(*u));
	return SLUICE_REJECT_ICMP;
}

static __always_inline int xdp_reject6(struct xdp_md *ctx,
				       struct lb6_scratch *s)
{
	int err = reject6_prepare((void *)(long)ctx->data,
				  (void *)(long)ctx->data_end, s);

	if (err)
		return err;
	if (!reject_take())
		return SLUICE_ERR_RATE_LIMITED;
	if (s->act.n.udp)
		return xdp_reject6_icmp_unreach(ctx, s);
	return xdp_reject6_tcp_rst(ctx, s);
}

/* The general IPv6 path's rewrite of a later fragment (frag6.h) or an
 * ICMPv6 error (icmp6_nat.h); its headers, for the FIB lookup. */
static __always_inline int xdp_rewrite6_other(struct xdp_md *ctx, int rc,
					      const struct nat6_action *act,
					      struct ethhdr **eth,
					      struct ipv6hdr **ip6h)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (lb6_action_l3(data, data_end, act, eth, ip6h))
		return SLUICE_ERR_REWRITE;
	if (rc == SLUICE_NAT_FRAG) {
		frag6_rewrite(*ip6h, act);
		return 0;
	}
	return icmp6_rewrite(data, data_end, *ip6h, act);
}

/* A packet of s->act, rewritten, too long for the next hop: undo the
 * rewrite and answer its sender with packet too big (the frame becomes
 * the answer, sent back with XDP_TX), if it may be answered and the
 * bucket has a token: SLUICE_FRAG_NEEDED, or why not. */
static __always_inline int xdp_ptb6(struct xdp_md *ctx,
				    struct lb6_scratch *s, __u16 mtu)
{
	struct ethhdr *eth;
	struct ipv6hdr *ip6h;
	int rc;

	pmtu6_invert(&s->act);
	if (xdp_rewrite6(ctx, &s->act, &eth, &ip6h))
		return SLUICE_ERR_REWRITE;
	rc = pmtu6_prepare((void *)(long)ctx->data, (void *)(long)ctx->data_end, s);
	if (rc)
		return rc;
	if (!reject_take())
		return SLUICE_ERR_RATE_LIMITED;
	rc = xdp_reject6_icmp_unreach(ctx, s);
	if (rc != SLUICE_REJECT_ICMP)
		return rc;
	return pmtu6_packet_too_big((void *)(long)ctx->data,
				    (void *)(long)ctx->data_end, mtu);
}

/* xdp_general() for IPv6: lb6_decide(), then the rewrite or the answer. */
static __always_inline int xdp_general6(struct xdp_md *ctx)
{
	struct lb6_scratch *s = lb6_scratch_get(LB6_SCRATCH_XDP);
	struct ethhdr *eth;
	struct ipv6hdr *ip6h;
	int rc, verdict = XDP_PASS;
	__u32 ifindex = 0;
	__u16 mtu = 0;

	if (!s)
		return XDP_PASS;
	__builtin_memset(&s->act, 0, sizeof(s->act));
	rc = lb6_decide(ctx, ctx->ingress_ifindex, (void *)(long)ctx->data,
			(void *)(long)ctx->data_end, ctx->data_end - ctx->data,
			s, 0);
	if (rc == SLUICE_NAT_FWD || rc == SLUICE_NAT_REPLY ||
	    rc == SLUICE_NAT_FRAG || rc == SLUICE_NAT_ICMP) {
		int nat = rc == SLUICE_NAT_FWD || rc == SLUICE_NAT_REPLY;

		if (nat ? xdp_rewrite6(ctx, &s->act, &eth, &ip6h) :
			  xdp_rewrite6_other(ctx, rc, &s->act, &eth, &ip6h)) {
			rc = SLUICE_ERR_REWRITE;
		} else if (cfg_fib_redirect) {
			/* The protocol the kernel's own route lookup takes:
			 * the upper layer's, or the first next header. */
			ifindex = xdp_fib6_forward(ctx, eth, ip6h,
						   !nat ? ip6h->nexthdr :
						   s->act.n.udp ? IPPROTO_UDP : IPPROTO_TCP,
						   &s->fib, &mtu);
			if (ifindex == FIB_FRAG_NEEDED) {
				/* A later fragment or an ICMPv6 error too
				 * long: the stack's to judge, as for IPv4. */
				ifindex = 0;
				if (nat) {
					rc = xdp_ptb6(ctx, s, mtu);
					verdict = XDP_TX;
				}
			} else {
				verdict = xdp_verdict(ctx, ifindex);
			}
		}
	} else if (rc == SLUICE_ERR_NO_BACKEND && s->act.n.reject) {
		rc = xdp_reject6(ctx, s);
		if (rc == SLUICE_REJECT_RST || rc == SLUICE_REJECT_ICMP)
			verdict = XDP_TX;
	}
	if (lb_account(rc, &s->act.n, ifindex != 0, cfg_fib_redirect && !ifindex))
		return XDP_DROP;
	return verdict;
}

/*
 * Every IPv6 frame, as sluice_xdp's tail call. A program of its own, on
 * purpose: the IPv4 program keeps its instructions, registers and stack,
 * and the IPv6 path gets a stack of its own (a subprogram's would add to
 * sluice_xdp's frame, about 400 of the chain's 512 bytes); the verifier
 * explores IPv6's states here, once.
 */
SEC("xdp")
int sluice_xdp6(struct xdp_md *ctx)
{
	int rc = xdp_fast6(ctx, (void *)(long)ctx->data,
			   (void *)(long)ctx->data_end);

	if (rc >= 0)
		return rc;
	return xdp_general6(ctx);
}

/* sluice_xdp6, the one entry: libbpf fills it in at load. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	/* A size, not a BTF type: the kernel takes no BTF for a program
	 * array, and libbpf would retry its creation without, warning. */
	__uint(key_size, sizeof(__u32));
	__array(values, int (struct xdp_md *));
} xdp_lb6_prog SEC(".maps") = {
	.values = { [0] = (void *)&sluice_xdp6 },
};

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	int rc = xdp_fast(ctx, (void *)(long)ctx->data,
			  (void *)(long)ctx->data_end);

	if (rc >= 0)
		return rc;
	if (rc == XDP_FAST_IPV6) {
		bpf_tail_call(ctx, &xdp_lb6_prog, 0);
		return XDP_PASS; /* not reached: the array is filled at load */
	}
	return xdp_general(ctx, rc == XDP_FAST_NEW_FLOW);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
