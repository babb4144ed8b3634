// The conntrack collector's decisions, on the fake dataplane: dead flows
// go with both entries, live entries never, a live peer stays, a dead
// reply without its forward entry goes as an orphan; counted by reason.
import test from 'ava';
import { CT_FORWARD, CT_REPLY, encodeConntrackKey, encodeConntrackValue, parseIPv4, type ConntrackKey, type ConntrackState, type Protocol } from '../../src/dataplane/codec.js';
import type { ConntrackEntry } from '../../src/dataplane/dataplane.js';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import { ConntrackGc, DEAD_MARGIN_S, deadAt, peerOf } from '../../src/node/conntrack-gc.js';

const NOW = 5000;

interface FlowSpec {
  client: string;
  port: number;
  backend?: string;
  protocol?: Protocol;
  state?: ConntrackState;
  /** Expiry of the forward and the reply entry. */
  forward?: number | null;
  reply?: number | null;
  hairpin?: boolean;
}

function flow(f: FlowSpec): { forward: ConntrackEntry; reply: ConntrackEntry } {
  const protocol = f.protocol ?? 'tcp';
  const backend = f.backend ?? '10.1.0.1';
  const common = { backendId: 7, serviceId: 3, state: f.state ?? 'established', created: 100 } as const;
  const fk: ConntrackKey = { saddr: f.client, daddr: '10.96.0.10', sport: f.port, dport: 80, protocol };
  const rk: ConntrackKey = { saddr: backend, daddr: f.hairpin ? '10.0.0.254' : f.client, sport: 8080, dport: f.port, protocol };
  return {
    forward: { key: fk, value: { ...common, dir: CT_FORWARD, natAddress: backend, natPort: 8080, expires: f.forward ?? NOW + 60, ...(f.hairpin ? { hairpin: true } : {}) } },
    reply: { key: rk, value: { ...common, dir: CT_REPLY, natAddress: '10.96.0.10', natPort: 80, expires: f.reply ?? NOW + 60, ...(f.hairpin ? { hairpin: true } : {}) } },
  };
}

function add(dp: FakeDataplane, f: FlowSpec): { forward: ConntrackEntry; reply: ConntrackEntry } {
  const e = flow(f);
  if (f.forward !== null) dp.addConntrack(e.forward);
  if (f.reply !== null) dp.addConntrack(e.reply);
  return e;
}

const has = (dp: FakeDataplane, e: ConntrackEntry): boolean => dp.getConntrack(e.key) !== null;

function gc(dp: FakeDataplane, now = NOW): ConntrackGc {
  return new ConntrackGc({ dataplane: dp, nowS: () => now, batch: 7, sleep: async () => {} });
}

const dead = NOW - DEAD_MARGIN_S; // the latest expiry taken for dead at NOW

test('dead: a second past expiry, wrap-safe', (t) => {
  t.true(deadAt(NOW - 1, NOW));
  t.false(deadAt(NOW, NOW), 'the dataplane may still be in the second before');
  t.false(deadAt(NOW + 1, NOW));
  t.true(deadAt(0xffff_fff0, 5), 'before the u32 clock wrapped');
  t.false(deadAt(10, 0xffff_fff0), 'after it wraps');
});

test('peerOf is ct_peer(): forward to reply and back, hairpin through the node\'s address', (t) => {
  for (const hairpin of [false, true]) {
    const e = flow({ client: '192.168.1.5', port: 40000, hairpin });
    const fwd = peerOf(encodeConntrackKey(e.forward.key), encodeConntrackValue(e.forward.value), parseIPv4('10.0.0.254'));
    t.is(fwd.key.toString('hex'), encodeConntrackKey(e.reply.key).toString('hex'), `forward → reply (hairpin ${hairpin})`);
    // A hairpinned client is its own backend: the reply's source is the client.
    const rev = hairpin ? flow({ client: '10.1.0.1', port: 40000, hairpin }) : e;
    const rep = peerOf(encodeConntrackKey(rev.reply.key), encodeConntrackValue(rev.reply.value), 0);
    t.is(rep.key.toString('hex'), encodeConntrackKey(rev.forward.key).toString('hex'), `reply → forward (hairpin ${hairpin})`);
  }
});

