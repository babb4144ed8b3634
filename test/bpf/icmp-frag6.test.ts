/**
 * IPv6 packet tables through BPF_PROG_TEST_RUN, at XDP and at tc
 * (icmp-frag.test.ts's twin): fragmented datagrams balanced as one (in
 * order both ways, a later fragment first, a first fragment never seen, an
 * atomic fragment, a first fragment without its L4 header), ICMPv6 errors
 * about a balanced flow translated through the NAT both ways (exact bytes,
 * built from scratch: the error the other side gets is the one it would
 * have got without the NAT, its checksum with the IPv6 pseudo-header), and
 * packet too big for a packet over the next hop's MTU, answered byte for
 * byte as a router would.
 *
 * Most rows run with fibRedirect off (a rewritten packet goes to the
 * stack); packet too big needs a FIB with a smaller MTU: those rows load a
 * second dataplane with fibRedirect on and run in a namespace of their own.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { LoadBalancer } from '../../src/lb/load-balancer.js';
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
  fmtIp6,
  fragInfo6,
  fragmentPacket6,
  icmp6Error,
  ip6Bytes,
  packetTooBig6For,
  parsePacket6,
  reassemble6,
  type Packet6Spec,
} from '../helpers/packet.js';
import { sendCounted } from '../helpers/test-run.js';

const VIP = 'fd96::60';
const CLIENT = '2001:db8:51::7';
const ROUTER = 'fd02::1';
const BACKENDS = ['fd02::11', 'fd02::12', 'fd02::13'];
const ELSEWHERE = 'fd99::9';

const web: ServiceSpec = {
  name: 'web6f', address: VIP, port: 80, protocol: 'tcp',
  backends: BACKENDS.map((address) => ({ address, port: 8080 })),
};
const dns: ServiceSpec = {
  name: 'dns6f', address: VIP, port: 53, protocol: 'udp',
  backends: BACKENDS.map((address) => ({ address, port: 5353 })),
};

const passOf = { xdp: XDP_PASS, tc: TC_ACT_OK } as const;
const dropOf = { xdp: XDP_DROP, tc: TC_ACT_SHOT } as const;

let dp: NativeDataplane;
let lb: LoadBalancer;

test.before(async () => {
  dp = await NativeDataplane.open({ fibRedirect: false, capacity: { conntrack: 65536, conntrack6: 65536 } });
  lb = new LoadBalancer(dp);
  await lb.applyMany([web, dns]);
});

test.after.always(() => {
  dp?.close();
});

function send(prog: 'xdp' | 'tc', frame: Buffer): ReturnType<typeof sendCounted> {
  return sendCounted(dp, prog, frame);
}

/** The backend Maglev picks for a tuple, from the kernel's table and the IPv6 flow hash. */
function maglevPick(l: LoadBalancer, d: NativeDataplane, name: string, p: Pick<Packet6Spec, 'saddr' | 'daddr' | 'sport' | 'dport' | 'proto'>): string {
  const ids = l.ids(name);
  const table = d.getMaglevTable(ids.service)!;
  const id = table[maglevSlot(flowHash(p.saddr, p.daddr, p.sport!, p.dport!, p.proto === 'tcp' ? 6 : 17), table.length)];
  for (const [ident, bid] of ids.backends) if (bid === id) return ident.slice(0, ident.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1');
  throw new Error(`no backend with id ${id}`);
}

/** Where two frames first differ, for a failure message. */
function firstDiff(a: Buffer, b: Buffer): string {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `byte ${i}: got 0x${(a[i] ?? -1).toString(16)}, want 0x${(b[i] ?? -1).toString(16)} (lengths ${a.length}, ${b.length})`;
  }
  return 'equal';
}

/** A frame is byte for byte the one built from scratch, and its ICMPv6 checksum sums right from scratch. */
function assertFrame(t: ExecutionContext, what: string, got: Buffer, want: Buffer): void {
  t.true(got.equals(want), `${what}: ${firstDiff(got, want)}`);
  t.true(parsePacket6(got).l4ChecksumOk, `${what}: the ICMPv6 checksum (with the pseudo-header) sums right`);
}

