/**
 * Conversion between the sluice.v1 messages (as proto-loader gives them,
 * see messages.ts) and the domain model (ServiceDefinition, the registry's
 * results). Errors are SluiceError INVALID_ARGUMENT naming the field in the
 * domain's camelCase path relative to the converted message
 * ("ports[0].protocol"); the handlers re-root and snake_case them.
 */
import { show } from '../model/schema.js';
import { familyOf } from '../model/address.js';
import type { NoBackends, Protocol } from '../model/service.js';
import { SluiceError, invalid } from '../errors.js';
import {
  API_OWNER,
  normaliseDefinition,
  type BackendDefinitionState,
  type HealthCheckDefinition,
  type ServiceDefinition,
  type StoredService,
} from '../model/definition.js';
import type { Connection, FlowLookup, GlobalCounter, LbStats, MapOccupancy, ServiceCounters } from '../inspect/inspector.js';
import type { WatchEvent } from '../catalog/watch.js';
import type { ConntrackGcStats } from '../node/conntrack-gc.js';
import type { HealthReader } from '../health/health.js';
import type {
  BackendHealthName,
  BackendMessage,
  BackendStateName,
  HealthCheckMessage,
  ConnectionMessage,
  CountersMessage,
  GlobalStatsMessage,
  ConntrackGcStatsMessage,
  Int64,
  LookupFlowResponse,
  MapStatsMessage,
  NoBackendsName,
  ProtocolName,
  ServiceInput,
  ServiceMessage,
  ServiceStatsMessage,
  WatchServicesResponse,
} from './messages.js';

const PROTOCOLS: Readonly<Record<string, Protocol>> = { TCP: 'tcp', UDP: 'udp' };
const STATES: Readonly<Record<string, BackendDefinitionState>> = {
  ACTIVE: 'active',
  DRAINING: 'draining',
  MAINTENANCE: 'maintenance',
};

/** A Protocol enum value as the domain's protocol; INVALID_ARGUMENT naming `field` otherwise. */
export function protocolFromName(v: unknown, field: string): Protocol {
  const p = typeof v === 'string' ? PROTOCOLS[v] : undefined;
  if (p !== undefined) return p;
  if (v === 'PROTOCOL_UNSPECIFIED' || v === undefined || v === null) throw invalid(field, 'required: TCP or UDP');
  throw invalid(field, `must be TCP or UDP, got ${show(v)}`);
}

/** A ConnectionState enum value (not UNSPECIFIED) as a flow's state; INVALID_ARGUMENT naming `field` otherwise. */
export function connectionStateFromName(v: unknown, field: string): Connection['state'] {
  if (v === 'NEW') return 'new';
  if (v === 'ESTABLISHED') return 'established';
  if (v === 'CLOSING') return 'closing';
  throw invalid(field, `must be NEW, ESTABLISHED or CLOSING, got ${show(v)}`);
}

/** The family an IpFamily enum name says; INVALID_ARGUMENT naming `field` for anything else. */
export function ipFamilyFromName(v: unknown, field: string): 4 | 6 {
  if (v === 'IPV4') return 4;
  if (v === 'IPV6') return 6;
  throw invalid(field, `must be IPV4 or IPV6, got ${show(v)}`);
}

/** The Protocol enum name of a domain protocol. */
export function protocolToName(p: Protocol): ProtocolName {
  return p === 'tcp' ? 'TCP' : 'UDP';
}

/**
 * A Backend.State enum value as the domain's state. STATE_UNSPECIFIED is
 * `unspecified` if given (ACTIVE for a backend), else INVALID_ARGUMENT.
 */
export function stateFromName(v: unknown, field: string, unspecified?: BackendDefinitionState): BackendDefinitionState {
  const s = typeof v === 'string' ? STATES[v] : undefined;
  if (s !== undefined) return s;
  if (v === 'STATE_UNSPECIFIED' || v === undefined || v === null) {
    if (unspecified !== undefined) return unspecified;
    throw invalid(field, 'required: ACTIVE, DRAINING or MAINTENANCE');
  }
  throw invalid(field, `must be ACTIVE, DRAINING or MAINTENANCE, got ${show(v)}`);
}

/** The Backend.State enum name of a domain state. */
export function stateToName(s: BackendDefinitionState): BackendStateName {
  return s === 'active' ? 'ACTIVE' : s === 'draining' ? 'DRAINING' : 'MAINTENANCE';
}

/** The Service.NoBackends enum name of a domain choice. */
export function noBackendsToName(n: NoBackends): NoBackendsName {
  return n === 'drop' ? 'DROP' : 'REJECT';
}

