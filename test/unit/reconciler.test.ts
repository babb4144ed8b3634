/**
 * The reconciler: the smallest ordered set of operations, scoped diffs,
 * adoption of an existing dataplane without writes, and undo on failure.
 */
import test from 'ava';
import { reconcile, emptyState, keyString } from '../../src/reconciler/reconcile.js';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import { LoadBalancer } from '../../src/lb/load-balancer.js';
import { SluiceError } from '../../src/errors.js';
import type { ServiceSpec } from '../../src/model/service.js';
import type { ServiceKey } from '../../src/dataplane/codec.js';
import { conntrackEntries } from '../helpers/conntrack.js';

const web: ServiceSpec = {
  name: 'web', address: '10.96.0.10', port: 80, protocol: 'tcp',
  backends: [1, 2, 3, 4].map((i) => ({ address: `10.1.0.${i}`, port: 8080 })),
};

const writes = (dp: FakeDataplane): string[] => dp.ops.map((o) => o.op).filter((o) => !o.startsWith('reset'));

test('equal states need no operation; the order is backends, tables, services, VIPs, then deletions', (t) => {
  t.deepEqual(reconcile(emptyState(), emptyState()), []);
  const key: ServiceKey = { address: '10.96.0.1', port: 80, protocol: 'tcp' };
  const desired = emptyState();
  desired.backends.set(7, { address: '10.1.0.1', port: 80, flags: 0, serviceId: 1 });
  desired.tables.set(100, Uint32Array.of(7, 7, 7));
  desired.services.set(keyString(key), { key, value: { id: 1, flags: 0, affinityTimeoutSec: 0, tableSize: 3, tableBase: 100 } });
  desired.vips.set('10.96.0.1', 1);
  const current = emptyState();
  current.backends.set(9, { address: '10.1.0.9', port: 80, flags: 0, serviceId: 2 });
  current.tables.set(0, Uint32Array.of(9));
  const old: ServiceKey = { address: '10.96.0.2', port: 80, protocol: 'tcp' };
  current.services.set(keyString(old), { key: old, value: { id: 2, flags: 0, affinityTimeoutSec: 0, tableSize: 1, tableBase: 0 } });
  current.vips.set('10.96.0.2', 1);
  t.deepEqual(reconcile(desired, current).map((o) => o.op), [
    'putBackend', 'writeTable', 'putService', 'putVip', 'deleteService', 'deleteVip', 'releaseTable', 'deleteBackend',
  ]);
  t.deepEqual(reconcile(desired, current, { backends: [7], services: [], tables: [], vips: [] }).map((o) => o.op), ['putBackend'], 'scope limits the diff');
});

test('a changed table goes to a fresh region; the service entry then switches to it', async (t) => {
  const dp = new FakeDataplane();
  const lb = new LoadBalancer(dp);
  await lb.apply(web);
  const before = dp.listServices()[0]!.value;
  dp.ops.length = 0;
  await lb.apply({ ...web, backends: web.backends.slice(1) });
  const after = dp.listServices()[0]!.value;
  t.not(after.tableBase, before.tableBase, 'a table was rewritten in place');
  const ops = writes(dp);
  t.true(ops.indexOf('writeTable') < ops.indexOf('putService'), ops.join(','));
  t.deepEqual(dp.getMaglevTable(after.id), dp.readTable(after.tableBase, after.tableSize));
});

test('re-applying the same service writes nothing; one weight change swaps only the table', async (t) => {
  const dp = new FakeDataplane();
  const lb = new LoadBalancer(dp);
  await lb.apply(web);
  dp.ops.length = 0;
  await lb.apply(web);
  t.deepEqual(writes(dp), [], 'no-op apply wrote to the maps');
  await lb.apply({ ...web, backends: web.backends.map((b, i) => (i === 0 ? { ...b, weight: 3 } : b)) });
  t.deepEqual(writes(dp), ['writeTable', 'putService'], 'new table region, then the switch');
  dp.ops.length = 0;
  await lb.setBackendState('web', '10.1.0.2', 8080, 'draining');
  t.deepEqual(writes(dp), ['putBackend', 'writeTable', 'putService'], 'drain: flag the backend, new table, switch');
});

test('a new load balancer with the persisted ids adopts the maps without writing; converge removes leftovers', async (t) => {
  const dp = new FakeDataplane();
  const first = new LoadBalancer(dp);
  await first.applyMany([web, { ...web, name: 'old', port: 81 }]);
  const ids = first.exportIds(['web']);
  const conntrack = { key: { saddr: '1.1.1.1', daddr: '10.96.0.10', sport: 1, dport: 80, protocol: 'tcp' as const }, value: { dir: 0 as const, natAddress: '10.1.0.1', natPort: 8080, backendId: 1, serviceId: 1, state: 'established' as const, created: 1, expires: 1 } };
  dp.addConntrack(conntrack);
  dp.ops.length = 0;

  const second = new LoadBalancer(dp, { ids });
  await second.apply(web);
  // Only what the unclaimed "old" shared moves: the VIP's informational
  // service count, and reply_nat (web's endpoints were web's and old's, so
  // ambiguous; they are web's alone now).
  t.deepEqual(writes(dp), ['putVip', 'putReply', 'putReply', 'putReply', 'putReply'], 'adoption rewrote maps');
  t.deepEqual([...dp.replies.values()], [...second.ids('web').backends.values()], 'each endpoint names web\'s backend');
  t.deepEqual(second.ids('web'), first.ids('web'));
  dp.ops.length = 0;
  const removed = await second.converge();
  t.true(removed > 0);
  t.deepEqual(dp.listServices().map((s) => s.key.port), [80], 'the service nobody claims is gone');
  t.is(conntrackEntries(dp).length, 1, 'conntrack is never flushed');
  t.deepEqual(writes(dp).filter((o) => o.startsWith('put') || o.startsWith('set')), [], 'converge only deletes here');
});

test('a failing map write leaves the maps and the model as they were, as RESOURCE_EXHAUSTED', async (t) => {
  const dp = new FakeDataplane();
  const lb = new LoadBalancer(dp);
  await lb.apply(web);
  const before = JSON.stringify([[...dp.services], [...dp.backends], [...dp.tables].map(([k, v]) => [k, [...v]]), [...dp.vips]]);
  const orig = dp.writeTables.bind(dp);
  dp.writeTables = () => {
    throw Object.assign(new Error('map full'), { code: 'E2BIG', errno: 7 });
  };
  const err = await t.throwsAsync(lb.apply({ ...web, backends: [...web.backends, { address: '10.1.0.9', port: 8080 }] }), { instanceOf: SluiceError });
  t.is(err?.code, 'RESOURCE_EXHAUSTED');
  dp.writeTables = orig;
  t.is(JSON.stringify([[...dp.services], [...dp.backends], [...dp.tables].map(([k, v]) => [k, [...v]]), [...dp.vips]]), before, 'maps changed');
  t.is(lb.get('web')?.backends.length, 4, 'the model kept the old spec');
  dp.ops.length = 0;
  await lb.apply(web);
  t.deepEqual(writes(dp), [], 'model and maps agree after the failure');
});
