/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lb6.h: the load-balancing core for IPv6, lb.h's twin.
 *
 * The entry points send every IPv6 frame here through a subprogram of its
 * own (xdp_lb6, tc_lb6: noinline on purpose), so that the IPv4 program's
 * instructions and registers stay what they are and the verifier explores
 * IPv6's states inside it. The decision has lb_decide()'s shape: it parses,
 * finds the flow (conntrack6) or the service, picks the backend and fills in
 * a struct nat6_action, never writing to the packet.
 *
 * Stack: the subprogram runs on top of the IPv4 program's frame (about 400
 * bytes of the chain's 512), so the action, the keys and values it builds
 * and the answers' buffers are in a per-CPU map value, struct lb6_scratch,
 * one slot per kind of program (a lookup run from user space may be
 * interrupted by a packet on the same CPU; XDP and tc on one CPU run one
 * after the other). Every field a packet's decision reads is written by
 * that decision first: the action is zeroed, keys are filled whole.
 *
 * Decisions particular to IPv6 (plan and README): extension headers are
 * walked (parsing.h), a routing header with segments left passes, AH/ESP
 * and other upper layers pass; sources that cannot be forwarded
 * (unspecified, loopback, multicast, link-local) pass before any map is
 * read; ICMPv6 informational messages (ND, MLD, echo) pass before any map
 * is read; a UDP checksum of 0 is invalid (RFC 8200 §8.1): malformed.
 */
#ifndef SLUICE_LB6_H
#define SLUICE_LB6_H

#include <linux/ipv6.h>
#include "lb.h"
#include "ct6.h"
#include "icmp.h"

/*
 * What the entry point must do to an IPv6 packet: lb.h's action, whose
 * offsets, ports, ids and outcome flags mean what they mean for IPv4 (so
 * that lb_account() counts both families alike; ip_len is the fixed header
 * plus payload_len), with the addresses 16 bytes wide. The action's own
 * 4-byte address fields stay zero.
 */
struct nat6_action {
	struct nat_action n;
	__be32 old_addr[4];
	__be32 new_addr[4];
	__be32 peer_old_addr[4]; /* hairpin: the other address, before */
	__be32 peer_new_addr[4]; /* and after */
	__u32 quote_l4_off;      /* SLUICE_NAT_ICMP: the quoted L4 header (icmp6_nat.h) */
};

/* What an answer (reject6.h) takes from the packet it answers, read before
 * the frame is reshaped: reject4_orig's IPv6 twin. */
struct reject6_orig {
	__u8 dmac[ETH_ALEN];  /* the packet's destination: the answer's source */
	__u8 smac[ETH_ALEN];  /* the packet's source: the answer's destination */
	__be32 client[4];     /* the packet's source address */
	__be32 vip[4];        /* its destination address */
	__be16 sport;         /* TCP: the client's port */
	__be16 dport;         /* TCP: the service port */
	__be32 ack_seq;       /* TCP: the RST's acknowledgement number */
	__u32 hdrs_len;       /* the fixed header and the extension headers */
	__u32 quote_len;      /* UDP: bytes of the packet, from its IPv6 header, to quote */
};

/* The longest quote of an ICMPv6 answer: reject4's buffer, 128 bytes. */
#define REJECT6_QUOTE_MAX 128

/* The IPv6 path's working memory (see the top of the file). */
struct lb6_scratch {
	struct nat6_action act;
	struct ct6_key fk;       /* the packet's own tuple */
	struct ct6_key rk;       /* the flow's other entry's key */
	struct ct6_value nct;    /* an entry being written */
	struct svc_key sk;
	struct vip_key vk;
	struct rnat_key rnk;
	struct affinity_key ak;
	struct affinity_value av;
	struct bpf_fib_lookup fib;
	struct reject6_orig orig;
	__u32 quote[REJECT6_QUOTE_MAX / 4]; /* zero past the quote */
	__u8 answer[64] __attribute__((aligned(8))); /* an answer's headers */
};

/* struct lb6_scratch slots. */
#define LB6_SCRATCH_XDP 0
#define LB6_SCRATCH_TC 1
#define LB6_SCRATCH_LOOKUP 2

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, struct lb6_scratch);
} lb6_scratch SEC(".maps") __weak;

