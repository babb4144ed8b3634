// Original file: proto/sluice/v1/service_registry.proto

/**
 * How much of a Service a response carries (AIP-157 partial responses).
 */
export const ServiceView = {
  /**
   * FULL.
   */
  SERVICE_VIEW_UNSPECIFIED: 'SERVICE_VIEW_UNSPECIFIED',
  /**
   * Only name, revision and create_revision.
   */
  BASIC: 'BASIC',
  /**
   * Every field.
   */
  FULL: 'FULL',
} as const;

/**
 * How much of a Service a response carries (AIP-157 partial responses).
 */
export type ServiceView =
  /**
   * FULL.
   */
  | 'SERVICE_VIEW_UNSPECIFIED'
  | 0
  /**
   * Only name, revision and create_revision.
   */
  | 'BASIC'
  | 1
  /**
   * Every field.
   */
  | 'FULL'
  | 2

/**
 * How much of a Service a response carries (AIP-157 partial responses).
 */
export type ServiceView__Output = typeof ServiceView[keyof typeof ServiceView]
