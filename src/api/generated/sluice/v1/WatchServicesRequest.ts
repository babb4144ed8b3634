// Original file: proto/sluice/v1/service_registry.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Request of WatchServices.
 */
export interface WatchServicesRequest {
  /**
   * OPTIONAL. The last revision the watcher has seen (the revision of a
   * SYNCED event or of the last event it received): events after it are
   * replayed, without a snapshot. Unset, or older than the oldest revision
   * the event log holds, or newer than the store: the stream starts with a
   * snapshot.
   */
  'startRevision'?: (number | string | Long);
  '_startRevision'?: "startRevision";
}

/**
 * Request of WatchServices.
 */
export interface WatchServicesRequest__Output {
  /**
   * OPTIONAL. The last revision the watcher has seen (the revision of a
   * SYNCED event or of the last event it received): events after it are
   * replayed, without a snapshot. Unset, or older than the oldest revision
   * the event log holds, or newer than the store: the stream starts with a
   * snapshot.
   */
  'startRevision'?: (string);
  '_startRevision'?: "startRevision";
}
