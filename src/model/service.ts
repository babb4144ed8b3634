/**
 * The service model: what a user asks for. Validation lives here, so that
 * every entry point (programmatic API, gRPC, Kubernetes) rejects the same
 * inputs with the same field names.
 */
import { isIPv4 } from 'node:net';
import type { Protocol } from '../dataplane/codec.js';
import { invalid } from '../errors.js';
import { MAGLEV_MAX_SIZE, isPrime } from '../maglev/maglev.js';

/** A backend's administrative state. */
export type BackendState = 'active' | 'draining';

/** One backend of a service. */
export interface BackendSpec {
  /** IPv4 address. */
  address: string;
  /** Port the backend listens on. */
  port: number;
  /** Relative weight in the Maglev table, 0..MAX_WEIGHT (default 1); 0 takes no new flows. */
  weight?: number;
  /** active (default): takes new flows; draining: keeps its flows, takes no new ones. */
  state?: BackendState;
}

/** ClientIP session affinity. */
export interface SessionAffinity {
  /** Seconds a client may stay idle and keep its backend (Kubernetes default 10800). */
  timeoutSeconds: number;
}

/** One service port on one VIP. */
export interface ServiceSpec {
  /** Unique name, e.g. "default/web:http". */
  name: string;
  /** The VIP (IPv4). */
  address: string;
  port: number;
  protocol: Protocol;
  backends: BackendSpec[];
  sessionAffinity?: SessionAffinity;
  /** Maglev table size: a prime ≤ 131071; default from the backend count. */
  tableSize?: number;
}

/** Largest backend weight. */
export const MAX_WEIGHT = 1000;
/** Most backends one service may hold (tables stay ≥ 100 slots per backend). */
export const MAX_BACKENDS_PER_SERVICE = Math.floor(MAGLEV_MAX_SIZE / 100);
/** Longest affinity timeout Kubernetes allows (one day). */
export const MAX_AFFINITY_TIMEOUT = 86400;

function checkPort(port: unknown, field: string): void {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalid(field, `must be an integer in 1..65535, got ${JSON.stringify(port)}`);
  }
}

function checkAddress(address: unknown, field: string): void {
  if (typeof address !== 'string' || !isIPv4(address)) {
    throw invalid(field, `must be an IPv4 address, got ${JSON.stringify(address)}`);
  }
}

/** Throw INVALID_ARGUMENT, naming the field, if `spec` is not a valid service. */
export function validateService(spec: ServiceSpec): void {
  if (typeof spec.name !== 'string' || spec.name.length === 0 || spec.name.length > 253) {
    throw invalid('name', 'must be a non-empty string of at most 253 characters');
  }
  checkAddress(spec.address, 'address');
  checkPort(spec.port, 'port');
  if (spec.protocol !== 'tcp' && spec.protocol !== 'udp') {
    throw invalid('protocol', `must be "tcp" or "udp", got ${JSON.stringify(spec.protocol)}`);
  }
  if (!Array.isArray(spec.backends)) throw invalid('backends', 'must be a list');
  if (spec.backends.length > MAX_BACKENDS_PER_SERVICE) {
    throw invalid('backends', `at most ${MAX_BACKENDS_PER_SERVICE} backends per service, got ${spec.backends.length}`);
  }
  const seen = new Set<string>();
  spec.backends.forEach((b, i) => {
    checkAddress(b.address, `backends[${i}].address`);
    checkPort(b.port, `backends[${i}].port`);
    const w = b.weight ?? 1;
    if (!Number.isInteger(w) || w < 0 || w > MAX_WEIGHT) {
      throw invalid(`backends[${i}].weight`, `must be an integer in 0..${MAX_WEIGHT}, got ${JSON.stringify(b.weight)}`);
    }
    if (b.state !== undefined && b.state !== 'active' && b.state !== 'draining') {
      throw invalid(`backends[${i}].state`, `must be "active" or "draining", got ${JSON.stringify(b.state)}`);
    }
    const id = backendIdentity(b);
    if (seen.has(id)) throw invalid(`backends[${i}]`, `duplicate backend ${id}`);
    seen.add(id);
  });
  if (spec.sessionAffinity !== undefined) {
    const t = spec.sessionAffinity.timeoutSeconds;
    if (!Number.isInteger(t) || t < 1 || t > MAX_AFFINITY_TIMEOUT) {
      throw invalid('sessionAffinity.timeoutSeconds', `must be an integer in 1..${MAX_AFFINITY_TIMEOUT}, got ${JSON.stringify(t)}`);
    }
  }
  if (spec.tableSize !== undefined) {
    const n = spec.tableSize;
    if (!Number.isInteger(n) || n < 1 || n > MAGLEV_MAX_SIZE || !isPrime(n)) {
      throw invalid('tableSize', `must be a prime ≤ ${MAGLEV_MAX_SIZE}, got ${JSON.stringify(n)}`);
    }
    if (n < 100 * activeCount(spec)) {
      throw invalid('tableSize', `must be at least 100 × the active backends (${100 * activeCount(spec)}), got ${n}`);
    }
  }
}

/** The Maglev identity of a backend: what its permutation is derived from. */
export function backendIdentity(b: Pick<BackendSpec, 'address' | 'port'>): string {
  return `${b.address}:${b.port}`;
}

/** Backends that take new flows. */
export function activeCount(spec: ServiceSpec): number {
  return spec.backends.filter((b) => (b.state ?? 'active') === 'active' && (b.weight ?? 1) > 0).length;
}