static __always_inline struct lb6_scratch *lb6_scratch_get(__u32 slot)
{
	return bpf_map_lookup_elem(&lb6_scratch, &slot);
}

/* The words of a packet's address, as loaded. */
#define IP6_SADDR(h) ((h)->saddr.in6_u.u6_addr32)
#define IP6_DADDR(h) ((h)->daddr.in6_u.u6_addr32)

/*
 * Whether an address may not be a source the balancer forwards or answers:
 * unspecified (::), loopback (::1), multicast (ff00::/8) or link-local
 * (fe80::/10, which must not leave its link, RFC 4291; XDP's redirect
 * would skip the kernel's scope check).
 */
static __always_inline int addr6_unforwardable(const __be32 *a)
{
	__u32 w0 = bpf_ntohl(a[0]);

	if ((w0 >> 24) == 0xff || (w0 & 0xffc00000) == 0xfe800000)
		return 1;
	return !(a[0] | a[1] | a[2]) && bpf_ntohl(a[3]) <= 1;
}

/* The VIP filter's bit of an IPv6 address, in the same bitmap as IPv4's:
 * the words folded by xor, then vip_filter_hash()'s multiplication
 * (src/dataplane/vip-filter.ts computes the same). */
static __always_inline __u32 vip6_filter_hash(const __be32 *a)
{
	return ((__u32)(a[0] ^ a[1] ^ a[2] ^ a[3]) * 0x9e3779b1U) >> 16;
}

static __always_inline int vip6_maybe(const __be32 *daddr)
{
	__u32 h = vip6_filter_hash(daddr);
	__u32 word = h >> 6;
	__u64 *w = bpf_map_lookup_elem(&vip_filter, &word);

	return w && (*w & (1ULL << (h & 63)));
}

static __always_inline int vip6_known(const __be32 *daddr,
				      struct vip_key *vk)
{
	if (!vip6_maybe(daddr))
		return 0;
	__builtin_memset(vk, 0, sizeof(*vk));
	addr6_copy(vk->addr, daddr);
	vk->family = SLUICE_AF_INET6;
	return bpf_map_lookup_elem(&vips, vk) != NULL;
}

/* backend_for_ct() for an IPv6 entry. */
static __always_inline struct backend_value *
backend6_for_ct(const struct ct6_value *ct)
{
	struct backend_value *be = backend_get(ct->backend_id);

	if (!be)
		return NULL;
	if (be->svc_id != ct->svc_id || be->family != SLUICE_AF_INET6 ||
	    !addr6_eq(be->addr, ct->nat_addr) || be->port != ct->nat_port)
		return NULL;
	return be;
}

/* ct_follow() for an IPv6 entry: shared by lb6_flow() and xdp_fast6. */
static __always_inline struct backend_value *
ct6_follow(const struct ct6_value *ct, __u8 syn_only)
{
	struct backend_value *be = backend6_for_ct(ct);

	if (!be)
		return NULL;
	if (syn_only && ((be->flags & SLUICE_BE_DRAINING) ||
			 ct->state == SLUICE_CT_CLOSING))
		return NULL;
	return be;
}

/* ct_reply_valid() for an IPv6 entry. */
static __always_inline int ct6_reply_valid(const struct ct6_value *ct,
					   const __be32 *saddr, __be16 sport)
{
	struct backend_value *be = backend_get(ct->backend_id);

	return be && be->svc_id == ct->svc_id &&
	       be->family == SLUICE_AF_INET6 && addr6_eq(be->addr, saddr) &&
	       be->port == sport;
}

/* The affinity entry of one IPv6 client of one service. */
static __always_inline void affinity6_key_of(struct affinity_key *ak,
					     const __be32 *client,
					     __u32 svc_id)
{
	__builtin_memset(ak, 0, sizeof(*ak));
	addr6_copy(ak->client, client);
	ak->svc_id = svc_id;
	ak->family = SLUICE_AF_INET6;
}

