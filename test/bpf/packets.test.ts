/**
 * Packet tables through BPF_PROG_TEST_RUN: each row sets up services, sends
 * one frame through the real program in the kernel, and checks the verdict,
 * the frame that came out and the counters that moved.
 *
 * The dataplane is loaded with fibRedirect off, so a rewritten packet's
 * verdict is "to the stack" (XDP_PASS / TC_ACT_OK) and does not depend on
 * the routes of the machine the test runs on; forwarding by FIB lookup is
 * covered end to end in test/e2e.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import type { ExecutionContext } from 'ava';
import { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { LoadBalancer } from '../../src/lb/load-balancer.js';
import {
  encodeAffinityKey,
  encodeAffinityValue,
  type GlobalCounter,
} from '../../src/dataplane/codec.js';
import { globalDelta, statsDelta } from '../helpers/test-run.js';
import { flowHash, maglevSlot } from '../../src/maglev/flow-hash.js';
import type { ServiceSpec } from '../../src/model/service.js';
import {
  TC_ACT_OK,
  TC_ACT_REDIRECT,
  TC_ACT_SHOT,
  XDP_DROP,
  XDP_PASS,
  XDP_TX,
  buildPacket,
  checksumsOk,
  onesSum,
  parsePacket,
  portUnreachableFor,
  rstFor,
  type PacketSpec,
} from '../helpers/packet.js';
import { native } from '../../src/dataplane/native.js';
import { conntrackEntries, deleteConntrackWhere } from '../helpers/conntrack.js';

const VIP = '10.96.0.10';
const CLIENT = '192.168.50.7';
const BACKENDS = ['10.1.0.11', '10.1.0.12', '10.1.0.13', '10.1.0.14'];

const web: ServiceSpec = {
  name: 'web',
  address: VIP,
  port: 80,
  protocol: 'tcp',
  backends: BACKENDS.map((address) => ({ address, port: 8080 })),
};
const dns: ServiceSpec = {
  name: 'dns',
  address: VIP,
  port: 53,
  protocol: 'udp',
  backends: BACKENDS.slice(0, 2).map((address) => ({ address, port: 5353 })),
};
const sticky: ServiceSpec = {
  name: 'sticky',
  address: '10.96.0.20',
  port: 443,
  protocol: 'tcp',
  backends: BACKENDS.map((address) => ({ address, port: 8443 })),
  sessionAffinity: { timeoutSeconds: 30 },
};
const empty: ServiceSpec = {
  name: 'empty',
  address: '10.96.0.30',
  port: 80,
  protocol: 'tcp',
  backends: [],
};
const emptyDns: ServiceSpec = { ...empty, name: 'empty-dns', port: 53, protocol: 'udp' };
/* Without backends too, but set to drop their packets rather than answer them. */
const dropper: ServiceSpec = { ...empty, name: 'dropper', address: '10.96.0.31', noBackends: 'drop' };
const dropperDns: ServiceSpec = { ...emptyDns, name: 'dropper-dns', address: '10.96.0.31', noBackends: 'drop' };

let dp: NativeDataplane;
let lb: LoadBalancer;

test.before(async () => {
  dp = await NativeDataplane.open({ fibRedirect: false, capacity: { conntrack: 65536 } });
  lb = new LoadBalancer(dp);
  for (const s of [web, dns, sticky, empty, emptyDns, dropper, dropperDns]) await lb.apply(s);
});

test.after.always(() => {
  dp?.close();
});

/** The backend Maglev picks for a tuple, computed in user space from the table in the kernel. */
function maglevPick(name: string, p: Pick<PacketSpec, 'saddr' | 'daddr' | 'sport' | 'dport' | 'proto'>): string {
  const ids = lb.ids(name);
  const table = dp.getMaglevTable(ids.service);
  if (!table) throw new Error(`no Maglev table for ${name}`);
  const slot = maglevSlot(flowHash(p.saddr, p.daddr, p.sport, p.dport, p.proto === 'tcp' ? 6 : 17), table.length);
  const id = table[slot];
  for (const [ident, bid] of ids.backends) if (bid === id) return ident.split(':')[0]!;
  throw new Error(`slot ${slot} holds unknown backend id ${id}`);
}

interface Sent {
  verdict: number;
  out: Buffer;
  global: Partial<Record<GlobalCounter, number>>;
}

function send(prog: 'xdp' | 'tc', frame: Buffer): Sent {
  const before = dp.globalStats();
  const r = dp.raw.testRun(prog, frame);
  return { verdict: r.retval, out: r.data, global: globalDelta(before, dp.globalStats()) };
}

/** Assert a frame was DNATed to `backend:port` with valid checksums and nothing else changed. */
function assertDnat(t: ExecutionContext, input: Buffer, out: Buffer, backend: string, port: number): void {
  const i = parsePacket(input);
  const o = parsePacket(out);
  t.is(o.daddr, backend, `dst IP was not rewritten to the expected backend: got ${o.daddr}, want ${backend}`);
  t.is(o.dport, port, `dst port: got ${o.dport}, want ${port}`);
  t.is(o.saddr, i.saddr, 'src IP must not change on the way in');
  t.is(o.sport, i.sport, 'src port must not change on the way in');
  t.true(o.ipChecksumOk, 'IP checksum invalid after DNAT');
  if (i.l4ChecksumOk === null) t.is(o.l4Checksum, 0, 'a UDP checksum of 0 must stay 0');
  else t.true(o.l4ChecksumOk === true, `L4 checksum invalid after DNAT (0x${o.l4Checksum.toString(16)})`);
  t.true(o.payload.equals(i.payload), 'payload changed');
  t.is(out.length, input.length, 'length changed');
}

const syn = (sport: number, extra: Partial<PacketSpec> = {}): PacketSpec => ({
  saddr: CLIENT, daddr: VIP, proto: 'tcp', sport, dport: 80, tcpFlags: { syn: true }, ...extra,
});

test.serial('SYN to a VIP: DNAT to the Maglev backend, checksums valid, counters move', (t) => {
  const spec = syn(40001);
  const frame = buildPacket(spec);
  const want = maglevPick('web', spec);
  const ids = lb.ids('web');
  const svcBefore = dp.serviceStats(ids.service);
  const beId = ids.backends.get(`${want}:8080`)!;
  const beBefore = dp.backendStats(beId);

  const r = send('xdp', frame);
  t.is(r.verdict, XDP_PASS, 'verdict');
  assertDnat(t, frame, r.out, want, 8080);
  t.deepEqual(r.global, { rx_packets: 1, forwarded_stack: 1 });
  t.deepEqual(statsDelta(svcBefore, dp.serviceStats(ids.service)),
    { packets: 1, bytes: frame.length - 14, newConnections: 1, replyPackets: 0 });
  t.deepEqual(statsDelta(beBefore, dp.backendStats(beId)),
    { packets: 1, bytes: frame.length - 14, newConnections: 1, replyPackets: 0 });
  const ct = conntrackEntries(dp).filter((e) => e.key.saddr === CLIENT && e.key.sport === 40001);
  t.is(ct.length, 1, 'one forward conntrack entry');
  t.is(ct[0]?.value.natAddress, want);
});

test.serial('spread: many client ports reach every backend, each as Maglev says', (t) => {
  const seen = new Map<string, number>();
  for (let p = 20000; p < 20400; p++) {
    const spec = syn(p);
    const r = send('xdp', buildPacket(spec));
    const o = parsePacket(r.out);
    t.is(o.daddr, maglevPick('web', spec), `port ${p}`);
    seen.set(o.daddr, (seen.get(o.daddr) ?? 0) + 1);
  }
  t.deepEqual([...seen.keys()].sort(), [...BACKENDS].sort(), 'every backend gets flows');
  for (const [b, n] of seen) t.true(n > 60, `backend ${b} got only ${n} of 400 flows`);
});

