/**
 * The sluice.v1 (and grpc.health.v1) messages under the names the control
 * plane uses. The types are generated from proto/ into generated/ by
 * scripts/gen-types.sh (proto-loader-gen-types, with the loader options of
 * protos.ts); this module only names them.
 *
 * `*Message` and request/response names are messages as @grpc/proto-loader
 * decodes them (the generator's `__Output` types): camelCase fields, 64-bit
 * integers as decimal strings, enums as their names, unset scalars and
 * lists as zero values, unset messages as null, unset `optional` fields
 * absent (a set one comes with its virtual oneof, `_weight: 'weight'`).
 * An enum number this version has no name for stays a number at run time,
 * which the generated types do not say: the converters take such fields
 * as `unknown` and refuse the number.
 *
 * `*Input` types are what a client may send: every field optional, 64-bit
 * integers as string or number, enums as name or number.
 */

/** A 64-bit integer as decoded: a decimal string. */
export type Int64 = string;
/** A 64-bit integer as a client may send it. */
export type Int64Input = string | number;

export type { Protocol__Output as ProtocolName } from './generated/sluice/v1/Protocol.js';
export type { _sluice_v1_Backend_State__Output as BackendStateName } from './generated/sluice/v1/Backend.js';
export type { _sluice_v1_Service_NoBackends__Output as NoBackendsName } from './generated/sluice/v1/Service.js';
export type { _sluice_v1_WatchServicesResponse_EventType__Output as EventTypeName } from './generated/sluice/v1/WatchServicesResponse.js';
export type { _sluice_v1_LookupFlowResponse_Reason__Output as FlowReasonName } from './generated/sluice/v1/LookupFlowResponse.js';
export type { ServiceView__Output as ServiceViewName } from './generated/sluice/v1/ServiceView.js';

export type { Service__Output as ServiceMessage, Service as ServiceInput } from './generated/sluice/v1/Service.js';
export type { ServicePort__Output as ServicePortMessage } from './generated/sluice/v1/ServicePort.js';
export type { Backend__Output as BackendMessage } from './generated/sluice/v1/Backend.js';
export type { _sluice_v1_Backend_Health__Output as BackendHealthName } from './generated/sluice/v1/Backend.js';
export type { HealthCheck__Output as HealthCheckMessage } from './generated/sluice/v1/HealthCheck.js';
export type { SessionAffinity__Output as SessionAffinityMessage } from './generated/sluice/v1/SessionAffinity.js';

export type {
  ApplyServiceRequest__Output as ApplyServiceRequest,
  ApplyServiceRequest as ApplyServiceInput,
} from './generated/sluice/v1/ApplyServiceRequest.js';
export type { ApplyServicesRequest__Output as ApplyServicesRequest } from './generated/sluice/v1/ApplyServicesRequest.js';
export type { ApplyServicesResponse__Output as ApplyServicesResponse } from './generated/sluice/v1/ApplyServicesResponse.js';
export type { DeleteServiceRequest__Output as DeleteServiceRequest } from './generated/sluice/v1/DeleteServiceRequest.js';
export type { DeleteServiceResponse__Output as DeleteServiceResponse } from './generated/sluice/v1/DeleteServiceResponse.js';
export type { GetServiceRequest__Output as GetServiceRequest } from './generated/sluice/v1/GetServiceRequest.js';
export type { ListServicesRequest__Output as ListServicesRequest } from './generated/sluice/v1/ListServicesRequest.js';
export type { ListServicesResponse__Output as ListServicesResponse } from './generated/sluice/v1/ListServicesResponse.js';
export type { WatchServicesRequest__Output as WatchServicesRequest } from './generated/sluice/v1/WatchServicesRequest.js';
export type { WatchServicesResponse__Output as WatchServicesResponse } from './generated/sluice/v1/WatchServicesResponse.js';

export type { RegisterBackendRequest__Output as RegisterBackendRequest } from './generated/sluice/v1/RegisterBackendRequest.js';
export type { RegisterBackendResponse__Output as RegisterBackendResponse } from './generated/sluice/v1/RegisterBackendResponse.js';
export type { KeepAliveRequest__Output as KeepAliveRequest } from './generated/sluice/v1/KeepAliveRequest.js';
export type { KeepAliveResponse__Output as KeepAliveResponse } from './generated/sluice/v1/KeepAliveResponse.js';
export type { HeartbeatRequest__Output as HeartbeatRequest } from './generated/sluice/v1/HeartbeatRequest.js';
export type { HeartbeatResponse__Output as HeartbeatResponse } from './generated/sluice/v1/HeartbeatResponse.js';
export type { DeregisterBackendRequest__Output as DeregisterBackendRequest } from './generated/sluice/v1/DeregisterBackendRequest.js';
export type { SetBackendStateRequest__Output as SetBackendStateRequest } from './generated/sluice/v1/SetBackendStateRequest.js';

export type { Counters__Output as CountersMessage } from './generated/sluice/v1/Counters.js';
export type { GetStatsRequest__Output as GetStatsRequest } from './generated/sluice/v1/GetStatsRequest.js';
export type { GetStatsResponse__Output as GetStatsResponse } from './generated/sluice/v1/GetStatsResponse.js';
export type { FrontendStats__Output as FrontendStatsMessage } from './generated/sluice/v1/FrontendStats.js';
export type { BackendStats__Output as BackendStatsMessage } from './generated/sluice/v1/BackendStats.js';
export type { ServiceStats__Output as ServiceStatsMessage } from './generated/sluice/v1/ServiceStats.js';
export type { DropCounters__Output as DropCountersMessage } from './generated/sluice/v1/DropCounters.js';
export type { RejectCounters__Output as RejectCountersMessage } from './generated/sluice/v1/RejectCounters.js';
export type { GlobalStats__Output as GlobalStatsMessage } from './generated/sluice/v1/GlobalStats.js';
export type { MapStats__Output as MapStatsMessage } from './generated/sluice/v1/MapStats.js';
export type { ConntrackGcStats__Output as ConntrackGcStatsMessage } from './generated/sluice/v1/ConntrackGcStats.js';
export type { LookupFlowRequest__Output as LookupFlowRequest } from './generated/sluice/v1/LookupFlowRequest.js';
export type { LookupFlowResponse__Output as LookupFlowResponse } from './generated/sluice/v1/LookupFlowResponse.js';
export type { Connection__Output as ConnectionMessage } from './generated/sluice/v1/Connection.js';
export type { ListConnectionsRequest__Output as ListConnectionsRequest } from './generated/sluice/v1/ListConnectionsRequest.js';
export type { ListConnectionsResponse__Output as ListConnectionsResponse } from './generated/sluice/v1/ListConnectionsResponse.js';
export type { FlushConnectionsRequest__Output as FlushConnectionsRequest } from './generated/sluice/v1/FlushConnectionsRequest.js';
export type { FlushConnectionsResponse__Output as FlushConnectionsResponse } from './generated/sluice/v1/FlushConnectionsResponse.js';

export type { HealthCheckRequest__Output as HealthCheckRequest } from './generated/grpc/health/v1/HealthCheckRequest.js';
export type {
  HealthCheckResponse__Output as HealthCheckResponse,
  _grpc_health_v1_HealthCheckResponse_ServingStatus__Output as ServingStatusName,
} from './generated/grpc/health/v1/HealthCheckResponse.js';
