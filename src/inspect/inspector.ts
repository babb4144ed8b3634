/**
 * Read-only questions about what this node's dataplane does: counters per
 * service and backend, where a flow would go, the tracked connections (and
 * flushing some). The catalog view names services; the load balancer maps
 * names to the dataplane's ids. Nothing here changes desired state.
 *
 * Fields of errors are the method's argument names ("clientAddress",
 * "service").
 */
import type { ConntrackState, GlobalCounter } from '../dataplane/codec.js';
import type { Dataplane, MapOccupancy } from '../dataplane/dataplane.js';
import { SluiceError, invalid } from '../errors.js';
import type { LoadBalancer } from '../lb/load-balancer.js';
import { canonicalAddress, familyName, familyOf, flowAddressProblem, hostPort } from '../model/address.js';
import { expandDefinition, serviceOfFrontend, type ServiceDefinition, type StoredService } from '../model/definition.js';
import type { Protocol } from '../model/service.js';
import { checkArgument, checkServiceName, portSchema, protocolSchema, show } from '../model/schema.js';
import type { CatalogView } from '../catalog/view.js';
import { flushConnections, listConnections, type ConnectionCursor, type ConnectionInfo, type ConnectionMatch, type ListOptions } from './connections.js';
import { lookupFlow, type FlowQuery, type FlowVerdict } from './flow-lookup.js';
import { perIdReads, serviceCounters, tableReads, type ServiceCounters } from './service-stats.js';

/** Services in one stats call from which the counters are read in one batch per map. */
const BATCH_READ_FROM = 32;

/** Filters of the connection operations. */
export interface ConnectionFilter {
  service?: string;
  backendAddress?: string;
  clientAddress?: string;
  /** Only flows in this state. */
  state?: ConntrackState;
  /** Only flows of this family. */
  family?: 4 | 6;
}

/** A connection, with its service's name. */
export interface Connection extends ConnectionInfo {
  /** Empty if the service id no longer belongs to a service. */
  service: string;
}

/** The verdict of lookupFlow with the service's name. */
export interface FlowLookup extends FlowVerdict {
  service: string;
}

/** The answer of stats. */
export interface InspectorStats {
  services: ServiceCounters[];
  global: Record<GlobalCounter, bigint>;
}

/** Options of an Inspector. */
export interface InspectorOptions {
  view: CatalogView;
  lb: LoadBalancer;
  dataplane: Dataplane;
  /** CLOCK_MONOTONIC in ns, the dataplane's clock (default process.hrtime.bigint). */
  monotonicNs?: () => bigint;
  /** The definition as the node applies it (its runtime overlay laid over; default: as stored). */
  effective?: (d: ServiceDefinition) => ServiceDefinition;
}

/** Questions about this node's dataplane. */
export class Inspector {
  private readonly view: CatalogView;
  private readonly lb: LoadBalancer;
  private readonly dataplane: Dataplane;
  private readonly monotonicNs: () => bigint;
  private readonly effective: (d: ServiceDefinition) => ServiceDefinition;

  constructor(opts: InspectorOptions) {
    this.effective = opts.effective ?? ((d) => d);
    this.view = opts.view;
    this.lb = opts.lb;
    this.dataplane = opts.dataplane;
    this.monotonicNs = opts.monotonicNs ?? (() => process.hrtime.bigint());
  }

  /** Counters of one service (NOT_FOUND, field `service`) or of all, and the global counters. */
  stats(service?: string): InspectorStats {
    const services = service === undefined || service === ''
      ? this.view.names().map((n) => this.view.get(n)!)
      : [this.requireService(service)];
    // Past a few dozen services one batch read of each map costs less than a syscall per id.
    const reads = services.length > BATCH_READ_FROM ? tableReads(this.dataplane.allStats('service'), this.dataplane.allStats('backend')) : perIdReads(this.dataplane);
    return { services: services.map((s) => serviceCounters(this.lb, this.effective(s.definition), reads)), global: this.dataplane.globalStats() };
  }

  /** How full each map of the dataplane is, and its kernel memory (Dataplane.mapOccupancy). */
  maps(): Promise<MapOccupancy[]> {
    return this.dataplane.mapOccupancy();
  }

