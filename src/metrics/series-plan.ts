/**
 * What a scrape of /metrics reads for the families of services and
 * backends, kept between scrapes: per service, its encoded label sets, the
 * dataplane ids of its frontends and (backend, id) pairs of its backends.
 * A service's plan is made again only when its definition or one of its
 * frontends' ids changes (the view and the load balancer replace, never
 * change, what they hold), so a scrape of a node that did not change
 * allocates no object per service or backend: it sums the stats tables
 * into flat arrays (ScrapeValues) that daemon-metrics.ts writes.
 *
 * The sums are those of node-snapshot.ts (inspect/'s sumService): per
 * service over its frontends, per backend address over the frontends'
 * backend ids; the status page reads them there. test/unit/metrics.test.ts
 * holds the two equal.
 */
import type { StatsTable } from '../dataplane/stats-table.js';
import { frontendName, type ServiceDefinition } from '../model/definition.js';
import type { ControlPlane } from '../node/control-plane.js';
import { labelBytes } from './exposition.js';

/** What a scrape reads of the node. */
export type PlanPlane = Pick<ControlPlane, 'view' | 'lb' | 'overlay' | 'health' | 'conntrackGc'>;

/** One service as scrapes read it; right while `def` and every frontend's token are the ones it was made from. */
export interface ServicePlan {
  readonly def: ServiceDefinition;
  /** Its frontends' names (VIP × port), and the load balancer's idsToken of each when it was made. */
  readonly frontends: readonly string[];
  readonly tokens: ReadonlyArray<object | undefined>;
  /** {service="..."}. */
  readonly labels: Buffer;
  /** {service="...",backend="..."}, one per backend of the definition, in its order. */
  readonly backendLabels: readonly Buffer[];
  /** The service (frontend) ids of its installed frontends. */
  readonly serviceIds: Int32Array;
  /** (index of a backend in the definition, backend id) pairs, one per backend of each installed frontend. */
  readonly pairs: Int32Array;
  /** Per backend: takes new flows by its definition alone (active, weight above 0). */
  readonly up: Uint8Array;
}

/** The values of one scrape, in the order the families write their series. */
export interface ScrapeValues {
  /** In name order. */
  services: ServicePlan[];
  /** Backends of all services, in service order then definition order. */
  backends: number;
  /** Per service: packets, bytes, new connections, reply packets. */
  service: Float64Array;
  /** Per backend: packets, bytes, new connections, reply packets. */
  backend: Float64Array;
  /** Live flows per service and per backend; undefined before the collector's first pass (or without one). */
  serviceActive: Float64Array | undefined;
  backendActive: Float64Array | undefined;
  /** Per backend: 1 when it takes new flows (effective state active, weight above 0), else 0. */
  up: Float64Array;
  /** Per backend: 1 healthy or not yet known, 0 unhealthy; NaN when it is not checked. */
  health: Float64Array;
  /** Per backend: seconds its last probe took; NaN for none. */
  lastProbe: Float64Array;
}

/** The arrays of ScrapeValues, all of them. */
type Arrays = { [K in 'service' | 'backend' | 'serviceActive' | 'backendActive' | 'up' | 'health' | 'lastProbe']: Float64Array };

/** Service plans by name, kept from one scrape to the next. */
export class SeriesPlan {
  readonly #plane: PlanPlane;
  #plans = new Map<string, ServicePlan>();
  /** Reused while the node's size stays the same: memory outside V8's heap taken each scrape sets off collections. */
  #a: Arrays | undefined;

  constructor(plane: PlanPlane) {
    this.#plane = plane;
  }

  /** Services whose plan is kept. */
  get size(): number {
    return this.#plans.size;
  }

