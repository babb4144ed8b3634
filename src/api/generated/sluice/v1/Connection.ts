// Original file: proto/sluice/v1/operations.proto

import type { Protocol as _sluice_v1_Protocol, Protocol__Output as _sluice_v1_Protocol__Output } from '../../sluice/v1/Protocol.js';
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
   * Milliseconds since the connection started.
   */
  'ageMs'?: (number | string | Long);
  /**
   * Milliseconds since its last packet (the dataplane refreshes this about
   * once a second).
   */
  'idleMs'?: (number | string | Long);
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
   * Milliseconds since the connection started.
   */
  'ageMs': (string);
  /**
   * Milliseconds since its last packet (the dataplane refreshes this about
   * once a second).
   */
  'idleMs': (string);
}
