/**
 * The service catalog: what the API changes, written to the KvStore first
 * and only there. Every node (the one that took the request too) learns of
 * a change from its store watch (view.ts) and reconciles its dataplane to
 * it (node/syncer.ts); nothing here touches a dataplane.
 *
 * Each write reads what it depends on (apply, with a view, from the node's
 * view first; the other writes from the store), checks it (the one schema,
 * compare-and-set revisions, frontend ownership, leases), and commits one
 * store transaction whose compares are the revisions it read: a write that raced
 * another node's is read and checked again (a few times, then ABORTED),
 * unless the caller's own expected revision no longer holds
 * (FAILED_PRECONDITION). Ownership of a frontend (VIP, port, protocol) is a
 * key of its own in the same transaction, so two nodes cannot both give it
 * away.
 *
 * A service as the API shows it is its applied definition (the static
 * backends) followed by its registered backends (keys attached to leases,
 * which the store deletes when a lease ends), in address order. Its
 * revision and create revision are its definition key's: a registration
 * coming or going does not change them.
 *
 * Every service has an owner, the source that writes it (API_OWNER, or
 * "kubernetes" for the kube-proxy mode): a Catalog writes as one owner, and
 * a write to a service of another owner is refused (FAILED_PRECONDITION)
 * rather than taken over; each source of services keeps to its own.
 *
 * Errors are SluiceErrors whose field path is relative to the method's
 * arguments ("[3].ports[0].port", "leaseId"); the gRPC edge re-roots them.
 */
import { SluiceError, invalid } from '../errors.js';
import {
  API_OWNER,
  normaliseDefinition,
  sameDefinition,
  type BackendDefinition,
  type BackendDefinitionState,
  type ServiceDefinition,
  type StoredService,
} from '../model/definition.js';
import { canonicalAddress, hostPort, isAddressProblem, parseAddress } from '../model/address.js';
import { checkServiceName, parse, weightSchema } from '../model/schema.js';
import { checkLeaseTtl } from '../store/lease.js';
import type { Compare, KeyValue, KvStore, LeaseInfo, Operation } from '../store/kv.js';
import { joinPath, withField } from '../field-path.js';
import { CatalogKeys, decodeServiceValue, encodeServiceValue, type RegistrationValue } from './keys.js';
import type { CatalogView } from './view.js';

/**
 * Up to this many keys are read one by one, all at once; more (a bulk
 * batch) are read as their whole prefix in one range: a thousand reads at
 * once queue in etcd's client long enough to run out of their deadlines.
 */
const FEW_READS = 16;

/** One item of apply. */
export interface ApplyItem {
  /** The definition, not yet normalised (the schema checks it). */
  definition: unknown;
  /** Compare-and-set: undefined unconditional, 0 create only, n must be at n. */
  expectedRevision?: number;
}

/** Arguments of registerBackend. */
export interface RegisterArgs {
  service: string;
  address: string;
  /** Unset: the registration's current weight, or 1. */
  weight?: number;
  /** TTL of a new lease, seconds (default from the options); ignored with `leaseId`. */
  ttlSeconds?: number;
  /** Register under this live lease instead of a new one. */
  leaseId?: string;
}

/** Options of a Catalog. */
export interface CatalogOptions {
  store: KvStore;
  /** The key layout (default: under "/sluice"). */
  keys?: CatalogKeys;
  /** TTL of a lease when a registration gives none, seconds (default 10). */
  defaultLeaseTtlSeconds?: number;
  /** The owner this catalog writes as (default API_OWNER): lower-case letters, digits and "-", at most 63. */
  owner?: string;
  /** How many times a write that raced another is tried again before ABORTED (default 8). */
  retries?: number;
  /**
   * Called with the services a write would leave (and those it deletes)
   * before it commits: the node that takes the request refuses a change its
   * dataplane cannot hold (RESOURCE_EXHAUSTED naming the flag).
   */
  precheck?: (next: readonly ServiceDefinition[], removed: readonly ServiceDefinition[]) => void;
  /**
   * This node's view of the store: apply decides from it first, without
   * reading the store (its compares catch a view that is behind, and a
   * decision that is not a write, an error or "unchanged", is taken again
   * from the store).
   */
  view?: CatalogView;
}

