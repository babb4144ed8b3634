// Original file: proto/sluice/v1/service_registry.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Response of DeleteService.
 */
export interface DeleteServiceResponse {
  /**
   * The store revision of the deletion (the revision of its DELETE event).
   */
  'revision'?: (number | string | Long);
}

/**
 * Response of DeleteService.
 */
export interface DeleteServiceResponse__Output {
  /**
   * The store revision of the deletion (the revision of its DELETE event).
   */
  'revision': (string);
}
