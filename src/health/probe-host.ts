/**
 * A probe engine in a child process: the worker (probe-worker.ts) runs the
 * scheduler and the probes, speaking wire.ts's JSON lines, so that nothing
 * the daemon's event loop does (a long metrics scrape, a status snapshot)
 * delays a probe's connect callback into a false timeout. Given a network
 * namespace, the child is `nsenter --net=PATH node probe-worker.js`: probes
 * go out from where the backends are reachable (the namespace the daemon
 * attaches in), while the daemon stays where its API and store are.
 *
 * The worker starts with start() or at the first target, whichever comes
 * first, so a node that never checks (the kube-proxy mode) runs none. It
 * ends when its stdin closes, and close() kills it. If it dies it is
 * started again after 1 s, doubling to 30 s while it keeps dying, with
 * every target and the state each had: while it is down, verdicts stay
 * as they were.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { CheckState } from './check-state.js';
import type { EngineHandlers, ProbeEngine, TargetSpec } from './engine.js';
import type { ProbeResult, ProbeTally, ProbeWorkerState } from './health.js';
import type { DownMessage, PackedProbe, UpMessage } from './wire.js';

/** Options of a RemoteProbeEngine. */
export interface RemoteEngineOptions {
  handlers: EngineHandlers;
  /** The network namespace to probe from (a path such as /var/run/netns/lb); absent: the daemon's own. */
  netns?: string;
  logger?: Logger;
  /** How often the worker sends the last probes and the tallies, ms (default 1000). */
  flushMs?: number;
  /** Probes in flight at once at most (default 2,048). */
  maxInFlight?: number;
  /** The nsenter command (default: nsenter, found through PATH). */
  nsenter?: string;
  /** The first wait before starting a dead worker again, and the longest, ms (default 1000 and 30,000). */
  restartMs?: { initial: number; max: number };
}

/** A worker that lived this long is taken as healthy: the next restart waits the initial time again. */
const STABLE_MS = 60_000;

const unpack = (p: PackedProbe): ProbeResult => ({ atMs: p[1], ok: p[2] === 1, latencyMs: p[3], ...(p[4] !== undefined ? { error: p[4] } : {}) });

/** The worker script and the node flags that run it (under tsx, the .ts source). */
function workerCommand(): string[] {
  const here = fileURLToPath(import.meta.url);
  const script = here.replace(/probe-host\.(ts|js)$/, 'probe-worker.$1');
  return here.endsWith('.ts') ? ['--import', 'tsx', script] : [script];
}

/** The sums of two lists of tallies, by (type, result). */
function addTallies(a: readonly ProbeTally[], b: readonly ProbeTally[]): ProbeTally[] {
  const out = new Map<string, ProbeTally>();
  for (const t of [...a, ...b]) {
    const k = `${t.type}/${t.result}`;
    const have = out.get(k);
    if (!have) out.set(k, { ...t, buckets: [...t.buckets] });
    else {
      have.count += t.count;
      have.sumSeconds += t.sumSeconds;
      t.buckets.forEach((n, i) => (have.buckets[i] = (have.buckets[i] ?? 0) + n));
    }
  }
  return [...out.values()];
}

/** Why a worker could not start: what it or nsenter said, or the spawn error. */
export class ProbeWorkerError extends Error {
  constructor(message: string, readonly stderr: string) {
    super(message);
    this.name = 'ProbeWorkerError';
  }
}

/** Probes from a child process, in another network namespace or in this one. */
export class RemoteProbeEngine implements ProbeEngine {
  readonly #o: RemoteEngineOptions;
  readonly #targets = new Map<number, TargetSpec>();
  /** Each target's state as the worker last reported it, handed to a restarted worker. */
  readonly #states = new Map<number, CheckState['state']>();
  #child: ChildProcess | undefined;
  #tallies: ProbeTally[] = [];
  /** The tallies of workers that ended, so that the counts never go back. */
  #ended: ProbeTally[] = [];
  #closed = false;
  #spawned = false;
  #restart: NodeJS.Timeout | undefined;
  #delayMs: number;
  /** Settled by the running worker's first "ready" or by its end. */
  #ready: Promise<void> | undefined;
  /** The worker's figures at its last batch. */
  inFlight = 0;
  waiting = 0;
  /** Workers started again after one ended. */
  restarts = 0;

  constructor(o: RemoteEngineOptions) {
    this.#o = o;
    this.#delayMs = o.restartMs?.initial ?? 1000;
  }

  /** The worker's process id (for its CPU time), while it runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Whether a worker is running (false while it waits to be started again). */
  get running(): boolean {
    return this.#child !== undefined;
  }

