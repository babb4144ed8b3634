/**
 * apply decides from the node's view first (no store reads) and guards
 * what it read with its compares: a view that is behind the store never
 * makes a wrong write, a wrong refusal or a wrong "unchanged". The stale
 * view here is one that stopped following the store (closed) before
 * another node's writes.
 */
import test from 'ava';
import { Catalog } from '../../src/catalog/catalog.js';
import { CatalogKeys } from '../../src/catalog/keys.js';
import { CatalogView } from '../../src/catalog/view.js';
import { MemoryKvStore } from '../../src/store/memory-kv.js';
import type { KvStore } from '../../src/store/kv.js';
import { SluiceError } from '../../src/errors.js';
import type { ServiceDefinition } from '../../src/model/definition.js';

const def = (name: string, vip: string, backends: string[]): ServiceDefinition => ({
  name,
  addresses: [vip],
  ports: [{ name: 'http', port: 80, protocol: 'tcp', targetPort: 8080 }],
  backends: backends.map((address) => ({ address, weight: 1, state: 'active' })),
  noBackends: 'reject',
});

/** A store, node A's catalog (no view), and node B's catalog over a view frozen now. */
async function twoNodes(t: import('ava').ExecutionContext): Promise<{ store: KvStore; a: Catalog; b: Catalog; reads: () => number }> {
  const store = new MemoryKvStore();
  const keys = new CatalogKeys('/sluice');
  const a = new Catalog({ store, keys });
  await a.apply([{ definition: def('web', '10.96.0.10', ['10.1.0.1']) }]);
  const view = new CatalogView({ store, keys });
  await view.start();
  view.close();
  // Count B's store reads: the view-first try makes none.
  let n = 0;
  const counted = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if ((prop === 'get' || prop === 'range') && typeof v === 'function') {
        return (...args: unknown[]) => {
          n++;
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const b = new Catalog({ store: counted, keys, view });
  t.teardown(() => store.close());
  return { store, a, b, reads: () => n };
}

test('a current view: a bulk apply reads nothing from the store, and its answer is what the store holds', async (t) => {
  const { a, b, reads } = await twoNodes(t);
  const items = Array.from({ length: 40 }, (_, i) => ({ definition: def(`svc-${i}`, `10.96.1.${i}`, ['10.1.1.1', '10.1.1.2']) }));
  items.push({ definition: def('web', '10.96.0.10', ['10.1.0.2']) });
  const r = await b.apply(items);
  t.is(reads(), 0);
  t.deepEqual(r.unchanged, []);
  for (const s of r.services) t.deepEqual(await a.get(s.definition.name), s);
});

test('a view behind the store: the write is decided again from the store, never against it', async (t) => {
  const { store, a, b, reads } = await twoNodes(t);
  // Node A changes web and creates api on 10.96.0.11 after B's view froze.
  await a.apply([{ definition: def('web', '10.96.0.10', ['10.1.0.5']) }, { definition: def('api', '10.96.0.11', ['10.1.0.6']) }]);
  const webNow = await a.get('web');

  // B's view says web is at an older revision: a write over web lands over A's (compare failed, read again).
  const r = await b.apply([{ definition: def('web', '10.96.0.10', ['10.1.0.7']) }]);
  t.true(reads() > 0, 'the store was read after the view lost');
  t.deepEqual((await a.get('web')).definition.backends.map((x) => x.address), ['10.1.0.7']);
  t.is(r.services[0]!.createRevision, webNow.createRevision);

  // expectedRevision from A's newer read: not refused because B's view is older.
  const cur = await a.get('web');
  await b.apply([{ definition: def('web', '10.96.0.10', ['10.1.0.8']), expectedRevision: cur.revision }]);

  // "unchanged" is the store's word, not the stale view's.
  const apiNow = await a.get('api');
  const same = await b.apply([{ definition: def('api', '10.96.0.11', ['10.1.0.6']) }]);
  t.deepEqual(same.unchanged, ['api']);
  t.deepEqual(same.services[0], apiNow);

  // The view thinks 10.96.0.11:80 is free; the store knows api holds it.
  const revision = await store.revision();
  const err = await t.throwsAsync(b.apply([{ definition: def('other', '10.96.0.11', ['10.1.0.9']) }]), { instanceOf: SluiceError });
  t.is(err?.code, 'INVALID_ARGUMENT');
  t.is(err?.field, '[0].addresses[0]');
  t.regex(err?.message ?? '', /already owned by service "api"/);
  t.is(await store.revision(), revision);

  // A frontend the view thinks web holds, released by A meanwhile, is claimed by the store's word.
  await a.apply([{ definition: def('web', '10.96.0.12', ['10.1.0.8']) }]);
  await b.apply([{ definition: def('moved', '10.96.0.10', ['10.1.0.9']) }]);
  t.is((await a.get('moved')).definition.addresses[0], '10.96.0.10');
});
