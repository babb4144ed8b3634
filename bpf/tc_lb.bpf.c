// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc_lb.bpf.c: the load balancer at tc clsact (direct action), for paths
 * where XDP does not fit: a pod's host-side veth, egress, or a device
 * without native XDP. Same core as XDP (lb_decide, without XDP's fast
 * path); the L4 checksum goes through the skb helpers, which keep offloaded
 * (CHECKSUM_PARTIAL) checksums correct. A packet for a service without a
 * usable backend may be answered in its place (reject.h): the skb becomes
 * the answer and is redirected back towards its sender.
 */
#include <linux/pkt_cls.h>
#include "include/lb.h"
#include "include/lb6.h"
#include "include/csum.h"
#include "include/fib.h"
#include "include/reject.h"
#include "include/pmtu.h"
#include "include/reject6.h"
#include "include/pmtu6.h"

/* Enough linear data for Ethernet, IPv4 with options and a TCP header. */
#define SLUICE_TC_PULL (sizeof(struct ethhdr) + 60 + sizeof(struct tcphdr))
/* For IPv6: the fixed header, the most extension headers the walk takes,
 * and a TCP header with options. */
#define SLUICE_TC6_PULL (sizeof(struct ethhdr) + sizeof(struct ipv6hdr) + \
			 SLUICE_IPV6_EXT_MAX_BYTES + 60)

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

/*
 * Make the skb a plain packet before it becomes an answer. It keeps the
 * checksum state of the packet it was, which a program can neither read
 * nor set: a CHECKSUM_PARTIAL one (from a sender with checksum offload: a
 * pod's veth, this host's own sockets) has its checksum completed, or
 * trusted unchecked, from csum_start, its L4 header, which is not where
 * the answer's L4 header will be (nor, for an ICMP answer, its checksum
 * field). Cutting bytes at the network layer until the data starts past
 * csum_start is what makes the kernel give that state up
 * (skb_postpull_rcsum: CHECKSUM_NONE); the frame is extended first if it
 * is too short to cut that much. What is cut is the packet's IP options,
 * its L4 header and a byte more, all of it read before.
 */
static __always_inline int tc_reject_plain(struct __sk_buff *skb, __u32 ihl_len)
{
	__u32 base = sizeof(struct ethhdr) + sizeof(struct iphdr);
	__u32 cut = sizeof(struct ethhdr) + ihl_len + 1;

	if (skb->len < base + cut && bpf_skb_change_tail(skb, base + cut, 0))
		return SLUICE_ERR_REWRITE;
	if (bpf_skb_adjust_room(skb, -(int)cut, BPF_ADJ_ROOM_NET, 0))
		return SLUICE_ERR_REWRITE;
	return 0;
}

/* Cut or extend the skb to `len` bytes. Two calls: the length always
 * changes, and a change of length is what turns a CHECKSUM_COMPLETE skb
 * (whose sum the answer's bytes would no longer match) into
 * CHECKSUM_NONE. */
static __always_inline int tc_reject_resize(struct __sk_buff *skb, __u32 len)
{
	if (bpf_skb_change_tail(skb, len - 1, 0) || bpf_skb_change_tail(skb, len, 0))
		return SLUICE_ERR_REWRITE;
	return 0;
}

/* A SYN becomes its RST: a plain skb of the RST's length, its headers
 * written over it. */
static __always_inline int tc_reject4_tcp_rst(struct __sk_buff *skb,
					      const struct reject4_orig *o)
{
	struct reject4_rst r;
	void *data;

	reject4_tcp_rst(&r, o);
	if (tc_reject_plain(skb, o->ihl_len) || tc_reject_resize(skb, REJECT4_RST_LEN))
		return SLUICE_ERR_REWRITE;
	data = (void *)(long)skb->data;
	if (data + REJECT4_RST_LEN > (void *)(long)skb->data_end)
		return SLUICE_ERR_REWRITE;
	reject4_eth(data, o);
	__builtin_memcpy(data + sizeof(struct ethhdr), &r, sizeof(r));
	return SLUICE_REJECT_RST;
}

/* A UDP datagram becomes its ICMP port unreachable: the quote read into the
 * stack, a plain skb of the answer's length, the quote written back after
 * the headers. */
