/**
 * Traffic through a load balancer, counted at both ends: the live-frames
 * generator (bpf/bench/xdp_gen.bpf.c, BPF_PROG_TEST_RUN with
 * BPF_F_TEST_XDP_LIVE_FRAMES, through the addon), the XDP sink
 * (bpf/bench/xdp_sink.bpf.c), and the peers under test in the middle:
 *
 * - sluice-xdp / sluice-tc: sluice's own programs and LoadBalancer, in
 *   this process, attached to the lb namespace's ingress (lbg);
 * - iptables: kube-proxy's iptables rules (iptables-legacy), stack forwarding;
 * - nftables: kube-proxy's nftables-mode rules, stack forwarding;
 * - forwarder: a plain XDP redirect without load-balancing work (the ceiling).
 *
 * Every peer gets the same services, backends, generator and frames.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { native, type AddonDataplane } from '../../src/dataplane/native.js';
import { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { LoadBalancer } from '../../src/lb/load-balancer.js';
import { backendIdentity, type ServiceSpec } from '../../src/model/service.js';
import { packageRoot } from '../../src/package-root.js';
import { buildPacket } from '../../test/helpers/packet.js';
import {
  applyIptables,
  applyNft,
  clearIptables,
  clearNft,
  iptablesRestoreInput,
  nftRuleset,
  toolPath,
  type KubeService,
} from './kube-rules.js';
import { interfaceCounters, type TrafficTopology } from './traffic-topology.js';

export const PEERS = ['forwarder', 'forwarder-fib', 'sluice-xdp', 'sluice-tc', 'iptables', 'nftables'] as const;
export type Peer = (typeof PEERS)[number];

export const PEER_LABELS: Record<Peer, string> = {
  forwarder: 'plain XDP forwarder, static (raw ceiling)',
  'forwarder-fib': 'plain XDP forwarder, routing (ceiling)',
  'sluice-xdp': 'sluice, XDP',
  'sluice-tc': 'sluice, tc',
  iptables: 'kube-proxy iptables (legacy)',
  nftables: 'kube-proxy nftables',
};

/** The peers that forward without load balancing: the ceilings. */
export const isCeiling = (p: Peer): boolean => p === 'forwarder' || p === 'forwarder-fib';

/** The measured service: VIP:80/udp, its backends in the topology. */
export const TRAFFIC_VIP = '10.96.0.10';
export const TRAFFIC_PORT = 80;
export const TRAFFIC_TARGET_PORT = 8080;

/** One service in both forms: sluice's spec and kube-proxy's. */
export interface BenchService {
  spec: ServiceSpec;
  kube: KubeService;
}

export function benchService(name: string, vip: string, backends: readonly string[]): BenchService {
  return {
    spec: {
      name,
      address: vip,
      port: TRAFFIC_PORT,
      protocol: 'udp',
      backends: backends.map((address) => ({ address, port: TRAFFIC_TARGET_PORT })),
    },
    kube: {
      name,
      vip,
      port: TRAFFIC_PORT,
      protocol: 'udp',
      endpoints: backends.map((ip) => ({ ip, port: TRAFFIC_TARGET_PORT })),
    },
  };
}

/**
 * The measured service plus fillers up to `count` services (each with 10
 * backends of its own, never sent to). The measured one sits in the middle
 * of the list: kube-proxy writes services in Go map order, so on average a
 * service is halfway down KUBE-SERVICES.
 */
export function serviceSet(topo: TrafficTopology, count: number): { all: BenchService[]; measured: BenchService } {
  const measured = benchService('bench/measured', TRAFFIC_VIP, topo.backends);
  const fillers: BenchService[] = [];
  for (let i = 0; i < count - 1; i++) {
    const vip = `10.100.${i >> 8}.${i & 255}`;
    const bes = Array.from({ length: 10 }, (_, j) => `10.${101 + (j >> 2)}.${i >> 8}.${((i & 255) << 2 | (j & 3)) & 255}`);
    fillers.push(benchService(`bench/filler-${i}`, vip, bes));
  }
  const mid = Math.floor(fillers.length / 2);
  return { all: [...fillers.slice(0, mid), measured, ...fillers.slice(mid)], measured };
}

