/**
 * The programmatic API: define services (frontends: one VIP, port and
 * protocol each) and their backends; sluice keeps the maps equal to them.
 *
 * Each change renders the desired map contents of the services it touches,
 * asks the pure reconciler (src/reconciler/) for the smallest ordered set of
 * operations within that scope, and applies them. The order never exposes a
 * half-built service: backends first, then the complete Maglev table
 * swapped in at once, then the service entry and its VIP; stale entries go
 * last. A new LoadBalancer over a dataplane that already holds state (pinned
 * maps of an earlier run) adopts it: given the same ids, re-applying the same
 * services writes nothing, and conntrack is never flushed.
 */
import type { Dataplane } from '../dataplane/dataplane.js';
import {
  BACKEND_FLAG_DRAINING,
  SVC_FLAG_AFFINITY,
  SVC_FLAG_DROP_NO_BACKEND,
  endpointKey,
  type EndpointKey,
  type LbStats,
  type ServiceKey,
} from '../dataplane/codec.js';
import { SluiceError } from '../errors.js';
import { ApplyError, applyOperations, readState } from '../reconciler/apply.js';
import { digestTable, emptyState, keyString, reconcile, sameTable, type DataplaneState, type TableImage } from '../reconciler/reconcile.js';
import { RegionAllocator, type RegionAllocatorOptions } from './region-allocator.js';
import { buildMaglevTable, defaultTableSize } from '../maglev/maglev.js';
import {
  backendIdentity,
  validateService,
  type BackendSpec,
  type ServiceSpec,
} from '../model/service.js';
import { hostPort } from '../model/address.js';

/** Dataplane ids of one frontend: its service id and each backend's (identity "address:port" → id). */
export interface FrontendIds {
  serviceId: number;
  backends: Map<string, number>;
}

/**
 * What the load balancer holds for one service: its ids and table, not its
 * spec. The spec's contents are in `desired` already (the key in
 * desired.services, each backend's address and port in desired.backends),
 * so only what the maps do not say is kept here, and specOf() puts a spec
 * together when one is asked for. The caller's definitions are the one
 * full copy of desired state; this is an index over the maps.
 */
interface Installed {
  /** VIP, port and protocol (the same object as its desired.services entry's key). */
  key: ServiceKey;
  id: number;
  /** Size of its Maglev table: its explicit size, or the ladder step of its backend count. */
  tableSize: number;
  /** Whether the spec gave tableSize (else it follows the backend count). */
  explicitSize: boolean;
  /** Where its table is in maglev_slots (undefined: no usable backend, no
   * table); the table itself is desired.tables.get(tableBase). */
  tableBase: number | undefined;
  /** sessionAffinity.timeoutSeconds; undefined without affinity. */
  affinity: number | undefined;
  /** noBackends is drop (else reject, the default). */
  dropNoBackends: boolean;
  /** The id of each backend, in the order of spec.backends (not a Map by
   * identity: 10,000 services would hold 100,000 identity strings and
   * 10,000 small hash tables for it; idsByIdentity builds one when needed). */
  backendIds: number[];
  /** Each backend's weight and state (packMeta), in the same order;
   * undefined when every one is DEFAULT_META, as frontends of definitions are. */
  backendMeta: number[] | undefined;
}

/**
 * A backend's weight and state in one small integer, as given (a missing
 * weight or state stays missing): (weight + 1, or 0) × 4 + (1 active,
 * 2 draining, or 0).
 */
function packMeta(b: BackendSpec): number {
  const w = b.weight === undefined ? 0 : b.weight + 1;
  const st = b.state === undefined ? 0 : b.state === 'draining' ? 2 : 1;
  return w * 4 + st;
}

/** packMeta of weight 1, active: what every backend of an expanded definition has. */
const DEFAULT_META = 9;

