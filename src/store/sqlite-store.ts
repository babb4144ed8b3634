/**
 * The Store in an embedded SQLite database (better-sqlite3): one file,
 * written by this process only, on the control plane's thread.
 *
 * Every write is one transaction, begun IMMEDIATE (it takes the write lock
 * up front, so the revision it reads cannot move under it); the revision
 * and the compacted revision live in the `meta` table and are read inside
 * each transaction rather than cached. Subscribers are called after the
 * commit, synchronously, in revision order.
 */
import { closeSync, fchmodSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { SluiceError } from '../errors.js';
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

/**
 * Schema migrations: MIGRATIONS[i] takes the schema from version i to i + 1,
 * inside the transaction that records the new version. Append, never edit.
 */
const MIGRATIONS: readonly string[] = [
  // 1: the first schema. STRICT tables reject a value of the wrong type
  // instead of storing it; names compare with BINARY (byte order).
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  ) STRICT;
  INSERT INTO meta (key, value) VALUES ('revision', 0), ('compacted_revision', 0);

  CREATE TABLE services (
    name            TEXT PRIMARY KEY COLLATE BINARY,
    definition      TEXT NOT NULL,   -- JSON of the ServiceDefinition, as given
    revision        INTEGER NOT NULL,
    create_revision INTEGER NOT NULL
  ) STRICT;

  -- One row per revision in (compacted_revision, revision], except none for
  -- revisions compacted in the transaction that made them.
  CREATE TABLE events (
    revision INTEGER PRIMARY KEY,
    type     TEXT NOT NULL CHECK (type IN ('PUT', 'DELETE')),
    name     TEXT NOT NULL,
    service  TEXT NOT NULL           -- JSON of the StoredService after a PUT, before a DELETE
  ) STRICT;

  CREATE TABLE frontend_ids (
    frontend   TEXT PRIMARY KEY,
    service_id INTEGER NOT NULL,
    backends   TEXT NOT NULL         -- JSON [[identity, id], ...]
  ) STRICT;

  CREATE TABLE leases (
    id            TEXT PRIMARY KEY,
    ttl_seconds   INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX leases_by_expiry ON leases (expires_at_ms, id);
  `,
];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Above any name a service can have after `prefix`: U+10FFFF is the largest
 * code point, so its UTF-8 bytes (F4 8F BF BF) sort after those of every
 * other character that may follow the prefix. ('\uffff' would miss names
 * with a supplementary-plane character there.)
 */
const PREFIX_END = '\u{10FFFF}';

type ServiceRow = { definition: string; revision: number; create_revision: number };
type EventRow = { revision: number; type: StoreEvent['type']; name: string; service: string };
type IdsRow = { frontend: string; service_id: number; backends: string };
type LeaseRow = { id: string; ttl_seconds: number; expires_at_ms: number };
type PutItem = { definition: ServiceDefinition; expectedRevision?: number };
type Written = { name: string; definition: string; revision: number; createRevision: number };
type PutWritten = { name: string; definition: ServiceDefinition; revision: number; createRevision: number };

/** Store in a SQLite file; see the Store interface for the semantics. */
/** Writes pause this long before the WAL is checkpointed. */
const CHECKPOINT_IDLE_MS = 250;
/** ... or it is checkpointed after this many writes in a row (about 4 pages each). */
const CHECKPOINT_EVERY_WRITES = 2500;

export class SqliteStore implements Store {
  readonly #db: Database.Database;
  readonly #maxEvents: number;
  readonly #fanout: EventFanout;
  readonly #stmt: ReturnType<typeof prepare>;
  readonly #putTx: (items: readonly PutItem[]) => PutWritten[];
  readonly #deleteTx: (name: string, expectedRevision: number | undefined) => Written & { newRevision: number };
  readonly #eventsTx: (since: number) => EventRow[];
  readonly #saveIdsTx: (set: Map<string, FrontendIds>, forget: readonly string[]) => void;
  readonly #keepAliveTx: (id: string, nowMs: number) => LeaseRow;
  #closed = false;
  /** Pending idle checkpoint, and writes since the last checkpoint. */
  #checkpointTimer: NodeJS.Timeout | undefined;
  #writesSinceCheckpoint = 0;

  private constructor(db: Database.Database, maxEvents: number, fanout: EventFanout) {
    this.#db = db;
    this.#maxEvents = maxEvents;
    this.#fanout = fanout;
    const s = prepare(db);
    this.#stmt = s;

    this.#putTx = db.transaction((items: readonly PutItem[]): PutWritten[] => {
      const before = s.getMeta.get('revision') as number;
      const after = before + items.length;
      // Events this transaction would compact straight away are not written.
      const firstKept = after - maxEvents + 1;
      const out: PutWritten[] = [];
      let revision = before;
      for (const { definition, expectedRevision } of items) {
        const { name } = definition;
        // Sees the earlier items of this batch: they are written already.
        const current = s.getRevisions.get(name) as { revision: number; create_revision: number } | undefined;
        checkPutPrecondition(name, current, expectedRevision);
        revision++;
        const json = JSON.stringify(definition);
        const createRevision = current?.create_revision ?? revision;
        s.upsertService.run(name, json, revision, createRevision);
        if (revision >= firstKept) s.insertEvent.run(revision, 'PUT', name, storedServiceJson(json, revision, createRevision));
        out.push({ name, definition, revision, createRevision });
      }
      s.setMeta.run(after, 'revision');
      this.#compact(after);
      return out;
    }).immediate;

    this.#deleteTx = db.transaction((name: string, expectedRevision: number | undefined) => {
      const row = s.getService.get(name) as ServiceRow | undefined;
      checkDeletePrecondition(name, row, expectedRevision);
      const newRevision = (s.getMeta.get('revision') as number) + 1;
      s.deleteService.run(name);
      const json = row!.definition;
      s.insertEvent.run(newRevision, 'DELETE', name, storedServiceJson(json, row!.revision, row!.create_revision));
      s.setMeta.run(newRevision, 'revision');
      this.#compact(newRevision);
      return { name, definition: json, revision: row!.revision, createRevision: row!.create_revision, newRevision };
    }).immediate;

    // A read transaction: the bounds checked and the rows read are one snapshot.
    this.#eventsTx = db.transaction((since: number): EventRow[] => {
      checkSince(since, s.getMeta.get('compacted_revision') as number, s.getMeta.get('revision') as number);
      return s.eventsAfter.all(since) as EventRow[];
    });

    this.#saveIdsTx = db.transaction((set: Map<string, FrontendIds>, forget: readonly string[]) => {
      for (const f of forget) s.deleteIds.run(f);
      for (const [frontend, ids] of set) s.upsertIds.run(frontend, ids.serviceId, JSON.stringify([...ids.backends]));
    }).immediate;

    this.#keepAliveTx = db.transaction((id: string, nowMs: number): LeaseRow => {
      const row = s.keepAlive.get(nowMs, id, nowMs) as LeaseRow | undefined;
      if (row !== undefined) return row;
      const lease = s.getLease.get(id) as LeaseRow | undefined;
      throw leaseNotFound(id, lease?.expires_at_ms);
    }).immediate;
  }

  /**
   * Open the store at `path`, creating the file (mode 0600) and the schema
   * if need be; the directory must exist. An existing file is migrated to
   * the current schema; one written by a newer sluice is refused
   * (FAILED_PRECONDITION), as is a file that is not a store.
   */
  static open(path: string, opts: StoreOptions = {}): SqliteStore {
    const o = resolveStoreOptions(opts);
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
      // only an OS crash or power loss can drop the last transactions. That
      // node rebooted: its dataplane is rebuilt from this store anyway, and the
      // lost writes come back from their sources (the Kubernetes watch resyncs,
      // API clients re-apply, registered backends keep their leases alive
      // again). FULL would fsync on every commit, lease keep-alives included,
      // and better-sqlite3 runs on the event loop: each fsync (milliseconds on
      // cloud disks) would stall the gRPC server and health checks.
      db.pragma('synchronous = NORMAL');
      // Checkpoints (copying the WAL into the database, with an fsync) are
      // run by the store itself when writes pause (see #wrote), not by
      // whichever commit happens to cross the threshold: that commit would
      // take milliseconds instead of a fraction of one.
      db.pragma('wal_autocheckpoint = 0');
      // A damaged file is refused here, with its path, rather than failing
      // some later query with SQLite's words alone.
      const check = db.pragma('quick_check', { simple: true }) as string;
      if (check !== 'ok') throw new SluiceError('FAILED_PRECONDITION', `the store at ${path} is damaged (${check})`);
      migrate(db, path);
      const store = new SqliteStore(db, o.maxEvents, new EventFanout(o.onListenerError));
      // Honour a smaller maxEvents than the one the log was written with.
      db.transaction(() => store.#compact(store.#stmt.getMeta.get('revision') as number)).immediate();
      return store;
    } catch (err) {
      db?.close();
      if (err instanceof SluiceError) throw err;
      throw new SluiceError('FAILED_PRECONDITION', `cannot open the store at ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** See Store.revision. */
  revision(): number {
    this.#checkOpen();
    return this.#stmt.getMeta.get('revision') as number;
  }

  /** See Store.get. */
  get(name: string): StoredService | undefined {
    this.#checkOpen();
    const row = this.#stmt.getService.get(name) as ServiceRow | undefined;
    return row === undefined ? undefined : toStored(row.definition, row.revision, row.create_revision);
  }

  /** See Store.list. Names in byte order (SQLite's BINARY collation). */
  list(opts: ListOptions = {}): StoredService[] {
    this.#checkOpen();
    const limit = checkListOptions(opts) ?? -1; // LIMIT -1: no limit
    const { prefix, startAfter } = opts;
    const s = this.#stmt;
    let rows: ServiceRow[];
    if (prefix !== undefined && prefix !== '') {
      rows = (startAfter === undefined
        ? s.listPrefix.all(prefix, prefix + PREFIX_END, limit)
        : s.listPrefixAfter.all(prefix, prefix + PREFIX_END, startAfter, limit)) as ServiceRow[];
    } else {
      rows = (startAfter === undefined ? s.listAll.all(limit) : s.listAfter.all(startAfter, limit)) as ServiceRow[];
    }
    return rows.map((r) => toStored(r.definition, r.revision, r.create_revision));
  }

  /** See Store.count. */
  count(prefix?: string): number {
    this.#checkOpen();
    checkListOptions(prefix === undefined ? {} : { prefix });
    if (prefix === undefined || prefix === '') return this.#stmt.countAll.get() as number;
    return this.#stmt.countPrefix.get(prefix, prefix + PREFIX_END) as number;
  }

  /** See Store.put. */
  put(items: Array<{ definition: ServiceDefinition; expectedRevision?: number }>): StoredService[] {
    this.#checkOpen();
    checkPutItems(items);
    if (items.length === 0) return [];
    const written = this.#putTx(items);
    this.#wrote();
    // The definitions given are what was stored: no need to parse them back.
    const stored = written.map((w): StoredService => ({ definition: w.definition, revision: w.revision, createRevision: w.createRevision }));
    if (this.#fanout.size > 0) {
      this.#fanout.publish(stored.map((service, i) => ({ type: 'PUT', name: written[i]!.name, revision: service.revision, service })));
    }
    return stored;
  }

  /** See Store.delete. */
  delete(name: string, expectedRevision?: number): number {
    this.#checkOpen();
    const w = this.#deleteTx(name, expectedRevision);
    this.#wrote();
    if (this.#fanout.size > 0) {
      this.#fanout.publish([
        { type: 'DELETE', name, revision: w.newRevision, service: toStored(w.definition, w.revision, w.createRevision) },
      ]);
    }
    return w.newRevision;
  }

  /** See Store.eventsSince. */
  eventsSince(since: number): StoreEvent[] {
    this.#checkOpen();
    return this.#eventsTx(since).map((r) => ({
      type: r.type,
      name: r.name,
      revision: r.revision,
      service: JSON.parse(r.service) as StoredService,
    }));
  }

  /** See Store.compactedRevision. */
  compactedRevision(): number {
    this.#checkOpen();
    return this.#stmt.getMeta.get('compacted_revision') as number;
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
    for (const r of this.#stmt.allIds.all() as IdsRow[]) {
      out.set(r.frontend, { serviceId: r.service_id, backends: new Map(JSON.parse(r.backends) as Array<[string, number]>) });
    }
    return out;
  }

  /** See Store.saveIds. */
  saveIds(set: Map<string, FrontendIds>, forget: Iterable<string>): void {
    this.#checkOpen();
    const gone = checkSaveIds(set, forget);
    this.#saveIdsTx(set, gone);
    this.#wrote();
  }

  /** See Store.grantLease. */
  grantLease(ttlSeconds: number, nowMs: number): Lease {
    this.#checkOpen();
    checkTtl(ttlSeconds);
    checkNow(nowMs);
    const expiresAtMs = nowMs + ttlSeconds * 1000;
    for (;;) {
      const id = newLeaseId();
      // 64 random bits: a collision is all but impossible, but would be retried, not thrown.
      if (this.#stmt.insertLease.run(id, ttlSeconds, expiresAtMs).changes === 1) {
        this.#wrote();
        return { id, ttlSeconds, expiresAtMs };
      }
    }
  }

  /** See Store.keepAlive. */
  keepAlive(id: string, nowMs: number): Lease {
    this.#checkOpen();
    checkNow(nowMs);
    const lease = toLease(this.#keepAliveTx(id, nowMs));
    this.#wrote();
    return lease;
  }

  /** See Store.getLease. */
  getLease(id: string): Lease | undefined {
    this.#checkOpen();
    const row = this.#stmt.getLease.get(id) as LeaseRow | undefined;
    return row === undefined ? undefined : toLease(row);
  }

  /** See Store.revokeLease. */
  revokeLease(id: string): boolean {
    this.#checkOpen();
    const gone = this.#stmt.deleteLease.run(id).changes === 1;
    this.#wrote();
    return gone;
  }

  /** See Store.expiredLeases. Oldest expiry first, then by id. */
  expiredLeases(nowMs: number): Lease[] {
    this.#checkOpen();
    checkNow(nowMs);
    return (this.#stmt.expiredLeases.all(nowMs) as LeaseRow[]).map(toLease);
  }

  /** See Store.close. Drops the subscribers; every other method then throws FAILED_PRECONDITION. */
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

  close(): void {
    if (this.#closed) return;
    this.#checkpoint();
    this.#closed = true;
    this.#fanout.clear();
    this.#db.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw closedError();
  }

  /** Inside a write transaction: keep at most maxEvents events, the newest. */
  #compact(revision: number): void {
    const target = revision - this.#maxEvents;
    if (target <= (this.#stmt.getMeta.get('compacted_revision') as number)) return;
    this.#stmt.deleteEventsThrough.run(target);
    this.#stmt.setMeta.run(target, 'compacted_revision');
  }
}

/** Every statement, prepared once per connection. */
function prepare(db: Database.Database) {
  const serviceColumns = 'definition, revision, create_revision';
  return {
    getMeta: db.prepare('SELECT value FROM meta WHERE key = ?').pluck(),
    setMeta: db.prepare('UPDATE meta SET value = ? WHERE key = ?'),

    getService: db.prepare(`SELECT ${serviceColumns} FROM services WHERE name = ?`),
    getRevisions: db.prepare('SELECT revision, create_revision FROM services WHERE name = ?'),
    upsertService: db.prepare(
      `INSERT INTO services (name, definition, revision, create_revision) VALUES (?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, revision = excluded.revision`,
    ),
    deleteService: db.prepare('DELETE FROM services WHERE name = ?'),
    // Prefixes are ranges over the primary key, not LIKE: '%' and '_' in a name are plain characters.
    listAll: db.prepare(`SELECT ${serviceColumns} FROM services ORDER BY name LIMIT ?`),
    listAfter: db.prepare(`SELECT ${serviceColumns} FROM services WHERE name > ? ORDER BY name LIMIT ?`),
    listPrefix: db.prepare(`SELECT ${serviceColumns} FROM services WHERE name >= ? AND name < ? ORDER BY name LIMIT ?`),
    listPrefixAfter: db.prepare(
      `SELECT ${serviceColumns} FROM services WHERE name >= ? AND name < ? AND name > ? ORDER BY name LIMIT ?`,
    ),
    countAll: db.prepare('SELECT count(*) FROM services').pluck(),
    countPrefix: db.prepare('SELECT count(*) FROM services WHERE name >= ? AND name < ?').pluck(),

    insertEvent: db.prepare('INSERT INTO events (revision, type, name, service) VALUES (?, ?, ?, ?)'),
    eventsAfter: db.prepare('SELECT revision, type, name, service FROM events WHERE revision > ? ORDER BY revision'),
    deleteEventsThrough: db.prepare('DELETE FROM events WHERE revision <= ?'),

    allIds: db.prepare('SELECT frontend, service_id, backends FROM frontend_ids ORDER BY frontend'),
    upsertIds: db.prepare(
      `INSERT INTO frontend_ids (frontend, service_id, backends) VALUES (?, ?, ?)
       ON CONFLICT (frontend) DO UPDATE SET service_id = excluded.service_id, backends = excluded.backends`,
    ),
    deleteIds: db.prepare('DELETE FROM frontend_ids WHERE frontend = ?'),

    insertLease: db.prepare('INSERT OR IGNORE INTO leases (id, ttl_seconds, expires_at_ms) VALUES (?, ?, ?)'),
    getLease: db.prepare('SELECT id, ttl_seconds, expires_at_ms FROM leases WHERE id = ?'),
    // Extends only a live lease (expiry after now), by its own TTL.
    keepAlive: db.prepare(
      `UPDATE leases SET expires_at_ms = ? + ttl_seconds * 1000 WHERE id = ? AND expires_at_ms > ?
       RETURNING id, ttl_seconds, expires_at_ms`,
    ),
    deleteLease: db.prepare('DELETE FROM leases WHERE id = ?'),
    expiredLeases: db.prepare(
      'SELECT id, ttl_seconds, expires_at_ms FROM leases WHERE expires_at_ms <= ? ORDER BY expires_at_ms, id',
    ),
  };
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

/** Bring the schema to SCHEMA_VERSION, in one transaction. */
function migrate(db: Database.Database, path: string): void {
  db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT');
    const found = db.prepare('SELECT version FROM schema_version').pluck().all() as number[];
    if (found.length > 1) throw new SluiceError('FAILED_PRECONDITION', `${path}: schema_version has ${found.length} rows`);
    const version = found[0] ?? 0;
    if (version > SCHEMA_VERSION) {
      throw new SluiceError(
        'FAILED_PRECONDITION',
        `${path} has schema version ${version}, newer than this sluice knows (${SCHEMA_VERSION})`,
      );
    }
    for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
    if (found.length === 0) db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(SCHEMA_VERSION);
    else db.prepare('UPDATE schema_version SET version = ?').run(SCHEMA_VERSION);
  }).immediate();
}

function toStored(definition: string, revision: number, createRevision: number): StoredService {
  return { definition: JSON.parse(definition) as ServiceDefinition, revision, createRevision };
}

function toLease(r: LeaseRow): Lease {
  return { id: r.id, ttlSeconds: r.ttl_seconds, expiresAtMs: r.expires_at_ms };
}
