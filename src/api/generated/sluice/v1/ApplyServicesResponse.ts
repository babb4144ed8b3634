// Original file: proto/sluice/v1/service_registry.proto

import type { Service as _sluice_v1_Service, Service__Output as _sluice_v1_Service__Output } from '../../sluice/v1/Service.js';
import type { Long } from '@grpc/proto-loader';

/**
 * Response of ApplyServices.
 */
export interface ApplyServicesResponse {
  /**
   * The applied services, in request order, with their revisions (the
   * batch's revision for those it changed).
   */
  'services'?: (_sluice_v1_Service)[];
  /**
   * The store revision after the batch.
   */
  'revision'?: (number | string | Long);
  /**
   * Names of the requested services that were already exactly as requested:
   * they keep their revision, and no event is sent for them. A batch whose
   * services are all unchanged makes no revision at all.
   */
  'unchanged'?: (string)[];
}

/**
 * Response of ApplyServices.
 */
export interface ApplyServicesResponse__Output {
  /**
   * The applied services, in request order, with their revisions (the
   * batch's revision for those it changed).
   */
  'services': (_sluice_v1_Service__Output)[];
  /**
   * The store revision after the batch.
   */
  'revision': (string);
  /**
   * Names of the requested services that were already exactly as requested:
   * they keep their revision, and no event is sent for them. A batch whose
   * services are all unchanged makes no revision at all.
   */
  'unchanged': (string)[];
}
