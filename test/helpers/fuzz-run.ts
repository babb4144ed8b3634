/**
 * The packet fuzzer's rig: a dataplane loaded into the kernel (small maps,
 * no FIB redirects, as in test/bpf/packets.test.ts), services programmed
 * through the LoadBalancer, and one scenario at a time run through
 * BPF_PROG_TEST_RUN at XDP and tc, every packet checked by checkPacket().
 * Shared by test/bpf/fuzz.test.ts and bench/stages/fuzz.ts.
 */
import { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { LoadBalancer } from '../../src/lb/load-balancer.js';
import {
  CONNTRACK_TABLES,
  addressFamily,
  decodeConntrackKey,
  decodeConntrackValue,
  decodeLbStats,
  encodeAffinityKey,
  encodeAffinityValue,
  encodeConntrackKey,
  encodeConntrackValue,
  type ConntrackKey,
  type GlobalCounter,
} from '../../src/dataplane/codec.js';
import { backendIdentity, type ServiceSpec } from '../../src/model/service.js';
import { globalDelta } from './test-run.js';
import { ETH_LEN, IPPROTO_TCP, IPPROTO_UDP, buildFrame, bytesToIp, bytesToIp6 } from './fuzz-frames.js';
import {
  PROPERTIES,
  checkPacket,
  ctKey,
  fragKey,
  fragKey6,
  type CheckResult,
  type CtTimeouts,
  type FragTable,
  type FuzzWorld,
  type KnownIssue,
  type LbDelta,
  type Outcome,
  type Property,
  type WorldConntrack,
  type WorldFrag,
  type WorldService,
} from './fuzz-check.js';
import { BACKEND_ADDRS, BACKEND_ADDRS6, CLIENTS, CLIENTS6, HAIRPIN6_ADDR, HAIRPIN_ADDR, datagramFrames, resolveFrame, serviceSpecs, twinPackets, type Scenario, type Step, type Tuple } from './fuzz-scenario.js';

/** What the fuzzer did: packets, and per property how many packets it applied to and how many broke it. */
export interface FuzzTally {
  scenarios: number;
  packets: number;
  byProg: Record<'xdp' | 'tc', number>;
  /** Packets by the family their ethertype says (other: neither). */
  byFamily: Record<'ipv4' | 'ipv6' | 'other', number>;
  /**
   * Frames meant for tc that went to XDP instead: the kernel refuses an skb
   * test run of an IPv4 frame shorter than 34 bytes (IPv6: 54).
   */
  tcTooShort: number;
  outcomes: Partial<Record<Outcome, number>>;
  /** The outcomes of IPv6 frames alone. */
  outcomes6: Partial<Record<Outcome, number>>;
  properties: Record<Property, { checked: number; failed: number }>;
  /** Packets by lifecycle event (fuzz-check.ts, CheckResult.lifecycle). */
  lifecycle: Partial<Record<GlobalCounter, number>>;
  /** Packets that showed a known issue (allowed, not failed), by issue. */
  known: Partial<Record<KnownIssue, number>>;
  /** The first failures, when the run goes on past them (the benchmark). */
  failures: FuzzFailure[];
}

export function newTally(): FuzzTally {
  return {
    scenarios: 0,
    packets: 0,
    byProg: { xdp: 0, tc: 0 },
    byFamily: { ipv4: 0, ipv6: 0, other: 0 },
    tcTooShort: 0,
    outcomes: {},
    outcomes6: {},
    properties: Object.fromEntries(PROPERTIES.map((p) => [p, { checked: 0, failed: 0 }])) as FuzzTally['properties'],
    lifecycle: {},
    known: {},
    failures: [],
  };
}

/** A packet that broke a property: everything needed to replay it by hand. */
export class FuzzFailure extends Error {
  constructor(readonly step: number, readonly prog: string, readonly frame: Buffer, readonly output: Buffer, readonly result: CheckResult) {
    super([
      `packet ${step} (${prog}) broke ${[...new Set(result.violations.map((v) => v.property))].join(', ')}:`,
      ...result.violations.map((v) => `  [${v.property}] ${v.message}`),
      `  frame:  ${frame.toString('hex')}`,
      `  output: ${output.toString('hex')}`,
    ].join('\n'));
    this.name = 'FuzzFailure';
  }
}

/**
 * The idle timeouts the rig loads the dataplane with: all different (the
 * defaults give a SYN and UDP both 60 s), so that a flow given another
 * state's timeout shows.
 */
export const FUZZ_TIMEOUTS: CtTimeouts = { tcpSyn: 60, tcpEstablished: 21600, tcpClosing: 10, udp: 75 };

/**
 * How far the second a packet sees may lag the one process.hrtime() gives
 * at its start: bpf_ktime_get_coarse_ns() is the time of the last tick, and
 * lb_clock's per-CPU cache may hold it one tick longer (HZ 100: 20 ms).
 */
const CLOCK_LAG_NS = 25_000_000n;

const PROTO_NUMBER = { tcp: IPPROTO_TCP, udp: IPPROTO_UDP } as const;

/** The whole conntrack and conntrack6 tables, as the checker reads them (one map: ctKey names the family). */
function readTable(dp: NativeDataplane): Map<string, WorldConntrack> {
  const out = new Map<string, WorldConntrack>();
  for (const map of ['conntrack', 'conntrack6'] as const) readTableInto(dp, map, out);
  return out;
}

function readTableInto(dp: NativeDataplane, map: 'conntrack' | 'conntrack6', out: Map<string, WorldConntrack>): void {
  const { keys, values, count } = dp.raw.mapDump(map);
  if (!count) return;
  const ks = keys.length / count;
  const vs = values.length / count;
  for (let i = 0; i < count; i++) {
    const k = decodeConntrackKey(keys.subarray(i * ks, (i + 1) * ks));
    const v = decodeConntrackValue(values.subarray(i * vs, (i + 1) * vs));
    out.set(ctKey(k.saddr, k.sport, k.daddr, k.dport, PROTO_NUMBER[k.protocol as 'tcp' | 'udp'] ?? 0), {
      natAddress: v.natAddress, natPort: v.natPort, reply: v.dir === 1, hairpin: v.hairpin === true,
      backendId: v.backendId, serviceId: v.serviceId, state: v.state, created: v.created, expires: v.expires,
    });
  }
}

/** The whole frag4 table (bpf/include/maps.h struct frag4_key, frag4_value), as the checker reads it. */
function readFrag4(dp: NativeDataplane): Map<string, WorldFrag> {
  const { keys, values, count } = dp.raw.mapDump('frag4');
  const out = new Map<string, WorldFrag>();
  if (!count) return out;
  const ks = keys.length / count;
  const vs = values.length / count;
  for (let i = 0; i < count; i++) {
    const k = keys.subarray(i * ks, (i + 1) * ks);
    const v = values.subarray(i * vs, (i + 1) * vs);
    out.set(fragKey(bytesToIp(k, 0), bytesToIp(k, 4), k[10]!, k.readUInt16BE(8)), {
      newAddress: bytesToIp(v, 0), peerNewAddress: bytesToIp(v, 4), serviceId: v.readUInt32LE(8), backendId: v.readUInt32LE(12),
      rewriteDst: v[16] === 1, hairpin: v[17] === 1,
    });
  }
  return out;
}

/** The whole frag6 table (bpf/include/maps.h struct frag6_key, frag6_value), as the checker reads it. */
function readFrag6(dp: NativeDataplane): Map<string, WorldFrag> {
  const { keys, values, count } = dp.raw.mapDump('frag6');
  const out = new Map<string, WorldFrag>();
  if (!count) return out;
  const ks = keys.length / count;
  const vs = values.length / count;
  for (let i = 0; i < count; i++) {
    const k = keys.subarray(i * ks, (i + 1) * ks);
    const v = values.subarray(i * vs, (i + 1) * vs);
    out.set(fragKey6(bytesToIp6(k, 0), bytesToIp6(k, 16), k.readUInt32BE(32)), {
      newAddress: bytesToIp6(v, 0), peerNewAddress: bytesToIp6(v, 16), serviceId: v.readUInt32LE(32), backendId: v.readUInt32LE(36),
      rewriteDst: v[40] === 1, hairpin: v[41] === 1,
    });
  }
  return out;
}

/** The key a checker's table key names. */
function parseCtKey(k: string): ConntrackKey {
  const m = /^\[?([^\]>]+?)\]?:(\d+)>\[?([^\]/]+?)\]?:(\d+)\/(\d+)$/.exec(k)!;
  return { saddr: m[1]!, sport: Number(m[2]), daddr: m[3]!, dport: Number(m[4]), protocol: Number(m[5]) === IPPROTO_TCP ? 'tcp' : 'udp' };
}

