// Original file: proto/sluice/v1/operations.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Response of FlushConnections.
 */
export interface FlushConnectionsResponse {
  /**
   * Connections flushed (each counted once, not per direction).
   */
  'flushed'?: (number | string | Long);
}

/**
 * Response of FlushConnections.
 */
export interface FlushConnectionsResponse__Output {
  /**
   * Connections flushed (each counted once, not per direction).
   */
  'flushed': (string);
}
