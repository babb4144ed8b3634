/**
 * Leases are the store's: a registered backend whose keepalives stop is
 * removed once its TTL has passed (from the service and from the
 * dataplane), one that keeps alive stays; a lease shared by backends of two
 * services takes both in one change; with SQLite, services and leases
 * survive a restart of the node, whose load balancer finds its ids in the
 * maps and writes nothing. The store's clock is the test's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import { MemoryKvStore } from '../../src/store/memory-kv.js';
import { SqliteKvStore } from '../../src/store/sqlite-kv.js';
import { buildControlPlane } from '../../src/node/control-plane.js';
import type { ServiceMessage } from '../../src/api/messages.js';
import { dataplaneContent, startApi, unary, webService, type ApiFixture } from '../helpers/api.js';

const inDataplane = (dp: FakeDataplane, address: string): boolean => [...dp.backends.values()].some((b) => b.address === address);

async function backendsOf(f: ApiFixture, name: string): Promise<string[]> {
  const s = await unary<ServiceMessage>(f.raw.registry, 'GetService', { name });
  return s.backends.map((b) => b.address);
}

/** A memory store whose lease clock the test moves; `expire` runs its expiry and waits for the node to apply it. */
async function leased(t: import('ava').ExecutionContext, tag: string): Promise<{ f: ApiFixture; advance(ms: number): void; expire(): Promise<void> }> {
  let now = 1_700_000_000_000;
  const store = new MemoryKvStore({ now: () => now, leaseCheckMs: 0 });
  const f = await startApi(t, { tag, store });
  return {
    f,
    advance: (ms) => {
      now += ms;
    },
    expire: async () => {
      store.expireLeases();
      await f.plane.settle(await store.revision(), []);
    },
  };
}

test('a backend that stops keeping alive is removed after its TTL; one that keeps alive stays', async (t) => {
  const { f, advance, expire } = await leased(t, 'leases');
  await unary(f.raw.registry, 'ApplyService', { service: webService('web', '10.96.0.10', ['10.1.0.1']) });
  const a = await unary<{ leaseId: string }>(f.raw.registration, 'RegisterBackend', { service: 'web', address: '10.1.0.7', ttlSeconds: 10 });
  const b = await unary<{ leaseId: string }>(f.raw.registration, 'RegisterBackend', { service: 'web', address: '10.1.0.8', ttlSeconds: 10 });
  t.deepEqual(await backendsOf(f, 'web'), ['10.1.0.1', '10.1.0.7', '10.1.0.8']);
  t.true(inDataplane(f.dp, '10.1.0.7') && inDataplane(f.dp, '10.1.0.8'));

  // B keeps alive over a stream every 4 s; A goes silent.
  const ka = f.raw.registration['KeepAlive']!() as grpc.ClientDuplexStream<{ leaseId: string }, { leaseId: string; ttlSeconds: number }>;
  t.teardown(() => ka.cancel());
  const keepAlive = (): Promise<{ leaseId: string; ttlSeconds: number }> =>
    new Promise((resolve, reject) => {
      ka.once('data', resolve);
      ka.once('error', reject);
      ka.write({ leaseId: b.leaseId });
    });
  for (let i = 0; i < 2; i++) {
    advance(4000);
    t.like(await keepAlive(), { leaseId: b.leaseId, ttlSeconds: 10 });
    await expire();
  }
  advance(1999); // 9.999 s: A is not expired yet
  await expire();
  t.deepEqual(await backendsOf(f, 'web'), ['10.1.0.1', '10.1.0.7', '10.1.0.8'], 'nothing expires before its TTL');

  advance(1); // 10 s: A's deadline
  t.like(await keepAlive(), { leaseId: b.leaseId, ttlSeconds: 10 });
  await expire();
  t.deepEqual(await backendsOf(f, 'web'), ['10.1.0.1', '10.1.0.8'], 'the silent backend is gone');
  t.false(inDataplane(f.dp, '10.1.0.7'), 'and out of the dataplane');
  t.true(inDataplane(f.dp, '10.1.0.8'));
  t.is(await f.store.lease(a.leaseId), undefined, 'its lease is gone');
  const hb = await unary(f.raw.registration, 'Heartbeat', { leaseId: a.leaseId }).catch((e: grpc.ServiceError) => e);
  t.is((hb as grpc.ServiceError).code, grpc.status.NOT_FOUND);

  // Now B stops too.
  advance(10_000);
  await expire();
  t.deepEqual(await backendsOf(f, 'web'), ['10.1.0.1'], 'static backends stay');
  t.false(inDataplane(f.dp, '10.1.0.8'));
  const late = await keepAlive().catch((e: grpc.ServiceError) => e);
  t.is((late as grpc.ServiceError).code, grpc.status.NOT_FOUND, 'a keepalive after expiry ends the stream');
});

