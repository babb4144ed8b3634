/**
 * What the packet fuzzer generates, as fast-check arbitraries: a scenario
 * is a set of services (VIPs, ports, TCP/UDP, backends, affinity, drop or
 * reject) and a sequence of steps: packets at XDP or tc, and changes
 * between them (drains, backend and service deletes, affinity timeouts,
 * conntrack entries forgotten, expired, aged or evicted one flow at a
 * time, the hairpin address). A service may take another's backends, so
 * that a client port reused towards two VIPs meets the same backend
 * endpoint (a reply tuple clash).
 *
 * A packet names its flow abstractly (the i-th service, its j-th backend,
 * the k-th client), resolved against the services as they are when it is
 * sent (resolveFrame), so that fast-check shrinks a scenario without
 * making its packets meaningless. Addresses come from small pools so that
 * flows repeat: the fuzzer reaches established flows, replies, affinity
 * and reply_nat, not only new flows.
 *
 * A datagram step sends one flow's packet cut into fragments (frag.h): in
 * order, a later fragment before the first, the first alone, the later
 * ones alone, or backwards; with an IP id from a pool of three (packet
 * steps use the first), so that datagrams of several sources, and of one
 * source over time, share an id; optionally interleaved with a datagram of
 * another client to the same service and with the same id.
 *
 * Services are IPv4, IPv6 or dual stack (an IPv4 and an IPv6 frontend of
 * one service, each with the backends of its family, as expandDefinition
 * makes them), so that about a third of the frames are IPv6; a flow is of
 * its service's family. IPv6 frames get a hop limit, a flow label,
 * extension headers (sometimes too many, too long, out of order, or a
 * routing header with segments left), a fragment header, ICMPv6
 * informational messages (ND, MLD, echo) from link-local sources too, and
 * mutations of their own (payload length, next header, extension header
 * length, a cut at every header boundary).
 */
import { fmtIp6, fragmentPacket } from './packet.js';
import fc from 'fast-check';
import type { ServiceSpec } from '../../src/model/service.js';
import {
  buildFrame,
  fragmentFrame6,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  type Ext6Spec,
  type FrameSpec,
  type L4Spec,
  type Mutation,
} from './fuzz-frames.js';

/**
 * IPv6 fragments and ICMPv6 errors about tracked flows, translated by
 * frag6.h and icmp6_nat.h (fuzz-check.ts judges both). On, a datagram step
 * of an IPv6 flow sends its fragments in order or out of order, sharing
 * ids as IPv4's do, and ICMPv6 errors quote tracked flows; off, the
 * generator sends only an IPv6 datagram's first fragment or its later ones
 * (of an id no first fragment has), and errors quoting junk.
 */
export const IPV6_TRANSLATIONS = true;

export const VIPS = ['10.96.0.10', '10.96.0.20', '10.96.0.30', '10.96.0.40'];
export const SERVICE_PORTS = [80, 53, 443, 8080];
export const BACKEND_ADDRS = ['10.1.0.11', '10.1.0.12', '10.1.0.13', '10.1.0.14', '10.1.0.15', '10.1.0.16'];
export const BACKEND_PORTS = [8080, 5353, 80];
export const CLIENTS = ['192.168.50.7', '192.168.50.8', '192.168.60.1', '172.16.5.5'];
export const CLIENT_PORTS = [40000, 40001, 41000, 53];
export const HAIRPIN_ADDR = '192.168.80.1';
export const ROUTER = '172.31.0.1';
/** The IPv6 pools: VIPs in fd96::/112, backends, clients (a ULA one too), the hairpin address, a router. */
export const VIPS6 = ['fd96::10', 'fd96::20', 'fd96::30', 'fd96::40'];
export const BACKEND_ADDRS6 = ['fd01::11', 'fd01::12', 'fd01::13', 'fd01::14', 'fd01::15', 'fd01::16'];
export const CLIENTS6 = ['2001:db8:50::7', '2001:db8:50::8', '2001:db8:60::1', 'fd05::5'];
export const HAIRPIN6_ADDR = 'fd80::1';
export const ROUTER6 = 'fd31::1';
/** Where ND and MLD come from: a link-local address (passed, never forwarded). */
export const LINK_LOCAL6 = 'fe80::1';

export interface ServiceGen {
  /** 4, 6, or both: an IPv4 and an IPv6 frontend (the same VIP, port and backend indexes in each family's pools). */
  family: 4 | 6 | 'dual';
  vip: number;
  port: number;
  proto: 'tcp' | 'udp';
  backends: Array<{ addr: number; port: number; draining: boolean }>;
  affinity: boolean;
  drop: boolean;
  /** Serve the backends of the scenario's service of this index (mod their count) in place of its own, if it comes earlier. */
  shareBackendsOf: number | null;
}

