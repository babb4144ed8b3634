/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * frag6.h: fragmented IPv6 datagrams, balanced as the datagram they belong
 * to: frag.h's twin (RFC 8200 §4.5).
 *
 * Only a datagram's first fragment (offset 0, M set) carries the upper-
 * layer header, and parse_ipv6hdr() has made sure its whole header chain
 * is there (RFC 7112: a first fragment without it is malformed).
 * lb6_decide() decides it as any packet and frag6_first() keeps the
 * decision in the `frag6` map under the fragments' (source, destination,
 * identification): no protocol, as Linux reassembles by those three and
 * RFC 8200 lets a later fragment's next header differ from the first's.
 * A later fragment (offset > 0) finds the entry and gets the same address
 * rewrite, and nothing else: IPv6 has no header checksum, and the L4
 * checksum, which covers the whole datagram with the pseudo-header, sits
 * in the first fragment and was updated there. A backend's fragmented
 * reply is restored to the VIP in every fragment alike.
 *
 * An atomic fragment (offset 0, M clear, RFC 6946) is an ordinary packet:
 * the walk leaves `frag.present` 0 and nothing is stored. A later fragment
 * without an entry (its first never came, or comes after it) is dropped
 * and counted (drop_fragment) when it is addressed to a VIP, and passes
 * untouched elsewhere, as frag.h says why. Entries are never deleted: the
 * LRU ages them out, and a new first fragment replaces an entry whose
 * identification came round again.
 *
 * Included by lb6.h, before lb6_decide(), whose fragment branches call it;
 * the entry points apply SLUICE_NAT_FRAG with frag6_rewrite().
 */
#ifndef SLUICE_FRAG6_H
#define SLUICE_FRAG6_H

#include "lb6.h"

static __always_inline void frag6_key_of(struct frag6_key *k,
					 const struct ipv6hdr *ip6h,
					 const struct ipv6_frag_info *frag)
{
	__builtin_memset(k, 0, sizeof(*k));
	addr6_copy(k->saddr, IP6_SADDR(ip6h));
	addr6_copy(k->daddr, IP6_DADDR(ip6h));
	k->id = frag->id;
}

/*
 * The first fragment of a datagram was decided (rc, s->act): keep its
 * rewrite for the later fragments (frag4_first()'s rules: a full map
 * evicts the oldest entry; a failed update costs this datagram its later
 * fragments). Returns rc.
 */
static __always_inline int frag6_first(const struct ipv6hdr *ip6h,
				       const struct ipv6_frag_info *frag,
				       int rc, struct lb6_scratch *s,
				       int lookup)
{
	const struct nat6_action *act = &s->act;
	struct frag6_key k;
	struct frag6_value v = {};

	if (lookup || (rc != SLUICE_NAT_FWD && rc != SLUICE_NAT_REPLY))
		return rc;
	frag6_key_of(&k, ip6h, frag);
	addr6_copy(v.new_addr, act->new_addr);
	if (act->n.hairpin)
		addr6_copy(v.peer_new_addr, act->peer_new_addr);
	v.rewrite_dst = act->n.rewrite_dst;
	v.hairpin = act->n.hairpin;
	v.svc_id = act->n.svc_id;
	v.backend_id = act->n.backend_id;
	bpf_map_update_elem(&frag6, &k, &v, BPF_ANY);
	return rc;
}

/*
 * A later fragment (no upper-layer header): its datagram's first
 * fragment's rewrite, as an action for frag6_rewrite() (SLUICE_NAT_FRAG:
 * old_addr and new_addr the rewritten address, the destination if
 * rewrite_dst; with hairpin, peer_* the other), counted for its service
 * and backend as the first was; or SLUICE_ERR_FRAGMENT to a VIP (to_vip
 * set), SLUICE_PASS elsewhere.
 */
static __always_inline int frag6_later(const struct ipv6hdr *ip6h,
				       const struct ipv6_frag_info *frag,
				       struct lb6_scratch *s, int lookup)
{
	struct nat6_action *act = &s->act;
	struct frag6_key k;
	struct frag6_value *v;

	frag6_key_of(&k, ip6h, frag);
	v = bpf_map_lookup_elem(&frag6, &k);
	if (!v) {
		if (vip6_known(IP6_DADDR(ip6h), &s->vk)) {
			act->n.to_vip = 1;
			return SLUICE_ERR_FRAGMENT;
		}
		return SLUICE_PASS;
	}
	act->n.rewrite_dst = v->rewrite_dst;
	act->n.to_vip = v->rewrite_dst;
	addr6_copy(act->old_addr, v->rewrite_dst ? IP6_DADDR(ip6h) : IP6_SADDR(ip6h));
	addr6_copy(act->new_addr, v->new_addr);
	if (v->hairpin)
		lb6_hairpin(act, v->rewrite_dst ? IP6_SADDR(ip6h) : IP6_DADDR(ip6h),
			    v->peer_new_addr);
	act->n.svc_id = v->svc_id;
	act->n.backend_id = v->backend_id;
	if (lookup)
		return SLUICE_NAT_FRAG;
	lb_stats_add(&svc_stats, act->n.svc_id, act->n.ip_len, 0, !v->rewrite_dst);
	lb_stats_add(&backend_stats, act->n.backend_id, act->n.ip_len, 0,
		     !v->rewrite_dst);
	return SLUICE_NAT_FRAG;
}

/* Apply frag6_later()'s action to the fragment's IPv6 header (bounds
 * checked by the caller): the addresses only, no checksum covers them
 * here. At XDP; tc writes the same bytes through frag6_rewrite_skb(). */
static __always_inline void frag6_rewrite(struct ipv6hdr *ip6h,
					  const struct nat6_action *act)
{
	addr6_copy(act->n.rewrite_dst ? IP6_DADDR(ip6h) : IP6_SADDR(ip6h),
		   act->new_addr);
	if (act->n.hairpin)
		addr6_copy(act->n.rewrite_dst ? IP6_SADDR(ip6h) : IP6_DADDR(ip6h),
			   act->peer_new_addr);
}

#endif /* SLUICE_FRAG6_H */
