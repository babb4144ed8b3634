// Original file: proto/sluice/v1/service.proto


/**
 * ClientIP session affinity: new flows from a client go to the backend its
 * last flow went to, while the client is not idle longer than the timeout.
 */
export interface SessionAffinity {
  /**
   * REQUIRED. Idle seconds after which a client loses its backend,
   * 1..86400 (Kubernetes uses 10800).
   */
  'timeoutSeconds'?: (number);
}

/**
 * ClientIP session affinity: new flows from a client go to the backend its
 * last flow went to, while the client is not idle longer than the timeout.
 */
export interface SessionAffinity__Output {
  /**
   * REQUIRED. Idle seconds after which a client loses its backend,
   * 1..86400 (Kubernetes uses 10800).
   */
  'timeoutSeconds': (number);
}
