/**
 * The connection-tracking table seen as connections: each flow has a
 * forward entry (client → VIP, value: the backend) and a reply entry
 * (backend → client, value: the VIP). Listing shows forward entries; a
 * flush removes both entries of every matching flow.
 *
 * Both walk the kernel's table a batch of hash buckets at a time
 * (Dataplane.readConntrack) and filter the raw rows as they go, so that
 * neither holds more than a batch of the table (up to 2M entries) nor, for
 * a listing, examines more than a bounded part of it in one call.
 *
 * A listing resumes from a ConnectionCursor: the table's cursor (a bucket
 * boundary) plus the keys still to show of the one bucket a page ended
 * inside, when a bucket held more matches than the page had room for.
 * Those keys are looked up again on the next page, so that one still there
 * is shown once and one gone is skipped. Over a whole listing, then, a
 * connection present throughout is listed exactly once, one that starts or
 * ends meanwhile may or may not be, and nothing repeats. The order is the
 * table's (hash buckets), not a sort order: sorting would need the whole
 * table on every page.
 *
 * A listing shows live connections only: a dead entry (idle past its
 * state's timeout, not yet deleted by the collector) is one the dataplane
 * treats as absent, whose next packet is placed afresh, so it is not a
 * connection any more, whatever the table still holds.
 */
import { CT_FORWARD, CT_STATES, LAYOUTS, decodeConntrackKey, encodeConntrackKey, parseIPv4, type ConntrackKey, type ConntrackState, type Protocol } from '../dataplane/codec.js';
import { ConntrackRows } from '../dataplane/conntrack-rows.js';
import { CONNTRACK_CURSOR_SIZE, type ConntrackCursor, type Dataplane } from '../dataplane/dataplane.js';

/** Which connections; every set field must match. */
export interface ConnectionMatch {
  /** Dataplane ids of the service's frontends. */
  serviceIds?: ReadonlySet<number>;
  backendAddress?: string;
  clientAddress?: string;
  /** Only flows in this state. */
  state?: ConntrackState;
}

/** One connection. */
export interface ConnectionInfo {
  clientAddress: string;
  clientPort: number;
  /** The VIP. */
  address: string;
  port: number;
  protocol: Protocol;
  backendAddress: string;
  backendPort: number;
  serviceId: number;
  /** The flow's state (bpf/include/ct.h). */
  state: ConntrackState;
  /** Since its first packet, in whole seconds. */
  ageMs: number;
  /** Until it expires unless a packet comes, in whole seconds (at least 1 s: dead entries are not listed). */
  expiresInMs: number;
}

/** Where a listing goes on (see the top of this file). */
export interface ConnectionCursor {
  /** The table's cursor; 'end' once the table has been read to its end. */
  table: ConntrackCursor | 'end';
  /** Forward keys of the bucket the last page ended inside, still to show (if still there and matching). */
  pending: ConntrackKey[];
}

/** A page of connections and, unless the listing is complete, where it goes on. */
export interface ConnectionPage {
  connections: ConnectionInfo[];
  next?: ConnectionCursor;
}

/** Options of listConnections. */
export interface ListOptions {
  /**
   * Most entries one call examines (default EXAMINE_MAX): with a filter
   * that few entries match, a page ends short (even empty, with a cursor)
   * rather than keep the event loop for a large part of the table.
   */
  examineMax?: number;
}

/**
 * About the most conntrack entries (either direction) a listing examines in
 * one call. The walk runs on the event loop, so this bounds how long one
 * call with a selective filter holds it; the price is more calls, each a
 * short or empty page: 128 for a full table of 2M entries.
 */
export const EXAMINE_MAX = 16_384;

/** Largest batch read from the kernel at once. */
const BATCH_MAX = 4096;

/** Most keys a cursor may hold still to show: more than any one hash bucket holds. */
const PENDING_MAX = 256;

type RowMatch = (rows: ConntrackRows, i: number) => boolean;