test.serial('established flow keeps its backend after the backend set changes; drained keeps, deleted loses', async (t) => {
  const spec = syn(41000);
  const first = parsePacket(send('xdp', buildPacket(spec)).out).daddr;
  const ack: PacketSpec = { ...spec, tcpFlags: { ack: true, psh: true }, payload: Buffer.from('GET / HTTP/1.1\r\n') };

  // Add a backend: Maglev moves some slots, conntrack keeps this flow.
  await lb.apply({ ...web, backends: [...web.backends, { address: '10.1.0.15', port: 8080 }] });
  let r = send('xdp', buildPacket(ack));
  assertDnat(t, buildPacket(ack), r.out, first, 8080);
  t.is(r.global.affinity_hits, undefined);

  // Drain its backend: the flow stays, a new flow never lands there, and a
  // fresh SYN reusing the tuple is moved off it.
  await lb.setBackendState('web', first, 8080, 'draining');
  r = send('xdp', buildPacket(ack));
  assertDnat(t, buildPacket(ack), r.out, first, 8080);
  for (let p = 30000; p < 30200; p++) {
    const o = parsePacket(send('xdp', buildPacket(syn(p))).out);
    t.not(o.daddr, first, `new flow from port ${p} went to the draining backend`);
  }
  r = send('xdp', buildPacket(spec));
  t.not(parsePacket(r.out).daddr, first, 'a new SYN on the old tuple went to the draining backend');
  t.is(r.global.ct_rescheduled, 1);

  // Put it back, pin the flow to it again, then delete it: the flow moves.
  await lb.setBackendState('web', first, 8080, 'active');
  deleteConntrackWhere(dp, (e) => e.key.sport === 41000 || e.key.dport === 41000);
  const again = parsePacket(send('xdp', buildPacket(spec)).out).daddr;
  await lb.removeBackend('web', again, 8080);
  r = send('xdp', buildPacket(ack));
  const moved = parsePacket(r.out).daddr;
  t.not(moved, again, 'a flow to a deleted backend must be rescheduled');
  t.true(BACKENDS.concat('10.1.0.15').includes(moved));
  t.is(r.global.ct_rescheduled, 1, 'rescheduling is counted');
  assertDnat(t, buildPacket(ack), r.out, moved, 8080);

  await lb.apply(web); // restore for later rows
});

test.serial('a conntrack entry is only good while its backend id still belongs to its service', async (t) => {
  const spec = syn(41500);
  const backend = parsePacket(send('xdp', buildPacket(spec)).out).daddr;
  const ack: PacketSpec = { ...spec, tcpFlags: { ack: true, psh: true } };
  const entry = conntrackEntries(dp).find((e) => e.key.sport === 41500 && e.value.dir === 0);
  t.truthy(entry, 'the SYN made a forward entry under its own tuple');
  const id = entry!.value.backendId;
  const be = dp.listBackends().get(id)!;
  t.is(be.address, backend);
  t.is(be.serviceId, entry!.value.serviceId, 'the control plane writes the owning service into the backend');

  let r = send('xdp', buildPacket(ack));
  t.is(r.global.ct_rescheduled, undefined, 'an established flow: a conntrack hit, nothing rescheduled');
  // The same id, the same address and port, but another service's now (what
  // recycled ids could produce): the entry must not be trusted.
  dp.putBackend(id, { ...be, serviceId: be.serviceId + 1000 });
  try {
    r = send('xdp', buildPacket(ack));
    t.is(r.global.ct_rescheduled, 1, 'the stale entry is rescheduled, not followed');
  } finally {
    dp.putBackend(id, be);
  }
});

test.serial('reply path: backend -> client is restored to VIP:port with valid checksums', (t) => {
  const spec = syn(42000);
  const backend = parsePacket(send('xdp', buildPacket(spec)).out).daddr;
  const reply: PacketSpec = {
    saddr: backend, daddr: CLIENT, proto: 'tcp', sport: 8080, dport: 42000, tcpFlags: { syn: true, ack: true },
  };
  const frame = buildPacket(reply);
  const ids = lb.ids('web');
  const before = dp.serviceStats(ids.service);
  const r = send('xdp', frame);
  t.is(r.verdict, XDP_PASS);
  const o = parsePacket(r.out);
  t.is(o.saddr, VIP, `src IP was not restored: got ${o.saddr}, want ${VIP}`);
  t.is(o.sport, 80, 'src port restored');
  t.is(o.daddr, CLIENT);
  t.is(o.dport, 42000);
  t.true(o.ipChecksumOk, 'IP checksum');
  t.true(o.l4ChecksumOk === true, 'TCP checksum');
  t.deepEqual(r.global, { rx_packets: 1, replies: 1, forwarded_stack: 1 });
  t.is(statsDelta(before, dp.serviceStats(ids.service)).replyPackets, 1);

  // A SYN from the backend's service port opens a connection of its own:
  // not a reply, not ours.
  const own = buildPacket({ ...reply, dport: 42999, tcpFlags: { syn: true } });
  const s = send('xdp', own);
  t.is(s.verdict, XDP_PASS);
  t.true(s.out.equals(own), 'a SYN from a backend must be untouched');
  t.deepEqual(s.global, { rx_packets: 1, passed_other: 1 });
});

for (const prog of ['xdp', 'tc'] as const) {
  test.serial(`${prog}: a reply of a flow another node placed is restored statelessly, and the flow tracked`, (t) => {
    const cport = prog === 'xdp' ? 43001 : 43002;
    const backend = BACKENDS[2]!;
    const key = { saddr: CLIENT, daddr: VIP, sport: cport, dport: 80, protocol: 'tcp' as const };
    t.is(dp.getConntrack(key), null, 'this node has never seen the flow');
    const reply: PacketSpec = {
      saddr: backend, daddr: CLIENT, proto: 'tcp', sport: 8080, dport: cport, tcpFlags: { ack: true }, payload: Buffer.from('hello'),
    };
    const r = send(prog, buildPacket(reply));
    t.is(r.verdict, prog === 'xdp' ? XDP_PASS : TC_ACT_OK);
    const o = parsePacket(r.out);
    t.is(`${o.saddr}:${o.sport}`, `${VIP}:80`, 'restored to the VIP and service port');
    t.is(`${o.daddr}:${o.dport}`, `${CLIENT}:${cport}`);
    t.true(o.ipChecksumOk, 'IP checksum');
    t.true(o.l4ChecksumOk === true, 'TCP checksum');
    t.deepEqual(r.global, { rx_packets: 1, replies: 1, reply_restored: 1, forwarded_stack: 1 });

    // Both entries are in conntrack now: the client's next packet arriving
    // here keeps the backend the flow has, whatever Maglev would pick.
    const fwd = dp.getConntrack(key);
    t.truthy(fwd, 'a forward entry was learnt from the reply');
    t.is(`${fwd?.natAddress}:${fwd?.natPort}`, `${backend}:8080`);
    const next = send(prog, buildPacket({ saddr: CLIENT, daddr: VIP, proto: 'tcp', sport: cport, dport: 80, tcpFlags: { ack: true } }));
    t.is(parsePacket(next.out).daddr, backend);
    t.is(next.global.ct_rescheduled, undefined);
    // And the flow's next reply is a conntrack hit.
    const again = send(prog, buildPacket(reply));
    t.deepEqual(again.global, { rx_packets: 1, replies: 1, forwarded_stack: 1 });
  });
}

