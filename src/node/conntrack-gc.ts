/**
 * The conntrack collector: deletes dead entries (bpf/include/ct.h: an entry
 * is dead from second `expires` on, and the dataplane already treats it as
 * absent), so that the LRU table's room goes to live flows instead of
 * being won back by evicting them.
 *
 * A pass walks the whole of both tables (IPv4's conntrack, then IPv6's
 * conntrack6) in batches (Dataplane.readConntrack) and is spread over the
 * interval: it reads at the pace that would cover `tableSize` entries (the
 * two tables' capacities together) in PACE_SHARE of the interval, sleeping
 * between batches, so a full table costs the same share of a CPU however
 * the entries are spread, and the event loop is free between batches.
 *
 * Deciding, for each entry the batch shows dead, with one lookup: its
 * flow's other entry (ct_peer) is looked up, and
 *   - if that is this flow's and alive, both are left: every packet of a
 *     flow moves both expiries, so a packet came since the batch was read
 *     (counted as raced);
 *   - if it is this flow's and dead too, both are deleted in one call;
 *   - otherwise (gone, or another flow's entry under that key, which is
 *     judged by itself when the walk comes to it) the entry is deleted
 *     alone;
 * and counted once per flow by the state it died in (expired new,
 * established, closing), or as an orphaned reply: a dead reply entry
 * whose forward entry is gone (or another flow's).
 *
 * The entry itself is not read again before its delete (a lookup is most
 * of the cost of a dead flow): a packet of its own flow shows in the peer,
 * and deletes follow their lookup at once, so what can still be lost is an
 * entry that a new flow took between the batch's read and the delete (a
 * millisecond at most). The dataplane makes such a flow whole again: its
 * next forward packet finds no entry and is placed by Maglev as its first
 * was (the same backend while the table is unchanged), and writes both
 * entries; a reply before it is restored through reply_nat, where that is
 * on. An entry counts as dead only a second after its expiry
 * (DEAD_MARGIN_S), because the dataplane's clock is
 * CLOCK_MONOTONIC_COARSE, cached per CPU for a tick, and can still be in
 * the previous second when this process is in the next one.
 */
import type { Logger } from 'pino';
import {
  CT_FLAG_HAIRPIN, CT_FORWARD, CT_FLAG_REPLY, CT_STATES, FLOW_TIMEOUT_MAX_S, conntrackTableOfKey, writeAddr,
  type ConntrackState, type IpFamily,
} from '../dataplane/codec.js';
import type { ConntrackCursor, Dataplane } from '../dataplane/dataplane.js';

/** The tables a pass walks, in order. */
const FAMILIES: readonly IpFamily[] = [4, 6];

/** Entries read from the kernel per batch. */
const BATCH = 1024;

/** A pass is paced to cover `tableSize` entries in this share of the interval, leaving the rest as slack. */
const PACE_SHARE = 0.8;

/** Seconds past its expiry before an entry is taken for dead (see the top of this file). */
export const DEAD_MARGIN_S = 1;

/**
 * The collector's default interval: a full pass over the table every this
 * many seconds. A dead entry costs nothing but its room until then (the
 * dataplane treats it as absent, and the LRU evicts the least recently
 * used first); a pass costs about 14 µs of CPU per dead flow (bench
 * "conntrack-gc"), so a full table of 2M entries, half dead, costs about
 * 2 % of one CPU at this interval.
 */
export const GC_INTERVAL_DEFAULT_S = 300;

/** Bounds of the flow lifecycle's settings. */
export const CONNTRACK_LIMITS = {
  /** The longest idle timeout (the dataplane's bound, FLOW_TIMEOUT_MAX_S). */
  timeoutMaxS: FLOW_TIMEOUT_MAX_S,
  /** The longest interval between two passes. */
  gcIntervalMaxS: 24 * 3600,
  /** The flood guard's largest rate (a u32 in the dataplane). */
  floodRateMax: 0xffff_ffff,
} as const;

