/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lb.h: the load-balancing core shared by the XDP and tc entry points.
 *
 * lb_decide() parses a frame, finds its flow (conntrack) or else its service,
 * picks the backend (ClientIP affinity, then Maglev) and fills in a
 * struct nat_action describing the rewrite. It never writes to the packet:
 * each entry point applies the rewrite its own way (XDP: direct writes and
 * incremental checksums; tc: the skb helpers, which know about offloaded
 * checksums) and forwards the result. At XDP most packets never get here:
 * xdp_lb.bpf.c's fast path settles tracked flows and traffic for no VIP
 * itself, following entries with ct_follow() and counting with
 * lb_count_nat(), so that both paths agree.
 *
 * The decision's functions take `lookup`, a constant at every call site: 0
 * on the packet path; 1 for sluice_lookup (lookup.bpf.c), which asks what a
 * packet would get without doing it: no conntrack or affinity entry is
 * written, no timestamp refreshed, nothing counted. Everything is inlined,
 * so each program keeps only its own side of every test of `lookup`.
 */
#ifndef SLUICE_LB_H
#define SLUICE_LB_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <stddef.h>

#include "sluice_shared.h"
#include "config.h"
#include "clock.h"
#include "errors.h"
#include "maps.h"
#include "parsing.h"
#include "hash.h"
#include "stats.h"
#include "hairpin.h"
#include "ct.h"
#include "fib.h"

#define SLUICE_IP_MF 0x2000
#define SLUICE_IP_OFFSET 0x1fff
#define SLUICE_NS_PER_SEC 1000000000ULL

/* What the entry point must do to the packet. */
struct nat_action {
	__u32 l3_off;      /* offset of the IPv4 header from the frame start */
	__u32 l4_off;      /* offset of the TCP/UDP header */
	__u32 l4_check_off;/* offset of the L4 checksum field */
	__u8 rewrite_dst;  /* 1: DNAT (daddr/dport); 0: reverse NAT (saddr/sport) */
	__u8 udp;          /* L4 is UDP: a zero checksum stays zero */
	__u8 reply_restored;  /* a reply without an entry, restored by reply_nat */
	__u8 reply_ambiguous; /* a reply without an entry, from an endpoint of several service ports */
	__be32 old_addr;
	__be32 new_addr;
	__be16 old_port;
	__be16 new_port;
	__u32 ip_len;      /* IP total length, for the byte counters */
	__u32 svc_id;
	__u32 backend_id;
	/* Set when the decision was reached because the destination is a VIP;
	 * lets the exit tell drop_malformed from passed_malformed. */
	__u8 to_vip;
	__u8 new_flow;
	__u8 affinity_hit;
	__u8 rescheduled;
	/* SLUICE_CT_F_HAIRPIN (hairpin.h): the other address is rewritten too,
	 * its port kept: the source of a DNAT, the destination of a reply. */
	__u8 hairpin;
	__be32 peer_old_addr;
	__be32 peer_new_addr;
	/* With SLUICE_ERR_NO_BACKEND: the service has no usable backend and
	 * does not say drop, so the entry point may answer the packet
	 * (reject.h decides whether this one can be). */
	__u8 reject;
	/* Outcomes counted at the exit (lb_account). */
	__u8 ct_expired;     /* the packet's entry was dead: judged without it */
	__u8 untracked;      /* a new flow balanced without entries (RST, flood guard) */
	__u8 reply_stale;    /* a reply entry whose backend is no longer its own, removed */
};

/* The backend with this id, or NULL if there is none (a deleted backend is
 * an all-zero slot of the array). */
static __always_inline struct backend_value *backend_get(__u32 id)
{
	struct backend_value *be = bpf_map_lookup_elem(&backends, &id);

	if (!be || !be->family)
		return NULL;
	return be;
}

/* The filter's bit of an IPv4 address: the top 16 bits of a multiplicative
 * hash (src/dataplane/vip-filter.ts computes the same). */
static __always_inline __u32 vip_filter_hash(__be32 addr)
{
	return ((__u32)addr * 0x9e3779b1U) >> 16;
}

