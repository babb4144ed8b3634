/**
 * The scale-out topology with routing alone: no sluice program anywhere,
 * the client talks to the backends' own addresses, which the router reaches
 * only through its ECMP group over the three load balancers, and the
 * backends answer through the backend router's group over the same three.
 * Which load balancer a packet crossed is read from the packet counters of
 * the load balancers' interfaces: `front` receives requests, `back` replies.
 */
import test, { type ExecutionContext } from 'ava';
import { removeStaleLabs, startScaleoutLab, type ScaleoutLab } from '../../src/demo/scaleout-lab.js';
import { scaleoutNamespaces, type ScaleoutTopology } from '../../src/demo/scaleout-topology.js';
import { DEMO_HTTP_PORT } from '../../src/demo/services.js';
import type { Agent } from '../../src/demo/agent-client.js';
import { deleteNamespaces, ipIn, nsExec } from '../../src/demo/topology.js';

const TAG_PREFIX = 'so';
/** Requests sent on a long-lived connection to see which load balancers it crosses. */
const K = 30;
/**
 * What a load balancer a connection does not cross may count meanwhile:
 * keepalive probes of the idle long-lived connections (one a second each)
 * and their answers, and ARP.
 */
const NOISE = K / 4;

/** Packets each load balancer received on its front (requests) and back (replies) while `fn` ran. */
async function measure(topo: ScaleoutTopology, fn: () => Promise<void>): Promise<{ front: number[]; back: number[] }> {
  const before = await topo.counters();
  await fn();
  const after = await topo.counters();
  return {
    front: after.map((c, i) => c.front.rxPackets - before[i]!.front.rxPackets),
    back: after.map((c, i) => c.back.rxPackets - before[i]!.back.rxPackets),
  };
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

/** Packets an interface has sent. */
async function txPackets(ns: string, ifname: string): Promise<number> {
  const [link] = JSON.parse(await ipIn(ns, '-j', '-s', 'link', 'show', 'dev', ifname)) as Array<{ stats64: { tx: { packets: number } } }>;
  return link!.stats64.tx.packets;
}

/** Every load balancer carried at least `min` of the packets counted, in both directions. */
function assertSpread(t: ExecutionContext, m: { front: number[]; back: number[] }, over: number[], min: number, what: string): void {
  for (const [dir, counts] of [['requests (front)', m.front], ['replies (back)', m.back]] as const) {
    const total = sum(counts);
    for (const i of over) {
      t.true(counts[i - 1]! >= total * min,
        `${what}: lb${i} received ${counts[i - 1]} of ${total} ${dir} packets, want at least ${Math.round(min * 100)}% (per LB: ${counts.join(', ')})`);
    }
  }
}

/**
 * K requests on a long-lived connection: every packet each way crosses one
 * load balancer. Returns the load balancers its requests and its replies
 * crossed (1-based).
 */
async function pathOf(t: ExecutionContext, topo: ScaleoutTopology, client: Agent, conn: number, what: string): Promise<{ front: number; back: number }> {
  const m = await measure(topo, async () => {
    for (let k = 0; k < K; k++) await client.request(conn);
  });
  const one = (counts: number[], dir: string): number => {
    const top = counts.indexOf(Math.max(...counts));
    t.true(counts[top]! >= K, `${what}: no load balancer received its ${K} ${dir} (per LB: ${counts.join(', ')})`);
    counts.forEach((c, i) => {
      if (i !== top) t.true(c <= NOISE, `${what}: its ${dir} crossed lb${top + 1} and lb${i + 1} (per LB: ${counts.join(', ')})`);
    });
    return top + 1;
  };
  return { front: one(m.front, 'requests'), back: one(m.back, 'replies') };
}

test('ECMP over three load balancers: connections spread, each keeps its LB both ways, withdraw and restore, nothing left', async (t) => {
  await removeStaleLabs(TAG_PREFIX);
  const tag = `${TAG_PREFIX}${process.pid.toString(36)}`.slice(0, 8);
  let lab: ScaleoutLab | undefined;
  const cleanup = async (): Promise<void> => {
    await lab?.destroy();
    // Namespaces of a build interrupted before startScaleoutLab returned.
    await deleteNamespaces(await scaleoutNamespaces(tag));
  };
  // Ctrl-C: tear down, then die of the signal as if it had not been caught.
  const onSignal = (sig: NodeJS.Signals): void => {
    void cleanup().finally(() => process.kill(process.pid, sig));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  t.teardown(async () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
    const left = await scaleoutNamespaces(tag);
    if (left.length) throw new Error(`namespaces left behind: ${left.join(', ')}`);
  });

  lab = await startScaleoutLab({ tag });
  const { topo, client } = lab;
  t.deepEqual(topo.members(), [1, 2, 3]);
  const urls = topo.backends.map((b) => `http://${b.address}:${DEMO_HTTP_PORT}/`);
  const burst = async (n: number): Promise<void> => {
    const rs = await Promise.all(urls.map((u) => client.http(u, n, 8)));
    for (const r of rs) t.is(r.failed, 0, `new connections failed: ${r.errors.join('; ')}`);
  };

  // (a) and (c): 300 new connections; every packet the client sent crossed
  // a load balancer, so did every packet the backends sent back, and both
  // directions spread over all three.
  const sent = async (): Promise<{ client: number; backends: number }> => ({
    client: await txPackets(topo.client.ns, topo.client.ifname),
    backends: sum(await Promise.all(topo.backends.map((b) => txPackets(b.ns, b.ifname)))),
  });
  const sentBefore = await sent();
  const spread = await measure(topo, () => burst(100));
  const sentAfter = await sent();
  const fromClient = sentAfter.client - sentBefore.client;
  const fromBackends = sentAfter.backends - sentBefore.backends;
  t.true(fromClient >= 300 * 3 && Math.abs(sum(spread.front) - fromClient) <= NOISE,
    `the client sent ${fromClient} packets, the load balancers' fronts received ${sum(spread.front)}`);
  t.true(fromBackends >= 300 * 3 && Math.abs(sum(spread.back) - fromBackends) <= NOISE,
    `the backends sent ${fromBackends} packets, the load balancers' backs received ${sum(spread.back)}`);
  assertSpread(t, spread, [1, 2, 3], 0.15, '300 new connections');
  t.log(`300 new connections, packets per LB: requests ${spread.front.join('/')}, replies ${spread.back.join('/')}`);

  // What spreads them is the layer-4 hash: hashing on addresses alone, one
  // client to one backend takes one load balancer.
  const policy = (await nsExec(topo.router.ns, 'sysctl', '-n', 'net.ipv4.fib_multipath_hash_policy')).trim();
  await nsExec(topo.router.ns, 'sysctl', '-qw', 'net.ipv4.fib_multipath_hash_policy=0');
  const l3 = await measure(topo, async () => {
    const r = await client.http(urls[0]!, 60, 8);
    t.is(r.failed, 0);
  });
  await nsExec(topo.router.ns, 'sysctl', '-qw', `net.ipv4.fib_multipath_hash_policy=${policy}`);
  t.is(l3.front.filter((c) => c > NOISE).length, 1, `layer-3 hash: requests of 60 connections per LB: ${l3.front.join(', ')}`);
  t.log(`60 connections hashed on addresses only, request packets per LB: ${l3.front.join('/')}`);

  // (b): long-lived connections, opened until every load balancer carries
  // one; all the packets of each, each way, cross one load balancer.
  const conns: Array<{ conn: number; front: number; back: number }> = [];
  while (new Set(conns.map((c) => c.front)).size < 3 && conns.length < 30) {
    const { conn } = await client.open(urls[conns.length % urls.length]!);
    conns.push({ conn, ...await pathOf(t, topo, client, conn, `long-lived connection ${conn}`) });
  }
  t.deepEqual([...new Set(conns.map((c) => c.front))].sort(), [1, 2, 3],
    `${conns.length} long-lived connections do not cover the three load balancers`);
  // Both routers hash a flow and its reverse alike over members in the same
  // order: an untranslated reply crosses the load balancer of its request.
  t.deepEqual(conns.map((c) => c.back), conns.map((c) => c.front), 'replies crossed another load balancer than requests');
  t.log(`${conns.length} long-lived connections on LBs ${conns.map((c) => c.front).join(',')}`);
  // Later, after the others opened, the first still crosses the same ones.
  const first = conns[0]!;
  t.deepEqual(await pathOf(t, topo, client, first.conn, 'the first long-lived connection, again'), { front: first.front, back: first.back });

  // (d): withdraw the middle load balancer. New connections go over the
  // other two only; the connections those carried stay on them
  // (hash-threshold keeps the other ranges in place when the middle one of
  // three goes); the withdrawn one's connections, with nothing on the load
  // balancers to lose, go on over the other two.
  const out = 2;
  const stay = [1, 2, 3].filter((i) => i !== out);
  await topo.withdraw(out);
  t.deepEqual(topo.members(), stay);
  const without = await measure(topo, () => burst(50));
  t.true(without.front[out - 1]! <= NOISE && without.back[out - 1]! <= NOISE,
    `withdrawn lb${out} still received ${without.front[out - 1]} request and ${without.back[out - 1]} reply packets of 150 new connections`);
  assertSpread(t, without, stay, 0.25, `150 new connections without lb${out}`);
  t.log(`lb${out} withdrawn, 150 new connections, packets per LB: requests ${without.front.join('/')}, replies ${without.back.join('/')}`);
  for (const c of conns) {
    const now = await pathOf(t, topo, client, c.conn, `long-lived connection ${c.conn} (was on lb${c.front}) without lb${out}`);
    if (c.front !== out) t.deepEqual(now, { front: c.front, back: c.back }, `long-lived connection ${c.conn} moved from lb${c.front}`);
    else t.not(now.front, out, `long-lived connection ${c.conn} still crosses withdrawn lb${out}`);
  }

  // Restored, it takes new connections again, and the group is as before.
  await topo.restore(out);
  t.deepEqual(topo.members(), [1, 2, 3]);
  const restored = await measure(topo, () => burst(50));
  assertSpread(t, restored, [1, 2, 3], 0.15, `150 new connections after lb${out} is restored`);
  t.log(`lb${out} restored, 150 new connections, packets per LB: requests ${restored.front.join('/')}, replies ${restored.back.join('/')}`);
  t.deepEqual(await pathOf(t, topo, client, first.conn, 'the first long-lived connection after the restore'), { front: first.front, back: first.back });

  // (e): destroy stops the agents and leaves no namespace; a second call is a no-op.
  await lab.destroy();
  t.deepEqual(await scaleoutNamespaces(tag), [], 'namespaces left after destroy');
  await t.notThrowsAsync(lab.destroy(), 'destroy twice');
  await t.throwsAsync(client.stats(), { message: /exited/ }, 'the client agent still runs after destroy');
});
