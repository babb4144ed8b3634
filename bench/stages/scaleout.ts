/**
 * Scale-out (issue 13): three sluice daemons on one three-member etcd
 * cluster, everything on this machine. Measures
 *  1. the load: N services × 10 backends applied through node 1 from empty,
 *     until every node holds all of them in its maps;
 *  2. one change (one backend of one service replaced, through node 1) until
 *     every node's maps hold it, beside an etcd put-and-watch round trip
 *     measured in the same loop;
 *  3. each daemon's memory after the load and after the changes.
 * Each run builds everything afresh (etcd cluster, daemons, pins); the
 * targets take the median of the runs.
 *
 * The daemons run without interfaces: only programming is measured. Their
 * maps are read from the benchmark's process through the pins
 * (src/dataplane/pinned.ts), so "holds" means "the kernel map has it", not
 * "the API said so".
 *
 * Options (bench/run.ts passes them through; defaults in brackets):
 *   --scaleout-services 10000 (quick: 1000; at most 13,000, the maps' default)
 *   --scaleout-changes 200 (quick: 30)
 *   --scaleout-runs 3 (quick: 1)
 *
 *   npx tsx bench/stages/scaleout.ts [--quick] [options]
 * runs it alone and prints the tables.
 */
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { fmtN, latencies, median, round, sleep, type Latencies } from '../lib/figures.js';
import type { Bar, Cell, Chart, Stage, StageContext, StageResult, Table, Target } from '../lib/types.js';
import { intArg } from '../lib/stage-args.js';
import { startEtcdCluster, type EtcdCluster } from '../../src/demo/etcd-cluster.js';
import { DaemonProcess } from '../../src/demo/daemon-process.js';
import { LARGE_CAPACITY_ARGS } from '../lib/capacity.js';
import { EtcdKvStore } from '../../src/store/etcd-kv.js';
import { CatalogKeys } from '../../src/catalog/keys.js';
import { encodeServiceKey } from '../../src/dataplane/codec.js';
import type { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { openPinned } from '../../src/dataplane/pinned.js';
import type { ServiceInput } from '../../src/api/messages.js';
import { ApiError, type SluiceClient } from '../../src/api/client.js';
import { collectGarbage } from '../lib/client-gc.js';
import { cpuSeconds, loadAverage, memoryMb } from '../lib/proc.js';
import { Resources } from '../lib/resources.js';
import { runStandalone } from '../lib/standalone.js';

const NODES = 3;
const BACKENDS = 10;
/** The daemons' catalog in etcd: one prefix per benchmark process. */
const KEYS = new CatalogKeys(`/bench-${process.pid}`);
const BATCH = 1000;
const INFLIGHT = 2;
/**
 * etcd's --max-txn-ops: a batch is one transaction with, per service, a
 * compare and a put of its definition and of each frontend it claims, and a
 * delete of each frontend it gives up (catalog.ts, apply and claims): up to
 * three of each per service of one frontend. etcd counts compares and
 * operations separately against the limit.
 */
const MAX_TXN_OPS = 4 * BATCH;
/**
 * etcd's --max-request-bytes: a service of 10 backends is about 700 bytes of
 * JSON, plus its keys and compares: about 1 MB a batch; four for room.
 */
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
/** A batch refused UNAVAILABLE this many times fails the run. */
const MAX_ATTEMPTS = 3;
/** A node that has not caught up after this long fails the run. */
const LOAD_CAP_MS = 120_000;
const CHANGE_CAP_MS = 10_000;

/**
 * The most services the daemons' default map sizes hold: 10 backend entries
 * each against --max-backends 131,071 (bench/lib/capacity.ts).
 */
const MAX_SERVICES = 13_000;

interface Config {
  services: number;
  changes: number;
  runs: number;
  settleMs: number;
}

function config(ctx: StageContext): Config {
  const int = (k: string, d: number, max: number): number => intArg(ctx, k, d, max);
  return {
    services: int('scaleout-services', ctx.quick ? 1000 : 10_000, MAX_SERVICES),
    changes: int('scaleout-changes', ctx.quick ? 30 : 200, 100_000),
    runs: int('scaleout-runs', ctx.quick ? 1 : 3, 20),
    settleMs: ctx.quick ? 1000 : 2000,
  };
}

// ---------------------------------------------------------------------------
// The service set: cluster IPs from 10.96.0.0/12, backends from 10.128.0.0/9,
// replacement backends from 10.255.0.0/16 (as control-plane.ts)

const vipOf = (i: number): string => `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
const podOf = (k: number): string => `10.${128 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`;
const freshOf = (k: number): string => `10.255.${(k >> 8) & 255}.${k & 255}`;
const nameOf = (i: number): string => `bench/svc-${i}`;

function serviceOf(i: number, backends: readonly string[]): ServiceInput {
  return {
    name: nameOf(i),
    addresses: [vipOf(i)],
    ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }],
    backends: backends.map((address) => ({ address })),
  };
}

// ---------------------------------------------------------------------------
// Figures

/**
 * Between two looks at the maps: 1 ms (a timer's floor in Node), not a turn
 * of the event loop, which would keep one of the machine's two CPUs from
 * the daemons and etcd.
 */
const wait = (): Promise<void> => sleep(1);

// ---------------------------------------------------------------------------
// One run

interface RunResult {
  /** Seconds from the first request until the API answered the last batch. */
  apiSeconds: number;
  /** The load's batches sent again after UNAVAILABLE, and why. */
  retried: string[];
  /** CPU seconds (user and system) used during the load, until every node held it: by each daemon, by the etcd members together, by the benchmark. */
  loadCpu: { daemons: number[]; etcd: number; bench: number };
  /** Seconds from the first request until node i's maps held every service. */
  nodeSeconds: number[];
  /** What each node's maps held after the load. */
  mapServices: number[];
  mapBackends: number[];
  /** Per change: ms until node i held it, and until node 1's API answered. */
  perNode: Latencies[];
  api: Latencies;
  /** Per change, the slowest node. */
  change: Latencies;
  /** Per change, until etcd delivered it to a watch in the benchmark (the request, node 1's catalog work, the commit). */
  commit: Latencies;
  /** Per change, from then until the slowest node held it (the watch to the daemons, their reconcile and map writes). */
  apply: Latencies;
  /** etcd put until the watch delivered it, interleaved with the changes. */
  etcd: Latencies;
  /** A read of one key from etcd, after each round trip. */
  read: Latencies;
  /** The 1-minute load average (/proc/loadavg) when the run started and ended: other work on the machine. */
  loadAverage: [number, number];
  /** MB, per node. */
  memory: { loaded: { rss: number; hwm: number }; changed: { rss: number; hwm: number } }[];
}

/** CPU seconds used so far by each daemon, the etcd members together, and this process. */
function cpuNow(pids: readonly number[], etcd: EtcdCluster): { daemons: number[]; etcd: number; bench: number } {
  let members = 0;
  for (let i = 0; i < etcd.endpoints.length; i++) members += cpuSeconds(etcd.pid(i));
  const own = process.cpuUsage();
  return { daemons: pids.map(cpuSeconds), etcd: members, bench: (own.user + own.system) / 1e6 };
}

async function measureRun(ctx: StageContext, cfg: Config, run: number, progress: (label: string) => void): Promise<RunResult> {
  const res = new Resources(ctx, 'scale-out');
  const loadAtStart = loadAverage();
  try {
    progress('etcd cluster');
    const etcd: EtcdCluster = await startEtcdCluster({ tag: 'bench', maxTxnOps: MAX_TXN_OPS, maxRequestBytes: MAX_REQUEST_BYTES });
    res.add(() => etcd.destroy());

    progress('daemons');
    const daemons: DaemonProcess[] = [];
    for (let i = 1; i <= NODES; i++) {
      const d = await DaemonProcess.create(`bso${run}n${i}`, ['--store', etcd.url, '--store-prefix', KEYS.prefix, ...LARGE_CAPACITY_ARGS]);
      res.add(() => d.destroy());
      daemons.push(d);
    }
    await Promise.all(daemons.map((d) => d.start()));
    const pids = daemons.map((d) => d.pid()!);
    const dps: NativeDataplane[] = [];
    for (const d of daemons) {
      const dp = await openPinned(d.pinDir);
      res.add(() => dp.close());
      dps.push(dp);
    }
    const api: SluiceClient = daemons[0]!.client();
    res.add(() => api.close());
    const kv = await EtcdKvStore.connect({ endpoints: etcd.endpoints });
    res.add(() => kv.close());

    // 1. The load.
    progress(`load: ${fmtN(cfg.services)} services`);
    const set = Array.from({ length: cfg.services }, (_, i) => Array.from({ length: BACKENDS }, (_, j) => podOf(i * BACKENDS + j)));
    let inputs = set.map((b, i) => ({ service: serviceOf(i, b) }));
    collectGarbage();
    const cpu0 = cpuNow(pids, etcd);
    const t0 = performance.now();
    let apiSeconds = NaN;
    let failed: unknown;
    let next = 0;
    // A batch that etcd did not commit in time (UNAVAILABLE: the daemon's
    // etcd call gave up) is sent again, and counted: the catalog finds it
    // applied or applies it, and the time lost stays in the figure.
    const retried: string[] = [];
    const worker = async (): Promise<void> => {
      while (next < cfg.services && failed === undefined) {
        const i = next;
        next += BATCH;
        for (let attempt = 1; ; attempt++) {
          try {
            await api.applyServices(inputs.slice(i, i + BATCH), { view: 'BASIC' });
            break;
          } catch (err) {
            if (!(err instanceof ApiError) || err.codeName !== 'UNAVAILABLE' || attempt >= MAX_ATTEMPTS) throw err;
            retried.push(`batch ${i / BATCH + 1} at ${round((performance.now() - t0) / 1000, 1)} s: ${err.message.split(' Check that')[0]!.replace(/\.$/, '')}`);
            ctx.log(`scale-out run ${run}: ${retried[retried.length - 1]}; sending it again`);
          }
        }
      }
    };
    const load = Promise.all(Array.from({ length: INFLIGHT }, worker)).then(
      () => void (apiSeconds = (performance.now() - t0) / 1000),
      (err: unknown) => void (failed = err),
    );
    // Each node is looked at every 5 ms: a lookup of the first and the last
    // service of every batch (cheap), and once all of those are there, a
    // count of its services map (a batched dump of the whole map, which
    // would cost the daemons CPU if made all along).
    const probes = Array.from({ length: Math.ceil(cfg.services / BATCH) }, (_, b) => [b * BATCH, Math.min(cfg.services, (b + 1) * BATCH) - 1])
      .flat()
      .map((i) => encodeServiceKey({ address: vipOf(i), port: 80, protocol: 'tcp' }));
    const nodeSeconds: number[] = Array(NODES).fill(NaN);
    while (nodeSeconds.some(Number.isNaN)) {
      if (failed !== undefined) throw failed;
      for (let i = 0; i < NODES; i++) {
        if (!Number.isNaN(nodeSeconds[i]!)) continue;
        const dp = dps[i]!;
        if (probes.some((key) => dp.raw.mapLookup('services', key) === null)) continue;
        if (dp.raw.mapDump('services').count >= cfg.services) nodeSeconds[i] = (performance.now() - t0) / 1000;
      }
      if (performance.now() - t0 > LOAD_CAP_MS) {
        const held = dps.map((dp) => dp.raw.mapDump('services').count);
        throw new Error(`scale-out: after ${LOAD_CAP_MS / 1000} s the nodes hold ${held.join(', ')} of ${cfg.services} services`);
      }
      await sleep(5);
    }
    const cpu1 = cpuNow(pids, etcd);
    await load;
    if (failed !== undefined) throw failed;
    const mapServices = dps.map((dp) => dp.listServices().length);
    const mapBackends = dps.map((dp) => dp.listBackends().size);
    const loaded = pids.map(memoryMb);
    ctx.log(`scale-out run ${run}: loaded in ${nodeSeconds.map((s) => round(s, 2)).join(' / ')} s (API ${round(apiSeconds, 2)} s)`);

    // 2. Changes, each followed by an etcd round trip.
    await sleep(cfg.settleMs);
    inputs = [];
    collectGarbage();
    const since = await kv.revision();
    // The etcd round trip's key, outside the daemons' prefix.
    const rtKey = `/bench-rt-${process.pid}/key`;
    let seenRevision = 0;
    let seenAt = NaN;
    let watchError: Error | undefined;
    const rtWatch = kv.watch(rtKey, since, (c) => {
      seenRevision = c.revision;
      seenAt = performance.now();
    }, (err) => void (watchError = err));
    res.add(() => rtWatch.cancel());
    // When etcd delivered each change to a watcher (this one, beside the
    // daemons' own): splits a change into its commit and the nodes' apply.
    let pendingKey = '';
    let committedAt = NaN;
    const svcWatch = kv.watch(KEYS.services, since, (c) => {
      if (Number.isNaN(committedAt) && c.events.some((e) => e.kv.key === pendingKey)) committedAt = performance.now();
    }, (err) => void (watchError = err));
    res.add(() => svcWatch.cancel());

    const perNode: number[][] = Array.from({ length: NODES }, () => []);
    const apiMs: number[] = [];
    const changeMs: number[] = [];
    const commitMs: number[] = [];
    const applyMs: number[] = [];
    const etcdMs: number[] = [];
    const readMs: number[] = [];
    for (let k = 0; k < cfg.changes; k++) {
      progress(`change ${k + 1} of ${cfg.changes}`);
      const index = (Math.imul(k + 1, 2654435761) >>> 0) % set.length;
      const backends = set[index]!;
      backends[k % BACKENDS] = freshOf(k);
      const service = serviceOf(index, backends);
      const key = encodeServiceKey({ address: vipOf(index), port: 80, protocol: 'tcp' });
      const before = dps.map((dp) => dp.raw.mapLookup('services', key));
      if (before.some((b) => b === null)) throw new Error(`scale-out: ${vipOf(index)}:80/tcp is missing from a node before change ${k}`);
      pendingKey = KEYS.service(nameOf(index));
      committedAt = NaN;

      const s = performance.now();
      let answered = NaN;
      let apiError: unknown;
      void api.applyService(service).then(() => void (answered = performance.now() - s), (err: unknown) => void (apiError = err));
      const at: number[] = Array(NODES).fill(NaN);
      while (at.some(Number.isNaN) || Number.isNaN(answered) || Number.isNaN(committedAt)) {
        if (apiError !== undefined) throw apiError;
        if (watchError !== undefined) throw watchError;
        for (let i = 0; i < NODES; i++) {
          if (!Number.isNaN(at[i]!)) continue;
          const now = dps[i]!.raw.mapLookup('services', key);
          if (now === null || !now.equals(before[i]!)) at[i] = performance.now() - s;
        }
        if (performance.now() - s > CHANGE_CAP_MS) {
          throw new Error(`scale-out: change ${k} not on every node within ${CHANGE_CAP_MS} ms (nodes ${at.map((x) => round(x, 1)).join(', ')} ms, API ${round(answered, 1)} ms)`);
        }
        await wait();
      }
      at.forEach((x, i) => perNode[i]!.push(x));
      apiMs.push(answered);
      changeMs.push(Math.max(...at));
      commitMs.push(committedAt - s);
      applyMs.push(Math.max(...at) - (committedAt - s));

      const e = performance.now();
      let revision = Infinity;
      let putError: unknown;
      void kv.txn([], [{ put: rtKey, value: String(k) }]).then((r) => void (revision = r.revision), (err: unknown) => void (putError = err));
      while (seenRevision < revision) {
        if (putError !== undefined) throw putError;
        if (watchError !== undefined) throw watchError;
        if (performance.now() - e > CHANGE_CAP_MS) throw new Error(`scale-out: etcd round trip ${k} not within ${CHANGE_CAP_MS} ms`);
        await wait();
      }
      etcdMs.push(seenAt - e);

      // A read of one key, as node 1 makes before its transaction (etcd's
      // reads are linearizable: the leader confirms it still leads first).
      const g = performance.now();
      await kv.get(rtKey);
      readMs.push(performance.now() - g);
    }
    const changed = pids.map(memoryMb);
    const result: RunResult = {
      apiSeconds, nodeSeconds, mapServices, mapBackends, retried,
      loadCpu: { daemons: cpu1.daemons.map((c, i) => c - cpu0.daemons[i]!), etcd: cpu1.etcd - cpu0.etcd, bench: cpu1.bench - cpu0.bench },
      perNode: perNode.map(latencies), api: latencies(apiMs), change: latencies(changeMs),
      commit: latencies(commitMs), apply: latencies(applyMs), etcd: latencies(etcdMs), read: latencies(readMs),
      loadAverage: [loadAtStart, loadAverage()],
      memory: loaded.map((l, i) => ({ loaded: l, changed: changed[i]! })),
    };
    ctx.log(`scale-out run ${run}: change p50 ${round(result.change.p50, 2)} ms p99 ${round(result.change.p99, 2)} ms ` +
      `(commit seen p50 ${round(result.commit.p50, 2)} ms, then the slowest node p50 ${round(result.apply.p50, 2)} ms); ` +
      `etcd round trip p50 ${round(result.etcd.p50, 2)} ms p99 ${round(result.etcd.p99, 2)} ms`);
    // An orderly stop, so that a daemon run with SLUICE_DAEMON_NODE_ARGS=--cpu-prof writes its profile.
    await Promise.all(daemons.map((d) => d.stop('SIGTERM')));
    return result;
  } finally {
    await res.release();
  }
}

// ---------------------------------------------------------------------------
// The report

const maxOf = (r: RunResult): number => Math.max(...r.nodeSeconds);
const cpuTotal = (r: RunResult): number => r.loadCpu.daemons.reduce((a, b) => a + b, 0) + r.loadCpu.etcd + r.loadCpu.bench;
const CPUS = availableParallelism();
const ratioOf = (r: RunResult): number => r.change.p99 / r.etcd.p99;
const nodeCols = Array.from({ length: NODES }, (_, i) => `node ${i + 1}`);

function tables(cfg: Config, runs: RunResult[]): Table[] {
  const medianRow = runs.length > 1;
  const load: Table = {
    title: `Load: ${fmtN(cfg.services)} services × ${BACKENDS} backends through node 1, until each node's maps hold them (seconds)`,
    columns: ['run', 'API answered (s)', ...nodeCols.map((c) => `${c} (s)`), 'all nodes (s)', 'batches sent again', 'maps: services', 'maps: backends', 'load average'],
    rows: [
      ...runs.map((r, i): Cell[] => [i + 1, round(r.apiSeconds, 2), ...r.nodeSeconds.map((s) => round(s, 2)), round(maxOf(r), 2), r.retried.length,
        r.mapServices.join(' / '), r.mapBackends.join(' / '), `${r.loadAverage[0]} → ${r.loadAverage[1]}`]),
      ...(medianRow ? [['median', round(median(runs.map((r) => r.apiSeconds)), 2),
        ...nodeCols.map((_, n) => round(median(runs.map((r) => r.nodeSeconds[n]!)), 2)), round(median(runs.map(maxOf)), 2), null, null, null, null]] : []),
    ],
    notes: [
      `ApplyServices of ${fmtN(BATCH)} services a request, ${INFLIGHT} in flight, to node 1; each node's services map looked at every 5 ms through its pins.`,
      '"API answered": node 1 answers a batch once it has programmed it itself; the other nodes follow from their etcd watches.',
      '"batches sent again": answered UNAVAILABLE (node 1\'s etcd call, 3 s, ran out) and sent again at once; the time lost is in the figures.',
      ...runs.flatMap((r, i) => r.retried.map((x) => `Run ${i + 1}, ${x}.`)),
      '"load average": the machine\'s 1-minute load average (/proc/loadavg) as the run started and ended, on 2 CPUs: work other than the run\'s own shows there.',
    ],
  };
  const cpu: Table = {
    title: `CPU used during the load, until every node held it (seconds of one CPU; the machine has ${CPUS})`,
    columns: ['run', ...nodeCols, 'etcd (3 members)', 'benchmark', 'total', `total ÷ ${CPUS} CPUs`, 'all nodes held it (s)'],
    rows: runs.map((r, i): Cell[] => [i + 1, ...r.loadCpu.daemons.map((c) => round(c, 2)), round(r.loadCpu.etcd, 2), round(r.loadCpu.bench, 2),
      round(cpuTotal(r), 2), round(cpuTotal(r) / CPUS, 2), round(maxOf(r), 2)]),
    notes: [
      `User and system time from /proc/<pid>/stat. Every process of the run shares this machine's ${CPUS} CPUs (with whatever else runs on it): "total ÷ ${CPUS}" is the least wall time the load could take here; on machines of their own, each daemon's own column is what its node needs.`,
    ],
  };
  const change: Table = {
    title: 'One change until every node holds it, beside an etcd put-and-watch round trip (ms)',
    columns: ['run', 'changes', 'every node p50', 'every node p99', 'every node max', 'etcd round trip p50', 'etcd p99', 'etcd max', 'p99 ÷ etcd p99'],
    rows: [
      ...runs.map((r, i): Cell[] => [i + 1, r.change.ms.length, round(r.change.p50, 2), round(r.change.p99, 2), round(r.change.max, 2),
        round(r.etcd.p50, 2), round(r.etcd.p99, 2), round(r.etcd.max, 2), round(ratioOf(r), 2)]),
      ...(medianRow ? [['median', null, round(median(runs.map((r) => r.change.p50)), 2), round(median(runs.map((r) => r.change.p99)), 2),
        round(median(runs.map((r) => r.change.max)), 2), round(median(runs.map((r) => r.etcd.p50)), 2), round(median(runs.map((r) => r.etcd.p99)), 2),
        round(median(runs.map((r) => r.etcd.max)), 2), round(median(runs.map(ratioOf)), 2)]] : []),
    ],
    notes: [
      'A change: ApplyService through node 1 of one service (a different one each time) with one backend replaced; timed from the call until the services-map entry of its frontend changed on the node (its Maglev table moves), the slowest of the three nodes.',
      'The etcd round trip: a put of one key through the same etcd client the daemons use (EtcdKvStore), timed until a watch on that key in the benchmark delivered it; one after each change.',
      ...(medianRow ? ['The median row takes each column\'s median over the runs (the ratio: the median of the runs\' ratios).'] : []),
    ],
  };
  const steps: Table = {
    title: 'Where a change\'s time goes (ms)',
    columns: ['run', 'etcd delivered it p50', 'p99', 'then the slowest node p50', 'p99',
      ...nodeCols.flatMap((c) => [`${c} p50`, `${c} p99`]), 'node 1 API answered p50', 'p99', 'etcd read p50', 'p99'],
    rows: runs.map((r, i) => [i + 1, round(r.commit.p50, 2), round(r.commit.p99, 2), round(r.apply.p50, 2), round(r.apply.p99, 2),
      ...r.perNode.flatMap((l) => [round(l.p50, 2), round(l.p99, 2)]), round(r.api.p50, 2), round(r.api.p99, 2), round(r.read.p50, 2), round(r.read.p99, 2)]),
    notes: [
      '"etcd delivered it": from the call until a watch of the catalog\'s prefix in the benchmark (beside the daemons\' own) delivered the service\'s new definition: the gRPC request, node 1\'s decision (from its own view of the catalog: no etcd read before the transaction, whose compares catch a stale view) and the transaction\'s commit. "then the slowest node": from there until the last node\'s map held it: the watch\'s delivery to the daemons, their reconcile (a new Maglev table) and map writes.',
      'Per node: from the call until that node\'s map held the change. Node 1 takes the request and commits it, then programs it from its own watch as the others do; its API answers after that.',
      '"etcd read": a get of one key through EtcdKvStore after each round trip, for scale: node 1 makes no read before its transaction (it decides from its view), so the commit is one etcd round trip.',
    ],
  };
  const memory: Table = {
    title: `Each daemon's memory with ${fmtN(cfg.services)} services × ${BACKENDS} backends (MB)`,
    columns: ['run', 'node', 'VmRSS loaded', 'VmHWM loaded', 'VmRSS after changes', 'VmHWM after changes'],
    rows: runs.flatMap((r, i) => r.memory.map((m, n): Cell[] => [i + 1, n + 1, round(m.loaded.rss, 0), round(m.loaded.hwm, 0), round(m.changed.rss, 0), round(m.changed.hwm, 0)])),
    notes: ['From /proc/<pid>/status; VmHWM is the peak resident size since the daemon started. Node 1 also served the API.'],
  };
  return [load, cpu, change, steps, memory];
}