/** The other entry of a flow (bpf/include/ct.h's ct_peer, ct6.h's ct6_peer): its key. */
function peerKey(k: string, e: WorldConntrack, hairpin: string | null, hairpin6: string | null): string {
  const t = parseCtKey(k);
  const proto = PROTO_NUMBER[t.protocol as 'tcp' | 'udp'];
  const six = addressFamily(t.saddr) === 6;
  const hp = six ? hairpin6 ?? t.saddr : hairpin ?? '0.0.0.0';
  return e.reply
    ? ctKey(e.hairpin ? t.saddr : t.daddr, t.dport, e.natAddress, e.natPort, proto)
    : ctKey(e.natAddress, e.natPort, e.hairpin ? hp : t.saddr, t.sport, proto);
}

/** The conntrack map of a key the checker names. */
const ctMapOf = (k: ConntrackKey): 'conntrack' | 'conntrack6' => CONNTRACK_TABLES[addressFamily(k.saddr)].map;

/** The second now, as the dataplane's clock counts it (whole seconds of CLOCK_MONOTONIC). */
const nowSeconds = (): number => Number(process.hrtime.bigint() / 1_000_000_000n);

function deltas(before: Buffer, after: Buffer): Map<number, LbDelta> {
  const out = new Map<number, LbDelta>();
  for (let off = 0; off + 32 <= after.length; off += 32) {
    if (before.compare(after, off, off + 32, off, off + 32) === 0) continue;
    const a = decodeLbStats(after, off);
    const b = decodeLbStats(before, off);
    out.set(off / 32, {
      packets: Number(a.packets - b.packets),
      bytes: Number(a.bytes - b.bytes),
      newConnections: Number(a.newConnections - b.newConnections),
      replyPackets: Number(a.replyPackets - b.replyPackets),
    });
  }
  return out;
}