/* Whether `daddr` may be a VIP: its filter bit is set. "No" is certain. */
static __always_inline int vip_maybe(__be32 daddr)
{
	__u32 h = vip_filter_hash(daddr);
	__u32 word = h >> 6;
	__u64 *w = bpf_map_lookup_elem(&vip_filter, &word);

	return w && (*w & (1ULL << (h & 63)));
}

static __always_inline int vip_known(__be32 daddr)
{
	struct vip_key vk = {};

	if (!vip_maybe(daddr))
		return 0;

	vk.addr[0] = daddr;
	vk.family = SLUICE_AF_INET;
	return bpf_map_lookup_elem(&vips, &vk) != NULL;
}

/* A backend is usable for a flow if it still exists, still belongs to the
 * flow's service and still is the address the flow was given (ids are
 * recycled by the control plane, round robin). */
static __always_inline struct backend_value *
backend_for_ct(const struct ct_value *ct)
{
	struct backend_value *be = backend_get(ct->backend_id);

	if (!be)
		return NULL;
	if (be->svc_id != ct->svc_id || be->addr[0] != ct->nat_addr ||
	    be->port != ct->nat_port)
		return NULL;
	return be;
}

/*
 * The backend a live forward conntrack entry may still be followed to, or
 * NULL if the flow must be placed again: its backend is gone or changed,
 * or this is a fresh SYN (a new connection reusing the tuple) and the
 * backend is draining or the flow closing. Shared by lb_flow() and the XDP
 * fast path, so that both follow the same entries.
 */
static __always_inline struct backend_value *
ct_follow(const struct ct_value *ct, __u8 syn_only)
{
	struct backend_value *be = backend_for_ct(ct);

	if (!be)
		return NULL;
	if (syn_only && ((be->flags & SLUICE_BE_DRAINING) ||
			 ct->state == SLUICE_CT_CLOSING))
		return NULL;
	return be;
}

/* Whether a reply entry still speaks for the packet's source: its backend
 * is there, of its service, at the packet's source address and port.
 * Backend ids and pod addresses are both reused: an entry made for an
 * earlier backend must not restore a new server's packets to an old VIP. */
static __always_inline int ct_reply_valid(const struct ct_value *ct,
					  __be32 saddr, __be16 sport)
{
	struct backend_value *be = backend_get(ct->backend_id);

	return be && be->svc_id == ct->svc_id && be->addr[0] == saddr &&
	       be->port == sport;
}

/* A hash's slot in a service's Maglev table, relative to its region (the
 * table must have slots): the hash scaled to the table, (hash x size) >>
 * 32, a multiply and a shift where `%` by a size known only at run time is
 * a division (about 10 ns of a new flow's). Every slot gets the hashes of
 * one range of width 2^32 / size, so the spread is as even as `%`'s; and
 * it is the same on every node (src/maglev/flow-hash.ts maglevSlot). */
static __always_inline __u32 maglev_slot(const struct svc_value *svc, __u32 hash)
{
	return ((__u64)hash * svc->table_size) >> 32;
}

static __always_inline int pick_maglev(const struct svc_value *svc,
				       __u32 hash, __u32 *backend_id)
{
	struct maglev_pair *pair;
	__u32 slot, elem;

	if (!svc->table_size)
		return SLUICE_ERR_NO_BACKEND;
	slot = svc->table_base + maglev_slot(svc, hash);
	elem = slot >> 1;
	pair = bpf_map_lookup_elem(&maglev_slots, &elem);
	if (!pair)
		return SLUICE_ERR_NO_BACKEND;
	*backend_id = pair->slot[slot & 1];
	return 0;
}

/* The affinity entry of one IPv4 client of one service. */
static __always_inline void affinity_key_of(struct affinity_key *ak,
					    __be32 client, __u32 svc_id)
{
	__builtin_memset(ak, 0, sizeof(*ak));
	ak->client[0] = client;
	ak->svc_id = svc_id;
	ak->family = SLUICE_AF_INET;
}

