/**
 * How big a service's Maglev table is. Sizes come from a fixed ladder of
 * primes so that a table only changes size when the backend count crosses a
 * step: while the size stays the same, Maglev's minimal disruption holds as
 * backends come and go (a size change reshuffles every slot).
 */

/** The largest table the dataplane accepts (SLUICE_MAGLEV_MAX in bpf/include/sluice_shared.h). */
export const MAGLEV_MAX_SIZE = 131071;

/** Table sizes the control plane picks from, ascending; each is prime, roughly doubling. */
export const MAGLEV_SIZE_LADDER: readonly number[] = Object.freeze([
  1021, 2039, 4093, 8191, 16381, 32749, 65521, MAGLEV_MAX_SIZE,
]);

/**
 * Slots per backend the default size provides at least: with that many, the
 * busiest backend owns at most about 1% more slots than the average.
 */
export const MAGLEV_SLOTS_PER_BACKEND = 100;

/**
 * The table size for a service with `backendCount` backends: the smallest
 * ladder step ≥ 100 × backendCount.
 * @throws RangeError when `backendCount` is not a non-negative integer, or
 *   when 100 × backendCount exceeds MAGLEV_MAX_SIZE (more than 1310 backends).
 */
export function defaultTableSize(backendCount: number): number {
  if (!Number.isSafeInteger(backendCount) || backendCount < 0) {
    throw new RangeError(
      `defaultTableSize: backendCount is ${backendCount}, want a non-negative integer`,
    );
  }
  const want = backendCount * MAGLEV_SLOTS_PER_BACKEND;
  for (const size of MAGLEV_SIZE_LADDER) {
    if (size >= want) return size;
  }
  throw new RangeError(
    `defaultTableSize: ${backendCount} backends need ${want} slots, ` +
      `more than the largest table (${MAGLEV_MAX_SIZE})`,
  );
}