function benchObject(name: string): string {
  const file = path.join(packageRoot(), 'bpf', 'out', 'bench', `${name}.bpf.o`);
  if (!existsSync(file)) throw new Error(`${file} is missing: run make -C bpf`);
  return file;
}

async function loadObject(name: string): Promise<AddonDataplane> {
  const dp = new (native().Dataplane)();
  try {
    await dp.load({ objectPath: benchObject(name) });
  } catch (err) {
    dp.close();
    throw err;
  }
  return dp;
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

const ipToU32 = (ip: string): number => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);

/** The sink: an XDP program in the sink namespace counting per backend address. */
export class Sink {
  private constructor(private readonly dp: AddonDataplane, private readonly topo: TrafficTopology) {}

  static async attach(topo: TrafficTopology): Promise<Sink> {
    const dp = await loadObject('xdp_sink');
    try {
      dp.attachXdp(topo.sink.ifindex, 'native', topo.sink.nsPath);
    } catch (err) {
      dp.close();
      throw err;
    }
    return new Sink(dp, topo);
  }

  /** Packets counted so far: total, and per backend address (in the topology's order). */
  read(): { packets: number; bytes: number; perBackend: number[] } {
    const one = (key: number): [number, number] => {
      const b = this.dp.perCpuSum('sink_count', u32(key));
      return b ? [Number(b.readBigUInt64LE(0)), Number(b.readBigUInt64LE(8))] : [0, 0];
    };
    const [packets, bytes] = one(256);
    return { packets, bytes, perBackend: this.topo.backends.map((a) => one(ipToU32(a) & 255)[0]) };
  }

  close(): void {
    try {
      this.dp.detachXdp(this.topo.sink.ifindex, 'native', this.topo.sink.nsPath);
    } finally {
      this.dp.close();
    }
  }
}

export interface GeneratorOptions {
  /** Distinct 5-tuples (source address and port vary). */
  flows: number;
  /** Ethernet frame size in bytes, without FCS (≥ 42: Ethernet + IPv4 + UDP). */
  frameSize: number;
}

export interface GenerateResult {
  /** Packets the generator's program sent (XDP_TX), counted by itself. */
  sent: number;
  /** Packets asked of the kernel (repeat counts summed). */
  requested: number;
  seconds: number;
}

/** A packet generator in the gen namespace, sending one stream to the lb namespace. */
export interface PacketSource {
  readonly kind: 'live-frames' | 'trafgen';
  /** Set the stream: flows, frame size. Starts again from the first flow. */
  configure(o: GeneratorOptions): void;
  /**
   * Send `packets` packets, or keep sending for `seconds` (whichever is
   * given), at `rate` packets per second (0: as fast as the kernel takes them).
   */
  send(opts: { packets?: number; seconds?: number; rate?: number }): Promise<GenerateResult>;
  close(): void;
}

/** Source ports per source address: flow i is (base + ⌊i / 50,000⌋, 10,000 + i mod 50,000). */
export const PORTS_PER_ADDRESS = 50_000;

/** The live-frames generator in the gen namespace, sending to the lb namespace. */
export class Generator implements PacketSource {
  readonly kind = 'live-frames';

  private constructor(private readonly dp: AddonDataplane, private readonly topo: TrafficTopology, private frame: Buffer) {}

  static async load(topo: TrafficTopology): Promise<Generator> {
    return new Generator(await loadObject('xdp_gen'), topo, Buffer.alloc(0));
  }

