// Original file: proto/sluice/v1/registration.proto


/**
 * Request of Heartbeat.
 */
export interface HeartbeatRequest {
  /**
   * REQUIRED. The lease to extend.
   */
  'leaseId'?: (string);
}

/**
 * Request of Heartbeat.
 */
export interface HeartbeatRequest__Output {
  /**
   * REQUIRED. The lease to extend.
   */
  'leaseId': (string);
}
