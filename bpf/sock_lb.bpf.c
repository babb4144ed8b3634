// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sock_lb.bpf.c: the load balancer at the socket, for the node's own
 * processes (cgroup/connect4, sendmsg4, recvmsg4, getpeername4 and their
 * IPv6 twins connect6, sendmsg6, recvmsg6, getpeername6), as Cilium's
 * socket LB does. Their packets to a VIP never cross an interface the tc or
 * XDP programs are on before they are routed, so they are balanced where they
 * start: connect() or sendto() of a VIP:port is sent to a backend, once per
 * socket rather than per packet; the kernel routes to the backend and picks
 * the source address for it, and the backend's replies match the socket with
 * no reverse NAT. recvmsg() and getpeername() report the VIP instead of the
 * backend (sock_rnat), as a client that asked for the VIP expects.
 *
 * A cgroup program runs for every process in its cgroup, whatever its
 * network namespace: only sockets of the namespace in
 * node_config.sock_netns_cookie are translated (0: none), so that pods (in
 * their own namespaces, balanced by tc on their links) and other namespaces
 * under the same cgroup are left alone.
 *
 * The backend is Maglev's slot for a hash of the socket's cookie: one
 * backend per socket, spread over sockets. ClientIP affinity does not apply
 * here (every such socket has the node as its client).
 *
 * An IPv6 socket's VIP is an IPv6 service's (sock_rnat6 remembers it), or
 * an IPv4-mapped address (::ffff:10.96.0.10, a dual-stack socket reaching
 * an IPv4 service): that one is balanced as the IPv4 service, the backend
 * written back mapped, and remembered in sock_rnat as an IPv4 socket's.
 */
#include "include/lb.h"

/* What a sock_addr program returns: 1 lets the call go on (rewritten or
 * not); 0 fails it, with the error set by bpf_set_retval. */
#define SOCK_PASS 1
#define SOCK_FAIL 0

#ifndef ECONNREFUSED
#define ECONNREFUSED 111
#endif

static __always_inline int sock_in_node_ns(struct bpf_sock_addr *ctx)
{
	__u32 zero = 0;
	struct node_config *nc = bpf_map_lookup_elem(&node_config, &zero);

	return nc && nc->sock_netns_cookie &&
	       nc->sock_netns_cookie == bpf_get_netns_cookie(ctx);
}

static __always_inline void sock_count_new(void *map, __u32 id)
{
	struct lb_stats *s = bpf_map_lookup_elem(map, &id);

	if (s)
		s->new_conns++;
}

/* user_ip6 is read and written one word at a time, at constant offsets
 * (the verifier's rule for the context). */
static __always_inline void sock6_addr(const struct bpf_sock_addr *ctx, __be32 a[4])
{
	a[0] = ctx->user_ip6[0];
	a[1] = ctx->user_ip6[1];
	a[2] = ctx->user_ip6[2];
	a[3] = ctx->user_ip6[3];
}

static __always_inline void sock6_set(struct bpf_sock_addr *ctx, const __be32 a[4], __be16 port)
{
	ctx->user_ip6[0] = a[0];
	ctx->user_ip6[1] = a[1];
	ctx->user_ip6[2] = a[2];
	ctx->user_ip6[3] = a[3];
	ctx->user_port = port;
}

/* ::ffff:a.b.c.d: an IPv4 address on an IPv6 socket. */
static __always_inline int sock6_v4_mapped(const __be32 a[4])
{
	return a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0xffff);
}

/* Remember that the socket was sent to `be` in place of the VIP in `sk`
 * (sock_rnat for an IPv4 VIP, sock_rnat6 for an IPv6 one); 1 if this is the
 * socket's first use of that backend. */
