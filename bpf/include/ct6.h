/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ct6.h: the flow lifecycle of IPv6 flows, in `conntrack6`. The state
 * machine, timeouts and refresh steps are ct.h's (ct_timeout, ct_due_at,
 * ct_live_at, ct_next_state, ct_first_state, ct_trackable, ct_flood_ok):
 * only what depends on the key's and value's layout is here, ct.h's
 * ct_peer/ct_is_peer/ct_holds/ct_touch with 16-byte addresses.
 *
 * The keys and values these take are in the caller's struct lb6_scratch
 * (lb6.h), a per-CPU map value: the IPv6 path runs in a subprogram called
 * from the IPv4 program's frame, and 512 bytes of stack are the whole
 * chain's.
 */
#ifndef SLUICE_CT6_H
#define SLUICE_CT6_H

#include "ct.h"

/* Whether two 16-byte addresses are one (compared as four words: packet
 * addresses are not 8-aligned). */
static __always_inline int addr6_eq(const __be32 *a, const __be32 *b)
{
	return !((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]));
}

static __always_inline void addr6_copy(__be32 *to, const __be32 *from)
{
	to[0] = from[0];
	to[1] = from[1];
	to[2] = from[2];
	to[3] = from[3];
}

/* ct_holds() for an IPv6 entry. */
static __always_inline int ct6_holds(const struct ct6_value *held,
				     const __be32 *vip, __be16 port, __u32 now)
{
	return ct_live_at(held->expires, now) &&
	       held->state == SLUICE_CT_ESTABLISHED &&
	       (!addr6_eq(held->nat_addr, vip) || held->nat_port != port);
}

/* ct_peer() for an IPv6 entry: the other entry's key and value. */
static __always_inline void ct6_peer(const struct ct6_key *k,
				     const struct ct6_value *ct,
				     struct ct6_key *pk, struct ct6_value *pv)
{
	__u8 hairpin = ct->flags & SLUICE_CT_F_HAIRPIN;

	__builtin_memset(pk, 0, sizeof(*pk));
	pk->proto = k->proto;
	*pv = *ct;
	pv->flags = ct->flags ^ SLUICE_CT_F_REPLY;
	if (ct->flags & SLUICE_CT_F_REPLY) {
		addr6_copy(pk->saddr, hairpin ? k->saddr : k->daddr);
		addr6_copy(pk->daddr, ct->nat_addr);
		pk->sport = k->dport;
		pk->dport = ct->nat_port;
		addr6_copy(pv->nat_addr, k->saddr);
		pv->nat_port = k->sport;
	} else {
		const __be32 *hp = hairpin ? hairpin6_addr() : NULL;

		addr6_copy(pk->saddr, ct->nat_addr);
		addr6_copy(pk->daddr, hp ? hp : k->saddr);
		pk->sport = ct->nat_port;
		pk->dport = k->sport;
		addr6_copy(pv->nat_addr, k->daddr);
		pv->nat_port = k->dport;
	}
}

static __always_inline int ct6_is_peer(const struct ct6_value *peer,
				       const struct ct6_value *want)
{
	return peer->flags == want->flags &&
	       addr6_eq(peer->nat_addr, want->nat_addr) &&
	       peer->nat_port == want->nat_port &&
	       peer->backend_id == want->backend_id;
}

/* ct_touch() for an IPv6 entry; `pk` and `pv` are room for the peer's key
 * and value. */
static __always_inline void ct6_touch(const struct ct6_key *k,
				      struct ct6_value *ct, __u8 state,
				      __u32 now, struct ct6_key *pk,
				      struct ct6_value *pv)
{
	__u32 expires = now + ct_timeout(k->proto, state);
	struct ct6_value *peer;
	struct global_stats *g;

	if (ct->state == state && !ct_due_at(ct->expires, k->proto, state, now))
		return;
	ct->state = state;
	ct->expires = expires;
	ct6_peer(k, ct, pk, pv);
	peer = bpf_map_lookup_elem(&conntrack6, pk);
	if (peer) {
		if (ct6_is_peer(peer, pv)) {
			peer->state = state;
			peer->expires = expires;
		}
		return;
	}
	if (bpf_map_update_elem(&conntrack6, pk, pv, BPF_NOEXIST) ||
	    !(pv->flags & SLUICE_CT_F_REPLY))
		return;
	g = global_stats_get();
	if (g)
		g->ct_reply_recreated++;
}

#endif /* SLUICE_CT6_H */