export type FlowGen =
  /** A client to a service's VIP:port (or another port, or the other protocol). */
  | { kind: 'client'; svc: number; client: number; cport: number; port: 'same' | 'other'; otherProto: boolean }
  /** A backend's packet to a client (a reply, or not: a SYN from a backend opens a flow of its own). */
  | { kind: 'reply'; svc: number; backend: number; client: number; cport: number; toHairpin: boolean }
  /** A backend calling its own service. */
  | { kind: 'hairpin'; svc: number; backend: number; cport: number }
  | { kind: 'random'; saddr: number; daddr: number; sport: number; dport: number; proto: 'tcp' | 'udp'; v6: { saddr: string; daddr: string } | null };

export interface ShapeGen {
  flags: number;
  seq: number;
  payload: number[];
  ipOptions: number[];
  tcpOptions: number[];
  ttl: number;
  df: boolean;
  mf: boolean;
  fragOffset: number;
  mac: 'unicast' | 'broadcast' | 'multicast';
  udpZero: boolean;
  /** IPv6: the flow label, extension headers and a fragment header (its id an index of DATAGRAM_IDS). */
  flowLabel: number;
  ext6: Ext6Spec[];
  frag6: { offset: number; more: boolean; id: number; at: number } | null;
}

export interface IcmpGen {
  type: number;
  code: number;
  /** The quoted packet: the flow as its sender sent it, after the NAT (DNAT/restore), or turned around. */
  view: 'sent' | 'natted' | 'reversed';
  /** Who sends the error: a router on the way, or the far end of the quoted packet. */
  from: 'router' | 'far';
  quoteL4: number;
  /** Set: the error is about the packet that would answer the conntrack entry at this index of the sorted table (live or dead), not about the step's flow. */
  entry: number | null;
  /** IPv6 flows: the ICMPv6 type (informational: echo, MLD, ND; errors 1-4 quote the flow only with IPV6_TRANSLATIONS). */
  type6: number;
}

export interface PacketStep {
  kind: 'packet';
  prog: 'xdp' | 'tc';
  flow: FlowGen;
  shape: ShapeGen;
  /** Set: the packet is an ICMP error quoting the flow's packet; other protocols: a raw payload. */
  icmp: IcmpGen | null;
  otherProto: number | null;
  mutations: Mutation[];
  /** The mutations of an IPv6 frame (a flow of an IPv6 service or an IPv6 random flow). */
  mutations6: Mutation[];
}

export type Step =
  | PacketStep
  | { kind: 'drain'; svc: number; backend: number; draining: boolean }
  | { kind: 'removeBackend'; svc: number; backend: number }
  | { kind: 'deleteService'; svc: number }
  | { kind: 'restoreService'; svc: number }
  | { kind: 'expireAffinity' }
  | { kind: 'forgetFlows' }
  /** The entry at this index of the sorted table (and its peer, with `both`) dead since `ago` seconds before now. */
  | { kind: 'expire'; entry: number; both: boolean; ago: number }
  /** The entry's (and its peer's; null: every entry's) last packet `seconds` earlier: its expiry that much sooner (past now: dead). */
  | { kind: 'age'; entry: number | null; both: boolean; seconds: number }
  /**
   * One client port towards two service ports: the i-th service's, then
   * another of its protocol that shares a backend endpoint with it (if
   * there is one): the second flow's reply tuple may be the first's.
   */
  | { kind: 'twin'; prog: 'xdp' | 'tc'; svc: number; client: number; cport: number; shape: ShapeGen }
  /** The entry at this index among the reply (or forward) entries evicted alone, its peer kept (as the LRU does). */
  | { kind: 'evict'; entry: number; reply: boolean }
  | { kind: 'hairpin'; on: boolean }
  | DatagramStep;

/** One flow's packet, cut into fragments of `piece` bytes of data and sent in `order` (and, with `alsoClient`, a datagram of that client's interleaved). */
export interface DatagramStep {
  kind: 'datagram';
  prog: 'xdp' | 'tc';
  flow: FlowGen;
  shape: ShapeGen;
  id: number;
  /** Bytes of payload: more than a piece, so that there are at least two fragments. */
  size: number;
  piece: number;
  order: 'inOrder' | 'laterFirst' | 'firstOnly' | 'laterOnly' | 'backwards';
  alsoClient: number | null;
}

/** The IP ids datagrams are sent with: packet steps use the first. */
export const DATAGRAM_IDS = [0x1234, 0x4242, 0x0001];

export interface Scenario {
  services: ServiceGen[];
  hairpin: boolean;
  steps: Step[];
}

