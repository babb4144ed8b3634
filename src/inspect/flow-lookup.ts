/**
 * Where the dataplane would send a new packet of a flow, computed from the
 * maps as bpf/include/lb.h decides it (lb_forward): an existing conntrack
 * entry whose backend still exists at the same address and port; else, for
 * a service with ClientIP affinity, a fresh affinity entry whose backend
 * exists and is not draining; else the Maglev slot flow_hash % table_size.
 * Nothing is written. The packet is taken to be a mid-flow packet, not a
 * fresh SYN (which the dataplane moves off a draining backend).
 */
import { BACKEND_FLAG_DRAINING, CT_FORWARD, IPPROTO, SVC_FLAG_AFFINITY, type BackendValue, type Protocol } from '../dataplane/codec.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import { flowHash } from '../maglev/flow-hash.js';

/** A flow, as its packets from the client show it. */
export interface FlowQuery {
  clientAddress: string;
  clientPort: number;
  /** The VIP. */
  address: string;
  port: number;
  protocol: Protocol;
}

/** Why a flow goes where it goes. */
export type FlowReason = 'CONNTRACK' | 'AFFINITY' | 'MAGLEV' | 'NO_BACKEND';

/** The answer of lookupFlow. */
export interface FlowVerdict {
  reason: FlowReason;
  /** The chosen backend; undefined for NO_BACKEND. */
  backend?: { id: number; address: string; port: number };
  /** Dataplane id of the service port. */
  serviceId: number;
  /** The flow hash of the 5-tuple. */
  hash: number;
  /** The service's Maglev table size (0: none). */
  tableSize: number;
  /** hash % tableSize (0 without a table). */
  slot: number;
}

const NS_PER_SEC = 1_000_000_000n;

/**
 * The verdict for `q` at monotonic time `nowNs` (CLOCK_MONOTONIC, as
 * bpf_ktime_get_ns), or undefined if no service is on its VIP, port and
 * protocol.
 */
export function lookupFlow(dataplane: Dataplane, q: FlowQuery, nowNs: bigint): FlowVerdict | undefined {
  const svc = dataplane
    .listServices()
    .find((s) => s.key.address === q.address && s.key.port === q.port && s.key.protocol === q.protocol)?.value;
  if (!svc) return undefined;
  const backends = dataplane.listBackends();
  const hash = flowHash(q.clientAddress, q.address, q.clientPort, q.port, IPPROTO[q.protocol]);
  const tableSize = svc.tableSize;
  const slot = tableSize > 0 ? hash % tableSize : 0;
  const base = { serviceId: svc.id, hash, tableSize, slot };
  const pick = (reason: FlowReason, id: number, be: BackendValue): FlowVerdict => ({
    ...base,
    reason,
    backend: { id, address: be.address, port: be.port },
  });

  const ct = dataplane.getConntrack({
    saddr: q.clientAddress,
    daddr: q.address,
    sport: q.clientPort,
    dport: q.port,
    protocol: q.protocol,
  });
  if (ct && ct.dir === CT_FORWARD) {
    const be = backends.get(ct.backendId);
    if (be && be.serviceId === ct.serviceId && be.address === ct.natAddress && be.port === ct.natPort) {
      return pick('CONNTRACK', ct.backendId, be);
    }
  }

  if ((svc.flags & SVC_FLAG_AFFINITY) !== 0) {
    const av = dataplane.getAffinity(q.clientAddress, svc.id);
    // The kernel subtracts in u64: a timestamp ahead of now wraps to "stale".
    if (av && BigInt.asUintN(64, nowNs - av.lastSeenNs) <= BigInt(svc.affinityTimeoutSec) * NS_PER_SEC) {
      const be = backends.get(av.backendId);
      if (be && be.serviceId === svc.id && (be.flags & BACKEND_FLAG_DRAINING) === 0) return pick('AFFINITY', av.backendId, be);
    }
  }

  if (tableSize === 0) return { ...base, reason: 'NO_BACKEND' };
  const table = dataplane.getMaglevTable(svc.id);
  const id = table && slot < table.length ? table[slot] : undefined;
  const be = id === undefined ? undefined : backends.get(id);
  if (id === undefined || !be) return { ...base, reason: 'NO_BACKEND' };
  return pick('MAGLEV', id, be);
}
