/**
 * The registry: the domain layer between the API and the engine. It owns
 * the service definitions (in the Store) and keeps the LoadBalancer (and so
 * the dataplane) equal to them.
 *
 * Every mutation runs in one queue and follows one pattern: validate
 * everything (definitions, compare-and-set revisions, VIP:port:protocol
 * ownership, leases) before any write; then the dataplane (the load
 * balancer); then the store; then the persisted ids. A failure in the
 * dataplane step puts the previous frontends back and rethrows; a
 * validation failure has written nothing. The store's revision moves only
 * for a committed change, and every committed change is an event
 * (WatchServices).
 *
 * Errors are SluiceErrors whose field path is relative to the arguments of
 * the method ("ports[0].port", "[3].addresses[1]" for item 3 of a batch,
 * "leaseId"); the gRPC edge re-roots them to request paths.
 */
import { show } from '../model/schema.js';
import { pino, type Logger } from 'pino';
import type { GlobalCounter, Protocol } from '../dataplane/codec.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import { SluiceError, invalid } from '../errors.js';
import type { LoadBalancer } from '../lb/load-balancer.js';
import {
  expandDefinition,
  frontendName,
  serviceOfFrontend,
  normaliseDefinition,
  sameDefinition,
  type BackendDefinitionState,
  type ServiceDefinition,
  type StoredService,
} from '../model/definition.js';
import { MAX_WEIGHT, type ServiceSpec } from '../model/service.js';
import { checkServiceName } from '../model/schema.js';
import { isIPv4Address } from '../model/address.js';
import type { Lease, Store, StoreEvent } from '../store/store.js';
import { flushConnections, listConnections, type ConnectionInfo } from './connections.js';
import { engineError } from './engine-error.js';
import { describe, joinPath, withField } from './field-path.js';
import { lookupFlow, type FlowQuery, type FlowVerdict } from './flow-lookup.js';
import { SerialQueue } from './serial-queue.js';
import { ServiceIndex, frontendKey } from './service-index.js';
import { serviceCounters, type ServiceCounters } from './service-stats.js';

/** A wall clock (milliseconds), for lease deadlines. */
export interface RegistryClock {
  nowMs(): number;
}

/** Interval timers, injectable for tests. */
export interface RegistryTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** Options of a Registry. */
export interface RegistryOptions {
  /** Where definitions, revisions and leases live. */
  store: Store;
  /** The engine that writes the maps (constructed with the store's ids to adopt a running dataplane). */
  lb: LoadBalancer;
  /** The dataplane under `lb`, read for flows, connections and global counters. */
  dataplane: Dataplane;
  /** Wall clock for leases (default Date.now). */
  clock?: RegistryClock;
  /** CLOCK_MONOTONIC in ns, the dataplane's clock (default process.hrtime.bigint). */
  monotonicNs?: () => bigint;
  /** Timers for the lease check (default the global ones). */
  timers?: RegistryTimers;
  /** How often expired leases are looked for, in ms (default 500). */
  leaseCheckIntervalMs?: number;
  /** TTL of a lease when RegisterBackend gives none, in seconds (default 10). */
  defaultLeaseTtlSeconds?: number;
  /** Logger (default: silent). */
  logger?: Logger;
}

interface ResolvedOptions {
  clock: RegistryClock;
  monotonicNs: () => bigint;
  timers: RegistryTimers;
  leaseCheckIntervalMs: number;
  defaultLeaseTtlSeconds: number;
  logger: Logger;
}

function resolveOptions(o: RegistryOptions): ResolvedOptions {
  return {
    clock: o.clock ?? { nowMs: () => Date.now() },
    monotonicNs: o.monotonicNs ?? (() => process.hrtime.bigint()),
    timers: o.timers ?? {
      setInterval: (fn, ms) => {
        const t = setInterval(fn, ms);
        t.unref();
        return t;
      },
      clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
    },
    leaseCheckIntervalMs: o.leaseCheckIntervalMs ?? 500,
    defaultLeaseTtlSeconds: o.defaultLeaseTtlSeconds ?? 10,
    logger: o.logger ?? pino({ level: 'silent' }),
  };
}

/** Shortest and longest lease TTL, in seconds. */
export const LEASE_TTL_RANGE = { min: 1, max: 86_400 } as const;

/** One item of applyServices. */
export interface ApplyItem {
  /** The definition, not yet normalised (normaliseDefinition checks it). */
  definition: unknown;
  /** Compare-and-set: undefined unconditional, 0 create only, n must be at n. */
  expectedRevision?: number;
}

/** Options of listServices. */
export interface ListServicesOptions {
  /** Only names starting with this. */
  prefix?: string;
  /** Only services with this VIP. */
  address?: string;
  /** Only names after this one (the paging cursor). */
  startAfter?: string;
  /** Most services to return. */
  limit: number;
}

