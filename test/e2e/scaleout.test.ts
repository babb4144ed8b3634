/**
 * Scale-out, end to end: three sluice daemons, one per load-balancer
 * namespace of the ECMP topology (src/demo/scaleout-topology.ts), all on one
 * three-member etcd cluster. Real packets, real daemons (child processes of
 * the CLI), real etcd; the maps are read from their pins.
 *
 * The tests run in order and share the lab; each leaves all three daemons
 * running and all three load balancers in the ECMP group.
 */
import test from 'ava';
import { EtcdKvStore } from '../../src/store/etcd-kv.js';
import { removeStaleLabs, startScaleoutLab, type ScaleoutLab } from '../../src/demo/scaleout-lab.js';
import { scaleoutNamespaces } from '../../src/demo/scaleout-topology.js';
import { cleanStaleEtcdClusters, startEtcdCluster, type EtcdCluster } from '../../src/demo/etcd-cluster.js';
import { DaemonProcess } from '../../src/demo/daemon-process.js';
import { DEMO_HTTP_PORT } from '../../src/demo/services.js';
import { deleteNamespaces } from '../../src/demo/topology.js';
import { ApiError, type SluiceClient } from '../../src/api/client.js';
import { openPinned, tablesOfPins } from '../helpers/pinned.js';

const TAG_PREFIX = 'sx';
const VIP = '10.96.0.10';
const WEB = `${VIP}:80/tcp`;

interface Lab {
  lab: ScaleoutLab;
  etcd: EtcdCluster;
  daemons: DaemonProcess[];
  tag: string;
}

let env: Lab | undefined;
const clients: SluiceClient[] = [];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll until `fn` returns a value that is not undefined, or fail after `ms` with `what`. */
async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(100);
  }
}

/** A client of daemon i (1-based), closed at the end. */
function api(i: number): SluiceClient {
  const c = env!.daemons[i - 1]!.client();
  clients.push(c);
  return c;
}

/** Daemon i's flags: its load balancer's two interfaces, the shared etcd. */
function daemonArgs(lab: ScaleoutLab, etcd: EtcdCluster, i: number, endpoints?: string): string[] {
  const lb = lab.topo.lbs[i - 1]!;
  return [
    ...lb.ifnames.flatMap((ifname) => ['--interface', `${ifname}@${lb.nsPath}`]),
    '--mode', 'xdp',
    '--store', endpoints ?? etcd.url,
    '--store-prefix', `/sluice-test/${env?.tag ?? 'x'}`,
  ];
}

const webService = (backends: number[]) => ({
  name: 'default/web',
  addresses: [VIP],
  ports: [{ name: 'http', port: 80, protocol: 'TCP' as const, targetPort: DEMO_HTTP_PORT }],
  backends: backends.map((j) => ({ address: `10.82.${j}.2` })),
});

/** What every node's maps say of frontend `key`: the set of backends in its table, per node. */
async function backendsPerNode(key: string): Promise<string[][]> {
  const tables = await tablesOfPins(env!.daemons.map((d) => d.pinDir));
  return tables.map((t) => [...new Set(t.get(key) ?? [])].sort());
}

/** Wait until every node's table of `key` uses exactly `want` ("address:port"). */
async function converged(key: string, want: string[], what: string): Promise<void> {
  const sorted = [...want].sort();
  await until(what, async () => {
    const per = await backendsPerNode(key);
    return per.every((b) => JSON.stringify(b) === JSON.stringify(sorted)) ? true : undefined;
  });
}

test.before(async () => {
  await removeStaleLabs(TAG_PREFIX);
  await cleanStaleEtcdClusters();
  const tag = `${TAG_PREFIX}${process.pid.toString(36)}`.slice(0, 8);
  const etcd = await startEtcdCluster({ tag: 'scaleout' });
  let lab: ScaleoutLab | undefined;
  try {
    lab = await startScaleoutLab({ tag });
    env = { lab, etcd, daemons: [], tag };
    for (let i = 1; i <= 3; i++) env.daemons.push(await DaemonProcess.create(`${tag}n${i}`, []));
    await Promise.all(env.daemons.map((d, i) => d.start(daemonArgs(lab!, etcd, i + 1))));
  } catch (err) {
    for (const d of env?.daemons ?? []) await d.destroy();
    await lab?.destroy();
    await etcd.destroy();
    throw err;
  }
});

