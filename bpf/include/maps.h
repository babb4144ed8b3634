/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * maps.h: every map of the load balancer. Included once per object (the
 * object is built from one translation unit per attach point, linked by
 * `bpftool gen object`, so the definitions here are __weak: the linker keeps
 * one copy of each and both programs share it).
 *
 * Names are the contract with the addon and the control plane; the pinned
 * files in bpffs carry the same names.
 */
#ifndef SLUICE_MAPS_H
#define SLUICE_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "sluice_shared.h"

/* (VIP, port, proto) -> service. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_MAX_SERVICES);
	__type(key, struct svc_key);
	__type(value, struct svc_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} services SEC(".maps") __weak;

/* Every address that carries a service. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_MAX_VIPS);
	__type(key, struct vip_key);
	__type(value, struct vip_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} vips SEC(".maps") __weak;

/*
 * A bit per hash of a VIP's address (sluice_shared.h vip_filter_hash),
 * set while some VIP hashes there: an address whose bit is clear is no
 * VIP, known from an array load instead of a hash lookup. Traffic for no
 * VIP (most of a node's, on pods' links) pays that instead of the vips
 * lookup, and a flow's first packet to a VIP goes straight to its service
 * (lb_flow). User space sets a bit before it writes the VIP and clears it
 * after the last VIP of that bit is gone, and rebuilds the filter from
 * `vips` whenever it opens the maps, so the filter never says "no VIP"
 * of one.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_VIP_FILTER_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} vip_filter SEC(".maps") __weak;

/* backend id -> address. An array, so that the lookup on every packet of an
 * established flow is inlined by the verifier (a hash lookup costs ~20 ns);
 * a deleted backend is an all-zero slot (family 0). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend_value);
} backends SEC(".maps") __weak;

/* Every service's Maglev table, each a region of slots -> backend id (see
 * struct svc_value). A plain array: lookups are inlined by the verifier, and
 * replacing a table needs no map-in-map update (whose syscall waits for an
 * RCU grace period, milliseconds each). Mmapable, so that user space writes
 * a new region with one memcpy. An mmapable array lays its elements out
 * every 8 bytes, so each element holds two slots (slot s is half s & 1 of
 * element s >> 1) and the mapped memory is a plain array of __u32 slots. */
struct maglev_pair {
	__u32 slot[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_MAGLEV_SLOTS / 2);
	__type(key, __u32);
	__type(value, struct maglev_pair);
	__uint(map_flags, BPF_F_MMAPABLE);
} maglev_slots SEC(".maps") __weak;

/* Flows: forward and reply entries (struct ct_value.dir). LRU so a full table
 * evicts the coldest flow instead of refusing new ones. One LRU list common
 * to all CPUs by default; BPF_F_NO_COMMON_LRU (bpf/Makefile CT_MAP_FLAGS)
 * would give each CPU max_entries / possible CPUs of its own. */
#ifndef SLUICE_CT_MAP_FLAGS
#define SLUICE_CT_MAP_FLAGS 0
#endif
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_CT_SIZE);
	__type(key, struct ct_key);
	__type(value, struct ct_value);
	__uint(map_flags, SLUICE_CT_MAP_FLAGS);
} conntrack SEC(".maps") __weak;

/* IPv6 flows: conntrack's twin (struct ct6_key). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_CT6_SIZE);
	__type(key, struct ct6_key);
	__type(value, struct ct6_value);
	__uint(map_flags, SLUICE_CT_MAP_FLAGS);
} conntrack6 SEC(".maps") __weak;

/* Service id -> its frontend (VIP, port, protocol): where reply_nat's
 * replies are restored to. An entry of a deleted id is stale, never read:
 * it is reached only through a live backend of that id. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct svc_key);
} svc_frontends SEC(".maps") __weak;

/* Backend endpoint -> the service port its replies are restored to, for
 * replies of flows without a conntrack entry (see struct rnat_value). One
 * entry per distinct endpoint, so never more than backends. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_MAX_BACKENDS);
	__type(key, struct rnat_key);
	__type(value, struct rnat_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} reply_nat SEC(".maps") __weak;

/* ClientIP session affinity. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_AFFINITY_SIZE);
	__type(key, struct affinity_key);
	__type(value, struct affinity_value);
} affinity SEC(".maps") __weak;

/* Interfaces a native XDP redirect may send to, by ifindex (value unused):
 * the interfaces this dataplane's XDP program is attached to. A native XDP
 * redirect needs a device that takes XDP frames (ndo_xdp_xmit); to any
 * other (a bridge: the pods of a Kubernetes node behind cni0) the frame
 * would be dropped, so it goes to the stack instead, which forwards it. */