/** What the collector has deleted since it started, and how its last pass went. */
export interface ConntrackGcStats {
  /** Passes completed. */
  passes: number;
  /** Flows deleted (both entries, or the one left) by the state they died in. */
  expired: Record<ConntrackState, number>;
  /** Dead reply entries deleted whose forward entry was gone (or another flow's). */
  orphanedReplies: number;
  /** Entries deleted in all. */
  entriesDeleted: number;
  /** Entries found dead in a batch whose flow's other entry was alive (a packet came meanwhile): left. */
  raced: number;
  /** The last completed pass: entries read, wall time, and CPU time of its batches (the process's, between a batch's start and end), ms. */
  lastPass: { entries: number; deleted: number; wallMs: number; cpuMs: number } | null;
  /** The interval, ms. */
  intervalMs: number;
}

/** Options of ConntrackGc. */
export interface ConntrackGcOptions {
  dataplane: Dataplane;
  /** A full pass every this many ms (default GC_INTERVAL_DEFAULT_S). */
  intervalMs?: number;
  /** The table's capacity, which a pass is paced to cover within the interval (default 2,097,152). */
  tableSize?: number;
  /** Entries per batch (default 1024). */
  batch?: number;
  /** CLOCK_MONOTONIC in whole seconds, the dataplane's clock (default process.hrtime). */
  nowS?: () => number;
  /** Waits between batches (default setTimeout/setImmediate). */
  sleep?: (ms: number) => Promise<void>;
  /** Milliseconds for pacing, any origin (default performance.now). */
  clockMs?: () => number;
  logger?: Logger;
}

/** The result of one pass. */
export interface GcPassResult {
  entries: number;
  deleted: number;
  expired: Record<ConntrackState, number>;
  orphanedReplies: number;
  raced: number;
  wallMs: number;
  cpuMs: number;
}

const monotonicS = (): number => Number(process.hrtime.bigint() / 1_000_000_000n);

const defaultSleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    if (ms <= 0) setImmediate(resolve);
    else setTimeout(resolve, ms).unref();
  });

/** Whether an entry expiring at `expires` is dead at `now` with the margin (wrap-safe, as ct_live). */
export function deadAt(expires: number, now: number): boolean {
  return ((expires - (now - DEAD_MARGIN_S)) | 0) <= 0;
}

/** What peerOf() finds: the other entry's key, and what its value holds if it is this flow's. */
export interface PeerWant {
  key: Buffer;
  /** Its NAT address, in network order (4 or 16 bytes). */
  natAddr: Buffer;
  natPort: number;
  flags: number;
}

/**
 * The key of the other entry of the flow whose entry is (key, value), and
 * the value that entry has if it is this flow's (bpf/include/ct.h
 * ct_peer(), on the encoded structs of either table). `hairpin` is the
 * hairpin address of the key's family (node_config or node_config6), in
 * network order, or as parseIPv4 gives it for IPv4 (0 or all zero: none).
 */
export function peerOf(key: Buffer, value: Buffer, hairpin: number | Buffer): PeerWant {
  const t = conntrackTableOfKey(key);
  const K = t.key.offsets;
  const V = t.value.offsets;
  const n = t.addrBytes;
  const pk = Buffer.alloc(t.key.size);
  pk[K.proto] = key[K.proto]!;
  const flags = value[V.flags]!;
  const hp = (flags & CT_FLAG_HAIRPIN) !== 0;
  if ((flags & CT_FLAG_REPLY) !== 0) {
    key.copy(pk, K.saddr, hp ? K.saddr : K.daddr, (hp ? K.saddr : K.daddr) + n);
    value.copy(pk, K.daddr, V.nat_addr, V.nat_addr + n);
    key.copy(pk, K.sport, K.dport, K.dport + 2);
    value.copy(pk, K.dport, V.nat_port, V.nat_port + 2);
    return { key: pk, natAddr: key.subarray(K.saddr, K.saddr + n), natPort: key.readUInt16BE(K.sport), flags: flags ^ CT_FLAG_REPLY };
  }
  value.copy(pk, K.saddr, V.nat_addr, V.nat_addr + n);
  if (hp) {
    if (typeof hairpin === 'number') pk.writeUInt32BE(hairpin >>> 0, K.daddr);
    else hairpin.copy(pk, K.daddr, 0, n);
  } else {
    key.copy(pk, K.daddr, K.saddr, K.saddr + n);
  }
  value.copy(pk, K.sport, V.nat_port, V.nat_port + 2);
  key.copy(pk, K.dport, K.sport, K.sport + 2);
  return { key: pk, natAddr: key.subarray(K.daddr, K.daddr + n), natPort: key.readUInt16BE(K.dport), flags: flags ^ CT_FLAG_REPLY };
}

