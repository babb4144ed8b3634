/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ct.h: the flow lifecycle. A flow is two conntrack entries, forward
 * (client -> VIP) and reply (backend -> client), with one state and one
 * expiry between them (struct ct_value):
 *
 *   - A TCP flow starts NEW at the client's SYN, is ESTABLISHED at its first
 *     packet without SYN, and CLOSING at a FIN or a RST either way. A flow
 *     first seen mid-connection (placed by another node, or evicted) starts
 *     ESTABLISHED, or CLOSING at a FIN; a RST creates no entry. UDP flows are
 *     ESTABLISHED from their first datagram.
 *   - Each state has an idle timeout T (config.h). A packet moves the
 *     expiry to its second plus T, but only once it has moved by a step,
 *     T/8 (at least a second): so an idle flow dies between 7/8 T and T
 *     after its last packet, and a flow's entries are written once a step,
 *     not once a packet (with a million flows of a packet a second each, a
 *     write a second would be a write a packet). Then both entries are
 *     written: a flow lives while either side talks, and a forward packet
 *     that finds its reply entry gone (evicted on its own) writes it again.
 *   - A dead entry is an absent one: the packet is judged without it (a
 *     fresh Maglev pick for a forward packet, so that UDP flows leave a
 *     draining backend after their idle timeout), and the daemon's
 *     collector deletes dead entries, both of a flow together.
 *   - A fresh SYN on a CLOSING flow is a new connection on a reused tuple:
 *     it is placed afresh, as a SYN to a draining backend is.
 */
#ifndef SLUICE_CT_H
#define SLUICE_CT_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "sluice_shared.h"
#include "config.h"
#include "clock.h"
#include "maps.h"
#include "stats.h"
#include "hairpin.h"

/* TCP flags, as in the header's fourteenth byte. */
#define SLUICE_TCP_FIN 0x01
#define SLUICE_TCP_SYN 0x02
#define SLUICE_TCP_RST 0x04
#define SLUICE_TCP_ACK 0x10

/* The idle timeout, in seconds, of a flow of `proto` in `state`. */
static __always_inline __u32 ct_timeout(__u8 proto, __u8 state)
{
	if (proto != IPPROTO_TCP)
		return cfg_ct_udp;
	if (state == SLUICE_CT_NEW)
		return cfg_ct_tcp_syn;
	if (state == SLUICE_CT_CLOSING)
		return cfg_ct_tcp_closing;
	return cfg_ct_tcp_established;
}

/* The step an expiry must move by before it is written: T/8, at least a
 * second. */
static __always_inline __u32 ct_step(__u32 timeout)
{
	__u32 step = timeout >> 3;

	return step ? step : 1;
}

/* Whether a live entry in `state` expiring at `expires` is due for its
 * refresh at second `now`: its expiry is a step or more behind where a
 * packet now would put it. Both families' entries (ct_due, ct6.h). */
static __always_inline int ct_due_at(__u32 expires, __u8 proto, __u8 state,
				     __u32 now)
{
	__u32 timeout = ct_timeout(proto, state);

	return (__s32)(expires - now) <= (__s32)(timeout - ct_step(timeout));
}

static __always_inline int ct_due(const struct ct_value *ct, __u8 proto,
				  __u8 state, __u32 now)
{
	return ct_due_at(ct->expires, proto, state, now);
}

/* Whether an entry expiring at `expires` is alive at second `now`
 * (wrap-safe). */
static __always_inline int ct_live_at(__u32 expires, __u32 now)
{
	return (__s32)(expires - now) > 0;
}

static __always_inline int ct_live(const struct ct_value *ct, __u32 now)
{
	return ct_live_at(ct->expires, now);
}

/*
 * Whether a reply entry `held`, found under a new flow's reply tuple, bars
 * the new flow (to VIP `vip`:`port`): it is another flow's, of another
 * frontend, alive, and established. A closing flow's (a client reusing its
 * port for another VIP right after a connection ended, which Linux does:
 * the client's 4-tuples differ) or a new one's (a SYN never answered) gives
 * way: the new flow takes the tuple.
 */
static __always_inline int ct_holds(const struct ct_value *held, __be32 vip,
				    __be16 port, __u32 now)
{
	return ct_live(held, now) && held->state == SLUICE_CT_ESTABLISHED &&
	       (held->nat_addr != vip || held->nat_port != port);
}

/* The state a flow in `state` moves to on a packet with TCP flags `tflags`
 * (UDP flows never move). */
static __always_inline __u8 ct_next_state(__u8 proto, __u8 state, __u8 tflags)
{
	if (proto != IPPROTO_TCP)
		return state;
	if (tflags & (SLUICE_TCP_FIN | SLUICE_TCP_RST))
		return SLUICE_CT_CLOSING;
	if (state == SLUICE_CT_NEW && !(tflags & SLUICE_TCP_SYN))
		return SLUICE_CT_ESTABLISHED;
	return state;
}

