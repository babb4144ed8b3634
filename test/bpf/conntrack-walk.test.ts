// Walking the kernel's conntrack LRU hash a batch at a time
// (BPF_MAP_LOOKUP_BATCH through the addon's mapLookupBatch): every entry
// once, whatever the batch or page size; deletions under the cursor
// neither fail nor restart the walk; listing and flushing connections on
// it. Needs root.
import test from 'ava';
import { CT_FORWARD, CT_REPLY, encodeConntrackKey, encodeConntrackValue, type ConntrackKey } from '../../src/dataplane/codec.js';
import type { ConntrackCursor } from '../../src/dataplane/dataplane.js';
import type { NativeError } from '../../src/dataplane/native.js';
import { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { flushConnections, listConnections, type ConnectionCursor } from '../../src/inspect/connections.js';

const FLOWS = 25_000; // 50,000 entries
const NOW = 10_000_000_000n;

function forwardKey(i: number): ConntrackKey {
  return { saddr: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, daddr: `10.96.0.${10 + (i % 4)}`, sport: 1024 + (i % 60_000), dport: 80, protocol: 'tcp' };
}

function replyKey(i: number): ConntrackKey {
  const f = forwardKey(i);
  return { saddr: `10.1.0.${1 + (i % 50)}`, daddr: f.saddr, sport: 8080, dport: f.sport, protocol: 'tcp' };
}

const hex = (k: ConntrackKey): string => encodeConntrackKey(k).toString('hex');

/**
 * A dataplane whose conntrack holds `flows` flows, forward and reply
 * entries, written through the addon. The table has room to spare: an LRU
 * hash can evict before it is full (per-CPU free lists).
 */
async function filled(t: { teardown(fn: () => void): void }, flows = FLOWS, conntrack = 131_072): Promise<NativeDataplane> {
  const dp = await NativeDataplane.open({ fibRedirect: false, capacity: { conntrack, maglevSlots: 65_536 } });
  t.teardown(() => dp.close());
  const keys: Buffer[] = [];
  const values: Buffer[] = [];
  for (let i = 0; i < flows; i++) {
    const common = { backendId: 1 + (i % 50), serviceId: 1 + (i % 4), state: 'established' as const, created: 1, expires: 20 };
    keys.push(encodeConntrackKey(forwardKey(i)), encodeConntrackKey(replyKey(i)));
    values.push(
      encodeConntrackValue({ ...common, dir: CT_FORWARD, natAddress: `10.1.0.${1 + (i % 50)}`, natPort: 8080 }),
      encodeConntrackValue({ ...common, dir: CT_REPLY, natAddress: `10.96.0.${10 + (i % 4)}`, natPort: 80 }),
    );
  }
  dp.raw.mapUpdateBatch('conntrack', Buffer.concat(keys), Buffer.concat(values));
  return dp;
}

/** Every key a walk in steps of `max` reads, in order; `between` runs after each step. */
function walk(dp: NativeDataplane, max: number, between: (read: string[]) => void = () => {}): { keys: string[]; steps: number; largest: number } {
  const keys: string[] = [];
  let at: ConntrackCursor | null = null;
  let steps = 0;
  let largest = 0;
  do {
    const { rows, next } = dp.readConntrack(at, max);
    const read: string[] = [];
    for (let i = 0; i < rows.count; i++) read.push(rows.keyBytes(i).toString('hex'));
    keys.push(...read);
    largest = Math.max(largest, rows.count);
    steps++;
    between(read);
    at = next;
  } while (at !== null);
  return { keys, steps, largest };
}

function repeats(keys: string[]): string[] {
  const seen = new Set<string>();
  return keys.filter((k) => (seen.has(k) ? true : (seen.add(k), false)));
}

test('every entry exactly once, in batches of any size', async (t) => {
  const dp = await filled(t);
  const all = new Set<string>();
  for (let i = 0; i < FLOWS; i++) all.add(hex(forwardKey(i))).add(hex(replyKey(i)));
  for (const max of [1, 3, 100, 4096]) {
    const w = walk(dp, max);
    t.deepEqual(repeats(w.keys), [], `batches of ${max}: no entry read twice`);
    t.is(w.keys.length, 2 * FLOWS, `batches of ${max}: every entry`);
    t.true(w.keys.every((k) => all.has(k)));
    // A batch is whole hash buckets: above max only when one bucket is.
    t.true(w.largest <= Math.max(max, 16), `batches of ${max}: the largest held ${w.largest}`);
    if (max === 1) t.true(w.largest > 1, 'some bucket holds several entries, and comes whole');
  }
});

test('deletions under the cursor: the walk goes on from where it was', async (t) => {
  const dp = await filled(t);
  const deleted = new Set<string>();
  let ahead = 0;
  const w = walk(dp, 100, (read) => {
    // What was just read, and entries anywhere in the table (mostly ahead).
    const doomed = [...read.slice(0, 5), ...Array.from({ length: 5 }, () => hex(forwardKey((ahead = (ahead + 7919) % FLOWS))))];
    const fresh = doomed.filter((k) => !deleted.has(k));
    for (const k of fresh) deleted.add(k);
    dp.deleteConntrack(fresh.map((k) => Buffer.from(k, 'hex')));
  });
  t.deepEqual(repeats(w.keys), [], 'nothing read twice: no restart from the first bucket');
  const read = new Set(w.keys);
  const missed: string[] = [];
  for (let i = 0; i < FLOWS; i++) {
    for (const k of [hex(forwardKey(i)), hex(replyKey(i))]) if (!deleted.has(k) && !read.has(k)) missed.push(k);
  }
  t.deepEqual(missed, [], 'every entry never deleted was read');
  t.true(deleted.size > 2000, `${deleted.size} entries deleted during the walk`);
  t.true(w.steps < (2 * FLOWS) / 50, `${w.steps} steps`);
});

test('a cursor past the table, of the wrong size, or a max of 0', async (t) => {
  const dp = await filled(t);
  // A bucket index past the last bucket (a stale or forged page token): nothing, and the walk is over.
  const past = Buffer.from([0, 0, 0, 0x7f]);
  t.deepEqual(dp.raw.mapLookupBatch('conntrack', past, 64), { keys: Buffer.alloc(0), values: Buffer.alloc(0), count: 0, next: null });
  const short = t.throws<NativeError>(() => dp.raw.mapLookupBatch('conntrack', Buffer.alloc(3), 64));
  t.is(short?.code, 'EINVAL');
  t.regex(short?.message ?? '', /cursor is 3 bytes, map wants 4/);
  t.is(t.throws<NativeError>(() => dp.raw.mapLookupBatch('conntrack', null, 0))?.code, 'EINVAL');
  // A max beyond the map's size: as much as the map holds, the whole table in one step.
  const whole = dp.raw.mapLookupBatch('conntrack', null, 0xffff_ffff);
  t.is(whole.count, 2 * FLOWS);
  t.is(whole.next, null);
  // A bucket of several entries, asked for one: ENOSPC from the addon; readConntrack takes it whole.
  let at: ConntrackCursor | null = null;
  for (;;) {
    const b = dp.readConntrack(at, 1);
    if (b.rows.count > 1) {
      t.is(t.throws<NativeError>(() => dp.raw.mapLookupBatch('conntrack', at, 1))?.code, 'ENOSPC');
      break;
    }
    at = b.next;
    if (at === null) return t.fail('no bucket holds two entries');
  }
});

test('connections: pages of 1, 100 and 1000 list every flow once; a flush on the real map', async (t) => {
  const dp = await filled(t);
  for (const limit of [1, 100, 1000]) {
    const seen = new Set<number>();
    let repeated = 0;
    let after: ConnectionCursor | undefined;
    let pages = 0;
    do {
      const page = listConnections(dp, {}, after === undefined ? { limit } : { after, limit }, NOW);
      t.true(page.connections.length <= limit);
      for (const c of page.connections) {
        const i = (Number(c.clientAddress.split('.')[1]) << 16) | (Number(c.clientAddress.split('.')[2]) << 8) | Number(c.clientAddress.split('.')[3]);
        if (seen.has(i)) repeated++;
        seen.add(i);
      }
      after = page.next;
      pages++;
    } while (after !== undefined);
    t.is(repeated, 0, `pages of ${limit}: no flow twice`);
    t.is(seen.size, FLOWS, `pages of ${limit}: every flow (${pages} pages)`);
  }

  const one = listConnections(dp, { clientAddress: '10.0.1.44' }, { limit: 100 }, NOW, { examineMax: 4096 });
  t.true(one.connections.length <= 1 && one.next !== undefined, 'a selective filter stops after examineMax with a cursor');

  const n = await flushConnections(dp, { serviceIds: new Set([3]), backendAddress: '10.1.0.7' });
  const want = Array.from({ length: FLOWS }, (_, i) => i).filter((i) => i % 4 === 2 && i % 50 === 6);
  t.is(n, want.length);
  for (const i of want) {
    t.is(dp.getConntrack(forwardKey(i)), null);
    t.is(dp.getConntrack(replyKey(i)), null);
  }
  t.is(walk(dp, 4096).keys.length, 2 * (FLOWS - want.length), 'nothing else flushed');
});

test('a table smaller than a batch (the smallest --conntrack-size): listed and flushed whole', async (t) => {
  const dp = await filled(t, 300, 1024);
  const page = listConnections(dp, {}, { limit: 1000 }, NOW);
  t.is(page.connections.length, 300);
  t.is(page.next, undefined, 'one page holds it all');
  t.is(await flushConnections(dp, {}), 300);
  t.is(walk(dp, 1).keys.length, 0);
});
