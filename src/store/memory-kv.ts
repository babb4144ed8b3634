/**
 * The KvStore in memory: for unit tests, and the reference the SQLite and
 * etcd stores are held to (one contract suite runs on all three).
 *
 * Watchers are called asynchronously (a microtask after the commit), in
 * revision order, as etcd's are: a watcher never runs inside the write
 * that caused its event.
 */
import { SluiceError, invalid } from '../errors.js';
import {
  CompactedError,
  type Compare,
  type KeyValue,
  type KvChanges,
  type KvEvent,
  type KvStore,
  type KvWatch,
  type LeaseInfo,
  type Operation,
  type RangeOptions,
  type TxnResult,
} from './kv.js';
import { checkLeaseTtl, newLeaseId } from './lease.js';

/** Options of the memory store. */
export interface MemoryKvOptions {
  /** Wall clock in ms, for leases (default Date.now). */
  now?: () => number;
  /** How often expired leases are looked for, in ms (default 200; 0: only when expireLeases() is called). */
  leaseCheckMs?: number;
  /** Revisions of history kept for watches (default 10,000); older ones are compacted. */
  historyRevisions?: number;
}

interface Lease {
  id: string;
  ttlSeconds: number;
  expiresAtMs: number;
  keys: Set<string>;
}

interface Watcher {
  prefix: string;
  onChanges: (c: KvChanges) => void;
  onError: (err: Error) => void;
  active: boolean;
}

