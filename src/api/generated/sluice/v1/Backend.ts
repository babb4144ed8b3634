// Original file: proto/sluice/v1/service.proto


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
   * REQUIRED. IPv4 address, unique within the service.
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
  '_weight'?: "weight";
}

/**
 * One backend (endpoint) of a service.
 */
export interface Backend__Output {
  /**
   * REQUIRED. IPv4 address, unique within the service.
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
  '_weight'?: "weight";
}
