/**
 * The health checker: follows the catalog's view, turns every backend of a
 * service with a health check (except those in admin maintenance, which
 * are not probed) into a probe target, deduplicated so that services
 * sharing a backend and an identical probe share it, hands the targets to
 * a probe engine, and writes each verdict to the node's overlay:
 * unhealthy → draining (onUnhealthy keep-connections) or maintenance
 * (reset); healthy or unknown → nothing (the catalog's state holds). It is
 * the node's HealthReader.
 *
 * A target is what is probed (type, address, port, path, host, status
 * range, gRPC service); interval, timeout, rise and fall are its settings,
 * changed in place, and onUnhealthy only chooses the overlay entry. So an
 * edit of those keeps every verdict: a backend known to be dead stays out
 * rather than counting as up again until `fall` new failures. Services
 * that share a target share its verdict, with the settings of the first
 * of them by name.
 */
import type { Logger } from 'pino';
import type { CatalogView, ViewChange } from '../catalog/view.js';
import { healthCheckPort, type ServiceDefinition } from '../model/definition.js';
import { hostPort } from '../model/address.js';
import type { EngineHandlers, ProbeEngine, TargetSpec } from './engine.js';
import type { BackendHealth, HealthReader, HealthState, ProbeResult, ProbeTally, ProbeWorkerState } from './health.js';

/** Where the checker writes its verdicts (node/'s RuntimeOverlay fits it). */
export interface HealthOverlay {
  set(service: string, address: string, state: 'draining' | 'maintenance', reason: string): void;
  clear(service: string, address: string): unknown;
}

/** Options of a HealthChecker. */
export interface HealthCheckerOptions {
  view: CatalogView;
  overlay: HealthOverlay;
  /** Makes the engine the checker drives, given the handlers it reports to. */
  engine: (handlers: EngineHandlers) => ProbeEngine;
  logger?: Logger;
}

interface Target {
  id: number;
  key: string;
  /** The settings in force: those of the first user by name. */
  spec: TargetSpec;
  /** What each backend it stands for ("service\0address") asks for. */
  users: Map<string, TargetSpec>;
  state: Exclude<HealthState, 'unchecked'>;
  /** Failures in a row at the last transition (for the overlay's reason). */
  failures?: number;
  lastProbe?: ProbeResult;
}

interface Use {
  target: Target;
  /** What an unhealthy verdict lays over the backend. */
  overlay: 'draining' | 'maintenance';
}

const SEP = '\0';

/** The dedup key of a target: what the probe does, not how often or how its results count. */
function targetKey(s: TargetSpec): string {
  return [s.type, s.address, s.port, s.path ?? '', s.host ?? '', s.expectedStatus?.min ?? '', s.expectedStatus?.max ?? '', s.grpcService ?? ''].join(SEP);
}

/** Whether two specs of one target differ in their settings. */
function sameSettings(a: TargetSpec, b: TargetSpec): boolean {
  return a.intervalMs === b.intervalMs && a.timeoutMs === b.timeoutMs && a.rise === b.rise && a.fall === b.fall;
}

/** The targets of one service's backends, by backend address. */
function targetsOf(d: ServiceDefinition): Map<string, TargetSpec> {
  const out = new Map<string, TargetSpec>();
  const h = d.healthCheck;
  if (!h) return out;
  const port = healthCheckPort(d);
  for (const b of d.backends) {
    if (b.state === 'maintenance') continue;
    const spec: TargetSpec = { type: h.type, address: b.address, port, timeoutMs: h.timeoutMs, intervalMs: h.intervalMs, rise: h.rise, fall: h.fall };
    if (h.path !== undefined) spec.path = h.path;
    if (h.host !== undefined) spec.host = h.host;
    if (h.expectedStatus) spec.expectedStatus = h.expectedStatus;
    if (h.grpcService !== undefined) spec.grpcService = h.grpcService;
    out.set(b.address, spec);
  }
  return out;
}

/** Checks backends' health and lays the verdicts over the catalog. */
export class HealthChecker implements HealthReader {
  readonly #view: CatalogView;
  readonly #overlay: HealthOverlay;
  readonly #log: Logger | undefined;
  readonly #engine: ProbeEngine;
  readonly #targets = new Map<string, Target>();
  readonly #byId = new Map<number, Target>();
  /** Per service, per backend address: its target and what unhealthy means for it. */
  readonly #uses = new Map<string, Map<string, Use>>();
  readonly #subs = new Set<(service: string) => void>();
  #nextId = 1;
  #unsubscribe: (() => void) | undefined;

