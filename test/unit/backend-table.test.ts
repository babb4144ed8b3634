import test from 'ava';
import type { BackendValue } from '../../src/dataplane/codec.js';
import { BackendTable } from '../../src/reconciler/backend-table.js';

const be = (address: string, port = 8080, flags = 0, serviceId = 1): BackendValue => ({ address, port, flags, serviceId });

test('behaves as a Map of backend values: set, get, has, delete, size', (t) => {
  const table = new BackendTable();
  const map = new Map<number, BackendValue>();
  const ops: Array<['set', number, BackendValue] | ['delete', number]> = [
    ['set', 7, be('10.1.0.1')],
    ['set', 0, be('0.0.0.0', 0, 0, 0)],
    ['set', 70_000, be('255.255.255.255', 65535, 255, 0xffffffff)],
    ['set', 7, be('10.1.0.2', 80, 1, 9)], // replaced
    ['delete', 3], // absent
    ['set', 1 << 22, be('10.9.9.9')], // beyond the rows: kept aside
    ['set', 12, be('fd00::1')], // not IPv4: kept aside
    ['set', 12, be('10.1.0.12')], // back into a row
    ['set', 13, be('10.1.0.13', 70_000)], // a port no row holds: kept aside, unchanged
    ['delete', 0],
    ['delete', 1 << 22],
  ];
  for (const op of ops) {
    if (op[0] === 'set') {
      table.set(op[1], op[2]);
      map.set(op[1], op[2]);
    } else {
      t.is(table.delete(op[1]), map.delete(op[1]), `delete ${op[1]}`);
    }
    t.is(table.size, map.size);
  }
  for (const id of [0, 3, 7, 12, 13, 70_000, 1 << 22, -1, 1.5]) {
    t.is(table.has(id), map.has(id), `has ${id}`);
    t.deepEqual(table.get(id), map.get(id), `get ${id}`);
  }
  t.deepEqual([...table.keys()].sort((a, b) => a - b), [...map.keys()].sort((a, b) => a - b));
  const byId = (a: [number, unknown], b: [number, unknown]): number => a[0] - b[0];
  t.deepEqual([...table.entries()].sort(byId), [...map.entries()].sort(byId));
});

test('get returns a copy: changing it changes nothing in the table', (t) => {
  const table = BackendTable.from([[5, be('10.1.0.5')], [6, be('fd00::6')]]);
  table.get(5)!.port = 1;
  table.get(6)!.port = 1;
  t.is(table.get(5)!.port, 8080);
  t.is(table.get(6)!.port, 8080);
});

test('rows grow as ids grow, and keys come in id order', (t) => {
  const ids = [100_000, 3, 2048, 1, 131_071];
  const table = BackendTable.from(ids.map((id) => [id, be(`10.2.${(id >> 8) & 255}.${id & 255}`, 80, 0, id)] as const));
  t.deepEqual([...table.keys()], [...ids].sort((a, b) => a - b));
  for (const id of ids) t.is(table.get(id)!.serviceId, id);
});

test('addresses that only look like IPv4 are kept as given', (t) => {
  for (const odd of ['010.1.0.1', '10.1.0', '10.1.0.256', '1.2.3.4.5', '']) {
    const table = new BackendTable().set(1, be(odd));
    t.is(table.get(1)!.address, odd, JSON.stringify(odd));
  }
});