/** One event of a watch. */
export interface WatchEvent {
  type: 'SNAPSHOT' | 'SYNCED' | 'PUT' | 'DELETE';
  /** Service name; empty for SYNCED. */
  name: string;
  /** See the WatchServices documentation in proto/sluice/v1/service_registry.proto. */
  revision: number;
  /** The service (its new state, or for DELETE its last state); absent for SYNCED. */
  service?: StoredService;
}

/** Arguments of registerBackend. */
export interface RegisterBackendArgs {
  service: string;
  address: string;
  /** Unset: the backend's current weight, or 1. */
  weight?: number;
  /** TTL of a new lease (default from the options); ignored with `leaseId`. */
  ttlSeconds?: number;
  /** Register under this live lease instead of a new one. */
  leaseId?: string;
}

/** Filters of the connection operations. */
export interface ConnectionFilter {
  service?: string;
  backendAddress?: string;
  clientAddress?: string;
}

/** A connection, with its service's name. */
export interface Connection extends ConnectionInfo {
  /** Empty if the service id no longer belongs to a service. */
  service: string;
}

/** The verdict of lookupFlow with the service's name. */
export interface FlowLookup extends FlowVerdict {
  service: string;
}

/** The answer of stats. */
export interface RegistryStats {
  services: ServiceCounters[];
  global: Record<GlobalCounter, bigint>;
}

/** A change to commit: one service's next definition. */
interface PutItem {
  definition: ServiceDefinition;
  prev: StoredService | undefined;
  expectedRevision?: number;
  /** Field path prefix of this item in the caller's arguments ("" or "[3]"). */
  path: string;
}

const STATES: readonly BackendDefinitionState[] = ['active', 'draining', 'maintenance'];

/** The domain layer over a Store, a LoadBalancer and a Dataplane. */
export class Registry {
  private readonly store: Store;
  private readonly lb: LoadBalancer;
  private readonly dataplane: Dataplane;
  private readonly opts: ResolvedOptions;
  private readonly log: Logger;
  private readonly queue = new SerialQueue();
  private readonly index = new ServiceIndex();
  /** What saveIds last persisted per frontend (a hash of its ids). */
  private readonly savedIds = new Map<string, number>();
  private timer: unknown;
  private started = false;
  private closed = false;

  constructor(opts: RegistryOptions) {
    this.store = opts.store;
    this.lb = opts.lb;
    this.dataplane = opts.dataplane;
    this.opts = resolveOptions(opts);
    this.log = this.opts.logger;
  }

  /**
   * Restore: apply every stored definition to the load balancer (which
   * adopts what an earlier run left in the maps), persist the ids, and
   * start the lease check. Call once, before serving.
   */
  start(): Promise<void> {
    return this.queue.run(async () => {
      if (this.started) throw new SluiceError('FAILED_PRECONDITION', 'the registry is already started');
      if (this.closed) throw new SluiceError('FAILED_PRECONDITION', 'the registry is closed');
      const all = this.store.list();
      const specs: ServiceSpec[] = [];
      for (const s of all) {
        this.index.replace(s.definition.name, undefined, s.definition);
        specs.push(...expandDefinition(s.definition));
      }
      try {
        if (specs.length > 0) await this.lb.applyMany(specs, { handOver: true, validated: true });
      } catch (err) {
        throw engineError(err);
      }
      const names = specs.map((s) => s.name);
      const desired = new Set(names);
      const forget = [...this.store.loadIds().keys()].filter((n) => !desired.has(n));
      this.saveIds(names, forget);
      this.started = true;
      this.timer = this.opts.timers.setInterval(() => {
        this.expireLeases().catch((err: unknown) => this.log.error({ err }, 'lease check failed'));
      }, this.opts.leaseCheckIntervalMs);
      this.log.info({ services: all.length, frontends: specs.length, revision: this.store.revision() }, 'restored');
    });
  }

