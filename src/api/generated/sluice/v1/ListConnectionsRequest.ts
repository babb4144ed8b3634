// Original file: proto/sluice/v1/operations.proto

import type { ConnectionState as _sluice_v1_ConnectionState, ConnectionState__Output as _sluice_v1_ConnectionState__Output } from '../../sluice/v1/ConnectionState.js';
import type { IpFamily as _sluice_v1_IpFamily, IpFamily__Output as _sluice_v1_IpFamily__Output } from '../../sluice/v1/IpFamily.js';

/**
 * Request of ListConnections.
 */
export interface ListConnectionsRequest {
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
   * OPTIONAL. Most connections to return, 0..1000. 0: 100; larger values
   * are coerced to 1000.
   */
  'pageSize'?: (number);
  /**
   * OPTIONAL. `next_page_token` of the previous page; the filters must be
   * the same. The token holds a position in this node's connection table:
   * it is good for this node only.
   */
  'pageToken'?: (string);
  /**
   * OPTIONAL. Only connections in this state. Unspecified: every state.
   */
  'state'?: (_sluice_v1_ConnectionState);
  /**
   * OPTIONAL. Only connections of this address family (IPv4 flows and IPv6
   * flows are kept in two tables). Unspecified: both, IPv4's first. An
   * address filter of the other family is INVALID_ARGUMENT.
   */
  'family'?: (_sluice_v1_IpFamily);
}

/**
 * Request of ListConnections.
 */
export interface ListConnectionsRequest__Output {
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
   * OPTIONAL. Most connections to return, 0..1000. 0: 100; larger values
   * are coerced to 1000.
   */
  'pageSize': (number);
  /**
   * OPTIONAL. `next_page_token` of the previous page; the filters must be
   * the same. The token holds a position in this node's connection table:
   * it is good for this node only.
   */
  'pageToken': (string);
  /**
   * OPTIONAL. Only connections in this state. Unspecified: every state.
   */
  'state': (_sluice_v1_ConnectionState__Output);
  /**
   * OPTIONAL. Only connections of this address family (IPv4 flows and IPv6
   * flows are kept in two tables). Unspecified: both, IPv4's first. An
   * address filter of the other family is INVALID_ARGUMENT.
   */
  'family': (_sluice_v1_IpFamily__Output);
}
