// Original file: proto/sluice/v1/registration.proto

import type { Service as _sluice_v1_Service, Service__Output as _sluice_v1_Service__Output } from '../../sluice/v1/Service.js';

/**
 * Response of RegisterBackend.
 */
export interface RegisterBackendResponse {
  /**
   * The lease to keep alive.
   */
  'leaseId'?: (string);
  /**
   * The lease's TTL in seconds.
   */
  'ttlSeconds'?: (number);
  /**
   * The service with the backend.
   */
  'service'?: (_sluice_v1_Service | null);
}

/**
 * Response of RegisterBackend.
 */
export interface RegisterBackendResponse__Output {
  /**
   * The lease to keep alive.
   */
  'leaseId': (string);
  /**
   * The lease's TTL in seconds.
   */
  'ttlSeconds': (number);
  /**
   * The service with the backend.
   */
  'service': (_sluice_v1_Service__Output | null);
}
