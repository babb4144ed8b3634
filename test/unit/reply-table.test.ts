import test from 'ava';
import { endpointCode } from '../../src/dataplane/codec.js';
import { ReplyTable } from '../../src/reconciler/reply-table.js';

/** A small deterministic generator (the test must fail the same way twice). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0);
}

const sorted = (it: Iterable<[number, number]>): Array<[number, number]> => [...it].sort((a, b) => a[0] - b[0]);

test('behaves as a Map of endpoint codes: set, get, has, delete, size, through growth and deletions', (t) => {
  const table = new ReplyTable(4);
  const map = new Map<number, number>();
  const next = lcg(7);
  // Codes from few addresses and ports, so that sets replace and deletes hit.
  const code = (): number => endpointCode(`10.${next() % 3}.0.${next() % 40}`, 8000 + (next() % 20), next() % 2 === 0 ? 'tcp' : 'udp');
  for (let i = 0; i < 20_000; i++) {
    const c = code();
    if (next() % 3 === 0) {
      t.is(table.delete(c), map.delete(c), `delete ${c} (step ${i})`);
    } else {
      const v = next() % 5 === 0 ? 0 : next() % 200_000;
      table.set(c, v);
      map.set(c, v);
    }
    if (i % 997 === 0) t.deepEqual(sorted(table), sorted(map), `step ${i}`);
  }
  t.is(table.size, map.size);
  for (const [c, v] of map) {
    t.true(table.has(c));
    t.is(table.get(c), v);
  }
  t.deepEqual(sorted(table.entries()), sorted(map.entries()));
  t.deepEqual([...table.keys()].sort((a, b) => a - b), [...map.keys()].sort((a, b) => a - b));
  t.deepEqual([...table.values()].sort((a, b) => a - b), [...map.values()].sort((a, b) => a - b));
  for (const c of [...map.keys()]) t.true(table.delete(c));
  t.is(table.size, 0);
  t.deepEqual([...table], []);
});

test('holds the largest codes and ids; refuses what is neither', (t) => {
  const top = endpointCode('255.255.255.255', 65535, 'udp');
  const table = ReplyTable.from(new Map([[top, 0xffffffff], [0, 0]]));
  t.is(table.get(top), 0xffffffff);
  t.is(table.get(0), 0);
  t.false(table.has(-1), 'the free-slot marker is no code');
  t.is(table.get(-1), undefined);
  t.throws(() => table.set(-1, 1), { instanceOf: RangeError });
  t.throws(() => table.set(1.5, 1), { instanceOf: RangeError });
  t.throws(() => table.set(1, 2 ** 32), { instanceOf: RangeError });
  t.is(table.size, 2);
});
