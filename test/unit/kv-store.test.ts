/**
 * The KvStore contract (test/helpers/kv-contract.ts) on the embedded
 * stores. Their lease clocks are fake: time passes when the test says.
 * Then what only the SQLite store promises: everything survives a reopen,
 * a private file, schema versions, refusals that name the file, byte
 * order, and the migration of a file of the service-shaped store (schema
 * 1): the store's part (the hook's rows, one transaction, refusals) and,
 * through the daemon's hook (catalog/legacy.ts), the catalog's keys.
 */
import { mkdtemp, open as openFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import Database from 'better-sqlite3';
import { CatalogKeys } from '../../src/catalog/keys.js';
import { legacyRowsToCatalog } from '../../src/catalog/legacy.js';
import { SluiceError, type SluiceErrorCode } from '../../src/errors.js';
import type { ServiceDefinition } from '../../src/model/definition.js';

/** A definition as schema-1 files hold it: written before noBackends existed. */
type V1Definition = Omit<ServiceDefinition, 'noBackends'>;
import { CompactedError, type KvChanges, type KvStore } from '../../src/store/kv.js';
import { MemoryKvStore } from '../../src/store/memory-kv.js';
import { SCHEMA_VERSION, SqliteKvStore, type Schema1Rows, type SqliteKvOptions } from '../../src/store/sqlite-kv.js';
import { kvContract } from '../helpers/kv-contract.js';


kvContract(test, 'memory', async (t) => {
  let now = 1_000_000;
  const store = new MemoryKvStore({ now: () => now, leaseCheckMs: 0 });
  t.teardown(() => store.close());
  return {
    store,
    advance: async (ms) => {
      now += ms;
      store.expireLeases();
    },
  };
});

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-kv-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

kvContract(test, 'sqlite', async (t) => {
  let now = 1_000_000;
  const store = SqliteKvStore.open(join(await tempDir(t), 'kv.db'), { now: () => now, leaseCheckMs: 0 });
  t.teardown(() => store.close()); // teardowns run last-registered first: close, then remove the directory
  return {
    store,
    advance: async (ms) => {
      now += ms;
      store.expireLeases();
    },
  };
});

// ------------------------------------------------------------------ SQLite only

/** A fake wall clock. */
class Clock {
  constructor(public ms = 1_000_000) {}
  readonly now = (): number => this.ms;
}

/** Open a store (no lease timer unless asked) that is closed when the test ends. */
function openKv(t: ExecutionContext, path: string, opts: SqliteKvOptions = {}): SqliteKvStore {
  const store = SqliteKvStore.open(path, { leaseCheckMs: 0, ...opts });
  t.teardown(() => store.close());
  return store;
}

/** What a watch delivers. */
function watchAll(store: KvStore, prefix: string, after: number): { changes: KvChanges[]; errors: Error[]; cancel: () => void } {
  const changes: KvChanges[] = [];
  const errors: Error[] = [];
  const w = store.watch(prefix, after, (c) => changes.push(c), (e) => errors.push(e));
  return { changes, errors, cancel: () => w.cancel() };
}

/** Let the microtasks queued so far (watch deliveries) run. */
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function throwsCode(t: ExecutionContext, fn: () => unknown, code: SluiceErrorCode, what: string): SluiceError | undefined {
  const err = t.throws(fn, { instanceOf: SluiceError }, what) as SluiceError | undefined;
  t.is(err?.code, code, `${what}: ${err?.message}`);
  return err;
}

async function rejectsCode(t: ExecutionContext, p: Promise<unknown>, code: SluiceErrorCode, what: string): Promise<SluiceError | undefined> {
  const err = (await t.throwsAsync(p, { instanceOf: SluiceError }, what)) as SluiceError | undefined;
  t.is(err?.code, code, `${what}: ${err?.message}`);
  return err;
}

test('sqlite: keys, revisions, leases and history survive close and reopen', async (t) => {
  const path = join(await tempDir(t), 'kv.db');
  const clock = new Clock();
  const s1 = openKv(t, path, { now: clock.now });
  const live = watchAll(s1, '/k/', 0);
  const lease = await s1.grantLease(60);
  await s1.txn([], [{ put: '/k/a', value: '1' }, { put: '/k/b', value: '2' }]);
  await s1.txn([], [{ put: '/k/a', value: '3' }, { put: '/k/l', value: 'leased', lease: lease.id }]);
  await s1.txn([], [{ delete: '/k/b' }]);
  await s1.txn([], [{ put: '/x/y', value: 'elsewhere' }]);
  const before = await s1.range('/');
  await turn();
  t.is(live.changes.length, 3, 'the live watch saw the three transactions under /k/');
  await s1.close();

  clock.ms += 5_000;
  const s2 = openKv(t, path, { now: clock.now });
  t.is(await s2.revision(), 4, 'the revision');
  t.deepEqual(await s2.range('/'), before, 'every key, with its revisions and lease');
  t.deepEqual(await s2.get('/k/a'), { key: '/k/a', value: '3', createRevision: 1, modRevision: 2 });
  t.deepEqual(await s2.lease(lease.id), { id: lease.id, ttlSeconds: 60, remainingSeconds: 55 }, 'the lease, with its expiry');
  t.deepEqual(await s2.leaseKeys(lease.id), ['/k/l']);
  const replay = watchAll(s2, '/k/', 0);
  await turn();
  t.deepEqual(replay.errors, []);
  t.deepEqual(replay.changes, live.changes, 'a watch from revision 0 replays what was delivered live');
  t.deepEqual((await s2.txn([], [{ put: '/k/c', value: '4' }])).revision, 5, 'the revision carries on');

  clock.ms += 60_000;
  t.is(s2.expireLeases(), 1, 'the lease expires by its stored deadline');
  t.is(await s2.get('/k/l'), undefined);
  await s2.compact(3);
  await s2.close();

  const s3 = openKv(t, path, { now: clock.now });
  const old = watchAll(s3, '/k/', 2);
  const recent = watchAll(s3, '/k/', 3);
  await turn();
  t.true(old.errors[0] instanceof CompactedError, 'the compaction survives the reopen');
  t.deepEqual(recent.changes.map((c) => c.revision), [5, 6], 'history after the compaction, with the expiry');
  t.deepEqual(recent.changes[1]!.events.map((e) => [e.type, e.kv.key, e.prev?.lease]), [['DELETE', '/k/l', lease.id]]);
});

test('sqlite: a replayed history is what watchers saw live, leases, deletes and prefixes included', async (t) => {
  const clock = new Clock();
  const store = openKv(t, join(await tempDir(t), 'kv.db'), { now: clock.now });
  const live = watchAll(store, '/', 0);
  const a = await store.grantLease(10);
  const b = await store.grantLease(10);
  await store.txn([], [{ put: '/r/1', value: 'one', lease: a.id }, { put: '/r/2', value: 'two' }, { put: '/r/1', value: 'again', lease: b.id }]);
  await store.txn([], [{ put: '/r/2', value: 'leased', lease: a.id }, { delete: '/absent' }]);
  await store.txn([], [{ delete: '/absent' }]);
  await store.txn([], [{ put: '/s/1', value: 's' }, { put: '/s/2', value: 's' }]);
  await store.txn([], [{ deletePrefix: '/s/' }, { put: '/s/3', value: 'after' }]);
  await store.revokeLease(a.id);
  clock.ms += 10_000;
  t.is(store.expireLeases(), 1);
  await turn();
  t.deepEqual(live.changes.map((c) => c.revision), [1, 2, 4, 5, 6, 7], 'a revision that changed nothing is not delivered');
  const replay = watchAll(store, '/', 0);
  await turn();
  t.deepEqual(replay.changes, live.changes);
  const sOnly = watchAll(store, '/s/', 0);
  await turn();
  t.deepEqual(sOnly.changes.map((c) => [c.revision, c.events.length]), [[4, 2], [5, 3]], 'the replay is filtered by prefix');
});

test('sqlite: watchers are called after the transaction, not inside it', async (t) => {
  const store = openKv(t, join(await tempDir(t), 'kv.db'));
  const w = watchAll(store, '/', 0);
  const pending = store.txn([], [{ put: '/a', value: '1' }]);
  t.is(w.changes.length, 0, 'delivered synchronously');
  await pending;
  await turn();
  t.is(w.changes.length, 1);
});

test('sqlite: history is bounded by historyRevisions, and by a smaller one on reopen', async (t) => {
  const path = join(await tempDir(t), 'kv.db');
  const s1 = openKv(t, path, { historyRevisions: 3 });
  for (let i = 1; i <= 5; i++) await s1.txn([], [{ put: '/h', value: String(i) }]);
  const gone = watchAll(s1, '/', 1);
  const kept = watchAll(s1, '/', 2);
  await turn();
  t.true(gone.errors[0] instanceof CompactedError, 'revision 2 was compacted');
  t.deepEqual(kept.changes.map((c) => c.revision), [3, 4, 5]);
  await s1.close();
  const s2 = openKv(t, path, { historyRevisions: 1 });
  const gone2 = watchAll(s2, '/', 3);
  const kept2 = watchAll(s2, '/', 4);
  await turn();
  t.true(gone2.errors[0] instanceof CompactedError, 'revision 4 was compacted on reopen');
  t.deepEqual(kept2.changes.map((c) => c.revision), [5]);
  const ahead = watchAll(s2, '/', 6);
  await turn();
  t.true(ahead.errors[0] instanceof CompactedError, 'a revision ahead of the store');
});

test('sqlite: ranges and prefix deletes are in byte order and take every key under the prefix', async (t) => {
  const store = openKv(t, join(await tempDir(t), 'kv.db'));
  // U+FFFF sorts before U+10FFFF in UTF-8 (not in UTF-16); '%' and '_' are not wildcards.
  const under = ['/p/%', '/p/_', '/p/a', '/p/\uffff', '/p/\u{10FFFF}', '/p/\u{10FFFF}x'];
  await store.txn([], [...under, '/p', '/p0', '/pa', '/o'].reverse().map((k) => ({ put: k, value: k })));
  t.deepEqual((await store.range('/p/')).kvs.map((kv) => kv.key), under);
  const page = await store.range('/p/', { startAfter: '/p/\uffff', limit: 1 });
  t.deepEqual([page.kvs.map((kv) => kv.key), page.more], [['/p/\u{10FFFF}'], true]);
  await store.txn([], [{ deletePrefix: '/p/' }]);
  t.deepEqual((await store.range('/')).kvs.map((kv) => kv.key), ['/o', '/p', '/p0', '/pa']);
});

test('sqlite: leases expire on the store\'s own timer', async (t) => {
  const clock = new Clock();
  const store = openKv(t, join(await tempDir(t), 'kv.db'), { now: clock.now, leaseCheckMs: 10 });
  const lease = await store.grantLease(1);
  await store.txn([], [{ put: '/l', value: 'x', lease: lease.id }]);
  const w = watchAll(store, '/', 1);
  clock.ms += 1_000;
  for (const end = Date.now() + 5_000; w.changes.length === 0 && Date.now() < end;) await new Promise((r) => setTimeout(r, 10));
  t.deepEqual(w.changes.map((c) => c.events.map((e) => [e.type, e.kv.key])), [[['DELETE', '/l']]]);
  t.is(await store.lease(lease.id), undefined);
});

test('sqlite: a closed store refuses every method', async (t) => {
  const store = openKv(t, join(await tempDir(t), 'kv.db'));
  const lease = await store.grantLease(10);
  await store.close();
  await t.notThrowsAsync(store.close(), 'a second close');
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['revision', () => store.revision()],
    ['get', () => store.get('/a')],
    ['range', () => store.range('/')],
    ['txn', () => store.txn([], [{ put: '/a', value: '1' }])],
    ['grantLease', () => store.grantLease(10)],
    ['keepAlive', () => store.keepAlive(lease.id)],
    ['lease', () => store.lease(lease.id)],
    ['leaseKeys', () => store.leaseKeys(lease.id)],
    ['revokeLease', () => store.revokeLease(lease.id)],
    ['compact', () => store.compact(0)],
  ];
  for (const [name, call] of calls) await rejectsCode(t, call(), 'FAILED_PRECONDITION', name);
  throwsCode(t, () => store.watch('/', 0, () => {}, () => {}), 'FAILED_PRECONDITION', 'watch');
  t.is(store.expireLeases(), 0);
});

