// Original file: proto/sluice/v1/service_registry.proto

import type { MethodDefinition } from '@grpc/proto-loader'
import type { ApplyServiceRequest as _sluice_v1_ApplyServiceRequest, ApplyServiceRequest__Output as _sluice_v1_ApplyServiceRequest__Output } from '../../sluice/v1/ApplyServiceRequest.js';
import type { ApplyServicesRequest as _sluice_v1_ApplyServicesRequest, ApplyServicesRequest__Output as _sluice_v1_ApplyServicesRequest__Output } from '../../sluice/v1/ApplyServicesRequest.js';
import type { ApplyServicesResponse as _sluice_v1_ApplyServicesResponse, ApplyServicesResponse__Output as _sluice_v1_ApplyServicesResponse__Output } from '../../sluice/v1/ApplyServicesResponse.js';
import type { DeleteServiceRequest as _sluice_v1_DeleteServiceRequest, DeleteServiceRequest__Output as _sluice_v1_DeleteServiceRequest__Output } from '../../sluice/v1/DeleteServiceRequest.js';
import type { DeleteServiceResponse as _sluice_v1_DeleteServiceResponse, DeleteServiceResponse__Output as _sluice_v1_DeleteServiceResponse__Output } from '../../sluice/v1/DeleteServiceResponse.js';
import type { GetServiceRequest as _sluice_v1_GetServiceRequest, GetServiceRequest__Output as _sluice_v1_GetServiceRequest__Output } from '../../sluice/v1/GetServiceRequest.js';
import type { ListServicesRequest as _sluice_v1_ListServicesRequest, ListServicesRequest__Output as _sluice_v1_ListServicesRequest__Output } from '../../sluice/v1/ListServicesRequest.js';
import type { ListServicesResponse as _sluice_v1_ListServicesResponse, ListServicesResponse__Output as _sluice_v1_ListServicesResponse__Output } from '../../sluice/v1/ListServicesResponse.js';
import type { Service as _sluice_v1_Service, Service__Output as _sluice_v1_Service__Output } from '../../sluice/v1/Service.js';
import type { WatchServicesRequest as _sluice_v1_WatchServicesRequest, WatchServicesRequest__Output as _sluice_v1_WatchServicesRequest__Output } from '../../sluice/v1/WatchServicesRequest.js';
import type { WatchServicesResponse as _sluice_v1_WatchServicesResponse, WatchServicesResponse__Output as _sluice_v1_WatchServicesResponse__Output } from '../../sluice/v1/WatchServicesResponse.js';

export interface ServiceRegistryDefinition {
  ApplyService: MethodDefinition<_sluice_v1_ApplyServiceRequest, _sluice_v1_Service, _sluice_v1_ApplyServiceRequest__Output, _sluice_v1_Service__Output>
  ApplyServices: MethodDefinition<_sluice_v1_ApplyServicesRequest, _sluice_v1_ApplyServicesResponse, _sluice_v1_ApplyServicesRequest__Output, _sluice_v1_ApplyServicesResponse__Output>
  DeleteService: MethodDefinition<_sluice_v1_DeleteServiceRequest, _sluice_v1_DeleteServiceResponse, _sluice_v1_DeleteServiceRequest__Output, _sluice_v1_DeleteServiceResponse__Output>
  GetService: MethodDefinition<_sluice_v1_GetServiceRequest, _sluice_v1_Service, _sluice_v1_GetServiceRequest__Output, _sluice_v1_Service__Output>
  ListServices: MethodDefinition<_sluice_v1_ListServicesRequest, _sluice_v1_ListServicesResponse, _sluice_v1_ListServicesRequest__Output, _sluice_v1_ListServicesResponse__Output>
  WatchServices: MethodDefinition<_sluice_v1_WatchServicesRequest, _sluice_v1_WatchServicesResponse, _sluice_v1_WatchServicesRequest__Output, _sluice_v1_WatchServicesResponse__Output>
}
