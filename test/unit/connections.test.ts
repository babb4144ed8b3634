/**
 * Listing and flushing connections by walking the conntrack table a batch
 * of hash buckets at a time (src/inspect/connections.ts), on the fake
 * dataplane with few buckets, so that buckets hold many entries and pages
 * end inside them.
 */
import test from 'ava';
import { CT_FORWARD, CT_REPLY, encodeConntrackKey } from '../../src/dataplane/codec.js';
import type { ConntrackEntry } from '../../src/dataplane/dataplane.js';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import {
  flushConnections,
  formatConnectionCursor,
  listConnections,
  parseConnectionCursor,
  type ConnectionCursor,
  type ConnectionInfo,
  type ConnectionMatch,
  type ListOptions,
} from '../../src/inspect/connections.js';

const NOW = 10_000_000_000n;

/** Flow i: client 10.0.(i/250).(i%250+1):(1024+i) to VIP 10.96.0.(10+i%3):80, backend 10.1.0.(1+i%5), service 1+i%3. */
function flow(i: number): [ConntrackEntry, ConntrackEntry] {
  const client = `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`;
  const vip = `10.96.0.${10 + (i % 3)}`;
  const backend = `10.1.0.${1 + (i % 5)}`;
  const value = { backendId: 1 + (i % 5), serviceId: 1 + (i % 3), state: 'established' as const, created: 1, expires: 12 };
  return [
    { key: { saddr: client, daddr: vip, sport: 1024 + i, dport: 80, protocol: 'tcp' }, value: { ...value, dir: CT_FORWARD, natAddress: backend, natPort: 8080 } },
    { key: { saddr: backend, daddr: client, sport: 8080, dport: 1024 + i, protocol: 'tcp' }, value: { ...value, dir: CT_REPLY, natAddress: vip, natPort: 80 } },
  ];
}

function fake(flows: number, buckets: number): FakeDataplane {
  const dp = new FakeDataplane();
  dp.conntrackBuckets = buckets;
  for (let i = 0; i < flows; i++) for (const e of flow(i)) dp.addConntrack(e);
  return dp;
}

/** The flow number of a connection (its client port). */
const flowOf = (c: ConnectionInfo): number => c.clientPort - 1024;

/**
 * Every page of a listing, each cursor through its text form as a page
 * token carries it; `between` runs after each page.
 */
function pages(
  dp: FakeDataplane,
  m: ConnectionMatch,
  limit: number,
  opts: ListOptions = {},
  between: (page: ConnectionInfo[], next: ConnectionCursor | undefined) => void = () => {},
): ConnectionInfo[][] {
  const out: ConnectionInfo[][] = [];
  let after: ConnectionCursor | undefined;
  do {
    const page = listConnections(dp, m, after === undefined ? { limit } : { after, limit }, NOW, opts);
    out.push(page.connections);
    between(page.connections, page.next);
    after = page.next === undefined ? undefined : parseConnectionCursor(formatConnectionCursor(page.next));
    if (page.next !== undefined && after === undefined) throw new Error(`a cursor did not read back: ${formatConnectionCursor(page.next)}`);
    if (out.length > 100_000) throw new Error('the listing does not end');
  } while (after !== undefined);
  return out;
}