function charts(runs: RunResult[]): Chart[] {
  const load: Bar[] = runs.flatMap((r, i) => r.nodeSeconds.map((s, n): Bar => ({ label: `node ${n + 1}`, value: s, group: `run ${i + 1}` })));
  const change: Bar[] = runs.flatMap((r, i): Bar[] => [
    { label: 'etcd round trip p50', value: r.etcd.p50, group: `run ${i + 1}`, reference: true },
    { label: 'etcd round trip p99', value: r.etcd.p99, group: `run ${i + 1}`, reference: true },
    { label: 'every node p50', value: r.change.p50, group: `run ${i + 1}` },
    { label: 'every node p99', value: r.change.p99, group: `run ${i + 1}` },
  ]);
  return [
    { id: 'scaleout-load', title: 'Load: until each node holds every service', unit: 's', bars: load },
    { id: 'scaleout-change', title: 'One change on every node, beside the etcd round trip', unit: 'ms', bars: change },
  ];
}

/** Where the missed change target's time went, from the medians of the runs. */
function changeWhy(runs: RunResult[]): string {
  const m = (f: (r: RunResult) => number): number => round(median(runs.map(f)), 2);
  return `the slowest node's p99 exceeded twice the etcd round trip's p99 (${m((r) => r.etcd.p99)} ms). Of a change, the request until etcd delivered the commit took p50 ${m((r) => r.commit.p50)} ms, p99 ${m((r) => r.commit.p99)} ms ` +
    `(the etcd round trip alone: p50 ${m((r) => r.etcd.p50)} ms), and from there until the slowest node held it p50 ${m((r) => r.apply.p50)} ms, p99 ${m((r) => r.apply.p99)} ms`;
}