/* rnat_find() for an IPv6 source; `rk` is room for the key. */
static __always_inline struct rnat_value *rnat6_find(const __be32 *saddr,
						     __be16 sport, __u8 proto,
						     struct rnat_key *rk)
{
	if (!cfg_stateless_reply)
		return NULL;
	__builtin_memset(rk, 0, sizeof(*rk));
	addr6_copy(rk->addr, saddr);
	rk->port = sport;
	rk->proto = proto;
	rk->family = SLUICE_AF_INET6;
	return bpf_map_lookup_elem(&reply_nat, rk);
}

/* lb_rewrite_fwd() for IPv6: DNAT of `daddr`:`dport` to a backend. */
static __always_inline int lb6_rewrite_fwd(const __be32 *daddr, __be16 dport,
					   __u32 svc_id, __u32 backend_id,
					   const struct backend_value *be,
					   int new_flow,
					   struct nat6_action *act, int lookup)
{
	act->n.rewrite_dst = 1;
	addr6_copy(act->old_addr, daddr);
	addr6_copy(act->new_addr, be->addr);
	act->n.old_port = dport;
	act->n.new_port = be->port;
	act->n.svc_id = svc_id;
	act->n.backend_id = backend_id;
	act->n.new_flow = new_flow;
	if (lookup)
		return SLUICE_NAT_FWD;
	lb_stats_add(&svc_stats, svc_id, act->n.ip_len, new_flow, 0);
	lb_stats_add(&backend_stats, backend_id, act->n.ip_len, new_flow, 0);
	return SLUICE_NAT_FWD;
}

static __always_inline void lb6_hairpin(struct nat6_action *act,
					const __be32 *from, const __be32 *to)
{
	act->n.hairpin = 1;
	addr6_copy(act->peer_old_addr, from);
	addr6_copy(act->peer_new_addr, to);
}

/* lb_reply_restorable() for an IPv6 backend. */
static __always_inline int lb6_reply_restorable(const struct backend_value *be,
						__u32 id, __u8 proto,
						struct rnat_key *rk)
{
	struct rnat_value *rv = rnat6_find(be->addr, be->port, proto, rk);

	return rv && !(rv->flags & SLUICE_RNAT_AMBIGUOUS) && rv->backend_id == id;
}

/*
 * lb_new_flow() for IPv6: affinity by the client's address, else Maglev on
 * the flow hash of the 16-byte addresses; then the two conntrack6 entries,
 * as lb_new_flow() writes them, or none (RST, flood guard).
 */
static __always_inline int lb6_new_flow(const struct ipv6hdr *ip6h,
					__be16 sport, __be16 dport,
					__u8 proto, __u8 tflags,
					const struct svc_value *svc,
					__u64 now, __u32 now_s,
					struct lb6_scratch *s, int lookup)
{
	struct nat6_action *act = &s->act;
	const struct ct6_key *fk = &s->fk;
	struct ct6_key *rk = &s->rk;
	struct ct6_value *nct = &s->nct;
	struct ct6_value *held;
	struct backend_value *be = NULL;
	const __be32 *hairpin;
	__u32 backend_id = 0, svc_id = svc->id;
	int err;

	if (svc->flags & SLUICE_SVC_AFFINITY) {
		struct affinity_value *av;

		affinity6_key_of(&s->ak, fk->saddr, svc_id);
		av = bpf_map_lookup_elem(&affinity, &s->ak);
		if (av && now - av->last_seen_ns <=
				  (__u64)svc->affinity_timeout * SLUICE_NS_PER_SEC) {
			__u32 id = av->backend_id;

			be = backend_get(id);
			if (be && be->svc_id == svc_id &&
			    be->family == SLUICE_AF_INET6 &&
			    !(be->flags & SLUICE_BE_DRAINING)) {
				backend_id = id;
				if (!lookup)
					av->last_seen_ns = now;
				act->n.affinity_hit = 1;
				goto insert;
			}
			be = NULL;
		}
	}

	if (!svc->table_size) {
		act->n.reject = !(svc->flags & SLUICE_SVC_DROP_NO_BACKEND);
		return SLUICE_ERR_NO_BACKEND;
	}
	err = pick_maglev(svc, flow_hash(fk->saddr, fk->daddr, sport, dport, proto),
			  &backend_id);
	if (err)
		return err;
	be = backend_get(backend_id);
	/* The control plane gives a frontend only backends of its family. */
	if (!be || be->family != SLUICE_AF_INET6)
		return SLUICE_ERR_NO_BACKEND;

