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
 *
 * IPv4 and IPv6 flows live in two tables (conntrack, conntrack6): a listing
 * or a flush walks IPv4's, then IPv6's, or only the one its filter's
 * family or addresses name; a cursor says which table it stands in.
 */
import {
  CONNTRACK_TABLES, CT_FORWARD, CT_STATES, addressFamily, decodeConntrackKey, encodeConntrackKey, parseIPv4, writeAddr,
  type ConntrackKey, type ConntrackState, type IpFamily, type Protocol,
} from '../dataplane/codec.js';
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
  /** Only flows of this family (the addresses above, if given, must be of it). */
  family?: IpFamily;
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
  /** The table it stands in: IPv6's (conntrack6), or when absent IPv4's. */
  family?: 6;
  /** The table's cursor; 'end' once the table has been read to its end; 'start' before its first batch. */
  table: ConntrackCursor | 'end' | 'start';
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

/**
 * The tables `m` can match in, in walk order: both, or the one its family
 * or its addresses name (none if they disagree). RangeError for an address
 * that is not one: a filter left out would make a flush take everything.
 */
export function matchFamilies(m: ConnectionMatch): IpFamily[] {
  const named = new Set<IpFamily>();
  if (m.family !== undefined) named.add(m.family);
  for (const a of [m.backendAddress, m.clientAddress]) {
    if (a === undefined) continue;
    const family = addressFamily(a);
    checkedAddress(a, family);
    named.add(family);
  }
  if (named.size > 1) return [];
  return named.size === 1 ? [...named] : [4, 6];
}

/** A predicate over raw conntrack rows (either direction) of one table for `m`. */
function rowMatcher(m: ConnectionMatch, family: IpFamily): RowMatch {
  const ids = m.serviceIds;
  const state = m.state === undefined ? -1 : CT_STATES.indexOf(m.state);
  if (family === 4) {
    const backend = m.backendAddress === undefined ? -1 : parseIPv4(m.backendAddress);
    const client = m.clientAddress === undefined ? -1 : parseIPv4(m.clientAddress);
    return (r, i) => {
      if (ids !== undefined && !ids.has(r.serviceId(i))) return false;
      if (state >= 0 && r.state(i) !== state) return false;
      const forward = r.dir(i) === CT_FORWARD;
      if (backend >= 0 && (forward ? r.natAddress(i) : r.source(i)) !== backend) return false;
      if (client >= 0 && (forward ? r.source(i) : r.destination(i)) !== client) return false;
      return true;
    };
  }
  const backend = m.backendAddress === undefined ? undefined : checkedAddress(m.backendAddress, 6);
  const client = m.clientAddress === undefined ? undefined : checkedAddress(m.clientAddress, 6);
  return (r, i) => {
    if (ids !== undefined && !ids.has(r.serviceId(i))) return false;
    if (state >= 0 && r.state(i) !== state) return false;
    const forward = r.dir(i) === CT_FORWARD;
    if (backend !== undefined && !(forward ? r.natAddressIs(i, backend) : r.sourceIs(i, backend))) return false;
    if (client !== undefined && !(forward ? r.sourceIs(i, client) : r.destinationIs(i, client))) return false;
    return true;
  };
}