  /** Stop the lease check. Idempotent; the store, load balancer and dataplane stay open (their owner closes them). */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) this.opts.timers.clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The current store revision. */
  revision(): number {
    return this.store.revision();
  }

  /** One service; NOT_FOUND (field `name`) if absent. */
  getService(name: string): StoredService {
    const s = this.store.get(checkServiceName(name, 'name'));
    if (!s) throw new SluiceError('NOT_FOUND', `no service named ${show(name)}`, { field: 'name' });
    return s;
  }

  /** Slots of the Maglev table the service's frontends use now (the largest; 0: none). */
  effectiveTableSize(d: ServiceDefinition): number {
    let size = 0;
    for (const address of d.addresses) {
      for (const port of d.ports) size = Math.max(size, this.lb.tableSizeOf(frontendName(d.name, address, port)) ?? 0);
    }
    return size;
  }

  /** A page of services in name order, the store revision it was read at, and whether more follow. */
  listServices(o: ListServicesOptions): { services: StoredService[]; revision: number; more: boolean } {
    const revision = this.store.revision();
    if (o.address === undefined) {
      const rows = this.store.list({
        ...(o.prefix !== undefined ? { prefix: o.prefix } : {}),
        ...(o.startAfter !== undefined ? { startAfter: o.startAfter } : {}),
        limit: o.limit + 1,
      });
      return { services: rows.slice(0, o.limit), revision, more: rows.length > o.limit };
    }
    const names = this.index
      .servicesWithAddress(o.address)
      .filter((n) => (o.prefix === undefined || n.startsWith(o.prefix)) && (o.startAfter === undefined || n > o.startAfter))
      .sort();
    const services = names.slice(0, o.limit).flatMap((n) => this.store.get(n) ?? []);
    return { services, revision, more: names.length > o.limit };
  }

  /** Create or replace one service. Fields are named relative to the definition, and `expectedRevision`. */
  async applyService(definition: unknown, expectedRevision?: number): Promise<StoredService> {
    try {
      const { services } = await this.applyServices([
        expectedRevision === undefined ? { definition } : { definition, expectedRevision },
      ]);
      return services[0]!;
    } catch (err) {
      throw withField(err, (f) => f.replace(/^\[0\]\.?/, ''));
    }
  }

  /**
   * Create or replace several services, all or nothing, each with its own
   * revision (in order). Registered backends (with a lease) that a
   * definition does not name are kept. A service already exactly as given
   * is left alone: no new revision, no event; it is named in `unchanged`.
   * Fields are named "[i].<field>".
   */
  applyServices(items: readonly ApplyItem[]): Promise<{ services: StoredService[]; revision: number; unchanged: string[] }> {
    return this.mutation(async () => {
      if (!Array.isArray(items) || items.length === 0) {
        throw new SluiceError('INVALID_ARGUMENT', 'at least one service is required');
      }
      const seen = new Map<string, number>();
      const puts: PutItem[] = [];
      const out: Array<StoredService | PutItem> = items.map((item, i): StoredService | PutItem => {
        const path = `[${i}]`;
        let definition: ServiceDefinition;
        try {
          definition = normaliseDefinition(item.definition);
        } catch (err) {
          throw withField(err, (f) => joinPath(path, f));
        }
        const first = seen.get(definition.name);
        if (first !== undefined) throw invalid(joinPath(path, 'name'), `${definition.name} is also item ${first} of this batch`);
        seen.set(definition.name, i);
        // A bulk load is mostly new names: the index knows them, the store need not be asked.
        const prev = this.index.has(definition.name) ? this.store.get(definition.name) : undefined;
        checkExpected(definition.name, prev, item.expectedRevision, joinPath(path, 'expectedRevision'));
        if (prev) definition = keepRegistered(definition, prev.definition, path);
        if (prev && sameDefinition(prev.definition, definition)) return prev;
        const put: PutItem = { definition, prev, path };
        if (item.expectedRevision !== undefined) put.expectedRevision = item.expectedRevision;
        puts.push(put);
        return put;
      });
      const stored = puts.length > 0 ? await this.commitPuts(puts) : [];
      const byName = new Map(stored.map((s) => [s.definition.name, s]));
      const unchanged: string[] = [];
      const services = out.map((o) => {
        if ('createRevision' in o) {
          unchanged.push(o.definition.name);
          return o;
        }
        return byName.get(o.definition.name)!;
      });
      return { services, revision: this.store.revision(), unchanged };
    });
  }

  /** Delete a service; returns the revision of the deletion. Fields: `name`, `expectedRevision`. */
  deleteService(name: string, expectedRevision?: number): Promise<number> {
    return this.mutation(async () => {
      const current = this.getService(name);
      checkExpected(name, current, expectedRevision, 'expectedRevision');
      const frontends = expandDefinition(current.definition).map((s) => s.name);
      try {
        await this.lb.deleteMany(frontends);
      } catch (err) {
        await this.restore([current.definition], []);
        throw engineError(err);
      }
      let revision: number;
      try {
        revision = this.store.delete(name, expectedRevision);
      } catch (err) {
        await this.restore([current.definition], []);
        throw engineError(err);
      }
      this.saveIds([], frontends);
      this.index.replace(name, current.definition, undefined);
      this.revokeOrphans(leasesOf(current.definition));
      return revision;
    });
  }

  /**
   * Send the services and then their changes to `onEvent`, synchronously up
   * to the present, then as they commit. Without `startRevision`, or when
   * the event log no longer reaches back to it, or when it is ahead of the
   * store: SNAPSHOT events, then SYNCED. With it: the events after it.
   * Returns a function that stops the watch.
   */
  watch(startRevision: number | undefined, onEvent: (e: WatchEvent) => void): () => void {
    if (startRevision !== undefined && (!Number.isSafeInteger(startRevision) || startRevision < 0)) {
      throw invalid('startRevision', `must be a non-negative integer, got ${show(startRevision)}`);
    }
    let last = 0;
    const send = (e: WatchEvent): void => {
      last = Math.max(last, e.revision);
      onEvent(e);
    };
    const live = (e: StoreEvent): void => {
      if (e.revision <= last) return;
      send({ type: e.type, name: e.name, revision: e.revision, service: e.service });
    };
    let replay: StoreEvent[] | undefined;
    if (startRevision !== undefined && startRevision <= this.store.revision()) {
      try {
        replay = this.store.eventsSince(startRevision);
      } catch (err) {
        if (!(err instanceof SluiceError && err.code === 'FAILED_PRECONDITION')) throw err;
      }
    }
    // Reading and subscribing in one synchronous step: no event falls between.
    if (replay) {
      last = startRevision!;
      for (const e of replay) live(e);
    } else {
      const revision = this.store.revision();
      for (const s of this.store.list()) send({ type: 'SNAPSHOT', name: s.definition.name, revision: s.revision, service: s });
      send({ type: 'SYNCED', name: '', revision });
    }
    return this.store.subscribe(live);
  }

  /**
   * Add a backend to a service under a lease (a new one, or `leaseId`), or
   * move a registered backend to this lease (its state is kept). A static
   * backend (one defined without a lease) is refused: ALREADY_EXISTS.
   * Fields: `service`, `address`, `weight`, `ttlSeconds`, `leaseId`.
   */
  registerBackend(args: RegisterBackendArgs): Promise<{ lease: Lease; service: StoredService }> {
    return this.mutation(async () => {
      const current = this.requireService(args.service);
      checkAddress(args.address, 'address');
      if (args.weight !== undefined && (!Number.isInteger(args.weight) || args.weight < 0 || args.weight > MAX_WEIGHT)) {
        throw invalid('weight', `must be an integer in 0..${MAX_WEIGHT}, got ${show(args.weight)}`);
      }
      const now = this.opts.clock.nowMs();
      let lease: Lease | undefined;
      if (args.leaseId !== undefined && args.leaseId !== '') {
        lease = this.store.getLease(args.leaseId);
        if (!lease || lease.expiresAtMs <= now) {
          throw new SluiceError('NOT_FOUND', `no live lease ${show(args.leaseId)}`, { field: 'leaseId' });
        }
      }
      const ttl = args.ttlSeconds ?? this.opts.defaultLeaseTtlSeconds;
      if (!lease && (!Number.isInteger(ttl) || ttl < LEASE_TTL_RANGE.min || ttl > LEASE_TTL_RANGE.max)) {
        throw invalid('ttlSeconds', `must be an integer in ${LEASE_TTL_RANGE.min}..${LEASE_TTL_RANGE.max}, got ${show(args.ttlSeconds)}`);
      }
      const next = structuredClone(current.definition);
      const placeholder = lease?.id ?? 'pending';
      const existing = next.backends.find((b) => b.address === args.address);
      if (existing && existing.leaseId === undefined) {
        // Tying a backend someone defined to a lease would make it vanish when the lease ends.
        throw new SluiceError(
          'ALREADY_EXISTS',
          `${args.address} is a static backend of ${current.definition.name} (defined without a lease); ` +
            'remove it from the definition first if it should live by a lease',
          { field: 'address' },
        );
      }
      if (existing) {
        existing.leaseId = placeholder;
        if (args.weight !== undefined) existing.weight = args.weight;
      } else {
        next.backends.push({ address: args.address, weight: args.weight ?? 1, state: 'active', leaseId: placeholder });
      }
      let definition: ServiceDefinition;
      try {
        definition = normaliseDefinition(next);
      } catch (err) {
        throw registrationField(err);
      }
      const granted = lease === undefined;
      lease ??= this.store.grantLease(ttl, now);
      definition.backends.find((b) => b.address === args.address)!.leaseId = lease.id;
      try {
        const [service] = await this.commitPuts([{ definition, prev: current, expectedRevision: current.revision, path: '' }]);
        return { lease, service: service! };
      } catch (err) {
        if (granted) this.store.revokeLease(lease.id);
        throw registrationField(err);
      }
    });
  }

  /**
   * Extend a lease by its TTL; NOT_FOUND (field `leaseId`) if it is unknown
   * or expired. Not queued: a long batch must not starve keepalives, and
   * the store's check against the clock orders it with expiry.
   */
  keepAlive(leaseId: string): Lease {
    if (typeof leaseId !== 'string' || leaseId === '') throw invalid('leaseId', 'required');
    try {
      return this.store.keepAlive(leaseId, this.opts.clock.nowMs());
    } catch (err) {
      if (err instanceof SluiceError && err.code === 'NOT_FOUND') {
        throw new SluiceError('NOT_FOUND', `no live lease ${show(leaseId)} (expired or revoked: register again)`, { field: 'leaseId', cause: err });
      }
      throw engineError(err);
    }
  }

  /** Remove a backend; its lease is revoked if no other backend holds it. Fields: `service`, `address`. */
  deregisterBackend(service: string, address: string): Promise<StoredService> {
    return this.mutation(async () => {
      const current = this.requireService(service);
      this.requireBackend(current, address);
      const next = structuredClone(current.definition);
      next.backends = next.backends.filter((b) => b.address !== address);
      const [out] = await this.commitPuts([{ definition: next, prev: current, expectedRevision: current.revision, path: '' }]);
      return out!;
    });
  }

  /** Set a backend's state. Fields: `service`, `address`, `state`. */
  setBackendState(service: string, address: string, state: BackendDefinitionState): Promise<StoredService> {
    return this.mutation(async () => {
      if (!STATES.includes(state)) throw invalid('state', `must be active, draining or maintenance, got ${show(state)}`);
      const current = this.requireService(service);
      this.requireBackend(current, address);
      const next = structuredClone(current.definition);
      next.backends.find((b) => b.address === address)!.state = state;
      let definition: ServiceDefinition;
      try {
        definition = normaliseDefinition(next);
      } catch (err) {
        throw nest(err, 'state');
      }
      const [out] = await this.commitPuts([{ definition, prev: current, expectedRevision: current.revision, path: '' }]);
      return out!;
    });
  }

  /**
   * Remove the backends of every expired lease and revoke those leases.
   * Runs on the timer; returns how many leases expired.
   */
  expireLeases(): Promise<number> {
    return this.mutation(async () => {
      const expired = this.store.expiredLeases(this.opts.clock.nowMs());
      if (expired.length === 0) return 0;
      const doomed = new Set(expired.map((l) => l.id));
      const next = new Map<string, ServiceDefinition>();
      for (const lease of expired) {
        for (const u of this.index.leaseUsers(lease.id)) {
          let d = next.get(u.service);
          if (!d) {
            const cur = this.store.get(u.service);
            if (!cur) continue;
            next.set(u.service, (d = structuredClone(cur.definition)));
          }
          d.backends = d.backends.filter((b) => !(b.leaseId !== undefined && doomed.has(b.leaseId)));
        }
      }
      const puts = [...next.values()].map((definition): PutItem => {
        const prev = this.store.get(definition.name)!;
        return { definition, prev, expectedRevision: prev.revision, path: '' };
      });
      if (puts.length > 0) await this.commitPuts(puts);
      for (const lease of expired) this.store.revokeLease(lease.id);
      this.log.info({ leases: expired.map((l) => l.id), services: [...next.keys()] }, 'leases expired');
      return expired.length;
    });
  }

  /** Counters of one service (NOT_FOUND, field `service`) or of all, and the global counters. */
  stats(service?: string): RegistryStats {
    const defs = service === undefined || service === ''
      ? this.store.list().map((s) => s.definition)
      : [this.requireService(service).definition];
    return { services: defs.map((d) => serviceCounters(this.lb, d)), global: this.dataplane.globalStats() };
  }

  /**
   * Where a new packet of a flow would go now. NOT_FOUND (field `address`)
   * if no service is on its VIP, port and protocol. Fields: `clientAddress`,
   * `clientPort`, `address`, `port`, `protocol`.
   */
  lookupFlow(q: FlowQuery): FlowLookup {
    checkAddress(q.clientAddress, 'clientAddress');
    checkPort(q.clientPort, 'clientPort');
    checkAddress(q.address, 'address');
    checkPort(q.port, 'port');
    checkProtocol(q.protocol, 'protocol');
    const v = lookupFlow(this.dataplane, q, this.opts.monotonicNs());
    if (!v) {
      throw new SluiceError('NOT_FOUND', `no service on ${frontendKey(q.address, q.port, q.protocol)}`, { field: 'address' });
    }
    return { ...v, service: this.serviceOfId(v.serviceId) ?? this.index.owner(q.address, q.port, q.protocol) ?? '' };
  }

  /** A page of connections (in cursor order) and whether more follow. Fields: `service`, `backendAddress`, `clientAddress`. */
  listConnections(filter: ConnectionFilter, page: { after?: string; limit: number }): { connections: Connection[]; more: boolean } {
    const { connections, more } = listConnections(this.dataplane, this.connectionMatch(filter), page, this.opts.monotonicNs());
    return { connections: connections.map((c) => ({ ...c, service: this.serviceOfId(c.serviceId) ?? '' })), more };
  }

  /** Forget the matching connections; returns how many. With no filter, `all` must be set (field `all`). */
  flushConnections(filter: ConnectionFilter, opts: { all?: boolean } = {}): number {
    const empty = !filter.service && !filter.backendAddress && !filter.clientAddress;
    if (empty && opts.all !== true) throw invalid('all', 'give a filter, or set all to flush every connection');
    if (!empty && opts.all === true) throw invalid('all', 'cannot be combined with filters');
    const n = flushConnections(this.dataplane, this.connectionMatch(filter));
    this.log.info({ filter, flushed: n }, 'connections flushed');
    return n;
  }

  // ---------------------------------------------------------------- internals

  /** The service whose frontend has this dataplane id. */
  private serviceOfId(id: number): string | undefined {
    const frontend = this.lb.nameOf(id);
    return frontend === undefined ? undefined : serviceOfFrontend(frontend);
  }

  private mutation<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(() => {
      if (this.closed) throw new SluiceError('FAILED_PRECONDITION', 'the registry is closed');
      if (!this.started) throw new SluiceError('FAILED_PRECONDITION', 'the registry is not started');
      return fn();
    });
  }

  private requireService(name: string): StoredService {
    const s = this.store.get(checkServiceName(name, 'service'));
    if (!s) throw new SluiceError('NOT_FOUND', `no service named ${show(name)}`, { field: 'service' });
    return s;
  }

  private requireBackend(s: StoredService, address: string): void {
    checkAddress(address, 'address');
    if (!s.definition.backends.some((b) => b.address === address)) {
      throw new SluiceError('NOT_FOUND', `service ${s.definition.name} has no backend ${address}`, { field: 'address' });
    }
  }

  private connectionMatch(f: ConnectionFilter): { serviceIds?: Set<number>; backendAddress?: string; clientAddress?: string } {
    const m: { serviceIds?: Set<number>; backendAddress?: string; clientAddress?: string } = {};
    if (f.service) {
      const def = this.requireService(f.service).definition;
      m.serviceIds = new Set(expandDefinition(def).flatMap((s) => this.lb.idOf(s.name) ?? []));
    }
    if (f.backendAddress) {
      checkAddress(f.backendAddress, 'backendAddress');
      m.backendAddress = f.backendAddress;
    }
    if (f.clientAddress) {
      checkAddress(f.clientAddress, 'clientAddress');
      m.clientAddress = f.clientAddress;
    }
    return m;
  }

  /**
   * Check ownership and new lease references, write the dataplane, then the
   * store, then the ids; put the dataplane back if a write fails.
   */
  private async commitPuts(all: PutItem[]): Promise<StoredService[]> {
    // A service already as asked is left alone: no revision, no event.
    const items = all.filter((it) => !(it.prev && sameDefinition(it.prev.definition, it.definition)));
    if (items.length < all.length) {
      const done = items.length === 0 ? [] : await this.commitPuts(items);
      const byName = new Map(done.map((x) => [x.definition.name, x]));
      return all.map((it) => byName.get(it.definition.name) ?? it.prev!);
    }
    this.checkOwnership(items);
    this.checkLeases(items);

    const nextSpecs = items.flatMap((it) => expandDefinition(it.definition));
    const nextNames = new Set(nextSpecs.map((s) => s.name));
    const nextKeys = new Set(nextSpecs.map((s) => frontendKey(s.address, s.port, s.protocol)));
    const changed = nextSpecs.filter((s) => !sameSpec(this.lb.peek(s.name), s));
    const vanished = items
      .flatMap((it) => (it.prev ? expandDefinition(it.prev.definition) : []))
      .filter((s) => !nextNames.has(s.name));
    // A VIP:port:protocol moving to another service of this batch is freed first.
    const early = vanished.filter((s) => nextKeys.has(frontendKey(s.address, s.port, s.protocol))).map((s) => s.name);
    const late = vanished.filter((s) => !nextKeys.has(frontendKey(s.address, s.port, s.protocol))).map((s) => s.name);

    const previous = items.flatMap((it) => (it.prev ? [it.prev.definition] : []));
    const rollback = async (): Promise<void> => this.restore(previous, [...nextNames]);
    try {
      if (early.length > 0) await this.lb.deleteMany(early);
      if (changed.length > 0) await this.lb.applyMany(changed, { handOver: true, validated: true });
      if (late.length > 0) await this.lb.deleteMany(late);
    } catch (err) {
      await rollback();
      throw engineError(err);
    }
    let stored: StoredService[];
    try {
      stored = this.store.put(
        items.map((it) =>
          it.expectedRevision === undefined
            ? { definition: it.definition }
            : { definition: it.definition, expectedRevision: it.expectedRevision },
        ),
      );
    } catch (err) {
      await rollback();
      throw engineError(err);
    }
    // The index follows the store at once: it says which names exist.
    const lostLeases = new Set<string>();
    for (const it of items) {
      this.index.replace(it.definition.name, it.prev?.definition, it.definition);
      if (it.prev) for (const id of leasesOf(it.prev.definition)) lostLeases.add(id);
    }
    this.saveIds(changed.map((s) => s.name), vanished.map((s) => s.name));
    this.revokeOrphans(lostLeases);
    return stored;
  }

  /** Put the frontends of `definitions` back, and remove the other frontends named in `drop`. */
  private async restore(definitions: ServiceDefinition[], drop: string[]): Promise<void> {
    const specs = definitions.flatMap((d) => expandDefinition(d));
    const keep = new Set(specs.map((s) => s.name));
    try {
      await this.lb.deleteMany(drop.filter((n) => !keep.has(n)));
      if (specs.length > 0) await this.lb.applyMany(specs, { handOver: true, validated: true });
    } catch (err) {
      this.log.error({ err, services: definitions.map((d) => d.name) }, 'could not restore the dataplane after a failed change');
    }
  }

  /** INVALID_ARGUMENT if a VIP:port:protocol of an item belongs to another service (outside or inside the batch). */
  private checkOwnership(items: PutItem[]): void {
    const inBatch = new Set(items.map((it) => it.definition.name));
    const claimed = new Map<string, string>();
    for (const it of items) {
      const d = it.definition;
      d.addresses.forEach((address, i) => {
        d.ports.forEach((p, j) => {
          const k = frontendKey(address, p.port, p.protocol);
          const owner = this.index.owner(address, p.port, p.protocol);
          const other = claimed.get(k);
          const conflict = other !== undefined && other !== d.name
            ? other
            : owner !== undefined && owner !== d.name && !inBatch.has(owner)
              ? owner
              : undefined;
          if (conflict !== undefined) {
            throw invalid(
              joinPath(it.path, `addresses[${i}]`),
              `${k} (with ports[${j}]) is already owned by service ${show(conflict)}`,
            );
          }
          claimed.set(k, d.name);
        });
      });
    }
  }

  /** INVALID_ARGUMENT if a backend newly refers to a lease that is not live. */
  private checkLeases(items: PutItem[]): void {
    const now = this.opts.clock.nowMs();
    for (const it of items) {
      it.definition.backends.forEach((b, i) => {
        if (b.leaseId === undefined) return;
        const before = it.prev?.definition.backends.find((x) => x.address === b.address)?.leaseId;
        if (before === b.leaseId) return;
        const lease = this.store.getLease(b.leaseId);
        if (!lease || lease.expiresAtMs <= now) {
          throw invalid(joinPath(it.path, `backends[${i}].leaseId`), `no live lease ${show(b.leaseId)}`);
        }
      });
    }
  }

  /** Revoke the leases among `ids` that no backend holds any more. */
  private revokeOrphans(ids: Iterable<string>): void {
    for (const id of ids) {
      if (!this.index.leaseInUse(id) && this.store.revokeLease(id)) this.log.info({ lease: id }, 'lease revoked: no backend holds it');
    }
  }

  /** Persist the ids of `names` (as the load balancer has them) and forget `forget`. */
  private saveIds(names: string[], forget: string[]): void {
    // Most changes (a drain, a weight) keep every id: write only what moved.
    const ids = this.lb.exportIds(names);
    const signatures = new Map<string, number>();
    for (const [name, v] of ids) {
      const sig = idsSignature(v.serviceId, v.backends);
      if (this.savedIds.get(name) === sig) ids.delete(name);
      else signatures.set(name, sig);
    }
    if (ids.size === 0 && forget.length === 0) return;
    try {
      this.store.saveIds(ids, forget);
      for (const [name, sig] of signatures) this.savedIds.set(name, sig);
      for (const name of forget) this.savedIds.delete(name);
    } catch (err) {
      // The change is committed; ids not persisted only cost a re-write after a restart.
      this.log.error({ err }, 'could not persist dataplane ids');
    }
  }


}