test('sqlite: bad options and arguments are INVALID_ARGUMENT, naming the field', async (t) => {
  const path = join(await tempDir(t), 'kv.db');
  for (const [field, opts] of [['historyRevisions', { historyRevisions: 0 }], ['leaseCheckMs', { leaseCheckMs: -1 }]] as const) {
    t.is(throwsCode(t, () => SqliteKvStore.open(path, opts), 'INVALID_ARGUMENT', field)?.field, field);
  }
  const store = openKv(t, path);
  await store.txn([], [{ put: '/a', value: '1' }]);
  t.is((await rejectsCode(t, store.range('/', { limit: -1 }), 'INVALID_ARGUMENT', 'a negative limit'))?.field, 'limit');
  t.is((await rejectsCode(t, store.compact(2), 'INVALID_ARGUMENT', 'compact ahead of the store'))?.field, 'revision');
  t.is((await rejectsCode(t, store.grantLease(0), 'INVALID_ARGUMENT', 'a TTL of 0'))?.field, 'ttlSeconds');
});

test('sqlite: the database file and its WAL are private (0600)', async (t) => {
  const path = join(await tempDir(t), 'kv.db');
  const umask = process.umask(0o000); // even with a permissive umask
  let store: SqliteKvStore;
  try {
    store = openKv(t, path);
  } finally {
    process.umask(umask);
  }
  await store.txn([], [{ put: '/a', value: '1' }]); // the WAL exists while the store is open
  for (const f of [path, `${path}-wal`, `${path}-shm`]) {
    t.is(((await stat(f)).mode & 0o777).toString(8), '600', `mode of ${f}`);
  }
});

