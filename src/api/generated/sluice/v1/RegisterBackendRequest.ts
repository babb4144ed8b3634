// Original file: proto/sluice/v1/registration.proto


/**
 * Request of RegisterBackend.
 */
export interface RegisterBackendRequest {
  /**
   * REQUIRED. The service's name.
   */
  'service'?: (string);
  /**
   * REQUIRED. The backend's IPv4 or IPv6 address (RFC 5952 form on output),
   * of the family of one of the service's VIPs. If the service already has it, the
   * backend is taken over by the lease (its state is kept).
   */
  'address'?: (string);
  /**
   * OPTIONAL. Weight 0..1000. Unset: the backend's current weight, or 1.
   */
  'weight'?: (number);
  /**
   * OPTIONAL. TTL of a new lease, 1..86400 seconds. 0: 10 seconds. Ignored
   * when `lease_id` is set.
   */
  'ttlSeconds'?: (number);
  /**
   * OPTIONAL. An existing live lease to register under (one lease may carry
   * several backends, e.g. all those of one node). Empty: a new lease.
   */
  'leaseId'?: (string);
  '_weight'?: "weight";
}

/**
 * Request of RegisterBackend.
 */
export interface RegisterBackendRequest__Output {
  /**
   * REQUIRED. The service's name.
   */
  'service': (string);
  /**
   * REQUIRED. The backend's IPv4 or IPv6 address (RFC 5952 form on output),
   * of the family of one of the service's VIPs. If the service already has it, the
   * backend is taken over by the lease (its state is kept).
   */
  'address': (string);
  /**
   * OPTIONAL. Weight 0..1000. Unset: the backend's current weight, or 1.
   */
  'weight'?: (number);
  /**
   * OPTIONAL. TTL of a new lease, 1..86400 seconds. 0: 10 seconds. Ignored
   * when `lease_id` is set.
   */
  'ttlSeconds': (number);
  /**
   * OPTIONAL. An existing live lease to register under (one lease may carry
   * several backends, e.g. all those of one node). Empty: a new lease.
   */
  'leaseId': (string);
  '_weight'?: "weight";
}