/** What a read of one service found: its definition key and its registrations. */
interface Current {
  kv: KeyValue | undefined;
  /** The applied definition (static backends). */
  definition: ServiceDefinition | undefined;
  /** Who wrote it (undefined while there is no definition). */
  owner: string | undefined;
  registrations: Map<string, { kv: KeyValue; value: RegistrationValue }>;
}

/** A write that lost a race: read and check again. */
class Raced extends Error {}

/** Refusals that depend on what was read (a view behind the store may have given them). */
const DECIDED: ReadonlySet<string> = new Set(['INVALID_ARGUMENT', 'FAILED_PRECONDITION', 'ALREADY_EXISTS', 'NOT_FOUND', 'RESOURCE_EXHAUSTED']);

const STATES: readonly BackendDefinitionState[] = ['active', 'draining', 'maintenance'];

/** The domain's writes (and linearizable reads) over a KvStore. */
export class Catalog {
  readonly keys: CatalogKeys;
  /** The owner of the services this catalog writes. */
  readonly owner: string;
  private readonly store: KvStore;
  private readonly ttl: number;
  private readonly retries: number;
  private readonly precheck: CatalogOptions['precheck'];
  private readonly view: CatalogView | undefined;

  constructor(opts: CatalogOptions) {
    this.store = opts.store;
    this.keys = opts.keys ?? new CatalogKeys('/sluice');
    this.owner = opts.owner ?? API_OWNER;
    if (!/^[a-z][a-z0-9-]{0,62}$/.test(this.owner)) throw new Error(`Catalog: owner ${JSON.stringify(this.owner)} is not lower-case letters, digits and "-" (at most 63)`);
    this.ttl = opts.defaultLeaseTtlSeconds ?? 10;
    this.retries = opts.retries ?? 8;
    this.precheck = opts.precheck;
    this.view = opts.view;
  }

  /** One service as the API shows it; NOT_FOUND (field `name`) if absent. */
  async get(name: string, field = 'name'): Promise<StoredService> {
    const cur = await this.read(checkServiceName(name, field));
    const s = merged(cur);
    if (!s) throw new SluiceError('NOT_FOUND', `no service named ${JSON.stringify(name)}`, { field });
    return s;
  }

  /**
   * Create or replace services, all or nothing, each item its own
   * definition. Registered backends stay (a definition that names one makes
   * it static; one it names with the registration's lease id updates the
   * registration's weight and state). A service already as given is left
   * alone and named in `unchanged`; a batch of unchanged services makes no
   * revision. Fields are "[i].<field>".
   */
  async apply(items: readonly ApplyItem[]): Promise<{ services: StoredService[]; revision: number; unchanged: string[] }> {
    if (!Array.isArray(items) || items.length === 0) throw new SluiceError('INVALID_ARGUMENT', 'at least one service is required');
    const wanted = items.map((item, i) => {
      const path = `[${i}]`;
      try {
        return { item, path, definition: normaliseDefinition(item.definition) };
      } catch (err) {
        throw withField(err, (f) => joinPath(path, f));
      }
    });
    const seen = new Map<string, number>();
    wanted.forEach((w, i) => {
      const first = seen.get(w.definition.name);
      if (first !== undefined) throw invalid(joinPath(w.path, 'name'), `${w.definition.name} is also item ${first} of this batch`);
      seen.set(w.definition.name, i);
    });
    return this.retry(async (attempt) => {
      if (attempt > 0 || this.view === undefined) return this.applyOnce(wanted, undefined);
      try {
        return await this.applyOnce(wanted, this.view);
      } catch (err) {
        // Decided from a view that may be behind the store: a refusal is
        // taken again from the store's own keys.
        if (err instanceof SluiceError && DECIDED.has(err.code)) throw new Raced();
        throw err;
      }
    });
  }

