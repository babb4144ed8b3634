// Original file: proto/sluice/v1/service_registry.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Request of DeleteService.
 */
export interface DeleteServiceRequest {
  /**
   * REQUIRED. The service's name.
   */
  'name'?: (string);
  /**
   * OPTIONAL. Compare-and-set: delete only if the service's current revision
   * is this (FAILED_PRECONDITION otherwise). Unset: unconditionally.
   */
  'expectedRevision'?: (number | string | Long);
  '_expectedRevision'?: "expectedRevision";
}

/**
 * Request of DeleteService.
 */
export interface DeleteServiceRequest__Output {
  /**
   * REQUIRED. The service's name.
   */
  'name': (string);
  /**
   * OPTIONAL. Compare-and-set: delete only if the service's current revision
   * is this (FAILED_PRECONDITION otherwise). Unset: unconditionally.
   */
  'expectedRevision'?: (string);
  '_expectedRevision'?: "expectedRevision";
}
