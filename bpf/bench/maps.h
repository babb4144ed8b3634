/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * maps.h: the baselines' maps, each defined once for the objects that use it
 * (DNAT_MAP: the minimal DNAT's service map, DNAT6_MAP its IPv6 twin;
 * CT_MAP: a conntrack with sluice's key and value, include/sluice_shared.h,
 * at the benchmark's size, not sluice's default).
 */
#ifndef SLUICE_BENCH_MAPS_H
#define SLUICE_BENCH_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifdef DNAT_MAP
#include "dnat.h"

/* As many entries as sluice's services map, so both hash the same way
 * into as many buckets. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct dnat_key);
	__type(value, struct dnat_value);
} dnat SEC(".maps");

/* The service of a parsed packet: its destination's entry, or NULL. */
static __always_inline struct dnat_value *dnat_lookup(const struct l4_hdrs *h)
{
	struct dnat_key k = {};

	k.daddr = h->iph->daddr;
	k.dport = *h->dport;
	k.proto = h->iph->protocol;
	return bpf_map_lookup_elem(&dnat, &k);
}
#endif

#ifdef DNAT6_MAP
#include "dnat6.h"

/* DNAT_MAP's twin: as many entries, so both hash into as many buckets. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct dnat6_key);
	__type(value, struct dnat6_value);
} dnat6 SEC(".maps");

/* The service of a parsed IPv6 packet: its destination's entry, or NULL. */
static __always_inline struct dnat6_value *dnat6_lookup(const struct l4_6_hdrs *h)
{
	struct dnat6_key k = {};

	__builtin_memcpy(k.daddr, &h->ip6h->daddr, sizeof(k.daddr));
	k.dport = *h->dport;
	k.proto = h->ip6h->nexthdr;
	return bpf_map_lookup_elem(&dnat6, &k);
}
#endif

#ifdef CT_MAP
#include "l4.h"
#include "sluice_shared.h"

/* The flags of sluice's conntrack (include/maps.h), set by the Makefile
 * for the BPF_F_NO_COMMON_LRU variants. */
#ifndef SLUICE_CT_MAP_FLAGS
#define SLUICE_CT_MAP_FLAGS 0
#endif
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ct_key);
	__type(value, struct ct_value);
	__uint(map_flags, SLUICE_CT_MAP_FLAGS);
} conntrack SEC(".maps");

/* The conntrack key of a parsed packet: its own tuple. */
static __always_inline void ct_key_of(struct ct_key *k, const struct l4_hdrs *h)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->saddr = h->iph->saddr;
	k->daddr = h->iph->daddr;
	k->sport = *h->sport;
	k->dport = *h->dport;
	k->proto = h->iph->protocol;
}
#endif

#endif /* SLUICE_BENCH_MAPS_H */