/* The state of a flow whose first packet this node sees has flags
 * `tflags`; a RST is not tracked (the caller asks first). */
static __always_inline __u8 ct_first_state(__u8 proto, __u8 tflags)
{
	if (proto != IPPROTO_TCP)
		return SLUICE_CT_ESTABLISHED;
	if (tflags & SLUICE_TCP_FIN)
		return SLUICE_CT_CLOSING;
	if ((tflags & (SLUICE_TCP_SYN | SLUICE_TCP_ACK)) == SLUICE_TCP_SYN)
		return SLUICE_CT_NEW;
	return SLUICE_CT_ESTABLISHED;
}

/* Whether a packet with these flags may create entries: not a RST, which
 * ends whatever it belongs to. */
static __always_inline int ct_trackable(__u8 proto, __u8 tflags)
{
	return proto != IPPROTO_TCP || !(tflags & SLUICE_TCP_RST);
}

/*
 * The key and value of the other entry of the flow whose entry (k, ct) is.
 * A forward entry (c:cp -> v:vp, naming backend b:bp) has its reply entry
 * under (b:bp -> c:cp), or (b:bp -> hairpin address:cp) when the client is
 * its own backend; a reply entry has its forward entry under
 * (client:cp -> v:vp), the client being the reply's destination, or the
 * backend itself when hairpinned.
 */
static __always_inline void ct_peer(const struct ct_key *k,
				    const struct ct_value *ct,
				    struct ct_key *pk, struct ct_value *pv)
{
	__u8 hairpin = ct->flags & SLUICE_CT_F_HAIRPIN;

	__builtin_memset(pk, 0, sizeof(*pk));
	pk->proto = k->proto;
	*pv = *ct;
	pv->flags = ct->flags ^ SLUICE_CT_F_REPLY;
	if (ct->flags & SLUICE_CT_F_REPLY) {
		pk->saddr = hairpin ? k->saddr : k->daddr;
		pk->daddr = ct->nat_addr;
		pk->sport = k->dport;
		pk->dport = ct->nat_port;
		pv->nat_addr = k->saddr;
		pv->nat_port = k->sport;
	} else {
		pk->saddr = ct->nat_addr;
		pk->daddr = hairpin ? hairpin_addr() : k->saddr;
		pk->sport = ct->nat_port;
		pk->dport = k->sport;
		pv->nat_addr = k->daddr;
		pv->nat_port = k->dport;
	}
}

/* Whether `peer`, found under ct_peer()'s key, is the other entry of the
 * flow whose entry is `ct` (and not another flow's that holds the tuple). */
static __always_inline int ct_is_peer(const struct ct_value *peer,
				      const struct ct_value *want)
{
	return peer->flags == want->flags && peer->nat_addr == want->nat_addr &&
	       peer->nat_port == want->nat_port &&
	       peer->backend_id == want->backend_id;
}

/*
 * A packet found the live entry (k, ct) of its flow: move the flow to
 * `state` and its expiry to now plus that state's timeout, in both
 * entries, at a change of state or when the expiry is due (ct_due: once a
 * step). A peer entry that is gone is written again, never over another
 * flow's (BPF_NOEXIST).
 */
static __always_inline void ct_touch(const struct ct_key *k,
				     struct ct_value *ct, __u8 state,
				     __u32 now)
{
	__u32 expires = now + ct_timeout(k->proto, state);
	struct ct_key pk;
	struct ct_value pv, *peer;
	struct global_stats *g;

	if (ct->state == state && !ct_due(ct, k->proto, state, now))
		return;
	ct->state = state;
	ct->expires = expires;
	ct_peer(k, ct, &pk, &pv);
	peer = bpf_map_lookup_elem(&conntrack, &pk);
	if (peer) {
		if (ct_is_peer(peer, &pv)) {
			peer->state = state;
			peer->expires = expires;
		}
		return;
	}
	if (bpf_map_update_elem(&conntrack, &pk, &pv, BPF_NOEXIST) ||
	    !(pv.flags & SLUICE_CT_F_REPLY))
		return;
	g = global_stats_get();
	if (g)
		g->ct_reply_recreated++;
}

/*
 * The flood guard: whether this CPU may track one more new flow this
 * second (cfg_ct_flood_rate). Counted in the clock's per-CPU cache, which
 * every new flow reads anyway.
 */
static __always_inline int ct_flood_ok(__u32 now)
{
	struct clock_cache *c;

	if (!cfg_ct_flood_rate)
		return 1;
	c = lb_clock_get();
	if (!c)
		return 1;
	if (c->flood_s != now) {
		c->flood_s = now;
		c->flood_flows = 0;
	}
	return ++c->flood_flows <= cfg_ct_flood_rate;
}

#endif /* SLUICE_CT_H */
