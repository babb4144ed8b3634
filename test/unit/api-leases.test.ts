/**
 * Leases with an injected clock and timer: a registered backend whose
 * keepalives stop is removed once its TTL has passed (from the service and
 * from the dataplane), one that keeps alive stays; a lease shared by
 * backends of two services takes both; and, with the SQLite store, leases
 * and dataplane ids survive a restart of the registry.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import { LoadBalancer } from '../../src/lb/load-balancer.js';
import { Registry, type RegistryTimers } from '../../src/registry/registry.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import type { ServiceMessage } from '../../src/api/messages.js';
import { dataplaneContent, startApi, unary, webService, type ApiFixture } from '../helpers/api.js';

/** A clock the test moves, and a timer the test fires. */
function fakeTime(start = 1_700_000_000_000): { clock: { nowMs(): number }; timers: RegistryTimers; advance(ms: number): void; fire(): void } {
  let now = start;
  let tick: (() => void) | undefined;
  return {
    clock: { nowMs: () => now },
    timers: {
      setInterval: (fn) => {
        tick = fn;
        return 1;
      },
      clearInterval: () => {
        tick = undefined;
      },
    },
    advance: (ms) => {
      now += ms;
    },
    fire: () => tick?.(),
  };
}

const inDataplane = (dp: FakeDataplane, address: string): boolean => [...dp.backends.values()].some((b) => b.address === address);

async function backendsOf(f: ApiFixture, name: string): Promise<string[]> {
  const s = await unary<ServiceMessage>(f.raw.registry, 'GetService', { name });
  return s.backends.map((b) => b.address);
}

/** Fire the lease timer and wait until its work is done (the next queued mutation runs after it). */
async function tick(f: ApiFixture, time: ReturnType<typeof fakeTime>): Promise<void> {
  time.fire();
  await f.registry.expireLeases();
}

test('a backend that stops keeping alive is removed after its TTL; one that keeps alive stays', async (t) => {
  const time = fakeTime();
  const f = await startApi(t, { tag: 'leases', registry: { clock: time.clock, timers: time.timers } });
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
    time.advance(4000);
    t.deepEqual(await keepAlive(), { leaseId: b.leaseId, ttlSeconds: 10 });
    await tick(f, time);
  }
  time.advance(1999); // 9.999 s: A is not expired yet
  await tick(f, time);
  t.deepEqual(await backendsOf(f, 'web'), ['10.1.0.1', '10.1.0.7', '10.1.0.8'], 'nothing expires before its TTL');

  time.advance(1); // 10 s: A's deadline
  t.deepEqual(await keepAlive(), { leaseId: b.leaseId, ttlSeconds: 10 });
  time.fire();
  // The timer's work shows through the API without any other call.
  const deadline = Date.now() + 5000;
  while ((await backendsOf(f, 'web')).includes('10.1.0.7') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.deepEqual(await backendsOf(f, 'web'), ['10.1.0.1', '10.1.0.8'], 'the silent backend is gone');
  t.false(inDataplane(f.dp, '10.1.0.7'), 'and out of the dataplane');
  t.true(inDataplane(f.dp, '10.1.0.8'));
  t.is(f.store.getLease(a.leaseId), undefined, 'its lease is revoked');
  const hb = await unary(f.raw.registration, 'Heartbeat', { leaseId: a.leaseId }).catch((e: grpc.ServiceError) => e);
  t.is((hb as grpc.ServiceError).code, grpc.status.NOT_FOUND);

  // Now B stops too.
  time.advance(10_000);
  await tick(f, time);
  t.deepEqual(await backendsOf(f, 'web'), ['10.1.0.1'], 'static backends stay');
  t.false(inDataplane(f.dp, '10.1.0.8'));
  const late = await keepAlive().catch((e: grpc.ServiceError) => e);
  t.is((late as grpc.ServiceError).code, grpc.status.NOT_FOUND, 'a keepalive after expiry ends the stream');
});

test('one lease for backends of two services: both go when it expires', async (t) => {
  const time = fakeTime();
  const f = await startApi(t, { tag: 'leases-shared', registry: { clock: time.clock, timers: time.timers } });
  await unary(f.raw.registry, 'ApplyService', { service: webService('web', '10.96.0.10', []) });
  await unary(f.raw.registry, 'ApplyService', { service: webService('api', '10.96.0.20', ['10.1.0.1']) });
  const lease = await unary<{ leaseId: string }>(f.raw.registration, 'RegisterBackend', { service: 'web', address: '10.1.0.5', ttlSeconds: 5 });
  await unary(f.raw.registration, 'RegisterBackend', { service: 'api', address: '10.1.0.5', leaseId: lease.leaseId });
  const revision = f.store.revision();
  time.advance(3000);
  await unary(f.raw.registration, 'Heartbeat', { leaseId: lease.leaseId });
  time.advance(4000);
  await tick(f, time);
  t.deepEqual(await backendsOf(f, 'web'), ['10.1.0.5'], 'the heartbeat extended it');
  time.advance(1000);
  await tick(f, time);
  t.deepEqual(await backendsOf(f, 'web'), []);
  t.deepEqual(await backendsOf(f, 'api'), ['10.1.0.1']);
  t.false(inDataplane(f.dp, '10.1.0.5'));
  t.is(f.store.revision(), revision + 2, 'one revision per service changed');
});

test('with SQLite: services, leases and dataplane ids survive a restart', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), `sluice-leases-${process.pid}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = path.join(dir, 'sluice.db');
  const time = fakeTime();

  // First run: define, register, and remember what the maps hold.
  const first = await startApi(t, { tag: 'leases-sqlite', store: SqliteStore.open(db), registry: { clock: time.clock, timers: time.timers } });
  await unary(first.raw.registry, 'ApplyService', { service: webService('web', '10.96.0.10', ['10.1.0.1', '10.1.0.2']) });
  await unary(first.raw.registry, 'ApplyService', { service: webService('api', '10.96.0.20', ['10.1.0.3']) });
  const lease = await unary<{ leaseId: string }>(first.raw.registration, 'RegisterBackend', { service: 'web', address: '10.1.0.9', ttlSeconds: 20 });
  const maps = dataplaneContent(first.dp);
  first.registry.close();
  first.store.close();

  // Second run, on a fresh dataplane: the same maps, the same ids.
  const store = SqliteStore.open(db);
  t.teardown(() => store.close());
  const dp = new FakeDataplane();
  const lb = new LoadBalancer(dp, { ids: store.loadIds() });
  const registry = new Registry({ store, lb, dataplane: dp, clock: time.clock, timers: time.timers });
  t.teardown(() => registry.close());
  await registry.start();
  t.is(dataplaneContent(dp), maps, 'a restarted registry rebuilds the same services, backends and tables');
  t.is(registry.getService('web').definition.backends.find((b) => b.address === '10.1.0.9')?.leaseId, lease.leaseId);

  // The lease still runs out.
  time.advance(20_000);
  t.is(await registry.expireLeases(), 1);
  t.deepEqual(registry.getService('web').definition.backends.map((b) => b.address), ['10.1.0.1', '10.1.0.2']);
  t.false(inDataplane(dp, '10.1.0.9'));
});
