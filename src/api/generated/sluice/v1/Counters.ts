// Original file: proto/sluice/v1/operations.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Packet counters.
 */
export interface Counters {
  /**
   * Packets from clients, forwarded to a backend.
   */
  'packets'?: (number | string | Long);
  /**
   * Bytes (IP length) of those packets and of the replies.
   */
  'bytes'?: (number | string | Long);
  /**
   * Flows started (first packet of a connection).
   */
  'newConnections'?: (number | string | Long);
  /**
   * Packets from backends, restored to the VIP.
   */
  'replyPackets'?: (number | string | Long);
}

/**
 * Packet counters.
 */
export interface Counters__Output {
  /**
   * Packets from clients, forwarded to a backend.
   */
  'packets': (string);
  /**
   * Bytes (IP length) of those packets and of the replies.
   */
  'bytes': (string);
  /**
   * Flows started (first packet of a connection).
   */
  'newConnections': (string);
  /**
   * Packets from backends, restored to the VIP.
   */
  'replyPackets': (string);
}