  /**
   * One try of apply, reading the store, or `view` (then the compares
   * guard every key it read, those of unchanged items too, and a batch
   * with nothing to write is Raced: "unchanged" must come from the store).
   */
  private async applyOnce(
    wanted: ReadonlyArray<{ item: ApplyItem; path: string; definition: ServiceDefinition }>,
    view: CatalogView | undefined,
  ): Promise<{ services: StoredService[]; revision: number; unchanged: string[] }> {
    const names = wanted.map((w) => w.definition.name);
    const currents = view ? this.fromView(view, names) : await this.readMany(names);
    const compares: Compare[] = [];
    const ops: Operation[] = [];
    const unchanged: string[] = [];
    const next = new Map<string, { stat: ServiceDefinition; cur: Current }>();
    for (const w of wanted) {
      const name = w.definition.name;
      const cur = currents.get(name)!;
      checkExpected(name, cur.kv, w.item.expectedRevision, joinPath(w.path, 'expectedRevision'));
      this.checkOwner(name, cur, joinPath(w.path, 'name'));
      const { stat, regOps, regCompares } = this.split(w.definition, cur, w.path);
      if (cur.definition && sameDefinition(cur.definition, stat) && regOps.length === 0) {
        unchanged.push(name);
        if (view) compares.push({ key: this.keys.service(name), modRevision: cur.kv!.modRevision });
        continue;
      }
      checkMerged(stat, cur, regOps, w.path, this.keys);
      compares.push({ key: this.keys.service(name), modRevision: cur.kv?.modRevision ?? 0 }, ...regCompares);
      ops.push({ put: this.keys.service(name), value: encodeServiceValue(stat, this.owner) }, ...regOps);
      next.set(name, { stat, cur });
    }
    if (next.size === 0) {
      if (view) throw new Raced();
      return { services: wanted.map((w) => merged(currents.get(w.definition.name)!)!), revision: await this.store.revision(), unchanged };
    }
    await this.claims(wanted.filter((w) => next.has(w.definition.name)), currents, compares, ops, view);
    // Each service's registration writes, found in one pass (a bulk load of
    // 1,000 services would otherwise parse its thousands of keys once per
    // service), and the definitions the write leaves.
    const regOps = registrationOpsByService(ops, this.keys);
    const after = new Map<string, ServiceDefinition>();
    for (const n of next.values()) after.set(n.stat.name, mergedDefinition(n.stat, n.cur.registrations, regOps.get(n.stat.name) ?? [], this.keys));
    this.precheck?.([...after.values()], []);
    const r = await this.store.txn(compares, ops);
    if (!r.succeeded) throw new Raced();
    // The compares held, so the store holds exactly what was read plus
    // these writes: the answer is built from them rather than read again.
    const services = wanted.map((w): StoredService => {
      const name = w.definition.name;
      const cur = currents.get(name)!;
      const definition = after.get(name);
      if (definition === undefined) return merged(cur)!;
      return { definition, owner: this.owner, revision: r.revision, createRevision: cur.kv?.createRevision ?? r.revision };
    });
    return { services, revision: r.revision, unchanged };
  }

  /** Delete a service (its registrations too); returns the revision of the deletion. Fields: `name`, `expectedRevision`. */
  async delete(name: string, expectedRevision?: number): Promise<number> {
    checkServiceName(name, 'name');
    return this.retry(async () => {
      const cur = await this.read(name);
      if (!cur.kv || !cur.definition) throw new SluiceError('NOT_FOUND', `no service named ${JSON.stringify(name)}`, { field: 'name' });
      checkExpected(name, cur.kv, expectedRevision, 'expectedRevision');
      this.checkOwner(name, cur, 'name');
      const compares: Compare[] = [{ key: this.keys.service(name), modRevision: cur.kv.modRevision }];
      const ops: Operation[] = [{ delete: this.keys.service(name) }, { deletePrefix: this.keys.registrationsOf(name) }];
      for (const f of frontendsOf(cur.definition)) {
        const key = this.keys.frontend(f.address, f.port, f.protocol);
        compares.push({ key, value: name });
        ops.push({ delete: key });
      }
      this.precheck?.([], [cur.definition]);
      const r = await this.store.txn(compares, ops);
      if (!r.succeeded) throw new Raced();
      return r.revision;
    });
  }