test('a dead flow goes with both entries; live flows are never touched', async (t) => {
  const dp = new FakeDataplane();
  const gone = [
    add(dp, { client: '192.168.1.1', port: 1000, forward: dead, reply: dead, state: 'established' }),
    add(dp, { client: '192.168.1.2', port: 1000, forward: dead - 100, reply: dead - 100, state: 'new' }),
    add(dp, { client: '192.168.1.3', port: 1000, forward: dead, reply: dead, state: 'closing' }),
    add(dp, { client: '192.168.1.4', port: 53, protocol: 'udp', forward: 10, reply: 10 }),
  ];
  const live = [
    add(dp, { client: '192.168.2.1', port: 1000, forward: NOW, reply: NOW }), // dead only for a clock a second ahead
    add(dp, { client: '192.168.2.2', port: 1000, forward: NOW + 21_600, reply: NOW + 21_600 }),
  ];
  const r = await gc(dp).collect();
  for (const e of gone) t.false(has(dp, e.forward) || has(dp, e.reply), `${e.forward.key.saddr}: both deleted`);
  for (const e of live) t.true(has(dp, e.forward) && has(dp, e.reply), `${e.forward.key.saddr}: kept`);
  t.deepEqual(r.expired, { established: 2, new: 1, closing: 1 }, 'one per flow, by state');
  t.is(r.orphanedReplies, 0);
  t.is(r.deleted, 8);
  // A peer deleted before the walk came to its bucket is not read.
  t.true(r.entries >= 8 && r.entries <= 12, `${r.entries} read`);
});

test('a live peer keeps its flow; a dead reply without its forward entry goes as an orphan', async (t) => {
  const dp = new FakeDataplane();
  // Both entries of a flow move together: one alive means a packet came since the batch was read.
  const fwdDead = add(dp, { client: '192.168.1.1', port: 1000, forward: dead, reply: NOW + 30 });
  const replyDead = add(dp, { client: '192.168.1.2', port: 1000, forward: NOW + 30, reply: dead });
  const orphan = add(dp, { client: '192.168.1.3', port: 1000, forward: null, reply: dead });
  const liveOrphan = add(dp, { client: '192.168.1.4', port: 1000, forward: null, reply: NOW + 30 });
  const lone = add(dp, { client: '192.168.1.5', port: 1000, forward: dead, reply: null, state: 'closing' });
  const c = gc(dp);
  const r = await c.collect();
  t.true(has(dp, fwdDead.forward) && has(dp, fwdDead.reply), 'a live reply entry keeps its flow');
  t.true(has(dp, replyDead.forward) && has(dp, replyDead.reply), 'a live forward entry keeps its flow');
  t.false(has(dp, orphan.reply), 'a dead orphan goes');
  t.true(has(dp, liveOrphan.reply), 'a live orphan stays');
  t.false(has(dp, lone.forward), 'a dead forward entry without its reply goes');
  t.deepEqual(r.expired, { established: 0, new: 0, closing: 1 });
  t.is(r.orphanedReplies, 1);
  t.is(r.raced, 2);
  const s = c.stats();
  t.is(s.passes, 1);
  t.is(s.entriesDeleted, 2);
  t.is(s.orphanedReplies, 1);
  t.deepEqual(s.lastPass && { entries: s.lastPass.entries, deleted: s.lastPass.deleted }, { entries: 7, deleted: 2 });
});

test('another flow\'s entry under the peer key is judged by itself: left while alive', async (t) => {
  const dp = new FakeDataplane();
  const mine = add(dp, { client: '192.168.1.1', port: 1000, forward: dead, reply: null });
  // The reply tuple now belongs to a flow to another VIP (same backend and client port).
  const other = flow({ client: '192.168.1.1', port: 1000, forward: NOW + 60, reply: NOW + 60 });
  dp.addConntrack({ key: other.reply.key, value: { ...other.reply.value, natAddress: '10.96.0.99', backendId: 8 } });
  await gc(dp).collect();
  t.false(has(dp, mine.forward));
  t.true(has(dp, other.reply), 'the other flow\'s live entry is kept');
});

test('an entry refreshed after its batch was read is left', async (t) => {
  const dp = new FakeDataplane();
  const e = add(dp, { client: '192.168.1.1', port: 1000, forward: dead, reply: dead });
  // A packet between the batch and the decision: the dataplane moved both expiries.
  const read = dp.readConntrack.bind(dp);
  dp.readConntrack = (cursor, max) => {
    const b = read(cursor, max);
    dp.addConntrack({ ...e.forward, value: { ...e.forward.value, expires: NOW + 60 } });
    dp.addConntrack({ ...e.reply, value: { ...e.reply.value, expires: NOW + 60 } });
    return b;
  };
  const r = await gc(dp).collect();
  t.true(has(dp, e.forward) && has(dp, e.reply));
  t.is(r.raced, 2);
  t.is(r.deleted, 0);
});

