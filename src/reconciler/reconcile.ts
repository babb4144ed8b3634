/**
 * The reconciler: a pure function from (desired, current) map contents to
 * the smallest ordered list of map operations that turns one into the
 * other. Applying them is a separate step (apply.ts).
 *
 * The order never exposes a half-built service to a packet:
 *   1. backends that are new or changed (nothing points at them yet);
 *   2. Maglev tables, each written complete to a fresh region of the table
 *      array (nothing points at it yet);
 *   3. service entries (each switching to its new table base and size in
 *      one atomic element replacement), then VIPs, then reply_nat entries
 *      (they name backends and, through them, service ids);
 *   4. deletions: services first (no new packets find them), then VIPs,
 *      reply_nat entries, released table regions, and backends last.
 */
import type { BackendValue, EndpointKey, ServiceKey, ServiceValue } from '../dataplane/codec.js';
import { BackendTable } from './backend-table.js';
import { ReplyTable } from './reply-table.js';

/** What the maps hold (or should hold). */
export interface DataplaneState {
  /** keyString(key) -> entry */
  services: Map<string, { key: ServiceKey; value: ServiceValue }>;
  /** backend id -> value (rows, not objects: see backend-table.ts) */
  backends: BackendTable;
  /** base slot in maglev_slots -> the Maglev table written there (or its digest) */
  tables: Map<number, TableImage>;
  /** VIP -> number of service ports on it */
  vips: Map<string, number>;
  /**
   * reply_nat: backend endpoint (codec's endpointKey) -> the backend id
   * that endpoint is, or 0 when it serves several service ports (rows, not
   * a Map: see reply-table.ts)
   */
  replies: ReplyTable;
}

/** One map operation. */
export type Operation =
  | { op: 'putBackend'; id: number; value: BackendValue }
  | { op: 'writeTable'; base: number; table: Uint32Array }
  | { op: 'putService'; key: ServiceKey; value: ServiceValue }
  | { op: 'putVip'; address: string; services: number }
  | { op: 'putReply'; endpoint: EndpointKey; backendId: number }
  | { op: 'deleteReply'; endpoint: EndpointKey }
  | { op: 'deleteService'; key: ServiceKey }
  | { op: 'deleteVip'; address: string }
  /** Forget a region: nothing to do in the kernel (the allocator reuses it later). */
  | { op: 'releaseTable'; base: number }
  | { op: 'deleteBackend'; id: number };

/** Which entries to compare; omitted fields mean "all of that map". */
export interface Scope {
  services?: Iterable<string>;
  backends?: Iterable<number>;
  tables?: Iterable<number>;
  vips?: Iterable<string>;
  replies?: Iterable<EndpointKey>;
}

/**
 * The canonical string of a service key: codec's serviceKeyString, built
 * by join() so that it is one flat string. A template literal makes a rope
 * of four pieces, which the desired and current states would each keep for
 * every service as its map key, several times the flat string's size.
 */
export function keyString(k: ServiceKey): string {
  return k.address.includes(':') ? ['[', k.address, ']:', k.port, '/', k.protocol].join('') : [k.address, ':', k.port, '/', k.protocol].join('');
}

/** An empty state. */
export function emptyState(): DataplaneState {
  return { services: new Map(), backends: new BackendTable(), tables: new Map(), vips: new Map(), replies: new ReplyTable() };
}

function sameBackend(a: BackendValue, b: BackendValue): boolean {
  return a.address === b.address && a.port === b.port && a.flags === b.flags;
}

function sameService(a: ServiceValue, b: ServiceValue): boolean {
  return a.id === b.id && a.flags === b.flags && a.affinityTimeoutSec === b.affinityTimeoutSec &&
    a.tableSize === b.tableSize && a.tableBase === b.tableBase;
}

/**
 * A Maglev table once written: its length and a 64-bit digest of its slots.
 * The control plane keeps these instead of the tables (10,000 services of
 * 1,021 slots would otherwise hold 41 MB twice over), and compares them to
 * decide whether a table must be rewritten; two different tables share a
 * digest with probability 2^-64.
 */
export interface TableDigest {
  readonly length: number;
  readonly digest: string;
}

