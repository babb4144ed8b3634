/**
 * A node's view of the catalog: the services as the API shows them (each
 * definition with its registrations), read from the store once and then
 * kept current by a watch of the catalog's prefix. It is the one copy of
 * desired state a node holds; the node's syncer and the API's watchers
 * subscribe to it, and its indexes answer what the store cannot cheaply
 * (which services carry a VIP).
 *
 * A watch the store can no longer serve (its revision compacted) is
 * replaced by reading everything again; what changed meanwhile is
 * delivered as changes, as if watched.
 */
import type { Logger } from 'pino';
import { SluiceError } from '../errors.js';
import type { ServiceDefinition, StoredService } from '../model/definition.js';
import { CompactedError, type KeyValue, type KvChanges, type KvStore, type KvWatch } from '../store/kv.js';
import { CatalogKeys, decodeServiceValue, type RegistrationValue } from './keys.js';
import { withRegistrations } from './catalog.js';

/** One service's change, as the view's subscribers get it. */
export interface ViewChange {
  type: 'PUT' | 'DELETE';
  name: string;
  /** The store revision of the change. */
  revision: number;
  /** The service after a PUT; before a DELETE. */
  service: StoredService;
}

/** Options of a view. */
export interface ViewOptions {
  store: KvStore;
  keys: CatalogKeys;
  /** How many changes are kept for watchers that resume (default 10,000). */
  maxLog?: number;
  logger?: Logger;
}

/** A registration as the view keeps it: its parsed value, its lease and revision (not the raw key-value). */
export interface ViewRegistration {
  kv: Pick<KeyValue, 'lease' | 'modRevision'>;
  value: RegistrationValue;
}
type Registration = ViewRegistration;

/** One service's keys as the view holds them (for the catalog's writes: what it would read from the store). */
export interface ViewService {
  definition: ServiceDefinition;
  owner: string;
  modRevision: number;
  createRevision: number;
  registrations: ReadonlyMap<string, ViewRegistration>;
}

/**
 * One service: the parsed definition and its revisions. The key-value it
 * came from (its raw JSON value) is not kept: the definition is the node's
 * one copy of the service, which the load balancer's frontends refer to.
 */
interface Entry {
  definition: ServiceDefinition;
  /** Who wrote it (the same string for every service of one owner). */
  owner: string;
  modRevision: number;
  createRevision: number;
  /** Its registered backends by address; undefined while it has none (most services). */
  registrations: Map<string, Registration> | undefined;
  /** The merged service, built when asked and dropped when the entry changes. */
  merged?: StoredService;
}

const NO_REGISTRATIONS: ReadonlyMap<string, Registration> = new Map();

/** The services of the catalog, kept current from the store. */
export class CatalogView {
  readonly #store: KvStore;
  readonly #keys: CatalogKeys;
  readonly #maxLog: number;
  readonly #log: Logger | undefined;
  readonly #entries = new Map<string, Entry>();
  /** One string per owner name, shared by its services' entries. */
  readonly #ownerNames = new Map<string, string>();
  /** Registrations whose service is not (yet) in the view, by service. */
  readonly #orphans = new Map<string, Map<string, Registration>>();
  /** The service (or, when several share the VIP, the services) carrying each VIP. */
  readonly #byAddress = new Map<string, string | Set<string>>();
  /** Recent changes, oldest first, for resuming watchers. */
  #changes: ViewChange[] = [];
  /** The oldest revision #changes can resume from. */
  #logStart = 0;
  #revision = 0;
  #watch: KvWatch | undefined;
  readonly #subs = new Set<(changes: ViewChange[]) => void>();
  readonly #waiters: Array<{ revision: number; resolve: () => void }> = [];
  #closed = false;
  #sortedNames: string[] | undefined;

  constructor(opts: ViewOptions) {
    this.#store = opts.store;
    this.#keys = opts.keys;
    this.#maxLog = opts.maxLog ?? 10_000;
    this.#log = opts.logger;
  }

  /** Read everything and start watching. */
  async start(): Promise<void> {
    await this.#relist(false);
  }

