/**
 * The runtime overlay: laid over the catalog on the way to the maps, never
 * in the store, gone after a restart, and only ever making a backend take
 * less than the catalog says.
 */
import test from 'ava';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import { MemoryKvStore } from '../../src/store/memory-kv.js';
import { buildControlPlane } from '../../src/node/control-plane.js';
import { RuntimeOverlay } from '../../src/node/overlay.js';
import type { ServiceDefinition } from '../../src/model/definition.js';

const web = {
  name: 'default/web',
  addresses: ['10.96.0.10'],
  ports: [{ port: 80, protocol: 'tcp', targetPort: 8080 }],
  backends: [{ address: '10.1.0.1' }, { address: '10.1.0.2' }, { address: '10.1.0.3', state: 'draining' }],
};

/** The backends in the maps for web's frontend, by address, with their flags (1: draining). */
function inMaps(dp: FakeDataplane): Record<string, number> {
  const svc = dp.listServices()[0];
  if (!svc) return {};
  const out: Record<string, number> = {};
  for (const b of dp.backends.values()) if (b.serviceId === svc.value.id) out[b.address] = b.flags;
  return out;
}

/** The backend addresses in web's Maglev table. */
function inTable(dp: FakeDataplane): string[] {
  const svc = dp.listServices()[0]!;
  const table = dp.getMaglevTable(svc.value.id) ?? new Uint32Array(0);
  return [...new Set(Array.from(table, (id) => dp.backends.get(id)!.address))].sort();
}

test('an overlay takes a backend out of this node\'s maps only; cleared, it is back; a restart forgets it', async (t) => {
  const store = new MemoryKvStore();
  const dp = new FakeDataplane();
  const plane = await buildControlPlane({ store, dataplane: dp });
  t.teardown(() => plane.close());
  await plane.catalog.apply([{ definition: web }]);
  await plane.syncer.waitFor(await store.revision());
  t.deepEqual(inTable(dp), ['10.1.0.1', '10.1.0.2']);

  const storeBefore = JSON.stringify((await store.range('/')).kvs);
  plane.overlay.set('default/web', '10.1.0.1', 'maintenance', 'health: 3 checks failed');
  await plane.syncer.idle();
  t.deepEqual(inMaps(dp), { '10.1.0.2': 0, '10.1.0.3': 1 }, 'in maintenance: out of the maps here');
  t.deepEqual(inTable(dp), ['10.1.0.2']);
  t.is(JSON.stringify((await store.range('/')).kvs), storeBefore, 'nothing of it in the store');
  t.is(plane.view.get('default/web')!.definition.backends[0]!.state, 'active', 'the catalog still says active');

  // Draining laid over a backend the catalog drains already changes nothing; over an active one, it drains.
  plane.overlay.set('default/web', '10.1.0.3', 'draining', 'health');
  plane.overlay.set('default/web', '10.1.0.2', 'draining', 'health');
  await plane.syncer.idle();
  t.deepEqual(inMaps(dp), { '10.1.0.2': 1, '10.1.0.3': 1 });
  t.is(plane.syncer.tableSizeOf(plane.view.get('default/web')!.definition), 0, 'no active backend: no table');

  t.true(plane.overlay.clear('default/web', '10.1.0.1'));
  t.true(plane.overlay.clear('default/web', '10.1.0.2'));
  await plane.syncer.idle();
  t.deepEqual(inTable(dp), ['10.1.0.1', '10.1.0.2'], 'cleared: as the catalog says');

  // A restart of the node: a new control plane over the same store and maps starts without it.
  plane.overlay.set('default/web', '10.1.0.1', 'maintenance', 'health');
  await plane.syncer.idle();
  plane.close();
  const again = await buildControlPlane({ store, dataplane: dp });
  t.teardown(() => again.close());
  t.deepEqual(again.overlay.list(), []);
  t.deepEqual(inTable(dp), ['10.1.0.1', '10.1.0.2'], 'the restarted node holds the catalog alone');
});

test('apply: the definition itself when nothing applies; a lesser state only; unknown backends are not added', (t) => {
  const o = new RuntimeOverlay();
  const d: ServiceDefinition = {
    name: 's', addresses: ['10.96.0.1'], ports: [{ name: 'p', port: 80, protocol: 'tcp', targetPort: 80 }],
    backends: [{ address: '10.1.0.1', weight: 1, state: 'maintenance' }, { address: '10.1.0.2', weight: 1, state: 'active' }],
    noBackends: 'reject',
  };
  t.is(o.apply(d), d);
  const seen: string[][] = [];
  o.subscribe((names) => seen.push([...names]));
  o.set('s', '10.1.0.1', 'draining', 'x');
  o.set('s', '10.9.9.9', 'maintenance', 'x');
  t.is(o.apply(d).backends.length, 2, 'a backend the catalog lacks is not added');
  t.is(o.apply(d).backends[0]!.state, 'maintenance', 'draining does not lift maintenance');
  t.is(o.apply(d), d, 'nothing applies: the same object');
  o.set('s', '10.1.0.2', 'draining', 'x');
  t.is(o.apply(d).backends[1]!.state, 'draining');
  t.is(d.backends[1]!.state, 'active', 'the definition itself is untouched');
  o.set('s', '10.1.0.2', 'draining', 'another reason');
  t.deepEqual(seen, [['s'], ['s'], ['s']], 'a new reason alone tells no one');
  t.throws(() => o.set('s', '10.1.0.2', 'active' as never, 'x'), { message: /draining or maintenance/ });
  o.clearService('s');
  t.deepEqual(o.list(), []);
});