/** "; 2 batches sent again after UNAVAILABLE", or nothing. */
function retries(runs: RunResult[]): string {
  const n = runs.reduce((a, r) => a + r.retried.length, 0);
  return n === 0 ? '' : `; ${n} batch${n === 1 ? '' : 'es'} sent again after UNAVAILABLE`;
}

/** " (median of 3 runs: 1.8, 2.1, 1.7)", or nothing for one run. */
function ofRuns(xs: number[], digits: number, unit: string): string {
  return xs.length < 2 ? '' : ` (median of ${xs.length} runs: ${xs.map((x) => round(x, digits)).join(', ')} ${unit})`;
}

function targets(cfg: Config, runs: RunResult[]): Target[] {
  if (cfg.services !== 10_000) return [];
  const loads = runs.map(maxOf);
  const load = median(loads);
  const ratios = runs.map(ratioOf);
  const ratio = median(ratios);
  const p99 = median(runs.map((r) => r.change.p99));
  const etcdP99 = median(runs.map((r) => r.etcd.p99));
  return [
    {
      what: `scale-out: 10,000 services × ${BACKENDS} backends from empty until all three nodes hold them`,
      target: '≤ 5 s',
      measured: `${round(load, 2)} s${ofRuns(loads, 2, 's')}${retries(runs)}`,
      met: load <= 5,
      ...(load <= 5 ? {} : {
        why: `the slowest node took longer than 5 s to hold every service (node 1's API answered the last batch after ${round(median(runs.map((r) => r.apiSeconds)), 2)} s, ` +
          `the nodes held everything after ${nodeCols.map((_, n) => round(median(runs.map((r) => r.nodeSeconds[n]!)), 2)).join(' / ')} s; medians). ` +
          `During it the daemons used ${nodeCols.map((_, n) => round(median(runs.map((r) => r.loadCpu.daemons[n]!)), 1)).join(' / ')} CPU-seconds and the etcd members ${round(median(runs.map((r) => r.loadCpu.etcd)), 1)}: ` +
          `on the ${CPUS} CPUs they all share here, ${round(median(runs.map(cpuTotal)) / CPUS, 1)} s at the least`,
      }),
    },
    {
      what: 'scale-out: one change until every node holds it (p99), against an etcd put-and-watch round trip (p99)',
      target: '≤ 2 × etcd p99',
      measured: `${round(ratio, 2)} ×${ofRuns(ratios, 2, '×')}: ${round(p99, 2)} ms against ${round(etcdP99, 2)} ms, ${cfg.changes} changes a run`,
      met: ratio <= 2,
      ...(ratio <= 2 ? {} : { why: changeWhy(runs) }),
    },
  ];
}

