/**
 * The service as users define it through the API: several VIPs, several
 * ports, one set of backends. The load balancer works on *frontends*, one
 * per (VIP, port, protocol), each a ServiceSpec (model/service.ts); this
 * module validates definitions and expands them into frontends.
 */
import type { NoBackends, Protocol } from './service.js';
import { SluiceError, invalid } from '../errors.js';
import { serviceDefinitionSchema, parse } from './schema.js';
import { familyName, hostPort, type IPFamily } from './address.js';
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
  /** IPv4 or IPv6 (RFC 5952 form), of the family of at least one VIP. */
  address: string;
  /** 0..MAX_WEIGHT, default 1. */
  weight: number;
  state: BackendDefinitionState;
  /** Set when the backend registered itself: it goes away when this lease expires. */
  leaseId?: string;
}

/** The kinds of health check. */
export type HealthCheckKind = 'tcp' | 'http' | 'https' | 'grpc';

/** What an unhealthy backend's flows get: kept while it drains, or moved to the others. */
export type OnUnhealthy = 'keep-connections' | 'reset';

/**
 * A service's active health check, normalised: the fields of its kind are
 * set (path and expectedStatus for http/https, grpcService for grpc), the
 * others absent.
 */
export interface HealthCheckDefinition {
  type: HealthCheckKind;
  /** A port number, or the name of one of the service's ports (its targetPort); absent: the first TCP port's targetPort. */
  port?: number | string;
  /** http/https: the request path. */
  path?: string;
  /** http/https: the Host header and TLS server name; absent: the backend's address. */
  host?: string;
  /** http/https: the statuses that count as healthy, inclusive. */
  expectedStatus?: { min: number; max: number };
  /** grpc: the service asked about ("" for the server as a whole). */
  grpcService?: string;
  intervalMs: number;
  timeoutMs: number;
  /** Successes in a row that make a backend healthy. */
  rise: number;
  /** Failures in a row that make a backend unhealthy. */
  fall: number;
  onUnhealthy: OnUnhealthy;
}

/** Health-check defaults. */
export const HEALTH_CHECK_DEFAULTS = {
  path: '/',
  expectedStatus: { min: 200, max: 399 },
  grpcService: '',
  intervalMs: 5000,
  timeoutMs: 1000,
  rise: 2,
  fall: 3,
  onUnhealthy: 'keep-connections',
} as const;

/** A service as the API defines it. */
export interface ServiceDefinition {
  /** Unique, 1-253 characters of [A-Za-z0-9._/:-]. */
  name: string;
  /** VIPs, IPv4 or IPv6 (RFC 5952 form), at least one. */
  addresses: string[];
  /** At least one. */
  ports: PortDefinition[];
  backends: BackendDefinition[];
  sessionAffinity?: { timeoutSeconds: number };
  /** Maglev table size (prime); default from the backend count. */
  tableSize?: number;
  /** What packets get while no backend takes new flows (default reject: answered; see NoBackends). */
  noBackends: NoBackends;
  /** Active health check of the backends; absent: none (every backend counts as up). */
  healthCheck?: HealthCheckDefinition;
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
    const first = d.addresses.indexOf(a);
    if (first !== i) throw invalid(`addresses[${i}]`, `duplicate VIP ${a}${textFamily(a) === 6 ? ` (the same address as addresses[${first}])` : ''}`);
  });
  const vipFamilies = new Set(d.addresses.map(textFamily));
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
    const f = textFamily(b.address);
    if (!vipFamilies.has(f)) throw invalid(`backends[${i}].address`, `${b.address} is ${familyName(f)}, and the service has no ${familyName(f)} VIP`);
    if (vips.has(b.address)) throw invalid(`backends[${i}].address`, `${b.address} is a VIP of this service: a backend must be another host`);
    seenBackends.add(b.address);
    const out: BackendDefinition = { address: b.address, weight: b.weight ?? 1, state: b.state ?? 'active' };
    if (b.leaseId !== undefined && b.leaseId !== '') out.leaseId = b.leaseId;
    return out;
  });
  const out: ServiceDefinition = { name: d.name, addresses: d.addresses, ports, backends, noBackends: d.noBackends ?? DEFAULT_NO_BACKENDS };
  if (d.sessionAffinity) out.sessionAffinity = { timeoutSeconds: d.sessionAffinity.timeoutSeconds };
  if (d.tableSize !== undefined && d.tableSize !== 0) {
    // Each frontend's table holds the backends of its VIP's family only.
    for (const f of vipFamilies) {
      const active = backends.filter((b) => b.state === 'active' && b.weight > 0 && textFamily(b.address) === f).length;
      const which = vipFamilies.size > 1 ? `active ${familyName(f)} backends` : 'active backends';
      if (d.tableSize < 100 * active) {
        throw invalid('tableSize', `must be at least 100 × the ${which} (${100 * active}), got ${d.tableSize}`);
      }
    }
    out.tableSize = d.tableSize;
  }
  if (d.healthCheck) out.healthCheck = normaliseHealthCheck(d.healthCheck, ports);
  return out;
}

