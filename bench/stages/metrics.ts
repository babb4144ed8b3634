/**
 * Stage "metrics": what a scrape of /metrics costs on a large node. A
 * daemon (no interfaces: only the maps and the control plane) holds 10,000
 * services × 10 backends (quick: 1,000 × 10), applied through the API in
 * batches; then 20 scrapes (quick: 5) of /metrics one after another. Per
 * scrape: the client's wall time, the response's bytes and the daemon's
 * CPU time (/proc/<pid>/stat, utime+stime, before and after); and the
 * daemon's own figure, sluice_metrics_scrape_duration_seconds (reading the
 * node and writing the per-service and per-backend families, from its
 * _sum and _count). The first scrape also counts the maps (mapOccupancy),
 * reused for 30 s after, and encodes every label set: it is shown apart.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { DaemonProcess } from '../../src/demo/daemon-process.js';
import { freePort } from '../../src/demo/topology.js';
import type { ServiceInput } from '../../src/api/messages.js';
import { LARGE_CAPACITY_ARGS } from '../lib/capacity.js';
import { round } from '../lib/figures.js';
import type { Stage, StageContext, StageResult } from '../lib/types.js';

const TITLE = 'Scraping /metrics on a large node';
const BACKENDS = 10;
const BATCH = 1000;
/** The target: the daemon's time per scrape. */
const TARGET_MS = 250;
const TICKS = 100;

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / TICKS;
}

const service = (i: number): ServiceInput => ({
  name: `bench/svc-${i}`,
  addresses: [`10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`],
  ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }],
  backends: Array.from({ length: BACKENDS }, (_, j) => {
    const k = i * BACKENDS + j;
    return { address: `10.${200 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}` };
  }),
});

/**
 * GET /metrics on a connection of its own, as Prometheus's scrapes at
 * their usual intervals come (longer than the server keeps an idle
 * connection): a kept-alive connection that the server closes while the
 * client reuses it fails the request ("other side closed").
 */
function scrape(port: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (b: Buffer) => parts.push(b));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** The daemon's sluice_metrics_scrape_duration_seconds _sum and _count. */
function ownDuration(text: string): { sum: number; count: number } {
  const get = (s: string): number => Number(new RegExp(`^sluice_metrics_scrape_duration_seconds_${s} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { sum: get('sum'), count: get('count') };
}

async function measure(ctx: StageContext): Promise<StageResult> {
  const began = performance.now();
  const services = ctx.quick ? 1000 : 10_000;
  const scrapes = ctx.quick ? 5 : 20;
  const port = await freePort();
  const daemon = await DaemonProcess.create('bmetrics', [...LARGE_CAPACITY_ARGS, '--metrics-bind-address', `127.0.0.1:${port}`]);
  const unregister = ctx.onCleanup(() => daemon.destroy());
  try {
    await daemon.start();
    const pid = daemon.pid()!;
    const api = daemon.client();
    try {
      for (let i = 0; i < services; i += BATCH) {
        ctx.progress(i, services + scrapes * BATCH, 'applying services');
        await api.applyServices(Array.from({ length: Math.min(BATCH, services - i) }, (_, k) => ({ service: service(i + k) })), { view: 'BASIC' });
      }
    } finally {
      api.close();
    }
    const rows: Array<{ wallMs: number; bytes: number; cpuMs: number; ownMs: number }> = [];
    let prev = { sum: 0, count: 0 };
    let series = 0;
    for (let k = 0; k < scrapes + 1; k++) {
      ctx.progress(services + k * BATCH, services + scrapes * BATCH, `scrape ${k + 1}`);
      const c0 = cpuSeconds(pid);
      const t0 = performance.now();
      let r: { status: number; text: string };
      try {
        r = await scrape(port);
      } catch (err) {
        throw new Error(`scrape ${k + 1}: ${String(err)}; the daemon's log: ${daemon.log().slice(-2000)}`, { cause: err });
      }
      const text = r.text;
      const wallMs = performance.now() - t0;
      const cpuMs = (cpuSeconds(pid) - c0) * 1000;
      if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
      const own = ownDuration(text);
      // This scrape's own time is in the next one's histogram.
      if (k > 0) rows[k - 1]!.ownMs = ((own.sum - prev.sum) / Math.max(1, own.count - prev.count)) * 1000;
      prev = own;
      if (k < scrapes) {
        rows.push({ wallMs, bytes: Buffer.byteLength(text), cpuMs, ownMs: NaN });
        series = text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
      }
    }
    const steady = rows.slice(1);
    const median = (xs: number[]): number => {
      const s = [...xs].sort((a, b) => a - b);
      return s[Math.floor(s.length / 2)]!;
    };
    const med = { wallMs: median(steady.map((r) => r.wallMs)), cpuMs: median(steady.map((r) => r.cpuMs)), ownMs: median(steady.map((r) => r.ownMs)), bytes: median(steady.map((r) => r.bytes)) };
    ctx.log(`metrics: ${services} services x ${BACKENDS}: ${series} series, ${(med.bytes / 1e6).toFixed(1)} MB; scrape wall ${med.wallMs.toFixed(0)} ms, daemon CPU ${med.cpuMs.toFixed(0)} ms, own ${med.ownMs.toFixed(0)} ms`);
    return {
      id: 'metrics',
      title: TITLE,
      method: [
        `A \`sluice daemon\` child process with no interfaces and \`--max-backends 131071\`, holding ${services.toLocaleString('en')} services × ${BACKENDS} backends (one VIP and port each, \`tableSize: 251\` so that the tables fit the default Maglev slots), applied through the API in batches of ${BATCH}. Then ${scrapes} scrapes of /metrics one after another from this process, each on a new connection over 127.0.0.1.`,
        'Per scrape: the client\'s wall time (request to the last byte), the response\'s size, the daemon\'s CPU time (utime + stime from /proc/<pid>/stat before and after, 10 ms ticks), and the daemon\'s own sluice_metrics_scrape_duration_seconds (from the deltas of its _sum and _count in the next scrape): reading both stats maps in one batch each, building the node snapshot and writing the families. The first scrape also counts the maps and encodes every label set; the medians are of the others.',
      ],
      tables: [
        {
          title: `Each scrape (${services.toLocaleString('en')} services × ${BACKENDS} backends, ${series.toLocaleString('en')} series)`,
          columns: ['scrape', 'client wall (ms)', 'daemon CPU (ms)', 'daemon\'s own (ms)', 'MB'],
          rows: rows.map((r, i) => [i + 1, round(r.wallMs, 1), round(r.cpuMs, 0), round(r.ownMs, 1), round(r.bytes / 1e6, 2)]),
        },
      ],
      charts: [],
      targets: [
        {
          what: `daemon time per scrape at ${services.toLocaleString('en')} services × ${BACKENDS} backends (median of scrapes 2..${scrapes}, its own histogram)`,
          target: `≤ ${TARGET_MS} ms`,
          measured: `${med.ownMs.toFixed(0)} ms (CPU ${med.cpuMs.toFixed(0)} ms, client wall ${med.wallMs.toFixed(0)} ms)`,
          met: med.ownMs <= TARGET_MS,
        },
      ],
      seconds: (performance.now() - began) / 1000,
      raw: { services, backends: BACKENDS, series, rows, median: med },
    };
  } finally {
    await daemon.destroy();
    unregister();
  }
}

export const metricsStage: Stage = {
  id: 'metrics',
  title: TITLE,
  quickBudgetSeconds: 60,
  run: (ctx) => measure(ctx),
};