function method(cfg: Config): string[] {
  return [
    `**Set-up, every run afresh.** A three-member etcd 3.4 cluster on 127.0.0.1 (src/demo/etcd-cluster.ts; --max-txn-ops ${fmtN(MAX_TXN_OPS)} and --max-request-bytes ${fmtN(MAX_REQUEST_BYTES)}, so that a batch of ${fmtN(BATCH)} services is one transaction; data directories on the machine's disk), and three \`sluice daemon\` child processes with \`--store etcd://… --store-prefix /bench-<pid>\`, their own state and pin directories, and no interfaces (only programming is measured). The benchmark opens each daemon's pinned maps read-only (a second, never attached instance of the object) to see what each node holds.`,
    `**Load.** ${fmtN(cfg.services)} ClusterIP services, one TCP port each (80 → 8080) and ${BACKENDS} backends (cluster IPs from 10.96.0.0/12, backends from 10.128.0.0/9), applied through node 1's gRPC API as ApplyServices requests of ${fmtN(BATCH)}, ${INFLIGHT} in flight, from empty. Timed from the first request until each node's services map holds all of them (looked at every 5 ms: a lookup of the first and last service of each batch, then, once they are all there, a count of the map).`,
    `**One change.** After ${cfg.settleMs} ms of rest, ${cfg.changes} changes one after another: ApplyService through node 1 of one service with one backend replaced by a new address (a different service each time). The benchmark reads the service's frontend entry in each node's services map before the call, then looks it up on every node every millisecond (one map lookup each, then a 1 ms timer: a timer's floor in Node, where a busy loop would take one of the two CPUs from the daemons and etcd) until every node's entry differs: a changed backend set gets a new Maglev table beside the old one, so the entry's table base changes. The latency of a change is its slowest node's; it is late by up to the 1 ms between looks. A watch of the catalog's prefix in the benchmark marks when etcd delivered the change, which splits it into the commit and the nodes' apply. Right after each change, an etcd round trip: a put of one key (outside the catalog's prefix) through the etcd client the daemons use (EtcdKvStore), timed until a watch on the key in the benchmark delivers it (the time its callback ran); then a read of that key.`,
    `**Memory and CPU.** Each daemon's VmRSS and VmHWM (/proc/<pid>/status) after the load and after the changes; the CPU time each daemon, the etcd members and the benchmark used during the load (/proc/<pid>/stat).`,
    `${cfg.runs > 1 ? `All of this is done ${cfg.runs} times, each run from nothing; the targets take the median of the runs.` : 'One run (--quick); a full run makes three and takes the medians.'}`,
  ];
}

