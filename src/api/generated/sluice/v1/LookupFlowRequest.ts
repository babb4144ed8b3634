// Original file: proto/sluice/v1/operations.proto

import type { Protocol as _sluice_v1_Protocol, Protocol__Output as _sluice_v1_Protocol__Output } from '../../sluice/v1/Protocol.js';

/**
 * Request of LookupFlow: one flow as its first packet shows it.
 */
export interface LookupFlowRequest {
  /**
   * REQUIRED. The client's IPv4 address (the packet's source).
   */
  'clientAddress'?: (string);
  /**
   * REQUIRED. The client's port, 1..65535.
   */
  'clientPort'?: (number);
  /**
   * REQUIRED. The VIP (the packet's destination).
   */
  'address'?: (string);
  /**
   * REQUIRED. The service port, 1..65535.
   */
  'port'?: (number);
  /**
   * REQUIRED. TCP or UDP.
   */
  'protocol'?: (_sluice_v1_Protocol);
}

/**
 * Request of LookupFlow: one flow as its first packet shows it.
 */
export interface LookupFlowRequest__Output {
  /**
   * REQUIRED. The client's IPv4 address (the packet's source).
   */
  'clientAddress': (string);
  /**
   * REQUIRED. The client's port, 1..65535.
   */
  'clientPort': (number);
  /**
   * REQUIRED. The VIP (the packet's destination).
   */
  'address': (string);
  /**
   * REQUIRED. The service port, 1..65535.
   */
  'port': (number);
  /**
   * REQUIRED. TCP or UDP.
   */
  'protocol': (_sluice_v1_Protocol__Output);
}
