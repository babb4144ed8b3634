/**
 * The packet fuzzer's checker: given what the dataplane held before a
 * packet (FuzzWorld), the frame sent and what came out (verdict, frame,
 * counter deltas), the properties it broke. Pure: no dataplane, so that
 * test/unit/fuzz-check.test.ts shows each property failing on a wrong
 * output without root.
 *
 * The properties (issue 15, item 8):
 *  - untouched: a packet for no VIP, of no tracked flow and no reply that
 *    reply_nat restores, leaves byte-identical with a pass verdict;
 *  - nat: a rewritten packet differs from the input only where the NAT
 *    writes (MACs, TTL, addresses, ports, checksums), goes to a backend of
 *    its service (forward) or comes from its service's VIP:port (reply); an
 *    answer (RST, ICMP port unreachable) is the one built from scratch;
 *  - checksums: every checksum of a rewritten frame is right where the
 *    input's was, and keeps the input's error where it was not (an
 *    incremental update must neither break nor launder one); a UDP checksum
 *    of 0 stays 0; an answer's are right;
 *  - malformed: a frame whose IPv4 version, IHL or total length, TCP data
 *    offset or UDP length the kernel would refuse is never rewritten: to a
 *    VIP dropped and counted drop_malformed, otherwise passed untouched and
 *    counted passed_malformed;
 *  - counters: rx_packets +1 and exactly one verdict counter, the one the
 *    verdict says; service and backend counters move only for a rewrite, by
 *    one packet and the packet's IPv4 total length (never more than the
 *    frame holds); the lifecycle's counters (ct_expired, ct_reply_stale,
 *    ct_rescheduled, ct_untracked, ct_reply_recreated, reply_restored,
 *    reply_ambiguous, hairpin_flows) move exactly when the lifecycle says;
 *  - conntrack: the table after the packet is the one the flow lifecycle
 *    (bpf/include/ct.h) makes of the table before it: an entry counts only
 *    while live (expires after the packet's second), a reply entry only
 *    while valid (its backend still its service's, at the packet's source);
 *    a stale reply entry is removed; a followed entry moves its flow's state
 *    (new -> established -> closing) and expiry in both entries, at a
 *    change of state or once the expiry is a step (an eighth of the
 *    timeout, at least a second) behind, writing a peer entry that is gone; a new flow writes
 *    both entries unless it is a RST, or its reply tuple is held by another
 *    live flow of another VIP:port (refused: ct_reply_clash); nothing else
 *    changes;
 *  - fragments (bpf/include/frag.h): a first fragment (MF, offset 0) is
 *    judged as an unfragmented packet (its UDP length the whole datagram's:
 *    only >= 8 asked), and when it is forwarded or restored its rewrite is
 *    kept in frag4 under (source, destination, protocol, IP id), replacing
 *    any entry there; a first fragment refused, answered or passed leaves
 *    frag4 as it was. A later fragment (offset > 0) with an entry gets the
 *    entry's address rewrite and nothing else (the IPv4 checksum brought
 *    along), counted frag_translated (and replies for a reply) and in the
 *    entry's service and backend counters as its first fragment was (a
 *    packet of its length, no new connection; a reply packet); without an
 *    entry it is dropped (drop_fragment) to a VIP and passes untouched
 *    elsewhere. Entries are never removed (the LRU of 8,192 ages them out,
 *    which a scenario never reaches: the rig clears frag4 before each);
 *    conntrack is not touched by a later fragment. A first fragment of
 *    another protocol passes untouched, to a VIP too;
 *  - icmp (bpf/include/icmp_nat.h): an ICMP error (type 3, 11 or 12, not
 *    a fragment) quoting the IPv4 header (version 4, IHL >= 5, no offset)
 *    and 8 bytes of TCP or UDP of a packet whose reversed tuple has a live,
 *    not hairpin entry is translated: from the backend's side (a reply
 *    entry still valid for the quoted destination) the quoted destination
 *    and port become the VIP's and the error's source, if it is the quoted
 *    destination, the VIP; from the client's side (a forward entry whose
 *    backend is still its own) the quoted source and port become the
 *    backend's and the error's destination, if it is the quoted source,
 *    the backend. The output is compared byte for byte with the input so
 *    translated, its checksums (outer IPv4, ICMP, quoted IPv4, quoted L4
 *    when quoted: 16 bytes of TCP, 8 of UDP, a UDP 0 kept) updated as
 *    RFC 1624 says, and each sum that was right in the input summed anew
 *    over the output. Counted icmp_translated and forwarded_stack, no
 *    service or backend counter; conntrack only read. Any other ICMP
 *    passes untouched. Fragmentation needed answers (pmtu.h) need a FIB
 *    lookup: the rig runs without FIB redirects, so icmp_frag_needed must
 *    never move.
 *
 * IPv6 (bpf/include/lb6.h, parsing.h parse_ipv6hdr, ct6.h, reject6.h) is
 * judged by the same rules, with what differs:
 *  - untouched also: a routing header with segments left (a waypoint),
 *    AH, ESP, no next header and any other upper layer, every ICMPv6
 *    message but a translated error (informational ones always), and
 *    anything from a source it never forwards (::, ::1, ff00::/8,
 *    fe80::/10), its upper layer unread;
 *  - icmp (bpf/include/icmp6_nat.h): an ICMPv6 error (types 1-4, not a
 *    fragment) is translated as an ICMP one, its quote walked past at most
 *    2 extension headers (128 bytes; a quoted later fragment passes) to
 *    TCP or UDP: the quoted 16-byte address and port, the quoted L4
 *    checksum when quoted, the error's own address when it is the quoted
 *    one, and the ICMPv6 checksum, which covers the pseudo-header, so the
 *    error's own address too (icmp6Translation); no header checksum;
 *  - malformed, as parse_ipv6hdr decides: version, a payload length of 0
 *    (jumbogram) or beyond the frame, more than 4 extension headers or
 *    more than 256 bytes of them, hop-by-hop options not first, an
 *    extension header beyond the payload length; TCP and UDP as for IPv4,
 *    and a UDP checksum of 0 (no checksum, which IPv6 forbids);
 *  - nat: the 16-byte addresses, the ports, the L4 checksum (pseudo-header
 *    and all) and the hop limit are the bytes the NAT owns: there is no
 *    header checksum to keep;
 *  - conntrack: conntrack6, in the same CtTable (its keys name IPv6
 *    addresses in brackets: ctKey), by ct.h's lifecycle as ct6.h runs it;
 *    the hairpin address is world.hairpin6;
 *  - answers: rst6For / portUnreachable6For built from scratch (the
 *    port unreachable quotes the extension headers and 64 bytes past them,
 *    at most 128: a datagram whose headers leave no room for its UDP
 *    header in that is dropped, not answered);
 *  - fragments (bpf/include/frag6.h): as IPv4's, in frag6 (fragKey6:
 *    source, destination and the 32-bit identification, no protocol, as
 *    Linux reassembles): a first fragment (its UDP length only >= 8
 *    asked) forwarded or restored keeps its rewrite there; a later one
 *    with an entry gets the 16-byte address rewrite (and a hairpin flow's
 *    other address) and nothing else, there being no header checksum,
 *    counted as IPv4's; without one it is dropped to a VIP and passes
 *    elsewhere. frag4 is never touched by IPv6, nor frag6 by IPv4.
 */
import { rstFor, portUnreachableFor, onesSum, rst6For, portUnreachable6For } from './packet.js';
import type { GlobalCounter } from '../../src/dataplane/codec.js';
import {
  ETH_LEN,
  ETH_P_IP,
  ETH_P_IPV6,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  bytesToIp,
  bytesToIp6,
  checksumSums,
  ipToBytes,
  NEXTHDR_DEST,
  NEXTHDR_FRAGMENT,
  NEXTHDR_HOP,
  NEXTHDR_ROUTING,
  pseudoSum6,
  readFrame,
  unforwardable6,
  type FrameReading,
} from './fuzz-frames.js';

export const PROPERTIES = ['untouched', 'nat', 'checksums', 'malformed', 'counters', 'conntrack', 'fragments', 'icmp'] as const;
export type Property = (typeof PROPERTIES)[number];

export type Prog = 'xdp' | 'tc';
export const VERDICTS = {
  xdp: { pass: 2, drop: 1, answer: 3 },
  tc: { pass: 0, drop: 2, answer: 7 },
} as const;

/** One backend of a service, as the dataplane holds it. */
export interface WorldBackend {
  id: number;
  address: string;
  port: number;
  /** Takes no new flows (draining, or weight 0). */
  draining: boolean;
}

/** One service port, as the dataplane holds it. */
export interface WorldService {
  id: number;
  vip: string;
  port: number;
  proto: number;
  backends: WorldBackend[];
  affinity: boolean;
  /** Without a usable backend: drop rather than answer. */
  drop: boolean;
}

/** A flow's state (struct ct_value.state). */
export type CtState = 'established' | 'new' | 'closing';

/** A conntrack entry, as the dataplane's codec gives it. */
export interface WorldConntrack {
  natAddress: string;
  natPort: number;
  /** 'forward' or 'reply'. */
  reply: boolean;
  hairpin: boolean;
  backendId: number;
  serviceId: number;
  state: CtState;
  /** Seconds of CLOCK_MONOTONIC, as the dataplane's u32. */
  created: number;
  expires: number;
}

