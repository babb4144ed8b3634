/**
 * kube-proxy: `sluice kube-proxy` (src/daemon/kube-proxy.ts) against the
 * test Kubernetes API server (src/demo/kube-apiserver.ts) holding N
 * ClusterIP Services of one TCP port and their EndpointSlices, 5 endpoints
 * each. Measures
 *  1. the load: from the agent's spawn until its BPF maps hold every
 *     service with its endpoints, and until its /healthz answers 200;
 *  2. one change: an EndpointSlice PATCH (one endpoint's address replaced),
 *     sent over HTTPS as a controller writes it, until the maps hold the new
 *     endpoint, beside the PATCH's own round trip;
 *  3. a burst: B such PATCHes back to back until the maps hold all of them;
 *  4. the agent's memory;
 *  5. beside them, in the same run, kube-proxy's own rule programming for
 *     the same N × 5 (iptables-legacy-restore, and nft -f at up to 2,000
 *     services), with control-plane.ts's measurePeer.
 * Each run starts a fresh agent (state, pins, namespace); the API server
 * and its objects are made once for the stage. The targets take the median
 * of the runs.
 *
 * The agent runs in a network namespace of its own without a default
 * route, so it attaches to no interface: only programming is measured.
 * Its maps are read from the benchmark's process through the pins
 * (src/dataplane/pinned.ts): "programmed" means "the kernel map holds it".
 *
 * Options (bench/run.ts passes them through; defaults in brackets):
 *   --kube-services 10000 (quick: 1000)   --kube-changes 200 (quick: 30)
 *   --kube-runs 3 (quick: 1)              --kube-burst 1000 (at most the services)
 *
 *   npx tsx bench/stages/kube-proxy.ts [--quick] [options]
 * runs it alone and prints the tables.
 */
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { fmtN, latencies, median, round, sleep, type Latencies } from '../lib/figures.js';
import { freePort } from '../../src/demo/topology.js';
import type { Bar, Cell, Chart, Stage, StageContext, StageResult, Table, Target } from '../lib/types.js';
import { intArg } from '../lib/stage-args.js';
import { collectGarbage } from '../lib/client-gc.js';
import { ListCacheFront, type PrimeResult } from '../lib/kube-list-cache.js';
import { cpuSeconds, loadAverage, memoryMb, residentParts } from '../lib/proc.js';
import { Resources } from '../lib/resources.js';
import { runStandalone } from '../lib/standalone.js';
import { LABEL, measurePeer, type Measurement, type PeerMethod, type PeerSettings } from './control-plane.js';
import { KubeApiServer, type JsonObject } from '../../src/demo/kube-apiserver.js';
import { DaemonProcess } from '../../src/demo/daemon-process.js';
import { LARGE_CAPACITY_ARGS } from '../lib/capacity.js';
import { deleteNamespaces, sh } from '../../src/demo/topology.js';
import { decodeBackendValue, decodeServiceValue, encodeServiceKey, encodeU32, LAYOUTS } from '../../src/dataplane/codec.js';
import type { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { openPinned } from '../../src/dataplane/pinned.js';
import { PROXY_LABEL_SELECTOR } from '../../src/kube/objects.js';

const ENDPOINTS = 5;
const NAMESPACE = 'bench';
const NODE = 'bench-node';
/** The agent's --min-sync-period (its default, given so that the gap below follows it). */
const MIN_SYNC_MS = 100;
/**
 * Between one change landing and the next PATCH: a change that comes
 * within --min-sync-period of the last sync waits for the period to end
 * (kube-proxy's BoundedFrequencyRunner does the same), so a lone change is
 * measured only once the period is over.
 */
const GAP_MS = MIN_SYNC_MS + 50;
/** PATCHes in flight during the burst, as a busy controller manager sends them. */
const BURST_CONCURRENCY = 32;
/** The agent's list page size (src/kube/list-watch.ts, client-go's). */
const PAGE = 500;
const LIST_PATHS = ['/api/v1/services', '/apis/discovery.k8s.io/v1/endpointslices'];
const LOAD_CAP_MS = 180_000;
const CHANGE_CAP_MS = 10_000;
const BURST_CAP_MS = 120_000;
/**
 * The most services: the test API server applies Services in O(N²) (see the
 * method) and the service CIDR (10.96.0.0/16) holds 65,534.
 */
const MAX_SERVICES = 20_000;
/** kube-proxy's nftables mode is measured up to this many services: nft -f takes over a minute at 10,000 × 10. */
const NFT_UP_TO = 2000;

interface Config {
  services: number;
  changes: number;
  runs: number;
  burst: number;
  settleMs: number;
  peers: PeerMethod[];
  peer: PeerSettings;
}

function config(ctx: StageContext): Config {
  const int = (k: string, d: number, max: number): number => intArg(ctx, k, d, max);
  const services = int('kube-services', ctx.quick ? 1000 : 10_000, MAX_SERVICES);
  return {
    services,
    changes: int('kube-changes', ctx.quick ? 30 : 200, 100_000),
    runs: int('kube-runs', ctx.quick ? 1 : 3, 20),
    burst: Math.min(services, int('kube-burst', 1000, MAX_SERVICES)),
    settleMs: ctx.quick ? 1000 : 2000,
    peers: services <= NFT_UP_TO ? ['iptables-legacy', 'nft'] : ['iptables-legacy'],
    // control-plane.ts's settings for kube-proxy's tools.
    peer: ctx.quick ? { capSeconds: 20, peerChanges: 5, peerChangeBudget: 4 } : { capSeconds: 60, peerChanges: 20, peerChangeBudget: 20 },
  };
}

// ---------------------------------------------------------------------------
// The objects: Services svc-<i> in namespace "bench", each with one
// EndpointSlice svc-<i>-bench of 5 endpoints from 10.128.0.0/9; replacement
// endpoints from 10.255.0.0/16 (as control-plane.ts)

const podOf = (k: number): string => `10.${128 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`;
const freshOf = (k: number): string => `10.255.${(k >> 8) & 255}.${k & 255}`;
const serviceName = (i: number): string => `svc-${i}`;
const sliceName = (i: number): string => `svc-${i}-bench`;

function serviceObject(i: number): JsonObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: serviceName(i), namespace: NAMESPACE },
    spec: { selector: { app: serviceName(i) }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
  };
}