  /**
   * Register a backend under a lease (a new one, or `leaseId`), or move a
   * registered backend to it (its state is kept). A static backend is
   * refused (ALREADY_EXISTS). Fields: `service`, `address`, `weight`,
   * `ttlSeconds`, `leaseId`.
   */
  async registerBackend(args: RegisterArgs): Promise<{ lease: LeaseInfo; service: StoredService }> {
    const name = checkServiceName(args.service, 'service');
    args = { ...args, address: checkBackendAddress(args.address, 'address') };
    if (args.weight !== undefined) weight(args.weight, 'weight');
    let lease: LeaseInfo | undefined;
    if (args.leaseId !== undefined && args.leaseId !== '') {
      lease = await this.store.lease(args.leaseId);
      if (!lease) throw new SluiceError('NOT_FOUND', `no live lease ${JSON.stringify(args.leaseId)}`, { field: 'leaseId' });
    } else {
      try {
        checkLeaseTtl(args.ttlSeconds ?? this.ttl);
      } catch (err) {
        throw withField(err, () => 'ttlSeconds');
      }
    }
    let granted: LeaseInfo | undefined;
    try {
      const service = await this.retry(async () => {
        const cur = await this.read(name);
        if (!cur.kv || !cur.definition) throw new SluiceError('NOT_FOUND', `no service named ${JSON.stringify(name)}`, { field: 'service' });
        this.checkOwner(name, cur, 'service');
        if (cur.definition.backends.some((b) => b.address === args.address)) {
          throw new SluiceError(
            'ALREADY_EXISTS',
            `${args.address} is a static backend of ${name} (defined without a lease); remove it from the definition first if it should live by a lease`,
            { field: 'address' },
          );
        }
        const prev = cur.registrations.get(args.address);
        const value: RegistrationValue = { weight: args.weight ?? prev?.value.weight ?? 1, state: prev?.value.state ?? 'active' };
        lease ??= granted ??= await this.store.grantLease(args.ttlSeconds ?? this.ttl);
        const key = this.keys.registration(name, args.address);
        const op: Operation = { put: key, value: JSON.stringify(value), lease: lease.id };
        try {
          checkMerged(cur.definition, cur, [op], '', this.keys);
        } catch (err) {
          throw registrationField(err);
        }
        if (prev && prev.kv.lease === lease.id && prev.value.weight === value.weight && prev.value.state === value.state) return merged(cur)!;
        this.precheck?.([mergedDefinition(cur.definition, cur.registrations, [op], this.keys)], []);
        const r = await this.store.txn(
          [{ key: this.keys.service(name), modRevision: cur.kv.modRevision }, { key, modRevision: prev?.kv.modRevision ?? 0 }],
          [op],
        );
        if (!r.succeeded) throw new Raced();
        return merged(await this.read(name))!;
      });
      return { lease: lease!, service };
    } catch (err) {
      if (granted) await this.store.revokeLease(granted.id).catch(() => undefined);
      throw err;
    }
  }

  /** Renew a lease; NOT_FOUND (field `leaseId`) if it is unknown or expired. */
  async keepAlive(leaseId: string): Promise<LeaseInfo> {
    if (typeof leaseId !== 'string' || leaseId === '') throw invalid('leaseId', 'required');
    try {
      return await this.store.keepAlive(leaseId);
    } catch (err) {
      if (err instanceof SluiceError && err.code === 'NOT_FOUND') {
        throw new SluiceError('NOT_FOUND', `no live lease ${JSON.stringify(leaseId)} (expired or revoked: register again)`, { field: 'leaseId', cause: err });
      }
      throw err;
    }
  }

  /** Remove a backend (registered or static); a lease left with no key is revoked. Fields: `service`, `address`. */
  async deregisterBackend(service: string, address: string): Promise<StoredService> {
    const name = checkServiceName(service, 'service');
    address = checkBackendAddress(address, 'address', false);
    let orphan: string | undefined;
    const out = await this.retry(async () => {
      const cur = await this.read(name);
      if (!cur.kv || !cur.definition) throw new SluiceError('NOT_FOUND', `no service named ${JSON.stringify(name)}`, { field: 'service' });
      this.checkOwner(name, cur, 'service');
      const reg = cur.registrations.get(address);
      if (reg) {
        const key = this.keys.registration(name, address);
        const r = await this.store.txn([{ key, modRevision: reg.kv.modRevision }], [{ delete: key }]);
        if (!r.succeeded) throw new Raced();
        orphan = reg.kv.lease;
        return merged(await this.read(name))!;
      }
      if (!cur.definition.backends.some((b) => b.address === address)) {
        throw new SluiceError('NOT_FOUND', `service ${name} has no backend ${address}`, { field: 'address' });
      }
      const stat = { ...cur.definition, backends: cur.definition.backends.filter((b) => b.address !== address) };
      return this.putStatic(name, cur, stat);
    });
    if (orphan !== undefined && (await this.store.leaseKeys(orphan)).length === 0) await this.store.revokeLease(orphan);
    return out;
  }