/** The quote of an ICMPv6 error frame as a frame of its own, when it holds the whole packet: its L4 checksum summed from scratch. */
function quotedL4Ok(err: Buffer): boolean {
  const quote = err.subarray(14 + 40 + 8);
  return parsePacket6(Buffer.concat([err.subarray(0, 14), quote])).l4ChecksumOk;
}

const dst6 = (f: Buffer): string => fmtIp6(f.subarray(38, 54));
const src6 = (f: Buffer): string => fmtIp6(f.subarray(22, 38));

/** A frag6 map key (struct frag6_key: source, destination, identification). */
function frag6Key(saddr: string, daddr: string, id: number): Buffer {
  const k = Buffer.alloc(36);
  ip6Bytes(saddr).copy(k, 0);
  ip6Bytes(daddr).copy(k, 16);
  k.writeUInt32BE(id >>> 0, 32);
  return k;
}

for (const prog of ['xdp', 'tc'] as const) {
  const port = (n: number): number => (prog === 'xdp' ? 32000 : 33000) + n;
  const fragId = (n: number): number => (prog === 'xdp' ? 0x61000000 : 0x62000000) + n;

  test.serial(`${prog}: a fragmented IPv6 datagram to a VIP goes to one backend; its fragmented reply comes back from the VIP`, (t) => {
    const spec: Packet6Spec = {
      saddr: CLIENT, daddr: VIP, proto: 'udp', sport: port(1), dport: 53,
      payload: Buffer.from(Array.from({ length: 4000 }, (_, i) => i & 0xff)),
    };
    const frags = fragmentPacket6(buildPacket6(spec), 1448, fragId(1));
    t.is(frags.length, 3);
    const backend = maglevPick(lb, dp, 'dns6f', spec);
    const outs = frags.map((f, i) => {
      const r = send(prog, f);
      t.is(r.verdict, passOf[prog], `fragment ${i}: verdict`);
      t.deepEqual(r.global, i === 0 ? { rx_packets: 1, forwarded_stack: 1 } : { rx_packets: 1, frag_translated: 1, forwarded_stack: 1 },
        `fragment ${i}: counters`);
      t.is(dst6(r.out), backend, `fragment ${i}: dst rewritten to the first fragment's backend`);
      t.is(src6(r.out), CLIENT, `fragment ${i}: src kept`);
      if (i > 0) {
        const want = Buffer.from(f);
        ip6Bytes(backend).copy(want, 38);
        t.true(r.out.equals(want), `fragment ${i}: only the destination changed: ${firstDiff(r.out, want)}`);
      }
      return r.out;
    });
    const whole = parsePacket6(reassemble6(outs));
    t.deepEqual([whole.daddr, whole.dport, whole.saddr, whole.sport], [backend, 5353, CLIENT, spec.sport]);
    t.true(whole.l4ChecksumOk, 'the reassembled datagram\'s UDP checksum sums right from scratch');
    t.true(whole.payload.equals(spec.payload!), 'payload');

    // The backend's 4,000-byte answer, fragmented, restored in every fragment.
    const answer = buildPacket6({ saddr: backend, daddr: CLIENT, proto: 'udp', sport: 5353, dport: spec.sport!, payload: Buffer.alloc(4000, 0x5a) });
    const back = fragmentPacket6(answer, 1448, fragId(2)).map((f, i) => {
      const r = send(prog, f);
      t.is(r.verdict, passOf[prog], `reply fragment ${i}: verdict`);
      t.deepEqual(r.global, i === 0 ? { rx_packets: 1, replies: 1, forwarded_stack: 1 } : { rx_packets: 1, frag_translated: 1, replies: 1, forwarded_stack: 1 },
        `reply fragment ${i}: counters`);
      t.is(src6(r.out), VIP, `reply fragment ${i}: src restored to the VIP`);
      return r.out;
    });
    const reply = parsePacket6(reassemble6(back));
    t.deepEqual([reply.saddr, reply.sport, reply.daddr, reply.dport], [VIP, 53, CLIENT, spec.sport]);
    t.true(reply.l4ChecksumOk, 'the reassembled reply\'s UDP checksum sums right from scratch');
  });

  test.serial(`${prog}: a fragmented TCP segment to a VIP follows its first fragment`, (t) => {
    const spec: Packet6Spec = {
      saddr: CLIENT, daddr: VIP, proto: 'tcp', sport: port(2), dport: 80, tcpFlags: { syn: true }, payload: Buffer.alloc(2000, 9),
    };
    const frags = fragmentPacket6(buildPacket6(spec), 1232, fragId(3));
    const backend = maglevPick(lb, dp, 'web6f', spec);
    const outs = frags.map((f) => send(prog, f).out);
    const whole = parsePacket6(reassemble6(outs));
    t.deepEqual([whole.daddr, whole.dport], [backend, 8080]);
    t.true(whole.l4ChecksumOk, 'the reassembled segment\'s TCP checksum');
  });

  test.serial(`${prog}: a later IPv6 fragment before its first is dropped and counted; after it, it follows`, (t) => {
    const spec: Packet6Spec = { saddr: CLIENT, daddr: VIP, proto: 'udp', sport: port(10), dport: 53, payload: Buffer.alloc(3000, 1) };
    const [first, second, third] = fragmentPacket6(buildPacket6(spec), 1448, fragId(10));
    let r = send(prog, third!);
    t.is(r.verdict, dropOf[prog], 'the last fragment, first: dropped');
    t.deepEqual(r.global, { rx_packets: 1, drop_fragment: 1 });
    r = send(prog, first!);
    t.deepEqual(r.global, { rx_packets: 1, forwarded_stack: 1 }, 'the first fragment is balanced');
    const backend = dst6(r.out);
    t.is(backend, maglevPick(lb, dp, 'dns6f', spec));
    for (const [what, f] of [['second', second!], ['third, sent again', third!]] as const) {
      r = send(prog, f);
      t.deepEqual(r.global, { rx_packets: 1, frag_translated: 1, forwarded_stack: 1 }, `${what}: counters`);
      t.is(dst6(r.out), backend, `${what}: to the first fragment's backend`);
    }
  });

  test.serial(`${prog}: an IPv6 fragment whose first never came: dropped to a VIP, passed elsewhere`, (t) => {
    const toVip = fragmentPacket6(buildPacket6({ saddr: CLIENT, daddr: VIP, proto: 'udp', sport: port(20), dport: 53, payload: Buffer.alloc(2000) }), 1448, fragId(20))[1]!;
    let r = send(prog, toVip);
    t.is(r.verdict, dropOf[prog]);
    t.deepEqual(r.global, { rx_packets: 1, drop_fragment: 1 });
    const elsewhere = fragmentPacket6(buildPacket6({ saddr: CLIENT, daddr: ELSEWHERE, proto: 'udp', sport: port(21), dport: 53, payload: Buffer.alloc(2000) }), 1448, fragId(20));
    for (const f of elsewhere) {
      r = send(prog, f);
      t.is(r.verdict, passOf[prog]);
      t.deepEqual(r.global, { rx_packets: 1, passed_other: 1 });
      t.true(r.out.equals(f), 'untouched');
    }
    t.is(dp.raw.mapLookup('frag6', frag6Key(CLIENT, ELSEWHERE, fragId(20))), null, 'nothing kept for a datagram not to a VIP');
  });

  test.serial(`${prog}: an atomic fragment is an ordinary packet; nothing is kept for it`, (t) => {
    const spec: Packet6Spec = {
      saddr: CLIENT, daddr: VIP, proto: 'udp', sport: port(30), dport: 53, ext: [{ type: 44, fragOffset: 0, more: false, id: fragId(30) }],
    };
    const frame = buildPacket6(spec);
    const r = send(prog, frame);
    t.is(r.verdict, passOf[prog]);
    t.deepEqual(r.global, { rx_packets: 1, forwarded_stack: 1 });
    const o = parsePacket6(r.out);
    t.deepEqual([o.daddr, o.dport], [maglevPick(lb, dp, 'dns6f', spec), 5353]);
    t.true(o.l4ChecksumOk, 'UDP checksum');
    t.deepEqual(fragInfo6(r.out), fragInfo6(frame), 'the fragment header is kept');
    t.is(dp.raw.mapLookup('frag6', frag6Key(CLIENT, VIP, fragId(30))), null, 'no frag6 entry');
    // A "later fragment" of the same identification finds nothing.
    const later = Buffer.from(frame);
    later.writeUInt16BE(8, 54 + 2);
    t.deepEqual(send(prog, later).global, { rx_packets: 1, drop_fragment: 1 });
  });

  test.serial(`${prog}: a first fragment without its whole header chain and L4 header is malformed (RFC 7112)`, (t) => {
    const cases: Array<[string, Buffer]> = [];
    // TCP: the fragment ends 8 bytes into the TCP header.
    const tcp = fragmentPacket6(buildPacket6({ saddr: CLIENT, daddr: VIP, proto: 'tcp', sport: port(40), dport: 80, payload: Buffer.alloc(64) }), 8, fragId(40))[0]!;
    cases.push(['8 bytes of a TCP header', tcp]);
    // The same cut, and the frame padded past payload_len (a short packet on Ethernet).
    cases.push(['8 bytes of a TCP header, the frame padded', Buffer.concat([tcp, Buffer.alloc(32)])]);
    // UDP: the first fragment holds no UDP byte at all... 0 is not allowed; a destination options header after the fragment header, cut.
    const udp = buildPacket6({
      saddr: CLIENT, daddr: VIP, proto: 'udp', sport: port(41), dport: 53,
      ext: [{ type: 44, more: true, id: fragId(41) }, { type: 60, length: 16 }],
    });
    const cut = Buffer.from(udp.subarray(0, 54 + 8 + 8));
    cut.writeUInt16BE(16, 18);
    cases.push(['a destination options header cut in half', cut]);
    for (const [what, frame] of cases) {
      const r = send(prog, frame);
      t.is(r.verdict, dropOf[prog], `${what}: dropped`);
      t.deepEqual(r.global, { rx_packets: 1, drop_malformed: 1 }, `${what}: counters`);
    }
  });

  test.serial(`${prog}: an ICMPv6 error from the backend's side reaches the client about its own packet to the VIP`, (t) => {
    const cases: Array<[string, Packet6Spec, number, number, number, number | undefined]> = [
      // what, the client's packet, type, code, the 32 bits after the checksum, bytes quoted
      ['destination unreachable, port unreachable, about a UDP datagram', {
        saddr: CLIENT, daddr: VIP, proto: 'udp', sport: port(50), dport: 53, payload: Buffer.alloc(40, 7),
      }, 1, 4, 0, undefined],
      ['packet too big about a TCP segment', {
        saddr: CLIENT, daddr: VIP, proto: 'tcp', sport: port(51), dport: 80, tcpFlags: { ack: true }, payload: Buffer.alloc(200, 8),
      }, 2, 0, 1400, undefined],
      ['time exceeded about a TCP SYN', {
        saddr: CLIENT, daddr: VIP, proto: 'tcp', sport: port(52), dport: 80, tcpFlags: { syn: true },
      }, 3, 0, 0, undefined],
      ['parameter problem about a UDP datagram', {
        saddr: CLIENT, daddr: VIP, proto: 'udp', sport: port(53), dport: 53,
      }, 4, 0, 6, undefined],
      ['a quote of only 8 TCP bytes (no TCP checksum in it)', {
        saddr: CLIENT, daddr: VIP, proto: 'tcp', sport: port(54), dport: 80, tcpFlags: { syn: true },
      }, 1, 1, 0, 48],
      ['a quote with a destination options header', {
        saddr: CLIENT, daddr: VIP, proto: 'udp', sport: port(55), dport: 53, ext: [{ type: 60, length: 16 }],
      }, 1, 4, 0, undefined],
    ];
    for (const [what, spec, type, code, rest, quote] of cases) {
      const sent = buildPacket6(spec);
      const dnat = send(prog, sent);
      t.is(dnat.verdict, passOf[prog], `${what}: the packet is balanced`);
      const backend = maglevPick(lb, dp, spec.proto === 'tcp' ? 'web6f' : 'dns6f', spec);
      t.is(dst6(dnat.out), backend);
      // The backend answers the packet it got.
      const q = quote === undefined ? {} : { quote };
      const err = icmp6Error({ saddr: backend, daddr: CLIENT, type, code, rest, about: dnat.out, ...q });
      const r = send(prog, err);
      t.is(r.verdict, passOf[prog], `${what}: verdict`);
      t.deepEqual(r.global, { rx_packets: 1, icmp_translated: 1, forwarded_stack: 1 }, `${what}: counters`);
      // What the client gets: from the VIP, about the packet it sent.
      assertFrame(t, what, r.out, icmp6Error({ saddr: VIP, daddr: CLIENT, type, code, rest, about: sent, ...q }));
      if (quote === undefined) t.true(quotedL4Ok(r.out), `${what}: the quoted L4 checksum sums right`);
    }
  });

  test.serial(`${prog}: a router's ICMPv6 error keeps its source; the quote is restored`, (t) => {
    const spec: Packet6Spec = { saddr: CLIENT, daddr: VIP, proto: 'tcp', sport: port(60), dport: 80, tcpFlags: { syn: true } };
    const sent = buildPacket6(spec);
    const dnat = send(prog, sent);
    for (const [type, code, rest] of [[3, 0, 0], [2, 0, 1280], [1, 3, 0]] as const) {
      const r = send(prog, icmp6Error({ saddr: ROUTER, daddr: CLIENT, type, code, rest, about: dnat.out }));
      t.deepEqual(r.global, { rx_packets: 1, icmp_translated: 1, forwarded_stack: 1 }, `type ${type}: counters`);
      assertFrame(t, `type ${type} from a router`, r.out, icmp6Error({ saddr: ROUTER, daddr: CLIENT, type, code, rest, about: sent }));
    }
  });

  test.serial(`${prog}: an ICMPv6 error from the client's side reaches the backend about its own reply`, (t) => {
    const cases: Array<[string, Packet6Spec, number, number, number]> = [
      ['packet too big about a TCP reply', { saddr: CLIENT, daddr: VIP, proto: 'tcp', sport: port(70), dport: 80, tcpFlags: { syn: true } }, 2, 0, 1280],
      ['port unreachable about a UDP reply', { saddr: CLIENT, daddr: VIP, proto: 'udp', sport: port(71), dport: 53 }, 1, 4, 0],
      ['time exceeded about a TCP reply', { saddr: CLIENT, daddr: VIP, proto: 'tcp', sport: port(72), dport: 80, tcpFlags: { syn: true } }, 3, 1, 0],
      ['parameter problem about a UDP reply', { saddr: CLIENT, daddr: VIP, proto: 'udp', sport: port(73), dport: 53 }, 4, 1, 40],
    ];
    for (const [what, spec, type, code, rest] of cases) {
      send(prog, buildPacket6(spec));
      const backend = maglevPick(lb, dp, spec.proto === 'tcp' ? 'web6f' : 'dns6f', spec);
      const bport = spec.proto === 'tcp' ? 8080 : 5353;
      // The backend's reply, as it sent it, and as the client got it.
      const reply = buildPacket6({
        saddr: backend, daddr: CLIENT, proto: spec.proto, sport: bport, dport: spec.sport!,
        tcpFlags: { syn: true, ack: true }, payload: Buffer.alloc(100, 3),
      });
      const restored = send(prog, reply);
      t.is(src6(restored.out), VIP, `${what}: the reply is restored`);
      const r = send(prog, icmp6Error({ saddr: CLIENT, daddr: VIP, type, code, rest, about: restored.out }));
      t.is(r.verdict, passOf[prog], `${what}: verdict`);
      t.deepEqual(r.global, { rx_packets: 1, icmp_translated: 1, forwarded_stack: 1 }, `${what}: counters`);
      assertFrame(t, what, r.out, icmp6Error({ saddr: CLIENT, daddr: backend, type, code, rest, about: reply }));
      t.true(quotedL4Ok(r.out), `${what}: the quoted L4 checksum sums right`);
    }
  });

  test.serial(`${prog}: an ICMPv6 error about no tracked flow, or a later fragment, passes byte-identical`, (t) => {
    const tracked: Packet6Spec = { saddr: CLIENT, daddr: VIP, proto: 'udp', sport: port(80), dport: 53, payload: Buffer.alloc(3000, 4) };
    const frags = fragmentPacket6(buildPacket6(tracked), 1448, fragId(80));
    const firstOut = send(prog, frags[0]!).out;
    const laterOut = send(prog, frags[1]!).out;
    const backend = dst6(firstOut);
    const cases: Array<[string, Buffer]> = [
      ['about a flow to no VIP', icmp6Error({
        saddr: ELSEWHERE, daddr: CLIENT, type: 1, code: 4,
        about: buildPacket6({ saddr: CLIENT, daddr: ELSEWHERE, proto: 'udp', sport: port(81), dport: 53 }),
      })],
      ['about a backend port no flow used', icmp6Error({
        saddr: BACKENDS[0]!, daddr: CLIENT, type: 2, code: 0, rest: 1400,
        about: buildPacket6({ saddr: CLIENT, daddr: BACKENDS[0]!, proto: 'tcp', sport: port(82), dport: 8080 }),
      })],
      ['about a tracked datagram\'s later fragment (no ports in it)', icmp6Error({
        saddr: backend, daddr: CLIENT, type: 3, code: 1, about: laterOut,
      })],
      ['about an ICMPv6 echo', icmp6Error({
        saddr: BACKENDS[1]!, daddr: CLIENT, type: 1, code: 0,
        about: buildPacket6({ saddr: CLIENT, daddr: BACKENDS[1]!, proto: 'icmp6', icmp: { type: 128, code: 0 } }),
      })],
      ['an echo request to the VIP (not an error)', buildPacket6({
        saddr: CLIENT, daddr: VIP, proto: 'icmp6', icmp: { type: 128, code: 0, rest: 0x10001 }, payload: Buffer.alloc(56, 1),
      })],
      ['an error of an unknown type (5)', icmp6Error({
        saddr: backend, daddr: CLIENT, type: 5, code: 0, about: firstOut,
      })],
    ];
    for (const [what, frame] of cases) {
      const r = send(prog, frame);
      t.is(r.verdict, passOf[prog], `${what}: verdict`);
      t.deepEqual(r.global, { rx_packets: 1, passed_other: 1 }, `${what}: counters`);
      t.true(r.out.equals(frame), `${what}: untouched`);
    }
  });
}

