/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * reject.h: answering a packet for a service without a usable backend, as
 * kube-proxy does, so that a client fails at once instead of waiting for a
 * timeout: a TCP SYN gets a RST from the VIP and service port (RST|ACK, its
 * acknowledgement the SYN's sequence number plus one, as Linux answers a SYN
 * to a closed port), a UDP datagram an ICMP destination unreachable, port
 * unreachable, from the VIP, quoting the datagram's IP header and the start
 * of its payload. Any other packet for such a service (TCP without SYN or
 * with ACK or RST, a fragment, one to or from a group address, anything for
 * a service that says drop) is dropped, and so is an answer over the rate
 * limit (cfg_reject_rate, cfg_reject_burst). An ICMP error is never
 * answered: the programs pass ICMP untouched before it gets here.
 *
 * What both entry points share is here: whether a packet may be answered,
 * the token bucket, and the answer's headers, built on the stack with their
 * checksums summed from scratch over fixed-size buffers. Each entry point
 * reshapes its own frame (XDP: bpf_xdp_adjust_head/tail; tc: the skb
 * helpers) and writes these headers into it.
 */
#ifndef SLUICE_REJECT_H
#define SLUICE_REJECT_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lb.h"
#include "csum.h"
#include "icmp.h"

#ifndef SLUICE_REJECT_QUOTE_L4
/* Bytes of a datagram, from its UDP header on, that an ICMP error quotes
 * after the datagram's IP header. RFC 792 asks for 8 (the UDP header, which
 * is what the sender's kernel needs to find the socket); Cilium quotes 64,
 * and so do we: a multiple of 4, as the sum over the quote wants. */
#define SLUICE_REJECT_QUOTE_L4 64
#endif
/* The longest quote: an IPv4 header with the most options, and the rest. */
#define REJECT4_QUOTE_MAX (60 + SLUICE_REJECT_QUOTE_L4)
_Static_assert(REJECT4_QUOTE_MAX % 4 == 0, "the quote is summed in 4-byte words");

/* The answers' frames: Ethernet, IPv4 without options, then TCP without
 * options (a RST), or the ICMP header and the quote. */
#define REJECT4_RST_LEN (sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct tcphdr))
#define REJECT4_ICMP_LEN (sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct icmp4hdr))
#define REJECT4_TTL 64
#define REJECT4_IP_DF 0x4000

/* What an answer takes from the packet it answers, read before the frame is
 * reshaped. Addresses, ports and sequence numbers in network order. */
struct reject4_orig {
	__u8 dmac[ETH_ALEN];  /* the packet's destination: the answer's source */
	__u8 smac[ETH_ALEN];  /* the packet's source: the answer's destination */
	__be32 client;        /* the packet's source address */
	__be32 vip;           /* its destination address */
	__be16 sport;         /* TCP: the client's port */
	__be16 dport;         /* TCP: the service port */
	__be32 ack_seq;       /* TCP: the RST's acknowledgement number */
	__u32 ihl_len;        /* bytes of the packet's IPv4 header, options included */
	__u32 quote_len;      /* UDP: bytes of the packet, from its IP header, to quote */
};

/* Whether an address may be answered: not "this network" (0/8), loopback,
 * multicast, reserved or the limited broadcast. A directed broadcast cannot
 * be told from here (that needs the prefix); it is not a VIP, and a client
 * sending from one is spoofing. */
static __always_inline int reject4_unicast(__be32 addr)
{
	__u32 first = bpf_ntohl(addr) >> 24;

	return first != 0 && first != 127 && first < 224;
}

/* Whether a packet may be answered at all: neither sent to a link-layer
 * group address (a broadcast or multicast frame) nor from one (not a valid
 * source), and both its addresses unicast. Shared by the answers to
 * packets without a backend and fragmentation needed (pmtu.h). */
static __always_inline int reject4_answerable(const struct ethhdr *eth,
					      const struct iphdr *iph)
{
	return !((eth->h_dest[0] | eth->h_source[0]) & 1) &&
	       reject4_unicast(iph->saddr) && reject4_unicast(iph->daddr);
}

/* A quote of a datagram, zero past its length so that a sum over all of it
 * is the sum of the quote (an odd last byte taken as the high byte of a
 * word, as RFC 1071 pads it). A power of two, for reject4_quote_len(). */
