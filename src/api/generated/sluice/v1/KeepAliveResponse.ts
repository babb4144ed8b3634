// Original file: proto/sluice/v1/registration.proto


/**
 * One message of KeepAlive from the server.
 */
export interface KeepAliveResponse {
  /**
   * The lease extended.
   */
  'leaseId'?: (string);
  /**
   * Its TTL: it now expires this many seconds from now.
   */
  'ttlSeconds'?: (number);
}

/**
 * One message of KeepAlive from the server.
 */
export interface KeepAliveResponse__Output {
  /**
   * The lease extended.
   */
  'leaseId': (string);
  /**
   * Its TTL: it now expires this many seconds from now.
   */
  'ttlSeconds': (number);
}
