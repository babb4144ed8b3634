/**
 * The programmatic API: define services and backends, and sluice writes the
 * maps. Writes are ordered so that a packet never sees a half-built service:
 * backends first, then the complete Maglev table swapped in at once, then the
 * service entry and its VIP; stale backends and tables go last.
 */
import type { Dataplane } from '../dataplane/dataplane.js';
import type { FrontendIds } from '../store/store.js';
import {
  BACKEND_FLAG_DRAINING,
  SVC_FLAG_AFFINITY,
  type LbStats,
  type ServiceKey,
} from '../dataplane/codec.js';
import { SluiceError } from '../errors.js';
import { buildMaglevTable, defaultTableSize } from '../maglev/maglev.js';
import {
  backendIdentity,
  validateService,
  type BackendSpec,
  type ServiceSpec,
} from '../model/service.js';

/** What the load balancer holds for one service. */
interface Installed {
  spec: ServiceSpec;
  id: number;
  tableSize: number;
  /** backend identity -> backend id */
  backendIds: Map<string, number>;
}

/** Counters of one backend of a service. */
export interface BackendStats extends LbStats {
  address: string;
  port: number;
  id: number;
  state: 'active' | 'draining';
}

/** Counters of one service and its backends. */
export interface ServiceStats extends LbStats {
  name: string;
  id: number;
  backends: BackendStats[];
}

/** Options of the LoadBalancer. */
export interface LoadBalancerOptions {
  /** Largest service id (exclusive); defaults to the dataplane's capacity. */
  maxServices?: number;
  /** Largest backend id (exclusive). */
  maxBackends?: number;
}

/** Allocates ids, skipping those in use, without reusing an id right away. */
class IdAllocator {
  private next = 1;
  private readonly used = new Set<number>();
  constructor(private readonly limit: number) {}

  reserve(id: number): void {
    this.used.add(id);
    if (id >= this.next) this.next = id + 1;
  }

  allocate(what: string): number {
    for (let tries = 0; tries < this.limit; tries++) {
      if (this.next >= this.limit) this.next = 1;
      const id = this.next++;
      if (!this.used.has(id)) {
        this.used.add(id);
        return id;
      }
    }
    throw new SluiceError('RESOURCE_EXHAUSTED', `no free ${what} id (limit ${this.limit - 1})`);
  }

  release(id: number): void {
    this.used.delete(id);
  }
}

function keyOf(spec: ServiceSpec): ServiceKey {
  return { address: spec.address, port: spec.port, protocol: spec.protocol };
}

function keyString(k: ServiceKey): string {
  return `${k.address}:${k.port}/${k.protocol}`;
}

function isActive(b: BackendSpec): boolean {
  return (b.state ?? 'active') === 'active' && (b.weight ?? 1) > 0;
}

/** Services and backends over a Dataplane. */
export class LoadBalancer {
  private readonly installed = new Map<string, Installed>();
  private readonly byKey = new Map<string, string>();
  private readonly svcIds: IdAllocator;
  private readonly backendIds: IdAllocator;
  /** Serialises applies: each one sees the state the previous one left. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly dataplane: Dataplane,
    opts: LoadBalancerOptions = {},
  ) {
    this.svcIds = new IdAllocator(opts.maxServices ?? 65536);
    this.backendIds = new IdAllocator(opts.maxBackends ?? 131072);
    // Ids already in the maps (an adopted dataplane) are not handed out again.
    for (const { value } of dataplane.listServices()) this.svcIds.reserve(value.id);
    for (const id of dataplane.listBackends().keys()) this.backendIds.reserve(id);
  }

  /** Create or update a service. Resolves when the dataplane holds it. */
  apply(spec: ServiceSpec): Promise<void> {
    return this.serialise(() => this.applyNow(structuredClone(spec)));
  }

  /**
   * Create or update several services (frontends). Validation of all of them
   * happens before anything is written: an invalid one rejects the whole
   * call and changes nothing.
   */
  applyMany(specs: readonly ServiceSpec[]): Promise<void> {
    return this.serialise(async () => {
      const copies = specs.map((s) => structuredClone(s));
      for (const s of copies) validateService(s);
      for (const s of copies) await this.applyNow(s);
    });
  }

  /** Delete a service. */
  delete(name: string): Promise<void> {
    return this.serialise(() => this.deleteNow(name));
  }

  /** Delete several services; names not present are ignored. */
  deleteMany(names: Iterable<string>): Promise<void> {
    const list = [...names];
    return this.serialise(async () => {
      for (const n of list) if (this.installed.has(n)) await this.deleteNow(n);
    });
  }

  /** The dataplane ids of some services (all if `names` is omitted), to persist them. */
  exportIds(names?: Iterable<string>): Map<string, FrontendIds> {
    const out = new Map<string, FrontendIds>();
    for (const n of names ?? this.installed.keys()) {
      const s = this.installed.get(n);
      if (s) out.set(n, { serviceId: s.id, backends: new Map(s.backendIds) });
    }
    return out;
  }

  /** Set one backend's state (drain it, or make it active again). */
  setBackendState(name: string, address: string, port: number, state: 'active' | 'draining'): Promise<void> {
    return this.serialise(async () => {
      const spec = this.requireService(name).spec;
      const b = spec.backends.find((x) => x.address === address && x.port === port);
      if (!b) throw new SluiceError('NOT_FOUND', `service ${name} has no backend ${address}:${port}`);
      const next = structuredClone(spec);
      next.backends.find((x) => x.address === address && x.port === port)!.state = state;
      await this.applyNow(next);
    });
  }