type HealthCheckInput = NonNullable<ReturnType<typeof parse<typeof serviceDefinitionSchema>>['healthCheck']>;

/** Defaults and the checks across fields of a health check. */
function normaliseHealthCheck(h: HealthCheckInput, ports: readonly PortDefinition[]): HealthCheckDefinition {
  const web = h.type === 'http' || h.type === 'https';
  const only = (field: string, kinds: string): never => {
    throw invalid(`healthCheck.${field}`, `only for ${kinds} checks (this one is ${h.type}); leave it out`);
  };
  if (!web) {
    if (h.path) only('path', 'http and https');
    if (h.host) only('host', 'http and https');
    if (h.expectedStatus) only('expectedStatus', 'http and https');
  }
  if (h.type !== 'grpc' && h.grpcService) only('grpcService', 'grpc');
  const intervalMs = h.intervalMs ?? HEALTH_CHECK_DEFAULTS.intervalMs;
  const timeoutMs = h.timeoutMs ?? Math.min(HEALTH_CHECK_DEFAULTS.timeoutMs, Math.ceil(intervalMs / 2));
  if (timeoutMs >= intervalMs) throw invalid('healthCheck.timeoutMs', `must be less than intervalMs (${intervalMs}), got ${timeoutMs}`);
  const out: HealthCheckDefinition = {
    type: h.type,
    intervalMs,
    timeoutMs,
    rise: h.rise ?? HEALTH_CHECK_DEFAULTS.rise,
    fall: h.fall ?? HEALTH_CHECK_DEFAULTS.fall,
    onUnhealthy: h.onUnhealthy ?? HEALTH_CHECK_DEFAULTS.onUnhealthy,
  };
  const byNumber = typeof h.port === 'number' ? h.port : undefined;
  const byName = typeof h.port === 'string' && h.port !== '' ? h.port : h.portName || undefined;
  if (byNumber !== undefined && h.portName) throw invalid('healthCheck.portName', 'give port or portName, not both');
  if (typeof h.port === 'string' && h.port !== '' && h.portName) throw invalid('healthCheck.portName', 'give port or portName, not both');
  if (byName !== undefined) {
    const field = typeof h.port === 'string' && h.port !== '' ? 'healthCheck.port' : 'healthCheck.portName';
    const named = ports.find((p) => p.name === byName);
    if (!named) {
      const digits = /^\d+$/.test(byName) ? `; a port number? write ${byName} without quotes${field === 'healthCheck.portName' ? ' as port' : ''}` : '';
      throw invalid(field, `no port of this service is named ${JSON.stringify(byName)} (its ports: ${ports.map((p) => p.name).join(', ')})${digits}`);
    }
    // Every kind of check connects over TCP: a port the service serves only
    // over UDP is a mistake more often than not. A backend that also
    // answers on TCP there (DNS on 53) is checked by giving the number.
    if (named.protocol !== 'tcp') {
      throw invalid(field, `port ${JSON.stringify(byName)} is ${named.protocol.toUpperCase()} (${named.port}/${named.protocol}), and a ${h.type} check connects over TCP: name a TCP port, or give port: ${named.targetPort} (a number) to check that port over TCP`);
    }
    out.port = byName;
  } else if (byNumber !== undefined) {
    out.port = byNumber;
  } else if (!ports.some((p) => p.protocol === 'tcp')) {
    throw invalid('healthCheck.port', 'required: the service has no TCP port to check by default; give a port number or the name of a port');
  }
  if (web) {
    out.path = h.path || HEALTH_CHECK_DEFAULTS.path;
    if (h.host) out.host = h.host;
    const st = h.expectedStatus ?? HEALTH_CHECK_DEFAULTS.expectedStatus;
    if (st.min > st.max) throw invalid('healthCheck.expectedStatus.max', `must be at least min (${st.min}), got ${st.max}`);
    out.expectedStatus = { min: st.min, max: st.max };
  }
  if (h.type === 'grpc') out.grpcService = h.grpcService || HEALTH_CHECK_DEFAULTS.grpcService;
  return out;
}