/** The flows' idle timeouts the dataplane was loaded with, in seconds. */
export interface CtTimeouts { tcpSyn: number; tcpEstablished: number; tcpClosing: number; udp: number }

/** A conntrack table: entries by ctKey(), both families' (conntrack and conntrack6) in one. */
export type CtTable = ReadonlyMap<string, WorldConntrack>;

/** An address and port as a key names them: an IPv6 address in brackets. */
const endpoint = (addr: string, port: number): string => (addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`);

/** The key of the entry under one 5-tuple, as the packet carries it: its family shows (IPv6 addresses in brackets). */
export function ctKey(saddr: string, sport: number, daddr: string, dport: number, proto: number): string {
  return `${endpoint(saddr, sport)}>${endpoint(daddr, dport)}/${proto}`;
}

/** A frag4 entry (bpf/include/maps.h struct frag4_value): the rewrite a datagram's later fragments get. */
export interface WorldFrag {
  /** What the rewritten address becomes: the backend's (forward) or the VIP (reply). */
  newAddress: string;
  /** Hairpin: what the other address becomes; '0.0.0.0' otherwise. */
  peerNewAddress: string;
  serviceId: number;
  backendId: number;
  rewriteDst: boolean;
  hairpin: boolean;
}

/** A frag4 or frag6 table: entries by fragKey() or fragKey6(). */
export type FragTable = ReadonlyMap<string, WorldFrag>;

/** The key of a datagram's frag4 entry, as its fragments arrive. */
export function fragKey(saddr: string, daddr: string, proto: number, id: number): string {
  return `${saddr}>${daddr}/${proto}#${id}`;
}

/** The key of a datagram's frag6 entry (struct frag6_key: no protocol, a 32-bit identification). */
export function fragKey6(saddr: string, daddr: string, id: number): string {
  return `[${saddr}]>[${daddr}]#${id >>> 0}`;
}

/** A frag entry's peerNewAddress when it names none (not a hairpin flow), by family. */
const NO_PEER = { 4: '0.0.0.0', 6: '::' } as const;

/** What the dataplane held before the packet. */
export interface FuzzWorld {
  services: WorldService[];
  hairpin: string | null;
  /** The IPv6 hairpin address (node_config6); absent: none. */
  hairpin6?: string | null;
  /** The whole conntrack and conntrack6 tables. */
  conntrack: CtTable;
  /** The second (CLOCK_MONOTONIC, whole seconds) the packet is judged at. */
  now: number;
  timeouts: CtTimeouts;
  /** The whole frag4 table. */
  frag4: FragTable;
  /** The whole frag6 table. */
  frag6: FragTable;
}

export interface LbDelta { packets: number; bytes: number; newConnections: number; replyPackets: number }

/** What came out of one test run. */
export interface FuzzObservation {
  prog: Prog;
  input: Buffer;
  verdict: number;
  output: Buffer;
  /** Global counters that moved, by how much. */
  global: Partial<Record<GlobalCounter, number>>;
  /** Service and backend counters that moved, by id. */
  svc: Map<number, LbDelta>;
  backend: Map<number, LbDelta>;
  /** The conntrack table after the packet. */
  conntrack: CtTable;
  /** The frag4 table after the packet. */
  frag4: FragTable;
  /** The frag6 table after the packet. */
  frag6: FragTable;
}

export interface Violation { property: Property; message: string }

/**
 * Dataplane bugs the fuzzer found that are reported and not fixed yet: the
 * checker would count a packet that shows one (CheckResult.known) instead
 * of failing on it, when the caller allows it. None is open:
 * test/bpf/fuzz.test.ts fails while this list is not empty, so that an
 * allowance cannot outlive its fix unnoticed.
 */
export const KNOWN_ISSUES: readonly string[] = [];
/** A name in KNOWN_ISSUES. */
export type KnownIssue = string;

/** What the checker concluded the packet was: for the per-property counts. */
export type Outcome =
  | 'passed' | 'passed-malformed' | 'dropped-malformed' | 'fragment' | 'forward' | 'reply'
  | 'answer' | 'dropped' | 'icmp' | 'fragment-translated' | 'icmp-translated';

export interface CheckResult {
  outcome: Outcome;
  /** Properties that had something to check on this packet (beyond "not rewritten"). */
  applied: Set<Property>;
  violations: Violation[];
  /** The lifecycle's events of this packet (its counters that moved, as the checker expected them; ct_reply_clash too). */
  lifecycle?: GlobalCounter[];
  /** A known issue this packet showed, allowed by the caller. */
  known?: KnownIssue;
}

const VERDICT_COUNTERS: readonly GlobalCounter[] = [
  'passed_other', 'forwarded', 'forwarded_stack', 'drop_malformed', 'drop_fragment', 'drop_no_service',
  'drop_no_backend', 'drop_ct_full', 'passed_malformed', 'reject_tcp_rst', 'reject_icmp_unreach', 'reject_rate_limited',
  'ct_reply_clash',
];
const DROP_COUNTERS: ReadonlySet<GlobalCounter> = new Set(['drop_malformed', 'drop_fragment', 'drop_no_service', 'drop_no_backend', 'drop_ct_full', 'reject_rate_limited', 'ct_reply_clash']);
/** Counters of the flow lifecycle, besides the verdict: each moves by one exactly when the lifecycle says. */
export const LIFECYCLE_COUNTERS: readonly GlobalCounter[] = [
  'ct_expired', 'ct_reply_stale', 'ct_rescheduled', 'ct_untracked', 'ct_reply_recreated', 'reply_restored', 'reply_ambiguous', 'hairpin_flows',
];
/** Counters of the translations of fragments and ICMP errors, besides the verdict (forwarded_stack): each moves by one exactly when the rules say; icmp_frag_needed never (no FIB lookup). */
export const TRANSLATION_COUNTERS: readonly GlobalCounter[] = ['frag_translated', 'icmp_translated', 'icmp_frag_needed'];

/** What the lifecycle makes of a packet besides its verdict: the counters it moves and the table it leaves (undefined: not known, a property already broke). */
interface Expected {
  life: Set<GlobalCounter>;
  table: Map<string, WorldConntrack> | undefined;
  /** The rewrite of a forwarded or restored TCP/UDP packet, as frag4 keeps it for a first fragment; undefined when there was none or it is not known. */
  nat?: WorldFrag;
  /** The rewrite was expected but not known (a property already broke): frag4 is not judged. */
  natUnknown?: boolean;
}

const hx = (b: Buffer): string => b.toString('hex');

/** Whether `ip` is one a reject answer may go to or come from (reject.h's reject4_unicast, reject6.h's reject6_answerable). */
function unicast(ip: string): boolean {
  if (ip.includes(':')) return !unforwardable6(ipToBytes(ip));
  const first = Number(ip.split('.')[0]);
  return first !== 0 && first !== 127 && first < 224;
}

