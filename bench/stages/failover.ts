/**
 * Failover under traffic (issue 13): the scale-out topology
 * (src/demo/scaleout-lab.ts: a router spreading flows with ECMP over three
 * load-balancer namespaces, three backends), one sluice daemon attached in
 * each load balancer (XDP), all three on one three-member etcd cluster.
 * Long-lived HTTP connections from the client are spread by the router over
 * the three; load balancer 2 is taken out of the ECMP group and its daemon
 * killed; every connection must go on through the other two, which never
 * saw most of them. As test/e2e/scaleout.test.ts checks, measured here.
 *
 * Options (bench/run.ts passes them through; default in brackets):
 *   --failover-connections 30
 *
 *   npx tsx bench/stages/failover.ts
 * runs it alone and prints the tables.
 */
import { pathToFileURL } from 'node:url';
import type { Stage, StageContext, StageResult, Table, Target } from '../lib/types.js';
import { cleanStaleEtcdClusters, startEtcdCluster } from '../../src/demo/etcd-cluster.js';
import { DaemonProcess } from '../../src/demo/daemon-process.js';
import { removeStaleLabs, startScaleoutLab, type ScaleoutLab } from '../../src/demo/scaleout-lab.js';
import { scaleoutNamespaces } from '../../src/demo/scaleout-topology.js';
import { DEMO_HTTP_PORT } from '../../src/demo/services.js';
import { deleteNamespaces } from '../../src/demo/topology.js';
import { encodeServiceKey } from '../../src/dataplane/codec.js';
import type { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { openPinned } from '../../src/dataplane/pinned.js';
import { Resources } from '../lib/resources.js';
import { runStandalone } from '../lib/standalone.js';

const TAG_PREFIX = 'bf';
const VIP = '10.96.0.10';
const WITHDRAWN = 2;
const NODES = 3;
const NEW_CONNECTIONS = 60;

interface Config {
  connections: number;
}

function config(ctx: StageContext): Config {
  const v = ctx.args?.['failover-connections'];
  const connections = v === undefined ? 30 : Number(v);
  if (!Number.isInteger(connections) || connections < 3 || connections > 1000) throw new Error(`--failover-connections: want an integer in 3..1000, got ${v}`);
  return { connections };
}

interface Result {
  connections: number;
  /** Packets in at each load balancer's front during one request on every connection. */
  carried: number[];
  /** Entries in each node's conntrack before the failover. */
  tracked: number[];
  lost: number;
  errors: string[];
  /** The first request on each connection after the failover, ms (those that succeeded), sorted. */
  firstRequestMs: number[];
  /** Packets in at the withdrawn load balancer's front after it was withdrawn. */
  strayPackets: number;
  newConnections: { count: number; failed: number; errors: string[] };
  /** Replies restored without a conntrack entry (reply_nat), on the surviving nodes. */
  repliesRestored: bigint;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function measure(ctx: StageContext, cfg: Config): Promise<Result> {
  const res = new Resources(ctx, 'failover');
  try {
    await removeStaleLabs(TAG_PREFIX);
    await cleanStaleEtcdClusters();
    const tag = `${TAG_PREFIX}${process.pid.toString(36)}`.slice(0, 8);
    ctx.progress(0, 5, 'etcd cluster and topology');
    const etcd = await startEtcdCluster({ tag: 'failover' });
    res.add(() => etcd.destroy());
    res.add(async () => void (await deleteNamespaces(await scaleoutNamespaces(tag))));
    const lab: ScaleoutLab = await startScaleoutLab({ tag });
    res.add(() => lab.destroy());

    ctx.progress(1, 5, 'daemons');
    const daemons: DaemonProcess[] = [];
    for (let i = 1; i <= NODES; i++) {
      const lb = lab.topo.lbs[i - 1]!;
      const d = await DaemonProcess.create(`${tag}n${i}`, [
        ...lb.ifnames.flatMap((ifname) => ['--interface', `${ifname}@${lb.nsPath}`]),
        '--mode', 'xdp',
        '--store', etcd.url,
        '--store-prefix', `/bench-${process.pid}`,
      ]);
      res.add(() => d.destroy());
      daemons.push(d);
    }
    await Promise.all(daemons.map((d) => d.start()));
    const dps: NativeDataplane[] = [];
    for (const d of daemons) {
      const dp = await openPinned(d.pinDir);
      res.add(() => dp.close());
      dps.push(dp);
    }
    const api = daemons[0]!.client();
    res.add(() => api.close());
    await api.applyService({
      name: 'default/web',
      addresses: [VIP],
      ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: DEMO_HTTP_PORT }],
      backends: lab.topo.backends.map((b) => ({ address: b.address })),
    });
    const key = encodeServiceKey({ address: VIP, port: 80, protocol: 'tcp' });
    for (const deadline = Date.now() + 15_000; dps.some((dp) => dp.raw.mapLookup('services', key) === null);) {
      if (Date.now() > deadline) throw new Error('failover: the service is not on every node within 15 s');
      await sleep(50);
    }

    ctx.progress(2, 5, `${cfg.connections} connections`);
    const url = `http://${VIP}/`;
    const conns: number[] = [];
    for (let k = 0; k < cfg.connections; k++) conns.push((await lab.client.open(url)).conn);
    const start = await lab.topo.counters();
    for (const c of conns) await lab.client.request(c);
    const before = await lab.topo.counters();
    const carried = before.map((c, i) => c.front.rxPackets - start[i]!.front.rxPackets);
    const tracked = dps.map((dp) => dp.raw.mapDump('conntrack').count);

    ctx.progress(3, 5, `load balancer ${WITHDRAWN} withdrawn, its daemon killed`);
    await lab.topo.withdraw(WITHDRAWN);
    await daemons[WITHDRAWN - 1]!.stop('SIGKILL');
    let lost = 0;
    const errors: string[] = [];
    const firstRequestMs: number[] = [];
    for (const c of conns) {
      try {
        const s = performance.now();
        await lab.client.request(c);
        firstRequestMs.push(performance.now() - s);
        for (let k = 0; k < 2; k++) await lab.client.request(c);
      } catch (err) {
        lost++;
        errors.push((err as Error).message);
      }
    }
    const after = await lab.topo.counters();
    const strayPackets = after[WITHDRAWN - 1]!.front.rxPackets - before[WITHDRAWN - 1]!.front.rxPackets;

    ctx.progress(4, 5, `${NEW_CONNECTIONS} new connections`);
    const fresh = await lab.client.http(url, NEW_CONNECTIONS, 8);
    let repliesRestored = 0n;
    dps.forEach((dp, i) => {
      if (i !== WITHDRAWN - 1) repliesRestored += dp.globalStats().reply_restored;
    });
    ctx.progress(5, 5, 'done');
    return {
      connections: cfg.connections, carried, tracked, lost, errors,
      firstRequestMs: firstRequestMs.sort((a, b) => a - b),
      strayPackets,
      newConnections: { count: NEW_CONNECTIONS, failed: fresh.failed, errors: fresh.errors.slice(0, 5) },
      repliesRestored,
    };
  } finally {
    await res.release();
  }
}

