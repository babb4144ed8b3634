/**
 * The builder of NodeSnapshot (snapshot.ts): one batch read of each
 * per-CPU stats map (Dataplane.allStats), summed per service and per
 * backend address by inspect/'s sumService (the sums GetStats shows), with
 * each backend's health (HealthReader; none: unchecked), its effective
 * state (the overlay laid over the definition), its live flows as the
 * conntrack collector's last pass counted them, and the global drop and
 * reject counters.
 */
import type { Dataplane } from '../dataplane/dataplane.js';
import type { StatsTable } from '../dataplane/stats-table.js';
import type { BackendHealth } from '../health/health.js';
import { sumService, type CounterReads } from '../inspect/service-stats.js';
import type { ControlPlane } from '../node/control-plane.js';
import type { BackendSnapshot, Counters, NodeSnapshot, ServiceSnapshot, SnapshotSource } from './snapshot.js';

/** What a snapshot reads of the node. */
export type SnapshotPlane = Pick<ControlPlane, 'view' | 'lb' | 'overlay' | 'health' | 'conntrackGc'>;

/** Options of NodeSnapshotter. */
export interface NodeSnapshotterOptions {
  plane: SnapshotPlane;
  dataplane: Dataplane;
  /** Milliseconds since the Unix epoch (default Date.now). */
  clock?: () => number;
}

/** Counters plus live flows, as they are summed. */
interface Sum extends Counters {
  active: number;
}

const UNCHECKED: BackendHealth = Object.freeze({ state: 'unchecked' }) as BackendHealth;

function reads(svc: StatsTable, be: StatsTable, active: ReadonlyMap<number, number> | undefined): CounterReads<Sum> {
  return {
    zero: () => ({ packets: 0, bytes: 0, newConnections: 0, replyPackets: 0, active: 0 }),
    addService(into, id) {
      into.packets += svc.packets(id);
      into.bytes += svc.bytes(id);
      into.newConnections += svc.newConnections(id);
      into.replyPackets += svc.replyPackets(id);
    },
    addBackend(into, id) {
      into.packets += be.packets(id);
      into.bytes += be.bytes(id);
      into.newConnections += be.newConnections(id);
      into.replyPackets += be.replyPackets(id);
      if (active) into.active += active.get(id) ?? 0;
    },
  };
}

const counters = (s: Sum | undefined): Counters =>
  s ? { packets: s.packets, bytes: s.bytes, newConnections: s.newConnections, replyPackets: s.replyPackets } : { packets: 0, bytes: 0, newConnections: 0, replyPackets: 0 };

/** Builds NodeSnapshots of one node. */
export class NodeSnapshotter implements SnapshotSource {
  readonly #plane: SnapshotPlane;
  readonly #dp: Dataplane;
  readonly #clock: () => number;

  constructor(o: NodeSnapshotterOptions) {
    this.#plane = o.plane;
    this.#dp = o.dataplane;
    this.#clock = o.clock ?? Date.now;
  }

  snapshot(): Promise<NodeSnapshot> {
    return Promise.resolve(this.read());
  }

  /** The snapshot, now (synchronous: the reads are two batch syscalls and the view). */
  read(): NodeSnapshot {
    const { view, lb, overlay, health, conntrackGc } = this.#plane;
    const atMs = this.#clock();
    const active = conntrackGc?.activeByBackend?.();
    const r = reads(this.#dp.allStats('service'), this.#dp.allStats('backend'), active);
    const services: ServiceSnapshot[] = [];
    for (const name of view.names()) {
      const def = view.get(name)?.definition;
      if (!def) continue;
      const effective = overlay.apply(def);
      const sums = sumService(lb, def, r);
      let serviceActive = 0;
      const backends = def.backends.map((b, i): BackendSnapshot => {
        const s = sums.byBackend.get(b.address);
        const out: BackendSnapshot = {
          address: b.address,
          weight: b.weight,
          adminState: b.state,
          effectiveState: effective.backends[i]!.state,
          health: health?.get(name, b.address) ?? UNCHECKED,
          counters: counters(s),
        };
        if (active) {
          out.activeConnections = s?.active ?? 0;
          serviceActive += out.activeConnections;
        }
        return out;
      });
      const svc: ServiceSnapshot = {
        name,
        addresses: def.addresses,
        ports: def.ports.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol, targetPort: p.targetPort })),
        noBackends: def.noBackends,
        counters: counters(sums.total),
        backends,
      };
      if (active) svc.activeConnections = serviceActive;
      services.push(svc);
    }
    const drops: Record<string, number> = {};
    const rejects: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.#dp.globalStats())) {
      if (k.startsWith('drop_')) drops[k.slice(5)] = Number(v);
      else if (k.startsWith('reject_')) rejects[k.slice(7)] = Number(v);
    }
    return { atMs, services, drops, rejects };
  }
}
