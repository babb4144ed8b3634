/**
 * Control-plane scale (not run by CI): apply N services × 10 backends
 * through the gRPC API into an empty daemon, measure the time until the
 * dataplane holds all of them (the API answers only after the maps are
 * written; the maps are then counted through the pins to be sure), the
 * daemon's RSS, and the latency of one backend change with N present.
 *
 *   npx tsx bench/control-plane.ts [--services 10000] [--batch 1000] [--inflight 2] [--settle 2000] [--changes 300]
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { DaemonProcess } from '../src/demo/daemon-process.js';
import { NativeDataplane } from '../src/dataplane/native-dataplane.js';
import type { ServiceInput } from '../src/api/messages.js';
import { ClientGcWatch, collectGarbage } from './lib/client-gc.js';

const { values } = parseArgs({
  options: {
    services: { type: 'string', default: '10000' },
    backends: { type: 'string', default: '10' },
    batch: { type: 'string', default: '1000' },
    changes: { type: 'string', default: '300' },
    inflight: { type: 'string', default: '2' },
    settle: { type: 'string', default: '2000' },
  },
});
const N = Number(values.services);
const B = Number(values.backends);
const BATCH = Number(values.batch);
const CHANGES = Number(values.changes);
const INFLIGHT = Number(values.inflight);
const SETTLE_MS = Number(values.settle);

const ip = (base: number, i: number): string => `${base}.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
function service(i: number): ServiceInput {
  return {
    name: `bench/svc-${i}`,
    addresses: [ip(10, i)],
    ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }],
    backends: Array.from({ length: B }, (_, j) => ({ address: ip(11, i * B + j) })),
  };
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const daemon = await DaemonProcess.create('bench', ['--conntrack-size', '65536']);
try {
  await daemon.start();
  const pid = daemon.pid()!;
  const rss0 = rssMb(pid);
  const api = daemon.client();
  let all = Array.from({ length: N }, (_, i) => service(i));

  // A bulk loader: batches of BATCH services, INFLIGHT requests at a time
  // (the daemon applies them one after another; the client encodes the
  // next batch meanwhile), asking only for the revisions back.
  const t0 = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < N) {
      const i = next;
      next += BATCH;
      await api.applyServices(all.slice(i, i + BATCH).map((s) => ({ service: s })), { view: 'BASIC' });
    }
  };
  await Promise.all(Array.from({ length: INFLIGHT }, worker));
  const loadMs = performance.now() - t0;
  const rss1 = rssMb(pid);

  // Count what the maps hold, through the pins, from this process.
  const check = await NativeDataplane.open({ pinDir: daemon.pinDir, conntrackSize: 65536 });
  const services = check.listServices().length;
  const backends = check.listBackends().size;
  check.close();

  // Steady state: let the daemon finish what the bulk load left behind (its
  // idle WAL checkpoint, the major GC of the load's garbage) before timing
  // single changes.
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  // This process's own heap, too: the loaded service set is garbage now, and
  // a major GC of it inside a timed round trip would be counted against the
  // daemon (see lib/client-gc.ts).
  all = [];
  collectGarbage();
  const watch = new ClientGcWatch();
  const timed: Array<[number, number]> = [];

  // One backend change at a time: drain / activate a random backend of a random service.
  const lat: number[] = [];
  for (let k = 0; k < CHANGES; k++) {
    const i = Math.floor(Math.random() * N);
    const addr = ip(11, i * B + Math.floor(Math.random() * B));
    const s = performance.now();
    await api.setBackendState(`bench/svc-${i}`, addr, 'DRAINING');
    const e = performance.now();
    lat.push(e - s);
    timed.push([s, e]);
    await api.setBackendState(`bench/svc-${i}`, addr, 'ACTIVE');
  }
  lat.sort((a, b) => a - b);
  // The transport alone, for comparison: a health check, same client and daemon.
  const floor: number[] = [];
  for (let k = 0; k < CHANGES; k++) {
    const s = performance.now();
    await api.health();
    const e = performance.now();
    floor.push(e - s);
    timed.push([s, e]);
  }
  floor.sort((a, b) => a - b);
  const clientGc = watch.stop(timed);
  const rss2 = rssMb(pid);
  // V8 gives heap pages back once the process has been idle for a while.
  await new Promise((r) => setTimeout(r, 12_000));
  const rss3 = rssMb(pid);
  api.close();

  console.log(`control plane, ${N} services × ${B} backends, ApplyServices batches of ${BATCH}, ${INFLIGHT} in flight`);
  console.log(`  load into an empty daemon:  ${loadMs.toFixed(0)} ms   (target ≤ 2000 ms)`);
  console.log(`  the maps then hold:         ${services} services, ${backends} backends`);
  console.log(`  daemon RSS:                 ${rss0.toFixed(0)} MB idle, ${rss1.toFixed(0)} MB loaded, ${rss2.toFixed(0)} MB after changes, ${rss3.toFixed(0)} MB after 12 s idle   (target ≤ 200 MB)`);
  console.log(`  a health check (the gRPC round trip alone): p50 ${pct(floor, 50).toFixed(2)} ms, p99 ${pct(floor, 99).toFixed(2)} ms`);
  console.log(`  one backend change (drain), ${CHANGES} samples after ${SETTLE_MS} ms of rest: p50 ${pct(lat, 50).toFixed(2)} ms, p99 ${pct(lat, 99).toFixed(2)} ms, max ${lat[lat.length - 1]!.toFixed(2)} ms   (target p99 ≤ 5 ms)`);
  console.log(`  this process's GC during the timed calls: ${clientGc.pauses} pauses, ${clientGc.pauseMs.toFixed(1)} ms, overlapping ${clientGc.overlapped} of ${timed.length} samples`);
} finally {
  await daemon.stop('SIGTERM');
  await daemon.destroy();
}
