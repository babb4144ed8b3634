/**
 * Packet tables through BPF_PROG_TEST_RUN, at XDP and at tc: ICMP errors
 * about a balanced flow, translated through the NAT both ways (exact
 * bytes: the error the other side gets is the one it would have got
 * without the NAT), and fragmented datagrams balanced as one (in order,
 * later fragment first, first fragment never seen).
 *
 * Loaded with fibRedirect off, as packets.test.ts is: a rewritten packet
 * goes to the stack (XDP_PASS / TC_ACT_OK). "Fragmentation needed" needs
 * a FIB with a smaller MTU: test/e2e/pmtu-frag.test.ts.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { LoadBalancer } from '../../src/lb/load-balancer.js';
import { flowHash, maglevSlot } from '../../src/maglev/flow-hash.js';
import type { ServiceSpec } from '../../src/model/service.js';
import {
  TC_ACT_OK,
  TC_ACT_SHOT,
  XDP_DROP,
  XDP_PASS,
  buildPacket,
  checksumsOk,
  fragmentPacket,
  icmpError,
  onesSum,
  parsePacket,
  reassemble,
  type PacketSpec,
} from '../helpers/packet.js';
import { sendCounted } from '../helpers/test-run.js';

const VIP = '10.96.1.10';
const CLIENT = '192.168.51.7';
const ROUTER = '10.1.1.1';
const BACKENDS = ['10.1.1.11', '10.1.1.12', '10.1.1.13'];

const web: ServiceSpec = {
  name: 'web', address: VIP, port: 80, protocol: 'tcp',
  backends: BACKENDS.map((address) => ({ address, port: 8080 })),
};
const dns: ServiceSpec = {
  name: 'dns', address: VIP, port: 53, protocol: 'udp',
  backends: BACKENDS.map((address) => ({ address, port: 5353 })),
};

const passOf = { xdp: XDP_PASS, tc: TC_ACT_OK } as const;
const dropOf = { xdp: XDP_DROP, tc: TC_ACT_SHOT } as const;

let dp: NativeDataplane;
let lb: LoadBalancer;

test.before(async () => {
  dp = await NativeDataplane.open({ fibRedirect: false, capacity: { conntrack: 65536 } });
  lb = new LoadBalancer(dp);
  await lb.applyMany([web, dns]);
});

test.after.always(() => {
  dp?.close();
});

function send(prog: 'xdp' | 'tc', frame: Buffer): ReturnType<typeof sendCounted> {
  return sendCounted(dp, prog, frame);
}

function maglevPick(name: string, p: Pick<PacketSpec, 'saddr' | 'daddr' | 'sport' | 'dport' | 'proto'>): string {
  const ids = lb.ids(name);
  const table = dp.getMaglevTable(ids.service)!;
  const id = table[maglevSlot(flowHash(p.saddr, p.daddr, p.sport, p.dport, p.proto === 'tcp' ? 6 : 17), table.length)];
  for (const [ident, bid] of ids.backends) if (bid === id) return ident.split(':')[0]!;
  throw new Error(`no backend with id ${id}`);
}

/** Where two frames first differ, for a failure message. */
function firstDiff(a: Buffer, b: Buffer): string {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `byte ${i}: got 0x${(a[i] ?? -1).toString(16)}, want 0x${(b[i] ?? -1).toString(16)} (lengths ${a.length}, ${b.length})`;
  }
  return 'equal';
}

/** The quoted IP header of an ICMP error frame (outer header without options) sums right. */
function quotedIpOk(frame: Buffer): boolean {
  const q = frame.subarray(14 + 20 + 8);
  return onesSum(q.subarray(0, (q[0]! & 0x0f) * 4)) === 0xffff;
}

/** A frame is byte for byte the one built from scratch, and its checksums sum right. */
function assertFrame(t: ExecutionContext, what: string, got: Buffer, want: Buffer): void {
  t.true(got.equals(want), `${what}: ${firstDiff(got, want)}`);
  const ok = checksumsOk(got);
  t.true(ok.ip && ok.l4, `${what}: outer IP and ICMP checksums sum right`);
}

