/**
 * The daemon's map capacities: their bounds and defaults, and the flags that
 * set them. Kept apart from the daemon so that the CLI can show them in
 * --help without loading the daemon.
 *
 * The defaults fit a small node: about 64 MiB of kernel memory for all the
 * maps on 2 CPUs (README: "Map sizes"). Each is one flag away from more.
 * The per-CPU counters of frontends and backends cost 32 bytes per id on
 * every possible CPU, so their share grows with the machine: a node with
 * many CPUs and few services can lower --max-frontends and --max-backends.
 */
import type { DataplaneCapacity } from '../dataplane/native-dataplane.js';
import type { PinnedMismatch } from '../dataplane/pinned.js';

/** Bounds of each capacity option, and its default. */
export const CAPACITY_RANGE: Readonly<Record<keyof DataplaneCapacity, { min: number; max: number; default: number }>> = {
  // 131,072 concurrent flows at two entries a flow (forward and reply):
  // preallocated, about 112 bytes an entry, 28 MiB. An LRU hash keeps
  // per-CPU free lists: far fewer entries than the minimum thrash.
  conntrack: { min: 1024, max: 1 << 28, default: 262_144 },
  // IPv6 flows, two entries each: 32,768 concurrent flows, about 128 bytes
  // an entry, 8 MiB. A quarter of the IPv4 table, since a node pays for
  // both whether or not it sees IPv6; an IPv6-heavy node raises it.
  conntrack6: { min: 1024, max: 1 << 28, default: 65_536 },
  // (client, service) pairs of ClientIP services: preallocated, about 104
  // bytes an entry, 6.5 MiB.
  affinity: { min: 1024, max: 1 << 26, default: 65_536 },
  // Service ids 1..16,383: a cluster of a few thousand services, each on a
  // cluster IP and a node port or two. Arrays of 16,384 (id 0 is "none"):
  // the per-CPU counters (32 bytes x CPUs) and the frontend of each id;
  // the services and vips hashes allocate entries as they are used.
  frontends: { min: 1, max: (1 << 24) - 1, default: 16_383 },
  // Backend ids 1..65,535, four backends per frontend on average: the
  // backends array (24 bytes) and per-CPU counters (32 bytes x CPUs).
  backends: { min: 1, max: (1 << 24) - 1, default: 65_535 },
  // 1,000 services of 1,021 slots (up to 10 backends each), each with room
  // for its next table written beside it: 2,097,152 slots of 4 bytes, 8 MiB.
  // The minimum holds one table of the largest size twice.
  maglevSlots: { min: 262_144, max: 1 << 30, default: 2_097_152 },
  // Sockets of the node's own processes connected (or sending) to a VIP at
  // once, for what getpeername()/recvmsg() report: LRU, about 88 bytes an
  // entry, 1.4 MiB.
  sockets: { min: 1024, max: 1 << 24, default: 16_384 },
};

/** The flag that sets each capacity, for messages. */
export const CAPACITY_FLAG: Readonly<Record<keyof DataplaneCapacity, string>> = {
  conntrack: '--conntrack-size',
  conntrack6: '--conntrack6-size',
  affinity: '--affinity-size',
  frontends: '--max-frontends',
  backends: '--max-backends',
  maglevSlots: '--maglev-slots',
  sockets: '--socket-lb-size',
};

/**
 * What the daemon says of pinned maps whose sizes disagree with the flags:
 * every one of them, each with the flag that sizes it (a person fixing one
 * flag at a time would otherwise meet them one by one), and the remedy.
 */
export function pinMismatchMessage(pinDir: string, odd: readonly PinnedMismatch[], capacity: Partial<DataplaneCapacity>): string {
  const each = odd.map((m) => `${m.map} has ${m.pinned} entries, ${CAPACITY_FLAG[m.capacity]} ${capacity[m.capacity]} gives it ${m.wanted}`);
  return `${odd.length === 1 ? 'the pinned map' : 'the pinned maps'} in ${pinDir}: ${each.join('; ')}: ` +
    '--reset-dataplane rebuilds the maps at the sizes of the flags (every connection is dropped)';
}
