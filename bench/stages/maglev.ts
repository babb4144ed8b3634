/**
 * Stage "maglev": how long buildMaglevTable takes for a 65,537-slot table
 * with 10, 100 and 1000 backends: median of 20 runs after warm-up. The
 * baseline, measured in the same run, is Pseudocode 1 written plainly
 * (number[] arrays, each preference recomputed as (offset + j × skip) mod
 * size) over the same permutations. Then the table's quality at that size:
 * imbalance (most slots of one backend ÷ the mean) and the fraction of slots
 * (flows) that move when one backend is removed or added, next to the ideal
 * (1/N of the slots for a removal, 1/(N+1) for an addition).
 * `npx tsx bench/maglev-build.ts` runs it alone and prints its tables.
 */

import { performance } from 'node:perf_hooks';

import {
  backendPermutation,
  buildMaglevTable,
  type MaglevBackend,
  type Permutation,
} from '../../src/maglev/maglev.js';
import { formatNumber, formatRatio } from '../lib/report.js';
import type { Chart, Stage, StageContext, StageResult, Target } from '../lib/types.js';

const SIZE = 65537;
const RUNS = 20;
const WARMUP = 5;
const BACKENDS = [10, 100, 1000];
/** The target: 100 backends, 65,537 slots. */
const TARGET_BACKENDS = 100;
const TARGET_MS = 5;
const TITLE = 'Maglev table build and quality';

function plainPseudocode1(perms: readonly Permutation[], size: number): number[] {
  const next = perms.map(() => 0);
  const entry: number[] = new Array<number>(size).fill(-1);
  let n = 0;
  for (;;) {
    for (let i = 0; i < perms.length; i++) {
      const { offset, skip } = perms[i]!;
      let c = (offset + next[i]! * skip) % size;
      while (entry[c]! >= 0) {
        next[i]!++;
        c = (offset + next[i]! * skip) % size;
      }
      entry[c] = i;
      next[i]!++;
      if (++n === size) return entry;
    }
  }
}

