/**
 * The packet fuzzer's checker can fail: each property, shown a deliberately
 * wrong output, reports it (and a right output passes). No dataplane: the
 * observations are made up here, from frames built from scratch.
 */
import test from 'ava';
import { buildFrame, readFrame, type Ext6Spec, type FrameSpec } from '../helpers/fuzz-frames.js';
import { checkPacket, ctKey, fragKey, fragKey6, fragRewrite, icmp6Translation, type CtTable, type FuzzObservation, type FuzzWorld, type LbDelta, type Property, type WorldConntrack, type WorldFrag } from '../helpers/fuzz-check.js';
import { fragmentPacket, icmp6Error, icmpError, portUnreachable6For, rst6For, rstFor } from '../helpers/packet.js';
import type { GlobalCounter } from '../../src/dataplane/codec.js';

const NOW = 5000;
const TIMEOUTS = { tcpSyn: 60, tcpEstablished: 21600, tcpClosing: 10, udp: 75 };

const world: FuzzWorld = {
  services: [{
    id: 3, vip: '10.96.0.10', port: 80, proto: 6, affinity: false, drop: false,
    backends: [{ id: 7, address: '10.1.0.11', port: 8080, draining: false }],
  }, {
    id: 4, vip: '10.96.0.10', port: 53, proto: 17, affinity: false, drop: false,
    backends: [{ id: 8, address: '10.1.0.12', port: 5353, draining: false }],
  }],
  hairpin: null,
  conntrack: new Map(),
  now: NOW,
  timeouts: TIMEOUTS,
  frag4: new Map(),
  frag6: new Map(),
};

/** The entries a new flow of `input` (client 192.168.50.7) placed on backend (id, addr:port) of service `svc` leaves. */
function placed(input: Buffer, be: { id: number; address: string; port: number }, svc: number, state: WorldConntrack['state'] = 'new'): Map<string, WorldConntrack> {
  const r = readFrame(input);
  const timeout = r.proto === 17 ? TIMEOUTS.udp : state === 'new' ? TIMEOUTS.tcpSyn : state === 'closing' ? TIMEOUTS.tcpClosing : TIMEOUTS.tcpEstablished;
  const fwd: WorldConntrack = { natAddress: be.address, natPort: be.port, reply: false, hairpin: false, backendId: be.id, serviceId: svc, state, created: NOW, expires: NOW + timeout };
  return new Map([
    [ctKey(r.saddr!, r.sport!, r.daddr!, r.dport!, r.proto!), fwd],
    [ctKey(be.address, be.port, r.saddr!, r.sport!, r.proto!), { ...fwd, reply: true, natAddress: r.daddr!, natPort: r.dport! }],
  ]);
}

/** The table a right dataplane leaves for one of the fixtures' frames, before any entry: a new flow's two entries when it was rewritten to a service. */
function defaultTable(input: Buffer, output: Buffer): CtTable {
  const r = readFrame(input);
  if (output.equals(input) || r.ipInvalid !== undefined || r.l4Invalid !== undefined) return new Map();
  if (r.daddr === '10.96.0.10' && r.dport === 80) return placed(input, { id: 7, address: '10.1.0.11', port: 8080 }, 3, r.proto === 6 && r.tcpFlags === 2 ? 'new' : 'established');
  if (r.daddr === '10.96.0.10' && r.dport === 53) return placed(input, { id: 8, address: '10.1.0.12', port: 5353 }, 4, 'established');
  return new Map();
}

const mac = { dstMac: [2, 0, 0, 0, 0, 2], srcMac: [2, 0, 0, 0, 0, 1] };
const ip = (saddr: string, daddr: string): FrameSpec['ip'] => ({ saddr, daddr, ttl: 64, id: 1, df: false, mf: false, fragOffset: 0, options: [] });
const syn = (daddr: string, dport: number, extra: Partial<FrameSpec> = {}): FrameSpec => ({
  ...mac, ip: ip('192.168.50.7', daddr), l4: { kind: 'tcp', sport: 40000, dport, seq: 1, flags: 2, options: [], payload: [1, 2, 3] }, mutations: [], ...extra,
});
const dgram = (daddr: string, dport: number, zeroChecksum: boolean): FrameSpec => ({
  ...mac, ip: ip('192.168.50.7', daddr), l4: { kind: 'udp', sport: 40000, dport, zeroChecksum, payload: [9, 9, 9] }, mutations: [],
});

const fwd = (len: number): LbDelta => ({ packets: 1, bytes: len, newConnections: 1, replyPackets: 0 });

function obs(input: Buffer, output: Buffer, o: Partial<FuzzObservation> = {}): FuzzObservation {
  return {
    prog: 'xdp', input, output, verdict: 2,
    global: { rx_packets: 1, forwarded_stack: 1 },
    svc: new Map([[3, fwd(input.length - 14)]]),
    backend: new Map([[7, fwd(input.length - 14)]]),
    conntrack: defaultTable(input, output),
    frag4: new Map(),
    frag6: new Map(),
    ...o,
  };
}

/** The properties a result broke. */
const broke = (w: FuzzWorld, ob: FuzzObservation): Property[] => [...new Set(checkPacket(w, ob).violations.map((v) => v.property))].sort();

/** The frame the DNAT must make of `s`: built from scratch, so its checksums are right. */
const dnatted = (s: FrameSpec): Buffer => buildFrame({
  ...s, ip: { ...s.ip, daddr: '10.1.0.11' }, l4: { ...s.l4, dport: 8080 } as FrameSpec['l4'],
});

test('a right DNAT passes every property', (t) => {
  const s = syn('10.96.0.10', 80);
  t.deepEqual(checkPacket(world, obs(buildFrame(s), dnatted(s))).violations, []);
});

test('untouched: a packet for no VIP that comes out changed, or dropped', (t) => {
  const f = buildFrame(syn('10.9.9.9', 80));
  const changed = Buffer.from(f);
  changed[changed.length - 1]! ^= 1;
  const quiet = { global: { rx_packets: 1, passed_other: 1 }, svc: new Map(), backend: new Map() };
  t.deepEqual(broke(world, obs(f, f, quiet)), []);
  t.deepEqual(broke(world, obs(f, changed, quiet)), ['counters', 'untouched']);
  t.deepEqual(broke(world, obs(f, f, { ...quiet, verdict: 1, global: { rx_packets: 1, drop_no_service: 1 } })), ['untouched']);
});

test('nat: to an address that is not a backend, a payload byte changed, the source moved', (t) => {
  const s = syn('10.96.0.10', 80);
  const f = buildFrame(s);
  const elsewhere = buildFrame({ ...s, ip: { ...s.ip, daddr: '10.1.0.99' }, l4: { ...s.l4, dport: 8080 } as FrameSpec['l4'] });
  t.true(broke(world, obs(f, elsewhere)).includes('nat'), 'to an address that is no backend');
  const payload = dnatted(s);
  payload[payload.length - 1]! ^= 0xff;
  t.true(broke(world, obs(f, payload)).includes('nat'), 'a payload byte the NAT does not own');
  const moved = buildFrame({ ...s, ip: { ...s.ip, saddr: '1.1.1.1', daddr: '10.1.0.11' }, l4: { ...s.l4, dport: 8080 } as FrameSpec['l4'] });
  t.deepEqual(broke(world, obs(f, moved)), ['nat']);
});

test('checksums: a wrong IPv4 or TCP checksum after the rewrite, a zero UDP checksum made non-zero', (t) => {
  const s = syn('10.96.0.10', 80);
  const f = buildFrame(s);
  const badIp = dnatted(s);
  badIp[14 + 10]! ^= 0x10;
  t.deepEqual(broke(world, obs(f, badIp)), ['checksums']);
  const badTcp = dnatted(s);
  badTcp[14 + 20 + 16]! ^= 0x10;
  t.deepEqual(broke(world, obs(f, badTcp)), ['checksums']);
  /* An input whose TCP checksum is off must stay off by as much: fixing it launders the error. */
  const offIn = Buffer.from(f);
  offIn[14 + 20 + 16]! ^= 0x10;
  t.deepEqual(broke(world, obs(offIn, dnatted(s))), ['checksums']);

  const u = dgram('10.96.0.10', 53, true);
  const uf = buildFrame(u);
  const stats = { svc: new Map([[4, fwd(uf.length - 14)]]), backend: new Map([[8, fwd(uf.length - 14)]]) };
  const right = buildFrame({ ...u, ip: { ...u.ip, daddr: '10.1.0.12' }, l4: { ...u.l4, dport: 5353 } as FrameSpec['l4'] });
  t.deepEqual(broke(world, obs(uf, right, stats)), []);
  const summed = buildFrame({ ...u, ip: { ...u.ip, daddr: '10.1.0.12' }, l4: { kind: 'udp', sport: 40000, dport: 5353, zeroChecksum: false, payload: [9, 9, 9] } });
  t.deepEqual(broke(world, obs(uf, summed, stats)), ['checksums']);
});