/** Whether `peer` is the other entry of the flow of `value`, whose peerOf() is `want` (ct_is_peer()). */
function isPeer(peer: Buffer, value: Buffer, want: PeerWant): boolean {
  const V = conntrackTableOfKey(want.key).value.offsets;
  const n = want.natAddr.length;
  return peer[V.flags] === want.flags && peer.compare(want.natAddr, 0, n, V.nat_addr, V.nat_addr + n) === 0 &&
    peer.readUInt16BE(V.nat_port) === want.natPort && peer.readUInt32LE(V.backend_id) === value.readUInt32LE(V.backend_id);
}

/** A family's hairpin address in network order (all zero: none). */
function hairpinBytes(dp: Dataplane, family: IpFamily): Buffer {
  const a = dp.hairpinAddress(family);
  const b = Buffer.alloc(16);
  if (a !== null) writeAddr(b, 0, a, 'hairpinAddress');
  return family === 4 ? b.subarray(0, 4) : b;
}

const zeroExpired = (): Record<ConntrackState, number> => ({ established: 0, new: 0, closing: 0 });

/** The collector: start() runs passes until stop(); collect() runs one now. */
export class ConntrackGc {
  private readonly dp: Dataplane;
  private readonly intervalMs: number;
  private readonly tableSize: number;
  private readonly batch: number;
  private readonly nowS: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly clockMs: () => number;
  private readonly log: Logger | undefined;
  private readonly totals: Omit<ConntrackGcStats, 'intervalMs'> = { passes: 0, expired: zeroExpired(), orphanedReplies: 0, entriesDeleted: 0, raced: 0, lastPass: null };
  private running: Promise<void> | undefined;
  /** Live forward entries by backend id, as the last whole pass counted them. */
  private active: ReadonlyMap<number, number> | undefined;
  private stopping = false;
  private wake: (() => void) | undefined;

  constructor(o: ConntrackGcOptions) {
    this.dp = o.dataplane;
    this.intervalMs = o.intervalMs ?? GC_INTERVAL_DEFAULT_S * 1000;
    this.tableSize = o.tableSize ?? 2_097_152;
    this.batch = o.batch ?? BATCH;
    this.nowS = o.nowS ?? monotonicS;
    this.sleep = o.sleep ?? defaultSleep;
    this.clockMs = o.clockMs ?? (() => performance.now());
    this.log = o.logger;
  }

  /** Totals since start. */
  stats(): ConntrackGcStats {
    return { ...this.totals, expired: { ...this.totals.expired }, intervalMs: this.intervalMs };
  }

  /**
   * Live flows by backend id (one forward entry each), as the last whole
   * pass counted them; undefined before the first. A pass counts them as
   * it goes, so that a reader (a scrape) never walks the table itself.
   */
  activeByBackend(): ReadonlyMap<number, number> | undefined {
    return this.active;
  }

  /** Run passes, one every interval (a pass that overruns it is followed at once by the next). */
  start(): void {
    if (this.running) return;
    this.stopping = false;
    this.running = (async () => {
      while (!this.stopping) {
        const began = Date.now();
        try {
          await this.collect({ paced: true });
        } catch (err) {
          this.log?.warn({ err }, 'conntrack collection failed; trying again next interval');
        }
        const rest = this.intervalMs - (Date.now() - began);
        if (rest > 0 && !this.stopping) await this.nap(rest);
      }
    })();
  }

