// Original file: proto/sluice/v1/service_registry.proto

import type { ApplyServiceRequest as _sluice_v1_ApplyServiceRequest, ApplyServiceRequest__Output as _sluice_v1_ApplyServiceRequest__Output } from '../../sluice/v1/ApplyServiceRequest.js';
import type { ServiceView as _sluice_v1_ServiceView, ServiceView__Output as _sluice_v1_ServiceView__Output } from '../../sluice/v1/ServiceView.js';

/**
 * Request of ApplyServices.
 */
export interface ApplyServicesRequest {
  /**
   * REQUIRED. The services to apply, at least one, at most 100000, each name
   * at most once. Each item is checked as ApplyService would check it. What
   * the dataplane holds in all is the daemon's capacity (--max-frontends,
   * --max-backends, --maglev-slots): a batch beyond it is RESOURCE_EXHAUSTED,
   * naming the flag, and applies nothing.
   */
  'requests'?: (_sluice_v1_ApplyServiceRequest)[];
  /**
   * OPTIONAL. How much of each applied service the response carries.
   * Unspecified: FULL. A bulk loader that only needs the revisions asks for
   * BASIC and saves encoding every backend back to it.
   */
  'view'?: (_sluice_v1_ServiceView);
}

/**
 * Request of ApplyServices.
 */
export interface ApplyServicesRequest__Output {
  /**
   * REQUIRED. The services to apply, at least one, at most 100000, each name
   * at most once. Each item is checked as ApplyService would check it. What
   * the dataplane holds in all is the daemon's capacity (--max-frontends,
   * --max-backends, --maglev-slots): a batch beyond it is RESOURCE_EXHAUSTED,
   * naming the flag, and applies nothing.
   */
  'requests': (_sluice_v1_ApplyServiceRequest__Output)[];
  /**
   * OPTIONAL. How much of each applied service the response carries.
   * Unspecified: FULL. A bulk loader that only needs the revisions asks for
   * BASIC and saves encoding every backend back to it.
   */
  'view': (_sluice_v1_ServiceView__Output);
}
