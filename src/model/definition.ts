/**
 * The service as users define it through the API: several VIPs, several
 * ports, one set of backends. The load balancer works on *frontends*, one
 * per (VIP, port, protocol), each a ServiceSpec (model/service.ts); this
 * module validates definitions and expands them into frontends.
 */
import type { NoBackends, Protocol } from './service.js';
import { SluiceError, invalid } from '../errors.js';
import { serviceDefinitionSchema, parse } from './schema.js';
import { MAX_BACKENDS_PER_SERVICE, type ServiceSpec } from './service.js';

/** A backend's state: active takes new flows; draining keeps its flows only; maintenance takes nothing (its flows move). */
export type BackendDefinitionState = 'active' | 'draining' | 'maintenance';

/** One port of a service. */
export interface PortDefinition {
  /** Name, unique in the service (e.g. "http"); defaults to "<port>-<protocol>". */
  name: string;
  port: number;
  protocol: Protocol;
  /** The port backends listen on; defaults to `port`. */
  targetPort: number;
}

/** One backend (an endpoint address; it serves every port at that port's targetPort). */
export interface BackendDefinition {
  address: string;
  /** 0..MAX_WEIGHT, default 1. */
  weight: number;
  state: BackendDefinitionState;
  /** Set when the backend registered itself: it goes away when this lease expires. */
  leaseId?: string;
}

/** A service as the API defines it. */
export interface ServiceDefinition {
  /** Unique, 1-253 characters of [A-Za-z0-9._/:-]. */
  name: string;
  /** VIPs (IPv4), at least one. */
  addresses: string[];
  /** At least one. */
  ports: PortDefinition[];
  backends: BackendDefinition[];
  sessionAffinity?: { timeoutSeconds: number };
  /** Maglev table size (prime); default from the backend count. */
  tableSize?: number;
  /** What packets get while no backend takes new flows (default reject: answered; see NoBackends). */
  noBackends: NoBackends;
}

/**
 * Who writes a service: the API ("api"), and next the kube-proxy mode and
 * other sources of services. Each source writes only its own services.
 */
export const API_OWNER = 'api';

/** A definition as stored, with its owner and etcd-style revisions. */
export interface StoredService {
  definition: ServiceDefinition;
  /** The source that writes it (API_OWNER for the API); no other changes it. */
  owner: string;
  /** Store revision of the last change to this service. */
  revision: number;
  /** Store revision at which it was created. */
  createRevision: number;
}

/** What a service does without a usable backend unless it says otherwise. */
export const DEFAULT_NO_BACKENDS: NoBackends = 'reject';

/** Most VIPs × ports one service may expand to. */
export const MAX_FRONTENDS_PER_SERVICE = 64;

/**
 * Parse with the service schema (schema.ts), fill defaults and check what
 * spans fields: duplicates, the frontend count, the table size against the
 * backends, a backend on one of the service's own VIPs. Throws SluiceError
 * INVALID_ARGUMENT naming the field (`ports[1].targetPort`,
 * `backends[3].weight`, ...). Returns a normalised copy.
 */
