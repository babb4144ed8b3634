/**
 * The node snapshot and the daemon's metrics on the fake dataplane with a
 * fake HealthReader: sums per service and per backend address over
 * frontends, effective state from the overlay, health as the reader says,
 * live flows from the collector; the exposition's escaping; the text
 * passes `promtool check metrics`; a backend that goes takes its series;
 * every series of a service or backend equals the status page's snapshot
 * as the node changes under the plans kept between scrapes; a scrape's
 * buffers are reused only once sent.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import type { LbStats } from '../../src/dataplane/codec.js';
import type { BackendHealth, HealthReader, ProbeTally, ProbeWorkerState } from '../../src/health/health.js';
import type { NodeSnapshot } from '../../src/metrics/snapshot.js';
import { DaemonMetrics, metricsRoute } from '../../src/metrics/daemon-metrics.js';
import { startHttpServer } from '../../src/metrics/http.js';
import { ChunkPool, ExpositionWriter, escapeHelp, escapeLabelValue, labelBytes, labelSet, nameBytes } from '../../src/metrics/exposition.js';
import { NodeSnapshotter } from '../../src/metrics/node-snapshot.js';
import { buildControlPlane, type ControlPlane } from '../../src/node/control-plane.js';
import { MemoryKvStore } from '../../src/store/memory-kv.js';

const stat = (n: number): LbStats => ({ packets: BigInt(n), bytes: BigInt(n * 100), newConnections: BigInt(n > 0 ? 1 : 0), replyPackets: BigInt(n * 2) });

const web = {
  name: 'default/web',
  addresses: ['10.96.0.10', '10.96.0.11'],
  ports: [{ name: 'http', port: 80, protocol: 'tcp', targetPort: 8080 }],
  backends: [{ address: '10.1.0.1' }, { address: '10.1.0.2', weight: 0 }, { address: '10.1.0.3', state: 'maintenance' }],
};
// Service names cannot hold what a label value escapes (the escaping test covers that).
const odd = { name: 'kube/dns:53', addresses: ['10.96.0.20'], ports: [{ name: 'dns', port: 53, protocol: 'udp', targetPort: 53 }], backends: [{ address: '10.1.0.9' }] };

class FakeHealth implements HealthReader {
  readonly states = new Map<string, BackendHealth>();
  tallies: ProbeTally[] = [];
  get(service: string, address: string): BackendHealth | undefined {
    return this.states.get(`${service} ${address}`);
  }
  subscribe(): () => void {
    return () => undefined;
  }
  probeTallies(): ProbeTally[] {
    return this.tallies;
  }
  worker: ProbeWorkerState | undefined;
  probeWorker(): ProbeWorkerState | undefined {
    return this.worker;
  }
}

async function node(t: import('ava').ExecutionContext): Promise<{ dp: FakeDataplane; plane: ControlPlane }> {
  const dp = new FakeDataplane();
  const plane = await buildControlPlane({ store: new MemoryKvStore(), dataplane: dp });
  t.teardown(() => plane.close());
  await plane.catalog.apply([{ definition: web }, { definition: odd }]);
  await plane.syncer.idle();
  return { dp, plane };
}

/** Set each frontend's and backend id's counters: frontend i gets 10×(i+1), backend id b gets b. */
function traffic(dp: FakeDataplane, plane: ControlPlane): void {
  let i = 0;
  for (const [, ids] of plane.lb.exportIds()) {
    dp.svcStats.set(ids.serviceId, stat(10 * ++i));
    for (const id of ids.backends.values()) dp.beStats.set(id, stat(id));
  }
}

