/**
 * The control plane's copy of the `reply_nat` map (what the kernel holds,
 * and what it should hold): backend endpoint code (codec's endpointCode) →
 * backend id, in an open-addressing hash table of two typed arrays instead
 * of a Map.
 *
 * The load balancer keeps two such copies, desired and current, with an
 * entry per backend endpoint (100,000 at 10,000 services × 10 backends). A
 * Map would hold a heap number per key (the codes exceed 2^31) and a hash
 * table that every major GC traces; typed arrays are 12 bytes a slot, and
 * the GC does not look inside them.
 *
 * An IPv6 endpoint's key is a string (codec's EndpointKey); those sit in a
 * Map beside the arrays: a node has few of them next to its IPv4 ones.
 *
 * The interface is the part of Map that the reconciler and the load
 * balancer use. Keys are integers in 0..2^53 or strings; iteration is the
 * numbers in slot order, then the strings in insertion order.
 */
import type { EndpointKey } from '../dataplane/codec.js';

/** Slots are at most this full (linear probing stays short below it). */
const MAX_LOAD = 0.8;
const EMPTY = -1;

/** reply_nat's endpoint key → backend id (0: ambiguous), as rows. */
export class ReplyTable implements Iterable<[EndpointKey, number]> {
  /** Endpoint codes; EMPTY in free slots. */
  private codes: Float64Array;
  private ids: Uint32Array;
  private count = 0;
  /** IPv6 endpoints' keys → backend id. */
  private readonly strings = new Map<string, number>();

  constructor(capacity = 1024) {
    let n = 16;
    while (n * MAX_LOAD < capacity) n *= 2;
    this.codes = new Float64Array(n).fill(EMPTY);
    this.ids = new Uint32Array(n);
  }

  /** A table holding `entries`. */
  static from(entries: Iterable<readonly [EndpointKey, number]> & { size?: number }): ReplyTable {
    const t = new ReplyTable(entries.size ?? 1024);
    for (const [k, v] of entries) t.set(k, v);
    return t;
  }

  get size(): number {
    return this.count + this.strings.size;
  }

  has(code: EndpointKey): boolean {
    if (typeof code === 'string') return this.strings.has(code);
    return this.slotOf(code) >= 0;
  }

  get(code: EndpointKey): number | undefined {
    if (typeof code === 'string') return this.strings.get(code);
    const i = this.slotOf(code);
    return i < 0 ? undefined : this.ids[i];
  }

  set(code: EndpointKey, backendId: number): this {
    if (!Number.isInteger(backendId) || backendId < 0 || backendId > 0xffffffff) throw new RangeError(`not a backend id: ${backendId}`);
    if (typeof code === 'string') {
      if (code === '') throw new RangeError('not an endpoint key: ""');
      this.strings.set(code, backendId);
      return this;
    }
    if (!Number.isSafeInteger(code) || code < 0) throw new RangeError(`not an endpoint code: ${code}`);
    if ((this.count + 1) > this.codes.length * MAX_LOAD) this.resize(this.codes.length * 2);
    const mask = this.codes.length - 1;
    for (let i = hash(code) & mask; ; i = (i + 1) & mask) {
      const k = this.codes[i]!;
      if (k === code) {
        this.ids[i] = backendId;
        return this;
      }
      if (k === EMPTY) {
        this.codes[i] = code;
        this.ids[i] = backendId;
        this.count++;
        return this;
      }
    }
  }

  delete(code: EndpointKey): boolean {
    if (typeof code === 'string') return this.strings.delete(code);
    let i = this.slotOf(code);
    if (i < 0) return false;
    // Backward-shift deletion: move later entries of the probe run into the
    // hole, so that lookups need no tombstones.
    const codes = this.codes;
    const mask = codes.length - 1;
    for (let j = (i + 1) & mask; codes[j] !== EMPTY; j = (j + 1) & mask) {
      const home = hash(codes[j]!) & mask;
      // Entry j may fill the hole at i if its home slot is not within (i, j].
      if (((j - home) & mask) >= ((j - i) & mask)) {
        codes[i] = codes[j]!;
        this.ids[i] = this.ids[j]!;
        i = j;
      }
    }
    codes[i] = EMPTY;
    this.count--;
    return true;
  }

  /** Codes in slot order, then string keys. */
  *keys(): IterableIterator<EndpointKey> {
    const codes = this.codes;
    for (let i = 0; i < codes.length; i++) if (codes[i] !== EMPTY) yield codes[i]!;
    yield* this.strings.keys();
  }

  *values(): IterableIterator<number> {
    const codes = this.codes;
    for (let i = 0; i < codes.length; i++) if (codes[i] !== EMPTY) yield this.ids[i]!;
    yield* this.strings.values();
  }

  *entries(): IterableIterator<[EndpointKey, number]> {
    const codes = this.codes;
    for (let i = 0; i < codes.length; i++) if (codes[i] !== EMPTY) yield [codes[i]!, this.ids[i]!];
    yield* this.strings.entries();
  }

  [Symbol.iterator](): IterableIterator<[EndpointKey, number]> {
    return this.entries();
  }

  private slotOf(code: number): number {
    if (code === EMPTY) return -1;
    const codes = this.codes;
    const mask = codes.length - 1;
    for (let i = hash(code) & mask; ; i = (i + 1) & mask) {
      const k = codes[i]!;
      if (k === code) return i;
      if (k === EMPTY) return -1;
    }
  }

  private resize(n: number): void {
    const oldCodes = this.codes;
    const oldIds = this.ids;
    this.codes = new Float64Array(n).fill(EMPTY);
    this.ids = new Uint32Array(n);
    this.count = 0;
    for (let i = 0; i < oldCodes.length; i++) if (oldCodes[i] !== EMPTY) this.set(oldCodes[i]!, oldIds[i]!);
  }
}

/** A 32-bit mix of a code's high and low words (murmur3's finaliser). */
function hash(code: number): number {
  const hi = Math.floor(code / 0x100000000);
  let h = (code >>> 0) ^ Math.imul(hi, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