  /** Set a backend's state, registered or static. Fields: `service`, `address`, `state`. */
  async setBackendState(service: string, address: string, state: BackendDefinitionState): Promise<StoredService> {
    if (!STATES.includes(state)) throw invalid('state', `must be active, draining or maintenance, got ${JSON.stringify(state)}`);
    const name = checkServiceName(service, 'service');
    address = checkBackendAddress(address, 'address', false);
    return this.retry(async () => {
      const cur = await this.read(name);
      if (!cur.kv || !cur.definition) throw new SluiceError('NOT_FOUND', `no service named ${JSON.stringify(name)}`, { field: 'service' });
      this.checkOwner(name, cur, 'service');
      const reg = cur.registrations.get(address);
      if (reg) {
        if (reg.value.state === state) return merged(cur)!;
        const key = this.keys.registration(name, address);
        const op: Operation = { put: key, value: JSON.stringify({ ...reg.value, state }), ...(reg.kv.lease ? { lease: reg.kv.lease } : {}) };
        this.precheck?.([mergedDefinition(cur.definition, cur.registrations, [op], this.keys)], []);
        const r = await this.store.txn([{ key, modRevision: reg.kv.modRevision }], [op]);
        if (!r.succeeded) throw new Raced();
        return merged(await this.read(name))!;
      }
      const b = cur.definition.backends.find((x) => x.address === address);
      if (!b) throw new SluiceError('NOT_FOUND', `service ${name} has no backend ${address}`, { field: 'address' });
      if (b.state === state) return merged(cur)!;
      const stat = { ...cur.definition, backends: cur.definition.backends.map((x) => (x.address === address ? { ...x, state } : x)) };
      return this.putStatic(name, cur, stat);
    });
  }

  // ---------------------------------------------------------------- internals

  /** Put a new static definition of an existing service (its frontends unchanged). */
  private async putStatic(name: string, cur: Current, stat: ServiceDefinition): Promise<StoredService> {
    let def: ServiceDefinition;
    try {
      def = normaliseDefinition(stat);
    } catch (err) {
      throw nest(err, 'state');
    }
    this.precheck?.([mergedDefinition(def, cur.registrations, [], this.keys)], []);
    const r = await this.store.txn([{ key: this.keys.service(name), modRevision: cur.kv!.modRevision }], [{ put: this.keys.service(name), value: encodeServiceValue(def, this.owner) }]);
    if (!r.succeeded) throw new Raced();
    return merged(await this.read(name))!;
  }

  /** FAILED_PRECONDITION naming `field` if another owner wrote the service. */
  private checkOwner(name: string, cur: Current, field: string): void {
    if (cur.owner === undefined || cur.owner === this.owner) return;
    throw new SluiceError(
      'FAILED_PRECONDITION',
      `service ${name} is owned by ${JSON.stringify(cur.owner)}, not ${JSON.stringify(this.owner)}: change it through its owner (or delete it there first)`,
      { field },
    );
  }

