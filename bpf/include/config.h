/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * config.h: runtime settings, read-only data set by the addon before load
 * (skel->rodata->cfg_*). The verifier sees them as constants, so a disabled
 * feature costs nothing on the fast path.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

/* 1: after DNAT, ask the FIB for the next hop and redirect the packet out of
 * the right interface ourselves. 0: always hand the rewritten packet to the
 * kernel's stack (slower, but works where redirect cannot, e.g. into a veth
 * whose peer has neither an XDP program nor GRO). */
const volatile __u8 cfg_fib_redirect __weak = 1;

/* 1: a reply of a flow without a conntrack entry (placed by another
 * load-balancer node, whose ECMP share the reply's path does not follow) is
 * restored to its service's VIP and port through reply_nat, when its source
 * endpoint serves exactly one service port. 0: such replies pass untouched,
 * and traffic that reaches a backend's service port directly (not through a
 * VIP) through this node is never rewritten. */
const volatile __u8 cfg_stateless_reply __weak = 1;

/* Idle timeouts of a flow, in seconds, by its state (ct.h): a flow none of
 * whose packets came for this long (or for 7/8 of it: expiries are moved
 * once a step of 1/8) is dead, and the next packet of its tuple is placed
 * afresh. Chosen beside the anchors (README "Flow
 * lifecycle"): Linux conntrack keeps an unanswered SYN 120 s, an
 * established connection 5 days, a closing one 10-120 s, UDP 30-120 s;
 * IPVS 15 min established, UDP 5 min; Cilium 60 s SYN, 6 h established,
 * 10 s closing, 60 s for UDP. Sluice takes Cilium's: a flow's entries are
 * a cache of a decision Maglev makes again the same way while the backends
 * do not change, so an idle flow losing them costs nothing while they do
 * not, and a long timeout keeps dead flows in the table. */
const volatile __u32 cfg_ct_tcp_syn __weak = 60;
const volatile __u32 cfg_ct_tcp_established __weak = 21600;
const volatile __u32 cfg_ct_tcp_closing __weak = 10;
const volatile __u32 cfg_ct_udp __weak = 60;

/* The flood guard (Katran's idea): past this many new flows in one second
 * on one CPU, further new flows that second are still balanced by Maglev,
 * but not tracked (counted as ct_untracked), so that a SYN flood cannot
 * evict the table's live flows. 0: no limit. Katran's default. */
const volatile __u32 cfg_ct_flood_rate __weak = 125000;

/* Answers to packets for a service without a usable backend (a RST to a
 * SYN, ICMP port unreachable to a UDP datagram: reject.h) come out of a
 * token bucket per CPU: cfg_reject_rate tokens a second, at most
 * cfg_reject_burst held, the bucket full at a CPU's first answer. Over the
 * limit the packet is dropped and counted (reject_rate_limited), so that
 * spoofed sources cannot make sluice send more than rate x CPUs answers a
 * second, each for one packet and at most 28 bytes (an IP and an ICMP
 * header) longer than it. Default: 1,000 a second with a burst of 100, per
 * CPU (Linux's own ICMP limit is 1,000 a second with a burst of 50, per
 * host). A rate of 0 never refills the bucket; a burst of 0 answers
 * nothing. */
const volatile __u32 cfg_reject_rate __weak = 1000;
const volatile __u32 cfg_reject_burst __weak = 100;

#endif /* SLUICE_CONFIG_H */
