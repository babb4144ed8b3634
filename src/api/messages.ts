/**
 * TypeScript shapes of the sluice.v1 messages as @grpc/proto-loader gives
 * them with the options of protos.ts: camelCase fields, 64-bit integers as
 * decimal strings, enums as their names, unset scalars as zero values,
 * unset messages as null, unset `optional` fields absent. Hand-written from
 * proto/sluice/v1/*.proto; the contract tests exercise every one.
 *
 * The `*Input` types are what a client may send: every field optional,
 * 64-bit integers as string or number.
 */

/** A 64-bit integer as decoded: a decimal string. */
export type Int64 = string;
/** A 64-bit integer as a client may send it. */
export type Int64Input = string | number;

/** sluice.v1.Protocol. */
export type ProtocolName = 'PROTOCOL_UNSPECIFIED' | 'TCP' | 'UDP';
/** sluice.v1.Backend.State. */
export type BackendStateName = 'STATE_UNSPECIFIED' | 'ACTIVE' | 'DRAINING' | 'MAINTENANCE';
/** sluice.v1.WatchServicesResponse.EventType. */
export type EventTypeName = 'EVENT_TYPE_UNSPECIFIED' | 'SNAPSHOT' | 'SYNCED' | 'PUT' | 'DELETE';
/** sluice.v1.LookupFlowResponse.Reason. */
export type FlowReasonName = 'REASON_UNSPECIFIED' | 'CONNTRACK' | 'AFFINITY' | 'MAGLEV' | 'NO_BACKEND';

/** sluice.v1.ServicePort. */
export interface ServicePortMessage {
  name: string;
  port: number;
  /** A name, or the number of a value this version does not know. */
  protocol: ProtocolName | number;
  targetPort: number;
}

/** sluice.v1.Backend. */
export interface BackendMessage {
  address: string;
  /** Absent when unset. */
  weight?: number;
  state: BackendStateName | number;
  leaseId: string;
}

/** sluice.v1.SessionAffinity. */
export interface SessionAffinityMessage {
  timeoutSeconds: number;
}

/** sluice.v1.Service. */
export interface ServiceMessage {
  name: string;
  addresses: string[];
  ports: ServicePortMessage[];
  backends: BackendMessage[];
  sessionAffinity: SessionAffinityMessage | null;
  tableSize: number;
  revision: Int64;
  createRevision: Int64;
  /** OUTPUT_ONLY: the table size in use (0: none). */
  effectiveTableSize: number;
}

/** sluice.v1.Service as a client sends it. */
export interface ServiceInput {
  name?: string;
  addresses?: string[];
  ports?: Array<Partial<ServicePortMessage>>;
  backends?: Array<Partial<BackendMessage>>;
  sessionAffinity?: SessionAffinityMessage | null;
  tableSize?: number;
}

/** sluice.v1.ApplyServiceRequest. */
export interface ApplyServiceRequest {
  service: ServiceMessage | null;
  expectedRevision?: Int64;
}

/** sluice.v1.ApplyServiceRequest as a client sends it. */
export interface ApplyServiceInput {
  service?: ServiceInput;
  expectedRevision?: Int64Input;
}

/** sluice.v1.ApplyServicesRequest. */
export interface ApplyServicesRequest {
  requests: ApplyServiceRequest[];
  view: ServiceViewName;
}

/** sluice.v1.ServiceView. */
export type ServiceViewName = 'SERVICE_VIEW_UNSPECIFIED' | 'BASIC' | 'FULL';

/** sluice.v1.ApplyServicesResponse. */
export interface ApplyServicesResponse {
  services: ServiceMessage[];
  revision: Int64;
  /** Names of the services that were already as requested. */
  unchanged: string[];
}

/** sluice.v1.DeleteServiceRequest. */
export interface DeleteServiceRequest {
  name: string;
  expectedRevision?: Int64;
}

/** sluice.v1.DeleteServiceResponse. */
export interface DeleteServiceResponse {
  revision: Int64;
}

/** sluice.v1.GetServiceRequest. */
export interface GetServiceRequest {
  name: string;
}

/** sluice.v1.ListServicesRequest. */
export interface ListServicesRequest {
  pageSize: number;
  pageToken: string;
  namePrefix: string;
  address: string;
}

/** sluice.v1.ListServicesResponse. */
export interface ListServicesResponse {
  services: ServiceMessage[];
  nextPageToken: string;
  revision: Int64;
}

/** sluice.v1.WatchServicesRequest. */
export interface WatchServicesRequest {
  startRevision?: Int64;
}