  /** Run `fn` again while it loses races with other writers. */
  private async retry<T>(fn: (attempt: number) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn(attempt);
      } catch (err) {
        if (!(err instanceof Raced)) throw err;
        if (attempt >= this.retries) {
          throw new SluiceError('ABORTED', `the change raced other writers ${attempt + 1} times: try again`);
        }
        // The first try may have decided from the view: the store's keys at once.
        if (attempt > 0) await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
      }
    }
  }

  /** Services' keys as the view holds them. */
  private fromView(view: CatalogView, names: readonly string[]): Map<string, Current> {
    const out = new Map<string, Current>();
    for (const name of names) {
      const v = view.stored(name);
      if (!v) {
        out.set(name, { kv: undefined, definition: undefined, owner: undefined, registrations: new Map() });
        continue;
      }
      const registrations = new Map<string, { kv: KeyValue; value: RegistrationValue }>();
      for (const [address, r] of v.registrations) {
        registrations.set(address, { kv: { key: this.keys.registration(name, address), value: '', createRevision: 0, ...r.kv }, value: r.value });
      }
      const kv: KeyValue = { key: this.keys.service(name), value: '', modRevision: v.modRevision, createRevision: v.createRevision };
      out.set(name, { kv, definition: v.definition, owner: v.owner, registrations });
    }
    return out;
  }

  /** One service's keys. */
  private async read(name: string): Promise<Current> {
    const [kv, regs] = await Promise.all([this.store.get(this.keys.service(name)), this.store.range(this.keys.registrationsOf(name))]);
    return current(kv, regs.kvs, this.keys);
  }

  /**
   * Several services' keys from the store: one by one for a few, the whole
   * prefixes for many (a thousand reads at once outlast their deadlines in
   * etcd's client). Bulk writes read the view instead (apply), and come
   * here only when the view was behind.
   */
  private async readMany(names: readonly string[]): Promise<Map<string, Current>> {
    const out = new Map<string, Current>();
    if (names.length <= FEW_READS) {
      await Promise.all(names.map(async (n) => out.set(n, await this.read(n))));
      return out;
    }
    const [services, regs] = await Promise.all([this.store.range(this.keys.services), this.store.range(this.keys.registrations)]);
    const want = new Set(names);
    const byName = new Map<string, KeyValue[]>();
    for (const kv of regs.kvs) {
      const p = this.keys.parse(kv.key);
      if (p?.kind !== 'registration' || !want.has(p.name)) continue;
      let list = byName.get(p.name);
      if (!list) byName.set(p.name, (list = []));
      list.push(kv);
    }
    const kvs = new Map(services.kvs.map((kv) => [kv.key, kv]));
    for (const n of names) out.set(n, current(kvs.get(this.keys.service(n)), byName.get(n) ?? [], this.keys));
    return out;
  }

  /** Keys under `prefix`, in order: one by one for a few, the whole prefix in one range for many. */
  private async readKeys(keys: readonly string[], prefix: string): Promise<Array<KeyValue | undefined>> {
    if (keys.length <= FEW_READS) return Promise.all(keys.map((k) => this.store.get(k)));
    const all = new Map((await this.store.range(prefix)).kvs.map((kv) => [kv.key, kv]));
    return keys.map((k) => all.get(k));
  }

  /**
   * Static part of a definition (registered backends left to their keys),
   * and the registration writes it implies: a backend it names that is
   * registered becomes static (its registration deleted), unless it names
   * the registration's lease, which updates the registration.
   */
  private split(def: ServiceDefinition, cur: Current, path: string): { stat: ServiceDefinition; regOps: Operation[]; regCompares: Compare[] } {
    const regOps: Operation[] = [];
    const regCompares: Compare[] = [];
    const backends: BackendDefinition[] = [];
    def.backends.forEach((b, i) => {
      const reg = cur.registrations.get(b.address);
      if (b.leaseId === undefined) {
        backends.push(b);
        if (reg) {
          const key = this.keys.registration(def.name, b.address);
          regOps.push({ delete: key });
          regCompares.push({ key, modRevision: reg.kv.modRevision });
        }
        return;
      }
      if (!reg || reg.kv.lease !== b.leaseId) {
        throw invalid(joinPath(path, `backends[${i}].leaseId`), `no live registration of ${b.address} under lease ${JSON.stringify(b.leaseId)}: register it (RegisterBackend), or drop leaseId to make it static`);
      }
      if (reg.value.weight !== b.weight || reg.value.state !== b.state) {
        const key = this.keys.registration(def.name, b.address);
        regOps.push({ put: key, value: JSON.stringify({ weight: b.weight, state: b.state }), lease: b.leaseId });
        regCompares.push({ key, modRevision: reg.kv.modRevision });
      }
    });
    const stat: ServiceDefinition = { ...def, backends };
    return { stat, regOps, regCompares };
  }

  /**
   * Frontend ownership for a batch: each new frontend's key must be free or
   * the item's own (or released by another item of the batch); adds the
   * compares and the claim writes and releases.
   */
  private async claims(
    items: ReadonlyArray<{ definition: ServiceDefinition; path: string }>,
    currents: ReadonlyMap<string, Current>,
    compares: Compare[],
    ops: Operation[],
    view: CatalogView | undefined,
  ): Promise<void> {
    const inBatch = new Set(items.map((w) => w.definition.name));
    const want = new Map<string, { name: string; path: string; field: string; text: string }>();
    const released = new Set<string>();
    /** Each key's frontend, for the view (which knows frontends by their service's definition). */
    const frontendOf = new Map<string, { address: string; port: number; protocol: string }>();
    const keyOf = (f: { address: string; port: number; protocol: string }): string => {
      const key = this.keys.frontend(f.address, f.port, f.protocol);
      frontendOf.set(key, f);
      return key;
    };
    for (const w of items) {
      const d = w.definition;
      d.addresses.forEach((address, i) => {
        d.ports.forEach((p, j) => {
          const key = keyOf({ address, port: p.port, protocol: p.protocol });
          const text = `${hostPort(address, p.port)}/${p.protocol}`;
          const other = want.get(key);
          if (other && other.name !== d.name) {
            throw invalid(joinPath(w.path, `addresses[${i}]`), `${text} (with ports[${j}]) is also claimed by item ${other.path} of this batch (${JSON.stringify(other.name)})`);
          }
          want.set(key, { name: d.name, path: w.path, field: joinPath(w.path, `addresses[${i}]`), text: `${text} (with ports[${j}])` });
        });
      });
      const prev = currents.get(d.name)?.definition;
      if (prev) for (const f of frontendsOf(prev)) released.add(keyOf(f));
    }
    const keys = [...new Set([...want.keys(), ...released])];
    // From the view: the service whose definition has the frontend, which
    // is what its key holds (both are written in one transaction); compared
    // by that value, as the view has no revision of the frontend keys.
    const read: Array<{ value: string; modRevision?: number } | undefined> = view
      ? keys.map((k) => {
          const f = frontendOf.get(k)!;
          const holder = view.frontendService(f.address, f.port, f.protocol);
          return holder === undefined ? undefined : { value: holder };
        })
      : await this.readKeys(keys, this.keys.frontends);
    const held = (key: string, kv: { value: string; modRevision?: number }): Compare =>
      kv.modRevision === undefined ? { key, value: kv.value } : { key, modRevision: kv.modRevision };
    keys.forEach((key, i) => {
      const kv = read[i];
      const claim = want.get(key);
      if (claim) {
        if (kv && kv.value !== claim.name && !inBatch.has(kv.value)) {
          throw invalid(claim.field, `${claim.text} is already owned by service ${JSON.stringify(kv.value)}`);
        }
        compares.push(kv ? held(key, kv) : { key, modRevision: 0 });
        if (!kv || kv.value !== claim.name) ops.push({ put: key, value: claim.name });
      } else if (kv && inBatch.has(kv.value)) {
        compares.push(held(key, kv));
        ops.push({ delete: key });
      }
    });
  }
}