/**
 * `next` with the registered backends of `prev` (those with a lease) that
 * it does not name: a registration belongs to its lease, and a
 * definition applied from a file (which knows only the static backends)
 * must not remove it. A backend the definition names is as the definition
 * says. `path` roots a field error.
 */
function keepRegistered(next: ServiceDefinition, prev: ServiceDefinition, path: string): ServiceDefinition {
  const named = new Set(next.backends.map((b) => b.address));
  const kept = prev.backends.filter((b) => b.leaseId !== undefined && !named.has(b.address));
  if (kept.length === 0) return next;
  try {
    return normaliseDefinition({ ...next, backends: [...next.backends, ...kept] });
  } catch (err) {
    throw withField(err, (f) => joinPath(path, f));
  }
}

function leasesOf(d: ServiceDefinition): string[] {
  return d.backends.flatMap((b) => (b.leaseId === undefined ? [] : [b.leaseId]));
}

/** Compare-and-set against the stored revision, as Store.put would, before anything is written. */
function checkExpected(name: string, current: StoredService | undefined, expected: number | undefined, field: string): void {
  if (expected === undefined) return;
  if (!Number.isSafeInteger(expected) || expected < 0) {
    throw invalid(field, `must be a non-negative integer, got ${show(expected)}`);
  }
  if (expected === 0) {
    if (current) {
      throw new SluiceError('ALREADY_EXISTS', `service ${show(name)} already exists (revision ${current.revision})`, { field });
    }
    return;
  }
  if (!current) throw new SluiceError('NOT_FOUND', `no service named ${show(name)} (expected revision ${expected})`, { field });
  if (current.revision !== expected) {
    throw new SluiceError(
      'FAILED_PRECONDITION',
      `service ${show(name)} is at revision ${current.revision}, not ${expected}`,
      { field },
    );
  }
}

