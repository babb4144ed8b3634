/**
 * Counters of a service as the API and the metrics show them: the
 * dataplane counts per frontend (service id) and per backend id, and a
 * backend has one id per frontend; here they are summed per service and per
 * backend address. sumService is the one place that does it; what it sums
 * into (bigints for the API, numbers for the metrics) and where it reads
 * (one id at a time, or a batch read of the whole map) are the caller's.
 */
import type { LbStats, Protocol } from '../dataplane/codec.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import type { StatsTable } from '../dataplane/stats-table.js';
import type { LoadBalancer } from '../lb/load-balancer.js';
import { frontendName, type BackendDefinitionState, type ServiceDefinition } from '../model/definition.js';

/** Counters of one frontend. */
export interface FrontendCounters {
  address: string;
  port: number;
  protocol: Protocol;
  counters: LbStats;
}

/** Counters of one backend, summed over the frontends. */
export interface BackendCounters {
  address: string;
  state: BackendDefinitionState;
  counters: LbStats;
}

/** Counters of one service. */
export interface ServiceCounters {
  name: string;
  /** Sum over the frontends. */
  counters: LbStats;
  frontends: FrontendCounters[];
  /** In the definition's order; maintenance backends (not in the dataplane) are left out. */
  backends: BackendCounters[];
}

/** How counters of type T are read and added up. */
export interface CounterReads<T> {
  zero(): T;
  /** Add the counters of a service (frontend) id into `into`. */
  addService(into: T, id: number): void;
  /** Add the counters of a backend id into `into`. */
  addBackend(into: T, id: number): void;
}

/** A service's counters, summed: over its frontends, and per backend address. */
export interface ServiceSums<T> {
  total: T;
  /** In the definition's order of addresses, then ports. */
  frontends: Array<{ address: string; port: number; protocol: Protocol; counters: T }>;
  /** By backend address; a backend the dataplane does not hold (maintenance) is absent. */
  byBackend: Map<string, T>;
}

/** Sum a service's counters from the load balancer's ids of its frontends. */
export function sumService<T>(lb: LoadBalancer, def: ServiceDefinition, reads: CounterReads<T>): ServiceSums<T> {
  const total = reads.zero();
  const byBackend = new Map<string, T>();
  const frontends: ServiceSums<T>['frontends'] = [];
  for (const address of def.addresses) {
    for (const port of def.ports) {
      const counters = reads.zero();
      const ids = lb.counterIds(frontendName(def.name, address, port));
      if (ids) {
        reads.addService(counters, ids.service);
        reads.addService(total, ids.service);
        for (const b of ids.backends) {
          let c = byBackend.get(b.address);
          if (c === undefined) byBackend.set(b.address, (c = reads.zero()));
          reads.addBackend(c, b.id);
        }
      }
      frontends.push({ address, port: port.port, protocol: port.protocol, counters });
    }
  }
  return { total, frontends, byBackend };
}

/** Zero counters. */
export function zeroCounters(): LbStats {
  return { packets: 0n, bytes: 0n, newConnections: 0n, replyPackets: 0n };
}

function add(into: LbStats, s: LbStats): void {
  into.packets += s.packets;
  into.bytes += s.bytes;
  into.newConnections += s.newConnections;
  into.replyPackets += s.replyPackets;
}

/** Read one id at a time (a syscall each): for a few services. */
export function perIdReads(dp: Dataplane): CounterReads<LbStats> {
  return {
    zero: zeroCounters,
    addService: (into, id) => add(into, dp.serviceStats(id)),
    addBackend: (into, id) => add(into, dp.backendStats(id)),
  };
}

/** Read from batch reads of both maps (Dataplane.allStats): for many services. */
export function tableReads(services: StatsTable, backends: StatsTable): CounterReads<LbStats> {
  return {
    zero: zeroCounters,
    addService: (into, id) => add(into, services.lbStats(id)),
    addBackend: (into, id) => add(into, backends.lbStats(id)),
  };
}

/** The counters of a service, from the load balancer's frontends. */
export function serviceCounters(lb: LoadBalancer, def: ServiceDefinition, reads: CounterReads<LbStats>): ServiceCounters {
  const sums = sumService(lb, def, reads);
  const backends = def.backends
    .filter((b) => b.state !== 'maintenance')
    .map((b) => ({ address: b.address, state: b.state, counters: sums.byBackend.get(b.address) ?? zeroCounters() }));
  return { name: def.name, counters: sums.total, frontends: sums.frontends, backends };
}