export function normaliseDefinition(input: unknown): ServiceDefinition {
  const d = parse(serviceDefinitionSchema, input);
  if (d.addresses.length === 0) throw invalid('addresses', 'at least one VIP is required');
  d.addresses.forEach((a, i) => {
    if (d.addresses.indexOf(a) !== i) throw invalid(`addresses[${i}]`, `duplicate VIP ${a}`);
  });
  if (d.ports.length === 0) throw invalid('ports', 'at least one port is required');
  const seenPorts = new Set<string>();
  const seenNames = new Set<string>();
  const ports = d.ports.map((p, i): PortDefinition => {
    const targetPort = p.targetPort === undefined || p.targetPort === 0 ? p.port : p.targetPort;
    const name = p.name === undefined || p.name === '' ? `${p.port}-${p.protocol}` : p.name;
    const k = `${p.port}/${p.protocol}`;
    if (seenPorts.has(k)) throw invalid(`ports[${i}]`, `duplicate port ${k}`);
    if (seenNames.has(name)) throw invalid(`ports[${i}].name`, `duplicate port name ${name}`);
    seenPorts.add(k);
    seenNames.add(name);
    return { name, port: p.port, protocol: p.protocol, targetPort };
  });
  if (d.addresses.length * ports.length > MAX_FRONTENDS_PER_SERVICE) {
    throw invalid('ports', `VIPs × ports must be at most ${MAX_FRONTENDS_PER_SERVICE}, got ${d.addresses.length * ports.length}`);
  }
  const given = d.backends ?? [];
  if (given.length > MAX_BACKENDS_PER_SERVICE) {
    throw invalid('backends', `at most ${MAX_BACKENDS_PER_SERVICE} backends per service, got ${given.length}`);
  }
  const vips = new Set(d.addresses);
  const seenBackends = new Set<string>();
  const backends = given.map((b, i): BackendDefinition => {
    if (seenBackends.has(b.address)) throw invalid(`backends[${i}].address`, `duplicate backend ${b.address}`);
    if (vips.has(b.address)) throw invalid(`backends[${i}].address`, `${b.address} is a VIP of this service: a backend must be another host`);
    seenBackends.add(b.address);
    const out: BackendDefinition = { address: b.address, weight: b.weight ?? 1, state: b.state ?? 'active' };
    if (b.leaseId !== undefined && b.leaseId !== '') out.leaseId = b.leaseId;
    return out;
  });
  const out: ServiceDefinition = { name: d.name, addresses: d.addresses, ports, backends, noBackends: d.noBackends ?? DEFAULT_NO_BACKENDS };
  if (d.sessionAffinity) out.sessionAffinity = { timeoutSeconds: d.sessionAffinity.timeoutSeconds };
  if (d.tableSize !== undefined && d.tableSize !== 0) {
    const active = backends.filter((b) => b.state === 'active' && b.weight > 0).length;
    if (d.tableSize < 100 * active) {
      throw invalid('tableSize', `must be at least 100 × the active backends (${100 * active}), got ${d.tableSize}`);
    }
    out.tableSize = d.tableSize;
  }
  return out;
}

/** Whether two normalised definitions are the same (so applying one over the other changes nothing). */
export function sameDefinition(a: ServiceDefinition, b: ServiceDefinition): boolean {
  return (
    a.name === b.name &&
    a.addresses.length === b.addresses.length &&
    a.addresses.every((x, i) => x === b.addresses[i]) &&
    a.ports.length === b.ports.length &&
    a.ports.every((p, i) => {
      const q = b.ports[i]!;
      return p.name === q.name && p.port === q.port && p.protocol === q.protocol && p.targetPort === q.targetPort;
    }) &&
    a.backends.length === b.backends.length &&
    a.backends.every((x, i) => {
      const y = b.backends[i]!;
      return x.address === y.address && x.weight === y.weight && x.state === y.state && (x.leaseId ?? '') === (y.leaseId ?? '');
    }) &&
    (a.sessionAffinity?.timeoutSeconds ?? 0) === (b.sessionAffinity?.timeoutSeconds ?? 0) &&
    (a.tableSize ?? 0) === (b.tableSize ?? 0) &&
    a.noBackends === b.noBackends
  );
}

/** The frontend name for one (VIP, port) of a service. */
export function frontendName(service: string, address: string, port: PortDefinition): string {
  return `${service}|${address}:${port.port}/${port.protocol}`;
}

/** The service a frontend name belongs to. */
export function serviceOfFrontend(frontend: string): string {
  const i = frontend.lastIndexOf('|');
  if (i < 0) throw new SluiceError('INTERNAL', `not a frontend name: ${frontend}`);
  return frontend.slice(0, i);
}

/** Expand a (normalised) definition into one frontend per VIP × port. Maintenance backends are left out. */
export function expandDefinition(d: ServiceDefinition): ServiceSpec[] {
  const out: ServiceSpec[] = [];
  for (const address of d.addresses) {
    for (const port of d.ports) {
      const spec: ServiceSpec = {
        name: frontendName(d.name, address, port),
        address,
        port: port.port,
        protocol: port.protocol,
        backends: d.backends
          .filter((b) => b.state !== 'maintenance')
          .map((b) => ({ address: b.address, port: port.targetPort, weight: b.weight, state: b.state === 'draining' ? 'draining' : 'active' })),
      };
      if (d.sessionAffinity) spec.sessionAffinity = { ...d.sessionAffinity };
      if (d.tableSize !== undefined) spec.tableSize = d.tableSize;
      if (d.noBackends !== DEFAULT_NO_BACKENDS) spec.noBackends = d.noBackends;
      out.push(spec);
    }
  }
  return out;
}
