// Original file: proto/sluice/v1/operations.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Packets dropped, by reason.
 */
export interface DropCounters {
  /**
   * Truncated or invalid headers to a VIP.
   */
  'malformed'?: (number | string | Long);
  /**
   * Later IP fragments to a VIP whose first fragment was not seen (a
   * fragmented datagram is balanced as one, by its first fragment).
   */
  'fragment'?: (number | string | Long);
  /**
   * A VIP on a port and protocol no service defines.
   */
  'noService'?: (number | string | Long);
  /**
   * A service without usable backends, not answered: it says DROP, or the
   * packet is not one that is answered (TCP without SYN, a group address).
   */
  'noBackend'?: (number | string | Long);
  /**
   * The connection table was full.
   */
  'ctFull'?: (number | string | Long);
}

/**
 * Packets dropped, by reason.
 */
export interface DropCounters__Output {
  /**
   * Truncated or invalid headers to a VIP.
   */
  'malformed': (string);
  /**
   * Later IP fragments to a VIP whose first fragment was not seen (a
   * fragmented datagram is balanced as one, by its first fragment).
   */
  'fragment': (string);
  /**
   * A VIP on a port and protocol no service defines.
   */
  'noService': (string);
  /**
   * A service without usable backends, not answered: it says DROP, or the
   * packet is not one that is answered (TCP without SYN, a group address).
   */
  'noBackend': (string);
  /**
   * The connection table was full.
   */
  'ctFull': (string);
}