test('a table larger than a batch is read in full; totals add up over passes', async (t) => {
  const dp = new FakeDataplane();
  for (let i = 0; i < 500; i++) add(dp, { client: `192.168.${i >> 8}.${i & 255}`, port: 2000, forward: i % 2 ? dead : NOW + 60, reply: i % 2 ? dead : NOW + 60 });
  const c = new ConntrackGc({ dataplane: dp, nowS: () => NOW, batch: 64, sleep: async () => {} });
  const r = await c.collect();
  t.true(r.entries >= 750 && r.entries <= 1000, `${r.entries} read`);
  t.is(r.deleted, 500);
  t.is(dp.conntrack.size, 500);
  await c.collect();
  t.is(c.stats().passes, 2);
  t.is(c.stats().expired.established, 250);
  t.is(c.stats().lastPass?.entries, 500);
});

test('paced: sleeps between batches so a full table takes most of the interval', async (t) => {
  const dp = new FakeDataplane();
  for (let i = 0; i < 100; i++) add(dp, { client: `192.168.0.${i}`, port: 2000 });
  const slept: Array<[number, number]> = [];
  let read = 0;
  const readConntrack = dp.readConntrack.bind(dp);
  dp.readConntrack = (cursor, max) => {
    const b = readConntrack(cursor, max);
    read += b.rows.count;
    return b;
  };
  // A clock the test keeps: it moves only by the pauses, and by 1 ms a batch.
  let clock = 0;
  const c = new ConntrackGc({
    dataplane: dp, nowS: () => NOW, batch: 20, intervalMs: 1000, tableSize: 200,
    clockMs: () => clock,
    sleep: async (ms) => { slept.push([read, ms]); clock += Math.max(ms, 0) + 1; },
  });
  await c.collect({ paced: true });
  // 200 entries in 800 ms: 0.25 entries a ms, so n entries read are due at n × 4 ms; each pause makes up the rest.
  t.true(slept.length >= 3, `${slept.length} pauses`);
  let at = 0;
  for (const [n, ms] of slept) {
    t.is(ms, n * 4 - at, `after ${n} entries at ${at} ms, a pause to ${n * 4} ms`);
    at += Math.max(ms, 0) + 1;
  }
});

test('start and stop: passes run until stopped', async (t) => {
  const dp = new FakeDataplane();
  add(dp, { client: '192.168.1.1', port: 1000, forward: dead, reply: dead });
  const c = new ConntrackGc({ dataplane: dp, nowS: () => NOW, intervalMs: 20 });
  c.start();
  // Passes come every 20 ms; however slow the machine, wait for two.
  while (c.stats().passes < 2) await new Promise((r) => setTimeout(r, 10));
  await c.stop();
  t.true(c.stats().passes >= 2, `${c.stats().passes} passes`);
  t.is(dp.conntrack.size, 0);
  const passes = c.stats().passes;
  await new Promise((r) => setTimeout(r, 50));
  t.is(c.stats().passes, passes, 'no pass after stop');
});

test('stop does not wait out a paced pass\'s sleep between batches', async (t) => {
  const dp = new FakeDataplane();
  for (let i = 0; i < 100; i++) add(dp, { client: `192.168.2.${i}`, port: 3000 });
  let sleeping = 0;
  // A sleep that never ends, as an unref'd timer never does once nothing
  // else keeps the process alive: a stop waiting for it would never return.
  const c = new ConntrackGc({ dataplane: dp, nowS: () => NOW, batch: 10, intervalMs: 3_600_000, tableSize: 100, sleep: () => { sleeping++; return new Promise(() => {}); } });
  c.start();
  while (sleeping === 0) await new Promise((r) => setImmediate(r));
  await c.stop();
  t.is(sleeping, 1, 'stopped in its first pause between batches');
  t.is(c.stats().passes, 1, 'the pass ends at the stop');
});

test('a whole pass counts live flows by backend id (forward entries only); dead ones are not counted', async (t) => {
  const dp = new FakeDataplane();
  const c = gc(dp);
  t.is(c.activeByBackend(), undefined, 'nothing before the first pass');
  for (let i = 0; i < 5; i++) add(dp, { client: '192.168.1.1', port: 1000 + i });
  add(dp, { client: '192.168.1.2', port: 2000, forward: dead, reply: dead });
  add(dp, { client: '192.168.1.3', port: 3000, forward: null });
  await c.collect();
  t.deepEqual([...c.activeByBackend()!], [[7, 5]], 'five live flows; the dead one and the reply-only one do not count');
});