  /** Set the stream: flows, frame size. Resets the flow sequence. */
  configure(o: GeneratorOptions): void {
    if (!Number.isInteger(o.flows) || o.flows < 1 || o.flows > 16_000_000) throw new Error(`flows must be 1..16000000, not ${o.flows}`);
    if (!Number.isInteger(o.frameSize) || o.frameSize < 42 || o.frameSize > 1514) throw new Error(`frame size must be 42..1514, not ${o.frameSize}`);
    this.frame = buildPacket({
      proto: 'udp',
      saddr: this.topo.sourceBase,
      daddr: TRAFFIC_VIP,
      sport: 10_000,
      dport: TRAFFIC_PORT,
      udpChecksum: false,
      payload: Buffer.alloc(o.frameSize - 42, 0x5a),
      srcMac: this.topo.gen.mac,
      dstMac: this.topo.lb.inIf.mac,
    });
    // struct gen_cfg: flows, saddr_base, sport_base, ports, hdr[44] (the
    // frame's first 42 bytes, written back into every packet).
    const cfg = Buffer.alloc(56);
    cfg.writeUInt32LE(o.flows, 0);
    cfg.writeUInt32BE(ipToU32(this.topo.sourceBase), 4);
    cfg.writeUInt16LE(10_000, 8);
    cfg.writeUInt16LE(Math.min(o.flows, PORTS_PER_ADDRESS), 10);
    this.frame.copy(cfg, 12, 0, 42);
    this.dp.mapUpdate('gen_cfg', u32(0), cfg);
    this.dp.mapUpdate('gen_seq', u32(0), Buffer.alloc(8));
  }

  /** Packets sent so far, by the program's own count. */
  sentSoFar(): number {
    const b = this.dp.perCpuSum('gen_count', u32(0));
    return b ? Number(b.readBigUInt64LE(0)) : 0;
  }

  /**
   * Send `packets` packets, or keep sending for `seconds` (whichever is
   * given), in chunks, at `rate` packets per second (0: as fast as the
   * kernel takes them).
   */
  async send(opts: { packets?: number; seconds?: number; rate?: number }): Promise<GenerateResult> {
    if (this.frame.length === 0) throw new Error('generator not configured');
    const rate = opts.rate ?? 0;
    // At a set rate, one chunk per 10 ms tick; flat out, chunks big enough
    // that the syscall's own cost is noise, small enough to stop on time.
    const chunk = rate > 0 ? Math.max(1, Math.round(rate / 100)) : 32_768;
    const before = this.sentSoFar();
    const t0 = performance.now();
    const deadline = opts.seconds !== undefined ? t0 + opts.seconds * 1000 : Infinity;
    let left = opts.packets ?? Infinity;
    let requested = 0;
    let tick = t0;
    while (left > 0 && performance.now() < deadline) {
      const n = Math.min(chunk, left);
      await this.dp.testRunLive(this.frame, {
        repeat: n,
        batchSize: 64,
        ingressIfindex: this.topo.gen.ifindex,
        netnsPath: this.topo.gen.nsPath,
      });
      requested += n;
      left -= n;
      if (rate > 0) {
        tick += 10;
        const wait = tick - performance.now();
        if (wait > 0) await sleep(wait);
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    return { sent: this.sentSoFar() - before, requested, seconds };
  }

  close(): void {
    this.dp.close();
  }
}

/**
 * trafgen (netsniff-ng) in the gen namespace: AF_PACKET with a TX ring on
 * the generator's veth, through its qdisc (a veth stops its queue while the
 * peer's ring is full), one process on one CPU. The stream is the same as
 * the live-frames generator's, described with trafgen's header functions:
 * one packet template per source address, each cycling its source port with
 * dinc(), so N flows are ⌈N / 50,000⌉ templates sent round robin.
 */
export class TrafgenGenerator implements PacketSource {
  readonly kind = 'trafgen';
  private conf = '';
  /** Packets per second of the last run, to size timed runs. */
  private lastPps = 300_000;

  constructor(private readonly topo: TrafficTopology) {
    toolPath('trafgen');
  }

  configure(o: GeneratorOptions): void {
    if (!Number.isInteger(o.flows) || o.flows < 1) throw new Error(`flows must be a positive integer, not ${o.flows}`);
    if (!Number.isInteger(o.frameSize) || o.frameSize < 42 || o.frameSize > 1514) throw new Error(`frame size must be 42..1514, not ${o.frameSize}`);
    const templates = Math.ceil(o.flows / PORTS_PER_ADDRESS);
    const ports = o.flows / templates;
    if (!Number.isInteger(ports)) {
      throw new Error(`trafgen: ${o.flows} flows do not split evenly over ${templates} source addresses; use a multiple of ${templates}`);
    }
    const base = ipToU32(this.topo.sourceBase);
    const addr = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
    const packets: string[] = [];
    for (let j = 0; j < templates; j++) {
      packets.push([
        '{',
        `  eth(da=${this.topo.lb.inIf.mac}, sa=${this.topo.gen.mac}),`,
        `  ipv4(saddr=${addr(base + j)}, daddr=${TRAFFIC_VIP}, ttl=64),`,
        `  udp(sp=dinc(10000, ${10_000 + ports - 1}), dp=${TRAFFIC_PORT}, csum=0),`,
        `  fill(0x5a, ${o.frameSize - 42})`,
        '}',
      ].join('\n'));
    }
    this.conf = `${packets.join('\n')}\n`;
  }

  async send(opts: { packets?: number; seconds?: number; rate?: number }): Promise<GenerateResult> {
    if (!this.conf) throw new Error('trafgen: not configured');
    // The configuration goes in a file: read from stdin, trafgen 0.6.8
    // fails its first TX ring flush with EAGAIN.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-trafgen-'));
    const confFile = path.join(dir, 'stream.cfg');
    writeFileSync(confFile, this.conf);
    const args = ['netns', 'exec', this.topo.gen.ns, toolPath('trafgen'), '--dev', this.topo.gen.ifname, '--conf', confFile,
      '--cpus', '1', '--no-sock-mem', '--notouch-irq', '--qdisc-path'];
    // trafgen has no duration, and stopped with SIGINT it fails its last TX
    // ring flush and prints no counts: a timed run asks for as many packets
    // as the last run's rate would send in that time.
    const num = opts.packets ?? Math.max(10_000, Math.round(this.lastPps * (opts.seconds ?? 1)));
    args.push('--num', String(num));
    if (opts.rate) args.push('--rate', `${opts.rate}pps`);
    const t0 = performance.now();
    const child = spawn('ip', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.stdin.end();
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c) => resolve(c));
    }).finally(() => rmSync(dir, { recursive: true, force: true }));
    const seconds = (performance.now() - t0) / 1000;
    const m = /(\d+) packets outgoing/.exec(out);
    if (!m) throw new Error(`trafgen exited with ${code} and no count: ${out.trim().slice(0, 400)}`);
    const sent = Number(m[1]);
    if (seconds > 0.05) this.lastPps = sent / seconds;
    return { sent, requested: num, seconds };
  }

  close(): void {
    this.conf = '';
  }
}