/** The positions at which two frames of one length differ. */
function diffPositions(a: Buffer, b: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

const normSum = (s: number | undefined): number | undefined => (s === 0 ? 0xffff : s);

export function checkPacket(world: FuzzWorld, obs: FuzzObservation, allow: ReadonlySet<KnownIssue> = new Set()): CheckResult {
  void allow; /* no issue is open (KNOWN_ISSUES): nothing to allow */
  const exp: Expected = { life: new Set(), table: new Map(world.conntrack) };
  const res = judge(world, obs, exp);
  const fail = (property: Property, message: string): void => {
    res.violations.push({ property, message: `${obs.prog}: ${message}` });
  };
  /* frag4 and frag6: a first TCP/UDP fragment forwarded or restored keeps its rewrite in its family's table; nothing else writes or removes an entry. */
  const r = readFrame(obs.input);
  const first = r.firstFragment === true && r.ipInvalid === undefined && r.l4Invalid === undefined && (r.proto === IPPROTO_TCP || r.proto === IPPROTO_UDP);
  for (const fam of [4, 6] as const) {
    const mine = first && r.family === fam;
    if (mine && exp.natUnknown) continue;
    const want = new Map(fam === 4 ? world.frag4 : world.frag6);
    if (mine && exp.nat) want.set(fam === 4 ? fragKey(r.saddr!, r.daddr!, r.proto!, r.id!) : fragKey6(r.saddr!, r.daddr!, r.id!), exp.nat);
    if (mine) res.applied.add('fragments');
    const diff = fragDiff(want, fam === 4 ? obs.frag4 : obs.frag6);
    if (diff.length) fail('fragments', `the frag${fam} table differs from the rules': ${diff.slice(0, 4).join('; ')}${diff.length > 4 ? ` (${diff.length} entries)` : ''}`);
  }
  for (const c of [...LIFECYCLE_COUNTERS, ...TRANSLATION_COUNTERS]) {
    const want = exp.life.has(c) ? 1 : 0;
    if ((obs.global[c] ?? 0) !== want) fail('counters', `${c} moved by ${obs.global[c] ?? 0}, want ${want}`);
  }
  if (exp.table) {
    const diff = tableDiff(exp.table, obs.conntrack);
    if (diff.length) fail('conntrack', `the conntrack table (now ${world.now}) differs from the lifecycle's: ${diff.slice(0, 4).join('; ')}${diff.length > 4 ? ` (${diff.length} entries)` : ''}`);
  }
  res.lifecycle = [...exp.life, ...(obs.global.ct_reply_clash === 1 && !res.violations.length ? ['ct_reply_clash' as const] : [])];
  return res;
}

function fmtFrag(e: WorldFrag | undefined): string {
  if (!e) return 'none';
  const none = e.peerNewAddress === NO_PEER[4] || e.peerNewAddress === NO_PEER[6];
  return `${e.rewriteDst ? 'dst' : 'src'} -> ${e.newAddress}${e.hairpin ? ` (hairpin, other -> ${e.peerNewAddress})` : !none ? ` (peer ${e.peerNewAddress} without hairpin)` : ''} svc ${e.serviceId} be ${e.backendId}`;
}

function fragDiff(want: FragTable, got: FragTable): string[] {
  const out: string[] = [];
  for (const k of new Set([...want.keys(), ...got.keys()])) {
    const a = fmtFrag(want.get(k));
    const b = fmtFrag(got.get(k));
    if (a !== b) out.push(`${k}: want ${a}, got ${b}`);
  }
  return out;
}

function fmtEntry(e: WorldConntrack | undefined): string {
  if (!e) return 'none';
  return `${e.reply ? 'reply' : 'forward'}${e.hairpin ? '+hairpin' : ''} ${e.natAddress}:${e.natPort} be ${e.backendId} svc ${e.serviceId} ${e.state} ${e.created}..${e.expires}`;
}

/** The entries of two tables that differ, each as "key: want X, got Y". */
function tableDiff(want: CtTable, got: CtTable): string[] {
  const out: string[] = [];
  for (const k of new Set([...want.keys(), ...got.keys()])) {
    const a = fmtEntry(want.get(k));
    const b = fmtEntry(got.get(k));
    if (a !== b) out.push(`${k}: want ${a}, got ${b}`);
  }
  return out;
}

/** The verdict, rewrite and counter properties of one packet; the lifecycle's expectations go to `exp`. */
function judge(world: FuzzWorld, obs: FuzzObservation, exp: Expected): CheckResult {
  const violations: Violation[] = [];
  const applied = new Set<Property>(['counters']);
  const fail = (property: Property, message: string): void => {
    violations.push({ property, message: `${obs.prog}: ${message}` });
  };
  const r = readFrame(obs.input);
  const v = VERDICTS[obs.prog];
  const identical = obs.output.equals(obs.input);
  const vip = r.ipHeader && world.services.some((s) => s.vip === r.daddr);

  /* Counters: rx_packets +1 and exactly one verdict counter, the verdict's kind. */
  const g = obs.global;
  if (g.rx_packets !== 1) fail('counters', `rx_packets moved by ${g.rx_packets ?? 0}, want 1`);
  const moved = VERDICT_COUNTERS.filter((c) => (g[c] ?? 0) !== 0);
  const counter = moved.length === 1 && g[moved[0]!] === 1 ? moved[0]! : undefined;
  if (!counter) fail('counters', `want exactly one verdict counter +1, got ${JSON.stringify(Object.fromEntries(moved.map((c) => [c, g[c]])))}`);
  for (const [k, n] of Object.entries(g) as Array<[GlobalCounter, number]>) {
    if (n !== 0 && n !== 1) fail('counters', `${k} moved by ${n}`);
  }
  for (const k of ['forwarded', 'fib_miss', 'sock_translated'] as const) {
    if (g[k]) fail('counters', `${k} moved without FIB redirects or sockets`);
  }

  let outcome: Outcome;
  const rewritten = obs.verdict === v.pass && !identical;
  if (obs.verdict === v.answer) outcome = 'answer';
  else if (obs.verdict === v.drop) outcome = 'dropped';
  else if (obs.verdict !== v.pass) {
    fail('counters', `unexpected verdict ${obs.verdict}`);
    outcome = 'dropped';
  } else outcome = identical ? 'passed' : 'forward';

  /* The verdict and the counter agree. */
  if (counter) {
    const want = outcome === 'answer' ? ['reject_tcp_rst', 'reject_icmp_unreach']
      : outcome === 'dropped' ? [...DROP_COUNTERS]
        : identical ? ['passed_other', 'passed_malformed'] : ['forwarded_stack'];
    if (!want.includes(counter)) fail('counters', `verdict ${obs.verdict} (${outcome}${obs.verdict === v.pass ? identical ? ', untouched' : ', rewritten' : ''}) counted as ${counter}`);
  }
  if (!rewritten && (g.replies || g.reply_restored || g.hairpin_flows)) {
    fail('counters', `not rewritten, yet counted ${JSON.stringify(g)}`);
  }
  if (obs.svc.size || obs.backend.size) {
    if (!rewritten) fail('counters', `service/backend counters moved for a packet not rewritten: svc ${fmtDeltas(obs.svc)} backend ${fmtDeltas(obs.backend)}`);
  }

  /* Neither IPv4 nor IPv6, or no IP header to read: never ours. */
  if ((r.ethType !== ETH_P_IP && r.ethType !== ETH_P_IPV6) || !r.ipHeader) {
    applied.add('untouched');
    const ip = r.ethType === ETH_P_IP || r.ethType === ETH_P_IPV6;
    const want: GlobalCounter = ip ? 'passed_malformed' : 'passed_other';
    if (!identical || obs.verdict !== v.pass) fail('untouched', `a frame that is ${ip ? `a cut IPv${r.family} header` : `neither IPv4 nor IPv6 (ethertype 0x${r.ethType.toString(16)})`} must pass untouched: verdict ${obs.verdict}, ${identical ? 'untouched' : `out ${hx(obs.output)}`}`);
    else if (counter && counter !== want) fail('counters', `counted ${counter}, want ${want}`);
    return { outcome: 'passed', applied, violations };
  }

  /* Invalid lengths (IPv4, then TCP/UDP of a packet that is not a later fragment): never rewritten. */
  const invalid = r.ipInvalid ?? r.l4Invalid;
  if (invalid !== undefined) {
    applied.add('malformed');
    if (vip) {
      outcome = 'dropped-malformed';
      if (obs.verdict !== v.drop || counter !== 'drop_malformed') {
        fail('malformed', `${invalid}, to VIP ${r.daddr}: want dropped and counted drop_malformed, got verdict ${obs.verdict}, ${counter ?? 'no single counter'}${identical ? '' : ', rewritten'}`);
      }
    } else {
      outcome = 'passed-malformed';
      if (obs.verdict !== v.pass || !identical || counter !== 'passed_malformed') {
        fail('malformed', `${invalid}, not to a VIP: want passed untouched, counted passed_malformed; got verdict ${obs.verdict}, ${counter ?? 'no single counter'}${identical ? '' : ', rewritten'}`);
      }
    }
    return { outcome, applied, violations };
  }

  /* IPv6 that is not the balancer's to judge: a waypoint's (routing header with segments left), or from a source it never forwards. */
  if (r.family === 6 && (r.waypoint || unforwardable6(obs.input, ETH_LEN + 8))) {
    applied.add('untouched');
    const what = r.waypoint ? 'a routing header with segments left' : `from ${r.saddr}, a source never forwarded`;
    if (!identical || obs.verdict !== v.pass) fail('untouched', `IPv6 ${what}, must pass untouched: verdict ${obs.verdict}, ${identical ? 'untouched' : `out ${hx(obs.output)}`}`);
    else if (counter && counter !== 'passed_other') fail('counters', `IPv6 ${what}: counted ${counter}, want passed_other`);
    return { outcome: 'passed', applied, violations };
  }

  /* A later fragment: its datagram's frag4 or frag6 entry, or none. */
  if (r.laterFragment) {
    applied.add('fragments');
    const fe = r.family === 6 ? world.frag6.get(fragKey6(r.saddr!, r.daddr!, r.id!)) : world.frag4.get(fragKey(r.saddr!, r.daddr!, r.proto!, r.id!));
    if (!fe) {
      if (vip) {
        if (obs.verdict !== v.drop || counter !== 'drop_fragment') fail('fragments', `a later fragment to VIP ${r.daddr} whose first fragment was not forwarded: want dropped, drop_fragment; got verdict ${obs.verdict}, ${counter}${identical ? '' : ', rewritten'}`);
      } else {
        applied.add('untouched');
        if (!identical || obs.verdict !== v.pass) fail('untouched', `a later fragment for no VIP, of no datagram frag${r.family} holds, must pass untouched: verdict ${obs.verdict}${identical ? '' : `, out ${hx(obs.output)}`}`);
        else if (counter && counter !== 'passed_other') fail('counters', `counted ${counter}, want passed_other`);
      }
      return { outcome: 'fragment', applied, violations };
    }
    exp.life.add('frag_translated');
    const want = fragRewrite(obs.input, fe);
    if (obs.verdict !== v.pass || !obs.output.equals(want)) {
      fail('fragments', `a later fragment of a datagram frag${r.family} holds (${fmtFrag(fe)}) must get the address rewrite only: want verdict ${v.pass}, ${hx(want)}; got verdict ${obs.verdict}, ${hx(obs.output)}`);
    }
    if ((g.replies ?? 0) !== (fe.rewriteDst ? 0 : 1)) fail('counters', `a later fragment of a ${fe.rewriteDst ? 'forward' : 'reply'} datagram counted replies ${g.replies ?? 0}`);
    checkStats(obs, fe.serviceId, fe.backendId, fe.rewriteDst ? { packets: 1, bytes: r.totLen!, newConnections: 0, replyPackets: 0 } : { packets: 0, bytes: 0, newConnections: 0, replyPackets: 1 }, fail);
    applied.add('checksums');
    const os = readFrame(obs.output);
    if (os.ipHeader && os.ipInvalid === undefined && normSum(checksumSums(obs.output, os).ip) !== normSum(checksumSums(obs.input, r).ip)) fail('checksums', 'a translated fragment\'s IPv4 checksum does not carry the input\'s sum');
    return { outcome: 'fragment-translated', applied, violations };
  }

  /* A first fragment of neither TCP nor UDP: never decided, passed. */
  if (r.firstFragment && r.proto !== IPPROTO_TCP && r.proto !== IPPROTO_UDP) {
    applied.add('untouched');
    if (!identical || obs.verdict !== v.pass) fail('untouched', `a first fragment of protocol ${r.proto} must pass untouched: verdict ${obs.verdict}`);
    else if (counter && counter !== 'passed_other') fail('counters', `counted ${counter}, want passed_other`);
    return { outcome: 'fragment', applied, violations };
  }

  const rs = checksumSums(obs.input, r);

  /* Neither TCP nor UDP: an ICMP error about a tracked flow is translated; anything else is left alone (IPv6: every ICMPv6 message, AH, ESP, ...). */
  if (r.proto !== IPPROTO_TCP && r.proto !== IPPROTO_UDP) {
    const tr = r.family === 4 && r.proto === IPPROTO_ICMP ? icmpTranslation(world, obs.input, r)
      : r.family === 6 && r.proto === IPPROTO_ICMPV6 && !r.fragment ? icmp6Translation(world, obs.input, r) : undefined;
    if (tr) {
      applied.add('icmp').add('checksums');
      exp.life.add('icmp_translated');
      if (obs.verdict !== v.pass || !obs.output.equals(tr.want)) {
        fail('icmp', `an ICMP${r.family === 6 ? 'v6' : ''} error about a tracked flow (${tr.what}) must be translated: want verdict ${v.pass}, ${hx(tr.want)}; got verdict ${obs.verdict}, ${hx(obs.output)}`);
      }
      if (g.replies) fail('counters', 'a translated ICMP error counted as a reply');
      if (obs.svc.size || obs.backend.size) fail('counters', `a translated ICMP error moved service/backend counters: svc ${fmtDeltas(obs.svc)} backend ${fmtDeltas(obs.backend)}`);
      if (r.family === 6) checkIcmp6Sums(obs, r, rs, tr.inLen, fail);
      else checkIcmpSums(obs, r, rs, fail);
      return { outcome: 'icmp-translated', applied, violations };
    }
    if (r.proto === (r.family === 6 ? 58 : IPPROTO_ICMP)) applied.add('icmp');
    applied.add('untouched');
    if (!identical || obs.verdict !== v.pass) fail('untouched', `protocol ${r.proto}${r.proto === IPPROTO_ICMP ? ' (no flow of ours quoted)' : ''}, must pass untouched: verdict ${obs.verdict}, ${identical ? 'untouched' : `out ${hx(obs.output)}`}`);
    else if (counter && counter !== 'passed_other') fail('counters', `counted ${counter}, want passed_other`);
    return { outcome: 'passed', applied, violations };
  }

  /* TCP or UDP, well formed: the flow lifecycle (bpf/include/ct.h) on the table before the packet, then the rewrite. */
  applied.add('conntrack');
  const proto = r.proto;
  const sport = r.sport!;
  const dport = r.dport!;
  const saddr = r.saddr!;
  const daddr = r.daddr!;
  const flags = proto === IPPROTO_TCP ? r.tcpFlags! : 0;
  const synOnly = proto === IPPROTO_TCP && (flags & (TCP_SYN | TCP_ACK)) === TCP_SYN;
  const trackable = proto !== IPPROTO_TCP || (flags & TCP_RST) === 0;
  const now = world.now;
  /* The hairpin address of the packet's family. */
  const hairpinAddr = r.family === 6 ? world.hairpin6 ?? null : world.hairpin;
  const T = exp.table!;
  const life = exp.life;
  const key = ctKey(saddr, sport, daddr, dport, proto);
  const svcById = new Map(world.services.map((s) => [s.id, s]));
  const backendById = new Map(world.services.flatMap((s) => s.backends.map((b) => [b.id, { s, b }] as const)));
  const endpointOf = (addr: string, port: number): Array<{ s: WorldService; b: WorldBackend }> =>
    world.services.flatMap((s) => (s.proto === proto ? s.backends.filter((b) => b.address === addr && b.port === port).map((b) => ({ s, b })) : []));
  const timeout = (st: CtState): number => (proto !== IPPROTO_TCP ? world.timeouts.udp
    : st === 'new' ? world.timeouts.tcpSyn : st === 'closing' ? world.timeouts.tcpClosing : world.timeouts.tcpEstablished);
  /* Seconds are the dataplane's u32, compared wrap-safe. */
  const live = (e: WorldConntrack): boolean => ((e.expires - now) | 0) > 0;
  const nextState = (st: CtState): CtState => (proto !== IPPROTO_TCP ? st
    : (flags & (TCP_FIN | TCP_RST)) !== 0 ? 'closing' : st === 'new' && (flags & TCP_SYN) === 0 ? 'established' : st);
  const firstState: CtState = proto !== IPPROTO_TCP ? 'established' : (flags & TCP_FIN) !== 0 ? 'closing' : synOnly ? 'new' : 'established';
  const entry = (v: Omit<WorldConntrack, 'state' | 'created' | 'expires'>): WorldConntrack =>
    ({ ...v, state: firstState, created: now >>> 0, expires: (now + timeout(firstState)) >>> 0 });

  /* A packet that found its flow's live entry: both entries move to the next state and expiry, if that changes them; a peer entry that is gone is written again, never over another flow's. */
  const touch = (e: WorldConntrack): void => {
    const state = nextState(e.state);
    const t = timeout(state);
    const expires = (now + t) >>> 0;
    const step = Math.max(1, t >>> 3);
    if (e.state === state && ((e.expires - now) | 0) > t - step) return;
    const self = { ...e, state, expires };
    T.set(key, self);
    const pk = e.reply
      ? ctKey(e.hairpin ? saddr : daddr, dport, e.natAddress, e.natPort, proto)
      /* A hairpin flow whose hairpin address is gone: ct_peer keys its reply entry to 0.0.0.0, ct6_peer to the client's own address. */
      : ctKey(e.natAddress, e.natPort, e.hairpin ? hairpinAddr ?? (r.family === 6 ? saddr : '0.0.0.0') : saddr, sport, proto);
    const pv: WorldConntrack = e.reply ? { ...self, reply: false, natAddress: saddr, natPort: sport } : { ...self, reply: true, natAddress: daddr, natPort: dport };
    const p = T.get(pk);
    if (p) {
      if (p.reply === pv.reply && p.hairpin === pv.hairpin && p.natAddress === pv.natAddress && p.natPort === pv.natPort && p.backendId === pv.backendId) {
        T.set(pk, { ...p, state, expires });
      }
      return;
    }
    T.set(pk, pv);
    if (pv.reply) life.add('ct_reply_recreated');
  };

  /* The packet's own entry: dead is absent; a reply entry counts while its backend is still its service's at the packet's source (else removed); a forward entry is followed while its backend is, unless a fresh SYN meets a draining backend or a closing flow. */
  let e = T.get(key);
  if (e && !live(e)) {
    life.add('ct_expired');
    e = undefined;
  }
  let viaEntry: WorldConntrack | undefined;
  let follow: { s: WorldService; b: WorldBackend } | undefined;
  if (e?.reply) {
    const o = backendById.get(e.backendId);
    if (o && o.s.id === e.serviceId && o.b.address === saddr && o.b.port === sport) {
      viaEntry = e;
      touch(e);
    } else {
      T.delete(key);
      life.add('ct_reply_stale');
    }
  } else if (e) {
    const o = backendById.get(e.backendId);
    const mine = o && o.s.id === e.serviceId && o.b.address === e.natAddress && o.b.port === e.natPort ? o : undefined;
    if (mine && !(synOnly && (mine.b.draining || e.state === 'closing'))) {
      follow = mine;
      touch(e);
    } else if (!synOnly || e.state !== 'closing' || !mine) {
      /* A new connection on a closing flow's tuple is placed afresh, not rescheduled. */
      life.add('ct_rescheduled');
    }
  }
  const service = world.services.find((s) => s.vip === daddr && s.port === dport && s.proto === proto);
  const endpoints = endpointOf(saddr, sport);
  const stateless = !viaEntry && !follow && !vip && !synOnly && endpoints.length === 1 ? endpoints[0]! : undefined;

  if (viaEntry || stateless) {
    outcome = 'reply';
  } else if (follow || vip) {
    outcome = 'forward';
  } else {
    /* Not ours: untouched. */
    applied.add('untouched');
    if (!identical || obs.verdict !== v.pass) {
      fail('untouched', `${saddr}:${sport} -> ${daddr}:${dport}/${proto}: no VIP, no live entry, no reply to restore: must pass untouched; got verdict ${obs.verdict}, ${identical ? 'untouched' : `out ${hx(obs.output)}`}`);
    } else if (counter && counter !== 'passed_other') fail('counters', `counted ${counter}, want passed_other`);
    if (endpoints.length > 1 && !synOnly) life.add('reply_ambiguous');
    return { outcome: 'passed', applied, violations };
  }

  applied.add('nat');
  if (outcome === 'reply') {
    /* From the service's VIP:port, by the reply entry or by reply_nat (which tracks the flow from here, unless it is a RST). */
    const owner = viaEntry ? svcById.get(viaEntry.serviceId)! : stateless!.s;
    const be = viaEntry ? owner.backends.find((b) => b.id === viaEntry.backendId)! : stateless!.b;
    if (stateless) {
      life.add('reply_restored');
      if (!trackable) life.add('ct_untracked');
      else {
        const rv = entry({ natAddress: owner.vip, natPort: owner.port, reply: true, hairpin: false, backendId: be.id, serviceId: owner.id });
        T.set(key, rv);
        const fk = ctKey(daddr, dport, owner.vip, owner.port, proto);
        /* An existing forward entry is kept while it lives and still follows its backend (backend_for_ct); a dead or stale one is overwritten. */
        const old = T.get(fk);
        const oldBe = old && svcById.get(old.serviceId)?.backends.find((x) => x.id === old.backendId);
        const keep = old !== undefined && live(old) && oldBe !== undefined && oldBe.address === old.natAddress && oldBe.port === old.natPort;
        if (!keep) T.set(fk, { ...rv, reply: false, natAddress: be.address, natPort: be.port });
      }
    }
    if (!rewritten) {
      fail('nat', `a reply ${saddr}:${sport} -> ${daddr}:${dport} (${viaEntry ? 'live, valid conntrack reply entry' : 'reply_nat'}) was not restored: verdict ${obs.verdict}, counted ${counter}`);
      exp.table = undefined;
      return { outcome, applied, violations };
    }
    const o = readFrame(obs.output);
    const want = `${owner.vip}:${owner.port}`;
    if (viaEntry && `${viaEntry.natAddress}:${viaEntry.natPort}` !== want) {
      fail('nat', `a reply from ${saddr}:${sport} followed a reply entry naming ${viaEntry.natAddress}:${viaEntry.natPort}, but its service ${owner.id} (backend ${be.id}) is ${want}`);
    }
    if (`${o.saddr}:${o.sport}` !== want) fail('nat', `reply restored to ${o.saddr}:${o.sport}, want ${want}`);
    const hairpin = viaEntry ? viaEntry.hairpin : false;
    const wantDst = hairpin ? saddr : daddr;
    if (`${o.daddr}:${o.dport}` !== `${wantDst}:${dport}`) fail('nat', `reply's destination became ${o.daddr}:${o.dport}, want ${wantDst}:${dport}`);
    exp.nat = { newAddress: owner.vip, peerNewAddress: hairpin ? saddr : NO_PEER[r.family!], serviceId: owner.id, backendId: be.id, rewriteDst: false, hairpin };
    if (g.replies !== 1) fail('counters', 'a restored reply must count replies');
    checkStats(obs, owner.id, be.id, { packets: 0, bytes: 0, newConnections: 0, replyPackets: 1 }, fail);
    checkRewrite(obs, r, { reply: true, hairpin }, fail);
    applied.add('checksums');
    checkChecksums(obs, r, rs, fail);
    return { outcome, applied, violations };
  }

  /* Forward: a followed entry's backend, or a new flow placed now. */
  const fresh = !follow;
  if (fresh && !service) {
    if (obs.verdict !== v.drop || counter !== 'drop_no_service') fail('nat', `${daddr}:${dport}/${proto}: a VIP, no such service: want dropped, drop_no_service; got verdict ${obs.verdict}, ${counter}${identical ? '' : ', rewritten'}`);
    return { outcome: 'dropped', applied, violations };
  }
  const usable = service ? service.backends.filter((b) => !b.draining) : [];
  /* A new flow's entries: the forward one under its own tuple, the reply one under the backend's (to the hairpin address for a client given itself). */
  const hairpinFor = (b: WorldBackend): boolean => hairpinAddr !== null && b.address === saddr;
  const replyKeyFor = (b: WorldBackend): string => ctKey(b.address, b.port, hairpinFor(b) ? hairpinAddr! : saddr, sport, proto);
  /* Another live, established flow holds the reply tuple under another VIP:port: the new flow is refused (a new or closing one gives way: ct_holds). */
  const clashes = (b: WorldBackend): WorldConntrack | undefined => {
    const held = T.get(replyKeyFor(b));
    return trackable && held && live(held) && held.state === 'established' && (held.natAddress !== daddr || held.natPort !== dport) ? held : undefined;
  };
  if (rewritten) {
    const o = readFrame(obs.output);
    const to = `${o.daddr}:${o.dport}`;
    const svc = follow ? follow.s : service!;
    let be: WorldBackend | undefined;
    if (follow) {
      be = follow.b;
      if (to !== `${be.address}:${be.port}`) fail('nat', `an established flow left its backend: went to ${to}, its entry names ${be.address}:${be.port}`);
      if (daddr !== svc.vip || dport !== svc.port) {
        /* An entry keyed by a VIP:port that is not its service's. */
        fail('nat', `${daddr}:${dport} followed an entry of service ${svc.id}, whose VIP is ${svc.vip}:${svc.port}`);
      }
    } else {
      be = usable.find((b) => `${b.address}:${b.port}` === to);
      if (!be) {
        fail('nat', `a new flow to ${daddr}:${dport} went to ${to}, not an active backend of service ${svc.id} (${usable.map((b) => `${b.address}:${b.port}`).join(', ') || 'none'})`);
        exp.table = undefined;
      } else {
        if (hairpinFor(be)) life.add('hairpin_flows');
        const held = clashes(be);
        if (!trackable) life.add('ct_untracked');
        else if (held) {
          fail('nat', `a new flow to ${daddr}:${dport} was placed on ${to}, whose reply tuple ${replyKeyFor(be)} another live flow holds for ${held.natAddress}:${held.natPort}: want refused, ct_reply_clash`);
          exp.table = undefined;
        } else {
          const hp = hairpinFor(be);
          const fv = entry({ natAddress: be.address, natPort: be.port, reply: false, hairpin: hp, backendId: be.id, serviceId: svc.id });
          T.set(key, fv);
          T.set(replyKeyFor(be), { ...fv, reply: true, natAddress: daddr, natPort: dport });
        }
      }
    }
    /* A flow's entry says whether it is a hairpin flow (set when it was placed); the address is the one of the moment. */
    const hairpin = hairpinAddr !== null && (follow ? e!.hairpin : be !== undefined && be.address === saddr);
    if (be) exp.nat = { newAddress: be.address, peerNewAddress: hairpin ? hairpinAddr! : NO_PEER[r.family!], serviceId: svc.id, backendId: be.id, rewriteDst: true, hairpin };
    else if (!be) exp.natUnknown = true;
    if (hairpin && o.saddr !== hairpinAddr) fail('nat', `a client given itself (${saddr}) must be source-NATed to ${hairpinAddr}, got ${o.saddr}`);
    if (!hairpin && o.saddr !== saddr) fail('nat', `source address changed on the way in: ${saddr} -> ${o.saddr}`);
    if (o.sport !== sport) fail('nat', `source port changed on the way in: ${sport} -> ${o.sport}`);
    if (g.replies) fail('counters', 'a forwarded packet counted as a reply');
    if (g.affinity_hits && !svc.affinity) fail('counters', 'affinity_hits for a service without affinity');
    if (g.affinity_hits && !fresh) fail('counters', 'affinity_hits for an established flow');
    checkStats(obs, svc.id, be?.id, { packets: 1, bytes: r.totLen!, newConnections: fresh ? 1 : 0, replyPackets: 0 }, fail);
    checkRewrite(obs, r, { reply: false, hairpin }, fail);
    applied.add('checksums');
    checkChecksums(obs, r, rs, fail);
    return { outcome: 'forward', applied, violations };
  }
  if (!fresh) {
    fail('nat', `an established flow (entry to ${follow!.b.address}:${follow!.b.port}) was not forwarded: verdict ${obs.verdict}, counted ${counter}`);
    exp.table = undefined;
    return { outcome, applied, violations };
  }
  if (counter === 'ct_reply_clash') {
    /* Refused: the forward entry written for it is removed again. */
    T.delete(key);
    const held = usable.map((b) => ({ b, held: clashes(b) })).filter((x) => x.held);
    if (obs.verdict !== v.drop || !held.length) {
      fail('nat', `a new flow to ${daddr}:${dport} refused as a reply tuple clash (verdict ${obs.verdict}), but no active backend's reply tuple is held by another live flow: ${usable.map((b) => `${replyKeyFor(b)} ${fmtEntry(T.get(replyKeyFor(b)))}`).join('; ') || 'no active backend'}`);
    }
    return { outcome: 'dropped', applied, violations };
  }
  if (usable.length > 0) {
    fail('nat', `a new flow to ${daddr}:${dport}, a service with ${usable.length} active backends${service!.affinity ? ' (affinity)' : ''}, was not forwarded: verdict ${obs.verdict}, counted ${counter}`);
    exp.table = undefined;
    return { outcome, applied, violations };
  }
  /* No usable backend: answer a SYN or a datagram, if the service says so and it may be answered; else drop. */
  const macsOk = ((obs.input[0]! | obs.input[6]!) & 1) === 0;
  /* IPv6: the port unreachable quotes the headers and 64 bytes past them, at most 128 bytes; it must hold the UDP header (reject6_prepare). */
  const quoteOk = r.family !== 6 || proto !== IPPROTO_UDP || Math.min(r.ihl! + 64, r.totLen!, 128) >= r.ihl! + 8;
  const answerable = !service!.drop && macsOk && unicast(r.saddr!) && unicast(r.daddr!) && r.totLen! - r.ihl! >= (proto === IPPROTO_UDP ? 8 : 20) && quoteOk &&
    (proto === IPPROTO_UDP || ((flags & TCP_SYN) !== 0 && (flags & (TCP_ACK | TCP_RST)) === 0));
  if (!answerable) {
    if (obs.verdict !== v.drop || counter !== 'drop_no_backend') fail('nat', `no usable backend, not answerable: want dropped, drop_no_backend; got verdict ${obs.verdict}, ${counter}`);
    return { outcome: 'dropped', applied, violations };
  }
  if (obs.verdict === v.drop && counter === 'reject_rate_limited') return { outcome: 'dropped', applied, violations };
  if (obs.verdict !== v.answer) {
    fail('nat', `no usable backend: want an answer (or a rate-limited drop), got verdict ${obs.verdict}, ${counter}`);
    return { outcome, applied, violations };
  }
  applied.add('checksums');
  const six = r.family === 6;
  const want = proto === IPPROTO_TCP ? (six ? rst6For(obs.input) : rstFor(obs.input)) : six ? portUnreachable6For(obs.input, 64, 128) : portUnreachableFor(obs.input);
  if (!obs.output.equals(want)) fail('nat', `the ${proto === IPPROTO_TCP ? 'RST' : six ? 'ICMPv6 port unreachable' : 'ICMP port unreachable'} differs from the one built from scratch: got ${hx(obs.output)}, want ${hx(want)}`);
  const o = readFrame(obs.output);
  if (o.ipInvalid !== undefined || !o.ipHeader || o.family !== r.family) fail('checksums', `the answer's IPv${r.family} header is invalid: ${o.ipInvalid ?? 'cut, or of another family'}`);
  else {
    const sums = checksumSums(obs.output, o);
    if (sums.ip !== 0xffff) fail('checksums', 'the answer\'s IPv4 checksum is wrong');
    if (sums.l4 !== 0xffff) fail('checksums', `the answer's ${proto === IPPROTO_TCP ? 'TCP' : six ? 'ICMPv6' : 'ICMP'} checksum is wrong`);
  }
  if (counter !== (proto === IPPROTO_TCP ? 'reject_tcp_rst' : 'reject_icmp_unreach')) fail('counters', `an answer counted as ${counter}`);
  return { outcome: 'answer', applied, violations };
}

function fmtDeltas(m: Map<number, LbDelta>): string {
  return JSON.stringify(Object.fromEntries(m));
}

/** Exactly service `sid` and backend `bid` moved, each by `want`. */
function checkStats(obs: FuzzObservation, sid: number | undefined, bid: number | undefined, want: LbDelta, fail: (p: Property, m: string) => void): void {
  for (const [kind, m, id] of [['service', obs.svc, sid], ['backend', obs.backend, bid]] as const) {
    const got = id === undefined ? undefined : m.get(id);
    const others = [...m.keys()].filter((k) => k !== id);
    if (others.length) fail('counters', `${kind} counters of ${others.join(', ')} moved, not ${kind} ${id}'s: ${fmtDeltas(m)}`);
    const gotS = JSON.stringify(got ?? { packets: 0, bytes: 0, newConnections: 0, replyPackets: 0 });
    const newOk = want.packets === 1 && got !== undefined && got.packets === 1 && got.bytes === want.bytes && got.replyPackets === 0 &&
      (got.newConnections === want.newConnections);
    const ok = want.replyPackets ? gotS === JSON.stringify(want) : newOk;
    if (!ok) {
      const frame = obs.input.length - ETH_LEN;
      fail('counters', `${kind} ${id} counters moved by ${gotS}, want ${JSON.stringify(want)}${got && got.bytes > frame ? ` (${got.bytes} bytes counted, the frame holds ${frame} after Ethernet)` : ''}`);
    }
  }
}

/** Only the NAT's bytes differ: MACs, TTL (down by one at most), the IPv4 checksum, the addresses, the ports, the L4 checksum. */
function checkRewrite(obs: FuzzObservation, r: FrameReading, how: { reply: boolean; hairpin: boolean }, fail: (p: Property, m: string) => void): void {
  if (obs.output.length !== obs.input.length) {
    fail('nat', `the rewrite changed the frame's length: ${obs.input.length} -> ${obs.output.length}`);
    return;
  }
  const ip = ETH_LEN;
  const l4 = ETH_LEN + r.ihl!;
  const six = r.family === 6;
  const allowed = new Set<number>();
  for (let i = 0; i < 12; i++) allowed.add(i);
  /* The TTL and header checksum; IPv6: the hop limit (no header checksum). */
  const ttlAt = six ? ip + 7 : ip + 8;
  if (six) allowed.add(ttlAt);
  else allowed.add(ip + 8).add(ip + 10).add(ip + 11);
  const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);
  const src = six ? range(ip + 8, 16) : range(ip + 12, 4);
  const dst = six ? range(ip + 24, 16) : range(ip + 16, 4);
  for (const i of how.reply || how.hairpin ? src : []) allowed.add(i);
  for (const i of !how.reply || how.hairpin ? dst : []) allowed.add(i);
  for (const i of how.reply ? [l4, l4 + 1] : [l4 + 2, l4 + 3]) allowed.add(i);
  const ck = r.proto === IPPROTO_TCP ? l4 + 16 : l4 + 6;
  allowed.add(ck).add(ck + 1);
  const bad = diffPositions(obs.input, obs.output).filter((i) => !allowed.has(i));
  if (bad.length) fail('nat', `the ${how.reply ? 'reply' : 'forward'} rewrite changed bytes the NAT does not own, at offsets ${bad.slice(0, 8).join(', ')}: in ${obs.input.subarray(bad[0]!, bad[0]! + 4).toString('hex')}, out ${obs.output.subarray(bad[0]!, bad[0]! + 4).toString('hex')}`);
  const ttlIn = obs.input[ttlAt]!;
  const ttlOut = obs.output[ttlAt]!;
  if (ttlOut !== ttlIn && ttlOut !== ttlIn - 1) fail('nat', `${six ? 'hop limit' : 'TTL'} ${ttlIn} -> ${ttlOut}`);
}