static __always_inline int tc_reject4_icmp_unreach(struct __sk_buff *skb,
						   const struct nat_action *act,
						   const struct reject4_orig *o)
{
	struct reject4_quote q = {};
	struct reject4_unreach u;
	__u32 len = reject4_quote_len(o);
	void *data;

	if (bpf_skb_load_bytes(skb, act->l3_off, &q, len))
		return SLUICE_ERR_REWRITE;
	reject4_icmp_unreach(&u, o, &q, len);
	if (tc_reject_plain(skb, o->ihl_len) ||
	    tc_reject_resize(skb, REJECT4_ICMP_LEN + len) ||
	    bpf_skb_store_bytes(skb, REJECT4_ICMP_LEN, &q, len, 0))
		return SLUICE_ERR_REWRITE;
	data = (void *)(long)skb->data;
	if (data + REJECT4_ICMP_LEN > (void *)(long)skb->data_end)
		return SLUICE_ERR_REWRITE;
	reject4_eth(data, o);
	__builtin_memcpy(data + sizeof(struct ethhdr), &u, sizeof(u));
	return SLUICE_REJECT_ICMP;
}

/* Answer the packet of `act`, for a service without a usable backend, if
 * it may be answered and the bucket has a token: SLUICE_REJECT_* (the skb
 * is now the answer), or why not. */
static __always_inline int tc_reject4(struct __sk_buff *skb,
				      const struct nat_action *act)
{
	struct reject4_orig o = {};
	int err = reject4_prepare((void *)(long)skb->data,
				  (void *)(long)skb->data_end, act, &o);

	if (err)
		return err;
	if (!reject_take())
		return SLUICE_ERR_RATE_LIMITED;
	if (act->udp)
		return tc_reject4_icmp_unreach(skb, act, &o);
	return tc_reject4_tcp_rst(skb, &o);
}

/* The length of the packets the FIB lookup judges: the IP total length, or
 * for a GSO skb (GRO merges a flow's segments on the way in) that of one
 * segment as it will leave: its headers and gso_size bytes. */
static __always_inline __u16 tc_fib_len(struct __sk_buff *skb,
					const struct nat_action *act,
					const struct iphdr *iph)
{
	__u8 doff = 0;
	__u32 l4_hdr = sizeof(struct udphdr);

	if (!skb->gso_size)
		return bpf_ntohs(iph->tot_len);
	if (!act->udp) {
		if (bpf_skb_load_bytes(skb, act->l4_off + 12, &doff, 1))
			return bpf_ntohs(iph->tot_len);
		l4_hdr = (doff >> 4) * 4;
	}
	return act->l4_off - act->l3_off + l4_hdr + skb->gso_size;
}

/* The rewrite of a later fragment (frag.h) or an ICMP error (icmp_nat.h):
 * direct writes, every one summed into the checksum that covers it. */
static __always_inline int tc_rewrite_other(struct __sk_buff *skb, int rc,
					    const struct nat_action *act)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth;
	struct iphdr *iph;

	if (lb_action_l3(data, data_end, act, &eth, &iph))
		return SLUICE_ERR_REWRITE;
	if (rc == SLUICE_NAT_FRAG) {
		frag4_rewrite(iph, act);
		return 0;
	}
	return icmp4_rewrite(data, data_end, iph, act);
}

/* A DF packet of `act`, rewritten, too long for the next hop: undo the
 * rewrite and answer its sender with fragmentation needed (the skb
 * becomes the answer), if it may be answered and the bucket has a token:
 * SLUICE_FRAG_NEEDED, or why not. */
static __always_inline int tc_frag_needed(struct __sk_buff *skb,
					  struct nat_action *act, __u16 mtu)
{
	struct reject4_orig o = {};
	int rc;

	pmtu_invert(act);
	if (tc_rewrite(skb, act))
		return SLUICE_ERR_REWRITE;
	rc = pmtu_prepare((void *)(long)skb->data, (void *)(long)skb->data_end,
			  act, &o);
	if (rc)
		return rc;
	if (!reject_take())
		return SLUICE_ERR_RATE_LIMITED;
	rc = tc_reject4_icmp_unreach(skb, act, &o);
	if (rc != SLUICE_REJECT_ICMP)
		return rc;
	return pmtu_frag_needed((void *)(long)skb->data,
				(void *)(long)skb->data_end, mtu);
}