/* DNAT to a backend: fill in the action and count the packet. */
static __always_inline int lb_rewrite_fwd(const struct iphdr *iph,
					  __be16 dport, __u32 svc_id,
					  __u32 backend_id,
					  const struct backend_value *be,
					  int new_flow, struct nat_action *act,
					  int lookup)
{
	act->rewrite_dst = 1;
	act->old_addr = iph->daddr;
	act->new_addr = be->addr[0];
	act->old_port = dport;
	act->new_port = be->port;
	act->svc_id = svc_id;
	act->backend_id = backend_id;
	act->new_flow = new_flow;
	if (lookup)
		return SLUICE_NAT_FWD;
	lb_stats_add(&svc_stats, svc_id, act->ip_len, new_flow, 0);
	lb_stats_add(&backend_stats, backend_id, act->ip_len, new_flow, 0);
	return SLUICE_NAT_FWD;
}

/* A hairpin flow's second rewrite: the other address, from -> to. */
static __always_inline void lb_hairpin(struct nat_action *act, __be32 from,
				       __be32 to)
{
	act->hairpin = 1;
	act->peer_old_addr = from;
	act->peer_new_addr = to;
}

/* Whether a packet from this source may be a reply reply_nat restores: one
 * lookup, on the path of traffic that is neither tracked nor for a VIP. */
static __always_inline struct rnat_value *rnat_find(__be32 saddr, __be16 sport,
						    __u8 proto)
{
	struct rnat_key rk = {};

	if (!cfg_stateless_reply)
		return NULL;
	rk.addr[0] = saddr;
	rk.port = sport;
	rk.proto = proto;
	rk.family = SLUICE_AF_INET;
	return bpf_map_lookup_elem(&reply_nat, &rk);
}

/* Whether replies from backend `id` (`be`) are restored without an entry:
 * reply_nat names it, unambiguously (see lb_stateless_reply). */
static __always_inline int lb_reply_restorable(const struct backend_value *be,
					       __u32 id, __u8 proto)
{
	struct rnat_value *rv = rnat_find(be->addr[0], be->port, proto);

	return rv && !(rv->flags & SLUICE_RNAT_AMBIGUOUS) && rv->backend_id == id;
}

/*
 * A new flow to a service (or one whose entry is dead, or whose backend is
 * gone): ClientIP affinity, else Maglev; then (unless `lookup`) the forward
 * entry under the packet's own tuple `fk` and the reply entry under the
 * backend's. A RST, and any new flow past the flood guard's rate, is
 * balanced the same way but not tracked. A reply tuple held by another
 * live flow (the same client port to another VIP with the same backend
 * endpoint) is not taken over: the new flow is refused (SLUICE_ERR_CT_CLASH).
 */
