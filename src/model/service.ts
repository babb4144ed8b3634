/**
 * The frontend model: one VIP, port and protocol and its backends, what the
 * LoadBalancer programs. Its field checks are the service schema's
 * (schema.ts), so that the programmatic API rejects what the gRPC API and
 * the CLI reject, with the same messages.
 */
import * as v from 'valibot';
/** A transport protocol of a service port. */
export type Protocol = 'tcp' | 'udp';
/**
 * What packets for a service get while it has no usable backend (none, or
 * every one draining, in maintenance or of weight 0): `reject` answers a
 * TCP SYN with a RST and a UDP datagram with ICMP port unreachable, so that
 * clients fail at once, as kube-proxy does (other packets are dropped);
 * `drop` drops them all.
 */
export type NoBackends = 'reject' | 'drop';
import { invalid } from '../errors.js';
import { isPrime } from './primes.js';
import { MAGLEV_MAX_SIZE } from './table-size.js';
import { canonicalAddress, familyName, familyOf, hostPort } from './address.js';
import { MAX_AFFINITY_TIMEOUT, backendAddressSchema, intIn, parse, portSchema, show, vipSchema, weightSchema } from './schema.js';

/** A backend's administrative state. */
export type BackendState = 'active' | 'draining';

/** One backend of a service. */
export interface BackendSpec {
  /** IPv4 or IPv6 address (RFC 5952 form), of the VIP's family. */
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
  /** The VIP, IPv4 or IPv6 (RFC 5952 form). */
  address: string;
  port: number;
  protocol: Protocol;
  backends: BackendSpec[];
  sessionAffinity?: SessionAffinity;
  /** Maglev table size: a prime ≤ 131071; default from the backend count. */
  tableSize?: number;
  /** Without a usable backend: reject (default) or drop. */
  noBackends?: NoBackends;
}

export { MAX_AFFINITY_TIMEOUT, MAX_WEIGHT } from './schema.js';
/** Most backends one service may hold (tables stay ≥ 100 slots per backend). */
export const MAX_BACKENDS_PER_SERVICE = Math.floor(MAGLEV_MAX_SIZE / 100);

/** The field checks of one frontend, from the one schema (schema.ts). */
const frontendSchema = v.object({
  name: v.pipe(v.string('must be a non-empty string'), v.minLength(1, 'must be a non-empty string')),
  address: vipSchema,
  port: portSchema,
  protocol: v.picklist(['tcp', 'udp'], (i) => `must be "tcp" or "udp", got ${show(i.input)}`),
  backends: v.pipe(
    v.array(
      v.object({
        address: backendAddressSchema,
        port: portSchema,
        weight: v.optional(weightSchema),
        state: v.optional(v.picklist(['active', 'draining'], (i) => `must be "active" or "draining", got ${show(i.input)}`)),
      }),
      'must be a list',
    ),
    v.maxLength(MAX_BACKENDS_PER_SERVICE, (i) => `at most ${MAX_BACKENDS_PER_SERVICE} backends per service, got ${(i.input as unknown[]).length}`),
  ),
  sessionAffinity: v.optional(v.object({ timeoutSeconds: intIn(1, MAX_AFFINITY_TIMEOUT) })),
  tableSize: v.optional(v.number()),
  noBackends: v.optional(v.picklist(['reject', 'drop'], (i) => `must be "reject" or "drop", got ${show(i.input)}`)),
});

/**
 * Throw INVALID_ARGUMENT, naming the field, if `spec` is not a valid
 * frontend. (The name is the caller's key and may be any non-empty string:
 * the registry's frontend names extend a service name.)
 */
export function validateService(spec: ServiceSpec): void {
  parse(frontendSchema, spec);
  checkCanonical(spec.address, 'address');
  const family = familyOf(spec.address)!;
  const seen = new Set<string>();
  spec.backends.forEach((b, i) => {
    checkCanonical(b.address, `backends[${i}].address`);
    const f = familyOf(b.address)!;
    if (f !== family) throw invalid(`backends[${i}].address`, `${b.address} is ${familyName(f)}, and the VIP ${spec.address} is ${familyName(family)}: a frontend's backends are of its VIP's family`);
    const id = backendIdentity(b);
    if (seen.has(id)) throw invalid(`backends[${i}]`, `duplicate backend ${id}`);
    seen.add(id);
  });
  if (spec.tableSize !== undefined) {
    const n = spec.tableSize;
    if (!Number.isInteger(n) || n < 1 || n > MAGLEV_MAX_SIZE || !isPrime(n)) {
      throw invalid('tableSize', `must be a prime ≤ ${MAGLEV_MAX_SIZE}, got ${show(n)}`);
    }
    if (n < 100 * activeCount(spec)) {
      throw invalid('tableSize', `must be at least 100 × the active backends (${100 * activeCount(spec)}), got ${n}`);
    }
  }
}

/**
 * A frontend's address in its one text: the Maglev identity of a backend is
 * derived from it, so two spellings of one IPv6 address would give two
 * tables on two nodes.
 */
function checkCanonical(address: string, field: string): void {
  const c = canonicalAddress(address);
  if (c !== address) throw invalid(field, `write ${address} as ${c} (the RFC 5952 form of the address)`);
}

/**
 * The Maglev identity of a backend: what its permutation is derived from
 * ("10.0.0.1:80", "[2001:db8::1]:80"). Part of the contract between nodes:
 * every node must derive the same text.
 */
export function backendIdentity(b: Pick<BackendSpec, 'address' | 'port'>): string {
  return hostPort(b.address, b.port);
}

/** Backends that take new flows. */
export function activeCount(spec: ServiceSpec): number {
  return spec.backends.filter((b) => (b.state ?? 'active') === 'active' && (b.weight ?? 1) > 0).length;
}
