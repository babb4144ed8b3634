/**
 * Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
 * Software Network Load Balancer", NSDI 2016, section 3.4): the lookup table
 * that maps each of a service's `size` slots to a backend. The dataplane picks
 * slot = flow hash mod size (bpf/include/lb.h, pick_maglev).
 *
 * This module holds the table population (maglevPopulate, its weighted
 * variant, buildMaglevTable) and re-exports the helpers the table builder
 * uses: primes.ts, table-size.ts and backend-hash.ts.
 */

import { isPrime } from '../model/primes.js';
import { MAGLEV_MAX_SIZE } from '../model/table-size.js';

export { OFFSET_SEED, SKIP_SEED, backendPermutation, murmur3x86_32 } from './backend-hash.js';
import { permutationInto } from './backend-hash.js';
export { isPrime, nextPrime } from '../model/primes.js';
export {
  MAGLEV_MAX_SIZE,
  MAGLEV_SIZE_LADDER,
  MAGLEV_SLOTS_PER_BACKEND,
  defaultTableSize,
} from '../model/table-size.js';

/**
 * One backend's row of Maglev's permutation table: its preferences are
 * permutation[j] = (offset + j × skip) mod size, for j = 0, 1, …
 */
export interface Permutation {
  /** The first slot the backend prefers, in [0, size). */
  readonly offset: number;
  /** The distance between successive preferences, in [1, size), coprime with size. */
  readonly skip: number;
}

/** A backend as the table builder sees it. */
export interface MaglevBackend {
  /** What the table stores for the backend's slots: its key in the `backends` map (a uint32). */
  readonly id: number;
  /**
   * The stable name the permutation is derived from, e.g. "10.0.0.1:8080"; unique in
   * the service. The same backend must have the same identity on every node.
   */
  readonly identity: string;
  /** Relative share of the slots, a non-negative integer; 0 takes no slots. */
  readonly weight: number;
}

/** Largest weight accepted: a uint32, so credits (< 2 × max weight) stay exact in a double. */
const MAX_WEIGHT = 0xffffffff;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Largest table the fill handles: a slot plus a skip must stay an int32 (see fill). */
const MAX_FILL_SIZE = 2 ** 30;

function checkSize(size: number, caller: string): void {
  if (!Number.isSafeInteger(size) || size < 2 || size > MAX_FILL_SIZE) {
    // A 1-slot table has no valid skip in [1, size).
    throw new RangeError(`${caller}: size is ${size}, want an integer in 2..${MAX_FILL_SIZE} (a prime)`);
  }
}

/** Validates `perms` against `size` and splits them into typed arrays. */
function unpackPerms(
  perms: readonly Permutation[],
  size: number,
  caller: string,
): { offsets: Int32Array; skips: Int32Array } {
  if (perms.length === 0) {
    throw new RangeError(`${caller}: perms is empty, want at least one backend`);
  }
  const offsets = new Int32Array(perms.length);
  const skips = new Int32Array(perms.length);
  perms.forEach(({ offset, skip }, i) => {
    if (!Number.isInteger(offset) || offset < 0 || offset >= size) {
      throw new RangeError(
        `${caller}: perms[${i}].offset is ${offset}, want an integer in [0, ${size})`,
      );
    }
    if (!Number.isInteger(skip) || skip < 1 || skip >= size) {
      throw new RangeError(
        `${caller}: perms[${i}].skip is ${skip}, want an integer in [1, ${size})`,
      );
    }
    if (gcd(size, skip) !== 1) {
      // The permutation would cycle through only size / gcd slots; with a prime size
      // this cannot happen.
      throw new RangeError(
        `${caller}: perms[${i}].skip ${skip} shares a factor with size ${size}, ` +
          'so the backend would not visit every slot; use a prime size',
      );
    }
    offsets[i] = offset;
    skips[i] = skip;
  });
  return { offsets, skips };
}

