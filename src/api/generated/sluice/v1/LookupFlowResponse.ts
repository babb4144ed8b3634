// Original file: proto/sluice/v1/operations.proto


// Original file: proto/sluice/v1/operations.proto

/**
 * Why the flow goes where it goes.
 */
export const _sluice_v1_LookupFlowResponse_Reason = {
  /**
   * Never sent.
   */
  REASON_UNSPECIFIED: 'REASON_UNSPECIFIED',
  /**
   * The flow is in the connection table and its backend still exists
   * (and, for a SYN, is not draining).
   */
  CONNTRACK: 'CONNTRACK',
  /**
   * ClientIP affinity: the client's last backend, within the timeout.
   */
  AFFINITY: 'AFFINITY',
  /**
   * The Maglev table: slot = (flow_hash × table_size) >> 32.
   */
  MAGLEV: 'MAGLEV',
  /**
   * The service has no usable backend: the packet would be answered (a
   * SYN with a RST, UDP with ICMP port unreachable) or dropped, as the
   * service's no_backends says.
   */
  NO_BACKEND: 'NO_BACKEND',
  /**
   * A new flow that would be refused: the client's address and port
   * already talk to another VIP whose service has the backend Maglev
   * picks, and the two flows' replies could not be told apart (README
   * "Flow lifecycle"). Counted as ct_reply_clash.
   */
  TUPLE_CLASH: 'TUPLE_CLASH',
} as const;

/**
 * Why the flow goes where it goes.
 */
export type _sluice_v1_LookupFlowResponse_Reason =
  /**
   * Never sent.
   */
  | 'REASON_UNSPECIFIED'
  | 0
  /**
   * The flow is in the connection table and its backend still exists
   * (and, for a SYN, is not draining).
   */
  | 'CONNTRACK'
  | 1
  /**
   * ClientIP affinity: the client's last backend, within the timeout.
   */
  | 'AFFINITY'
  | 2
  /**
   * The Maglev table: slot = (flow_hash × table_size) >> 32.
   */
  | 'MAGLEV'
  | 3
  /**
   * The service has no usable backend: the packet would be answered (a
   * SYN with a RST, UDP with ICMP port unreachable) or dropped, as the
   * service's no_backends says.
   */
  | 'NO_BACKEND'
  | 4
  /**
   * A new flow that would be refused: the client's address and port
   * already talk to another VIP whose service has the backend Maglev
   * picks, and the two flows' replies could not be told apart (README
   * "Flow lifecycle"). Counted as ct_reply_clash.
   */
  | 'TUPLE_CLASH'
  | 5

/**
 * Why the flow goes where it goes.
 */
export type _sluice_v1_LookupFlowResponse_Reason__Output = typeof _sluice_v1_LookupFlowResponse_Reason[keyof typeof _sluice_v1_LookupFlowResponse_Reason]

/**
 * Response of LookupFlow.
 */
export interface LookupFlowResponse {
  /**
   * The chosen backend's address; empty for NO_BACKEND and TUPLE_CLASH.
   */
  'backendAddress'?: (string);
  /**
   * The chosen backend's port; 0 for NO_BACKEND.
   */
  'backendPort'?: (number);
  /**
   * Why.
   */
  'reason'?: (_sluice_v1_LookupFlowResponse_Reason);
  /**
   * The flow's Maglev slot ((flow_hash × table_size) >> 32), whatever the
   * reason.
   */
  'maglevSlot'?: (number);
  /**
   * The Maglev table size of the service on the VIP, port and protocol.
   */
  'tableSize'?: (number);
  /**
   * The name of the service the VIP, port and protocol belong to.
   */
  'service'?: (string);
  /**
   * The flow hash the dataplane computes for this 5-tuple.
   */
  'flowHash'?: (number);
}

/**
 * Response of LookupFlow.
 */
export interface LookupFlowResponse__Output {
  /**
   * The chosen backend's address; empty for NO_BACKEND and TUPLE_CLASH.
   */
  'backendAddress': (string);
  /**
   * The chosen backend's port; 0 for NO_BACKEND.
   */
  'backendPort': (number);
  /**
   * Why.
   */
  'reason': (_sluice_v1_LookupFlowResponse_Reason__Output);
  /**
   * The flow's Maglev slot ((flow_hash × table_size) >> 32), whatever the
   * reason.
   */
  'maglevSlot': (number);
  /**
   * The Maglev table size of the service on the VIP, port and protocol.
   */
  'tableSize': (number);
  /**
   * The name of the service the VIP, port and protocol belong to.
   */
  'service': (string);
  /**
   * The flow hash the dataplane computes for this 5-tuple.
   */
  'flowHash': (number);
}
