// Original file: proto/sluice/v1/operations.proto

import type { Protocol as _sluice_v1_Protocol, Protocol__Output as _sluice_v1_Protocol__Output } from '../../sluice/v1/Protocol.js';
import type { Counters as _sluice_v1_Counters, Counters__Output as _sluice_v1_Counters__Output } from '../../sluice/v1/Counters.js';

/**
 * Counters of one frontend of a service.
 */
export interface FrontendStats {
  /**
   * The VIP.
   */
  'address'?: (string);
  /**
   * The port.
   */
  'port'?: (number);
  /**
   * The protocol.
   */
  'protocol'?: (_sluice_v1_Protocol);
  /**
   * Its counters.
   */
  'counters'?: (_sluice_v1_Counters | null);
}

/**
 * Counters of one frontend of a service.
 */
export interface FrontendStats__Output {
  /**
   * The VIP.
   */
  'address': (string);
  /**
   * The port.
   */
  'port': (number);
  /**
   * The protocol.
   */
  'protocol': (_sluice_v1_Protocol__Output);
  /**
   * Its counters.
   */
  'counters': (_sluice_v1_Counters__Output | null);
}
