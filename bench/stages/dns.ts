/**
 * Stage "dns": queries per second answered by the daemon's built-in DNS
 * server (--dns-bind-address) beside dnsmasq serving the same names, in
 * the same run: 10,000 services (quick: 1,000) bench/svc-N, so names
 * svc-N.bench.svc.sluice.local, each with its own VIP. dnsmasq reads them
 * as a hosts file (--addn-hosts, "VIP name" lines). dnsperf asks each
 * server for every name in turn over UDP (-c 4 clients, its default 100
 * queries in flight), for --dns-seconds (15; quick 5), the two servers
 * alternating for --dns-rounds rounds (3; quick 1). The figures are the
 * medians over the rounds; every answer must be NOERROR, or the run fails.
 *
 *   npx tsx bench/stages/dns.ts [--quick] [--dns-services N] [--dns-seconds S] [--dns-rounds R]
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

import type { ServiceInput } from '../../src/api/messages.js';
import { DaemonProcess } from '../../src/demo/daemon-process.js';
import { freePort } from '../../src/demo/topology.js';
import { DEFAULT_DNS_ZONE } from '../../src/dns/names.js';
import { LARGE_CAPACITY_ARGS } from '../lib/capacity.js';
import { median, round } from '../lib/figures.js';
import { cpuSeconds } from '../lib/proc.js';
import { Resources } from '../lib/resources.js';
import { runStandalone } from '../lib/standalone.js';
import type { Stage, StageContext, StageResult } from '../lib/types.js';
import { intArg } from '../lib/stage-args.js';

const run = promisify(execFile);
const TITLE = 'DNS: the built-in server beside dnsmasq';
const BATCH = 1000;
/** The ratio the issue asks of the built-in server. */
const TARGET_RATIO = 0.5;

type Server = 'sluice' | 'dnsmasq';

interface Config {
  services: number;
  seconds: number;
  rounds: number;
}

function config(ctx: StageContext): Config {
  const num = (k: string, d: number, max: number): number => intArg(ctx, k, d, max);
  return {
    services: num('dns-services', ctx.quick ? 1000 : 10_000, 60_000),
    seconds: num('dns-seconds', ctx.quick ? 5 : 15, 600),
    rounds: num('dns-rounds', ctx.quick ? 1 : 3, 20),
  };
}