	if (!lookup && (svc->flags & SLUICE_SVC_AFFINITY)) {
		affinity6_key_of(&s->ak, fk->saddr, svc_id);
		s->av.backend_id = backend_id;
		s->av.pad = 0;
		s->av.last_seen_ns = now;
		bpf_map_update_elem(&affinity, &s->ak, &s->av, BPF_ANY);
	}

insert:
	hairpin = addr6_eq(be->addr, fk->saddr) ? hairpin6_addr() : NULL;
	if (hairpin)
		lb6_hairpin(act, fk->saddr, hairpin);
	__builtin_memset(rk, 0, sizeof(*rk));
	addr6_copy(rk->saddr, be->addr);
	addr6_copy(rk->daddr, hairpin ? hairpin : fk->saddr);
	rk->sport = be->port;
	rk->dport = sport;
	rk->proto = proto;
	if (lookup) {
		held = bpf_map_lookup_elem(&conntrack6, rk);
		if (held && ct_trackable(proto, tflags) &&
		    ct6_holds(held, fk->daddr, dport, now_s))
			return SLUICE_ERR_CT_CLASH;
		return lb6_rewrite_fwd(fk->daddr, dport, svc_id, backend_id, be,
				       1, act, 1);
	}
	if (!ct_trackable(proto, tflags) ||
	    (!ct_flood_ok(now_s) && !hairpin &&
	     lb6_reply_restorable(be, backend_id, proto, &s->rnk))) {
		act->n.untracked = 1;
		return lb6_rewrite_fwd(fk->daddr, dport, svc_id, backend_id, be,
				       1, act, 0);
	}
	addr6_copy(nct->nat_addr, be->addr);
	nct->nat_port = be->port;
	nct->state = ct_first_state(proto, tflags);
	nct->flags = hairpin ? SLUICE_CT_F_HAIRPIN : 0;
	nct->backend_id = backend_id;
	nct->svc_id = svc_id;
	nct->created = now_s;
	nct->expires = now_s + ct_timeout(proto, nct->state);
	if (bpf_map_update_elem(&conntrack6, fk, nct, BPF_ANY))
		return SLUICE_ERR_CT_FULL;

	addr6_copy(nct->nat_addr, fk->daddr);
	nct->nat_port = dport;
	nct->flags |= SLUICE_CT_F_REPLY;
	err = bpf_map_update_elem(&conntrack6, rk, nct, BPF_NOEXIST);
	if (err) {
		held = bpf_map_lookup_elem(&conntrack6, rk);
		if (held && ct6_holds(held, fk->daddr, dport, now_s)) {
			bpf_map_delete_elem(&conntrack6, fk);
			return SLUICE_ERR_CT_CLASH;
		}
		if (bpf_map_update_elem(&conntrack6, rk, nct, BPF_ANY))
			return SLUICE_ERR_CT_FULL;
	}
	return lb6_rewrite_fwd(fk->daddr, dport, svc_id, backend_id, be, 1,
			       act, 0);
}

/* lb_reply() for IPv6: the source restored to the entry's VIP:port. */
static __always_inline int lb6_reply(const __be32 *saddr, const __be32 *daddr,
				     __be16 sport, const struct ct6_value *ct,
				     struct nat6_action *act, int lookup)
{
	act->n.rewrite_dst = 0;
	addr6_copy(act->old_addr, saddr);
	addr6_copy(act->new_addr, ct->nat_addr);
	act->n.old_port = sport;
	act->n.new_port = ct->nat_port;
	act->n.svc_id = ct->svc_id;
	act->n.backend_id = ct->backend_id;
	if (ct->flags & SLUICE_CT_F_HAIRPIN)
		lb6_hairpin(act, daddr, saddr);
	if (lookup)
		return SLUICE_NAT_REPLY;
	lb_stats_add(&svc_stats, act->n.svc_id, act->n.ip_len, 0, 1);
	lb_stats_add(&backend_stats, act->n.backend_id, act->n.ip_len, 0, 1);
	return SLUICE_NAT_REPLY;
}