/** A peer set up in the lb namespace; `stop` removes every trace of it. */
export interface RunningPeer {
  peer: Peer;
  /** sluice's counters, for sluice peers. */
  sluice?: { dp: NativeDataplane; lb: LoadBalancer };
  /** Seconds it took to program the services. */
  programSeconds: number;
  stop(): Promise<void>;
}

/** Set a peer up in the lb namespace with these services. */
/** A peer whose rules took longer to load than the cap allows. */
export class ProgramTimeout extends Error {}

export async function startPeer(
  peer: Peer,
  topo: TrafficTopology,
  services: readonly BenchService[],
  flows: number,
  opts: { programCapSeconds?: number } = {},
): Promise<RunningPeer> {
  const timeoutMs = (opts.programCapSeconds ?? 300) * 1000;
  const lbNs = topo.lb.ns;
  const t0 = performance.now();
  const elapsed = (): number => (performance.now() - t0) / 1000;
  switch (peer) {
    case 'forwarder':
    case 'forwarder-fib': {
      const dp = await loadObject('xdp_fwd');
      try {
        // struct fwd_cfg: ifindex, dmac, smac, fib.
        const cfg = Buffer.alloc(20);
        cfg.writeUInt32LE(topo.lb.outIf.ifindex, 0);
        Buffer.from(topo.sink.mac.split(':').map((h) => parseInt(h, 16))).copy(cfg, 4);
        Buffer.from(topo.lb.outIf.mac.split(':').map((h) => parseInt(h, 16))).copy(cfg, 10);
        cfg.writeUInt16LE(peer === 'forwarder-fib' ? 1 : 0, 16);
        dp.mapUpdate('fwd_cfg', u32(0), cfg);
        dp.attachXdp(topo.lb.inIf.ifindex, 'native', topo.lb.nsPath);
      } catch (err) {
        dp.close();
        throw err;
      }
      return {
        peer,
        programSeconds: elapsed(),
        stop: async () => {
          try {
            dp.detachXdp(topo.lb.inIf.ifindex, 'native', topo.lb.nsPath);
          } finally {
            dp.close();
          }
        },
      };
    }
    case 'sluice-xdp':
    case 'sluice-tc': {
      // Two conntrack entries per flow (forward and reply), with room to spare.
      const conntrackSize = Math.max(65_536, 2 ** Math.ceil(Math.log2(flows * 2.5)));
      const dp = await NativeDataplane.open({ conntrackSize, maglevSlots: 16_777_216 });
      const target = { ifname: topo.lb.inIf.ifname, netns: topo.lb.nsPath, mode: peer === 'sluice-xdp' ? 'xdp' : 'tc' } as const;
      try {
        const lb = new LoadBalancer(dp);
        await lb.applyMany(services.map((s) => s.spec));
        const seconds = elapsed();
        dp.attach(target);
        return {
          peer,
          sluice: { dp, lb },
          programSeconds: seconds,
          stop: async () => {
            try {
              dp.detach(target);
            } finally {
              dp.close();
            }
          },
        };
      } catch (err) {
        dp.close();
        throw err;
      }
    }
    case 'iptables': {
      const r = await applyIptables(lbNs, 'legacy', iptablesRestoreInput(services.map((s) => s.kube)), { timeoutMs });
      if ('timedOut' in r) throw new ProgramTimeout(`iptables-legacy-restore of ${services.length} services: > ${r.seconds.toFixed(0)} s (cap)`);
      await flushConntrack(lbNs);
      return { peer, programSeconds: elapsed(), stop: () => clearIptables(lbNs, 'legacy') };
    }
    case 'nftables': {
      const r = await applyNft(lbNs, nftRuleset(services.map((s) => s.kube)), { timeoutMs });
      if ('timedOut' in r) {
        await clearNft(lbNs);
        throw new ProgramTimeout(`nft -f of ${services.length} services: > ${r.seconds.toFixed(0)} s (cap)`);
      }
      await flushConntrack(lbNs);
      return { peer, programSeconds: elapsed(), stop: () => clearNft(lbNs) };
    }
  }
}

