/**
 * The daemon's map capacities: their bounds and defaults, and the flags that
 * set them. Kept apart from the daemon so that the CLI can show them in
 * --help without loading the daemon.
 */
import type { DataplaneCapacity } from '../dataplane/native-dataplane.js';

/** Bounds of each capacity option. */
export const CAPACITY_RANGE: Readonly<Record<keyof DataplaneCapacity, { min: number; max: number; default: number }>> = {
  // An LRU hash keeps per-CPU free lists: far fewer entries than that thrash.
  conntrack: { min: 1024, max: 1 << 28, default: 2_097_152 },
  affinity: { min: 1024, max: 1 << 26, default: 262_144 },
  frontends: { min: 1, max: (1 << 24) - 1, default: 65_535 },
  backends: { min: 1, max: (1 << 24) - 1, default: 131_071 },
  // At least one table of the largest size, with room to replace it.
  maglevSlots: { min: 262_144, max: 1 << 30, default: 16_777_216 },
};

/** The flag that sets each capacity, for messages. */
export const CAPACITY_FLAG: Readonly<Record<keyof DataplaneCapacity, string>> = {
  conntrack: '--conntrack-size',
  affinity: '--affinity-size',
  frontends: '--max-frontends',
  backends: '--max-backends',
  maglevSlots: '--maglev-slots',
};