/* lb_stateless_reply() for IPv6 (its comment says why each test is there):
 * a backend's reply without an entry, restored through reply_nat and
 * tracked from here on. The packet's tuple is in s->fk. */
static __always_inline int lb6_stateless_reply(void *ctx, __u32 ifindex,
					       const struct ipv6hdr *ip6h,
					       __be16 sport, __be16 dport,
					       __u8 proto, __u8 tflags,
					       __u32 now,
					       struct lb6_scratch *s,
					       int lookup)
{
	struct nat6_action *act = &s->act;
	struct ct6_value *nct = &s->nct;
	struct ct6_key *fk = &s->rk;
	struct rnat_value *rv = rnat6_find(s->fk.saddr, sport, proto, &s->rnk);
	struct backend_value *be;
	struct svc_key *fe;
	__u32 svc_id, backend_id;
	int rc;

	if (!rv || (proto == IPPROTO_TCP &&
		    (tflags & (SLUICE_TCP_SYN | SLUICE_TCP_ACK)) == SLUICE_TCP_SYN))
		return SLUICE_PASS;
	if (ifindex && fib6_not_forwarded(ctx, ifindex, ip6h, proto, &s->fib))
		return SLUICE_PASS;
	if (rv->flags & SLUICE_RNAT_AMBIGUOUS) {
		act->n.reply_ambiguous = 1;
		return SLUICE_PASS;
	}
	backend_id = rv->backend_id;
	be = backend_get(backend_id);
	if (!be || be->family != SLUICE_AF_INET6 ||
	    !addr6_eq(be->addr, s->fk.saddr) || be->port != sport)
		return SLUICE_PASS;
	svc_id = be->svc_id;
	fe = bpf_map_lookup_elem(&svc_frontends, &svc_id);
	if (!fe || fe->family != SLUICE_AF_INET6 || fe->proto != proto)
		return SLUICE_PASS;

	addr6_copy(nct->nat_addr, fe->addr);
	nct->nat_port = fe->port;
	nct->state = ct_first_state(proto, tflags);
	nct->flags = SLUICE_CT_F_REPLY;
	nct->backend_id = backend_id;
	nct->svc_id = svc_id;
	nct->created = now;
	nct->expires = now + ct_timeout(proto, nct->state);
	act->n.reply_restored = 1;
	if (!lookup && !ct_trackable(proto, tflags))
		act->n.untracked = 1;
	else if (!lookup && bpf_map_update_elem(&conntrack6, &s->fk, nct, BPF_ANY))
		return SLUICE_ERR_CT_FULL;
	rc = lb6_reply(s->fk.saddr, s->fk.daddr, sport, nct, act, lookup);
	if (lookup || act->n.untracked)
		return rc;

	__builtin_memset(fk, 0, sizeof(*fk));
	addr6_copy(fk->saddr, s->fk.daddr);
	addr6_copy(fk->daddr, nct->nat_addr);
	fk->sport = dport;
	fk->dport = nct->nat_port;
	fk->proto = proto;
	addr6_copy(nct->nat_addr, be->addr);
	nct->nat_port = be->port;
	nct->flags = 0;
	if (bpf_map_update_elem(&conntrack6, fk, nct, BPF_NOEXIST)) {
		struct ct6_value *old = bpf_map_lookup_elem(&conntrack6, fk);

		if (old && (!ct_live_at(old->expires, now) || !backend6_for_ct(old)))
			bpf_map_update_elem(&conntrack6, fk, nct, BPF_ANY);
	}
	return rc;
}

/* lb_flow() for IPv6: conntrack6 on the packet's own tuple first, then the
 * VIP filter, the service, and a new flow. */
static __always_inline int lb6_flow(void *ctx, __u32 ifindex,
				    const struct ipv6hdr *ip6h, __be16 sport,
				    __be16 dport, __u8 proto, __u8 tflags,
				    struct lb6_scratch *s, int lookup)
{
	struct nat6_action *act = &s->act;
	struct ct6_key *fk = &s->fk;
	struct svc_key *sk = &s->sk;
	struct svc_value *svc;
	struct ct6_value *ct;
	__u8 syn_only = (tflags & (SLUICE_TCP_SYN | SLUICE_TCP_ACK)) == SLUICE_TCP_SYN;
	__u32 now = lb_now_s();