/** A predicate over raw conntrack rows (either direction) for `m`. */
function rowMatcher(m: ConnectionMatch): RowMatch {
  // The rows are the IPv4 table's: an IPv6 address matches none of them
  // (and must not fall through to "no filter", which a flush would take for all).
  if (m.backendAddress?.includes(':') || m.clientAddress?.includes(':')) return () => false;
  const ids = m.serviceIds;
  const backend = m.backendAddress === undefined ? -1 : address(m.backendAddress);
  const client = m.clientAddress === undefined ? -1 : address(m.clientAddress);
  const state = m.state === undefined ? -1 : CT_STATES.indexOf(m.state);
  return (r, i) => {
    if (ids !== undefined && !ids.has(r.serviceId(i))) return false;
    if (state >= 0 && r.state(i) !== state) return false;
    const forward = r.dir(i) === CT_FORWARD;
    if (backend >= 0 && (forward ? r.natAddress(i) : r.source(i)) !== backend) return false;
    if (client >= 0 && (forward ? r.source(i) : r.destination(i)) !== client) return false;
    return true;
  };
}

/** parseIPv4 of an address the caller has checked: -1 would disable the filter (a flush would take everything). */
function address(a: string): number {
  const v = parseIPv4(a);
  if (v < 0) throw new RangeError(`connections: not an IPv4 address: ${a}`);
  return v;
}

const NS_PER_S = 1_000_000_000n;
/** Milliseconds from second `from` to second `to` of CLOCK_MONOTONIC, 0 if `to` is not later. */
const msBetween = (from: number, to: number): number => (to > from ? (to - from) * 1000 : 0);

function info(rows: ConntrackRows, i: number, nowNs: bigint): ConnectionInfo {
  const { key, value } = rows.entry(i);
  return {
    clientAddress: key.saddr,
    clientPort: key.sport,
    address: key.daddr,
    port: key.dport,
    protocol: key.protocol,
    backendAddress: value.natAddress,
    backendPort: value.natPort,
    serviceId: value.serviceId,
    state: value.state,
    ageMs: msBetween(value.created, Number(nowNs / NS_PER_S)),
    expiresInMs: msBetween(Number(nowNs / NS_PER_S), value.expires),
  };
}

/**
 * Up to `limit` matching connections from cursor `after` on (none: the
 * start), in the table's order, and the cursor of the rest. A page may
 * hold fewer than `limit`, even none, and still have a next cursor: when
 * it ends on a bucket boundary before the page is full, or after
 * examining `examineMax` entries. `nowNs` is CLOCK_MONOTONIC (the entries'
 * clock).
 */
export function listConnections(
  dataplane: Dataplane,
  m: ConnectionMatch,
  page: { after?: ConnectionCursor; limit: number },
  nowNs: bigint,
  opts: ListOptions = {},
): ConnectionPage {
  if (!(page.limit >= 1)) throw new RangeError(`listConnections: limit ${page.limit}`);
  const matches = rowMatcher(m);
  const nowS = Number(nowNs / NS_PER_S);
  // Alive as the dataplane judges it (ct_live: wrap-safe).
  const forwardMatch: RowMatch = (r, i) => r.dir(i) === CT_FORWARD && ((r.expires(i) - nowS) | 0) > 0 && matches(r, i);
  const examineMax = opts.examineMax ?? EXAMINE_MAX;
  const out: ConnectionInfo[] = [];
  let at: ConntrackCursor | null | 'end' = page.after?.table ?? null;
  let pending = page.after?.pending ?? [];
  let examined = 0;
  let matched = 0;

  // First the rest of the bucket the last page ended inside.
  while (pending.length > 0 && out.length < page.limit) {
    const key = pending[0]!;
    pending = pending.slice(1);
    examined++;
    const value = dataplane.getConntrack(key);
    if (value === null) continue;
    const rows = ConntrackRows.of([{ key, value }]);
    if (forwardMatch(rows, 0)) out.push(info(rows, 0, nowNs));
  }

  // The first page reads at least one batch, so that it has a cursor to give.
  while (pending.length === 0 && out.length < page.limit && at !== 'end' && (at === null || examined < examineMax)) {
    const room = page.limit - out.length;
    // Read about twice what should fill the page at the share of entries
    // that matched so far (a Laplace estimate: a half before the first batch).
    const share = (matched + 1) / (examined + 2);
    let want = Math.max(room, Math.min(BATCH_MAX, examineMax - examined, Math.ceil((2 * room) / share)));
    let batch = dataplane.readConntrack(at, want);
    examined += batch.rows.count;
    let hits = indexes(batch.rows, forwardMatch);
    // The page fills inside this batch: read again only up to the match
    // that fills it, so that the cursor falls on a bucket boundary. Each
    // such read asks for fewer entries than the last, and it stops when the
    // first bucket alone came back larger than asked for.
    while (hits.length > room && batch.rows.count <= want) {
      want = hits[room - 1]! + 1;
      batch = dataplane.readConntrack(at, want);
      examined += batch.rows.count;
      hits = indexes(batch.rows, forwardMatch);
    }
    matched += hits.length;
    for (const i of hits.slice(0, room)) out.push(info(batch.rows, i, nowNs));
    pending = hits.slice(room).map((i) => batch.rows.key(i));
    at = batch.next ?? 'end';
  }

  if (at === null) throw new Error('listConnections: no batch read'); // unreachable: see the loop
  if (at === 'end' && pending.length === 0) return { connections: out };
  return { connections: out, next: { table: at, pending } };
}