#ifndef SLUICE_XDP_PORTS
#define SLUICE_XDP_PORTS 256
#endif
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_XDP_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} xdp_ports SEC(".maps") __weak;

/* Settings the control plane changes at run time (struct node_config). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct node_config);
} node_config SEC(".maps") __weak;

/* node_config's IPv6 hairpin address (struct node_config6). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct node_config6);
} node_config6 SEC(".maps") __weak;

/* The node's own sockets sent to a backend in place of a VIP: what
 * recvmsg() and getpeername() report instead (sock_lb.bpf.c). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_SOCK_RNAT_SIZE);
	__type(key, struct sock_rnat_key);
	__type(value, struct sock_rnat_value);
} sock_rnat SEC(".maps") __weak;

/* sock_rnat for IPv6 sockets. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_SOCK_RNAT_SIZE);
	__type(key, struct sock_rnat6_key);
	__type(value, struct sock_rnat6_value);
} sock_rnat6 SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct lb_stats);
} svc_stats SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct lb_stats);
} backend_stats SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct global_stats);
} global_stats SEC(".maps") __weak;

/*
 * Fragmented datagrams whose first fragment was balanced (frag.h): the
 * decision of the first fragment, for the later ones, which carry no ports.
 * Only the programs read it (user space only pins it), so its structs live
 * here rather than in sluice_shared.h. Addresses in network order.
 */
struct frag4_key {
	__be32 saddr;   /* the fragments' source, as they arrive */
	__be32 daddr;   /* their destination, as they arrive */
	__be16 id;      /* the IP identification the fragments share */
	__u8 proto;     /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};

struct frag4_value {
	__be32 new_addr;      /* what the rewritten address becomes */
	__be32 peer_new_addr; /* SLUICE_CT_F_HAIRPIN: what the other address becomes */
	__u32 svc_id;         /* for the service's and backend's counters */
	__u32 backend_id;
	__u8 rewrite_dst;     /* 1: the destination (DNAT); 0: the source (a reply) */
	__u8 hairpin;         /* the other address is rewritten too */
	__u8 pad[2];
};

#ifndef SLUICE_FRAG_SIZE
/* Datagrams in reassembly at once, not flows: an entry is needed from a
 * datagram's first fragment to its last, a few microseconds on a LAN. Linux
 * holds at most 4 MB of fragments in reassembly per namespace
 * (ipfrag_high_thresh), fewer than 3,000 fragments of 1,500 bytes, so fewer
 * datagrams than that; 8,192 entries (about 0.5 MB with the LRU's overhead)
 * is more, and the LRU evicts the oldest, whose datagram is long complete
 * or lost. */
#define SLUICE_FRAG_SIZE 8192
#endif
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_FRAG_SIZE);
	__type(key, struct frag4_key);
	__type(value, struct frag4_value);
} frag4 SEC(".maps") __weak;

/*
 * IPv6 fragments (frag6.h): frag4's twin. Keyed without the protocol: RFC
 * 8200 lets a datagram's later fragments name another next header than its
 * first, and Linux reassembles by (source, destination, identification).
 */
struct frag6_key {
	__be32 saddr[4];  /* as they arrive */
	__be32 daddr[4];
	__be32 id;        /* the fragment header's identification */
};

struct frag6_value {
	__be32 new_addr[4];      /* what the rewritten address becomes */
	__be32 peer_new_addr[4]; /* SLUICE_CT_F_HAIRPIN: what the other address becomes */
	__u32 svc_id;
	__u32 backend_id;
	__u8 rewrite_dst;        /* 1: the destination (DNAT); 0: the source (a reply) */
	__u8 hairpin;
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_FRAG_SIZE);
	__type(key, struct frag6_key);
	__type(value, struct frag6_value);
} frag6 SEC(".maps") __weak;

#endif /* SLUICE_MAPS_H */