	__builtin_memset(fk, 0, sizeof(*fk));
	addr6_copy(fk->saddr, IP6_SADDR(ip6h));
	addr6_copy(fk->daddr, IP6_DADDR(ip6h));
	fk->sport = sport;
	fk->dport = dport;
	fk->proto = proto;
	ct = bpf_map_lookup_elem(&conntrack6, fk);
	if (ct && !ct_live_at(ct->expires, now)) {
		act->n.ct_expired = 1;
		ct = NULL;
	}
	if (ct && (ct->flags & SLUICE_CT_F_REPLY)) {
		if (ct6_reply_valid(ct, fk->saddr, sport)) {
			if (!lookup)
				ct6_touch(fk, ct, ct_next_state(proto, ct->state,
								tflags),
					  now, &s->rk, &s->nct);
			return lb6_reply(fk->saddr, fk->daddr, sport, ct, act,
					 lookup);
		}
		if (!lookup)
			bpf_map_delete_elem(&conntrack6, fk);
		act->n.reply_stale = 1;
		ct = NULL;
	}
	if (ct) {
		struct backend_value *be;

		act->n.to_vip = 1;
		be = ct6_follow(ct, syn_only);
		if (be) {
			const __be32 *hairpin = (ct->flags & SLUICE_CT_F_HAIRPIN) ?
							hairpin6_addr() : NULL;

			if (!lookup)
				ct6_touch(fk, ct, ct_next_state(proto, ct->state,
								tflags),
					  now, &s->rk, &s->nct);
			if (hairpin)
				lb6_hairpin(act, fk->saddr, hairpin);
			return lb6_rewrite_fwd(fk->daddr, dport, ct->svc_id,
					       ct->backend_id, be, 0, act,
					       lookup);
		}
		if (!syn_only || ct->state != SLUICE_CT_CLOSING ||
		    !backend6_for_ct(ct))
			act->n.rescheduled = 1;
	}

	if (!vip6_maybe(fk->daddr))
		return lb6_stateless_reply(ctx, ifindex, ip6h, sport, dport,
					   proto, tflags, now, s, lookup);
	__builtin_memset(sk, 0, sizeof(*sk));
	addr6_copy(sk->addr, fk->daddr);
	sk->port = dport;
	sk->proto = proto;
	sk->family = SLUICE_AF_INET6;
	svc = bpf_map_lookup_elem(&services, sk);
	if (!svc) {
		if (!vip6_known(fk->daddr, &s->vk))
			return lb6_stateless_reply(ctx, ifindex, ip6h, sport,
						   dport, proto, tflags, now,
						   s, lookup);
		act->n.to_vip = 1;
		return SLUICE_ERR_NO_SERVICE;
	}
	act->n.to_vip = 1;
	return lb6_new_flow(ip6h, sport, dport, proto, tflags, svc, lb_now(),
			    now, s, lookup);
}

/* lb6_decide()'s hooks for fragments and ICMPv6 errors: they use the above. */
#include "frag6.h"
#include "icmp6_nat.h"

/*
 * Decide what to do with an IPv6 frame: lb_decide()'s outcomes, the action
 * in s->act (zeroed by the caller).
 */
static __always_inline int lb6_decide(void *ctx, __u32 ifindex, void *data,
				      void *data_end, __u32 frame_len,
				      struct lb6_scratch *s, const int lookup)
{
	struct nat6_action *act = &s->act;
	struct cursor c = { .pos = data };
	struct ipv6_frag_info frag = {};
	struct ethhdr *eth;
	struct ipv6hdr *ip6h;
	__be16 sport, dport;
	__u8 tflags = 0;
	__u32 l4_len;
	int proto, rc;

	proto = parse_ethhdr(&c, data_end, &eth);
	if (proto < 0)
		return proto;
	if (proto != bpf_htons(ETH_P_IPV6))
		return SLUICE_PASS;