test('malformed: a total length beyond the frame, rewritten or passed to a VIP; passed changed elsewhere', (t) => {
  const s = syn('10.96.0.10', 80, { mutations: [{ kind: 'totLen', value: 1000 }] });
  const f = buildFrame(s);
  t.deepEqual(broke(world, obs(f, f, { verdict: 1, global: { rx_packets: 1, drop_malformed: 1 }, svc: new Map(), backend: new Map() })), [], 'dropped, counted: right');
  t.true(broke(world, obs(f, dnatted(s))).includes('malformed'), 'rewritten');
  t.deepEqual(broke(world, obs(f, f, { global: { rx_packets: 1, passed_malformed: 1 }, svc: new Map(), backend: new Map() })), ['malformed'], 'passed to a VIP');
  const cut = buildFrame(syn('10.9.9.9', 80, { mutations: [{ kind: 'doff', value: 15 }] }));
  t.deepEqual(broke(world, obs(cut, cut, { global: { rx_packets: 1, passed_other: 1 }, svc: new Map(), backend: new Map() })), ['malformed'], 'counted as not malformed');
});

test('counters: two verdict counters, no rx_packets, bytes counted by a claimed length', (t) => {
  const s = syn('10.96.0.10', 80);
  const f = buildFrame(s);
  t.deepEqual(broke(world, obs(f, dnatted(s), { global: { rx_packets: 1, forwarded_stack: 1, passed_other: 1 } })), ['counters']);
  t.deepEqual(broke(world, obs(f, dnatted(s), { global: { forwarded_stack: 1 } })), ['counters']);
  t.deepEqual(broke(world, obs(f, dnatted(s), { svc: new Map([[3, fwd(1000)]]) })), ['counters']);
  t.deepEqual(broke(world, obs(f, dnatted(s), { backend: new Map([[7, fwd(f.length - 14)], [8, fwd(1)]]) })), ['counters']);
});

/* The flow lifecycle (bpf/include/ct.h): each rule, shown a wrong output. */

const CLIENT_KEY = ctKey('192.168.50.7', 40000, '10.96.0.10', 80, 6);
const REPLY_KEY = ctKey('10.1.0.11', 8080, '192.168.50.7', 40000, 6);
const be7 = { id: 7, address: '10.1.0.11', port: 8080 };
const tcp = (flags: number): FrameSpec => ({ ...syn('10.96.0.10', 80), l4: { kind: 'tcp', sport: 40000, dport: 80, seq: 1, flags, options: [], payload: [1, 2, 3] } });
const est = (len: number): LbDelta => ({ packets: 1, bytes: len, newConnections: 0, replyPackets: 0 });
const withTable = (t: CtTable, now = NOW): FuzzWorld => ({ ...world, conntrack: t, now });
/** A table's entries with some fields changed. */
const edit = (t: CtTable, f: (e: WorldConntrack) => Partial<WorldConntrack>): Map<string, WorldConntrack> =>
  new Map([...t].map(([k, e]) => [k, { ...e, ...f(e) }]));

test('conntrack: a dead entry is judged as absent (ct_expired) and the flow placed afresh', (t) => {
  const s = tcp(0x10);
  const f = buildFrame(s);
  const dead = edit(placed(f, be7, 3, 'established'), () => ({ created: 4000, expires: NOW }));
  const right = { global: { rx_packets: 1, forwarded_stack: 1, ct_expired: 1 }, conntrack: placed(f, be7, 3, 'established') };
  t.deepEqual(broke(withTable(dead), obs(f, dnatted(s), right)), []);
  /* Followed as if live: no ct_expired, no new connection, the old entries kept. */
  const followed = { global: { rx_packets: 1, forwarded_stack: 1 }, svc: new Map([[3, est(f.length - 14)]]), backend: new Map([[7, est(f.length - 14)]]), conntrack: edit(dead, () => ({ expires: NOW + 21600 })) };
  t.deepEqual(broke(withTable(dead), obs(f, dnatted(s), followed)), ['conntrack', 'counters']);
  /* Wrap-safe: an expiry of 2^32 - 1 is a second before 0. */
  const wrapped = edit(dead, () => ({ expires: 0xffffffff }));
  t.deepEqual(broke(withTable(wrapped, 0), obs(f, dnatted(s), { ...right, conntrack: edit(placed(f, be7, 3, 'established'), (e) => ({ created: 0, expires: e.expires - NOW })) })), []);
});

test('conntrack: a reply entry whose backend is gone is removed (ct_reply_stale), the reply judged without it', (t) => {
  const r: FrameSpec = { ...mac, ip: ip('10.1.0.11', '192.168.50.7'), l4: { kind: 'tcp', sport: 8080, dport: 40000, seq: 1, flags: 0x10, options: [], payload: [1] }, mutations: [] };
  const f = buildFrame(r);
  const out = buildFrame({ ...r, ip: { ...r.ip, saddr: '10.96.0.10' }, l4: { ...r.l4, sport: 80 } as FrameSpec['l4'] });
  const stale = new Map([[REPLY_KEY, { natAddress: '10.96.0.10', natPort: 80, reply: true, hairpin: false, backendId: 9, serviceId: 3, state: 'established' as const, created: 4000, expires: NOW + 100 }]]);
  const replied = { svc: new Map([[3, { packets: 0, bytes: 0, newConnections: 0, replyPackets: 1 }]]), backend: new Map([[7, { packets: 0, bytes: 0, newConnections: 0, replyPackets: 1 }]]) };
  /* Restored by reply_nat (10.1.0.11:8080 serves one service port), which tracks the flow anew. */
  const right = { ...replied, global: { rx_packets: 1, forwarded_stack: 1, replies: 1, reply_restored: 1, ct_reply_stale: 1 }, conntrack: placed(buildFrame(tcp(0x10)), be7, 3, 'established') };
  t.deepEqual(broke(withTable(stale), obs(f, out, right)), []);
  /* Restored by the stale entry, as before the lifecycle. */
  const followed = { svc: right.svc, backend: new Map([[9, right.backend.get(7)!]]), global: { rx_packets: 1, forwarded_stack: 1, replies: 1 }, conntrack: stale };
  t.deepEqual(broke(withTable(stale), obs(f, out, followed)), ['conntrack', 'counters']);
});

test('conntrack: a RST is balanced but creates no entry (ct_untracked)', (t) => {
  const s = tcp(0x04);
  const f = buildFrame(s);
  t.deepEqual(broke(world, obs(f, dnatted(s), { global: { rx_packets: 1, forwarded_stack: 1, ct_untracked: 1 }, conntrack: new Map() })), []);
  t.deepEqual(broke(world, obs(f, dnatted(s), { global: { rx_packets: 1, forwarded_stack: 1, ct_untracked: 1 }, conntrack: placed(f, be7, 3, 'established') })), ['conntrack']);
  t.deepEqual(broke(world, obs(f, dnatted(s), { global: { rx_packets: 1, forwarded_stack: 1 }, conntrack: new Map() })), ['counters']);
});

test('conntrack: the state moves new -> established -> closing in both entries; a fresh SYN on a closing flow is placed afresh, not rescheduled', (t) => {
  const a = tcp(0x10);
  const f = buildFrame(a);
  const fresh = placed(f, be7, 3, 'new');
  const stats = { svc: new Map([[3, est(f.length - 14)]]), backend: new Map([[7, est(f.length - 14)]]) };
  const moved = edit(fresh, () => ({ state: 'established', expires: NOW + 21600 }));
  t.deepEqual(broke(withTable(fresh), obs(f, dnatted(a), { ...stats, conntrack: moved })), []);
  t.deepEqual(broke(withTable(fresh), obs(f, dnatted(a), { ...stats, conntrack: fresh })), ['conntrack'], 'left new');
  t.deepEqual(broke(withTable(fresh), obs(f, dnatted(a), { ...stats, conntrack: new Map([...moved].slice(0, 1).concat([...fresh].slice(1))) })), ['conntrack'], 'only one entry moved');
  const fin = tcp(0x11);
  const ff = buildFrame(fin);
  const closing = edit(moved, () => ({ state: 'closing', expires: NOW + 10 }));
  t.deepEqual(broke(withTable(moved), obs(ff, dnatted(fin), { ...stats, conntrack: closing })), []);
  t.deepEqual(broke(withTable(moved), obs(ff, dnatted(fin), { ...stats, conntrack: moved })), ['conntrack'], 'a FIN that does not close');
  const s = tcp(0x02);
  const sf = buildFrame(s);
  const old = edit(closing, () => ({ created: 4000 }));
  t.deepEqual(broke(withTable(old), obs(sf, dnatted(s), { conntrack: placed(sf, be7, 3, 'new') })), []);
  t.deepEqual(broke(withTable(old), obs(sf, dnatted(s), { global: { rx_packets: 1, forwarded_stack: 1, ct_rescheduled: 1 }, conntrack: placed(sf, be7, 3, 'new') })), ['counters']);
  t.deepEqual(broke(withTable(old), obs(sf, dnatted(s), { ...stats, conntrack: edit(old, () => ({ state: 'closing', expires: NOW + 10 })) })), ['conntrack', 'counters'], 'followed');
});