struct reject4_quote {
	__u32 w[32];
};
_Static_assert(sizeof(struct reject4_quote) >= REJECT4_QUOTE_MAX &&
	       (sizeof(struct reject4_quote) & (sizeof(struct reject4_quote) - 1)) == 0,
	       "a quote fits, and the buffer's size is a mask");

/* The quote's length (reject4_prepare checked it), bounded for the
 * verifier, which wants a size for the load and store helpers that is
 * within the buffer and not 0: hidden from the compiler, which would fold
 * the mask away knowing the checks, and masked. */
static __always_inline __u32 reject4_quote_len(const struct reject4_orig *o)
{
	__u32 len = o->quote_len;

	asm volatile("" : "+r"(len));
	return ((len - 1) & (sizeof(struct reject4_quote) - 1)) + 1;
}

/*
 * Whether the packet of `act` (a SYN or a UDP datagram for a service without
 * a usable backend, lb_decide() found) may be answered, and what the answer
 * takes from it. 0, or SLUICE_ERR_NO_BACKEND: not answered, dropped.
 */
static __always_inline int reject4_prepare(void *data, void *data_end,
					   const struct nat_action *act,
					   struct reject4_orig *o)
{
	struct ethhdr *eth;
	struct iphdr *iph;
	__be16 *ports;
	__sum16 *check;
	__u32 ip_len, avail, l4_min;

	/* The answers are laid out for an IPv4 header right after an
	 * untagged Ethernet header, as the parser finds every packet. */
	if (act->l3_off != sizeof(struct ethhdr) ||
	    lb_action_headers(data, data_end, act, &eth, &iph, &ports, &check))
		return SLUICE_ERR_NO_BACKEND;
	if (!reject4_answerable(eth, iph))
		return SLUICE_ERR_NO_BACKEND;