/** An int64 field (a decimal string, or a number) as a safe non-negative integer; INVALID_ARGUMENT otherwise. */
export function int64ToNumber(v: unknown, field: string): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw invalid(field, `must be a non-negative integer, got ${show(v)}`);
  return n;
}

/**
 * A Service message as the plain input of normaliseDefinition (the one
 * schema checks it): enum names become the domain's words (an unknown
 * number stays a number, for the schema to refuse), zero values become
 * "unset". OUTPUT_ONLY fields are dropped, as the API documents, except an
 * owner other than the API's: a service of another owner is not the API's
 * to write, and dropping the field would make it the API's.
 */
export function definitionInputFromMessage(m: ServiceMessage | ServiceInput): Record<string, unknown> {
  if (m.owner && m.owner !== API_OWNER) {
    throw invalid('owner', `is output only; the API writes services as ${JSON.stringify(API_OWNER)}, not ${show(m.owner)} (leave it out)`);
  }
  const out: Record<string, unknown> = {
    name: m.name ?? '',
    addresses: m.addresses ?? [],
    ports: (m.ports ?? []).map((p) => {
      const port: Record<string, unknown> = { port: p.port ?? 0 };
      const protocol = enumInput(p.protocol, 'PROTOCOL_UNSPECIFIED');
      if (protocol !== undefined) port['protocol'] = protocol;
      if (p.name) port['name'] = p.name;
      if (p.targetPort) port['targetPort'] = p.targetPort;
      return port;
    }),
    backends: (m.backends ?? []).map((b) => {
      const backend: Record<string, unknown> = { address: b.address ?? '' };
      const state = enumInput(b.state, 'STATE_UNSPECIFIED');
      if (state !== undefined) backend['state'] = state;
      if (b.weight !== undefined && b.weight !== null) backend['weight'] = b.weight;
      if (b.leaseId) backend['leaseId'] = b.leaseId;
      return backend;
    }),
  };
  if (m.sessionAffinity) out['sessionAffinity'] = { timeoutSeconds: m.sessionAffinity.timeoutSeconds ?? 0 };
  if (m.tableSize) out['tableSize'] = m.tableSize;
  const noBackends = enumInput(m.noBackends, 'NO_BACKENDS_UNSPECIFIED');
  if (noBackends !== undefined) out['noBackends'] = noBackends;
  if (m.healthCheck) out['healthCheck'] = healthCheckInput(m.healthCheck);
  return out;
}

/** A HealthCheck message as schema input (zero values left out). */
function healthCheckInput(h: NonNullable<ServiceInput['healthCheck']>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const type = enumInput(h.type, 'TYPE_UNSPECIFIED');
  if (type !== undefined) out['type'] = type;
  for (const k of ['port', 'portName', 'path', 'host', 'grpcService', 'intervalMs', 'timeoutMs', 'rise', 'fall'] as const) {
    const x = h[k];
    if (x !== undefined && x !== null && x !== 0 && x !== '') out[k] = x;
  }
  if (h.expectedStatus) out['expectedStatus'] = { min: h.expectedStatus.min ?? 0, max: h.expectedStatus.max ?? 0 };
  const on = enumInput(h.onUnhealthy, 'ON_UNHEALTHY_UNSPECIFIED');
  if (on !== undefined) out['onUnhealthy'] = typeof on === 'string' ? on.replace('_', '-') : on;
  return out;
}

/** A normalised health check as its message. */
export function healthCheckToMessage(h: HealthCheckDefinition): HealthCheckMessage {
  return {
    type: h.type === 'tcp' ? 'TCP' : h.type === 'http' ? 'HTTP' : h.type === 'https' ? 'HTTPS' : 'GRPC',
    port: typeof h.port === 'number' ? h.port : 0,
    portName: typeof h.port === 'string' ? h.port : '',
    path: h.path ?? '',
    host: h.host ?? '',
    expectedStatus: h.expectedStatus ? { min: h.expectedStatus.min, max: h.expectedStatus.max } : null,
    grpcService: h.grpcService ?? '',
    intervalMs: h.intervalMs,
    timeoutMs: h.timeoutMs,
    rise: h.rise,
    fall: h.fall,
    onUnhealthy: h.onUnhealthy === 'reset' ? 'RESET' : 'KEEP_CONNECTIONS',
  };
}

/** An enum value of a message as schema input: its name in lower case, undefined when unspecified, a number as it is. */
function enumInput(v: string | number | undefined | null, unspecified: string): string | number | undefined {
  if (v === undefined || v === null || v === unspecified) return undefined;
  return typeof v === 'string' ? v.toLowerCase() : v;
}

