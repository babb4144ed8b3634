// SPDX-License-Identifier: Apache-2.0
#include "layouts.h"

#include <bpf/libbpf.h>

#include <cstddef>
#include <initializer_list>
#include <utility>

#include "sluice_shared.h"
/* lb_decide()'s outcomes; by path, since native/errors.h shadows the name. */
#include "../bpf/include/errors.h"

namespace sluice {

namespace {

using Field = std::pair<const char *, size_t>;

#define F(type, field) Field{#field, offsetof(struct type, field)}

void Add(Napi::Env env, Napi::Object &out, const char *name, size_t size,
	 std::initializer_list<Field> fields)
{
	Napi::Object layout = Napi::Object::New(env);
	Napi::Object offsets = Napi::Object::New(env);
	for (const Field &f : fields)
		offsets.Set(f.first, Napi::Number::New(env, f.second));
	layout.Set("size", Napi::Number::New(env, size));
	layout.Set("offsets", offsets);
	out.Set(name, layout);
}

#define LAYOUT(type, ...) Add(env, out, #type, sizeof(struct type), {__VA_ARGS__})

} // namespace

Napi::Value Layouts(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Napi::Object out = Napi::Object::New(env);

	LAYOUT(svc_key, F(svc_key, addr), F(svc_key, port), F(svc_key, proto),
	       F(svc_key, family));
	LAYOUT(svc_value, F(svc_value, id), F(svc_value, flags),
	       F(svc_value, affinity_timeout), F(svc_value, table_size),
	       F(svc_value, table_base), F(svc_value, pad));
	LAYOUT(vip_key, F(vip_key, addr), F(vip_key, family), F(vip_key, pad));
	LAYOUT(vip_value, F(vip_value, services));
	LAYOUT(backend_value, F(backend_value, addr), F(backend_value, port),
	       F(backend_value, family), F(backend_value, flags),
	       F(backend_value, svc_id));
	LAYOUT(ct_key, F(ct_key, saddr), F(ct_key, daddr), F(ct_key, sport),
	       F(ct_key, dport), F(ct_key, proto), F(ct_key, pad));
	LAYOUT(ct_value, F(ct_value, nat_addr), F(ct_value, nat_port),
	       F(ct_value, state), F(ct_value, flags), F(ct_value, backend_id),
	       F(ct_value, svc_id), F(ct_value, created),
	       F(ct_value, expires));
	LAYOUT(ct6_key, F(ct6_key, saddr), F(ct6_key, daddr), F(ct6_key, sport),
	       F(ct6_key, dport), F(ct6_key, proto), F(ct6_key, pad));
	LAYOUT(ct6_value, F(ct6_value, nat_addr), F(ct6_value, nat_port),
	       F(ct6_value, state), F(ct6_value, flags),
	       F(ct6_value, backend_id), F(ct6_value, svc_id),
	       F(ct6_value, created), F(ct6_value, expires));
	LAYOUT(rnat_key, F(rnat_key, addr), F(rnat_key, port), F(rnat_key, proto),
	       F(rnat_key, family));
	LAYOUT(rnat_value, F(rnat_value, backend_id), F(rnat_value, flags));
	LAYOUT(affinity_key, F(affinity_key, client), F(affinity_key, svc_id),
	       F(affinity_key, family), F(affinity_key, pad));
	LAYOUT(affinity_value, F(affinity_value, backend_id),
	       F(affinity_value, pad), F(affinity_value, last_seen_ns));
	LAYOUT(lb_stats, F(lb_stats, packets), F(lb_stats, bytes),
	       F(lb_stats, new_conns), F(lb_stats, reply_packets));
	LAYOUT(global_stats, F(global_stats, rx_packets),
	       F(global_stats, passed_other), F(global_stats, forwarded),
	       F(global_stats, forwarded_stack), F(global_stats, replies),
	       F(global_stats, drop_malformed), F(global_stats, drop_fragment),
	       F(global_stats, drop_no_service),
	       F(global_stats, drop_no_backend), F(global_stats, drop_ct_full),
	       F(global_stats, passed_malformed),
	       F(global_stats, ct_rescheduled), F(global_stats, affinity_hits),
	       F(global_stats, fib_miss), F(global_stats, reply_restored),
	       F(global_stats, reply_ambiguous), F(global_stats, hairpin_flows),
	       F(global_stats, sock_translated),
	       F(global_stats, reject_tcp_rst),
	       F(global_stats, reject_icmp_unreach),
	       F(global_stats, reject_rate_limited),
	       F(global_stats, ct_expired), F(global_stats, ct_untracked),
	       F(global_stats, ct_reply_clash),
	       F(global_stats, ct_reply_recreated),
	       F(global_stats, ct_reply_stale),
	       F(global_stats, frag_translated),
	       F(global_stats, icmp_translated),
	       F(global_stats, icmp_frag_needed));
	LAYOUT(node_config, F(node_config, hairpin_addr), F(node_config, pad),
	       F(node_config, sock_netns_cookie));
	LAYOUT(sock_rnat_key, F(sock_rnat_key, cookie), F(sock_rnat_key, addr),
	       F(sock_rnat_key, port), F(sock_rnat_key, proto),
	       F(sock_rnat_key, pad));
	LAYOUT(sock_rnat_value, F(sock_rnat_value, addr), F(sock_rnat_value, port),
	       F(sock_rnat_value, pad));
	LAYOUT(node_config6, F(node_config6, hairpin_addr));
	LAYOUT(sock_rnat6_key, F(sock_rnat6_key, cookie),
	       F(sock_rnat6_key, addr), F(sock_rnat6_key, port),
	       F(sock_rnat6_key, proto), F(sock_rnat6_key, pad));
	LAYOUT(sock_rnat6_value, F(sock_rnat6_value, addr),
	       F(sock_rnat6_value, port), F(sock_rnat6_value, pad));
	LAYOUT(lookup_result, F(lookup_result, rc), F(lookup_result, svc_id),
	       F(lookup_result, backend_id), F(lookup_result, new_addr),
	       F(lookup_result, new_port), F(lookup_result, new_flow),
	       F(lookup_result, affinity_hit), F(lookup_result, rescheduled),
	       F(lookup_result, reply_restored),
	       F(lookup_result, reply_ambiguous), F(lookup_result, ct_dead),
	       F(lookup_result, dst_svc_id), F(lookup_result, hash),
	       F(lookup_result, table_size), F(lookup_result, slot),
	       F(lookup_result, family), F(lookup_result, pad));
	return out;
}

int NumCpus()
{
	static const int n = libbpf_num_possible_cpus();
	return n;
}

Napi::Value Constants(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Napi::Object out = Napi::Object::New(env);
#define C(name) out.Set(#name, Napi::Number::New(env, static_cast<double>(name)))
	C(SLUICE_MAX_SERVICES);
	C(SLUICE_MAX_BACKENDS);
	C(SLUICE_MAX_VIPS);
	C(SLUICE_CT_SIZE);
	C(SLUICE_CT6_SIZE);
	C(SLUICE_IPV6_MAX_EXT);
	C(SLUICE_IPV6_EXT_MAX_BYTES);
	C(SLUICE_AFFINITY_SIZE);
	C(SLUICE_SOCK_RNAT_SIZE);
	C(SLUICE_MAGLEV_MAX);
	C(SLUICE_MAGLEV_SLOTS);
	C(SLUICE_SVC_AFFINITY);
	C(SLUICE_SVC_DROP_NO_BACKEND);
	C(SLUICE_BE_DRAINING);
	C(SLUICE_CT_F_HAIRPIN);
	C(SLUICE_CT_F_REPLY);
	C(SLUICE_CT_ESTABLISHED);
	C(SLUICE_CT_NEW);
	C(SLUICE_CT_CLOSING);
	C(SLUICE_AF_INET);
	C(SLUICE_AF_INET6);
	C(SLUICE_LOOKUP_OFF);
	/* lb_decide()'s outcomes, as sluice_lookup's answer gives them. */
	C(SLUICE_PASS);
	C(SLUICE_NAT_FWD);
	C(SLUICE_NAT_REPLY);
	C(SLUICE_ERR_NO_SERVICE);
	C(SLUICE_ERR_NO_BACKEND);
	C(SLUICE_ERR_CT_CLASH);
#undef C
	out.Set("numCpus", Napi::Number::New(env, NumCpus()));
	return out;
}

} // namespace sluice