/** The flow numbers seen, failing on a repeat. */
function seenOnce(t: { fail(m: string): void }, ps: ConnectionInfo[][]): Set<number> {
  const seen = new Set<number>();
  for (const c of ps.flat()) {
    if (seen.has(flowOf(c))) t.fail(`flow ${flowOf(c)} listed twice`);
    seen.add(flowOf(c));
  }
  return seen;
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

test('the fake reads whole buckets, and a bucket larger than max alone', (t) => {
  const dp = fake(300, 8); // 600 entries, about 75 a bucket
  const first = dp.readConntrack(null, 1);
  const size = first.rows.count;
  t.true(size > 1, 'the first bucket alone, though larger than max');
  t.deepEqual(dp.readConntrack(null, size), first, 'exactly the first bucket when it fits');
  t.deepEqual(dp.readConntrack(null, size + 1), first, 'the second bucket does not fit in what is left');
  let at = null as Buffer | null;
  const keys = new Set<string>();
  do {
    const b = dp.readConntrack(at, 160);
    t.true(b.rows.count <= 160, 'whole buckets up to max');
    for (let i = 0; i < b.rows.count; i++) keys.add(b.rows.keyBytes(i).toString('hex'));
    at = b.next;
  } while (at !== null);
  t.is(keys.size, 600);
  const past = Buffer.alloc(4);
  past.writeUInt32LE(8, 0);
  t.is(dp.readConntrack(past, 10).rows.count, 0, 'a cursor past the last bucket reads nothing');
  t.is(dp.readConntrack(past, 10).next, null);
});

for (const limit of [1, 2, 7, 100, 1000]) {
  test(`pages of ${limit}: every connection exactly once, no page larger than asked`, (t) => {
    const dp = fake(1000, 64); // about 31 entries a bucket
    const ps = pages(dp, {}, limit);
    t.true(ps.every((p) => p.length <= limit));
    t.deepEqual([...seenOnce(t, ps)].sort((a, b) => a - b), range(1000));
    t.like(ps.flat().find((c) => flowOf(c) === 7), {
      clientAddress: '10.0.0.8', clientPort: 1031, address: '10.96.0.11', port: 80, protocol: 'tcp',
      backendAddress: '10.1.0.3', backendPort: 8080, serviceId: 2, state: 'established', ageMs: 9000, expiresInMs: 2000,
    });
    if (limit < 1000) t.true(ps.filter((p) => p.length === limit).length >= ps.length / 2, 'most pages are full');
  });
}

test('filters apply while walking; a bounded walk gives short (even empty) pages with a cursor', (t) => {
  const dp = fake(1000, 64);
  const cases: Array<[string, ConnectionMatch, (i: number) => boolean]> = [
    ['service', { serviceIds: new Set([2]) }, (i) => i % 3 === 1],
    ['backend', { backendAddress: '10.1.0.4' }, (i) => i % 5 === 3],
    ['client', { clientAddress: '10.0.1.17' }, (i) => i === 266],
    ['service and backend', { serviceIds: new Set([1, 3]), backendAddress: '10.1.0.1' }, (i) => i % 3 !== 1 && i % 5 === 0],
    ['nothing', { clientAddress: '192.168.0.1' }, () => false],
  ];
  for (const [name, m, want] of cases) {
    for (const [limit, examineMax] of [[3, 40], [50, 500], [100, undefined]] as const) {
      const ps = pages(dp, m, limit, examineMax === undefined ? {} : { examineMax });
      t.deepEqual([...seenOnce(t, ps)].sort((a, b) => a - b), range(1000).filter(want), `${name}, pages of ${limit}`);
      if (examineMax !== undefined && name === 'client') t.true(ps.length > 1 && ps.slice(0, -1).some((p) => p.length === 0), 'a selective filter gives empty pages with a cursor');
    }
  }
});

test('entries deleted between pages: the walk goes on, nothing repeats, the rest is listed', (t) => {
  for (const limit of [1, 5, 40]) {
    const dp = fake(1000, 32);
    const deleted = new Set<number>();
    let step = 0;
    const ps = pages(dp, {}, limit, {}, (page, next) => {
      // Delete flows just shown, flows still pending in the cursor, and
      // flows far ahead, every few pages.
      if (step++ % 3 !== 0) return;
      const victims = [...page.slice(0, 1).map(flowOf), ...(next?.pending ?? []).slice(0, 2).map((k) => k.sport - 1024), (step * 37) % 1000];
      for (const i of victims) {
        if (deleted.has(i)) continue;
        deleted.add(i);
        for (const e of flow(i)) dp.conntrack.delete(encodeConntrackKey(e.key).toString('hex'));
      }
    });
    const seen = seenOnce(t, ps);
    const kept = range(1000).filter((i) => !deleted.has(i));
    t.deepEqual(kept.filter((i) => !seen.has(i)), [], `pages of ${limit}: every flow never deleted is listed`);
    t.true(deleted.size > 20, `pages of ${limit}: ${deleted.size} flows deleted during the walk`);
  }
});

test('entries added between pages may or may not be listed, and never twice', (t) => {
  const dp = fake(500, 32);
  let added = 500;
  const ps = pages(dp, {}, 10, {}, () => {
    for (const e of flow(added++)) dp.addConntrack(e);
  });
  const seen = seenOnce(t, ps);
  t.deepEqual(range(500).filter((i) => !seen.has(i)), []);
});

test('the table emptied under a cursor ends the listing', (t) => {
  const dp = fake(200, 16);
  const first = listConnections(dp, {}, { limit: 10 }, NOW);
  dp.conntrack.clear();
  const rest = listConnections(dp, {}, { after: first.next!, limit: 10 }, NOW);
  t.deepEqual(rest, { connections: [] });
});

test('cursors: text form, and what is refused', (t) => {
  const c: ConnectionCursor = { table: Buffer.from([0, 1, 0, 0]), pending: [flow(3)[0].key, flow(4)[0].key] };
  const text = formatConnectionCursor(c);
  t.regex(text, /^1\.AAEAAA\.[A-Za-z0-9_-]+$/);
  t.deepEqual(parseConnectionCursor(text), c);
  t.deepEqual(parseConnectionCursor('1..' + text.split('.')[2]), { table: 'end', pending: c.pending });
  const key = encodeConntrackKey(flow(3)[0].key);
  const icmp = Buffer.from(key);
  icmp[12] = 1; // ICMP: no such conntrack key
  const padded = Buffer.from(key);
  padded[13] = 1;
  for (const bad of [
    '', '1', '1.AAEAAA', '2.AAEAAA.', '1.AAEAAA..', '01.AAEAAA.', '1..', // version, shape, nothing to resume
    '1.AAEA.', '1.AAEAAAA.', '1.AA=EAAA.', '1.AAE+AA.', '1.AAEAAB.', // table cursor: size, alphabet, non-canonical
    `1.AAEAAA.${key.subarray(0, 15).toString('base64url')}`, // a key cut short
    `1.AAEAAA.${icmp.toString('base64url')}`, `1.AAEAAA.${padded.toString('base64url')}`, // keys that are no conntrack key
    `1.AAEAAA.${Buffer.concat(Array(257).fill(key)).toString('base64url')}`, // more keys than any bucket holds
  ]) {
    t.is(parseConnectionCursor(bad), undefined, `refused: ${bad.slice(0, 40)}`);
  }
});

test('flush walks the table: both entries of each matching flow, and the count of flows', async (t) => {
  const dp = fake(10_000, 1024); // 20,000 entries: several batches
  let pauses = 0;
  const n = await flushConnections(dp, { serviceIds: new Set([2]), backendAddress: '10.1.0.4' }, { pause: async () => { pauses++; } });
  const want = range(10_000).filter((i) => i % 3 === 1 && i % 5 === 3);
  t.is(n, want.length);
  t.is(dp.conntrack.size, 20_000 - 2 * want.length, 'forward and reply entries gone');
  for (const i of want) for (const e of flow(i)) t.false(dp.conntrack.has(encodeConntrackKey(e.key).toString('hex')));
  t.true(pauses >= 4, `it let other work run between batches (${pauses} pauses)`);
  t.is(await flushConnections(dp, {}, { pause: async () => {} }), 10_000 - want.length);
  t.is(dp.conntrack.size, 0);
});

test('an address filter that does not parse is refused, never dropped (a flush would take everything)', async (t) => {
  const dp = fake(10, 4);
  t.throws(() => listConnections(dp, { clientAddress: '10.0.0' }, { limit: 10 }, NOW), { instanceOf: RangeError });
  await t.throwsAsync(flushConnections(dp, { backendAddress: 'nope' }), { instanceOf: RangeError });
  t.is(dp.conntrack.size, 20, 'nothing flushed');
});

test('a cursor that would not read back is never made', (t) => {
  const dp = fake(300, 1); // one bucket: every match after the first is pending
  const first = listConnections(dp, {}, { limit: 1 }, NOW);
  t.is(first.next?.pending.length, 299);
  t.throws(() => formatConnectionCursor(first.next!), { instanceOf: RangeError, message: /299 pending keys, at most 256/ });
  const fits = listConnections(dp, {}, { limit: 100 }, NOW);
  t.is(fits.next?.pending.length, 200);
  t.deepEqual(parseConnectionCursor(formatConnectionCursor(fits.next!)), fits.next);
});

test('a listing shows live connections only, and filters by state', (t) => {
  const dp = new FakeDataplane();
  const nowS = Number(NOW / 1_000_000_000n);
  const states = ['established', 'new', 'closing'] as const;
  for (let i = 0; i < 30; i++) {
    const [fwd, rep] = flow(i);
    // Every third flow dead: expired this very second, or long ago.
    const expires = i % 3 === 0 ? nowS - (i % 2) : nowS + 1 + i;
    const state = states[i % 3 === 0 ? 0 : Math.floor(i / 3) % 3]!;
    for (const e of [fwd, rep]) dp.addConntrack({ key: e.key, value: { ...e.value, state, expires } });
  }
  const all = pages(dp, {}, 100).flat();
  t.deepEqual(all.map(flowOf).sort((a, b) => a - b), range(30).filter((i) => i % 3 !== 0), 'dead entries are not connections');
  t.true(all.every((c) => c.expiresInMs >= 1000));
  for (const state of states) {
    const got = pages(dp, { state }, 100).flat();
    t.deepEqual(got.map(flowOf).sort((a, b) => a - b), range(30).filter((i) => i % 3 !== 0 && states[Math.floor(i / 3) % 3] === state), state);
    t.true(got.every((c) => c.state === state));
  }
});

/** Flow i over IPv6: client 2001:db8:c::(i+1), VIP fd96::(10+i%3), backend fd77:1::(1+i%5), service 4+i%3. */
function flow6(i: number): [ConntrackEntry, ConntrackEntry] {
  const client = `2001:db8:c::${(i + 1).toString(16)}`;
  const vip = `fd96::${(16 + (i % 3)).toString(16)}`;
  const backend = `fd77:1::${1 + (i % 5)}`;
  const value = { backendId: 100 + (i % 5), serviceId: 4 + (i % 3), state: 'established' as const, created: 1, expires: 12 };
  return [
    { key: { saddr: client, daddr: vip, sport: 1024 + i, dport: 80, protocol: 'tcp' }, value: { ...value, dir: CT_FORWARD, natAddress: backend, natPort: 8080 } },
    { key: { saddr: backend, daddr: client, sport: 8080, dport: 1024 + i, protocol: 'tcp' }, value: { ...value, dir: CT_REPLY, natAddress: vip, natPort: 80 } },
  ];
}

function dualFake(v4: number, v6: number, buckets: number): FakeDataplane {
  const dp = fake(v4, buckets);
  for (let i = 0; i < v6; i++) for (const e of flow6(i)) dp.addConntrack(e);
  return dp;
}

test('both tables: a listing walks IPv4\'s, then IPv6\'s, each flow once, across pages that end in either', (t) => {
  const dp = dualFake(300, 200, 7);
  for (const limit of [1, 13, 120, 1000]) {
    const ps = pages(dp, {}, limit);
    const all = ps.flat();
    t.is(all.length, 500, `limit ${limit}`);
    const v6 = all.filter((c) => c.clientAddress.includes(':'));
    t.is(v6.length, 200);
    t.is(new Set(v6.map((c) => c.clientAddress)).size, 200, 'no IPv6 flow twice');
    t.is(new Set(all.filter((c) => !c.clientAddress.includes(':')).map(flowOf)).size, 300, 'no IPv4 flow twice');
    // IPv4 first: once an IPv6 flow is listed, no IPv4 one follows.
    const firstV6 = all.findIndex((c) => c.clientAddress.includes(':'));
    t.true(all.slice(firstV6).every((c) => c.clientAddress.includes(':')));
  }
  const one = flow6(7)[0];
  const c = listConnections(dp, { clientAddress: '2001:db8:c:0::8' }, { limit: 10 }, NOW).connections;
  t.deepEqual(c.map((x) => [x.clientAddress, x.address, x.backendAddress]), [[one.key.saddr, one.key.daddr, one.value.natAddress]],
    'an address filter of IPv6 reads only IPv6\'s table, whatever the spelling; addresses come back in RFC 5952 form');
});

test('both tables: a family filter, a filter whose addresses disagree, and a cursor into IPv6\'s table', (t) => {
  const dp = dualFake(50, 40, 5);
  t.is(pages(dp, { family: 6 }, 7).flat().length, 40);
  t.is(pages(dp, { family: 4 }, 7).flat().length, 50);
  t.is(pages(dp, { backendAddress: 'fd77:1::3' }, 7).flat().length, 8);
  t.deepEqual(listConnections(dp, { family: 4, backendAddress: 'fd77:1::3' }, { limit: 10 }, NOW).connections, [], 'IPv4 flows have no IPv6 backend');
  const start: ConnectionCursor = { family: 6, table: 'start', pending: [] };
  t.is(formatConnectionCursor(start), '6.~.');
  t.deepEqual(parseConnectionCursor('6.~.'), start);
  t.is(parseConnectionCursor('1.~.'), undefined, 'IPv4\'s table has no start cursor');
  const pending: ConnectionCursor = { family: 6, table: Buffer.from([0, 1, 0, 0]), pending: [flow6(3)[0].key] };
  t.deepEqual(parseConnectionCursor(formatConnectionCursor(pending)), pending);
  t.is(parseConnectionCursor('6..' + encodeConntrackKey(flow(3)[0].key).toString('base64url')), undefined, 'an IPv4 key in an IPv6 cursor');
  // The first page of IPv6's table, then the rest: every IPv6 flow once.
  t.is(pages(dp, {}, 1000).flat().length, 90);
});

test('both tables: a flush takes matching flows of either family, both entries each', async (t) => {
  const dp = dualFake(30, 20, 5);
  t.is(await flushConnections(dp, { serviceIds: new Set([4]) }, { pause: async () => {} }), 7, 'IPv6 flows of service 4: i % 3 == 0');
  t.is(dp.readConntrack(null, 1000, 6).rows.count, 2 * 13);
  t.is(await flushConnections(dp, { clientAddress: '2001:db8:c::2' }, { pause: async () => {} }), 1);
  t.is(await flushConnections(dp, {}, { pause: async () => {} }), 30 + 12);
  t.is(dp.readConntrack(null, 1000, 4).rows.count + dp.readConntrack(null, 1000, 6).rows.count, 0);
  await t.throwsAsync(flushConnections(dp, { backendAddress: 'fd77::g' }), { instanceOf: RangeError });
});
