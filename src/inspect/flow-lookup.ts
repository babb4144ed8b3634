/**
 * Where a packet of a flow goes, as the dataplane itself decides it
 * (Dataplane.lookupFlow: bpf/include/lb.h's decision, run read-only in the
 * kernel), told as LookupFlow tells it: by conntrack, affinity or Maglev to
 * a backend, or no backend; a packet that belongs to no service port is
 * none of these (undefined).
 */
import type { Dataplane, FlowDecision } from '../dataplane/dataplane.js';
import type { Protocol } from '../model/service.js';

/** A flow, as a packet from the client shows it. */
export interface FlowQuery {
  clientAddress: string;
  clientPort: number;
  /** The VIP. */
  address: string;
  port: number;
  protocol: Protocol;
  /** TCP: the packet is a SYN without ACK (a new connection on the tuple); default a packet of the flow. */
  syn?: boolean;
}

/** Why a flow goes where it goes. */
export type FlowReason = 'CONNTRACK' | 'AFFINITY' | 'MAGLEV' | 'NO_BACKEND' | 'TUPLE_CLASH';

/** The answer of lookupFlow. */
export interface FlowVerdict {
  reason: FlowReason;
  /** The chosen backend; undefined for NO_BACKEND and TUPLE_CLASH. */
  backend?: { id: number; address: string; port: number };
  /** Dataplane id of the service port (a conntrack entry's, for CONNTRACK). */
  serviceId: number;
  /** The flow hash of the 5-tuple. */
  hash: number;
  /** The Maglev table size of the service on the VIP, port and protocol (0: none). */
  tableSize: number;
  /** maglevSlot(hash, tableSize) (0 without a table). */
  slot: number;
}

/** What lookupFlow found instead of a flow to a service: the dataplane's outcome for the packet. */
export interface NotAServiceFlow {
  outcome: Exclude<FlowDecision['outcome'], FlowReason>;
  decision: FlowDecision;
}

/** The dataplane's verdict for a packet of `q` now, or what it does with it instead. */
export function lookupFlow(dataplane: Dataplane, q: FlowQuery): FlowVerdict | NotAServiceFlow {
  const d = dataplane.lookupFlow({
    saddr: q.clientAddress,
    sport: q.clientPort,
    daddr: q.address,
    dport: q.port,
    protocol: q.protocol,
    ...(q.syn === undefined ? {} : { syn: q.syn }),
  });
  const base = { serviceId: d.serviceId, hash: d.hash, tableSize: d.tableSize, slot: d.slot };
  switch (d.outcome) {
    case 'CONNTRACK':
    case 'AFFINITY':
    case 'MAGLEV':
      return { ...base, reason: d.outcome, backend: { id: d.backendId, address: d.rewrite!.address, port: d.rewrite!.port } };
    case 'NO_BACKEND':
    case 'TUPLE_CLASH':
      return { ...base, reason: d.outcome };
    default:
      return { outcome: d.outcome, decision: d };
  }
}
