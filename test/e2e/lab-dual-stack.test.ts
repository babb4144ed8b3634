/**
 * The built-in lab is dual-stack (src/demo/topology.ts): every link has an
 * fd77 address beside its IPv4 one, the load balancer namespace routes
 * IPv6, and neighbour entries of both families exist before the first
 * packet. With sluice attached at XDP and balancing the IPv4 VIP, IPv6
 * traffic between the lab's own addresses (no VIP) goes through the load
 * balancer's kernel routing, and the agents' dual-stack servers answer both
 * families, reporting each client under its own family's text.
 */
import test from 'ava';
import { httpUrl } from '../../src/demo/agent-client.js';
import { DEMO_HTTP_PORT, DEMO_UDP_PORT } from '../../src/demo/services.js';
import { ipIn } from '../../src/demo/topology.js';
import { setup, VIP } from '../helpers/e2e.js';

const N = 40;

/** How much each key grew between two snapshots of a counter map. */
function grew(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v !== (before[k] ?? 0)) out[k] = v - (before[k] ?? 0);
  return out;
}

test('dual-stack lab: IPv6 between the lab\'s hosts is routed by the load balancer; servers see each family as itself', async (t) => {
  const env = await setup(t, 'v6', 'xdp');
  const { topo, client, servers } = env;

  t.deepEqual([topo.client.address6, topo.client.lbAddress6], ['fd77:c::2', 'fd77:c::1']);
  t.deepEqual(topo.backends.map((b) => [b.address6, b.lbAddress6]), [['fd77:1::2', 'fd77:1::1'], ['fd77:2::2', 'fd77:2::1'], ['fd77:3::2', 'fd77:3::1']]);
  t.deepEqual([topo.client.address, topo.backends.map((b) => b.address)], ['192.168.77.2', ['10.77.1.2', '10.77.2.2', '10.77.3.2']], 'the IPv4 addresses are as they were');

  // Addresses usable at once (nodad), and the warm-up resolved both ends of every link.
  for (const h of [topo.client, ...topo.backends]) {
    const line = (await ipIn(h.ns, '-6', 'addr', 'show', 'dev', h.ifname)).split('\n').find((l) => l.includes(`inet6 ${h.address6}/64 scope global`));
    t.truthy(line, `${h.ns} has ${h.address6}/64`);
    t.notRegex(line ?? '', /tentative|dadfailed/, `${h.ns}: ${h.address6} is usable at once`);
    t.regex(await ipIn(topo.lb.ns, '-6', 'neigh', 'show', h.address6, 'dev', h.lbIfname), /lladdr/, `the load balancer knows ${h.address6}'s link address`);
    t.regex(await ipIn(h.ns, '-6', 'neigh', 'show', h.lbAddress6, 'dev', h.ifname), /lladdr/, `${h.ns} knows ${h.lbAddress6}'s link address`);
  }

  // IPv6 from the client to each backend's own address, across the load balancer.
  for (const [i, b] of topo.backends.entries()) {
    const before = await servers[i]!.stats();
    const web = await client.http(httpUrl(b.address6, DEMO_HTTP_PORT), N, 8);
    t.is(web.failed, 0, `HTTP to ${b.address6}: ${web.errors.join('; ')}`);
    t.deepEqual(web.byBackend, { [`backend-${i + 1}`]: N });
    const dgrams = await client.udp(b.address6, DEMO_UDP_PORT, N, 8);
    t.is(dgrams.failed, 0, `UDP to ${b.address6}: ${dgrams.errors.join('; ')}`);
    t.deepEqual(dgrams.replyFrom, { [`[${b.address6}]:${DEMO_UDP_PORT}`]: N }, 'answers come from the backend\'s IPv6 address');
    const after = await servers[i]!.stats();
    t.deepEqual(grew(before.httpPeers, after.httpPeers), { 'fd77:c::2': N }, `backend-${i + 1} saw the client's IPv6 address over TCP`);
    t.deepEqual(grew(before.udpPeers, after.udpPeers), { 'fd77:c::2': N }, `backend-${i + 1} saw the client's IPv6 address over UDP`);
  }
  t.like(await client.probe(topo.backends[0]!.address6, DEMO_UDP_PORT, 'udp', 5000), { outcome: 'answered' });
  t.like(await client.probe(topo.backends[0]!.address6, DEMO_HTTP_PORT, 'tcp', 5000), { outcome: 'connected' });

  // The same dual-stack servers behind the IPv4 VIP: balanced by sluice, and
  // the client counted under its IPv4 text, not as ::ffff:192.168.77.2.
  const before = await Promise.all(servers.map((s) => s.stats()));
  const web = await client.http(httpUrl(VIP, 80), 60, 8);
  t.is(web.failed, 0, web.errors.join('; '));
  const dns = await client.udp(VIP, 53, 60, 8, 30000);
  t.is(dns.failed, 0, dns.errors.join('; '));
  t.deepEqual(dns.replyFrom, { [`${VIP}:53`]: 60 }, 'UDP answers come from the VIP');
  const after = await Promise.all(servers.map((s) => s.stats()));
  const peers = (k: 'httpPeers' | 'udpPeers'): string[] => [...new Set(after.flatMap((a, i) => Object.keys(grew(before[i]![k], a[k]))))];
  t.deepEqual(peers('httpPeers'), ['192.168.77.2'], 'TCP peers of the IPv4 VIP are IPv4 text');
  t.deepEqual(peers('udpPeers'), ['192.168.77.2'], 'UDP peers of the IPv4 VIP are IPv4 text');
  t.is(env.lb.stats('web').newConnections, 60n, 'sluice balanced every IPv4 connection');
});
