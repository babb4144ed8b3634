/**
 * The KvStore in an embedded SQLite file (better-sqlite3): the store of a
 * single node, with the semantics of MemoryKvStore (one contract suite runs
 * on both). One file, written by this process only, on the control plane's
 * thread.
 *
 * Every transaction that may write is begun IMMEDIATE (it takes the write
 * lock up front, so the revision it reads cannot move under it); the
 * revision and the compacted revision live in the `meta` table and are read
 * inside each transaction rather than cached. Each revision's changes are
 * kept in the `changes` table, with the previous value of each key, so that
 * a watch can resume from a revision after a restart. Watchers are called
 * asynchronously (a microtask after the commit), in revision order.
 */
import { closeSync, fchmodSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
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

/** Options of the SQLite store. */
export interface SqliteKvOptions {
  /** Wall clock in ms, for leases (default Date.now). */
  now?: () => number;
  /** How often expired leases are looked for, in ms (default 200; 0: only when expireLeases() is called). */
  leaseCheckMs?: number;
  /** Revisions of history kept for watches (default 10,000); older ones are compacted. */
  historyRevisions?: number;
  /**
   * Turns the rows of a schema-1 file (the service-shaped store of sluice
   * before the KvStore) into the keys of schema 2. Called only when such a
   * file is opened, inside the transaction of the upgrade; without it, a
   * schema-1 file is refused and left as it is. The store knows the old
   * tables, not what the keys mean: the daemon passes the catalog's
   * (legacyRowsToCatalog in catalog/legacy.ts).
   */
  migrateSchema1?: Schema1Migration;
}

/** The rows of a schema-1 file that its migration needs. */
export interface Schema1Rows {
  /** The services table, by name: each definition as the JSON text it was stored as. */
  services: Array<{ name: string; definition: string; revision: number; createRevision: number }>;
  /** The ids in the leases table, which the upgrade keeps as they are. */
  leases: ReadonlySet<string>;
}

/** A key a schema-1 migration writes, with its revisions; `lease` must be one of Schema1Rows.leases. */
export interface Schema1Key {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  lease?: string;
}

/**
 * What SqliteKvOptions.migrateSchema1 is: the keys to write for the rows of
 * a schema-1 file. It throws a SluiceError (FAILED_PRECONDITION) for rows it
 * cannot migrate; the store adds the file's path, and leaves the file at
 * schema 1.
 */
export type Schema1Migration = (rows: Schema1Rows) => Schema1Key[];

/** The schema version this code writes: 1 was the service-shaped store, 2 is this one. */
export const SCHEMA_VERSION = 2;

/** Writes pause this long before the WAL is checkpointed. */
const CHECKPOINT_IDLE_MS = 250;
/** ... or it is checkpointed after this many write transactions in a row. */
const CHECKPOINT_EVERY_WRITES = 2500;

/** The tables of keys and of their history (schema 2), shared by a new file and the migration from schema 1. */
const KV_TABLES = `
  CREATE TABLE kv (
    key             TEXT PRIMARY KEY,
    value           TEXT NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision    INTEGER NOT NULL,
    lease           TEXT               -- the lease id; NULL: detached
  ) STRICT;
  CREATE INDEX kv_by_lease ON kv (lease, key) WHERE lease IS NOT NULL;

  -- The changes of the revisions in (compacted_revision, revision], in the
  -- order their transaction made them (id). A revision that changed nothing
  -- (a delete of an absent key) has no row.
  CREATE TABLE changes (
    id                   INTEGER PRIMARY KEY,
    revision             INTEGER NOT NULL,
    type                 TEXT NOT NULL CHECK (type IN ('PUT', 'DELETE')),
    key                  TEXT NOT NULL,
    value                TEXT,         -- after a PUT; NULL after a DELETE
    create_revision      INTEGER,      -- of the key after a PUT
    lease                TEXT,         -- of the key after a PUT
    prev_value           TEXT,         -- the key before the change; NULL: it did not exist
    prev_create_revision INTEGER,
    prev_mod_revision    INTEGER,
    prev_lease           TEXT
  ) STRICT;
  CREATE INDEX changes_by_revision ON changes (revision);
`;

/**
 * Schema 2, as a new file gets it (then the upgrades after 2, if any).
 * STRICT tables reject a value of the wrong type instead of storing it;
 * keys compare with BINARY, which is byte order of their UTF-8, as etcd
 * orders them.
 */
const SCHEMA_2 = `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  ) STRICT;
  INSERT INTO meta (key, value) VALUES ('revision', 0), ('compacted_revision', 0);

  CREATE TABLE leases (
    id            TEXT PRIMARY KEY,
    ttl_seconds   INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX leases_by_expiry ON leases (expires_at_ms, id);
  ${KV_TABLES}
`;

/**
 * Upgrades: UPGRADES[v] takes a file from schema v to v + 1, inside the
 * transaction that records the new version. Append, never edit.
 */
const UPGRADES: Readonly<Record<number, (db: Database.Database, ctx: UpgradeContext) => void>> = {
  1: fromServices,
};

/** What an upgrade is given: the file (for messages) and the caller's migration of schema 1. */
type UpgradeContext = { path: string; migrateSchema1: Schema1Migration | undefined };

type KvRow = { key: string; value: string; create_revision: number; mod_revision: number; lease: string | null };
type ChangeRow = {
  revision: number;
  type: 'PUT' | 'DELETE';
  key: string;
  value: string | null;
  create_revision: number | null;
  lease: string | null;
  prev_value: string | null;
  prev_create_revision: number | null;
  prev_mod_revision: number | null;
  prev_lease: string | null;
};
type LeaseRow = { id: string; ttl_seconds: number; expires_at_ms: number };
type Committed = { revision: number; changes: KvChanges | undefined };

interface Watcher {
  prefix: string;
  onChanges: (c: KvChanges) => void;
  onError: (err: Error) => void;
  active: boolean;
}

/** The KvStore in a SQLite file; see KvStore for the semantics. */
export class SqliteKvStore implements KvStore {
  /** The file. */
  readonly path: string;
  readonly #db: Database.Database;
  readonly #s: Statements;
  readonly #now: () => number;
  readonly #historyRevisions: number;
  readonly #watchers = new Set<Watcher>();
  readonly #leaseTimer: NodeJS.Timeout | undefined;
  #checkpointTimer: NodeJS.Timeout | undefined;
  #writesSinceCheckpoint = 0;
  #expiryFailing = false;
  #closed = false;

  readonly #txnTx: (compares: readonly Compare[], operations: readonly Operation[], now: number) => TxnResult & Committed;
  readonly #rangeTx: (prefix: string, opts: RangeOptions) => { kvs: KeyValue[]; revision: number; more: boolean };
  readonly #watchTx: (prefix: string, after: number) => { compacted: number; revision: number; rows: ChangeRow[] };
  readonly #keepAliveTx: (id: string, now: number) => LeaseRow | undefined;
  readonly #revokeTx: (id: string) => Committed[] | undefined;
  readonly #expireTx: (now: number) => Committed[];
  readonly #compactTx: (revision: number) => void;

  private constructor(path: string, db: Database.Database, o: ResolvedOptions) {
    this.path = path;
    this.#db = db;
    this.#now = o.now;
    this.#historyRevisions = o.historyRevisions;
    const s = prepare(db);
    this.#s = s;

    this.#txnTx = db.transaction((compares: readonly Compare[], operations: readonly Operation[], now: number) => {
      const at = s.getMeta.get('revision') as number;
      for (const c of compares) {
        const kv = s.get.get(c.key);
        const holds = 'modRevision' in c ? (kv?.mod_revision ?? 0) === c.modRevision : kv !== undefined && kv.value === c.value;
        if (!holds) return { succeeded: false, revision: at, changes: undefined };
      }
      for (const op of operations) {
        if ('put' in op && op.lease !== undefined && s.liveLease.get(op.lease, now) === undefined) throw leaseNotFound(op.lease);
      }
      if (operations.length === 0) return { succeeded: true, revision: at, changes: undefined };
      const changes = this.#apply(at + 1, operations);
      return { succeeded: true, revision: changes.revision, changes };
    }).immediate;

    // Read transactions: the rows and the revision are one snapshot.
    this.#rangeTx = db.transaction((prefix: string, opts: RangeOptions) => {
      // One more than asked, to know whether the limit cut the list; LIMIT -1: no limit.
      const limit = opts.limit === undefined ? -1 : opts.limit + 1;
      const end = prefixEnd(prefix);
      const rows = opts.startAfter === undefined ? s.range.all(prefix, end, limit) : s.rangeAfter.all(prefix, end, opts.startAfter, limit);
      const more = opts.limit !== undefined && rows.length > opts.limit;
      if (more) rows.pop();
      return { kvs: rows.map(toKv), revision: s.getMeta.get('revision') as number, more };
    });

    this.#watchTx = db.transaction((prefix: string, after: number) => {
      const compacted = s.getMeta.get('compacted_revision') as number;
      const revision = s.getMeta.get('revision') as number;
      const ok = after >= compacted && after <= revision;
      return { compacted, revision, rows: ok ? s.changesAfter.all(after, prefix, prefixEnd(prefix)) : [] };
    });

    this.#keepAliveTx = db.transaction((id: string, now: number) => s.keepAlive.get(now, id, now)).immediate;

    this.#revokeTx = db.transaction((id: string) => {
      if (s.deleteLease.run(id).changes === 0) return undefined;
      return [this.#dropKeysOf(id)];
    }).immediate;

    this.#expireTx = db.transaction((now: number) => {
      const out: Committed[] = [];
      for (const id of s.expiredLeases.all(now) as unknown as string[]) {
        s.deleteLease.run(id);
        out.push(this.#dropKeysOf(id));
      }
      return out;
    }).immediate;

    this.#compactTx = db.transaction((revision: number) => {
      const current = s.getMeta.get('revision') as number;
      if (!Number.isSafeInteger(revision) || revision < 0 || revision > current) {
        throw invalid('revision', `must be in 0..${current}, got ${revision}`);
      }
      this.#compactTo(revision);
    }).immediate;

    // Honour a smaller historyRevisions than the one the history was written with.
    db.transaction(() => this.#compactTo((s.getMeta.get('revision') as number) - o.historyRevisions)).immediate();

    const every = o.leaseCheckMs;
    if (every > 0) {
      this.#leaseTimer = setInterval(() => this.#expireOnTimer(), every);
      this.#leaseTimer.unref();
    }
  }

  /**
   * Open the store at `path`, creating the file (mode 0600) and the schema
   * if need be; the directory must exist. A file of schema 1 (the
   * service-shaped store) is migrated by `migrateSchema1`, and refused
   * without it; one of a newer schema, one that is damaged and one that is
   * not a sluice store are refused (FAILED_PRECONDITION, naming the path).
   */
  static open(path: string, opts: SqliteKvOptions = {}): SqliteKvStore {
    const o = resolveOptions(opts);
    createPrivate(path);
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { fileMustExist: true });
      // WAL: readers do not block the writer, and a commit appends to the log
      // instead of rewriting pages.
      const mode = db.pragma('journal_mode = WAL', { simple: true }) as string;
      if (mode !== 'wal') throw new SluiceError('FAILED_PRECONDITION', `cannot use WAL journaling for ${path} (got ${mode})`);
      // synchronous=NORMAL in WAL mode: a commit is durable once written to the
      // WAL (no fsync per commit; the WAL is synced at checkpoints), and the
      // database is never corrupted. A crash of this process loses nothing;
      // only an OS crash or power loss can drop the last transactions, and
      // their sources write them again (the Kubernetes watch resyncs, API
      // clients re-apply, registered backends keep their leases alive). FULL
      // would fsync on every commit, lease keep-alives included, on the event
      // loop: each fsync (milliseconds on cloud disks) would stall the gRPC
      // server and the health checks.
      db.pragma('synchronous = NORMAL');
      // Checkpoints (copying the WAL into the database, with an fsync) are run
      // by the store when writes pause (see #wrote), not by whichever commit
      // crosses the threshold: that commit would take milliseconds.
      db.pragma('wal_autocheckpoint = 0');
      // SQLite's own page cache at SQLite's default size (2 MB), not the
      // 16 MB better-sqlite3 builds it with: the store is read at start and
      // by watches that resume, and written in appends; the pages it would
      // keep are in the kernel's page cache anyway. The control plane holds
      // the catalog once, in its view; a second copy here would be the
      // daemon's memory spent twice.
      db.pragma('cache_size = -2000');
      // A damaged file is refused here, with its path, rather than failing
      // some later query with SQLite's words alone.
      const check = db.pragma('quick_check', { simple: true }) as string;
      if (check !== 'ok') throw new SluiceError('FAILED_PRECONDITION', `the store at ${path} is damaged (${check})`);
      migrate(db, { path, migrateSchema1: o.migrateSchema1 });
      return new SqliteKvStore(path, db, o);
    } catch (err) {
      db?.close();
      if (err instanceof SluiceError) throw err;
      throw new SluiceError('FAILED_PRECONDITION', `cannot open the store at ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  async revision(): Promise<number> {
    return this.#run(() => this.#s.getMeta.get('revision') as number);
  }

  async get(key: string): Promise<KeyValue | undefined> {
    return this.#run(() => {
      const row = this.#s.get.get(key);
      return row && toKv(row);
    });
  }

  async range(prefix: string, opts: RangeOptions = {}): Promise<{ kvs: KeyValue[]; revision: number; more: boolean }> {
    return this.#run(() => {
      if (opts.limit !== undefined && (!Number.isSafeInteger(opts.limit) || opts.limit < 0)) {
        throw invalid('limit', `must be a non-negative integer, got ${String(opts.limit)}`);
      }
      return this.#rangeTx(prefix, opts);
    });
  }

  async txn(compares: readonly Compare[], operations: readonly Operation[]): Promise<TxnResult> {
    return this.#run(() => {
      const r = this.#txnTx(compares, operations, this.#now());
      if (r.changes) this.#committed([r]);
      return { succeeded: r.succeeded, revision: r.revision };
    });
  }

  watch(prefix: string, afterRevision: number, onChanges: (c: KvChanges) => void, onError: (err: Error) => void): KvWatch {
    const w: Watcher = { prefix, onChanges, onError, active: true };
    const cancel = (): void => {
      w.active = false;
      this.#watchers.delete(w);
    };
    const { compacted, revision, rows } = this.#run(() => this.#watchTx(prefix, afterRevision));
    if (afterRevision < compacted || afterRevision > revision) {
      const why = afterRevision < compacted
        ? `revisions up to ${compacted} were compacted (asked for those after ${afterRevision})`
        : `revision ${afterRevision} is ahead of the store (at ${revision})`;
      queueMicrotask(() => w.active && onError(new CompactedError(`${why}: read again`)));
      return { cancel };
    }
    // History after the revision, then live changes; the watcher is added in
    // the same turn as the history was read, so nothing falls between.
    this.#watchers.add(w);
    for (const c of groupChanges(rows)) this.#deliver(w, c);
    return { cancel };
  }

  async grantLease(ttlSeconds: number): Promise<LeaseInfo> {
    return this.#run(() => {
      checkLeaseTtl(ttlSeconds);
      const expiresAtMs = this.#now() + ttlSeconds * 1000;
      for (;;) {
        const id = newLeaseId();
        // 64 random bits: a collision is all but impossible, but would be retried, not thrown.
        if (this.#s.insertLease.run(id, ttlSeconds, expiresAtMs).changes === 1) {
          this.#wrote();
          return this.#info({ id, ttl_seconds: ttlSeconds, expires_at_ms: expiresAtMs });
        }
      }
    });
  }

  async keepAlive(id: string): Promise<LeaseInfo> {
    return this.#run(() => {
      const row = this.#keepAliveTx(id, this.#now());
      if (!row) throw leaseNotFound(id);
      this.#wrote();
      return this.#info(row);
    });
  }

  async lease(id: string): Promise<LeaseInfo | undefined> {
    return this.#run(() => {
      const row = this.#s.getLease.get(id);
      return row && row.expires_at_ms > this.#now() ? this.#info(row) : undefined;
    });
  }

  async leaseKeys(id: string): Promise<string[]> {
    return this.#run(() => {
      if (this.#s.liveLease.get(id, this.#now()) === undefined) return [];
      return this.#s.keysOfLease.all(id) as unknown as string[];
    });
  }

  async revokeLease(id: string): Promise<boolean> {
    return this.#run(() => {
      const done = this.#revokeTx(id);
      if (!done) return false;
      this.#committed(done);
      return true;
    });
  }

  async compact(revision: number): Promise<void> {
    this.#run(() => {
      this.#compactTx(revision);
      this.#wrote();
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#checkpoint();
    this.#closed = true;
    clearInterval(this.#leaseTimer);
    for (const w of this.#watchers) w.active = false;
    this.#watchers.clear();
    this.#db.close();
  }

  /** Expire every lease whose time has come, deleting its keys (a revision per lease that had keys); returns how many. */
  expireLeases(): number {
    if (this.#closed) return 0;
    return this.#run(() => {
      const now = this.#now();
      // A plain read first: most checks find nothing and take no write lock.
      if (this.#s.anyExpired.get(now) === undefined) return 0;
      const done = this.#expireTx(now);
      this.#committed(done);
      return done.length;
    });
  }

  // ---------------------------------------------------------------- internals

  /** Run a call on the open store; SQLite's errors become SluiceErrors naming the file. */
  #run<T>(fn: () => T): T {
    if (this.#closed) throw new SluiceError('FAILED_PRECONDITION', 'the store is closed');
    try {
      return fn();
    } catch (err) {
      if (err instanceof SluiceError) throw err;
      const code = (err as { code?: unknown }).code;
      // A locked, full or failing disk may come back; anything else is a bug or a damaged file.
      const transient = typeof code === 'string' && /^SQLITE_(BUSY|LOCKED|FULL|IOERR)/.test(code);
      throw new SluiceError(transient ? 'UNAVAILABLE' : 'INTERNAL', `the store at ${this.path}: ${(err as Error).message}`, { cause: err });
    }
  }

  #expireOnTimer(): void {
    try {
      this.expireLeases();
      this.#expiryFailing = false;
    } catch (err) {
      // The next tick tries again (a call that writes meets the same failure and
      // reports it to its caller); one warning per run of failures.
      if (!this.#expiryFailing) process.emitWarning(`lease expiry failed: ${(err as Error).message}`, { code: 'SLUICE_KV_LEASES' });
      this.#expiryFailing = true;
    }
  }

  #info(row: LeaseRow): LeaseInfo {
    return {
      id: row.id,
      ttlSeconds: row.ttl_seconds,
      remainingSeconds: Math.max(0, Math.ceil((row.expires_at_ms - this.#now()) / 1000)),
    };
  }

  /** Inside a write transaction: delete the keys attached to a lease, at a new revision if it had any. */
  #dropKeysOf(id: string): Committed {
    const keys = this.#s.keysOfLease.all(id) as unknown as string[];
    if (keys.length === 0) return { revision: this.#s.getMeta.get('revision') as number, changes: undefined };
    const changes = this.#apply((this.#s.getMeta.get('revision') as number) + 1, keys.map((k) => ({ delete: k })));
    return { revision: changes.revision, changes };
  }

  /** Inside a write transaction: apply operations at `revision`, record them in the history, and return them. */
  #apply(revision: number, operations: readonly Operation[]): KvChanges {
    const s = this.#s;
    const events: KvEvent[] = [];
    const removed = (prev: KvRow): void => {
      s.insertChange.run(revision, 'DELETE', prev.key, null, null, null, prev.value, prev.create_revision, prev.mod_revision, prev.lease);
      events.push({ type: 'DELETE', kv: { key: prev.key, value: '', createRevision: 0, modRevision: revision }, prev: toKv(prev) });
    };
    for (const op of operations) {
      if ('put' in op) {
        const prev = s.get.get(op.put);
        const createRevision = prev?.create_revision ?? revision;
        const lease = op.lease ?? null;
        s.upsert.run(op.put, op.value, createRevision, revision, lease);
        s.insertChange.run(revision, 'PUT', op.put, op.value, createRevision, lease,
          prev?.value ?? null, prev?.create_revision ?? null, prev?.mod_revision ?? null, prev?.lease ?? null);
        const kv: KeyValue = { key: op.put, value: op.value, createRevision, modRevision: revision };
        if (op.lease !== undefined) kv.lease = op.lease;
        events.push(prev ? { type: 'PUT', kv, prev: toKv(prev) } : { type: 'PUT', kv });
      } else if ('delete' in op) {
        const prev = s.get.get(op.delete);
        if (!prev) continue;
        s.delete.run(op.delete);
        removed(prev);
      } else {
        const end = prefixEnd(op.deletePrefix);
        const rows = s.range.all(op.deletePrefix, end, -1);
        if (rows.length === 0) continue;
        s.deleteRange.run(op.deletePrefix, end);
        for (const prev of rows) removed(prev);
      }
    }
    s.setMeta.run(revision, 'revision');
    this.#compactTo(revision - this.#historyRevisions);
    return { events, revision };
  }

  /** Inside a write transaction: forget the history up to `revision`, if it is beyond what is forgotten already. */
  #compactTo(revision: number): void {
    if (revision <= (this.#s.getMeta.get('compacted_revision') as number)) return;
    this.#s.deleteChangesThrough.run(revision);
    this.#s.setMeta.run(revision, 'compacted_revision');
  }

  /** After a commit: tell the watchers, and schedule a checkpoint. */
  #committed(done: readonly Committed[]): void {
    this.#wrote();
    for (const { changes } of done) {
      if (!changes) continue;
      for (const w of this.#watchers) this.#deliver(w, changes);
    }
  }

  #deliver(w: Watcher, c: KvChanges): void {
    const events = c.events.filter((e) => e.kv.key.startsWith(w.prefix));
    if (events.length === 0) return;
    const copy: KvChanges = { events: events.map((e) => ({ ...e, kv: { ...e.kv }, ...(e.prev ? { prev: { ...e.prev } } : {}) })), revision: c.revision };
    queueMicrotask(() => {
      if (w.active) w.onChanges(copy);
    });
  }

  /**
   * After a write: checkpoint once writes have paused for a moment, or at
   * once after many writes in a row (so the WAL stays bounded under a
   * sustained load).
   */
  #wrote(): void {
    if (++this.#writesSinceCheckpoint >= CHECKPOINT_EVERY_WRITES) {
      this.#checkpoint();
      return;
    }
    clearTimeout(this.#checkpointTimer);
    this.#checkpointTimer = setTimeout(() => this.#checkpoint(), CHECKPOINT_IDLE_MS);
    this.#checkpointTimer.unref();
  }

  #checkpoint(): void {
    clearTimeout(this.#checkpointTimer);
    this.#checkpointTimer = undefined;
    this.#writesSinceCheckpoint = 0;
    if (this.#closed) return;
    try {
      this.#db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      /* a busy database is checkpointed next time */
    }
  }
}

type Statements = ReturnType<typeof prepare>;

/** Every statement, prepared once per connection. */
function prepare(db: Database.Database) {
  const kvColumns = 'key, value, create_revision, mod_revision, lease';
  // A prefix is a range of the primary key, [prefix, prefixEnd(prefix)), not LIKE: '%' and '_' are plain characters.
  const inPrefix = 'key >= ? AND key < CAST(? AS TEXT)';
  return {
    getMeta: db.prepare<[string], number>('SELECT value FROM meta WHERE key = ?').pluck(),
    setMeta: db.prepare<[number, string]>('UPDATE meta SET value = ? WHERE key = ?'),

    get: db.prepare<[string], KvRow>(`SELECT ${kvColumns} FROM kv WHERE key = ?`),
    range: db.prepare<[string, Buffer, number], KvRow>(`SELECT ${kvColumns} FROM kv WHERE ${inPrefix} ORDER BY key LIMIT ?`),
    rangeAfter: db.prepare<[string, Buffer, string, number], KvRow>(
      `SELECT ${kvColumns} FROM kv WHERE ${inPrefix} AND key > ? ORDER BY key LIMIT ?`,
    ),
    upsert: db.prepare<[string, string, number, number, string | null]>(
      `INSERT INTO kv (${kvColumns}) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision, lease = excluded.lease`,
    ),
    delete: db.prepare<[string]>('DELETE FROM kv WHERE key = ?'),
    deleteRange: db.prepare<[string, Buffer]>(`DELETE FROM kv WHERE ${inPrefix}`),
    keysOfLease: db.prepare<[string], string>('SELECT key FROM kv WHERE lease = ? ORDER BY key').pluck(),

    insertChange: db.prepare<[number, string, string, string | null, number | null, string | null, string | null, number | null, number | null, string | null]>(
      `INSERT INTO changes (revision, type, key, value, create_revision, lease,
                            prev_value, prev_create_revision, prev_mod_revision, prev_lease)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    changesAfter: db.prepare<[number, string, Buffer], ChangeRow>(
      `SELECT revision, type, key, value, create_revision, lease,
              prev_value, prev_create_revision, prev_mod_revision, prev_lease
       FROM changes WHERE revision > ? AND ${inPrefix} ORDER BY revision, id`,
    ),
    deleteChangesThrough: db.prepare<[number]>('DELETE FROM changes WHERE revision <= ?'),

    insertLease: db.prepare<[string, number, number]>('INSERT OR IGNORE INTO leases (id, ttl_seconds, expires_at_ms) VALUES (?, ?, ?)'),
    getLease: db.prepare<[string], LeaseRow>('SELECT id, ttl_seconds, expires_at_ms FROM leases WHERE id = ?'),
    liveLease: db.prepare<[string, number], number>('SELECT 1 FROM leases WHERE id = ? AND expires_at_ms > ?').pluck(),
    // Extends only a live lease (expiry after now), by its own TTL.
    keepAlive: db.prepare<[number, string, number], LeaseRow>(
      `UPDATE leases SET expires_at_ms = ? + ttl_seconds * 1000 WHERE id = ? AND expires_at_ms > ?
       RETURNING id, ttl_seconds, expires_at_ms`,
    ),
    deleteLease: db.prepare<[string]>('DELETE FROM leases WHERE id = ?'),
    anyExpired: db.prepare<[number], number>('SELECT 1 FROM leases WHERE expires_at_ms <= ? LIMIT 1').pluck(),
    expiredLeases: db.prepare<[number], string>('SELECT id FROM leases WHERE expires_at_ms <= ? ORDER BY expires_at_ms, id').pluck(),
  };
}

