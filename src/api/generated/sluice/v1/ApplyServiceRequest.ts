// Original file: proto/sluice/v1/service_registry.proto

import type { Service as _sluice_v1_Service, Service__Output as _sluice_v1_Service__Output } from '../../sluice/v1/Service.js';
import type { Long } from '@grpc/proto-loader';

/**
 * Request of ApplyService, and one item of ApplyServices.
 */
export interface ApplyServiceRequest {
  /**
   * REQUIRED. The desired service. Its OUTPUT_ONLY fields are ignored.
   */
  'service'?: (_sluice_v1_Service | null);
  /**
   * OPTIONAL. Compare-and-set: unset writes unconditionally; 0 creates only
   * (ALREADY_EXISTS if the service exists); n > 0 writes only if the
   * service's current revision is n (FAILED_PRECONDITION otherwise).
   */
  'expectedRevision'?: (number | string | Long);
  '_expectedRevision'?: "expectedRevision";
}

/**
 * Request of ApplyService, and one item of ApplyServices.
 */
export interface ApplyServiceRequest__Output {
  /**
   * REQUIRED. The desired service. Its OUTPUT_ONLY fields are ignored.
   */
  'service': (_sluice_v1_Service__Output | null);
  /**
   * OPTIONAL. Compare-and-set: unset writes unconditionally; 0 creates only
   * (ALREADY_EXISTS if the service exists); n > 0 writes only if the
   * service's current revision is n (FAILED_PRECONDITION otherwise).
   */
  'expectedRevision'?: (string);
  '_expectedRevision'?: "expectedRevision";
}