/** Validates `weights` (one per backend) and copies them into a typed array. */
function unpackWeights(weights: readonly number[], count: number, caller: string): Uint32Array {
  if (weights.length !== count) {
    throw new RangeError(
      `${caller}: ${weights.length} weights for ${count} backends, want one weight per backend`,
    );
  }
  const out = new Uint32Array(count);
  weights.forEach((w, i) => {
    if (!Number.isInteger(w) || w < 0 || w > MAX_WEIGHT) {
      throw new RangeError(
        `${caller}: weights[${i}] is ${w}, want an integer in [0, ${MAX_WEIGHT}]`,
      );
    }
    out[i] = w;
  });
  return out;
}

/**
 * Pseudocode 1 of the paper, with weights. Backends take turns in index
 * order; on each turn backend i earns weights[i] / maxWeight of a slot
 * (kept as an integer credit against maxWeight, so it is exact) and, for
 * every whole slot earned, claims its next preferred slot that is still
 * empty. With equal weights every backend takes exactly one slot per turn:
 * the paper's loop. Stops the moment the last slot is filled.
 *
 * next[i] holds the slot backend i prefers next, permutation[i][next_j] in
 * the paper's terms, advanced by skip mod size instead of recomputed.
 *
 * Requires maxWeight > 0 and full permutations (skip coprime with size), so
 * each pass fills at least one slot and each claim finds an empty one.
 */
function fill(
  offsets: Int32Array,
  skips: Int32Array,
  weights: Uint32Array,
  maxWeight: number,
  size: number,
  entry: Int32Array = new Int32Array(size),
): Int32Array {
  const n = offsets.length;
  entry.fill(-1, 0, size);
  // The probe loop is most of a table's cost (about 4 probes per slot at
  // 100 slots a backend), so it is kept tight:
  // - slots and skips are Int32Arrays and the arithmetic stays int32 (`| 0`):
  //   read from a Uint32Array, V8 cannot rule out values above 2^31 and
  //   computes the probe sequence in doubles;
  // - the wrap past the end is branch-free (wrap()): whether a step wraps is
  //   random, so a branch there is mispredicted about skip/size of the time;
  // - equal weights (the common case) skip the credit arithmetic.
  // Together, the fill of a 1,021-slot table of 10 equal backends went from
  // 29-35 to 21-23 µs here (bench: maglevFill over 10,000 such tables).
  const next = offsets.slice();
  let filled = 0;
  if (minOf(weights) === maxWeight) {
    // Equal weights: one slot a turn each, the paper's loop as it stands.
    for (;;) {
      for (let i = 0; i < n; i++) {
        let slot = next[i]! | 0;
        while (entry[slot]! >= 0) slot = wrap((slot + skips[i]!) | 0, size);
        entry[slot] = i;
        if (++filled === size) return entry;
        next[i] = wrap((slot + skips[i]!) | 0, size);
      }
    }
  }
  const credit = new Float64Array(n);
  for (;;) {
    for (let i = 0; i < n; i++) {
      // Indexing typed arrays within bounds: the `!`s only silence noUncheckedIndexedAccess.
      let c = credit[i]! + weights[i]!;
      if (c >= maxWeight) {
        const skip = skips[i]! | 0;
        let slot = next[i]! | 0;
        do {
          c -= maxWeight;
          while (entry[slot]! >= 0) slot = wrap((slot + skip) | 0, size);
          entry[slot] = i;
          if (++filled === size) return entry;
          slot = wrap((slot + skip) | 0, size);
        } while (c >= maxWeight);
        next[i] = slot;
      }
      credit[i] = c;
    }
  }
}

/**
 * `slot` mod `size` for a slot in [0, 2 × size), without a branch: the sign
 * of size − 1 − slot is the mask of the subtraction. Needs 2 × size ≤ 2^31.
 */
function wrap(slot: number, size: number): number {
  return (slot - (size & ((size - 1 - slot) >> 31))) | 0;
}

function minOf(weights: Uint32Array): number {
  let min = Infinity;
  for (const w of weights) if (w < min) min = w;
  return min;
}

function maxOf(weights: Uint32Array): number {
  let max = 0;
  for (const w of weights) if (w > max) max = w;
  return max;
}

