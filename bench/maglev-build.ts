/**
 * How long buildMaglevTable takes for a 65,537-slot table with 10, 100 and
 * 1000 backends: median of 20 runs after warm-up. The baseline, measured in
 * the same run, is Pseudocode 1 written plainly (number[] arrays, each
 * preference recomputed as (offset + j × skip) mod size) over the same
 * permutations. Then the table's quality at that size: imbalance (most
 * slots of one backend ÷ the mean) and the fraction of slots (flows) that
 * move when one backend is removed or added, next to the ideal (1/N of the
 * slots for a removal, 1/(N+1) for an addition). Not run by CI:
 * `npx tsx bench/maglev-build.ts`.
 */

import { performance } from 'node:perf_hooks';

import {
  backendPermutation,
  buildMaglevTable,
  type MaglevBackend,
  type Permutation,
} from '../src/maglev/maglev.js';

const SIZE = 65537;
const RUNS = 20;
const WARMUP = 5;

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

const rows: string[][] = [['backends', 'slots', 'buildMaglevTable ms', 'baseline ms', 'baseline / build']];
for (const n of [10, 100, 1000]) {
  const backends: MaglevBackend[] = Array.from({ length: n }, (_, i) => ({
    id: i,
    identity: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}:8080`,
    weight: 1,
  }));
  const perms = [...backends]
    .sort((a, b) => (a.identity < b.identity ? -1 : 1))
    .map((b) => backendPermutation(b.identity, SIZE));
  const build = median(() => buildMaglevTable(backends, SIZE));
  const base = median(() => plainPseudocode1(perms, SIZE));
  rows.push([String(n), String(SIZE), build.toFixed(2), base.toFixed(2), `${(base / build).toFixed(2)}×`]);
}

function print(table: string[][]): void {
  const widths = table[0]!.map((_, col) => Math.max(...table.map((r) => r[col]!.length)));
  for (const r of table) console.log(r.map((cell, col) => cell.padStart(widths[col]!)).join('  '));
}
print(rows);

function changed(a: Uint32Array, b: Uint32Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n / a.length;
}

const quality: string[][] = [[
  'backends', 'slots', 'max/mean', 'removed: moved', 'ideal', 'ratio', 'added: moved', 'ideal', 'ratio',
]];
for (const n of [10, 100, 1000]) {
  const backends: MaglevBackend[] = Array.from({ length: n + 1 }, (_, i) => ({
    id: i,
    identity: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}:8080`,
    weight: 1,
  }));
  const base = buildMaglevTable(backends.slice(0, n), SIZE);
  const counts = new Map<number, number>();
  for (const id of base) counts.set(id, (counts.get(id) ?? 0) + 1);
  const imbalance = Math.max(...counts.values()) / (SIZE / n);
  const removed = changed(base, buildMaglevTable(backends.slice(1, n), SIZE));
  const added = changed(base, buildMaglevTable(backends, SIZE));
  quality.push([
    String(n), String(SIZE), imbalance.toFixed(4),
    `${(100 * removed).toFixed(2)}%`, `${(100 / n).toFixed(2)}%`, `${(removed * n).toFixed(2)}×`,
    `${(100 * added).toFixed(2)}%`, `${(100 / (n + 1)).toFixed(2)}%`, `${(added * (n + 1)).toFixed(2)}×`,
  ]);
}
console.log('');
print(quality);