test.after.always(async () => {
  for (const c of clients) c.close();
  if (!env) return;
  for (const d of env.daemons) await d.destroy();
  await env.lab.destroy();
  await deleteNamespaces(await scaleoutNamespaces(env.tag));
  await env.etcd.destroy();
  const left = await scaleoutNamespaces(env.tag);
  if (left.length) throw new Error(`namespaces left behind: ${left.join(', ')}`);
});

test.serial('a change through any node is in every node\'s maps; compare-and-set holds across nodes', async (t) => {
  const applied = await api(1).applyService(webService([1, 2, 3]));
  await converged(WEB, ['10.82.1.2:8080', '10.82.2.2:8080', '10.82.3.2:8080'], 'web applied through node 1');

  // Node 3 changes it with the revision it read; node 2, with the same (now stale) one, is refused.
  const seen = await api(3).getService('default/web');
  t.is(seen.revision, applied.revision, 'node 3 reads what node 1 wrote');
  await api(3).applyService(webService([1, 2]), { expectedRevision: seen.revision });
  const stale = await t.throwsAsync(api(2).applyService(webService([2, 3]), { expectedRevision: seen.revision }), { instanceOf: ApiError });
  t.is(stale?.codeName, 'FAILED_PRECONDITION', stale?.message);
  await converged(WEB, ['10.82.1.2:8080', '10.82.2.2:8080'], 'node 3\'s change, and not node 2\'s');

  // Traffic: every new connection through the three load balancers reaches a backend.
  const r = await env!.lab.client.http(`http://${VIP}/`, 60, 8);
  t.is(r.failed, 0, r.errors.join('; '));

  // A delete through node 2 leaves every node; then web again, on all three backends.
  await api(2).deleteService('default/web');
  await until('web gone from every node', async () => ((await backendsPerNode(WEB)).every((b) => b.length === 0) ? true : undefined));
  await api(2).applyService(webService([1, 2, 3]));
  await converged(WEB, ['10.82.1.2:8080', '10.82.2.2:8080', '10.82.3.2:8080'], 'web back on every node');
});

test.serial('failover under traffic: a load balancer withdrawn and its daemon killed, 30 connections survive', async (t) => {
  const { lab } = env!;
  const url = `http://${VIP}/`;
  // 30 long-lived connections, spread by the router over the three.
  const conns: number[] = [];
  for (let k = 0; k < 30; k++) conns.push((await lab.client.open(url)).conn);
  const start = await lab.topo.counters();
  for (const c of conns) await lab.client.request(c);
  const before = await lab.topo.counters();
  // The one to be withdrawn (lb2) carries some of them (requests in at its
  // front), so that its withdrawal moves connections to the others. (How the
  // router's hash spreads 30 flows over the three varies from run to run.)
  const carried = before.map((c, i) => c.front.rxPackets - start[i]!.front.rxPackets);
  t.log(`packets in per load balancer before the failover: ${carried.join('/')}`);
  t.true(carried[1]! >= 3, `lb2 carried no connection: ${carried.join('/')}`);

  await lab.topo.withdraw(2);
  await env!.daemons[1]!.stop('SIGKILL');
  try {
    // Every connection goes on, through lb1 and lb3, which never saw most of them.
    let lost = 0;
    const errors: string[] = [];
    for (const c of conns) {
      try {
        for (let k = 0; k < 3; k++) await lab.client.request(c);
      } catch (err) {
        lost++;
        errors.push((err as Error).message);
      }
    }
    t.is(lost, 0, `${lost} of 30 connections lost: ${errors.slice(0, 3).join('; ')}`);
    const after = await lab.topo.counters();
    t.true(after[1]!.front.rxPackets - before[1]!.front.rxPackets <= 10, 'the withdrawn load balancer still receives requests');
    // New connections succeed too.
    const r = await lab.client.http(url, 60, 8);
    t.is(r.failed, 0, r.errors.join('; '));

    // The survivors restored replies of flows they had no entry for.
    let restored = 0n;
    for (const i of [0, 2]) {
      const dp = await openPinned(env!.daemons[i]!.pinDir);
      try {
        restored += dp.globalStats().reply_restored;
      } finally {
        dp.close();
      }
    }
    t.true(restored > 0n, 'no reply was restored without an entry');
    t.log(`30/30 connections survived; replies restored without an entry on lb1 and lb3: ${restored}`);
  } finally {
    await env!.daemons[1]!.start(daemonArgs(lab, env!.etcd, 2));
    await lab.topo.restore(2);
  }
  t.deepEqual(lab.topo.members(), [1, 2, 3]);
});

