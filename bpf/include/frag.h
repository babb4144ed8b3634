/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * frag.h: IPv4 fragments, balanced as the datagram they belong to.
 *
 * Only a datagram's first fragment (offset 0, MF) carries the TCP or UDP
 * header, so only it can be decided: lb_decide() decides it as any packet
 * (its UDP length is the whole datagram's, which the caller lets through),
 * and frag4_first() keeps the decision in the frag4 map under the
 * fragments' (source, destination, protocol, IP id). A later fragment
 * (offset > 0) finds it there and gets the same address rewrite, which
 * touches only the IP header and its checksum: the L4 checksum, which
 * covers the whole datagram, sits in the first fragment and was updated
 * there. Replies work alike: a backend's fragmented answer is restored to
 * the VIP in every fragment.
 *
 * A later fragment with no entry (its first fragment never came, or came
 * after it) is dropped and counted (drop_fragment) when it is addressed to
 * a VIP: it could reach no backend whole. Without ports nothing else tells
 * one of a tracked flow's fragments from anyone else's, so any other such
 * fragment passes untouched, as sluice passes all traffic that is not its
 * own. Entries are never deleted (the last fragment may not come last):
 * the LRU ages them out, and a new datagram's first fragment replaces an
 * entry whose IP id came round again.
 *
 * Included by lb.h, before lb_decide(), whose fragment branch calls it.
 */
#ifndef SLUICE_FRAG_H
#define SLUICE_FRAG_H

#include <linux/bpf.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>

#include "maps.h"
#include "csum.h"
#include "errors.h"
#include "stats.h"

static __always_inline void frag4_key_of(struct frag4_key *k,
					 const struct iphdr *iph)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->saddr = iph->saddr;
	k->daddr = iph->daddr;
	k->id = iph->id;
	k->proto = iph->protocol;
}

/*
 * The first fragment of a datagram was decided (rc, act): keep a rewrite for
 * the later fragments. A full map evicts the oldest entry; a failed update
 * costs this datagram its later fragments, which the sender's retry
 * replaces. Returns rc.
 */
static __always_inline int frag4_first(const struct iphdr *iph, int rc,
				       const struct nat_action *act, int lookup)
{
	struct frag4_key k;
	struct frag4_value v = {};

	if (lookup || (rc != SLUICE_NAT_FWD && rc != SLUICE_NAT_REPLY))
		return rc;
	frag4_key_of(&k, iph);
	v.new_addr = act->new_addr;
	v.rewrite_dst = act->rewrite_dst;
	v.hairpin = act->hairpin;
	v.peer_new_addr = act->peer_new_addr;
	v.svc_id = act->svc_id;
	v.backend_id = act->backend_id;
	bpf_map_update_elem(&frag4, &k, &v, BPF_ANY);
	return rc;
}

/*
 * A later fragment (no L4 header): the rewrite of its datagram's first
 * fragment, as an action for frag4_rewrite() (SLUICE_NAT_FRAG: old_addr and
 * new_addr are the rewritten address, the destination if rewrite_dst; with
 * hairpin, peer_* the other), counted for its service and backend as the
 * first was; or dropped to a VIP, passed elsewhere.
 */
static __always_inline int frag4_later(const struct iphdr *iph,
				       struct nat_action *act, int lookup)
{
	struct frag4_key k;
	struct frag4_value *v;

	frag4_key_of(&k, iph);
	v = bpf_map_lookup_elem(&frag4, &k);
	if (!v) {
		if (vip_known(iph->daddr)) {
			act->to_vip = 1;
			return SLUICE_ERR_FRAGMENT;
		}
		return SLUICE_PASS;
	}
	act->rewrite_dst = v->rewrite_dst;
	act->to_vip = v->rewrite_dst;
	act->old_addr = v->rewrite_dst ? iph->daddr : iph->saddr;
	act->new_addr = v->new_addr;
	if (v->hairpin)
		lb_hairpin(act, v->rewrite_dst ? iph->saddr : iph->daddr,
			   v->peer_new_addr);
	act->svc_id = v->svc_id;
	act->backend_id = v->backend_id;
	if (lookup)
		return SLUICE_NAT_FRAG;
	lb_stats_add(&svc_stats, act->svc_id, act->ip_len, 0, !v->rewrite_dst);
	lb_stats_add(&backend_stats, act->backend_id, act->ip_len, 0,
		     !v->rewrite_dst);
	return SLUICE_NAT_FRAG;
}

/* Apply frag4_later()'s action to the fragment's IPv4 header (bounds
 * checked by the caller): addresses and the header checksum only. */
static __always_inline void frag4_rewrite(struct iphdr *iph,
					  const struct nat_action *act)
{
	__be32 *addr = act->rewrite_dst ? &iph->daddr : &iph->saddr;
	__be32 *peer = act->rewrite_dst ? &iph->saddr : &iph->daddr;
	__u32 delta = csum_delta4(0, *addr, act->new_addr);

	*addr = act->new_addr;
	if (act->hairpin) {
		delta = csum_delta4(delta, *peer, act->peer_new_addr);
		*peer = act->peer_new_addr;
	}
	iph->check = csum_apply(iph->check, delta);
}

#endif /* SLUICE_FRAG_H */
