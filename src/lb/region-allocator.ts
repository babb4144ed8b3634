/**
 * Allocates regions of the `maglev_slots` array to Maglev tables. A table
 * is never rewritten in place: a new table goes to a fresh region and the
 * service entry is then switched to it. The old region is quarantined for a
 * while before it is handed out again, so that a packet that read the old
 * service entry just before the switch still finds the old table intact
 * (a program run lasts microseconds; the quarantine is a second).
 */
import { SluiceError } from '../errors.js';

/** Options of the allocator. */
export interface RegionAllocatorOptions {
  /** Milliseconds a released region waits before reuse (default 1000). */
  quarantineMs?: number;
  /** Clock in milliseconds (default Date.now). */
  now?: () => number;
}

/** First-fit allocation over a sorted free list, with coalescing. */
export class RegionAllocator {
  /** Free extents [start, length], sorted by start, never adjacent. */
  private free: Array<[number, number]>;
  private readonly used = new Map<number, number>();
  private quarantine: Array<{ base: number; size: number; at: number }> = [];
  private readonly quarantineMs: number;
  private readonly now: () => number;

  constructor(
    /** Slots in the array. */
    readonly capacity: number,
    opts: RegionAllocatorOptions = {},
  ) {
    this.free = capacity > 0 ? [[0, capacity]] : [];
    this.quarantineMs = opts.quarantineMs ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  /** Slots in use or in quarantine. */
  inUse(): number {
    let n = 0;
    for (const s of this.used.values()) n += s;
    for (const q of this.quarantine) n += q.size;
    return n;
  }

  /** Mark a region found in the maps (adoption) as used. */
  reserve(base: number, size: number): void {
    if (this.used.get(base) === size) return;
    this.carve(base, size);
    this.used.set(base, size);
  }

  /** A fresh region of `size` slots; RESOURCE_EXHAUSTED if none is free. */
  allocate(size: number): number {
    this.reclaim();
    const i = this.free.findIndex(([, len]) => len >= size);
    if (i < 0) {
      throw new SluiceError('RESOURCE_EXHAUSTED',
        `no room for a Maglev table of ${size} slots (${this.inUse()} of ${this.capacity} slots in use; a changed table is written ` +
        `beside the old one before the old one is freed, so a change needs room for both): raise the daemon's --maglev-slots`);
    }
    const ext = this.free[i]!;
    const base = ext[0];
    if (ext[1] === size) this.free.splice(i, 1);
    else this.free[i] = [base + size, ext[1] - size];
    this.used.set(base, size);
    return base;
  }

  /** Give a region back at once (it was never published). */
  free_(base: number): void {
    const size = this.used.get(base);
    if (size === undefined) return;
    this.used.delete(base);
    this.insertFree(base, size);
  }

  /** Release a published region: reusable after the quarantine. */
  release(base: number): void {
    const size = this.used.get(base);
    if (size === undefined) return;
    this.used.delete(base);
    this.quarantine.push({ base, size, at: this.now() });
  }

  /** Undo a release that was not applied after all. */
  unrelease(base: number): void {
    const i = this.quarantine.findIndex((q) => q.base === base);
    if (i < 0) return;
    const [q] = this.quarantine.splice(i, 1);
    this.used.set(q!.base, q!.size);
  }

  /** Release every used region not in `keep`. */
  retainOnly(keep: ReadonlySet<number>): number {
    let n = 0;
    for (const base of [...this.used.keys()]) {
      if (!keep.has(base)) {
        this.release(base);
        n++;
      }
    }
    return n;
  }

  private reclaim(): void {
    if (this.quarantine.length === 0) return;
    const cutoff = this.now() - this.quarantineMs;
    const ready = this.quarantine.filter((q) => q.at <= cutoff);
    if (ready.length === 0) return;
    this.quarantine = this.quarantine.filter((q) => q.at > cutoff);
    for (const q of ready) this.insertFree(q.base, q.size);
  }

  private insertFree(base: number, size: number): void {
    let lo = 0;
    let hi = this.free.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.free[mid]![0] < base) lo = mid + 1;
      else hi = mid;
    }
    this.free.splice(lo, 0, [base, size]);
    // Coalesce with the neighbours.
    const cur = this.free[lo]!;
    const next = this.free[lo + 1];
    if (next && cur[0] + cur[1] === next[0]) {
      cur[1] += next[1];
      this.free.splice(lo + 1, 1);
    }
    const prev = this.free[lo - 1];
    if (prev && prev[0] + prev[1] === cur[0]) {
      prev[1] += cur[1];
      this.free.splice(lo, 1);
    }
  }

  /** Remove [base, base+size) from the free list (it must be free). */
  private carve(base: number, size: number): void {
    const i = this.free.findIndex(([s, len]) => s <= base && base + size <= s + len);
    if (i < 0) throw new SluiceError('INTERNAL', `Maglev region [${base}, ${base + size}) overlaps another or is out of range`);
    const [s, len] = this.free[i]!;
    const parts: Array<[number, number]> = [];
    if (base > s) parts.push([s, base - s]);
    if (base + size < s + len) parts.push([base + size, s + len - base - size]);
    this.free.splice(i, 1, ...parts);
  }
}
