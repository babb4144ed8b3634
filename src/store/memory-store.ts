/**
 * The Store in plain maps: for unit tests, and the reference the SQLite
 * store is tested against (one contract suite runs on both).
 *
 * Definitions are kept as their JSON text, as SQLite keeps them, so that
 * what comes back is exactly what a round trip through the database gives
 * (an optional field set to undefined comes back absent) and no caller can
 * reach into the store's state through an object it passed in or got back.
 */
import type { ServiceDefinition, StoredService } from '../model/definition.js';
import {
  checkDeletePrecondition,
  checkListOptions,
  checkNow,
  checkPutItems,
  checkPutPrecondition,
  checkSaveIds,
  checkSince,
  checkTtl,
  closedError,
  leaseNotFound,
  newLeaseId,
  storedServiceJson,
} from './checks.js';
import { EventFanout } from './event-fanout.js';
import { resolveStoreOptions, type StoreOptions } from './options.js';
import type { FrontendIds, Lease, ListOptions, Store, StoreEvent } from './store.js';

interface Row {
  /** JSON of the definition. */
  definition: string;
  revision: number;
  createRevision: number;
}

interface LogEntry {
  type: StoreEvent['type'];
  name: string;
  revision: number;
  /** JSON of the StoredService the event carries. */
  service: string;
}

interface SavedIds {
  serviceId: number;
  backends: Array<[string, number]>;
}

/** Store in memory; see the Store interface for the semantics. */
export class MemoryStore implements Store {
  readonly #maxEvents: number;
  readonly #fanout: EventFanout;
  readonly #services = new Map<string, Row>();
  /** Service names in byte order; undefined after a create or a delete until the next list. */
  #sortedNames: string[] | undefined = [];
  /** Events (compacted, revision], oldest first: log[i] has revision compacted + 1 + i. */
  readonly #log: LogEntry[] = [];
  #revision = 0;
  #compacted = 0;
  readonly #ids = new Map<string, SavedIds>();
  readonly #leases = new Map<string, Lease>();
  #closed = false;

  /** An empty store. */
  constructor(opts: StoreOptions = {}) {
    const o = resolveStoreOptions(opts);
    this.#maxEvents = o.maxEvents;
    this.#fanout = new EventFanout(o.onListenerError);
  }

  /** See Store.revision. */
  revision(): number {
    this.#checkOpen();
    return this.#revision;
  }

  /** See Store.get. */
  get(name: string): StoredService | undefined {
    this.#checkOpen();
    const row = this.#services.get(name);
    return row === undefined ? undefined : toStored(row);
  }