test('sqlite: WAL journal and schema version recorded; a newer schema is refused', async (t) => {
  const path = join(await tempDir(t), 'kv.db');
  await SqliteKvStore.open(path).close();
  const db = new Database(path);
  t.is(db.pragma('journal_mode', { simple: true }), 'wal');
  t.is(SCHEMA_VERSION, 2);
  t.deepEqual(db.prepare('SELECT version FROM schema_version').pluck().all(), [2]);
  db.prepare('UPDATE schema_version SET version = 3').run();
  db.close();
  const err = throwsCode(t, () => SqliteKvStore.open(path), 'FAILED_PRECONDITION', 'a newer schema');
  t.regex(err?.message ?? '', /schema version 3/);
  t.true(err?.message.includes(path), `the message names the file: ${err?.message}`);
});

test('sqlite: a garbage file, a damaged one, another database or a missing directory is refused, naming the path', async (t) => {
  const dir = await tempDir(t);
  const garbage = join(dir, 'garbage.db');
  await writeFile(garbage, 'this is not a database, just some text long enough to have a header '.repeat(10));
  const foreign = join(dir, 'foreign.db');
  const db = new Database(foreign);
  db.exec('CREATE TABLE users (name TEXT)');
  db.close();
  // A store whose pages are overwritten in the middle.
  const damaged = join(dir, 'damaged.db');
  const s = SqliteKvStore.open(damaged, { leaseCheckMs: 0 });
  await s.txn([], Array.from({ length: 2000 }, (_, i) => ({ put: `/k/${String(i).padStart(5, '0')}`, value: 'v'.repeat(100) })));
  await s.close();
  const fh = await openFile(damaged, 'r+');
  await fh.write(Buffer.alloc(4096 * 3, 0x5a), 0, 4096 * 3, 4096 * 4);
  await fh.close();
  const missing = join(dir, 'no-such-dir', 'kv.db');
  for (const [what, path] of [['garbage', garbage], ['damaged', damaged], ['foreign', foreign], ['missing directory', missing]] as const) {
    const err = throwsCode(t, () => SqliteKvStore.open(path), 'FAILED_PRECONDITION', what);
    t.true(err?.message.includes(path), `${what}: the message names the file: ${err?.message}`);
  }
});