/** The program a frame can be test-run at: the kernel refuses an skb test run of an IPv4 frame under 34 bytes (IPv6: 54), so those go to XDP. */
export function progFor(prog: 'xdp' | 'tc', frame: Buffer): 'xdp' | 'tc' {
  const ethType = frame.readUInt16BE(12);
  const tcMin = ethType === 0x0800 ? ETH_LEN + 20 : ethType === 0x86dd ? ETH_LEN + 40 : 0;
  return prog === 'tc' && frame.length < tcMin ? 'xdp' : prog;
}

export class FuzzRig {
  private specs: ServiceSpec[] = [];
  /** The services as programmed now, by name; null: deleted. */
  private current = new Map<string, ServiceSpec | null>();
  private world: WorldService[] = [];
  private hairpin: string | null = null;
  private hairpin6: string | null = null;
  private global!: Record<GlobalCounter, bigint>;
  private svcStats!: Buffer;
  private beStats!: Buffer;

  /** Known issues counted rather than failed (fuzz-check.ts, KNOWN_ISSUES). */
  allow: ReadonlySet<KnownIssue> = new Set();

  private constructor(readonly dp: NativeDataplane, public lb: LoadBalancer) {}

  /* No quarantine for freed table regions: packets here are test runs, none in flight while a table changes. */
  private static balancer(dp: NativeDataplane): LoadBalancer {
    return new LoadBalancer(dp, { regions: { quarantineMs: 0 } });
  }

