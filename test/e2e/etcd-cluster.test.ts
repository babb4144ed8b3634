/**
 * A real 3-member etcd 3.4 cluster (src/demo/etcd-cluster.ts) driven with
 * the etcd3 client, to pin down what an etcd-backed store can rely on:
 * put/get, multi-key compare-and-set on mod revisions, watches from a
 * revision, leases, one member and then every member killed, compaction.
 * The facts are written out in etcd-cluster.ts's header comment; each test
 * here fails if one of them stops being true.
 */
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import {
  Etcd3,
  EtcdError,
  EtcdLeaseInvalidError,
  GRPCOutOfRangeError,
  GRPCUnavailableError,
  type IKeyValue,
  type IOptions,
  type Lease,
  type Watcher,
} from 'etcd3';
import { cleanStaleEtcdClusters, startEtcdCluster, type EtcdCluster } from '../../src/demo/etcd-cluster.js';

let cluster: EtcdCluster;
let client: Etcd3;

test.before(async () => {
  cluster = await startEtcdCluster({ tag: 'e2e' });
  client = new Etcd3({ hosts: [...cluster.endpoints] });
});

test.after.always(async () => {
  client?.close();
  await cluster?.destroy();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolve with `p`, or with `fallback` after `ms`; the timer goes when `p` settles. */
function within<T, F>(p: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<F>((r) => (timer = setTimeout(() => r(fallback), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Poll until `cond` holds; fail with `what` after `ms`. Returns the time it took. */
async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<number> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(25);
  }
  return Date.now() - t0;
}

/** Call `fn` until it resolves or `ms` have passed; say how long it took and what failed. */
async function retry(fn: () => Promise<unknown>, ms: number): Promise<{ ok: boolean; ms: number; failures: string[] }> {
  const t0 = Date.now();
  const failures: string[] = [];
  while (Date.now() - t0 < ms) {
    try {
      await fn();
      return { ok: true, ms: Date.now() - t0, failures };
    } catch (err) {
      failures.push(`${(err as Error).constructor.name}: ${(err as Error).message.replace(/127\.0\.0\.1:\d+/, 'HOST')}`);
      await sleep(100);
    }
  }
  return { ok: false, ms: Date.now() - t0, failures };
}

/**
 * Create a watcher that is canceled when the test ends, whatever happens,
 * unless it emitted 'error': etcd has dropped it then, and etcd3 1.1.2's
 * cancel() of it can hang, or cancel a newer watcher that reuses its id.
 */
async function watch(t: ExecutionContext, w: Promise<Watcher>): Promise<Watcher> {
  const watcher = await w;
  let failed = false;
  watcher.on('error', () => (failed = true));
  t.teardown(() => (failed ? undefined : within(watcher.cancel(), 2000, undefined)));
  return watcher;
}

/** A lease that is revoked when the test ends (an auto-keepalive lease keeps the process alive). */
function lease(t: ExecutionContext, c: Etcd3, ttl: number): Lease {
  const l = c.lease(ttl);
  l.on('lost', () => undefined);
  t.teardown(() => l.revoke().catch(() => undefined));
  return l;
}

type WatchBackoff = NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>;

/**
 * Watch reconnects 100 ms apart, doubling up to 1 s. etcd3's default
 * (cockatiel's ExponentialBackoff) grows to 30 s over an outage, and its
 * pending reconnect timers keep the process alive that long after the
 * watchers are canceled and the client closed.
 */
const cappedBackoff = (ms = 100): WatchBackoff => ({ duration: ms, next: () => cappedBackoff(Math.min(ms * 2, 1000)) });

/** A client closed when the test ends. */
function newClient(t: ExecutionContext, options: Partial<IOptions> = {}): Etcd3 {
  const c = new Etcd3({ hosts: [...cluster.endpoints], ...options });
  t.teardown(() => c.close());
  return c;
}

interface Event {
  type: 'put' | 'delete';
  key: string;
  value: string;
  mod: string;
  prev: string | undefined;
}

/** Record a watcher's events as plain values, and any 'error' it emits. */
function record(w: Watcher): { events: Event[]; errors: Error[] } {
  const out = { events: [] as Event[], errors: [] as Error[] };
  const push = (type: Event['type']) => (kv: IKeyValue, prev?: IKeyValue) =>
    out.events.push({ type, key: kv.key.toString(), value: kv.value.toString(), mod: kv.mod_revision, prev: prev?.value.toString() });
  w.on('put', push('put'));
  w.on('delete', push('delete'));
  w.on('error', (err) => out.errors.push(err));
  return out;
}

test.serial('put and get; revisions are decimal strings', async (t) => {
  const put = await client.put('pg/a').value('v1');
  t.regex(put.header.revision, /^\d+$/, `put revision: ${typeof put.header.revision} ${String(put.header.revision)}`);
  t.is(await client.get('pg/a').string(), 'v1');
  t.is(await client.get('pg/missing').string(), null);

  // A prefix with the revision it was read at.
  await client.put('pg/b').value('v2');
  const list = await client.getAll().prefix('pg/').exec();
  t.deepEqual(list.kvs.map((kv) => `${kv.key.toString()}=${kv.value.toString()}`), ['pg/a=v1', 'pg/b=v2']);
  t.is(list.kvs[0]!.mod_revision, put.header.revision, 'mod_revision of pg/a is the revision its put returned');
  t.is(typeof list.header.revision, 'string');
  t.true(BigInt(list.header.revision) >= BigInt(list.kvs[1]!.mod_revision), `list revision ${list.header.revision} is not at or after its newest key`);
});

test.serial('multi-key transaction on mod revisions: commits, then fails when stale', async (t) => {
  await client.put('tx/a').value('1');
  await client.put('tx/b').value('1');
  const [ra, rb] = await Promise.all(['tx/a', 'tx/b'].map(async (k) => (await client.get(k).exec()).kvs[0]!.mod_revision));

  const cas = (a: string, b: string) =>
    client
      .if('tx/a', 'Mod', '==', a)
      .and('tx/b', 'Mod', '==', b)
      .and('tx/new', 'Create', '==', 0)
      .then(client.put('tx/a').value('2'), client.put('tx/b').value('2'), client.put('tx/new').value('x'))
      .else(client.get('tx/a'), client.get('tx/b'))
      .commit();

  const ok = await cas(ra!, rb!);
  t.true(ok.succeeded, 'the transaction with current mod revisions failed');
  const after = await client.getAll().prefix('tx/').exec();
  t.deepEqual(after.kvs.map((kv) => `${kv.key.toString()}=${kv.value.toString()}@${kv.mod_revision}`), [
    `tx/a=2@${ok.header.revision}`,
    `tx/b=2@${ok.header.revision}`,
    `tx/new=x@${ok.header.revision}`,
  ], 'all writes of one transaction share its revision');

  // The same compares again: stale now. Not an error: succeeded is false,
  // nothing is written, and the else branch shows the current values.
  const stale = await cas(ra!, rb!);
  t.false(stale.succeeded, 'a transaction with stale mod revisions committed');
  t.deepEqual(stale.responses.map((r) => r.response_range?.kvs[0]?.value.toString()), ['2', '2']);
  t.is(stale.header.revision, ok.header.revision, 'a failed transaction wrote something');

  // One stale key is enough to fail: tx/a current, tx/b stale.
  const curA = (await client.get('tx/a').exec()).kvs[0]!.mod_revision;
  const half = await client.if('tx/a', 'Mod', '==', curA).and('tx/b', 'Mod', '==', rb!).then(client.put('tx/a').value('3')).commit();
  t.false(half.succeeded, 'a transaction with one stale key committed');
  t.is(await client.get('tx/a').string(), '2');
});

test.serial('watch from a revision: replays history, then follows; prev kv only when asked', async (t) => {
  const r1 = (await client.put('w/x').value('1')).header.revision;
  await client.put('w/x').value('2');
  const r3 = (await client.delete().key('w/x')).header.revision;

  const withPrev = record(await watch(t, client.watch().prefix('w/').startRevision(r1).withPreviousKV().create()));
  const plain = record(await watch(t, client.watch().prefix('w/').startRevision(r1).create()));
  const batches: number[] = [];
  const live = await watch(t, client.watch().prefix('w/').create());
  live.on('data', (res) => res.events.length > 0 && batches.push(res.events.length));

  // Two keys in one transaction, after the watchers exist.
  const both = await client.if('w/y', 'Create', '==', 0).then(client.put('w/y').value('3'), client.put('w/z').value('4')).commit();
  const r4 = both.header.revision;
  await until(() => withPrev.events.length >= 5 && plain.events.length >= 5 && batches.length >= 1, 5000, 'watch events');

  t.deepEqual(withPrev.events, [
    { type: 'put', key: 'w/x', value: '1', mod: r1, prev: undefined },
    { type: 'put', key: 'w/x', value: '2', mod: String(BigInt(r1) + 1n), prev: '1' },
    { type: 'delete', key: 'w/x', value: '', mod: r3, prev: '2' },
    { type: 'put', key: 'w/y', value: '3', mod: r4, prev: undefined },
    { type: 'put', key: 'w/z', value: '4', mod: r4, prev: undefined },
  ]);
  t.deepEqual(plain.events.map((e) => e.prev), [undefined, undefined, undefined, undefined, undefined], 'prev kv without withPreviousKV()');
  t.deepEqual(plain.events.map((e) => `${e.type} ${e.key}=${e.value}`), withPrev.events.map((e) => `${e.type} ${e.key}=${e.value}`));
  t.deepEqual(batches, [2], 'the two puts of one transaction arrive in one response');
  t.deepEqual([...withPrev.errors, ...plain.errors], []);
});

test.serial('etcd3 1.1.2: WatchBuilder.ignore("put") is only("put")', async (t) => {
  const w = record(await watch(t, client.watch().prefix('ig/').ignore('put').create()));
  await client.put('ig/a').value('1');
  await client.delete().key('ig/a');
  await client.put('ig/end').value('1');
  await until(() => w.events.some((e) => e.key === 'ig/end'), 5000, 'ig/end');
  t.deepEqual(w.events.map((e) => e.type), ['put', 'put'], 'ignore("put") no longer drops deletes: fix the note in etcd-cluster.ts');
});

test.serial('lease: kept alive past its TTL; its key goes when keepalives stop', async (t) => {
  const l = lease(t, client, 1);
  const id = await l.grant();
  t.regex(id, /^\d+$/);
  const ttl = await client.leaseClient.leaseTimeToLive({ ID: id, keys: true });
  // etcd raises a TTL below ceil(1.5 × election timeout).
  t.is(ttl.grantedTTL, '2', `TTL 1 was granted as ${ttl.grantedTTL}`);
  let keepalives = 0;
  l.on('keepaliveSucceeded', () => keepalives++);
  const lost: Error[] = [];
  l.on('lost', (err) => lost.push(err));
  await l.put('ls/k').value('v');
  const w = record(await watch(t, client.watch().key('ls/k').create()));

  await sleep(4500); // more than twice the granted TTL
  t.is(await client.get('ls/k').string(), 'v', 'the key went while keepalives ran');
  t.true(keepalives >= 3, `keepalives in 4.5 s: ${keepalives}`);

  l.release(); // keepalives stop; the lease runs out
  const released = Date.now();
  await until(() => w.events.some((e) => e.type === 'delete'), 6000, 'the key to be deleted');
  const after = Date.now() - released;
  t.log(`key deleted ${after} ms after the last keepalive stopped (granted TTL 2 s)`);
  t.true(after >= 1000 && after <= 4000, `deleted ${after} ms after release`);
  t.is(await client.get('ls/k').string(), null);

  await t.throwsAsync(l.keepaliveOnce(), { instanceOf: EtcdLeaseInvalidError });
  t.true(lost[0] instanceof EtcdLeaseInvalidError, `lost: ${String(lost[0])}`);
});

test.serial('one member killed (the leader): reads and writes go on; it comes back with its data', async (t) => {
  // A per-call deadline, so a call stuck on a member without a leader is
  // retried elsewhere instead of waiting for etcd's own 7 s request timeout.
  const fast = newClient(t, { defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 1500 }) });
  const w = record(await watch(t, client.watch().prefix('one/').create()));
  const leader = await cluster.leader();
  if (leader === undefined) return t.fail('no leader');
  await cluster.stopMember(leader, 'SIGKILL');
  t.false(cluster.isRunning(leader));

  // Both are retried the way a store would retry: etcd3's own retries run
  // out quickly when they land on the dead member.
  const [plain, quick] = await Promise.all([
    retry(() => client.put('one/a').value('1').exec(), 12_000),
    retry(() => fast.put('one/b').value('1').exec(), 5_000),
  ]);
  t.log(`put right after the leader died: ${plain.ms} ms (default client, ${plain.failures.length} failed), ${quick.ms} ms (1.5 s deadline, ${quick.failures.length} failed: ${[...new Set(quick.failures)].join('; ')})`);
  t.true(plain.ok, `default client: no put within 12 s: ${plain.failures.join('; ')}`);
  t.true(quick.ok, `client with a deadline: no put within 5 s: ${quick.failures.join('; ')}`);
  t.deepEqual(await client.getAll().prefix('one/').strings(), { 'one/a': '1', 'one/b': '1' });
  await until(() => w.events.length >= 2, 5000, 'the watch to see both puts');

  await cluster.startMember(leader);
  await cluster.waitReady();
  const solo = new Etcd3({ hosts: [cluster.endpoints[leader]!] });
  t.teardown(() => solo.close());
  t.is(await solo.get('one/b').serializable(true).string(), '1', 'the restarted member serves the write from its own store');
});

test.serial('every member killed: puts fail; after a restart writes and the watch come back', async (t) => {
  // A fresh client: its circuit breakers have seen no failure yet.
  const c = newClient(t, { faultHandling: { watchBackoff: cappedBackoff() } });
  const w = await watch(t, c.watch().prefix('out/').create());
  const seen = record(w);
  const disconnects: string[] = [];
  w.on('disconnected', (err) => disconnects.push(err.constructor.name));
  let reconnectedAt = 0;
  w.on('connected', () => (reconnectedAt = Date.now()));
  await c.put('out/before').value('1');
  await until(() => seen.events.length === 1, 5000, 'out/before');

  await cluster.stopAll('SIGKILL');
  t.deepEqual(cluster.endpoints.map((_, i) => cluster.isRunning(i)), [false, false, false]);
  const failures: Error[] = [];
  const end = Date.now() + 1500;
  while (Date.now() < end) {
    try {
      await c.put('out/down').value('1');
      t.fail('a put succeeded with every member down');
    } catch (err) {
      failures.push(err as Error);
    }
    await sleep(100);
  }
  const kinds = [...new Set(failures.map((e) => `${e.constructor.name}: ${e.message.replace(/127\.0\.0\.1:\d+/, 'HOST')}`))];
  t.log(`with every member down (${failures.length} puts):\n  ${kinds.join('\n  ')}`);
  t.true(failures[0] instanceof GRPCUnavailableError, `first failure: ${String(failures[0])}`);
  t.regex(failures[0]!.message, /^14 UNAVAILABLE: No connection established/);
  // cockatiel's BrokenCircuitError (etcd3 depends on cockatiel but does not re-export it).
  const broken = failures.find((e) => e.constructor.name === 'BrokenCircuitError');
  t.is(broken?.message, 'Execution prevented because the circuit breaker is open');

  await cluster.startAll();
  const restarted = Date.now();
  let putErrors = 0;
  await until(async () => {
    try {
      await c.put('out/after').value('1');
      return true;
    } catch {
      putErrors++;
      return false;
    }
  }, 15_000, 'a put after the restart');
  const putMs = Date.now() - restarted;
  await until(() => seen.events.some((e) => e.key === 'out/after'), 10_000, 'the watch to resume');
  const watchMs = Date.now() - restarted;
  t.log(`after the restart: first put ${putMs} ms (${putErrors} failed tries), watch delivered it at ${watchMs} ms (reconnected at ${reconnectedAt - restarted} ms)`);
  t.true(disconnects.length > 0, 'the watcher never said it was disconnected');
  t.true(reconnectedAt >= restarted, 'the watcher never said it was connected again');
  t.deepEqual(seen.events.map((e) => e.key), ['out/before', 'out/after'], 'events lost or doubled across the outage');
  t.deepEqual(seen.errors, []);
  t.is(await c.get('out/before').string(), '1', 'data written before the outage is gone');
  await cluster.waitReady();
});

test.serial('compaction: a watch from a compacted revision is canceled; relist from the compact revision', async (t) => {
  const r1 = (await client.put('cp/k').value('1')).header.revision;
  await client.put('cp/k').value('2');
  const r3 = (await client.put('cp/k').value('3')).header.revision;
  await client.kv.compact({ revision: r3, physical: true });

  const err = await t.throwsAsync(client.get('cp/k').revision(r1).string(), { instanceOf: GRPCOutOfRangeError });
  t.is(err?.message, '11 OUT_OF_RANGE: etcdserver: mvcc: required revision has been compacted');

  const old = await watch(t, client.watch().prefix('cp/').startRevision(r1).create());
  const gone = record(old);
  await until(() => gone.errors.length > 0, 5000, 'the watch from a compacted revision to fail');
  t.true(gone.errors[0] instanceof EtcdError, `error: ${String(gone.errors[0])}`);
  t.is(gone.errors[0]!.message, 'Watcher canceled: ', 'etcd3 1.1.2 drops the compact revision etcd 3.4 sends');
  t.deepEqual(gone.events, []);

  // The compact revision itself is still readable and watchable.
  t.is(await client.get('cp/k').revision(r3).string(), '3');
  const fresh = record(await watch(t, client.watch().prefix('cp/').startRevision(r3).create()));
  await until(() => fresh.events.length > 0, 5000, 'a watch from the compact revision');
  t.deepEqual(fresh.events.map((e) => `${e.value}@${e.mod}`), [`3@${r3}`]);
});

test.serial('cleanStaleEtcdClusters: kills members and removes what a dead owner left', async (t) => {
  const base = await mkdtemp(path.join(tmpdir(), 'sluice-etcdtest-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  // A pid above pid_max belongs to no process.
  const dead = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8')) + 1;
  const dir = path.join(base, `sluice-etcd-${dead}-abc`);
  await mkdir(path.join(dir, 'm0'), { recursive: true });
  await symlink(String(dead), path.join(base, 'sluice-etcd-ports-15000'));
  await symlink(String(process.pid), path.join(base, 'sluice-etcd-ports-15020'));
  // Stands in for a member: found by its --data-dir argument.
  const member = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', '--', `--data-dir=${path.join(dir, 'm0')}`], { stdio: 'ignore' });
  t.teardown(() => member.kill('SIGKILL'));
  const exited = new Promise((r) => member.once('exit', (_code, signal) => r(signal)));
  await until(() => existsSync(`/proc/${member.pid}/cmdline`) && readFileSync(`/proc/${member.pid}/cmdline`, 'utf8').includes('--data-dir='), 5000, 'the stand-in to start');

  // A port claim is a symlink to a pid that need not exist as a file.
  const claimed = (name: string): boolean => {
    try {
      return lstatSync(path.join(base, name)).isSymbolicLink();
    } catch {
      return false;
    }
  };
  const res = await cleanStaleEtcdClusters(base);
  t.deepEqual(res.killed, [member.pid]);
  t.is(await within(exited, 5000, 'still running'), 'SIGKILL');
  t.false(existsSync(dir));
  t.false(claimed('sluice-etcd-ports-15000'), 'a dead pid\'s port claim is still there');
  t.true(claimed('sluice-etcd-ports-15020'), 'a live pid\'s port claim was removed');
  t.true(cluster.isRunning(0), 'the live cluster was touched');
});
