/**
 * A probe engine in a child process inside a network namespace: probes go
 * out from where the backends are reachable (the namespace the daemon
 * attaches in), while the daemon stays where its API and store are. The
 * child is `nsenter --net=PATH node probe-worker.js`, speaking wire.ts's
 * JSON lines; it ends when its stdin closes, and close() kills it. If it
 * dies it is started again after a second with every target, which start
 * over as unknown (counted as up) without changing a verdict until `rise`
 * or `fall` results say so.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { EngineHandlers, ProbeEngine, TargetSpec } from './engine.js';
import type { ProbeResult, ProbeTally } from './health.js';
import type { DownMessage, PackedProbe, UpMessage } from './wire.js';

/** Options of a RemoteProbeEngine. */
export interface RemoteEngineOptions {
  handlers: EngineHandlers;
  /** The network namespace to probe from (a path such as /var/run/netns/lb). */
  netns: string;
  logger?: Logger;
  /** How often the worker sends the last probes and the tallies, ms (default 1000). */
  flushMs?: number;
  /** Probes in flight at once at most (default 2,048). */
  maxInFlight?: number;
}

const unpack = (p: PackedProbe): ProbeResult => ({ atMs: p[1], ok: p[2] === 1, latencyMs: p[3], ...(p[4] !== undefined ? { error: p[4] } : {}) });

/** The worker script and the node flags that run it (under tsx, the .ts source). */
function workerCommand(): string[] {
  const here = fileURLToPath(import.meta.url);
  const script = here.replace(/probe-host\.(ts|js)$/, 'probe-worker.$1');
  return here.endsWith('.ts') ? ['--import', 'tsx', script] : [script];
}

/** Probes from a child process in another network namespace. */
export class RemoteProbeEngine implements ProbeEngine {
  readonly #o: RemoteEngineOptions;
  readonly #targets = new Map<number, TargetSpec>();
  #child: ChildProcess | undefined;
  #tallies: ProbeTally[] = [];
  #closed = false;
  #restart: NodeJS.Timeout | undefined;
  /** The worker's figures at its last batch. */
  inFlight = 0;
  waiting = 0;

  constructor(o: RemoteEngineOptions) {
    this.#o = o;
    this.#spawn();
  }

  /** The worker's process id (for its CPU time). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  set(id: number, spec: TargetSpec): void {
    this.#targets.set(id, spec);
    this.#send({ op: 'set', id, spec });
  }

  remove(id: number): void {
    if (this.#targets.delete(id)) this.#send({ op: 'remove', id });
  }

  tallies(): ProbeTally[] {
    return this.#tallies;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#restart);
    const c = this.#child;
    this.#child = undefined;
    if (c && c.exitCode === null && c.signalCode === null) {
      c.stdin?.end();
      c.kill('SIGTERM');
    }
  }

  #send(m: DownMessage): void {
    const c = this.#child;
    if (!c?.stdin?.writable) return;
    c.stdin.write(`${JSON.stringify(m)}\n`);
  }

  #spawn(): void {
    const args = [`--net=${this.#o.netns}`, process.execPath, ...workerCommand(), '--flush-ms', String(this.#o.flushMs ?? 1000), '--max-in-flight', String(this.#o.maxInFlight ?? 2048)];
    const child = spawn('nsenter', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child = child;
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)));
    child.stdin!.on('error', () => {});
    child.on('error', (err) => this.#o.logger?.error({ err }, 'the probe worker could not start'));
    readline.createInterface({ input: child.stdout! }).on('line', (line) => this.#receive(line));
    child.on('exit', (code, signal) => {
      if (this.#closed || this.#child !== child) return;
      this.#child = undefined;
      this.#o.logger?.warn({ code, signal, stderr: stderr.trim() }, 'the probe worker ended: started again');
      this.#restart = setTimeout(() => this.#spawn(), 1000);
      this.#restart.unref();
    });
    for (const [id, spec] of this.#targets) this.#send({ op: 'set', id, spec });
  }

  #receive(line: string): void {
    let m: UpMessage;
    try {
      m = JSON.parse(line) as UpMessage;
    } catch {
      this.#o.logger?.warn({ line: line.slice(0, 200) }, 'the probe worker said something unreadable');
      return;
    }
    if (m.t === 'transition') {
      if (!this.#targets.has(m.id)) return;
      const last = unpack(m.last);
      this.#o.handlers.transition(m.id, m.state, m.failures, last);
      this.#o.handlers.probe(m.id, last);
    } else if (m.t === 'batch') {
      for (const p of m.probes) if (this.#targets.has(p[0])) this.#o.handlers.probe(p[0], unpack(p));
      this.#tallies = m.tallies;
      this.inFlight = m.inFlight;
      this.waiting = m.waiting;
    }
  }
}
