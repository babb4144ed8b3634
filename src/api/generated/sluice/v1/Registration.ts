// Original file: proto/sluice/v1/registration.proto

import type { MethodDefinition } from '@grpc/proto-loader'
import type { DeregisterBackendRequest as _sluice_v1_DeregisterBackendRequest, DeregisterBackendRequest__Output as _sluice_v1_DeregisterBackendRequest__Output } from '../../sluice/v1/DeregisterBackendRequest.js';
import type { HeartbeatRequest as _sluice_v1_HeartbeatRequest, HeartbeatRequest__Output as _sluice_v1_HeartbeatRequest__Output } from '../../sluice/v1/HeartbeatRequest.js';
import type { HeartbeatResponse as _sluice_v1_HeartbeatResponse, HeartbeatResponse__Output as _sluice_v1_HeartbeatResponse__Output } from '../../sluice/v1/HeartbeatResponse.js';
import type { KeepAliveRequest as _sluice_v1_KeepAliveRequest, KeepAliveRequest__Output as _sluice_v1_KeepAliveRequest__Output } from '../../sluice/v1/KeepAliveRequest.js';
import type { KeepAliveResponse as _sluice_v1_KeepAliveResponse, KeepAliveResponse__Output as _sluice_v1_KeepAliveResponse__Output } from '../../sluice/v1/KeepAliveResponse.js';
import type { RegisterBackendRequest as _sluice_v1_RegisterBackendRequest, RegisterBackendRequest__Output as _sluice_v1_RegisterBackendRequest__Output } from '../../sluice/v1/RegisterBackendRequest.js';
import type { RegisterBackendResponse as _sluice_v1_RegisterBackendResponse, RegisterBackendResponse__Output as _sluice_v1_RegisterBackendResponse__Output } from '../../sluice/v1/RegisterBackendResponse.js';
import type { Service as _sluice_v1_Service, Service__Output as _sluice_v1_Service__Output } from '../../sluice/v1/Service.js';
import type { SetBackendStateRequest as _sluice_v1_SetBackendStateRequest, SetBackendStateRequest__Output as _sluice_v1_SetBackendStateRequest__Output } from '../../sluice/v1/SetBackendStateRequest.js';

export interface RegistrationDefinition {
  DeregisterBackend: MethodDefinition<_sluice_v1_DeregisterBackendRequest, _sluice_v1_Service, _sluice_v1_DeregisterBackendRequest__Output, _sluice_v1_Service__Output>
  Heartbeat: MethodDefinition<_sluice_v1_HeartbeatRequest, _sluice_v1_HeartbeatResponse, _sluice_v1_HeartbeatRequest__Output, _sluice_v1_HeartbeatResponse__Output>
  KeepAlive: MethodDefinition<_sluice_v1_KeepAliveRequest, _sluice_v1_KeepAliveResponse, _sluice_v1_KeepAliveRequest__Output, _sluice_v1_KeepAliveResponse__Output>
  RegisterBackend: MethodDefinition<_sluice_v1_RegisterBackendRequest, _sluice_v1_RegisterBackendResponse, _sluice_v1_RegisterBackendRequest__Output, _sluice_v1_RegisterBackendResponse__Output>
  SetBackendState: MethodDefinition<_sluice_v1_SetBackendStateRequest, _sluice_v1_Service, _sluice_v1_SetBackendStateRequest__Output, _sluice_v1_Service__Output>
}
