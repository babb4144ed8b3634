/**
 * The whole conntrack table, for tests: a walk with Dataplane.readConntrack,
 * the one way the control plane reads it (src/inspect/connections.ts).
 */
import { encodeConntrackKey } from '../../src/dataplane/codec.js';
import type { ConntrackCursor, ConntrackEntry, Dataplane } from '../../src/dataplane/dataplane.js';

/** Every conntrack entry, in the table's order. */
export function conntrackEntries(dp: Dataplane): ConntrackEntry[] {
  const out: ConntrackEntry[] = [];
  let at: ConntrackCursor | null = null;
  do {
    const { rows, next } = dp.readConntrack(at, 4096);
    for (let i = 0; i < rows.count; i++) out.push(rows.entry(i));
    at = next;
  } while (at !== null);
  return out;
}

/** Delete the entries `match` selects; returns how many. */
export function deleteConntrackWhere(dp: Dataplane, match: (e: ConntrackEntry) => boolean): number {
  return dp.deleteConntrack(conntrackEntries(dp).filter(match).map((e) => encodeConntrackKey(e.key)));
}