for (const prog of ['xdp', 'tc'] as const) {
  const port = (n: number): number => (prog === 'xdp' ? 30000 : 31000) + n;

  test.serial(`${prog}: an ICMP error from the backend's side reaches the client about its own packet to the VIP`, (t) => {
    const cases: Array<[string, PacketSpec, number, number, number, number | undefined]> = [
      // what, the client's packet, type, code, mtu, bytes of L4 quoted
      ['fragmentation needed about a TCP segment, from the backend', {
        saddr: CLIENT, daddr: VIP, proto: 'tcp', sport: port(1), dport: 80, tcpFlags: { syn: true }, dontFragment: true,
      }, 3, 4, 1400, undefined],
      ['port unreachable about a UDP datagram, from the backend', {
        saddr: CLIENT, daddr: VIP, proto: 'udp', sport: port(2), dport: 53, payload: Buffer.alloc(40, 7),
      }, 3, 3, 0, undefined],
      ['port unreachable about a UDP datagram without a checksum', {
        saddr: CLIENT, daddr: VIP, proto: 'udp', sport: port(3), dport: 53, udpChecksum: false,
      }, 3, 3, 0, undefined],
      ['a quote of only 8 L4 bytes (no TCP checksum in it)', {
        saddr: CLIENT, daddr: VIP, proto: 'tcp', sport: port(4), dport: 80, tcpFlags: { syn: true },
      }, 3, 1, 0, 8],
    ];
    for (const [what, spec, type, code, mtu, quoteL4] of cases) {
      const sent = buildPacket(spec);
      const dnat = send(prog, sent);
      t.is(dnat.verdict, passOf[prog], `${what}: the packet is balanced`);
      const backend = maglevPick(spec.proto === 'tcp' ? 'web' : 'dns', spec);
      t.is(parsePacket(dnat.out).daddr, backend);
      // The backend answers the packet it got.
      const err = icmpError({ saddr: backend, daddr: CLIENT, type, code, mtu, about: dnat.out, ...(quoteL4 === undefined ? {} : { quoteL4 }) });
      const r = send(prog, err);
      t.is(r.verdict, passOf[prog], `${what}: verdict`);
      t.deepEqual(r.global, { rx_packets: 1, icmp_translated: 1, forwarded_stack: 1 }, `${what}: counters`);
      // What the client gets: from the VIP, about the packet it sent.
      const want = icmpError({ saddr: VIP, daddr: CLIENT, type, code, mtu, about: sent, ...(quoteL4 === undefined ? {} : { quoteL4 }) });
      assertFrame(t, what, r.out, want);
      t.true(quotedIpOk(r.out), `${what}: the quoted IP header's checksum`);
    }
  });

  test.serial(`${prog}: a router's ICMP error keeps its source; the quote is restored`, (t) => {
    const spec: PacketSpec = { saddr: CLIENT, daddr: VIP, proto: 'tcp', sport: port(10), dport: 80, tcpFlags: { syn: true } };
    const sent = buildPacket(spec);
    const dnat = send(prog, sent);
    const err = icmpError({ saddr: ROUTER, daddr: CLIENT, type: 11, code: 0, about: dnat.out });
    const r = send(prog, err);
    t.deepEqual(r.global, { rx_packets: 1, icmp_translated: 1, forwarded_stack: 1 });
    assertFrame(t, 'time exceeded from a router', r.out,
      icmpError({ saddr: ROUTER, daddr: CLIENT, type: 11, code: 0, about: sent }));
  });

  test.serial(`${prog}: an ICMP error from the client's side reaches the backend about its own reply`, (t) => {
    const cases: Array<[string, PacketSpec, number, number, number]> = [
      ['fragmentation needed about a TCP reply', {
        saddr: CLIENT, daddr: VIP, proto: 'tcp', sport: port(20), dport: 80, tcpFlags: { syn: true },
      }, 3, 4, 1280],
      ['port unreachable about a UDP reply', {
        saddr: CLIENT, daddr: VIP, proto: 'udp', sport: port(21), dport: 53,
      }, 3, 3, 0],
    ];
    for (const [what, spec, type, code, mtu] of cases) {
      send(prog, buildPacket(spec));
      const backend = maglevPick(spec.proto === 'tcp' ? 'web' : 'dns', spec);
      const bport = spec.proto === 'tcp' ? 8080 : 5353;
      // The backend's reply, as it sent it, and as the client got it.
      const reply = buildPacket({
        saddr: backend, daddr: CLIENT, proto: spec.proto, sport: bport, dport: spec.sport,
        tcpFlags: { syn: true, ack: true }, payload: Buffer.alloc(100, 3), dontFragment: true,
      });
      const restored = send(prog, reply);
      t.is(parsePacket(restored.out).saddr, VIP, `${what}: the reply is restored`);
      const err = icmpError({ saddr: CLIENT, daddr: VIP, type, code, mtu, about: restored.out });
      const r = send(prog, err);
      t.is(r.verdict, passOf[prog], `${what}: verdict`);
      t.deepEqual(r.global, { rx_packets: 1, icmp_translated: 1, forwarded_stack: 1 }, `${what}: counters`);
      const want = icmpError({ saddr: CLIENT, daddr: backend, type, code, mtu, about: reply });
      assertFrame(t, what, r.out, want);
      t.true(quotedIpOk(r.out), `${what}: the quoted IP header's checksum`);
    }
  });

  test.serial(`${prog}: an ICMP error about no tracked flow passes untouched`, (t) => {
    const cases: Array<[string, Buffer]> = [
      ['about a flow to no VIP', icmpError({
        saddr: '10.9.9.9', daddr: CLIENT, type: 3, code: 3,
        about: buildPacket({ saddr: CLIENT, daddr: '10.9.9.9', proto: 'udp', sport: port(30), dport: 53 }),
      })],
      ['about a backend port no flow used', icmpError({
        saddr: BACKENDS[0]!, daddr: CLIENT, type: 3, code: 4, mtu: 1400,
        about: buildPacket({ saddr: CLIENT, daddr: BACKENDS[0]!, proto: 'tcp', sport: port(31), dport: 8080 }),
      })],
      ['an echo request to the VIP (not an error)', icmpError({
        saddr: CLIENT, daddr: VIP, type: 8, code: 0,
        about: buildPacket({ saddr: CLIENT, daddr: VIP, proto: 'udp', sport: port(32), dport: 53 }),
      })],
    ];
    for (const [what, frame] of cases) {
      const r = send(prog, frame);
      t.is(r.verdict, passOf[prog], `${what}: verdict`);
      t.deepEqual(r.global, { rx_packets: 1, passed_other: 1 }, `${what}: counters`);
      t.true(r.out.equals(frame), `${what}: untouched`);
    }
  });

  test.serial(`${prog}: a fragmented datagram to a VIP goes to one backend; its fragmented reply comes back from the VIP`, (t) => {
    const id = prog === 'xdp' ? 0x5101 : 0x5102;
    const spec: PacketSpec = {
      saddr: CLIENT, daddr: VIP, proto: 'udp', sport: port(40), dport: 53, ipId: id,
      payload: Buffer.from(Array.from({ length: 4000 }, (_, i) => i & 0xff)),
    };
    const datagram = buildPacket(spec);
    const frags = fragmentPacket(datagram, 1480);
    t.is(frags.length, 3);
    const backend = maglevPick('dns', spec);
    const outs: Buffer[] = [];
    frags.forEach((f, i) => {
      const r = send(prog, f);
      t.is(r.verdict, passOf[prog], `fragment ${i}: verdict`);
      t.deepEqual(r.global, i === 0 ? { rx_packets: 1, forwarded_stack: 1 } : { rx_packets: 1, frag_translated: 1, forwarded_stack: 1 },
        `fragment ${i}: counters`);
      const o = r.out;
      t.is([...o.subarray(30, 34)].join('.'), backend, `fragment ${i}: dst IP rewritten to the first fragment's backend`);
      t.true(onesSum(o.subarray(14, 34)) === 0xffff, `fragment ${i}: IP checksum`);
      t.true(o.subarray(34).equals(f.subarray(34)) || i === 0, `fragment ${i}: data unchanged`);
      outs.push(o);
    });
    const whole = parsePacket(reassemble(outs));
    t.is(whole.daddr, backend);
    t.is(whole.dport, 5353);
    t.true(whole.l4ChecksumOk === true, 'the reassembled datagram\'s UDP checksum is right');
    t.true(whole.payload.equals(spec.payload!), 'payload');

    // The backend's answer of 4,000 bytes, fragmented, restored in every fragment.
    const answer = buildPacket({
      saddr: backend, daddr: CLIENT, proto: 'udp', sport: 5353, dport: spec.sport, ipId: id + 0x100,
      payload: Buffer.alloc(4000, 0x5a),
    });
    const back = fragmentPacket(answer, 1480).map((f, i) => {
      const r = send(prog, f);
      t.deepEqual(r.global, i === 0 ? { rx_packets: 1, replies: 1, forwarded_stack: 1 } : { rx_packets: 1, frag_translated: 1, replies: 1, forwarded_stack: 1 },
        `reply fragment ${i}: counters`);
      t.is([...r.out.subarray(26, 30)].join('.'), VIP, `reply fragment ${i}: src IP restored to the VIP`);
      return r.out;
    });
    const reply = parsePacket(reassemble(back));
    t.deepEqual([reply.saddr, reply.sport, reply.daddr, reply.dport], [VIP, 53, CLIENT, spec.sport]);
    t.true(reply.l4ChecksumOk === true, 'the reassembled reply\'s UDP checksum is right');
  });

  test.serial(`${prog}: a later fragment before its first is dropped and counted; after it, it follows`, (t) => {
    const spec: PacketSpec = {
      saddr: CLIENT, daddr: VIP, proto: 'udp', sport: port(41), dport: 53, ipId: prog === 'xdp' ? 0x5201 : 0x5202,
      payload: Buffer.alloc(3000, 1),
    };
    const [first, second, third] = fragmentPacket(buildPacket(spec), 1480);
    let r = send(prog, third!);
    t.is(r.verdict, dropOf[prog], 'the last fragment, first: dropped');
    t.deepEqual(r.global, { rx_packets: 1, drop_fragment: 1 });
    r = send(prog, first!);
    t.deepEqual(r.global, { rx_packets: 1, forwarded_stack: 1 }, 'the first fragment is balanced');
    const backend = parsePacket(r.out).daddr;
    for (const [what, f] of [['second', second!], ['third, sent again', third!]] as const) {
      r = send(prog, f);
      t.deepEqual(r.global, { rx_packets: 1, frag_translated: 1, forwarded_stack: 1 }, `${what}: counters`);
      t.is([...r.out.subarray(30, 34)].join('.'), backend, `${what}: to the first fragment's backend`);
    }
  });

  test.serial(`${prog}: a fragment whose first piece never came: dropped to a VIP, passed elsewhere`, (t) => {
    const id = prog === 'xdp' ? 0x5301 : 0x5302;
    const toVip = fragmentPacket(buildPacket({
      saddr: CLIENT, daddr: VIP, proto: 'udp', sport: port(42), dport: 53, ipId: id, payload: Buffer.alloc(2000),
    }), 1480)[1]!;
    let r = send(prog, toVip);
    t.is(r.verdict, dropOf[prog]);
    t.deepEqual(r.global, { rx_packets: 1, drop_fragment: 1 });
    const elsewhere = fragmentPacket(buildPacket({
      saddr: CLIENT, daddr: '10.9.9.9', proto: 'udp', sport: port(43), dport: 53, ipId: id, payload: Buffer.alloc(2000),
    }), 1480);
    for (const f of elsewhere) {
      r = send(prog, f);
      t.is(r.verdict, passOf[prog]);
      t.deepEqual(r.global, { rx_packets: 1, passed_other: 1 });
      t.true(r.out.equals(f), 'untouched');
    }
  });
}