const serviceArb: fc.Arbitrary<ServiceGen> = fc.record({
  family: fc.oneof({ weight: 6, arbitrary: fc.constant(4 as const) }, { weight: 2, arbitrary: fc.constant(6 as const) }, { weight: 2, arbitrary: fc.constant('dual' as const) }),
  vip: fc.nat(VIPS.length - 1),
  port: fc.nat(SERVICE_PORTS.length - 1),
  proto: fc.constantFrom('tcp' as const, 'udp' as const),
  backends: fc.array(fc.record({ addr: fc.nat(BACKEND_ADDRS.length - 1), port: fc.nat(BACKEND_PORTS.length - 1), draining: fc.boolean() }), { maxLength: 4 }),
  affinity: fc.boolean(),
  drop: fc.boolean(),
  shareBackendsOf: fc.oneof({ weight: 2, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat(5) }),
});

/** An IPv6 address: the pools', the ones no packet is forwarded from (::, ::1, link-local, multicast), a v4-mapped one, or any. */
const addr6Arb: fc.Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom('::', '::1', 'fe80::1', 'febf::2', 'ff02::1', 'ff02::1:ff00:11', '::ffff:10.0.0.1', VIPS6[0]!, BACKEND_ADDRS6[0]!, CLIENTS6[0]!) },
  { weight: 1, arbitrary: fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((w) => {
    const b = Buffer.alloc(16);
    w.forEach((x, i) => b.writeUInt16BE(x, i * 2));
    return fmtIp6(b);
  }) },
);

/** An index into a pool, most often its first: flows repeat, so that packets meet the entries (live, dead, closing, clashing) of earlier ones. */
const few = (max: number): fc.Arbitrary<number> => fc.oneof({ weight: 2, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.nat(max) });

const flowArb: fc.Arbitrary<FlowGen> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('client' as const), svc: fc.nat(7), client: few(CLIENTS.length - 1), cport: few(CLIENT_PORTS.length - 1), port: fc.constantFrom('same' as const, 'same' as const, 'other' as const), otherProto: fc.constant(false) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('client' as const), svc: fc.nat(7), client: few(CLIENTS.length - 1), cport: few(CLIENT_PORTS.length - 1), port: fc.constantFrom('same' as const, 'other' as const), otherProto: fc.constant(true) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('reply' as const), svc: fc.nat(7), backend: fc.nat(3), client: few(CLIENTS.length - 1), cport: few(CLIENT_PORTS.length - 1), toHairpin: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('hairpin' as const), svc: fc.nat(7), backend: fc.nat(3), cport: few(CLIENT_PORTS.length - 1) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('random' as const), saddr: fc.nat(), daddr: fc.nat(), sport: fc.nat(65535), dport: fc.nat(65535), proto: fc.constantFrom('tcp' as const, 'udp' as const), v6: fc.option(fc.record({ saddr: addr6Arb, daddr: addr6Arb }), { freq: 3 }) }) },
);

const bytes = (max: number): fc.Arbitrary<number[]> => fc.array(fc.nat(255), { maxLength: max });

/**
 * One IPv6 extension header: hop-by-hop options (first or, wrongly, not),
 * destination options, a routing header (segments left most often 0),
 * or now and then a fragment header or another type.
 */
const ext6Arb: fc.Arbitrary<Ext6Spec> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ type: fc.constantFrom(0, 60), bytes: bytes(30) }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant(43), bytes: fc.tuple(fc.nat(4), fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat(255) }), bytes(20)).map(([t, sl, rest]) => [t, sl, ...rest]) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constantFrom(44, 51, 50, 59, 6, 17, 58), bytes: bytes(14) }) },
);

