// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_peer.bpf.c: an XDP program that passes every frame, for the far end
 * of a veth whose near end runs sluice at XDP (the demo's and the tests'
 * topologies attach it: acceptXdpTx() in src/demo/topology.ts).
 *
 * A frame that sluice sends back out of a veth with XDP_TX (the RST or ICMP
 * error answering a packet for a service without backends, a packet whose
 * next hop is the link it came in on) is put on the peer's receive ring,
 * and the veth driver then wakes the peer's NAPI only if the peer has an XDP
 * program of its own: veth_xdp_flush() looks at the peer queue's xdp_prog
 * (Linux 6.18), while veth_xdp_xmit() queued the frame as soon as the queue
 * had NAPI, which GRO alone gives it. Without a program the frame waits on
 * the ring until something sent through the veth the ordinary way (an ARP
 * request, IPv6 link-local chatter) wakes NAPI: hundreds of milliseconds
 * to forever. XDP_REDIRECT into a veth does not need this (its flush wakes
 * the peer either way), nor does a physical NIC.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int sluice_peer(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