test('sqlite: a bulk load of 10,000 services and their frontends is one revision', async (t) => {
  const store = openKv(t, join(await tempDir(t), 'kv.db'));
  const ops = [];
  for (let i = 0; i < 10_000; i++) {
    const name = `default/svc-${String(i).padStart(5, '0')}`;
    const vip = `10.96.${i >> 8}.${i & 255}`;
    const definition: V1Definition = {
      name,
      addresses: [vip],
      ports: [{ name: 'http', port: 80, protocol: 'tcp', targetPort: 8080 }],
      backends: [1, 2, 3].map((b) => ({ address: `10.1.${i >> 8}.${b}`, weight: 1, state: 'active' as const })),
    };
    ops.push({ put: `/sluice/services/${name}`, value: JSON.stringify(definition) });
    ops.push({ put: `/sluice/frontends/${vip}:80/tcp`, value: name });
  }
  let start = performance.now();
  t.deepEqual(await store.txn([], ops), { succeeded: true, revision: 1 });
  const txnMs = performance.now() - start;
  start = performance.now();
  const all = await store.range('/sluice/');
  const rangeMs = performance.now() - start;
  t.is(all.kvs.length, 20_000);
  t.false(all.more);
  t.like(all.kvs[19_999], { key: '/sluice/services/default/svc-09999', createRevision: 1, modRevision: 1 });
  t.log(`txn of 20,000 puts: ${txnMs.toFixed(0)} ms; range of 20,000 keys: ${rangeMs.toFixed(0)} ms`);
});

