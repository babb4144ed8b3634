/**
 * A dataplane found by its pins: the capacity a pin directory holds (the
 * daemon checks its flags against it before adopting the maps), and a
 * second instance of the object over those maps, never attached, through
 * which the tests and the benchmark read what a running daemon holds.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { SluiceError } from '../errors.js';
import { CAPACITY_MAPS, NativeDataplane, capacityOfMap, mapSizes, type DataplaneCapacity } from './native-dataplane.js';
import { native } from './native.js';

/** One pinned map of each capacity, whose size says it. */
const SIZED_MAPS = Object.values(CAPACITY_MAPS).map((maps) => maps[0]!);

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

/** A pinned map whose size is not the one a capacity gives it. */
export interface PinnedMismatch {
  map: string;
  capacity: keyof DataplaneCapacity;
  /** max_entries of the pin. */
  pinned: number;
  /** max_entries the capacity gives. */
  wanted: number;
}

/**
 * The maps pinned in `dir` whose size differs from what `capacity` gives
 * them. libbpf refuses to reuse such a pin (its load fails with EINVAL,
 * "parameter mismatch"), so the daemon looks first, to name the flag: the
 * maps of one capacity can disagree when they were pinned by a build that
 * sized some of them at compile time.
 */
export function pinnedMismatches(dir: string, capacity: Partial<DataplaneCapacity>): PinnedMismatch[] {
  const out: PinnedMismatch[] = [];
  for (const [map, wanted] of Object.entries(mapSizes(capacity))) {
    const file = path.join(dir, map);
    if (!existsSync(file)) continue;
    const pinned = native().pinnedMapInfo(file).maxEntries;
    if (pinned !== wanted) out.push({ map, capacity: capacityOfMap(map, wanted)![0], pinned, wanted });
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
  // conntrack6 is not asked for: a dataplane pinned before IPv6 lacks it,
  // and opening creates it there as the daemon itself does.
  const missing = SIZED_MAPS.filter((map) => map !== 'conntrack6' && !existsSync(path.join(pinDir, map)));
  if (missing.length > 0) throw new SluiceError('NOT_FOUND', `no pinned dataplane in ${pinDir}: ${missing.join(', ')} not pinned there`);
  return NativeDataplane.open({ pinDir, capacity: pinnedCapacity(pinDir), fibRedirect: false, observer: true });
}