/**
 * The first text after every key that starts with `prefix`, in byte order:
 * the prefix's UTF-8 and a 0xFF byte, which valid UTF-8 never contains (so
 * no key is cut off, whatever characters follow the prefix). Bound as a
 * blob and cast to TEXT, as SQLite's BINARY collation compares the bytes.
 */
function prefixEnd(prefix: string): Buffer {
  return Buffer.concat([Buffer.from(prefix, 'utf8'), Buffer.from([0xff])]);
}

function toKv(r: KvRow): KeyValue {
  const kv: KeyValue = { key: r.key, value: r.value, createRevision: r.create_revision, modRevision: r.mod_revision };
  if (r.lease !== null) kv.lease = r.lease;
  return kv;
}

/** History rows (in order) as one KvChanges per revision. */
function groupChanges(rows: readonly ChangeRow[]): KvChanges[] {
  const out: KvChanges[] = [];
  for (const r of rows) {
    let c = out[out.length - 1];
    if (c?.revision !== r.revision) out.push((c = { events: [], revision: r.revision }));
    const prev: KeyValue | undefined = r.prev_value === null
      ? undefined
      : toKv({ key: r.key, value: r.prev_value, create_revision: r.prev_create_revision!, mod_revision: r.prev_mod_revision!, lease: r.prev_lease });
    const kv: KeyValue = r.type === 'PUT'
      ? toKv({ key: r.key, value: r.value!, create_revision: r.create_revision!, mod_revision: r.revision, lease: r.lease })
      : { key: r.key, value: '', createRevision: 0, modRevision: r.revision };
    c.events.push(prev ? { type: r.type, kv, prev } : { type: r.type, kv });
  }
  return out;
}