/** Options of LoadBalancer.applyMany. */
export interface ApplyOptions {
  /**
   * The caller hands the specs over: it will not modify them while the
   * change waits its turn, so they are not copied (the syncer, which
   * builds fresh specs for every change, does).
   */
  handOver?: boolean;
  /**
   * The specs are frontends of definitions the caller checked with the
   * service schema (the registry's): they are not checked again.
   */
  validated?: boolean;
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
  /** Ids an earlier run gave to frontends (from the store), so they map to the same entries. */
  ids?: Map<string, FrontendIds>;
  /** Quarantine and clock of the Maglev table regions. */
  regions?: RegionAllocatorOptions;
  /** Largest service id; defaults to the dataplane's capacity (Dataplane.idCapacity). */
  maxServices?: number;
  /** Largest backend id; defaults to the dataplane's capacity. */
  maxBackends?: number;
}

/** Allocates ids, skipping those in use, without reusing an id right away. */
class IdAllocator {
  private next = 1;
  /** Ids handed out or reserved now. */
  private inUse = 0;
  /** Free ids when the current change began (see startChange). */
  private freeAtStart = 0;
  /** One byte per id below the limit (128 KiB for backends, where a Set of
   * 100,000 ids is megabytes); ids at or above it are never handed out. */
  private readonly used: Uint8Array;
  constructor(private readonly limit: number) {
    this.used = new Uint8Array(limit);
  }

  /** How the daemon raises this limit, for the error message. */
  flag = '';

  reserve(id: number): void {
    if (id < this.limit && this.used[id] === 0) {
      this.used[id] = 1;
      this.inUse++;
    }
    if (id >= this.next) this.next = id + 1;
  }

  /** Whether `id` is below the limit (an id restored from an earlier run with larger maps may not be). */
  fits(id: number): boolean {
    return id > 0 && id < this.limit;
  }

  /** Ids free now, and how many the limit allows in all. */
  room(): { free: number; total: number } {
    return { free: this.limit - 1 - this.inUse, total: this.limit - 1 };
  }

  /** Remember how many ids are free as a change begins, for the message if it runs out. */
  startChange(): void {
    this.freeAtStart = this.limit - 1 - this.inUse;
  }

  allocate(what: string): number {
    for (let tries = 0; tries < this.limit; tries++) {
      if (this.next >= this.limit) this.next = 1;
      const id = this.next++;
      if (this.used[id] === 0) {
        this.used[id] = 1;
        this.inUse++;
        return id;
      }
    }
    throw new SluiceError(
      'RESOURCE_EXHAUSTED',
      `no free ${what} id: this change needs more than the ${this.freeAtStart} that were free (${this.limit - 1} in all)${this.flag ? `; raise the daemon's ${this.flag}` : ''}`,
    );
  }

  release(id: number): void {
    if (id < this.limit && this.used[id] === 1) {
      this.used[id] = 0;
      this.inUse--;
    }
  }
}

function keyOf(spec: ServiceSpec): ServiceKey {
  return { address: spec.address, port: spec.port, protocol: spec.protocol };
}


function isActive(b: BackendSpec): boolean {
  return (b.state ?? 'active') === 'active' && (b.weight ?? 1) > 0;
}