/** The KvStore in plain maps. */
export class MemoryKvStore implements KvStore {
  readonly #kvs = new Map<string, KeyValue>();
  /** Keys in byte order; undefined when a key was added or removed since the last sort. */
  #sorted: string[] | undefined = [];
  /** Committed changes (compacted, revision], by revision. */
  readonly #history: KvChanges[] = [];
  #revision = 0;
  #compacted = 0;
  readonly #leases = new Map<string, Lease>();
  readonly #watchers = new Set<Watcher>();
  readonly #now: () => number;
  readonly #historyRevisions: number;
  readonly #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: MemoryKvOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#historyRevisions = opts.historyRevisions ?? 10_000;
    const every = opts.leaseCheckMs ?? 200;
    if (every > 0) {
      this.#timer = setInterval(() => this.expireLeases(), every);
      this.#timer.unref();
    }
  }

  async revision(): Promise<number> {
    this.#open();
    return this.#revision;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.#open();
    const kv = this.#kvs.get(key);
    return kv && { ...kv };
  }

  async range(prefix: string, opts: RangeOptions = {}): Promise<{ kvs: KeyValue[]; revision: number; more: boolean }> {
    this.#open();
    const keys = this.#keys();
    // The first key at or after the prefix, or after the cursor when it is beyond the prefix.
    const strict = opts.startAfter !== undefined && opts.startAfter >= prefix;
    const from = strict ? opts.startAfter! : prefix;
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (keys[mid]! < from || (strict && keys[mid] === from)) lo = mid + 1;
      else hi = mid;
    }
    const limit = opts.limit ?? Infinity;
    const kvs: KeyValue[] = [];
    let more = false;
    for (let i = lo; i < keys.length && keys[i]!.startsWith(prefix); i++) {
      if (kvs.length >= limit) {
        more = true;
        break;
      }
      kvs.push({ ...this.#kvs.get(keys[i]!)! });
    }
    return { kvs, revision: this.#revision, more };
  }

  async txn(compares: readonly Compare[], operations: readonly Operation[]): Promise<TxnResult> {
    this.#open();
    for (const c of compares) {
      const kv = this.#kvs.get(c.key);
      const holds = 'modRevision' in c ? (kv?.modRevision ?? 0) === c.modRevision : kv !== undefined && kv.value === c.value;
      if (!holds) return { succeeded: false, revision: this.#revision };
    }
    for (const op of operations) {
      if ('put' in op && op.lease !== undefined && !this.#live(op.lease)) {
        throw new SluiceError('NOT_FOUND', `lease ${op.lease} does not exist (expired or revoked)`);
      }
    }
    if (operations.length === 0) return { succeeded: true, revision: this.#revision };
    this.#commit(operations);
    return { succeeded: true, revision: this.#revision };
  }

  watch(prefix: string, afterRevision: number, onChanges: (c: KvChanges) => void, onError: (err: Error) => void): KvWatch {
    this.#open();
    const w: Watcher = { prefix, onChanges, onError, active: true };
    const cancel = (): void => {
      w.active = false;
      this.#watchers.delete(w);
    };
    if (afterRevision < this.#compacted || afterRevision > this.#revision) {
      const why = afterRevision < this.#compacted
        ? `revisions up to ${this.#compacted} were compacted (asked for those after ${afterRevision})`
        : `revision ${afterRevision} is ahead of the store (at ${this.#revision})`;
      queueMicrotask(() => w.active && onError(new CompactedError(`${why}: read again`)));
      return { cancel };
    }
    // History after the revision, then live changes; the watcher is added now so nothing falls between.
    const replay = this.#history.filter((c) => c.revision > afterRevision);
    this.#watchers.add(w);
    for (const c of replay) this.#deliver(w, c);
    return { cancel };
  }

  async grantLease(ttlSeconds: number): Promise<LeaseInfo> {
    this.#open();
    checkLeaseTtl(ttlSeconds);
    let id = newLeaseId();
    while (this.#leases.has(id)) id = newLeaseId();
    const lease: Lease = { id, ttlSeconds, expiresAtMs: this.#now() + ttlSeconds * 1000, keys: new Set() };
    this.#leases.set(id, lease);
    return this.#info(lease);
  }

  async keepAlive(id: string): Promise<LeaseInfo> {
    this.#open();
    const lease = this.#leases.get(id);
    if (!lease || lease.expiresAtMs <= this.#now()) throw new SluiceError('NOT_FOUND', `lease ${id} does not exist (expired or revoked)`);
    lease.expiresAtMs = this.#now() + lease.ttlSeconds * 1000;
    return this.#info(lease);
  }

  async lease(id: string): Promise<LeaseInfo | undefined> {
    this.#open();
    return this.#live(id) ? this.#info(this.#leases.get(id)!) : undefined;
  }

  async leaseKeys(id: string): Promise<string[]> {
    this.#open();
    return this.#live(id) ? [...this.#leases.get(id)!.keys].sort() : [];
  }

  async revokeLease(id: string): Promise<boolean> {
    this.#open();
    const lease = this.#leases.get(id);
    if (!lease) return false;
    this.#drop(lease);
    return true;
  }

  async compact(revision: number): Promise<void> {
    this.#open();
    if (!Number.isSafeInteger(revision) || revision < 0 || revision > this.#revision) {
      throw invalid('revision', `must be in 0..${this.#revision}, got ${revision}`);
    }
    this.#compactTo(revision);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    for (const w of this.#watchers) w.active = false;
    this.#watchers.clear();
  }

  /** Expire every lease whose time has come, deleting its keys; returns how many. */
  expireLeases(): number {
    if (this.#closed) return 0;
    const now = this.#now();
    let n = 0;
    for (const lease of [...this.#leases.values()]) {
      if (lease.expiresAtMs > now) continue;
      this.#drop(lease);
      n++;
    }
    return n;
  }

  // ---------------------------------------------------------------- internals

  #open(): void {
    if (this.#closed) throw new SluiceError('FAILED_PRECONDITION', 'the store is closed');
  }

  #live(id: string): boolean {
    const lease = this.#leases.get(id);
    return lease !== undefined && lease.expiresAtMs > this.#now();
  }

  #info(lease: Lease): LeaseInfo {
    return { id: lease.id, ttlSeconds: lease.ttlSeconds, remainingSeconds: Math.max(0, Math.ceil((lease.expiresAtMs - this.#now()) / 1000)) };
  }

  #keys(): string[] {
    this.#sorted ??= [...this.#kvs.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return this.#sorted;
  }

  /** Delete a lease and its keys (one revision, if it had keys). */
  #drop(lease: Lease): void {
    this.#leases.delete(lease.id);
    const keys = [...lease.keys].filter((k) => this.#kvs.get(k)?.lease === lease.id);
    if (keys.length > 0) this.#commit(keys.map((k) => ({ delete: k })));
  }

  /** Apply operations at a new revision and tell the watchers. */
  #commit(operations: readonly Operation[]): void {
    const revision = this.#revision + 1;
    const events: KvEvent[] = [];
    const remove = (key: string): void => {
      const prev = this.#kvs.get(key);
      if (!prev) return;
      this.#kvs.delete(key);
      this.#sorted = undefined;
      if (prev.lease !== undefined) this.#leases.get(prev.lease)?.keys.delete(key);
      events.push({ type: 'DELETE', kv: { key, value: '', createRevision: 0, modRevision: revision }, prev });
    };
    for (const op of operations) {
      if ('put' in op) {
        const prev = this.#kvs.get(op.put);
        if (prev?.lease !== undefined && prev.lease !== op.lease) this.#leases.get(prev.lease)?.keys.delete(op.put);
        const kv: KeyValue = { key: op.put, value: op.value, createRevision: prev?.createRevision ?? revision, modRevision: revision };
        if (op.lease !== undefined) {
          kv.lease = op.lease;
          this.#leases.get(op.lease)!.keys.add(op.put);
        }
        if (!prev) this.#sorted = undefined;
        this.#kvs.set(op.put, kv);
        events.push(prev ? { type: 'PUT', kv: { ...kv }, prev } : { type: 'PUT', kv: { ...kv } });
      } else if ('delete' in op) {
        remove(op.delete);
      } else {
        for (const key of [...this.#kvs.keys()].filter((k) => k.startsWith(op.deletePrefix))) remove(key);
      }
    }
    this.#revision = revision;
    const changes: KvChanges = { events, revision };
    this.#history.push(changes);
    if (this.#history.length > this.#historyRevisions) this.#compactTo(this.#history[this.#history.length - this.#historyRevisions - 1]!.revision);
    for (const w of this.#watchers) this.#deliver(w, changes);
  }

  #compactTo(revision: number): void {
    if (revision <= this.#compacted) return;
    this.#compacted = revision;
    while (this.#history.length > 0 && this.#history[0]!.revision <= revision) this.#history.shift();
  }

  #deliver(w: Watcher, c: KvChanges): void {
    const events = c.events.filter((e) => e.kv.key.startsWith(w.prefix));
    if (events.length === 0) return;
    const copy: KvChanges = { events: events.map((e) => ({ ...e, kv: { ...e.kv }, ...(e.prev ? { prev: { ...e.prev } } : {}) })), revision: c.revision };
    queueMicrotask(() => {
      if (w.active) w.onChanges(copy);
    });
  }
}
