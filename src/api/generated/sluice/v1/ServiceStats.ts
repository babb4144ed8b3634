// Original file: proto/sluice/v1/operations.proto

import type { Counters as _sluice_v1_Counters, Counters__Output as _sluice_v1_Counters__Output } from '../../sluice/v1/Counters.js';
import type { FrontendStats as _sluice_v1_FrontendStats, FrontendStats__Output as _sluice_v1_FrontendStats__Output } from '../../sluice/v1/FrontendStats.js';
import type { BackendStats as _sluice_v1_BackendStats, BackendStats__Output as _sluice_v1_BackendStats__Output } from '../../sluice/v1/BackendStats.js';

/**
 * Counters of one service.
 */
export interface ServiceStats {
  /**
   * The service's name.
   */
  'name'?: (string);
  /**
   * The sum over its frontends.
   */
  'counters'?: (_sluice_v1_Counters | null);
  /**
   * One entry per (VIP, port, protocol).
   */
  'frontends'?: (_sluice_v1_FrontendStats)[];
  /**
   * One entry per backend (summed over the frontends), in the service's
   * order; MAINTENANCE backends have none (they are not in the dataplane).
   */
  'backends'?: (_sluice_v1_BackendStats)[];
}

/**
 * Counters of one service.
 */
export interface ServiceStats__Output {
  /**
   * The service's name.
   */
  'name': (string);
  /**
   * The sum over its frontends.
   */
  'counters': (_sluice_v1_Counters__Output | null);
  /**
   * One entry per (VIP, port, protocol).
   */
  'frontends': (_sluice_v1_FrontendStats__Output)[];
  /**
   * One entry per backend (summed over the frontends), in the service's
   * order; MAINTENANCE backends have none (they are not in the dataplane).
   */
  'backends': (_sluice_v1_BackendStats__Output)[];
}
