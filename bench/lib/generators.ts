/**
 * The traffic benchmark's packet generators, in the gen namespace, sending
 * one stream to the lb namespace: the live-frames generator
 * (bpf/bench/xdp_gen.bpf.c through BPF_PROG_TEST_RUN with
 * BPF_F_TEST_XDP_LIVE_FRAMES; this kernel has no pktgen) and trafgen.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AddonDataplane } from '../../src/dataplane/native.js';
import { buildPacket } from '../../test/helpers/packet.js';
import { ipToU32, loadObject, u32 } from './bench-objects.js';
import { toolPath } from './kube-rules.js';
import { TRAFFIC_PORT, TRAFFIC_VIP } from './peers.js';
import type { TrafficTopology } from './traffic-topology.js';

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
