/**
 * End to end through tc clsact ingress in network namespaces: the same
 * scenario as XDP, with the skb path's checksum helpers and redirect.
 */
import test from 'ava';
import { checkDelete, checkDrain, checkTraffic, setup } from '../helpers/e2e.js';

test('tc: every request answered and spread, drain keeps flows, delete loses them', async (t) => {
  const env = await setup(t, 't', 'tc');
  await checkTraffic(t, env, 300);
  t.true(env.dp.globalStats().forwarded > 0n, 'packets were redirected after a FIB lookup');
  await checkDrain(t, env);
  await checkDelete(t, env);
  for (const ifname of env.topo.lb.ifnames) env.dp.detach({ ifname, netns: env.topo.lb.nsPath, mode: 'tc' });
});

test('xdp-generic: traffic through skb-mode XDP', async (t) => {
  const env = await setup(t, 'g', 'xdp-generic');
  await checkTraffic(t, env, 120);
});