/**
 * The Maglev lookup table for backends with the given permutations: entry[slot]
 * is the index in `perms` of the backend owning that slot. Exactly the paper's
 * Pseudocode 1: backends take turns, each claiming its next preferred empty
 * slot, until every slot is filled.
 * @param perms one permutation per backend; at least one (callers handle a
 *   service without backends themselves).
 * @param size the number of slots, ≥ 2; every skip must be coprime with it
 *   (use a prime).
 * @throws RangeError when `size` or a permutation is out of range, or `perms` is empty.
 */
export function maglevPopulate(perms: readonly Permutation[], size: number): number[] {
  const caller = 'maglevPopulate';
  checkSize(size, caller);
  const { offsets, skips } = unpackPerms(perms, size, caller);
  return Array.from(fill(offsets, skips, new Uint32Array(perms.length).fill(1), 1, size));
}

/**
 * Weighted Maglev: like maglevPopulate, but on each round backend i earns
 * weights[i] / max(weights) of a slot and claims a slot for every whole one
 * earned, so its share of the table is proportional to its weight. Backends
 * with weight 0 take no slots. With all weights equal (and non-zero) the
 * result equals maglevPopulate's.
 * @param weights one non-negative integer (≤ 2^32 − 1) per backend.
 * @returns entry[slot] = index in `perms` of the slot's backend; [] when every
 *   weight is 0 (no backend is usable).
 * @throws RangeError on a bad size, permutation or weight, empty `perms`, or
 *   a weights array of another length.
 */
export function maglevPopulateWeighted(
  perms: readonly Permutation[],
  weights: readonly number[],
  size: number,
): number[] {
  const caller = 'maglevPopulateWeighted';
  checkSize(size, caller);
  const { offsets, skips } = unpackPerms(perms, size, caller);
  const w = unpackWeights(weights, perms.length, caller);
  const maxWeight = maxOf(w);
  if (maxWeight === 0) return [];
  return Array.from(fill(offsets, skips, w, maxWeight, size));
}

/**
 * The table the dataplane loads for one service: slot → backend id. Backends
 * are ordered by identity (UTF-16 code-unit order, not locale order) before
 * the table is filled, and each permutation comes from backendPermutation, so
 * every node builds the same table from the same set of backends, in any input
 * order. Weights work as in maglevPopulateWeighted.
 * @param size a prime ≤ MAGLEV_MAX_SIZE, usually defaultTableSize(backends.length).
 * @returns `size` backend ids, or an empty array when no backend has weight > 0
 *   (including when there are no backends).
 * @throws RangeError when two backends share an identity or an id, when an id
 *   is not a uint32 or an identity is empty, on a bad weight, or when `size`
 *   is not a prime ≤ MAGLEV_MAX_SIZE.
 */
export function buildMaglevTable(backends: readonly MaglevBackend[], size: number): Uint32Array {
  const order = maglevOrder(backends, size);
  if (order.maxWeight === 0) return new Uint32Array(0);
  if (scratch.length < size) scratch = new Int32Array(size);
  const entry = fillInto(order.identities, order.weights, size, scratch);
  const table = new Uint32Array(size);
  for (let slot = 0; slot < size; slot++) table[slot] = order.ids[entry[slot]!]!;
  return table;
}

/**
 * The slot array buildMaglevTable fills, reused from one call to the next
 * (grown as needed, at most MAGLEV_MAX_SIZE slots): a fresh one per table
 * is off-heap garbage of 4 bytes a slot, 40 MB for 10,000 services, that
 * lingers in the allocator until the GC gets to it.
 */
let scratch = new Int32Array(0);

/** Backends in the order the Maglev fill takes them (by identity), validated. */
export interface MaglevOrder {
  identities: string[];
  ids: Uint32Array;
  weights: Uint32Array;
  maxWeight: number;
}

/**
 * Validate backends and sort them by identity (the first half of
 * buildMaglevTable; see there for what is refused).
 */
