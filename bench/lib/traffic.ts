/**
 * One traffic measurement: the generator's stream through a peer to the
 * sink, counted at both ends, by sluice's own counters where the peer is
 * sluice, and by the drop and error counters along the path.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { backendIdentity } from '../../src/model/service.js';
import type { GeneratorOptions, PacketSource } from './generators.js';
import type { BenchService, Peer, RunningPeer } from './peers.js';
import type { Sink } from './sink.js';
import { interfaceCounters, type TrafficTopology } from './traffic-topology.js';

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
  /**
   * sluice's own counters for the measured service, when the peer is sluice:
   * newFlows (the service's new connections) and untracked (balanced
   * without a conntrack entry) say whether the measured packets were the
   * established flows they are meant to be (both 0).
   */
  sluice?: { rxPackets: number; forwarded: number; backendPackets: number[]; newFlows: number; untracked: number };
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
  newFlows: number;
  untracked: number;
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
  // Where packets went other than to a backend: drops, answers in their
  // place (a measured service has backends, so any is a fault), FIB misses.
  for (const [k, v] of Object.entries(g)) if (k.startsWith('drop_') || k.startsWith('reject_') || k === 'fib_miss') drops[`sluice.${k}`] = Number(v);
  const newFlows = ids === undefined ? NaN : Number(dp.serviceStats(ids.serviceId).newConnections);
  return { rxPackets: Number(g.rx_packets), forwarded: Number(g.forwarded), backendPackets, newFlows, untracked: Number(g.ct_untracked), drops };
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
      newFlows: sluiceAfter.newFlows - sluiceBefore.newFlows,
      untracked: sluiceAfter.untracked - sluiceBefore.untracked,
    };
    Object.assign(sample.dropsAt, delta(sluiceAfter.drops, sluiceBefore.drops));
  }
  return sample;
}
