/**
 * Counters of a service as the API shows them: the dataplane counts per
 * frontend (service id) and per backend id, and a backend has one id per
 * frontend; here they are summed per service and per backend address.
 */
import type { LbStats, Protocol } from '../dataplane/codec.js';
import type { LoadBalancer } from '../lb/load-balancer.js';
import { expandDefinition, type BackendDefinitionState, type ServiceDefinition } from '../model/definition.js';

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

/** The counters of a service, from the load balancer's frontends. */
export function serviceCounters(lb: LoadBalancer, def: ServiceDefinition): ServiceCounters {
  const total = zeroCounters();
  const perBackend = new Map<string, LbStats>();
  const frontends: FrontendCounters[] = [];
  for (const spec of expandDefinition(def)) {
    const counters = zeroCounters();
    if (lb.get(spec.name) !== undefined) {
      const s = lb.stats(spec.name);
      add(counters, s);
      for (const b of s.backends) {
        let c = perBackend.get(b.address);
        if (!c) perBackend.set(b.address, (c = zeroCounters()));
        add(c, b);
      }
    }
    add(total, counters);
    frontends.push({ address: spec.address, port: spec.port, protocol: spec.protocol, counters });
  }
  const backends = def.backends
    .filter((b) => b.state !== 'maintenance')
    .map((b) => ({ address: b.address, state: b.state, counters: perBackend.get(b.address) ?? zeroCounters() }));
  return { name: def.name, counters: total, frontends, backends };
}