export function maglevOrder(backends: readonly MaglevBackend[], size: number): MaglevOrder {
  const caller = 'buildMaglevTable';
  if (!isPrime(size) || size > MAGLEV_MAX_SIZE) {
    throw new RangeError(`${caller}: size is ${size}, want a prime ≤ ${MAGLEV_MAX_SIZE}`);
  }
  // Runs for every service of a bulk load: one sorted copy and three
  // arrays, written in one pass, rather than a chain of map()s and a Set;
  // a few backends are sorted in place (Array.prototype.sort allocates a
  // work array of its own).
  const sorted = backends.slice();
  const n = sorted.length;
  if (n <= SMALL) insertionSort(sorted);
  else sorted.sort(byIdentity);
  const identities = new Array<string>(n);
  const ids = new Uint32Array(n);
  const weights = new Uint32Array(n);
  let maxWeight = 0;
  for (let i = 0; i < n; i++) {
    const b = sorted[i]!;
    if (typeof b.identity !== 'string' || b.identity.length === 0) {
      throw new RangeError(`${caller}: backend id ${b.id} has an empty identity`);
    }
    if (i > 0 && identities[i - 1] === b.identity) {
      throw new RangeError(`${caller}: backends ${sorted[i - 1]!.id} and ${b.id} share identity "${b.identity}"`);
    }
    if (!Number.isInteger(b.id) || b.id < 0 || b.id > 0xffffffff) {
      throw new RangeError(`${caller}: backend "${b.identity}" has id ${b.id}, want a uint32`);
    }
    const w = b.weight;
    if (!Number.isInteger(w) || w < 0 || w > MAX_WEIGHT) {
      throw new RangeError(`${caller}: weights[${i}] is ${w}, want an integer in [0, ${MAX_WEIGHT}]`);
    }
    identities[i] = b.identity;
    ids[i] = b.id;
    weights[i] = w;
    if (w > maxWeight) maxWeight = w;
  }
  if (n <= SMALL) {
    for (let i = 1; i < n; i++) {
      for (let j = 0; j < i; j++) if (ids[i] === ids[j]) throw new RangeError(`${caller}: two backends have id ${ids[i]}`);
    }
  } else {
    const byId = ids.slice().sort();
    for (let i = 1; i < n; i++) {
      if (byId[i] === byId[i - 1]) throw new RangeError(`${caller}: two backends have id ${byId[i]}`);
    }
  }
  return { identities, ids, weights, maxWeight };
}

/** Up to this many backends, maglevOrder sorts and checks ids with plain loops. */
const SMALL = 32;

function insertionSort(a: MaglevBackend[]): void {
  for (let i = 1; i < a.length; i++) {
    const x = a[i]!;
    let j = i - 1;
    while (j >= 0 && byIdentity(a[j]!, x) > 0) {
      a[j + 1] = a[j]!;
      j--;
    }
    a[j + 1] = x;
  }
}

/** UTF-16 code-unit order of identities (not locale order). */
function byIdentity(a: MaglevBackend, b: MaglevBackend): number {
  return a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : 0;
}

/**
 * The heavy half of buildMaglevTable: each backend's permutation and the
 * fill, giving the index (into `identities`) of the backend of every slot.
 * Pure and self-contained, so a worker thread can run it. `size` must be
 * prime and some weight positive.
 */
export function maglevFill(identities: readonly string[], weights: Uint32Array, size: number): Int32Array {
  return fillInto(identities, weights, size, new Int32Array(size));
}

/** maglevFill into the first `size` slots of `entry` (returned). */
function fillInto(identities: readonly string[], weights: Uint32Array, size: number, entry: Int32Array): Int32Array {
  // size is prime, so every skip in [1, size) visits every slot.
  const offsets = new Int32Array(identities.length);
  const skips = new Int32Array(identities.length);
  for (let i = 0; i < identities.length; i++) permutationInto(identities[i]!, size, offsets, skips, i);
  return fill(offsets, skips, weights, maxOf(weights), size, entry);
}

/** Backend ids per slot from a fill's indices. */
export function tableFromEntry(order: MaglevOrder, entry: Int32Array): Uint32Array {
  const table = new Uint32Array(entry.length);
  for (let slot = 0; slot < entry.length; slot++) table[slot] = order.ids[entry[slot]!]!;
  return table;
}