test('one lease for backends of two services: both go when it expires, in one change', async (t) => {
  const { f, advance, expire } = await leased(t, 'leases-shared');
  await unary(f.raw.registry, 'ApplyService', { service: webService('web', '10.96.0.10', []) });
  await unary(f.raw.registry, 'ApplyService', { service: webService('api', '10.96.0.20', ['10.1.0.1']) });
  const lease = await unary<{ leaseId: string }>(f.raw.registration, 'RegisterBackend', { service: 'web', address: '10.1.0.5', ttlSeconds: 5 });
  await unary(f.raw.registration, 'RegisterBackend', { service: 'api', address: '10.1.0.5', leaseId: lease.leaseId });
  const revision = await f.store.revision();
  advance(3000);
  await unary(f.raw.registration, 'Heartbeat', { leaseId: lease.leaseId });
  advance(4000);
  await expire();
  t.deepEqual(await backendsOf(f, 'web'), ['10.1.0.5'], 'the heartbeat extended it');
  advance(1000);
  await expire();
  t.deepEqual(await backendsOf(f, 'web'), []);
  t.deepEqual(await backendsOf(f, 'api'), ['10.1.0.1']);
  t.false(inDataplane(f.dp, '10.1.0.5'));
  t.is(await f.store.revision(), revision + 1, 'the lease took both registrations in one revision');
});

test('with SQLite: services and leases survive a restart; the node finds its ids in the maps and writes nothing', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), `sluice-leases-${process.pid}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = path.join(dir, 'sluice.db');
  let now = 1_700_000_000_000;
  const clock = { now: () => now, leaseCheckMs: 0 };

  // First run: define, register, and remember what the maps hold.
  const dp = new FakeDataplane();
  const first = await startApi(t, { tag: 'leases-sqlite', store: SqliteKvStore.open(db, clock), dataplane: dp });
  await unary(first.raw.registry, 'ApplyService', { service: webService('web', '10.96.0.10', ['10.1.0.1', '10.1.0.2']) });
  await unary(first.raw.registry, 'ApplyService', { service: webService('api', '10.96.0.20', ['10.1.0.3']) });
  const lease = await unary<{ leaseId: string }>(first.raw.registration, 'RegisterBackend', { service: 'web', address: '10.1.0.9', ttlSeconds: 20 });
  const maps = dataplaneContent(dp);
  first.plane.close();
  await first.store.close();

  // Second run over the same maps (as pinned maps outlive the daemon).
  const writes = dp.ops.length;
  const store = SqliteKvStore.open(db, clock);
  t.teardown(() => store.close());
  const plane = await buildControlPlane({ store, dataplane: dp });
  t.teardown(() => plane.close());
  t.is(dataplaneContent(dp), maps, 'the restarted node holds the same services, backends and tables');
  t.is(dp.ops.length, writes, 'and wrote nothing to get there');
  t.is(plane.view.get('web')!.definition.backends.find((b) => b.address === '10.1.0.9')?.leaseId, lease.leaseId);

  // The lease still runs out.
  now += 20_000;
  store.expireLeases();
  await plane.settle(await store.revision(), []);
  t.deepEqual(plane.view.get('web')!.definition.backends.map((b) => b.address), ['10.1.0.1', '10.1.0.2']);
  t.false(inDataplane(dp, '10.1.0.9'));
});