// ---------------------------------------------------------- migration from schema 1

/**
 * Writes a file of schema 1, the service-shaped store: with that store
 * itself (src/store/sqlite-store.ts) while it exists, else with the same
 * tables and rows by hand. The test below checks the two agree.
 */
interface V1Writer {
  grantLease(ttlSeconds: number, nowMs: number): string;
  revokeLease(id: string): void;
  /** Each definition at its own revision. */
  put(definitions: V1Definition[]): void;
  delete(name: string): void;
  saveIds(frontend: string, serviceId: number): void;
  close(): void;
}

/** The tables of schema 1, as src/store/sqlite-store.ts created them. */
const V1_SCHEMA = `
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
  `;

function handWriter(path: string): V1Writer {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT');
  db.exec(V1_SCHEMA);
  db.exec('INSERT INTO schema_version (version) VALUES (1)');
  let revision = 0;
  let leases = 0;
  const stored = (definition: string, rev: number, create: number): string =>
    `{"definition":${definition},"revision":${rev},"createRevision":${create}}`;
  const setRevision = (): void => void db.prepare("UPDATE meta SET value = ? WHERE key = 'revision'").run(revision);
  return {
    grantLease: (ttl, now) => {
      const id = (++leases).toString(16).padStart(16, '0');
      db.prepare('INSERT INTO leases (id, ttl_seconds, expires_at_ms) VALUES (?, ?, ?)').run(id, ttl, now + ttl * 1000);
      return id;
    },
    revokeLease: (id) => void db.prepare('DELETE FROM leases WHERE id = ?').run(id),
    put: (defs) => {
      for (const d of defs) {
        revision++;
        const json = JSON.stringify(d);
        const row = db.prepare('SELECT create_revision FROM services WHERE name = ?').pluck().get(d.name) as number | undefined;
        const create = row ?? revision;
        db.prepare(
          `INSERT INTO services (name, definition, revision, create_revision) VALUES (?, ?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, revision = excluded.revision`,
        ).run(d.name, json, revision, create);
        db.prepare('INSERT INTO events (revision, type, name, service) VALUES (?, ?, ?, ?)').run(revision, 'PUT', d.name, stored(json, revision, create));
      }
      setRevision();
    },
    delete: (name) => {
      const row = db.prepare('SELECT definition, revision, create_revision FROM services WHERE name = ?').get(name) as
        { definition: string; revision: number; create_revision: number };
      revision++;
      db.prepare('DELETE FROM services WHERE name = ?').run(name);
      db.prepare('INSERT INTO events (revision, type, name, service) VALUES (?, ?, ?, ?)')
        .run(revision, 'DELETE', name, stored(row.definition, row.revision, row.create_revision));
      setRevision();
    },
    saveIds: (frontend, serviceId) =>
      void db.prepare('INSERT INTO frontend_ids (frontend, service_id, backends) VALUES (?, ?, ?)').run(frontend, serviceId, '[["10.1.0.1:8080",1]]'),
    close: () => void db.close(),
  };
}