/**
 * A namespace whose routes the programs ask (the test run enters it): a
 * veth pair with 10.244.9.1/24 on own0, and forwarding on, as on a load
 * balancer. 10.244.9.1 is the node's own address; 10.244.9.77 is routed.
 */
function ownNamespace(t: ExecutionContext): { path: string; ifindex: number } {
  const ns = `sl-own-${process.pid}`;
  const ip = (...a: string[]) => execFileSync('ip', a, { encoding: 'utf8' });
  ip('netns', 'add', ns);
  t.teardown(() => ip('netns', 'del', ns));
  ip('-n', ns, 'link', 'add', 'own0', 'type', 'veth', 'peer', 'name', 'own1');
  ip('-n', ns, 'link', 'set', 'own0', 'up');
  ip('-n', ns, 'link', 'set', 'own1', 'up');
  ip('-n', ns, 'addr', 'add', '10.244.9.1/24', 'dev', 'own0');
  execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  const [link] = JSON.parse(ip('-n', ns, '-j', 'link', 'show', 'own0')) as Array<{ ifindex: number }>;
  return { path: `/var/run/netns/${ns}`, ifindex: link!.ifindex };
}

for (const prog of ['xdp', 'tc'] as const) {
  test.serial(`${prog}: a backend's answer to the node's own connection passes untouched; one to a routed client is restored`, (t) => {
    const ns = ownNamespace(t);
    const backend = BACKENDS[1]!;
    const run = (daddr: string, dport: number): Sent => {
      const before = dp.globalStats();
      const r = dp.raw.testRun(prog, buildPacket({ saddr: backend, daddr, proto: 'tcp', sport: 8080, dport, tcpFlags: { syn: true, ack: true } }), { ingressIfindex: ns.ifindex, netnsPath: ns.path });
      return { verdict: r.retval, out: r.data, global: globalDelta(before, dp.globalStats()) };
    };
    // A health probe's SYN-ACK: from the endpoint to the node's own address.
    const cport = prog === 'xdp' ? 44001 : 44002;
    const own = buildPacket({ saddr: backend, daddr: '10.244.9.1', proto: 'tcp', sport: 8080, dport: cport, tcpFlags: { syn: true, ack: true } });
    const probe = run('10.244.9.1', cport);
    t.is(probe.verdict, prog === 'xdp' ? XDP_PASS : TC_ACT_OK);
    t.true(probe.out.equals(own), `the answer to the node's own connection was rewritten: src ${parsePacket(probe.out).saddr}:${parsePacket(probe.out).sport}, want ${backend}:8080`);
    t.deepEqual(probe.global, { rx_packets: 1, passed_other: 1 });
    t.is(dp.getConntrack({ saddr: backend, daddr: '10.244.9.1', sport: 8080, dport: cport, protocol: 'tcp' }), null, 'and not tracked');
    // The same answer to a client the node routes is a reply of a flow placed elsewhere.
    const routed = run('10.244.9.77', cport);
    t.is(`${parsePacket(routed.out).saddr}:${parsePacket(routed.out).sport}`, `${VIP}:80`, 'restored to the VIP and service port');
    t.is(routed.global.reply_restored, 1);
  });
}

test.serial('a mid-flow packet of a flow this node never saw goes where Maglev says, and is tracked from then on', (t) => {
  // What a node gets when the router moves a flow to it: an ACK, no SYN.
  const mid: PacketSpec = { saddr: CLIENT, daddr: VIP, proto: 'tcp', sport: 43300, dport: 80, tcpFlags: { ack: true }, payload: Buffer.from('GET / HTTP/1.1') };
  const key = { saddr: CLIENT, daddr: VIP, sport: 43300, dport: 80, protocol: 'tcp' as const };
  t.is(dp.getConntrack(key), null);
  const r = send('xdp', buildPacket(mid));
  const want = maglevPick('web', mid);
  t.is(parsePacket(r.out).daddr, want, 'the backend Maglev picks, as on the node that saw the SYN');
  t.deepEqual(r.global, { rx_packets: 1, forwarded_stack: 1 });
  t.is(dp.getConntrack(key)?.natAddress, want, 'tracked');
  t.truthy(dp.getConntrack({ saddr: want, daddr: CLIENT, sport: 8080, dport: 43300, protocol: 'tcp' }), 'with its reply entry');
});

test.serial('an endpoint behind two service ports: its replies without an entry pass, counted', async (t) => {
  // "web-alt" sends VIP2:8000 to the same backends' port 8080 as "web".
  const alt: ServiceSpec = { ...web, name: 'web-alt', address: '10.96.0.40', port: 8000, backends: web.backends.map((b) => ({ ...b })) };
  await lb.apply(alt);
  try {
    const frame = buildPacket({ saddr: BACKENDS[0]!, daddr: CLIENT, proto: 'tcp', sport: 8080, dport: 43100, tcpFlags: { ack: true } });
    const r = send('xdp', frame);
    t.is(r.verdict, XDP_PASS);
    t.true(r.out.equals(frame), 'which VIP the flow used cannot be known: untouched');
    t.deepEqual(r.global, { rx_packets: 1, passed_other: 1, reply_ambiguous: 1 });
  } finally {
    await lb.delete('web-alt');
  }
  // Unique again once web-alt is gone.
  const r = send('xdp', buildPacket({ saddr: BACKENDS[0]!, daddr: CLIENT, proto: 'tcp', sport: 8080, dport: 43101, tcpFlags: { ack: true } }));
  t.is(parsePacket(r.out).saddr, VIP);
  t.is(r.global.reply_restored, 1);
});

test.serial('with statelessReplies off, a reply without an entry passes untouched', async (t) => {
  const off = await NativeDataplane.open({ fibRedirect: false, statelessReplies: false, capacity: { conntrack: 1024 } });
  try {
    await new LoadBalancer(off).apply(web);
    const frame = buildPacket({ saddr: BACKENDS[1]!, daddr: CLIENT, proto: 'tcp', sport: 8080, dport: 43200, tcpFlags: { ack: true } });
    t.is(off.listReplies().size, BACKENDS.length, 'reply_nat is kept all the same');
    const before = off.globalStats();
    const r = off.raw.testRun('xdp', frame);
    t.true(r.data.equals(frame));
    t.deepEqual(globalDelta(before, off.globalStats()), { rx_packets: 1, passed_other: 1 });
  } finally {
    off.close();
  }
});

test.serial('ClientIP affinity: one backend across source ports, Maglev again after the timeout', (t) => {
  const base = { saddr: '192.168.60.1', daddr: sticky.address, proto: 'tcp' as const, dport: 443, tcpFlags: { syn: true } };
  const first = parsePacket(send('xdp', buildPacket({ ...base, sport: 1000 })).out).daddr;
  t.is(first, maglevPick('sticky', { ...base, sport: 1000 }), 'the first flow is placed by Maglev');
  let hits = 0;
  let maglevWouldDiffer = 0;
  for (let p = 1001; p < 1050; p++) {
    const r = send('xdp', buildPacket({ ...base, sport: p }));
    t.is(parsePacket(r.out).daddr, first, `source port ${p} left the affinity backend`);
    hits += r.global.affinity_hits ?? 0;
    if (maglevPick('sticky', { ...base, sport: p }) !== first) maglevWouldDiffer++;
  }
  t.is(hits, 49, 'each new flow is an affinity hit');
  t.true(maglevWouldDiffer > 10, 'the test must use ports Maglev alone would spread');

  // Expire the entry: a last use far in the past (the kernel's clock is CLOCK_MONOTONIC).
  const svcId = lb.ids('sticky').service;
  const bid = lb.ids('sticky').backends.get(`${first}:8443`)!;
  dp.raw.mapUpdate('affinity', encodeAffinityKey(base.saddr, svcId), encodeAffinityValue({ backendId: bid, lastSeenNs: 1n }));
  let p = 2000;
  while (maglevPick('sticky', { ...base, sport: p }) === first) p++;
  const r = send('xdp', buildPacket({ ...base, sport: p }));
  t.is(parsePacket(r.out).daddr, maglevPick('sticky', { ...base, sport: p }), 'after the timeout Maglev chooses again');
  t.is(r.global.affinity_hits, undefined, 'an expired entry is not a hit');
  // ... and the new choice is sticky in turn.
  const next = send('xdp', buildPacket({ ...base, sport: p + 5000 }));
  t.is(parsePacket(next.out).daddr, parsePacket(r.out).daddr);
  t.is(next.global.affinity_hits, 1);
});

