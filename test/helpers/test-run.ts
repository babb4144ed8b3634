/**
 * One frame through a program of the real dataplane (BPF_PROG_TEST_RUN),
 * with the global counters it moved: the packet tables' way of sending.
 */
import type { GlobalCounter } from '../../src/dataplane/codec.js';
import type { NativeDataplane } from '../../src/dataplane/native-dataplane.js';

/** Global counters that moved, by how much (those that did not are absent). */
export type Delta = Partial<Record<GlobalCounter, number>>;

export function sendCounted(dp: NativeDataplane, prog: 'xdp' | 'tc', frame: Buffer): { verdict: number; out: Buffer; global: Delta } {
  const before = dp.globalStats();
  const r = dp.raw.testRun(prog, frame);
  const after = dp.globalStats();
  const global: Delta = {};
  for (const k of Object.keys(after) as GlobalCounter[]) {
    const d = Number(after[k] - before[k]);
    if (d !== 0) global[k] = d;
  }
  return { verdict: r.retval, out: r.data, global };
}
