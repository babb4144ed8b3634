// Original file: proto/sluice/v1/operations.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Packets for services without a usable backend that the dataplane
 * answered, or would have answered but for the rate limit.
 */
export interface RejectCounters {
  /**
   * TCP SYNs answered with a RST.
   */
  'tcpRst'?: (number | string | Long);
  /**
   * UDP datagrams answered with ICMP port unreachable.
   */
  'icmpUnreachable'?: (number | string | Long);
  /**
   * Packets not answered because the answers' rate limit was reached:
   * dropped.
   */
  'rateLimited'?: (number | string | Long);
}

/**
 * Packets for services without a usable backend that the dataplane
 * answered, or would have answered but for the rate limit.
 */
export interface RejectCounters__Output {
  /**
   * TCP SYNs answered with a RST.
   */
  'tcpRst': (string);
  /**
   * UDP datagrams answered with ICMP port unreachable.
   */
  'icmpUnreachable': (string);
  /**
   * Packets not answered because the answers' rate limit was reached:
   * dropped.
   */
  'rateLimited': (string);
}
