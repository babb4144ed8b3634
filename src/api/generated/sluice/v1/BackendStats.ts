// Original file: proto/sluice/v1/operations.proto

import type { _sluice_v1_Backend_State, _sluice_v1_Backend_State__Output } from '../../sluice/v1/Backend.js';
import type { Counters as _sluice_v1_Counters, Counters__Output as _sluice_v1_Counters__Output } from '../../sluice/v1/Counters.js';

/**
 * Counters of one backend of a service.
 */
export interface BackendStats {
  /**
   * The backend's address.
   */
  'address'?: (string);
  /**
   * Its state.
   */
  'state'?: (_sluice_v1_Backend_State);
  /**
   * Its counters, summed over the service's frontends.
   */
  'counters'?: (_sluice_v1_Counters | null);
}

/**
 * Counters of one backend of a service.
 */
export interface BackendStats__Output {
  /**
   * The backend's address.
   */
  'address': (string);
  /**
   * Its state.
   */
  'state': (_sluice_v1_Backend_State__Output);
  /**
   * Its counters, summed over the service's frontends.
   */
  'counters': (_sluice_v1_Counters__Output | null);
}