test('conntrack: a new flow whose reply tuple another live flow holds for another VIP:port is refused (ct_reply_clash)', (t) => {
  const s = tcp(0x02);
  const f = buildFrame(s);
  const held = new Map([[REPLY_KEY, { natAddress: '10.96.0.20', natPort: 80, reply: true, hairpin: false, backendId: 7, serviceId: 5, state: 'established' as const, created: 4000, expires: NOW + 100 }]]);
  const refused = { verdict: 1, global: { rx_packets: 1, ct_reply_clash: 1 }, svc: new Map(), backend: new Map(), conntrack: held };
  t.deepEqual(broke(withTable(held), obs(f, f, refused)), []);
  t.deepEqual(broke(withTable(held), obs(f, dnatted(s), { conntrack: edit(placed(f, be7, 3, 'new'), () => ({})) })), ['nat'], 'placed over it');
  t.deepEqual(broke(withTable(held), obs(f, f, { ...refused, conntrack: new Map([...held, ...[...placed(f, be7, 3, 'new')].slice(0, 1)]) })), ['conntrack'], 'its forward entry left');
  const dead = edit(held, () => ({ expires: NOW }));
  t.deepEqual(broke(withTable(dead), obs(f, f, { ...refused, conntrack: dead })), ['nat'], 'refused for a dead entry');
  const same = edit(held, () => ({ natAddress: '10.96.0.10' }));
  t.deepEqual(broke(withTable(same), obs(f, f, { ...refused, conntrack: same })), ['nat'], 'refused for its own VIP:port');
});

test('conntrack: a forward packet writes its gone reply entry again (ct_reply_recreated), only as its flow\'s first in a second', (t) => {
  const a = tcp(0x10);
  const f = buildFrame(a);
  const stats = { svc: new Map([[3, est(f.length - 14)]]), backend: new Map([[7, est(f.length - 14)]]) };
  const both = edit(placed(f, be7, 3, 'established'), () => ({ created: 4000 }));
  const alone = (expires: number): Map<string, WorldConntrack> => new Map([[CLIENT_KEY, { ...both.get(CLIENT_KEY)!, expires }]]);
  const right = { ...stats, global: { rx_packets: 1, forwarded_stack: 1, ct_reply_recreated: 1 }, conntrack: both };
  t.deepEqual(broke(withTable(alone(NOW + 100)), obs(f, dnatted(a), right)), []);
  t.deepEqual(broke(withTable(alone(NOW + 100)), obs(f, dnatted(a), { ...right, global: { rx_packets: 1, forwarded_stack: 1 } })), ['counters']);
  t.deepEqual(broke(withTable(alone(NOW + 100)), obs(f, dnatted(a), { ...right, conntrack: alone(NOW + 21600) })), ['conntrack'], 'not written');
  /* The flow's second packet in this second changes nothing. */
  t.deepEqual(broke(withTable(alone(NOW + 21600)), obs(f, dnatted(a), { ...stats, conntrack: alone(NOW + 21600) })), []);
  t.deepEqual(broke(withTable(alone(NOW + 21600)), obs(f, dnatted(a), right)), ['conntrack', 'counters']);
  /* Another flow's entry under the reply tuple is not overwritten. */
  const other = new Map([...alone(NOW + 100), [REPLY_KEY, { ...both.get(REPLY_KEY)!, natAddress: '10.96.0.20' }]]);
  t.deepEqual(broke(withTable(other), obs(f, dnatted(a), { ...stats, conntrack: new Map([...other, [CLIENT_KEY, { ...other.get(CLIENT_KEY)!, expires: NOW + 21600 }]]) })), []);
  t.deepEqual(broke(withTable(other), obs(f, dnatted(a), right)), ['conntrack', 'counters']);
});

test('malformed: IHL < 5 or version 6 to a VIP is dropped as drop_malformed; nothing of it reaches the table', (t) => {
  const dropped = { verdict: 1, global: { rx_packets: 1, drop_malformed: 1 }, svc: new Map(), backend: new Map() };
  for (const m of [{ kind: 'ihl' as const, value: 4 }, { kind: 'version' as const, value: 6 }]) {
    const f = buildFrame(syn('10.96.0.10', 80, { mutations: [m] }));
    t.deepEqual(broke(world, obs(f, f, dropped)), [], m.kind);
    t.deepEqual(broke(world, obs(f, f, { ...dropped, verdict: 2, global: { rx_packets: 1, passed_malformed: 1 } })), ['malformed'], `${m.kind}: passed`);
    t.deepEqual(broke(world, obs(f, f, { ...dropped, conntrack: placed(f, be7, 3) })), ['conntrack'], `${m.kind}: an entry`);
  }
});

/* Fragments (bpf/include/frag.h) and ICMP errors (bpf/include/icmp_nat.h): each rule, shown a wrong output. */

const FRAG_ID = 0x4242;
/** A UDP datagram to the dns service (10.96.0.10:53 -> 10.1.0.12:5353, service 4, backend 8) cut in two: first (MF, offset 0) and later (offset 2). */
function udpFragments(daddr = '10.96.0.10'): { first: Buffer; later: Buffer } {
  const whole = buildFrame({ ...mac, ip: { ...ip('192.168.50.7', daddr), id: FRAG_ID }, l4: { kind: 'udp', sport: 40000, dport: 53, zeroChecksum: false, payload: Array.from({ length: 24 }, (_, i) => i) }, mutations: [] });
  const [first, later] = fragmentPacket(whole, 16);
  return { first: first!, later: later! };
}
const dnsFrag: WorldFrag = { newAddress: '10.1.0.12', peerNewAddress: '0.0.0.0', serviceId: 4, backendId: 8, rewriteDst: true, hairpin: false };
const FRAG_KEY = fragKey('192.168.50.7', '10.96.0.10', 17, FRAG_ID);

test('fragments: a first fragment is judged as a packet to its service, and its rewrite kept in frag4', (t) => {
  const { first } = udpFragments();
  const out = Buffer.from(first);
  /* The DNAT of the first fragment: address, port and the checksum brought along (the datagram's, which the fragment only starts). */
  const dn = fragRewrite(first, dnsFrag);
  dn.copy(out, 0, 0, 34);
  out.writeUInt16BE(5353, 36);
  const sumDelta = (a: number, b: number): number => a + (~b & 0xffff);
  let c = first.readUInt16BE(40);
  let d = sumDelta(0x0a01, 0x0a60) + sumDelta(0x000c, 0x000a) + sumDelta(5353, 53);
  d = (~c & 0xffff) + d;
  while (d > 0xffff) d = (d & 0xffff) + (d >>> 16);
  c = ~d & 0xffff;
  out.writeUInt16BE(c, 40);
  const stats = { svc: new Map([[4, fwd(first.length - 14)]]), backend: new Map([[8, fwd(first.length - 14)]]) };
  const right = { ...stats, conntrack: placed(first, { id: 8, address: '10.1.0.12', port: 5353 }, 4, 'established'), frag4: new Map([[FRAG_KEY, dnsFrag]]) };
  t.deepEqual(broke(world, obs(first, out, right)), []);
  t.deepEqual(broke(world, obs(first, out, { ...right, frag4: new Map() })), ['fragments'], 'its rewrite not kept');
  t.deepEqual(broke(world, obs(first, out, { ...right, frag4: new Map([[FRAG_KEY, { ...dnsFrag, backendId: 7 }]]) })), ['fragments'], 'kept with another backend');
  /* Dropped as a fragment, as before frag.h. */
  t.true(broke(world, obs(first, first, { verdict: 1, global: { rx_packets: 1, drop_fragment: 1 }, svc: new Map(), backend: new Map(), conntrack: new Map() })).includes('nat'));
  /* To a service without backends: drop_no_backend (drop) is right, drop_fragment is not; frag4 keeps what it held. */
  const none: FuzzWorld = { ...world, services: world.services.map((s) => ({ ...s, backends: [], drop: true })), frag4: new Map([[FRAG_KEY, dnsFrag]]) };
  const dropped = { verdict: 1, svc: new Map(), backend: new Map(), conntrack: new Map(), frag4: new Map([[FRAG_KEY, dnsFrag]]) };
  t.deepEqual(broke(none, obs(first, first, { ...dropped, global: { rx_packets: 1, drop_no_backend: 1 } })), []);
  t.deepEqual(broke(none, obs(first, first, { ...dropped, global: { rx_packets: 1, drop_fragment: 1 } })), ['nat']);
  t.deepEqual(broke(none, obs(first, first, { ...dropped, global: { rx_packets: 1, drop_no_backend: 1 }, frag4: new Map() })), ['fragments'], 'a refused first fragment removed the entry');
});

