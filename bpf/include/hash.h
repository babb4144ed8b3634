/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * hash.h: the flow hash that picks a Maglev slot. It must be the same on every
 * load balancer node (and in src/maglev/flow-hash.ts, which the tests use), so
 * it is a fixed-seed Jenkins lookup3 mix over the 5-tuple.
 */
#ifndef SLUICE_HASH_H
#define SLUICE_HASH_H

#include <linux/types.h>

#define SLUICE_HASH_SEED 0x5a1c3e00U

static __always_inline __u32 rol32(__u32 v, int s)
{
	return (v << s) | (v >> (32 - s));
}

/* lookup3's final(): avalanche three words into c. */
static __always_inline __u32 mix_final(__u32 a, __u32 b, __u32 c)
{
	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

/* lookup3's mix(): used between blocks of three words. */
#define SLUICE_MIX(a, b, c)                                   \
	do {                                                  \
		a -= c; a ^= rol32(c, 4);  c += b;            \
		b -= a; b ^= rol32(a, 6);  a += c;            \
		c -= b; c ^= rol32(b, 8);  b += a;            \
		a -= c; a ^= rol32(c, 16); c += b;            \
		b -= a; b ^= rol32(a, 19); a += c;            \
		c -= b; c ^= rol32(b, 4);  b += a;            \
	} while (0)

/* Hash of (saddr[4], daddr[4], ports, proto): 10 words, taken as host-order
 * loads of the network-order fields (what user space must mirror). */
static __always_inline __u32 flow_hash(const __be32 saddr[4],
				       const __be32 daddr[4], __be16 sport,
				       __be16 dport, __u8 proto)
{
	__u32 a, b, c;

	a = b = c = 0xdeadbeef + (10 << 2) + SLUICE_HASH_SEED;
	a += saddr[0]; b += saddr[1]; c += saddr[2];
	SLUICE_MIX(a, b, c);
	a += saddr[3]; b += daddr[0]; c += daddr[1];
	SLUICE_MIX(a, b, c);
	a += daddr[2]; b += daddr[3]; c += ((__u32)sport << 16) | dport;
	SLUICE_MIX(a, b, c);
	a += proto;
	return mix_final(a, b, c);
}

/* flow_hash of an IPv4 tuple: the same hash, with addr[1..3] zero (the
 * compiler folds the zero words away). */
static __always_inline __u32 flow_hash4(__be32 saddr, __be32 daddr,
					__be16 sport, __be16 dport, __u8 proto)
{
	const __be32 s[4] = { saddr }, d[4] = { daddr };

	return flow_hash(s, d, sport, dport, proto);
}

#endif /* SLUICE_HASH_H */