function indexes(rows: ConntrackRows, match: RowMatch): number[] {
  const out: number[] = [];
  for (let i = 0; i < rows.count; i++) if (match(rows, i)) out.push(i);
  return out;
}

/** Options of flushConnections. */
export interface FlushOptions {
  /** Awaited between batches, to let other work run (default: setImmediate). */
  pause?: () => Promise<void>;
}

/**
 * Delete both entries of every matching flow, walking the table a batch at
 * a time (deleting behind the cursor leaves the walk alone). An entry
 * present throughout is flushed if it matches; one created meanwhile may
 * or may not be. Returns how many flows (forward entries) matched.
 */
export async function flushConnections(dataplane: Dataplane, m: ConnectionMatch, opts: FlushOptions = {}): Promise<number> {
  const matches = rowMatcher(m);
  const pause = opts.pause ?? (() => new Promise<void>((resolve) => setImmediate(resolve)));
  let at: ConntrackCursor | null = null;
  let flows = 0;
  for (;;) {
    const { rows, next } = dataplane.readConntrack(at, BATCH_MAX);
    const doomed: Buffer[] = [];
    for (let i = 0; i < rows.count; i++) {
      if (!matches(rows, i)) continue;
      doomed.push(rows.keyBytes(i));
      if (rows.dir(i) === CT_FORWARD) flows++;
    }
    dataplane.deleteConntrack(doomed);
    if (next === null) return flows;
    at = next;
    await pause();
  }
}

/**
 * A cursor as text for a page token: "1", the table's cursor and the
 * pending keys, each base64url, joined by dots ("1.AAEAAA." : bucket 256,
 * nothing pending; an empty table cursor means 'end').
 */
export function formatConnectionCursor(c: ConnectionCursor): string {
  // parseConnectionCursor refuses more; no bucket of the kernel's table holds that many.
  if (c.pending.length > PENDING_MAX) throw new RangeError(`connection cursor: ${c.pending.length} pending keys, at most ${PENDING_MAX}`);
  const table = c.table === 'end' ? '' : c.table.toString('base64url');
  const pending = Buffer.concat(c.pending.map((k) => encodeConntrackKey(k))).toString('base64url');
  return `1.${table}.${pending}`;
}

/** The cursor formatConnectionCursor wrote, or undefined if `s` is not one. */
export function parseConnectionCursor(s: string): ConnectionCursor | undefined {
  const parts = s.split('.');
  if (parts.length !== 3 || parts[0] !== '1') return undefined;
  const table = base64url(parts[1]!);
  const keys = base64url(parts[2]!);
  if (table === undefined || keys === undefined) return undefined;
  if (table.length !== 0 && table.length !== CONNTRACK_CURSOR_SIZE) return undefined;
  const size = LAYOUTS.ct_key.size;
  if (keys.length % size !== 0 || keys.length / size > PENDING_MAX) return undefined;
  if (table.length === 0 && keys.length === 0) return undefined;
  const pending: ConntrackKey[] = [];
  for (let o = 0; o < keys.length; o += size) {
    const k = keys.subarray(o, o + size);
    let key: ConntrackKey;
    try {
      key = decodeConntrackKey(k);
    } catch {
      return undefined;
    }
    if (!encodeConntrackKey(key).equals(k)) return undefined;
    pending.push(key);
  }
  return { table: table.length === 0 ? 'end' : table, pending };
}

/** Strict base64url (what Buffer's toString writes), or undefined. */
function base64url(s: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) return undefined;
  const b = Buffer.from(s, 'base64url');
  return b.toString('base64url') === s ? b : undefined;
}
