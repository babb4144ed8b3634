/**
 * The dataplane as the control plane sees it: typed operations on the BPF
 * maps. Two implementations share this interface: NativeDataplane (the
 * addon, real maps) and FakeDataplane (memory, for unit tests).
 */
import type { StatsTable } from './stats-table.js';
import type {
  AffinityValue,
  BackendValue,
  ConntrackKey,
  ConntrackValue,
  IpFamily,
  EndpointKey,
  GlobalCounter,
  LbStats,
  ServiceKey,
  ServiceValue,
} from './codec.js';
import type { ConntrackRows } from './conntrack-rows.js';

/** Where and how to attach the programs. */
export interface AttachTarget {
  /** Interface name, e.g. "eth0". */
  ifname: string;
  /** Network namespace path (e.g. /var/run/netns/lb) when not the current one. */
  netns?: string;
  /** xdp (native), xdp-generic (skb mode) or tc (clsact ingress). */
  mode: AttachMode;
  /**
   * tc only: at clsact egress too, for traffic that reaches the interface
   * through the stack (a pod's link: the replies of backends reached
   * through routing, restored on their way into the pod).
   */
  egress?: boolean;
}

/** How the programs are attached to an interface. */
export type AttachMode = 'xdp' | 'xdp-generic' | 'tc';

/** One conntrack entry. */
export interface ConntrackEntry {
  key: ConntrackKey;
  value: ConntrackValue;
}

/** A packet to ask the dataplane about (lookupFlow): its 5-tuple as it arrives. */
export interface FlowPacket extends ConntrackKey {
  /** TCP: a SYN without ACK (a new connection on the tuple); default an ACK, a packet of an established flow. */
  syn?: boolean;
}

/**
 * What the dataplane does with a packet: forwards it to a backend found by
 * its CONNTRACK entry, by ClientIP AFFINITY or by MAGLEV; drops it, its
 * service having NO_BACKEND or its VIP NO_SERVICE on that port and
 * protocol; restores it as a backend's REPLY; or lets it PASS (not ours).
 */
export type FlowOutcome = 'CONNTRACK' | 'AFFINITY' | 'MAGLEV' | 'NO_BACKEND' | 'TUPLE_CLASH' | 'NO_SERVICE' | 'REPLY' | 'PASS';

/** The dataplane's decision for one packet (lookupFlow). */
export interface FlowDecision {
  outcome: FlowOutcome;
  /** The service the decision went by (the entry's, for CONNTRACK and REPLY), else the one on the packet's destination; 0: none. */
  serviceId: number;
  /** The backend the packet goes to (CONNTRACK, AFFINITY, MAGLEV) or whose reply it is (REPLY); else 0. */
  backendId: number;
  /** The rewrite: the backend's address and port (CONNTRACK, AFFINITY, MAGLEV), or the VIP and port a REPLY's source becomes. */
  rewrite?: { address: string; port: number };
  /** A forward entry was found but not followed (its backend gone or changed, or draining under a SYN): the flow is placed again. */
  rescheduled: boolean;
  /** A REPLY without an entry, restored through reply_nat. */
  replyRestored: boolean;
  /** PASS: a reply without an entry from an endpoint of several service ports, which cannot be restored. */
  replyAmbiguous: boolean;
  /** The packet's entry was dead (idle past its timeout): judged as if there were none. */
  ctExpired: boolean;
  /** The packet's entry was a reply entry whose backend is no longer its own: a packet removes it and is judged without it. */
  replyStale: boolean;
  /** The flow hash of the 5-tuple. */
  hash: number;
  /** The Maglev table size of the service on the packet's destination; 0: none. */
  tableSize: number;
  /** maglevSlot(hash, tableSize) (0 without a table): the flow's slot, whatever the outcome. */
  slot: number;
}

/**
 * Where a walk over the conntrack table stands: CONNTRACK_CURSOR_SIZE
 * opaque bytes from readConntrack. It is the kernel's batch cursor of a
 * hash map, a bucket index; any such bytes are safe to pass back (one past
 * the table ends the walk).
 */
