// Original file: proto/sluice/v1/service_registry.proto


/**
 * Request of GetService.
 */
export interface GetServiceRequest {
  /**
   * REQUIRED. The service's name.
   */
  'name'?: (string);
}

/**
 * Request of GetService.
 */
export interface GetServiceRequest__Output {
  /**
   * REQUIRED. The service's name.
   */
  'name': (string);
}
