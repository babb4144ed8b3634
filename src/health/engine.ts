/**
 * The probing side of health checks, behind one interface so that the
 * checker (checker.ts) drives it the same way in this process
 * (LocalProbeEngine) or in a child inside another network namespace
 * (probe-host.ts): targets are set and removed by id; the engine probes
 * each on its schedule, keeps its rise/fall state, and reports every state
 * change at once and each probe's result.
 */
import { INITIAL_CHECK_STATE, nextCheckState, type CheckState } from './check-state.js';
import { PROBE_DURATION_BUCKETS_S, type HealthCheckType, type HealthState, type ProbeResult, type ProbeTally, type ProbeWorkerState } from './health.js';
import { Prober, type ProbeSpec } from './probes.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';

/** A target as the engine gets it: what to probe, how often, and the thresholds. */
export interface TargetSpec extends ProbeSpec {
  intervalMs: number;
  rise: number;
  fall: number;
}

/** What an engine reports. */
export interface EngineHandlers {
  /** A target's state changed (unknown → healthy, healthy → unhealthy, ...); `last` is the probe that changed it. */
  transition(id: number, state: Exclude<HealthState, 'unchecked'>, failures: number, last: ProbeResult): void;
  /** A target was probed (the transition, if any, comes first). */
  probe(id: number, result: ProbeResult): void;
}

/** Where probes run. */
export interface ProbeEngine {
  /** Probe `id` as `spec` says (replacing what it was; its state stays). */
  set(id: number, spec: TargetSpec): void;
  remove(id: number): void;
  /** Probe counts and durations since the engine started. */
  tallies(): ProbeTally[];
  /** Where probes run in a worker process: its state once one was started. */
  worker?(): ProbeWorkerState | undefined;
  close(): void;
}

/** Counts and duration histograms by (type, result), without a label per target. */
export class Tallies {
  readonly #byKey = new Map<string, ProbeTally>();

  add(type: HealthCheckType, ok: boolean, latencyMs: number): void {
    const result = ok ? 'success' : 'failure';
    const k = `${type}/${result}`;
    let t = this.#byKey.get(k);
    if (!t) this.#byKey.set(k, (t = { type, result, count: 0, sumSeconds: 0, buckets: PROBE_DURATION_BUCKETS_S.map(() => 0) }));
    const s = latencyMs / 1000;
    t.count++;
    t.sumSeconds += s;
    for (let i = PROBE_DURATION_BUCKETS_S.length - 1; i >= 0 && s <= PROBE_DURATION_BUCKETS_S[i]!; i--) t.buckets[i]!++;
  }

  list(): ProbeTally[] {
    return [...this.#byKey.values()].map((t) => ({ ...t, buckets: [...t.buckets] }));
  }
}

interface Target {
  spec: TargetSpec;
  state: CheckState;
}

/** Options of a LocalProbeEngine. */
export interface LocalEngineOptions {
  handlers: EngineHandlers;
  prober?: Prober;
  /** Wall clock, ms since the epoch (default Date.now): probe times. */
  now?: () => number;
  /** The scheduler's clock, timers, rng, tick and cap. */
  scheduler?: Omit<SchedulerOptions<number>, 'run'>;
}

/** Probes from this process. */
export class LocalProbeEngine implements ProbeEngine {
  readonly #targets = new Map<number, Target>();
  readonly #handlers: EngineHandlers;
  readonly #prober: Prober;
  readonly #now: () => number;
  readonly #scheduler: Scheduler<number>;
  readonly #tallies = new Tallies();

  constructor(o: LocalEngineOptions) {
    this.#handlers = o.handlers;
    this.#prober = o.prober ?? new Prober();
    this.#now = o.now ?? Date.now;
    this.#scheduler = new Scheduler<number>({ ...o.scheduler, run: (_key, id) => this.#probe(id) });
  }

  /** The scheduler, for its figures. */
  get scheduler(): Scheduler<number> {
    return this.#scheduler;
  }

  /** As ProbeEngine.set; a new target starts at `state` (the verdict it had in an earlier worker) rather than unknown. */
  set(id: number, spec: TargetSpec, state?: 'healthy' | 'unhealthy'): void {
    const t = this.#targets.get(id);
    if (t) t.spec = spec;
    else this.#targets.set(id, { spec, state: state ? { ...INITIAL_CHECK_STATE, state } : INITIAL_CHECK_STATE });
    this.#scheduler.add(String(id), spec.intervalMs, id);
  }

  remove(id: number): void {
    if (!this.#targets.delete(id)) return;
    this.#scheduler.remove(String(id));
    this.#prober.forget(String(id));
  }

  tallies(): ProbeTally[] {
    return this.#tallies.list();
  }

  close(): void {
    this.#scheduler.close();
    this.#prober.close();
    this.#targets.clear();
  }

  async #probe(id: number): Promise<void> {
    const t = this.#targets.get(id);
    if (!t) return;
    const spec = t.spec;
    const out = await this.#prober.probe(String(id), spec);
    this.#tallies.add(spec.type, out.ok, out.latencyMs);
    // Removed (or replaced by another target) while the probe ran: its result is of nothing now.
    if (this.#targets.get(id) !== t) return;
    const result: ProbeResult = { atMs: this.#now(), ok: out.ok, latencyMs: out.latencyMs, ...(out.error !== undefined ? { error: out.error } : {}) };
    const next = nextCheckState(t.state, out.ok, spec.rise, spec.fall);
    const changed = next.state !== t.state.state;
    t.state = next;
    if (changed) this.#handlers.transition(id, next.state, next.failures, result);
    this.#handlers.probe(id, result);
  }
}