test('the snapshot sums per service and per backend address over frontends, as GetStats does', async (t) => {
  const { dp, plane } = await node(t);
  traffic(dp, plane);
  const snap = await new NodeSnapshotter({ plane, dataplane: dp, clock: () => 1234 }).snapshot();
  t.is(snap.atMs, 1234);
  t.deepEqual(snap.services.map((s) => s.name), ['default/web', 'kube/dns:53'], 'in name order');
  const stats = plane.inspector.stats();
  for (const [i, s] of snap.services.entries()) {
    const api = stats.services[i]!;
    t.is(s.counters.packets, Number(api.counters.packets), `${s.name}: packets as GetStats`);
    t.is(s.counters.replyPackets, Number(api.counters.replyPackets));
    for (const b of api.backends) t.is(s.backends.find((x) => x.address === b.address)!.counters.bytes, Number(b.counters.bytes), `${s.name} ${b.address}`);
  }
  const w = snap.services[0]!;
  const ids = [...plane.lb.exportIds()].filter(([n]) => n.startsWith('default/web')).map(([, x]) => x);
  t.is(ids.length, 2, 'two frontends');
  t.is(w.backends[0]!.counters.packets, ids.reduce((a, x) => a + x.backends.get('10.1.0.1:8080')!, 0), 'summed over both frontends');
  t.deepEqual(w.backends[2]!.counters, { packets: 0, bytes: 0, newConnections: 0, replyPackets: 0 }, 'a maintenance backend is not in the dataplane');
  t.deepEqual(w.backends.map((b) => [b.adminState, b.effectiveState, b.health.state]), [['active', 'active', 'unchecked'], ['active', 'active', 'unchecked'], ['maintenance', 'maintenance', 'unchecked']]);
  t.is(w.activeConnections, undefined, 'no collector: no live flow counts');
});

test('health from the reader, effective state from the overlay, live flows from the collector', async (t) => {
  const { dp, plane } = await node(t);
  const health = new FakeHealth();
  health.states.set('default/web 10.1.0.1', { state: 'unhealthy', lastProbe: { atMs: 1, ok: false, latencyMs: 3, error: 'ECONNREFUSED' } });
  plane.health = health;
  plane.overlay.set('default/web', '10.1.0.1', 'draining', 'health: 3 checks failed');
  await plane.syncer.idle();
  const ids = [...plane.lb.exportIds()].filter(([n]) => n.startsWith('default/web')).map(([, x]) => x);
  const active = new Map(ids.map((x) => [x.backends.get('10.1.0.1:8080')!, 4] as const));
  plane.conntrackGc = { stats: () => ({ passes: 1, expired: { new: 0, established: 0, closing: 0 }, orphanedReplies: 0, entriesDeleted: 0, raced: 0, lastPass: null, intervalMs: 1000 }), activeByBackend: () => active };
  const w = (await new NodeSnapshotter({ plane, dataplane: dp }).snapshot()).services[0]!;
  t.is(w.backends[0]!.effectiveState, 'draining');
  t.is(w.backends[0]!.adminState, 'active');
  t.is(w.backends[0]!.health.state, 'unhealthy');
  t.is(w.backends[0]!.activeConnections, 8, 'four on each frontend');
  t.is(w.backends[1]!.activeConnections, 0);
  t.is(w.activeConnections, 8);
});

test('label values and help are escaped as the exposition format asks', (t) => {
  t.is(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  t.is(escapeLabelValue('plain/name:80'), 'plain/name:80');
  t.is(escapeHelp('a\\b\nc "q"'), 'a\\\\b\\nc "q"');
  t.is(labelSet([['service', 'x"y'], ['backend', '10.0.0.1']]), '{service="x\\"y",backend="10.0.0.1"}');
  t.is(labelSet([]), '');
  const w = new ExpositionWriter();
  w.family('m_total', 'counter', 'help');
  w.sample(nameBytes('m_total'), labelBytes([['service', 'ü/é'], ['backend', '10.0.0.1']]), 2 ** 40);
  w.sample(nameBytes('m_total'), labelBytes([['service', 's']]), NaN);
  t.is(Buffer.concat(w.buffers()).toString('utf8'), '# HELP m_total help\n# TYPE m_total counter\nm_total{service="ü/é",backend="10.0.0.1"} 1099511627776\nm_total{service="s"} NaN\n');
  t.is(w.length, Buffer.byteLength(Buffer.concat(w.buffers()).toString('utf8')));
});

test('values are written as String() writes them, digits or not', (t) => {
  const values = [0, 1, 9, 10, 99, 100, 101, 999_999, 1_000_000, 4294967295, 4294967296, 123456789012345, 2 ** 53 - 1, 2 ** 53, 2 ** 64, 1e21, 0.5, 0.0015, 1e-7, -1, -0.25, Infinity, -Infinity, NaN];
  const w = new ExpositionWriter();
  const name = nameBytes('m');
  const labels = labelBytes([]);
  for (const v of values) w.sample(name, labels, v);
  const want = values.map((v) => `m ${Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v)}\n`).join('');
  t.is(Buffer.concat(w.buffers()).toString('latin1'), want);
});

/** Every series of the service and backend families, as `name{labels}` → value. */
function serviceSeries(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const l of text.split('\n')) {
    if (!/^sluice_(service|backend)_/.test(l)) continue;
    const at = l.lastIndexOf(' ');
    out.set(l.slice(0, at), l.slice(at + 1));
  }
  return out;
}

