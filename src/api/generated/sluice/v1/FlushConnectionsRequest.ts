// Original file: proto/sluice/v1/operations.proto


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
}