/*
 * Packet too big: a namespace whose FIB the programs ask (the test run
 * resolves ingress_ifindex and routes there), its two veth ends both in
 * it: own0 towards the clients (MTU 1,280, the IPv6 minimum), own1 towards
 * the backends (MTU 1,300).
 */
function ptbNamespace(t: ExecutionContext): { path: string; client: number; backend: number } {
  const ns = `sl-ptb6-${process.pid}`;
  const ip = (...a: string[]): string => execFileSync('ip', a, { encoding: 'utf8' });
  ip('netns', 'add', ns);
  t.teardown(() => ip('netns', 'del', ns));
  ip('-n', ns, 'link', 'add', 'own0', 'mtu', '1280', 'type', 'veth', 'peer', 'name', 'own1', 'mtu', '1300');
  for (const dev of ['own0', 'own1']) ip('-n', ns, 'link', 'set', dev, 'up');
  ip('-n', ns, '-6', 'addr', 'add', '2001:db8:51::1/64', 'dev', 'own0', 'nodad');
  ip('-n', ns, '-6', 'addr', 'add', 'fd02::1/64', 'dev', 'own1', 'nodad');
  execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
  const ifindex = (dev: string): number => (JSON.parse(ip('-n', ns, '-j', 'link', 'show', dev)) as Array<{ ifindex: number }>)[0]!.ifindex;
  return { path: `/var/run/netns/${ns}`, client: ifindex('own0'), backend: ifindex('own1') };
}