const endpointsOf = (addresses: readonly string[]): JsonObject[] =>
  addresses.map((ip) => ({ addresses: [ip], conditions: { ready: true, serving: true, terminating: false }, nodeName: NODE }));

function sliceObject(i: number, addresses: readonly string[]): JsonObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: sliceName(i), namespace: NAMESPACE, labels: { 'kubernetes.io/service-name': serviceName(i), 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: endpointsOf(addresses),
  };
}

/** The cluster: the API server, its front, and what the benchmark knows of the objects. */
interface Cluster {
  api: KubeApiServer;
  front: ListCacheFront;
  kubeconfig: string;
  /** Cluster IP of service i. */
  vips: string[];
  /** Endpoint addresses of service i, as its slice has them now. */
  endpoints: string[][];
  /** The next replacement address. */
  fresh: number;
  /** Seconds to apply the Services, and the EndpointSlices, into the test API server. */
  applySeconds: { services: number; slices: number };
}

async function makeCluster(ctx: StageContext, res: Resources, cfg: Config, progress: (label: string) => void): Promise<Cluster> {
  const api = await KubeApiServer.start();
  res.add(() => api.close());
  const front = await ListCacheFront.start(api);
  res.add(() => front.close());
  const dir = await mkdtemp(path.join(tmpdir(), `sluice-bench-kube-${process.pid}-`));
  res.add(() => rm(dir, { recursive: true, force: true }));
  const kubeconfig = path.join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, front.kubeconfig(), { mode: 0o600 });
  api.applyObjects([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } },
    { apiVersion: 'v1', kind: 'Node', metadata: { name: NODE }, status: { addresses: [{ type: 'InternalIP', address: '192.0.2.10' }, { type: 'Hostname', address: NODE }] } },
  ]);
  const n = cfg.services;
  progress(`test API server: ${fmtN(n)} Services`);
  const t0 = performance.now();
  // 50 at a time, so that the progress moves and a Ctrl-C is handled
  // within seconds (each Service costs a copy of every other).
  const vips: string[] = [];
  for (let i = 0; i < n; i += 50) {
    const made = api.applyObjects(Array.from({ length: Math.min(50, n - i) }, (_, j) => serviceObject(i + j)));
    for (const s of made) vips.push(String((s['spec'] as { clusterIP: string }).clusterIP));
    progress(`test API server: ${fmtN(i + made.length)} of ${fmtN(n)} Services`);
    await new Promise((r) => setImmediate(r));
  }
  const services = (performance.now() - t0) / 1000;
  progress(`test API server: ${fmtN(n)} EndpointSlices`);
  const t1 = performance.now();
  const endpoints = Array.from({ length: n }, (_, i) => Array.from({ length: ENDPOINTS }, (_, j) => podOf(i * ENDPOINTS + j)));
  for (let i = 0; i < n; i += 1000) {
    api.applyObjects(endpoints.slice(i, i + 1000).map((e, j) => sliceObject(i + j, e)));
    await new Promise((r) => setImmediate(r));
  }
  const slices = (performance.now() - t1) / 1000;
  ctx.log(`kube-proxy: the test API server took ${round(services, 1)} s to apply ${fmtN(n)} Services and ${round(slices, 1)} s for their EndpointSlices`);
  return { api, front, kubeconfig, vips, endpoints, fresh: 0, applySeconds: { services, slices } };
}

// ---------------------------------------------------------------------------
// Writing EndpointSlices over HTTPS, as a controller does

class SliceWriter {
  readonly #agent: https.Agent;

  constructor(private readonly url: string, ca: string, private readonly token: string) {
    this.#agent = new https.Agent({ keepAlive: true, maxSockets: BURST_CONCURRENCY, ca });
  }

