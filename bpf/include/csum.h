/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * csum.h: incremental Internet checksum updates (RFC 1624, eqn. 3:
 * HC' = ~(~HC + ~m + m')) for the XDP path, which sees raw frames with full
 * checksums, and for the IPv4 header checksum at tc (never offloaded). tc
 * updates the L4 checksum with the kernel's bpf_l4_csum_replace instead,
 * because an skb may carry a partial (offloaded) one. Below them, sums from
 * scratch, for the headers of the packets reject.h builds.
 *
 * One's complement sums do not depend on byte order as long as every 16-bit
 * word is taken as it sits in memory, so the values below are never swapped.
 */
#ifndef SLUICE_CSUM_H
#define SLUICE_CSUM_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

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

/*
 * The sum of `len` bytes at `p`, added to `seed`: a 32-bit partial sum, to
 * be folded. `p` is on the stack and `len` a constant multiple of 4, as
 * bpf_csum_diff wants; it cannot fail on such arguments.
 */
static __always_inline __u32 csum_sum(void *p, __u32 len, __u32 seed)
{
	return (__u32)bpf_csum_diff(NULL, 0, p, len, seed);
}

/* The partial sum of an IPv4 pseudo-header (RFC 793, 768): the addresses,
 * a zero byte and the protocol, the L4 length. */
static __always_inline __u32 csum_pseudo4(__be32 saddr, __be32 daddr,
					  __u8 proto, __u16 len)
{
	return (saddr & 0xffff) + (saddr >> 16) + (daddr & 0xffff) +
	       (daddr >> 16) + bpf_htons((__u16)proto) + bpf_htons(len);
}

/*
 * Accumulate the change of a 16-byte (IPv6) address from `from` to `to`.
 * The words are summed whole into 64 bits and folded once (a ones'
 * complement sum does not depend on how its 16-bit words are grouped, and
 * ~w complements both halves of w): half the instructions of four
 * csum_delta4(), on IPv6's established path. The result is at most
 * 0x1fffe, so it chains and goes to csum_apply() as csum_delta4()'s does.
 */
static __always_inline __u32 csum_delta16(__u32 acc, const __be32 *from,
					  const __be32 *to)
{
	__u64 s = acc;

	s += (__u32)~from[0];
	s += (__u32)~from[1];
	s += (__u32)~from[2];
	s += (__u32)~from[3];
	s += to[0];
	s += to[1];
	s += to[2];
	s += to[3];
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	return (s & 0xffff) + (s >> 16);
}

/* The partial sum of an IPv6 pseudo-header (RFC 8200 §8.1): the
 * addresses, the upper-layer length as 32 bits, three zero bytes and the
 * next header. */
static __always_inline __u32 csum_pseudo6(const __be32 *saddr,
					  const __be32 *daddr, __u8 proto,
					  __u32 len)
{
	__u32 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < 4; i++)
		sum += (saddr[i] & 0xffff) + (saddr[i] >> 16) +
		       (daddr[i] & 0xffff) + (daddr[i] >> 16);
	return sum + bpf_htons((__u16)(len >> 16)) + bpf_htons((__u16)len) +
	       bpf_htons((__u16)proto);
}

/* A partial sum as a checksum field holds it: folded, complemented. */
static __always_inline __sum16 csum_finish(__u32 sum)
{
	return (__sum16)~csum_fold(sum);
}

#endif /* SLUICE_CSUM_H */