  /** Stop after the current batch; resolves once the collector is idle. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.running;
    this.running = undefined;
  }

  /**
   * Wait `ms` between batches, or less if stop() is called: a stop must not
   * wait out a paced pass's sleep, whose timer is unref'd (so it keeps no
   * process alive): with nothing else left, the process would end with the
   * stop still pending.
   */
  private pause(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        if (this.wake === finish) this.wake = undefined;
        resolve();
      };
      this.wake = finish;
      void this.sleep(ms).then(finish);
    });
  }

  /** Sleep `ms`, or less if stop() is called. */
  private nap(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  /**
   * One pass over the table. Paced (start()'s passes), it sleeps between
   * batches to keep to the interval; unpaced, it only yields to the event
   * loop between them.
   */
  async collect(opts: { paced?: boolean } = {}): Promise<GcPassResult> {
    const began = this.clockMs();
    let cpuUs = 0;
    const r: GcPassResult = { entries: 0, deleted: 0, expired: zeroExpired(), orphanedReplies: 0, raced: 0, wallMs: 0, cpuMs: 0 };
    // Entries per ms that cover tableSize in PACE_SHARE of the interval.
    const perMs = this.tableSize / (this.intervalMs * PACE_SHARE);
    const active = new Map<number, number>();
    let whole = true;
    for (const family of FAMILIES) {
      const hairpin = hairpinBytes(this.dp, family);
      let at: ConntrackCursor | null = null;
      do {
        // CPU of the batches alone, not of what the process does between them.
        const cpu0 = process.cpuUsage();
        const { rows, next } = this.dp.readConntrack(at, this.batch, family);
        const now = this.nowS();
        const gone = new Set<string>();
        for (let i = 0; i < rows.count; i++) {
          if (!deadAt(rows.expires(i), now)) {
            if (rows.dir(i) === CT_FORWARD) {
              const id = rows.backendId(i);
              active.set(id, (active.get(id) ?? 0) + 1);
            }
            continue;
          }
          const key = rows.keyBytes(i);
          // Deleted already, as the peer of an entry earlier in this batch.
          if (gone.size > 0 && gone.delete(key.toString('latin1'))) continue;
          this.judge(key, rows.valueBytes(i), now, hairpin, gone, r);
        }
        r.entries += rows.count;
        const cpu = process.cpuUsage(cpu0);
        cpuUs += cpu.user + cpu.system;
        at = next;
        if (at === null || this.stopping) break;
        const ahead = opts.paced ? r.entries / perMs - (this.clockMs() - began) : 0;
        await this.pause(ahead);
      } while (!this.stopping);
      if (at !== null) whole = false;
      if (this.stopping) break;
    }
    if (whole && !this.stopping) this.active = active;
    r.wallMs = this.clockMs() - began;
    r.cpuMs = cpuUs / 1000;
    const t = this.totals;
    t.passes++;
    for (const s of CT_STATES) t.expired[s] += r.expired[s];
    t.orphanedReplies += r.orphanedReplies;
    t.entriesDeleted += r.deleted;
    t.raced += r.raced;
    t.lastPass = { entries: r.entries, deleted: r.deleted, wallMs: Math.round(r.wallMs), cpuMs: Math.round(r.cpuMs) };
    this.log?.debug({ ...r, wallMs: Math.round(r.wallMs), cpuMs: Math.round(r.cpuMs) }, 'conntrack collected');
    return r;
  }

  /** Decide about one entry a batch showed dead (see the top of this file). */
  private judge(key: Buffer, value: Buffer, now: number, hairpin: Buffer, gone: Set<string>, r: GcPassResult): void {
    const V = conntrackTableOfKey(key).value.offsets;
    const want = peerOf(key, value, hairpin);
    const peer = this.dp.lookupConntrack(want.key);
    const ours = peer !== null && isPeer(peer, value, want);
    if (ours && !deadAt(peer.readUInt32LE(V.expires), now)) {
      // Every packet of a flow moves both expiries: a live peer says a
      // packet came since the batch was read.
      r.raced++;
      return;
    }
    r.deleted += this.dp.deleteConntrack(ours ? [key, want.key] : [key]);
    if (ours) gone.add(want.key.toString('latin1'));
    const reply = (value[V.flags]! & CT_FLAG_REPLY) !== 0;
    if (reply && !ours) r.orphanedReplies++;
    else r.expired[CT_STATES[value[V.state]!] ?? 'established']++;
  }
}