test('fragments: a later fragment gets its first fragment\'s address rewrite only, counted frag_translated', (t) => {
  const { later } = udpFragments();
  const w: FuzzWorld = { ...world, frag4: new Map([[FRAG_KEY, dnsFrag]]) };
  const est1 = (n: number): LbDelta => ({ packets: 1, bytes: n, newConnections: 0, replyPackets: 0 });
  const right = { global: { rx_packets: 1, forwarded_stack: 1, frag_translated: 1 }, svc: new Map([[4, est1(later.length - 14)]]), backend: new Map([[8, est1(later.length - 14)]]), conntrack: new Map(), frag4: w.frag4 };
  const want = fragRewrite(later, dnsFrag);
  t.is([...want.subarray(30, 34)].join('.'), '10.1.0.12');
  t.deepEqual(broke(w, obs(later, want, right)), []);
  const payload = Buffer.from(want);
  payload[payload.length - 1]! ^= 1;
  t.deepEqual(broke(w, obs(later, payload, right)), ['fragments'], 'a data byte changed');
  const badIp = Buffer.from(want);
  badIp[24]! ^= 0x10;
  t.deepEqual(broke(w, obs(later, badIp, right)), ['checksums', 'fragments'], 'the IPv4 checksum not brought along');
  t.deepEqual(broke(w, obs(later, want, { ...right, global: { rx_packets: 1, forwarded_stack: 1 } })), ['counters'], 'frag_translated not counted');
  t.deepEqual(broke(w, obs(later, want, { ...right, svc: new Map([[4, fwd(later.length - 14)]]) })), ['counters'], 'counted a new connection');
  t.deepEqual(broke(w, obs(later, later, { verdict: 1, global: { rx_packets: 1, drop_fragment: 1 }, svc: new Map(), backend: new Map(), conntrack: new Map(), frag4: w.frag4 })), ['counters', 'fragments'], 'dropped although its first came (and frag_translated not counted)');
  /* A reply entry: the source becomes the VIP, counted as a reply. */
  const reply: WorldFrag = { ...dnsFrag, newAddress: '10.96.0.10', rewriteDst: false };
  const back = udpFragments('192.168.50.7').later;
  const rk = fragKey('192.168.50.7', '192.168.50.7', 17, FRAG_ID);
  const rw: FuzzWorld = { ...world, frag4: new Map([[rk, reply]]) };
  const replied = { global: { rx_packets: 1, forwarded_stack: 1, frag_translated: 1, replies: 1 }, svc: new Map([[4, { packets: 0, bytes: 0, newConnections: 0, replyPackets: 1 }]]), backend: new Map([[8, { packets: 0, bytes: 0, newConnections: 0, replyPackets: 1 }]]), conntrack: new Map(), frag4: rw.frag4 };
  t.deepEqual(broke(rw, obs(back, fragRewrite(back, reply), replied)), []);
  t.deepEqual(broke(rw, obs(back, fragRewrite(back, dnsFrag), replied)), ['fragments'], 'the destination rewritten for a reply');
});

test('fragments: a later fragment without an entry is dropped to a VIP (drop_fragment), passed elsewhere', (t) => {
  const { later } = udpFragments();
  const dropped = { verdict: 1, global: { rx_packets: 1, drop_fragment: 1 }, svc: new Map(), backend: new Map(), conntrack: new Map() };
  t.deepEqual(broke(world, obs(later, later, dropped)), []);
  t.deepEqual(broke(world, obs(later, later, { ...dropped, verdict: 2, global: { rx_packets: 1, passed_other: 1 } })), ['fragments'], 'passed to a VIP');
  const elsewhere = udpFragments('10.9.9.9').later;
  t.deepEqual(broke(world, obs(elsewhere, elsewhere, { ...dropped, verdict: 2, global: { rx_packets: 1, passed_other: 1 } })), []);
  t.deepEqual(broke(world, obs(elsewhere, elsewhere, dropped)), ['untouched'], 'dropped elsewhere');
});

/** The error a backend (or a router) sends about the client's packet as the backend got it, and the one the client must get. */
function icmpPair(from: string, quoteL4 = 64): { input: Buffer; want: Buffer } {
  const sent = buildFrame(syn('10.96.0.10', 80));
  const natted = dnatted(syn('10.96.0.10', 80));
  return {
    input: icmpError({ saddr: from, daddr: '192.168.50.7', type: 3, code: 4, mtu: 1400, about: natted, quoteL4 }),
    want: icmpError({ saddr: from === '10.1.0.11' ? '10.96.0.10' : from, daddr: '192.168.50.7', type: 3, code: 4, mtu: 1400, about: sent, quoteL4 }),
  };
}

test('icmp: an error about a tracked flow is the error built from scratch about the packet its receiver sent', (t) => {
  const table = placed(buildFrame(syn('10.96.0.10', 80)), be7, 3, 'established');
  const w = withTable(table);
  const translated = { global: { rx_packets: 1, forwarded_stack: 1, icmp_translated: 1 }, svc: new Map(), backend: new Map(), conntrack: table };
  for (const [from, quoteL4] of [['10.1.0.11', 64], ['172.31.0.1', 64], ['10.1.0.11', 8]] as const) {
    const { input, want } = icmpPair(from, quoteL4);
    t.deepEqual(broke(w, obs(input, want, translated)), [], `${from}, ${quoteL4} bytes quoted`);
  }
  const { input, want } = icmpPair('10.1.0.11');
  /* Left untouched: the client's kernel would find no socket. */
  t.deepEqual(broke(w, obs(input, input, { ...translated, global: { rx_packets: 1, passed_other: 1 } })), ['counters', 'icmp']);
  /* The quoted TCP checksum not brought along. */
  const l4Check = Buffer.from(want);
  l4Check[14 + 20 + 8 + 20 + 16]! ^= 1;
  l4Check.writeUInt16BE(l4Check.readUInt16BE(14 + 20 + 2) ^ 0x0100, 14 + 20 + 2);
  t.deepEqual(broke(w, obs(input, l4Check, translated)), ['checksums', 'icmp']);
  /* The quoted IPv4 checksum not updated, the ICMP checksum made to hide it. */
  const qip = Buffer.from(want);
  qip.writeUInt16BE(input.readUInt16BE(14 + 20 + 8 + 10), 14 + 20 + 8 + 10);
  t.deepEqual(broke(w, obs(input, qip, translated)).includes('icmp'), true);
  /* The outer source kept: the client hears from the backend, not the VIP. */
  const src = Buffer.from(input);
  want.copy(src, 14 + 20);
  t.true(broke(w, obs(input, src, translated)).includes('icmp'));
  t.deepEqual(broke(w, obs(input, want, { ...translated, global: { rx_packets: 1, forwarded_stack: 1 } })), ['counters'], 'icmp_translated not counted');
  t.deepEqual(broke(w, obs(input, want, { ...translated, svc: new Map([[3, est(input.length - 14)]]) })), ['counters'], 'counted for the service');
});

test('icmp: an error about a dead, stale or unknown flow passes untouched', (t) => {
  const table = placed(buildFrame(syn('10.96.0.10', 80)), be7, 3, 'established');
  const { input, want } = icmpPair('10.1.0.11');
  const passed = { global: { rx_packets: 1, passed_other: 1 }, svc: new Map(), backend: new Map() };
  for (const [what, tbl] of [
    ['dead', edit(table, () => ({ expires: NOW }))],
    ['its backend gone', edit(table, () => ({ backendId: 9 }))],
    ['a hairpin flow', edit(table, () => ({ hairpin: true }))],
    ['unknown', new Map()],
  ] as const) {
    const w = withTable(tbl);
    t.deepEqual(broke(w, obs(input, input, { ...passed, conntrack: tbl })), [], what);
    t.true(broke(w, obs(input, want, { ...passed, global: { rx_packets: 1, forwarded_stack: 1, icmp_translated: 1 }, conntrack: tbl })).length > 0, `${what}: translated`);
  }
});