test.serial('non-service traffic passes untouched', (t) => {
  for (const spec of [
    { saddr: CLIENT, daddr: '10.9.9.9', proto: 'tcp' as const, sport: 5555, dport: 80 },
    { saddr: CLIENT, daddr: '10.9.9.9', proto: 'udp' as const, sport: 5555, dport: 53 },
  ]) {
    const frame = buildPacket(spec);
    const r = send('xdp', frame);
    t.is(r.verdict, XDP_PASS);
    t.true(r.out.equals(frame), `${spec.proto} frame changed`);
    t.deepEqual(r.global, { rx_packets: 1, passed_other: 1 });
  }
});

test.serial('UDP with a checksum is rewritten with a valid one; a zero checksum stays zero', (t) => {
  for (const udpChecksum of [true, false]) {
    const spec: PacketSpec = { saddr: CLIENT, daddr: VIP, proto: 'udp', sport: 7000 + Number(udpChecksum), dport: 53, udpChecksum, payload: Buffer.from('query') };
    const frame = buildPacket(spec);
    const r = send('xdp', frame);
    t.is(r.verdict, XDP_PASS);
    assertDnat(t, frame, r.out, maglevPick('dns', spec), 5353);
    if (!udpChecksum) t.is(parsePacket(r.out).l4Checksum, 0, 'zero UDP checksum stays zero');
  }
});

test.serial('IP options: L4 found past them, rewrite correct, options kept', (t) => {
  const options = Buffer.from([0x01, 0x01, 0x01, 0x00, 0x07, 0x07, 0x04, 0x00]); // NOP NOP NOP EOL | RR (empty)
  const spec = syn(43000, { ipOptions: options });
  const frame = buildPacket(spec);
  const r = send('xdp', frame);
  t.is(r.verdict, XDP_PASS);
  assertDnat(t, frame, r.out, maglevPick('web', spec), 8080);
  t.true(r.out.subarray(34, 42).equals(options), 'IP options changed');
});

test.serial('truncated and malformed headers: dropped and counted to a VIP, passed otherwise, never rewritten', (t) => {
  const full = buildPacket(syn(44000));
  const cases: Array<{ name: string; frame: Buffer; verdict: number; global: Partial<Record<GlobalCounter, number>> }> = [
    { name: 'Ethernet header only (the kernel refuses shorter test frames)', frame: full.subarray(0, 14), verdict: XDP_PASS, global: { rx_packets: 1, passed_malformed: 1 } },
    { name: 'IPv4 header cut short', frame: full.subarray(0, 14 + 12), verdict: XDP_PASS, global: { rx_packets: 1, passed_malformed: 1 } },
    { name: 'TCP header cut short, to a VIP', frame: full.subarray(0, 14 + 20 + 10), verdict: XDP_DROP, global: { rx_packets: 1, drop_malformed: 1 } },
    {
      name: 'TCP header cut short, not to a VIP',
      frame: buildPacket({ ...syn(44001), daddr: '10.9.9.9' }).subarray(0, 14 + 20 + 10),
      verdict: XDP_PASS,
      global: { rx_packets: 1, passed_malformed: 1 },
    },
    {
      name: 'IHL below 5, to a VIP',
      frame: (() => { const f = Buffer.from(full); f[14] = 0x44; return f; })(),
      verdict: XDP_DROP,
      global: { rx_packets: 1, drop_malformed: 1 },
    },
    {
      name: 'IHL below 5, not to a VIP',
      frame: (() => { const f = buildPacket({ ...syn(44002), daddr: '10.9.9.9' }); f[14] = 0x44; return f; })(),
      verdict: XDP_PASS,
      global: { rx_packets: 1, passed_malformed: 1 },
    },
    {
      name: 'TCP data offset below 5, to a VIP',
      frame: (() => { const f = Buffer.from(full); f[14 + 20 + 12] = 0x40; return f; })(),
      verdict: XDP_DROP,
      global: { rx_packets: 1, drop_malformed: 1 },
    },
  ];
  for (const c of cases) {
    const r = send('xdp', c.frame);
    t.is(r.verdict, c.verdict, `${c.name}: verdict`);
    t.deepEqual(r.global, c.global, `${c.name}: counters`);
    if (c.verdict === XDP_PASS) t.true(r.out.equals(c.frame), `${c.name}: frame was modified`);
  }
});

/** `frame` with its IPv4 total length (or, with `at`, another 16-bit field) set, and the IPv4 checksum made right again. */
function withField(frame: Buffer, value: number, at = 14 + 2): Buffer {
  const f = Buffer.from(frame);
  f.writeUInt16BE(value, at);
  f.writeUInt16BE(0, 14 + 10);
  f.writeUInt16BE(~onesSum(f.subarray(14, 14 + (f[14]! & 0xf) * 4)) & 0xffff, 14 + 10);
  return f;
}

for (const prog of ['xdp', 'tc'] as const) {
  test.serial(`${prog}: lengths are checked as the kernel checks them; a packet whose lengths do not add up is never rewritten`, (t) => {
    const drop = prog === 'xdp' ? XDP_DROP : TC_ACT_SHOT;
    const pass = prog === 'xdp' ? XDP_PASS : TC_ACT_OK;
    const tcp = buildPacket(syn(44100, { payload: Buffer.from('hello') }));
    const udp = buildPacket({ saddr: CLIENT, daddr: VIP, proto: 'udp', sport: 44101, dport: 53, payload: Buffer.from('query') });
    const elsewhere = buildPacket({ ...syn(44102), daddr: '10.9.9.9' });
    const udpLen = 14 + 20 + 4;
    // The reviewer's frame: a SYN to 10.96.0.10:80 with total length 0, rewritten before.
    const zero = Buffer.from('0200000000020200000000010800450000000000000040067ddfc0a832070a60000aa028005000000000000000005002000012510000', 'hex');
    const malformed = { rx_packets: 1, drop_malformed: 1 };
    const cases: Array<[string, Buffer, number, Partial<Record<GlobalCounter, number>>]> = [
      ['total length 0 (the reviewer\'s frame)', zero, drop, malformed],
      ['total length below the header', withField(tcp, 19), drop, malformed],
      ['total length 65,535 on a short frame', withField(tcp, 65535), drop, malformed],
      ['total length one byte beyond the frame', withField(tcp, tcp.length - 14 + 1), drop, malformed],
      ['total length beyond the frame, not to a VIP', withField(elsewhere, 65535), pass, { rx_packets: 1, passed_malformed: 1 }],
      ['TCP data offset beyond the total length', (() => { const f = Buffer.from(tcp); f[14 + 20 + 12] = 0xf0; return f; })(), drop, malformed],
      ['UDP length 0', withField(udp, 0, udpLen), drop, malformed],
      ['UDP length below its header', withField(udp, 7, udpLen), drop, malformed],
      ['UDP length beyond the total length', withField(udp, udp.length - 34 + 1, udpLen), drop, malformed],
    ];
    for (const [name, frame, verdict, global] of cases) {
      const r = send(prog, frame);
      t.is(r.verdict, verdict, `${name}: verdict`);
      t.deepEqual(r.global, global, `${name}: counters`);
      if (verdict === pass) t.true(r.out.equals(frame), `${name}: frame was modified`);
    }

    // Ethernet padding past the total length is no error: rewritten, and
    // the byte counters grow by the IPv4 length, not the frame's.
    const before = lb.stats('web');
    const padded = Buffer.concat([buildPacket(syn(44103)), Buffer.alloc(6)]);
    const r = send(prog, padded);
    t.not(r.verdict, drop, 'a padded frame is forwarded');
    t.deepEqual(r.global.rx_packets, 1);
    const ipLen = padded.readUInt16BE(14 + 2);
    t.is(Number(lb.stats('web').bytes - before.bytes), ipLen, 'bytes counted are the IPv4 total length');
  });
}