const shapeArb: fc.Arbitrary<ShapeGen> = fc.record({
  flags: fc.oneof(
    fc.constantFrom(TCP_SYN, TCP_ACK, TCP_ACK | TCP_PSH, TCP_SYN | TCP_ACK, TCP_FIN | TCP_ACK, TCP_RST),
    /* The lifecycle's edges: a FIN, a RST either way, a FIN with a SYN. */
    fc.constantFrom(TCP_FIN, TCP_RST | TCP_ACK, TCP_FIN | TCP_ACK | TCP_PSH, TCP_SYN | TCP_FIN),
    fc.nat(0x3f),
  ),
  seq: fc.nat(),
  payload: bytes(48),
  ipOptions: fc.oneof({ weight: 4, arbitrary: fc.constant<number[]>([]) }, { weight: 1, arbitrary: fc.oneof(fc.constant<number[]>([1, 1, 1, 0]), fc.constant<number[]>([7, 7, 4, 0, 0, 0, 0, 0]), bytes(40)) }),
  tcpOptions: fc.oneof({ weight: 4, arbitrary: fc.constant<number[]>([]) }, { weight: 1, arbitrary: fc.oneof(fc.constant<number[]>([2, 4, 5, 0xb4]), bytes(40)) }),
  ttl: fc.oneof(fc.constant(64), fc.nat(255)),
  df: fc.boolean(),
  mf: fc.oneof({ weight: 12, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  fragOffset: fc.oneof({ weight: 12, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat(0x1fff) }),
  mac: fc.oneof({ weight: 10, arbitrary: fc.constant('unicast' as const) }, { weight: 1, arbitrary: fc.constantFrom('broadcast' as const, 'multicast' as const) }),
  udpZero: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  flowLabel: fc.oneof(fc.constant(0), fc.nat(0xfffff)),
  ext6: fc.oneof(
    { weight: 8, arbitrary: fc.constant<Ext6Spec[]>([]) },
    { weight: 4, arbitrary: fc.array(ext6Arb, { minLength: 1, maxLength: 3 }) },
    /* Past the walk's bounds: five headers, or one longer than 256 bytes. */
    { weight: 1, arbitrary: fc.array(ext6Arb, { minLength: 4, maxLength: 6 }) },
    { weight: 1, arbitrary: fc.array(fc.nat(255), { minLength: 200, maxLength: 300 }).map((bytes) => [{ type: 60, bytes }]) },
  ),
  frag6: fc.oneof(
    { weight: 10, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.record({
      offset: fc.oneof(fc.constant(0), fc.nat(0x1fff).map((x) => x * 8)),
      more: fc.boolean(),
      id: few(2),
      at: fc.nat(3),
    }) },
  ),
});

const icmpArb: fc.Arbitrary<IcmpGen> = fc.record({
  type: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(3, 3, 11, 12) }, { weight: 1, arbitrary: fc.nat(255) }),
  code: fc.oneof(fc.constantFrom(0, 1, 3, 4), fc.nat(15)),
  view: fc.constantFrom('sent' as const, 'natted' as const, 'reversed' as const),
  from: fc.constantFrom('router' as const, 'far' as const),
  quoteL4: fc.oneof(fc.constant(8), fc.nat(64)),
  entry: fc.option(fc.nat(63), { freq: 2 }),
  /* Echo, MLD (130-132, 143), router and neighbour discovery (133-137); errors 1-4; anything. */
  type6: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 143) }, { weight: 2, arbitrary: fc.constantFrom(1, 2, 3, 4) }, { weight: 1, arbitrary: fc.nat(255) }),
});

/** Lengths near the edges (0, small, around a header) and anything. */
const lengthArb = fc.oneof(fc.constantFrom(0, 1, 7, 8, 19, 20, 21, 0xffff), fc.nat(120), fc.nat(0xffff));

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(200) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('totLen' as const), value: lengthArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('ihl' as const), value: fc.nat(15) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('version' as const), value: fc.nat(15) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('doff' as const), value: fc.nat(15) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('udpLen' as const), value: lengthArb, fixChecksum: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('ipCsum' as const), xor: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('l4Csum' as const), xor: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('pad' as const), bytes: fc.array(fc.nat(255), { minLength: 1, maxLength: 24 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('flip' as const), pos: fc.nat(120), xor: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('ethType' as const), value: fc.oneof(fc.constantFrom(0x86dd, 0x0806, 0x8100), fc.nat(0xffff)) }) },
);

/** Lengths of an IPv6 payload near the edges (0: a jumbogram's) and anything. */
const payloadLenArb = fc.oneof(fc.constantFrom(0, 1, 7, 8, 19, 20, 27, 28, 0xffff), fc.nat(160), fc.nat(0xffff));

/** The mutations of an IPv6 frame. */
export const mutation6Arb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('cut' as const), boundary: fc.nat(24), delta: fc.constantFrom(-1, 0, 0, 1) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(200) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('payloadLen' as const), value: payloadLenArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('nextHeader' as const), at: fc.nat(5), value: fc.oneof(fc.constantFrom(0, 6, 17, 43, 44, 50, 51, 58, 59, 60), fc.nat(255)) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('extLen' as const), at: fc.nat(5), value: fc.oneof(fc.constantFrom(0, 1, 30, 31, 32, 255), fc.nat(255)) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('version' as const), value: fc.nat(15) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('doff' as const), value: fc.nat(15) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('udpLen' as const), value: lengthArb, fixChecksum: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('l4Csum' as const), xor: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('pad' as const), bytes: fc.array(fc.nat(255), { minLength: 1, maxLength: 24 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('flip' as const), pos: fc.nat(120), xor: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('ethType' as const), value: fc.oneof(fc.constantFrom(0x0800, 0x0806, 0x8100), fc.nat(0xffff)) }) },
);

