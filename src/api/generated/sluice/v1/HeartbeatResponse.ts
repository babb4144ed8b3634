// Original file: proto/sluice/v1/registration.proto


/**
 * Response of Heartbeat.
 */
export interface HeartbeatResponse {
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
 * Response of Heartbeat.
 */
export interface HeartbeatResponse__Output {
  /**
   * The lease extended.
   */
  'leaseId': (string);
  /**
   * Its TTL: it now expires this many seconds from now.
   */
  'ttlSeconds': (number);
}