function leaseNotFound(id: string): SluiceError {
  return new SluiceError('NOT_FOUND', `lease ${id} does not exist (expired or revoked)`);
}

type ResolvedOptions = Required<Omit<SqliteKvOptions, 'migrateSchema1'>> & { migrateSchema1: Schema1Migration | undefined };

/** The options with their defaults. */
function resolveOptions(opts: SqliteKvOptions): ResolvedOptions {
  const o = {
    now: opts.now ?? Date.now,
    leaseCheckMs: opts.leaseCheckMs ?? 200,
    historyRevisions: opts.historyRevisions ?? 10_000,
    migrateSchema1: opts.migrateSchema1,
  };
  if (!Number.isSafeInteger(o.leaseCheckMs) || o.leaseCheckMs < 0) {
    throw invalid('leaseCheckMs', `must be a non-negative integer, got ${String(opts.leaseCheckMs)}`);
  }
  if (!Number.isSafeInteger(o.historyRevisions) || o.historyRevisions < 1) {
    throw invalid('historyRevisions', `must be a positive integer, got ${String(opts.historyRevisions)}`);
  }
  return o;
}

/** Create the file with mode 0600 unless it exists (SQLite gives its -wal and -shm files the same mode). */
function createPrivate(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw new SluiceError('FAILED_PRECONDITION', `cannot create the store at ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    fchmodSync(fd, 0o600); // whatever the umask
  } finally {
    closeSync(fd);
  }
}

/** Bring the file to SCHEMA_VERSION, in one transaction: all of the upgrade or none. */
function migrate(db: Database.Database, ctx: UpgradeContext): void {
  const { path } = ctx;
  db.transaction(() => {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").pluck().all() as string[];
    if (!tables.includes('schema_version')) {
      if (tables.length > 0) throw new SluiceError('FAILED_PRECONDITION', `${path} is a SQLite database but not a sluice store (tables ${tables.join(', ')})`);
      db.exec(SCHEMA_2);
      db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL) STRICT');
      db.prepare('INSERT INTO schema_version (version) VALUES (2)').run();
    }
    const found = db.prepare('SELECT version FROM schema_version').pluck().all() as number[];
    if (found.length !== 1) throw new SluiceError('FAILED_PRECONDITION', `${path}: schema_version has ${found.length} rows, not 1`);
    const version = found[0]!;
    if (version > SCHEMA_VERSION) {
      throw new SluiceError('FAILED_PRECONDITION', `${path} has schema version ${version}, newer than this sluice knows (${SCHEMA_VERSION})`);
    }
    for (let v = version; v < SCHEMA_VERSION; v++) {
      const upgrade = UPGRADES[v];
      if (!upgrade) throw new SluiceError('FAILED_PRECONDITION', `${path} has schema version ${version}, which this sluice cannot upgrade`);
      upgrade(db, ctx);
    }
    db.prepare('UPDATE schema_version SET version = ?').run(SCHEMA_VERSION);
  }).immediate();
}

/**
 * Schema 1 → 2: the services of the service-shaped store become keys,
 * those the caller's migration returns for the rows of the services table
 * and the ids of the leases table, so that a daemon upgraded in place finds
 * them. Without a migration the file is refused: moving it to schema 2
 * with no keys would lose every service unseen.
 *
 * The store revision is kept; the history starts empty (compacted at the
 * current revision), as the old events describe services, not keys. The
 * leases stay as they are; the dataplane ids (frontend_ids) are a node's own
 * and are not kept in the store any more. Any refusal leaves the file as it
 * was (the upgrade's transaction rolls back).
 */
function fromServices(db: Database.Database, { path, migrateSchema1 }: UpgradeContext): void {
  if (migrateSchema1 === undefined) {
    throw new SluiceError(
      'FAILED_PRECONDITION',
      `${path} has schema version 1 (the service store of an older sluice), whose services only a migration into keys ` +
        'can keep: open it with the migrateSchema1 option (the sluice daemon passes the catalog\'s); the file is left at schema 1',
    );
  }
  const refuse = (why: string, cause?: unknown): SluiceError =>
    new SluiceError('FAILED_PRECONDITION', `${path}: ${why}; the file is left at schema 1`, cause === undefined ? undefined : { cause });
  const leases = new Set(db.prepare('SELECT id FROM leases').pluck().all() as string[]);
  const services = db
    .prepare('SELECT name, definition, revision, create_revision AS createRevision FROM services ORDER BY name')
    .all() as Schema1Rows['services'];
  const revision = db.prepare("SELECT value FROM meta WHERE key = 'revision'").pluck().get() as number;
  let kvs: Schema1Key[];
  try {
    kvs = migrateSchema1({ services, leases });
  } catch (err) {
    throw refuse((err as Error).message, err);
  }

  db.exec(KV_TABLES);
  const insert = db.prepare<[string, string, number, number, string | null]>(
    'INSERT INTO kv (key, value, create_revision, mod_revision, lease) VALUES (?, ?, ?, ?, ?)',
  );
  const written = new Set<string>();
  for (const kv of kvs) {
    // Checked, not trusted: what the store keeps true of every key (one row
    // each, revisions in order and not ahead of the store, a lease that
    // exists) holds of these too.
    if (written.has(kv.key)) throw refuse(`the migration gives key ${kv.key} twice`);
    const { createRevision: c, modRevision: m } = kv;
    if (!Number.isSafeInteger(c) || !Number.isSafeInteger(m) || c < 1 || c > m || m > revision) {
      throw refuse(`the migration gives key ${kv.key} revisions ${c}..${m}, not in order within 1..${revision}`);
    }
    if (kv.lease !== undefined && !leases.has(kv.lease)) throw refuse(`the migration attaches key ${kv.key} to lease ${kv.lease}, which the file does not hold`);
    written.add(kv.key);
    insert.run(kv.key, kv.value, kv.createRevision, kv.modRevision, kv.lease ?? null);
  }
  db.exec(`
    UPDATE meta SET value = (SELECT value FROM meta WHERE key = 'revision') WHERE key = 'compacted_revision';
    DROP TABLE events;
    DROP TABLE services;
    DROP TABLE frontend_ids;
  `);
}
