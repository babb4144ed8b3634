// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lookup.bpf.c: what the load balancer would do with a packet, without
 * doing it. Never attached: user space runs it through BPF_PROG_TEST_RUN on
 * a frame it builds (Operations.LookupFlow), so the answer comes from
 * lb_decide() itself and cannot drift from sluice_xdp and sluice_tc. In its
 * read-only mode the decision writes no entry (no conntrack or affinity
 * entry, no refreshed timestamp) and references no counter map; it leaves
 * the headers as they are. What it does touch, as any packet would: lb_now()'s
 * per-CPU clock cache, and the LRU maps' recently-used marks of the entries
 * it reads.
 */
#include "include/lb.h"
#include "include/lb6.h"

/* The destination service `sk` names, and its Maglev slot for res->hash. */
static __always_inline void lookup_slot(const struct svc_key *sk,
					struct lookup_result *res)
{
	struct svc_value *svc = bpf_map_lookup_elem(&services, sk);

	if (!svc)
		return;
	res->dst_svc_id = svc->id;
	res->table_size = svc->table_size;
	if (svc->table_size)
		res->slot = maglev_slot(svc, res->hash);
}

/* The Maglev slot of the packet's destination service, whatever the
 * decision: the tuple, found again from the action's offsets. */
static __always_inline void lookup_maglev(void *data, void *data_end,
					  const struct nat_action *act,
					  struct lookup_result *res)
{
	struct ethhdr *eth;
	struct iphdr *iph;
	__be16 *ports;
	__sum16 *check;
	struct svc_key sk = {};

	if (lb_action_headers(data, data_end, act, &eth, &iph, &ports, &check))
		return;
	res->hash = flow_hash4(iph->saddr, iph->daddr, ports[0], ports[1],
			       iph->protocol);
	sk.addr[0] = iph->daddr;
	sk.port = ports[1];
	sk.proto = iph->protocol;
	sk.family = SLUICE_AF_INET;
	lookup_slot(&sk, res);
}

/* lookup_maglev() for an IPv6 packet: the flow hash over the 16-byte
 * addresses, the service of family INET6. */
static __always_inline void lookup_maglev6(void *data, void *data_end,
					   struct lb6_scratch *s,
					   struct lookup_result *res)
{
	struct ethhdr *eth;
	struct ipv6hdr *ip6h;
	__be16 *ports;
	__sum16 *check;
	__u8 proto = s->act.n.udp ? IPPROTO_UDP : IPPROTO_TCP;

	if (lb6_action_headers(data, data_end, &s->act, &eth, &ip6h, &ports,
			       &check))
		return;
	res->hash = flow_hash(IP6_SADDR(ip6h), IP6_DADDR(ip6h), ports[0],
			      ports[1], proto);
	__builtin_memset(&s->sk, 0, sizeof(s->sk));
	addr6_copy(s->sk.addr, IP6_DADDR(ip6h));
	s->sk.port = ports[1];
	s->sk.proto = proto;
	s->sk.family = SLUICE_AF_INET6;
	lookup_slot(&s->sk, res);
}

/* sluice_lookup for an IPv6 frame: lb6_decide() in its read-only mode. */
static __always_inline void lookup6(struct xdp_md *ctx, void *data,
				    void *data_end, struct lookup_result *res)
{
	struct lb6_scratch *s = lb6_scratch_get(LB6_SCRATCH_LOOKUP);
	const struct nat_action *act;

	if (!s)
		return;
	__builtin_memset(&s->act, 0, sizeof(s->act));
	res->rc = lb6_decide(ctx, 0, data, data_end, data_end - data, s, 1);
	act = &s->act.n;
	res->family = SLUICE_AF_INET6;
	res->svc_id = act->svc_id;
	res->backend_id = act->backend_id;
	__builtin_memcpy(res->new_addr, s->act.new_addr, sizeof(res->new_addr));
	res->new_port = act->new_port;
	res->new_flow = act->new_flow;
	res->affinity_hit = act->affinity_hit;
	res->rescheduled = act->rescheduled;
	res->reply_restored = act->reply_restored;
	res->reply_ambiguous = act->reply_ambiguous;
	res->ct_dead = act->ct_expired ? 1 : act->reply_stale ? 2 : 0;
	lookup_maglev6(data, data_end, s, res);
}

/* XDP_PASS with the answer at SLUICE_LOOKUP_OFF, or XDP_ABORTED if the
 * frame has no room for it. */
SEC("xdp")
int sluice_lookup(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct nat_action act = {};
	struct lookup_result res = {};
	struct lookup_result *out;
	struct ethhdr *eth = data;

	/* No interface: a lookup does not ask the FIB whether a reply is
	 * addressed to this host (it is run in the daemon's namespace, not
	 * the dataplane's). */
	if ((void *)(eth + 1) <= data_end && eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		lookup6(ctx, data, data_end, &res);
		goto out;
	}
	res.rc = lb_decide(ctx, 0, data, data_end, data_end - data, 0, &act, 1);
	res.svc_id = act.svc_id;
	res.backend_id = act.backend_id;
	res.new_addr[0] = act.new_addr;
	res.family = SLUICE_AF_INET;
	res.new_port = act.new_port;
	res.new_flow = act.new_flow;
	res.affinity_hit = act.affinity_hit;
	res.rescheduled = act.rescheduled;
	res.reply_restored = act.reply_restored;
	res.reply_ambiguous = act.reply_ambiguous;
	res.ct_dead = act.ct_expired ? 1 : act.reply_stale ? 2 : 0;
	lookup_maglev(data, data_end, &act, &res);
out:
	out = data + SLUICE_LOOKUP_OFF;
	if ((void *)(out + 1) > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(out, &res, sizeof(res));
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
