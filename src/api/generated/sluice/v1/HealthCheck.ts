// Original file: proto/sluice/v1/service.proto

import type { StatusRange as _sluice_v1_StatusRange, StatusRange__Output as _sluice_v1_StatusRange__Output } from '../../sluice/v1/StatusRange.js';

// Original file: proto/sluice/v1/service.proto

/**
 * What an unhealthy backend's flows get.
 */
export const _sluice_v1_HealthCheck_OnUnhealthy = {
  /**
   * On input: KEEP_CONNECTIONS.
   */
  ON_UNHEALTHY_UNSPECIFIED: 'ON_UNHEALTHY_UNSPECIFIED',
  /**
   * Its flows are kept (it drains); new flows go to the others.
   */
  KEEP_CONNECTIONS: 'KEEP_CONNECTIONS',
  /**
   * Its flows move to the others (a TCP peer gets a RST from the new
   * backend), as for MAINTENANCE.
   */
  RESET: 'RESET',
} as const;

/**
 * What an unhealthy backend's flows get.
 */
export type _sluice_v1_HealthCheck_OnUnhealthy =
  /**
   * On input: KEEP_CONNECTIONS.
   */
  | 'ON_UNHEALTHY_UNSPECIFIED'
  | 0
  /**
   * Its flows are kept (it drains); new flows go to the others.
   */
  | 'KEEP_CONNECTIONS'
  | 1
  /**
   * Its flows move to the others (a TCP peer gets a RST from the new
   * backend), as for MAINTENANCE.
   */
  | 'RESET'
  | 2

/**
 * What an unhealthy backend's flows get.
 */
export type _sluice_v1_HealthCheck_OnUnhealthy__Output = typeof _sluice_v1_HealthCheck_OnUnhealthy[keyof typeof _sluice_v1_HealthCheck_OnUnhealthy]

// Original file: proto/sluice/v1/service.proto

/**
 * The kind of probe.
 */
export const _sluice_v1_HealthCheck_Type = {
  /**
   * Not valid: a check must say its type.
   */
  TYPE_UNSPECIFIED: 'TYPE_UNSPECIFIED',
  /**
   * A TCP connect (then closed).
   */
  TCP: 'TCP',
  /**
   * An HTTP GET of `path`; healthy when the status is in expected_status.
   */
  HTTP: 'HTTP',
  /**
   * The same over TLS; the certificate is not verified.
   */
  HTTPS: 'HTTPS',
  /**
   * grpc.health.v1.Health/Check for grpc_service; healthy when SERVING.
   */
  GRPC: 'GRPC',
} as const;

/**
 * The kind of probe.
 */
export type _sluice_v1_HealthCheck_Type =
  /**
   * Not valid: a check must say its type.
   */
  | 'TYPE_UNSPECIFIED'
  | 0
  /**
   * A TCP connect (then closed).
   */
  | 'TCP'
  | 1
  /**
   * An HTTP GET of `path`; healthy when the status is in expected_status.
   */
  | 'HTTP'
  | 2
  /**
   * The same over TLS; the certificate is not verified.
   */
  | 'HTTPS'
  | 3
  /**
   * grpc.health.v1.Health/Check for grpc_service; healthy when SERVING.
   */
  | 'GRPC'
  | 4

/**
 * The kind of probe.
 */
export type _sluice_v1_HealthCheck_Type__Output = typeof _sluice_v1_HealthCheck_Type[keyof typeof _sluice_v1_HealthCheck_Type]

/**
 * An active health check: each node probes every backend of the service
 * (except those in MAINTENANCE) every interval_ms, spread over the interval.
 * A backend becomes unhealthy after `fall` failures in a row and healthy
 * again after `rise` successes; until its first verdict it is UNKNOWN, which
 * counts as up. An unhealthy backend takes no new flows, as if DRAINING
 * (on_unhealthy KEEP_CONNECTIONS) or in MAINTENANCE (RESET). Services whose
 * backends are all unhealthy follow no_backends.
 * 
 * proto3 cannot tell a number set to 0 from one left unset, so here 0 (and
 * "") means "the default" for every field below; service files (the CLI's
 * YAML and JSON) can, and refuse a 0 written in them.
 */