const v1Writer = (path: string): V1Writer => handWriter(path);

const T0 = 1_000_000;

/** The hook the daemon passes (its --store-prefix is /sluice on SQLite). */
function catalogMigration(prefix = '/sluice'): Pick<SqliteKvOptions, 'migrateSchema1'> {
  const keys = new CatalogKeys(prefix);
  return { migrateSchema1: (rows) => legacyRowsToCatalog(rows, keys) };
}

/** What a schema-1 file holds after a failed open: its version, its services, and no table of schema 2. */
function assertLeftAtSchema1(t: ExecutionContext, path: string, services: string[]): void {
  const db = new Database(path, { readonly: true });
  t.teardown(() => db.close());
  t.deepEqual(db.prepare('SELECT version FROM schema_version').pluck().all(), [1], 'still schema 1');
  t.deepEqual(db.prepare('SELECT name FROM services ORDER BY name').pluck().all(), services);
  t.deepEqual(db.prepare("SELECT name FROM sqlite_master WHERE name IN ('kv', 'changes')").pluck().all(), [], 'no table of schema 2');
}

function webDef(leased: string, revoked: string, weight: number): V1Definition {
  return {
    name: 'default/web',
    addresses: ['10.96.0.10', '10.96.0.11'],
    ports: [
      { name: 'http', port: 80, protocol: 'tcp', targetPort: 8080 },
      { name: 'dns', port: 53, protocol: 'udp', targetPort: 5353 },
    ],
    backends: [
      { address: '10.1.0.1', weight, state: 'draining' },
      { address: '10.1.0.2', weight: 2, state: 'active', leaseId: leased },
      { address: '10.1.0.3', weight: 1, state: 'maintenance', leaseId: revoked },
      { address: '10.1.0.4', weight: 0, state: 'active' },
    ],
    sessionAffinity: { timeoutSeconds: 300 },
    tableSize: 1021,
  };
}

const apiDef: V1Definition = {
  name: 'api',
  addresses: ['10.96.0.20'],
  ports: [{ name: 'https', port: 443, protocol: 'tcp', targetPort: 8443 }],
  backends: [{ address: '10.1.1.1', weight: 1, state: 'active' }],
};

/** A schema-1 file at revision 5: web (created at 1, changed at 3), api (at 2), a service created and deleted (4, 5). */
function writeV1Scenario(path: string): { leased: string; revoked: string; web: V1Definition } {
  const w = v1Writer(path);
  const leased = w.grantLease(30, T0);
  const revoked = w.grantLease(30, T0);
  w.put([webDef(leased, revoked, 3)]);
  w.put([apiDef]);
  const web = webDef(leased, revoked, 5);
  w.put([web]);
  w.revokeLease(revoked);
  w.put([{ ...apiDef, name: 'gone', addresses: ['10.96.0.30'] }]);
  w.delete('gone');
  w.saveIds('default/web|10.96.0.10:80/tcp', 7);
  w.close();
  return { leased, revoked, web };
}

