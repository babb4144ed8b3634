/**
 * IPv6 packet tables through BPF_PROG_TEST_RUN (packets.test.ts's twin):
 * each row sets up services, sends one IPv6 frame through the real program
 * in the kernel (sluice_xdp and sluice_tc hand IPv6 to their tail-called
 * sluice_xdp6/sluice_tc6), and checks the verdict, the frame that came out
 * (every checksum summed again from scratch, with the IPv6 pseudo-header)
 * and the counters that moved.
 *
 * The services go through the control plane's validation as a daemon's do.
 * A few rows write reply_nat rows of IPv6 endpoints through the map
 * directly, to hold them to exact values.
 *
 * fibRedirect is off, as in packets.test.ts: a rewritten packet's verdict
 * is "to the stack".
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { LoadBalancer } from '../../src/lb/load-balancer.js';
import { LAYOUTS, encodeAffinityKey, encodeAffinityValue, encodeReplyValueInto } from '../../src/dataplane/codec.js';
import { vipFilterBit } from '../../src/dataplane/vip-filter.js';
import { globalDelta, sendCounted, statsDelta, type Delta } from '../helpers/test-run.js';
import { flowHash, maglevSlot } from '../../src/maglev/flow-hash.js';
import type { ServiceSpec } from '../../src/model/service.js';
import {
  TC_ACT_OK,
  TC_ACT_REDIRECT,
  TC_ACT_SHOT,
  XDP_DROP,
  XDP_PASS,
  XDP_TX,
  buildPacket6,
  ip6Bytes,
  parsePacket6,
  portUnreachable6For,
  rst6For,
  type Ext6,
  type Packet6Spec,
} from '../helpers/packet.js';

const VIP = 'fd96::10';
const CLIENT = '2001:db8:50::7';
const BACKENDS = ['fd01::11', 'fd01::12', 'fd01::13', 'fd01::14'];

const web: ServiceSpec = { name: 'web6', address: VIP, port: 80, protocol: 'tcp', backends: BACKENDS.map((address) => ({ address, port: 8080 })) };
const dns: ServiceSpec = { name: 'dns6', address: VIP, port: 53, protocol: 'udp', backends: BACKENDS.slice(0, 2).map((address) => ({ address, port: 5353 })) };
const sticky: ServiceSpec = {
  name: 'sticky6', address: 'fd96::20', port: 443, protocol: 'tcp',
  backends: BACKENDS.map((address) => ({ address, port: 8443 })), sessionAffinity: { timeoutSeconds: 30 },
};
const empty: ServiceSpec = { name: 'empty6', address: 'fd96::30', port: 80, protocol: 'tcp', backends: [] };
const emptyDns: ServiceSpec = { ...empty, name: 'empty6-dns', port: 53, protocol: 'udp' };
const POD = 'fd44::11';
const HAIRPIN = 'fd80::1';
const loop: ServiceSpec = { name: 'loop6', address: 'fd96::50', port: 80, protocol: 'tcp', backends: [{ address: POD, port: 8080 }] };
const loopDns: ServiceSpec = { name: 'loop6-dns', address: 'fd96::50', port: 53, protocol: 'udp', backends: [{ address: POD, port: 5353 }] };

let dp: NativeDataplane;
let lb: LoadBalancer;

const apply = (...specs: ServiceSpec[]): Promise<void> => lb.applyMany(specs);

test.before(async () => {
  dp = await NativeDataplane.open({ fibRedirect: false, capacity: { conntrack: 65536, conntrack6: 65536 } });
  lb = new LoadBalancer(dp);
  await apply(web, dns, sticky, empty, emptyDns, loop, loopDns);
});

test.after.always(() => {
  dp?.close();
});

type Sent = ReturnType<typeof sendCounted>;

function send(prog: 'xdp' | 'tc', frame: Buffer, opts?: { ingressIfindex: number; netnsPath: string }): Sent {
  return sendCounted(dp, prog, frame, opts);
}

/** The address of a backend identity "[address]:port" (hostPort). */
const addressOf = (ident: string): string => ident.slice(0, ident.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1');

/** The backend Maglev picks for a tuple, computed here from the table in the kernel and the IPv6 flow hash. */
function maglevPick(name: string, p: Pick<Packet6Spec, 'saddr' | 'daddr' | 'sport' | 'dport' | 'proto'>): string {
  const ids = lb.ids(name);
  const table = dp.getMaglevTable(ids.service);
  if (!table) throw new Error(`no Maglev table for ${name}`);
  const slot = maglevSlot(flowHash(p.saddr, p.daddr, p.sport!, p.dport!, p.proto === 'tcp' ? 6 : 17), table.length);
  for (const [ident, bid] of ids.backends) if (bid === table[slot]) return addressOf(ident);
  throw new Error(`slot ${slot} holds unknown backend id ${table[slot]}`);
}

/** A conntrack6 entry, read through the map (struct ct6_key/ct6_value, bpf/include/sluice_shared.h). */
interface Ct6 { natAddress: string; natPort: number; state: number; flags: number; backendId: number; serviceId: number }
function ct6(k: { saddr: string; daddr: string; sport: number; dport: number; proto: 'tcp' | 'udp' }): Ct6 | null {
  const key = Buffer.alloc(40);
  ip6Bytes(k.saddr).copy(key, 0);
  ip6Bytes(k.daddr).copy(key, 16);
  key.writeUInt16BE(k.sport, 32);
  key.writeUInt16BE(k.dport, 34);
  key[36] = k.proto === 'tcp' ? 6 : 17;
  const v = dp.raw.mapLookup('conntrack6', key);
  if (!v) return null;
  return {
    natAddress: parsePacket6Addr(v.subarray(0, 16)), natPort: v.readUInt16BE(16), state: v[18]!, flags: v[19]!,
    backendId: v.readUInt32LE(20), serviceId: v.readUInt32LE(24),
  };
}
const parsePacket6Addr = (b: Buffer): string => {
  const f = buildPacket6({ saddr: '::1', daddr: '::1', proto: 'udp', sport: 1, dport: 1 });
  b.copy(f, 14 + 8);
  return parsePacket6(f).saddr;
};
const CT_F_HAIRPIN = 1;
const CT_F_REPLY = 2;

/** Every conntrack6 key whose ports include `port`, deleted. */
function deleteCt6(port: number): void {
  const { keys, count } = dp.raw.mapDump('conntrack6');
  for (let i = 0; i < count; i++) {
    const k = keys.subarray(i * 40, (i + 1) * 40);
    if (k.readUInt16BE(32) === port || k.readUInt16BE(34) === port) dp.raw.mapDelete('conntrack6', k);
  }
}

/** A reply_nat row for an IPv6 backend endpoint (struct rnat_key, family 10). */
function putReply6(address: string, port: number, proto: 'tcp' | 'udp', backendId: number): Buffer {
  const L = LAYOUTS.rnat_key.offsets;
  const key = Buffer.alloc(LAYOUTS.rnat_key.size);
  ip6Bytes(address).copy(key, L.addr);
  key.writeUInt16BE(port, L.port);
  key[L.proto] = proto === 'tcp' ? 6 : 17;
  key[L.family] = 10;
  dp.raw.mapUpdate('reply_nat', key, encodeReplyValueInto(Buffer.alloc(LAYOUTS.rnat_value.size), 0, backendId));
  return key;
}

/** A frame DNATed to `backend:port`, checksums summed anew, nothing else changed. */
function assertDnat(t: ExecutionContext, input: Buffer, out: Buffer, backend: string, port: number, what = ''): void {
  const i = parsePacket6(input);
  const o = parsePacket6(out);
  t.is(o.daddr, backend, `${what} dst was not rewritten to the expected backend: got ${o.daddr}, want ${backend}`);
  t.is(o.dport, port, `${what} dst port`);
  t.is(o.saddr, i.saddr, `${what} src must not change on the way in`);
  t.is(o.sport, i.sport, `${what} src port must not change on the way in`);
  t.true(o.l4ChecksumOk, `${what} L4 checksum invalid after DNAT (0x${o.l4Checksum.toString(16)})`);
  t.true(o.payload.equals(i.payload), `${what} payload changed`);
  t.is(o.hopLimit, i.hopLimit, `${what} hop limit (the stack forwards it)`);
  t.is(out.length, input.length, `${what} length changed`);
  t.true(out.subarray(0, o.l4Offset).subarray(54).equals(input.subarray(54, i.l4Offset)), `${what} extension headers changed`);
}

const syn = (sport: number, extra: Partial<Packet6Spec> = {}): Packet6Spec => ({
  saddr: CLIENT, daddr: VIP, proto: 'tcp', sport, dport: 80, tcpFlags: { syn: true }, ...extra,
});
const ACK = { ack: true, psh: true };
const pass = { xdp: XDP_PASS, tc: TC_ACT_OK } as const;
const drop = { xdp: XDP_DROP, tc: TC_ACT_SHOT } as const;

test.serial('the IPv6 VIP filter bit and flow hash computed here are the dataplane\'s', (t) => {
  // A VIP whose bit is set admits its SYN (the filter says "maybe"); the
  // rows below balance by the TS flow hash and compare with the kernel's.
  const word = vipFilterBit(VIP) >>> 6;
  const v = dp.raw.mapLookup('vip_filter', Buffer.from(Uint32Array.of(word).buffer));
  t.truthy(v);
  t.not(v!.readBigUInt64LE(0) & (1n << BigInt(vipFilterBit(VIP) & 63)), 0n, 'the VIP\'s bit is set');
  const d = dp.lookupFlow({ saddr: CLIENT, daddr: VIP, sport: 40000, dport: 80, protocol: 'tcp', syn: true });
  t.is(d.hash, flowHash(CLIENT, VIP, 40000, 80, 6), 'the kernel\'s flow hash of an IPv6 tuple');
  t.is(d.outcome, 'MAGLEV');
  const want = maglevPick('web6', { saddr: CLIENT, daddr: VIP, sport: 40000, dport: 80, proto: 'tcp' });
  t.true(ip6Bytes(d.rewrite!.address).equals(ip6Bytes(want)), `the lookup's backend ${d.rewrite?.address}, Maglev here ${want}`);
});

for (const prog of ['xdp', 'tc'] as const) {
  test.serial(`${prog}: SYN to an IPv6 VIP: DNAT to the Maglev backend, checksum valid, counters move`, (t) => {
    const spec = syn(prog === 'xdp' ? 40001 : 40002);
    const frame = buildPacket6(spec);
    const want = maglevPick('web6', spec);
    const ids = lb.ids('web6');
    const svcBefore = dp.serviceStats(ids.service);
    const beId = ids.backends.get(`[${want}]:8080`)!;
    const beBefore = dp.backendStats(beId);
    const r = send(prog, frame);
    t.is(r.verdict, pass[prog]);
    assertDnat(t, frame, r.out, want, 8080);
    t.deepEqual(r.global, { rx_packets: 1, forwarded_stack: 1 });
    const bytes = frame.length - 14;
    t.deepEqual(statsDelta(svcBefore, dp.serviceStats(ids.service)), { packets: 1, bytes, newConnections: 1, replyPackets: 0 });
    t.deepEqual(statsDelta(beBefore, dp.backendStats(beId)), { packets: 1, bytes, newConnections: 1, replyPackets: 0 });
    const fwd = ct6({ saddr: CLIENT, daddr: VIP, sport: spec.sport!, dport: 80, proto: 'tcp' });
    t.is(fwd?.natAddress, want, 'a forward conntrack6 entry names the backend');
    t.is(fwd?.flags, 0);
    const rev = ct6({ saddr: want, daddr: CLIENT, sport: 8080, dport: spec.sport!, proto: 'tcp' });
    t.is(rev?.natAddress, VIP, 'and the reply entry the VIP');
    t.is(rev?.flags, CT_F_REPLY);
  });
}

test.serial('spread: many client ports reach every backend, each as Maglev says', (t) => {
  const seen = new Map<string, number>();
  for (let p = 20000; p < 20400; p++) {
    const spec = syn(p);
    const o = parsePacket6(send('xdp', buildPacket6(spec)).out);
    if (o.daddr !== maglevPick('web6', spec)) t.fail(`port ${p}: ${o.daddr}, Maglev says ${maglevPick('web6', spec)}`);
    seen.set(o.daddr, (seen.get(o.daddr) ?? 0) + 1);
  }
  t.deepEqual([...seen.keys()].sort(), [...BACKENDS].sort(), 'every backend gets flows');
  for (const [b, n] of seen) t.true(n > 60, `backend ${b} got only ${n} of 400 flows`);
});

test.serial('established flow keeps its backend after the backend set changes; drained keeps, deleted loses', async (t) => {
  const spec = syn(41000);
  const first = parsePacket6(send('xdp', buildPacket6(spec)).out).daddr;
  const ack: Packet6Spec = { ...spec, tcpFlags: ACK, payload: Buffer.from('GET / HTTP/1.1\r\n') };
  const withState = (address: string, state: 'active' | 'draining', extra: string[] = []): ServiceSpec => ({
    ...web, backends: [...BACKENDS, ...extra].map((a) => ({ address: a, port: 8080, ...(a === address ? { state } : {}) })),
  });

  await apply(withState('', 'active', ['fd01::15']));
  let r = send('xdp', buildPacket6(ack));
  assertDnat(t, buildPacket6(ack), r.out, first, 8080, 'after a backend was added:');

  await apply(withState(first, 'draining', ['fd01::15']));
  r = send('xdp', buildPacket6(ack));
  assertDnat(t, buildPacket6(ack), r.out, first, 8080, 'draining:');
  for (let p = 30000; p < 30200; p++) {
    const o = parsePacket6(send('xdp', buildPacket6(syn(p))).out);
    if (o.daddr === first) t.fail(`new flow from port ${p} went to the draining backend`);
  }
  r = send('xdp', buildPacket6(spec));
  t.not(parsePacket6(r.out).daddr, first, 'a new SYN on the old tuple went to the draining backend');
  t.is(r.global.ct_rescheduled, 1);

  await apply(withState('', 'active', ['fd01::15']));
  deleteCt6(41000);
  const again = parsePacket6(send('xdp', buildPacket6(spec)).out).daddr;
  await apply({ ...web, backends: [...BACKENDS, 'fd01::15'].filter((a) => a !== again).map((a) => ({ address: a, port: 8080 })) });
  r = send('xdp', buildPacket6(ack));
  const moved = parsePacket6(r.out).daddr;
  t.not(moved, again, 'a flow to a deleted backend must be rescheduled');
  t.is(r.global.ct_rescheduled, 1, 'rescheduling is counted');
  assertDnat(t, buildPacket6(ack), r.out, moved, 8080, 'rescheduled:');
  await apply(web);
});

for (const prog of ['xdp', 'tc'] as const) {
  test.serial(`${prog}: reply path: backend -> client restored to VIP:port, checksum valid`, (t) => {
    const cport = prog === 'xdp' ? 42001 : 42002;
    const backend = parsePacket6(send(prog, buildPacket6(syn(cport))).out).daddr;
    const frame = buildPacket6({ saddr: backend, daddr: CLIENT, proto: 'tcp', sport: 8080, dport: cport, tcpFlags: { syn: true, ack: true } });
    const ids = lb.ids('web6');
    const before = dp.serviceStats(ids.service);
    const r = send(prog, frame);
    t.is(r.verdict, pass[prog]);
    const o = parsePacket6(r.out);
    t.is(`[${o.saddr}]:${o.sport}`, `[${VIP}]:80`, 'source restored');
    t.is(`[${o.daddr}]:${o.dport}`, `[${CLIENT}]:${cport}`);
    t.true(o.l4ChecksumOk, 'TCP checksum');
    t.deepEqual(r.global, { rx_packets: 1, replies: 1, forwarded_stack: 1 });
    t.is(statsDelta(before, dp.serviceStats(ids.service)).replyPackets, 1);
    // A SYN from the backend's service port is a connection of its own.
    const own = buildPacket6({ saddr: backend, daddr: CLIENT, proto: 'tcp', sport: 8080, dport: 42999, tcpFlags: { syn: true } });
    const s = send(prog, own);
    t.true(s.out.equals(own), 'a SYN from a backend must be untouched');
    t.deepEqual(s.global, { rx_packets: 1, passed_other: 1 });
  });
}

for (const prog of ['xdp', 'tc'] as const) {
  test.serial(`${prog}: a reply of a flow another node placed is restored through reply_nat, and the flow tracked`, (t) => {
    const cport = prog === 'xdp' ? 43001 : 43002;
    const backend = BACKENDS[2]!;
    const bid = lb.ids('web6').backends.get(`[${backend}]:8080`)!;
    const key = putReply6(backend, 8080, 'tcp', bid);
    t.teardown(() => dp.raw.mapDelete('reply_nat', key));
    t.is(ct6({ saddr: CLIENT, daddr: VIP, sport: cport, dport: 80, proto: 'tcp' }), null, 'this node has never seen the flow');
    const reply: Packet6Spec = { saddr: backend, daddr: CLIENT, proto: 'tcp', sport: 8080, dport: cport, tcpFlags: { ack: true }, payload: Buffer.from('hello') };
    const r = send(prog, buildPacket6(reply));
    t.is(r.verdict, pass[prog]);
    const o = parsePacket6(r.out);
    t.is(`[${o.saddr}]:${o.sport}`, `[${VIP}]:80`, 'restored to the VIP and service port');
    t.true(o.l4ChecksumOk);
    t.deepEqual(r.global, { rx_packets: 1, replies: 1, reply_restored: 1, forwarded_stack: 1 });
    const fwd = ct6({ saddr: CLIENT, daddr: VIP, sport: cport, dport: 80, proto: 'tcp' });
    t.is(`[${fwd?.natAddress}]:${fwd?.natPort}`, `[${backend}]:8080`, 'a forward entry was learnt from the reply');
    const next = send(prog, buildPacket6({ ...syn(cport), tcpFlags: { ack: true } }));
    t.is(parsePacket6(next.out).daddr, backend);
    t.is(next.global.ct_rescheduled, undefined);
    const again = send(prog, buildPacket6(reply));
    t.deepEqual(again.global, { rx_packets: 1, replies: 1, forwarded_stack: 1 }, 'the next reply is a conntrack hit');
    // Without the reply_nat row the same kind of reply is not ours.
    dp.raw.mapDelete('reply_nat', key);
    const other = buildPacket6({ ...reply, dport: cport + 10 });
    const p = send(prog, other);
    t.true(p.out.equals(other));
    t.deepEqual(p.global, { rx_packets: 1, passed_other: 1 });
  });
}

/** A namespace whose IPv6 routes the programs ask: fd09::1/64 on own0, forwarding on. */
function ownNamespace(t: ExecutionContext): { path: string; ifindex: number } {
  const ns = `sl-own6-${process.pid}`;
  const ip = (...a: string[]): string => execFileSync('ip', a, { encoding: 'utf8' });
  ip('netns', 'add', ns);
  t.teardown(() => ip('netns', 'del', ns));
  ip('-n', ns, 'link', 'add', 'own0', 'type', 'veth', 'peer', 'name', 'own1');
  ip('-n', ns, 'link', 'set', 'own0', 'up');
  ip('-n', ns, 'link', 'set', 'own1', 'up');
  ip('-n', ns, '-6', 'addr', 'add', 'fd09::1/64', 'dev', 'own0', 'nodad');
  execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
  const [link] = JSON.parse(ip('-n', ns, '-j', 'link', 'show', 'own0')) as Array<{ ifindex: number }>;
  return { path: `/var/run/netns/${ns}`, ifindex: link!.ifindex };
}

for (const prog of ['xdp', 'tc'] as const) {
  test.serial(`${prog}: a backend's answer to the node's own IPv6 connection passes untouched; one to a routed client is restored`, (t) => {
    const ns = ownNamespace(t);
    const backend = BACKENDS[1]!;
    const key = putReply6(backend, 8080, 'tcp', lb.ids('web6').backends.get(`[${backend}]:8080`)!);
    t.teardown(() => dp.raw.mapDelete('reply_nat', key));
    const cport = prog === 'xdp' ? 44001 : 44002;
    const own = buildPacket6({ saddr: backend, daddr: 'fd09::1', proto: 'tcp', sport: 8080, dport: cport, tcpFlags: { syn: true, ack: true } });
    const probe = send(prog, own, { ingressIfindex: ns.ifindex, netnsPath: ns.path });
    t.true(probe.out.equals(own), 'the answer to the node\'s own connection was rewritten');
    t.deepEqual(probe.global, { rx_packets: 1, passed_other: 1 });
    const routed = send(prog, buildPacket6({ saddr: backend, daddr: 'fd09::77', proto: 'tcp', sport: 8080, dport: cport, tcpFlags: { syn: true, ack: true } }),
      { ingressIfindex: ns.ifindex, netnsPath: ns.path });
    t.is(`[${parsePacket6(routed.out).saddr}]:${parsePacket6(routed.out).sport}`, `[${VIP}]:80`, 'restored to the VIP and service port');
    t.is(routed.global.reply_restored, 1);
  });
}

test.serial('ClientIP affinity by the client\'s IPv6 address: one backend across source ports, Maglev again after the timeout', (t) => {
  const base = { saddr: '2001:db8:60::1', daddr: sticky.address, proto: 'tcp' as const, dport: 443, tcpFlags: { syn: true } };
  const first = parsePacket6(send('xdp', buildPacket6({ ...base, sport: 1000 })).out).daddr;
  t.is(first, maglevPick('sticky6', { ...base, sport: 1000 }), 'the first flow is placed by Maglev');
  let hits = 0;
  let maglevWouldDiffer = 0;
  for (let p = 1001; p < 1050; p++) {
    const r = send('xdp', buildPacket6({ ...base, sport: p }));
    if (parsePacket6(r.out).daddr !== first) t.fail(`source port ${p} left the affinity backend`);
    hits += r.global.affinity_hits ?? 0;
    if (maglevPick('sticky6', { ...base, sport: p }) !== first) maglevWouldDiffer++;
  }
  t.is(hits, 49, 'each new flow is an affinity hit');
  t.true(maglevWouldDiffer > 10, 'the test must use ports Maglev alone would spread');
  const svcId = lb.ids('sticky6').service;
  const bid = lb.ids('sticky6').backends.get(`[${first}]:8443`)!;
  dp.raw.mapUpdate('affinity', encodeAffinityKey(base.saddr, svcId), encodeAffinityValue({ backendId: bid, lastSeenNs: 1n }));
  let p = 2000;
  while (maglevPick('sticky6', { ...base, sport: p }) === first) p++;
  const r = send('tc', buildPacket6({ ...base, sport: p }));
  t.is(parsePacket6(r.out).daddr, maglevPick('sticky6', { ...base, sport: p }), 'after the timeout Maglev chooses again');
  t.is(r.global.affinity_hits, undefined);
  const next = send('tc', buildPacket6({ ...base, sport: p + 5000 }));
  t.is(parsePacket6(next.out).daddr, parsePacket6(r.out).daddr);
  t.is(next.global.affinity_hits, 1);
});

for (const prog of ['xdp', 'tc'] as const) {
  test.serial(`${prog}: UDP is rewritten with a valid checksum; a zero checksum (invalid over IPv6) is dropped to a VIP, passed elsewhere`, (t) => {
    const spec: Packet6Spec = { saddr: CLIENT, daddr: VIP, proto: 'udp', sport: prog === 'xdp' ? 7001 : 7002, dport: 53, payload: Buffer.from('query') };
    const frame = buildPacket6(spec);
    const r = send(prog, frame);
    t.is(r.verdict, pass[prog]);
    assertDnat(t, frame, r.out, maglevPick('dns6', spec), 5353);
    const zero = buildPacket6({ ...spec, sport: spec.sport! + 10, udpChecksum: 0 });
    const z = send(prog, zero);
    t.is(z.verdict, drop[prog]);
    t.deepEqual(z.global, { rx_packets: 1, drop_malformed: 1 });
    const elsewhere = buildPacket6({ ...spec, daddr: 'fd97::9', udpChecksum: 0 });
    const e = send(prog, elsewhere);
    t.true(e.out.equals(elsewhere));
    t.deepEqual(e.global, { rx_packets: 1, passed_malformed: 1 });
  });
}

test.serial('non-service IPv6 traffic passes untouched, and a VIP on an undefined port is dropped and counted', (t) => {
  for (const prog of ['xdp', 'tc'] as const) {
    for (const spec of [
      { saddr: CLIENT, daddr: 'fd97::9', proto: 'tcp' as const, sport: 5555, dport: 80 },
      { saddr: CLIENT, daddr: 'fd97::9', proto: 'udp' as const, sport: 5555, dport: 53 },
    ]) {
      const frame = buildPacket6(spec);
      const r = send(prog, frame);
      t.is(r.verdict, pass[prog]);
      t.true(r.out.equals(frame), `${prog} ${spec.proto} frame changed`);
      t.deepEqual(r.global, { rx_packets: 1, passed_other: 1 });
    }
    let r = send(prog, buildPacket6(syn(46000, { dport: 81 })));
    t.is(r.verdict, drop[prog], `${prog}: SYN to a port no service has`);
    t.deepEqual(r.global, { rx_packets: 1, drop_no_service: 1 });
    r = send(prog, buildPacket6({ saddr: CLIENT, daddr: VIP, proto: 'udp', sport: 46001, dport: 80 }));
    t.is(r.verdict, drop[prog], `${prog}: TCP-only port, UDP packet`);
    t.deepEqual(r.global, { rx_packets: 1, drop_no_service: 1 });
  }
});

/** `frame` with its payload_len set. */
function withPayloadLen(frame: Buffer, len: number): Buffer {
  const f = Buffer.from(frame);
  f.writeUInt16BE(len, 14 + 4);
  return f;
}

for (const prog of ['xdp', 'tc'] as const) {
  test.serial(`${prog}: truncated at every header boundary and malformed lengths: dropped to a VIP, passed otherwise, never rewritten`, (t) => {
    const malformed = { rx_packets: 1, drop_malformed: 1 };
    const passedMalformed = { rx_packets: 1, passed_malformed: 1 };
    const tcp = buildPacket6(syn(47000, { payload: Buffer.from('hello') }));
    const udp = buildPacket6({ saddr: CLIENT, daddr: VIP, proto: 'udp', sport: 47001, dport: 53, payload: Buffer.from('query') });
    const withExt = buildPacket6(syn(47002, { ext: [{ type: 0 }, { type: 60, length: 16 }, { type: 44 }] }));
    const elsewhere = buildPacket6(syn(47003, { daddr: 'fd97::9' }));
    const cases: Array<[string, Buffer, number, Delta]> = [
      // A tc test run refuses an IPv6 frame shorter than the fixed header.
      ...(prog === 'xdp' ? [
        ['Ethernet header only', tcp.subarray(0, 14), pass[prog], passedMalformed],
        ['inside the fixed header (the destination cut)', tcp.subarray(0, 14 + 30), pass[prog], passedMalformed],
      ] as Array<[string, Buffer, number, Delta]> : []),
      ['TCP header cut short, to a VIP', tcp.subarray(0, 54 + 10), drop[prog], malformed],
      ['TCP header cut short, not to a VIP', elsewhere.subarray(0, 54 + 10), pass[prog], passedMalformed],
      ['UDP header cut short', udp.subarray(0, 54 + 4), drop[prog], malformed],
      ['the first extension header\'s first 2 bytes', withExt.subarray(0, 54 + 2), drop[prog], malformed],
      ['inside the second extension header\'s length', withExt.subarray(0, 54 + 8 + 10), drop[prog], malformed],
      ['inside the fragment header', withExt.subarray(0, 54 + 24 + 4), drop[prog], malformed],
      ['after the extension headers, inside TCP', withExt.subarray(0, 54 + 32 + 12), drop[prog], malformed],
      ['payload_len one byte beyond the frame', withPayloadLen(tcp, tcp.length - 54 + 1), drop[prog], malformed],
      ['payload_len 65,535 on a short frame', withPayloadLen(tcp, 65535), drop[prog], malformed],
      ['payload_len beyond the frame, not to a VIP', withPayloadLen(elsewhere, 65535), pass[prog], passedMalformed],
      ['payload_len below the TCP header', withPayloadLen(tcp, 19), drop[prog], malformed],
      ['payload_len below the extension headers', withPayloadLen(withExt, 20), drop[prog], malformed],
      ['jumbogram (payload_len 0 with hop-by-hop)', withPayloadLen(buildPacket6(syn(47004, { ext: [{ type: 0 }] })), 0), drop[prog], malformed],
      ['version 4 in an IPv6 frame', (() => { const f = Buffer.from(tcp); f[14] = 0x40 | (f[14]! & 0xf); return f; })(), drop[prog], malformed],
      ['TCP data offset below 5', (() => { const f = Buffer.from(tcp); f[54 + 12] = 0x40; return f; })(), drop[prog], malformed],
      ['TCP data offset beyond payload_len', (() => { const f = Buffer.from(tcp); f[54 + 12] = 0xf0; return f; })(), drop[prog], malformed],
      ['UDP length beyond payload_len', (() => { const f = Buffer.from(udp); f.writeUInt16BE(udp.length - 54 + 1, 54 + 4); return f; })(), drop[prog], malformed],
      ['UDP length below its header', (() => { const f = Buffer.from(udp); f.writeUInt16BE(7, 54 + 4); return f; })(), drop[prog], malformed],
    ];
    for (const [name, frame, verdict, global] of cases) {
      const r = send(prog, frame);
      t.is(r.verdict, verdict, `${name}: verdict`);
      t.deepEqual(r.global, global, `${name}: counters`);
      if (verdict === pass[prog]) t.true(r.out.equals(frame), `${name}: frame was modified`);
    }
    // A payload_len shorter than the frame: the rest is Ethernet padding,
    // kept as it is; the bytes counted are the IPv6 packet's.
    const before = lb.stats('web6');
    const padded = Buffer.concat([buildPacket6(syn(prog === 'xdp' ? 47005 : 47006)), Buffer.from('padding!')]);
    const r = send(prog, padded);
    t.is(r.verdict, pass[prog], 'a padded frame is forwarded');
    t.true(r.out.subarray(padded.length - 8).equals(Buffer.from('padding!')), 'the padding is kept');
    t.is(Number(lb.stats('web6').bytes - before.bytes), padded.length - 14 - 8, 'bytes counted are the fixed header and payload_len');
    t.is(parsePacket6(r.out.subarray(0, padded.length - 8)).l4ChecksumOk, true);
  });
}

for (const prog of ['xdp', 'tc'] as const) {
  test.serial(`${prog}: extension headers: walked and kept, within the bounds; beyond them malformed; a waypoint or AH passes`, (t) => {
    const base = prog === 'xdp' ? 48000 : 48100;
    const balanced: Array<[string, Ext6[]]> = [
      ['hop-by-hop', [{ type: 0 }]],
      ['destination options', [{ type: 60, length: 24 }]],
      ['routing, no segments left', [{ type: 43, length: 24, segmentsLeft: 0 }]],
      ['atomic fragment', [{ type: 44 }]],
      ['four headers', [{ type: 0 }, { type: 60 }, { type: 43 }, { type: 60, length: 16 }]],
      ['256 bytes of them', [{ type: 0, length: 128 }, { type: 60, length: 128 }]],
    ];
    balanced.forEach(([name, ext], i) => {
      const spec = syn(base + i, { ext });
      const frame = buildPacket6(spec);
      const r = send(prog, frame);
      t.is(r.verdict, pass[prog], `${name}: verdict`);
      assertDnat(t, frame, r.out, maglevPick('web6', spec), 8080, `${name}:`);
      t.deepEqual(r.global, { rx_packets: 1, forwarded_stack: 1 }, `${name}: counters`);
    });
    const refused: Array<[string, Ext6[], Delta]> = [
      ['hop-by-hop not first', [{ type: 60 }, { type: 0 }], { rx_packets: 1, drop_malformed: 1 }],
      ['five headers', [{ type: 0 }, { type: 60 }, { type: 43 }, { type: 60 }, { type: 60 }], { rx_packets: 1, drop_malformed: 1 }],
      ['264 bytes of them', [{ type: 0, length: 136 }, { type: 60, length: 128 }], { rx_packets: 1, drop_malformed: 1 }],
      ['routing with segments left: a waypoint', [{ type: 43, length: 24, segmentsLeft: 1 }], { rx_packets: 1, passed_other: 1 }],
    ];
    refused.forEach(([name, ext, global], i) => {
      const frame = buildPacket6(syn(base + 50 + i, { ext }));
      const r = send(prog, frame);
      t.is(r.verdict, global.drop_malformed ? drop[prog] : pass[prog], `${name}: verdict`);
      t.deepEqual(r.global, global, `${name}: counters`);
      if (!global.drop_malformed) t.true(r.out.equals(frame), `${name}: modified`);
    });
    // AH (51) ends the walk as an upper layer that is not ours.
    const ah = buildPacket6({ saddr: CLIENT, daddr: VIP, proto: 51, payload: Buffer.concat([Buffer.from([6, 4, 0, 0]), Buffer.alloc(20), buildPacket6(syn(base + 60)).subarray(54)]) });
    const r = send(prog, ah);
    t.true(r.out.equals(ah), 'AH: untouched');
    t.deepEqual(r.global, { rx_packets: 1, passed_other: 1 });
    // A later fragment to a VIP whose first was never seen: dropped, as for IPv4.
    const later = buildPacket6(syn(base + 61, { ext: [{ type: 44, fragOffset: 1480, id: 77 }] }));
    const l = send(prog, later);
    t.is(l.verdict, drop[prog]);
    t.deepEqual(l.global, { rx_packets: 1, drop_fragment: 1 });
  });
}

test.serial('ND, MLD and echo to and from a VIP come out byte-identical, counted passed_other; link-local, multicast, loopback and unspecified sources pass', (t) => {
  const icmp = (saddr: string, daddr: string, type: number, hopLimit = 255): Buffer =>
    buildPacket6({ saddr, daddr, proto: 'icmp6', icmp: { type, code: 0 }, payload: Buffer.concat([ip6Bytes(VIP), Buffer.from([1, 1, 2, 0, 0, 0, 0, 1])]), hopLimit });
  const frames: Array<[string, Buffer]> = [
    ['router solicitation', icmp('fe80::1', 'ff02::2', 133)],
    ['router advertisement', icmp('fe80::2', 'ff02::1', 134)],
    ['neighbour solicitation for the VIP', icmp(CLIENT, 'ff02::1:ff00:10', 135)],
    ['neighbour solicitation to the VIP (unicast)', icmp(CLIENT, VIP, 135)],
    ['neighbour advertisement from the VIP', icmp(VIP, CLIENT, 136)],
    ['MLD report', icmp('fe80::3', 'ff02::16', 143, 1)],
    ['MLD query', icmp('fe80::4', 'ff02::1', 130, 1)],
    ['echo request to the VIP', icmp(CLIENT, VIP, 128, 64)],
    ['echo reply from the VIP', icmp(VIP, CLIENT, 129, 64)],
    ['an ICMPv6 error to the VIP (not translated yet)', icmp(CLIENT, VIP, 1, 64)],
    ['a SYN to the VIP from a link-local source', buildPacket6(syn(49000, { saddr: 'fe80::99' }))],
    ['a SYN to the VIP from a multicast source', buildPacket6(syn(49001, { saddr: 'ff05::1' }))],
    ['a SYN to the VIP from loopback', buildPacket6(syn(49002, { saddr: '::1' }))],
    ['a SYN to the VIP from ::', buildPacket6(syn(49003, { saddr: '::' }))],
  ];
  for (const prog of ['xdp', 'tc'] as const) {
    for (const [name, frame] of frames) {
      const r = send(prog, frame);
      t.is(r.verdict, pass[prog], `${prog} ${name}: verdict`);
      t.true(r.out.equals(frame), `${prog} ${name}: changed`);
      t.deepEqual(r.global, { rx_packets: 1, passed_other: 1 }, `${prog} ${name}: counters`);
    }
  }
  t.is(ct6({ saddr: 'fe80::99', daddr: VIP, sport: 49000, dport: 80, proto: 'tcp' }), null, 'nothing tracked');
});

const answerOf = { xdp: XDP_TX, tc: TC_ACT_REDIRECT } as const;

for (const prog of ['xdp', 'tc'] as const) {
  test.serial(`${prog}: without a backend, a SYN gets a RST and a datagram ICMPv6 port unreachable, byte for byte`, (t) => {
    const sport = prog === 'xdp' ? 50001 : 50002;
    const cases: Array<[string, Buffer, Buffer, Delta]> = [];
    const s1 = buildPacket6(syn(sport, { daddr: empty.address, payload: Buffer.alloc(0) }));
    cases.push(['SYN', s1, rst6For(s1), { rx_packets: 1, reject_tcp_rst: 1 }]);
    const s2 = buildPacket6(syn(sport, { daddr: empty.address, payload: Buffer.from('data on a SYN'), tcpFlags: { syn: true, fin: true } }));
    cases.push(['SYN with data and FIN', s2, rst6For(s2), { rx_packets: 1, reject_tcp_rst: 1 }]);
    const s3 = buildPacket6(syn(sport, { daddr: empty.address, ext: [{ type: 0 }, { type: 60, length: 16 }] }));
    cases.push(['SYN with extension headers', s3, rst6For(s3), { rx_packets: 1, reject_tcp_rst: 1 }]);
    const u1 = buildPacket6({ saddr: CLIENT, daddr: emptyDns.address, proto: 'udp', sport, dport: 53, payload: Buffer.from('short') });
    cases.push(['short datagram', u1, portUnreachable6For(u1), { rx_packets: 1, reject_icmp_unreach: 1 }]);
    const u2 = buildPacket6({ saddr: CLIENT, daddr: emptyDns.address, proto: 'udp', sport, dport: 53, payload: Buffer.alloc(300, 7) });
    cases.push(['long datagram (the quote cut)', u2, portUnreachable6For(u2), { rx_packets: 1, reject_icmp_unreach: 1 }]);
    const u3 = buildPacket6({ saddr: CLIENT, daddr: emptyDns.address, proto: 'udp', sport, dport: 53, payload: Buffer.alloc(200, 9), ext: [{ type: 60, length: 16 }] });
    cases.push(['datagram with an extension header', u3, portUnreachable6For(u3), { rx_packets: 1, reject_icmp_unreach: 1 }]);
    for (const [name, frame, want, global] of cases) {
      const r = send(prog, frame);
      t.is(r.verdict, answerOf[prog], `${name}: answered`);
      t.true(r.out.equals(want), `${name}: answer differs:\n got  ${r.out.toString('hex')}\n want ${want.toString('hex')}`);
      t.deepEqual(r.global, global, `${name}: counters`);
      const o = parsePacket6(r.out);
      t.true(o.l4ChecksumOk, `${name}: checksum summed anew`);
      t.is(o.hopLimit, 64);
    }
    // Not answered: an ACK, a RST, a group MAC, a link-local destination.
    const notAnswered: Array<[string, Buffer]> = [
      ['ACK', buildPacket6(syn(sport, { daddr: empty.address, tcpFlags: { ack: true } }))],
      ['SYN|ACK', buildPacket6(syn(sport, { daddr: empty.address, tcpFlags: { syn: true, ack: true } }))],
      ['to a multicast MAC', buildPacket6(syn(sport, { daddr: empty.address, dstMac: '33:33:00:00:00:01' }))],
      ['from a group MAC', buildPacket6(syn(sport, { daddr: empty.address, srcMac: '01:00:5e:00:00:01' }))],
    ];
    for (const [name, frame] of notAnswered) {
      const r = send(prog, frame);
      t.is(r.verdict, drop[prog], `${name}: dropped`);
      t.deepEqual(r.global, { rx_packets: 1, drop_no_backend: 1 }, `${name}: counters`);
    }
  });
}

test.serial('the answers share the IPv4 token bucket: burst 0 answers nothing, counted as rate limited', async (t) => {
  const lim = await NativeDataplane.open({ fibRedirect: false, rejectBurst: 0, capacity: { conntrack: 1024, conntrack6: 1024, maglevSlots: 65536 } });
  t.teardown(() => lim.close());
  await new LoadBalancer(lim).applyMany([empty, emptyDns]);
  for (const prog of ['xdp', 'tc'] as const) {
    for (const frame of [buildPacket6(syn(51000, { daddr: empty.address })), buildPacket6({ saddr: CLIENT, daddr: emptyDns.address, proto: 'udp', sport: 51001, dport: 53 })]) {
      const before = lim.globalStats();
      const r = lim.raw.testRun(prog, frame);
      t.is(r.retval, drop[prog]);
      t.deepEqual(globalDelta(before, lim.globalStats()), { rx_packets: 1, reject_rate_limited: 1 });
    }
  }
});

for (const prog of ['xdp', 'tc'] as const) {
  test.serial(`${prog}: hairpin6: forward and reply rewritten both ways, exact bytes`, (t) => {
    dp.setHairpinAddress(HAIRPIN);
    t.teardown(() => dp.setHairpinAddress(null, 6));
    t.true(ip6Bytes(dp.hairpinAddress(6)!).equals(ip6Bytes(HAIRPIN)), 'node_config6 holds the address');
    const sport = prog === 'xdp' ? 52001 : 52002;
    const payload = Buffer.from('GET / HTTP/1.1\r\n');
    let r = send(prog, buildPacket6({ saddr: POD, daddr: loop.address, proto: 'tcp', sport, dport: 80, tcpFlags: { syn: true } }));
    t.true(r.out.equals(buildPacket6({ saddr: HAIRPIN, daddr: POD, proto: 'tcp', sport, dport: 8080, tcpFlags: { syn: true } })), `SYN: got ${JSON.stringify(parsePacket6(r.out))}`);
    t.deepEqual(r.global, { rx_packets: 1, forwarded_stack: 1, hairpin_flows: 1 });
    const fwd = ct6({ saddr: POD, daddr: loop.address, sport, dport: 80, proto: 'tcp' });
    t.is(fwd?.flags, CT_F_HAIRPIN);
    const rev = ct6({ saddr: POD, daddr: HAIRPIN, sport: 8080, dport: sport, proto: 'tcp' });
    t.is(rev?.flags, CT_F_HAIRPIN | CT_F_REPLY, 'the reply entry is keyed by (backend -> hairpin address)');
    t.is(`[${rev?.natAddress}]:${rev?.natPort}`, `[${loop.address}]:80`);
    r = send(prog, buildPacket6({ saddr: POD, daddr: HAIRPIN, proto: 'tcp', sport: 8080, dport: sport, tcpFlags: { syn: true, ack: true } }));
    t.true(r.out.equals(buildPacket6({ saddr: loop.address, daddr: POD, proto: 'tcp', sport: 80, dport: sport, tcpFlags: { syn: true, ack: true } })), 'SYN-ACK');
    t.deepEqual(r.global, { rx_packets: 1, replies: 1, forwarded_stack: 1 });
    r = send(prog, buildPacket6({ saddr: POD, daddr: loop.address, proto: 'tcp', sport, dport: 80, tcpFlags: ACK, payload }));
    t.true(r.out.equals(buildPacket6({ saddr: HAIRPIN, daddr: POD, proto: 'tcp', sport, dport: 8080, tcpFlags: ACK, payload })), 'established forward packet');
    t.deepEqual(r.global, { rx_packets: 1, forwarded_stack: 1 });
    const p = sport + 100;
    r = send(prog, buildPacket6({ saddr: POD, daddr: loopDns.address, proto: 'udp', sport: p, dport: 53, payload }));
    t.true(r.out.equals(buildPacket6({ saddr: HAIRPIN, daddr: POD, proto: 'udp', sport: p, dport: 5353, payload })), 'UDP forward');
    r = send(prog, buildPacket6({ saddr: POD, daddr: HAIRPIN, proto: 'udp', sport: 5353, dport: p, payload }));
    t.true(r.out.equals(buildPacket6({ saddr: loopDns.address, daddr: POD, proto: 'udp', sport: 53, dport: p, payload })), 'UDP reply');
    // Another client of the same service is only DNATed.
    r = send(prog, buildPacket6({ saddr: CLIENT, daddr: loop.address, proto: 'tcp', sport, dport: 80, tcpFlags: { syn: true } }));
    t.true(r.out.equals(buildPacket6({ saddr: CLIENT, daddr: POD, proto: 'tcp', sport, dport: 8080, tcpFlags: { syn: true } })));
  });
}

/**
 * XDP follows a tracked IPv6 flow on its fast path (xdp_fast6); tc always
 * takes the general one. The same packet of the same flow must come out of
 * both byte for byte, with the same verdict and counters.
 */
test.serial('a tracked IPv6 flow comes out of XDP\'s fast path exactly as out of the general path (tc)', (t) => {
  interface Case { name: string; open: Packet6Spec; later: Packet6Spec[]; service: string; port: number }
  const cases: Case[] = [
    { name: 'TCP', service: 'web6', port: 8080, open: syn(53000), later: [syn(53000, { tcpFlags: ACK, payload: Buffer.from('GET / HTTP/1.1\r\n') })] },
    { name: 'TCP, a fresh SYN on an active flow\'s tuple', service: 'web6', port: 8080, open: syn(53001), later: [syn(53001)] },
    { name: 'TCP with a hop-by-hop header (general path at XDP)', service: 'web6', port: 8080, open: syn(53002), later: [syn(53002, { tcpFlags: ACK, ext: [{ type: 0 }] })] },
    { name: 'UDP', service: 'dns6', port: 5353, open: { saddr: CLIENT, daddr: VIP, proto: 'udp', sport: 53100, dport: 53, payload: Buffer.from('query') }, later: [{ saddr: CLIENT, daddr: VIP, proto: 'udp', sport: 53100, dport: 53, payload: Buffer.from('second query') }] },
  ];
  for (const c of cases) {
    const backend = parsePacket6(send('xdp', buildPacket6(c.open)).out).daddr;
    t.is(backend, maglevPick(c.service, c.open), `${c.name}: the opening packet`);
    const reply: Packet6Spec = { ...c.later[0]!, ext: [], saddr: backend, daddr: CLIENT, sport: c.port, dport: c.open.sport!, ...(c.open.proto === 'tcp' ? { tcpFlags: ACK } : {}) };
    const ids = lb.ids(c.service);
    const beId = ids.backends.get(`[${backend}]:${c.port}`)!;
    // Twice each: the first packet of a flow's direction may move its state (general path).
    for (const spec of [...c.later, reply, ...c.later, reply]) {
      const frame = buildPacket6(spec);
      const what = `${c.name}, ${spec === reply ? 'reply' : 'forward'}`;
      const outs = (['xdp', 'tc'] as const).map((prog) => {
        const svc = dp.serviceStats(ids.service);
        const be = dp.backendStats(beId);
        const r = send(prog, frame);
        t.is(r.verdict, pass[prog], `${what}: ${prog} verdict`);
        return { ...r, svc: statsDelta(svc, dp.serviceStats(ids.service)), be: statsDelta(be, dp.backendStats(beId)) };
      });
      const [x, k] = outs as [typeof outs[0], typeof outs[0]];
      t.true(x.out.equals(k.out), `${what}: XDP and tc frames differ`);
      t.deepEqual(x.global, k.global, `${what}: global counters`);
      t.deepEqual(x.svc, k.svc, `${what}: service counters`);
      t.deepEqual(x.be, k.be, `${what}: backend counters`);
      if (spec === reply) {
        const o = parsePacket6(x.out);
        t.deepEqual([o.saddr, o.sport, o.daddr, o.dport], [VIP, c.open.dport, CLIENT, c.open.sport], `${what}: restored`);
        t.true(o.l4ChecksumOk, `${what}: checksum`);
        t.deepEqual(x.global, { rx_packets: 1, replies: 1, forwarded_stack: 1 });
      } else {
        assertDnat(t, frame, x.out, backend, c.port, `${what}:`);
        t.deepEqual(x.global, { rx_packets: 1, forwarded_stack: 1 });
        t.deepEqual(x.svc, { packets: 1, bytes: frame.length - 14, newConnections: 0, replyPackets: 0 });
      }
    }
  }

  // A UDP checksum that the DNAT makes 0 goes out as 0xffff, at both.
  const open: Packet6Spec = { saddr: CLIENT, daddr: VIP, proto: 'udp', sport: 53200, dport: 53, payload: Buffer.from('open') };
  const backend = parsePacket6(send('xdp', buildPacket6(open)).out).daddr;
  let want: Buffer | undefined;
  let payload = Buffer.alloc(2);
  for (let w = 0; w < 0x10000 && !want; w++) {
    payload = Buffer.from([w >> 8, w & 0xff]);
    const f = buildPacket6({ ...open, daddr: backend, dport: 5353, payload });
    if (parsePacket6(f).l4Checksum === 0xffff) want = f;
  }
  t.truthy(want, 'some payload makes the rewritten checksum compute to 0');
  const frame = buildPacket6({ ...open, payload });
  for (const prog of ['xdp', 'tc'] as const) {
    // Sent twice: the fast path takes the second at XDP.
    for (let i = 0; i < 2; i++) {
      const r = send(prog, frame);
      t.true(r.out.equals(want!), `${prog}: a computed 0 UDP checksum must be sent as 0xffff`);
    }
  }
});

test.serial('FIB forwarding of IPv6: next hop\'s MACs, hop limit decremented (no checksum to fix); hop limit 1 goes to the stack', async (t) => {
  const ns = ownNamespace(t);
  const ip = (...a: string[]): string => execFileSync('ip', a, { encoding: 'utf8' });
  ip('-n', 'sl-own6-' + process.pid, '-6', 'neigh', 'add', 'fd09::77', 'lladdr', '02:00:00:00:09:77', 'dev', 'own0', 'nud', 'permanent');
  const [link] = JSON.parse(ip('-n', 'sl-own6-' + process.pid, '-j', 'link', 'show', 'own0')) as Array<{ address: string }>;
  const fib = await NativeDataplane.open({ fibRedirect: true, capacity: { conntrack: 1024, conntrack6: 1024, maglevSlots: 65536 } });
  t.teardown(() => fib.close());
  const routed: ServiceSpec = { name: 'routed6', address: 'fd96::60', port: 80, protocol: 'tcp', backends: [{ address: 'fd09::77', port: 8080 }] };
  await new LoadBalancer(fib).applyMany([routed]);
  const opts = { ingressIfindex: ns.ifindex, netnsPath: ns.path };
  // XDP only: a tc test run sets the skb's device, not its ingress
  // interface, which sluice_tc6 takes for egress (rewritten in place, no
  // redirect); its FIB path is the end-to-end tests'.
  for (const prog of ['xdp'] as const) {
    const sport = 54001;
    const frame = buildPacket6(syn(sport, { daddr: routed.address }));
    const before = fib.globalStats();
    const r = fib.raw.testRun(prog, frame, opts);
    t.is(r.retval, XDP_TX, `${prog}: sent out of the interface it came in by`);
    const want = buildPacket6(syn(sport, { daddr: 'fd09::77', dport: 8080, hopLimit: 63, srcMac: link!.address, dstMac: '02:00:00:00:09:77' }));
    t.true(r.data.equals(want), `${prog}: got ${r.data.toString('hex')}\n want ${want.toString('hex')}`);
    t.deepEqual(globalDelta(before, fib.globalStats()), { rx_packets: 1, forwarded: 1 });
    // The established flow's next packet: XDP's fast path forwards it alike.
    const ack = buildPacket6(syn(sport, { daddr: routed.address, tcpFlags: ACK }));
    for (let i = 0; i < 2; i++) {
      const a = fib.raw.testRun(prog, ack, opts);
      t.true(a.data.equals(buildPacket6(syn(sport, { daddr: 'fd09::77', dport: 8080, hopLimit: 63, tcpFlags: ACK, srcMac: link!.address, dstMac: '02:00:00:00:09:77' }))), `${prog}: established packet ${i}`);
    }
    // Hop limit 1: rewritten, but to the stack, which answers time exceeded.
    const last = buildPacket6(syn(sport + 10, { daddr: routed.address, hopLimit: 1 }));
    const h = fib.raw.testRun(prog, last, opts);
    t.is(h.retval, XDP_PASS);
    t.is(parsePacket6(h.data).hopLimit, 1, 'the hop limit is the stack\'s to judge');
    t.is(parsePacket6(h.data).daddr, 'fd09::77');
  }
});
