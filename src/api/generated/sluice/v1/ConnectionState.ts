// Original file: proto/sluice/v1/operations.proto

/**
 * A tracked connection's state (README "Flow lifecycle").
 */
export const ConnectionState = {
  /**
   * Not set.
   */
  CONNECTION_STATE_UNSPECIFIED: 'CONNECTION_STATE_UNSPECIFIED',
  /**
   * TCP past its SYN, or a UDP flow.
   */
  ESTABLISHED: 'ESTABLISHED',
  /**
   * TCP: only the client's SYN seen so far.
   */
  NEW: 'NEW',
  /**
   * TCP: a FIN or a RST seen, either way.
   */
  CLOSING: 'CLOSING',
} as const;

/**
 * A tracked connection's state (README "Flow lifecycle").
 */
export type ConnectionState =
  /**
   * Not set.
   */
  | 'CONNECTION_STATE_UNSPECIFIED'
  | 0
  /**
   * TCP past its SYN, or a UDP flow.
   */
  | 'ESTABLISHED'
  | 1
  /**
   * TCP: only the client's SYN seen so far.
   */
  | 'NEW'
  | 2
  /**
   * TCP: a FIN or a RST seen, either way.
   */
  | 'CLOSING'
  | 3

/**
 * A tracked connection's state (README "Flow lifecycle").
 */
export type ConnectionState__Output = typeof ConnectionState[keyof typeof ConnectionState]