  /** Remove one backend: its flows are rescheduled to the others. */
  removeBackend(name: string, address: string, port: number): Promise<void> {
    return this.serialise(async () => {
      const next = structuredClone(this.requireService(name).spec);
      const before = next.backends.length;
      next.backends = next.backends.filter((x) => !(x.address === address && x.port === port));
      if (next.backends.length === before) {
        throw new SluiceError('NOT_FOUND', `service ${name} has no backend ${address}:${port}`);
      }
      await this.applyNow(next);
    });
  }

  /** The spec of a service, or undefined. */
  get(name: string): ServiceSpec | undefined {
    const s = this.installed.get(name);
    return s ? structuredClone(s.spec) : undefined;
  }

  /** Every service, by name. */
  list(): ServiceSpec[] {
    return [...this.installed.values()].map((s) => structuredClone(s.spec));
  }

  /** The dataplane id of a service and of each of its backends. */
  ids(name: string): { service: number; backends: Map<string, number> } {
    const s = this.requireService(name);
    return { service: s.id, backends: new Map(s.backendIds) };
  }

  /** Counters of a service and its backends, summed over CPUs. */
  stats(name: string): ServiceStats {
    const s = this.requireService(name);
    const backends = s.spec.backends.map((b): BackendStats => {
      const id = s.backendIds.get(backendIdentity(b))!;
      return { ...this.dataplane.backendStats(id), address: b.address, port: b.port, id, state: b.state ?? 'active' };
    });
    return { ...this.dataplane.serviceStats(s.id), name, id: s.id, backends };
  }

  private serialise<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private requireService(name: string): Installed {
    const s = this.installed.get(name);
    if (!s) throw new SluiceError('NOT_FOUND', `no service named ${JSON.stringify(name)}`);
    return s;
  }

  private async applyNow(spec: ServiceSpec): Promise<void> {
    validateService(spec);
    const key = keyOf(spec);
    const owner = this.byKey.get(keyString(key));
    if (owner !== undefined && owner !== spec.name) {
      throw new SluiceError('ALREADY_EXISTS', `${keyString(key)} belongs to service ${owner}`, { field: 'address' });
    }
    const prev = this.installed.get(spec.name);
    const tableSize = spec.tableSize ?? prev?.tableSize ?? defaultTableSize(Math.max(spec.backends.length, 1));
    const fitting = spec.tableSize ?? defaultTableSize(Math.max(spec.backends.length, 1));
    const size = Math.max(tableSize, fitting);

    // Allocate every id first: nothing is written if we run out.
    const newSvc = prev === undefined;
    const id = prev?.id ?? this.svcIds.allocate('service');
    const backendIds = new Map<string, number>();
    const fresh: number[] = [];
    try {
      for (const b of spec.backends) {
        const ident = backendIdentity(b);
        let bid = prev?.backendIds.get(ident);
        if (bid === undefined) {
          bid = this.backendIds.allocate('backend');
          fresh.push(bid);
        }
        backendIds.set(ident, bid);
      }
    } catch (err) {
      for (const bid of fresh) this.backendIds.release(bid);
      if (newSvc) this.svcIds.release(id);
      throw err;
    }

    // 1. Backends (new ones first get zeroed counters).
    for (const bid of fresh) this.dataplane.resetBackendStats(bid);
    if (newSvc) this.dataplane.resetServiceStats(id);
    for (const b of spec.backends) {
      this.dataplane.putBackend(backendIds.get(backendIdentity(b))!, {
        address: b.address,
        port: b.port,
        flags: isActive(b) ? 0 : BACKEND_FLAG_DRAINING,
      });
    }

    // 2. The Maglev table, complete, swapped in at once.
    const table = buildMaglevTable(
      spec.backends.filter(isActive).map((b) => ({
        id: backendIds.get(backendIdentity(b))!,
        identity: backendIdentity(b),
        weight: b.weight ?? 1,
      })),
      size,
    );
    if (table.length > 0) await this.dataplane.setMaglevTable(id, table);

    // 3. The service entry and its VIP.
    this.dataplane.putService(key, {
      id,
      flags: spec.sessionAffinity ? SVC_FLAG_AFFINITY : 0,
      affinityTimeoutSec: spec.sessionAffinity?.timeoutSeconds ?? 0,
      tableSize: size,
    });
    this.byKey.set(keyString(key), spec.name);
    this.installed.set(spec.name, { spec, id, tableSize: size, backendIds });
    this.syncVip(spec.address);

    // 4. Stale parts last: an old key, an empty table, removed backends.
    if (prev) {
      const oldKey = keyOf(prev.spec);
      if (keyString(oldKey) !== keyString(key)) {
        this.dataplane.deleteService(oldKey);
        this.byKey.delete(keyString(oldKey));
        this.syncVip(oldKey.address);
      }
      for (const [ident, bid] of prev.backendIds) {
        if (!backendIds.has(ident)) {
          this.dataplane.deleteBackend(bid);
          this.backendIds.release(bid);
        }
      }
    }
    if (table.length === 0) this.dataplane.deleteMaglevTable(id);
  }

  private async deleteNow(name: string): Promise<void> {
    const s = this.requireService(name);
    const key = keyOf(s.spec);
    // Stop new traffic first, then take the parts away.
    this.dataplane.deleteService(key);
    this.byKey.delete(keyString(key));
    this.installed.delete(name);
    this.syncVip(key.address);
    this.dataplane.deleteMaglevTable(s.id);
    for (const bid of s.backendIds.values()) {
      this.dataplane.deleteBackend(bid);
      this.backendIds.release(bid);
    }
    this.svcIds.release(s.id);
    await Promise.resolve();
  }

  /** Keep the VIP set equal to the addresses that carry a service. */
  private syncVip(address: string): void {
    let n = 0;
    for (const s of this.installed.values()) if (s.spec.address === address) n++;
    if (n > 0) this.dataplane.putVip(address, n);
    else this.dataplane.deleteVip(address);
  }
}
