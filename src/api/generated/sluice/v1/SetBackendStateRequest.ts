// Original file: proto/sluice/v1/registration.proto

import type { _sluice_v1_Backend_State, _sluice_v1_Backend_State__Output } from '../../sluice/v1/Backend.js';

/**
 * Request of SetBackendState.
 */
export interface SetBackendStateRequest {
  /**
   * REQUIRED. The service's name.
   */
  'service'?: (string);
  /**
   * REQUIRED. The backend's address.
   */
  'address'?: (string);
  /**
   * REQUIRED. The new state; STATE_UNSPECIFIED is rejected.
   */
  'state'?: (_sluice_v1_Backend_State);
}

/**
 * Request of SetBackendState.
 */
export interface SetBackendStateRequest__Output {
  /**
   * REQUIRED. The service's name.
   */
  'service': (string);
  /**
   * REQUIRED. The backend's address.
   */
  'address': (string);
  /**
   * REQUIRED. The new state; STATE_UNSPECIFIED is rejected.
   */
  'state': (_sluice_v1_Backend_State__Output);
}
