// Original file: proto/sluice/v1/operations.proto

import type { Connection as _sluice_v1_Connection, Connection__Output as _sluice_v1_Connection__Output } from '../../sluice/v1/Connection.js';

/**
 * Response of ListConnections.
 */
export interface ListConnectionsResponse {
  /**
   * The connections of this page, in the table's order (see
   * ListConnections); possibly fewer than page_size, even none.
   */
  'connections'?: (_sluice_v1_Connection)[];
  /**
   * Token of the next page; empty only when the listing is complete.
   */
  'nextPageToken'?: (string);
}

/**
 * Response of ListConnections.
 */
export interface ListConnectionsResponse__Output {
  /**
   * The connections of this page, in the table's order (see
   * ListConnections); possibly fewer than page_size, even none.
   */
  'connections': (_sluice_v1_Connection__Output)[];
  /**
   * Token of the next page; empty only when the listing is complete.
   */
  'nextPageToken': (string);
}