static __always_inline int lb_new_flow(struct iphdr *iph, __be16 sport,
				       __be16 dport, __u8 tflags,
				       const struct svc_value *svc,
				       const struct ct_key *fk, __u64 now,
				       __u32 now_s, struct nat_action *act,
				       int lookup)
{
	struct ct_key rk = {};
	struct ct_value nct = {};
	struct ct_value *held;
	struct affinity_key ak;
	struct backend_value *be = NULL;
	__u32 backend_id = 0, svc_id = svc->id;
	__be32 hairpin;
	int err;

	if (svc->flags & SLUICE_SVC_AFFINITY) {
		struct affinity_value *av;

		affinity_key_of(&ak, iph->saddr, svc_id);
		av = bpf_map_lookup_elem(&affinity, &ak);
		if (av && now - av->last_seen_ns <=
				  (__u64)svc->affinity_timeout * SLUICE_NS_PER_SEC) {
			__u32 id = av->backend_id;

			be = backend_get(id);
			if (be && be->svc_id == svc_id &&
			    !(be->flags & SLUICE_BE_DRAINING)) {
				backend_id = id;
				if (!lookup)
					av->last_seen_ns = now;
				act->affinity_hit = 1;
				goto insert;
			}
			be = NULL;
		}
	}

	if (!svc->table_size) {
		act->reject = !(svc->flags & SLUICE_SVC_DROP_NO_BACKEND);
		return SLUICE_ERR_NO_BACKEND;
	}
	err = pick_maglev(svc, flow_hash4(fk->saddr, fk->daddr, sport, dport, fk->proto),
			  &backend_id);
	if (err)
		return err;
	be = backend_get(backend_id);
	if (!be)
		return SLUICE_ERR_NO_BACKEND;

	if (!lookup && (svc->flags & SLUICE_SVC_AFFINITY)) {
		struct affinity_value av = {};

		affinity_key_of(&ak, iph->saddr, svc_id);
		av.backend_id = backend_id;
		av.last_seen_ns = now;
		bpf_map_update_elem(&affinity, &ak, &av, BPF_ANY);
	}

insert:
	/* Given itself: source-NATed to the hairpin address, when there is one. */
	hairpin = be->addr[0] == iph->saddr ? hairpin_addr() : 0;
	if (hairpin)
		lb_hairpin(act, iph->saddr, hairpin);
	/* The reply entry's key: backend -> client (or the hairpin address). */
	rk.saddr = be->addr[0];
	rk.daddr = hairpin ? hairpin : iph->saddr;
	rk.sport = be->port;
	rk.dport = sport;
	rk.proto = fk->proto;
	if (lookup) {
		held = bpf_map_lookup_elem(&conntrack, &rk);
		if (held && ct_trackable(fk->proto, tflags) &&
		    ct_holds(held, iph->daddr, dport, now_s))
			return SLUICE_ERR_CT_CLASH;
		return lb_rewrite_fwd(iph, dport, svc_id, backend_id, be, 1, act, 1);
	}
	/* Past the flood guard's rate, a flow goes untracked only where its
	 * replies are restored without an entry: stateless replies on, the
	 * backend's endpoint of this one service port, no hairpin SNAT to undo.
	 * Anywhere else its replies would leave with the backend's address,
	 * and it is tracked whatever the rate. */
	if (!ct_trackable(fk->proto, tflags) ||
	    (!ct_flood_ok(now_s) && !hairpin &&
	     lb_reply_restorable(be, backend_id, fk->proto))) {
		act->untracked = 1;
		return lb_rewrite_fwd(iph, dport, svc_id, backend_id, be, 1, act, 0);
	}
	nct.nat_addr = be->addr[0];
	nct.nat_port = be->port;
	nct.state = ct_first_state(fk->proto, tflags);
	nct.flags = hairpin ? SLUICE_CT_F_HAIRPIN : 0;
	nct.backend_id = backend_id;
	nct.svc_id = svc_id;
	nct.created = now_s;
	nct.expires = now_s + ct_timeout(fk->proto, nct.state);
	if (bpf_map_update_elem(&conntrack, fk, &nct, BPF_ANY))
		return SLUICE_ERR_CT_FULL;

	/* The reply entry, restored to VIP:port. Over a dead entry, or this
	 * flow's own earlier one (same VIP and port), but never over another
	 * live flow's: its replies would then come back from the wrong VIP. */
	nct.nat_addr = iph->daddr;
	nct.nat_port = dport;
	nct.flags |= SLUICE_CT_F_REPLY;
	err = bpf_map_update_elem(&conntrack, &rk, &nct, BPF_NOEXIST);
	if (err) {
		held = bpf_map_lookup_elem(&conntrack, &rk);
		if (held && ct_holds(held, iph->daddr, dport, now_s)) {
			bpf_map_delete_elem(&conntrack, fk);
			return SLUICE_ERR_CT_CLASH;
		}
		if (bpf_map_update_elem(&conntrack, &rk, &nct, BPF_ANY))
			return SLUICE_ERR_CT_FULL;
	}
	return lb_rewrite_fwd(iph, dport, svc_id, backend_id, be, 1, act, 0);
}

/* The reply path: a packet from a backend to a client of one of our flows. */
static __always_inline int lb_reply(const struct iphdr *iph, __be16 sport,
				    const struct ct_value *ct,
				    struct nat_action *act, int lookup)
{
	act->rewrite_dst = 0;
	act->old_addr = iph->saddr;
	act->new_addr = ct->nat_addr;
	act->old_port = sport;
	act->new_port = ct->nat_port;
	act->svc_id = ct->svc_id;
	act->backend_id = ct->backend_id;
	if (ct->flags & SLUICE_CT_F_HAIRPIN)
		lb_hairpin(act, iph->daddr, iph->saddr);
	if (lookup)
		return SLUICE_NAT_REPLY;
	lb_stats_add(&svc_stats, act->svc_id, act->ip_len, 0, 1);
	lb_stats_add(&backend_stats, act->backend_id, act->ip_len, 0, 1);
	return SLUICE_NAT_REPLY;
}