const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;

function tables(r: Result): Table[] {
  const n = r.firstRequestMs.length;
  return [
    {
      title: `Failover: load balancer ${WITHDRAWN} withdrawn from ECMP and its daemon killed, ${r.connections} long-lived connections`,
      columns: ['connections', 'survived', 'lost', 'first request after: median (ms)', 'max (ms)', `packets still reaching lb${WITHDRAWN}`,
        'new connections answered', 'failed', 'replies restored without an entry (lb1 + lb3)'],
      rows: [[r.connections, r.connections - r.lost, r.lost, n ? round(r.firstRequestMs[Math.floor((n - 1) / 2)]!, 2) : null, n ? round(r.firstRequestMs[n - 1]!, 2) : null,
        r.strayPackets, r.newConnections.count - r.newConnections.failed, r.newConnections.failed, String(r.repliesRestored)]],
      notes: [
        'A connection is lost when a request on it fails (3 s timeout) or is answered on a new socket; each makes three requests after the failover. "First request after": the first of them, through the client agent.',
        `"packets still reaching lb${WITHDRAWN}": in at its front during those requests, which the router should send elsewhere. New connections: ${r.newConnections.count} HTTP requests on a new connection each, 8 at a time, after the long-lived ones.`,
        ...(r.errors.length ? [`Errors: ${r.errors.slice(0, 3).join('; ')}`] : []),
      ],
    },
    {
      title: 'Before the failover: how the router spread the connections',
      columns: ['load balancer', 'packets in at its front, one request per connection', 'conntrack entries'],
      rows: r.carried.map((c, i) => [`lb${i + 1}`, c, r.tracked[i]!]),
      notes: [
        'A request is about two packets in at the front (the request, the ACK of the answer); a load balancer with none would take no part in the failover.',
        'A node tracks what it saw of a flow in either direction: replies return through the backend router\'s own ECMP hash, often through another node than the requests, so the entries are not one pair per connection.',
      ],
    },
  ];
}

