/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sluice_shared.h: the structs that both the BPF programs and user space read.
 *
 * Defined once, here, and included by bpf/ and native/. Types and constants
 * only: no maps, no code. Every layout is guarded with _Static_assert; the
 * addon exports a sizeof/offsetof table that test/unit/layout.test.ts checks
 * against the TypeScript codecs in src/dataplane/codec.ts.
 *
 * Byte order: addresses and ports are in network order (suffix _be in the
 * comment), everything else in host order.
 *
 * Addresses are 16 bytes in the configuration maps (services, VIPs,
 * backends, affinity) so that IPv6 fits without a redesign: an IPv4 address
 * sits in addr[0] with addr[1..3] zero, and `family` says which one it is.
 * The per-flow tables are the exception: `conntrack` holds IPv4 flows only,
 * with 4-byte addresses, because it is the table with two entries per flow
 * that every packet hashes into; IPv6 flows have a table of their own,
 * `conntrack6`, so that the IPv4 key stays 16 bytes. The same goes for the
 * other tables keyed by a packet's addresses (fragments, the node's own
 * sockets) and for node_config's hairpin address: each has an IPv6 twin
 * beside it, so that no pinned map of an IPv4-only version changes layout.
 */
#ifndef SLUICE_SHARED_H
#define SLUICE_SHARED_H

#include <linux/types.h>

/* C11 and C++ spell the compile-time check differently; native/ is C++. */
#ifdef __cplusplus
#define SLUICE_STATIC_ASSERT static_assert
#else
#define SLUICE_STATIC_ASSERT _Static_assert
#endif

/* Capacities. Each may be overridden at build time (-DSLUICE_MAX_...=N);
 * the addon reads them back from the loaded maps, never from here. The
 * daemon sets every one at load from its flags (src/daemon/capacity.ts,
 * where each default is explained); these are the same defaults, for a
 * dataplane loaded without them (tests, tools). */
#ifndef SLUICE_MAX_SERVICES
/* Service ids 1..16,383 (0 is none): they index svc_frontends and the
 * per-CPU svc_stats, 16,384 x 32 B x nr_cpus. */
#define SLUICE_MAX_SERVICES 16384
#endif
#ifndef SLUICE_MAX_BACKENDS
/* Backend ids 1..65,535: they index backends and the per-CPU backend_stats,
 * 65,536 x 32 B x nr_cpus. */
#define SLUICE_MAX_BACKENDS 65536
#endif
#ifndef SLUICE_MAX_VIPS
/* At most one VIP per frontend. */
#define SLUICE_MAX_VIPS 16384
#endif
#ifndef SLUICE_CT_SIZE
/* Two entries (forward and reply) per flow: 131,072 concurrent flows. */
#define SLUICE_CT_SIZE 262144
#endif
#ifndef SLUICE_CT6_SIZE
/* IPv6 flows, two entries each: 32,768 concurrent flows. Smaller than the
 * IPv4 table because an LRU map is allocated whole at load and its entries
 * are twice as large (~128 B with the LRU's overhead: 8 MiB here): an
 * IPv4-only node should not pay for an IPv6 table it never fills.
 * --conntrack6-size raises it. */
#define SLUICE_CT6_SIZE 65536
#endif
#ifndef SLUICE_AFFINITY_SIZE
#define SLUICE_AFFINITY_SIZE 65536
#endif
#ifndef SLUICE_SOCK_RNAT_SIZE
/* One entry per socket of the node's own processes connected (or sending)
 * to a VIP: LRU, so idle ones make room. */
#define SLUICE_SOCK_RNAT_SIZE 16384
#endif
/* Largest Maglev table the dataplane accepts; the control plane picks primes
 * up to this. 131,071 is prime. */
