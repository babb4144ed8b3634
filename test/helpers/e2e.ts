/**
 * End-to-end scenario shared by the XDP and tc test files: a real topology of
 * namespaces, real servers and clients, sluice attached to the load
 * balancer's interfaces, everything torn down in t.teardown.
 */
import type { ExecutionContext } from 'ava';
import { rm } from 'node:fs/promises';
import { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import type { AttachMode } from '../../src/dataplane/dataplane.js';
import { LoadBalancer } from '../../src/lb/load-balancer.js';
import type { ServiceSpec } from '../../src/model/service.js';
import type { Agent } from '../../src/demo/agent-client.js';
import { startLab, type Lab } from '../../src/demo/lab.js';
import { DEMO_HTTP_PORT, DEMO_VIP, demoServices } from '../../src/demo/services.js';
import { listNamespaces, type Topology } from '../../src/demo/topology.js';

export { DEMO_VIP as VIP } from '../../src/demo/services.js';
const VIP = DEMO_VIP;
const HTTP_PORT = DEMO_HTTP_PORT;

export interface Env {
  topo: Topology;
  dp: NativeDataplane;
  lb: LoadBalancer;
  client: Agent;
  servers: Agent[];
  web: ServiceSpec;
  dns: ServiceSpec;
  pinDir: string;
  mode: AttachMode;
}

/** Build the topology, load and attach sluice, define web (tcp/80) and dns (udp/53). */
export async function setup(t: ExecutionContext, tagPrefix: string, mode: AttachMode): Promise<Env> {
  const tag = `${tagPrefix}${process.pid.toString(36)}`.slice(0, 8);
  const pinDir = `/sys/fs/bpf/sluice-e2e-${tag}`;
  const labs: Lab[] = [];
  let topo: Topology | undefined;
  let dp: NativeDataplane | undefined;
  t.teardown(async () => {
    await Promise.all(labs.map((l) => l.destroy()));
    try {
      dp?.unpin();
    } catch {
      /* not pinned */
    }
    dp?.close();
    await topo?.destroy();
    await rm(pinDir, { recursive: true, force: true });
    const left = await listNamespaces(`sl-${tag}-`);
    if (left.length) throw new Error(`namespaces left behind: ${left.join(', ')}`);
  });

  const lab = await startLab(tag);
  labs.push(lab);
  topo = lab.topo;
  const { client, servers } = lab;

  dp = await NativeDataplane.open({ pinDir, capacity: { conntrack: 65536 } });
  for (const ifname of topo.lb.ifnames) dp.attach({ ifname, netns: topo.lb.nsPath, mode });
  const lb = new LoadBalancer(dp);
  const { web, dns } = demoServices(topo.backends);
  await lb.apply(web);
  await lb.apply(dns);
  return { topo, dp, lb, client, servers, web, dns, pinDir, mode };
}

let udpPortBase = 20000;
/** A fresh range of client source ports, so that every datagram is a new flow. */
function nextUdpPortBase(n: number): number {
  const base = udpPortBase;
  udpPortBase += n;
  return base;
}

/** Every request answered, spread over all backends, sluice's counters equal to what the backends saw. */
export async function checkTraffic(t: ExecutionContext, env: Env, n: number): Promise<void> {
  const before = await Promise.all(env.servers.map((s) => s.stats()));
  const httpRes = await env.client.http(`http://${VIP}:80/`, n, 8);
  t.is(httpRes.failed, 0, `HTTP failures: ${httpRes.errors.join('; ')}`);
  t.is(httpRes.ok, n);
  const udpRes = await env.client.udp(VIP, 53, n, 8, nextUdpPortBase(n));
  t.is(udpRes.failed, 0, `UDP failures: ${udpRes.errors.join('; ')}`);
  t.is(udpRes.ok, n);

  for (let i = 1; i <= env.servers.length; i++) {
    const name = `backend-${i}`;
    t.true((httpRes.byBackend[name] ?? 0) >= n / 10, `${name} got ${httpRes.byBackend[name] ?? 0} of ${n} HTTP requests`);
    t.true((udpRes.byBackend[name] ?? 0) >= n / 10, `${name} got ${udpRes.byBackend[name] ?? 0} of ${n} datagrams`);
  }

  const after = await Promise.all(env.servers.map((s) => s.stats()));
  const web = env.lb.stats('web');
  const dns = env.lb.stats('dns');
  env.topo.backends.forEach((_, i) => {
    const sawConns = after[i]!.httpConnections - before[i]!.httpConnections;
    const sawDgrams = after[i]!.udpDatagrams - before[i]!.udpDatagrams;
    t.is(sawConns, httpRes.byBackend[`backend-${i + 1}`] ?? 0, `backend-${i + 1}: one connection per request`);
    t.is(sawDgrams, udpRes.byBackend[`backend-${i + 1}`] ?? 0, `backend-${i + 1}: datagrams answered = received`);
    // Counters are cumulative: compare the totals they must at least cover.
    t.true(web.backends[i]!.newConnections >= BigInt(after[i]!.httpConnections),
      `sluice counted ${web.backends[i]!.newConnections} new TCP flows to backend-${i + 1}, it saw ${after[i]!.httpConnections} connections`);
    t.is(dns.backends[i]!.newConnections, BigInt(after[i]!.udpDatagrams),
      `sluice's new UDP flows to backend-${i + 1} must equal the datagrams it received (one source port each)`);
  });
  const g = env.dp.globalStats();
  t.is(g.drop_malformed + g.drop_no_backend + g.drop_no_service + g.drop_ct_full, 0n, 'no drops');
}

/** VIPs of the services without backends of checkReject: one that rejects (the default), one set to drop. */
export const REJECT_VIP = '10.96.0.50';
export const DROP_VIP = '10.96.0.51';

/**
 * Services without backends, probed by the client's kernel: a TCP connect
 * to one that rejects is refused at once (its SYN answered with a RST), a
 * datagram on a connected UDP socket gets ECONNREFUSED (ICMP port
 * unreachable); a connect to one set to drop times out. Each answer is
 * counted once. The services are removed at the end.
 */
export async function checkReject(t: ExecutionContext, env: Pick<Env, 'dp' | 'lb' | 'client'>): Promise<void> {
  const quiet: ServiceSpec = { name: 'quiet', address: REJECT_VIP, port: 80, protocol: 'tcp', backends: [] };
  const specs: ServiceSpec[] = [
    quiet,
    { ...quiet, name: 'quiet-dns', port: 53, protocol: 'udp' },
    { ...quiet, name: 'deaf', address: DROP_VIP, noBackends: 'drop' },
  ];
  await env.lb.applyMany(specs);
  try {
    let before = env.dp.globalStats();
    const tcp = await env.client.probe(REJECT_VIP, 80, 'tcp', 3000);
    t.is(tcp.outcome, 'ECONNREFUSED', 'a TCP connect to a service without backends is refused');
    let g = env.dp.globalStats();
    // At once: before the SYN's first retransmission, a second later. At
    // XDP on a veth this takes the client end's XDP program (acceptXdpTx).
    t.true(tcp.ms < 1000, `refused at once, not after a SYN retransmission (${tcp.ms} ms)`);
    t.is(g.reject_tcp_rst - before.reject_tcp_rst, 1n, 'one SYN, answered with one RST');

    before = g;
    const udp = await env.client.probe(REJECT_VIP, 53, 'udp', 3000);
    t.is(udp.outcome, 'ECONNREFUSED', 'a connected UDP socket is told the port is unreachable');
    g = env.dp.globalStats();
    t.is(g.reject_icmp_unreach - before.reject_icmp_unreach, 1n, 'one datagram, answered with one ICMP port unreachable');

    before = g;
    const dropped = await env.client.probe(DROP_VIP, 80, 'tcp', 1500);
    t.is(dropped.outcome, 'timeout', 'a connect to a service set to drop gets no answer');
    g = env.dp.globalStats();
    t.true(g.drop_no_backend > before.drop_no_backend, 'its SYNs are dropped and counted');
    t.is(g.reject_tcp_rst, before.reject_tcp_rst, 'and never answered');
    t.is(g.reject_rate_limited, 0n, 'no answer was held back by the rate limit');
  } finally {
    await env.lb.deleteMany(specs.map((s) => s.name));
  }
}

/** Drain: a long-lived connection to the drained backend survives; new connections avoid it. */
export async function checkDrain(t: ExecutionContext, env: Env): Promise<{ conn: number; backend: string }> {
  const c = await env.client.open(`http://${VIP}:80/`);
  const idx = Number(c.backend.split('-')[1]) - 1;
  const victim = env.topo.backends[idx]!;
  await env.lb.setBackendState('web', victim.address, HTTP_PORT, 'draining');
  const again = await env.client.request(c.conn);
  t.is(again.backend, c.backend, 'the long-lived connection keeps its drained backend');
  const fresh = await env.client.http(`http://${VIP}:80/`, 150, 8);
  t.is(fresh.failed, 0);
  t.is(fresh.byBackend[c.backend], undefined, `new connections reached drained ${c.backend}`);
  const still = await env.client.request(c.conn);
  t.is(still.backend, c.backend);
  await env.lb.setBackendState('web', victim.address, HTTP_PORT, 'active');
  return c;
}

/** Delete: a long-lived connection to a deleted backend loses it; new connections still succeed elsewhere. */
export async function checkDelete(t: ExecutionContext, env: Env): Promise<void> {
  const c = await env.client.open(`http://${VIP}:80/`);
  const idx = Number(c.backend.split('-')[1]) - 1;
  const victim = env.topo.backends[idx]!;
  await env.lb.removeBackend('web', victim.address, HTTP_PORT);
  // The flow is rescheduled to a backend with no such connection, which resets it.
  await t.throwsAsync(env.client.request(c.conn), undefined, 'a connection to a deleted backend must not survive');
  const fresh = await env.client.http(`http://${VIP}:80/`, 150, 8);
  t.is(fresh.failed, 0, `new connections after the delete: ${fresh.errors.join('; ')}`);
  t.is(fresh.byBackend[c.backend], undefined, `deleted ${c.backend} still got new connections`);
  t.true(env.dp.globalStats().ct_rescheduled >= 1n, 'the rescheduled flow is counted');
  await env.lb.apply(env.web);
}
