/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * stub.h: included once by every benchmark object. The addon loads a file
 * object's programs by the names sluice_xdp and sluice_tc
 * (native/dataplane.cc), so each object has both; the benchmark programs
 * are all XDP, and this tc program is a stub never run.
 */
#ifndef SLUICE_BENCH_STUB_H
#define SLUICE_BENCH_STUB_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int sluice_tc(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#endif /* SLUICE_BENCH_STUB_H */
