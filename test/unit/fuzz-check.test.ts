/**
 * The packet fuzzer's checker can fail: each property, shown a deliberately
 * wrong output, reports it (and a right output passes). No dataplane: the
 * observations are made up here, from frames built from scratch.
 */
import test from 'ava';
import { buildFrame, type FrameSpec } from '../helpers/fuzz-frames.js';
import { checkPacket, type FuzzObservation, type FuzzWorld, type LbDelta, type Property } from '../helpers/fuzz-check.js';

const world: FuzzWorld = {
  services: [{
    id: 3, vip: '10.96.0.10', port: 80, proto: 6, affinity: false, drop: false,
    backends: [{ id: 7, address: '10.1.0.11', port: 8080, draining: false }],
  }, {
    id: 4, vip: '10.96.0.10', port: 53, proto: 17, affinity: false, drop: false,
    backends: [{ id: 8, address: '10.1.0.12', port: 5353, draining: false }],
  }],
  hairpin: null,
  conntrack: null,
  icmpRelated: false,
};

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