/** A table in full (to be written) or by digest (written, remembered). */
export type TableImage = Uint32Array | TableDigest;

/** The digest of a table: two independent 32-bit multiplicative hashes over its slots. */
export function digestTable(t: TableImage): TableDigest {
  if (!(t instanceof Uint32Array)) return t;
  let h1 = 0x811c9dc5;
  let h2 = 0x9747b28c ^ t.length;
  for (let i = 0; i < t.length; i++) {
    const v = t[i]!;
    h1 = Math.imul(h1 ^ v, 0x01000193);
    h2 = Math.imul(h2 ^ (v + i), 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  return { length: t.length, digest: [(h1 >>> 0).toString(16), (h2 >>> 0).toString(16)].join('.') };
}

/** Whether two Maglev tables are equal (slot for slot when both are held in full). */
export function sameTable(a: TableImage, b: TableImage): boolean {
  if (a.length !== b.length) return false;
  if (a instanceof Uint32Array && b instanceof Uint32Array) {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  return digestTable(a).digest === digestTable(b).digest;
}

function keysOf<K>(scope: Iterable<K> | undefined, a: { keys(): Iterable<K> }, b: { keys(): Iterable<K> }): Iterable<K> {
  if (scope instanceof Set) return scope;
  if (scope !== undefined) return new Set(scope);
  const all = new Set<K>(a.keys());
  for (const k of b.keys()) all.add(k);
  return all;
}

/** Operations that turn `current` into `desired`, within `scope`, in a safe order. */
export function reconcile(desired: DataplaneState, current: DataplaneState, scope: Scope = {}): Operation[] {
  const putBackends: Operation[] = [];
  const delBackends: Operation[] = [];
  for (const id of keysOf(scope.backends, desired.backends, current.backends)) {
    const want = desired.backends.get(id);
    const have = current.backends.get(id);
    if (want && (!have || !sameBackend(want, have))) putBackends.push({ op: 'putBackend', id, value: want });
    else if (!want && have) delBackends.push({ op: 'deleteBackend', id });
  }

  const putServices: Operation[] = [];
  const delServices: Operation[] = [];
  for (const k of keysOf(scope.services, desired.services, current.services)) {
    const want = desired.services.get(k);
    const have = current.services.get(k);
    if (want && (!have || !sameService(want.value, have.value))) putServices.push({ op: 'putService', key: want.key, value: want.value });
    else if (!want && have) delServices.push({ op: 'deleteService', key: have.key });
  }

  const setTables: Operation[] = [];
  const delTables: Operation[] = [];
  for (const id of keysOf(scope.tables, desired.tables, current.tables)) {
    const want = desired.tables.get(id);
    const have = current.tables.get(id);
    if (want && (!have || !sameTable(want, have))) {
      if (!(want instanceof Uint32Array)) throw new Error(`reconcile: table at ${id} differs but only its digest is known`);
      setTables.push({ op: 'writeTable', base: id, table: want });
    }
    else if (!want && have) delTables.push({ op: 'releaseTable', base: id });
  }

  const putVips: Operation[] = [];
  const delVips: Operation[] = [];
  for (const a of keysOf(scope.vips, desired.vips, current.vips)) {
    const want = desired.vips.get(a);
    const have = current.vips.get(a);
    if (want !== undefined && want !== have) putVips.push({ op: 'putVip', address: a, services: want });
    else if (want === undefined && have !== undefined) delVips.push({ op: 'deleteVip', address: a });
  }

  const putReplies: Operation[] = [];
  const delReplies: Operation[] = [];
  for (const e of keysOf(scope.replies, desired.replies, current.replies)) {
    const want = desired.replies.get(e);
    const have = current.replies.get(e);
    if (want !== undefined && want !== have) putReplies.push({ op: 'putReply', endpoint: e, backendId: want });
    else if (want === undefined && have !== undefined) delReplies.push({ op: 'deleteReply', endpoint: e });
  }

  return [
    ...putBackends,
    ...setTables,
    ...putServices,
    ...putVips,
    ...putReplies,
    ...delServices,
    ...delVips,
    ...delReplies,
    ...delTables,
    ...delBackends,
  ];
}