/** The output's checksums carry the input's errors, none more, none fewer; a UDP 0 stays 0. */
function checkChecksums(obs: FuzzObservation, r: FrameReading, rs: { ip: number; l4?: number }, fail: (p: Property, m: string) => void): void {
  const o = readFrame(obs.output);
  if (o.ipInvalid !== undefined || o.l4Invalid !== undefined) {
    /* A UDP checksum the rewrite made 0 is for the check below to name. */
    if (!(r.family === 6 && r.proto === IPPROTO_UDP && o.udpChecksum === 0)) {
      fail('checksums', `the rewritten frame does not parse: ${o.ipInvalid ?? o.l4Invalid}`);
      return;
    }
  }
  const os = checksumSums(obs.output, o);
  const what = (s: number | undefined): string => (s === 0xffff || s === 0 ? 'right' : `off (sum 0x${s?.toString(16)})`);
  if (normSum(os.ip) !== normSum(rs.ip)) fail('checksums', `IPv4 header checksum ${what(rs.ip)} in, ${what(os.ip)} out`);
  if (r.proto === IPPROTO_UDP && r.udpChecksum === 0) {
    if (o.udpChecksum !== 0) fail('checksums', `a UDP checksum of 0 became 0x${o.udpChecksum?.toString(16)}`);
    return;
  }
  if (r.proto === IPPROTO_UDP && o.udpChecksum === 0) {
    fail('checksums', 'a UDP checksum became 0 (none): a computed 0 must be sent as 0xffff');
    return;
  }
  if (normSum(os.l4) !== normSum(rs.l4)) fail('checksums', `${r.proto === IPPROTO_TCP ? 'TCP' : 'UDP'} checksum ${what(rs.l4)} in, ${what(os.l4)} out`);
}

