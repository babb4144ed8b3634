/**
 * Where a backend's Maglev permutation comes from.
 *
 * WIRE CONTRACT: every load balancer node, and every version of sluice, must
 * derive the same (offset, skip) from the same backend identity, or nodes
 * would send the same flow to different backends. Changing anything here —
 * the hash, its seeds, the UTF-8 encoding, the formulas — reshuffles every
 * service on upgrade. The golden values in test/unit/maglev.test.ts pin it.
 *
 *   bytes  = UTF-8 encoding of the identity string (lone surrogates become U+FFFD)
 *   offset = murmur3_x86_32(bytes, OFFSET_SEED) mod size
 *   skip   = murmur3_x86_32(bytes, SKIP_SEED) mod (size − 1) + 1
 *
 * murmur3_x86_32 is Austin Appleby's MurmurHash3_x86_32 (public domain),
 * reading 4-byte blocks little-endian, so other implementations (C in the
 * addon, Go in a test tool) can reproduce it from the published algorithm.
 */

import type { Permutation } from './maglev.js';
import { isPrime } from '../model/primes.js';

/** Seed of the hash that gives a backend's offset: ASCII "OFFS". Part of the wire contract. */
export const OFFSET_SEED = 0x4f464653;
/** Seed of the hash that gives a backend's skip: ASCII "SKIP". Part of the wire contract. */
export const SKIP_SEED = 0x534b4950;

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

const utf8 = new TextEncoder();

/** One block (or the tail) scrambled before it is folded into the state. */
function scramble(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

/**
 * MurmurHash3_x86_32 of `bytes` with `seed` (a uint32), as an unsigned 32-bit
 * integer. Matches the reference implementation's published test vectors.
 */
export function murmur3x86_32(bytes: Uint8Array, seed: number): number {
  return murmurPrefix(bytes, bytes.length, seed);
}

/** murmur3x86_32 of the first `len` bytes of `bytes` (no subarray view to allocate). */
function murmurPrefix(bytes: Uint8Array, len: number, seed: number): number {
  const blocksEnd = len & ~3;
  let h = seed | 0;
  for (let i = 0; i < blocksEnd; i += 4) {
    const k =
      bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    h ^= scramble(k);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const rest = len & 3;
  if (rest > 0) {
    let k = 0;
    if (rest === 3) k ^= bytes[blocksEnd + 2]! << 16;
    if (rest >= 2) k ^= bytes[blocksEnd + 1]! << 8;
    k ^= bytes[blocksEnd]!;
    h ^= scramble(k);
  }
  h ^= len;
  // fmix32: the finalizer that makes every input bit affect every output bit.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The permutation of the backend named `identity` (e.g. "10.0.0.1:8080") in
 * a table of `size` slots; see the wire contract at the top of this file.
 * @throws RangeError when `size` is not a prime, or `identity` is empty.
 */
export function backendPermutation(identity: string, size: number): Permutation {
  if (!isPrime(size)) {
    throw new RangeError(`backendPermutation: size is ${size}, want a prime`);
  }
  if (identity.length === 0) {
    throw new RangeError('backendPermutation: identity is empty');
  }
  const bytes = identityBytes(identity);
  return {
    offset: murmur3x86_32(bytes, OFFSET_SEED) % size,
    skip: (murmur3x86_32(bytes, SKIP_SEED) % (size - 1)) + 1,
  };
}

/** Scratch space for identities, so that hashing one allocates nothing. */
const scratch = new Uint8Array(256);

/** The UTF-8 bytes of an identity; a view of `scratch` valid until the next call. */
function identityBytes(identity: string): Uint8Array {
  if (identity.length * 3 > scratch.length) return utf8.encode(identity);
  return scratch.subarray(0, identityLength(identity));
}

/** Encode an identity into `scratch` (it must fit: ≤ 85 UTF-16 units) and give its UTF-8 length. */
function identityLength(identity: string): number {
  return utf8.encodeInto(identity, scratch).written;
}

/**
 * backendPermutation for a size the caller already knows to be prime and a
 * non-empty identity: writes offset and skip into `out` at `i`. Both are
 * below the size (at most MAGLEV_MAX_SIZE), so they fit an Int32Array.
 */
export function permutationInto(identity: string, size: number, offsets: Int32Array, skips: Int32Array, i: number): void {
  let bytes = scratch;
  let len: number;
  if (identity.length * 3 > scratch.length) {
    bytes = utf8.encode(identity);
    len = bytes.length;
  } else {
    len = identityLength(identity);
  }
  offsets[i] = murmurPrefix(bytes, len, OFFSET_SEED) % size;
  skips[i] = (murmurPrefix(bytes, len, SKIP_SEED) % (size - 1)) + 1;
}
