// Original file: proto/sluice/v1/service.proto

import type { Protocol as _sluice_v1_Protocol, Protocol__Output as _sluice_v1_Protocol__Output } from '../../sluice/v1/Protocol.js';

/**
 * One port of a service.
 */
export interface ServicePort {
  /**
   * OPTIONAL. A name unique in the service, 1-63 characters of letters,
   * digits, ".", "_" and "-" (e.g. "http"). Empty: "<port>-<protocol>"
   * ("80-tcp").
   */
  'name'?: (string);
  /**
   * REQUIRED. The port clients connect to on the VIPs, 1..65535.
   */
  'port'?: (number);
  /**
   * REQUIRED. TCP or UDP.
   */
  'protocol'?: (_sluice_v1_Protocol);
  /**
   * OPTIONAL. The port backends listen on, 1..65535. 0: same as `port`.
   */
  'targetPort'?: (number);
}

/**
 * One port of a service.
 */
export interface ServicePort__Output {
  /**
   * OPTIONAL. A name unique in the service, 1-63 characters of letters,
   * digits, ".", "_" and "-" (e.g. "http"). Empty: "<port>-<protocol>"
   * ("80-tcp").
   */
  'name': (string);
  /**
   * REQUIRED. The port clients connect to on the VIPs, 1..65535.
   */
  'port': (number);
  /**
   * REQUIRED. TCP or UDP.
   */
  'protocol': (_sluice_v1_Protocol__Output);
  /**
   * OPTIONAL. The port backends listen on, 1..65535. 0: same as `port`.
   */
  'targetPort': (number);
}