  /** See Store.list. Names compare as UTF-16 code units (plain `<`), which is SQLite's byte order for the names sluice accepts. */
  list(opts: ListOptions = {}): StoredService[] {
    this.#checkOpen();
    const limit = checkListOptions(opts);
    const { prefix, startAfter } = opts;
    const out: StoredService[] = [];
    if (limit === 0) return out;
    for (const name of this.#names()) {
      if (prefix !== undefined && !name.startsWith(prefix)) continue;
      if (startAfter !== undefined && !(name > startAfter)) continue;
      out.push(toStored(this.#services.get(name)!));
      if (out.length === limit) break;
    }
    return out;
  }

  /** See Store.count. */
  count(prefix?: string): number {
    this.#checkOpen();
    checkListOptions(prefix === undefined ? {} : { prefix });
    if (prefix === undefined || prefix === '') return this.#services.size;
    let n = 0;
    for (const name of this.#services.keys()) if (name.startsWith(prefix)) n++;
    return n;
  }

  /** See Store.put. */
  put(items: Array<{ definition: ServiceDefinition; expectedRevision?: number }>): StoredService[] {
    this.#checkOpen();
    checkPutItems(items);
    // Check every item against the state as the earlier items of the batch
    // leave it, and only then change anything.
    const staged = new Map<string, Row>();
    const writes: Array<[string, Row]> = [];
    let revision = this.#revision;
    for (const { definition, expectedRevision } of items) {
      const { name } = definition;
      const current = staged.get(name) ?? this.#services.get(name);
      checkPutPrecondition(name, current, expectedRevision);
      revision++;
      const row: Row = { definition: JSON.stringify(definition), revision, createRevision: current?.createRevision ?? revision };
      staged.set(name, row);
      writes.push([name, row]);
    }
    for (const [name, row] of writes) {
      if (!this.#services.has(name)) this.#sortedNames = undefined;
      this.#services.set(name, row);
      this.#log.push({ type: 'PUT', name, revision: row.revision, service: rowJson(row) });
    }
    this.#revision = revision;
    this.#compact();
    if (this.#fanout.size > 0) {
      this.#fanout.publish(writes.map(([name, row], i) => ({ type: 'PUT', name, revision: row.revision, service: given(items[i]!.definition, row) })));
    }
    return writes.map(([, row], i) => given(items[i]!.definition, row));
  }

  /** See Store.delete. */
  delete(name: string, expectedRevision?: number): number {
    this.#checkOpen();
    const row = this.#services.get(name);
    checkDeletePrecondition(name, row, expectedRevision);
    const revision = this.#revision + 1;
    this.#services.delete(name);
    this.#sortedNames = undefined;
    this.#log.push({ type: 'DELETE', name, revision, service: rowJson(row!) });
    this.#revision = revision;
    this.#compact();
    if (this.#fanout.size > 0) this.#fanout.publish([{ type: 'DELETE', name, revision, service: toStored(row!) }]);
    return revision;
  }

  /** See Store.eventsSince. */
  eventsSince(since: number): StoreEvent[] {
    this.#checkOpen();
    checkSince(since, this.#compacted, this.#revision);
    return this.#log.slice(since - this.#compacted).map((e) => ({
      type: e.type,
      name: e.name,
      revision: e.revision,
      service: JSON.parse(e.service) as StoredService,
    }));
  }

  /** See Store.compactedRevision. */
  compactedRevision(): number {
    this.#checkOpen();
    return this.#compacted;
  }

  /** See Store.subscribe. Subscribers share each event object and must not modify it. */
  subscribe(fn: (e: StoreEvent) => void): () => void {
    this.#checkOpen();
    return this.#fanout.subscribe(fn);
  }

  /** See Store.loadIds. */
  loadIds(): Map<string, FrontendIds> {
    this.#checkOpen();
    const out = new Map<string, FrontendIds>();
    for (const frontend of [...this.#ids.keys()].sort(byCodeUnits)) {
      const ids = this.#ids.get(frontend)!;
      out.set(frontend, { serviceId: ids.serviceId, backends: new Map(ids.backends) });
    }
    return out;
  }

  /** See Store.saveIds. */
  saveIds(set: Map<string, FrontendIds>, forget: Iterable<string>): void {
    this.#checkOpen();
    const gone = checkSaveIds(set, forget);
    for (const f of gone) this.#ids.delete(f);
    for (const [frontend, ids] of set) {
      this.#ids.set(frontend, { serviceId: ids.serviceId, backends: [...ids.backends] });
    }
  }

  /** See Store.grantLease. */
  grantLease(ttlSeconds: number, nowMs: number): Lease {
    this.#checkOpen();
    checkTtl(ttlSeconds);
    checkNow(nowMs);
    let id = newLeaseId();
    while (this.#leases.has(id)) id = newLeaseId();
    const lease: Lease = { id, ttlSeconds, expiresAtMs: nowMs + ttlSeconds * 1000 };
    this.#leases.set(id, lease);
    return { ...lease };
  }

  /** See Store.keepAlive. */
  keepAlive(id: string, nowMs: number): Lease {
    this.#checkOpen();
    checkNow(nowMs);
    const lease = this.#leases.get(id);
    if (lease === undefined) throw leaseNotFound(id);
    if (lease.expiresAtMs <= nowMs) throw leaseNotFound(id, lease.expiresAtMs);
    lease.expiresAtMs = nowMs + lease.ttlSeconds * 1000;
    return { ...lease };
  }

  /** See Store.getLease. */
  getLease(id: string): Lease | undefined {
    this.#checkOpen();
    const lease = this.#leases.get(id);
    return lease === undefined ? undefined : { ...lease };
  }

  /** See Store.revokeLease. */
  revokeLease(id: string): boolean {
    this.#checkOpen();
    return this.#leases.delete(id);
  }

  /** See Store.expiredLeases. Oldest expiry first, then by id. */
  expiredLeases(nowMs: number): Lease[] {
    this.#checkOpen();
    checkNow(nowMs);
    return [...this.#leases.values()]
      .filter((l) => l.expiresAtMs <= nowMs)
      .sort((a, b) => a.expiresAtMs - b.expiresAtMs || byCodeUnits(a.id, b.id))
      .map((l) => ({ ...l }));
  }

  /** See Store.close. Drops the subscribers; every other method then throws FAILED_PRECONDITION. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#fanout.clear();
  }

  #checkOpen(): void {
    if (this.#closed) throw closedError();
  }

  #names(): string[] {
    this.#sortedNames ??= [...this.#services.keys()].sort(byCodeUnits);
    return this.#sortedNames;
  }

  /** Keep at most maxEvents events: one per revision, so the log holds (compacted, revision]. */
  #compact(): void {
    const target = this.#revision - this.#maxEvents;
    if (target <= this.#compacted) return;
    this.#log.splice(0, target - this.#compacted);
    this.#compacted = target;
  }
}

/** Plain `<` order (not localeCompare), the order SQLite's BINARY collation gives ASCII names. */
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function toStored(row: Row): StoredService {
  return {
    definition: JSON.parse(row.definition) as ServiceDefinition,
    revision: row.revision,
    createRevision: row.createRevision,
  };
}

function rowJson(row: Row): string {
  return storedServiceJson(row.definition, row.revision, row.createRevision);
}

/** A written row as put returns it: the definition given (what was stored), not parsed back. */
function given(definition: ServiceDefinition, row: Row): StoredService {
  return { definition, revision: row.revision, createRevision: row.createRevision };
}