/** Services and backends over a Dataplane. */
export class LoadBalancer {
  private readonly installed = new Map<string, Installed>();
  /** dataplane service id -> service name (with desired.services, the owner of each key: ownerOf) */
  private readonly names = new Map<number, string>();
  private readonly svcIds: IdAllocator;
  private readonly backendIds: IdAllocator;
  /** Ids given by name (options.ids), used when those frontends are applied. */
  private readonly restored: Map<string, FrontendIds>;
  /**
   * Ids the maps hold, by frontend key ("VIP:port/protocol"): what an
   * earlier run of this node gave. A frontend applied again takes them back,
   * so that the flows in conntrack keep their backends; nothing about ids
   * needs to be stored anywhere else.
   */
  private readonly inMaps = new Map<string, FrontendIds>();
  /** What the maps should hold, for every installed service. */
  private readonly desired: DataplaneState = emptyState();
  /**
   * The backend ids of each endpoint that serves several service ports
   * (desired.replies holds 0 for it); an endpoint of one holds that one's id
   * in desired.replies, and is not here. Arrays are replaced, never changed
   * in place, so that an UndoLog can restore them.
   */
  private readonly sharedEndpoints = new Map<EndpointKey, readonly number[]>();
  /** What the maps hold (read at start, then kept by the applier). */
  private readonly current: DataplaneState;
  /** Regions of maglev_slots in use. */
  private readonly regions: RegionAllocator;
  /** Serialises changes: each one sees the state the previous one left. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly dataplane: Dataplane,
    opts: LoadBalancerOptions = {},
  ) {
    const room = dataplane.idCapacity();
    this.svcIds = new IdAllocator((opts.maxServices ?? room.services) + 1);
    this.svcIds.flag = '--max-frontends';
    this.backendIds = new IdAllocator((opts.maxBackends ?? room.backends) + 1);
    this.backendIds.flag = '--max-backends';
    this.restored = new Map(opts.ids ?? []);
    this.current = readState(dataplane);
    this.regions = new RegionAllocator(dataplane.tableCapacity(), opts.regions ?? {});
    for (const { value } of this.current.services.values()) {
      if (value.tableSize > 0 && this.current.tables.has(value.tableBase)) this.regions.reserve(value.tableBase, value.tableSize);
    }
    // Ids in the maps or promised to restored frontends are not handed out again.
    for (const { value } of this.current.services.values()) this.svcIds.reserve(value.id);
    for (const id of this.current.backends.keys()) this.backendIds.reserve(id);
    for (const ids of this.restored.values()) {
      this.svcIds.reserve(ids.serviceId);
      for (const id of ids.backends.values()) this.backendIds.reserve(id);
    }
    const byService = new Map<number, Map<string, number>>();
    for (const [id, b] of this.current.backends.entries()) {
      let m = byService.get(b.serviceId);
      if (!m) byService.set(b.serviceId, (m = new Map()));
      m.set(backendIdentity(b), id);
    }
    for (const [k, { value }] of this.current.services) {
      this.inMaps.set(k, { serviceId: value.id, backends: byService.get(value.id) ?? new Map() });
    }
  }

  /** Create or update a service. Resolves when the dataplane holds it. */
  apply(spec: ServiceSpec): Promise<void> {
    return this.applyMany([spec]);
  }

  /**
   * Create or update several services in one reconcile. Every one is
   * validated before anything is written: an invalid one rejects the whole
   * call and changes nothing.
   */
  applyMany(specs: readonly ServiceSpec[], opts: ApplyOptions = {}): Promise<void> {
    const held = opts.handOver === true ? [...specs] : specs.map(copySpec);
    return this.serialise(() => this.change(held, [], opts.validated === true));
  }

  /** Delete a service. */
  delete(name: string): Promise<void> {
    return this.serialise(async () => {
      this.requireService(name);
      await this.change([], [name]);
    });
  }

  /** Delete several services; names not present are ignored. */
  deleteMany(names: Iterable<string>): Promise<void> {
    const list = [...names];
    return this.serialise(() => this.change([], list.filter((n) => this.installed.has(n))));
  }

  /**
   * Make the maps hold exactly the installed services: remove whatever an
   * earlier run left that no service claims now. Call it once after
   * re-applying everything at start.
   */
  converge(): Promise<number> {
    return this.serialise(async () => {
      const ops = reconcile(this.desired, this.current);
      await applyOperations(this.dataplane, ops, this.current);
      this.regions.retainOnly(new Set(this.desired.tables.keys()));
      return ops.length;
    });
  }

  /** The dataplane ids of some services (all if `names` is omitted), to persist them. */
  exportIds(names?: Iterable<string>): Map<string, FrontendIds> {
    const out = new Map<string, FrontendIds>();
    for (const n of names ?? this.installed.keys()) {
      const s = this.installed.get(n);
      if (s) out.set(n, { serviceId: s.id, backends: this.idsByIdentity(s) });
    }
    return out;
  }

  /** Set one backend's state (drain it, or make it active again). */
  setBackendState(name: string, address: string, port: number, state: 'active' | 'draining'): Promise<void> {
    return this.serialise(async () => {
      const next = this.specOf(name, this.requireService(name));
      const b = next.backends.find((x) => x.address === address && x.port === port);
      if (!b) throw new SluiceError('NOT_FOUND', `service ${name} has no backend ${hostPort(address, port)}`);
      b.state = state;
      await this.change([next], []);
    });
  }

