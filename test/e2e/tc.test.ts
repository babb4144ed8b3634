/**
 * End to end through tc clsact ingress in network namespaces: the same
 * scenario as XDP, with the skb path's checksum helpers and redirect.
 */
import test from 'ava';
import { sh } from '../../src/demo/topology.js';
import { native } from '../../src/dataplane/native.js';
import { checkDelete, checkDrain, checkReject, checkTraffic, setup } from '../helpers/e2e.js';

test('tc: every request answered and spread, drain keeps flows, delete loses them', async (t) => {
  const env = await setup(t, 't', 'tc');
  await checkTraffic(t, env, 300);
  t.true(env.dp.globalStats().forwarded > 0n, 'packets were redirected after a FIB lookup');
  await checkDrain(t, env);
  await checkDelete(t, env);
  await checkReject(t, env);
  for (const ifname of env.topo.lb.ifnames) env.dp.detach({ ifname, netns: env.topo.lb.nsPath, mode: 'tc' });
});

/**
 * Pods on veths send with checksum offload: their packets reach tc as
 * CHECKSUM_PARTIAL, whose L4 checksum field holds only the pseudo-header's
 * sum. The load balancer's interfaces keep offload off, so the kernel
 * completes the checksum when it sends on, from that field: a rewrite that
 * handled it as a full checksum would make every packet arrive corrupt.
 */
test('tc: senders with checksum offload (CHECKSUM_PARTIAL) are balanced, checksums complete on the way out', async (t) => {
  const env = await setup(t, 'p', 'tc');
  for (const h of [env.topo.client, ...env.topo.backends]) {
    await sh('ip', ['netns', 'exec', h.ns, 'ethtool', '-K', h.ifname, 'tx', 'on']);
    const features = await sh('ip', ['netns', 'exec', h.ns, 'ethtool', '-k', h.ifname]);
    t.regex(features, /tx-checksum-ip-generic: on/, `${h.ns}: offload on`);
  }
  await checkTraffic(t, env, 200);
  t.true(env.dp.globalStats().forwarded > 0n, 'packets were redirected after a FIB lookup');
  // The answers too: a SYN and a datagram arrive as CHECKSUM_PARTIAL, and
  // the answer made of each leaves by an interface without offload, where
  // the kernel completes its checksum from what the program put in.
  await checkReject(t, env);
  for (const ifname of env.topo.lb.ifnames) env.dp.detach({ ifname, netns: env.topo.lb.nsPath, mode: 'tc' });
});

/**
 * A host's own connection to a VIP (kube-proxy's case of a process on the
 * node): the program at tc egress answers it, and the answer goes into the
 * interface's ingress, to the host's own stack. Here the host is the
 * client namespace; the load balancer's programs are detached, so that the
 * answers can come from nowhere else (without them its kernel has no route
 * to the VIPs and would answer neither with a refusal). The client sends
 * with checksum offload on, as a host's sockets do.
 */
test('tc egress: a host\'s own connect and datagram to a service without backends are refused by its egress program', async (t) => {
  const env = await setup(t, 'e', 'tc');
  for (const ifname of env.topo.lb.ifnames) env.dp.detach({ ifname, netns: env.topo.lb.nsPath, mode: 'tc' });
  const { client } = env.topo;
  await sh('ip', ['netns', 'exec', client.ns, 'ethtool', '-K', client.ifname, 'tx', 'on']);
  const ifindex = native().ifIndex(client.ifname, client.nsPath);
  env.dp.raw.attachTc(ifindex, 'egress', client.nsPath);
  t.teardown(() => {
    try {
      env.dp.raw.destroyTcHook(ifindex, 'egress', client.nsPath);
    } catch {
      /* the namespace is gone already */
    }
  });
  await checkReject(t, env);
});

test('xdp-generic: traffic through skb-mode XDP', async (t) => {
  const env = await setup(t, 'g', 'xdp-generic');
  await checkTraffic(t, env, 120);
});