/** An IPv6 flow: client and backend IPv6, VIP fd96::10; hairpin through fd00::fe. */
function flow6(f: FlowSpec): { forward: ConntrackEntry; reply: ConntrackEntry } {
  const protocol = f.protocol ?? 'tcp';
  const backend = f.backend ?? 'fd77:1::2';
  const common = { backendId: 9, serviceId: 4, state: f.state ?? 'established', created: 100 } as const;
  const fk: ConntrackKey = { saddr: f.client, daddr: 'fd96::10', sport: f.port, dport: 80, protocol };
  const rk: ConntrackKey = { saddr: backend, daddr: f.hairpin ? 'fd00::fe' : f.client, sport: 8080, dport: f.port, protocol };
  return {
    forward: { key: fk, value: { ...common, dir: CT_FORWARD, natAddress: backend, natPort: 8080, expires: f.forward ?? NOW + 60, ...(f.hairpin ? { hairpin: true } : {}) } },
    reply: { key: rk, value: { ...common, dir: CT_REPLY, natAddress: 'fd96::10', natPort: 80, expires: f.reply ?? NOW + 60, ...(f.hairpin ? { hairpin: true } : {}) } },
  };
}

test('peerOf on IPv6 entries: forward to reply and back, hairpin through node_config6\'s address', (t) => {
  for (const hairpin of [false, true]) {
    const e = flow6({ client: '2001:db8::5', port: 40000, hairpin });
    const fwd = peerOf(encodeConntrackKey(e.forward.key), encodeConntrackValue(e.forward.value), Buffer.from('fd0000000000000000000000000000fe', 'hex'));
    t.is(fwd.key.toString('hex'), encodeConntrackKey(e.reply.key).toString('hex'), `forward → reply (hairpin ${hairpin})`);
    const rev = hairpin ? flow6({ client: 'fd77:1::2', port: 40000, hairpin }) : e;
    const rep = peerOf(encodeConntrackKey(rev.reply.key), encodeConntrackValue(rev.reply.value), Buffer.alloc(16));
    t.is(rep.key.toString('hex'), encodeConntrackKey(rev.forward.key).toString('hex'), `reply → forward (hairpin ${hairpin})`);
  }
});

test('a pass covers both tables: dead IPv6 flows go with both entries, live ones and a live peer stay', async (t) => {
  const dp = new FakeDataplane();
  dp.setHairpinAddress('fd00::fe');
  const v4 = add(dp, { client: '192.168.1.1', port: 1000, forward: dead, reply: dead });
  const gone6 = [
    flow6({ client: '2001:db8::1', port: 1000, forward: dead, reply: dead, state: 'closing' }),
    flow6({ client: 'fd77:1::2', port: 1001, forward: dead, reply: dead, hairpin: true }),
  ];
  const live6 = flow6({ client: '2001:db8::3', port: 1002 });
  const raced6 = flow6({ client: '2001:db8::4', port: 1003, forward: dead });
  const orphan6 = flow6({ client: '2001:db8::5', port: 1004, reply: dead });
  for (const e of [...gone6, live6, raced6]) {
    dp.addConntrack(e.forward);
    dp.addConntrack(e.reply);
  }
  dp.addConntrack(orphan6.reply);
  // One batch a table: a peer deleted ahead of the walk is still counted as read.
  const r = await new ConntrackGc({ dataplane: dp, nowS: () => NOW, batch: 100, sleep: async () => {} }).collect();
  t.is(r.entries, 2 + 2 * 4 + 1, 'every entry of both tables read');
  for (const e of [v4, ...gone6]) t.false(has(dp, e.forward) || has(dp, e.reply), e.forward.key.saddr);
  t.true(has(dp, live6.forward) && has(dp, live6.reply));
  t.true(has(dp, raced6.forward) && has(dp, raced6.reply), 'a dead entry whose peer is alive stays');
  t.false(has(dp, orphan6.reply));
  t.is(r.raced, 1);
  t.is(r.orphanedReplies, 1);
  t.deepEqual(r.expired, { established: 2, new: 0, closing: 1 });
  t.is(r.deleted, 2 + 4 + 1);
  t.is(gc(dp).activeByBackend(), undefined);
  const g = gc(dp);
  await g.collect();
  t.deepEqual([...g.activeByBackend()!.entries()], [[9, 1]], 'a live IPv6 forward entry counts for its backend (the raced one is dead itself)');
});