/**
 * Empty the lb namespace's netfilter conntrack table (entries of an earlier
 * peer's run would change what the next one does). conntrack(8) comes with
 * `setup.sh --bench`; without it the table is left as it is (the flows of a
 * run are all warmed up anyway).
 */
async function flushConntrack(ns: string): Promise<void> {
  let tool: string;
  try {
    tool = toolPath('conntrack');
  } catch {
    return;
  }
  await new Promise<void>((resolve) => execFile('ip', ['netns', 'exec', ns, tool, '-F'], () => resolve()));
}

export interface TrafficSample {
  peer: Peer;
  generator: PacketSource['kind'];
  services: number;
  flows: number;
  frameSize: number;
  rate: number;
  /** Packets the generator sent. */
  offered: number;
  /** Packets counted at the sink. */
  forwarded: number;
  /** offered − forwarded. */
  dropped: number;
  seconds: number;
  offeredMpps: number;
  forwardedMpps: number;
  /** Packets the sink counted per backend, in the topology's order. */
  perBackend: number[];
  /** Nonzero drop and error counters along the path (veth queues, sluice), as deltas. */
  dropsAt: Record<string, number>;
  /** sluice's own counters for the measured service, when the peer is sluice. */
  sluice?: { rxPackets: number; forwarded: number; backendPackets: number[] };
}