static __always_inline int sock_note(__u64 cookie, const struct backend_value *be,
				     const struct svc_key *sk)
{
	if (sk->family == SLUICE_AF_INET) {
		struct sock_rnat_key rk = {};
		struct sock_rnat_value rv = {};

		rk.cookie = cookie;
		rk.addr = be->addr[0];
		rk.port = be->port;
		rk.proto = sk->proto;
		rv.addr = sk->addr[0];
		rv.port = sk->port;
		return !bpf_map_update_elem(&sock_rnat, &rk, &rv, BPF_NOEXIST);
	} else {
		struct sock_rnat6_key rk = {};
		struct sock_rnat6_value rv = {};

		rk.cookie = cookie;
		__builtin_memcpy(rk.addr, be->addr, sizeof(rk.addr));
		rk.port = be->port;
		rk.proto = sk->proto;
		__builtin_memcpy(rv.addr, sk->addr, sizeof(rv.addr));
		rv.port = sk->port;
		return !bpf_map_update_elem(&sock_rnat6, &rk, &rv, BPF_NOEXIST);
	}
}

/* What sock_forward decided. */
#define SOCK_UNTOUCHED 0	/* not a VIP here: leave the call as it is */
#define SOCK_TRANSLATED 1	/* *out is the backend to write in */
#define SOCK_REFUSED 2		/* no backend: fail the call */

/*
 * connect() or sendmsg() to the VIP:port in `sk` (either family, filled by
 * the caller from the context): a VIP's service port is replaced by a
 * backend; anything else is left as it is. A service without a backend
 * fails the call with ECONNREFUSED, as a closed port would.
 *
 * The hash is flow_hash with the socket's cookie as the source address, so
 * an IPv4 VIP picks the same backend whether an IPv4 socket or a dual-stack
 * socket (by its mapped address) asks.
 */
static __always_inline int sock_forward(struct bpf_sock_addr *ctx, const struct svc_key *sk,
					struct backend_value **out)
{
	__be32 cookie_words[4] = {};
	struct backend_value *be;
	struct global_stats *g;
	struct svc_value *svc;
	__u32 backend_id = 0;
	__u64 cookie;

	if (sk->proto != IPPROTO_TCP && sk->proto != IPPROTO_UDP)
		return SOCK_UNTOUCHED;
	svc = bpf_map_lookup_elem(&services, sk);
	if (!svc || !sock_in_node_ns(ctx))
		return SOCK_UNTOUCHED;

	cookie = bpf_get_socket_cookie(ctx);
	cookie_words[0] = (__u32)cookie;
	if (pick_maglev(svc, flow_hash(cookie_words, sk->addr, (__u16)(cookie >> 32),
				       sk->port, sk->proto),
			&backend_id) ||
	    !(be = backend_get(backend_id)) || be->family != sk->family) {
		bpf_set_retval(-ECONNREFUSED);
		return SOCK_REFUSED;
	}

	/* A socket's first use of this backend is its new connection (an
	 * unconnected UDP socket sends many datagrams to one). */
	if (sock_note(cookie, be, sk)) {
		sock_count_new(&svc_stats, svc->id);
		sock_count_new(&backend_stats, backend_id);
	}
	g = global_stats_get();
	if (g)
		g->sock_translated++;
	*out = be;
	return SOCK_TRANSLATED;
}

static __always_inline int sock4_forward(struct bpf_sock_addr *ctx)
{
	struct svc_key sk = {};
	struct backend_value *be = NULL;

	sk.addr[0] = ctx->user_ip4;
	/* user_port holds the port in network order in its low 16 bits. */
	sk.port = (__be16)ctx->user_port;
	sk.proto = ctx->protocol;
	sk.family = SLUICE_AF_INET;
	switch (sock_forward(ctx, &sk, &be)) {
	case SOCK_REFUSED:
		return SOCK_FAIL;
	case SOCK_TRANSLATED:
		ctx->user_ip4 = be->addr[0];
		ctx->user_port = be->port;
	}
	return SOCK_PASS;
}

/* sock4_forward for user_ip6; a mapped address is balanced as the IPv4
 * service and the backend written back mapped. */
