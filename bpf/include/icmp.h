/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * icmp.h: the ICMP header (RFC 792) and the types sluice reads or sends,
 * declared here because linux/icmp.h pulls in libc headers that a BPF
 * object cannot build with.
 */
#ifndef SLUICE_ICMP_H
#define SLUICE_ICMP_H

#include <linux/types.h>

struct icmp4hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	/* Destination unreachable: 0, or for "fragmentation needed" 16
	 * unused bits then the next hop's MTU (RFC 1191), network order. */
	__be32 unused;
};

#define ICMP4_DEST_UNREACH 3
#define ICMP4_PORT_UNREACH 3  /* code of ICMP4_DEST_UNREACH */
#define ICMP4_FRAG_NEEDED 4   /* code of ICMP4_DEST_UNREACH */
#define ICMP4_TIME_EXCEEDED 11
#define ICMP4_PARAMETERPROB 12

/* The ICMPv6 header (RFC 4443), as icmp4hdr: linux/icmpv6.h is not needed
 * for four fields. */
struct icmp6hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	/* Packet too big: the MTU; parameter problem: the pointer; the
	 * other errors: unused (0). Network order. */
	__be32 data;
};

#define ICMP6_DEST_UNREACH 1
#define ICMP6_PORT_UNREACH 4  /* code of ICMP6_DEST_UNREACH */
#define ICMP6_PKT_TOOBIG 2
#define ICMP6_TIME_EXCEED 3
#define ICMP6_PARAMPROB 4
/* Types from here on are informational (echo, MLD, ND...), never errors. */
#define ICMP6_INFO_MIN 128

#endif /* SLUICE_ICMP_H */