  /**
   * Where a packet of a flow (an ACK, or with `syn` a SYN) would go now, as
   * the dataplane decides it. NOT_FOUND (field `address`) if the dataplane
   * takes it for no flow to a service: no service on its VIP, port and
   * protocol, or a backend's reply. INVALID_ARGUMENT (field `clientAddress`)
   * for a client no flow comes from (model/address.ts clientProblem): the
   * dataplane passes its packets untouched, or it is an IPv4 client written
   * as IPv4-mapped IPv6.
   */
  lookupFlow(q: FlowQuery): FlowLookup {
    const clientAddress = checkAddress(q.clientAddress, 'clientAddress', 'client');
    checkArgument(portSchema, q.clientPort, 'clientPort');
    const address = checkAddress(q.address, 'address', 'VIP');
    checkArgument(portSchema, q.port, 'port');
    const protocol = checkArgument(protocolSchema, q.protocol, 'protocol');
    const cf = familyOf(clientAddress)!;
    const vf = familyOf(address)!;
    if (cf !== vf) {
      throw invalid('clientAddress', `${clientAddress} is ${familyName(cf)}, and the VIP ${address} is ${familyName(vf)}: a packet's addresses are of one family`);
    }
    q = { ...q, clientAddress, address };
    const v = lookupFlow(this.dataplane, { ...q, protocol });
    const key = `${hostPort(address, q.port)}/${protocol}`;
    if ('outcome' in v) {
      const why = v.outcome === 'REPLY' ? ': the dataplane takes this tuple for a backend\'s reply' : '';
      throw new SluiceError('NOT_FOUND', `no service on ${key}${why}`, { field: 'address' });
    }
    return { ...v, service: this.serviceOfId(v.serviceId) ?? this.view.frontendService(q.address, q.port, protocol) ?? '' };
  }

  /**
   * A page of connections in the table's order, and where the listing goes
   * on (none: it is complete). A page may be short, even empty, with a next
   * cursor (see inspect/connections.ts).
   */
  listConnections(
    filter: ConnectionFilter,
    page: { after?: ConnectionCursor; limit: number },
    opts: ListOptions = {},
  ): { connections: Connection[]; next?: ConnectionCursor } {
    const { connections, next } = listConnections(this.dataplane, this.match(filter), page, this.monotonicNs(), opts);
    const named = connections.map((c) => ({ ...c, service: this.serviceOfId(c.serviceId) ?? '' }));
    return next === undefined ? { connections: named } : { connections: named, next };
  }

  /** Forget the matching connections; resolves to how many. With no filter, `all` must be set (field `all`). */
  async flushConnections(filter: ConnectionFilter, opts: { all?: boolean } = {}): Promise<number> {
    const empty = !filter.service && !filter.backendAddress && !filter.clientAddress && filter.family === undefined;
    if (empty && opts.all !== true) throw invalid('all', 'give a filter, or set all to flush every connection');
    if (!empty && opts.all === true) throw invalid('all', 'cannot be combined with filters');
    return flushConnections(this.dataplane, this.match(filter));
  }

  private serviceOfId(id: number): string | undefined {
    const frontend = this.lb.nameOf(id);
    return frontend === undefined ? undefined : serviceOfFrontend(frontend);
  }

  private requireService(name: string): StoredService {
    const s = this.view.get(checkServiceName(name, 'service'));
    if (!s) throw new SluiceError('NOT_FOUND', `no service named ${show(name)}`, { field: 'service' });
    return s;
  }

  private match(f: ConnectionFilter): ConnectionMatch {
    const m: { serviceIds?: Set<number>; backendAddress?: string; clientAddress?: string; state?: ConntrackState; family?: 4 | 6 } = {};
    if (f.state !== undefined) m.state = f.state;
    if (f.family !== undefined) m.family = f.family;
    if (f.service) {
      const def = this.requireService(f.service).definition;
      m.serviceIds = new Set(expandDefinition(def).flatMap((s) => this.lb.idOf(s.name) ?? []));
    }
    if (f.backendAddress) {
      m.backendAddress = checkAddress(f.backendAddress, 'backendAddress', 'backend');
    }
    if (f.clientAddress) {
      m.clientAddress = checkAddress(f.clientAddress, 'clientAddress', 'client');
    }
    // Each family's flows have a table of their own: a filter that names
    // both would match nothing, which is a mistake to say, not an answer.
    for (const field of ['backendAddress', 'clientAddress'] as const) {
      const a = m[field];
      if (a === undefined || m.family === undefined) continue;
      const family = a.includes(':') ? 6 : 4;
      if (family !== m.family) throw invalid('family', `is IPv${m.family}, and ${field} ${a} is an IPv${family} address`);
    }
    if (m.backendAddress !== undefined && m.clientAddress !== undefined && m.backendAddress.includes(':') !== m.clientAddress.includes(':')) {
      throw invalid('clientAddress', `${m.clientAddress} and backendAddress ${m.backendAddress} are of two families: a connection's addresses are of one`);
    }
    return m;
  }
}

/**
 * An address argument of either family, in its one text (RFC 5952 for
 * IPv6), refused with the model's reason when no flow can have it as its
 * `role` (flowAddressProblem): it would match nothing.
 */
function checkAddress(a: unknown, field: string, role: 'client' | 'VIP' | 'backend'): string {
  const c = canonicalAddress(a);
  if (c === undefined) throw invalid(field, `must be an IPv4 or IPv6 address, got ${show(a)}`);
  const why = flowAddressProblem(c, role);
  if (why !== undefined) throw invalid(field, why);
  return c;
}

export type { Protocol };
export type { GlobalCounter, LbStats } from '../dataplane/codec.js';
export type { MapOccupancy } from '../dataplane/dataplane.js';
export type { ServiceCounters } from './service-stats.js';