/*
 * IPv6 (bpf/include/lb6.h, parsing.h parse_ipv6hdr, ct6.h, reject6.h): each
 * rule the oracle adds for it, shown a wrong output.
 */

const world6: FuzzWorld = {
  ...world,
  services: [...world.services, {
    id: 5, vip: 'fd96::10', port: 80, proto: 6, affinity: false, drop: false,
    backends: [{ id: 9, address: 'fd01::11', port: 8080, draining: false }],
  }, {
    id: 6, vip: 'fd96::10', port: 53, proto: 17, affinity: false, drop: false,
    backends: [{ id: 10, address: 'fd01::12', port: 5353, draining: false }],
  }, {
    id: 11, vip: 'fd96::30', port: 80, proto: 6, affinity: false, drop: false, backends: [],
  }, {
    id: 12, vip: 'fd96::30', port: 53, proto: 17, affinity: false, drop: false, backends: [],
  }],
};
const CLIENT6 = '2001:db8:50::7';
const be9 = { id: 9, address: 'fd01::11', port: 8080 };
const ip6 = (extra: Partial<NonNullable<FrameSpec['ip6']>> = {}): NonNullable<FrameSpec['ip6']> => ({ hopLimit: 64, flowLabel: 0x12345, ext: [], ...extra });
const syn6 = (daddr: string, dport: number, extra: Partial<FrameSpec> = {}): FrameSpec => ({
  ...mac, ip: ip(CLIENT6, daddr), ip6: ip6(), l4: { kind: 'tcp', sport: 40000, dport, seq: 1, flags: 2, options: [], payload: [1, 2, 3] }, mutations: [], ...extra,
});
const dgram6 = (daddr: string, dport: number, extra: Partial<FrameSpec> = {}): FrameSpec => ({
  ...mac, ip: ip(CLIENT6, daddr), ip6: ip6(), l4: { kind: 'udp', sport: 40000, dport, zeroChecksum: false, payload: [9, 9, 9] }, mutations: [], ...extra,
});
/** The frame the DNAT must make of an IPv6 spec to backend fd01::11:8080, built from scratch. */
const dnatted6 = (s: FrameSpec): Buffer => buildFrame({ ...s, ip: { ...s.ip, daddr: 'fd01::11' }, l4: { ...s.l4, dport: 8080 } as FrameSpec['l4'] });
/** The entries a new IPv6 flow of `input` placed on fd01::11:8080 (service 5) leaves. */
function placed6(input: Buffer, state: WorldConntrack['state'] = 'new'): Map<string, WorldConntrack> {
  const r = readFrame(input);
  const fwd6: WorldConntrack = { natAddress: be9.address, natPort: be9.port, reply: false, hairpin: false, backendId: 9, serviceId: 5, state, created: NOW, expires: NOW + (state === 'new' ? TIMEOUTS.tcpSyn : TIMEOUTS.tcpEstablished) };
  return new Map([
    [ctKey(r.saddr!, r.sport!, r.daddr!, r.dport!, 6), fwd6],
    [ctKey(be9.address, be9.port, r.saddr!, r.sport!, 6), { ...fwd6, reply: true, natAddress: r.daddr!, natPort: r.dport! }],
  ]);
}
function obs6(input: Buffer, output: Buffer, o: Partial<FuzzObservation> = {}): FuzzObservation {
  const len = readFrame(input).totLen!;
  return {
    prog: 'xdp', input, output, verdict: 2,
    global: { rx_packets: 1, forwarded_stack: 1 },
    svc: new Map([[5, fwd(len)]]),
    backend: new Map([[9, fwd(len)]]),
    frag4: new Map(),
    frag6: new Map(),
    ...o,
    conntrack: o.conntrack ?? (output.equals(input) ? new Map() : placed6(input)),
  };
}
const passed6 = { global: { rx_packets: 1, passed_other: 1 }, svc: new Map(), backend: new Map(), conntrack: new Map() };
const dropped6 = (c: GlobalCounter): Partial<FuzzObservation> => ({ verdict: 1, global: { rx_packets: 1, [c]: 1 }, svc: new Map(), backend: new Map(), conntrack: new Map() });

test('IPv6 nat: the 16-byte destination and the port rewritten, nothing else; conntrack6 keys bracket the addresses', (t) => {
  const s = syn6('fd96::10', 80, { ip6: ip6({ ext: [{ type: 0, bytes: [1, 4, 0, 0, 0, 0] }] }) });
  const f = buildFrame(s);
  t.deepEqual(checkPacket(world6, obs6(f, dnatted6(s))).violations, []);
  t.true([...placed6(f).keys()].includes(`[${CLIENT6}]:40000>[fd96::10]:80/6`), 'an IPv6 key names its family');
  t.true(broke(world6, obs6(f, buildFrame({ ...s, ip: { ...s.ip, daddr: 'fd01::99' }, l4: { ...s.l4, dport: 8080 } as FrameSpec['l4'] }))).includes('nat'), 'to no backend');
  const label = dnatted6(s);
  label[14 + 3]! ^= 1;
  t.deepEqual(broke(world6, obs6(f, label)), ['nat'], 'the flow label is not the NAT\'s');
  const ext = dnatted6(s);
  ext[14 + 40 + 4]! ^= 1;
  t.deepEqual(broke(world6, obs6(f, ext)), ['nat'], 'an extension header byte is not the NAT\'s');
  const hops = dnatted6(s);
  hops[14 + 7] = 62;
  t.deepEqual(broke(world6, obs6(f, hops)), ['nat'], 'the hop limit goes down by one at most');
  t.deepEqual(broke(world6, obs6(f, dnatted6(s), { conntrack: new Map([...placed6(f)].slice(0, 1)) })), ['conntrack'], 'the reply entry is missing');
});

test('IPv6 checksums: the L4 checksum with the IPv6 pseudo-header, a UDP checksum never made 0', (t) => {
  const s = syn6('fd96::10', 80);
  const f = buildFrame(s);
  const bad = dnatted6(s);
  bad[14 + 40 + 16]! ^= 0x10;
  t.deepEqual(broke(world6, obs6(f, bad)), ['checksums']);
  /* The IPv4 rewrite's checksum (no 16-byte delta) is off for IPv6. */
  const v4ish = dnatted6(s);
  v4ish.writeUInt16BE(f.readUInt16BE(14 + 40 + 16), 14 + 40 + 16);
  t.deepEqual(broke(world6, obs6(f, v4ish)), ['checksums']);
  const u = dgram6('fd96::10', 53);
  const uf = buildFrame(u);
  const out = buildFrame({ ...u, ip: { ...u.ip, daddr: 'fd01::12' }, l4: { ...u.l4, dport: 5353 } as FrameSpec['l4'] });
  const r = readFrame(uf);
  const fwd6: WorldConntrack = { natAddress: 'fd01::12', natPort: 5353, reply: false, hairpin: false, backendId: 10, serviceId: 6, state: 'established', created: NOW, expires: NOW + TIMEOUTS.udp };
  const table = new Map([[ctKey(CLIENT6, 40000, 'fd96::10', 53, 17), fwd6], [ctKey('fd01::12', 5353, CLIENT6, 40000, 17), { ...fwd6, reply: true, natAddress: 'fd96::10', natPort: 53 }]]);
  const udpObs = { svc: new Map([[6, fwd(r.totLen!)]]), backend: new Map([[10, fwd(r.totLen!)]]), conntrack: table };
  t.deepEqual(broke(world6, obs6(uf, out, udpObs)), []);
  const zero = Buffer.from(out);
  zero.writeUInt16BE(0, 14 + 40 + 6);
  t.deepEqual(broke(world6, obs6(uf, zero, udpObs)), ['checksums']);
});

