/**
 * One read of what a node is doing: every service with its backends, their
 * counters (summed over CPUs and over the service's frontends), health and
 * state, and the dataplane's drops and rejects by reason. The metrics
 * endpoint renders it as Prometheus text, the status page sends it to the
 * browser as JSON; both take it from one builder so their numbers agree.
 *
 * Counters are plain numbers: a packet counter passes 2^53 after 285 years
 * at a billion packets a second.
 */
import type { BackendDefinitionState } from '../model/definition.js';
import type { BackendHealth } from '../health/health.js';

/** The per-CPU `lb_stats` fields, summed. */
export interface Counters {
  packets: number;
  bytes: number;
  newConnections: number;
  replyPackets: number;
}

/** One backend of a service. */
export interface BackendSnapshot {
  /** As the definition names it (an IP address). */
  address: string;
  weight: number;
  /** The state the catalog gives it. */
  adminState: BackendDefinitionState;
  /** The state the node applies: the stricter of the admin state and the overlay (health). */
  effectiveState: BackendDefinitionState;
  health: BackendHealth;
  /** Summed over the service's frontends (one backend id per frontend and port). */
  counters: Counters;
  /** Live conntrack flows to it, as the collector's last pass counted them; absent before the first pass. */
  activeConnections?: number;
}

/** One service. */
export interface ServiceSnapshot {
  name: string;
  addresses: string[];
  ports: { name: string; port: number; protocol: string; targetPort: number }[];
  noBackends: string;
  /** Summed over its frontends. */
  counters: Counters;
  activeConnections?: number;
  backends: BackendSnapshot[];
}

/** One read of the node. */
export interface NodeSnapshot {
  /** When it was read, milliseconds since the Unix epoch. */
  atMs: number;
  /** In name order. */
  services: ServiceSnapshot[];
  /** The dataplane's global drop_* counters, by reason without the prefix (malformed, no_service, ...). */
  drops: Record<string, number>;
  /** The global reject_* counters, by reason without the prefix (tcp_rst, icmp_unreach, rate_limited). */
  rejects: Record<string, number>;
}

/** Where the status page and the metrics take their snapshots from. */
export interface SnapshotSource {
  snapshot(): Promise<NodeSnapshot>;
}