/*
 * Incremental checksum updates (RFC 1624), as bpf/include/csum.h makes them:
 * a delta of 16-bit words accumulated, then applied as ~fold(~check + delta).
 * One's complement sums do not depend on byte order, so big-endian words
 * here give the bytes the dataplane's little-endian loads do.
 */
const words = (ip: string): [number, number] => {
  const b = ipToBytes(ip);
  return [b.readUInt16BE(0), b.readUInt16BE(2)];
};
const delta2 = (acc: number, from: number, to: number): number => acc + (~from & 0xffff) + to;
const delta4 = (acc: number, from: string, to: string): number => {
  const [f0, f1] = words(from);
  const [t0, t1] = words(to);
  return delta2(delta2(acc, f0, t0), f1, t1);
};
const fold = (x: number): number => {
  let v = (x & 0xffff) + Math.floor(x / 0x10000);
  v = (v & 0xffff) + (v >>> 16);
  return v & 0xffff;
};
const csumApply = (check: number, delta: number): number => ~fold((~check & 0xffff) + delta) & 0xffff;

/** A later fragment as frag4's entry makes it: the address (and a hairpin flow's other one) and the IPv4 checksum, nothing else; frag6's: the 16-byte addresses only (no header checksum). */
export function fragRewrite(input: Buffer, e: WorldFrag): Buffer {
  const out = Buffer.from(input);
  if (input.readUInt16BE(12) === ETH_P_IPV6) {
    ipToBytes(e.newAddress).copy(out, ETH_LEN + (e.rewriteDst ? 24 : 8));
    if (e.hairpin) ipToBytes(e.peerNewAddress).copy(out, ETH_LEN + (e.rewriteDst ? 8 : 24));
    return out;
  }
  const addrOff = ETH_LEN + (e.rewriteDst ? 16 : 12);
  const peerOff = ETH_LEN + (e.rewriteDst ? 12 : 16);
  let d = delta4(0, bytesToIp(out, addrOff), e.newAddress);
  ipToBytes(e.newAddress).copy(out, addrOff);
  if (e.hairpin) {
    d = delta4(d, bytesToIp(out, peerOff), e.peerNewAddress);
    ipToBytes(e.peerNewAddress).copy(out, peerOff);
  }
  out.writeUInt16BE(csumApply(out.readUInt16BE(ETH_LEN + 10), d), ETH_LEN + 10);
  return out;
}

