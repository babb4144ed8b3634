// Original file: proto/sluice/v1/registration.proto


/**
 * One message of KeepAlive from the client.
 */
export interface KeepAliveRequest {
  /**
   * REQUIRED. The lease to extend.
   */
  'leaseId'?: (string);
}

/**
 * One message of KeepAlive from the client.
 */
export interface KeepAliveRequest__Output {
  /**
   * REQUIRED. The lease to extend.
   */
  'leaseId': (string);
}
