// Original file: proto/sluice/v1/operations.proto

import type { Long } from '@grpc/proto-loader';

/**
 * The flow lifecycle's counters.
 */
export interface FlowCounters {
  /**
   * Packets that found their flow's entry dead (idle past its timeout):
   * judged without it, the flow placed afresh.
   */
  'expired'?: (number | string | Long);
  /**
   * New flows balanced without entries: a RST, or past the flood guard's
   * rate of new flows a second on a CPU.
   */
  'untracked'?: (number | string | Long);
  /**
   * New flows dropped because their reply tuple belongs to another live
   * flow (the same client port to another VIP with the same backend
   * endpoint).
   */
  'replyClashes'?: (number | string | Long);
  /**
   * Reply entries a flow's forward packets found gone and wrote again.
   */
  'repliesRecreated'?: (number | string | Long);
  /**
   * Reply entries whose backend was no longer their own: removed.
   */
  'repliesStale'?: (number | string | Long);
}

/**
 * The flow lifecycle's counters.
 */
export interface FlowCounters__Output {
  /**
   * Packets that found their flow's entry dead (idle past its timeout):
   * judged without it, the flow placed afresh.
   */
  'expired': (string);
  /**
   * New flows balanced without entries: a RST, or past the flood guard's
   * rate of new flows a second on a CPU.
   */
  'untracked': (string);
  /**
   * New flows dropped because their reply tuple belongs to another live
   * flow (the same client port to another VIP with the same backend
   * endpoint).
   */
  'replyClashes': (string);
  /**
   * Reply entries a flow's forward packets found gone and wrote again.
   */
  'repliesRecreated': (string);
  /**
   * Reply entries whose backend was no longer their own: removed.
   */
  'repliesStale': (string);
}