  /** Stop watching. */
  close(): void {
    this.#closed = true;
    this.#watch?.cancel();
    this.#watch = undefined;
    this.#subs.clear();
    for (const w of this.#waiters.splice(0)) w.resolve();
  }

  /** The store revision the view is at. */
  get revision(): number {
    return this.#revision;
  }

  /** How many services there are. */
  get size(): number {
    return this.#entries.size;
  }

  /** One service, or undefined. */
  get(name: string): StoredService | undefined {
    const e = this.#entries.get(name);
    return e && merged(e);
  }

  /** Service names in byte order. */
  names(): string[] {
    this.#sortedNames ??= [...this.#entries.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return this.#sortedNames;
  }

  /** Names of the services that have `address` among their VIPs. */
  servicesWithAddress(address: string): string[] {
    const held = this.#byAddress.get(address);
    return held === undefined ? [] : typeof held === 'string' ? [held] : [...held];
  }

  /**
   * A service's keys as the view holds them, undefined if it has none: the
   * catalog writes from these (its compares catch a view that is behind).
   */
  stored(name: string): ViewService | undefined {
    const e = this.#entries.get(name);
    if (!e) return undefined;
    return { definition: e.definition, owner: e.owner, modRevision: e.modRevision, createRevision: e.createRevision, registrations: e.registrations ?? NO_REGISTRATIONS };
  }

  /** The service that owns a frontend (VIP, port, protocol), if any. */
  frontendService(address: string, port: number, protocol: string): string | undefined {
    for (const name of this.servicesWithAddress(address)) {
      if (this.#entries.get(name)?.definition.ports.some((p) => p.port === port && p.protocol === protocol)) return name;
    }
    return undefined;
  }

  /**
   * Call `fn` with every batch of changes applied after now (one store
   * transaction's, or a relist's). Returns an unsubscribe function.
   */
  subscribe(fn: (changes: ViewChange[]) => void): () => void {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }

  /**
   * The changes after `revision`, if the view still holds them all (else
   * undefined: take a snapshot). A revision ahead of the view is undefined
   * too.
   */
  changesSince(revision: number): ViewChange[] | undefined {
    if (revision < this.#logStart || revision > this.#revision) return undefined;
    return this.#changes.filter((c) => c.revision > revision);
  }

  /** Resolves once the view has seen every change up to `revision`. */
  waitFor(revision: number): Promise<void> {
    if (revision <= this.#revision || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ revision, resolve }));
  }

  // ---------------------------------------------------------------- internals

  /** Read everything again and watch from there; changes against what was held are published. */
  async #relist(publish: boolean): Promise<void> {
    this.#watch?.cancel();
    const prefix = this.#keys.all;
    const { kvs, revision } = await this.#store.range(prefix);
    if (this.#closed) return;
    const before = new Map([...this.#entries].map(([n, e]) => [n, merged(e)]));
    this.#entries.clear();
    this.#orphans.clear();
    this.#byAddress.clear();
    this.#sortedNames = undefined;
    const regs: KeyValue[] = [];
    for (const kv of kvs) {
      const p = this.#keys.parse(kv.key);
      if (p?.kind === 'service') this.#putService(p.name, kv);
      else if (p?.kind === 'registration') regs.push(kv);
    }
    for (const kv of regs) this.#putRegistration(kv);
    const changes: ViewChange[] = [];
    if (publish) {
      for (const [name, prev] of before) {
        const now = this.get(name);
        if (!now) changes.push({ type: 'DELETE', name, revision, service: prev });
        else if (JSON.stringify(now) !== JSON.stringify(prev)) changes.push({ type: 'PUT', name, revision, service: now });
      }
      for (const name of this.#entries.keys()) if (!before.has(name)) changes.push({ type: 'PUT', name, revision, service: this.get(name)! });
    }
    // The log cannot bridge a relist: resuming watchers take a snapshot.
    this.#changes = [];
    this.#logStart = revision;
    this.#revision = revision;
    if (changes.length > 0) this.#publish(changes);
    this.#wake();
    this.#watch = this.#store.watch(prefix, revision, (c) => this.#apply(c), (err) => this.#failed(err));
  }

  #failed(err: Error): void {
    if (this.#closed) return;
    if (err instanceof CompactedError) {
      this.#log?.warn({ err: err.message }, 'the store compacted past this node\'s watch: reading the catalog again');
      this.#relist(true).catch((e: unknown) => this.#log?.error({ err: e }, 'could not read the catalog again'));
      return;
    }
    this.#log?.error({ err }, 'the catalog watch failed: reading the catalog again');
    setTimeout(() => {
      if (!this.#closed) this.#relist(true).catch((e: unknown) => this.#log?.error({ err: e }, 'could not read the catalog again'));
    }, 1000).unref();
  }

  /** One batch of store changes: update the entries and publish the services they changed. */
  #apply(c: KvChanges): void {
    if (this.#closed) return;
    const touched = new Map<string, StoredService | undefined>();
    const note = (name: string): void => {
      if (!touched.has(name)) touched.set(name, this.get(name));
    };
    for (const e of c.events) {
      const p = this.#keys.parse(e.kv.key);
      if (!p || p.kind === 'frontend') continue;
      note(p.name);
      if (p.kind === 'service') {
        if (e.type === 'PUT') this.#putService(p.name, e.kv);
        else this.#deleteService(p.name);
      } else if (e.type === 'PUT') {
        this.#putRegistration(e.kv);
      } else {
        this.#deleteRegistration(p.name, p.address);
      }
    }
    const changes: ViewChange[] = [];
    for (const [name, prev] of touched) {
      const now = this.get(name);
      if (now) changes.push({ type: 'PUT', name, revision: c.revision, service: now });
      else if (prev) changes.push({ type: 'DELETE', name, revision: c.revision, service: prev });
    }
    this.#revision = Math.max(this.#revision, c.revision);
    if (changes.length > 0) {
      this.#changes.push(...changes);
      if (this.#changes.length > this.#maxLog) {
        const drop = this.#changes.length - this.#maxLog;
        this.#logStart = this.#changes[drop - 1]!.revision;
        this.#changes = this.#changes.slice(drop);
      }
      this.#publish(changes);
    }
    this.#wake();
  }

  #publish(changes: ViewChange[]): void {
    for (const fn of [...this.#subs]) {
      try {
        fn(changes);
      } catch (err) {
        this.#log?.error({ err }, 'a catalog subscriber failed');
      }
    }
  }

  #wake(): void {
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      if (this.#waiters[i]!.revision <= this.#revision) this.#waiters.splice(i, 1)[0]!.resolve();
    }
  }

  #putService(key: string, kv: KeyValue): void {
    const { definition, owner: written } = decodeServiceValue(kv.value);
    const owner = this.#ownerNames.get(written) ?? (this.#ownerNames.set(written, written), written);
    // The definition's own copy of the name, rather than a slice that keeps the whole key alive.
    const name = definition.name === key ? definition.name : key;
    const prev = this.#entries.get(name);
    if (prev) this.#unindex(name, prev.definition);
    else this.#sortedNames = undefined;
    const registrations = prev?.registrations ?? this.#orphans.get(name);
    this.#orphans.delete(name);
    this.#entries.set(name, { definition, owner, modRevision: kv.modRevision, createRevision: kv.createRevision, registrations });
    this.#index(name, definition);
  }

  #deleteService(name: string): void {
    const prev = this.#entries.get(name);
    if (!prev) return;
    this.#unindex(name, prev.definition);
    this.#entries.delete(name);
    this.#sortedNames = undefined;
  }

  #putRegistration(kv: KeyValue): void {
    const p = this.#keys.parse(kv.key);
    if (p?.kind !== 'registration') return;
    const e = this.#entries.get(p.name);
    let regs = e ? e.registrations : this.#orphans.get(p.name);
    if (!regs) {
      regs = new Map();
      if (e) e.registrations = regs;
      else this.#orphans.set(p.name, regs);
    }
    regs.set(p.address, { kv: kv.lease === undefined ? { modRevision: kv.modRevision } : { lease: kv.lease, modRevision: kv.modRevision }, value: JSON.parse(kv.value) as RegistrationValue });
    if (e) delete e.merged;
  }

  #deleteRegistration(name: string, address: string): void {
    const e = this.#entries.get(name);
    const regs = e ? e.registrations : this.#orphans.get(name);
    regs?.delete(address);
    if (regs?.size === 0) {
      if (e) e.registrations = undefined;
      else this.#orphans.delete(name);
    }
    if (e) delete e.merged;
  }

  #index(name: string, d: ServiceDefinition): void {
    for (const a of d.addresses) {
      const held = this.#byAddress.get(a);
      if (held === undefined || held === name) this.#byAddress.set(a, name);
      else if (typeof held === 'string') this.#byAddress.set(a, new Set([held, name]));
      else held.add(name);
    }
  }

  #unindex(name: string, d: ServiceDefinition): void {
    for (const a of d.addresses) {
      const held = this.#byAddress.get(a);
      if (held === name) this.#byAddress.delete(a);
      else if (held instanceof Set) {
        held.delete(name);
        if (held.size === 1) this.#byAddress.set(a, held.values().next().value!);
      }
    }
  }
}

function merged(e: Entry): StoredService {
  e.merged ??= { definition: withRegistrations(e.definition, e.registrations ?? NO_REGISTRATIONS), owner: e.owner, revision: e.modRevision, createRevision: e.createRevision };
  return e.merged;
}

/** The error a write gets when the node it reached could not apply its own change in time. */
export function notApplied(revision: number): SluiceError {
  return new SluiceError('UNAVAILABLE', `the change is committed (revision ${revision}) but this node has not applied it yet`);
}