function checkAddress(a: unknown, field: string): void {
  if (!isIPv4Address(a)) throw invalid(field, `must be an IPv4 address, got ${show(a)}`);
}

function checkPort(p: unknown, field: string): void {
  if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) {
    throw invalid(field, `must be an integer in 1..65535, got ${show(p)}`);
  }
}

function checkProtocol(p: unknown, field: string): asserts p is Protocol {
  if (p !== 'tcp' && p !== 'udp') throw invalid(field, `must be tcp or udp, got ${show(p)}`);
}

/** A registration's definition error, named by the registration's fields. */
function registrationField(err: unknown): unknown {
  return renameField(err, (f) => {
    if (/^backends\[\d+\]\.weight$/.test(f)) return 'weight';
    if (/^backends(\[\d+\](\.address)?)?$/.test(f)) return 'address';
    if (/^backends\[\d+\]\.leaseId$/.test(f)) return 'leaseId';
    return undefined;
  }, 'service');
}

/** Rename an error's field with `map`; where it gives undefined, nest the error under `fallback`. */
function renameField(err: unknown, map: (field: string) => string | undefined, fallback: string): unknown {
  if (!(err instanceof SluiceError) || err.field === undefined) return err;
  const to = map(err.field);
  return to === undefined ? nest(err, fallback) : withField(err, () => to);
}