/** An address the caller has checked, in network order (4 or 16 bytes); RangeError if it is not one of `family`. */
function checkedAddress(a: string, family: IpFamily): Buffer {
  const b = Buffer.alloc(16);
  try {
    if (family === 4 && parseIPv4(a) < 0) throw new Error('not IPv4');
    writeAddr(b, 0, a);
  } catch {
    throw new RangeError(`connections: not an IPv${family} address: ${a}`);
  }
  return family === 4 ? b.subarray(0, 4) : b;
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
 * start), in the tables' order (IPv4's, then IPv6's), and the cursor of the
 * rest. A page may hold fewer than `limit`, even none, and still have a
 * next cursor: when it ends on a bucket boundary before the page is full,
 * or after examining `examineMax` entries. `nowNs` is CLOCK_MONOTONIC (the
 * entries' clock).
 */
export function listConnections(
  dataplane: Dataplane,
  m: ConnectionMatch,
  page: { after?: ConnectionCursor; limit: number },
  nowNs: bigint,
  opts: ListOptions = {},
): ConnectionPage {
  if (!(page.limit >= 1)) throw new RangeError(`listConnections: limit ${page.limit}`);
  const families = matchFamilies(m);
  const examineMax = opts.examineMax ?? EXAMINE_MAX;
  const out: ConnectionInfo[] = [];
  let examined = 0;
  let family: IpFamily = page.after?.family ?? 4;
  let after: TableCursor | undefined = page.after;
  // A cursor names the table it stands in; a table before it is done.
  for (let k = families.findIndex((f) => f >= family); k >= 0 && k < families.length; k++) {
    if (families[k] !== family) {
      family = families[k]!;
      after = undefined;
    }
    if (examined >= examineMax || out.length >= page.limit) return { connections: out, next: cursorAt(family, { table: 'start', pending: [] }) };
    const r = listTable(dataplane, family, rowMatcher(m, family), { after, limit: page.limit - out.length }, nowNs, examineMax - examined);
    out.push(...r.connections);
    examined += r.examined;
    if (r.next !== undefined) return { connections: out, next: cursorAt(family, r.next) };
  }
  return { connections: out };
}

/** Where a listing stands in one table. */
type TableCursor = Omit<ConnectionCursor, 'family'>;

function cursorAt(family: IpFamily, c: TableCursor): ConnectionCursor {
  return family === 6 ? { family: 6, ...c } : { ...c };
}

/** listConnections in one table. */
function listTable(
  dataplane: Dataplane,
  family: IpFamily,
  matches: RowMatch,
  page: { after?: TableCursor | undefined; limit: number },
  nowNs: bigint,
  examineMax: number,
): { connections: ConnectionInfo[]; next?: TableCursor; examined: number } {
  const nowS = Number(nowNs / NS_PER_S);
  // Alive as the dataplane judges it (ct_live: wrap-safe).
  const forwardMatch: RowMatch = (r, i) => r.dir(i) === CT_FORWARD && ((r.expires(i) - nowS) | 0) > 0 && matches(r, i);
  const out: ConnectionInfo[] = [];
  const start = page.after?.table;
  let at: ConntrackCursor | null | 'end' = start === undefined || start === 'start' ? null : start;
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
    const rows = ConntrackRows.of([{ key, value }], family);
    if (forwardMatch(rows, 0)) out.push(info(rows, 0, nowNs));
  }

  // The first page reads at least one batch, so that it has a cursor to give.
  while (pending.length === 0 && out.length < page.limit && at !== 'end' && (at === null || examined < examineMax)) {
    const room = page.limit - out.length;
    // Read about twice what should fill the page at the share of entries
    // that matched so far (a Laplace estimate: a half before the first batch).
    const share = (matched + 1) / (examined + 2);
    let want = Math.max(room, Math.min(BATCH_MAX, examineMax - examined, Math.ceil((2 * room) / share)));
    let batch = dataplane.readConntrack(at, want, family);
    examined += batch.rows.count;
    let hits = indexes(batch.rows, forwardMatch);
    // The page fills inside this batch: read again only up to the match
    // that fills it, so that the cursor falls on a bucket boundary. Each
    // such read asks for fewer entries than the last, and it stops when the
    // first bucket alone came back larger than asked for.
    while (hits.length > room && batch.rows.count <= want) {
      want = hits[room - 1]! + 1;
      batch = dataplane.readConntrack(at, want, family);
      examined += batch.rows.count;
      hits = indexes(batch.rows, forwardMatch);
    }
    matched += hits.length;
    for (const i of hits.slice(0, room)) out.push(info(batch.rows, i, nowNs));
    pending = hits.slice(room).map((i) => batch.rows.key(i));
    at = batch.next ?? 'end';
  }

  if (at === null) throw new Error('listConnections: no batch read'); // unreachable: see the loop
  if (at === 'end' && pending.length === 0) return { connections: out, examined };
  return { connections: out, next: { table: at, pending }, examined };
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
  const pause = opts.pause ?? (() => new Promise<void>((resolve) => setImmediate(resolve)));
  let flows = 0;
  for (const family of matchFamilies(m)) {
    const matches = rowMatcher(m, family);
    let at: ConntrackCursor | null = null;
    for (;;) {
      const { rows, next } = dataplane.readConntrack(at, BATCH_MAX, family);
      const doomed: Buffer[] = [];
      for (let i = 0; i < rows.count; i++) {
        if (!matches(rows, i)) continue;
        doomed.push(rows.keyBytes(i));
        if (rows.dir(i) === CT_FORWARD) flows++;
      }
      dataplane.deleteConntrack(doomed);
      if (next === null) break;
      at = next;
      await pause();
    }
  }
  return flows;
}

/**
 * A cursor as text for a page token: the table ("1": IPv4's, "6": IPv6's),
 * the table's cursor and the pending keys, each base64url, joined by dots
 * ("1.AAEAAA." : bucket 256 of IPv4's table, nothing pending; an empty
 * table cursor means 'end', "~" 'start').
 */
export function formatConnectionCursor(c: ConnectionCursor): string {
  // parseConnectionCursor refuses more; no bucket of the kernel's table holds that many.
  if (c.pending.length > PENDING_MAX) throw new RangeError(`connection cursor: ${c.pending.length} pending keys, at most ${PENDING_MAX}`);
  const table = c.table === 'end' ? '' : c.table === 'start' ? '~' : c.table.toString('base64url');
  const pending = Buffer.concat(c.pending.map((k) => encodeConntrackKey(k))).toString('base64url');
  return `${c.family === 6 ? '6' : '1'}.${table}.${pending}`;
}

/** The cursor formatConnectionCursor wrote, or undefined if `s` is not one. */
export function parseConnectionCursor(s: string): ConnectionCursor | undefined {
  const parts = s.split('.');
  if (parts.length !== 3 || (parts[0] !== '1' && parts[0] !== '6')) return undefined;
  const family: IpFamily = parts[0] === '6' ? 6 : 4;
  if (parts[1] === '~') {
    // The start of IPv6's table: IPv4's has no start cursor (no cursor at all is its start).
    return family === 6 && parts[2] === '' ? { family: 6, table: 'start', pending: [] } : undefined;
  }
  const table = base64url(parts[1]!);
  const keys = base64url(parts[2]!);
  if (table === undefined || keys === undefined) return undefined;
  if (table.length !== 0 && table.length !== CONNTRACK_CURSOR_SIZE) return undefined;
  const size = CONNTRACK_TABLES[family].key.size;
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
  return cursorAt(family, { table: table.length === 0 ? 'end' : table, pending });
}

/** Strict base64url (what Buffer's toString writes), or undefined. */
function base64url(s: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) return undefined;
  const b = Buffer.from(s, 'base64url');
  return b.toString('base64url') === s ? b : undefined;
}
