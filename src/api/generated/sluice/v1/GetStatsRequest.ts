// Original file: proto/sluice/v1/operations.proto


/**
 * Request of GetStats.
 */
export interface GetStatsRequest {
  /**
   * OPTIONAL. One service's name. Empty: every service.
   */
  'service'?: (string);
}

/**
 * Request of GetStats.
 */
export interface GetStatsRequest__Output {
  /**
   * OPTIONAL. One service's name. Empty: every service.
   */
  'service': (string);
}
