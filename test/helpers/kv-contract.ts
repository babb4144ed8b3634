/**
 * The KvStore contract, as one function that registers its tests for a
 * store: run on memory and SQLite by test/unit/kv-store.test.ts, and on a
 * three-member etcd cluster by test/e2e/etcd-store.test.ts. A store is
 * made fresh (empty) for every test.
 */
import type { ExecutionContext, TestFn } from 'ava';
import { SluiceError } from '../../src/errors.js';
import { CompactedError, type KvChanges, type KvStore } from '../../src/store/kv.js';

/** A fresh store, and a way to let time pass for its leases (a fake clock, or a real wait). */
export interface KvFixture {
  store: KvStore;
  /** Let `ms` pass as leases see it, and let the store act on it. */
  advance(ms: number): Promise<void>;
}

/** Makes a fixture that is released when the test ends. */
export type MakeKv = (t: ExecutionContext) => Promise<KvFixture>;

/** Collect what a watch delivers. */
function collect(store: KvStore, prefix: string, after: number): { changes: KvChanges[]; errors: Error[]; cancel: () => void; until: (n: number) => Promise<void> } {
  const changes: KvChanges[] = [];
  const errors: Error[] = [];
  const w = store.watch(prefix, after, (c) => changes.push(c), (e) => errors.push(e));
  const until = async (n: number): Promise<void> => {
    for (const end = Date.now() + 10_000; changes.length < n && errors.length === 0 && Date.now() < end;) {
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return { changes, errors, cancel: () => w.cancel(), until };
}

const settle = (ms = 50): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Register the contract's tests under `name`. */
export function kvContract(test: TestFn, name: string, make: MakeKv): void {
  const t_ = (title: string, fn: (t: ExecutionContext, f: KvFixture) => Promise<void>): void => {
    test(`${name}: ${title}`, async (t) => fn(t, await make(t)));
  };

  t_('a new store is empty at revision 0', async (t, { store }) => {
    t.is(await store.revision(), 0);
    t.is(await store.get('/a'), undefined);
    t.deepEqual(await store.range('/'), { kvs: [], revision: 0, more: false });
  });

  t_('a transaction writes at one new revision; keys remember their creation and last change', async (t, { store }) => {
    const r1 = await store.txn([], [{ put: '/s/a', value: '1' }, { put: '/s/b', value: '2' }]);
    t.deepEqual(r1, { succeeded: true, revision: 1 });
    t.like(await store.get('/s/a'), { key: '/s/a', value: '1', createRevision: 1, modRevision: 1 });
    t.like(await store.get('/s/b'), { value: '2', createRevision: 1, modRevision: 1 });
    const r2 = await store.txn([], [{ put: '/s/a', value: '3' }]);
    t.is(r2.revision, 2);
    t.like(await store.get('/s/a'), { value: '3', createRevision: 1, modRevision: 2 });
    t.is(await store.revision(), 2);
    // A write-nothing transaction makes no revision.
    t.deepEqual(await store.txn([{ key: '/s/a', modRevision: 2 }], []), { succeeded: true, revision: 2 });
  });

  t_('compares: a failed one writes nothing; absent is modRevision 0; values compare exactly', async (t, { store }) => {
    t.true((await store.txn([{ key: '/k', modRevision: 0 }], [{ put: '/k', value: 'x' }])).succeeded, 'create if absent');
    const again = await store.txn([{ key: '/k', modRevision: 0 }], [{ put: '/k', value: 'y' }, { put: '/other', value: 'z' }]);
    t.deepEqual(again, { succeeded: false, revision: 1 }, 'create again fails');
    t.is((await store.get('/k'))!.value, 'x');
    t.is(await store.get('/other'), undefined, 'nothing of a failed transaction is written');
    t.true((await store.txn([{ key: '/k', modRevision: 1 }, { key: '/k', value: 'x' }], [{ put: '/k', value: 'y' }])).succeeded);
    t.false((await store.txn([{ key: '/k', modRevision: 1 }], [{ put: '/k', value: 'z' }])).succeeded, 'a stale revision fails');
    t.false((await store.txn([{ key: '/k', value: 'x' }], [{ delete: '/k' }])).succeeded, 'another value fails');
    t.false((await store.txn([{ key: '/none', value: '' }], [{ delete: '/k' }])).succeeded, 'a value compare on an absent key fails');
    t.is(await store.revision(), 2);
  });

  t_('range: keys under a prefix in byte order, a cursor, a limit', async (t, { store }) => {
    const keys = ['/p/b', '/p/a', '/p/a/x', '/p/c', '/q/a', '/p-'];
    await store.txn([], keys.map((k) => ({ put: k, value: k })));
    const all = await store.range('/p/');
    t.deepEqual(all.kvs.map((kv) => kv.key), ['/p/a', '/p/a/x', '/p/b', '/p/c']);
    t.is(all.revision, 1);
    t.false(all.more);
    const page = await store.range('/p/', { limit: 2 });
    t.deepEqual(page.kvs.map((kv) => kv.key), ['/p/a', '/p/a/x']);
    t.true(page.more);
    const next = await store.range('/p/', { startAfter: '/p/a/x', limit: 2 });
    t.deepEqual(next.kvs.map((kv) => kv.key), ['/p/b', '/p/c']);
    t.false(next.more);
    t.deepEqual((await store.range('/p/', { startAfter: '/a' })).kvs.length, 4, 'a cursor before the prefix is the prefix');
    t.deepEqual((await store.range('/z')).kvs, []);
  });

  t_('deletes: one key, a prefix; absent keys are no error', async (t, { store }) => {
    await store.txn([], [{ put: '/d/a', value: '1' }, { put: '/d/b', value: '2' }, { put: '/e', value: '3' }]);
    const r = await store.txn([], [{ delete: '/d/a' }, { delete: '/missing' }]);
    t.is(r.revision, 2);
    t.is(await store.get('/d/a'), undefined);
    await store.txn([], [{ deletePrefix: '/d/' }]);
    t.deepEqual((await store.range('/d/')).kvs, []);
    t.truthy(await store.get('/e'));
    // Created again after a delete: a new creation revision.
    await store.txn([], [{ put: '/d/a', value: 'again' }]);
    t.like(await store.get('/d/a'), { createRevision: 4, modRevision: 4 });
  });

  t_('watch: every change after the revision, a transaction together, with the previous value, filtered by prefix', async (t, { store }) => {
    await store.txn([], [{ put: '/w/a', value: '1' }]);
    const w = collect(store, '/w/', 1);
    t.teardown(w.cancel);
    await store.txn([], [{ put: '/w/a', value: '2' }, { put: '/w/b', value: '3' }, { put: '/x', value: 'not watched' }]);
    await store.txn([], [{ delete: '/w/a' }]);
    await store.txn([], [{ put: '/x', value: 'still not watched' }]);
    await w.until(2);
    await settle();
    t.deepEqual(w.errors, []);
    t.is(w.changes.length, 2, 'two transactions touched the prefix');
    const [first, second] = w.changes;
    t.is(first!.revision, 2);
    t.deepEqual(first!.events.map((e) => [e.type, e.kv.key, e.kv.value, e.prev?.value]), [['PUT', '/w/a', '2', '1'], ['PUT', '/w/b', '3', undefined]]);
    t.is(second!.revision, 3);
    t.deepEqual(second!.events.map((e) => [e.type, e.kv.key, e.prev?.value]), [['DELETE', '/w/a', '2']]);
    t.is(second!.events[0]!.kv.modRevision, 3);
  });

  t_('watch from an older revision replays the history, then goes on live; cancel stops it', async (t, { store }) => {
    for (let i = 1; i <= 3; i++) await store.txn([], [{ put: `/h/${i}`, value: String(i) }]);
    const w = collect(store, '/h/', 1);
    await w.until(2);
    t.deepEqual(w.changes.map((c) => c.revision), [2, 3]);
    await store.txn([], [{ put: '/h/4', value: '4' }]);
    await w.until(3);
    t.deepEqual(w.changes.map((c) => c.revision), [2, 3, 4]);
    w.cancel();
    await store.txn([], [{ put: '/h/5', value: '5' }]);
    await settle(200);
    t.is(w.changes.length, 3, 'nothing after cancel');
  });

  t_('compaction: a watch from before it fails with CompactedError; from after it works', async (t, { store }) => {
    for (let i = 1; i <= 5; i++) await store.txn([], [{ put: '/c/k', value: String(i) }]);
    await store.compact(4);
    const old = collect(store, '/c/', 2);
    t.teardown(old.cancel);
    await old.until(1);
    await settle();
    t.is(old.errors.length, 1);
    t.true(old.errors[0] instanceof CompactedError, `got ${old.errors[0]?.name}: ${old.errors[0]?.message}`);
    t.deepEqual(old.changes, []);
    const recent = collect(store, '/c/', 4);
    t.teardown(recent.cancel);
    await recent.until(1);
    t.deepEqual(recent.changes.map((c) => c.revision), [5]);
    t.deepEqual(recent.errors, []);
  });

  t_('leases: keys attached are deleted when it expires, as changes watchers see; keepalive holds it', async (t, f) => {
    const { store } = f;
    const lease = await store.grantLease(2);
    t.is(lease.ttlSeconds, 2);
    t.regex(lease.id, /^[0-9a-zA-Z]+$/);
    await store.txn([], [{ put: '/l/a', value: '1', lease: lease.id }, { put: '/l/b', value: '2', lease: lease.id }, { put: '/l/c', value: 'static' }]);
    t.like(await store.get('/l/a'), { lease: lease.id });
    t.is((await store.get('/l/c'))!.lease, undefined);
    t.deepEqual(await store.leaseKeys(lease.id), ['/l/a', '/l/b']);
    const w = collect(store, '/l/', await store.revision());
    t.teardown(w.cancel);
    await f.advance(1200);
    t.truthy(await store.keepAlive(lease.id));
    await f.advance(1200);
    t.truthy(await store.get('/l/a'), 'kept alive past its first TTL');
    t.truthy(await store.lease(lease.id));
    await f.advance(3500);
    await w.until(1);
    t.is(await store.get('/l/a'), undefined, 'expired: its keys are gone');
    t.is(await store.get('/l/b'), undefined);
    t.truthy(await store.get('/l/c'), 'a key without the lease stays');
    t.is(await store.lease(lease.id), undefined);
    t.deepEqual(await store.leaseKeys(lease.id), []);
    t.deepEqual(w.changes.flatMap((c) => c.events.map((e) => [e.type, e.kv.key])).sort(), [['DELETE', '/l/a'], ['DELETE', '/l/b']]);
    const err = await t.throwsAsync(store.keepAlive(lease.id));
    t.true(err instanceof SluiceError && err.code === 'NOT_FOUND', `keepAlive of an expired lease: ${err?.message}`);
    await t.throwsAsync(store.txn([], [{ put: '/l/d', value: 'x', lease: lease.id }]), undefined, 'a put with a dead lease is refused');
  });

  t_('leases: revoke deletes the keys at once; a key put again without the lease is detached', async (t, { store }) => {
    const lease = await store.grantLease(60);
    await store.txn([], [{ put: '/r/a', value: '1', lease: lease.id }, { put: '/r/b', value: '2', lease: lease.id }]);
    await store.txn([], [{ put: '/r/b', value: 'detached' }]);
    t.deepEqual(await store.leaseKeys(lease.id), ['/r/a']);
    t.true(await store.revokeLease(lease.id));
    t.is(await store.get('/r/a'), undefined);
    t.like(await store.get('/r/b'), { value: 'detached' });
    t.false(await store.revokeLease(lease.id));
    t.is(await store.lease(lease.id), undefined);
  });

  t_('a closed store refuses every call', async (t, { store }) => {
    await store.close();
    await store.close();
    const err = await t.throwsAsync(store.revision());
    t.true(err instanceof SluiceError && err.code === 'FAILED_PRECONDITION', err?.message);
  });
}