	o->ihl_len = (iph->ihl & 0xf) * 4;
	ip_len = bpf_ntohs(iph->tot_len);
	l4_min = act->udp ? sizeof(struct udphdr) : sizeof(struct tcphdr);
	if (ip_len < o->ihl_len + l4_min)
		return SLUICE_ERR_NO_BACKEND;
	if (act->udp) {
		/* The IP header and the start of the datagram, as far as the
		 * frame holds it (the parser saw its UDP header). */
		avail = data_end - (void *)iph;
		o->quote_len = o->ihl_len + SLUICE_REJECT_QUOTE_L4;
		if (o->quote_len > ip_len)
			o->quote_len = ip_len;
		if (o->quote_len > avail)
			o->quote_len = avail;
		if (o->quote_len < o->ihl_len + sizeof(struct udphdr))
			return SLUICE_ERR_NO_BACKEND;
	} else {
		struct tcphdr *th = (struct tcphdr *)ports;
		__u32 hdr_len = th->doff * 4;

		/* A SYN opens a connection; anything else (ACK, RST, no SYN)
		 * belongs to one that is not there: dropped, as Linux would
		 * not answer a RST nor a stray segment of a flow it lost. */
		if (!th->syn || th->ack || th->rst)
			return SLUICE_ERR_NO_BACKEND;
		if (ip_len < o->ihl_len + hdr_len)
			return SLUICE_ERR_NO_BACKEND;
		/* SYN and FIN take a sequence number each, as data does. */
		o->ack_seq = bpf_htonl(bpf_ntohl(th->seq) + 1 + th->fin +
				       (ip_len - o->ihl_len - hdr_len));
		o->sport = th->source;
		o->dport = th->dest;
	}
	__builtin_memcpy(o->dmac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(o->smac, eth->h_source, ETH_ALEN);
	o->client = iph->saddr;
	o->vip = iph->daddr;
	return 0;
}

/* The token bucket of one CPU. */
struct reject_bucket {
	__u64 tokens;  /* answers that may be sent now */
	__u64 last_ns; /* lb_now() of the last top-up; 0: none yet */
};

/* Per CPU, so that taking a token needs no atomics: the limit is
 * cfg_reject_rate a second on each CPU that receives such packets. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct reject_bucket);
} reject_bucket SEC(".maps") __weak;

/* Take a token from this CPU's bucket: 1 if an answer may be sent. */
static __always_inline int reject_take(void)
{
	__u32 zero = 0;
	struct reject_bucket *b = bpf_map_lookup_elem(&reject_bucket, &zero);
	__u64 now, elapsed, full_ns, add;

	if (!b || !cfg_reject_burst)
		return 0;
	now = lb_now();
	if (!b->last_ns) {
		b->tokens = cfg_reject_burst;
		b->last_ns = now;
	} else if (cfg_reject_rate) {
		elapsed = now - b->last_ns;
		/* Past the time a bucket takes to fill, it is full; below it,
		 * elapsed x rate < burst x 1e9 cannot overflow. */
		full_ns = (__u64)cfg_reject_burst * SLUICE_NS_PER_SEC / cfg_reject_rate;
		if (elapsed >= full_ns) {
			b->tokens = cfg_reject_burst;
			b->last_ns = now;
		} else {
			add = elapsed * cfg_reject_rate / SLUICE_NS_PER_SEC;
			if (add) {
				b->tokens += add;
				if (b->tokens > cfg_reject_burst)
					b->tokens = cfg_reject_burst;
				/* Keep the fraction of a token already
				 * earned. */
				b->last_ns += add * SLUICE_NS_PER_SEC / cfg_reject_rate;
			}
		}
	}
	if (!b->tokens)
		return 0;
	b->tokens--;
	return 1;
}

/* An answer's Ethernet header: back to where the packet came from. */
static __always_inline void reject4_eth(struct ethhdr *eth,
					const struct reject4_orig *o)
{
	__builtin_memcpy(eth->h_dest, o->smac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, o->dmac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
}

/* An answer's IPv4 header, from the VIP to the client, with its checksum. */
static __always_inline void reject4_iphdr(struct iphdr *ip,
					  const struct reject4_orig *o,
					  __u8 proto, __u16 len, __u16 frag)
{
	__builtin_memset(ip, 0, sizeof(*ip));
	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = bpf_htons(len);
	ip->frag_off = bpf_htons(frag);
	ip->ttl = REJECT4_TTL;
	ip->protocol = proto;
	ip->saddr = o->vip;
	ip->daddr = o->client;
	ip->check = csum_finish(csum_sum(ip, sizeof(*ip), 0));
}

/* The headers of a RST answering a SYN. */
struct reject4_rst {
	struct iphdr ip;
	struct tcphdr tcp;
};

/* Build the RST's IP and TCP headers, with their checksums. */
static __always_inline void reject4_tcp_rst(struct reject4_rst *r,
					    const struct reject4_orig *o)
{
	/* Linux sets DF on its RSTs, and sends them without options. */
	reject4_iphdr(&r->ip, o, IPPROTO_TCP, sizeof(*r), REJECT4_IP_DF);
	__builtin_memset(&r->tcp, 0, sizeof(r->tcp));
	r->tcp.source = o->dport;
	r->tcp.dest = o->sport;
	/* The SYN carried no ACK: the RST takes sequence number 0 and
	 * acknowledges what the SYN took (RFC 793, "Reset Generation"). */
	r->tcp.ack_seq = o->ack_seq;
	r->tcp.doff = sizeof(r->tcp) / 4;
	r->tcp.rst = 1;
	r->tcp.ack = 1;
	r->tcp.check = csum_finish(csum_sum(&r->tcp, sizeof(r->tcp),
					    csum_pseudo4(o->vip, o->client, IPPROTO_TCP,
							 sizeof(r->tcp))));
}

/* The headers of an ICMP port unreachable; the quote follows them. */
struct reject4_unreach {
	struct iphdr ip;
	struct icmp4hdr icmp;
};

/* Build the ICMP port unreachable's IP and ICMP headers, with their
 * checksums, for the quote `q` of `quote_len` bytes. */
static __always_inline void reject4_icmp_unreach(struct reject4_unreach *u,
						 const struct reject4_orig *o,
						 struct reject4_quote *q,
						 __u32 quote_len)
{
	/* Linux sends its ICMP errors without DF (a quote may be cut). */
	reject4_iphdr(&u->ip, o, IPPROTO_ICMP, sizeof(*u) + quote_len, 0);
	__builtin_memset(&u->icmp, 0, sizeof(u->icmp));
	u->icmp.type = ICMP4_DEST_UNREACH;
	u->icmp.code = ICMP4_PORT_UNREACH;
	u->icmp.checksum = csum_finish(csum_sum(&u->icmp, sizeof(u->icmp),
						csum_sum(q, sizeof(*q), 0)));
}

#endif /* SLUICE_REJECT_H */
