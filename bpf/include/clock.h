/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * clock.h: the time a packet sees, CLOCK_MONOTONIC at tick resolution (what
 * bpf_ktime_get_coarse_ns() returns), in nanoseconds.
 *
 * The coarse clock only moves when the tick does, and so does jiffies, which
 * the verifier inlines as a plain load. So each CPU keeps the coarse time it
 * last read with the jiffies it read it at, and calls the helper again only
 * once a tick: an established flow's packet, which needs the time to refresh
 * its conntrack entry's last-seen stamp, pays a load and a compare instead of
 * a helper call. A packet that lands between the tick's jiffies update and its
 * clock update caches a time one tick old for the rest of that tick; every
 * use here (refresh once a second, affinity timeouts in seconds) is coarser.
 */
#ifndef SLUICE_CLOCK_H
#define SLUICE_CLOCK_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct clock_cache {
	__u64 jiffies;	/* bpf_jiffies64() when now_ns was read */
	__u64 now_ns;	/* bpf_ktime_get_coarse_ns() then */
	__u32 now_s;	/* now_ns in whole seconds: conntrack's clock */
	__u32 flood_s;	/* the second flood_flows counts new flows of */
	__u64 flood_flows; /* new flows this CPU tracked in second flood_s */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct clock_cache);
} lb_clock SEC(".maps") __weak;

/* This CPU's cache, brought up to the current tick. */
static __always_inline struct clock_cache *lb_clock_get(void)
{
	__u32 zero = 0;
	struct clock_cache *c = bpf_map_lookup_elem(&lb_clock, &zero);
	__u64 j = bpf_jiffies64();

	if (!c)
		return NULL;
	if (c->jiffies != j) {
		c->jiffies = j;
		c->now_ns = bpf_ktime_get_coarse_ns();
		/* A division once a tick, not once a packet. */
		c->now_s = c->now_ns / 1000000000ULL;
	}
	return c;
}

static __always_inline __u64 lb_now(void)
{
	struct clock_cache *c = lb_clock_get();

	return c ? c->now_ns : bpf_ktime_get_coarse_ns();
}

/* Whole seconds of the same clock: conntrack's times (struct ct_value). */
static __always_inline __u32 lb_now_s(void)
{
	struct clock_cache *c = lb_clock_get();

	return c ? c->now_s : bpf_ktime_get_coarse_ns() / 1000000000ULL;
}

#endif /* SLUICE_CLOCK_H */