  /** Remove one backend: its flows are rescheduled to the others. */
  removeBackend(name: string, address: string, port: number): Promise<void> {
    return this.serialise(async () => {
      const next = this.specOf(name, this.requireService(name));
      const before = next.backends.length;
      next.backends = next.backends.filter((x) => !(x.address === address && x.port === port));
      if (next.backends.length === before) {
        throw new SluiceError('NOT_FOUND', `service ${name} has no backend ${hostPort(address, port)}`);
      }
      await this.change([next], []);
    });
  }

  /** The spec of a service (the caller's to keep), or undefined. */
  get(name: string): ServiceSpec | undefined {
    const s = this.installed.get(name);
    return s ? this.specOf(name, s) : undefined;
  }

  /** The spec of a service, for reading (as get: specs are put together from the maps' state when asked). */
  peek(name: string): Readonly<ServiceSpec> | undefined {
    return this.get(name);
  }

  /** Every service. */
  list(): ServiceSpec[] {
    return [...this.installed].map(([name, s]) => this.specOf(name, s));
  }

  /** What is free now: service ids, backend ids, table slots (used or in quarantine count as taken). */
  room(): { serviceIds: { free: number; total: number }; backendIds: { free: number; total: number }; slots: { free: number; total: number } } {
    return {
      serviceIds: this.svcIds.room(),
      backendIds: this.backendIds.room(),
      slots: { free: this.regions.capacity - this.regions.inUse(), total: this.regions.capacity },
    };
  }

  /** Slots of a service's Maglev table now: 0 without an active backend, undefined for no such service. */
  tableSizeOf(name: string): number | undefined {
    const s = this.installed.get(name);
    return s === undefined ? undefined : s.tableBase === undefined ? 0 : s.tableSize;
  }

  /** The dataplane id of a service, or undefined. */
  idOf(name: string): number | undefined {
    return this.installed.get(name)?.id;
  }

  /** The service that has this dataplane id, or undefined. */
  nameOf(serviceId: number): string | undefined {
    return this.names.get(serviceId);
  }

  /** The dataplane id of a service and of each of its backends. */
  ids(name: string): { service: number; backends: Map<string, number> } {
    const s = this.requireService(name);
    return { service: s.id, backends: this.idsByIdentity(s) };
  }

  /**
   * The dataplane ids of a frontend and of each backend (with its address),
   * in the spec's order, or undefined for no such frontend: what summing
   * its counters needs, without putting a spec together.
   */
  counterIds(name: string): { service: number; backends: Array<{ id: number; address: string }> } | undefined {
    const s = this.installed.get(name);
    if (!s) return undefined;
    return { service: s.id, backends: s.backendIds.map((id) => ({ id, address: this.desired.backends.get(id)!.address })) };
  }

  /**
   * A token of a frontend's ids as installed: the same object until the
   * frontend is installed again (any change gives it new ids or a new
   * object), undefined for no such frontend. What a caller derives from
   * counterIds stays right while the token does, without a copy per read.
   */
  idsToken(name: string): object | undefined {
    return this.installed.get(name);
  }

