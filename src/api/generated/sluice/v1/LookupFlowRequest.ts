// Original file: proto/sluice/v1/operations.proto

import type { Protocol as _sluice_v1_Protocol, Protocol__Output as _sluice_v1_Protocol__Output } from '../../sluice/v1/Protocol.js';

/**
 * Request of LookupFlow: one packet of a flow, from the client to the VIP.
 * The answer is the dataplane's own decision for that packet now, made by
 * its code in the kernel without its effects (no connection is tracked, no
 * counter moves).
 */
export interface LookupFlowRequest {
  /**
   * REQUIRED. The client's IPv4 or IPv6 address (the packet's source), of
   * the VIP's family.
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
  /**
   * OPTIONAL. TCP: the packet is a SYN without ACK, a new connection on
   * this tuple (a tracked flow on a draining backend is then placed
   * again). Default: a packet of the flow (ACK). Ignored for UDP.
   */
  'syn'?: (boolean);
}

/**
 * Request of LookupFlow: one packet of a flow, from the client to the VIP.
 * The answer is the dataplane's own decision for that packet now, made by
 * its code in the kernel without its effects (no connection is tracked, no
 * counter moves).
 */
export interface LookupFlowRequest__Output {
  /**
   * REQUIRED. The client's IPv4 or IPv6 address (the packet's source), of
   * the VIP's family.
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
  /**
   * OPTIONAL. TCP: the packet is a SYN without ACK, a new connection on
   * this tuple (a tracked flow on a draining backend is then placed
   * again). Default: a packet of the flow (ACK). Ignored for UDP.
   */
  'syn': (boolean);
}