test('IPv6 malformed: jumbogram, too many or too long extension headers, hop-by-hop not first, UDP checksum 0: dropped to a VIP', (t) => {
  const opts = (n: number): Array<{ type: number; bytes: number[] }> => Array.from({ length: n }, () => ({ type: 60, bytes: [1, 4, 0, 0, 0, 0] }));
  const cases: Array<[string, FrameSpec]> = [
    ['payload length 0', syn6('fd96::10', 80, { mutations: [{ kind: 'payloadLen', value: 0 }] })],
    ['payload length beyond the frame', syn6('fd96::10', 80, { mutations: [{ kind: 'payloadLen', value: 200 }] })],
    ['five extension headers', syn6('fd96::10', 80, { ip6: ip6({ ext: opts(5) }) })],
    ['264 bytes of extension headers', syn6('fd96::10', 80, { ip6: ip6({ ext: [{ type: 60, bytes: Array<number>(262).fill(0) }] }) })],
    ['hop-by-hop second', syn6('fd96::10', 80, { ip6: ip6({ ext: [...opts(1), { type: 0, bytes: [] }] }) })],
    ['an extension header cut', syn6('fd96::10', 80, { ip6: ip6({ ext: opts(2) }), mutations: [{ kind: 'cut', boundary: 2, delta: 4 }] })],
    ['version 4 in an IPv6 frame', syn6('fd96::10', 80, { mutations: [{ kind: 'version', value: 4 }] })],
    ['UDP checksum 0', dgram6('fd96::10', 53, { l4: { kind: 'udp', sport: 40000, dport: 53, zeroChecksum: true, payload: [1] } })],
  ];
  for (const [what, s] of cases) {
    const f = buildFrame(s);
    t.not(readFrame(f).ipInvalid ?? readFrame(f).l4Invalid, undefined, `${what}: read as invalid`);
    t.deepEqual(broke(world6, obs6(f, f, dropped6('drop_malformed'))), [], what);
    t.deepEqual(broke(world6, obs6(f, f, passed6)), ['malformed'], `${what}: passed`);
    t.deepEqual(broke(world6, obs6(f, dnatted6(syn6('fd96::10', 80)), { conntrack: new Map() })), ['malformed'], `${what}: rewritten`);
  }
  /* Four headers of 256 bytes in all are fine. */
  const four = buildFrame(syn6('fd96::10', 80, { ip6: ip6({ ext: [{ type: 0, bytes: Array<number>(62).fill(0) }, ...opts(3).map((e) => ({ ...e, bytes: Array<number>(62).fill(0) }))] }) }));
  t.is(readFrame(four).ihl, 40 + 256);
  t.is(readFrame(four).ipInvalid, undefined);
  /* Not to a VIP: passed untouched, counted passed_malformed. */
  const other = buildFrame(syn6('fd96::99', 80, { mutations: [{ kind: 'payloadLen', value: 0 }] }));
  t.deepEqual(broke(world6, obs6(other, other, { ...passed6, global: { rx_packets: 1, passed_malformed: 1 } })), []);
  t.deepEqual(broke(world6, obs6(other, other, dropped6('drop_malformed'))), ['malformed']);
});

test('IPv6 untouched: a waypoint, a link-local source, ND, AH, a cut header; another ethertype', (t) => {
  const cases: Array<[string, FrameSpec, GlobalCounter]> = [
    ['routing header, segments left 1', syn6('fd96::10', 80, { ip6: ip6({ ext: [{ type: 43, bytes: [4, 1] }] }) }), 'passed_other'],
    ['link-local source', { ...syn6('fd96::10', 80), ip: ip('fe80::1', 'fd96::10') }, 'passed_other'],
    ['link-local source, TCP cut', { ...syn6('fd96::10', 80), ip: ip('fe80::1', 'fd96::10'), mutations: [{ kind: 'doff', value: 15 }] }, 'passed_other'],
    ['multicast source', { ...syn6('fd96::10', 80), ip: ip('ff02::1', 'fd96::10') }, 'passed_other'],
    ['neighbour solicitation to the VIP', { ...syn6('fd96::10', 80), l4: { kind: 'icmp', type: 135, code: 0, quote: [...Array<number>(16).fill(0)] } }, 'passed_other'],
    ['echo request to the VIP', { ...syn6('fd96::10', 80), l4: { kind: 'icmp', type: 128, code: 0, quote: [1, 2] } }, 'passed_other'],
    ['AH to the VIP', { ...syn6('fd96::10', 80), l4: { kind: 'raw', proto: 51, payload: [6, 2, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] } }, 'passed_other'],
    ['a cut fixed header', syn6('fd96::10', 80, { mutations: [{ kind: 'cut', boundary: 0, delta: 30 }] }), 'passed_malformed'],
    ['ARP', syn6('fd96::10', 80, { mutations: [{ kind: 'ethType', value: 0x0806 }] }), 'passed_other'],
  ];
  for (const [what, s, c] of cases) {
    const f = buildFrame(s);
    const quiet = { ...passed6, global: { rx_packets: 1, [c]: 1 } };
    t.deepEqual(broke(world6, obs6(f, f, quiet)), [], what);
    const changed = Buffer.from(f);
    changed[changed.length - 1]! ^= 1;
    t.true(broke(world6, obs6(f, changed, quiet)).includes('untouched'), `${what}: changed`);
    t.true(broke(world6, obs6(f, f, dropped6('drop_malformed'))).includes('untouched'), `${what}: dropped`);
  }
  /* The IPv4 oracle's reading of this frame, as main had it, wanted passed_other for a cut IPv6 header. */
  const cut = buildFrame(syn6('fd96::10', 80, { mutations: [{ kind: 'truncate', at: 20 }] }));
  t.deepEqual(broke(world6, obs6(cut, cut, passed6)), ['counters']);
});

test('IPv6 fragments: a later fragment without a frag6 entry is dropped to a VIP (drop_fragment), passes elsewhere; a first one is balanced', (t) => {
  const later = buildFrame(dgram6('fd96::10', 53, { ip6: ip6({ frag: { offset: 16, more: false, id: 7, at: 0 } }) }));
  t.true(readFrame(later).laterFragment);
  t.deepEqual(broke(world6, obs6(later, later, dropped6('drop_fragment'))), []);
  t.deepEqual(broke(world6, obs6(later, later, passed6)), ['fragments']);
  const elsewhere = buildFrame(dgram6('fd96::99', 53, { ip6: ip6({ frag: { offset: 16, more: true, id: 7, at: 0 } }) }));
  t.deepEqual(broke(world6, obs6(elsewhere, elsewhere, passed6)), []);
  t.deepEqual(broke(world6, obs6(elsewhere, elsewhere, dropped6('drop_fragment'))), ['untouched']);
  /* An atomic fragment (offset 0, M 0) is an ordinary packet; a first fragment is balanced as one. */
  for (const more of [false, true]) {
    const s = syn6('fd96::10', 80, { ip6: ip6({ frag: { offset: 0, more, id: 7, at: 0 } }) });
    const f = buildFrame(s);
    t.is(readFrame(f).firstFragment, more);
    const kept = more ? new Map([[fragKey6(CLIENT6, 'fd96::10', 7), synFrag6]]) : new Map<string, WorldFrag>();
    t.deepEqual(broke(world6, obs6(f, dnatted6(s), { frag6: kept })), [], `M ${more}`);
    t.deepEqual(broke(world6, obs6(f, dnatted6(s), { frag6: more ? new Map() : new Map([[fragKey6(CLIENT6, 'fd96::10', 7), synFrag6]]) })), ['fragments'], `M ${more}: frag6 ${more ? 'not kept' : 'kept for an atomic fragment'}`);
    t.deepEqual(broke(world6, obs6(f, f, dropped6('drop_fragment'))).includes('nat'), true, `M ${more}: dropped`);
  }
});

/** The offsets at which two frames of one length differ. */
const diffAt = (a: Buffer, b: Buffer): number[] => [...a.keys()].filter((i) => a[i] !== b[i]);

/** frag6's entry for a TCP datagram of CLIENT6 to fd96::10:80 placed on fd01::11:8080 (service 5, backend 9). */
const synFrag6: WorldFrag = { newAddress: 'fd01::11', peerNewAddress: '::', serviceId: 5, backendId: 9, rewriteDst: true, hairpin: false };

test('IPv6 fragments: a first fragment keeps its rewrite in frag6, not frag4; refused, it leaves frag6 as it was', (t) => {
  const f = buildFrame(syn6('fd96::10', 80, { ip6: ip6({ frag: { offset: 0, more: true, id: 0x80001234, at: 0 } }) }));
  const out = dnatted6(syn6('fd96::10', 80, { ip6: ip6({ frag: { offset: 0, more: true, id: 0x80001234, at: 0 } }) }));
  const key = fragKey6(CLIENT6, 'fd96::10', 0x80001234);
  t.deepEqual(broke(world6, obs6(f, out, { frag6: new Map([[key, synFrag6]]) })), []);
  t.deepEqual(broke(world6, obs6(f, out, { frag6: new Map([[key, { ...synFrag6, newAddress: 'fd01::12' }]]) })), ['fragments'], 'kept with another address');
  t.deepEqual(broke(world6, obs6(f, out, { frag6: new Map([[fragKey6(CLIENT6, 'fd96::10', 0x1234), synFrag6]]) })), ['fragments'], 'kept under the identification cut to 16 bits');
  t.deepEqual(broke(world6, obs6(f, out, { frag6: new Map([[key, synFrag6]]), frag4: new Map([[fragKey(CLIENT6, 'fd96::10', 6, 0x1234), synFrag6]]) })), ['fragments'], 'kept in frag4');
  /* A first fragment to a service without backends, refused: frag6 keeps what it held. */
  const none = buildFrame(dgram6('fd96::30', 53, { ip6: ip6({ frag: { offset: 0, more: true, id: 7, at: 0 } }), l4: { kind: 'udp', sport: 40000, dport: 53, zeroChecksum: false, payload: Array.from({ length: 80 }, (_, i) => i) } }));
  const held = new Map([[key, synFrag6]]);
  const w: FuzzWorld = { ...world6, services: world6.services.map((x) => (x.id === 12 ? { ...x, drop: true } : x)), frag6: held };
  t.deepEqual(broke(w, obs6(none, none, { ...dropped6('drop_no_backend'), frag6: held })), []);
  t.deepEqual(broke(w, obs6(none, none, { ...dropped6('drop_no_backend'), frag6: new Map() })), ['fragments'], 'a refused first fragment removed an entry');
});

