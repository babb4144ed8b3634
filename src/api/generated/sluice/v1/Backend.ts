// Original file: proto/sluice/v1/service.proto

import type { ProbeResult as _sluice_v1_ProbeResult, ProbeResult__Output as _sluice_v1_ProbeResult__Output } from '../../sluice/v1/ProbeResult.js';

// Original file: proto/sluice/v1/service.proto

/**
 * A backend's health on the node that answers.
 */
export const _sluice_v1_Backend_Health = {
  /**
   * Not checked: the service has no health check, the backend is in
   * MAINTENANCE (not probed), or the message is an input.
   */
  HEALTH_UNSPECIFIED: 'HEALTH_UNSPECIFIED',
  /**
   * Checked, no verdict yet (counts as up).
   */
  UNKNOWN: 'UNKNOWN',
  /**
   * `rise` probes in a row succeeded.
   */
  HEALTHY: 'HEALTHY',
  /**
   * `fall` probes in a row failed.
   */
  UNHEALTHY: 'UNHEALTHY',
} as const;

/**
 * A backend's health on the node that answers.
 */
export type _sluice_v1_Backend_Health =
  /**
   * Not checked: the service has no health check, the backend is in
   * MAINTENANCE (not probed), or the message is an input.
   */
  | 'HEALTH_UNSPECIFIED'
  | 0
  /**
   * Checked, no verdict yet (counts as up).
   */
  | 'UNKNOWN'
  | 1
  /**
   * `rise` probes in a row succeeded.
   */
  | 'HEALTHY'
  | 2
  /**
   * `fall` probes in a row failed.
   */
  | 'UNHEALTHY'
  | 3

/**
 * A backend's health on the node that answers.
 */
export type _sluice_v1_Backend_Health__Output = typeof _sluice_v1_Backend_Health[keyof typeof _sluice_v1_Backend_Health]

// Original file: proto/sluice/v1/service.proto

/**
 * A backend's administrative state.
 */
export const _sluice_v1_Backend_State = {
  /**
   * On input: ACTIVE. Never returned.
   */
  STATE_UNSPECIFIED: 'STATE_UNSPECIFIED',
  /**
   * Takes new flows and keeps its existing ones.
   */
  ACTIVE: 'ACTIVE',
  /**
   * Out of the Maglev table: keeps its existing flows, takes no new ones.
   */
  DRAINING: 'DRAINING',
  /**
   * Out of the dataplane: its flows move to other backends.
   */
  MAINTENANCE: 'MAINTENANCE',
} as const;

/**
 * A backend's administrative state.
 */
export type _sluice_v1_Backend_State =
  /**
   * On input: ACTIVE. Never returned.
   */
  | 'STATE_UNSPECIFIED'
  | 0
  /**
   * Takes new flows and keeps its existing ones.
   */
  | 'ACTIVE'
  | 1
  /**
   * Out of the Maglev table: keeps its existing flows, takes no new ones.
   */
  | 'DRAINING'
  | 2
  /**
   * Out of the dataplane: its flows move to other backends.
   */
  | 'MAINTENANCE'
  | 3

/**
 * A backend's administrative state.
 */
export type _sluice_v1_Backend_State__Output = typeof _sluice_v1_Backend_State[keyof typeof _sluice_v1_Backend_State]

/**
 * One backend (endpoint) of a service.
 */
export interface Backend {
  /**
   * REQUIRED. IPv4 or IPv6 address (RFC 5952 form on output), unique within
   * the service, of the family of one of its VIPs.
   */
  'address'?: (string);
  /**
   * OPTIONAL. Relative weight in the Maglev table, 0..1000. Unset: 1.
   * 0: takes no new flows (like DRAINING).
   */
  'weight'?: (number);
  /**
   * OPTIONAL. On input, STATE_UNSPECIFIED means ACTIVE.
   */
  'state'?: (_sluice_v1_Backend_State);
  /**
   * OPTIONAL. Set by Registration.RegisterBackend: the backend is removed
   * when this lease expires. On input it must name a live lease, or be empty
   * (a backend defined statically, without a lease).
   */
  'leaseId'?: (string);
  /**
   * OUTPUT_ONLY. The backend's health on the node that answers.
   */
  'health'?: (_sluice_v1_Backend_Health);
  /**
   * OUTPUT_ONLY. The last probe of the backend on the node that answers;
   * unset before the first.
   */
  'lastProbe'?: (_sluice_v1_ProbeResult | null);
  /**
   * OUTPUT_ONLY. The state the node applies: the stricter of `state` and
   * what health makes of it (UNHEALTHY: DRAINING, or MAINTENANCE when the
   * check's on_unhealthy is RESET). STATE_UNSPECIFIED in WatchServices
   * DELETE events.
   */
  'effectiveState'?: (_sluice_v1_Backend_State);
  '_weight'?: "weight";
}

/**
 * One backend (endpoint) of a service.
 */
export interface Backend__Output {
  /**
   * REQUIRED. IPv4 or IPv6 address (RFC 5952 form on output), unique within
   * the service, of the family of one of its VIPs.
   */
  'address': (string);
  /**
   * OPTIONAL. Relative weight in the Maglev table, 0..1000. Unset: 1.
   * 0: takes no new flows (like DRAINING).
   */
  'weight'?: (number);
  /**
   * OPTIONAL. On input, STATE_UNSPECIFIED means ACTIVE.
   */
  'state': (_sluice_v1_Backend_State__Output);
  /**
   * OPTIONAL. Set by Registration.RegisterBackend: the backend is removed
   * when this lease expires. On input it must name a live lease, or be empty
   * (a backend defined statically, without a lease).
   */
  'leaseId': (string);
  /**
   * OUTPUT_ONLY. The backend's health on the node that answers.
   */
  'health': (_sluice_v1_Backend_Health__Output);
  /**
   * OUTPUT_ONLY. The last probe of the backend on the node that answers;
   * unset before the first.
   */
  'lastProbe': (_sluice_v1_ProbeResult__Output | null);
  /**
   * OUTPUT_ONLY. The state the node applies: the stricter of `state` and
   * what health makes of it (UNHEALTHY: DRAINING, or MAINTENANCE when the
   * check's on_unhealthy is RESET). STATE_UNSPECIFIED in WatchServices
   * DELETE events.
   */
  'effectiveState': (_sluice_v1_Backend_State__Output);
  '_weight'?: "weight";
}
