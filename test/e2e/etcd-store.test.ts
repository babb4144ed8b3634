/**
 * EtcdKvStore (src/store/etcd-kv.ts) on a real 3-member etcd 3.4 cluster
 * (src/demo/etcd-cluster.ts), one for the whole file: the KvStore contract
 * (test/helpers/kv-contract.ts), then what only a networked store has to
 * survive: a member killed, every member killed and restarted, a watch cut
 * off while its history is compacted, a lease kept alive through one member
 * and expiring as seen through another.
 *
 * The tests share the cluster and its revision, so they take turns
 * (exclusive()); ava starts them together. Leases run on real time.
 */
import { createServer, connect as tcpConnect, type AddressInfo, type Socket } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { Etcd3 } from 'etcd3';
import { startEtcdCluster, type EtcdCluster } from '../../src/demo/etcd-cluster.js';
import { SluiceError, type SluiceErrorCode } from '../../src/errors.js';
import { EtcdKvStore, type EtcdKvOptions } from '../../src/store/etcd-kv.js';
import { parseEtcdUrl } from '../../src/store/etcd-url.js';
import type { Compare, KeyValue, KvChanges, KvStore, KvWatch, LeaseInfo, Operation, RangeOptions, TxnResult } from '../../src/store/kv.js';
import { kvContract } from '../helpers/kv-contract.js';

let cluster: EtcdCluster;

test.before(async () => {
  cluster = await startEtcdCluster({ tag: 'store' });
});

