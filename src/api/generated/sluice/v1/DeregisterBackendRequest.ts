// Original file: proto/sluice/v1/registration.proto


/**
 * Request of DeregisterBackend.
 */
export interface DeregisterBackendRequest {
  /**
   * REQUIRED. The service's name.
   */
  'service'?: (string);
  /**
   * REQUIRED. The backend's address.
   */
  'address'?: (string);
}

/**
 * Request of DeregisterBackend.
 */
export interface DeregisterBackendRequest__Output {
  /**
   * REQUIRED. The service's name.
   */
  'service': (string);
  /**
   * REQUIRED. The backend's address.
   */
  'address': (string);
}