test('IPv6 fragments: a later fragment gets its first fragment\'s 16-byte address rewrite only, counted frag_translated', (t) => {
  const later = buildFrame(dgram6('fd96::10', 80, { ip6: ip6({ frag: { offset: 256, more: false, id: 0x1234, at: 0 } }) }));
  const key = fragKey6(CLIENT6, 'fd96::10', 0x1234);
  const w: FuzzWorld = { ...world6, frag6: new Map([[key, synFrag6]]) };
  const len = readFrame(later).totLen!;
  const est1: LbDelta = { packets: 1, bytes: len, newConnections: 0, replyPackets: 0 };
  const right = { global: { rx_packets: 1, forwarded_stack: 1, frag_translated: 1 }, svc: new Map([[5, est1]]), backend: new Map([[9, est1]]), conntrack: new Map(), frag6: w.frag6 };
  const want = fragRewrite(later, synFrag6);
  t.is(readFrame(want).daddr, 'fd01::11');
  t.deepEqual(diffAt(later, want), [...Array(16).keys()].map((i) => 14 + 24 + i).filter((i) => later[i] !== want[i]), 'the destination only');
  t.deepEqual(broke(w, obs6(later, want, right)), []);
  /* The entry is keyed without the protocol: a later fragment naming another next header gets it too. */
  const tcpLater = buildFrame(syn6('fd96::10', 80, { ip6: ip6({ frag: { offset: 256, more: false, id: 0x1234, at: 0 } }) }));
  const tcpLen = readFrame(tcpLater).totLen!;
  const tcpStats = { packets: 1, bytes: tcpLen, newConnections: 0, replyPackets: 0 };
  t.deepEqual(broke(w, obs6(tcpLater, fragRewrite(tcpLater, synFrag6), { ...right, svc: new Map([[5, tcpStats]]), backend: new Map([[9, tcpStats]]) })), []);
  const hop = Buffer.from(want);
  hop[14 + 7]! -= 1;
  t.deepEqual(broke(w, obs6(later, hop, right)), ['fragments'], 'the hop limit changed');
  const data = Buffer.from(want);
  data[data.length - 1]! ^= 1;
  t.deepEqual(broke(w, obs6(later, data, right)), ['fragments'], 'a data byte changed');
  t.deepEqual(broke(w, obs6(later, want, { ...right, global: { rx_packets: 1, forwarded_stack: 1 } })), ['counters'], 'frag_translated not counted');
  t.deepEqual(broke(w, obs6(later, want, { ...right, svc: new Map([[5, fwd(len)]]) })), ['counters'], 'counted a new connection');
  t.deepEqual(broke(w, obs6(later, later, { ...dropped6('drop_fragment'), frag6: w.frag6 })), ['counters', 'fragments'], 'dropped although its first came');
  t.deepEqual(broke(w, obs6(later, want, { ...right, frag6: new Map() })), ['fragments'], 'the entry removed');
  /* A reply: the source becomes the VIP, counted as a reply; a hairpin flow's other address too. */
  const back = buildFrame({ ...dgram6(CLIENT6, 40000, { ip6: ip6({ frag: { offset: 256, more: false, id: 0x1234, at: 0 } }) }), ip: ip('fd01::11', CLIENT6) });
  const reply: WorldFrag = { ...synFrag6, newAddress: 'fd96::10', rewriteDst: false };
  const rw: FuzzWorld = { ...world6, frag6: new Map([[fragKey6('fd01::11', CLIENT6, 0x1234), reply]]) };
  const r1 = { packets: 0, bytes: 0, newConnections: 0, replyPackets: 1 };
  const replied = { global: { rx_packets: 1, forwarded_stack: 1, frag_translated: 1, replies: 1 }, svc: new Map([[5, r1]]), backend: new Map([[9, r1]]), conntrack: new Map(), frag6: rw.frag6 };
  t.is(readFrame(fragRewrite(back, reply)).saddr, 'fd96::10');
  t.deepEqual(broke(rw, obs6(back, fragRewrite(back, reply), replied)), []);
  t.deepEqual(broke(rw, obs6(back, fragRewrite(back, synFrag6), replied)), ['fragments'], 'the destination rewritten for a reply');
  t.deepEqual(broke(rw, obs6(back, fragRewrite(back, reply), { ...replied, global: { rx_packets: 1, forwarded_stack: 1, frag_translated: 1 } })), ['counters'], 'replies not counted');
  const hp: WorldFrag = { ...reply, hairpin: true, peerNewAddress: 'fd01::11' };
  const toHairpin = buildFrame({ ...dgram6('fd80::1', 40000, { ip6: ip6({ frag: { offset: 256, more: false, id: 0x1234, at: 0 } }) }), ip: ip('fd01::11', 'fd80::1') });
  const hw: FuzzWorld = { ...world6, hairpin6: 'fd80::1', frag6: new Map([[fragKey6('fd01::11', 'fd80::1', 0x1234), hp]]) };
  const hpOut = fragRewrite(toHairpin, hp);
  t.deepEqual([readFrame(hpOut).saddr, readFrame(hpOut).daddr], ['fd96::10', 'fd01::11']);
  t.deepEqual(broke(hw, obs6(toHairpin, hpOut, { ...replied, frag6: hw.frag6 })), []);
  t.deepEqual(broke(hw, obs6(toHairpin, fragRewrite(toHairpin, { ...hp, hairpin: false }), { ...replied, frag6: hw.frag6 })), ['fragments'], 'the hairpin flow\'s other address not rewritten');
});

/*
 * ICMPv6 errors (bpf/include/icmp6_nat.h): from the backend's side, about
 * client -> backend (fd01::11:8080) as the backend got it; from the
 * client's side, about the VIP's reply as the client got it.
 */
const est6 = placed6(buildFrame(syn6('fd96::10', 80)), 'established');
const w6est: FuzzWorld = { ...world6, conntrack: est6 };
const translated6 = { global: { rx_packets: 1, forwarded_stack: 1, icmp_translated: 1 }, svc: new Map(), backend: new Map(), conntrack: est6 };
const passed6est = { global: { rx_packets: 1, passed_other: 1 }, svc: new Map(), backend: new Map(), conntrack: est6 };
/** The error `from` sends to CLIENT6 about the client's packet `s` as the backend got it, and the one the client must get, built from scratch. */
function icmp6Pair(from: string, s: FrameSpec = syn6('fd96::10', 80), quote?: number): { input: Buffer; want: Buffer } {
  return {
    input: icmp6Error({ saddr: from, daddr: CLIENT6, type: 1, code: 4, about: dnatted6(s), ...(quote ? { quote } : {}) }),
    want: icmp6Error({ saddr: from === 'fd01::11' ? 'fd96::10' : from, daddr: CLIENT6, type: 1, code: 4, about: buildFrame(s), ...(quote ? { quote } : {}) }),
  };
}

