import test from 'ava';
import { endpointCode, endpointKey, type EndpointKey } from '../../src/dataplane/codec.js';
import { ReplyTable } from '../../src/reconciler/reply-table.js';

/** A small deterministic generator (the test must fail the same way twice). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0);
}

const order = (a: EndpointKey, b: EndpointKey): number => (typeof a === typeof b ? (a < b ? -1 : a > b ? 1 : 0) : typeof a === 'number' ? -1 : 1);
const sorted = (it: Iterable<[EndpointKey, number]>): Array<[EndpointKey, number]> => [...it].sort((a, b) => order(a[0], b[0]));

test('behaves as a Map of endpoint keys, IPv4 codes and IPv6 strings: set, get, has, delete, size, through growth and deletions', (t) => {
  const table = new ReplyTable(4);
  const map = new Map<EndpointKey, number>();
  const next = lcg(7);
  // Keys from few addresses and ports, so that sets replace and deletes hit;
  // one in four an IPv6 endpoint.
  const code = (): EndpointKey => {
    const ip = next() % 4 === 0 ? `2001:db8::${next() % 3}:${next() % 40}` : `10.${next() % 3}.0.${next() % 40}`;
    return endpointKey(ip, 8000 + (next() % 20), next() % 2 === 0 ? 'tcp' : 'udp');
  };
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
  t.true([...map.keys()].some((k) => typeof k === 'string') && [...map.keys()].some((k) => typeof k === 'number'), 'both kinds of key');
  t.deepEqual([...table.keys()].sort(order), [...map.keys()].sort(order));
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

test('string keys: one per IPv6 endpoint, beside the codes; iterated after them', (t) => {
  const v6 = endpointKey('2001:db8::1', 8080, 'tcp');
  t.is(v6, '2001:db8::1|8080|tcp');
  t.is(endpointKey('2001:DB8:0::1', 8080, 'tcp'), v6, 'one key per address, however written');
  t.not(endpointKey('2001:db8::1', 8080, 'udp'), v6);
  const v4 = endpointCode('10.1.0.1', 8080, 'tcp');
  t.is(endpointKey('10.1.0.1', 8080, 'tcp'), v4, 'IPv4 keeps its number');
  const table = new ReplyTable();
  table.set(v6, 7).set(v4, 9);
  t.is(table.size, 2);
  t.is(table.get(v6), 7);
  t.true(table.has(v6));
  t.deepEqual([...table], [[v4, 9], [v6, 7]]);
  t.deepEqual([...ReplyTable.from(table)], [[v4, 9], [v6, 7]], 'from() takes both kinds');
  t.throws(() => table.set('', 1), { instanceOf: RangeError });
  t.true(table.delete(v6));
  t.false(table.delete(v6));
  t.false(table.has(v6));
  t.is(table.size, 1);
});