/** The port a service's health check probes on each backend. */
export function healthCheckPort(d: Pick<ServiceDefinition, 'ports' | 'healthCheck'>): number {
  const p = d.healthCheck?.port;
  if (typeof p === 'number') return p;
  if (typeof p === 'string') {
    const named = d.ports.find((x) => x.name === p);
    if (named) return named.targetPort;
  }
  return (d.ports.find((x) => x.protocol === 'tcp') ?? d.ports[0]!).targetPort;
}

/** Whether two normalised health checks are the same. */
export function sameHealthCheck(a: HealthCheckDefinition | undefined, b: HealthCheckDefinition | undefined): boolean {
  if (!a || !b) return a === b;
  return (
    a.type === b.type &&
    a.port === b.port &&
    a.path === b.path &&
    a.host === b.host &&
    a.expectedStatus?.min === b.expectedStatus?.min &&
    a.expectedStatus?.max === b.expectedStatus?.max &&
    a.grpcService === b.grpcService &&
    a.intervalMs === b.intervalMs &&
    a.timeoutMs === b.timeoutMs &&
    a.rise === b.rise &&
    a.fall === b.fall &&
    a.onUnhealthy === b.onUnhealthy
  );
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
    a.noBackends === b.noBackends &&
    sameHealthCheck(a.healthCheck, b.healthCheck)
  );
}

/** The frontend name for one (VIP, port) of a service. */
export function frontendName(service: string, address: string, port: PortDefinition): string {
  return `${service}|${hostPort(address, port.port)}/${port.protocol}`;
}

/** The service a frontend name belongs to. */
export function serviceOfFrontend(frontend: string): string {
  const i = frontend.lastIndexOf('|');
  if (i < 0) throw new SluiceError('INTERNAL', `not a frontend name: ${frontend}`);
  return frontend.slice(0, i);
}

/** The family of an address in its one text (normalised: only IPv6 has a colon). */
function textFamily(address: string): IPFamily {
  return address.includes(':') ? 6 : 4;
}

/**
 * Expand a (normalised) definition into one frontend per VIP × port, each
 * with the backends of its VIP's family. Maintenance backends are left out.
 */
export function expandDefinition(d: ServiceDefinition): ServiceSpec[] {
  const out: ServiceSpec[] = [];
  for (const address of d.addresses) {
    const family = textFamily(address);
    for (const port of d.ports) {
      const spec: ServiceSpec = {
        name: frontendName(d.name, address, port),
        address,
        port: port.port,
        protocol: port.protocol,
        backends: d.backends
          .filter((b) => b.state !== 'maintenance' && textFamily(b.address) === family)
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
