// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_sink.bpf.c: the sink of bench/stages/traffic.ts, attached to the sink
 * namespace's interface. Counts every IPv4/UDP frame that arrives, in total
 * and by the last byte of its destination address (so the benchmark can
 * tell which backend each packet was sent to), then drops it: counting
 * costs the same whatever forwarded the packet, and nothing is answered.
 * Everything else (ARP, ICMP) goes to the stack.
 *
 * Includes only bpf/bench/ headers (see xdp_parse.bpf.c); the tc program is
 * stub.h's.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "stub.h"

struct sink_count {
	__u64 packets;
	__u64 bytes;
};

/* Key 0..255: last byte of the destination address; 256: all of them. */
#define SINK_TOTAL 256

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SINK_TOTAL + 1);
	__type(key, __u32);
	__type(value, struct sink_count);
} sink_count SEC(".maps");

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u32 total = SINK_TOTAL;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	__u32 last = bpf_ntohl(ip->daddr) & 0xff;
	struct sink_count *by = bpf_map_lookup_elem(&sink_count, &last);
	struct sink_count *all = bpf_map_lookup_elem(&sink_count, &total);

	if (by) {
		by->packets++;
		by->bytes += data_end - data;
	}
	if (all) {
		all->packets++;
		all->bytes += data_end - data;
	}
	return XDP_DROP;
}
