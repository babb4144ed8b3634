/**
 * The Store contract, one suite run against both implementations (memory
 * and SQLite), then what only the SQLite store promises: persistence across
 * a reopen, a private file, schema versioning.
 */
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import Database from 'better-sqlite3';
import { SluiceError, type SluiceErrorCode } from '../../src/errors.js';
import type { ServiceDefinition, StoredService } from '../../src/model/definition.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { StoreOptions } from '../../src/store/options.js';
import { SCHEMA_VERSION, SqliteStore } from '../../src/store/sqlite-store.js';
import type { FrontendIds, Store, StoreEvent } from '../../src/store/store.js';

/** Makes a fresh, empty store that is released when the test ends. */
type MakeStore = (t: ExecutionContext, opts?: StoreOptions) => Promise<Store>;

function def(name: string, backend = '10.1.0.1'): ServiceDefinition {
  return {
    name,
    addresses: ['10.96.0.10'],
    ports: [{ name: 'http', port: 80, protocol: 'tcp', targetPort: 8080 }],
    backends: [{ address: backend, weight: 1, state: 'active' }],
  };
}

/** Every optional field present. */
function fullDef(name: string): ServiceDefinition {
  return {
    name,
    addresses: ['10.96.0.10', '10.96.0.11'],
    ports: [
      { name: 'http', port: 80, protocol: 'tcp', targetPort: 8080 },
      { name: 'dns', port: 53, protocol: 'udp', targetPort: 53 },
    ],
    backends: [
      { address: '10.1.0.1', weight: 3, state: 'draining', leaseId: '0123456789abcdef' },
      { address: '10.1.0.2', weight: 0, state: 'maintenance' },
    ],
    sessionAffinity: { timeoutSeconds: 600 },
    tableSize: 1021,
  };
}

function names(services: StoredService[]): string[] {
  return services.map((s) => s.definition.name);
}

/** Assert that `fn` throws a SluiceError with `code`; returns it. */
function throwsCode(t: ExecutionContext, fn: () => unknown, code: SluiceErrorCode, what: string): SluiceError | undefined {
  const err = t.throws(fn, { instanceOf: SluiceError }, `${what}: expected a SluiceError ${code}`);
  t.is(err?.code, code, `${what}: wrong error code (message: ${err?.message})`);
  return err;
}

/** Record the events a store publishes, and the errors of its subscribers. */
function recorder(): { events: StoreEvent[]; errors: unknown[]; opts: StoreOptions } {
  const events: StoreEvent[] = [];
  const errors: unknown[] = [];
  return { events, errors, opts: { onListenerError: (err) => errors.push(err) } };
}

