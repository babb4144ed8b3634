/**
 * Small figures the stages share: percentiles of latencies, medians of runs,
 * rounding and number formatting for tables.
 */

/** Latencies of one run. */
export interface Latencies {
  /** Milliseconds, sorted. */
  ms: number[];
  p50: number;
  p99: number;
  max: number;
}

/** The p-th percentile (nearest rank) of sorted values. */
export function pct(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function latencies(ms: readonly number[]): Latencies {
  const sorted = [...ms].sort((a, b) => a - b);
  return { ms: sorted, p50: pct(sorted, 50), p99: pct(sorted, 99), max: sorted[sorted.length - 1] ?? NaN };
}

/** The median (the lower middle one of an even count). */
export function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? NaN;
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export const fmtN = (n: number): string => n.toLocaleString('en-US');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
