// Original file: proto/sluice/v1/service_registry.proto

import type { Service as _sluice_v1_Service, Service__Output as _sluice_v1_Service__Output } from '../../sluice/v1/Service.js';
import type { Long } from '@grpc/proto-loader';

// Original file: proto/sluice/v1/service_registry.proto

/**
 * What an event says.
 */
export const _sluice_v1_WatchServicesResponse_EventType = {
  /**
   * Never sent.
   */
  EVENT_TYPE_UNSPECIFIED: 'EVENT_TYPE_UNSPECIFIED',
  /**
   * A service as it is at the snapshot (`service` set).
   */
  SNAPSHOT: 'SNAPSHOT',
  /**
   * The end of the snapshot: `revision` is the store revision it reflects;
   * events after it follow.
   */
  SYNCED: 'SYNCED',
  /**
   * A service was created or replaced (`service` is its new state).
   */
  PUT: 'PUT',
  /**
   * A service was deleted (`service` is its last state).
   */
  DELETE: 'DELETE',
  /**
   * A backend of the service changed health on the node that answers
   * (`service` is the service with its backends' health and effective
   * states). `revision` is the node's view revision at the time; health
   * is not stored, so a watch resumed from a revision gets one HEALTH per
   * checked service after the replay rather than the missed ones.
   */
  HEALTH: 'HEALTH',
} as const;

/**
 * What an event says.
 */
export type _sluice_v1_WatchServicesResponse_EventType =
  /**
   * Never sent.
   */
  | 'EVENT_TYPE_UNSPECIFIED'
  | 0
  /**
   * A service as it is at the snapshot (`service` set).
   */
  | 'SNAPSHOT'
  | 1
  /**
   * The end of the snapshot: `revision` is the store revision it reflects;
   * events after it follow.
   */
  | 'SYNCED'
  | 2
  /**
   * A service was created or replaced (`service` is its new state).
   */
  | 'PUT'
  | 3
  /**
   * A service was deleted (`service` is its last state).
   */
  | 'DELETE'
  | 4
  /**
   * A backend of the service changed health on the node that answers
   * (`service` is the service with its backends' health and effective
   * states). `revision` is the node's view revision at the time; health
   * is not stored, so a watch resumed from a revision gets one HEALTH per
   * checked service after the replay rather than the missed ones.
   */
  | 'HEALTH'
  | 5

/**
 * What an event says.
 */
export type _sluice_v1_WatchServicesResponse_EventType__Output = typeof _sluice_v1_WatchServicesResponse_EventType[keyof typeof _sluice_v1_WatchServicesResponse_EventType]

/**
 * One event of WatchServices.
 */
export interface WatchServicesResponse {
  /**
   * The event's type.
   */
  'type'?: (_sluice_v1_WatchServicesResponse_EventType);
  /**
   * The service's name; empty for SYNCED.
   */
  'name'?: (string);
  /**
   * The service (see EventType); unset for SYNCED.
   */
  'service'?: (_sluice_v1_Service | null);
  /**
   * PUT, DELETE: the revision of this change. SNAPSHOT: the service's
   * revision. SYNCED: the store revision of the snapshot.
   */
  'revision'?: (number | string | Long);
}

/**
 * One event of WatchServices.
 */
export interface WatchServicesResponse__Output {
  /**
   * The event's type.
   */
  'type': (_sluice_v1_WatchServicesResponse_EventType__Output);
  /**
   * The service's name; empty for SYNCED.
   */
  'name': (string);
  /**
   * The service (see EventType); unset for SYNCED.
   */
  'service': (_sluice_v1_Service__Output | null);
  /**
   * PUT, DELETE: the revision of this change. SNAPSHOT: the service's
   * revision. SYNCED: the store revision of the snapshot.
   */
  'revision': (string);
}
