// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_new_flow_floor.bpf.c: what the first packet of a flow costs any
 * load balancer that tracks connections, with nothing else: the minimal
 * DNAT (xdp_min_dnat.bpf.c: parse, one hash lookup of the service, rewrite,
 * checksums), plus a conntrack lookup of the packet's tuple that misses and
 * the insert of its entry, in an LRU hash with sluice's key, value and the
 * benchmark's size. Built twice (-DCT_ENTRIES=1, 2): with 2 it also writes
 * the reply entry that reverse NAT needs, as sluice does; with 1 it is a
 * balancer that sees no replies (direct server return, like Katran).
 *
 * The per-packet stage runs it on the same fresh 5-tuples as sluice's new
 * flows, one packet per test run, so that the ratio of sluice's new flow to
 * this floor says what sluice's own choice of backend costs.
 */
#define DNAT_MAP
#define CT_MAP
#include "dnat.h"
#include "maps.h"
#include "stub.h"

#ifndef CT_ENTRIES
#define CT_ENTRIES 2
#endif

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct dnat_value *nat;
	struct ct_key fk;
	struct ct_value v = {};
	struct l4_hdrs h;

	if (parse_l4(data, data_end, &h))
		return XDP_PASS;
	ct_key_of(&fk, &h);
	/* A hit is an established flow: not what this program measures. */
	if (bpf_map_lookup_elem(&conntrack, &fk))
		return XDP_PASS;
	nat = dnat_lookup(&h);
	if (!nat)
		return XDP_PASS;
	v.flags = 0;
	v.nat_addr = nat->daddr;
	v.nat_port = nat->dport;
	if (bpf_map_update_elem(&conntrack, &fk, &v, BPF_ANY))
		return XDP_DROP;
#if CT_ENTRIES >= 2
	{
		struct ct_key rk = {};

		rk.saddr = nat->daddr;
		rk.daddr = fk.saddr;
		rk.sport = nat->dport;
		rk.dport = fk.sport;
		rk.proto = fk.proto;
		v.flags = SLUICE_CT_F_REPLY;
		v.nat_addr = fk.daddr;
		v.nat_port = fk.dport;
		if (bpf_map_update_elem(&conntrack, &rk, &v, BPF_ANY))
			return XDP_DROP;
	}
#endif
	dnat_rewrite(&h, nat->daddr, nat->dport);
	return XDP_TX;
}