#define SLUICE_MAGLEV_MAX 131071
#ifndef SLUICE_MAGLEV_SLOTS
/* Slots of the one array that holds every service's Maglev table as a
 * region (svc_value.table_base, .table_size): 1,000 services of 1,021
 * slots, with room for tables being replaced. 8 MiB, two slots per array
 * element (see maps.h); the element count is settable at load. */
#define SLUICE_MAGLEV_SLOTS 2097152
#endif

/* Bits of the VIP filter (vip_filter in maps.h): 2^16, one bit per value of
 * vip_filter_hash(address), in words of 64. */
#define SLUICE_VIP_FILTER_WORDS 1024

#define SLUICE_AF_INET 2
#define SLUICE_AF_INET6 10

/* The IPv6 extension-header walk (parsing.h): at most this many headers,
 * of at most this many bytes in all, between the fixed header and the
 * upper-layer header. A packet with more is malformed to the balancer
 * (dropped to a VIP, passed otherwise). Linux itself walks any number, but
 * a real flow to a service carries none or one or two. */
#define SLUICE_IPV6_MAX_EXT 4
#define SLUICE_IPV6_EXT_MAX_BYTES 256

/* Service flags (svc_value.flags). */
#define SLUICE_SVC_AFFINITY (1U << 0) /* ClientIP session affinity */
#define SLUICE_SVC_DROP_NO_BACKEND (1U << 1) /* without a usable backend, drop
					      * its packets; unset: answer a
					      * SYN with a RST and a UDP
					      * datagram with ICMP port
					      * unreachable (reject.h) */

/* Backend flags (backend_value.flags). */
#define SLUICE_BE_DRAINING (1U << 0) /* informational: the control plane
				      * removed it from the Maglev table */

/* Reply NAT flags (rnat_value.flags). */
#define SLUICE_RNAT_AMBIGUOUS (1U << 0) /* the endpoint serves several service
					 * ports: its replies cannot be restored
					 * without the flow's entry */

/* Conntrack entry flags (ct_value.flags). */
#define SLUICE_CT_F_HAIRPIN (1U << 0) /* the client is its own backend: FORWARD
				       * also rewrites the source to the hairpin
				       * address (node_config), REPLY the
				       * destination back to the client (the
				       * reply's own source); ports stay */
#define SLUICE_CT_F_REPLY (1U << 1)   /* a reply entry (backend -> client, value
				       * names the VIP); unset: a forward entry
				       * (client -> VIP, value names the backend) */

/* A flow's state (ct_value.state), the same in both of its entries. UDP
 * flows are always ESTABLISHED. */
#define SLUICE_CT_ESTABLISHED 0 /* TCP past its SYN, or UDP */
#define SLUICE_CT_NEW 1         /* TCP: only the client's SYN seen so far */
#define SLUICE_CT_CLOSING 2     /* TCP: a FIN or a RST seen, either way */

/* Key of the `services` hash: one service port on one VIP. */
struct svc_key {
	__be32 addr[4]; /* VIP, network order; IPv4 in addr[0] */
	__be16 port;    /* service port, network order */
	__u8 proto;     /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;    /* SLUICE_AF_INET or SLUICE_AF_INET6 */
};

/* Value of the `services` hash. The Maglev table is the region
 * [table_base, table_base + table_size) of `maglev_slots`. A new table is
 * written to a fresh region and then this value is replaced: the hash map
 * (BPF_F_NO_PREALLOC) swaps the whole element under RCU, so a packet sees
 * the old base and size or the new ones, never a mix, and the old region is
 * reused only after every program run that could still read it has ended. */
struct svc_value {
	__u32 id;               /* index into svc_stats, key of affinity */
	__u32 flags;            /* SLUICE_SVC_* */
	__u32 affinity_timeout; /* seconds of idleness before affinity expires */
	__u32 table_size;       /* slots in this service's Maglev table (prime); 0: no backend */
	__u32 table_base;       /* first slot of the table in maglev_slots */
	__u32 pad;
};