async function pathCounters(topo: TrafficTopology): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const ends: Array<[string, string, string]> = [
    ['gen', topo.gen.ns, topo.gen.ifname],
    ['lbg', topo.lb.ns, topo.lb.inIf.ifname],
    ['lbs', topo.lb.ns, topo.lb.outIf.ifname],
    ['sink', topo.sink.ns, topo.sink.ifname],
  ];
  for (const [label, ns, ifname] of ends) {
    for (const [k, v] of Object.entries(await interfaceCounters(ns, ifname))) {
      // The sink's own XDP_DROP is how it counts, not a loss.
      if (label === 'sink' && /xdp_drops/.test(k)) continue;
      if (/drop|err|fail|full/.test(k)) out[`${label}.${k}`] = v;
    }
  }
  return out;
}

interface SluiceCounters {
  rxPackets: number;
  forwarded: number;
  backendPackets: number[];
  drops: Record<string, number>;
}

function sluiceCounters(p: RunningPeer, measured: BenchService): SluiceCounters | undefined {
  if (!p.sluice) return undefined;
  const { dp, lb } = p.sluice;
  const g = dp.globalStats();
  const ids = lb.exportIds([measured.spec.name]).get(measured.spec.name);
  const backendPackets = measured.spec.backends.map((b) => {
    const id = ids?.backends.get(backendIdentity(b));
    return id === undefined ? NaN : Number(dp.backendStats(id).packets);
  });
  const drops: Record<string, number> = {};
  for (const [k, v] of Object.entries(g)) if (k.startsWith('drop_') || k === 'fib_miss') drops[`sluice.${k}`] = Number(v);
  return { rxPackets: Number(g.rx_packets), forwarded: Number(g.forwarded), backendPackets, drops };
}

function delta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/**
 * One measurement: warm the peer up (every flow seen once, so conntrack
 * holds them all and the measured packets are established flows), then
 * send for `seconds` and count both ends.
 */
export async function measure(
  topo: TrafficTopology,
  gen: PacketSource,
  sink: Sink,
  peer: RunningPeer,
  measured: BenchService,
  o: GeneratorOptions & { services: number; seconds?: number; packets?: number; rate?: number; warmup?: boolean },
): Promise<TrafficSample> {
  gen.configure(o);
  if (o.warmup !== false) {
    await gen.send({ packets: Math.max(o.flows, 10_000), rate: o.rate ?? 0 });
    await sleep(50);
  }
  const sinkBefore = sink.read();
  const sluiceBefore = sluiceCounters(peer, measured);
  const pathBefore = await pathCounters(topo);
  const sendOpts: { packets?: number; seconds?: number; rate?: number } = { rate: o.rate ?? 0 };
  if (o.packets !== undefined) sendOpts.packets = o.packets;
  if (o.seconds !== undefined) sendOpts.seconds = o.seconds;
  const g = await gen.send(sendOpts);
  // Let the softirqs finish what the last chunk queued.
  await sleep(50);
  const sinkAfter = sink.read();
  const sluiceAfter = sluiceCounters(peer, measured);
  const dropsAt = delta(await pathCounters(topo), pathBefore);
  const forwarded = sinkAfter.packets - sinkBefore.packets;
  const sample: TrafficSample = {
    peer: peer.peer,
    generator: gen.kind,
    services: o.services,
    flows: o.flows,
    frameSize: o.frameSize,
    rate: o.rate ?? 0,
    offered: g.sent,
    forwarded,
    dropped: g.sent - forwarded,
    seconds: g.seconds,
    offeredMpps: g.sent / g.seconds / 1e6,
    forwardedMpps: forwarded / g.seconds / 1e6,
    perBackend: sinkAfter.perBackend.map((v, i) => v - (sinkBefore.perBackend[i] ?? 0)),
    dropsAt,
  };
  if (sluiceBefore && sluiceAfter) {
    sample.sluice = {
      rxPackets: sluiceAfter.rxPackets - sluiceBefore.rxPackets,
      forwarded: sluiceAfter.forwarded - sluiceBefore.forwarded,
      backendPackets: sluiceAfter.backendPackets.map((v, i) => v - (sluiceBefore.backendPackets[i] ?? 0)),
    };
    Object.assign(sample.dropsAt, delta(sluiceAfter.drops, sluiceBefore.drops));
  }
  return sample;
}