/* Where an answer goes: at ingress, back out of the device it came in by
 * (on a pod's host-side veth, into the pod); at egress (a packet of this
 * host's own, or one it forwards), into the device's ingress, so that the
 * host's stack takes it. At ingress skb->ifindex is the device the packet
 * arrived on, which is what ingress_ifindex says; at egress it is the
 * device it leaves by. */
static __always_inline int tc_reject_verdict(struct __sk_buff *skb)
{
	return bpf_redirect(skb->ifindex,
			    skb->ingress_ifindex == skb->ifindex ? 0 : BPF_F_INGRESS);
}

/*
 * tc_rewrite() for IPv6: the addresses and ports written directly, the L4
 * checksum through bpf_l4_csum_replace, the address's change "by diff"
 * (size 0: the 16-byte delta as a sum) with the pseudo-header flag, then
 * the port's, so that a CHECKSUM_PARTIAL seed stays right. There is no IP
 * header checksum. MARK_MANGLED_0 sends a computed 0 as 0xffff (a UDP
 * checksum of 0 never gets here: lb6_decide refuses it).
 */
static __always_inline int tc_rewrite6(struct __sk_buff *skb,
				       const struct nat6_action *act)
{
	__u64 l4_flags = act->n.udp ? BPF_F_MARK_MANGLED_0 : 0;
	struct ethhdr *eth;
	struct ipv6hdr *ip6h;
	__be16 *ports;
	__sum16 *check;
	int err = lb6_action_headers((void *)(long)skb->data,
				     (void *)(long)skb->data_end, act,
				     &eth, &ip6h, &ports, &check);

	if (err)
		return err;
	if (act->n.rewrite_dst) {
		addr6_copy(IP6_DADDR(ip6h), act->new_addr);
		ports[1] = act->n.new_port;
	} else {
		addr6_copy(IP6_SADDR(ip6h), act->new_addr);
		ports[0] = act->n.new_port;
	}
	if (act->n.hairpin)
		addr6_copy(act->n.rewrite_dst ? IP6_SADDR(ip6h) : IP6_DADDR(ip6h),
			   act->peer_new_addr);
	/* The helpers may move the packet: no packet pointer is used after. */
	if (bpf_l4_csum_replace(skb, act->n.l4_check_off, 0,
				csum_delta16(0, act->old_addr, act->new_addr),
				l4_flags | BPF_F_PSEUDO_HDR))
		return SLUICE_ERR_REWRITE;
	if (bpf_l4_csum_replace(skb, act->n.l4_check_off, act->n.old_port,
				act->n.new_port, l4_flags | sizeof(__be16)))
		return SLUICE_ERR_REWRITE;
	if (act->n.hairpin &&
	    bpf_l4_csum_replace(skb, act->n.l4_check_off, 0,
				csum_delta16(0, act->peer_old_addr,
					     act->peer_new_addr),
				l4_flags | BPF_F_PSEUDO_HDR))
		return SLUICE_ERR_REWRITE;
	return 0;
}

/* tc_reject_plain() for IPv6: bytes cut past the fixed header (the
 * extension headers, the L4 header and a byte more), so that the data
 * starts past csum_start. */
static __always_inline int tc_reject6_plain(struct __sk_buff *skb,
					    __u32 hdrs_len)
{
	__u32 base = sizeof(struct ethhdr) + sizeof(struct ipv6hdr);
	__u32 cut = sizeof(struct ethhdr) + (hdrs_len & 0x1ff) + 1;

	if (skb->len < base + cut && bpf_skb_change_tail(skb, base + cut, 0))
		return SLUICE_ERR_REWRITE;
	if (bpf_skb_adjust_room(skb, -(int)cut, BPF_ADJ_ROOM_NET, 0))
		return SLUICE_ERR_REWRITE;
	return 0;
}

static __always_inline int tc_reject6_tcp_rst(struct __sk_buff *skb,
					      struct lb6_scratch *s)
{
	struct reject6_rst *r = reject6_tcp_rst(s);
	void *data;

