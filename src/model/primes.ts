/**
 * Primality helpers for Maglev table sizes. Maglev needs a prime table size
 * so that every skip in [1, size) is coprime with it and each backend's
 * permutation visits every slot.
 */

/** True when `n` is a prime safe integer; false for anything else (non-integers, n < 2). */
export function isPrime(n: number): boolean {
  if (!Number.isSafeInteger(n) || n < 2) return false;
  if (n < 4) return true;
  if (n % 2 === 0 || n % 3 === 0) return false;
  // Every prime above 3 is 6k ± 1.
  for (let d = 5; d * d <= n; d += 6) {
    if (n % d === 0 || n % (d + 2) === 0) return false;
  }
  return true;
}

/**
 * The smallest prime ≥ `n`. `n` must be a safe integer; anything below 2 gives 2.
 * @throws RangeError when `n` is not a safe integer.
 */
export function nextPrime(n: number): number {
  if (!Number.isSafeInteger(n)) {
    throw new RangeError(`nextPrime: n is ${n}, want a safe integer`);
  }
  let p = Math.max(n, 2);
  while (!isPrime(p)) p++;
  return p;
}