/** sluice.v1.WatchServicesResponse. */
export interface WatchServicesResponse {
  type: EventTypeName;
  name: string;
  service: ServiceMessage | null;
  revision: Int64;
}

/** sluice.v1.RegisterBackendRequest. */
export interface RegisterBackendRequest {
  service: string;
  address: string;
  weight?: number;
  ttlSeconds: number;
  leaseId: string;
}

/** sluice.v1.RegisterBackendResponse. */
export interface RegisterBackendResponse {
  leaseId: string;
  ttlSeconds: number;
  service: ServiceMessage | null;
}

/** sluice.v1.KeepAliveRequest (and HeartbeatRequest). */
export interface KeepAliveRequest {
  leaseId: string;
}

/** sluice.v1.KeepAliveResponse (and HeartbeatResponse). */
export interface KeepAliveResponse {
  leaseId: string;
  ttlSeconds: number;
}

/** sluice.v1.DeregisterBackendRequest. */
export interface DeregisterBackendRequest {
  service: string;
  address: string;
}

/** sluice.v1.SetBackendStateRequest. */
export interface SetBackendStateRequest {
  service: string;
  address: string;
  state: BackendStateName | number;
}

/** sluice.v1.Counters. */
export interface CountersMessage {
  packets: Int64;
  bytes: Int64;
  newConnections: Int64;
  replyPackets: Int64;
}

/** sluice.v1.GetStatsRequest. */
export interface GetStatsRequest {
  service: string;
}

/** sluice.v1.FrontendStats. */
export interface FrontendStatsMessage {
  address: string;
  port: number;
  protocol: ProtocolName;
  counters: CountersMessage | null;
}

/** sluice.v1.BackendStats. */
export interface BackendStatsMessage {
  address: string;
  state: BackendStateName;
  counters: CountersMessage | null;
}

/** sluice.v1.ServiceStats. */
export interface ServiceStatsMessage {
  name: string;
  counters: CountersMessage | null;
  frontends: FrontendStatsMessage[];
  backends: BackendStatsMessage[];
}

/** sluice.v1.DropCounters. */
export interface DropCountersMessage {
  malformed: Int64;
  fragment: Int64;
  noService: Int64;
  noBackend: Int64;
  ctFull: Int64;
}

/** sluice.v1.GlobalStats. */
export interface GlobalStatsMessage {
  rxPackets: Int64;
  passedOther: Int64;
  forwarded: Int64;
  forwardedStack: Int64;
  replies: Int64;
  passedMalformed: Int64;
  ctRescheduled: Int64;
  affinityHits: Int64;
  fibMiss: Int64;
  drops: DropCountersMessage | null;
}

/** sluice.v1.GetStatsResponse. */
export interface GetStatsResponse {
  services: ServiceStatsMessage[];
  globalStats: GlobalStatsMessage | null;
}

/** sluice.v1.LookupFlowRequest. */
export interface LookupFlowRequest {
  clientAddress: string;
  clientPort: number;
  address: string;
  port: number;
  protocol: ProtocolName | number;
}

/** sluice.v1.LookupFlowResponse. */
export interface LookupFlowResponse {
  backendAddress: string;
  backendPort: number;
  reason: FlowReasonName;
  maglevSlot: number;
  tableSize: number;
  service: string;
  flowHash: number;
}

/** sluice.v1.Connection. */
export interface ConnectionMessage {
  clientAddress: string;
  clientPort: number;
  address: string;
  port: number;
  protocol: ProtocolName;
  backendAddress: string;
  backendPort: number;
  service: string;
  ageMs: Int64;
  idleMs: Int64;
}

/** sluice.v1.ListConnectionsRequest. */
export interface ListConnectionsRequest {
  service: string;
  backendAddress: string;
  clientAddress: string;
  pageSize: number;
  pageToken: string;
}

/** sluice.v1.ListConnectionsResponse. */
export interface ListConnectionsResponse {
  connections: ConnectionMessage[];
  nextPageToken: string;
}

/** sluice.v1.FlushConnectionsRequest. */
export interface FlushConnectionsRequest {
  service: string;
  backendAddress: string;
  clientAddress: string;
  all: boolean;
}

/** sluice.v1.FlushConnectionsResponse. */
export interface FlushConnectionsResponse {
  flushed: Int64;
}

/** grpc.health.v1.HealthCheckRequest. */
export interface HealthCheckRequest {
  service: string;
}

/** grpc.health.v1.HealthCheckResponse.ServingStatus. */
export type ServingStatusName = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

/** grpc.health.v1.HealthCheckResponse. */
export interface HealthCheckResponse {
  status: ServingStatusName;
}
