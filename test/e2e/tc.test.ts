/**
 * End to end through tc clsact ingress in network namespaces: the same
 * scenario as XDP, with the skb path's checksum helpers and redirect.
 */
import test from 'ava';
import { sh } from '../../src/demo/topology.js';
import { checkDelete, checkDrain, checkTraffic, setup } from '../helpers/e2e.js';

test('tc: every request answered and spread, drain keeps flows, delete loses them', async (t) => {
  const env = await setup(t, 't', 'tc');
  await checkTraffic(t, env, 300);
  t.true(env.dp.globalStats().forwarded > 0n, 'packets were redirected after a FIB lookup');
  await checkDrain(t, env);
  await checkDelete(t, env);
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
  for (const ifname of env.topo.lb.ifnames) env.dp.detach({ ifname, netns: env.topo.lb.nsPath, mode: 'tc' });
});

test('xdp-generic: traffic through skb-mode XDP', async (t) => {
  const env = await setup(t, 'g', 'xdp-generic');
  await checkTraffic(t, env, 120);
});