test.serial('packet too big, at XDP and at tc, both ways: from the VIP to the client, from the client to the backend, byte for byte', async (t) => {
  const ns = ptbNamespace(t);
  const fdp = await NativeDataplane.open({ fibRedirect: true, capacity: { conntrack: 4096, conntrack6: 4096 } });
  t.teardown(() => fdp.close());
  const flb = new LoadBalancer(fdp);
  await flb.applyMany([web, dns]);
  const run = (prog: 'xdp' | 'tc', frame: Buffer, ingress: number): { verdict: number; out: Buffer; global: Record<string, number> } => {
    const before = fdp.globalStats();
    const r = fdp.raw.testRun(prog, frame, { ingressIfindex: ingress, netnsPath: ns.path });
    const after = fdp.globalStats();
    const global: Record<string, number> = {};
    for (const k of Object.keys(after) as Array<keyof typeof after>) if (after[k] !== before[k]) global[k] = Number(after[k] - before[k]);
    return { verdict: r.retval, out: r.data, global };
  };
  const tx = { xdp: XDP_TX, tc: TC_ACT_REDIRECT } as const;
  for (const prog of ['xdp', 'tc'] as const) {
    for (const proto of ['tcp', 'udp'] as const) {
      const sport = (prog === 'xdp' ? 34000 : 35000) + (proto === 'tcp' ? 1 : 2);
      const dport = proto === 'tcp' ? 80 : 53;
      const bport = proto === 'tcp' ? 8080 : 5353;
      const open: Packet6Spec = { saddr: CLIENT, daddr: VIP, proto, sport, dport, tcpFlags: { syn: true } };
      // A small first packet: the flow is made (its next hop is not resolved: to the stack).
      const first = run(prog, buildPacket6(open), ns.client);
      const backend = dst6(first.out);
      t.is(backend, maglevPick(flb, fdp, proto === 'tcp' ? 'web6f' : 'dns6f', open), `${prog} ${proto}: balanced`);

      // 1,460 bytes to the VIP: over the backend link's 1,300.
      const big = buildPacket6({ ...open, tcpFlags: { ack: true }, payload: Buffer.alloc(1460 - 40 - (proto === 'tcp' ? 20 : 8), 0x61) });
      let r = run(prog, big, ns.client);
      t.is(r.verdict, tx[prog], `${prog} ${proto}: the packet became its answer, sent back`);
      t.deepEqual(r.global, { rx_packets: 1, icmp_frag_needed: 1 }, `${prog} ${proto}: counters`);
      assertFrame(t, `${prog} ${proto}: packet too big from the VIP`, r.out, packetTooBig6For(big, 1300));

      // The backend's 1,460-byte reply: over the client link's 1,280.
      const reply = buildPacket6({
        saddr: backend, daddr: CLIENT, proto, sport: bport, dport: sport, tcpFlags: { ack: true },
        payload: Buffer.alloc(1460 - 40 - (proto === 'tcp' ? 20 : 8), 0x62),
      });
      r = run(prog, reply, ns.backend);
      t.is(r.verdict, tx[prog], `${prog} ${proto} reply: the packet became its answer, sent back`);
      t.deepEqual(r.global, { rx_packets: 1, icmp_frag_needed: 1 }, `${prog} ${proto} reply: counters`);
      assertFrame(t, `${prog} ${proto}: packet too big from the client`, r.out, packetTooBig6For(reply, 1280));
    }
  }
  // What fits goes on, rewritten.
  const fits = run('xdp', buildPacket6({ saddr: CLIENT, daddr: VIP, proto: 'udp', sport: 34002, dport: 53, payload: Buffer.alloc(1000) }), ns.client);
  t.is(fits.global.icmp_frag_needed, undefined, 'a packet within the MTU is not answered');
  t.is(parsePacket6(fits.out).dport, 5353);
});