static __always_inline int sock6_forward(struct bpf_sock_addr *ctx)
{
	struct svc_key sk = {};
	struct backend_value *be = NULL;
	int mapped;

	sock6_addr(ctx, sk.addr);
	mapped = sock6_v4_mapped(sk.addr);
	if (mapped) {
		sk.addr[0] = sk.addr[3];
		sk.addr[2] = 0;
		sk.addr[3] = 0;
		sk.family = SLUICE_AF_INET;
	} else {
		sk.family = SLUICE_AF_INET6;
	}
	sk.port = (__be16)ctx->user_port;
	sk.proto = ctx->protocol;
	switch (sock_forward(ctx, &sk, &be)) {
	case SOCK_REFUSED:
		return SOCK_FAIL;
	case SOCK_TRANSLATED:
		if (mapped) {
			ctx->user_ip6[3] = be->addr[0];
			ctx->user_port = be->port;
		} else {
			sock6_set(ctx, be->addr, be->port);
		}
	}
	return SOCK_PASS;
}

/* The VIP an IPv4 backend stands in for on this socket, if it does. */
static __always_inline struct sock_rnat_value *
sock_rnat4_get(struct bpf_sock_addr *ctx, __u64 cookie, __be32 addr)
{
	struct sock_rnat_key rk = {};

	rk.cookie = cookie;
	rk.addr = addr;
	rk.port = (__be16)ctx->user_port;
	rk.proto = ctx->protocol;
	return bpf_map_lookup_elem(&sock_rnat, &rk);
}

/* recvmsg() and getpeername(): a backend the socket was sent to in place of
 * a VIP is reported as that VIP. These hooks must return 1. */
static __always_inline int sock4_reverse(struct bpf_sock_addr *ctx)
{
	struct sock_rnat_value *rv;

	rv = sock_rnat4_get(ctx, bpf_get_socket_cookie(ctx), ctx->user_ip4);
	if (rv) {
		ctx->user_ip4 = rv->addr;
		ctx->user_port = rv->port;
	}
	return SOCK_PASS;
}

/* sock4_reverse for user_ip6: sock_rnat6, or sock_rnat for a mapped IPv4
 * backend. */
static __always_inline int sock6_reverse(struct bpf_sock_addr *ctx)
{
	__be32 a[4];
	__u64 cookie = bpf_get_socket_cookie(ctx);

	sock6_addr(ctx, a);
	if (sock6_v4_mapped(a)) {
		struct sock_rnat_value *rv = sock_rnat4_get(ctx, cookie, a[3]);

		if (rv) {
			ctx->user_ip6[3] = rv->addr;
			ctx->user_port = rv->port;
		}
	} else {
		struct sock_rnat6_key rk = {};
		struct sock_rnat6_value *rv;

		rk.cookie = cookie;
		__builtin_memcpy(rk.addr, a, sizeof(rk.addr));
		rk.port = (__be16)ctx->user_port;
		rk.proto = ctx->protocol;
		rv = bpf_map_lookup_elem(&sock_rnat6, &rk);
		if (rv)
			sock6_set(ctx, rv->addr, rv->port);
	}
	return SOCK_PASS;
}

SEC("cgroup/connect4")
int sluice_connect4(struct bpf_sock_addr *ctx)
{
	return sock4_forward(ctx);
}

SEC("cgroup/sendmsg4")
int sluice_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock4_forward(ctx);
}

SEC("cgroup/recvmsg4")
int sluice_recvmsg4(struct bpf_sock_addr *ctx)
{
	return sock4_reverse(ctx);
}

SEC("cgroup/getpeername4")
int sluice_getpeer4(struct bpf_sock_addr *ctx)
{
	return sock4_reverse(ctx);
}

SEC("cgroup/connect6")
int sluice_connect6(struct bpf_sock_addr *ctx)
{
	return sock6_forward(ctx);
}

SEC("cgroup/sendmsg6")
int sluice_sendmsg6(struct bpf_sock_addr *ctx)
{
	return sock6_forward(ctx);
}

SEC("cgroup/recvmsg6")
int sluice_recvmsg6(struct bpf_sock_addr *ctx)
{
	return sock6_reverse(ctx);
}

SEC("cgroup/getpeername6")
int sluice_getpeer6(struct bpf_sock_addr *ctx)
{
	return sock6_reverse(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