/*
 * A packet of no tracked flow, not to a VIP: a backend's reply to a flow
 * this node holds no entry for (another load-balancer node placed it, and
 * the reply's ECMP path leads here)? If its source endpoint serves exactly
 * one service port, restore it to that VIP and port, and track the flow
 * from here on: the reply entry under the packet's own tuple `rk`, and,
 * unless there is one, the forward entry that keeps the client's packets
 * arriving here on the same backend. A SYN from the endpoint opens a
 * connection of its own and is no reply; a RST is restored, not tracked;
 * an endpoint of several service ports cannot be restored without the
 * entry (counted); anything else is not ours and passes. With `lookup`,
 * the restore is decided, not tracked.
 */
static __always_inline int lb_stateless_reply(void *ctx, __u32 ifindex,
					      const struct iphdr *iph,
					      __be16 sport, __be16 dport,
					      __u8 tflags,
					      const struct ct_key *rk,
					      __u32 now,
					      struct nat_action *act,
					      int lookup)
{
	struct rnat_value *rv = rnat_find(iph->saddr, sport, iph->protocol);
	struct backend_value *be;
	struct svc_key *fe;
	struct ct_key fk = {};
	struct ct_value nct = {};
	__u32 svc_id;
	int rc;

	if (!rv || (iph->protocol == IPPROTO_TCP &&
		    (tflags & (SLUICE_TCP_SYN | SLUICE_TCP_ACK)) == SLUICE_TCP_SYN))
		return SLUICE_PASS;
	/* The reply of a flow placed elsewhere is forwarded to a client
	 * beyond this node. One the node would not forward is not such a
	 * reply: addressed to the node itself, it answers a connection the
	 * node opened to the endpoint (a health probe, a kubelet's readiness
	 * check, a direct query); with no route, restoring it could not
	 * deliver it anyway. This needs forwarding on (the FIB asks no route
	 * otherwise), as the redirect of restored replies does. Asked only of
	 * packets from a backend endpoint without an entry. */
	if (ifindex && fib_not_forwarded(ctx, ifindex, iph))
		return SLUICE_PASS;
	if (rv->flags & SLUICE_RNAT_AMBIGUOUS) {
		act->reply_ambiguous = 1;
		return SLUICE_PASS;
	}
	/* The entry, the backend and its frontend agree (the control plane
	 * writes them one map at a time): otherwise leave the packet alone. */
	be = backend_get(rv->backend_id);
	if (!be || be->addr[0] != iph->saddr || be->port != sport)
		return SLUICE_PASS;
	svc_id = be->svc_id;
	fe = bpf_map_lookup_elem(&svc_frontends, &svc_id);
	if (!fe || fe->family != SLUICE_AF_INET || fe->proto != iph->protocol)
		return SLUICE_PASS;

	nct.nat_addr = fe->addr[0];
	nct.nat_port = fe->port;
	nct.state = ct_first_state(iph->protocol, tflags);
	nct.flags = SLUICE_CT_F_REPLY;
	nct.backend_id = rv->backend_id;
	nct.svc_id = svc_id;
	nct.created = now;
	nct.expires = now + ct_timeout(iph->protocol, nct.state);
	act->reply_restored = 1;
	if (!lookup && !ct_trackable(iph->protocol, tflags))
		act->untracked = 1;
	else if (!lookup && bpf_map_update_elem(&conntrack, rk, &nct, BPF_ANY))
		return SLUICE_ERR_CT_FULL;
	rc = lb_reply(iph, sport, &nct, act, lookup);
	if (lookup || act->untracked)
		return rc;

	fk.saddr = iph->daddr;
	fk.daddr = nct.nat_addr;
	fk.sport = dport;
	fk.dport = nct.nat_port;
	fk.proto = iph->protocol;
	nct.nat_addr = be->addr[0];
	nct.nat_port = be->port;
	nct.flags = 0;
	/* An existing forward entry is the flow's own decision: keep it,
	 * unless it is dead or names a backend no longer there, an earlier
	 * flow's on this tuple: the client's next packet must follow the
	 * backend that is answering, not be placed afresh by it. */
	if (bpf_map_update_elem(&conntrack, &fk, &nct, BPF_NOEXIST)) {
		struct ct_value *old = bpf_map_lookup_elem(&conntrack, &fk);

		if (old && (!ct_live(old, now) || !backend_for_ct(old)))
			bpf_map_update_elem(&conntrack, &fk, &nct, BPF_ANY);
	}
	return rc;
}