  constructor(o: HealthCheckerOptions) {
    this.#view = o.view;
    this.#overlay = o.overlay;
    this.#log = o.logger;
    this.#engine = o.engine({
      transition: (id, state, failures, last) => this.#transition(id, state, failures, last),
      probe: (id, result) => {
        const t = this.#byId.get(id);
        if (t) t.lastProbe = result;
      },
    });
  }

  /** Follow the view: check what it holds now and every change. */
  start(): void {
    if (this.#unsubscribe) return;
    this.#unsubscribe = this.#view.subscribe((changes: ViewChange[]) => {
      for (const c of changes) this.#sync(c.name, c.type === 'PUT' ? c.service.definition : undefined);
    });
    for (const name of this.#view.names()) this.#sync(name, this.#view.get(name)?.definition);
  }

  /** Stop probing; the overlay entries written stay with the overlay's owner. */
  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#engine.close();
  }

  /** Targets probed (after deduplication). */
  get targets(): number {
    return this.#targets.size;
  }

  get(service: string, address: string): BackendHealth | undefined {
    const use = this.#uses.get(service)?.get(address);
    if (use) return { state: use.target.state, ...(use.target.lastProbe ? { lastProbe: use.target.lastProbe } : {}) };
    const def = this.#view.get(service)?.definition;
    if (!def?.healthCheck) return undefined;
    return def.backends.some((b) => b.address === address) ? { state: 'unchecked' } : undefined;
  }

  subscribe(fn: (service: string) => void): () => void {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }

  probeTallies(): ProbeTally[] {
    return this.#engine.tallies();
  }

  probeWorker(): ProbeWorkerState | undefined {
    return this.#engine.worker?.();
  }

  /** Bring one service's targets in line with its definition (undefined: it is gone). */
  #sync(service: string, def: ServiceDefinition | undefined): void {
    const want = def ? targetsOf(def) : new Map<string, TargetSpec>();
    const overlayState = def?.healthCheck?.onUnhealthy === 'reset' ? 'maintenance' : 'draining';
    let uses = this.#uses.get(service);
    let changed = false;
    if (uses) {
      for (const [address, use] of uses) {
        const spec = want.get(address);
        const t = use.target;
        if (!spec || targetKey(spec) !== t.key) {
          this.#release(service, address, use);
          uses.delete(address);
          changed = true;
          continue;
        }
        const user = service + SEP + address;
        if (!sameSettings(t.users.get(user)!, spec)) {
          t.users.set(user, spec);
          this.#retune(t);
        }
        if (use.overlay !== overlayState) {
          use.overlay = overlayState;
          if (t.state === 'unhealthy') this.#overlay.set(service, address, overlayState, this.#reason(t, t.lastProbe));
          changed = true;
        }
      }
    }
    for (const [address, spec] of want) {
      if (uses?.has(address)) continue;
      if (!uses) this.#uses.set(service, (uses = new Map()));
      const use: Use = { target: this.#acquire(service, address, spec), overlay: overlayState };
      uses.set(address, use);
      changed = true;
      if (use.target.state === 'unhealthy') this.#overlay.set(service, address, use.overlay, this.#reason(use.target, use.target.lastProbe));
    }
    if (uses?.size === 0) this.#uses.delete(service);
    if (changed) this.#notify(service);
  }

  #acquire(service: string, address: string, spec: TargetSpec): Target {
    const key = targetKey(spec);
    let t = this.#targets.get(key);
    if (!t) {
      t = { id: this.#nextId++, key, spec, users: new Map([[service + SEP + address, spec]]), state: 'unknown' };
      this.#targets.set(key, t);
      this.#byId.set(t.id, t);
      this.#engine.set(t.id, spec);
      return t;
    }
    t.users.set(service + SEP + address, spec);
    this.#retune(t);
    return t;
  }

  /** Give the engine the target's settings when its first user's changed; its state stays. */
  #retune(t: Target): void {
    let first: string | undefined;
    for (const user of t.users.keys()) if (first === undefined || user < first) first = user;
    const spec = t.users.get(first!)!;
    if (sameSettings(spec, t.spec)) return;
    t.spec = spec;
    this.#engine.set(t.id, spec);
  }

  #release(service: string, address: string, use: Use): void {
    const t = use.target;
    t.users.delete(service + SEP + address);
    if (t.state === 'unhealthy') this.#overlay.clear(service, address);
    if (t.users.size > 0) {
      this.#retune(t);
      return;
    }
    this.#targets.delete(t.key);
    this.#byId.delete(t.id);
    this.#engine.remove(t.id);
  }

  #reason(t: Target, last: ProbeResult | undefined, failures = t.failures ?? t.spec.fall): string {
    return `health: ${failures} check${failures === 1 ? '' : 's'} failed${last?.error ? `: ${last.error}` : ''}`;
  }

  #transition(id: number, state: Exclude<HealthState, 'unchecked'>, failures: number, last: ProbeResult): void {
    const t = this.#byId.get(id);
    if (!t) return;
    const was = t.state;
    t.state = state;
    t.failures = failures;
    t.lastProbe = last;
    const services = new Set<string>();
    for (const user of t.users.keys()) {
      const i = user.indexOf(SEP);
      const service = user.slice(0, i);
      const address = user.slice(i + 1);
      const use = this.#uses.get(service)?.get(address);
      if (!use) continue;
      if (state === 'unhealthy') this.#overlay.set(service, address, use.overlay, this.#reason(t, last, failures));
      else if (was === 'unhealthy') this.#overlay.clear(service, address);
      services.add(service);
    }
    this.#log?.info({ target: `${t.spec.type}://${hostPort(t.spec.address, t.spec.port)}${t.spec.path ?? ''}`, from: was, to: state, error: last.error, services: services.size }, 'health changed');
    for (const s of services) this.#notify(s);
  }

  #notify(service: string): void {
    for (const fn of this.#subs) {
      try {
        fn(service);
      } catch (err) {
        this.#log?.error({ err }, 'a health subscriber failed');
      }
    }
  }
}