test.serial('a backend registered through node 1 lives with its lease, and goes when node 1 stops', async (t) => {
  const { lab, etcd, daemons } = env!;
  await api(1).applyService(webService([1, 2]));
  const reg = await api(1).registerBackend({ service: 'default/web', address: '10.82.3.2', ttlSeconds: 3 });
  const stream = api(1).keepAlive();
  stream.on('error', () => undefined);
  const beat = setInterval(() => stream.write({ leaseId: reg.leaseId }), 500);
  try {
    await converged(WEB, ['10.82.1.2:8080', '10.82.2.2:8080', '10.82.3.2:8080'], 'the registered backend on every node');
    await sleep(4000);
    t.deepEqual((await backendsPerNode(WEB))[2], ['10.82.1.2:8080', '10.82.2.2:8080', '10.82.3.2:8080'], 'kept alive past its TTL through node 1');

    // Node 1 dies: nothing keeps the lease alive; etcd expires it, every other node drops the backend.
    await daemons[0]!.stop('SIGKILL');
    const gone = await until('the registration gone from nodes 2 and 3', async () => {
      const per = await backendsPerNode(WEB);
      return per.slice(1).every((b) => !b.includes('10.82.3.2:8080')) ? per.slice(1) : undefined;
    });
    t.deepEqual(gone, [['10.82.1.2:8080', '10.82.2.2:8080'], ['10.82.1.2:8080', '10.82.2.2:8080']], 'nodes 2 and 3 keep the static backends only');
  } finally {
    clearInterval(beat);
    stream.cancel();
    await daemons[0]!.start(daemonArgs(lab, etcd, 1));
  }
  await converged(WEB, ['10.82.1.2:8080', '10.82.2.2:8080'], 'node 1 back, without the expired registration');
});