/* Fragmented datagrams in full: test/bpf/icmp-frag.test.ts. */
test.serial('a first fragment to a VIP is balanced; a later one without it is dropped and counted; others pass', (t) => {
  const cases: Array<[string, PacketSpec, number, Partial<Record<GlobalCounter, number>>]> = [
    ['first fragment (MF) to a VIP', syn(45000, { moreFragments: true }), XDP_PASS, { rx_packets: 1, forwarded_stack: 1 }],
    ['later fragment to a VIP, its first never seen', syn(45001, { fragOffset: 185, ipId: 0x4501 }), XDP_DROP, { rx_packets: 1, drop_fragment: 1 }],
    ['fragment elsewhere', syn(45002, { moreFragments: true, daddr: '10.9.9.9', ipId: 0x4502 }), XDP_PASS, { rx_packets: 1, passed_other: 1 }],
  ];
  for (const [name, spec, verdict, global] of cases) {
    const frame = buildPacket(spec);
    const r = send('xdp', frame);
    t.is(r.verdict, verdict, name);
    t.deepEqual(r.global, global, name);
    if (name === 'first fragment (MF) to a VIP') assertDnat(t, frame, r.out, maglevPick('web', spec), 8080);
    else if (verdict === XDP_PASS) t.true(r.out.equals(frame), `${name}: modified`);
  }
});

test.serial('a VIP on an undefined port is dropped, not answered, and counted', (t) => {
  for (const prog of ['xdp', 'tc'] as const) {
    const drop = prog === 'xdp' ? XDP_DROP : TC_ACT_SHOT;
    let r = send(prog, buildPacket(syn(46000, { dport: 81 })));
    t.is(r.verdict, drop, `${prog}: SYN to a port no service has`);
    t.deepEqual(r.global, { rx_packets: 1, drop_no_service: 1 });
    r = send(prog, buildPacket({ saddr: CLIENT, daddr: VIP, proto: 'udp', sport: 46001, dport: 80 }));
    t.is(r.verdict, drop, `${prog}: TCP-only port, UDP packet`);
    t.deepEqual(r.global, { rx_packets: 1, drop_no_service: 1 });
  }
});

/*
 * A service without a usable backend answers what it can, so that clients
 * fail at once: a SYN with a RST, a UDP datagram with ICMP port
 * unreachable, each compared byte for byte with the answer built from
 * scratch in test/helpers/packet.ts (addresses, ports and MACs swapped,
 * sequence numbers, the quote, every checksum).
 */
const answerOf = { xdp: XDP_TX, tc: TC_ACT_REDIRECT } as const;
const dropOf = { xdp: XDP_DROP, tc: TC_ACT_SHOT } as const;
const noPayload = Buffer.alloc(0);

/** Check one answer: the verdict, the frame against `want`, its checksums summed here, the counters. */
function assertAnswer(t: ExecutionContext, prog: 'xdp' | 'tc', what: string, r: Sent, want: Buffer, counter: 'reject_tcp_rst' | 'reject_icmp_unreach'): void {
  t.is(r.verdict, answerOf[prog], `${prog}: ${what}: verdict (sent back)`);
  const sums = checksumsOk(r.out);
  t.true(sums.ip, `${prog}: ${what}: IP checksum of the answer`);
  t.true(sums.l4, `${prog}: ${what}: ${counter === 'reject_tcp_rst' ? 'TCP' : 'ICMP'} checksum of the answer`);
  t.is(r.out.toString('hex'), want.toString('hex'), `${prog}: ${what}: the answer's bytes`);
  t.deepEqual(r.global, { rx_packets: 1, [counter]: 1 }, `${prog}: ${what}: counters`);
}

