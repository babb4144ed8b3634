// Original file: proto/sluice/v1/service_registry.proto


/**
 * Request of ListServices.
 */
export interface ListServicesRequest {
  /**
   * OPTIONAL. Most services to return, 0..1000. 0: 100; larger values are
   * coerced to 1000. A page may hold fewer even when more follow.
   */
  'pageSize'?: (number);
  /**
   * OPTIONAL. `next_page_token` of the previous page. The other fields of
   * the request must be the same as for that page (INVALID_ARGUMENT
   * otherwise).
   */
  'pageToken'?: (string);
  /**
   * OPTIONAL. Only services whose name starts with this.
   */
  'namePrefix'?: (string);
  /**
   * OPTIONAL. Only services that have this VIP among their addresses.
   */
  'address'?: (string);
}

/**
 * Request of ListServices.
 */
export interface ListServicesRequest__Output {
  /**
   * OPTIONAL. Most services to return, 0..1000. 0: 100; larger values are
   * coerced to 1000. A page may hold fewer even when more follow.
   */
  'pageSize': (number);
  /**
   * OPTIONAL. `next_page_token` of the previous page. The other fields of
   * the request must be the same as for that page (INVALID_ARGUMENT
   * otherwise).
   */
  'pageToken': (string);
  /**
   * OPTIONAL. Only services whose name starts with this.
   */
  'namePrefix': (string);
  /**
   * OPTIONAL. Only services that have this VIP among their addresses.
   */
  'address': (string);
}