  /** Load a dataplane of its own: a few service and backend ids, so that ids are recycled soon and every counter is read in one call. */
  static async open(): Promise<FuzzRig> {
    const dp = await NativeDataplane.open({
      fibRedirect: false,
      flowTimeouts: FUZZ_TIMEOUTS,
      capacity: { conntrack: 8192, conntrack6: 8192, affinity: 1024, frontends: 15, backends: 63, maglevSlots: 65536 },
    });
    return new FuzzRig(dp, FuzzRig.balancer(dp));
  }

  close(): void {
    this.dp.close();
  }

  /** Run one scenario from a clean dataplane; throws FuzzFailure at the first packet that breaks a property. */
  async run(s: Scenario, tally: FuzzTally, opts: { keepGoing?: boolean } = {}): Promise<void> {
    await this.lb.deleteMany(this.lb.list().map((x) => x.name));
    /* The LoadBalancer never frees the id of a backend a change drops (only a
     * deleted service's), so a long run runs out of them: start a new one,
     * over maps now empty of services, before it does. */
    const room = this.lb.room();
    if (room.backendIds.free < 40 || room.serviceIds.free < 10) this.lb = FuzzRig.balancer(this.dp);
    this.dp.raw.mapClear('conntrack');
    this.dp.raw.mapClear('conntrack6');
    this.dp.raw.mapClear('affinity');
    this.dp.raw.mapClear('frag4');
    this.dp.raw.mapClear('frag6');
    this.specs = serviceSpecs(s.services);
    this.current = new Map(this.specs.map((x) => [x.name, x]));
    await this.lb.applyMany(this.specs);
    this.setHairpin(s.hairpin);
    this.refreshWorld();
    this.snapshot();
    tally.scenarios++;
    for (let i = 0; i < s.steps.length; i++) {
      const step = s.steps[i]!;
      if (step.kind === 'packet') this.packet(i, step, tally, opts.keepGoing === true);
      else if (step.kind === 'twin') for (const p of twinPackets(step, this.visible())) this.packet(i, p, tally, opts.keepGoing === true);
      else if (step.kind === 'datagram') for (const f of datagramFrames(step, this.visible(), HAIRPIN_ADDR)) this.send(i, step.prog, f, tally, opts.keepGoing === true);
      else await this.change(step);
    }
  }

  private setHairpin(on: boolean): void {
    this.hairpin = on ? HAIRPIN_ADDR : null;
    this.hairpin6 = on ? HAIRPIN6_ADDR : null;
    this.dp.setHairpinAddress(this.hairpin, 4);
    this.dp.setHairpinAddress(this.hairpin6, 6);
  }

  private snapshot(): void {
    this.global = this.dp.globalStats();
    this.svcStats = this.dp.raw.perCpuSumAll('svc_stats');
    this.beStats = this.dp.raw.perCpuSumAll('backend_stats');
  }

  /** The services as the dataplane holds them, with their ids. */
  private refreshWorld(): void {
    this.world = [];
    for (const spec of this.current.values()) {
      if (!spec) continue;
      const ids = this.lb.ids(spec.name);
      this.world.push({
        id: ids.service,
        vip: spec.address,
        port: spec.port,
        proto: spec.protocol === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP,
        affinity: spec.sessionAffinity !== undefined,
        drop: spec.noBackends === 'drop',
        backends: spec.backends.map((b) => ({
          id: ids.backends.get(backendIdentity(b))!,
          address: b.address,
          port: b.port,
          draining: b.state === 'draining' || b.weight === 0,
        })),
      });
    }
  }

  /** The services of the scenario as packets see them: the current version, or the last one of a deleted service (its VIP may be gone). */
  private visible(): ServiceSpec[] {
    return this.specs.map((s) => this.current.get(s.name) ?? s);
  }