for (const prog of ['xdp', 'tc'] as const) {
  test.serial(`${prog}: a SYN to a service without backends is answered with a RST`, (t) => {
    const cases: Array<[string, PacketSpec]> = [
      ['a plain SYN', syn(46100, { daddr: empty.address, payload: noPayload })],
      ['a SYN with data and IP options (the RST has neither)', syn(46101, {
        daddr: empty.address, payload: Buffer.from('fast open'), ipOptions: Buffer.from([0x01, 0x01, 0x01, 0x00]),
      })],
      ['a SYN|FIN', syn(46102, { daddr: empty.address, payload: noPayload, tcpFlags: { syn: true, fin: true } })],
      ['a SYN with the largest sequence number (the acknowledgement wraps)', syn(46103, { daddr: empty.address, payload: noPayload, seq: 0xffffffff })],
    ];
    for (const [what, spec] of cases) {
      const frame = buildPacket(spec);
      const r = send(prog, frame);
      const want = rstFor(frame);
      assertAnswer(t, prog, what, r, want, 'reject_tcp_rst');
      const o = parsePacket(r.out);
      t.deepEqual([o.saddr, o.sport, o.daddr, o.dport], [empty.address, 80, CLIENT, spec.sport], `${prog}: ${what}: from the VIP and service port to the client`);
      t.is(r.out[14 + 20 + 13], 0x14, `${prog}: ${what}: flags RST|ACK`);
      t.is(r.out.readUInt32BE(14 + 20 + 4), 0, `${prog}: ${what}: sequence number 0`);
      const sent = frame.readUInt32BE(14 + (frame[14]! & 0xf) * 4 + 4);
      const extra = (spec.payload?.length ?? 0) + (spec.tcpFlags?.fin ? 1 : 0);
      t.is(r.out.readUInt32BE(14 + 20 + 8), (sent + 1 + extra) >>> 0, `${prog}: ${what}: acknowledges the SYN`);
      t.is(r.out.length, 54, `${prog}: ${what}: no options, no payload`);
    }
  });

  test.serial(`${prog}: a UDP datagram to a service without backends is answered with ICMP port unreachable`, (t) => {
    const dgram = (sport: number, extra: Partial<PacketSpec> = {}): PacketSpec => ({
      saddr: CLIENT, daddr: emptyDns.address, proto: 'udp', sport, dport: 53, ...extra,
    });
    const cases: Array<[string, PacketSpec, number]> = [
      ['a short datagram, quoted whole', dgram(46200, { payload: Buffer.from('query') }), 20 + 8 + 5],
      ['a long one, quoted to its first 64 bytes after the IP header', dgram(46201, { payload: Buffer.alloc(300, 0xab) }), 20 + 64],
      ['an odd length (the sum pads the last byte)', dgram(46202, { payload: Buffer.from('odd') }), 20 + 8 + 3],
      ['no UDP checksum', dgram(46203, { udpChecksum: false, payload: Buffer.from('x'.repeat(40)) }), 20 + 8 + 40],
      ['IP options, quoted with the header', dgram(46204, {
        ipOptions: Buffer.from([0x01, 0x01, 0x01, 0x00, 0x01, 0x01, 0x01, 0x00]), payload: Buffer.alloc(100, 7),
      }), 28 + 64],
      ['the longest quote: 40 bytes of options', dgram(46205, {
        ipOptions: Buffer.alloc(40, 0x01), payload: Buffer.alloc(100, 9),
      }), 60 + 64],
    ];
    for (const [what, spec, quoted] of cases) {
      const frame = buildPacket(spec);
      const r = send(prog, frame);
      const want = portUnreachableFor(frame);
      assertAnswer(t, prog, what, r, want, 'reject_icmp_unreach');
      t.is(r.out.length, 14 + 20 + 8 + quoted, `${prog}: ${what}: quote length`);
      t.deepEqual([...r.out.subarray(14 + 20, 14 + 20 + 2)], [3, 3], `${prog}: ${what}: destination unreachable, port unreachable`);
      t.true(r.out.subarray(14 + 28).equals(frame.subarray(14, 14 + quoted)), `${prog}: ${what}: the quote is the datagram's start, as sent`);
      const o = parsePacket(r.out);
      t.deepEqual([o.saddr, o.daddr, o.proto], [emptyDns.address, CLIENT, 1], `${prog}: ${what}: ICMP from the VIP to the client`);
    }
  });

  test.serial(`${prog}: what is not answered is dropped: not a SYN, a service set to drop, a fragment, group addresses`, (t) => {
    const tcp = (sport: number, extra: Partial<PacketSpec> = {}): PacketSpec => syn(sport, { daddr: empty.address, ...extra });
    const udp = (sport: number, extra: Partial<PacketSpec> = {}): PacketSpec => ({
      saddr: CLIENT, daddr: emptyDns.address, proto: 'udp', sport, dport: 53, ...extra,
    });
    const noBackend = { rx_packets: 1, drop_no_backend: 1 };
    const cases: Array<[string, PacketSpec, Partial<Record<GlobalCounter, number>>]> = [
      ['an ACK (a connection this service cannot have)', tcp(46300, { tcpFlags: { ack: true, psh: true } }), noBackend],
      ['a SYN|ACK', tcp(46301, { tcpFlags: { syn: true, ack: true } }), noBackend],
      ['a RST', tcp(46302, { tcpFlags: { rst: true } }), noBackend],
      ['a SYN|RST', tcp(46303, { tcpFlags: { syn: true, rst: true } }), noBackend],
      ['a FIN', tcp(46304, { tcpFlags: { fin: true, ack: true } }), noBackend],
      ['a SYN to a service that says drop', tcp(46305, { daddr: dropper.address }), noBackend],
      ['UDP to a service that says drop', udp(46306, { daddr: dropperDns.address }), noBackend],
      ['a later TCP fragment', tcp(46307, { fragOffset: 100, ipId: 0x4637 }), { rx_packets: 1, drop_fragment: 1 }],
      ['a later UDP fragment', udp(46308, { fragOffset: 100, ipId: 0x4638 }), { rx_packets: 1, drop_fragment: 1 }],
      ['a SYN sent to the Ethernet broadcast address', tcp(46309, { dstMac: 'ff:ff:ff:ff:ff:ff' }), noBackend],
      ['UDP sent to an Ethernet multicast address', udp(46310, { dstMac: '01:00:5e:00:00:01' }), noBackend],
      ['a SYN from a multicast address', tcp(46311, { saddr: '224.0.0.9' }), noBackend],
      ['UDP from the limited broadcast address', udp(46312, { saddr: '255.255.255.255' }), noBackend],
      ['UDP from 0.0.0.0', udp(46313, { saddr: '0.0.0.0' }), noBackend],
      ['a SYN from loopback', tcp(46314, { saddr: '127.0.0.1' }), noBackend],
    ];
    for (const [what, spec, global] of cases) {
      const frame = buildPacket(spec);
      const r = send(prog, frame);
      t.is(r.verdict, dropOf[prog], `${prog}: ${what}: verdict`);
      t.deepEqual(r.global, global, `${prog}: ${what}: counters`);
    }
  });
}

/* The answers' rate limit, per CPU, set at load (cfg_reject_rate, cfg_reject_burst). */
for (const prog of ['xdp', 'tc'] as const) {
  test.serial(`${prog}: a burst of 0 answers nothing: every would-be answer is dropped and counted`, async (t) => {
    const lim = await NativeDataplane.open({ fibRedirect: false, rejectBurst: 0, capacity: { conntrack: 1024, maglevSlots: 65536 } });
    t.teardown(() => lim.close());
    const llb = new LoadBalancer(lim);
    await llb.applyMany([empty, emptyDns]);
    for (const spec of [syn(46400, { daddr: empty.address }), { saddr: CLIENT, daddr: emptyDns.address, proto: 'udp' as const, sport: 46401, dport: 53 }]) {
      const frame = buildPacket(spec);
      const before = lim.globalStats();
      const r = lim.raw.testRun(prog, frame);
      t.is(r.retval, dropOf[prog], `${prog} ${spec.proto}: dropped`);
      t.deepEqual(globalDelta(before, lim.globalStats()), { rx_packets: 1, reject_rate_limited: 1 }, `${prog} ${spec.proto}: counted as rate limited`);
    }
  });

  test.serial(`${prog}: the bucket: a burst per CPU, then drops until it refills`, async (t) => {
    // A burst of 2 that refills at 1 a second: within the loop below no
    // bucket refills. The test may run on any CPU, each with its bucket.
    const burst = 2;
    const lim = await NativeDataplane.open({ fibRedirect: false, rejectRate: 1, rejectBurst: burst, capacity: { conntrack: 1024, maglevSlots: 65536 } });
    t.teardown(() => lim.close());
    await new LoadBalancer(lim).apply(empty);
    const cpus = native().constants()['numCpus'] ?? 1;
    const sendSyn = (sport: number): { answered: boolean; global: Partial<Record<GlobalCounter, number>> } => {
      const before = lim.globalStats();
      const r = lim.raw.testRun(prog, buildPacket(syn(sport, { daddr: empty.address })));
      const global = globalDelta(before, lim.globalStats());
      if (r.retval === answerOf[prog]) t.deepEqual(global, { rx_packets: 1, reject_tcp_rst: 1 });
      else {
        t.is(r.retval, dropOf[prog], 'answered or dropped');
        t.deepEqual(global, { rx_packets: 1, reject_rate_limited: 1 }, 'a drop over the limit is counted as such');
      }
      return { answered: r.retval === answerOf[prog], global };
    };
    let answered = 0;
    let limited = 0;
    for (let i = 0; i < burst * cpus + 1; i++) {
      if (sendSyn(46500 + i).answered) answered++;
      else limited++;
    }
    t.true(answered >= burst, `at least one CPU's burst is answered (${answered})`);
    t.true(answered <= burst * cpus, `no more than a burst per CPU is answered (${answered} of ${burst} x ${cpus})`);
    t.true(limited >= 1, 'the packet past every burst is dropped');
    // A second on: every bucket the loop used has a token again (one a
    // second), and one it did not use is still full.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    t.true(sendSyn(46600).answered, 'answered again once the bucket refilled');
  });
}