	if (tc_reject6_plain(skb, s->orig.hdrs_len) ||
	    tc_reject_resize(skb, REJECT6_RST_LEN))
		return SLUICE_ERR_REWRITE;
	data = (void *)(long)skb->data;
	if (data + REJECT6_RST_LEN > (void *)(long)skb->data_end)
		return SLUICE_ERR_REWRITE;
	reject6_eth(data, &s->orig);
	__builtin_memcpy(data + sizeof(struct ethhdr), r, sizeof(*r));
	return SLUICE_REJECT_RST;
}

static __always_inline int tc_reject6_icmp_unreach(struct __sk_buff *skb,
						   struct lb6_scratch *s)
{
	struct reject6_unreach *u;
	__u32 len = reject6_quote_len(&s->orig);
	void *data;

	__builtin_memset(s->quote, 0, sizeof(s->quote));
	if (bpf_skb_load_bytes(skb, s->act.n.l3_off, s->quote, len))
		return SLUICE_ERR_REWRITE;
	u = reject6_icmp_unreach(s, len);
	if (tc_reject6_plain(skb, s->orig.hdrs_len) ||
	    tc_reject_resize(skb, REJECT6_ICMP_LEN + len) ||
	    bpf_skb_store_bytes(skb, REJECT6_ICMP_LEN, s->quote, len, 0))
		return SLUICE_ERR_REWRITE;
	data = (void *)(long)skb->data;
	if (data + REJECT6_ICMP_LEN > (void *)(long)skb->data_end)
		return SLUICE_ERR_REWRITE;
	reject6_eth(data, &s->orig);
	__builtin_memcpy(data + sizeof(struct ethhdr), u, sizeof(*u));
	return SLUICE_REJECT_ICMP;
}

static __always_inline int tc_reject6(struct __sk_buff *skb,
				      struct lb6_scratch *s)
{
	int err = reject6_prepare((void *)(long)skb->data,
				  (void *)(long)skb->data_end, s);

	if (err)
		return err;
	if (!reject_take())
		return SLUICE_ERR_RATE_LIMITED;
	if (s->act.n.udp)
		return tc_reject6_icmp_unreach(skb, s);
	return tc_reject6_tcp_rst(skb, s);
}

/* tc_fib_len() for IPv6: the fixed header and payload_len, or one GSO
 * segment's length. */
static __always_inline __u16 tc_fib6_len(struct __sk_buff *skb,
					 const struct nat6_action *act,
					 const struct ipv6hdr *ip6h)
{
	__u8 doff = 0;
	__u32 l4_hdr = sizeof(struct udphdr);

	if (!skb->gso_size)
		return sizeof(*ip6h) + bpf_ntohs(ip6h->payload_len);
	if (!act->n.udp) {
		if (bpf_skb_load_bytes(skb, act->n.l4_off + 12, &doff, 1))
			return sizeof(*ip6h) + bpf_ntohs(ip6h->payload_len);
		l4_hdr = (doff >> 4) * 4;
	}
	return act->n.l4_off - act->n.l3_off + l4_hdr + skb->gso_size;
}

/*
 * The rewrite of a later fragment (frag6.h) or an ICMPv6 error
 * (icmp6_nat.h). An error's changes are direct writes, each summed into
 * the ICMPv6 checksum that covers it (icmp6_nat.h). A fragment's addresses
 * are covered by no checksum in the fragment itself, so they are stored
 * through the helper that keeps a CHECKSUM_COMPLETE skb's sum right.
 */
static __always_inline int tc_rewrite6_other(struct __sk_buff *skb, int rc,
					     const struct nat6_action *act)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth;
	struct ipv6hdr *ip6h;
	__u32 addr, peer;

	if (lb6_action_l3(data, data_end, act, &eth, &ip6h))
		return SLUICE_ERR_REWRITE;
	if (rc != SLUICE_NAT_FRAG)
		return icmp6_rewrite(data, data_end, ip6h, act);
	addr = act->n.l3_off + (act->n.rewrite_dst ? offsetof(struct ipv6hdr, daddr) :
						    offsetof(struct ipv6hdr, saddr));
	peer = act->n.l3_off + (act->n.rewrite_dst ? offsetof(struct ipv6hdr, saddr) :
						    offsetof(struct ipv6hdr, daddr));
	if (bpf_skb_store_bytes(skb, addr, act->new_addr, 16, BPF_F_RECOMPUTE_CSUM))
		return SLUICE_ERR_REWRITE;
	if (act->n.hairpin &&
	    bpf_skb_store_bytes(skb, peer, act->peer_new_addr, 16, BPF_F_RECOMPUTE_CSUM))
		return SLUICE_ERR_REWRITE;
	return 0;
}

