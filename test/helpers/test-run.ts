/**
 * One frame through a program of the real dataplane (BPF_PROG_TEST_RUN),
 * with the counters it moved: the packet tables' way of sending.
 */
import type { GlobalCounter, LbStats } from '../../src/dataplane/codec.js';
import type { NativeDataplane } from '../../src/dataplane/native-dataplane.js';

/** Global counters that moved, by how much (those that did not are absent). */
export type Delta = Partial<Record<GlobalCounter, number>>;

/** The global counters that moved between two readings. */
export function globalDelta(before: Record<GlobalCounter, bigint>, after: Record<GlobalCounter, bigint>): Delta {
  const out: Delta = {};
  for (const k of Object.keys(after) as GlobalCounter[]) {
    const d = Number(after[k] - before[k]);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/** How far a service's or backend's counters moved between two readings. */
export function statsDelta(before: LbStats, after: LbStats): Record<'packets' | 'bytes' | 'newConnections' | 'replyPackets', number> {
  return {
    packets: Number(after.packets - before.packets),
    bytes: Number(after.bytes - before.bytes),
    newConnections: Number(after.newConnections - before.newConnections),
    replyPackets: Number(after.replyPackets - before.replyPackets),
  };
}

/** `frame` through `prog` (in `opts`' namespace and ingress interface, if given), with the global counters it moved. */
export function sendCounted(dp: NativeDataplane, prog: 'xdp' | 'tc', frame: Buffer, opts?: { ingressIfindex: number; netnsPath: string }): { verdict: number; out: Buffer; global: Delta } {
  const before = dp.globalStats();
  const r = opts ? dp.raw.testRun(prog, frame, opts) : dp.raw.testRun(prog, frame);
  return { verdict: r.retval, out: r.data, global: globalDelta(before, dp.globalStats()) };
}