const vipOf = (i: number): string => `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
const nameOf = (i: number): string => `svc-${i}.bench.${DEFAULT_DNS_ZONE}`;

/** One dnsperf run's figures. */
interface PerfRun {
  server: Server;
  round: number;
  qps: number;
  completed: number;
  lost: number;
  avgLatencyMs: number;
  /** The server process's CPU seconds during the run. */
  cpuS: number;
  rcodes: Record<string, number>;
}

/** Run dnsperf against 127.0.0.1:port; the figures it prints. */
async function dnsperf(server: Server, round: number, port: number, queries: string, seconds: number, pid: number | undefined): Promise<PerfRun> {
  const cpu0 = cpuSeconds(pid);
  const { stdout } = await run('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', queries, '-l', String(seconds), '-c', '4'], { maxBuffer: 1 << 20 });
  const cpuS = cpuSeconds(pid) - cpu0;
  const num = (re: RegExp): number => {
    const m = re.exec(stdout);
    if (!m) throw new Error(`dnsperf against ${server}: no ${re.source} in its output:\n${stdout}`);
    return Number(m[1]);
  };
  const rcodes: Record<string, number> = {};
  const codes = /Response codes:\s+(.*)/.exec(stdout)?.[1] ?? '';
  for (const m of codes.matchAll(/([A-Z]+) (\d+)/g)) rcodes[m[1]!] = Number(m[2]);
  return {
    server,
    round,
    qps: num(/Queries per second:\s+([\d.]+)/),
    completed: num(/Queries completed:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    avgLatencyMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    cpuS,
    rcodes,
  };
}

/** dig's short answer for `name` from 127.0.0.1:port. */
async function digShort(port: number, name: string): Promise<string> {
  return (await run('dig', ['@127.0.0.1', '-p', String(port), '+short', '+time=5', name, 'A'])).stdout.trim();
}

async function until(what: string, cond: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function measureDns(ctx: StageContext): Promise<StageResult> {
  const t0 = performance.now();
  const cfg = config(ctx);
  const res = new Resources(ctx, 'dns');
  try {
    const dir = mkdtempSync(path.join(tmpdir(), 'sluice-bench-dns-'));
    res.add(() => rmSync(dir, { recursive: true, force: true }));
    // dnsmasq reads its hosts file after dropping root for "nobody".
    chmodSync(dir, 0o755);
    const queries = path.join(dir, 'queries');
    const hosts = path.join(dir, 'hosts');
    // The names in an order of their own, so neither server's storage order favours it.
    const order = Array.from({ length: cfg.services }, (_, i) => (Math.imul(i + 1, 2654435761) >>> 0) % cfg.services);
    writeFileSync(queries, `${[...new Set(order)].map((i) => `${nameOf(i)} A`).join('\n')}\n`);
    writeFileSync(hosts, `${Array.from({ length: cfg.services }, (_, i) => `${vipOf(i)} ${nameOf(i)}`).join('\n')}\n`);

    // The daemon, with its DNS server, loaded through its gRPC API.
    const sluicePort = await freePort();
    const daemon = await DaemonProcess.create('dns', [...LARGE_CAPACITY_ARGS, '--dns-bind-address', `127.0.0.1:${sluicePort}`]);
    res.add(() => daemon.destroy());
    ctx.progress(0, cfg.services, 'starting the daemon');
    await daemon.start();
    const api = daemon.client();
    res.add(() => api.close());
    const loadStart = performance.now();
    for (let i = 0; i < cfg.services; i += BATCH) {
      const batch: ServiceInput[] = [];
      for (let k = i; k < Math.min(cfg.services, i + BATCH); k++) {
        batch.push({
          name: `bench/svc-${k}`,
          addresses: [vipOf(k)],
          ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }],
          backends: [{ address: `10.128.${(k >> 8) & 255}.${k & 255}` }],
        });
      }
      await api.applyServices(batch.map((service) => ({ service })), { view: 'BASIC' });
      ctx.progress(Math.min(cfg.services, i + BATCH), cfg.services, 'loading services');
    }
    const loadS = (performance.now() - loadStart) / 1000;

    // dnsmasq on the same names.
    const dnsmasqPort = await freePort();
    const dnsmasq: ChildProcess = spawn('dnsmasq', ['--keep-in-foreground', '--no-resolv', '--no-hosts', '--listen-address=127.0.0.1', '--bind-interfaces',
      `--port=${dnsmasqPort}`, `--addn-hosts=${hosts}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let dnsmasqErr = '';
    dnsmasq.stderr!.on('data', (b: Buffer) => (dnsmasqErr += b.toString()));
    res.add(() => {
      if (dnsmasq.exitCode === null && dnsmasq.signalCode === null) dnsmasq.kill('SIGTERM');
    });

    // Both answer the last name with its VIP before anything is timed.
    const last = cfg.services - 1;
    for (const [server, port] of [['sluice', sluicePort], ['dnsmasq', dnsmasqPort]] as const) {
      await until(`${server} answers ${nameOf(last)}`, async () => {
        if (dnsmasq.exitCode !== null) throw new Error(`dnsmasq exited (${dnsmasq.exitCode}): ${dnsmasqErr}`);
        return (await digShort(port, nameOf(last)).catch(() => '')) === vipOf(last);
      }, 30_000);
    }

    const runs: PerfRun[] = [];
    const total = cfg.rounds * 2;
    for (let r = 0; r < cfg.rounds; r++) {
      // Alternating, each round starting with the other server, so that a drift of the machine falls on both.
      const pair: Server[] = r % 2 === 0 ? ['sluice', 'dnsmasq'] : ['dnsmasq', 'sluice'];
      for (const server of pair) {
        ctx.progress(runs.length, total, `dnsperf against ${server} (round ${r + 1})`);
        const p = server === 'sluice'
          ? await dnsperf(server, r + 1, sluicePort, queries, cfg.seconds, daemon.pid())
          : await dnsperf(server, r + 1, dnsmasqPort, queries, cfg.seconds, dnsmasq.pid);
        const wrong = Object.entries(p.rcodes).filter(([c]) => c !== 'NOERROR');
        if (wrong.length > 0 || p.completed === 0) throw new Error(`${server} answered ${JSON.stringify(p.rcodes)}: every answer should be NOERROR`);
        runs.push(p);
        ctx.log(`dns: ${server} round ${r + 1}: ${Math.round(p.qps)} q/s, ${p.lost} lost, ${round(p.avgLatencyMs, 2)} ms average`);
      }
    }
    ctx.progress(total, total);

    const of = (s: Server): PerfRun[] => runs.filter((p) => p.server === s);
    const qps = (s: Server): number => median(of(s).map((p) => p.qps));
    const cpuPerKq = (s: Server): number => median(of(s).map((p) => (p.cpuS / Math.max(1, p.completed)) * 1e6)); // CPU µs per query
    const ratio = qps('sluice') / qps('dnsmasq');
    return {
      id: 'dns',
      title: TITLE,
      method: [
        `${cfg.services.toLocaleString('en-US')} services bench/svc-N, one VIP each, applied to a \`sluice daemon\` child process (no interface attached; \`--dns-bind-address 127.0.0.1:P\`) through its gRPC API in batches of ${BATCH} (${round(loadS, 1)} s), and the same ${cfg.services.toLocaleString('en-US')} names (svc-N.bench.${DEFAULT_DNS_ZONE}) in a hosts file for \`dnsmasq --keep-in-foreground --no-resolv --no-hosts --listen-address=127.0.0.1 --bind-interfaces --port=P --addn-hosts=FILE\`.`,
        `\`dnsperf -s 127.0.0.1 -p P -d FILE -l ${cfg.seconds} -c 4\` asks each server for every name in turn (A, over UDP), ${cfg.rounds} round${cfg.rounds > 1 ? 's' : ''}, the servers alternating; the figures are medians over the rounds. Every answer was NOERROR. dnsperf runs on the same machine as the servers and takes CPU from them. CPU per query is the server process's CPU time (/proc) over the queries it answered.`,
      ],
      tables: [
        {
          title: 'Queries per second (dnsperf, UDP)',
          columns: ['server', 'round', 'queries/s', 'completed', 'lost', 'average latency ms', 'server CPU µs/query'],
          rows: runs.map((p) => [p.server, p.round, Math.round(p.qps), p.completed, p.lost, round(p.avgLatencyMs, 3), round((p.cpuS / Math.max(1, p.completed)) * 1e6, 1)]),
          notes: [
            `medians: sluice ${Math.round(qps('sluice')).toLocaleString('en-US')} q/s (${round(cpuPerKq('sluice'), 1)} CPU µs/query), dnsmasq ${Math.round(qps('dnsmasq')).toLocaleString('en-US')} q/s (${round(cpuPerKq('dnsmasq'), 1)} CPU µs/query); sluice ÷ dnsmasq = ${round(ratio, 2)}.`,
          ],
        },
      ],
      charts: [{
        id: 'dns-qps',
        title: `DNS queries per second, ${cfg.services.toLocaleString('en-US')} names`,
        unit: 'queries/s',
        bars: [
          { label: 'dnsmasq', value: Math.round(qps('dnsmasq')), reference: true },
          { label: 'sluice', value: Math.round(qps('sluice')) },
        ],
      }],
      targets: [{
        what: `built-in DNS queries/s ÷ dnsmasq's, ${cfg.services.toLocaleString('en-US')} names`,
        target: `≥ ${TARGET_RATIO}`,
        measured: `${round(ratio, 2)} (${Math.round(qps('sluice'))} vs ${Math.round(qps('dnsmasq'))} q/s)`,
        met: ratio >= TARGET_RATIO,
      }],
      seconds: (performance.now() - t0) / 1000,
      raw: { config: cfg, loadSeconds: loadS, runs },
    };
  } finally {
    await res.release();
  }
}

export const dnsStage: Stage = {
  id: 'dns',
  title: TITLE,
  quickBudgetSeconds: 60,
  run: (ctx) => measureDns(ctx),
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runStandalone([dnsStage], ['dns-services', 'dns-seconds', 'dns-rounds']);
}