function median(fn: () => unknown): number {
  for (let i = 0; i < WARMUP; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    fn();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return (times[RUNS / 2 - 1]! + times[RUNS / 2]!) / 2;
}

function changed(a: Uint32Array, b: Uint32Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n / a.length;
}

function backendsOf(n: number): MaglevBackend[] {
  return Array.from({ length: n }, (_, i) => ({
    id: i,
    identity: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}:8080`,
    weight: 1,
  }));
}

interface BuildRow {
  backends: number;
  buildMs: number;
  baselineMs: number;
}

interface QualityRow {
  backends: number;
  /** Most slots of one backend ÷ the mean. */
  imbalance: number;
  /** Fraction of slots that changed when the first backend was removed, and its ideal 1/N. */
  removed: number;
  removedIdeal: number;
  /** Fraction of slots that changed when backend N+1 was added, and its ideal 1/(N+1). */
  added: number;
  addedIdeal: number;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Measure (the same counts quick or not: the whole stage takes about 2 s). */
export async function measureMaglev(ctx: Pick<StageContext, 'progress' | 'log'>): Promise<StageResult> {
  const t0 = performance.now();
  const steps = 2 * BACKENDS.length;
  let step = 0;

  const build: BuildRow[] = [];
  for (const n of BACKENDS) {
    ctx.progress(step++, steps, `build, ${n} backends`);
    await tick();
    const backends = backendsOf(n);
    const perms = [...backends]
      .sort((a, b) => (a.identity < b.identity ? -1 : 1))
      .map((b) => backendPermutation(b.identity, SIZE));
    const buildMs = median(() => buildMaglevTable(backends, SIZE));
    const baselineMs = median(() => plainPseudocode1(perms, SIZE));
    build.push({ backends: n, buildMs, baselineMs });
  }

  const quality: QualityRow[] = [];
  for (const n of BACKENDS) {
    ctx.progress(step++, steps, `quality, ${n} backends`);
    await tick();
    const backends = backendsOf(n + 1);
    const base = buildMaglevTable(backends.slice(0, n), SIZE);
    const counts = new Map<number, number>();
    for (const id of base) counts.set(id, (counts.get(id) ?? 0) + 1);
    quality.push({
      backends: n,
      imbalance: Math.max(...counts.values()) / (SIZE / n),
      removed: changed(base, buildMaglevTable(backends.slice(1, n), SIZE)),
      removedIdeal: 1 / n,
      added: changed(base, buildMaglevTable(backends, SIZE)),
      addedIdeal: 1 / (n + 1),
    });
  }
  ctx.progress(steps, steps, 'done');

  const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;
  const at = build.find((r) => r.backends === TARGET_BACKENDS)!;
  const met = at.buildMs <= TARGET_MS;
  const targets: Target[] = [{
    what: `Maglev table build, ${SIZE.toLocaleString('en')} slots, ${TARGET_BACKENDS} backends`,
    target: `≤ ${TARGET_MS} ms`,
    measured: `${formatNumber(at.buildMs)} ms (median of ${RUNS})`,
    met,
    ...(met ? {} : { why: `${formatNumber(at.buildMs)} ms, over the ${TARGET_MS} ms target; the plain baseline takes ${formatNumber(at.baselineMs)} ms.` }),
  }];

  const charts: Chart[] = [
    {
      id: 'maglev-build',
      title: `Maglev table build, ${SIZE.toLocaleString('en')} slots (median of ${RUNS})`,
      unit: 'ms',
      bars: build.flatMap((r) => [
        { label: 'buildMaglevTable', value: r.buildMs, group: `${r.backends.toLocaleString('en')} backends` },
        { label: 'Pseudocode 1, plain (baseline)', value: r.baselineMs, group: `${r.backends.toLocaleString('en')} backends`, reference: true },
      ]),
    },
    {
      id: 'maglev-remap',
      title: 'Flows remapped when one backend is removed or added, against the ideal',
      unit: '% of flows (slots)',
      log: true,
      bars: quality.flatMap((r) => {
        const group = `${r.backends.toLocaleString('en')} backends`;
        return [
          { label: 'one removed', value: 100 * r.removed, group },
          { label: 'ideal for a removal, 1/N', value: 100 * r.removedIdeal, group, reference: true },
          { label: 'one added', value: 100 * r.added, group },
          { label: 'ideal for an addition, 1/(N+1)', value: 100 * r.addedIdeal, group, reference: true },
        ];
      }),
    },
  ];

  return {
    id: 'maglev',
    title: TITLE,
    method: [
      `How long \`buildMaglevTable\` (src/maglev/maglev.ts) takes to fill a ${SIZE.toLocaleString('en')}-slot table for ` +
        `${BACKENDS.map((n) => n.toLocaleString('en')).join(', ')} backends of weight 1: the median of ${RUNS} runs after ` +
        `${WARMUP} warm-up runs, in this process, on the main thread. The peer, measured in the same run, is the Maglev ` +
        'paper\'s Pseudocode 1 written plainly (number[] arrays, each preference recomputed as (offset + j × skip) mod size) ' +
        'over the same permutations, which are computed once, outside the timing; the ratio is sluice ÷ baseline.',
      'Then the table\'s quality at that size: imbalance, the most slots any backend holds ÷ the mean (1 is perfect), and the ' +
        'fraction of slots (so of flows) that change owner when the first backend is removed or an N+1th is added, next to ' +
        'the ideal: 1/N of the slots for a removal (only the removed backend\'s), 1/(N+1) for an addition. ' +
        'The counts are the same in quick and full runs.',
      'In `npm run bench` this stage runs in the same Node.js process as the stages before it, whose leftover heap and ' +
        'compiled code may slow it a little; `npx tsx bench/maglev-build.ts` measures it alone.',
    ],
    tables: [
      {
        title: `Build time, ${SIZE.toLocaleString('en')} slots (ms, median of ${RUNS})`,
        columns: ['backends', 'slots', 'buildMaglevTable', 'baseline', 'sluice ÷ baseline'],
        rows: build.map((r) => [r.backends, SIZE, r.buildMs, r.baselineMs, formatRatio(r.buildMs / r.baselineMs)]),
        notes: ['Below 1 ×: buildMaglevTable is faster than the plain baseline.'],
      },
      {
        title: 'Table quality: imbalance, and flows moved when one backend is removed or added',
        columns: ['backends', 'slots', 'max/mean', 'removed: moved', 'ideal', '÷ ideal', 'added: moved', 'ideal', '÷ ideal'],
        rows: quality.map((r) => [
          r.backends, SIZE, r.imbalance.toFixed(4),
          pct(r.removed), pct(r.removedIdeal), formatRatio(r.removed / r.removedIdeal),
          pct(r.added), pct(r.addedIdeal), formatRatio(r.added / r.addedIdeal),
        ]),
      },
    ],
    charts,
    targets,
    seconds: (performance.now() - t0) / 1000,
    raw: { size: SIZE, runs: RUNS, warmup: WARMUP, build, quality },
  };
}

export const maglevStage: Stage = {
  id: 'maglev',
  title: TITLE,
  quickBudgetSeconds: 15,
  run: (ctx) => measureMaglev(ctx),
};