/** What a read of a service's keys found. */
function current(kv: KeyValue | undefined, regs: readonly KeyValue[], keys: CatalogKeys): Current {
  const registrations = new Map<string, { kv: KeyValue; value: RegistrationValue }>();
  for (const r of regs) {
    const p = keys.parse(r.key);
    if (p?.kind === 'registration') registrations.set(p.address, { kv: r, value: JSON.parse(r.value) as RegistrationValue });
  }
  const stored = kv ? decodeServiceValue(kv.value) : undefined;
  return { kv, definition: stored?.definition, owner: stored?.owner, registrations };
}

/** The service as the API shows it, or undefined if its definition key is absent. */
function merged(cur: Current): StoredService | undefined {
  if (!cur.kv || !cur.definition) return undefined;
  return { definition: withRegistrations(cur.definition, cur.registrations), owner: cur.owner ?? API_OWNER, revision: cur.kv.modRevision, createRevision: cur.kv.createRevision };
}

/** A definition's static backends, then its registrations in address order. */
export function withRegistrations(def: ServiceDefinition, registrations: ReadonlyMap<string, { kv: Pick<KeyValue, 'lease'>; value: RegistrationValue }>): ServiceDefinition {
  if (registrations.size === 0) return def;
  const regs = [...registrations.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([address, r]): BackendDefinition => ({ address, weight: r.value.weight, state: r.value.state, ...(r.kv.lease ? { leaseId: r.kv.lease } : {}) }));
  return { ...def, backends: [...def.backends, ...regs] };
}

/** The registration writes among `ops`, by service, in their order. */
function registrationOpsByService(ops: readonly Operation[], keys: CatalogKeys): Map<string, Operation[]> {
  const out = new Map<string, Operation[]>();
  for (const op of ops) {
    const key = 'put' in op ? op.put : 'delete' in op ? op.delete : undefined;
    const p = key === undefined || !key.startsWith(keys.registrations) ? undefined : keys.parse(key);
    if (p?.kind !== 'registration') continue;
    let list = out.get(p.name);
    if (!list) out.set(p.name, (list = []));
    list.push(op);
  }
  return out;
}