test('sqlite: a schema-1 file (the service store) is migrated into the catalog\'s keys', async (t) => {
  const path = join(await tempDir(t), 'store.db');
  const { leased, revoked, web } = writeV1Scenario(path);
  const clock = new Clock(T0 + 10_000);
  const store = openKv(t, path, { now: clock.now, ...catalogMigration() });

  t.is(await store.revision(), 5, 'the store revision is kept');
  const { kvs } = await store.range('/');
  t.deepEqual(kvs.map((kv) => kv.key), [
    '/sluice/frontends/10.96.0.10:53/udp',
    '/sluice/frontends/10.96.0.10:80/tcp',
    '/sluice/frontends/10.96.0.11:53/udp',
    '/sluice/frontends/10.96.0.11:80/tcp',
    '/sluice/frontends/10.96.0.20:443/tcp',
    '/sluice/registrations/default/web|10.1.0.2',
    '/sluice/services/api',
    '/sluice/services/default/web',
  ], 'every key (none for the backend whose lease was revoked, none of the deleted service)');
  const byKey = new Map(kvs.map((kv) => [kv.key, kv]));

  const webKv = byKey.get('/sluice/services/default/web')!;
  t.deepEqual(JSON.parse(webKv.value), { ...web, backends: [web.backends[0], web.backends[3]] }, 'the definition with its static backends');
  t.deepEqual([webKv.createRevision, webKv.modRevision, webKv.lease], [1, 3, undefined]);
  t.like(byKey.get('/sluice/services/api'), { value: JSON.stringify(apiDef), createRevision: 2, modRevision: 2 });

  const reg = byKey.get('/sluice/registrations/default/web|10.1.0.2')!;
  t.is(reg.value, '{"weight":2,"state":"active"}');
  t.is(reg.lease, leased, 'attached to its lease');
  t.is(reg.modRevision, 3);
  for (const f of ['10.96.0.10:53/udp', '10.96.0.10:80/tcp', '10.96.0.11:53/udp', '10.96.0.11:80/tcp']) {
    t.like(byKey.get(`/sluice/frontends/${f}`), { value: 'default/web', modRevision: 3, lease: undefined }, f);
  }
  t.is(byKey.get('/sluice/frontends/10.96.0.20:443/tcp')?.value, 'api');

  t.like(await store.lease(leased), { ttlSeconds: 30, remainingSeconds: 20 }, 'the lease is kept, with its expiry');
  t.deepEqual(await store.leaseKeys(leased), ['/sluice/registrations/default/web|10.1.0.2']);
  t.is(await store.lease(revoked), undefined);

  const before = watchAll(store, '/', 4);
  const from = watchAll(store, '/', 5);
  await turn();
  t.true(before.errors[0] instanceof CompactedError, 'the history starts empty, at the current revision');
  t.deepEqual(from.errors, []);
  clock.ms = T0 + 30_000;
  t.is(store.expireLeases(), 1);
  await turn();
  t.deepEqual(from.changes.map((c) => [c.revision, c.events.map((e) => [e.type, e.kv.key])]), [
    [6, [['DELETE', '/sluice/registrations/default/web|10.1.0.2']]],
  ], 'the migrated lease expires as any other, its registration with it');
  await store.close();

  const db = new Database(path, { readonly: true });
  t.teardown(() => db.close());
  t.deepEqual(
    db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all(),
    ['changes', 'kv', 'leases', 'meta', 'schema_version'],
    'services, events and frontend_ids are dropped',
  );
  t.deepEqual(db.prepare('SELECT version FROM schema_version').pluck().all(), [2]);
  t.deepEqual(db.prepare('SELECT key, value FROM meta ORDER BY key').all(), [{ key: 'compacted_revision', value: 5 }, { key: 'revision', value: 6 }]);
});

test('sqlite: the migration from schema 1 puts the catalog under the prefix of the hook\'s keys', async (t) => {
  const path = join(await tempDir(t), 'store.db');
  writeV1Scenario(path);
  const store = openKv(t, path, { now: () => T0, ...catalogMigration('/other/') });
  t.deepEqual((await store.range('/sluice/')).kvs, []);
  t.deepEqual((await store.range('/other/services/')).kvs.map((kv) => kv.key), ['/other/services/api', '/other/services/default/web']);
  t.is((await store.range('/other/')).kvs.length, 8);
});

test('sqlite: a schema-1 file with two services on one frontend is refused and left as it was', async (t) => {
  const path = join(await tempDir(t), 'store.db');
  const w = v1Writer(path);
  w.put([apiDef, { ...apiDef, name: 'api-copy', ports: [{ name: 'https', port: 443, protocol: 'tcp', targetPort: 9443 }] }]);
  w.close();
  const err = throwsCode(t, () => SqliteKvStore.open(path, catalogMigration()), 'FAILED_PRECONDITION', 'a frontend held twice');
  t.regex(err?.message ?? '', /api and api-copy both hold 10\.96\.0\.20:443\/tcp; the file is left at schema 1/);
  t.true(err?.message.includes(path), `the message names the file: ${err?.message}`);
  assertLeftAtSchema1(t, path, ['api', 'api-copy']);
});

