/**
 * The control plane's copy of the `backends` map (what the kernel holds, and
 * what it should hold), one row per backend id in parallel typed arrays
 * instead of one object per backend in a Map.
 *
 * The load balancer keeps two such copies, desired and current. With 10,000
 * services × 10 backends they were 100,000 objects and two 100,000-entry
 * Maps: about 14 MB of the daemon's heap, all of it traced by every major GC.
 * As rows they are four typed arrays.
 *
 * The interface is the part of Map that the reconciler and the load
 * balancer use; get() returns a fresh BackendValue each time. Rows are dense
 * for IPv4 addresses and ids below DENSE_IDS (the dataplane's ids are far
 * below); anything else is kept in a plain Map beside them.
 */
import { formatIPv4, parseIPv4, type BackendValue } from '../dataplane/codec.js';

/** Ids below this are stored as rows; the arrays grow as needed up to it. */
const DENSE_IDS = 1 << 22;

const ABSENT = 0;
const ROW = 1;
const SPILLED = 2;

/** Backend id → BackendValue, stored as rows. */
export class BackendTable implements Iterable<[number, BackendValue]> {
  private state = new Uint8Array(0);
  private addr = new Uint32Array(0);
  private port = new Uint16Array(0);
  private flags = new Uint8Array(0);
  private service = new Uint32Array(0);
  /** Rows that do not fit: ids ≥ DENSE_IDS, addresses that are not IPv4, ports or flags out of range. */
  private readonly spill = new Map<number, BackendValue>();
  private count = 0;

  /** A table holding `entries`. */
  static from(entries: Iterable<readonly [number, BackendValue]>): BackendTable {
    const t = new BackendTable();
    for (const [id, v] of entries) t.set(id, v);
    return t;
  }

  get size(): number {
    return this.count;
  }

  has(id: number): boolean {
    return this.stateOf(id) !== ABSENT;
  }

  get(id: number): BackendValue | undefined {
    const s = this.stateOf(id);
    if (s === ABSENT) return undefined;
    if (s === SPILLED) {
      const v = this.spill.get(id)!;
      return { ...v };
    }
    return { address: formatIPv4(this.addr[id]!), port: this.port[id]!, flags: this.flags[id]!, serviceId: this.service[id]! };
  }

  set(id: number, v: BackendValue): this {
    const before = this.stateOf(id);
    const a = parseIPv4(v.address);
    const dense = Number.isInteger(id) && id >= 0 && id < DENSE_IDS && a >= 0 &&
      Number.isInteger(v.port) && v.port >= 0 && v.port <= 0xffff &&
      Number.isInteger(v.flags) && v.flags >= 0 && v.flags <= 0xff &&
      Number.isInteger(v.serviceId) && v.serviceId >= 0 && v.serviceId <= 0xffffffff;
    if (before === SPILLED) this.spill.delete(id);
    if (dense) {
      this.reserve(id);
      this.state[id] = ROW;
      this.addr[id] = a;
      this.port[id] = v.port;
      this.flags[id] = v.flags;
      this.service[id] = v.serviceId;
    } else {
      if (before === ROW) this.state[id] = ABSENT;
      this.spill.set(id, { address: v.address, port: v.port, flags: v.flags, serviceId: v.serviceId });
    }
    if (before === ABSENT) this.count++;
    return this;
  }

  delete(id: number): boolean {
    const s = this.stateOf(id);
    if (s === ABSENT) return false;
    if (s === SPILLED) this.spill.delete(id);
    else this.state[id] = ABSENT;
    this.count--;
    return true;
  }

  /** Ids in ascending order for rows, then the spilled ones in insertion order. */
  *keys(): IterableIterator<number> {
    const st = this.state;
    for (let id = 0; id < st.length; id++) if (st[id] === ROW) yield id;
    yield* this.spill.keys();
  }

  *entries(): IterableIterator<[number, BackendValue]> {
    for (const id of this.keys()) yield [id, this.get(id)!];
  }

  [Symbol.iterator](): IterableIterator<[number, BackendValue]> {
    return this.entries();
  }

  private stateOf(id: number): number {
    if (Number.isInteger(id) && id >= 0 && id < this.state.length) {
      const s = this.state[id]!;
      if (s !== ABSENT) return s;
    }
    return this.spill.has(id) ? SPILLED : ABSENT;
  }

  /** Grow the rows (doubling) so that `id` has one. */
  private reserve(id: number): void {
    if (id < this.state.length) return;
    let n = Math.max(1024, this.state.length);
    while (n <= id) n *= 2;
    n = Math.min(n, DENSE_IDS);
    const grow = <T extends Uint8Array | Uint16Array | Uint32Array>(old: T, make: (n: number) => T): T => {
      const next = make(n);
      next.set(old);
      return next;
    };
    this.state = grow(this.state, (k) => new Uint8Array(k));
    this.addr = grow(this.addr, (k) => new Uint32Array(k));
    this.port = grow(this.port, (k) => new Uint16Array(k));
    this.flags = grow(this.flags, (k) => new Uint8Array(k));
    this.service = grow(this.service, (k) => new Uint32Array(k));
  }
}
