// Original file: proto/sluice/v1/operations.proto

import type { ServiceStats as _sluice_v1_ServiceStats, ServiceStats__Output as _sluice_v1_ServiceStats__Output } from '../../sluice/v1/ServiceStats.js';
import type { GlobalStats as _sluice_v1_GlobalStats, GlobalStats__Output as _sluice_v1_GlobalStats__Output } from '../../sluice/v1/GlobalStats.js';
import type { MapStats as _sluice_v1_MapStats, MapStats__Output as _sluice_v1_MapStats__Output } from '../../sluice/v1/MapStats.js';
import type { ConntrackGcStats as _sluice_v1_ConntrackGcStats, ConntrackGcStats__Output as _sluice_v1_ConntrackGcStats__Output } from '../../sluice/v1/ConntrackGcStats.js';

/**
 * Response of GetStats.
 */
export interface GetStatsResponse {
  /**
   * One entry per service (one, or all in name order).
   */
  'services'?: (_sluice_v1_ServiceStats)[];
  /**
   * The dataplane's global counters (all services and all traffic seen).
   */
  'globalStats'?: (_sluice_v1_GlobalStats | null);
  /**
   * How full each BPF map of the node is, and the kernel memory it takes,
   * when the request names no service (one name: none). Hash maps are
   * counted by walking them, exactly up to 262,144 entries and estimated
   * beyond (`estimated`).
   */
  'maps'?: (_sluice_v1_MapStats)[];
  /**
   * What the node's conntrack collector has deleted since the daemon
   * started; absent where no collector runs.
   */
  'conntrackGc'?: (_sluice_v1_ConntrackGcStats | null);
}

/**
 * Response of GetStats.
 */
export interface GetStatsResponse__Output {
  /**
   * One entry per service (one, or all in name order).
   */
  'services': (_sluice_v1_ServiceStats__Output)[];
  /**
   * The dataplane's global counters (all services and all traffic seen).
   */
  'globalStats': (_sluice_v1_GlobalStats__Output | null);
  /**
   * How full each BPF map of the node is, and the kernel memory it takes,
   * when the request names no service (one name: none). Hash maps are
   * counted by walking them, exactly up to 262,144 entries and estimated
   * beyond (`estimated`).
   */
  'maps': (_sluice_v1_MapStats__Output)[];
  /**
   * What the node's conntrack collector has deleted since the daemon
   * started; absent where no collector runs.
   */
  'conntrackGc': (_sluice_v1_ConntrackGcStats__Output | null);
}
