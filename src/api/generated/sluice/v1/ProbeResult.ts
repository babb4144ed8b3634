// Original file: proto/sluice/v1/service.proto

import type { Long } from '@grpc/proto-loader';

/**
 * One health probe's outcome.
 */
export interface ProbeResult {
  /**
   * When it finished, Unix milliseconds.
   */
  'timeMs'?: (number | string | Long);
  /**
   * Whether it succeeded.
   */
  'ok'?: (boolean);
  /**
   * How long it took, microseconds.
   */
  'latencyUs'?: (number);
  /**
   * Why it failed ("ECONNREFUSED", "status 503", "timeout after 1000 ms");
   * empty when ok.
   */
  'error'?: (string);
}

/**
 * One health probe's outcome.
 */
export interface ProbeResult__Output {
  /**
   * When it finished, Unix milliseconds.
   */
  'timeMs': (string);
  /**
   * Whether it succeeded.
   */
  'ok': (boolean);
  /**
   * How long it took, microseconds.
   */
  'latencyUs': (number);
  /**
   * Why it failed ("ECONNREFUSED", "status 503", "timeout after 1000 ms");
   * empty when ok.
   */
  'error': (string);
}
