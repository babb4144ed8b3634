// Original file: proto/sluice/v1/operations.proto

import type { Long } from '@grpc/proto-loader';

/**
 * How full one BPF map is.
 */
export interface MapStats {
  /**
   * The map's name, as in the pin directory (conntrack, svc_stats, ...).
   */
  'name'?: (string);
  /**
   * Entries in use: counted in a hash map; in an array, the ids in use
   * (services, backends) or, for maglev_slots, the slots of live tables.
   */
  'entries'?: (number);
  /**
   * The entries it holds (max_entries; for maglev_slots, slots).
   */
  'maxEntries'?: (number);
  /**
   * Kernel memory, bytes: the kernel's own figure (memlock in the map's
   * fdinfo); 0 where the kernel gives none.
   */
  'bytes'?: (number | string | Long);
  /**
   * The capacity that sizes it, as a daemon flag names it (conntrack,
   * affinity, frontends, backends, maglevSlots, sockets); empty for a map
   * of fixed size.
   */
  'capacity'?: (string);
  /**
   * `entries` is an estimate from part of a large hash map.
   */
  'estimated'?: (boolean);
}

/**
 * How full one BPF map is.
 */
export interface MapStats__Output {
  /**
   * The map's name, as in the pin directory (conntrack, svc_stats, ...).
   */
  'name': (string);
  /**
   * Entries in use: counted in a hash map; in an array, the ids in use
   * (services, backends) or, for maglev_slots, the slots of live tables.
   */
  'entries': (number);
  /**
   * The entries it holds (max_entries; for maglev_slots, slots).
   */
  'maxEntries': (number);
  /**
   * Kernel memory, bytes: the kernel's own figure (memlock in the map's
   * fdinfo); 0 where the kernel gives none.
   */
  'bytes': (string);
  /**
   * The capacity that sizes it, as a daemon flag names it (conntrack,
   * affinity, frontends, backends, maglevSlots, sockets); empty for a map
   * of fixed size.
   */
  'capacity': (string);
  /**
   * `entries` is an estimate from part of a large hash map.
   */
  'estimated': (boolean);
}