test.serial('tc: the same core through the skb helpers (DNAT, reply, UDP zero checksum, drops)', (t) => {
  const spec = syn(47000);
  const frame = buildPacket(spec);
  let r = send('tc', frame);
  t.is(r.verdict, TC_ACT_OK);
  const backend = maglevPick('web', spec);
  assertDnat(t, frame, r.out, backend, 8080);

  const reply = buildPacket({ saddr: backend, daddr: CLIENT, proto: 'tcp', sport: 8080, dport: 47000, tcpFlags: { syn: true, ack: true } });
  r = send('tc', reply);
  const o = parsePacket(r.out);
  t.is(o.saddr, VIP);
  t.is(o.sport, 80);
  t.true(o.ipChecksumOk && o.l4ChecksumOk === true, 'checksums after tc reverse NAT');

  for (const udpChecksum of [true, false]) {
    const u: PacketSpec = { saddr: CLIENT, daddr: VIP, proto: 'udp', sport: 47100 + Number(udpChecksum), dport: 53, udpChecksum };
    const f = buildPacket(u);
    r = send('tc', f);
    assertDnat(t, f, r.out, maglevPick('dns', u), 5353);
  }
  r = send('tc', buildPacket(syn(47200, { dport: 81 })));
  t.is(r.verdict, TC_ACT_SHOT);
  t.deepEqual(r.global, { rx_packets: 1, drop_no_service: 1 });
});

/**
 * XDP follows a tracked flow on its fast path (bpf/xdp_lb.bpf.c: parse,
 * conntrack, rewrite through live header pointers, in one pass); tc always
 * takes the general path (lb_decide, then the skb helpers). The same packet
 * of the same flow must come out of both byte for byte, with the same
 * verdict and the same counters.
 */
test.serial('a tracked flow comes out of XDP\'s fast path exactly as out of the general path (tc)', (t) => {
  const verdictOf = { xdp: XDP_PASS, tc: TC_ACT_OK } as const;
  interface Case { name: string; open: PacketSpec; later: PacketSpec[]; service: string; port: number }
  const ack = { ack: true, psh: true };
  const options = Buffer.from([0x01, 0x01, 0x01, 0x00]);
  const cases: Case[] = [
    { name: 'TCP', service: 'web', port: 8080, open: syn(48000), later: [syn(48000, { tcpFlags: ack, payload: Buffer.from('GET / HTTP/1.1\r\n') })] },
    { name: 'TCP, a fresh SYN on the tuple of a flow whose backend is active', service: 'web', port: 8080, open: syn(48001), later: [syn(48001)] },
    { name: 'TCP with IP options', service: 'web', port: 8080, open: syn(48002, { ipOptions: options }), later: [syn(48002, { tcpFlags: ack, ipOptions: options })] },
    ...[true, false].map((udpChecksum) => {
      const spec: PacketSpec = { saddr: CLIENT, daddr: VIP, proto: 'udp', sport: 48100 + Number(udpChecksum), dport: 53, udpChecksum, payload: Buffer.from('query') };
      return { name: `UDP, ${udpChecksum ? 'with a checksum' : 'checksum 0 (none)'}`, service: 'dns', port: 5353, open: spec, later: [{ ...spec, payload: Buffer.from('second query') }] };
    }),
  ];
  for (const c of cases) {
    const backend = parsePacket(send('xdp', buildPacket(c.open)).out).daddr;
    t.is(backend, maglevPick(c.service, c.open), `${c.name}: the opening packet`);
    const reply: PacketSpec = {
      ...c.later[0]!, saddr: backend, daddr: CLIENT, sport: c.port, dport: c.open.sport,
      ...(c.open.proto === 'tcp' ? { tcpFlags: ack } : {}),
    };
    const ids = lb.ids(c.service);
    const beId = ids.backends.get(`${backend}:${c.port}`)!;
    for (const spec of [...c.later, reply]) {
      const frame = buildPacket(spec);
      const what = `${c.name}, ${spec === reply ? 'reply' : 'forward'}`;
      const outs = (['xdp', 'tc'] as const).map((prog) => {
        const svc = dp.serviceStats(ids.service);
        const be = dp.backendStats(beId);
        const r = send(prog, frame);
        t.is(r.verdict, verdictOf[prog], `${what}: ${prog} verdict`);
        return { ...r, svc: statsDelta(svc, dp.serviceStats(ids.service)), be: statsDelta(be, dp.backendStats(beId)) };
      });
      const [x, k] = outs as [typeof outs[0], typeof outs[0]];
      t.true(x.out.equals(k.out), `${what}: XDP and tc frames differ`);
      t.deepEqual(x.global, k.global, `${what}: global counters`);
      t.deepEqual(x.svc, k.svc, `${what}: service counters`);
      t.deepEqual(x.be, k.be, `${what}: backend counters`);
      if (spec === reply) {
        const o = parsePacket(x.out);
        t.deepEqual([o.saddr, o.sport, o.daddr, o.dport], [VIP, c.open.dport, CLIENT, c.open.sport], `${what}: restored to VIP:port`);
        t.deepEqual(x.global, { rx_packets: 1, replies: 1, forwarded_stack: 1 }, `${what}: counted as a reply`);
        t.deepEqual(x.svc, { packets: 0, bytes: 0, newConnections: 0, replyPackets: 1 }, `${what}: service counters`);
      } else {
        assertDnat(t, frame, x.out, backend, c.port);
        t.deepEqual(x.global, { rx_packets: 1, forwarded_stack: 1 }, `${what}: counted as forwarded`);
        t.deepEqual(x.svc, { packets: 1, bytes: frame.length - 14, newConnections: 0, replyPackets: 0 }, `${what}: service counters`);
        t.deepEqual(x.be, x.svc, `${what}: backend counters`);
      }
      if (spec.udpChecksum === false) t.is(parsePacket(x.out).l4Checksum, 0, `${what}: a zero UDP checksum stays zero`);
    }
  }

  // A UDP checksum that the DNAT makes 0 must go out as 0xffff: find a
  // payload for which it does, from the frame the rewrite must produce.
  const open: PacketSpec = { saddr: CLIENT, daddr: VIP, proto: 'udp', sport: 48200, dport: 53, payload: Buffer.from('open') };
  const backend = parsePacket(send('xdp', buildPacket(open)).out).daddr;
  let want: Buffer | undefined;
  let payload = Buffer.alloc(2);
  for (let w = 0; w < 0x10000 && !want; w++) {
    payload = Buffer.from([w >> 8, w & 0xff]);
    const f = buildPacket({ ...open, daddr: backend, dport: 5353, payload });
    if (parsePacket(f).l4Checksum === 0xffff) want = f;
  }
  t.truthy(want, 'some payload makes the rewritten checksum compute to 0');
  const frame = buildPacket({ ...open, payload });
  t.not(parsePacket(frame).l4Checksum, 0xffff, 'the frame sent has another checksum');
  for (const prog of ['xdp', 'tc'] as const) {
    const r = send(prog, frame);
    t.true(r.out.equals(want!), `${prog}: a computed 0 UDP checksum must be sent as 0xffff`);
  }

  // A packet of a tracked flow whose TCP header is cut short leaves the fast
  // path to the general one, which drops and counts it, never rewriting it.
  const cut = buildPacket(syn(48000, { tcpFlags: ack })).subarray(0, 14 + 20 + 10);
  const r = send('xdp', cut);
  t.is(r.verdict, XDP_DROP);
  t.deepEqual(r.global, { rx_packets: 1, drop_malformed: 1 });
  t.true(r.out.equals(cut), 'the cut frame was modified');
});

/**
 * Hairpin: a client that is its own backend (a pod calling its own
 * service). The forward entry rewrites the destination to the backend and
 * the source to the hairpin address; the reply entry, keyed by (backend ->
 * hairpin address), restores the source to VIP:port and the destination to
 * the client, the reply's own source. Ports stay. Exact frames: each is
 * compared with one built from scratch, checksums computed anew.
 */