  private async change(step: Exclude<Step, { kind: 'packet' | 'twin' | 'datagram' }>): Promise<void> {
    const pick = (i: number): ServiceSpec => this.specs[i % this.specs.length]!;
    switch (step.kind) {
      case 'drain': {
        const s = this.current.get(pick(step.svc).name);
        if (!s || s.backends.length === 0) return;
        const b = s.backends[step.backend % s.backends.length]!;
        await this.lb.setBackendState(s.name, b.address, b.port, step.draining ? 'draining' : 'active');
        this.current.set(s.name, this.lb.get(s.name)!);
        break;
      }
      case 'removeBackend': {
        const s = this.current.get(pick(step.svc).name);
        if (!s || s.backends.length === 0) return;
        const b = s.backends[step.backend % s.backends.length]!;
        await this.lb.removeBackend(s.name, b.address, b.port);
        this.current.set(s.name, this.lb.get(s.name)!);
        break;
      }
      case 'deleteService': {
        const name = pick(step.svc).name;
        if (!this.current.get(name)) return;
        await this.lb.delete(name);
        this.current.set(name, null);
        break;
      }
      case 'restoreService': {
        const s = pick(step.svc);
        await this.lb.apply(s);
        this.current.set(s.name, this.lb.get(s.name)!);
        break;
      }
      case 'expireAffinity':
        /* Every affinity entry last used long ago: the next flow is placed by Maglev again. */
        for (const svc of this.world) {
          if (!svc.affinity) continue;
          for (const client of [...CLIENTS, ...BACKEND_ADDRS, ...CLIENTS6, ...BACKEND_ADDRS6]) {
            const a = this.dp.getAffinity(client, svc.id);
            if (a) this.dp.raw.mapUpdate('affinity', encodeAffinityKey(client, svc.id), encodeAffinityValue({ ...a, lastSeenNs: 1n }));
          }
        }
        break;
      case 'expire':
      case 'age':
      case 'evict': {
        /* One flow's entry (and its peer, as a flow's idle timeout ends both; or every entry, as if time passed): dead from a past second, or its last packet seconds earlier, or evicted alone. */
        const table = readTable(this.dp);
        const keys = [...table.keys()].filter((k) => step.kind !== 'evict' || table.get(k)!.reply === step.reply).sort();
        if (!keys.length) return;
        const k = keys[(step.entry ?? 0) % keys.length]!;
        const e = table.get(k)!;
        const targets = step.entry === null ? keys : [k];
        if (step.kind !== 'evict' && step.entry !== null && step.both) targets.push(peerKey(k, e, this.hairpin, this.hairpin6));
        for (const t of targets) {
          const v = table.get(t);
          if (!v) continue;
          const key = parseCtKey(t);
          if (step.kind === 'evict') {
            this.dp.raw.mapDelete(ctMapOf(key), encodeConntrackKey(key));
            continue;
          }
          const expires = step.kind === 'expire' ? nowSeconds() - step.ago : v.expires - step.seconds;
          this.dp.raw.mapUpdate(ctMapOf(key), encodeConntrackKey(key), encodeConntrackValue({
            dir: v.reply ? 1 : 0, natAddress: v.natAddress, natPort: v.natPort, backendId: v.backendId, serviceId: v.serviceId,
            state: v.state, created: v.created, expires: expires >>> 0, ...(v.hairpin ? { hairpin: true } : {}),
          }));
        }
        break;
      }
      case 'forgetFlows':
        /* As if every entry had been evicted: replies now go through reply_nat. */
        this.dp.raw.mapClear('conntrack');
        this.dp.raw.mapClear('conntrack6');
        break;
      case 'hairpin':
        this.setHairpin(step.on);
        break;
    }
    this.refreshWorld();
    this.snapshot();
  }

