// Original file: proto/sluice/v1/service.proto

/**
 * A transport protocol of a service port.
 */
export const Protocol = {
  /**
   * Not a valid protocol: a port must say TCP or UDP.
   */
  PROTOCOL_UNSPECIFIED: 'PROTOCOL_UNSPECIFIED',
  /**
   * TCP.
   */
  TCP: 'TCP',
  /**
   * UDP.
   */
  UDP: 'UDP',
} as const;

/**
 * A transport protocol of a service port.
 */
export type Protocol =
  /**
   * Not a valid protocol: a port must say TCP or UDP.
   */
  | 'PROTOCOL_UNSPECIFIED'
  | 0
  /**
   * TCP.
   */
  | 'TCP'
  | 1
  /**
   * UDP.
   */
  | 'UDP'
  | 2

/**
 * A transport protocol of a service port.
 */
export type Protocol__Output = typeof Protocol[keyof typeof Protocol]