/**
 * icmp_nat.h's decision for an ICMP packet (a valid IPv4 header, not a
 * fragment), and the error as it must leave: undefined when it passes
 * untouched.
 */
export function icmpTranslation(world: FuzzWorld, input: Buffer, r: FrameReading): { want: Buffer; what: string; l4Check: number; inLen: number } | undefined {
  const l4 = ETH_LEN + r.ihl!;
  const l4Len = r.totLen! - r.ihl!;
  if (l4Len < 8) return undefined;
  const type = input[l4]!;
  if (type !== 3 && type !== 11 && type !== 12) return undefined;
  const inner = l4 + 8;
  if (input.length < inner + 20) return undefined;
  if (input[inner]! >> 4 !== 4 || (input[inner]! & 0x0f) < 5) return undefined;
  if (input.readUInt16BE(inner + 6) & 0x1fff) return undefined;
  const proto = input[inner + 9]!;
  if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) return undefined;
  const inLen = (input[inner]! & 0x0f) * 4;
  const quote = l4Len - 8;
  const ports = inner + inLen;
  if (quote < inLen + 8 || ports + 8 > input.length) return undefined;
  const qs = bytesToIp(input, inner + 12);
  const qd = bytesToIp(input, inner + 16);
  const qsp = input.readUInt16BE(ports);
  const qdp = input.readUInt16BE(ports + 2);
  /* The quoted packet's tuple reversed: the entry of the packet its sender would send back. */
  const key = ctKey(qd, qdp, qs, qsp, proto);
  const ct = world.conntrack.get(key);
  if (!ct || ((ct.expires - world.now) | 0) <= 0 || ct.hairpin) return undefined;
  const owner = world.services.flatMap((s) => s.backends.filter((b) => b.id === ct.backendId).map((b) => ({ s, b })))[0];
  const udp = proto === IPPROTO_UDP;
  let rewriteDst: boolean;
  let oldAddr: string;
  let oldPort: number;
  let peer: { off: number; old: string } | undefined;
  if (ct.reply) {
    if (!owner || owner.s.id !== ct.serviceId || owner.b.address !== qd || owner.b.port !== qdp) return undefined;
    rewriteDst = true;
    oldAddr = qd;
    oldPort = qdp;
    if (r.saddr === qd) peer = { off: ETH_LEN + 12, old: qd };
  } else {
    if (!owner || owner.s.id !== ct.serviceId || owner.b.address !== ct.natAddress || owner.b.port !== ct.natPort) return undefined;
    rewriteDst = false;
    oldAddr = qs;
    oldPort = qsp;
    if (r.daddr === qs) peer = { off: ETH_LEN + 16, old: qs };
  }
  const out = Buffer.from(input);
  /* The quoted header: the address, and its checksum. */
  const d = delta4(0, oldAddr, ct.natAddress);
  let icmpDelta = d;
  ipToBytes(ct.natAddress).copy(out, inner + (rewriteDst ? 16 : 12));
  const oldIpCheck = out.readUInt16BE(inner + 10);
  const newIpCheck = csumApply(oldIpCheck, d);
  out.writeUInt16BE(newIpCheck, inner + 10);
  icmpDelta = delta2(icmpDelta, oldIpCheck, newIpCheck);
  /* Its port, and its L4 checksum if quoted (a UDP 0 stays 0, a computed 0 is 0xffff). */
  out.writeUInt16BE(ct.natPort, ports + (rewriteDst ? 2 : 0));
  icmpDelta = delta2(icmpDelta, oldPort, ct.natPort);
  const l4Check = quote >= inLen + (udp ? 8 : 18) ? ports + (udp ? 6 : 16) : 0;
  if (l4Check) {
    const old = out.readUInt16BE(l4Check);
    if (!udp || old) {
      let c = csumApply(old, delta2(d, oldPort, ct.natPort));
      if (udp && c === 0) c = 0xffff;
      out.writeUInt16BE(c, l4Check);
      icmpDelta = delta2(icmpDelta, old, c);
    }
  }
  out.writeUInt16BE(csumApply(out.readUInt16BE(l4 + 2), icmpDelta), l4 + 2);
  /* The error's own source or destination. */
  if (peer) {
    out.writeUInt16BE(csumApply(out.readUInt16BE(ETH_LEN + 10), delta4(0, peer.old, ct.natAddress)), ETH_LEN + 10);
    ipToBytes(ct.natAddress).copy(out, peer.off);
  }
  const what = `${ct.reply ? 'from the backend\'s side, reply entry' : 'from the client\'s side, forward entry'} ${key} -> ${ct.natAddress}:${ct.natPort}${peer ? `, the error's ${rewriteDst ? 'source' : 'destination'} too` : ''}`;
  return { want: out, what, l4Check, inLen };
}

