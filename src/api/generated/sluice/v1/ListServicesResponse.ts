// Original file: proto/sluice/v1/service_registry.proto

import type { Service as _sluice_v1_Service, Service__Output as _sluice_v1_Service__Output } from '../../sluice/v1/Service.js';
import type { Long } from '@grpc/proto-loader';

/**
 * Response of ListServices.
 */
export interface ListServicesResponse {
  /**
   * The services of this page, in name order.
   */
  'services'?: (_sluice_v1_Service)[];
  /**
   * Token of the next page; empty on the last page.
   */
  'nextPageToken'?: (string);
  /**
   * The store revision this page was read at. Pages are read separately: a
   * change between two pages shows in the later one only.
   */
  'revision'?: (number | string | Long);
}

/**
 * Response of ListServices.
 */
export interface ListServicesResponse__Output {
  /**
   * The services of this page, in name order.
   */
  'services': (_sluice_v1_Service__Output)[];
  /**
   * Token of the next page; empty on the last page.
   */
  'nextPageToken': (string);
  /**
   * The store revision this page was read at. Pages are read separately: a
   * change between two pages shows in the later one only.
   */
  'revision': (string);
}