const POD = '10.244.1.11';
const HAIRPIN = '192.168.80.1';
const loop: ServiceSpec = { name: 'loop', address: '10.96.0.50', port: 80, protocol: 'tcp', backends: [{ address: POD, port: 8080 }] };
const loopDns: ServiceSpec = { name: 'loop-dns', address: '10.96.0.50', port: 53, protocol: 'udp', backends: [{ address: POD, port: 5353 }] };

for (const prog of ['xdp', 'tc'] as const) {
  test.serial(`${prog}: hairpin forward and reply are rewritten both ways, exact bytes, valid checksums`, async (t) => {
    await lb.apply(loop);
    await lb.apply(loopDns);
    dp.setHairpinAddress(HAIRPIN);
    t.teardown(() => dp.setHairpinAddress(null));
    t.is(dp.hairpinAddress(), HAIRPIN);
    const ok = prog === 'xdp' ? XDP_PASS : TC_ACT_OK;
    const sport = prog === 'xdp' ? 49001 : 49002;
    const payload = Buffer.from('GET / HTTP/1.1\r\n');

    // The SYN: destination to the backend (the pod itself), source to the hairpin address.
    const synIn = buildPacket({ saddr: POD, daddr: loop.address, proto: 'tcp', sport, dport: 80, tcpFlags: { syn: true } });
    let r = send(prog, synIn);
    t.is(r.verdict, ok);
    const synWant = buildPacket({ saddr: HAIRPIN, daddr: POD, proto: 'tcp', sport, dport: 8080, tcpFlags: { syn: true } });
    t.true(r.out.equals(synWant), `SYN: got ${JSON.stringify(parsePacket(r.out))}, want ${HAIRPIN}:${sport} -> ${POD}:8080`);
    t.deepEqual(r.global, { rx_packets: 1, forwarded_stack: 1, hairpin_flows: 1 });
    const fwd = dp.getConntrack({ saddr: POD, daddr: loop.address, sport, dport: 80, protocol: 'tcp' });
    t.is(fwd?.hairpin, true, 'the forward entry is a hairpin entry');
    t.is(`${fwd?.natAddress}:${fwd?.natPort}`, `${POD}:8080`);
    const rev = dp.getConntrack({ saddr: POD, daddr: HAIRPIN, sport: 8080, dport: sport, protocol: 'tcp' });
    t.is(rev?.hairpin, true, 'the reply entry is keyed by (backend -> hairpin address)');
    t.is(`${rev?.natAddress}:${rev?.natPort}`, `${loop.address}:80`);
    t.is(dp.getConntrack({ saddr: POD, daddr: POD, sport: 8080, dport: sport, protocol: 'tcp' }), null, 'no entry keyed by the pod\'s own address');

    // The SYN-ACK, from the pod's server to the hairpin address: back to VIP:80 -> pod:sport.
    const synAckIn = buildPacket({ saddr: POD, daddr: HAIRPIN, proto: 'tcp', sport: 8080, dport: sport, tcpFlags: { syn: true, ack: true } });
    r = send(prog, synAckIn);
    t.is(r.verdict, ok);
    const synAckWant = buildPacket({ saddr: loop.address, daddr: POD, proto: 'tcp', sport: 80, dport: sport, tcpFlags: { syn: true, ack: true } });
    t.true(r.out.equals(synAckWant), `SYN-ACK: got ${JSON.stringify(parsePacket(r.out))}, want ${loop.address}:80 -> ${POD}:${sport}`);
    t.deepEqual(r.global, { rx_packets: 1, replies: 1, forwarded_stack: 1 });

    // An established packet (XDP: past its fast path, to the general one): the same rewrite, no new flow.
    const ackIn = buildPacket({ saddr: POD, daddr: loop.address, proto: 'tcp', sport, dport: 80, tcpFlags: { ack: true, psh: true }, payload });
    r = send(prog, ackIn);
    t.true(r.out.equals(buildPacket({ saddr: HAIRPIN, daddr: POD, proto: 'tcp', sport, dport: 8080, tcpFlags: { ack: true, psh: true }, payload })), 'established forward packet');
    t.deepEqual(r.global, { rx_packets: 1, forwarded_stack: 1 });

    // UDP, with a checksum and with none (0 stays 0).
    for (const udpChecksum of [true, false]) {
      const p = sport + 100 + 10 * Number(udpChecksum);
      const q = Buffer.from('query');
      r = send(prog, buildPacket({ saddr: POD, daddr: loopDns.address, proto: 'udp', sport: p, dport: 53, udpChecksum, payload: q }));
      t.true(r.out.equals(buildPacket({ saddr: HAIRPIN, daddr: POD, proto: 'udp', sport: p, dport: 5353, udpChecksum, payload: q })), `UDP forward, checksum ${udpChecksum ? 'set' : '0'}`);
      t.deepEqual(r.global, { rx_packets: 1, forwarded_stack: 1, hairpin_flows: 1 });
      r = send(prog, buildPacket({ saddr: POD, daddr: HAIRPIN, proto: 'udp', sport: 5353, dport: p, udpChecksum, payload: q }));
      t.true(r.out.equals(buildPacket({ saddr: loopDns.address, daddr: POD, proto: 'udp', sport: 53, dport: p, udpChecksum, payload: q })), `UDP reply, checksum ${udpChecksum ? 'set' : '0'}`);
      t.deepEqual(r.global, { rx_packets: 1, replies: 1, forwarded_stack: 1 });
    }

    // Another client of the same service is only DNATed: its source stays.
    const other = buildPacket({ saddr: CLIENT, daddr: loop.address, proto: 'tcp', sport, dport: 80, tcpFlags: { syn: true } });
    r = send(prog, other);
    t.true(r.out.equals(buildPacket({ saddr: CLIENT, daddr: POD, proto: 'tcp', sport, dport: 8080, tcpFlags: { syn: true } })), 'a client that is not the backend keeps its address');
    t.deepEqual(r.global, { rx_packets: 1, forwarded_stack: 1 });
  });
}

test.serial('hairpin SNAT off: a client given itself is only DNATed; the address is a runtime setting', async (t) => {
  await lb.apply(loop);
  dp.setHairpinAddress(null);
  t.is(dp.hairpinAddress(), null);
  let r = send('tc', buildPacket({ saddr: POD, daddr: loop.address, proto: 'tcp', sport: 49100, dport: 80, tcpFlags: { syn: true } }));
  t.true(r.out.equals(buildPacket({ saddr: POD, daddr: POD, proto: 'tcp', sport: 49100, dport: 8080, tcpFlags: { syn: true } })), 'DNAT only');
  t.deepEqual(r.global, { rx_packets: 1, forwarded_stack: 1 });
  t.falsy(dp.getConntrack({ saddr: POD, daddr: loop.address, sport: 49100, dport: 80, protocol: 'tcp' })?.hairpin);

  // Turned on while the programs run: the next new flow is source-NATed to it.
  dp.setHairpinAddress('192.168.80.9');
  try {
    r = send('tc', buildPacket({ saddr: POD, daddr: loop.address, proto: 'tcp', sport: 49101, dport: 80, tcpFlags: { syn: true } }));
    t.true(r.out.equals(buildPacket({ saddr: '192.168.80.9', daddr: POD, proto: 'tcp', sport: 49101, dport: 8080, tcpFlags: { syn: true } })), 'source NATed to the new address');
    t.is(r.global.hairpin_flows, 1);
  } finally {
    dp.setHairpinAddress(null);
  }
});