export interface HealthCheck {
  /**
   * REQUIRED. The kind of probe.
   */
  'type'?: (_sluice_v1_HealthCheck_Type);
  /**
   * OPTIONAL. The port probed on each backend, 1..65535. 0 (with port_name
   * empty): the first TCP port's target_port; a service without a TCP port
   * must set one of the two.
   */
  'port'?: (number);
  /**
   * OPTIONAL. The name of one of the service's ports: its target_port is
   * probed. Set at most one of port and port_name.
   */
  'portName'?: (string);
  /**
   * OPTIONAL, HTTP and HTTPS only. The path requested, starting with "/".
   * Empty: "/".
   */
  'path'?: (string);
  /**
   * OPTIONAL, HTTP and HTTPS only. The Host header and TLS server name.
   * Empty: the backend's address.
   */
  'host'?: (string);
  /**
   * OPTIONAL, HTTP and HTTPS only. The statuses that count as healthy.
   * Unset: 200..399.
   */
  'expectedStatus'?: (_sluice_v1_StatusRange | null);
  /**
   * OPTIONAL, GRPC only. The service asked about. Empty: the server as a
   * whole.
   */
  'grpcService'?: (string);
  /**
   * OPTIONAL. Milliseconds between two probes of a backend, 100..3600000.
   * 0: 5000.
   */
  'intervalMs'?: (number);
  /**
   * OPTIONAL. Milliseconds a probe may take, 10..interval_ms - 1. 0: 1000,
   * or half of interval_ms if that is less.
   */
  'timeoutMs'?: (number);
  /**
   * OPTIONAL. Successes in a row that make a backend healthy, 1..100. 0: 2.
   */
  'rise'?: (number);
  /**
   * OPTIONAL. Failures in a row that make a backend unhealthy, 1..100. 0: 3.
   */
  'fall'?: (number);
  /**
   * OPTIONAL. What an unhealthy backend's flows get.
   */
  'onUnhealthy'?: (_sluice_v1_HealthCheck_OnUnhealthy);
}

/**
 * An active health check: each node probes every backend of the service
 * (except those in MAINTENANCE) every interval_ms, spread over the interval.
 * A backend becomes unhealthy after `fall` failures in a row and healthy
 * again after `rise` successes; until its first verdict it is UNKNOWN, which
 * counts as up. An unhealthy backend takes no new flows, as if DRAINING
 * (on_unhealthy KEEP_CONNECTIONS) or in MAINTENANCE (RESET). Services whose
 * backends are all unhealthy follow no_backends.
 * 
 * proto3 cannot tell a number set to 0 from one left unset, so here 0 (and
 * "") means "the default" for every field below; service files (the CLI's
 * YAML and JSON) can, and refuse a 0 written in them.
 */
export interface HealthCheck__Output {
  /**
   * REQUIRED. The kind of probe.
   */
  'type': (_sluice_v1_HealthCheck_Type__Output);
  /**
   * OPTIONAL. The port probed on each backend, 1..65535. 0 (with port_name
   * empty): the first TCP port's target_port; a service without a TCP port
   * must set one of the two.
   */
  'port': (number);
  /**
   * OPTIONAL. The name of one of the service's ports: its target_port is
   * probed. Set at most one of port and port_name.
   */
  'portName': (string);
  /**
   * OPTIONAL, HTTP and HTTPS only. The path requested, starting with "/".
   * Empty: "/".
   */
  'path': (string);
  /**
   * OPTIONAL, HTTP and HTTPS only. The Host header and TLS server name.
   * Empty: the backend's address.
   */
  'host': (string);
  /**
   * OPTIONAL, HTTP and HTTPS only. The statuses that count as healthy.
   * Unset: 200..399.
   */
  'expectedStatus': (_sluice_v1_StatusRange__Output | null);
  /**
   * OPTIONAL, GRPC only. The service asked about. Empty: the server as a
   * whole.
   */
  'grpcService': (string);
  /**
   * OPTIONAL. Milliseconds between two probes of a backend, 100..3600000.
   * 0: 5000.
   */
  'intervalMs': (number);
  /**
   * OPTIONAL. Milliseconds a probe may take, 10..interval_ms - 1. 0: 1000,
   * or half of interval_ms if that is less.
   */
  'timeoutMs': (number);
  /**
   * OPTIONAL. Successes in a row that make a backend healthy, 1..100. 0: 2.
   */
  'rise': (number);
  /**
   * OPTIONAL. Failures in a row that make a backend unhealthy, 1..100. 0: 3.
   */
  'fall': (number);
  /**
   * OPTIONAL. What an unhealthy backend's flows get.
   */
  'onUnhealthy': (_sluice_v1_HealthCheck_OnUnhealthy__Output);
}