/* A packet of s->act, rewritten, too long for the next hop: undo the
 * rewrite and answer its sender with packet too big (the skb becomes the
 * answer), if it may be answered and the bucket has a token:
 * SLUICE_FRAG_NEEDED, or why not. */
static __always_inline int tc_ptb6(struct __sk_buff *skb,
				   struct lb6_scratch *s, __u16 mtu)
{
	int rc;

	pmtu6_invert(&s->act);
	if (tc_rewrite6(skb, &s->act))
		return SLUICE_ERR_REWRITE;
	rc = pmtu6_prepare((void *)(long)skb->data, (void *)(long)skb->data_end, s);
	if (rc)
		return rc;
	if (!reject_take())
		return SLUICE_ERR_RATE_LIMITED;
	rc = tc_reject6_icmp_unreach(skb, s);
	if (rc != SLUICE_REJECT_ICMP)
		return rc;
	return pmtu6_packet_too_big((void *)(long)skb->data,
				    (void *)(long)skb->data_end, mtu);
}

/*
 * Every IPv6 packet: sluice_tc's flow for IPv6, as its tail call. A
 * program of its own on purpose, as sluice_xdp6: the IPv4 program keeps
 * its instructions, registers and stack, and IPv6 gets a stack of its own.
 */
SEC("tc")
int sluice_tc6(struct __sk_buff *skb)
{
	struct lb6_scratch *s = lb6_scratch_get(LB6_SCRATCH_TC);
	__u32 pull = skb->len < SLUICE_TC6_PULL ? skb->len : SLUICE_TC6_PULL;
	__u32 ifindex = 0;
	__u16 mtu = 0;
	int rc, verdict = TC_ACT_OK;
	int egress = skb->ingress_ifindex != skb->ifindex;

	if (!s)
		return TC_ACT_OK;
	if ((long)skb->data_end - (long)skb->data < pull)
		bpf_skb_pull_data(skb, pull);
	__builtin_memset(&s->act, 0, sizeof(s->act));
	rc = lb6_decide(skb, skb->ingress_ifindex ?: skb->ifindex,
			(void *)(long)skb->data, (void *)(long)skb->data_end,
			skb->len, s, 0);
	if (rc == SLUICE_NAT_FWD || rc == SLUICE_NAT_REPLY ||
	    rc == SLUICE_NAT_FRAG || rc == SLUICE_NAT_ICMP) {
		int nat = rc == SLUICE_NAT_FWD || rc == SLUICE_NAT_REPLY;

		if (nat ? tc_rewrite6(skb, &s->act) : tc_rewrite6_other(skb, rc, &s->act)) {
			rc = SLUICE_ERR_REWRITE;
		} else if (cfg_fib_redirect && !egress) {
			struct ethhdr *eth;
			struct ipv6hdr *ip6h;

			/* The skb helpers invalidated every packet pointer.
			 * The protocol is the one the kernel's own route
			 * lookup takes: the upper layer's, or the first next
			 * header. */
			if (!lb6_action_l3((void *)(long)skb->data,
					   (void *)(long)skb->data_end,
					   &s->act, &eth, &ip6h))
				ifindex = fib6_forward(skb, skb->ingress_ifindex ?
								  skb->ingress_ifindex :
								  skb->ifindex,
						       eth, ip6h,
						       !nat ? ip6h->nexthdr :
						       s->act.n.udp ? IPPROTO_UDP : IPPROTO_TCP,
						       nat ? tc_fib6_len(skb, &s->act, ip6h) :
							     sizeof(*ip6h) + bpf_ntohs(ip6h->payload_len),
						       &s->fib, &mtu);
			if (ifindex == FIB_FRAG_NEEDED) {
				/* A later fragment or an ICMPv6 error too
				 * long: the stack's to judge, as for IPv4. */
				ifindex = 0;
				if (nat) {
					rc = tc_ptb6(skb, s, mtu);
					if (rc == SLUICE_FRAG_NEEDED)
						verdict = tc_reject_verdict(skb);
				}
			}
			if (ifindex)
				verdict = bpf_redirect(ifindex, 0);
		}
	} else if (rc == SLUICE_ERR_NO_BACKEND && s->act.n.reject) {
		rc = tc_reject6(skb, s);
		if (rc == SLUICE_REJECT_RST || rc == SLUICE_REJECT_ICMP)
			verdict = tc_reject_verdict(skb);
	}
	if (lb_account(rc, &s->act.n, ifindex != 0,
		       cfg_fib_redirect && !egress && !ifindex))
		return TC_ACT_SHOT;
	return verdict;
}