test('sqlite: a schema-1 file with a definition that is not JSON is refused and left as it was', async (t) => {
  const path = join(await tempDir(t), 'store.db');
  const w = v1Writer(path);
  w.put([apiDef]);
  w.close();
  const db = new Database(path);
  db.prepare('UPDATE services SET definition = ? WHERE name = ?').run('{"name":', 'api');
  db.close();
  const err = throwsCode(t, () => SqliteKvStore.open(path, catalogMigration()), 'FAILED_PRECONDITION', 'a definition not JSON');
  t.regex(err?.message ?? '', /the definition of service api is not JSON/);
  t.true(err?.message.includes(path), `the message names the file: ${err?.message}`);
  assertLeftAtSchema1(t, path, ['api']);
});

test('sqlite: a schema-1 file opened without a migration is refused, saying what to do, and left as it was', async (t) => {
  const path = join(await tempDir(t), 'store.db');
  writeV1Scenario(path);
  const err = throwsCode(t, () => SqliteKvStore.open(path), 'FAILED_PRECONDITION', 'no migrateSchema1');
  t.regex(err?.message ?? '', /schema version 1 .*migrateSchema1/);
  t.true(err?.message.includes(path), `the message names the file: ${err?.message}`);
  assertLeftAtSchema1(t, path, ['api', 'default/web']);
});

test('sqlite: the schema-1 hook gets the rows inside the upgrade, and the store writes what it returns', async (t) => {
  const path = join(await tempDir(t), 'store.db');
  const { leased, revoked, web } = writeV1Scenario(path);
  const seen: Schema1Rows[] = [];
  const store = openKv(t, path, {
    now: () => T0,
    migrateSchema1: (rows) => {
      seen.push(rows);
      return [
        { key: '/x/a', value: 'A', createRevision: 1, modRevision: 3 },
        { key: '/x/b', value: 'B', createRevision: 5, modRevision: 5, lease: leased },
      ];
    },
  });
  t.is(seen.length, 1);
  t.deepEqual(seen[0], {
    services: [
      { name: 'api', definition: JSON.stringify(apiDef), revision: 2, createRevision: 2 },
      { name: 'default/web', definition: JSON.stringify(web), revision: 3, createRevision: 1 },
    ],
    leases: new Set([leased]),
  }, 'the services by name, and the leases the file still holds (not the revoked one)');
  t.false(seen[0]!.leases.has(revoked));
  t.deepEqual((await store.range('/')).kvs, [
    { key: '/x/a', value: 'A', createRevision: 1, modRevision: 3 },
    { key: '/x/b', value: 'B', createRevision: 5, modRevision: 5, lease: leased },
  ]);
  t.is(await store.revision(), 5);
  await store.close();
  await SqliteKvStore.open(path, { leaseCheckMs: 0 }).close(); // a migrated file needs no hook
});

test('sqlite: keys from the schema-1 hook that the store cannot hold refuse the file, all of the upgrade or none', async (t) => {
  const dir = await tempDir(t);
  const good = { key: '/x/a', value: 'A', createRevision: 1, modRevision: 1 };
  const cases = [
    ['a key twice', [good, good], /key \/x\/a twice/],
    ['an unknown lease', [good, { ...good, key: '/x/b', lease: 'ffffffffffffffff' }], /lease ffffffffffffffff, which the file does not hold/],
    ['a revision ahead of the store', [good, { ...good, key: '/x/b', modRevision: 6 }], /revisions 1\.\.6, not in order within 1\.\.5/],
    ['create after mod', [good, { ...good, key: '/x/b', createRevision: 3, modRevision: 2 }], /revisions 3\.\.2/],
    ['the hook throws', new Error('no such thing'), /no such thing/],
  ] as const;
  for (const [what, out, message] of cases) {
    const path = join(dir, `${what.replaceAll(' ', '-')}.db`);
    writeV1Scenario(path);
    const migrateSchema1 = (): typeof good[] => {
      if (out instanceof Error) throw out;
      return [...out];
    };
    const err = throwsCode(t, () => SqliteKvStore.open(path, { migrateSchema1 }), 'FAILED_PRECONDITION', what);
    t.regex(err?.message ?? '', message, what);
    t.true(err?.message.includes(path), `${what}: the message names the file: ${err?.message}`);
    assertLeftAtSchema1(t, path, ['api', 'default/web']);
  }
});

