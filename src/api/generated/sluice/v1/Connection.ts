// Original file: proto/sluice/v1/operations.proto

import type { Protocol as _sluice_v1_Protocol, Protocol__Output as _sluice_v1_Protocol__Output } from '../../sluice/v1/Protocol.js';
import type { ConnectionState as _sluice_v1_ConnectionState, ConnectionState__Output as _sluice_v1_ConnectionState__Output } from '../../sluice/v1/ConnectionState.js';
import type { Long } from '@grpc/proto-loader';

/**
 * One connection (a forward conntrack entry).
 */
export interface Connection {
  /**
   * The client's address.
   */
  'clientAddress'?: (string);
  /**
   * The client's port.
   */
  'clientPort'?: (number);
  /**
   * The VIP.
   */
  'address'?: (string);
  /**
   * The service port.
   */
  'port'?: (number);
  /**
   * The protocol.
   */
  'protocol'?: (_sluice_v1_Protocol);
  /**
   * The backend's address.
   */
  'backendAddress'?: (string);
  /**
   * The backend's port.
   */
  'backendPort'?: (number);
  /**
   * The service's name; empty if the connection's service is gone.
   */
  'service'?: (string);
  /**
   * Milliseconds since the connection's first packet (whole seconds: the
   * dataplane keeps flow times in seconds).
   */
  'ageMs'?: (number | string | Long);
  /**
   * The connection's state, from its TCP flags (UDP flows are ESTABLISHED).
   */
  'state'?: (_sluice_v1_ConnectionState);
  /**
   * Milliseconds until it expires unless a packet comes: its state's idle
   * timeout less the time since its last packet (whole seconds).
   */
  'expiresInMs'?: (number | string | Long);
}

/**
 * One connection (a forward conntrack entry).
 */
export interface Connection__Output {
  /**
   * The client's address.
   */
  'clientAddress': (string);
  /**
   * The client's port.
   */
  'clientPort': (number);
  /**
   * The VIP.
   */
  'address': (string);
  /**
   * The service port.
   */
  'port': (number);
  /**
   * The protocol.
   */
  'protocol': (_sluice_v1_Protocol__Output);
  /**
   * The backend's address.
   */
  'backendAddress': (string);
  /**
   * The backend's port.
   */
  'backendPort': (number);
  /**
   * The service's name; empty if the connection's service is gone.
   */
  'service': (string);
  /**
   * Milliseconds since the connection's first packet (whole seconds: the
   * dataplane keeps flow times in seconds).
   */
  'ageMs': (string);
  /**
   * The connection's state, from its TCP flags (UDP flows are ESTABLISHED).
   */
  'state': (_sluice_v1_ConnectionState__Output);
  /**
   * Milliseconds until it expires unless a packet comes: its state's idle
   * timeout less the time since its last packet (whole seconds).
   */
  'expiresInMs': (string);
}