  /**
   * Send one frame through a program and check it. The second the packet
   * is judged at is read around the test run; when the run may have seen
   * either of two seconds, the packet passes if it is right at one of them.
   */
  sendAndCheck(prog: 'xdp' | 'tc', frame: Buffer): { result: CheckResult; output: Buffer } {
    const table = readTable(this.dp);
    const frag4: FragTable = readFrag4(this.dp);
    const frag6: FragTable = readFrag6(this.dp);
    const t0 = process.hrtime.bigint();
    const run = this.dp.raw.testRun(prog, frame);
    const t1 = process.hrtime.bigint();
    const before = { global: this.global, svc: this.svcStats, be: this.beStats };
    this.snapshot();
    const obs = {
      prog,
      input: frame,
      verdict: run.retval,
      output: run.data,
      global: globalDelta(before.global, this.global),
      svc: deltas(before.svc, this.svcStats),
      backend: deltas(before.be, this.beStats),
      conntrack: readTable(this.dp),
      frag4: readFrag4(this.dp),
      frag6: readFrag6(this.dp),
    };
    const first = Number((t0 - CLOCK_LAG_NS) / 1_000_000_000n);
    const last = Number(t1 / 1_000_000_000n);
    let result: CheckResult | undefined;
    for (let now = first; now <= last; now++) {
      const world: FuzzWorld = { services: this.world, hairpin: this.hairpin, hairpin6: this.hairpin6, conntrack: table, now, timeouts: FUZZ_TIMEOUTS, frag4, frag6 };
      const r = checkPacket(world, obs, this.allow);
      if (!result || !r.violations.length) result = r;
      if (!r.violations.length) break;
    }
    return { result: result!, output: run.data };
  }

  private packet(i: number, step: Extract<Step, { kind: 'packet' }>, tally: FuzzTally, keepGoing: boolean): void {
    /* An ICMP error about a client's flow quotes the packet its backend got: the one its forward entry names, if any. */
    const table = step.icmp ? readTable(this.dp) : undefined;
    const placed = (t: Tuple): { address: string; port: number } | undefined => {
      const e = table?.get(ctKey(t.saddr, t.sport, t.daddr, t.dport, PROTO_NUMBER[t.proto]));
      return e && !e.reply ? { address: e.natAddress, port: e.natPort } : undefined;
    };
    /* Or it is about the packet that would answer an entry of the table of the flow's family: a live, dead or hairpin flow's, either way. */
    const quoted = (six: boolean): Tuple | undefined => {
      const keys = [...(table?.keys() ?? [])].filter((k) => k.startsWith('[') === six).sort();
      if (!keys.length || step.icmp?.entry == null) return undefined;
      const k = parseCtKey(keys[step.icmp.entry % keys.length]!);
      return { saddr: k.daddr, sport: k.dport, daddr: k.saddr, dport: k.sport, proto: k.protocol as 'tcp' | 'udp' };
    };
    this.send(i, step.prog, buildFrame(resolveFrame(step, this.visible(), HAIRPIN_ADDR, placed, quoted)), tally, keepGoing);
  }

  private send(i: number, meant: 'xdp' | 'tc', frame: Buffer, tally: FuzzTally, keepGoing: boolean): void {
    const prog = progFor(meant, frame);
    if (prog !== meant) tally.tcTooShort++;
    const { result, output } = this.sendAndCheck(prog, frame);
    tally.packets++;
    tally.byProg[prog]++;
    const ethType = frame.readUInt16BE(12);
    tally.byFamily[ethType === 0x0800 ? 'ipv4' : ethType === 0x86dd ? 'ipv6' : 'other']++;
    if (ethType === 0x86dd) tally.outcomes6[result.outcome] = (tally.outcomes6[result.outcome] ?? 0) + 1;
    tally.outcomes[result.outcome] = (tally.outcomes[result.outcome] ?? 0) + 1;
    for (const p of result.applied) tally.properties[p].checked++;
    for (const c of result.lifecycle ?? []) tally.lifecycle[c] = (tally.lifecycle[c] ?? 0) + 1;
    if (result.known) tally.known[result.known] = (tally.known[result.known] ?? 0) + 1;
    for (const p of new Set(result.violations.map((v) => v.property))) tally.properties[p].failed++;
    if (!result.violations.length) return;
    const failure = new FuzzFailure(i, prog, frame, output, result);
    if (!keepGoing) throw failure;
    if (tally.failures.length < 20) tally.failures.push(failure);
  }
}
