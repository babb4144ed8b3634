/**
 * A dataplane found by its pins: the capacity a pin directory holds (the
 * daemon checks its flags against it before adopting the maps), and a
 * second instance of the object over those maps, never attached, through
 * which the tests and the benchmark read what a running daemon holds.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { SluiceError } from '../errors.js';
import { NativeDataplane, capacityOfMap, type DataplaneCapacity } from './native-dataplane.js';
import { native } from './native.js';

/** The pinned maps whose size a capacity flag sets. */
const SIZED_MAPS = ['conntrack', 'affinity', 'services', 'backends', 'maglev_slots'] as const;

/** The maps' sizes as the pins in `dir` have them (nothing for a map not pinned there). */
export function pinnedCapacity(dir: string): Partial<DataplaneCapacity> {
  const out: Partial<DataplaneCapacity> = {};
  for (const map of SIZED_MAPS) {
    const file = path.join(dir, map);
    if (!existsSync(file)) continue;
    const c = capacityOfMap(map, native().pinnedMapInfo(file).maxEntries);
    if (c) out[c[0]] = c[1];
  }
  return out;
}

/**
 * Open the maps pinned in `pinDir` at the sizes they have, to read them
 * from outside the daemon that owns them. Refuses a directory without
 * them (NOT_FOUND): loading would create and pin empty maps there. Close
 * it yourself.
 */
export async function openPinned(pinDir: string): Promise<NativeDataplane> {
  const missing = SIZED_MAPS.filter((map) => !existsSync(path.join(pinDir, map)));
  if (missing.length > 0) throw new SluiceError('NOT_FOUND', `no pinned dataplane in ${pinDir}: ${missing.join(', ')} not pinned there`);
  return NativeDataplane.open({ pinDir, capacity: pinnedCapacity(pinDir), fibRedirect: false });
}