/** A Service message as a validated, normalised ServiceDefinition. */
export function definitionFromMessage(m: ServiceMessage | ServiceInput): ServiceDefinition {
  return normaliseDefinition(definitionInputFromMessage(m));
}

/**
 * What a node knows of a service's backends at run time: their health and
 * the state it applies (the definition overlaid, see node/overlay.ts).
 */
export interface BackendRuntime {
  health?: Pick<HealthReader, 'get'> | undefined;
  /** The definition as the node applies it (RuntimeOverlay.apply). */
  effective?: ServiceDefinition;
}

const HEALTH_NAMES: Readonly<Record<string, BackendHealthName>> = {
  unchecked: 'HEALTH_UNSPECIFIED',
  unknown: 'UNKNOWN',
  healthy: 'HEALTHY',
  unhealthy: 'UNHEALTHY',
};

/** A definition's fields of the Service message (everything but the output-only ones of the service). */
function definitionFields(d: ServiceDefinition, rt?: BackendRuntime): Omit<ServiceMessage, 'revision' | 'createRevision' | 'effectiveTableSize' | 'owner' | 'ipFamilies'> {
  const effective = rt?.effective ? new Map(rt.effective.backends.map((b) => [b.address, b.state])) : undefined;
  return {
    name: d.name,
    addresses: [...d.addresses],
    ports: d.ports.map((p) => ({ name: p.name, port: p.port, protocol: protocolToName(p.protocol), targetPort: p.targetPort })),
    backends: d.backends.map((b): BackendMessage => {
      const h = rt?.health?.get(d.name, b.address);
      const state = effective?.get(b.address);
      return {
        address: b.address,
        weight: b.weight,
        state: stateToName(b.state),
        leaseId: b.leaseId ?? '',
        health: HEALTH_NAMES[h?.state ?? 'unchecked']!,
        lastProbe: h?.lastProbe
          ? { timeMs: String(Math.round(h.lastProbe.atMs)), ok: h.lastProbe.ok, latencyUs: Math.round(h.lastProbe.latencyMs * 1000), error: h.lastProbe.error ?? '' }
          : null,
        effectiveState: state ? stateToName(state) : 'STATE_UNSPECIFIED',
      };
    }),
    sessionAffinity: d.sessionAffinity ? { timeoutSeconds: d.sessionAffinity.timeoutSeconds } : null,
    tableSize: d.tableSize ?? 0,
    noBackends: noBackendsToName(d.noBackends),
    healthCheck: d.healthCheck ? healthCheckToMessage(d.healthCheck) : null,
  };
}

/** A ServiceDefinition as a Service message to send (no revisions). */
export function definitionToMessage(d: ServiceDefinition): ServiceInput {
  return definitionFields(d);
}

/**
 * A stored service as the Service message the API returns, with the table
 * size the dataplane uses (0 if not given) and what the node knows of its
 * backends at run time (their output-only fields are unset without it).
 */
export function serviceToMessage(s: StoredService, effectiveTableSize = 0, rt?: BackendRuntime): ServiceMessage {
  return {
    ...definitionFields(s.definition, rt),
    revision: String(s.revision),
    createRevision: String(s.createRevision),
    effectiveTableSize,
    owner: s.owner,
    ipFamilies: s.definition.addresses.map((a) => (familyOf(a) === 6 ? 'IPV6' : 'IPV4')),
  };
}

/** A decoded Service message's revision fields as numbers. */
export function revisionsOf(m: Pick<ServiceMessage, 'revision' | 'createRevision'>): { revision: number; createRevision: number } {
  return { revision: int64ToNumber(m.revision, 'revision'), createRevision: int64ToNumber(m.createRevision, 'createRevision') };
}

/** Counters as their message. */
export function countersToMessage(c: LbStats): CountersMessage {
  return {
    packets: c.packets.toString(),
    bytes: c.bytes.toString(),
    newConnections: c.newConnections.toString(),
    replyPackets: c.replyPackets.toString(),
  };
}

/** A Counters message as bigints (null: zeros). */
export function countersFromMessage(m: CountersMessage | null): LbStats {
  const big = (v: Int64 | undefined): bigint => BigInt(v ?? '0');
  return { packets: big(m?.packets), bytes: big(m?.bytes), newConnections: big(m?.newConnections), replyPackets: big(m?.replyPackets) };
}

/** One map's occupancy as its message. */
export function mapStatsToMessage(m: MapOccupancy): MapStatsMessage {
  return {
    name: m.map,
    entries: m.entries,
    maxEntries: m.maxEntries,
    bytes: String(m.bytes),
    capacity: m.capacity ?? '',
    estimated: m.estimated === true,
  };
}

