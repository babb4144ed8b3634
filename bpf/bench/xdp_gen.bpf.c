// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_gen.bpf.c: the traffic generator of bench/stages/traffic.ts, run with
 * BPF_PROG_TEST_RUN in live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES) on the
 * generator's veth: XDP_TX there transmits the frame to the peer, the load
 * balancer's interface, as pktgen would.
 *
 * The frame is an IPv4/UDP packet with a zero UDP checksum (allowed for
 * IPv4, and kept zero by every load balancer under test). In live-frames
 * mode the kernel recycles its pages without restoring their contents, and
 * the load balancer downstream rewrites the very same page (veth hands XDP
 * frames over without a copy), so each run first writes the whole header
 * back from the template in gen_cfg. It then makes the frame packet number
 * n of the stream: flow i = n mod flows, source address saddr_base +
 * i / ports, source port sport_base + i mod ports. So `flows` distinct
 * 5-tuples, cycled in order. The IP header checksum is computed from
 * scratch.
 *
 * Includes only bpf/bench/ headers (see xdp_parse.bpf.c); the tc program is
 * stub.h's.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "stub.h"

/* Written by the benchmark before a run. */
#define GEN_HDR_LEN (sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr))

struct gen_cfg {
	__u32 flows;		/* distinct 5-tuples, >= 1 */
	__be32 saddr_base;	/* first source address, network order */
	__u16 sport_base;	/* first source port, host order */
	__u16 ports;		/* source ports per address, >= 1 */
	__u8 hdr[44];		/* Ethernet + IPv4 + UDP header template (42 bytes) */
};

/* What was sent: every packet the program returned XDP_TX for. */
struct gen_count {
	__u64 packets;
	__u64 bytes;
	__u64 bad_frame;	/* frames that were not IPv4/UDP: passed, not sent */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_cfg);
} gen_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_count);
} gen_count SEC(".maps");

/* The next packet number, shared by all CPUs, so that a stream spread over
 * CPUs still cycles through every flow once per `flows` packets. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} gen_seq SEC(".maps");

static __always_inline __u16 ip_checksum(struct iphdr *ip)
{
	__u16 *w = (__u16 *)ip;
	__u32 sum = 0;

	ip->check = 0;
#pragma unroll
	for (int i = 0; i < (int)(sizeof(*ip) / 2); i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__u32 zero = 0;
	struct gen_cfg *cfg = bpf_map_lookup_elem(&gen_cfg, &zero);
	struct gen_count *cnt = bpf_map_lookup_elem(&gen_count, &zero);
	__u64 *seq = bpf_map_lookup_elem(&gen_seq, &zero);

	if (!cfg || !cnt || !seq)
		return XDP_ABORTED;
	if ((void *)(udp + 1) > data_end) {
		cnt->bad_frame++;
		return XDP_PASS;
	}
	__builtin_memcpy(data, cfg->hdr, GEN_HDR_LEN);
	/* The template is built by the benchmark: IPv4 without options, UDP. */
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 ||
	    ip->protocol != IPPROTO_UDP) {
		cnt->bad_frame++;
		return XDP_PASS;
	}
	__u32 flows = cfg->flows ? cfg->flows : 1;
	__u32 ports = cfg->ports ? cfg->ports : 1;
	__u32 i = (__u32)(__sync_fetch_and_add(seq, 1) % flows);

	ip->saddr = bpf_htonl(bpf_ntohl(cfg->saddr_base) + i / ports);
	ip->check = ip_checksum(ip);
	udp->source = bpf_htons((__u16)(cfg->sport_base + i % ports));
	udp->check = 0;
	cnt->packets++;
	cnt->bytes += data_end - data;
	return XDP_TX;
}
