/**
 * grpc.health.v1.Health as a daemon that is still attaching uses it: every
 * status NOT_SERVING until setServing(true), Watch told of each change once,
 * List naming the server and each sluice service, open Watch calls ended
 * with UNAVAILABLE on close. (api-contract covers Check and Watch of a
 * server that serves from the start.)
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import { MemoryKvStore } from '../../src/store/memory-kv.js';
import { buildControlPlane } from '../../src/node/control-plane.js';
import { startApiServer } from '../../src/api/server.js';
import { SLUICE_SERVICES } from '../../src/api/protos.js';
import { rawClients, unary, uniqueSocket } from '../helpers/api.js';

type Status = { status: string };

test('health: NOT_SERVING until setServing(true), each change watched once, List, Watch ended on close', async (t) => {
  const store = new MemoryKvStore();
  const plane = await buildControlPlane({ store, dataplane: new FakeDataplane() });
  const server = await startApiServer({ plane, listen: `unix://${uniqueSocket('health')}`, notServingYet: true });
  const raw = rawClients(server.address);
  t.teardown(async () => {
    for (const c of Object.values(raw)) c.close();
    await server.close();
    plane.close();
    await store.close();
  });

  for (const service of ['', ...SLUICE_SERVICES]) {
    t.deepEqual(await unary(raw.health, 'Check', { service }), { status: 'NOT_SERVING' }, `Check ${JSON.stringify(service)}`);
  }
  const seen: string[] = [];
  const call = raw.health['Watch']!({ service: 'sluice.v1.Registration' }) as grpc.ClientReadableStream<Status>;
  const ended = new Promise<grpc.ServiceError>((resolve) => call.on('error', resolve));
  const arrived = (n: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out: ${n} statuses wanted, have ${JSON.stringify(seen)}`)), 5000);
      const check = (): void => {
        if (seen.length < n) return;
        clearTimeout(timer);
        call.off('data', check);
        resolve();
      };
      call.on('data', check);
      check();
    });
  call.on('data', (m: Status) => seen.push(m.status));
  await arrived(1);

  server.setServing(true);
  await arrived(2);
  t.deepEqual(await unary(raw.health, 'Check', { service: '' }), { status: 'SERVING' });
  server.setServing(true); // no change: watchers hear nothing
  server.setServing(false);
  await arrived(3);
  server.setServing(true);
  await arrived(4);
  t.deepEqual(seen, ['NOT_SERVING', 'SERVING', 'NOT_SERVING', 'SERVING']);

  const list = await unary<{ statuses: Record<string, Status> }>(raw.health, 'List', {});
  t.deepEqual(
    Object.keys(list.statuses).sort(),
    ['', ...SLUICE_SERVICES].sort(),
  );
  t.true(Object.values(list.statuses).every((s) => s.status === 'SERVING'));

  await server.close();
  t.is((await ended).code, grpc.status.UNAVAILABLE, 'an open Watch ends with UNAVAILABLE on close');
  t.deepEqual(seen, ['NOT_SERVING', 'SERVING', 'NOT_SERVING', 'SERVING', 'NOT_SERVING'], 'NOT_SERVING before the end');
});