function storeContract(impl: string, make: MakeStore): void {
  const title = (s: string): string => `${impl}: ${s}`;

  test(title('a new store is empty at revision 0'), async (t) => {
    const s = await make(t);
    t.is(s.revision(), 0, 'revision of a new store');
    t.is(s.compactedRevision(), 0, 'compactedRevision of a new store');
    t.deepEqual(s.list(), [], 'list of a new store');
    t.is(s.count(), 0, 'count of a new store');
    t.is(s.get('default/web'), undefined, 'get on a new store');
    t.deepEqual(s.eventsSince(0), [], 'eventsSince(0) on a new store');
    t.deepEqual(s.loadIds(), new Map(), 'loadIds on a new store');
  });

  test(title('the revision rises by one per put item and per delete; createRevision stays'), async (t) => {
    const s = await make(t);
    const created = s.put([{ definition: def('default/a') }, { definition: def('default/b') }]);
    t.deepEqual(
      created.map((c) => [c.definition.name, c.revision, c.createRevision]),
      [['default/a', 1, 1], ['default/b', 2, 2]],
      'a two-item put: one revision per item, in order',
    );
    t.is(s.revision(), 2, 'store revision after the two-item put');

    const [updated] = s.put([{ definition: def('default/a', '10.1.0.9') }]);
    t.is(updated?.revision, 3, 'revision of the update');
    t.is(updated?.createRevision, 1, 'createRevision after an update is that of the creation');
    t.deepEqual(s.get('default/a'), updated, 'get returns what put returned');
    t.is(s.get('default/b')?.revision, 2, 'the other service keeps its revision');

    t.is(s.delete('default/b'), 4, 'delete returns the new store revision');
    t.is(s.revision(), 4, 'store revision after the delete');
    t.is(s.get('default/b'), undefined, 'the deleted service is gone');

    const [again] = s.put([{ definition: def('default/b') }]);
    t.deepEqual([again?.revision, again?.createRevision], [5, 5], 're-creating after a delete starts a new life');
    t.deepEqual(s.put([]), [], 'an empty put returns nothing');
    t.is(s.revision(), 5, 'an empty put does not move the revision');
  });

  test(title('definitions round-trip exactly, optional fields absent or present'), async (t) => {
    const s = await make(t);
    const plain = def('default/web');
    const full = fullDef('default/full');
    s.put([{ definition: plain }, { definition: full }]);
    const gotPlain = s.get('default/web')?.definition;
    const gotFull = s.get('default/full')?.definition;
    t.deepEqual(gotPlain, def('default/web'), 'the plain definition comes back as given');
    t.deepEqual(gotFull, fullDef('default/full'), 'the full definition comes back as given');
    t.deepEqual(Object.keys(gotPlain ?? {}), ['name', 'addresses', 'ports', 'backends'], 'absent optional fields stay absent');
    t.false(gotPlain !== undefined && 'leaseId' in gotPlain.backends[0]!, 'an absent backend leaseId stays absent');

    // The store keeps its own copy: neither the caller's input nor what it got back is the stored state.
    plain.backends.push({ address: '10.1.0.99', weight: 1, state: 'active' });
    gotFull!.tableSize = 7;
    t.is(s.get('default/web')?.definition.backends.length, 1, 'changing the input after put changed the store');
    t.is(s.get('default/full')?.definition.tableSize, 1021, 'changing a returned definition changed the store');
  });

  test(title('expectedRevision: 0 creates only, n matches only, undefined always'), async (t) => {
    const s = await make(t);
    const [a] = s.put([{ definition: def('default/a'), expectedRevision: 0 }]);
    t.is(a?.revision, 1, 'expectedRevision 0 creates an absent service');
    throwsCode(t, () => s.put([{ definition: def('default/a'), expectedRevision: 0 }]), 'ALREADY_EXISTS', 'expectedRevision 0 on an existing service');
    throwsCode(t, () => s.put([{ definition: def('default/a'), expectedRevision: 7 }]), 'FAILED_PRECONDITION', 'a stale expectedRevision');
    throwsCode(t, () => s.put([{ definition: def('default/none'), expectedRevision: 1 }]), 'NOT_FOUND', 'expectedRevision n on an absent service');
    t.is(s.revision(), 1, 'failed puts do not move the revision');
    const [a2] = s.put([{ definition: def('default/a', '10.1.0.2'), expectedRevision: 1 }]);
    t.is(a2?.revision, 2, 'the matching expectedRevision writes');
    const [a3] = s.put([{ definition: def('default/a', '10.1.0.3') }]);
    t.is(a3?.revision, 3, 'no expectedRevision writes unconditionally');
    const [b] = s.put([{ definition: def('default/b') }]);
    t.is(b?.createRevision, 4, 'no expectedRevision creates too');

    for (const bad of [-1, 1.5, Number.NaN]) {
      const err = throwsCode(t, () => s.put([{ definition: def('default/c'), expectedRevision: bad }]), 'INVALID_ARGUMENT', `expectedRevision ${bad}`);
      t.is(err?.field, 'items[0].expectedRevision', `field named for expectedRevision ${bad}`);
    }
  });

  test(title('delete: NOT_FOUND if absent, FAILED_PRECONDITION on a revision mismatch'), async (t) => {
    const s = await make(t);
    s.put([{ definition: def('default/a') }]);
    throwsCode(t, () => s.delete('default/none'), 'NOT_FOUND', 'deleting an absent service');
    throwsCode(t, () => s.delete('default/a', 2), 'FAILED_PRECONDITION', 'deleting with a stale expectedRevision');
    throwsCode(t, () => s.delete('default/a', 0), 'FAILED_PRECONDITION', 'deleting an existing service with expectedRevision 0');
    t.is(s.revision(), 1, 'failed deletes do not move the revision');
    t.not(s.get('default/a'), undefined, 'failed deletes leave the service');
    t.is(s.delete('default/a', 1), 2, 'deleting with the matching expectedRevision');
  });

  test(title('a failing item in a multi-item put writes nothing'), async (t) => {
    const rec = recorder();
    const s = await make(t, rec.opts);
    s.put([{ definition: def('default/existing') }]);
    s.subscribe((e) => rec.events.push(e));
    throwsCode(
      t,
      () => s.put([{ definition: def('default/new1') }, { definition: def('default/existing', '10.1.0.5') }, { definition: def('default/existing'), expectedRevision: 0 }]),
      'ALREADY_EXISTS',
      'third item conflicts',
    );
    t.is(s.revision(), 1, 'revision after the failed put');
    t.is(s.get('default/new1'), undefined, 'the first item of the failed put was written');
    t.is(s.get('default/existing')?.definition.backends[0]?.address, '10.1.0.1', 'the second item of the failed put was written');
    t.deepEqual(s.eventsSince(0).map((e) => e.revision), [1], 'events after the failed put');
    t.deepEqual(rec.events, [], 'subscribers were told about a failed put');

    // Items see the earlier items of their batch.
    throwsCode(t, () => s.put([{ definition: def('default/x'), expectedRevision: 0 }, { definition: def('default/x'), expectedRevision: 0 }]), 'ALREADY_EXISTS', 'the same name created twice in one batch');
    t.is(s.get('default/x'), undefined, 'the first of two conflicting creates was written');
    const out = s.put([{ definition: def('default/x'), expectedRevision: 0 }, { definition: def('default/x', '10.1.0.2'), expectedRevision: 2 }]);
    t.deepEqual(out.map((o) => [o.revision, o.createRevision]), [[2, 2], [3, 2]], 'create then update of one name in a batch');
    t.is(s.get('default/x')?.definition.backends[0]?.address, '10.1.0.2', 'the last item of a batch wins');

    const bad = throwsCode(t, () => s.put([{ definition: def('default/y') }, { definition: {} as ServiceDefinition }]), 'INVALID_ARGUMENT', 'an item without a name');
    t.is(bad?.field, 'items[1].definition.name', 'field of the nameless item');
    t.is(s.get('default/y'), undefined, 'the item before the nameless one was written');
  });

  test(title('list: byte order (not locale order), prefix as plain text, startAfter, limit; count'), async (t) => {
    const s = await make(t);
    const all = [
      'B', 'a', 'default', 'default/', 'default/Web', 'default/a%b', 'default/a-b', 'default/a.b',
      'default/aXb', 'default/a_b', 'default/web', 'default0', 'kube-system/dns',
    ];
    const shuffled = [
      'default/web', 'default/a_b', 'a', 'kube-system/dns', 'default/a%b', 'default0', 'default/',
      'default/aXb', 'B', 'default/a.b', 'default', 'default/Web', 'default/a-b',
    ];
    s.put(shuffled.map((n) => ({ definition: def(n) })));
    t.deepEqual(names(s.list()), all, 'list(): byte order, uppercase before lowercase, "%" < "-" < "." < "X" < "_"');
    t.deepEqual(names(s.list({ prefix: '' })), all, 'an empty prefix lists everything');
    t.deepEqual(
      names(s.list({ prefix: 'default/' })),
      ['default/', 'default/Web', 'default/a%b', 'default/a-b', 'default/a.b', 'default/aXb', 'default/a_b', 'default/web'],
      'prefix default/',
    );
    t.deepEqual(names(s.list({ prefix: 'default/a%' })), ['default/a%b'], '"%" in a prefix is a plain character');
    t.deepEqual(names(s.list({ prefix: 'default/a_' })), ['default/a_b'], '"_" in a prefix is a plain character');
    t.deepEqual(names(s.list({ prefix: 'nothing' })), [], 'a prefix nothing has');
    t.deepEqual(names(s.list({ startAfter: 'default/a.b' })), ['default/aXb', 'default/a_b', 'default/web', 'default0', 'kube-system/dns'], 'startAfter excludes the cursor itself');
    t.deepEqual(names(s.list({ startAfter: 'default/a' })), all.slice(5), 'startAfter a name that does not exist');
    t.deepEqual(names(s.list({ startAfter: 'zzz' })), [], 'startAfter the last name');
    t.deepEqual(names(s.list({ limit: 3 })), ['B', 'a', 'default'], 'limit 3');
    t.deepEqual(names(s.list({ limit: 0 })), [], 'limit 0');
    t.deepEqual(names(s.list({ limit: 100 })), all, 'a limit above the count');
    t.deepEqual(
      names(s.list({ prefix: 'default/', startAfter: 'default/a-b', limit: 2 })),
      ['default/a.b', 'default/aXb'],
      'prefix, startAfter and limit together',
    );
    t.deepEqual(names(s.list({ prefix: 'default/', startAfter: 'B' })), names(s.list({ prefix: 'default/' })), 'a cursor before the prefix');

    // Paging through with the cursor visits every name once.
    const paged: string[] = [];
    for (let after: string | undefined; ;) {
      const page = names(s.list(after === undefined ? { limit: 4 } : { limit: 4, startAfter: after }));
      if (page.length === 0) break;
      paged.push(...page);
      after = page[page.length - 1];
    }
    t.deepEqual(paged, all, 'paging with startAfter and limit');

    t.is(s.count(), all.length, 'count()');
    t.is(s.count('default/'), 8, 'count("default/")');
    t.is(s.count('default/a_'), 1, 'count with "_" in the prefix');
    t.is(s.count('default/a%'), 1, 'count with "%" in the prefix');
    t.is(s.count('kube'), 1, 'count("kube")');
    t.is(s.count('x'), 0, 'count of a prefix nothing has');
    s.delete('kube-system/dns');
    t.is(s.count(), all.length - 1, 'count after a delete');
    t.false(names(s.list()).includes('kube-system/dns'), 'list after a delete still has the deleted name');

    const err = throwsCode(t, () => s.list({ limit: -1 }), 'INVALID_ARGUMENT', 'a negative limit');
    t.is(err?.field, 'limit', 'field of a negative limit');
  });

  test(title('eventsSince replays PUTs and DELETEs, a DELETE carrying the last state'), async (t) => {
    const s = await make(t);
    s.put([{ definition: def('default/a') }, { definition: def('default/b') }]);
    s.put([{ definition: def('default/a', '10.1.0.2') }]);
    s.put([{ definition: def('default/b', '10.1.0.3') }]);
    s.delete('default/b');
    const want: StoreEvent[] = [
      { type: 'PUT', name: 'default/a', revision: 1, service: { definition: def('default/a'), revision: 1, createRevision: 1 } },
      { type: 'PUT', name: 'default/b', revision: 2, service: { definition: def('default/b'), revision: 2, createRevision: 2 } },
      { type: 'PUT', name: 'default/a', revision: 3, service: { definition: def('default/a', '10.1.0.2'), revision: 3, createRevision: 1 } },
      { type: 'PUT', name: 'default/b', revision: 4, service: { definition: def('default/b', '10.1.0.3'), revision: 4, createRevision: 2 } },
      { type: 'DELETE', name: 'default/b', revision: 5, service: { definition: def('default/b', '10.1.0.3'), revision: 4, createRevision: 2 } },
    ];
    t.deepEqual(s.eventsSince(0), want, 'eventsSince(0): every change, oldest first');
    t.deepEqual(s.eventsSince(3), want.slice(3), 'eventsSince(3): revisions 4 and 5');
    t.deepEqual(s.eventsSince(5), [], 'eventsSince(current revision)');
    throwsCode(t, () => s.eventsSince(6), 'FAILED_PRECONDITION', 'eventsSince a revision the store has not reached');
    const err = throwsCode(t, () => s.eventsSince(-1), 'INVALID_ARGUMENT', 'eventsSince(-1)');
    t.is(err?.field, 'since', 'field of a negative since');

    // Replaying the events over an empty map rebuilds the state.
    const replayed = new Map<string, StoredService>();
    for (const e of s.eventsSince(0)) {
      if (e.type === 'PUT') replayed.set(e.name, e.service);
      else replayed.delete(e.name);
    }
    t.deepEqual([...replayed.values()], s.list(), 'the replayed state differs from list()');
  });

  test(title('the event log is bounded: compaction raises compactedRevision'), async (t) => {
    const s = await make(t, { maxEvents: 3 });
    s.put([{ definition: def('default/a') }, { definition: def('default/b') }]);
    t.is(s.compactedRevision(), 0, 'no compaction while the log has room');
    s.put([{ definition: def('default/c') }, { definition: def('default/d') }]);
    t.is(s.compactedRevision(), 1, 'four events in a log of three');
    t.deepEqual(s.eventsSince(1).map((e) => e.revision), [2, 3, 4], 'eventsSince(compactedRevision)');
    const err = throwsCode(t, () => s.eventsSince(0), 'FAILED_PRECONDITION', 'eventsSince before compactedRevision');
    t.regex(err?.message ?? '', /compacted/, 'the message says the events were compacted');
    s.delete('default/a');
    t.is(s.compactedRevision(), 2, 'a delete compacts too');
    t.deepEqual(s.eventsSince(2).map((e) => [e.revision, e.type]), [[3, 'PUT'], [4, 'PUT'], [5, 'DELETE']], 'the log after the delete');
    s.put(['e', 'f', 'g', 'h', 'i'].map((n) => ({ definition: def(`default/${n}`) })));
    t.is(s.compactedRevision(), 7, 'a put of more items than the log holds');
    t.deepEqual(s.eventsSince(7).map((e) => e.name), ['default/g', 'default/h', 'default/i'], 'the log keeps the newest');
    throwsCode(t, () => s.eventsSince(6), 'FAILED_PRECONDITION', 'eventsSince one before compactedRevision');
    t.is(s.count(), 8, 'compaction removed services, not just events');

    throwsCode(t, () => new MemoryStore({ maxEvents: 0 }), 'INVALID_ARGUMENT', 'maxEvents 0');
  });

  test(title('subscribers: after commit, in revision order, unsubscribe, a throwing one is isolated'), async (t) => {
    const rec = recorder();
    const s = await make(t, rec.opts);
    const seen: Array<[number, string, number]> = []; // [event revision, type, store revision when called]
    const unsubscribe = s.subscribe((e) => seen.push([e.revision, e.type, s.revision()]));
    const boom = new Error('boom');
    s.subscribe(() => {
      throw boom;
    });
    const second: number[] = [];
    const unsubscribeSecond = s.subscribe((e) => second.push(e.revision));

    s.put([{ definition: def('default/a') }, { definition: def('default/b') }]);
    s.delete('default/a');
    t.deepEqual(seen, [[1, 'PUT', 2], [2, 'PUT', 2], [3, 'DELETE', 3]], 'events in order, each after its transaction committed');
    t.deepEqual(second, [1, 2, 3], 'a subscriber after a throwing one still gets every event');
    t.deepEqual(rec.errors, [boom, boom, boom], 'each throw reported to onListenerError');
    t.deepEqual(s.eventsSince(0).map((e) => e.revision), [1, 2, 3], 'a throwing subscriber broke the store');

    unsubscribe();
    unsubscribe(); // idempotent
    s.put([{ definition: def('default/c') }]);
    t.is(seen.length, 3, 'an unsubscribed listener was called');
    t.deepEqual(second, [1, 2, 3, 4], 'the other subscriber after an unsubscribe');
    unsubscribeSecond();

    // A subscriber that writes from its callback does not reorder the others' events.
    const order: Array<[string, number]> = [];
    s.subscribe((e) => {
      order.push(['writer', e.revision]);
      if (e.name === 'default/d') s.put([{ definition: def('default/d-echo') }]);
    });
    s.subscribe((e) => order.push(['reader', e.revision]));
    s.put([{ definition: def('default/d') }]);
    t.deepEqual(order, [['writer', 5], ['reader', 5], ['writer', 6], ['reader', 6]], 'every subscriber sees revision 5 before 6');
  });

  test(title('ids: save, load, replace, forget'), async (t) => {
    const s = await make(t);
    const web: FrontendIds = { serviceId: 1, backends: new Map([['10.1.0.1:8080', 1], ['10.1.0.2:8080', 2]]) };
    const dns: FrontendIds = { serviceId: 2, backends: new Map() };
    s.saveIds(new Map([['default/web|10.96.0.10:80/tcp', web], ['kube-system/dns|10.96.0.53:53/udp', dns]]), []);
    t.deepEqual(
      s.loadIds(),
      new Map([['default/web|10.96.0.10:80/tcp', web], ['kube-system/dns|10.96.0.53:53/udp', dns]]),
      'loadIds after saveIds',
    );

    const web2: FrontendIds = { serviceId: 1, backends: new Map([['10.1.0.3:8080', 3]]) };
    s.saveIds(new Map([['default/web|10.96.0.10:80/tcp', web2]]), ['kube-system/dns|10.96.0.53:53/udp', 'never/saved']);
    t.deepEqual(s.loadIds(), new Map([['default/web|10.96.0.10:80/tcp', web2]]), 'ids after replacing one and forgetting another');

    s.loadIds().get('default/web|10.96.0.10:80/tcp')?.backends.set('10.9.9.9:1', 9);
    t.deepEqual(s.loadIds().get('default/web|10.96.0.10:80/tcp'), web2, 'changing loaded ids changed the store');

    const err = throwsCode(
      t,
      () => s.saveIds(new Map([['x|10.0.0.1:1/tcp', dns]]), ['x|10.0.0.1:1/tcp', 'default/web|10.96.0.10:80/tcp']),
      'INVALID_ARGUMENT',
      'saving and forgetting one frontend',
    );
    t.is(err?.field, 'forget', 'field of the overlap');
    t.deepEqual(s.loadIds(), new Map([['default/web|10.96.0.10:80/tcp', web2]]), 'a rejected saveIds changed the ids');
    t.is(s.revision(), 0, 'ids moved the service revision');
  });

  test(title('leases: grant, keepAlive, expiry, revoke'), async (t) => {
    const s = await make(t);
    const now = 1_700_000_000_000;
    const a = s.grantLease(10, now);
    const b = s.grantLease(30, now);
    t.regex(a.id, /^[0-9a-f]{16}$/, 'a lease id is 16 hex characters');
    t.not(a.id, b.id, 'two leases got the same id');
    t.deepEqual(a, { id: a.id, ttlSeconds: 10, expiresAtMs: now + 10_000 }, 'the granted lease');
    t.deepEqual(s.getLease(a.id), a, 'getLease returns the granted lease');

    const kept = s.keepAlive(a.id, now + 4_000);
    t.is(kept.expiresAtMs, now + 14_000, 'keepAlive extends by the TTL from now');
    t.deepEqual(s.getLease(a.id), kept, 'getLease after keepAlive');

    t.deepEqual(s.expiredLeases(now + 13_999), [], 'nothing expired yet');
    t.deepEqual(s.expiredLeases(now + 14_000), [kept], 'a lease expires at its expiresAtMs');
    throwsCode(t, () => s.keepAlive(a.id, now + 14_000), 'NOT_FOUND', 'keepAlive of an expired lease');
    t.deepEqual(s.getLease(a.id), kept, 'a failed keepAlive changed the lease');
    throwsCode(t, () => s.keepAlive('0000000000000000', now), 'NOT_FOUND', 'keepAlive of an unknown lease');
    t.deepEqual(s.expiredLeases(now + 60_000).map((l) => l.id), [a.id, b.id], 'expiredLeases, soonest expiry first');

    t.true(s.revokeLease(a.id), 'revoking a lease that exists');
    t.false(s.revokeLease(a.id), 'revoking it again');
    t.is(s.getLease(a.id), undefined, 'getLease after revoke');
    t.deepEqual(s.expiredLeases(now + 60_000).map((l) => l.id), [b.id], 'expiredLeases after revoke');
    t.is(s.revision(), 0, 'leases moved the service revision');

    t.is(s.grantLease(1, now).ttlSeconds, 1, 'the shortest TTL');
    t.is(s.grantLease(86_400, now).ttlSeconds, 86_400, 'the longest TTL');
    for (const ttl of [0, 86_401, 1.5, -5, Number.NaN]) {
      const err = throwsCode(t, () => s.grantLease(ttl, now), 'INVALID_ARGUMENT', `ttl ${ttl}`);
      t.is(err?.field, 'ttlSeconds', `field of ttl ${ttl}`);
      t.regex(err?.message ?? '', /ttlSeconds/, `the message for ttl ${ttl} names ttlSeconds`);
    }
  });

  test(title('close is idempotent and the store refuses work afterwards'), async (t) => {
    const s = await make(t);
    s.put([{ definition: def('default/a') }]);
    s.close();
    t.notThrows(() => s.close(), 'a second close threw');
    throwsCode(t, () => s.get('default/a'), 'FAILED_PRECONDITION', 'get after close');
    throwsCode(t, () => s.put([{ definition: def('default/b') }]), 'FAILED_PRECONDITION', 'put after close');
    throwsCode(t, () => s.revision(), 'FAILED_PRECONDITION', 'revision after close');
  });
}