	act->n.l3_off = c.pos - data;
	proto = parse_ipv6hdr(&c, data_end, frame_len - act->n.l3_off, &ip6h,
			      &l4_len, &frag);
	if (proto < 0) {
		/* As IPv4: dropped when it claims to be for a VIP. */
		struct ipv6hdr *h = c.pos;

		if ((void *)(h + 1) <= data_end)
			act->n.to_vip = vip6_known(IP6_DADDR(h), &s->vk);
		return proto;
	}
	if (proto == SLUICE_IPV6_WAYPOINT)
		return SLUICE_PASS;
	act->n.l4_off = c.pos - data;
	act->n.ip_len = sizeof(*ip6h) + bpf_ntohs(ip6h->payload_len);
	if (addr6_unforwardable(IP6_SADDR(ip6h)))
		return SLUICE_PASS;

	if (frag.present && frag.offset)
		return frag6_later(ip6h, &frag, s, lookup);

	if (proto == IPPROTO_TCP) {
		struct tcphdr *th;
		int err = parse_tcphdr(&c, data_end, l4_len, &th);

		if (err < 0) {
			act->n.to_vip = vip6_known(IP6_DADDR(ip6h), &s->vk);
			return err;
		}
		sport = th->source;
		dport = th->dest;
		tflags = ((__u8 *)th)[13];
		act->n.l4_check_off = act->n.l4_off + offsetof(struct tcphdr, check);
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *uh;
		int err = parse_udphdr(&c, data_end, l4_len, frag.present, &uh);

		/* A UDP checksum of 0 is no checksum, which IPv6 forbids. */
		if (!err && !uh->check)
			err = SLUICE_ERR_MALFORMED;
		if (err < 0) {
			act->n.to_vip = vip6_known(IP6_DADDR(ip6h), &s->vk);
			return err;
		}
		sport = uh->source;
		dport = uh->dest;
		act->n.udp = 1;
		act->n.l4_check_off = act->n.l4_off + offsetof(struct udphdr, check);
	} else if (proto == SLUICE_NEXTHDR_ICMP6 && !frag.present) {
		return icmp6_decide(&c, data, data_end, ip6h, l4_len, s, lookup);
	} else {
		/* AH, ESP, no next header, anything else: not ours. */
		return SLUICE_PASS;
	}

	rc = lb6_flow(ctx, ifindex, ip6h, sport, dport, proto, tflags, s,
		      lookup);
	if (frag.present)
		return frag6_first(ip6h, &frag, rc, s, lookup);
	return rc;
}

/*
 * lb_action_l3()/lb_action_headers() for an IPv6 action: the headers
 * found again from its offsets. l3 is 14; l4 at most 14 + 40 + 256.
 */
static __always_inline int lb6_action_l3(void *data, void *data_end,
					 const struct nat6_action *act,
					 struct ethhdr **eth,
					 struct ipv6hdr **ip6h)
{
	__u32 l3 = act->n.l3_off & 0x3f;

	if (l3 != act->n.l3_off || l3 < sizeof(struct ethhdr))
		return SLUICE_ERR_REWRITE;
	*eth = data;
	*ip6h = data + l3;
	if ((void *)(*eth + 1) > data_end || (void *)(*ip6h + 1) > data_end)
		return SLUICE_ERR_REWRITE;
	return 0;
}

static __always_inline int lb6_action_headers(void *data, void *data_end,
					      const struct nat6_action *act,
					      struct ethhdr **eth,
					      struct ipv6hdr **ip6h,
					      __be16 **ports, __sum16 **check)
{
	__u32 l4 = act->n.l4_off & 0x1ff;

	if (l4 != act->n.l4_off || lb6_action_l3(data, data_end, act, eth, ip6h))
		return SLUICE_ERR_REWRITE;
	if (act->n.udp) {
		struct udphdr *uh = data + l4;

		if ((void *)(uh + 1) > data_end)
			return SLUICE_ERR_REWRITE;
		*ports = &uh->source;
		*check = &uh->check;
	} else {
		struct tcphdr *th = data + l4;

		if ((void *)(th + 1) > data_end)
			return SLUICE_ERR_REWRITE;
		*ports = &th->source;
		*check = &th->check;
	}
	return 0;
}

#endif /* SLUICE_LB6_H */
