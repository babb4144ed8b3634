/**
 * The connection-tracking table seen as connections: each flow has a
 * forward entry (client → VIP, value: the backend) and a reply entry
 * (backend → client, value: the VIP). Listing shows forward entries; a
 * flush removes both entries of every matching flow.
 */
import { CT_FORWARD, encodeConntrackKey, type Protocol } from '../dataplane/codec.js';
import type { ConntrackEntry, Dataplane } from '../dataplane/dataplane.js';

/** Which connections; every set field must match. */
export interface ConnectionMatch {
  /** Dataplane ids of the service's frontends. */
  serviceIds?: ReadonlySet<number>;
  backendAddress?: string;
  clientAddress?: string;
}

/** One connection. */
export interface ConnectionInfo {
  /** Opaque, ordered cursor: the hex of the forward key. */
  cursor: string;
  clientAddress: string;
  clientPort: number;
  /** The VIP. */
  address: string;
  port: number;
  protocol: Protocol;
  backendAddress: string;
  backendPort: number;
  serviceId: number;
  ageMs: number;
  idleMs: number;
}

/** A predicate over conntrack entries (either direction) for `m`. */
export function connectionMatcher(m: ConnectionMatch): (e: ConntrackEntry) => boolean {
  return (e) => {
    const forward = e.value.dir === CT_FORWARD;
    const client = forward ? e.key.saddr : e.key.daddr;
    const backend = forward ? e.value.natAddress : e.key.saddr;
    if (m.serviceIds !== undefined && !m.serviceIds.has(e.value.serviceId)) return false;
    if (m.backendAddress !== undefined && backend !== m.backendAddress) return false;
    if (m.clientAddress !== undefined && client !== m.clientAddress) return false;
    return true;
  };
}

const msSince = (nowNs: bigint, thenNs: bigint): number => (nowNs > thenNs ? Number((nowNs - thenNs) / 1_000_000n) : 0);

/**
 * Up to `limit` matching connections after cursor `after`, in cursor order,
 * and whether more follow. `nowNs` is CLOCK_MONOTONIC (the entries' clock).
 */
export function listConnections(
  dataplane: Dataplane,
  m: ConnectionMatch,
  page: { after?: string; limit: number },
  nowNs: bigint,
): { connections: ConnectionInfo[]; more: boolean } {
  const match = connectionMatcher(m);
  const rows: ConnectionInfo[] = [];
  for (const e of dataplane.listConntrack()) {
    if (e.value.dir !== CT_FORWARD || !match(e)) continue;
    const cursor = encodeConntrackKey(e.key).toString('hex');
    if (page.after !== undefined && cursor <= page.after) continue;
    rows.push({
      cursor,
      clientAddress: e.key.saddr,
      clientPort: e.key.sport,
      address: e.key.daddr,
      port: e.key.dport,
      protocol: e.key.protocol,
      backendAddress: e.value.natAddress,
      backendPort: e.value.natPort,
      serviceId: e.value.serviceId,
      ageMs: msSince(nowNs, e.value.createdNs),
      idleMs: msSince(nowNs, e.value.lastSeenNs),
    });
  }
  rows.sort((a, b) => (a.cursor < b.cursor ? -1 : a.cursor > b.cursor ? 1 : 0));
  return { connections: rows.slice(0, page.limit), more: rows.length > page.limit };
}

/** Delete both entries of every matching flow; returns how many flows (forward entries). */
export function flushConnections(dataplane: Dataplane, m: ConnectionMatch): number {
  const match = connectionMatcher(m);
  let flows = 0;
  dataplane.flushConntrack((e) => {
    if (!match(e)) return false;
    if (e.value.dir === CT_FORWARD) flows++;
    return true;
  });
  return flows;
}