/** The series a snapshot says there are (the status page's numbers). */
function snapshotSeries(snap: NodeSnapshot): Map<string, string> {
  const out = new Map<string, string>();
  const counters = (prefix: string, labels: string, c: NodeSnapshot['services'][number]['counters']): void => {
    out.set(`${prefix}_packets_total${labels}`, String(c.packets));
    out.set(`${prefix}_bytes_total${labels}`, String(c.bytes));
    out.set(`${prefix}_new_connections_total${labels}`, String(c.newConnections));
    out.set(`${prefix}_reply_packets_total${labels}`, String(c.replyPackets));
  };
  for (const s of snap.services) {
    const sl = `{service="${s.name}"}`;
    counters('sluice_service', sl, s.counters);
    if (s.activeConnections !== undefined) out.set(`sluice_service_active_connections${sl}`, String(s.activeConnections));
    for (const b of s.backends) {
      const bl = `{service="${s.name}",backend="${b.address}"}`;
      counters('sluice_backend', bl, b.counters);
      if (b.activeConnections !== undefined) out.set(`sluice_backend_active_connections${bl}`, String(b.activeConnections));
      out.set(`sluice_backend_up${bl}`, b.effectiveState === 'active' && b.weight > 0 ? '1' : '0');
      if (b.health.state !== 'unchecked') out.set(`sluice_backend_health${bl}`, b.health.state === 'unhealthy' ? '0' : '1');
      if (b.health.lastProbe) out.set(`sluice_backend_last_probe_duration_seconds${bl}`, String(b.health.lastProbe.latencyMs / 1000));
    }
  }
  return out;
}

test('every series of services and backends equals the snapshot, as the node changes between scrapes', async (t) => {
  const { dp, plane } = await node(t);
  traffic(dp, plane);
  const health = new FakeHealth();
  health.states.set('default/web 10.1.0.1', { state: 'unhealthy', lastProbe: { atMs: 1, ok: false, latencyMs: 3, error: 'ECONNREFUSED' } });
  health.states.set('default/web 10.1.0.2', { state: 'unknown' });
  plane.health = health;
  let active = new Map<number, number>();
  plane.conntrackGc = { stats: () => ({ passes: 1, expired: { new: 0, established: 0, closing: 0 }, orphanedReplies: 0, entriesDeleted: 0, raced: 0, lastPass: null, intervalMs: 1000 }), activeByBackend: () => active };
  for (const [, ids] of plane.lb.exportIds()) for (const id of ids.backends.values()) active.set(id, id % 3);
  const m = new DaemonMetrics({ dataplane: dp, plane });
  const snapshots = new NodeSnapshotter({ plane, dataplane: dp });
  const agree = async (what: string): Promise<void> => {
    const series = serviceSeries(await m.text());
    const want = snapshotSeries(snapshots.read());
    t.deepEqual([...series].sort(), [...want].sort(), what);
  };
  await agree('first scrape');
  traffic(dp, plane);
  dp.beStats.forEach((s, id) => dp.beStats.set(id, stat(Number(s.packets) * 7 + 1)));
  await agree('new counters, same plans');

  plane.overlay.set('default/web', '10.1.0.1', 'draining', 'health: 3 checks failed');
  health.states.set('default/web 10.1.0.1', { state: 'healthy', lastProbe: { atMs: 2, ok: true, latencyMs: 0.25 } });
  await plane.syncer.idle();
  await agree('a backend overlaid draining');

  await plane.catalog.apply([{ definition: { ...odd, backends: [{ address: '10.1.0.9' }, { address: '10.1.0.8' }], ports: [...odd.ports, { name: 'dns-tcp', port: 53, protocol: 'tcp', targetPort: 53 }] } }]);
  await plane.syncer.idle();
  traffic(dp, plane);
  active = new Map([...plane.lb.exportIds()].flatMap(([, ids]) => [...ids.backends.values()].map((id) => [id, 5] as const)));
  await agree('a service with a new backend and a new frontend');
  const series = serviceSeries(await m.text());
  t.is(series.get('sluice_backend_active_connections{service="kube/dns:53",backend="10.1.0.8"}'), '10', 'five on each of its two frontends');

  delete plane.conntrackGc;
  await agree('no collector: no live flow series');
});