/** The ICMPv6 errors icmp6_nat.h translates: destination unreachable, packet too big, time exceeded, parameter problem. */
const ICMP6_ERRORS: ReadonlySet<number> = new Set([1, 2, 3, 4]);
/** icmp6_nat.h ICMP6_QUOTE_EXT_MAX, ICMP6_QUOTE_EXT_BYTES: the quote's extension headers walked, and their bytes at most. */
const ICMP6_QUOTE_EXT_MAX = 2;
const ICMP6_QUOTE_EXT_BYTES = 128;

/** delta4() over two 16-byte addresses (csum.h csum_delta16). */
const delta16 = (acc: number, from: Buffer, to: Buffer): number => {
  let d = acc;
  for (let i = 0; i < 16; i += 2) d = delta2(d, from.readUInt16BE(i), to.readUInt16BE(i));
  return d;
};

/**
 * icmp6_nat.h's decision for an ICMPv6 packet (a valid IPv6 header, not a
 * fragment), and the error as it must leave: undefined when it passes
 * untouched. Step for step as icmp6_decide() and icmp6_rewrite(): an error
 * (types 1-4) quoting an IPv6 header (version 6) whose extension headers
 * (at most 2, 128 bytes; a quoted later fragment has no ports) lead to
 * TCP or UDP with 8 bytes of it, the reversed tuple a live, not hairpin
 * conntrack6 entry. No header checksum; the ICMPv6 checksum covers the
 * pseudo-header, so the error's own address rewritten enters it.
 */