function targets(r: Result): Target[] {
  // A withdrawn load balancer that carried nothing would prove nothing.
  const vacuous = r.carried[WITHDRAWN - 1] === 0;
  const met = r.lost === 0 && !vacuous;
  const why = vacuous
    ? `the router sent none of the connections through lb${WITHDRAWN}, so its withdrawal moved none`
    : `requests failed on ${r.lost} connections: ${r.errors.slice(0, 2).join('; ')}`;
  return [{
    what: `failover: connections lost when a load balancer is withdrawn and its daemon killed`,
    target: `0 of ${r.connections}`,
    measured: `${r.lost} of ${r.connections}`,
    met,
    ...(met ? {} : { why }),
  }];
}

async function runStage(ctx: StageContext): Promise<StageResult> {
  const started = performance.now();
  const cfg = config(ctx);
  const r = await measure(ctx, cfg);
  ctx.log(`failover: ${r.lost} of ${r.connections} connections lost; spread ${r.carried.join('/')}`);
  return {
    id: 'failover',
    title: 'Failover: a load balancer of three goes, under traffic',
    method: [
      `**Topology.** src/demo/scaleout-lab.ts: a client behind a router whose route to the VIPs is an ECMP group (layer-4 hash) over three load-balancer namespaces, whose backends route their replies through the same group; three backends serving HTTP. A \`sluice daemon\` in each load balancer, attached to its two interfaces (XDP native), all three with \`--store\` on one three-member etcd cluster. One service, ${VIP}:80/tcp over the three backends, applied through node 1.`,
      `**Failover.** ${cfg.connections} long-lived HTTP connections (keep-alive, one socket each) from the client agent, one request on each; then load balancer ${WITHDRAWN} is taken out of both ECMP groups (one atomic \`ip nexthop replace\` per router) and its daemon is SIGKILLed. Each connection then makes three more requests, with a 3 s timeout each, through the two others, which saw only their own share: their packets are scheduled by Maglev on the node that now receives them, which picks the same backend, and replies are restored by their backend endpoint. Then ${NEW_CONNECTIONS} new connections.`,
    ],
    tables: tables(r),
    charts: [],
    targets: targets(r),
    seconds: (performance.now() - started) / 1000,
    raw: { config: cfg, result: { ...r, repliesRestored: String(r.repliesRestored) } },
  };
}

/** Failover under traffic on the scale-out topology: connections lost when one load balancer of three goes. */
export const failoverStage: Stage = {
  id: 'failover',
  title: 'Failover: a load balancer of three goes, under traffic',
  quickBudgetSeconds: 40,
  run: runStage,
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runStandalone([failoverStage], ['failover-connections']);
}