test.after.always(async () => {
  await cluster?.destroy();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let turn: Promise<void> = Promise.resolve();

/**
 * Wait for the cluster to be this test's alone, until it ends: the tests
 * count revisions, kill members and compact the history. The release is the
 * first teardown registered, so it runs last, after the stores are closed.
 */
async function exclusive(t: ExecutionContext): Promise<void> {
  const before = turn;
  let release!: () => void;
  turn = new Promise((r) => (release = r));
  t.teardown(() => release());
  await before;
}

/** A store on `endpoints` (all members by default), closed when the test ends. */
async function open(t: ExecutionContext, endpoints: readonly string[] = cluster.endpoints, opts: Partial<EtcdKvOptions> = {}): Promise<EtcdKvStore> {
  const store = await EtcdKvStore.connect({ endpoints, ...opts });
  t.teardown(() => store.close());
  return store;
}

/** Poll until `cond` holds; throw with `what` after `ms`. Returns the time it took. */
async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<number> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
  return Date.now() - t0;
}

/** A watch that records what it delivers, with when; canceled when the test ends. */
function record(t: ExecutionContext, store: KvStore, prefix: string, after: number): { changes: KvChanges[]; at: number[]; errors: Error[]; watch: KvWatch } {
  const out = { changes: [] as KvChanges[], at: [] as number[], errors: [] as Error[] };
  const watch = store.watch(prefix, after, (c) => (out.changes.push(c), out.at.push(Date.now())), (e) => out.errors.push(e));
  t.teardown(() => watch.cancel());
  return { ...out, watch };
}

/** Each change's keys and values, "key=value@revision" (DELETE: "key deleted@revision"). */
function flat(changes: readonly KvChanges[]): string[] {
  return changes.flatMap((c) => c.events.map((e) => `${e.kv.key}${e.type === 'PUT' ? `=${e.kv.value}` : ' deleted'}@${c.revision}`));
}

async function rejectsCode(t: ExecutionContext, p: Promise<unknown>, code: SluiceErrorCode, what: string): Promise<SluiceError | undefined> {
  const err = (await t.throwsAsync(p, { instanceOf: SluiceError }, what)) as SluiceError | undefined;
  t.is(err?.code, code, `${what}: ${err?.message}`);
  return err;
}

const isUnavailable = (err: unknown): boolean => err instanceof SluiceError && err.code === 'UNAVAILABLE';

/**
 * A store seen under a key prefix, with revisions counted from the store's
 * revision when it was made: what the contract expects of a new store
 * ("empty at revision 0", revision 1 after its first write) on a cluster
 * whose revision other tests have moved and whose keyspace they fill. Keys
 * and revisions are translated, nothing else; the tests take turns, so no
 * other write falls between a test's own.
 */
class Scoped implements KvStore {
  private constructor(
    private readonly inner: KvStore,
    private readonly prefix: string,
    private readonly base: number,
  ) {}

  static async create(inner: KvStore, prefix: string): Promise<Scoped> {
    return new Scoped(inner, prefix, await inner.revision());
  }

  async revision(): Promise<number> {
    return this.rev(await this.inner.revision());
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const kv = await this.inner.get(this.prefix + key);
    return kv && this.kv(kv);
  }

  async range(prefix: string, opts: RangeOptions = {}): Promise<{ kvs: KeyValue[]; revision: number; more: boolean }> {
    const inner: RangeOptions = { ...opts, ...(opts.startAfter === undefined ? {} : { startAfter: this.prefix + opts.startAfter }) };
    const r = await this.inner.range(this.prefix + prefix, inner);
    return { kvs: r.kvs.map((kv) => this.kv(kv)), revision: this.rev(r.revision), more: r.more };
  }

  async txn(compares: readonly Compare[], operations: readonly Operation[]): Promise<TxnResult> {
    const cs = compares.map((c): Compare =>
      'modRevision' in c ? { key: this.prefix + c.key, modRevision: c.modRevision === 0 ? 0 : c.modRevision + this.base } : { key: this.prefix + c.key, value: c.value },
    );
    const ops = operations.map((op): Operation =>
      'put' in op ? { ...op, put: this.prefix + op.put } : 'delete' in op ? { delete: this.prefix + op.delete } : { deletePrefix: this.prefix + op.deletePrefix },
    );
    const r = await this.inner.txn(cs, ops);
    return { succeeded: r.succeeded, revision: this.rev(r.revision) };
  }

  watch(prefix: string, afterRevision: number, onChanges: (c: KvChanges) => void, onError: (err: Error) => void): KvWatch {
    return this.inner.watch(
      this.prefix + prefix,
      afterRevision + this.base,
      (c) =>
        onChanges({
          revision: this.rev(c.revision),
          events: c.events.map((e) => ({ type: e.type, kv: this.kv(e.kv), ...(e.prev ? { prev: this.kv(e.prev) } : {}) })),
        }),
      onError,
    );
  }

  grantLease(ttlSeconds: number): Promise<LeaseInfo> {
    return this.inner.grantLease(ttlSeconds);
  }

  keepAlive(id: string): Promise<LeaseInfo> {
    return this.inner.keepAlive(id);
  }

  lease(id: string): Promise<LeaseInfo | undefined> {
    return this.inner.lease(id);
  }

  async leaseKeys(id: string): Promise<string[]> {
    return (await this.inner.leaseKeys(id)).filter((k) => k.startsWith(this.prefix)).map((k) => k.slice(this.prefix.length));
  }

  revokeLease(id: string): Promise<boolean> {
    return this.inner.revokeLease(id);
  }

  compact(revision: number): Promise<void> {
    return this.inner.compact(revision + this.base);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private rev(r: number): number {
    return r - this.base;
  }

  private kv(kv: KeyValue): KeyValue {
    if (!kv.key.startsWith(this.prefix)) throw new Error(`${kv.key} is outside ${this.prefix}`);
    return {
      ...kv,
      key: kv.key.slice(this.prefix.length),
      // A deletion's kv has creation revision 0.
      createRevision: kv.createRevision === 0 ? 0 : this.rev(kv.createRevision),
      modRevision: this.rev(kv.modRevision),
    };
  }
}

let scopes = 0;

kvContract(test, 'etcd', async (t) => {
  await exclusive(t);
  const store = await Scoped.create(await open(t), `/contract-${++scopes}`);
  return { store, advance: sleep };
});

// ------------------------------------------------------------------ etcd only

test('etcd: URLs, options and lease ids; refusals name the field', async (t) => {
  await exclusive(t);
  t.deepEqual(parseEtcdUrl('etcd://127.0.0.1:2379,etcd-1.example:2379,[::1]:12379'), ['127.0.0.1:2379', 'etcd-1.example:2379', '[::1]:12379']);
  t.deepEqual(parseEtcdUrl(cluster.url), [...cluster.endpoints]);
  for (const bad of ['', 'etcd://', 'http://127.0.0.1:2379', 'etcd://127.0.0.1', 'etcd://127.0.0.1:0', 'etcd://h:70000', 'etcd://a:1,,b:2', 'etcd://a:1/x']) {
    const err = t.throws(() => parseEtcdUrl(bad), { instanceOf: SluiceError }, bad) as SluiceError | undefined;
    t.is(err?.code, 'INVALID_ARGUMENT', bad);
    t.is(err?.field, 'store', bad);
  }
  t.is((await rejectsCode(t, EtcdKvStore.connect({ endpoints: [] }), 'INVALID_ARGUMENT', 'no endpoint'))?.field, 'endpoints');
  t.is((await rejectsCode(t, EtcdKvStore.connect({ endpoints: ['127.0.0.1'] }), 'INVALID_ARGUMENT', 'no port'))?.field, 'endpoints[0]');
  t.is((await rejectsCode(t, EtcdKvStore.connect({ endpoints: [...cluster.endpoints], callTimeoutMs: 0 }), 'INVALID_ARGUMENT', 'a zero timeout'))?.field, 'callTimeoutMs');
  const noCa = await rejectsCode(t, EtcdKvStore.connect({ endpoints: [...cluster.endpoints], tls: { ca: '/nonexistent/ca.pem' } }), 'INVALID_ARGUMENT', 'a missing CA file');
  t.is(noCa?.field, 'tls.ca');
  t.regex(noCa?.message ?? '', /\/nonexistent\/ca\.pem/);
  t.is((await rejectsCode(t, EtcdKvStore.connect({ endpoints: [...cluster.endpoints], tls: { cert: 'x' } }), 'INVALID_ARGUMENT', 'a cert without key'))?.field, 'tls.key');

  // Nothing listens on a port of the cluster's block that no member uses: UNAVAILABLE after the dial timeout.
  const nobody = `127.0.0.1:${cluster.members[cluster.members.length - 1]!.peerPort + 1}`;
  const t0 = Date.now();
  const down = await rejectsCode(t, EtcdKvStore.connect({ endpoints: [nobody], dialTimeoutMs: 800 }), 'UNAVAILABLE', 'nothing listening');
  const dialMs = Date.now() - t0;
  // It gives up rather than hanging on (the bound is generous: this machine is shared).
  t.true(dialMs < 10_000, `gave up after ${dialMs} ms (dial timeout 800 ms)`);
  t.true(down?.message.includes(nobody), `the message names the endpoint: ${down?.message}`);
  t.log(`connect with nothing listening: ${dialMs} ms: ${down?.message}`);

  const store = await open(t);
  for (const ttl of [0, 86_401, 1.5]) t.is((await rejectsCode(t, store.grantLease(ttl), 'INVALID_ARGUMENT', `TTL ${ttl}`))?.field, 'ttlSeconds');
  // etcd raises a TTL below its minimum (2 s for a 1 s election timeout) and says so.
  const lease = await store.grantLease(1);
  t.regex(lease.id, /^[0-9a-f]{16}$/, 'lease ids are 16 hex digits');
  t.is(lease.ttlSeconds, 2);
  // The id is etcd's, in hex, as etcdctl prints it.
  const raw = new Etcd3({ hosts: [...cluster.endpoints] });
  t.teardown(() => raw.close());
  const held = await raw.leaseClient.leaseTimeToLive({ ID: BigInt(`0x${lease.id}`).toString() });
  t.is(held.grantedTTL, '2', `etcd does not hold lease ${lease.id} (decimal ${BigInt(`0x${lease.id}`)})`);
  t.true(await store.revokeLease(lease.id));
  await rejectsCode(t, store.keepAlive(lease.id), 'NOT_FOUND', 'a keepalive of a revoked lease');
  for (const id of ['not-hex', '', '0', 'ffffffffffffffff', '1'.repeat(17)]) {
    t.is(await store.lease(id), undefined, `lease(${id})`);
    t.deepEqual(await store.leaseKeys(id), [], `leaseKeys(${id})`);
    t.false(await store.revokeLease(id), `revokeLease(${id})`);
    await rejectsCode(t, store.keepAlive(id), 'NOT_FOUND', `keepAlive(${id})`);
  }
  await rejectsCode(t, store.compact(-1), 'INVALID_ARGUMENT', 'a negative compaction');
  t.is((await rejectsCode(t, store.compact((await store.revision()) + 1000), 'INVALID_ARGUMENT', 'a compaction ahead of the store'))?.field, 'revision');
  t.is((await rejectsCode(t, store.range('/', { limit: -1 }), 'INVALID_ARGUMENT', 'a negative limit'))?.field, 'limit');
});

test('etcd: a transaction is one etcd Txn, its writes reduced so no key is written twice; latency', async (t) => {
  await exclusive(t);
  const store = await open(t);
  const r0 = await store.txn([], [{ put: '/tx/a/1', value: 'old' }, { put: '/tx/a/2', value: 'old' }, { put: '/tx/b', value: 'old' }]);
  const w = record(t, store, '/tx/', r0.revision);

  // etcd alone refuses these (a put inside a deleted range, two puts of one key, a put then its delete).
  const r1 = await store.txn([], [
    { deletePrefix: '/tx/a/' },
    { put: '/tx/a/2', value: 'new' },
    { put: '/tx/c', value: 'first' },
    { put: '/tx/c', value: 'second' },
    { put: '/tx/b', value: 'gone soon' },
    { delete: '/tx/b' },
  ]);
  t.deepEqual(r1, { succeeded: true, revision: r0.revision + 1 });
  const after = await store.range('/tx/');
  t.deepEqual(after.kvs.map((kv) => `${kv.key}=${kv.value}@${kv.modRevision}`), [`/tx/a/2=new@${r1.revision}`, `/tx/c=second@${r1.revision}`]);
  await until(() => w.changes.length >= 1, 5000, 'the watch to see the transaction');
  t.deepEqual(w.changes.map((c) => c.revision), [r1.revision], 'one revision, one KvChanges');
  t.deepEqual(flat(w.changes).sort(), [`/tx/a/1 deleted@${r1.revision}`, `/tx/a/2=new@${r1.revision}`, `/tx/b deleted@${r1.revision}`, `/tx/c=second@${r1.revision}`]);

  const many: Operation[] = Array.from({ length: 200 }, (_, i) => ({ put: `/tx/many/${i}`, value: 'x' }));
  const big = await rejectsCode(t, store.txn([], many), 'RESOURCE_EXHAUSTED', '200 puts in one transaction');
  t.regex(big?.message ?? '', /max-txn-ops/);
  t.deepEqual((await store.range('/tx/many/')).kvs, [], 'nothing of the refused transaction is written');

  // Latency of a compare-and-set on one key, sequentially.
  const ms: number[] = [];
  let cur = await store.get('/tx/c');
  for (let i = 0; i < 100; i++) {
    const t0 = performance.now();
    const r = await store.txn([{ key: '/tx/c', modRevision: cur!.modRevision }], [{ put: '/tx/c', value: String(i) }]);
    ms.push(performance.now() - t0);
    t.true(r.succeeded);
    cur = { ...cur!, modRevision: r.revision };
  }
  ms.sort((a, b) => a - b);
  t.log(`compare-and-set txn on a 3-member cluster (localhost): median ${ms[49]!.toFixed(1)} ms, p90 ${ms[89]!.toFixed(1)} ms, max ${ms[99]!.toFixed(1)} ms`);
});

/**
 * Add 1 to the number at `key`, the way a caller of the store does it: a
 * compare-and-set on the key's mod revision, and after UNAVAILABLE (the
 * transaction may have been applied) a fresh read decides. We are the only
 * writer, so a failed compare would be the store retrying a transaction
 * that had been applied and reporting a false failure.
 */
async function increment(store: KvStore, key: string, from: number, stats: IncrementStats): Promise<void> {
  const timed = async <T>(call: Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await call;
    } finally {
      stats.slowestMs = Math.max(stats.slowestMs, Date.now() - t0);
    }
  };
  for (;;) {
    try {
      const cur = await timed(store.get(key));
      const value = cur ? Number(cur.value) : 0;
      if (value === from + 1) return; // an attempt that answered UNAVAILABLE was applied
      if (value !== from) throw new Error(`${key} is ${value}, want ${from}`);
      const r = await timed(store.txn([{ key, modRevision: cur?.modRevision ?? 0 }], [{ put: key, value: String(from + 1) }]));
      if (r.succeeded) return;
      stats.falseFailures++;
    } catch (err) {
      if (!isUnavailable(err)) throw err;
      stats.unavailable++;
    }
  }
}

/** What increment() met: UNAVAILABLE answers, failed compares (none is right), the slowest call. */
interface IncrementStats {
  unavailable: number;
  falseFailures: number;
  slowestMs: number;
}

test('etcd: one member killed (the leader): reads, writes and a running watch go on', async (t) => {
  await exclusive(t);
  const store = await open(t);
  const w = record(t, store, '/one/', await store.revision());
  const stats: IncrementStats = { unavailable: 0, falseFailures: 0, slowestMs: 0 };
  for (let i = 0; i < 5; i++) await increment(store, '/one/n', i, stats);

  const leader = await cluster.leader();
  if (leader === undefined) return t.fail('no leader');
  await cluster.stopMember(leader, 'SIGKILL');
  t.teardown(async () => {
    await cluster.startMember(leader);
    await cluster.waitReady();
  });
  const killed = Date.now();
  await increment(store, '/one/n', 5, stats);
  const firstWriteMs = Date.now() - killed;
  for (let i = 6; i < 30; i++) await increment(store, '/one/n', i, stats);
  const allMs = Date.now() - killed;
  t.log(`leader (m${leader}) SIGKILLed: first write ${firstWriteMs} ms after, 25 writes in ${allMs} ms; ${stats.unavailable} UNAVAILABLE, slowest call ${stats.slowestMs} ms`);

  t.is(stats.falseFailures, 0, 'a transaction that was applied was reported as a failed compare');
  t.true(firstWriteMs < 8000, `first write ${firstWriteMs} ms after the kill`);
  t.true(stats.slowestMs < 3000 + 500, `a call took ${stats.slowestMs} ms (call budget 3 s)`);
  t.like(await store.get('/one/n'), { value: '30' });
  t.is((await store.range('/one/')).kvs.length, 1, 'reads go on');
  await until(() => w.changes.length >= 30, 5000, 'the watch to see the 30 writes').catch(() => undefined);
  t.deepEqual(w.changes.map((c) => c.events.map((e) => e.kv.value).join()), Array.from({ length: 30 }, (_, i) => String(i + 1)), 'each write seen once, in order');
  t.deepEqual(w.errors, []);
});

test('etcd: every member killed: calls fail UNAVAILABLE within the call budget; after a restart writes and the watch come back', async (t) => {
  await exclusive(t);
  const store = await open(t);
  const idle = await open(t); // a store with a watch, closed while the cluster is down
  const start = await store.revision();
  const w = record(t, store, '/out/', start);
  idle.watch('/out/', start, () => undefined, () => undefined);
  for (let i = 1; i <= 3; i++) await store.txn([], [{ put: `/out/before-${i}`, value: String(i) }]);
  const lease = await store.grantLease(30);
  await until(() => w.changes.length >= 3, 5000, 'the writes before the outage');

  await cluster.stopAll('SIGKILL');
  t.teardown(async () => {
    await cluster.startAll();
    await cluster.waitReady();
  });
  const calls: Record<string, () => Promise<unknown>> = {
    revision: () => store.revision(),
    get: () => store.get('/out/before-1'),
    range: () => store.range('/out/'),
    txn: () => store.txn([], [{ put: '/out/down', value: 'x' }]),
    grantLease: () => store.grantLease(10),
    keepAlive: () => store.keepAlive(lease.id),
    lease: () => store.lease(lease.id),
    revokeLease: () => store.revokeLease(lease.id),
    compact: () => store.compact(start),
  };
  const outcomes = await Promise.all(Object.entries(calls).map(async ([name, call]) => {
    const t0 = Date.now();
    const err = await call().then(() => undefined, (e: unknown) => e);
    return { name, ms: Date.now() - t0, err };
  }));
  for (const { name, ms, err } of outcomes) {
    t.true(isUnavailable(err), `${name}: ${String(err)}`);
    t.true(ms < 5000, `${name} took ${ms} ms`);
  }
  const sample = outcomes.find((o) => o.name === 'txn')!.err as Error;
  t.true(cluster.endpoints.every((e) => sample.message.includes(e)), `the message names the endpoints: ${sample.message}`);
  t.log(`every member down: ${outcomes.map((o) => `${o.name} ${o.ms} ms`).join(', ')}\n  txn: ${sample.message}\n  revision: ${(outcomes[0]!.err as Error).message}`);

  const closeStart = Date.now();
  await idle.close();
  const closeMs = Date.now() - closeStart;
  t.true(closeMs < 2000, `close() with a watch while the cluster is down took ${closeMs} ms`);
  await sleep(500);
  t.is(w.changes.length, 3, 'the watch delivered something while every member was down');
  t.deepEqual(w.errors, []);

  await cluster.startAll();
  const restarted = Date.now();
  const stats: IncrementStats = { unavailable: 0, falseFailures: 0, slowestMs: 0 };
  let firstWriteMs = 0;
  for (let i = 0; i < 5; i++) {
    await increment(store, '/out/after', i, stats);
    if (i === 0) firstWriteMs = Date.now() - restarted;
  }
  t.log(`after the restart: first write at ${firstWriteMs} ms (${stats.unavailable} UNAVAILABLE before, slowest call ${stats.slowestMs} ms); close() of a store with a watch while down: ${closeMs} ms`);
  t.true(firstWriteMs < 10_000, `first write ${firstWriteMs} ms after the restart`);
  t.is(stats.falseFailures, 0, 'a transaction that was applied was reported as a failed compare');

  await until(() => w.changes.length >= 8, 10_000, 'the watch to deliver the writes after the restart').catch(() => undefined);
  const watchMs = (w.at[3] ?? Date.now()) - restarted;
  t.log(`the watch delivered the first write after the restart at ${watchMs} ms`);
  const seen = flat(w.changes).map((s) => s.replace(/@\d+$/, ''));
  t.deepEqual(seen, ['/out/before-1=1', '/out/before-2=2', '/out/before-3=3', '/out/after=1', '/out/after=2', '/out/after=3', '/out/after=4', '/out/after=5'], 'changes lost or doubled across the outage');
  const revisions = w.changes.map((c) => c.revision);
  t.deepEqual(revisions, [...revisions].sort((a, b) => a - b), 'in revision order');
  t.deepEqual(w.errors, []);
  t.deepEqual((await store.range('/out/down')).kvs, [], 'the transaction that failed while every member was down was applied');
  await store.revokeLease(lease.id).catch(() => undefined);
});

/**
 * A TCP proxy in front of one member that can cut the connections through
 * it and refuse new ones, while the member itself stays in the cluster and
 * keeps up with it (a client cut off, not a member).
 */
async function proxy(t: ExecutionContext, target: string): Promise<{ endpoint: string; cut(): void; restore(): void }> {
  const [host, port] = target.split(':') as [string, string];
  const sockets = new Set<Socket>();
  let open = true;
  const server = createServer((client) => {
    if (!open) return void client.destroy();
    const upstream = tcpConnect(Number(port), host);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', drop).on('close', drop);
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const cut = (): void => {
    open = false;
    for (const s of sockets) s.destroy();
  };
  t.teardown(() => {
    cut();
    server.close();
  });
  return { endpoint: `127.0.0.1:${(server.address() as AddressInfo).port}`, cut, restore: () => (open = true) };
}

test('etcd: a watch cut off resumes without a gap; cut off while its history is compacted, it fails with CompactedError once', async (t) => {
  await exclusive(t);
  const via = await proxy(t, cluster.endpoints[0]!);
  const lagging = await open(t, [via.endpoint]);
  const writer = await open(t, cluster.endpoints.slice(1));
  const w = record(t, lagging, '/lag/', await writer.revision());
  const put = async (k: string): Promise<number> => (await writer.txn([], [{ put: `/lag/${k}`, value: k }])).revision;

  const r1 = await put('a');
  await until(() => w.changes.length === 1, 5000, 'the first change');
  // Cut off: changes made meanwhile arrive once the watch is back, none twice.
  via.cut();
  const r2 = await put('b');
  const r3 = await put('c');
  await sleep(300);
  t.is(w.changes.length, 1, 'a change arrived through a cut connection');
  via.restore();
  await until(() => w.changes.length >= 3, 5000, 'the changes made while cut off').catch(() => undefined);
  await sleep(300);
  t.deepEqual(w.changes.map((c) => c.revision), [r1, r2, r3]);

  // Cut off again, and the history it needs compacted meanwhile, up to a
  // deletion: etcd would serve a watch from the compact revision itself
  // without that deletion, which the store must not ask for.
  via.cut();
  const r4 = (await writer.txn([], [{ delete: '/lag/a' }])).revision;
  await put('e');
  await writer.compact(r4);
  via.restore();
  await until(() => w.errors.length > 0, 5000, 'the compacted watch to fail').catch(() => undefined);
  await put('f');
  await sleep(1000);
  t.is(w.errors.length, 1, `errors: ${w.errors.map(String).join('; ')}`);
  t.is(w.errors[0]?.name, 'CompactedError', String(w.errors[0]));
  t.true((w.errors[0] as { compacted?: boolean } | undefined)?.compacted, 'err.compacted');
  t.deepEqual(w.changes.map((c) => c.revision), [r1, r2, r3], 'nothing after the compacted revisions was delivered');
  // The caller relists and watches from there: the store still works.
  const relisted = await lagging.range('/lag/');
  t.deepEqual(relisted.kvs.map((kv) => kv.key), ['/lag/b', '/lag/c', '/lag/e', '/lag/f']);
  const again = record(t, lagging, '/lag/', relisted.revision);
  await put('g');
  await until(() => again.changes.length === 1, 5000, 'the new watch');
  t.deepEqual(flat(again.changes).map((s) => s.replace(/@\d+$/, '')), ['/lag/g=g']);
  const t0 = Date.now();
  await lagging.close();
  t.true(Date.now() - t0 < 1500, `close() took ${Date.now() - t0} ms`);
});

test('etcd: a lease kept alive through one member; its key deleted on expiry, as a watch through another member sees', async (t) => {
  await exclusive(t);
  const holder = await open(t, [cluster.endpoints[0]!]);
  const observer = await open(t, [cluster.endpoints[1]!]);
  const lease = await holder.grantLease(2);
  t.teardown(() => holder.revokeLease(lease.id).then(() => undefined, () => undefined));
  await holder.txn([], [{ put: '/lk/k', value: 'v', lease: lease.id }]);
  const w = record(t, observer, '/lk/', await observer.revision());

  // 4.5 s of keepalives: more than twice the TTL.
  let keepalives = 0;
  for (const end = Date.now() + 4500; Date.now() < end; keepalives++) {
    t.like(await holder.keepAlive(lease.id), { id: lease.id, ttlSeconds: 2 });
    await sleep(600);
  }
  t.like(await observer.get('/lk/k'), { value: 'v', lease: lease.id }, 'the key went while the lease was kept alive');
  t.like(await observer.lease(lease.id), { id: lease.id, ttlSeconds: 2 });
  t.deepEqual(await observer.leaseKeys(lease.id), ['/lk/k']);
  t.deepEqual(w.changes, []);

  const stopped = Date.now();
  await until(() => w.changes.length > 0, 6000, 'the key to be deleted').catch(() => undefined);
  const goneMs = (w.at[0] ?? Date.now()) - stopped;
  t.log(`${keepalives} keepalives through m0; key deleted ${goneMs} ms after they stopped (TTL 2 s, the last one ≤ 600 ms before), seen through m1`);
  t.true(goneMs >= 500 && goneMs <= 4000, `deleted ${goneMs} ms after the keepalives stopped`);
  t.deepEqual(w.changes.flatMap((c) => c.events.map((e) => [e.type, e.kv.key, e.prev?.value, e.prev?.lease])), [['DELETE', '/lk/k', 'v', lease.id]]);
  t.is(await observer.get('/lk/k'), undefined);
  t.is(await observer.lease(lease.id), undefined);
  await rejectsCode(t, holder.keepAlive(lease.id), 'NOT_FOUND', 'a keepalive of the expired lease');
});