const packetArb: fc.Arbitrary<PacketStep> = fc.record({
  kind: fc.constant('packet' as const),
  prog: fc.constantFrom('xdp' as const, 'tc' as const),
  flow: flowArb,
  shape: shapeArb,
  icmp: fc.oneof({ weight: 7, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: icmpArb }),
  /* Any protocol; AH, ESP and no next header (which IPv6 passes) among them more often. */
  otherProto: fc.oneof({ weight: 40, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat(255) }, { weight: 1, arbitrary: fc.constantFrom(50, 51, 59) }),
  mutations: fc.oneof(
    { weight: 3, arbitrary: fc.constant<Mutation[]>([]) },
    { weight: 2, arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 3 }) },
  ),
  mutations6: fc.oneof(
    { weight: 3, arbitrary: fc.constant<Mutation[]>([]) },
    { weight: 2, arbitrary: fc.array(mutation6Arb, { minLength: 1, maxLength: 3 }) },
  ),
});

const datagramArb: fc.Arbitrary<DatagramStep> = fc.record({
  kind: fc.constant('datagram' as const),
  prog: fc.constantFrom('xdp' as const, 'tc' as const),
  /* Clients to services, and backends' replies (restored fragment by fragment), most often. */
  flow: fc.oneof({ weight: 4, arbitrary: flowArb }, { weight: 2, arbitrary: fc.record({ kind: fc.constant('reply' as const), svc: fc.nat(7), backend: fc.nat(3), client: few(CLIENTS.length - 1), cport: few(CLIENT_PORTS.length - 1), toHairpin: fc.constant(false) }) }),
  shape: shapeArb,
  id: few(DATAGRAM_IDS.length - 1),
  size: fc.integer({ min: 49, max: 120 }),
  piece: fc.constantFrom(16, 24, 48, 48),
  order: fc.constantFrom('inOrder' as const, 'inOrder' as const, 'laterFirst' as const, 'firstOnly' as const, 'laterOnly' as const, 'backwards' as const),
  alsoClient: fc.option(fc.nat(CLIENTS.length - 1), { freq: 3 }),
});

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 30, arbitrary: packetArb },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drain' as const), svc: fc.nat(7), backend: fc.nat(3), draining: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('removeBackend' as const), svc: fc.nat(7), backend: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deleteService' as const), svc: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restoreService' as const), svc: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'expireAffinity' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'forgetFlows' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('expire' as const), entry: fc.nat(63), both: fc.boolean(), ago: fc.constantFrom(0, 1, 3600) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('age' as const), entry: fc.option(fc.nat(63), { freq: 2 }), both: fc.boolean(), seconds: fc.constantFrom(1, 2, 9, 11, 59, 61, 74, 76) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('twin' as const), prog: fc.constantFrom('xdp' as const, 'tc' as const), svc: fc.nat(7), client: few(CLIENTS.length - 1), cport: few(CLIENT_PORTS.length - 1), shape: shapeArb }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('evict' as const), entry: fc.nat(63), reply: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('hairpin' as const), on: fc.boolean() }) },
  { weight: 2, arbitrary: datagramArb },
);

/** A scenario of up to `maxSteps` steps. */
export function scenarioArb(maxSteps: number): fc.Arbitrary<Scenario> {
  return fc.record({
    services: fc.array(serviceArb, { minLength: 1, maxLength: 6 }),
    hairpin: fc.boolean(),
    steps: fc.array(stepArb, { minLength: 1, maxLength: maxSteps, size: 'max' }),
  });
}

/** The two packets of a 'twin' step, against the services as they are now. */
export function twinPackets(t: Extract<Step, { kind: 'twin' }>, specs: readonly ServiceSpec[]): PacketStep[] {
  const i = t.svc % specs.length;
  const a = specs[i]!;
  const ends = new Set(a.backends.map((b) => `${b.address}:${b.port}`));
  let j = specs.findIndex((s, k) => k !== i && s.protocol === a.protocol && (s.address !== a.address || s.port !== a.port) &&
    s.backends.some((b) => ends.has(`${b.address}:${b.port}`)));
  if (j < 0) j = (i + 1) % specs.length;
  const packet = (svc: number): PacketStep => ({
    kind: 'packet', prog: t.prog, shape: t.shape, icmp: null, otherProto: null, mutations: [], mutations6: [],
    flow: { kind: 'client', svc, client: t.client, cport: t.cport, port: 'same', otherProto: false },
  });
  return [packet(i), packet(j)];
}

