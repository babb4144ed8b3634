// Original file: proto/sluice/v1/service.proto

/**
 * An address family.
 */
export const IpFamily = {
  /**
   * Never returned.
   */
  IP_FAMILY_UNSPECIFIED: 'IP_FAMILY_UNSPECIFIED',
  IPV4: 'IPV4',
  IPV6: 'IPV6',
} as const;

/**
 * An address family.
 */
export type IpFamily =
  /**
   * Never returned.
   */
  | 'IP_FAMILY_UNSPECIFIED'
  | 0
  | 'IPV4'
  | 1
  | 'IPV6'
  | 2

/**
 * An address family.
 */
export type IpFamily__Output = typeof IpFamily[keyof typeof IpFamily]
