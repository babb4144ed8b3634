/**
 * Stage "health": what active health checks cost at scale. A target
 * namespace answers every address of 10.200.0.0/16 with one listener (an
 * AnyIP route, `ip route add local 10.200.0.0/16 dev lo`, inside the
 * namespace only); the real probe worker (health/probe-worker.ts, started
 * through nsenter as the daemon starts it) probes N targets there by TCP
 * connect every 10 s, driven by a RemoteProbeEngine in this process as
 * the daemon drives it. Measured over two intervals after one of warm-up:
 * the probes a second (from the worker's tallies) and the CPU of the
 * worker (/proc/PID/stat) plus this process's side (process.cpuUsage:
 * the batches' parsing), per 1,000 probes/s and extrapolated to 100,000
 * targets every 10 s when fewer were run.
 */
import { execFileSync, spawn } from 'node:child_process';
import { cpuSplit } from '../lib/proc.js';
import { round } from '../lib/figures.js';
import { RemoteProbeEngine } from '../../src/health/probe-host.js';
import type { Stage, StageContext, StageResult } from '../lib/types.js';
import { intArg } from '../lib/stage-args.js';

const TITLE = 'Health checks: probe rate and CPU';
const INTERVAL_MS = 10_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function run(ctx: StageContext): Promise<StageResult> {
  const began = performance.now();
  const targets = intArg(ctx, 'health-targets', ctx.quick ? 10_000 : 100_000, 65_000 * 254);
  const ns = `sluice-hb-${process.pid}`;
  const ip = (...a: string[]): void => void execFileSync('ip', a, { stdio: 'ignore' });
  ip('netns', 'add', ns);
  const unNs = ctx.onCleanup(() => ip('netns', 'del', ns));
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  ip('-n', ns, 'route', 'add', 'local', '10.200.0.0/16', 'dev', 'lo');
  const listener = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', "require('net').createServer((s) => s.destroy()).listen({ port: 8080, host: '0.0.0.0', backlog: 4096 })"], { stdio: 'ignore' });
  const unListener = ctx.onCleanup(() => void listener.kill());
  let transitions = 0;
  const engine = new RemoteProbeEngine({
    netns: `/var/run/netns/${ns}`,
    handlers: { transition: () => void transitions++, probe: () => undefined },
  });
  const unEngine = ctx.onCleanup(() => engine.close());
  try {
    await sleep(1000);
    for (let i = 0; i < targets; i++) {
      engine.set(i + 1, { type: 'tcp', address: `10.200.${(i >> 8) & 255}.${1 + (i & 255) % 254}`, port: 8080, timeoutMs: 1000, intervalMs: INTERVAL_MS, rise: 1, fall: 3 });
    }
    const count = (): number => engine.tallies().reduce((n, t) => n + t.count, 0);
    const failures = (): number => engine.tallies().filter((t) => t.result === 'failure').reduce((n, t) => n + t.count, 0);
    ctx.progress(0, 3, 'warm-up');
    await sleep(INTERVAL_MS + 1500);
    const c0 = count();
    const f0 = failures();
    const w0 = cpuSplit(engine.pid);
    const s0 = cpuSplit(listener.pid);
    const k0 = kernelCounters(ns);
    const p0 = process.cpuUsage();
    const t0 = performance.now();
    ctx.progress(1, 3, 'measuring');
    await sleep(2 * INTERVAL_MS);
    // ss runs as a child, but forking it costs this process too: kept out of its figure.
    const q0 = process.cpuUsage();
    const timeWait = timeWaitCount(ns);
    const ssCpu = process.cpuUsage(q0);
    const { inFlight, waiting } = engine;
    await sleep(1100); // one more batch from the worker
    const seconds = (performance.now() - t0) / 1000;
    const probes = count() - c0;
    const failed = failures() - f0;
    const w1 = cpuSplit(engine.pid);
    const s1 = cpuSplit(listener.pid);
    const pu = process.cpuUsage(p0);
    const kernel = Object.fromEntries(Object.entries(kernelCounters(ns)).map(([k, v]) => [k, v - (k0[k] ?? 0)]));
    const workerUser = w1.user - w0.user;
    const workerSystem = w1.system - w0.system;
    const workerCpu = workerUser + workerSystem;
    const serverCpu = s1.user - s0.user + s1.system - s0.system;
    const parentCpu = (pu.user + pu.system - ssCpu.user - ssCpu.system) / 1e6;
    const rate = probes / seconds;
    const cpu = (workerCpu + parentCpu) / seconds;
    const per1000 = rate > 0 ? (cpu / rate) * 1000 : NaN;
    const at100k = per1000 * 10; // 100,000 targets every 10 s = 10,000 probes/s
    ctx.progress(3, 3);
    return {
      id: 'health',
      title: TITLE,
      method: [
        `${targets} TCP targets every ${INTERVAL_MS / 1000} s in a namespace whose AnyIP route answers all of 10.200.0.0/16 with one listener; the probe worker runs there through nsenter as the daemon runs it. Rise 1, so that every target's first state change (unknown → healthy, one message each) falls in the interval of warm-up: measured over ${round(seconds, 1)} s after it, the steady state of probing healthy backends.`,
        'CPU: the worker (/proc/PID/stat utime+stime) plus this process (process.cpuUsage), which parses the worker\'s batches as the daemon does; the checker\'s per-probe work in the daemon is one field write per result. The listener answering the probes is the benchmark\'s, not sluice\'s: its CPU is shown, not counted.',
      ],
      tables: [
        {
          title: TITLE,
          columns: ['targets', 'probes/s', 'failed', 'worker CPU (user + system)', 'parent CPU', 'CPU per 1,000 probes/s', 'CPU at 100,000 targets / 10 s', 'listener CPU', 'TIME_WAIT', 'in flight / waiting'],
          rows: [[targets, round(rate, 0), failed, `${round(workerCpu / seconds, 3)} (${round(workerUser / seconds, 3)} + ${round(workerSystem / seconds, 3)})`, round(parentCpu / seconds, 3), round(per1000, 3), round(at100k, 2), round(serverCpu / seconds, 3), timeWait, `${inFlight} / ${waiting}`]],
          notes: [
            ...(targets < 100_000 ? [`The last CPU column is extrapolated from ${targets} targets (linear in the probe rate).`] : []),
            `In the target namespace while measuring: ${Object.entries(kernel).map(([k, v]) => `${k} ${v}`).join(', ')}.`,
          ],
        },
      ],
      charts: [],
      targets: [{ what: 'probing 100,000 backends every 10 s', target: '≤ 0.5 CPU', measured: `${round(at100k, 2)} CPU${targets < 100_000 ? ' (extrapolated)' : ''}`, met: at100k <= 0.5 }],
      seconds: (performance.now() - began) / 1000,
      raw: { targets, seconds, probes, failed, workerCpu, workerUser, workerSystem, parentCpu, serverCpu, timeWait, inFlight, waiting, kernel, transitions },
    };
  } finally {
    engine.close();
    unEngine();
    listener.kill();
    unListener();
    await sleep(200);
    ip('netns', 'del', ns);
    unNs();
  }
}