/* Key of the `vips` hash: every address that carries at least one service,
 * so that traffic to a VIP on an undefined port can be told apart from
 * traffic that is none of our business. */
struct vip_key {
	__be32 addr[4]; /* network order */
	__u8 family;
	__u8 pad[3];
};

struct vip_value {
	__u32 services; /* how many service ports use this VIP (informational) */
};

/* Value of the `backends` array, indexed by a __u32 backend id. An all-zero
 * value (family 0) is a deleted backend: conntrack entries naming it are
 * rescheduled. */
struct backend_value {
	__be32 addr[4]; /* network order */
	__be16 port;    /* network order */
	__u8 family;
	__u8 flags;     /* SLUICE_BE_* */
	__u32 svc_id;   /* the service this backend belongs to (ids are per
			 * service and endpoint): a flow's entry is only good
			 * while its backend id still belongs to its service */
};

/* Key of the `conntrack` LRU hash: an IPv4 packet's own 5-tuple, as it
 * arrives. The direction is in the value, so one lookup finds either kind of
 * entry: a client's packet to a VIP hits its flow's forward entry, a
 * backend's packet to a client its reply entry. The two kinds cannot collide:
 * a forward key's destination is a VIP, a reply key's source is a backend and
 * its destination a client, and a VIP is neither.
 *
 * 16 bytes, where a family-generic key would take 40: the key is hashed and
 * compared on every packet, and a million flows are two million entries.
 * (Measured on the established path: about 4 ns a packet less, and 40 bytes
 * less per entry with the value below.) */
struct ct_key {
	__be32 saddr;  /* network order */
	__be32 daddr;  /* network order */
	__be16 sport;  /* network order */
	__be16 dport;  /* network order */
	__u8 proto;
	__u8 pad[3];   /* zero */
};

/* Value of the `conntrack` LRU hash. Times are whole seconds of
 * CLOCK_MONOTONIC (bpf_ktime_get_coarse_ns() / 1e9, clock.h): an entry is
 * dead from second `expires` on, and a packet that finds a dead entry is
 * treated as finding none. Both entries of a flow carry the same state and
 * (within a refresh step) the same expiry: whichever way a packet goes, it
 * refreshes both (ct.h), so a flow lives as long as either side talks. */
struct ct_value {
	__be32 nat_addr;    /* FORWARD: the backend's address; REPLY: the VIP */
	__be16 nat_port;    /* FORWARD: backend port; REPLY: service port */
	__u8 state;         /* SLUICE_CT_ESTABLISHED, _NEW or _CLOSING */
	__u8 flags;         /* SLUICE_CT_F_* */
	__u32 backend_id;   /* the backend this flow was given */
	__u32 svc_id;
	__u32 created;      /* second of the flow's first packet */
	__u32 expires;      /* first second the entry is dead: the last
			     * packet's second plus its state's idle timeout */
};

/* Key of the `conntrack6` LRU hash: an IPv6 packet's own 5-tuple, as it
 * arrives; the same meaning as struct ct_key. 40 bytes: the table is IPv4's
 * twin rather than a family-generic one, so that IPv4's key stays 16. */
struct ct6_key {
	__be32 saddr[4]; /* network order */
	__be32 daddr[4]; /* network order */
	__be16 sport;    /* network order */
	__be16 dport;    /* network order */
	__u8 proto;
	__u8 pad[3];     /* zero */
};

/* Value of the `conntrack6` LRU hash: struct ct_value with a 16-byte
 * address, field for field the same meanings. */
struct ct6_value {
	__be32 nat_addr[4]; /* FORWARD: the backend's address; REPLY: the VIP */
	__be16 nat_port;    /* FORWARD: backend port; REPLY: service port */
	__u8 state;         /* SLUICE_CT_ESTABLISHED, _NEW or _CLOSING */
	__u8 flags;         /* SLUICE_CT_F_* */
	__u32 backend_id;
	__u32 svc_id;
	__u32 created;
	__u32 expires;
};