/** The same error under `field`, its own field path moved into the description. */
function nest(err: unknown, field: string): unknown {
  if (!(err instanceof SluiceError)) return err;
  const what = err.field === undefined || err.field === '' ? describe(err) : `${err.field}: ${describe(err)}`;
  return new SluiceError(err.code, what, { field, cause: err.cause });
}

/** Whether the load balancer already holds exactly `spec` (so applying it would write nothing). */
/** A 53-bit hash of a frontend's ids (FNV-1a over their text, twice). */
function idsSignature(serviceId: number, backends: ReadonlyMap<string, number>): number {
  let h1 = 0x811c9dc5 ^ serviceId;
  let h2 = 0x01000193 + serviceId;
  // Keys and get() rather than entries: no [key, value] pair per backend
  // (this runs for every service of a bulk load).
  for (const ident of backends.keys()) {
    for (let i = 0; i < ident.length; i++) {
      const c = ident.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    }
    const id = backends.get(ident)!;
    h1 = Math.imul(h1 ^ id, 0x01000193);
    h2 = Math.imul(h2 ^ (id + 0x9e3779b9), 0x5bd1e995);
  }
  return (h1 >>> 0) * 0x200000 + ((h2 >>> 0) & 0x1fffff);
}

function sameSpec(a: Readonly<ServiceSpec> | undefined, b: ServiceSpec): boolean {
  if (!a) return false;
  if (a.address !== b.address || a.port !== b.port || a.protocol !== b.protocol) return false;
  if ((a.tableSize ?? 0) !== (b.tableSize ?? 0)) return false;
  if ((a.sessionAffinity?.timeoutSeconds ?? 0) !== (b.sessionAffinity?.timeoutSeconds ?? 0)) return false;
  if (a.backends.length !== b.backends.length) return false;
  return a.backends.every((x, i) => {
    const y = b.backends[i]!;
    return x.address === y.address && x.port === y.port && (x.weight ?? 1) === (y.weight ?? 1) && (x.state ?? 'active') === (y.state ?? 'active');
  });
}
