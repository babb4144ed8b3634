/**
 * The probe worker: a child process that runs a LocalProbeEngine where it
 * was started (inside the backends' network namespace through nsenter, or
 * in the daemon's) and speaks wire.ts's JSON lines on stdin and stdout. It ends when its
 * stdin closes, so it never outlives the daemon that started it.
 *
 * Usage: node probe-worker.js [--flush-ms N] [--max-in-flight N]
 */
import * as readline from 'node:readline';
import { LocalProbeEngine } from './engine.js';
import type { DownMessage, PackedProbe, UpMessage } from './wire.js';
import type { ProbeResult } from './health.js';

function flag(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  const v = i < 0 ? NaN : Number(process.argv[i + 1]);
  return Number.isSafeInteger(v) && v > 0 ? v : dflt;
}

const flushMs = flag('--flush-ms', 1000);
const maxInFlight = flag('--max-in-flight', 2048);
const pack = (id: number, r: ProbeResult): PackedProbe =>
  r.error === undefined ? [id, r.atMs, r.ok ? 1 : 0, Math.round(r.latencyMs * 1000) / 1000] : [id, r.atMs, r.ok ? 1 : 0, Math.round(r.latencyMs * 1000) / 1000, r.error];

const send = (m: UpMessage): void => {
  process.stdout.write(`${JSON.stringify(m)}\n`);
};

/** Last results since the last batch, by target (a later probe replaces an earlier one). */
let pending = new Map<number, PackedProbe>();
const engine = new LocalProbeEngine({
  handlers: {
    transition: (id, state, failures, last) => send({ t: 'transition', id, state, failures, last: pack(id, last) }),
    probe: (id, r) => pending.set(id, pack(id, r)),
  },
  scheduler: { maxInFlight },
});

const timer = setInterval(() => {
  const probes = [...pending.values()];
  pending = new Map();
  send({ t: 'batch', probes, tallies: engine.tallies(), inFlight: engine.scheduler.inFlight, waiting: engine.scheduler.waiting });
}, flushMs);

const stop = (): void => {
  clearInterval(timer);
  engine.close();
  process.exit(0);
};

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  let m: DownMessage;
  try {
    m = JSON.parse(line) as DownMessage;
  } catch {
    process.stderr.write(`probe worker: not a message: ${line.slice(0, 200)}\n`);
    return;
  }
  if (m.op === 'set') engine.set(m.id, m.spec, m.state);
  else if (m.op === 'remove') engine.remove(m.id);
});
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.on('SIGTERM', stop);
process.stdout.on('error', stop);
send({ t: 'ready' });
