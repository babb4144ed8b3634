// The conntrack collector on a real conntrack map (through the addon):
// entries written with past and future expiry, in the kernel's clock
// (CLOCK_MONOTONIC seconds); a pass deletes the dead flows, both entries
// together, keeps every live entry, and counts by reason. Needs root.
import test from 'ava';
import { CT_FORWARD, CT_REPLY, encodeConntrackKey, encodeConntrackValue, type ConntrackKey, type ConntrackState } from '../../src/dataplane/codec.js';
import { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { ConntrackGc } from '../../src/node/conntrack-gc.js';
import { conntrackEntries } from '../helpers/conntrack.js';

const FLOWS = 6000;
const nowS = (): number => Number(process.hrtime.bigint() / 1_000_000_000n);

test('a pass over a real map: dead flows go whole, live ones stay, orphans go, counted by state', async (t) => {
  const dp = await NativeDataplane.open({ fibRedirect: false, capacity: { conntrack: 65_536, maglevSlots: 262_144 } });
  t.teardown(() => dp.close());
  dp.setHairpinAddress('10.0.0.254');
  const now = nowS();
  const states: ConntrackState[] = ['established', 'new', 'closing'];
  const keys: Buffer[] = [];
  const values: Buffer[] = [];
  const live = new Set<string>();
  const hex = (k: ConntrackKey): string => encodeConntrackKey(k).toString('hex');
  const want = { established: 0, new: 0, closing: 0, orphans: 0 };
  for (let i = 0; i < FLOWS; i++) {
    const client = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const hairpin = i % 7 === 0;
    const backend = hairpin ? client : `10.200.0.${1 + (i % 50)}`;
    const kind = i % 4; // 0: live; 1: dead; 2: dead reply only (orphan); 3: dead forward, live reply
    const state = states[i % 3]!;
    const dead = now - 2 - (i % 100);
    const fk: ConntrackKey = { saddr: client, daddr: '10.96.0.10', sport: 1024 + (i % 50_000), dport: 80, protocol: i % 2 ? 'udp' : 'tcp' };
    const rk: ConntrackKey = { saddr: backend, daddr: hairpin ? '10.0.0.254' : client, sport: 8080, dport: fk.sport, protocol: fk.protocol };
    const common = { backendId: 1 + (i % 50), serviceId: 1, state, created: now - 200, ...(hairpin ? { hairpin: true } : {}) };
    const fe = kind === 0 ? now + 60 : dead;
    const re = kind === 0 || kind === 3 ? now + 60 : dead;
    if (kind !== 2) {
      keys.push(encodeConntrackKey(fk));
      values.push(encodeConntrackValue({ ...common, dir: CT_FORWARD, natAddress: backend, natPort: 8080, expires: fe }));
    }
    keys.push(encodeConntrackKey(rk));
    values.push(encodeConntrackValue({ ...common, dir: CT_REPLY, natAddress: '10.96.0.10', natPort: 80, expires: re }));
    if (kind === 0 || kind === 3) live.add(hex(rk));
    if (kind === 0 || kind === 3) live.add(hex(fk)); // a live reply keeps its flow's dead forward entry
    if (kind === 1) want[state]++;
    if (kind === 2) want.orphans++;
  }
  dp.raw.mapUpdateBatch('conntrack', Buffer.concat(keys), Buffer.concat(values));
  t.is(conntrackEntries(dp).length, keys.length, 'every entry written');

  const gc = new ConntrackGc({ dataplane: dp, batch: 256, tableSize: 65_536 });
  const r = await gc.collect();
  const left = new Set(conntrackEntries(dp).map((e) => hex(e.key)));
  t.deepEqual([...live].filter((k) => !left.has(k)), [], 'no live entry (or live flow) deleted');
  t.deepEqual([...left].filter((k) => !live.has(k)), [], 'every dead entry deleted');
  t.deepEqual(r.expired, { established: want.established, new: want.new, closing: want.closing });
  t.is(r.orphanedReplies, want.orphans);
  t.is(r.raced, FLOWS / 4, 'the dead forward entries of live replies: left');
  t.is(r.deleted, keys.length - live.size);

  // Nothing is dead now: a second pass deletes nothing.
  const again = await gc.collect();
  t.is(again.deleted, 0);
  t.is(gc.stats().passes, 2);
});
