/**
 * Read a running daemon's dataplane from outside: its pinned maps, opened
 * by a second (never attached) instance of the object (openPinned, from
 * src/dataplane/pinned.ts, which the benchmark uses too). The tables are
 * compared by backend address, not id: ids are each node's own.
 */
import type { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { openPinned } from '../../src/dataplane/pinned.js';
import { serviceKeyString } from '../../src/dataplane/codec.js';

export { openPinned };

/**
 * Every frontend's Maglev table as the maps hold it: "VIP:port/protocol" ->
 * the backend "address:port" in each slot ([] without a table).
 */
export function tablesOf(dp: NativeDataplane): Map<string, string[]> {
  const backends = dp.listBackends();
  const out = new Map<string, string[]>();
  for (const { key, value } of dp.listServices()) {
    const slots = value.tableSize === 0 ? new Uint32Array(0) : dp.readTable(value.tableBase, value.tableSize);
    out.set(serviceKeyString(key), Array.from(slots, (id) => {
      const b = backends.get(id);
      return b ? `${b.address}:${b.port}` : `missing backend id ${id}`;
    }));
  }
  return out;
}

/** The tables of the daemons pinned in each of `pinDirs`, in order. */
export async function tablesOfPins(pinDirs: readonly string[]): Promise<Array<Map<string, string[]>>> {
  const out: Array<Map<string, string[]>> = [];
  for (const dir of pinDirs) {
    const dp = await openPinned(dir);
    try {
      out.push(tablesOf(dp));
    } finally {
      dp.close();
    }
  }
  return out;
}
