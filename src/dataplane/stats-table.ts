/**
 * Every id's counters of one per-CPU stats map (svc_stats or
 * backend_stats), summed over CPUs by one batch read (Dataplane.allStats):
 * what a scrape needs for thousands of services, where a read per id would
 * be a syscall each.
 */
import { LAYOUTS, type LbStats } from './codec.js';

const L = LAYOUTS.lb_stats;
/** 32-bit words of one struct lb_stats. */
const WORDS = L.size / 4;
const TWO_32 = 4294967296;
/** Word offsets of the fields addTo sums. */
const P = L.offsets.packets / 4;
const B = L.offsets.bytes / 4;
const N = L.offsets.new_conns / 4;
const R = L.offsets.reply_packets / 4;

/** The counters of ids 0..size-1, as struct lb_stats in host byte order. */
export class StatsTable {
  readonly #w: Uint32Array;

  /** Over `bytes`: `size` structs lb_stats back to back (copied if not 4-byte aligned). */
  constructor(bytes: Uint8Array) {
    if (bytes.byteLength % L.size !== 0) throw new Error(`stats table of ${bytes.byteLength} bytes: not a whole number of struct lb_stats (${L.size} bytes)`);
    const aligned = bytes.byteOffset % 4 === 0 ? bytes : Uint8Array.from(bytes);
    this.#w = new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
  }

  /** Ids it holds (the map's max_entries). */
  get size(): number {
    return this.#w.length / WORDS;
  }

  /** One field of one id as a number (exact below 2^53); 0 past the end. */
  #get(id: number, off: number): number {
    const i = id * WORDS + off / 4;
    if (i + 1 >= this.#w.length) return 0;
    // Host byte order is little-endian on every target the dataplane builds for.
    return this.#w[i]! + this.#w[i + 1]! * TWO_32;
  }

  packets(id: number): number {
    return this.#get(id, L.offsets.packets);
  }

  bytes(id: number): number {
    return this.#get(id, L.offsets.bytes);
  }

  newConnections(id: number): number {
    return this.#get(id, L.offsets.new_conns);
  }

  replyPackets(id: number): number {
    return this.#get(id, L.offsets.reply_packets);
  }

  /**
   * Add one id's packets, bytes, new connections and reply packets to
   * out[at..at+3], in that order (nothing past the end): the metrics sum
   * hundreds of thousands of ids a scrape into flat arrays.
   */
  addTo(id: number, out: Float64Array, at: number): void {
    const w = this.#w;
    const i = id * WORDS;
    if (i + WORDS > w.length) return;
    out[at] = out[at]! + w[i + P]! + w[i + P + 1]! * TWO_32;
    out[at + 1] = out[at + 1]! + w[i + B]! + w[i + B + 1]! * TWO_32;
    out[at + 2] = out[at + 2]! + w[i + N]! + w[i + N + 1]! * TWO_32;
    out[at + 3] = out[at + 3]! + w[i + R]! + w[i + R + 1]! * TWO_32;
  }

  /** One id's counters as the per-id reads give them. */
  lbStats(id: number): LbStats {
    return { packets: BigInt(this.packets(id)), bytes: BigInt(this.bytes(id)), newConnections: BigInt(this.newConnections(id)), replyPackets: BigInt(this.replyPackets(id)) };
  }

  /** A table of `size` ids from per-id counters (the fake dataplane's). */
  static of(size: number, stats: ReadonlyMap<number, LbStats>): StatsTable {
    const b = Buffer.alloc(size * L.size);
    for (const [id, s] of stats) {
      if (id < 0 || id >= size) continue;
      const at = id * L.size;
      b.writeBigUInt64LE(s.packets, at + L.offsets.packets);
      b.writeBigUInt64LE(s.bytes, at + L.offsets.bytes);
      b.writeBigUInt64LE(s.newConnections, at + L.offsets.new_conns);
      b.writeBigUInt64LE(s.replyPackets, at + L.offsets.reply_packets);
    }
    return new StatsTable(b);
  }
}