/** The merged definition a write would leave: `stat` with the registrations after `ops`. */
function mergedDefinition(stat: ServiceDefinition, regs: ReadonlyMap<string, { kv: KeyValue; value: RegistrationValue }>, ops: readonly Operation[], keys: CatalogKeys): ServiceDefinition {
  const next = new Map(regs);
  for (const op of ops) {
    const key = 'put' in op ? op.put : 'delete' in op ? op.delete : undefined;
    const p = key === undefined ? undefined : keys.parse(key);
    if (p?.kind !== 'registration' || p.name !== stat.name) continue;
    if ('put' in op) {
      const kv: KeyValue = { key: op.put, value: op.value, createRevision: 0, modRevision: 0, ...(op.lease ? { lease: op.lease } : {}) };
      next.set(p.address, { kv, value: JSON.parse(op.value) as RegistrationValue });
    } else {
      next.delete(p.address);
    }
  }
  return withRegistrations(stat, next);
}

/** The merged definition must still be a valid one (backend count, a backend on a VIP). */
function checkMerged(stat: ServiceDefinition, cur: Current, ops: readonly Operation[], path: string, keys: CatalogKeys): void {
  // Without registrations the merged definition is `stat`: apply's static
  // part of a normalised definition, valid as it is (most services, so a
  // bulk load does not run the schema twice).
  if (cur.registrations.size === 0 && ops.length === 0) return;
  try {
    normaliseDefinition(mergedDefinition(stat, cur.registrations, ops, keys));
  } catch (err) {
    throw withField(err, (f) => joinPath(path, f));
  }
}

function frontendsOf(d: ServiceDefinition): Array<{ address: string; port: number; protocol: string }> {
  return d.addresses.flatMap((address) => d.ports.map((p) => ({ address, port: p.port, protocol: p.protocol })));
}

/** Compare-and-set against what was read. */
function checkExpected(name: string, kv: KeyValue | undefined, expected: number | undefined, field: string): void {
  if (expected === undefined) return;
  if (!Number.isSafeInteger(expected) || expected < 0) throw invalid(field, `must be a non-negative integer, got ${JSON.stringify(expected)}`);
  if (expected === 0) {
    if (kv) throw new SluiceError('ALREADY_EXISTS', `service ${JSON.stringify(name)} already exists (revision ${kv.modRevision})`, { field });
    return;
  }
  if (!kv) throw new SluiceError('NOT_FOUND', `no service named ${JSON.stringify(name)} (expected revision ${expected})`, { field });
  if (kv.modRevision !== expected) {
    throw new SluiceError('FAILED_PRECONDITION', `service ${JSON.stringify(name)} is at revision ${kv.modRevision}, not ${expected}`, { field });
  }
}

/**
 * A backend address argument in its one text (RFC 5952 for IPv6), as the
 * catalog keys it. `usable`: refuse the ranges no backend may be in (a
 * removal names what is there, whatever it is).
 */
function checkBackendAddress(address: unknown, field: string, usable = true): string {
  const r = parseAddress(address);
  if (!isAddressProblem(r)) return r.text;
  if (r.kind === 'syntax') throw invalid(field, `must be an IPv4 or IPv6 address, got ${JSON.stringify(address)}`);
  if (usable) throw invalid(field, `${String(address)} cannot be a backend: it is ${r.why}`);
  return canonicalAddress(address)!;
}

function weight(w: unknown, field: string): number {
  try {
    return parse(weightSchema, w);
  } catch (err) {
    if (!(err instanceof SluiceError)) throw err;
    throw new SluiceError(err.code, err.message, { field });
  }
}

/** A definition error of a registration, named by the registration's fields. */
function registrationField(err: unknown): unknown {
  if (!(err instanceof SluiceError) || err.field === undefined) return err;
  if (/^backends\[\d+\]\.weight$/.test(err.field)) return withField(err, () => 'weight');
  if (/^backends(\[\d+\](\.address)?)?$/.test(err.field)) return withField(err, () => 'address');
  return nest(err, 'service');
}

/** The same error under `field`, its own field path moved into the description. */
function nest(err: unknown, field: string): unknown {
  if (!(err instanceof SluiceError)) return err;
  // The message already starts with the error's own field path, if it has one.
  return new SluiceError(err.code, err.message, { field, cause: err.cause });
}