  /**
   * Start the worker now and settle when it is ready; reject with a
   * ProbeWorkerError carrying what nsenter or node said if it ends first
   * (a path that is not a network namespace, no nsenter).
   */
  async start(timeoutMs = 30_000): Promise<void> {
    if (this.#closed) throw new ProbeWorkerError('the probe engine is closed', '');
    if (!this.#child && this.#restart === undefined) this.#spawn();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ProbeWorkerError(`the probe worker did not say it was ready within ${timeoutMs} ms`, '')), timeoutMs);
    });
    try {
      await Promise.race([this.#ready, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  set(id: number, spec: TargetSpec): void {
    this.#targets.set(id, spec);
    if (!this.#child && this.#restart === undefined && !this.#closed) this.#spawn();
    else this.#send({ op: 'set', id, spec });
  }

  remove(id: number): void {
    this.#states.delete(id);
    if (this.#targets.delete(id)) this.#send({ op: 'remove', id });
  }

  tallies(): ProbeTally[] {
    return this.#ended.length === 0 ? this.#tallies : addTallies(this.#ended, this.#tallies);
  }

  worker(): ProbeWorkerState | undefined {
    return this.#spawned ? { up: this.running, restarts: this.restarts } : undefined;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#restart);
    this.#restart = undefined;
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
    const node = [process.execPath, ...workerCommand(), '--flush-ms', String(this.#o.flushMs ?? 1000), '--max-in-flight', String(this.#o.maxInFlight ?? 2048)];
    const [cmd, ...args] = this.#o.netns !== undefined ? [this.#o.nsenter ?? 'nsenter', `--net=${this.#o.netns}`, ...node] : node;
    // Its own process group: a Ctrl-C meant for a foreground daemon is not
    // the worker's (it ends when the daemon closes its stdin).
    const child = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    this.#spawned = true;
    const began = Date.now();
    this.#child = child;
    let stderr = '';
    let spawnError: Error | undefined;
    let settle: ((err?: Error) => void) | undefined;
    this.#ready = new Promise<void>((resolve, reject) => {
      settle = (err) => {
        settle = undefined;
        if (err) reject(err);
        else resolve();
      };
    });
    // A start() nobody awaits must not be an unhandled rejection.
    this.#ready.catch(() => undefined);
    child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)));
    child.stdin!.on('error', () => {});
    child.on('error', (err) => (spawnError = err));
    readline.createInterface({ input: child.stdout! }).on('line', (line) => this.#receive(line, () => settle?.()));
    // 'close', not 'exit': a command that cannot be spawned (no nsenter)
    // emits 'error' and 'close' but never 'exit'.
    child.on('close', (code, signal) => {
      const said = stderr.trim();
      const why = spawnError
        ? `${cmd} could not be started: ${(spawnError as NodeJS.ErrnoException).code === 'ENOENT' ? `${cmd}: not found` : spawnError.message}`
        : said || `the probe worker ended (${signal ?? `exit code ${code}`})`;
      settle?.(new ProbeWorkerError(why, said));
      if (this.#closed || this.#child !== child) return;
      this.#child = undefined;
      this.#ended = addTallies(this.#ended, this.#tallies);
      this.#tallies = [];
      const initial = this.#o.restartMs?.initial ?? 1000;
      if (Date.now() - began >= STABLE_MS) this.#delayMs = initial;
      const delay = this.#delayMs;
      this.#delayMs = Math.min(this.#delayMs * 2, this.#o.restartMs?.max ?? 30_000);
      this.#o.logger?.warn({ code, signal, error: why, restartInMs: delay, targets: this.#targets.size }, 'the probe worker ended: verdicts stay as they were until it is started again');
      this.#restart = setTimeout(() => {
        this.#restart = undefined;
        this.restarts++;
        this.#spawn();
      }, delay);
      this.#restart.unref();
    });
    for (const [id, spec] of this.#targets) {
      const state = this.#states.get(id);
      this.#send(state === 'healthy' || state === 'unhealthy' ? { op: 'set', id, spec, state } : { op: 'set', id, spec });
    }
  }

  #receive(line: string, ready: () => void): void {
    let m: UpMessage;
    try {
      m = JSON.parse(line) as UpMessage;
    } catch {
      this.#o.logger?.warn({ line: line.slice(0, 200) }, 'the probe worker said something unreadable');
      return;
    }
    if (m.t === 'ready') ready();
    else if (m.t === 'transition') {
      if (!this.#targets.has(m.id)) return;
      this.#states.set(m.id, m.state);
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