test('IPv6 icmp: an error about a tracked flow is the error built from scratch about the packet its receiver sent, both ways', (t) => {
  for (const [from, quote] of [['fd01::11', undefined], ['fd31::1', undefined], ['fd01::11', 48], ['fd01::11', 58]] as const) {
    const { input, want } = icmp6Pair(from, undefined, quote);
    t.deepEqual(broke(w6est, obs6(input, want, translated6)), [], `from ${from}, ${quote ?? 'all'} bytes quoted`);
  }
  /* From the client's side: the VIP's reply quoted; its source and port become the backend's, and the error's destination. */
  const reply = (saddr: string, sport: number): FrameSpec => ({ ...mac, ip: ip(saddr, CLIENT6), ip6: ip6(), l4: { kind: 'tcp', sport, dport: 40000, seq: 9, flags: 0x12, options: [], payload: [] }, mutations: [] });
  const fromClient = icmp6Error({ saddr: CLIENT6, daddr: 'fd96::10', type: 4, code: 0, rest: 40, about: buildFrame(reply('fd96::10', 80)) });
  const toBackend = icmp6Error({ saddr: CLIENT6, daddr: 'fd01::11', type: 4, code: 0, rest: 40, about: buildFrame(reply('fd01::11', 8080)) });
  t.deepEqual(broke(w6est, obs6(fromClient, toBackend, translated6)), []);
  t.deepEqual(broke(w6est, obs6(fromClient, fromClient, passed6est)), ['counters', 'icmp'], 'left untouched');

  const { input, want } = icmp6Pair('fd01::11');
  t.deepEqual(broke(w6est, obs6(input, input, passed6est)), ['counters', 'icmp'], 'left untouched');
  /* The error's own source rewritten but left out of the ICMPv6 checksum (as if it had no pseudo-header). */
  const noPseudo = Buffer.from(want);
  const d = (a: Buffer, b: Buffer): number => { let x = 0; for (let i = 0; i < 16; i += 2) x += (~a.readUInt16BE(i) & 0xffff) + b.readUInt16BE(i); return x; };
  let c = (~noPseudo.readUInt16BE(14 + 40 + 2) & 0xffff) + d(want.subarray(22, 38), input.subarray(22, 38));
  while (c > 0xffff) c = (c & 0xffff) + (c >>> 16);
  noPseudo.writeUInt16BE(~c & 0xffff, 14 + 40 + 2);
  t.deepEqual(broke(w6est, obs6(input, noPseudo, translated6)), ['checksums', 'icmp'], 'the pseudo-header left out');
  /* The quoted TCP checksum not brought along, the ICMPv6 checksum made right over it. */
  const l4Check = Buffer.from(want);
  const at = 14 + 40 + 8 + 40 + 16;
  l4Check.writeUInt16BE(input.readUInt16BE(at), at);
  const delta = (~want.readUInt16BE(at) & 0xffff) + input.readUInt16BE(at);
  let c2 = (~l4Check.readUInt16BE(14 + 42) & 0xffff) + delta;
  while (c2 > 0xffff) c2 = (c2 & 0xffff) + (c2 >>> 16);
  l4Check.writeUInt16BE(~c2 & 0xffff, 14 + 42);
  t.deepEqual(broke(w6est, obs6(input, l4Check, translated6)), ['checksums', 'icmp'], 'the quoted TCP checksum not updated');
  /* The error's source kept: the client hears from the backend, not the VIP. */
  const src = Buffer.from(want);
  input.copy(src, 22, 22, 38);
  t.true(broke(w6est, obs6(input, src, translated6)).includes('icmp'), 'the error\'s source kept');
  t.deepEqual(broke(w6est, obs6(input, want, { ...translated6, global: { rx_packets: 1, forwarded_stack: 1 } })), ['counters'], 'icmp_translated not counted');
  t.deepEqual(broke(w6est, obs6(input, want, { ...translated6, svc: new Map([[5, fwd(100)]]) })), ['counters'], 'counted for the service');
  t.deepEqual(broke(w6est, obs6(input, want, { ...translated6, conntrack: new Map() })), ['conntrack'], 'conntrack6 written');
});

test('IPv6 icmp: the quote is walked past 2 extension headers at most; a quoted later fragment, a dead or hairpin flow, echo and a fragment pass', (t) => {
  const dst = (n: number): Ext6Spec[] => Array.from({ length: n }, () => ({ type: 60, bytes: [1, 4, 0, 0, 0, 0] }));
  /* Two destination options headers, or a first fragment's header and one: walked. */
  for (const [what, ip6x] of [['2 extension headers', ip6({ ext: dst(2) })], ['a first fragment', ip6({ ext: dst(1), frag: { offset: 0, more: true, id: 7, at: 0 } })]] as const) {
    const { input, want } = icmp6Pair('fd01::11', syn6('fd96::10', 80, { ip6: ip6x }));
    t.truthy(icmp6Translation(w6est, input, readFrame(input)), what);
    t.deepEqual(broke(w6est, obs6(input, want, translated6)), [], what);
    t.deepEqual(broke(w6est, obs6(input, input, passed6est)), ['counters', 'icmp'], `${what}: left untouched`);
  }
  const passes: Array<[string, Buffer, FuzzWorld]> = [
    ['3 extension headers', icmp6Pair('fd01::11', syn6('fd96::10', 80, { ip6: ip6({ ext: dst(3) }) })).input, w6est],
    ['a quoted later fragment', icmp6Pair('fd01::11', syn6('fd96::10', 80, { ip6: ip6({ frag: { offset: 8, more: false, id: 7, at: 0 } }) })).input, w6est],
    ['7 bytes of TCP quoted', icmp6Pair('fd01::11', undefined, 47).input, w6est],
    ['a dead flow', icmp6Pair('fd01::11').input, { ...world6, conntrack: new Map([...est6].map(([k, e]) => [k, { ...e, expires: NOW }])) }],
    ['a hairpin flow', icmp6Pair('fd01::11').input, { ...world6, conntrack: new Map([...est6].map(([k, e]) => [k, { ...e, hairpin: true }])) }],
    ['echo reply (informational)', (() => { const f = icmp6Pair('fd01::11').input; f[14 + 40] = 129; return f; })(), w6est],
  ];
  for (const [what, input, w] of passes) {
    t.is(icmp6Translation(w, input, readFrame(input)), undefined, what);
    t.deepEqual(broke(w, obs6(input, input, { ...passed6est, conntrack: w.conntrack })), [], what);
    const { want } = icmp6Pair('fd01::11');
    t.true(broke(w, obs6(input, want.length === input.length ? want : Buffer.from(input).fill(0, 60, 62), { ...translated6, conntrack: w.conntrack })).length > 0, `${what}: translated`);
  }
});

test('IPv6 answers: the RST and the ICMPv6 port unreachable built from scratch; a datagram whose headers leave no room in the quote is dropped', (t) => {
  const answered = (c: GlobalCounter): Partial<FuzzObservation> => ({ verdict: 3, global: { rx_packets: 1, [c]: 1 }, svc: new Map(), backend: new Map(), conntrack: new Map() });
  const s = syn6('fd96::30', 80, { ip6: ip6({ ext: [{ type: 60, bytes: [1, 4, 0, 0, 0, 0] }] }) });
  const f = buildFrame(s);
  t.deepEqual(broke(world6, obs6(f, rst6For(f), answered('reject_tcp_rst'))), []);
  const rst = rst6For(f);
  rst[14 + 40 + 8]! ^= 1;
  t.true(broke(world6, obs6(f, rst, answered('reject_tcp_rst'))).includes('nat'), 'a wrong acknowledgement number');
  t.true(broke(world6, obs6(f, rstFor(buildFrame(syn('10.96.0.10', 80))), answered('reject_tcp_rst'))).includes('nat'), 'an IPv4 RST');
  const u = buildFrame(dgram6('fd96::30', 53, { ip6: ip6({ ext: [{ type: 60, bytes: [1, 4, 0, 0, 0, 0] }] }) }));
  t.deepEqual(broke(world6, obs6(u, portUnreachable6For(u, 64, 128), answered('reject_icmp_unreach'))), []);
  const icmp = portUnreachable6For(u, 64, 128);
  icmp[14 + 40 + 2]! ^= 1;
  t.true(broke(world6, obs6(u, icmp, answered('reject_icmp_unreach'))).includes('nat'), 'a wrong ICMPv6 checksum');
  /* 96 bytes of extension headers: 136 of headers, past the 128-byte quote: not answered. */
  const long = buildFrame(dgram6('fd96::30', 53, { ip6: ip6({ ext: [{ type: 60, bytes: Array<number>(94).fill(0) }] }) }));
  t.deepEqual(broke(world6, obs6(long, long, dropped6('drop_no_backend'))), []);
  t.true(broke(world6, obs6(long, portUnreachable6For(long, 64, 128), answered('reject_icmp_unreach'))).includes('nat'), 'answered without the UDP header quoted');
});

test('IPv6 counters: bytes are the fixed header and the payload length, not the frame', (t) => {
  const s = syn6('fd96::10', 80);
  const f = Buffer.concat([buildFrame(s), Buffer.alloc(6)]);
  const out = Buffer.concat([dnatted6(s), Buffer.alloc(6)]);
  t.deepEqual(broke(world6, obs6(f, out)), []);
  t.deepEqual(broke(world6, obs6(f, out, { svc: new Map([[5, fwd(f.length - 14)]]) })), ['counters']);
});
