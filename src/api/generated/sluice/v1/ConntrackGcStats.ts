// Original file: proto/sluice/v1/operations.proto

import type { Long } from '@grpc/proto-loader';

/**
 * The conntrack collector (README "Flow lifecycle"): it walks the whole
 * connection table once an interval and deletes dead entries (idle past
 * their state's timeout), both entries of a flow together.
 */
export interface ConntrackGcStats {
  /**
   * Passes over the whole table completed.
   */
  'passes'?: (number | string | Long);
  /**
   * Flows deleted that died NEW (TCP: a SYN never answered).
   */
  'expiredNew'?: (number | string | Long);
  /**
   * Flows deleted that died ESTABLISHED (TCP idle, or UDP).
   */
  'expiredEstablished'?: (number | string | Long);
  /**
   * Flows deleted that died CLOSING (TCP after a FIN or RST).
   */
  'expiredClosing'?: (number | string | Long);
  /**
   * Dead reply entries deleted whose forward entry was gone (evicted, or
   * flushed) or had become another flow's.
   */
  'orphanedReplies'?: (number | string | Long);
  /**
   * Entries deleted in all (a flow is one or two).
   */
  'entriesDeleted'?: (number | string | Long);
  /**
   * Entries found dead that were left because their flow had a packet
   * before they could be deleted.
   */
  'raced'?: (number | string | Long);
  /**
   * Seconds between two passes (--conntrack-gc-interval).
   */
  'intervalSeconds'?: (number);
  /**
   * The last completed pass: entries read.
   */
  'lastPassEntries'?: (number | string | Long);
  /**
   * The last completed pass: milliseconds from start to end (spread over
   * the interval).
   */
  'lastPassMs'?: (number | string | Long);
  /**
   * The last completed pass: milliseconds of CPU the daemon spent in its
   * batches (the process's CPU from each batch's start to its end, so
   * little else than the collector's own).
   */
  'lastPassCpuMs'?: (number | string | Long);
}

/**
 * The conntrack collector (README "Flow lifecycle"): it walks the whole
 * connection table once an interval and deletes dead entries (idle past
 * their state's timeout), both entries of a flow together.
 */
export interface ConntrackGcStats__Output {
  /**
   * Passes over the whole table completed.
   */
  'passes': (string);
  /**
   * Flows deleted that died NEW (TCP: a SYN never answered).
   */
  'expiredNew': (string);
  /**
   * Flows deleted that died ESTABLISHED (TCP idle, or UDP).
   */
  'expiredEstablished': (string);
  /**
   * Flows deleted that died CLOSING (TCP after a FIN or RST).
   */
  'expiredClosing': (string);
  /**
   * Dead reply entries deleted whose forward entry was gone (evicted, or
   * flushed) or had become another flow's.
   */
  'orphanedReplies': (string);
  /**
   * Entries deleted in all (a flow is one or two).
   */
  'entriesDeleted': (string);
  /**
   * Entries found dead that were left because their flow had a packet
   * before they could be deleted.
   */
  'raced': (string);
  /**
   * Seconds between two passes (--conntrack-gc-interval).
   */
  'intervalSeconds': (number);
  /**
   * The last completed pass: entries read.
   */
  'lastPassEntries': (string);
  /**
   * The last completed pass: milliseconds from start to end (spread over
   * the interval).
   */
  'lastPassMs': (string);
  /**
   * The last completed pass: milliseconds of CPU the daemon spent in its
   * batches (the process's CPU from each batch's start to its end, so
   * little else than the collector's own).
   */
  'lastPassCpuMs': (string);
}
