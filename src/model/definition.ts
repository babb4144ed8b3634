/**
 * The service as users define it through the API: several VIPs, several
 * ports, one set of backends. The load balancer works on *frontends*, one
 * per (VIP, port, protocol), each a ServiceSpec (model/service.ts); this
 * module validates definitions and expands them into frontends.
 */
import { isIPv4 } from 'node:net';
import type { Protocol } from '../dataplane/codec.js';
import { SluiceError, invalid } from '../errors.js';
import { MAGLEV_MAX_SIZE, isPrime } from '../maglev/maglev.js';
import { MAX_AFFINITY_TIMEOUT, MAX_BACKENDS_PER_SERVICE, MAX_WEIGHT, type ServiceSpec } from './service.js';

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
  /** Unique, 1-253 characters of [A-Za-z0-9._/-]. */
  name: string;
  /** VIPs (IPv4), at least one. */
  addresses: string[];
  /** At least one. */
  ports: PortDefinition[];
  backends: BackendDefinition[];
  sessionAffinity?: { timeoutSeconds: number };
  /** Maglev table size (prime); default from the backend count. */
  tableSize?: number;
}

/** A definition as stored, with etcd-style revisions. */
export interface StoredService {
  definition: ServiceDefinition;
  /** Store revision of the last change to this service. */
  revision: number;
  /** Store revision at which it was created. */
  createRevision: number;
}

const NAME_RE = /^[A-Za-z0-9._/-]{1,253}$/;
/** Most VIPs × ports one service may expand to. */
export const MAX_FRONTENDS_PER_SERVICE = 64;

/**
 * Fill defaults and validate. Throws SluiceError INVALID_ARGUMENT naming
 * the field (`ports[1].targetPort`, `backends[3].weight`, ...). Returns a
 * normalised copy: the input is not modified.
 */
export function normaliseDefinition(input: unknown): ServiceDefinition {
  if (typeof input !== 'object' || input === null) throw invalid('service', 'must be an object');
  const d = input as Partial<ServiceDefinition>;
  if (typeof d.name !== 'string' || !NAME_RE.test(d.name)) {
    throw invalid('name', 'must be 1-253 characters of letters, digits, ".", "_", "/", "-"');
  }
  if (!Array.isArray(d.addresses) || d.addresses.length === 0) throw invalid('addresses', 'at least one VIP is required');
  const addresses = d.addresses.map((a, i) => {
    if (typeof a !== 'string' || !isIPv4(a)) throw invalid(`addresses[${i}]`, `must be an IPv4 address, got ${JSON.stringify(a)}`);
    return a;
  });
  if (new Set(addresses).size !== addresses.length) throw invalid('addresses', 'duplicate VIP');
  if (!Array.isArray(d.ports) || d.ports.length === 0) throw invalid('ports', 'at least one port is required');
  const ports = d.ports.map((p, i): PortDefinition => {
    const f = `ports[${i}]`;
    if (typeof p !== 'object' || p === null) throw invalid(f, 'must be an object');
    checkPort(p.port, `${f}.port`);
    if (p.protocol !== 'tcp' && p.protocol !== 'udp') {
      throw invalid(`${f}.protocol`, `must be "tcp" or "udp", got ${JSON.stringify(p.protocol)}`);
    }
    const targetPort = p.targetPort === undefined || p.targetPort === 0 ? p.port : p.targetPort;
    checkPort(targetPort, `${f}.targetPort`);
    const name = p.name === undefined || p.name === '' ? `${p.port}-${p.protocol}` : p.name;
    if (typeof name !== 'string' || !/^[A-Za-z0-9._-]{1,63}$/.test(name)) throw invalid(`${f}.name`, 'must be 1-63 characters of letters, digits, ".", "_", "-"');
    return { name, port: p.port, protocol: p.protocol, targetPort };
  });
  const seenPorts = new Set<string>();
  const seenNames = new Set<string>();
  ports.forEach((p, i) => {
    const k = `${p.port}/${p.protocol}`;
    if (seenPorts.has(k)) throw invalid(`ports[${i}]`, `duplicate port ${k}`);
    if (seenNames.has(p.name)) throw invalid(`ports[${i}].name`, `duplicate port name ${p.name}`);
    seenPorts.add(k);
    seenNames.add(p.name);
  });
  if (addresses.length * ports.length > MAX_FRONTENDS_PER_SERVICE) {
    throw invalid('ports', `VIPs × ports must be at most ${MAX_FRONTENDS_PER_SERVICE}, got ${addresses.length * ports.length}`);
  }
  if (!Array.isArray(d.backends)) throw invalid('backends', 'must be a list');
  if (d.backends.length > MAX_BACKENDS_PER_SERVICE) {
    throw invalid('backends', `at most ${MAX_BACKENDS_PER_SERVICE} backends per service, got ${d.backends.length}`);
  }
  const seenBackends = new Set<string>();
  const backends = d.backends.map((b, i): BackendDefinition => {
    const f = `backends[${i}]`;
    if (typeof b !== 'object' || b === null) throw invalid(f, 'must be an object');
    if (typeof b.address !== 'string' || !isIPv4(b.address)) throw invalid(`${f}.address`, `must be an IPv4 address, got ${JSON.stringify(b.address)}`);
    if (seenBackends.has(b.address)) throw invalid(`${f}.address`, `duplicate backend ${b.address}`);
    seenBackends.add(b.address);
    const weight = b.weight ?? 1;
    if (!Number.isInteger(weight) || weight < 0 || weight > MAX_WEIGHT) {
      throw invalid(`${f}.weight`, `must be an integer in 0..${MAX_WEIGHT}, got ${JSON.stringify(b.weight)}`);
    }
    const state = b.state ?? 'active';
    if (state !== 'active' && state !== 'draining' && state !== 'maintenance') {
      throw invalid(`${f}.state`, `must be active, draining or maintenance, got ${JSON.stringify(b.state)}`);
    }
    const out: BackendDefinition = { address: b.address, weight, state };
    if (b.leaseId !== undefined && b.leaseId !== '') out.leaseId = b.leaseId;
    return out;
  });
  const out: ServiceDefinition = { name: d.name, addresses, ports, backends };
  if (d.sessionAffinity !== undefined && d.sessionAffinity !== null) {
    const t = d.sessionAffinity.timeoutSeconds;
    if (!Number.isInteger(t) || t < 1 || t > MAX_AFFINITY_TIMEOUT) {
      throw invalid('sessionAffinity.timeoutSeconds', `must be an integer in 1..${MAX_AFFINITY_TIMEOUT}, got ${JSON.stringify(t)}`);
    }
    out.sessionAffinity = { timeoutSeconds: t };
  }
  if (d.tableSize !== undefined && d.tableSize !== 0) {
    const n = d.tableSize;
    if (!Number.isInteger(n) || n < 2 || n > MAGLEV_MAX_SIZE || !isPrime(n)) {
      throw invalid('tableSize', `must be a prime ≤ ${MAGLEV_MAX_SIZE}, got ${JSON.stringify(n)}`);
    }
    const active = backends.filter((b) => b.state === 'active' && b.weight > 0).length;
    if (n < 100 * active) throw invalid('tableSize', `must be at least 100 × the active backends (${100 * active}), got ${n}`);
    out.tableSize = n;
  }
  return out;
}

function checkPort(port: unknown, field: string): void {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalid(field, `must be an integer in 1..65535, got ${JSON.stringify(port)}`);
  }
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
      out.push(spec);
    }
  }
  return out;
}