async function runStage(ctx: StageContext): Promise<StageResult> {
  const started = performance.now();
  const cfg = config(ctx);
  const runs: RunResult[] = [];
  const units = cfg.runs * (cfg.changes + 3);
  for (let run = 1; run <= cfg.runs; run++) {
    let step = 0;
    runs.push(await measureRun(ctx, cfg, run, (label) => {
      ctx.progress((run - 1) * (cfg.changes + 3) + Math.min(step++, cfg.changes + 2), units, `run ${run} of ${cfg.runs}: ${label}`);
    }));
  }
  ctx.progress(units, units, 'done');
  return {
    id: 'scale-out',
    title: 'Scale-out: three nodes on etcd',
    method: method(cfg),
    tables: tables(cfg, runs),
    charts: charts(runs),
    targets: targets(cfg, runs),
    seconds: (performance.now() - started) / 1000,
    raw: { config: cfg, runs },
  };
}

/** Three daemons on a three-member etcd: the load until every node holds it, one change until every node holds it, memory. */
export const scaleoutStage: Stage = {
  id: 'scale-out',
  title: 'Scale-out: three nodes on etcd',
  quickBudgetSeconds: 60,
  run: runStage,
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runStandalone([scaleoutStage], ['scaleout-services', 'scaleout-changes', 'scaleout-runs']);
}