export type ConntrackCursor = Buffer;

/** Bytes of a ConntrackCursor. */
export const CONNTRACK_CURSOR_SIZE = 4;

/** One step of a walk over the conntrack table. */
export interface ConntrackBatch {
  rows: ConntrackRows;
  /** Where the walk goes on; null once it has read the last entry. */
  next: ConntrackCursor | null;
}

/** How full one map is (Dataplane.mapOccupancy). */
export interface MapOccupancy {
  /** The map's name, as in bpf/include/maps.h and the pin directory. */
  map: string;
  /**
   * Entries in use: counted in a hash map; in an array, the ids in use
   * (services, backends) or, for maglev_slots, the slots of live tables.
   */
  entries: number;
  /** The count is an estimate: a hash map larger than the walk's budget (see NativeDataplane.mapOccupancy). */
  estimated?: boolean;
  /** Entries it holds (max_entries); for maglev_slots, slots (two an element). */
  maxEntries: number;
  /** Kernel memory, bytes: the kernel's own figure (fdinfo memlock); 0 where it gives none. */
  bytes: number;
  /** The capacity that sizes it (DataplaneCapacity's name), or undefined for a fixed size. */
  capacity?: string;
}

/** Typed access to the load balancer's maps. */
export interface Dataplane {
  /** Create or replace the entry of one service port (and its id's frontend, for reply_nat). */
  putService(key: ServiceKey, value: ServiceValue): void;
  /** Remove a service port; false if it was not there. */
  deleteService(key: ServiceKey): boolean;
  /** Every service port. */
  listServices(): Array<{ key: ServiceKey; value: ServiceValue }>;
  /** Mark addresses as VIPs (each with the number of service ports on it), in one batch. */
  putVips(entries: ReadonlyArray<{ address: string; services: number }>): void;
  /** Unmark a VIP. */
  deleteVip(address: string): boolean;
  /** Every VIP. */
  listVips(): string[];
  /** Create or replace a backend. */
  putBackend(id: number, value: BackendValue): void;
  /** Create or replace many backends at once (one batched syscall where the kernel allows). */
  putBackends(entries: ReadonlyArray<readonly [number, BackendValue]>): void;
  /** Create or replace many service entries at once. */
  putServices(entries: ReadonlyArray<{ key: ServiceKey; value: ServiceValue }>): void;
  /** Delete a backend: flows that used it are rescheduled. */
  deleteBackend(id: number): boolean;
  /** Every backend. */
  listBackends(): Map<number, BackendValue>;
  /**
   * Create or replace reply_nat entries: endpoint (endpointKey) -> the
   * backend id that endpoint is, or 0 for an endpoint of several service
   * ports; one batch.
   */
  putReplies(entries: ReadonlyArray<readonly [EndpointKey, number]>): void;
  /** Remove the reply_nat entry of an endpoint; false if it was not there. */
  deleteReply(endpoint: EndpointKey): boolean;
  /** Every reply_nat entry: endpoint key -> backend id (0: ambiguous). */
  listReplies(): Map<EndpointKey, number>;
  /** Slots of the array that holds every Maglev table. */
  tableCapacity(): number;
  /** Ids the maps have room for: service ids are 1..services, backend ids 1..backends. */
  idCapacity(): { services: number; backends: number };
  /**
   * Write Maglev tables (backend id per slot), each to the region starting
   * at its `base`: one mapping of the array where they lie close together.
   * Every region is checked before anything is written.
   */
  writeTables(tables: ReadonlyArray<{ base: number; table: Uint32Array }>): void;
  /** Read the region [base, base + size). */
  readTable(base: number, size: number): Uint32Array;
  /** The Maglev table a service uses now (found through its service entry), or null. */
  getMaglevTable(serviceId: number): Uint32Array | null;
  /** One conntrack entry, or null; from the table of the key's family. */
  getConntrack(key: ConntrackKey): ConntrackValue | null;
  /**
   * One conntrack entry by its encoded key (struct ct_key, or ct6_key: the
   * length says the table), as its encoded value, or null (nothing
   * decoded: for walks over the whole table).
   */
  lookupConntrack(key: Buffer): Buffer | null;
  /** The affinity entry of a client of a service, or null. */
  getAffinity(client: string, serviceId: number): AffinityValue | null;
  /**
   * What the dataplane would do with this packet now, decided by its own
   * code (bpf/include/lb.h) without doing it: nothing is written, no
   * entry, no counter.
   */
  lookupFlow(packet: FlowPacket): FlowDecision;
  /**
   * One step of a walk over one conntrack table (`family` 4: conntrack,
   * the default; 6: conntrack6), in the table's own order
   * (hash buckets, no sort order): whole buckets from `cursor` on (null:
   * the start), at most `max` entries unless the first bucket alone holds
   * more (then that bucket alone). The walk holds nothing between steps,
   * and while the table changes under it: an entry present for the whole
   * walk is read exactly once (a key stays in its bucket, and the buckets
   * behind the cursor are never read again); one added or deleted meanwhile
   * may or may not be read; a deleted entry neither fails the walk nor
   * restarts it (a walk by bpf_map_get_next_key would: given a key that is
   * gone, it answers with the table's first key).
   */
  readConntrack(cursor: ConntrackCursor | null, max: number, family?: IpFamily): ConntrackBatch;
  /**
   * Delete conntrack entries by key (encoded struct ct_key or ct6_key, e.g.
   * ConntrackRows.keyBytes; each from the table its length says); missing
   * ones are skipped. Returns how many were deleted.
   */
  deleteConntrack(keys: readonly Buffer[]): number;
  /** Per-service counters summed over CPUs. */
  serviceStats(serviceId: number): LbStats;
  /** Per-backend counters summed over CPUs. */
  backendStats(backendId: number): LbStats;
  /**
   * Every id's counters of svc_stats ('service') or backend_stats
   * ('backend'), summed over CPUs, in one batch read of the map: equal to
   * serviceStats/backendStats of each id at the same moment.
   */
  allStats(kind: 'service' | 'backend'): StatsTable;
  /** Zero the counters of service or backend ids (before the ids are given to new objects). */
  resetStats(kind: 'service' | 'backend', ids: readonly number[]): void;
  /** Global verdict and drop counters summed over CPUs. */
  globalStats(): Record<GlobalCounter, bigint>;
  /**
   * How full each map of the object is and the kernel memory it takes.
   * Hash maps are counted by a batch walk off the JS
   * thread, exact up to a budget of entries and estimated beyond; arrays
   * by the ids or slots in use.
   */
  mapOccupancy(): Promise<MapOccupancy[]>;
  /**
   * The address a flow whose client is its own backend (hairpin) is
   * source-NATed to, one per family (IPv4 by default: node_config; IPv6:
   * node_config6), or null when such flows of that family are only DNATed.
   */
  hairpinAddress(family?: IpFamily): string | null;
  /**
   * Set it, or turn it off (null), for new hairpin flows and the next
   * packets of established ones (bpf/include/hairpin.h). The family is the
   * address's; turning off takes it (default IPv4).
   */
  setHairpinAddress(address: string | null, family?: IpFamily): void;
  /**
   * Attach the programs to an interface. A hook that holds a program that
   * is not this dataplane's (another sluice's, another tool's) is refused
   * (FAILED_PRECONDITION naming it) unless `force`; this dataplane's own
   * program in another hook of the interface (an earlier --mode) is
   * detached.
   */
  attach(target: AttachTarget, opts?: { force?: boolean }): unknown;
  /** Whether this dataplane's program is in the target's hook now. */
  isAttached(target: AttachTarget): boolean;
  /** Detach them (and remove the clsact hook for tc). */
  detach(target: AttachTarget): void;
  /** Release the maps and programs; attachments stay (the kernel keeps forwarding). */
  close(): void;
}