/** TCP counters of the target namespace that say where connections go (opens, failures, TIME_WAIT, listen queue). */
function kernelCounters(ns: string): Record<string, number> {
  const out = execFileSync('ip', ['netns', 'exec', ns, 'nstat', '-asz', '--json'], { encoding: 'utf8' });
  const all = (JSON.parse(out) as { kernel: Record<string, number> }).kernel;
  const keep = ['TcpActiveOpens', 'TcpPassiveOpens', 'TcpAttemptFails', 'TcpEstabResets', 'TcpOutRsts', 'TcpExtTW', 'TcpExtTCPTimeWaitOverflow', 'TcpExtListenOverflows', 'TcpExtListenDrops', 'TcpExtTCPAbortOnClose', 'TcpExtTCPAbortOnData'];
  return Object.fromEntries(keep.map((k) => [k, all[k] ?? 0]));
}

/** Sockets in TIME_WAIT in the namespace now (`ss -s`). */
function timeWaitCount(ns: string): number {
  const out = execFileSync('ip', ['netns', 'exec', ns, 'ss', '-s'], { encoding: 'utf8' });
  return Number(/timewait (\d+)/.exec(out)?.[1] ?? NaN);
}

export const healthStage: Stage = { id: 'health', title: TITLE, quickBudgetSeconds: 45, run };