/** The dataplane's global counters as their message. */
export function globalStatsToMessage(g: Record<GlobalCounter, bigint>): GlobalStatsMessage {
  const s = (k: GlobalCounter): Int64 => (g[k] ?? 0n).toString();
  return {
    rxPackets: s('rx_packets'),
    passedOther: s('passed_other'),
    forwarded: s('forwarded'),
    forwardedStack: s('forwarded_stack'),
    replies: s('replies'),
    passedMalformed: s('passed_malformed'),
    ctRescheduled: s('ct_rescheduled'),
    affinityHits: s('affinity_hits'),
    fibMiss: s('fib_miss'),
    repliesRestored: s('reply_restored'),
    repliesAmbiguous: s('reply_ambiguous'),
    hairpinFlows: s('hairpin_flows'),
    socketsTranslated: s('sock_translated'),
    flows: {
      expired: s('ct_expired'),
      untracked: s('ct_untracked'),
      replyClashes: s('ct_reply_clash'),
      repliesRecreated: s('ct_reply_recreated'),
      repliesStale: s('ct_reply_stale'),
    },
    fragmentsTranslated: s('frag_translated'),
    icmpTranslated: s('icmp_translated'),
    icmpFragNeeded: s('icmp_frag_needed'),
    drops: {
      malformed: s('drop_malformed'),
      fragment: s('drop_fragment'),
      noService: s('drop_no_service'),
      noBackend: s('drop_no_backend'),
      ctFull: s('drop_ct_full'),
    },
    rejects: {
      tcpRst: s('reject_tcp_rst'),
      icmpUnreachable: s('reject_icmp_unreach'),
      rateLimited: s('reject_rate_limited'),
    },
  };
}

/** The conntrack collector's totals as their message. */
export function conntrackGcToMessage(s: ConntrackGcStats): ConntrackGcStatsMessage {
  return {
    passes: String(s.passes),
    expiredNew: String(s.expired.new),
    expiredEstablished: String(s.expired.established),
    expiredClosing: String(s.expired.closing),
    orphanedReplies: String(s.orphanedReplies),
    entriesDeleted: String(s.entriesDeleted),
    raced: String(s.raced),
    intervalSeconds: Math.round(s.intervalMs / 1000),
    lastPassEntries: String(s.lastPass?.entries ?? 0),
    lastPassMs: String(s.lastPass?.wallMs ?? 0),
    lastPassCpuMs: String(s.lastPass?.cpuMs ?? 0),
  };
}

/** A service's counters as their message. */
export function serviceStatsToMessage(s: ServiceCounters): ServiceStatsMessage {
  return {
    name: s.name,
    counters: countersToMessage(s.counters),
    frontends: s.frontends.map((f) => ({
      address: f.address,
      port: f.port,
      protocol: protocolToName(f.protocol),
      counters: countersToMessage(f.counters),
    })),
    backends: s.backends.map((b) => ({ address: b.address, state: stateToName(b.state), counters: countersToMessage(b.counters) })),
  };
}

/** A flow verdict as the LookupFlow response. */
export function flowToMessage(v: FlowLookup): LookupFlowResponse {
  return {
    backendAddress: v.backend?.address ?? '',
    backendPort: v.backend?.port ?? 0,
    reason: v.reason,
    maglevSlot: v.slot,
    tableSize: v.tableSize,
    service: v.service,
    flowHash: v.hash,
  };
}

/** A connection as its message. */
export function connectionToMessage(c: Connection): ConnectionMessage {
  return {
    clientAddress: c.clientAddress,
    clientPort: c.clientPort,
    address: c.address,
    port: c.port,
    protocol: protocolToName(c.protocol),
    backendAddress: c.backendAddress,
    backendPort: c.backendPort,
    service: c.service,
    ageMs: String(c.ageMs),
    state: c.state === 'new' ? 'NEW' : c.state === 'closing' ? 'CLOSING' : 'ESTABLISHED',
    expiresInMs: String(c.expiresInMs),
  };
}

/** A watch event as its message; `rt` fills the backends' run-time fields (HEALTH events). */
export function eventToMessage(e: WatchEvent | (Omit<WatchEvent, 'type'> & { type: 'HEALTH' }), rt?: BackendRuntime): WatchServicesResponse {
  return {
    type: e.type,
    name: e.name,
    service: e.service ? serviceToMessage(e.service, 0, rt) : null,
    revision: String(e.revision),
  };
}

/** Fail with INVALID_ARGUMENT `field: required` if `v` is empty. */
export function required<T>(v: T | null | undefined | '', field: string): T {
  if (v === undefined || v === null || v === '') throw new SluiceError('INVALID_ARGUMENT', 'required', { field });
  return v;
}
