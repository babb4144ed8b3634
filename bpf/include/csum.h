/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * csum.h: incremental Internet checksum updates (RFC 1624, eqn. 3:
 * HC' = ~(~HC + ~m + m')) for the XDP path, which sees raw frames with full
 * checksums, and for the IPv4 header checksum at tc (never offloaded). tc
 * updates the L4 checksum with the kernel's bpf_l4_csum_replace instead,
 * because an skb may carry a partial (offloaded) one.
 *
 * One's complement sums do not depend on byte order as long as every 16-bit
 * word is taken as it sits in memory, so the values below are never swapped.
 */
#ifndef SLUICE_CSUM_H
#define SLUICE_CSUM_H

#include <linux/types.h>

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* Accumulate the change of a 32-bit field from `from` to `to`. */
static __always_inline __u32 csum_delta4(__u32 acc, __be32 from, __be32 to)
{
	acc += (__u16)~(from & 0xffff) + (__u16)~(from >> 16);
	acc += (to & 0xffff) + (to >> 16);
	return acc;
}

static __always_inline __u32 csum_delta2(__u32 acc, __be16 from, __be16 to)
{
	return acc + (__u16)~from + to;
}

/* Apply an accumulated delta to a checksum field. */
static __always_inline __u16 csum_apply(__u16 check, __u32 delta)
{
	return (__u16)~csum_fold((__u32)(__u16)~check + delta);
}

#endif /* SLUICE_CSUM_H */
