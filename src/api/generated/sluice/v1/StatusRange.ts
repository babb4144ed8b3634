// Original file: proto/sluice/v1/service.proto


/**
 * An inclusive range of HTTP statuses, 100..599.
 */
export interface StatusRange {
  /**
   * REQUIRED. The lowest status that counts as healthy.
   */
  'min'?: (number);
  /**
   * REQUIRED. The highest status that counts as healthy, at least min.
   */
  'max'?: (number);
}

/**
 * An inclusive range of HTTP statuses, 100..599.
 */
export interface StatusRange__Output {
  /**
   * REQUIRED. The lowest status that counts as healthy.
   */
  'min': (number);
  /**
   * REQUIRED. The highest status that counts as healthy, at least min.
   */
  'max': (number);
}