export function icmp6Translation(world: FuzzWorld, input: Buffer, r: FrameReading): { want: Buffer; what: string; l4Check: number; inLen: number } | undefined {
  const l4 = ETH_LEN + r.ihl!;
  const l4Len = r.totLen! - r.ihl!;
  if (l4 + 8 > input.length || l4Len < 8) return undefined;
  if (!ICMP6_ERRORS.has(input[l4]!)) return undefined;
  const inner = l4 + 8;
  if (inner + 40 > input.length || input[inner]! >> 4 !== 6) return undefined;
  let nh = input[inner + 6]!;
  let ext = 0;
  for (let i = 0; i <= ICMP6_QUOTE_EXT_MAX; i++) {
    const e = inner + 40 + ext;
    if (nh !== NEXTHDR_HOP && nh !== NEXTHDR_DEST && nh !== NEXTHDR_ROUTING && nh !== NEXTHDR_FRAGMENT) break;
    if (i === ICMP6_QUOTE_EXT_MAX || e + 8 > input.length) return undefined;
    if (nh === NEXTHDR_FRAGMENT) {
      if (input.readUInt16BE(e + 2) & 0xfff8) return undefined;
      ext += 8;
    } else ext += (input[e + 1]! + 1) * 8;
    if (ext > ICMP6_QUOTE_EXT_BYTES) return undefined;
    nh = input[e]!;
  }
  if (nh !== IPPROTO_TCP && nh !== IPPROTO_UDP) return undefined;
  const inLen = 40 + ext;
  const quote = l4Len - 8;
  const ports = inner + inLen;
  if (quote < inLen + 8 || ports + 8 > input.length) return undefined;
  const qs = bytesToIp6(input, inner + 8);
  const qd = bytesToIp6(input, inner + 24);
  const qsp = input.readUInt16BE(ports);
  const qdp = input.readUInt16BE(ports + 2);
  const key = ctKey(qd, qdp, qs, qsp, nh);
  const ct = world.conntrack.get(key);
  if (!ct || ((ct.expires - world.now) | 0) <= 0 || ct.hairpin) return undefined;
  const owner = world.services.flatMap((s) => s.backends.filter((b) => b.id === ct.backendId).map((b) => ({ s, b })))[0];
  const udp = nh === IPPROTO_UDP;
  let rewriteDst: boolean;
  let oldPort: number;
  let peer: number | undefined;
  if (ct.reply) {
    if (!owner || owner.s.id !== ct.serviceId || owner.b.address !== qd || owner.b.port !== qdp) return undefined;
    rewriteDst = true;
    oldPort = qdp;
    if (r.saddr === qd) peer = ETH_LEN + 8;
  } else {
    if (!owner || owner.s.id !== ct.serviceId || owner.b.address !== ct.natAddress || owner.b.port !== ct.natPort) return undefined;
    rewriteDst = false;
    oldPort = qsp;
    if (r.daddr === qs) peer = ETH_LEN + 24;
  }
  const out = Buffer.from(input);
  const nat = ipToBytes(ct.natAddress);
  /* The quoted address and port (no header checksum to follow). */
  const addrOff = inner + (rewriteDst ? 24 : 8);
  const d = delta16(0, input.subarray(addrOff, addrOff + 16), nat);
  let icmpDelta = delta2(d, oldPort, ct.natPort);
  nat.copy(out, addrOff);
  out.writeUInt16BE(ct.natPort, ports + (rewriteDst ? 2 : 0));
  /* The quoted L4 checksum, if quoted (a UDP 0 stays 0, a computed 0 is 0xffff). */
  const checkEnd = udp ? 8 : 18;
  const l4Check = quote >= inLen + checkEnd && ports + checkEnd <= input.length ? ports + checkEnd - 2 : 0;
  if (l4Check) {
    const old = out.readUInt16BE(l4Check);
    if (!udp || old) {
      let c = csumApply(old, delta2(d, oldPort, ct.natPort));
      if (udp && c === 0) c = 0xffff;
      out.writeUInt16BE(c, l4Check);
      icmpDelta = delta2(icmpDelta, old, c);
    }
  }
  /* The error's own source or destination, which the pseudo-header covers. */
  if (peer !== undefined) {
    icmpDelta = delta16(icmpDelta, input.subarray(peer, peer + 16), nat);
    nat.copy(out, peer);
  }
  out.writeUInt16BE(csumApply(out.readUInt16BE(l4 + 2), icmpDelta), l4 + 2);
  const what = `${ct.reply ? 'from the backend\'s side, reply entry' : 'from the client\'s side, forward entry'} ${key} -> [${ct.natAddress}]:${ct.natPort}${peer !== undefined ? `, the error's ${rewriteDst ? 'source' : 'destination'} too` : ''}`;
  return { want: out, what, l4Check, inLen };
}

/**
 * The sums of a translated ICMPv6 error, summed anew over the output: the
 * ICMPv6 message's (pseudo-header and all) right where the input's was
 * (and off by as much where it was not), and the quoted L4 sum too when
 * the quote holds the quoted packet whole.
 */
function checkIcmp6Sums(obs: FuzzObservation, r: FrameReading, rs: { ip: number; l4?: number }, inLen: number, fail: (p: Property, m: string) => void): void {
  const o = readFrame(obs.output);
  if (!o.ipHeader || o.ipInvalid !== undefined || obs.output.length !== obs.input.length) {
    fail('checksums', `a translated ICMPv6 error does not parse: ${o.ipInvalid ?? 'cut or grown'}`);
    return;
  }
  const os = checksumSums(obs.output, o);
  if (normSum(os.l4) !== normSum(rs.l4)) fail('checksums', `a translated ICMPv6 error's ICMPv6 checksum: sum 0x${rs.l4?.toString(16)} in, 0x${os.l4?.toString(16)} out`);
  const inner = ETH_LEN + r.ihl! + 8;
  const qTot = 40 + obs.input.readUInt16BE(inner + 4);
  const quoteEnd = ETH_LEN + r.totLen!;
  /* The quoted packet whole (no fragment header: then its L4 header would not be whole either): its L4 sum. */
  const quotedL4 = (f: Buffer): number | undefined => {
    let nh = f[inner + 6]!;
    let at = inner + 40;
    while (at < inner + inLen) {
      if (nh === NEXTHDR_FRAGMENT) return undefined;
      nh = f[at]!;
      at += (f[at + 1]! + 1) * 8;
    }
    const l4 = f.subarray(inner + inLen, inner + qTot);
    if (nh === IPPROTO_UDP && l4.readUInt16BE(6) === 0) return undefined;
    if (nh === IPPROTO_TCP && l4.length < 20) return undefined;
    return onesSum(l4, pseudoSum6(f.subarray(inner + 8, inner + 24), f.subarray(inner + 24, inner + 40), nh, l4.length));
  };
  if (qTot >= inLen + 8 && inner + qTot <= quoteEnd) {
    if (normSum(quotedL4(obs.output)) !== normSum(quotedL4(obs.input))) fail('checksums', 'a translated ICMPv6 error\'s quoted L4 checksum (the quoted packet whole) does not carry the input\'s sum');
  }
}

/**
 * The sums of a translated ICMP error, summed anew over the output: the
 * outer IPv4 header's, the ICMP message's and the quoted IPv4 header's each
 * right where the input's was (and off by as much where it was not), and
 * the quoted L4 sum too when the quote holds the quoted packet whole.
 */
function checkIcmpSums(obs: FuzzObservation, r: FrameReading, rs: { ip: number; l4?: number }, fail: (p: Property, m: string) => void): void {
  const o = readFrame(obs.output);
  if (!o.ipHeader || o.ipInvalid !== undefined || obs.output.length !== obs.input.length) {
    fail('checksums', `a translated ICMP error does not parse: ${o.ipInvalid ?? 'cut or grown'}`);
    return;
  }
  const os = checksumSums(obs.output, o);
  if (normSum(os.ip) !== normSum(rs.ip)) fail('checksums', `a translated ICMP error's IPv4 checksum: sum 0x${rs.ip.toString(16)} in, 0x${os.ip.toString(16)} out`);
  if (normSum(os.l4) !== normSum(rs.l4)) fail('checksums', `a translated ICMP error's ICMP checksum: sum 0x${rs.l4?.toString(16)} in, 0x${os.l4?.toString(16)} out`);
  const inner = ETH_LEN + r.ihl! + 8;
  const inLen = (obs.input[inner]! & 0x0f) * 4;
  const quotedIp = (f: Buffer): number => onesSum(f.subarray(inner, inner + inLen));
  if (normSum(quotedIp(obs.output)) !== normSum(quotedIp(obs.input))) fail('checksums', 'a translated ICMP error\'s quoted IPv4 checksum does not carry the input\'s sum');
  /* The quoted packet whole (not a fragment, its total length within the quote): its L4 sum, pseudo-header and all. */
  const qTot = obs.input.readUInt16BE(inner + 2);
  const quoteEnd = ETH_LEN + r.totLen!;
  const proto = obs.input[inner + 9]!;
  if ((obs.input.readUInt16BE(inner + 6) & 0x3fff) === 0 && qTot >= inLen + 8 && inner + qTot <= quoteEnd) {
    const quotedL4 = (f: Buffer): number | undefined => {
      const l4 = f.subarray(inner + inLen, inner + qTot);
      if (proto === IPPROTO_UDP && l4.readUInt16BE(6) === 0) return undefined;
      if (proto === IPPROTO_TCP && l4.length < 20) return undefined;
      const p = Buffer.alloc(12);
      f.copy(p, 0, inner + 12, inner + 20);
      p[9] = proto;
      p.writeUInt16BE(l4.length, 10);
      return onesSum(l4, onesSum(p));
    };
    if (normSum(quotedL4(obs.output)) !== normSum(quotedL4(obs.input))) fail('checksums', `a translated ICMP error's quoted ${proto === IPPROTO_TCP ? 'TCP' : 'UDP'} checksum (the quoted packet whole) does not carry the input's sum`);
  }
}