test('the daemon metrics pass promtool, and a backend that goes takes its series with it', async (t) => {
  const { dp, plane } = await node(t);
  traffic(dp, plane);
  const health = new FakeHealth();
  health.states.set('default/web 10.1.0.1', { state: 'healthy', lastProbe: { atMs: 1, ok: true, latencyMs: 1.5 } });
  health.tallies = [{ type: 'tcp', result: 'success', count: 3, sumSeconds: 0.004, buckets: [1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3] }];
  health.worker = { up: false, restarts: 2 };
  plane.health = health;
  dp.global.set('drop_no_backend', 7n);
  const m = new DaemonMetrics({ dataplane: dp, plane });
  plane.syncer.onApplied(m.observeApplied);
  m.observeApi('sluice.v1.ServiceRegistry/ApplyService', 'OK', 0.002);
  const text = await m.text();
  t.is(execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' }).trim(), '', 'promtool finds nothing to say');
  const line = (s: string): string | undefined => text.split('\n').find((l) => l.startsWith(`${s} `));
  const stats = plane.inspector.stats();
  t.is(line('sluice_service_packets_total{service="default/web"}'), `sluice_service_packets_total{service="default/web"} ${stats.services[0]!.counters.packets}`);
  t.truthy(line('sluice_service_packets_total{service="kube/dns:53"}'));
  t.is(line('sluice_backend_health{service="default/web",backend="10.1.0.1"}'), 'sluice_backend_health{service="default/web",backend="10.1.0.1"} 1');
  t.is(line('sluice_backend_health{service="default/web",backend="10.1.0.2"}'), undefined, 'unchecked: absent');
  t.is(line('sluice_backend_up{service="default/web",backend="10.1.0.2"}'), 'sluice_backend_up{service="default/web",backend="10.1.0.2"} 0', 'weight 0 takes no flows');
  t.is(line('sluice_backend_up{service="default/web",backend="10.1.0.3"}'), 'sluice_backend_up{service="default/web",backend="10.1.0.3"} 0', 'maintenance');
  t.is(line('sluice_drops_total{reason="no_backend"}'), 'sluice_drops_total{reason="no_backend"} 7');
  t.is(line('sluice_health_probe_duration_seconds_bucket{type="tcp",result="success",le="+Inf"}'), 'sluice_health_probe_duration_seconds_bucket{type="tcp",result="success",le="+Inf"} 3');
  t.is(line('sluice_health_probe_worker_up'), 'sluice_health_probe_worker_up 0', 'a worker waiting to be started again');
  t.is(line('sluice_health_probe_worker_restarts_total'), 'sluice_health_probe_worker_restarts_total 2');
  t.is(line('sluice_api_requests_total{method="sluice.v1.ServiceRegistry/ApplyService",code="OK"}'), 'sluice_api_requests_total{method="sluice.v1.ServiceRegistry/ApplyService",code="OK"} 1');
  t.truthy(line('sluice_map_entries{map="services"}'));

  await plane.catalog.apply([{ definition: { ...web, backends: [{ address: '10.1.0.1' }] } }]);
  await plane.syncer.idle();
  const after = await m.text();
  t.is(execFileSync('promtool', ['check', 'metrics'], { input: after, encoding: 'utf8' }).trim(), '');
  t.false(after.includes('backend="10.1.0.2"'), 'the removed backend has no series left');
  t.true(after.includes('sluice_backend_packets_total{service="default/web",backend="10.1.0.1"}'));
  t.regex(after, /^sluice_reconcile_duration_seconds_count [1-9]/m, 'the change was timed');
});

test('writers take the chunks the last one gave back, and keep no more than it used', (t) => {
  const pool = new ChunkPool();
  const name = nameBytes('m_total');
  const write = (n: number, v: number): { w: ExpositionWriter; text: string } => {
    const w = new ExpositionWriter(pool);
    for (let i = 0; i < n; i++) w.sample(name, labelBytes([['service', `s${i}`]]), v);
    return { w, text: `m_total{service="s0"} ${v}\n` };
  };
  const big = write(100_000, 123456789);
  const chunks = big.w.buffers().length;
  t.true(chunks >= 2, `${chunks} chunks`);
  big.w.release();
  t.is(pool.size, chunks);
  const small = write(1, 7);
  t.is(Buffer.concat(small.w.buffers()).toString(), small.text, 'nothing of the last text shows through');
  t.is(pool.size, chunks - 1, 'one taken');
  small.w.release();
  t.is(pool.size, 1, 'a scrape of one chunk leaves one');
});

test('/metrics reuses a response\'s buffers only once it is sent: a slow reader gets its own text whole', async (t) => {
  const dp = new FakeDataplane();
  const plane = await buildControlPlane({ store: new MemoryKvStore(), dataplane: dp });
  t.teardown(() => plane.close());
  // More than the loopback's socket buffers take (a few MB): the rest stays queued in the server while A is not read.
  const services = Array.from({ length: 4000 }, (_, i) => ({ definition: { name: `ns/s${i}`, addresses: [`10.96.${i >> 8}.${i & 255}`], ports: [{ name: 'http', port: 80, protocol: 'tcp', targetPort: 8080 }], backends: Array.from({ length: 10 }, (_, j) => ({ address: `10.1.${(i * 10 + j) >> 8}.${(i * 10 + j) & 255}` })) } }));
  await plane.catalog.apply(services);
  await plane.syncer.idle();
  traffic(dp, plane);
  const m = new DaemonMetrics({ dataplane: dp, plane });
  const server = await startHttpServer({ bind: { host: '127.0.0.1', port: 0 }, field: 'metricsBindAddress', routes: new Map([['/metrics', metricsRoute(m)]]) });
  t.teardown(() => server.close());
  const url = `http://${server.address}/metrics`;
  const series = (x: string): string => x.split('\n').filter((l) => /^sluice_(service|backend)_/.test(l)).join('\n');
  const now = series(await m.text());

  // A: the headers come, then the reader stops reading.
  const a = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(url, resolve).on('error', reject));
  a.pause();
  const length = Number(a.headers['content-length']);
  t.true(length > 15e6, `${length} bytes`);
  // B, C: whole scrapes of other counters while A is not read (each would write over A's chunks if they were given back early).
  dp.beStats.forEach((s, id) => dp.beStats.set(id, stat(Number(s.packets) * 3 + 1)));
  const b = await (await fetch(url)).text();
  const c = await (await fetch(url)).text();
  const parts: Buffer[] = [];
  a.on('data', (d: Buffer) => parts.push(d));
  await new Promise((resolve) => a.on('end', resolve).resume());
  const textA = Buffer.concat(parts).toString('utf8');
  t.is(Buffer.byteLength(textA), length);
  t.is(series(textA), now, "A's series are the node's when A was asked, byte for byte");
  t.not(series(b), now, 'B saw other counters');
  t.is(series(c), series(b));
  t.is(execFileSync('promtool', ['check', 'metrics'], { input: textA, encoding: 'utf8' }).trim(), '');
});
