/**
 * End to end through XDP (native, on veth) in network namespaces: real HTTP
 * and UDP servers behind the VIP, real clients, drain and delete, and a
 * second control-plane instance adopting the pinned maps under a live
 * connection.
 */
import test from 'ava';
import { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { checkDelete, checkDrain, checkReject, checkTraffic, setup, VIP } from '../helpers/e2e.js';
import { conntrackEntries } from '../helpers/conntrack.js';

test('XDP: every request answered and spread, drain keeps flows, delete loses them, restart adopts pins', async (t) => {
  const env = await setup(t, 'x', 'xdp');
  await checkTraffic(t, env, 300);
  const g = env.dp.globalStats();
  t.true(g.forwarded > 0n, 'packets were redirected by XDP after a FIB lookup, not only handed to the stack');
  // Only a flow's first packet takes the general path; the rest of each
  // flow (and every reply) is forwarded by the fast path, which must do the
  // FIB lookup and redirect too.
  const firsts = env.lb.stats('web').newConnections + env.lb.stats('dns').newConnections;
  t.true(g.forwarded > firsts,
    `${g.forwarded} packets redirected after a FIB lookup, no more than the ${firsts} first packets of flows`);
  // A flow's first packet takes the general path, which must redirect too:
  // only packets sent before a backend's neighbour entry existed may miss
  // the FIB and go to the stack.
  t.true(g.fib_miss * 4n < firsts,
    `${g.fib_miss} FIB misses against ${firsts} first packets: the general path does not redirect`);

  const kept = await checkDrain(t, env);
  await checkDelete(t, env);

  // A second instance (a restarted control plane) adopts the pinned maps and
  // re-attaches its own program; the long-lived connection goes on.
  const before = conntrackEntries(env.dp).length;
  const second = await NativeDataplane.open({ pinDir: env.pinDir, capacity: { conntrack: 65536 } });
  t.teardown(() => second.close());
  t.true(second.reused.includes('conntrack') && second.reused.includes('services'),
    `second instance reused: ${second.reused.join(', ')}`);
  t.true(conntrackEntries(second).length >= before, 'adopted conntrack is not flushed');
  for (const ifname of env.topo.lb.ifnames) second.attach({ ifname, netns: env.topo.lb.nsPath, mode: 'xdp' });
  env.dp.close();
  const r = await env.client.request(kept.conn);
  t.is(r.backend, kept.backend, 'the long-lived connection survives the program replacement');
  const fresh = await env.client.http(`http://${VIP}:80/`, 60, 8);
  t.is(fresh.failed, 0, 'new connections are served by the second instance');
  for (const ifname of env.topo.lb.ifnames) second.detach({ ifname, netns: env.topo.lb.nsPath, mode: 'xdp' });
});

test('XDP: a service without backends refuses at once (RST, ICMP port unreachable, by XDP_TX); one set to drop times out', async (t) => {
  const env = await setup(t, 'r', 'xdp');
  await checkReject(t, env);
  for (const ifname of env.topo.lb.ifnames) env.dp.detach({ ifname, netns: env.topo.lb.nsPath, mode: 'xdp' });
});