test.serial('etcd: one member down goes unnoticed; all down, nodes forward and refuse writes; back, they catch up', async (t) => {
  const { lab, etcd } = env!;
  const url = `http://${VIP}/`;
  await api(1).applyService(webService([1, 2, 3]));
  await converged(WEB, ['10.82.1.2:8080', '10.82.2.2:8080', '10.82.3.2:8080'], 'web on all three backends');

  // A follower goes: writes through every node succeed at once.
  const leader = (await etcd.leader()) ?? 0;
  const follower = (leader + 1) % 3;
  await etcd.stopMember(follower, 'SIGKILL');
  for (const i of [1, 2, 3]) await api(i).applyService(webService(i === 2 ? [1, 2] : [1, 2, 3]));
  await converged(WEB, ['10.82.1.2:8080', '10.82.2.2:8080', '10.82.3.2:8080'], 'writes through every node with a member down');
  await etcd.startMember(follower);
  await etcd.waitReady();

  // The leader goes: etcd elects another (about a second, more on a busy
  // machine); a write meanwhile waits for it, or fails UNAVAILABLE after the
  // store's 3 s call budget. Forwarding never notices.
  await etcd.stopMember(leader, 'SIGKILL');
  const t0 = Date.now();
  const during = lab.client.http(url, 20, 4);
  await until('a write through node 1 with the leader gone', async () => ((await api(1).applyService(webService([1, 3]))) ? true : undefined), 20_000);
  t.log(`a write through node 1 after the leader was killed: ${Date.now() - t0} ms`);
  t.is((await during).failed, 0, 'forwarding through the election');
  for (const i of [2, 3]) await api(i).applyService(webService([1, 2, 3]));
  await converged(WEB, ['10.82.1.2:8080', '10.82.2.2:8080', '10.82.3.2:8080'], 'writes through every node with the leader gone');
  await etcd.startMember(leader);

  // All members down.
  await etcd.stopAll('SIGKILL');
  try {
    const r = await lab.client.http(url, 60, 8);
    t.is(r.failed, 0, `forwarding with the last state: ${r.errors.join('; ')}`);
    for (const i of [1, 2, 3]) {
      const err = await t.throwsAsync(api(i).applyService(webService([1])), { instanceOf: ApiError });
      t.is(err?.codeName, 'UNAVAILABLE', `node ${i}: ${err?.message}`);
    }
    t.deepEqual((await backendsPerNode(WEB)).map((b) => b.length), [3, 3, 3], 'the last state stays in every node\'s maps');
    // Reads answer from what each node holds.
    for (const i of [1, 2, 3]) t.is((await api(i).getService('default/web')).backends.length, 3, `node ${i} reads its view`);
  } finally {
    await etcd.startAll();
    await etcd.waitReady();
  }
  // Back: a change through node 2 reaches everyone.
  await until('a write through node 2 once etcd is back', async () => (await api(2).applyService(webService([2, 3]))) ? true : undefined, 20_000);
  await converged(WEB, ['10.82.2.2:8080', '10.82.3.2:8080'], 'the nodes caught up');
  // Each node's log says when it lost etcd and when it had it back.
  for (const d of env!.daemons) {
    t.regex(d.log(), /lost the etcd watch: forwarding goes on with the last state/);
    t.regex(d.log(), /the etcd watch is back: catching up from the last revision seen/);
  }
});

test.serial('a node that missed changes, and a compaction, catches up; every node holds the same table, slot for slot', async (t) => {
  const { lab, etcd, daemons } = env!;
  // Node 3 stops; nodes 1 and 2 see a history node 3 never sees.
  await daemons[2]!.stop('SIGTERM');
  const steps: Array<Array<{ address: string; weight?: number }>> = [
    [{ address: '10.82.1.2' }],
    [{ address: '10.82.1.2', weight: 3 }, { address: '10.82.2.2' }],
    [{ address: '10.82.3.2' }, { address: '10.82.1.2', weight: 2 }],
  ];
  for (const backends of steps) await api(1).applyService({ ...webService([]), backends });
  await api(2).applyService({
    name: 'default/other', addresses: ['10.96.0.11'], ports: [{ port: 53, protocol: 'UDP', targetPort: 5353 }],
    backends: [{ address: '10.82.2.2' }, { address: '10.82.3.2', weight: 2 }],
  });
  // The final state, reached by node 1 and 2 in one order...
  const final = { ...webService([]), backends: [{ address: '10.82.1.2', weight: 2 }, { address: '10.82.2.2' }, { address: '10.82.3.2' }] };
  await api(2).applyService(final);
  // ...and the history compacted away before node 3 returns.
  const kv = await EtcdKvStore.connect({ endpoints: etcd.endpoints });
  try {
    await kv.compact(await kv.revision());
  } finally {
    await kv.close();
  }
  await daemons[2]!.start(daemonArgs(lab, etcd, 3));

  // Node 1 restarts too: its history is the final state only.
  await daemons[0]!.stop('SIGTERM');
  await daemons[0]!.start(daemonArgs(lab, etcd, 1));

  await converged(WEB, ['10.82.1.2:8080', '10.82.2.2:8080', '10.82.3.2:8080'], 'the final state on every node');
  const tables = await tablesOfPins(daemons.map((d) => d.pinDir));
  for (const key of [WEB, '10.96.0.11:53/udp']) {
    const [a, b, c] = tables.map((m) => m.get(key));
    t.truthy(a?.length, `node 1 has a table for ${key}`);
    t.deepEqual(b, a, `${key}: node 2's table differs from node 1's`);
    t.deepEqual(c, a, `${key}: node 3's table differs from node 1's`);
  }
  t.log(`tables of ${WEB}: ${tables[0]!.get(WEB)!.length} slots, identical on the three nodes`);
});