/* sluice_tc6, the one entry: libbpf fills it in at load. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	/* A size, not a BTF type: the kernel takes no BTF for a program
	 * array, and libbpf would retry its creation without, warning. */
	__uint(key_size, sizeof(__u32));
	__array(values, int (struct __sk_buff *));
} tc_lb6_prog SEC(".maps") = {
	.values = { [0] = (void *)&sluice_tc6 },
};

SEC("tc")
int sluice_tc(struct __sk_buff *skb)
{
	struct nat_action act = {};
	void *data, *data_end;
	__u32 pull = skb->len < SLUICE_TC_PULL ? skb->len : SLUICE_TC_PULL;
	__u32 ifindex = 0;
	__u16 mtu = 0;
	int rc, verdict = TC_ACT_OK;
	/* At clsact egress (a pod's link, towards the pod: replies of backends
	 * reached through routing) the packet already leaves where it must, so
	 * it is rewritten in place, never redirected. At ingress the kernel has
	 * just set ingress_ifindex to this interface's own. */
	int egress = skb->ingress_ifindex != skb->ifindex;

	/* The skb says its protocol: no packet read to tell IPv6. */
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		bpf_tail_call(skb, &tc_lb6_prog, 0);
		return TC_ACT_OK; /* not reached: the array is filled at load */
	}
	/* Headers may sit in paged data; pull them into the linear part. */
	if ((long)skb->data_end - (long)skb->data < pull)
		bpf_skb_pull_data(skb, pull);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;

	rc = lb_decide(skb, skb->ingress_ifindex ?: skb->ifindex, data,
		       data_end, skb->len, 0, &act, 0);
	if (rc == SLUICE_NAT_FWD || rc == SLUICE_NAT_REPLY ||
	    rc == SLUICE_NAT_FRAG || rc == SLUICE_NAT_ICMP) {
		if (rc == SLUICE_NAT_FWD || rc == SLUICE_NAT_REPLY ?
			    tc_rewrite(skb, &act) : tc_rewrite_other(skb, rc, &act)) {
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
						      eth, iph,
						      tc_fib_len(skb, &act, iph),
						      &mtu);
			if (ifindex == FIB_FRAG_NEEDED) {
				/* Fragments and ICMP errors never carry DF
				 * from Linux; from elsewhere, the stack
				 * judges them. */
				ifindex = 0;
				if (rc == SLUICE_NAT_FWD || rc == SLUICE_NAT_REPLY) {
					rc = tc_frag_needed(skb, &act, mtu);
					if (rc == SLUICE_FRAG_NEEDED)
						verdict = tc_reject_verdict(skb);
				}
			}
			if (ifindex)
				verdict = bpf_redirect(ifindex, 0);
		}
	} else if (rc == SLUICE_ERR_NO_BACKEND && act.reject) {
		rc = tc_reject4(skb, &act);
		if (rc == SLUICE_REJECT_RST || rc == SLUICE_REJECT_ICMP)
			verdict = tc_reject_verdict(skb);
	}
	if (lb_account(rc, &act, ifindex != 0,
		       cfg_fib_redirect && !egress && !ifindex))
		return TC_ACT_SHOT;
	return verdict;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