/* Key of the `reply_nat` hash: a backend endpoint, as its replies carry it
 * in their source address and port. */
struct rnat_key {
	__be32 addr[4]; /* network order */
	__be16 port;    /* network order */
	__u8 proto;
	__u8 family;
};

/* Value of the `reply_nat` hash: the backend this endpoint is, when it
 * serves exactly one service port, so that a reply of a flow this node holds
 * no entry for (another load-balancer node placed it, or this node before
 * its entry was evicted) is restored to that service port's VIP and port
 * (svc_frontends[backend's svc_id]) without state. An endpoint behind
 * several service ports is marked SLUICE_RNAT_AMBIGUOUS (backend_id 0): its
 * replies without an entry pass unrewritten and are counted. */
struct rnat_value {
	__u32 backend_id;
	__u32 flags;        /* SLUICE_RNAT_* */
};

/* Key of the `affinity` LRU hash: one client of one service. */
struct affinity_key {
	__be32 client[4]; /* network order */
	__u32 svc_id;
	__u8 family;
	__u8 pad[3];
};

struct affinity_value {
	__u32 backend_id;
	__u32 pad;
	__u64 last_seen_ns; /* bpf_ktime_get_coarse_ns() (CLOCK_MONOTONIC, tick resolution) */
};

/* Per-CPU stats, per service (svc_stats) and per backend (backend_stats).
 * All fields are __u64 so that user space can sum them element-wise. */
struct lb_stats {
	__u64 packets;   /* packets forwarded to (or answered from) this object */
	__u64 bytes;     /* their L3 length */
	__u64 new_conns; /* flows this object was chosen for */
	__u64 reply_packets; /* reverse-NAT packets on the way back */
};

/* Global per-CPU verdict and drop counters, one field per reason. */
struct global_stats {
	__u64 rx_packets;        /* every packet the programs saw */
	__u64 passed_other;      /* not ours: passed untouched */
	__u64 forwarded;         /* rewritten and redirected after a FIB hit */
	__u64 forwarded_stack;   /* rewritten and handed to the stack */
	__u64 replies;           /* reverse NAT applied */
	__u64 drop_malformed;    /* truncated or invalid L3/L4 header to a VIP */
	__u64 drop_fragment;     /* a later fragment to a VIP whose first fragment was not seen (frag.h) */
	__u64 drop_no_service;   /* VIP on a port/protocol no service defines */
	__u64 drop_no_backend;   /* service without a usable backend, not answered (the
				  * service says drop, not a SYN, not answerable) */
	__u64 drop_ct_full;      /* conntrack insert failed */
	__u64 passed_malformed;  /* truncated packet not addressed to a VIP */
	__u64 ct_rescheduled;    /* flow whose backend was deleted, rescheduled */
	__u64 affinity_hits;     /* new flows that reused an affinity entry */
	__u64 fib_miss;          /* FIB redirect tried, not taken (no neighbour, TTL, or at XDP an
				  * egress interface without this XDP program): to the stack */
	__u64 reply_restored;    /* replies of flows without an entry, restored by reply_nat (and tracked) */
	__u64 reply_ambiguous;   /* replies without an entry from an endpoint of several service ports: passed */
	__u64 hairpin_flows;     /* new flows whose client is its own backend, source NATed to the hairpin address */
	__u64 sock_translated;   /* connect()/sendmsg() of the node's own sockets to a VIP, sent to a backend */
	__u64 reject_tcp_rst;    /* SYNs to a service without a usable backend, answered with a RST */
	__u64 reject_icmp_unreach; /* UDP to a service without a usable backend, answered with ICMP port unreachable */
	__u64 reject_rate_limited; /* packets that would have been answered, over the rate limit: dropped */
	__u64 ct_expired;        /* packets that found their entry dead (idle past its timeout): judged without it */
	__u64 ct_untracked;      /* new flows balanced but not tracked: over the flood guard's rate, or a RST */
	__u64 ct_reply_clash;    /* new flows refused: their reply tuple belongs to another established flow */
	__u64 ct_reply_recreated; /* reply entries a flow's forward packets found gone and wrote again */
	__u64 ct_reply_stale;    /* reply entries whose backend is no longer theirs: removed, the packet judged without */
	__u64 frag_translated;   /* fragments after a datagram's first, translated as their first was */
	__u64 icmp_translated;   /* ICMP errors about a tracked flow, translated through the NAT */
	__u64 icmp_frag_needed;  /* DF packets over the egress MTU, answered with "fragmentation needed" */
};