/**
 * The service specs of a scenario: one per distinct (VIP, port, protocol),
 * backends without duplicates; a dual-stack service gives two frontends,
 * "svcN" (IPv4) and "svcN-v6", each with its family's backends.
 */
export function serviceSpecs(gens: readonly ServiceGen[]): ServiceSpec[] {
  const seen = new Set<string>();
  const out: ServiceSpec[] = [];
  gens.forEach((g, i) => {
    for (const family of g.family === 'dual' ? [4, 6] as const : [g.family]) {
      const key = `${family}/${g.vip}/${g.port}/${g.proto}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const addrs = family === 6 ? BACKEND_ADDRS6 : BACKEND_ADDRS;
      const be = new Map<string, { address: string; port: number; state: 'active' | 'draining' }>();
      const from = g.shareBackendsOf === null ? i : g.shareBackendsOf % gens.length;
      for (const b of gens[from < i ? from : i]!.backends) {
        const address = addrs[b.addr]!;
        const port = BACKEND_PORTS[b.port]!;
        be.set(`${address}:${port}`, { address, port, state: b.draining ? 'draining' : 'active' });
      }
      out.push(serviceSpec(g, i, family, [...be.values()]));
    }
  });
  return out;
}

/** One frontend of a service generator, in one family. */
function serviceSpec(g: ServiceGen, i: number, family: 4 | 6, backends: ServiceSpec['backends']): ServiceSpec {
  return {
    name: g.family === 'dual' && family === 6 ? `svc${i}-v6` : `svc${i}`,
    address: (family === 6 ? VIPS6 : VIPS)[g.vip]!,
    port: SERVICE_PORTS[g.port]!,
    protocol: g.proto,
    backends,
    ...(g.affinity ? { sessionAffinity: { timeoutSeconds: 30 } } : {}),
    noBackends: g.drop ? 'drop' : 'reject',
  };
}

const intToIp = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

/** A flow's addresses and ports, and where the NAT would send it (for an ICMP error's 'natted' view). */
export interface Tuple { saddr: string; daddr: string; sport: number; dport: number; proto: 'tcp' | 'udp' }

/** Resolve a flow against the services of the moment (all of the scenario's, deleted ones too: packets to a deleted VIP). */
function resolveFlow(f: FlowGen, specs: readonly ServiceSpec[], hairpin4: string): { t: Tuple; natted: Tuple } {
  if (f.kind === 'random') {
    const t = f.v6
      ? { saddr: f.v6.saddr, daddr: f.v6.daddr, sport: f.sport, dport: f.dport, proto: f.proto }
      : { saddr: intToIp(f.saddr), daddr: intToIp(f.daddr), sport: f.sport, dport: f.dport, proto: f.proto };
    return { t, natted: t };
  }
  const s = specs[f.svc % specs.length]!;
  const six = s.address.includes(':');
  const clients = six ? CLIENTS6 : CLIENTS;
  const hairpin = six ? HAIRPIN6_ADDR : hairpin4;
  const be = s.backends.length ? s.backends[('backend' in f ? f.backend : 0) % s.backends.length]! : { address: (six ? BACKEND_ADDRS6 : BACKEND_ADDRS)[0]!, port: BACKEND_PORTS[0]! };
  if (f.kind === 'client') {
    const proto = f.otherProto ? (s.protocol === 'tcp' ? 'udp' : 'tcp') : s.protocol;
    const t = { saddr: clients[f.client % clients.length]!, daddr: s.address, sport: CLIENT_PORTS[f.cport]!, dport: f.port === 'same' ? s.port : s.port + 1, proto };
    return { t, natted: { ...t, daddr: be.address, dport: be.port } };
  }
  if (f.kind === 'hairpin') {
    const t = { saddr: be.address, daddr: s.address, sport: CLIENT_PORTS[f.cport]!, dport: s.port, proto: s.protocol };
    return { t, natted: { ...t, saddr: hairpin, daddr: be.address, dport: be.port } };
  }
  const t = { saddr: be.address, daddr: f.toHairpin ? hairpin : clients[f.client % clients.length]!, sport: be.port, dport: CLIENT_PORTS[f.cport]!, proto: s.protocol };
  return { t, natted: { ...t, saddr: s.address, sport: s.port } };
}

const MAC_A = [0x02, 0, 0, 0, 0, 0x01];
const MAC_B = [0x02, 0, 0, 0, 0, 0x02];

/**
 * The frame a packet step sends, with the services as they are now.
 * `placed` gives the backend a client's flow was placed on (its forward
 * entry), so that an ICMP error quotes the packet that backend got; without
 * it, or without an entry, the service's first backend.
 */
export function resolveFrame(p: PacketStep, specs: readonly ServiceSpec[], hairpin: string, placed?: (t: Tuple) => { address: string; port: number } | undefined, quoted?: (six: boolean) => Tuple | undefined): FrameSpec {
  const resolved = resolveFlow(p.flow, specs, hairpin);
  const t = resolved.t;
  let natted = resolved.natted;
  const at = p.icmp && p.flow.kind === 'client' && placed ? placed(t) : undefined;
  if (at) natted = { ...natted, daddr: at.address, dport: at.port };
  const sh = p.shape;
  const dstMac = sh.mac === 'broadcast' ? [255, 255, 255, 255, 255, 255] : sh.mac === 'multicast' ? [0x01, 0, 0x5e, 0, 0, 1] : MAC_B;
  const l4Of = (u: Tuple): L4Spec => u.proto === 'tcp'
    ? { kind: 'tcp', sport: u.sport, dport: u.dport, seq: sh.seq, flags: sh.flags, options: sh.tcpOptions, payload: sh.payload }
    : { kind: 'udp', sport: u.sport, dport: u.dport, zeroChecksum: sh.udpZero, payload: sh.payload };
  const ipOf = (u: Tuple): FrameSpec['ip'] => ({ saddr: u.saddr, daddr: u.daddr, ttl: sh.ttl, id: 0x1234, df: sh.df, mf: sh.mf, fragOffset: sh.fragOffset, options: sh.ipOptions });
  if (t.saddr.includes(':')) return resolveFrame6(p, t, natted, dstMac, l4Of, ipOf, quoted);
  if (p.icmp) {
    /* The quoted packet, as its sender sent it: an IPv4 header and the start of its L4 bytes. */
    const q = quoted?.(false) ?? (p.icmp.view === 'sent' ? t : p.icmp.view === 'natted' ? natted
      : { saddr: t.daddr, daddr: t.saddr, sport: t.dport, dport: t.sport, proto: t.proto });
    const inner: FrameSpec = { dstMac: MAC_B, srcMac: MAC_A, ip: { ...ipOf(q), options: [], mf: false, fragOffset: 0 }, l4: l4Of(q), mutations: [] };
    const innerIp = buildInner(inner);
    const quote = [...innerIp.subarray(0, 20 + Math.min(p.icmp.quoteL4, innerIp.length - 20))];
    /* The error goes back to the quoted packet's sender, from a router or from its destination. */
    const from = p.icmp.from === 'router' ? ROUTER : q.daddr;
    return { dstMac, srcMac: MAC_A, ip: { ...ipOf({ ...q, saddr: from, daddr: q.saddr }), mf: false, fragOffset: 0 }, l4: { kind: 'icmp', type: p.icmp.type, code: p.icmp.code, quote }, mutations: p.mutations };
  }
  const l4: L4Spec = p.otherProto !== null && p.otherProto !== 6 && p.otherProto !== 17
    ? { kind: 'raw', proto: p.otherProto, payload: sh.payload }
    : l4Of(t);
  return { dstMac, srcMac: MAC_A, ip: ipOf(t), l4, mutations: p.mutations };
}

/** The IPv6 fields of a shape: its fragment header's id from DATAGRAM_IDS (a later fragment's kept apart from first fragments' while IPV6_TRANSLATIONS is off). */
function ip6Of(sh: ShapeGen): NonNullable<FrameSpec['ip6']> {
  const f = sh.frag6;
  const id = f ? DATAGRAM_IDS[f.id % DATAGRAM_IDS.length]! | (f.offset && !IPV6_TRANSLATIONS ? 0x80000000 : 0) : 0;
  return { hopLimit: sh.ttl, flowLabel: sh.flowLabel, ext: sh.ext6, ...(f ? { frag: { ...f, id: id >>> 0 } } : {}) };
}

/** resolveFrame() for an IPv6 flow. */
function resolveFrame6(p: PacketStep, t: Tuple, natted: Tuple, dstMac: number[], l4Of: (u: Tuple) => L4Spec, ipOf: (u: Tuple) => FrameSpec['ip'], quoted?: (six: boolean) => Tuple | undefined): FrameSpec {
  const sh = p.shape;
  const ip6 = ip6Of(sh);
  if (p.icmp) {
    const type = p.icmp.type6;
    const error = type >= 1 && type <= 4;
    let quote: number[];
    if (error && IPV6_TRANSLATIONS) {
      /* The quoted packet, as its sender sent it: its IPv6 header, its extension headers and the start of its L4 bytes. */
      const q = quoted?.(true) ?? (p.icmp.view === 'sent' ? t : p.icmp.view === 'natted' ? natted
        : { saddr: t.daddr, daddr: t.saddr, sport: t.dport, dport: t.sport, proto: t.proto });
      /* An odd flow label: the shape's extension and fragment headers go in the quote (icmp6_nat.h walks 2 at most; a quoted later fragment has no ports), the error has none; even: the error has the fragment header. */
      const inQuote = (sh.flowLabel & 1) === 1;
      const innerOf = (ext: Ext6Spec[], frag?: NonNullable<FrameSpec['ip6']>['frag']): Buffer =>
        buildFrame({ dstMac: MAC_B, srcMac: MAC_A, ip: ipOf(q), ip6: { hopLimit: 64, flowLabel: 0, ext, ...(frag ? { frag } : {}) }, l4: l4Of(q), mutations: [] }).subarray(14);
      const inner = inQuote ? innerOf(sh.ext6, ip6.frag) : innerOf([]);
      const head = 40 + inner.length - innerOf([]).length;
      quote = [...inner.subarray(0, head + Math.min(p.icmp.quoteL4, inner.length - head))];
      const from = p.icmp.from === 'router' ? ROUTER6 : q.daddr;
      const outer = inQuote ? { hopLimit: ip6.hopLimit, flowLabel: ip6.flowLabel, ext: [] } : { ...ip6, ext: [] };
      return { dstMac, srcMac: MAC_A, ip: ipOf({ ...q, saddr: from, daddr: q.saddr }), ip6: outer, l4: { kind: 'icmp', type, code: p.icmp.code, quote }, mutations: p.mutations6 };
    }
    /* Informational messages between the flow's ends (either way), or from a link-local address (ND, MLD); an error quotes junk. */
    quote = sh.payload.slice(0, p.icmp.quoteL4);
    const u = p.icmp.view === 'reversed' ? { ...t, saddr: t.daddr, daddr: t.saddr } : t;
    const from = p.icmp.from === 'router' ? LINK_LOCAL6 : u.saddr;
    return { dstMac, srcMac: MAC_A, ip: ipOf({ ...u, saddr: from }), ip6, l4: { kind: 'icmp', type, code: p.icmp.code, quote }, mutations: p.mutations6 };
  }
  const l4: L4Spec = p.otherProto !== null && p.otherProto !== 6 && p.otherProto !== 17
    ? { kind: 'raw', proto: p.otherProto, payload: sh.payload }
    : l4Of(t);
  return { dstMac, srcMac: MAC_A, ip: ipOf(t), ip6, l4, mutations: p.mutations6 };
}

/** The IPv4 packet (no Ethernet header) of a frame spec. */
function buildInner(s: FrameSpec): Buffer {
  return buildFrame(s).subarray(14);
}

/** The frames of a datagram step, against the services as they are now. */
export function datagramFrames(d: DatagramStep, specs: readonly ServiceSpec[], hairpin: string): Buffer[] {
  const cut = (flow: FlowGen): Buffer[] => {
    const payload = Array.from({ length: d.size }, (_, i) => (d.shape.payload[i % Math.max(1, d.shape.payload.length)] ?? i) & 0xff);
    const p: PacketStep = {
      kind: 'packet', prog: d.prog, flow, shape: { ...d.shape, payload, mf: false, fragOffset: 0, ext6: [], frag6: null }, icmp: null, otherProto: null, mutations: [], mutations6: [],
    };
    const spec = resolveFrame(p, specs, hairpin);
    const id = DATAGRAM_IDS[d.id % DATAGRAM_IDS.length]!;
    spec.ip.id = id;
    if (spec.ip6) {
      /* Until frag6/icmp6 translation lands: a first fragment alone, or later ones alone, of an id no first fragment has. */
      const frags = fragmentFrame6(buildFrame(spec), d.piece, id);
      if (IPV6_TRANSLATIONS) return order(frags);
      if (d.order === 'laterOnly' || d.order === 'backwards') return fragmentFrame6(buildFrame(spec), d.piece, (id | 0x80000000) >>> 0).slice(1);
      return frags.slice(0, 1);
    }
    return order(fragmentPacket(buildFrame(spec), d.piece));
  };
  const order = (frags: Buffer[]): Buffer[] => {
    const [first, ...later] = frags;
    switch (d.order) {
      case 'inOrder': return frags;
      case 'laterFirst': return [later[later.length - 1]!, first!, ...later];
      case 'firstOnly': return [first!];
      case 'laterOnly': return later;
      case 'backwards': return [...frags].reverse();
    }
  };
  const a = cut(d.flow);
  if (d.alsoClient === null || d.flow.kind !== 'client') return a;
  const b = cut({ ...d.flow, client: d.alsoClient });
  const out: Buffer[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) out.push(...(a[i] ? [a[i]!] : []), ...(b[i] ? [b[i]!] : []));
  return out;
}