storeContract('memory', async (t, opts) => {
  const s = new MemoryStore(opts);
  t.teardown(() => s.close());
  return s;
});

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-store-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

storeContract('sqlite', async (t, opts) => {
  const s = SqliteStore.open(join(await tempDir(t), 'store.db'), opts);
  t.teardown(() => s.close()); // teardowns run last-registered first: close, then remove the directory
  return s;
});

test('sqlite: everything survives close and reopen', async (t) => {
  const path = join(await tempDir(t), 'store.db');
  const s1 = SqliteStore.open(path, { maxEvents: 4 });
  s1.put(['a', 'b', 'c'].map((n) => ({ definition: def(`default/${n}`) })));
  s1.put([{ definition: fullDef('default/a') }]);
  s1.delete('default/b');
  s1.put([{ definition: def('default/d') }]);
  const ids = new Map([['default/a|10.96.0.10:80/tcp', { serviceId: 7, backends: new Map([['10.1.0.1:8080', 3]]) }]]);
  s1.saveIds(ids, []);
  const lease = s1.grantLease(60, 1_000);
  const before = {
    revision: s1.revision(),
    compacted: s1.compactedRevision(),
    services: s1.list(),
    events: s1.eventsSince(s1.compactedRevision()),
  };
  s1.close();

  const s2 = SqliteStore.open(path, { maxEvents: 4 });
  t.teardown(() => s2.close());
  t.is(s2.revision(), 6, 'revision after reopen');
  t.is(s2.compactedRevision(), 2, 'compactedRevision after reopen');
  t.deepEqual(s2.list(), before.services, 'services after reopen');
  t.deepEqual(s2.get('default/a')?.definition, fullDef('default/a'), 'a full definition after reopen');
  t.deepEqual(s2.eventsSince(2), before.events, 'events after reopen');
  t.deepEqual(s2.loadIds(), ids, 'ids after reopen');
  t.deepEqual(s2.getLease(lease.id), lease, 'lease after reopen');
  const [next] = s2.put([{ definition: def('default/e') }]);
  t.is(next?.revision, 7, 'the revision carries on after reopen');
});