  /** PATCH (merge patch) service i's slice to these endpoints; resolves with performance.now() when the answer has been read. */
  patch(i: number, addresses: readonly string[]): Promise<number> {
    const body = JSON.stringify({ endpoints: endpointsOf(addresses) });
    return new Promise((resolve, reject) => {
      const req = https.request(`${this.url}/apis/discovery.k8s.io/v1/namespaces/${NAMESPACE}/endpointslices/${sliceName(i)}`, {
        method: 'PATCH',
        agent: this.#agent,
        headers: {
          authorization: `Bearer ${this.token}`,
          'content-type': 'application/merge-patch+json',
          accept: 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const at = performance.now();
          if (res.statusCode === 200) resolve(at);
          else reject(new Error(`PATCH ${sliceName(i)}: ${res.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 300)}`));
        });
        res.on('error', reject);
      });
      req.on('socket', (s) => s.setNoDelay(true));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

// ---------------------------------------------------------------------------
// The maps, read through the pins

const serviceKey = (vip: string): Buffer => encodeServiceKey({ address: vip, port: 80, protocol: 'tcp' });

/** The addresses of the backends a service entry's Maglev table picks (its active backends). */
function tableAddresses(dp: NativeDataplane, value: Buffer): Set<string> {
  const v = decodeServiceValue(value);
  const out = new Set<string>();
  if (v.tableSize === 0) return out;
  const ids = new Set(dp.readTable(v.tableBase, v.tableSize));
  for (const id of ids) {
    const b = dp.raw.mapLookup('backends', encodeU32(id));
    if (b) out.add(decodeBackendValue(b).address);
  }
  return out;
}

/** Entries of the services map whose table is not empty (a service with backends). */
function servicesWithBackends(dp: NativeDataplane): number {
  const { values, count } = dp.raw.mapDump('services');
  const size = LAYOUTS.svc_value.size;
  const off = LAYOUTS.svc_value.offsets.table_size;
  let n = 0;
  for (let i = 0; i < count; i++) if (values.readUInt32LE(i * size + off) > 0) n++;
  return n;
}

/** Every service's entry holds exactly its slice's endpoints: how many do. */
function verifyAll(dp: NativeDataplane, c: Cluster): number {
  let ok = 0;
  for (let i = 0; i < c.vips.length; i++) {
    const v = dp.raw.mapLookup('services', serviceKey(c.vips[i]!));
    if (!v) continue;
    const got = tableAddresses(dp, v);
    if (got.size === ENDPOINTS && c.endpoints[i]!.every((a) => got.has(a))) ok++;
  }
  return ok;
}

// ---------------------------------------------------------------------------
// Figures


/** GET a local URL: its status and body, or null when nothing answers (yet). */
function httpGet(url: string, timeoutMs = 1000): Promise<{ status: number; body: string } | null> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

/** Syncs the agent has done (its sluice_kube_sync_duration_seconds histogram's count). */
async function syncCount(metrics: string): Promise<number> {
  const r = await httpGet(`http://${metrics}/metrics`);
  const m = r ? /^sluice_kube_sync_duration_seconds_count(?:\{[^}]*\})? (\d+)/m.exec(r.body) : null;
  return m ? Number(m[1]) : NaN;
}

// ---------------------------------------------------------------------------
// One run

interface Load {
  /** Seconds from the agent's spawn until: its maps were all pinned (the agent is up: BPF object loaded, store open). */
  up: number;
  /** The test API server received its first list request. */
  firstList: number;
  /** The last page of its three lists (Services, EndpointSlices, its Node) was answered. */
  listed: number;
  /** Its maps held every service with a non-empty table. */
  maps: number;
  /** Its /healthz answered 200 (its first sync written to its store). */
  healthz: number;
  /** CPU seconds until the maps held everything: the agent's, and the benchmark process's (the API server, its front, the polling). */
  agentCpu: number;
  benchCpu: number;
  /** Services whose entry holds exactly its slice's endpoints, checked after the load (not timed). */
  verified: number;
  /** The list pages: how many the front answered from memory, and what reading them from the test server had cost. */
  prime: PrimeResult;
  served: number;
}

interface Burst {
  changes: number;
  /** Seconds from the first PATCH until the last was answered, and until the maps held every change. */
  answered: number;
  held: number;
  /** Per change: ms from the first PATCH until the maps held it. */
  perChange: Latencies;
  /** The agent's syncs during the burst. */
  syncs: number;
}

interface RunResult {
  load: Load;
  /** Per change: ms from the PATCH's start until the maps held the new endpoint. */
  change: Latencies;
  /** The PATCH's round trip, ms. */
  api: Latencies;
  /** ms from the PATCH's answer until the maps held it (negative: held before the answer was read). */
  after: Latencies;
  burst: Burst;
  /** MB: when the agent was up (before its lists), once the maps held the load, and after the changes and the burst. */
  memory: { up: { rss: number; hwm: number }; loaded: { rss: number; hwm: number }; changed: { rss: number; hwm: number } };
  /** What the resident memory was made of once the maps held the load, MB. */
  loadedParts: { anon: number; file: number; shmem: number };
  loadAverage: [number, number];
}

async function measureRun(ctx: StageContext, cfg: Config, c: Cluster, run: number, progress: (label: string) => void): Promise<RunResult> {
  const res = new Resources(ctx, 'kube-proxy');
  const loadAtStart = loadAverage();
  try {
    const ns = `slbench-kp-${process.pid}-${run}`;
    await sh('ip', ['netns', 'add', ns]);
    res.add(() => deleteNamespaces([ns]));

    progress('reading the lists from the test API server');
    const prime = await c.front.prime(LIST_PATHS, { labelSelector: PROXY_LABEL_SELECTOR }, PAGE);
    const healthzAt = `127.0.0.1:${await freePort()}`;
    const metricsAt = `127.0.0.1:${await freePort()}`;
    const d = await DaemonProcess.create(`bkp${run}`, [
      '--kubeconfig', c.kubeconfig,
      '--hostname-override', NODE,
      '--netns', `/run/netns/${ns}`,
      '--socket-lb', '',
      '--healthz-bind-address', healthzAt,
      '--metrics-bind-address', metricsAt,
      '--min-sync-period', `${MIN_SYNC_MS}ms`,
      ...LARGE_CAPACITY_ARGS,
    ], { command: 'kube-proxy' });
    res.add(() => d.destroy());

    // 1. The load.
    progress(`load: ${fmtN(cfg.services)} services`);
    collectGarbage();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let startError: unknown;
    let started = false;
    const starting = d.start().then(() => void (started = true), (err: unknown) => void (startError = err));
    let dp: NativeDataplane | undefined;
    let up = NaN;
    let upMemory = { rss: NaN, hwm: NaN };
    let healthz = NaN;
    let maps = NaN;
    let agentCpu = NaN;
    let benchCpu = NaN;
    // A lookup of every 100th service and the last (cheap), and once they
    // are all there, a dump of the services map counting the entries with a
    // table: a service entry is written after its backends and table.
    const probes = [...Array.from({ length: Math.ceil(cfg.services / 100) }, (_, k) => k * 100), cfg.services - 1].map((i) => serviceKey(c.vips[i]!));
    while (Number.isNaN(maps) || Number.isNaN(healthz)) {
      if (startError !== undefined) throw startError;
      const now = (): number => (performance.now() - t0) / 1000;
      if (Number.isNaN(healthz)) {
        const r = await httpGet(`http://${healthzAt}/healthz`, 200);
        if (r?.status === 200) healthz = now();
      }
      // The agent binds its health port first (a taken port refuses the
      // start before anything is made), then makes and pins its maps: it is
      // up when the pins are all there.
      if (!dp) {
        try {
          dp = await openPinned(d.pinDir);
        } catch {
          dp = undefined;
        }
        if (dp) {
          up = now();
          upMemory = memoryMb(d.pid()!);
          const opened = dp;
          res.add(() => opened.close());
        }
      }
      if (dp && Number.isNaN(maps) && probes.every((k) => {
        const v = dp!.raw.mapLookup('services', k);
        return v !== null && decodeServiceValue(v).tableSize > 0;
      }) && servicesWithBackends(dp) >= cfg.services) {
        maps = now();
        agentCpu = cpuSeconds(d.pid());
        const cpu = process.cpuUsage(cpu0);
        benchCpu = (cpu.user + cpu.system) / 1e6;
      }
      if (performance.now() - t0 > LOAD_CAP_MS) {
        throw new Error(`kube-proxy: after ${LOAD_CAP_MS / 1000} s the agent's maps hold ${dp ? servicesWithBackends(dp) : 0} of ${fmtN(cfg.services)} services; its log: ${d.log().slice(-2000)}`);
      }
      await sleep(5);
    }
    await starting;
    if (!started) throw startError;
    const pid = d.pid()!;
    // When the lists began and ended, from what the front received: the
    // pages of a list are read one after another, so its last request is its last page.
    const since = (t: number): number => (t - t0) / 1000;
    const listGets = c.front.requests.filter((r) => r.method === 'GET' && !r.watch);
    const lastPages = [...LIST_PATHS, '/api/v1/nodes'].map((p) => listGets.filter((r) => r.path === p).at(-1)?.answered ?? NaN);
    const load: Load = {
      up, healthz, maps, agentCpu, benchCpu, prime, served: c.front.served,
      firstList: since(listGets[0]?.at ?? NaN),
      listed: since(Math.max(...lastPages)),
      verified: verifyAll(dp!, c),
    };
    if (c.front.served < prime.pages) ctx.log(`kube-proxy run ${run}: the agent's lists did not all come from the front (${c.front.served} of ${prime.pages} pages): the test API server answered them`);
    const loaded = memoryMb(pid);
    const loadedParts = residentParts(pid);
    ctx.log(`kube-proxy run ${run}: up ${round(up, 2)} s, lists read ${round(load.listed, 2)} s, maps hold all ${round(maps, 2)} s, /healthz 200 ${round(healthz, 2)} s; ` +
      `${load.verified} of ${cfg.services} verified; RSS ${round(loaded.rss, 0)} MB`);
    if (load.verified !== cfg.services) throw new Error(`kube-proxy: only ${load.verified} of ${cfg.services} services hold their ${ENDPOINTS} endpoints after the load`);

    // 2. One change at a time.
    await sleep(cfg.settleMs);
    collectGarbage();
    const writer = new SliceWriter(c.front.url, c.front.caPem, c.api.token);
    res.add(() => writer.close());
    const changeMs: number[] = [];
    const apiMs: number[] = [];
    const afterMs: number[] = [];
    for (let k = 0; k < cfg.changes; k++) {
      progress(`change ${k + 1} of ${cfg.changes}`);
      const i = (Math.imul((run - 1) * cfg.changes + k + 1, 2654435761) >>> 0) % cfg.services;
      const eps = c.endpoints[i]!;
      const slot = k % ENDPOINTS;
      const old = eps[slot]!;
      const neu = freshOf(c.fresh++);
      eps[slot] = neu;
      const key = serviceKey(c.vips[i]!);
      let before = dp!.raw.mapLookup('services', key);
      if (before === null) throw new Error(`kube-proxy: ${c.vips[i]}:80/tcp is missing before change ${k}`);

      const s = performance.now();
      let answered = NaN;
      let apiError: unknown;
      void writer.patch(i, eps).then((at) => void (answered = at - s), (err: unknown) => void (apiError = err));
      let held = NaN;
      while (Number.isNaN(held) || Number.isNaN(answered)) {
        if (apiError !== undefined) throw apiError;
        if (Number.isNaN(held)) {
          const at = performance.now();
          const now = dp!.raw.mapLookup('services', key);
          if (now !== null && !now.equals(before)) {
            const got = tableAddresses(dp!, now);
            if (got.has(neu) && !got.has(old)) held = at - s;
            else before = now;
          }
        }
        if (performance.now() - s > CHANGE_CAP_MS) {
          throw new Error(`kube-proxy: change ${k} (${sliceName(i)}: ${old} → ${neu}) not in the maps within ${CHANGE_CAP_MS} ms (API answered after ${round(answered, 1)} ms)`);
        }
        await sleep(1);
      }
      changeMs.push(held);
      apiMs.push(answered);
      afterMs.push(held - answered);
      await sleep(GAP_MS);
    }
    const change = latencies(changeMs);
    const apiRt = latencies(apiMs);
    ctx.log(`kube-proxy run ${run}: change p50 ${round(change.p50, 2)} ms p99 ${round(change.p99, 2)} ms; PATCH round trip p50 ${round(apiRt.p50, 2)} ms p99 ${round(apiRt.p99, 2)} ms`);

    // 3. The burst: B services, each once (a stride prime to N walks them without repeats).
    progress(`burst of ${fmtN(cfg.burst)} changes`);
    await sleep(cfg.settleMs);
    collectGarbage();
    const stride = cfg.services % 7919 === 0 ? 7907 : 7919;
    const picks = Array.from({ length: cfg.burst }, (_, k) => (k * stride + run * 104_729) % cfg.services);
    const plans = picks.map((i, k) => {
      const eps = c.endpoints[i]!;
      const slot = (k + 1) % ENDPOINTS;
      const old = eps[slot]!;
      const neu = freshOf(c.fresh++);
      eps[slot] = neu;
      const key = serviceKey(c.vips[i]!);
      return { i, old, neu, key, before: dp!.raw.mapLookup('services', key)!, eps: [...eps] };
    });
    const syncs0 = await syncCount(metricsAt);
    const b0 = performance.now();
    let next = 0;
    let lastAnswer = NaN;
    let burstError: unknown;
    const worker = async (): Promise<void> => {
      while (next < plans.length && burstError === undefined) {
        const p = plans[next++]!;
        lastAnswer = await writer.patch(p.i, p.eps);
      }
    };
    const sending = Promise.all(Array.from({ length: BURST_CONCURRENCY }, worker)).catch((err: unknown) => void (burstError = err));
    const heldAt: number[] = Array(plans.length).fill(NaN);
    let pending = plans.map((_, k) => k);
    while (pending.length > 0) {
      if (burstError !== undefined) throw burstError;
      const at = performance.now();
      pending = pending.filter((k) => {
        const p = plans[k]!;
        const now = dp!.raw.mapLookup('services', p.key);
        if (now === null || now.equals(p.before)) return true;
        const got = tableAddresses(dp!, now);
        if (got.has(p.neu) && !got.has(p.old)) {
          heldAt[k] = at - b0;
          return false;
        }
        p.before = now;
        return true;
      });
      if (performance.now() - b0 > BURST_CAP_MS) throw new Error(`kube-proxy: after ${BURST_CAP_MS / 1000} s the maps hold ${plans.length - pending.length} of the burst's ${plans.length} changes`);
      if (pending.length > 0) await sleep(2);
    }
    await sending;
    if (burstError !== undefined) throw burstError;
    const burst: Burst = {
      changes: plans.length,
      answered: (lastAnswer - b0) / 1000,
      held: Math.max(...heldAt) / 1000,
      perChange: latencies(heldAt),
      syncs: (await syncCount(metricsAt)) - syncs0,
    };
    ctx.log(`kube-proxy run ${run}: burst of ${burst.changes}: answered after ${round(burst.answered, 2)} s, in the maps after ${round(burst.held, 2)} s (${burst.syncs} syncs)`);

    const changed = memoryMb(pid);
    // An orderly stop, so that an agent run with SLUICE_DAEMON_NODE_ARGS=--cpu-prof writes its profile.
    await d.stop('SIGTERM');
    return {
      load, change, api: apiRt, after: latencies(afterMs), burst,
      memory: { up: upMemory, loaded, changed }, loadedParts,
      loadAverage: [loadAtStart, loadAverage()],
    };
  } finally {
    await res.release();
  }
}

// ---------------------------------------------------------------------------
// The report

const CPUS = availableParallelism();
const ratioOf = (r: RunResult): number => r.change.p99 / r.api.p99;
const rssOf = (r: RunResult): number => Math.max(r.memory.loaded.rss, r.memory.changed.rss);
const hwmOf = (r: RunResult): number => Math.max(r.memory.loaded.hwm, r.memory.changed.hwm);
const med = (runs: RunResult[], f: (r: RunResult) => number, digits: number): number => round(median(runs.map(f)), digits);

function tables(cfg: Config, c: Cluster, runs: RunResult[], peers: Measurement[]): Table[] {
  const medianRow = runs.length > 1;
  const n = fmtN(cfg.services);
  const legacy = peers.find((p) => p.method === 'iptables-legacy');
  const nft = peers.find((p) => p.method === 'nft');
  const ofRuns = medianRow ? ` (median of ${runs.length} runs)` : '';
  const peerLoad = (p: Measurement | undefined): Cell => (!p ? null : p.loadTimedOut ? `> ${p.loadSeconds} s` : round(p.loadSeconds, 2));
  const peerChange = (p: Measurement | undefined, f: 'p50' | 'p99'): Cell => (p?.change && p.change.ms.length > 0 ? round(p.change[f], 1) : null);
  const summary: Table = {
    title: `sluice kube-proxy beside kube-proxy's own rule programming: ${n} services × ${ENDPOINTS} endpoints`,
    columns: [
      '',
      `sluice kube-proxy: the agent, from the API server to its BPF maps${ofRuns}`,
      'kube-proxy, iptables mode: iptables-legacy-restore alone',
      ...(nft ? ['kube-proxy, nftables mode: nft -f alone'] : []),
    ],
    rows: [
      ['all programmed from nothing (s)', med(runs, (r) => r.load.maps, 2), peerLoad(legacy), ...(nft ? [peerLoad(nft)] : [])],
      ['one endpoint changed, p50 (ms)', med(runs, (r) => r.change.p50, 2), peerChange(legacy, 'p50'), ...(nft ? [peerChange(nft, 'p50')] : [])],
      ['one endpoint changed, p99 (ms)', med(runs, (r) => r.change.p99, 2), peerChange(legacy, 'p99'), ...(nft ? [peerChange(nft, 'p99')] : [])],
      ['the API round trip of that change (PATCH), p99 (ms)', med(runs, (r) => r.api.p99, 2), null, ...(nft ? [null] : [])],
      [`${fmtN(cfg.burst)} slices changed at once, until all programmed (s)`, med(runs, (r) => r.burst.held, 2), null, ...(nft ? [null] : [])],
      ['memory: resident, peak of loaded and after the changes (MB)', med(runs, rssOf, 0), null, ...(nft ? [null] : [])],
    ],
    notes: [
      `sluice's column is the agent's whole path: it starts as a process, lists the Services, EndpointSlices and its Node from the API server (HTTPS, 500 a page), translates them, writes them to its store and programs its maps; "all programmed" is from its spawn until the maps (read through the pins) hold every service with its endpoints. A change is from the start of an EndpointSlice PATCH to the API server until the maps hold the new endpoint.`,
      `kube-proxy's columns are only the rule programming kube-proxy pays for the same ${n} services × ${ENDPOINTS} endpoints: its tool run once on the whole rule set it would write (spawn to exit, the input generated beforehand and not counted), and one partial sync for one changed service. kube-proxy's own listing, watching and Go process are not in them, so they are not the same work as sluice's column: they are the least kube-proxy spends on each.`,
      ...(nft ? [] : [`kube-proxy's nftables mode is measured at up to ${fmtN(NFT_UP_TO)} services: nft -f of 10,000 × 10 took more than a minute in the control-plane stage.`]),
    ],
  };
  const load: Table = {
    title: `Load: the agent from its spawn, with ${n} Services and ${n} EndpointSlices (${fmtN(cfg.services * ENDPOINTS)} endpoints) in the API server (seconds)`,
    columns: ['run', 'agent up (s)', 'first list request (s)', 'lists read (s)', 'maps hold all (s)', '/healthz 200 (s)', 'agent CPU (s)', 'benchmark CPU (s)',
      'services verified', 'list pages from the front', 'the same pages from the test server (s)', 'load average'],
    rows: [
      ...runs.map((r, i): Cell[] => [i + 1, round(r.load.up, 2), round(r.load.firstList, 2), round(r.load.listed, 2), round(r.load.maps, 2), round(r.load.healthz, 2),
        round(r.load.agentCpu, 2), round(r.load.benchCpu, 2), `${fmtN(r.load.verified)} of ${n}`, `${r.load.served} of ${r.load.prime.pages}`,
        round(r.load.prime.seconds, 2), `${r.loadAverage[0]} → ${r.loadAverage[1]}`]),
      ...(medianRow ? [['median', med(runs, (r) => r.load.up, 2), med(runs, (r) => r.load.firstList, 2), med(runs, (r) => r.load.listed, 2), med(runs, (r) => r.load.maps, 2),
        med(runs, (r) => r.load.healthz, 2), med(runs, (r) => r.load.agentCpu, 2), med(runs, (r) => r.load.benchCpu, 2), null, null, med(runs, (r) => r.load.prime.seconds, 2), null]] : []),
    ],
    notes: [
      '"agent up": its maps are all pinned: the process has started, loaded and pinned its BPF object and opened its store (it binds /healthz before that, answering 503 until the first sync). "first list request": the first list request the API server\'s front received. "lists read": the last page of its three lists (Services, EndpointSlices, its Node) was answered. "maps hold all": every 100th service and the last have an entry with a Maglev table, then a dump of the services map counts all of them (looked at every 5 ms). "/healthz 200": the first sync is written to its store. All from the spawn of the process.',
      '"services verified": after the load (not timed), each service\'s entry read back with its table, whose backends are exactly its slice\'s endpoints.',
      `"agent CPU": user and system time of the agent from its spawn until the maps held everything; "benchmark CPU": this process's in that time: the API server, its front, the polling. On ${CPUS} CPUs shared with whatever else runs here.`,
      `"list pages from the front": the test API server builds each page of a list from a copy of every object (O(N²) for a paged list), so the agent's list pages are read from it beforehand and answered from memory by a front, as a real API server answers from its watch cache (bench/lib/kube-list-cache.ts); "the same pages from the test server" is what reading them from it took the benchmark alone, kept out of the agent's figures. The watches and the changes go through the front to the test server.`,
      `Set-up, once for the stage: the test API server took ${round(c.applySeconds.services, 1)} s to apply the ${n} Services (it lists every Service to allocate each one's cluster IP: O(N²)) and ${round(c.applySeconds.slices, 1)} s for their EndpointSlices.`,
    ],
  };
  const change: Table = {
    title: `One EndpointSlice change until the maps hold it, beside the change's own API round trip (ms), ${n} services present`,
    columns: ['run', 'changes', 'p50', 'p99', 'max', 'PATCH round trip p50', 'round trip p99', 'round trip max', 'p99 ÷ round trip p99',
      'held after the answer p50', 'after the answer p99'],
    rows: [
      ...runs.map((r, i): Cell[] => [i + 1, r.change.ms.length, round(r.change.p50, 2), round(r.change.p99, 2), round(r.change.max, 2),
        round(r.api.p50, 2), round(r.api.p99, 2), round(r.api.max, 2), round(ratioOf(r), 2), round(r.after.p50, 2), round(r.after.p99, 2)]),
      ...(medianRow ? [['median', null, med(runs, (r) => r.change.p50, 2), med(runs, (r) => r.change.p99, 2), med(runs, (r) => r.change.max, 2),
        med(runs, (r) => r.api.p50, 2), med(runs, (r) => r.api.p99, 2), med(runs, (r) => r.api.max, 2), med(runs, ratioOf, 2),
        med(runs, (r) => r.after.p50, 2), med(runs, (r) => r.after.p99, 2)]] : []),
    ],
    notes: [
      `A change: one endpoint of one service's slice replaced by a new address (a different service each time), sent as a merge PATCH over HTTPS with the bearer token, as the EndpointSlice controller writes it. Timed from the request's start until the service's entry in the maps has a Maglev table holding the new endpoint and not the old one (looked up every 1 ms: a change is late by up to that). "PATCH round trip": the same request until its answer was read. "held after the answer": the difference (negative when the maps held it first).`,
      `The agent's --min-sync-period is ${MIN_SYNC_MS} ms (its default): a change within that time of the last sync waits for it, so each change is sent ${GAP_MS} ms after the previous one landed, and measures a lone change. The API server runs in the benchmark's process; the PATCH and the agent's watch both pass through its front (one more hop there, for each).`,
      ...(medianRow ? ['The median row takes each column\'s median over the runs (the ratio: the median of the runs\' ratios).'] : []),
    ],
  };
  const burst: Table = {
    title: `A burst: ${fmtN(cfg.burst)} EndpointSlices changed back to back (${BURST_CONCURRENCY} PATCHes in flight), each of a different service`,
    columns: ['run', 'changes', 'all answered (s)', 'maps hold all (s)', 'per change p50 (ms)', 'p99 (ms)', 'agent syncs'],
    rows: [
      ...runs.map((r, i): Cell[] => [i + 1, r.burst.changes, round(r.burst.answered, 2), round(r.burst.held, 2),
        round(r.burst.perChange.p50, 1), round(r.burst.perChange.p99, 1), r.burst.syncs]),
      ...(medianRow ? [['median', null, med(runs, (r) => r.burst.answered, 2), med(runs, (r) => r.burst.held, 2),
        med(runs, (r) => r.burst.perChange.p50, 1), med(runs, (r) => r.burst.perChange.p99, 1), med(runs, (r) => r.burst.syncs, 0)]] : []),
    ],
    notes: [
      'Timed from the first PATCH. "maps hold all": every changed service\'s entry holds its new endpoint (each looked up every 2 ms until it does). "per change": from the first PATCH until that change was held. "agent syncs": its sluice_kube_sync_duration_seconds count before and after (changes that arrive during a sync or within --min-sync-period of it are written together).',
    ],
  };
  const memory: Table = {
    title: `The agent's memory with ${n} services × ${ENDPOINTS} endpoints (MB)`,
    columns: ['run', 'VmRSS up, before its lists', 'VmRSS loaded', 'of it anonymous', 'of it file pages', 'VmHWM loaded', 'VmRSS after the changes', 'VmHWM after the changes'],
    rows: runs.map((r, i): Cell[] => [i + 1, round(r.memory.up.rss, 0), round(r.memory.loaded.rss, 0), round(r.loadedParts.anon, 0), round(r.loadedParts.file, 0),
      round(r.memory.loaded.hwm, 0), round(r.memory.changed.rss, 0), round(r.memory.changed.hwm, 0)]),
    notes: [
      'From /proc/<pid>/status: when its maps were pinned (the agent up, nothing listed yet), once the maps held the load, and after the changes and the burst; VmHWM is the peak resident size since the agent started.',
      '"of it anonymous" (RssAnon): its heaps, JavaScript and native; "of it file pages" (RssFile): the node executable and the libraries it maps, shared with every other process that maps them. The BPF maps are kernel memory, not in these figures.',
    ],
  };
  const rules: Table = {
    title: `kube-proxy's rules for ${n} services × ${ENDPOINTS} endpoints, measured after the agent's runs`,
    columns: ['method', 'full load (s)', 'input generated in (s)', 'changes', 'change p50 (ms)', 'p99 (ms)', 'max (ms)'],
    rows: peers.map((p): Cell[] => [LABEL[p.method], peerLoad(p), round(p.generateSeconds ?? NaN, 2), p.change?.ms.length ?? 0,
      peerChange(p, 'p50'), peerChange(p, 'p99'), p.change && p.change.ms.length > 0 ? round(p.change.max, 1) : (p.changeSkipped ?? null)]),
    notes: [
      'The rule sets and the partial syncs of the control-plane stage (bench/lib/kube-rules.ts, as kube-proxy writes them), loaded into a scratch network namespace. A change: one service\'s endpoint replaced, one partial sync (iptables-restore --noflush of KUBE-SERVICES in full and the service\'s chains; one nft -f transaction), each a new process as kube-proxy\'s are.',
      `Up to ${cfg.peer.peerChanges} changes or ${cfg.peer.peerChangeBudget} s; with few changes, p99 is the largest of them.`,
    ],
  };
  return [summary, load, change, burst, memory, rules];
}

function charts(cfg: Config, runs: RunResult[], peers: Measurement[]): Chart[] {
  const load: Bar[] = [
    ...(cfg.services === 10_000 ? [{ label: 'the target', value: 3, reference: true }] : []),
    { label: 'sluice kube-proxy: spawn to all in the maps', value: median(runs.map((r) => r.load.maps)) },
  ];
  const change: Bar[] = [
    { label: 'PATCH round trip p99', value: median(runs.map((r) => r.api.p99)), reference: true },
    { label: 'sluice p50', value: median(runs.map((r) => r.change.p50)) },
    { label: 'sluice p99', value: median(runs.map((r) => r.change.p99)) },
  ];
  for (const p of peers) {
    if (!p.loadTimedOut) load.push({ label: `${LABEL[p.method]}: the rule set`, value: p.loadSeconds });
    if (p.change && p.change.ms.length > 0) {
      change.push({ label: `${LABEL[p.method]} p50`, value: p.change.p50 }, { label: `${LABEL[p.method]} p99`, value: p.change.p99 });
    }
  }
  const n = fmtN(cfg.services);
  return [
    { id: 'kube-proxy-load', title: `${n} services × ${ENDPOINTS} endpoints programmed from nothing`, unit: 's', bars: load, log: true },
    { id: 'kube-proxy-change', title: `One endpoint changed with ${n} services present`, unit: 'ms', bars: change, log: true },
  ];
}

/** " (median of 3 runs: 1.8, 2.1, 1.7 s)", or nothing for one run. */
function ofRuns(xs: number[], digits: number, unit: string): string {
  return xs.length < 2 ? '' : ` (median of ${xs.length} runs: ${xs.map((x) => round(x, digits)).join(', ')} ${unit})`;
}

function targets(cfg: Config, runs: RunResult[]): Target[] {
  if (cfg.services !== 10_000) return [];
  const loads = runs.map((r) => r.load.maps);
  const load = median(loads);
  const ratios = runs.map(ratioOf);
  const ratio = median(ratios);
  const rsss = runs.map(rssOf);
  const rss = median(rsss);
  const m = (f: (r: RunResult) => number, digits = 2): number => med(runs, f, digits);
  return [
    {
      what: `kube-proxy: 10,000 services × ${ENDPOINTS} endpoints programmed, from the agent's start`,
      target: '≤ 3 s',
      measured: `${round(load, 2)} s${ofRuns(loads, 2, 's')}; /healthz 200 after ${m((r) => r.load.healthz)} s`,
      met: load <= 3,
      ...(load <= 3 ? {} : {
        why: `from its spawn (medians): the agent was up after ${m((r) => r.load.up)} s, sent its first list at ${m((r) => r.load.firstList)} s, had read every list at ${m((r) => r.load.listed)} s ` +
          `and its maps held everything at ${m((r) => r.load.maps)} s; it used ${m((r) => r.load.agentCpu)} CPU-seconds in that time, the API server's process ${m((r) => r.load.benchCpu)}`,
      }),
    },
    {
      what: 'kube-proxy: one EndpointSlice change in the maps (p99), against the change\'s own API round trip (p99)',
      target: '≤ 2 × API round trip p99',
      measured: `${round(ratio, 2)} ×${ofRuns(ratios, 2, '×')}: ${m((r) => r.change.p99)} ms against ${m((r) => r.api.p99)} ms, ${cfg.changes} changes a run`,
      met: ratio <= 2,
      ...(ratio <= 2 ? {} : {
        why: `the slowest 1% of changes took more than twice the PATCH's own p99; after the PATCH was answered the maps held a change p50 ${m((r) => r.after.p50)} ms, p99 ${m((r) => r.after.p99)} ms later (medians)`,
      }),
    },
    {
      what: `kube-proxy: the agent's resident memory with 10,000 services × ${ENDPOINTS} endpoints`,
      target: '≤ 250 MB',
      measured: `${round(rss, 1)} MB${ofRuns(rsss, 1, 'MB')}; peak (VmHWM) ${m(hwmOf, 0)} MB`,
      met: rss <= 250,
      ...(rss <= 250 ? {} : {
        why: `the agent held more than 250 MB resident after the load or after the changes: ${m((r) => r.memory.up.rss, 0)} MB when it was up, before its lists, ` +
          `${m((r) => r.memory.loaded.rss, 0)} MB with everything loaded, of it ${m((r) => r.loadedParts.anon, 0)} MB anonymous and ${m((r) => r.loadedParts.file, 0)} MB the node executable's and libraries' file pages (medians)`,
      }),
    },
  ];
}

function method(cfg: Config): string[] {
  const n = fmtN(cfg.services);
  return [
    `**Set-up, once.** The test Kubernetes API server (src/demo/kube-apiserver.ts) in the benchmark's process on 127.0.0.1, holding ${n} ClusterIP Services (one TCP port each, 80 → 8080; cluster IPs allocated by the server) in namespace "${NAMESPACE}", ${n} EndpointSlices with ${ENDPOINTS} ready endpoints each (${fmtN(cfg.services * ENDPOINTS)} endpoints, from 10.128.0.0/9), and the agent's Node, all applied directly (applyObjects), not over HTTP. In front of it, a front that answers the agent's list pages from memory (see the load table's notes) and passes everything else through.`,
    `**The agent, every run afresh.** \`sluice kube-proxy\` as a child process (src/demo/daemon-process.ts) with its own state and pin directories, \`--kubeconfig\` (the front, bearer token), \`--hostname-override\`, \`--netns\` a namespace made for the run without a default route (so it attaches to no interface: only programming is measured), \`--socket-lb ''\`, \`--min-sync-period ${MIN_SYNC_MS}ms\`, \`--conntrack-size 65536\`, \`${LARGE_CAPACITY_ARGS.join(' ')}\` (the map sizes of earlier runs: the defaults fit a small node), and its /healthz and /metrics on 127.0.0.1. The benchmark reads its maps through the pins (a second, never attached instance of the object).`,
    `**Load.** From the spawn until its maps hold every service with a Maglev table (every 100th service and the last looked up every 5 ms, then the services map dumped and counted), and until its /healthz answers 200 (its first sync written); with when it came up and when its lists began and ended (from the front's record of requests), its CPU time and the benchmark's. After it, every service's entry is read back and its table's backends compared with its slice's endpoints.`,
    `**One change.** After ${cfg.settleMs} ms of rest, ${cfg.changes} changes one after another, ${GAP_MS} ms apart: a merge PATCH of one service's EndpointSlice over HTTPS replacing one endpoint's address, timed until the service's entry holds a table with the new endpoint and without the old (looked up every 1 ms, the timer's floor in Node, so that the agent keeps the other CPU), beside the PATCH's own round trip measured on the same request.`,
    `**Burst.** ${fmtN(cfg.burst)} such PATCHes, each of a different service, ${BURST_CONCURRENCY} in flight, timed from the first until the maps hold every one.`,
    `**Memory.** The agent's VmRSS and VmHWM after the load and after the changes and the burst.`,
    `**kube-proxy's rules.** After the agent's runs, with nothing else running, the control-plane stage's measurement (measurePeer) of kube-proxy's ${cfg.peers.map((p) => LABEL[p]).join(' and ')} for the same ${n} services × ${ENDPOINTS} endpoints: the full rule set from empty, and one-service partial syncs.`,
    cfg.runs > 1 ? `The agent's part is done ${cfg.runs} times, each with a fresh agent and namespace; the targets take the median of the runs.` : 'One run (--quick); a full run makes three and takes the medians.',
  ];
}

async function runStage(ctx: StageContext): Promise<StageResult> {
  const started = performance.now();
  const cfg = config(ctx);
  const res = new Resources(ctx, 'kube-proxy');
  try {
    const perRun = cfg.changes + 4;
    const units = 1 + cfg.runs * perRun + cfg.peers.length;
    let done = 0;
    const cluster = await makeCluster(ctx, res, cfg, (label) => ctx.progress(0, units, label));
    done = 1;
    const runs: RunResult[] = [];
    for (let run = 1; run <= cfg.runs; run++) {
      let step = 0;
      runs.push(await measureRun(ctx, cfg, cluster, run, (label) => {
        ctx.progress(done + Math.min(step++, perRun - 1), units, `run ${run} of ${cfg.runs}: ${label}`);
      }));
      done += perRun;
    }
    // The API server goes before kube-proxy's tools run.
    await res.release();
    const peers: Measurement[] = [];
    for (const m of cfg.peers) {
      ctx.progress(done, units, `${LABEL[m]}: ${fmtN(cfg.services)} services`);
      const p = await measurePeer(ctx, cfg.peer, m, cfg.services, ENDPOINTS);
      peers.push(p);
      ctx.log(`kube-proxy: ${LABEL[m]}: ${fmtN(cfg.services)} × ${ENDPOINTS} in ${p.loadTimedOut ? `> ${p.loadSeconds}` : round(p.loadSeconds, 2)} s` +
        (p.change && p.change.ms.length > 0 ? `, change p50 ${round(p.change.p50, 1)} ms p99 ${round(p.change.p99, 1)} ms (${p.change.ms.length})` : ''));
      done++;
    }
    ctx.progress(units, units, 'done');
    return {
      id: 'kube-proxy',
      title: 'kube-proxy: the agent against a Kubernetes API server',
      method: method(cfg),
      tables: tables(cfg, cluster, runs, peers),
      charts: charts(cfg, runs, peers),
      targets: targets(cfg, runs),
      seconds: (performance.now() - started) / 1000,
      raw: { config: cfg, applySeconds: cluster.applySeconds, runs, peers },
    };
  } finally {
    await res.release();
  }
}

/** `sluice kube-proxy` with N services in a Kubernetes API server: the load, one change, a burst, memory; beside kube-proxy's iptables rules. */
export const kubeProxyStage: Stage = {
  id: 'kube-proxy',
  title: 'kube-proxy: the agent against a Kubernetes API server',
  quickBudgetSeconds: 60,
  run: runStage,
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runStandalone([kubeProxyStage], ['kube-services', 'kube-changes', 'kube-runs', 'kube-burst']);
}