  #arrays(services: number, backends: number): Arrays {
    const a = this.#a;
    if (a && a.serviceActive.length === services && a.up.length === backends) return a;
    return (this.#a = {
      service: new Float64Array(services * 4),
      backend: new Float64Array(backends * 4),
      serviceActive: new Float64Array(services),
      backendActive: new Float64Array(backends),
      up: new Float64Array(backends),
      health: new Float64Array(backends),
      lastProbe: new Float64Array(backends),
    });
  }

  /**
   * Read the node: its services' plans (made again where they changed; a
   * service that went is forgotten) and the values, summed from the
   * tables. The values' arrays are reused: they hold until the next read.
   */
  read(serviceStats: StatsTable, backendStats: StatsTable): ScrapeValues {
    const { view, lb, overlay, health, conntrackGc } = this.#plane;
    const prev = this.#plans;
    const plans = new Map<string, ServicePlan>();
    const services: ServicePlan[] = [];
    let backends = 0;
    for (const name of view.names()) {
      const def = view.get(name)?.definition;
      if (!def) continue;
      let p = prev.get(name);
      if (!p || !current(p, def, lb)) p = makePlan(def, lb);
      plans.set(name, p);
      services.push(p);
      backends += p.up.length;
    }
    this.#plans = plans;

    const active = conntrackGc?.activeByBackend?.();
    const a = this.#arrays(services.length, backends);
    const v: ScrapeValues = {
      services,
      backends,
      service: a.service.fill(0),
      backend: a.backend.fill(0),
      serviceActive: active ? a.serviceActive.fill(0) : undefined,
      backendActive: active ? a.backendActive.fill(0) : undefined,
      up: a.up,
      health: a.health.fill(NaN),
      lastProbe: a.lastProbe.fill(NaN),
    };
    let base = 0;
    for (let si = 0; si < services.length; si++) {
      const p = services[si]!;
      for (const id of p.serviceIds) serviceStats.addTo(id, v.service, si * 4);
      const pairs = p.pairs;
      for (let k = 0; k < pairs.length; k += 2) {
        const bi = base + pairs[k]!;
        const id = pairs[k + 1]!;
        backendStats.addTo(id, v.backend, bi * 4);
        if (active) {
          const n = active.get(id) ?? 0;
          v.backendActive![bi] = v.backendActive![bi]! + n;
          v.serviceActive![si] = v.serviceActive![si]! + n;
        }
      }
      const effective = overlay.apply(p.def);
      if (effective === p.def) v.up.set(p.up, base);
      else effective.backends.forEach((b, i) => (v.up[base + i] = b.state === 'active' && b.weight > 0 ? 1 : 0));
      if (health) {
        const bs = p.def.backends;
        for (let i = 0; i < bs.length; i++) {
          const h = health.get(p.def.name, bs[i]!.address);
          if (!h) continue;
          if (h.state !== 'unchecked') v.health[base + i] = h.state === 'unhealthy' ? 0 : 1;
          if (h.lastProbe) v.lastProbe[base + i] = h.lastProbe.latencyMs / 1000;
        }
      }
      base += p.up.length;
    }
    return v;
  }
}

/** Whether a plan is still right for `def` and the load balancer's frontends. */
function current(p: ServicePlan, def: ServiceDefinition, lb: PlanPlane['lb']): boolean {
  if (p.def !== def) return false;
  for (let i = 0; i < p.frontends.length; i++) if (lb.idsToken(p.frontends[i]!) !== p.tokens[i]) return false;
  return true;
}

function makePlan(def: ServiceDefinition, lb: PlanPlane['lb']): ServicePlan {
  const frontends: string[] = [];
  const tokens: Array<object | undefined> = [];
  const serviceIds: number[] = [];
  const pairs: number[] = [];
  const index = new Map(def.backends.map((b, i) => [b.address, i] as const));
  for (const address of def.addresses) {
    for (const port of def.ports) {
      const name = frontendName(def.name, address, port);
      frontends.push(name);
      tokens.push(lb.idsToken(name));
      const ids = lb.counterIds(name);
      if (!ids) continue;
      serviceIds.push(ids.service);
      for (const b of ids.backends) {
        const i = index.get(b.address);
        if (i !== undefined) pairs.push(i, b.id);
      }
    }
  }
  return {
    def,
    frontends,
    tokens,
    labels: labelBytes([['service', def.name]]),
    backendLabels: def.backends.map((b) => labelBytes([['service', def.name], ['backend', b.address]])),
    serviceIds: Int32Array.from(serviceIds),
    pairs: Int32Array.from(pairs),
    up: Uint8Array.from(def.backends, (b) => (b.state === 'active' && b.weight > 0 ? 1 : 0)),
  };
}