/*
 * Everything after parsing: conntrack first, on the packet's own tuple, so
 * that an established flow or a reply costs one hash lookup (plus the
 * backend's array slot); only a packet that belongs to no live flow looks
 * at the VIPs, then, if its destination is one, the services. With
 * `new_to_vip` the caller has already looked (XDP's fast path: no entry
 * under the packet's tuple, its destination a VIP): straight to the
 * service. `tflags` are the TCP flags (0 for UDP).
 */
static __always_inline int lb_flow(void *ctx, __u32 ifindex,
				   struct iphdr *iph, __be16 sport,
				   __be16 dport, __u8 tflags, int new_to_vip,
				   struct nat_action *act, int lookup)
{
	struct ct_key fk = {};
	struct svc_key sk = {};
	struct svc_value *svc;
	struct ct_value *ct;
	__u8 syn_only = (tflags & (SLUICE_TCP_SYN | SLUICE_TCP_ACK)) == SLUICE_TCP_SYN;
	__u32 now = lb_now_s();

	fk.saddr = iph->saddr;
	fk.daddr = iph->daddr;
	fk.sport = sport;
	fk.dport = dport;
	fk.proto = iph->protocol;
	if (new_to_vip)
		goto new_flow;
	ct = bpf_map_lookup_elem(&conntrack, &fk);
	if (ct && !ct_live(ct, now)) {
		act->ct_expired = 1;
		ct = NULL;
	}
	if (ct && (ct->flags & SLUICE_CT_F_REPLY)) {
		if (ct_reply_valid(ct, iph->saddr, sport)) {
			if (!lookup)
				ct_touch(&fk, ct, ct_next_state(fk.proto, ct->state,
								tflags), now);
			return lb_reply(iph, sport, ct, act, lookup);
		}
		if (!lookup)
			bpf_map_delete_elem(&conntrack, &fk);
		act->reply_stale = 1;
		ct = NULL;
	}
	if (ct) {
		struct backend_value *be;

		act->to_vip = 1;
		be = ct_follow(ct, syn_only);
		if (be) {
			__be32 hairpin = (ct->flags & SLUICE_CT_F_HAIRPIN) ?
						 hairpin_addr() : 0;

			if (!lookup)
				ct_touch(&fk, ct, ct_next_state(fk.proto, ct->state,
								tflags), now);
			if (hairpin)
				lb_hairpin(act, iph->saddr, hairpin);
			return lb_rewrite_fwd(iph, dport, ct->svc_id,
					      ct->backend_id, be, 0, act, lookup);
		}
		/* A new connection on a closing flow's tuple is not one whose
		 * backend went. */
		if (!syn_only || ct->state != SLUICE_CT_CLOSING ||
		    !backend_for_ct(ct))
			act->rescheduled = 1;
	}

	/* Most traffic that belongs to no flow is not for us at all (a pod
	 * talking to a pod, when attached to pods' veths): the VIP filter
	 * settles most of it with an array load; what may be for a VIP goes
	 * straight to the service, and only a miss there asks whether the
	 * destination is a VIP at all (no service on this port) or the
	 * filter's false positive. */
	if (!vip_maybe(iph->daddr))
		return lb_stateless_reply(ctx, ifindex, iph, sport, dport,
					  tflags, &fk, now,
					  act, lookup);
new_flow:
	sk.addr[0] = iph->daddr;
	sk.port = dport;
	sk.proto = iph->protocol;
	sk.family = SLUICE_AF_INET;
	svc = bpf_map_lookup_elem(&services, &sk);
	if (!svc) {
		if (!vip_known(iph->daddr))
			return lb_stateless_reply(ctx, ifindex, iph, sport,
						  dport, tflags, &fk, now, act,
						  lookup);
		act->to_vip = 1;
		return SLUICE_ERR_NO_SERVICE;
	}
	act->to_vip = 1;
	/* A lookup takes the time through lb_now() too, so that it judges
	 * affinity timeouts by the very clock a packet would. */
	return lb_new_flow(iph, sport, dport, tflags, svc, &fk, lb_now(), now,
			   act, lookup);
}