/* Value of the one-entry `node_config` array: this node's settings that the
 * control plane changes while the programs run (the Kubernetes Node object
 * gives the node's address after start), unlike the .rodata settings fixed
 * at load (config.h). */
struct node_config {
	__be32 hairpin_addr;     /* network order; the address a flow whose client
				  * is its own backend is source-NATed to (a pod
				  * drops a packet from its own address); 0: no
				  * hairpin SNAT, such flows are only DNATed */
	__u32 pad;
	__u64 sock_netns_cookie; /* the network namespace whose sockets the cgroup
				  * programs translate (SO_NETNS_COOKIE); 0: none */
};

/* Value of the one-entry `node_config6` array: node_config's IPv6 setting.
 * A table of its own so that node_config keeps the size a pinned map of an
 * IPv4-only version has. */
struct node_config6 {
	__be32 hairpin_addr[4]; /* network order; all zero: no hairpin SNAT of
				 * IPv6 flows */
};

/* Key of the `sock_rnat` LRU hash: one socket of the node's own processes and
 * the backend it was sent to in place of a VIP. */
struct sock_rnat_key {
	__u64 cookie;   /* bpf_get_socket_cookie() */
	__be32 addr;    /* the backend's address, network order */
	__be16 port;    /* the backend's port, network order */
	__u8 proto;     /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};

/* Value of `sock_rnat`: the VIP and port the socket asked for, which
 * recvmsg() and getpeername() report in place of the backend's. */
struct sock_rnat_value {
	__be32 addr;    /* network order */
	__be16 port;    /* network order */
	__u8 pad[2];
};

/* Key and value of the `sock_rnat6` LRU hash: sock_rnat for IPv6 sockets. */
struct sock_rnat6_key {
	__u64 cookie;     /* bpf_get_socket_cookie() */
	__be32 addr[4];   /* the backend's address, network order */
	__be16 port;      /* network order */
	__u8 proto;
	__u8 pad[5];
};

struct sock_rnat6_value {
	__be32 addr[4];   /* the VIP, network order */
	__be16 port;      /* network order */
	__u8 pad[2];
};

/* Where sluice_lookup (bpf/lookup.bpf.c) writes its struct lookup_result
 * in the frame it is test-run on: past any Ethernet + IPv4 + TCP headers
 * with options (14 + 60 + 60), 8-aligned, so that the answer never overlaps
 * what the decision read. The lookup frame of an IPv6 flow carries no
 * extension headers (14 + 40 + 60 fits too). The frame's bytes between the headers and here
 * are padding that no parser looks at. */
#define SLUICE_LOOKUP_OFF 136

/* What the load balancer would do with one packet (sluice_lookup's answer):
 * lb_decide()'s outcome and its struct nat_action, read-only, and the Maglev
 * slot of the packet's destination service whatever the outcome. */
