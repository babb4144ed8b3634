// Original file: proto/sluice/v1/operations.proto

import type { IpFamily as _sluice_v1_IpFamily, IpFamily__Output as _sluice_v1_IpFamily__Output } from '../../sluice/v1/IpFamily.js';

/**
 * Request of FlushConnections. At least one filter, or `all`, is required.
 */
export interface FlushConnectionsRequest {
  /**
   * OPTIONAL. Only connections of this service.
   */
  'service'?: (string);
  /**
   * OPTIONAL. Only connections to this backend address.
   */
  'backendAddress'?: (string);
  /**
   * OPTIONAL. Only connections from this client address.
   */
  'clientAddress'?: (string);
  /**
   * OPTIONAL. Flush every connection (only without filters).
   */
  'all'?: (boolean);
  /**
   * OPTIONAL. Only connections of this address family. Unspecified: both.
   */
  'family'?: (_sluice_v1_IpFamily);
}

/**
 * Request of FlushConnections. At least one filter, or `all`, is required.
 */
export interface FlushConnectionsRequest__Output {
  /**
   * OPTIONAL. Only connections of this service.
   */
  'service': (string);
  /**
   * OPTIONAL. Only connections to this backend address.
   */
  'backendAddress': (string);
  /**
   * OPTIONAL. Only connections from this client address.
   */
  'clientAddress': (string);
  /**
   * OPTIONAL. Flush every connection (only without filters).
   */
  'all': (boolean);
  /**
   * OPTIONAL. Only connections of this address family. Unspecified: both.
   */
  'family': (_sluice_v1_IpFamily__Output);
}