/* lb_decide()'s hooks for fragments and ICMP errors: they use the above. */
#include "frag.h"
#include "icmp_nat.h"

static __always_inline int lb_decide(void *ctx, __u32 ifindex,
				     void *data, void *data_end,
				     __u32 pkt_len, int new_to_vip,
				     struct nat_action *act, int lookup)
{
	struct cursor c = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	__be16 sport, dport;
	__u8 tflags = 0;
	__u32 l4_len;
	int proto, first_frag = 0, rc;

	/* Keep the action in memory. Without this, LLVM splits it into one
	 * value per field (it never leaves the function once everything is
	 * inlined), and every one of lb_decide's many returns then has to set
	 * all of them for the single exit that reads them: twice the code, and
	 * spills, on every path. Costs 7 ns a packet on the established flow. */
	asm volatile("" : : "r"(act) : "memory");

	proto = parse_ethhdr(&c, data_end, &eth);
	if (proto < 0)
		return proto;
	if (proto != bpf_htons(ETH_P_IP))
		return SLUICE_PASS; /* IPv6 and ARP: not yet ours */

	act->l3_off = c.pos - data;
	proto = parse_iphdr(&c, data_end, pkt_len - act->l3_off, &iph, &l4_len);
	if (proto < 0) {
		/* Lengths that do not add up are dropped when they claim to
		 * be for a VIP, as a truncated header is: the destination is
		 * read where the fixed header holds it. */
		struct iphdr *h = c.pos;

		if ((void *)(h + 1) <= data_end)
			act->to_vip = vip_known(h->daddr);
		return proto;
	}
	act->l4_off = c.pos - data;
	/* Checked against the frame: the bytes on the wire. */
	act->ip_len = bpf_ntohs(iph->tot_len);

	if (iph->frag_off & bpf_htons(SLUICE_IP_MF | SLUICE_IP_OFFSET)) {
		/* Only the first fragment has ports: it is decided, the later
		 * ones follow it (frag.h). */
		if (iph->frag_off & bpf_htons(SLUICE_IP_OFFSET))
			return frag4_later(iph, act, lookup);
		first_frag = 1;
	}

	if (proto == IPPROTO_TCP) {
		struct tcphdr *th;
		int err = parse_tcphdr(&c, data_end, l4_len, &th);

		if (err < 0) {
			act->to_vip = vip_known(iph->daddr);
			return err;
		}
		sport = th->source;
		dport = th->dest;
		tflags = ((__u8 *)th)[13];
		act->l4_check_off = act->l4_off + offsetof(struct tcphdr, check);
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *uh;
		/* A first fragment's UDP length is the whole datagram's. */
		int err = parse_udphdr(&c, data_end, l4_len, first_frag, &uh);

		if (err < 0) {
			act->to_vip = vip_known(iph->daddr);
			return err;
		}
		sport = uh->source;
		dport = uh->dest;
		act->udp = 1;
		act->l4_check_off = act->l4_off + offsetof(struct udphdr, check);
	} else {
		if (first_frag)
			return SLUICE_PASS;
		return icmp4_decide(&c, data, data_end, iph, l4_len, act, lookup);
	}

	rc = lb_flow(ctx, ifindex, iph, sport, dport, tflags, new_to_vip, act,
		     lookup);
	if (first_frag)
		return frag4_first(iph, rc, act, lookup);
	return rc;
}

/* Count a rewritten packet's way out (with rx_packets, counted by the caller):
 * shared by lb_account() and the XDP fast path. */
static __always_inline void lb_count_nat(struct global_stats *g, int reply,
					 int redirected, int fib_missed)
{
	if (reply)
		g->replies++;
	if (fib_missed)
		g->fib_miss++;
	if (redirected)
		g->forwarded++;
	else
		g->forwarded_stack++;
}

/*
 * The Ethernet and IPv4 headers of an action's packet, found again from its
 * offset (lb_decide keeps offsets, not packet pointers, in the action, and
 * tc's skb helpers invalidate pointers). 0, or SLUICE_ERR_REWRITE if they
 * are not where the action says: the packet is then dropped, never sent
 * half-rewritten.
 */