struct lookup_result {
	__s32 rc;           /* SLUICE_NAT_FWD, SLUICE_NAT_REPLY, SLUICE_PASS or a SLUICE_ERR_* (negative) */
	__u32 svc_id;       /* the service the decision went by (a flow's entry's, for conntrack); 0: none */
	__u32 backend_id;   /* the backend it goes to (FWD) or whose reply it is (REPLY) */
	__be32 new_addr[4]; /* FWD: the backend's address; REPLY: the VIP the source is restored to;
			     * network order; IPv4 in new_addr[0] */
	__be16 new_port;    /* its port, network order */
	__u8 new_flow;      /* FWD: placed now (affinity or Maglev), not by a conntrack entry */
	__u8 affinity_hit;  /* placed by a ClientIP affinity entry */
	__u8 rescheduled;   /* a forward entry was found and not followed: placed again */
	__u8 reply_restored;  /* REPLY without an entry, through reply_nat */
	__u8 reply_ambiguous; /* PASS: a reply without an entry from an endpoint of several service ports */
	__u8 ct_dead;       /* the packet's entry was dead (1: expired; 2: a reply entry
			     * whose backend is no longer its own): judged without it */
	__u32 dst_svc_id;   /* the service on the packet's destination (VIP, port, protocol); 0: none */
	__u32 hash;         /* flow_hash of the packet's 5-tuple */
	__u32 table_size;   /* the destination service's Maglev table size; 0: none */
	__u32 slot;         /* maglev_slot(hash) (0 without a table) */
	__u8 family;        /* the packet's: SLUICE_AF_INET or SLUICE_AF_INET6 */
	__u8 pad[3];
};

/* Runtime settings, set in .rodata before load (see bpf/include/config.h). */

SLUICE_STATIC_ASSERT(sizeof(struct svc_key) == 20, "svc_key layout");
SLUICE_STATIC_ASSERT(sizeof(struct svc_value) == 24, "svc_value layout");
SLUICE_STATIC_ASSERT(sizeof(struct vip_key) == 20, "vip_key layout");
SLUICE_STATIC_ASSERT(sizeof(struct vip_value) == 4, "vip_value layout");
SLUICE_STATIC_ASSERT(sizeof(struct backend_value) == 24, "backend_value layout");
SLUICE_STATIC_ASSERT(sizeof(struct ct_key) == 16, "ct_key layout");
SLUICE_STATIC_ASSERT(sizeof(struct ct_value) == 24, "ct_value layout");
SLUICE_STATIC_ASSERT(sizeof(struct rnat_key) == 20, "rnat_key layout");
SLUICE_STATIC_ASSERT(sizeof(struct rnat_value) == 8, "rnat_value layout");
SLUICE_STATIC_ASSERT(sizeof(struct affinity_key) == 24, "affinity_key layout");
SLUICE_STATIC_ASSERT(sizeof(struct affinity_value) == 16, "affinity_value layout");
SLUICE_STATIC_ASSERT(sizeof(struct lb_stats) == 32, "lb_stats layout");
SLUICE_STATIC_ASSERT(sizeof(struct global_stats) == 232, "global_stats layout");
SLUICE_STATIC_ASSERT(sizeof(struct node_config) == 16, "node_config layout");
SLUICE_STATIC_ASSERT(sizeof(struct sock_rnat_key) == 16, "sock_rnat_key layout");
SLUICE_STATIC_ASSERT(sizeof(struct sock_rnat_value) == 8, "sock_rnat_value layout");
SLUICE_STATIC_ASSERT(sizeof(struct lookup_result) == 56, "lookup_result layout");
SLUICE_STATIC_ASSERT(sizeof(struct ct6_key) == 40, "ct6_key layout");
SLUICE_STATIC_ASSERT(sizeof(struct ct6_value) == 36, "ct6_value layout");
SLUICE_STATIC_ASSERT(sizeof(struct node_config6) == 16, "node_config6 layout");
SLUICE_STATIC_ASSERT(sizeof(struct sock_rnat6_key) == 32, "sock_rnat6_key layout");
SLUICE_STATIC_ASSERT(sizeof(struct sock_rnat6_value) == 20, "sock_rnat6_value layout");

#endif /* SLUICE_SHARED_H */