  /** Counters of a service and its backends, summed over CPUs. */
  stats(name: string): ServiceStats {
    const s = this.requireService(name);
    const backends = this.specOf(name, s).backends.map((b, i): BackendStats => {
      const id = s.backendIds[i]!;
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

  /** The spec an installed service was applied with, from what it and `desired` hold. */
  private specOf(name: string, s: Installed): ServiceSpec {
    const backends = s.backendIds.map((bid, i): BackendSpec => {
      const row = this.desired.backends.get(bid)!;
      const b: BackendSpec = { address: row.address, port: row.port };
      const meta = s.backendMeta?.[i] ?? DEFAULT_META;
      if (meta >= 4) b.weight = Math.floor(meta / 4) - 1;
      if ((meta & 3) !== 0) b.state = (meta & 3) === 2 ? 'draining' : 'active';
      return b;
    });
    const spec: ServiceSpec = { name, address: s.key.address, port: s.key.port, protocol: s.key.protocol, backends };
    if (s.affinity !== undefined) spec.sessionAffinity = { timeoutSeconds: s.affinity };
    if (s.explicitSize) spec.tableSize = s.tableSize;
    if (s.dropNoBackends) spec.noBackends = 'drop';
    return spec;
  }

  /** backend identity -> backend id, for one installed service. */
  private idsByIdentity(s: Installed): Map<string, number> {
    const out = new Map<string, number>();
    for (const bid of s.backendIds) out.set(backendIdentity(this.desired.backends.get(bid)!), bid);
    return out;
  }

  /** The service whose frontend has this key (keyString), if any. */
  private ownerOf(k: string): string | undefined {
    const entry = this.desired.services.get(k);
    return entry && this.names.get(entry.value.id);
  }

  /** Validate, stage into `desired`, reconcile the touched scope, apply; undo everything on failure. */
  private async change(apply: ServiceSpec[], remove: string[], validated = false): Promise<void> {
    if (!validated) for (const spec of apply) validateService(spec);
    this.svcIds.startChange();
    this.backendIds.startChange();
    this.checkOwnership(apply, remove);

    const undo: Array<() => void> = [];
    const scope: ScopeSets = {
      services: new Set<string>(), backends: new Set<number>(), tables: new Set<number>(), vips: new Set<string>(),
      replies: new Set<EndpointKey>(), freshServices: [], freshBackends: [],
    };
    try {
      for (const name of remove) this.unstage(name, scope, undo);
      for (const spec of apply) this.stage(spec, scope, undo);
    } catch (err) {
      for (const u of undo.reverse()) u();
      throw err;
    }
    const ops = reconcile(this.desired, this.current, scope);
    try {
      this.dataplane.resetStats('service', scope.freshServices);
      this.dataplane.resetStats('backend', scope.freshBackends);
      await applyOperations(this.dataplane, ops, this.current);
      this.forgetTables(scope.tables);
    } catch (err) {
      // Put desired back as it was and bring the maps back to it.
      for (const u of undo.reverse()) u();
      await applyOperations(this.dataplane, reconcile(this.desired, this.current, scope), this.current).catch(() => undefined);
      throw toSluiceError(err);
    }
  }

  /** Once written, keep tables by digest only (see TableDigest): the one the applier made. */
  private forgetTables(bases: Iterable<number>): void {
    for (const base of bases) {
      const t = this.desired.tables.get(base);
      if (t instanceof Uint32Array) this.desired.tables.set(base, this.current.tables.get(base) ?? digestTable(t));
    }
  }

  /** VIP:port:protocol may belong to one service only (within this change too). */
  private checkOwnership(apply: ServiceSpec[], remove: string[]): void {
    const removing = new Set(remove);
    const claimed = new Map<string, string>();
    for (const spec of apply) {
      const k = keyString(spec);
      const owner = this.ownerOf(k);
      const other = claimed.get(k);
      if ((owner !== undefined && owner !== spec.name && !removing.has(owner)) || (other !== undefined && other !== spec.name)) {
        throw new SluiceError('ALREADY_EXISTS', `${k} belongs to service ${owner ?? other}`, { field: 'address' });
      }
      claimed.set(k, spec.name);
    }
  }

  private idFor(what: 'service' | 'backend', restoredId: number | undefined, fresh: number[], undo: Array<() => void>): number {
    const alloc = what === 'service' ? this.svcIds : this.backendIds;
    // An id from a run with larger maps that does not fit these is replaced (conntrack refers to it, but that run's maps are gone).
    if (restoredId !== undefined && alloc.fits(restoredId)) return restoredId;
    const id = alloc.allocate(what);
    fresh.push(id);
    undo.push(() => alloc.release(id));
    return id;
  }

  /** Render one service into `desired` and widen the scope; record how to undo it. */
  private stage(spec: ServiceSpec, scope: ScopeSets, undo: Array<() => void>): void {
    const prev = this.installed.get(spec.name);
    const restored = prev === undefined ? this.restored.get(spec.name) ?? this.unclaimedInMaps(spec) : undefined;
    const freshSvc: number[] = [];
    const freshBe: number[] = [];
    const id = prev?.id ?? this.idFor('service', restored?.serviceId, freshSvc, undo);
    // Each backend's identity (the Maglev hash input, and how a backend keeps
    // its id across changes) and id, computed once.
    const prevIds = prev ? this.idsByIdentity(prev) : undefined;
    const maglev: Array<{ id: number; identity: string; weight: number }> = [];
    // Made by map() so that the array is no longer than its backends (it is kept).
    const bids = spec.backends.map((b) => {
      const ident = backendIdentity(b);
      const bid = prevIds?.get(ident) ?? this.idFor('backend', restored?.backends.get(ident), freshBe, undo);
      if (isActive(b)) maglev.push({ id: bid, identity: ident, weight: b.weight ?? 1 });
      return bid;
    });
    // A function of the spec alone (never of what this node held before), so
    // that every node given the same service builds the same table.
    const size = spec.tableSize ?? defaultTableSize(Math.max(spec.backends.length, 1));
    const table = buildMaglevTable(maglev, size);

    // Counters of ids new to the maps start from zero (reset in one batch).
    scope.freshServices.push(...freshSvc);
    scope.freshBackends.push(...freshBe);

    const prevImage = prev?.tableBase === undefined ? undefined : this.desired.tables.get(prev.tableBase);
    const log = new UndoLog(undo);
    if (prev) {
      this.removeFromDesired(prev, scope, log);
      // A backend the service no longer has gives its id back, as a
      // deleted service's do (pods come and go: ids must not run out).
      const kept = new Set(bids);
      for (const bid of prev.backendIds) {
        if (kept.has(bid)) continue;
        this.backendIds.release(bid);
        undo.push(() => this.backendIds.reserve(bid));
      }
    }

    const key = keyOf(spec);
    const k = keyString(key);
    let meta: number[] | undefined;
    spec.backends.forEach((b, i) => {
      const m = packMeta(b);
      if (m !== DEFAULT_META && meta === undefined) meta = new Array<number>(spec.backends.length).fill(DEFAULT_META);
      if (meta !== undefined) meta[i] = m;
    });
    spec.backends.forEach((b, i) => {
      const bid = bids[i]!;
      log.set(this.desired.backends, bid, { address: b.address, port: b.port, flags: isActive(b) ? 0 : BACKEND_FLAG_DRAINING, serviceId: id });
      scope.backends.add(bid);
      this.addEndpointUser(endpointKey(b.address, b.port, spec.protocol), bid, scope, log);
    });
    const { base, image } = this.placeTable(prev, prevImage, key, id, table, undo);
    if (base !== undefined) {
      log.set(this.desired.tables, base, image);
      scope.tables.add(base);
    }
    log.set(this.desired.services, k, {
      key,
      value: {
        id,
        flags: (spec.sessionAffinity ? SVC_FLAG_AFFINITY : 0) | (spec.noBackends === 'drop' ? SVC_FLAG_DROP_NO_BACKEND : 0),
        affinityTimeoutSec: spec.sessionAffinity?.timeoutSeconds ?? 0,
        tableSize: base === undefined ? 0 : size,
        tableBase: base ?? 0,
      },
    });
    scope.services.add(k);
    this.addVip(key.address, 1, scope, log);
    log.set(this.installed, spec.name, {
      key, id, tableSize: size, explicitSize: spec.tableSize !== undefined, tableBase: base,
      affinity: spec.sessionAffinity?.timeoutSeconds, dropNoBackends: spec.noBackends === 'drop', backendIds: bids, backendMeta: meta,
    });
    log.set(this.names, id, spec.name);
    if (restored) {
      log.delete(this.restored, spec.name);
      log.delete(this.inMaps, k);
    }
  }

  /** The ids the maps hold for this frontend's key, unless another installed frontend took that service id. */
  private unclaimedInMaps(spec: ServiceSpec): FrontendIds | undefined {
    const ids = this.inMaps.get(keyString(spec));
    return ids && !this.names.has(ids.serviceId) ? ids : undefined;
  }

  /** Take one service out of `desired`; record how to undo it. */
  private unstage(name: string, scope: ScopeSets, undo: Array<() => void>): void {
    const prev = this.installed.get(name);
    if (!prev) return;
    const log = new UndoLog(undo);
    this.removeFromDesired(prev, scope, log);
    log.delete(this.installed, name);
    log.delete(this.names, prev.id);
    if (prev.tableBase !== undefined) {
      const b = prev.tableBase;
      this.regions.release(b);
      undo.push(() => this.regions.unrelease(b));
    }
    this.svcIds.release(prev.id);
    for (const bid of prev.backendIds) this.backendIds.release(bid);
    undo.push(() => {
      this.svcIds.reserve(prev.id);
      for (const bid of prev.backendIds) this.backendIds.reserve(bid);
    });
  }

  /**
   * Where the service's table goes: its current region if the table did not
   * change (or, for a service adopted from the maps, the region it already
   * uses there), else a fresh region, the old one being released. Returns
   * no base for an empty table, and the image to remember: the digest
   * already held when the region is kept (so that nothing hashes the same
   * table twice), the new table in full when it is to be written.
   */
  private placeTable(
    prev: Installed | undefined, prevImage: TableImage | undefined, key: ServiceKey, id: number,
    table: Uint32Array, undo: Array<() => void>,
  ): { base: number | undefined; image: TableImage } {
    let prevBase = prev?.tableBase;
    let prevTable = prevImage;
    if (!prev) {
      const cur = this.current.services.get(keyString(key));
      if (cur && cur.value.id === id && cur.value.tableSize > 0) {
        prevBase = cur.value.tableBase;
        prevTable = this.current.tables.get(prevBase);
      }
    }
    if (table.length > 0 && prevBase !== undefined && prevTable && sameTable(prevTable, table)) {
      return { base: prevBase, image: prevTable };
    }
    let base: number | undefined;
    if (table.length > 0) {
      const b = this.regions.allocate(table.length);
      undo.push(() => this.regions.free_(b));
      base = b;
    }
    if (prevBase !== undefined) {
      const old = prevBase;
      this.regions.release(old);
      undo.push(() => this.regions.unrelease(old));
    }
    return { base, image: table };
  }

  private removeFromDesired(prev: Installed, scope: ScopeSets, log: UndoLog): void {
    const key = keyString(prev.key);
    log.delete(this.desired.services, key);
    scope.services.add(key);
    if (prev.tableBase !== undefined) {
      log.delete(this.desired.tables, prev.tableBase);
      scope.tables.add(prev.tableBase);
    }
    for (const bid of prev.backendIds) {
      const b = this.desired.backends.get(bid)!;
      log.delete(this.desired.backends, bid);
      scope.backends.add(bid);
      this.removeEndpointUser(endpointKey(b.address, b.port, prev.key.protocol), bid, scope, log);
    }
    this.addVip(prev.key.address, -1, scope, log);
  }

  /**
   * Backend `bid` is endpoint `code`: reply_nat restores the endpoint's
   * replies to bid's service port while it is the endpoint's only backend,
   * and not at all (0) once another service port uses the endpoint too.
   */
  private addEndpointUser(code: EndpointKey, bid: number, scope: ScopeSets, log: UndoLog): void {
    if (code === -1) return;
    const one = this.desired.replies.get(code);
    if (one === undefined) {
      log.set(this.desired.replies, code, bid);
    } else {
      const users = this.sharedEndpoints.get(code) ?? [one];
      log.set(this.sharedEndpoints, code, [...users, bid]);
      log.set(this.desired.replies, code, 0);
    }
    scope.replies.add(code);
  }

  /** Backend `bid` is no longer endpoint `code` (addEndpointUser's inverse). */
  private removeEndpointUser(code: EndpointKey, bid: number, scope: ScopeSets, log: UndoLog): void {
    if (code === -1) return;
    const users = this.sharedEndpoints.get(code);
    if (users) {
      const rest = users.filter((u) => u !== bid);
      if (rest.length > 1) {
        log.set(this.sharedEndpoints, code, rest);
      } else {
        log.delete(this.sharedEndpoints, code);
        if (rest.length === 1) log.set(this.desired.replies, code, rest[0]!);
        else log.delete(this.desired.replies, code);
      }
    } else if (this.desired.replies.get(code) === bid) {
      log.delete(this.desired.replies, code);
    }
    scope.replies.add(code);
  }

  /** Keep the VIP set equal to the addresses that carry a service (with their service counts). */
  private addVip(address: string, delta: number, scope: ScopeSets, log: UndoLog): void {
    const n = (this.desired.vips.get(address) ?? 0) + delta;
    if (n > 0) log.set(this.desired.vips, address, n);
    else log.delete(this.desired.vips, address);
    scope.vips.add(address);
  }
}


/** A deep copy of a spec (cheaper than structuredClone for this shape). */
function copySpec(s: ServiceSpec): ServiceSpec {
  const out: ServiceSpec = { ...s, backends: s.backends.map((b) => ({ ...b })) };
  if (s.sessionAffinity) out.sessionAffinity = { ...s.sessionAffinity };
  return out;
}

/** What UndoLog needs of a map (Map, BackendTable). */
interface MapLike<K, V> {
  get(key: K): V | undefined;
  has(key: K): boolean;
  set(key: K, value: V): unknown;
  delete(key: K): boolean;
}

/**
 * Records map writes so that they can be undone in reverse order. Entries
 * are three slots each (map, key, old value) of one flat array, not a
 * closure or a tuple each (a change of 10,000 services makes hundreds of
 * thousands), replayed by one closure on the undo list. A key that was not
 * in the map is recorded with the ABSENT marker.
 */
class UndoLog {
  private readonly entries: unknown[] = [];

  constructor(undo: Array<() => void>) {
    undo.push(() => {
      const e = this.entries;
      for (let i = e.length - 3; i >= 0; i -= 3) {
        const map = e[i] as MapLike<unknown, unknown>;
        const old = e[i + 2];
        if (old === ABSENT) map.delete(e[i + 1]);
        else map.set(e[i + 1], old);
      }
    });
  }

  set<K, V>(map: MapLike<K, V>, key: K, value: V): void {
    this.record(map, key);
    map.set(key, value);
  }

  delete<K, V>(map: MapLike<K, V>, key: K): void {
    this.record(map, key);
    map.delete(key);
  }

  private record<K, V>(map: MapLike<K, V>, key: K): void {
    const old = map.get(key);
    this.entries.push(map, key, old === undefined && !map.has(key) ? ABSENT : old);
  }
}

/** UndoLog's marker of a key that was not in the map. */
const ABSENT: unique symbol = Symbol('absent');

interface ScopeSets {
  services: Set<string>;
  backends: Set<number>;
  tables: Set<number>;
  vips: Set<string>;
  replies: Set<EndpointKey>;
  /** Ids handed out by this change, whose counters must start from zero. */
  freshServices: number[];
  freshBackends: number[];
}

/** The daemon flag that sizes each map a change can fill. */
const MAP_FLAG: Readonly<Record<string, string>> = {
  services: '--max-frontends',
  vips: '--max-frontends',
  backends: '--max-backends',
  maglev_slots: '--maglev-slots',
};

/** Map an addon failure to a SluiceError: a full map is RESOURCE_EXHAUSTED. */
function toSluiceError(err: unknown): SluiceError {
  if (err instanceof SluiceError) return err;
  const cause = err instanceof ApplyError ? err.cause : err;
  const code = (cause as { code?: string }).code;
  if (code === 'E2BIG' || code === 'ENOSPC' || code === 'ENOMEM') {
    const message = (err as Error).message;
    const map = /\((\w+)\)$/.exec(message)?.[1] ?? '';
    const flag = MAP_FLAG[map];
    return new SluiceError('RESOURCE_EXHAUSTED', `${map ? `the dataplane's ${map} map` : 'a dataplane map'} is full${flag ? `: raise the daemon's ${flag}` : ''} (${message})`, { cause: err });
  }
  return new SluiceError('INTERNAL', `dataplane update failed: ${(err as Error).message}`, { cause: err });
}