static __always_inline int lb_action_l3(void *data, void *data_end,
					const struct nat_action *act,
					struct ethhdr **eth, struct iphdr **iph)
{
	/* A mask, not a comparison: the verifier must see the bound on the
	 * very register that is added to the packet pointer. l3 is 14
	 * (Ethernet). */
	__u32 l3 = act->l3_off & 0x3f;

	if (l3 != act->l3_off || l3 < sizeof(struct ethhdr))
		return SLUICE_ERR_REWRITE;
	*eth = data;
	*iph = data + l3;
	if ((void *)(*eth + 1) > data_end || (void *)(*iph + 1) > data_end)
		return SLUICE_ERR_REWRITE;
	return 0;
}

/* lb_action_l3(), and the action's L4 ports and checksum. */
static __always_inline int lb_action_headers(void *data, void *data_end,
					     const struct nat_action *act,
					     struct ethhdr **eth,
					     struct iphdr **iph, __be16 **ports,
					     __sum16 **check)
{
	/* l4 is at most 14 + 60 (IPv4 with options); masked as l3 is. */
	__u32 l4 = act->l4_off & 0x7f;

	if (l4 != act->l4_off || lb_action_l3(data, data_end, act, eth, iph))
		return SLUICE_ERR_REWRITE;
	if (act->udp) {
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

/*
 * Count the outcome of one packet, once, at the entry point's single exit;
 * returns 1 if the packet must be dropped. A packet answered in its place
 * (SLUICE_REJECT_*) is sent back by the entry point. For a rewritten packet
 * (SLUICE_NAT_*), `redirected` says whether it left by a FIB redirect or
 * through the stack, and `fib_missed` whether a FIB redirect was tried and
 * gave no next hop.
 */
static __always_inline int lb_account(int rc, const struct nat_action *act,
				      int redirected, int fib_missed)
{
	struct global_stats *g = global_stats_get();

	if (!g)
		return rc < 0;
	g->rx_packets++;
	if (act->rescheduled)
		g->ct_rescheduled++;
	if (act->affinity_hit)
		g->affinity_hits++;
	if (act->reply_restored)
		g->reply_restored++;
	if (act->reply_ambiguous)
		g->reply_ambiguous++;
	if (act->hairpin && act->new_flow)
		g->hairpin_flows++;
	if (act->ct_expired)
		g->ct_expired++;
	if (act->untracked)
		g->ct_untracked++;
	if (act->reply_stale)
		g->ct_reply_stale++;
	switch (rc) {
	case SLUICE_PASS:
		g->passed_other++;
		return 0;
	case SLUICE_NAT_REPLY:
	case SLUICE_NAT_FWD:
		lb_count_nat(g, rc == SLUICE_NAT_REPLY, redirected, fib_missed);
		return 0;
	case SLUICE_ERR_TRUNCATED:
	case SLUICE_ERR_MALFORMED:
		if (act->to_vip) {
			g->drop_malformed++;
			return 1;
		}
		g->passed_malformed++;
		return 0;
	case SLUICE_ERR_FRAGMENT:
		g->drop_fragment++;
		return 1;
	case SLUICE_ERR_NO_SERVICE:
		g->drop_no_service++;
		return 1;
	case SLUICE_ERR_NO_BACKEND:
		g->drop_no_backend++;
		return 1;
	case SLUICE_ERR_CT_FULL:
		g->drop_ct_full++;
		return 1;
	case SLUICE_REJECT_RST:
		g->reject_tcp_rst++;
		return 0;
	case SLUICE_REJECT_ICMP:
		g->reject_icmp_unreach++;
		return 0;
	case SLUICE_ERR_RATE_LIMITED:
		g->reject_rate_limited++;
		return 1;
	case SLUICE_ERR_CT_CLASH:
		g->ct_reply_clash++;
		return 1;
	case SLUICE_NAT_FRAG:
		g->frag_translated++;
		lb_count_nat(g, !act->rewrite_dst, redirected, fib_missed);
		return 0;
	case SLUICE_NAT_ICMP:
		g->icmp_translated++;
		lb_count_nat(g, 0, redirected, fib_missed);
		return 0;
	case SLUICE_FRAG_NEEDED:
		g->icmp_frag_needed++;
		return 0;
	default: /* SLUICE_ERR_REWRITE: never forward a half-rewritten packet */
		g->drop_malformed++;
		return 1;
	}
}

#endif /* SLUICE_LB_H */