test('sqlite: a smaller maxEvents on reopen compacts the log', async (t) => {
  const path = join(await tempDir(t), 'store.db');
  const s1 = SqliteStore.open(path);
  s1.put(['a', 'b', 'c', 'd', 'e'].map((n) => ({ definition: def(`default/${n}`) })));
  s1.close();
  const s2 = SqliteStore.open(path, { maxEvents: 2 });
  t.teardown(() => s2.close());
  t.is(s2.compactedRevision(), 3, 'compactedRevision after reopening with maxEvents 2');
  t.deepEqual(s2.eventsSince(3).map((e) => e.revision), [4, 5], 'the events kept');
});

test('sqlite: the database file and its WAL are private (0600)', async (t) => {
  const path = join(await tempDir(t), 'store.db');
  const old = process.umask(0o000); // even with a permissive umask
  let s: SqliteStore;
  try {
    s = SqliteStore.open(path);
  } finally {
    process.umask(old);
  }
  t.teardown(() => s.close());
  s.put([{ definition: def('default/a') }]); // the WAL exists while the store is open
  for (const f of [path, `${path}-wal`]) {
    const mode = (await stat(f)).mode & 0o777;
    t.is(mode.toString(8), '600', `mode of ${f}`);
  }
});

test('sqlite: WAL journal, schema version recorded, newer schemas refused', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'store.db');
  SqliteStore.open(path).close();
  const db = new Database(path);
  t.is(db.pragma('journal_mode', { simple: true }), 'wal', 'journal mode');
  t.deepEqual(db.prepare('SELECT version FROM schema_version').pluck().all(), [SCHEMA_VERSION], 'schema_version rows');
  t.is(SCHEMA_VERSION, 1, 'the current schema version');
  db.prepare('UPDATE schema_version SET version = ?').run(SCHEMA_VERSION + 1);
  db.close();
  const err = throwsCode(t, () => SqliteStore.open(path), 'FAILED_PRECONDITION', 'opening a newer schema');
  t.regex(err?.message ?? '', /schema version 2/, 'the message names the version found');
});

test('sqlite: a missing directory or a file that is not a store is refused', async (t) => {
  const dir = await tempDir(t);
  throwsCode(t, () => SqliteStore.open(join(dir, 'missing', 'store.db')), 'FAILED_PRECONDITION', 'a missing parent directory');
  const junk = join(dir, 'junk.db');
  await writeFile(junk, 'this is not a database, just some text long enough to have a header '.repeat(10));
  throwsCode(t, () => SqliteStore.open(junk), 'FAILED_PRECONDITION', 'a file that is not SQLite');
});
